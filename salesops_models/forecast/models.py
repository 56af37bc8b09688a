"""Univariate forecasters behind one Model / ``.fit()`` / Result split and one quantile schema.

Every model class is built with its settings, ``fit(y)`` takes one series (a complete ``PeriodIndex``
or a plain array, see :func:`~salesops_models.forecast.schema.complete_series`) and returns a
:class:`FittedForecast`, whose ``forecast(h)`` is a frame with ``mean`` and the quantile columns
``q05 ... q95`` on the future periods, whatever the statsmodels family underneath.

Families
--------
======================  ==========================================================================
``naive``               last value; :math:`\\sigma_h = \\sigma\\sqrt{h}`
``snaive``              value one season back; :math:`\\sigma_h = \\sigma\\sqrt{\\lfloor (h-1)/m \\rfloor + 1}`
``naive2``              M4 Naive2: naive on the classically (multiplicatively) deseasonalised series
                        when the 90% ACF test finds seasonality
``ets``                 statsmodels ``ETSModel``; automatic choice by AICc among error {A, M},
                        trend {N, A, Ad}, season {N, A, M}; multiplicative parts only for positive
                        data; no multiplicative trend
``arima``               statsmodels ``SARIMAX``; d by KPSS tests, D by seasonal strength, (p, q) and
                        (P, Q) by AICc over a small grid, drift when d + D <= 1
``theta``               statsmodels ``ThetaModel`` (SES with drift, theta = 2, multiplicative
                        deseasonalisation after the 90% ACF test)
``combination``         mean (or median) of ``ets``, ``arima`` and ``theta``
======================  ==========================================================================

Quantiles of a combination average the component quantiles level by level (quantile averaging,
"Vincentisation"); this keeps them ordered and is the usual choice for combined forecasts.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError, SalesopsError
from salesops_models.forecast.schema import (
    QUANTILE_LEVELS,
    complete_series,
    future_index,
    normal_quantiles,
    quantile_column,
    sort_quantiles,
)

log = logging.getLogger(__name__)

PredictFn = Callable[[int, tuple[float, ...]], tuple[np.ndarray, dict[str, np.ndarray]]]


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
    aicc
        Corrected Akaike information criterion where the family has a likelihood, else NaN.
    history
        The series the model was fitted on [unit/period].
    season_length
        Seasonal period [periods].
    components
        For a combination: the fitted components.
    """

    model: str
    params: dict[str, float]
    history: pd.Series
    season_length: int
    predict_fn: PredictFn = field(repr=False)
    aicc: float = float("nan")
    components: list[FittedForecast] = field(default_factory=list)
    residuals: np.ndarray = field(default_factory=lambda: np.array([]), repr=False)
    """One-step in-sample forecast errors :math:`y_t - \\hat y_{t|t-1}` [unit], aligned to the end of
    the history (possibly shorter than it); used to weight hierarchical reconciliation."""

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
        self.seed = seed

    def fit(self, y: pd.Series | np.ndarray) -> FittedForecast:
        series, _ = complete_series(y, fill_value=None, name=self.family)
        if len(series) < 2:
            raise ForecastFitError(f"{self.family}: needs at least 2 observations, got {len(series)}")
        return self._fit(series)

    def _fit(self, y: pd.Series) -> FittedForecast:  # pragma: no cover - abstract
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------
# Benchmarks: naive, seasonal naive, Naive2
# ------------------------------------------------------------------------------------------------


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

        return FittedForecast("Naive", {"sigma": sigma}, y, self.season_length, predict, residuals=np.diff(x))


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

        return FittedForecast(f"SNaive({m})", {"sigma": sigma}, y, m, predict, residuals=x[m:] - x[:-m])


def acf_seasonality_test(x: np.ndarray, m: int) -> bool:
    """The M4 / Theta seasonality test: is lag ``m`` autocorrelation significant at 90%?

    Notes
    -----
    .. math:: |r_m| > 1.645\\sqrt{\\frac{1 + 2\\sum_{k=1}^{m-1} r_k^2}{n}}

    tested only when :math:`m > 1` and :math:`n \\ge 3m` (``Mcompetitions/M4-methods``,
    ``Benchmarks and Evaluation.R``).
    """
    n = len(x)
    if m <= 1 or n < 3 * m:
        return False
    from statsmodels.tsa.stattools import acf

    r = acf(x, nlags=m, fft=False)
    limit = 1.645 * math.sqrt((1 + 2 * np.sum(r[1:m] ** 2)) / n)
    return bool(abs(r[m]) > limit)


def classical_seasonal_indices(x: np.ndarray, m: int) -> np.ndarray:
    """Multiplicative seasonal indices of classical decomposition (centred moving average).

    Notes
    -----
    Ratios :math:`y_t / \\mathrm{CMA}_m(y)_t` are averaged per season position and normalised to
    mean 1. Index ``i`` belongs to the positions :math:`t \\equiv i \\pmod m` (0-based from the
    first observation).
    """
    n = len(x)
    if m % 2 == 0:
        w = np.r_[0.5, np.ones(m - 1), 0.5] / m
    else:
        w = np.ones(m) / m
    trend = np.convolve(x, w, mode="valid")
    off = (len(w) - 1) // 2
    ratio = np.full(n, np.nan)
    ratio[off : off + len(trend)] = x[off : off + len(trend)] / trend
    idx = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    return idx / np.mean(idx)


