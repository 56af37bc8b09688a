"""Outputs that travel: what a scenario hands to finance, the CRM and every rep.

Written at the end of a scenario run (:func:`write_scenario_exports`), into the scenario folder:

- ``plan.xlsx`` for finance (openpyxl): quotas by rep x quarter and by month, commission cost by
  month with P10/P50/P90, pay per rep, territory summary and balance, and an assumptions sheet
  with the resolved scenario and how each figure was made;
- ``assignments_crm.csv``: one row per account, ``account_id``, ``account_name``, ``old_owner``,
  ``new_owner`` (rep ids), their names, and ``moved`` (``true``/``false``), UTF-8, for a CRM import;
- ``statements/<rep>.html``: a payout statement per rep that follows the plan line by line
  (the compensation stage's ``comp_traces``), and ``statements/index.html`` listing them.

A missing input leaves its sheet with a one-line note (or skips the file) instead of failing: a
scenario whose compensation stage was disabled still gets its quotas and CRM file.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from salesops_models.safe_io import atomic_write_bytes
from salesops_models.workflow import derived
from salesops_models.workflow.collect import ScenarioResults
from salesops_models.workflow.templating import render, write_text_atomic
from salesops_models.workflow.views import fmt, is_missing, missing_note

log = logging.getLogger(__name__)

PLAN_WORKBOOK = "plan.xlsx"
CRM_FILE = "assignments_crm.csv"
STATEMENTS = "statements"
CRM_COLUMNS = [
    "account_id",
    "account_name",
    "old_owner",
    "old_owner_name",
    "new_owner",
    "new_owner_name",
    "moved",
]

MONEY = "#,##0"
SHARE = "0.0%"


@dataclass
class ExportResult:
    """What :func:`write_scenario_exports` wrote (name -> path), skipped for a missing input and
    failed to write (name -> why)."""

    files: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# plan.xlsx
# ------------------------------------------------------------------------------------------------


@dataclass
class Sheet:
    """One worksheet: a title, a table with (column, header, number format) and a note under the title."""

    title: str
    frame: pd.DataFrame | None
    columns: Sequence[tuple[str, str, str | None]] = ()
    note: str = ""


def _excel_value(v: Any) -> Any:
    if is_missing(v):
        return None
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, pd.Timestamp | dt.date):
        return str(v)[:10]
    if isinstance(v, int | float | str | bool):
        return v
    return str(v)


def write_workbook(
    path: str | os.PathLike[str], sheets: Sequence[Sheet], created: dt.datetime | None = None
) -> Path:
    """Write ``sheets`` to an .xlsx workbook: a bold header row (frozen), number formats, widths.

    A sheet without a frame holds its note only. ``created`` fixes the workbook's creation time in
    its properties (default: now).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    for sheet in sheets:
        ws = wb.create_sheet(sheet.title[:31])
        row = 1
        if sheet.note:
            ws.cell(row=1, column=1, value=sheet.note).font = Font(italic=True)
            row = 3
        if sheet.frame is None:
            continue
        cols = [c for c in sheet.columns if c[0] in sheet.frame.columns] or [
            (c, c, None) for c in sheet.frame.columns
        ]
        for j, (_, header, _) in enumerate(cols, start=1):
            ws.cell(row=row, column=j, value=header).font = Font(bold=True)
            ws.column_dimensions[get_column_letter(j)].width = max(12, min(40, len(header) + 4))
        ws.freeze_panes = ws.cell(row=row + 1, column=1)
        for i, rec in enumerate(sheet.frame.to_dict("records"), start=row + 1):
            for j, (key, _, number_format) in enumerate(cols, start=1):
                cell = ws.cell(row=i, column=j, value=_excel_value(rec.get(key)))
                if number_format:
                    cell.number_format = number_format
    wb.properties.creator = "salesops-models"
    when = created or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    wb.properties.created = wb.properties.modified = when
    path = Path(path)
    buf = io.BytesIO()
    wb.save(buf)
    return atomic_write_bytes(path, buf.getvalue())


