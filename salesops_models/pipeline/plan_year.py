"""The plan year's bookings from the pipeline: calibrate on history, simulate under the plan.

:func:`simulate_plan_year` is what the ``pipeline`` stage runs, and what a notebook or a test can
call with two companies: ``history`` (as it happened: the calibration's data) and ``plan`` (the same
company under the territory plan, :func:`~salesops_models.data.realign.realign_company`: the roster,
the new owners, open deals and bookings closed to date that followed their accounts). Without a
territory plan the two are the same company.

Steps: calibrate the process on history; estimate the creation response (selling hours against
territory workload, :mod:`~salesops_models.pipeline.scaling`); carry each account's creation to its
plan owner; simulate the plan's open deals and new creation over the 12 months of the plan year;
optionally run the simpy capacity model as a diagnostic.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.data.company import CompanyData
from salesops_models.errors import ScenarioError
from salesops_models.pipeline.calibration import PipelineCalibration, calibrate_pipeline
from salesops_models.pipeline.config import PipelineConfig
from salesops_models.pipeline.quarters import closed_to_date_by_period, quarterly_bookings_samples
from salesops_models.pipeline.scaling import (
    CreationPlan,
    CreationResponse,
    admin_time_scale,
    calibrate_creation_response,
    plan_creation_rates,
    selling_admin_hours,
)
from salesops_models.pipeline.simulation import (
    PipelineSimulation,
    closed_to_date,
    compile_inputs,
    open_pipeline,
    simulate_pipeline,
)

log = logging.getLogger(__name__)

#: the capacity diagnostic draws from child ``CAPACITY_STREAM`` of the stage seed (blocks of the
#: vectorised run are children 0, 1, ...)
CAPACITY_STREAM = 10**6


def plan_year_edges(plan_year: int) -> pd.DatetimeIndex:
    """Month starts of the plan year and 1 January of the next: 13 edges, 12 periods."""
    return pd.date_range(f"{plan_year}-01-01", f"{plan_year + 1}-01-01", freq="MS")


@dataclass
class PlanYearPipeline:
    """The pipeline's view of the plan year.

    Attributes
    ----------
    simulation
        Trials x reps x months of bookings (reps: the plan's roster).
    calibration
        The calibrated process, with the plan's reps and creation rates.
    response
        The creation response used.
    creation
        Creation rates per rep and how they were built (potential, workload, hours, coverage, ramp).
    deals
        Open deals under the plan (owner after the realignment) with their win probabilities.
    rep_summary
        Per rep: bookings distribution, creation, hours, open deals and their age-aware value.
    capacity
        The simpy diagnostic (utilisation, queues), or None.
    """

    simulation: PipelineSimulation
    calibration: PipelineCalibration
    response: CreationResponse
    creation: CreationPlan
    deals: pd.DataFrame
    rep_summary: pd.DataFrame
    admin_time_reduction: float
    closed_by_period: np.ndarray
    capacity: Any = None

    def quarterly_samples(self) -> pd.DataFrame:
        """Bookings per trial, rep and quarter, closed-to-date in the quarter it closed in."""
        return quarterly_bookings_samples(self.simulation, self.closed_by_period)

    def metrics(self) -> dict[str, Any]:
        """Headline figures (the ``pipeline_*`` metrics, without the prefix)."""
        s = self.simulation.summary()
        cs = self.calibration.summary()
        table = self.creation.table
        out: dict[str, Any] = {
            "bookings_p10": s["bookings_p10"],
            "bookings_p50": s["bookings_p50"],
            "bookings_p90": s["bookings_p90"],
            "bookings_mean": s["bookings_mean"],
            "win_rate": s["win_rate"],
            "cycle_days": s["cycle_days"],
            "revenue_per_rep_p50": s["revenue_per_rep_p50"],
            "calibrated_win_rate": cs["win_rate_from_entry"],
            "open_deals": int(len(self.deals)),
            "stale_deals": int(self.deals["stale"].sum()),
            "admin_time_reduction": self.admin_time_reduction,
            "creation_per_week": float(self.creation.rates.sum()),
            "creation_per_week_history": float(table["rate_history"].sum()),
            "trials": int(self.simulation.trials),
            "reps": len(self.simulation.rep_ids),
            "reps_without_history": int((table["source"] == "hire").sum()),
            "coverage_clipped_accounts": int(self.creation.clipped_accounts),
        }
        out.update(self.response.summary())
        if self.capacity is not None:
            cm = self.capacity.summary()
            out["capacity_bookings_p50"] = cm["bookings_p50"] + float(self.simulation.closed_to_date.sum())
            out["capacity_utilisation"] = cm["utilisation"]
            out["capacity_queue_days"] = cm["queue_days_mean"]
        return out


def creation_response_for(history: CompanyData, cfg: PipelineConfig) -> CreationResponse:
    """The scenario's creation response: given elasticities, else calibrated on ``history``."""
    rc = cfg.creation_response
    if rc.hours_elasticity is not None and rc.workload_elasticity is not None:
        return CreationResponse(rc.hours_elasticity, rc.workload_elasticity, "scenario")
    fitted = calibrate_creation_response(
        history.opportunities,
        history.accounts,
        history.reps,
        history.activities,
        history.as_of,
        quarters=rc.quarters,
        min_rep_quarters=rc.min_rep_quarters,
        prior_sd=rc.prior_sd,
    )
    if rc.hours_elasticity is None and rc.workload_elasticity is None:
        return fitted
    return dataclasses.replace(
        fitted,
        hours_elasticity=rc.hours_elasticity if rc.hours_elasticity is not None else fitted.hours_elasticity,
        workload_elasticity=rc.workload_elasticity
        if rc.workload_elasticity is not None
        else fitted.workload_elasticity,
        source=f"scenario+{fitted.source}",
    )


def simulate_plan_year(
    history: CompanyData,
    plan: CompanyData,
    cfg: PipelineConfig,
    plan_year: int,
    seed: np.random.SeedSequence,
) -> PlanYearPipeline:
    """Simulate the plan year's bookings per rep of the plan (see the module docstring).

    Parameters
    ----------
    history
        The company as it was (calibration).
    plan
        The company under the plan (roster, owners, re-credited deals); ``history`` itself when
        there is no territory plan.
    cfg
        The scenario's ``pipeline:`` section.
    plan_year
        Year simulated, in 12 monthly periods.
    seed
        The stage's seed sequence; block ``b`` of trials draws from its child ``b``.

    Raises
    ------
    ScenarioError
        When the plan year ends before the data's snapshot date.
    """
    as_of = pd.Timestamp(history.as_of)
    edges = plan_year_edges(plan_year)
    if edges[-1] <= as_of:
        raise ScenarioError(
            f"plan_year {plan_year} ends before the data's snapshot date {as_of.date()}; "
            "set plan_year to the snapshot's year or later."
        )
    cal = calibrate_pipeline(
        history.opportunities,
        history.stage_history,
        history.reps,
        history.stages,
        as_of,
        rate_window_weeks=cfg.rate_window_weeks,
        seasonality=cfg.seasonality,
        quarter_end_pull=cfg.quarter_end_pull,
        size_by=cfg.size_by,
        size_by_cycle=cfg.size_by_cycle,
        history_start=cfg.history_start,
        residual=cfg.residual,
        observed_from=cfg.observed_from,
        creation_trend=cfg.creation_trend,
        conversion_drift=cfg.conversion_drift,
    )
    roster = plan.reps
    ids = roster["rep_id"].astype(str).to_numpy(dtype=object)
    response = creation_response_for(history, cfg)
    sell, admin = selling_admin_hours(history.activities, ids, as_of, cfg.default_admin_share)
    hours_before = pd.Series(sell, index=ids)
    hours_after = pd.Series(sell * admin_time_scale(sell, admin, cfg.admin_time_reduction), index=ids)
    window = history.opportunities[
        (history.opportunities["created_date"] > as_of - pd.Timedelta(weeks=cfg.rate_window_weeks))
        & (history.opportunities["created_date"] <= as_of)
    ]
    accounts = (
        plan.accounts
        if cfg.territory_scaling
        else plan.accounts.assign(
            owner_rep_id=plan.accounts.get("previous_owner_rep_id", plan.accounts["owner_rep_id"])
        )
    )
    creation = plan_creation_rates(
        pd.Series(cal.weekly_rate, index=cal.rep_ids.astype(str)),
        accounts,
        roster,
        hours_before,
        hours_after,
        response,
        edges,
        cfg.new_rep_ramp_months,
        created=window[["rep_id", "account_id"]],
    )
    plan_cal = cal.for_roster(ids, creation.rates.to_numpy(float), _mix_for(cal, ids))
    deals = open_pipeline(
        plan_cal, plan.opportunities, plan.stage_history, plan.stages, use_open_amounts=cfg.use_open_amounts
    )
    inputs = compile_inputs(
        plan_cal,
        deals,
        edges,
        age_aware=cfg.age_aware,
        stale_policy=cfg.stale_policy,
        uncertainty=cfg.uncertainty,
    )
    periods = [d.strftime("%Y-%m") for d in edges[:-1]]
    booked = closed_to_date(plan.opportunities, ids, edges[0], as_of)
    sim = simulate_pipeline(
        inputs,
        ids,
        trials=cfg.trials,
        block_size=cfg.block_size,
        seed=seed,
        periods=periods,
        closed_to_date=booked,
    )
    summary = _rep_summary(sim, plan_cal, creation, deals, roster)
    capacity = None
    if cfg.capacity.enabled:
        from salesops_models.pipeline.capacity import effort_vector, simulate_capacity

        capacity = simulate_capacity(
            inputs,
            ids,
            selling_hours=np.maximum(hours_after.to_numpy(float), 1e-6),
            effort_hours=effort_vector(plan_cal, cfg.capacity.effort_hours),
            routing=cfg.capacity.routing,
            trials=cfg.capacity.trials,
            seed=np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, CAPACITY_STREAM)),
            periods=periods,
        )
    closed_by_period = closed_to_date_by_period(plan.opportunities, ids, edges, as_of)
    return PlanYearPipeline(
        sim,
        plan_cal,
        response,
        creation,
        deals,
        summary,
        cfg.admin_time_reduction,
        closed_by_period,
        capacity,
    )


