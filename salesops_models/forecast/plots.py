"""Charts of a plan-year forecast (matplotlib object API, no global state)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def fan_chart(history_total: pd.Series, table: pd.DataFrame, title: str) -> Figure:
    """History of company bookings, then the forecast mean with its 50% and 90% intervals.

    Parameters
    ----------
    history_total
        Company bookings by month (PeriodIndex) [currency/month].
    table
        The ``forecast`` table (company rows drawn as the fan, region rows as dashed lines).
    title
        Chart title.
    """
    comp = table[table["level"] == "company"].sort_values("month")
    regions = table[table["level"] == "region"]
    fig = Figure(figsize=(9, 4.2))
    ax = fig.subplots()
    ax.plot(
        history_total.index.to_timestamp(),
        history_total.to_numpy() / 1e6,
        color="0.25",
        lw=1.4,
        label="bookings (history)",
    )
    x = comp["month"]
    ax.fill_between(
        x, comp["q05"] / 1e6, comp["q95"] / 1e6, color="tab:blue", alpha=0.18, label="90% interval"
    )
    ax.fill_between(
        x, comp["q25"] / 1e6, comp["q75"] / 1e6, color="tab:blue", alpha=0.35, label="50% interval"
    )
    ax.plot(x, comp["mean"] / 1e6, color="tab:blue", lw=1.8, label="forecast (mean)")
    for i, (_, g) in enumerate(regions.groupby("series")):
        g = g.sort_values("month")
        ax.plot(
            g["month"],
            g["mean"] / 1e6,
            lw=0.8,
            alpha=0.6,
            ls="--",
            label="regions (mean)" if i == 0 else None,
        )
    ax.set_ylabel("bookings [million / month]")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
