"""Backtest: calibrate on what was known at a cutoff, simulate the next periods, rank the actuals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.data.company import StageSet
from salesops_models.data.schema import LOST, OPEN, WON
from salesops_models.pipeline.calibration import calibrate_pipeline
from salesops_models.pipeline.simulation import compile_inputs, open_pipeline, simulate_pipeline


def snapshot_at(
    opportunities: pd.DataFrame, stage_history: pd.DataFrame, stages: StageSet, as_of: pd.Timestamp | str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The opportunities and stage history as a CRM would have shown them on ``as_of``.

    Deals created after ``as_of``, or with no date at all, are dropped; deals that closed after it
    are open again, in the last stage they had entered by then, without close date and amount
    (their value is not known yet). History rows after ``as_of`` are dropped.
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
    opp.loc[reopen, "close_date"] = pd.NaT
    opp.loc[opp["status"] == OPEN, "amount"] = np.nan
    sh = sh[sh["opportunity_id"].isin(set(opp["opportunity_id"]))]
    return opp.reset_index(drop=True), sh.reset_index(drop=True)


@dataclass
class BacktestResult:
    """Actual won revenue against the simulated distribution, per period.

    ``table`` has ``period, actual, mean, p10, p50, p90, percentile, inside_p10_p90``; the
    percentile is the share of trials below the actual plus half the share equal to it [0-100].
    """

    cutoff: pd.Timestamp
    table: pd.DataFrame
    calibration_summary: dict[str, Any]
    simulation_summary: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cutoff": str(self.cutoff.date())}
        for _, r in self.table.iterrows():
            out[f"{r['period']}_percentile"] = float(r["percentile"])
            out[f"{r['period']}_actual"] = float(r["actual"])
            out[f"{r['period']}_p50"] = float(r["p50"])
        out["coverage_p10_p90"] = float(self.table["inside_p10_p90"].mean())
        return out


def actual_won(opportunities: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Won value with ``start <= close_date < end`` [currency]."""
    won = opportunities[
        (opportunities["status"] == WON)
        & (opportunities["close_date"] >= start)
        & (opportunities["close_date"] < end)
    ]
    return float(won["amount"].sum())


def backtest_pipeline(
    opportunities: pd.DataFrame,
    stage_history: pd.DataFrame,
    reps: pd.DataFrame,
    stages: StageSet,
    cutoff: pd.Timestamp | str,
    period_edges: Sequence[pd.Timestamp | str],
    *,
    trials: int = 2000,
    block_size: int = 250,
    seed: int | np.random.SeedSequence = 0,
    **calibration_options: Any,
) -> BacktestResult:
    """Calibrate on the history known on ``cutoff``, simulate the periods, rank the actuals.

    Parameters
    ----------
    opportunities, stage_history, reps, stages
        The full history (the actuals come from it).
    cutoff
        Last day of known history (e.g. 2017-06-30 to forecast from 1 July).
    period_edges
        Edges of the periods to score, the first on or after the cutoff.
    trials, block_size, seed
        Monte Carlo settings.
    calibration_options
        Passed to :func:`~salesops_models.pipeline.calibration.calibrate_pipeline`.
    """
    cutoff = pd.Timestamp(cutoff)
    edges = pd.DatetimeIndex(pd.to_datetime(list(period_edges)))
    opp, sh = snapshot_at(opportunities, stage_history, stages, cutoff)
    cal = calibrate_pipeline(opp, sh, reps, stages, cutoff, **calibration_options)
    deals = open_pipeline(cal, opp, sh, stages)
    inputs = compile_inputs(cal, deals, edges)
    labels = [f"{e.year}Q{e.quarter}" if e.is_quarter_start else str(e.date()) for e in edges[:-1]]
    sim = simulate_pipeline(
        inputs, cal.rep_ids, trials=trials, block_size=block_size, seed=seed, periods=labels
    )
    per_period = sim.bookings.sum(axis=1)  # (trials, periods)
    rows = []
    for k, label in enumerate(labels):
        actual = actual_won(opportunities, edges[k], edges[k + 1])
        x = per_period[:, k]
        pct = 100.0 * (np.mean(x < actual) + 0.5 * np.mean(x == actual))
        q = np.percentile(x, [10, 50, 90])
        rows.append(
            {
                "period": label,
                "actual": actual,
                "mean": float(x.mean()),
                "p10": float(q[0]),
                "p50": float(q[1]),
                "p90": float(q[2]),
                "percentile": float(pct),
                "inside_p10_p90": bool(q[0] <= actual <= q[2]),
            }
        )
    return BacktestResult(cutoff, pd.DataFrame(rows), cal.summary(), sim.summary())
