"""Contiguous, balanced districting that minimises cut edges: a connected heuristic, then an exact MILP.

HiGHS has no lazy-constraint callback, so contiguity is written into the model itself with a single-
commodity flow (SCF, Validi, Buchanan & Lykhovyd 2022) instead of separator cuts added on demand. The
model follows Validi & Buchanan ("Political districting to minimize cut edges", Math. Prog. Comp.
2022): labeling variables, the per-district ("extended") cut-edge objective, a vertex ordering with
diagonal, L-, U- and Z-fixing, and a warm start that is already connected.

Procedure (:func:`solve_cut_edges`)
-----------------------------------
1. **Connected plan** (:func:`tree_partition`): recursive spanning-tree bisection. Draw a random
   spanning tree of the units left, cut the tree edge whose subtree holds a population in
   :math:`[L, U]` while the rest can still make the remaining districts, repeat.
2. **Pair re-optimisation** (:func:`improve_by_pairs`): merge two adjacent districts and re-split the
   union exactly (the model below with :math:`k = 2` on the union, both halves connected and balanced,
   started from the current split); keep the split when it cuts fewer edges. Passes over all adjacent
   pairs until one pass changes nothing. Several starts; the best plan is kept.
3. **Exact model**, started from that plan, until proven optimal or the time limit.

Formulation
-----------
Units :math:`i \\in V` (population :math:`p_i`), edges :math:`E` (each listed once as :math:`(u, v)`),
districts :math:`j = 0..k-1`; :math:`x_{ij}` unit in district, :math:`r_{ij}` unit is the root of its
district, :math:`z_{ej}` edge :math:`e = (u, v)` leaves district :math:`j` at :math:`u`, flow
:math:`f_a \\ge 0` on both arcs of every edge; :math:`M` = most units a district can hold.

.. math::

    \\min \\sum_{e, j} z_{ej} \\quad\\text{s.t.}\\quad
    \\sum_j x_{ij} = 1, \\qquad L \\le \\sum_i p_i x_{ij} \\le U, \\qquad
    z_{uv,j} \\ge x_{uj} - x_{vj},

    \\sum_i r_{ij} = 1, \\qquad r_{ij} \\le x_{ij}, \\qquad
    \\sum_{a \\in \\delta^-(i)} f_a - \\sum_{a \\in \\delta^+(i)} f_a \\ge 1 - M \\sum_j r_{ij}, \\qquad
    f_{uv} + f_{vu} \\le (M - 1)\\,\\Big(1 - \\sum_j z_{uv,j}\\Big).

Every non-root unit consumes one unit of flow that can only travel along edges inside a district, so
every unit is joined to its district's root. :math:`\\sum_j z_{uv,j}` is 1 exactly when :math:`(u, v)`
is cut, and its LP value :math:`\\tfrac12 \\lVert x_u - x_v \\rVert_1` is stronger than one cut variable
per edge. :math:`z` is integer so that HiGHS knows the objective is integral and prunes at
incumbent - 1.

Symmetry and fixing (ordering :math:`v_0, v_1, \\dots`: units by decreasing population, with a set
:math:`B` of units whose components all hold less than :math:`L` people at the back): districts are
labelled by their first unit in the ordering, so :math:`x_{v_p, j} = 0` for :math:`j > p` (diagonal
fixing) and the root of each district is its first unit; no district fits in the tail of the ordering
where every component holds less than :math:`L` people, so no unit there is a root (L-fixing); the
first units that are pairwise too far apart to share a district (the least-populated path between two
of them holds more than :math:`U` people) open districts :math:`0, 1, \\dots` in turn, and no unit too far
from such a root joins its district (U-fixing); :math:`z_{uv,j} = 0` when :math:`u` cannot be in
:math:`j` or :math:`v` must be (Z-fixing).

What was tried on the way (docs/territory.md has the figures): the previous labeling model with a
solve / separator-cut loop (bound 14 against 33 on AR; no connected plan on AL, MS, KS in 600 s);
fractional separator cuts at the root (none violated: the SCF relaxation already meets them, the
weakness is the objective's); a pairwise spreading-metric relaxation (WV root bound 17.9 against 7.1
for the labeling LP, but no better in the tree and a slow root); a set-partitioning column generation
with a MILP pricing problem (10-15 s per pricing solve: too slow).
"""

