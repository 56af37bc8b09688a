"""Annual quotas split into months and quarters, and pro-rated relief for accounts that move mid-year."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError
from salesops_models.quota.allocation import round_to_unit

log = logging.getLogger(__name__)


def seasonal_profile_from_history(bookings: pd.DataFrame, min_years: int = 1) -> np.ndarray:
    """Share of a year's bookings falling in each calendar month, from history.

    Parameters
    ----------
    bookings
        Canonical bookings table (month, amount, ...).
    min_years
        Complete calendar years needed; with fewer the profile is flat.

    Returns
    -------
    numpy.ndarray
        12 shares summing to 1 (January first).

    Notes
    -----
    ``s_m = mean_y (B_ym / sum_m' B_ym')`` over complete years ``y`` (12 months with bookings):
    each year weighs the same, whatever its size.
    """
    if bookings is None or len(bookings) == 0:
        return np.full(12, 1 / 12)
    bk = bookings.assign(month=pd.to_datetime(bookings["month"]))
    monthly = bk.groupby(bk["month"].dt.to_period("M"))["amount"].sum()
    df = pd.DataFrame({"y": monthly.index.year, "m": monthly.index.month, "v": monthly.to_numpy(float)})
    table = df.pivot_table(index="y", columns="m", values="v", aggfunc="sum")
    complete = table.dropna()
    complete = complete[(complete.sum(axis=1) > 0) & (complete.shape[1] == 12)]
    if len(complete) < min_years:
        log.info("quota: fewer than %d complete years of bookings, flat seasonality", min_years)
        return np.full(12, 1 / 12)
    shares = complete.div(complete.sum(axis=1), axis=0).mean(axis=0)
    return shares.to_numpy(float) / shares.sum()


def seasonal_profile_from_forecast(forecast: pd.DataFrame, level: str | None = None) -> np.ndarray:
    """Monthly profile from the forecast's mean (rows of one level, e.g. the company total).

    Parameters
    ----------
    forecast
        Forecast rows with ``month`` and ``mean`` [currency/month]; with ``level`` given, only the
        rows of that level are used.

    Returns
    -------
    numpy.ndarray
        12 shares of the plan year summing to 1.
    """
    f = forecast[forecast["level"] == level] if level is not None else forecast
    if f.empty:
        raise DataValidationError(
            "forecast", [f"no rows with level == {level!r}; set quota.forecast_company_level."]
        )
    by_month = f.groupby(pd.to_datetime(f["month"]).dt.month)["mean"].sum().reindex(range(1, 13)).fillna(0.0)
    total = float(by_month.sum())
    return by_month.to_numpy(float) / total if total > 0 else np.full(12, 1 / 12)


def remaining_share(effective: pd.Timestamp, profile: Sequence[float]) -> float:
    """Share of the year's seasonal bookings from ``effective`` (inclusive) to year end.

    Notes
    -----
    ``sum_{m > m_e} s_m + s_{m_e} (D_{m_e} - d_e + 1) / D_{m_e}`` with ``D`` the days of the month
    and ``d_e`` the effective day.
    """
    s = np.asarray(profile, float)
    eff = pd.Timestamp(effective)
    m = eff.month
    days = eff.days_in_month
    return float(s[m:].sum() + s[m - 1] * (days - eff.day + 1) / days)


def quota_relief(
    moves: pd.DataFrame,
    accounts: pd.DataFrame,
    owner: pd.Series,
    quotas: pd.Series,
    profile: Sequence[float],
    plan_year: int,
) -> pd.DataFrame:
    """Pro-rated quota relief for accounts that change owner during the plan year.

    Parameters
    ----------
    moves
        Columns account_id, to_rep_id, effective_date.
    accounts
        Canonical accounts (account_id, potential, revenue_last_year).
    owner
        Owner rep_id per account_id at the start of the plan year.
    quotas
        Annual quota per rep [currency/yr].
    profile
        Monthly seasonal shares (12, summing to 1).
    plan_year
        The plan year; effective dates must fall in it.

    Returns
    -------
    pandas.DataFrame
        account_id, from_rep_id, to_rep_id, effective_date, account_quota [currency/yr],
        remaining_share [0-1], relief [currency] (taken from the old owner and given to the new one).

    Notes
    -----
    The account carries the share of its owner's quota that its potential has in the owner's
    territory, ``a = Q_from potential_a / sum_{a' of from} potential_a'`` (last year's revenue when
    the territory has no potential); relief ``= a x remaining_share(effective_date)``.
    """
    acc = accounts.set_index("account_id")
    pot = pd.to_numeric(acc["potential"], errors="coerce").fillna(0.0)
    rev = pd.to_numeric(
        acc.get("revenue_last_year", pd.Series(0.0, index=acc.index)), errors="coerce"
    ).fillna(0.0)
    own = owner.reindex(acc.index)
    rows, problems = [], []
    for i, mv in moves.reset_index(drop=True).iterrows():
        a, to, eff = str(mv["account_id"]), str(mv["to_rep_id"]), pd.Timestamp(mv["effective_date"])
        if a not in acc.index:
            problems.append(f"move {i + 1}: account_id {a!r} is not in the accounts table.")
            continue
        if to not in quotas.index:
            problems.append(f"move {i + 1}: to_rep_id {to!r} has no quota (not in the reps table).")
            continue
        if eff.year != plan_year:
            problems.append(f"move {i + 1}: effective_date {eff.date()} is not in the plan year {plan_year}.")
            continue
        frm = own.get(a)
        if pd.isna(frm) or frm not in quotas.index:
            problems.append(f"move {i + 1}: account {a!r} has no owner with a quota; nothing to relieve.")
            continue
        if frm == to:
            problems.append(f"move {i + 1}: account {a!r} already belongs to {to!r}.")
            continue
        mine = own == frm
        basis_col = pot if pot[mine].sum() > 0 else rev
        denom = float(basis_col[mine].sum())
        value = float(quotas[frm]) * float(basis_col[a]) / denom if denom > 0 else 0.0
        share = remaining_share(eff, profile)
        rows.append((a, frm, to, eff, value, share, value * share))
    if problems:
        raise DataValidationError("quota.account_moves", problems)
    return pd.DataFrame(
        rows,
        columns=[
            "account_id",
            "from_rep_id",
            "to_rep_id",
            "effective_date",
            "account_quota",
            "remaining_share",
            "relief",
        ],
    )


def split_by_period(
    quotas: pd.Series,
    profile: Sequence[float],
    plan_year: int,
    *,
    ramp: pd.DataFrame | None = None,
    relief: pd.DataFrame | None = None,
    unit: float = 1.0,
) -> pd.DataFrame:
    """Monthly and quarterly quotas per rep that add up exactly to the annual quota.

    Parameters
    ----------
    quotas
        Annual quota per rep [currency/yr] (before relief).
    profile
        Monthly seasonal shares (12, summing to 1).
    plan_year
        The plan year.
    ramp
        Productivity per rep and plan month (columns 1..12) [0-1]; a ramping rep's months follow
        ``profile x ramp``.
    relief
        Output of :func:`quota_relief`; its amounts move from the old to the new owner in the
        months from the effective date on.
    unit
        Monthly quotas are multiples of this (one month carries the sub-unit rest) [currency].

    Returns
    -------
    pandas.DataFrame
        rep_id, period (``YYYY-MM`` or ``YYYY-Qn``), period_type (month/quarter), quota [currency].

    Notes
    -----
    ``Q_rm = Q_r w_rm / sum_m w_rm`` with ``w_rm = s_m ramp_rm``; relief ``R`` effective on day ``d``
    of month ``e`` is spread over months ``m >= e`` in proportion to ``s_m`` (month e pro-rated by day).
    Quarters are sums of their months.
    """
    s = np.asarray(profile, float)
    reps = quotas.index
    w = np.tile(s, (len(reps), 1))
    if ramp is not None:
        w = w * ramp.reindex(reps)[list(range(1, 13))].to_numpy(float)
    row_sum = w.sum(axis=1, keepdims=True)
    w = np.where(row_sum > 0, w / np.where(row_sum > 0, row_sum, 1), 1 / 12)
    monthly = pd.DataFrame(w * quotas.to_numpy(float)[:, None], index=reps, columns=range(1, 13))
    annual = quotas.astype(float).copy()
    if relief is not None and len(relief):
        for _, rl in relief.iterrows():
            eff = pd.Timestamp(rl["effective_date"])
            part = np.zeros(12)
            part[eff.month :] = s[eff.month :]
            part[eff.month - 1] = s[eff.month - 1] * (eff.days_in_month - eff.day + 1) / eff.days_in_month
            part = part / part.sum() * float(rl["relief"]) if part.sum() > 0 else part
            monthly.loc[rl["from_rep_id"]] -= part
            monthly.loc[rl["to_rep_id"]] += part
            annual[rl["from_rep_id"]] -= float(rl["relief"])
            annual[rl["to_rep_id"]] += float(rl["relief"])
    rows = []
    for r in reps:
        vals = monthly.loc[r].clip(lower=0.0)
        rounded, _ = round_to_unit(vals, float(annual[r]), unit) if annual[r] > 0 else (vals * 0.0, None)
        for m in range(1, 13):
            rows.append((r, f"{plan_year}-{m:02d}", "month", float(rounded[m])))
        for qn in range(4):
            rows.append(
                (
                    r,
                    f"{plan_year}-Q{qn + 1}",
                    "quarter",
                    float(rounded[[3 * qn + 1, 3 * qn + 2, 3 * qn + 3]].sum()),
                )
            )
    return pd.DataFrame(rows, columns=["rep_id", "period", "period_type", "quota"])
