"""Forecast intervals calibrated from the model's own rolling-origin errors (empirical, per horizon, scaled per series).

Why: a model's Gaussian interval assumes the model is right and its parameters known. On real
series both fail, and the 95% intervals of the statsmodels families covered 0.77-0.93 of the
M3 and tourism actuals. Here the interval is what the model's own past errors say.

Method
------
For series :math:`i` with history :math:`y_1, \\dots, y_n` and a fitted model, the same
specification is re-estimated on the history up to each of :data:`CALIBRATION_ORIGINS` earlier
origins :math:`t` spread over the last two horizons (:func:`calibration_origins`), warm-started at
the estimates of the next later origin, and forecasts :math:`\\hat y_{t+s|t}`,
:math:`s = 1, \\dots, H` (:meth:`~salesops_models.forecast.base.FittedForecast.origin_forecasts`):
out-of-sample errors :math:`e_{i,t,s} = y_{t+s} - \\hat y_{t+s|t}`, kept where :math:`t + s \\le n`.
Origins too short to refit the specification (a seasonal model before two seasons) fall back to the
full-history parameters with re-filtered states, as does ``calibration_source="refilter"`` for all
origins (cheaper, but in-sample in the parameters and too narrow on short histories).
Each error is standardised by the model's own predictive standard deviation at that step,
:math:`\\sigma_{i,s}` (:meth:`~salesops_models.forecast.base.FittedForecast.predictive_sd`, from the
final origin), carried to the level of the forecast it belongs to when the series and its
forecasts are positive (errors grow with the level of sales series):

.. math:: u_{i,t,s} = \\frac{e_{i,t,s}}{\\sigma_{i,s}\\, r_{i,t,s}}, \\qquad
   r_{i,t,s} = \\frac{\\hat y_{t+s|t}}{\\hat y_{n+s|n}} \\;\\text{(positive series)}, \\quad 1 \\;\\text{(otherwise)}

For each step :math:`s` and level :math:`p` the pooled quantile :math:`q_s(p)` of the
:math:`u_{\\cdot,\\cdot,s}` is taken over all series of the pool, each series weighted equally
(weights :math:`1/k_i(s)` on its :math:`k_i(s)` errors), and the quantiles of series :math:`i` are

.. math:: \\hat y_{i,n+s|n} + \\sigma_{i,s}\\, q_s(p)

The model's :math:`\\sigma_{i,s}` carries what differs between series and horizons (noise level,
how fast uncertainty grows); the pooled :math:`q_s(p)` corrects what the model gets wrong for all of
them (tails, skew, bias, the optimism of in-sample variance). With Gaussian, correct models
:math:`q_s(p) \\approx z_p` and the intervals are the model's own.

A pool with fewer than :data:`MIN_ERRORS` (but at least 3) errors at a step (a lone short series)
uses the normal prediction interval of its standardised errors instead,
:math:`\\bar u_s + t_{k-1}(p)\\, s_u \\sqrt{1 + 1/k}` (a small-sample guard: an empirical 5% quantile
of a dozen errors is their minimum). Steps with fewer errors (horizons longer than the history
allows) extend the last estimated step's quantiles by :math:`\\sqrt{s / s_{last}}`. Offsets of
levels above the median are made non-decreasing over the horizon and those below non-increasing.

Per-series scales (``calibration_method="shrunk_scale"``, the default)
-----------------------------------------------------------------------
With :math:`q_s(p)` alone, every series of a batch gets the same standardised quantile, and the
model's :math:`\\sigma_{i,s}` is the only thing that tells series apart. Series whose model is more
wrong than the others' (short, noisy yearly series) then under-cover and the others over-cover.
:func:`calibrate` gives each series a relative scale :math:`c_i` learnt from its own errors and
shrunk towards the batch (empirical Bayes, :func:`series_scales`):

.. math:: c_i = \\exp\\big(b\\,(\\ell_i - \\bar\\ell)\\big), \\qquad
   \\ell_i = \\log \\overline{|u_{i,t,s}| / g_s}

(:math:`g_s` the batch's typical :math:`|u|` at step :math:`s`, so the mix of steps does not
matter), where :math:`b \\in [0, 1]` is the least-squares slope, across series, of :math:`\\ell` on
the later half of each series' origins on :math:`\\ell` on the earlier half: how much of a series'
error size carries over to its next errors, estimated from the batch itself (no tuning constant).
The quantiles are those of :math:`u_{i,t,s}/c_i^{(-)}`, where :math:`c_i^{(-)}` comes from the
*other* half of the series' origins (cross-fitting: a scale estimated on the errors it
standardises makes them look smaller than new errors will be), at the split-conformal level
:math:`p(N+1)/N` (:func:`finite_sample_levels`, :math:`N` errors at the step). Over the horizon
the offsets are made monotone by the least-squares (isotonic) fit rather than a running maximum,
which is biased upwards on long horizons. The series' quantiles are
:math:`\\hat y_{i,n+s|n} + \\sigma_{i,s}\\, c_i\\, q_s(p)` with :math:`c_i` from all its origins.
Fewer than :data:`MIN_SCALE_SERIES` series in a batch use the pooled method unchanged; the point
forecasts never depend on the method.

Pooling makes the intervals of one series depend on the other series of the call (a batch of
sales series shares its error distribution); a single series is calibrated on its own errors.
The results do not depend on the number of workers: errors are collected in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import isotonic_regression

#: Fewer pooled errors than this at a horizon step switch that step to the small-sample normal guard.
MIN_ERRORS = 60

#: Interval methods: ``calibrated`` (this module) or ``gaussian`` (the model's own distribution).
INTERVAL_METHODS = ("calibrated", "gaussian")

#: How a batch is calibrated (:func:`calibrate`): ``shrunk_scale`` (default: per-series scales shrunk
#: towards the pool, cross-fitted, finite-sample corrected) or ``pooled`` (one pooled quantile per step).
CALIBRATION_METHODS = ("shrunk_scale", "pooled")

#: Monotone fit over the horizon of the ``shrunk_scale`` offsets (see :func:`pooled_quantiles`).
MONOTONE = "isotonic"

#: Fewer series with errors in both halves of their origins than this: no per-series scale (``b = 0``).
MIN_SCALE_SERIES = 10


@dataclass
class RollingErrors:
    """Forecasts of one series from earlier origins, their errors and standardisation.

    Attributes
    ----------
    origins
        ``(k,)`` origins :math:`t` (the forecast from origin ``t`` uses ``history[:t]``).
    forecasts
        ``(k, horizon)`` point forecasts :math:`\\hat y_{t+s|t}` [unit] (NaN where unavailable).
    errors
        ``(k, horizon)`` errors :math:`y_{t+s} - \\hat y_{t+s|t}` [unit]; NaN where the target lies
        past the history.
    standardiser
        Same shape: :math:`\\sigma_s r_{t,s}` [unit].
    sd
        ``(horizon,)``: the model's predictive standard deviation from the final origin [unit].
    """

    origins: np.ndarray
    forecasts: np.ndarray
    errors: np.ndarray
    standardiser: np.ndarray
    sd: np.ndarray

    @property
    def scaled(self) -> np.ndarray:
        return self.errors / self.standardiser


#: Origins of the calibration per series (each a warm-started refit of the model by default).
CALIBRATION_ORIGINS = 12

#: How forecasts from earlier origins are made: ``refit`` re-estimates the specification on each
#: shorter history (out-of-sample errors), ``refilter`` keeps the parameters and re-filters the states.
CALIBRATION_SOURCES = ("refit", "refilter")


def calibration_origins(
    n: int, season_length: int, horizon: int, source: str = "refit", count: int = CALIBRATION_ORIGINS
) -> np.ndarray:
    """Origins whose forecasts calibrate the intervals.

    ``refit``: origins among the last two horizons, :math:`t \\in [\\max(n - 2H, t_{min}), n - 1]`
    with :math:`t_{min} = \\max(4, m + 2)` observations, thinned to at most ``count`` evenly
    spaced ones (the latest always kept). ``refilter``: every origin after a warm-up of one season
    plus one period (two periods without season), or the last ``count * horizon`` origins when that
    is later.
    """
    m = season_length
    if source == "refilter":
        warm = m + 1 if m > 1 else 2
        first = max(warm, n - count * horizon)
        return np.arange(min(first, max(n - 1, 1)), n)
    least = max(4, m + 2)
    span = np.arange(n - 1, max(n - 2 * horizon, least) - 1, -1)
    if len(span) == 0:
        return np.empty(0, dtype=int)
    step = max(1, -(-len(span) // max(count, 1)))
    return np.sort(span[::step][:count]).astype(int)


def errors_at_origins(
    history: np.ndarray, origins: np.ndarray, forecasts: np.ndarray, mean: np.ndarray, sd: np.ndarray
) -> RollingErrors:
    """Errors and their standardisers from the forecasts ``forecasts[j, s]`` of ``history[origins[j] + s]``.

    Parameters
    ----------
    history
        The series [unit], length ``n``.
    origins, forecasts
        See :class:`RollingErrors`.
    mean, sd
        The final point forecast and the model's predictive standard deviation [unit].
    """
    n = len(history)
    k, h = forecasts.shape
    idx = np.asarray(origins, int)[:, None] + np.arange(h)[None, :]
    target = np.where(idx < n, history[np.minimum(idx, n - 1)], np.nan)
    err = target - forecasts
    top = float(np.max(np.abs(history))) if n else 1.0
    # a model with (near) zero variance on a flat history: floor the scale at a tiny share of the level
    sd = np.maximum(np.nan_to_num(np.asarray(sd, float)[:h], nan=0.0), max(1e-9 * top, 1e-12))
    mean = np.asarray(mean, float)[:h]
    if n and history.min() >= 0 and mean.min() > 0:
        ratio = forecasts / mean[None, :]
        ratio = np.where(ratio > 0, ratio, np.nan)
    else:
        ratio = np.ones_like(err)
    return RollingErrors(np.asarray(origins, int), forecasts, err, sd[None, :] * ratio, sd)


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of a weighted sample (linear interpolation of the weighted CDF at mid-points)."""
    order = np.argsort(values, kind="mergesort")
    v = values[order]
    w = weights[order]
    cum = np.cumsum(w) - 0.5 * w
    cum /= w.sum()
    return np.interp(levels, cum, v)


