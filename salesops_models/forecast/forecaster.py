"""Guarded forecasting of one series, calibrated intervals, rolling-origin backtests and automatic model choice.

:func:`forecast_series` is what the rest of the package calls: it prepares the series (complete
``PeriodIndex``), fits the requested model, checks that the forecast is finite and bounded, walks a
fallback chain when it is not (damped ETS -> SES -> seasonal naive, FIELD-NOTES 2.3), calibrates
the intervals from the model's own rolling-origin errors (``interval_method="calibrated"``,
:mod:`~salesops_models.forecast.intervals`) or keeps the model's Gaussian ones (``"gaussian"``),
optionally clips at zero, and records every step in a :class:`SeriesForecast`.

Many series are forecast in two steps so that their errors can be pooled: :func:`fit_series` on
each series (in any order, on any worker), then :func:`finish_forecasts` on all of them in input
order (:func:`~salesops_models.forecast.parallel.forecast_many` does both).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError
from salesops_models.forecast import metrics as fm
from salesops_models.forecast.intervals import (
    CALIBRATION_METHODS,
    CALIBRATION_ORIGINS,
    CALIBRATION_SOURCES,
    INTERVAL_METHODS,
    Calibration,
    RollingErrors,
    calibrate,
    calibration_origins,
    errors_at_origins,
)
from salesops_models.forecast.models import (
    Combination,
    FittedForecast,
    ForecastFitError,
    make_model,
    member_aggregate,
)
from salesops_models.forecast.schema import QUANTILE_LEVELS, complete_series, future_index, quantile_columns

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
    interval_method
        ``"calibrated"`` (quantiles from rolling-origin errors) or ``"gaussian"`` (the model's own).
    rolling_errors
        The rolling-origin errors the calibration used (kept only when asked for).
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
    interval_method: str = "gaussian"
    rolling_errors: RollingErrors | None = field(default=None, repr=False)

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
            "interval_method": self.interval_method,
            "total_mean": float(self.forecast["mean"].sum()),
        }


@dataclass
class FittedSeries:
    """First step of a forecast: the fitted model, its point forecast and raw quantiles, its errors.

    :func:`finish_forecasts` turns a list of these into :class:`SeriesForecast` objects; the
    ``rolling_errors`` of all of them form the calibration pool.
    """

    name: str
    index: pd.Index
    mean: np.ndarray
    quantiles: np.ndarray
    levels: tuple[float, ...]
    model: str
    requested: str
    params: dict[str, float]
    fallbacks: list[str]
    filled_periods: int
    residuals: np.ndarray
    fitted: FittedForecast | None
    rolling_errors: RollingErrors | None
    nonnegative: bool
    quantile_bound: float = float("inf")
    """Largest absolute quantile accepted [unit] (:func:`check_bounded`: 10 c max|history|)."""
    calibration_method: str = "shrunk_scale"
    """How the batch's errors become quantiles (:func:`~salesops_models.forecast.intervals.calibrate`)."""


def bounded_reason(
    mean: np.ndarray, quantiles: np.ndarray, history: np.ndarray, bound_factor: float = 10.0
) -> str | None:
    """Why a forecast (arrays) is unusable, or ``None`` when it is fine (see :func:`check_bounded`)."""
    if not (np.isfinite(mean).all() and np.isfinite(quantiles).all()):
        return "non-finite forecast"
    scale = float(np.max(np.abs(history))) if len(history) else 1.0
    scale = scale if scale > 0 else 1.0
    peak = float(np.max(np.abs(mean))) if mean.size else 0.0
    if peak > bound_factor * scale:
        return f"mean forecast {peak:.4g} exceeds {bound_factor:g} x history max {scale:.4g}"
    if quantiles.size:
        qpeak = float(np.max(np.abs(quantiles)))
        if qpeak > 10 * bound_factor * scale:
            return f"quantile {qpeak:.4g} exceeds {10 * bound_factor:g} x history max {scale:.4g}"
    return None


