"""Optimised quotas: as close as possible to the fair share, within growth, ramp and subtotal bounds.

Formulation (a small MILP, Pyomo + HiGHS)
-----------------------------------------

=========================  ==============================================================================
Sets
``R``                      reps
``G``                      subtotal groups (regions and/or managers), ``R_g`` their reps
Params
``f_r``                    fair share (blend x ramp, :func:`~salesops_models.quota.allocation.fair_shares`) [currency]
``T``                      total to allocate, company target x (1 + over-assignment) [currency]
``u``                      rounding unit; ``N = floor(T/u)``, ``e = T - u N`` the sub-unit rest [currency]
``L_r, U_r``               bounds: ``G_r (1 + g_min) <= Q_r <= G_r (1 + g_max)`` for reps with prior-year
                           history, ``G_r`` their prior-year bookings at this year's ramp (``growth_reference``);
                           ``Q_r >= f_r (1 + g_min)`` for reps without; ``Q_r <= f_r`` for ramping reps
                           (ramp factor < 1), the cap winning over a floor above it (floors are then set to
                           the cap's largest multiple of ``u``)
``S_g, tol_g``             subtotal target and tolerance of group g
Variables
``n_r`` (integer >= 0)     quota units of rep r
``z_r`` (binary)           rep r carries the rest ``e`` (only when ``e > 0``; offered to the 3 largest
                           fair shares with room in their bounds)
``d+_r, d-_r >= 0``        deviation above / below the fair share
Objective
min ``sum_r (d+_r + d-_r) / u``   (L1 deviation from the fair share, in rounding units)
Constraints
quota                      ``Q_r = u n_r + e z_r``
deviation                  ``Q_r - f_r = d+_r - d-_r``
total                      ``sum_r n_r = N``, ``sum_r z_r = 1``  (so ``sum_r Q_r = T`` exactly)
bounds                     ``L_r <= Q_r <= U_r``
subtotals                  ``|sum_{r in R_g} Q_r - S_g| <= max(tol_g S_g, u)``
=========================  ==============================================================================
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from salesops_models.errors import InfeasibleError, SalesopsError
from salesops_models.quota.allocation import QuotaResult, _result, fair_shares

log = logging.getLogger(__name__)

#: reps offered the sub-unit rest of the target (largest fair shares with room in their bounds)
REST_CANDIDATES = 3


@dataclass(frozen=True)
class Subtotal:
    """Quotas of a group of reps (a region, a manager's team) must stay near a subtotal.

    Attributes
    ----------
    column
        Basis column that names the group (``region`` or ``manager``).
    targets
        Subtotal per group value [currency/yr]; groups not listed are free.
    tolerance
        Allowed deviation as a share of the subtotal [share]; at least one rounding unit is always allowed.
    """

    column: str
    targets: dict[str, float]
    tolerance: float = 0.0


def quota_bounds(
    basis: pd.DataFrame, fair: pd.Series, growth_min: float, growth_max: float
) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Lower and upper quota bounds per rep and the reason of each.

    Returns
    -------
    (lower, upper, lower_reason, upper_reason)
        Bounds [currency/yr]; reasons are 'growth_min' (prior year at this year's ramp x
        (1 + growth_min)), 'share_min' (fair share x (1 + growth_min), reps without a prior year),
        'growth_max', 'ramp_cap' or ''.
    """
    py, hist = growth_reference(basis)
    # a rep without a prior year to grow from is bounded below by his fair share: otherwise, when
    # others' growth floors bind, the L1 objective may hand him the whole shortfall (a zero quota)
    lower = pd.Series(np.where(hist, py, fair) * (1 + growth_min), index=basis.index).clip(lower=0.0)
    upper = pd.Series(np.where(hist, py * (1 + growth_max), np.inf), index=basis.index)
    lower_reason = pd.Series(
        np.where(lower > 0, np.where(hist, "growth_min", "share_min"), ""), index=basis.index
    )
    upper_reason = pd.Series(np.where(hist, "growth_max", ""), index=basis.index)
    ramping = basis["ramp_factor"] < 1.0 - 1e-9
    cap = fair.where(ramping, np.inf)
    use_cap = cap < upper
    upper = upper.where(~use_cap, cap)
    upper_reason = upper_reason.where(~use_cap, "ramp_cap")
    lower = np.minimum(lower, upper)
    return lower, upper, lower_reason, upper_reason


def growth_reference(basis: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """What growth bounds apply to, per rep [currency/yr], and which reps have them.

    ``growth_reference`` / ``has_growth_bounds`` of :func:`~salesops_models.quota.basis.rep_basis`
    when present, else ``prior_year`` / ``full_history``.
    """
    if "growth_reference" in basis and "has_growth_bounds" in basis:
        return basis["growth_reference"].astype(float), basis["has_growth_bounds"].astype(bool)
    return basis["prior_year"].astype(float), basis["full_history"].astype(bool)


def _diagnose_total(basis: pd.DataFrame, fair: pd.Series, target: float, gmin: float, gmax: float) -> None:
    """Raise :class:`InfeasibleError` with the smallest growth-bound relaxation when the total is out of reach."""
    lower, upper, _, _ = quota_bounds(basis, fair, gmin, gmax)
    _, hist = growth_reference(basis)
    if float(lower.sum()) > target * (1 + 1e-12):

        def floors(g: float) -> float:
            return float(quota_bounds(basis, fair, g, gmax)[0].sum()) - target

        lo = min(gmin, 0.0) - 1.0
        g_needed = brentq(floors, lo, gmin, xtol=1e-6) if floors(lo) <= 0 else -1.0
        raise InfeasibleError(
            f"quota: the target {target:,.0f} is below the sum of the quota floors {lower.sum():,.0f} "
            f"(quota.growth_min = {gmin:+.3f} applied to {int(hist.sum())} reps' prior-year bookings at this year's "
            f"ramp and to the fair share of {int((~hist).sum())} reps without a prior year). Smallest relaxation: "
            f"set quota.growth_min <= {g_needed:+.4f}, or raise the target to {lower.sum():,.0f}.",
            diagnosis={"field": "quota.growth_min", "needed": g_needed, "target_needed": float(lower.sum())},
        )
    if float(upper.sum()) < target * (1 - 1e-12):

        def reach(g: float) -> float:
            return float(quota_bounds(basis, fair, gmin, g)[1].sum()) - target

        hi = max(gmax, 0.0) + 1.0
        while reach(hi) < 0 and hi < 1e6:
            hi *= 2
        g_needed = brentq(reach, gmax, hi, xtol=1e-6) if reach(hi) >= 0 else math.inf
        raise InfeasibleError(
            f"quota: the target {target:,.0f} is above the most the bounds allow, {upper.sum():,.0f} "
            f"(quota.growth_max = {gmax:+.3f} on prior-year bookings, ramp caps on new reps). "
            f"Smallest relaxation: set quota.growth_max >= {g_needed:+.4f}, or lower the target to "
            f"{upper.sum():,.0f}.",
            diagnosis={"field": "quota.growth_max", "needed": g_needed, "target_needed": float(upper.sum())},
        )


def _on_grid(
    lower: pd.Series, upper: pd.Series, lower_reason: pd.Series, unit: float
) -> tuple[pd.Series, pd.Series]:
    """Lower bounds that leave each rep a quota on the rounding grid.

    A ramping rep's growth floor can exceed his ramp cap; the cap then wins (``quota_bounds``), and
    ``lower = upper`` is a single value that is, in general, not a multiple of the unit, so no
    integer quota meets it. Where ``[lower, upper]`` holds no multiple of ``unit``, the floor drops to
    the largest multiple below the cap (reason ``<reason>>ramp_cap``).
    """
    grid_up = np.floor(upper / unit + 1e-9) * unit
    grid_lo = np.ceil(lower / unit - 1e-9) * unit
    empty = np.isfinite(upper) & (grid_lo > upper + 1e-9 * unit)
    if not empty.any():
        return lower, lower_reason
    lower = lower.where(~empty, grid_up.clip(lower=0.0))
    reason = lower_reason.where(~empty, lower_reason.astype(str) + ">ramp_cap")
    log.info(
        "quota: %d rep(s) with a growth floor above the ramp cap: floor set to the cap's grid",
        int(empty.sum()),
    )
    return lower, reason


def _relaxation_error(
    elastic: object,
    groups: list[tuple[Subtotal, str, float]],
    unit: float,
    lower_reason: pd.Series,
    upper_reason: pd.Series,
    termination: str,
) -> InfeasibleError:
    """What the elastic solve had to relax, as an error that names each constraint, its field and amount."""
    import pyomo.environ as pyo

    m = elastic
    rows: list[tuple[float, str, str]] = []
    for r in m.s_lo:  # type: ignore[attr-defined]
        v = unit * float(pyo.value(m.s_lo[r]))  # type: ignore[attr-defined]
        if v > 1e-6 * unit:
            field = "quota.growth_min" if "growth_min" in str(lower_reason[r]) else "the rep's floor"
            rows.append((v, f"rep {r}: quota {v:,.0f} below his floor", field))
    for r in m.s_hi:  # type: ignore[attr-defined]
        v = unit * float(pyo.value(m.s_hi[r]))  # type: ignore[attr-defined]
        if v > 1e-6 * unit:
            why = str(upper_reason[r])
            field = "quota.growth_max" if why == "growth_max" else "quota.ramp (his ramp cap)"
            rows.append((v, f"rep {r}: quota {v:,.0f} above his {why.replace('_', ' ') or 'cap'}", field))
    for k, (st, g, s_g) in enumerate(groups):
        for side, word in ((0, "below"), (1, "above")):
            v = unit * float(pyo.value(m.s_sub[k, side]))  # type: ignore[attr-defined]
            if v > 1e-6 * unit:
                need = (max(st.tolerance * s_g, unit) + v) / s_g if s_g else float("inf")
                rows.append(
                    (
                        v,
                        f"{st.column} {g!r}: {v:,.0f} {word} its subtotal band (tolerance >= {need:.4f})",
                        f"quota.{st.column}_tolerance",
                    )
                )
    rows.sort(key=lambda t: -t[0])
    total = sum(v for v, _, _ in rows)
    detail = "; ".join(f"{text} ({field})" for _, text, field in rows)
    return InfeasibleError(
        f"quota (optimised): no plan meets every bound and subtotal together ({termination}), although each "
        f"subtotal and the total are within reach on their own. Smallest relaxation, {total:,.0f} in all: {detail}. "
        "Widen the named settings by at least these amounts, or drop a subtotal.",
        diagnosis={
            "termination": termination,
            "relaxation": total,
            "violations": [{"amount": v, "constraint": t, "field": f} for v, t, f in rows],
        },
    )


def optimise_quotas(
    basis: pd.DataFrame,
    company_target: float,
    weights: dict[str, float],
    *,
    over_assignment: float = 0.0,
    rounding_unit: float = 1000.0,
    growth_min: float = -0.3,
    growth_max: float = 0.6,
    subtotals: tuple[Subtotal, ...] = (),
    apply_ramp: bool = True,
    time_limit: float = 20.0,
    mip_rel_gap: float = 1e-4,
) -> QuotaResult:
    """Quotas nearest (L1) to the blended fair share within bounds, as integer multiples of a unit.

    Parameters
    ----------
    basis
        Per-rep basis (:func:`~salesops_models.quota.basis.rep_basis`).
    company_target
        Company target [currency/yr].
    weights
        Fair-share blend weights (sum to 1).
    over_assignment
        Quotas add up to ``company_target (1 + over_assignment)`` [share].
    rounding_unit
        Quota unit ``u`` [currency].
    growth_min, growth_max
        Quota vs prior-year bookings for reps with a full prior year, as growth [share].
    subtotals
        Region / manager subtotal constraints.
    time_limit
        HiGHS limit [s]; the best plan found is used, with its gap reported.
    mip_rel_gap
        HiGHS relative gap [share].

    Returns
    -------
    QuotaResult
        ``binding_bounds`` names the bounds within one unit of the quota; ``extra`` holds
        ``status``, ``termination``, ``mip_gap``, ``objective`` [currency], ``variables``.

    Raises
    ------
    InfeasibleError
        When the target lies outside what the growth bounds allow (with the smallest relaxation
        of ``quota.growth_min`` / ``quota.growth_max``), or a subtotal cannot be met.

    Notes
    -----
    See the module docstring for the full formulation.
    """
    import pyomo.environ as pyo
    from pyomo.contrib.solver.common.factory import SolverFactory
    from pyomo.contrib.solver.common.results import SolutionStatus

    t0 = time.perf_counter()
    target = float(company_target) * (1.0 + over_assignment)
    shares = fair_shares(basis, weights, apply_ramp)
    fair = shares["fair_weight"] * target
    _diagnose_total(basis, fair, target, growth_min, growth_max)
    lower, upper, lower_reason, upper_reason = quota_bounds(basis, fair, growth_min, growth_max)
    u = float(rounding_unit)
    n_units = math.floor(target / u + 1e-9)
    rest = target - n_units * u
    has_rest = rest > 1e-9 * max(1.0, target)
    lower, lower_reason = _on_grid(lower, upper, lower_reason, u)

    for st in subtotals:
        if st.column not in basis:
            raise SalesopsError(
                f"quota subtotal: basis has no column {st.column!r}; use 'region' or 'manager'."
            )
        for g, s_g in st.targets.items():
            members = basis.index[(basis[st.column] == g).to_numpy()]
            slack = max(st.tolerance * s_g, u)
            if len(members) == 0:
                raise InfeasibleError(
                    f"quota subtotal {st.column}={g!r}: no rep belongs to it; drop the subtotal."
                )
            lo_g, hi_g = float(lower[members].sum()), float(upper[members].sum())
            if lo_g > s_g + slack or hi_g < s_g - slack:
                need = (lo_g - s_g) / s_g if lo_g > s_g + slack else (s_g - hi_g) / s_g
                raise InfeasibleError(
                    f"quota subtotal {st.column}={g!r}: target {s_g:,.0f} +- {slack:,.0f} is outside what its reps' "
                    f"bounds allow [{lo_g:,.0f}, {hi_g:,.0f}]. Smallest relaxation: tolerance >= {need:.4f} "
                    f"(quota.{st.column}_tolerance), or widen quota.growth_min/growth_max.",
                    diagnosis={"field": f"quota.{st.column}_tolerance", "needed": need},
                )

    reps = list(basis.index)
    scale = 1.0 / u
    # Which rep carries the sub-unit rest hardly matters to the objective (< u), but a binary per rep
    # makes thousands of symmetric choices for branch and bound: offer it to the few reps with the
    # largest fair share whose bounds leave room for it (all reps when none qualifies).
    room = (upper - lower) >= u + rest
    candidates = list(fair[room].sort_values(ascending=False).index[:REST_CANDIDATES]) or reps
    lo_reps = [r for r in reps if lower[r] > 0]
    hi_reps = [r for r in reps if np.isfinite(upper[r])]
    groups = [(st, g, s_g) for st in subtotals for g, s_g in st.targets.items()]

    def build(elastic: bool) -> pyo.ConcreteModel:
        """The MILP; ``elastic`` adds a non-negative slack to every bound and subtotal and minimises them."""
        m = pyo.ConcreteModel(name="quota_elastic" if elastic else "quota")
        m.R = pyo.Set(initialize=reps, ordered=True)
        ub = {
            r: (math.floor(upper[r] / u) if np.isfinite(upper[r]) and not elastic else n_units) for r in reps
        }
        m.n = pyo.Var(m.R, domain=pyo.NonNegativeIntegers, bounds=lambda _m, r: (0, max(ub[r], 0)))
        if has_rest:
            m.C = pyo.Set(initialize=candidates, ordered=True)
            m.z = pyo.Var(m.C, domain=pyo.Binary)

        def q(r: str) -> pyo.Expression:
            return u * m.n[r] + (rest * m.z[r] if has_rest and r in m.z else 0.0)

        m.total = pyo.Constraint(expr=sum(m.n[r] for r in reps) == n_units)
        if has_rest:
            m.one_rest = pyo.Constraint(expr=sum(m.z[r] for r in candidates) == 1)
        if elastic:
            m.s_lo = pyo.Var(lo_reps, domain=pyo.NonNegativeReals)
            m.s_hi = pyo.Var(hi_reps, domain=pyo.NonNegativeReals)
            m.s_sub = pyo.Var(range(len(groups)), [0, 1], domain=pyo.NonNegativeReals)
        m.lo = pyo.Constraint(
            lo_reps,
            rule=lambda _m, r: scale * q(r) + (m.s_lo[r] if elastic else 0.0) >= scale * float(lower[r]),
        )
        m.hi = pyo.Constraint(
            hi_reps,
            rule=lambda _m, r: scale * q(r) - (m.s_hi[r] if elastic else 0.0) <= scale * float(upper[r]),
        )
        m.sub = pyo.ConstraintList()
        for k, (st, g, s_g) in enumerate(groups):
            members = [r for r in reps if basis.at[r, st.column] == g]
            slack = max(st.tolerance * s_g, u)
            expr = scale * sum(q(r) for r in members)
            m.sub.add(expr - (m.s_sub[k, 1] if elastic else 0.0) <= scale * (s_g + slack))
            m.sub.add(expr + (m.s_sub[k, 0] if elastic else 0.0) >= scale * (s_g - slack))
        if elastic:
            m.obj = pyo.Objective(
                expr=sum(m.s_lo.values()) + sum(m.s_hi.values()) + sum(m.s_sub.values()), sense=pyo.minimize
            )
            return m
        m.dp = pyo.Var(m.R, domain=pyo.NonNegativeReals)
        m.dm = pyo.Var(m.R, domain=pyo.NonNegativeReals)
        m.dev = pyo.Constraint(m.R, rule=lambda _m, r: scale * (q(r) - fair[r]) == m.dp[r] - m.dm[r])
        m.obj = pyo.Objective(expr=sum(m.dp[r] + m.dm[r] for r in reps), sense=pyo.minimize)
        return m

    def solve(model: pyo.ConcreteModel) -> object:
        return SolverFactory("highs").solve(
            model,
            time_limit=time_limit,
            rel_gap=mip_rel_gap,
            threads=1,
            tee=False,
            load_solutions=False,
            raise_exception_on_nonoptimal_result=False,
            solver_options={"output_flag": False},
        )

    m = build(elastic=False)
    res = solve(m)
    status = res.solution_status
    if status not in (SolutionStatus.optimal, SolutionStatus.feasible):
        elastic = build(elastic=True)
        eres = solve(elastic)
        if eres.solution_status not in (SolutionStatus.optimal, SolutionStatus.feasible):
            raise InfeasibleError(
                f"quota (optimised): HiGHS found no plan ({res.termination_condition.name}) and no relaxation "
                f"within quota.time_limit = {time_limit:g} s; raise quota.time_limit.",
                diagnosis={"termination": res.termination_condition.name},
            )
        eres.solution_loader.load_vars()
        raise _relaxation_error(
            elastic, groups, u, lower_reason, upper_reason, res.termination_condition.name
        )
    res.solution_loader.load_vars()
    n_val = np.array([round(pyo.value(m.n[r])) for r in reps], dtype=float)
    z_val = np.array([round(pyo.value(m.z[r])) if has_rest and r in m.z else 0 for r in reps], dtype=float)
    quota = pd.Series(u * n_val + rest * z_val, index=basis.index)
    inc, bound = res.incumbent_objective, res.objective_bound
    gap = abs(inc - bound) / max(abs(inc), 1e-9) if inc is not None and bound is not None else float("nan")

    out = _result(
        "optimised",
        basis,
        shares,
        fair,
        target,
        company_target,
        rounding_unit,
        0.0,
        {
            "status": "optimal" if status == SolutionStatus.optimal else "feasible",
            "termination": res.termination_condition.name,
            "mip_gap": float(gap) if inc else 0.0,
            "objective": float(inc) * u if inc is not None else float("nan"),
            "variables": int(m.nvariables()),
        },
    )
    df = out.quotas
    df["quota"] = quota
    df["rounding_remainder"] = rest * z_val
    df["lower_bound"] = lower
    df["upper_bound"] = upper
    tol = u * (1 - 1e-9)
    bind_lo = (lower > 0) & (quota - lower < tol)
    bind_hi = np.isfinite(upper) & (upper - quota < tol)
    labels = []
    for r in reps:
        parts = []
        if bind_lo[r]:
            parts.append(lower_reason[r] or "floor")
        if bind_hi[r]:
            parts.append(upper_reason[r] or "cap")
        labels.append(",".join(parts))
    df["binding_bounds"] = labels
    out.seconds = time.perf_counter() - t0
    log.info(
        "quota optimised: %s, deviation %.0f, %.2f s",
        out.extra["status"],
        out.extra["objective"],
        out.seconds,
    )
    return out
