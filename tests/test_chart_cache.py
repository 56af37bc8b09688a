"""The chart cache: a cached chart is the fresh drawing byte for byte, and never served stale."""

from __future__ import annotations

import pandas as pd
import pytest

from salesops_models.workflow import chart_cache, charts
from salesops_models.workflow.cache import StageCache
from salesops_models.workflow.chart_cache import ChartCache, chart_key, chart_png

DRAWN: list[str] = []


def counted_chart(points: dict[str, pd.DataFrame]) -> object:
    """territory_map, counting its calls (a module-level function: it has a stable identity)."""
    DRAWN.append(next(iter(points)))
    return charts.territory_map(points)


def points(name: str = "north", shift: float = 0.0) -> dict[str, pd.DataFrame]:
    df = pd.DataFrame(
        {
            "lat": [50.0, 50.5, 51.0, 51.5],
            "lon": [8.0, 8.5 + shift, 9.0, 9.5],
            "rep_id": ["R1", "R1", "R2", "R2"],
            "moved": [False, True, False, False],
        }
    )
    return {name: df}


@pytest.fixture
def cache(tmp_path):
    DRAWN.clear()
    store = ChartCache.beside(StageCache(tmp_path / "cache"))
    with chart_cache.using(store):
        yield store


def test_cached_chart_equals_a_fresh_drawing_byte_for_byte(cache):
    first = chart_png(counted_chart, points())
    again = chart_png(counted_chart, points())
    assert DRAWN == ["north"], "the second call is served from the cache"
    with chart_cache.using(None):
        fresh = charts.figure_png(charts.territory_map(points()))
    assert first == again == fresh
    assert len(list(cache.root.rglob("*.chart"))) == 1


def test_a_changed_table_or_label_is_drawn_again(cache):
    base = chart_png(counted_chart, points())
    moved = chart_png(counted_chart, points(shift=0.1))
    renamed = chart_png(counted_chart, points(name="south"))
    assert DRAWN == ["north", "north", "south"]
    assert len({base, moved, renamed}) == 3
    # one cell's type is part of the key too (pandas hashes 1 and "1" alike)
    a = {"x": pd.DataFrame({"rep_id": ["1"], "lat": [1.0], "lon": [2.0]})}
    b = {"x": pd.DataFrame({"rep_id": [1], "lat": [1.0], "lon": [2.0]}).astype({"rep_id": object})}
    assert chart_key(counted_chart, (a,), {}) != chart_key(counted_chart, (b,), {})


def test_a_corrupt_or_foreign_entry_is_rebuilt(cache):
    png = chart_png(counted_chart, points())
    (entry,) = cache.root.rglob("*.chart")
    blob = bytearray(entry.read_bytes())
    blob[-20] ^= 0xFF  # one flipped bit in the PNG
    entry.write_bytes(bytes(blob))
    assert chart_png(counted_chart, points()) == png
    assert DRAWN == ["north", "north"], "the corrupt entry was not trusted"
    assert entry.read_bytes() != bytes(blob), "and it was replaced"
    # an entry copied under another key's name is foreign
    other = cache.entry_path("f" * 64)
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(entry.read_bytes())
    assert cache.load("f" * 64) is None
    entry.write_bytes(b"")  # truncated to nothing
    assert chart_png(counted_chart, points()) == png and len(DRAWN) == 3


def test_inputs_the_key_cannot_describe_are_drawn_uncached(cache):
    odd = {"x": pd.DataFrame({"lat": [1.0], "lon": [2.0], "rep_id": [["R1"]]})}
    with pytest.raises(chart_cache.UnhashableChartInput):
        chart_key(counted_chart, (odd,), {})
    with pytest.raises(chart_cache.UnhashableChartInput):
        chart_key(lambda t: None, (points(),), {})
    assert not list(cache.root.rglob("*.chart"))


def test_a_renamed_scenario_with_the_same_tables_draws_no_chart_again(tmp_path, monkeypatch):
    """The one-scenario panels carry what they show, not the scenario's name (the page gives it),
    so a sweep child or a renamed what-if finds its shared charts in the cache."""
    from salesops_models.workflow import sections
    from salesops_models.workflow.collect import ScenarioResults

    samples = pd.DataFrame({"trial": [0, 0, 1, 1, 2, 2], "rep_id": ["R1", "R2"] * 3,
                            "bookings": [1.0e5, 2.0e5, 1.5e5, 2.5e5, 0.5e5, 1.0e5]})  # fmt: skip
    drawn = []
    real = charts.pipeline_total_chart

    def counted(tables):
        drawn.append(list(tables))
        return real(tables)

    monkeypatch.setattr(charts, "pipeline_total_chart", counted)
    counted.__qualname__ = "pipeline_total_chart"  # the key's function identity, as the real one's
    counted.__module__ = real.__module__
    store = ChartCache.beside(StageCache(tmp_path / "cache"))
    pngs = []
    for name in ("baseline", "baseline_plan_b"):
        folder = tmp_path / name
        folder.mkdir()
        samples.to_parquet(folder / "rep_bookings_samples.parquet", index=False)
        (folder / "scenario.resolved.yaml").write_text(f"name: {name}\n")
        with chart_cache.using(store):
            section = sections.pipeline_section(ScenarioResults(folder))
        pngs.append([b.uri for b in section.blocks if b.kind == "figure"])
    assert drawn == [[sections.PANEL_TEAM]], "drawn once, under a label that is not the scenario's name"
    assert pngs[0] == pngs[1] and pngs[0]
