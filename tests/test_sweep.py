"""Sweeps: expansion into named, validated child scenarios; errors naming the key and the child; the
limit; a sweep batch that computes shared stages once and shows a sensitivity view."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from salesops_models.cli import main
from salesops_models.errors import ScenarioError
from salesops_models.scenario import NAME_PATTERN, load_scenario, load_scenarios, validate_files
from salesops_models.sweep import SWEEP_LIMIT
from salesops_models.workflow.contracts import STAGE_ORDER
from tests.test_stage_cache import SCENARIO


def _write(folder: Path, doc: dict, name: str = "sw.yaml") -> Path:
    f = folder / name
    f.write_text(yaml.safe_dump(doc, sort_keys=False))
    return f


def test_grid_expands_to_every_combination_each_validated_and_named(tmp_path):
    f = _write(tmp_path, {
        "name": "plans", "description": "Plan sweep",
        "sweep": {"grid": {"compensation.primary_plan": ["ae_standard", "new_hire_draw"],
                           "quota.over_assignment": [0.0, 0.05, 0.1]}},
    })  # fmt: skip
    loaded, errors = load_scenarios(f)
    assert errors == []
    assert len(loaded) == 6
    names = [sc.name for sc, _ in loaded]
    assert len(set(names)) == 6 and all(NAME_PATTERN.match(n) for n in names)
    assert names[0] == "plans.primary_plan-ae_standard_over_assignment-0.0"
    combos = {(sc.compensation.primary_plan, sc.quota.over_assignment) for sc, _ in loaded}
    assert combos == {(p, q) for p in ("ae_standard", "new_hire_draw") for q in (0.0, 0.05, 0.1)}
    sc, child = loaded[1]
    assert child.parent == "plans" and child.values == {
        "compensation.primary_plan": "ae_standard", "quota.over_assignment": 0.05
    }  # fmt: skip
    assert child.changes()["changes"][1] == {"key": "quota.over_assignment", "base": 0.0, "value": 0.05}
    assert "sweep plans" in sc.description


def test_list_sweep_and_a_sweep_file_is_not_one_scenario(tmp_path):
    f = _write(tmp_path, {"name": "l", "sweep": {"list": [{"seed": 1}, {"seed": 2, "plan_year": 2027}]}})
    loaded, errors = load_scenarios(f)
    assert not errors and [(sc.seed, sc.plan_year) for sc, _ in loaded] == [(1, 2026), (2, 2027)]
    with pytest.raises(ScenarioError, match="is a sweep"):
        load_scenario(f)


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        ({"grid": {"compensation.primry_plan": ["a"]}}, r"key 'compensation.primry_plan' \(child scenario 's\..*'\): "
         r"'primry_plan' is not a setting of compensation \(allowed: .*primary_plan"),
        ({"list": [{"seed": 1}, {"quota.nope": 2}]}, r"key 'quota.nope' \(child scenario 's\.nope-2'\)"),
        ({"grid": {"name": ["x"]}}, "names the scenario"),
        ({"grid": {"seed": []}}, "non-empty list"),
        ({"grid": {"seed": [1]}, "list": [{"seed": 1}]}, "exactly one of 'grid:'"),
    ],
)  # fmt: skip
def test_bad_sweep_key_is_an_error_naming_key_and_child(tmp_path, sweep, expected):
    f = _write(tmp_path, {"name": "s", "sweep": sweep})
    good, errors = validate_files([f])
    assert good == [] and len(errors) == 1
    assert str(f) in errors[0]
    import re

    assert re.search(expected, errors[0]), errors[0]


def test_value_failing_validation_names_the_child_and_the_key(tmp_path):
    f = _write(tmp_path, {"name": "s", "sweep": {"grid": {"compensation.n_trials": [100, 3]}}})
    good, errors = validate_files([f])
    assert [sc.name for _, sc in good] == ["s.n_trials-100"]  # the valid child stays valid
    assert len(errors) == 1
    assert "sweep child 's.n_trials-3': compensation.n_trials=3" in errors[0]
    assert "key 'compensation.n_trials'" in errors[0] and "greater than or equal to 10" in errors[0]


def test_a_sweep_over_the_limit_needs_confirmation(tmp_path):
    big = list(range(SWEEP_LIMIT + 1))
    f = _write(tmp_path, {"name": "big", "sweep": {"grid": {"seed": big}}})
    good, errors = validate_files([f])
    assert good == [] and f"{SWEEP_LIMIT + 1} child scenarios, more than the limit of {SWEEP_LIMIT}" in errors[0]
    assert "--yes" in errors[0]
    good, errors = validate_files([f], sweep_limit=None)
    assert len(good) == SWEEP_LIMIT + 1 and not errors
    # the CLI says the same and runs nothing
    result = CliRunner().invoke(main, ["batch", str(f), "--out", str(tmp_path / "res"), "--no-notebooks"])
    assert result.exit_code != 0 and "--yes" in result.output
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_run_refuses_a_sweep_and_points_to_batch(tmp_path):
    f = _write(tmp_path, {"name": "s", "sweep": {"grid": {"seed": [1, 2]}}})
    result = CliRunner().invoke(main, ["run", str(f), "--out", str(tmp_path / "res")])
    assert result.exit_code != 0 and "salesops batch" in result.output


@pytest.mark.slow
def test_sweep_batch_computes_shared_stages_once_and_shows_sensitivity(tmp_path):
    from salesops_models.workflow.batch import run_batch

    doc = dict(SCENARIO, name="sw", sweep={"grid": {
        "compensation.primary_plan": ["ae_standard", "ae_retroactive_capped"],
        "quota.over_assignment": [0.0, 0.05],
    }})  # fmt: skip
    f = _write(tmp_path, doc)
    cache = tmp_path / "cache"
    result = run_batch([f], tmp_path / "res", workers=1, notebooks=False, quiet=True, cache=cache)
    assert result.failed == []
    assert len(result.records) == 4
    misses: Counter[str] = Counter()
    for rec in result.records:
        out = result.batch_dir / rec["scenario"]
        for stage in STAGE_ORDER:
            misses[stage] += 1 - json.loads((out / "stages" / f"{stage}.timings.json").read_text())[f"{stage}_cache_hit"]
        assert json.loads((out / "changes.json").read_text())["sweep"] == "sw"
    # upstream of the swept settings: once for the whole sweep; quota per over_assignment; compensation each
    assert {s: misses[s] for s in STAGE_ORDER} == {
        "data": 1, "territory": 1, "forecast": 1, "pipeline": 1, "reconcile": 1, "quota": 2, "compensation": 4
    }  # fmt: skip
    # per-stage progress reached the driver while the batch ran: one line per stage of every child
    lines = (result.batch_dir / "progress.log").read_text().splitlines()
    steps = Counter(line.split()[2] for line in lines)
    assert steps == dict.fromkeys(STAGE_ORDER, 4), lines
    assert sum(" computed " in line for line in lines) == sum(misses.values())
    sweeps = json.loads((result.batch_dir / "sweeps.json").read_text())
    assert sweeps["sw"]["keys"] == ["compensation.primary_plan", "quota.over_assignment"]
    page = result.index_html.read_text()
    assert 'id="sensitivity"' in page or "Sensitivity: what moves the outputs" in page
    assert "Sweep sw: 4 child scenarios" in page
    assert 'id="sensitivity-sw"' in page
    # one chart overlays every child's bookings and commission cost distributions
    assert re.search(r'<img class="chart" src="data:image/png;base64,[^"]+" alt="Sweep sw: every child', page)
    assert "no child scenario wrote" not in page
    from salesops_models.workflow.sensitivity import sweep_distributions

    samples = sweep_distributions(result.batch_dir, list(sweeps["sw"]["children"]))
    assert all(len(by_child) == 4 for by_child in samples.values()), {k: list(v) for k, v in samples.items()}


def test_the_shipped_example_sweep_passes_preflight():
    from salesops_models.testing import REPO_ROOT
    from salesops_models.workflow.preflight import check_scenarios

    checked = check_scenarios([REPO_ROOT / "scenarios" / "examples" / "plan_sweep.yaml"])
    assert checked.errors == []
    assert len(checked.scenarios) == 8 and set(checked.sweeps) == {sc.name for sc in checked.scenarios}


def test_swept_file_paths_resolve_against_the_sweep_file_and_stay_inside_its_folder(tmp_path):
    from salesops_models.compensation.plan import _shipped_path

    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "mine.yaml").write_text(_shipped_path("ae_standard").read_text())
    f = _write(tmp_path, {"name": "p", "sweep": {"list": [{"compensation.plans": ["plans/mine.yaml"]}]}})
    loaded, errors = load_scenarios(f)
    assert not errors and loaded[0][0].compensation.plans == [str(tmp_path / "plans" / "mine.yaml")]
    out = tmp_path / "inner"
    out.mkdir()
    g = _write(out, {"name": "q", "sweep": {"list": [{"compensation.plans": ["../plans/mine.yaml"]}]}})
    good, errors = validate_files([g])
    assert good == [] and "compensation.plans[0]" in errors[0] and "outside" in errors[0]
