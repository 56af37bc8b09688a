"""Guarded forecasting of one series, rolling-origin backtests and automatic model choice.

:func:`forecast_series` is what the rest of the package calls: it prepares the series (complete
``PeriodIndex``), fits the requested model, checks that the forecast is finite and bounded, walks a
fallback chain when it is not (damped ETS -> SES -> seasonal naive, FIELD-NOTES 2.3), optionally
clips at zero, and records every step in a :class:`SeriesForecast`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError
from salesops_models.forecast import metrics as fm
from salesops_models.forecast.models import (
    Combination,
    FittedForecast,
    ForecastFitError,
    make_model,
)
from salesops_models.forecast.schema import QUANTILE_LEVELS, complete_series, quantile_columns

log = logging.getLogger(__name__)

#: Models tried in order when the requested one fails or gives an unbounded forecast.
FALLBACK_CHAIN: tuple[str, ...] = ("ets_damped", "ses", "snaive")

#: Candidates of ``model="auto"`` (choice by rolling-origin backtest), preferred first on ties.
AUTO_CANDIDATES: tuple[str, ...] = ("theta", "ets", "arima", "snaive")

_FIT_ERRORS = (
    ForecastFitError,
    ValueError,
    np.linalg.LinAlgError,
    OverflowError,
    ZeroDivisionError,
    IndexError,
)


@dataclass
class SeriesForecast:
    """The forecast of one series and how it was obtained.

    Attributes
    ----------
    series
        Series label.
    forecast
        Index: future periods; columns ``mean``, ``q05`` ... ``q95`` [unit/period].
    model
        The fitted model actually used (after any fallback).
    requested
        The model family that was asked for.
    params
        Estimated parameters of ``model``.
    fallbacks
        One entry per rejected attempt: ``"<family>: <reason>"``; empty when the first fit was used.
    filled_periods
        Periods missing from the input and filled with zero.
    clipped
        Whether negative values were clipped to 0 (non-negative series such as bookings).
    """

    series: str
    forecast: pd.DataFrame
    model: str
    requested: str
    params: dict[str, float] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    filled_periods: int = 0
    clipped: bool = False
    residuals: np.ndarray = field(default_factory=lambda: np.array([]), repr=False)
    fitted: FittedForecast | None = field(default=None, repr=False)

    @property
    def used_fallback(self) -> bool:
        return bool(self.fallbacks)

    def summary(self) -> dict[str, Any]:
        """Headline facts of this forecast."""
        return {
            "series": self.series,
            "model": self.model,
            "requested": self.requested,
            "fallbacks": len(self.fallbacks),
            "clipped": self.clipped,
            "filled_periods": self.filled_periods,
            "total_mean": float(self.forecast["mean"].sum()),
        }


def check_bounded(frame: pd.DataFrame, history: np.ndarray, bound_factor: float = 10.0) -> str | None:
    """Why a forecast is unusable, or ``None`` when it is fine.

    Notes
    -----
    With :math:`M = \\max_t |y_t|` over the history (1 if that is 0), a forecast passes when every
    value is finite, :math:`|\\hat y_{n+h}| \\le c M` and every quantile :math:`|q| \\le 10\\,c M`
    (:math:`c` = ``bound_factor``). Exploding multiplicative ETS fits (statsmodels #7331, #8551)
    fail this test.
    """
    values = frame.to_numpy(float)
    if not np.isfinite(values).all():
        return "non-finite forecast"
    scale = float(np.max(np.abs(history))) if len(history) else 1.0
    scale = scale if scale > 0 else 1.0
    peak = float(np.max(np.abs(frame["mean"].to_numpy(float))))
    if peak > bound_factor * scale:
        return f"mean forecast {peak:.4g} exceeds {bound_factor:g} x history max {scale:.4g}"
    qcols = [c for c in frame.columns if c != "mean"]
    if qcols:
        qpeak = float(np.max(np.abs(frame[qcols].to_numpy(float))))
        if qpeak > 10 * bound_factor * scale:
            return f"quantile {qpeak:.4g} exceeds {10 * bound_factor:g} x history max {scale:.4g}"
    return None


class _GuardedCombination(Combination):
    """A combination that leaves out members whose forecast fails :func:`check_bounded`."""

    def __init__(self, base: Combination, bound_factor: float, notes: list[str]) -> None:
        super().__init__(base.season_length, base.members, how=base.how, seed=base.seed)
        self.bound_factor = bound_factor
        self.notes = notes

    def _fit(self, y: pd.Series) -> FittedForecast:
        fitted = super()._fit(y)
        history = y.to_numpy(float)
        members = fitted.components
        agg = np.mean if self.how == "mean" else np.median
        notes = self.notes

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            frames = []
            for f in members:
                fr = f.forecast(h, levels)
                reason = check_bounded(fr, history, self.bound_factor)
                if reason:
                    notes.append(f"combination member {f.model} left out: {reason}")
                    continue
                frames.append(fr)
            if not frames:
                raise ForecastFitError("combination: every member gave an unbounded forecast")
            mean = agg(np.vstack([fr["mean"].to_numpy() for fr in frames]), axis=0)
            cols = quantile_columns(levels)
            return mean, {c: agg(np.vstack([fr[c].to_numpy() for fr in frames]), axis=0) for c in cols}

        fitted.predict_fn = predict
        return fitted


def forecast_series(
    y: pd.Series | np.ndarray,
    horizon: int,
    model: str = "combination",
    season_length: int = 12,
    *,
    levels: tuple[float, ...] = QUANTILE_LEVELS,
    nonnegative: bool = False,
    bound_factor: float = 10.0,
    fallback: Sequence[str] = FALLBACK_CHAIN,
    seed: int | None = None,
    name: str = "series",
    auto_candidates: Sequence[str] = AUTO_CANDIDATES,
) -> SeriesForecast:
    """Fit ``model`` to one series and forecast ``horizon`` periods, with guards and fallbacks.

    Parameters
    ----------
    y
        History [unit/period] on a ``PeriodIndex`` (gaps are filled with 0 and counted) or an array.
    horizon
        Periods to forecast.
    model
        Family name (see :data:`~salesops_models.forecast.models.MODEL_FAMILIES`), or ``"auto"``:
        the family in :data:`AUTO_CANDIDATES` with the lowest MASE over a 2-fold rolling-origin
        backtest on the history (within a family, ETS and ARIMA choose their specification by AICc).
    season_length
        Seasonal period [periods].
    levels
        Quantile levels of the output.
    nonnegative
        Clip the mean and quantiles at 0 (bookings cannot be negative); recorded in ``clipped``.
    bound_factor
        :math:`c` of :func:`check_bounded`.
    fallback
        Families tried, in order, when a fit fails or is unbounded. The last resort of the default
        chain, seasonal naive, always gives a finite forecast.
    seed
        Seed of simulated quantiles.
    """
    if horizon < 1:
        raise DataValidationError(name, [f"horizon must be >= 1 period, got {horizon}."])
    series, filled = complete_series(y, name=name)
    if len(series) < 2:
        raise DataValidationError(name, [f"needs at least 2 periods of history, got {len(series)}."])
    history = series.to_numpy(float)
    selection: list[str] = []
    if model == "auto":
        # choice by rolling-origin backtest (MASE) among AUTO_CANDIDATES, on the history only
        bt_h = max(1, min(horizon, len(series) // 4))
        model, table = select_by_backtest(
            series, list(auto_candidates), bt_h, 2, season_length, seed=seed, name=name
        )
        selection = [
            f"auto: chose {model} by backtest MASE "
            + ", ".join(f"{r.model}={r.mase:.3g}" for r in table.itertuples())
        ]
    attempts = [model, *[f for f in fallback if f != model]]
    fallbacks: list[str] = []
    for family in attempts:
        notes: list[str] = []
        try:
            est = make_model(family, season_length, seed=seed)
            if isinstance(est, Combination):
                est = _GuardedCombination(est, bound_factor, notes)
            fitted = est.fit(series)
            frame = fitted.forecast(horizon, levels)
        except _FIT_ERRORS as exc:
            fallbacks.append(f"{family}: {type(exc).__name__}: {exc}")
            log.info("%s: %s failed (%s); falling back", name, family, exc)
            continue
        reason = check_bounded(frame, history, bound_factor)
        if reason:
            fallbacks.append(f"{family} ({fitted.model}): {reason}")
            log.info("%s: %s rejected (%s); falling back", name, fitted.model, reason)
            continue
        fallbacks.extend(sorted(set(notes)))
        params = {**fitted.params}
        if selection:
            log.debug("%s: %s", name, selection[0])
            params["selected_by_backtest"] = 1.0
        clipped = False
        if nonnegative and (frame.to_numpy() < 0).any():
            frame = frame.clip(lower=0.0)
            clipped = True
        return SeriesForecast(
            name,
            frame,
            fitted.model,
            model,
            params,
            fallbacks,
            filled,
            clipped,
            fitted.residuals,
            fitted,
        )
    raise ForecastFitError(f"{name}: every model failed: {' | '.join(fallbacks)}")


# ------------------------------------------------------------------------------------------------
# Rolling-origin backtests
# ------------------------------------------------------------------------------------------------


@dataclass
class BacktestResult:
    """Rolling-origin forecasts and their accuracy.

    Attributes
    ----------
    forecasts
        One row per (series, origin, step): ``series, origin, step, period, y, mean, q05 ... q95,
        model``. ``origin`` is the last training period.
    accuracy
        One row per (series, origin) with the metrics of :func:`~salesops_models.forecast.metrics.accuracy_by_series`.
    """

    forecasts: pd.DataFrame
    accuracy: pd.DataFrame

    def summary(self) -> dict[str, float]:
        """Means over folds and series: sMAPE, MAPE, MASE, bias, within-share and 80/90% coverage."""
        out = fm.summarise_accuracy(self.accuracy.drop(columns=["origin"], errors="ignore"))
        out["n_evaluations"] = out.pop("n_series")
        out["n_series"] = int(self.accuracy["series"].nunique()) if len(self.accuracy) else 0
        out["n_folds"] = int(self.accuracy["origin"].nunique()) if len(self.accuracy) else 0
        out["fallbacks"] = int(self.forecasts.get("fallback", pd.Series(dtype=bool)).sum())
        return out


def origins_for(n: int, horizon: int, folds: int, step: int = 1, min_train: int = 6) -> list[int]:
    """Training lengths of the rolling origins: the last fold ends at the last observation.

    Notes
    -----
    Fold :math:`k = 0, ..., K-1` trains on the first :math:`n - h - (K-1-k)s` observations and
    tests on the :math:`h` that follow; origins with fewer than ``min_train`` points are dropped.
    """
    lengths = [n - horizon - (folds - 1 - k) * step for k in range(folds)]
    return [t for t in lengths if t >= min_train]


def rolling_origin(
    y: pd.Series | np.ndarray,
    horizon: int,
    folds: int = 3,
    model: str = "combination",
    season_length: int = 12,
    *,
    step: int = 1,
    min_train: int | None = None,
    levels: tuple[float, ...] = QUANTILE_LEVELS,
    nonnegative: bool = False,
    seed: int | None = None,
    name: str = "series",
) -> BacktestResult:
    """Backtest one series: refit at each origin, forecast ``horizon`` ahead, score against actuals.

    Parameters
    ----------
    y
        Full history [unit/period].
    horizon, folds, step
        Forecast horizon, number of origins and periods between origins.
    min_train
        Shortest training window [periods] (default: ``max(2 * season_length, 6)`` capped by the data).
    """
    series, _ = complete_series(y, name=name)
    n = len(series)
    if min_train is None:
        min_train = min(max(2 * season_length, 6), max(n - horizon - (folds - 1) * step, 2))
    lengths = origins_for(n, horizon, folds, step, min_train)
    if not lengths:
        raise DataValidationError(
            name,
            [
                f"{n} periods are too few for {folds} fold(s) of horizon {horizon} with at least {min_train} "
                "training periods; shorten the horizon or use fewer folds."
            ],
        )
    rows, acc = [], []
    for t in lengths:
        train, test = series.iloc[:t], series.iloc[t : t + horizon]
        fc = forecast_series(
            train,
            len(test),
            model,
            season_length,
            levels=levels,
            nonnegative=nonnegative,
            seed=seed,
            name=name,
        )
        frame = fc.forecast.copy()
        frame.insert(0, "y", test.to_numpy(float))
        frame.insert(0, "period", frame.index)
        frame.insert(0, "step", np.arange(1, len(test) + 1))
        frame.insert(0, "origin", train.index[-1])
        frame.insert(0, "series", name)
        frame["model"] = fc.model
        frame["fallback"] = fc.used_fallback
        rows.append(frame.reset_index(drop=True))
        per = fm.accuracy_by_series(frame, {name: train.to_numpy(float)}, season_length)
        per.insert(1, "origin", train.index[-1])
        acc.append(per)
    return BacktestResult(pd.concat(rows, ignore_index=True), pd.concat(acc, ignore_index=True))


def select_by_backtest(
    y: pd.Series | np.ndarray,
    candidates: Sequence[str],
    horizon: int,
    folds: int = 2,
    season_length: int = 12,
    *,
    metric: str = "mase",
    seed: int | None = None,
    name: str = "series",
) -> tuple[str, pd.DataFrame]:
    """Choose the family with the lowest mean backtest ``metric``.

    Returns
    -------
    (str, DataFrame)
        The chosen family and a table ``model, <metric>, smape, coverage90`` of every candidate.
        Ties and all-NaN scores keep the earlier candidate (list them from preferred to least).
    """
    table = []
    for family in candidates:
        try:
            bt = rolling_origin(y, horizon, folds, family, season_length, seed=seed, name=name)
            s = bt.summary()
            table.append(
                {
                    "model": family,
                    metric: s.get(metric, np.nan),
                    "smape": s.get("smape", np.nan),
                    "coverage90": s.get("coverage90", np.nan),
                }
            )
        except (DataValidationError, ForecastFitError) as exc:
            log.info("%s: backtest of %s failed: %s", name, family, exc)
            table.append({"model": family, metric: np.nan, "smape": np.nan, "coverage90": np.nan})
    scores = pd.DataFrame(table)
    valid = scores[metric].notna()
    if not valid.any():
        return candidates[0], scores
    return str(scores.loc[scores.loc[valid, metric].idxmin(), "model"]), scores
