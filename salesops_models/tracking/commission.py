"""Commission mid-year: what has been earned to date (the accrual) and what the year will cost.

Both use the compensation engine with the plan's primary commission plan, on the quotas after the
mid-year changes.

* **Accrual to date** = commission earned on the year-to-date bookings against the year-to-date
  quota: ``earnings(plan, B_ytd, Q, c, f)`` with ``f = Q_ytd / Q`` (the year-to-date share of the
  quota, and so of the target incentive), ``Q_ytd`` the monthly quotas up to the tracking date with
  its month pro-rated by day. For a quarterly plan on a discrete basis, each quarter earns on its
  own bookings and quota (the current one pro-rated). SPIFs accrue on the year-to-date bookings.
  Draws, holdbacks and true-ups are cash timing, not cost, and are left out of the accrual.
* **Expected year-end cost** = the engine's payouts (:func:`~salesops_models.compensation.simulate_cost`)
  over the re-forecast's year-end bookings, each trial split into quarters as simulated.

A holder who works part of the year (a leaver, a hire) has the target incentive and base salary
pro-rated to the calendar days he works: a leaver at 100 % of his pro-rated quota earns his
pro-rated target incentive, not a full year's. Vacancies and holders without quota earn nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from salesops_models.compensation.attainment import AttainmentSamples
from salesops_models.compensation.engine import credit_factors, earnings, spif_factors
from salesops_models.compensation.plan import CompPlan
from salesops_models.compensation.simulation import CompInputs, simulate_cost
from salesops_models.data.schema import WON
from salesops_models.tracking.periods import elapsed_month_fractions, quota_to_date


def employment_share(holders: pd.DataFrame, plan_year: int) -> pd.Series:
    """Share of the plan year's calendar days each holder works [0-1]; 0 for vacancies."""
    start = pd.Timestamp(year=plan_year, month=1, day=1)
    end = pd.Timestamp(year=plan_year, month=12, day=31)
    days = (end - start).days + 1
    h = holders.set_index(holders["rep_id"].astype(str))
    first = h["start_date"].fillna(start).clip(lower=start)
    last = h["last_day"].fillna(end).clip(upper=end)
    share = ((last - first).dt.days + 1).clip(lower=0) / days
    return share.where(h["kind"] != "vacancy", 0.0).astype(float)


def pro_rated_plan(plan: CompPlan, share: float) -> CompPlan:
    """The plan with base salary and target incentive times ``share`` (a part-year holder)."""
    if share == 1.0:
        return plan
    ti = plan.pay.target_incentive
    pay = plan.pay.model_copy(
        update={
            "base_salary": plan.pay.base_salary * share,
            "target_incentive": None if ti is None else ti * share,
            "on_target_earnings": None if plan.pay.ote is None else plan.pay.ote * share,
        }
    )
    return plan.model_copy(update={"pay": pay})


def product_inputs(
    plan: CompPlan, opportunities: pd.DataFrame, credited: pd.Series, ids: list[str]
) -> tuple[pd.DataFrame | None, dict[str, float]]:
    """Product mix of each holder's won bookings and mean won deal size per product, when the plan
    needs them (product weights or SPIFs); else ``(None, {})``."""
    if not plan.products and not plan.spifs:
        return None, {}
    won = opportunities[(opportunities["status"] == WON) & opportunities["amount"].notna()]
    if "product" not in won or won["product"].isna().all():
        return None, {"*": float(won["amount"].mean())} if len(won) else {}
    w = won.assign(holder=credited[won.index].astype(str), product=won["product"].astype(str))
    table = w.pivot_table(index="holder", columns="product", values="amount", aggfunc="sum", fill_value=0.0)
    mix = table.div(table.sum(axis=1), axis=0).reindex(ids)
    mix = mix.fillna(table.sum(axis=0) / table.to_numpy().sum())
    size = {str(k): float(v) for k, v in w.groupby("product")["amount"].mean().items()}
    size["*"] = float(w["amount"].mean())
    return mix, size


def _paid_groups(
    plan: CompPlan, ids: list[str], employment: pd.Series, annual: np.ndarray
) -> Iterator[tuple[CompPlan, np.ndarray]]:
    """The plan pro-rated to each share of the year worked, with the rows of the holders it pays
    (holders with quota who work some of the year)."""
    groups: dict[float, list[int]] = {}
    for i, r in enumerate(ids):
        groups.setdefault(round(float(employment[r]), 9), []).append(i)
    for share, rows in groups.items():
        idx = np.array([i for i in rows if annual[i] > 0 and share > 0], dtype=int)
        if idx.size:
            yield pro_rated_plan(plan, share), idx


def _mix_array(mix: pd.DataFrame | None, ids: list[str]) -> tuple[np.ndarray | None, list[str]]:
    if mix is None:
        return None, []
    return mix.reindex(ids).to_numpy(float), [str(c) for c in mix.columns]


