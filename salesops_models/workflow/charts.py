"""Every chart of the reports and notebooks, drawn in one place with matplotlib's object API.

A chart function takes tables (a mapping name -> DataFrame when it compares scenarios, plans or
regions) and returns a :class:`~matplotlib.figure.Figure`, or None when there is nothing to draw, so
callers show a note instead. No pyplot state is used, so charts can be drawn from worker threads and
in notebooks alike; :func:`figure_png` gives the PNG that the HTML embeds.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

MAX_PANELS = 6  # small-multiple charts show at most this many panels
BAND_COLOUR = "tab:blue"


def new_figure(n_panels: int = 1, width: float = 9.0, panel_height: float = 3.2) -> tuple[Figure, list[Any]]:
    """A constrained-layout figure with ``n_panels`` axes, at most three per row."""
    from matplotlib.figure import Figure

    ncols = min(3, max(1, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(width, panel_height * nrows), dpi=90, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def figure_png(fig: Figure) -> bytes:
    """The PNG bytes of a matplotlib figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def single(name: str, df: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """``{name: df}`` when ``df`` is a non-empty table, else ``{}``: the input of the chart functions."""
    return {name: df} if df is not None and len(df) else {}


def _limit(tables: Mapping[str, Any]) -> list[str]:
    names = list(tables)
    if len(names) > MAX_PANELS:
        log.info("chart shows the first %d of %d panels", MAX_PANELS, len(names))
    return names[:MAX_PANELS]


def _money_axis(ax: Any, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v / 1e6:,.1f}M" if abs(v) >= 1e6 else f"{v / 1e3:,.0f}k")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


# ------------------------------------------------------------------------------------------------
# forecast
# ------------------------------------------------------------------------------------------------


def top_series(forecast: pd.DataFrame) -> pd.DataFrame:
    """The company-level series of a forecast table: level 'total'/'company'/'all', else the level
    with the fewest series, and its first series."""
    df = forecast
    if "level" in df.columns:
        levels = df["level"].astype(str)
        preferred = [lv for lv in ("total", "company", "all") if (levels == lv).any()]
        if preferred:
            df = df[levels == preferred[0]]
        else:
            counts = (
                df.groupby(levels)["series"].nunique() if "series" in df.columns else levels.value_counts()
            )
            df = df[levels == counts.idxmin()]
    if "series" in df.columns and df["series"].nunique() > 1:
        df = df[df["series"] == df["series"].iloc[0]]
    if "model" in df.columns and df["model"].nunique() > 1:
        df = df[df["model"] == df["model"].iloc[0]]
    return df.sort_values("month") if "month" in df.columns else df


def level_series(forecast: pd.DataFrame, level: str) -> dict[str, pd.DataFrame]:
    """Each series of one hierarchy level of a forecast table (e.g. every region), by name."""
    if not {"level", "series", "month"} <= set(forecast.columns):
        return {}
    rows = forecast[forecast["level"].astype(str) == level]
    return {str(k): g.sort_values("month") for k, g in rows.groupby(rows["series"].astype(str), sort=True)}


def fan_chart(series: Mapping[str, pd.DataFrame], title: str) -> Figure | None:
    """Fan charts of monthly forecasts, one panel per series (``month``, ``q50`` and any of
    ``q05/q95``, ``q10/q90``, ``q25/q75``) [currency per month]."""
    names = [n for n in _limit(series) if {"month", "q50"} <= set(series[n].columns)]
    if not names:
        return None
    fig, axes = new_figure(len(names))
    for ax, name in zip(axes, names, strict=True):
        df = series[name]
        x = pd.to_datetime(df["month"])
        for lo, hi, alpha in (("q05", "q95", 0.15), ("q10", "q90", 0.2), ("q25", "q75", 0.3)):
            if lo in df and hi in df:
                ax.fill_between(x, df[lo], df[hi], color=BAND_COLOUR, alpha=alpha, lw=0, label=f"{lo}-{hi}")
        ax.plot(x, df["q50"], color=BAND_COLOUR, lw=1.5, label="median")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", rotation=45)
        _money_axis(ax)
    axes[0].set_ylabel("bookings per month")
    axes[0].legend(fontsize=6, loc="upper left")
    fig.suptitle(title, fontsize=10)
    return fig


def forecast_fan_chart(forecasts: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Fan chart of the company-level bookings forecast of each scenario (scenario -> ``forecast``)."""
    return fan_chart(
        {n: top_series(f) for n, f in forecasts.items()}, "Plan-year bookings forecast (company level)"
    )


# ------------------------------------------------------------------------------------------------
# pipeline, attainment, commission
# ------------------------------------------------------------------------------------------------


def attainment_samples(samples: pd.DataFrame, quotas: pd.DataFrame) -> np.ndarray:
    """Attainment of every (trial, rep): simulated plan-year bookings over the rep's quota [ratio].

    Notes
    -----
    :math:`a_{t,r} = B_{t,r} / Q_r` for trial :math:`t` and rep :math:`r`; reps without a positive
    quota are left out.
    """
    q = quotas.set_index("rep_id")["quota"] if "rep_id" in quotas.columns else quotas["quota"]
    q = q[q > 0]
    merged = samples[samples["rep_id"].isin(q.index)]
    return merged["bookings"].to_numpy(float) / merged["rep_id"].map(q).to_numpy(float)


def _step_histograms(
    values: Mapping[str, np.ndarray], xlabel: str, title: str, label: Any, bins: Any = 40
) -> Figure | None:
    values = {k: v for k, v in values.items() if v.size}
    if not values:
        return None
    fig, (ax,) = new_figure(1, width=7.5, panel_height=3.6)
    if isinstance(bins, int):
        lo = min(float(v.min()) for v in values.values())
        hi = max(float(v.max()) for v in values.values())
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    for name, v in values.items():
        ax.hist(v, bins=bins, density=True, histtype="step", lw=1.4, label=label(name, v))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of trials (density)")
    ax.set_yticks([])  # a density's scale depends on the x unit and tells a reader nothing
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return fig


def attainment_chart(
    samples: Mapping[str, pd.DataFrame], quotas: Mapping[str, pd.DataFrame]
) -> Figure | None:
    """Distribution of rep attainment (all trials x reps) per scenario, with the quota line at 100%."""
    names = [n for n in _limit(samples) if n in quotas]
    values = {n: np.clip(attainment_samples(samples[n], quotas[n]), 0, 3) for n in names}
    fig = _step_histograms(
        values,
        "attainment (bookings / quota), clipped at 300%",
        "Rep attainment distribution (all trials and reps)",
        lambda n, v: f"{n}: {np.mean(v >= 1):.0%} at quota",
        bins=np.linspace(0, 3, 61),
    )
    if fig is not None:
        fig.axes[0].axvline(1.0, color="black", lw=0.8, ls="--")
    return fig


def commission_cost_chart(
    costs: Mapping[str, pd.DataFrame], title: str = "Commission cost distribution"
) -> Figure | None:
    """Distribution of the total commission cost per trial, per scenario or plan [currency]."""
    names = [n for n in _limit(costs) if "total_cost" in costs[n].columns]
    fig = _step_histograms(
        {n: costs[n]["total_cost"].to_numpy(float) for n in names},
        "total commission cost per trial (base + variable)",
        title,
        lambda n, v: f"{n}: P50 {np.quantile(v, 0.5):,.0f}, P90 {np.quantile(v, 0.9):,.0f}",
    )
    if fig is not None:
        _money_axis(fig.axes[0], "x")
    return fig


def pipeline_total_chart(samples: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Distribution of the simulated plan-year bookings of the whole team (sum over reps per trial)."""
    names = [n for n in _limit(samples) if {"trial", "bookings"} <= set(samples[n].columns)]

    def label(n: str, v: np.ndarray) -> str:
        p10, p50, p90 = np.quantile(v, [0.1, 0.5, 0.9])
        return f"{n}: P10 {p10:,.0f} / P50 {p50:,.0f} / P90 {p90:,.0f}"

    fig = _step_histograms(
        {n: samples[n].groupby("trial")["bookings"].sum().to_numpy(float) for n in names},
        "simulated plan-year bookings, all reps",
        "Pipeline Monte Carlo: team bookings",
        label,
    )
    if fig is not None:
        _money_axis(fig.axes[0], "x")
    return fig


def band_by_month_chart(
    by_month: pd.DataFrame, title: str, ylabel: str, line: pd.Series | None = None, line_label: str = ""
) -> Figure | None:
    """P10-P90 band and P50 line by month (``month`` or ``period``, ``p10``, ``p50``, ``p90``), with an
    optional reference line (e.g. the company quota by month)."""
    x_col = "month" if "month" in by_month.columns else "period"
    if not {x_col, "p10", "p50", "p90"} <= set(by_month.columns) or by_month.empty:
        return None
    fig, (ax,) = new_figure(1, width=7.5, panel_height=3.4)
    x = np.arange(len(by_month))
    ax.fill_between(x, by_month["p10"], by_month["p90"], color=BAND_COLOUR, alpha=0.25, lw=0, label="P10-P90")
    ax.plot(x, by_month["p50"], color=BAND_COLOUR, lw=1.6, marker="o", ms=3, label="P50")
    if line is not None and len(line) == len(by_month):
        ax.plot(x, line.to_numpy(float), color="black", lw=1.0, ls="--", label=line_label)
    ax.set_xticks(x, [str(v) for v in by_month[x_col]], rotation=45, fontsize=7)
    ax.set_ylabel(ylabel)
    _money_axis(ax)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return fig


def grouped_bars(table: pd.DataFrame, value: str, group: str, category: str, title: str, ylabel: str,
                 share: bool = False) -> Figure | None:  # fmt: skip
    """Bars of ``value`` by ``category`` (x) for each ``group`` (one colour each)."""
    if table is None or not {value, group, category} <= set(table.columns) or table.empty:
        return None
    wide = table.pivot_table(index=category, columns=group, values=value, aggfunc="first")
    fig, (ax,) = new_figure(1, width=7.5, panel_height=3.2)
    x = np.arange(len(wide.index))
    width = 0.8 / max(1, len(wide.columns))
    for k, col in enumerate(wide.columns):
        ax.bar(x + k * width - 0.4 + width / 2, wide[col].to_numpy(float), width, label=str(col))
    ax.set_xticks(x, [str(i) for i in wide.index], fontsize=8)
    ax.set_ylabel(ylabel)
    if share:
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------------
# territories
# ------------------------------------------------------------------------------------------------


def balance_metrics(territories: pd.DataFrame) -> list[str]:
    """The balanced metrics of a ``territories`` table (every ``m`` with an ``m_deviation`` column)."""
    return [
        str(c).removesuffix("_deviation")
        for c in territories.columns
        if str(c).endswith("_deviation") and str(c).removesuffix("_deviation") in territories.columns
    ]


def territory_balance_chart(territories: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Box plot of each territory's deviation from its target [%], one panel per balanced metric
    and one box per scenario."""
    names = list(territories)[: 3 * MAX_PANELS]
    metrics = list(dict.fromkeys(m for n in names for m in balance_metrics(territories[n])))
    if not metrics:
        return None
    fig, axes = new_figure(len(metrics), width=9.0, panel_height=3.4)
    for ax, metric in zip(axes, metrics, strict=True):
        have = [n for n in names if f"{metric}_deviation" in territories[n].columns]
        data = [100 * territories[n][f"{metric}_deviation"].to_numpy(float) for n in have]
        ax.boxplot(data, tick_labels=have, showmeans=True)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(metric, fontsize=9)
        ax.set_ylabel("deviation from target [%]", fontsize=8)
        ax.tick_params(axis="x", labelsize=7, rotation=20)
    fig.suptitle("Territory balance (one point per territory)", fontsize=10)
    return fig


def territory_deviation_chart(territories: pd.DataFrame) -> Figure | None:
    """Each territory's deviation from target [%] with its allowed band, one panel per metric."""
    metrics = balance_metrics(territories)
    if not metrics or "rep_id" not in territories.columns:
        return None
    fig, axes = new_figure(len(metrics), width=9.0, panel_height=3.0)
    for ax, metric in zip(axes, metrics, strict=True):
        t = territories.sort_values(f"{metric}_deviation")
        dev = 100 * t[f"{metric}_deviation"].to_numpy(float)
        x = np.arange(len(t))
        ax.bar(x, dev, color=np.where(np.abs(dev) > 1e-9, BAND_COLOUR, "grey"), width=0.8)
        if {f"{metric}_lower", f"{metric}_upper", f"{metric}_target"} <= set(t.columns):
            target = t[f"{metric}_target"].to_numpy(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                lo = np.nanmedian(100 * (t[f"{metric}_lower"].to_numpy(float) / target - 1))
                hi = np.nanmedian(100 * (t[f"{metric}_upper"].to_numpy(float) / target - 1))
            for v in (lo, hi):
                if np.isfinite(v):
                    ax.axhline(v, color="tab:red", lw=0.8, ls="--")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, [str(r) for r in t["rep_id"]], rotation=90, fontsize=6)
        ax.set_title(metric, fontsize=9)
        ax.set_ylabel("deviation from target [%]", fontsize=8)
    fig.suptitle("Territory balance by metric (dashed: allowed band)", fontsize=10)
    return fig


def territory_map(points: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Accounts on a lon/lat map coloured by their assigned rep, one panel per scenario.

    Parameters
    ----------
    points
        Scenario -> table with ``lat``, ``lon`` [degrees] and ``rep_id`` (and optionally ``moved``).
    """
    names = [n for n in _limit(points) if {"lat", "lon", "rep_id"} <= set(points[n].columns)]
    if not names:
        return None
    fig, axes = new_figure(len(names), panel_height=3.0)
    for ax, name in zip(axes, names, strict=True):
        df = points[name]
        codes = pd.Categorical(df["rep_id"].astype(str)).codes
        ax.scatter(df["lon"], df["lat"], c=codes % 20, cmap="tab20", s=4, lw=0)
        if "moved" in df.columns:
            moved = df[df["moved"].astype(bool)]
            ax.scatter(
                moved["lon"], moved["lat"], facecolors="none", edgecolors="black", s=14, lw=0.3, alpha=0.5
            )
        ax.set_title(f"{name} ({df['rep_id'].nunique()} territories)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle("Territory map (circled: accounts that change owner)", fontsize=10)
    return fig


def tradeoff_chart(curve: pd.DataFrame) -> Figure | None:
    """Travel against disruption for each disruption budget (``territory_tradeoff``)."""
    if curve is None or not {"disruption_share", "travel"} <= set(curve.columns) or curve.empty:
        return None
    c = curve.sort_values("disruption_share")
    fig, (ax,) = new_figure(1, width=6.5, panel_height=3.4)
    ax.plot(100 * c["disruption_share"], c["travel"], marker="o", color=BAND_COLOUR)
    if "budget" in c.columns:
        for _, r in c.iterrows():
            ax.annotate(f"budget {r['budget']:.0%}", (100 * r["disruption_share"], r["travel"]),
                        fontsize=7, xytext=(4, 4), textcoords="offset points")  # fmt: skip
    ax.set_xlabel("accounts' value that changes owner [%]")
    ax.set_ylabel("travel (weighted km)")
    ax.set_title("Travel versus disruption", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------------
# sensitivity (sweeps)
# ------------------------------------------------------------------------------------------------


def distribution_overlay_chart(
    panels: Mapping[str, Mapping[str, np.ndarray]], title: str
) -> Figure | None:
    """Every scenario's distribution on one axis per output, as cumulative curves (no panel limit).

    A sweep has dozens of children; step histograms of that many overlap into noise, cumulative
    distribution curves stay readable: the curve further right is the larger outcome, a steeper one
    the narrower band, and P10/P50/P90 are read off where a curve crosses 0.1/0.5/0.9 (dotted).

    Parameters
    ----------
    panels
        Output label (the x-axis, with its unit) -> scenario name -> samples [unit].
    title
        Figure title.
    """
    panels = {k: {n: np.sort(np.asarray(v, float)) for n, v in d.items() if len(v)} for k, d in panels.items()}
    panels = {k: d for k, d in panels.items() if d}
    if not panels:
        return None
    from matplotlib import colormaps

    fig, axes = new_figure(len(panels), width=11.0, panel_height=4.2)
    for ax, (xlabel, curves) in zip(axes, panels.items(), strict=True):
        colours = colormaps["viridis"](np.linspace(0.0, 0.92, len(curves)))
        for colour, (name, v) in zip(colours, curves.items(), strict=True):
            ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", lw=1.1, color=colour, label=name)
        for q in (0.1, 0.5, 0.9):
            ax.axhline(q, color="grey", lw=0.5, ls=":")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of trials at or below")
        ax.set_ylim(0, 1)
        if max(abs(float(v[-1])) for v in curves.values()) >= 1e4:
            _money_axis(ax, "x")
    axes[0].legend(fontsize=6, ncol=1 + len(next(iter(panels.values()))) // 13, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return fig


def tornado_chart(ranges: pd.DataFrame, labels: Mapping[str, str], title: str) -> Figure | None:
    """One tornado panel per headline metric: how far each swept setting moves it.

    ``ranges`` has one row per (metric, key): ``low``/``high`` (the smallest and largest mean of the
    metric over the children sharing one value of the key), ``low_value``/``high_value`` (those
    values, as labels), ``centre`` (the mean over all children) and ``swing`` (high - low). Bars are
    sorted by swing, widest on top; each panel is in its metric's own unit.
    """
    metrics = [m for m in labels if m in set(ranges["metric"])]
    if not metrics:
        return None
    fig, axes = new_figure(len(metrics), width=11.0, panel_height=0.6 + 0.45 * ranges["key"].nunique() + 1.0)
    for ax, metric in zip(axes, metrics, strict=True):
        rows = ranges[ranges["metric"] == metric].sort_values("swing")
        y = np.arange(len(rows))
        centre = float(rows["centre"].iloc[0])
        ax.barh(y, rows["high"] - rows["low"], left=rows["low"], color=BAND_COLOUR, alpha=0.7)
        ax.axvline(centre, color="black", lw=0.8)
        ax.set_yticks(y, [str(k).split(".")[-1] for k in rows["key"]])
        for yi, rec in zip(y, rows.to_dict("records"), strict=True):
            ax.annotate(rec["low_value"], (rec["low"], yi), xytext=(-3, 0), textcoords="offset points",
                        ha="right", va="center", fontsize=7)
            ax.annotate(rec["high_value"], (rec["high"], yi), xytext=(3, 0), textcoords="offset points",
                        ha="left", va="center", fontsize=7)  # fmt: skip
        lo, hi = float(rows["low"].min()), float(rows["high"].max())
        pad = 0.35 * (hi - lo) or 0.05 * (abs(centre) or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_title(labels[metric], fontsize=9)
        if abs(centre) >= 1e4:
            _money_axis(ax, "x")
    fig.suptitle(title, fontsize=10)
    return fig
