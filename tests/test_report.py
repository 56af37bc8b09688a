"""index.html, report.html and notebooks.html: self-contained, complete, every data-derived name escaped.

The batch folder of the index tests is built by hand (no model runs), so they are fast and know every
value; the scenario-report tests run the tiny scenario once with every optional output switched on.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from salesops_models.workflow.collect import load_changes, load_metrics, load_table, scenario_dirs
from salesops_models.workflow.report import build_index, build_scenario_report, export_notebooks_html
from salesops_models.workflow.results import write_summary

XSS_REP = "<script>alert(1)</script>"
XSS_DESCRIPTION = "<img src=x onerror=alert(2)> & more"
XSS_ERROR = '<script>alert("err")</script> boom'
QUOTA = {"base": 1_234_567.0, "variant": 2_000_000.0}


def make_fake_batch(root: Path) -> Path:
    """A batch folder as ``run_batch`` leaves it: two scenarios that ran, one that failed."""
    batch = root / "batch-1"
    rng = np.random.default_rng(0)
    reps = [XSS_REP, "R002", "R003", "R004"]
    records = []
    for name, status in (("base", "ok"), ("variant", "ok"), ("bad", "failed")):
        d = batch / name
        (d / "logs").mkdir(parents=True)
        description = XSS_DESCRIPTION if name == "variant" else f"Scenario {name}."
        resolved = {"name": name, "description": description, "seed": 1}
        resolved_text = yaml.safe_dump(resolved) + yaml.safe_dump(
            {"_provenance": {"package_version": "0.1.0", "git_commit": "abc123"}}
        )
        (d / "scenario.resolved.yaml").write_text(resolved_text)
        changes = {"base": None, "changes": []}
        if name != "base":
            changes = {"base": "base", "changes": [{"key": "quota.method", "base": "even", "value": XSS_REP}]}
        (d / "changes.json").write_text(json.dumps(changes))
        if status == "failed":
            metrics = {"scenario": name, "status": "failed", "error": XSS_ERROR}
            (d / "logs" / "batch.log").write_text("line one\n<b>not bold</b> Traceback: boom\n")
        else:
            metrics = {
                "scenario": name,
                "status": "ok",
                "error": None,
                "quota_total": QUOTA[name],
                "pipeline_bookings_p10": 900_000.0,
                "pipeline_bookings_p50": 1_100_000.0,
                "pipeline_bookings_p90": 1_300_000.0,
                "comp_share_at_quota": 0.55,
                "comp_cost_p50": 150_000.0,
                "comp_cost_p90": 180_000.0,
                "comp_cost_of_sales": 0.12,
                "territory_balance_max_min": 1.25,
                "territory_balance_cv": 0.08,
                "territory_disruption_share": 0.1,
                "forecast_backtest_mape": 0.15,
                "territory_status": "optimal",
                "territory_mip_gap": 0.004,
            }
            months = pd.date_range("2026-01-01", periods=12, freq="MS")
            mid = np.linspace(90, 110, 12)
            pd.DataFrame(
                {"level": "company", "series": "company", "month": months, "model": "theta", "mean": mid}
                | {f"q{p:02d}": mid * (0.6 + p / 125) for p in (5, 10, 25, 50, 75, 90, 95)}
            ).to_parquet(d / "forecast.parquet")
            trials = np.repeat(np.arange(200), len(reps))
            pd.DataFrame(
                {"trial": trials, "rep_id": reps * 200, "bookings": rng.lognormal(12, 0.4, trials.size)}
            ).to_parquet(d / "rep_bookings_samples.parquet")
            pd.DataFrame({"rep_id": reps, "quota": 160_000.0, "p_attain": [0.2, 0.5, 0.7, 0.9]}).to_parquet(
                d / "quotas.parquet"
            )
            pd.DataFrame(
                {"trial": np.arange(200), "total_cost": rng.normal(150_000, 10_000, 200)}
            ).to_parquet(d / "comp_cost_samples.parquet")
            pd.DataFrame(
                {
                    "rep_id": reps,
                    "workload_hours": [100.0, 110, 90, 100],
                    "workload_hours_target": 100.0,
                    "workload_hours_deviation": [0.0, 0.1, -0.1, 0.0],
                }
            ).to_parquet(d / "territories.parquet")
            accounts = pd.DataFrame(
                {
                    "account_id": [f"A{i}" for i in range(40)],
                    "lat": rng.uniform(30, 45, 40),
                    "lon": rng.uniform(-120, -75, 40),
                }
            )
            (d / "data").mkdir()
            accounts.to_parquet(d / "data" / "accounts.parquet")
            pd.DataFrame(
                {
                    "account_id": accounts["account_id"],
                    "rep_id": [reps[i % 4] for i in range(40)],
                    "moved": [i % 7 == 0 for i in range(40)],
                }
            ).to_parquet(d / "assignments.parquet")
            (d / "report.html").write_text("<html><body>report</body></html>")
        (d / "metrics.json").write_text(json.dumps(metrics))
        records.append(metrics)
    write_summary(batch, records)
    return batch


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[str | None] = []
        self._table: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id")
        if self._table == "comparison" and tag == "tr" and "data-key" in a:
            self.rows.append(a["data-key"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None


def assert_self_contained(page: str, min_images: int = 1) -> list[dict]:
    """No script or external resource; every image an embedded PNG that decodes. Returns the images."""
    parser = _Collector()
    parser.feed(page)
    images = [a for t, a in parser.tags if t == "img"]
    assert len(images) >= min_images
    for a in images:
        src = a["src"] or ""
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    assert not [t for t, _ in parser.tags if t in {"script", "link", "iframe", "object", "embed"}]
    external = [
        a.get("href") or a.get("src")
        for _, a in parser.tags
        if re.match(r"^(https?:)?//", (a.get("href") or a.get("src") or ""))
    ]
    assert external == []
    return images


@pytest.fixture()
def batch(tmp_path):
    return make_fake_batch(tmp_path)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """index.html of the fake batch (built once: charts take a few seconds)."""
    return build_index(make_fake_batch(tmp_path_factory.mktemp("index"))).read_text()


def test_index_escapes_data_derived_names(page):
    assert "<script" not in page.lower(), "a data-derived <script> reached the page unescaped"
    assert "<img src=x" not in page and "<b>not bold</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # rep id: shown as text
    assert "&lt;img src=x onerror=alert(2)&gt; &amp; more" in page  # scenario description
    assert "&lt;script&gt;alert(&#34;err&#34;)&lt;/script&gt; boom" in page  # error message
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page  # log tail


def test_index_is_self_contained(page):
    images = assert_self_contained(page)
    assert len(images) == 5, "forecast fan, attainment, commission cost, territory balance, territory map"


def test_comparison_table_has_one_row_per_scenario(page):
    parser = _Collector()
    parser.feed(page)
    assert parser.rows == ["base", "variant", "bad"]  # batch (input) order
    base_row = re.search(r'<tr data-key="base">(.*?)</tr>', page, re.S).group(1)
    assert "1,234,567" in base_row and "55.0%" in base_row and "optimal" in base_row and "0.4%" in base_row
    assert '<tr class="failed" data-key="bad">' in page
    bad_row = re.search(r'<tr class="failed" data-key="bad">(.*?)</tr>', page, re.S).group(1)
    assert bad_row.count('class="num na">n/a<') == 13 and bad_row.count('class="na">n/a<') == 1, (
        "the failed scenario has no metrics: 14 n/a cells"
    )
    assert '<a href="base/report.html">base</a>' in page


def test_index_reports_failures_and_changes(page):
    failures = page.split('<section id="failures">')[1].split("<section")[0]
    assert "bad" in failures and "boom" in failures and "bad/logs/batch.log" in failures
    changes = page.split('<section id="changes">')[1].split("<section")[0]
    assert "quota.method" in changes and "even" in changes and "variant vs base" in changes


def test_index_links_each_scenarios_files(page):
    scenarios = page.split('<table id="scenarios">')[1].split("</table>")[0]
    assert '<a href="base/report.html">report</a>' in scenarios
    assert "plan.xlsx" not in scenarios, "the fake batch wrote no plan.xlsx: no link to a missing file"


def test_collect_api_indexes_by_scenario(batch):
    metrics = load_metrics(batch)
    assert list(metrics.index) == ["base", "variant", "bad"] and metrics.index.name == "scenario"
    assert metrics.loc["variant", "quota_total"] == QUOTA["variant"]
    quotas = load_table(batch, "quotas")
    assert quotas.index.names[0] == "scenario"
    assert quotas.groupby(level="scenario")["quota"].sum().to_dict() == {
        "base": 640_000.0,
        "variant": 640_000.0,
    }
    assert load_table(batch, "no_such_table").empty
    assert set(scenario_dirs(batch)) == {"bad", "base", "variant"}
    assert load_changes(batch)["variant"]["base"] == "base"
    (batch / "summary.parquet").unlink()  # falls back to each scenario's metrics.json
    assert load_metrics(batch).loc["bad", "status"] == "failed"


def test_notebooks_page_has_no_code_and_no_script(tmp_path):
    out = tmp_path / "scn"
    (out / "notebooks").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    plumbing = nbformat.v4.new_code_cell("secret_plumbing = 1")
    plumbing.metadata["tags"] = ["remove-cell"]
    shown = nbformat.v4.new_code_cell("visible_code_line = 2")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 20).decode()
    shown.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("stream", name="stderr", text="SomeWarning: noisy\n"),
        nbformat.v4.new_output("display_data", data={"text/plain": "table of " + XSS_REP}),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Territory design"), plumbing, shown]
    nbformat.write(nb, out / "notebooks" / "territory_design.ipynb")
    page = export_notebooks_html(out, intro=XSS_DESCRIPTION).read_text()
    assert "visible_code_line" not in page and "secret_plumbing" not in page
    assert "SomeWarning" not in page
    assert "Territory design" in page and f"data:image/png;base64,{png}" in page
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)


# ------------------------------------------------------------------------------------------------
# report.html of a real run: every stage output shown
# ------------------------------------------------------------------------------------------------

FULL = {
    "extends": None,  # set to the tiny scenario's path
    "name": "tiny_full",
    "description": "Tiny scenario with every optional output: trade-off curve, simpy capacity.",
    "territory": {"tradeoff_budgets": [0.0, 0.3]},
    "pipeline": {"capacity": {"enabled": True, "trials": 3}},
}

#: the tables report.html must show for a run with every stage and option on (table ids)
SCENARIO_TABLES = (
    "stages", "balance", "territories", "relaxation", "tradeoff", "forecast-by-region", "forecast-accuracy",
    "pipeline-by-month", "pipeline-reps", "coverage", "capacity", "quota-methods", "risk", "quotas",
    "quota-capacity", "plan-comparison", "plan-costing", "quartiles", "cost-by-month", "payouts", "kpi-by-rep",
    "kpi-by-quarter",
)  # fmt: skip


def run_full_scenario(root: Path) -> Path:
    """Run the tiny scenario with every optional output into ``root/batch/tiny_full`` (about 10 s);
    returns the batch folder (with index.html)."""
    from salesops_models.scenario import load_scenario
    from salesops_models.workflow.notebooks import tiny_scenario_path
    from salesops_models.workflow.runner import run_scenario

    spec = root / "tiny_full.yaml"
    spec.write_text(yaml.safe_dump(FULL | {"extends": str(tiny_scenario_path())}))
    batch = root / "batch"
    # the base lives in notebooks/, outside this folder: allowed explicitly (the path rule)
    outcome = run_scenario(load_scenario(spec, allow_dirs=[tiny_scenario_path().parent]), batch / "tiny_full")
    assert outcome.status == "ok", outcome.error
    write_summary(batch, [outcome.metrics])
    build_index(batch)
    return batch


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    return run_full_scenario(tmp_path_factory.mktemp("full")) / "tiny_full"


def table_rows(page: str, table_id: str) -> list[str]:
    body = page.split(f'<table id="{table_id}">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr[^>]*data-key="([^"]*)"', body)


@pytest.mark.slow
def test_scenario_report_shows_every_stage_output(full_run):
    page = (full_run / "report.html").read_text()
    assert "could not be rendered" not in page and "Not available" not in page
    for table_id in SCENARIO_TABLES:
        assert f'<table id="{table_id}">' in page, f"table {table_id} missing from report.html"
    # territory balance, map, trade-off, company and region forecasts, team bookings, bookings by
    # month, cost by plan, cost of sales by quartile, cost by month
    assert len(assert_self_contained(page)) == 10
    assert table_rows(page, "balance") == ["workload_hours", "potential"], "every balance metric"
    assert table_rows(page, "forecast-by-region") == ["East", "West"]
    assert len(table_rows(page, "pipeline-by-month")) == 12 and len(table_rows(page, "cost-by-month")) == 12


@pytest.mark.slow
def test_risk_table_lists_the_reps_least_likely_to_make_the_year_first(full_run):
    from salesops_models.quota.risk import quarterly_attainment_risk

    page = (full_run / "report.html").read_text()
    risk = quarterly_attainment_risk(
        pd.read_parquet(full_run / "rep_bookings_by_quarter_samples.parquet"),
        pd.read_parquet(full_run / "quotas_by_period.parquet"),
    )
    assert table_rows(page, "risk") == risk.by_rep["rep_id"].tolist()
    p_year = risk.by_rep["p_attain_year"].to_numpy()
    assert (np.diff(p_year) >= 0).all()
    # the year's probability from the quarters is the quota stage's own P(attain) (same samples, no relief)
    quotas = pd.read_parquet(full_run / "quotas.parquet").set_index("rep_id")
    np.testing.assert_allclose(p_year, quotas.loc[risk.by_rep["rep_id"], "p_attain"].to_numpy())
    first = risk.by_rep.iloc[0]
    row = re.search(rf'<tr data-key="{first.rep_id}">(.*?)</tr>', page.split('id="risk"')[1], re.S).group(1)
    assert f"{100 * first.p_attain_year:.0f}%" in row and f"statements/{first.rep_id}.html" in row
    # the simulated quarters add up to the plan-year samples the quotas were set on
    q = pd.read_parquet(full_run / "rep_bookings_by_quarter_samples.parquet")
    annual = pd.read_parquet(full_run / "rep_bookings_samples.parquet")
    summed = q.groupby(["trial", "rep_id"])["bookings"].sum()
    np.testing.assert_allclose(summed.loc[list(zip(annual["trial"], annual["rep_id"], strict=True))],
                               annual["bookings"])  # fmt: skip


@pytest.mark.slow
def test_every_link_of_the_scenario_report_resolves(full_run):
    page = (full_run / "report.html").read_text()
    hrefs = re.findall(r'href="([^"]+)"', page)
    from urllib.parse import unquote

    files = [h for h in hrefs if not h.startswith("#")]
    assert {"plan.xlsx", "assignments_crm.csv", "statements/index.html"} <= set(files)
    reps = pd.read_parquet(full_run / "quotas.parquet")["rep_id"]
    assert {f"statements/{r}.html" for r in reps} <= set(files), "every rep's statement is linked"
    for h in files:
        assert (full_run / unquote(h)).exists(), h
    for anchor in [h[1:] for h in hrefs if h.startswith("#")]:
        assert f'id="{anchor}"' in page


def degraded_copy(full_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "tiny_full"
    shutil.copytree(full_run, out, ignore=shutil.ignore_patterns("report.html"))
    return out


def _metrics(out: Path, **changes) -> None:
    m = json.loads((out / "metrics.json").read_text())
    (out / "metrics.json").write_text(json.dumps(m | changes))


@pytest.mark.slow
def test_report_of_a_failed_scenario_says_what_is_missing_and_why(full_run, tmp_path):
    out = degraded_copy(full_run, tmp_path)
    for stage in ("pipeline", "quota", "compensation"):
        (out / "stages" / f"{stage}.metrics.json").unlink()
    for f in out.glob("*.parquet"):
        if f.stem.startswith(("rep_bookings", "pipeline", "quota", "comp_", "payouts")):
            f.unlink()
    _metrics(out, status="failed", error="stage pipeline: RuntimeError: " + XSS_REP)
    page = build_scenario_report(out).read_text()
    assert "could not be rendered" not in page
    assert "Not available: the pipeline stage failed: stage pipeline: RuntimeError: &lt;script&gt;" in page
    assert "Not available: the quota stage did not run (an earlier stage failed)." in page
    assert "Not available: the compensation stage did not run (an earlier stage failed)." in page
    assert '<table id="balance">' in page and '<table id="forecast-by-region">' in page, (
        "earlier stages still show"
    )
    assert '<tr class="state-failed" data-key="pipeline">' in page


@pytest.mark.slow
def test_report_of_disabled_stages_and_damaged_tables(full_run, tmp_path):
    out = degraded_copy(full_run, tmp_path)
    (out / "stages" / "forecast.metrics.json").unlink()
    for f in out.glob("forecast*.parquet"):
        f.unlink()
    _metrics(out, forecast_skipped=True)
    (out / "pipeline_by_month.parquet").write_bytes(b"PAR1 truncated")
    (out / "territory_tradeoff.parquet").unlink()
    page = build_scenario_report(out).read_text()
    assert "could not be rendered" not in page
    assert "Not available: the forecast stage is disabled in this scenario (forecast.enabled: false)." in page
    assert "Not available: pipeline_by_month: cannot read" in page
    assert "Damaged result: pipeline_by_month: cannot read" in page
    assert "Set territory.tradeoff_budgets to draw the curve." in page
    assert '<table id="risk">' in page and '<table id="payouts">' in page, "the other sections still show"


@pytest.mark.slow
def test_report_is_the_same_with_and_without_the_chart_cache(full_run, tmp_path, monkeypatch):
    from salesops_models.workflow import chart_cache
    from salesops_models.workflow.cache import StageCache

    out = degraded_copy(full_run, tmp_path)
    (out / "cache.json").unlink(missing_ok=True)
    stamp = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")

    def page(cache: StageCache | None) -> str:
        return stamp.sub("", build_scenario_report(out, cache=cache).read_text())

    plain = page(None)
    cache = StageCache(tmp_path / "cache")
    assert page(cache) == plain, "first run through the cache (every chart drawn and saved)"
    entries = list((cache.root / chart_cache.CHARTS_DIR).rglob("*.chart"))
    assert len(entries) == len(assert_self_contained(plain)), "every chart of the report is cached"

    def no_drawing(fig):
        raise AssertionError("a chart was drawn although its inputs are unchanged")

    monkeypatch.setattr(chart_cache, "figure_png", no_drawing)
    assert page(cache) == plain, "second run: every chart from the cache, the same page"
