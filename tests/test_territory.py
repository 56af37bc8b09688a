"""Territory alignment: brute-forced optima, invariants, locks, infeasibility diagnosis, Pfizer case."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from salesops_models.errors import DataValidationError
from salesops_models.territory import (
    ACCOUNT_COUNT,
    BalanceMetric,
    SolverOptions,
    assign_territories,
    balance_index,
    disruption_tradeoff,
    evaluate_plan,
)
from salesops_models.territory.geo import candidate_mask, haversine_km
from salesops_models.testing import benchmarks_dir

EXACT = SolverOptions(time_limit=30, mip_gap=0.0)


def random_instance(seed: int, n_acc: int = 7, n_rep: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    accounts = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n_acc)],
            "lat": rng.uniform(40, 42, n_acc),
            "lon": rng.uniform(-75, -72, n_acc),
            "workload_hours": rng.integers(5, 40, n_acc).astype(float),
            "potential": rng.integers(10, 100, n_acc).astype(float) * 1000,
            "owner_rep_id": [f"R{j}" for j in rng.integers(0, n_rep, n_acc)],
        }
    )
    reps = pd.DataFrame(
        {
            "rep_id": [f"R{j}" for j in range(n_rep)],
            "home_lat": rng.uniform(40, 42, n_rep),
            "home_lon": rng.uniform(-75, -72, n_rep),
            "capacity": np.r_[np.ones(n_rep - 1), 0.7],
        }
    )
    return accounts, reps


def home_distance_km(accounts: pd.DataFrame, reps: pd.DataFrame) -> np.ndarray:
    """Haversine distance [km] from each account to each rep's home base, computed here independently."""
    return haversine_km(
        accounts["lat"].to_numpy()[:, None],
        accounts["lon"].to_numpy()[:, None],
        reps["home_lat"].to_numpy()[None, :],
        reps["home_lon"].to_numpy()[None, :],
    )


def brute_force(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    balance: list[BalanceMetric],
    disruption_weight: float,
    max_moves: int | None,
) -> tuple[float, int]:
    """Best objective over every feasible assignment (travel weighted by workload + w * moved potential)."""
    d = home_distance_km(accounts, reps)
    w = accounts["workload_hours"].to_numpy()
    v = accounts["potential"].to_numpy()
    owner = accounts["owner_rep_id"].str[1:].astype(int).to_numpy()
    cap = reps["capacity"].to_numpy()
    share = cap / cap.sum()
    best, feasible = np.inf, 0
    n_acc, n_rep = d.shape
    for plan in itertools.product(range(n_rep), repeat=n_acc):
        a = np.array(plan)
        ok = True
        for b in balance:
            vals = np.ones(n_acc) if b.column == ACCOUNT_COUNT else accounts[b.column].to_numpy()
            load = np.bincount(a, weights=vals, minlength=n_rep)
            tgt = vals.sum() * share
            if (load > (1 + b.tolerance) * tgt + 1e-9).any() or (load < (1 - b.tolerance) * tgt - 1e-9).any():
                ok = False
                break
        moved = a != owner
        if max_moves is not None and moved.sum() > max_moves:
            ok = False
        if not ok:
            continue
        feasible += 1
        obj = float((w * d[np.arange(n_acc), a]).sum() + disruption_weight * v[moved].sum())
        best = min(best, obj)
    return best, feasible


@pytest.mark.parametrize("seed", range(6))
def test_milp_never_worse_than_enumeration(seed: int) -> None:
    accounts, reps = random_instance(seed)
    balance = [BalanceMetric("workload_hours", 0.35), BalanceMetric(ACCOUNT_COUNT, 0.5)]
    dw = [0.0, 0.002][seed % 2]
    cap = [None, 3][seed % 3 == 0]
    best, feasible = brute_force(accounts, reps, balance, dw, cap)
    res = assign_territories(
        accounts,
        reps,
        balance=balance,
        disruption_column="potential",
        disruption_weight=dw,
        max_moves=cap,
        normalize=False,
        solver=EXACT,
    )
    if feasible == 0:
        assert res.status == "relaxed"
        return
    assert res.status == "optimal"
    obj = res.travel + dw * res.disruption
    assert obj <= best + 1e-6 * max(1.0, best)
    assert obj >= best - 1e-6 * max(1.0, best)  # it is one of the enumerated plans, so equal
    assert res.solve.objective == pytest.approx(obj, rel=1e-6)
    assert res.solve.gap == pytest.approx(0.0, abs=1e-9)


