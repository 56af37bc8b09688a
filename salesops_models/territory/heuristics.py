"""Heuristics of the alignment: a balanced plan from today's (greedy rebalancing), then local search.

- :func:`greedy_start` repairs a plan (today's alignment, or a rounded LP) until every territory is
  inside its bands, by single moves and swaps that reduce the band violation;
- :func:`polish` lowers travel and disruption by moves and swaps that keep every band, the move cap and
  the disruption budget.

Their plan starts the exact model (:mod:`~salesops_models.territory.milp`) and the large-scale path
(:mod:`~salesops_models.territory.lp_round`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salesops_models.territory.contiguity import Contiguity, ContiguityState, make_connected
from salesops_models.territory.instance import (
    AlignmentInstance,
    Objective,
    account_pairs,
    pair_costs,
    plan_pairs,
    territory_loads,
)
from salesops_models.territory.solver import Deadline


def _rep_penalty(load: np.ndarray, lower: np.ndarray, upper: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-rep penalty (summed over metrics): band violation plus a small pull toward the target."""
    t = np.maximum(target, 1e-12)
    viol = (np.maximum(load - upper, 0) + np.maximum(lower - load, 0)) / t
    return (viol + CENTRE_PULL * np.abs(load / t - 1)).sum(axis=0)


CENTRE_PULL = 0.05
#: Largest number of steps of greedy rebalancing (and of one move pass of polish) per account.
REBALANCE_STEPS_PER_ACCOUNT = 20
#: Passes of polish (moves, then swaps) at most.
POLISH_PASSES = 50


@dataclass(frozen=True)
class SearchLimits:
    """Work limits of the alignment heuristics: the plan they give depends on these, never on the clock.

    Parameters
    ----------
    rebalance_steps
        Steps (moves or swaps) of greedy rebalancing at most; ``None``:
        :data:`REBALANCE_STEPS_PER_ACCOUNT` per account.
    polish_passes
        Passes of polish (a move pass, then a swap pass) at most.
    rins_rounds
        Rounds of the relaxation-induced search of the large-scale path (one MILP over the accounts
        where the plan and the LP relaxation disagree per round).
    neighbourhood_rounds
        Rounds over all territories of the neighbourhood search of the large-scale path (one group
        MILP per territory and round).
    neighbourhood_nodes
        Branch-and-bound nodes of each MILP of these two searches.
    neighbourhood_size
        Territories per group.
    contiguity_rounds
        Rounds of the contiguity cut loop of the exact model at most (solve, cut the territories in
        pieces, solve again).
    lagrangian_steps
        Subgradient steps of the Lagrangian bound (whole companies, see
        :data:`~salesops_models.territory.lp_round.LAGRANGIAN_PAIRS`).
    """

    rebalance_steps: int | None = None
    polish_passes: int = POLISH_PASSES
    rins_rounds: int = 8
    neighbourhood_rounds: int = 2
    neighbourhood_nodes: int = 100
    neighbourhood_size: int = 4
    contiguity_rounds: int = 10
    lagrangian_steps: int = 500


