"""Creation under a plan: accounts carry their history to their new owner, coverage and ramp adjust it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.pipeline.scaling import (
    CreationResponse,
    calibrate_creation_response,
    plan_creation_rates,
    ramp_factors,
)

EDGES = pd.date_range("2026-01-01", "2027-01-01", freq="MS")


def _accounts(before, after, potential, workload):
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(len(before))],
            "previous_owner_rep_id": before,
            "owner_rep_id": after,
            "potential": potential,
            "workload_hours": workload,
        }
    )


def _roster(ids, hires=None):
    hire = pd.to_datetime([(hires or {}).get(r, "2010-01-01") for r in ids])
    return pd.DataFrame({"rep_id": ids, "hire_date": hire})


def test_nothing_moves_nothing_changes():
    acc = _accounts(["a", "a", "b"], ["a", "a", "b"], [100.0, 300.0, 200.0], [10.0, 30.0, 20.0])
    rates = pd.Series({"a": 2.0, "b": 1.0})
    hours = pd.Series({"a": 30.0, "b": 25.0})
    plan = plan_creation_rates(
        rates, acc, _roster(["a", "b"]), hours, hours, CreationResponse(0.4, 0.6, "scenario"), EDGES, 6
    )
    assert plan.rates.to_dict() == pytest.approx({"a": 2.0, "b": 1.0})


def test_coverage_model_by_hand():
    """Rep a gives half his workload to a hire with the same hours: both cover twice as well as a did."""
    beta = 0.5
    acc = _accounts(["a", "a"], ["a", "h"], [100.0, 100.0], [50.0, 50.0])
    rates = pd.Series({"a": 2.0})
    hours = pd.Series({"a": 30.0, "h": 30.0})
    resp = CreationResponse(beta, beta, "scenario")
    plan = plan_creation_rates(
        rates, acc, _roster(["a", "h"], {"h": "2025-01-01"}), hours, hours, resp, EDGES, 6
    )
    # each account created 1 deal/week under a; its new owner covers 50 h of workload with 30 h/week,
    # a covered 100 h: coverage doubles, creation x 2^0.5
    assert plan.rates["a"] == pytest.approx(2**beta)
    # the hire was hired a year before the plan: fully ramped, treated like a (no calibrated rate)
    assert plan.rates["h"] == pytest.approx(2**beta)
    assert plan.rates.sum() == pytest.approx(2.0 * 2**beta)


def test_hire_ramps_with_effective_hours():
    acc = _accounts(["a", "a"], ["a", "h"], [100.0, 100.0], [50.0, 50.0])
    rates = pd.Series({"a": 2.0})
    hours = pd.Series({"a": 30.0, "h": 30.0})
    plan = plan_creation_rates(
        rates,
        acc,
        _roster(["a", "h"], {"h": "2026-07-01"}),
        hours,
        hours,
        CreationResponse(1.0, 0.0),
        EDGES,
        0,
    )
    # elasticities 1 and 0: creation follows potential and hours; hired on 1 July, no ramp: half a year
    assert plan.rates["h"] == pytest.approx(1.0 * 6 / 12)
    assert plan.table.set_index("rep_id").loc["h", "source"] == "hire"
    # linear ramp over 6 months, evaluated at mid-month, creation ~ ramp^alpha
    ramped = ramp_factors(pd.Series(pd.to_datetime(["2026-01-01"]), index=["h"]), EDGES, 6, 0.5)
    expected = (sum(((m + 0.5) / 6) ** 0.5 for m in range(6)) + 6) / 12
    assert ramped["h"] == pytest.approx(expected)


def test_admin_time_follows_the_hours_elasticity():
    acc = _accounts(["a"], ["a"], [100.0], [50.0])
    rates = pd.Series({"a": 2.0})
    before, after = pd.Series({"a": 20.0}), pd.Series({"a": 25.0})
    for alpha in (1.0, 0.3):
        plan = plan_creation_rates(
            rates, acc, _roster(["a"]), before, after, CreationResponse(alpha, 0.0), EDGES, 6
        )
        assert plan.rates["a"] == pytest.approx(2.0 * 1.25**alpha)


def test_without_territories_deals_spread_creation_over_accounts():
    """An export without owners (Maven): each rep's creation follows the accounts he created deals on."""
    acc = _accounts([None, None], ["x", "y"], [1.0, 1.0], [1.0, 1.0])
    rates = pd.Series({"p": 3.0, "q": 1.0})
    created = pd.DataFrame({"rep_id": ["p", "p", "p", "q"], "account_id": ["A0", "A0", None, "A1"]})
    hours = pd.Series(dtype=float)
    plan = plan_creation_rates(
        rates, acc, _roster(["p", "q", "x", "y"]), hours, hours, CreationResponse(), EDGES, 0, created=created
    )
    # p: two thirds of his creation on A0 (now x's), a third without an account (stays with p)
    assert plan.rates.to_dict() == pytest.approx({"p": 1.0, "q": 0.0, "x": 2.0, "y": 1.0})


