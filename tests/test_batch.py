"""The Dask batch: validation first, one broken scenario never stops the others, results layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from salesops_models.errors import ScenarioError
from salesops_models.workflow.batch import run_batch, scenario_changes
from salesops_models.workflow.collect import load_metrics, load_table
from salesops_models.workflow.notebooks import NOTEBOOKS, tiny_scenario_path
from salesops_models.workflow.runner import available_stages


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _scenarios(tmp_path: Path) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    shutil.copy(tiny_scenario_path(), folder / "tiny.yaml")
    # A valid scenario whose territory lock names an account the generated sample lacks: nothing
    # before the run can know (validate does not generate the sample), so it fails at run time.
    _write(
        folder / "broken.yaml",
        {
            "name": "broken",
            "extends": "tiny.yaml",
            "description": "Deliberately broken: a territory lock names an account that does not exist.",
            "territory": {"locks": {"no-such-account": "no-such-rep"}},
        },
    )
    return folder


@pytest.fixture()
def scenarios(tmp_path: Path) -> Path:
    return _scenarios(tmp_path)


def test_invalid_scenario_stops_the_batch_before_anything_runs(tmp_path, scenarios):
    _write(scenarios / "typo.yaml", {"name": "typo", "extends": "tiny.yaml", "quota": {"methd": "even"}})
    _write(scenarios / "typo2.yaml", {"name": "typo2", "seeed": 3})
    out = tmp_path / "results"
    with pytest.raises(ScenarioError) as info:
        run_batch([scenarios], out, workers=1, quiet=True)
    message = str(info.value)
    assert "typo.yaml" in message and "quota.methd" in message
    assert "typo2.yaml" in message and "seeed" in message, (
        "every invalid file is reported, not just the first"
    )
    assert not out.exists() or not any(out.iterdir()), "nothing may run when a scenario is invalid"


def test_scenario_changes_lists_what_differs_from_the_base(tmp_path):
    base = _write(tmp_path / "base.yaml", {"name": "base", "seed": 1, "quota": {"over_assignment": 0.05}})
    child = _write(
        tmp_path / "child.yaml",
        {"name": "child", "extends": "base.yaml", "description": "x", "quota": {"over_assignment": 0.1}},
    )
    assert scenario_changes(base) == {"base": None, "base_file": None, "changes": []}
    info = scenario_changes(child)
    assert info["base"] == "base" and info["base_file"] == "base.yaml"
    assert info["changes"] == [{"key": "quota.over_assignment", "base": 0.05, "value": 0.1}]


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    """``salesops batch`` over the tiny scenario and a broken one, on 2 workers (run once)."""
    from salesops_models.cli import main

    tmp = tmp_path_factory.mktemp("batch")
    folder = _scenarios(tmp)
    out = tmp / "results"
    result = CliRunner().invoke(
        main, ["--quiet", "batch", str(folder), "--workers", "2", "--out", str(out), "--batch-id", "t1"]
    )
    return result, out / "t1"


@pytest.mark.slow
def test_batch_with_a_broken_scenario_completes_the_others(batch_run):
    result, batch = batch_run
    assert result.exit_code != 0, "a failed scenario must make the exit code non-zero"
    assert "broken" in result.output

    metrics = load_metrics(batch)
    assert sorted(metrics.index) == ["broken", "tiny"]
    assert metrics.at["tiny", "status"] == "ok", metrics.at["tiny", "error"]
    assert metrics.at["broken", "status"] == "failed"
    assert "no-such-account" in str(metrics.at["broken", "error"])
    summary = pd.read_parquet(batch / "summary.parquet")
    assert summary.loc["broken", "error"] and summary.loc["tiny", "status"] == "ok"

    tiny = batch / "tiny"
    assert (tiny / "scenario.resolved.yaml").exists() and (tiny / "metrics.json").exists()
    executed = sorted(p.stem for p in (tiny / "notebooks").glob("*.ipynb"))
    assert executed == sorted(spec.name for spec in NOTEBOOKS)
    report = (tiny / "report.html").read_text()
    assert "notebook_context" not in report and "<script" not in report.lower()
    assert "data:image/png;base64" in report or not available_stages()
    notebooks_page = (tiny / "notebooks.html").read_text()
    assert "notebook_context" not in notebooks_page and "<script" not in notebooks_page.lower()
    for output in ("plan.xlsx", "assignments_crm.csv", "statements/index.html"):
        assert (tiny / output).exists(), f"{output} was not written at the end of the scenario"
    timings = json.loads((tiny / "logs" / "timings.json").read_text())
    assert set(timings["notebook_seconds"]) >= {spec.name for spec in NOTEBOOKS}
    for stage in available_stages():
        assert (tiny / "stages" / f"{stage}.metrics.json").exists(), f"stage {stage} did not run in the batch"
    if "territory" in available_stages():
        assert len(load_table(batch, "assignments").loc["tiny"]) == 60

    broken = batch / "broken"
    log = (broken / "logs" / "batch.log").read_text()
    assert "failed" in log and "no-such-account" in log
    assert (broken / "notebooks" / "territory_design.ipynb").exists(), (
        "the failing notebook is kept for reading"
    )
    changes = json.loads((broken / "changes.json").read_text())
    assert changes["base"] == "tiny" and any(
        c["key"].startswith("territory.locks") for c in changes["changes"]
    )

    index = (batch / "index.html").read_text()
    assert index.count('<tr class="failed" data-key="broken">') == 1
    assert 'data-key="tiny"' in index and "no-such-account" in index


def _images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.slow
@pytest.mark.parametrize("spec", NOTEBOOKS, ids=[spec.name for spec in NOTEBOOKS])
def test_every_notebook_ran_under_papermill(batch_run, spec):
    """Each notebook of the tiny scenario ran to the end under papermill, ran its stage, drew its charts."""
    _, batch = batch_run
    tiny = batch / "tiny"
    nb = nbformat.read(tiny / "notebooks" / f"{spec.name}.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == [], f"{spec.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}" if errors else ""
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and str(tiny) in injected[0].source
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code"), "a cell did not run"
    if spec.stage is not None and spec.stage in available_stages():
        assert (tiny / "stages" / f"{spec.stage}.metrics.json").exists(), (
            f"{spec.name} did not run {spec.stage}"
        )
    if (
        spec.stage in {"territory", "forecast", "pipeline", "quota", "compensation"}
        and spec.stage in available_stages()
    ):
        assert _images(nb) >= 1, f"{spec.name}: no chart rendered"
    if spec.stage is None:
        assert _images(nb) >= 3, "the summary shows the stages' charts"


def test_a_retried_attempt_moves_the_dead_attempts_outputs_aside(tmp_path):
    from salesops_models.workflow.batch import start_attempt

    out = tmp_path / "s"
    out.mkdir()
    (out / "scenario.resolved.yaml").write_text("name: s\n")
    assert start_attempt(out) == 1
    # attempt 1 dies before writing anything: attempt 2 still has a folder for it to point at
    assert start_attempt(out) == 2
    assert (out / "attempts" / "1").is_dir() and not any((out / "attempts" / "1").iterdir())
    (out / "metrics.json").write_text("{}")  # attempt 2 dies after writing a table
    assert start_attempt(out) == 3
    assert (out / "attempts" / "2" / "metrics.json").exists() and not (out / "metrics.json").exists()
    assert (out / "scenario.resolved.yaml").exists()


def test_a_workers_failed_heartbeat_is_one_line_not_a_traceback():
    import logging

    import salesops_models.workflow.batch  # noqa: F401  (installs the filter)

    logger = logging.getLogger("distributed.worker")
    try:
        raise OSError("ConnectionPool closing.")
    except OSError:
        import sys

        record = logger.makeRecord(
            logger.name,
            logging.ERROR,
            __file__,
            1,
            "Failed to communicate with scheduler during heartbeat.",
            (),
            sys.exc_info(),
        )
    assert all(f.filter(record) for f in logger.filters)
    line = logging.Formatter().format(record)
    assert "Traceback" not in line and "OSError: ConnectionPool closing." in line
