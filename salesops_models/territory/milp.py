"""The exact alignment model: a generalised-assignment MILP in Pyomo, solved by HiGHS.

Formulation
-----------
Sets: accounts :math:`a \\in A`, reps :math:`r \\in R`, balanced metrics :math:`k \\in K`, candidate
pairs :math:`P \\subseteq A \\times R` (each account's ``candidate_k`` nearest reps, its current owner
and its lock).

Parameters: distance :math:`d_{ar}` [km], travel weight :math:`w_a` (e.g. workload hours), metric
values :math:`m_{ka}`, rep capacity :math:`c_r` [0-1], tolerance :math:`\\tau_k` [-], disruption value
:math:`v_a` of an account whose owner :math:`o(a)` changes, move cap :math:`N`, disruption budget
:math:`B` (share of :math:`V = \\sum_{a: o(a) \\in R} v_a`).

Variables: :math:`x_{ar} \\in \\{0, 1\\}` for :math:`(a, r) \\in P`.

.. math::

    \\min\\; \\alpha \\frac{\\sum_{(a,r) \\in P} w_a d_{ar} x_{ar}}{T_0}
        + \\beta \\frac{\\sum_{a: o(a) \\in R} v_a (1 - x_{a,o(a)})}{V}

    \\text{s.t.}\\; \\sum_{r:(a,r) \\in P} x_{ar} = 1 \\quad \\forall a

    (1-\\tau_k)\\, T_{kr} \\le \\sum_{a:(a,r) \\in P} m_{ka} x_{ar} \\le (1+\\tau_k)\\, T_{kr}, \\quad
    T_{kr} = \\frac{c_r}{\\sum_s c_s} \\sum_a m_{ka} \\quad \\forall k, r

    \\sum_{a: o(a) \\in R} (1 - x_{a,o(a)}) \\le N, \\qquad
    \\sum_{a: o(a) \\in R} v_a (1 - x_{a,o(a)}) \\le B V

with :math:`T_0 = \\sum_a \\min_{r:(a,r)\\in P} w_a d_{ar}` (the travel of "everyone to the nearest
candidate", a lower bound) so that both terms are shares near 1 and :math:`\\alpha`, :math:`\\beta`
are unit-free (``normalize=False`` drops the two denominators). Locked accounts keep only their
locked pair.

Elastic model (when the strict model is infeasible): each metric gets a relaxation
:math:`t_k \\ge 0` shared by all reps, the band becomes
:math:`(1-\\tau_k-t_k) T_{kr} \\le \\cdot \\le (1+\\tau_k+t_k) T_{kr}`, the move cap and the budget get
slacks :math:`s_N, s_B \\ge 0`, and :math:`M (\\sum_k t_k + s_N/|A| + s_B)` with :math:`M = 10^4` is
added to the objective. The nearest plan and :math:`\\tau_k + t_k` (the tolerance that would make the
plan feasible) are reported.

Components of :func:`build_alignment_model`: variables ``x[p]`` (binary, pair :math:`p = (a, r)` is
used), ``relax[k]``, ``move_slack``, ``budget_slack`` (elastic model only); constraints ``assign``
(each account once), ``balance`` (strict bands) or ``balance_hi``/``balance_lo`` (elastic),
``move_cap`` and ``budget`` (only when a cap or budget is given), ``contiguity`` (separator cuts,
added by :func:`add_contiguity_cuts`); expressions ``travel``,
``disruption``, ``moved`` and ``base_objective`` (the objective without the elastic penalty).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pyomo.environ as pyo

from salesops_models.errors import SalesopsError
from salesops_models.territory.contiguity import Contiguity, ContiguityCut, cut_row, make_connected
from salesops_models.territory.instance import AlignmentInstance, Objective
from salesops_models.territory.neighbourhood import PairTerms
from salesops_models.territory.solver import (
    FEASIBLE,
    NO_SOLUTION,
    OPTIMAL,
    Deadline,
    SolveInfo,
    SolverOptions,
    relative_gap,
    solve_milp,
)

log = logging.getLogger(__name__)

#: Penalty per unit of relaxation in the elastic model, times the size of the objective.
ELASTIC_PENALTY = 1e4


def _groups(keys: np.ndarray, n: int) -> list[np.ndarray]:
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n)]


def build_alignment_model(
    inst: AlignmentInstance, objective: Objective, *, elastic: bool
) -> pyo.ConcreteModel:
    """The Pyomo model of the module notes (the elastic one when ``elastic``)."""
    travel_weight, disruption_weight = objective.travel_weight, objective.disruption_weight
    disruption_budget, max_moves = objective.disruption_budget, objective.max_moves
    n_acc, n_rep = len(inst.account_ids), len(inst.rep_ids)
    P = len(inst.pair_a)
    K = len(inst.metric_names)
    cost = inst.pair_travel
    m = pyo.ConcreteModel("territory_alignment")
    m.P = pyo.RangeSet(0, P - 1)
    m.x = pyo.Var(m.P, within=pyo.Binary)
    x = m.x
    by_account = _groups(inst.pair_a, n_acc)
    m.assign = pyo.Constraint(
        pyo.RangeSet(0, n_acc - 1), rule=lambda _, a: pyo.quicksum(x[int(p)] for p in by_account[a]) == 1
    )
    by_rep = _groups(inst.pair_r, n_rep)
    if elastic:
        m.K = pyo.RangeSet(0, max(K - 1, 0))
        m.relax = pyo.Var(m.K, within=pyo.NonNegativeReals)

    def load(k: int, r: int) -> pyo.Expression:
        vals = inst.metric_values[k]
        return pyo.quicksum(float(vals[inst.pair_a[p]]) * x[int(p)] for p in by_rep[r])

    if K:
        m.KR = pyo.Set(initialize=[(k, r) for k in range(K) for r in range(n_rep)], dimen=2)
        lo, hi, tg = inst.lower, inst.upper, inst.target
        if not elastic:
            m.balance = pyo.Constraint(
                m.KR, rule=lambda _, k, r: pyo.inequality(float(lo[k, r]), load(k, r), float(hi[k, r]))
            )
        else:
            m.balance_hi = pyo.Constraint(
                m.KR, rule=lambda mm, k, r: load(k, r) <= float(hi[k, r]) + float(tg[k, r]) * mm.relax[k]
            )
            m.balance_lo = pyo.Constraint(
                m.KR, rule=lambda mm, k, r: load(k, r) >= float(lo[k, r]) - float(tg[k, r]) * mm.relax[k]
            )

    owned = np.flatnonzero(inst.owner_pair >= 0)
    V = inst.owned_value
    stays = pyo.quicksum(x[int(inst.owner_pair[a])] for a in owned)
    kept_value = pyo.quicksum(float(inst.value[a]) * x[int(inst.owner_pair[a])] for a in owned)
    # accounts whose owner is a rep but the pair was removed by a lock always move
    m.moved = pyo.Expression(expr=float(len(owned)) - stays + float((inst.owner >= 0).sum() - len(owned)))
    lost_value = float(inst.value[(inst.owner >= 0) & (inst.owner_pair < 0)].sum())
    m.disruption = pyo.Expression(expr=float(inst.value[owned].sum()) - kept_value + lost_value)
    m.travel = pyo.Expression(expr=pyo.quicksum(float(cost[p]) * x[p] for p in range(P)))
    t0 = inst.nearest_travel
    t_scale, d_scale = objective.scales
    obj = 0.0
    if travel_weight:
        obj = obj + travel_weight / t_scale * m.travel
    if disruption_weight:
        obj = obj + disruption_weight / d_scale * m.disruption
    # penalty per unit of relaxation: ELASTIC_PENALTY times the size of the objective itself, so a
    # relaxation of 1e-4 (0.01 percentage points) outweighs any travel/disruption saving
    size = abs(travel_weight) * t0 / t_scale + abs(disruption_weight) * V / d_scale
    big = ELASTIC_PENALTY * max(size, 1.0)
    penalty = 0.0
    if max_moves is not None:
        if elastic:
            m.move_slack = pyo.Var(within=pyo.NonNegativeReals)
            m.move_cap = pyo.Constraint(expr=m.moved <= max_moves + m.move_slack)
            penalty = penalty + big * m.move_slack / max(n_acc, 1)
        else:
            m.move_cap = pyo.Constraint(expr=m.moved <= max_moves)
    if disruption_budget is not None:
        budget = disruption_budget * V
        if elastic:
            m.budget_slack = pyo.Var(within=pyo.NonNegativeReals)
            m.budget = pyo.Constraint(expr=m.disruption <= budget + m.budget_slack)
            penalty = penalty + big * m.budget_slack / max(V, 1e-12)
        else:
            m.budget = pyo.Constraint(expr=m.disruption <= budget)
    if elastic and K:
        penalty = penalty + big * pyo.quicksum(m.relax[k] for k in range(K))
    m.caps = (
        float(max_moves) if max_moves is not None else math.inf,
        disruption_budget * V if disruption_budget is not None else math.inf,
    )
    m.base_objective = pyo.Expression(expr=obj)
    m.obj = pyo.Objective(expr=obj + penalty, sense=pyo.minimize)
    return m


def extract_assignment(m: pyo.ConcreteModel, inst: AlignmentInstance) -> np.ndarray:
    vals = np.fromiter(
        (m.x[p].value or 0.0 for p in range(len(inst.pair_a))), dtype=float, count=len(inst.pair_a)
    )
    assign = np.full(len(inst.account_ids), -1)
    best = np.full(len(inst.account_ids), -1.0)
    # the pair with the largest value per account (all 0/1 up to tolerance)
    order = np.lexsort((vals, inst.pair_a))
    last = np.r_[np.flatnonzero(np.diff(inst.pair_a[order])), len(order) - 1]
    assign[inst.pair_a[order][last]] = inst.pair_r[order][last]
    best[inst.pair_a[order][last]] = vals[order][last]
    if (best < 0.5).any():
        raise SalesopsError("internal: an account without an assigned rep in the solver's solution.")
    return assign


def start_values(
    m: pyo.ConcreteModel, inst: AlignmentInstance, assign: np.ndarray
) -> list[tuple[object, float]]:
    chosen = np.zeros(len(inst.pair_a), dtype=bool)
    chosen[inst.pair_r == assign[inst.pair_a]] = True
    values: list[tuple[object, float]] = [(m.x[p], float(chosen[p])) for p in range(len(inst.pair_a))]
    if hasattr(m, "relax"):
        # the elastic variables at the smallest values that make the start feasible
        K, R = inst.target.shape
        for k in range(K):
            load = np.bincount(assign, weights=inst.metric_values[k], minlength=R)
            t = np.maximum(inst.target[k], 1e-12)
            need = np.maximum(np.maximum(load - inst.upper[k], inst.lower[k] - load), 0) / t
            values.append((m.relax[k], float(need.max()) * (1 + 1e-9)))
        moved = (inst.owner >= 0) & (assign != inst.owner)
        if hasattr(m, "move_slack"):
            values.append((m.move_slack, max(float(moved.sum()) - m.caps[0], 0.0)))
        if hasattr(m, "budget_slack"):
            values.append((m.budget_slack, max(float(inst.value[moved].sum()) - m.caps[1], 0.0)))
    return values


def add_contiguity_cuts(m: pyo.ConcreteModel, inst: AlignmentInstance, cuts: Sequence[ContiguityCut]) -> int:
    """Add the separator cuts not yet in ``m`` (constraint list ``contiguity``); how many were added.

    Each cut reads :math:`x_{a r} + x_{b r} - \\sum_{c \\in S} x_{c r} \\le 1` over candidate pairs (see
    :mod:`~salesops_models.territory.contiguity`).
    """
    if not hasattr(m, "contiguity"):
        m.contiguity = pyo.ConstraintList()
        m.contiguity_added = 0
    new = cuts[m.contiguity_added :]
    for cut in new:
        cols, vals = cut_row(inst, cut)
        m.contiguity.add(pyo.quicksum(float(v) * m.x[int(p)] for p, v in zip(cols, vals, strict=True)) <= 1)
    m.contiguity_added = len(cuts)
    return len(new)


def solve_alignment_model(
    model: pyo.ConcreteModel,
    inst: AlignmentInstance,
    solver: SolverOptions,
    start: np.ndarray | None,
    terms: PairTerms,
    contiguity: Contiguity | None,
    rounds: int,
    deadline: Deadline,
    step: str,
    connect: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[SolveInfo, np.ndarray | None]:
    """Solve the model (with the cut loop of contiguity) from ``start``; its status and plan.

    Without ``contiguity``: one HiGHS solve. With it, up to ``rounds`` rounds: solve, find the
    territories in pieces, add separator cuts for them, make the plan connected (``connect``, default
    :func:`~salesops_models.territory.contiguity.make_connected`) to start the next round. The bound of
    every round is valid (the cuts only remove disconnected plans), so the best of them is reported; the
    plan is the MILP's when it is connected, else the best connected repair (fewest band violations, then
    least cost). The termination names the rounds and cuts.
    """
    if contiguity is None:
        ws = start_values(model, inst, start) if start is not None else None
        info = solve_milp(model, solver, ws, deadline=deadline, step=step)
        return info, (extract_assignment(model, inst) if info.has_solution else None)
    best: np.ndarray | None = None
    bound, seconds, nodes, last = -math.inf, 0.0, 0, SolveInfo(status=NO_SOLUTION)
    connected_solution = False
    done = 0
    for i in range(rounds):
        if deadline.expired(f"{step} (contiguity rounds)"):
            break
        add_contiguity_cuts(model, inst, contiguity.cuts)
        usable = start is not None and not contiguity.broken(start)
        ws = start_values(model, inst, start) if usable else None
        last = solve_milp(model, solver, ws, deadline=deadline, step=f"{step}, contiguity round {i + 1}")
        done, seconds, nodes = i + 1, seconds + last.seconds, nodes + max(last.nodes, 0)
        if math.isfinite(last.bound):
            bound = max(bound, last.bound)
        if not last.has_solution:
            break
        assign = extract_assignment(model, inst)
        broken = contiguity.broken(assign)
        if broken:
            contiguity.add_cuts(inst, assign, broken)
            assign = connect(assign) if connect else make_connected(inst, contiguity, assign, terms.cost)
        if not contiguity.broken(assign) and (
            best is None or _key(inst, terms, assign) < _key(inst, terms, best)
        ):
            best = assign
        if not broken:
            connected_solution = True
            break
        start = best if best is not None else start
    note = f"{done} contiguity rounds, {len(contiguity.cuts)} cuts"
    log.info("%s: %s", step, note)
    if best is None:
        return replace(last, status=NO_SOLUTION, termination=f"{last.termination}; {note}"), None
    objective = _elastic_objective(model, inst, terms, best)
    status = last.status if connected_solution and last.status == OPTIMAL else FEASIBLE
    info = SolveInfo(
        status=status,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound),
        seconds=seconds,
        termination=f"{last.termination}; {note}",
        nodes=nodes,
        time_limit_hit=last.time_limit_hit,
    )
    return info, best


def _key(inst: AlignmentInstance, terms: PairTerms, plan: np.ndarray) -> tuple[float, float]:
    return (round(terms.violation(inst, plan), 12), terms.objective(inst, plan))


def _elastic_objective(
    m: pyo.ConcreteModel, inst: AlignmentInstance, terms: PairTerms, plan: np.ndarray
) -> float:
    """The model's objective at ``plan``: the plan's cost, plus the elastic penalty when the model has one."""
    for var, value in start_values(m, inst, plan):
        var.set_value(value)
    return float(pyo.value(m.obj))
