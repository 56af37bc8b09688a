"""The whole chain on a small scenario: what each stage hands the next, checked against the tables.

The scenario plans one hire (``data.hires``) and places one rep by territory design
(``territory.new_reps``). Its territory solve is proven optimal (``mip_gap: 0``), so the plan does
not depend on how fast the machine is; that is what the byte-for-byte check relies on until the
territory heuristics stop on work limits (the ``terralign`` branch).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from salesops_models.scenario import load_scenario
from salesops_models.workflow.contracts import STAGE_ORDER, all_contracts, writers
from salesops_models.workflow.runner import run_scenario

SCENARIO = {
    "name": "chain",
    "seed": 17,
    "plan_year": 2026,
    "data": {
        "sample": {"seed": 3, "n_accounts": 80, "n_reps": 5, "n_regions": 2, "years": 2},
        "hires": [{"region": "West", "count": 1, "start_month": 3}],
    },
    "territory": {"time_limit": 60, "mip_gap": 0.0, "heuristic_seconds": 0.2, "new_reps": 1},
    "forecast": {"backtest_folds": 1},
    "pipeline": {"trials": 100, "block_size": 50},
    "quota": {"over_assignment": 0.05},
    "compensation": {"n_trials": 200},
}

#: values of ``*_source`` metrics that name no table: the scenario, a fallback or a method
NOT_TABLES = {
    "scenario",
    "prior_year_growth",
    "parametric",
    "parametric_lognormal",
    "ttm",
    "fallback_quota",
    "bookings_last_12_months",
    "bookings_seasonality",
    "equal",
    "calibrated",
    "default",
    "prior_year_per_ramped_rep",
    "rep_sum",
}


def _run(folder):
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "chain.yaml"
    f.write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    out = run_scenario(load_scenario(f), folder / "chain")
    assert out.status == "ok", out.error
    return out


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("chain") / "a")


def table(run, name: str) -> pd.DataFrame:
    return pd.read_parquet(run.out_dir / f"{name}.parquet")


@pytest.mark.slow
def test_every_rep_with_accounts_has_samples_a_quota_and_a_commission(chain):
    asg = table(chain, "assignments")
    reps = set(asg["rep_id"].astype(str))
    assert {"NEW01", "NEW001"} <= reps, "the planned hire and the placed rep both got accounts"
    samples = table(chain, "rep_bookings_samples")
    per_rep = samples.groupby("rep_id")["bookings"].agg(["size", "mean"])
    assert reps <= set(per_rep.index) and (per_rep.loc[sorted(reps), "size"] == 100).all()
    assert (per_rep.loc[sorted(reps), "mean"] > 0).all()
    quotas = table(chain, "quotas").set_index("rep_id")
    assert reps <= set(quotas.index) and (quotas.loc[sorted(reps), "quota"] > 0).all()
    payouts = table(chain, "payouts_summary").set_index("rep_id")
    assert reps <= set(payouts.index) and (payouts.loc[sorted(reps), "payout_p50"] > 0).all()


@pytest.mark.slow
def test_quotas_add_up_to_the_target_with_over_assignment(chain):
    m = chain.metrics
    quotas = table(chain, "quotas")
    assert quotas["quota"].sum() == pytest.approx(m["quota_company_target"] * 1.05, rel=1e-12, abs=1e-6)
    per = table(chain, "quotas_by_period")
    months = per[per["period_type"] == "month"].groupby("rep_id")["quota"].sum()
    before_relief = quotas.set_index("rep_id")["quota_before_relief"]
    assert months.reindex(before_relief.index).to_numpy() == pytest.approx(before_relief.to_numpy(), abs=1e-6)


@pytest.mark.slow
def test_moved_accounts_take_their_open_deals_along(chain):
    from salesops_models.data.company import CompanyData

    company = CompanyData.from_dir(chain.out_dir / "data")
    asg = table(chain, "assignments").set_index("account_id")
    old = company.accounts.set_index("account_id")["owner_rep_id"].astype(str)
    opp = company.opportunities[company.opportunities["status"] == "open"]
    acc = opp["account_id"].astype(str)
    follows = (opp["rep_id"].astype(str) == acc.map(old)) & acc.map(asg["rep_id"]).notna()
    owner = np.where(follows, acc.map(asg["rep_id"]), opp["rep_id"].astype(str))
    assert (owner != opp["rep_id"].astype(str)).sum() > 0, "the plan moves accounts with open deals"
    expected = pd.Series(owner).value_counts()
    got = table(chain, "pipeline_summary").set_index("rep_id")["open_deals"]
    assert got.reindex(expected.index).to_dict() == expected.to_dict()
    assert got.sum() == len(opp)


@pytest.mark.slow
def test_the_blend_acted_and_the_target_is_the_reconciled_forecast(chain):
    m = chain.metrics
    assert m["reconcile_blended"] is True and m["reconcile_source"] == "forecast/pipeline_by_month"
    rec = table(chain, "forecast_reconciled")
    fc = table(chain, "forecast")
    company_rec = rec[rec["level"] == "company"]["mean"].sum()
    assert m["quota_company_target"] == pytest.approx(company_rec, rel=1e-12)
    assert company_rec != pytest.approx(fc[fc["level"] == "company"]["mean"].sum(), rel=1e-9)
    assert m["quota_target_source"] == "forecast_reconciled"


@pytest.mark.slow
def test_each_source_names_its_real_upstream(chain):
    m = chain.metrics
    contracts = all_contracts()
    writer_of = writers(contracts)
    stage_of = {s: i for i, s in enumerate(STAGE_ORDER)}
    sources = {k: v for k, v in m.items() if k.endswith("_source")}
    assert {"quota_target_source", "quota_distribution_source", "comp_attainment_source"} <= set(sources)
    prefix = {"comp": "compensation"}
    for key, value in sources.items():
        stage = prefix.get(key.split("_")[0], key.split("_")[0])
        for part in str(value).replace(":", "/").split("/"):
            if part in NOT_TABLES:
                continue
            assert part in writer_of, f"{key}={value}: '{part}' is neither a table nor a known fallback"
            assert (chain.out_dir / f"{part}.parquet").exists(), f"{key}: table {part} was never written"
            assert stage_of[writer_of[part]] < stage_of[stage], f"{key}: {part} is written after {stage}"
            assert contracts[stage].can_read(part), f"{key}: stage {stage} does not declare {part}"
    assert sources["quota_distribution_source"] == "rep_bookings_samples"
    assert sources["comp_attainment_source"] == "rep_bookings_samples/quotas"
    # the samples are what P(attain) was computed from, the quotas what the payouts divide by
    samples = table(chain, "rep_bookings_samples")
    quotas = table(chain, "quotas").set_index("rep_id")
    p = (
        samples.assign(q=samples["rep_id"].map(quotas["quota"]))
        .eval("bookings >= q")
        .groupby(samples["rep_id"])
        .mean()
    )
    assert p.reindex(quotas.index).to_numpy() == pytest.approx(quotas["p_attain"].to_numpy(), abs=1e-12)
    payouts = table(chain, "payouts_summary").set_index("rep_id")
    att = (
        samples.assign(a=samples["bookings"] / samples["rep_id"].map(quotas["quota"]))
        .groupby("rep_id")["a"]
        .median()
    )
    assert payouts["attainment_p50"].to_numpy() == pytest.approx(
        att.reindex(payouts.index).to_numpy(), rel=1e-9
    )


@pytest.mark.slow
def test_provenance_and_timings_apart(chain):
    resolved = yaml.safe_load((chain.out_dir / "scenario.resolved.yaml").read_text())
    libs = resolved["_provenance"]["libraries"]
    for name in ("python", "numpy", "pandas", "scipy", "statsmodels", "pyomo", "highspy"):
        assert libs[name], name
    metrics = json.loads((chain.out_dir / "metrics.json").read_text())
    assert not [k for k in metrics if k.endswith("_seconds")], "wall times belong in timings.json"
    timings = json.loads((chain.out_dir / "timings.json").read_text())
    assert {f"{s}_stage_seconds" for s in STAGE_ORDER} <= set(timings)


BURNER = "import time\nend = time.time() + 600\nwhile time.time() < end:\n    sum(range(10000))\n"


@pytest.mark.slow
def test_same_scenario_twice_beside_a_busy_process_gives_the_same_metrics(chain, tmp_path):
    """Run it again while a CPU-bound process competes for the cores: metrics.json byte for byte."""
    burner = subprocess.Popen([sys.executable, "-c", BURNER])
    try:
        again = _run(tmp_path / "b")
    finally:
        burner.kill()
        burner.wait()
    first = (chain.out_dir / "metrics.json").read_bytes()
    assert (again.out_dir / "metrics.json").read_bytes() == first
    for name in ("assignments", "forecast_reconciled", "rep_bookings_samples", "quotas", "comp_cost_samples"):
        pd.testing.assert_frame_equal(table(again, name), table(chain, name))
