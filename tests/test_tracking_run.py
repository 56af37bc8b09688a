"""Tracking a saved plan end to end on a tiny sample company (plan built once for the module)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from tracking_fixtures import build_plan, folder_digest, write_actuals

from salesops_models.cli import main
from salesops_models.errors import TrackingError
from salesops_models.tracking import load_actuals, load_saved_plan, track, track_plan

TRIALS = 100
pytestmark = pytest.mark.slow  # a plan and a few Monte Carlo runs: ~20 s for the module on 2 cores


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracking")
    plan = build_plan(root)
    before = folder_digest(plan)
    june = write_actuals(root, "2026-06-30")
    run = track_plan(plan, june, trials=TRIALS)
    return {"root": root, "plan": plan, "before": before, "june": june, "run": run}


def test_a_run_writes_its_folder_and_never_touches_the_plan(world):
    run, plan = world["run"], world["plan"]
    assert folder_digest(plan) == world["before"]  # every file of the plan, byte for byte
    assert run.folder.parent == plan / "tracking" and run.folder.name.startswith("2026-06-30_")
    for name in ("standing_by_rep", "standing_by_region", "standing_by_manager", "kpi_history", "risk",
                 "reforecast_samples", "commission_cost_samples", "monthly_quota", "quota_transfers"):  # fmt: skip
        assert (run.folder / f"{name}.parquet").is_file(), name
    html = run.report.read_text()
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html
    assert html.count('src="data:image/png;base64,') == 5
    summary = json.loads((run.folder / "tracking_summary.json").read_text())
    assert summary["as_of"] == "2026-06-30" and summary["trials"] == TRIALS
    assert summary["plan_folder"] == str(plan.resolve())
    assert run.result.summary()["year_end"] == summary["year_end"]
    rf = run.result.reforecast.summary()
    assert rf["year_end_p50"] == pytest.approx(summary["year_end"]["p50"])
    assert rf["booked_to_date"] == pytest.approx(summary["booked_to_date"])


def test_kpi_history_has_one_row_per_month_and_kpi(world):
    k = pd.read_parquet(world["run"].folder / "kpi_history.parquet")
    assert list(k.columns) == ["month", "kpi", "unit", "plan", "actual", "partial"]
    assert len(k) == 6 * 5 and not k.duplicated(["month", "kpi"]).any()
    assert set(k["kpi"]) == {
        "win_rate",
        "cycle_days",
        "revenue_per_rep",
        "selling_time_share",
        "forecast_accuracy",
    }
    assert not k["partial"].any()  # 30 June closes its month
    wr = k[k["kpi"] == "win_rate"]
    assert wr["actual"].between(0, 1).all() and wr["plan"].between(0, 1).all()
    assert k.loc[k["kpi"] == "selling_time_share", "actual"].between(0.3, 0.9).all()


def test_the_reforecast_is_conditioned_on_what_is_booked(world):
    folder = world["run"].folder
    rep = pd.read_parquet(folder / "standing_by_rep.parquet").set_index("rep_id")
    samples = pd.read_parquet(folder / "reforecast_samples.parquet")
    low = samples.groupby("rep_id")["bookings"].min()
    assert (low >= rep["booked_to_date"].reindex(low.index) - 1e-6).all()
    # booked to date, recomputed from the export: won deals closed in the plan year up to the date
    o = load_actuals(world["june"]).opportunities
    won = o[(o["status"] == "won") & o["close_date"].between("2026-01-01", "2026-06-30")]
    expect = won.groupby("rep_id")["amount"].sum().reindex(rep.index, fill_value=0.0)
    np.testing.assert_allclose(rep["booked_to_date"], expect)
    assert (rep["year_end_p10"] <= rep["year_end_p50"]).all() and (
        rep["year_end_p50"] <= rep["year_end_p90"]
    ).all()


def test_attainment_to_date_adds_up_against_the_period_quotas(world):
    folder, plan = world["run"].folder, load_saved_plan(world["plan"])
    rep = pd.read_parquet(folder / "standing_by_rep.parquet").set_index("rep_id")
    q = plan.monthly_quota
    np.testing.assert_allclose(rep["quota_to_date"], q.loc[rep.index, range(1, 7)].sum(axis=1))
    np.testing.assert_allclose(rep["attainment_to_date"], rep["booked_to_date"] / rep["quota_to_date"])
    region = pd.read_parquet(folder / "standing_by_region.parquet").set_index("region")
    sums = rep.groupby("region")[["booked_to_date", "quota_to_date", "annual_quota"]].sum()
    pd.testing.assert_frame_equal(region[sums.columns], sums, check_names=False)
    assert region["p_make_quota"].between(0, 1).all()


def test_at_year_end_the_band_is_what_was_booked(world):
    plan = load_saved_plan(world["plan"])
    dec = load_actuals(write_actuals(world["root"], "2026-12-31"))
    result = track(plan, dec, trials=20)
    rep = result.tables["standing_by_rep"].set_index("rep_id")
    o = dec.opportunities
    won = o[(o["status"] == "won") & (o["close_date"].dt.year == 2026)]
    realised = won.groupby("rep_id")["amount"].sum().reindex(rep.index, fill_value=0.0)
    for col in ("year_end_p10", "year_end_p90", "booked_to_date"):
        np.testing.assert_allclose(rep[col], realised)
    assert rep["p_make_quota"].isin([0.0, 1.0]).all()
    # the same as-of date earlier in the year: an earlier export of the same company
    june = track(plan, dec, as_of="2026-06-30", trials=20).tables["standing_by_rep"].set_index("rep_id")
    np.testing.assert_allclose(
        june["booked_to_date"],
        pd.read_parquet(world["run"].folder / "standing_by_rep.parquet").set_index("rep_id")[
            "booked_to_date"
        ],
    )


def test_a_second_run_keeps_the_first_and_draws_the_trend(world):
    first = world["run"]
    again = track_plan(world["plan"], world["june"], trials=TRIALS)
    assert again.folder != first.folder and first.report.is_file()
    assert first.folder.name in again.report.read_text()  # linked as an earlier run
    risk = pd.read_parquet(again.folder / "risk.parquet")
    reps = risk[risk["level"] == "rep"]
    # same plan, export, date and seed: the same numbers, so nothing changed since the first run
    np.testing.assert_allclose(reps["p_previous"], reps["p_now"])
    a = json.loads((first.folder / "tracking_summary.json").read_text())
    b = json.loads((again.folder / "tracking_summary.json").read_text())
    assert a["year_end"] == b["year_end"] and a["commission_year_end"] == b["commission_year_end"]
    assert folder_digest(world["plan"]) == world["before"]


def test_a_rep_who_left_books_nothing_more_and_his_deals_follow_his_accounts(world, tmp_path):
    plan = load_saved_plan(world["plan"])
    leaver, heir = "R001", "R002"
    changes = tmp_path / "changes.yaml"
    changes.write_text(
        yaml.safe_dump(
            {
                "changes": [
                    {"type": "departure", "rep_id": leaver, "last_day": "2026-03-31", "accounts_to": heir}
                ]
            }
        )
    )
    run = track_plan(world["plan"], world["june"], changes=changes, trials=TRIALS, out=tmp_path / "hist")
    rep = run.result.tables["standing_by_rep"].set_index("rep_id")
    q = plan.monthly_quota
    assert rep.loc[leaver, "annual_quota"] == pytest.approx(q.loc[leaver, [1, 2, 3]].sum())
    assert rep.loc[heir, "annual_quota"] == pytest.approx(
        q.loc[heir].sum() + q.loc[leaver, range(4, 13)].sum()
    )
    o = load_actuals(world["june"]).opportunities
    won = o[(o["status"] == "won") & o["close_date"].between("2026-01-01", "2026-06-30")]
    mine = won[won["rep_id"] == leaver]
    assert rep.loc[leaver, "booked_to_date"] == pytest.approx(
        mine.loc[mine["close_date"] <= "2026-03-31", "amount"].sum()
    )
    heir_expect = (
        won.loc[won["rep_id"] == heir, "amount"].sum()
        + mine.loc[mine["close_date"] > "2026-03-31", "amount"].sum()
    )
    assert rep.loc[heir, "booked_to_date"] == pytest.approx(heir_expect)
    assert rep.loc[leaver, "year_end_p90"] == pytest.approx(rep.loc[leaver, "booked_to_date"])  # no future
    assert rep.loc[leaver, "employment_share"] == pytest.approx(90 / 365)
    assert (run.folder / "changes.yaml").is_file()
    assert "R001" in run.report.read_text() and run.folder.parent == tmp_path / "hist"


def test_actuals_from_another_company_are_refused(world, tmp_path):
    bigger = write_actuals(tmp_path, "2026-06-30", n_accounts=120, n_reps=9)
    with pytest.raises(TrackingError, match=r"rep\(s\) own plan-year deals but are not reps of the plan"):
        track_plan(world["plan"], bigger, trials=10, out=tmp_path / "h")
    other_seed = write_actuals(tmp_path / "s", "2026-06-30", seed=8)
    with pytest.raises(TrackingError, match="agree on rep, account, status, close date and amount"):
        track_plan(world["plan"], other_seed, trials=10, out=tmp_path / "h")
    assert not (tmp_path / "h").exists() or not any((tmp_path / "h").iterdir())  # nothing written


@pytest.mark.parametrize(
    ("as_of", "match"),
    [
        ("2025-12-31", "before the plan year 2026"),
        ("2026-07-15", "after the export's date 2026-06-30"),
        ("2026-02-30", "is not a date"),
    ],
)
def test_tracking_dates_outside_the_year_or_the_export_are_refused(world, as_of, match):
    with pytest.raises(TrackingError, match=match):
        track(load_saved_plan(world["plan"]), load_actuals(world["june"]), as_of=as_of, trials=10)


def test_a_change_after_the_tracking_date_is_refused(world, tmp_path):
    changes = tmp_path / "c.yaml"
    changes.write_text("changes:\n  - {type: departure, rep_id: R003, last_day: 2026-08-31}\n")
    with pytest.raises(TrackingError, match="dated 2026-08-31, after the as-of date 2026-06-30"):
        track_plan(world["plan"], world["june"], changes=changes, trials=10, out=tmp_path / "h")


def test_a_plan_from_another_version_or_incomplete_is_refused(world, tmp_path):
    old = tmp_path / "old_plan"
    shutil.copytree(world["plan"], old, ignore=shutil.ignore_patterns("tracking"))
    f = old / "scenario.resolved.yaml"
    f.write_text(f.read_text().replace("package_version: 0.1.0", "package_version: 0.0.3"))
    with pytest.raises(TrackingError, match=r"written by salesops 0\.0\.3, this is salesops 0\.1\.0"):
        load_saved_plan(old)
    f.write_text(f.read_text().replace("package_version: 0.0.3", "package_version: 0.1.0"))
    (old / "quotas_by_period.parquet").unlink()
    with pytest.raises(
        TrackingError, match="quotas_by_period.parquet: missing; tracking needs the quota stage"
    ):
        load_saved_plan(old)
    with pytest.raises(TrackingError, match="no scenario.resolved.yaml"):
        load_saved_plan(tmp_path)


def test_the_command_line_names_the_problem_without_a_traceback(world):
    r = CliRunner().invoke(
        main, ["track", str(world["plan"]), "--actuals", str(world["june"]), "--as-of", "2025-06-30"]
    )
    assert r.exit_code == 1
    assert "before the plan year 2026" in r.output and "Traceback" not in r.output


PAGE = """JSON.stringify({
  images: [...document.images].map(i => ({complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
                                          data: i.src.startsWith('data:image/png;base64,')})),
  links: [...document.links].map(a => a.href),
  scripts: document.scripts.length,
  reps: [...document.querySelectorAll('#reps tbody tr')].map(r => r.dataset.rep),
  kpiRows: document.querySelectorAll('#kpi-table tbody tr').length,
  title: document.title
})"""


def test_the_report_renders_in_headless_chromium(world, tmp_path):
    from urllib.parse import unquote, urlparse

    from test_browser import _chromium, page_facts

    binary = _chromium()
    if binary is None:
        if os.environ.get("SALESOPS_REQUIRE_BROWSER"):
            pytest.fail(
                "SALESOPS_REQUIRE_BROWSER is set but chromium is not installed (apt-get install chromium)"
            )
        pytest.skip("chromium not installed (apt-get install -y chromium chromium-driver)")
    # a second run, so that the page also links an earlier run
    report = track_plan(world["plan"], world["june"], trials=20).report
    tools, facts = page_facts(binary, tmp_path / "profile", report, PAGE)
    errors = [
        e for e in tools.events if e.get("method") in {"Runtime.exceptionThrown", "Network.loadingFailed"}
    ]
    errors += [
        e
        for e in tools.events
        if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
    ]
    assert errors == [], errors
    requests = [
        e["params"]["request"]["url"] for e in tools.events if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests and all(u.startswith(("file:", "data:")) for u in requests), requests
    assert facts["scripts"] == 0
    assert len(facts["images"]) == 5
    for img in facts["images"]:
        assert img["complete"] and img["data"] and img["w"] > 100 and img["h"] > 100, img
    assert facts["links"], "the report links its tables and the earlier run"
    for href in facts["links"]:
        url = urlparse(href)
        assert url.scheme == "file", href
        assert os.path.exists(unquote(url.path)), f"broken link {href}"
    assert any(h.endswith("/report.html") for h in facts["links"]), "earlier run linked"
    plan = load_saved_plan(world["plan"])
    assert sorted(facts["reps"]) == sorted(plan.quotas["rep_id"])
    assert facts["kpiRows"] == 6
    assert facts["title"] == "Tracking tiny_plan 2026 as of 2026-06-30"
