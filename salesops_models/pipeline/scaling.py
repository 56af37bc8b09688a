r"""Opportunity creation under a plan: selling hours against the workload of the accounts covered.

The calibrated creation rate of a rep (:func:`~salesops_models.pipeline.calibration.calibrate_pipeline`)
is what his territory produced under his selling hours. A plan changes both: territories move
(accounts change owner, reps are added) and hours change (admin time handed back to selling). The
**creation response** says how creation follows:

.. math:: \lambda_r = \kappa \, P_r \, H_r^{\alpha} \, W_r^{-\gamma}

with :math:`P_r` the potential and :math:`W_r` the selling workload of the accounts rep :math:`r`
covers [h/yr], :math:`H_r` his selling hours [h/week]. Coverage is :math:`c_r = 52 H_r / W_r`;
:math:`\alpha = \gamma = \beta` is the pure coverage model :math:`\lambda = \kappa P c^{\beta}`,
and :math:`0 \le \beta < 1` gives diminishing returns: a rep with twice the hours per account
creates less than twice the deals. :func:`calibrate_creation_response` estimates
:math:`\alpha, \gamma` from history, across reps and quarters (a Poisson regression of deals
created on log hours and log workload, with the potential as exposure and one intercept per
quarter). :func:`plan_creation_rates` then carries each account's historical creation to its owner
under the plan:

.. math:: \lambda^{plan}_r = u_r \sum_{a \in T_r} \kappa_{o(a)} w_a
          \left(\frac{H^{plan}_r}{H_{o(a)}}\right)^{\alpha}
          \left(\frac{W^{plan}_r}{W_{o(a)}}\right)^{-\gamma}

where :math:`o(a)` is the account's owner in history, :math:`\kappa_o = \lambda_o / \sum_{a \in
T_o} w_a` his creation per unit of account weight :math:`w_a` (the potential), and :math:`u_r` the
ramp of a rep without history: his effective hours are 0 before his hire date, then ramp linearly
to his full hours, and :math:`u_r` is the year's mean of :math:`\text{ramp}^{\alpha}`. A hire therefore brings
his own hours: the accounts he takes are covered better than before (and the reps who gave them
cover the rest better), which is what adds deals; his ramp is what costs them in his first months.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salesops_models.errors import ScenarioError

log = logging.getLogger(__name__)

#: a per-account change of coverage factor outside these is a sign of a broken plan, not a forecast
FACTOR_BOUNDS = (0.25, 4.0)
#: fewer reps than this cannot tell a territory's workload from everything else that differs between
#: territories (the workload of a rep's territory varies across reps only)
MIN_REPS = 12
#: weeks in a year, to put weekly selling hours and yearly workload hours on one scale
WEEKS_PER_YEAR = 52.0


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
    """Selling hours after a share of admin time becomes selling time, over those before [-].

    Notes
    -----
    :math:`m_r = (S_r + x A_r) / S_r`, with :math:`S_r, A_r` the rep's weekly selling and admin
    hours and :math:`x` the share of admin hours turned into selling time. Creation follows
    :math:`m_r^{\\alpha}` (:func:`plan_creation_rates`); :math:`\\alpha = 1` is proportional.
    """
    if not 0.0 <= reduction <= 1.0:
        raise ScenarioError(
            f"pipeline.admin_time_reduction: got {reduction}; it is a share of admin hours, between 0 and 1."
        )
    return (selling_hours + reduction * admin_hours) / selling_hours


# ------------------------------------------------------------------------------------------------
# the creation response, calibrated from history
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreationResponse:
    """Elasticities of opportunity creation to selling hours and to territory workload.

    Attributes
    ----------
    hours_elasticity
        :math:`\\alpha` [-], in [0, 1].
    workload_elasticity
        :math:`\\gamma` [-], in [0, 1].
    source
        'calibrated' (estimated from history), 'scenario' (given) or 'default' (too little history:
        :math:`\\alpha = 1, \\gamma = 0`, creation proportional to hours and potential).
    estimates
        The regression behind a calibrated response: one row per term (``term, estimate, se``) and
        ``n_obs``, ``n_reps`` in ``attrs``; empty otherwise.
    """

    hours_elasticity: float = 1.0
    workload_elasticity: float = 0.0
    source: str = "default"
    estimates: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)

    def summary(self) -> dict[str, float | str | int]:
        out: dict[str, float | str | int] = {
            "hours_elasticity": self.hours_elasticity,
            "workload_elasticity": self.workload_elasticity,
            "response_source": self.source,
        }
        if not self.estimates.empty:
            est = self.estimates.set_index("term")
            out["hours_elasticity_estimate"] = float(est.loc["log_hours", "estimate"])
            out["hours_elasticity_se"] = float(est.loc["log_hours", "se"])
            out["workload_elasticity_estimate"] = float(est.loc["log_workload", "estimate"])
            out["workload_elasticity_se"] = float(est.loc["log_workload", "se"])
            out["response_rep_quarters"] = int(self.estimates.attrs.get("n_obs", 0))
        return out


def territory_weights(accounts: pd.DataFrame, column: str, fallback: float = 1.0) -> pd.Series:
    """Per-account weight of a column (index ``account_id``); missing or absent column: ``fallback``.

    With ``fallback = 1`` an export without the column counts accounts instead.
    """
    ids = accounts["account_id"].astype(str).to_numpy()
    if column in accounts and pd.to_numeric(accounts[column], errors="coerce").fillna(0).sum() > 0:
        return pd.Series(pd.to_numeric(accounts[column], errors="coerce").fillna(0.0).to_numpy(), index=ids)
    return pd.Series(fallback, index=ids, dtype=float)


def calibrate_creation_response(
    opportunities: pd.DataFrame,
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    activities: pd.DataFrame,
    as_of: pd.Timestamp | str,
    *,
    quarters: int = 8,
    min_rep_quarters: int = 24,
    min_tenure_months: int = 6,
    prior_sd: float = 0.5,
) -> CreationResponse:
    r"""Estimate the creation response from history, across reps and quarters.

    Parameters
    ----------
    opportunities, accounts, reps, activities
        Canonical tables; each rep's territory is the accounts he owns (``owner_rep_id``), his hours
        the ``selling_hours`` of the activities table.
    as_of
        Snapshot date; the last ``quarters`` complete calendar quarters before it are used.
    quarters
        Quarters of history [quarters].
    min_rep_quarters
        Fewer usable rep-quarters than this returns the default response [rep-quarters].
    min_tenure_months
        Rep-quarters starting before this tenure are left out (a ramping rep creates less for
        reasons other than hours) [months].
    prior_sd
        Standard deviation of the prior around the default response (:math:`\alpha = 1`,
        :math:`\gamma = 0`) [-]: the estimates are precision-weighted towards it.

    Returns
    -------
    CreationResponse
        ``source='calibrated'`` with the posterior elasticities clipped to [0, 1] (the raw
        estimates, standard errors, prior and posterior in ``estimates``), or the default response
        when the data do not allow a regression.

    Notes
    -----
    Quasi-Poisson regression of deals created :math:`n_{rq}` by rep :math:`r` in quarter :math:`q`:

    .. math:: \log E[n_{rq}] = \delta_q + \log P_r + \alpha \log H_{rq} - \gamma \log W_r

    (:math:`\delta_q` one intercept per quarter: trend and seasonality; :math:`P_r` the territory's
    potential as exposure, the account count when the export has none; :math:`W_r` its workload,
    the account count when absent; :math:`H_{rq}` mean weekly selling hours). The territory is
    today's, taken as the rep's territory over the window. Standard errors are clustered by rep
    (a rep's quarters are not independent draws), and fewer than :data:`MIN_REPS` reps give the
    default response. With :math:`\alpha = \gamma` this is the coverage model
    :math:`\lambda \propto P (H/W)^\beta`. Each estimate :math:`\hat\theta` (standard error
    :math:`s`) is combined with the default :math:`\theta_0` as
    :math:`(\hat\theta/s^2 + \theta_0/\tau^2) / (1/s^2 + 1/\tau^2)`, :math:`\tau` = ``prior_sd``.
    """
    import statsmodels.api as sm

    as_of = pd.Timestamp(as_of)
    default = CreationResponse()
    if activities is None or activities.empty or "owner_rep_id" not in accounts:
        log.info("creation response: no activities or account owners; default response")
        return default
    owners = accounts["owner_rep_id"].astype("string")
    pot = territory_weights(accounts, "potential")
    work = territory_weights(accounts, "workload_hours")
    P = pot.groupby(owners.to_numpy()).sum()
    W = work.groupby(owners.to_numpy()).sum()
    last = (as_of + pd.Timedelta(days=1)).to_period("Q") - 1  # last quarter complete on as_of
    qs = pd.period_range(last - quarters + 1, last, freq="Q")
    act = activities.assign(
        q=pd.to_datetime(activities["week_start"]).dt.to_period("Q"), rep_id=activities["rep_id"].astype(str)
    )
    act = act[act["q"].isin(qs)]
    H = act.groupby(["rep_id", "q"])["selling_hours"].mean()
    opp = opportunities.dropna(subset=["created_date"])
    created = opp.assign(
        q=pd.to_datetime(opp["created_date"]).dt.to_period("Q"), rep_id=opp["rep_id"].astype(str)
    )
    n = created[created["q"].isin(qs)].groupby(["rep_id", "q"]).size()
    panel = pd.DataFrame({"H": H}).join(n.rename("n")).fillna({"n": 0.0}).reset_index()
    panel["P"] = panel["rep_id"].map(P)
    panel["W"] = panel["rep_id"].map(W)
    hire = (
        pd.to_datetime(reps.set_index(reps["rep_id"].astype(str))["hire_date"])
        if "hire_date" in reps
        else None
    )
    if hire is not None:
        start = panel["q"].map(lambda p: p.start_time)
        tenure_ok = panel["rep_id"].map(hire).isna() | (
            panel["rep_id"].map(hire) <= start - pd.DateOffset(months=min_tenure_months)
        )
        panel = panel[tenure_ok.to_numpy()]
    panel = panel[(panel["H"] > 0) & (panel["P"] > 0) & (panel["W"] > 0)].dropna()
    if len(panel) < min_rep_quarters or panel["rep_id"].nunique() < MIN_REPS:
        log.info(
            "creation response: %d usable rep-quarters of %d reps (needs %d and %d); default response",
            len(panel),
            panel["rep_id"].nunique(),
            min_rep_quarters,
            MIN_REPS,
        )
        return default
    X = pd.get_dummies(panel["q"].astype(str), dtype=float)
    X["log_hours"] = np.log(panel["H"].to_numpy(float))
    X["log_workload"] = np.log(panel["W"].to_numpy(float))
    try:
        fit = sm.GLM(
            panel["n"].to_numpy(float),
            X.to_numpy(float),
            family=sm.families.Poisson(),
            offset=np.log(panel["P"].to_numpy(float)),
        ).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(panel["rep_id"])[0]})
    except (ValueError, np.linalg.LinAlgError) as exc:  # e.g. a singular design: no variation in hours
        log.warning("creation response: regression failed (%s); default response", exc)
        return default
    params = pd.Series(fit.params, index=X.columns)
    bse = pd.Series(fit.bse, index=X.columns)
    if not np.all(np.isfinite(params[["log_hours", "log_workload"]])):
        return default
    raw = np.array([float(params["log_hours"]), -float(params["log_workload"])])
    se = np.array([float(bse["log_hours"]), float(bse["log_workload"])])
    prior = np.array([default.hours_elasticity, default.workload_elasticity])
    # normal-normal update towards the default response: a short or noisy history moves it a little,
    # a long one decides
    post = (raw / se**2 + prior / prior_sd**2) / (1 / se**2 + 1 / prior_sd**2)
    est = pd.DataFrame(
        {"term": ["log_hours", "log_workload"], "estimate": raw, "se": se, "prior": prior, "posterior": post}
    )
    est.attrs.update(n_obs=len(panel), n_reps=int(panel["rep_id"].nunique()), dispersion=float(fit.scale))
    log.info(
        "creation response: hours elasticity %.3f (se %.3f) -> %.3f, workload elasticity %.3f (se %.3f) -> %.3f, "
        "%d rep-quarters",
        raw[0],
        se[0],
        post[0],
        raw[1],
        se[1],
        post[1],
        len(panel),
    )
    return CreationResponse(
        float(np.clip(post[0], 0.0, 1.0)), float(np.clip(post[1], 0.0, 1.0)), "calibrated", est
    )


# ------------------------------------------------------------------------------------------------
# plan-year creation rates
# ------------------------------------------------------------------------------------------------


def ramp_factors(
    hire_dates: pd.Series, edges: pd.DatetimeIndex, ramp_months: int, hours_elasticity: float = 1.0
) -> pd.Series:
    """Mean creation of each rep over the periods ``edges``, as a share of a ramped rep's [0-1].

    A rep's effective selling hours are 0 before his hire date, then ramp linearly to his full hours
    over ``ramp_months`` (evaluated at mid-month); creation follows effective hours with the hours
    elasticity, ``ramp^alpha``. An unknown hire date counts as long ago (1). Using the mean over
    the year keeps the annual count right and shifts some creations earlier than a month-by-month
    ramp would.
    """
    hire = pd.to_datetime(hire_dates).fillna(pd.Timestamp("1900-01-01"))
    start = edges[0]
    hired_at = (  # months from the period start to the hire date, fractional within the month
        (hire.dt.year - start.year) * 12
        + (hire.dt.month - start.month)
        + (hire.dt.day - 1) / hire.dt.days_in_month
    ).to_numpy(float)
    months_in = (np.arange(len(edges) - 1) + 0.5)[None, :] - hired_at[:, None]
    ramp = np.clip(months_in / ramp_months, 0.0, 1.0) if ramp_months > 0 else (months_in >= 0).astype(float)
    effect = np.where(ramp > 0, ramp ** float(hours_elasticity), 0.0)
    return pd.Series(effect.mean(axis=1), index=hire_dates.index)


@dataclass
class CreationPlan:
    """Creation rates of the plan's reps and how they were built.

    Attributes
    ----------
    rates
        Weekly creation rate per rep of the roster [deals/week] (roster order).
    table
        Per rep: ``rep_id, rate_history, rate_plan, source`` ('history': calibrated rep;
        'hire': no history, ramped from his hire date), ``potential_before/after``,
        ``workload_before/after`` [h/yr], ``hours_before/after`` [h/week], ``coverage_before/after``
        (yearly selling hours over workload hours) and ``ramp_factor``.
    clipped_accounts
        Accounts whose coverage factor hit :data:`FACTOR_BOUNDS`.
    """

    rates: pd.Series
    table: pd.DataFrame
    clipped_accounts: int = 0


def plan_creation_rates(
    rates: pd.Series,
    accounts: pd.DataFrame,
    roster: pd.DataFrame,
    hours_before: pd.Series,
    hours_after: pd.Series,
    response: CreationResponse,
    edges: pd.DatetimeIndex,
    ramp_months: int,
    created: pd.DataFrame | None = None,
) -> CreationPlan:
    r"""Creation rates of the plan's reps from the history of the accounts they will cover.

    Parameters
    ----------
    rates
        Calibrated weekly creation rate per rep with history (index ``rep_id``) [deals/week].
    accounts
        Accounts under the plan: ``account_id``, ``owner_rep_id`` (plan owner),
        ``previous_owner_rep_id`` (owner in history; default: the plan owner), ``potential``,
        ``workload_hours`` (either may be absent: accounts then count equally).
    roster
        Reps of the plan (``rep_id``, ``hire_date``): the order of :attr:`CreationPlan.rates`.
    hours_before, hours_after
        Weekly selling hours per rep in history and in the plan [h/week] (missing reps: the mean).
    response
        The creation response (:func:`calibrate_creation_response`).
    edges
        Month edges of the plan year (13).
    ramp_months
        Linear ramp of a rep without history from his hire date [months].
    created
        Deals created in the calibration window (``rep_id``, ``account_id``): how a rep who owned
        no accounts (an export without territories) spread his creation over accounts.

    Returns
    -------
    CreationPlan

    Notes
    -----
    See the module docstring. A historical rep's rate is attributed to accounts by their weight
    (potential) within the territory he owned; a rep who owned none spreads it by the deals he
    created on each account (deals without an account stay with him, scaled by his hours). Accounts
    whose owner has no calibrated rate are valued at the company's creation per unit of weight at
    the mean hours and workload. With no plan owners at all, each rep keeps his calibrated rate,
    scaled by :math:`(H^{plan}/H)^\alpha`.
    """
    ids = roster["rep_id"].astype(str).to_numpy()
    rate_hist = rates.reindex(ids).fillna(0.0).astype(float)
    for r, v in rates.items():  # reps with history that left the roster keep nothing, but say so
        if str(r) not in set(ids) and v > 0:
            log.info("creation plan: rep %s has a creation rate but is not in the plan's roster", r)
    known_h = hours_before[hours_before > 0]
    h_mean = float(known_h.mean()) if len(known_h) else 1.0
    h_before = hours_before.reindex(ids).fillna(h_mean).clip(lower=1e-9)
    h_after = hours_after.reindex(ids).fillna(h_mean).clip(lower=1e-9)
    a, g = response.hours_elasticity, response.workload_elasticity
    hire = (
        pd.to_datetime(roster.set_index(roster["rep_id"].astype(str))["hire_date"]).reindex(ids)
        if "hire_date" in roster
        else pd.Series(pd.NaT, index=ids)
    )
    new_rep = (rate_hist <= 0).to_numpy()
    ramp = pd.Series(1.0, index=ids)
    if new_rep.any():
        ramp[new_rep] = ramp_factors(hire[new_rep], edges, ramp_months, a).to_numpy()

    acc = pd.DataFrame({"account_id": accounts["account_id"].astype(str).to_numpy()})
    acc["after"] = (
        accounts["owner_rep_id"].astype("string").to_numpy() if "owner_rep_id" in accounts else pd.NA
    )
    acc["before"] = (
        accounts["previous_owner_rep_id"].astype("string").to_numpy()
        if "previous_owner_rep_id" in accounts
        else acc["after"]
    )
    acc["w"] = territory_weights(accounts, "potential").to_numpy()
    acc["wl"] = territory_weights(accounts, "workload_hours").to_numpy()
    P_before = acc.groupby("before")["w"].sum().reindex(ids, fill_value=0.0)
    P_after = acc.groupby("after")["w"].sum().reindex(ids, fill_value=0.0)
    W_before = acc.groupby("before")["wl"].sum().reindex(ids, fill_value=0.0)
    W_after = acc.groupby("after")["wl"].sum().reindex(ids, fill_value=0.0)
    clipped = 0
    hours_factor = (h_after / h_before) ** a
    if not acc["after"].notna().any():
        plan = rate_hist * hours_factor
    else:
        parts, unattributed = _attribute(acc, rate_hist, P_before, W_before, h_before, created, a, g)
        rows = parts.merge(acc[["account_id", "after"]], on="account_id")
        rows = rows[rows["after"].notna()]
        factor = (rows["after"].map(h_after).to_numpy(float) / rows["h_src"].to_numpy(float)) ** a
        has_w = rows["w_src"].to_numpy(float) > 0
        w_ratio = rows["after"].map(W_after).to_numpy(float) / np.where(
            has_w, rows["w_src"].to_numpy(float), 1.0
        )
        factor = factor * np.where(has_w, np.maximum(w_ratio, 1e-12) ** (-g), 1.0)
        lo, hi = FACTOR_BOUNDS
        clipped = int(rows.loc[(factor < lo) | (factor > hi), "account_id"].nunique())
        rows = rows.assign(lam=rows["lam"].to_numpy(float) * np.clip(factor, lo, hi))
        plan = rows.groupby("after")["lam"].sum().reindex(ids, fill_value=0.0)
        plan = plan + unattributed.reindex(ids, fill_value=0.0) * hours_factor
        if clipped:
            log.warning(
                "creation plan: %d account(s) with a coverage change beyond %s (clipped)",
                clipped,
                FACTOR_BOUNDS,
            )
    plan = plan * ramp
    table = pd.DataFrame(
        {
            "rep_id": ids,
            "rate_history": rate_hist.to_numpy(),
            "rate_plan": plan.to_numpy(float),
            "source": np.where(new_rep, "hire", "history"),
            "potential_before": P_before.to_numpy(),
            "potential_after": P_after.to_numpy(),
            "workload_before": W_before.to_numpy(),
            "workload_after": W_after.to_numpy(),
            "hours_before": h_before.to_numpy(),
            "hours_after": h_after.to_numpy(),
            "coverage_before": (WEEKS_PER_YEAR * h_before / W_before.replace(0.0, np.nan)).to_numpy(),
            "coverage_after": (WEEKS_PER_YEAR * h_after / W_after.replace(0.0, np.nan)).to_numpy(),
            "ramp_factor": ramp.to_numpy(),
        }
    )
    return CreationPlan(pd.Series(plan.to_numpy(float), index=ids), table, clipped)


def _attribute(
    acc: pd.DataFrame,
    rate: pd.Series,
    P_before: pd.Series,
    W_before: pd.Series,
    h_before: pd.Series,
    created: pd.DataFrame | None,
    a: float,
    g: float,
) -> tuple[pd.DataFrame, pd.Series]:
    """Historical creation per (account, source): rows ``account_id, lam, h_src, w_src``.

    ``h_src``/``w_src`` are the hours and territory workload under which the account produced it
    (``w_src`` 0: no territory known, no workload factor). Also returns the creation of reps that
    stays with them (deals without an account) [deals/week].
    """
    owned = (rate > 0) & (P_before > 0)
    frames = []
    # reps who owned a territory: their rate over their accounts, by weight
    own = acc[acc["before"].isin(owned.index[owned.to_numpy()])]
    if len(own):
        src = own["before"].astype(str)
        frames.append(
            pd.DataFrame(
                {
                    "account_id": own["account_id"].to_numpy(),
                    "lam": (src.map(rate) * own["w"] / src.map(P_before)).to_numpy(float),
                    "h_src": src.map(h_before).to_numpy(float),
                    "w_src": src.map(W_before).to_numpy(float),
                }
            )
        )
    unattributed = pd.Series(0.0, index=rate.index)
    # reps with a rate but no territory: by the deals they created on each account
    loose = rate.index[((rate > 0) & ~owned).to_numpy()]
    if len(loose) and created is not None and len(created):
        c = created[created["rep_id"].astype(str).isin(loose)]
        n_rep = c.groupby(c["rep_id"].astype(str)).size()
        with_acc = c[c["account_id"].notna()]
        n = with_acc.groupby([with_acc["rep_id"].astype(str), with_acc["account_id"].astype(str)]).size()
        if len(n):
            r_ids = n.index.get_level_values(0)
            frames.append(
                pd.DataFrame(
                    {
                        "account_id": n.index.get_level_values(1),
                        "lam": rate.reindex(r_ids).to_numpy(float)
                        * n.to_numpy(float)
                        / n_rep.reindex(r_ids).to_numpy(float),
                        "h_src": h_before.reindex(r_ids).to_numpy(float),
                        "w_src": 0.0,
                    }
                )
            )
        attributed = n.groupby(level=0).sum() if len(n) else pd.Series(dtype=float)
        share_left = 1.0 - attributed.reindex(n_rep.index, fill_value=0) / n_rep
        unattributed = unattributed.add(rate.reindex(n_rep.index) * share_left, fill_value=0.0)
    elif len(loose):
        unattributed = unattributed.add(rate[loose], fill_value=0.0)
    # accounts whose owner has no rate: the company's creation per unit of weight at its mean
    # hours and workload
    orphan = acc[acc["before"].notna() & ~acc["before"].isin(owned.index[owned.to_numpy()])]
    if len(orphan) and owned.any():
        hb, wb = h_before[owned.to_numpy()], W_before[owned.to_numpy()]
        denom = float((P_before[owned] * hb**a * wb ** (-g)).sum())
        kappa_bar = float(rate[owned].sum()) / denom if denom > 0 else 0.0
        h_bar, w_bar = float(hb.mean()), float(wb.mean())
        frames.append(
            pd.DataFrame(
                {
                    "account_id": orphan["account_id"].to_numpy(),
                    "lam": kappa_bar * orphan["w"].to_numpy(float) * h_bar**a * w_bar ** (-g),
                    "h_src": h_bar,
                    "w_src": w_bar,
                }
            )
        )
    parts = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame({"account_id": [], "lam": [], "h_src": [], "w_src": []})
    )
    return parts, unattributed
