"""Read CRM exports into canonical tables through a column-mapping file.

A mapping is YAML (data only, read with ``yaml.safe_load``)::

    name: my-crm
    as_of: 2025-12-31            # snapshot date, or "max" for the latest date in the export
    stages:
      open: [Prospecting, Qualification, Proposal]   # in pipeline order
      won: Closed Won
      lost: Closed Lost
    tables:
      opportunities:
        file: opportunities.csv                     # relative to the export folder
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
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from salesops_models.data.company import CompanyData, StageSet, bookings_from_opportunities
from salesops_models.data.schema import SCHEMAS
from salesops_models.errors import DataValidationError, MappingError

SHIPPED_MAPPINGS = ("maven",)
_TABLE_KEYS = {"file", "columns", "values", "strip_whitespace"}
_TOP_KEYS = {"name", "description", "as_of", "stages", "tables", "derive_stage_history", "source"}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (as text, nothing guessed) or Parquet file, with an error naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError(
            str(path), ["file not found; check the path in the mapping or the command."]
        )
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        # dtype=str and no NA guessing: the schema decides what a value means.
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep, encoding="utf-8-sig")
    raise DataValidationError(str(path), [f"unsupported file type '{suffix}'; use .csv or .parquet."])


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
    path = mapping_path(mapping)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise MappingError(f"{path}: the top level must be a mapping with 'stages' and 'tables'.")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise MappingError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}.")
    for key in ("stages", "tables"):
        if key not in doc:
            raise MappingError(f"{path}: missing '{key}' section.")
    if "opportunities" not in doc["tables"]:
        raise MappingError(f"{path}: tables.opportunities is required.")
    stages = doc["stages"]
    if not isinstance(stages, dict) or not isinstance(stages.get("open"), list) or not stages["open"]:
        raise MappingError(f"{path}: stages.open must list the open stages in pipeline order.")
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
        bad_cols = set(spec["columns"]) - set(SCHEMAS[t].column_names)
        if bad_cols:
            raise MappingError(
                f"{path}: tables.{t}.columns: {sorted(bad_cols)} are not canonical columns; "
                f"canonical columns are {SCHEMAS[t].column_names}."
            )
    return doc, path


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
    for canon, replace in (spec.get("values") or {}).items():
        if canon not in out:
            raise MappingError(f"{mpath}: tables.{table}.values.{canon}: column is not mapped.")
        out[canon] = out[canon].replace(replace)
    return out


def load_crm_export(folder: str | Path, mapping: str | Path = "maven", validate: bool = True) -> CompanyData:
    """Load a CRM export folder into :class:`CompanyData` through a column mapping.

    Parameters
    ----------
    folder
        Folder holding the export's files.
    mapping
        A mapping YAML path, or the name of a shipped mapping (``"maven"``).

    Raises
    ------
    MappingError, DataValidationError
        With the file, the column, the rows and the fix; nothing is returned half-loaded.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataValidationError(
            str(folder), ["not a folder; give the folder that holds the export's files."]
        )
    doc, mpath = load_mapping(mapping)
    stages = StageSet(
        tuple(doc["stages"]["open"]), doc["stages"].get("won", "Won"), doc["stages"].get("lost", "Lost")
    )
    tables: dict[str, pd.DataFrame] = {}
    files: dict[str, Path] = {}
    for t, spec in doc["tables"].items():
        file = folder / spec["file"]
        raw = read_table(file)
        if spec.get("strip_whitespace", True):
            raw = raw.apply(lambda s: s.str.strip() if s.dtype == object or str(s.dtype) == "string" else s)
        tables[t] = _apply_table_mapping(raw, spec, t, file, mpath)
        files[t] = file

    opp = tables["opportunities"]
    opp["status"] = stages.status_of(opp["stage"].astype("string").str.strip())
    if opp["status"].isna().any():
        _raise_unknown_stage(opp, stages, files["opportunities"], mpath)
    # Validate the opportunities alone first so that errors name the right file.
    opp = SCHEMAS["opportunities"].validate(opp, str(files["opportunities"]))
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
            tables[t] = SCHEMAS[t].validate(tables[t], str(files.get(t, f"{mpath.name}:{t}")))

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
    return company.validated() if validate else company


def _raise_unknown_stage(opp: pd.DataFrame, stages: StageSet, file: Path, mpath: Path) -> None:
    unknown = opp["status"].isna()
    labels = sorted(set(opp.loc[unknown, "stage"].astype(str)))
    rows = [int(i) + 2 for i in opp.index[unknown][:5]]
    raise DataValidationError(
        str(file),
        [
            f"column 'stage': unknown stage label(s) {labels[:8]} at rows {rows}"
            f"{' ...' if unknown.sum() > 5 else ''} ({int(unknown.sum())} rows); known stages are "
            f"{list(stages.all_stages)}. Add them to stages.open (in order), or to won/lost, in {mpath.name}."
        ],
    )


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
