"""Hold-out evaluation of a forecaster on many series: point accuracy and interval calibration.

:func:`interval_scores` is the one call behind the forecast rows of the calibration benchmark
(``benchmarks/calibration.py``) and behind ``benchmarks/forecast.py``: forecast every training
series over its horizon with the default model and interval method, then score against the
held-out actuals. The competition conventions hold (per series over the horizon, then the mean
over series): sMAPE and MASE as in M3/M4, coverage of the central interval, and MSIS (M4).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError
from salesops_models.forecast import metrics as fm
from salesops_models.forecast.forecaster import SeriesForecast
from salesops_models.forecast.metrics import interval_columns
from salesops_models.forecast.parallel import forecast_many
from salesops_models.forecast.schema import QUANTILE_LEVELS


@dataclass
class IntervalScores:
    """Accuracy and interval calibration of one forecaster on a set of series.

    Attributes
    ----------
    coverage
        Mean share of actuals inside the central ``level`` interval [0-1].
    msis
        Mean scaled interval score of that interval (M4 definition, :func:`~salesops_models.forecast.metrics.msis`).
    smape, mase
        Mean sMAPE [%] and MASE of the point forecast.
    level
        Nominal coverage of the interval [0-1].
    seconds
        Wall time of the forecasts [s] (not of the scoring).
    per_series
        One row per series: ``series, smape, mase, coverage, msis, model, fallback``.
    """

    coverage: float
    msis: float
    smape: float
    mase: float
    level: float
    seconds: float
    per_series: pd.DataFrame

    def summary(self) -> dict[str, Any]:
        """Headline figures (means over series) and the number of series."""
        return {
            "coverage": self.coverage,
            "msis": self.msis,
            "smape": self.smape,
            "mase": self.mase,
            "level": self.level,
            "n_series": len(self.per_series),
            "seconds": self.seconds,
        }


def score_forecasts(
    forecasts: Mapping[str, SeriesForecast],
    train: Mapping[str, np.ndarray],
    test: Mapping[str, np.ndarray],
    season_length: int | Mapping[str, int],
    level: float = 0.95,
) -> pd.DataFrame:
    """Per-series sMAPE, MASE, coverage and MSIS of the central ``level`` interval.

    The MASE and MSIS scale is the in-sample seasonal-naive error of the training part with the
    series' season length (m = 1 for yearly, other and M4 weekly, 4 quarterly, 12 monthly).
    """
    lo_col, hi_col = interval_columns(level)
    rows = []
    for sid, fc in forecasts.items():
        frame = fc.forecast
        if lo_col not in frame or hi_col not in frame:
            raise DataValidationError(
                f"forecast of {sid}", [f"needs quantile columns {lo_col}, {hi_col} for a {level:.0%} interval."]
            )
        y = np.asarray(test[sid], float)[: len(frame)]
        f = frame["mean"].to_numpy(float)[: len(y)]
        lo, hi = frame[lo_col].to_numpy(float)[: len(y)], frame[hi_col].to_numpy(float)[: len(y)]
        m = season_length[sid] if isinstance(season_length, Mapping) else season_length
        x = np.asarray(train[sid], float)
        rows.append(
            {
                "series": sid,
                "smape": fm.smape(y, f),
                "mase": fm.mase(y, f, x, m),
                "mape": fm.mape(y, f),
                "coverage": fm.coverage(y, lo, hi),
                "msis": fm.msis(y, lo, hi, x, m, 1.0 - level),
                "model": fc.model,
                "fallback": bool(fc.fallbacks),
            }
        )
    return pd.DataFrame(rows)


def interval_scores(
    train: Mapping[str, np.ndarray | pd.Series],
    test: Mapping[str, np.ndarray | pd.Series],
    season_length: int | Mapping[str, int],
    horizon: int | Mapping[str, int] | None = None,
    *,
    model: str = "combination",
    level: float = 0.95,
    interval_method: str = "calibrated",
    n_jobs: int = 1,
    client: Any = None,
    seed: int | None = None,
    **kwargs: Any,
) -> IntervalScores:
    """Forecast each training series over its hold-out and score point accuracy and the ``level`` interval.

    Parameters
    ----------
    train, test
        Training history and held-out actuals by series [unit/period].
    season_length
        Seasonal period for the models and the MASE/MSIS scale, one or per series [periods].
    horizon
        Periods to forecast (default: the length of each test part).
    model, interval_method, n_jobs, client, seed, kwargs
        Passed to :func:`~salesops_models.forecast.parallel.forecast_many`.
    level
        Nominal coverage of the central interval scored [0-1] (0.95: M4's MSIS at alpha = 0.05).

    Returns
    -------
    IntervalScores
        Means over series and the per-series table.
    """
    if not 0.0 < level < 1.0:
        raise DataValidationError("interval_scores", [f"level must be in (0, 1), got {level}."])
    missing = [k for k in train if k not in test]
    if missing:
        raise DataValidationError("interval_scores", [f"no test part for series {missing[:5]}."])
    if horizon is None:
        horizon = {k: len(np.asarray(test[k])) for k in train}
    a = (1.0 - level) / 2.0
    levels = tuple(sorted({*QUANTILE_LEVELS, a, 1.0 - a}))
    t0 = time.perf_counter()
    forecasts = forecast_many(
        train,
        horizon,
        model=model,
        season_length=season_length,
        n_jobs=n_jobs,
        client=client,
        seed=seed,
        levels=levels,
        interval_method=interval_method,
        **kwargs,
    )
    seconds = time.perf_counter() - t0
    per = score_forecasts(forecasts, train, test, season_length, level)
    return IntervalScores(
        coverage=float(per["coverage"].mean()),
        msis=float(np.nanmean(per["msis"])),
        smape=float(per["smape"].mean()),
        mase=float(np.nanmean(per["mase"])),
        level=level,
        seconds=seconds,
        per_series=per,
    )
