"""Attainment to date by rep, manager and region against the period quotas, and the risk list."""

from __future__ import annotations

import numpy as np
import pandas as pd

from salesops_models.tracking.periods import quota_to_date

LEVELS = ("rep", "manager", "region")


def attainment_to_date(
    ids: list[str],
    booked_by_month: np.ndarray,
    monthly_quota: pd.DataFrame,
    holders: pd.DataFrame,
    as_of: pd.Timestamp,
) -> dict[str, pd.DataFrame]:
    """Bookings to date against quota to date, per holder and summed per manager and region.

    Parameters
    ----------
    ids
        Holders, the rows of ``booked_by_month``.
    booked_by_month
        Credited bookings per holder and month up to ``as_of`` (holders x 12) [currency].
    monthly_quota
        Quota per holder and month after the mid-year changes (index holders, columns 1-12) [currency].
    holders
        ``rep_id, rep_name, region, manager, kind``.
    as_of
        Tracking date.

    Returns
    -------
    dict
        ``rep``, ``manager`` and ``region`` tables with ``booked_to_date``, ``quota_to_date``
        (monthly quotas up to ``as_of``, its month pro-rated by day), ``attainment_to_date``
        (booked / quota to date), ``annual_quota`` and ``share_of_annual`` (booked / annual quota)
        [currency, ratio].
    """
    to_date, annual = quota_to_date(monthly_quota, ids, as_of)
    h = holders.set_index(holders["rep_id"].astype(str)).reindex(ids)
    rep = pd.DataFrame(
        {
            "rep_id": ids,
            "rep_name": h["rep_name"].to_numpy(),
            "region": h["region"].to_numpy(),
            "manager": h["manager"].to_numpy(),
            "kind": h["kind"].to_numpy(),
            "booked_to_date": booked_by_month.sum(axis=1),
            "quota_to_date": to_date,
            "annual_quota": annual,
        }
    )
    out = {"rep": _ratios(rep)}
    for level in ("manager", "region"):
        g = (
            rep.assign(**{level: rep[level].fillna("(none)").astype(str)})
            .groupby(level, sort=True)[["booked_to_date", "quota_to_date", "annual_quota"]]
            .sum()
            .reset_index()
        )
        g.insert(1, "holders", rep.groupby(rep[level].fillna("(none)").astype(str)).size().to_numpy())
        out[level] = _ratios(g)
    return out


def _ratios(t: pd.DataFrame) -> pd.DataFrame:
    with np.errstate(invalid="ignore", divide="ignore"):
        t["attainment_to_date"] = np.where(
            t["quota_to_date"] > 0, t["booked_to_date"] / t["quota_to_date"], np.nan
        )
        t["share_of_annual"] = np.where(
            t["annual_quota"] > 0, t["booked_to_date"] / t["annual_quota"], np.nan
        )
    return t


def risk_list(
    current: pd.Series,
    plan: pd.Series,
    previous: pd.Series | None = None,
    level: str = "rep",
) -> pd.DataFrame:
    """Holders (or groups) ranked by how far their P(make quota) fell since the plan.

    Parameters
    ----------
    current
        P(make quota) now, by id [0-1].
    plan
        P(make quota) when the plan was made, by id [0-1] (NaN: no plan figure, e.g. a hire).
    previous
        P(make quota) at the previous tracking run, by id, if there is one.
    level
        ``rep`` or ``region`` (a column of the result).

    Returns
    -------
    pandas.DataFrame
        ``level, id, p_plan, p_previous, p_now, change_since_plan, change_since_previous``,
        largest fall since the plan first (ids without a plan figure last).
    """
    ids = current.index.astype(str)
    out = pd.DataFrame(
        {
            "level": level,
            "id": ids,
            "p_plan": plan.reindex(ids).to_numpy(float),
            "p_previous": (
                previous.reindex(ids) if previous is not None else pd.Series(np.nan, index=ids)
            ).to_numpy(float),
            "p_now": current.to_numpy(float),
        }
    )
    out["change_since_plan"] = out["p_now"] - out["p_plan"]
    out["change_since_previous"] = out["p_now"] - out["p_previous"]
    return out.sort_values(["change_since_plan", "id"], na_position="last", kind="stable").reset_index(
        drop=True
    )
