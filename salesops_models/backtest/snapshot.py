"""What a CRM showed on a past date: the information set of a backtest cutoff."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from salesops_models.data.company import CompanyData, StageSet, bookings_from_opportunities
from salesops_models.data.schema import LOST, OPEN, WON


def snapshot_at(
    opportunities: pd.DataFrame, stage_history: pd.DataFrame, stages: StageSet, as_of: pd.Timestamp | str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The opportunities and stage history as a CRM would have shown them on ``as_of``.

    Deals created after ``as_of``, or with no date at all, are dropped; deals that closed after it
    are open again, in the last stage they had entered by then, without close date and amount
    (their value is not known yet); deals open on both dates are also put back in the last stage
    they had entered by ``as_of``. History rows after ``as_of`` are dropped.
    """
    as_of = pd.Timestamp(as_of)
    sh = stage_history[stage_history["entered_date"] <= as_of].copy()
    first = sh.groupby("opportunity_id")["entered_date"].min()
    opp = opportunities.copy()
    created = opp["created_date"].fillna(opp["opportunity_id"].map(first))
    opp = opp[created.notna() & (created <= as_of)].copy()
    reopen = opp["status"].isin([WON, LOST]) & (opp["close_date"] > as_of)
    rank = {s: i for i, s in enumerate(stages.all_stages)}
    last = (
        sh[sh["stage"].isin(stages.open_stages)]
        .assign(_r=lambda d: d["stage"].map(rank))
        .sort_values(["opportunity_id", "entered_date", "_r"])
        .groupby("opportunity_id")["stage"]
        .last()
    )
    opp.loc[reopen, "stage"] = (
        opp.loc[reopen, "opportunity_id"].map(last).fillna(stages.open_stages[0]).to_numpy()
    )
    opp.loc[reopen, "status"] = OPEN
    # a deal still open on the export's date shows the stage it has reached by then, which may be
    # later than the stage it was in on ``as_of``: put it back where its history had it that day
    still_open = (opp["status"] == OPEN) & ~reopen
    entered = opp.loc[still_open, "opportunity_id"].map(last)
    opp.loc[still_open, "stage"] = entered.fillna(opp.loc[still_open, "stage"]).to_numpy()
    opp.loc[reopen, "close_date"] = pd.NaT
    opp.loc[opp["status"] == OPEN, "amount"] = np.nan
    sh = sh[sh["opportunity_id"].isin(set(opp["opportunity_id"]))]
    return opp.reset_index(drop=True), sh.reset_index(drop=True)


def company_at(company: CompanyData, cutoff: pd.Timestamp | str) -> CompanyData:
    """The whole company as known on ``cutoff``: opportunities and stage history by
    :func:`snapshot_at`, bookings rebuilt from the deals won by then, activities up to then, reps
    hired by then (later hires did not exist yet), ``as_of = cutoff``."""
    cutoff = pd.Timestamp(cutoff)
    opp, sh = snapshot_at(company.opportunities, company.stage_history, company.stages, cutoff)
    reps = company.reps
    if "hire_date" in reps:
        hire = pd.to_datetime(reps["hire_date"])
        reps = reps[hire.isna() | (hire <= cutoff)].reset_index(drop=True)
    known = set(reps["rep_id"].astype(str))
    opp = opp[opp["rep_id"].astype(str).isin(known)].reset_index(drop=True)
    sh = sh[sh["opportunity_id"].isin(set(opp["opportunity_id"]))].reset_index(drop=True)
    act = company.activities
    if len(act):
        act = act[(pd.to_datetime(act["week_start"]) <= cutoff) & act["rep_id"].astype(str).isin(known)]
    return dataclasses.replace(
        company,
        reps=reps,
        opportunities=opp,
        stage_history=sh,
        bookings=bookings_from_opportunities(opp, reps),
        activities=act.reset_index(drop=True),
        as_of=cutoff,
        name=f"{company.name}@{cutoff.date()}",
    )


def won_in(
    opportunities: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, by: str | None = None
) -> float | pd.Series:
    """Won value with ``start <= close_date < end`` [currency]; per ``by`` (e.g. ``rep_id``) when given."""
    won = opportunities[
        (opportunities["status"] == WON)
        & (opportunities["close_date"] >= pd.Timestamp(start))
        & (opportunities["close_date"] < pd.Timestamp(end))
    ]
    if by is None:
        return float(won["amount"].sum())
    return won.groupby(won[by].astype(str))["amount"].sum()
