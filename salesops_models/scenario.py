"""Scenarios: one YAML file each, optionally ``extends:`` another, validated strictly.

Precedence (lowest first): the defaults of the pydantic models, the base scenario named by
``extends`` (recursively), the scenario file itself. Mappings are deep-merged; lists and scalars
are replaced whole. The merged document is validated once, with ``extra="forbid"`` at every level,
so a typo is an error naming the file, the key path and the allowed keys.

Scenario files are data: they are read by ``safe_io.load_yaml`` (PyYAML's safe loader, no aliases,
a size cap) and nothing in them is evaluated. Files a scenario names are resolved against its
folder and must stay inside it unless the user allows more (``--allow-dir``); see
:class:`~salesops_models.safe_io.PathRule`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from salesops_models.compensation.config import CompensationConfig
from salesops_models.config_base import StrictModel, section_model
from salesops_models.errors import SalesopsError, ScenarioError
from salesops_models.forecast.config import ForecastConfig
from salesops_models.pipeline.config import PipelineConfig
from salesops_models.quota.config import QuotaConfig
from salesops_models.safe_io import PathRule, short_repr
from salesops_models.scenario_source import (  # noqa: F401 (re-exported: the scenario file API)
    NAME_PATTERN,
    deep_merge,
    read_yaml,
    resolve_document,
    scenario_files,
)
from salesops_models.sweep import SWEEP_LIMIT, SweepChild, child_error_prefix, expand_sweep
from salesops_models.territory.config import TerritoryConfig

log = logging.getLogger(__name__)


class SampleCompanyConfig(StrictModel):
    """Size and seed of the generated sample company."""

    seed: int = Field(7, description="Seed of the sample-company generator.")
    n_accounts: int = Field(2000, ge=10, le=200_000, description="Number of accounts.")
    n_reps: int = Field(40, ge=2, le=2000, description="Number of quota-carrying reps.")
    n_regions: int = Field(5, ge=1, le=50, description="Number of sales regions.")
    years: int = Field(3, ge=1, le=10, description="Years of opportunity history.")
    end_date: str = Field("2025-12-31", description="Snapshot date: last day of history (ISO date).")
    admin_share: float = Field(
        0.35, ge=0.0, lt=1.0, description="Share of a rep's working hours spent on admin [0-1]."
    )
    growth: float = Field(0.12, ge=-0.5, le=2.0, description="Yearly growth of opportunity creation [0-1].")
    coverage_elasticity: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="How deal creation responds to the owner's coverage (yearly selling hours over his "
        "territory's workload) [-]: empty, not at all (creation follows potential and hours, whatever the "
        "territory's size); a number, creation ~ potential x (ramp x coverage / median coverage)^number.",
    )


class HireConfig(StrictModel):
    """Reps to hire in the plan year (growth scenarios): they start with no accounts."""

    region: str = Field(..., description="Region the hires join (must exist in the reps table).")
    count: int = Field(1, ge=1, le=500, description="How many reps.")
    start_month: int = Field(
        1, ge=1, le=12, description="Month of the plan year they start (ramp starts then)."
    )
    home_lat: float | None = Field(
        None, ge=-90, le=90, description="Home base latitude [deg]; default: region centre."
    )
    home_lon: float | None = Field(
        None, ge=-180, le=180, description="Home base longitude [deg]; default: region centre."
    )


class DataConfig(StrictModel):
    """Where the company's data comes from."""

    source: Literal["sample", "directory", "crm"] = Field(
        "sample",
        description="'sample': generated sample company; 'directory': canonical tables written by "
        "'salesops data'; 'crm': a CRM export folder read through a column-mapping file.",
    )
    sample: SampleCompanyConfig = Field(default_factory=SampleCompanyConfig)
    path: str | None = Field(None, description="Folder of the tables for 'directory' and 'crm' sources.")
    mapping: str | None = Field(
        None,
        description="Column-mapping YAML for 'crm' (a path, or the name of a shipped mapping such as 'maven').",
    )
    hires: list[HireConfig] = Field(
        default_factory=list, description="Planned hires added to the reps table."
    )

    @field_validator("path", "mapping")
    @classmethod
    def _no_empty(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be empty; leave the key out instead")
        return v


class Scenario(StrictModel):
    """A fully resolved scenario: what to run, on which data, with which settings."""

    name: str = Field(..., description="Scenario name; also its results folder name.")
    description: str = Field("", description="One or two sentences for the report.")
    extends: str | None = Field(None, description="Base scenario file (relative to this file).")
    seed: int = Field(20240101, ge=0, description="Master seed; every random stream is spawned from it.")
    plan_year: int = Field(2026, ge=1990, le=2100, description="The year being planned.")
    company_target: float | None = Field(
        None,
        gt=0,
        description="Company bookings target for the plan year [currency]; default: forecast-based.",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    territory: TerritoryConfig = Field(default_factory=TerritoryConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    quota: QuotaConfig = Field(default_factory=QuotaConfig)
    compensation: CompensationConfig = Field(default_factory=CompensationConfig)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not NAME_PATTERN.match(v) or v in {".", ".."}:
            raise ValueError(
                "must be 1-64 characters of letters, digits, '_', '-' or '.', starting with a letter or digit "
                "(it names a results folder, so no '/' or spaces)"
            )
        return v


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------


def _allowed_keys(model: type[StrictModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Keys allowed at ``loc`` (the parent of an unknown key), walking the pydantic model tree."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return None
        annotation = fields[part].annotation
        current = section_model(annotation)
        if current is None:
            return None
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else None


def format_validation_error(path: str | Path, exc: ValidationError, model: type[StrictModel]) -> str:
    """Turn pydantic's error list into lines naming the file, the key path and the fix."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            hint = f" Allowed keys here: {', '.join(allowed)}." if allowed else ""
            lines.append(f"{path}: unknown key '{key}'.{hint}")
        elif err["type"] == "missing":
            lines.append(f"{path}: missing required key '{key}'.")
        else:
            got = err.get("input")
            # reprlib: the input may be huge (a long string, a deep list); never print it whole.
            got_text = f" (got {short_repr(got)})" if not isinstance(got, dict) and got is not None else ""
            lines.append(f"{path}: key '{key}': {err['msg']}{got_text}.")
    return "\n".join(lines)


def load_scenario(
    path: str | Path, allow_dirs: Sequence[str | Path] = (), trusted: bool = False
) -> Scenario:
    """Load, merge and validate one scenario file.

    The scenario's name defaults to the file's stem. Paths inside (``extends``, ``data.path``,
    ``data.mapping``, plan files) are resolved against the folder of the file that names them, must
    stay inside it, and come out absolute, so the resolved scenario runs from any folder.

    Parameters
    ----------
    path
        The scenario YAML.
    allow_dirs
        Further folders those paths may point into (the CLI's ``--allow-dir``), besides those in
        ``SALESOPS_ALLOW_DIRS``.
    trusted
        Skip the folder check: only for a ``scenario.resolved.yaml`` this package wrote itself after
        checking the scenario it came from.
    """
    path = Path(path)
    doc = _resolved_doc(path, allow_dirs, trusted)
    if "sweep" in doc:
        raise ScenarioError(
            f"{path}: this scenario is a sweep (it has 'sweep:'), which stands for several child scenarios; "
            "run it with 'salesops batch', or remove 'sweep:' to run the scenario alone."
        )
    return _validated(path, doc)


def _resolved_doc(path: Path, allow_dirs: Sequence[str | Path] = (), trusted: bool = False) -> dict[str, Any]:
    rule = PathRule.trusted() if trusted else PathRule.from_env(allow_dirs)
    doc, chain = resolve_document(path, rule=rule)
    doc.pop("_provenance", None)  # written by results.write_resolved_scenario; not a setting
    doc.setdefault("name", path.stem)
    if "extends" in doc:
        doc["extends"] = Path(chain[-2]).name if len(chain) > 1 else doc["extends"]
    return doc


def _validated(path: Path | str, doc: dict[str, Any]) -> Scenario:
    try:
        return Scenario.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(path, exc, Scenario)) from None


def load_scenarios(
    path: str | Path,
    allow_dirs: Sequence[str | Path] = (),
    sweep_limit: int | None = SWEEP_LIMIT,
) -> tuple[list[tuple[Scenario, SweepChild | None]], list[str]]:
    """The scenarios of one file: itself, or, for a sweep (``sweep:``), each of its children.

    Returns the valid scenarios (with their :class:`~salesops_models.sweep.SweepChild` for sweep
    children, else None) and one message per invalid child, naming the file, the child and the
    values it sets.

    Raises
    ------
    ScenarioError
        The file itself is invalid, its ``sweep:`` is malformed, names an unknown key or expands to
        more than ``sweep_limit`` children.
    """
    path = Path(path)
    doc = _resolved_doc(path, allow_dirs)
    if "sweep" not in doc:
        return [(_validated(path, doc), None)], []
    good: list[tuple[Scenario, SweepChild | None]] = []
    errors: list[str] = []
    for child, child_doc in expand_sweep(path, doc, Scenario, sweep_limit, PathRule.from_env(allow_dirs)):
        try:
            good.append((_validated(child_error_prefix(path, child), child_doc), child))
        except ScenarioError as exc:
            errors.append(str(exc))
    return good, errors


def validate_files(
    paths: list[str | Path],
    allow_dirs: Sequence[str | Path] = (),
    sweep_limit: int | None = SWEEP_LIMIT,
    sweeps: dict[str, SweepChild] | None = None,
) -> tuple[list[tuple[Path, Scenario]], list[str]]:
    """Validate every scenario file; return ``(file, scenario)`` of the good ones and one message per
    bad file. One broken file never stops the others from being reported.

    A sweep file (``sweep:``) gives one entry per child scenario; ``sweeps``, when given, receives
    each child's :class:`~salesops_models.sweep.SweepChild` by name. ``sweep_limit``: most children
    a sweep may have (None: any number).

    Raises only when ``paths`` name no scenario file at all.
    """
    good: list[tuple[Path, Scenario]] = []
    errors: list[str] = []
    names: dict[str, Path] = {}
    for f in scenario_files(paths):
        try:
            loaded, child_errors = load_scenarios(f, allow_dirs, sweep_limit)
        except SalesopsError as exc:
            errors.append(str(exc))
            continue
        except Exception as exc:  # one broken file never hides the report on the others
            log.exception("%s: unexpected error while validating", f)
            errors.append(f"{f}: could not be validated ({type(exc).__name__}: {short_repr(str(exc))}).")
            continue
        errors += child_errors
        for sc, child in loaded:
            if sc.name in names:
                errors.append(
                    f"{f}: scenario name '{sc.name}' is also used by {names[sc.name]}; names must be unique."
                )
                continue
            names[sc.name] = f
            good.append((f, sc))
            if child is not None and sweeps is not None:
                sweeps[sc.name] = child
    return good, errors


def validate_all(
    paths: list[str | Path], allow_dirs: Sequence[str | Path] = ()
) -> tuple[list[Scenario], list[str]]:
    """Validate every scenario; return the good ones and one message per bad file (see
    :func:`validate_files`; ``workflow.preflight`` adds the checks of plans and data)."""
    good, errors = validate_files(paths, allow_dirs)
    return [sc for _, sc in good], errors


def scenario_to_yaml(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
