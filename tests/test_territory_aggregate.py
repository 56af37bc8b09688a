"""Whole companies by blocks of accounts (``territory/aggregate.py``): blocks that keep owners, locks and
candidates, a block plan whose loads and objective are exactly the accounts', a bound that is a valid
lower bound over every account pair, and the same plan on every run."""

from __future__ import annotations

import numpy as np
import pytest

from salesops_models.territory import BalanceMetric, SolverOptions, assign_territories
from salesops_models.territory.aggregate import account_blocks, aggregated_plan, block_instance
from salesops_models.territory.heuristics import SearchLimits
from salesops_models.territory.instance import (
    Objective,
    meets_constraints,
    objective_scales,
    prepare_instance,
    territory_loads,
)
from salesops_models.territory.neighbourhood import PairTerms

BALANCE = [BalanceMetric("workload_hours", 0.05), BalanceMetric("potential", 0.05)]


def _company(n_accounts: int, n_reps: int, locks: int = 0) -> tuple:
    """The sample company with the scale benchmark's rules: +-5% on two metrics, 30% budget, k = 12;
    ``locks`` accounts locked to a rep other than their owner."""
    from salesops_models.data import generate_sample_company

    company = generate_sample_company(seed=7, n_accounts=n_accounts, n_reps=n_reps, years=1)
    accounts = company.accounts.copy()
    lock = None
    if locks:
        rows = np.arange(0, n_accounts, n_accounts // locks)[:locks]
        reps = company.reps["rep_id"].to_numpy()
        owner = accounts["owner_rep_id"].to_numpy()
        lock = {
            str(accounts["account_id"].iloc[i]): str(reps[(list(reps).index(owner[i]) + 1) % len(reps)])
            for i in rows
        }
    inst = prepare_instance(
        accounts, company.reps, BALANCE, None, "workload_hours", "revenue_last_year", lock, 12
    )
    objective = Objective(1.0, 0.0, objective_scales(inst, True), disruption_budget=0.3)
    return company, inst, objective


def test_blocks_keep_owner_lock_and_size_and_every_member_has_the_block_candidates() -> None:
    _, inst, _ = _company(900, 10, locks=9)
    block = account_blocks(inst, 4)
    assert len(block) == inst.n_accounts and block.min() == 0
    sizes = np.bincount(block)
    assert sizes.min() >= 1 and sizes.max() <= 4 and sizes.mean() > 1.5  # blocks, not single accounts
    for g in np.flatnonzero(sizes > 1):
        members = np.flatnonzero(block == g)
        assert len(set(inst.owner[members])) == 1 and len(set(inst.lock[members])) == 1
    coarse = block_instance(inst, block)
    assert coarse.n_accounts == len(sizes)
    member_pairs = set(zip(inst.pair_a.tolist(), inst.pair_r.tolist(), strict=True))
    for g, r in zip(coarse.pair_a.tolist(), coarse.pair_r.tolist(), strict=True):
        assert all((a, r) in member_pairs for a in np.flatnonzero(block == g))
    # every block keeps its owner (or lock) as a candidate, so the owners' plan exists for blocks too
    home = np.where(coarse.lock >= 0, coarse.lock, coarse.owner)
    have = set(zip(coarse.pair_a.tolist(), coarse.pair_r.tolist(), strict=True))
    assert all((g, r) in have for g, r in enumerate(home.tolist()) if r >= 0)
    # the same blocks on every call
    assert np.array_equal(block, account_blocks(inst, 4))


def test_a_block_plan_spread_to_the_accounts_has_the_same_loads_objective_and_moved_value() -> None:
    _, inst, objective = _company(900, 10, locks=9)
    block = account_blocks(inst, 5)
    coarse = block_instance(inst, block)
    rng = np.random.default_rng(11)
    # a random plan of the blocks over their own candidates
    starts = np.r_[0, np.flatnonzero(np.diff(coarse.pair_a)) + 1, len(coarse.pair_a)]
    pick = starts[:-1] + (rng.random(coarse.n_accounts) * np.diff(starts)).astype(int)
    block_plan = coarse.pair_r[pick]
    plan = block_plan[block]
    assert np.allclose(territory_loads(coarse, block_plan), territory_loads(inst, plan), rtol=1e-12)
    whole, part = PairTerms.of(inst, objective), PairTerms.of(coarse, objective)
    assert part.objective(coarse, block_plan) == pytest.approx(whole.objective(inst, plan), rel=1e-12)
    from salesops_models.territory.instance import plan_pairs

    assert part.value[plan_pairs(coarse, block_plan)].sum() == pytest.approx(
        whole.value[plan_pairs(inst, plan)].sum(), rel=1e-12
    )
    assert coarse.owned_value == pytest.approx(inst.owned_value, rel=1e-12)


def test_aggregated_plan_meets_every_constraint_its_bound_is_valid_and_it_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from salesops_models.territory import aggregate
    from salesops_models.territory.lp_round import lp_round

    _, inst, objective = _company(2000, 20, locks=10)
    options = SolverOptions(time_limit=300, mip_gap=0.001)
    limits = SearchLimits(rins_rounds=2)
    monkeypatch.setattr(aggregate, "BLOCK_PAIRS", len(inst.pair_a) // 4)  # blocks of 4 accounts at most
    res = aggregated_plan(inst, objective, options, limits=limits, deadline=None)
    again = aggregated_plan(inst, objective, options, limits=limits, deadline=None)
    assert res.lp_status == "lagrangian" and res.assign is not None and len(res.assign) == inst.n_accounts
    terms = PairTerms.of(inst, objective)
    assert meets_constraints(inst, res.assign, terms.value, terms.moves, 0.3, None)
    locked = inst.lock >= 0
    assert locked.any() and np.array_equal(res.assign[locked], inst.lock[locked])
    assert res.objective == pytest.approx(terms.objective(inst, res.assign), rel=1e-12)
    # the bound: at or below the whole LP over every account pair (weak duality), and close to it
    whole = lp_round(inst, objective, options, limits=SearchLimits(rins_rounds=0, neighbourhood_rounds=0))
    assert whole.lp_status == "optimal"
    assert res.bound <= whole.bound * (1 + 1e-9) <= res.objective * (1 + 1e-9)
    assert res.bound >= 0.995 * whole.bound  # the block LP's duals alone: no subgradient steps
    assert res.gap < 0.05
    assert np.array_equal(again.assign, res.assign) and again.bound == res.bound


def test_assign_territories_takes_the_block_path_from_its_threshold_and_reports_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from salesops_models.territory import aggregate

    company, _, _ = _company(1200, 12)
    monkeypatch.setattr(aggregate, "AGGREGATE_PAIRS", 1)  # every instance
    res = assign_territories(
        company.accounts,
        company.reps,
        balance=BALANCE,
        candidate_k=12,
        disruption_column="revenue_last_year",
        disruption_budget=0.3,
        limits=SearchLimits(rins_rounds=1),
        solver=SolverOptions(time_limit=300, mip_gap=0.01),
    )
    s = res.summary()
    assert s["solver_path"] == "lp_rounding" and np.isfinite(s["bound"]) and s["mip_gap"] >= 0
    assert any("block" in n for n in res.notes)
    assert s["max_abs_deviation_workload_hours"] <= 0.05 + 1e-9 and s["disruption_share"] <= 0.3 + 1e-9


def test_restore_budget_returns_accounts_to_their_owners_inside_the_bands_until_the_budget_holds() -> None:
    from salesops_models.territory.heuristics import greedy_start, restore_budget
    from salesops_models.territory.instance import largest_share

    _, inst, objective = _company(900, 10)
    terms = PairTerms.of(inst, objective)
    # a plan inside the bands that moves far more than the budget: the nearest rep of every account,
    # rebalanced
    x = np.zeros(len(inst.pair_a))
    x[inst.nearest_pair] = 1.0
    plan = greedy_start(inst, None, start=largest_share(inst, x))
    assert meets_constraints(inst, plan, terms.value, terms.moves, None, None)
    moved = lambda p: float(inst.value[(inst.owner >= 0) & (p != inst.owner)].sum())  # noqa: E731
    budget = 0.97 * moved(plan)
    out = restore_budget(inst, plan, terms.cost, budget)
    changed = out != plan
    assert changed.any() and np.array_equal(out[changed], inst.owner[changed])  # only returns to owners
    assert meets_constraints(inst, out, terms.value, terms.moves, None, None)  # every band still holds
    assert moved(out) <= budget + 1e-9 * budget
    # within the budget already: nothing changes
    assert np.array_equal(restore_budget(inst, out, terms.cost, budget), out)
    # a budget single returns cannot reach: less moved, and no return left that keeps both bands
    far = restore_budget(inst, plan, terms.cost, 0.3 * moved(plan))
    assert budget > moved(far) > 0.3 * moved(plan)
    from salesops_models.territory.instance import territory_loads

    load = territory_loads(inst, far)
    for a in np.flatnonzero(
        (inst.owner >= 0) & (far != inst.owner) & (inst.owner_pair >= 0) & (inst.value > 0)
    ):
        m, src, dst = inst.metric_values[:, a], far[a], inst.owner[a]
        assert (load[:, src] - m < inst.lower[:, src] - 1e-9).any() or (
            load[:, dst] + m > inst.upper[:, dst] + 1e-9
        ).any()


def test_rins_region_by_region_keeps_every_constraint_and_never_costs_more() -> None:
    from salesops_models.territory.lp_round import lp_round
    from salesops_models.territory.neighbourhood import relaxation_induced_search
    from salesops_models.territory.regions import rep_centroids, rep_regions

    _, inst, objective = _company(1500, 12)
    options = SolverOptions(time_limit=300, mip_gap=1e-6, node_limit=100)
    lp = lp_round(inst, objective, options, limits=SearchLimits(rins_rounds=0, neighbourhood_rounds=0))
    assert lp.assign is not None and lp.x is not None and lp.row_dual is not None
    terms = PairTerms.of(inst, objective)
    from salesops_models.territory.lp_round import reduced_costs

    reduced = np.maximum(reduced_costs(inst, terms, lp.row_dual, objective), 0.0)
    region = rep_regions(*rep_centroids(inst), 4)
    assert int(region.max()) + 1 == 3
    out = relaxation_induced_search(inst, lp.assign, lp.x, reduced, terms, options, rounds=3, region=region)
    assert meets_constraints(inst, out, terms.value, terms.moves, 0.3, None)
    assert terms.objective(inst, out) <= terms.objective(inst, lp.assign) + 1e-12
    assert terms.objective(inst, out) >= lp.bound - 1e-9