def _synthetic_panel(alpha: float, gamma: float, reps: int = 40, seed: int = 0):
    """Accounts, reps, activities and deals drawn from the response model itself (the oracle)."""
    rng = np.random.default_rng(seed)
    rep_ids = [f"R{i:02d}" for i in range(reps)]
    n_acc = rng.integers(5, 40, reps)
    owners = np.repeat(rep_ids, n_acc)
    accounts = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(len(owners))],
            "owner_rep_id": owners,
            "potential": rng.lognormal(11, 0.5, len(owners)),
            "workload_hours": rng.lognormal(4, 0.4, len(owners)),
        }
    )
    P = accounts.groupby("owner_rep_id")["potential"].sum()
    W = accounts.groupby("owner_rep_id")["workload_hours"].sum()
    weeks = pd.date_range("2024-01-01", "2025-12-29", freq="W-MON")
    act, opps = [], []
    for r in rep_ids:
        h_rep = rng.lognormal(np.log(25), 0.25)
        for q, wk in pd.Series(weeks).groupby(pd.Series(weeks).dt.to_period("Q")):
            h = h_rep * rng.lognormal(0, 0.15)
            act.append(
                pd.DataFrame(
                    {"rep_id": r, "week_start": wk.to_numpy(), "selling_hours": h, "admin_hours": 10.0}
                )
            )
            lam = 2e-4 * P[r] * h**alpha * W[r] ** (-gamma)
            n = rng.poisson(lam)
            days = rng.integers(0, 90, n)
            opps.append(
                pd.DataFrame({"rep_id": r, "created_date": q.start_time + pd.to_timedelta(days, "D")})
            )
    reps_t = pd.DataFrame({"rep_id": rep_ids, "hire_date": pd.Timestamp("2015-01-01")})
    return accounts, reps_t, pd.concat(act, ignore_index=True), pd.concat(opps, ignore_index=True)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.34, 0.34), (1.0, 0.0), (0.6, 0.2)])
def test_calibration_recovers_the_response_it_was_drawn_from(alpha, gamma):
    accounts, reps, act, opps = _synthetic_panel(alpha, gamma)
    resp = calibrate_creation_response(opps, accounts, reps, act, "2025-12-31", prior_sd=1e6)
    est = resp.estimates.set_index("term")
    assert resp.source == "calibrated" and est.attrs["n_reps"] == 40
    for term, truth in (("log_hours", alpha), ("log_workload", gamma)):
        # cluster-robust standard errors over 40 reps run a little small (z spread ~1.4 over seeds): 4 SE
        z = (est.loc[term, "estimate"] - truth) / est.loc[term, "se"]
        assert abs(z) < 4, (
            f"{term}: {est.loc[term, 'estimate']:.3f} vs {truth} (se {est.loc[term, 'se']:.3f})"
        )


def test_too_few_reps_give_the_default_response():
    accounts, reps, act, opps = _synthetic_panel(0.3, 0.3, reps=6)
    resp = calibrate_creation_response(opps, accounts, reps, act, "2025-12-31")
    assert resp.source == "default" and (resp.hours_elasticity, resp.workload_elasticity) == (1.0, 0.0)
