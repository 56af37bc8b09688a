"""Seasonality tests and classical decomposition shared by the forecasters (numpy, no statsmodels calls).

- :func:`acf`: sample autocorrelations (as ``statsmodels.tsa.stattools.acf``).
- :func:`seasonal_test`: the M4 / Naive2 90% test on the lag-``m`` autocorrelation.
- :func:`theta_seasonal_test`: the test statsmodels' ``ThetaModel`` applies (same level, a
  different variance estimate).
- :func:`seasonal_indices`: classical decomposition indices (``seasonal_decompose``).
- :func:`seasonal_strength`: :math:`F_S` of Wang, Smith & Hyndman (2006), used to choose seasonal
  differencing.
"""

from __future__ import annotations

import math

import numpy as np


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """Autocorrelations :math:`r_0, \\dots, r_{\\mathrm{nlags}}` (denominator :math:`n`, mean removed).

    Notes
    -----
    .. math:: r_k = \\frac{\\sum_{t=1}^{n-k}(x_t - \\bar x)(x_{t+k} - \\bar x)}{\\sum_{t=1}^{n}(x_t - \\bar x)^2}
    """
    d = np.asarray(x, float) - np.mean(x)
    den = float(np.dot(d, d))
    if den == 0.0:
        out = np.zeros(nlags + 1)
        out[0] = 1.0
        return out
    n = len(d)
    return np.array([np.dot(d[: n - k], d[k:]) / den for k in range(nlags + 1)])


def seasonal_test(x: np.ndarray, m: int) -> bool:
    """The M4 / Naive2 seasonality test: is the lag-``m`` autocorrelation significant at 90%?

    Notes
    -----
    .. math:: |r_m| > 1.645\\sqrt{\\frac{1 + 2\\sum_{k=1}^{m-1} r_k^2}{n}}

    tested only when :math:`m > 1` and :math:`n \\ge 3m` (``Mcompetitions/M4-methods``,
    ``Benchmarks and Evaluation.R``); ``False`` otherwise.
    """
    n = len(x)
    if m <= 1 or n < 3 * m:
        return False
    r = acf(x, m)
    limit = 1.645 * math.sqrt((1 + 2 * np.sum(r[1:m] ** 2)) / n)
    return bool(abs(r[m]) > limit)


def theta_seasonal_test(x: np.ndarray, m: int) -> bool:
    """statsmodels ``ThetaModel``'s test: :math:`n r_m^2 / \\sum_{k<m} r_k^2 > \\chi^2_{1;0.90}`."""
    r = acf(x, m)
    stat = len(x) * r[-1] ** 2 / np.sum(r[:-1] ** 2)
    return bool(stat > 2.705543454095404)


def _centred_trend(x: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    return np.convolve(x, w, mode="valid"), (len(w) - 1) // 2


def seasonal_indices(x: np.ndarray, m: int, kind: str = "mul") -> np.ndarray:
    """Seasonal indices of classical decomposition (centred moving average), as ``seasonal_decompose``.

    Parameters
    ----------
    x
        Series [unit]; at least two full seasons.
    m
        Seasonal period [periods].
    kind
        ``"mul"``: ratios to the trend, normalised to mean 1; ``"add"``: differences, mean 0.

    Returns
    -------
    ndarray
        ``m`` indices; index ``i`` belongs to the positions :math:`t \\equiv i \\pmod m` (0-based from
        the first observation).
    """
    n = len(x)
    trend, off = _centred_trend(x, m)
    part = x[off : off + len(trend)]
    detr = np.full(n, np.nan)
    detr[off : off + len(trend)] = part / trend if kind == "mul" else part - trend
    idx = np.array([np.nanmean(detr[i::m]) for i in range(m)])
    return idx / np.mean(idx) if kind == "mul" else idx - np.mean(idx)


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
    trend, off = _centred_trend(x, m)
    detr = x[off : off + len(trend)] - trend
    pos = (np.arange(len(detr)) + off) % m
    seas = np.array([detr[pos == i].mean() for i in range(m)])
    seas -= seas.mean()
    s = seas[pos]
    r = detr - s
    var_sr = np.var(s + r)
    return float(max(0.0, 1.0 - np.var(r) / var_sr)) if var_sr > 0 else 0.0