def finite_sample_levels(levels: np.ndarray, units: int) -> np.ndarray:
    """Quantile levels moved outward by the split-conformal correction for ``units`` exchangeable units.

    The :math:`\\lceil (N+1)p \\rceil / N` rule without the ceiling (the pooled quantile interpolates):
    :math:`p' = p (N+1)/N` above the median, :math:`p' = 1 - (1-p)(N+1)/N` below, clipped to [0, 1].
    """
    lv = np.asarray(levels, float)
    n = max(int(units), 1)
    up = np.minimum(lv * (n + 1) / n, 1.0)
    down = np.maximum(1.0 - (1.0 - lv) * (n + 1) / n, 0.0)
    return np.where(lv > 0.5, up, np.where(lv < 0.5, down, lv))


def pooled_quantiles(
    samples: Sequence[RollingErrors],
    horizon: int,
    levels: Sequence[float],
    *,
    min_errors: int = MIN_ERRORS,
    row_scales: Sequence[np.ndarray] | None = None,
    finite_sample: bool = False,
    monotone: str = "running",
) -> np.ndarray:
    """Scaled-error quantiles :math:`q_s(p)`, shape ``(horizon, len(levels))`` (see the module notes).

    ``row_scales``: per sample, one divisor per origin (row) applied to its scaled errors first
    (:func:`series_scales`). ``finite_sample``: move the levels outward by
    :func:`finite_sample_levels` with the number of errors at the step as the units (the
    split-conformal count of calibration scores; it matters only for small pools).
    ``monotone``: how offsets are made not to narrow over the horizon: ``"running"`` (running
    maximum of the upper offsets, minimum of the lower ones) or ``"isotonic"`` (the least-squares
    monotone fit over the steps, weighted by their errors: a running maximum of noisy estimates is
    biased upwards, the more so the longer the horizon).
    """
    lv = np.asarray(levels, float)
    out = np.full((horizon, len(lv)), np.nan)
    counts = np.zeros(horizon)
    for s in range(horizon):
        vals, wts = [], []
        for j, smp in enumerate(samples):
            if s >= smp.errors.shape[1]:
                continue
            u = smp.scaled[:, s]
            if row_scales is not None:
                u = u / row_scales[j]
            u = u[np.isfinite(u)]
            if u.size:
                vals.append(u)
                wts.append(np.full(u.size, 1.0 / u.size))
        if not vals:
            continue
        v = np.concatenate(vals)
        counts[s] = v.size
        if v.size >= min_errors:
            at = finite_sample_levels(lv, v.size) if finite_sample else lv
            out[s] = _weighted_quantiles(v, np.concatenate(wts), at)
        elif v.size >= 3:
            k = v.size
            sd = float(np.std(v, ddof=1))
            out[s] = v.mean() + stats.t.ppf(lv, k - 1) * sd * np.sqrt(1.0 + 1.0 / k)
    filled = np.where(np.isfinite(out).all(axis=1))[0]
    if filled.size == 0:
        return out
    for s in range(horizon):
        if not np.isfinite(out[s]).all():
            ref = filled[filled <= s]
            base = int(ref[-1]) if ref.size else int(filled[0])
            out[s] = out[base] * np.sqrt((s + 1) / (base + 1))
    # intervals do not narrow further out: upper offsets non-decreasing, lower non-increasing
    if monotone == "isotonic":
        weight = np.maximum(counts, 1.0)  # extrapolated steps (no errors) weigh as one error
        for j, p in enumerate(lv):
            if p != 0.5:
                out[:, j] = isotonic_regression(out[:, j], weights=weight, increasing=bool(p > 0.5)).x
        return out
    for j, p in enumerate(lv):
        if p > 0.5:
            out[:, j] = np.maximum.accumulate(out[:, j])
        elif p < 0.5:
            out[:, j] = np.minimum.accumulate(out[:, j])
    return out