class Naive2(ForecastModel):
    """M4 Naive2: seasonally adjusted random walk.

    Notes
    -----
    If :func:`acf_seasonality_test` finds seasonality (and the data are positive), divide by the
    classical multiplicative indices :math:`S_i`, forecast the adjusted series naively and multiply
    back: :math:`\\hat y_{n+h} = (y_n / S_{n}) \\cdot S_{n+h}`; otherwise plain :class:`Naive`.
    """

    family = "naive2"

    def _fit(self, y: pd.Series) -> FittedForecast:
        m = self.season_length
        x = y.to_numpy(float)
        if not (np.all(x > 0) and acf_seasonality_test(x, m)):
            fitted = Naive(m).fit(y)
            fitted.model = "Naive2"
            return fitted
        s = classical_seasonal_indices(x, m)
        pos = np.arange(len(x)) % m
        adj = x / s[pos]
        sigma = _rms(np.diff(adj))

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            fpos = (len(x) + np.arange(h)) % m
            mean = adj[-1] * s[fpos]
            sd = sigma * np.sqrt(np.arange(1, h + 1)) * s[fpos]
            return mean, normal_quantiles(mean, sd, levels)

        return FittedForecast(
            "Naive2(seasonal)",
            {"sigma": sigma, **{f"s{i}": float(v) for i, v in enumerate(s)}},
            y,
            m,
            predict,
            residuals=np.diff(adj) * s[pos[1:]],
        )


# ------------------------------------------------------------------------------------------------
# statsmodels families
# ------------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class ETSSpec:
    """One ETS specification: error, trend, damped, season (``A``/``M``/``None``)."""

    error: str = "add"
    trend: str | None = None
    damped: bool = False
    seasonal: str | None = None

    @property
    def name(self) -> str:
        e = "A" if self.error == "add" else "M"
        t = "N" if self.trend is None else ("Ad" if self.damped else "A")
        s = "N" if self.seasonal is None else ("A" if self.seasonal == "add" else "M")
        return f"ETS({e},{t},{s})"


def ets_candidates(x: np.ndarray, m: int, *, allow_multiplicative: bool = True) -> list[ETSSpec]:
    """The ETS specifications tried by the automatic choice (FIELD-NOTES 2.3 default set).

    Multiplicative error or season only for strictly positive data; no multiplicative trend;
    a seasonal component only with at least two full seasons; no additive error with
    multiplicative season (numerically unstable, excluded by R's ``ets()`` too).
    """
    positive = bool(np.all(x > 0)) and allow_multiplicative
    errors = ["add", "mul"] if positive else ["add"]
    n = len(x)
    trends: list[tuple[str | None, bool]] = [(None, False)]
    if n >= 4:
        trends += [("add", False), ("add", True)]
    seasons: list[str | None] = [None]
    if m > 1 and n >= 2 * m + 2:
        seasons += ["add"] + (["mul"] if positive else [])
    out = []
    for e in errors:
        for t, d in trends:
            for s in seasons:
                if e == "add" and s == "mul":
                    continue
                out.append(ETSSpec(e, t, d, s))
    return out


class ETS(ForecastModel):
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

    family = "ets"

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


def seasonal_strength(x: np.ndarray, m: int) -> float:
    """Strength of seasonality :math:`F_S \\in [0, 1]` from a classical additive decomposition.

    Notes
    -----
    .. math:: F_S = \\max\\Big(0, 1 - \\frac{\\mathrm{Var}(R)}{\\mathrm{Var}(S + R)}\\Big)

    (Wang, Smith & Hyndman 2006); R's ``nsdiffs`` takes one seasonal difference when
    :math:`F_S > 0.64`.
    """
    if m <= 1 or len(x) < 2 * m + 1:
        return 0.0
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(x, w, mode="valid")
    off = (len(w) - 1) // 2
    detr = x[off : off + len(trend)] - trend
    pos = (np.arange(len(detr)) + off) % m
    seas = np.array([detr[pos == i].mean() for i in range(m)])
    seas -= seas.mean()
    s = seas[pos]
    r = detr - s
    var_sr = np.var(s + r)
    return float(max(0.0, 1.0 - np.var(r) / var_sr)) if var_sr > 0 else 0.0


def _difference_polynomial(d: int, D: int, m: int) -> np.ndarray:
    """Coefficients of :math:`\\delta(B) = (1-B)^d (1-B^m)^D`, lowest power first."""
    delta = np.array([1.0])
    for _ in range(d):
        delta = np.convolve(delta, [1.0, -1.0])
    for _ in range(D):
        delta = np.convolve(delta, np.r_[1.0, np.zeros(m - 1), -1.0])
    return delta


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


class ARIMA(ForecastModel):
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

    family = "arima"

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
        delta = _difference_polynomial(order[1], sorder[1], m)

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


class Theta(ForecastModel):
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

    family = "theta"

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
                fitted.append(member.fit(y))
            except (ForecastFitError, ValueError, np.linalg.LinAlgError, OverflowError) as exc:
                failed.append(f"{member.family}: {exc}")
        if not fitted:
            raise ForecastFitError(f"combination: every member failed ({'; '.join(failed)})")
        agg = np.mean if self.how == "mean" else np.median

        def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            frames = [f.forecast(h, levels) for f in fitted]
            mean = agg(np.vstack([fr["mean"].to_numpy() for fr in frames]), axis=0)
            qs = {
                quantile_column(p): agg(
                    np.vstack([fr[quantile_column(p)].to_numpy() for fr in frames]), axis=0
                )
                for p in levels
            }
            return mean, qs

        name = f"{self.how.capitalize()}[" + ", ".join(f.model for f in fitted) + "]"
        if failed:
            name += f" (failed: {', '.join(s.split(':')[0] for s in failed)})"
        k = min(len(f.residuals) for f in fitted)
        resid = np.mean([f.residuals[len(f.residuals) - k :] for f in fitted], axis=0) if k else np.array([])
        return FittedForecast(name, {}, y, self.season_length, predict, components=fitted, residuals=resid)


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
