"""plan.xlsx, assignments_crm.csv and the payout statements, written and read back.

The scenario folder is built by hand with known numbers (no model runs), so every value read back
can be compared with what went in.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml

from salesops_models.compensation import AttainmentSamples, CompInputs, load_plan
from salesops_models.compensation.statements import payout_traces
from salesops_models.workflow.collect import ScenarioResults
from salesops_models.workflow.context import STAGE_ORDER
from salesops_models.workflow.exports import CRM_COLUMNS, statement_filename, write_scenario_exports
from salesops_models.workflow.report import publish_scenario

XSS_REP = "<script>alert(1)</script>"
REPS = ["R1", "R2", XSS_REP]
QUARTER_QUOTA = {
    "R1": [10_000.0, 20_000.0, 30_000.0, 40_000.0],
    "R2": [25_000.0] * 4,
    XSS_REP: [0.0, 5_000, 5_000, 10_000],
}
TRIALS = 40


def make_scenario(root: Path) -> Path:
    """A scenario folder as a finished run leaves it, with hand-made tables."""
    d = root / "scn"
    (d / "stages").mkdir(parents=True)
    (d / "data").mkdir()
    resolved = {"name": "scn", "description": "Hand-made scenario.", "seed": 42, "plan_year": 2026,
                "compensation": {"plans": ["ae_standard"]}}  # fmt: skip
    text = yaml.safe_dump(resolved) + yaml.safe_dump({"_provenance": {"package_version": "0.1.0", "master_seed": 42,
                                                                        "created_utc": "2026-11-30T06:00:00Z"}})  # fmt: skip
    (d / "scenario.resolved.yaml").write_text(text)
    for stage in STAGE_ORDER:
        (d / "stages" / f"{stage}.metrics.json").write_text("{}")
    metrics = {"scenario": "scn", "status": "ok", "error": None, "comp_primary_plan": "ae_standard",
               "comp_attainment_source": "pipeline/quotas"}  # fmt: skip
    (d / "metrics.json").write_text(json.dumps(metrics))

    rows = []
    for rep, qs in QUARTER_QUOTA.items():
        rows += [(rep, f"2026-Q{k + 1}", "quarter", q) for k, q in enumerate(qs)]
        rows += [(rep, f"2026-{m:02d}", "month", qs[(m - 1) // 3] / 3) for m in range(1, 13)]
    pd.DataFrame(rows, columns=["rep_id", "period", "period_type", "quota"]).to_parquet(
        d / "quotas_by_period.parquet"
    )
    annual = {rep: sum(qs) for rep, qs in QUARTER_QUOTA.items()}
    pd.DataFrame({"rep_id": REPS, "quota": [annual[r] for r in REPS], "p_attain": [0.6, 0.4, 0.2],
                  "region": ["West", "East", "East"]}).to_parquet(d / "quotas.parquet")  # fmt: skip

    rng = np.random.default_rng(3)
    q_rows = [(t, rep, f"2026-Q{k + 1}", float(rng.uniform(0, 2) * max(QUARTER_QUOTA[rep][k], 1000)))
              for t in range(TRIALS) for rep in REPS for k in range(4)]  # fmt: skip
    quarterly = pd.DataFrame(q_rows, columns=["trial", "rep_id", "quarter", "bookings"])
    quarterly.to_parquet(d / "rep_bookings_by_quarter_samples.parquet")
    annual_b = quarterly.groupby(["trial", "rep_id"], sort=False)["bookings"].sum().reset_index()
    annual_b.to_parquet(d / "rep_bookings_samples.parquet")
    variable = rng.uniform(50_000, 150_000, TRIALS)
    pd.DataFrame({"trial": range(TRIALS), "base_cost": 240_000.0, "variable_cost": variable,
                  "total_cost": 240_000.0 + variable}).to_parquet(d / "comp_cost_samples.parquet")  # fmt: skip
    pd.DataFrame({"period": [f"2026-{m:02d}" for m in range(1, 13)], "mean": np.arange(1.0, 13.0),
                  "p10": 0.0, "p50": 1.0, "p90": 2.0}).to_parquet(d / "pipeline_by_month.parquet")  # fmt: skip
    pd.DataFrame({"rep_id": REPS, "accounts": [3, 2, 1], "workload_hours": [100.0, 90.0, 110.0],
                  "workload_hours_target": 100.0, "workload_hours_deviation": [0.0, -0.1, 0.1],
                  "workload_hours_lower": 90.0, "workload_hours_upper": 110.0,
                  "potential": [1.0, 2.0, 3.0], "potential_target": 2.0,
                  "potential_deviation": [-0.5, 0.0, 0.5]}).to_parquet(d / "territories.parquet")  # fmt: skip
    pd.DataFrame({"account_id": ["A3", "A1", "A2"], "rep_id": ["R1", XSS_REP, "R2"],
                  "previous_rep_id": ["R1", "R2", None], "moved": [False, True, True]}).to_parquet(
        d / "assignments.parquet")  # fmt: skip
    pd.DataFrame({"account_id": ["A1", "A2", "A3"],
                  "account_name": ["=HYPERLINK(\"http://x\")", "Zenjet, Partners", "Ünïcode GmbH"]}).to_parquet(
        d / "data" / "accounts.parquet")  # fmt: skip
    pd.DataFrame({"rep_id": REPS, "rep_name": ["Ann", "Bob", "Eve"], "manager": "Max"}).to_parquet(
        d / "data" / "reps.parquet"
    )

    plan = load_plan("ae_standard")
    bookings = annual_b.pivot(index="rep_id", columns="trial", values="bookings").reindex(REPS).to_numpy()
    samples = AttainmentSamples(REPS, np.array([annual[r] for r in REPS]), bookings)
    traces = payout_traces(plan, samples, CompInputs(quota_period_shares=np.full(4, 0.25)))
    traces.to_parquet(d / "comp_traces.parquet")
    pd.DataFrame({"rep_id": REPS, "quota": samples.quota, "payout_p10": 1.0, "payout_p50": 2.0, "payout_p90": 3.0,
                  "total_pay_p50": 4.0, "attainment_p50": 1.0, "p_attain": 0.5}).to_parquet(
        d / "payouts_summary.parquet")  # fmt: skip
    return d


@pytest.fixture()
def scenario(tmp_path: Path) -> Path:
    return make_scenario(tmp_path)


def sheet_rows(ws) -> tuple[list[str], list[dict]]:
    """Header and data rows of a sheet written by write_workbook (a note row, a blank row, the table)."""
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(values) if r and r[0] in ("Rep", "Month", "Setting", "Territory (rep)",
                                                                      "Metric"))  # fmt: skip
    header = values[start]
    return header, [dict(zip(header, r, strict=True)) for r in values[start + 1 :]]


def test_plan_workbook_reads_back_with_the_numbers_that_went_in(scenario):
    result = write_scenario_exports(ScenarioResults(scenario))
    assert result.failed == {} and result.skipped == {}
    wb = openpyxl.load_workbook(result.files["plan.xlsx"])
    assert wb.sheetnames == ["Quotas by quarter", "Quotas by month", "Commission cost by month", "Pay by rep",
                             "Territories", "Balance", "Assumptions"]  # fmt: skip

    header, rows = sheet_rows(wb["Quotas by quarter"])
    assert header[:4] == ["Rep", "Name", "Region", "Manager"]
    by_rep = {r["Rep"]: r for r in rows}
    for rep, qs in QUARTER_QUOTA.items():
        assert [by_rep[rep][f"2026-Q{k}"] for k in range(1, 5)] == qs
        assert by_rep[rep]["Year"] == sum(qs)
    assert by_rep["R1"]["Name"] == "Ann" and by_rep["R2"]["Region"] == "East"
    assert by_rep["Total"]["Year"] == sum(sum(q) for q in QUARTER_QUOTA.values())
    assert wb["Quotas by quarter"]["E4"].number_format == "#,##0"

    header, rows = sheet_rows(wb["Commission cost by month"])
    cost = pd.read_parquet(scenario / "comp_cost_samples.parquet")
    months = [r for r in rows if r["Month"] != "Year"]
    assert [r["Month"] for r in months] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert all(r["Base salaries"] == pytest.approx(20_000.0) for r in months)
    assert all(r["Total P10"] <= r["Total P50"] <= r["Total P90"] for r in months)
    year = rows[-1]
    assert year["Month"] == "Year" and year["Total P50"] == pytest.approx(cost["total_cost"].median())
    # the means of the months add up to the mean annual cost (accrual keeps every trial's total)
    assert sum(r["Total mean"] for r in months) == pytest.approx(cost["total_cost"].mean())

    _, rows = sheet_rows(wb["Territories"])
    assert [r["Territory (rep)"] for r in rows] == REPS
    _, rows = sheet_rows(wb["Balance"])
    assert {r["Metric"] for r in rows} == {"workload_hours", "potential"}, "every balanced metric"
    _, rows = sheet_rows(wb["Assumptions"])
    settings = {r["Setting"]: r["Value"] for r in rows}
    assert (
        settings["plan_year"] == 2026 and settings["seed"] == 42 and settings["provenance.master_seed"] == 42
    )
    assert settings["compensation.plans"] == "ae_standard"
    assert "bookings by quarter" in settings["how.commission cost by month"]


def test_crm_file_has_one_row_per_account_and_neutralised_formulas(scenario):
    path = write_scenario_exports(ScenarioResults(scenario)).files["assignments_crm.csv"]
    raw = path.read_text(encoding="utf-8")
    rows = list(csv.DictReader(raw.splitlines()))
    assert list(rows[0]) == CRM_COLUMNS
    assert [r["account_id"] for r in rows] == ["A1", "A2", "A3"]
    a1, a2, a3 = rows
    assert (a1["old_owner"], a1["new_owner"], a1["moved"]) == ("R2", XSS_REP, "true")
    assert (a1["old_owner_name"], a1["new_owner_name"]) == ("Bob", "Eve")
    assert a1["account_name"] == '\'=HYPERLINK("http://x")', "a formula-like name is neutralised"
    assert a2["old_owner"] == "" and a2["account_name"] == "Zenjet, Partners" and a2["moved"] == "true"
    assert a3["moved"] == "false" and a3["account_name"] == "Ünïcode GmbH"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])

    def handle_data(self, data):
        self.text.append(data)


def test_a_statement_per_rep_that_adds_up(scenario):
    published = publish_scenario(scenario, notebooks=[])
    assert published.problems == [] and {"report.html", "statements"} <= set(published.written)
    folder = scenario / "statements"
    names = {statement_filename(r) for r in REPS}
    assert {p.name for p in folder.glob("*.html")} == names | {"index.html"}
    assert not any("<" in n or "/" in n for n in names), "file names are safe whatever the rep id"
    index = _Links()
    index.feed((folder / "index.html").read_text())
    for href in index.hrefs:
        assert (folder / href).resolve().exists(), href
    traces = pd.read_parquet(scenario / "comp_traces.parquet")
    for rep in REPS:
        page = (folder / statement_filename(rep)).read_text()
        assert "<script>" not in page
        steps = traces[traces["rep_id"] == rep]
        base = steps.loc[steps["component"] == "base", "amount"].item()
        variable = steps.loc[steps["component"] == "variable", "amount"].item()
        total = re.search(r'id="total">([^<]+)<', page).group(1)
        assert float(total.replace(",", "")) == pytest.approx(base + variable, abs=0.005)
        assert page.count('<tr><td class="num">') >= len(steps), "one line per trace step"
        for formula in steps["formula"]:
            assert formula.replace('"', "&#34;") in page or formula in page
    eve = (folder / statement_filename(XSS_REP)).read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in eve and "Eve" in eve
    assert "2026-Q1" in eve and "ae_standard" in eve and "150% to no limit" in eve


def test_exports_degrade_when_a_stage_did_not_run(scenario):
    for table in ("comp_traces", "comp_cost_samples", "payouts_summary"):
        (scenario / f"{table}.parquet").unlink()
    (scenario / "stages" / "compensation.metrics.json").unlink()
    metrics = json.loads((scenario / "metrics.json").read_text())
    (scenario / "metrics.json").write_text(
        json.dumps(metrics | {"status": "failed", "error": "stage compensation: boom"})
    )
    result = write_scenario_exports(ScenarioResults(scenario))
    assert result.failed == {}
    assert set(result.files) == {"plan.xlsx", "assignments_crm.csv"}
    assert "compensation stage failed" in result.skipped["statements"]
    wb = openpyxl.load_workbook(result.files["plan.xlsx"])
    note = wb["Commission cost by month"]["A1"].value
    assert note.startswith("Not available") and "boom" in note
    assert sheet_rows(wb["Quotas by quarter"])[1], "the quota sheets are still there"


def test_exports_without_assignments_skip_the_crm_file(scenario, tmp_path):
    (scenario / "assignments.parquet").unlink()
    shutil.rmtree(scenario / "data")
    result = write_scenario_exports(ScenarioResults(scenario))
    assert "assignments_crm.csv" not in result.files and "territory" in result.skipped["assignments_crm.csv"]
    assert "plan.xlsx" in result.files and "statements" in result.files
