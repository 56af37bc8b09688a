"""Territory design with free centres: p-median, capacitated p-median, placing new reps.

Formulation (p-median, Hakimi / ReVelle & Swain)
-------------------------------------------------
Clients :math:`i`, candidate centres :math:`j`, allowed pairs :math:`(i, j) \\in P`, cost
:math:`c_{ij} = w_i d_{ij}`; :math:`y_j \\in \\{0,1\\}` opens centre :math:`j`, :math:`x_{ij}` serves
:math:`i` from :math:`j`.

.. math::

    \\min \\sum_{(i,j) \\in P} c_{ij} x_{ij} \\quad \\text{s.t.} \\quad
    \\sum_j x_{ij} = 1 \\;\\forall i, \\qquad x_{ij} \\le y_j \\;\\forall (i,j) \\in P, \\qquad
    \\sum_j y_j = p, \\qquad y_j = 1 \\;\\forall j \\in F

(:math:`F`: centres that are already open, e.g. today's reps). Uncapacitated, :math:`x` may be
continuous (an optimal :math:`x` is integral once :math:`y` is). Capacitated (single source):
:math:`x_{ij} \\in \\{0,1\\}` and :math:`\\sum_i q_i x_{ij} \\le Q_j y_j`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from salesops_models.errors import SalesopsError
from salesops_models.territory.geo import distance_matrix_km
from salesops_models.territory.solver import SolveInfo, SolverOptions, solve_milp

log = logging.getLogger(__name__)


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
        Status, objective, bound, gap and seconds.
    build_seconds
        Model build time [s].
    """

    centres: np.ndarray
    assignment: np.ndarray
    objective: float
    solve: SolveInfo
    build_seconds: float

    def summary(self) -> dict[str, float | int | str]:
        return {
            "status": self.solve.status,
            "objective": self.objective,
            "bound": self.solve.bound,
            "mip_gap": self.solve.gap,
            "seconds": self.solve.seconds,
            "build_seconds": self.build_seconds,
            "centres": int(len(self.centres)),
        }


