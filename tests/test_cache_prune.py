"""Stage cache expiry: ``StageCache.prune`` and ``salesops cache prune --older-than``."""

from __future__ import annotations

import os
import time

from click.testing import CliRunner

from salesops_models.cli import main
from salesops_models.workflow.cache import StageCache
from salesops_models.workflow.chart_cache import ChartCache

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100
DAY = 86400.0


def _entry(cache: StageCache, out, stage: str, key: str, used: float) -> None:
    (out / f"{stage}.parquet").write_bytes(key.encode() * 10)
    assert cache.store(stage, key, {}, out, [f"{stage}.parquet"])
    os.utime(cache.entry_dir(stage, key) / "manifest.json", (used, used))


def _filled(tmp_path, now: float) -> tuple[StageCache, ChartCache]:
    cache = StageCache(tmp_path / "cache")
    out = tmp_path / "out"
    out.mkdir()
    _entry(cache, out, "quota", "a" * 64, now - 40 * DAY)  # unused for 40 days
    _entry(cache, out, "quota", "b" * 64, now - 2 * DAY)
    _entry(cache, out, "territory", "c" * 64, now - 40 * DAY)
    charts = ChartCache.beside(cache)
    for key, age in (("d" * 64, 40 * DAY), ("e" * 64, 1 * DAY)):
        charts.store(key, PNG)
        os.utime(charts.entry_path(key), (now - age, now - age))
    return cache, charts


def test_prune_removes_what_was_not_used_for_a_while_and_keeps_the_rest(tmp_path):
    now = time.time()
    cache, charts = _filled(tmp_path, now)
    dry = cache.prune(30 * DAY, dry_run=True, now=now)
    assert (dry.removed, dry.kept) == (3, 2)
    assert cache.load("quota", "a" * 64) is not None, "a dry run removes nothing"
    os.utime(cache.entry_dir("quota", "a" * 64) / "manifest.json", (now - 40 * DAY,) * 2)  # load touched it
    done = cache.prune(30 * DAY, now=now)
    assert (done.removed, done.kept) == (3, 2) and done.removed_bytes > 0
    assert cache.load("quota", "a" * 64) is None and cache.load("territory", "c" * 64) is None
    assert cache.load("quota", "b" * 64) is not None
    assert charts.load("d" * 64) is None and charts.load("e" * 64) == PNG
    assert not (cache.root / "territory").exists(), "an emptied stage folder goes too"
    assert not list(cache.root.rglob("*.pruned")), "nothing left aside"


def test_a_hit_counts_as_a_use(tmp_path):
    now = time.time()
    cache, charts = _filled(tmp_path, now)
    assert cache.load("quota", "a" * 64) is not None  # restored today: not old any more
    assert charts.load("d" * 64) == PNG
    result = cache.prune(30 * DAY)
    assert result.removed == 1  # the territory entry only
    assert cache.load("quota", "a" * 64) is not None and charts.load("d" * 64) == PNG


def test_cli_prunes_and_names_a_bad_duration(tmp_path):
    now = time.time()
    cache, _ = _filled(tmp_path, now)
    runner = CliRunner()
    bad = runner.invoke(main, ["cache", "prune", "--older-than", "soon", "--cache-dir", str(cache.root)])
    assert bad.exit_code != 0 and "--older-than" in bad.output and "30d" in bad.output
    ok = runner.invoke(main, ["cache", "prune", "--older-than", "30d", "--cache-dir", str(cache.root)])
    assert ok.exit_code == 0, ok.output
    assert "removed 3 entries" in ok.output and "kept 2" in ok.output
    missing = runner.invoke(main, ["cache", "prune", "--older-than", "1", "--cache-dir", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "no stage cache there" in missing.output