def _flatten(doc: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(doc, dict):
        out: list[tuple[str, Any]] = []
        for k, v in doc.items():
            out += _flatten(v, f"{prefix}{k}.")
        return out or [(prefix[:-1], "{}")]
    if isinstance(doc, list) and any(isinstance(v, dict | list) for v in doc):
        out = []
        for i, v in enumerate(doc):
            out += _flatten(v, f"{prefix}{i}.")
        return out or [(prefix[:-1], "[]")]
    if isinstance(doc, list):
        return [(prefix[:-1], ", ".join(str(v) for v in doc) if doc else "[]")]
    return [(prefix[:-1], doc)]


def plan_sheets(results: ScenarioResults) -> list[Sheet]:
    """The sheets of ``plan.xlsx`` for one scenario (a missing input gives a sheet with a note)."""
    r = results
    rep_cols = [("rep_id", "Rep", None), ("rep_name", "Name", None), ("region", "Region", None),
                ("manager", "Manager", None)]  # fmt: skip
    sheets = []

    quarters = derived.quotas_by_rep_quarter(r)
    if quarters is None:
        sheets.append(Sheet("Quotas by quarter", None, note=missing_note(r, "quotas_by_period").text))
    else:
        q_cols = [c for c in quarters.columns if re.fullmatch(r"\d{4}-Q[1-4]", str(c))]
        total = {"rep_id": "Total", **{c: quarters[c].sum() for c in [*q_cols, "year"]}}
        frame = pd.concat([quarters, pd.DataFrame([total])], ignore_index=True)
        sheets.append(
            Sheet("Quotas by quarter", frame, [*rep_cols, *[(c, c, MONEY) for c in q_cols], ("year", "Year", MONEY)],
                  "Quota per rep and quarter [currency], after relief; the last row is the company total.")
        )  # fmt: skip
    per = r.table("quotas_by_period")
    if per is not None and {"rep_id", "period", "period_type", "quota"} <= set(per.columns):
        months = per[per["period_type"] == "month"].pivot_table(
            index="rep_id", columns="period", values="quota", aggfunc="sum", sort=True
        )
        months.columns = [str(c) for c in months.columns]
        months = derived.with_rep_details(r, months.reset_index().astype({"rep_id": str}))
        sheets.append(Sheet("Quotas by month", months, [*rep_cols, *[(c, c, MONEY) for c in months.columns
                                                                      if re.fullmatch(r"\d{4}-\d\d", c)]],
                            "Quota per rep and month [currency]."))  # fmt: skip
    else:
        sheets.append(Sheet("Quotas by month", None, note=missing_note(r, "quotas_by_period").text))

    monthly = derived.cost_by_month(r)
    if monthly is None:
        sheets.append(Sheet("Commission cost by month", None, note=missing_note(r, "cost_samples").text))
        basis = ""
    else:
        by_month, basis = monthly
        cost = r.table("cost_samples")
        assert cost is not None  # cost_by_month needs it
        year = {"month": "Year", "base": cost["base_cost"].mean(), "total_mean": cost["total_cost"].mean(),
                "variable_mean": cost["variable_cost"].mean()}  # fmt: skip
        for p in (10, 50, 90):
            year[f"total_p{p}"] = cost["total_cost"].quantile(p / 100)
            year[f"variable_p{p}"] = cost["variable_cost"].quantile(p / 100)
        frame = pd.concat([by_month, pd.DataFrame([year])], ignore_index=True)
        cols = [("month", "Month", None), ("base", "Base salaries", MONEY)]
        stats = {"p10": "P10", "p50": "P50", "p90": "P90", "mean": "mean"}
        cols += [(f"variable_{k}", f"Variable {label}", MONEY) for k, label in stats.items()]
        cols += [(f"total_{k}", f"Total {label}", MONEY) for k, label in stats.items()]
        plan = r.metrics.get("comp_primary_plan")
        sheets.append(Sheet("Commission cost by month", frame, cols,
                            f"Plan {plan}: cost accrued by month [currency]; {basis}. The last row is the plan "
                            "year (its percentiles are not the sums of the monthly ones)."))  # fmt: skip

    payouts = r.table("payouts")
    if payouts is None:
        sheets.append(Sheet("Pay by rep", None, note=missing_note(r, "payouts").text))
    else:
        ps = derived.with_rep_details(r, payouts.assign(rep_id=payouts["rep_id"].astype(str)))
        sheets.append(Sheet("Pay by rep", ps, [*rep_cols, ("quota", "Quota", MONEY),
                                               ("p_attain", "P(reach quota)", SHARE),
                                               ("payout_p10", "Variable P10", MONEY), ("payout_p50", "Variable P50", MONEY),
                                               ("payout_p90", "Variable P90", MONEY),
                                               ("payout_mean", "Variable mean", MONEY),
                                               ("total_pay_p50", "Total pay P50", MONEY)],
                            "Pay per rep over the simulated plan years [currency/yr]."))  # fmt: skip

    territories = r.table("territories")
    if territories is None:
        sheets.append(Sheet("Territories", None, note=missing_note(r, "territories").text))
        sheets.append(Sheet("Balance", None, note=missing_note(r, "territories").text))
    else:
        from salesops_models.workflow.charts import balance_metrics

        cols: list[tuple[str, str, str | None]] = [
            ("rep_id", "Territory (rep)", None),
            ("accounts", "Accounts", "0"),
        ]
        for m in balance_metrics(territories):
            cols += [(m, m, "#,##0.0"), (f"{m}_target", f"{m} target", "#,##0.0"),
                     (f"{m}_deviation", f"{m} vs target", SHARE)]  # fmt: skip
        cols += [
            ("travel", "Travel", MONEY),
            ("accounts_in", "Accounts in", "0"),
            ("accounts_out", "Accounts out", "0"),
        ]
        sheets.append(Sheet("Territories", territories, cols, "One row per territory after the realignment."))
        sheets.append(Sheet("Balance", derived.balance_summary(territories),
                            [("metric", "Metric", None), ("max_min", "Max/min", "0.000"), ("cv", "CV", "0.000"),
                             ("max_abs_deviation", "Largest deviation", SHARE),
                             ("within_band", "Territories inside band", SHARE)],
                            "Balance of every balanced metric (1 and 0 = perfectly balanced)."))  # fmt: skip

    sheets.append(assumptions_sheet(r, basis))
    return sheets


def assumptions_sheet(results: ScenarioResults, cost_basis: str = "") -> Sheet:
    """The resolved scenario (every setting), its provenance and how the figures were made."""
    r = results
    prov = r.resolved.get("_provenance") or {}
    rows: list[tuple[str, Any]] = [("scenario", r.name), ("status", r.status)]
    rows += [(f"provenance.{k}", v) for k, v in _flatten(prov) if k]
    for key, label in (
        ("quota_target_source", "company target from"),
        ("quota_distribution_source", "quota bookings distribution from"),
        ("comp_attainment_source", "commission attainment from"),
        ("pipeline_trials", "pipeline trials"),
        ("comp_trials", "commission trials"),
    ):
        if not is_missing(r.metrics.get(key)):
            rows.append((f"how.{label}", r.metrics[key]))
    if cost_basis:
        rows.append(("how.commission cost by month", cost_basis))
    rows += [(k, v) for k, v in _flatten({k: v for k, v in r.resolved.items() if k != "_provenance"}) if k]
    frame = pd.DataFrame(rows, columns=["setting", "value"])
    frame["value"] = frame["value"].map(
        lambda v: v if isinstance(v, int | float | str | bool) or v is None else str(v)
    )
    return Sheet("Assumptions", frame, [("setting", "Setting", None), ("value", "Value", None)],
                 "The resolved scenario these figures come from, with its provenance.")  # fmt: skip


def write_plan_workbook(path: str | os.PathLike[str], results: ScenarioResults) -> Path:
    """Write ``plan.xlsx`` for finance (see :func:`plan_sheets`)."""
    created = None
    stamp = (results.resolved.get("_provenance") or {}).get("created_utc")
    if stamp:
        try:
            created = dt.datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            created = None
    return write_workbook(path, plan_sheets(results), created)


# ------------------------------------------------------------------------------------------------
# assignments_crm.csv
# ------------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_csv_text(v: Any) -> Any:
    """Text that a spreadsheet would read as a formula gets a leading apostrophe (CSV injection)."""
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def crm_assignments(
    assignments: pd.DataFrame, accounts: pd.DataFrame | None = None, reps: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The CRM import table: ``account_id``, ``account_name``, ``old_owner``, ``old_owner_name``,
    ``new_owner``, ``new_owner_name``, ``moved`` (one row per account, sorted by account id).

    ``old_owner`` is the owner before the realignment (``previous_rep_id``), ``new_owner`` the
    owner after it; names are empty when unknown.
    """
    a = assignments
    out = pd.DataFrame(
        {
            "account_id": a["account_id"].astype(str),
            "old_owner": a["previous_rep_id"].astype("string") if "previous_rep_id" in a else pd.NA,
            "new_owner": a["rep_id"].astype("string"),
        }
    )
    if "moved" in a:
        out["moved"] = a["moved"].astype(bool).to_numpy()
    else:
        out["moved"] = (out["old_owner"].fillna("") != out["new_owner"].fillna("")).to_numpy()
    names = {}
    if accounts is not None and {"account_id", "account_name"} <= set(accounts.columns):
        names = dict(zip(accounts["account_id"].astype(str), accounts["account_name"], strict=False))
    out["account_name"] = out["account_id"].map(names)
    rep_names = {}
    if reps is not None and {"rep_id", "rep_name"} <= set(reps.columns):
        rep_names = dict(zip(reps["rep_id"].astype(str), reps["rep_name"], strict=False))
    out["old_owner_name"] = out["old_owner"].map(rep_names)
    out["new_owner_name"] = out["new_owner"].map(rep_names)
    return out[CRM_COLUMNS].sort_values("account_id", kind="stable").reset_index(drop=True)


def write_crm_assignments(path: str | os.PathLike[str], table: pd.DataFrame) -> Path:
    """Write the CRM import CSV: UTF-8, comma-separated, header row, ``moved`` as ``true``/``false``,
    empty cells for unknown values, text that could start a spreadsheet formula neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CRM_COLUMNS)
    for rec in table[CRM_COLUMNS].to_dict("records"):
        row = []
        for c in CRM_COLUMNS:
            v = rec[c]
            if c == "moved":
                row.append("true" if bool(v) else "false")
            else:
                row.append("" if is_missing(v) else _safe_csv_text(str(v)))
        writer.writerow(row)
    return write_text_atomic(path, buf.getvalue())


# ------------------------------------------------------------------------------------------------
# payout statements
# ------------------------------------------------------------------------------------------------


def statement_filename(rep_id: str) -> str:
    """``<rep>.html`` for a rep id made of safe characters, else a slug plus a short hash (distinct
    ids never share a file, and no id can leave the folder)."""
    rep_id = str(rep_id)
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}", rep_id) and ".." not in rep_id:
        return f"{rep_id}.html"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", rep_id).strip("_")[:40] or "rep"
    return f"{slug}-{hashlib.sha256(rep_id.encode()).hexdigest()[:8]}.html"


