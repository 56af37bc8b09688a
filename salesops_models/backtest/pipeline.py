"""The pipeline model at one backtest cutoff: calibrate on what was known, simulate the horizon.

:func:`simulate_horizon` is the building block of the harness (:mod:`.harness`);
:func:`backtest_pipeline` is the one-cutoff, several-periods check kept from the pipeline package.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.backtest.snapshot import snapshot_at, won_in
from salesops_models.data.company import CompanyData, StageSet
from salesops_models.pipeline.calibration import (
    CalibrationWarning,
    PipelineCalibration,
    calibrate_pipeline,
)
from salesops_models.pipeline.config import PipelineConfig
from salesops_models.pipeline.simulation import compile_inputs, open_pipeline, simulate_pipeline

log = logging.getLogger(__name__)


@dataclass
class HorizonSimulation:
    """Simulated won revenue of one horizon from one cutoff.

    Attributes
    ----------
    rep_ids
        Reps (columns of ``rep_bookings``).
    rep_bookings
        Won value per trial and rep inside the horizon, shape (trials, reps) [currency].
    calibration_summary
        The calibration's headline figures and diagnostics.
    warnings
        Calibration warnings raised at this cutoff (the data could not identify something).
    """

    rep_ids: np.ndarray
    rep_bookings: np.ndarray
    calibration_summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> np.ndarray:
        """Company won value per trial [currency]."""
        return self.rep_bookings.sum(axis=1)


def calibration_options(cfg: PipelineConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`calibrate_pipeline` from a scenario's ``pipeline:`` section."""
    return {
        "rate_window_weeks": cfg.rate_window_weeks,
        "seasonality": cfg.seasonality,
        "quarter_end_pull": cfg.quarter_end_pull,
        "size_by": cfg.size_by,
        "size_by_cycle": cfg.size_by_cycle,
        "history_start": cfg.history_start,
        "residual": cfg.residual,
        "observed_from": cfg.observed_from,
        "creation_trend": cfg.creation_trend,
        "conversion_drift": cfg.conversion_drift,
    }


def calibrate_at_cutoff(
    company: CompanyData, cfg: PipelineConfig
) -> tuple[PipelineCalibration, pd.DataFrame, list[str]]:
    """Calibrate on ``company`` (already cut at its ``as_of``) and list its open pipeline.

    Returns
    -------
    tuple
        The calibration, the open deals (:func:`~salesops_models.pipeline.simulation.open_pipeline`)
        and the calibration warnings raised (what the data could not identify).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CalibrationWarning)
        cal = calibrate_pipeline(
            company.opportunities,
            company.stage_history,
            company.reps,
            company.stages,
            company.as_of,
            **calibration_options(cfg),
        )
    notes = [str(w.message) for w in caught if issubclass(w.category, CalibrationWarning)]
    deals = open_pipeline(
        cal,
        company.opportunities,
        company.stage_history,
        company.stages,
        use_open_amounts=cfg.use_open_amounts,
    )
    return cal, deals, notes


def simulate_horizon(
    company: CompanyData,
    start: pd.Timestamp,
    end: pd.Timestamp,
    cfg: PipelineConfig,
    *,
    trials: int,
    seed: np.random.SeedSequence,
) -> HorizonSimulation:
    """Calibrate on ``company`` (already cut at its ``as_of``) and simulate won value in ``[start, end)``.

    Parameters
    ----------
    company
        The company as known on the cutoff (:func:`~salesops_models.backtest.snapshot.company_at`).
    start, end
        Horizon [first day, day after the last].
    cfg
        Pipeline settings (calibration and simulation keys of a scenario's ``pipeline:`` section).
    trials, seed
        Monte Carlo trials and seed sequence.
    """
    cal, deals, notes = calibrate_at_cutoff(company, cfg)
    inputs = compile_inputs(
        cal,
        deals,
        [pd.Timestamp(start), pd.Timestamp(end)],
        age_aware=cfg.age_aware,
        stale_policy=cfg.stale_policy,
        uncertainty=cfg.uncertainty,
    )
    sim = simulate_pipeline(inputs, cal.rep_ids, trials=trials, block_size=cfg.block_size, seed=seed)
    return HorizonSimulation(
        np.asarray(cal.rep_ids).astype(str), sim.bookings.sum(axis=2), cal.summary(), notes
    )


@dataclass
class PipelineBacktestResult:
    """Actual won revenue against the simulated distribution, per period, from one cutoff.

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
    uncertainty: str = "calibrated",
    **calibration_options: Any,
) -> PipelineBacktestResult:
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
    uncertainty
        'calibrated' (default) or 'point' (see :func:`~salesops_models.pipeline.simulation.compile_inputs`).
    calibration_options
        Passed to :func:`~salesops_models.pipeline.calibration.calibrate_pipeline`.
    """
    cutoff = pd.Timestamp(cutoff)
    edges = pd.DatetimeIndex(pd.to_datetime(list(period_edges)))
    opp, sh = snapshot_at(opportunities, stage_history, stages, cutoff)
    cal = calibrate_pipeline(opp, sh, reps, stages, cutoff, **calibration_options)
    deals = open_pipeline(cal, opp, sh, stages)
    inputs = compile_inputs(cal, deals, edges, uncertainty=uncertainty)
    labels = [f"{e.year}Q{e.quarter}" if e.is_quarter_start else str(e.date()) for e in edges[:-1]]
    sim = simulate_pipeline(
        inputs, cal.rep_ids, trials=trials, block_size=block_size, seed=seed, periods=labels
    )
    per_period = sim.bookings.sum(axis=1)  # (trials, periods)
    rows = []
    for k, label in enumerate(labels):
        actual = float(won_in(opportunities, edges[k], edges[k + 1]))
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
    return PipelineBacktestResult(cutoff, pd.DataFrame(rows), cal.summary(), sim.summary())
