"""Stage ``quota``: the company target split into rep quotas, by period, with fairness figures.

Reads reps, accounts, bookings, and when earlier stages ran: ``assignments`` (territory),
``forecast`` (forecast), ``rep_bookings_samples`` (pipeline). Writes ``quotas``,
``quotas_by_period``, ``quota_fairness`` (every method side by side), ``quota_relief`` (when
accounts move mid-year) and ``quota_capacity`` (carried-quota plan).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError, InfeasibleError
from salesops_models.quota import (
    BookingsDistribution,
    LognormalBookings,
    QuantileBookings,
    SampleBookings,
    Subtotal,
    annual_quantiles_from_monthly,
    carried_quota_plan,
    compare_methods,
    equal_chance_p,
    fair_shares,
    fairness_figures,
    quota_relief,
    rep_basis,
    run_method,
    seasonal_profile_from_forecast,
    seasonal_profile_from_history,
    split_by_period,
)
from salesops_models.quota.basis import annual_cv_from_history, bookings_growth
from salesops_models.quota.config import METHODS, QuotaConfig
from salesops_models.workflow.context import StageContext

log = logging.getLogger(__name__)


def _plan_year_forecast(forecast: pd.DataFrame | None, plan_year: int) -> pd.DataFrame | None:
    if forecast is None or forecast.empty:
        return None
    f = forecast.copy()
    f["month"] = pd.to_datetime(f["month"])
    f = f[f["month"].dt.year == plan_year]
    if "model" in f and f["model"].nunique() > 1:
        # several models side by side: prefer the one named like a combination/selected, else the first
        models = list(f["model"].unique())
        pick = next(
            (m for m in models if str(m).lower() in {"combination", "combo", "selected", "best"}), models[0]
        )
        f = f[f["model"] == pick]
    return f if not f.empty else None


def forecast_level(forecast: pd.DataFrame, wanted: str | None, kind: str) -> pd.DataFrame:
    """Rows of the forecast table at the company or rep level (``kind``), with rep ids as ``series``."""
    levels = [str(v) for v in forecast["level"].unique()]
    if wanted is not None:
        pick = wanted if wanted in levels else None
    elif kind == "company":
        pick = next((lv for lv in ("total", "company") if lv in levels), None)
    else:
        pick = next(
            (lv for lv in levels if lv in ("rep", "rep_id") or lv.endswith("/rep_id") or lv.endswith("/rep")),
            None,
        )
    if pick is None:
        return forecast.iloc[0:0]
    rows = forecast[forecast["level"].astype(str) == pick]
    if kind == "rep":
        rows = rows.assign(series=rows["series"].astype(str).str.split("/").str[-1])
    return rows


def company_target_for(
    ctx_target: float | None, forecast: pd.DataFrame | None, cfg: QuotaConfig, prior_year_total: float
) -> tuple[float, str]:
    """The company target and where it came from (scenario, forecast, or prior year x growth)."""
    if ctx_target is not None:
        return float(ctx_target), "scenario"
    if forecast is not None:
        comp = forecast_level(forecast, cfg.forecast_company_level, "company")
        if not comp.empty:
            return float(comp["mean"].sum()), "forecast"
        rep = forecast_level(forecast, cfg.forecast_rep_level, "rep")
        if not rep.empty:
            return float(rep["mean"].sum()), "forecast_rep_sum"
        log.warning(
            "quota: forecast table has no level %r or %r; target from prior year x growth",
            cfg.forecast_company_level,
            cfg.forecast_rep_level,
        )
    if prior_year_total <= 0:
        raise DataValidationError(
            "bookings",
            [
                "no prior-year bookings, no forecast table and no scenario company_target: nothing to derive the "
                "quota target from. Fix: set company_target in the scenario, or run the forecast stage."
            ],
        )
    return prior_year_total * (1.0 + cfg.target_growth), "prior_year_growth"


def parametric_distribution(basis: pd.DataFrame, growth: float, cv: float | pd.Series) -> LognormalBookings:
    """Lognormal attainable bookings per rep when neither samples nor forecast quantiles exist.

    Parameters
    ----------
    basis
        Per-rep basis (``growth_reference``, ``has_growth_bounds``, ``ramp_factor``).
    growth
        Expected growth of bookings over last year, e.g. the company's recent year-on-year growth [share].
    cv
        Coefficient of variation per rep or for everyone [share].

    Notes
    -----
    Mean ``mu_r = (1 + g) G_r`` with ``G_r`` last year's bookings at this year's ramp; reps without
    history get ``rho_r`` x the median ``G`` of fully ramped reps with history. The mean does not
    depend on the target, so P(attain) falls as the target rises.
    """
    ref = basis["growth_reference"].astype(float)
    hist = basis["has_growth_bounds"].astype(bool)
    ramped = hist & (basis["ramp_factor"] >= 1.0 - 1e-9)
    typical = (
        float(ref[ramped].median()) if ramped.any() else float(ref[hist].median()) if hist.any() else 1.0
    )
    mean = pd.Series(np.where(hist, ref, basis["ramp_factor"] * typical), index=basis.index) * (1.0 + growth)
    mean = mean.clip(lower=1e-6 * max(float(mean.max()), 1.0))
    return LognormalBookings(mean, cv)


def bookings_distribution(
    ctx: StageContext, basis: pd.DataFrame, forecast: pd.DataFrame | None, cfg: QuotaConfig
) -> tuple[BookingsDistribution, str]:
    """Samples from the pipeline stage, else rep-level forecast quantiles, else a parametric fallback."""
    if ctx.has_table("rep_bookings_samples"):
        samples = ctx.read_table("rep_bookings_samples")
        samples = samples.assign(rep_id=samples["rep_id"].astype(str))
        missing = sorted(set(basis.index) - set(samples["rep_id"]))
        if missing:
            log.warning(
                "quota: %d reps have no pipeline samples (e.g. %s): 0 bookings in every trial",
                len(missing),
                missing[:3],
            )
            trials = samples["trial"].unique()
            extra = pd.DataFrame(
                {"trial": np.repeat(trials, len(missing)), "rep_id": missing * len(trials), "bookings": 0.0}
            )
            samples = pd.concat([samples, extra], ignore_index=True)
        return SampleBookings(samples[samples["rep_id"].isin(basis.index)]), "pipeline_samples"
    if forecast is not None:
        rep = forecast_level(forecast, cfg.forecast_rep_level, "rep")
        if not rep.empty and set(basis.index) <= set(rep["series"].astype(str)):
            annual = annual_quantiles_from_monthly(rep, cfg.forecast_month_correlation)
            return QuantileBookings(annual.loc[list(basis.index)]), "forecast_quantiles"
    cv: float | pd.Series = cfg.default_cv
    if cfg.cv_from_history:
        cv = annual_cv_from_history(ctx.company.bookings, basis.index, default=cfg.default_cv)
    growth = bookings_growth(ctx.company.bookings)
    if growth is None:
        growth = cfg.target_growth
    return parametric_distribution(basis, growth, cv), "parametric_lognormal"


def run(ctx: StageContext) -> dict[str, Any]:
    """Set the scenario's quotas; write ``quotas``, ``quotas_by_period`` and companions; return metrics.

    Order of work: rep basis (owners from ``assignments`` when present, reps placed by the territory
    stage included) -> company target (scenario, forecast, or prior year x growth) -> bookings
    distributions (pipeline samples, forecast quantiles, or parametric) -> the chosen method, and
    every other one for ``quota_fairness`` -> relief, seasonality split, capacity plan.
    """
    t0 = time.perf_counter()
    cfg = ctx.scenario.quota
    company = ctx.company
    plan_year = ctx.scenario.plan_year
    weights = cfg.weights.as_dict()

    owner = None
    if ctx.has_table("assignments"):
        asg = ctx.read_table("assignments")
        owner = pd.Series(asg["rep_id"].astype(str).to_numpy(), index=asg["account_id"].astype(str))
    forecast = _plan_year_forecast(
        ctx.read_table("forecast") if ctx.has_table("forecast") else None, plan_year
    )
    rep_forecast = None
    if forecast is not None:
        rep_rows = forecast_level(forecast, cfg.forecast_rep_level, "rep")
        if not rep_rows.empty:
            rep_forecast = rep_rows.groupby(rep_rows["series"].astype(str))["mean"].sum()

    reps = company.reps
    if ctx.has_table("territory_new_reps"):
        # reps the territory stage placed: hired at the start of the plan year unless stated, so they ramp
        new = ctx.read_table("territory_new_reps")
        new = new.assign(rep_id=new["rep_id"].astype(str))
        hire = pd.to_datetime(new["hire_date"]) if "hire_date" in new else pd.Series(pd.NaT, index=new.index)
        new["hire_date"] = hire.fillna(pd.Timestamp(year=plan_year, month=1, day=1))
        reps = pd.concat([reps, new[~new["rep_id"].isin(reps["rep_id"].astype(str))]], ignore_index=True)
    basis = rep_basis(
        reps,
        company.accounts,
        company.bookings,
        plan_year,
        ramp=cfg.ramp,
        as_of=company.as_of,
        owner=owner,
        rep_forecast=rep_forecast,
    )
    target, target_source = company_target_for(
        ctx.scenario.company_target, forecast, cfg, float(basis["prior_year"].sum())
    )
    total = target * (1 + cfg.over_assignment)
    dist, dist_source = bookings_distribution(ctx, basis, forecast, cfg)
    forecast_source = "forecast" if rep_forecast is not None else "ttm"
    if rep_forecast is None and dist_source == "pipeline_samples":
        # no rep-level forecast: the pipeline's expected plan-year bookings are the next best forecast
        basis["forecast"] = dist.mean()[dist.reindex(basis.index)]
        forecast_source = "pipeline_mean"

    subtotals: list[Subtotal] = []
    if cfg.region_tolerance is not None or cfg.manager_tolerance is not None:
        fair = fair_shares(basis, weights)["fair_weight"] * total
        for col, tol in (("region", cfg.region_tolerance), ("manager", cfg.manager_tolerance)):
            if tol is not None and basis[col].notna().any():
                subtotals.append(Subtotal(col, fair.groupby(basis[col]).sum().to_dict(), tol))
    kwargs: dict[str, Any] = {
        "submissions": pd.Series(dist.mean()[dist.reindex(basis.index)], index=basis.index),
        "over_assignment": cfg.over_assignment,
        "rounding_unit": cfg.rounding_unit,
        "growth_min": cfg.growth_min,
        "growth_max": cfg.growth_max,
        "subtotals": tuple(subtotals),
        "bottom_up_blend": cfg.bottom_up_blend,
        "time_limit": cfg.time_limit,
        "mip_rel_gap": cfg.mip_rel_gap,
    }
    result = run_method(cfg.method, basis, target, weights, dist=dist, **kwargs)
    fair_fig = fairness_figures(result, basis, dist)

    if cfg.compare_methods:
        others = tuple(m for m in METHODS if m != cfg.method)
        table, _ = compare_methods(others, basis, target, weights, dist=dist, **kwargs)
        fair_fig_row = {**fair_fig, "error": ""}
        table = pd.concat([pd.DataFrame([fair_fig_row]), table], ignore_index=True)
        table["chosen"] = table["method"] == cfg.method
        ctx.write_table("quota_fairness", table)

    try:
        p_common = (
            result.extra["equal_chance_p"]
            if cfg.method == "equal_chance"
            else equal_chance_p(dist, total, basis.index)
        )
    except InfeasibleError as exc:
        log.warning("quota: no common attainment probability: %s", exc)
        p_common = None

    # seasonality, relief, periods
    comp_rows = (
        forecast_level(forecast, cfg.forecast_company_level, "company") if forecast is not None else None
    )
    if cfg.seasonality == "forecast" and comp_rows is not None and not comp_rows.empty:
        profile = seasonal_profile_from_forecast(comp_rows)
    elif cfg.seasonality == "flat":
        profile = np.full(12, 1 / 12)
    else:
        profile = seasonal_profile_from_history(company.bookings)
    quotas = result.quotas.copy()
    quotas["quota_before_relief"] = quotas["quota"]
    relief = None
    if cfg.account_moves:
        moves = pd.DataFrame([m.model_dump() for m in cfg.account_moves])
        own = (
            owner
            if owner is not None
            else company.accounts.set_index("account_id")["owner_rep_id"].astype(str)
        )
        relief = quota_relief(moves, company.accounts, own, quotas["quota"], profile, plan_year)
        ctx.write_table("quota_relief", relief.assign(effective_date=relief["effective_date"].astype(str)))
        delta = (
            relief.groupby("to_rep_id")["relief"]
            .sum()
            .sub(relief.groupby("from_rep_id")["relief"].sum(), fill_value=0.0)
        )
        quotas["quota"] = quotas["quota"].add(delta.reindex(quotas.index).fillna(0.0))
        quotas["p_attain"] = dist.p_attain(quotas["quota"])
    quotas["relief"] = quotas["quota"] - quotas["quota_before_relief"]
    ramp = basis[[f"ramp_m{m}" for m in range(1, 13)]].set_axis(list(range(1, 13)), axis=1)
    by_period = split_by_period(
        quotas["quota_before_relief"],
        profile,
        plan_year,
        ramp=ramp,
        relief=relief,
        unit=cfg.period_rounding_unit,
    )
    quotas["method"] = cfg.method
    quotas["region"] = basis["region"]
    quotas["manager"] = basis["manager"]
    ctx.write_table("quotas", quotas.reset_index())
    ctx.write_table("quotas_by_period", by_period)

    metrics: dict[str, Any] = {
        "quota_total": float(quotas["quota"].sum()),
        "quota_method": cfg.method,
        "quota_p_attain_spread": fair_fig.get("p_attain_spread"),
        "quota_equal_chance_p": p_common,
        "quota_company_target": float(target),
        "quota_target_source": target_source,
        "quota_distribution_source": dist_source,
        "quota_forecast_component_source": forecast_source,
        "quota_to_potential_cv": fair_fig["quota_to_potential_cv"],
        "quota_expected_share_at_quota": fair_fig.get("expected_share_at_quota"),
        "quota_solver_status": result.extra.get("status"),
        "quota_relief_total": float(relief["relief"].sum()) if relief is not None else 0.0,
    }
    if cfg.capacity.enabled:
        ramped = float(basis["ramp_factor"].sum())
        productivity = cfg.capacity.productivity or (
            float(quotas["quota"].sum()) / ramped if ramped > 0 else 1.0
        )
        plan = carried_quota_plan(
            total,
            basis["tenure_months"].clip(upper=1200).tolist(),
            ramp=cfg.ramp,
            productivity=productivity,
            attainment_factor=cfg.capacity.attainment_factor,
            monthly_attrition=cfg.capacity.monthly_attrition,
            backfill_months=cfg.capacity.backfill_months,
            hiring_plan=cfg.capacity.hiring_plan,
        )
        ctx.write_table("quota_capacity", plan.monthly)
        metrics.update({f"quota_{k}": v for k, v in plan.summary().items()})
    metrics["quota_seconds"] = time.perf_counter() - t0
    return metrics
