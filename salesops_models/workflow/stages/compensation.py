"""Stage ``compensation``: cost the scenario's commission plans over the simulated attainment.

Reads ``quotas`` (quota stage) and ``rep_bookings_samples`` (pipeline stage). When either is missing
the stage falls back (and says so in ``comp_attainment_source``):

- no samples: attainment drawn from ``compensation.fallback_attainment`` (a distribution calibrated to
  two stated facts, default "60 % of reps at quota, sd 0.25", lognormal) times each rep's quota;
- no quotas: ``compensation.fallback_quota``, else each rep's bookings over the last 12 months of history
  (the company mean for reps without history).

Writes ``payouts_summary`` and ``comp_cost_samples`` for the primary plan (columns per docs/STAGES.md,
plus a few more), ``comp_plan_comparison`` (comparison mode: every plan on the primary attainment set,
and costing mode: the primary plan across attainment sets, in one table with a ``mode`` column),
``comp_cost_samples_by_plan``, ``comp_cost_by_quartile`` (cost of sales by attainment quartile) and
``comp_trace`` (one rep's calculation trace) and ``comp_traces`` (every rep's, for the payout
statements).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.compensation import (
    AttainmentSamples,
    CompInputs,
    CompPlan,
    compare_plans,
    cost_plan_across,
    load_plan,
    payout_traces,
)
from salesops_models.compensation.config import CompensationConfig
from salesops_models.data.company import CompanyData
from salesops_models.errors import SalesopsError
from salesops_models.workflow.context import StageContext

log = logging.getLogger(__name__)


def _rng(ctx: StageContext, k: int) -> np.random.Generator:
    ss = ctx.seed_sequence
    return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k)))


def _primary(plans: list[CompPlan], cfg: CompensationConfig) -> CompPlan:
    if cfg.primary_plan is None:
        return plans[0]
    for ref, p in zip(cfg.plans, plans, strict=True):
        if cfg.primary_plan in (p.name, ref):
            return p
    raise SalesopsError(
        f"compensation.primary_plan '{cfg.primary_plan}' is not among compensation.plans "
        f"({', '.join(p.name for p in plans)}); name one of them"
    )


def _history_quota(company: CompanyData, rep_ids: list[str]) -> np.ndarray:
    b = company.bookings
    if len(b):
        as_of = pd.Timestamp(company.as_of)
        recent = b[pd.to_datetime(b["month"]) > as_of - pd.DateOffset(months=12)]
        per_rep = recent.groupby("rep_id")["amount"].sum()
        mean = float(per_rep[per_rep > 0].mean()) if (per_rep > 0).any() else np.nan
        q = np.array([float(per_rep.get(r, np.nan)) for r in rep_ids])
        q = np.where(q > 0, q, mean)
        if np.all(np.isfinite(q)):
            return q
    raise SalesopsError(
        "compensation: the quotas table is missing and the bookings history is empty, so no quota is known; "
        "run the quota stage or set compensation.fallback_quota"
    )


def _quarter_shares(ctx: StageContext, company: CompanyData, rep_ids: list[str]) -> tuple[np.ndarray, str]:
    """Share of each rep's annual quota per quarter, shape (4, reps): the quota stage's quarterly quotas
    when written, else the bookings history's seasonality, else 1/4 each."""
    if ctx.has_table("quotas_by_period"):
        per = ctx.read_table("quotas_by_period")
        if {"rep_id", "period", "period_type", "quota"} <= set(per.columns):
            qt = per[per["period_type"] == "quarter"].copy()
            qt["q"] = qt["period"].astype(str).str.extract(r"Q([1-4])$")[0].astype(float)
            wide = qt.pivot_table(index="rep_id", columns="q", values="quota", aggfunc="sum").reindex(
                index=rep_ids, columns=[1.0, 2.0, 3.0, 4.0]
            )
            ok = wide.notna().all(axis=1) & (wide.sum(axis=1) > 0)
            if ok.all():
                w = wide.to_numpy(dtype=float)
                return (w / w.sum(axis=1, keepdims=True)).T, "quotas_by_period"
            log.warning(
                "compensation: quotas_by_period lacks quarters for %d rep(s); using seasonality", (~ok).sum()
            )
    b = company.bookings
    shares = np.full(4, 0.25)
    source = "equal"
    if len(b):
        q = b.groupby(pd.to_datetime(b["month"]).dt.quarter)["amount"].sum().reindex([1, 2, 3, 4]).fillna(0.0)
        if q.sum() > 0:
            shares, source = (q / q.sum()).to_numpy(), "bookings seasonality"
    return np.repeat(shares[:, None], len(rep_ids), axis=1), source


