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
    f = _write(tmp_path / "sub" / "s.yaml", "name: s\ndata: {source: directory, path: company}\n")
    assert load_scenario(f).data.path == str((tmp_path / "sub" / "company").resolve())
    up = _write(tmp_path / "sub" / "up.yaml", "name: up\ndata: {source: directory, path: ../company}\n")
    with pytest.raises(ScenarioError, match="outside the folder of the file that names it.*--allow-dir"):
        load_scenario(up)
    assert load_scenario(up, allow_dirs=[tmp_path]).data.path == str((tmp_path / "company").resolve())


def test_resolved_scenario_round_trips_with_provenance(tmp_path):
    _write(tmp_path / "base.yaml", "name: base\nseed: 11\n")
    child = _write(tmp_path / "child.yaml", "extends: base.yaml\nname: child\nplan_year: 2027\n")
    sc = load_scenario(child)
    path = write_resolved_scenario(sc, tmp_path / "out")
    text = path.read_text()
    assert "_provenance" in text and "package_version" in text and "stage_seeds" in text
    again = load_scenario(path)
    assert again.model_dump(exclude={"extends"}) == sc.model_dump(exclude={"extends"})


# ---- issue 18: paths, the YAML loader, empty files -------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "extends: ../outside.yaml",
        "extends: /etc/hostname",
        "data: {source: directory, path: /tmp}",
        "data: {source: crm, path: export, mapping: ../../map.yaml}",
        "compensation: {plans: [../plan.yaml]}",
    ],
)
def test_files_a_scenario_names_stay_in_its_folder(tmp_path, line):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    f = _write(folder / "s.yaml", f"name: s\n{line}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(f)
    msg = str(info.value)
    assert "s.yaml" in msg and "Rule:" in msg and "--allow-dir" in msg


def test_a_symlink_leaving_the_folder_counts_as_leaving(tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (tmp_path / "elsewhere.yaml").write_text("name: base\n")
    (folder / "base.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    f = _write(folder / "s.yaml", "name: s\nextends: base.yaml\n")
    with pytest.raises(ScenarioError, match="outside the folder"):
        load_scenario(f)


def test_mapping_path_is_resolved_against_the_scenario_and_written_absolute(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    (folder / "export").mkdir(parents=True)
    (folder / "map.yaml").write_text("stages: {open: [A]}\n")
    f = _write(folder / "s.yaml", "name: s\ndata: {source: crm, path: export, mapping: map.yaml}\n")
    monkeypatch.chdir(tmp_path)  # not the scenario's folder: the old code resolved from here
    sc = load_scenario(f)
    assert sc.data.mapping == str((folder / "map.yaml").resolve())
    assert load_scenario(_write(folder / "n.yaml", "name: n\ndata: {mapping: maven}\n")).data.mapping == "maven"
    resolved = write_resolved_scenario(sc, tmp_path / "results" / "s")
    monkeypatch.chdir("/")
    again = load_scenario(resolved, trusted=True)
    assert again.data.mapping == sc.data.mapping and again.data.path == sc.data.path


@pytest.mark.parametrize("text", ["", "\n# only a comment\n", "{}\n"])
def test_an_empty_scenario_file_is_an_error(tmp_path, text):
    f = _write(tmp_path / "empty.yaml", text)
    with pytest.raises(ScenarioError, match="empty.yaml: the file is empty"):
        load_scenario(f)


def test_aliases_are_refused_before_anything_expands(tmp_path):
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        bomb.append(f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]")
    f = _write(tmp_path / "bomb.yaml", "\n".join(bomb) + "\nname: bomb\ndescription: *i\n")
    with pytest.raises(ScenarioError, match="bomb.yaml: line 2: not valid YAML: aliases"):
        load_scenario(f)


@pytest.mark.parametrize("target", ["/dev/zero", "folder"])
def test_a_device_or_a_folder_as_extends_is_a_clear_error(tmp_path, target):
    (tmp_path / "folder").mkdir()
    f = _write(tmp_path / "s.yaml", f"name: s\nextends: {target}\n")
    with pytest.raises(ScenarioError, match=r"s.yaml: extends '.*', which (is not a file|is a folder)"):
        load_scenario(f, allow_dirs=["/dev"])


def test_non_utf8_and_oversized_scenarios_name_the_file(tmp_path):
    f = tmp_path / "latin.yaml"
    f.write_bytes("name: s\ndescription: caf\xe9 in Z\xfcrich\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match=r"latin.yaml: line 2: byte .* not valid utf-8.*save it as UTF-8"):
        load_scenario(f)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"name: big\n" + b"#" * (2 << 20))
    with pytest.raises(ScenarioError, match="big.yaml: .* bytes, more than"):
        load_scenario(big)


def test_a_huge_value_is_not_printed_whole(tmp_path):
    f = _write(tmp_path / "s.yaml", "name: s\nseed: [" + ", ".join(["1"] * 5000) + "]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(f)
    assert "seed" in str(info.value) and len(str(info.value)) < 600


def test_validate_reports_every_file_even_after_an_unreadable_one(tmp_path):
    (tmp_path / "a_binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    _write(tmp_path / "b_empty.yaml", "")
    _write(tmp_path / "c_good.yaml", "name: good\n")
    _write(tmp_path / "d_typo.yaml", "name: typo\nseeed: 1\n")
    good, errors = validate_all([tmp_path])
    assert [sc.name for sc in good] == ["good"]
    assert len(errors) == 3
    assert "a_binary.yaml" in errors[0] and "b_empty.yaml" in errors[1] and "seeed" in errors[2]
