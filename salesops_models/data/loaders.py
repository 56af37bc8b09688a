"""Read CRM exports into canonical tables through a column-mapping file.

A mapping is YAML (data only, read by ``safe_io.load_yaml``: no code, no aliases, a size cap)::

    name: my-crm
    as_of: 2025-12-31            # snapshot date, or "max" for the latest date in the export
    date_format: "%d/%m/%Y"      # optional: one format for every date column (default ISO 8601)
    stages:
      open: [Prospecting, Qualification, Proposal]   # in pipeline order
      won: Closed Won
      lost: Closed Lost
    tables:
      opportunities:
        file: opportunities.csv                     # inside the export folder (see below)
        encoding: utf-8                             # optional: cp1252, latin-1, ... (default UTF-8)
        columns: {opportunity_id: Id, rep_id: OwnerId, stage: StageName, created_date: CreatedDate,
                  close_date: CloseDate, amount: Amount, account_id: AccountId}
        values: {stage: {"Closed-Won": "Closed Won"}}  # optional value fixes per canonical column
        drop_rows: {}                                # optional
      reps: {file: users.csv, columns: {rep_id: Id, rep_name: Name, manager: Manager, region: Region}}
      accounts: {file: accounts.csv, columns: {account_id: Id, account_name: Name}}
      stage_history: {file: history.csv, columns: {opportunity_id: OpportunityId, stage: StageName,
                      entered_date: CreatedDate}}
    # For a snapshot without a history table, derive it from date columns instead:
    derive_stage_history: {Engaging: created_date}   # stage entered on that opportunity date column

A canonical column mapped to ``null`` is left empty. ``reps`` may be omitted: reps are then the
distinct ``rep_id`` values of the opportunities. Bookings are derived from won opportunities.

A table's ``file`` is relative to the export folder and must stay inside it (``../``, absolute
paths and symlinks that leave it are refused) unless the user allows the folder with
``--allow-dir`` (``safe_io.PathRule``). Data errors name file lines (``_line``, kept from the
moment a CSV is read).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.data.company import CompanyData, StageSet, bookings_from_opportunities
from salesops_models.data.schema import LINE, SCHEMAS, where
from salesops_models.errors import DataValidationError, InputFileError, MappingError
from salesops_models.safe_io import PathRule, decode_text, load_yaml, max_table_bytes, read_bytes

SHIPPED_MAPPINGS = ("maven",)
_TABLE_KEYS = {"file", "columns", "values", "strip_whitespace", "encoding", "date_format"}
_TOP_KEYS = {
    "name",
    "description",
    "as_of",
    "date_format",
    "stages",
    "tables",
    "derive_stage_history",
    "source",
}


def read_table(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV (as text, nothing guessed) or Parquet file: the one reader of data tables.

    The file must be a regular file under the size cap (``safe_io.max_table_bytes``), a CSV must
    decode in ``encoding`` and hold a header line; a CSV table gets a ``_line`` column (the file line
    each row starts on) so that every later error names file lines. Problems raise
    :class:`~salesops_models.errors.InputFileError` (a one-line message naming the file and the fix).
    """
    path = Path(path)
    if not path.exists():
        raise DataValidationError(
            str(path), ["file not found; check the path in the mapping or the command."]
        )
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".txt", ".tsv"):
        raise DataValidationError(str(path), [f"unsupported file type '{suffix}'; use .csv or .parquet."])
    data = read_bytes(path, max_table_bytes(), "data table")
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InputFileError(
                f"{path}: not a readable Parquet file ({type(exc).__name__}); it may be truncated. "
                "Write it again, or export CSV."
            ) from None
    text = decode_text(
        data,
        path,
        encoding,
        "data table",
        fix="save it as UTF-8 (in Excel: 'CSV UTF-8'), or name its encoding in the mapping "
        "(tables.<table>.encoding, e.g. cp1252)",
    )
    if not text.strip():
        raise InputFileError(
            f"{path}: the file is empty ({len(data)} bytes); export the table again with its header line and rows."
        )
    sep = "\t" if suffix == ".tsv" else ","
    try:
        # dtype=str and no NA guessing: the schema decides what a value means.
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=sep)
    except (pd.errors.ParserError, csv.Error) as exc:
        raise InputFileError(
            f"{path}: not a well-formed CSV ({str(exc).strip()}); check the quoting and the number of "
            "fields on that line."
        ) from None
    df[LINE] = _record_lines(text, sep, len(df))
    return df


