"""Day-exact shares of the months of a year: what is left from a date on, what has elapsed by it."""

from __future__ import annotations

import numpy as np
import pandas as pd


def month_fractions(effective: pd.Timestamp) -> np.ndarray:
    """Share of each month of ``effective``'s year from ``effective`` on (12 values in [0, 1]).

    Notes
    -----
    0 for the months before, ``(D - d + 1) / D`` for the month of the date (``D`` its days, ``d``
    the day), 1 after: the weights of :func:`salesops_models.quota.remaining_share`.
    """
    eff = pd.Timestamp(effective)
    f = np.zeros(12)
    f[eff.month :] = 1.0
    f[eff.month - 1] = (eff.days_in_month - eff.day + 1) / eff.days_in_month
    return f


def elapsed_month_fractions(as_of: pd.Timestamp) -> np.ndarray:
    """Share of each month of ``as_of``'s year elapsed by the end of ``as_of`` (12 values in [0, 1])."""
    day = pd.Timestamp(as_of)
    f = np.zeros(12)
    f[: day.month - 1] = 1.0
    f[day.month - 1] = day.day / day.days_in_month
    return f


def quota_to_date(
    monthly_quota: pd.DataFrame, ids: list[str], as_of: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray]:
    """Quota to date and annual quota of each holder in ``ids`` [currency].

    ``monthly_quota`` has one row per holder and the months 1-12 as columns; the month of
    ``as_of`` counts pro-rated by day (holders missing from it have no quota).
    """
    q = monthly_quota.reindex(index=ids, columns=range(1, 13)).fillna(0.0).to_numpy(float)
    return q @ elapsed_month_fractions(as_of), q.sum(axis=1)
