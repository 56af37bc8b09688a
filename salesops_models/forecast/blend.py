"""Blend the time-series forecast with the pipeline Monte Carlo's projection (current quarter).

The pipeline knows which deals are open now; the time series knows the run rate. For the periods
the pipeline covers, a weighted mean of both is usually better than either (FIELD-NOTES 2.5, after
Fildes et al. 2009). The weight is given, or estimated from a backtest where both forecasts and the
actuals are known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError
from salesops_models.forecast.schema import quantile_columns


def blend_weight_from_backtest(actual: np.ndarray, time_series: np.ndarray, pipeline: np.ndarray) -> float:
    """Least-squares weight of the pipeline projection in the blend [0-1].

    Notes
    -----
    Minimises :math:`\\sum_t (a_t - [w p_t + (1-w) s_t])^2` over :math:`w`:

    .. math:: w^* = \\mathrm{clip}_{[0,1]}\\frac{\\sum_t (a_t - s_t)(p_t - s_t)}{\\sum_t (p_t - s_t)^2}

    with :math:`a` the actuals, :math:`s` the time-series and :math:`p` the pipeline forecasts of
    past periods [currency/period]. Returns 0.5 when the two forecasts never differ.
    """
    a, s, p = (np.asarray(v, float).ravel() for v in (actual, time_series, pipeline))
    if not (a.size == s.size == p.size) or a.size == 0:
        raise DataValidationError(
            "blend backtest",
            [f"actual, time-series and pipeline need the same length > 0, got {a.size}, {s.size}, {p.size}."],
        )
    ok = np.isfinite(a) & np.isfinite(s) & np.isfinite(p)
    d = p[ok] - s[ok]
    den = float(np.sum(d**2))
    if den == 0:
        return 0.5
    return float(np.clip(np.sum((a[ok] - s[ok]) * d) / den, 0.0, 1.0))


def blend_with_pipeline(
    forecast: pd.DataFrame,
    pipeline: pd.DataFrame,
    weight: float,
    *,
    keys: tuple[str, ...] = ("series", "period"),
) -> pd.DataFrame:
    """Blend forecast rows that the pipeline projection covers; leave the others unchanged.

    Parameters
    ----------
    forecast
        Long forecast table with ``keys``, ``mean`` and quantile columns [currency/period].
    pipeline
        Pipeline projection with ``keys`` and ``mean``, optionally the same quantile columns.
    weight
        Weight :math:`w` of the pipeline [0-1] (from :func:`blend_weight_from_backtest` or given).

    Returns
    -------
    DataFrame
        ``forecast`` with blended values and a boolean ``blended`` column.

    Notes
    -----
    :math:`\\bar y = w\\,p + (1-w)\\,s` for the mean. Quantiles: averaged level by level with the same
    weights when the pipeline gives them (quantile averaging), else the time-series quantiles are
    shifted by :math:`\\bar y - s` (the spread of the time-series forecast is kept).
    """
    if not 0.0 <= weight <= 1.0:
        raise DataValidationError("blend", [f"weight must be in [0, 1], got {weight}."])
    for name, df in (("forecast", forecast), ("pipeline", pipeline)):
        missing = [c for c in (*keys, "mean") if c not in df.columns]
        if missing:
            raise DataValidationError(name, [f"missing column(s) {missing} needed for the blend."])
    qcols = [c for c in quantile_columns() if c in forecast.columns]
    pcols = ["mean", *[c for c in qcols if c in pipeline.columns]]
    merged = forecast.merge(
        pipeline[[*keys, *pcols]].rename(columns={c: f"{c}__pipe" for c in pcols}), on=list(keys), how="left"
    )
    hit = merged["mean__pipe"].notna().to_numpy()
    out = forecast.copy()
    ts_mean = out["mean"].to_numpy(float)
    new_mean = np.where(hit, weight * merged["mean__pipe"].to_numpy(float) + (1 - weight) * ts_mean, ts_mean)
    for c in qcols:
        ts_q = out[c].to_numpy(float)
        if f"{c}__pipe" in merged:
            blended = weight * merged[f"{c}__pipe"].to_numpy(float) + (1 - weight) * ts_q
        else:
            blended = ts_q + (new_mean - ts_mean)
        out[c] = np.where(hit, blended, ts_q)
    out["mean"] = new_mean
    out["blended"] = hit
    return out
