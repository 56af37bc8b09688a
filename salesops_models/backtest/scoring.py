"""Scores of a probabilistic forecast against what happened: coverage, PIT, CRPS, pinball loss.

A forecast is either Monte Carlo samples (the pipeline, attainment, commission cost) or a set of
quantiles (the time-series forecasters). Both are scored the same way, row by row; a summary
aggregates rows of one model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LEVELS = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
QUANTILE_NAMES = tuple(f"q{int(round(100 * p)):02d}" for p in LEVELS)
PIT_BINS = 10


def crps_samples(samples: np.ndarray, y: float) -> float:
    """Continuous ranked probability score of an empirical distribution [unit of ``y``].

    Notes
    -----
    :math:`\\mathrm{CRPS}(F, y) = E|X - y| - \\tfrac12 E|X - X'|` with :math:`X, X'` independent draws
    of :math:`F` (Gneiting & Raftery 2007, eq. 21). For sorted samples :math:`x_{(1)} \\le \\dots \\le
    x_{(n)}`, :math:`E|X - X'| = \\frac{2}{n^2} \\sum_i (2i - n - 1) x_{(i)}`. A single sample (a point
    forecast) gives the absolute error.
    """
    x = np.sort(np.asarray(samples, float).ravel())
    n = x.size
    if n == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    spread = 2.0 / n**2 * float(np.sum((2 * i - n - 1) * x))
    return float(np.mean(np.abs(x - y)) - 0.5 * spread)


def pinball_loss(quantiles: np.ndarray, levels: np.ndarray, y: float) -> float:
    """Mean pinball (quantile) loss over the levels [unit of ``y``]:
    :math:`\\frac1K \\sum_k (\\mathbb 1[y < q_k] - \\tau_k)(q_k - y)`."""
    q = np.asarray(quantiles, float)
    tau = np.asarray(levels, float)
    return float(np.mean(((y < q).astype(float) - tau) * (q - y)))


def crps_from_quantiles(quantiles: np.ndarray, levels: np.ndarray, y: float) -> float:
    """CRPS approximated by twice the mean pinball loss over the levels (the quantile-score form of
    the CRPS, Gneiting & Raftery 2007, eq. 22, on the levels given) [unit of ``y``]."""
    return 2.0 * pinball_loss(quantiles, levels, y)


def pit_samples(samples: np.ndarray, y: float) -> float:
    """Mid-PIT of ``y``: share of samples below it plus half the share equal to it [0-1]."""
    x = np.asarray(samples, float).ravel()
    return float(np.mean(x < y) + 0.5 * np.mean(x == y))


def pit_quantiles(quantiles: np.ndarray, levels: np.ndarray, y: float) -> float:
    """PIT of ``y`` from quantiles: the level interpolated linearly between the quantiles; below the
    lowest (above the highest) quantile, the middle of that tail [0-1]."""
    q = np.asarray(quantiles, float)
    tau = np.asarray(levels, float)
    if y < q[0]:
        return float(tau[0] / 2)
    if y > q[-1]:
        return float((1 + tau[-1]) / 2)
    k = int(np.searchsorted(q, y, side="right"))
    if k >= q.size:
        return float(tau[-1])
    lo, hi = q[k - 1], q[k]
    w = 0.5 if hi <= lo else (y - lo) / (hi - lo)
    return float(tau[k - 1] + w * (tau[k] - tau[k - 1]))


def score_samples(samples: np.ndarray, y: float) -> dict[str, float | bool]:
    """One scored row from Monte Carlo samples."""
    x = np.asarray(samples, float).ravel()
    q = np.quantile(x, LEVELS)
    row: dict[str, float | bool] = {"actual": float(y), "mean": float(x.mean())}
    row.update({name: float(v) for name, v in zip(QUANTILE_NAMES, q, strict=True)})
    row["pit"] = pit_samples(x, y)
    row["crps"] = crps_samples(x, y)
    row["pinball"] = pinball_loss(q, np.array(LEVELS), y)
    row["inside_p10_p90"] = bool(q[1] <= y <= q[5])
    row["inside_p05_p95"] = bool(q[0] <= y <= q[6])
    return row


def score_quantiles(mean: float, quantiles: np.ndarray, y: float) -> dict[str, float | bool]:
    """One scored row from a forecast's quantiles at :data:`LEVELS`."""
    q = np.asarray(quantiles, float)
    tau = np.array(LEVELS)
    row: dict[str, float | bool] = {"actual": float(y), "mean": float(mean)}
    row.update({name: float(v) for name, v in zip(QUANTILE_NAMES, q, strict=True)})
    row["pit"] = pit_quantiles(q, tau, y)
    row["crps"] = crps_from_quantiles(q, tau, y)
    row["pinball"] = pinball_loss(q, tau, y)
    row["inside_p10_p90"] = bool(q[1] <= y <= q[5])
    row["inside_p05_p95"] = bool(q[0] <= y <= q[6])
    return row


def summarise(rows: pd.DataFrame) -> dict[str, object]:
    """Coverage of P10-P90 and P5-P95, the PIT histogram (10 bins), mean CRPS and pinball of rows."""
    if rows.empty:
        return {"n": 0}
    hist = np.histogram(np.clip(rows["pit"].to_numpy(float), 0, 1 - 1e-12), bins=PIT_BINS, range=(0, 1))[0]
    return {
        "n": int(len(rows)),
        "coverage_p10_p90": float(rows["inside_p10_p90"].mean()),
        "coverage_p05_p95": float(rows["inside_p05_p95"].mean()),
        "pit_histogram": [int(h) for h in hist],
        "crps_mean": float(rows["crps"].mean()),
        "pinball_mean": float(rows["pinball"].mean()),
    }


def naive_ratio_samples(center: float, ratios: np.ndarray) -> np.ndarray:
    """The naive baseline as a distribution: its point value times the empirical ratios of one period
    to the period before in history (a point forecast when fewer than three ratios exist)."""
    r = np.asarray(ratios, float)
    r = r[np.isfinite(r) & (r > 0)]
    if r.size < 3:
        return np.array([center])
    return center * r
