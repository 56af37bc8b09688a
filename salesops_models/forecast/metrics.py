"""Forecast accuracy metrics: the M3/M4 competition definitions and the sales-ops accuracy KPIs.

Every function takes the actuals ``y`` and the forecast ``f`` of **one series** over its horizon
(1-D arrays of the same length, in the series' unit, e.g. [currency/month]) and returns one number;
:func:`accuracy_by_series` applies them to a long table of many series and :func:`summarise_accuracy`
averages them the competition way: per series over the horizon first, then over series.

Conventions (stated once, used everywhere):

- Percentages are in [%] (0-100 scale, sMAPE 0-200).
- Terms that are undefined are dropped from the mean and counted, never silently set to 0:
  MAPE terms with ``y = 0``; sMAPE terms with ``y = f = 0`` are 0 (a perfect forecast of zero),
  which is the M4 organisers' convention.
- A MASE/MSIS scale of 0 (constant history) gives NaN for that series; the summaries count them.

References
----------
.. [1] Makridakis, S. & Hibon, M. (2000). The M3-Competition: results, conclusions and
   implications. IJF 16(4), 451-476.
.. [2] Makridakis, S., Spiliotis, E. & Assimakopoulos, V. (2020). The M4 Competition: 100,000
   time series and 61 forecasting methods. IJF 36(1), 54-74 (sMAPE, MASE, MSIS definitions).
.. [3] Hyndman, R. J. & Koehler, A. B. (2006). Another look at measures of forecast accuracy.
   IJF 22(4), 679-688 (MASE).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError

log = logging.getLogger(__name__)

ArrayLike = np.ndarray | pd.Series | list[float]


def _pair(y: ArrayLike, f: ArrayLike, name: str = "forecast") -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=float).ravel()
    fa = np.asarray(f, dtype=float).ravel()
    if ya.shape != fa.shape:
        raise DataValidationError(
            name,
            [f"actuals have {ya.size} values but the {name} has {fa.size}; pass one value per horizon step."],
        )
    return ya, fa


def smape(y: ArrayLike, f: ArrayLike) -> float:
    """Symmetric MAPE of one series, the M3/M4 definition [%, 0-200].

    Parameters
    ----------
    y
        Actuals over the horizon [unit of the series].
    f
        Point forecasts over the horizon [unit of the series].

    Returns
    -------
    float
        sMAPE [%]. NaN for an empty horizon.

    Notes
    -----
    .. math:: \\mathrm{sMAPE} = \\frac{1}{h}\\sum_{t=1}^{h} \\frac{200\\,|y_t - f_t|}{|y_t| + |f_t|}

    A term with :math:`y_t = f_t = 0` counts as 0. This is twice the ``smape`` of Nixtla's
    ``utilsforecast`` (which omits the factor 2).
    """
    ya, fa = _pair(y, f)
    if ya.size == 0:
        return float("nan")
    den = np.abs(ya) + np.abs(fa)
    num = 200.0 * np.abs(ya - fa)
    terms = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(terms.mean())


def mape(y: ArrayLike, f: ArrayLike) -> float:
    """Mean absolute percentage error of one series [%].

    Notes
    -----
    .. math:: \\mathrm{MAPE} = \\frac{100}{|T|}\\sum_{t \\in T} \\frac{|y_t - f_t|}{|y_t|},
       \\quad T = \\{t : y_t \\neq 0\\}

    Periods with :math:`y_t = 0` are undefined and left out (not set to 0); a series whose actuals
    are all zero gives NaN.
    """
    ya, fa = _pair(y, f)
    ok = ya != 0
    if not ok.any():
        return float("nan")
    return float(100.0 * np.mean(np.abs(ya[ok] - fa[ok]) / np.abs(ya[ok])))


def seasonal_naive_scale(insample: ArrayLike, m: int = 1) -> float:
    """In-sample mean absolute error of the seasonal naive forecast: the MASE/MSIS scale [unit].

    Parameters
    ----------
    insample
        The *training* part of the series only [unit].
    m
        Seasonal period [periods]: 1 for yearly/other/M4 weekly, 4 quarterly, 12 monthly.

    Notes
    -----
    .. math:: s = \\frac{1}{n - m}\\sum_{t=m+1}^{n} |y_t - y_{t-m}|

    NaN when the history has ``n <= m`` points; 0 for a (seasonally) constant history.
    """
    x = np.asarray(insample, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if m < 1:
        raise ValueError(f"seasonal period m must be >= 1, got {m}")
    if x.size <= m:
        return float("nan")
    return float(np.mean(np.abs(x[m:] - x[:-m])))


def mase(y: ArrayLike, f: ArrayLike, insample: ArrayLike, m: int = 1) -> float:
    """Mean absolute scaled error of one series [-].

    Notes
    -----
    .. math:: \\mathrm{MASE} = \\frac{\\frac{1}{h}\\sum_{t=1}^{h}|y_t - f_t|}{s},
       \\quad s = \\frac{1}{n-m}\\sum_{t=m+1}^{n}|y_t - y_{t-m}|

    with :math:`s` the in-sample seasonal-naive scale on the training part (:func:`seasonal_naive_scale`).
    A scale of 0 (constant history) returns NaN rather than infinity.
    """
    ya, fa = _pair(y, f)
    scale = seasonal_naive_scale(insample, m)
    if not np.isfinite(scale) or scale == 0 or ya.size == 0:
        return float("nan")
    return float(np.mean(np.abs(ya - fa)) / scale)


def bias(y: ArrayLike, f: ArrayLike) -> float:
    """Mean signed error of one series [unit]; positive means over-forecasting.

    Notes
    -----
    .. math:: \\mathrm{bias} = \\frac{1}{h}\\sum_{t=1}^{h} (f_t - y_t)
    """
    ya, fa = _pair(y, f)
    return float(np.mean(fa - ya)) if ya.size else float("nan")


def percent_bias(y: ArrayLike, f: ArrayLike) -> float:
    """Signed relative bias of one series [%]; the sales-ops "forecast bias" KPI.

    Notes
    -----
    .. math:: \\mathrm{bias}_\\% = \\frac{100}{|T|}\\sum_{t\\in T} \\frac{f_t - y_t}{y_t},
       \\quad T = \\{t : y_t \\neq 0\\}
    """
    ya, fa = _pair(y, f)
    ok = ya != 0
    if not ok.any():
        return float("nan")
    return float(100.0 * np.mean((fa[ok] - ya[ok]) / ya[ok]))


def coverage(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of actuals inside the prediction interval [0-1].

    Notes
    -----
    .. math:: \\mathrm{cov} = \\frac{1}{h}\\sum_{t=1}^{h} \\mathbb{1}[L_t \\le y_t \\le U_t]

    A calibrated 90% interval has coverage near 0.90 over many series.
    """
    ya, lo = _pair(y, lower, "lower bound")
    _, hi = _pair(y, upper, "upper bound")
    if ya.size == 0:
        return float("nan")
    return float(np.mean((ya >= lo) & (ya <= hi)))