@dataclass
class SeriesScaleModel:
    """The batch's model of per-series error scales (:func:`series_scales`).

    Attributes
    ----------
    step_size
        ``(horizon,)``: typical :math:`|u|` per step over the pool (mean of the series' means) [-].
    centre
        Mean over series of :math:`\\log m_i` [-].
    shrinkage
        :math:`b \\in [0, 1]`: weight of a series' own scale (0: every series at the pool's scale).
    """

    step_size: np.ndarray
    centre: float
    shrinkage: float

    def log_sizes(self, sample: RollingErrors) -> tuple[np.ndarray, float, float, float]:
        """Rows with errors, and :math:`\\log m` over all of them, the earlier half and the later half."""
        a = np.abs(sample.scaled) / self.step_size[None, : sample.errors.shape[1]]
        rows = np.where(np.isfinite(a).any(axis=1))[0]
        half = len(rows) // 2

        def log_mean(x: np.ndarray) -> float:
            x = x[np.isfinite(x)]
            # sum / count is what ``mean`` computes (the same reduction and division), without
            # its per-call bookkeeping: this runs several times per series in a batch
            m = float(x.sum()) / x.size if x.size else 0.0
            return float(np.log(m)) if m > 0 else float("nan")

        early = log_mean(a[rows[:half]]) if half else float("nan")
        late = log_mean(a[rows[half:]]) if half else float("nan")
        return rows, log_mean(a[rows]) if rows.size else float("nan"), early, late

    def scale(self, sample: RollingErrors) -> float:
        """Relative scale :math:`c_i = \\exp(b(\\log m_i - \\bar\\ell))` of a series (1 without errors)."""
        return self._scale_of(self.log_sizes(sample)[1])

    def _scale_of(self, full: float) -> float:
        return float(np.exp(self.shrinkage * (full - self.centre))) if np.isfinite(full) else 1.0

    def row_scales(self, sample: RollingErrors) -> np.ndarray:
        """Divisors of each row's errors, cross-fitted: the earlier half by the later half's scale and back."""
        rows, full, early, late = self.log_sizes(sample)
        out = np.full(sample.errors.shape[0], self._scale_of(full))
        if np.isfinite(early) and np.isfinite(late):
            half = len(rows) // 2
            out[rows[:half]] = np.exp(self.shrinkage * (late - self.centre))
            out[rows[half:]] = np.exp(self.shrinkage * (early - self.centre))
        return out


