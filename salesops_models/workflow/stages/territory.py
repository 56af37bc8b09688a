"""Stage ``territory``: align accounts to reps with the scenario's ``territory:`` settings.

Writes ``assignments`` (account_id, rep_id, previous_rep_id, moved, locked, distance_km, travel and the
balanced metrics) and ``territories`` (rep_id, each balanced metric with its target, deviation and
band, travel, accounts_in, accounts_out), optionally ``territory_diagnosis`` (tolerances that could not
be met), ``territory_tradeoff`` (travel-versus-disruption curve) and ``territory_new_reps`` (growth
scenario); figures ``territory_map`` (when accounts have locations) and ``territory_balance`` (and
``territory_tradeoff``).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from salesops_models.territory import assign_territories, disruption_tradeoff
from salesops_models.territory.plots import plot_balance_bars, plot_territory_map, plot_tradeoff
from salesops_models.territory.scenario import add_new_reps, alignment_arguments, todays_plan
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import COMPANY, StageContract

log = logging.getLogger(__name__)

CONTRACT = StageContract(
    "territory",
    summary="aligns accounts to reps (balance bands, travel, disruption) and, for growth scenarios, places "
    "new reps first (`territory.new_reps`).",
    config=("territory",),
    reads=(COMPANY,),
    writes=("assignments", "territories"),
    may_write=("territory_new_reps", "territory_diagnosis", "territory_relaxation", "territory_tradeoff"),
    metrics=(
        "territory_status",
        "territory_mip_gap",
        "territory_balance_max_min",
        "territory_balance_cv",
        "territory_disruption_share",
    ),
)


def run(ctx: StageContext) -> dict[str, Any]:
    tick = time.perf_counter()
    cfg = ctx.scenario.territory
    company = ctx.company
    accounts = company.accounts.copy()
    reps = company.reps.copy()
    metrics: dict[str, Any] = {}
    args = alignment_arguments(cfg, accounts)
    if cfg.new_reps:
        reps, new_reps, placement = add_new_reps(cfg, accounts, reps, args)
        ctx.write_table("territory_new_reps", new_reps)
        metrics["territory_new_reps"] = len(new_reps)
        metrics["territory_new_reps_gap"] = placement.gap if placement is not None else math.nan

    before = todays_plan(accounts, company.reps, args)
    result = assign_territories(accounts, reps, **args.kwargs)
    ctx.write_table("assignments", result.assignments)
    ctx.write_table("territories", result.territories)
    if not result.diagnosis.empty or not result.relaxation.empty:
        ctx.write_table("territory_diagnosis", result.diagnosis)
        ctx.write_table("territory_relaxation", result.relaxation)

    fig = plot_territory_map(result, accounts, reps)
    if fig is not None:  # None when the accounts have no locations
        fig.savefig(ctx.figure_path("territory_map"), dpi=110)
    fig = plot_balance_bars(result)
    fig.savefig(ctx.figure_path("territory_balance"), dpi=110)

    if cfg.tradeoff_budgets:
        curve_args = {
            k: v for k, v in args.kwargs.items() if k not in ("disruption_budget", "disruption_weight")
        }
        curve = disruption_tradeoff(accounts, reps, budgets=cfg.tradeoff_budgets, **curve_args)
        ctx.write_table("territory_tradeoff", curve)
        fig = plot_tradeoff(curve)
        fig.savefig(ctx.figure_path("territory_tradeoff"), dpi=110)

    s = result.summary()
    b_mm, b_cv = before.balance() if before is not None else (math.nan, math.nan)
    metrics.update(
        {
            "territory_status": s["status"],
            "territory_mip_gap": s["mip_gap"],
            "territory_objective": s["objective"],
            "territory_bound": s["bound"],
            "territory_balance_max_min": s["balance_max_min"],
            "territory_balance_cv": s["balance_cv"],
            "territory_balance_max_min_before": b_mm,
            "territory_balance_cv_before": b_cv,
            "territory_disruption_share": s["disruption_share"],
            "territory_moved": s["moved"],
            "territory_travel": s["travel"],
            "territory_travel_before": before.travel if before is not None else math.nan,
            "territory_travel_basis": s["travel_basis"],
            "territory_solve_seconds": s["seconds"],
            "territory_seconds": time.perf_counter() - tick,
            "territory_nodes": s["nodes"],
            "territory_time_limit_hit": s["time_limit_hit"],
        }
    )
    if "disconnected_territories" in s:
        metrics["territory_disconnected"] = s["disconnected_territories"]
    if s.get("contiguity"):
        metrics["territory_contiguity_cuts"] = s["contiguity_cuts"]
    if result.stopped_by_clock:
        metrics["territory_stopped_by_clock"] = ", ".join(result.stopped_by_clock)
    if "relaxation_needed" in s:
        metrics["territory_relaxation_needed"] = s["relaxation_needed"]
    for note in args.notes:
        log.warning("territory: %s", note)
    if s["travel_basis"] == "none":
        args.notes.append("balanced without travel and compactness: no account or rep locations")
    if args.notes:
        metrics["territory_data_notes"] = "; ".join(args.notes)
    log.info("territory: %s", metrics)
    return metrics
