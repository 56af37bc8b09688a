"""The Theta method (Assimakopoulos & Nikolopoulos 2000), compiled: statsmodels ``ThetaModel`` without its overhead.

Formulation
-----------
With :math:`\\theta = 2` the method is simple exponential smoothing with half the OLS drift
(Hyndman & Billah 2003):

.. math::
    \\hat z_{n+h} = \\ell_n + \\tfrac12 b_0\\Big(h - 1 + \\frac{1}{\\alpha} - \\frac{(1-\\alpha)^n}{\\alpha}\\Big),
    \\qquad \\ell_t = \\alpha z_t + (1-\\alpha)\\ell_{t-1}, \\; \\ell_0 = z_1

:math:`b_0` is the slope of the least-squares line through :math:`z_t` on :math:`t = 0, \\dots, n-1`
and :math:`\\alpha \\in [0, 1]` minimises the in-sample squared one-step errors of the SES (a
coarse grid, then Brent). :math:`z` is the series itself, or, for a seasonal series, the series
divided by (multiplicative, positive data) or less (additive) the classical decomposition indices,
which multiply (add) back onto the forecast. These are the steps of statsmodels ``ThetaModel.fit``
with its defaults (``use_mle=False``); the tests compare forecasts with it.

Seasonality: deseasonalise when :math:`m > 1` and :math:`n \\ge 2m`; with :math:`n \\ge 3m` only if
statsmodels' seasonality test (:func:`~salesops_models.forecast.seasonality.theta_seasonal_test`)
finds it. With ``short_seasonal=True`` (default) a series with :math:`2m \\le n < 3m` is
deseasonalised without the test (short sales histories have a calendar pattern the test cannot see
yet); competition series are long enough for the test to decide.

Quantiles (Gaussian option): :math:`\\sigma_h^2 = \\sigma^2 (1 + (h-1)\\alpha^2)` on the
deseasonalised scale, :math:`\\sigma^2` the mean squared one-step error of SES with drift, times the
seasonal index for multiplicative seasonality. (statsmodels' ``prediction_intervals`` uses
:math:`1 + (h-1)(1 + (\\alpha-1)^2)`, wider than the ARIMA(0,1,1) variance it cites.)
"""

from __future__ import annotations

import numba as nb
import numpy as np
import pandas as pd

from salesops_models.forecast.base import FittedForecast, ForecastFitError, ForecastModel
from salesops_models.forecast.optim import JIT, make_brent
from salesops_models.forecast.schema import normal_quantiles
from salesops_models.forecast.seasonality import seasonal_indices, theta_seasonal_test


@nb.njit(**JIT)
def ses_sse(alpha, z):  # type: ignore[no-untyped-def]
    """Sum of squared one-step errors of SES with :math:`\\ell_0 = z_1` [unit²]."""
    level = z[0]
    sse = 0.0
    for t in range(z.size):
        e = z[t] - level
        sse += e * e
        level = alpha * z[t] + (1.0 - alpha) * level
    return sse


_brent_ses = make_brent(ses_sse)


@nb.njit(**JIT)
def ses_level(z, alpha):  # type: ignore[no-untyped-def]
    """SES level after all of ``z`` with :math:`\\ell_0 = z_1`."""
    level = z[0]
    for t in range(1, z.size):
        level = alpha * z[t] + (1.0 - alpha) * level
    return level


@nb.njit(**JIT)
def fit_ses_alpha(z):  # type: ignore[no-untyped-def]
    """The SSE-minimising :math:`\\alpha \\in [0, 1]`: a grid of 21 points, then Brent in the best cell."""
    best = 0
    fbest = np.inf
    for i in range(21):
        f = ses_sse(i / 20.0, z)
        if f < fbest:
            fbest = f
            best = i
    lo = max(best - 1, 0) / 20.0
    hi = min(best + 1, 20) / 20.0
    a, fa = _brent_ses(lo, hi, (z,), 1e-10, 200)
    if fbest < fa:
        return best / 20.0
    return a