def series_scales(
    samples: Sequence[RollingErrors], horizon: int, *, min_series: int = MIN_SCALE_SERIES
) -> SeriesScaleModel:
    """Estimate the per-series scale model of a batch (empirical Bayes by split halves).

    With :math:`a_{i,t,s} = |u_{i,t,s}| / g_s` (:math:`g_s` the typical size at step :math:`s`, so
    that the mix of steps does not matter), :math:`\\ell_i = \\log \\overline{a_{i}}` over all of
    a series' errors and :math:`\\ell_i^{E}, \\ell_i^{L}` over its earlier and later half of origins,
    the shrinkage is the least-squares slope of the later on the earlier half across series,
    :math:`b = \\mathrm{clip}_{[0,1]}\\,\\mathrm{cov}(\\ell^E, \\ell^L)/\\mathrm{var}(\\ell^E)`: how much
    of a series' past error size carries to its next errors (0 when it is noise, 1 when it persists).
    Fewer than ``min_series`` series with two halves give :math:`b = 0` (the pooled method).
    """
    g = np.full(horizon, np.nan)
    for s in range(horizon):
        per = []
        for smp in samples:
            if s < smp.errors.shape[1]:
                u = np.abs(smp.scaled[:, s])
                u = u[np.isfinite(u)]
                if u.size:
                    per.append(u.sum() / u.size)  # = u.mean(), without its per-call overhead
        if per and np.mean(per) > 0:
            g[s] = float(np.mean(per))
    known = np.where(np.isfinite(g))[0]
    if known.size == 0:
        return SeriesScaleModel(np.ones(horizon), 0.0, 0.0)
    # steps without errors take the nearest estimated step's size (they are not used for estimation)
    g = np.interp(np.arange(horizon), known, g[known])
    model = SeriesScaleModel(g, 0.0, 0.0)
    sizes = np.array([model.log_sizes(smp)[1:] for smp in samples]).reshape(-1, 3)
    full, early, late = sizes[:, 0], sizes[:, 1], sizes[:, 2]
    centre = float(np.nanmean(full)) if np.isfinite(full).any() else 0.0
    both = np.isfinite(early) & np.isfinite(late)
    b = 0.0
    if both.sum() >= min_series and np.var(early[both]) > 0:
        b = float(np.clip(np.cov(early[both], late[both])[0, 1] / np.var(early[both], ddof=1), 0.0, 1.0))
    return SeriesScaleModel(g, centre, b)