from __future__ import annotations

import gzip
import heapq
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

from salesops_models.errors import SalesopsError
from salesops_models.territory.milp_arrays import MilpArrays, run_highs
from salesops_models.territory.solver import FEASIBLE, NO_SOLUTION, OPTIMAL, SolverOptions, relative_gap

log = logging.getLogger(__name__)

#: Work limits of the heuristic (counts, never seconds): starts, spanning trees per start, passes
#: over the district pairs, branch-and-bound nodes of each pair re-split.
HEURISTIC_STARTS = 6
TREES_PER_START = 1000
MAX_PAIR_PASSES = 30
PAIR_NODE_LIMIT = 2000


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
    """Districts (label per unit) and the figures of the heuristic and the exact solve.

    Attributes
    ----------
    district
        District label ``0..k-1`` of each unit (labels ordered by each district's first unit in the
        model's vertex ordering); ``-1`` everywhere when no plan was found.
    objective
        Cut edges of the plan (NaN without a plan).
    bound
        Proven lower bound on the cut edges of any plan meeting the constraints.
    gap
        Relative gap ``(objective - bound) / objective``.
    status
        ``optimal`` (proven), ``feasible`` (a plan, not proven) or ``no_solution``.
    seconds
        Wall-clock time of the whole procedure [s].
    heuristic_objective
        Cut edges of the heuristic plan that started the exact solve (NaN if none).
    heuristic_seconds
        Time of the heuristic [s].
    nodes
        Branch-and-bound nodes of the exact solve.
    trace
        (seconds since the exact solve started, bound, incumbent) sampled during the exact solve.
    note
        One line for the log and the benchmark table.
    """

    district: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str
    seconds: float
    heuristic_objective: float = math.nan
    heuristic_seconds: float = 0.0
    nodes: int = 0
    trace: list[tuple[float, float, float]] = field(default_factory=list)
    note: str = ""


