"""Seasonality split, pro-rated quota relief and the carried-quota capacity plan, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.errors import DataValidationError
from salesops_models.quota import (
    carried_quota_plan,
    quota_relief,
    remaining_share,
    seasonal_profile_from_history,
    split_by_period,
)

FLAT = np.full(12, 1 / 12)


def test_profile_from_history_by_hand():
    months = pd.date_range("2024-01-01", "2025-12-01", freq="MS")
    amount = np.where(months.month == 12, 2.0, 1.0) * np.where(months.year == 2025, 10.0, 1.0)
    bk = pd.DataFrame({"month": months, "rep_id": "R1", "amount": amount})
    s = seasonal_profile_from_history(bk)
    assert s.sum() == pytest.approx(1.0)
    assert s[11] == pytest.approx(2 / 13) and s[0] == pytest.approx(1 / 13)
    # an incomplete year alone gives a flat profile
    assert seasonal_profile_from_history(bk.iloc[:5]) == pytest.approx(FLAT)


def test_split_flat_and_exact_sums():
    q = pd.Series({"R1": 1200.0, "R2": 1000.5})
    out = split_by_period(q, FLAT, 2026, unit=1.0)
    months = out[out.period_type == "month"]
    assert months[months.rep_id == "R1"]["quota"].tolist() == [100.0] * 12
    assert months.groupby("rep_id")["quota"].sum().to_dict() == {"R1": 1200.0, "R2": 1000.5}
    quarters = out[out.period_type == "quarter"]
    assert quarters[quarters.rep_id == "R1"]["quota"].tolist() == [300.0] * 4
    assert set(out.period) >= {"2026-01", "2026-12", "2026-Q4"}


def test_split_follows_ramp():
    q = pd.Series({"R1": 600.0})
    ramp = pd.DataFrame([[0.0] * 6 + [1.0] * 6], index=["R1"], columns=range(1, 13))
    out = split_by_period(q, FLAT, 2026, ramp=ramp, unit=1.0)
    m = out[out.period_type == "month"]["quota"].tolist()
    assert m == [0.0] * 6 + [100.0] * 6


def test_remaining_share():
    assert remaining_share(pd.Timestamp("2026-07-01"), FLAT) == pytest.approx(0.5)
    assert remaining_share(pd.Timestamp("2026-01-16"), FLAT) == pytest.approx(11 / 12 + (16 / 31) / 12)


def test_quota_relief_by_hand():
    accounts = pd.DataFrame({"account_id": ["a", "b", "c"], "potential": [50.0, 50.0, 100.0]})
    owner = pd.Series({"a": "R1", "b": "R1", "c": "R2"})
    quotas = pd.Series({"R1": 1200.0, "R2": 800.0})
    moves = pd.DataFrame({"account_id": ["a"], "to_rep_id": ["R2"], "effective_date": ["2026-07-01"]})
    relief = quota_relief(moves, accounts, owner, quotas, FLAT, 2026)
    # 'a' is half of R1's potential: 600 of quota, half a year left -> 300 of relief
    assert relief.loc[0, "account_quota"] == pytest.approx(600.0)
    assert relief.loc[0, "relief"] == pytest.approx(300.0)
    out = split_by_period(quotas, FLAT, 2026, relief=relief, unit=1.0)
    m = out[out.period_type == "month"].pivot(index="period", columns="rep_id", values="quota")
    assert m["R1"].tolist() == [100.0] * 6 + [50.0] * 6
    assert m["R2"].tolist() == pytest.approx([800 / 12] * 6 + [800 / 12 + 50] * 6, abs=1.0)
    assert m.sum().to_dict() == {"R1": 900.0, "R2": 1100.0}
    bad = moves.assign(account_id="zz")
    with pytest.raises(DataValidationError, match="account_id 'zz' is not in the accounts table"):
        quota_relief(bad, accounts, owner, quotas, FLAT, 2026)


def test_capacity_no_attrition_by_hand():
    plan = carried_quota_plan(
        13.2e6, [24] * 10, ramp=[0.5, 1.0], productivity=1.2e6, attainment_factor=1.0, monthly_attrition=0.0
    )
    assert plan.expected_bookings == pytest.approx(12e6)
    # a January hire yields 1.2e6/12 x (0.5 + 11) = 1.15e6 < gap 1.2e6, so two are needed
    assert plan.extra_hires_needed == 2
    assert plan.steady_state_reps == pytest.approx(11.0)


def test_capacity_attrition_without_backfill_in_year():
    a = 0.02
    plan = carried_quota_plan(
        1e6,
        [24] * 10,
        ramp=[1.0],
        productivity=1.2e6,
        attainment_factor=0.5,
        monthly_attrition=a,
        backfill_months=13,
    )
    expected_head = 10 * (1 - a) ** np.arange(12)
    assert plan.monthly["headcount"].to_numpy() == pytest.approx(expected_head)
    assert plan.expected_bookings == pytest.approx(expected_head.sum() * 1.2e6 * 0.5 / 12)
    assert plan.extra_hires_needed == 0


def test_capacity_backfills_and_hiring_plan():
    plan = carried_quota_plan(
        20e6,
        [24] * 10,
        ramp=[0.5, 1.0],
        productivity=1.2e6,
        monthly_attrition=0.05,
        backfill_months=1,
        hiring_plan=[2] + [0] * 11,
    )
    m = plan.monthly
    assert m.loc[0, "headcount"] == pytest.approx(12.0)
    assert m.loc[1, "backfills"] == pytest.approx(12 * 0.05)  # January's leavers start in February
    assert m.loc[1, "headcount"] == pytest.approx(12.0)  # replaced one for one
    assert plan.gap > 0 and plan.extra_hires_needed > 0
