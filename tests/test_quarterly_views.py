"""Quarterly bookings, P(attain) by quarter, accrued commission cost by month, every rep's payout trace.

Small hand-built inputs whose answers can be counted by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.compensation import AttainmentSamples, CompInputs, load_plan, payout_trace, simulate_cost
from salesops_models.compensation.accrual import accrued_cost_by_month, month_shares_from_quarters
from salesops_models.compensation.statements import payout_traces
from salesops_models.errors import DataValidationError, SalesopsError
from salesops_models.pipeline import closed_to_date
from salesops_models.pipeline.quarters import closed_to_date_by_period, quarterly_bookings_samples
from salesops_models.pipeline.simulation import PipelineSimulation
from salesops_models.quota.risk import quarterly_attainment_risk

PERIODS = [f"2026-{m:02d}" for m in range(1, 13)]
EDGES = pd.date_range("2026-01-01", "2027-01-01", freq="MS")


def simulation(bookings: np.ndarray, closed: np.ndarray) -> PipelineSimulation:
    t, r, _ = bookings.shape
    z = np.zeros(t)
    return PipelineSimulation(
        rep_ids=np.array([f"R{i}" for i in range(r)]), periods=PERIODS, bookings=bookings,
        closed_to_date=closed, won=z, lost=z, created=z, new_won=z, new_cycle_days=z, unresolved=z,
        won_by_rep=np.zeros(r), lost_by_rep=np.zeros(r), draws=0, trials=t, block_size=t,
    )  # fmt: skip


def opportunities() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rep_id": ["R0", "R0", "R1", "R1", "R0"],
            "status": ["won", "won", "won", "lost", "won"],
            "close_date": pd.to_datetime(
                ["2026-02-10", "2026-04-01", "2026-03-31", "2026-02-01", "2025-12-31"]
            ),
            "amount": [100.0, 50.0, 30.0, 999.0, 7.0],
        }
    )


def test_closed_to_date_lands_in_the_month_it_closed():
    as_of = pd.Timestamp("2026-04-15")
    by_period = closed_to_date_by_period(opportunities(), ["R0", "R1"], EDGES, as_of)
    assert by_period.shape == (2, 12)
    assert by_period[0, 1] == 100.0 and by_period[0, 3] == 50.0 and by_period[1, 2] == 30.0
    assert by_period.sum() == 180.0, "lost deals and deals before the horizon are not counted"
    np.testing.assert_allclose(
        by_period.sum(axis=1), closed_to_date(opportunities(), np.array(["R0", "R1"]), EDGES[0], as_of)
    )


def test_quarters_add_up_to_the_plan_year_samples():
    rng = np.random.default_rng(1)
    bookings = rng.integers(0, 100, (5, 2, 12)).astype(float)
    closed = closed_to_date_by_period(opportunities(), ["R0", "R1"], EDGES, pd.Timestamp("2026-04-15"))
    sim = simulation(bookings, closed.sum(axis=1))
    q = quarterly_bookings_samples(sim, closed)
    assert list(q.columns) == ["trial", "rep_id", "quarter", "bookings"] and len(q) == 5 * 2 * 4
    annual = q.groupby(["trial", "rep_id"])["bookings"].sum().to_numpy()
    np.testing.assert_allclose(annual, sim.rep_bookings_samples()["bookings"].to_numpy())
    row = q[(q["trial"] == 3) & (q["rep_id"] == "R1") & (q["quarter"] == "2026-Q1")]["bookings"].item()
    assert row == bookings[3, 1, :3].sum() + 30.0, "R1's deal closed in March counts in Q1"
    with pytest.raises(SalesopsError, match="closed_by_period"):
        quarterly_bookings_samples(sim)  # closed-to-date exists but was not placed in quarters


def quarterly_table(values: dict[str, list[list[float]]]) -> pd.DataFrame:
    """rep -> trials x 4 quarters of bookings, as the long samples table."""
    rows = [
        (t, rep, f"2026-Q{k + 1}", v)
        for rep, trials in values.items()
        for t, quarters in enumerate(trials)
        for k, v in enumerate(quarters)
    ]
    return pd.DataFrame(rows, columns=["trial", "rep_id", "quarter", "bookings"])


def quarter_quotas(quotas: dict[str, list[float]]) -> pd.DataFrame:
    rows = [(rep, f"2026-Q{k + 1}", "quarter", q) for rep, qs in quotas.items() for k, q in enumerate(qs)]
    rows += [("A", "2026-01", "month", 1e9)]  # month rows are ignored
    return pd.DataFrame(rows, columns=["rep_id", "period", "period_type", "quota"])


def test_p_attain_by_quarter_counts_the_trials():
    samples = quarterly_table(
        {
            "A": [[10, 10, 10, 10], [5, 20, 10, 10], [10, 0, 0, 0], [0, 0, 0, 40]],
            "B": [[1, 1, 1, 1]] * 4,
        }
    )
    risk = quarterly_attainment_risk(samples, quarter_quotas({"A": [10, 10, 10, 10], "B": [0, 2, 2, 2]}))
    a = risk.by_quarter[risk.by_quarter["rep_id"] == "A"].set_index("quarter")
    assert a["p_attain"].tolist() == [0.5, 0.5, 0.5, 0.75]
    # year to date: Q2 needs 20 by then: trials 0 and 1 (25) -> 0.5; Q4 needs 40: trials 0, 1 and 3
    assert a["p_attain_ytd"].tolist() == [0.5, 0.5, 0.5, 0.75]
    assert a.loc["2026-Q2", "quota_ytd"] == 20
    b = risk.by_quarter[risk.by_quarter["rep_id"] == "B"].set_index("quarter")
    assert np.isnan(b.loc["2026-Q1", "p_attain"]), "a quarter without quota has no attainment probability"
    assert (b["p_attain"].iloc[1:] == 0).all()
    # the year: A makes 40 in trials 0, 1 and 3; B never makes 6 with 4
    assert risk.by_rep["rep_id"].tolist() == ["B", "A"], "least likely to make the year first"
    assert risk.by_rep.set_index("rep_id")["p_attain_year"].to_dict() == {"A": 0.75, "B": 0.0}
    assert risk.by_rep.set_index("rep_id").loc["A", "worst_p_attain"] == 0.5
    assert risk.trials == 4
    assert risk.matrix().index.tolist() == ["B", "A"] and risk.matrix().shape == (2, 4)


def test_p_attain_rejects_tables_that_do_not_match():
    with pytest.raises(DataValidationError, match="quarter"):
        quarterly_attainment_risk(
            pd.DataFrame({"trial": [0], "rep_id": ["A"], "bookings": [1.0]}), quarter_quotas({})
        )
    with pytest.raises(DataValidationError, match="no rep"):
        quarterly_attainment_risk(quarterly_table({"A": [[1, 1, 1, 1]]}), quarter_quotas({"Z": [1, 1, 1, 1]}))


def test_month_shares_follow_each_trials_quarters():
    quarters = np.array([[10.0, 0, 0, 30], [0, 0, 0, 0]])
    weights = [1, 1, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0]  # Q4 has no expected bookings: equal months
    s = month_shares_from_quarters(quarters, weights)
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    np.testing.assert_allclose(s[0, :3], [0.0625, 0.0625, 0.125])
    np.testing.assert_allclose(s[0, 9:], [0.25, 0.25, 0.25])
    np.testing.assert_allclose(s[1, :3], [0.0625, 0.0625, 0.125])  # no bookings: quarters count equally


def test_accrued_cost_by_month_adds_up_to_the_year():
    cost = pd.DataFrame(
        {"trial": [0], "base_cost": [1200.0], "variable_cost": [600.0], "total_cost": [1800.0]}
    )
    shares = np.array([0.5] + [0.5 / 11] * 11)
    by_month = accrued_cost_by_month(cost, shares, PERIODS)
    assert (by_month["base"] == 100.0).all()
    assert by_month["total_p50"].sum() == pytest.approx(1800.0)
    assert by_month.loc[0, "variable_p50"] == pytest.approx(300.0)
    rng = np.random.default_rng(0)
    many = pd.DataFrame({"base_cost": 1200.0, "variable_cost": rng.uniform(0, 1000, 500)})
    band = accrued_cost_by_month(many, np.full(12, 1 / 12), PERIODS)
    assert (band["total_p10"] <= band["total_p50"]).all() and (band["total_p50"] <= band["total_p90"]).all()
    with pytest.raises(ValueError, match="add up to 1"):
        accrued_cost_by_month(cost, np.full(12, 0.1), PERIODS)


def test_every_reps_trace_pays_what_the_engine_pays():
    plan = load_plan("ae_standard")
    rng = np.random.default_rng(5)
    quota = np.array([200_000.0, 300_000.0, 250_000.0])
    bookings = rng.lognormal(0, 0.4, (3, 101)) * quota[:, None]
    samples = AttainmentSamples(["R1", "R2", "R3"], quota, bookings, label="test")
    shares = np.array([[0.1, 0.2, 0.3], [0.2, 0.3, 0.2], [0.3, 0.2, 0.3], [0.4, 0.3, 0.2]])
    inputs = CompInputs(None, {}, {"R2": 20_000.0}, shares)
    traces = payout_traces(plan, samples, inputs)
    assert traces["rep_id"].unique().tolist() == ["R1", "R2", "R3"]
    assert (traces.groupby("rep_id")["step"].min() == 1).all()
    median = np.median(bookings, axis=1)
    # the engine on one trial at each rep's median bookings pays what the trace says
    engine = simulate_cost(plan, AttainmentSamples(samples.rep_ids, quota, median[:, None]), inputs)
    for i, rep in enumerate(samples.rep_ids):
        steps = traces[traces["rep_id"] == rep]
        variable = steps[steps["component"] == "variable"]["amount"].item()
        assert variable == pytest.approx(engine.payouts.variable[i, 0], rel=1e-9)
        assert steps["bookings"].iloc[0] == pytest.approx(median[i])
    r2 = traces[traces["rep_id"] == "R2"]
    assert r2.iloc[0]["formula"] == "quota 300,000.00 - relief 20,000.00", "the rep's relief is applied"
    single = payout_traces(plan, samples, inputs, rep_ids=["R3"])
    expected = payout_trace(
        plan, float(median[2]), 250_000.0, rep_id="R3", quota_period_shares=list(shares[:, 2])
    )
    assert single["amount"].tolist() == pytest.approx(expected.to_frame()["amount"].tolist())
