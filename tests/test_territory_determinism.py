"""The alignment stops on work limits: the same instance gives the same plan on a busy machine too."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from salesops_models.territory import (
    BalanceMetric,
    SearchLimits,
    SolverOptions,
    assign_territories,
    solver_versions,
)
from tests.test_territory import random_instance

BALANCE = [BalanceMetric("workload_hours", 0.03), BalanceMetric("potential", 0.05)]


def _solve(accounts, reps, lp_rounding: bool, time_limit: float = 120.0, node_limit: int = 10):
    return assign_territories(
        accounts,
        reps,
        balance=BALANCE,
        disruption_column="potential",
        disruption_weight=0.3,
        disruption_budget=0.5,
        candidate_k=3,
        lp_rounding=lp_rounding,
        solver=SolverOptions(time_limit=time_limit, mip_gap=0.0, node_limit=node_limit),
        limits=SearchLimits(neighbourhood_nodes=node_limit, neighbourhood_size=2),
    )


@pytest.mark.parametrize("lp_rounding", [False, True], ids=["milp", "lp_rounding"])
def test_same_plan_beside_a_cpu_bound_process(lp_rounding: bool) -> None:
    accounts, reps = random_instance(5, n_acc=90, n_rep=4)
    quiet = _solve(accounts, reps, lp_rounding)
    # the MILP must have stopped on its work limit (not at the optimum): otherwise the test proves nothing
    if not lp_rounding:
        assert "nodeLimit" in quiet.solve.termination
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _solve(accounts, reps, lp_rounding)
    finally:
        hog.kill()
        hog.wait()
    assert quiet.stopped_by_clock == busy.stopped_by_clock == []
    assert not quiet.summary()["time_limit_hit"]
    assert (quiet.assignments["rep_id"].to_numpy() == busy.assignments["rep_id"].to_numpy()).all()
    # bit for bit, not just close
    assert quiet.solve.objective == busy.solve.objective
    assert quiet.solve.bound == busy.solve.bound
    np.testing.assert_array_equal(quiet.territories.to_numpy(), busy.territories.to_numpy())


def test_the_safety_net_is_reported_when_it_fires() -> None:
    accounts, reps = random_instance(5, n_acc=90, n_rep=4)
    res = _solve(accounts, reps, lp_rounding=False, time_limit=1e-6, node_limit=1_000_000)
    assert res.stopped_by_clock, "a 1 microsecond allowance must stop some step"
    assert res.summary()["time_limit_hit"] is True
    assert len(res.assignments) == len(accounts)  # a plan all the same


def test_result_carries_the_library_versions() -> None:
    accounts, reps = random_instance(1, n_acc=8, n_rep=2)
    res = assign_territories(accounts, reps, balance=[BalanceMetric("workload_hours", 0.5)])
    assert res.versions == solver_versions()
    assert {"highs", "highspy", "pyomo", "numpy", "scipy", "pandas", "python"} <= set(res.versions)
    assert res.versions["highs"].count(".") == 2