@dataclass
class Calibration:
    """Offsets and per-series scales of one batch: quantiles :math:`\\hat y_s + \\sigma_s c_i q_s(p)`.

    Attributes
    ----------
    offsets
        ``(horizon, levels)``: :math:`q_s(p)` [-].
    scales
        The per-series scale model, or ``None`` (method ``pooled``: :math:`c_i = 1`).
    """

    offsets: np.ndarray
    scales: SeriesScaleModel | None = None

    def scale(self, sample: RollingErrors) -> float:
        return 1.0 if self.scales is None else self.scales.scale(sample)

    def quantiles(self, mean: np.ndarray, sample: RollingErrors) -> np.ndarray:
        """Quantiles ``(horizon, levels)`` of the series whose errors are ``sample``."""
        return calibrated_quantiles(mean, np.asarray(sample.sd, float) * self.scale(sample), self.offsets)


def calibrate(
    samples: Sequence[RollingErrors],
    horizon: int,
    levels: Sequence[float],
    method: str = "shrunk_scale",
    *,
    min_errors: int = MIN_ERRORS,
) -> Calibration:
    """The calibration of a batch of series by ``method`` (:data:`CALIBRATION_METHODS`).

    ``pooled``: :func:`pooled_quantiles` of the scaled errors, the model's :math:`\\sigma_{i,s}` as
    the only per-series scale. ``shrunk_scale``: each series' scaled errors are divided by its own
    relative scale shrunk towards the pool (:func:`series_scales`), estimated on the *other* half of
    its origins (a scale fitted on the errors it standardises would make them look too small), then
    pooled with the split-conformal finite-sample correction; the forecast uses the scale from all
    of its origins.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method {method!r} is unknown; use one of {', '.join(CALIBRATION_METHODS)}")
    if method == "pooled" or len(samples) < MIN_SCALE_SERIES:
        # a lone series (or a handful) has no batch to learn per-series scales from
        return Calibration(pooled_quantiles(samples, horizon, levels, min_errors=min_errors))
    model = series_scales(samples, horizon)
    divisors = [model.row_scales(smp) for smp in samples]
    offsets = pooled_quantiles(
        samples,
        horizon,
        levels,
        min_errors=min_errors,
        row_scales=divisors,
        finite_sample=True,
        monotone=MONOTONE,
    )
    return Calibration(offsets, model)


def calibrated_quantiles(mean: np.ndarray, sd: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Quantiles ``(horizon, levels)`` of one series: :math:`\\hat y_s + \\sigma_s q_s(p)`, sorted across levels."""
    h = len(mean)
    q = np.asarray(mean, float)[:, None] + np.asarray(sd, float)[:h, None] * offsets[:h]
    return np.sort(q, axis=1)
