"""MILPs built from numpy index arrays straight into HiGHS, for the exact design models.

The design models (districting, p-median, capacitated p-median) have tens of thousands of small,
regular rows. Built through Pyomo they spend more time in model generation than HiGHS spends solving
(pmed at n = 900: ~20 s of Pyomo build per round). Here variables are blocks of column indices
(``numpy`` arrays shaped like the model's index sets) and rows are (row, column, value) triplets, so a
model is a handful of vectorised calls and one ``passModel``.

:func:`run_highs` solves one such model with the project's conventions (one thread unless told,
:data:`~salesops_models.territory.solver.DEFAULT_HIGHS_OPTIONS`, a warm start, statuses of
:mod:`~salesops_models.territory.solver`). It stops on **work limits** when the options carry them
(``mip_max_nodes``, ``simplex_iteration_limit``...): HiGHS is deterministic with one thread, so a
node-limited solve gives the same plan on a busy machine. The wall-clock ``time_limit`` stays as a
safety net; when it is what stopped the solve, ``SolveInfo.termination`` says ``time limit`` and the
caller reports it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix

from salesops_models.territory.solver import (
    DEFAULT_HIGHS_OPTIONS,
    ERROR,
    FEASIBLE,
    INFEASIBLE,
    NO_SOLUTION,
    OPTIMAL,
    SolveInfo,
    SolverOptions,
    relative_gap,
)

log = logging.getLogger(__name__)

#: HiGHS model statuses that mean "a limit stopped the search" (mapped to feasible / no_solution).
_LIMIT_STATUSES = (
    "kTimeLimit",
    "kIterationLimit",
    "kSolutionLimit",
    "kInterrupt",
    "kObjectiveBound",
    "kObjectiveTarget",
)


#: ``HighsInfo.primal_solution_status`` of a feasible point (kSolutionStatusFeasible).
_FEASIBLE_POINT = 2


class MilpArrays:
    """A MILP under construction: variable blocks, row triplets, bounds and costs.

    ``add_vars`` returns the column indices of a new block shaped like its index set, so rows are
    written with numpy indexing (``x[i, j]``) and never one term at a time.
    """

    def __init__(self) -> None:
        self._lower: list[np.ndarray] = []
        self._upper: list[np.ndarray] = []
        self._cost: list[np.ndarray] = []
        self._integer: list[np.ndarray] = []
        self.num_cols = 0
        self._ri: list[np.ndarray] = []
        self._ci: list[np.ndarray] = []
        self._vi: list[np.ndarray] = []
        self._row_lower: list[np.ndarray] = []
        self._row_upper: list[np.ndarray] = []
        self.num_rows = 0

    def add_vars(
        self,
        shape: int | tuple[int, ...],
        *,
        lower: float | np.ndarray = 0.0,
        upper: float | np.ndarray = 1.0,
        cost: float | np.ndarray = 0.0,
        integer: bool = False,
    ) -> np.ndarray:
        """Add a block of variables; returns their column indices with the given shape."""
        size = int(np.prod(shape))
        cols = np.arange(self.num_cols, self.num_cols + size).reshape(shape)
        for store, value in ((self._lower, lower), (self._upper, upper), (self._cost, cost)):
            arr = np.asarray(value, float)
            arr = arr.ravel() if arr.size == size else np.broadcast_to(arr, (size,))
            store.append(arr.astype(float).copy())
        self._integer.append(np.full(size, integer))
        self.num_cols += size
        return cols

    def add_rows(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        vals: float | np.ndarray,
        lower: float | np.ndarray,
        upper: float | np.ndarray,
        num: int | None = None,
    ) -> np.ndarray:
        """Add ``num`` rows (default: ``rows.max() + 1``) given as triplets with local row numbers.

        Returns the global indices of the new rows. Repeated (row, column) pairs are summed.
        """
        rows = np.asarray(rows, dtype=np.int64).ravel()
        cols = np.asarray(cols, dtype=np.int64).ravel()
        if num is None:
            num = int(rows.max()) + 1 if len(rows) else 0
        self._ri.append(rows + self.num_rows)
        self._ci.append(cols)
        self._vi.append(np.broadcast_to(np.asarray(vals, float), rows.shape).astype(float).ravel().copy())
        self._row_lower.append(np.broadcast_to(np.asarray(lower, float), (num,)).astype(float).copy())
        self._row_upper.append(np.broadcast_to(np.asarray(upper, float), (num,)).astype(float).copy())
        out = np.arange(self.num_rows, self.num_rows + num)
        self.num_rows += num
        return out

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Current column bounds (copies)."""
        return np.concatenate(self._lower), np.concatenate(self._upper)

    def set_bounds(self, cols: np.ndarray, lower: np.ndarray | float, upper: np.ndarray | float) -> None:
        """Overwrite the bounds of some columns (variable fixing)."""
        lo, up = self.bounds()
        cols = np.asarray(cols).ravel()
        lo[cols] = np.broadcast_to(np.asarray(lower, float), cols.shape).ravel()
        up[cols] = np.broadcast_to(np.asarray(upper, float), cols.shape).ravel()
        self._lower, self._upper = [lo], [up]

    @property
    def integer(self) -> np.ndarray:
        return np.concatenate(self._integer)

    def to_highs(self, options: SolverOptions, *, relax: bool = False) -> Any:
        """A ``highspy.Highs`` holding the model, with the options of ``options`` set."""
        import highspy

        lower, upper = self.bounds()
        mat = coo_matrix(
            (np.concatenate(self._vi), (np.concatenate(self._ri), np.concatenate(self._ci))),
            shape=(self.num_rows, self.num_cols),
        ).tocsc()
        mat.sum_duplicates()
        mat.sort_indices()
        lp = highspy.HighsLp()
        lp.num_row_, lp.num_col_ = self.num_rows, self.num_cols
        lp.col_cost_ = np.concatenate(self._cost)
        lp.col_lower_ = lower
        lp.col_upper_ = upper
        lp.row_lower_ = np.concatenate(self._row_lower)
        lp.row_upper_ = np.concatenate(self._row_upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = mat.indptr.astype(np.int32)
        lp.a_matrix_.index_ = mat.indices.astype(np.int32)
        lp.a_matrix_.value_ = mat.data.astype(float)
        if not relax and self.integer.any():
            kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
            lp.integrality_ = [kinds[int(flag)] for flag in self.integer]
        h = highspy.Highs()
        apply_options(h, options)
        h.passModel(lp)
        return h


def apply_options(h: Any, options: SolverOptions) -> None:
    """Set threads, gap, the project defaults and the extra options of ``options`` on a Highs object.

    ``threads`` is set on every instance: HiGHS has one global scheduler, and an instance created with
    the default (all cores) fixes it for every later instance, which then refuses ``threads = 1``.
    """
    h.setOptionValue("output_flag", bool(options.log_to_console))
    h.setOptionValue("threads", int(options.threads))
    h.setOptionValue("mip_rel_gap", float(options.mip_gap))
    h.setOptionValue("time_limit", max(float(options.time_limit), 0.01))
    for key, value in {**DEFAULT_HIGHS_OPTIONS, **options.highs_options}.items():
        h.setOptionValue(key, value)


@dataclass
class ArraySolve:
    """What :func:`run_highs` returns: the solve figures, the column values, the reduced costs (LPs
    only) and the bound trace."""

    info: SolveInfo
    values: np.ndarray | None
    reduced_costs: np.ndarray | None = None
    trace: list[tuple[float, float, float]] = field(default_factory=list)
    stopped_by_clock: bool = False


def run_highs(
    h: Any,
    time_limit: float,
    *,
    warm_start: np.ndarray | None = None,
    trace_every: float | None = None,
    on_progress: Callable[[float, float, float], None] | None = None,
) -> ArraySolve:
    """Run a model built by :meth:`MilpArrays.to_highs` (or any ``highspy.Highs``) and read the result.

    Parameters
    ----------
    h
        The HiGHS object, options set.
    time_limit
        Wall-clock safety net [s], enforced by an interrupt callback as well as HiGHS's own limit.
    warm_start
        A full column vector handed to HiGHS as a start (``setSolution``).
    trace_every
        Record (seconds, dual bound, incumbent) at most this often [s] from the MIP callback.
    on_progress
        Called with the same triple whenever a trace point is recorded.

    Returns
    -------
    ArraySolve
        ``info.status`` is one of the statuses of :mod:`~salesops_models.territory.solver`.
    """
    tick = time.perf_counter()
    deadline = tick + time_limit
    h.setOptionValue("time_limit", max(float(time_limit), 0.01))
    if warm_start is not None:
        n = len(warm_start)
        h.setSolution(n, np.arange(n, dtype=np.int32), np.asarray(warm_start, float))
    trace: list[tuple[float, float, float]] = []
    clock = {"fired": False, "last": -math.inf}

    def _callback(event: Any) -> None:
        now = time.perf_counter()
        if trace_every is not None and now - clock["last"] >= trace_every:
            clock["last"] = now
            out = event.data_out
            point = (now - tick, float(out.mip_dual_bound), float(out.mip_primal_bound))
            trace.append(point)
            if on_progress is not None:
                on_progress(*point)
        if now > deadline:
            clock["fired"] = True
            event.interrupt()

    h.cbMipInterrupt += _callback
    h.cbSimplexInterrupt += _callback
    try:
        h.run()
    finally:
        h.cbMipInterrupt -= _callback
        h.cbSimplexInterrupt -= _callback
    seconds = time.perf_counter() - tick
    model_status = str(h.getModelStatus()).split(".")[-1]
    info = h.getInfo()
    is_mip = len(h.getLp().integrality_) > 0
    has_solution = int(info.primal_solution_status) == _FEASIBLE_POINT
    objective = float(info.objective_function_value) if has_solution else math.nan
    bound = float(info.mip_dual_bound) if is_mip else (objective if has_solution else math.nan)
    by_clock = clock["fired"] or (model_status in ("kTimeLimit", "kInterrupt") and seconds >= time_limit * 0.98)
    if model_status == "kOptimal":
        status = OPTIMAL
        if not np.isfinite(bound):
            bound = objective
    elif model_status in ("kInfeasible", "kUnboundedOrInfeasible"):
        status = INFEASIBLE
    elif model_status in _LIMIT_STATUSES:
        status = FEASIBLE if has_solution else NO_SOLUTION
    else:
        status = FEASIBLE if has_solution else ERROR
    termination = "time limit" if by_clock else model_status
    if is_mip and not np.isfinite(bound):
        bound = math.nan
    values = reduced = None
    if has_solution:
        sol = h.getSolution()
        values = np.asarray(sol.col_value, float)
        reduced = None if is_mip else np.asarray(sol.col_dual, float)
    solve = SolveInfo(
        status=status,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound) if has_solution else math.nan,
        seconds=seconds,
        termination=termination,
        nodes=int(info.mip_node_count) if is_mip else 0,
    )
    log.info(
        "HiGHS (arrays): %s (%s) objective %.6g bound %.6g in %.2fs, %d nodes",
        solve.status,
        termination,
        solve.objective,
        solve.bound,
        seconds,
        solve.nodes,
    )
    return ArraySolve(solve, values, reduced, trace, by_clock)
