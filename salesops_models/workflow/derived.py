"""Figures the scenario report and the exports both derive from a scenario's tables.

Each function takes a :class:`~salesops_models.workflow.collect.ScenarioResults` (or a table), calls
the model that owns the arithmetic (quota risk, commission accrual, territory balance) and returns a
table, or None when an input table is missing, so the report and ``plan.xlsx`` show the same numbers.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from salesops_models.compensation.accrual import accrued_cost_by_month, month_shares_from_quarters
from salesops_models.kpi import pipeline_coverage as pipeline_coverage_ratio
from salesops_models.quota.risk import QuarterlyAttainmentRisk, quarterly_attainment_risk
from salesops_models.territory.result import balance_index
from salesops_models.workflow.charts import balance_metrics
from salesops_models.workflow.collect import ScenarioResults

log = logging.getLogger(__name__)


def plan_year(results: ScenarioResults) -> int | None:
    """The scenario's plan year, from the resolved scenario or the quarterly quotas."""
    year = results.resolved.get("plan_year")
    if year is not None:
        return int(year)
    per = results.table("quotas_by_period")
    if per is not None and "period" in per.columns and len(per):
        return int(str(per["period"].iloc[0])[:4])
    return None


def attainment_risk(results: ScenarioResults) -> QuarterlyAttainmentRisk | None:
    """P(attain) per rep and quarter (quota package), or None without quarterly samples and quotas."""

    def build() -> QuarterlyAttainmentRisk | None:
        samples = results.table("bookings_by_quarter_samples")
        quotas = results.table("quotas_by_period")
        if samples is None or quotas is None:
            return None
        return quarterly_attainment_risk(samples, quotas)

    return results.derived("attainment_risk", build)


def quotas_by_rep_quarter(results: ScenarioResults) -> pd.DataFrame | None:
    """One row per rep: ``rep_id``, ``rep_name``, ``region``, ``manager``, one column per quarter and
    ``year`` (their sum, the annual quota after relief) [currency]."""
    per = results.table("quotas_by_period")
    if per is None or not {"rep_id", "period", "period_type", "quota"} <= set(per.columns):
        return None
    q = per[per["period_type"] == "quarter"]
    wide = q.pivot_table(index="rep_id", columns="period", values="quota", aggfunc="sum", sort=True)
    wide.columns = [str(c) for c in wide.columns]
    wide["year"] = wide.sum(axis=1)
    wide = wide.reset_index()
    wide["rep_id"] = wide["rep_id"].astype(str)
    return with_rep_details(results, wide)


