"""Scenario files: extends + deep merge, strict validation with useful messages, safe names."""

from __future__ import annotations

import textwrap

import pytest

from salesops_models.errors import ScenarioError
from salesops_models.scenario import deep_merge, load_scenario, validate_all
from salesops_models.workflow.results import write_resolved_scenario


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    assert deep_merge(base, {"a": {"y": [3]}, "c": 2}) == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # not mutated


def test_extends_states_only_the_change(tmp_path):
    _write(tmp_path / "base.yaml", "name: base\nseed: 5\ndata: {sample: {n_accounts: 300, n_reps: 8}}\n")
    child = _write(tmp_path / "child.yaml", "extends: base.yaml\nname: child\ndata: {sample: {n_reps: 10}}\n")
    sc = load_scenario(child)
    assert sc.name == "child" and sc.seed == 5
    assert sc.data.sample.n_accounts == 300 and sc.data.sample.n_reps == 10


def test_shipped_scenarios_are_valid():
    from salesops_models.testing import REPO_ROOT

    good, errors = validate_all([REPO_ROOT / "scenarios"])
    assert errors == []
    assert {s.name for s in good} >= {"baseline", "growth_push", "efficiency_push"}


def test_child_without_name_takes_its_file_name(tmp_path):
    _write(tmp_path / "base.yaml", "name: base\ndescription: the base\n")
    child = _write(tmp_path / "stretch.yaml", "extends: base.yaml\n")
    sc = load_scenario(child)
    assert sc.name == "stretch" and sc.description == ""


def test_typo_names_file_key_path_and_allowed_keys(tmp_path):
    f = _write(tmp_path / "typo.yaml", "name: t\ndata: {sample: {n_acounts: 10}}\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    msg = str(e.value)
    assert "typo.yaml" in msg and "data.sample.n_acounts" in msg and "n_accounts" in msg


def test_wrong_type_names_the_key(tmp_path):
    f = _write(tmp_path / "bad.yaml", "name: t\nseed: lots\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml: key 'seed'.*'lots'"):
        load_scenario(f)


def test_extends_cycle_and_missing_base(tmp_path):
    _write(tmp_path / "a.yaml", "extends: b.yaml\n")
    _write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario(tmp_path / "a.yaml")
    _write(tmp_path / "c.yaml", "extends: nowhere.yaml\n")
    with pytest.raises(ScenarioError, match="nowhere.yaml"):
        load_scenario(tmp_path / "c.yaml")


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "", "x" * 65, "has space"])
def test_names_cannot_escape_the_results_folder(tmp_path, name):
    f = _write(tmp_path / "s.yaml", f"name: '{name}'\n")
    with pytest.raises(ScenarioError, match="name"):
        load_scenario(f)


def test_yaml_is_data_not_code(tmp_path):
    f = _write(tmp_path / "s.yaml", "name: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(f)


def test_duplicate_names_and_bad_files_are_all_reported(tmp_path):
    _write(tmp_path / "one.yaml", "name: same\n")
    _write(tmp_path / "two.yaml", "name: same\n")
    _write(tmp_path / "three.yaml", "- a list\n")
    good, errors = validate_all([tmp_path])
    assert len(good) == 1 and len(errors) == 2
    assert any("must be unique" in e for e in errors) and any("three.yaml" in e for e in errors)


def test_relative_data_path_is_relative_to_the_scenario_file(tmp_path):
    (tmp_path / "sub").mkdir()
    f = _write(tmp_path / "sub" / "s.yaml", "name: s\ndata: {source: directory, path: ../company}\n")
    assert load_scenario(f).data.path == str((tmp_path / "company").resolve())


def test_resolved_scenario_round_trips_with_provenance(tmp_path):
    _write(tmp_path / "base.yaml", "name: base\nseed: 11\n")
    child = _write(tmp_path / "child.yaml", "extends: base.yaml\nname: child\nplan_year: 2027\n")
    sc = load_scenario(child)
    path = write_resolved_scenario(sc, tmp_path / "out")
    text = path.read_text()
    assert "_provenance" in text and "package_version" in text and "stage_seeds" in text
    again = load_scenario(path)
    assert again.model_dump(exclude={"extends"}) == sc.model_dump(exclude={"extends"})
