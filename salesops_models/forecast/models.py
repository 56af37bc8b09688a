"""Univariate forecasters behind one Model / ``.fit()`` / Result split and one quantile schema.

Every model class is built with its settings, ``fit(y)`` takes one series (a complete ``PeriodIndex``
or a plain array, see :func:`~salesops_models.forecast.schema.complete_series`) and returns a
:class:`~salesops_models.forecast.base.FittedForecast`, whose ``forecast(h)`` is a frame with
``mean`` and the quantile columns ``q05 ... q95`` on the future periods, and whose
``rolling_forecasts(h, first)`` are the point forecasts the same fitted model makes from earlier
origins (the input of calibrated intervals, :mod:`~salesops_models.forecast.intervals`).

Families
--------
======================  ==========================================================================
``naive``               last value; :math:`\\sigma_h = \\sigma\\sqrt{h}`
``snaive``              value one season back; :math:`\\sigma_h = \\sigma\\sqrt{\\lfloor (h-1)/m \\rfloor + 1}`
``naive2``              M4 Naive2: naive on the classically (multiplicatively) deseasonalised series
                        when the 90% ACF test finds seasonality
``ets``                 compiled ETS (:mod:`~salesops_models.forecast.ets`); automatic choice by AICc
                        among error {A, M}, trend {N, A, Ad}, season {N, A, M}; multiplicative parts
                        only for positive data; no multiplicative trend; seasonal candidates only
                        for seasonal-looking series
``arima``               compiled SARIMA (:mod:`~salesops_models.forecast.arima`): d by KPSS tests,
                        D by seasonal strength, (p, q) and (P, Q) by AICc over a small grid
``theta``               compiled Theta (:mod:`~salesops_models.forecast.theta`): SES with drift,
                        theta = 2, multiplicative deseasonalisation after the 90% ACF test
``combination``         mean (or median) of ``ets``, ``arima`` and ``theta``
``*_statsmodels``       the statsmodels implementations of ``ets``, ``arima`` and ``theta``
                        (:mod:`~salesops_models.forecast.reference`), kept as the reference
======================  ==========================================================================

Quantiles of a combination average the component quantiles level by level (quantile averaging,
"Vincentisation"); this keeps them ordered and is the usual choice for combined forecasts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError
from salesops_models.forecast.arima import ARIMA
from salesops_models.forecast.base import (
    DEFAULT_SEED,
    FittedForecast,
    ForecastFitError,
    ForecastModel,
)
from salesops_models.forecast.ets import ETS, ETSSpec, ets_candidates
from salesops_models.forecast.reference import StatsmodelsARIMA, StatsmodelsETS, StatsmodelsTheta
from salesops_models.forecast.schema import quantile_column
from salesops_models.forecast.seasonality import seasonal_indices, seasonal_test
from salesops_models.forecast.simple import Naive, Naive2, SeasonalNaive
from salesops_models.forecast.theta import Theta

log = logging.getLogger(__name__)

__all__ = [
    "ARIMA",
    "DEFAULT_SEED",
    "ETS",
    "MODEL_FAMILIES",
    "Combination",
    "ETSSpec",
    "FittedForecast",
    "ForecastFitError",
    "ForecastModel",
    "Naive",
    "Naive2",
    "SeasonalNaive",
    "StatsmodelsARIMA",
    "StatsmodelsETS",
    "StatsmodelsTheta",
    "Theta",
    "ets_candidates",
    "make_model",
    "seasonal_indices",
    "seasonal_test",
]


def mean_over(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """``np.mean(a, axis)`` of a float array, computed as it does (sum, then divide by the count),
    without its per-call bookkeeping, which costs more than the arithmetic on a few members."""
    a = np.asarray(a, dtype=float)
    return a.sum(axis=axis) / a.shape[axis]


def member_aggregate(how: str) -> Callable[..., np.ndarray]:
    """The function that combines members' forecasts across ``axis=0``: mean or median."""
    return mean_over if how == "mean" else np.median


