"""Exact p-median, uncapacitated and capacitated: swap search, Lagrangian branch and bound, MILPs.

Clients :math:`i` (accounts, weighted), candidate sites :math:`j`, cost :math:`c_{ij}` (weighted distance;
``inf`` = pair not allowed), :math:`p` centres to open, some possibly fixed open (today's reps).
Every procedure starts from the swap-search plan (:func:`swap_search`: greedy opening, then
best-improvement swaps, Teitz & Bart 1968) and stops on work limits (nodes, iterations, rounds);
its time limit is only a safety net.

Lagrangian branch and bound on sites (Beasley 1993), uncapacitated
------------------------------------------------------------------
Relaxing the assignment rows :math:`\\sum_j x_{ij} = 1` with multipliers :math:`\\lambda` leaves

.. math::

    L(\\lambda) = \\sum_i \\lambda_i + \\min_{|S| = p,\\; S \\supseteq F} \\sum_{j \\in S} \\rho_j,
    \\qquad \\rho_j = \\sum_i \\min(0, c_{ij} - \\lambda_i),

whose maximum over :math:`\\lambda` is the LP bound. Each node of the tree runs subgradient ascent
(Polyak steps toward the incumbent) from its parent's multipliers; closes every free site whose
opening would lift the bound above the incumbent minus the smallest improvement (1 when every cost is
an integer), and forces open every chosen site whose closing would (reduced-cost fixing); tries its
chosen sites as a plan; and branches on the chosen free site whose closing raises the bound most
(closed first, then forced open), best bound first.

Covering ("radius") MILP, uncapacitated
---------------------------------------
For client :math:`i` let :math:`D_i^0 < D_i^1 < \\dots` be its distinct costs to the allowed sites;
:math:`z_i^k \\ge 0` means "not served within :math:`D_i^k`" (Cornuejols, Nemhauser & Wolsey 1980;
Elloumi 2010; García, Labbé & Marín 2011), in chain form:

.. math::

    \\min \\sum_i \\Big(D_i^0 + \\sum_{k < d_i} (D_i^{k+1} - D_i^k)\\, z_i^k\\Big)
    \\quad\\text{s.t.}\\quad
    z_i^k + \\sum_{j: c_{ij} = D_i^k} y_j \\ge z_i^{k-1}\\;(z_i^{-1} = 1), \\qquad \\sum_j y_j = p.

With every level it is the p-median with the classic LP bound and one nonzero per (client, site)
pair. Truncated at :math:`d_i` levels it charges :math:`\\min(c_{i,j(i)}, D_i^{d_i})`: a relaxation;
a plan whose true cost equals its model cost is optimal, otherwise the clients charged too little get
deeper levels and the model is solved again.

Which one (:func:`p_median`, ``method="auto"``): the covering MILP below
:data:`RADIUS_MAX_CLIENTS_PER_CENTRE` clients per centre (many centres: each client needs few levels,
the model is small and tight; OR-Library p >= 20 closes in seconds, where the tree spends up to a
minute), the Lagrangian tree above (few, large territories: the covering LP of pmed16 alone took a
minute, the tree closes every p = 5-10 instance in seconds).

Capacitated (single source)
---------------------------
:math:`x_{ij} \\in \\{0,1\\}`, :math:`\\sum_j x_{ij} = 1`, :math:`x_{ij} \\le y_j`,
:math:`\\sum_i q_i x_{ij} \\le Q_j y_j`, :math:`\\sum_j y_j = p`; when clients are the sites an open
centre serves itself (:math:`x_{jj} = y_j`, the OR-Library convention). Pairs whose client cannot fit
beside the site's own demand are left out. Steps (:mod:`~salesops_models.territory.capacitated`):
a start plan from the swap-search sites improved by the capacitated search (location and swap steps,
exact assignments); the Lagrangian bound with one knapsack per site, whose reduced costs close sites
and drop pairs that no plan cheaper than the start can use; then HiGHS on the reduced MILP from the
start plan. The reported bound is the larger of the Lagrangian and the MILP bound.
Tried and dropped: the Lagrangian tree on sites with knapsack subproblems (its bound, the
set-partitioning bound, is ~973 on pmedcap1_20 against the LP's 961.2, HiGHS's root 968.7 and the
optimum 1005; branching on sites alone closed that gap more slowly than HiGHS on the MILP, e.g.
pmedcap1_08 unsolved at 120 s); local branching (the MILP restricted to plans changing at most two
centres, 30-100 nodes per round) before the MILP: pmedcap1_20 went 1022 -> 1013 in two rounds but
spent 90 s on them (each round repeats the full model's root), and 08 took 55 s instead of 26 s.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from salesops_models.errors import SalesopsError
from salesops_models.territory.capacitated import capacitated_local_search, knapsack_lagrangian
from salesops_models.territory.milp_arrays import MilpArrays, run_highs
from salesops_models.territory.solver import (
    FEASIBLE,
    INFEASIBLE,
    NO_SOLUTION,
    OPTIMAL,
    SolveInfo,
    SolverOptions,
    relative_gap,
)

log = logging.getLogger(__name__)

#: ``method="auto"`` uses the covering MILP below this many clients per centre, the tree above.
RADIUS_MAX_CLIENTS_PER_CENTRE = 15.0
#: Work limits: improving swaps of the swap search; subgradient iterations at the root and per node;
#: iterations without a better bound before the step halves; branch-and-bound nodes.
MAX_SWAPS = 10_000
ROOT_ITERATIONS = 3000
NODE_ITERATIONS = 400
STALL = 20
NODE_LIMIT = 5000


@dataclass
class PMedianResult:
    """Open centres and the centre of each client.

    Attributes
    ----------
    centres
        Indices of the open candidate centres (columns of the cost matrix).
    assignment
        Centre index (column) serving each client.
    objective
        :math:`\\sum_i c_{i, j(i)}` of the plan.
    solve
        Status, objective, bound, gap, seconds and nodes of the whole procedure.
    build_seconds
        Model build time [s] (covering MILP only).
    heuristic_objective
        Cost of the incumbent that started the exact search (NaN if none).
    method
        ``lagrangian`` or ``radius``.
    note
        What each step did, for the log and the benchmark table.
    """

    centres: np.ndarray
    assignment: np.ndarray
    objective: float
    solve: SolveInfo
    build_seconds: float = 0.0
    heuristic_objective: float = math.nan
    method: str = ""
    note: str = ""

    def summary(self) -> dict[str, float | int | str]:
        return {
            "status": self.solve.status,
            "objective": self.objective,
            "bound": self.solve.bound,
            "mip_gap": self.solve.gap,
            "seconds": self.solve.seconds,
            "build_seconds": self.build_seconds,
            "centres": int(len(self.centres)),
            "method": self.method,
        }


def check_instance(cost: np.ndarray, p: int, fixed: np.ndarray, where: str) -> None:
    """Raise :class:`SalesopsError` for a p or fixed set that cannot work, or a client with no site."""
    n, m_sites = cost.shape
    if not 1 <= p <= m_sites or len(fixed) > p:
        raise SalesopsError(
            f"{where}: p={p} must be in [1, {m_sites}] and at least the {len(fixed)} fixed centres."
        )
    if len(fixed) and (fixed.min() < 0 or fixed.max() >= m_sites):
        raise SalesopsError(f"{where}: fixed_open names sites outside 0..{m_sites - 1}.")
    if not np.isfinite(cost).any(axis=1).all():
        bad = np.flatnonzero(~np.isfinite(cost).any(axis=1))[:5].tolist()
        raise SalesopsError(f"{where}: clients {bad} have no allowed site (every cost is inf); allow a site.")


def plan_cost(cost: np.ndarray, centres: np.ndarray) -> tuple[float, np.ndarray]:
    """Total cost of serving every client from its cheapest open centre, and that centre."""
    sub = cost[:, centres]
    best = np.argmin(sub, axis=1)
    return float(sub[np.arange(len(cost)), best].sum()), np.asarray(centres)[best]


def _finite(cost: np.ndarray) -> np.ndarray:
    """``cost`` with "not allowed" as a huge finite cost (argmin and sums stay defined)."""
    return np.where(np.isfinite(cost), cost, 1e300)


def _integral(cost: np.ndarray) -> bool:
    return bool(np.all(np.mod(cost[np.isfinite(cost)], 1.0) == 0.0))


def swap_search(
    cost: np.ndarray,
    p: int,
    fixed_open: np.ndarray | None = None,
    start: np.ndarray | None = None,
    max_swaps: int = MAX_SWAPS,
) -> tuple[np.ndarray, float]:
    """Best-improvement swaps (Teitz & Bart) until no swap lowers the cost; fixed sites stay open.

    Starts from ``start``, or from greedy opening (the site that lowers the cost most, repeatedly).
    Deterministic: ties go to the lowest index.

    Returns
    -------
    centres, objective
    """
    n, _ = cost.shape
    fixed = np.asarray(fixed_open if fixed_open is not None else [], dtype=np.int64)
    c = _finite(cost)
    if start is None:
        centres = [int(j) for j in fixed]
        served = c[:, centres].min(axis=1) if centres else np.full(n, 1e300)
        while len(centres) < p:
            total = np.minimum(c, served[:, None]).sum(axis=0)
            total[centres] = np.inf
            s = int(np.argmin(total))
            centres.append(s)
            served = np.minimum(served, c[:, s])
    else:
        centres = [int(j) for j in start]
    fixed_set = set(fixed.tolist())
    movable = [t for t, s in enumerate(centres) if s not in fixed_set]
    for _ in range(max_swaps):
        sub = c[:, centres]
        order = np.argsort(sub, axis=1, kind="stable")
        d1 = sub[np.arange(n), order[:, 0]]
        d2 = sub[np.arange(n), order[:, 1]] if len(centres) > 1 else np.full(n, 1e300)
        current = float(d1.sum())
        best = (0.0, -1, -1)
        for t in movable:
            without = np.where(order[:, 0] == t, d2, d1)
            total = np.minimum(c, without[:, None]).sum(axis=0)
            total[centres] = np.inf
            s = int(np.argmin(total))
            if total[s] - current < best[0] - 1e-9 * max(abs(current), 1.0):
                best = (total[s] - current, t, s)
        if best[1] < 0:
            break
        centres[best[1]] = best[2]
    out = np.array(sorted(centres), dtype=np.int64)
    return out, plan_cost(cost, out)[0]


# ---------------------------------------------------------------------------------------------------
# Covering (radius) MILP
# ---------------------------------------------------------------------------------------------------


@dataclass
class _Levels:
    """Distinct costs of each client to the allowed sites: ``values[start[i]:start[i + 1]]`` ascending;
    ``rank[i, j]`` is the level of pair (i, j), -1 when the pair or the site is not allowed."""

    values: np.ndarray
    start: np.ndarray
    rank: np.ndarray

    @property
    def count(self) -> np.ndarray:
        return np.diff(self.start)

    def level_of(self, costs: np.ndarray) -> np.ndarray:
        """Level index of one cost per client (the cost must be one of the client's levels)."""
        out = np.empty(len(costs), dtype=np.int64)
        for i, v in enumerate(costs):
            seg = self.values[self.start[i] : self.start[i + 1]]
            out[i] = int(np.searchsorted(seg, v - 1e-9 * max(abs(v), 1.0)))
        return out


def _levels(cost: np.ndarray, allowed: np.ndarray) -> _Levels:
    c = np.where(allowed[None, :], cost, np.inf)
    order = np.argsort(c, axis=1, kind="stable")
    s = np.take_along_axis(c, order, axis=1)
    finite = np.isfinite(s)
    new = finite.copy()
    new[:, 1:] &= s[:, 1:] > s[:, :-1]
    rank_sorted = np.where(finite, np.cumsum(new, axis=1) - 1, -1)
    rank = np.empty_like(rank_sorted)
    np.put_along_axis(rank, order, rank_sorted, axis=1)
    start = np.r_[0, np.cumsum(new.sum(axis=1))]
    return _Levels(s[new], start, rank)


@dataclass
class _RadiusModel:
    milp: MilpArrays
    y: np.ndarray
    z: np.ndarray
    const: float
    depth: np.ndarray
    levels: _Levels

    def charged(self, true_cost: np.ndarray) -> np.ndarray:
        """What the model charges each client for a plan whose true costs are ``true_cost``."""
        cap = self.levels.values[self.levels.start[:-1] + self.depth]
        return np.minimum(true_cost, cap)

    def start_vector(self, centres: np.ndarray, true_cost: np.ndarray) -> np.ndarray:
        vec = np.zeros(self.milp.num_cols)
        vec[self.y[centres]] = 1.0
        served_at = np.minimum(self.levels.level_of(np.minimum(true_cost, self._cap())), self.depth)
        roff = np.r_[0, np.cumsum(self.depth)]
        k = np.arange(roff[-1]) - np.repeat(roff[:-1], self.depth)
        vec[self.z] = (k < np.repeat(served_at, self.depth)).astype(float)
        return vec

    def _cap(self) -> np.ndarray:
        return self.levels.values[self.levels.start[:-1] + self.depth]


def _radius_model(
    cost: np.ndarray, p: int, levels: _Levels, depth: np.ndarray, open_lo: np.ndarray, open_up: np.ndarray
) -> _RadiusModel:
    """The chain-form covering model with ``depth[i]`` levels for client ``i`` (see the module notes)."""
    n, m_sites = cost.shape
    depth = np.minimum(depth, levels.count - 1).astype(np.int64)
    mdl = MilpArrays()
    y = mdl.add_vars(m_sites, lower=open_lo, upper=open_up, integer=True)
    roff = np.r_[0, np.cumsum(depth)]
    rows = int(roff[-1])
    k = np.arange(rows) - np.repeat(roff[:-1], depth)
    pos = np.repeat(levels.start[:-1], depth) + k
    steps = levels.values[pos + 1] - levels.values[pos] if rows else np.zeros(0)
    z = mdl.add_vars(rows, upper=1.0, cost=steps)
    ci, cj = np.nonzero((levels.rank >= 0) & (levels.rank < depth[:, None]))
    chain = np.flatnonzero(k > 0)
    mdl.add_rows(
        np.r_[np.arange(rows), chain, roff[ci] + levels.rank[ci, cj]],
        np.r_[z, z[chain - 1], y[cj]],
        np.r_[np.ones(rows), -np.ones(len(chain)), np.ones(len(ci))],
        (k == 0).astype(float),
        np.inf,
        num=rows,
    )
    mdl.add_rows(np.zeros(m_sites, dtype=np.int64), y, 1.0, p, p, num=1)
    const = float(levels.values[levels.start[:-1]].sum())
    return _RadiusModel(mdl, y, z, const, depth, levels)


def p_median_levels(
    cost: np.ndarray,
    p: int,
    *,
    fixed_open: np.ndarray | list[int] | None = None,
    initial_levels: int = 8,
    max_rounds: int = 20,
    node_limit: int | None = None,
    incumbent: np.ndarray | None = None,
    solver: SolverOptions | None = None,
) -> PMedianResult:
    """Exact uncapacitated p-median by the covering MILP: an incumbent, then MILP rounds that deepen
    the levels of the clients charged too little (see the module notes).

    Parameters
    ----------
    cost
        Cost ``c[i, j]`` of serving client ``i`` from site ``j``; ``inf`` marks a pair that is not allowed.
    p
        Number of centres (fixed ones included).
    fixed_open
        Sites that must be open.
    initial_levels
        Levels modelled per client in the first round (at least to the incumbent's level).
    max_rounds
        Cap on MILP rounds (each deepens the levels of the clients charged too little).
    node_limit
        Branch-and-bound nodes per MILP round (a work limit: the result does not depend on machine
        load); ``None``: no limit.
    incumbent
        Open sites of a known plan (default: :func:`swap_search`).
    solver
        Gap and threads; its time limit is the wall-clock safety net of the whole procedure.

    Returns
    -------
    PMedianResult
        ``solve.bound`` is a proven lower bound; ``optimal`` when the bound meets the plan.

    Notes
    -----
    See the module notes for the formulation and the steps.
    """
    solver = solver or SolverOptions()
    tick = time.perf_counter()
    deadline = tick + solver.time_limit
    cost = np.asarray(cost, dtype=float)
    n, m_sites = cost.shape
    fixed = np.asarray(fixed_open if fixed_open is not None else [], dtype=np.int64)
    check_instance(cost, p, fixed, "p_median_levels")
    integral = bool(np.all(np.mod(cost[np.isfinite(cost)], 1.0) == 0.0))
    # a better plan must beat the incumbent by at least this much (1 when every cost is an integer)
    step = 1.0 - 1e-6 if integral else 0.0

    centres, best = (
        swap_search(cost, p, fixed) if incumbent is None else (incumbent, plan_cost(cost, incumbent)[0])
    )
    heuristic = best
    notes = [f"incumbent {best:g} (greedy + swaps)"]
    build = 0.0
    open_lo = np.zeros(m_sites)
    open_lo[fixed] = 1.0
    open_up = np.ones(m_sites)
    bound = -math.inf
    nodes = 0
    status = FEASIBLE
    termination = ""

    def options(seconds: float) -> SolverOptions:
        extra = dict(solver.highs_options)
        if node_limit is not None:
            extra["mip_max_nodes"] = int(node_limit)
        if integral:
            extra.setdefault("mip_abs_gap", step)  # a better plan is at least 1 cheaper
        return SolverOptions(seconds, solver.mip_gap, solver.threads, extra, solver.log_to_console)

    # MILP rounds, started from the incumbent
    rounds = 0
    depth = None
    while status != OPTIMAL and rounds < max_rounds and time.perf_counter() < deadline:
        rounds += 1
        b_tick = time.perf_counter()
        lv = _levels(cost, open_up > 0)
        full = lv.count - 1
        if depth is None:
            # every client modelled at least to where the incumbent serves it (so the incumbent is
            # charged its true cost) and at least `initial_levels` deep
            served = np.minimum(cost[:, centres].min(axis=1), lv.values[lv.start[1:] - 1])
            depth = np.minimum(np.maximum(lv.level_of(served) + 1, initial_levels), full)
        model = _radius_model(cost, p, lv, np.minimum(depth, full), open_lo, open_up)
        build += time.perf_counter() - b_tick
        feasible_start = bool(open_up[centres].all())
        start = model.start_vector(centres, cost[:, centres].min(axis=1)) if feasible_start else None
        left = deadline - time.perf_counter()
        res = run_highs(model.milp.to_highs(options(left)), left, warm_start=start)
        nodes += max(res.info.nodes, 0)
        termination = res.info.termination
        if res.info.status == INFEASIBLE:
            status, termination = OPTIMAL, "no plan on the sites left beats the incumbent"
            bound = best
            break
        model_bound = res.info.bound + model.const if np.isfinite(res.info.bound) else -math.inf
        bound = max(bound, model_bound)
        if res.values is None:
            break
        cand = np.flatnonzero(res.values[model.y] > 0.5)
        true_c = cost[:, cand].min(axis=1)
        if true_c.sum() < best - 1e-9:
            best, centres = float(true_c.sum()), cand
        short = true_c > model.charged(true_c) + 1e-9
        notes.append(
            f"round {rounds}: {res.info.status} ({termination}), {model.milp.num_rows} rows, bound "
            f"{model_bound:.6g}, plan {true_c.sum():.6g}, {int(short.sum())} clients charged too little"
        )
        if res.info.status != OPTIMAL:
            break  # a limit stopped the round: keep the incumbent and the bound
        if model_bound >= best - step or not short.any():
            status = OPTIMAL  # nothing beats the incumbent by `step`, or the model's plan is exact
            bound = best if integral else max(bound, model_bound)
            break
        # deepen the clients charged too little: at least to their level in this plan, at least doubled
        reach = lv.level_of(np.minimum(true_c, lv.values[lv.start[1:] - 1])) + 1
        depth = np.where(short, np.minimum(np.maximum(2 * model.depth, reach), full), model.depth)
    bound = min(bound, best)
    objective, assign = plan_cost(cost, centres)
    info = SolveInfo(
        status=status,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound),
        seconds=time.perf_counter() - tick,
        termination=termination or status,
        nodes=nodes,
    )
    return PMedianResult(centres, assign, objective, info, build, heuristic, "radius", "; ".join(notes))