def _product_inputs(
    company: CompanyData, cfg: CompensationConfig, rep_ids: list[str]
) -> tuple[pd.DataFrame | None, dict]:
    opp = company.opportunities
    won = opp[(opp["status"] == "won") & opp["amount"].notna()] if len(opp) else opp
    deal_size: dict[str, float] = dict(cfg.deal_size or {})
    mix = None
    if cfg.product_mix is not None:
        mix = pd.DataFrame([cfg.product_mix] * len(rep_ids), index=rep_ids)
    elif len(won) and "product" in won and won["product"].notna().any():
        w = won[won["product"].notna()]
        table = w.pivot_table(
            index="rep_id", columns="product", values="amount", aggfunc="sum", fill_value=0.0
        )
        mix = table.div(table.sum(axis=1), axis=0)
        mix.index = mix.index.astype(str)
        mix.columns = mix.columns.astype(str)
        if not cfg.deal_size:
            deal_size = {str(k): float(v) for k, v in w.groupby("product")["amount"].mean().items()}
    if "*" not in deal_size and len(won):
        deal_size["*"] = float(won["amount"].mean())
    return mix, deal_size


def run(ctx: StageContext) -> dict[str, Any]:
    """Cost the scenario's plans (see the module docstring); return the ``comp_*`` metrics."""
    cfg: CompensationConfig = ctx.scenario.compensation
    plans = [load_plan(ref) for ref in cfg.plans]
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        raise SalesopsError(
            f"compensation.plans: two plans share a name ({names}); plan names must be unique"
        )
    primary = _primary(plans, cfg)
    company = ctx.company
    rep_ids = [str(r) for r in company.reps["rep_id"]]

    has_samples, has_quotas = ctx.has_table("rep_bookings_samples"), ctx.has_table("quotas")
    if cfg.attainment_source == "pipeline" and not (has_samples and has_quotas):
        raise SalesopsError(
            "compensation.attainment_source is 'pipeline' but the "
            f"{'rep_bookings_samples' if not has_samples else 'quotas'} table is missing; run the pipeline and "
            "quota stages first, or set attainment_source: auto"
        )
    use_pipeline = has_samples and cfg.attainment_source != "parametric"
    if has_quotas:
        qt = ctx.read_table("quotas")
    else:
        quota = (
            np.full(len(rep_ids), cfg.fallback_quota)
            if cfg.fallback_quota
            else _history_quota(company, rep_ids)
        )
        qt = pd.DataFrame({"rep_id": rep_ids, "quota": quota})
        log.warning(
            "compensation: no quotas table; using %s",
            "fallback_quota" if cfg.fallback_quota else "last-12-month bookings",
        )
    quota_src = "quotas" if has_quotas else ("fallback_quota" if cfg.fallback_quota else "history")
    if use_pipeline:
        primary_set = AttainmentSamples.from_tables(
            ctx.read_table("rep_bookings_samples"), qt, label="pipeline"
        )
        source = f"pipeline/{quota_src}"
    else:
        dist = cfg.fallback_attainment.distribution()
        q = qt.drop_duplicates("rep_id").set_index("rep_id")["quota"].astype(float)
        primary_set = AttainmentSamples.from_distribution(
            dist,
            [str(r) for r in q.index],
            q.to_numpy(),
            cfg.n_trials,
            _rng(ctx, 0),
            cfg.fallback_attainment.name,
        )
        source = f"parametric/{quota_src}"
        log.info("compensation: attainment from %s", dist.describe())
    reps = primary_set.rep_ids

    mix, deal_size = _product_inputs(company, cfg, reps)
    q_shares, q_source = _quarter_shares(ctx, company, reps)
    relief = {str(k): v for k, v in cfg.quota_relief.items()}

    def inputs_for(samples: AttainmentSamples, k: int) -> CompInputs:
        b_shares: np.ndarray = q_shares
        if cfg.quarter_split_concentration is not None and any(p.periods > 1 for p in plans):
            # Dirichlet per rep around its quarterly quota shares, drawn as normalised gammas
            alpha = cfg.quarter_split_concentration * q_shares.T[:, None, :] + 1e-9
            g = _rng(ctx, k).gamma(alpha, size=(len(samples.rep_ids), samples.n_trials, 4))
            b_shares = np.moveaxis(g / g.sum(axis=-1, keepdims=True), -1, 0)
        return CompInputs(mix, deal_size, relief, q_shares, b_shares)

    inputs = inputs_for(primary_set, 1)
    comparison, by_plan = compare_plans(plans, primary_set, inputs)
    sets = {primary_set.label: primary_set}
    set_inputs = {primary_set.label: inputs}
    for k, facts in enumerate(cfg.costing_sets):
        if facts.name in sets:
            raise SalesopsError(
                f"compensation.costing_sets: the name '{facts.name}' is used twice; names must be unique"
            )
        dist = facts.distribution()
        sets[facts.name] = AttainmentSamples.from_distribution(
            dist, reps, primary_set.quota, cfg.n_trials, _rng(ctx, 10 + 2 * k), facts.name
        )
        set_inputs[facts.name] = inputs_for(sets[facts.name], 11 + 2 * k)
    costing, _ = cost_plan_across(primary, sets, set_inputs)
    main = by_plan[primary.name]

    ctx.write_table("payouts_summary", main.payouts_summary)
    ctx.write_table("comp_cost_samples", main.cost_samples)
    ctx.write_table(
        "comp_cost_samples_by_plan",
        pd.concat([r.cost_samples.assign(plan=name) for name, r in by_plan.items()], ignore_index=True),
    )
    table = pd.concat([comparison, costing], ignore_index=True)
    table["primary"] = table["plan"] == primary.name
    table["fingerprint"] = table["plan"].map({p.name: p.fingerprint() for p in plans})
    ctx.write_table("comp_plan_comparison", table)
    quartiles = pd.concat(
        [r.cost_of_sales_by_quartile().assign(plan=name) for name, r in by_plan.items()], ignore_index=True
    )
    ctx.write_table("comp_cost_by_quartile", quartiles)

    ps = main.payouts_summary
    trace_rep = cfg.trace_rep or str(ps.sort_values("attainment_p50")["rep_id"].iloc[len(ps) // 2])
    if trace_rep not in reps:
        raise SalesopsError(
            f"compensation.trace_rep '{trace_rep}' is not a rep of this scenario (e.g. {reps[:3]})"
        )
    # every rep's trace at its median simulated bookings: the payout statements (workflow.exports)
    traces = payout_traces(primary, primary_set, inputs)
    ctx.write_table("comp_traces", traces)
    ctx.write_table("comp_trace", traces[traces["rep_id"] == trace_rep].reset_index(drop=True))

    s = main.summary()
    return {
        "comp_cost_p50": s["cost_p50"],
        "comp_cost_p90": s["cost_p90"],
        "comp_cost_mean": s["cost_mean"],
        "comp_cost_of_sales": s["cost_of_sales"],
        "comp_share_at_quota": s["share_at_quota"],
        "comp_p90_earner": s["p90_earner"],
        "comp_p90_earner_ti_multiple": s["p90_earner_ti_multiple"],
        "comp_primary_plan": primary.name,
        "comp_plans_compared": len(plans),
        "comp_attainment_source": source,
        "comp_trials": primary_set.n_trials,
        "comp_quarter_split_source": q_source,
        "comp_cost_of_sales_bottom_quartile": float(
            quartiles.query("plan == @primary.name")["cost_of_sales"].iloc[0]
        ),
        "comp_cost_of_sales_top_quartile": float(
            quartiles.query("plan == @primary.name")["cost_of_sales"].iloc[-1]
        ),
    }
