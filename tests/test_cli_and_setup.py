"""The CLI and the project's setup files."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml
from click.testing import CliRunner

from salesops_models.cli import main
from salesops_models.testing import REPO_ROOT


@pytest.mark.benchmarkdata
def test_kpi_json_on_the_maven_export(bench_dir):
    res = CliRunner().invoke(
        main,
        ["kpi", str(bench_dir / "crm" / "maven_crm_sales_opportunities"), "--mapping", "maven", "--json"],
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert round(d["win_rate"], 6) == 0.631501
    assert d["median_cycle_days"] == 57 and round(d["mean_cycle_days"], 2) == 51.78
    assert round(d["revenue_per_rep"], 1) == 333517.8


@pytest.mark.benchmarkdata
def test_kpi_table_by_region(bench_dir):
    res = CliRunner().invoke(
        main, ["kpi", str(bench_dir / "crm" / "maven_crm_sales_opportunities"), "--by", "region"]
    )
    assert res.exit_code == 0 and "Central" in res.output and "win_rate" in res.output


def test_validate_reports_bad_files_and_exits_nonzero(tmp_path):
    (tmp_path / "ok.yaml").write_text("name: ok\n")
    (tmp_path / "bad.yaml").write_text("name: bad\nterritory: {enabeld: true}\n")
    res = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert res.exit_code == 1
    assert "ok       ok" in res.output and "territory.enabeld" in res.output


def test_data_sample_writes_and_refuses_to_overwrite(tmp_path):
    args = [
        "data",
        "sample",
        "--out",
        str(tmp_path / "co"),
        "--accounts",
        "80",
        "--reps",
        "4",
        "--years",
        "1",
    ]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert (tmp_path / "co" / "accounts.parquet").exists()
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--force" in again.output
    res = CliRunner().invoke(main, ["kpi", str(tmp_path / "co"), "--mapping", "canonical", "--json"])
    assert res.exit_code == 0 and 0 < json.loads(res.output)["win_rate"] < 1


_ALIASES = {"dask[distributed]": ["dask", "distributed"]}


def _names(specs):
    out = set()
    for s in specs:
        s = s.strip().lower()
        key = re.split(r"[<>=!~ ]", s)[0]
        if key in _ALIASES:
            out.update(_ALIASES[key])
        else:
            out.add(re.split(r"[\[<>=!~ ]", s)[0].replace("_", "-"))
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"])
    for extra in ("notebooks", "dask", "dev", "speed", "benchmarks"):
        wanted |= _names(project["optional-dependencies"][extra])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    conda = _names(d for d in env["dependencies"] if isinstance(d, str))
    conda.discard("python")
    conda.discard("pip")
    assert wanted - conda == set(), "in pyproject.toml but not environment.yml"
    assert conda - wanted == set(), "in environment.yml but not pyproject.toml"
    pip_part = next(d for d in env["dependencies"] if isinstance(d, dict))
    assert pip_part["pip"] == ["-e ."]


def test_make_lab_installs_opens_the_notebooks_on_the_project_kernel_and_is_documented():
    makefile = (REPO_ROOT / "Makefile").read_text()
    rule = re.search(r"^lab: (.*)\n((?:\t.*\n?)+)", makefile, re.M)
    assert rule, "Makefile: no `lab:` target"
    assert "install" in rule.group(1).split(), "`make lab` must install first, like the other targets"
    recipe = rule.group(2)
    assert "jupyter lab" in recipe and "--notebook-dir=notebooks" in recipe
    assert "project_kernel_name()" in recipe and "JUPYTER_PATH=" in recipe
    assert "make lab" in (REPO_ROOT / "README.md").read_text()
