"""Contiguous, balanced partitioning of a graph minimising cut edges (labeling model + separator cuts).

HiGHS gives Pyomo no lazy-constraint callback, so contiguity is imposed by a loop: solve, find the
districts that fall apart with networkx, add a,b-separator inequalities for them, solve again; the
number of rounds is capped and reported.

Formulation
-----------
Units :math:`i \\in V` with population :math:`p_i`, edges :math:`E`, districts :math:`j = 1..k`;
:math:`x_{ij} \\in \\{0,1\\}`, :math:`y_e \\in [0, 1]`.

.. math::

    \\min \\sum_{e \\in E} y_e \\quad\\text{s.t.}\\quad \\sum_j x_{ij} = 1, \\quad
    L \\le \\sum_i p_i x_{ij} \\le U, \\quad y_{uv} \\ge x_{uj} - x_{vj},\\; y_{uv} \\ge x_{vj} - x_{uj},
    \\quad x_{ij} = 0 \\;\\text{for}\\; j > i

(the last constraint labels districts by their smallest unit and removes the :math:`k!` symmetric
copies). Contiguity cuts: if :math:`a` and :math:`b` are in district :math:`j`, every vertex set
:math:`S` separating them holds a unit of :math:`j`:
:math:`x_{aj} + x_{bj} - 1 \\le \\sum_{s \\in S} x_{sj}`, added for every label :math:`j` with a
minimal separator :math:`S \\subseteq N(C_a)` (Validi & Buchanan 2022).
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pyomo.environ as pyo

from salesops_models.territory.solver import (
    FEASIBLE,
    NO_SOLUTION,
    OPTIMAL,
    SolverOptions,
    relative_gap,
    solve_milp,
)

log = logging.getLogger(__name__)

#: A contiguity round stops at ``time_limit / ROUND_SHARE`` (at least 30 s) unless it is the last one.
ROUND_SHARE = 5


def read_dual_graph(path: str | Path, population: str = "TOTPOP") -> nx.Graph:
    """Read a networkx adjacency JSON (optionally gzipped); nodes relabelled 0..n-1 with attribute ``pop``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        data = json.load(fh)
    g = nx.readwrite.json_graph.adjacency_graph(data)
    g = nx.convert_node_labels_to_integers(g, ordering="sorted")
    for _, d in g.nodes(data=True):
        d["pop"] = float(d[population])
    g.remove_edges_from(nx.selfloop_edges(g))
    return g


@dataclass
class DistrictingResult:
    """Districts (label per unit) and the solve figures of the cut loop."""

    district: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str
    seconds: float
    rounds: int
    cuts: int
    note: str


def _separator(g: nx.Graph, comp_a: set[int], b: int) -> set[int]:
    """A minimal a,b-separator inside N(comp_a): the neighbours of comp_a that b can reach."""
    boundary = set().union(*(set(g[v]) for v in comp_a)) - comp_a
    rest = g.subgraph(set(g) - comp_a - boundary)
    reach = nx.node_connected_component(rest, b) if b in rest else {b}
    return {s for s in boundary if any(u in reach for u in g[s])}


