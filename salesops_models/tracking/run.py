"""A tracking run: a saved plan and an export of actuals in, tables and a report out.

:func:`track` is the computation (no files): the mid-year changes applied to the plan, the deals
credited to their holders, attainment to date, the re-forecast, the commission accrual and
expected cost, the KPI history and the risk list. :func:`track_plan` reads the plan folder, the
export and the changes file, runs :func:`track`, and writes a new run folder (see
:mod:`.history`) with the Parquet tables, ``tracking_summary.json`` and ``report.html``. The plan
folder itself is only read.

Seeds: the Monte Carlo draws from ``SeedSequence(plan seed, spawn_key=(100, as-of ordinal))``: the
same plan, export, changes and date give the same numbers; the plan's stages use keys 0-5.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesops_models import __version__
from salesops_models.data.company import CompanyData
from salesops_models.errors import TrackingError
from salesops_models.safe_io import atomic_write_parquet
from salesops_models.tracking.actuals import check_same_company, cut_at, load_actuals, tracking_date
from salesops_models.tracking.attainment import attainment_to_date, risk_list
from salesops_models.tracking.changes import ChangeLog, MidYearPlan, apply_changes, change_date, load_changes
from salesops_models.tracking.commission import (
    commission_accrual,
    employment_share,
    product_inputs,
    year_end_cost,
)
from salesops_models.tracking.history import earlier_runs, new_run_dir, tracking_root, write_summary
from salesops_models.tracking.kpis import (
    PlanAssumptions,
    forecast_accuracy_to_date,
    kpi_history,
    plan_assumptions,
)
from salesops_models.tracking.plan import SavedPlan, load_saved_plan
from salesops_models.tracking.reforecast import Reforecast, quantile_table, reforecast_year_end

log = logging.getLogger(__name__)

TRACKING_STREAM = 100


@dataclass
class TrackingResult:
    """Everything one tracking run computes.

    Attributes
    ----------
    tables
        The run's tables by name (written as ``<name>.parquet``): ``standing_by_rep``,
        ``standing_by_manager``, ``standing_by_region``, ``kpi_history``, ``risk``,
        ``quota_transfers``, ``monthly_quota``, ``reforecast_samples``,
        ``commission_cost_samples``, ``open_pipeline``.
    figures
        Headline figures (``tracking_summary.json``), also :meth:`summary`.
    """

    as_of: pd.Timestamp
    plan: SavedPlan
    midyear: MidYearPlan
    reforecast: Reforecast
    assumptions: PlanAssumptions
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Any]
    cost_samples: np.ndarray
    plan_cost_samples: np.ndarray | None = None
    plan_totals: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Headline figures: booked and quota to date, year-end band, P(make quota), commission."""
        return dict(self.figures)


def tracking_seed(plan: SavedPlan, as_of: pd.Timestamp) -> np.random.SeedSequence:
    """Seed of a tracking run's Monte Carlo."""
    return np.random.SeedSequence(
        plan.scenario.seed, spawn_key=(TRACKING_STREAM, pd.Timestamp(as_of).toordinal())
    )


def plan_samples(plan: SavedPlan) -> pd.DataFrame | None:
    """The plan's simulated year-end bookings, trials x reps (None without the pipeline stage)."""
    s = plan.tables.get("rep_bookings_samples")
    if s is None or not {"trial", "rep_id", "bookings"} <= set(s.columns):
        return None
    return s.pivot_table(
        index="trial", columns=s["rep_id"].astype(str), values="bookings", aggfunc="sum"
    ).fillna(0.0)


def _group_p(samples: pd.DataFrame | None, labels: pd.Series, quota: pd.Series) -> pd.Series:
    """P(sum over a group's reps >= the group's quota) from trials x reps samples."""
    if samples is None:
        return pd.Series(dtype=float)
    lab = labels.reindex(samples.columns).fillna("(none)").astype(str)
    total = samples.T.groupby(lab.to_numpy()).sum().T
    q = quota.groupby(labels.fillna("(none)").astype(str)).sum().reindex(total.columns)
    return pd.Series((total.to_numpy() >= q.to_numpy()[None, :]).mean(axis=0), index=total.columns)


