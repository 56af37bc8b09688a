"""Free-centre design: p-median (Lagrangian tree, covering MILP, automatic choice), capacitated p-median,
placing new reps. Every exact method is checked against enumeration on small instances."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from salesops_models.territory.capacitated import (
    assign_to_centres,
    capacitated_local_search,
    knapsack_lagrangian,
    regret_assignment,
)
from salesops_models.territory.design import (
    p_median,
    p_median_lagrangian,
    p_median_levels,
    place_new_reps,
    swap_search,
)
from salesops_models.territory.solver import SolverOptions
from salesops_models.testing import benchmarks_dir

EXACT = SolverOptions(time_limit=30, mip_gap=0.0)


def _instance(seed: int, n: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (n, 2))
    w = rng.integers(1, 5, n)
    return np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)).round() * w[:, None]


def _enumerate(cost: np.ndarray, p: int, fixed: tuple[int, ...] = ()) -> float:
    free = [j for j in range(cost.shape[1]) if j not in fixed]
    return min(
        cost[:, list(fixed) + list(c)].min(axis=1).sum() for c in itertools.combinations(free, p - len(fixed))
    )


@pytest.mark.parametrize("seed", range(4))
def test_p_median_methods_match_enumeration(seed: int) -> None:
    cost = _instance(seed)
    p = 2 + seed % 3
    best = _enumerate(cost, p)
    results = {
        "auto": p_median(cost, p, solver=EXACT),
        "radius": p_median_levels(cost, p, initial_levels=1, solver=EXACT),
        "lagrangian": p_median_lagrangian(cost, p, solver=EXACT),
    }
    for name, res in results.items():
        assert res.solve.status == "optimal", name
        assert res.objective == pytest.approx(best), name
        assert res.solve.bound == pytest.approx(best), name
        assert len(res.centres) == p and set(res.assignment) <= set(res.centres), name
        # every client goes to its cheapest open centre
        assert cost[np.arange(len(cost)), res.assignment] == pytest.approx(cost[:, res.centres].min(axis=1))


@pytest.mark.parametrize("method", ["radius", "lagrangian"])
def test_fixed_centres_stay_open_and_the_rest_is_optimal(method: str) -> None:
    cost = _instance(7, n=14)
    fixed = (0, 5)
    best = _enumerate(cost, 4, fixed)
    res = p_median(cost, 4, fixed_open=list(fixed), method=method, solver=EXACT)
    assert res.solve.status == "optimal"
    assert set(fixed) <= set(res.centres.tolist())
    assert res.objective == pytest.approx(best)


def test_forbidden_pairs_are_never_used() -> None:
    cost = _instance(3)
    cost[:6, 6:] = np.inf  # the first six clients may only use the first six sites
    best = min(
        cost[:, list(c)].min(axis=1).sum()
        for c in itertools.combinations(range(12), 3)
        if np.isfinite(cost[:, list(c)].min(axis=1)).all()
    )
    for method in ("radius", "lagrangian"):
        res = p_median(cost, 3, method=method, solver=EXACT)
        assert res.objective == pytest.approx(best)
        assert np.isfinite(cost[np.arange(12), res.assignment]).all()


def test_swap_search_is_a_local_optimum() -> None:
    cost = _instance(11, n=15)
    centres, value = swap_search(cost, 3)
    for out in centres:
        for into in set(range(15)) - set(centres.tolist()):
            trial = [c for c in centres if c != out] + [into]
            assert cost[:, trial].min(axis=1).sum() >= value - 1e-9


def _capacitated_instance(seed: int, n: int, p: int, slack: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Floor-Euclidean costs, integer demands, capacity ``slack`` times the mean load of a centre."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 50, (n, 2))
    demand = rng.integers(1, 6, n).astype(float)
    cost = np.floor(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)))
    return cost, demand, float(np.ceil(slack * demand.sum() / p))


def _enumerate_capacitated(cost: np.ndarray, demand: np.ndarray, cap: float, p: int) -> float:
    """Cheapest single-source plan over every centre set and every assignment (a centre serves itself)."""
    return min(value for value, _ in _capacitated_plans(cost, demand, cap, p))


def _capacitated_plans(
    cost: np.ndarray, demand: np.ndarray, cap: float, p: int
) -> list[tuple[float, np.ndarray]]:
    """Every feasible single-source plan with its cost (a centre serves itself)."""
    n = len(cost)
    plans = []
    for centres in itertools.combinations(range(n), p):
        others = [i for i in range(n) if i not in centres]
        for choice in itertools.product(centres, repeat=len(others)):
            a = np.arange(n)
            a[others] = choice
            if (np.bincount(a, weights=demand, minlength=n) > cap).any():
                continue
            plans.append((float(cost[np.arange(n), a].sum()), a))
    return plans


def _assert_feasible_plan(assign: np.ndarray, demand: np.ndarray, cap: float, p: int) -> None:
    centres = np.unique(assign)
    assert len(centres) <= p
    assert (np.bincount(assign, weights=demand, minlength=len(assign)) <= cap + 1e-9).all()
    assert (assign[centres] == centres).all()


@pytest.mark.parametrize(
    ("seed", "n", "p", "slack"), [(4, 8, 2, 1.2), (5, 9, 3, 1.15), (6, 9, 3, 1.3), (7, 9, 3, 1.05)]
)
def test_capacitated_p_median_respects_capacity_against_enumeration(
    seed: int, n: int, p: int, slack: float
) -> None:
    cost, demand, cap = _capacitated_instance(seed, n, p, slack)
    best = _enumerate_capacitated(cost, demand, cap, p)
    res = p_median(cost, p, demand=demand, capacity=cap, solver=EXACT)
    assert res.solve.status == "optimal"
    assert res.objective == pytest.approx(best)
    _assert_feasible_plan(res.assignment, demand, cap, p)


@pytest.mark.parametrize(("seed", "n", "p", "slack"), [(5, 9, 3, 1.15), (6, 9, 3, 1.3)])
def test_capacitated_start_heuristics_give_feasible_plans_no_better_than_the_optimum(
    seed: int, n: int, p: int, slack: float
) -> None:
    cost, demand, cap = _capacitated_instance(seed, n, p, slack)
    caps = np.full(n, cap)
    best = _enumerate_capacitated(cost, demand, cap, p)
    start, _ = swap_search(cost, p)
    exact, exact_assign, proven = assign_to_centres(cost, demand, caps, start, EXACT)
    greedy, greedy_assign = regret_assignment(cost, demand, caps, start)
    value, assign, rounds = capacitated_local_search(cost, demand, caps, start, np.array([], int), EXACT)
    assert proven and exact_assign is not None and assign is not None
    for plan in (exact_assign, assign) + ((greedy_assign,) if greedy_assign is not None else ()):
        _assert_feasible_plan(plan, demand, cap, p)
    assert (greedy_assign is None) or greedy >= exact - 1e-9  # the exact assignment of the same centres
    assert best - 1e-9 <= value <= exact + 1e-9  # the search only accepts improvements
    assert value == pytest.approx(cost[np.arange(n), assign].sum())
    assert 1 <= rounds


@pytest.mark.parametrize(("seed", "n", "p", "slack"), [(5, 9, 3, 1.15), (6, 9, 3, 1.3), (7, 9, 3, 1.05)])
def test_knapsack_lagrangian_bound_and_fixing_keep_every_optimal_plan(
    seed: int, n: int, p: int, slack: float
) -> None:
    cost, demand, cap = _capacitated_instance(seed, n, p, slack)
    plans = _capacitated_plans(cost, demand, cap, p)
    best = min(v for v, _ in plans)
    optimal = [a for v, a in plans if v == best]
    # against the cheapest plan dearer than the optimum, every optimal plan must survive the fixing
    worse = min((a for v, a in plans if v > best), key=lambda a: cost[np.arange(n), a].sum())
    upper = float(cost[np.arange(n), worse].sum())
    out = knapsack_lagrangian(cost, demand, np.full(n, cap), p, np.array([], int), upper, worse, step=1.0)
    assert out is not None
    assert out.bound <= best + 1e-6
    for a in optimal:
        assert not out.dropped_pairs[np.arange(n), a].any()
        assert not out.closed_sites[np.unique(a)].any()
    # a plan with fractional demand has no knapsack table: no bound claimed
    assert (
        knapsack_lagrangian(cost, demand + 0.5, np.full(n, cap), p, np.array([], int), upper, worse) is None
    )


@pytest.mark.parametrize("fractional", [False, True])
def test_capacitated_p_median_with_separate_sites_matches_enumeration(fractional: bool) -> None:
    """Clients are not the sites (no self-service); fractional demand skips the knapsack bound."""
    rng = np.random.default_rng(11)
    clients, sites = rng.uniform(0, 50, (9, 2)), rng.uniform(0, 50, (5, 2))
    cost = np.floor(np.sqrt(((clients[:, None] - sites[None]) ** 2).sum(-1)))
    demand = rng.integers(1, 6, 9).astype(float) + (0.5 if fractional else 0.0)
    cap = np.array([18.0, 16.0, 20.0, 17.0, 19.0])
    best = np.inf
    for centres in itertools.combinations(range(5), 2):
        for choice in itertools.product(centres, repeat=9):
            a = np.array(choice)
            if (np.bincount(a, weights=demand, minlength=5) <= cap).all():
                best = min(best, cost[np.arange(9), a].sum())
    res = p_median(cost, 2, demand=demand, capacity=cap, solver=EXACT)
    assert res.solve.status == "optimal"
    assert res.objective == pytest.approx(best)
    assert (np.bincount(res.assignment, weights=demand, minlength=5) <= cap + 1e-9).all()
    assert res.solve.bound <= best + 1e-6


@pytest.mark.benchmarkdata
def test_pmedcap1_instance_1_optimum_713() -> None:
    if not (benchmarks_dir() / "territory" / "pmedcap1_orlib").exists():
        pytest.skip(f"benchmark data not found at {benchmarks_dir()}")
    path = benchmarks_dir() / "territory" / "pmedcap1_orlib" / "pmedcap1_01.txt"
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    n, p, cap = int(lines[1][0]), int(lines[1][1]), float(lines[1][2])
    pts = np.array([[float(v) for v in ln[:4]] for ln in lines[2 : 2 + n]])
    d = np.floor(np.sqrt(((pts[:, None, 1:3] - pts[None, :, 1:3]) ** 2).sum(-1)))  # truncated, as OR-Library
    res = p_median(d, p, demand=pts[:, 3], capacity=cap, solver=EXACT)
    assert res.objective == 713  # rounded or real distances would give 726 or 728.26


def test_place_new_reps_is_exact_and_repeatable(small_company) -> None:
    acc, reps = small_company.accounts, small_company.reps
    first = place_new_reps(acc, reps, 2, solver=SolverOptions(time_limit=30))
    second = place_new_reps(acc, reps, 2, solver=SolverOptions(time_limit=30))
    assert first.solve.status == "optimal" and not first.clock_fired
    pd.testing.assert_frame_equal(first.new_reps, second.new_reps)
    assert first.site_account_ids == second.site_account_ids
    assert list(first.new_reps["rep_id"]) == ["NEW001", "NEW002"]
    # no other pair of candidate accounts does better (enumerated over the sites of the placement)
    from salesops_models.territory.geo import distance_matrix_km

    w = acc["workload_hours"].to_numpy(float)
    base = distance_matrix_km(acc["lat"], acc["lon"], reps["home_lat"], reps["home_lon"]) * w[:, None]
    picked = acc.set_index("account_id").loc[first.site_account_ids]
    cand = distance_matrix_km(acc["lat"], acc["lon"], picked["lat"], picked["lon"]) * w[:, None]
    assert np.minimum(base.min(axis=1), cand.min(axis=1)).sum() == pytest.approx(first.solve.objective)
    assert first.solve.objective <= base.min(axis=1).sum()
