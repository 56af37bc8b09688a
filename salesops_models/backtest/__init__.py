"""Backtests of the plan numbers' bands: rolling cutoffs, each calibrated only on what was known then.

- :func:`run_backtest` with :class:`BacktestSettings`: the pipeline, forecast, rep attainment and
  commission bands scored at every cutoff against what happened, next to naive baselines
  (:class:`BacktestReport`: a scores table and a summary; ``write`` makes the artefact folder).
- :func:`load_latest_backtest`: the newest artefact folder (summary, scores, path), for reports.
- :func:`company_at`, :func:`snapshot_at`: what the CRM showed on a past date.
- :func:`backtest_pipeline`: one cutoff, several periods, the pipeline alone
  (:class:`PipelineBacktestResult`).
- :func:`decompose_horizon`: where a pipeline backtest errs, the horizon's wins from the deals open
  on the cutoff and from deals created after it, model against actual (:class:`HorizonDecomposition`).
- :mod:`.scoring`: CRPS, pinball loss, PIT, coverage.
"""

from salesops_models.backtest.decompose import HorizonDecomposition, decompose_horizon
from salesops_models.backtest.harness import (
    MODELS,
    BacktestError,
    BacktestReport,
    BacktestSettings,
    default_cutoffs,
    horizon_of,
    load_latest_backtest,
    run_backtest,
)
from salesops_models.backtest.pipeline import (
    HorizonSimulation,
    PipelineBacktestResult,
    backtest_pipeline,
    simulate_horizon,
)
from salesops_models.backtest.snapshot import company_at, snapshot_at, won_in

__all__ = [
    "MODELS",
    "BacktestError",
    "BacktestReport",
    "BacktestSettings",
    "HorizonDecomposition",
    "HorizonSimulation",
    "PipelineBacktestResult",
    "backtest_pipeline",
    "company_at",
    "decompose_horizon",
    "default_cutoffs",
    "horizon_of",
    "load_latest_backtest",
    "run_backtest",
    "simulate_horizon",
    "snapshot_at",
    "won_in",
]
