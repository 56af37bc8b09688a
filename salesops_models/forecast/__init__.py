"""Revenue forecasting: statsmodels ETS, ARIMA and Theta behind one interface, coherent across the hierarchy.

- :func:`forecast_series`: one series, guarded (bounded forecasts, fallback chain recorded), with
  intervals calibrated from its rolling-origin errors (or the model's Gaussian ones).
- :func:`rolling_origin`, :func:`select_by_backtest`: backtests with coverage, choice by backtest.
- :func:`forecast_many`: many series in-process, over processes (``n_jobs``) or a Dask ``client``,
  intervals calibrated from their pooled rolling-origin errors; same numbers for any worker count.
- :func:`build_hierarchy`, :func:`forecast_hierarchy`, :func:`reconcile`: base forecasts at every level,
  reconciled bottom-up, top-down, OLS, WLS or MinT.
- :func:`blend_with_pipeline`: blend with the pipeline Monte Carlo for the current quarter.
- :mod:`~salesops_models.forecast.metrics`: sMAPE, MAPE, MASE, bias, coverage, MSIS, within-share.

Every forecast is a frame with ``mean`` and the quantiles ``q05, q10, q25, q50, q75, q90, q95``.
ETS, ARIMA and Theta are compiled with numba (:mod:`~salesops_models.forecast.ets`,
:mod:`~salesops_models.forecast.arima`, :mod:`~salesops_models.forecast.theta`); the statsmodels
implementations stay as the reference (:mod:`~salesops_models.forecast.reference`).
"""

from salesops_models.forecast.blend import blend_weight_from_backtest, blend_with_pipeline
from salesops_models.forecast.forecaster import (
    BacktestResult,
    FittedSeries,
    SeriesForecast,
    finish_forecasts,
    fit_series,
    forecast_series,
    rolling_origin,
    select_by_backtest,
)
from salesops_models.forecast.hierarchy import (
    Hierarchy,
    HierarchyForecast,
    build_hierarchy,
    coherence_error,
    forecast_hierarchy,
    reconcile,
)
from salesops_models.forecast.models import (
    ARIMA,
    ETS,
    MODEL_FAMILIES,
    Combination,
    ETSSpec,
    FittedForecast,
    ForecastFitError,
    Naive,
    Naive2,
    SeasonalNaive,
    StatsmodelsARIMA,
    StatsmodelsETS,
    StatsmodelsTheta,
    Theta,
    make_model,
)
from salesops_models.forecast.parallel import forecast_many
from salesops_models.forecast.schema import QUANTILE_LEVELS

__all__ = [
    "ARIMA",
    "ETS",
    "MODEL_FAMILIES",
    "QUANTILE_LEVELS",
    "BacktestResult",
    "Combination",
    "ETSSpec",
    "FittedForecast",
    "FittedSeries",
    "ForecastFitError",
    "Hierarchy",
    "HierarchyForecast",
    "Naive",
    "Naive2",
    "SeasonalNaive",
    "SeriesForecast",
    "StatsmodelsARIMA",
    "StatsmodelsETS",
    "StatsmodelsTheta",
    "Theta",
    "blend_weight_from_backtest",
    "blend_with_pipeline",
    "build_hierarchy",
    "coherence_error",
    "finish_forecasts",
    "fit_series",
    "forecast_hierarchy",
    "forecast_many",
    "forecast_series",
    "make_model",
    "reconcile",
    "rolling_origin",
    "select_by_backtest",
]
