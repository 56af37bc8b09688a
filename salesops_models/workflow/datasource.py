"""Load the company a scenario names, apply the scenario's data changes, cache it per scenario run."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from salesops_models.data.company import CompanyData
from salesops_models.data.loaders import load_crm_export
from salesops_models.data.sample import generate_sample_company
from salesops_models.errors import DataValidationError
from salesops_models.scenario import DataConfig, HireConfig

log = logging.getLogger(__name__)


def load_company(
    config: DataConfig, cache_dir: Path | None = None, plan_year: int | None = None
) -> CompanyData:
    """The company of a scenario's ``data:`` section.

    When ``cache_dir`` holds a copy written earlier in the same scenario run, that copy is read
    instead (each notebook of a run is its own process; generating or parsing once is enough).
    """
    if cache_dir is not None and (cache_dir / "company.json").exists():
        return CompanyData.from_dir(cache_dir)
    if config.source == "sample":
        company = generate_sample_company(**config.sample.model_dump())
    elif config.source == "directory":
        company = CompanyData.from_dir(_required_path(config))
    else:
        company = load_crm_export(_required_path(config), config.mapping or "maven")
    if config.hires:
        company = add_hires(company, config.hires, plan_year or pd.Timestamp(company.as_of).year + 1)
    if cache_dir is not None:
        company.to_dir(cache_dir)
    return company


def _required_path(config: DataConfig) -> Path:
    if config.path is None:
        raise DataValidationError(
            "scenario data", [f"data.source is '{config.source}' but data.path is not set."]
        )
    return Path(config.path)


def add_hires(company: CompanyData, hires: list[HireConfig], plan_year: int) -> CompanyData:
    """Add planned hires to the reps table: no accounts yet (territory design gives them some).

    A hire's home base, unless given, is the potential-weighted centre of his region's accounts;
    his hire date is the first day of ``start_month`` of the plan year; he inherits the region's
    most common manager.
    """
    reps = company.reps.copy()
    acc = company.accounts
    rows = []
    n = 0
    for h in hires:
        in_region = reps["region"] == h.region
        if not in_region.any():
            raise DataValidationError(
                "scenario data.hires",
                [f"region '{h.region}' has no reps; regions are {sorted(reps['region'].dropna().unique())}."],
            )
        a = acc[acc["region"] == h.region]
        w = a["potential"].fillna(0.0).to_numpy() + 1e-9
        lat = (
            h.home_lat
            if h.home_lat is not None
            else float(np.average(a["lat"], weights=w))
            if len(a)
            else None
        )
        lon = (
            h.home_lon
            if h.home_lon is not None
            else float(np.average(a["lon"], weights=w))
            if len(a)
            else None
        )
        manager = reps.loc[in_region, "manager"].mode()
        for _ in range(h.count):
            n += 1
            rows.append(
                {
                    "rep_id": f"NEW{n:02d}",
                    "rep_name": f"New hire {n} ({h.region})",
                    "region": h.region,
                    "manager": manager.iloc[0] if len(manager) else pd.NA,
                    "home_lat": lat,
                    "home_lon": lon,
                    "capacity": 1.0,
                    "hire_date": pd.Timestamp(year=plan_year, month=h.start_month, day=1),
                    "weekly_hours": 40.0,
                }
            )
    log.info("added %d planned hires", len(rows))
    new = pd.concat([reps, pd.DataFrame(rows)], ignore_index=True)
    return dataclasses.replace(company, reps=new).validated()