def _amount(v: Any, unit: str) -> str:
    if unit == "fraction":
        return fmt(v, "share") if not is_missing(v) else "n/a"
    if unit == "factor":
        return f"{float(v):,.4f}" if not is_missing(v) else "n/a"
    return fmt(v, "money2")


def _plan_for(results: ScenarioResults, name: str) -> Any | None:
    from salesops_models.compensation import load_plan
    from salesops_models.errors import SalesopsError

    refs = (results.resolved.get("compensation") or {}).get("plans") or []
    for ref in refs:
        try:
            plan = load_plan(ref)
        except (SalesopsError, OSError, ValueError) as exc:
            log.info("statement: plan %r not loaded: %s", ref, exc)
            continue
        if plan.name == name:
            return plan
    return None


def plan_view(plan: Any) -> dict[str, Any]:
    """What a statement says about the plan: pay, payout schedule and each measure's tiers."""
    pay = plan.pay
    measures = []
    for m in plan.measures:
        tiers = [
            {
                "range": f"{t.from_:.0%} to {'no limit' if t.to is None else format(t.to, '.0%')}",
                "rate": f"{t.rate:g}",
            }
            for t in m.rate_table.tiers
        ]
        unit = "x target incentive" if m.rate_table.rate_unit == "ti_multiple" else "x quota"
        measures.append({"name": m.name, "weight": fmt(m.weight, "pct0"), "mode": m.rate_table.mode,
                         "unit": unit, "tiers": tiers})  # fmt: skip
    return {
        "name": plan.name,
        "version": plan.version,
        "description": plan.description,
        "currency": plan.currency,
        "base": fmt(pay.base_salary, "money"),
        "target_incentive": fmt(pay.target_incentive, "money"),
        "frequency": plan.payout.frequency,
        "basis": plan.payout.basis,
        "measures": measures,
        "fingerprint": plan.fingerprint(),
    }


