"""Large-neighbourhood search: re-solve a few neighbouring territories exactly while the rest stays fixed.

A *group* is a territory and the territories sharing the most candidate accounts with it. The
accounts the group's territories hold may move between them (candidate pairs only); every other
account keeps its rep, so the group's loads come from its own accounts alone, and the disruption
budget and the move cap keep what the rest of the plan uses. The group's MILP (built straight into
highspy) starts from the current plan, so a plan never gets worse.

Every group MILP stops at a node limit, every loop at a count of groups (work limits); the deadline is
only the safety net.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix

from salesops_models.territory.instance import AlignmentInstance, plan_pairs, territory_loads
from salesops_models.territory.solver import Deadline, SolverOptions, highs_lp, highs_solver, stopped_by_clock

log = logging.getLogger(__name__)

#: Penalty of one unit of band slack relative to the target (and of the budget relative to the owned
#: value) in an elastic MILP, as a multiple of the plan's objective: 0.1% outside a band outweighs the
#: whole objective.
ELASTIC_WEIGHT = 1e3


@dataclass(frozen=True)
class PairTerms:
    """The objective and the side constraints of the alignment, per candidate pair.

    Attributes
    ----------
    cost
        Objective coefficient of each pair (:func:`~salesops_models.territory.instance.pair_costs`).
    moves
        1 where the pair moves an owned account away from its owner.
    value
        Value the pair moves (0 when it keeps the owner).
    budget
        Largest moved value [value unit] (``None``: no budget).
    max_moves
        Largest number of moved accounts (``None``: no cap).
    """

    cost: np.ndarray
    moves: np.ndarray
    value: np.ndarray
    budget: float | None
    max_moves: int | None

    def objective(self, inst: AlignmentInstance, plan: np.ndarray) -> float:
        return float(self.cost[plan_pairs(inst, plan)].sum())


def band_violation(inst: AlignmentInstance, plan: np.ndarray) -> np.ndarray:
    """Per territory, the summed distance of its loads outside their bands, relative to the targets [-]."""
    load = territory_loads(inst, plan)
    out = np.maximum(load - inst.upper, 0) + np.maximum(inst.lower - load, 0)
    return (out / np.maximum(inst.target, 1e-12)).sum(axis=0)


def neighbours_by_shared_candidates(inst: AlignmentInstance) -> np.ndarray:
    """``R x R`` matrix: number of accounts each two reps are both candidates for (-1 on the diagonal)."""
    P, R = len(inst.pair_a), inst.n_reps
    both = coo_matrix((np.ones(P), (inst.pair_a, inst.pair_r)), shape=(inst.n_accounts, R)).tocsc()
    shared = (both.T @ both).toarray()
    np.fill_diagonal(shared, -1)
    return shared


def group_of(shared: np.ndarray, r: int, size: int) -> np.ndarray:
    """Territory ``r`` and the ``size - 1`` territories sharing the most candidate accounts with it."""
    return np.r_[r, np.argsort(-shared[r], kind="stable")[: size - 1]].astype(int)


def solve_group(
    inst: AlignmentInstance,
    plan: np.ndarray,
    group: np.ndarray,
    terms: PairTerms,
    solver: SolverOptions,
    *,
    deadline: Deadline | None = None,
    step: str = "neighbourhood search",
) -> np.ndarray | None:
    """Re-solve the accounts of ``group``'s territories; the new plan, or ``None`` if it is not better.

    Parameters
    ----------
    plan
        Rep index per account (not changed).
    group
        Rep indices of the territories re-solved together (strict bands, budget and cap; the result
        must lower the objective).
    """
    import highspy

    R = inst.n_reps
    K = inst.target.shape[0]
    in_group = np.zeros(R, dtype=bool)
    in_group[group] = True
    on_plan = inst.pair_r == plan[inst.pair_a]
    q = np.flatnonzero(in_group[plan][inst.pair_a] & in_group[inst.pair_r])  # the group's free pairs
    if len(q) == 0:
        return None
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
    for used, cap in ((terms.value, terms.budget), (terms.moves, terms.max_moves)):
        if cap is None:
            continue
        rows.append(np.full(len(q), n_row))
        vals.append(used[q])
        row_lo.append(np.array([-np.inf]))
        row_hi.append(np.array([cap - float(used[rest].sum()) + 1e-9 * max(cap, 1.0)]))
        n_row += 1
    cols = [np.arange(len(q))] * len(rows)
    mat = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_row, len(q))
    )
    lp = highs_lp(mat, terms.cost[q], np.ones(len(q)), np.concatenate(row_lo), np.concatenate(row_hi))
    lp.integrality_ = [highspy.HighsVarType.kInteger] * len(q)
    h = highs_solver(solver, deadline)
    h.passModel(lp)
    h.setSolution(len(q), np.arange(len(q), dtype=np.int32), on_plan[q].astype(float))
    h.run()
    if stopped_by_clock(h) and deadline is not None:
        deadline.record(step)
    if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
        return None
    x = np.asarray(h.getSolution().col_value, float)[: len(q)] > 0.5
    if x.sum() != n_acc:
        return None
    new = plan.copy()
    new[inst.pair_a[q][x]] = inst.pair_r[q][x]
    before = float(terms.cost[q][on_plan[q]].sum())
    after = float(terms.cost[q][x].sum())
    return new if after < before - 1e-9 * max(abs(before), 1.0) else None


def neighbourhood_search(
    inst: AlignmentInstance,
    plan: np.ndarray,
    terms: PairTerms,
    solver: SolverOptions,
    *,
    rounds: int,
    group_size: int = 4,
    deadline: Deadline | None = None,
) -> np.ndarray:
    """Lower the objective of a plan that meets every constraint, one group of territories at a time.

    Groups are taken territory by territory, for ``rounds`` rounds over all territories or until a whole
    round improves nothing; a group already solved at the current plan is skipped.
    """
    R = inst.n_reps
    shared = neighbours_by_shared_candidates(inst)
    plan = plan.copy()
    idle = 0
    version = 0  # plan changes so far
    solved_at: dict[frozenset[int], int] = {}  # group -> plan version it was last solved at
    for i in range(rounds * R):
        if idle >= R or deadline is not None and deadline.expired("neighbourhood search"):
            break
        group = group_of(shared, i % R, group_size)
        key = frozenset(int(g) for g in group)
        if solved_at.get(key) == version:
            idle += 1  # the same neighbourhood of the same plan: nothing new to find
            continue
        solved_at[key] = version
        new = solve_group(inst, plan, group, terms, solver, deadline=deadline)
        if new is None:
            idle += 1
            continue
        plan = new
        idle = 0
        version += 1
    return plan
