"""Stage ``compensation``: cost the scenario's commission plans over the simulated attainment.

Reads ``quotas``/``quotas_by_period`` (quota stage) and ``rep_bookings_samples`` (pipeline stage)
when they exist and falls back otherwise, naming what it used in ``comp_attainment_source`` and
``comp_quarter_split_source``. See :mod:`salesops_models.compensation.costing`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from salesops_models.compensation.costing import CompanyHistory, cost_scenario_plans
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import COMPANY, StageContract

CONTRACT = StageContract(
    "compensation",
    summary="costs the commission plans over the pipeline's samples and the quotas: payouts per rep, cost "
    "distribution, plan comparison and costing modes, cost of sales by quartile, every rep's payout trace.",
    config=("compensation", "plan_year"),
    reads=(COMPANY,),
    uses=("assignments", "territory_new_reps", "quotas", "quotas_by_period", "rep_bookings_samples"),
    writes=(
        "payouts_summary",
        "comp_cost_samples",
        "comp_cost_samples_by_plan",
        "comp_plan_comparison",
        "comp_cost_by_quartile",
        "comp_trace",
        "comp_traces",
    ),
    metrics=(
        "comp_cost_p50",
        "comp_cost_p90",
        "comp_cost_of_sales",
        "comp_share_at_quota",
        "comp_p90_earner",
    ),
)


def _history(ctx: StageContext) -> CompanyHistory:
    plan = ctx.plan_company().company
    return CompanyHistory([str(r) for r in plan.reps["rep_id"]], plan.bookings, plan.opportunities, plan.as_of)


def run(ctx: StageContext) -> dict[str, Any]:
    # the company is loaded and re-aligned only when a fallback or a product plan needs it: over
    # the quota and pipeline stages' tables, a plan change costs the plans and nothing else
    result = cost_scenario_plans(
        ctx.scenario.compensation,
        history=lambda: _history(ctx),
        seed=ctx.seed_sequence,
        quotas=ctx.optional_table("quotas"),
        quotas_by_period=ctx.optional_table("quotas_by_period"),
        samples=ctx.optional_table("rep_bookings_samples"),
        labels={"samples": "rep_bookings_samples"},
    )
    ctx.write_table("payouts_summary", result.primary.payouts_summary)
    ctx.write_table("comp_cost_samples", result.primary.cost_samples)
    ctx.write_table(
        "comp_cost_samples_by_plan",
        pd.concat(
            [r.cost_samples.assign(plan=name) for name, r in result.by_plan.items()], ignore_index=True
        ),
    )
    ctx.write_table("comp_plan_comparison", result.comparison)
    ctx.write_table("comp_cost_by_quartile", result.by_quartile)
    ctx.write_table("comp_traces", result.traces)
    ctx.write_table("comp_trace", result.trace)
    return {f"comp_{k}": v for k, v in result.metrics().items()}