def statement_views(results: ScenarioResults) -> list[dict[str, Any]]:
    """One view per rep of ``comp_traces``: who, quota by quarter, pay range and the trace lines."""
    r = results
    traces = r.table("traces")
    if traces is None or traces.empty:
        return []
    traces = traces.assign(rep_id=traces["rep_id"].astype(str))
    # the lines are read record by record below; pandas string cells are slow to iterate one by one
    # (most of this function's time), plain Python strings are not: convert each column once
    text_cols = [c for c in traces.columns if traces[c].dtype != object and pd.api.types.is_string_dtype(traces[c])]
    traces = traces.astype(dict.fromkeys(text_cols, object))
    payouts = r.table("payouts")
    pay = (
        payouts.assign(rep_id=payouts["rep_id"].astype(str)).set_index("rep_id")
        if payouts is not None
        else pd.DataFrame()
    )
    details = derived.with_rep_details(r, pd.DataFrame({"rep_id": traces["rep_id"].unique()})).set_index(
        "rep_id"
    )
    risk = derived.attainment_risk(r)
    quarters = derived.quotas_by_rep_quarter(r)
    quarter_rows = quarters.set_index("rep_id") if quarters is not None else pd.DataFrame()
    plans: dict[str, Any] = {}
    views = []
    for rep, steps in traces.groupby("rep_id", sort=True):
        plan_name = str(steps["plan"].iloc[0])
        if plan_name not in plans:
            plan = _plan_for(r, plan_name)
            plans[plan_name] = plan_view(plan) if plan is not None else None
        info = details.loc[rep].to_dict() if rep in details.index else {}
        lines = [
            {
                "step": int(s["step"]) if not is_missing(s.get("step")) else i + 1,
                "component": str(s["component"]),
                "formula": str(s["formula"]),
                "amount": _amount(s["amount"], str(s.get("unit") or "currency")),
                "note": "" if is_missing(s.get("note")) else str(s["note"]),
            }
            for i, s in enumerate(steps.sort_values("step").to_dict("records"))
        ]
        amounts = dict(zip(steps["component"], steps["amount"], strict=False))
        quarter_view = []
        if rep in quarter_rows.index:
            row = quarter_rows.loc[rep]
            p = (
                risk.by_quarter[risk.by_quarter["rep_id"] == rep].set_index("quarter")
                if risk is not None
                else None
            )
            for q in [c for c in quarter_rows.columns if re.fullmatch(r"\d{4}-Q[1-4]", str(c))]:
                prob = p["p_attain"].get(q) if p is not None else None
                quarter_view.append({"quarter": q, "quota": fmt(row[q], "money"), "p": fmt(prob, "pct0")})
        pr = pay.loc[rep] if rep in pay.index else {}
        views.append(
            {
                "rep_id": rep,
                "file": statement_filename(rep),
                "name": "" if is_missing(info.get("rep_name")) else str(info.get("rep_name")),
                "region": "" if is_missing(info.get("region")) else str(info.get("region")),
                "manager": "" if is_missing(info.get("manager")) else str(info.get("manager")),
                "plan": plans[plan_name],
                "plan_name": plan_name,
                "quota": fmt(steps["quota"].iloc[0], "money"),
                "bookings": fmt(steps["bookings"].iloc[0], "money"),
                "quarters": quarter_view,
                "base": fmt(amounts.get("base"), "money2"),
                "variable": fmt(amounts.get("variable"), "money2"),
                "total": fmt((amounts.get("base") or 0.0) + (amounts.get("variable") or 0.0), "money2"),
                "band": {
                    k: fmt(pr.get(k) if len(pr) else None, "money")
                    for k in ("payout_p10", "payout_p50", "payout_p90")
                },
                "p_attain": fmt(pr.get("p_attain") if len(pr) else None, "pct0"),
                "lines": lines,
            }
        )
    return views