def msis(
    y: ArrayLike, lower: ArrayLike, upper: ArrayLike, insample: ArrayLike, m: int = 1, alpha: float = 0.05
) -> float:
    """Mean scaled interval score of one series, the M4 definition [-].

    Parameters
    ----------
    y, lower, upper
        Actuals and the bounds of the :math:`(1-\\alpha)` prediction interval [unit].
    insample
        Training part of the series [unit] (for the scale).
    m
        Seasonal period of the scale [periods].
    alpha
        Significance of the interval [-]: 0.05 for the 95% interval of M4.

    Notes
    -----
    .. math:: \\mathrm{MSIS} = \\frac{1}{h\\,s}\\sum_{t=1}^{h}\\Big[(U_t - L_t)
       + \\tfrac{2}{\\alpha}(L_t - y_t)\\mathbb{1}[y_t < L_t]
       + \\tfrac{2}{\\alpha}(y_t - U_t)\\mathbb{1}[y_t > U_t]\\Big]

    with :math:`s` the seasonal-naive scale of :func:`mase`.
    """
    ya, lo = _pair(y, lower, "lower bound")
    _, hi = _pair(y, upper, "upper bound")
    scale = seasonal_naive_scale(insample, m)
    if not np.isfinite(scale) or scale == 0 or ya.size == 0:
        return float("nan")
    penalty = (2.0 / alpha) * ((lo - ya) * (ya < lo) + (ya - hi) * (ya > hi))
    return float(np.mean((hi - lo) + penalty) / scale)


def within_share(y: ArrayLike, f: ArrayLike, tolerance: float = 0.10) -> float:
    """Share of periods forecast within ``tolerance`` of the actual [0-1]: the sales-ops accuracy KPI.

    Notes
    -----
    .. math:: W_\\tau = \\frac{1}{|T|}\\sum_{t\\in T}\\mathbb{1}\\Big[\\frac{|f_t - y_t|}{|y_t|} \\le \\tau\\Big],
       \\quad T = \\{t : y_t \\neq 0\\}

    With :math:`\\tau = 0.05` and :math:`0.10` this is the "share of periods within +-5% / +-10%".
    """
    ya, fa = _pair(y, f)
    ok = ya != 0
    if not ok.any():
        return float("nan")
    # a small epsilon keeps exact boundary cases (|f - y| = tau*|y|) inside despite float rounding
    return float(np.mean(np.abs(fa[ok] - ya[ok]) <= tolerance * np.abs(ya[ok]) * (1 + 1e-12)))


