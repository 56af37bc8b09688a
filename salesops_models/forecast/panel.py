"""Monthly bookings panels: the bottom series of a forecast hierarchy, from the bookings table.

:func:`monthly_panel` turns the canonical ``bookings`` table (month x rep, region, segment) into
complete months x bottom series, and :func:`hierarchy_levels` names the levels of the hierarchy
built on it (company > region > rep, or any of region, segment, rep below the company).
"""

from __future__ import annotations

import pandas as pd

from salesops_models.data.company import last_complete_month
from salesops_models.errors import DataValidationError

#: bookings column that identifies each level of the hierarchy
KEY_OF_LEVEL = {"region": "region", "segment": "segment", "rep": "rep_id"}


def hierarchy_levels(levels: list[str]) -> tuple[list[tuple[str, ...]], list[str]]:
    """The key tuples of each level (company: ``()``) and the level names, top first."""
    keys = [KEY_OF_LEVEL[lv] for lv in levels[1:]]
    return [tuple(keys[:i]) for i in range(len(keys) + 1)], list(levels)


def monthly_panel(
    bookings: pd.DataFrame, reps: pd.DataFrame, levels: list[str], as_of: pd.Timestamp, min_months: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bottom-level monthly bookings (complete months x bottom series) and the bottom key table.

    Parameters
    ----------
    bookings
        Canonical bookings (``month, rep_id, region, segment, amount``) [currency/month].
    reps
        Reps table: each rep's region, and reps without bookings yet (forecast as zeros).
    levels
        Hierarchy levels, ``company`` first.
    as_of
        Snapshot date: the month containing it is dropped unless ``as_of`` is its last day (an
        incomplete month would look like a collapse).
    min_months
        Fewer complete months is an error [months].

    Returns
    -------
    (panel, keys)
        ``panel``: PeriodIndex of months x one column per bottom series, months without bookings
        0 [currency/month]; ``keys``: one row per column with its key values.

    Raises
    ------
    DataValidationError
        No bookings, a missing key column, or too short a history.

    Notes
    -----
    A rep's region is taken from the reps table (the plan's alignment), so that a rep is one series.
    """
    keys = [KEY_OF_LEVEL[lv] for lv in levels[1:]]
    if bookings is None or len(bookings) == 0:
        raise DataValidationError(
            "bookings", ["the company has no bookings table; the forecast needs monthly bookings history."]
        )
    df = bookings.copy()
    df["month"] = pd.to_datetime(df["month"]).dt.to_period("M")
    if "rep_id" in keys and "region" in keys and "region" in reps:
        region_of = reps.set_index(reps["rep_id"].astype(str))["region"].astype("string")
        df["region"] = df["rep_id"].astype(str).map(region_of).fillna(df["region"].astype("string"))
    for k in keys:
        if k not in df:
            raise DataValidationError("bookings", [f"column '{k}' is needed for the '{k}' forecast level."])
        df[k] = df[k].astype("string").fillna("unknown")
    last = last_complete_month(as_of)
    first = df["month"].min()
    months = pd.period_range(first, last, freq="M")
    if len(months) < min_months:
        raise DataValidationError(
            "bookings",
            [
                f"{len(months)} complete month(s) of history ({first} to {last}); the forecast needs at least "
                f"{min_months}. Lower forecast.min_history_months or supply more history."
            ],
        )
    df = df[df["month"] <= last]
    panel = df.pivot_table(index="month", columns=keys, values="amount", aggfunc="sum", fill_value=0.0)
    if "rep_id" in keys and "rep_id" in reps:
        # reps without bookings yet are still forecast (as zeros) so that every rep has a row
        booked = set(df["rep_id"].astype(str))
        for rep in [r for r in reps["rep_id"].astype(str) if r not in booked]:
            row = reps.loc[reps["rep_id"].astype(str) == rep].iloc[0]
            col = tuple(str(row.get(k, "unknown")) if k != "rep_id" else rep for k in keys)
            panel[col if len(keys) > 1 else col[0]] = 0.0
    panel = panel.reindex(months, fill_value=0.0)
    cols = panel.columns.to_frame(index=False) if len(keys) > 1 else pd.DataFrame({keys[0]: panel.columns})
    cols = cols.astype(str).reset_index(drop=True)
    # columns are named by the last key when it is unique (rep ids), else by the key path
    panel.columns = (
        cols[keys[-1]].tolist() if cols[keys[-1]].is_unique else ["/".join(t) for t in cols.values]
    )
    if not cols[keys[-1]].is_unique:
        cols[keys[-1]] = list(panel.columns)
    return panel.astype(float), cols