def write_statements(folder: str | os.PathLike[str], results: ScenarioResults) -> list[Path]:
    """Write ``statements/<rep>.html`` for every rep of ``comp_traces`` and ``statements/index.html``."""
    views = statement_views(results)
    if not views:
        return []
    folder = Path(folder)
    common = {"scenario": results.name, "plan_year": derived.plan_year(results) or "",
              "generated": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"}  # fmt: skip
    # One page per rep, each renamed into place whole, but not flushed to disk one by one (an fsync
    # per page was most of the statements' time in a what-if): a page lost to a power cut is
    # rebuilt from the durable tables by report.publish_scenario, or by running the scenario again
    # (its stages then come from the cache). The index, written last, is flushed.
    paths = [
        write_text_atomic(folder / v["file"], render("statement.html.j2", rep=v, **common), durable=False)
        for v in views
    ]
    paths.append(
        write_text_atomic(folder / "index.html", render("statements_index.html.j2", reps=views, **common))
    )
    return paths


# ------------------------------------------------------------------------------------------------
# all of them
# ------------------------------------------------------------------------------------------------


def write_scenario_exports(results: ScenarioResults) -> ExportResult:
    """Write ``plan.xlsx``, ``assignments_crm.csv`` and the payout statements of one scenario.

    Each output is written independently; one that cannot be built is skipped with its reason (and
    a logged traceback when it was an error), so the others and the report still appear.
    """
    out = ExportResult()
    d = results.out_dir

    def attempt(name: str, build: Any) -> None:
        try:
            path = build()
        except Exception as exc:  # an export problem must not hide the scenario's results
            log.exception("%s: %s not written", d, name)
            out.failed[name] = f"{type(exc).__name__}: {exc}"
            return
        if path is None:
            return
        out.files[name] = path

    attempt(PLAN_WORKBOOK, lambda: write_plan_workbook(d / PLAN_WORKBOOK, results))
    assignments = results.table("assignments")
    if assignments is None:
        out.skipped[CRM_FILE] = missing_note(results, "assignments").text
    else:
        attempt(CRM_FILE, lambda: write_crm_assignments(
            d / CRM_FILE, crm_assignments(assignments, results.company("accounts"), results.company("reps"))))  # fmt: skip
    if results.table("traces") is None:
        out.skipped[STATEMENTS] = missing_note(results, "traces").text
    else:
        attempt(STATEMENTS, lambda: (write_statements(d / STATEMENTS, results) or [None])[-1])
    return out
