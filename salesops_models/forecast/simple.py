"""Benchmark forecasters: naive, seasonal naive and the M4 Naive2, with their rolling forecasts.

Every class follows the Model / ``.fit()`` / Result split of :mod:`~salesops_models.forecast.base`;
the rolling forecasts (the same rule applied at every earlier origin) are closed-form.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salesops_models.forecast.base import FittedForecast, ForecastModel
from salesops_models.forecast.schema import normal_quantiles
from salesops_models.forecast.seasonality import seasonal_indices, seasonal_test


def _rms(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.sqrt(np.mean(x**2))) if x.size else 0.0


class Naive(ForecastModel):
    """Random walk: the last value, intervals from the one-step residuals.

    Notes
    -----
    .. math:: \\hat y_{n+h} = y_n, \\quad \\sigma_h = \\sigma_1\\sqrt{h},
       \\quad \\sigma_1 = \\sqrt{\\tfrac{1}{n-1}\\sum (y_t - y_{t-1})^2}
    """

    family = "naive"

    def _fit(self, y: pd.Series) -> FittedForecast:
        x = y.to_numpy(float)
        sigma = _rms(np.diff(x))

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            mean = np.full(h, x[-1])
            return mean, normal_quantiles(mean, sigma * np.sqrt(np.arange(1, h + 1)), levels)

        def rolling(first: int, h: int) -> np.ndarray:
            out = np.full((len(x), h), np.nan)
            out[first:] = x[first - 1 : -1, None]
            return out

        return FittedForecast(
            "Naive",
            {"sigma": sigma},
            y,
            self.season_length,
            predict,
            residuals=np.diff(x),
            rolling_fn=rolling,
        )


class SeasonalNaive(ForecastModel):
    """The value one season back; the naive forecast when the history is shorter than a season.

    Notes
    -----
    .. math:: \\hat y_{n+h} = y_{n+h-m(k+1)}, \\quad k = \\lfloor (h-1)/m \\rfloor, \\quad
       \\sigma_h = \\sigma_m\\sqrt{k+1}

    with :math:`\\sigma_m` the root mean square of the seasonal differences :math:`y_t - y_{t-m}`.
    """

    family = "snaive"

    def _fit(self, y: pd.Series) -> FittedForecast:
        m = self.season_length
        x = y.to_numpy(float)
        if len(x) <= m:
            return Naive(m).fit(y)
        sigma = _rms(x[m:] - x[:-m])
        last = x[-m:]

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            steps = np.arange(h)
            mean = last[steps % m]
            sd = sigma * np.sqrt(steps // m + 1)
            return mean, normal_quantiles(mean, sd, levels)

        def rolling(first: int, h: int) -> np.ndarray:
            # from origin t: the value one season before each target; naive while t < m
            out = np.full((len(x), h), np.nan)
            steps = np.arange(h)
            for t in range(first, len(x)):
                out[t] = x[t - m + steps % m] if t >= m else x[t - 1]
            return out

        return FittedForecast(
            f"SNaive({m})",
            {"sigma": sigma},
            y,
            m,
            predict,
            residuals=x[m:] - x[:-m],
            rolling_fn=rolling,
        )


class Naive2(ForecastModel):
    """M4 Naive2: seasonally adjusted random walk.

    Notes
    -----
    If :func:`~salesops_models.forecast.seasonality.seasonal_test` finds seasonality (and the data are positive), divide by the
    classical multiplicative indices :math:`S_i`, forecast the adjusted series naively and multiply
    back: :math:`\\hat y_{n+h} = (y_n / S_{n}) \\cdot S_{n+h}`; otherwise plain :class:`Naive`.
    """

    family = "naive2"

    def _fit(self, y: pd.Series) -> FittedForecast:
        m = self.season_length
        x = y.to_numpy(float)
        if not (np.all(x > 0) and seasonal_test(x, m)):
            fitted = Naive(m).fit(y)
            fitted.model = "Naive2"
            return fitted
        s = seasonal_indices(x, m, "mul")
        pos = np.arange(len(x)) % m
        adj = x / s[pos]
        sigma = _rms(np.diff(adj))

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            fpos = (len(x) + np.arange(h)) % m
            mean = adj[-1] * s[fpos]
            sd = sigma * np.sqrt(np.arange(1, h + 1)) * s[fpos]
            return mean, normal_quantiles(mean, sd, levels)

        def rolling(first: int, h: int) -> np.ndarray:
            # the seasonal indices of the whole history are held fixed
            origins = np.arange(first, len(x))
            fpos = (origins[:, None] + np.arange(h)[None, :]) % m
            out = np.full((len(x), h), np.nan)
            out[first:] = adj[origins - 1, None] * s[fpos]
            return out

        return FittedForecast(
            "Naive2(seasonal)",
            {"sigma": sigma, **{f"s{i}": float(v) for i, v in enumerate(s)}},
            y,
            m,
            predict,
            residuals=np.diff(adj) * s[pos[1:]],
            rolling_fn=rolling,
        )
