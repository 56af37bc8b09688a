"""Lagrangian bound of the alignment for whole companies: work linear in the candidate pairs.

At 100,000 accounts x 300 reps (3M candidate pairs) HiGHS's dual simplex had not solved the LP
relaxation after minutes, whole or by column generation. The alignment has few coupling rows: the
:math:`2KR` band rows and the budget and move-cap rows. Moving them into the objective with
multipliers :math:`\\lambda^+_{kr}, \\lambda^-_{kr}, \\mu, \\nu \\ge 0` leaves one choice per account:

.. math::

    L(\\lambda, \\mu, \\nu) = \\sum_a \\min_{r \\in C(a)} \\Big[c_{ar}
        + \\sum_k (\\lambda^+_{kr} - \\lambda^-_{kr}) m_{ka} + \\mu v_{ar} + \\nu s_{ar}\\Big]
        - \\sum_{k,r} (\\lambda^+_{kr} U_{kr} - \\lambda^-_{kr} L_{kr}) - \\mu B - \\nu N

(:math:`v_{ar}` the value the pair moves, :math:`s_{ar}` 1 when it moves an owned account). Every
:math:`L` is a lower bound of every plan (weak duality), so the gap to the best one is *proven*; its
maximum equals the LP bound (the per-account choice is integral). It is maximised by subgradient steps
with the Polyak step length toward a target (Held & Karp; Fisher 1981, "The Lagrangian relaxation
method for solving integer programming problems", Management Science 27(1)): the step factor halves
after :data:`STALL` steps without a better bound, and the target is the plan's objective.

Each step costs one pass over the pairs; the number of steps is a work limit (``iterations``), so the
bound is the same on any machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from salesops_models.territory.instance import AlignmentInstance, Objective, territory_loads
from salesops_models.territory.neighbourhood import PairTerms
from salesops_models.territory.solver import Deadline

log = logging.getLogger(__name__)

#: Steps without a better bound after which the step factor halves.
STALL = 15
#: Last steps whose relaxed choices are kept (:attr:`LagrangianBound.recent`).
RECENT_STEPS = 100


@dataclass
class LagrangianBound:
    """What :func:`lagrangian_bound` found.

    Attributes
    ----------
    bound
        Best Lagrangian value: a lower bound of every plan's objective.
    assign
        Rep index per account of the relaxed choice at the best multipliers (bands may be broken).
    reduced
        Per pair, its Lagrangian cost minus its account's cheapest (0 on the chosen pair) [objective unit].
    iterations
        Steps taken.
    multipliers
        ``(lambda_up, lambda_lo, mu, nu)`` at the best bound (of the rows scaled by their sizes), to
        continue from.
    recent
        Per pair, whether the relaxed choice took it in one of the last :data:`RECENT_STEPS` steps: the
        pairs the multipliers hesitate between, where the LP's fractional accounts are.
    """

    bound: float
    assign: np.ndarray
    reduced: np.ndarray
    iterations: int
    multipliers: tuple[np.ndarray, np.ndarray, float, float]
    recent: np.ndarray


def _choice(
    inst: AlignmentInstance, adjusted: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per account its cheapest pair under ``adjusted`` (first on ties) and that cost."""
    low = np.minimum.reduceat(adjusted, starts)
    at_low = np.flatnonzero(adjusted <= low[inst.pair_a])
    first = at_low[np.r_[True, np.diff(inst.pair_a[at_low]) > 0]]
    return first, low