# ---------------------------------------------------------------------------------------------------
# Lagrangian branch and bound on sites
# ---------------------------------------------------------------------------------------------------


class UncapacitatedSites:
    """Site subproblems of the uncapacitated p-median (see the module notes)."""

    def __init__(self, cost: np.ndarray):
        self.cost = cost
        self.c = _finite(cost)
        self.n, self.m_sites = cost.shape

    def start_multipliers(self, p: int) -> np.ndarray:
        return np.sort(self.c, axis=1)[:, min(p, self.m_sites - 1)]

    def site_values(self, lam: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.minimum(self.c[:, cols] - lam[:, None], 0.0).sum(axis=0)

    def served(self, lam: np.ndarray, sites: np.ndarray) -> np.ndarray:
        return (self.c[:, sites] < lam[:, None]).sum(axis=1)

    def plan(self, sites: np.ndarray, polish: bool, fixed: np.ndarray) -> tuple[float, np.ndarray]:
        """True cost of a site set, or of its swap-search polish."""
        if polish:
            sites, _ = swap_search(self.cost, len(sites), fixed, start=sites)
        return plan_cost(self.cost, sites)[0], np.asarray(sites)


@dataclass
class _Node:
    bound: float
    order: int
    forced: np.ndarray  # bool per site: forced open
    closed: np.ndarray  # bool per site
    multipliers: np.ndarray

    def __lt__(self, other: _Node) -> bool:
        return (self.bound, self.order) < (other.bound, other.order)


@dataclass
class TreeOutcome:
    """What :func:`site_branch_and_bound` returns."""

    centres: np.ndarray
    objective: float
    bound: float
    nodes: int
    termination: str
    root_bound: float


def site_branch_and_bound(
    relax: UncapacitatedSites,
    p: int,
    fixed: np.ndarray,
    incumbent: tuple[float, np.ndarray],
    *,
    integral: bool,
    node_limit: int = NODE_LIMIT,
    root_iterations: int = ROOT_ITERATIONS,
    node_iterations: int = NODE_ITERATIONS,
    deadline: float = math.inf,
) -> TreeOutcome:
    """Lagrangian branch and bound on sites (see the module notes)."""
    m_sites = relax.m_sites
    best, best_sites = incumbent
    scale = max(abs(best), 1.0) if np.isfinite(best) else 1.0
    step = 1.0 - 1e-6 if integral else 1e-9 * scale

    def consider(sites: np.ndarray, polish: bool) -> None:
        nonlocal best, best_sites
        value, sites2 = relax.plan(sites, polish, fixed)
        if value < best - 1e-9:
            best, best_sites = value, sites2

    def ascend(node: _Node, iterations: int) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        lam = node.multipliers.copy()
        cols = np.flatnonzero(~node.closed)
        forced = node.forced[cols]
        need = p - int(forced.sum())
        free = np.flatnonzero(~forced)
        out = (-math.inf, lam, np.zeros(len(cols)), np.zeros(0, dtype=np.int64))
        theta, stall = 2.0, 0
        target = best if np.isfinite(best) else None
        for it in range(iterations):
            rho = relax.site_values(lam, cols)
            pick = np.r_[np.flatnonzero(forced), free[np.argsort(rho[free], kind="stable")[:need]]].astype(
                np.int64
            )
            value = float(lam.sum() + rho[pick].sum())
            if value > out[0] + 1e-9:
                out, stall = (value, lam.copy(), rho, pick), 0
            else:
                stall += 1
                if stall >= STALL:
                    theta, stall = theta / 2, 0
            if out[0] > best - step or theta < 1e-5:
                break
            if it % 50 == 0:
                consider(cols[pick], polish=False)
            g = 1.0 - relax.served(lam, cols[pick])
            norm = float(g @ g)
            if norm == 0.0:
                consider(cols[pick], polish=False)  # the relaxed plan serves every client once: exact
                break
            gap = (target - value) if target is not None else 0.05 * max(abs(value), 1.0)
            lam = lam + theta * max(gap, 1e-9 * scale) / norm * g
        return out[0], out[1], out[2], cols[out[3]]

    root = _Node(
        -math.inf,
        0,
        np.isin(np.arange(m_sites), fixed),
        np.zeros(m_sites, dtype=bool),
        relax.start_multipliers(p),
    )
    heap = [root]
    nodes = 0
    counter = 1
    termination = "optimal"
    root_bound = -math.inf
    while heap:
        node = heapq.heappop(heap)
        if node.bound > best - step:
            heap.clear()
            break
        if nodes >= node_limit or time.perf_counter() >= deadline:
            termination = "node limit" if nodes >= node_limit else "time limit"
            heapq.heappush(heap, node)
            break
        nodes += 1
        if int(node.forced.sum()) == p:
            consider(np.flatnonzero(node.forced), polish=False)  # a leaf: every site fixed, evaluated exactly
            continue
        bound, lam, rho, chosen = ascend(node, root_iterations if nodes == 1 else node_iterations)
        if nodes == 1:
            root_bound = bound
        consider(chosen, polish=nodes == 1 or nodes % 10 == 0)
        if bound > best - step:
            continue
        rho_full = np.full(m_sites, np.inf)
        rho_full[np.flatnonzero(~node.closed)] = rho
        in_s = np.zeros(m_sites, dtype=bool)
        in_s[chosen] = True
        free = ~node.closed & ~node.forced
        chosen_free = np.flatnonzero(in_s & free)
        other_free = np.flatnonzero(~in_s & free)
        worst_in = rho_full[chosen_free].max() if len(chosen_free) else -np.inf
        best_out = rho_full[other_free].min() if len(other_free) else np.inf
        closed = node.closed.copy()
        forced = node.forced.copy()
        if len(chosen_free):
            # reduced-cost fixing: opening j in place of the worst chosen site, or closing a chosen site
            closed[other_free[bound - worst_in + rho_full[other_free] > best - step]] = True
            forced[chosen_free[bound - rho_full[chosen_free] + best_out > best - step]] = True
        if int(forced.sum()) > p or int((~closed).sum()) < p:
            continue
        branchable = np.flatnonzero(in_s & ~closed & ~forced)
        if len(branchable) == 0:
            heapq.heappush(heap, _Node(bound, counter, forced, closed, lam))  # fixing made it a leaf
            counter += 1
            continue
        rise = best_out - rho_full[branchable]
        j = int(branchable[np.argmax(rise)])
        for close_it in (True, False):
            ch_closed, ch_forced = closed.copy(), forced.copy()
            (ch_closed if close_it else ch_forced)[j] = True
            heapq.heappush(heap, _Node(bound, counter, ch_forced, ch_closed, lam))
            counter += 1
    lower = best if termination == "optimal" else min([nd.bound for nd in heap] + [best])
    return TreeOutcome(best_sites, best, lower, nodes, termination, root_bound)


# ---------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------


def _outcome_result(
    cost: np.ndarray,
    tree: TreeOutcome,
    heuristic: float,
    tick: float,
    assignment: np.ndarray | None,
    note: str,
) -> PMedianResult:
    if not np.isfinite(tree.objective):
        info = SolveInfo(
            NO_SOLUTION,
            bound=tree.bound,
            seconds=time.perf_counter() - tick,
            termination=tree.termination,
            nodes=tree.nodes,
        )
        return PMedianResult(
            np.array([], dtype=np.int64),
            np.full(len(cost), -1),
            math.nan,
            info,
            0.0,
            heuristic,
            "lagrangian",
            note,
        )
    if assignment is None:
        _, assignment = plan_cost(cost, tree.centres)
    status = OPTIMAL if tree.termination == "optimal" else FEASIBLE
    info = SolveInfo(
        status=status,
        objective=tree.objective,
        bound=tree.bound,
        gap=relative_gap(tree.objective, tree.bound),
        seconds=time.perf_counter() - tick,
        termination=tree.termination,
        nodes=tree.nodes,
    )
    return PMedianResult(
        np.unique(tree.centres), assignment, tree.objective, info, 0.0, heuristic, "lagrangian", note
    )


def p_median_lagrangian(
    cost: np.ndarray,
    p: int,
    *,
    fixed_open: np.ndarray | list[int] | None = None,
    node_limit: int = NODE_LIMIT,
    incumbent: np.ndarray | None = None,
    solver: SolverOptions | None = None,
) -> PMedianResult:
    """Exact uncapacitated p-median by Lagrangian branch and bound on sites (see the module notes).

    Parameters
    ----------
    cost
        Cost ``c[i, j]`` (``inf``: pair not allowed).
    p
        Number of centres (fixed ones included).
    fixed_open
        Sites that must be open.
    node_limit
        Work limit (tree nodes).
    incumbent
        Open sites of a known plan (default: :func:`swap_search`).
    solver
        Its time limit is the wall-clock safety net.
    """
    solver = solver or SolverOptions()
    tick = time.perf_counter()
    cost = np.asarray(cost, dtype=float)
    fixed = np.asarray(fixed_open if fixed_open is not None else [], dtype=np.int64)
    check_instance(cost, p, fixed, "p_median_lagrangian")
    if incumbent is None:
        incumbent, value = swap_search(cost, p, fixed)
    else:
        value = plan_cost(cost, incumbent)[0]
    tree = site_branch_and_bound(
        UncapacitatedSites(cost),
        p,
        fixed,
        (value, np.asarray(incumbent)),
        integral=_integral(cost),
        node_limit=node_limit,
        deadline=tick + solver.time_limit,
    )
    note = f"incumbent {value:g} (greedy + swaps); Lagrangian tree: root bound {tree.root_bound:.6g}, {tree.nodes} nodes, {tree.termination}"
    return _outcome_result(cost, tree, value, tick, None, note)


class _CapacitatedModel:
    """The single-source capacitated p-median MILP of the module notes, built from index arrays."""

    def __init__(
        self,
        cost: np.ndarray,
        q: np.ndarray,
        cap: np.ndarray,
        p: int,
        fixed: np.ndarray,
        closed: np.ndarray | None = None,
        dropped: np.ndarray | None = None,
    ):
        n, m_sites = cost.shape
        self.cost, self.p, self.n = cost, p, n
        # a client that cannot fit beside the site's own demand (it serves itself) or at all is never
        # that site's client
        own_q = q[:m_sites] if n == m_sites else np.zeros(m_sites)
        fits = q[:, None] + np.where(
            np.arange(m_sites)[None, :] == np.arange(n)[:, None], 0.0, own_q[None, :]
        )
        keep = np.isfinite(cost) & (fits <= cap[None, :] + 1e-9)
        if dropped is not None:
            keep &= ~dropped
        ui, uj = np.nonzero(keep)
        mdl = MilpArrays()
        upper = np.ones(m_sites) if closed is None else (~closed).astype(float)
        y = mdl.add_vars(
            m_sites, lower=np.isin(np.arange(m_sites), fixed).astype(float), upper=upper, integer=True
        )
        x = mdl.add_vars(len(ui), cost=cost[ui, uj], integer=True)
        pairs = np.arange(len(ui))
        mdl.add_rows(ui, x, 1.0, 1.0, 1.0, num=n)
        mdl.add_rows(
            np.r_[pairs, pairs], np.r_[x, y[uj]], np.r_[np.ones(len(ui)), -np.ones(len(ui))], -np.inf, 0.0
        )
        mdl.add_rows(
            np.r_[uj, np.arange(m_sites)], np.r_[x, y], np.r_[q[ui], -cap], -np.inf, 0.0, num=m_sites
        )
        mdl.add_rows(np.zeros(m_sites, dtype=np.int64), y, 1.0, p, p, num=1)
        if n == m_sites:
            own = np.flatnonzero(ui == uj)
            rows = np.arange(len(own))
            mdl.add_rows(
                np.r_[rows, rows],
                np.r_[x[own], y[uj[own]]],
                np.r_[np.ones(len(own)), -np.ones(len(own))],
                0.0,
                0.0,
            )
        self.milp, self.x, self.y, self.ui, self.uj = mdl, x, y, ui, uj

    def start_vector(self, assign: np.ndarray) -> np.ndarray:
        start = np.zeros(self.milp.num_cols)
        start[self.y[np.unique(assign)]] = 1.0
        start[self.x[assign[self.ui] == self.uj]] = 1.0
        return start

    def assignment(self, values: np.ndarray) -> np.ndarray:
        chosen = values[self.x] > 0.5
        assign = np.full(self.n, -1, dtype=np.int64)
        assign[self.ui[chosen]] = self.uj[chosen]
        return assign


def capacitated_p_median(
    cost: np.ndarray,
    p: int,
    *,
    demand: np.ndarray | None = None,
    capacity: float | np.ndarray,
    fixed_open: np.ndarray | list[int] | None = None,
    node_limit: int | None = None,
    solver: SolverOptions | None = None,
) -> PMedianResult:
    """Exact single-source capacitated p-median (MILP of the module notes), started from a plan.

    The start: the swap-search sites of the uncapacitated problem improved by the capacitated search
    (:func:`~salesops_models.territory.capacitated.capacitated_local_search`, clients assigned by the
    exact assignment MILP); the knapsack Lagrangian then closes sites and drops pairs that no plan
    cheaper than the start can use, and HiGHS solves the reduced MILP from the start. When clients are
    the sites (square ``cost``), an open centre serves itself (OR-Library convention).

    Parameters
    ----------
    cost
        Cost ``c[i, j]`` (``inf``: pair not allowed).
    p
        Number of centres (fixed ones included).
    demand
        Client demand ``q_i`` (default 1 each).
    capacity
        Site capacity ``Q_j`` (scalar or per site).
    fixed_open
        Sites that must be open.
    node_limit
        Work limit (branch-and-bound nodes); ``None``: none.
    solver
        Gap and threads; its time limit is the wall-clock safety net.
    """
    solver = solver or SolverOptions()
    tick = time.perf_counter()
    cost = np.asarray(cost, dtype=float)
    n, m_sites = cost.shape
    fixed = np.asarray(fixed_open if fixed_open is not None else [], dtype=np.int64)
    check_instance(cost, p, fixed, "capacitated_p_median")
    q = np.ones(n) if demand is None else np.asarray(demand, dtype=float)
    if len(q) != n or (q < 0).any():
        raise SalesopsError("capacitated_p_median: demand must hold one non-negative value per client.")
    cap = np.broadcast_to(np.asarray(capacity, dtype=float), (m_sites,)).astype(float)
    integral = _integral(cost)
    extra = dict(solver.highs_options)
    if node_limit is not None:
        extra["mip_max_nodes"] = int(node_limit)
    if integral:
        extra.setdefault("mip_abs_gap", 1.0 - 1e-6)  # a better plan is at least 1 cheaper
    start_sites, _ = swap_search(cost, p, fixed)
    heuristic, start_assign, rounds = capacitated_local_search(
        cost,
        q,
        cap,
        start_sites,
        fixed,
        SolverOptions(solver.time_limit, 0.0, solver.threads, solver.highs_options),
    )
    lagrange = None
    if start_assign is not None:
        lagrange = knapsack_lagrangian(
            cost, q, cap, p, fixed, heuristic, start_assign, step=1.0 if integral else 0.0
        )
    closed = dropped = None
    if lagrange is not None:
        # the start plan stays in the model (it is the warm start; fixing only rules out dearer plans)
        closed = lagrange.closed_sites & ~np.isin(np.arange(m_sites), start_assign)
        dropped = lagrange.dropped_pairs.copy()
        dropped[np.arange(n), start_assign] = False
    model = _CapacitatedModel(cost, q, cap, p, fixed, closed, dropped)
    start = model.start_vector(start_assign) if start_assign is not None else None
    left = max(tick + solver.time_limit - time.perf_counter(), 0.01)
    opts = SolverOptions(left, solver.mip_gap, solver.threads, extra, solver.log_to_console)
    res = run_highs(model.milp.to_highs(opts), left, warm_start=start)
    lag_note = (
        f"Lagrangian bound {lagrange.bound:.6g} ({lagrange.iterations} iterations): {int(closed.sum())} sites closed, "
        f"{int(dropped.sum())} pairs dropped; "
        if lagrange is not None and closed is not None and dropped is not None
        else ""
    )
    note = f"start {heuristic:g} (capacitated search, {rounds} rounds); {lag_note}MILP {res.info.status} ({res.info.termination}), {res.info.nodes} nodes"
    if res.values is None:
        info = SolveInfo(
            res.info.status,
            bound=res.info.bound,
            seconds=time.perf_counter() - tick,
            termination=res.info.termination,
            nodes=res.info.nodes,
        )
        return PMedianResult(
            np.array([], dtype=np.int64), np.full(n, -1), math.nan, info, 0.0, heuristic, "milp", note
        )
    assign = model.assignment(res.values)
    objective = float(cost[np.arange(n), assign].sum())
    bound = objective if res.info.status == OPTIMAL and integral else res.info.bound
    if lagrange is not None:
        bound = max(bound, lagrange.bound) if np.isfinite(bound) else lagrange.bound
    info = SolveInfo(
        status=res.info.status,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound),
        seconds=time.perf_counter() - tick,
        termination=res.info.termination,
        nodes=res.info.nodes,
    )
    return PMedianResult(np.unique(assign), assign, objective, info, 0.0, heuristic, "milp", note)


