"""The tracking report: one self-contained HTML file (inline CSS, charts as base64 PNG, no script,
nothing loaded from elsewhere), rendered from ``templates/tracking_report.html.j2`` with
autoescaping, so every string from the data (rep names, regions, file names) is escaped.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd

from salesops_models.tracking.history import write_atomic
from salesops_models.tracking.kpis import UNITS
from salesops_models.workflow.charts import figure_png, png_data_uri
from salesops_models.workflow.templating import TEMPLATES as WORKBENCH_TEMPLATES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from salesops_models.tracking.run import TrackingResult

log = logging.getLogger(__name__)

TEMPLATE = "tracking_report.html.j2"
KPI_TITLES = {
    "win_rate": "Win rate (won / closed)",
    "cycle_days": "Sales cycle of won deals [days]",
    "revenue_per_rep": "Bookings per rep",
    "selling_time_share": "Time spent selling",
    "forecast_accuracy": "Forecast accuracy [%]",
}


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def chart_reforecast_by_rep(rep: pd.DataFrame) -> Figure:
    """Year-end re-forecast per holder: P10-P90 bar, P50 tick, booked to date, quota marker."""
    t = rep.sort_values(["region", "rep_id"], na_position="last").reset_index(drop=True)
    fig, axes = _figure(9.0, 0.9 + 0.19 * len(t))
    ax = axes[0, 0]
    y = np.arange(len(t))[::-1]
    ax.barh(y, t["year_end_p90"] - t["year_end_p10"], left=t["year_end_p10"], color="tab:blue", alpha=0.25,
            height=0.7, label="re-forecast P10-P90")  # fmt: skip
    ax.barh(y, t["booked_to_date"], color="tab:blue", height=0.3, label="booked to date")
    ax.scatter(t["year_end_p50"], y, marker="|", color="tab:blue", s=90, label="re-forecast P50")
    ax.scatter(t["annual_quota"], y, marker="D", color="black", s=14, label="quota (after changes)")
    ax.set_yticks(y, [f"{r} ({g})" if isinstance(g, str) else str(r) for r, g in zip(t["rep_id"], t["region"], strict=True)],
                  fontsize=6)  # fmt: skip
    ax.set_xlabel("plan-year bookings")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Year-end re-forecast by rep (sorted by region)", fontsize=10)
    return fig


def chart_company_year(result: TrackingResult) -> Figure:
    """Cumulative company bookings by month: actual to date, quota, the plan's forecast, re-forecast fan."""
    rf = result.reforecast
    year = result.plan.plan_year
    months = np.arange(1, 13)
    booked = rf.booked_by_month.sum(axis=0)
    sim = rf.simulated_by_month.sum(axis=1)  # trials x months
    cum = np.cumsum(sim + booked[None, :], axis=1)
    quota = result.midyear.monthly_quota.sum(axis=0).to_numpy(float)
    fig, axes = _figure(8.0, 3.6)
    ax = axes[0, 0]
    now = result.as_of.month
    p = np.percentile(cum, [10, 50, 90], axis=0)
    ax.fill_between(months[now - 1 :], p[0][now - 1 :], p[2][now - 1 :], color="tab:blue", alpha=0.2,
                    label="re-forecast P10-P90")  # fmt: skip
    ax.plot(months[now - 1 :], p[1][now - 1 :], color="tab:blue", ls="--", label="re-forecast P50")
    ax.plot(months[:now], np.cumsum(booked)[:now], color="tab:blue", lw=2, marker="o", ms=3,
            label=f"booked (to {result.as_of.date()})")  # fmt: skip
    ax.plot(months, np.cumsum(quota), color="black", lw=1.2, label="quota (after changes)")
    ax.plot(months, np.cumsum(result.assumptions.monthly_bookings), color="tab:orange", lw=1,
            label=f"plan forecast: {result.assumptions.bookings_source}")  # fmt: skip
    ax.set_xticks(months, [f"{year}-{m:02d}" for m in months], rotation=45, fontsize=7)
    ax.set_ylabel("cumulative bookings")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Company bookings through the year", fontsize=10)
    return fig