def test_invariants_on_a_larger_random_instance() -> None:
    accounts, reps = random_instance(11, n_acc=120, n_rep=8)
    balance = [BalanceMetric("workload_hours", 0.15), BalanceMetric("potential", 0.2)]
    res = assign_territories(
        accounts, reps, balance=balance, candidate_k=4, solver=SolverOptions(time_limit=30, mip_gap=0.01)
    )
    assert res.status in ("optimal", "feasible")
    asg = res.assignments
    assert asg["account_id"].is_unique and len(asg) == len(accounts)
    assert set(asg["rep_id"]) <= set(reps["rep_id"])
    ter = res.territories
    for b in balance:
        assert (ter[b.column] <= ter[f"{b.column}_upper"] * (1 + 1e-6)).all()
        assert (ter[b.column] >= ter[f"{b.column}_lower"] * (1 - 1e-6)).all()
        assert ter[f"{b.column}_deviation"].abs().max() <= b.tolerance + 1e-6
        assert ter[b.column].sum() == pytest.approx(accounts[b.column].sum())
        # capacity-weighted targets: the 0.7-capacity rep carries 70% of a full-time target
        tgt = ter.set_index("rep_id")[f"{b.column}_target"]
        assert tgt.iloc[-1] / tgt.iloc[0] == pytest.approx(0.7)
    assert ter["accounts"].sum() == len(accounts)
    assert ter["accounts_in"].sum() == ter["accounts_out"].sum() == asg["moved"].sum() == res.moved
    # candidates: every account went to one of its 4 nearest reps or stayed with its owner
    d = haversine_km(
        accounts["lat"].to_numpy()[:, None],
        accounts["lon"].to_numpy()[:, None],
        reps["home_lat"].to_numpy()[None, :],
        reps["home_lon"].to_numpy()[None, :],
    )
    mask = candidate_mask(d, 4)
    r_idx = asg["rep_id"].str[1:].astype(int).to_numpy()
    ok = mask[np.arange(len(asg)), r_idx] | ~asg["moved"].to_numpy()
    assert ok.all()
    s = res.summary()
    for key in ("status", "objective", "bound", "mip_gap", "seconds", "balance_max_min", "balance_cv"):
        assert key in s
    assert s["bound"] <= s["objective"] + 1e-9
    assert 0 <= s["mip_gap"] <= 0.01 + 1e-9


def test_locks_stay_and_go_are_honoured() -> None:
    accounts, reps = random_instance(3, n_acc=40, n_rep=4)
    far = {}
    d = haversine_km(
        accounts["lat"].to_numpy()[:, None],
        accounts["lon"].to_numpy()[:, None],
        reps["home_lat"].to_numpy()[None, :],
        reps["home_lon"].to_numpy()[None, :],
    )
    # "go": send three accounts to their farthest rep (the solver would never choose that)
    for i in range(3):
        far[accounts.account_id[i]] = reps.rep_id[int(np.argmax(d[i]))]
    stay = {accounts.account_id[i]: accounts.owner_rep_id[i] for i in range(3, 8)}
    res = assign_territories(
        accounts,
        reps,
        balance=[BalanceMetric("workload_hours", 0.3)],
        locks={**far, **stay},
        candidate_k=2,
        solver=EXACT,
    )
    got = res.assignments.set_index("account_id")["rep_id"]
    for a, r in {**far, **stay}.items():
        assert got[a] == r
    assert res.assignments.set_index("account_id").loc[list(far), "locked"].all()


