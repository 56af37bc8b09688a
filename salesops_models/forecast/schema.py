"""The one quantile schema every forecaster returns, and series preparation guards.

statsmodels' families name their interval columns differently (``pi_lower``/``pi_upper`` for ETS,
``mean_ci_lower``/``mean_ci_upper`` for SARIMAX, ``lower``/``upper`` for Theta). Every model here
returns the same frame instead: ``mean`` plus one column per quantile level, named
``q05, q10, q25, q50, q75, q90, q95`` by default (:data:`QUANTILE_LEVELS`).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import ndtri

from salesops_models.errors import DataValidationError

log = logging.getLogger(__name__)

#: Default quantile levels of every forecast [probability].
QUANTILE_LEVELS: tuple[float, ...] = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)


@lru_cache(maxsize=256)
def quantile_column(p: float) -> str:
    """Column name of quantile level ``p``: 0.05 -> ``q05``, 0.5 -> ``q50``, 0.025 -> ``q025``."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {p}")
    pct = p * 100.0
    if abs(pct - round(pct)) < 1e-9:
        return f"q{int(round(pct)):02d}"
    return f"q{int(round(p * 1000)):03d}"


def quantile_columns(levels: tuple[float, ...] = QUANTILE_LEVELS) -> list[str]:
    """Column names of ``levels`` in order."""
    return [quantile_column(p) for p in levels]


def normal_quantiles(
    mean: np.ndarray, sd: np.ndarray, levels: tuple[float, ...] = QUANTILE_LEVELS
) -> dict[str, np.ndarray]:
    """Quantile columns of a normal predictive distribution.

    Notes
    -----
    .. math:: q_p = \\mu_h + z_p\\,\\sigma_h, \\quad z_p = \\Phi^{-1}(p)
    """
    mean = np.asarray(mean, float)
    sd = np.asarray(sd, float)
    # ndtri is the normal quantile function as a plain ufunc (scipy.stats.norm.ppf costs ~100 us a call)
    return {quantile_column(p): mean + ndtri(p) * sd for p in levels}


def sort_quantiles(frame: pd.DataFrame, levels: tuple[float, ...] = QUANTILE_LEVELS) -> pd.DataFrame:
    """Make the quantile columns non-decreasing across levels in every row (no crossing)."""
    cols = [c for c in quantile_columns(levels) if c in frame]
    if cols:
        frame[cols] = np.sort(frame[cols].to_numpy(float), axis=1)
    return frame


def freq_of_season(season_length: int) -> str | None:
    """A pandas period frequency for a seasonal period: 12 -> "M", 4 -> "Q", 1 -> "Y", 52 -> "W"."""
    return {12: "M", 4: "Q", 1: "Y", 52: "W", 7: "D", 24: "h"}.get(season_length)


def complete_series(
    y: pd.Series | np.ndarray | list[float],
    freq: str | None = None,
    *,
    fill_value: float | None = 0.0,
    name: str = "series",
) -> tuple[pd.Series, int]:
    """Return the series on a complete index and the number of periods that were filled.

    statsmodels fits a series with a gap in its ``DatetimeIndex`` but then fails in ``forecast()``
    (FIELD-NOTES 2.1), so every model input goes through here first.

    Parameters
    ----------
    y
        Values [unit/period], with a ``PeriodIndex``, a ``DatetimeIndex`` or no index.
    freq
        Period frequency ("M", "Q", "Y", ...); inferred from a ``PeriodIndex`` when omitted.
    fill_value
        Value for missing periods (0.0: no bookings in a missing month). ``None`` raises instead.
    name
        Name used in error messages.

    Returns
    -------
    (Series, int)
        Float series on a complete ``PeriodIndex`` (or a ``RangeIndex`` for arrays) and the count of
        filled periods.
    """
    if not isinstance(y, pd.Series):
        arr = np.asarray(y, dtype=float).ravel()
        if np.isfinite(arr).all():
            # the common case of many plain arrays: nothing to fill or check further
            return pd.Series(arr, index=pd.RangeIndex(len(arr)), name=name, copy=False), 0
        s = pd.Series(arr, index=pd.RangeIndex(len(arr)), name=name)
    else:
        s = y.astype(float)
        idx = s.index
        if (
            isinstance(idx, pd.PeriodIndex)
            and len(idx)
            and idx.is_monotonic_increasing
            and idx.is_unique
            and int(idx.asi8[-1] - idx.asi8[0]) + 1 == len(idx)
            and np.isfinite(s.to_numpy()).all()
        ):
            # already complete, sorted and finite (every node of a hierarchy): the checks below cost
            # about a millisecond a series, seconds over the thousands of fits of a large company
            return s, 0
        if isinstance(s.index, pd.DatetimeIndex):
            f = freq or s.index.freqstr or (pd.infer_freq(s.index) if len(s.index) > 2 else None)
            if f is None:
                raise DataValidationError(
                    name, ["the DatetimeIndex has no frequency; pass freq='M' (or 'Q', 'Y')."]
                )
            f = {"MS": "M", "ME": "M", "QS": "Q", "QE": "Q", "YS": "Y", "YE": "Y", "AS": "Y"}.get(
                str(f), str(f)
            )
            s = s.copy()
            s.index = s.index.to_period(f)
            s = s.groupby(level=0).sum()
        elif isinstance(s.index, pd.PeriodIndex):
            if s.index.has_duplicates:
                raise DataValidationError(name, ["duplicate periods in the index; aggregate them first."])
            s = s.sort_index()
        elif isinstance(s.index, pd.RangeIndex) or pd.api.types.is_integer_dtype(s.index):
            s = s.sort_index()
            s.index = pd.RangeIndex(len(s))
        else:
            raise DataValidationError(
                name,
                [
                    f"index of type {type(s.index).__name__} is not supported; use a PeriodIndex (e.g. monthly)."
                ],
            )
    n_filled = 0
    if isinstance(s.index, pd.PeriodIndex) and len(s):
        full = pd.period_range(s.index.min(), s.index.max(), freq=s.index.freq)
        n_filled = len(full) - len(s)
        if n_filled:
            if fill_value is None:
                raise DataValidationError(
                    name,
                    [
                        f"{n_filled} missing period(s) between {full[0]} and {full[-1]}; fill them or pass fill_value."
                    ],
                )
            log.debug("%s: filled %d missing periods with %s", name, n_filled, fill_value)
            s = s.reindex(full, fill_value=fill_value)
    nan = s.isna()
    if nan.any():
        if fill_value is None:
            raise DataValidationError(
                name, [f"{int(nan.sum())} missing value(s); fill them or pass fill_value."]
            )
        n_filled += int(nan.sum())
        s = s.fillna(fill_value)
    if not np.isfinite(s.to_numpy()).all():
        raise DataValidationError(
            name, ["infinite values in the series; replace them with real measurements."]
        )
    return s, n_filled


def future_index(index: pd.Index, horizon: int) -> pd.Index:
    """The ``horizon`` periods that follow ``index``."""
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(index[-1] + 1, periods=horizon, freq=index.freq)
    start = int(index[-1]) + 1 if len(index) else 0
    return pd.RangeIndex(start, start + horizon)
