"""The analysts' what-if: its callbacks, driven as the notebook's widgets drive them (no browser).

Which stages re-run is read from the runner's cache hit flags (``stages/<stage>.timings.json``).
"""

from __future__ import annotations

import re
from dataclasses import replace

import nbformat
import pytest

from salesops_models.scenario import Scenario
from salesops_models.testing import tiny_scenario
from salesops_models.workflow.contracts import STAGE_ORDER
from salesops_models.workflow.notebooks import notebooks_dir
from salesops_models.workflow.whatif import WhatIf, WhatIfSettings, cache_hits

# one full run of a small company (about 15 s of CPU), then partial re-runs of a few seconds each:
# about 40 s for the module on a loaded machine
pytestmark = pytest.mark.slow

SCENARIO = tiny_scenario(
    "whatif",
    quota={"growth_min": -0.9, "growth_max": 2.0},  # room for the targets the tests try
    compensation={"n_trials": 150, "plans": ["ae_standard", "uncapped_1x_2x"]},
)


@pytest.fixture(scope="module")
def whatif(tmp_path_factory):
    """A what-if whose first run computed every stage and filled its cache."""
    root = tmp_path_factory.mktemp("whatif")
    wi = WhatIf(Scenario.model_validate(SCENARIO), root)  # cache: <root>/.cache, as the notebook finds it
    first = wi.run()
    assert first.ok, first.message
    return wi


def _fresh(wi: WhatIf, **changes) -> object:
    """Run the first run's settings with ``changes`` (each test independent of the others' order)."""
    assert wi.baseline is not None
    return wi.run(replace(wi.baseline.settings, **changes))


def test_first_run_computes_every_stage(whatif):
    assert whatif.baseline.computed == STAGE_ORDER
    assert whatif.baseline.restored == ()
    h = whatif.baseline.headline
    assert h.comp_cost_p10 <= h.comp_cost_p50 <= h.comp_cost_p90
    assert 0.0 <= h.share_likely_at_quota <= 1.0 and h.reps == 4


def test_same_settings_restore_every_stage(whatif):
    again = _fresh(whatif)
    assert again.computed == () and again.restored == STAGE_ORDER
    assert again.headline == whatif.baseline.headline


def test_commission_plan_reruns_only_compensation(whatif):
    base = whatif.baseline.headline
    result = whatif.on_commission_plan({"new": "uncapped_1x_2x", "old": "ae_standard"})
    assert result.ok, result.message
    assert result.computed == ("compensation",)
    assert cache_hits(result.out_dir)["compensation"] == 0
    assert set(result.restored) == set(STAGE_ORDER) - {"compensation"}
    assert result.settings.commission_plan == "uncapped_1x_2x" == whatif.settings.commission_plan
    # the same bookings and quotas, paid another way
    assert result.headline.bookings_p50 == base.bookings_p50
    assert result.headline.share_likely_at_quota == base.share_likely_at_quota
    assert result.headline.comp_cost_p50 != base.comp_cost_p50


def test_higher_target_reruns_quota_onwards_and_fewer_reps_make_quota(whatif):
    base = whatif.baseline.headline
    # two explicit targets around the simulated bookings (the forecast-based one may already be out of reach)
    low = _fresh(whatif, company_target=0.5 * base.bookings_p50)
    high = _fresh(whatif, company_target=1.0 * base.bookings_p50)
    for result in (low, high):
        assert result.ok, result.message
        assert result.computed == ("quota", "compensation")
        assert {"data", "territory", "forecast", "pipeline", "reconcile"} <= set(result.restored)
        assert result.headline.bookings_p50 == base.bookings_p50  # the target does not sell anything
    assert high.headline.company_target == pytest.approx(2.0 * low.headline.company_target)
    assert high.headline.share_likely_at_quota < low.headline.share_likely_at_quota
    assert high.headline.expected_share_at_quota < low.headline.expected_share_at_quota


def test_admin_time_to_selling_reruns_pipeline_onwards_and_raises_bookings(whatif):
    base = whatif.baseline.headline
    result = whatif.on_admin_time({"new": 0.5})
    assert result.ok, result.message
    assert {"pipeline", "reconcile", "quota", "compensation"} <= set(result.computed)
    assert {"data", "territory", "forecast"} <= set(result.restored)
    assert result.headline.bookings_p50 > base.bookings_p50


