"""Canonical tables: the one shape every model reads.

Each table is described once, as a :class:`TableSchema` of :class:`Column` specs. ``validate``
coerces a raw DataFrame to the canonical dtypes and collects *every* problem before raising one
:class:`~salesops_models.errors.DataValidationError`, so that nothing is half-loaded and the user
fixes all problems in one pass.

Units: money in the company's currency, hours in hours, dates as ``datetime64[ns]`` (day precision).

Where a problem is: a table read from a CSV file carries a ``_line`` column (the file line each
row starts on, set by ``loaders.read_table`` before anything else touches the rows), and messages
name those lines; a table without it (Parquet, a DataFrame built in code) is named by 1-based row
position. Positions are never derived from the index after masking: a boolean mask on a
``RangeIndex`` returns a ``RangeIndex`` only when the hits happen to be evenly spaced.

Dates: a column is parsed with one format for all its values: ISO 8601, or the ``date_format``
given (a mapping's ``date_format``). A column in another format, or mixing formats, is rejected
with the format it looks like, never parsed value by value (which swaps day and month silently).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError, format_rows

Kind = Literal["str", "float", "int", "date", "bool"]

LINE = "_line"  # file line a row starts on (1-based, the header is line 1); see loaders.read_table

# Formats a non-ISO date column is compared with, to say what it looks like (never to guess it).
_DATE_FORMATS = {
    "%d/%m/%Y": "DD/MM/YYYY",
    "%m/%d/%Y": "MM/DD/YYYY",
    "%d.%m.%Y": "DD.MM.YYYY",
    "%d-%m-%Y": "DD-MM-YYYY",
    "%m-%d-%Y": "MM-DD-YYYY",
    "%Y/%m/%d": "YYYY/MM/DD",
    "%d/%m/%y": "DD/MM/YY",
    "%m/%d/%y": "MM/DD/YY",
}


def where(df: pd.DataFrame, mask: object, limit: int = 5) -> str:
    """Where the rows selected by ``mask`` are, for an error message: ``lines 4, 8, 30`` when ``df``
    came from a CSV file (its ``_line`` column), else ``rows 1, 5`` (1-based positions)."""
    if isinstance(mask, pd.Series):
        mask = mask.fillna(False).to_numpy()
    m = np.asarray(mask, dtype=bool)
    if LINE in df.columns:
        return format_rows([int(x) for x in df[LINE].to_numpy()[m]], limit, unit="line")
    return format_rows([int(i) + 1 for i in np.flatnonzero(m)], limit, unit="row")


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    kind: Kind
    description: str
    required: bool = True
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    unique: bool = False
    default: object = None


@dataclass(frozen=True)
class TableSchema:
    """A canonical table: its columns and row-level rules."""

    name: str
    columns: tuple[Column, ...]
    description: str = ""
    extra_checks: tuple = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def validate(
        self,
        df: pd.DataFrame,
        source: str | None = None,
        date_format: str | None = None,
        problems: list[str] | None = None,
    ) -> pd.DataFrame:
        """Return a copy of ``df`` with canonical dtypes; raise on any problem.

        Optional columns that are missing are added (filled with their default or NA) so that
        downstream code can rely on every canonical column being present. Extra columns are kept.

        Parameters
        ----------
        df
            The raw table.
        source
            The file or table name, for messages.
        date_format
            One ``strptime`` format for every date column (e.g. ``%d/%m/%Y``); default ISO 8601.
        problems
            Problems the caller found already in the same table (reported together with these).
        """
        source = source or f"table '{self.name}'"
        problems = list(problems or [])
        out = df.copy()
        missing = [c.name for c in self.columns if c.required and c.name not in out.columns]
        if missing:
            present = ", ".join(map(str, out.columns)) or "(none)"
            problems.append(
                f"missing required column(s) {missing}; the file has: {present}. "
                "Add them, or map them with a column-mapping file (see README, 'Bring your own CRM export')."
            )
            raise DataValidationError(source, problems)

        def at(mask: object) -> str:
            return where(out, mask)

        for col in self.columns:
            if col.name not in out.columns:
                out[col.name] = col.default if col.default is not None else pd.NA
                if col.default is None:
                    out[col.name] = _empty_of_kind(col.kind, len(out))
            out[col.name] = _coerce(out[col.name], col, problems, at, date_format)
            series = out[col.name]
            null = series.isna()
            if not col.nullable and null.any():
                if col.default is not None:
                    out.loc[null, col.name] = col.default
                else:
                    problems.append(
                        f"column '{col.name}': empty values at {at(null)}; "
                        f"{col.description or 'this value'} is required."
                    )
            if col.kind in ("float", "int") and (col.minimum is not None or col.maximum is not None):
                vals = pd.to_numeric(series, errors="coerce")
                if col.minimum is not None:
                    bad = vals < col.minimum
                    if bad.any():
                        problems.append(
                            f"column '{col.name}': values below {col.minimum:g} at "
                            f"{at(bad)} "
                            f"(e.g. {vals[bad].iloc[0]:g}); {col.name} must be >= {col.minimum:g}."
                        )
                if col.maximum is not None:
                    bad = vals > col.maximum
                    if bad.any():
                        problems.append(
                            f"column '{col.name}': values above {col.maximum:g} at "
                            f"{at(bad)}; "
                            f"{col.name} must be <= {col.maximum:g}."
                        )
            if col.unique:
                dup = series.duplicated(keep=False) & series.notna()
                if dup.any():
                    ids = sorted(set(series[dup].astype(str)))
                    problems.append(
                        f"column '{col.name}': duplicate ids {ids[:5]}{' ...' if len(ids) > 5 else ''} at "
                        f"{at(dup)}; each {col.name} must appear once."
                    )
        for check in self.extra_checks:
            problems.extend(check(out))
        if problems:
            raise DataValidationError(source, problems)
        return out


def _empty_of_kind(kind: Kind, n: int) -> pd.Series:
    if kind == "date":
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    if kind in ("float", "int"):
        return pd.Series(np.nan, index=range(n), dtype="float64")
    if kind == "bool":
        return pd.Series(pd.NA, index=range(n), dtype="boolean")
    return pd.Series(pd.NA, index=range(n), dtype="string")


def _coerce(
    series: pd.Series,
    col: Column,
    problems: list[str],
    at: Callable[[object], str],
    date_format: str | None = None,
) -> pd.Series:
    if col.kind == "str":
        s = series.astype("string").str.strip()
        return s.mask(s == "")
    if col.kind in ("float", "int"):
        if pd.api.types.is_numeric_dtype(series):
            num = series.astype("float64")
        else:
            text = series.astype("string").str.strip().str.replace(",", "", regex=False)
            text = text.mask(text == "")
            num = pd.to_numeric(text, errors="coerce")
            bad = num.isna() & text.notna()
            if bad.any():
                problems.append(
                    f"column '{col.name}': not a number at {at(bad)} "
                    f"(e.g. {text[bad].iloc[0]!r}); write plain numbers such as 1234.5."
                )
        if col.kind == "int" and not num.isna().any():
            return num.astype("int64")
        return num.astype("float64")
    if col.kind == "date":
        if pd.api.types.is_datetime64_any_dtype(series):
            out = series
        else:
            out = _parse_dates(series, col.name, problems, at, date_format)
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
        return out.astype("datetime64[ns]").dt.normalize()
    if col.kind == "bool":
        return series.astype("boolean")
    raise AssertionError(col.kind)


def _to_datetime(text: pd.Series, fmt: str) -> pd.Series:
    try:
        return pd.to_datetime(text, errors="coerce", format=fmt)
    except (ValueError, TypeError):  # e.g. time zones that differ between values
        return pd.to_datetime(text, errors="coerce", format=fmt, utc=True)


def _parse_dates(
    series: pd.Series, name: str, problems: list[str], at: Callable[[object], str], date_format: str | None
) -> pd.Series:
    """One format for the whole column: ``date_format`` when given, else ISO 8601."""
    text = series.astype("string").str.strip()
    text = text.mask(text == "")
    given = text.notna()
    out = _to_datetime(text, date_format or "ISO8601")
    bad = out.isna() & given
    if not bad.any():
        return out
    example = text[bad].iloc[0]
    if date_format:
        problems.append(
            f"column '{name}': dates not in the date_format {date_format!r} at {at(bad)} (e.g. {example!r}); "
            "one format per column: fix those values or the mapping's date_format."
        )
        return out
    looks = [label for fmt, label in _DATE_FORMATS.items() if _to_datetime(text[bad], fmt).notna().all()]
    if not looks:
        problems.append(
            f"column '{name}': unparseable dates at {at(bad)} (e.g. {example!r}); use ISO dates such as "
            "2024-03-31, or set the mapping's date_format."
        )
    elif (given & ~bad).any():
        problems.append(
            f"column '{name}': mixed date formats: ISO dates (e.g. {text[given & ~bad].iloc[0]!r}) and "
            f"{' or '.join(looks)} dates at {at(bad)} (e.g. {example!r}); a column must use one format. "
            "Export the column again in one format."
        )
    else:
        fmts = [fmt for fmt, label in _DATE_FORMATS.items() if label in looks]
        which = (
            f"set date_format: '{fmts[0]}' in the mapping"
            if len(fmts) == 1
            else f"they could be {' or '.join(looks)}: set the mapping's date_format to the one your CRM "
            f"writes (e.g. '{fmts[0]}')"
        )
        problems.append(
            f"column '{name}': dates are not ISO 8601 (e.g. {example!r} at {at(bad)}); {which}, "
            "or export ISO dates such as 2024-03-31."
        )
    return out


# --------------------------------------------------------------------------------------------
# Row-level rules that span columns
# --------------------------------------------------------------------------------------------

OPEN, WON, LOST = "open", "won", "lost"


def _check_opportunity_dates(df: pd.DataFrame) -> list[str]:
    problems = []
    bad = df["close_date"].notna() & df["created_date"].notna() & (df["close_date"] < df["created_date"])
    if bad.any():
        problems.append(
            f"close_date before created_date at {where(df, bad)} "
            f"(opportunity {df.loc[bad, 'opportunity_id'].iloc[0]}); fix the dates or drop the rows."
        )
    closed = df["status"].isin([WON, LOST])
    no_close = closed & df["close_date"].isna()
    if no_close.any():
        problems.append(
            f"closed (won/lost) opportunities without close_date at {where(df, no_close)}; "
            "every closed deal needs the date it closed."
        )
    won_no_amount = (df["status"] == WON) & df["amount"].isna()
    if won_no_amount.any():
        problems.append(
            f"won opportunities without amount at {where(df, won_no_amount)}; "
            "a won deal needs its booked value."
        )
    bad_status = ~df["status"].isin([OPEN, WON, LOST])
    if bad_status.any():
        problems.append(
            f"column 'status': values {sorted(set(df.loc[bad_status, 'status'].astype(str)))[:5]} at "
            f"{where(df, bad_status)}; status must be one of open, won, lost."
        )
    return problems


def _check_activity_hours(df: pd.DataFrame) -> list[str]:
    total = df["selling_hours"] + df["admin_hours"] + df["other_hours"].fillna(0.0)
    bad = total > 24 * 7
    if bad.any():
        return [
            f"more hours than a week has at {where(df, bad)}; "
            "selling_hours + admin_hours + other_hours must be <= 168 per week."
        ]
    return []


ACCOUNTS = TableSchema(
    "accounts",
    (
        Column("account_id", "str", "the account's unique id", unique=True),
        Column("account_name", "str", "display name", required=False, nullable=True),
        Column("lat", "float", "latitude [deg]", required=False, nullable=True, minimum=-90, maximum=90),
        Column("lon", "float", "longitude [deg]", required=False, nullable=True, minimum=-180, maximum=180),
        Column(
            "segment", "str", "customer segment (Enterprise, Mid-Market, SMB)", required=False, nullable=True
        ),
        Column("industry", "str", "industry", required=False, nullable=True),
        Column("region", "str", "sales region", required=False, nullable=True),
        Column(
            "potential",
            "float",
            "annual sales potential [currency/yr]",
            required=False,
            nullable=True,
            minimum=0,
        ),
        Column(
            "workload_hours", "float", "selling workload [h/yr]", required=False, nullable=True, minimum=0
        ),
        Column(
            "revenue_last_year",
            "float",
            "bookings last year [currency]",
            required=False,
            nullable=True,
            minimum=0,
        ),
        Column("owner_rep_id", "str", "current owner (rep_id)", required=False, nullable=True),
    ),
    "One row per customer account.",
)

REPS = TableSchema(
    "reps",
    (
        Column("rep_id", "str", "the rep's unique id", unique=True),
        Column("rep_name", "str", "display name", required=False, nullable=True),
        Column("region", "str", "sales region", required=False, nullable=True),
        Column("manager", "str", "first-line manager", required=False, nullable=True),
        Column(
            "home_lat",
            "float",
            "home base latitude [deg]",
            required=False,
            nullable=True,
            minimum=-90,
            maximum=90,
        ),
        Column(
            "home_lon",
            "float",
            "home base longitude [deg]",
            required=False,
            nullable=True,
            minimum=-180,
            maximum=180,
        ),
        Column(
            "capacity",
            "float",
            "capacity as a share of a full-time rep [0-1]",
            required=False,
            minimum=0,
            default=1.0,
        ),
        Column("hire_date", "date", "hire date", required=False, nullable=True),
        Column(
            "weekly_hours",
            "float",
            "contracted hours a week [h/week]",
            required=False,
            minimum=0,
            default=40.0,
        ),
    ),
    "One row per quota-carrying rep.",
)

OPPORTUNITIES = TableSchema(
    "opportunities",
    (
        Column("opportunity_id", "str", "the opportunity's unique id", unique=True),
        Column(
            "account_id",
            "str",
            "account (may be blank on open deals in some CRMs)",
            required=False,
            nullable=True,
        ),
        Column("rep_id", "str", "owning rep"),
        Column("product", "str", "product", required=False, nullable=True),
        Column("segment", "str", "customer segment", required=False, nullable=True),
        Column("created_date", "date", "date the deal entered the pipeline", required=False, nullable=True),
        Column("stage", "str", "current stage label (an open stage, or the won/lost label)"),
        Column("status", "str", "open, won or lost"),
        Column("close_date", "date", "date the deal was won or lost", required=False, nullable=True),
        Column(
            "amount",
            "float",
            "deal value [currency]; booked value for won deals",
            required=False,
            nullable=True,
            minimum=0,
        ),
    ),
    "One row per opportunity; current state.",
    extra_checks=(_check_opportunity_dates,),
)

STAGE_HISTORY = TableSchema(
    "stage_history",
    (
        Column("opportunity_id", "str", "opportunity"),
        Column("stage", "str", "stage entered"),
        Column("entered_date", "date", "date the stage was entered"),
    ),
    "One row per stage an opportunity entered, won/lost included.",
)

BOOKINGS = TableSchema(
    "bookings",
    (
        Column("month", "date", "first day of the booking month"),
        Column("rep_id", "str", "rep"),
        Column("region", "str", "region", required=False, nullable=True),
        Column("segment", "str", "segment", required=False, nullable=True),
        Column("amount", "float", "booked revenue [currency/month]", minimum=0),
    ),
    "Monthly bookings by rep, region and segment.",
)

ACTIVITIES = TableSchema(
    "activities",
    (
        Column("rep_id", "str", "rep"),
        Column("week_start", "date", "Monday of the week"),
        Column("selling_hours", "float", "hours spent selling [h/week]", minimum=0),
        Column("admin_hours", "float", "hours on admin and internal work [h/week]", minimum=0),
        Column(
            "other_hours",
            "float",
            "training, travel, leave [h/week]",
            required=False,
            nullable=True,
            minimum=0,
        ),
    ),
    "Weekly time use per rep.",
    extra_checks=(_check_activity_hours,),
)

SCHEMAS: dict[str, TableSchema] = {
    s.name: s for s in (ACCOUNTS, REPS, OPPORTUNITIES, STAGE_HISTORY, BOOKINGS, ACTIVITIES)
}
