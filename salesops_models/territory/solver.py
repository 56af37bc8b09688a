"""One place for how territory MILPs are solved: HiGHS through Pyomo's persistent interface.

Every model of the territory package goes through :func:`solve_milp`, which

- sets the options of :class:`SolverOptions` (time limit, relative MIP gap, threads, extra HiGHS options),
- passes a warm start (a full or partial assignment of the binaries) to HiGHS,
- enforces the wall-clock limit itself through a HiGHS interrupt callback (HiGHS checks its own
  ``time_limit`` coarsely on large models),
- never raises on a non-optimal outcome: infeasible, time limit with or without an incumbent all come
  back as a :class:`SolveInfo` whose ``status`` is one of :data:`STATUSES`,
- reports objective, bound, gap and seconds for every solve.

HiGHS defaults we change (:data:`DEFAULT_HIGHS_OPTIONS`, overridable per solve through
``highs_options``): the root reduced-cost sub-MIP heuristic is off. With a warm start on the balanced
DTDP assignment (planar600_G4, 6,000 binaries) it nested sub-MIPs four deep and stalled in their
presolve (``HPresolve::strengthenInequalities``), where neither HiGHS's ``time_limit`` nor our interrupt
callback is polled: a 20 s solve ran past 10 minutes. Without it the same solve ends in 11 s.

The interface used is ``pyomo.contrib.solver.solvers.highs.Highs`` (the new Pyomo solver API) with
``load_solutions=False, raise_exception_on_nonoptimal_result=False``; the termination conditions of
that API are mapped to our statuses in :func:`_map_status`.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyomo.environ as pyo

log = logging.getLogger(__name__)

#: HiGHS options set on every solve unless ``SolverOptions.highs_options`` says otherwise (see the module notes).
DEFAULT_HIGHS_OPTIONS: Mapping[str, Any] = {"mip_heuristic_run_root_reduced_cost": False}


class _DropInterruptWarning(logging.Filter):
    """Pyomo warns "unhandled status kInterrupt" when our wall-clock callback stops HiGHS: expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kInterrupt" not in record.getMessage()


logging.getLogger("pyomo.contrib.solver.solvers.highs").addFilter(_DropInterruptWarning())

OPTIMAL = "optimal"
FEASIBLE = "feasible"  # stopped by a limit with an incumbent
INFEASIBLE = "infeasible"
NO_SOLUTION = "no_solution"  # stopped by a limit without an incumbent
RELAXED = "relaxed"  # strict model infeasible; nearest plan from the elastic model
ERROR = "error"
STATUSES = (OPTIMAL, FEASIBLE, INFEASIBLE, NO_SOLUTION, RELAXED, ERROR)


@dataclass(frozen=True)
class SolverOptions:
    """Options of every territory MILP solve.

    Parameters
    ----------
    time_limit
        Wall-clock limit of one solve [s]; enforced by an interrupt callback.
    mip_gap
        Relative MIP gap at which HiGHS stops [-], ``|primal - dual| / |primal|``.
    threads
        HiGHS threads. Keep 1 when solves run side by side on Dask workers.
    highs_options
        Further HiGHS options by name (e.g. ``{"mip_heuristic_effort": 0.2}``); they override
        :data:`DEFAULT_HIGHS_OPTIONS`.
    log_to_console
        Let HiGHS print its log to stdout (off: the log is captured and sent to ``logging`` at DEBUG).
    """

    time_limit: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 1
    highs_options: Mapping[str, Any] = field(default_factory=dict)
    log_to_console: bool = False


@dataclass
class SolveInfo:
    """What one solve reports.

    Attributes
    ----------
    status
        One of :data:`STATUSES`.
    objective
        Objective of the incumbent (NaN if none).
    bound
        Best proven bound (NaN if none).
    gap
        Relative gap ``|objective - bound| / max(|objective|, 1e-9)`` [-] (NaN if either is missing;
        0 when both are 0).
    seconds
        Wall-clock time of the solve [s], model translation to HiGHS included.
    termination
        The solver's own termination condition, for the log.
    """

    status: str
    objective: float = math.nan
    bound: float = math.nan
    gap: float = math.nan
    seconds: float = 0.0
    termination: str = ""
    nodes: int = -1

    @property
    def has_solution(self) -> bool:
        return self.status in (OPTIMAL, FEASIBLE, RELAXED)


def relative_gap(objective: float, bound: float) -> float:
    """Relative MIP gap ``|objective - bound| / max(|objective|, 1e-9)`` (NaN when unknown)."""
    if not (np.isfinite(objective) and np.isfinite(bound)):
        return math.nan
    if abs(objective - bound) <= 1e-12:
        return 0.0
    return abs(objective - bound) / max(abs(objective), 1e-9)


