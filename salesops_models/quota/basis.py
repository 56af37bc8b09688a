"""The facts a quota rests on, one row per rep: potential, history, forecast, tenure and ramp.

:func:`rep_basis` turns the canonical tables into the table every quota method reads, so that the
methods themselves never look at accounts or bookings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError

log = logging.getLogger(__name__)

#: reps whose prior-year ramp factor is below this get no growth bounds (too little history) [0-1]
MIN_PRIOR_RAMP = 0.25

BASIS_COLUMNS = (
    "region",
    "manager",
    "capacity",
    "potential",
    "prior_year",
    "ttm",
    "forecast",
    "tenure_months",
    "ramp_factor",
    "full_history",
)


def ramp_by_month(hire_date: pd.Series, plan_year: int, ramp: Sequence[float]) -> pd.DataFrame:
    """Productivity of each rep in each month of the plan year from his month of tenure.

    Parameters
    ----------
    hire_date
        Hire date per rep (index: rep_id); NaT means hired long ago (fully ramped).
    plan_year
        The planned calendar year.
    ramp
        Productivity in tenure months 1, 2, ... [0-1]; the last value holds thereafter.

    Returns
    -------
    pandas.DataFrame
        Index rep_id, columns 1..12 (plan month), values in [0, 1].

    Notes
    -----
    The month of hire is tenure month 1: ``k = 12 (y_m - y_h) + (m_m - m_h) + 1``. Months before
    the hire (``k <= 0``) count 0; ``ramp(k) = ramp[k-1]`` for ``k <= len(ramp)``, else ``ramp[-1]``.
    """
    ramp_arr = np.asarray(ramp, dtype=float)
    hire = pd.to_datetime(hire_date)
    months = np.arange(1, 13)
    hy = hire.dt.year.to_numpy(dtype=float)
    hm = hire.dt.month.to_numpy(dtype=float)
    k = 12 * (plan_year - hy)[:, None] + (months[None, :] - hm[:, None]) + 1
    k = np.where(np.isnan(k), 10_000, k).astype(int)
    idx = np.clip(k - 1, 0, len(ramp_arr) - 1)
    values = np.where(k <= 0, 0.0, ramp_arr[idx])
    return pd.DataFrame(values, index=hire_date.index, columns=months)


def rep_basis(
    reps: pd.DataFrame,
    accounts: pd.DataFrame,
    bookings: pd.DataFrame,
    plan_year: int,
    *,
    ramp: Sequence[float] = (1.0,),
    as_of: pd.Timestamp | None = None,
    owner: pd.Series | None = None,
    rep_forecast: pd.Series | None = None,
    rebase_history: bool = True,
) -> pd.DataFrame:
    """Build the per-rep basis of quota setting.

    Parameters
    ----------
    reps, accounts, bookings
        Canonical tables (see :mod:`salesops_models.data.schema`).
    plan_year
        The planned calendar year; "prior year" is ``plan_year - 1``.
    ramp
        Productivity by month of tenure [0-1] (see :func:`ramp_by_month`).
    as_of
        End of the trailing twelve months; default: the last month with bookings.
    owner
        Owner rep_id per account_id (e.g. the territory stage's assignment); default
        ``accounts.owner_rep_id``.
    rep_forecast
        Plan-year forecast per rep [currency/yr]; default: the trailing twelve months (naive).
    rebase_history
        With ``owner`` given, move each re-assigned account's ``revenue_last_year`` from its old
        owner's prior-year and trailing bookings to its new owner's (history follows the accounts).

    Returns
    -------
    pandas.DataFrame
        Index rep_id; columns region, manager, capacity [FTE], potential [currency/yr],
        prior_year [currency], ttm [currency], forecast [currency/yr], tenure_months (at the
        start of the plan year), ramp_factor [0-1], full_history (bool: employed all of the prior
        year and booked something), history_rebased [currency] (history moved in by re-assigned
        accounts, negative when moved out), prior_year_ramp [0-1], has_growth_bounds (bool),
        growth_reference [currency/yr] (what the growth bounds apply to), plus ``ramp_m1..ramp_m12``.

    Notes
    -----
    ``ramp_factor_r = (1/12) sum_m ramp(k_rm)``: the share of a full year's productivity the rep
    brings in the plan year. Growth reference (reps with prior-year bookings and a prior-year
    ramp factor of at least 0.25): ``G_r = PY_r / rho_r^{prior} x rho_r``. Re-based history:
    ``PY_r' = max(0, PY_r + sum_{a moved to r} rev_a - sum_{a moved from r} rev_a)``.
    """
    reps = reps.set_index("rep_id", drop=False)
    rep_ids = reps.index.astype(str)
    out = pd.DataFrame(index=pd.Index(rep_ids, name="rep_id"))
    for col in ("region", "manager"):
        out[col] = reps[col].to_numpy() if col in reps else pd.NA
    cap = reps["capacity"] if "capacity" in reps else pd.Series(1.0, index=reps.index)
    out["capacity"] = pd.to_numeric(cap, errors="coerce").fillna(1.0).to_numpy()

    acc_owner = owner if owner is not None else accounts.set_index("account_id")["owner_rep_id"]
    pot = pd.to_numeric(accounts.set_index("account_id")["potential"], errors="coerce").fillna(0.0)
    pot_by_rep = pot.groupby(acc_owner.reindex(pot.index)).sum()
    out["potential"] = pot_by_rep.reindex(out.index).fillna(0.0).to_numpy()

    bk = bookings.copy()
    if len(bk):
        bk["month"] = pd.to_datetime(bk["month"]).dt.to_period("M").dt.to_timestamp()
        bk["amount"] = pd.to_numeric(bk["amount"], errors="coerce").fillna(0.0)
        py = bk[bk["month"].dt.year == plan_year - 1].groupby("rep_id")["amount"].sum()
        end = pd.Timestamp(as_of).to_period("M").to_timestamp() if as_of is not None else bk["month"].max()
        start = end - pd.DateOffset(months=11)
        ttm = bk[(bk["month"] >= start) & (bk["month"] <= end)].groupby("rep_id")["amount"].sum()
    else:
        py = ttm = pd.Series(dtype=float)
    out["prior_year"] = py.reindex(out.index).fillna(0.0).to_numpy()
    out["ttm"] = ttm.reindex(out.index).fillna(0.0).to_numpy()
    out["history_rebased"] = 0.0
    if owner is not None and rebase_history and "revenue_last_year" in accounts:
        # history follows the accounts: bookings of accounts that changed owner move with them
        acc = accounts.set_index("account_id")
        old = acc["owner_rep_id"].astype("string")
        new = owner.reindex(acc.index).astype("string")
        rev = pd.to_numeric(acc["revenue_last_year"], errors="coerce").fillna(0.0)
        moved = (old != new).fillna(False) & old.notna() & new.notna()
        delta = rev[moved].groupby(new[moved]).sum().sub(rev[moved].groupby(old[moved]).sum(), fill_value=0.0)
        d = delta.reindex(out.index).fillna(0.0).to_numpy()
        out["history_rebased"] = d
        out["prior_year"] = np.maximum(out["prior_year"].to_numpy() + d, 0.0)
        out["ttm"] = np.maximum(out["ttm"].to_numpy() + d, 0.0)
    if rep_forecast is not None:
        out["forecast"] = rep_forecast.reindex(out.index).fillna(0.0).to_numpy()
    else:
        out["forecast"] = out["ttm"]

    hire = pd.to_datetime(reps["hire_date"]) if "hire_date" in reps else pd.Series(pd.NaT, index=reps.index)
    hire = pd.Series(hire.to_numpy(), index=out.index, dtype="datetime64[ns]")
    start_plan = pd.Timestamp(year=plan_year, month=1, day=1)
    tenure = (start_plan.year - hire.dt.year) * 12 + (start_plan.month - hire.dt.month)
    out["tenure_months"] = tenure.fillna(10_000).astype(int).to_numpy()
    rm = ramp_by_month(hire, plan_year, ramp)
    out["ramp_factor"] = rm.mean(axis=1).to_numpy()
    for m in range(1, 13):
        out[f"ramp_m{m}"] = rm[m].to_numpy()
    prior_start = pd.Timestamp(year=plan_year - 1, month=1, day=1)
    out["full_history"] = ((hire.isna() | (hire <= prior_start)) & (out["prior_year"] > 0)).to_numpy()
    # growth bounds compare the quota with what last year's bookings are worth at this year's ramp:
    # last year's bookings over last year's ramp factor (partial year and ramp undone) x this year's
    prior_ramp = ramp_by_month(hire, plan_year - 1, ramp).mean(axis=1).to_numpy()
    out["prior_year_ramp"] = prior_ramp
    bounded = (out["prior_year"].to_numpy() > 0) & (prior_ramp >= MIN_PRIOR_RAMP)
    out["has_growth_bounds"] = bounded
    out["growth_reference"] = np.where(
        bounded,
        out["prior_year"].to_numpy() / np.maximum(prior_ramp, 1e-9) * out["ramp_factor"].to_numpy(),
        0.0,
    )
    return out


def check_basis(basis: pd.DataFrame, weights: dict[str, float]) -> None:
    """Raise when a rep's blended fair share would be zero for lack of any data.

    Raises
    ------
    DataValidationError
        Naming each rep with no history and no potential, and the fixes.
    """
    used = [k for k, w in weights.items() if w > 0]
    empty = basis.index[(basis[used].sum(axis=1) <= 0).to_numpy()] if used else basis.index
    if len(empty):
        ids = ", ".join(map(str, empty[:8])) + (" ..." if len(empty) > 8 else "")
        raise DataValidationError(
            "quota basis (reps, accounts, bookings)",
            [
                f"rep(s) {ids} have no history and no potential: every weighted field "
                f"({', '.join(used)}) is 0, so their fair share would be 0. Fix: give them accounts "
                "(accounts.owner_rep_id or the territory stage) so that 'potential' is positive, or put "
                "weight on a field they have, or use quota.method 'even', or remove them from the reps table."
            ],
        )


def annual_cv_from_history(
    bookings: pd.DataFrame,
    rep_ids: pd.Index,
    *,
    months: int = 24,
    min_months: int = 12,
    default: float = 0.25,
    clip: tuple[float, float] = (0.05, 1.5),
) -> pd.Series:
    """Coefficient of variation of each rep's annual bookings, from his monthly bookings.

    Parameters
    ----------
    bookings
        Canonical bookings table.
    rep_ids
        Reps wanted.
    months
        Trailing months used (ending at the last month with bookings) [month].
    min_months
        Reps with fewer months in the window get ``default`` [month].
    default
        Fallback coefficient of variation [share].
    clip
        Lower and upper limits [share].

    Returns
    -------
    pandas.Series
        Index rep_id, annual coefficient of variation [share].

    Notes
    -----
    With independent months, ``cv_year = (s_month / m_month) / sqrt(12)``, where ``s_month`` and
    ``m_month`` are the standard deviation and mean of the rep's monthly bookings (months without
    bookings count as 0 once the rep has started booking).
    """
    out = pd.Series(default, index=rep_ids, dtype=float)
    if bookings is None or len(bookings) == 0:
        return out
    bk = bookings.assign(month=pd.to_datetime(bookings["month"]).dt.to_period("M"))
    end = bk["month"].max()
    bk = bk[bk["month"] > end - months]
    wide = bk.pivot_table(index="month", columns="rep_id", values="amount", aggfunc="sum")
    wide = wide.reindex(pd.period_range(end - months + 1, end, freq="M"))
    for r in rep_ids:
        if r not in wide:
            continue
        s = wide[r]
        first = s.first_valid_index()
        if first is None:
            continue
        s = s.loc[first:].fillna(0.0)
        if len(s) >= min_months and s.mean() > 0:
            out[r] = float(np.clip(s.std(ddof=1) / s.mean() / np.sqrt(12), *clip))
    return out


def bookings_growth(bookings: pd.DataFrame) -> float | None:
    """Year-on-year growth of company bookings over the last two complete calendar years [share].

    Returns None with fewer than two complete years (12 months with bookings each).

    Notes
    -----
    ``g = B_{y} / B_{y-1} - 1`` with ``y`` the last complete year.
    """
    if bookings is None or len(bookings) == 0:
        return None
    month = pd.to_datetime(bookings["month"]).dt.to_period("M")
    by_month = bookings.groupby(month)["amount"].sum()
    years = pd.Series(by_month.index.year).value_counts()
    complete = sorted(y for y, n in years.items() if n == 12)
    if len(complete) < 2 or complete[-1] - complete[-2] != 1:
        return None
    total = by_month.groupby(by_month.index.year).sum()
    prev, last = float(total[complete[-2]]), float(total[complete[-1]])
    return last / prev - 1.0 if prev > 0 else None