@dataclass
class _Graph:
    """A districting instance in arrays: populations, edges (u < v listed once), adjacency lists."""

    pop: np.ndarray
    edges: np.ndarray
    nbrs: list[np.ndarray]

    @property
    def n(self) -> int:
        return len(self.pop)

    @classmethod
    def from_networkx(cls, graph: nx.Graph) -> _Graph:
        n = graph.number_of_nodes()
        if sorted(graph.nodes()) != list(range(n)):
            raise SalesopsError("districting: graph nodes must be 0..n-1 (use read_dual_graph or relabel).")
        pop = np.array([float(graph.nodes[i]["pop"]) for i in range(n)])
        edges = np.array(sorted((min(u, v), max(u, v)) for u, v in graph.edges() if u != v), dtype=np.int64)
        edges = edges.reshape(-1, 2)
        nbrs = [np.array(sorted(graph[i]), dtype=np.int64) for i in range(n)]
        return cls(pop, edges, nbrs)

    def subgraph(self, units: np.ndarray) -> tuple[_Graph, np.ndarray]:
        """The induced subgraph on ``units`` (relabelled 0..len-1) and the map local -> global."""
        units = np.sort(np.asarray(units, dtype=np.int64))
        local = -np.ones(self.n, dtype=np.int64)
        local[units] = np.arange(len(units))
        keep = (local[self.edges[:, 0]] >= 0) & (local[self.edges[:, 1]] >= 0)
        edges = local[self.edges[keep]]
        nbrs = [local[self.nbrs[u]][local[self.nbrs[u]] >= 0] for u in units]
        return _Graph(self.pop[units], edges, nbrs), units

    def cut_edges(self, plan: np.ndarray) -> int:
        return int((plan[self.edges[:, 0]] != plan[self.edges[:, 1]]).sum())

    def connected(self, members: np.ndarray) -> bool:
        """Whether the units ``members`` induce a connected subgraph."""
        members = np.asarray(members)
        if len(members) <= 1:
            return len(members) == 1
        inside = np.zeros(self.n, bool)
        inside[members] = True
        seen = np.zeros(self.n, bool)
        stack = [int(members[0])]
        seen[members[0]] = True
        count = 0
        while stack:
            u = stack.pop()
            count += 1
            for w in self.nbrs[u]:
                if inside[w] and not seen[w]:
                    seen[w] = True
                    stack.append(int(w))
        return count == len(members)

    def component_population(self, inside: np.ndarray, start: int) -> float:
        """Population of the component of ``start`` in the subgraph induced by the mask ``inside``."""
        seen = {start}
        stack = [start]
        total = 0.0
        while stack:
            u = stack.pop()
            total += self.pop[u]
            for w in self.nbrs[u]:
                if inside[w] and int(w) not in seen:
                    seen.add(int(w))
                    stack.append(int(w))
        return total

    def population_distance(self, source: int) -> np.ndarray:
        """Least population on a path from ``source`` to each unit, both ends included."""
        dist = np.full(self.n, np.inf)
        dist[source] = self.pop[source]
        heap = [(float(self.pop[source]), source)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist[u]:
                continue
            for w in self.nbrs[u]:
                nd = d + self.pop[w]
                if nd < dist[w]:
                    dist[w] = nd
                    heapq.heappush(heap, (nd, int(w)))
        return dist


# ---------------------------------------------------------------------------------------------------
# Ordering, fixing and the exact model
# ---------------------------------------------------------------------------------------------------


def vertex_order(gr: _Graph, lower: float) -> tuple[np.ndarray, int]:
    """Units by decreasing population, with a tail set B (every component of B under ``lower``) last.

    B is grown greedily from the least-populated units; a larger B fixes more root variables.
    Returns the ordering and ``len(B)``.
    """
    in_b = np.zeros(gr.n, bool)
    for v in np.argsort(gr.pop, kind="stable"):
        in_b[v] = True
        if gr.component_population(in_b, int(v)) >= lower:
            in_b[v] = False
    by_pop = np.argsort(-gr.pop, kind="stable")
    return np.r_[by_pop[~in_b[by_pop]], by_pop[in_b[by_pop]]], int(in_b.sum())


@dataclass
class _Model:
    milp: MilpArrays
    x: np.ndarray
    r: np.ndarray | None
    z: np.ndarray
    f: np.ndarray | None
    order: np.ndarray
    max_units: int
    fixed: dict[str, int]


def _fixings(
    gr: _Graph, k: int, lower: float, upper: float, order: np.ndarray, contiguous: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Bounds of x and r after diagonal, L- and U-fixing (see the module notes)."""
    n = gr.n
    x_lo, x_up = np.zeros((n, k)), np.ones((n, k))
    r_lo, r_up = np.zeros((n, k)), np.ones((n, k))
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    diagonal = np.arange(k)[None, :] > pos[:, None]
    x_up[diagonal] = 0.0
    r_up[diagonal] = 0.0
    counts = {"diagonal": int(diagonal.sum()), "L": 0, "U": 0}
    if not contiguous:
        return x_lo, x_up, r_lo, r_up, counts
    # L-fixing: from the back, the first unit whose component (among the tail) reaches `lower` ends the tail
    tail = np.zeros(n, bool)
    q = 0
    for p in range(n - 1, -1, -1):
        tail[order[p]] = True
        if gr.component_population(tail, int(order[p])) >= lower:
            q = p + 1
            break
    before = r_up.sum()
    r_up[order[q:], :] = 0.0
    for t in range(1, k):
        if q - t >= 0:
            r_up[order[q - t], : k - t] = 0.0  # later districts' roots come after earlier ones'
    counts["L"] = int(before - r_up.sum())
    # U-fixing: leading units pairwise too far apart each open their own district
    dists: list[np.ndarray] = []
    for j in range(k):
        v = int(order[j])
        dist = gr.population_distance(v)
        if any(dist[order[t]] <= upper for t in range(j)):
            break
        dists.append(dist)
        x_lo[v, j] = 1.0
        x_up[v, :] = 0.0
        x_up[v, j] = 1.0
        r_up[:, j] = 0.0
        r_up[v, j] = 1.0
        r_lo[v, j] = 1.0
        far = dist > upper
        counts["U"] += int((x_up[far, j] > 0).sum())
        x_up[far, j] = 0.0
    return x_lo, x_up, r_lo, np.minimum(r_up, x_up), counts


def _build(gr: _Graph, k: int, lower: float, upper: float, contiguous: bool) -> _Model:
    """The labeling model of the module notes, fixings applied, as arrays."""
    n, m_e = gr.n, len(gr.edges)
    order, _ = vertex_order(gr, lower) if contiguous else (np.argsort(-gr.pop, kind="stable"), 0)
    max_units = int(np.searchsorted(np.cumsum(np.sort(gr.pop)), upper, side="right"))
    x_lo, x_up, r_lo, r_up, counts = _fixings(gr, k, lower, upper, order, contiguous)
    mdl = MilpArrays()
    x = mdl.add_vars((n, k), lower=x_lo, upper=x_up, integer=True)
    u_end, v_end = gr.edges[:, 0], gr.edges[:, 1]
    # Z-fixing: z_uv,j = 0 when u cannot be in j or v must be
    z_up = np.where((x_up[u_end] < 0.5) | (x_lo[v_end] > 0.5), 0.0, 1.0)
    counts["Z"] = int((z_up == 0).sum())
    z = mdl.add_vars((m_e, k), upper=z_up, cost=1.0, integer=True)
    nk = n * k
    mdl.add_rows(np.repeat(np.arange(n), k), x.ravel(), 1.0, 1.0, 1.0, num=n)
    mdl.add_rows(np.tile(np.arange(k), n), x.ravel(), np.repeat(gr.pop, k), lower, upper, num=k)
    rows = np.arange(m_e * k)
    mdl.add_rows(
        np.r_[rows, rows, rows],
        np.r_[x[u_end].ravel(), x[v_end].ravel(), z.ravel()],
        np.r_[np.ones(m_e * k), -np.ones(m_e * k), -np.ones(m_e * k)],
        -np.inf,
        0.0,
        num=m_e * k,
    )
    r = f = None
    if contiguous:
        r = mdl.add_vars((n, k), lower=r_lo, upper=r_up, integer=True)
        mdl.add_rows(np.tile(np.arange(k), n), r.ravel(), 1.0, 1.0, 1.0, num=k)
        cells = np.arange(nk)
        mdl.add_rows(np.r_[cells, cells], np.r_[r.ravel(), x.ravel()], np.r_[np.ones(nk), -np.ones(nk)], -np.inf, 0.0)
        arcs = np.r_[gr.edges, gr.edges[:, ::-1]]
        f = mdl.add_vars(len(arcs), upper=max(max_units - 1, 0))
        mdl.add_rows(
            np.r_[arcs[:, 1], arcs[:, 0], np.repeat(np.arange(n), k)],
            np.r_[f, f, r.ravel()],
            np.r_[np.ones(len(arcs)), -np.ones(len(arcs)), np.full(nk, float(max_units))],
            1.0,
            np.inf,
            num=n,
        )
        e_rows = np.arange(m_e)
        mdl.add_rows(
            np.r_[e_rows, e_rows, np.repeat(e_rows, k)],
            np.r_[f[:m_e], f[m_e:], z.ravel()],
            np.r_[np.ones(2 * m_e), np.full(m_e * k, float(max_units - 1))],
            -np.inf,
            float(max_units - 1),
            num=m_e,
        )
    return _Model(mdl, x, r, z, f, order, max_units, counts)


def canonical_labels(plan: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Relabel districts by the position of their first unit in ``order`` (0 = earliest)."""
    first_seen: dict[int, int] = {}
    for v in order:
        first_seen.setdefault(int(plan[v]), len(first_seen))
    return np.array([first_seen[int(d)] for d in plan], dtype=np.int64)


def _start_vector(gr: _Graph, model: _Model, plan: np.ndarray) -> np.ndarray:
    """A full column vector of the model for a connected plan (labels made canonical first)."""
    k = model.x.shape[1]
    lab = canonical_labels(plan, model.order)
    vec = np.zeros(model.milp.num_cols)
    vec[model.x[np.arange(gr.n), lab]] = 1.0
    u_end, v_end = gr.edges[:, 0], gr.edges[:, 1]
    leaves = lab[u_end] != lab[v_end]
    vec[model.z[np.flatnonzero(leaves), lab[u_end[leaves]]]] = 1.0
    if model.r is None or model.f is None:
        return vec
    m_e = len(gr.edges)
    arc_of = {(int(u), int(v)): a for a, (u, v) in enumerate(gr.edges)}
    arc_of.update({(int(v), int(u)): a + m_e for a, (u, v) in enumerate(gr.edges)})
    pos = np.empty(gr.n, dtype=np.int64)
    pos[model.order] = np.arange(gr.n)
    for j in range(k):
        members = np.flatnonzero(lab == j)
        root = int(members[np.argmin(pos[members])])
        vec[model.r[root, j]] = 1.0
        # BFS tree inside the district; the arc into each unit carries the size of its subtree
        parent = {root: -1}
        seq = [root]
        inside = set(members.tolist())
        for u in seq:
            for w in gr.nbrs[u]:
                w = int(w)
                if w in inside and w not in parent:
                    parent[w] = u
                    seq.append(w)
        size = dict.fromkeys(seq, 1)
        for u in reversed(seq[1:]):
            size[parent[u]] += size[u]
            vec[model.f[arc_of[(parent[u], u)]]] = size[u]
    return vec


# ---------------------------------------------------------------------------------------------------
# Heuristic: spanning-tree partition, then exact re-splits of district pairs
# ---------------------------------------------------------------------------------------------------


def tree_partition(
    gr: _Graph, k: int, lower: float, upper: float, rng: np.random.Generator, max_trees: int = TREES_PER_START
) -> np.ndarray | None:
    """A connected plan with every district in ``[lower, upper]`` by recursive spanning-tree bisection.

    Each step draws a random spanning tree of the units left (minimum spanning tree under random
    weights), and cuts off a subtree holding ``[lower, upper]`` people such that the rest can still
    form the remaining districts. Returns ``None`` when ``max_trees`` trees gave no complete plan.
    """
    n = gr.n
    plan = np.full(n, -1, dtype=np.int64)
    left = np.ones(n, bool)
    label = 0
    trees = 0
    while label < k - 1:
        if trees >= max_trees:
            return None
        trees += 1
        units = np.flatnonzero(left)
        sub, glob = gr.subgraph(units)
        if len(sub.edges) == 0:
            return None
        weights = rng.random(len(sub.edges)) + 1e-9
        mat = csr_matrix((weights, (sub.edges[:, 0], sub.edges[:, 1])), shape=(sub.n, sub.n))
        tree = minimum_spanning_tree(mat)
        tree = tree + tree.T
        root = int(rng.integers(sub.n))
        seq, pred = breadth_first_order(tree, root, directed=False, return_predecessors=True)
        if len(seq) < sub.n:
            return None  # the units left are not connected: this start cannot finish
        below = sub.pop.copy()
        for u in seq[:0:-1]:
            below[pred[u]] += below[u]
        total = below[root]
        rest = k - label - 1
        ok = (below >= lower) & (below <= upper) & (total - below >= rest * lower) & (total - below <= rest * upper)
        ok[root] = False
        cands = np.flatnonzero(ok)
        if len(cands) == 0:
            # start over from scratch now and then: an unlucky first district can make the rest impossible
            if trees % 200 == 0:
                plan[:] = -1
                left[:] = True
                label = 0
            continue
        cut = int(cands[rng.integers(len(cands))])
        # the subtree of `cut`: units whose path to the root passes through it
        inside = np.zeros(sub.n, bool)
        inside[cut] = True
        for u in seq:
            if pred[u] >= 0 and inside[pred[u]]:
                inside[u] = True
        chosen = glob[inside]
        plan[chosen] = label
        left[chosen] = False
        label += 1
    plan[left] = k - 1
    total_last = gr.pop[left].sum()
    if not (lower <= total_last <= upper) or not gr.connected(np.flatnonzero(left)):
        return None
    return plan


def _resplit(
    gr: _Graph, plan: np.ndarray, a: int, b: int, lower: float, upper: float, seconds: float, before: int
) -> tuple[np.ndarray, int] | None:
    """A split of districts ``a`` and ``b`` into two connected balanced districts cutting fewer than
    ``before`` edges between them, or ``None`` when none exists (exact, node-limited)."""
    units = np.flatnonzero((plan == a) | (plan == b))
    sub, glob = gr.subgraph(units)
    model = _build(sub, 2, lower, upper, contiguous=True)
    opts = SolverOptions(
        time_limit=seconds,
        mip_gap=0.0,
        # only a strictly better split is of use: prune everything at `before` or above
        highs_options={"mip_max_nodes": PAIR_NODE_LIMIT, "objective_bound": before - 0.5},
    )
    res = run_highs(model.milp.to_highs(opts), seconds)
    if res.values is None:
        return None
    lab = np.argmax(res.values[model.x].reshape(sub.n, 2), axis=1)
    out = plan.copy()
    out[glob] = np.where(lab == 0, a, b)
    return out, sub.cut_edges(lab)


def improve_by_pairs(
    gr: _Graph, plan: np.ndarray, k: int, lower: float, upper: float, deadline: float
) -> tuple[np.ndarray, int]:
    """Re-split adjacent district pairs exactly until no pair improves (see the module notes).

    A pair is solved again only when one of its two districts changed since it was last found
    locally optimal. Returns the plan and the number of pair re-splits solved.
    """
    solves = 0
    settled: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    for _ in range(MAX_PAIR_PASSES):
        improved = False
        pairs = sorted(
            {(int(min(plan[u], plan[v])), int(max(plan[u], plan[v]))) for u, v in gr.edges if plan[u] != plan[v]}
        )
        for a, b in pairs:
            key = (tuple(np.flatnonzero(plan == a)), tuple(np.flatnonzero(plan == b)))
            if key in settled:
                continue
            left = deadline - time.perf_counter()
            if left <= 0:
                return plan, solves
            members = (plan == a) | (plan == b)
            inner = members[gr.edges[:, 0]] & members[gr.edges[:, 1]]
            before = int((plan[gr.edges[inner, 0]] != plan[gr.edges[inner, 1]]).sum())
            found = _resplit(gr, plan, a, b, lower, upper, left, before)
            solves += 1
            if found is not None and found[1] < before:
                plan = found[0]
                improved = True
            else:
                settled.add(key)
        if not improved:
            break
    return plan, solves


def districting_heuristic(
    gr: _Graph,
    k: int,
    lower: float,
    upper: float,
    *,
    seed: int = 0,
    starts: int = HEURISTIC_STARTS,
    deadline: float = math.inf,
) -> tuple[np.ndarray | None, str]:
    """Best connected balanced plan over ``starts`` spanning-tree starts, each improved by pair re-splits."""
    best: np.ndarray | None = None
    best_cut = math.inf
    notes = []
    for s in range(starts):
        if time.perf_counter() >= deadline:
            notes.append("time limit hit in the heuristic")
            break
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(s,)))
        plan = tree_partition(gr, k, lower, upper, rng)
        if plan is None:
            notes.append(f"start {s}: no tree partition")
            if best is None:
                break  # the band is too tight for tree cuts on this graph: leave the start to the MILP
            continue
        first = gr.cut_edges(plan)
        if k > 1:
            plan, solves = improve_by_pairs(gr, plan, k, lower, upper, deadline)
        else:
            solves = 0
        cut = gr.cut_edges(plan)
        notes.append(f"start {s}: {first} -> {cut} cut edges ({solves} pair re-splits)")
        if cut < best_cut:
            best, best_cut = plan, cut
    return best, "; ".join(notes)