def _mix_for(cal: PipelineCalibration, ids: np.ndarray) -> np.ndarray:
    """Size-group mix per rep of the plan: his own when calibrated, else the company's (creation-weighted)."""
    pos = {str(r): k for k, r in enumerate(cal.rep_ids)}
    w = np.asarray(cal.weekly_rate, float)
    company = (
        np.average(cal.rep_group_mix, axis=0, weights=w) if w.sum() > 0 else cal.rep_group_mix.mean(axis=0)
    )
    return np.array([cal.rep_group_mix[pos[str(r)]] if str(r) in pos else company for r in ids])


def _rep_summary(
    sim: PipelineSimulation,
    cal: PipelineCalibration,
    creation: CreationPlan,
    deals: pd.DataFrame,
    roster: pd.DataFrame,
) -> pd.DataFrame:
    summary = sim.rep_summary()
    t = creation.table.set_index("rep_id").reindex(summary["rep_id"])
    summary["creation_per_week"] = t["rate_plan"].to_numpy()
    summary["creation_per_week_history"] = t["rate_history"].to_numpy()
    summary["selling_hours"] = t["hours_after"].to_numpy()
    summary["coverage"] = t["coverage_after"].to_numpy()
    summary["ramp_factor"] = t["ramp_factor"].to_numpy()
    summary["open_deals"] = deals.groupby("rep_id").size().reindex(summary["rep_id"], fill_value=0).to_numpy()
    # expected value of the open pipeline at P(win | stage, age); deals without an amount are valued at
    # their size group's mean won value, stale deals at zero
    value = deals["amount"].fillna(
        pd.Series([cal.mean_won_amount(g) for g in deals["size_group"]], index=deals.index)
    )
    summary["open_value_age_aware"] = (
        (deals["p_win_age_aware"].fillna(0) * value)
        .groupby(deals["rep_id"])
        .sum()
        .reindex(summary["rep_id"], fill_value=0.0)
        .to_numpy()
    )
    if "region" in roster:
        summary["region"] = (
            roster.set_index(roster["rep_id"].astype(str))["region"].reindex(summary["rep_id"]).to_numpy()
        )
    return summary
