"""KPI formulas on hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from salesops_models import kpi


@pytest.fixture()
def opps():
    return pd.DataFrame(
        {
            "opportunity_id": list("abcdef"),
            "rep_id": ["r1", "r1", "r1", "r2", "r2", "r3"],
            "status": ["won", "lost", "open", "won", "won", "lost"],
            "created_date": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-02-01", "2024-01-10", "2024-03-01", "2024-01-01"]
            ),
            "close_date": pd.to_datetime(
                ["2024-01-31", "2024-01-11", None, "2024-01-20", "2024-03-31", "2024-02-01"]
            ),
            "amount": [100.0, 0.0, 50.0, 300.0, 200.0, 0.0],
        }
    )


def test_win_rate_ignores_open_deals(opps):
    wr = kpi.win_rate(opps)
    assert (wr["won"].iloc[0], wr["lost"].iloc[0]) == (3, 2)
    assert wr["win_rate"].iloc[0] == pytest.approx(0.6)
    by = kpi.win_rate(opps, "rep_id")
    assert (
        by.loc["r1", "win_rate"] == 0.5
        and by.loc["r2", "win_rate"] == 1.0
        and by.loc["r3", "win_rate"] == 0.0
    )


def test_win_rate_by_manager_joins_reps(opps):
    reps = pd.DataFrame({"rep_id": ["r1", "r2", "r3"], "manager": ["m1", "m1", "m2"]})
    by = kpi.win_rate(opps, "manager", reps)
    assert by.loc["m1", "win_rate"] == pytest.approx(3 / 4) and by.loc["m2", "win_rate"] == 0.0


def test_sales_cycle_of_won_deals(opps):
    c = kpi.sales_cycle(opps)
    # won cycles: 30, 10, 30 days
    assert c["median_cycle_days"].iloc[0] == 30 and c["mean_cycle_days"].iloc[0] == pytest.approx(70 / 3)


def test_revenue_per_rep_active_vs_all(opps):
    reps = pd.DataFrame({"rep_id": ["r1", "r2", "r3", "r4"]})
    r = kpi.revenue_per_rep(opps, reps)
    assert r["won_revenue"] == 600
    assert r["revenue_per_rep_mean_active"] == pytest.approx(200)  # r1 100, r2 500, r3 0
    assert r["revenue_per_rep_all"] == 150
    r_q1 = kpi.revenue_per_rep(opps, reps, start="2024-02-01")
    assert r_q1["won_revenue"] == 200


def test_time_selling_share():
    a = pd.DataFrame(
        {
            "rep_id": ["r1", "r1", "r2"],
            "selling_hours": [20.0, 30.0, 10.0],
            "admin_hours": [15.0, 5.0, 30.0],
            "other_hours": [5.0, None, 0.0],
        }
    )
    t = kpi.time_selling(a)
    assert t.loc["r1", "selling_share"] == pytest.approx(50 / 75)
    assert t.loc["r2", "selling_share"] == pytest.approx(0.25)


def test_forecast_accuracy_and_coverage():
    acc = kpi.forecast_accuracy([100, 200, 400, 100], [104, 180, 400, 150])
    # abs pct errors 4, 10, 0, 50 -> MAPE 16; bias (4 - 10 + 0 + 50)/4 = 11
    assert acc["mape"] == pytest.approx(16.0) and acc["accuracy"] == pytest.approx(84.0)
    assert acc["bias"] == pytest.approx(11.0)
    assert acc["within_5pct"] == pytest.approx(0.5) and acc["within_10pct"] == pytest.approx(0.75)
    assert kpi.pipeline_coverage(300, target=250, closed_won=100) == pytest.approx(2.0)
    assert math.isinf(kpi.pipeline_coverage(10, target=100, closed_won=120))
