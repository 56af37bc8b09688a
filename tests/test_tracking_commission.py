"""Commission accrual to date and the year's cost, against hand-computed values.

The shipped ``ae_standard`` plan: target incentive 80,000, 0.5 x TI per unit of attainment up to
50 %, 1.5 x from 50 % to 125 %, cumulative quarterly. A rep with a flat 10,000 a month (120,000 a
year) who booked 45,000 by 30 June has 60,000 of quota to date: attainment 0.75, pay factor
0.5 x 0.5 + 1.5 x 0.25 = 0.625 on half the target incentive (40,000): 25,000 accrued.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.compensation import load_plan
from salesops_models.tracking.commission import (
    commission_accrual,
    employment_share,
    pro_rated_plan,
    year_end_cost,
)

PLAN = load_plan("ae_standard")
AS_OF = pd.Timestamp("2026-06-30")


def holders(last_day: str | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rep_id": ["R1", "R2"],
            "kind": ["rep", "rep"],
            "start_date": [pd.NaT, pd.NaT],
            "last_day": [pd.Timestamp(last_day) if last_day else pd.NaT, pd.NaT],
        }
    )


def test_accrual_is_the_commission_earned_on_the_year_to_date():
    quota = pd.DataFrame([[10_000.0] * 12, [10_000.0] * 12], index=["R1", "R2"], columns=range(1, 13))
    booked = np.zeros((2, 12))
    booked[0, 2], booked[0, 5] = 20_000.0, 25_000.0  # R1: 45,000 by June
    booked[1, 0] = 90_000.0  # R2: 90,000 by June, 150 % of quota to date
    acc = commission_accrual(PLAN, ["R1", "R2"], booked, quota, AS_OF, employment_share(holders(), 2026))
    r1, r2 = acc.iloc[0], acc.iloc[1]
    assert r1["ytd_quota"] == pytest.approx(60_000.0) and r1["ytd_attainment"] == pytest.approx(0.75)
    assert r1["accrued"] == pytest.approx(25_000.0)
    # R2 at 150 %: 0.25 + 1.5 x 0.5 + 1.5 x 0.25 + 2.0 x 0.25 = 1.875 x 40,000
    assert r2["accrued"] == pytest.approx(1.875 * 40_000.0)
    # mid-month: the month of the date is pro-rated by day (15 of 30 June days)
    mid = commission_accrual(
        PLAN, ["R1", "R2"], booked, quota, pd.Timestamp("2026-06-15"), employment_share(holders(), 2026)
    )
    assert mid.iloc[0]["ytd_quota"] == pytest.approx(55_000.0)


def test_a_leaver_earns_on_his_pro_rated_quota_and_target_incentive():
    # R1 leaves on 30 June having carried 60,000 of quota (the months after went to others) and booked 60,000
    quota = pd.DataFrame(
        [[10_000.0] * 6 + [0.0] * 6, [10_000.0] * 12], index=["R1", "R2"], columns=range(1, 13)
    )
    booked = np.zeros((2, 12))
    booked[0, 1] = 60_000.0
    share = employment_share(holders("2026-06-30"), 2026)
    assert share["R1"] == pytest.approx(181 / 365)
    acc = commission_accrual(PLAN, ["R1", "R2"], booked, quota, AS_OF, share)
    # 100 % of his quota: his target incentive, pro-rated to the 181 days he worked
    assert acc.iloc[0]["accrued"] == pytest.approx(80_000.0 * 181 / 365)
    assert pro_rated_plan(PLAN, 0.5).pay.target_incentive == pytest.approx(40_000.0)
    # the year's cost with nothing more booked: the same figure in every trial
    trials = 5
    year_end = np.tile(booked.sum(axis=1), (trials, 1)) + np.array([[0.0, 120_000.0]])
    by_quarter = np.zeros((4, 2, trials))
    by_quarter[0, 0, :] = by_quarter[1, 0, :] = 30_000.0  # on pace in both quarters he worked
    by_quarter[:, 1, :] = 30_000.0
    table, cost, base = year_end_cost(PLAN, ["R1", "R2"], year_end, by_quarter, quota, share)
    assert table.loc[0, "payout_p50"] == pytest.approx(80_000.0 * 181 / 365)
    assert table.loc[1, "payout_p50"] == pytest.approx(80_000.0)  # R2 exactly at quota
    np.testing.assert_allclose(cost, 80_000.0 * (1 + 181 / 365))
    assert base == pytest.approx(PLAN.pay.base_salary * (1 + 181 / 365))
