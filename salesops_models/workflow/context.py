"""What a stage of a scenario run gets: :class:`StageContext`.

A stage is a function ``run(ctx) -> dict`` in ``salesops_models.workflow.stages.<name>``, with a
``CONTRACT`` (:mod:`salesops_models.workflow.contracts`). It reads the company data and the tables
that earlier stages wrote, calls the model, writes its own tables through ``ctx.write_table`` and
returns a flat dict of headline metrics. The same function runs inside a notebook (papermill) or
directly (``salesops run``): the notebook only adds presentation.

While the runner runs a stage, its context *enforces* the contract: a table or scenario key the
contract does not declare raises :class:`~salesops_models.workflow.contracts.ContractViolation`.
A notebook's own context (presentation) reads freely.
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
from salesops_models.data.realign import Realignment
from salesops_models.errors import SalesopsError
from salesops_models.safe_io import atomic_write_parquet, atomic_write_text
from salesops_models.scenario import Scenario, load_scenario
from salesops_models.workflow.contracts import (
    COMPANY,
    SEED_KEYS,
    STAGE_ORDER,
    ContractViolation,
    StageContract,
)

log = logging.getLogger(__name__)

__all__ = ["STAGE_ORDER", "StageContext", "stage_seed"]

#: scenario keys every stage may read: they name the run, they set nothing
IDENTITY_KEYS = frozenset({"name", "description"})


def stage_seed(master_seed: int, stage: str) -> np.random.SeedSequence:
    """The seed sequence of one stage: ``SeedSequence(master, spawn_key=(SEED_KEYS[stage],))``.

    Built with ``spawn_key`` rather than ``spawn()`` so that any process can rebuild it without
    shared state (``SeedSequence.spawn`` is stateful); the key is fixed per stage
    (:data:`~salesops_models.workflow.contracts.SEED_KEYS`), not its position in the run.
    """
    return np.random.SeedSequence(master_seed, spawn_key=(SEED_KEYS[stage],))


class ScenarioView:
    """The scenario as a running stage sees it: only the keys its contract declares.

    Attribute access is passed through to the :class:`~salesops_models.scenario.Scenario`; a key
    outside ``allowed`` raises :class:`ContractViolation` naming the stage and the key.
    """

    def __init__(self, scenario: Scenario, contract: StageContract):
        self._scenario = scenario
        self._contract = contract

    def __getattr__(self, key: str) -> Any:
        if key in IDENTITY_KEYS or key in self._contract.config:
            return getattr(self._scenario, key)
        raise ContractViolation(
            f"stage '{self._contract.stage}' read scenario key '{key}', which its contract does not declare "
            f"(config: {', '.join(self._contract.config) or 'none'}); add it to CONTRACT.config in "
            f"salesops_models/workflow/stages/{self._contract.stage}.py."
        )


@dataclass
class StageContext:
    """Access to the scenario, its data, its seeds and its output folder for one stage."""

    scenario: Scenario
    out_dir: Path
    stage: str = "data"
    # Shared by every ``for_stage`` copy, so the company is loaded once per scenario run.
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)
    #: set while the runner runs the stage: reads, writes and scenario keys are checked against it
    contract: StageContract | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._raw_scenario = self.scenario
        if self.contract is not None:
            self.scenario = ScenarioView(self.scenario, self.contract)  # type: ignore[assignment]

    @classmethod
    def from_paths(cls, scenario_path: str | Path, out_dir: str | Path, stage: str) -> StageContext:
        """Build a context from plain values: what a parameterised notebook has."""
        out = Path(out_dir)
        resolved = out / "scenario.resolved.yaml"
        # The resolved file was written by this package after its paths were checked: trusted.
        scenario = load_scenario(resolved, trusted=True) if resolved.exists() else load_scenario(scenario_path)
        return cls(scenario=scenario, out_dir=out, stage=stage)

    def for_stage(self, stage: str, contract: StageContract | None = None) -> StageContext:
        """The context of ``stage`` in the same run; with ``contract``, one that enforces it."""
        return StageContext(self._raw_scenario, self.out_dir, stage, self._shared, contract)

    def _check_read(self, table: str) -> None:
        if self.contract is not None and not self.contract.can_read(table):
            raise ContractViolation(
                f"stage '{self.stage}' read table '{table}', which its contract does not declare "
                f"(reads: {', '.join(self.contract.reads) or 'none'}; uses: {', '.join(self.contract.uses) or 'none'}); "
                f"add it to CONTRACT in salesops_models/workflow/stages/{self.stage}.py."
            )

    # ---- data ---------------------------------------------------------------------------------
    @property
    def company(self) -> CompanyData:
        """The company data (the ``company`` pseudo-table of the contracts), loaded once per run."""
        self._check_read(COMPANY)
        if "company" not in self._shared:
            from salesops_models.workflow.datasource import load_company

            sc = self._raw_scenario
            self._shared["company"] = load_company(
                sc.data, cache_dir=self.out_dir / "data", plan_year=sc.plan_year
            )
        return self._shared["company"]

    def plan_company(self) -> Realignment:
        """The company under the scenario's territory plan (history follows accounts, placed reps join).

        Reads ``assignments`` and ``territory_new_reps`` when the territory stage wrote them (the
        stage's contract must declare both as ``uses``); without them, the company as it is. See
        :func:`salesops_models.data.realign.realign_company`.
        """
        from salesops_models.data.realign import realign_company

        owner = placed = None
        if self.has_table("assignments"):
            asg = self.read_table("assignments")
            owner = pd.Series(asg["rep_id"].astype(str).to_numpy(), index=asg["account_id"].astype(str))
        if self.has_table("territory_new_reps"):
            placed = self.read_table("territory_new_reps")
        key = ("realignment", owner is not None, placed is not None)
        if key not in self._shared:
            self._shared[key] = realign_company(self.company, owner, placed, self.scenario.plan_year)
        return self._shared[key]

    @cached_property
    def seed_sequence(self) -> np.random.SeedSequence:
        return stage_seed(self._raw_scenario.seed, self.stage)

    def rng(self) -> np.random.Generator:
        """A fresh generator for this stage (same seed, same numbers, every call)."""
        return np.random.default_rng(stage_seed(self._raw_scenario.seed, self.stage))

    # ---- tables and metrics -------------------------------------------------------------------
    def table_path(self, name: str) -> Path:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise SalesopsError(f"table name {name!r} must be letters, digits, '_' or '-'")
        return self.out_dir / f"{name}.parquet"

    def write_table(self, name: str, df: pd.DataFrame) -> Path:
        if self.contract is not None and not self.contract.can_write(name):
            raise ContractViolation(
                f"stage '{self.stage}' wrote table '{name}', which its contract does not declare "
                f"(writes: {', '.join(self.contract.outputs) or 'none'}); add it to CONTRACT in "
                f"salesops_models/workflow/stages/{self.stage}.py."
            )
        path = self.table_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        keep_index = isinstance(df.index, pd.MultiIndex) or df.index.name is not None
        return atomic_write_parquet(df, path, index=keep_index)

    def has_table(self, name: str) -> bool:
        self._check_read(name)
        return self.table_path(name).exists()

    def optional_table(self, name: str) -> pd.DataFrame | None:
        """Table ``name`` when an earlier stage wrote it, else None (a ``uses`` of the contract)."""
        return self.read_table(name) if self.has_table(name) else None

    def read_table(self, name: str) -> pd.DataFrame:
        self._check_read(name)
        path = self.table_path(name)
        if not path.exists():
            raise SalesopsError(
                f"{path}: table '{name}' is missing; the stage that writes it has not run for this scenario "
                f"(stages run in the order {', '.join(STAGE_ORDER)})."
            )
        return pd.read_parquet(path)

    def write_metrics(self, metrics: dict[str, Any], timings: dict[str, float] | None = None) -> Path:
        """Write ``stages/<stage>.metrics.json`` (and ``stages/<stage>.timings.json``: wall times [s]).

        Timings live apart from the metrics: the metrics of a scenario are the same bit for bit on
        every run, its timings are not.
        """
        path = self.out_dir / "stages" / f"{self.stage}.metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        if timings is not None:
            tpath = self.out_dir / "stages" / f"{self.stage}.timings.json"
            atomic_write_text(tpath, json.dumps(_jsonable(timings), indent=2, sort_keys=True))
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
