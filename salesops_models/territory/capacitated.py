"""Capacitated p-median pieces before the MILP: exact assignment, regret assignment, a capacitated search.

Single-source capacitated p-median: clients :math:`i` with demand :math:`q_i`, sites :math:`j` with
capacity :math:`Q_j`, cost :math:`c_{ij}` (``inf``: pair not allowed), :math:`p` centres. When clients
are the sites (square cost) an open centre serves itself (OR-Library convention).

The uncapacitated swap-search sites are a poor start once capacity binds (pmedcap1_20: 1069 from
them, optimum 1005), so :func:`capacitated_local_search` improves a plan while keeping capacity in
view, in rounds (a work limit):

1. *Location step* (Cooper's alternation): every centre moves to the member of its own territory
   that serves the territory most cheaply; the territories themselves stay feasible, so the exact
   reassignment can only be cheaper.
2. *Swap step*: each open centre is exchanged with each of its nearest closed sites; every exchange
   is priced by the greedy regret assignment (:func:`regret_assignment`, Martello & Toth: the client
   that loses most by not getting its best feasible centre is placed first), and the cheapest few
   are assigned exactly (:func:`assign_to_centres`); the first that beats the plan is kept.

The search stops when a round improves nothing or after ``max_rounds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from salesops_models.territory.milp_arrays import MilpArrays, run_highs
from salesops_models.territory.solver import INFEASIBLE, OPTIMAL, SolverOptions

#: Work limit of the exact assignment that turns a set of open centres into a plan (MILP nodes).
ASSIGN_NODE_LIMIT = 20_000
#: Work limits of the capacitated search: rounds; closed sites tried per open centre in the swap
#: step; exchanges (cheapest by regret assignment) assigned exactly per round.
SEARCH_ROUNDS = 30
SWAP_NEIGHBOURS = 12
EXACT_TRIES = 10


def assign_to_centres(
    cost: np.ndarray, demand: np.ndarray, capacity: np.ndarray, centres: np.ndarray, solver: SolverOptions
) -> tuple[float, np.ndarray | None, bool]:
    """Cheapest single-source assignment of every client to the open ``centres`` within capacity (an
    open centre serves itself when clients are the sites), by MILP (node-limited).

    Returns the cost (``inf`` when no assignment fits), the centre of each client and whether the
    MILP proved its cost optimal.
    """
    n, m_sites = cost.shape
    centres = np.asarray(centres, dtype=np.int64)
    sub = cost[:, centres]
    ui, ci = np.nonzero(np.isfinite(sub))
    if n == m_sites:
        is_centre = np.zeros(n, dtype=bool)
        is_centre[centres] = True
        keep = ~is_centre[ui] | (centres[ci] == ui)
        ui, ci = ui[keep], ci[keep]
    mdl = MilpArrays()
    x = mdl.add_vars(len(ui), cost=sub[ui, ci], integer=True)
    mdl.add_rows(ui, x, 1.0, 1.0, 1.0, num=n)
    mdl.add_rows(ci, x, demand[ui], -np.inf, capacity[centres], num=len(centres))
    opts = SolverOptions(
        solver.time_limit, 0.0, solver.threads, {**solver.highs_options, "mip_max_nodes": ASSIGN_NODE_LIMIT}
    )
    res = run_highs(mdl.to_highs(opts), opts.time_limit)
    if res.values is None:
        return math.inf, None, res.info.status == INFEASIBLE
    chosen = res.values[x] > 0.5
    assign = np.full(n, -1, dtype=np.int64)
    assign[ui[chosen]] = centres[ci[chosen]]
    return float(cost[np.arange(n), assign].sum()), assign, res.info.status == OPTIMAL


def regret_assignment(
    cost: np.ndarray, demand: np.ndarray, capacity: np.ndarray, centres: np.ndarray
) -> tuple[float, np.ndarray | None]:
    """Greedy regret assignment of every client to the open ``centres`` within capacity.

    Repeatedly places the unplaced client with the largest regret (cost of its second-best feasible
    centre minus its best; a client with one feasible centre left comes first) at its best feasible
    centre. Deterministic (ties: lowest index). An open centre serves itself when clients are the sites.

    Returns
    -------
    cost, assignment
        ``(inf, None)`` when some client finds no centre with room left (the greedy may fail where an
        assignment exists).
    """
    n, m_sites = cost.shape
    centres = np.asarray(centres, dtype=np.int64)
    sub = np.where(np.isfinite(cost[:, centres]), cost[:, centres], np.inf)
    room = capacity[centres].astype(float).copy()
    placed = np.full(n, -1, dtype=np.int64)
    if n == m_sites:
        placed[centres] = np.arange(len(centres))
        np.subtract.at(room, np.arange(len(centres)), demand[centres])
        if (room < -1e-9).any():
            return math.inf, None
    tol = 1e-9 * max(float(capacity.max()), 1.0)
    left = np.flatnonzero(placed < 0)
    while len(left):
        fits = demand[left, None] <= room[None, :] + tol
        c = np.where(fits, sub[left], np.inf)
        if len(centres) > 1:
            two = np.partition(c, 1, axis=1)[:, :2]
            best, second = two[:, 0], two[:, 1]
        else:
            best, second = c[:, 0], np.full(len(left), np.inf)
        if not np.isfinite(best).all():
            return math.inf, None
        regret = np.where(np.isfinite(second), second - best, np.inf)
        k = int(np.argmax(regret))
        i = int(left[k])
        t = int(np.argmin(c[k]))
        placed[i] = t
        room[t] -= demand[i]
        left = np.delete(left, k)
    assign = centres[placed]
    return float(cost[np.arange(n), assign].sum()), assign


def _territory_medians(
    cost: np.ndarray, demand: np.ndarray, capacity: np.ndarray, assign: np.ndarray, fixed: np.ndarray
) -> np.ndarray:
    """Each non-fixed centre moved to the site that serves its own territory most cheaply and holds
    its demand (a member of the territory when clients are the sites)."""
    n, m_sites = cost.shape
    centres = np.unique(assign)
    out = []
    for s in centres:
        members = np.flatnonzero(assign == s)
        if s in fixed:
            out.append(int(s))
            continue
        total = cost[members].sum(axis=0)
        ok = capacity >= demand[members].sum() - 1e-9
        if n == m_sites:
            ok &= np.isin(np.arange(m_sites), members)
        ok &= ~np.isin(np.arange(m_sites), np.setdiff1d(centres, [s]))
        total = np.where(ok & np.isfinite(total), total, np.inf)
        out.append(int(np.argmin(total)) if np.isfinite(total).any() else int(s))
    return np.array(sorted(out), dtype=np.int64)


def capacitated_local_search(
    cost: np.ndarray,
    demand: np.ndarray,
    capacity: np.ndarray,
    start: np.ndarray,
    fixed: np.ndarray,
    solver: SolverOptions,
    *,
    max_rounds: int = SEARCH_ROUNDS,
    neighbours: int = SWAP_NEIGHBOURS,
    exact_tries: int = EXACT_TRIES,
) -> tuple[float, np.ndarray | None, int]:
    """Improve the plan of the open sites ``start`` by location and swap steps (module notes).

    Parameters
    ----------
    cost, demand, capacity
        ``c[i, j]``, ``q_i``, ``Q_j`` (capacity per site).
    start
        Open sites to start from (``p`` of them).
    fixed
        Sites that stay open.
    solver
        Options of the exact assignments (their time limit is a safety net).
    max_rounds, neighbours, exact_tries
        Work limits: rounds; closed sites tried per open centre (nearest by cost profile); exchanges
        assigned exactly per round.

    Returns
    -------
    cost, assignment, rounds
        The best plan found (``inf, None`` when no assignment of ``start`` or its neighbours fits) and
        the rounds run.
    """
    finite = np.where(np.isfinite(cost), cost, 1e300)
    value, assign, _ = assign_to_centres(cost, demand, capacity, start, solver)
    sites = np.array(sorted(start), dtype=np.int64)
    if assign is None:
        return math.inf, None, 0
    m_sites = cost.shape[1]
    # closeness of two sites: mean difference of their cost to the clients (distance when sites are clients)
    profile = np.where(np.isfinite(cost), cost, np.nan)
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        moved = _territory_medians(cost, demand, capacity, assign, fixed)
        if not np.array_equal(moved, sites):
            v, a, _ = assign_to_centres(cost, demand, capacity, moved, solver)
            if a is not None and v < value - 1e-9:
                value, assign, sites = v, a, moved
                continue
        closed = np.setdiff1d(np.arange(m_sites), sites)
        trials: list[tuple[float, int, int]] = []
        for s in np.setdiff1d(sites, fixed):
            near = np.nanmean(np.abs(profile[:, closed] - profile[:, [s]]), axis=0)
            for t in closed[np.argsort(np.nan_to_num(near, nan=np.inf), kind="stable")[:neighbours]]:
                trial = np.sort(np.r_[sites[sites != s], t])
                v, _ = regret_assignment(finite, demand, capacity, trial)
                if np.isfinite(v):
                    trials.append((v, int(s), int(t)))
        trials.sort()
        improved = False
        for _, s, t in trials[:exact_tries]:
            trial = np.sort(np.r_[sites[sites != s], t])
            v, a, _ = assign_to_centres(cost, demand, capacity, trial, solver)
            if a is not None and v < value - 1e-9:
                value, assign, sites, improved = v, a, trial, True
                break
        if not improved:
            break
    return value, assign, rounds


#: Work limits of the Lagrangian bound: subgradient iterations; iterations without a better bound
#: before the step halves. Size guard of its knapsack tables (clients x sites x capacity units).
LAGRANGE_ITERATIONS = 600
LAGRANGE_STALL = 30
LAGRANGE_MAX_CELLS = 50_000_000


@dataclass
class KnapsackLagrangian:
    """What :func:`knapsack_lagrangian` proves.

    Attributes
    ----------
    bound
        Lagrangian lower bound on the optimal cost.
    closed_sites
        Sites (bool per site) that no plan cheaper than ``upper - step`` opens.
    dropped_pairs
        Pairs (bool, clients x sites) that no plan cheaper than ``upper - step`` uses.
    iterations
        Subgradient iterations run.
    """

    bound: float
    closed_sites: np.ndarray
    dropped_pairs: np.ndarray
    iterations: int


def _knapsack_table(profit: np.ndarray, weight: np.ndarray, cap_max: int) -> tuple[np.ndarray, np.ndarray]:
    """0-1 knapsack of every site at once: ``best[j, c]`` = largest profit within ``c`` units, and
    ``take[i, j, c]`` whether item ``i`` is taken at that state (for backtracking)."""
    m_sites, n = profit.shape
    best = np.zeros((m_sites, cap_max + 1))
    take = np.zeros((n, m_sites, cap_max + 1), dtype=bool)
    for i in range(n):
        w = int(weight[i])
        if w > cap_max or not (profit[:, i] > 0).any():
            continue
        cand = np.full_like(best, -np.inf)
        cand[:, w:] = best[:, : cap_max + 1 - w] + profit[:, i : i + 1]
        take[i] = cand > best
        best = np.maximum(best, cand)
    return best, take


def knapsack_lagrangian(
    cost: np.ndarray,
    demand: np.ndarray,
    capacity: np.ndarray,
    p: int,
    fixed: np.ndarray,
    upper: float,
    start: np.ndarray,
    *,
    step: float = 0.0,
    iterations: int = LAGRANGE_ITERATIONS,
) -> KnapsackLagrangian | None:
    """Lagrangian bound of the capacitated p-median with the assignment rows relaxed, and the sites
    and pairs it rules out against the plan cost ``upper`` (reduced-cost fixing).

    With multipliers :math:`\\lambda` the problem splits into one 0-1 knapsack per site (integer
    demands and capacities; solved by dynamic programming over capacity units):

    .. math::

        L(\\lambda) = \\sum_i \\lambda_i + \\min_{|S| = p,\\; S \\supseteq F} \\sum_{j \\in S} \\rho_j,
        \\qquad \\rho_j = \\min_{x} \\Big\\{\\sum_i (c_{ij} - \\lambda_i) x_i :
        \\sum_i q_i x_i \\le Q_j\\Big\\}

    (with :math:`x_j = 1` when clients are the sites: a centre serves itself). Subgradient ascent with
    Polyak steps toward ``upper`` (Beasley 1993). A site outside the chosen set whose opening, or a
    pair whose use, lifts the bound above ``upper - step`` is ruled out; forcing client :math:`i`
    into site :math:`j` is priced from below by the knapsack's value at :math:`Q_j - q_i`.

    Parameters
    ----------
    cost, demand, capacity
        ``c[i, j]`` (``inf``: not allowed), ``q_i``, ``Q_j``.
    p, fixed
        Centres to open; sites that must be open.
    upper
        Cost of a known plan.
    start
        Assignment of that plan (its multipliers start at the client's cost in it).
    step
        Smallest improvement worth finding (1 when every cost is an integer).
    iterations
        Work limit (subgradient iterations).

    Returns
    -------
    KnapsackLagrangian or None
        ``None`` when demands or capacities are not whole numbers, or the knapsack tables would
        exceed :data:`LAGRANGE_MAX_CELLS`.
    """
    n, m_sites = cost.shape
    square = n == m_sites
    own = np.zeros(m_sites) if not square else demand
    units = np.floor(capacity - own + 1e-9)
    if (
        np.any(np.mod(demand, 1.0) != 0.0)
        or (units < 0).any()
        or n * m_sites * (int(units.max()) + 1) > LAGRANGE_MAX_CELLS
    ):
        return None
    units = units.astype(np.int64)
    cap_max = int(units.max())
    weight = demand.astype(np.int64)
    finite = np.isfinite(cost)
    is_fixed = np.isin(np.arange(m_sites), fixed)
    free = np.flatnonzero(~is_fixed)
    need = p - int(is_fixed.sum())
    own_cost = np.diagonal(cost).copy() if square else np.zeros(m_sites)

    def evaluate(lam: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        profit = np.where(finite, lam[:, None] - cost, -np.inf).T  # sites x clients
        if square:
            np.fill_diagonal(profit, -np.inf)
        table, take = _knapsack_table(np.where(profit > 0, profit, -np.inf), weight, cap_max)
        rho = (own_cost - (lam if square else 0.0)) - table[np.arange(m_sites), units]
        chosen = np.r_[np.flatnonzero(is_fixed), free[np.argsort(rho[free], kind="stable")[:need]]].astype(
            np.int64
        )
        return float(lam.sum() + rho[chosen].sum()), rho, chosen, table, take

    lam = cost[np.arange(n), start].astype(float)
    best = (-np.inf, lam)
    theta, stall, it = 2.0, 0, 0
    while it < iterations:
        it += 1
        value, _, chosen, _, take = evaluate(lam)
        if value > best[0] + 1e-9:
            best, stall = (value, lam.copy()), 0
        else:
            stall += 1
            if stall >= LAGRANGE_STALL:
                theta, stall = theta / 2, 0
        if best[0] > upper - step or theta < 1e-4:
            break
        served = np.zeros(n)
        for j in chosen:
            if square:
                served[j] += 1.0
            c = int(units[j])
            for i in range(n - 1, -1, -1):
                if take[i, j, c]:
                    served[i] += 1.0
                    c -= int(weight[i])
        g = 1.0 - served
        norm = float(g @ g)
        if norm == 0.0:
            break
        lam = lam + theta * max(upper - value, 1e-9) / norm * g
    bound, rho, chosen, table, _ = evaluate(best[1])
    lam = best[1]
    in_s = np.zeros(m_sites, dtype=bool)
    in_s[chosen] = True
    chosen_free = np.flatnonzero(in_s & ~is_fixed)
    # the worst free chosen site gives way to the site (or pair) being priced
    worst = rho[chosen_free].max() if len(chosen_free) else np.inf
    closed = ~in_s & (bound - worst + rho > upper - step + 1e-9)
    left = np.clip(units[None, :] - weight[:, None], -1, None)  # capacity units left beside client i
    rest = np.where(left >= 0, table[np.arange(m_sites)[None, :], np.maximum(left, 0)], -np.inf)
    forced = (own_cost - (lam if square else 0.0))[None, :] + (cost - lam[:, None]) - rest
    with_pair = np.where(in_s[None, :], bound - rho[None, :] + forced, bound - worst + forced)
    dropped = finite & (with_pair > upper - step + 1e-9)
    if square:
        np.fill_diagonal(dropped, False)
    return KnapsackLagrangian(bound, closed, dropped, it)