def lagrangian_bound(
    inst: AlignmentInstance,
    terms: PairTerms,
    objective: Objective,
    target: float | None = None,
    *,
    iterations: int,
    start: LagrangianBound | None = None,
    deadline: Deadline | None = None,
) -> LagrangianBound:
    """Maximise the Lagrangian dual of the band, budget and move-cap rows by subgradient steps.

    Parameters
    ----------
    target
        Objective of a plan (an upper bound of the optimum): the Polyak step aims at it. ``None``: 2%
        above the best bound so far (the usual estimate when no plan is known yet).
    iterations
        Subgradient steps (the work limit).
    start
        A result to continue from (its multipliers and bound).
    deadline
        Safety net only; recorded when it stops the steps.
    """
    K, R = inst.target.shape
    pa, pr = inst.pair_a, inst.pair_r
    starts = np.r_[0, np.flatnonzero(np.diff(pa)) + 1]
    # every row divided by its size (a band by its target, the budget by the owned value, the move cap by
    # the accounts), so that one step moves hours, currency and counts alike
    scale = np.maximum(inst.target, 1e-12)
    metric = [inst.metric_values[k][pa] / scale[k][pr] for k in range(K)]
    upper, lower = inst.upper / scale, inst.lower / scale
    value = terms.value / max(inst.owned_value, 1e-12)
    moves = terms.moves / max(inst.n_accounts, 1)
    budget = None if terms.budget is None else terms.budget / max(inst.owned_value, 1e-12)
    max_moves = None if objective.max_moves is None else objective.max_moves / max(inst.n_accounts, 1)
    if start is None:
        lam_up, lam_lo, mu, nu = np.zeros((K, R)), np.zeros((K, R)), 0.0, 0.0
    else:
        lam_up, lam_lo, mu, nu = start.multipliers
        lam_up, lam_lo = lam_up.copy(), lam_lo.copy()
    best, best_state = -np.inf, (lam_up.copy(), lam_lo.copy(), mu, nu)
    factor, stall, steps = 2.0, 0, 0
    recent = np.zeros(len(pa), dtype=bool)
    for it in range(iterations):
        steps = it + 1
        if deadline is not None and deadline.expired("Lagrangian bound"):
            break
        net = lam_up - lam_lo
        adjusted = terms.cost + mu * value + nu * moves
        for k in range(K):
            adjusted += net[k][pr] * metric[k]
        chosen, low = _choice(inst, adjusted, starts)
        if it >= iterations - RECENT_STEPS:
            recent[chosen] = True
        dual = float(low.sum() - (lam_up * upper).sum() + (lam_lo * lower).sum())
        if budget is not None:
            dual -= mu * budget
        if max_moves is not None:
            dual -= nu * max_moves
        if not np.isfinite(best) or dual > best + 1e-12 * max(1.0, abs(best)):
            best, stall = dual, 0
            best_state = (lam_up.copy(), lam_lo.copy(), mu, nu)
        else:
            stall += 1
            if stall >= STALL:
                factor, stall = factor / 2, 0
        assign = np.full(inst.n_accounts, -1)
        assign[pa[chosen]] = pr[chosen]
        load = territory_loads(inst, assign) / scale
        g_up, g_lo = load - upper, lower - load
        g_mu = float(value[chosen].sum() - budget) if budget is not None else 0.0
        g_nu = float(moves[chosen].sum() - max_moves) if max_moves is not None else 0.0
        # a multiplier at 0 whose row is slack cannot move: leave it out of the norm
        g_up = np.where((lam_up > 0) | (g_up > 0), g_up, 0.0)
        g_lo = np.where((lam_lo > 0) | (g_lo > 0), g_lo, 0.0)
        g_mu = g_mu if (mu > 0 or g_mu > 0) else 0.0
        g_nu = g_nu if (nu > 0 or g_nu > 0) else 0.0
        norm = float((g_up**2).sum() + (g_lo**2).sum()) + g_mu**2 + g_nu**2
        if norm <= 1e-18:
            break  # the relaxed choice meets every row: it is optimal, and the bound is exact
        aim = target if target is not None else best + 0.02 * max(abs(best), 1e-9)
        step = factor * max(aim - dual, 1e-9 * max(1.0, abs(aim))) / norm
        lam_up = np.maximum(lam_up + step * g_up, 0.0)
        lam_lo = np.maximum(lam_lo + step * g_lo, 0.0)
        mu = max(mu + step * g_mu, 0.0)
        nu = max(nu + step * g_nu, 0.0)
        if it % 50 == 0:
            log.info("Lagrangian step %d: bound %.6g (best %.6g), factor %.3g", it, dual, best, factor)
    lam_up, lam_lo, mu, nu = best_state
    net = lam_up - lam_lo
    adjusted = terms.cost + mu * value + nu * moves
    for k in range(K):
        adjusted += net[k][pr] * metric[k]
    chosen, low = _choice(inst, adjusted, starts)
    assign = np.full(inst.n_accounts, -1)
    assign[pa[chosen]] = pr[chosen]
    if not np.isfinite(best):  # stopped before the first step: the bound at the first multipliers
        best = float(low.sum() - (lam_up * upper).sum() + (lam_lo * lower).sum())
        best -= mu * budget if budget is not None else 0.0
        best -= nu * max_moves if max_moves is not None else 0.0
    recent[chosen] = True
    return LagrangianBound(best, assign, adjusted - low[pa], steps, best_state, recent)
