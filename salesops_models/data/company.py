"""The bundle of canonical tables every model reads: :class:`CompanyData`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from salesops_models.data.schema import (
    ACCOUNTS,
    ACTIVITIES,
    BOOKINGS,
    LINE,
    LOST,
    OPEN,
    OPPORTUNITIES,
    REPS,
    SCHEMAS,
    STAGE_HISTORY,
    WON,
    where,
)
from salesops_models.errors import DataValidationError
from salesops_models.safe_io import PathRule, atomic_path, atomic_write_parquet, atomic_write_text, load_yaml


@dataclass(frozen=True)
class StageSet:
    """The sales process: ordered open stages and the labels of the two absorbing outcomes."""

    open_stages: tuple[str, ...]
    won: str = "Won"
    lost: str = "Lost"

    @property
    def all_stages(self) -> tuple[str, ...]:
        return (*self.open_stages, self.won, self.lost)

    def status_of(self, stage: pd.Series) -> pd.Series:
        """Map stage labels to ``open`` / ``won`` / ``lost`` (unknown labels give NA)."""
        mapping = {s: OPEN for s in self.open_stages} | {self.won: WON, self.lost: LOST}
        return stage.map(mapping).astype("string")

    def to_dict(self) -> dict:
        return {"open_stages": list(self.open_stages), "won": self.won, "lost": self.lost}

    @classmethod
    def from_dict(cls, d: dict) -> StageSet:
        return cls(tuple(d["open_stages"]), d.get("won", "Won"), d.get("lost", "Lost"))


@dataclass
class CompanyData:
    """Canonical tables of one company, validated together.

    ``accounts``, ``reps`` and ``opportunities`` are always present; ``stage_history``,
    ``bookings`` and ``activities`` may be empty where a source lacks them (a CRM snapshot has no
    stage history, for example). ``as_of`` is the snapshot date: deals open on it are the pipeline.
    """

    accounts: pd.DataFrame
    reps: pd.DataFrame
    opportunities: pd.DataFrame
    stages: StageSet
    as_of: pd.Timestamp
    stage_history: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=STAGE_HISTORY.column_names)
    )
    bookings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BOOKINGS.column_names))
    activities: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ACTIVITIES.column_names))
    name: str = "company"
    source: str = ""

    TABLES = ("accounts", "reps", "opportunities", "stage_history", "bookings", "activities")

    def validated(self) -> CompanyData:
        """Coerce every table to its schema and check references across tables."""
        src = self.source or self.name
        tables = {t: SCHEMAS[t].validate(getattr(self, t), f"{src}/{t}") for t in self.TABLES}
        problems: list[str] = []
        opp = tables["opportunities"]
        known = set(self.stages.all_stages)
        unknown = ~opp["stage"].isin(known)
        if unknown.any():
            labels = sorted(set(opp.loc[unknown, "stage"].astype(str)))
            problems.append(
                f"opportunities: unknown stage(s) {labels[:6]} at {where(opp, unknown)}; "
                f"known stages are {list(known)}. Add them to the mapping's 'stages' section."
            )
        reps = set(tables["reps"]["rep_id"])
        for t in ("opportunities", "bookings", "activities"):
            df = tables[t]
            bad = ~df["rep_id"].isin(reps)
            if len(df) and bad.any():
                ids = sorted(set(df.loc[bad, "rep_id"].astype(str)))
                problems.append(
                    f"{t}: rep_id(s) {ids[:5]} not in the reps table at {where(df, bad)} "
                    f"({int(bad.sum())} rows); add the reps or fix the ids."
                )
        sh = tables["stage_history"]
        if len(sh):
            unknown_sh = ~sh["stage"].isin(known)
            if unknown_sh.any():
                problems.append(
                    f"stage_history: unknown stage(s) {sorted(set(sh.loc[unknown_sh, 'stage'].astype(str)))[:6]}; "
                    f"known stages are {list(known)}."
                )
            orphan = ~sh["opportunity_id"].isin(set(opp["opportunity_id"]))
            if orphan.any():
                problems.append(
                    f"stage_history: {int(orphan.sum())} rows name opportunities that do not exist "
                    f"(e.g. {sh.loc[orphan, 'opportunity_id'].iloc[0]})."
                )
        owners = tables["accounts"]["owner_rep_id"].dropna()
        bad_owner = ~owners.isin(reps)
        if bad_owner.any():
            problems.append(
                f"accounts: owner_rep_id(s) {sorted(set(owners[bad_owner]))[:5]} not in the reps table."
            )
        if problems:
            raise DataValidationError(src, problems)
        return CompanyData(
            **tables, stages=self.stages, as_of=pd.Timestamp(self.as_of), name=self.name, source=self.source
        )

    def without_line_numbers(self) -> CompanyData:
        """The same company without the ``_line`` columns the file readers add for error messages."""
        tables = {t: getattr(self, t).drop(columns=[LINE], errors="ignore") for t in self.TABLES}
        return dataclasses.replace(self, **tables)

    # ---- persistence ---------------------------------------------------------------------
    def files_written(self, fmt: str = "parquet") -> list[str]:
        """Names of the files :meth:`to_dir` writes."""
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
        return [*(f"{t}.{fmt}" for t in self.TABLES), "company.json"]

    def to_dir(self, path: str | Path, fmt: str = "parquet") -> Path:
        """Write every table as ``<table>.parquet`` (or ``.csv``) plus ``company.json``.

        Each file is written atomically; ``company.json`` comes last, so a folder with it is whole.
        """
        path = Path(path)
        self.files_written(fmt)  # checks fmt
        path.mkdir(parents=True, exist_ok=True)
        for t in self.TABLES:
            df = getattr(self, t).drop(columns=[LINE], errors="ignore")
            if fmt == "parquet":
                atomic_write_parquet(df, path / f"{t}.parquet", index=False)
            else:
                with atomic_path(path / f"{t}.csv") as tmp:
                    df.to_csv(tmp, index=False, date_format="%Y-%m-%d")
        meta = {
            "name": self.name,
            "as_of": str(pd.Timestamp(self.as_of).date()),
            "stages": self.stages.to_dict(),
        }
        atomic_write_text(path / "company.json", json.dumps(meta, indent=2))
        return path

    @classmethod
    def from_dir(cls, path: str | Path) -> CompanyData:
        """Read a folder written by :meth:`to_dir` (Parquet or CSV) and validate it.

        Tables are read by ``loaders.read_table`` (size and encoding checks, file lines in errors),
        and each must be a file inside the folder (a symlink leaving it is refused, as for a mapping).
        """
        from salesops_models.data.loaders import read_table

        path = Path(path)
        meta_file = path / "company.json"
        if not path.is_dir():
            raise DataValidationError(
                str(path), ["no such folder; data.path must name the folder written by 'salesops data sample'."]
            )
        if not meta_file.exists():
            raise DataValidationError(
                str(path),
                ["no company.json: this folder was not written by CompanyData.to_dir or 'salesops data'."],
            )
        rule = PathRule.from_env()
        meta = load_yaml(  # JSON is YAML: the same capped, strict reader
            rule.resolve("company.json", path, path, "company.json", folder_role="the data folder"),
            "company.json",
        )
        if not isinstance(meta, dict) or "stages" not in meta or "as_of" not in meta:
            raise DataValidationError(
                str(meta_file), ["not a company description (needs 'stages' and 'as_of'); write the folder again."]
            )
        tables = {}
        for t in cls.TABLES:
            for name in (f"{t}.parquet", f"{t}.csv"):
                if (path / name).exists():
                    f = rule.resolve(name, path, path, name, folder_role="the data folder")
                    tables[t] = read_table(f)
                    break
            else:
                tables[t] = pd.DataFrame(columns=SCHEMAS[t].column_names)
        return cls(
            **tables,
            stages=StageSet.from_dict(meta["stages"]),
            as_of=pd.Timestamp(meta["as_of"]),
            name=meta.get("name", path.name),
            source=str(path),
        ).validated().without_line_numbers()

    def summary(self) -> dict[str, object]:
        return {
            "accounts": len(self.accounts),
            "reps": len(self.reps),
            "opportunities": len(self.opportunities),
            "as_of": str(pd.Timestamp(self.as_of).date()),
        }


def last_complete_month(as_of: pd.Timestamp) -> pd.Period:
    """The last month complete on ``as_of`` (its own month only when ``as_of`` is its last day)."""
    last = pd.Timestamp(as_of).to_period("M")
    if pd.Timestamp(as_of).normalize() < last.end_time.normalize():
        last = last - 1
    return last


def bookings_from_opportunities(
    opportunities: pd.DataFrame, reps: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Monthly bookings (won amount by close month, rep, region, segment) from won opportunities."""
    won = opportunities[opportunities["status"] == WON].copy()
    won["month"] = won["close_date"].dt.to_period("M").dt.to_timestamp()
    if reps is not None and "region" in reps:
        won = won.merge(reps[["rep_id", "region"]], on="rep_id", how="left")
    else:
        won["region"] = pd.NA
    if "segment" not in won:
        won["segment"] = pd.NA
    keys = ["month", "rep_id", "region", "segment"]
    out = won.groupby(keys, dropna=False, observed=True)["amount"].sum().reset_index()
    return out[BOOKINGS.column_names].sort_values(keys).reset_index(drop=True)


__all__ = ["CompanyData", "StageSet", "bookings_from_opportunities", "ACCOUNTS", "REPS", "OPPORTUNITIES"]
