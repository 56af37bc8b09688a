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


def new_rep_rates(
    weekly_rate: np.ndarray,
    rep_ids: np.ndarray,
    territory: pd.DataFrame,
    hire_dates: pd.Series,
    edges: pd.DatetimeIndex,
    ramp_months: int,
) -> tuple[np.ndarray, pd.DataFrame]:
    r"""Creation rates for reps without history (planned hires) from the territory they were given.

    Parameters
    ----------
    weekly_rate
        Calibrated creation rate of each rep [deals/week]; 0 for reps without history.
    rep_ids
        The reps, in the order of ``weekly_rate``.
    territory
        The ``pipeline_territory_scaling`` table of :func:`territory_scale` (``potential_old``,
        ``potential_new`` per rep).
    hire_dates
        Hire date per rep id.
    edges
        Month edges of the simulated period (13 for a plan year).
    ramp_months
        Months of linear ramp from the hire date [months]; 0 means fully productive at once.

    Returns
    -------
    (rates, table)
        Rates with the hires filled in [deals/week], and a table of the hires (rep_id, potential,
        ramp_factor, weekly_rate).

    Notes
    -----
    A hire's rate is :math:`\lambda_r = \rho \, P_r \, \bar{u}_r` with
    :math:`\rho = \sum_e \lambda_e / \sum_e P^{old}_e` the company's creation rate per unit of
    potential over the reps with history, :math:`P_r` the potential of the hire's new territory, and
    :math:`\bar u_r` his mean productivity over the simulated months (0 before the hire date, then a
    linear ramp to 1 over ``ramp_months``). Using the mean over the period keeps the annual count
    right and shifts some creations earlier than a month-by-month ramp would.
    """
    rates = np.asarray(weekly_rate, dtype=float).copy()
    t = territory.set_index(territory["rep_id"].astype(str)).reindex(list(rep_ids))
    old = t["potential_old"].fillna(0.0).to_numpy()
    new = t["potential_new"].fillna(0.0).to_numpy()
    established = (rates > 0) & (old > 0)
    hires = (rates == 0) & (old == 0) & (new > 0)
    if not hires.any() or not established.any():
        return rates, pd.DataFrame(columns=["rep_id", "potential", "ramp_factor", "weekly_rate"])
    per_potential = rates[established].sum() / old[established].sum()
    # unknown hire dates count as long ago (fully ramped)
    hire = pd.to_datetime(hire_dates.reindex(list(rep_ids[hires]))).fillna(pd.Timestamp("1900-01-01"))
    start = edges[0]
    hired_at = (  # months from the period start to the hire date, fractional within the month
        (hire.dt.year - start.year) * 12
        + (hire.dt.month - start.month)
        + (hire.dt.day - 1) / hire.dt.days_in_month
    ).to_numpy(float)
    months_in = (np.arange(len(edges) - 1) + 0.5)[None, :] - hired_at[:, None]  # at mid-month
    ramp = np.clip(months_in / ramp_months, 0.0, 1.0) if ramp_months > 0 else (months_in >= 0).astype(float)
    factor = ramp.mean(axis=1)
    rates[hires] = per_potential * new[hires] * factor
    table = pd.DataFrame(
        {
            "rep_id": rep_ids[hires],
            "potential": new[hires],
            "ramp_factor": factor,
            "weekly_rate": rates[hires],
        }
    )
    return rates, table
