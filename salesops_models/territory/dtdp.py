"""Delivery/commercial territory design (DTDP): minimise the largest territory diameter, three balanced activities.

The diameter of a territory is the largest shortest-path distance in the whole graph between two of
its units (as in Aly, Gabor & Sleptchenko 2024). Every territory must carry each activity within
:math:`\\pm\\tau` of total/p. Contiguity is not required. No bound is proven (``gap`` is NaN).

Procedure (:func:`solve_dtdp`), stopped by work limits only (a wall-clock limit stays as a reported
safety net), so the same seed gives the same plan on a busy machine:

1. **Start**: p centres by farthest-point seeding from a seeded first unit; every unit is assigned to
   one of its nearest centres by a balanced assignment MILP (each activity within the band, minimum
   sum of squared distances to the centre; node-limited).
2. **Variable neighbourhood search** (:mod:`~salesops_models.territory.dtdp_search`): shakes that
   move a cluster of units next to an extreme unit of a wide territory, each followed by a local search
   of moves and swaps on the largest diameter (band violation penalised), accepted when the plan meets
   every band and is better.
3. Several starts (spawned seeds); the best plan is kept.
"""

from __future__ import annotations

import gzip
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

from salesops_models.territory.dtdp_search import variable_neighbourhood_search
from salesops_models.territory.milp_arrays import MilpArrays, run_highs
from salesops_models.territory.solver import FEASIBLE, NO_SOLUTION, SolverOptions

log = logging.getLogger(__name__)
ACTIVITIES = ("n_customers", "demand", "workload")
#: Work limits: starts, shakes per start, nodes of each start's assignment MILP.
STARTS = 2
ITERATIONS = 250
ASSIGN_NODE_LIMIT = 2000
#: Each unit may go to this many of its nearest centres in the start's assignment MILP.
ASSIGN_NEAREST = 4


@dataclass
class DTDPInstance:
    name: str
    activities: pd.DataFrame  # one row per unit, columns ACTIVITIES
    distance: np.ndarray  # all-pairs shortest paths


@dataclass
class DTDPResult:
    """A DTDP plan: territory per unit, its largest diameter and how it was found.

    Attributes
    ----------
    territory
        Territory 0..p-1 of each unit (-1 everywhere without a plan).
    objective
        Largest territory diameter [distance units].
    max_rel_dev
        Largest relative deviation of a territory's activity from total/p [-].
    status
        ``feasible`` (a plan meeting every band) or ``no_solution``.
    gap
        NaN: no bound is proven.
    seconds
        Wall-clock time [s].
    note
        Starts, accepted shakes, whether the safety-net clock fired.
    """

    territory: np.ndarray
    objective: float
    max_rel_dev: float
    status: str
    gap: float
    seconds: float
    note: str