def test_move_cap_and_disruption_budget_hold() -> None:
    accounts, reps = random_instance(5, n_acc=60, n_rep=5)
    free = assign_territories(accounts, reps, balance=[BalanceMetric("workload_hours", 0.25)], solver=EXACT)
    capped = assign_territories(
        accounts, reps, balance=[BalanceMetric("workload_hours", 0.25)], max_moves=10, solver=EXACT
    )
    assert capped.moved <= 10 < free.moved
    assert capped.travel >= free.travel - 1e-6
    curve = disruption_tradeoff(
        accounts,
        reps,
        budgets=[0.5, 0.3, 0.2],
        balance=[BalanceMetric("workload_hours", 0.25)],
        disruption_column="potential",
        solver=EXACT,
    )
    assert (curve["disruption_share"] <= curve["budget"] + 1e-9).all()
    # a tighter budget can only cost travel
    assert curve["travel"].is_monotonic_increasing


def test_infeasible_tolerances_return_a_diagnosis_instead_of_raising() -> None:
    accounts, reps = random_instance(2, n_acc=12, n_rep=3)
    accounts.loc[0, "workload_hours"] = 500.0  # one account heavier than any band allows
    for elastic_first in (True, False):
        res = assign_territories(
            accounts,
            reps,
            balance=[BalanceMetric("workload_hours", 0.05), BalanceMetric(ACCOUNT_COUNT, 0.5)],
            elastic_first=elastic_first,
            solver=EXACT,
        )
        assert res.status == "relaxed"
        assert not res.diagnosis.empty
        assert set(res.diagnosis["metric"]) == {"workload_hours"}
        heavy_rep = res.assignments.set_index("account_id").loc["A0", "rep_id"]
        assert heavy_rep in set(res.diagnosis.loc[res.diagnosis.side == "above", "rep_id"])
        row = res.relaxation.set_index("constraint").loc["tolerance[workload_hours]"]
        assert row.binding and row.required > 0.05
        # the nearest plan does meet the relaxed band
        assert res.territories["workload_hours_deviation"].abs().max() <= row.required + 1e-9
        assert len(res.assignments) == 12
        if not elastic_first:
            assert any("infeasible" in n for n in res.notes)


def test_balance_index_and_haversine_by_hand() -> None:
    mm, cv = balance_index(np.array([90.0, 110.0, 100.0]), np.array([100.0, 100.0, 100.0]))
    assert mm == pytest.approx(110 / 90)
    assert cv == pytest.approx(np.std([0.9, 1.1, 1.0]) / 1.0)
    # capacity-adjusted: a half-time rep with half the load is perfectly balanced
    assert balance_index(np.array([50.0, 100.0]), np.array([50.0, 100.0])) == (1.0, 0.0)
    assert haversine_km(0.0, 0.0, 1.0, 0.0) == pytest.approx(111.195, abs=1e-3)
    assert haversine_km(40.7128, -74.0060, 51.5074, -0.1278) == pytest.approx(5570, rel=0.002)


def test_connectivity_is_counted_on_an_adjacency_graph() -> None:
    accounts, reps = random_instance(8, n_acc=6, n_rep=2)
    graph = nx.path_graph(list(accounts["account_id"]))
    # path A0-A1-A2-A3-A4-A5: R0 = {A0, A2, A3} is two pieces, R1 = {A1} + {A4, A5} two too
    plan = pd.Series(["R0", "R1", "R0", "R0", "R1", "R1"], index=accounts["account_id"])
    res = evaluate_plan(accounts, reps, plan, adjacency=graph)
    assert res.disconnected_territories == 2
    assert dict(zip(res.territories.rep_id, res.territories.pieces, strict=True)) == {"R0": 2, "R1": 2}
    contiguous = pd.Series(["R0", "R0", "R0", "R1", "R1", "R1"], index=accounts["account_id"])
    assert evaluate_plan(accounts, reps, contiguous, adjacency=graph).disconnected_territories == 0


