"""Contiguous districting minimising cut edges: the exact model against enumeration, the connected
heuristic, the warm start and the fixings on small graphs."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from scipy.sparse import csc_matrix

from salesops_models.errors import SalesopsError
from salesops_models.territory.districting import (
    _build,
    _Graph,
    _start_vector,
    districting_heuristic,
    solve_cut_edges,
    tree_partition,
)
from salesops_models.territory.solver import SolverOptions


def _grid(rows: int, cols: int, pops: np.ndarray | None = None) -> nx.Graph:
    g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, cols), ordering="sorted")
    values = np.ones(rows * cols) if pops is None else pops
    nx.set_node_attributes(g, {i: float(values[i]) for i in range(rows * cols)}, "pop")
    return g


def _connected(g: nx.Graph, members: np.ndarray) -> bool:
    return len(members) > 0 and nx.is_connected(g.subgraph(members.tolist()))


def _enumerate(g: nx.Graph, k: int, lower: float, upper: float, contiguous: bool) -> float:
    """Least cut edges over every labelling (first unit in district 0) meeting the constraints."""
    n = g.number_of_nodes()
    pop = np.array([g.nodes[i]["pop"] for i in range(n)])
    edges = np.array(list(g.edges()))
    best = np.inf
    for rest in itertools.product(range(k), repeat=n - 1):
        lab = np.array((0, *rest))
        loads = np.bincount(lab, weights=pop, minlength=k)
        if (loads < lower).any() or (loads > upper).any():
            continue
        cut = int((lab[edges[:, 0]] != lab[edges[:, 1]]).sum())
        if cut >= best:
            continue
        if contiguous and not all(_connected(g, np.flatnonzero(lab == j)) for j in range(k)):
            continue
        best = cut
    return best


def test_straight_cut_through_a_grid() -> None:
    g = _grid(4, 4)
    res = solve_cut_edges(g, 2, 8, 8, time_limit=30)
    assert res.status == "optimal" and res.objective == 4 and res.bound == 4
    for j in range(2):
        assert _connected(g, np.flatnonzero(res.district == j))


@pytest.mark.parametrize("seed", range(3))
def test_exact_model_matches_enumeration_with_and_without_contiguity(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pops = rng.integers(1, 6, 10).astype(float)
    g = _grid(2, 5, pops)
    # a few extra edges make the graph less regular (still planar-like)
    g.add_edge(0, 6)
    g.add_edge(3, 9)
    total = pops.sum()
    lower, upper = np.floor(total / 3 * 0.8), np.ceil(total / 3 * 1.2)
    for contiguous in (True, False):
        expected = _enumerate(g, 3, lower, upper, contiguous)
        res = solve_cut_edges(g, 3, lower, upper, contiguous=contiguous, time_limit=30)
        if not np.isfinite(expected):
            assert res.status == "no_solution"
            continue
        assert res.status == "optimal"
        assert res.objective == expected
        loads = np.bincount(res.district, weights=pops, minlength=3)
        assert (loads >= lower).all() and (loads <= upper).all()
        if contiguous:
            assert all(_connected(g, np.flatnonzero(res.district == j)) for j in range(3))


def test_contiguity_costs_cut_edges_when_the_free_optimum_splits_a_district() -> None:
    # 3 districts of 5-6 units on a 4x4 grid
    g = _grid(4, 4)
    free = solve_cut_edges(g, 3, 5, 6, contiguous=False, time_limit=30)
    cont = solve_cut_edges(g, 3, 5, 6, contiguous=True, time_limit=30)
    assert cont.status == free.status == "optimal"
    assert cont.objective >= free.objective
    assert all(_connected(g, np.flatnonzero(cont.district == j)) for j in range(3))


def test_tree_partition_gives_connected_balanced_districts_and_a_feasible_start() -> None:
    rng = np.random.default_rng(5)
    g = _grid(5, 6, rng.integers(1, 4, 30).astype(float))
    gr = _Graph.from_networkx(g)
    total = gr.pop.sum()
    lower, upper = total / 4 * 0.85, total / 4 * 1.15
    plan = None
    for s in range(20):
        plan = tree_partition(gr, 4, lower, upper, np.random.default_rng(s))
        if plan is not None:
            break
    assert plan is not None
    loads = np.bincount(plan, weights=gr.pop, minlength=4)
    assert (loads >= lower).all() and (loads <= upper).all()
    assert all(gr.connected(np.flatnonzero(plan == j)) for j in range(4))
    # the warm start built from it meets every row and bound of the exact model
    model = _build(gr, 4, lower, upper, contiguous=True)
    vec = _start_vector(gr, model, plan)
    h = model.milp.to_highs(SolverOptions(10))
    lp = h.getLp()
    lo, up = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
    assert (vec >= lo - 1e-9).all() and (vec <= up + 1e-9).all()
    a = lp.a_matrix_
    mat = csc_matrix((a.value_, a.index_, a.start_), shape=(lp.num_row_, lp.num_col_))
    act = mat @ vec
    assert (act >= np.asarray(lp.row_lower_) - 1e-6).all() and (act <= np.asarray(lp.row_upper_) + 1e-6).all()
    assert vec[model.z].sum() == gr.cut_edges(plan)


def test_heuristic_is_repeatable_and_connected() -> None:
    rng = np.random.default_rng(8)
    g = _grid(5, 6, rng.integers(1, 4, 30).astype(float))
    gr = _Graph.from_networkx(g)
    total = gr.pop.sum()
    args = (gr, 3, total / 3 * 0.9, total / 3 * 1.1)
    first, _ = districting_heuristic(*args, seed=2, starts=2)
    second, _ = districting_heuristic(*args, seed=2, starts=2)
    assert first is not None and np.array_equal(first, second)
    assert all(gr.connected(np.flatnonzero(first == j)) for j in range(3))


def test_impossible_bounds_are_reported() -> None:
    g = _grid(2, 2)
    with pytest.raises(SalesopsError, match="no plan can exist"):
        solve_cut_edges(g, 2, 3, 4)
