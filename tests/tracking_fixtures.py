"""A tiny saved plan and its plan-year actuals, shared by the tracking tests (built in a few seconds)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from salesops_models.data import generate_plan_year_actuals
from salesops_models.scenario import load_scenario
from salesops_models.workflow.results import new_batch_dir, scenario_dir
from salesops_models.workflow.runner import run_scenario

SAMPLE = {"seed": 7, "n_accounts": 80, "n_reps": 6, "n_regions": 2, "years": 2}
SCENARIO = """name: tiny_plan
seed: 11
plan_year: 2026
data:
  source: sample
  sample: {seed: 7, n_accounts: 80, n_reps: 6, n_regions: 2, years: 2}
pipeline: {trials: 200, block_size: 100}
quota: {time_limit: 5, compare_methods: false}
compensation: {n_trials: 200, costing_sets: []}
"""
STAGES = ["data", "pipeline", "quota", "compensation"]


def build_plan(root: Path) -> Path:
    """Run the tiny scenario's data, pipeline, quota and compensation stages; return its folder."""
    f = root / "tiny_plan.yaml"
    f.write_text(SCENARIO)
    scenario = load_scenario(f)
    out = scenario_dir(new_batch_dir(root / "results", "batch"), scenario.name)
    outcome = run_scenario(scenario, out, stages=STAGES)
    assert outcome.status == "ok", outcome.error
    return out


def write_actuals(root: Path, through: str, **overrides: object) -> Path:
    """The tiny company's plan-year export on ``through``, as a canonical folder."""
    folder = root / f"actuals-{through}"
    generate_plan_year_actuals(through, **{**SAMPLE, **overrides}).to_dir(folder)
    return folder


def folder_digest(folder: Path, skip: str = "tracking") -> dict[str, str]:
    """sha256 of every file under ``folder`` except the ``skip`` sub-folder (relative path -> hash)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != skip
    }