def check_bounded(frame: pd.DataFrame, history: np.ndarray, bound_factor: float = 10.0) -> str | None:
    """Why a forecast is unusable, or ``None`` when it is fine.

    Notes
    -----
    With :math:`M = \\max_t |y_t|` over the history (1 if that is 0), a forecast passes when every
    value is finite, :math:`|\\hat y_{n+h}| \\le c M` and every quantile :math:`|q| \\le 10\\,c M`
    (:math:`c` = ``bound_factor``). Exploding multiplicative ETS fits (statsmodels #7331, #8551)
    fail this test.
    """
    qcols = [c for c in frame.columns if c != "mean"]
    return bounded_reason(
        frame["mean"].to_numpy(float), frame[qcols].to_numpy(float), np.asarray(history, float), bound_factor
    )


class _GuardedCombination(Combination):
    """A combination that leaves out members whose forecast fails :func:`check_bounded`.

    The members left out at the forecast are left out of the rolling forecasts too.
    """

    def __init__(self, base: Combination, bound_factor: float, notes: list[str]) -> None:
        super().__init__(base.season_length, base.members, how=base.how, seed=base.seed)
        self.bound_factor = bound_factor
        self.notes = notes

    def _fit(self, y: pd.Series) -> FittedForecast:
        fitted = super()._fit(y)
        history = y.to_numpy(float)
        members = fitted.components
        agg = member_aggregate(self.how)
        notes = self.notes
        kept: list[FittedForecast] = list(members)

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            means, quants = [], []
            kept.clear()
            for f in members:
                mean, q = f.predict(h, levels)
                reason = bounded_reason(mean, q, history, self.bound_factor)
                if reason:
                    notes.append(f"combination member {f.model} left out: {reason}")
                    continue
                kept.append(f)
                means.append(mean)
                quants.append(q)
            if not means:
                raise ForecastFitError("combination: every member gave an unbounded forecast")
            q = agg(np.stack(quants), axis=0)
            cols = quantile_columns(levels)
            return agg(np.vstack(means), axis=0), {c: q[:, j] for j, c in enumerate(cols)}

        def rolling(first: int, h: int) -> np.ndarray:
            return agg(np.stack([f.rolling_forecasts(h, first) for f in kept]), axis=0)

        def sd(h: int) -> np.ndarray:
            return agg(np.vstack([f.predictive_sd(h) for f in kept]), axis=0)

        def refit(origins: np.ndarray, h: int) -> np.ndarray:
            return agg(np.stack([f.origin_forecasts(h, origins) for f in kept]), axis=0)

        fitted.predict_fn = predict
        fitted.rolling_fn = rolling
        fitted.sd_fn = sd
        fitted.refit_fn = refit
        return fitted