def mask_candidates(cost: np.ndarray, candidate_k: int | None, fixed: np.ndarray) -> np.ndarray:
    """``cost`` with every pair beyond each client's ``candidate_k`` cheapest sites (fixed kept) set to inf."""
    n, m_sites = cost.shape
    if candidate_k is None or candidate_k >= m_sites:
        return cost
    nearest = np.argpartition(cost, candidate_k - 1, axis=1)[:, :candidate_k]
    keep = np.zeros(cost.shape, bool)
    keep[np.arange(n)[:, None], nearest] = True
    keep[:, fixed] = True
    return np.where(keep, cost, np.inf)


def p_median(
    cost: np.ndarray,
    p: int,
    *,
    demand: np.ndarray | None = None,
    capacity: float | np.ndarray | None = None,
    fixed_open: np.ndarray | list[int] | None = None,
    candidate_k: int | None = None,
    method: str = "auto",
    node_limit: int | None = None,
    solver: SolverOptions | None = None,
) -> PMedianResult:
    """Choose ``p`` centres and serve every client from one of them at least total cost (exact).

    Parameters
    ----------
    cost
        Cost matrix ``c[i, j]`` of serving client ``i`` from site ``j`` (already weighted).
    p
        Number of centres to open (fixed ones included).
    demand, capacity
        Client demand ``q_i`` and site capacity ``Q_j`` (scalar or per site): the capacitated,
        single-source variant (:func:`capacitated_p_median`); when clients are the sites (square
        ``cost``), an open centre serves itself.
    fixed_open
        Sites that must be open.
    candidate_k
        Keep only each client's ``candidate_k`` cheapest sites (plus the fixed ones); exact only when
        the optimum uses no farther pair. ``None``: every pair.
    method
        Uncapacitated only: ``radius`` (:func:`p_median_levels`), ``lagrangian``
        (:func:`p_median_lagrangian`) or ``auto``: by the mean service level of the swap-search plan
        (see the module notes).
    node_limit
        Work limit (nodes of the tree, or of each MILP round); ``None``: the default of the method.
    solver
        Gap and threads; its time limit is a wall-clock safety net.
    """
    cost = np.asarray(cost, dtype=float)
    fixed = np.asarray(fixed_open if fixed_open is not None else [], dtype=np.int64)
    cost = mask_candidates(cost, candidate_k, fixed)
    if capacity is not None:
        return capacitated_p_median(
            cost,
            p,
            demand=demand,
            capacity=capacity,
            fixed_open=fixed,
            node_limit=node_limit,
            solver=solver,
        )
    if method not in ("auto", "radius", "lagrangian"):
        raise SalesopsError(f"p_median: method={method!r}; use 'auto', 'radius' or 'lagrangian'.")
    check_instance(cost, p, fixed, "p_median")
    incumbent, _ = swap_search(cost, p, fixed)
    if method == "auto":
        method = "radius" if len(cost) / p < RADIUS_MAX_CLIENTS_PER_CENTRE else "lagrangian"
    if method == "radius":
        return p_median_levels(
            cost, p, fixed_open=fixed, node_limit=node_limit, incumbent=incumbent, solver=solver
        )
    return p_median_lagrangian(
        cost,
        p,
        fixed_open=fixed,
        node_limit=node_limit if node_limit is not None else NODE_LIMIT,
        incumbent=incumbent,
        solver=solver,
    )
