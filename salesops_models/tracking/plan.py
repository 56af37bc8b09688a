"""A saved plan, read back from its results folder (read only: nothing in it is ever written).

The folder is a scenario's results folder written by ``salesops run`` or ``salesops batch``
(``results/<batch>/<scenario>``). Tracking needs its resolved scenario, the quota stage's
``quotas`` and ``quotas_by_period``, and the company data the plan was made on (``data/``); it
uses, when present, the territory stage's ``assignments``, the pipeline stage's
``rep_bookings_samples`` and ``pipeline_by_month``, the forecast stage's ``forecast`` and the
compensation stage's ``comp_cost_samples``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from salesops_models import __version__
from salesops_models.compensation.plan import CompPlan, load_plan
from salesops_models.data.company import CompanyData
from salesops_models.errors import SalesopsError, TrackingError
from salesops_models.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

REQUIRED_TABLES = {
    "quotas": ("quota", ("rep_id", "quota")),
    "quotas_by_period": ("quota", ("rep_id", "period", "period_type", "quota")),
}


@dataclass
class SavedPlan:
    """What tracking reads from a saved plan folder.

    Attributes
    ----------
    folder
        The scenario's results folder.
    scenario
        The resolved scenario it was run with.
    provenance
        Version, commit, time and seeds of the run (``_provenance`` of scenario.resolved.yaml).
    company
        The company data the plan was made on (history up to ``company.as_of``).
    quotas
        ``rep_id, quota, region, manager, p_attain`` (annual quota after the plan's own relief).
    monthly_quota
        Quota per rep (index) and month 1-12 (columns) [currency].
    tables
        Optional tables found in the folder, by name.
    metrics
        The plan's headline metrics (``metrics.json``).
    """

    folder: Path
    scenario: Scenario
    provenance: dict[str, Any]
    company: CompanyData
    quotas: pd.DataFrame
    monthly_quota: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def plan_year(self) -> int:
        return int(self.scenario.plan_year)

    @property
    def start(self) -> pd.Timestamp:
        """First day of the plan year."""
        return pd.Timestamp(year=self.plan_year, month=1, day=1)

    @property
    def end(self) -> pd.Timestamp:
        """Last day of the plan year."""
        return pd.Timestamp(year=self.plan_year, month=12, day=31)

    def holders(self) -> pd.DataFrame:
        """The plan's quota holders: ``rep_id, rep_name, region, manager``."""
        q = self.quotas
        names = self.company.reps.set_index(self.company.reps["rep_id"].astype(str))["rep_name"]
        return pd.DataFrame(
            {
                "rep_id": q["rep_id"].astype(str).to_numpy(),
                "rep_name": q["rep_id"].astype(str).map(names).fillna(q["rep_id"].astype(str)).to_numpy(),
                "region": q["region"].to_numpy() if "region" in q else None,
                "manager": q["manager"].to_numpy() if "manager" in q else None,
            }
        )

    def owners(self) -> pd.Series:
        """Owner of each account in the plan year: the territory stage's assignment, else today's."""
        asg = self.tables.get("assignments")
        if asg is not None and {"account_id", "rep_id"} <= set(asg.columns):
            return pd.Series(asg["rep_id"].astype(str).to_numpy(), index=asg["account_id"].astype(str))
        acc = self.company.accounts.dropna(subset=["owner_rep_id"])
        return pd.Series(acc["owner_rep_id"].astype(str).to_numpy(), index=acc["account_id"].astype(str))

    def primary_comp_plan(self) -> CompPlan:
        """The compensation stage's primary plan (``compensation.primary_plan``, else the first)."""
        cfg = self.scenario.compensation
        plans = [(ref, load_plan(ref)) for ref in cfg.plans]
        if cfg.primary_plan is None:
            return plans[0][1]
        for ref, p in plans:
            if cfg.primary_plan in (p.name, ref):
                return p
        raise TrackingError(
            f"{self.folder}: compensation.primary_plan '{cfg.primary_plan}' is not among the plan's "
            f"compensation.plans ({', '.join(r for r, _ in plans)})."
        )


def compatible(written_by: str, running: str = __version__) -> bool:
    """Whether a plan written by package version ``written_by`` can be tracked by ``running``.

    The results layout may change with a minor version before 1.0 and a major version after it.
    """

    def parts(v: str) -> tuple[int, int]:
        major, minor = (v.split("+")[0].split(".") + ["0", "0"])[:2]
        return int(major), int(minor)

    try:
        a, b = parts(str(written_by)), parts(running)
    except ValueError:
        return False
    return a == b if a[0] == 0 else a[0] == b[0]


def load_saved_plan(folder: str | Path) -> SavedPlan:
    """Read a saved plan folder; raise :class:`TrackingError` naming what is missing or mismatched.

    Parameters
    ----------
    folder
        ``results/<batch>/<scenario>``.
    """
    folder = Path(folder)
    resolved = folder / "scenario.resolved.yaml"
    if not resolved.is_file():
        raise TrackingError(
            f"{folder}: no scenario.resolved.yaml; give a scenario's results folder "
            "(results/<batch-id>/<scenario>), as written by 'salesops batch' or 'salesops run'."
        )
    try:
        doc = yaml.safe_load(resolved.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TrackingError(f"{resolved}: not valid YAML: {exc}") from None
    prov = dict(doc.get("_provenance") or {}) if isinstance(doc, dict) else {}
    written_by = str(prov.get("package_version", "unknown"))
    if not compatible(written_by):
        raise TrackingError(
            f"{folder}: the plan was written by salesops {written_by}, this is salesops {__version__}; "
            f"tracking reads plans of the same release line ({_line()}). Re-run the plan with this "
            f"version, or track it with salesops {written_by}."
        )
    try:
        scenario = load_scenario(resolved)
    except SalesopsError as exc:
        raise TrackingError(
            f"{resolved}: this version cannot read the plan's scenario (written by salesops {written_by}):\n{exc}"
        ) from None
    tables = {}
    for name, (stage, cols) in REQUIRED_TABLES.items():
        f = folder / f"{name}.parquet"
        if not f.is_file():
            raise TrackingError(
                f"{f}: missing; tracking needs the {stage} stage's '{name}' table. Run the plan with the "
                f"{stage} stage enabled."
            )
        df = pd.read_parquet(f)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise TrackingError(
                f"{f}: column(s) {missing} missing (it has {list(df.columns)}); the plan folder is from "
                "another version of the workbench."
            )
        tables[name] = df
    data = folder / "data"
    if not (data / "company.json").is_file():
        raise TrackingError(
            f"{data}: the plan's company data is missing (written by the data stage); re-run the plan."
        )
    company = CompanyData.from_dir(data)
    for name in ("assignments", "rep_bookings_samples", "pipeline_by_month", "forecast", "comp_cost_samples"):
        f = folder / f"{name}.parquet"
        if f.is_file():
            tables[name] = pd.read_parquet(f)
    metrics_file = folder / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    quotas = tables.pop("quotas").assign(rep_id=lambda d: d["rep_id"].astype(str))
    monthly = _monthly(tables.pop("quotas_by_period"), scenario.plan_year, folder)
    missing_months = sorted(set(quotas["rep_id"]) - set(monthly.index))
    if missing_months:
        raise TrackingError(
            f"{folder}/quotas_by_period.parquet: no monthly quotas for rep(s) {missing_months[:5]}; "
            "the quota tables do not belong together."
        )
    return SavedPlan(
        folder=folder,
        scenario=scenario,
        provenance=prov,
        company=company,
        quotas=quotas,
        monthly_quota=monthly.loc[quotas["rep_id"]],
        tables=tables,
        metrics=metrics,
    )


def _line() -> str:
    major, minor = __version__.split(".")[:2]
    return f"{major}.{minor}.x" if major == "0" else f"{major}.x"


def _monthly(by_period: pd.DataFrame, plan_year: int, folder: Path) -> pd.DataFrame:
    months = by_period[by_period["period_type"] == "month"].copy()
    period = pd.PeriodIndex(months["period"].astype(str), freq="M")
    wrong = period.year != plan_year
    if wrong.any():
        raise TrackingError(
            f"{folder}/quotas_by_period.parquet: periods {sorted(set(months['period'][wrong].astype(str)))[:3]} "
            f"are not in the plan year {plan_year}."
        )
    months["m"] = period.month
    wide = months.pivot_table(index=months["rep_id"].astype(str), columns="m", values="quota", aggfunc="sum")
    return wide.reindex(columns=range(1, 13)).fillna(0.0)
