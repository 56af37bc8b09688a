"""Scenarios: one YAML file each, optionally ``extends:`` another, validated strictly.

Precedence (lowest first): the defaults of the pydantic models, the base scenario named by
``extends`` (recursively), the scenario file itself. Mappings are deep-merged; lists and scalars
are replaced whole. The merged document is validated once, with ``extra="forbid"`` at every level,
so a typo is an error naming the file, the key path and the allowed keys.

Scenario files are data: they are read with ``yaml.safe_load`` and nothing in them is evaluated.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from salesops_models.compensation.config import CompensationConfig
from salesops_models.config_base import StrictModel
from salesops_models.errors import ScenarioError
from salesops_models.forecast.config import ForecastConfig
from salesops_models.pipeline.config import PipelineConfig
from salesops_models.quota.config import QuotaConfig
from salesops_models.territory.config import TerritoryConfig

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: dicts recursively, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping safely, with an error naming the file when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: file not found.") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ScenarioError(
            f"{path}: the top level must be a mapping of keys (name:, data:, ...), got {type(doc).__name__}."
        )
    return doc


def resolve_document(path: str | Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """Return the merged raw document of a scenario and the chain of files it came from (base first)."""
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path))
        raise ScenarioError(f"{path}: 'extends' forms a cycle: {cycle}.")
    doc = read_yaml(path)
    _resolve_relative_paths(doc, path.parent)  # each file's paths are relative to that file
    base_name = doc.get("extends")
    if base_name is None:
        return doc, [str(path)]
    if not isinstance(base_name, str):
        raise ScenarioError(f"{path}: 'extends' must be a file name such as baseline.yaml.")
    base_path = (path.parent / base_name).resolve()
    if not base_path.exists():
        raise ScenarioError(f"{path}: extends '{base_name}', which does not exist (looked for {base_path}).")
    base_doc, chain = resolve_document(base_path, (*_chain, path))
    # A name and a description belong to their own file: a child without a name takes its file name.
    base_doc.pop("name", None)
    base_doc.pop("description", None)
    return deep_merge(base_doc, doc), [*chain, str(path)]


def _allowed_keys(model: type[StrictModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Keys allowed at ``loc`` (the parent of an unknown key), walking the pydantic model tree."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return None
        annotation = fields[part].annotation
        current = _model_in(annotation)
        if current is None:
            return None
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else None


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


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
            got_text = f" (got {got!r})" if not isinstance(got, dict) and got is not None else ""
            lines.append(f"{path}: key '{key}': {err['msg']}{got_text}.")
    return "\n".join(lines)


def load_scenario(path: str | Path) -> Scenario:
    """Load, merge and validate one scenario file.

    The scenario's name defaults to the file's stem. Relative paths inside ``data`` are resolved
    against the scenario file's folder.
    """
    path = Path(path)
    doc, chain = resolve_document(path)
    doc.pop("_provenance", None)  # written by results.write_resolved_scenario; not a setting
    doc.setdefault("name", path.stem)
    if "extends" in doc:
        doc["extends"] = Path(chain[-2]).name if len(chain) > 1 else doc["extends"]
    try:
        scenario = Scenario.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(path, exc, Scenario)) from None
    return scenario


def _resolve_relative_paths(doc: dict[str, Any], base: Path) -> None:
    """Make file references relative to the scenario file absolute: ``data.path`` and plan files
    in ``compensation.plans`` (entries ending in .yaml/.yml; other entries name shipped plans)."""

    def absolute(value: str) -> str:
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())

    data = doc.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str) and data["path"].strip():
        data["path"] = absolute(data["path"])
    comp = doc.get("compensation")
    if isinstance(comp, dict) and isinstance(comp.get("plans"), list):
        comp["plans"] = [
            absolute(p) if isinstance(p, str) and p.lower().endswith((".yaml", ".yml")) else p
            for p in comp["plans"]
        ]


def scenario_files(paths: list[str | Path]) -> list[Path]:
    """Expand folders to their ``*.yaml``/``*.yml`` files (sorted); keep files as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        elif p.exists():
            out.append(p)
        else:
            raise ScenarioError(f"{p}: no such scenario file or folder.")
    if not out:
        raise ScenarioError(f"no scenario files (*.yaml) found in {', '.join(map(str, paths))}.")
    return out


def validate_all(paths: list[str | Path]) -> tuple[list[Scenario], list[str]]:
    """Validate every scenario; return the good ones and one message per bad file (never raises)."""
    good, errors = [], []
    names: dict[str, Path] = {}
    for f in scenario_files(paths):
        try:
            sc = load_scenario(f)
        except ScenarioError as exc:
            errors.append(str(exc))
            continue
        if sc.name in names:
            errors.append(
                f"{f}: scenario name '{sc.name}' is also used by {names[sc.name]}; names must be unique."
            )
            continue
        names[sc.name] = f
        good.append(sc)
    return good, errors


def scenario_to_yaml(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
