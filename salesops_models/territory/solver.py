"""One place for how territory MILPs are solved: HiGHS through Pyomo's persistent interface.

Every Pyomo model of the territory package goes through :func:`solve_milp`, and every model built
straight into highspy (the large-scale path) gets its ``Highs`` object from :func:`highs_solver`, which

- set the options of :class:`SolverOptions` (node limit, time limit, relative MIP gap, threads, extra
  HiGHS options),
- pass a warm start (a full or partial assignment of the binaries) to HiGHS,
- enforce the wall-clock limit themselves through a HiGHS interrupt callback (HiGHS checks its own
  ``time_limit`` coarsely on large models),
- never raises on a non-optimal outcome: infeasible, time limit with or without an incumbent all come
  back as a :class:`SolveInfo` whose ``status`` is one of :data:`STATUSES`,
- reports objective, bound, gap and seconds for every solve,
- while a MIP runs, log its incumbent and bound now and then (:class:`MipProgress`: at most every
  :data:`PROGRESS_EVERY` seconds of a long solve) on the logger
  :data:`PROGRESS_LOGGER`, which a batch forwards to its ``progress.log``.

**Work limits, and the clock as a safety net.** A solve that stops on the wall clock gives a plan that
depends on the machine's load: the same scenario moves from run to run. With a ``node_limit`` (HiGHS
``mip_max_nodes``) and one thread, HiGHS does the same work in the same order on any machine, so the
same model gives the same plan bit for bit. The time limit then only guards against a runaway solve: a
:class:`Deadline` is shared by every step of a task, and when it fires the step records where
(:attr:`Deadline.fired`), so the caller can report that this result is not reproducible.
:func:`solver_versions` gives the versions that the provenance of a result should carry.

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
import platform
import time
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import pyomo.environ as pyo

log = logging.getLogger(__name__)
#: logger of the progress lines of running MIPs (a batch forwards its records to progress.log)
PROGRESS_LOGGER = f"{__name__}.progress"
progress_log = logging.getLogger(PROGRESS_LOGGER)
#: seconds between two progress lines of one MIP solve when its incumbent does not improve [s]
PROGRESS_EVERY = 15.0

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
    node_limit
        Branch-and-bound nodes of one solve (HiGHS ``mip_max_nodes``): a work limit that stops the
        solve at the same point on any machine. ``None``: no limit (the solve stops at ``mip_gap`` or
        on the clock).
    """

    time_limit: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 1
    highs_options: Mapping[str, Any] = field(default_factory=dict)
    log_to_console: bool = False
    node_limit: int | None = None

    def highs_option_values(self) -> dict[str, Any]:
        """HiGHS options of a MIP solve: our defaults, the node limit, then ``highs_options``."""
        out: dict[str, Any] = dict(DEFAULT_HIGHS_OPTIONS)
        if self.node_limit is not None:
            out["mip_max_nodes"] = int(self.node_limit)
        out.update(self.highs_options)
        return out


class PhaseTimer:
    """Wall-clock seconds of the named steps of a solve path, in the order they ran (a step named twice
    adds up). Call it with a step's name when the step ends; :meth:`restart` skips time that belongs to
    no step (e.g. a nested path that reported its own steps)."""

    def __init__(self) -> None:
        self.start = self.lap = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.lap
        self.lap = now

    def restart(self) -> None:
        self.lap = time.perf_counter()


class Deadline:
    """A wall-clock safety net shared by the steps of one task; remembers which steps it stopped.

    Parameters
    ----------
    seconds
        Wall-clock allowance [s] from construction (``inf``: none).
    """

    def __init__(self, seconds: float = math.inf):
        self.seconds = float(seconds)
        self.start = time.perf_counter()
        self.fired: list[str] = []

    def within(self, seconds: float | None) -> Deadline:
        """A deadline of at most ``seconds`` [s] more (``None``: this one) that records into this one."""
        if seconds is None:
            return self
        sub = Deadline(min(float(seconds), self.remaining()))
        sub.fired = self.fired
        return sub

    def remaining(self) -> float:
        """Seconds left [s] (0 when past)."""
        return max(self.seconds - (time.perf_counter() - self.start), 0.0)

    def expired(self, step: str) -> bool:
        """Whether the allowance is used up; the first time a step finds it so, the step is recorded."""
        if time.perf_counter() - self.start <= self.seconds:
            return False
        self.record(step)
        return True

    def record(self, step: str) -> None:
        """Record that ``step`` was stopped by the clock (each step once), with a warning in the log."""
        if step not in self.fired:
            self.fired.append(step)
            log.warning(
                "wall-clock safety net (%.0f s) stopped %s: this result depends on the machine's speed "
                "and load; raise the time limit or lower the work limits to make it reproducible",
                self.seconds,
                step,
            )

    @property
    def hit(self) -> bool:
        return bool(self.fired)


