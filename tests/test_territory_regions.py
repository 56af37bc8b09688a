"""Whole companies by regions (``territory/regions.py``): a plan inside every band and the budget, a
bound that is a valid lower bound of the whole company, the same plan on every run."""

from __future__ import annotations

import numpy as np
import pytest

from salesops_models.territory import BalanceMetric, SolverOptions, assign_territories
from salesops_models.territory.heuristics import SearchLimits
from salesops_models.territory.instance import (
    Objective,
    meets_constraints,
    objective_scales,
    prepare_instance,
)
from salesops_models.territory.neighbourhood import PairTerms
from salesops_models.territory.regions import regional_plan, rep_regions, sub_instance

BALANCE = [BalanceMetric("workload_hours", 0.05), BalanceMetric("potential", 0.05)]


def _company(n_accounts: int, n_reps: int) -> tuple:
    """The sample company with the scale benchmark's rules: +-5% on two metrics, 30% budget, k = 12."""
    from salesops_models.data import generate_sample_company

    company = generate_sample_company(seed=7, n_accounts=n_accounts, n_reps=n_reps, years=1)
    inst = prepare_instance(
        company.accounts, company.reps, BALANCE, None, "workload_hours", "revenue_last_year", None, 12
    )
    objective = Objective(1.0, 0.0, objective_scales(inst, True), disruption_budget=0.3)
    return company, inst, objective


def test_bisection_gives_regions_of_at_most_max_reps_and_covers_every_rep() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.uniform(size=97), rng.uniform(size=97)
    region = rep_regions(x, y, 10)
    sizes = np.bincount(region)
    assert len(sizes) == 10 and sizes.max() <= 10 and sizes.min() >= 9
    assert np.array_equal(region, rep_regions(x.copy(), y.copy(), 10))
    # a cut across the longer side: the two halves of the first cut do not overlap in x
    wide = rep_regions(x * 10, y, 50)
    assert x[wide == 0].max() <= x[wide == 1].min()


def test_sub_instance_keeps_the_company_costs_bands_and_owners() -> None:
    _, inst, objective = _company(600, 8)
    accounts, reps = np.arange(0, 600, 2), np.array([1, 3, 4, 6])
    sub = sub_instance(inst, accounts, reps)
    whole, part = PairTerms.of(inst, objective), PairTerms.of(sub, objective)
    keep = np.isin(inst.pair_a, accounts) & np.isin(inst.pair_r, reps)
    assert np.allclose(part.cost, whole.cost[keep])  # the company's scales: costs add up across regions
    assert np.allclose(sub.upper, inst.upper[:, reps]) and np.allclose(sub.lower, inst.lower[:, reps])
    inside = np.isin(inst.owner[accounts], reps)
    assert np.array_equal(reps[sub.owner[inside]], inst.owner[accounts][inside])
    assert (sub.owner[~inside] == -1).all()  # owned outside the region: moved already


def test_regional_plan_meets_every_constraint_its_bound_is_valid_and_it_repeats() -> None:
    from salesops_models.territory.lp_round import lp_round

    _, inst, objective = _company(1500, 20)
    options = SolverOptions(time_limit=120, mip_gap=0.01)
    limits = SearchLimits(rins_rounds=2, neighbourhood_rounds=0, lagrangian_steps=200)
    res, split = regional_plan(inst, objective, options, limits=limits, max_reps=7)
    # three regions of at most 7 reps, or fewer when one had to be merged with its neighbour
    assert split is not None and 2 <= int(split.region.max()) + 1 <= 3
    assert np.array_equal(np.unique(split.account_region), np.unique(split.region))
    assert res.assign is not None and (res.assign >= 0).all() and len(res.assign) == inst.n_accounts
    terms = PairTerms.of(inst, objective)
    assert meets_constraints(inst, res.assign, terms.value, terms.moves, 0.3, None)
    assert res.objective == pytest.approx(terms.objective(inst, res.assign), rel=1e-12)
    # the bound: at or below the plan and at or below the whole company's LP bound (weak duality)
    whole = lp_round(inst, objective, options, limits=SearchLimits(rins_rounds=0, neighbourhood_rounds=0))
    assert whole.lp_status == "optimal"
    assert res.bound <= whole.bound * (1 + 1e-9) <= res.objective * (1 + 1e-9)
    assert res.bound >= 0.9 * whole.bound  # the regions' duals give a useful start
    again, _ = regional_plan(inst, objective, options, limits=limits, max_reps=7)
    assert np.array_equal(again.assign, res.assign) and again.bound == res.bound


def test_alignment_takes_the_regional_path_from_its_threshold(monkeypatch) -> None:
    from salesops_models.territory import regions

    company, _, _ = _company(600, 8)
    monkeypatch.setattr(regions, "REGIONAL_PAIRS", 0)
    monkeypatch.setattr(regions, "REGION_REPS", 4)
    res = assign_territories(
        company.accounts,
        company.reps,
        balance=BALANCE,
        candidate_k=6,
        disruption_column="revenue_last_year",
        disruption_budget=0.3,
        lp_rounding=True,
        solver=SolverOptions(time_limit=60, mip_gap=0.01),
        limits=SearchLimits(rins_rounds=1, neighbourhood_rounds=0, lagrangian_steps=100),
    )
    s = res.summary()
    assert any("regions of reps" in n for n in res.notes), res.notes
    assert s["max_abs_deviation_workload_hours"] <= 0.05 + 1e-9
    assert s["max_abs_deviation_potential"] <= 0.05 + 1e-9
    assert s["disruption_share"] <= 0.3 + 1e-9
    assert s["bound"] <= s["objective"]