def read_dtdp(path: str | Path) -> DTDPInstance:
    """Read a DTDP GraphML (optionally gzipped) and compute its shortest-path distances."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        g = nx.read_graphml(fh)
    nodes = list(g.nodes())
    pos = {v: i for i, v in enumerate(nodes)}
    act = pd.DataFrame({a: [float(g.nodes[v][a]) for v in nodes] for a in ACTIVITIES})
    rows, cols, w = [], [], []
    for u, v, d in g.edges(data=True):
        rows += [pos[u], pos[v]]
        cols += [pos[v], pos[u]]
        w += [float(d["distance"])] * 2
    mat = coo_matrix((w, (rows, cols)), shape=(len(nodes), len(nodes))).tocsr()
    dist = shortest_path(mat, method="D", directed=False)
    return DTDPInstance(path.name.split(".")[0], act, dist)


def diameters(dist: np.ndarray, territory: np.ndarray, p: int) -> np.ndarray:
    """Largest distance between two units of each territory."""
    out = np.zeros(p)
    for j in range(p):
        idx = np.flatnonzero(territory == j)
        if len(idx) > 1:
            out[j] = dist[np.ix_(idx, idx)].max()
    return out


def max_relative_deviation(act: pd.DataFrame, territory: np.ndarray, p: int) -> float:
    """Largest ``|load / (total / p) - 1|`` over territories and activities."""
    worst = 0.0
    for a in ACTIVITIES:
        load = np.bincount(territory, weights=act[a].to_numpy(), minlength=p)
        tgt = act[a].sum() / p
        worst = max(worst, float(np.abs(load / tgt - 1).max()))
    return worst


def _seed_centres(dist: np.ndarray, p: int, rng: np.random.Generator) -> np.ndarray:
    """Farthest-point seeding from a random first unit."""
    centres = [int(rng.integers(len(dist)))]
    for _ in range(p - 1):
        d = dist[:, centres].min(axis=1)
        centres.append(int(np.argmax(d)))
    return np.array(centres)


def balanced_assignment(
    dist: np.ndarray, act: np.ndarray, centres: np.ndarray, tau: float, seconds: float, nearest: int = ASSIGN_NEAREST
) -> np.ndarray | None:
    """Assign every unit to one of its ``nearest`` centres, each activity within the band, at minimum
    sum of squared distances (MILP, node-limited); ``None`` when no such plan was found."""
    n, p = len(dist), len(centres)
    d = dist[:, centres]
    near = np.argsort(d, axis=1, kind="stable")[:, : min(nearest, p)]
    ui = np.repeat(np.arange(n), near.shape[1])
    ci = near.ravel()
    target = act.sum(axis=0) / p
    mdl = MilpArrays()
    x = mdl.add_vars(len(ui), cost=d[ui, ci] ** 2, integer=True)
    mdl.add_rows(ui, x, 1.0, 1.0, 1.0, num=n)
    for a in range(act.shape[1]):
        mdl.add_rows(ci, x, act[ui, a], (1 - tau) * target[a], (1 + tau) * target[a], num=p)
    opts = SolverOptions(time_limit=seconds, mip_gap=0.1, highs_options={"mip_max_nodes": ASSIGN_NODE_LIMIT})
    res = run_highs(mdl.to_highs(opts), seconds)
    if res.values is None:
        return None
    chosen = res.values[x] > 0.5
    plan = np.full(n, -1, dtype=np.int64)
    plan[ui[chosen]] = ci[chosen]
    return plan if (plan >= 0).all() else None


def solve_dtdp(
    inst: DTDPInstance,
    p: int = 10,
    tau: float = 0.05,
    time_limit: float = 120.0,
    seed: int = 0,
    *,
    starts: int = STARTS,
    iterations: int = ITERATIONS,
) -> DTDPResult:
    """Balanced territories with a small largest diameter (see the module notes).

    Parameters
    ----------
    inst
        Activities and all-pairs distances.
    p
        Number of territories.
    tau
        Band half-width of every activity [-].
    time_limit
        Wall-clock safety net [s]: the work limits below decide the plan; when this limit stops the
        search first, the note says so.
    seed
        Master seed (starts use spawned streams).
    starts, iterations
        Work limits: number of starts and shakes per start.
    """
    tick = time.perf_counter()
    deadline = tick + time_limit
    dist = inst.distance
    act = inst.activities[list(ACTIVITIES)].to_numpy(dtype=float)
    best: tuple[float, float, np.ndarray | None] = (math.inf, math.inf, None)
    notes = []
    clock_fired = False
    for s in range(starts):
        if time.perf_counter() >= deadline:
            clock_fired = True
            break
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(s,)))
        plan = None
        for attempt in range(5):
            centres = _seed_centres(dist, p, rng)
            left = deadline - time.perf_counter()
            plan = balanced_assignment(dist, act, centres, tau, max(left, 1.0), nearest=ASSIGN_NEAREST + 2 * attempt)
            if plan is not None:
                break
        if plan is None:
            notes.append(f"start {s}: no balanced assignment")
            continue
        first = float(diameters(dist, plan, p).max())
        plan, accepted, done = variable_neighbourhood_search(
            dist, act, plan, p, tau, rng, iterations=iterations, deadline=deadline
        )
        clock_fired |= done < iterations
        diam = diameters(dist, plan, p)
        notes.append(f"start {s}: {first:.2f} -> {diam.max():.2f} ({accepted}/{done} shakes accepted)")
        if (diam.max(), diam.sum()) < best[:2]:
            best = (float(diam.max()), float(diam.sum()), plan)
    seconds = time.perf_counter() - tick
    if clock_fired:
        notes.append(f"safety-net clock ({time_limit:.0f}s) stopped the search before its work limits")
    if best[2] is None:
        return DTDPResult(np.full(len(dist), -1), math.nan, math.nan, NO_SOLUTION, math.nan, seconds, "; ".join(notes))
    dev = max_relative_deviation(inst.activities, best[2], p)
    return DTDPResult(best[2], best[0], dev, FEASIBLE, math.nan, seconds, "; ".join(notes))
