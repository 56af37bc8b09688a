"""Exponential smoothing (ETS) compiled with numba: the same model as statsmodels ``ETSModel``, fast.

Formulation
-----------
States: level :math:`\\ell`, trend :math:`b` (additive, optionally damped by :math:`\\phi`) and
:math:`m` seasonal states :math:`s` (additive or multiplicative). With the predicted level
:math:`L_t = \\ell_{t-1} + \\phi b_{t-1}` and :math:`S_t = s_{t-m}`, the one-step forecast is
:math:`\\hat y_t = L_t + S_t` (additive season), :math:`L_t S_t` (multiplicative) or :math:`L_t`,
and the states are updated in the error-correction form statsmodels uses
(``statsmodels/tsa/exponential_smoothing/_ets_smooth.pyx``), with :math:`\\beta^* = \\beta/\\alpha`
and :math:`\\gamma^* = \\gamma/(1-\\alpha)`:

.. math::
    \\ell_t &= \\alpha\\,(y_t \\ominus S_t) + (1-\\alpha) L_t \\\\
    b_t &= \\beta^*(\\ell_t - \\ell_{t-1}) + (1-\\beta^*)\\,\\phi\\, b_{t-1} \\\\
    s_t &= \\gamma^*(y_t \\ominus \\ell_t) + (1-\\gamma^*) S_t

(:math:`\\ominus` is ``-`` for an additive and ``/`` for a multiplicative season). The error type
changes only the likelihood, not the recursions:

.. math::
    \\log L = -\\tfrac{n}{2}\\big(\\log(2\\pi\\,\\overline{e^2}) + 1\\big) - [\\text{M error}]\\sum_t \\log|\\hat y_t|,
    \\qquad e_t = y_t - \\hat y_t \\;\\text{(A)}, \\quad e_t = (y_t - \\hat y_t)/\\hat y_t \\;\\text{(M)}

Parameters are estimated by maximum likelihood over
:math:`(\\alpha, \\beta^*, \\gamma^*, \\phi, \\ell_0, b_0, s_{-1}, \\dots, s_{-m+1})` inside the
statsmodels default box (:math:`10^{-4} \\le \\alpha, \\beta^*, \\gamma^* \\le 1 - 10^{-4}`,
:math:`0.8 \\le \\phi \\le 0.98`), with :math:`s_{-m}` pinned to 0 (additive) or 1 (multiplicative)
as statsmodels does, by a compiled Nelder-Mead (:mod:`~salesops_models.forecast.optim`) from the
statsmodels heuristic start (Hyndman et al. 2008, section 2.6). Data are divided by their mean
absolute value first so that every state is of order 1; the log-likelihood is shifted back
(:math:`-n\\log c`) so AICc values are those of the unscaled series. AICc counts the parameters as
statsmodels does (``df_model`` = parameters + 1).

Model search (``ETS(season_length)`` without a ``spec``): the candidates of
:func:`~salesops_models.forecast.models.ets_candidates`, pruned by cheap criteria before any fit
(see :func:`pruned_candidates`): seasonal models only when the series shows a seasonal pattern, and
multiplicative-error twins only of the best additive-error structures. statsmodels stays the
reference: tests compare the filter, likelihood and forecasts with ``ETSModel`` at the same
parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba as nb
import numpy as np
import pandas as pd

from salesops_models.forecast.base import FittedForecast, ForecastFitError, ForecastModel
from salesops_models.forecast.optim import INLINE, JIT, make_nelder_mead
from salesops_models.forecast.schema import normal_quantiles, quantile_column
from salesops_models.forecast.seasonality import seasonal_test

# component codes shared by the kernels
NONE, ADD, MUL = 0, 1, 2

_LOG2PI = math.log(2.0 * math.pi)


@nb.njit(**JIT)
def ets_one_step(level, slope, ring, t, trend, season, m, phi):  # type: ignore[no-untyped-def]
    """One-step forecast of observation ``t`` from the states before it."""
    big_l = level + phi * slope if trend != NONE else level
    if season == ADD:
        return big_l + ring[t % m]
    if season == MUL:
        return big_l * ring[t % m]
    return big_l


@nb.njit(**INLINE)
def ets_step(yt, t, trend, season, m, alpha, beta_s, gamma_s, phi, level, slope, ring):  # type: ignore[no-untyped-def]
    """One observation: returns (one-step forecast, new level, new trend); ``ring`` is updated in place.

    ``ring[t % m]`` holds :math:`s_{t-m}` when observation ``t`` is processed.
    """
    j = t % m
    big_l = level + phi * slope if trend != NONE else level
    if season == ADD:
        s_prev = ring[j]
        yh = big_l + s_prev
        new_level = alpha * (yt - s_prev) + (1.0 - alpha) * big_l
    elif season == MUL:
        s_prev = ring[j]
        yh = big_l * s_prev
        new_level = alpha * (yt / s_prev) + (1.0 - alpha) * big_l
    else:
        s_prev = 0.0
        yh = big_l
        new_level = alpha * yt + (1.0 - alpha) * big_l
    if trend != NONE:
        slope = beta_s * (new_level - level) + (1.0 - beta_s) * phi * slope
    if season == ADD:
        ring[j] = gamma_s * (yt - new_level) + (1.0 - gamma_s) * s_prev
    elif season == MUL:
        ring[j] = gamma_s * (yt / new_level) + (1.0 - gamma_s) * s_prev
    return yh, new_level, slope


@nb.njit(**INLINE)
def ets_smooth(y, trend, season, m, alpha, beta_s, gamma_s, phi, level, slope, ring, yhat):  # type: ignore[no-untyped-def]
    """Run the recursions over ``y`` (``ring`` updated in place); one-step forecasts into ``yhat``.

    Returns the final level and trend. Non-seasonal models run a loop of their own (the same
    arithmetic as :func:`ets_step`): with the model's codes known only at run time, the general
    step's branches and ``t % m`` cost several times the recursion itself.
    """
    if season == NONE:
        if trend == NONE:
            for t in range(y.size):
                yhat[t] = level
                level = alpha * y[t] + (1.0 - alpha) * level
            return level, slope
        for t in range(y.size):
            big_l = level + phi * slope
            yhat[t] = big_l
            new_level = alpha * y[t] + (1.0 - alpha) * big_l
            slope = beta_s * (new_level - level) + (1.0 - beta_s) * phi * slope
            level = new_level
        return level, slope
    for t in range(y.size):
        yhat[t], level, slope = ets_step(
            y[t], t, trend, season, m, alpha, beta_s, gamma_s, phi, level, slope, ring
        )
    return level, slope


@nb.njit(**INLINE)
def ets_loglik(y, yhat, error):  # type: ignore[no-untyped-def]
    """Gaussian log-likelihood with the variance concentrated out (statsmodels ``ETSModel.loglike``)."""
    n = y.size
    sse = 0.0
    logsum = 0.0
    for t in range(n):
        if error == MUL:
            yh = yhat[t] if yhat[t] != 0.0 else 1e-32
            e = (y[t] - yh) / yh
            logsum += math.log(abs(yh))
        else:
            e = y[t] - yhat[t]
        sse += e * e
    if sse <= 0.0:
        sse = 1e-300
    return -0.5 * n * (_LOG2PI + math.log(sse / n) + 1.0) - logsum


@nb.njit(**JIT)
def unpack(x, trend, damped, season, m):  # type: ignore[no-untyped-def]
    """Internal vector -> (alpha, beta*, gamma*, phi, level0, slope0, seasonal ring)."""
    return unpack_into(x, trend, damped, season, m, np.zeros(max(m, 1)))


@nb.njit(**INLINE)
def unpack_into(x, trend, damped, season, m, ring):  # type: ignore[no-untyped-def]
    """:func:`unpack` with the seasonal ring written into ``ring`` (length ``max(m, 1)``, no allocation)."""
    i = 0
    alpha = x[i]
    i += 1
    beta_s = 0.0
    gamma_s = 0.0
    phi = 1.0
    if trend != NONE:
        beta_s = x[i]
        i += 1
    if season != NONE:
        gamma_s = x[i]
        i += 1
    if damped:
        phi = x[i]
        i += 1
    level0 = x[i]
    i += 1
    slope0 = 0.0
    if trend != NONE:
        slope0 = x[i]
        i += 1
    ring[:] = 0.0
    if season != NONE:
        # x holds s_{-1}, ..., s_{-(m-1)}; s_{-m} (ring[0]) is pinned
        ring[0] = 1.0 if season == MUL else 0.0
        for j in range(1, m):
            ring[j] = x[i + (m - 1 - j)]
    return alpha, beta_s, gamma_s, phi, level0, slope0, ring


@nb.njit(**JIT)
def to_bounded(u, lo, hi):  # type: ignore[no-untyped-def]
    """Optimiser coordinates -> parameters: logistic into ``[lo, hi]`` where finite, identity elsewhere."""
    return to_bounded_into(u, lo, hi, np.empty(u.size))


@nb.njit(**INLINE)
def to_bounded_into(u, lo, hi, x):  # type: ignore[no-untyped-def]
    """:func:`to_bounded` written into ``x`` (no allocation)."""
    for i in range(u.size):
        if np.isfinite(lo[i]) and np.isfinite(hi[i]):
            x[i] = lo[i] + (hi[i] - lo[i]) / (1.0 + math.exp(-u[i]))
        else:
            x[i] = u[i]
    return x


@nb.njit(**JIT)
def to_free(x, lo, hi):  # type: ignore[no-untyped-def]
    """Parameters -> optimiser coordinates (inverse of :func:`to_bounded`; bounds nudged inwards)."""
    u = x.copy()
    for i in range(x.size):
        if np.isfinite(lo[i]) and np.isfinite(hi[i]):
            span = hi[i] - lo[i]
            s = min(max((x[i] - lo[i]) / span, 1e-6), 1.0 - 1e-6)
            u[i] = math.log(s / (1.0 - s))
    return u


@nb.njit(**JIT)
def ets_objective(u, y, error, trend, damped, season, m, yhat, lo, hi, xbuf, ring):  # type: ignore[no-untyped-def]
    """:math:`-2\\log L` at the optimiser coordinates ``u`` (``inf`` where inadmissible).

    ``yhat``, ``xbuf`` (size of ``u``) and ``ring`` (size ``max(m, 1)``) are work arrays: the
    objective allocates nothing, which on short series is most of its cost.
    """
    x = to_bounded_into(u, lo, hi, xbuf)
    alpha, beta_s, gamma_s, phi, level0, slope0, ring = unpack_into(x, trend, damped, season, m, ring)
    if season == MUL:
        for j in range(m):
            if ring[j] <= 0.0:
                return np.inf
    if error == MUL or season == MUL:
        if level0 <= 0.0:
            return np.inf
    mm = m if season != NONE else 1
    ets_smooth(y, trend, season, mm, alpha, beta_s, gamma_s, phi, level0, slope0, ring, yhat)
    if error == MUL:
        for t in range(y.size):
            if not yhat[t] > 0.0:
                return np.inf
    ll = ets_loglik(y, yhat, error)
    if not np.isfinite(ll):
        return np.inf
    return -2.0 * ll


_nelder_mead_ets = make_nelder_mead(ets_objective)


@nb.njit(**JIT)
def _ols_line(z, k):  # type: ignore[no-untyped-def]
    """Intercept and slope of z[:k] on t = 1..k."""
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    for t in range(k):
        xt = t + 1.0
        sx += xt
        sy += z[t]
        sxx += xt * xt
        sxy += xt * z[t]
    slope = (k * sxy - sx * sy) / (k * sxx - sx * sx)
    return (sy - slope * sx) / k, slope


@nb.njit(**JIT)
def heuristic_start(y, trend, season, m):  # type: ignore[no-untyped-def]
    """Initial level, trend and seasonal states (statsmodels' heuristic, Hyndman et al. 2008 s. 2.6).

    Seasonal states are returned by position of the first observations (index 0 = the season of
    ``y[0]``), i.e. :math:`s_{-m}, \\dots, s_{-1}`.
    """
    n = y.size
    seas = np.zeros(max(m, 1))
    if season == NONE:
        if n < 10:
            level = y[0]
            slope = y[1] - y[0] if n > 1 else 0.0
        else:
            level, slope = _ols_line(y, 10)
        return level, slope, seas
    min_obs = 10 + 2 * (m // 2)
    if n < min_obs:
        level = 0.0
        for t in range(m):
            level += y[t]
        level /= m
        slope = 0.0
        for t in range(m):
            slope += (y[m + t] - y[t]) / m
        slope /= m
        for t in range(m):
            seas[t] = y[t] - level if season == ADD else y[t] / level
        return level, slope, seas
    k_cycles = min(5, n // m)
    k_cycles = max(k_cycles, (min_obs + m - 1) // m)
    big_n = min(k_cycles * m, n)
    trend_ma = np.full(big_n, np.nan)
    half = m // 2
    if m % 2 == 0:
        for t in range(half, big_n - half):
            s = 0.5 * y[t - half] + 0.5 * y[t + half]
            for j in range(t - half + 1, t + half):
                s += y[j]
            trend_ma[t] = s / m
    else:
        for t in range(half, big_n - half):
            s = 0.0
            for j in range(t - half, t + half + 1):
                s += y[j]
            trend_ma[t] = s / m
    sums = np.zeros(m)
    counts = np.zeros(m)
    for t in range(big_n):
        if np.isfinite(trend_ma[t]):
            d = y[t] - trend_ma[t] if season == ADD else y[t] / trend_ma[t]
            sums[t % m] += d
            counts[t % m] += 1.0
    for j in range(m):
        seas[j] = sums[j] / counts[j] if counts[j] > 0 else (0.0 if season == ADD else 1.0)
    mean_s = seas.mean()
    for j in range(m):
        if season == ADD:
            seas[j] -= mean_s
        else:
            seas[j] /= mean_s
    valid = np.empty(big_n)
    nv = 0
    for t in range(big_n):
        if np.isfinite(trend_ma[t]):
            valid[nv] = trend_ma[t]
            nv += 1
    level, slope = _ols_line(valid, min(10, nv))
    return level, slope, seas


@nb.njit(**JIT)
def start_vector(y, trend, damped, season, m):  # type: ignore[no-untyped-def]
    """Start point of the optimiser: statsmodels' start values and the heuristic initial states."""
    level, slope, seas = heuristic_start(y, trend, season, m)
    k = 1 + (trend != NONE) + (season != NONE) + damped + 1 + (trend != NONE)
    if season != NONE:
        k += m - 1
        # pin s_{-m} = seas[0] (the season of y[0]) as statsmodels does, moving it into the level
        pin = seas[0]
        if season == ADD:
            level += pin
            for j in range(m):
                seas[j] -= pin
        else:
            if pin <= 0.0:
                pin = 1.0
            level *= pin
            for j in range(m):
                seas[j] /= pin
    x0 = np.empty(k)
    i = 0
    # statsmodels' start values 0.1, 0.01, 0.01, 0.98, nudged off the bounds by 1e-3
    alpha0 = 0.101
    x0[i] = alpha0
    i += 1
    if trend != NONE:
        x0[i] = 0.011 / alpha0
        i += 1
    if season != NONE:
        x0[i] = 0.011 / (1.0 - alpha0)
        i += 1
    if damped:
        x0[i] = 0.98
        i += 1
    x0[i] = level
    i += 1
    if trend != NONE:
        x0[i] = slope
        i += 1
    if season != NONE:
        for j in range(1, m):
            # x[i + (m - 1 - j)] is s_{j-m}
            x0[i + (m - 1 - j)] = seas[j]
    return x0


@nb.njit(**JIT)
def search_box(x0, trend, damped, season, m, shrink):  # type: ignore[no-untyped-def]
    """Bounds of the parameters and the initial simplex steps (optimiser coordinates, times ``shrink``).

    Smoothing parameters live in :math:`[10^{-4}, 1 - 10^{-4}]` and :math:`\\phi` in
    :math:`[0.8, 0.98]` (statsmodels' defaults); the optimiser moves them on the logit scale, so the
    simplex never collapses onto a bound. Initial states are free (a multiplicative seasonal state
    must stay positive: the objective rejects it otherwise).
    """
    k = x0.size
    step = np.empty(k)
    lo = np.full(k, -np.inf)
    hi = np.full(k, np.inf)
    n_smooth = 1 + (trend != NONE) + (season != NONE)
    for i in range(n_smooth):
        step[i], lo[i], hi[i] = 1.0, 1e-4, 1.0 - 1e-4
    i = n_smooth
    if damped:
        step[i], lo[i], hi[i] = 1.0, 0.8, 0.98
        i += 1
    step[i] = 0.1 * max(abs(x0[i]), 0.1)
    i += 1
    if trend != NONE:
        step[i] = 0.1 * max(abs(x0[i]), 0.01)
        i += 1
    for j in range(i, k):
        step[j] = 0.1 * max(abs(x0[j]), 0.05) if season == ADD else 0.05
    return step * shrink, lo, hi


@nb.njit(**JIT)
def fit_spec(y, error, trend, damped, season, m, max_evals, ftol):  # type: ignore[no-untyped-def]
    """Maximum-likelihood fit of one specification on (scaled) data.

    Returns
    -------
    (ndarray, float, int)
        Internal parameter vector, :math:`-2\\log L` and evaluations used.
    """
    x0 = start_vector(y, trend, damped, season, m)
    return refit_spec(y, error, trend, damped, season, m, x0, 1.0, max_evals, ftol, 1)


@nb.njit(**JIT)
def refit_spec(y, error, trend, damped, season, m, x0, shrink, max_evals, ftol, restarts):  # type: ignore[no-untyped-def]
    """Fit one specification from the start ``x0`` (a warm start: the estimates on a longer history).

    ``shrink`` scales the initial simplex: a warm start explores a smaller neighbourhood;
    ``restarts`` see :func:`~salesops_models.forecast.optim.make_nelder_mead`.
    """
    step, lo, hi = search_box(x0, trend, damped, season, m, shrink)
    yhat = np.empty(y.size)
    mm = m if season != NONE else 1
    free = np.full(x0.size, np.inf)
    u, f, evals = _nelder_mead_ets(
        to_free(x0, lo, hi),
        step,
        -free,
        free,
        (y, error, trend, damped, season, mm, yhat, lo, hi, np.empty(x0.size), np.zeros(mm)),
        max_evals,
        ftol,
        restarts,
    )
    return to_bounded(u, lo, hi), f, evals


@nb.njit(**JIT)
def refit_origins(xs, origins, error, trend, damped, season, m, x0, shrink, max_evals, ftol, horizon):  # type: ignore[no-untyped-def]
    """Forecasts from each origin of one specification re-estimated on ``xs[:t]`` (scaled data).

    Origins are visited from the latest to the earliest, each fit warm-started at the previous one
    (the first at ``x0``, the full-history estimates): parameters carried across rolling origins.
    Rows stay NaN where the history is too short or no admissible fit was found.
    """
    out = np.full((origins.size, horizon), np.nan)
    mm = m if season != NONE else 1
    start = x0.copy()
    for i in range(origins.size - 1, -1, -1):
        t = origins[i]
        if t < 4 or (season != NONE and t < 2 * m + 2):
            continue
        xi, f, _ = refit_spec(xs[:t], error, trend, damped, season, m, start, shrink, max_evals, ftol, 0)
        if not np.isfinite(f):
            continue
        start = xi
        a, b_s, g_s, ph, lv0, sl0, r0 = unpack(xi, trend, damped, season, mm)
        lv, sl = ets_smooth(xs[:t], trend, season, mm, a, b_s, g_s, ph, lv0, sl0, r0, np.empty(t))
        out[i] = ets_forecast(lv, sl, r0, t, trend, season, mm, ph, horizon)
    return out


@nb.njit(**JIT)
def fit_many(y, specs, m, max_evals, ftol):  # type: ignore[no-untyped-def]
    """Fit every row ``(error, trend, damped, season)`` of ``specs``; one compiled call per series.

    Returns ``(params, neg2ll, n_params)``: padded parameter rows (NaN-filled), :math:`-2\\log L` on
    the scaled data (``inf`` when no admissible fit was found) and the count of parameters.
    """
    k_max = 4 + 2 + max(m, 1)
    out = np.full((specs.shape[0], k_max), np.nan)
    neg2ll = np.full(specs.shape[0], np.inf)
    npar = np.zeros(specs.shape[0], np.int64)
    for r in range(specs.shape[0]):
        error, trend, damped, season = specs[r, 0], specs[r, 1], specs[r, 2], specs[r, 3]
        if season != NONE and y.size < 2 * m + 2:
            continue
        x, f, _ = fit_spec(y, error, trend, damped, season, m, max_evals, ftol)
        out[r, : x.size] = x
        neg2ll[r] = f
        npar[r] = x.size
    return out, neg2ll, npar


@nb.njit(**JIT)
def ets_forecast(level, slope, ring, n, trend, season, m, phi, horizon):  # type: ignore[no-untyped-def]
    """Point forecasts for ``horizon`` steps from the state after ``n`` observations."""
    out = np.empty(horizon)
    damp = 0.0
    pw = 1.0
    for h in range(1, horizon + 1):
        pw *= phi
        damp += pw
        base = level + damp * slope if trend != NONE else level
        if season == ADD:
            out[h - 1] = base + ring[(n + h - 1) % m]
        elif season == MUL:
            out[h - 1] = base * ring[(n + h - 1) % m]
        else:
            out[h - 1] = base
    return out


@nb.njit(**JIT)
def ets_rolling(y, trend, season, m, alpha, beta_s, gamma_s, phi, level, slope, ring, first, horizon):  # type: ignore[no-untyped-def]
    """Forecasts from every origin ``t >= first`` with fixed parameters (one filter pass).

    Returns an ``(n, horizon)`` array: row ``t`` holds the forecasts of ``y[t], ..., y[t+horizon-1]``
    made from the observations before ``t`` (NaN rows for origins before ``first``).
    """
    n = y.size
    out = np.full((n, horizon), np.nan)
    ring = ring.copy()
    for t in range(n):
        if t >= first:
            out[t] = ets_forecast(level, slope, ring, t, trend, season, m, phi, horizon)
        _, level, slope = ets_step(y[t], t, trend, season, m, alpha, beta_s, gamma_s, phi, level, slope, ring)
    return out


@nb.njit(**JIT)
def ets_psi(trend, season, m, alpha, beta_s, gamma_s, phi, horizon):  # type: ignore[no-untyped-def]
    r"""Weights :math:`c_j` of a linear (additive) ETS: the response of the forecast ``j`` steps after a unit error.

    The h-step forecast variance of a model with additive error and no multiplicative part is
    :math:`\sigma^2 (1 + \sum_{j=1}^{h-1} c_j^2)` (Hyndman et al. 2008, ch. 6); the weights come from
    the filter's own recursion fed with one unit error from zero states. ``out[0] = 0``.
    """
    out = np.zeros(horizon)
    ring = np.zeros(m)
    level = 0.0
    slope = 0.0
    for t in range(horizon):
        yh = ets_one_step(level, slope, ring, t, trend, season, m, phi)
        out[t] = yh
        _, level, slope = ets_step(
            yh + (1.0 if t == 0 else 0.0),
            t,
            trend,
            season,
            m,
            alpha,
            beta_s,
            gamma_s,
            phi,
            level,
            slope,
            ring,
        )
    return out


@nb.njit(**JIT)
def ets_simulate(y_last_n, trend, season, error, m, alpha, beta_s, gamma_s, phi, level, slope, ring, eps):  # type: ignore[no-untyped-def]
    """Sample paths ``(horizon, repetitions)`` from the state after ``y_last_n`` observations.

    ``eps`` holds the errors :math:`\varepsilon` (already scaled by :math:`\\sigma`); the observation is
    :math:`\\hat y + \varepsilon` (additive error) or :math:`\\hat y (1 + \varepsilon)` (multiplicative)
    and the states are updated by the filter's own recursion.
    """
    horizon, reps = eps.shape
    paths = np.empty((horizon, reps))
    work = np.empty(m)
    for r in range(reps):
        lv = level
        sl = slope
        work[:] = ring
        for h in range(horizon):
            t = y_last_n + h
            yh = ets_one_step(lv, sl, work, t, trend, season, m, phi)
            y = yh + eps[h, r] if error == ADD else yh * (1.0 + eps[h, r])
            _, lv, sl = ets_step(y, t, trend, season, m, alpha, beta_s, gamma_s, phi, lv, sl, work)
            paths[h, r] = y
    return paths


def class2_variance(mean: np.ndarray, c: np.ndarray, sigma2: float) -> np.ndarray:
    """Exact forecast variance of a multiplicative-error model without season (Hyndman et al. 2008, s. 6.3).

    Notes
    -----
    .. math:: \\theta_1 = \\mu_1^2, \\quad \\theta_h = \\mu_h^2 + \\sigma^2\\sum_{j=1}^{h-1} c_j^2\\,\\theta_{h-j},
       \\qquad v_h = (1 + \\sigma^2)\\,\\theta_h - \\mu_h^2

    with :math:`\\mu_h` the point forecast and :math:`c_j` the weights of :func:`ets_psi`.
    """
    h = len(mean)
    theta = np.empty(h)
    for k in range(h):
        theta[k] = mean[k] ** 2 + sigma2 * sum(c[j] ** 2 * theta[k - j] for j in range(1, k + 1))
    return np.maximum((1.0 + sigma2) * theta - mean**2, 0.0)


_CODE = {None: NONE, "add": ADD, "mul": MUL}


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


def pruned_candidates(x: np.ndarray, m: int, specs: Sequence[ETSSpec]) -> list[ETSSpec]:
    """Drop seasonal candidates when the series shows no seasonal pattern (cheap, before any fit).

    Seasonal specifications stay when the seasonal test of
    :func:`~salesops_models.forecast.seasonality.seasonal_test` finds seasonality, or when the
    history is too short for the test (fewer than three seasons): the AICc then decides.
    """
    if m <= 1 or not any(s.seasonal for s in specs):
        return list(specs)
    if len(x) < 3 * m or seasonal_test(x, m):
        return list(specs)
    return [s for s in specs if s.seasonal is None]


def _codes(specs: Sequence[ETSSpec]) -> np.ndarray:
    return np.array(
        [[_CODE[s.error], _CODE[s.trend], int(s.damped), _CODE[s.seasonal]] for s in specs], dtype=np.int64
    )


def aicc_of(loglik: float, n: int, k: int) -> float:
    r""":math:`-2\log L + 2k + 2k(k+1)/(n-k-1)`; ``inf`` when :math:`n \le k + 1` (statsmodels' definition)."""
    if n - k - 1 <= 0 or not np.isfinite(loglik):
        return float("inf")
    return -2.0 * loglik + 2.0 * k + 2.0 * k * (k + 1) / (n - k - 1)


class ETS(ForecastModel):
    r"""Exponential smoothing state-space model, compiled (see the module notes).

    Parameters
    ----------
    season_length
        Seasonal period [periods].
    spec
        A fixed :class:`ETSSpec`, or ``None`` for the automatic choice by AICc.
    candidates
        Restrict the automatic choice to these specifications (no pruning).
    prune
        Cheap pruning of the automatic search: seasonal candidates only for series with a seasonal
        pattern (:func:`pruned_candidates`), and multiplicative-error candidates only as twins of
        the best additive-error structure (the error type changes the likelihood, not the
        recursions).
    max_evals
        Work limit of the optimiser per specification [likelihood evaluations].
    ftol
        Relative tolerance on :math:`-2\\log L` that stops the optimiser.
    refit_evals
        Work limit of a warm-started refit on a shorter history (calibration origins).
    simulate_repetitions
        Sample paths for the Gaussian-option quantiles of models with a multiplicative part.
    seed
        Seed of those sample paths.

    Notes
    -----
    Quantiles of :meth:`FittedForecast.forecast`: additive-error models without a multiplicative
    season use the exact variance :math:`\hat\sigma^2(1 + \sum_{j<h} c_j^2)` (:func:`ets_psi`);
    the others take empirical quantiles of simulated paths (:func:`ets_simulate`).
    """

    family = "ets"

    def __init__(
        self,
        season_length: int = 1,
        spec: ETSSpec | None = None,
        *,
        candidates: Sequence[ETSSpec] | None = None,
        prune: bool = True,
        max_evals: int = 2000,
        ftol: float = 1e-8,
        refit_evals: int = 500,
        refit_ftol: float = 1e-4,
        simulate_repetitions: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(season_length, seed=seed)
        self.spec = spec
        self.candidates = list(candidates) if candidates is not None else None
        self.prune = prune
        self.max_evals = int(max_evals)
        self.ftol = float(ftol)
        self.refit_evals = int(refit_evals)
        self.refit_ftol = float(refit_ftol)
        self.simulate_repetitions = int(simulate_repetitions)

    def _specs(self, x: np.ndarray) -> list[ETSSpec]:
        m = self.season_length
        if self.spec is not None:
            specs = [self.spec]
        elif self.candidates is not None:
            specs = list(self.candidates)
        else:
            specs = ets_candidates(x, m)
            if self.prune:
                specs = pruned_candidates(x, m, specs)
        positive = bool(np.all(x > 0))
        usable = [s for s in specs if positive or (s.error == "add" and s.seasonal != "mul")]
        usable = [s for s in usable if s.seasonal is None or (m > 1 and len(x) >= 2 * m + 2)]
        if not usable:
            raise ForecastFitError(
                "ets: no specification fits this series (multiplicative parts need positive data, "
                "seasonal ones two full seasons and two more periods)"
            )
        return usable

    def _score(
        self, xs: np.ndarray, scale: float, specs: list[ETSSpec]
    ) -> list[tuple[float, float, ETSSpec, np.ndarray]]:
        """Fit ``specs`` (one compiled call) and return ``(aicc, loglik, spec, internal)`` of each."""
        n = len(xs)
        params, neg2ll, npar = fit_many(xs, _codes(specs), self.season_length, self.max_evals, self.ftol)
        out = []
        for i, spec in enumerate(specs):
            ll = -0.5 * neg2ll[i] - n * math.log(scale)
            # statsmodels counts all m initial seasonal states (one is pinned) plus the variance
            k = int(npar[i]) + (1 if spec.seasonal else 0) + 1
            ic = aicc_of(ll, n, k)
            if len(specs) == 1 and np.isfinite(neg2ll[i]) and not np.isfinite(ic):
                ic = 0.0  # a fixed specification on a very short series: keep it
            out.append((ic, ll, spec, params[i, : npar[i]]))
        return out

    def _fit(self, y: pd.Series) -> FittedForecast:
        x = np.ascontiguousarray(y.to_numpy(float))
        n = len(x)
        m = self.season_length
        if n < 3:
            raise ForecastFitError(f"ets: needs at least 3 observations, got {n}")
        specs = self._specs(x)
        scale = float(np.mean(np.abs(x)))
        scale = scale if scale > 0 else 1.0
        xs = x / scale
        automatic = self.spec is None and self.candidates is None
        if automatic and self.prune and any(s.error == "mul" for s in specs):
            # the error type changes only the likelihood, not the recursions: choose the structure
            # with additive errors first, then try the multiplicative-error twins of the best one
            scored = self._score(xs, scale, [s for s in specs if s.error == "add"])
            top = min(scored, key=lambda r: r[0])[2]
            twins = [
                s
                for s in specs
                if s.error == "mul"
                and s.trend == top.trend
                and s.damped == top.damped
                and (s.seasonal == top.seasonal or (top.seasonal == "add" and s.seasonal == "mul"))
            ]
            scored += self._score(xs, scale, twins) if twins else []
        else:
            scored = self._score(xs, scale, specs)
        ic, ll, spec, internal = min(scored, key=lambda r: r[0])
        if not np.isfinite(ic):
            raise ForecastFitError("ets: no specification could be fitted")
        return _fitted_ets(y, x, scale, spec, internal, ic, ll, m, self)


def _fitted_ets(
    y: pd.Series,
    x: np.ndarray,
    scale: float,
    spec: ETSSpec,
    internal: np.ndarray,
    aicc: float,
    loglik: float,
    m: int,
    model: ETS,
) -> FittedForecast:
    err, tr, dp, se = _CODE[spec.error], _CODE[spec.trend], int(spec.damped), _CODE[spec.seasonal]
    mm = m if se != NONE else 1
    alpha, beta_s, gamma_s, phi, level0, slope0, ring0 = unpack(internal, tr, dp, se, mm)
    # states on the original scale: level, trend and additive seasonals scale with the data
    level0 *= scale
    slope0 *= scale
    ring0 = ring0 * scale if se == ADD else ring0.copy()
    ring = ring0.copy()
    yhat = np.empty(len(x))
    level, slope = ets_smooth(x, tr, se, mm, alpha, beta_s, gamma_s, phi, level0, slope0, ring, yhat)
    n = len(x)
    resid = x - yhat
    rel = resid / yhat if err == MUL else resid
    sigma2 = float(np.mean(rel**2))
    reps = model.simulate_repetitions
    seed = model.seed

    def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        mean = ets_forecast(level, slope, ring, n, tr, se, mm, phi, h)
        if not levels:
            return mean, {}
        if err == ADD and se != MUL:
            c = ets_psi(tr, se, mm, alpha, beta_s, gamma_s, phi, h)
            sd = np.sqrt(sigma2 * (1.0 + np.cumsum(c**2)))
            return mean, normal_quantiles(mean, sd, levels)
        if se == NONE:
            return mean, normal_quantiles(
                mean,
                np.sqrt(class2_variance(mean, ets_psi(tr, se, 1, alpha, beta_s, gamma_s, phi, h), sigma2)),
                levels,
            )
        eps = np.random.default_rng(np.random.SeedSequence(seed)).standard_normal((h, reps)) * math.sqrt(
            sigma2
        )
        paths = ets_simulate(n, tr, se, err, mm, alpha, beta_s, gamma_s, phi, level, slope, ring, eps)
        return mean, {quantile_column(p): np.quantile(paths, p, axis=1) for p in levels}

    def sd(h: int) -> np.ndarray:
        # exact for linear models; multiplicative ones linearised around the point forecast
        c = ets_psi(tr, ADD if se != NONE else NONE, mm, alpha, beta_s, gamma_s, phi, h)
        rel = np.sqrt(sigma2 * (1.0 + np.cumsum(c**2)))
        if err == ADD and se != MUL:
            return rel
        return np.abs(ets_forecast(level, slope, ring, n, tr, se, mm, phi, h)) * (
            rel if err == MUL else rel / max(float(np.mean(np.abs(x))), 1e-12)
        )

    def rolling(first: int, h: int) -> np.ndarray:
        return ets_rolling(x, tr, se, mm, alpha, beta_s, gamma_s, phi, level0, slope0, ring0, first, h)

    xs = x / scale

    def refit(origins: np.ndarray, h: int) -> np.ndarray:
        # the same specification on shorter histories, warm-started at the full-history estimates
        o = np.ascontiguousarray(origins, dtype=np.int64)
        return (
            refit_origins(xs, o, err, tr, dp, se, m, internal, 0.5, model.refit_evals, model.refit_ftol, h) * scale
        )

    params = {"smoothing_level": alpha}
    if tr != NONE:
        params["smoothing_trend"] = alpha * beta_s
    if se != NONE:
        params["smoothing_seasonal"] = (1.0 - alpha) * gamma_s
    if dp:
        params["damping_trend"] = phi
    params["initial_level"] = level0
    if tr != NONE:
        params["initial_trend"] = slope0
    if se != NONE:
        for i in range(m):
            params[f"initial_seasonal.{i}"] = float(ring0[m - 1 - i])
    params["loglik"] = loglik
    return FittedForecast(
        spec.name,
        params,
        y,
        m,
        predict,
        aicc=aicc,
        residuals=resid,
        rolling_fn=rolling,
        sd_fn=sd,
        refit_fn=refit,
    )
