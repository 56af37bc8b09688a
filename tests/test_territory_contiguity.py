"""Contiguous territories: the adjacency graph, the cut loop against enumeration, both solve paths, bad input."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from salesops_models.errors import DataValidationError, SalesopsError
from salesops_models.territory import ACCOUNT_COUNT, BalanceMetric, SolverOptions, assign_territories
from salesops_models.territory.contiguity import (
    LONG_EDGE_FACTOR,
    _cut_vertices,
    _graph,
    adjacency_from_locations,
    units_of_accounts,
)
from tests.test_territory import home_distance_km

EXACT = SolverOptions(time_limit=60, mip_gap=0.0)


def grid_instance(
    rows: int, cols: int, n_rep: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Accounts on a grid (4-neighbour adjacency table), reps at random grid points, random workloads."""
    rng = np.random.default_rng(seed)
    ids = [f"A{r}{c}" for r in range(rows) for c in range(cols)]
    lat = np.repeat(np.arange(rows), cols) * 0.2 + 40.0
    lon = np.tile(np.arange(cols), rows) * 0.2 - 75.0
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "lat": lat,
            "lon": lon,
            "workload_hours": rng.integers(5, 20, len(ids)).astype(float),
            "owner_rep_id": [f"R{j}" for j in rng.integers(0, n_rep, len(ids))],
        }
    )
    homes = rng.choice(len(ids), n_rep, replace=False)
    reps = pd.DataFrame(
        {"rep_id": [f"R{j}" for j in range(n_rep)], "home_lat": lat[homes], "home_lon": lon[homes]}
    )
    pairs = [(f"A{r}{c}", f"A{r}{c + 1}") for r in range(rows) for c in range(cols - 1)]
    pairs += [(f"A{r}{c}", f"A{r + 1}{c}") for r in range(rows - 1) for c in range(cols)]
    return accounts, reps, pd.DataFrame(pairs, columns=["unit_a", "unit_b"])


def best_connected_plan(accounts, reps, table, tolerance: float) -> float:
    """Least workload-weighted travel over all plans with connected territories and loads in their bands."""
    g = nx.Graph(list(table.itertuples(index=False, name=None)))
    ids = list(accounts["account_id"])
    d = home_distance_km(accounts, reps)
    w = accounts["workload_hours"].to_numpy()
    n_acc, n_rep = d.shape
    target = w.sum() / n_rep
    best = np.inf
    for plan in itertools.product(range(n_rep), repeat=n_acc):
        p = np.array(plan)
        load = np.bincount(p, weights=w, minlength=n_rep)
        if (np.abs(load / target - 1) > tolerance + 1e-12).any():
            continue
        if any(
            (p == r).sum() > 1 and not nx.is_connected(g.subgraph([ids[i] for i in np.flatnonzero(p == r)]))
            for r in range(n_rep)
        ):
            continue
        best = min(best, float((w * d[np.arange(n_acc), p]).sum()))
    return best


# seeds whose travel optimum without contiguity has a territory in pieces (so the cuts have work to do),
# and one whose optimum is connected anyway
@pytest.mark.parametrize(("seed", "tol"), [(2, 0.3), (21, 0.5), (40, 0.5), (0, 0.5)])
def test_cut_loop_reaches_the_enumerated_connected_optimum(seed: int, tol: float) -> None:
    accounts, reps, table = grid_instance(3, 3, 3, seed)
    best = best_connected_plan(accounts, reps, table, tol)
    res = assign_territories(
        accounts,
        reps,
        balance=[BalanceMetric("workload_hours", tol)],
        adjacency=table,
        contiguity=True,
        normalize=False,
        solver=EXACT,
    )
    assert res.disconnected_territories == 0
    assert res.status == "optimal"
    assert res.travel == pytest.approx(best, rel=1e-9)
    assert res.solve.bound <= res.travel * (1 + 1e-9)


def test_without_contiguity_the_same_instance_splits_a_territory() -> None:
    # seed 2: the travel optimum is in pieces, so the cuts have work to do
    accounts, reps, table = grid_instance(3, 3, 3, 2)
    free, tied = (
        assign_territories(
            accounts,
            reps,
            balance=[BalanceMetric("workload_hours", 0.5)],
            adjacency=table,
            contiguity=contiguity,
            normalize=False,
            solver=EXACT,
        )
        for contiguity in (False, True)
    )
    assert free.disconnected_territories >= 1 and tied.disconnected_territories == 0
    assert tied.travel >= free.travel - 1e-9
    assert tied.contiguity["cuts"] > 0


def test_large_path_with_contiguity_keeps_every_territory_connected() -> None:
    from salesops_models.data import generate_sample_company

    company = generate_sample_company(seed=3, n_accounts=300, n_reps=6, n_regions=2, years=2)
    res = assign_territories(
        company.accounts,
        company.reps,
        balance=[BalanceMetric("workload_hours", 0.15)],
        candidate_k=4,
        contiguity=True,
        lp_rounding=True,
        solver=SolverOptions(mip_gap=0.01, node_limit=50),
    )
    assert res.summary()["solver_path"] == "lp_rounding"
    assert res.disconnected_territories == 0
    assert res.territories["workload_hours_deviation"].abs().max() <= 0.15 + 1e-9
    assert res.solve.bound <= res.solve.objective
    assert (res.territories["pieces"] == 1).all()


