"""``salesops validate`` checks everything that can be checked before a run, reports every file, and
the CLI answers bad input with one-line messages (issue 18, items 2, 7 and 8)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from salesops_models.cli import main
from salesops_models.workflow.preflight import check_scenarios

PLAN = """\
name: {name}
pay: {{base_salary: 100000, target_incentive: 100000}}
measures:
  - name: bookings
    rate_table:
      mode: {mode}
      tiers:
        - {{from: 0.0, to: 1.0, rate: 1.0}}
        - {{from: {second_from}, to: null, rate: {second_rate}}}
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _export(folder: Path, rows: list[str], stages: str = "{open: [Open], won: Won, lost: Lost}") -> None:
    _write(folder / "export" / "opps.csv", "Id,Owner,Stage,Created,Closed,Amount\n" + "".join(r + "\n" for r in rows))
    _write(
        folder / "map.yaml",
        f"stages: {stages}\ntables:\n  opportunities:\n    file: opps.csv\n"
        "    columns: {opportunity_id: Id, rep_id: Owner, stage: Stage, created_date: Created,"
        " close_date: Closed, amount: Amount}\n",
    )


ROWS = ["1,ann,Won,2024-01-01,2024-02-01,100", "2,bob,Lost,2024-01-05,2024-01-20,0", "3,bob,Open,2024-02-01,,5"]


def _crm(name: str) -> str:
    return f"name: {name}\ndata: {{source: crm, path: export, mapping: map.yaml}}\ncompensation: {{enabled: false}}\n"


def test_validate_loads_a_crm_export_and_passes_a_good_one(tmp_path):
    _export(tmp_path, ROWS)
    _write(tmp_path / "s.yaml", _crm("s"))
    checked = check_scenarios([tmp_path / "s.yaml"])
    assert checked.errors == [] and [sc.name for sc in checked.scenarios] == ["s"]


def test_validate_catches_a_stage_typo_in_the_mapping(tmp_path):
    _export(tmp_path, ROWS, stages="{open: [Open], won: Wonn, lost: Lost}")
    _write(tmp_path / "s.yaml", _crm("s"))
    checked = check_scenarios([tmp_path / "s.yaml"])
    assert len(checked.errors) == 1
    assert "s.yaml" in checked.errors[0] and "unknown stage label(s) ['Won'] at line 2" in checked.errors[0]


def test_validate_catches_a_header_only_export_and_a_missing_data_path(tmp_path):
    _export(tmp_path, [])
    _write(tmp_path / "s.yaml", _crm("s"))
    _write(tmp_path / "gone.yaml", "name: gone\ndata: {source: directory, path: no-such-folder}\n")
    errors = check_scenarios([tmp_path]).errors
    assert any("gone.yaml" in e and "no-such-folder does not exist" in e for e in errors), errors
    assert any("s.yaml" in e and "only its header line" in e for e in errors), errors


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (dict(second_from=0.9, second_rate=2.0, mode="marginal"), "overlap"),
        (None, "plan file not found"),
    ],
)
def test_validate_checks_plan_files(tmp_path, plan, expected):
    if plan is not None:
        _write(tmp_path / "plan.yaml", PLAN.format(name="p", **plan))
    _write(tmp_path / "s.yaml", "name: s\ncompensation: {plans: [plan.yaml]}\n")
    errors = check_scenarios([tmp_path / "s.yaml"]).errors
    assert len(errors) == 1 and "s.yaml" in errors[0] and expected in errors[0], errors


def test_a_pay_cliff_is_a_warning_not_an_error(tmp_path):
    _write(tmp_path / "cliff.yaml", PLAN.format(name="cliff", second_from=1.0, second_rate=0.5, mode="retroactive"))
    _write(tmp_path / "s.yaml", "name: s\ncompensation: {plans: [cliff.yaml]}\n")
    res = CliRunner().invoke(main, ["validate", str(tmp_path / "s.yaml")])
    assert res.exit_code == 0, res.output
    assert "ok       s" in res.output
    assert "WARNING" in res.output and "pay drops from 1.000 to 0.500" in res.output and "attainment 1" in res.output


def test_validate_dir_reports_every_bad_file_and_carries_on(tmp_path):
    folder = tmp_path / "scenarios"
    _export(folder / "data", ROWS)  # export and mappings in a sub-folder: inside the scenarios' folder
    (folder / "a_latin1.yaml").write_bytes("name: a\ndescription: Z\xfcrich\n".encode("latin-1"))
    _write(folder / "b_empty.yaml", "")
    _write(folder / "c_dir_extends.yaml", "name: c\nextends: data\n")
    _write(folder / "d_bad_as_of.yaml", "name: d\ndata: {source: crm, path: data/export, mapping: data/bad.yaml}\n")
    _write(folder / "data" / "bad.yaml", (folder / "data" / "map.yaml").read_text() + "as_of: someday\n")
    _write(
        folder / "e_good.yaml",
        "name: e\ndata: {source: crm, path: data/export, mapping: data/map.yaml}\ncompensation: {enabled: false}\n",
    )
    _write(folder / "f_mapping_dir.yaml", "name: f\ndata: {source: crm, path: data/export, mapping: data/export/}\n")
    res = CliRunner().invoke(main, ["validate", str(folder)])
    assert res.exit_code == 1
    out = res.output
    assert "Traceback" not in out
    assert "ok       e" in out
    for name, message in [
        ("a_latin1.yaml", "not valid utf-8"),
        ("b_empty.yaml", "the file is empty"),
        ("c_dir_extends.yaml", "is a folder"),
        ("d_bad_as_of.yaml", "as_of 'someday' is not a date"),
        ("f_mapping_dir.yaml", "is a folder"),
    ]:
        line = next((ln for ln in out.splitlines() if name in ln), "")
        assert message in line, f"{name}: {line!r}"


