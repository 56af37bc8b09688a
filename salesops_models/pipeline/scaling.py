"""Multipliers of the reps' opportunity creation rates: admin-time what-if and territory change."""

from __future__ import annotations

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError, ScenarioError

RATIO_BOUNDS = (0.25, 4.0)  # a territory ratio outside these is a sign of a broken assignment, not a plan


def selling_admin_hours(
    activities: pd.DataFrame,
    rep_ids: np.ndarray,
    as_of: pd.Timestamp,
    default_admin_share: float = 0.35,
    weekly_hours: float = 40.0,
    weeks: int = 13,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean weekly selling and admin hours of each rep over the last ``weeks`` weeks [h/week].

    Reps without activity rows get ``weekly_hours * (1 - a)`` and ``weekly_hours * a``, ``a`` the
    default admin share.
    """
    sell = np.full(len(rep_ids), weekly_hours * (1.0 - default_admin_share))
    admin = np.full(len(rep_ids), weekly_hours * default_admin_share)
    if activities is None or activities.empty:
        return sell, admin
    act = activities[
        (activities["week_start"] <= pd.Timestamp(as_of))
        & (activities["week_start"] > pd.Timestamp(as_of) - pd.Timedelta(weeks=weeks))
    ]
    if act.empty:
        act = activities
    g = act.groupby(act["rep_id"].astype(str))[["selling_hours", "admin_hours"]].mean()
    g = g.reindex(list(rep_ids))
    has = g["selling_hours"].notna().to_numpy() & (g["selling_hours"].fillna(0).to_numpy() > 0)
    sell[has] = g["selling_hours"].to_numpy(float)[has]
    admin[has] = g["admin_hours"].to_numpy(float)[has]
    return sell, admin


def admin_time_scale(selling_hours: np.ndarray, admin_hours: np.ndarray, reduction: float) -> np.ndarray:
    """Creation-rate multiplier when a share of admin time becomes selling time [-].

    Notes
    -----
    :math:`m_r = (S_r + x A_r) / S_r`, with :math:`S_r, A_r` the rep's weekly selling and admin
    hours and :math:`x` the share of admin hours turned into selling time. It assumes opportunity
    creation is proportional to selling time (no saturation of the territory).
    """
    if not 0.0 <= reduction <= 1.0:
        raise ScenarioError(
            f"pipeline.admin_time_reduction: got {reduction}; it is a share of admin hours, between 0 and 1."
        )
    return (selling_hours + reduction * admin_hours) / selling_hours


def territory_scale(
    assignments: pd.DataFrame, accounts: pd.DataFrame, rep_ids: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame]:
    """Creation-rate multiplier of each rep from a new territory assignment [-].

    Notes
    -----
    :math:`m_r = \\sum_{a \\in T^{new}_r} \\text{potential}_a / \\sum_{a \\in T^{old}_r}
    \\text{potential}_a`, clipped to [0.25, 4]; 1 for a rep with no old territory or no potential
    data. It assumes creation scales with the potential a rep covers.

    Returns
    -------
    (multipliers, table)
        The table has ``rep_id, potential_old, potential_new, ratio``.
    """
    needed = {"account_id", "rep_id", "previous_rep_id"}
    missing = needed - set(assignments.columns)
    if missing:
        raise DataValidationError(
            "assignments", [f"missing column(s) {sorted(missing)}; written by the territory stage."]
        )
    if "potential" not in accounts.columns:
        ones = np.ones(len(rep_ids))
        return ones, pd.DataFrame({"rep_id": rep_ids, "ratio": ones})
    pot = accounts.set_index(accounts["account_id"].astype(str))["potential"].astype(float)
    a = assignments.assign(potential=assignments["account_id"].astype(str).map(pot).fillna(0.0).to_numpy())
    new = a.groupby(a["rep_id"].astype(str))["potential"].sum().reindex(list(rep_ids), fill_value=0.0)
    old = (
        a.groupby(a["previous_rep_id"].astype(str))["potential"].sum().reindex(list(rep_ids), fill_value=0.0)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(old.to_numpy() > 0, new.to_numpy() / old.to_numpy(), 1.0)
    ratio = np.clip(ratio, *RATIO_BOUNDS)
    table = pd.DataFrame(
        {
            "rep_id": list(rep_ids),
            "potential_old": old.to_numpy(),
            "potential_new": new.to_numpy(),
            "ratio": ratio,
        }
    )
    return ratio, table