def _record_lines(text: str, sep: str, n_rows: int) -> np.ndarray:
    """File line on which each data record starts (1-based; the header is line 1 when it is first).

    Counted with the ``csv`` module, which knows quoted fields that span lines; blank lines are
    skipped, as pandas skips them.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    starts: list[int] = []
    end = 0
    for record in reader:
        start, end = end + 1, reader.line_num
        if record:
            starts.append(start)
    lines = np.asarray(starts[1:], dtype="int64")  # the first record is the header
    if len(lines) != n_rows:  # the two parsers disagree (unusual quoting): fall back to plain counting
        return np.arange(2, n_rows + 2, dtype="int64")
    return lines


def mapping_path(mapping: str | Path) -> Path:
    """Resolve a mapping given as a path or as the name of a shipped mapping (e.g. ``maven``)."""
    if str(mapping) in SHIPPED_MAPPINGS:
        return Path(str(resources.files("salesops_models.data") / "mappings" / f"{mapping}.yaml"))
    p = Path(mapping)
    if not p.exists():
        raise MappingError(
            f"{mapping}: no such mapping file, and not a shipped mapping name ({', '.join(SHIPPED_MAPPINGS)})."
        )
    return p


def load_mapping(mapping: str | Path) -> tuple[dict[str, Any], Path]:
    """Read and check a column-mapping file; return it and its path.

    Everything that does not need the export is checked here: keys, stage lists, canonical column
    names, ``as_of`` and ``date_format``.
    """
    path = mapping_path(mapping)
    doc = load_yaml(path, "mapping file", error=MappingError)
    if not isinstance(doc, dict):
        raise MappingError(f"{path}: the top level must be a mapping with 'stages' and 'tables'.")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise MappingError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}.")
    for key in ("stages", "tables"):
        if key not in doc:
            raise MappingError(f"{path}: missing '{key}' section.")
    if not isinstance(doc["tables"], dict) or "opportunities" not in doc["tables"]:
        raise MappingError(f"{path}: tables.opportunities is required.")
    stages = doc["stages"]
    if not isinstance(stages, dict) or not isinstance(stages.get("open"), list) or not stages["open"]:
        raise MappingError(f"{path}: stages.open must list the open stages in pipeline order.")
    labels = [*map(str, stages["open"]), str(stages.get("won", "Won")), str(stages.get("lost", "Lost"))]
    if len(set(labels)) != len(labels):
        raise MappingError(f"{path}: stages: a label appears twice in open/won/lost ({labels}).")
    _check_as_of(doc.get("as_of", "max"), path)
    _check_date_format(doc.get("date_format"), path, "date_format")
    for t, spec in doc["tables"].items():
        if t not in SCHEMAS or t == "bookings":
            raise MappingError(
                f"{path}: tables.{t} is not a mappable table; use accounts, reps, opportunities, "
                "stage_history or activities."
            )
        if not isinstance(spec, dict) or "file" not in spec or "columns" not in spec:
            raise MappingError(f"{path}: tables.{t} needs 'file' and 'columns'.")
        extra = set(spec) - _TABLE_KEYS
        if extra:
            raise MappingError(
                f"{path}: tables.{t}: unknown key(s) {sorted(extra)}; allowed: {sorted(_TABLE_KEYS)}."
            )
        if not isinstance(spec["file"], str) or not spec["file"].strip():
            raise MappingError(f"{path}: tables.{t}.file must be a file name inside the export folder.")
        if not isinstance(spec["columns"], dict):
            raise MappingError(f"{path}: tables.{t}.columns must map canonical columns to your column names.")
        bad_cols = set(spec["columns"]) - set(SCHEMAS[t].column_names)
        if bad_cols:
            raise MappingError(
                f"{path}: tables.{t}.columns: {sorted(bad_cols)} are not canonical columns; "
                f"canonical columns are {SCHEMAS[t].column_names}."
            )
        _check_date_format(spec.get("date_format"), path, f"tables.{t}.date_format")
    return doc, path


def _check_as_of(value: object, path: Path) -> None:
    if value == "max":
        return
    try:
        pd.Timestamp(str(value))
    except (ValueError, TypeError):
        raise MappingError(
            f"{path}: as_of {value!r} is not a date; write an ISO date such as 2025-12-31, or 'max' for "
            "the latest date in the export."
        ) from None


def _check_date_format(value: object, path: Path, key: str) -> None:
    if value is None:
        return
    if not isinstance(value, str) or "%" not in value:
        raise MappingError(f"{path}: {key} {value!r} is not a date format; write e.g. '%d/%m/%Y'.")
    try:
        pd.Timestamp("2024-03-31").strftime(value)
    except ValueError:
        raise MappingError(f"{path}: {key} {value!r} is not a valid strftime format.") from None


def table_files(
    folder: str | Path, doc: dict[str, Any], mpath: Path, allow_dirs: Sequence[str | os.PathLike[str]] = ()
) -> dict[str, Path]:
    """The files a mapping names, each resolved inside the export folder by the path rule."""
    rule = PathRule.from_env(allow_dirs)
    return {
        t: rule.resolve(
            spec["file"], folder, mpath, f"tables.{t}.file", folder_role="the export folder", error=MappingError
        )
        for t, spec in doc["tables"].items()
    }


def _apply_table_mapping(
    raw: pd.DataFrame, spec: dict[str, Any], table: str, file: Path, mpath: Path
) -> pd.DataFrame:
    columns: dict[str, str | None] = spec["columns"]
    missing = [src for src in columns.values() if src is not None and src not in raw.columns]
    if missing:
        raise DataValidationError(
            str(file),
            [
                f"column(s) {missing} named in {mpath.name} (tables.{table}.columns) are not in the file; "
                f"the file has: {', '.join(raw.columns)}. Fix the mapping or the export."
            ],
        )
    out = pd.DataFrame(index=raw.index)
    for canon, src in columns.items():
        out[canon] = raw[src] if src is not None else pd.NA
    if LINE in raw.columns:
        out[LINE] = raw[LINE]
    for canon, replace in (spec.get("values") or {}).items():
        if canon not in out:
            raise MappingError(f"{mpath}: tables.{table}.values.{canon}: column is not mapped.")
        out[canon] = out[canon].replace(replace)
    return out


def load_crm_export(
    folder: str | Path,
    mapping: str | Path = "maven",
    validate: bool = True,
    allow_dirs: Sequence[str | os.PathLike[str]] = (),
) -> CompanyData:
    """Load a CRM export folder into :class:`CompanyData` through a column mapping.

    Parameters
    ----------
    folder
        Folder holding the export's files.
    mapping
        A mapping YAML path, or the name of a shipped mapping (``"maven"``).
    validate
        Check the tables together (references between them) before returning.
    allow_dirs
        Folders outside the export that the mapping's files may be in (``--allow-dir``), besides
        those in ``SALESOPS_ALLOW_DIRS``.

    Raises
    ------
    MappingError, DataValidationError, InputFileError
        With the file, the column, the file lines and the fix; nothing is returned half-loaded. Every
        problem of the opportunities file is listed together (unknown stages, dates, amounts, ids).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataValidationError(
            str(folder), ["not a folder; give the folder that holds the export's files."]
        )
    doc, mpath = load_mapping(mapping)
    stages = StageSet(
        tuple(map(str, doc["stages"]["open"])),
        str(doc["stages"].get("won", "Won")),
        str(doc["stages"].get("lost", "Lost")),
    )
    files = table_files(folder, doc, mpath, allow_dirs)
    tables: dict[str, pd.DataFrame] = {}
    date_formats: dict[str, str | None] = {}
    for t, spec in doc["tables"].items():
        raw = read_table(files[t], encoding=str(spec.get("encoding") or "utf-8"))
        if spec.get("strip_whitespace", True):
            raw = raw.apply(lambda s: s.str.strip() if s.dtype == object or str(s.dtype) == "string" else s)
        tables[t] = _apply_table_mapping(raw, spec, t, files[t], mpath)
        date_formats[t] = spec.get("date_format") or doc.get("date_format")

    opp = tables["opportunities"]
    opp_file = str(files["opportunities"])
    if len(opp) == 0:
        raise DataValidationError(
            opp_file,
            ["no data rows: the file holds only its header line; export the opportunities with their rows."],
        )
    opp["status"] = stages.status_of(opp["stage"].astype("string").str.strip())
    stage_problems = _unknown_stage_problems(opp, stages, mpath)
    # Rows of unknown stage are checked as open deals for the other rules, so that every problem of
    # the file is reported in one pass instead of the stage problem alone.
    opp["status"] = opp["status"].fillna("open")
    opp = SCHEMAS["opportunities"].validate(
        opp, opp_file, date_format=date_formats["opportunities"], problems=stage_problems
    )
    tables["opportunities"] = opp

    if "reps" not in tables:
        ids = sorted(opp["rep_id"].dropna().unique())
        tables["reps"] = pd.DataFrame({"rep_id": ids, "rep_name": ids})
    if "accounts" not in tables:
        ids = sorted(opp["account_id"].dropna().unique())
        tables["accounts"] = pd.DataFrame({"account_id": ids})
    if "stage_history" not in tables:
        tables["stage_history"] = _derive_history(opp, stages, doc.get("derive_stage_history") or {}, mpath)
    for t in ("reps", "accounts", "stage_history", "activities"):
        if t in tables:
            tables[t] = SCHEMAS[t].validate(
                tables[t], str(files.get(t, f"{mpath.name}:{t}")), date_format=date_formats.get(t)
            )

    as_of_spec = doc.get("as_of", "max")
    if as_of_spec == "max":
        dates = pd.concat([opp["created_date"], opp["close_date"]]).dropna()
        as_of = dates.max()
    else:
        as_of = pd.Timestamp(str(as_of_spec))
    company = CompanyData(
        accounts=tables["accounts"],
        reps=tables["reps"],
        opportunities=opp,
        stages=stages,
        as_of=as_of,
        stage_history=tables["stage_history"],
        bookings=bookings_from_opportunities(opp, tables["reps"]),
        activities=tables.get("activities", pd.DataFrame(columns=SCHEMAS["activities"].column_names)),
        name=str(doc.get("name", folder.name)),
        source=str(folder),
    )
    company = company.validated() if validate else company
    return company.without_line_numbers()


