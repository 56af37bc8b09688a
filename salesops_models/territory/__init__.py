"""Territory alignment and design: who covers which accounts, solved as MILPs with Pyomo and HiGHS.

- :func:`assign_territories`: fixed rep home bases, balance bands, disruption, locks, move cap.
- :func:`disruption_tradeoff`: the travel-versus-disruption curve (epsilon constraint).
- :class:`SolverOptions`: node limit, MIP gap, threads, the wall-clock safety net (one place for every
  solve); :class:`SearchLimits`: the work limits of the heuristics;
- :func:`solver_versions`: the library versions a result depends on, for provenance.
"""

from salesops_models.territory.alignment import (
    ACCOUNT_COUNT,
    DEFAULT_SOLVER,
    BalanceMetric,
    assign_territories,
    disruption_tradeoff,
    evaluate_plan,
)
from salesops_models.territory.heuristics import SearchLimits
from salesops_models.territory.result import AlignmentResult, balance_index
from salesops_models.territory.solver import SolveInfo, SolverOptions, solver_versions

__all__ = [
    "ACCOUNT_COUNT",
    "DEFAULT_SOLVER",
    "AlignmentResult",
    "BalanceMetric",
    "SolveInfo",
    "SearchLimits",
    "SolverOptions",
    "assign_territories",
    "balance_index",
    "disruption_tradeoff",
    "evaluate_plan",
    "solver_versions",
]
