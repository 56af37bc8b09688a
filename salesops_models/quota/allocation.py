"""Top-down, even and bottom-up quota allocation, rounding, and the quota result object."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import ScenarioError
from salesops_models.quota.basis import check_basis

log = logging.getLogger(__name__)

COMPONENTS = ("potential", "prior_year", "ttm", "forecast")


@dataclass
class QuotaResult:
    """Quotas of one method.

    Attributes
    ----------
    method
        Method name (top_down, even, bottom_up, optimised, equal_chance).
    quotas
        Index rep_id; ``quota`` [currency/yr], ``fair_share`` [currency/yr], ``share_<component>``
        (the rep's share of each blend component [0-1]), ``ramp_factor``, ``binding_bounds`` (text),
        ``rounding_remainder`` [currency] and method-specific columns.
    target
        The total the quotas add up to: company target x (1 + over-assignment) [currency/yr].
    company_target
        The company target before over-assignment [currency/yr].
    seconds
        Wall-clock time of the method [s].
    extra
        Method-specific figures (solver status, gap, equal-chance p, ...).
    """

    method: str
    quotas: pd.DataFrame
    target: float
    company_target: float
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def quota(self) -> pd.Series:
        return self.quotas["quota"]

    def summary(self) -> dict[str, Any]:
        q = self.quotas["quota"]
        out: dict[str, Any] = {
            "method": self.method,
            "reps": int(len(q)),
            "quota_total": float(q.sum()),
            "target": float(self.target),
            "company_target": float(self.company_target),
            "quota_min": float(q.min()),
            "quota_max": float(q.max()),
            "seconds": float(self.seconds),
        }
        if "p_attain" in self.quotas:
            p = self.quotas["p_attain"]
            out["p_attain_spread"] = float(p.max() - p.min())
        out.update(
            {k: v for k, v in self.extra.items() if isinstance(v, int | float | str | bool) or v is None}
        )
        return out


def check_weights(weights: dict[str, float]) -> dict[str, float]:
    """Validate blend weights: known keys, non-negative, summing to one.

    Raises
    ------
    ScenarioError
        Naming ``quota.weights``, the sum, and the rescaled weights that would work.
    """
    unknown = set(weights) - set(COMPONENTS)
    if unknown:
        raise ScenarioError(
            f"quota.weights: unknown key(s) {sorted(unknown)}; allowed: {', '.join(COMPONENTS)}."
        )
    if any(w < 0 for w in weights.values()):
        raise ScenarioError(f"quota.weights: negative weight in {weights}; weights must be >= 0.")
    total = sum(weights.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        fix = (
            " Smallest fix: scale them by 1/{:.4g} -> {}.".format(
                total, ", ".join(f"{k}: {v / total:.4g}" for k, v in weights.items())
            )
            if total > 0
            else " Give at least one field a positive weight."
        )
        raise ScenarioError(f"quota.weights must sum to 1, they sum to {total:.6g}.{fix}")
    return {k: float(weights.get(k, 0.0)) for k in COMPONENTS}


def fair_shares(basis: pd.DataFrame, weights: dict[str, float], apply_ramp: bool = True) -> pd.DataFrame:
    """Each rep's share of every blend component and the blended, ramp-adjusted share.

    Parameters
    ----------
    basis
        Output of :func:`~salesops_models.quota.basis.rep_basis`.
    weights
        Blend weights per component (potential, prior_year, ttm, forecast), summing to 1.
    apply_ramp
        Scale each share by the rep's ramp factor and renormalise.

    Returns
    -------
    pandas.DataFrame
        ``share_<component>`` [0-1], ``blend_share`` (unramped) and ``fair_weight`` (final share,
        sums to 1).

    Notes
    -----
    ``s_rk = x_rk / sum_r x_rk``; ``b_r = sum_k w_k s_rk``; with ramp ``rho_r``:
    ``f_r = b_r rho_r / sum_r b_r rho_r``. A component whose company total is 0 gets weight 0 and
    its weight is spread over the others in proportion.
    """
    w = check_weights(weights)
    check_basis(basis, w)
    out = pd.DataFrame(index=basis.index)
    active = {}
    for k in COMPONENTS:
        total = float(basis[k].sum())
        out[f"share_{k}"] = basis[k] / total if total > 0 else 0.0
        if total > 0:
            active[k] = w[k]
        elif w[k] > 0:
            log.warning(
                "quota: component %r is 0 for every rep; its weight %.3g is spread over the others", k, w[k]
            )
    wsum = sum(active.values())
    blend = sum((v / wsum) * out[f"share_{k}"] for k, v in active.items())
    out["blend_share"] = blend
    rho = basis["ramp_factor"] if apply_ramp else 1.0
    ramped = blend * rho
    if float(ramped.sum()) <= 0:
        raise ScenarioError(
            "quota: every rep's ramped share is 0 (ramp factors are 0 for all reps); check quota.ramp."
        )
    out["fair_weight"] = ramped / ramped.sum()
    return out


def round_to_unit(values: pd.Series, total: float, unit: float) -> tuple[pd.Series, pd.Series]:
    """Round amounts to multiples of ``unit`` so that they add up to ``total`` exactly.

    Parameters
    ----------
    values
        Unrounded amounts (>= 0) [currency]; rescaled to ``total`` first.
    total
        The exact sum wanted [currency].
    unit
        Rounding unit [currency].

    Returns
    -------
    (rounded, remainder)
        ``rounded`` sums to ``total``; ``remainder`` is the sub-unit rest ``total - unit floor(total/unit)``
        carried by the largest amount (0 elsewhere).

    Notes
    -----
    Largest-remainder (Hamilton) rounding: ``n_r = floor(v_r/u)``, then the ``floor(T/u) - sum n_r``
    largest fractional parts get one more unit. Ties break on the larger amount, then the index.
    """
    v = values.astype(float).clip(lower=0.0)
    s = float(v.sum())
    v = v * (total / s) if s > 0 else pd.Series(total / len(v), index=v.index)
    n_total = math.floor(total / unit + 1e-9)
    units = v / unit
    base = np.floor(units.to_numpy() + 1e-9)
    frac = units.to_numpy() - base
    k = int(n_total - base.sum())
    if k > 0:
        order = np.lexsort((np.arange(len(v)), -v.to_numpy(), -frac))
        base[order[:k]] += 1
    elif k < 0:  # only through floating error on exact multiples
        order = np.lexsort((np.arange(len(v)), v.to_numpy(), frac))
        for i in order:
            if k == 0:
                break
            if base[i] > 0:
                base[i] -= 1
                k += 1
    rounded = pd.Series(base * unit, index=v.index)
    rest = total - n_total * unit
    remainder = pd.Series(0.0, index=v.index)
    if rest > 1e-9 * max(1.0, abs(total)):
        top = rounded.idxmax()
        rounded[top] += rest
        remainder[top] = rest
    return rounded, remainder


def _result(
    method: str,
    basis: pd.DataFrame,
    shares: pd.DataFrame | None,
    unrounded: pd.Series,
    target: float,
    company_target: float,
    unit: float,
    seconds: float,
    extra: dict[str, Any] | None = None,
) -> QuotaResult:
    q, rem = round_to_unit(unrounded, target, unit)
    df = pd.DataFrame(index=basis.index)
    df["quota"] = q
    df["unrounded_quota"] = unrounded
    if shares is not None:
        df["fair_share"] = shares["fair_weight"] * target
        for k in COMPONENTS:
            df[f"share_{k}"] = shares[f"share_{k}"]
    else:
        df["fair_share"] = np.nan
    for col in ("ramp_factor", "prior_year", "potential"):
        df[col] = basis[col] if col in basis else np.nan
    df["binding_bounds"] = ""
    df["rounding_remainder"] = rem
    return QuotaResult(method, df, float(target), float(company_target), seconds, dict(extra or {}))


def allocate_top_down(
    basis: pd.DataFrame,
    company_target: float,
    weights: dict[str, float],
    *,
    over_assignment: float = 0.0,
    rounding_unit: float = 1.0,
    apply_ramp: bool = True,
) -> QuotaResult:
    """Split the target in proportion to a weighted blend of potential and history.

    Parameters
    ----------
    basis
        Per-rep basis (:func:`~salesops_models.quota.basis.rep_basis`).
    company_target
        Company bookings target [currency/yr].
    weights
        Blend weights (potential, prior_year, ttm, forecast), summing to 1.
    over_assignment
        Quotas add up to ``company_target (1 + over_assignment)`` [share].
    rounding_unit
        Quotas are multiples of this [currency]; one rep carries the sub-unit rest.
    apply_ramp
        Scale shares by the reps' ramp factors.

    Notes
    -----
    ``Q_r = T (1 + o) f_r`` with ``f_r`` from :func:`fair_shares`, then largest-remainder rounding.
    """
    import time

    t0 = time.perf_counter()
    target = company_target * (1.0 + over_assignment)
    shares = fair_shares(basis, weights, apply_ramp)
    unrounded = shares["fair_weight"] * target
    return _result(
        "top_down", basis, shares, unrounded, target, company_target, rounding_unit, time.perf_counter() - t0
    )


def allocate_even(
    basis: pd.DataFrame,
    company_target: float,
    *,
    over_assignment: float = 0.0,
    rounding_unit: float = 1.0,
    apply_ramp: bool = True,
    weights: dict[str, float] | None = None,
) -> QuotaResult:
    """Split the target evenly per full-time, fully ramped rep.

    Notes
    -----
    ``Q_r = T (1 + o) c_r rho_r / sum_r c_r rho_r`` with capacity ``c_r`` [FTE] and ramp factor
    ``rho_r``; with every rep full-time and ramped this is ``T (1 + o) / n``. ``weights``, when
    given, only fills the explanation columns (fair share).
    """
    import time

    t0 = time.perf_counter()
    target = company_target * (1.0 + over_assignment)
    fte = basis["capacity"] * (basis["ramp_factor"] if apply_ramp else 1.0)
    if float(fte.sum()) <= 0:
        raise ScenarioError(
            "quota (even): every rep has 0 capacity x ramp; check reps.capacity and quota.ramp."
        )
    unrounded = target * fte / fte.sum()
    shares = fair_shares(basis, weights, apply_ramp) if weights is not None else None
    return _result(
        "even", basis, shares, unrounded, target, company_target, rounding_unit, time.perf_counter() - t0
    )


def reconcile_bottom_up(
    basis: pd.DataFrame,
    submissions: pd.Series,
    company_target: float,
    *,
    weights: dict[str, float] | None = None,
    blend: float = 1.0,
    over_assignment: float = 0.0,
    rounding_unit: float = 1.0,
    apply_ramp: bool = True,
) -> QuotaResult:
    """Reconcile reps' (or managers') bottom-up submissions to the top-down target.

    Parameters
    ----------
    submissions
        Submitted number per rep [currency/yr]; missing reps count 0.
    blend
        Weight of the scaled submissions against the top-down fair share [0-1].

    Notes
    -----
    ``Q_r = T' (a s_r / sum s + (1 - a) f_r)`` with ``T' = T (1 + o)``. The gap between the
    bottom-up total and the target, ``sum s - T'``, is reported as ``extra['bottom_up_gap']``.
    """
    import time

    t0 = time.perf_counter()
    target = company_target * (1.0 + over_assignment)
    s = submissions.reindex(basis.index).fillna(0.0).astype(float)
    if float(s.sum()) <= 0:
        raise ScenarioError(
            "quota (bottom_up): the submissions add up to 0; submit a positive number for some rep."
        )
    shares = fair_shares(basis, weights, apply_ramp) if weights is not None else None
    if blend < 1.0 and shares is None:
        raise ScenarioError("quota.bottom_up_blend < 1 needs quota.weights for the top-down part.")
    top_down = shares["fair_weight"] if shares is not None else 0.0
    unrounded = target * (blend * s / s.sum() + (1.0 - blend) * top_down)
    res = _result(
        "bottom_up",
        basis,
        shares,
        unrounded,
        target,
        company_target,
        rounding_unit,
        time.perf_counter() - t0,
        {"bottom_up_total": float(s.sum()), "bottom_up_gap": float(s.sum() - target)},
    )
    res.quotas["submission"] = s
    return res