def commission_accrual(
    plan: CompPlan,
    ids: list[str],
    booked_by_month: np.ndarray,
    monthly_quota: pd.DataFrame,
    as_of: pd.Timestamp,
    employment: pd.Series,
    product_mix: pd.DataFrame | None = None,
    deal_size: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Commission earned to date per holder.

    Parameters
    ----------
    plan
        The commission plan.
    ids
        Holders, the rows of ``booked_by_month``.
    booked_by_month
        Credited bookings per holder and month up to ``as_of`` (holders x 12) [currency].
    monthly_quota
        Quota per holder and month after the mid-year changes (index holders, columns 1-12) [currency].
    as_of
        Tracking date.
    employment
        Share of the year each holder works (:func:`employment_share`) [0-1].
    product_mix, deal_size
        From :func:`product_inputs` (plans with product weights or SPIFs only).

    Returns
    -------
    pandas.DataFrame
        ``rep_id, ytd_bookings, ytd_quota, annual_quota, ytd_attainment, accrued`` [currency, ratio].
    """
    q = monthly_quota.reindex(index=ids, columns=range(1, 13)).fillna(0.0).to_numpy(float)
    elapsed = elapsed_month_fractions(as_of)
    ytd_q, annual = quota_to_date(monthly_quota, ids, as_of)
    ytd_b = booked_by_month.sum(axis=1)
    accrued = np.zeros(len(ids))
    mix_all, products = _mix_array(product_mix, ids)
    for p, idx in _paid_groups(plan, ids, employment, annual):
        mix = None if mix_all is None else mix_all[idx]
        credit = credit_factors(p, [ids[i] for i in idx], mix, products)
        if p.periods > 1 and p.payout.basis == "discrete":
            for k in range(4):
                months = slice(3 * k, 3 * k + 3)
                qk = (q[idx, months] * elapsed[months]).sum(axis=1)
                bk = booked_by_month[idx, months].sum(axis=1)
                frac = np.divide(qk, annual[idx], out=np.zeros(idx.size), where=annual[idx] > 0)
                accrued[idx] += earnings(p, bk[:, None], annual[idx], credit, frac)[:, 0]
        else:
            frac = ytd_q[idx] / annual[idx]
            accrued[idx] += earnings(p, ytd_b[idx, None], annual[idx], credit, frac)[:, 0]
        if p.spifs:
            units = spif_factors(p, mix, products, deal_size or {})
            units = np.broadcast_to(units, (len(p.spifs), idx.size))
            for s, sp in enumerate(p.spifs):
                pay = ytd_b[idx] * sp.amount * units[s]
                accrued[idx] += np.minimum(pay, sp.max_per_rep) if sp.max_per_rep is not None else pay
    with np.errstate(invalid="ignore", divide="ignore"):
        attain = np.where(ytd_q > 0, ytd_b / ytd_q, np.nan)
    return pd.DataFrame(
        {
            "rep_id": ids,
            "ytd_bookings": ytd_b,
            "ytd_quota": ytd_q,
            "annual_quota": annual,
            "ytd_attainment": attain,
            "accrued": accrued,
        }
    )


def year_end_cost(
    plan: CompPlan,
    ids: list[str],
    year_end: np.ndarray,
    by_quarter: np.ndarray,
    monthly_quota: pd.DataFrame,
    employment: pd.Series,
    product_mix: pd.DataFrame | None = None,
    deal_size: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, np.ndarray, float]:
    """Expected commission for the year over the re-forecast's trials.

    Parameters
    ----------
    year_end
        Year-end bookings, trials x holders [currency].
    by_quarter
        Bookings per quarter, 4 x holders x trials [currency].
    monthly_quota, employment, product_mix, deal_size
        As in :func:`commission_accrual`.

    Returns
    -------
    (per_holder, variable_cost, base_cost)
        ``per_holder``: ``rep_id, payout_mean, payout_p10, payout_p50, payout_p90`` (variable pay
        for the year) [currency]; ``variable_cost``: total variable pay per trial [currency];
        ``base_cost``: base salaries pro-rated to the days worked [currency].
    """
    q = monthly_quota.reindex(index=ids, columns=range(1, 13)).fillna(0.0).to_numpy(float)
    annual = q.sum(axis=1)
    trials = year_end.shape[0]
    pay = np.zeros((len(ids), trials))
    base = 0.0
    for p, idx in _paid_groups(plan, ids, employment, annual):
        quarters = q[idx].reshape(idx.size, 4, 3).sum(axis=2).T / annual[idx][None, :]
        b = by_quarter[:, idx, :]
        total = b.sum(axis=0, keepdims=True)
        shares = np.where(total > 0, b / np.where(total > 0, total, 1.0), quarters[:, :, None])
        samples = AttainmentSamples([ids[i] for i in idx], annual[idx], year_end[:, idx].T, "re-forecast")
        inputs = CompInputs(
            product_mix=None if product_mix is None else product_mix.reindex(samples.rep_ids),
            deal_size=deal_size or {},
            quota_period_shares=quarters,
            bookings_period_shares=shares,
        )
        result = simulate_cost(p, samples, inputs)
        pay[idx] = result.payouts.variable
        base += p.pay.base_salary * idx.size
    qs = np.percentile(pay, [10, 50, 90], axis=1)
    table = pd.DataFrame(
        {
            "rep_id": ids,
            "payout_mean": pay.mean(axis=1),
            "payout_p10": qs[0],
            "payout_p50": qs[1],
            "payout_p90": qs[2],
        }
    )
    return table, pay.sum(axis=0), base
