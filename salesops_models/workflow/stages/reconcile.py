"""Stage ``reconcile``: one plan-year forecast from the time series and the pipeline, for the quotas.

Runs after both the forecast and the pipeline stages, so the blend acts in every run (with
``forecast.pipeline_blend.enabled``); the quota target is the reconciled forecast.
"""

from __future__ import annotations

import logging
from typing import Any

from salesops_models.forecast.pipeline_blend import reconcile_with_pipeline
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import StageContract

log = logging.getLogger(__name__)

CONTRACT = StageContract(
    "reconcile",
    summary="blends the company forecast with the pipeline projection for the first months of the plan year "
    "(`forecast.pipeline_blend`) and rescales every level below, so the table stays coherent; the quota "
    "stage sets its target from it.",
    config=("forecast",),
    uses=("forecast", "pipeline_by_month"),
    may_write=("forecast_reconciled",),
    metrics=("reconcile_blended", "reconcile_total", "reconcile_source"),
)


def run(ctx: StageContext) -> dict[str, Any]:
    blend = ctx.scenario.forecast.pipeline_blend
    if not ctx.has_table("forecast"):
        log.info("reconcile: no forecast table (forecast stage disabled); nothing to reconcile")
        return {"reconcile_blended": False, "reconcile_total": None, "reconcile_source": "none"}
    forecast = ctx.read_table("forecast")
    if blend.enabled and ctx.has_table("pipeline_by_month"):
        rec = reconcile_with_pipeline(
            forecast, ctx.read_table("pipeline_by_month"), months=blend.months, weight=blend.weight
        )
        table, source = rec.table, "forecast/pipeline_by_month"
        metrics = {f"reconcile_{k}": v for k, v in rec.summary().items()}
    else:
        table = forecast.assign(blended=False, pipeline_weight=0.0)
        source = "forecast"
        comp = forecast[forecast["level"] == "company"]["mean"].sum()
        metrics = {
            "reconcile_blended": False,
            "reconcile_total": float(comp),
            "reconcile_forecast_total": float(comp),
        }
    ctx.write_table("forecast_reconciled", table.reset_index(drop=True))
    metrics["reconcile_source"] = source
    log.info("reconcile: %s, plan-year total %.0f", source, metrics["reconcile_total"])
    return metrics