def test_a_target_no_quota_plan_can_meet_says_so_and_keeps_the_last_good_figures(whatif):
    before = (whatif.settings, whatif.last)
    result = _fresh(whatif, company_target=10.0 * whatif.baseline.headline.company_target)
    assert not result.ok and result.headline is None
    assert "failed" in result.message and "lower the target" in result.message, result.message
    assert (whatif.settings, whatif.last) == before
    assert "Traceback" not in whatif.summary_html(result)


@pytest.mark.parametrize(
    ("lever", "value", "expected"),
    [
        ("company_target", -5, r"Company target \(company_target\) = -5: must be a positive amount"),
        ("company_target", "lots", r"company_target\) = 'lots': not a number"),
        ("balance_tolerance", 1.5, r"balance\[0\]\.tolerance\) = 1\.5: must be a share in \[0, 1\)"),
        ("admin_time_reduction", -0.1, r"admin_time_reduction\) = -0\.1: must be a share"),
        ("commission_plan", "nope", r"not a plan this scenario costs; choose one of ae_standard, uncapped_1x_2x"),
    ],
)
def test_bad_value_gives_a_message_not_a_traceback(whatif, lever, value, expected):
    before = (whatif.settings, whatif.last)
    result = whatif.apply(**{lever: value})
    assert not result.ok and result.computed == () and result.out_dir is None
    assert result.message and re.search(expected, result.message), result.message
    assert (whatif.settings, whatif.last) == before, "a refused value must leave the what-if as it was"
    shown = whatif.summary_html(result)
    assert "Not applied" in shown and "Traceback" not in shown
    assert whatif.cost_chart_png(result).startswith(b"\x89PNG")


def test_settings_of_a_scenario_and_summary(whatif):
    s = WhatIfSettings.of(whatif.base)
    assert s == WhatIfSettings(None, 0.10, 0.0, "ae_standard")
    text = whatif.summary_html(whatif.baseline)
    assert "Commission cost P10" in text and "Recomputed: data, territory" in text
    assert whatif.cost_chart_png(whatif.last).startswith(b"\x89PNG")


def test_widget_observers_call_the_callbacks(whatif):
    """The notebook's wiring: a real ipywidgets Dropdown whose change runs the what-if."""
    widgets = pytest.importorskip("ipywidgets")
    seen = []
    plan = widgets.Dropdown(options=whatif.plans, value="ae_standard")
    plan.observe(lambda change: seen.append(whatif.on_commission_plan(change)), names="value")
    plan.value = "uncapped_1x_2x"
    assert len(seen) == 1 and seen[0].ok and whatif.settings.commission_plan == "uncapped_1x_2x"
    box = widgets.FloatText(value=1.0)
    box.observe(lambda change: seen.append(whatif.on_target(change)), names="value")
    box.value = -3.0
    assert "must be a positive amount" in seen[-1].message


def test_notebook_cells_wire_the_widgets(whatif, tmp_path):
    """The shipped notebook's cells, run in this process on this module's what-if folder (cache
    warm): the first run is restored, and moving the plan dropdown re-runs at most compensation."""
    import yaml

    scenario_file = tmp_path / "whatif.yaml"
    scenario_file.write_text(yaml.safe_dump(SCENARIO))
    nb = nbformat.read(notebooks_dir() / "whatif.ipynb", as_version=4)
    ns = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, "whatif.ipynb", "exec"), ns)  # noqa: S102 (our own notebook)
            if "parameters" in cell.metadata.get("tags", []):
                ns.update(scenario_path=str(scenario_file), out_dir=str(whatif.out_root), seed=None)
    nb_whatif = ns["whatif"]
    assert nb_whatif.baseline.computed == ()  # every stage restored from the module's cache
    ns["plan"].value = "uncapped_1x_2x"
    assert nb_whatif.last.settings.commission_plan == "uncapped_1x_2x"
    # compensation may be restored too when an earlier test costed this plan already
    assert set(nb_whatif.last.restored) >= set(STAGE_ORDER) - {"compensation"}
    shown = []  # what show() puts in the output area (no kernel here to capture the Output widget)
    ns["HTML"] = lambda text: shown.append(text) or text
    ns["target"].value = -1.0
    assert "Not applied" in shown[-1] and "must be a positive amount" in shown[-1] and "Traceback" not in shown[-1]
    assert nb_whatif.last.settings.commission_plan == "uncapped_1x_2x", "a refused value changes nothing"
