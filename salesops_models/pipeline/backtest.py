"""Moved to :mod:`salesops_models.backtest` (the backtest harness); kept so old imports still work.

``BacktestResult`` of the pipeline is now :class:`~salesops_models.backtest.PipelineBacktestResult`
(the forecast package has a ``BacktestResult`` of its own).
"""

from salesops_models.backtest.pipeline import PipelineBacktestResult, backtest_pipeline
from salesops_models.backtest.snapshot import snapshot_at, won_in

actual_won = won_in  # the old name

__all__ = ["PipelineBacktestResult", "actual_won", "backtest_pipeline", "snapshot_at", "won_in"]
