"""LP relaxation and rounding of the alignment MILP: a proven bound and a plan at scale.

The strict alignment model of :func:`~salesops_models.territory.assign_territories` is built here a
second time, straight into HiGHS from the arrays of the instance (no Pyomo: at 10,000 x 100 the Pyomo
build alone takes tens of seconds). One column per candidate pair :math:`p = (a, r)`, cost

.. math:: c_p = \\alpha\\, w_a d_{ar} / T_0 + \\beta\\, v_a [o_a \\ge 0,\\ r \\ne o_a] / V

(the objective of the MILP: travel plus the value of accounts that leave their owner :math:`o_a`),
rows: each account once; every balance metric of every territory inside its band; the disruption
budget; the move cap.

1. **LP relaxation** (:math:`0 \\le x \\le 1`, dual simplex). Its objective :math:`z_{LP}` is a lower
   bound of every plan, so the gap of any plan to it is a *proven* gap. An infeasible LP proves that no
   plan meets the bands with these candidates (the diagnosis then comes from the elastic MILP).
2. **Rounding.** The LP is re-solved from the same basis with every band at :data:`ROUNDING_SHRINK`
   times its width (0.3, then 0.6, then 1.0) and each account goes to its largest share; rounding a
   narrow-band LP leaves few territories outside the real bands, and greedy rebalancing
   (:func:`~salesops_models.territory.heuristics.greedy_start`) repairs them; then local-search polish.
3. **Neighbourhood search** (:func:`neighbourhood_search`): small groups of territories re-solved
   exactly, the rest fixed; the plan never gets worse.
4. Only when step 2 leaves no plan inside the bands: an **elastic MILP restricted on reduced costs**.
   A plan's cost is :math:`z_{LP}` plus the reduced costs :math:`\\bar c_p \\ge 0` of the unused pairs
   it takes (LP duality; band and budget rows only add non-negative terms), so a plan within a gap
   :math:`g` of the bound uses no pair with :math:`\\bar c_p > g\\, z_{LP}`. The MILP keeps the pairs
   the LP uses, the plan's pairs and the cheapest others (first the :math:`\\max(4KR, 500)` cheapest,
   :math:`KR` balance rows; four times more while it finds no plan, never past :math:`g\\, z_{LP}`),
   with penalised slack on the bands so the repaired plan is a start.

The result is a plan (or ``None``), the LP bound, the number of accounts the LP split and the time.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import coo_matrix

from salesops_models.territory.heuristics import SearchLimits, greedy_start, polish
from salesops_models.territory.instance import AlignmentInstance, meets_constraints, pair_costs, plan_pairs
from salesops_models.territory.solver import Deadline, SolverOptions, highs_solver, stopped_by_clock

log = logging.getLogger(__name__)

#: Band half-widths (as shares of the requested tolerance) of the LPs that are rounded, tried in turn.
ROUNDING_SHRINK = (0.3, 0.6, 1.0)


@dataclass
class LPRounding:
    """What :func:`lp_round` found.

    Attributes
    ----------
    lp_status
        ``"optimal"``, ``"infeasible"`` (no fractional plan meets the bands: no plan does),
        or the HiGHS status when the LP stopped otherwise.
    bound
        LP objective: a lower bound of the MILP objective (NaN unless ``lp_status == "optimal"``).
    assign
        Rep index per account of the rounded plan, or ``None``.
    objective
        MILP objective of that plan (NaN without a plan).
    split_accounts
        Accounts the LP assigned to more than one rep.
    free_pairs
        Pairs left free in the last restricted MILP.
    seconds
        Wall-clock time [s], ``build_seconds`` included.
    build_seconds
        Time to build the LP and hand it to HiGHS [s].
    """

    lp_status: str
    bound: float
    assign: np.ndarray | None
    objective: float
    split_accounts: int
    free_pairs: int
    seconds: float
    build_seconds: float = 0.0

    @property
    def gap(self) -> float:
        if self.assign is None or not np.isfinite(self.bound):
            return math.nan
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-9)


def _model(
    inst: AlignmentInstance,
    cost: np.ndarray,
    moves: np.ndarray,
    value: np.ndarray,
    disruption_budget: float | None,
    max_moves: int | None,
    slack_cost: float | None = None,
) -> object:
    """The strict model as a ``HighsLp``; with ``slack_cost``, elastic: every band row and the budget row
    get slack columns (after the pair columns) costing ``slack_cost`` per unit of target (of owned value)."""

    pa, pr = inst.pair_a, inst.pair_r
    P, A = len(pa), len(inst.account_ids)
    K, R = inst.target.shape
    cols = [np.arange(P)]
    rows = [pa]
    vals = [np.ones(P)]
    row_lo = [np.ones(A)]
    row_hi = [np.ones(A)]
    for k in range(K):
        cols.append(np.arange(P))
        rows.append(A + k * R + pr)
        vals.append(inst.metric_values[k][pa])
    row_lo.append(inst.lower.reshape(-1))
    row_hi.append(inst.upper.reshape(-1))
    n_row = A + K * R
    for used, cap in (
        (value, disruption_budget * inst.owned_value if disruption_budget is not None else None),
        (moves, float(max_moves) if max_moves is not None else None),
    ):
        if cap is None:
            continue
        nz = np.flatnonzero(used)
        cols.append(nz)
        rows.append(np.full(len(nz), n_row))
        vals.append(used[nz])
        row_lo.append(np.array([-np.inf]))
        row_hi.append(np.array([cap]))
        n_row += 1
    n_col, col_cost = P, [cost.astype(float)]
    if slack_cost is not None:
        band = A + np.arange(K * R)
        tgt = np.maximum(inst.target.reshape(-1), 1e-12)
        for sign in (1.0, -1.0):  # lifts a load below its band / lowers one above
            cols.append(n_col + np.arange(K * R))
            rows.append(band)
            vals.append(np.full(K * R, sign))
            col_cost.append(slack_cost / tgt)
            n_col += K * R
        if disruption_budget is not None:
            cols.append(np.array([n_col]))
            rows.append(np.array([A + K * R]))
            vals.append(np.array([-1.0]))
            col_cost.append(np.array([slack_cost / max(inst.owned_value, 1e-12)]))
            n_col += 1
    mat = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_row, n_col)
    )
    upper = np.r_[np.ones(P), np.full(n_col - P, np.inf)]
    lp = _highs_lp(mat, np.concatenate(col_cost), upper, np.concatenate(row_lo), np.concatenate(row_hi))
    return lp


def _highs_lp(
    mat: coo_matrix, cost: np.ndarray, upper: np.ndarray, row_lo: np.ndarray, row_hi: np.ndarray
) -> object:
    """A ``HighsLp`` min cost.x, 0 <= x <= upper, row_lo <= mat.x <= row_hi."""
    import highspy

    csc = mat.tocsc()
    csc.sort_indices()
    lp = highspy.HighsLp()
    lp.num_row_, lp.num_col_ = csc.shape
    lp.col_cost_ = np.asarray(cost, float)
    lp.col_lower_ = np.zeros(csc.shape[1])
    lp.col_upper_ = np.asarray(upper, float)
    lp.row_lower_ = np.asarray(row_lo, float)
    lp.row_upper_ = np.asarray(row_hi, float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    return lp


def lp_round(
    inst: AlignmentInstance,
    *,
    travel_weight: float,
    disruption_weight: float,
    scales: tuple[float, float],
    disruption_budget: float | None,
    max_moves: int | None,
    solver: SolverOptions,
    limits: SearchLimits | None = None,
    deadline: Deadline | None = None,
) -> LPRounding:
    """Solve the LP relaxation of the strict alignment model and round it on reduced costs.

    Parameters
    ----------
    inst
        The prepared instance (candidates, bands, owners, locks).
    travel_weight, disruption_weight, scales
        The objective of the MILP (see :func:`~salesops_models.territory.instance.pair_costs`).
    disruption_budget, max_moves
        The side constraints of the MILP (``None``: absent).
    solver
        ``mip_gap``: the gap aimed at (the largest reduced-cost threshold tried is ``mip_gap * z_LP``);
        ``node_limit``: the work limit of the restricted MILPs; threads.
    limits
        Work limits of rebalancing, polish and the neighbourhood search.
    deadline
        Wall-clock safety net of the whole path (steps it stops are recorded on it).
    """
    import highspy

    limits = limits or SearchLimits()
    deadline = deadline or Deadline(solver.time_limit)
    tick = time.perf_counter()
    cost, moves, value = pair_costs(inst, travel_weight, disruption_weight, scales)
    lp = _model(inst, cost, moves, value, disruption_budget, max_moves)
    h = highs_solver(solver, deadline, mip=False)
    h.passModel(lp)
    build_seconds = time.perf_counter() - tick
    h.run()
    status = h.getModelStatus()
    n_acc = len(inst.account_ids)
    if status != highspy.HighsModelStatus.kOptimal:
        # x is bounded, so "unbounded or infeasible" from presolve means infeasible
        infeasible = status in (
            highspy.HighsModelStatus.kInfeasible,
            highspy.HighsModelStatus.kUnboundedOrInfeasible,
        )
        if stopped_by_clock(h):
            deadline.record("LP relaxation")
        name = "infeasible" if infeasible else str(status).split(".")[-1]
        log.info("LP relaxation: %s after %.1fs", name, time.perf_counter() - tick)
        return LPRounding(name, math.nan, None, math.nan, 0, 0, time.perf_counter() - tick, build_seconds)
    sol = h.getSolution()
    x = np.asarray(sol.col_value, float)
    reduced = np.maximum(np.asarray(sol.col_dual, float), 0.0)
    bound = float(h.getInfo().objective_function_value)
    split = np.bincount(inst.pair_a[(x > 1e-6) & (x < 1 - 1e-6)], minlength=n_acc) > 0
    log.info(
        "LP relaxation: bound %.6g, %d split accounts, %.1fs",
        bound,
        int(split.sum()),
        time.perf_counter() - tick,
    )
    used = x > 1e-6
    n_split = int(split.sum())

    def result(assign: np.ndarray | None, free: int) -> LPRounding:
        obj = math.nan if assign is None else float(cost[plan_pairs(inst, assign)].sum())
        return LPRounding(
            "optimal", bound, assign, obj, n_split, free, time.perf_counter() - tick, build_seconds
        )

    # 2a. round an LP with narrower bands (the rounding then stays inside the real ones more often),
    # repair what is still outside by greedy moves/swaps, then polish travel by local search
    K, R = inst.target.shape
    band_rows = np.arange(n_acc, n_acc + K * R, dtype=np.int32)
    plan = None
    for shrink in ROUNDING_SHRINK:
        if deadline.expired("LP rounding"):
            break
        tol = shrink * inst.tolerance[:, None]
        h.changeRowsBounds(
            len(band_rows),
            band_rows,
            ((1 - tol) * inst.target).reshape(-1),
            ((1 + tol) * inst.target).reshape(-1),
        )
        h.run()  # dual simplex from the previous basis
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            if stopped_by_clock(h):
                deadline.record("LP rounding")
            log.info("LP rounding: bands x%.1f: LP %s", shrink, h.getModelStatus())
            continue
        xs = np.asarray(h.getSolution().col_value, float)
        order = np.lexsort((xs, inst.pair_a))
        last = np.r_[np.flatnonzero(np.diff(inst.pair_a[order])), len(order) - 1]
        start = np.full(n_acc, -1)
        start[inst.pair_a[order][last]] = inst.pair_r[order][last]
        plan = greedy_start(inst, max_moves, start=start, max_steps=limits.rebalance_steps, deadline=deadline)
        if meets_constraints(inst, plan, value, moves, None, max_moves):
            log.info(
                "LP rounding: bands x%.1f, rounded and repaired in %.1fs", shrink, time.perf_counter() - tick
            )
            break
    if plan is None:
        plan = greedy_start(inst, max_moves, max_steps=limits.rebalance_steps, deadline=deadline)
    plan = polish(
        inst,
        plan,
        travel_weight=travel_weight,
        disruption_weight=disruption_weight,
        scales=scales,
        max_moves=max_moves,
        disruption_budget=disruption_budget,
        passes=limits.polish_passes,
        deadline=deadline,
    )
    best = (
        result(plan, 0) if meets_constraints(inst, plan, value, moves, disruption_budget, max_moves) else None
    )
    if best is not None:
        log.info(
            "LP rounding: repaired plan %.6g, gap to the LP bound %.3g%%", best.objective, 100 * best.gap
        )
        if best.gap <= solver.mip_gap:
            return best

    if best is not None:
        # 2b. large-neighbourhood search: re-solve a few neighbouring territories at a time exactly
        plan = neighbourhood_search(
            inst, best.assign, cost, moves, value, disruption_budget, max_moves, solver, limits, deadline
        )
        best = result(plan, 0)
        log.info("LP rounding: after neighbourhood search %.6g, gap %.3g%%", best.objective, 100 * best.gap)
        return best

    # 2c. no plan meets the bands yet: the elastic MILP restricted to the LP's pairs, the plan's pairs and
    # the cheapest others (reduced costs), started from the plan, drives the band violation to zero
    cap = max(abs(bound), 1e-9) * solver.mip_gap  # the largest threshold that can matter (module notes)
    spare = np.sort(reduced[~used])
    n_extra = max(4 * inst.target.size, 500)
    free = 0
    P = len(cost)
    elp = _model(
        inst, cost, moves, value, disruption_budget, max_moves, slack_cost=1e4 * max(abs(bound), 1e-9)
    )
    n_slack = elp.num_col_ - P
    elp.integrality_ = [highspy.HighsVarType.kInteger] * P + [highspy.HighsVarType.kContinuous] * n_slack
    restricted = replace(solver, mip_gap=solver.mip_gap / 4)
    while not deadline.expired("restricted MILP"):
        delta = min(float(spare[min(n_extra, len(spare)) - 1]) if len(spare) else 0.0, cap)
        on_plan = inst.pair_r == plan[inst.pair_a]
        keep = used | (reduced <= delta) | on_plan
        if int(keep.sum()) == free and n_extra < len(spare):
            n_extra *= 4  # ties in the reduced costs: the same pairs again
            continue
        free = int(keep.sum())
        elp.col_upper_ = np.r_[keep.astype(float), np.full(n_slack, np.inf)]
        m = highs_solver(restricted, deadline)
        m.passModel(elp)
        cols = np.flatnonzero(keep)
        m.setSolution(len(cols), cols.astype(np.int32), on_plan[cols].astype(float))  # HiGHS fills the slacks
        m.run()
        if stopped_by_clock(m):
            deadline.record("restricted MILP")
        mstat = m.getModelStatus()
        if m.getInfo().primal_solution_status == 2:  # kSolutionStatusFeasible
            xv = np.asarray(m.getSolution().col_value, float)[:P]
            chosen = xv > 0.5
            assign = np.full(n_acc, -1)
            assign[inst.pair_a[chosen]] = inst.pair_r[chosen]
            if (assign >= 0).all():
                plan = assign
                ok = meets_constraints(inst, plan, value, moves, disruption_budget, max_moves)
                cand = result(plan, free)
                if ok and (best is None or cand.objective < best.objective):
                    best = cand
                log.info(
                    "LP rounding: delta %.3g, %d free pairs, objective %.6g (gap to LP %.3g%%), bands %s",
                    delta,
                    free,
                    cand.objective,
                    100 * cand.gap,
                    "met" if ok else "violated",
                )
                if best is not None and best.gap <= solver.mip_gap:
                    break
        else:
            log.info("LP rounding: delta %.3g, %d free pairs: %s", delta, free, str(mstat).split(".")[-1])
        if delta >= cap or n_extra >= len(spare):
            break
        n_extra *= 4
    if best is None:
        return LPRounding(
            "optimal", bound, None, math.nan, n_split, free, time.perf_counter() - tick, build_seconds
        )
    return best


def neighbourhood_search(
    inst: AlignmentInstance,
    plan: np.ndarray,
    cost: np.ndarray,
    moves: np.ndarray,
    value: np.ndarray,
    disruption_budget: float | None,
    max_moves: int | None,
    solver: SolverOptions,
    limits: SearchLimits | None = None,
    deadline: Deadline | None = None,
) -> np.ndarray:
    """Improve a plan that meets every constraint by re-solving small groups of territories exactly.

    A group is a territory and the ``group_size - 1`` territories sharing the most candidate accounts
    with it. The accounts of the group's territories may move between them (candidate pairs only);
    everything else stays, so the group's loads come from its own accounts alone and the budget and move
    cap keep what the rest uses. The group's MILP starts from the current plan, so the plan never gets
    worse. Groups are taken territory by territory, for ``limits.neighbourhood_rounds`` rounds over all
    territories or until a whole round improves nothing; each group's MILP stops at
    ``limits.neighbourhood_nodes`` branch-and-bound nodes (work limits; ``deadline`` is the safety net).
    """
    import highspy

    limits = limits or SearchLimits()
    group_size = limits.neighbourhood_size
    group_solver = replace(solver, mip_gap=1e-6, node_limit=limits.neighbourhood_nodes)
    P, R = len(cost), len(inst.rep_ids)
    K = inst.target.shape[0]
    both = coo_matrix((np.ones(P), (inst.pair_a, inst.pair_r)), shape=(len(inst.account_ids), R)).tocsc()
    shared = (both.T @ both).toarray()
    np.fill_diagonal(shared, -1)
    plan = plan.copy()
    on_plan = inst.pair_r == plan[inst.pair_a]
    current = float(cost[on_plan].sum())
    idle = 0
    r = 0
    version = 0  # plan changes so far
    solved_at: dict[frozenset[int], int] = {}  # group -> plan version it was last solved at
    for _ in range(limits.neighbourhood_rounds * R):
        if idle >= R or deadline is not None and deadline.expired("neighbourhood search"):
            break
        group = np.r_[r, np.argsort(-shared[r], kind="stable")[: group_size - 1]]
        r = (r + 1) % R
        key = frozenset(int(g) for g in group)
        if solved_at.get(key) == version:
            idle += 1  # the same neighbourhood of the same plan: nothing new to find
            continue
        solved_at[key] = version
        in_group = np.zeros(R, dtype=bool)
        in_group[group] = True
        q = np.flatnonzero(in_group[plan][inst.pair_a] & in_group[inst.pair_r])  # free pairs
        acc, a_loc = np.unique(inst.pair_a[q], return_inverse=True)
        g_loc = np.full(R, -1)
        g_loc[group] = np.arange(len(group))
        n_acc, G = len(acc), len(group)
        rows = [a_loc] + [n_acc + k * G + g_loc[inst.pair_r[q]] for k in range(K)]
        vals = [np.ones(len(q))] + [inst.metric_values[k][inst.pair_a[q]] for k in range(K)]
        row_lo = [np.ones(n_acc), inst.lower[:, group].reshape(-1)]
        row_hi = [np.ones(n_acc), inst.upper[:, group].reshape(-1)]
        n_row = n_acc + K * G
        rest = ~in_group[plan][inst.pair_a] & on_plan  # the pairs of every other account
        for used, cap in (
            (value, disruption_budget * inst.owned_value if disruption_budget is not None else None),
            (moves, float(max_moves) if max_moves is not None else None),
        ):
            if cap is None:
                continue
            rows.append(np.full(len(q), n_row))
            vals.append(used[q])
            row_lo.append(np.array([-np.inf]))
            row_hi.append(np.array([cap - float(used[rest].sum()) + 1e-9 * max(cap, 1.0)]))
            n_row += 1
        cols = np.concatenate([np.arange(len(q))] * len(rows))
        mat = coo_matrix((np.concatenate(vals), (np.concatenate(rows), cols)), shape=(n_row, len(q)))
        lp = _highs_lp(mat, cost[q], np.ones(len(q)), np.concatenate(row_lo), np.concatenate(row_hi))
        lp.integrality_ = [highspy.HighsVarType.kInteger] * len(q)
        h = highs_solver(group_solver, deadline)
        h.passModel(lp)
        h.setSolution(len(q), np.arange(len(q), dtype=np.int32), on_plan[q].astype(float))
        h.run()
        if stopped_by_clock(h) and deadline is not None:
            deadline.record("neighbourhood search")
        if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
            idle += 1
            continue
        x = np.asarray(h.getSolution().col_value, float) > 0.5
        new = current - float(cost[q][on_plan[q]].sum()) + float(cost[q][x].sum())
        if new < current - 1e-9 * max(abs(current), 1.0) and x.sum() == n_acc:
            plan[inst.pair_a[q][x]] = inst.pair_r[q][x]
            on_plan = inst.pair_r == plan[inst.pair_a]
            current = new
            idle = 0
            version += 1
        else:
            idle += 1
    return plan
