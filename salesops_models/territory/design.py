"""Territory design with free centres: where reps should sit (p-median, capacitated p-median).

The solvers live in :mod:`~salesops_models.territory.pmedian` (formulations and procedures are
documented there); this module is the design API used by planners and by the territory stage:

- :func:`p_median`: p centres, uncapacitated (exact; Lagrangian tree or covering MILP chosen by the
  instance's shape) or capacitated (exact Lagrangian tree with knapsack subproblems);
- :func:`place_new_reps`: the growth scenario, N new reps placed at account locations with today's reps
  fixed, stopped by work limits only so that a scenario gives the same placement on any machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesops_models.errors import SalesopsError
from salesops_models.territory.geo import distance_matrix_km
from salesops_models.territory.pmedian import (
    PMedianResult,
    capacitated_p_median,
    p_median,
    p_median_lagrangian,
    p_median_levels,
    swap_search,
)
from salesops_models.territory.solver import SolveInfo, SolverOptions

__all__ = [
    "NewRepPlacement",
    "PMedianResult",
    "capacitated_p_median",
    "p_median",
    "p_median_lagrangian",
    "p_median_levels",
    "place_new_reps",
    "swap_search",
]

log = logging.getLogger(__name__)

#: Wall-clock safety net of a placement [s] (at least this, whatever the solver options say): the
#: work limits below decide the placement; the net only stops a run that would otherwise hang.
PLACEMENT_SAFETY_SECONDS = 600.0
#: Work limit of the placement's exact search (tree nodes, or nodes of each covering MILP round).
PLACEMENT_NODE_LIMIT = 20_000


@dataclass
class NewRepPlacement:
    """Home bases chosen for new reps: ``new_reps`` rows follow the reps schema.

    Attributes
    ----------
    new_reps
        One row per new rep (``rep_id`` ``NEW001``..., home base at an account, capacity 1).
    solve
        Status, objective (workload-weighted km), bound, gap, seconds, nodes.
    site_account_ids
        The accounts whose locations became home bases.
    clock_fired
        True when the wall-clock safety net, not the work limits, stopped the search (the placement
        may then differ from run to run; raise the limit or lower the work).
    note
        What the solver did.
    """

    new_reps: pd.DataFrame
    solve: SolveInfo
    site_account_ids: list[str]
    clock_fired: bool = False
    note: str = ""


def place_new_reps(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    n_new: int,
    *,
    weight_column: str | None = "workload_hours",
    max_sites: int = 250,
    candidate_k: int | None = None,
    node_limit: int = PLACEMENT_NODE_LIMIT,
    solver: SolverOptions | None = None,
) -> NewRepPlacement:
    """Place ``n_new`` reps at account locations minimising workload-weighted distance (p-median).

    Today's reps stay where they are (fixed open centres). Candidate sites are the heaviest account
    of each 0.5 deg x 0.5 deg cell, at most ``max_sites`` of them (ties by account order). The
    p-median is solved exactly (:func:`p_median`) with ``node_limit`` as its work limit; the time
    limit of ``solver`` is only a safety net (at least :data:`PLACEMENT_SAFETY_SECONDS`), reported in
    ``clock_fired`` when it is what stopped the search. New reps get capacity 1 and ids ``NEW001``....

    Parameters
    ----------
    accounts, reps
        Canonical tables (``lat``/``lon``; ``home_lat``/``home_lon``).
    n_new
        Reps to place.
    weight_column
        Account weight of the distance (``None``: 1 per account).
    max_sites
        Candidate home bases.
    candidate_k
        Each account may be served only by its ``candidate_k`` nearest sites and the existing reps
        (``None``: by any site; exact).
    node_limit
        Work limit of the exact search.
    solver
        Threads and gap; its time limit is a safety net (see above).

    Returns
    -------
    NewRepPlacement
    """
    if n_new <= 0:
        raise SalesopsError("place_new_reps: n_new must be >= 1.")
    solver = solver or SolverOptions()
    w = (
        pd.to_numeric(accounts[weight_column], errors="coerce").fillna(0).to_numpy()
        if weight_column
        else np.ones(len(accounts))
    )
    cells = pd.DataFrame(
        {
            "cell": (accounts["lat"] // 0.5).astype(int).astype(str)
            + ":"
            + (accounts["lon"] // 0.5).astype(int).astype(str),
            "w": w,
            "pos": np.arange(len(accounts)),
        }
    )
    cell_w = cells.groupby("cell")["w"].sum().sort_values(ascending=False, kind="stable")
    top_cells = set(cell_w.index[:max_sites])
    heaviest = (
        cells[cells["cell"].isin(top_cells)]
        .sort_values(["w", "pos"], ascending=[False, True], kind="stable")
        .drop_duplicates("cell")
    )
    sites = heaviest["pos"].to_numpy()
    site_lat = np.r_[reps["home_lat"].to_numpy(float), accounts["lat"].to_numpy(float)[sites]]
    site_lon = np.r_[reps["home_lon"].to_numpy(float), accounts["lon"].to_numpy(float)[sites]]
    d = distance_matrix_km(accounts["lat"], accounts["lon"], site_lat, site_lon)
    n_old = len(reps)
    if n_old + n_new > len(site_lat):
        raise SalesopsError(
            f"place_new_reps: {n_new} new reps but only {len(site_lat) - n_old} candidate sites; "
            "raise max_sites or place fewer reps."
        )
    safety = max(float(solver.time_limit), PLACEMENT_SAFETY_SECONDS)
    res = p_median(
        d * w[:, None],
        n_old + n_new,
        fixed_open=list(range(n_old)),
        candidate_k=candidate_k,
        node_limit=node_limit,
        solver=SolverOptions(safety, solver.mip_gap, solver.threads, solver.highs_options),
    )
    clock_fired = res.solve.termination == "time limit"
    if clock_fired:
        log.warning(
            "place_new_reps: the %.0f s safety net stopped the search before its work limit; the placement "
            "may differ between runs",
            safety,
        )
    if not res.solve.has_solution:
        raise SalesopsError(
            f"place_new_reps: no placement found ({res.solve.termination}); raise the node limit or the time limit."
        )
    new_sites = [j for j in res.centres if j >= n_old]
    rows = []
    for k, j in enumerate(new_sites, start=1):
        acc = accounts.iloc[sites[j - n_old]]
        rows.append(
            {
                "rep_id": f"NEW{k:03d}",
                "rep_name": f"New rep {k}",
                "region": acc.get("region"),
                "home_lat": float(acc["lat"]),
                "home_lon": float(acc["lon"]),
                "capacity": 1.0,
            }
        )
    return NewRepPlacement(
        pd.DataFrame(rows),
        res.solve,
        [str(accounts.iloc[sites[j - n_old]]["account_id"]) for j in new_sites],
        clock_fired,
        f"{res.method}: {res.note}",
    )