def with_rep_details(results: ScenarioResults, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (with ``rep_id``) with each rep's name, region and manager put in front when known."""
    info = []
    reps = results.company("reps")
    if reps is not None and "rep_id" in reps.columns:
        info.append(reps.assign(rep_id=reps["rep_id"].astype(str)).set_index("rep_id"))
    quotas = results.table("quotas")
    if quotas is not None and "rep_id" in quotas.columns:
        info.append(quotas.assign(rep_id=quotas["rep_id"].astype(str)).set_index("rep_id"))
    out = df.copy()
    for col in ("manager", "region", "rep_name"):
        if col in out.columns:
            continue
        for source in info:
            if col in source.columns:
                out.insert(1, col, out["rep_id"].map(source[col][~source.index.duplicated()]))
                break
    return out


def month_labels(results: ScenarioResults) -> list[str] | None:
    year = plan_year(results)
    return None if year is None else [f"{year}-{m:02d}" for m in range(1, 13)]


def cost_by_month(results: ScenarioResults) -> tuple[pd.DataFrame, str] | None:
    """Commission cost accrued by month with P10/P50/P90 (compensation.accrual), and how variable pay
    was spread over the months, or None without ``comp_cost_samples``."""
    cost = results.table("cost_samples")
    months = month_labels(results)
    if cost is None or months is None or not {"base_cost", "variable_cost"} <= set(cost.columns):
        return None
    cost = cost.sort_values("trial") if "trial" in cost.columns else cost
    weights, weight_source = _month_weights(results, months)
    shares: np.ndarray | None = None
    source = str(results.metrics.get("comp_attainment_source") or "")
    quarterly = results.table("bookings_by_quarter_samples")
    # samples-based attainment: "rep_bookings_samples/<quotas>" (earlier versions wrote "pipeline/...")
    if quarterly is not None and source.startswith(("rep_bookings_samples", "pipeline")) and "trial" in cost.columns:
        company = quarterly.pivot_table(index="trial", columns="quarter", values="bookings", aggfunc="sum")
        company = company.reindex(index=cost["trial"].to_numpy(), columns=sorted(company.columns))
        if company.shape[1] == 4 and not company.isna().any().any():
            shares = month_shares_from_quarters(company.to_numpy(float), weights)
            basis = (
                "variable pay accrued with each trial's simulated bookings by quarter, spread over the months "
                f"of a quarter by {weight_source}"
            )
    if shares is None:
        shares = weights / weights.sum()
        basis = f"variable pay accrued by {weight_source} (no per-trial quarterly bookings for this attainment set)"
    table = accrued_cost_by_month(cost, shares, months)
    return table, basis + "; base salaries spread evenly"


def _month_weights(results: ScenarioResults, months: list[str]) -> tuple[np.ndarray, str]:
    """Twelve month weights: expected simulated bookings, else the company's monthly quota, else flat."""
    by_month = results.table("pipeline_by_month")
    if by_month is not None and {"period", "mean"} <= set(by_month.columns):
        w = by_month.set_index(by_month["period"].astype(str))["mean"].reindex(months)
        if w.notna().all() and (w >= 0).all() and w.sum() > 0:
            return w.to_numpy(float), "the expected simulated bookings of each month"
    per = results.table("quotas_by_period")
    if per is not None and {"period", "period_type", "quota"} <= set(per.columns):
        m = per[per["period_type"] == "month"].groupby("period")["quota"].sum().reindex(months)
        if m.notna().all() and m.sum() > 0:
            return m.to_numpy(float), "the company's monthly quota"
    return np.ones(12), "equal months"


def balance_summary(territories: pd.DataFrame) -> pd.DataFrame | None:
    """Per balanced metric: max/min ratio and CV of the capacity-adjusted loads (territory.balance_index),
    largest deviation from target and share of territories inside their band."""
    rows = []
    for m in balance_metrics(territories):
        target = territories.get(f"{m}_target")
        if target is None:
            continue
        mm, cv = balance_index(territories[m].to_numpy(float), target.to_numpy(float))
        inside = np.nan
        if {f"{m}_lower", f"{m}_upper"} <= set(territories.columns):
            v = territories[m].to_numpy(float)
            lo, hi = territories[f"{m}_lower"].to_numpy(float), territories[f"{m}_upper"].to_numpy(float)
            inside = float(np.mean((v >= lo - 1e-9 * np.abs(lo)) & (v <= hi + 1e-9 * np.abs(hi))))
        rows.append(
            {
                "metric": m,
                "max_min": mm,
                "cv": cv,
                "max_abs_deviation": float(territories[f"{m}_deviation"].abs().max()),
                "within_band": inside,
            }
        )
    return pd.DataFrame(rows) if rows else None


def pipeline_coverage(results: ScenarioResults) -> pd.DataFrame | None:
    """Per rep: open pipeline over the quota still to book (kpi.pipeline_coverage) [x], raw and weighted
    by P(win | stage, age), and the simulated P50 bookings over quota [x]."""
    quotas = results.table("quotas")
    summary = results.table("pipeline_summary")
    if quotas is None or summary is None or "quota" not in quotas.columns:
        return None
    q = quotas.assign(rep_id=quotas["rep_id"].astype(str)).set_index("rep_id")["quota"]
    s = summary.assign(rep_id=summary["rep_id"].astype(str)).set_index("rep_id")
    out = pd.DataFrame({"quota": q})
    for col in ("closed_to_date", "open_deals", "open_value_age_aware", "p50"):
        if col in s.columns:
            out[col] = s[col].reindex(out.index)
    closed = out["closed_to_date"].fillna(0.0) if "closed_to_date" in out else pd.Series(0.0, index=out.index)
    opp = results.company("opportunities")
    if opp is not None and {"status", "amount", "rep_id"} <= set(opp.columns):
        open_ = opp[opp["status"] == "open"]
        by_rep = open_.groupby(open_["rep_id"].astype(str))["amount"].sum()
        out["open_value"] = by_rep.reindex(out.index).fillna(0.0)
    for value, name in (("open_value", "coverage"), ("open_value_age_aware", "coverage_weighted")):
        if value in out:
            out[name] = [
                pipeline_coverage_ratio(v, t, c) if t > 0 and not np.isnan(v) else np.nan
                for v, t, c in zip(out[value], out["quota"], closed, strict=True)
            ]
    if "p50" in out:
        out["simulated_p50_to_quota"] = out["p50"] / out["quota"].where(out["quota"] > 0)
    out = out.reset_index(names="rep_id")
    sort = (
        "coverage" if "coverage" in out else "coverage_weighted" if "coverage_weighted" in out else "rep_id"
    )
    return with_rep_details(results, out.sort_values(sort, kind="stable"))


def forecast_by_region(forecast: pd.DataFrame) -> pd.DataFrame | None:
    """Expected bookings per region and quarter and for the plan year [currency] (means add up; the
    quantiles of a quarter do not, so the bands stay monthly in the chart)."""
    if not {"level", "series", "month", "mean"} <= set(forecast.columns):
        return None
    rows = forecast[forecast["level"].astype(str) == "region"]
    if rows.empty:
        return None
    q = pd.to_datetime(rows["month"]).dt.to_period("Q").astype(str).str.replace("Q", "-Q")
    wide = rows.pivot_table(index=rows["series"].astype(str), columns=q, values="mean", aggfunc="sum")
    wide.columns = [str(c) for c in wide.columns]
    wide["year"] = wide.sum(axis=1)
    return wide.reset_index(names="region")
