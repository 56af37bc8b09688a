"""Stage ``territory``: align accounts to reps with the scenario's ``territory:`` settings.

Writes ``assignments`` (account_id, rep_id, previous_rep_id, moved, locked, distance_km, travel and the
balanced metrics) and ``territories`` (rep_id, each balanced metric with its target, deviation and
band, travel, accounts_in, accounts_out), optionally ``territory_diagnosis`` (tolerances that could not
be met), ``territory_tradeoff`` (travel-versus-disruption curve) and ``territory_new_reps`` (growth
scenario); figures ``territory_map`` and ``territory_balance`` (and ``territory_tradeoff``).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pandas as pd

from salesops_models.territory import (
    BalanceMetric,
    SolverOptions,
    assign_territories,
    disruption_tradeoff,
    evaluate_plan,
)
from salesops_models.territory.config import TerritoryConfig
from salesops_models.territory.plots import plot_balance_bars, plot_territory_map, plot_tradeoff
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


def alignment_arguments(cfg: TerritoryConfig, accounts: pd.DataFrame) -> dict[str, Any]:
    """Keyword arguments of :func:`assign_territories` from the scenario section."""
    locks = dict(cfg.locks)
    if cfg.lock_segments and "segment" in accounts:
        keep = accounts["segment"].isin(cfg.lock_segments) & accounts["owner_rep_id"].notna()
        for a, r in zip(accounts.loc[keep, "account_id"], accounts.loc[keep, "owner_rep_id"], strict=True):
            locks.setdefault(str(a), str(r))
    max_moves = None if cfg.max_moved_share is None else int(math.floor(cfg.max_moved_share * len(accounts)))
    return {
        "balance": [BalanceMetric(b.column, b.tolerance) for b in cfg.balance],
        "travel_weight_column": cfg.travel_weight_column,
        "travel_weight": cfg.travel_weight,
        "disruption_column": cfg.disruption_column,
        "disruption_weight": cfg.disruption_weight,
        "disruption_budget": cfg.disruption_budget,
        "max_moves": max_moves,
        "locks": locks or None,
        "candidate_k": cfg.candidate_k,
        "heuristic_seconds": cfg.heuristic_seconds,
        "lp_rounding": cfg.lp_rounding,
        "solver": SolverOptions(time_limit=cfg.time_limit, mip_gap=cfg.mip_gap, threads=cfg.threads),
    }


def run(ctx: StageContext) -> dict[str, Any]:
    tick = time.perf_counter()
    cfg = ctx.scenario.territory
    company = ctx.company
    accounts = company.accounts.copy()
    reps = company.reps.copy()
    metrics: dict[str, Any] = {}
    if cfg.new_reps:
        from salesops_models.territory.design import place_new_reps

        placed = place_new_reps(
            accounts,
            reps,
            cfg.new_reps,
            weight_column=cfg.travel_weight_column,
            solver=SolverOptions(time_limit=cfg.time_limit, mip_gap=cfg.mip_gap, threads=cfg.threads),
        )
        reps = pd.concat([reps, placed.new_reps], ignore_index=True)
        ctx.write_table("territory_new_reps", placed.new_reps)
        metrics["territory_new_reps"] = len(placed.new_reps)
        metrics["territory_new_reps_gap"] = placed.solve.gap

    args = alignment_arguments(cfg, accounts)
    before = evaluate_plan(
        accounts,
        company.reps,
        balance=args["balance"],
        travel_weight_column=cfg.travel_weight_column,
        disruption_column=cfg.disruption_column,
    )
    result = assign_territories(accounts, reps, **args)
    ctx.write_table("assignments", result.assignments)
    ctx.write_table("territories", result.territories)
    if not result.diagnosis.empty or not result.relaxation.empty:
        ctx.write_table("territory_diagnosis", result.diagnosis)
        ctx.write_table("territory_relaxation", result.relaxation)

    fig = plot_territory_map(result, accounts, reps)
    fig.savefig(ctx.figure_path("territory_map"), dpi=110)
    fig = plot_balance_bars(result)
    fig.savefig(ctx.figure_path("territory_balance"), dpi=110)

    if cfg.tradeoff_budgets:
        curve_args = {k: v for k, v in args.items() if k not in ("disruption_budget", "disruption_weight")}
        curve = disruption_tradeoff(accounts, reps, budgets=cfg.tradeoff_budgets, **curve_args)
        ctx.write_table("territory_tradeoff", curve)
        fig = plot_tradeoff(curve)
        fig.savefig(ctx.figure_path("territory_tradeoff"), dpi=110)

    s = result.summary()
    b_mm, b_cv = before.balance()
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
            "territory_travel_before": before.travel,
            "territory_solve_seconds": s["seconds"],
            "territory_seconds": time.perf_counter() - tick,
        }
    )
    if "relaxation_needed" in s:
        metrics["territory_relaxation_needed"] = s["relaxation_needed"]
    log.info("territory: %s", metrics)
    return metrics