@nb.njit(**JIT)
def theta_rolling(z, alpha, b0, first, horizon):  # type: ignore[no-untyped-def]
    """Deseasonalised Theta forecasts from every origin ``t >= first`` with fixed :math:`\\alpha, b_0`.

    Row ``t`` forecasts ``z[t], ..., z[t + horizon - 1]`` from ``z[:t]``.
    """
    n = z.size
    out = np.full((n, horizon), np.nan)
    level = z[0]
    for t in range(n):
        if t >= first:
            tail = (1.0 - alpha) ** t / alpha if alpha > 0 else 0.0
            for s in range(horizon):
                out[t, s] = level + 0.5 * b0 * (s + 1.0 / alpha - tail) if alpha > 0 else level
        level = alpha * z[t] + (1.0 - alpha) * level
    return out


@nb.njit(**JIT)
def ses_drift_errors(z, alpha, b0):  # type: ignore[no-untyped-def]
    """One-step errors of SES with half the OLS drift [unit] (length ``n - 1``).

    Notes
    -----
    :math:`\\ell_1 = z_1`, :math:`\\hat z_{t+1|t} = \\ell_t + b_0/2`,
    :math:`\\ell_{t} = \\alpha z_t + (1-\\alpha)\\ell_{t-1}`; errors :math:`z_{t+1} - \\hat z_{t+1|t}`.
    """
    level = z[0]
    out = np.empty(max(z.size - 1, 0))
    for t in range(1, z.size):
        out[t - 1] = z[t] - (level + b0 / 2.0)
        level = alpha * z[t] + (1.0 - alpha) * level
    return out


@nb.njit(**JIT)
def ols_slope(z):  # type: ignore[no-untyped-def]
    """Slope of the least-squares line through ``z`` on :math:`t = 0, \\dots, n-1` [unit/period]."""
    n = z.size
    tbar = (n - 1) / 2.0
    zbar = z.mean()
    num = 0.0
    den = 0.0
    for t in range(n):
        num += (t - tbar) * (z[t] - zbar)
        den += (t - tbar) * (t - tbar)
    return num / den


@nb.njit(**JIT)
def theta_forecast(z, horizon):  # type: ignore[no-untyped-def]
    """Theta forecast (deseasonalised scale) of ``z``: slope, alpha and level estimated, then projected."""
    n = z.size
    b0 = ols_slope(z)
    alpha = fit_ses_alpha(z)
    if alpha <= 0.0:
        alpha = 1e-8
    level = ses_level(z, alpha)
    out = np.empty(horizon)
    tail = (1.0 - alpha) ** n / alpha
    for s in range(horizon):
        out[s] = level + 0.5 * b0 * (s + 1.0 / alpha - tail)
    return out


@nb.njit(**JIT)
def theta_refit_plain(x, origins, horizon):  # type: ignore[no-untyped-def]
    """Theta re-estimated on each ``x[:t]`` of a series without deseasonalisation."""
    out = np.full((origins.size, horizon), np.nan)
    for i in range(origins.size):
        t = origins[i]
        if t >= 3:
            out[i] = theta_forecast(x[:t], horizon)
    return out


