"""Fairness figures of a quota plan, and every method side by side."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from salesops_models.errors import InfeasibleError
from salesops_models.quota.allocation import (
    QuotaResult,
    allocate_even,
    allocate_top_down,
    reconcile_bottom_up,
)
from salesops_models.quota.equal_chance import BookingsDistribution, quota_by_equal_attainment_probability
from salesops_models.quota.optimise import Subtotal, optimise_quotas

log = logging.getLogger(__name__)


def fairness_figures(
    result: QuotaResult, basis: pd.DataFrame, dist: BookingsDistribution | None
) -> dict[str, Any]:
    """Spread of quota per unit of potential and of the probability of making quota, across reps.

    Parameters
    ----------
    result
        A quota plan; ``p_attain`` is added to ``result.quotas`` when ``dist`` is given.
    basis
        Per-rep basis (potential, ramp_factor).
    dist
        Attainable bookings per rep, or None.

    Returns
    -------
    dict
        ``quota_to_potential_cv`` (std/mean of ``Q_r / (potential_r rho_r)`` over reps with potential),
        ``quota_to_potential_max_min`` (max/min of the same), ``p_attain_min``, ``p_attain_max``,
        ``p_attain_spread`` (max - min), ``p_attain_std``, ``p_attain_mean`` and
        ``expected_share_at_quota`` (mean P(attain): the expected share of reps making quota).

    Notes
    -----
    Quota per unit of ramped potential compares reps fairly when potential is the measure of
    opportunity; P(attain) compares them when the distributions are. Perfect fairness by either
    gives a spread of 0.
    """
    q = result.quotas["quota"]
    pot = (basis["potential"] * basis["ramp_factor"]).reindex(q.index)
    ok = pot > 0
    ratio = q[ok] / pot[ok]
    out: dict[str, Any] = {
        "method": result.method,
        "quota_total": float(q.sum()),
        "quota_to_potential_cv": float(ratio.std(ddof=0) / ratio.mean()) if len(ratio) else float("nan"),
        "quota_to_potential_max_min": float(ratio.max() / ratio.min())
        if len(ratio) and ratio.min() > 0
        else float("nan"),
    }
    if dist is not None:
        p = dist.p_attain(q)
        result.quotas["p_attain"] = p
        out.update(
            p_attain_min=float(p.min()),
            p_attain_max=float(p.max()),
            p_attain_spread=float(p.max() - p.min()),
            p_attain_std=float(p.std(ddof=0)),
            p_attain_mean=float(p.mean()),
            expected_share_at_quota=float(p.mean()),
        )
    out["seconds"] = float(result.seconds)
    return out


def run_method(
    method: str,
    basis: pd.DataFrame,
    company_target: float,
    weights: dict[str, float],
    *,
    dist: BookingsDistribution | None = None,
    submissions: pd.Series | None = None,
    over_assignment: float = 0.0,
    rounding_unit: float = 1.0,
    growth_min: float = -0.3,
    growth_max: float = 0.6,
    subtotals: tuple[Subtotal, ...] = (),
    bottom_up_blend: float = 1.0,
    time_limit: float = 20.0,
    mip_rel_gap: float = 1e-4,
) -> QuotaResult:
    """Run one quota method by name with the shared settings.

    Raises
    ------
    ValueError
        Unknown method, or a method that lacks its input (equal_chance without ``dist``,
        bottom_up without ``submissions``).
    """
    common = {"over_assignment": over_assignment, "rounding_unit": rounding_unit}
    if method == "top_down":
        return allocate_top_down(basis, company_target, weights, **common)
    if method == "even":
        return allocate_even(basis, company_target, weights=weights, **common)
    if method == "bottom_up":
        if submissions is None:
            raise ValueError("quota method 'bottom_up' needs submissions (a per-rep Series).")
        return reconcile_bottom_up(
            basis, submissions, company_target, weights=weights, blend=bottom_up_blend, **common
        )
    if method == "optimised":
        return optimise_quotas(
            basis,
            company_target,
            weights,
            growth_min=growth_min,
            growth_max=growth_max,
            subtotals=subtotals,
            time_limit=time_limit,
            mip_rel_gap=mip_rel_gap,
            **common,
        )
    if method == "equal_chance":
        if dist is None:
            raise ValueError("quota method 'equal_chance' needs a bookings distribution per rep.")
        return quota_by_equal_attainment_probability(basis, dist, company_target, weights=weights, **common)
    raise ValueError(
        f"unknown quota method {method!r}; use top_down, even, bottom_up, optimised or equal_chance."
    )


def compare_methods(
    methods: tuple[str, ...],
    basis: pd.DataFrame,
    company_target: float,
    weights: dict[str, float],
    *,
    dist: BookingsDistribution | None = None,
    **kwargs: Any,
) -> tuple[pd.DataFrame, dict[str, QuotaResult]]:
    """Run several methods and tabulate their fairness figures (one row per method).

    A method that cannot run (infeasible bounds, missing input) gets a row with its ``error``.
    """
    rows, results = [], {}
    for method in methods:
        try:
            res = run_method(method, basis, company_target, weights, dist=dist, **kwargs)
        except (InfeasibleError, ValueError) as exc:
            log.warning("quota method %s failed: %s", method, exc)
            rows.append({"method": method, "error": str(exc).splitlines()[0]})
            continue
        results[method] = res
        row = fairness_figures(res, basis, dist)
        row["error"] = ""
        rows.append(row)
    return pd.DataFrame(rows), results


__all__ = ["fairness_figures", "run_method", "compare_methods"]
