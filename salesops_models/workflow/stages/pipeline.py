"""Stage `pipeline`: simulate each rep's plan-year bookings from the CRM pipeline (Monte Carlo)."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import ScenarioError
from salesops_models.pipeline.calibration import calibrate_pipeline
from salesops_models.pipeline.plots import plot_bookings_histogram
from salesops_models.pipeline.quarters import closed_to_date_by_period, quarterly_bookings_samples
from salesops_models.pipeline.scaling import (
    admin_time_scale,
    new_rep_rates,
    selling_admin_hours,
    territory_scale,
)
from salesops_models.pipeline.simulation import (
    closed_to_date,
    compile_inputs,
    open_pipeline,
    simulate_pipeline,
)
from salesops_models.workflow.context import StageContext

log = logging.getLogger(__name__)


def plan_year_edges(plan_year: int) -> pd.DatetimeIndex:
    """Month starts of the plan year and 1 January of the next: 13 edges, 12 periods."""
    return pd.date_range(f"{plan_year}-01-01", f"{plan_year + 1}-01-01", freq="MS")


def run(ctx: StageContext) -> dict[str, Any]:
    tick = time.perf_counter()
    cfg = ctx.scenario.pipeline
    company = ctx.company
    as_of = pd.Timestamp(company.as_of)
    year = ctx.scenario.plan_year
    edges = plan_year_edges(year)
    if edges[-1] <= as_of:
        raise ScenarioError(
            f"scenario '{ctx.scenario.name}': plan_year {year} ends before the data's snapshot date {as_of.date()}; "
            "set plan_year to the snapshot's year or later."
        )
    cal = calibrate_pipeline(
        company.opportunities,
        company.stage_history,
        company.reps,
        company.stages,
        as_of,
        rate_window_weeks=cfg.rate_window_weeks,
        seasonality=cfg.seasonality,
        quarter_end_pull=cfg.quarter_end_pull,
        size_by=cfg.size_by,
        history_start=cfg.history_start,
        residual=cfg.residual,
        observed_from=cfg.observed_from,
        creation_trend=cfg.creation_trend,
    )
    deals = open_pipeline(
        cal,
        company.opportunities,
        company.stage_history,
        company.stages,
        use_open_amounts=cfg.use_open_amounts,
    )
    sell, admin = selling_admin_hours(company.activities, cal.rep_ids, as_of, cfg.default_admin_share)
    scale = admin_time_scale(sell, admin, cfg.admin_time_reduction)
    metrics: dict[str, Any] = {}
    if cfg.territory_scaling and ctx.has_table("assignments"):
        ratio, table = territory_scale(ctx.read_table("assignments"), company.accounts, cal.rep_ids)
        scale = scale * ratio
        ctx.write_table("pipeline_territory_scaling", table)
        # Planned hires have no history: give them the company's creation rate per unit of
        # potential on their new territory, ramped from their hire date.
        hire_dates = company.reps.set_index(company.reps["rep_id"].astype(str))["hire_date"]
        rates, hires = new_rep_rates(
            cal.weekly_rate, cal.rep_ids, table, hire_dates, edges, cfg.new_rep_ramp_months
        )
        if len(hires):
            cal = dataclasses.replace(cal, weekly_rate=rates)
            ctx.write_table("pipeline_new_reps", hires)
            metrics["pipeline_new_reps"] = len(hires)
        metrics["pipeline_territory_ratio_min"] = float(ratio.min())
        metrics["pipeline_territory_ratio_max"] = float(ratio.max())
    inputs = compile_inputs(
        cal,
        deals,
        edges,
        creation_scale=scale,
        age_aware=cfg.age_aware,
        stale_policy=cfg.stale_policy,
        uncertainty=cfg.uncertainty,
    )
    periods = [d.strftime("%Y-%m") for d in edges[:-1]]
    booked = closed_to_date(company.opportunities, cal.rep_ids, edges[0], as_of)
    sim = simulate_pipeline(
        inputs,
        cal.rep_ids,
        trials=cfg.trials,
        block_size=cfg.block_size,
        seed=ctx.seed_sequence,
        periods=periods,
        closed_to_date=booked,
    )
    ctx.write_table("rep_bookings_samples", sim.rep_bookings_samples())
    # quarterly samples for the quarter x rep risk table (report stream)
    closed_q = closed_to_date_by_period(company.opportunities, cal.rep_ids, edges, as_of)
    ctx.write_table("rep_bookings_by_quarter_samples", quarterly_bookings_samples(sim, closed_q))
    summary = sim.rep_summary()
    reps = company.reps.set_index(company.reps["rep_id"].astype(str))
    summary["creation_per_week"] = cal.weekly_rate * scale
    summary["creation_scale"] = scale
    summary["selling_hours"] = sell
    summary["admin_hours"] = admin
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
    if "region" in reps:
        summary["region"] = reps["region"].reindex(summary["rep_id"]).to_numpy()
    ctx.write_table("pipeline_summary", summary)
    ctx.write_table("pipeline_by_month", sim.period_summary())

    fig = plot_bookings_histogram(sim, f"Plan-year {year} bookings")
    fig.savefig(ctx.figure_path("pipeline_bookings_histogram"), dpi=110)

    s = sim.summary()
    cs = cal.summary()
    metrics.update(
        {
            "pipeline_bookings_p10": s["bookings_p10"],
            "pipeline_bookings_p50": s["bookings_p50"],
            "pipeline_bookings_p90": s["bookings_p90"],
            "pipeline_bookings_mean": s["bookings_mean"],
            "pipeline_win_rate": s["win_rate"],
            "pipeline_cycle_days": s["cycle_days"],
            "pipeline_revenue_per_rep_p50": s["revenue_per_rep_p50"],
            "pipeline_calibrated_win_rate": cs["win_rate_from_entry"],
            "pipeline_open_deals": int(len(deals)),
            "pipeline_stale_deals": int(deals["stale"].sum()),
            "pipeline_admin_time_reduction": cfg.admin_time_reduction,
            "pipeline_creation_per_week": float((cal.weekly_rate * scale).sum()),
            "pipeline_trials": cfg.trials,
        }
    )
    if cfg.capacity.enabled:
        from salesops_models.pipeline.capacity import effort_vector, simulate_capacity

        ss = ctx.seed_sequence
        cap = simulate_capacity(
            inputs,
            cal.rep_ids,
            selling_hours=np.maximum(sell + cfg.admin_time_reduction * admin, 1e-6),
            effort_hours=effort_vector(cal, cfg.capacity.effort_hours),
            routing=cfg.capacity.routing,
            trials=cfg.capacity.trials,
            # a stream of its own: child 10**6 of the stage seed (blocks of the vectorised run are 0, 1, ...)
            seed=np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 10**6)),
            periods=periods,
        )
        ctx.write_table("pipeline_capacity_summary", cap.rep_summary())
        cm = cap.summary()
        metrics["pipeline_capacity_bookings_p50"] = cm["bookings_p50"] + float(booked.sum())
        metrics["pipeline_capacity_utilisation"] = cm["utilisation"]
        metrics["pipeline_capacity_queue_days"] = cm["queue_days_mean"]
    metrics["pipeline_seconds"] = time.perf_counter() - tick
    log.info("pipeline: P50 bookings %.0f (%d trials)", s["bookings_p50"], cfg.trials)
    return metrics
