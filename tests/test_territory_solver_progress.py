"""Progress lines of running MILPs: bound and incumbent in the log, the solve itself unchanged."""

from __future__ import annotations

import logging
import re

import numpy as np
import pyomo.environ as pyo
import pytest

from salesops_models.territory import solver
from salesops_models.territory.solver import PROGRESS_LOGGER, SolverOptions, highs_solver, solve_milp


def knapsack(seed: int = 4, items: int = 40, rows: int = 5) -> pyo.ConcreteModel:
    """A multi-dimensional 0-1 knapsack: presolve alone does not solve it, branch and bound does."""
    rng = np.random.default_rng(seed)
    weight = rng.integers(10, 60, size=(rows, items))
    value = rng.integers(5, 50, size=items)
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(items), domain=pyo.Binary)
    m.cap = pyo.Constraint(
        range(rows), rule=lambda m, r: sum(int(weight[r, i]) * m.x[i] for i in range(items)) <= int(weight[r].sum() // 3)
    )
    m.obj = pyo.Objective(expr=sum(int(value[i]) * m.x[i] for i in range(items)), sense=pyo.maximize)
    return m


def _progress(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOGGER]


def test_a_milp_logs_its_incumbent_and_bound_and_solves_the_same(caplog, monkeypatch):
    opts = SolverOptions(time_limit=60, node_limit=2000)
    quiet_model = knapsack()
    quiet = solve_milp(quiet_model, opts, step="knapsack")  # the default: no line in a short solve
    monkeypatch.setattr(solver, "PROGRESS_EVERY", 0.0)  # a line at every callback
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    model = knapsack()
    info = solve_milp(model, opts, step="knapsack")
    lines = _progress(caplog)
    assert any("knapsack: new incumbent: incumbent" in line for line in lines), lines
    assert all("bound" in line and "nodes" in line for line in lines)
    # logging only: the same status, objective and plan as the solve without progress lines
    assert info.status == quiet.status == "optimal"
    assert info.objective == quiet.objective and info.nodes == quiet.nodes
    assert [pyo.value(model.x[i]) for i in model.x] == [pyo.value(quiet_model.x[i]) for i in quiet_model.x]
    # the best incumbent reported is the optimum
    found = [float(re.search(r"incumbent ([-+.\de]+),", line)[1]) for line in lines if "new incumbent" in line]
    assert max(found) == pytest.approx(info.objective)


def test_a_highspy_mip_logs_progress_too(caplog, monkeypatch):
    monkeypatch.setattr(solver, "PROGRESS_EVERY", 0.0)
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    model = knapsack(seed=9)
    opt = pyo.SolverFactory("appsi_highs")  # only to get the same model into highspy
    opt.set_instance(model)
    lp = opt._solver_model.getLp()
    integrality = opt._solver_model.getLp().integrality_
    h = highs_solver(SolverOptions(time_limit=60), step="direct")
    h.passModel(lp)
    h.changeColsIntegrality(len(integrality), np.arange(len(integrality), dtype=np.int32), np.asarray(integrality))
    h.run()
    assert any(line.startswith("HiGHS direct: ") for line in _progress(caplog))


def test_a_batch_writes_a_scenarios_solver_lines_to_progress_log(tmp_path, monkeypatch):
    """Inside a worker the lines go to the driver as ``progress`` events: a line in progress.log,
    not a finished step."""
    from salesops_models.workflow import progress

    events = []

    class Worker:
        def log_event(self, topic, msg):
            events.append((topic, msg))

    monkeypatch.setattr(progress, "_worker", lambda: Worker())
    logging.getLogger(PROGRESS_LOGGER).setLevel(logging.INFO)
    with progress.forward_solver_progress("north"):
        logging.getLogger(PROGRESS_LOGGER).info("HiGHS assignment: new incumbent: incumbent 12, bound 10")
    logging.getLogger(PROGRESS_LOGGER).info("after the run: not forwarded")
    assert [m["detail"] for _, m in events] == ["HiGHS assignment: new incumbent: incumbent 12, bound 10"]
    driver = progress.BatchProgress(tmp_path)
    for topic, msg in events:
        assert topic == progress.TOPIC
        driver((0.0, msg))
    driver((0.0, {"scenario": "north", "step": "territory", "status": "computed", "seconds": 3.0}))
    lines = (tmp_path / progress.PROGRESS_LOG).read_text().splitlines()
    assert lines[0].endswith("north: HiGHS assignment: new incumbent: incumbent 12, bound 10")
    assert lines[1].endswith("north: territory computed in 3.0 s")
    assert driver.steps == 1
