"""The `pipeline` stage on the sample company, and the simpy capacity model against the vectorised one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from salesops_models.pipeline.calibration import calibrate_pipeline
from salesops_models.pipeline.capacity import effort_vector, simulate_capacity
from salesops_models.pipeline.config import PipelineConfig
from salesops_models.pipeline.simulation import compile_inputs, open_pipeline, simulate_pipeline
from salesops_models.scenario import Scenario
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.stages import pipeline as stage


def _ctx(tmp_path, company, **pipeline):
    sc = Scenario(name="t", pipeline=PipelineConfig(trials=120, block_size=40, **pipeline))
    return StageContext(sc, tmp_path, "pipeline", {"company": company})


def test_stage_writes_the_contract(tmp_path, small_company):
    ctx = _ctx(tmp_path, small_company)
    metrics = stage.run(ctx)
    for key in (
        "pipeline_bookings_p10",
        "pipeline_bookings_p50",
        "pipeline_bookings_p90",
        "pipeline_win_rate",
    ):
        assert np.isfinite(metrics[key]), key
    assert (
        metrics["pipeline_bookings_p10"]
        <= metrics["pipeline_bookings_p50"]
        <= metrics["pipeline_bookings_p90"]
    )
    json.dumps(metrics)
    samples = ctx.read_table("rep_bookings_samples")
    assert list(samples.columns) == ["trial", "rep_id", "bookings"]
    assert len(samples) == 120 * len(small_company.reps)
    assert set(samples["rep_id"]) == set(small_company.reps["rep_id"].astype(str))
    totals = samples.groupby("trial")["bookings"].sum()
    assert np.percentile(totals, 50) == pytest.approx(metrics["pipeline_bookings_p50"])
    summary = ctx.read_table("pipeline_summary")
    for col in ("rep_id", "mean", "p10", "p50", "p90", "win_rate"):
        assert col in summary.columns
    assert (tmp_path / "figures" / "pipeline_bookings_histogram.png").stat().st_size > 1000
    # plan-year bookings are in the range of last year's (the sample company grows ~12 %/yr)
    opp = small_company.opportunities
    last = opp[(opp["status"] == "won") & (opp["close_date"].dt.year == 2025)]["amount"].sum()
    assert 0.7 * last < metrics["pipeline_bookings_p50"] < 1.6 * last
    # same scenario, same numbers
    again = stage.run(_ctx(tmp_path / "again", small_company))
    assert again["pipeline_bookings_p50"] == metrics["pipeline_bookings_p50"]


def test_efficiency_push_raises_bookings(tmp_path, small_company):
    base = stage.run(_ctx(tmp_path / "a", small_company))
    push = stage.run(_ctx(tmp_path / "b", small_company, admin_time_reduction=0.5))
    assert push["pipeline_creation_per_week"] > base["pipeline_creation_per_week"] * 1.1
    assert push["pipeline_bookings_p50"] > base["pipeline_bookings_p50"]


def test_stage_capacity_mode(tmp_path, small_company):
    from salesops_models.pipeline.config import CapacityConfig

    ctx = _ctx(tmp_path, small_company, capacity=CapacityConfig(enabled=True, trials=2, effort_hours=0.01))
    metrics = stage.run(ctx)
    cap = ctx.read_table("pipeline_capacity_summary")
    assert len(cap) == len(small_company.reps) and (cap["utilisation"] < 0.05).all()
    assert metrics["pipeline_capacity_bookings_p50"] > 0
    # capacity does not bind: the simpy median is in the vectorised P10-P90 band, widened for 2 trials
    assert 0.8 * metrics["pipeline_bookings_p10"] < metrics["pipeline_capacity_bookings_p50"]
    assert metrics["pipeline_capacity_bookings_p50"] < 1.2 * metrics["pipeline_bookings_p90"]


def test_creation_follows_the_accounts(tmp_path, small_company):
    ctx = _ctx(tmp_path, small_company)
    acc = small_company.accounts.dropna(subset=["owner_rep_id"])
    reps = sorted(acc["owner_rep_id"].unique())
    # hand every account of the second rep to the first
    new = acc["owner_rep_id"].where(acc["owner_rep_id"] != reps[1], reps[0])
    ctx.write_table(
        "assignments",
        pd.DataFrame({"account_id": acc["account_id"], "rep_id": new, "previous_rep_id": acc["owner_rep_id"]}),
    )
    metrics = stage.run(ctx)
    creation = ctx.read_table("pipeline_creation").set_index("rep_id")
    assert metrics["pipeline_response_source"] == "default"  # 6 reps: too few to calibrate
    # default response (creation ~ potential x hours): the second rep's accounts keep their creation,
    # now at the first rep's hours; the second rep, without accounts, creates nothing
    a, b = creation.loc[reps[0]], creation.loc[reps[1]]
    assert b["rate_plan"] == 0.0
    expected = a["rate_history"] + b["rate_history"] * a["hours_after"] / b["hours_before"]
    assert a["rate_plan"] == pytest.approx(expected)
    summary = ctx.read_table("pipeline_summary").set_index("rep_id")
    opp = small_company.opportunities
    open_b = ((opp["status"] == "open") & (opp["rep_id"] == reps[1])).sum()
    assert open_b > 0 and summary.loc[reps[1], "open_deals"] == 0, "his open deals moved with the accounts"


def test_scenario_rejects_unknown_key():
    with pytest.raises(ValueError, match="trails"):
        PipelineConfig.model_validate({"trails": 10})


@pytest.fixture(scope="module")
def capacity_setup(small_company):
    c = small_company
    cal = calibrate_pipeline(c.opportunities, c.stage_history, c.reps, c.stages, c.as_of)
    deals = open_pipeline(cal, c.opportunities, c.stage_history, c.stages)
    edges = pd.date_range("2026-01-01", "2026-07-01", freq="QS")
    return cal, deals, compile_inputs(cal, deals, edges)


def test_simpy_agrees_with_vectorised_where_capacity_does_not_bind(capacity_setup):
    cal, _, inp = capacity_setup
    vec = simulate_pipeline(inp, cal.rep_ids, trials=600, block_size=200, seed=4).summary()
    cap_result = simulate_capacity(
        inp,
        cal.rep_ids,
        selling_hours=np.full(len(cal.rep_ids), 30.0),
        effort_hours=effort_vector(cal, 0.01),
        trials=30,
        seed=5,
    )
    cap = cap_result.summary()
    assert cap["utilisation"] < 0.01 and cap["queue_days_mean"] < 0.05
    z = (cap["bookings_mean"] - vec["bookings_mean"]) / np.hypot(cap["bookings_se"], vec["bookings_se"])
    assert abs(z) < 3, z
    assert cap["win_rate"] == pytest.approx(vec["win_rate"], abs=0.03)


def test_binding_capacity_delays_bookings_and_admin_cut_helps(capacity_setup):
    cal, _, inp = capacity_setup
    n = len(cal.rep_ids)
    effort = effort_vector(cal, {s: 8.0 for s in cal.states[: cal.n_open]})
    tight = simulate_capacity(
        inp, cal.rep_ids, selling_hours=np.full(n, 12.0), effort_hours=effort, trials=6, seed=6
    )
    loose = simulate_capacity(
        inp, cal.rep_ids, selling_hours=np.full(n, 12.0 + 0.5 * 14.0), effort_hours=effort, trials=6, seed=6
    )
    free = simulate_capacity(
        inp,
        cal.rep_ids,
        selling_hours=np.full(n, 30.0),
        effort_hours=effort_vector(cal, 0.01),
        trials=6,
        seed=6,
    )
    t, lo, f = tight.summary(), loose.summary(), free.summary()
    assert t["utilisation"] > 0.8 and t["queue_days_mean"] > 5
    assert t["bookings_mean"] < lo["bookings_mean"] < f["bookings_mean"]
    for routing in ("round_robin", "capacity_aware"):
        r = simulate_capacity(
            inp,
            cal.rep_ids,
            selling_hours=np.full(n, 12.0),
            effort_hours=effort,
            trials=2,
            seed=6,
            routing=routing,
        )
        assert r.bookings.shape == (2, n, 2) and r.summary()["bookings_mean"] > 0