def pfizer_instance() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    folder = benchmarks_dir() / "territory" / "pfizer_case_koksalan_batun"
    if not folder.exists():
        pytest.skip(f"benchmark data not found at {folder} (set SALESOPS_BENCHMARKS)")
    b = pd.read_csv(folder / "pfizer_22x4_bricks.csv")
    ref = pd.read_csv(folder / "reference.csv", dtype=str)
    acc = pd.DataFrame(
        {
            "account_id": b.brick.astype(str),
            "index_value": b.index_value,
            "owner_rep_id": "SR" + b.current_sr.astype(str),
        }
    )
    reps = pd.DataFrame({"rep_id": [f"SR{i}" for i in range(1, 5)]})
    dist = pd.DataFrame(
        b[[f"dist_sr{i}_km" for i in range(1, 5)]].to_numpy(), index=acc.account_id, columns=reps.rep_id
    )
    return acc, reps, dist, ref


@pytest.mark.benchmarkdata
def test_pfizer_22x4_reference_values() -> None:
    acc, reps, dist, ref = pfizer_instance()
    current = evaluate_plan(
        acc, reps, balance=[BalanceMetric("index_value", 0.2)], travel_weight_column=None, distance=dist
    )
    want = ref.set_index(["workload_interval", "objective"])["value"]
    assert round(current.travel, 2) == float(want[("current_assignment", "total_distance_km")])
    loads = [float(x) for x in want[("current_assignment", "sr_workloads")].split("/")]
    np.testing.assert_allclose(current.territories["index_value"], loads, atol=1e-9)
    for interval, tol in (("[0.8,1.2]", 0.2), ("[0.85,1.15]", 0.15), ("[0.9,1.1]", 0.1)):
        common = dict(
            balance=[BalanceMetric("index_value", tol)],
            travel_weight_column=None,
            distance=dist,
            disruption_column="index_value",
            normalize=False,
            solver=EXACT,
        )
        dist_res = assign_territories(acc, reps, **common)
        disr_res = assign_territories(acc, reps, travel_weight=0.0, disruption_weight=1.0, **common)
        assert dist_res.status == disr_res.status == "optimal"
        assert round(dist_res.travel, 2) == float(want[(interval, "min_total_distance_km")])
        assert round(disr_res.disruption, 4) == float(want[(interval, "min_disruption_index_weighted")])
        assert dist_res.territories["index_value"].between(1 - tol - 1e-9, 1 + tol + 1e-9).all()


def test_without_locations_the_plan_moves_the_least_value() -> None:
    accounts, reps = random_instance(4, n_acc=7, n_rep=3)
    accounts = accounts.drop(columns=["lat", "lon"])
    res = assign_territories(
        accounts,
        reps,
        balance=[BalanceMetric("workload_hours", 0.3)],
        disruption_column="potential",
        solver=EXACT,
    )
    assert res.status == "optimal" and res.travel_basis == "none" and res.travel == 0
    assert any("without travel" in n for n in res.notes)
    # the optimum by enumeration: least potential moved among the plans inside the bands
    w, v = accounts["workload_hours"].to_numpy(), accounts["potential"].to_numpy()
    owner = accounts["owner_rep_id"].str[1:].astype(int).to_numpy()
    cap = reps["capacity"].to_numpy()
    tgt = w.sum() * cap / cap.sum()
    best = min(
        v[np.array(p) != owner].sum()
        for p in itertools.product(range(3), repeat=7)
        if np.all(np.abs(np.bincount(p, weights=w, minlength=3) / tgt - 1) <= 0.3 + 1e-12)
    )
    assert res.disruption == pytest.approx(best)


def test_some_empty_coordinates_are_an_error_naming_the_accounts() -> None:
    accounts, reps = random_instance(4, n_acc=7, n_rep=3)
    accounts.loc[[2, 5], "lat"] = np.nan
    with pytest.raises(DataValidationError, match=r"A2.*A5.*geocode them"):
        assign_territories(accounts, reps)
