"""A scenario's quota plan, end to end: basis, target, distributions, method, periods, relief, capacity.

:func:`plan_quotas` is what the ``quota`` stage runs. It takes tables, not file paths:

1. the **rep basis** (:func:`~salesops_models.quota.basis.rep_basis`) on the plan's roster, accounts
   and bookings (under a territory plan, history follows the accounts, so potential, prior-year,
   trailing and forecast figures all describe the same new territories); reps without any basis
   (no accounts, no history) get a typical rep's basis (:func:`impute_typical_basis`);
2. the **company target**: the scenario's, else the (reconciled) forecast's plan-year total, else
   prior-year bookings x (1 + ``target_growth``);
3. the **bookings distributions** per rep: pipeline samples, else rep-level forecast quantiles,
   else a lognormal from history (:func:`parametric_distribution`);
4. the chosen **method**, and every other one for the fairness table;
5. **relief** for accounts moving mid-year, the **split by period**, and the carried-quota
   **capacity plan** (:func:`~salesops_models.quota.capacity.carried_quota_plan`) whose default
   productivity makes a ramped rep's expected bookings equal last year's bookings per ramped rep
   (:func:`prior_year_productivity`, over the attainment factor).

Every ``*_source`` it reports names the input a figure came from: the labels of the caller's
tables (``forecast_label``, ``samples_label``) or ``scenario``, ``prior_year_growth``, ``ttm``,
``parametric_lognormal``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError, InfeasibleError
from salesops_models.quota.allocation import COMPONENTS
from salesops_models.quota.basis import annual_cv_from_history, bookings_growth, rep_basis
from salesops_models.quota.capacity import CapacityPlan, carried_quota_plan
from salesops_models.quota.config import METHODS, QuotaConfig
from salesops_models.quota.equal_chance import (
    BookingsDistribution,
    LognormalBookings,
    QuantileBookings,
    SampleBookings,
    annual_quantiles_from_monthly,
    equal_chance_p,
)
from salesops_models.quota.fairness import compare_methods, fairness_figures, run_method
from salesops_models.quota.optimise import Subtotal
from salesops_models.quota.periods import (
    quota_relief,
    seasonal_profile_from_forecast,
    seasonal_profile_from_history,
    split_by_period,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------


def plan_year_forecast(forecast: pd.DataFrame | None, plan_year: int) -> pd.DataFrame | None:
    """The forecast rows of ``plan_year`` (one model: a combination when several are stacked)."""
    if forecast is None or forecast.empty:
        return None
    f = forecast.copy()
    f["month"] = pd.to_datetime(f["month"])
    f = f[f["month"].dt.year == plan_year]
    if "model" in f and f["model"].nunique() > 1:
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


def company_target(
    scenario_target: float | None,
    forecast: pd.DataFrame | None,
    cfg: QuotaConfig,
    prior_year_total: float,
    forecast_label: str = "forecast",
) -> tuple[float, str]:
    """The company target [currency/yr] and where it came from.

    Returns ``(target, source)``: ``scenario``; ``forecast_label`` (the company level of the
    forecast); ``<forecast_label>:rep_sum`` (its rep level added up); ``prior_year_growth``.
    """
    if scenario_target is not None:
        return float(scenario_target), "scenario"
    if forecast is not None:
        comp = forecast_level(forecast, cfg.forecast_company_level, "company")
        if not comp.empty:
            return float(comp["mean"].sum()), forecast_label
        rep = forecast_level(forecast, cfg.forecast_rep_level, "rep")
        if not rep.empty:
            return float(rep["mean"].sum()), f"{forecast_label}:rep_sum"
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
    basis: pd.DataFrame,
    samples: pd.DataFrame | None,
    forecast: pd.DataFrame | None,
    bookings: pd.DataFrame,
    cfg: QuotaConfig,
    *,
    samples_label: str = "rep_bookings_samples",
    forecast_label: str = "forecast",
) -> tuple[BookingsDistribution, str]:
    """Attainable bookings per rep and their source: samples, else rep-level forecast quantiles, else
    a lognormal from history (``parametric_lognormal``).

    Reps of ``basis`` missing from the samples book 0 in every trial (with a warning).
    """
    if samples is not None:
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
        return SampleBookings(samples[samples["rep_id"].isin(basis.index)]), samples_label
    if forecast is not None:
        rep = forecast_level(forecast, cfg.forecast_rep_level, "rep")
        if not rep.empty and set(basis.index) <= set(rep["series"].astype(str)):
            annual = annual_quantiles_from_monthly(rep, cfg.forecast_month_correlation)
            return QuantileBookings(annual.loc[list(basis.index)]), forecast_label
    cv: float | pd.Series = cfg.default_cv
    if cfg.cv_from_history:
        cv = annual_cv_from_history(bookings, basis.index, default=cfg.default_cv)
    growth = bookings_growth(bookings)
    if growth is None:
        growth = cfg.target_growth
    return parametric_distribution(basis, growth, cv), "parametric_lognormal"


def impute_typical_basis(basis: pd.DataFrame, weights: dict[str, float]) -> tuple[pd.DataFrame, list[str]]:
    """Give reps with no basis at all (no accounts, no history, no forecast) a typical rep's basis.

    Each weighted component (potential, prior-year, trailing, forecast) is set to its median over
    the reps with a full prior year; ``fair_shares`` then scales it by the rep's ramp, so a rep
    without history carries a typical rep's quota at his ramp. Returns the basis (with a boolean
    ``basis_imputed`` column) and the ids imputed.
    """
    used = [k for k in COMPONENTS if weights.get(k, 0.0) > 0]
    out = basis.copy()
    out["basis_imputed"] = False
    if not used:
        return out, []
    empty = (out[used].sum(axis=1) <= 0).to_numpy()
    if not empty.any():
        return out, []
    peers = out[~empty & out["full_history"].astype(bool)]
    if peers.empty:
        peers = out[~empty]
    if peers.empty:
        return out, []  # nobody has anything: fair_shares reports it
    for k in COMPONENTS:
        out.loc[empty, k] = float(peers[k].median())
    out.loc[empty, "basis_imputed"] = True
    ids = list(out.index[empty])
    log.warning(
        "quota: %d rep(s) without accounts or history (%s) get a typical rep's basis (the median of %d peers) at their ramp",
        len(ids),
        ", ".join(map(str, ids[:5])),
        len(peers),
    )
    return out, ids


def prior_year_productivity(basis: pd.DataFrame) -> float:
    """Prior-year bookings per ramped rep [currency/yr]: the default productivity of the capacity plan.

    Notes
    -----
    :math:`P = \\sum_r PY_r / \\sum_r \\rho^{prior}_r`, with :math:`\\rho^{prior}_r` each rep's mean ramp
    over the prior year (0 before he was hired): last year's bookings over last year's ramped FTE.
    It does not depend on the target, so the hires a target needs grow with the target.
    """
    fte = (
        float(basis["prior_year_ramp"].sum())
        if "prior_year_ramp" in basis
        else float(basis["ramp_factor"].sum())
    )
    py = float(basis["prior_year"].sum())
    if fte <= 0 or py <= 0:
        raise DataValidationError(
            "bookings",
            [
                "no prior-year bookings or no rep employed in the prior year: the capacity plan cannot derive a "
                "rep's productivity. Fix: set quota.capacity.productivity."
            ],
        )
    return py / fte


# ------------------------------------------------------------------------------------------------
# the plan
# ------------------------------------------------------------------------------------------------


@dataclass
class QuotaPlan:
    """Quotas of a scenario and everything shown next to them.

    Attributes
    ----------
    quotas
        One row per rep (index rep_id): quota [currency/yr], fair-share components, bounds, p_attain,
        relief, method, region, manager, basis columns used.
    by_period
        Quotas by month and quarter (``rep_id, period, period_type, quota``).
    basis
        The rep basis the quotas rest on.
    fairness
        Every method side by side (None when not compared).
    relief
        Relief per moving account (None without account moves).
    capacity
        The carried-quota capacity plan (None when disabled).
    """

    quotas: pd.DataFrame
    by_period: pd.DataFrame
    basis: pd.DataFrame
    target: float
    target_source: str
    distribution: BookingsDistribution
    distribution_source: str
    forecast_source: str
    method: str
    fairness_figures: dict[str, Any]
    equal_chance_p: float | None
    fairness: pd.DataFrame | None = None
    relief: pd.DataFrame | None = None
    capacity: CapacityPlan | None = None
    capacity_productivity_source: str | None = None
    solver: dict[str, Any] = field(default_factory=dict)
    imputed: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        """Headline figures (the ``quota_*`` metrics without the prefix)."""
        out: dict[str, Any] = {
            "total": float(self.quotas["quota"].sum()),
            "method": self.method,
            "p_attain_spread": self.fairness_figures.get("p_attain_spread"),
            "equal_chance_p": self.equal_chance_p,
            "company_target": float(self.target),
            "target_source": self.target_source,
            "distribution_source": self.distribution_source,
            "forecast_component_source": self.forecast_source,
            "to_potential_cv": self.fairness_figures["quota_to_potential_cv"],
            "expected_share_at_quota": self.fairness_figures.get("expected_share_at_quota"),
            "solver_status": self.solver.get("status"),
            "solver_termination": self.solver.get("termination"),
            "relief_total": float(self.relief["relief"].sum()) if self.relief is not None else 0.0,
            "reps": len(self.quotas),
            "reps_imputed_basis": len(self.imputed),
            "history_rebased_total": float(self.basis["history_rebased"].abs().sum()) / 2.0,
        }
        if self.capacity is not None:
            out.update(self.capacity.summary())
            out["capacity_productivity"] = float(self.capacity.productivity)
            out["capacity_productivity_source"] = self.capacity_productivity_source
        return out


def plan_quotas(
    *,
    reps: pd.DataFrame,
    accounts: pd.DataFrame,
    bookings: pd.DataFrame,
    as_of: pd.Timestamp,
    plan_year: int,
    cfg: QuotaConfig,
    scenario_target: float | None = None,
    forecast: pd.DataFrame | None = None,
    samples: pd.DataFrame | None = None,
    history_bookings: pd.DataFrame | None = None,
    forecast_label: str = "forecast",
    samples_label: str = "rep_bookings_samples",
) -> QuotaPlan:
    """Set the quotas of a plan (see the module docstring).

    Parameters
    ----------
    reps, accounts, bookings
        The plan's roster, accounts (``owner_rep_id``: owner in the plan) and bookings (under a
        territory plan: re-based, history following the accounts).
    as_of
        Snapshot date of the data.
    plan_year
        The planned year.
    cfg
        The scenario's ``quota:`` section.
    scenario_target
        The scenario's ``company_target`` [currency/yr], or None.
    forecast
        The plan-year forecast table (every level), or None.
    samples
        Simulated plan-year bookings per trial and rep (``trial, rep_id, bookings``), or None.
    history_bookings
        Bookings before any realignment: ``history_rebased`` is the difference of prior-year
        bookings (None: no realignment).
    forecast_label, samples_label
        Names of the forecast and the samples in the ``*_source`` figures.

    Raises
    ------
    InfeasibleError
        The chosen method has no solution (with what to relax).
    """
    weights = cfg.weights.as_dict()
    forecast = plan_year_forecast(forecast, plan_year)
    rep_forecast = None
    if forecast is not None:
        rep_rows = forecast_level(forecast, cfg.forecast_rep_level, "rep")
        if not rep_rows.empty:
            rep_forecast = rep_rows.groupby(rep_rows["series"].astype(str))["mean"].sum()
    basis = rep_basis(
        reps, accounts, bookings, plan_year, ramp=cfg.ramp, as_of=as_of, rep_forecast=rep_forecast
    )
    if history_bookings is not None:
        before = rep_basis(reps, accounts, history_bookings, plan_year, ramp=cfg.ramp, as_of=as_of)
        basis["history_rebased"] = basis["prior_year"] - before["prior_year"]
    basis, imputed = impute_typical_basis(basis, weights)
    target, target_source = company_target(
        scenario_target, forecast, cfg, float(basis["prior_year"].sum()), forecast_label
    )
    total = target * (1 + cfg.over_assignment)
    dist, dist_source = bookings_distribution(
        basis, samples, forecast, bookings, cfg, samples_label=samples_label, forecast_label=forecast_label
    )
    forecast_source = forecast_label if rep_forecast is not None else "ttm"
    if rep_forecast is None and samples is not None:
        # no rep-level forecast: the pipeline's expected plan-year bookings are the next best forecast
        basis["forecast"] = dist.mean()[dist.reindex(basis.index)]
        forecast_source = samples_label

    subtotals: list[Subtotal] = []
    if cfg.region_tolerance is not None or cfg.manager_tolerance is not None:
        from salesops_models.quota.allocation import fair_shares

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
    fairness = None
    if cfg.compare_methods:
        others = tuple(m for m in METHODS if m != cfg.method)
        table, _ = compare_methods(others, basis, target, weights, dist=dist, **kwargs)
        fairness = pd.concat([pd.DataFrame([{**fair_fig, "error": ""}]), table], ignore_index=True)
        fairness["chosen"] = fairness["method"] == cfg.method
    try:
        p_common = (
            result.extra["equal_chance_p"]
            if cfg.method == "equal_chance"
            else equal_chance_p(dist, total, basis.index)
        )
    except InfeasibleError as exc:
        log.warning("quota: no common attainment probability: %s", exc)
        p_common = None

    comp_rows = (
        forecast_level(forecast, cfg.forecast_company_level, "company") if forecast is not None else None
    )
    if cfg.seasonality == "forecast" and comp_rows is not None and not comp_rows.empty:
        profile = seasonal_profile_from_forecast(comp_rows)
    elif cfg.seasonality == "flat":
        profile = np.full(12, 1 / 12)
    else:
        profile = seasonal_profile_from_history(bookings)
    quotas = result.quotas.copy()
    quotas["quota_before_relief"] = quotas["quota"]
    relief = None
    if cfg.account_moves:
        moves = pd.DataFrame([m.model_dump() for m in cfg.account_moves])
        own = accounts.set_index("account_id")["owner_rep_id"].astype(str)
        relief = quota_relief(moves, accounts, own, quotas["quota"], profile, plan_year)
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
    quotas["basis_imputed"] = basis["basis_imputed"]
    quotas["history_rebased"] = basis["history_rebased"]

    capacity = productivity_source = None
    if cfg.capacity.enabled:
        if cfg.capacity.productivity is not None:
            productivity, productivity_source = float(cfg.capacity.productivity), "scenario"
        else:
            # last year's bookings per ramped rep are what a ramped rep books on average, P x f:
            # full productivity P is that over the attainment factor f
            productivity = prior_year_productivity(basis) / cfg.capacity.attainment_factor
            productivity_source = "prior_year_per_ramped_rep"
        capacity = carried_quota_plan(
            total,
            basis["tenure_months"].clip(upper=1200).tolist(),
            ramp=cfg.ramp,
            productivity=productivity,
            attainment_factor=cfg.capacity.attainment_factor,
            monthly_attrition=cfg.capacity.monthly_attrition,
            backfill_months=cfg.capacity.backfill_months,
            hiring_plan=cfg.capacity.hiring_plan,
        )
    return QuotaPlan(
        quotas=quotas,
        by_period=by_period,
        basis=basis,
        target=float(target),
        target_source=target_source,
        distribution=dist,
        distribution_source=dist_source,
        forecast_source=forecast_source,
        method=cfg.method,
        fairness_figures=fair_fig,
        equal_chance_p=p_common,
        fairness=fairness,
        relief=relief,
        capacity=capacity,
        capacity_productivity_source=productivity_source,
        solver={k: result.extra.get(k) for k in ("status", "termination", "mip_gap")},
        imputed=imputed,
    )