def test_kpi_on_a_header_only_export_is_an_error_not_nan(tmp_path):
    _export(tmp_path, [])
    res = CliRunner().invoke(main, ["kpi", str(tmp_path / "export"), "--mapping", str(tmp_path / "map.yaml")])
    assert res.exit_code != 0 and "only its header line" in res.output and "nan" not in res.output.lower()


def test_kpi_refuses_a_mapping_file_outside_the_export_unless_allowed(tmp_path):
    _export(tmp_path, ROWS)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "opps.csv").write_text("private\n1\n")
    m = tmp_path / "map.yaml"
    m.write_text(m.read_text().replace("file: opps.csv", "file: ../secret/opps.csv"))
    res = CliRunner().invoke(main, ["kpi", str(tmp_path / "export"), "--mapping", str(m)])
    assert res.exit_code == 1 and "outside the export folder" in res.output and "--allow-dir" in res.output
    assert "private" not in res.output
    res = CliRunner().invoke(
        main, ["kpi", str(tmp_path / "export"), "--mapping", str(m), "--allow-dir", str(tmp_path / "secret")]
    )
    assert res.exit_code == 1 and "private" in res.output  # read, then its columns do not fit


def test_data_sample_refuses_a_folder_that_holds_files_and_changes_nothing(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "accounts.csv").write_text("mine\n")
    (out / "notes.txt").write_text("keep\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = CliRunner().invoke(main, ["data", "sample", "--out", str(out), "--format", "csv", "--accounts", "40"])
    assert res.exit_code != 0
    assert "accounts.csv" in res.output and "notes.txt" in res.output and "nothing was written" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_report_on_an_empty_folder_is_a_one_line_error(tmp_path):
    res = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "no scenario results here" in res.output


def _fake_batch(tmp_path: Path) -> Path:
    """A batch folder as a kill leaves it: done, damaged, started and never-started scenarios."""
    batch = tmp_path / "b1"
    for name in ("done", "damaged", "started", "waiting"):
        _write(batch / name / "scenario.resolved.yaml", f"name: {name}\ndescription: {name} scenario\n")
    (batch / "done" / "metrics.json").write_text(json.dumps({"scenario": "done", "status": "ok", "error": None}))
    (batch / "damaged" / "metrics.json").write_text('{"scenario": "damaged", "status": "o')  # truncated
    _write(batch / "started" / "stages" / "data.metrics.json", '{"data_accounts": 60}')
    (batch / "started" / "logs").mkdir()
    pd.DataFrame({"scenario": ["done"], "status": ["ok"], "error": [None]}).set_index("scenario").to_parquet(
        batch / "summary.parquet"
    )
    return batch


def test_report_rebuilds_the_index_after_a_kill_with_unfinished_scenarios_marked(tmp_path):
    batch = _fake_batch(tmp_path)
    data = (batch / "summary.parquet").read_bytes()
    for summary in (data, data[: len(data) // 2]):  # whole, then truncated
        (batch / "summary.parquet").write_bytes(summary)
        res = CliRunner().invoke(main, ["report", str(batch)])
        assert res.exit_code == 0, res.output
        page = (batch / "index.html").read_text()
        assert "4 scenario(s), 1 completed, 0 failed, 2 partial, 1 not run" in page
        for name, status in [("done", "ok"), ("damaged", "partial"), ("started", "partial"), ("waiting", "not run")]:
            row = page[page.index(f'data-key="{name}"') :].split("</tr>")[0]
            assert f">{status}</td>" in row, (name, row)
        assert "metrics.json is damaged" in page and "stages with results: data" in page


_DATA_ONLY = "".join(f"{s}: {{enabled: false}}\n" for s in ("territory", "forecast", "pipeline", "quota", "compensation"))


def test_a_saved_result_reruns_from_another_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    _export(project / "data", ROWS)
    _write(project / "s.yaml", "name: s\ndata: {source: crm, path: data/export, mapping: data/map.yaml}\n" + _DATA_ONLY)
    monkeypatch.chdir(project)
    first = CliRunner().invoke(main, ["run", "s.yaml", "--out", str(tmp_path / "results"), "--batch-id", "one"])
    assert first.exit_code == 0, first.output
    resolved = tmp_path / "results" / "one" / "s" / "scenario.resolved.yaml"
    assert str(project / "data" / "map.yaml") in resolved.read_text(), "paths are written absolute"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = ["run", str(resolved), "--out", str(tmp_path / "results"), "--batch-id", "two"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "outside the folder of the file that names it" in refused.output
    again = CliRunner().invoke(main, [*args, "--allow-dir", str(project)])
    assert again.exit_code == 0, again.output
    one = json.loads((tmp_path / "results" / "one" / "s" / "metrics.json").read_text())
    two = json.loads((tmp_path / "results" / "two" / "s" / "metrics.json").read_text())
    assert one["kpi_win_rate"] == two["kpi_win_rate"] == 0.5


@pytest.mark.slow
def test_quiet_silences_run(tmp_path):
    import subprocess
    import sys

    _write(tmp_path / "s.yaml", "name: s\ndata: {sample: {n_accounts: 30, n_reps: 3, n_regions: 1, years: 1}}\n" + _DATA_ONLY)
    salesops = str(Path(sys.executable).with_name("salesops"))
    res = subprocess.run(
        [salesops, "-q", "run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and res.stderr == "", (res.stdout, res.stderr)
    assert list((tmp_path / "r").glob("*/s/metrics.json")), "the run happened"