def greedy_start(
    inst: AlignmentInstance,
    max_moves: int | None,
    *,
    start: np.ndarray | None = None,
    max_steps: int | None = None,
    contiguity: Contiguity | None = None,
    deadline: Deadline | None = None,
) -> np.ndarray:
    r"""Rep index per account: today's owner (or nearest candidate), then greedy rebalancing moves and swaps.

    ``start`` replaces today's alignment as the plan to repair (locks still apply), e.g. the rounded LP
    relaxation of :mod:`~salesops_models.territory.lp_round`.

    Local search on the penalty :math:`f = \sum_{k,r} [\max(0, L_{kr} - U_{kr}) + \max(0, \ell_{kr} -
    L_{kr})] / T_{kr} + 0.05 \sum_{k,r} |L_{kr}/T_{kr} - 1|` (band violation plus a small pull toward
    the target, which makes room for later moves). Each step applies the candidate move with the
    largest drop of :math:`f` (ties broken by travel); when no move helps, the best swap of two accounts
    between a violated territory and a neighbour. Stops when the bands are met, when nothing helps, at the
    move cap (only moves back to the owner remain), after ``max_steps`` steps (default
    :data:`REBALANCE_STEPS_PER_ACCOUNT` per account: a work limit, so the plan is the same on any
    machine) or, as a safety net, when ``deadline`` runs out. With ``contiguity``, only moves and swaps
    that keep every territory connected (:class:`~salesops_models.territory.contiguity.ContiguityState`):
    boundary moves, as in political districting.
    """
    n_acc = len(inst.account_ids)
    cost = inst.pair_travel
    assign = np.full(n_acc, -1)
    # nearest candidate per account
    order = np.lexsort((cost, inst.pair_a))
    first = np.unique(inst.pair_a[order], return_index=True)[1]
    assign[inst.pair_a[order][first]] = inst.pair_r[order][first]
    keep = inst.owner >= 0
    assign[keep] = inst.owner[keep]
    if start is not None:
        assign = np.asarray(start, dtype=int).copy()
    locked = inst.lock >= 0
    assign[locked] = inst.lock[locked]
    if inst.metric_values.shape[0] == 0:
        return assign
    K, R = inst.target.shape
    load = np.zeros((K, R))
    for k in range(K):
        load[k] = np.bincount(assign, weights=inst.metric_values[k], minlength=R)
    movable = ~locked[inst.pair_a]
    pa, pr = inst.pair_a[movable], inst.pair_r[movable]
    pcost = cost[movable]
    mv = inst.metric_values[:, pa]  # K x P
    lo, hi, tg = inst.lower, inst.upper, inst.target
    moves = int(((assign != inst.owner) & keep).sum())
    scale = max(float(np.abs(pcost).max()), 1e-12)
    state = ContiguityState(inst, contiguity, assign) if contiguity is not None else None

    def apply(a: int, r_new: int) -> None:
        nonlocal moves
        r_old = assign[a]
        if state is not None:
            state.move(a, int(r_old), int(r_new))
        load[:, r_old] -= inst.metric_values[:, a]
        load[:, r_new] += inst.metric_values[:, a]
        was_home = r_old == inst.owner[a]
        assign[a] = r_new
        if keep[a]:
            moves += int(was_home) - int(r_new == inst.owner[a])

    steps = REBALANCE_STEPS_PER_ACCOUNT * n_acc if max_steps is None else max_steps
    for _ in range(steps):
        if deadline is not None and deadline.expired("greedy rebalancing"):
            break
        if ((load > hi + 1e-9) | (load < lo - 1e-9)).sum() == 0:
            break  # bands met: travel and disruption are the MILP's job
        pen = _rep_penalty(load, lo, hi, tg)
        src = assign[pa]
        active = src != pr
        if max_moves is not None and moves >= max_moves:
            active &= pr == inst.owner[pa]  # only moves back to the owner are still allowed
        if state is not None:
            active &= state.allowed(pa, src, pr)
        after = _rep_penalty(load[:, src] - mv, lo[:, src], hi[:, src], tg[:, src]) + _rep_penalty(
            load[:, pr] + mv, lo[:, pr], hi[:, pr], tg[:, pr]
        )
        delta = after - pen[src] - pen[pr]
        score = np.where(active, delta + 1e-9 * (pcost / scale), np.inf)
        best = int(np.argmin(score))
        if np.isfinite(score[best]) and delta[best] < -1e-9:
            apply(int(pa[best]), int(pr[best]))
            continue
        # no improving move: best swap between a violated territory and a neighbour
        viol = (np.maximum(load - hi, 0) + np.maximum(lo - load, 0)).sum(axis=0)
        swapped = False
        for r1 in np.argsort(-viol, kind="stable"):
            if viol[r1] <= 1e-12:
                break
            out1 = np.flatnonzero((src == r1) & (pr != r1))
            if state is not None:
                out1 = out1[state.allowed(pa[out1], src[out1], pr[out1])]
            options = []
            for r2 in np.unique(pr[out1]):
                ia = out1[pr[out1] == r2]
                ib = np.flatnonzero((src == r2) & (pr == r1))
                if state is not None and len(ib):
                    ib = ib[state.allowed(pa[ib], src[ib], pr[ib])]
                if len(ia) == 0 or len(ib) == 0:
                    continue
                diff = mv[:, ia][:, :, None] - mv[:, ib][:, None, :]  # K x A x B, load leaving r1
                l1 = load[:, r1][:, None, None] - diff
                l2 = load[:, r2][:, None, None] + diff
                f = _rep_penalty(l1.reshape(K, -1), lo[:, [r1]], hi[:, [r1]], tg[:, [r1]]) + _rep_penalty(
                    l2.reshape(K, -1), lo[:, [r2]], hi[:, [r2]], tg[:, [r2]]
                )
                d = f - pen[r1] - pen[r2]
                j = int(np.argmin(d))
                if d[j] < -1e-9:
                    options.append(
                        (float(d[j]), int(pa[ia[j // len(ib)]]), int(pa[ib[j % len(ib)]]), int(r2))
                    )
            for _, a1, a2, r2 in sorted(options):
                apply(a1, r2)
                if state is None or state.allowed(np.array([a2]), np.array([r2]), np.array([int(r1)]))[0]:
                    apply(a2, int(r1))
                    swapped = True
                    break
                apply(a1, int(r1))  # the second half would break a territory: undo the first
            if swapped:
                break
        if not swapped:
            break
    return assign


def restore_budget(
    inst: AlignmentInstance,
    plan: np.ndarray,
    cost: np.ndarray,
    budget: float,
    *,
    passes: int = 3,
) -> np.ndarray:
    """Give moved accounts back to their owners until the moved value is within ``budget``.

    A rounded LP meets its bands but often moves more value than the budget allows (at 100,000 x 300
    blocks, every narrow-band rounding did). Each pass walks the moved accounts (owner a candidate, not
    locked) in the order of the objective each unit of value costs to return, cheapest first, and
    returns every one whose two territories stay inside their bands, until the budget holds.
    ``passes`` is the work limit (a return can make room for an earlier one). ``cost``: objective
    coefficient per pair.
    """
    plan = plan.copy()
    own, owner = inst.owner_pair, inst.owner
    at = account_pairs(inst, plan)
    excess = float(inst.value[(owner >= 0) & (plan != owner)].sum()) - budget
    if excess <= 1e-9 * max(budget, 1.0):
        return plan
    movable = (own >= 0) & (inst.lock < 0) & (at >= 0) & (inst.value > 0)
    load = territory_loads(inst, plan)
    lower, upper = inst.lower, inst.upper
    for _ in range(passes):
        cand = np.flatnonzero(movable & (plan != owner))
        if len(cand) == 0:
            break
        delta = cost[own[cand]] - cost[at[cand]]
        order = cand[np.lexsort((cand, delta / inst.value[cand]))]
        changed = False
        for a in order.tolist():
            src, dst = int(plan[a]), int(owner[a])
            m = inst.metric_values[:, a]
            if (load[:, src] - m < lower[:, src] - 1e-9).any() or (load[:, dst] + m > upper[:, dst] + 1e-9).any():
                continue
            load[:, src] -= m
            load[:, dst] += m
            plan[a] = dst
            at[a] = own[a]
            excess -= float(inst.value[a])
            changed = True
            if excess <= 0:
                return plan
        if not changed:
            break
    return plan


def polish(
    inst: AlignmentInstance,
    assign: np.ndarray,
    objective: Objective,
    *,
    passes: int = POLISH_PASSES,
    contiguity: Contiguity | None = None,
    deadline: Deadline | None = None,
) -> np.ndarray:
    """Improve a plan by single-account moves that keep every band, the move cap and the budget.

    Each step applies the move with the largest drop of the objective
    :math:`\\alpha \\Delta\\text{travel} / T_0 + \\beta \\Delta\\text{disruption} / V` among the moves that
    keep every territory inside its bands (territories already outside a band may not get worse), then
    the best improving swap of two accounts between each pair of neighbouring territories; passes repeat
    until nothing improves or ``passes`` passes are done (a work limit; ``deadline`` is the safety net).
    With ``contiguity``, only moves and swaps that keep every territory connected.
    """
    assign = assign.copy()
    travel_weight, disruption_weight = objective.travel_weight, objective.disruption_weight
    max_moves, disruption_budget = objective.max_moves, objective.disruption_budget
    cost = inst.pair_travel
    movable = inst.lock[inst.pair_a] < 0
    pa, pr, pc = inst.pair_a[movable], inst.pair_r[movable], cost[movable]
    if len(pa) == 0:
        return assign
    K, R = inst.target.shape
    mv = inst.metric_values[:, pa]
    lo, hi = inst.lower, inst.upper
    load = np.zeros((K, R))
    for k in range(K):
        load[k] = np.bincount(assign, weights=inst.metric_values[k], minlength=R)
    t_scale, d_scale = objective.scales
    owned = inst.owner >= 0
    v = np.where(owned, inst.value, 0.0)
    moved = owned & (assign != inst.owner)
    n_moved = int(moved.sum())
    disruption = float(v[moved].sum())
    budget = None if disruption_budget is None else disruption_budget * inst.owned_value
    # cost of each account's current pair
    idx = np.full((len(inst.account_ids), R), np.nan)
    idx[inst.pair_a, inst.pair_r] = cost
    cur_cost = idx[np.arange(len(assign)), assign]
    state = {"n_moved": n_moved, "disruption": disruption}
    connected = ContiguityState(inst, contiguity, assign) if contiguity is not None else None

    def move_pass() -> int:
        done = 0
        for _ in range(REBALANCE_STEPS_PER_ACCOUNT * len(assign)):
            if deadline is not None and deadline.expired("polish"):
                break
            src = assign[pa]
            active = src != pr
            was_moved = owned[pa] & (src != inst.owner[pa])
            now_moved = owned[pa] & (pr != inst.owner[pa])
            d_moves = now_moved.astype(int) - was_moved.astype(int)
            d_dis = v[pa] * d_moves
            delta = travel_weight * (pc - cur_cost[pa]) / t_scale + disruption_weight * d_dis / d_scale
            ok = active & (delta < -1e-12)
            if max_moves is not None:
                ok &= state["n_moved"] + d_moves <= max(max_moves, state["n_moved"])
            if budget is not None:
                ok &= state["disruption"] + d_dis <= max(budget, state["disruption"]) + 1e-9
            if connected is not None and ok.any():
                ok[ok] &= connected.allowed(pa[ok], src[ok], pr[ok])
            if not ok.any():
                break
            cand = np.flatnonzero(ok)
            new_src = load[:, src[cand]] - mv[:, cand]
            new_dst = load[:, pr[cand]] + mv[:, cand]
            # a territory may leave its band only in the direction of its target
            src_ok = ((new_src >= lo[:, src[cand]] - 1e-9) | (new_src >= load[:, src[cand]])).all(axis=0)
            dst_ok = ((new_dst <= hi[:, pr[cand]] + 1e-9) | (new_dst <= load[:, pr[cand]])).all(axis=0)
            cand = cand[src_ok & dst_ok]
            if len(cand) == 0:
                break
            best = int(cand[np.argmin(delta[cand])])
            a, r_new, r_old = int(pa[best]), int(pr[best]), int(src[best])
            load[:, r_old] -= inst.metric_values[:, a]
            load[:, r_new] += inst.metric_values[:, a]
            state["n_moved"] += int(d_moves[best])
            state["disruption"] += float(d_dis[best])
            if connected is not None:
                connected.move(a, r_old, r_new)
            assign[a] = r_new
            cur_cost[a] = pc[best]
            done += 1
        return done

    def swap_pass() -> int:
        # swap a (r1 -> r2) with b (r2 -> r1): the loads of both territories change only by the difference
        done = 0
        src = assign[pa]
        pairs_of: dict[tuple[int, int], list[int]] = {}
        for q in np.flatnonzero(src != pr):
            pairs_of.setdefault((int(src[q]), int(pr[q])), []).append(int(q))
        for (r1, r2), qa in pairs_of.items():
            if r1 > r2:
                continue
            if deadline is not None and deadline.expired("polish"):
                break
            qb = pairs_of.get((r2, r1))
            if not qb:
                continue
            qa_arr = np.array([q for q in qa if assign[pa[q]] == r1], dtype=int)
            qb_arr = np.array([q for q in qb if assign[pa[q]] == r2], dtype=int)
            if connected is not None and len(qa_arr) and len(qb_arr):
                qa_arr = qa_arr[connected.allowed(pa[qa_arr], np.full(len(qa_arr), r1), pr[qa_arr])]
                qb_arr = qb_arr[connected.allowed(pa[qb_arr], np.full(len(qb_arr), r2), pr[qb_arr])]
            if len(qa_arr) == 0 or len(qb_arr) == 0:
                continue
            ia, ib = pa[qa_arr], pa[qb_arr]
            dm_a = (owned[ia] & (r2 != inst.owner[ia])).astype(int) - (
                owned[ia] & (r1 != inst.owner[ia])
            ).astype(int)
            dm_b = (owned[ib] & (r1 != inst.owner[ib])).astype(int) - (
                owned[ib] & (r2 != inst.owner[ib])
            ).astype(int)
            dd_a, dd_b = v[ia] * dm_a, v[ib] * dm_b
            gain_a = (
                travel_weight * (pc[qa_arr] - cur_cost[ia]) / t_scale + disruption_weight * dd_a / d_scale
            )
            gain_b = (
                travel_weight * (pc[qb_arr] - cur_cost[ib]) / t_scale + disruption_weight * dd_b / d_scale
            )
            delta = gain_a[:, None] + gain_b[None, :]
            ok = delta < -1e-12
            if max_moves is not None:
                ok &= state["n_moved"] + dm_a[:, None] + dm_b[None, :] <= max(max_moves, state["n_moved"])
            if budget is not None:
                ok &= (
                    state["disruption"] + dd_a[:, None] + dd_b[None, :]
                    <= max(budget, state["disruption"]) + 1e-9
                )
            if not ok.any():
                continue
            diff = inst.metric_values[:, ia][:, :, None] - inst.metric_values[:, ib][:, None, :]
            l1 = load[:, r1][:, None, None] - diff
            l2 = load[:, r2][:, None, None] + diff
            ok &= ((l1 >= lo[:, r1, None, None] - 1e-9) & (l1 <= hi[:, r1, None, None] + 1e-9)).all(axis=0)
            ok &= ((l2 >= lo[:, r2, None, None] - 1e-9) & (l2 <= hi[:, r2, None, None] + 1e-9)).all(axis=0)
            if not ok.any():
                continue
            j = int(np.argmin(np.where(ok, delta, np.inf)))
            x, y = divmod(j, len(ib))
            a1, a2 = int(ia[x]), int(ib[y])
            if connected is not None:
                connected.move(a1, r1, r2)
                if not connected.allowed(np.array([a2]), np.array([r2]), np.array([r1]))[0]:
                    connected.move(a1, r2, r1)  # the second half would break a territory: no swap
                    continue
                connected.move(a2, r2, r1)
            load[:, r1] -= diff[:, x, y]
            load[:, r2] += diff[:, x, y]
            assign[a1], assign[a2] = r2, r1
            cur_cost[a1], cur_cost[a2] = pc[qa_arr[x]], pc[qb_arr[y]]
            state["n_moved"] += int(dm_a[x] + dm_b[y])
            state["disruption"] += float(dd_a[x] + dd_b[y])
            done += 1
        return done

    for _ in range(passes):
        if move_pass() + swap_pass() == 0:
            break
        if deadline is not None and deadline.expired("polish"):
            break
    return assign


def connected_plan(
    inst: AlignmentInstance,
    contiguity: Contiguity,
    plan: np.ndarray,
    objective: Objective,
    limits: SearchLimits,
    deadline: Deadline | None = None,
) -> np.ndarray:
    """A plan whose territories are connected, near ``plan``, rebalanced and polished by boundary moves.

    :func:`~salesops_models.territory.contiguity.make_connected` first (bands may break), then
    :func:`greedy_start` restricted to moves and swaps that keep every territory in one piece. Boundary
    moves get stuck more often from a fragmented plan (a rounded LP) than from compact territories, so
    the same is done from "every account to its nearest candidate" too, and the plan with the smaller
    band violation (then cost) is polished, again by connected moves only.
    """
    cost = pair_costs(inst, objective)[0]
    best, best_key = plan, (np.inf, np.inf)
    for base in (plan, inst.pair_r[inst.nearest_pair]):
        candidate = greedy_start(
            inst,
            objective.max_moves,
            start=make_connected(inst, contiguity, base, cost),
            max_steps=limits.rebalance_steps,
            contiguity=contiguity,
            deadline=deadline,
        )
        load = territory_loads(inst, candidate)
        outside = float((np.maximum(load - inst.upper, 0) + np.maximum(inst.lower - load, 0)).sum())
        key = (round(outside, 9), float(cost[plan_pairs(inst, candidate)].sum()))
        if key < best_key:
            best, best_key = candidate, key
        if outside == 0:
            break
    return polish(
        inst, best, objective, passes=limits.polish_passes, contiguity=contiguity, deadline=deadline
    )
