"""The actuals: a CRM export taken during the plan year, checked against the plan it is tracked by."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from salesops_models.backtest import snapshot_at
from salesops_models.data.company import CompanyData, bookings_from_opportunities
from salesops_models.data.loaders import load_crm_export
from salesops_models.data.schema import LOST, WON
from salesops_models.errors import TrackingError


def load_actuals(path: str | Path, mapping: str | Path | None = None) -> CompanyData:
    """Read an export: a canonical folder (``company.json``, as written by ``salesops data``) or a
    CRM export read through a column mapping."""
    path = Path(path)
    if mapping is None:
        if (path / "company.json").is_file():
            return CompanyData.from_dir(path)
        raise TrackingError(
            f"{path}: no company.json, so this is not a canonical folder; give the column mapping of the "
            "export with --mapping (a YAML path or a shipped mapping name such as 'maven')."
        )
    return load_crm_export(path, mapping)


def tracking_date(
    actuals: CompanyData, as_of: str | pd.Timestamp | None, start: pd.Timestamp
) -> pd.Timestamp:
    """The as-of date of a tracking run: ``as_of`` or the export's date, inside the plan year and not
    after the export."""
    export = pd.Timestamp(actuals.as_of).normalize()
    try:
        day = export if as_of is None else pd.Timestamp(as_of).normalize()
    except ValueError:
        raise TrackingError(
            f"as-of date {as_of!r} is not a date; use ISO dates such as 2026-06-30."
        ) from None
    year_end = pd.Timestamp(year=start.year, month=12, day=31)
    if day < start:
        raise TrackingError(
            f"as-of date {day.date()} is before the plan year {start.year} (it starts {start.date()}); "
            "tracking compares the plan year's actuals with the plan: give a date in the plan year."
        )
    if day > year_end:
        raise TrackingError(
            f"as-of date {day.date()} is after the plan year {start.year} (it ends {year_end.date()}); "
            "track this year with a plan made for it."
        )
    if day > export:
        raise TrackingError(
            f"as-of date {day.date()} is after the export's date {export.date()} ({actuals.source}); "
            "the export cannot show what happened later: use a later export or an earlier date."
        )
    return day


def cut_at(actuals: CompanyData, as_of: pd.Timestamp) -> CompanyData:
    """The export as it looked on ``as_of`` (identity when that is the export's own date).

    Uses :func:`salesops_models.backtest.snapshot_at` (every deal open on ``as_of`` in the last open
    stage it had entered by then); open deals lose their amount there: the value is drawn.
    """
    if as_of >= pd.Timestamp(actuals.as_of).normalize():
        return actuals
    opp, sh = snapshot_at(actuals.opportunities, actuals.stage_history, actuals.stages, as_of)
    acts = actuals.activities
    if len(acts):
        acts = acts[acts["week_start"] <= as_of]
    return dataclasses.replace(
        actuals,
        opportunities=opp,
        stage_history=sh,
        bookings=bookings_from_opportunities(opp, actuals.reps),
        activities=acts.reset_index(drop=True),
        as_of=as_of,
        source=f"{actuals.source} (cut at {as_of.date()})",
    ).validated()


def check_same_company(
    actuals: CompanyData,
    plan_company: CompanyData,
    known_reps: set[str],
    known_accounts: set[str],
    start: pd.Timestamp,
    source: str,
) -> None:
    """Raise :class:`TrackingError` when the actuals do not belong to the plan's company.

    Checks the sales process (stage labels), and that every deal of the plan year (open on its
    first day or later, or closed in it) names a rep the plan or the changes file knows and an
    account of the plan.
    """
    problems = []
    if actuals.stages != plan_company.stages:
        problems.append(
            f"the sales stages differ: the export has {list(actuals.stages.all_stages)}, the plan "
            f"{list(plan_company.stages.all_stages)}; export from the plan's CRM, or map the stages alike."
        )
    opp = actuals.opportunities
    in_year = opp["close_date"].isna() | (opp["close_date"] >= start)
    deals = opp[in_year]
    for column, known, what, fix in (
        (
            "rep_id",
            known_reps,
            "rep(s) own plan-year deals but are not reps of the plan",
            "If these are hires, declare them in the changes file (type: hire); if most are unknown, the "
            "export is from another company.",
        ),
        (
            "account_id",
            known_accounts,
            "account(s) of plan-year deals are not accounts of the plan",
            "The export is from another company, or the plan was made on other data: track with the plan "
            "made on this company's data.",
        ),
    ):
        values = deals[column].dropna().astype(str)
        unknown = sorted(set(values) - known)
        if unknown:
            share = float(np.mean(~values.isin(known)))
            problems.append(f"{len(unknown)} {what} (e.g. {unknown[:5]}; {share:.0%} of the deals). {fix}")
    problems.extend(_history_mismatch(opp, plan_company))
    if problems:
        raise TrackingError(
            f"{source}: the actuals do not match the plan:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def _history_mismatch(opp: pd.DataFrame, plan_company: CompanyData, min_share: float = 0.9) -> list[str]:
    """Deals both exports hold that had closed when the plan was made must agree.

    An export that also carries the history (most CRM exports do) shows the deals the plan saw as
    closed with the same rep, account, close date and amount; ids that match but tell another
    story mean another company whose ids look alike (a sample company of another seed, a test
    system). Exports without that history are not checked.
    """
    plan_opp = plan_company.opportunities
    as_of = pd.Timestamp(plan_company.as_of)
    cols = ["opportunity_id", "rep_id", "account_id", "status", "close_date", "amount"]
    seen = plan_opp.loc[plan_opp["status"].isin([WON, LOST]) & (plan_opp["close_date"] <= as_of), cols]
    both = seen.merge(opp[cols], on="opportunity_id", suffixes=("_plan", "_export"))
    if both.empty:
        return []
    same = np.ones(len(both), dtype=bool)
    for c in cols[1:]:
        a, b = both[f"{c}_plan"], both[f"{c}_export"]
        same &= ((a == b) | (a.isna() & b.isna())).fillna(False).to_numpy(bool)
    share = float(same.mean())
    if share >= min_share:
        return []
    return [
        f"of the {len(both)} deals closed by {as_of.date()} that the plan's data and the export both hold, only "
        f"{share:.0%} agree on rep, account, status, close date and amount (e.g. "
        f"{both.loc[~same, 'opportunity_id'].iloc[0]}): the export is from another company or another CRM "
        "system whose ids look alike."
    ]
