"""The LP relaxation + rounding path of the alignment: a valid bound, plans that meet every band."""

from __future__ import annotations

import numpy as np
import pytest

from salesops_models.territory import ACCOUNT_COUNT, BalanceMetric, SolverOptions, assign_territories
from salesops_models.territory.instance import (
    Objective,
    meets_constraints,
    objective_scales,
    pair_costs,
    prepare_instance,
)
from salesops_models.territory.lp_round import lp_round
from tests.test_territory import EXACT, brute_force, random_instance


def _company_instance(seed: int) -> tuple:
    """A 400-account, 12-rep sample company: two bands, 30% disruption budget, 6 candidate reps each."""
    from salesops_models.data import generate_sample_company
    from salesops_models.territory.neighbourhood import PairTerms

    company = generate_sample_company(seed=seed, n_accounts=400, n_reps=12, years=1)
    balance = [BalanceMetric("workload_hours", 0.08), BalanceMetric("potential", 0.1)]
    inst = prepare_instance(
        company.accounts, company.reps, balance, None, "workload_hours", "revenue_last_year", None, 6
    )
    objective = Objective(1.0, 0.3, objective_scales(inst, True), disruption_budget=0.3)
    return inst, objective, PairTerms.of(inst, objective)


@pytest.mark.parametrize("seed", range(4))
def test_lp_bound_below_the_enumerated_optimum_and_rounded_plan_meets_constraints(seed: int) -> None:
    accounts, reps = random_instance(seed)
    balance = [BalanceMetric("workload_hours", 0.35), BalanceMetric(ACCOUNT_COUNT, 0.5)]
    dw = [0.0, 0.002][seed % 2]
    best, feasible = brute_force(accounts, reps, balance, dw, None)
    inst = prepare_instance(accounts, reps, balance, None, "workload_hours", "potential", None, None)
    lp = lp_round(
        inst, Objective(1.0, dw, objective_scales(inst, False)), SolverOptions(time_limit=20, mip_gap=1e-6)
    )
    if feasible == 0:
        assert lp.assign is None
        return
    assert lp.lp_status == "optimal"
    assert lp.bound <= best + 1e-6 * max(1.0, best)
    assert lp.assign is not None  # tiny instance: rounding, repair or the restricted MILP finds a plan
    # the rounded plan is one of the enumerated feasible plans
    assert lp.objective >= best - 1e-6 * max(1.0, best)
    for b in balance:
        vals = np.ones(len(accounts)) if b.column == ACCOUNT_COUNT else accounts[b.column].to_numpy()
        load = np.bincount(lp.assign, weights=vals, minlength=len(reps))
        assert (load <= inst.upper[balance.index(b)] + 1e-6).all()
        assert (load >= inst.lower[balance.index(b)] - 1e-6).all()


def test_forced_lp_path_meets_bands_budget_and_reports_a_valid_bound() -> None:
    accounts, reps = random_instance(21, n_acc=150, n_rep=6)
    balance = [BalanceMetric("workload_hours", 0.08), BalanceMetric("potential", 0.1)]
    kw = dict(balance=balance, disruption_column="potential", disruption_budget=0.4, candidate_k=4)
    exact = assign_territories(accounts, reps, solver=SolverOptions(time_limit=60, mip_gap=0.0), **kw)
    fast = assign_territories(
        accounts, reps, lp_rounding=True, solver=SolverOptions(time_limit=30, mip_gap=0.02), **kw
    )
    assert exact.status == "optimal"
    assert fast.status in ("optimal", "feasible")
    assert any("LP relaxation bound" in n for n in fast.notes)
    ter = fast.territories
    for b in balance:
        assert ter[f"{b.column}_deviation"].abs().max() <= b.tolerance + 1e-9
    assert fast.disruption_share <= 0.4 + 1e-9
    # the reported bound is a bound: never above the proven optimum; the plan never below it
    assert fast.solve.bound <= exact.solve.objective * (1 + 1e-9)
    assert fast.solve.objective >= exact.solve.objective * (1 - 1e-9)
    assert fast.solve.gap <= 0.02 + 1e-9


def test_infeasible_lp_is_a_proof_and_the_diagnosis_still_comes_back() -> None:
    accounts, reps = random_instance(2, n_acc=12, n_rep=3)
    accounts = accounts.drop(columns="owner_rep_id")
    accounts["lat"], accounts["lon"] = reps.loc[0, "home_lat"], reps.loc[0, "home_lon"]
    # every account's only candidate is rep R0: the other two cannot reach their band, even fractionally
    res = assign_territories(
        accounts,
        reps,
        balance=[BalanceMetric(ACCOUNT_COUNT, 0.5)],
        candidate_k=1,
        lp_rounding=True,
        solver=EXACT,
    )
    assert res.status == "relaxed"
    assert any("LP relaxation infeasible" in n for n in res.notes)
    assert set(res.diagnosis["rep_id"]) == {"R0", "R1", "R2"}
    assert (res.assignments["rep_id"] == "R0").all()


