"""Everything that can be checked before a run: ``salesops validate``, and the first step of ``run``
and ``batch``.

A scenario that passes here fails later only for reasons a model finds while it runs (an infeasible
territory plan, a lock naming an account the generated sample lacks). Checked:

- each scenario file: YAML, keys and types, ``extends`` chain, names, the path rule
  (``scenario.validate_files``);
- its data, for ``directory`` and ``crm`` sources: ``data.path`` exists, the mapping is valid, and
  the export loads (unknown ``stages:`` labels, header-only files, dates in one format, every
  problem of a file listed with its lines), and planned hires name existing regions;
- its commission plans: each file exists and is valid (overlapping tiers, ...), the primary plan is
  one of them; a plan whose pay drops as attainment rises (a pay cliff) is a warning;
- the order of the stages it enables against their contracts: no stage may read a table that no
  earlier stage writes (``workflow.contracts.check_run_order``).

Loaded companies are cached per (source, path, mapping) within one call, so a batch whose
scenarios share an export reads it once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salesops_models.errors import SalesopsError
from salesops_models.scenario import Scenario, validate_files

log = logging.getLogger(__name__)


@dataclass
class CheckedScenarios:
    """The outcome of :func:`check_scenarios`.

    Attributes
    ----------
    files
        The scenario file of each good scenario, in input order.
    scenarios
        The scenarios that passed every check, in input order.
    errors
        One message per problem, each naming its file (a scenario, data or plan file) and the fix.
    warnings
        Problems that do not stop a run (pay cliffs), one message each.
    """

    files: list[Path] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_scenarios(
    paths: Sequence[str | Path], allow_dirs: Sequence[str | Path] = (), check_data: bool = True
) -> CheckedScenarios:
    """Validate scenario files and every input they name, reporting every problem of every file.

    Parameters
    ----------
    paths
        Scenario files and/or folders of ``*.yaml``.
    allow_dirs
        Folders outside each file's own folder that named files may be in (``--allow-dir``).
    check_data
        Load ``directory``/``crm`` data to check it (False: only the path's existence).
    """
    good, errors = validate_files(list(paths), allow_dirs)
    out = CheckedScenarios(errors=errors)
    companies: dict[tuple[Any, ...], Any] = {}
    for f, sc in good:
        problems: list[str] = []
        problems += _check_data(sc, f, companies, check_data)
        plan_problems, plan_warnings = _check_plans(sc, f)
        problems += plan_problems
        problems += _check_stage_order(sc, f)
        out.warnings += plan_warnings
        if problems:
            out.errors += problems
        else:
            out.files.append(f)
            out.scenarios.append(sc)
    return out


def _check_data(sc: Scenario, f: Path, companies: dict[tuple[Any, ...], Any], load: bool) -> list[str]:
    from salesops_models.workflow.datasource import add_hires, load_company

    cfg = sc.data
    if cfg.source == "sample":
        return []
    if cfg.path is None:
        return [f"{f}: data.source is '{cfg.source}' but data.path is not set; give the data folder."]
    folder = Path(cfg.path)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        return [f"{f}: data.path {folder} {what}; give the folder that holds the {cfg.source} data."]
    if not load:
        return []
    key = (cfg.source, cfg.path, cfg.mapping)
    if key not in companies:
        try:
            companies[key] = load_company(cfg.model_copy(update={"hires": []}))
        except SalesopsError as exc:
            companies[key] = exc
    company = companies[key]
    if isinstance(company, SalesopsError):
        return [f"{f}: data: {company}"]
    if cfg.hires:
        try:
            add_hires(company, cfg.hires, sc.plan_year)
        except SalesopsError as exc:
            return [f"{f}: data.hires: {exc}"]
    return []


def _check_stage_order(sc: Scenario, f: Path) -> list[str]:
    from salesops_models.errors import StageOrderError
    from salesops_models.workflow.contracts import check_run_order
    from salesops_models.workflow.runner import planned_stages

    try:
        check_run_order(planned_stages(sc))
    except StageOrderError as exc:
        return [f"{f}: {exc}"]
    return []


def _check_plans(sc: Scenario, f: Path) -> tuple[list[str], list[str]]:
    from salesops_models.compensation.plan import load_plan, pay_cliffs

    cfg = sc.compensation
    if not cfg.enabled:
        return [], []
    errors, warnings, names = [], [], []
    for ref in cfg.plans:
        try:
            plan = load_plan(ref)
        except SalesopsError as exc:
            errors.append(f"{f}: compensation.plans: {exc}")
            continue
        names += [plan.name, ref]
        warnings += [f"{f}: {w}" for w in pay_cliffs(plan)]
    if cfg.primary_plan is not None and not errors and cfg.primary_plan not in names:
        errors.append(
            f"{f}: compensation.primary_plan '{cfg.primary_plan}' is none of the plans; use a plan's name or "
            f"its entry in compensation.plans ({', '.join(map(str, cfg.plans))})."
        )
    return errors, warnings
