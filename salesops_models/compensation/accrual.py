"""Commission cost by month for a finance plan: the simulated annual cost accrued over the plan year.

Finance books compensation expense as it is earned, not when the cash goes out. Per trial :math:`t`
the annual cost of the primary plan (``comp_cost_samples``) is accrued to month :math:`m` as

.. math:: C_{t,m} = \\frac{\\text{base}_t}{12} + \\text{variable}_t \\, s_{t,m}

with :math:`s_{t,m}` the share of the trial's bookings that falls in month :math:`m` (variable pay
follows bookings) and :math:`\\sum_m s_{t,m} = 1`, so the months of a trial add up to its annual cost.
The P10/P50/P90 of each month are taken over trials; percentiles do not add up, so the sum of the
monthly P50s is not the annual P50 (the annual figures are given beside them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError


def month_shares_from_quarters(quarter_bookings: np.ndarray, month_weights: Sequence[float]) -> np.ndarray:
    """Each trial's bookings share per month, from its quarterly bookings and a within-quarter profile.

    Parameters
    ----------
    quarter_bookings
        Company bookings per trial and quarter, shape (trials, 4) [currency].
    month_weights
        Twelve non-negative weights; within each quarter they give each month's part of the
        quarter (e.g. the expected monthly bookings of the pipeline simulation).

    Returns
    -------
    numpy.ndarray
        Shape (trials, 12), each row summing to 1. A trial without bookings gets 1/12 per month.
    """
    qb = np.asarray(quarter_bookings, float)
    w = np.asarray(month_weights, float).reshape(4, 3)
    if qb.ndim != 2 or qb.shape[1] != 4 or np.any(w < 0):
        raise ValueError("quarter_bookings must be (trials, 4) and month_weights 12 non-negative numbers")
    q_sum = w.sum(axis=1, keepdims=True)
    within = np.where(q_sum > 0, w / np.where(q_sum > 0, q_sum, 1.0), 1.0 / 3.0)  # (4, 3)
    total = qb.sum(axis=1, keepdims=True)
    q_share = np.where(total > 0, qb / np.where(total > 0, total, 1.0), 0.25)  # (trials, 4)
    return (q_share[:, :, None] * within[None, :, :]).reshape(len(qb), 12)


def accrued_cost_by_month(
    cost_samples: pd.DataFrame, month_shares: np.ndarray, months: Sequence[str]
) -> pd.DataFrame:
    """Commission cost per month with its P10/P50/P90 over trials [currency/month].

    Parameters
    ----------
    cost_samples
        One row per trial, sorted by ``trial``: ``base_cost`` and ``variable_cost`` [currency/yr]
        (the compensation stage's ``comp_cost_samples``).
    month_shares
        Share of each trial's variable pay accrued per month: shape (12,) for one profile, or
        (trials, 12) per trial; rows sum to 1.
    months
        Twelve month labels (``YYYY-MM``).

    Returns
    -------
    pandas.DataFrame
        One row per month: ``month``, ``base`` (base salaries, the same in every trial),
        ``variable_p10``/``p50``/``p90``/``mean`` and ``total_p10``/``p50``/``p90``/``mean``.
    """
    missing = sorted({"base_cost", "variable_cost"} - set(cost_samples.columns))
    if missing:
        raise DataValidationError("comp_cost_samples", [f"missing column(s) {', '.join(missing)}"])
    if len(months) != 12:
        raise ValueError(f"expected 12 month labels, got {len(months)}")
    shares = np.asarray(month_shares, float)
    if shares.ndim == 1:
        shares = np.broadcast_to(shares, (len(cost_samples), 12))
    if shares.shape != (len(cost_samples), 12):
        raise ValueError(
            f"month_shares has shape {shares.shape}; expected (12,) or ({len(cost_samples)}, 12)"
        )
    if not np.allclose(shares.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError("month_shares: every row must add up to 1")
    base = cost_samples["base_cost"].to_numpy(float)[:, None] / 12.0
    variable = cost_samples["variable_cost"].to_numpy(float)[:, None] * shares  # (trials, 12)
    total = base + variable
    qv = np.percentile(variable, [10, 50, 90], axis=0)
    qt = np.percentile(total, [10, 50, 90], axis=0)
    return pd.DataFrame(
        {
            "month": list(months),
            "base": np.full(12, float(base.mean())),
            "variable_p10": qv[0],
            "variable_p50": qv[1],
            "variable_p90": qv[2],
            "variable_mean": variable.mean(axis=0),
            "total_p10": qt[0],
            "total_p50": qt[1],
            "total_p90": qt[2],
            "total_mean": total.mean(axis=0),
        }
    )
