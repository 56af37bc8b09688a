"""Stage ``data``: load (or generate) the company, cache it for later stages, compute the KPIs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from salesops_models.kpi import company_kpis
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import COMPANY, StageContract

CONTRACT = StageContract(
    "data",
    summary="loads (or generates) the company named by the scenario's `data:` section, caches it under "
    "`data/` for the later stages (the `company` pseudo-table) and computes the sales KPIs.",
    config=("data", "plan_year"),
    writes=(COMPANY, "kpi_by_rep", "kpi_overall"),
    may_write=("kpi_by_quarter",),
    metrics=("kpi_win_rate", "kpi_median_cycle_days", "kpi_revenue_per_rep", "kpi_selling_time_share"),
)


def run(ctx: StageContext) -> dict[str, Any]:
    company = ctx.company  # generates or loads, and caches under <out>/data/
    report = company_kpis(company)
    ctx.write_table("kpi_by_rep", report.by_rep.reset_index())
    ctx.write_table("kpi_overall", pd.DataFrame([report.overall]))
    if report.by_period is not None:
        ctx.write_table("kpi_by_quarter", report.by_period.reset_index().astype({"period": str}))
    o = report.overall
    return {
        "data_accounts": len(company.accounts),
        "data_reps": len(company.reps),
        "data_opportunities": len(company.opportunities),
        "data_as_of": str(pd.Timestamp(company.as_of).date()),
        "kpi_win_rate": o["win_rate"],
        "kpi_median_cycle_days": o["median_cycle_days"],
        "kpi_mean_cycle_days": o["mean_cycle_days"],
        "kpi_revenue_per_rep": o["revenue_per_rep"],
        "kpi_won_revenue_last_year": o["won_revenue"],
        "kpi_selling_time_share": o.get("selling_time_share"),
        "kpi_open_pipeline_value": o["open_pipeline_value"],
    }