def _map_status(termination: str, has_solution: bool) -> str:
    t = termination.lower()
    if "convergence" in t or t == "optimal":
        return OPTIMAL if has_solution else NO_SOLUTION
    if "infeasible" in t and "unbounded" not in t:
        return INFEASIBLE
    if "infeasibleorunbounded" in t:
        return INFEASIBLE
    if has_solution:
        return FEASIBLE
    if "limit" in t or "interrupt" in t or "unknown" in t:
        return NO_SOLUTION
    return ERROR


def solve_milp(
    model: pyo.ConcreteModel,
    options: SolverOptions,
    warm_start: Sequence[tuple[Any, float]] | None = None,
) -> SolveInfo:
    """Solve a Pyomo MILP with HiGHS; load the incumbent into the model's variables when there is one.

    Parameters
    ----------
    model
        A Pyomo model with one active objective.
    options
        Time limit, gap, threads and extra HiGHS options.
    warm_start
        ``(variable, value)`` pairs for some or all variables, handed to HiGHS as a start;
        HiGHS completes a partial start itself.

    Returns
    -------
    SolveInfo
        Status, objective, bound, gap, seconds. Never raises for infeasible or time-limited solves.
    """
    from pyomo.contrib.solver.solvers.highs import Highs

    tick = time.perf_counter()
    buffer = io.StringIO()
    opt = Highs()
    try:
        with _quiet(buffer, options.log_to_console):
            opt.set_instance(model)
        h = opt._solver_model
        if warm_start:
            index = opt._pyomo_var_to_solver_var_map
            cols = np.fromiter((index[id(v)] for v, _ in warm_start), dtype=np.int32, count=len(warm_start))
            vals = np.fromiter((float(x) for _, x in warm_start), dtype=np.float64, count=len(warm_start))
            h.setSolution(len(cols), cols, vals)
        deadline = tick + options.time_limit

        def _interrupt(event: Any) -> None:
            if time.perf_counter() > deadline:
                event.interrupt()

        h.cbMipInterrupt += _interrupt
        h.cbSimplexInterrupt += _interrupt
        h.cbIpmInterrupt += _interrupt
        remaining = max(options.time_limit - (time.perf_counter() - tick), 0.5)
        with _quiet(buffer, options.log_to_console):
            res = opt.solve(
                model,
                time_limit=remaining,
                rel_gap=options.mip_gap,
                threads=options.threads,
                solver_options={**DEFAULT_HIGHS_OPTIONS, **options.highs_options},
                load_solutions=False,
                raise_exception_on_nonoptimal_result=False,
                tee=options.log_to_console,
            )
        termination = str(res.termination_condition).split(".")[-1]
        model_status = str(h.getModelStatus()).split(".")[-1]
        if model_status == "kInterrupt" or (termination == "unknown" and time.perf_counter() >= deadline):
            termination = "maxTimeLimit"  # our wall-clock interrupt
        sol_status = str(res.solution_status).split(".")[-1].lower()
        has_solution = sol_status in ("optimal", "feasible")
        if has_solution:
            res.solution_loader.load_vars()
        objective = float(res.incumbent_objective) if res.incumbent_objective is not None else math.nan
        bound = float(res.objective_bound) if res.objective_bound is not None else math.nan
        try:
            nodes = int(h.getInfo().mip_node_count)
        except Exception:  # noqa: BLE001 - info is best effort
            nodes = -1
        status = _map_status(termination, has_solution)
        if status == OPTIMAL and not np.isfinite(bound):
            bound = objective
        info = SolveInfo(
            status=status,
            objective=objective,
            bound=bound,
            gap=relative_gap(objective, bound) if has_solution else math.nan,
            seconds=time.perf_counter() - tick,
            termination=termination,
            nodes=nodes,
        )
    except Exception as exc:  # noqa: BLE001 - the contract is: never crash inside Pyomo
        log.error("HiGHS solve failed: %r", exc, exc_info=True)
        info = SolveInfo(status=ERROR, seconds=time.perf_counter() - tick, termination=repr(exc))
    finally:
        text = buffer.getvalue()
        if text:
            log.debug("HiGHS output:\n%s", text)
    log.info(
        "HiGHS: %s (%s) objective %.6g bound %.6g gap %.3g%% in %.2fs",
        info.status,
        info.termination,
        info.objective,
        info.bound,
        100 * info.gap if np.isfinite(info.gap) else math.nan,
        info.seconds,
    )
    return info


class _quiet:
    """Send stdout to ``buffer`` unless the caller wants the solver log on the console."""

    def __init__(self, buffer: io.StringIO, show: bool):
        self._cm = None if show else redirect_stdout(buffer)

    def __enter__(self) -> None:
        if self._cm is not None:
            self._cm.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)
