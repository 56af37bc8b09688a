"""Tables of a plan: one row per account and per territory, connectivity counts, the band diagnosis."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from salesops_models.territory.contiguity import AdjacencyGraph, pieces_per_territory
from salesops_models.territory.instance import AlignmentInstance


def plan_tables(
    inst: AlignmentInstance,
    assign: np.ndarray,
    accounts: pd.DataFrame,
    graph: AdjacencyGraph | None,
) -> tuple[pd.DataFrame, pd.DataFrame, float, float, int, int | None]:
    """The account and territory tables of a plan (see :class:`~salesops_models.territory.AlignmentResult`).

    Returns
    -------
    tuple
        ``(assignments, territories, disruption, disruption_share, moved, disconnected)``;
        ``disconnected`` (territories in more than one piece; the ``pieces`` column per territory) is
        None without an adjacency graph.
    """
    n_acc, n_rep = len(inst.account_ids), len(inst.rep_ids)
    idx = np.arange(n_acc)
    dist = inst.distance[idx, assign]
    travel = inst.weight * dist
    has_owner = inst.owner >= 0
    moved = has_owner & (assign != inst.owner)
    prev = np.where(
        has_owner,
        inst.rep_ids[np.maximum(inst.owner, 0)],
        accounts["owner_rep_id"].astype("string").to_numpy() if "owner_rep_id" in accounts else None,
    )
    asg = pd.DataFrame(
        {
            "account_id": inst.account_ids,
            "rep_id": inst.rep_ids[assign],
            "previous_rep_id": pd.array(prev, dtype="string"),
            "moved": moved,
            "locked": inst.lock >= 0,
            "distance_km": dist,
            "travel": travel,
        }
    )
    for k, name in enumerate(inst.metric_names):
        asg[name] = inst.metric_values[k]
    ter = pd.DataFrame({"rep_id": inst.rep_ids, "capacity": inst.capacity})
    ter["accounts"] = np.bincount(assign, minlength=n_rep)
    for k, name in enumerate(inst.metric_names):
        load = np.bincount(assign, weights=inst.metric_values[k], minlength=n_rep)
        tgt = inst.target[k]
        ter[name] = load
        ter[f"{name}_target"] = tgt
        ter[f"{name}_deviation"] = np.where(tgt > 0, load / np.where(tgt > 0, tgt, 1) - 1, 0.0)
        ter[f"{name}_lower"] = inst.lower[k]
        ter[f"{name}_upper"] = inst.upper[k]
    ter["travel"] = np.bincount(assign, weights=travel, minlength=n_rep)
    ter["distance_km"] = np.bincount(assign, weights=dist, minlength=n_rep)
    ter["accounts_in"] = np.bincount(assign[moved], minlength=n_rep)
    ter["accounts_out"] = np.bincount(inst.owner[moved], minlength=n_rep)
    disruption = float(inst.value[moved].sum())
    V = inst.owned_value
    share = disruption / V if V > 0 else 0.0
    disconnected = None
    if graph is not None:
        ter["pieces"] = pieces_per_territory(graph, assign, n_rep)
        disconnected = int((ter["pieces"] > 1).sum())
    return asg, ter, disruption, share, int(moved.sum()), disconnected


def diagnose_plan(
    inst: AlignmentInstance,
    assign: np.ndarray,
    max_moves: int | None,
    disruption_budget: float | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Which bands, caps and budgets a plan breaks, and by how much.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(diagnosis, relaxation)``: one row per (territory, metric) outside its band; one row per
        constraint family with the tolerance asked for and the one the plan needs.
    """
    rows = []
    n_rep = len(inst.rep_ids)
    relax_rows = []
    for k, name in enumerate(inst.metric_names):
        load = np.bincount(assign, weights=inst.metric_values[k], minlength=n_rep)
        tgt = inst.target[k]
        for r in range(n_rep):
            lo, hi = inst.lower[k, r], inst.upper[k, r]
            if load[r] > hi * (1 + 1e-9) + 1e-9 or load[r] < lo * (1 - 1e-9) - 1e-9:
                side = "above" if load[r] > hi else "below"
                outside = (load[r] - hi) if side == "above" else (lo - load[r])
                rows.append(
                    {
                        "rep_id": inst.rep_ids[r],
                        "metric": name,
                        "side": side,
                        "load": load[r],
                        "target": tgt[r],
                        "lower": lo,
                        "upper": hi,
                        "outside_by": outside,
                        "outside_share": outside / tgt[r] if tgt[r] > 0 else math.inf,
                    }
                )
        dev = np.where(tgt > 0, np.abs(load / np.where(tgt > 0, tgt, 1) - 1), 0.0)
        need = float(dev.max()) if len(dev) else 0.0
        relax_rows.append(
            {
                "constraint": f"tolerance[{name}]",
                "requested": float(inst.tolerance[k]),
                "required": max(need, float(inst.tolerance[k])),
                "binding": need > inst.tolerance[k] + 1e-9,
            }
        )
    moved = (inst.owner >= 0) & (assign != inst.owner)
    if max_moves is not None:
        relax_rows.append(
            {
                "constraint": "max_moves",
                "requested": float(max_moves),
                "required": float(max(moved.sum(), max_moves)),
                "binding": moved.sum() > max_moves,
            }
        )
    if disruption_budget is not None:
        V = inst.owned_value
        share = float(inst.value[moved].sum()) / V if V > 0 else 0.0
        relax_rows.append(
            {
                "constraint": "disruption_budget",
                "requested": float(disruption_budget),
                "required": max(share, disruption_budget),
                "binding": share > disruption_budget + 1e-9,
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(relax_rows)
