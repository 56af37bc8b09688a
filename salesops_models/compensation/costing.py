"""A scenario's commission cost: its plans over the attainment it simulates (or assumes).

:func:`cost_scenario_plans` is what the ``compensation`` stage runs. Inputs are tables:

- quotas (the quota stage's, else a fallback: ``fallback_quota``, else each rep's bookings over the
  last 12 months, :func:`history_quotas`);
- simulated bookings per trial and rep (the pipeline's samples), else attainment drawn from
  ``fallback_attainment`` (a distribution calibrated to two stated facts) times each quota;
- the quarterly split of each quota (:func:`quarter_shares`) and, for product plans, each rep's
  product mix and deal sizes (:func:`product_inputs`).

The company's history (:class:`CompanyHistory`: roster, bookings, opportunities) feeds only the
fallbacks and the product plans, so it may be passed as a loader that is called only when one of
them needs it: a commission what-if over the quota and pipeline stages' tables then never loads
(and re-aligns) the company.

It costs the primary plan and compares every plan on the same attainment (comparison mode), costs
the primary plan across attainment sets (costing mode), and traces every rep's payout (the payout
statements).
Every source it reports names its input: the caller's table labels or a fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.compensation.attainment import AttainmentSamples
from salesops_models.compensation.config import CompensationConfig
from salesops_models.compensation.plan import CompPlan, load_plan
from salesops_models.compensation.simulation import (
    CompInputs,
    CostSimulation,
    compare_plans,
    cost_plan_across,
)
from salesops_models.compensation.statements import payout_traces
from salesops_models.errors import SalesopsError

log = logging.getLogger(__name__)

#: sub-streams of the stage seed: 0 the fallback attainment, 1 the primary set's quarter split,
#: 10 + 2k and 11 + 2k costing set k and its split
STREAM_FALLBACK, STREAM_SPLIT, STREAM_COSTING = 0, 1, 10


@dataclass(frozen=True)
class CompanyHistory:
    """The company facts the costing falls back on (the company under the territory plan).

    Attributes
    ----------
    rep_ids
        The plan's reps (used when there is no quotas table).
    bookings
        Monthly bookings history (fallback quotas, quarterly seasonality).
    opportunities
        Opportunities (each rep's product mix and mean deal sizes, for product plans).
    as_of
        Snapshot date.
    """

    rep_ids: list[str]
    bookings: pd.DataFrame
    opportunities: pd.DataFrame
    as_of: pd.Timestamp


def needs_product_inputs(plans: list[CompPlan]) -> bool:
    """True when a plan weights products or pays a SPIF (it needs product mix or deal sizes)."""
    return any(p.products or p.spifs for p in plans)


def primary_plan(plans: list[CompPlan], cfg: CompensationConfig) -> CompPlan:
    """The plan named by ``compensation.primary_plan`` (its name or its reference), else the first."""
    if cfg.primary_plan is None:
        return plans[0]
    for ref, p in zip(cfg.plans, plans, strict=True):
        if cfg.primary_plan in (p.name, ref):
            return p
    raise SalesopsError(
        f"compensation.primary_plan '{cfg.primary_plan}' is not among compensation.plans "
        f"({', '.join(p.name for p in plans)}); name one of them"
    )


def history_quotas(bookings: pd.DataFrame, as_of: pd.Timestamp, rep_ids: list[str]) -> np.ndarray:
    """Each rep's bookings over the last 12 months as a stand-in quota [currency/yr].

    Reps without bookings get the mean of those with; raises when there is no history at all.
    """
    if len(bookings):
        recent = bookings[pd.to_datetime(bookings["month"]) > pd.Timestamp(as_of) - pd.DateOffset(months=12)]
        per_rep = recent.groupby(recent["rep_id"].astype(str))["amount"].sum()
        mean = float(per_rep[per_rep > 0].mean()) if (per_rep > 0).any() else np.nan
        q = np.array([float(per_rep.get(r, np.nan)) for r in rep_ids])
        q = np.where(q > 0, q, mean)
        if np.all(np.isfinite(q)):
            return q
    raise SalesopsError(
        "compensation: the quotas table is missing and the bookings history is empty, so no quota is known; "
        "run the quota stage or set compensation.fallback_quota"
    )


def quarter_shares(
    quotas_by_period: pd.DataFrame | None,
    bookings: pd.DataFrame | Callable[[], pd.DataFrame],
    rep_ids: list[str],
    label: str = "quotas_by_period",
) -> tuple[np.ndarray, str]:
    """Share of each rep's annual quota per quarter, shape (4, reps), and its source.

    The quarterly quotas when given for every rep (source ``label``), else the bookings history's
    quarterly seasonality (``bookings_seasonality``), else a quarter each (``equal``). ``bookings``
    may be a function returning the history: it is called only when the quotas fall short.
    """
    if quotas_by_period is not None and {"rep_id", "period", "period_type", "quota"} <= set(
        quotas_by_period.columns
    ):
        qt = quotas_by_period[quotas_by_period["period_type"] == "quarter"].copy()
        qt["q"] = qt["period"].astype(str).str.extract(r"Q([1-4])$")[0].astype(float)
        wide = qt.pivot_table(index="rep_id", columns="q", values="quota", aggfunc="sum").reindex(
            index=rep_ids, columns=[1.0, 2.0, 3.0, 4.0]
        )
        ok = wide.notna().all(axis=1) & (wide.sum(axis=1) > 0)
        if ok.all():
            w = wide.to_numpy(dtype=float)
            return (w / w.sum(axis=1, keepdims=True)).T, label
        log.warning(
            "compensation: quarterly quotas lack quarters for %d rep(s); using seasonality", (~ok).sum()
        )
    shares, source = np.full(4, 0.25), "equal"
    if callable(bookings):
        bookings = bookings()
    if len(bookings):
        q = (
            bookings.groupby(pd.to_datetime(bookings["month"]).dt.quarter)["amount"]
            .sum()
            .reindex([1, 2, 3, 4])
            .fillna(0.0)
        )
        if q.sum() > 0:
            shares, source = (q / q.sum()).to_numpy(), "bookings_seasonality"
    return np.repeat(shares[:, None], len(rep_ids), axis=1), source


def product_inputs(
    opportunities: pd.DataFrame, cfg: CompensationConfig, rep_ids: list[str]
) -> tuple[pd.DataFrame | None, dict[str, float]]:
    """Each rep's product mix of won value (or the configured mix) and mean deal size per product."""
    won = (
        opportunities[(opportunities["status"] == "won") & opportunities["amount"].notna()]
        if len(opportunities)
        else opportunities
    )
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


def dirichlet_quarter_split(
    shares: np.ndarray, concentration: float, n_trials: int, rng: np.random.Generator
) -> np.ndarray:
    """Each trial's split of a rep's bookings over quarters, around his quarterly quota shares.

    Dirichlet with parameters ``concentration x shares`` per rep, drawn as normalised gammas;
    shape (4, reps, trials).
    """
    alpha = concentration * shares.T[:, None, :] + 1e-9
    g = rng.gamma(alpha, size=(shares.shape[1], n_trials, 4))
    return np.moveaxis(g / g.sum(axis=-1, keepdims=True), -1, 0)


@dataclass
class ScenarioCost:
    """The commission cost of a scenario.

    Attributes
    ----------
    primary
        The primary plan's cost simulation.
    by_plan
        Every plan on the primary attainment set.
    comparison
        Comparison and costing modes in one table (``mode`` column), with ``primary`` and
        ``fingerprint``.
    by_quartile
        Cost of sales by attainment quartile, per plan.
    traces
        Every rep's calculation trace (primary plan, at his median simulated bookings).
    trace_rep
        The rep whose trace is shown on its own (``compensation.trace_rep``, else the median rep).
    """

    primary_name: str
    primary: CostSimulation
    by_plan: dict[str, CostSimulation]
    comparison: pd.DataFrame
    by_quartile: pd.DataFrame
    traces: pd.DataFrame
    trace_rep: str
    attainment_source: str
    quarter_split_source: str
    n_plans: int
    n_trials: int

    @property
    def trace(self) -> pd.DataFrame:
        """The trace of :attr:`trace_rep` (rows of :attr:`traces`)."""
        return self.traces[self.traces["rep_id"] == self.trace_rep].reset_index(drop=True)

    def metrics(self) -> dict[str, Any]:
        """Headline figures (the ``comp_*`` metrics without the prefix)."""
        s = self.primary.summary()
        q = self.by_quartile[self.by_quartile["plan"] == self.primary_name]["cost_of_sales"]
        return {
            "cost_p50": s["cost_p50"],
            "cost_p90": s["cost_p90"],
            "cost_mean": s["cost_mean"],
            "cost_of_sales": s["cost_of_sales"],
            "share_at_quota": s["share_at_quota"],
            "p90_earner": s["p90_earner"],
            "p90_earner_ti_multiple": s["p90_earner_ti_multiple"],
            "primary_plan": self.primary_name,
            "plans_compared": self.n_plans,
            "attainment_source": self.attainment_source,
            "trials": self.n_trials,
            "quarter_split_source": self.quarter_split_source,
            "cost_of_sales_bottom_quartile": float(q.iloc[0]),
            "cost_of_sales_top_quartile": float(q.iloc[-1]),
            "reps": len(self.primary.payouts_summary),
        }


def cost_scenario_plans(
    cfg: CompensationConfig,
    *,
    history: CompanyHistory | Callable[[], CompanyHistory],
    seed: np.random.SeedSequence,
    quotas: pd.DataFrame | None = None,
    quotas_by_period: pd.DataFrame | None = None,
    samples: pd.DataFrame | None = None,
    labels: dict[str, str] | None = None,
) -> ScenarioCost:
    """Cost the scenario's commission plans (see the module docstring).

    Parameters
    ----------
    cfg
        The scenario's ``compensation:`` section.
    history
        The company's history, or a function returning it; called at most once and only when
        needed: without a quotas table, without complete quarterly quotas, or when a plan weights
        products or pays SPIFs.
    seed
        The stage's seed sequence (sub-streams per draw, see the module's ``STREAM_*``).
    quotas, quotas_by_period, samples
        The quota and pipeline stages' tables, or None.
    labels
        Names of ``quotas``, ``quotas_by_period`` and ``samples`` in the sources (default: the keys).

    Raises
    ------
    SalesopsError
        Duplicate plan names, an unknown primary plan or trace rep, ``attainment_source: pipeline``
        without samples and quotas.
    """
    names = {"quotas": "quotas", "quotas_by_period": "quotas_by_period", "samples": "samples"} | (
        labels or {}
    )
    plans = [load_plan(ref) for ref in cfg.plans]
    plan_names = [p.name for p in plans]
    if len(set(plan_names)) != len(plan_names):
        raise SalesopsError(
            f"compensation.plans: two plans share a name ({plan_names}); plan names must be unique"
        )
    primary = primary_plan(plans, cfg)
    if cfg.attainment_source == "pipeline" and (samples is None or quotas is None):
        missing = names["samples"] if samples is None else names["quotas"]
        raise SalesopsError(
            f"compensation.attainment_source is 'pipeline' but the {missing} table is missing; run the pipeline and "
            "quota stages first, or set attainment_source: auto"
        )

    def rng(k: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, k)))

    loaded: list[CompanyHistory] = []

    def company() -> CompanyHistory:
        if not loaded:
            loaded.append(history() if callable(history) else history)
        return loaded[0]

    if quotas is not None:
        qt, quota_src = quotas, names["quotas"]
    else:
        h = company()
        value = (
            np.full(len(h.rep_ids), cfg.fallback_quota)
            if cfg.fallback_quota
            else history_quotas(h.bookings, h.as_of, h.rep_ids)
        )
        qt = pd.DataFrame({"rep_id": h.rep_ids, "quota": value})
        quota_src = "fallback_quota" if cfg.fallback_quota else "bookings_last_12_months"
        log.warning("compensation: no quotas table; using %s", quota_src)
    if samples is not None and cfg.attainment_source != "parametric":
        primary_set = AttainmentSamples.from_tables(samples, qt, label="pipeline")
        source = f"{names['samples']}/{quota_src}"
    else:
        dist = cfg.fallback_attainment.distribution()
        q = qt.drop_duplicates("rep_id").set_index("rep_id")["quota"].astype(float)
        primary_set = AttainmentSamples.from_distribution(
            dist,
            [str(r) for r in q.index],
            q.to_numpy(),
            cfg.n_trials,
            rng(STREAM_FALLBACK),
            cfg.fallback_attainment.name,
        )
        source = f"parametric/{quota_src}"
        log.info("compensation: attainment from %s", dist.describe())
    reps = primary_set.rep_ids
    if needs_product_inputs(plans):
        mix, deal_size = product_inputs(company().opportunities, cfg, reps)
    else:  # no plan credits by product or pays per deal: a mix would only multiply by one
        mix, deal_size = None, dict(cfg.deal_size or {})
    q_shares, q_source = quarter_shares(
        quotas_by_period, lambda: company().bookings, reps, names["quotas_by_period"]
    )
    relief = {str(k): v for k, v in cfg.quota_relief.items()}

    def inputs_for(samples_: AttainmentSamples, k: int) -> CompInputs:
        b_shares = q_shares
        if cfg.quarter_split_concentration is not None and any(p.periods > 1 for p in plans):
            b_shares = dirichlet_quarter_split(
                q_shares, cfg.quarter_split_concentration, samples_.n_trials, rng(k)
            )
        return CompInputs(mix, deal_size, relief, q_shares, b_shares)

    inputs = inputs_for(primary_set, STREAM_SPLIT)
    comparison, by_plan = compare_plans(plans, primary_set, inputs)
    sets = {primary_set.label: primary_set}
    set_inputs = {primary_set.label: inputs}
    for k, facts in enumerate(cfg.costing_sets):
        if facts.name in sets:
            raise SalesopsError(
                f"compensation.costing_sets: the name '{facts.name}' is used twice; names must be unique"
            )
        sets[facts.name] = AttainmentSamples.from_distribution(
            facts.distribution(),
            reps,
            primary_set.quota,
            cfg.n_trials,
            rng(STREAM_COSTING + 2 * k),
            facts.name,
        )
        set_inputs[facts.name] = inputs_for(sets[facts.name], STREAM_COSTING + 1 + 2 * k)
    costing, _ = cost_plan_across(primary, sets, set_inputs)
    table = pd.concat([comparison, costing], ignore_index=True)
    table["primary"] = table["plan"] == primary.name
    table["fingerprint"] = table["plan"].map({p.name: p.fingerprint() for p in plans})
    quartiles = pd.concat(
        [r.cost_of_sales_by_quartile().assign(plan=name) for name, r in by_plan.items()], ignore_index=True
    )
    main = by_plan[primary.name]
    ps = main.payouts_summary
    trace_rep = cfg.trace_rep or str(ps.sort_values("attainment_p50")["rep_id"].iloc[len(ps) // 2])
    if trace_rep not in reps:
        raise SalesopsError(
            f"compensation.trace_rep '{trace_rep}' is not a rep of this scenario (e.g. {reps[:3]})"
        )
    # every rep's trace at his median simulated bookings: the payout statements
    traces = payout_traces(primary, primary_set, inputs)
    return ScenarioCost(
        primary_name=primary.name,
        primary=main,
        by_plan=by_plan,
        comparison=table,
        by_quartile=quartiles,
        traces=traces,
        trace_rep=trace_rep,
        attainment_source=source,
        quarter_split_source=q_source,
        n_plans=len(plans),
        n_trials=primary_set.n_trials,
    )
