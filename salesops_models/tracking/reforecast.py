"""Year-end re-forecast per quota holder: what is booked, plus the calibrated pipeline's future.

The pipeline model is recalibrated on the export as of the tracking date (the plan's ``pipeline:``
settings), the deals open on that date play out from their stage and age, and new deals arrive at
each holder's current creation rate; bookings already closed in the plan year are added to every
trial, so the forecast is conditioned on what is booked.

Creation belongs to territories: for the rates, every deal of the export is counted for the
holder who owns its account on the tracking date (a holder who received accounts mid-year carries
their creation history; one who gave them away does not). Nobody creates deals for a leaver after
his last day or for a vacancy (their open deals still close); a hire ramps linearly from his start
day over ``new_rep_ramp_months`` (his mean productivity over the rest of the year, as the pipeline
stage does for planned hires).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.data.company import CompanyData
from salesops_models.data.schema import WON
from salesops_models.pipeline.calibration import calibrate_pipeline
from salesops_models.pipeline.config import PipelineConfig
from salesops_models.pipeline.simulation import compile_inputs, open_pipeline, simulate_pipeline

log = logging.getLogger(__name__)


@dataclass
class Reforecast:
    """Year-end bookings per holder, trials x holders, with the monthly split behind it.

    Attributes
    ----------
    as_of
        Tracking date: bookings up to it are actual, after it simulated.
    holder_ids
        Holders (axis 1 of ``year_end``).
    booked_by_month
        Credited bookings closed in the plan year up to ``as_of``, holders x 12 months [currency].
    simulated_by_month
        Simulated bookings after ``as_of``, trials x holders x 12 months [currency].
    calibration, simulation
        Headline figures of the recalibration and of the Monte Carlo run.
    open_deals
        The open pipeline on ``as_of`` (``open_pipeline``'s table, credited holders).
    """

    as_of: pd.Timestamp
    holder_ids: np.ndarray
    booked_by_month: np.ndarray
    simulated_by_month: np.ndarray
    calibration: dict[str, Any] = field(default_factory=dict)
    simulation: dict[str, Any] = field(default_factory=dict)
    open_deals: pd.DataFrame | None = None

    @property
    def booked(self) -> np.ndarray:
        """Booked to date per holder [currency]."""
        return self.booked_by_month.sum(axis=1)

    @property
    def year_end(self) -> np.ndarray:
        """Year-end bookings, trials x holders [currency]."""
        return self.simulated_by_month.sum(axis=2) + self.booked[None, :]

    def by_quarter(self) -> np.ndarray:
        """Bookings per quarter, 4 x holders x trials (actual and simulated) [currency]."""
        months = self.simulated_by_month + self.booked_by_month[None, :, :]
        return months.reshape(months.shape[0], months.shape[1], 4, 3).sum(axis=3).transpose(2, 1, 0)

    def summary(self) -> dict[str, Any]:
        """Headline figures: booked to date and the company's year-end mean and P10/P50/P90 [currency]."""
        total = self.year_end.sum(axis=1)
        p = np.percentile(total, [10, 50, 90])
        return {
            "as_of": str(self.as_of.date()),
            "booked_to_date": float(self.booked.sum()),
            "year_end_mean": float(total.mean()),
            "year_end_p10": float(p[0]),
            "year_end_p50": float(p[1]),
            "year_end_p90": float(p[2]),
            "trials": int(total.size),
        }

    def holder_table(self, quota: pd.Series) -> pd.DataFrame:
        """Per holder: booked to date, year-end mean and P10/P50/P90, quota, P(make quota).

        ``p_make_quota`` is the share of trials with year-end bookings >= the holder's quota after
        the mid-year changes [0-1]; NaN for a holder without quota.
        """
        return quantile_table(self.holder_ids, self.year_end, quota, booked=self.booked)


def quantile_table(
    ids: np.ndarray | list[str], samples: np.ndarray, quota: pd.Series, booked: np.ndarray | None = None
) -> pd.DataFrame:
    """Mean, P10/P50/P90 and P(samples >= quota) per column of ``samples`` (trials x ids)."""
    q = quota.reindex(list(ids)).astype(float).to_numpy()
    p = np.percentile(samples, [10, 50, 90], axis=0)
    with np.errstate(invalid="ignore"):
        p_make = np.where(q > 0, (samples >= q[None, :]).mean(axis=0), np.nan)
    out = pd.DataFrame(
        {
            "id": [str(i) for i in ids],
            "mean": samples.mean(axis=0),
            "p10": p[0],
            "p50": p[1],
            "p90": p[2],
            "quota": q,
            "p_make_quota": p_make,
        }
    )
    if booked is not None:
        out.insert(1, "booked_to_date", booked)
    return out


def booked_by_month(
    opportunities: pd.DataFrame,
    credited: pd.Series,
    ids: np.ndarray,
    start: pd.Timestamp,
    as_of: pd.Timestamp,
) -> np.ndarray:
    """Won value closed in ``[start, as_of]`` per holder and month of the year (holders x 12)."""
    won = (opportunities["status"] == WON) & opportunities["close_date"].between(start, as_of)
    d = opportunities[won]
    month = d["close_date"].dt.month.to_numpy() - 1
    pos = {h: i for i, h in enumerate(ids)}
    row = credited[won].map(pos)
    out = np.zeros((len(ids), 12))
    ok = row.notna().to_numpy()
    np.add.at(out, (row[ok].to_numpy(int), month[ok]), d["amount"].to_numpy(float)[ok])
    return out


def creation_scale(
    holders: pd.DataFrame, ids: np.ndarray, as_of: pd.Timestamp, year_end: pd.Timestamp, ramp_months: int
) -> np.ndarray:
    """Creation-rate multiplier of each holder over the rest of the year [-].

    0 for vacancies, for leavers whose last day has passed and for ids that hold no quota (reps
    of the export's past); for a hire, his mean productivity from the day after ``as_of`` to year
    end, rising linearly from 0 on his start day to 1 ``ramp_months`` later (1 at once with
    ``ramp_months = 0``); 1 for everyone else.
    """
    h = holders.set_index(holders["rep_id"].astype(str)).reindex(list(ids))
    scale = np.ones(len(ids))
    gone = (
        h["kind"].isna().to_numpy()
        | (h["kind"] == "vacancy").to_numpy()
        | (h["last_day"].notna() & (h["last_day"] <= as_of)).to_numpy()
    )
    scale[gone] = 0.0
    days = pd.date_range(as_of + pd.Timedelta(days=1), year_end, freq="D")
    if len(days):
        for i in np.flatnonzero((h["kind"] == "hire").to_numpy() & ~gone):
            months_in = (days - h["start_date"].iloc[i]).days.to_numpy() / 30.4375
            ramp = np.clip(months_in / ramp_months, 0.0, 1.0) if ramp_months > 0 else (months_in >= 0) * 1.0
            scale[i] = float(ramp.mean())
    return scale


def config_options(func: Callable[..., Any], config: PipelineConfig) -> dict[str, Any]:
    """The settings of the plan's ``pipeline:`` section that ``func`` takes as keyword arguments.

    The re-forecast calls the pipeline API with the plan's settings as the pipeline stage does;
    matching them by name means a setting added to the section and to the function later (say,
    a calibration option) reaches tracking without a change here.
    """
    params = inspect.signature(func).parameters
    return {k: getattr(config, k) for k in type(config).model_fields if k in params}


def reforecast_year_end(
    actuals: CompanyData,
    credited: pd.Series,
    holders: pd.DataFrame,
    owners: pd.Series,
    plan_year: int,
    config: PipelineConfig,
    *,
    seed: np.random.SeedSequence,
    trials: int | None = None,
) -> Reforecast:
    """Re-forecast each holder's plan-year bookings on ``actuals.as_of``.

    Parameters
    ----------
    actuals
        The export, cut at the tracking date (``actuals.as_of``).
    credited
        Holder credited with each opportunity (index of ``actuals.opportunities``).
    holders
        ``rep_id, kind, start_date, last_day`` of every quota holder (:class:`MidYearPlan.holders`).
    owners
        Owner holder of each account on the tracking date.
    plan_year
        The plan year; its months are the periods.
    config
        The plan's ``pipeline:`` settings (calibration window, seasonality, ... trials, block size).
    seed
        Seed sequence of the Monte Carlo run.
    trials
        Trials (default ``config.trials``).

    Returns
    -------
    Reforecast
    """
    as_of = pd.Timestamp(actuals.as_of).normalize()
    start = pd.Timestamp(year=plan_year, month=1, day=1)
    opps = actuals.opportunities.assign(rep_id=credited.astype(str).to_numpy())
    owner_now = opps["account_id"].astype("string").map(owners)
    for_rates = opps.assign(rep_id=owner_now.fillna(opps["rep_id"]).astype(str).to_numpy())
    ids = holders["rep_id"].astype(str)
    hire_dates = actuals.reps.set_index(actuals.reps["rep_id"].astype(str))["hire_date"]
    # hires and vacancies get NaT: their accounts' whole window counts (the deals came from others)
    reps = pd.DataFrame({"rep_id": ids.to_numpy(), "hire_date": ids.map(hire_dates).to_numpy()})
    cal = calibrate_pipeline(
        for_rates,
        actuals.stage_history,
        reps,
        actuals.stages,
        as_of,
        **config_options(calibrate_pipeline, config),
    )
    deals = open_pipeline(
        cal, opps, actuals.stage_history, actuals.stages, **config_options(open_pipeline, config)
    )
    year_end = pd.Timestamp(year=plan_year, month=12, day=31)
    scale = creation_scale(holders, cal.rep_ids, as_of, year_end, config.new_rep_ramp_months)
    edges = pd.date_range(start, f"{plan_year + 1}-01-01", freq="MS")
    inputs = compile_inputs(cal, deals, edges, creation_scale=scale, **config_options(compile_inputs, config))
    booked = booked_by_month(opps, opps["rep_id"], cal.rep_ids, start, as_of)
    sim = simulate_pipeline(
        inputs,
        cal.rep_ids,
        trials=trials or config.trials,
        block_size=config.block_size,
        seed=seed,
        periods=[d.strftime("%Y-%m") for d in edges[:-1]],
        closed_to_date=booked.sum(axis=1),
    )
    log.info(
        "re-forecast on %s: %d open deals, %.1f new deals a week, P50 year end %.0f",
        as_of.date(),
        len(deals),
        float((cal.weekly_rate * scale).sum()),
        float(np.median(sim.total_bookings())),
    )
    return Reforecast(
        as_of=as_of,
        holder_ids=np.asarray(cal.rep_ids).astype(str),
        booked_by_month=booked,
        simulated_by_month=sim.bookings,
        calibration={k: v for k, v in cal.summary().items() if isinstance(v, int | float | str)},
        simulation=sim.summary(),
        open_deals=deals,
    )
