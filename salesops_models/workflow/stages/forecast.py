"""Stage ``forecast``: plan-year bookings forecast at every hierarchy level, reconciled, with a backtest.

Under a territory plan the rep-level series are the history of each rep's new territory (history
follows the accounts, as for quotas). Metric units: ``forecast_backtest_mape`` and
``forecast_backtest_smape`` are shares (0.12 = 12%) at the company level (sMAPE on the 0-2 scale:
200|y-f|/(|y|+|f|) / 100); coverage and within-share metrics are shares [0-1]; totals in currency.
"""

from __future__ import annotations

import logging
from typing import Any

from salesops_models.forecast.plan_year import forecast_plan_year
from salesops_models.forecast.plots import fan_chart
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import COMPANY, StageContract

log = logging.getLogger(__name__)

CONTRACT = StageContract(
    "forecast",
    summary="forecasts the plan year's bookings at every level (company > region > rep), reconciled across "
    "levels, with a rolling-origin backtest; rep series follow the territory plan.",
    config=("forecast", "plan_year"),
    reads=(COMPANY,),
    uses=("assignments", "territory_new_reps"),
    writes=("forecast", "forecast_models"),
    may_write=("forecast_backtest", "forecast_backtest_accuracy"),
    metrics=(
        "forecast_plan_year_total",
        "forecast_backtest_mape",
        "forecast_backtest_smape",
        "forecast_coverage90",
    ),
)


def run(ctx: StageContext) -> dict[str, Any]:
    cfg = ctx.scenario.forecast
    plan = ctx.plan_company().company
    year = int(ctx.scenario.plan_year)
    result = forecast_plan_year(
        plan.bookings, plan.reps, cfg, year, plan.as_of, seed=int(ctx.seed_sequence.generate_state(1)[0])
    )
    ctx.write_table("forecast", result.table)
    ctx.write_table("forecast_models", result.fits)
    if len(result.backtest):
        ctx.write_table("forecast_backtest", result.backtest)
        ctx.write_table("forecast_backtest_accuracy", result.accuracy)
    fig = fan_chart(
        result.panel.sum(axis=1),
        result.table,
        f"Bookings forecast {year}: {cfg.model}, {cfg.reconciliation} reconciliation",
    )
    fig.savefig(ctx.figure_path("forecast_fan_chart"), dpi=110)
    metrics = {f"forecast_{k}": v for k, v in result.metrics().items()}
    log.info(
        "forecast: plan-year total %.0f, %d series", metrics["forecast_plan_year_total"], result.n_series
    )
    return metrics