class Theta(ForecastModel):
    """The Theta method, compiled (see the module notes).

    Parameters
    ----------
    season_length
        Seasonal period [periods].
    short_seasonal
        Deseasonalise a series of two to three seasons without the test.
    """

    family = "theta"

    def __init__(
        self, season_length: int = 1, *, short_seasonal: bool = True, seed: int | None = None
    ) -> None:
        super().__init__(season_length, seed=seed)
        self.short_seasonal = short_seasonal

    def _fit(self, y: pd.Series) -> FittedForecast:
        x = np.ascontiguousarray(y.to_numpy(float))
        n = len(x)
        m = self.season_length
        if n < 3:
            raise ForecastFitError(f"theta: needs at least 3 observations, got {n}")
        deseason = m > 1 and n >= 2 * m
        # the test needs 3 seasons; with 2 the calendar pattern is assumed (sales data have one)
        use_test = deseason and (n >= 3 * m or not self.short_seasonal)
        if use_test:
            deseason = theta_seasonal_test(x, m)
        kind = "mul" if x.min() > 0 else "add"
        if deseason and kind == "mul" and seasonal_indices(x, m, kind).min() <= 0:
            kind = "add"
        fit = _ThetaFit(x, m, deseason, kind)
        idx, z, b0, alpha = fit.idx, fit.z, fit.b0, fit.alpha
        pos = np.arange(n) % m
        resid_z = ses_drift_errors(z, alpha, b0)
        sigma2 = float(np.mean(resid_z**2)) if resid_z.size else 0.0
        multiplicative = deseason and kind == "mul"

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            steps = np.arange(h)
            mean = fit.forecast(h)
            sd = np.sqrt(sigma2 * (1.0 + steps * alpha**2))
            if multiplicative:
                sd = sd * idx[(n + steps) % m]
            return mean, normal_quantiles(mean, sd, levels)

        def rolling(first: int, h: int) -> np.ndarray:
            zf = theta_rolling(z, alpha, b0, first, h)
            return fit.reseason(zf, (np.arange(n)[:, None] + np.arange(h)[None, :]) % m)

        def refit(origins: np.ndarray, h: int) -> np.ndarray:
            # the same deseasonalisation choice on shorter histories, indices and parameters re-estimated
            if not deseason:
                return theta_refit_plain(x, np.ascontiguousarray(origins, dtype=np.int64), h)
            out = np.full((len(origins), h), np.nan)
            for i, t in enumerate(origins):
                if t >= 3:
                    # before two seasons the indices cannot be estimated: those of the whole history
                    # (the calendar pattern) are kept and the level and drift re-estimated
                    out[i] = _ThetaFit(x[: int(t)], m, deseason, kind, None if t >= 2 * m else idx).forecast(h)
            return out

        params = {"b0": b0, "alpha": alpha, "sigma2": sigma2, "multiplicative_season": float(multiplicative)}
        if deseason:
            params.update({f"s{i}": float(v) for i, v in enumerate(idx)})
        # errors on the original scale, for reconciliation weights: x_t = z_t s_t (multiplicative)
        resid = resid_z * idx[pos[1:]] if multiplicative else resid_z
        return FittedForecast(
            "Theta",
            params,
            y,
            m,
            predict,
            residuals=np.asarray(resid, float),
            rolling_fn=rolling,
            refit_fn=refit,
        )


class _ThetaFit:
    """Theta estimates on one history for a given deseasonalisation (``kind``: ``"mul"``/``"add"``)."""

    def __init__(
        self, x: np.ndarray, m: int, deseason: bool, kind: str, indices: np.ndarray | None = None
    ) -> None:
        n = len(x)
        self.m, self.n, self.deseason, self.kind = m, n, deseason, kind
        self.idx = np.ones(m) if kind == "mul" else np.zeros(m)
        if deseason:
            self.idx = seasonal_indices(x, m, kind) if indices is None else indices
        pos = np.arange(n) % m
        self.z = np.ascontiguousarray(x / self.idx[pos] if kind == "mul" else x - self.idx[pos])
        self.b0 = ols_slope(self.z)
        alpha = float(fit_ses_alpha(self.z))
        self.alpha = alpha if alpha > 0.0 else 1e-8  # a constant level: the drift term stays finite
        self.level = float(ses_level(self.z, self.alpha))

    def reseason(self, values: np.ndarray, positions: np.ndarray) -> np.ndarray:
        if not self.deseason:
            return values
        return values * self.idx[positions] if self.kind == "mul" else values + self.idx[positions]

    def forecast(self, h: int) -> np.ndarray:
        steps = np.arange(h)
        a = self.alpha
        zf = self.level + 0.5 * self.b0 * (steps + 1.0 / a - (1.0 - a) ** self.n / a)
        return self.reseason(zf, (self.n + steps) % self.m)