def test_neighbourhood_search_never_worsens_and_keeps_every_constraint() -> None:
    from salesops_models.territory.heuristics import greedy_start
    from salesops_models.territory.neighbourhood import PairTerms, neighbourhood_search

    accounts, reps = random_instance(8, n_acc=200, n_rep=8)
    balance = [BalanceMetric("workload_hours", 0.1), BalanceMetric(ACCOUNT_COUNT, 0.15)]
    inst = prepare_instance(accounts, reps, balance, None, "workload_hours", "potential", None, 5)
    cost, moves, value = pair_costs(inst, Objective(1.0, 0.0, objective_scales(inst, True)))
    start = greedy_start(inst, None)
    assert meets_constraints(inst, start, value, moves, None, None)
    on_start = inst.pair_r == start[inst.pair_a]
    budget = float(value[on_start].sum()) / inst.owned_value + 0.02
    cap = int(moves[on_start].sum()) + 5
    terms = PairTerms(cost, moves, value, budget * inst.owned_value, cap)
    better = neighbourhood_search(
        inst, start, terms, SolverOptions(mip_gap=1e-6, node_limit=200), rounds=2, group_size=3
    )
    before = cost[inst.pair_r == start[inst.pair_a]].sum()
    after = cost[inst.pair_r == better[inst.pair_a]].sum()
    assert after < before  # a greedy balance plan leaves travel to gain
    assert meets_constraints(inst, better, value, moves, budget, cap)


def test_blocked_distances_candidates_and_owner_pairs_equal_the_dense_construction(monkeypatch) -> None:
    """The large-instance arrays (distances and candidates in row blocks, owner pairs by bisection) are
    exactly those of the whole-matrix construction, locks and owners outside the candidates included."""
    from salesops_models.geo import haversine_km
    from salesops_models.territory import geo

    monkeypatch.setattr(geo, "BLOCK_CELLS", 6)  # blocks of 2 accounts on a 7 x 3 instance
    accounts, reps = random_instance(3)
    assert len(geo.row_blocks(len(accounts), len(reps))) > 1
    lock_acc, lock_rep = str(accounts.account_id.iloc[0]), str(reps.rep_id.iloc[-1])
    inst = prepare_instance(
        accounts,
        reps,
        [BalanceMetric("workload_hours", 0.3)],
        None,
        "workload_hours",
        None,
        {lock_acc: lock_rep},
        2,
    )
    lat, lon = accounts.lat.to_numpy(float), accounts.lon.to_numpy(float)
    dense = haversine_km(
        lat[:, None],
        lon[:, None],
        reps.home_lat.to_numpy(float)[None, :],
        reps.home_lon.to_numpy(float)[None, :],
    )
    assert np.array_equal(inst.distance, dense)
    # each account: its 2 nearest reps, its owner, or only its lock
    for a in range(len(accounts)):
        got = set(inst.pair_r[inst.pair_a == a].tolist())
        if inst.lock[a] >= 0:
            assert got == {int(inst.lock[a])}
        else:
            assert got == set(np.argsort(dense[a], kind="stable")[:2].tolist()) | {int(inst.owner[a])}
    for a in range(len(accounts)):
        p = inst.owner_pair[a]
        if inst.owner[a] >= 0 and int(inst.owner[a]) in set(inst.pair_r[inst.pair_a == a].tolist()):
            assert inst.pair_a[p] == a and inst.pair_r[p] == inst.owner[a]
        else:
            assert p == -1


def test_column_generation_reaches_the_bound_of_the_whole_lp() -> None:
    """Pricing out from a core of 2 pairs per account ends at the whole LP's objective, and the reduced
    costs computed from the row duals are HiGHS's own for the columns in the LP."""
    from salesops_models.territory.lp_round import (
        _model,
        lp_by_column_generation,
        reduced_costs,
    )
    from salesops_models.territory.solver import Deadline, highs_solver

    inst, objective, terms = _company_instance(seed=3)
    options = SolverOptions(time_limit=60)
    whole = highs_solver(options, mip=False)
    whole.passModel(_model(inst, terms.cost, terms.moves, terms.value, 0.3, None))
    whole.run()
    bound = whole.getInfo().objective_function_value
    h, cols, status = lp_by_column_generation(inst, terms, objective, options, Deadline(60), core_k=2)
    assert status == "optimal"
    assert (cols >= 0).sum() < len(inst.pair_a)  # some pairs never entered
    assert h.getInfo().objective_function_value == pytest.approx(bound, rel=1e-7)
    sol = h.getSolution()
    d = reduced_costs(inst, terms, np.asarray(sol.row_dual), objective)
    in_lp = cols >= 0
    assert np.allclose(d[cols[in_lp]], np.asarray(sol.col_dual)[in_lp], atol=1e-7)
    out = np.ones(len(d), dtype=bool)
    out[cols[in_lp]] = False
    assert d[out].min() >= -1e-7  # no pair left out prices out (those in the LP may sit at 1)


