"""The quota stage on a small sample company: tables, metrics, target and distribution sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.scenario import Scenario
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.stages import quota as quota_stage

CONTRACT_METRICS = ("quota_total", "quota_method", "quota_p_attain_spread", "quota_equal_chance_p")


@pytest.fixture(scope="module")
def company(small_company):
    return small_company  # conftest: seed 3, 150 accounts, 6 reps, 2 regions, 2 years


def ctx_for(company, tmp_path, **scenario) -> StageContext:
    sc = Scenario.model_validate({"name": "t", **scenario})
    return StageContext(sc, tmp_path, "quota", {"company": company})


def test_stage_without_upstream_tables(company, tmp_path):
    ctx = ctx_for(company, tmp_path)
    m = quota_stage.run(ctx)
    for k in CONTRACT_METRICS:
        assert k in m
    q = ctx.read_table("quotas")
    py = company.bookings[pd.to_datetime(company.bookings["month"]).dt.year == 2025]["amount"].sum()
    assert m["quota_target_source"] == "prior_year_growth"
    assert m["quota_company_target"] == pytest.approx(py * 1.1)
    assert q["quota"].sum() == pytest.approx(py * 1.1, abs=1e-6)
    assert set(q["rep_id"]) == set(company.reps["rep_id"])
    assert {"fair_share", "share_potential", "binding_bounds", "p_attain", "ramp_factor"} <= set(q.columns)
    per = ctx.read_table("quotas_by_period")
    months = per[per["period_type"] == "month"].groupby("rep_id")["quota"].sum()
    assert (months.reindex(q["rep_id"]).to_numpy() - q["quota"].to_numpy()) == pytest.approx(0.0, abs=1e-6)
    fair = ctx.read_table("quota_fairness")
    assert set(fair["method"]) == {"top_down", "even", "bottom_up", "optimised", "equal_chance"}
    assert m["quota_distribution_source"] == "parametric_lognormal"
    assert 0 < m["quota_equal_chance_p"] < 1
    cap = ctx.read_table("quota_capacity")
    assert len(cap) == 12


def test_stage_with_samples_and_scenario_target(company, tmp_path):
    rng = np.random.default_rng(0)
    reps = list(company.reps["rep_id"])
    trials = 500
    samples = pd.DataFrame(
        {
            "trial": np.repeat(np.arange(trials), len(reps)),
            "rep_id": reps * trials,
            "bookings": rng.lognormal(np.log(500_000), 0.3, trials * len(reps))
            * np.tile(np.linspace(0.5, 2, len(reps)), trials),
        }
    )
    ctx = ctx_for(company, tmp_path, company_target=5_000_123.0, quota={"method": "equal_chance"})
    ctx.write_table("rep_bookings_samples", samples)
    m = quota_stage.run(ctx)
    assert m["quota_target_source"] == "scenario"
    assert m["quota_distribution_source"] == "rep_bookings_samples"
    q = ctx.read_table("quotas")
    assert q["quota"].sum() == pytest.approx(5_000_123.0, abs=1e-6)
    # equal chance: every rep's probability close to the common p (rounding to 1,000 and 500 trials)
    assert m["quota_p_attain_spread"] < 0.02
    fair = ctx.read_table("quota_fairness").set_index("method")
    assert fair.loc["even", "p_attain_spread"] > 0.5


@pytest.mark.parametrize(
    ("rep_level", "company_level", "prefix"), [("rep", "company", ""), ("region/rep_id", "total", "North/")]
)
def test_stage_with_forecast_table_and_moves(company, tmp_path, rep_level, company_level, prefix):
    reps = [str(r) for r in company.reps["rep_id"]]
    months = pd.date_range("2026-01-01", periods=12, freq="MS")
    rows = []
    for r_i, r in enumerate(reps):
        mu = 40_000.0 * (1 + r_i / 4)
        for mth in months:
            rows.append(
                {
                    "level": rep_level,
                    "series": prefix + r,
                    "month": mth,
                    "model": "ets",
                    "mean": mu,
                    "q05": mu * 0.6,
                    "q10": mu * 0.7,
                    "q25": mu * 0.85,
                    "q50": mu,
                    "q75": mu * 1.15,
                    "q90": mu * 1.3,
                    "q95": mu * 1.4,
                }
            )
    fc = pd.DataFrame(rows)
    comp = fc.groupby("month", as_index=False)[
        ["mean", "q05", "q10", "q25", "q50", "q75", "q90", "q95"]
    ].sum()
    fc = pd.concat(
        [fc, comp.assign(level=company_level, series=company_level, model="ets")], ignore_index=True
    )
    acc = company.accounts
    a = acc[acc["owner_rep_id"] == reps[0]]["account_id"].iloc[0]
    ctx = ctx_for(
        company,
        tmp_path,
        quota={
            "method": "top_down",
            "seasonality": "forecast",
            "account_moves": [{"account_id": a, "to_rep_id": reps[1], "effective_date": "2026-07-01"}],
        },
    )
    ctx.write_table("forecast_reconciled", fc)
    m = quota_stage.run(ctx)
    assert m["quota_target_source"] == "forecast_reconciled"
    assert m["quota_company_target"] == pytest.approx(fc[fc.level == rep_level]["mean"].sum())
    assert m["quota_distribution_source"] == "forecast_reconciled"
    q = ctx.read_table("quotas").set_index("rep_id")
    assert m["quota_relief_total"] > 0
    assert q.loc[reps[0], "relief"] == pytest.approx(-m["quota_relief_total"])
    assert q["quota"].sum() == pytest.approx(m["quota_company_target"], abs=1e-6)
    per = ctx.read_table("quotas_by_period")
    months_sum = per[per["period_type"] == "month"].groupby("rep_id")["quota"].sum()
    assert months_sum.reindex(q.index).to_numpy() == pytest.approx(q["quota"].to_numpy(), abs=1e-6)


def test_stage_reads_assignments_and_new_reps(company, tmp_path):
    acc = company.accounts[["account_id", "owner_rep_id"]].astype(str)
    asg = pd.DataFrame({"account_id": acc["account_id"], "rep_id": acc["owner_rep_id"]})
    moved = asg.index[:40]
    asg.loc[moved, "rep_id"] = "NEW1"
    ctx = ctx_for(company, tmp_path, quota={"method": "optimised"})
    ctx.write_table("assignments", asg)
    ctx.write_table("territory_new_reps", pd.DataFrame({"rep_id": ["NEW1"], "region": ["North"]}))
    m = quota_stage.run(ctx)
    q = ctx.read_table("quotas").set_index("rep_id")
    assert "NEW1" in q.index
    assert 0 < q.loc["NEW1", "ramp_factor"] < 1  # hired on January 1st of the plan year, ramping
    pot = company.accounts.set_index("account_id")["potential"]
    assert q.loc["NEW1", "potential"] == pytest.approx(pot.loc[asg.loc[moved, "account_id"]].sum())
    assert q.loc["NEW1", "quota"] > 0
    assert q.loc["NEW1", "quota"] <= q.loc["NEW1", "fair_share"] + 1e-6  # ramp cap of the MILP
    assert q["quota"].sum() == pytest.approx(m["quota_company_target"], abs=1e-6)


def test_stage_target_ambition_and_unreachable_target(company, tmp_path):
    from salesops_models.errors import InfeasibleError

    py = float(company.bookings[pd.to_datetime(company.bookings["month"]).dt.year == 2025]["amount"].sum())
    p = []
    for i, growth in enumerate((0.0, 0.2)):
        ctx = ctx_for(
            company, tmp_path / str(i), company_target=py * (1 + growth), quota={"compare_methods": False}
        )
        p.append(quota_stage.run(ctx)["quota_equal_chance_p"])
    assert p[0] > p[1]  # a higher target leaves every rep a smaller chance
    ctx = ctx_for(company, tmp_path / "x", company_target=py * 5)
    with pytest.raises(InfeasibleError, match=r"Smallest relaxation: set quota.growth_max >= \+"):
        quota_stage.run(ctx)
