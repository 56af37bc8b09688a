"""The coverage chart of a backtest: "how far to trust these bands"."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

NOMINAL = {"coverage_p10_p90": 0.8, "coverage_p05_p95": 0.9}


def plot_coverage(summary: dict[str, Any]) -> Figure:
    """Coverage of P10-P90 and P5-P95 per model (model and naive baseline) against the nominal 80% and
    90%, and each model's PIT histogram (flat when the bands are calibrated)."""
    models = list(summary.get("models", {}))
    fig = Figure(figsize=(11, 3.2 + 2.2 * max(1, (len(models) + 1) // 2)))
    grid = fig.add_gridspec(1 + max(1, (len(models) + 1) // 2), 2)
    ax = fig.add_subplot(grid[0, :])
    width = 0.2
    x = np.arange(len(models))
    for k, (key, nominal) in enumerate(NOMINAL.items()):
        for b, kind in enumerate(("model", "naive")):
            vals = [summary["models"][m].get(kind, {}).get(key, np.nan) for m in models]
            ax.bar(
                x + (2 * k + b - 1.5) * width,
                vals,
                width,
                label=f"{'P10-P90' if k == 0 else 'P5-P95'} {'model' if b == 0 else 'naive'}",
                color=["#4c72b0", "#a6bddb", "#dd8452", "#f3c4a3"][2 * k + b],
            )
        ax.axhline(nominal, color="k", linestyle=":" if k == 0 else "--", linewidth=1)
    ax.set_xticks(x, models)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of actuals inside the band")
    ax.set_title(
        f"How far to trust these bands: {str(summary.get('source', '')).rstrip('/').split('/')[-1]}, "
        f"{len(summary.get('cutoffs', []))} cutoffs, "
        f"{summary.get('horizon_months')}-month horizon (dotted 80%, dashed 90% nominal)",
        fontsize=9,
    )
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for i, m in enumerate(models):
        sub = fig.add_subplot(grid[1 + i // 2, i % 2])
        hist = summary["models"][m].get("model", {}).get("pit_histogram") or []
        if hist:
            h = np.asarray(hist, float)
            sub.bar(
                np.arange(h.size) / h.size, h / max(h.sum(), 1), 1 / h.size, align="edge", color="#4c72b0"
            )
            sub.axhline(1 / h.size, color="k", linestyle=":", linewidth=1)
        skill = summary["models"][m].get("crps_skill")
        sub.set_title(
            f"{m}: PIT histogram" + (f", CRPS skill vs naive {skill:+.2f}" if skill is not None else ""),
            fontsize=8,
        )
        sub.set_xlim(0, 1)
        sub.tick_params(labelsize=7)
    fig.tight_layout()
    return fig
