"""The pipeline model on the Maven CRM export (a snapshot: engage and close dates, final stage)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from salesops_models.backtest import backtest_pipeline, snapshot_at
from salesops_models.pipeline.calibration import calibrate_pipeline
from salesops_models.pipeline.markov import absorbing_chain
from salesops_models.pipeline.simulation import compile_inputs, open_pipeline, simulate_pipeline

pytestmark = pytest.mark.benchmarkdata


@pytest.fixture(scope="module")
def golden(bench_dir):
    return json.loads((bench_dir / "crm" / "maven_crm_golden.json").read_text())


@pytest.fixture(scope="module")
def calibration(maven):
    """The closed-deal odds (``residual='redistribute'``): the golden win rate Won/(Won+Lost)."""
    return calibrate_pipeline(
        maven.opportunities,
        maven.stage_history,
        maven.reps,
        maven.stages,
        maven.as_of,
        residual="redistribute",
    )


@pytest.fixture(scope="module")
def default_calibration(maven):
    """The default, censoring-aware calibration (cumulative incidence, never-decided mass explicit)."""
    return calibrate_pipeline(maven.opportunities, maven.stage_history, maven.reps, maven.stages, maven.as_of)


def test_calibrated_win_rate_is_0_6315_from_both_open_stages(calibration, golden):
    chain = absorbing_chain(calibration.transition_matrix, calibration.n_open)
    assert golden["overall"]["win_rate"] == pytest.approx(0.631501)
    np.testing.assert_allclose(chain.win_probability, golden["overall"]["win_rate"], atol=5e-7)
    assert calibration.states[calibration.entry_stage] == "Engaging"


def test_open_deals_are_censored_not_lost(calibration, golden):
    closed = golden["counts"]["by_stage"]["Won"] + golden["counts"]["by_stage"]["Lost"]
    assert calibration.transition_counts.sum() == closed  # 6,711 exits; the 2,089 open deals add none
    won = golden["counts"]["by_stage"]["Won"]
    assert calibration.transition_counts[1, calibration.won] == won
    # counting open deals as lost would give 4238 / 8800 = 0.48
    assert calibration.summary()["win_rate_from_entry"] > won / golden["counts"]["opportunities"] + 0.1


def test_cumulative_incidence_and_stale_pipeline(maven, calibration):
    # FIELD-NOTES 3.2: engaged from 2017-03-01, open deals censored: P(won <= 138 d) 0.505, P(lost) 0.315
    recent = calibrate_pipeline(
        maven.opportunities,
        maven.stage_history,
        maven.reps,
        maven.stages,
        maven.as_of,
        history_start="2017-03-01",
    )
    assert recent.diagnostics["cif_won_by_max_time"] == pytest.approx(0.505, abs=0.002)
    assert recent.diagnostics["cif_lost_by_max_time"] == pytest.approx(0.315, abs=0.002)
    assert recent.diagnostics["cif_still_open"] == pytest.approx(0.18, abs=0.005)
    assert calibration.max_holding_days()[1] == 138
    deals = open_pipeline(calibration, maven.opportunities, maven.stage_history, maven.stages)
    engaging = deals[deals["stage"] == "Engaging"]
    assert len(engaging) == 1589 and (engaging["age_days"] > 138).sum() == 1291
    # Prospecting deals have no date: treated as just entered, never stale
    pros = deals[deals["stage"] == "Prospecting"]
    assert len(pros) == 500 and not pros["age_known"].any() and not pros["stale"].any()
    young = engaging[~engaging["stale"]]
    # age-aware odds differ from the flat 0.6315 (won deals take longer than lost ones)
    assert young["p_win_age_aware"].mean() > 0.6315 + 0.01


def test_open_pipeline_expectation_matches_simulation(maven, calibration):
    deals = open_pipeline(calibration, maven.opportunities, maven.stage_history, maven.stages)
    inp = compile_inputs(calibration, deals, None, age_aware=False, stale_policy="fresh", uncertainty="point")
    sim = simulate_pipeline(inp, calibration.rep_ids, trials=1000, block_size=250, seed=3)
    mean_by_group = np.array([calibration.mean_won_amount(g) for g in deals["size_group"]])
    expected = float(np.sum(deals["p_win_fresh"] * mean_by_group))
    s = sim.summary()
    assert abs(s["bookings_mean"] - expected) < 3 * s["bookings_se"]
    n = sim.won.sum() + sim.lost.sum()
    assert abs(sim.won.sum() / n - 0.631501) < 3 * np.sqrt(0.6315 * 0.3685 / n)


def test_snapshot_has_no_future_information(maven):
    cutoff = pd.Timestamp("2017-06-30")
    opp, sh = snapshot_at(maven.opportunities, maven.stage_history, maven.stages, cutoff)
    assert opp["created_date"].max() <= cutoff
    assert (opp["close_date"].dropna() <= cutoff).all()
    assert sh["entered_date"].max() <= cutoff
    assert opp.loc[opp["status"] == "open", "amount"].isna().all()
    assert set(opp.loc[opp["status"] == "open", "stage"]) == {"Engaging"}


def test_backtest_q3_q4_2017(maven, golden):
    edges = ["2017-07-01", "2017-10-01", "2018-01-01"]
    bt = backtest_pipeline(
        maven.opportunities,
        maven.stage_history,
        maven.reps,
        maven.stages,
        "2017-06-30",
        edges,
        trials=500,
        block_size=250,
        seed=1,
    )
    t = bt.table.set_index("period")
    assert t.loc["2017Q3", "actual"] == golden["quarterly_won"]["2017Q3"]["revenue"] == 2_982_255
    assert t.loc["2017Q4", "actual"] == golden["quarterly_won"]["2017Q4"]["revenue"]
    assert ((t["percentile"] >= 0) & (t["percentile"] <= 100)).all()
    assert (t["p10"] <= t["p50"]).all() and (t["p50"] <= t["p90"]).all()
    # the percentile is the rank of the actual among the trials
    assert bt.summary()["2017Q3_percentile"] == t.loc["2017Q3", "percentile"]