def solver_versions() -> dict[str, str]:
    """Versions of Python and of the libraries whose arithmetic a territory result depends on.

    Returns
    -------
    dict of str
        ``{"python": ..., "highspy": ..., "highs": ..., "pyomo": ..., "numpy": ..., "scipy": ...,
        "pandas": ..., "networkx": ...}`` (``"absent"`` for a library that is not installed).
    """
    out = {"python": platform.python_version()}
    for name in ("highspy", "pyomo", "numpy", "scipy", "pandas", "networkx"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    try:
        import highspy

        h = highspy.Highs()
        out["highs"] = f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"
    except Exception:  # noqa: BLE001 - provenance is best effort
        out["highs"] = "absent"
    return out


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
        The solver's own termination condition, for the log (``nodeLimit``: the work limit;
        ``maxTimeLimit``: the wall clock).
    nodes
        Branch-and-bound nodes (-1 when unknown).
    time_limit_hit
        The wall clock stopped the solve: the plan may differ on another run.
    """

    status: str
    objective: float = math.nan
    bound: float = math.nan
    gap: float = math.nan
    seconds: float = 0.0
    termination: str = ""
    nodes: int = -1
    time_limit_hit: bool = False

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
    deadline: Deadline | None = None,
    step: str = "MILP",
) -> SolveInfo:
    """Solve a Pyomo MILP with HiGHS; load the incumbent into the model's variables when there is one.

    Parameters
    ----------
    model
        A Pyomo model with one active objective.
    options
        Node limit, time limit, gap, threads and extra HiGHS options.
    warm_start
        ``(variable, value)`` pairs for some or all variables, handed to HiGHS as a start;
        HiGHS completes a partial start itself.
    deadline
        The task's safety net: the solve gets at most its remaining time (and ``options.time_limit``);
        when the clock stops the solve, ``step`` is recorded on it.
    step
        Name of this solve in the deadline's record and the log.

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
        allowance = options.time_limit if deadline is None else min(options.time_limit, deadline.remaining())
        stop_at = _interrupt_at(h, tick + allowance)
        MipProgress(step).attach(h)
        remaining = max(stop_at - time.perf_counter(), 0.5)
        with _quiet(buffer, options.log_to_console):
            res = opt.solve(
                model,
                time_limit=remaining,
                rel_gap=options.mip_gap,
                threads=options.threads,
                solver_options=options.highs_option_values(),
                load_solutions=False,
                raise_exception_on_nonoptimal_result=False,
                tee=options.log_to_console,
            )
        termination = str(res.termination_condition).split(".")[-1]
        model_status = str(h.getModelStatus()).split(".")[-1]
        if model_status == "kInterrupt" or (termination == "unknown" and time.perf_counter() >= stop_at):
            termination = "maxTimeLimit"  # our wall-clock interrupt
        elif model_status == "kSolutionLimit":
            termination = "nodeLimit"  # mip_max_nodes (or another HiGHS work limit)
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
            time_limit_hit=termination == "maxTimeLimit",
        )
        if info.time_limit_hit and deadline is not None:
            deadline.record(step)
    except Exception as exc:  # noqa: BLE001 - the contract is: never crash inside Pyomo
        log.error("HiGHS solve failed: %r", exc, exc_info=True)
        info = SolveInfo(status=ERROR, seconds=time.perf_counter() - tick, termination=repr(exc))
    finally:
        text = buffer.getvalue()
        if text:
            log.debug("HiGHS output:\n%s", text)
    log.info(
        "HiGHS %s: %s (%s) objective %.6g bound %.6g gap %.3g%%, %d nodes in %.2fs",
        step,
        info.status,
        info.termination,
        info.objective,
        info.bound,
        100 * info.gap if np.isfinite(info.gap) else math.nan,
        info.nodes,
        info.seconds,
    )
    return info


