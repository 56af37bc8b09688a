"""DTDP (min-max diameter, three balanced activities): the variable neighbourhood search keeps its
incremental state right, meets every band, repeats itself, and finds the enumerated optimum of a tiny
instance."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from salesops_models.territory.dtdp import (
    ACTIVITIES,
    DTDPInstance,
    diameters,
    max_relative_deviation,
    read_dtdp,
    solve_dtdp,
)
from salesops_models.territory.dtdp_search import SearchState, local_search, variable_neighbourhood_search


def _instance(seed: int, rows: int, cols: int) -> DTDPInstance:
    """A grid graph with random edge lengths and activities, written and read back as GraphML."""
    rng = np.random.default_rng(seed)
    g = nx.grid_2d_graph(rows, cols)
    g = nx.convert_node_labels_to_integers(g)
    for u, v in g.edges():
        g[u][v]["distance"] = float(rng.uniform(5, 12))
    for v in g.nodes():
        g.nodes[v]["n_customers"] = int(rng.integers(4, 20))
        g.nodes[v]["demand"] = int(rng.integers(15, 400))
        g.nodes[v]["workload"] = int(rng.integers(15, 100))
    return g


def _read(tmp_path, g: nx.Graph) -> DTDPInstance:
    path = tmp_path / "tiny.graphml"
    nx.write_graphml(g, path)
    return read_dtdp(path)


def test_solve_dtdp_meets_every_band_and_repeats_itself(tmp_path) -> None:
    inst = _read(tmp_path, _instance(1, 8, 8))
    first = solve_dtdp(inst, p=4, tau=0.05, starts=2, iterations=40)
    second = solve_dtdp(inst, p=4, tau=0.05, starts=2, iterations=40)
    assert first.status == "feasible"
    assert np.array_equal(first.territory, second.territory)
    assert max_relative_deviation(inst.activities, first.territory, 4) <= 0.05 + 1e-9
    assert first.objective == pytest.approx(diameters(inst.distance, first.territory, 4).max())
    assert set(first.territory.tolist()) == {0, 1, 2, 3}


def test_local_search_keeps_its_incremental_state_exact() -> None:
    rng = np.random.default_rng(3)
    g = _instance(3, 6, 7)
    dist = np.asarray(nx.floyd_warshall_numpy(g, weight="distance"))
    act = np.array([[g.nodes[v][a] for a in ACTIVITIES] for v in g.nodes()], dtype=float)
    p, tau = 3, 0.2
    start = rng.permutation(np.arange(len(dist)) % p)
    target = act.sum(axis=0) / p
    state = SearchState(dist, act, start, p)
    local_search(dist, act, *state.arrays(), (1 - tau) * target, (1 + tau) * target, target, 5.0, dist.max(), 200)
    fresh = SearchState(dist, act, state.lab, p)
    np.testing.assert_allclose(state.load, fresh.load)
    np.testing.assert_allclose(state.diam, fresh.diam)
    for t in range(p):
        members = np.flatnonzero(state.lab == t)
        for e in range(2):  # the cached diameter without each extreme unit
            rest = members[members != state.ends[t, e]]
            assert state.without[t, e] == pytest.approx(dist[np.ix_(rest, rest)].max())
        assert sorted(state.mem[t, : state.cnt[t]]) == sorted(np.flatnonzero(state.lab == t))
        assert state.pos[state.mem[t, : state.cnt[t]]].tolist() == list(range(state.cnt[t]))


def test_search_ends_in_a_local_optimum_that_meets_the_bands() -> None:
    g = _instance(7, 4, 4)
    dist = np.asarray(nx.floyd_warshall_numpy(g, weight="distance"))
    act = np.array([[g.nodes[v][a] for a in ACTIVITIES] for v in g.nodes()], dtype=float)
    p, tau = 3, 0.25
    target = act.sum(axis=0) / p

    def feasible(lab: np.ndarray) -> bool:
        loads = np.stack([np.bincount(lab, weights=act[:, a], minlength=p) for a in range(3)], axis=1)
        return bool((np.abs(loads / target - 1) <= tau + 1e-12).all() and (np.bincount(lab, minlength=p) > 0).all())

    def key(lab: np.ndarray) -> tuple[float, float]:
        d = diameters(dist, lab, p)
        return round(float(d.max()), 9), round(float(d.sum()), 9)

    # the first feasible labelling in enumeration order: a poor start
    start = next(
        lab for rest in itertools.product(range(p), repeat=len(dist) - 1) if feasible(lab := np.array((0, *rest)))
    )
    plan, _, done = variable_neighbourhood_search(dist, act, start, p, tau, np.random.default_rng(0), iterations=30)
    assert done == 30 and feasible(plan)
    assert key(plan) <= key(start)
    d = diameters(dist, plan, p)
    critical = set(np.flatnonzero(d >= 0.98 * d.max()).tolist())
    for u in range(len(dist)):
        for t in range(p):  # no single move improves (largest diameter, sum of diameters)
            if t != plan[u]:
                trial = plan.copy()
                trial[u] = t
                assert not (feasible(trial) and key(trial) < key(plan))
        for v in range(len(dist)):  # no swap with a widest territory lowers the largest diameter
            if plan[u] in critical and plan[v] != plan[u]:
                trial = plan.copy()
                trial[u], trial[v] = plan[v], plan[u]
                assert not (feasible(trial) and key(trial)[0] < key(plan)[0] - 1e-9)


def test_read_dtdp_computes_shortest_paths(tmp_path) -> None:
    g = _instance(2, 3, 4)
    inst = _read(tmp_path, g)
    expected = nx.floyd_warshall_numpy(g, weight="distance")
    np.testing.assert_allclose(inst.distance, expected)
    assert list(inst.activities.columns) == list(ACTIVITIES)
    assert isinstance(inst.activities, pd.DataFrame) and len(inst.activities) == 12


_PURE_PYTHON_RUN = """
import json, sys
import numpy as np
from salesops_models import jit
from salesops_models.territory.dtdp_search import variable_neighbourhood_search
assert not jit.AVAILABLE
data = json.load(sys.stdin)
dist, act, start = np.array(data["dist"]), np.array(data["act"]), np.array(data["start"])
plan, accepted, done = variable_neighbourhood_search(
    dist, act, start, 3, 0.3, np.random.default_rng(2), iterations=15
)
print(json.dumps([plan.tolist(), accepted, done]))
"""


def test_search_gives_the_same_plan_with_and_without_numba() -> None:
    from salesops_models import jit

    if not jit.AVAILABLE:
        pytest.skip("numba is not installed or SALESOPS_NUMBA=0: only the Python path exists")
    g = _instance(13, 4, 5)
    dist = np.asarray(nx.floyd_warshall_numpy(g, weight="distance"))
    act = np.array([[g.nodes[v][a] for a in ACTIVITIES] for v in g.nodes()], dtype=float)
    target = act.sum(axis=0) / 3
    # a start that meets the 30% bands: the first such labelling in enumeration order
    start = next(
        lab
        for rest in itertools.product(range(3), repeat=len(dist) - 1)
        if (lab := np.array((0, *rest))) is not None
        and (np.bincount(lab, minlength=3) > 0).all()
        and all(
            (np.abs(np.bincount(lab, weights=act[:, a], minlength=3) / target[a] - 1) <= 0.3).all()
            for a in range(3)
        )
    )
    compiled = variable_neighbourhood_search(dist, act, start, 3, 0.3, np.random.default_rng(2), iterations=15)
    payload = json.dumps({"dist": dist.tolist(), "act": act.tolist(), "start": start.tolist()})
    env = {**os.environ, "SALESOPS_NUMBA": "0"}
    out = subprocess.run(
        [sys.executable, "-c", _PURE_PYTHON_RUN], input=payload, env=env, capture_output=True, text=True, check=True
    )
    plan, accepted, done = json.loads(out.stdout)
    assert plan == compiled[0].tolist()
    assert (accepted, done) == compiled[1:] and done == 15
    assert accepted >= 1  # the shakes, not only the first local search, were compared