def p_median(
    cost: np.ndarray,
    p: int,
    *,
    demand: np.ndarray | None = None,
    capacity: float | np.ndarray | None = None,
    fixed_open: np.ndarray | list[int] | None = None,
    candidate_k: int | None = None,
    solver: SolverOptions | None = None,
) -> PMedianResult:
    """Choose ``p`` centres and serve every client from one of them at least total cost.

    Parameters
    ----------
    cost
        Cost matrix ``c[i, j]`` of serving client ``i`` from centre ``j`` (already weighted).
    p
        Number of centres to open (fixed ones included).
    demand, capacity
        Client demand ``q_i`` and centre capacity ``Q_j`` (scalar or per centre): capacitated,
        single-source variant when ``capacity`` is given; when clients are the sites (square
        ``cost``), an open centre serves itself.
    fixed_open
        Centres that must be open.
    candidate_k
        Keep only each client's ``candidate_k`` cheapest centres (plus the fixed ones); exact only
        when the optimum uses no farther pair.
    solver
        Time limit, gap, threads.

    Returns
    -------
    PMedianResult
    """
    solver = solver or SolverOptions()
    tick = time.perf_counter()
    cost = np.asarray(cost, dtype=float)
    n, m_sites = cost.shape
    fixed = np.asarray(fixed_open if fixed_open is not None else [], dtype=int)
    if not 1 <= p <= m_sites or len(fixed) > p:
        raise SalesopsError(
            f"p_median: p={p} must be in [1, {m_sites}] and at least the {len(fixed)} fixed centres."
        )
    mask = np.isfinite(cost)
    if candidate_k is not None and candidate_k < m_sites:
        nearest = np.argpartition(np.where(mask, cost, np.inf), candidate_k - 1, axis=1)[:, :candidate_k]
        keep = np.zeros_like(mask)
        keep[np.arange(n)[:, None], nearest] = True
        if len(fixed):
            keep[:, fixed] = True
        mask &= keep
    ci, cj = np.nonzero(mask)
    P = len(ci)
    capacitated = capacity is not None
    m = pyo.ConcreteModel("p_median")
    m.J = pyo.RangeSet(0, m_sites - 1)
    m.y = pyo.Var(m.J, within=pyo.Binary)
    m.Pairs = pyo.RangeSet(0, P - 1)
    m.x = pyo.Var(m.Pairs, within=pyo.Binary if capacitated else pyo.UnitInterval)
    order_i = np.argsort(ci, kind="stable")
    bounds_i = np.searchsorted(ci[order_i], np.arange(n + 1))
    m.assign = pyo.Constraint(
        pyo.RangeSet(0, n - 1),
        rule=lambda mm, i: pyo.quicksum(mm.x[int(q)] for q in order_i[bounds_i[i] : bounds_i[i + 1]]) == 1,
    )
    m.link = pyo.Constraint(m.Pairs, rule=lambda mm, q: mm.x[q] <= mm.y[int(cj[q])])
    m.count = pyo.Constraint(expr=pyo.quicksum(m.y[j] for j in range(m_sites)) == p)
    for j in fixed:
        m.y[int(j)].fix(1)
    if capacitated:
        q_i = np.ones(n) if demand is None else np.asarray(demand, dtype=float)
        cap = np.broadcast_to(np.asarray(capacity, dtype=float), (m_sites,))
        order_j = np.argsort(cj, kind="stable")
        bounds_j = np.searchsorted(cj[order_j], np.arange(m_sites + 1))

        def cap_rule(mm: pyo.ConcreteModel, j: int) -> object:
            pairs = order_j[bounds_j[j] : bounds_j[j + 1]]
            if len(pairs) == 0:
                return pyo.Constraint.Skip
            return pyo.quicksum(float(q_i[ci[q]]) * mm.x[int(q)] for q in pairs) <= float(cap[j]) * mm.y[j]

        m.capacity = pyo.Constraint(m.J, rule=cap_rule)
        if n == m_sites:
            # clients are the candidate sites: an open centre serves itself (OR-Library convention)
            self_pair = {int(ci[q]): int(q) for q in np.flatnonzero(ci == cj)}
            m.self_serve = pyo.Constraint(list(self_pair), rule=lambda mm, j: mm.x[self_pair[j]] >= mm.y[j])
    c = cost[ci, cj]
    m.obj = pyo.Objective(expr=pyo.quicksum(float(c[q]) * m.x[q] for q in range(P)), sense=pyo.minimize)
    build = time.perf_counter() - tick
    info = solve_milp(m, solver)
    if not info.has_solution:
        return PMedianResult(np.array([], dtype=int), np.full(n, -1), float("nan"), info, build)
    y = np.array([pyo.value(m.y[j]) for j in range(m_sites)])
    xv = np.array([m.x[q].value or 0.0 for q in range(P)])
    centres = np.flatnonzero(y > 0.5)
    # each client to its cheapest open allowed centre (= the x solution when x is integral)
    best = np.full(n, -1)
    order = np.lexsort((-xv, ci))
    first = np.unique(ci[order], return_index=True)[1]
    best[ci[order][first]] = cj[order][first]
    objective = float(cost[np.arange(n), best].sum())
    return PMedianResult(centres, best, objective, info, build)


@dataclass
class NewRepPlacement:
    """Home bases chosen for new reps: ``new_reps`` rows follow the reps schema."""

    new_reps: pd.DataFrame
    solve: SolveInfo
    site_account_ids: list[str]


