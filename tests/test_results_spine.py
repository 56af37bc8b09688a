"""The results spine: never overwrite, stay inside the results folder, a failure is recorded."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from salesops_models.errors import SalesopsError
from salesops_models.scenario import load_scenario
from salesops_models.workflow import runner
from salesops_models.workflow.results import new_batch_dir, scenario_dir


def test_batch_dirs_are_never_reused(tmp_path):
    a = new_batch_dir(tmp_path)
    b = new_batch_dir(tmp_path)
    assert a != b and a.is_dir() and b.is_dir()
    new_batch_dir(tmp_path, "fixed")
    with pytest.raises(SalesopsError, match="never overwrites"):
        new_batch_dir(tmp_path, "fixed")


@pytest.mark.parametrize("name", ["..", "../x", "a/../../b", "/abs"])
def test_scenario_dir_refuses_escapes(tmp_path, name):
    with pytest.raises(SalesopsError):
        scenario_dir(tmp_path, name)


@pytest.fixture()
def tiny_scenario(tmp_path):
    f = tmp_path / "tiny.yaml"
    f.write_text("name: tiny\ndata: {sample: {n_accounts: 120, n_reps: 5, n_regions: 2, years: 2}}\n")
    return load_scenario(f)


def test_data_stage_writes_metrics_and_resolved_scenario(tmp_path, tiny_scenario):
    out = scenario_dir(new_batch_dir(tmp_path / "results"), "tiny")
    outcome = runner.run_scenario(tiny_scenario, out, stages=["data"])
    assert outcome.status == "ok", outcome.error
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["data_reps"] == 5
    assert 0 < metrics["kpi_win_rate"] < 1
    assert (out / "scenario.resolved.yaml").exists() and (out / "logs" / "run.log").exists()
    assert (out / "data" / "company.json").exists()  # cached for later stages / notebooks
    assert len(pd.read_parquet(out / "kpi_by_rep.parquet")) == 5


def test_a_failing_stage_is_recorded_not_raised(tmp_path, tiny_scenario, monkeypatch):
    def boom(ctx):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(runner, "stage_function", lambda name: boom)
    out = tmp_path / "tiny"
    outcome = runner.run_scenario(tiny_scenario, out, stages=["data"])
    assert outcome.status == "failed" and "solver exploded" in outcome.error
    assert json.loads((out / "metrics.json").read_text())["status"] == "failed"
    assert "solver exploded" in (out / "logs" / "run.log").read_text()


def test_same_seed_same_metrics(tmp_path, tiny_scenario):
    m1 = runner.run_scenario(tiny_scenario, tmp_path / "a", stages=["data"]).metrics
    m2 = runner.run_scenario(tiny_scenario, tmp_path / "b", stages=["data"]).metrics
    drop = {"scenario", "data_stage_seconds"}
    assert {k: v for k, v in m1.items() if k not in drop} == {k: v for k, v in m2.items() if k not in drop}