def _unknown_stage_problems(opp: pd.DataFrame, stages: StageSet, mpath: Path) -> list[str]:
    unknown = opp["status"].isna()
    if not unknown.any():
        return []
    labels = sorted(set(opp.loc[unknown, "stage"].astype(str)))
    return [
        f"column 'stage': unknown stage label(s) {labels[:8]} at {where(opp, unknown)} "
        f"({int(unknown.sum())} rows); known stages are {list(stages.all_stages)}. Add them to "
        f"stages.open (in order), or to won/lost, in {mpath.name}."
    ]


def _derive_history(opp: pd.DataFrame, stages: StageSet, derive: dict[str, str], mpath: Path) -> pd.DataFrame:
    """Stage history of a snapshot: given stages at given date columns, plus won/lost at close_date."""
    parts = []
    for stage, col in derive.items():
        if stage not in stages.all_stages:
            raise MappingError(
                f"{mpath}: derive_stage_history: '{stage}' is not a stage of stages.open/won/lost."
            )
        if col not in opp:
            raise MappingError(
                f"{mpath}: derive_stage_history.{stage}: '{col}' is not a canonical opportunity column."
            )
        m = opp[col].notna()
        parts.append(
            pd.DataFrame(
                {
                    "opportunity_id": opp.loc[m, "opportunity_id"],
                    "stage": stage,
                    "entered_date": opp.loc[m, col],
                }
            )
        )
    closed = opp["status"].isin(["won", "lost"]) & opp["close_date"].notna()
    parts.append(
        pd.DataFrame(
            {
                "opportunity_id": opp.loc[closed, "opportunity_id"],
                "stage": opp.loc[closed, "stage"],
                "entered_date": opp.loc[closed, "close_date"],
            }
        )
    )
    hist = pd.concat(parts, ignore_index=True)
    return hist.sort_values(["opportunity_id", "entered_date"], kind="stable").reset_index(drop=True)