class MipProgress:
    """Log a running MIP's incumbent, bound and gap now and then (INFO on :data:`PROGRESS_LOGGER`).

    At most one line per ``every`` seconds, the first after ``every`` seconds of solving (a short
    solve, such as one sub-MIP of a neighbourhood search, says nothing): an improved incumbent when
    there is one, else where the search stands. The callbacks only read HiGHS's data and never
    interrupt, so the solve (and the plan) is the same with or without them; only the number of
    lines depends on the clock.

    Parameters
    ----------
    step
        Name of the solve in the lines.
    every
        Seconds between two lines [s]; default :data:`PROGRESS_EVERY`.
    """

    def __init__(self, step: str, every: float | None = None):
        self.step = step
        self.every = float(PROGRESS_EVERY if every is None else every)
        self.lines = 0
        self._last = time.perf_counter()

    def attach(self, h: Any) -> MipProgress:
        """Register the callbacks on the ``highspy.Highs`` object ``h``; returns self."""
        h.cbMipImprovingSolution += self._on_incumbent
        h.cbMipInterrupt += self._on_poll
        return self

    def _on_incumbent(self, event: Any) -> None:
        self._line(event, "new incumbent")

    def _on_poll(self, event: Any) -> None:
        self._line(event, "searching")

    def _line(self, event: Any, what: str) -> None:
        now = time.perf_counter()
        if now - self._last < self.every:
            return
        try:
            d = event.data_out
            # the incumbent's objective (on a new incumbent: the new one, when the primal bound may lag)
            primal, dual, gap = float(d.objective_function_value), float(d.mip_dual_bound), float(d.mip_gap)
            nodes, seconds = int(d.mip_node_count), float(d.running_time)
        except Exception:  # noqa: BLE001 - progress is a courtesy; it never fails a solve
            return
        if not math.isfinite(primal) and what == "searching":
            what = "searching, no incumbent yet"
        self._last = now
        self.lines += 1
        progress_log.info(
            "HiGHS %s: %s: incumbent %.6g, bound %.6g, gap %s, %d nodes, %.1f s",
            self.step,
            what,
            primal,
            dual,
            f"{100 * gap:.2f}%" if math.isfinite(gap) and math.isfinite(primal) else "-",
            nodes,
            seconds,
        )


def _interrupt_at(h: Any, stop_at: float) -> float:
    """Interrupt the ``highspy.Highs`` object ``h`` once ``time.perf_counter()`` passes ``stop_at``."""

    def _interrupt(event: Any) -> None:
        if time.perf_counter() > stop_at:
            event.interrupt()

    h.cbMipInterrupt += _interrupt
    h.cbSimplexInterrupt += _interrupt
    h.cbIpmInterrupt += _interrupt
    return stop_at


def highs_solver(
    options: SolverOptions,
    deadline: Deadline | None = None,
    mip: bool = True,
    seconds: float = math.inf,
    step: str = "MILP",
) -> Any:
    """A quiet ``highspy.Highs`` set up like :func:`solve_milp` does, for models built straight in highspy.

    Parameters
    ----------
    options
        Threads always; for a MIP (``mip``) also the gap, the node limit and the HiGHS options.
    deadline
        Safety net: the object is interrupted when it runs out (the caller checks
        :func:`stopped_by_clock` after ``run()`` and records its step).
    seconds
        A tighter wall-clock allowance of this object alone [s].
    step
        Name of the solve in its progress lines (:class:`MipProgress`, a MIP only).
    """
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(options.log_to_console))
    h.setOptionValue("threads", int(options.threads))
    if mip:
        h.setOptionValue("mip_rel_gap", float(options.mip_gap))
        for key, value in options.highs_option_values().items():
            h.setOptionValue(key, value)
    allowance = min(options.time_limit, seconds, deadline.remaining() if deadline is not None else math.inf)
    if math.isfinite(allowance):
        h.setOptionValue("time_limit", max(allowance, 0.1))
        _interrupt_at(h, time.perf_counter() + allowance)
    if mip:
        MipProgress(step).attach(h)
    return h


def stopped_by_clock(h: Any) -> bool:
    """Whether the last ``run()`` of a ``highspy.Highs`` ended on the wall clock (its limit or our interrupt)."""
    import highspy

    return h.getModelStatus() in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt)


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


def highs_lp(mat: Any, cost: np.ndarray, upper: np.ndarray, row_lo: np.ndarray, row_hi: np.ndarray) -> object:
    """A ``HighsLp`` min cost.x, 0 <= x <= upper, row_lo <= mat.x <= row_hi."""
    import highspy

    csc = mat.tocsc()
    csc.sort_indices()
    lp = highspy.HighsLp()
    lp.num_row_, lp.num_col_ = csc.shape
    lp.col_cost_ = np.asarray(cost, float)
    lp.col_lower_ = np.zeros(csc.shape[1])
    lp.col_upper_ = np.asarray(upper, float)
    lp.row_lower_ = np.asarray(row_lo, float)
    lp.row_upper_ = np.asarray(row_hi, float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    return lp
