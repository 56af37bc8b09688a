"""Incremental recompute: a stage is reused only when everything it depends on is unchanged.

The scenario's territory solve is proven optimal (``mip_gap: 0``), so a fresh run is the same bit
for bit and a cached run can be compared with it byte for byte.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from pathlib import Path

import pytest

from salesops_models.scenario import Scenario
from salesops_models.testing import tiny_scenario
from salesops_models.workflow.cache import StageCache, stage_key
from salesops_models.workflow.contracts import STAGE_ORDER, stage_contract
from salesops_models.workflow.runner import run_scenario

# a few small full runs (about 30 s of CPU for the module), the rest restored from the cache
pytestmark = pytest.mark.slow

SCENARIO = tiny_scenario("cached")


def _run(tmp: Path, name: str, doc: dict, cache: StageCache | None) -> Path:
    out = tmp / name / doc["name"]  # metrics.json names its folder: the same in every run
    outcome = run_scenario(Scenario.model_validate(doc), out, cache=cache)
    assert outcome.status == "ok", outcome.error
    return out


def _hits(out: Path) -> dict[str, int]:
    hits = {}
    for stage in STAGE_ORDER:
        f = out / "stages" / f"{stage}.timings.json"
        if f.exists():
            hits[stage] = json.loads(f.read_text())[f"{stage}_cache_hit"]
    return hits


def _outputs(out: Path) -> dict[str, bytes]:
    """Every result a stage writes (tables, figures, company cache, metrics), by relative path."""
    files = [*out.glob("*.parquet"), *out.glob("stages/*.metrics.json"), *out.glob("figures/*.png")]
    files += [*out.glob("data/*"), out / "metrics.json"]
    return {str(f.relative_to(out)): f.read_bytes() for f in files if f.is_file()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One full run that fills the cache (every stage computed)."""
    tmp = tmp_path_factory.mktemp("stagecache")
    cache = StageCache(tmp / "cache")
    out = _run(tmp, "first", SCENARIO, cache)
    return tmp, cache, out


def test_first_run_computes_every_stage_and_fills_the_cache(first_run):
    _, cache, out = first_run
    assert set(_hits(out).values()) == {0}
    for stage in STAGE_ORDER:
        assert len(list((cache.root / stage).iterdir())) == 1, stage


def test_unchanged_scenario_reuses_every_stage_byte_for_byte(first_run):
    tmp, cache, first = first_run
    again = _run(tmp, "again", SCENARIO, cache)
    assert _hits(again) == dict.fromkeys(STAGE_ORDER, 1)
    a, b = _outputs(first), _outputs(again)
    assert len(a) > 20 and a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_only_compensation_changed_reruns_only_compensation(first_run):
    tmp, cache, first = first_run
    doc = copy.deepcopy(SCENARIO)
    doc["compensation"]["primary_plan"] = "ae_retroactive_capped"
    out = _run(tmp, "comp", doc, cache)
    assert _hits(out) == {**dict.fromkeys(STAGE_ORDER, 1), "compensation": 0}
    # upstream tables restored unchanged; the compensation cost differs (another primary plan)
    assert (out / "quotas.parquet").read_bytes() == (first / "quotas.parquet").read_bytes()
    assert (out / "comp_cost_samples.parquet").read_bytes() != (first / "comp_cost_samples.parquet").read_bytes()


def test_changed_input_reruns_the_stage_and_every_stage_reading_its_output(first_run):
    tmp, cache, _ = first_run
    doc = copy.deepcopy(SCENARIO)
    doc["pipeline"]["trials"] = 90
    out = _run(tmp, "pipe", doc, cache)
    hits = _hits(out)
    assert hits["data"] == hits["territory"] == hits["forecast"] == 1
    # pipeline changed; reconcile, quota and compensation read its tables, whose content changed
    assert hits["pipeline"] == hits["reconcile"] == hits["quota"] == hits["compensation"] == 0
    # a new master seed changes every stage's key
    sc = Scenario.model_validate(SCENARIO)
    for stage in STAGE_ORDER:
        contract = stage_contract(stage)
        key = stage_key(sc, contract, first_run[2])[0]
        assert stage_key(sc.model_copy(update={"seed": 6}), contract, first_run[2])[0] != key, stage


def _entry(cache: StageCache, stage: str, out: Path) -> Path:
    """The cache entry of ``stage`` for the scenario whose run is in ``out``."""
    key, _ = stage_key(Scenario.model_validate(SCENARIO), stage_contract(stage), out)
    entry = cache.entry_dir(stage, key)
    assert (entry / "manifest.json").is_file()
    return entry


@pytest.mark.parametrize("damage", ["file", "manifest", "foreign"])
def test_corrupt_or_foreign_entry_is_ignored_and_rebuilt(first_run, tmp_path, damage, caplog):
    doc = copy.deepcopy(SCENARIO)
    cache = StageCache(tmp_path / "cache")
    shutil.copytree(first_run[1].root, cache.root)
    first = first_run[2]
    entry = _entry(cache, "compensation", first)
    if damage == "file":  # a table changed behind the cache's back (same size, other bytes)
        f = entry / "files" / "comp_cost_samples.parquet"
        raw = bytearray(f.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        f.write_bytes(bytes(raw))
    elif damage == "manifest":
        (entry / "manifest.json").write_text("{not json")
    else:  # written by another version of the package
        m = json.loads((entry / "manifest.json").read_text())
        m["code"]["package_version"] = "0.0.0-other"
        (entry / "manifest.json").write_text(json.dumps(m))
    with caplog.at_level(logging.WARNING, logger="salesops_models.workflow.cache"):
        out = _run(tmp_path, "two", doc, cache)
    assert _hits(out) == {**dict.fromkeys(STAGE_ORDER, 1), "compensation": 0}
    assert "ignored" in caplog.text
    a, b = _outputs(first), _outputs(out)
    assert [k for k in a if a[k] != b[k]] == []  # recomputed, not served from the bad entry
    # the entry was rebuilt: a third run reuses it
    assert _hits(_run(tmp_path, "three", doc, cache))["compensation"] == 1


def test_key_follows_the_content_of_files_the_config_names(tmp_path):
    """A CRM export edited in place (same path) must not be served from the cache."""
    export = tmp_path / "export"
    export.mkdir()
    (export / "accounts.csv").write_text("account_id\nA1\n")
    sc = Scenario.model_validate({"name": "x", "data": {"source": "directory", "path": str(export)}})
    contract = stage_contract("data")
    key1, _ = stage_key(sc, contract, tmp_path / "out")
    assert stage_key(sc, contract, tmp_path / "out")[0] == key1
    (export / "accounts.csv").write_text("account_id\nA2\n")
    assert stage_key(sc, contract, tmp_path / "out")[0] != key1
    # the scenario's name and description are not inputs: sweep children share entries
    other = sc.model_copy(update={"name": "y", "description": "another"})
    assert stage_key(other, contract, tmp_path / "out")[0] == stage_key(sc, contract, tmp_path / "out")[0]
