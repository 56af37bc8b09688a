"""The compensation stage on a small sample company: fallbacks, pipeline input, contract tables and metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from salesops_models.compensation import AttainmentSamples, load_plan, simulate_cost
from salesops_models.data.sample import generate_sample_company
from salesops_models.errors import SalesopsError
from salesops_models.scenario import Scenario
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.stages import compensation as comp_stage

CONTRACT_METRICS = (
    "comp_cost_p50",
    "comp_cost_p90",
    "comp_cost_of_sales",
    "comp_share_at_quota",
    "comp_p90_earner",
)


@pytest.fixture(scope="module")
def company():
    return generate_sample_company(seed=3, n_accounts=200, n_reps=8, n_regions=2, years=2)


def ctx_for(company, tmp_path, **compensation) -> StageContext:
    sc = Scenario.model_validate({"name": "t", "compensation": {"n_trials": 300, **compensation}})
    return StageContext(sc, tmp_path, "compensation", {"company": company})


def test_parametric_fallback_writes_the_contract_tables(company, tmp_path):
    ctx = ctx_for(company, tmp_path)
    m = comp_stage.run(ctx)
    for k in CONTRACT_METRICS:
        assert k in m and np.isfinite(m[k])
    assert m["comp_attainment_source"] == "parametric/bookings_last_12_months"
    assert m["comp_primary_plan"] == "ae_standard"
    # the fallback is "60 % at quota": 8 reps x 300 trials
    assert abs(m["comp_share_at_quota"] - 0.6) < 3 * np.sqrt(0.24 / 2400)
    assert m["comp_cost_p50"] <= m["comp_cost_p90"]
    ps = ctx.read_table("payouts_summary")
    assert {"rep_id", "payout_p10", "payout_p50", "payout_p90", "attainment_p50"} <= set(ps.columns)
    assert set(ps["rep_id"]) == set(company.reps["rep_id"])
    cs = ctx.read_table("comp_cost_samples")
    assert {"trial", "total_cost", "revenue"} <= set(cs.columns) and len(cs) == 300
    assert m["comp_cost_of_sales"] == pytest.approx(cs["total_cost"].mean() / cs["revenue"].mean())
    table = ctx.read_table("comp_plan_comparison")
    assert set(table["mode"]) == {"comparison", "costing"}
    assert len(table[table["mode"] == "comparison"]) == 3
    assert len(table[table["mode"] == "costing"]) == 5  # the primary set + 4 costing sets
    assert table["attainment_set"].str.startswith("bimodal").any()
    weak = table[table["attainment_set"].str.startswith("weak")]["cost_mean"].iloc[0]
    strong = table[table["attainment_set"].str.startswith("strong")]["cost_mean"].iloc[0]
    assert weak < strong
    trace = ctx.read_table("comp_trace")
    assert {"component", "formula", "amount"} <= set(trace.columns) and len(trace) > 5


def test_same_seed_same_numbers(company, tmp_path):
    a = comp_stage.run(ctx_for(company, tmp_path / "a"))
    b = comp_stage.run(ctx_for(company, tmp_path / "b"))
    assert a == b


def pipeline_tables(company, trials=200):
    rng = np.random.default_rng(0)
    reps = list(company.reps["rep_id"])
    quota = np.linspace(3e5, 1.2e6, len(reps))
    samples = pd.DataFrame(
        {
            "trial": np.repeat(np.arange(trials), len(reps)),
            "rep_id": reps * trials,
            "bookings": rng.lognormal(0.0, 0.3, trials * len(reps)) * np.tile(quota, trials),
        }
    )
    return samples, pd.DataFrame({"rep_id": reps, "quota": quota})


def test_pipeline_samples_over_quotas(company, tmp_path):
    ctx = ctx_for(
        company, tmp_path, plans=["ae_retroactive_capped", "ae_standard"], quota_relief={"R001": 50_000}
    )
    samples, quotas = pipeline_tables(company)
    ctx.write_table("rep_bookings_samples", samples)
    ctx.write_table("quotas", quotas)
    m = comp_stage.run(ctx)
    assert m["comp_attainment_source"] == "rep_bookings_samples/quotas"
    assert m["comp_trials"] == 200
    # the annual primary plan recomputed directly from the same tables gives the same cost
    direct = AttainmentSamples.from_tables(samples, quotas)
    from salesops_models.compensation import CompInputs

    res = simulate_cost(load_plan("ae_retroactive_capped"), direct, CompInputs(quota_relief={"R001": 50_000}))
    assert m["comp_cost_p50"] == pytest.approx(res.summary()["cost_p50"])
    assert m["comp_share_at_quota"] == pytest.approx(res.summary()["share_at_quota"])
    ps = ctx.read_table("payouts_summary").set_index("rep_id")
    assert ps.loc["R001", "quota"] == pytest.approx(quotas["quota"].iloc[0] - 50_000)


def test_plan_files_by_path_and_primary_by_name(company, tmp_path):
    doc = load_plan("uncapped_1x_2x").model_dump(by_alias=True)
    doc["name"] = "my_plan"
    path = tmp_path / "my_plan.yaml"
    path.write_text(yaml.safe_dump(doc))
    ctx = ctx_for(
        company, tmp_path / "out", plans=["ae_standard", str(path)], primary_plan="my_plan", costing_sets=[]
    )
    m = comp_stage.run(ctx)
    assert m["comp_primary_plan"] == "my_plan"
    assert m["comp_plans_compared"] == 2


def test_missing_pipeline_tables_when_required(company, tmp_path):
    ctx = ctx_for(company, tmp_path, attainment_source="pipeline")
    with pytest.raises(SalesopsError, match="rep_bookings_samples"):
        comp_stage.run(ctx)
    with pytest.raises(SalesopsError, match="primary_plan"):
        comp_stage.run(ctx_for(company, tmp_path, primary_plan="nope"))


def test_after_the_quota_stage_uses_its_quarterly_quotas(company, tmp_path):
    from salesops_models.workflow.stages import quota as quota_stage

    sc = Scenario.model_validate({"name": "t", "compensation": {"n_trials": 200, "costing_sets": []}})
    shared = {"company": company}
    quota_stage.run(StageContext(sc, tmp_path, "quota", shared))
    m = comp_stage.run(StageContext(sc, tmp_path, "compensation", shared))
    assert m["comp_attainment_source"] == "parametric/quotas"
    assert m["comp_quarter_split_source"] == "quotas_by_period"
    ps = StageContext(sc, tmp_path, "compensation", shared).read_table("payouts_summary")
    quotas = StageContext(sc, tmp_path, "quota", shared).read_table("quotas").set_index("rep_id")["quota"]
    assert ps["quota"].to_numpy() == pytest.approx(quotas.reindex(ps["rep_id"]).to_numpy())


def test_company_history_is_loaded_only_when_a_fallback_or_a_product_plan_needs_it(company):
    """Over the quota and pipeline stages' tables a plan without product weights or SPIFs needs no
    history: a what-if on the plan then never loads (and re-aligns) the company, and its numbers
    are those of an eager call."""
    from salesops_models.compensation.config import CompensationConfig
    from salesops_models.compensation.costing import CompanyHistory, cost_scenario_plans

    samples, quotas = pipeline_tables(company)
    by_quarter = pd.DataFrame(
        [
            {"rep_id": r, "period": f"2026-Q{k}", "period_type": "quarter", "quota": q * s}
            for r, q in zip(quotas["rep_id"], quotas["quota"], strict=True)
            for k, s in zip((1, 2, 3, 4), (0.2, 0.25, 0.25, 0.3), strict=True)
        ]
    )
    history = CompanyHistory(
        [str(r) for r in company.reps["rep_id"]], company.bookings, company.opportunities, company.as_of
    )
    calls = []

    def load() -> CompanyHistory:
        calls.append(1)
        return history

    def cost(plans, source):
        cfg = CompensationConfig(n_trials=200, plans=plans, costing_sets=[])
        return cost_scenario_plans(
            cfg, history=source, seed=np.random.SeedSequence(5), quotas=quotas, quotas_by_period=by_quarter,
            samples=samples,
        )  # fmt: skip

    lazy = cost(["ae_standard", "ae_retroactive_capped"], load)
    assert calls == []
    eager = cost(["ae_standard", "ae_retroactive_capped"], history)
    pd.testing.assert_frame_equal(lazy.comparison, eager.comparison)
    pd.testing.assert_frame_equal(lazy.traces, eager.traces)
    assert lazy.quarter_split_source == "quotas_by_period"
    # a SPIF on a product needs each rep's product mix and deal sizes: loaded, once
    spif = cost(["ae_standard", "product_weighted_spif"], load)
    assert calls == [1]
    assert spif.metrics()["plans_compared"] == 2
    # without quarterly quotas the split comes from the bookings history: loaded again, once
    calls.clear()
    cfg = CompensationConfig(n_trials=200, plans=["ae_standard"], costing_sets=[])
    r = cost_scenario_plans(cfg, history=load, seed=np.random.SeedSequence(5), quotas=quotas, samples=samples)
    assert calls == [1] and r.quarter_split_source == "bookings_seasonality"
