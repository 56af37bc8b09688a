"""Seasonal ARIMA with automatic order selection, compiled: the model of statsmodels ``SARIMAX``, fast.

Formulation
-----------
The series is differenced first (``simple_differencing``):
:math:`w_t = (1-B)^d (1-B^m)^D y_t`. The differenced series follows

.. math::
    \\phi(B)\\Phi(B^m)\\, w_t = c + \\theta(B)\\Theta(B^m)\\, \\varepsilon_t,
    \\qquad \\varepsilon_t \\sim N(0, \\sigma^2)

with :math:`\\phi(B) = 1 - \\sum_{i \\le p}\\phi_i B^i`, :math:`\\Phi(B^m) = 1 - \\Phi_1 B^m`,
:math:`\\theta(B) = 1 + \\sum_{j \\le q} \\theta_j B^j`, :math:`\\Theta(B^m) = 1 + \\Theta_1 B^m`
and an intercept :math:`c` (a mean when :math:`d + D = 0`, a drift when :math:`d + D = 1`). In
state-space form (Harvey's representation, as SARIMAX builds it): with the expanded polynomials
:math:`\\tilde\\phi, \\tilde\\theta` and :math:`r = \\max(\\tilde p, \\tilde q + 1)` states,
:math:`w_t = Z\\alpha_t`, :math:`\\alpha_{t+1} = c\\,e_1 + T\\alpha_t + R\\varepsilon_{t+1}`, where
:math:`T` has :math:`\\tilde\\phi` in its first column and ones above the diagonal,
:math:`R = (1, \\tilde\\theta_1, \\dots, \\tilde\\theta_{r-1})^\\top` and :math:`Z = e_1^\\top`; the
filter starts from the stationary distribution (mean :math:`(I-T)^{-1}c\\,e_1`, covariance solving
:math:`P = TPT^\\top + RR^\\top`, by doubling).

Estimation: conditional sum of squares (CSS, Box & Jenkins), minimised by the compiled Nelder-Mead
over the intercept and the Monahan (1984) / Jones (1980) unconstrained parameters (statsmodels'
``constrain_stationary_univariate``), so every candidate is stationary and invertible. CSS costs one
pass per evaluation where the exact likelihood costs a Kalman filter; the exact Gaussian likelihood
(Kalman filter, prediction-error decomposition, :math:`\\sigma^2` concentrated out) is then evaluated
once per candidate and gives the AICc that compares candidates (R's ``auto.arima`` does the same with
``approximation=TRUE``). Forecasts and the rolling forecasts run the exact filter; tests compare it
with SARIMAX at the same parameters.

Automatic orders (a small version of Hyndman & Khandakar 2008, unchanged from the statsmodels path):
:math:`D = 1` when the seasonal strength exceeds 0.64 (and :math:`n \\ge 3m`); :math:`d \\le 2` by
repeated KPSS tests at 5% (:func:`kpss_statistic` > 0.463); every :math:`(p, q)` with
:math:`p + q \\le` ``max_pq``, with a constant when :math:`d + D \\le 1`; then
:math:`(P, Q) \\in \\{(1, 0), (0, 1)\\}` around the winner (seasonal data with two seasons and two
periods more) and the winner without its constant; lowest AICc wins.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import pandas as pd

from salesops_models.forecast.base import FittedForecast, ForecastFitError, ForecastModel
from salesops_models.forecast.optim import INLINE, JIT, make_nelder_mead
from salesops_models.forecast.schema import normal_quantiles
from salesops_models.forecast.seasonality import seasonal_strength

_LOG2PI = math.log(2.0 * math.pi)

#: 5% critical value of the KPSS level-stationarity test (Kwiatkowski et al. 1992, table 1).
KPSS_CRITICAL_5PCT = 0.463


# ------------------------------------------------------------------------------------------------
# unit-root test
# ------------------------------------------------------------------------------------------------


def kpss_statistic(x: np.ndarray) -> float:
    """KPSS level-stationarity statistic with the Hobijn et al. (1998) automatic lag (statsmodels' ``kpss``).

    Notes
    -----
    :math:`\\eta = \\sum_t S_t^2 / (n^2 \\hat s^2)`, :math:`S_t` the partial sums of :math:`x - \\bar x`
    and :math:`\\hat s^2` the Newey-West long-run variance with the Bartlett kernel.
    """
    n = len(x)
    e = x - x.mean()
    cov_lags = int(np.power(n, 2.0 / 9.0))
    s0 = float(np.sum(e**2)) / n
    s1 = 0.0
    for i in range(1, cov_lags + 1):
        prod = float(np.dot(e[i:], e[: n - i])) / (n / 2.0)
        s0 += prod
        s1 += i * prod
    s_hat = s1 / s0 if s0 != 0 else 0.0
    lags = min(int(1.1447 * np.power(s_hat * s_hat, 1.0 / 3.0) * np.power(n, 1.0 / 3.0)), n - 1)
    var = float(np.sum(e**2))
    for i in range(1, lags + 1):
        var += 2.0 * float(np.dot(e[i:], e[: n - i])) * (1.0 - i / (lags + 1.0))
    var /= n
    eta = float(np.sum(np.cumsum(e) ** 2)) / n**2
    return eta / var if var > 0 else 0.0


def ndiffs_kpss(x: np.ndarray, max_d: int = 2) -> int:
    """First differences needed by repeated KPSS tests at 5% (as R's ``ndiffs``)."""
    d = 0
    z = np.asarray(x, float)
    while d < max_d and len(z) > 5:
        if np.ptp(z) == 0:
            break
        if kpss_statistic(z) <= KPSS_CRITICAL_5PCT:
            break
        d += 1
        z = np.diff(z)
    return d


def difference_polynomial(d: int, D: int, m: int) -> np.ndarray:
    """Coefficients of :math:`\\delta(B) = (1-B)^d (1-B^m)^D`, lowest power first."""
    delta = np.array([1.0])
    for _ in range(d):
        delta = np.convolve(delta, [1.0, -1.0])
    for _ in range(D):
        delta = np.convolve(delta, np.r_[1.0, np.zeros(m - 1), -1.0])
    return delta


# ------------------------------------------------------------------------------------------------
# kernels
# ------------------------------------------------------------------------------------------------


@nb.njit(**JIT)
def constrain_stationary(u):  # type: ignore[no-untyped-def]
    """Unconstrained reals -> coefficients of a stationary :math:`1 - \\sum \\phi_i B^i` (Monahan 1984)."""
    n = u.size
    return constrain_into(u, np.empty((n, n)), np.empty(n), -1.0)


@nb.njit(**INLINE)
def constrain_into(u, work, out, sign):  # type: ignore[no-untyped-def]
    """:func:`constrain_stationary` times ``-sign`` into ``out``; ``work`` at least ``n x n`` (no allocation).

    ``sign = -1`` gives the autoregressive coefficients, ``+1`` the moving-average ones (the same
    recursion, :math:`\\theta = -\\phi`).
    """
    n = u.size
    for k in range(n):
        r = u[k] / math.sqrt(1.0 + u[k] * u[k])
        for i in range(k):
            # only row k - 1's first k entries are read: no need to clear the work array
            work[k, i] = work[k - 1, i] + r * work[k - 1, k - i - 1]
        work[k, k] = r
    for i in range(n):
        out[i] = sign * work[n - 1, i]
    return out


@nb.njit(**JIT)
def expand(ar, sar, ma, sma, m):  # type: ignore[no-untyped-def]
    """Expanded coefficients: :math:`\\tilde\\phi` with :math:`1-\\sum\\tilde\\phi_iB^i = \\phi(B)\\Phi(B^m)`,
    :math:`\\tilde\\theta` with :math:`1+\\sum\\tilde\\theta_jB^j = \\theta(B)\\Theta(B^m)` (index 0 = lag 1)."""
    return expand_into(ar, sar, ma, sma, m, np.empty(ar.size + m * sar.size), np.empty(ma.size + m * sma.size))


@nb.njit(**INLINE)
def expand_into(ar, sar, ma, sma, m, phi, theta):  # type: ignore[no-untyped-def]
    """:func:`expand` into ``phi`` and ``theta`` (sizes :math:`p + mP` and :math:`q + mQ`, no allocation)."""
    p, sp, q, sq = ar.size, sar.size, ma.size, sma.size
    phi[:] = 0.0
    theta[:] = 0.0
    # (1 - sum a_i B^i)(1 - sum A_k B^{mk}) = 1 - sum a_i B^i - sum A_k B^{mk} + sum a_i A_k B^{i+mk}
    for i in range(p):
        phi[i] += ar[i]
    for k in range(sp):
        phi[m * (k + 1) - 1] += sar[k]
        for i in range(p):
            phi[m * (k + 1) + i] -= ar[i] * sar[k]
    for j in range(q):
        theta[j] += ma[j]
    for k in range(sq):
        theta[m * (k + 1) - 1] += sma[k]
        for j in range(q):
            theta[m * (k + 1) + j] += ma[j] * sma[k]
    return phi, theta


@nb.njit(**JIT)
def unpack(x, p, q, sp, sq, m, has_const):  # type: ignore[no-untyped-def]
    """Optimiser vector ``[c?, u_ar, u_ma, u_sar, u_sma]`` -> ``(c, phi~, theta~, ar, ma, sar, sma)``."""
    kk = max(p, q, sp, sq, 1)
    return unpack_into(
        x, p, q, sp, sq, m, has_const, np.empty((kk, kk)), np.empty(p), np.empty(q), np.empty(sp),
        np.empty(sq), np.empty(p + m * sp), np.empty(q + m * sq),
    )


@nb.njit(**INLINE)
def unpack_into(x, p, q, sp, sq, m, has_const, work, ar, ma, sar, sma, phi, theta):  # type: ignore[no-untyped-def]
    """:func:`unpack` into work arrays of the right sizes (``work`` at least ``k x k`` for the
    largest order ``k``); no allocation."""
    i = 0
    c = 0.0
    if has_const:
        c = x[0]
        i = 1
    constrain_into(x[i : i + p], work, ar, -1.0)
    i += p
    constrain_into(x[i : i + q], work, ma, 1.0)
    i += q
    constrain_into(x[i : i + sp], work, sar, -1.0)
    i += sp
    constrain_into(x[i : i + sq], work, sma, 1.0)
    expand_into(ar, sar, ma, sma, m, phi, theta)
    return c, phi, theta, ar, ma, sar, sma


@nb.njit(**JIT)
def css_sum_squares(w, c, phi, theta):  # type: ignore[no-untyped-def]
    """Conditional sum of squares: residuals from ``t = p~`` on, earlier residuals taken as 0."""
    return css_sum_squares_into(w, c, phi, theta, np.empty(w.size))


@nb.njit(**INLINE)
def css_sum_squares_into(w, c, phi, theta, e):  # type: ignore[no-untyped-def]
    """:func:`css_sum_squares` with the residuals written into ``e`` (only ``e[p~:]`` is read back)."""
    n = w.size
    pt = phi.size
    qt = theta.size
    ss = 0.0
    for t in range(pt, n):
        v = w[t] - c
        for i in range(pt):
            if phi[i] != 0.0:
                v -= phi[i] * w[t - 1 - i]
        for j in range(qt):
            if theta[j] != 0.0 and t - 1 - j >= pt:
                v -= theta[j] * e[t - 1 - j]
        e[t] = v
        ss += v * v
    return ss


@nb.njit(**JIT)
def css_objective(x, w, p, q, sp, sq, m, has_const, work, ar, ma, sar, sma, phi, theta, e):  # type: ignore[no-untyped-def]
    """CSS objective :math:`n\\log(S/n)`; the arrays after ``has_const`` are work space (no allocation:
    on a short series an allocation costs more than the sum of squares)."""
    c, phi, theta, _, _, _, _ = unpack_into(x, p, q, sp, sq, m, has_const, work, ar, ma, sar, sma, phi, theta)
    n_eff = w.size - phi.size
    if n_eff <= 0:
        return np.inf
    ss = css_sum_squares_into(w, c, phi, theta, e)
    if not ss > 0.0:
        return np.inf
    return n_eff * math.log(ss / n_eff)


_nelder_mead_css = make_nelder_mead(css_objective)


@nb.njit(**JIT)
def fit_css(w, p, q, sp, sq, m, has_const, max_evals, ftol):  # type: ignore[no-untyped-def]
    """CSS estimates on a standardised series from the zero start; returns the optimiser vector."""
    k = has_const + p + q + sp + sq
    x0 = np.zeros(k)
    if has_const:
        x0[0] = w.mean()
    return refit_css(w, p, q, sp, sq, m, has_const, x0, 1.0, max_evals, ftol, 1)


@nb.njit(**JIT)
def refit_css(w, p, q, sp, sq, m, has_const, x0, shrink, max_evals, ftol, restarts):  # type: ignore[no-untyped-def]
    """CSS estimates from the start ``x0`` (a warm start scales the initial simplex by ``shrink``).

    ``restarts``: see :func:`~salesops_models.forecast.optim.make_nelder_mead` (1 for a search from
    the zero start, 0 for a warm start, as the ETS refits)."""
    k = x0.size
    if k == 0:
        return x0.copy()
    step = np.full(k, 0.3 * shrink)
    lo = np.full(k, -np.inf)
    hi = np.full(k, np.inf)
    if has_const:
        step[0] = 0.1 * shrink
    kk = max(p, q, sp, sq, 1)
    space = (
        np.empty((kk, kk)), np.empty(p), np.empty(q), np.empty(sp), np.empty(sq),
        np.empty(p + m * sp), np.empty(q + m * sq), np.empty(w.size),
    )
    x, _, _ = _nelder_mead_css(x0, step, lo, hi, (w, p, q, sp, sq, m, has_const) + space, max_evals, ftol, restarts)
    return x


@nb.njit(**JIT)
def _state_matrices(phi, theta):  # type: ignore[no-untyped-def]
    r = max(phi.size, theta.size + 1)
    phi_r = np.zeros(r)
    phi_r[: phi.size] = phi
    rvec = np.zeros(r)
    rvec[0] = 1.0
    rvec[1 : theta.size + 1] = theta
    return r, phi_r, rvec


@nb.njit(**JIT)
def _predict_cov(phi_r, p, rvec, work, out):  # type: ignore[no-untyped-def]
    """``out = T p T' + R R'`` for the companion ``T`` (O(r^2), no allocation)."""
    r = phi_r.size
    for i in range(r):
        for j in range(r):
            v = phi_r[i] * p[0, j]
            if i + 1 < r:
                v += p[i + 1, j]
            work[i, j] = v
    for i in range(r):
        for j in range(r):
            v = phi_r[j] * work[i, 0]
            if j + 1 < r:
                v += work[i, j + 1]
            out[i, j] = v + rvec[i] * rvec[j]


@nb.njit(**JIT)
def stationary_start(phi, theta, c):  # type: ignore[no-untyped-def]
    """Mean and covariance (for :math:`\\sigma^2 = 1`) of the stationary state.

    The mean is :math:`\\mu\\,(1, \\sum_{k>1}\\tilde\\phi_k, \\sum_{k>2}\\tilde\\phi_k, \\dots)` with
    :math:`\\mu = c / (1 - \\sum_k\\tilde\\phi_k)`; the covariance solves
    :math:`P = TPT^\\top + RR^\\top` by doubling (:math:`P \\leftarrow P + APA^\\top`,
    :math:`A \\leftarrow A^2`), which converges for every stationary :math:`T`.
    """
    r, phi_r, rvec = _state_matrices(phi, theta)
    mean = np.zeros(r)
    mu = c / (1.0 - phi_r.sum())
    mean[0] = mu
    for i in range(1, r):
        mean[i] = mu * phi_r[i:].sum()
    a = np.zeros((r, r))
    for i in range(r):
        a[i, 0] = phi_r[i]
        if i + 1 < r:
            a[i, i + 1] = 1.0
    p = np.outer(rvec, rvec)
    # the products written out: for the few states of these models a BLAS call and its temporaries
    # cost several times the arithmetic (this runs once per likelihood evaluation of the polish)
    ap = np.empty((r, r))
    a2 = np.empty((r, r))
    for _ in range(60):
        _matmul_into(a, p, ap)
        top_inc = 0.0
        top_p = 0.0
        for i in range(r):
            for j in range(r):
                v = 0.0
                for k in range(r):
                    v += ap[i, k] * a[j, k]  # (a p a')[i, j]
                p[i, j] += v
                top_inc = max(top_inc, abs(v))
        for i in range(r):
            for j in range(r):
                top_p = max(top_p, abs(p[i, j]))
        if top_inc <= 1e-15 * max(top_p, 1.0):
            break
        _matmul_into(a, a, a2)
        a, a2 = a2, a
    return mean, p


@nb.njit(**INLINE)
def _matmul_into(x, y, out):  # type: ignore[no-untyped-def]
    """``out = x @ y`` for small square matrices (``out`` distinct from both)."""
    r = x.shape[0]
    for i in range(r):
        for j in range(r):
            v = 0.0
            for k in range(r):
                v += x[i, k] * y[k, j]
            out[i, j] = v


@nb.njit(**JIT)
def kalman_filter(w, c, phi, theta):  # type: ignore[no-untyped-def]
    """Exact Kalman filter of the ARMA part (variance in units of :math:`\\sigma^2`).

    Returns
    -------
    (float, float, ndarray, ndarray)
        :math:`\\sum_t v_t^2/F_t`, :math:`\\sum_t \\log F_t`, the predicted states
        :math:`a_{t|t-1}` (``n + 1`` rows; the last predicts the first period after the data) and
        the one-step errors :math:`v_t`.
    """
    n = w.size
    r, phi_r, rvec = _state_matrices(phi, theta)
    a, p = stationary_start(phi, theta, c)
    pred = np.empty((n + 1, r))
    v_all = np.empty(n)
    col = np.empty(r)
    work = np.empty((r, r))
    sum_v2f = 0.0
    sum_logf = 0.0
    for t in range(n):
        pred[t] = a
        v = w[t] - a[0]
        f = p[0, 0]
        if f < 1e-12:
            f = 1e-12
        # update: a += P e1 v / f; P -= P e1 e1' P / f
        for i in range(r):
            col[i] = p[i, 0]
        for i in range(r):
            a[i] += col[i] * v / f
            for j in range(r):
                p[i, j] -= col[i] * col[j] / f
        # predict: a <- c e1 + T a; P <- T P T' + R R'
        a0 = a[0]
        for i in range(r):
            a[i] = phi_r[i] * a0 + (a[i + 1] if i + 1 < r else 0.0)
        a[0] += c
        _predict_cov(phi_r, p, rvec, work, p)
        v_all[t] = v
        sum_v2f += v * v / f
        sum_logf += math.log(f)
    pred[n] = a
    return sum_v2f, sum_logf, pred, v_all


@nb.njit(**JIT)
def ml_objective(x, w, p, q, sp, sq, m, has_const):  # type: ignore[no-untyped-def]
    """:math:`-2\\log L` (exact, :math:`\\sigma^2` concentrated out, constants dropped) of the optimiser vector."""
    c, phi, theta, _, _, _, _ = unpack(x, p, q, sp, sq, m, has_const)
    sum_v2f, sum_logf, _, _ = kalman_filter(w, c, phi, theta)
    n = w.size
    if not (sum_v2f > 0.0 and np.isfinite(sum_logf)):
        return np.inf
    return n * math.log(sum_v2f / n) + sum_logf


_nelder_mead_ml = make_nelder_mead(ml_objective)


@nb.njit(**JIT)
def polish_ml(x0, w, p, q, sp, sq, m, has_const, max_evals, ftol):  # type: ignore[no-untyped-def]
    """Exact maximum likelihood from a start (the CSS estimates), as R's ``CSS-ML``."""
    k = x0.size
    if k == 0:
        return x0
    step = np.full(k, 0.1)
    lo = np.full(k, -np.inf)
    hi = np.full(k, np.inf)
    if has_const:
        step[0] = 0.05
    x, _, _ = _nelder_mead_ml(x0, step, lo, hi, (w, p, q, sp, sq, m, has_const), max_evals, ftol, 0)
    return x


@nb.njit(**JIT)
def propagate(a, phi_r, c, steps):  # type: ignore[no-untyped-def]
    """Point forecasts ``Z a, Z(c e1 + T a), ...`` for ``steps`` periods from the predicted state ``a``."""
    r = a.size
    out = np.empty(steps)
    cur = a.copy()
    nxt = np.empty(r)
    for s in range(steps):
        out[s] = cur[0]
        for i in range(r):
            nxt[i] = phi_r[i] * cur[0] + (cur[i + 1] if i + 1 < r else 0.0)
        nxt[0] += c
        cur[:] = nxt
    return out


@nb.njit(**JIT)
def integrate_one(tail, wf, delta):  # type: ignore[no-untyped-def]
    """Undo the differencing after an origin: :math:`\\hat y_{s} = \\hat w_{s} - \\sum_{i \\ge 1}\\delta_i \\tilde y_{s-i}`.

    ``tail`` holds the last ``len(delta) - 1`` actual values before the origin; :math:`\\tilde y` is
    the actual value before the origin and the forecast from it on.
    """
    k = delta.size - 1
    h = wf.size
    buf = np.empty(k + h)
    buf[:k] = tail
    for s in range(h):
        v = wf[s]
        for i in range(1, k + 1):
            v -= delta[i] * buf[k + s - i]
        buf[k + s] = v
    return buf[k:].copy()


@nb.njit(**JIT)
def arima_rolling(x, pred, phi_r, c, delta, first, horizon):  # type: ignore[no-untyped-def]
    """Forecasts of ``x`` from every origin ``t >= first`` (and ``t >= len(delta) - 1``), fixed parameters.

    ``pred`` holds the filter's predicted states of the differenced series; row ``t`` of the result
    forecasts ``x[t], ..., x[t + horizon - 1]`` from ``x[:t]``.
    """
    n = x.size
    k = delta.size - 1
    out = np.full((n, horizon), np.nan)
    for t in range(max(first, k), n):
        wf = propagate(pred[t - k], phi_r, c, horizon)
        out[t] = integrate_one(x[t - k : t], wf, delta)
    return out


@nb.njit(**JIT)
def fit_orders(w, scale, orders, m, max_evals, ftol):  # type: ignore[no-untyped-def]
    """CSS fits of several orders on one differenced series, and the exact likelihood of each.

    ``orders`` rows are ``(p, q, P, Q, constant)``. Returns the optimiser vectors (NaN-padded rows),
    the exact log-likelihoods (``-inf`` where unusable) and the parameter counts (without
    :math:`\\sigma^2`).
    """
    k = orders.shape[0]
    ws = w / scale
    width = 1
    for r in range(k):
        width = max(width, orders[r, 0] + orders[r, 1] + orders[r, 2] + orders[r, 3] + orders[r, 4])
    xs = np.full((k, width), np.nan)
    ll = np.full(k, -np.inf)
    npar = np.zeros(k, np.int64)
    n = w.size
    for r in range(k):
        p, q, sp, sq, hc = orders[r, 0], orders[r, 1], orders[r, 2], orders[r, 3], orders[r, 4]
        if n <= p + m * sp + 1:
            continue
        x = fit_css(ws, p, q, sp, sq, m, hc, max_evals, ftol)
        c, phi, theta, _, _, _, _ = unpack(x, p, q, sp, sq, m, hc)
        sum_v2f, sum_logf, _, _ = kalman_filter(w, c * scale, phi, theta)
        sigma2 = sum_v2f / n
        if sigma2 > 0 and np.isfinite(sum_logf):
            ll[r] = -0.5 * n * (_LOG2PI + 1.0 + math.log(sigma2)) - 0.5 * sum_logf
        xs[r, : x.size] = x
        npar[r] = x.size
    return xs, ll, npar


@nb.njit(**JIT)
def refit_origins(x, w, origins, delta, p, q, sp, sq, m, has_const, x0, scale, shrink, max_evals, ftol, horizon):  # type: ignore[no-untyped-def]
    """Forecasts of ``x`` from each origin, the orders re-estimated (CSS) on the differenced ``w[:t - k]``.

    Differencing is causal, so the differenced prefix is a prefix of the differenced series.
    Origins are visited latest first, each CSS fit warm-started at the previous one (the first at
    ``x0``, the full-history estimates). Rows stay NaN where the history is too short.
    """
    k = delta.size - 1
    out = np.full((origins.size, horizon), np.nan)
    start = x0.copy()
    for i in range(origins.size - 1, -1, -1):
        t = origins[i]
        wt = w[: t - k]
        if wt.size <= p + m * sp + 2 or t - k < 1:
            continue
        xi = refit_css(wt / scale, p, q, sp, sq, m, has_const, start, shrink, max_evals, ftol, 0)
        start = xi
        c, phi, theta, _, _, _, _ = unpack(xi, p, q, sp, sq, m, has_const)
        c = c * scale
        _, _, pred, _ = kalman_filter(wt, c, phi, theta)
        r = pred.shape[1]
        phi_r = np.zeros(r)
        phi_r[: phi.size] = phi
        out[i] = integrate_one(x[t - k : t], propagate(pred[wt.size], phi_r, c, horizon), delta)
    return out


# ------------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------------


class _Candidate:
    """One fitted order: its estimates (CSS, optionally polished by exact ML) and the exact likelihood."""

    def __init__(
        self,
        w: np.ndarray,
        scale: float,
        order: tuple[int, int, int],
        sorder: tuple[int, int, int],
        has_const: bool,
        m: int,
        x: np.ndarray,
        ftol: float,
    ) -> None:
        self.order, self.sorder, self.has_const, self.m = order, sorder, has_const, m
        self.w, self.scale, self.ftol = w, scale, ftol
        self.x = np.ascontiguousarray(x, dtype=float)
        self._evaluate()

    def polish(self, max_evals: int) -> None:
        """Move the estimates to the exact maximum likelihood (few evaluations from the CSS start)."""
        p, _, q = self.order
        sp, _, sq = self.sorder
        self.x = polish_ml(
            self.x, self.w / self.scale, p, q, sp, sq, self.m, int(self.has_const), max_evals, self.ftol
        )
        self._evaluate()

    def _evaluate(self) -> None:
        p, _, q = self.order
        sp, _, sq = self.sorder
        c, phi, theta, ar, ma, sar, sma = unpack(self.x, p, q, sp, sq, self.m, int(self.has_const))
        self.c = float(c) * self.scale
        self.phi, self.theta = phi, theta
        self.coefs = {"ar": ar, "ma": ma, "sar": sar, "sma": sma}
        w = self.w
        sum_v2f, sum_logf, pred, v = kalman_filter(w, self.c, phi, theta)
        n = w.size
        self.sigma2 = sum_v2f / n
        self.loglik = (
            -0.5 * n * (_LOG2PI + 1.0 + math.log(self.sigma2)) - 0.5 * sum_logf
            if self.sigma2 > 0
            else -np.inf
        )
        self.pred, self.resid = pred, v
        self.aicc = _aicc(self.loglik, n, int(self.has_const) + p + q + sp + sq + 1)


def _aicc(loglik: float, n: int, k: int) -> float:
    return -2.0 * loglik + 2 * k + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 and np.isfinite(loglik) else np.inf


class ARIMA(ForecastModel):
    """(S)ARIMA with automatic order selection, compiled (see the module notes).

    Parameters
    ----------
    season_length
        Seasonal period [periods].
    order, seasonal_order
        Fixed orders ``(p, d, q)`` and ``(P, D, Q)``; ``None`` selects them automatically.
    max_pq
        Largest :math:`p + q` tried by the automatic search.
    max_evals
        Work limit of the optimiser per order [CSS evaluations].
    polish_evals
        Work limit of the exact-likelihood polish of the chosen order [likelihood evaluations];
        0 keeps the CSS estimates.
    refit_evals
        Work limit of a warm-started CSS refit on a shorter history (calibration origins).
    ftol
        Relative tolerance on the objective that stops the optimiser.

    Notes
    -----
    Quantiles (Gaussian option): :math:`\\hat y_{n+h} + z_p\\sigma_h`,
    :math:`\\sigma_h^2 = \\sigma^2\\sum_{j<h}\\psi_j^2` with the psi weights of the integrated model
    :math:`\\theta(B)\\Theta(B^m) / (\\phi(B)\\Phi(B^m)\\delta(B))`.
    """

    family = "arima"

    def __init__(
        self,
        season_length: int = 1,
        order: tuple[int, int, int] | None = None,
        seasonal_order: tuple[int, int, int] | None = None,
        *,
        max_pq: int = 2,
        max_evals: int = 1000,
        polish_evals: int = 300,
        refit_evals: int = 300,
        ftol: float = 1e-8,
        refit_ftol: float = 1e-4,
        exact_search: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(season_length, seed=seed)
        self.order = order
        self.seasonal_order = seasonal_order
        self.max_pq = max_pq
        self.max_evals = int(max_evals)
        self.polish_evals = int(polish_evals)
        self.refit_evals = int(refit_evals)
        self.ftol = float(ftol)
        self.refit_ftol = float(refit_ftol)
        self.exact_search = bool(exact_search)

    def _best_of(
        self, x: np.ndarray, d: int, big_d: int, candidates: list[tuple[int, int, int, int, bool]]
    ) -> _Candidate | None:
        """The lowest-AICc order among ``(p, q, P, Q, constant)`` candidates with differencing ``d, D``."""
        m = self.season_length
        w = _difference(x, d, big_d, m)
        if len(w) < 3:
            return None
        scale = float(np.std(w))
        scale = scale if scale > 0 else 1.0
        orders = np.array([[p, q, sp, sq, int(c)] for p, q, sp, sq, c in candidates], dtype=np.int64)
        xs, ll, npar = fit_orders(w, scale, orders, m, self.max_evals, self.ftol)
        if self.exact_search:
            # every candidate at its exact maximum likelihood before the comparison (as SARIMAX)
            fitted = []
            for i, (p, q, sp, sq, c) in enumerate(candidates):
                if not np.isfinite(ll[i]):
                    continue
                cand = _Candidate(w, scale, (p, d, q), (sp, big_d, sq), c, m, xs[i, : npar[i]], self.ftol)
                if self.polish_evals > 0:
                    cand.polish(self.polish_evals)
                fitted.append(cand)
            return min(fitted, key=lambda cnd: cnd.aicc) if fitted and np.isfinite(min(c.aicc for c in fitted)) else None
        ics = [_aicc(float(ll[i]), len(w), int(npar[i]) + 1) for i in range(len(candidates))]
        i = int(np.argmin(ics))
        if not np.isfinite(ics[i]):
            return None
        p, q, sp, sq, c = candidates[i]
        return _Candidate(w, scale, (p, d, q), (sp, big_d, sq), c, m, xs[i, : npar[i]], self.ftol)

    def _fit(self, y: pd.Series) -> FittedForecast:
        x = np.ascontiguousarray(y.to_numpy(float))
        m = self.season_length
        n = len(x)
        if self.order is not None:
            p, d, q = self.order
            sp, big_d, sq = self.seasonal_order or (0, 0, 0)
            best = self._best_of(x, d, big_d, [(p, q, sp, sq, d + big_d <= 1)])
            if best is None:
                raise ForecastFitError(f"arima: order {self.order} cannot be fitted to {n} points")
        else:
            big_d = 1 if m > 1 and n >= 3 * m and seasonal_strength(x, m) > 0.64 else 0
            z = x[m:] - x[:-m] if big_d else x
            d = ndiffs_kpss(z)
            if n - d - big_d * m < 6:
                d = min(d, 1)
            const = d + big_d <= 1
            grid = [
                (p, q, 0, 0, const) for p in range(self.max_pq + 1) for q in range(self.max_pq + 1 - p)
            ]
            best = self._best_of(x, d, big_d, grid)
            if best is None:
                raise ForecastFitError("arima: no order could be fitted")
            p, _, q = best.order
            extra: list[tuple[int, int, int, int, bool]] = []
            if m > 1 and n >= 2 * m + 2:
                extra += [(p, q, 1, 0, const), (p, q, 0, 1, const)]
            if const:
                extra.append((p, q, 0, 0, False))
            if extra:
                alt = self._best_of(x, d, big_d, extra)
                if alt is not None and alt.aicc < best.aicc:
                    best = alt
        if self.polish_evals > 0 and not self.exact_search:
            best.polish(self.polish_evals)
        return _fitted_arima(y, x, best, m, self.refit_evals, self.refit_ftol)


def _difference(x: np.ndarray, d: int, big_d: int, m: int) -> np.ndarray:
    """:math:`(1-B)^d (1-B^m)^D x` (simple differencing, shorter by :math:`d + mD`)."""
    w = np.diff(x, n=d) if d else x
    for _ in range(big_d):
        w = w[m:] - w[:-m]
    return np.ascontiguousarray(w)


def _psi_weights(ar_poly: np.ndarray, ma_poly: np.ndarray, h: int) -> np.ndarray:
    """:math:`\\psi_0, \\dots, \\psi_{h-1}` of :math:`\\mathrm{ma}(B)/\\mathrm{ar}(B)` (both with leading 1)."""
    psi = np.zeros(h)
    for j in range(h):
        v = ma_poly[j] if j < len(ma_poly) else 0.0
        for i in range(1, min(j, len(ar_poly) - 1) + 1):
            v -= ar_poly[i] * psi[j - i]
        psi[j] = v
    return psi


def _fitted_arima(
    y: pd.Series, x: np.ndarray, best: _Candidate, m: int, refit_evals: int, ftol: float
) -> FittedForecast:
    order, sorder, has_const = best.order, best.sorder, best.has_const
    d, big_d = order[1], sorder[1]
    delta = difference_polynomial(d, big_d, m)
    k = len(delta) - 1
    n = len(x)
    r = best.pred.shape[1]
    phi_r = np.zeros(r)
    phi_r[: best.phi.size] = best.phi
    c = best.c
    sigma2 = best.sigma2
    ar_poly = np.convolve(np.r_[1.0, -best.phi], delta)
    ma_poly = np.r_[1.0, best.theta]

    def predict(h: int, levels: tuple[float, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        mean = integrate_one(x[n - k :], propagate(best.pred[-1], phi_r, c, h), delta)
        sd = np.sqrt(max(sigma2, 0.0) * np.cumsum(_psi_weights(ar_poly, ma_poly, h) ** 2))
        return mean, normal_quantiles(mean, sd, levels)

    def rolling(first: int, h: int) -> np.ndarray:
        return arima_rolling(x, best.pred, phi_r, c, delta, first, h)

    p, _, q = order
    sp, _, sq = sorder

    def refit(origins: np.ndarray, h: int) -> np.ndarray:
        # the same orders on shorter histories, CSS warm-started at the full-history estimates
        o = np.ascontiguousarray(origins, dtype=np.int64)
        return refit_origins(
            x, best.w, o, delta, p, q, sp, sq, m, int(has_const), best.x, best.scale, 0.5, refit_evals, ftol, h
        )

    name = f"ARIMA{order}".replace(" ", "")
    if any(sorder):
        name += f"{sorder}{m}".replace(" ", "")
    if has_const:
        name += " with drift" if d + big_d == 1 else " with constant"
    params = {"const": c} if has_const else {}
    for key, vals in best.coefs.items():
        params.update({f"{key}.L{i + 1}": float(v) for i, v in enumerate(vals)})
    params["sigma2"] = sigma2
    params["loglik"] = best.loglik
    # one-step errors of the differenced model equal those of the integrated one
    resid = best.resid[order[0] + m * sorder[0] :]
    return FittedForecast(
        name, params, y, m, predict, aicc=best.aicc, residuals=resid, rolling_fn=rolling, refit_fn=refit
    )

