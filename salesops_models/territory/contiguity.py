"""Contiguous territories: the adjacency graph of the units, the connectivity rule and its cuts.

**The rule.** Every account belongs to a *unit* (by default the account itself; with
``contiguity_unit``, e.g. a ZIP code column, all accounts sharing a value). Units are adjacent when the
adjacency table names them as a pair, or, without a table, when the Delaunay triangulation of the units'
locations joins them and the edge is not *long*: an edge is cut when it is longer than
:data:`LONG_EDGE_FACTOR` times the median length of the Delaunay edges at each of its two ends, unless it
belongs to the minimum spanning tree of the triangulation (so the graph stays connected: the map's gaps,
a bay or a mountain range, are not crossed when a shorter way exists). A territory is **contiguous** when
the units holding its accounts form one connected piece of this graph. Reps in the exception list may
hold several pieces.

**The cuts.** HiGHS has no lazy-constraint callback, so the models get the connectivity constraints in
a loop: solve, find the territories in pieces, add a separator inequality for each piece, solve again
(warm started). If accounts :math:`a` and :math:`b` are both in territory :math:`r`, every set of units
:math:`S` whose removal separates their units holds an account of :math:`r`:

.. math:: x_{ar} + x_{br} - 1 \\le \\sum_{s \\in S} \\sum_{c \\in s} x_{cr}

(Validi & Buchanan 2022; valid for several accounts per unit, since it only asks that *some* account
of :math:`r` sits in :math:`S`). :math:`S` is the minimal separator next to the piece: the units
adjacent to the piece from which the territory's largest piece can be reached without crossing the
piece or its neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from salesops_models.errors import DataValidationError, SalesopsError, format_rows
from salesops_models.geo import EARTH_RADIUS_KM
from salesops_models.territory.instance import AlignmentInstance

log = logging.getLogger(__name__)

#: A Delaunay edge longer than this many times the median edge length at both its ends is cut
#: (unless the minimum spanning tree needs it).
LONG_EDGE_FACTOR = 3.0


@dataclass
class AdjacencyGraph:
    """Which units touch: the graph over which territories must be connected.

    Attributes
    ----------
    unit_ids
        Label of each unit (account ids, or the values of the unit column).
    unit_of_account
        Unit index of each account (in the accounts table's order).
    matrix
        Symmetric ``U x U`` adjacency matrix (CSR, no self loops).
    source
        ``"table"`` or ``"locations"`` (Delaunay triangulation, long edges cut).
    """

    unit_ids: np.ndarray
    unit_of_account: np.ndarray
    matrix: csr_matrix
    source: str

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    @property
    def n_edges(self) -> int:
        return int(self.matrix.nnz // 2)

    @cached_property
    def accounts_of_unit(self) -> list[np.ndarray]:
        order = np.argsort(self.unit_of_account, kind="stable")
        bounds = np.searchsorted(self.unit_of_account[order], np.arange(self.n_units + 1))
        return [order[bounds[u] : bounds[u + 1]] for u in range(self.n_units)]

    def neighbours(self, u: int) -> np.ndarray:
        return self.matrix.indices[self.matrix.indptr[u] : self.matrix.indptr[u + 1]]

    def edges(self) -> np.ndarray:
        """``E x 2`` unit index pairs, each edge once (``u < v``)."""
        m = self.matrix.tocoo()
        keep = m.row < m.col
        return np.c_[m.row[keep], m.col[keep]]

    def pieces(self, units: np.ndarray) -> np.ndarray:
        """Connected piece (0, 1, ...) of each of ``units`` in the subgraph they induce."""
        if len(units) == 0:
            return np.zeros(0, dtype=int)
        sub = self.matrix[units][:, units]
        return connected_components(sub, directed=False)[1]


def _graph(
    unit_ids: np.ndarray, unit_of: np.ndarray, u: np.ndarray, v: np.ndarray, source: str
) -> AdjacencyGraph:
    n = len(unit_ids)
    keep = u != v
    u, v = u[keep], v[keep]
    m = coo_matrix((np.ones(2 * len(u)), (np.r_[u, v], np.r_[v, u])), shape=(n, n)).tocsr()
    m.data[:] = 1.0  # duplicate pairs sum up: one edge
    m.sort_indices()
    return AdjacencyGraph(unit_ids, unit_of, m, source)


def units_of_accounts(accounts: pd.DataFrame, unit_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(unit_ids, unit index per account)``: each account its own unit, or one unit per value of a column."""
    if unit_column is None or unit_column == "account_id":
        ids = accounts["account_id"].astype(str).to_numpy()
        return ids, np.arange(len(ids))
    if unit_column not in accounts.columns:
        raise DataValidationError(
            "accounts",
            [f"contiguity unit column '{unit_column}' is missing; the table has {list(accounts.columns)}."],
        )
    labels = accounts[unit_column].astype("string")
    if labels.isna().any():
        raise DataValidationError(
            "accounts",
            [
                f"column '{unit_column}' (the contiguity unit) is empty for "
                f"{format_rows(list(accounts.loc[labels.isna(), 'account_id']))}; give every account a unit."
            ],
        )
    codes, uniques = pd.factorize(labels, sort=True)
    return np.asarray(uniques.astype(str)), codes.astype(np.int64)


def read_adjacency(path: str | Path) -> pd.DataFrame:
    """The table of adjacent unit pairs in a CSV or parquet file (unit ids read as text).

    Raises
    ------
    DataValidationError
        When the file does not exist or is neither CSV nor parquet.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(
            "territory.adjacency",
            [f"file {path} not found; give the path of a CSV or parquet table of unit pairs."],
        )
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path).astype(str)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path, dtype=str)
    raise DataValidationError(
        "territory.adjacency", [f"file {path}: unknown format '{path.suffix}'; use .csv or .parquet."]
    )


def adjacency_from_table(
    pairs: pd.DataFrame, unit_ids: np.ndarray, unit_of_account: np.ndarray, source: str = "adjacency table"
) -> AdjacencyGraph:
    """The graph of a table of unit pairs (its first two columns; each row one adjacency, either order).

    Raises
    ------
    DataValidationError
        When the table has fewer than two columns or names units that no account belongs to.
    """
    if pairs.shape[1] < 2:
        raise DataValidationError(
            source,
            [
                f"an adjacency table needs two columns of unit ids (one pair per row); it has {list(pairs.columns)}."
            ],
        )
    a = pairs.iloc[:, 0].astype("string").to_numpy()
    b = pairs.iloc[:, 1].astype("string").to_numpy()
    pos = {str(u): i for i, u in enumerate(unit_ids)}
    unknown = sorted({str(x) for x in np.r_[a, b] if str(x) not in pos})
    if unknown:
        raise DataValidationError(
            source,
            [
                f"{len(unknown)} unit(s) not among the accounts' units: {format_rows(unknown)}; "
                "fix the ids or drop those rows (units are account ids unless territory.contiguity_unit "
                "names another accounts column)."
            ],
        )
    u = np.array([pos[str(x)] for x in a], dtype=np.int64)
    v = np.array([pos[str(x)] for x in b], dtype=np.int64)
    return _graph(unit_ids, unit_of_account, u, v, "table")


def adjacency_from_locations(
    lat: np.ndarray,
    lon: np.ndarray,
    unit_ids: np.ndarray,
    unit_of_account: np.ndarray,
    long_edge_factor: float = LONG_EDGE_FACTOR,
) -> AdjacencyGraph:
    """The Delaunay graph of the units' locations with long edges cut (see the module notes).

    A unit sits at the mean location of its accounts [deg]; the plane is the equirectangular projection
    around the mean latitude [km]. Units at the same spot are joined to each other directly.
    """
    from scipy.spatial import Delaunay, QhullError

    n = len(unit_ids)
    cnt = np.bincount(unit_of_account, minlength=n)
    ulat = np.bincount(unit_of_account, weights=lat, minlength=n) / np.maximum(cnt, 1)
    ulon = np.bincount(unit_of_account, weights=lon, minlength=n) / np.maximum(cnt, 1)
    k = np.pi / 180 * EARTH_RADIUS_KM
    xy = np.c_[ulon * np.cos(np.radians(ulat.mean())) * k, ulat * k]
    _, first, inverse = np.unique(xy.round(6), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    dup_u = np.flatnonzero(first[inverse] != np.arange(n))
    same = (dup_u, first[inverse[dup_u]])  # a unit at the spot of an earlier one: joined to it
    pts = xy[first]
    if len(pts) <= 1:
        return _graph(unit_ids, unit_of_account, same[0], same[1], "locations")
    if len(pts) == 2:
        eu, ev = np.array([0]), np.array([1])
    else:
        try:
            tri = Delaunay(pts)
        except QhullError:  # every point on one line: join them in order along it
            order = np.lexsort((pts[:, 1], pts[:, 0]))
            eu, ev = order[:-1], order[1:]
        else:
            s = tri.simplices
            e = np.sort(np.r_[s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]], axis=1)
            e = np.unique(e, axis=0)
            eu, ev = e[:, 0], e[:, 1]
    length = np.hypot(*(pts[eu] - pts[ev]).T)
    m = len(pts)
    keep = np.ones(len(eu), dtype=bool)
    if len(eu) > m - 1:
        # median edge length at each point
        ends = np.r_[eu, ev]
        lens = np.r_[length, length]
        order = np.lexsort((lens, ends))
        bounds = np.searchsorted(ends[order], np.arange(m + 1))
        med = np.array([np.median(lens[order[bounds[i] : bounds[i + 1]]]) for i in range(m)])
        long = (length > long_edge_factor * med[eu]) & (length > long_edge_factor * med[ev])
        mst = minimum_spanning_tree(coo_matrix((length + 1e-9, (eu, ev)), shape=(m, m))).tocoo()
        in_mst = set(
            zip(np.minimum(mst.row, mst.col).tolist(), np.maximum(mst.row, mst.col).tolist(), strict=True)
        )
        keep = ~long | np.array([(int(a), int(b)) in in_mst for a, b in zip(eu, ev, strict=True)], dtype=bool)
    u = np.r_[first[eu[keep]], same[0]]
    v = np.r_[first[ev[keep]], same[1]]
    return _graph(unit_ids, unit_of_account, u, v, "locations")


@dataclass(frozen=True)
class ContiguityCut:
    """``x[a, rep] + x[b, rep] - 1 <= sum of x[c, rep] over c in separator`` (account indices)."""

    rep: int
    a: int
    b: int
    separator: tuple[int, ...]


@dataclass
class Contiguity:
    """Territories that must be connected over ``graph`` (reps in ``exempt`` may be in pieces).

    Attributes
    ----------
    graph
        The adjacency graph of the units.
    exempt
        Rep indices whose territories may be in pieces.
    cuts
        Separator inequalities found so far (valid for every plan; shared by every model of one alignment).
    """

    graph: AdjacencyGraph
    exempt: frozenset[int] = frozenset()
    cuts: list[ContiguityCut] = field(default_factory=list)
    _seen: set[ContiguityCut] = field(default_factory=set, repr=False)

    def territory_pieces(self, plan: np.ndarray, r: int) -> list[np.ndarray]:
        """The pieces (arrays of unit indices) of territory ``r``, largest first (most accounts)."""
        units = np.unique(self.graph.unit_of_account[plan == r])
        if len(units) == 0:
            return []
        label = self.graph.pieces(units)
        if label.max() == 0:
            return [units]
        weight = np.bincount(self.graph.unit_of_account[plan == r], minlength=self.graph.n_units)[units]
        size = np.bincount(label, weights=weight)
        # largest piece first; ties: the piece with the smallest unit index
        first = np.array([units[label == i].min() for i in range(len(size))])
        order = np.lexsort((first, -size))
        return [units[label == i] for i in order]

    def broken(self, plan: np.ndarray, reps: Iterable[int] | None = None) -> list[int]:
        """Territories (not exempt) whose units form more than one piece."""
        reps = range(int(plan.max()) + 1) if reps is None else reps
        out = []
        for r in reps:
            if r in self.exempt:
                continue
            units = np.unique(self.graph.unit_of_account[plan == r])
            if len(units) > 1 and self.graph.pieces(units).max() > 0:
                out.append(int(r))
        return out

    def add_cuts(
        self, inst: AlignmentInstance, plan: np.ndarray, reps: Sequence[int], per_piece: int = 5
    ) -> int:
        """Separator cuts for every piece of the territories ``reps`` but their largest; how many were new.

        For each smaller piece: the separator next to it and the one next to the largest piece, each with
        up to ``per_piece`` of the piece's accounts against one account of the largest piece.
        """
        cand = _candidate_units(inst, self.graph)
        new = 0
        for r in reps:
            pieces = self.territory_pieces(plan, r)
            if len(pieces) < 2:
                continue
            main = pieces[0]
            b = int(_accounts_in(self.graph, plan, r, main)[0])
            for piece in pieces[1:]:
                inside = _accounts_in(self.graph, plan, r, piece)[:per_piece]
                for sep in (
                    _separator(self.graph, piece, int(main[0])),
                    _separator(self.graph, main, int(piece[0])),
                ):
                    members = [
                        int(c)
                        for s in sep
                        if cand[r, s]
                        for c in self.graph.accounts_of_unit[s]
                        if pair_index(inst, int(c), r) >= 0
                    ]
                    for a in inside:
                        cut = ContiguityCut(int(r), int(a), b, tuple(sorted(members)))
                        if cut not in self._seen:
                            self._seen.add(cut)
                            self.cuts.append(cut)
                            new += 1
        return new

    def validate(self, inst: AlignmentInstance) -> None:
        """Refuse inputs under which contiguity cannot hold, naming the units and the fix.

        Raises
        ------
        SalesopsError
            When some units cannot be reached from the others (a table that leaves them out), or when a
            rep's locked accounts lie in units that no connected territory of his can join (the units in
            between are locked to other reps or are not his candidates).
        """
        g = self.graph
        n_comp, label = connected_components(g.matrix, directed=False)
        if n_comp > 1:
            sizes = np.bincount(label)
            main = int(np.argmax(sizes))
            cut_off = g.unit_ids[label != main]
            raise SalesopsError(
                f"contiguity: {len(cut_off)} unit(s) cannot be reached from the other {int(sizes[main])} over the "
                f"adjacency graph: {format_rows(list(cut_off))}. Add pairs that join them to their neighbours to "
                "the adjacency table, or leave territory.adjacency empty to build the graph from locations."
            )
        for r in range(inst.n_reps):
            if r in self.exempt:
                continue
            locked_units = np.unique(g.unit_of_account[inst.lock == r])
            if len(locked_units) < 2:
                continue
            # units r may hold: a candidate account of r that is not locked to another rep
            ok = (inst.lock < 0) | (inst.lock == r)
            sel = (inst.pair_r == r) & ok[inst.pair_a]
            free = np.zeros(g.n_units, dtype=bool)
            free[g.unit_of_account[inst.pair_a[sel]]] = True
            units = np.flatnonzero(free)
            label_r = g.pieces(units)
            at = dict(zip(units.tolist(), label_r.tolist(), strict=True))
            groups = {at[int(u)] for u in locked_units}
            if len(groups) > 1:
                raise SalesopsError(
                    f"contiguity: rep {inst.rep_ids[r]}'s locked accounts lie in units "
                    f"{format_rows(list(g.unit_ids[locked_units]))} that no connected territory of his can join "
                    "(the units between them are locked to other reps or are not among his candidates). Unlock "
                    f"some of them, raise territory.candidate_k, or add {inst.rep_ids[r]} to "
                    "territory.contiguity_exceptions."
                )


def _candidate_units(inst: AlignmentInstance, g: AdjacencyGraph) -> np.ndarray:
    """``R x U`` boolean: rep r is a candidate for some account of unit u."""
    m = np.zeros((inst.n_reps, g.n_units), dtype=bool)
    m[inst.pair_r, g.unit_of_account[inst.pair_a]] = True
    return m


def _accounts_in(g: AdjacencyGraph, plan: np.ndarray, r: int, units: np.ndarray) -> np.ndarray:
    inside = np.zeros(g.n_units, dtype=bool)
    inside[units] = True
    return np.flatnonzero((plan == r) & inside[g.unit_of_account])


def _separator(g: AdjacencyGraph, piece: np.ndarray, target: int) -> np.ndarray:
    """A minimal separator of ``piece`` from unit ``target``: the neighbours of the piece that ``target``
    reaches without crossing the piece or its neighbours."""
    inside = np.zeros(g.n_units, dtype=bool)
    inside[piece] = True
    boundary = np.zeros(g.n_units, dtype=bool)
    for u in piece:
        boundary[g.neighbours(u)] = True
    boundary &= ~inside
    rest = np.flatnonzero(~inside & ~boundary)
    if target not in set(rest.tolist()):
        return np.flatnonzero(boundary)
    label = g.pieces(rest)
    reach = np.zeros(g.n_units, dtype=bool)
    reach[rest[label == label[np.searchsorted(rest, target)]]] = True
    return np.array([s for s in np.flatnonzero(boundary) if reach[g.neighbours(s)].any()], dtype=int)


def make_connected(
    inst: AlignmentInstance, contiguity: Contiguity, plan: np.ndarray, cost: np.ndarray, passes: int = 10
) -> np.ndarray:
    """A plan whose territories are connected, close to ``plan`` (bands may break: a start to repair).

    Each territory in pieces keeps its largest piece (the one with the most locked accounts first);
    the accounts of its other pieces go, cheapest pair first, to a territory holding a unit next to
    theirs (or their own unit), in waves from the edge of the pieces inward, so no territory falls
    apart on the way. An account no neighbouring territory may take (not a candidate) goes to its
    cheapest candidate, and the next pass repairs what that breaks. Locked accounts never move.
    """
    g = contiguity.graph
    plan = plan.copy()
    locked = inst.lock >= 0
    first = np.searchsorted(inst.pair_a, np.arange(inst.n_accounts + 1))
    for _ in range(passes):
        broken = contiguity.broken(plan)
        if not broken:
            break
        orphans: list[int] = []
        for r in broken:
            pieces = contiguity.territory_pieces(plan, r)
            n_locked = [int(locked[_accounts_in(g, plan, r, p)].sum()) for p in pieces]
            keep = int(np.argmax(n_locked)) if max(n_locked) > 0 else 0
            for i, piece in enumerate(pieces):
                if i != keep:
                    acc = _accounts_in(g, plan, r, piece)
                    acc = acc[~locked[acc]]
                    plan[acc] = -1
                    orphans.extend(int(a) for a in acc)
        pending = sorted(orphans)
        while pending:
            left = []
            for a in pending:
                u = g.unit_of_account[a]
                near = np.r_[u, g.neighbours(u)]
                reps_near = {int(plan[c]) for w in near for c in g.accounts_of_unit[w] if plan[c] >= 0}
                pairs = np.arange(first[a], first[a + 1])
                ok = pairs[np.isin(inst.pair_r[pairs], list(reps_near))]
                if len(ok):
                    plan[a] = inst.pair_r[ok[np.argmin(cost[ok])]]
                else:
                    left.append(a)
            if len(left) == len(pending):
                for a in left:  # no neighbouring territory may take it: its cheapest candidate
                    pairs = np.arange(first[a], first[a + 1])
                    plan[a] = inst.pair_r[pairs[np.argmin(cost[pairs])]]
                break
            pending = left
    return plan


def pair_index(inst: AlignmentInstance, a: int, r: int) -> int:
    """Index of the candidate pair (account ``a``, rep ``r``), -1 when it is not a candidate."""
    lo, hi = np.searchsorted(inst.pair_a, [a, a + 1])
    hit = np.flatnonzero(inst.pair_r[lo:hi] == r)
    return int(lo + hit[0]) if len(hit) else -1


def adjacency_graph(
    accounts: pd.DataFrame,
    inst: AlignmentInstance,
    adjacency: object | None,
    unit_column: str | None = None,
) -> AdjacencyGraph | None:
    """The graph of the alignment: from a table of unit pairs or a ``networkx.Graph`` over unit ids, else
    from the accounts' locations; ``None`` without both."""
    unit_ids, unit_of = units_of_accounts(accounts, unit_column)
    if adjacency is None:
        if inst.lat is None or inst.lon is None:
            return None
        return adjacency_from_locations(inst.lat, inst.lon, unit_ids, unit_of)
    if isinstance(adjacency, pd.DataFrame):
        return adjacency_from_table(adjacency, unit_ids, unit_of)
    edges = list(adjacency.edges())  # type: ignore[attr-defined]  # a networkx graph
    pairs = (
        pd.DataFrame(edges, columns=["unit_a", "unit_b"])
        if edges
        else pd.DataFrame(columns=["unit_a", "unit_b"])
    )
    graph = adjacency_from_table(pairs.astype(str), unit_ids, unit_of, source="adjacency graph")
    return graph