def place_new_reps(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    n_new: int,
    *,
    weight_column: str | None = "workload_hours",
    max_sites: int = 250,
    candidate_k: int = 12,
    solver: SolverOptions | None = None,
) -> NewRepPlacement:
    """Place ``n_new`` reps at account locations minimising workload-weighted distance (p-median).

    Today's reps stay where they are (fixed open centres). Candidate sites are the heaviest account
    of each 0.5 deg x 0.5 deg cell, at most ``max_sites`` of them; each account considers its
    ``candidate_k`` nearest sites and every existing rep. New reps get capacity 1 and ids ``NEW001``....

    Returns
    -------
    NewRepPlacement
    """
    if n_new <= 0:
        raise SalesopsError("place_new_reps: n_new must be >= 1.")
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
    cell_w = cells.groupby("cell")["w"].sum().sort_values(ascending=False)
    top_cells = set(cell_w.index[:max_sites])
    heaviest = cells[cells["cell"].isin(top_cells)].sort_values("w", ascending=False).drop_duplicates("cell")
    sites = heaviest["pos"].to_numpy()
    site_lat = np.r_[reps["home_lat"].to_numpy(float), accounts["lat"].to_numpy(float)[sites]]
    site_lon = np.r_[reps["home_lon"].to_numpy(float), accounts["lon"].to_numpy(float)[sites]]
    d = distance_matrix_km(accounts["lat"], accounts["lon"], site_lat, site_lon)
    n_old = len(reps)
    res = p_median(
        d * w[:, None],
        n_old + n_new,
        fixed_open=list(range(n_old)),
        candidate_k=candidate_k,
        solver=solver,
    )
    if not res.solve.has_solution:
        raise SalesopsError(
            f"place_new_reps: no placement found within {res.solve.seconds:.0f}s; raise territory.time_limit."
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
        pd.DataFrame(rows), res.solve, [str(accounts.iloc[sites[j - n_old]]["account_id"]) for j in new_sites]
    )