def fit_series(
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
    interval_method: str = "calibrated",
    calibration_source: str = "refit",
    calibration_origins_count: int = CALIBRATION_ORIGINS,
    calibration_method: str = "shrunk_scale",
    keep_fitted: bool = True,
) -> FittedSeries:
    """First step of :func:`forecast_series`: fit with guards and fallbacks, and the rolling-origin errors.

    Parameters are those of :func:`forecast_series`; ``keep_fitted=False`` drops the fitted model
    (closures over compiled states do not cross process boundaries).
    """
    if horizon < 1:
        raise DataValidationError(name, [f"horizon must be >= 1 period, got {horizon}."])
    if interval_method not in INTERVAL_METHODS:
        raise DataValidationError(
            name, [f"interval_method {interval_method!r} is unknown; use one of {', '.join(INTERVAL_METHODS)}."]
        )
    if calibration_source not in CALIBRATION_SOURCES:
        raise DataValidationError(
            name,
            [f"calibration_source {calibration_source!r} is unknown; use one of {', '.join(CALIBRATION_SOURCES)}."],
        )
    if calibration_method not in CALIBRATION_METHODS:
        raise DataValidationError(
            name,
            [f"calibration_method {calibration_method!r} is unknown; use one of {', '.join(CALIBRATION_METHODS)}."],
        )
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
    calibrate = interval_method == "calibrated"
    for family in attempts:
        notes: list[str] = []
        try:
            est = make_model(family, season_length, seed=seed)
            if isinstance(est, Combination):
                est = _GuardedCombination(est, bound_factor, notes)
            fitted = est.fit_prepared(series)
            # calibrated intervals need only the point forecast (no simulated paths)
            mean, quantiles = fitted.predict(horizon, () if calibrate else levels)
        except _FIT_ERRORS as exc:
            fallbacks.append(f"{family}: {type(exc).__name__}: {exc}")
            log.info("%s: %s failed (%s); falling back", name, family, exc)
            continue
        reason = bounded_reason(mean, quantiles, history, bound_factor)
        if reason:
            fallbacks.append(f"{family} ({fitted.model}): {reason}")
            log.info("%s: %s rejected (%s); falling back", name, fitted.model, reason)
            continue
        errors = None
        if calibrate:
            origins = calibration_origins(
                len(history), season_length, horizon, calibration_source, calibration_origins_count
            )
            try:
                past = fitted.origin_forecasts(horizon, origins, calibration_source)
                missing = np.isnan(past).all(axis=1)
                if calibration_source == "refit" and missing.any():
                    # origins too short to refit this specification (e.g. a seasonal model before
                    # two seasons): the parameters of the full history, states re-filtered
                    past[missing] = fitted.origin_forecasts(horizon, origins[missing], "refilter")
            except _FIT_ERRORS as exc:
                log.info("%s: no forecasts from earlier origins by %s (%s)", name, fitted.model, exc)
                past = None
            if past is not None:
                if nonnegative:
                    past = np.clip(past, 0.0, None)
                errors = errors_at_origins(
                    history,
                    origins,
                    past,
                    np.clip(mean, 0.0, None) if nonnegative else mean,
                    fitted.predictive_sd(horizon),
                )
            if errors is None or np.isfinite(errors.errors[:, 0]).sum() < 3:
                # too few errors to calibrate alone: keep the model's own quantiles as the fallback
                try:
                    mean, quantiles = fitted.predict(horizon, levels)
                except _FIT_ERRORS as exc:
                    fallbacks.append(f"{family}: {type(exc).__name__}: {exc}")
                    continue
                reason = bounded_reason(mean, quantiles, history, bound_factor)
                if reason:
                    fallbacks.append(f"{family} ({fitted.model}): {reason}")
                    continue
            else:
                quantiles = np.full((horizon, len(levels)), np.nan)
        fallbacks.extend(sorted(set(notes)))
        params = {**fitted.params}
        if selection:
            log.debug("%s: %s", name, selection[0])
            params["selected_by_backtest"] = 1.0
        return FittedSeries(
            name,
            future_index(series.index, horizon),
            mean,
            quantiles,
            tuple(levels),
            fitted.model,
            model,
            params,
            fallbacks,
            filled,
            fitted.residuals,
            fitted if keep_fitted else None,
            errors,
            nonnegative,
            10 * bound_factor * max(float(np.max(np.abs(history))), 1e-300),
            calibration_method,
        )
    raise ForecastFitError(f"{name}: every model failed: {' | '.join(fallbacks)}")