def solve_cut_edges(
    graph: nx.Graph,
    k: int,
    lower: float,
    upper: float,
    *,
    contiguous: bool = True,
    time_limit: float = 600.0,
    max_rounds: int = 200,
    mip_gap: float = 0.0,
) -> DistrictingResult:
    """Partition ``graph`` into ``k`` districts with population in ``[lower, upper]``, minimising cut edges.

    Parameters
    ----------
    graph
        Undirected graph, nodes 0..n-1 with attribute ``pop`` [people].
    k
        Number of districts.
    lower, upper
        Population bounds of a district [people].
    contiguous
        Impose connected districts by the separator-cut loop.
    time_limit
        Wall-clock limit of the whole loop [s].
    max_rounds
        Cap on solve rounds.
    mip_gap
        Relative MIP gap of each round.

    Returns
    -------
    DistrictingResult
        ``status`` is ``optimal`` when the last round closed its gap with connected districts; the
        bound of the last round is a valid lower bound in every case.
    """
    tick = time.perf_counter()
    n = graph.number_of_nodes()
    pop = np.array([graph.nodes[i]["pop"] for i in range(n)])
    edges = [(int(u), int(v)) for u, v in graph.edges()]
    m = pyo.ConcreteModel("cut_edges")
    m.X = pyo.Set(initialize=[(i, j) for i in range(n) for j in range(k) if j <= i], dimen=2)
    m.x = pyo.Var(m.X, within=pyo.Binary)
    m.y = pyo.Var(range(len(edges)), bounds=(0, 1))
    m.assign = pyo.Constraint(
        range(n), rule=lambda mm, i: pyo.quicksum(mm.x[i, j] for j in range(min(i, k - 1) + 1)) == 1
    )

    def xs(i: int, j: int) -> object:
        return m.x[i, j] if j <= i else 0.0

    m.pop = pyo.Constraint(
        range(k),
        rule=lambda mm, j: pyo.inequality(
            lower, pyo.quicksum(float(pop[i]) * mm.x[i, j] for i in range(j, n)), upper
        ),
    )
    m.cut1 = pyo.ConstraintList()
    for e, (u, v) in enumerate(edges):
        for j in range(k):
            if j > u and j > v:
                continue
            m.cut1.add(m.y[e] >= xs(u, j) - xs(v, j))
            m.cut1.add(m.y[e] >= xs(v, j) - xs(u, j))
    m.obj = pyo.Objective(expr=pyo.quicksum(m.y[e] for e in range(len(edges))), sense=pyo.minimize)
    m.sep = pyo.ConstraintList()
    cuts = 0
    rounds = 0
    district = np.full(n, -1)
    info = None
    best_bound = -math.inf
    best_connected: tuple[float, np.ndarray] | None = None
    final = False  # the last round gets all the time left
    while rounds < max_rounds:
        remaining = time_limit - (time.perf_counter() - tick)
        if remaining <= 1:
            break
        rounds += 1
        # a round stops at a share of the limit, so a disconnected incumbent gets its cuts early
        # instead of holding the whole limit (AR at 600 s: one round, no connected plan)
        limit = remaining if final or not contiguous else min(remaining, max(time_limit / ROUND_SHARE, 30.0))
        info = solve_milp(m, SolverOptions(time_limit=limit, mip_gap=mip_gap))
        if np.isfinite(info.bound):
            best_bound = max(best_bound, info.bound)
        if not info.has_solution:
            if final or limit >= remaining:
                break
            final = True
            continue
        district = np.full(n, -1)
        for (i, j), var in m.x.items():
            if (var.value or 0) > 0.5:
                district[i] = j
        if not contiguous:
            break
        added = 0
        for j in range(k):
            members = set(np.flatnonzero(district == j).tolist())
            comps = sorted(nx.connected_components(graph.subgraph(members)), key=len)
            if len(comps) <= 1:
                continue
            largest = comps[-1]
            for comp in comps[:-1]:
                a = min(comp)
                b = min(largest)
                sep = _separator(graph, comp, b)
                for jj in range(k):
                    if jj > a or jj > b:
                        continue
                    m.sep.add(xs(a, jj) + xs(b, jj) - 1 <= pyo.quicksum(xs(s, jj) for s in sep))
                    added += 1
                # and from the other side: b's component separated from a
                sep_b = _separator(graph, largest, a)
                for jj in range(k):
                    if jj > a or jj > b:
                        continue
                    m.sep.add(xs(a, jj) + xs(b, jj) - 1 <= pyo.quicksum(xs(s, jj) for s in sep_b))
                    added += 1
        cuts += added
        log.info("cut-edge round %d: objective %s, %d separator cuts added", rounds, info.objective, added)
        if added == 0:
            cut_now = float(sum(district[u] != district[v] for u, v in edges))
            if best_connected is None or cut_now < best_connected[0]:
                best_connected = (cut_now, district.copy())
            if info.status == OPTIMAL or final:
                break
            final = True  # connected but not proven: spend the rest of the time on this model
    seconds = time.perf_counter() - tick
    if best_connected is not None:
        district = best_connected[1]  # the best connected plan of any round (the last one if it closed)
    if best_connected is None and (info is None or not info.has_solution):
        return DistrictingResult(
            district, math.nan, best_bound, math.nan, NO_SOLUTION, seconds, rounds, cuts, "no plan"
        )
    connected = all(
        nx.is_connected(graph.subgraph(np.flatnonzero(district == j).tolist()))
        for j in range(k)
        if (district == j).any()
    )
    cut = float(sum(district[u] != district[v] for u, v in edges))
    if connected or not contiguous:
        proven = info is not None and info.status == OPTIMAL and cut <= best_bound + 1e-9
        status = OPTIMAL if proven else FEASIBLE
        objective = cut
        gap = relative_gap(cut, best_bound)
    else:
        status = NO_SOLUTION  # the last plan is disconnected: only the bound is proven
        objective = math.nan
        gap = math.nan
    note = (
        f"{rounds} rounds, {cuts} separator cuts, last plan {'connected' if connected else 'disconnected'}, "
        f"bound {best_bound:.2f}"
    )
    return DistrictingResult(district, objective, best_bound, gap, status, seconds, rounds, cuts, note)