def test_lagrangian_bound_is_valid_and_close_to_the_lp_bound_and_its_path_gives_a_plan(
    monkeypatch,
) -> None:
    """Every Lagrangian value is a lower bound (weak duality), so it stays at or below the LP bound; its
    maximum is the LP bound, which 400 steps approach within 1% here; the whole-company path repairs
    the relaxed choice into a plan inside every band and the budget."""
    from salesops_models.territory import lp_round as lpr
    from salesops_models.territory.heuristics import SearchLimits
    from salesops_models.territory.lagrangian import lagrangian_bound

    inst, objective, terms = _company_instance(seed=3)
    options = SolverOptions(time_limit=60, mip_gap=0.5)  # the bound is what counts: no long search
    limits = SearchLimits(rins_rounds=1, neighbourhood_rounds=0)
    lp = lp_round(inst, objective, options, limits=limits)
    assert lp.lp_status == "optimal"
    lag = lagrangian_bound(inst, terms, objective, iterations=400)
    assert lag.bound <= lp.bound + 1e-9 * abs(lp.bound)
    assert lag.bound >= lp.bound * 0.99
    assert (lag.reduced >= 0).all()
    monkeypatch.setattr(lpr, "LAGRANGIAN_PAIRS", 0)
    path = lp_round(inst, objective, options, limits=limits)
    # the same first steps, then more aimed at the plan: never lower, still valid
    assert path.lp_status == "lagrangian"
    assert lag.bound <= path.bound <= lp.bound + 1e-9 * abs(lp.bound)
    assert path.assign is not None
    assert meets_constraints(inst, path.assign, terms.value, terms.moves, 0.3, None)
    assert path.objective >= lp.bound - 1e-9


def test_bound_at_lp_duals_is_the_lp_bound_and_below_it_for_other_duals() -> None:
    """The Lagrangian value at the duals of the whole LP is its bound (strong duality); at the duals of an
    LP over a few pairs per account it is still at or below the whole LP's bound (weak duality), though
    that LP's own objective is above it; the core read off the Lagrangian costs holds every account's
    cheapest pair."""
    from dataclasses import replace

    from salesops_models.territory.lagrangian import lagrangian_bound
    from salesops_models.territory.lp_round import _model, dual_bound, lagrangian_core, multipliers_of_duals
    from salesops_models.territory.solver import highs_solver

    inst, objective, terms = _company_instance(seed=4)

    def solved(cols: np.ndarray | None, slack_cost: float | None = None) -> object:
        h = highs_solver(SolverOptions(time_limit=60), mip=False)
        h.passModel(_model(inst, terms.cost, terms.moves, terms.value, 0.3, None, slack_cost, cols))
        h.run()
        return h

    whole = solved(None)
    bound = whole.getInfo().objective_function_value
    duals = np.asarray(whole.getSolution().row_dual)
    assert dual_bound(inst, terms, objective, duals) == pytest.approx(bound, rel=1e-7)
    # the same multipliers in the subgradient's scaling: its first value is that bound
    lag = lagrangian_bound(inst, terms, objective, iterations=30)
    again = lagrangian_bound(
        inst,
        terms,
        objective,
        iterations=1,
        start=replace(lag, multipliers=multipliers_of_duals(inst, terms, duals)),
    )
    assert again.bound == pytest.approx(bound, rel=1e-7)
    core = lagrangian_core(inst, lag)
    assert np.array_equal(np.unique(inst.pair_a[core]), np.arange(inst.n_accounts))
    assert core[lag.recent].all() and lag.recent.sum() >= inst.n_accounts
    few = np.flatnonzero(core | (np.arange(len(core)) == inst.owner_pair[inst.pair_a]))
    assert len(few) < len(core) / 2
    # the strict LP over these pairs has no solution here; its elastic version (as in column generation) does
    part = solved(few, slack_cost=1e3 * terms.cost.sum())
    assert part.getModelStatus().name == "kOptimal"
    assert dual_bound(inst, terms, objective, np.asarray(part.getSolution().row_dual)) <= bound + 1e-9
