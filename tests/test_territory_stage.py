"""The `territory` stage: tables, metric names and figures of the stage contract (docs/STAGES.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.scenario import Scenario
from salesops_models.territory.config import BalanceMetricConfig, TerritoryConfig
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.stages import territory as stage


def _ctx(tmp_path, company, **territory):
    sc = Scenario(name="t", territory=TerritoryConfig(**territory))
    return StageContext(sc, tmp_path, "territory", {"company": company})


def test_stage_writes_the_contract(tmp_path, small_company):
    ctx = _ctx(tmp_path, small_company, candidate_k=None, tradeoff_budgets=[0.3, 0.1])
    metrics = stage.run(ctx)
    for key in (
        "territory_status",
        "territory_mip_gap",
        "territory_balance_max_min",
        "territory_balance_cv",
        "territory_disruption_share",
        "territory_seconds",
    ):
        assert key in metrics
    assert metrics["territory_status"] in ("optimal", "feasible", "relaxed")
    asg = ctx.read_table("assignments")
    assert {"account_id", "rep_id", "previous_rep_id", "moved", "workload_hours", "potential"} <= set(
        asg.columns
    )
    assert len(asg) == len(small_company.accounts) and asg["account_id"].is_unique
    ter = ctx.read_table("territories")
    for col in ("rep_id", "workload_hours", "workload_hours_target", "workload_hours_deviation", "travel"):
        assert col in ter.columns
    assert {"accounts_in", "accounts_out"} <= set(ter.columns)
    assert ter["accounts_in"].sum() == asg["moved"].sum()
    if metrics["territory_status"] in ("optimal", "feasible"):
        assert ter["workload_hours_deviation"].abs().max() <= 0.10 + 1e-6
        assert ter["potential_deviation"].abs().max() <= 0.15 + 1e-6
    # the share of value that moved, recomputed from the table
    owned = asg["previous_rep_id"].notna()
    value = (
        small_company.accounts.set_index("account_id").loc[asg["account_id"], "revenue_last_year"].to_numpy()
    )
    share = value[asg["moved"].to_numpy()].sum() / value[owned.to_numpy()].sum()
    assert metrics["territory_disruption_share"] == pytest.approx(share)
    for fig in ("territory_map", "territory_balance", "territory_tradeoff"):
        assert ctx.figure_path(fig).stat().st_size > 1000
    curve = ctx.read_table("territory_tradeoff")
    assert (curve["disruption_share"] <= curve["budget"] + 1e-9).all()


def test_locked_segments_stay_and_move_cap_holds(tmp_path, small_company):
    seg = small_company.accounts["segment"].dropna().iloc[0]
    ctx = _ctx(tmp_path, small_company, lock_segments=[seg], max_moved_share=0.1)
    stage.run(ctx)
    asg = ctx.read_table("assignments").merge(
        small_company.accounts[["account_id", "segment"]], on="account_id"
    )
    locked = asg[asg["segment"] == seg]
    assert (locked["rep_id"] == locked["previous_rep_id"]).all()
    assert asg["moved"].sum() <= int(0.1 * len(asg))


def test_impossible_tolerance_is_diagnosed_not_raised(tmp_path, small_company):
    ctx = _ctx(
        tmp_path,
        small_company,
        balance=[BalanceMetricConfig(column="revenue_last_year", tolerance=0.0)],
        candidate_k=2,
    )
    metrics = stage.run(ctx)
    assert metrics["territory_status"] == "relaxed"
    relax = ctx.read_table("territory_relaxation")
    row = relax.set_index("constraint").loc["tolerance[revenue_last_year]"]
    assert row["binding"] and row["required"] > 0
    diag = ctx.read_table("territory_diagnosis")
    assert set(diag["metric"]) == {"revenue_last_year"} and np.isfinite(diag["outside_share"]).all()
    assert isinstance(metrics["territory_relaxation_needed"], str)
    assert pd.notna(metrics["territory_balance_cv"])


def test_growth_scenario_places_new_reps_and_gives_them_accounts(tmp_path, small_company):
    ctx = _ctx(tmp_path, small_company, new_reps=2)
    metrics = stage.run(ctx)
    new = ctx.read_table("territory_new_reps")
    assert list(new["rep_id"]) == ["NEW001", "NEW002"] and metrics["territory_new_reps"] == 2
    ter = ctx.read_table("territories").set_index("rep_id")
    assert len(ter) == len(small_company.reps) + 2
    # capacity-weighted targets: the new full-time reps carry a full share of the workload
    assert (ter.loc[["NEW001", "NEW002"], "accounts"] > 0).all()


def test_stage_twice_gives_the_same_tables_and_metrics(tmp_path, small_company):
    runs = []
    for i in range(2):
        ctx = _ctx(tmp_path / str(i), small_company)
        metrics = stage.run(ctx)
        runs.append((ctx.read_table("assignments"), ctx.read_table("territories"), metrics))
    (a0, t0, m0), (a1, t1, m1) = runs
    pd.testing.assert_frame_equal(a0, a1, check_exact=True)
    pd.testing.assert_frame_equal(t0, t1, check_exact=True)
    clock = {k for k in m0 if k.endswith("_seconds")}
    assert {k: v for k, v in m0.items() if k not in clock} == {k: v for k, v in m1.items() if k not in clock}
    assert m0["territory_time_limit_hit"] is False


def test_stage_without_coordinates_balances_without_travel(tmp_path, small_company):
    import dataclasses

    accounts = small_company.accounts.drop(columns=["lat", "lon"])
    company = dataclasses.replace(small_company, accounts=accounts)
    ctx = _ctx(tmp_path, company, tradeoff_budgets=[0.3])
    metrics = stage.run(ctx)
    assert metrics["territory_status"] in ("optimal", "feasible")
    assert metrics["territory_travel_basis"] == "none"
    assert "without travel" in metrics["territory_data_notes"]
    ter = ctx.read_table("territories")
    assert ter["workload_hours_deviation"].abs().max() <= 0.10 + 1e-6
    assert ter["potential_deviation"].abs().max() <= 0.15 + 1e-6
    assert (ctx.read_table("assignments")["travel"] == 0).all()
    assert not ctx.figure_path("territory_map").exists()  # no map without locations
    assert ctx.figure_path("territory_balance").stat().st_size > 1000


@pytest.mark.benchmarkdata
def test_stage_runs_on_the_maven_export(tmp_path, maven):
    """Maven: no locations, no potential, workload or revenue, no owners: balanced on account counts."""
    ctx = _ctx(tmp_path, maven)
    metrics = stage.run(ctx)
    assert metrics["territory_travel_basis"] == "none"
    assert "account counts" in metrics["territory_data_notes"]
    ter = ctx.read_table("territories")
    assert ter["accounts"].sum() == len(maven.accounts) == 85
    # 85 accounts over 35 reps is 2.43 each: +-10% holds no integer, so the nearest plan (2 or 3 each,
    # +23.5%) comes back as "relaxed" with the tolerance it needs, not as an error
    assert metrics["territory_status"] == "relaxed"
    assert set(ter["accounts"]) == {2, 3}
    need = ctx.read_table("territory_relaxation").set_index("constraint").loc["tolerance[account_count]"]
    assert need["required"] == pytest.approx(3 / (85 / 35) - 1)


def test_stage_with_contiguity_connects_every_territory(tmp_path, small_company):
    ctx = _ctx(tmp_path, small_company, contiguity=True, candidate_k=4)
    metrics = stage.run(ctx)
    assert metrics["territory_status"] in ("optimal", "feasible")
    assert metrics["territory_disconnected"] == 0
    assert ctx.read_table("territories")["pieces"].eq(1).all()
    assert ctx.figure_path("territory_map").stat().st_size > 1000


def test_stage_reads_an_adjacency_file_and_refuses_unknown_units(tmp_path, small_company):
    ids = small_company.accounts["account_id"].tolist()
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"a": ids[:-1] + ["NOPE"], "b": ids[1:] + [ids[0]]}).to_csv(path, index=False)
    ctx = _ctx(tmp_path, small_company, contiguity=True, adjacency=str(path))
    from salesops_models.errors import DataValidationError

    with pytest.raises(DataValidationError, match="NOPE"):
        stage.run(ctx)
