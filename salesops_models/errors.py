"""Exception types of the workbench.

Every error names the input (file or table), the field and the fix, so that a planner can act on it
without reading a traceback. Catch :class:`SalesopsError` to catch them all.
"""

from __future__ import annotations

from collections.abc import Sequence


class SalesopsError(Exception):
    """Base class of every error the workbench raises on purpose."""


class DataValidationError(SalesopsError, ValueError):
    """A table does not meet its canonical schema.

    Parameters
    ----------
    source
        The file or table name the data came from.
    problems
        One line per problem, each naming the column, the rows and the fix.
    """

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) found, nothing was loaded:\n{lines}")


class InputFileError(SalesopsError, ValueError):
    """A file given to the workbench cannot be read as it is: missing, a folder or a device, too big,
    in another encoding, not valid YAML, or outside the folder it must stay in."""


class MappingError(SalesopsError, ValueError):
    """A column-mapping file is malformed or does not fit the export it is applied to."""


class ScenarioError(SalesopsError, ValueError):
    """A scenario file is malformed: unknown key, wrong type, broken ``extends`` chain."""


class PlanError(SalesopsError, ValueError):
    """A commission plan is malformed: overlapping tiers, negative rates, a cap below target..."""


class StageOrderError(SalesopsError):
    """A scenario run whose stages would read a table no earlier stage writes (refused before it runs)."""


class TrackingError(SalesopsError, ValueError):
    """Tracking a saved plan failed on its inputs: a plan folder of another version, actuals from
    another company, an as-of date outside the plan year, a malformed mid-year changes file."""


class InfeasibleError(SalesopsError):
    """A model has no solution for the given tolerances; ``diagnosis`` says what to relax."""

    def __init__(self, message: str, diagnosis: object | None = None):
        self.diagnosis = diagnosis
        super().__init__(message)


def format_rows(rows: Sequence[object], limit: int = 5, unit: str = "row") -> str:
    """Render row labels for an error message: ``rows 3, 17, 42 (+12 more)``.

    ``unit`` is ``"line"`` when the labels are file line numbers (see ``data.schema.row_labels``).
    """
    shown = ", ".join(str(r) for r in list(rows)[:limit])
    extra = len(rows) - limit
    word = unit if len(rows) == 1 else f"{unit}s"
    return f"{word} {shown}" + (f" (+{extra} more)" if extra > 0 else "")
