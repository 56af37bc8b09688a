"""Large-neighbourhood search: re-solve some accounts exactly while every other account keeps its rep.

:func:`solve_restricted` is the one building block: a MILP (built straight into highspy) over the free
accounts' allowed pairs, with every band, the disruption budget and the move cap shifted by what the
fixed accounts already use. It starts from the current plan, so a plan never gets worse.

Two neighbourhoods use it:

- **groups of territories** (:func:`neighbourhood_search`): a territory and the territories sharing the
  most candidate accounts with it; their accounts may move between them;
- **relaxation-induced** (:func:`relaxation_induced_search`, RINS): the accounts where the plan and the
  rounded LP relaxation disagree.

Every MILP stops at a node limit and every loop at a count (work limits); the deadline is the safety net.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix

from salesops_models.territory.instance import (
    AlignmentInstance,
    Objective,
    largest_share,
    pair_costs,
    plan_pairs,
    territory_loads,
)
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

    @classmethod
    def of(cls, inst: AlignmentInstance, objective: Objective) -> PairTerms:
        cost, moves, value = pair_costs(inst, objective)
        return cls(cost, moves, value, objective.budget_value(inst), objective.max_moves)

    def objective(self, inst: AlignmentInstance, plan: np.ndarray) -> float:
        return float(self.cost[plan_pairs(inst, plan)].sum())

    def violation(self, inst: AlignmentInstance, plan: np.ndarray) -> float:
        """Summed relative band violation plus the relative excess over the budget and the move cap."""
        chosen = plan_pairs(inst, plan)
        out = float(band_violation(inst, plan).sum())
        if self.budget is not None:
            out += max(float(self.value[chosen].sum()) - self.budget, 0.0) / max(inst.owned_value, 1e-12)
        if self.max_moves is not None:
            out += max(float(self.moves[chosen].sum()) - self.max_moves, 0.0) / max(inst.n_accounts, 1)
        return out


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


def solve_restricted(
    inst: AlignmentInstance,
    plan: np.ndarray,
    free: np.ndarray,
    terms: PairTerms,
    solver: SolverOptions,
    *,
    elastic_weight: float | None = None,
    deadline: Deadline | None = None,
    step: str = "neighbourhood search",
) -> np.ndarray | None:
    """The MILP's plan when only the pairs ``free`` may change; ``None`` when it found none.

    Parameters
    ----------
    plan
        Rep index per account (not changed). Each account with a free pair must have its plan's pair free.
    free
        Boolean per candidate pair: the pairs the MILP decides. Every other account keeps its rep.
    elastic_weight
        ``None``: strict bands, budget and cap. A number: band rows and the budget row get slack at this
        cost per unit of relative violation (so a plan outside its bands is a start).
    """
    q = np.flatnonzero(free)
    if len(q) == 0:
        return None
    import highspy

    touched = np.unique(inst.pair_r[q])
    R = inst.n_reps
    K = inst.target.shape[0]
    # only O(free pairs) and O(accounts) work here, never O(all pairs): the searches call this once per
    # neighbourhood, hundreds of times on a whole company
    on_plan_q = inst.pair_r[q] == plan[inst.pair_a[q]]
    is_free = np.zeros(inst.n_accounts, dtype=bool)
    is_free[inst.pair_a[q]] = True
    acc, a_loc = np.unique(inst.pair_a[q], return_inverse=True)
    planned = plan_pairs(inst, plan)
    fixed = planned[~is_free[inst.pair_a[planned]]]
    fixed_load = _fixed_loads(inst, plan, is_free)
    t_loc = np.full(R, -1)
    t_loc[touched] = np.arange(len(touched))
    n_acc, T = len(acc), len(touched)
    rows = [a_loc] + [n_acc + k * T + t_loc[inst.pair_r[q]] for k in range(K)]
    vals = [np.ones(len(q))] + [inst.metric_values[k][inst.pair_a[q]] for k in range(K)]
    row_lo = [np.ones(n_acc), (inst.lower[:, touched] - fixed_load[:, touched]).reshape(-1)]
    row_hi = [np.ones(n_acc), (inst.upper[:, touched] - fixed_load[:, touched]).reshape(-1)]
    n_row = n_acc + K * T
    budget_row = -1
    for used, cap in ((terms.value, terms.budget), (terms.moves, terms.max_moves)):
        if cap is None:
            continue
        rows.append(np.full(len(q), n_row))
        vals.append(used[q])
        row_lo.append(np.array([-np.inf]))
        row_hi.append(np.array([cap - float(used[fixed].sum()) + 1e-9 * max(cap, 1.0)]))
        if used is terms.value:
            budget_row = n_row
        n_row += 1
    cols = [np.arange(len(q))] * len(rows)
    n_col = len(q)
    col_cost = [terms.cost[q]]
    if elastic_weight is not None:
        band = n_acc + np.arange(K * T)
        tgt = np.maximum(inst.target[:, touched].reshape(-1), 1e-12)
        for sign in (1.0, -1.0):
            rows.append(band)
            cols.append(n_col + np.arange(K * T))
            vals.append(np.full(K * T, sign))
            col_cost.append(elastic_weight / tgt)
            n_col += K * T
        if budget_row >= 0:
            rows.append(np.array([budget_row]))
            cols.append(np.array([n_col]))
            vals.append(np.array([-1.0]))
            col_cost.append(np.array([elastic_weight / max(inst.owned_value, 1e-12)]))
            n_col += 1
    mat = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_row, n_col)
    )
    upper = np.r_[np.ones(len(q)), np.full(n_col - len(q), np.inf)]
    lp = highs_lp(mat, np.concatenate(col_cost), upper, np.concatenate(row_lo), np.concatenate(row_hi))
    lp.integrality_ = [highspy.HighsVarType.kInteger] * len(q) + [highspy.HighsVarType.kContinuous] * (
        n_col - len(q)
    )
    h = highs_solver(solver, deadline)
    h.passModel(lp)
    h.setSolution(len(q), np.arange(len(q), dtype=np.int32), on_plan_q.astype(float))  # HiGHS fills slacks
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
    return new


def _fixed_loads(inst: AlignmentInstance, plan: np.ndarray, is_free: np.ndarray) -> np.ndarray:
    """``K x R`` loads of the accounts that keep their rep."""
    K, R = inst.target.shape
    load = np.zeros((K, R))
    keep = ~is_free
    for k in range(K):
        load[k] = np.bincount(plan[keep], weights=inst.metric_values[k][keep], minlength=R)
    return load


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
    by_rep = np.argsort(inst.pair_r, kind="stable")  # the pairs of each rep, for O(group) neighbourhoods
    rep_start = np.r_[0, np.cumsum(np.bincount(inst.pair_r, minlength=R))]
    plan = plan.copy()
    current = terms.objective(inst, plan)
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
        in_group = np.zeros(R, dtype=bool)
        in_group[group] = True
        pairs = np.concatenate([by_rep[rep_start[g] : rep_start[g + 1]] for g in group])
        free = np.zeros(len(inst.pair_a), dtype=bool)  # pairs inside the group of accounts inside it
        free[pairs[in_group[plan[inst.pair_a[pairs]]]]] = True
        new = solve_restricted(inst, plan, free, terms, solver, deadline=deadline)
        value = terms.objective(inst, new) if new is not None else np.inf
        if value < current - 1e-9 * max(abs(current), 1.0):
            plan, current = new, value  # type: ignore[assignment]
            idle = 0
            version += 1
        else:
            idle += 1
    return plan


RINS_STEP = "relaxation-induced search"


def _by_regions(
    inst: AlignmentInstance,
    plan: np.ndarray,
    free: np.ndarray,
    terms: PairTerms,
    solver: SolverOptions,
    region: np.ndarray,
    elastic_weight: float | None,
    deadline: Deadline | None,
) -> np.ndarray | None:
    """One RINS round region by region (see :func:`relaxation_induced_search`); ``None`` when no region's
    MILP improved the plan (less violation, or as much and a lower cost)."""
    current, found = plan, False
    pair_region = region[inst.pair_r]
    for g in range(int(region.max()) + 1):
        part = free & (pair_region == g) & (region[current[inst.pair_a]] == g)
        new = solve_restricted(
            inst, current, part, terms, solver, elastic_weight=elastic_weight, deadline=deadline, step=RINS_STEP
        )
        if new is None:
            continue
        v_new, v_old = terms.violation(inst, new), terms.violation(inst, current)
        if v_new < v_old - 1e-12 or (
            v_new <= v_old + 1e-12 and terms.objective(inst, new) < terms.objective(inst, current) - 1e-12
        ):
            current, found = new, True
    return current if found else None


def relaxation_induced_search(
    inst: AlignmentInstance,
    plan: np.ndarray,
    x: np.ndarray,
    reduced: np.ndarray,
    terms: PairTerms,
    solver: SolverOptions,
    *,
    rounds: int,
    deadline: Deadline | None = None,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Improve ``plan`` by MILPs over the accounts where it and the LP relaxation ``x`` disagree (RINS).

    Each round frees the accounts whose rep in the plan differs from their largest LP share, and the
    accounts the LP splits (every other account keeps its rep); a freed account may take its plan's
    pair, the pairs the LP uses and its :math:`e` cheapest other pairs by reduced cost (:math:`e = 0`
    first, one more each round that improves nothing, at most 3). A plan outside a band or over the
    budget also frees every account of the territories it breaks, and when the strict MILP finds no
    plan, the next round penalises the slack (:data:`ELASTIC_WEIGHT`), so the plan moves inside first.
    A round's plan is kept when it breaks less, or as much and costs less.

    ``region`` (region index per rep): each round solves one MILP per region in turn, over the freed
    accounts whose plan's rep is in the region and their pairs to its reps, each from the plan the
    previous one left (whole companies: one MILP over every freed account spends minutes at its root).
    """
    P, A = len(terms.cost), inst.n_accounts
    rounded = largest_share(inst, x)
    used = x > 1e-6
    split = np.zeros(A, dtype=bool)
    split[inst.pair_a[used & (x < 1 - 1e-6)]] = True
    # rank of each pair among its account's pairs: the LP's pairs first, then by reduced cost
    order = np.lexsort((np.where(used, -1.0, reduced), inst.pair_a))
    first = np.searchsorted(inst.pair_a[order], np.arange(A))
    rank = np.empty(P, dtype=np.int64)
    rank[order] = np.arange(P) - first[inst.pair_a[order]]
    n_used = np.bincount(inst.pair_a[used], minlength=A)
    scale = max(abs(terms.objective(inst, plan)), 1e-9)
    extra = 0
    strict_failed = False
    for i in range(rounds):
        if deadline is not None and deadline.expired("relaxation-induced search"):
            break
        violation = terms.violation(inst, plan)
        free_acc = (plan != rounded) | split
        if violation > 0:
            broken = band_violation(inst, plan) > 1e-9
            free_acc |= broken[plan] | broken[rounded]
        on_plan = inst.pair_r == plan[inst.pair_a]
        free = free_acc[inst.pair_a] & (on_plan | used | (rank < n_used[inst.pair_a] + extra))
        elastic = violation > 0 and strict_failed  # the elastic MILP spends long at its root: only if needed
        weight = ELASTIC_WEIGHT * scale if elastic else None
        if region is None:
            new = solve_restricted(
                inst, plan, free, terms, solver, elastic_weight=weight, deadline=deadline, step=RINS_STEP
            )
        else:
            new = _by_regions(inst, plan, free, terms, solver, region, weight, deadline)
        better = new is not None and (
            terms.violation(inst, new) < violation - 1e-12
            or (
                terms.violation(inst, new) <= violation + 1e-12
                and terms.objective(inst, new) < terms.objective(inst, plan) - 1e-9 * scale
            )
        )
        log.info(
            "relaxation-induced search %d: %d free accounts, %d free pairs, %s",
            i,
            int(free_acc.sum()),
            int(free.sum()),
            f"objective {terms.objective(inst, new):.6g}, violation {terms.violation(inst, new):.3g}"
            if new is not None
            else "no plan",
        )
        strict_failed = new is None and not elastic
        if better:
            plan = new  # type: ignore[assignment]
        elif strict_failed and violation > 0:
            continue  # the same neighbourhood again, elastic
        elif extra >= 3:
            break
        else:
            extra += 1
    return plan