def track(
    plan: SavedPlan,
    actuals: CompanyData,
    *,
    as_of: str | pd.Timestamp | None = None,
    changes: ChangeLog | None = None,
    changes_source: str = "changes",
    trials: int | None = None,
    previous: dict[str, Any] | None = None,
) -> TrackingResult:
    """Track a saved plan against an export of actuals on a date of the plan year.

    Parameters
    ----------
    plan
        The saved plan (:func:`load_saved_plan`).
    actuals
        The export (:func:`load_actuals`); cut at ``as_of`` when that is earlier than its date.
    as_of
        Tracking date; default the export's date.
    changes
        Mid-year changes (:func:`load_changes`); changes must be dated on or before ``as_of``.
    changes_source
        Name of the changes file in error messages.
    trials
        Monte Carlo trials (default: the plan's ``pipeline.trials``).
    previous
        The summary of the previous run, for the change of P(make quota) since then.

    Raises
    ------
    TrackingError
        The actuals are from another company, the date is outside the plan year or after the export,
        a change is malformed or dated after the tracking date.
    """
    start, year = plan.start, plan.plan_year
    day = tracking_date(actuals, as_of, start)
    changes = changes or ChangeLog()
    late = [
        f"change {i + 1} ({c.type}) is dated {change_date(c).date()}, after the as-of date {day.date()}"
        for i, c in enumerate(changes.changes)
        if change_date(c) > day
    ]
    if late:
        raise TrackingError(
            f"{changes_source}: " + "; ".join(late) + ". Tracking applies changes that have happened: "
            "remove them until then, or track on a later date."
        )
    cut = cut_at(actuals, day)
    mid = apply_changes(
        changes,
        plan_year=year,
        holders=plan.holders(),
        monthly_quota=plan.monthly_quota,
        accounts=plan.company.accounts,
        owners=plan.owners(),
        source=changes_source,
    )
    holders = mid.holders
    ids = holders["rep_id"].astype(str).tolist()
    known_accounts = set(plan.company.accounts["account_id"].astype(str))
    check_same_company(cut, plan.company, set(ids), known_accounts, start, str(actuals.source))
    credited = mid.credit(cut.opportunities)
    crm = (
        cut.accounts.dropna(subset=["owner_rep_id"])
        if "owner_rep_id" in cut.accounts
        else cut.accounts.iloc[0:0]
    )
    crm_owners = (
        pd.Series(crm["owner_rep_id"].astype(str).to_numpy(), index=crm["account_id"].astype(str))
        if len(crm)
        else plan.owners()
    )
    crm_owners = crm_owners[crm_owners.isin(ids)]
    owners_now = mid.owners_after(crm_owners, on=day)
    rf = reforecast_year_end(
        cut,
        credited,
        holders,
        owners_now,
        year,
        plan.scenario.pipeline,
        seed=tracking_seed(plan, day),
        trials=trials,
    )
    pos = {h: i for i, h in enumerate(rf.holder_ids)}
    cols = np.array([pos[h] for h in ids])
    year_end = rf.year_end[:, cols]
    booked_m = rf.booked_by_month[cols]
    quota = mid.annual_quota.reindex(ids)

    # ---- attainment, re-forecast, commission per holder ------------------------------------------
    standing = attainment_to_date(ids, booked_m, mid.monthly_quota, holders, day)
    fc = quantile_table(ids, year_end, quota).rename(
        columns={"mean": "year_end_mean", "p10": "year_end_p10", "p50": "year_end_p50", "p90": "year_end_p90"}
    )
    comp_plan = plan.primary_comp_plan()
    employment = employment_share(holders, year)
    mix, size = product_inputs(comp_plan, cut.opportunities, credited, ids)
    accrual = commission_accrual(comp_plan, ids, booked_m, mid.monthly_quota, day, employment, mix, size)
    by_q = rf.by_quarter()[:, cols, :]
    payouts, cost, base_cost = year_end_cost(
        comp_plan, ids, year_end, by_q, mid.monthly_quota, employment, mix, size
    )
    plan_p = (
        plan.quotas.set_index("rep_id")["p_attain"] if "p_attain" in plan.quotas else pd.Series(dtype=float)
    )
    rep = (
        standing["rep"].merge(fc.drop(columns=["quota"]), left_on="rep_id", right_on="id").drop(columns="id")
    )
    rep["plan_quota"] = mid.plan_quota.reindex(ids).to_numpy()
    rep["quota_change"] = rep["annual_quota"] - rep["plan_quota"]
    rep["plan_p_make_quota"] = plan_p.reindex(ids).to_numpy(float)
    rep["employment_share"] = employment.reindex(ids).to_numpy()
    rep["accrued_commission"] = accrual["accrued"].to_numpy()
    rep = rep.merge(payouts, on="rep_id")

    # ---- groups ------------------------------------------------------------------------------------
    samples_plan = plan_samples(plan)
    tables: dict[str, pd.DataFrame] = {"standing_by_rep": rep}
    for level in ("manager", "region"):
        tables[f"standing_by_{level}"] = _group_standing(
            level, standing[level], year_end, holders, plan, samples_plan
        )
    group_p = {
        level: tables[f"standing_by_{level}"].set_index(level)["p_make_quota"]
        for level in ("manager", "region")
    }
    company_total = year_end.sum(axis=1)
    company_quota = float(quota.sum())
    plan_totals = samples_plan.sum(axis=1).to_numpy() if samples_plan is not None else None

    # ---- KPIs, risk ----------------------------------------------------------------------------------
    assumptions = plan_assumptions(plan)
    month_starts = pd.date_range(start, periods=12, freq="MS")
    employed = pd.Series(
        [float(mid.employed(m, m + pd.offsets.MonthEnd(0)).sum()) for m in month_starts], index=range(1, 13)
    )
    kpis = kpi_history(cut.opportunities, credited, cut.activities, employed, day, year, assumptions)
    prev = previous or {}
    risk = pd.concat(
        [
            risk_list(
                rep.set_index("rep_id")["p_make_quota"].dropna(),
                plan_p,
                pd.Series(prev.get("p_make_quota_by_rep") or {}, dtype=float) if previous else None,
                "rep",
            ),
            risk_list(
                group_p["region"],
                tables["standing_by_region"].set_index("region")["plan_p_make_quota"],
                pd.Series(prev.get("p_make_quota_by_region") or {}, dtype=float) if previous else None,
                "region",
            ),
        ],
        ignore_index=True,
    )
    tables["kpi_history"] = kpis
    tables["risk"] = risk
    tables["quota_transfers"] = mid.transfers
    months = mid.monthly_quota.reindex(ids)
    plan_months = plan.monthly_quota.reindex(ids).fillna(0.0)
    tables["monthly_quota"] = pd.DataFrame(
        {
            "rep_id": np.repeat(ids, 12),
            "month": np.tile([f"{year}-{m:02d}" for m in range(1, 13)], len(ids)),
            "plan_quota": plan_months.to_numpy(float).ravel(),
            "quota": months.to_numpy(float).ravel(),
        }
    )
    tables["reforecast_samples"] = pd.DataFrame(
        {
            "trial": np.repeat(np.arange(year_end.shape[0]), len(ids)),
            "rep_id": np.tile(ids, year_end.shape[0]),
            "bookings": year_end.ravel(),
        }
    )
    tables["commission_cost_samples"] = pd.DataFrame({"trial": np.arange(cost.size), "variable_cost": cost})
    if rf.open_deals is not None:
        tables["open_pipeline"] = rf.open_deals

    plan_cost = plan.tables.get("comp_cost_samples")
    plan_cost_samples = (
        plan_cost["variable_cost"].to_numpy(float)
        if plan_cost is not None and "variable_cost" in plan_cost
        else None
    )
    accuracy = forecast_accuracy_to_date(assumptions, booked_m, day)
    summary = _summary(
        plan, day, actuals, changes, rf, rep, tables, company_total, company_quota, plan_totals, accrual,
        cost, base_cost, plan_cost_samples, accuracy, assumptions, group_p,
    )  # fmt: skip
    return TrackingResult(
        as_of=day,
        plan=plan,
        midyear=mid,
        reforecast=rf,
        assumptions=assumptions,
        tables=tables,
        figures=summary,
        cost_samples=cost,
        plan_cost_samples=plan_cost_samples,
        plan_totals=plan_totals,
    )


