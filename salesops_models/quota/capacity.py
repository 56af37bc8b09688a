"""Capacity planning with the carried-quota model: how many reps a target needs.

Expected values, month by month over the plan year: every cohort of reps (the current team by
tenure, each month's planned hires, and the backfills of those who leave) shrinks by the monthly
attrition rate and sells at its ramp productivity. Departures are backfilled after a lag by new
reps who start the ramp again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class CapacityPlan:
    """Result of :func:`carried_quota_plan`.

    Attributes
    ----------
    monthly
        One row per plan month: headcount (expected reps employed), hires, backfills, departures,
        ramped_fte (sum of ramp productivity), expected_bookings [currency/month].
    target
        Bookings target [currency/yr].
    expected_bookings
        Bookings the plan delivers [currency/yr].
    extra_hires_needed
        Additional reps to hire in month 1 to close the gap (0 when there is none) [reps].
    steady_state_reps
        Fully ramped reps needed with no attrition: ``T / (P a)`` [reps].
    """

    monthly: pd.DataFrame
    target: float
    expected_bookings: float
    extra_hires_needed: int
    steady_state_reps: float
    productivity: float
    attainment_factor: float

    @property
    def gap(self) -> float:
        """Target minus expected bookings [currency/yr]."""
        return self.target - self.expected_bookings

    def summary(self) -> dict[str, Any]:
        return {
            "capacity_expected_bookings": float(self.expected_bookings),
            "capacity_gap": float(self.gap),
            "capacity_coverage": float(self.expected_bookings / self.target) if self.target else float("nan"),
            "capacity_extra_hires_needed": int(self.extra_hires_needed),
            "capacity_steady_state_reps": float(self.steady_state_reps),
            "capacity_headcount_end": float(self.monthly["headcount"].iloc[-1]),
        }


def _ramp(k: np.ndarray, ramp: np.ndarray) -> np.ndarray:
    idx = np.clip(k - 1, 0, len(ramp) - 1)
    return np.where(k <= 0, 0.0, ramp[idx])


def _simulate(
    cohorts: list[tuple[int, float]],
    ramp: np.ndarray,
    attrition: float,
    backfill_months: int,
    monthly_quota: float,
) -> pd.DataFrame:
    """cohorts: (start plan month, reps); month 1 = January; start <= 0 means hired before the plan year."""
    lag = max(backfill_months, 1)
    starts = [s for s, _ in cohorts]
    sizes = [n for _, n in cohorts]
    backfills = np.zeros(13 + lag)
    rows = []
    for m in range(1, 13):
        if backfills[m] > 0:
            starts.append(m)
            sizes.append(float(backfills[m]))
        st, sz = np.array(starts, dtype=int), np.array(sizes, dtype=float)
        active = st <= m
        head = float(sz[active].sum())
        fte = float((sz[active] * _ramp(m - st[active] + 1, ramp)).sum())
        leaving = np.where(active, sz * attrition, 0.0)
        sizes = list(sz - leaving)
        if m + lag <= 12:
            backfills[m + lag] += leaving.sum()
        rows.append((m, head, float(backfills[m]), fte, fte * monthly_quota, float(leaving.sum())))
    return pd.DataFrame(
        rows, columns=["month", "headcount", "backfills", "ramped_fte", "expected_bookings", "departures"]
    )


def carried_quota_plan(
    target: float,
    tenure_months: Sequence[int],
    *,
    ramp: Sequence[float],
    productivity: float,
    attainment_factor: float = 0.85,
    monthly_attrition: float = 0.015,
    backfill_months: int = 3,
    hiring_plan: Sequence[int] = (0,) * 12,
) -> CapacityPlan:
    """Expected bookings of a sales team over the plan year, and the hires a target needs.

    Parameters
    ----------
    target
        Bookings target [currency/yr].
    tenure_months
        Completed months of tenure of each current rep at the start of the plan year [month];
        negative for reps who start later in the year (``-k`` starts in month ``k+1``).
    ramp
        Productivity by month of tenure [0-1], last value held.
    productivity
        Annual quota of a fully ramped rep [currency/yr].
    attainment_factor
        Expected bookings per unit of carried quota [share].
    monthly_attrition
        Share of reps leaving each month [1/month].
    backfill_months
        Months from a departure to the start of the backfill (at least 1) [month].
    hiring_plan
        New hires starting in months 1..12 [reps].

    Returns
    -------
    CapacityPlan

    Notes
    -----
    A cohort of ``N`` starting in month ``h`` has ``N (1 - a)^(m - max(h, 1))`` reps in month
    ``m >= h``, each selling ``ramp(m - h + 1) P f / 12``; departures ``a x reps`` restart as a
    cohort ``L`` months later. Expected bookings ``E = sum_m sum_c``. The extra month-1 hires are
    ``ceil((T - E) / e_1)`` with ``e_1`` the yield of one rep hired in month 1 (with its backfills):
    the model is linear in cohort sizes.
    """
    ramp_arr = np.asarray(ramp, float)
    mq = productivity * attainment_factor / 12.0
    cohorts: list[tuple[int, float]] = [(1 - int(t), 1.0) for t in tenure_months]
    cohorts += [(m + 1, float(h)) for m, h in enumerate(hiring_plan) if h > 0]
    monthly = _simulate(cohorts, ramp_arr, monthly_attrition, backfill_months, mq)
    planned = {m + 1: float(h) for m, h in enumerate(hiring_plan)}
    monthly.insert(2, "hires", monthly["month"].map(planned).fillna(0.0))
    expected = float(monthly["expected_bookings"].sum())
    unit = float(
        _simulate([(1, 1.0)], ramp_arr, monthly_attrition, backfill_months, mq)["expected_bookings"].sum()
    )
    gap = target - expected
    extra = int(math.ceil(gap / unit - 1e-9)) if gap > 0 and unit > 0 else 0
    steady = target / (productivity * attainment_factor)
    return CapacityPlan(
        monthly, float(target), expected, extra, float(steady), float(productivity), float(attainment_factor)
    )