def p_median_levels(
    cost: np.ndarray,
    p: int,
    *,
    fixed_open: np.ndarray | list[int] | None = None,
    initial_levels: int = 8,
    max_rounds: int = 20,
    solver: SolverOptions | None = None,
) -> PMedianResult:
    """Exact uncapacitated p-median by the covering ("radius") formulation with levels added on demand.

    Parameters
    ----------
    cost
        Cost ``c[i, j]`` of serving client ``i`` from centre ``j``.
    p
        Number of centres.
    fixed_open
        Centres that must be open.
    initial_levels
        Distance levels modelled per client in the first round.
    max_rounds
        Cap on solve rounds; the result says ``feasible`` (not ``optimal``) if the cap stops the loop.
    solver
        Options of each round's solve (the time limit applies to the whole loop).

    Returns
    -------
    PMedianResult
        With ``solve.bound`` the last round's bound (a valid lower bound).

    Notes
    -----
    For client :math:`i` let :math:`D_i^1 < D_i^2 < \\dots` be its distinct costs. With
    :math:`z_i^k \\ge 0` (Cornuejols, Nemhauser & Wolsey 1980; Elloumi 2010):

    .. math::

        \\min \\sum_i \\Big(D_i^1 + \\sum_{k=1}^{L_i} (D_i^{k+1} - D_i^k) z_i^k\\Big)
        \\quad\\text{s.t.}\\quad z_i^k + \\sum_{j: c_{ij} \\le D_i^k} y_j \\ge 1, \\qquad
        \\sum_j y_j = p,

    written in the chain form :math:`z_i^k + \\sum_{j: c_{ij} = D_i^k} y_j \\ge z_i^{k-1}`
    (:math:`z_i^0 = 1`), which has the same LP bound and one nonzero per site and level.

    Truncated at :math:`L_i` levels the model charges :math:`\\min(c_{i,j(i)}, D_i^{L_i+1})`: a
    relaxation, hence a lower bound. When the plan's true cost equals the model's cost, the plan is
    optimal; otherwise the levels of the clients charged too little are doubled and the model is
    solved again. Each round has only :math:`O(\\sum_i L_i^2)` nonzeros instead of the :math:`n^2`
    assignment variables of the classic model.
    """
    solver = solver or SolverOptions()
    tick = time.perf_counter()
    cost = np.asarray(cost, dtype=float)
    n, m_sites = cost.shape
    fixed = [int(j) for j in (fixed_open if fixed_open is not None else [])]
    levels_of = [np.unique(cost[i]) for i in range(n)]
    depth = np.minimum(initial_levels, [len(lv) - 1 for lv in levels_of])
    build_total = 0.0
    info = SolveInfo(status="error")
    centres = np.array([], dtype=int)
    for round_no in range(1, max_rounds + 1):
        b_tick = time.perf_counter()
        m = pyo.ConcreteModel("p_median_levels")
        m.y = pyo.Var(range(m_sites), within=pyo.Binary)
        rows = [(i, k) for i in range(n) for k in range(int(depth[i]))]
        m.z = pyo.Var(range(len(rows)), within=pyo.NonNegativeReals)
        row_of = {ik: r for r, ik in enumerate(rows)}

        def cover(mm: pyo.ConcreteModel, r: int, rows: list = rows, row_of: dict = row_of) -> object:
            # chain form: z_i^k >= z_i^(k-1) - sum of y at exactly level k (z_i^0 = 1)
            i, k = rows[r]
            at_level = np.flatnonzero(cost[i] == levels_of[i][k])
            prev = mm.z[row_of[(i, k - 1)]] if k > 0 else 1.0
            return mm.z[r] + pyo.quicksum(mm.y[int(j)] for j in at_level) >= prev

        m.cover = pyo.Constraint(range(len(rows)), rule=cover)
        m.count = pyo.Constraint(expr=pyo.quicksum(m.y[j] for j in range(m_sites)) == p)
        for j in fixed:
            m.y[j].fix(1)
        const = float(sum(levels_of[i][0] for i in range(n)))
        step = [float(levels_of[i][k + 1] - levels_of[i][k]) for i, k in rows]
        m.obj = pyo.Objective(
            expr=const + pyo.quicksum(step[r] * m.z[r] for r in range(len(rows))), sense=pyo.minimize
        )
        build_total += time.perf_counter() - b_tick
        remaining = solver.time_limit - (time.perf_counter() - tick)
        if remaining <= 0:
            break
        info = solve_milp(m, SolverOptions(remaining, solver.mip_gap, solver.threads, solver.highs_options))
        if not info.has_solution:
            break
        y = np.array([pyo.value(m.y[j]) for j in range(m_sites)])
        centres = np.flatnonzero(y > 0.5)
        true_cost = cost[:, centres].min(axis=1)
        cap = np.array([levels_of[i][int(depth[i])] for i in range(n)])
        short = true_cost > cap + 1e-9
        log.info(
            "p-median levels round %d: %d rows, %d clients charged too little",
            round_no,
            len(rows),
            short.sum(),
        )
        if not short.any():
            assign = centres[np.argmin(cost[:, centres], axis=1)]
            return PMedianResult(
                centres,
                assign,
                float(true_cost.sum()),
                _with_seconds(info, time.perf_counter() - tick),
                build_total,
            )
        full = np.array([len(lv) - 1 for lv in levels_of])
        # deepen the short clients: at least to the level of their current centre, at least doubled
        reach = np.array([int(np.searchsorted(levels_of[i], true_cost[i])) + 1 for i in range(n)])
        depth = np.where(short, np.minimum(np.maximum(2 * depth, reach), full), depth)
    # loop stopped early: the last plan is feasible, the last bound valid
    if len(centres) == 0:
        return PMedianResult(centres, np.full(n, -1), float("nan"), info, build_total)
    true_cost = cost[:, centres].min(axis=1)
    assign = centres[np.argmin(cost[:, centres], axis=1)]
    obj = float(true_cost.sum())
    from salesops_models.territory.solver import FEASIBLE, relative_gap

    out = SolveInfo(
        status=FEASIBLE,
        objective=obj,
        bound=info.bound,
        gap=relative_gap(obj, info.bound),
        seconds=time.perf_counter() - tick,
        termination=f"level rounds capped; last round {info.termination}",
        nodes=info.nodes,
    )
    return PMedianResult(centres, assign, obj, out, build_total)


def _with_seconds(info: SolveInfo, seconds: float) -> SolveInfo:
    return SolveInfo(info.status, info.objective, info.bound, info.gap, seconds, info.termination, info.nodes)
