"""Stage contracts: the order is checked before anything runs, stages keep to their declarations, docs follow."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from salesops_models.errors import StageOrderError
from salesops_models.scenario import Scenario
from salesops_models.workflow import contracts, runner
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import (
    STAGE_ORDER,
    ContractViolation,
    all_contracts,
    check_run_order,
    contracts_markdown,
    generated_block,
    writers,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "STAGES.md"


def test_stages_doc_is_generated_from_the_declarations():
    text = DOCS.read_text(encoding="utf-8")
    assert generated_block(text) == contracts_markdown(), (
        "docs/STAGES.md is out of date: run python -m salesops_models.workflow.contracts docs/STAGES.md"
    )


def test_every_table_has_one_writer_and_every_read_a_writer():
    c = all_contracts()
    w = writers(c)  # raises when two stages write one table
    for stage, contract in c.items():
        for table in (*contract.reads, *contract.uses):
            assert table in w, f"stage {stage} reads {table}, which no stage writes"
    check_run_order(list(STAGE_ORDER), c)  # the shipped order passes


def test_a_read_whose_writer_runs_later_is_refused_naming_both_stages():
    # the old order of break 5: the forecast read the pipeline's projection, but ran before it
    c = dict(all_contracts())
    c["forecast"] = dataclasses.replace(c["forecast"], uses=(*c["forecast"].uses, "pipeline_by_month"))
    order = ["data", "territory", "forecast", "pipeline", "reconcile", "quota", "compensation"]
    with pytest.raises(StageOrderError) as info:
        check_run_order(order, c)
    msg = str(info.value)
    assert (
        "stage 'forecast' reads table 'pipeline_by_month'" in msg
        and "stage 'pipeline' writes it only later" in msg
    )


def test_a_required_read_without_writer_in_the_run_is_refused():
    with pytest.raises(
        StageOrderError, match=r"stage 'quota' needs table 'company', written by stage 'data'"
    ):
        check_run_order(["quota"])
    check_run_order(["data", "quota"])  # optional tables of left-out stages are fine: quota falls back


def test_runner_refuses_before_running_anything(tmp_path, monkeypatch):
    real = contracts.stage_contract

    def patched(stage: str):
        c = real(stage)
        return dataclasses.replace(c, reads=(*c.reads, "quotas")) if stage == "forecast" else c

    monkeypatch.setattr(contracts, "stage_contract", patched)
    monkeypatch.setattr(
        runner,
        "check_run_order",
        lambda stages: check_run_order(stages, {s: patched(s) for s in STAGE_ORDER}),
    )
    sc = Scenario.model_validate(
        {"name": "t", "data": {"sample": {"n_accounts": 30, "n_reps": 3, "n_regions": 1}}}
    )
    with pytest.raises(StageOrderError, match=r"stage 'forecast' reads table 'quotas', but stage 'quota'"):
        runner.run_scenario(sc, tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing may run, nothing may be written"


def _ctx(tmp_path, company, stage: str) -> StageContext:
    sc = Scenario.model_validate({"name": "t"})
    return StageContext(sc, tmp_path, "data", {"company": company}).for_stage(
        stage, contracts.stage_contract(stage)
    )


def test_a_running_stage_cannot_read_write_or_configure_outside_its_contract(tmp_path, small_company):
    ctx = _ctx(tmp_path, small_company, "forecast")
    assert ctx.company is small_company and ctx.scenario.forecast.model
    ctx.write_table("forecast", pd.DataFrame({"x": [1]}))
    with pytest.raises(ContractViolation, match="stage 'forecast' read table 'rep_bookings_samples'"):
        ctx.read_table("rep_bookings_samples")
    with pytest.raises(ContractViolation, match="stage 'forecast' wrote table 'quotas'"):
        ctx.write_table("quotas", pd.DataFrame({"x": [1]}))
    with pytest.raises(ContractViolation, match="stage 'forecast' read scenario key 'quota'"):
        _ = ctx.scenario.quota
    reconcile = _ctx(tmp_path, small_company, "reconcile")
    with pytest.raises(ContractViolation, match="table 'company'"):
        _ = reconcile.company


def test_stage_seeds_are_fixed_per_stage_not_by_position():
    from salesops_models.workflow.context import stage_seed

    keys = {s: stage_seed(1, s).spawn_key for s in STAGE_ORDER}
    assert len(set(keys.values())) == len(STAGE_ORDER)
    # the stages that existed before 'reconcile' keep the streams they had by position
    for i, s in enumerate(("data", "territory", "forecast", "pipeline", "quota", "compensation")):
        assert keys[s] == (i,)


def test_the_reports_know_which_stage_writes_each_table():
    from salesops_models.workflow.collect import TABLE_STAGE, TABLES

    w = writers(all_contracts())
    for key, stage in TABLE_STAGE.items():
        assert w.get(TABLES[key]) == stage, (
            f"collect.TABLE_STAGE[{key!r}] = {stage!r}, the contracts say {w.get(TABLES[key])!r}"
        )


def test_validate_refuses_a_scenario_whose_stages_cannot_run_in_order(tmp_path, monkeypatch):
    from salesops_models.workflow import preflight

    f = tmp_path / "s.yaml"
    f.write_text("name: s\n")
    assert not preflight.check_scenarios([f]).errors
    c = dict(all_contracts())
    c["forecast"] = dataclasses.replace(c["forecast"], reads=(*c["forecast"].reads, "quotas"))
    monkeypatch.setattr(contracts, "all_contracts", lambda: c)
    errors = preflight.check_scenarios([f]).errors
    assert len(errors) == 1 and "s.yaml" in errors[0] and "stage 'forecast' reads table 'quotas'" in errors[0]