def _group_standing(
    level: str,
    standing: pd.DataFrame,
    year_end: np.ndarray,
    holders: pd.DataFrame,
    plan: SavedPlan,
    samples_plan: pd.DataFrame | None,
) -> pd.DataFrame:
    """A manager or region table: attainment to date, the group's year-end band and P(make quota)
    (the sum over its holders against the sum of their quotas), now and at the plan."""
    ids = holders["rep_id"].astype(str).tolist()
    lab = holders.set_index("rep_id")[level].reindex(ids).fillna("(none)").astype(str).to_numpy()
    names = sorted(set(lab))
    sums = np.stack([year_end[:, lab == n].sum(axis=1) for n in names], axis=1)
    band = quantile_table(names, sums, standing.set_index(level)["annual_quota"]).rename(
        columns={
            "id": level,
            "mean": "year_end_mean",
            "p10": "year_end_p10",
            "p50": "year_end_p50",
            "p90": "year_end_p90",
        }
    )
    t = standing.merge(band.drop(columns=["quota"]), on=level)
    plan_labels = plan.quotas.set_index("rep_id")[level] if level in plan.quotas else pd.Series(dtype=str)
    plan_quotas = plan.quotas.set_index("rep_id")["quota"].astype(float)
    t["plan_p_make_quota"] = t[level].map(_group_p(samples_plan, plan_labels, plan_quotas)).astype(float)
    return t


def _q(x: np.ndarray | None) -> dict[str, float]:
    if x is None or not len(x):
        return {}
    p = np.percentile(x, [10, 50, 90])
    return {"mean": float(np.mean(x)), "p10": float(p[0]), "p50": float(p[1]), "p90": float(p[2])}


