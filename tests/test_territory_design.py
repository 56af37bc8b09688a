"""Free-centre design and districting: p-median (two formulations), capacitated p-median, cut edges."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from salesops_models.territory.design import p_median, p_median_levels
from salesops_models.territory.districting import solve_cut_edges
from salesops_models.territory.solver import SolverOptions
from salesops_models.testing import benchmarks_dir

EXACT = SolverOptions(time_limit=30, mip_gap=0.0)


@pytest.mark.parametrize("seed", range(3))
def test_p_median_formulations_match_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (12, 2))
    w = rng.integers(1, 5, 12)
    cost = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)).round() * w[:, None]
    p = 3
    best = min(cost[:, list(c)].min(axis=1).sum() for c in itertools.combinations(range(12), p))
    classic = p_median(cost, p, solver=EXACT)
    levels = p_median_levels(cost, p, initial_levels=2, solver=EXACT)
    assert classic.solve.status == levels.solve.status == "optimal"
    assert classic.objective == pytest.approx(best)
    assert levels.objective == pytest.approx(best)
    assert len(levels.centres) == p and set(levels.assignment) <= set(levels.centres)


def test_capacitated_p_median_respects_capacity_against_enumeration() -> None:
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 50, (8, 2))
    demand = rng.integers(1, 6, 8).astype(float)
    cost = np.floor(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)))
    cap = float(np.ceil(0.6 * demand.sum()))  # two centres, each at most 60% of the demand
    best = np.inf
    for centres in itertools.combinations(range(8), 2):
        others = [i for i in range(8) if i not in centres]
        for choice in itertools.product(centres, repeat=len(others)):
            a = np.arange(8)  # an open centre serves itself
            a[others] = choice
            if (np.bincount(a, weights=demand, minlength=8) > cap).any():
                continue
            best = min(best, cost[np.arange(8), a].sum())
    res = p_median(cost, 2, demand=demand, capacity=cap, solver=EXACT)
    assert res.solve.status == "optimal"
    assert res.objective == pytest.approx(best)
    assert (np.bincount(res.assignment, weights=demand, minlength=8) <= cap + 1e-9).all()


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


def test_cut_edges_on_a_grid_with_and_without_contiguity() -> None:
    g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(4, 4), ordering="sorted")
    nx.set_node_attributes(g, 1.0, "pop")
    res = solve_cut_edges(g, 2, 8, 8, time_limit=30)
    assert res.status == "optimal" and res.objective == 4  # a straight cut through a 4x4 grid
    for j in range(2):
        assert nx.is_connected(g.subgraph(np.flatnonzero(res.district == j).tolist()))
    # 3 districts of sizes 5..6 on a 4x4 grid: contiguity can only cost more cut edges
    free = solve_cut_edges(g, 3, 5, 6, contiguous=False, time_limit=30)
    cont = solve_cut_edges(g, 3, 5, 6, contiguous=True, time_limit=30)
    assert cont.objective >= free.objective
    assert cont.status == "optimal"