class Combination(ForecastModel):
    """Mean or median of ETS, ARIMA and Theta (or any given members).

    Notes
    -----
    .. math:: \\hat y_{n+h} = \\frac{1}{K}\\sum_{k=1}^{K}\\hat y^{(k)}_{n+h},
       \\qquad q_p = \\frac{1}{K}\\sum_{k} q^{(k)}_p

    (median: the median across members instead of the mean, level by level). A member that fails
    is left out and named in the result's model string; at least one must succeed.
    """

    family = "combination"

    def __init__(
        self,
        season_length: int = 1,
        members: Sequence[ForecastModel] | None = None,
        *,
        how: str = "mean",
        seed: int | None = None,
    ) -> None:
        super().__init__(season_length, seed=seed)
        if how not in ("mean", "median"):
            raise ValueError(f"how must be 'mean' or 'median', got {how!r}")
        self.how = how
        self.members = (
            list(members)
            if members is not None
            else [
                ETS(season_length, seed=seed),
                ARIMA(season_length, seed=seed),
                Theta(season_length, seed=seed),
            ]
        )

    def _fit(self, y: pd.Series) -> FittedForecast:
        fitted, failed = [], []
        for member in self.members:
            try:
                fitted.append(member.fit_prepared(y))
            except (ForecastFitError, ValueError, np.linalg.LinAlgError, OverflowError) as exc:
                failed.append(f"{member.family}: {exc}")
        if not fitted:
            raise ForecastFitError(f"combination: every member failed ({'; '.join(failed)})")
        agg = member_aggregate(self.how)

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            parts = [f.predict(h, levels) for f in fitted]
            mean = agg(np.vstack([p[0] for p in parts]), axis=0)
            q = agg(np.stack([p[1] for p in parts]), axis=0)
            return mean, {quantile_column(p): q[:, j] for j, p in enumerate(levels)}

        name = f"{self.how.capitalize()}[" + ", ".join(f.model for f in fitted) + "]"
        if failed:
            name += f" (failed: {', '.join(s.split(':')[0] for s in failed)})"

        def rolling(first: int, h: int) -> np.ndarray:
            return agg(np.stack([f.rolling_forecasts(h, first) for f in fitted]), axis=0)

        def sd(h: int) -> np.ndarray:
            # quantile averaging of (near-)normal members averages their standard deviations
            return agg(np.vstack([f.predictive_sd(h) for f in fitted]), axis=0)

        def refit(origins: np.ndarray, h: int) -> np.ndarray:
            return agg(np.stack([f.origin_forecasts(h, origins) for f in fitted]), axis=0)

        k = min(len(f.residuals) for f in fitted)
        resid = np.mean([f.residuals[len(f.residuals) - k :] for f in fitted], axis=0) if k else np.array([])
        return FittedForecast(
            name,
            {},
            y,
            self.season_length,
            predict,
            components=fitted,
            residuals=resid,
            rolling_fn=rolling,
            sd_fn=sd,
            refit_fn=refit,
        )


MODEL_FAMILIES: dict[str, Callable[..., ForecastModel]] = {
    "naive": Naive,
    "snaive": SeasonalNaive,
    "naive2": Naive2,
    "ets": ETS,
    "ets_damped": lambda m=1, seed=None: ETS(m, ETSSpec("add", "add", True, None), seed=seed),
    "ses": lambda m=1, seed=None: ETS(m, ETSSpec("add", None, False, None), seed=seed),
    "arima": ARIMA,
    "theta": Theta,
    "combination": Combination,
    "combination_median": lambda m=1, seed=None: Combination(m, how="median", seed=seed),
    "ets_statsmodels": StatsmodelsETS,
    "arima_statsmodels": StatsmodelsARIMA,
    "theta_statsmodels": StatsmodelsTheta,
    "combination_statsmodels": lambda m=1, seed=None: Combination(
        m,
        [StatsmodelsETS(m, seed=seed), StatsmodelsARIMA(m, seed=seed), StatsmodelsTheta(m, seed=seed)],
        seed=seed,
    ),
}


def make_model(name: str, season_length: int = 1, seed: int | None = None) -> ForecastModel:
    """Build a model by family name (see :data:`MODEL_FAMILIES`)."""
    try:
        factory = MODEL_FAMILIES[name]
    except KeyError:
        raise DataValidationError(
            "forecast model", [f"unknown model {name!r}; choose one of {', '.join(MODEL_FAMILIES)}."]
        ) from None
    return factory(season_length, seed=seed)