def _summary(
    plan: SavedPlan,
    day: pd.Timestamp,
    actuals: CompanyData,
    changes: ChangeLog,
    rf: Reforecast,
    rep: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    company_total: np.ndarray,
    company_quota: float,
    plan_totals: np.ndarray | None,
    accrual: pd.DataFrame,
    cost: np.ndarray,
    base_cost: float,
    plan_cost: np.ndarray | None,
    accuracy: dict[str, float],
    assumptions: PlanAssumptions,
    group_p: dict[str, pd.Series],
) -> dict[str, Any]:
    from salesops_models.workflow.results import git_commit

    booked = float(rep["booked_to_date"].sum())
    quota_to_date = float(rep["quota_to_date"].sum())
    return {
        "as_of": str(day.date()),
        "plan_folder": str(plan.folder.resolve()),
        "scenario": plan.scenario.name,
        "plan_year": plan.plan_year,
        "plan_made_on": str(pd.Timestamp(plan.company.as_of).date()),
        "plan_package_version": plan.provenance.get("package_version"),
        "package_version": __version__,
        "git_commit": git_commit(),
        "actuals": str(actuals.source),
        "actuals_date": str(pd.Timestamp(actuals.as_of).date()),
        "changes": len(changes.changes),
        "trials": int(rf.year_end.shape[0]),
        "seed": {"entropy": int(plan.scenario.seed), "spawn_key": [TRACKING_STREAM, int(day.toordinal())]},
        "booked_to_date": booked,
        "quota_to_date": quota_to_date,
        "attainment_to_date": booked / quota_to_date if quota_to_date > 0 else None,
        "annual_quota": company_quota,
        "year_end": _q(company_total),
        "p_make_quota": float(np.mean(company_total >= company_quota)),
        "plan_year_end": _q(plan_totals),
        "plan_p_make_quota": float(np.mean(plan_totals >= float(plan.quotas["quota"].sum())))
        if plan_totals is not None
        else None,
        "commission_accrued": float(accrual["accrued"].sum()),
        "commission_year_end": _q(cost),
        "commission_plan": _q(plan_cost),
        "base_salaries_year": float(base_cost),
        "forecast_accuracy": accuracy,
        "plan_bookings_source": assumptions.bookings_source,
        "open_deals": int(len(rf.open_deals)) if rf.open_deals is not None else None,
        "calibration": rf.calibration,
        "p_make_quota_by_rep": {
            str(k): float(v) for k, v in rep.set_index("rep_id")["p_make_quota"].dropna().items()
        },
        "p_make_quota_by_region": {str(k): float(v) for k, v in group_p["region"].dropna().items()},
        "p_make_quota_by_manager": {str(k): float(v) for k, v in group_p["manager"].dropna().items()},
        "region_year_end_p50": {
            str(r.region): float(r.year_end_p50) for r in tables["standing_by_region"].itertuples()
        },
    }


@dataclass
class TrackingRun:
    """A tracking run written to disk."""

    folder: Path
    report: Path
    result: TrackingResult


def track_plan(
    plan_dir: str | Path,
    actuals: str | Path,
    *,
    mapping: str | Path | None = None,
    as_of: str | None = None,
    changes: str | Path | None = None,
    out: str | Path | None = None,
    trials: int | None = None,
) -> TrackingRun:
    """Read the plan folder, the export and the changes file; track; write a new run folder.

    Parameters
    ----------
    plan_dir
        ``results/<batch>/<scenario>``: the saved plan (only read).
    actuals
        The export folder (canonical, or a CRM export with ``mapping``).
    mapping
        Column mapping of a CRM export.
    as_of
        Tracking date (ISO); default the export's date.
    changes
        Mid-year changes file (YAML).
    out
        Folder of the tracking history; default ``<plan_dir>/tracking``.
    trials
        Monte Carlo trials; default the plan's.

    Returns
    -------
    TrackingRun
        The run folder, its report, and the in-memory result.
    """
    from salesops_models.tracking.report import write_report

    plan_dir = Path(plan_dir)
    plan = load_saved_plan(plan_dir)
    data = load_actuals(actuals, mapping)
    log_ = load_changes(changes) if changes is not None else ChangeLog()
    root = tracking_root(plan_dir, Path(out) if out is not None else None)
    day = tracking_date(data, as_of, plan.start)
    runs = [r for r in earlier_runs(root) if str(r["as_of"]) <= str(day.date())]
    result = track(
        plan,
        data,
        as_of=day,
        changes=log_,
        changes_source=str(changes or "changes"),
        trials=trials,
        previous=runs[-1] if runs else None,
    )
    folder = new_run_dir(root, day)
    for name, table in result.tables.items():
        atomic_write_parquet(table, folder / f"{name}.parquet", index=False)
    if changes is not None:
        shutil.copyfile(changes, folder / "changes.yaml")
    report = write_report(result, folder, runs)
    write_summary(folder, result.figures)
    log.info("tracking run written to %s", folder)
    return TrackingRun(folder, report, result)
