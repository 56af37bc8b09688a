"""Stage ``quota``: the company target split into rep quotas, by period, with fairness figures.

The target is the reconciled forecast (``forecast_reconciled``) unless the scenario sets one; the
distributions are the pipeline's samples; the basis is the plan's (history follows the accounts).
See :mod:`salesops_models.quota.plan`.
"""

from __future__ import annotations

import logging
from typing import Any

from salesops_models.quota.plan import plan_quotas
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import COMPANY, StageContract

log = logging.getLogger(__name__)

CONTRACT = StageContract(
    "quota",
    summary="sets every rep's quota (target from the scenario or the reconciled forecast, P(attain) from "
    "the pipeline's samples), by month and quarter, with every method side by side and the capacity plan.",
    config=("quota", "plan_year", "company_target"),
    reads=(COMPANY,),
    uses=("assignments", "territory_new_reps", "forecast_reconciled", "rep_bookings_samples"),
    writes=("quotas", "quotas_by_period"),
    may_write=("quota_fairness", "quota_relief", "quota_capacity"),
    metrics=(
        "quota_total",
        "quota_method",
        "quota_p_attain_spread",
        "quota_equal_chance_p",
        "quota_target_source",
    ),
)


def run(ctx: StageContext) -> dict[str, Any]:
    realigned = ctx.plan_company()
    plan = realigned.company
    result = plan_quotas(
        reps=plan.reps,
        accounts=plan.accounts,
        bookings=plan.bookings,
        as_of=plan.as_of,
        plan_year=ctx.scenario.plan_year,
        cfg=ctx.scenario.quota,
        scenario_target=ctx.scenario.company_target,
        forecast=ctx.optional_table("forecast_reconciled"),
        samples=ctx.optional_table("rep_bookings_samples"),
        history_bookings=ctx.company.bookings,
        forecast_label="forecast_reconciled",
        samples_label="rep_bookings_samples",
    )
    ctx.write_table("quotas", result.quotas.reset_index())
    ctx.write_table("quotas_by_period", result.by_period)
    if result.fairness is not None:
        ctx.write_table("quota_fairness", result.fairness)
    if result.relief is not None:
        ctx.write_table(
            "quota_relief", result.relief.assign(effective_date=result.relief["effective_date"].astype(str))
        )
    if result.capacity is not None:
        ctx.write_table("quota_capacity", result.capacity.monthly)
    return {f"quota_{k}": v for k, v in result.metrics().items()}