def pieces_per_territory(graph: AdjacencyGraph, plan: np.ndarray, n_reps: int) -> np.ndarray:
    """Number of connected pieces of each territory (0 for an empty one)."""
    rule = Contiguity(graph)
    return np.array([len(rule.territory_pieces(plan, r)) for r in range(n_reps)], dtype=int)


class ContiguityState:
    """Which single moves keep every territory connected, kept up to date as a plan changes.

    A move of account ``a`` (unit ``u``) from territory ``s`` to ``t`` keeps both connected when
    ``s`` keeps another account in ``u`` or ``u`` is not a cut vertex of ``s``'s units, and when ``t``
    already holds an account in ``u`` or in a unit next to it (or holds nothing yet). Exempt territories
    need neither. Per unit and territory the state counts the territory's accounts in the unit and its
    neighbouring units that hold some; cut vertices are recomputed for the two territories a move changes.
    """

    def __init__(self, inst: AlignmentInstance, rule: Contiguity, plan: np.ndarray):
        self.inst, self.rule, self.graph = inst, rule, rule.graph
        g, R = self.graph, inst.n_reps
        self.unit = g.unit_of_account
        self.count = np.zeros((g.n_units, R), dtype=np.int32)
        np.add.at(self.count, (self.unit, plan), 1)
        self.near = np.asarray(g.matrix @ (self.count > 0).astype(np.int32))  # neighbouring units held
        self.exempt = np.zeros(R, dtype=bool)
        self.exempt[list(rule.exempt)] = True
        self.size = self.count.sum(axis=0)
        self.cut_vertex = np.zeros((g.n_units, R), dtype=bool)
        for r in range(R):
            self._refresh(r)

    def _refresh(self, r: int) -> None:
        units = np.flatnonzero(self.count[:, r] > 0)
        self.cut_vertex[:, r] = False
        if len(units) > 2 and not self.exempt[r]:
            self.cut_vertex[_cut_vertices(self.graph, units), r] = True

    def allowed(self, accounts: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Whether moving each of ``accounts`` from ``source`` to ``target`` keeps both connected."""
        u = self.unit[accounts]
        leave = self.exempt[source] | (self.count[u, source] > 1) | ~self.cut_vertex[u, source]
        join = (
            self.exempt[target]
            | (self.count[u, target] > 0)
            | (self.near[u, target] > 0)
            | (self.size[target] == 0)
        )
        return leave & join

    def move(self, a: int, source: int, target: int) -> None:
        """Record that account ``a`` moved from ``source`` to ``target``."""
        u = int(self.unit[a])
        nb = self.graph.neighbours(u)
        for r, step in ((source, -1), (target, 1)):
            before = self.count[u, r] > 0
            self.count[u, r] += step
            self.size[r] += step
            if (self.count[u, r] > 0) != before:
                self.near[nb, r] += step
                self._refresh(r)


def _cut_vertices(g: AdjacencyGraph, units: np.ndarray) -> np.ndarray:
    """Cut vertices (articulation points) of the subgraph induced by ``units`` (iterative Tarjan)."""
    sub = g.matrix[units][:, units].tocsr()
    n = len(units)
    disc = np.full(n, -1)
    low = np.zeros(n, dtype=int)
    is_cut = np.zeros(n, dtype=bool)
    timer = 0
    for root in range(n):
        if disc[root] >= 0:
            continue
        disc[root] = low[root] = timer
        timer += 1
        children = 0
        stack = [(root, -1, sub.indptr[root])]
        while stack:
            v, parent, i = stack[-1]
            if i < sub.indptr[v + 1]:
                stack[-1] = (v, parent, i + 1)
                w = sub.indices[i]
                if disc[w] < 0:
                    disc[w] = low[w] = timer
                    timer += 1
                    if v == root:
                        children += 1
                    stack.append((w, v, sub.indptr[w]))
                elif w != parent:
                    low[v] = min(low[v], disc[w])
            else:
                stack.pop()
                if stack:
                    p = stack[-1][0]
                    low[p] = min(low[p], low[v])
                    if p != root and low[v] >= disc[p]:
                        is_cut[p] = True
        if children > 1:
            is_cut[root] = True
    return units[is_cut]


def cut_row(inst: AlignmentInstance, cut: ContiguityCut) -> tuple[np.ndarray, np.ndarray]:
    """The cut as pair indices and coefficients (``row <= 1``); pairs that are not candidates drop out."""
    pos = [pair_index(inst, cut.a, cut.rep), pair_index(inst, cut.b, cut.rep)]
    neg = [pair_index(inst, c, cut.rep) for c in cut.separator]
    cols = [p for p in pos if p >= 0] + [p for p in neg if p >= 0]
    vals = [1.0 for p in pos if p >= 0] + [-1.0 for p in neg if p >= 0]
    return np.array(cols, dtype=np.int64), np.array(vals)
