"""index.html and report.html: self-contained, one row per scenario, every data-derived name escaped.

The batch folder here is built by hand (no model runs), so these tests are fast and know every value.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from salesops_models.workflow.collect import load_changes, load_metrics, load_table, scenario_dirs
from salesops_models.workflow.report import build_index, export_scenario_report
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
        self._in_comparison = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table" and a.get("id") == "comparison":
            self._in_comparison = True
        if self._in_comparison and tag == "tr" and "data-scenario" in a:
            self.rows.append(a["data-scenario"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_comparison = False


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
    assert "&lt;script&gt;alert(&quot;err&quot;)&lt;/script&gt; boom" in page  # error message
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page  # log tail


def test_index_is_self_contained(page):
    parser = _Collector()
    parser.feed(page)
    images = [a for t, a in parser.tags if t == "img"]
    assert len(images) == 5, "forecast fan, attainment, commission cost, territory balance, territory map"
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


def test_comparison_table_has_one_row_per_scenario(page):
    parser = _Collector()
    parser.feed(page)
    assert parser.rows == ["base", "variant", "bad"]  # batch (input) order
    base_row = re.search(r'<tr data-scenario="base">(.*?)</tr>', page, re.S).group(1)
    assert "1,234,567" in base_row and "55.0%" in base_row and "optimal" in base_row and "0.4%" in base_row
    assert '<tr class="failed" data-scenario="bad">' in page
    assert page.count('class="num na">n/a<') == 14, "the failed scenario has no metrics: 14 n/a cells"
    assert '<a href="base/report.html">base</a>' in page


def test_index_reports_failures_and_changes(page):
    failures = page.split('id="failures"')[1].split("<h2>")[0]
    assert "bad" in failures and "boom" in failures and "bad/logs/batch.log" in failures
    changes = page.split("versus its base")[1].split("<h2>")[0]
    assert "quota.method" in changes and "even" in changes and "vs base" in changes


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


def test_scenario_report_has_no_code_and_no_script(tmp_path):
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
    page = export_scenario_report(out, intro=XSS_DESCRIPTION).read_text()
    assert "visible_code_line" not in page and "secret_plumbing" not in page
    assert "SomeWarning" not in page
    assert "Territory design" in page and f"data:image/png;base64,{png}" in page
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)
