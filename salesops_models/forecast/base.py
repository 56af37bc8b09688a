"""The Model / ``.fit()`` / Result split every forecaster here follows, and what a fitted model offers.

A model is built with its settings and fitted to one series (``Model(...).fit(y)``); the result, a
:class:`FittedForecast`, gives point forecasts with Gaussian quantiles (:meth:`FittedForecast.forecast`)
and the point forecasts the same fitted model would have made from earlier origins
(:meth:`FittedForecast.rolling_forecasts`), from which :mod:`~salesops_models.forecast.intervals`
calibrates intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from salesops_models.errors import SalesopsError
from salesops_models.forecast.schema import (
    QUANTILE_LEVELS,
    complete_series,
    future_index,
    quantile_column,
    sort_quantiles,
)

PredictFn = Callable[[int, tuple[float, ...]], tuple[np.ndarray, dict[str, np.ndarray]]]
RollingFn = Callable[[int, int], np.ndarray]
RefitFn = Callable[[np.ndarray, int], np.ndarray]
SdFn = Callable[[int], np.ndarray]

#: Normal probabilities one standard deviation below and above the mean.
_ONE_SD = (float(ndtr(-1.0)), float(ndtr(1.0)))

#: Seed of simulated quantiles when none is given: ``seed=None`` must still give the same numbers
#: on every run (it used to mean "fresh OS entropy", so ETS intervals changed from run to run).
DEFAULT_SEED = 20240101

#: Origins refitted at most by the generic (refitting) rolling forecasts of families without a
#: compiled re-filter (the statsmodels reference models).
REFIT_ORIGINS = 12


class ForecastFitError(SalesopsError):
    """A model could not be fitted or gave an unusable forecast (the fallback chain catches it)."""


@dataclass
class FittedForecast:
    """A fitted model: what it is, its parameters, and how to forecast.

    Attributes
    ----------
    model
        Readable name of the fitted specification, e.g. ``ETS(A,Ad,N)`` or ``ARIMA(1,1,0)(0,1,0)12``.
    params
        Estimated parameters by name.
    history
        The series the model was fitted on [unit/period].
    season_length
        Seasonal period [periods].
    predict_fn
        ``(horizon, levels) -> (mean, {column: quantile})``: the model's own (Gaussian or simulated)
        predictive distribution.
    aicc
        Corrected Akaike information criterion where the family has a likelihood, else NaN.
    components
        For a combination: the fitted components.
    residuals
        One-step in-sample forecast errors :math:`y_t - \\hat y_{t|t-1}` [unit], aligned to the end
        of the history (possibly shorter than it); used to weight hierarchical reconciliation.
    rolling_fn
        ``(first, horizon) -> F``: point forecasts from every origin ``t >= first`` with the fitted
        parameters held fixed (the states re-filtered), ``F[t, s]`` forecasting ``history[t + s]``
        [unit]; ``None`` where the family has no re-filter (then origins are refitted, slower).
    sd_fn
        ``horizon -> sd``: the model's predictive standard deviation per step [unit], cheap (no
        simulation; linearised for multiplicative models); ``None``: read off ``predict_fn``.
    refit_fn
        ``(origins, horizon) -> F``: for each origin ``t`` the same specification re-estimated on
        ``history[:t]`` (warm-started at these estimates) and its point forecast of
        ``history[t:t + horizon]`` [unit], shape ``(len(origins), horizon)``, NaN rows where a
        history is too short; ``None``: the family's own fit is rerun on the shorter histories.
    """

    model: str
    params: dict[str, float]
    history: pd.Series
    season_length: int
    predict_fn: PredictFn = field(repr=False)
    aicc: float = float("nan")
    components: list[FittedForecast] = field(default_factory=list)
    residuals: np.ndarray = field(default_factory=lambda: np.array([]), repr=False)
    rolling_fn: RollingFn | None = field(default=None, repr=False)
    sd_fn: SdFn | None = field(default=None, repr=False)
    refit_fn: RefitFn | None = field(default=None, repr=False)

    def predict(
        self, horizon: int, levels: tuple[float, ...] = QUANTILE_LEVELS
    ) -> tuple[np.ndarray, np.ndarray]:
        """Point forecast and quantiles as arrays (no pandas): ``mean`` (h,), ``quantiles`` (h, levels).

        Quantiles are sorted across levels in every row (no crossing). ``levels=()`` asks for the
        point forecast only (no simulation).
        """
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1 period, got {horizon}")
        mean, qs = self.predict_fn(horizon, tuple(levels))
        if not levels:
            return np.asarray(mean, float), np.empty((horizon, 0))
        q = np.column_stack([np.asarray(qs[quantile_column(p)], float) for p in levels])
        return np.asarray(mean, float), np.sort(q, axis=1)

    def forecast(self, horizon: int, levels: tuple[float, ...] = QUANTILE_LEVELS) -> pd.DataFrame:
        """Point forecast and quantiles for the next ``horizon`` periods.

        Returns
        -------
        DataFrame
            Index: the future periods; columns ``mean`` and one per level (``q05`` ... ``q95``)
            [unit/period], quantiles non-decreasing across levels.
        """
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1 period, got {horizon}")
        mean, qs = self.predict_fn(horizon, tuple(levels))
        frame = pd.DataFrame(
            {"mean": np.asarray(mean, float)}, index=future_index(self.history.index, horizon)
        )
        for p in levels:
            frame[quantile_column(p)] = np.asarray(qs[quantile_column(p)], float)
        return sort_quantiles(frame, tuple(levels))

    def predictive_sd(self, horizon: int) -> np.ndarray:
        """Standard deviation of the forecast error per step [unit], shape ``(horizon,)``.

        The scale that standardises rolling-origin errors in calibrated intervals
        (:mod:`~salesops_models.forecast.intervals`).
        """
        if self.sd_fn is not None:
            return np.asarray(self.sd_fn(horizon), float)
        _, q = self.predict(horizon, _ONE_SD)
        return (q[:, 1] - q[:, 0]) / 2.0

    def rolling_forecasts(self, horizon: int, first: int) -> np.ndarray:
        """Point forecasts from the origins ``first, ..., n-1`` [unit], shape ``(n, horizon)``.

        Row ``t`` forecasts ``history[t], ..., history[t + horizon - 1]`` from ``history[:t]``;
        rows before ``first`` are NaN, as are steps past the end of the history's use.
        """
        n = len(self.history)
        first = max(int(first), 1)
        if first >= n:
            return np.full((n, horizon), np.nan)
        if self.rolling_fn is None:
            raise ForecastFitError(f"{self.model}: no rolling forecasts available")
        out = np.asarray(self.rolling_fn(first, horizon), float)
        out[:first] = np.nan
        return out

    def origin_forecasts(self, horizon: int, origins: np.ndarray, how: str = "refit") -> np.ndarray:
        """Point forecasts from the given origins, shape ``(len(origins), horizon)`` [unit].

        ``how="refit"``: the specification re-estimated on each shorter history (out-of-sample
        errors); ``"refilter"``: the parameters held fixed and the states re-filtered (cheaper,
        in-sample in the parameters). Rows that cannot be computed are NaN.
        """
        origins = np.asarray(origins, int)
        if how == "refilter":
            if len(origins) == 0:
                return np.empty((0, horizon))
            return self.rolling_forecasts(horizon, int(origins.min()))[origins]
        if len(origins) == 0:
            return np.empty((0, horizon))
        if self.refit_fn is None:
            raise ForecastFitError(f"{self.model}: no refits available")
        return np.asarray(self.refit_fn(origins, horizon), float)

    def summary(self) -> dict[str, Any]:
        """Headline facts: model name, AICc, number of observations."""
        return {"model": self.model, "aicc": self.aicc, "n_obs": len(self.history)}


class ForecastModel:
    """Base class: settings in ``__init__``, data in :meth:`fit`."""

    family = "base"

    def __init__(self, season_length: int = 1, *, seed: int | None = None) -> None:
        if season_length < 1:
            raise ValueError(f"season_length must be >= 1 period, got {season_length}")
        self.season_length = int(season_length)
        self.seed = DEFAULT_SEED if seed is None else int(seed)

    def fit(self, y: pd.Series | np.ndarray) -> FittedForecast:
        series, _ = complete_series(y, fill_value=None, name=self.family)
        return self.fit_prepared(series)

    def fit_prepared(self, series: pd.Series) -> FittedForecast:
        """Fit a series that :func:`~salesops_models.forecast.schema.complete_series` has already checked.

        Combinations and the forecaster call this to validate an input once, not once per member.
        """
        if len(series) < 2:
            raise ForecastFitError(f"{self.family}: needs at least 2 observations, got {len(series)}")
        fitted = self._fit(series)
        if fitted.rolling_fn is None:
            fitted.rolling_fn = _refitting_rolling(self, series)
        if fitted.refit_fn is None:
            fitted.refit_fn = _refit_on_prefix(self, series)
        return fitted

    def _fit(self, y: pd.Series) -> FittedForecast:  # pragma: no cover - abstract
        raise NotImplementedError


def _refitting_rolling(model: ForecastModel, series: pd.Series) -> RollingFn:
    """Rolling forecasts by refitting ``model`` at up to :data:`REFIT_ORIGINS` evenly spaced origins.

    The fallback for families without a compiled re-filter; the other origins stay NaN.
    """

    def rolling(first: int, horizon: int) -> np.ndarray:
        n = len(series)
        out = np.full((n, horizon), np.nan)
        origins = np.unique(np.linspace(n - 1, first, min(REFIT_ORIGINS, n - first)).round().astype(int))
        for t in origins:
            try:
                fitted = model._fit(series.iloc[:t])
                out[t] = fitted.predict(horizon, (0.5,))[0]
            except (ForecastFitError, ValueError, np.linalg.LinAlgError, OverflowError, ZeroDivisionError):
                continue
        return out

    return rolling


def _refit_on_prefix(model: ForecastModel, series: pd.Series) -> RefitFn:
    """Refit by rerunning the family's own fit (model choice included) on each ``series[:t]``."""

    def refit(origins: np.ndarray, horizon: int) -> np.ndarray:
        out = np.full((len(origins), horizon), np.nan)
        for i, t in enumerate(origins):
            try:
                out[i] = model._fit(series.iloc[: int(t)]).predict(horizon, ())[0]
            except (ForecastFitError, ValueError, np.linalg.LinAlgError, OverflowError, ZeroDivisionError):
                continue
        return out

    return refit


def as_history(y: pd.Series | np.ndarray) -> pd.Series:
    """A plain float series on a ``RangeIndex`` (fast path for arrays; pandas input unchanged)."""
    if isinstance(y, pd.Series):
        return y
    x = np.asarray(y, float)
    return pd.Series(x, index=pd.RangeIndex(len(x)))
