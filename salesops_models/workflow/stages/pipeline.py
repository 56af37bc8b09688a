"""Stage ``pipeline``: simulate each rep's plan-year bookings from the CRM pipeline (Monte Carlo).

Calibrated on the company's history, simulated under the territory plan: the roster includes the
reps territory design placed, open deals and bookings closed to date follow their accounts, and
creation follows the accounts' history, adjusted for each rep's hours and workload
(:mod:`salesops_models.pipeline.plan_year`). The simpy capacity model, when enabled, is a diagnostic.
"""

from __future__ import annotations

import logging
from typing import Any

from salesops_models.pipeline.plan_year import simulate_plan_year
from salesops_models.pipeline.plots import plot_bookings_histogram
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import COMPANY, StageContract

log = logging.getLogger(__name__)

CONTRACT = StageContract(
    "pipeline",
    summary="calibrates the sales process on history and simulates every rep's plan-year bookings under "
    "the territory plan (open deals follow their accounts, creation follows coverage, hires ramp).",
    config=("pipeline", "plan_year"),
    reads=(COMPANY,),
    uses=("assignments", "territory_new_reps"),
    writes=(
        "rep_bookings_samples",
        "rep_bookings_by_quarter_samples",
        "pipeline_summary",
        "pipeline_by_month",
        "pipeline_creation",
    ),
    may_write=("pipeline_capacity_summary",),
    metrics=("pipeline_bookings_p10", "pipeline_bookings_p50", "pipeline_bookings_p90", "pipeline_win_rate"),
)


def run(ctx: StageContext) -> dict[str, Any]:
    cfg = ctx.scenario.pipeline
    year = ctx.scenario.plan_year
    realigned = ctx.plan_company()
    result = simulate_plan_year(ctx.company, realigned.company, cfg, year, ctx.seed_sequence)
    ctx.write_table("rep_bookings_samples", result.simulation.rep_bookings_samples())
    # per quarter, for the quarter x rep risk table of the reports
    ctx.write_table("rep_bookings_by_quarter_samples", result.quarterly_samples())
    ctx.write_table("pipeline_summary", result.rep_summary)
    ctx.write_table("pipeline_by_month", result.simulation.period_summary())
    ctx.write_table("pipeline_creation", result.creation.table)
    if result.capacity is not None:
        ctx.write_table("pipeline_capacity_summary", result.capacity.rep_summary())
    fig = plot_bookings_histogram(result.simulation, f"Plan-year {year} bookings")
    fig.savefig(ctx.figure_path("pipeline_bookings_histogram"), dpi=110)
    metrics = {f"pipeline_{k}": v for k, v in result.metrics().items()}
    metrics.update({f"pipeline_{k}": v for k, v in realigned.summary().items()})
    log.info("pipeline: P50 bookings %.0f (%d trials)", metrics["pipeline_bookings_p50"], cfg.trials)
    return metrics
