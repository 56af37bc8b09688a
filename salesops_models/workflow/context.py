"""What a stage of a scenario run gets: :class:`StageContext`.

A stage is a function ``run(ctx) -> dict`` in ``salesops_models.workflow.stages.<name>``. It reads
the company data and the tables that earlier stages wrote, calls the model, writes its own tables
through ``ctx.write_table`` and returns a flat dict of headline metrics. The same function runs
inside a notebook (papermill) or directly (``salesops run``): the notebook only adds presentation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.data.company import CompanyData
from salesops_models.errors import SalesopsError
from salesops_models.safe_io import atomic_write_parquet, atomic_write_text
from salesops_models.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

# Order matters: a stage may read the tables of the stages before it.
STAGE_ORDER: tuple[str, ...] = ("data", "territory", "forecast", "pipeline", "quota", "compensation")


def stage_seed(master_seed: int, stage: str) -> np.random.SeedSequence:
    """The seed sequence of one stage: child ``i`` of the master seed, ``i`` its place in STAGE_ORDER.

    Built with ``spawn_key`` rather than ``spawn()`` so that any process can rebuild it without
    shared state (``SeedSequence.spawn`` is stateful).
    """
    return np.random.SeedSequence(master_seed, spawn_key=(STAGE_ORDER.index(stage),))


@dataclass
class StageContext:
    """Access to the scenario, its data, its seeds and its output folder for one stage."""

    scenario: Scenario
    out_dir: Path
    stage: str = "data"
    # Shared by every ``for_stage`` copy, so the company is loaded once per scenario run.
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_paths(cls, scenario_path: str | Path, out_dir: str | Path, stage: str) -> StageContext:
        """Build a context from plain values: what a parameterised notebook has."""
        out = Path(out_dir)
        resolved = out / "scenario.resolved.yaml"
        # The resolved file was written by this package after its paths were checked: trusted.
        scenario = load_scenario(resolved, trusted=True) if resolved.exists() else load_scenario(scenario_path)
        return cls(scenario=scenario, out_dir=out, stage=stage)

    def for_stage(self, stage: str) -> StageContext:
        return StageContext(self.scenario, self.out_dir, stage, self._shared)

    # ---- data ---------------------------------------------------------------------------------
    @property
    def company(self) -> CompanyData:
        if "company" not in self._shared:
            from salesops_models.workflow.datasource import load_company

            self._shared["company"] = load_company(
                self.scenario.data, cache_dir=self.out_dir / "data", plan_year=self.scenario.plan_year
            )
        return self._shared["company"]

    @cached_property
    def seed_sequence(self) -> np.random.SeedSequence:
        return stage_seed(self.scenario.seed, self.stage)

    def rng(self) -> np.random.Generator:
        """A fresh generator for this stage (same seed, same numbers, every call)."""
        return np.random.default_rng(stage_seed(self.scenario.seed, self.stage))

    # ---- tables and metrics -------------------------------------------------------------------
    def table_path(self, name: str) -> Path:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise SalesopsError(f"table name {name!r} must be letters, digits, '_' or '-'")
        return self.out_dir / f"{name}.parquet"

    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        path = self.table_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        keep_index = isinstance(df.index, pd.MultiIndex) or df.index.name is not None
        return atomic_write_parquet(df, path, index=keep_index)

    def has_table(self, name: str) -> bool:
        return self.table_path(name).exists()

    def read_table(self, name: str) -> pd.DataFrame:
        path = self.table_path(name)
        if not path.exists():
            raise SalesopsError(
                f"{path}: table '{name}' is missing; the stage that writes it has not run for this scenario "
                f"(stages run in the order {', '.join(STAGE_ORDER)})."
            )
        return pd.read_parquet(path)

    def write_metrics(self, metrics: dict[str, Any]) -> Path:
        path = self.out_dir / "stages" / f"{self.stage}.metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(path, json.dumps(_jsonable(metrics), indent=2, sort_keys=True))

    def figure_path(self, name: str) -> Path:
        path = self.out_dir / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, pd.Timestamp):
        return str(obj.date())
    return obj