def finish_forecasts(
    drafts: Sequence[FittedSeries],
    *,
    keep_errors: bool = False,
    pool: Sequence[FittedSeries] | None = None,
    calibration_method: str | None = None,
) -> list[SeriesForecast]:
    """Second step: calibrate the quantiles from the pooled rolling-origin errors, clip, build the frames.

    Parameters
    ----------
    drafts
        From :func:`fit_series`, in input order.
    keep_errors
        Keep each series' rolling errors in the result.
    pool
        Series whose errors form the calibration pool (default: ``drafts``).
    calibration_method
        Overrides the drafts' own ``calibration_method`` (e.g. to compare methods on one set of fits;
        the point forecasts do not depend on it).

    Notes
    -----
    Series without rolling errors (``interval_method="gaussian"``, or a model without rolling
    forecasts) keep the model's own quantiles.
    """
    pool = drafts if pool is None else pool
    samples = [d.rolling_errors for d in pool if d.rolling_errors is not None]
    batches: dict[tuple[int, tuple[float, ...], str], Calibration] = {}
    # one column index per set of levels, shared by the frames (an index is immutable): building it
    # from a list of names costs five times the rest of a small frame
    columns: dict[tuple[float, ...], pd.Index] = {}
    out = []
    for d in drafts:
        quantiles = d.quantiles
        method = "gaussian"
        if d.rolling_errors is not None and samples:
            how = calibration_method or d.calibration_method
            key = (len(d.mean), d.levels, how)
            if key not in batches:
                batches[key] = calibrate(samples, len(d.mean), d.levels, how)
            cal = batches[key]
            if np.isfinite(cal.offsets).all():
                quantiles = cal.quantiles(d.mean, d.rolling_errors)
                method = "calibrated"
                if np.abs(quantiles).max() > d.quantile_bound:
                    # past errors of an explosive series extrapolate explosively: hold the guard
                    quantiles = np.clip(quantiles, -d.quantile_bound, d.quantile_bound)
                    notes = [*d.fallbacks, f"calibrated quantiles clipped at +-{d.quantile_bound:.4g}"]
                    d = replace(d, fallbacks=notes)
        if not np.isfinite(quantiles).all():
            raise ForecastFitError(f"{d.name}: intervals could not be calibrated and no model quantiles were kept")
        mean = d.mean
        clipped = False
        if d.nonnegative and ((mean < 0).any() or (quantiles < 0).any()):
            mean = np.clip(mean, 0.0, None)
            quantiles = np.clip(quantiles, 0.0, None)
            clipped = True
        if d.levels not in columns:
            columns[d.levels] = pd.Index(["mean", *quantile_columns(d.levels)])
        frame = pd.DataFrame(np.column_stack([mean, quantiles]), index=d.index, columns=columns[d.levels])
        out.append(
            SeriesForecast(
                d.name,
                frame,
                d.model,
                d.requested,
                d.params,
                d.fallbacks,
                d.filled_periods,
                clipped,
                d.residuals,
                d.fitted,
                method,
                d.rolling_errors if keep_errors else None,
            )
        )
    return out


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
    interval_method: str = "calibrated",
    calibration_source: str = "refit",
    calibration_origins_count: int = CALIBRATION_ORIGINS,
    calibration_method: str = "shrunk_scale",
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
    interval_method
        ``"calibrated"``: quantiles from this series' own rolling-origin errors
        (:mod:`~salesops_models.forecast.intervals`; pooled over many series in
        :func:`~salesops_models.forecast.parallel.forecast_many`); ``"gaussian"``: the model's own.
    calibration_source
        ``"refit"``: forecasts from earlier origins re-estimate the model on the shorter history
        (out-of-sample errors); ``"refilter"``: parameters fixed, states re-filtered (cheaper).
    calibration_origins_count
        Origins of the calibration (see :func:`~salesops_models.forecast.intervals.calibration_origins`).
    calibration_method
        ``"shrunk_scale"`` or ``"pooled"`` (:func:`~salesops_models.forecast.intervals.calibrate`; on a
        single series both use its own errors alone).
    """
    draft = fit_series(
        y,
        horizon,
        model,
        season_length,
        levels=levels,
        nonnegative=nonnegative,
        bound_factor=bound_factor,
        fallback=fallback,
        seed=seed,
        name=name,
        auto_candidates=auto_candidates,
        interval_method=interval_method,
        calibration_source=calibration_source,
        calibration_origins_count=calibration_origins_count,
        calibration_method=calibration_method,
    )
    return finish_forecasts([draft])[0]


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
    interval_method: str = "calibrated",
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
    interval_method
        See :func:`forecast_series`; each origin is calibrated on its own training part only.
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
            interval_method=interval_method,
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
            # the choice looks at point accuracy only: the model's own quantiles suffice
            bt = rolling_origin(
                y, horizon, folds, family, season_length, seed=seed, name=name, interval_method="gaussian"
            )
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