# ---------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------


def solve_cut_edges(
    graph: nx.Graph,
    k: int,
    lower: float,
    upper: float,
    *,
    contiguous: bool = True,
    time_limit: float = 600.0,
    mip_gap: float = 0.0,
    seed: int = 0,
    heuristic_starts: int = HEURISTIC_STARTS,
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
        Every district connected (flow constraints and a connected warm start); ``False`` drops both.
    time_limit
        Wall-clock safety net of the whole procedure [s]; the heuristic stops on work limits
        (starts, trees, passes, nodes), the exact solve on optimality or this limit.
    mip_gap
        Relative gap at which the exact solve stops.
    seed
        Seed of the spanning trees.
    heuristic_starts
        Spanning-tree starts of the heuristic (0: exact model alone).

    Returns
    -------
    DistrictingResult
        ``status`` is ``optimal`` when the exact model closed its gap; the bound is proven in every case.
    """
    tick = time.perf_counter()
    deadline = tick + time_limit
    gr = _Graph.from_networkx(graph)
    if gr.n == 0 or k < 1:
        raise SalesopsError("solve_cut_edges: the graph needs units and k >= 1.")
    if gr.pop.max() > upper or gr.pop.sum() < k * lower or gr.pop.sum() > k * upper:
        raise SalesopsError(
            f"solve_cut_edges: no plan can exist: total population {gr.pop.sum():.0f} must lie in "
            f"[{k * lower:.0f}, {k * upper:.0f}] and no unit may exceed {upper:.0f} "
            f"(largest {gr.pop.max():.0f}); widen [lower, upper] or change k."
        )
    plan, heur_note = (None, "no heuristic")
    if contiguous and heuristic_starts > 0:
        plan, heur_note = districting_heuristic(
            gr, k, lower, upper, seed=seed, starts=heuristic_starts, deadline=deadline
        )
    heur_seconds = time.perf_counter() - tick
    heur_obj = float(gr.cut_edges(plan)) if plan is not None else math.nan
    model = _build(gr, k, lower, upper, contiguous)
    start = _start_vector(gr, model, plan) if plan is not None else None
    left = max(deadline - time.perf_counter(), 0.5)
    h = model.milp.to_highs(SolverOptions(time_limit=left, mip_gap=mip_gap))
    res = run_highs(h, left, warm_start=start, trace_every=max(left / 40, 1.0))
    info = res.info
    district = np.full(gr.n, -1, dtype=np.int64)
    objective = math.nan
    if res.values is not None:
        district = np.argmax(res.values[model.x].reshape(gr.n, k), axis=1)
        objective = float(gr.cut_edges(district))
    elif plan is not None:
        district = canonical_labels(plan, model.order)
        objective = heur_obj
    bound = info.bound
    if res.values is None and plan is None:
        status = NO_SOLUTION
    elif info.status == OPTIMAL:
        status = OPTIMAL
    else:
        status = FEASIBLE
    split = sum(not gr.connected(np.flatnonzero(district == j)) for j in range(k)) if res.values is not None else 0
    if contiguous and split:
        log.error("districting: %d districts of the exact plan are not connected (a model error)", split)
    seconds = time.perf_counter() - tick
    note = (
        f"heuristic {heur_obj:g} in {heur_seconds:.1f}s ({heur_note}); exact: {info.status} ({info.termination}), "
        f"bound {bound:.2f}, {info.nodes} nodes, {info.seconds:.1f}s; {split} split districts; fixed {model.fixed}"
    )
    return DistrictingResult(
        district,
        objective,
        bound,
        relative_gap(objective, bound),
        status,
        seconds,
        heur_obj,
        heur_seconds,
        info.nodes,
        res.trace,
        note,
    )
