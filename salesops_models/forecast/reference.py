"""The statsmodels forecasters: the reference the compiled ones are tested against.

``StatsmodelsETS`` (``ETSModel``), ``StatsmodelsARIMA`` (``SARIMAX``) and ``StatsmodelsTheta``
(``ThetaModel``) are the implementations the workbench used before its compiled kernels
(:mod:`~salesops_models.forecast.ets`, :mod:`~salesops_models.forecast.arima`,
:mod:`~salesops_models.forecast.theta`). They stay as families ``ets_statsmodels``,
``arima_statsmodels`` and ``theta_statsmodels``: tests compare the compiled kernels with them on the
same model and parameters. Their rolling forecasts refit at a few origins (slow).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.forecast.arima import difference_polynomial
from salesops_models.forecast.base import FittedForecast, ForecastFitError, ForecastModel
from salesops_models.forecast.ets import ETSSpec, ets_candidates
from salesops_models.forecast.schema import normal_quantiles, quantile_column
from salesops_models.forecast.seasonality import seasonal_strength

log = logging.getLogger(__name__)


def _quiet_statsmodels() -> warnings.catch_warnings:
    """Filter the specific statsmodels warnings that fits on short series emit (FIELD-NOTES 2.1).

    Convergence trouble is still detected: the guards check every forecast afterwards.
    """
    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        EstimationWarning,
        HessianInversionWarning,
        InterpolationWarning,
        ValueWarning,
    )

    ctx = warnings.catch_warnings()
    ctx.__enter__()
    for cat in (
        ConvergenceWarning,
        EstimationWarning,
        HessianInversionWarning,
        InterpolationWarning,
        ValueWarning,
    ):
        warnings.filterwarnings("ignore", category=cat)
    # optimiser overflow inside multiplicative ETS likelihoods; the bounded-forecast guard catches bad fits
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"statsmodels\..*")
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"scipy\.optimize\..*")
    warnings.filterwarnings("ignore", message="kpss currently returns", category=FutureWarning)
    warnings.filterwarnings("ignore", message="Non-stationary starting", category=UserWarning)
    warnings.filterwarnings("ignore", message="Non-invertible starting", category=UserWarning)
    return ctx


class _Quiet:
    def __enter__(self) -> None:
        self._ctx = _quiet_statsmodels()

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


class StatsmodelsETS(ForecastModel):
    """Exponential smoothing state-space model (statsmodels ``ETSModel``).

    Parameters
    ----------
    season_length
        Seasonal period [periods].
    spec
        A fixed :class:`ETSSpec`, or ``None`` for the automatic choice by AICc over
        :func:`ets_candidates`.
    candidates
        Restrict the automatic choice to these specifications.
    simulate_repetitions
        Sample paths for the quantiles of models without closed-form variance (multiplicative).
    seed
        Seed of those sample paths.

    Notes
    -----
    Additive-error models: :math:`q_p = \\hat y_{n+h} + z_p\\sigma_h` with the exact state-space
    variance; multiplicative ones: empirical quantiles of simulated paths.
    """

    family = "ets_statsmodels"

    def __init__(
        self,
        season_length: int = 1,
        spec: ETSSpec | None = None,
        *,
        candidates: Sequence[ETSSpec] | None = None,
        simulate_repetitions: int = 500,
        seed: int | None = None,
    ) -> None:
        super().__init__(season_length, seed=seed)
        self.spec = spec
        self.candidates = list(candidates) if candidates is not None else None
        self.simulate_repetitions = simulate_repetitions

    def _fit_one(self, x: np.ndarray, spec: ETSSpec) -> Any:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        m = self.season_length
        with _Quiet():
            # a pandas input: get_prediction() fails on a bare ndarray in statsmodels 0.15
            model = ETSModel(
                pd.Series(x),
                error=spec.error,
                trend=spec.trend,
                damped_trend=spec.damped,
                seasonal=spec.seasonal,
                seasonal_periods=m if spec.seasonal else None,
            )
            return model.fit(disp=False, maxiter=200)

    def _fit(self, y: pd.Series) -> FittedForecast:
        x = y.to_numpy(float)
        if self.spec is not None:
            specs = [self.spec]
        else:
            specs = self.candidates or ets_candidates(x, self.season_length)
        best, best_spec, best_ic = None, None, np.inf
        errors = []
        for spec in specs:
            if spec.error == "mul" or spec.seasonal == "mul":
                if not np.all(x > 0):
                    errors.append(f"{spec.name}: multiplicative parts need positive data")
                    continue
            try:
                res = self._fit_one(x, spec)
            except (ValueError, np.linalg.LinAlgError, OverflowError, ZeroDivisionError) as exc:
                errors.append(f"{spec.name}: {exc}")
                continue
            ic = float(res.aicc) if np.isfinite(res.aicc) else np.inf
            if len(specs) == 1 or ic < best_ic:
                best, best_spec, best_ic = res, spec, ic
        if best is None or best_spec is None:
            raise ForecastFitError(f"ets: no specification could be fitted ({'; '.join(errors[:3])})")
        res, spec = best, best_spec
        reps = self.simulate_repetitions
        seed = self.seed

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            n = len(x)
            exact = spec.error == "add" and spec.seasonal != "mul"
            with _Quiet():
                if exact:
                    pred = res.get_prediction(start=n, end=n + h - 1, method="exact")
                    mean = np.asarray(pred.predicted_mean, float)
                    sd = np.sqrt(np.maximum(np.asarray(pred.forecast_variance, float), 0.0))
                    return mean, normal_quantiles(mean, sd, levels)
                mean = np.asarray(res.forecast(h), float)
                sims = np.asarray(
                    res.simulate(h, anchor="end", repetitions=reps, rng=np.random.default_rng(seed)), float
                ).reshape(h, -1)
            qs = {quantile_column(p): np.quantile(sims, p, axis=1) for p in levels}
            return mean, qs

        params = {
            str(k): float(v) for k, v in zip(res.model.param_names, np.asarray(res.params), strict=False)
        }
        resid = x - np.asarray(res.fittedvalues, float)
        return FittedForecast(
            spec.name, params, y, self.season_length, predict, aicc=float(res.aicc), residuals=resid
        )


def _ndiffs_kpss(x: np.ndarray, max_d: int = 2, alpha: float = 0.05) -> int:
    """Number of first differences by repeated KPSS level-stationarity tests (as R's ``ndiffs``)."""
    from statsmodels.tsa.stattools import kpss

    d = 0
    z = x.copy()
    while d < max_d and len(z) > 5:
        if np.ptp(z) == 0:
            break
        with _Quiet():
            try:
                pval = kpss(z, regression="c", nlags="auto")[1]
            except (ValueError, OverflowError, np.linalg.LinAlgError):
                break
        if pval >= alpha:
            break
        d += 1
        z = np.diff(z)
    return d


def _integrate(x: np.ndarray, z: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Undo the differencing: :math:`y_t = z_t - \\sum_{k \\ge 1} \\delta_k y_{t-k}`."""
    k = len(delta) - 1
    if k == 0:
        return z
    ext = np.r_[x[-k:], np.zeros(len(z))]
    for i, zi in enumerate(z):
        t = k + i
        ext[t] = zi - np.dot(delta[1:], ext[t - 1 :: -1][:k])
    return ext[k:]


def _integrated_sd(res: Any, delta: np.ndarray, h: int) -> np.ndarray:
    """Forecast standard errors of the undifferenced series from the psi weights.

    Notes
    -----
    .. math:: \\psi(B) = \\frac{\\theta(B)\\Theta(B^m)}{\\phi(B)\\Phi(B^m)\\delta(B)}, \\quad
       \\sigma_h^2 = \\sigma^2 \\sum_{j=0}^{h-1}\\psi_j^2
    """
    from statsmodels.tsa.arima_process import arma2ma

    ar = np.convolve(np.asarray(res.polynomial_reduced_ar, float), delta)
    ma = np.asarray(res.polynomial_reduced_ma, float)
    psi = arma2ma(ar, ma, lags=h)
    sigma2 = float(res.params[-1]) if res.model.param_names[-1] == "sigma2" else float(res.scale)
    return np.sqrt(max(sigma2, 0.0) * np.cumsum(psi**2))


class StatsmodelsARIMA(ForecastModel):
    """(S)ARIMA with automatic order selection (statsmodels ``SARIMAX``).

    Parameters
    ----------
    season_length
        Seasonal period [periods].
    order, seasonal_order
        Fixed orders ``(p, d, q)`` and ``(P, D, Q)``; ``None`` selects them automatically.
    max_pq
        Largest :math:`p + q` tried by the automatic search.

    Notes
    -----
    Automatic selection, a small version of Hyndman & Khandakar (2008):

    1. :math:`D = 1` when the seasonal strength exceeds 0.64 (and :math:`n \\ge 3m`), else 0.
    2. :math:`d \\in \\{0,1,2\\}` by repeated KPSS tests at 5% on the seasonally differenced series.
    3. Every :math:`(p, q)` with :math:`p + q \\le` ``max_pq`` is fitted to the differenced series,
       with a constant (a drift when :math:`d + D = 1`) when :math:`d + D \\le 1`; lowest AICc wins.
    4. For seasonal data, :math:`(P, Q) \\in \\{(1,0), (0,1)\\}` are tried around the winner, then
       the model without constant/drift.

    Forecasts of the differenced series are integrated back; quantiles
    :math:`q_p = \\hat y_{n+h} + z_p\\sigma_h` with :math:`\\sigma_h` from the psi weights of the
    full (differenced) model. AICc compares only models with the same :math:`d, D`.
    """

    family = "arima_statsmodels"

    def __init__(
        self,
        season_length: int = 1,
        order: tuple[int, int, int] | None = None,
        seasonal_order: tuple[int, int, int] | None = None,
        *,
        max_pq: int = 2,
        seed: int | None = None,
    ) -> None:
        super().__init__(season_length, seed=seed)
        self.order = order
        self.seasonal_order = seasonal_order
        self.max_pq = max_pq

    def _fit_one(
        self, x: np.ndarray, order: tuple[int, int, int], sorder: tuple[int, int, int], trend: str | None
    ) -> Any:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        m = self.season_length
        with _Quiet():
            # simple differencing: the ARMA part runs on the differenced series (a small state vector,
            # several times faster on 2 shared cores); predict() integrates the forecasts back
            model = SARIMAX(
                x,
                order=order,
                seasonal_order=(*sorder, m) if m > 1 and any(sorder) else (0, 0, 0, 0),
                trend=trend,
                simple_differencing=True,
            )
            return model.fit(disp=False, maxiter=100)

    def _fit(self, y: pd.Series) -> FittedForecast:
        x = y.to_numpy(float)
        m = self.season_length
        n = len(x)
        if self.order is not None:
            order = self.order
            sorder = self.seasonal_order or (0, 0, 0)
            trend = "c" if order[1] + sorder[1] <= 1 else None
            res = self._fit_one(x, order, sorder, trend)
            chosen = (order, sorder, trend)
        else:
            D = 1 if m > 1 and n >= 3 * m and seasonal_strength(x, m) > 0.64 else 0
            z = x[m:] - x[:-m] if D else x
            d = _ndiffs_kpss(z)
            if n - d - D * m < 6:
                d = min(d, 1)
            # on the differenced series a constant is a mean (d + D = 0) or a drift (d + D = 1)
            trend = "c" if d + D <= 1 else None
            cands = [
                (p, q) for p in range(self.max_pq + 1) for q in range(self.max_pq + 1) if p + q <= self.max_pq
            ]
            best: tuple[float, Any, tuple[Any, ...]] = (np.inf, None, ())
            for p, q in cands:
                try:
                    r = self._fit_one(x, (p, d, q), (0, D, 0), trend)
                except (ValueError, np.linalg.LinAlgError, OverflowError) as exc:
                    log.debug("arima (%d,%d,%d) failed: %s", p, d, q, exc)
                    continue
                if np.isfinite(r.aicc) and r.aicc < best[0]:
                    best = (float(r.aicc), r, ((p, d, q), (0, D, 0), trend))
            if best[1] is None:
                raise ForecastFitError("arima: no order could be fitted")
            (p, d, q), _, _ = best[2]
            extra: list[tuple[tuple[int, int, int], tuple[int, int, int], str | None]] = []
            if m > 1 and n >= 2 * m + 2:
                extra += [((p, d, q), (1, D, 0), trend), ((p, d, q), (0, D, 1), trend)]
            if trend is not None:
                extra.append(((p, d, q), (0, D, 0), None))
            for o, so, tr in extra:
                try:
                    r = self._fit_one(x, o, so, tr)
                except (ValueError, np.linalg.LinAlgError, OverflowError):
                    continue
                if np.isfinite(r.aicc) and r.aicc < best[0]:
                    best = (float(r.aicc), r, (o, so, tr))
            res = best[1]
            chosen = best[2]
        order, sorder, trend = chosen
        name = f"ARIMA{order}".replace(" ", "")
        if any(sorder):
            name += f"{sorder}{m}".replace(" ", "")
        if trend == "c":
            name += " with drift" if order[1] + sorder[1] == 1 else " with constant"
        delta = difference_polynomial(order[1], sorder[1], m)

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            with _Quiet():
                z = np.asarray(res.get_forecast(h).predicted_mean, float)
            mean = _integrate(x, z, delta)
            sd = _integrated_sd(res, delta, h)
            return mean, normal_quantiles(mean, sd, levels)

        params = {
            str(k): float(v) for k, v in zip(res.model.param_names, np.asarray(res.params), strict=False)
        }
        # one-step errors of the differenced model equal those of the integrated one
        resid = np.asarray(res.resid, float)[max(order[0], sorder[0] * m) :]
        return FittedForecast(name, params, y, m, predict, aicc=float(res.aicc), residuals=resid)


class StatsmodelsTheta(ForecastModel):
    """The Theta method (Assimakopoulos & Nikolopoulos 2000) via statsmodels ``ThetaModel``.

    Notes
    -----
    Equivalent to SES with drift (Hyndman & Billah 2003). With :math:`\\theta = 2`:
    :math:`\\hat y_{n+h} = \\tilde y_{n+h} + \\tfrac{1}{2} b_0 \\big(h - 1 + \\tfrac{1}{\\alpha} - \\tfrac{(1-\\alpha)^n}{\\alpha}\\big)`
    with :math:`\\tilde y` the SES forecast. Seasonal data (90% ACF test) are deseasonalised
    multiplicatively (additively when not positive) and reseasonalised. The ACF test needs
    :math:`n \\ge 3m`; with ``short_seasonal=True`` (default) a series with :math:`2m \\le n < 3m` is
    deseasonalised without the test (short sales histories have a calendar pattern the test cannot
    see yet); competition series are long enough for the test to decide.

    Quantiles: normal with the SES forecast variance of the deseasonalised series,
    :math:`\\sigma_h^2 = \\sigma^2\\,(1 + (h-1)\\alpha^2)`, :math:`\\sigma^2` the mean squared one-step
    error of SES-with-drift in sample, multiplied by the seasonal index of the target month for
    multiplicative seasonality. (statsmodels' ``prediction_intervals`` uses
    :math:`1 + (h-1)(1 + (\\alpha-1)^2)`, which is wider than the ARIMA(0,1,1) variance it cites, and
    refits a SARIMAX for :math:`\\sigma^2` on every call.)
    """

    family = "theta_statsmodels"

    def __init__(
        self, season_length: int = 1, *, short_seasonal: bool = True, seed: int | None = None
    ) -> None:
        super().__init__(season_length, seed=seed)
        self.short_seasonal = short_seasonal

    def _fit(self, y: pd.Series) -> FittedForecast:
        from statsmodels.tsa.forecasting.theta import ThetaModel

        x = y.to_numpy(float)
        m = self.season_length
        deseason = m > 1 and len(x) >= 2 * m
        # the ACF test needs 3 seasons; with 2 the calendar pattern is assumed (sales data have one)
        use_test = deseason and (len(x) >= 3 * m or not self.short_seasonal)
        if len(x) < 3:
            raise ForecastFitError(f"theta: needs at least 3 observations, got {len(x)}")
        with _Quiet():
            model = ThetaModel(
                x,
                period=m if m > 1 else None,
                deseasonalize=deseason,
                use_test=use_test,
                method="auto" if np.all(x > 0) else "additive",
            )
            res = model.fit()
        b0 = float(res.params.iloc[0])
        alpha = float(np.clip(res.params.iloc[1], 1e-6, 1.0))
        multiplicative = bool(model.deseasonalize and str(model.method).startswith("mul"))
        if model.deseasonalize:
            # the series the SES ran on (a private helper, but the one ThetaModel.fit itself uses)
            z, _ = model._deseasonalize_data()
            z = np.asarray(z, float)
        else:
            z = x
        resid_z = _ses_drift_errors(z, alpha, b0)
        sigma2 = float(np.mean(resid_z**2)) if resid_z.size else 0.0

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            with _Quiet():
                mean = np.asarray(res.forecast(h, theta=2), float)
                comp = res.forecast_components(h)
            sd = np.sqrt(sigma2 * (1 + np.arange(h) * alpha**2))
            if multiplicative and "seasonal" in comp:
                sd = sd * np.asarray(comp["seasonal"], float)
            return mean, normal_quantiles(mean, sd, levels)

        params = {str(k): float(v) for k, v in res.params.items()}
        params["sigma2"] = sigma2
        # errors on the original scale, for reconciliation weights
        # multiplicative: x_t = z_t s_t, so the error scales by s_t = x_t / z_t; additive: unchanged
        resid = resid_z * (x[1:] / z[1:]) if multiplicative else resid_z
        return FittedForecast("Theta", params, y, m, predict, residuals=np.asarray(resid, float))


def _ses_drift_errors(z: np.ndarray, alpha: float, b0: float) -> np.ndarray:
    """One-step errors of SES with half the OLS drift (Theta with theta = 2) [unit].

    Notes
    -----
    :math:`\\ell_1 = z_1`, :math:`\\hat z_{t+1|t} = \\ell_t + b_0/2`,
    :math:`\\ell_{t} = \\alpha z_t + (1-\\alpha)\\ell_{t-1}`; errors :math:`z_{t+1} - \\hat z_{t+1|t}`.
    """
    level = z[0]
    out = np.empty(max(len(z) - 1, 0))
    for t in range(1, len(z)):
        out[t - 1] = z[t] - (level + b0 / 2)
        level = alpha * z[t] + (1 - alpha) * level
    return out