def test_an_exempt_rep_may_be_in_pieces_and_a_locked_split_is_refused_otherwise() -> None:
    accounts, reps, table = grid_instance(3, 3, 3, 1)
    # R0 must hold two opposite corners, and R1 the whole middle column between them
    locks = {"A00": "R0", "A22": "R0", "A01": "R1", "A11": "R1", "A21": "R1"}
    common = dict(
        balance=[BalanceMetric(ACCOUNT_COUNT, 0.9)],
        adjacency=table,
        contiguity=True,
        locks=locks,
        solver=EXACT,
    )
    with pytest.raises(
        SalesopsError, match=r"rep R0's locked accounts lie in units .*A00.*A22.*contiguity_exceptions"
    ):
        assign_territories(accounts, reps, **common)
    res = assign_territories(accounts, reps, contiguity_exceptions=["R0"], **common)
    pieces = res.territories.set_index("rep_id")["pieces"]
    assert pieces["R0"] >= 2 and pieces.drop("R0").max() == 1  # the locks put R0 in two places at least
    with pytest.raises(SalesopsError, match=r"unknown rep_id\(s\) \['R9'\]"):
        assign_territories(accounts, reps, contiguity_exceptions=["R9"], **common)


def test_bad_adjacency_tables_name_the_units_and_the_fix() -> None:
    accounts, reps, table = grid_instance(3, 3, 2, 2)
    bad = pd.concat([table, pd.DataFrame({"unit_a": ["A00", "X1"], "unit_b": ["Z9", "A11"]})])
    with pytest.raises(DataValidationError, match=r"X1.*Z9.*fix the ids or drop those rows"):
        assign_territories(accounts, reps, adjacency=bad, contiguity=True)
    cut_off = table[(table.unit_a != "A22") & (table.unit_b != "A22")]  # corner A22 loses both its edges
    with pytest.raises(SalesopsError, match=r"1 unit\(s\) cannot be reached .*A22.*Add pairs"):
        assign_territories(accounts, reps, adjacency=cut_off, contiguity=True)


def test_delaunay_graph_is_connected_and_cuts_long_edges_but_not_bridges() -> None:
    rng = np.random.default_rng(4)
    # two dense clusters 20 degrees apart, and one lone account far off to the side
    lat = np.r_[rng.normal(40, 0.3, 60), rng.normal(40, 0.3, 60), 30.0]
    lon = np.r_[rng.normal(-100, 0.3, 60), rng.normal(-80, 0.3, 60), -90.0]
    acc = pd.DataFrame({"account_id": [f"A{i}" for i in range(len(lat))]})
    ids, unit_of = units_of_accounts(acc, None)
    g = adjacency_from_locations(lat, lon, ids, unit_of)
    assert nx.is_connected(nx.Graph(g.edges().tolist()))
    far = 120
    assert len(g.neighbours(far)) >= 1  # the lone account keeps a link (minimum spanning tree)
    # between the clusters only the spanning-tree links survive: each cluster's median edge is short
    across = [(u, v) for u, v in g.edges() if (u < 60) != (v < 60) and far not in (u, v)]
    assert len(across) <= 1
    assert LONG_EDGE_FACTOR == 3.0


def test_cut_vertices_match_networkx() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(3, 20))
        gx = nx.gnp_random_graph(n, float(rng.uniform(0.1, 0.4)), seed=int(rng.integers(1_000_000)))
        e = np.array(list(gx.edges()), dtype=int).reshape(-1, 2)
        g = _graph(np.arange(n).astype(str), np.arange(n), e[:, 0], e[:, 1], "t")
        units = np.sort(rng.choice(n, size=int(rng.integers(2, n + 1)), replace=False))
        assert set(_cut_vertices(g, units).tolist()) == set(
            nx.articulation_points(gx.subgraph(units.tolist()))
        )


def test_units_group_accounts_and_a_unit_table_drives_contiguity() -> None:
    accounts, reps, _ = grid_instance(2, 3, 2, 5)
    accounts["zip"] = ["Z1", "Z1", "Z2", "Z3", "Z3", "Z4"]  # six accounts in four units
    table = pd.DataFrame({"a": ["Z1", "Z2", "Z3"], "b": ["Z2", "Z4", "Z4"]})  # a path Z1-Z2-Z4-Z3
    res = assign_territories(
        accounts,
        reps,
        balance=[BalanceMetric(ACCOUNT_COUNT, 0.5)],
        adjacency=table,
        contiguity=True,
        contiguity_unit="zip",
        solver=EXACT,
    )
    assert res.contiguity["units"] == 4 and res.contiguity["edges"] == 3
    g = nx.Graph([("Z1", "Z2"), ("Z2", "Z4"), ("Z4", "Z3")])
    zips = accounts.set_index("account_id")["zip"]
    for _, grp in res.assignments.groupby("rep_id"):
        assert nx.is_connected(g.subgraph(set(zips[grp["account_id"]])))