METRIC_COLUMNS = (
    "smape",
    "mape",
    "mase",
    "bias",
    "percent_bias",
    "within_5pct",
    "within_10pct",
    "coverage80",
    "coverage90",
    "msis90",
)


def interval_columns(level: float) -> tuple[str, str]:
    """Quantile columns bounding the central ``level`` interval, e.g. 0.9 -> ("q05", "q95")."""
    from salesops_models.forecast.schema import quantile_column

    a = (1.0 - level) / 2.0
    return quantile_column(a), quantile_column(1.0 - a)


def accuracy_by_series(
    forecasts: pd.DataFrame,
    history: Mapping[str, ArrayLike],
    season_length: int | Mapping[str, int] = 1,
    *,
    series_col: str = "series",
    actual_col: str = "y",
    point_col: str = "mean",
    levels: tuple[float, ...] = (0.8, 0.9),
) -> pd.DataFrame:
    """Metrics of every series in a long forecast table.

    Parameters
    ----------
    forecasts
        One row per (series, horizon step) with the actual ``y``, the point forecast ``mean`` and,
        optionally, quantile columns (``q05`` ... ``q95``, or ``q025``/``q975``).
    history
        Training values per series (for the MASE/MSIS scale).
    season_length
        Seasonal period of the scale, one for all or per series [periods].
    levels
        Central interval levels whose coverage and MSIS to compute when their columns exist.

    Returns
    -------
    DataFrame
        One row per series with ``n``, ``smape``, ``mape``, ``mase``, ``bias``, ``percent_bias``,
        ``within_5pct``, ``within_10pct`` and ``coverage<L>``/``msis<L>`` for each level present.
    """
    missing = [c for c in (series_col, actual_col, point_col) if c not in forecasts.columns]
    if missing:
        raise DataValidationError(
            "forecasts",
            [f"missing column(s) {missing}; expected '{series_col}', '{actual_col}', '{point_col}'."],
        )
    rows = []
    for sid, g in forecasts.groupby(series_col, sort=False, observed=True):
        y = g[actual_col].to_numpy(float)
        f = g[point_col].to_numpy(float)
        m = season_length[sid] if isinstance(season_length, Mapping) else season_length
        ins = history[sid] if sid in history else np.array([])
        row: dict[str, object] = {
            series_col: sid,
            "n": len(y),
            "smape": smape(y, f),
            "mape": mape(y, f),
            "mase": mase(y, f, ins, m),
            "bias": bias(y, f),
            "percent_bias": percent_bias(y, f),
            "within_5pct": within_share(y, f, 0.05),
            "within_10pct": within_share(y, f, 0.10),
        }
        for level in levels:
            lo_c, hi_c = interval_columns(level)
            if lo_c in g and hi_c in g:
                tag = f"{level * 100:g}".replace(".", "")
                lo, hi = g[lo_c].to_numpy(float), g[hi_c].to_numpy(float)
                row[f"coverage{tag}"] = coverage(y, lo, hi)
                row[f"msis{tag}"] = msis(y, lo, hi, ins, m, alpha=1.0 - level)
        rows.append(row)
    return pd.DataFrame(rows)


def summarise_accuracy(per_series: pd.DataFrame) -> dict[str, float]:
    """Average per-series metrics over series (the M3/M4 way) and count undefined ones.

    Returns the mean of every metric column, the median sMAPE and MASE, and ``n_series``,
    ``n_mase_undefined`` (constant histories) and ``n_mape_undefined`` (all-zero actuals).
    """
    out: dict[str, float] = {"n_series": int(len(per_series))}
    for c in per_series.columns:
        if c in ("series", "unique_id", "n") or not pd.api.types.is_numeric_dtype(per_series[c]):
            continue
        out[c] = float(np.nanmean(per_series[c])) if per_series[c].notna().any() else float("nan")
    for c in ("smape", "mase"):
        if c in per_series:
            out[f"{c}_median"] = (
                float(np.nanmedian(per_series[c])) if per_series[c].notna().any() else float("nan")
            )
    if "mase" in per_series:
        out["n_mase_undefined"] = int(per_series["mase"].isna().sum())
    if "mape" in per_series:
        out["n_mape_undefined"] = int(per_series["mape"].isna().sum())
    return out


__all__ = [
    "smape",
    "mape",
    "mase",
    "bias",
    "percent_bias",
    "coverage",
    "msis",
    "within_share",
    "seasonal_naive_scale",
    "accuracy_by_series",
    "summarise_accuracy",
    "interval_columns",
]