def chart_kpis(history: pd.DataFrame) -> Figure:
    """Small multiples: one panel per KPI, plan against actual by month."""
    kpis = list(KPI_TITLES)
    fig, axes = _figure(10.0, 5.4, ncols=3, nrows=2)
    flat = axes.ravel()
    for ax, k in zip(flat, kpis, strict=False):
        d = history[history["kpi"] == k]
        x = np.arange(len(d))
        ax.plot(x, d["plan"], color="tab:orange", lw=1.2, label="plan")
        ax.plot(x, d["actual"], color="tab:blue", marker="o", ms=3, lw=1.2, label="actual")
        part = d["partial"].to_numpy(bool)
        if part.any():
            ax.scatter(x[part], d["actual"].to_numpy()[part], facecolors="white", edgecolors="tab:blue", s=30,
                       zorder=3, label="month to date")  # fmt: skip
        ax.set_xticks(x, [m[5:] for m in d["month"]], fontsize=7)
        ax.set_title(KPI_TITLES[k], fontsize=9)
        ax.tick_params(labelsize=7)
    flat[0].legend(fontsize=7)
    flat[-1].set_visible(False)
    fig.suptitle("KPIs by month: actual against the plan's assumptions", fontsize=10)
    return fig


def chart_trend(result: TrackingResult, runs: list[dict[str, Any]]) -> Figure:
    """The plan and every tracking run so far: company year-end band, and P(make quota) by region."""
    s = result.figures
    points = []
    if s.get("plan_year_end"):
        points.append((s["plan_made_on"], s["plan_year_end"], s.get("plan_p_make_quota"), {}))
    for r in runs:
        points.append(
            (
                r["as_of"],
                r.get("year_end") or {},
                r.get("p_make_quota"),
                r.get("p_make_quota_by_region") or {},
            )
        )
    points.append((s["as_of"], s["year_end"], s["p_make_quota"], s["p_make_quota_by_region"]))
    x = pd.to_datetime([p[0] for p in points])
    fig, axes = _figure(10.0, 3.4, ncols=2)
    ax = axes[0, 0]
    p10 = np.array([p[1].get("p10", np.nan) for p in points])
    p50 = np.array([p[1].get("p50", np.nan) for p in points])
    p90 = np.array([p[1].get("p90", np.nan) for p in points])
    ax.fill_between(x, p10, p90, color="tab:blue", alpha=0.2, label="P10-P90")
    ax.plot(x, p50, marker="o", color="tab:blue", label="P50")
    ax.axhline(s["annual_quota"], color="black", lw=1, label="quota")
    ax.set_title("Company year-end bookings: plan, then each run", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", rotation=30, labelsize=7)
    ax2 = axes[0, 1]
    regions = sorted(s["p_make_quota_by_region"])
    plan_region = result.tables["standing_by_region"].set_index("region")["plan_p_make_quota"]
    for reg in regions:
        ys = [plan_region.get(reg, np.nan) if i == 0 and s.get("plan_year_end") else p[3].get(reg, np.nan)
              for i, p in enumerate(points)]  # fmt: skip
        ax2.plot(x, ys, marker="o", ms=3, label=reg)
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_title("P(region makes quota): plan, then each run", fontsize=9)
    ax2.legend(fontsize=7)
    ax2.tick_params(axis="x", rotation=30, labelsize=7)
    return fig


def chart_commission(result: TrackingResult) -> Figure:
    """Year-end variable commission: the re-forecast's distribution against the plan's."""
    fig, axes = _figure(7.5, 3.2)
    ax = axes[0, 0]
    now = result.cost_samples
    plan = result.plan_cost_samples
    lo = min(now.min(), plan.min()) if plan is not None else now.min()
    hi = max(now.max(), plan.max()) if plan is not None else now.max()
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
    ax.hist(now, bins=bins, density=True, histtype="step", lw=1.5, label="re-forecast")
    if plan is not None:
        ax.hist(plan, bins=bins, density=True, histtype="step", lw=1.5, label="plan")
    ax.axvline(result.figures["commission_accrued"], color="black", lw=1, ls=":", label="accrued to date")
    ax.set_xlabel("variable commission for the year")
    ax.legend(fontsize=7)
    ax.set_title("Commission cost for the year", fontsize=10)
    return fig


def _fmt_money(v: Any) -> str:
    return "n/a" if v is None or pd.isna(v) else f"{float(v):,.0f}"


def _fmt_share(v: Any) -> str:
    return "n/a" if v is None or pd.isna(v) else f"{100 * float(v):.1f}%"


def _fmt_signed_share(v: Any) -> str:
    return "n/a" if v is None or pd.isna(v) else f"{100 * float(v):+.1f} pts"


def _fmt_num(v: Any) -> str:
    return "n/a" if v is None or pd.isna(v) else f"{float(v):,.2f}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        # the tracking page extends the workbench's base page (one stylesheet for every report)
        loader=jinja2.FileSystemLoader([str(Path(__file__).resolve().parent / "templates"), str(WORKBENCH_TEMPLATES)]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(money=_fmt_money, share=_fmt_share, signed=_fmt_signed_share, num=_fmt_num)
    return env


def _link(target: Path, start: Path) -> str | None:
    """Relative link from ``start`` to ``target`` when the target exists."""
    if not target.exists():
        return None
    return Path(os.path.relpath(target, start)).as_posix()


def write_report(result: TrackingResult, folder: Path, runs: list[dict[str, Any]]) -> Path:
    """Render ``report.html`` into the run folder (atomically) and return its path."""
    charts = {
        "company": chart_company_year(result),
        "reps": chart_reforecast_by_rep(result.tables["standing_by_rep"]),
        "kpis": chart_kpis(result.tables["kpi_history"]),
        "trend": chart_trend(result, runs),
        "commission": chart_commission(result),
    }
    images = {k: png_data_uri(figure_png(f)) for k, f in charts.items()}
    plan_dir = result.plan.folder
    links = {
        "plan_report": _link(plan_dir / "report.html", folder),
        "batch_index": _link(plan_dir.parent / "index.html", folder),
    }
    tables = sorted(p.name for p in folder.glob("*.parquet"))
    kpi = result.tables["kpi_history"].set_index(["month", "kpi"])
    kpi_rows = [
        {
            "month": m,
            "cells": [(kpi.at[(m, k), "plan"], kpi.at[(m, k), "actual"], UNITS[k]) for k in KPI_TITLES],
        }
        for m in kpi.index.get_level_values("month").unique()
    ]
    risk = result.tables["risk"]
    earlier = [
        {"as_of": r["as_of"], "link": _link(Path(r["run_dir"]) / "report.html", folder), "p50": (r.get("year_end") or {}).get("p50"),
         "p_make_quota": r.get("p_make_quota")}
        for r in runs
    ]  # fmt: skip
    html = (
        _environment()
        .get_template(TEMPLATE)
        .render(
            s=result.figures,
            images=images,
            links=links,
            tables=tables,
            regions=result.tables["standing_by_region"].to_dict("records"),
            managers=result.tables["standing_by_manager"].to_dict("records"),
            reps=result.tables["standing_by_rep"].sort_values(["region", "rep_id"]).to_dict("records"),
            risk_reps=risk[risk["level"] == "rep"].head(10).to_dict("records"),
            risk_regions=risk[risk["level"] == "region"].to_dict("records"),
            transfers=result.tables["quota_transfers"].to_dict("records"),
            holders=result.midyear.holders.to_dict("records"),
            kpi_titles=KPI_TITLES,
            kpi_rows=kpi_rows,
            earlier=earlier,
            generated=f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        )
    )
    path = write_atomic(folder / "report.html", html)
    log.info("wrote %s", path)
    return path
