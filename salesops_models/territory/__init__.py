"""Territory alignment and design: who covers which accounts, solved as MILPs with Pyomo and HiGHS.

- :func:`assign_territories`: fixed rep home bases, balance bands, disruption, locks, move cap.
- :func:`disruption_tradeoff`: the travel-versus-disruption curve (epsilon constraint).
- :class:`SolverOptions`: time limit, MIP gap, threads (one place for every solve).
"""

from salesops_models.territory.alignment import (
    ACCOUNT_COUNT,
    BalanceMetric,
    assign_territories,
    disruption_tradeoff,
    evaluate_plan,
)
from salesops_models.territory.result import AlignmentResult, balance_index
from salesops_models.territory.solver import SolveInfo, SolverOptions

__all__ = [
    "ACCOUNT_COUNT",
    "AlignmentResult",
    "BalanceMetric",
    "SolveInfo",
    "SolverOptions",
    "assign_territories",
    "balance_index",
    "disruption_tradeoff",
    "evaluate_plan",
]
