"""From a scenario's ``territory:`` section and the company's tables to the arguments of the alignment.

The territory stage stays a thin adapter: it calls :func:`alignment_arguments` and passes the result to
:func:`~salesops_models.territory.assign_territories`. What an export lacks is decided here, once:

- a balanced metric, travel weight or disruption column that the accounts table does not have at all
  (column absent or every value empty, as in a CRM export without potential or workload) is left out,
  and a note says so; when no balanced metric is left, territories are balanced on account counts with
  the tolerance of the first metric asked for;
- accounts without locations are handled by the model (no travel, no compactness; see
  :func:`~salesops_models.territory.instance.prepare_instance`).

A column with some values empty is a data error and is reported by the model, naming the accounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from salesops_models.territory.alignment import evaluate_plan
from salesops_models.territory.config import TerritoryConfig
from salesops_models.territory.contiguity import read_adjacency
from salesops_models.territory.heuristics import SearchLimits
from salesops_models.territory.instance import ACCOUNT_COUNT, BalanceMetric, coordinates
from salesops_models.territory.result import AlignmentResult
from salesops_models.territory.solver import SolveInfo, SolverOptions


@dataclass
class AlignmentArguments:
    """Keyword arguments of :func:`~salesops_models.territory.assign_territories`, and what was left out.

    Attributes
    ----------
    kwargs
        The arguments.
    notes
        One sentence per setting the data could not support (empty when everything applied).
    """

    kwargs: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def solver_options(cfg: TerritoryConfig) -> SolverOptions:
    """The HiGHS settings of the scenario: node limit, gap, threads, and the clock as a safety net."""
    return SolverOptions(
        time_limit=cfg.time_limit, mip_gap=cfg.mip_gap, threads=cfg.threads, node_limit=cfg.node_limit
    )


def has_values(accounts: pd.DataFrame, column: str) -> bool:
    """Whether the accounts table has ``column`` with at least one value (``account_count`` always)."""
    if column == ACCOUNT_COUNT:
        return True
    return column in accounts.columns and bool(accounts[column].notna().any())


def alignment_arguments(cfg: TerritoryConfig, accounts: pd.DataFrame) -> AlignmentArguments:
    """Arguments of :func:`~salesops_models.territory.assign_territories` from the scenario section.

    Parameters
    ----------
    cfg
        The scenario's ``territory:`` section.
    accounts
        The accounts table the alignment will run on (for locks by segment and for the columns it has).
    """
    notes: list[str] = []
    locks = dict(cfg.locks)
    if cfg.lock_segments:
        if "segment" in accounts and "owner_rep_id" in accounts:
            keep = accounts["segment"].isin(cfg.lock_segments) & accounts["owner_rep_id"].notna()
            for a, r in zip(
                accounts.loc[keep, "account_id"], accounts.loc[keep, "owner_rep_id"], strict=True
            ):
                locks.setdefault(str(a), str(r))
        else:
            notes.append("lock_segments ignored: the accounts have no segment or owner column")
    balance = [BalanceMetric(b.column, b.tolerance) for b in cfg.balance if has_values(accounts, b.column)]
    skipped = [b.column for b in cfg.balance if not has_values(accounts, b.column)]
    if skipped:
        notes.append(f"balance on {skipped} left out: the accounts table has no values in these columns")
    if not balance and cfg.balance:
        balance = [BalanceMetric(ACCOUNT_COUNT, cfg.balance[0].tolerance)]
        notes.append(f"territories balanced on account counts (+-{cfg.balance[0].tolerance:g}) instead")
    travel_column = cfg.travel_weight_column
    if travel_column is not None and not has_values(accounts, travel_column):
        notes.append(f"travel weight '{travel_column}' has no values: every account weighs 1")
        travel_column = None
    disruption_column = cfg.disruption_column
    if disruption_column is not None and not has_values(accounts, disruption_column):
        notes.append(f"disruption column '{disruption_column}' has no values: moves are counted")
        disruption_column = None
    max_moves = None if cfg.max_moved_share is None else int(math.floor(cfg.max_moved_share * len(accounts)))
    kwargs = {
        "contiguity": cfg.contiguity,
        "contiguity_exceptions": list(cfg.contiguity_exceptions),
        "contiguity_unit": cfg.contiguity_unit,
        "adjacency": read_adjacency(cfg.adjacency) if cfg.adjacency else None,
        "balance": balance,
        "travel_weight_column": travel_column,
        "travel_weight": cfg.travel_weight,
        "disruption_column": disruption_column,
        "disruption_weight": cfg.disruption_weight,
        "disruption_budget": cfg.disruption_budget,
        "max_moves": max_moves,
        "locks": locks or None,
        "candidate_k": cfg.candidate_k,
        "heuristic_seconds": cfg.heuristic_seconds,
        "lp_rounding": cfg.lp_rounding,
        "solver": solver_options(cfg),
        "limits": SearchLimits(
            polish_passes=cfg.polish_passes, neighbourhood_rounds=cfg.neighbourhood_rounds
        ),
    }
    return AlignmentArguments(kwargs, notes)


def todays_plan(
    accounts: pd.DataFrame, reps: pd.DataFrame, arguments: AlignmentArguments
) -> AlignmentResult | None:
    """Today's alignment scored like a new plan, or ``None`` when some account has no owner among the reps."""
    if (
        "owner_rep_id" not in accounts
        or not accounts["owner_rep_id"].astype("string").isin(reps["rep_id"].astype("string")).all()
    ):
        arguments.notes.append("today's plan not scored: some accounts have no owner among the reps")
        return None
    kw = arguments.kwargs
    return evaluate_plan(
        accounts,
        reps,
        balance=kw["balance"],
        travel_weight_column=kw["travel_weight_column"],
        disruption_column=kw["disruption_column"],
    )


def add_new_reps(
    cfg: TerritoryConfig, accounts: pd.DataFrame, reps: pd.DataFrame, arguments: AlignmentArguments
) -> tuple[pd.DataFrame, pd.DataFrame, SolveInfo | None]:
    """The growth scenario: ``cfg.new_reps`` full-time reps added to ``reps``.

    With account locations they sit where a p-median says (:func:`~salesops_models.territory.design.place_new_reps`);
    without, they get no home base (the alignment balances without travel anyway).

    Returns
    -------
    tuple
        ``(reps with the new ones, the new reps, the placement solve or None)``.
    """
    if coordinates(accounts, "accounts", ("lat", "lon"), "account_id", required=False) is not None:
        from salesops_models.territory.design import place_new_reps

        placed = place_new_reps(
            accounts, reps, cfg.new_reps, weight_column=cfg.travel_weight_column, solver=solver_options(cfg)
        )
        new, solve = placed.new_reps, placed.solve
    else:
        new = pd.DataFrame(
            {
                "rep_id": [f"NEW{k:03d}" for k in range(1, cfg.new_reps + 1)],
                "rep_name": [f"New rep {k}" for k in range(1, cfg.new_reps + 1)],
                "home_lat": float("nan"),
                "home_lon": float("nan"),
                "capacity": 1.0,
            }
        )
        solve = None
        arguments.notes.append("new reps added without a home base: the accounts have no locations")
    return pd.concat([reps, new], ignore_index=True), new, solve
