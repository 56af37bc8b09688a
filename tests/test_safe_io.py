"""safe_io: the path rule, the capped strict reader, the alias-free YAML loader, atomic writes."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from salesops_models.errors import InputFileError
from salesops_models.safe_io import (
    ALLOW_DIRS_ENV,
    MAX_YAML_NODES,
    PathRule,
    atomic_write_parquet,
    atomic_write_text,
    load_yaml,
    read_bytes,
)


def test_path_rule_keeps_files_inside_their_folder(tmp_path):
    inside = tmp_path / "export"
    inside.mkdir()
    rule = PathRule()
    assert rule.resolve("a/b.csv", inside, "map.yaml", "tables.x.file") == inside / "a" / "b.csv"
    for ref in ("../b.csv", str(tmp_path / "b.csv"), "a/../../b.csv"):
        with pytest.raises(InputFileError, match="outside the folder"):
            rule.resolve(ref, inside, "map.yaml", "tables.x.file")
    granted = PathRule.from_env([tmp_path])
    assert granted.resolve("../b.csv", inside, "map.yaml", "k") == tmp_path / "b.csv"


def test_path_rule_reads_grants_from_the_environment(tmp_path, monkeypatch):
    inside = tmp_path / "in"
    inside.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv(ALLOW_DIRS_ENV, os.pathsep.join([str(other), "/nonexistent-grant"]))
    assert PathRule.from_env().resolve("../other/x", inside, "f", "k") == other / "x"
    with pytest.raises(InputFileError):
        PathRule.from_env().resolve("../x", inside, "f", "k")


def test_reader_refuses_devices_folders_and_oversized_files(tmp_path):
    with pytest.raises(InputFileError, match="not a regular file"):
        read_bytes("/dev/zero", 1000)
    with pytest.raises(InputFileError, match="is a folder"):
        read_bytes(tmp_path, 1000)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(InputFileError, match="1,001 bytes, more than the 1,000"):
        read_bytes(big, 1000)
    with pytest.raises(InputFileError, match="not found"):
        read_bytes(tmp_path / "missing", 1000)


def test_yaml_loader_refuses_aliases_code_and_too_many_nodes(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("a: &x 1\nb: *x\n")
    with pytest.raises(InputFileError, match="line 2: not valid YAML: aliases"):
        load_yaml(f)
    f.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(InputFileError, match="not valid YAML"):
        load_yaml(f)
    f.write_text("[" + ", ".join(["1"] * (MAX_YAML_NODES + 1)) + "]\n")
    with pytest.raises(InputFileError, match="more than 20,000 values"):
        load_yaml(f)
    f.write_text("a: [1, 2]\nb: {c: d}\n")
    assert load_yaml(f) == {"a": [1, 2], "b": {"c": "d"}}


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, '{"old": 1}')

    class Boom(Exception):
        pass

    class Frame:
        def to_parquet(self, path, **kwargs):
            path.write_bytes(b"half a fi")
            raise Boom

    with pytest.raises(Boom):
        atomic_write_parquet(Frame(), tmp_path / "summary.parquet")
    assert not (tmp_path / "summary.parquet").exists()
    assert target.read_text() == '{"old": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"], "no temp file is left behind"
    atomic_write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "summary.parquet")
    assert pd.read_parquet(tmp_path / "summary.parquet")["a"].tolist() == [1]


def test_every_yaml_input_goes_through_the_one_loader(tmp_path):
    """Scenarios, mappings, plans and tracking changes files all refuse an alias (one loader)."""
    from salesops_models.compensation.plan import load_plan
    from salesops_models.data.loaders import load_mapping
    from salesops_models.errors import MappingError, PlanError, ScenarioError, TrackingError
    from salesops_models.scenario import load_scenario
    from salesops_models.tracking.changes import load_changes

    f = tmp_path / "x.yaml"
    f.write_text("a: &x [1, 2]\nname: *x\n")
    for load, error in [
        (load_scenario, ScenarioError),
        (load_mapping, MappingError),
        (load_plan, PlanError),
        (load_changes, TrackingError),
    ]:
        with pytest.raises(error, match="x.yaml: line 2: not valid YAML: aliases"):
            load(f)
