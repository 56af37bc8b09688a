"""Cost simulation: what a plan costs across attainment outcomes, and plans side by side.

Two modes (FIELD-NOTES 3.6): *comparison* runs many plans over one attainment set
(:func:`compare_plans`), *costing* runs one plan over many attainment sets (:func:`cost_plan_across`).
Both are built on :func:`simulate_cost`, which pays every rep in every trial with the vectorised engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salesops_models.compensation.attainment import AttainmentSamples
from salesops_models.compensation.engine import (
    PayoutArrays,
    compute_payouts,
    credit_factors,
    spif_factors,
    split_bookings,
)
from salesops_models.compensation.plan import CompPlan


@dataclass
class CompInputs:
    """What the engine needs besides bookings and quotas (all optional).

    Attributes
    ----------
    product_mix
        Share of each rep's bookings by product, DataFrame indexed by rep_id, one column per product [0-1].
    deal_size
        Mean deal size per product and under ``"*"`` over all products [currency/deal].
    quota_relief
        Quota taken off per rep_id [currency].
    quota_period_shares
        Share of the annual quota per quarter, shape (4,) or (4, reps) [0-1].
    bookings_period_shares
        Share of each rep's bookings per quarter: shape (4,), (4, reps) or (4, reps, trials) [0-1];
        default: ``quota_period_shares``.
    """

    product_mix: pd.DataFrame | None = None
    deal_size: dict[str, float] = field(default_factory=dict)
    quota_relief: dict[str, float] = field(default_factory=dict)
    quota_period_shares: np.ndarray | None = None
    bookings_period_shares: np.ndarray | None = None


@dataclass
class CostSimulation:
    """The cost of one plan over one attainment set.

    Attributes
    ----------
    plan
        The plan.
    samples
        The attainment set.
    payouts
        Per rep and trial components [currency/yr] (see :class:`~salesops_models.compensation.engine.PayoutArrays`).
    cost_samples
        One row per trial: ``trial``, ``total_cost`` (base + variable cash), ``base_cost``, ``variable_cost``,
        ``revenue`` [currency], ``cost_of_sales`` [0-1], ``share_at_quota`` [0-1].
    payouts_summary
        One row per rep: ``rep_id``, ``quota``, ``payout_p10``/``p50``/``p90``/``mean`` (variable cash),
        ``total_pay_p50``, ``attainment_p50``, ``p_attain`` (P(attainment >= 1)).
    """

    plan: CompPlan
    samples: AttainmentSamples
    payouts: PayoutArrays
    cost_samples: pd.DataFrame
    payouts_summary: pd.DataFrame

    def summary(self) -> dict[str, float | str]:
        """Headline figures.

        Notes
        -----
        ``cost_of_sales`` = mean total cost / mean revenue (ratio of expectations; the per-trial ratio's
        P50 is ``cost_of_sales_p50``). ``p90_earner`` is the 90th percentile of total pay (base + variable)
        pooled over reps and trials [currency/yr]; ``p90_earner_ti_multiple`` the same percentile of variable
        pay divided by the target incentive.
        """
        cs = self.cost_samples
        total_pay = self.payouts.variable + self.plan.pay.base_salary
        ti = self.plan.pay.target_incentive
        p90_var = float(np.quantile(self.payouts.variable, 0.9))
        return {
            "plan": self.plan.name,
            "attainment_set": self.samples.label,
            "cost_mean": float(cs["total_cost"].mean()),
            "cost_p10": float(cs["total_cost"].quantile(0.1)),
            "cost_p50": float(cs["total_cost"].quantile(0.5)),
            "cost_p90": float(cs["total_cost"].quantile(0.9)),
            "variable_cost_mean": float(cs["variable_cost"].mean()),
            "revenue_mean": float(cs["revenue"].mean()),
            "cost_of_sales": float(cs["total_cost"].mean() / cs["revenue"].mean()),
            "cost_of_sales_p50": float(cs["cost_of_sales"].median()),
            "cost_of_sales_p90": float(cs["cost_of_sales"].quantile(0.9)),
            "share_at_quota": float(cs["share_at_quota"].mean()),
            "p90_earner": float(np.quantile(total_pay, 0.9)),
            "p90_earner_ti_multiple": float(p90_var / ti) if ti else float("nan"),
            "payout_mean_per_rep": float(self.payouts.variable.mean()),
            "reps": len(self.samples.rep_ids),
            "trials": self.samples.n_trials,
        }

    def cost_of_sales_by_quartile(self) -> pd.DataFrame:
        """Compensation cost of sales by attainment quartile of reps, pooled over trials.

        Returns
        -------
        pandas.DataFrame
            One row per quartile (1 = lowest attainment): ``quartile``, ``rep_years``, ``cost``
            (base + variable) and ``revenue`` [currency, summed over trials], ``cost_of_sales`` [0-1],
            ``mean_attainment``.

        Notes
        -----
        In every trial the reps are ranked by attainment and split into four groups of (nearly) equal
        size; a quartile's cost of sales is its summed cost over its summed revenue. Sibson reports
        52 % in the bottom quartile against 17 % in the top (FIELD-NOTES 3.5).
        """
        attain = self.samples.bookings / self.payouts_summary["quota"].to_numpy()[:, None]
        n = attain.shape[0]
        rank = np.argsort(np.argsort(attain, axis=0, kind="stable"), axis=0)
        quart = np.minimum(rank * 4 // n, 3) + 1
        cost = self.payouts.variable + self.plan.pay.base_salary
        rows = []
        for k in range(1, 5):
            sel = quart == k
            rev = float(self.samples.bookings[sel].sum())
            c = float(cost[sel].sum())
            rows.append(
                {
                    "quartile": k,
                    "rep_years": int(sel.sum()),
                    "cost": c,
                    "revenue": rev,
                    "cost_of_sales": c / rev if rev > 0 else float("nan"),
                    "mean_attainment": float(attain[sel].mean()) if sel.any() else float("nan"),
                }
            )
        return pd.DataFrame(rows)


def _mix_matrix(inputs: CompInputs, rep_ids: Sequence[str]) -> tuple[np.ndarray | None, list[str]]:
    if inputs.product_mix is None:
        return None, []
    mix = inputs.product_mix.reindex([str(r) for r in rep_ids])
    fallback = inputs.product_mix.mean(axis=0)
    mix = mix.fillna(fallback)  # reps without history get the company mix
    m = mix.to_numpy(dtype=float)
    m = m / np.where(m.sum(axis=1, keepdims=True) > 0, m.sum(axis=1, keepdims=True), 1.0)
    return m, [str(c) for c in mix.columns]


def simulate_cost(
    plan: CompPlan, samples: AttainmentSamples, inputs: CompInputs | None = None
) -> CostSimulation:
    """Pay every rep in every trial under ``plan`` and total the cost.

    Parameters
    ----------
    plan
        The plan.
    samples
        Bookings per rep and trial and the quotas.
    inputs
        Product mix, deal sizes, quota relief and quarterly splits (:class:`CompInputs`).

    Returns
    -------
    CostSimulation

    Notes
    -----
    Per trial :math:`t`: total cost :math:`C_t = \\sum_r (\\mathrm{base} + V_{rt})`, revenue
    :math:`R_t = \\sum_r B_{rt}`, cost of sales :math:`C_t / R_t`, share at quota
    :math:`\\frac{1}{n}\\sum_r [B_{rt} \\ge Q_r]` (quota after relief).
    """
    inputs = inputs or CompInputs()
    rep_ids = samples.rep_ids
    relief = np.array([inputs.quota_relief.get(r, 0.0) for r in rep_ids])
    quota = samples.quota - relief
    if np.any(quota <= 0):
        bad = [r for r, q in zip(rep_ids, quota, strict=True) if q <= 0]
        raise ValueError(
            f"quota relief leaves reps {bad[:5]} with quota <= 0; reduce compensation.quota_relief"
        )
    mix, products = _mix_matrix(inputs, rep_ids)
    credit = credit_factors(plan, rep_ids, mix, products)
    spif_units = spif_factors(plan, mix, products, inputs.deal_size) if plan.spifs else None
    if spif_units is not None and spif_units.shape[1] == 1:
        spif_units = np.repeat(spif_units, len(rep_ids), axis=1)
    by_period = None
    if plan.periods > 1:
        shares = inputs.bookings_period_shares
        if shares is None:
            shares = (
                inputs.quota_period_shares if inputs.quota_period_shares is not None else np.full(4, 0.25)
            )
        by_period = split_bookings(samples.bookings, np.asarray(shares))
    payouts = compute_payouts(
        plan,
        samples.bookings,
        quota,
        credit,
        bookings_by_period=by_period,
        quota_period_shares=inputs.quota_period_shares,
        spif_units=spif_units,
    )
    n = len(rep_ids)
    base = plan.pay.base_salary * n
    variable = payouts.variable.sum(axis=0)
    revenue = samples.bookings.sum(axis=0)
    attain = samples.bookings / quota[:, None]
    cost = pd.DataFrame(
        {
            "trial": np.arange(samples.n_trials),
            "total_cost": base + variable,
            "base_cost": np.full(samples.n_trials, base),
            "variable_cost": variable,
            "revenue": revenue,
            "cost_of_sales": (base + variable) / np.where(revenue > 0, revenue, np.nan),
            "share_at_quota": (attain >= 1.0).mean(axis=0),
        }
    )
    q = np.quantile(payouts.variable, [0.1, 0.5, 0.9], axis=1)
    summary = pd.DataFrame(
        {
            "rep_id": rep_ids,
            "quota": quota,
            "quota_relief": relief,
            "payout_p10": q[0],
            "payout_p50": q[1],
            "payout_p90": q[2],
            "payout_mean": payouts.variable.mean(axis=1),
            "total_pay_p50": q[1] + plan.pay.base_salary,
            "attainment_p50": np.median(attain, axis=1),
            "p_attain": (attain >= 1.0).mean(axis=1),
        }
    )
    return CostSimulation(plan, samples, payouts, cost, summary)


def compare_plans(
    plans: Sequence[CompPlan], samples: AttainmentSamples, inputs: CompInputs | None = None
) -> tuple[pd.DataFrame, dict[str, CostSimulation]]:
    """Comparison mode: many plans over one attainment set.

    Returns
    -------
    table
        One row per plan with the :meth:`CostSimulation.summary` figures and ``mode = "comparison"``.
    results
        The simulations by plan name.
    """
    results = {p.name: simulate_cost(p, samples, inputs) for p in plans}
    table = pd.DataFrame([r.summary() for r in results.values()])
    table.insert(0, "mode", "comparison")
    return table, results


def cost_plan_across(
    plan: CompPlan,
    sample_sets: Mapping[str, AttainmentSamples],
    inputs: CompInputs | Mapping[str, CompInputs] | None = None,
) -> tuple[pd.DataFrame, dict[str, CostSimulation]]:
    """Costing mode: one plan over many attainment sets (pipeline samples, calibrated distributions...).

    ``inputs`` is one :class:`CompInputs` for every set, or one per set name.

    Returns
    -------
    table
        One row per attainment set with the :meth:`CostSimulation.summary` figures and ``mode = "costing"``.
    results
        The simulations by attainment-set name.
    """

    def for_set(name: str) -> CompInputs | None:
        return inputs.get(name) if isinstance(inputs, Mapping) else inputs

    results = {name: simulate_cost(plan, s, for_set(name)) for name, s in sample_sets.items()}
    rows = []
    for name, r in results.items():
        row = r.summary()
        row["attainment_set"] = name
        rows.append(row)
    table = pd.DataFrame(rows)
    table.insert(0, "mode", "costing")
    return table, results
