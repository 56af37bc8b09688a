"""Quota allocation: top-down, even, bottom-up, the MILP, rounding and bad input (hand-solved cases)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.errors import DataValidationError, InfeasibleError, ScenarioError
from salesops_models.quota import (
    Subtotal,
    allocate_even,
    allocate_top_down,
    fair_shares,
    optimise_quotas,
    ramp_by_month,
    reconcile_bottom_up,
    rep_basis,
    round_to_unit,
)
from salesops_models.quota.config import QuotaConfig
from salesops_models.scenario import load_scenario


def make_basis(
    potential,
    prior_year,
    ttm=None,
    forecast=None,
    ramp_factor=None,
    full_history=None,
    region=None,
    manager=None,
) -> pd.DataFrame:
    n = len(potential)
    idx = pd.Index([f"R{i + 1}" for i in range(n)], name="rep_id")
    py = np.asarray(prior_year, float)
    return pd.DataFrame(
        {
            "region": region if region is not None else ["A"] * n,
            "manager": manager if manager is not None else ["M"] * n,
            "capacity": 1.0,
            "potential": np.asarray(potential, float),
            "prior_year": py,
            "ttm": np.asarray(ttm if ttm is not None else py, float),
            "forecast": np.asarray(forecast if forecast is not None else py, float),
            "tenure_months": 60,
            "ramp_factor": np.asarray(ramp_factor if ramp_factor is not None else [1.0] * n, float),
            "full_history": np.asarray(full_history if full_history is not None else py > 0, bool),
        },
        index=idx,
    )


W_POT = {"potential": 1.0, "prior_year": 0.0, "ttm": 0.0, "forecast": 0.0}
W_PY = {"potential": 0.0, "prior_year": 1.0, "ttm": 0.0, "forecast": 0.0}


# ---- rounding -----------------------------------------------------------------------------------


def test_round_to_unit_largest_remainder_by_hand():
    q, rem = round_to_unit(pd.Series([1.4, 2.3, 3.3]), 7.0, 1.0)
    assert q.tolist() == [2.0, 2.0, 3.0]
    assert rem.sum() == 0.0


def test_round_to_unit_sub_unit_rest_goes_to_largest():
    # scaled to 7.5: [1.5, 2.4643, 3.5357] -> floors [1, 2, 3], one extra unit to the largest fraction (rep 3)
    q, rem = round_to_unit(pd.Series([1.4, 2.3, 3.3]), 7.5, 1.0)
    assert q.tolist() == [1.0, 2.0, 4.5]
    assert rem.tolist() == [0.0, 0.0, 0.5]
    assert q.sum() == 7.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_to_unit_sum_exact_random(seed):
    rng = np.random.default_rng(seed)
    v = pd.Series(rng.lognormal(12, 1, 57))
    total = 12_345_678.0
    q, rem = round_to_unit(v, total, 1000.0)
    assert q.sum() == total
    assert ((q - rem) % 1000 == 0).all()
    assert (rem > 0).sum() == 1
    assert (q - v * total / v.sum()).abs().max() < 1000 + 678  # within a unit, plus the rest on one rep


# ---- fair shares, top-down, even, bottom-up -----------------------------------------------------


def test_top_down_blend_by_hand():
    b = make_basis([100, 200, 700], [300, 300, 400])
    res = allocate_top_down(b, 1000.0, {"potential": 0.5, "prior_year": 0.5, "ttm": 0.0, "forecast": 0.0})
    # potential shares .1 .2 .7, prior-year .3 .3 .4 -> blend .2 .25 .55
    assert res.quota.tolist() == [200.0, 250.0, 550.0]
    assert res.quotas["share_potential"].tolist() == pytest.approx([0.1, 0.2, 0.7])


def test_over_assignment_scales_total():
    b = make_basis([100, 200, 700], [300, 300, 400])
    res = allocate_top_down(b, 1000.0, W_POT, over_assignment=0.1)
    assert res.quota.sum() == pytest.approx(1100.0, abs=1e-9)
    assert res.quota.tolist() == pytest.approx([110.0, 220.0, 770.0])


def test_ramp_scales_fair_share():
    b = make_basis([100, 100], [100, 100], ramp_factor=[1.0, 0.5])
    f = fair_shares(b, W_POT)
    assert f["fair_weight"].tolist() == pytest.approx([2 / 3, 1 / 3])


def test_even_split_by_fte():
    b = make_basis([1, 1, 1, 1], [1, 1, 1, 1], ramp_factor=[1, 1, 1, 0.5])
    res = allocate_even(b, 3500.0)
    assert res.quota.tolist() == [1000.0, 1000.0, 1000.0, 500.0]


def test_bottom_up_reconciled_to_target():
    b = make_basis([1, 1, 1], [1, 1, 1])
    subs = pd.Series({"R1": 100.0, "R2": 300.0, "R3": 600.0})
    res = reconcile_bottom_up(b, subs, 1200.0)
    assert res.quota.tolist() == [120.0, 360.0, 720.0]
    assert res.extra["bottom_up_gap"] == pytest.approx(-200.0)
    half = reconcile_bottom_up(b, subs, 1200.0, weights=W_PY, blend=0.5)
    # half scaled submissions (120, 360, 720), half even prior-year share (400 each)
    assert half.quota.tolist() == [260.0, 380.0, 560.0]


# ---- bad input ----------------------------------------------------------------------------------


def test_weights_not_summing_to_one_names_field_and_fix():
    b = make_basis([1, 2], [1, 2])
    with pytest.raises(ScenarioError, match=r"quota.weights must sum to 1, they sum to 0.9.*0.5556"):
        allocate_top_down(b, 10.0, {"potential": 0.5, "prior_year": 0.4, "ttm": 0.0, "forecast": 0.0})


def test_weights_checked_in_scenario_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: s\nquota:\n  weights: {potential: 0.5, prior_year: 0.2, ttm: 0.2, forecast: 0.2}\n")
    with pytest.raises(ScenarioError, match=r"quota.weights.*sum to 1.1"):
        load_scenario(f)
    with pytest.raises(ValueError, match="growth_min"):
        QuotaConfig(growth_min=0.5, growth_max=0.1)


def test_rep_without_history_or_potential_is_named():
    b = make_basis([100, 0], [100, 0])
    with pytest.raises(DataValidationError, match=r"R2 have no history and no potential.*potential"):
        allocate_top_down(b, 1000.0, {"potential": 0.5, "prior_year": 0.5, "ttm": 0.0, "forecast": 0.0})
    # the even split does not need history
    assert allocate_even(b, 1000.0).quota.tolist() == [500.0, 500.0]


def test_unreachable_target_gives_smallest_growth_max():
    b = make_basis([1, 1, 1], [100, 100, 100])
    with pytest.raises(InfeasibleError, match=r"growth_max >= \+0\.3000") as exc:
        optimise_quotas(b, 390.0, W_PY, rounding_unit=1.0, growth_min=-0.2, growth_max=0.2)
    assert exc.value.diagnosis["needed"] == pytest.approx(0.3, abs=1e-5)
    res = optimise_quotas(b, 390.0, W_PY, rounding_unit=1.0, growth_min=-0.2, growth_max=0.3)
    assert res.quota.tolist() == [130.0, 130.0, 130.0]


def test_target_below_growth_floors_gives_smallest_growth_min():
    b = make_basis([1, 1, 1], [100, 100, 100])
    with pytest.raises(InfeasibleError, match=r"growth_min <= -0\.5000"):
        optimise_quotas(b, 150.0, W_PY, rounding_unit=1.0, growth_min=-0.2, growth_max=0.3)


# ---- the MILP -----------------------------------------------------------------------------------


def test_optimised_upper_growth_bound_binds_by_hand():
    b = make_basis([100, 100, 200], [100, 100, 100])
    res = optimise_quotas(b, 400.0, W_POT, rounding_unit=1.0, growth_min=-0.2, growth_max=0.5)
    q = res.quotas
    assert q.loc["R3", "quota"] == 150.0
    assert q.loc["R3", "binding_bounds"] == "growth_max"
    assert q.loc[["R1", "R2"], "quota"].min() >= 100.0
    assert q["quota"].sum() == 400.0
    assert res.extra["objective"] == pytest.approx(100.0)  # 50 under on R3, 50 over on R1 + R2


def test_optimised_lower_growth_bound_binds_by_hand():
    b = make_basis([100, 100, 800], [200, 200, 200])
    res = optimise_quotas(b, 1000.0, W_POT, rounding_unit=10.0, growth_min=-0.25, growth_max=5.0)
    q = res.quotas
    assert q["quota"].tolist() == [150.0, 150.0, 700.0]
    assert q.loc["R1", "binding_bounds"] == "growth_min"
    assert q.loc["R3", "binding_bounds"] == ""
    assert res.extra["objective"] == pytest.approx(200.0)


def test_optimised_sum_exact_with_rest_and_bounds_honoured():
    rng = np.random.default_rng(5)
    n = 25
    py = rng.uniform(5e5, 2e6, n)
    b = make_basis(rng.uniform(1e6, 5e6, n), py, region=[f"G{i % 3}" for i in range(n)])
    target = float(py.sum() * 1.08) + 123.45
    res = optimise_quotas(b, target, W_POT, rounding_unit=1000.0, growth_min=-0.1, growth_max=0.25)
    q = res.quotas
    assert q["quota"].sum() == pytest.approx(target, abs=1e-6)
    assert ((q["quota"] - q["rounding_remainder"]) % 1000 == 0).all()
    assert (q["rounding_remainder"] > 0).sum() == 1
    assert (q["quota"] >= py * 0.9 - 1e-6).all()
    assert (q["quota"] <= py * 1.25 + 1e-6).all()
    assert res.extra["status"] == "optimal"
    # some bounds bind, since potential and prior year disagree
    assert (q["binding_bounds"] != "").any()


def test_optimised_honours_region_subtotals():
    b = make_basis(
        [100, 300, 100, 500], [200, 200, 200, 200], region=["N", "N", "S", "S"], full_history=[False] * 4
    )
    targets = {"N": 500.0, "S": 500.0}  # fair shares alone would give N 400, S 600
    res = optimise_quotas(b, 1000.0, W_POT, rounding_unit=1.0, subtotals=(Subtotal("region", targets, 0.0),))
    by_region = res.quota.groupby(b["region"]).sum()
    assert by_region["N"] == pytest.approx(500.0, abs=1.0)  # one rounding unit of slack
    assert res.quota.sum() == 1000.0
    with pytest.raises(InfeasibleError, match="no rep belongs"):
        optimise_quotas(b, 1000.0, W_POT, rounding_unit=1.0, subtotals=(Subtotal("region", {"X": 5.0}, 0.0),))


def test_optimised_ramp_cap():
    b = make_basis(
        [100, 100, 100], [100, 100, 0], ramp_factor=[1.0, 1.0, 0.4], full_history=[True, True, False]
    )
    # the new rep cannot exceed his ramped fair share, even if the others' growth caps push quota his way
    res = optimise_quotas(b, 300.0, W_POT, rounding_unit=1.0, growth_min=-0.5, growth_max=0.5)
    fair = res.quotas["fair_share"]
    assert res.quotas.loc["R3", "quota"] <= fair["R3"] + 1e-9
    assert res.quota.sum() == 300.0


# ---- basis from the canonical tables ------------------------------------------------------------


def test_ramp_by_month_by_hand():
    hire = pd.Series(pd.to_datetime(["2026-03-15", "2019-01-01", None]), index=["a", "b", "c"])
    r = ramp_by_month(hire, 2026, [0.25, 0.5, 1.0])
    assert r.loc["a"].tolist() == [0, 0, 0.25, 0.5] + [1.0] * 8
    assert r.loc["b"].tolist() == [1.0] * 12
    assert r.loc["c"].tolist() == [1.0] * 12


def test_rep_basis_from_tables():
    reps = pd.DataFrame(
        {
            "rep_id": ["R1", "R2"],
            "region": ["N", "S"],
            "hire_date": pd.to_datetime(["2020-01-01", "2025-07-01"]),
        }
    )
    accounts = pd.DataFrame(
        {"account_id": ["a", "b", "c"], "potential": [10.0, 20.0, 30.0], "owner_rep_id": ["R1", "R1", "R2"]}
    )
    months = pd.date_range("2024-01-01", "2025-12-01", freq="MS")
    bookings = pd.DataFrame({"month": months, "rep_id": "R1", "amount": 10.0})
    bookings = pd.concat(
        [bookings, pd.DataFrame({"month": [pd.Timestamp("2025-09-01")], "rep_id": ["R2"], "amount": [5.0]})]
    )
    b = rep_basis(reps, accounts, bookings, 2026, ramp=[0.5, 1.0], as_of=pd.Timestamp("2025-12-31"))
    assert b.loc["R1", "potential"] == 30.0 and b.loc["R2", "potential"] == 30.0
    assert b.loc["R1", "prior_year"] == 120.0 and b.loc["R1", "ttm"] == 120.0
    assert bool(b.loc["R1", "full_history"]) and not bool(b.loc["R2", "full_history"])
    assert b.loc["R2", "tenure_months"] == 6
    owner = pd.Series({"a": "R2", "b": "R1", "c": "R2"})
    b2 = rep_basis(reps, accounts, bookings, 2026, owner=owner)
    assert b2["potential"].tolist() == [20.0, 40.0]


def test_rep_basis_rebases_history_with_moved_accounts():
    reps = pd.DataFrame({"rep_id": ["R1", "R2"], "hire_date": pd.to_datetime(["2020-01-01", "2020-01-01"])})
    accounts = pd.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "potential": [10.0, 20.0, 30.0],
            "owner_rep_id": ["R1", "R1", "R2"],
            "revenue_last_year": [5.0, 7.0, 11.0],
        }
    )
    bookings = pd.DataFrame(
        {
            "month": pd.to_datetime(["2025-03-01", "2025-04-01"]),
            "rep_id": ["R1", "R2"],
            "amount": [12.0, 11.0],
        }
    )
    owner = pd.Series({"a": "R2", "b": "R1", "c": "R2"})
    b = rep_basis(reps, accounts, bookings, 2026, owner=owner)
    assert b["prior_year"].tolist() == [7.0, 16.0]
    assert b["ttm"].tolist() == [7.0, 16.0]
    assert b["history_rebased"].tolist() == [-5.0, 5.0]
    kept = rep_basis(reps, accounts, bookings, 2026, owner=owner, rebase_history=False)
    assert kept["prior_year"].tolist() == [12.0, 11.0]


def test_growth_reference_annualises_partial_prior_year():
    from salesops_models.quota.basis import bookings_growth

    reps = pd.DataFrame(
        {
            "rep_id": ["R1", "R2", "R3"],
            "hire_date": pd.to_datetime(["2018-01-01", "2025-07-01", "2025-11-01"]),
        }
    )
    accounts = pd.DataFrame({"account_id": ["a"], "potential": [1.0], "owner_rep_id": ["R1"]})
    bookings = pd.DataFrame(
        {
            "month": pd.to_datetime(["2025-03-01", "2025-09-01", "2025-12-01"]),
            "rep_id": ["R1", "R2", "R3"],
            "amount": [120.0, 30.0, 5.0],
        }
    )
    b = rep_basis(reps, accounts, bookings, 2026, ramp=[1.0])
    # R2 worked 6 of 12 months last year at full productivity: 30 is worth 60 a year
    assert b.loc["R2", "prior_year_ramp"] == pytest.approx(0.5)
    assert b.loc["R2", "growth_reference"] == pytest.approx(60.0)
    assert b.loc["R1", "growth_reference"] == pytest.approx(120.0)
    # R3: two months (ramp 2/12 < 0.25): too little history for growth bounds
    assert not bool(b.loc["R3", "has_growth_bounds"])
    lo, hi = optimise_quotas(b, 300.0, W_PY, rounding_unit=1.0, growth_min=-0.5, growth_max=1.0).quotas.loc[
        "R2", ["lower_bound", "upper_bound"]
    ]
    assert (lo, hi) == (30.0, 120.0)
    months = pd.date_range("2023-01-01", "2024-12-01", freq="MS")
    bk = pd.DataFrame({"month": months, "rep_id": "R1", "amount": np.where(months.year == 2024, 11.0, 10.0)})
    assert bookings_growth(bk) == pytest.approx(0.1)
    assert bookings_growth(bk.iloc[:20]) is None


def test_compare_methods_reports_failures_as_rows():
    from salesops_models.quota import compare_methods, run_method

    b = make_basis([1, 1, 1], [100, 100, 100])
    table, results = compare_methods(
        ("top_down", "optimised", "equal_chance"), b, 390.0, W_PY, rounding_unit=1.0, growth_max=0.2
    )
    rows = table.set_index("method")
    assert rows.loc["top_down", "error"] == ""
    assert "growth_max" in rows.loc["optimised", "error"]
    assert "needs a bookings distribution" in rows.loc["equal_chance", "error"]
    assert set(results) == {"top_down"}
    with pytest.raises(ValueError, match="unknown quota method 'fair'"):
        run_method("fair", b, 390.0, W_PY)
