"""Figures of the pipeline model."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from salesops_models.pipeline.simulation import PipelineSimulation


def plot_bookings_histogram(sim: PipelineSimulation, title: str = "Simulated bookings") -> Figure:
    """Histogram of company bookings over trials with P10, P50 and P90 marked."""
    tot = sim.total_bookings()
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.hist(tot, bins=min(60, max(10, len(tot) // 20)), color="#4c72b0", alpha=0.85)
    for q, style in zip((10, 50, 90), (":", "-", ":"), strict=True):
        v = float(np.percentile(tot, q))
        ax.axvline(v, color="k", linestyle=style, linewidth=1)
        ax.text(v, ax.get_ylim()[1] * 0.95, f"P{q}\n{v:,.0f}", ha="center", va="top", fontsize=8)
    ax.set_xlabel("bookings [currency]")
    ax.set_ylabel("trials")
    ax.set_title(f"{title} ({sim.trials} trials)")
    fig.tight_layout()
    return fig
