"""Run a scenario's stages in-process.

The Dask + papermill batch (``workflow.batch``) runs the same stages through notebooks, or through
:func:`run_scenario` with ``--no-notebooks``; this module is also the path of ``salesops run``,
the tests, and a notebook's ``run_stage`` call.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salesops_models.safe_io import atomic_write_text
from salesops_models.scenario import Scenario
from salesops_models.workflow.cache import StageCache, snapshot, stage_key, written_since
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import STAGE_ORDER, check_run_order, stage_contract
from salesops_models.workflow.progress import forward_solver_progress, report_step
from salesops_models.workflow.results import collect_metrics, split_timings, write_resolved_scenario
from salesops_models.workflow.stages import stage_function

log = logging.getLogger(__name__)


def stage_enabled(scenario: Scenario, stage: str) -> bool:
    section = getattr(scenario, stage, None)
    return bool(getattr(section, "enabled", True))


def available_stages() -> list[str]:
    """Stages whose module exists in this installation, in run order."""
    import importlib.util

    return [
        s for s in STAGE_ORDER if importlib.util.find_spec(f"salesops_models.workflow.stages.{s}") is not None
    ]


def planned_stages(scenario: Scenario, stages: Sequence[str] | None = None) -> list[str]:
    """The stages that will run, in order: ``stages`` (default all) without the disabled ones."""
    wanted = list(stages) if stages is not None else available_stages()
    unknown = [s for s in wanted if s not in STAGE_ORDER]
    if unknown:
        raise KeyError(f"unknown stage(s) {unknown}; stages are {', '.join(STAGE_ORDER)}")
    ordered = [s for s in STAGE_ORDER if s in wanted]
    if ordered != wanted:
        log.warning("stages %s reordered to the run order %s", wanted, ordered)
    return [s for s in ordered if stage_enabled(scenario, s)]


def run_stage(ctx: StageContext, name: str) -> dict[str, Any]:
    """Run stage ``name`` for ``ctx``'s scenario under its contract, write its metrics, return them.

    The stage's context enforces its contract (:mod:`~salesops_models.workflow.contracts`). Metrics
    whose name ends in ``_seconds`` are timings: they go to ``stages/<name>.timings.json``, not to
    the metrics, so that the same scenario gives the same ``metrics.json`` byte for byte. A stage
    disabled in the scenario returns ``{"<name>_skipped": True}`` and writes nothing else.

    With ``ctx.cache`` set, a stage whose inputs (its config keys, its upstream tables' content,
    the code, the seed: :func:`~salesops_models.workflow.cache.stage_key`) match a verified cache
    entry is not run: its files are restored, byte for byte what the stage wrote. Otherwise it
    runs and its files are saved to the cache. ``stages/<name>.timings.json`` says which
    (``<name>_cache_hit``: 1 or 0).
    """
    contract = stage_contract(name)
    ctx = ctx.for_stage(name, contract)
    if not stage_enabled(ctx._raw_scenario, name):
        log.info("stage %s disabled in scenario %s", name, ctx.scenario.name)
        metrics: dict[str, Any] = {f"{name}_skipped": True}
        ctx.write_metrics(metrics, {})
        return metrics
    t0 = time.perf_counter()
    cache = ctx.cache
    key = ingredients = None
    if cache is not None:
        key, ingredients = stage_key(ctx._raw_scenario, contract, ctx.out_dir)
        manifest = cache.load(name, key)
        if manifest is not None:
            cache.restore(manifest, name, key, ctx.out_dir)
            metrics_file = ctx.out_dir / "stages" / f"{name}.metrics.json"
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
            seconds = round(time.perf_counter() - t0, 3)
            report_step(ctx.scenario.name, name, "cached", seconds, f"inputs unchanged, cache entry {key[:12]}")
            atomic_write_text(
                ctx.out_dir / "stages" / f"{name}.timings.json",
                json.dumps({f"{name}_stage_seconds": seconds, f"{name}_cache_hit": 1}, indent=2, sort_keys=True),
            )
            return metrics
    before = snapshot(ctx.out_dir)
    metrics, timings = split_timings(dict(stage_function(name)(ctx)))
    timings[f"{name}_stage_seconds"] = round(time.perf_counter() - t0, 3)
    if cache is not None:
        timings[f"{name}_cache_hit"] = 0
    ctx.write_metrics(metrics, timings)
    if cache is not None and key is not None:
        cache.store(name, key, ingredients or {}, ctx.out_dir, written_since(before, ctx.out_dir))
    report_step(ctx.scenario.name, name, "computed", timings[f"{name}_stage_seconds"])
    return metrics


@dataclass
class ScenarioOutcome:
    name: str
    out_dir: Path
    status: str  # "ok" or "failed"
    metrics: dict[str, Any]
    error: str | None = None
    seconds: float = 0.0


def _file_logger(out_dir: Path) -> logging.Handler:
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out_dir / "logs" / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    return handler


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path,
    stages: Sequence[str] | None = None,
    cache: StageCache | None = None,
) -> ScenarioOutcome:
    """Run every (available, enabled) stage of ``scenario`` into ``out_dir``; never raises for a model failure.

    The stage order is checked against the stage contracts first
    (:func:`~salesops_models.workflow.contracts.check_run_order`): a stage that would read a table
    no earlier stage writes refuses the run before anything runs
    (:class:`~salesops_models.errors.StageOrderError`, raised). A failing stage stops the scenario
    (later stages depend on it); the error and traceback go to ``logs/run.log`` and ``metrics.json``.
    With ``cache``, stages whose inputs are unchanged are restored from it (see :func:`run_stage`).
    """
    plan = planned_stages(scenario, stages)
    check_run_order(plan)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_resolved_scenario(scenario, out_dir)
    handler = _file_logger(out_dir)
    pkg_logger = logging.getLogger("salesops_models")
    pkg_logger.addHandler(handler)
    old_level = pkg_logger.level
    if pkg_logger.getEffectiveLevel() > logging.INFO:
        pkg_logger.setLevel(logging.INFO)
    t0 = time.perf_counter()
    ctx = StageContext(scenario, out_dir, cache=cache)
    status, error = "ok", None
    try:
        with forward_solver_progress(scenario.name):
            for name in plan:
                log.info("scenario %s: stage %s", scenario.name, name)
                try:
                    run_stage(ctx, name)
                except Exception as exc:  # a model failure fails this scenario only
                    status = "failed"
                    error = f"stage {name}: {type(exc).__name__}: {exc}"
                    log.error("scenario %s failed in stage %s:\n%s", scenario.name, name, traceback.format_exc())
                    break
    finally:
        pkg_logger.removeHandler(handler)
        pkg_logger.setLevel(old_level)
        handler.close()
    metrics = collect_metrics(out_dir, status, error)
    # the outputs that travel (plan.xlsx, CRM file, statements) and report.html; never raises
    from salesops_models.workflow.report import publish_scenario

    for problem in publish_scenario(out_dir, notebooks=[], cache=cache).problems:
        log.error("scenario %s: %s", scenario.name, problem)
    return ScenarioOutcome(scenario.name, out_dir, status, metrics, error, time.perf_counter() - t0)
