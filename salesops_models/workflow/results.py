"""The results folder: layout, provenance, and the batch summary.

```
results/<batch-id>/
  summary.parquet            one row per scenario: status, error, headline metrics
  <scenario>/
    scenario.resolved.yaml   the merged scenario + version, git commit, seeds
    metrics.json             all stages' metrics, status and error
    stages/<stage>.metrics.json
    *.parquet, figures/, notebooks/, logs/
```

A batch folder is created exclusively (``mkdir`` without ``exist_ok``), so a new batch never
overwrites an older one; a scenario name is checked to stay inside its batch folder. Every file
here is written atomically (``safe_io``: temp file in the same folder, then ``os.replace``), so a
batch killed at any moment leaves whole files or none.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from salesops_models import __version__
from salesops_models.errors import SalesopsError
from salesops_models.safe_io import atomic_write_parquet, atomic_write_text
from salesops_models.scenario import NAME_PATTERN, Scenario
from salesops_models.workflow.context import _jsonable, stage_seed
from salesops_models.workflow.contracts import PROVENANCE_LIBRARIES, STAGE_ORDER


def new_batch_dir(root: str | Path, batch_id: str | None = None) -> Path:
    """Create ``root/<batch-id>`` and return it; never reuse an existing folder.

    The default id is the UTC time plus a random suffix, e.g. ``20261126-190102-3fa9``, so ids sort
    by time and two batches started in the same second still differ.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if batch_id is None:
        batch_id = f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    if not NAME_PATTERN.match(batch_id):
        raise SalesopsError(f"batch id {batch_id!r}: use letters, digits, '_', '-' or '.' only.")
    path = root / batch_id
    try:
        path.mkdir()
    except FileExistsError:
        raise SalesopsError(
            f"{path} already exists; a batch never overwrites another. Choose another --batch-id or leave it out."
        ) from None
    return path


def scenario_dir(batch_dir: str | Path, name: str) -> Path:
    """The folder of scenario ``name`` inside ``batch_dir``, refusing names that would escape it."""
    batch_dir = Path(batch_dir).resolve()
    if not NAME_PATTERN.match(name) or name in {".", ".."}:
        raise SalesopsError(
            f"scenario name {name!r} cannot name a results folder (letters, digits, '_-.' only)."
        )
    path = (batch_dir / name).resolve()
    if path.parent != batch_dir:
        raise SalesopsError(f"scenario name {name!r} would write outside {batch_dir}.")
    return path


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current git commit of the project (``+dirty`` when the tree has changes), or None."""
    cwd = Path(cwd) if cwd else Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def library_versions() -> dict[str, str | None]:
    """Python and the installed versions of :data:`PROVENANCE_LIBRARIES` (None: not installed)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PROVENANCE_LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def provenance(scenario: Scenario) -> dict[str, Any]:
    """Version, commit, library versions, time and every stage seed of a run."""
    return {
        "package_version": __version__,
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "created_utc": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
        "master_seed": scenario.seed,
        "stage_seeds": {s: list(stage_seed(scenario.seed, s).spawn_key) for s in STAGE_ORDER},
        "seed_scheme": "numpy.random.SeedSequence(master_seed, spawn_key=stage_seeds[stage])",
    }


def write_resolved_scenario(scenario: Scenario, out_dir: str | Path) -> Path:
    """Write ``scenario.resolved.yaml``: the merged scenario, then its provenance under ``_provenance``.

    The file loads back as the same scenario (the ``_provenance`` key is dropped when loading). Its
    paths (``data.path``, ``data.mapping``, plan files) are absolute, so it runs from any folder.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = scenario.model_dump(mode="json")
    doc.pop("extends", None)  # already merged in
    path = out_dir / "scenario.resolved.yaml"
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    text += yaml.safe_dump({"_provenance": provenance(scenario)}, sort_keys=False)
    return atomic_write_text(path, text)


def split_timings(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """Split a stage's return value into its metrics and its timings (keys ending in ``_seconds``).

    Wall times differ from run to run; everything else a stage reports must not.
    """
    timings = {k: v for k, v in metrics.items() if k.endswith("_seconds")}
    return {k: v for k, v in metrics.items() if k not in timings}, timings


def collect_metrics(out_dir: str | Path, status: str, error: str | None = None) -> dict[str, Any]:
    """Merge ``stages/*.metrics.json`` (in stage order) into ``metrics.json`` and return it.

    The stages' ``*.timings.json`` are merged into ``timings.json`` beside it; ``metrics.json``
    itself holds no wall times, so the same scenario writes the same file byte for byte.
    """
    out_dir = Path(out_dir)
    metrics: dict[str, Any] = {"scenario": out_dir.name, "status": status, "error": error}
    timings: dict[str, Any] = {}
    stage_dir = out_dir / "stages"
    ran = []
    for stage in STAGE_ORDER:
        f = stage_dir / f"{stage}.metrics.json"
        if f.exists():
            metrics.update(json.loads(f.read_text(encoding="utf-8")))
            ran.append(stage)
        t = stage_dir / f"{stage}.timings.json"
        if t.exists():
            timings.update(json.loads(t.read_text(encoding="utf-8")))
    metrics["stages_run"] = ",".join(ran)
    atomic_write_text(out_dir / "metrics.json", json.dumps(_jsonable(metrics), indent=2, sort_keys=True))
    if timings:
        atomic_write_text(out_dir / "timings.json", json.dumps(_jsonable(timings), indent=2, sort_keys=True))
    return metrics


def write_summary(batch_dir: str | Path, records: list[dict[str, Any]]) -> Path:
    """Write ``summary.parquet``: one row per scenario, columns the union of all metrics."""
    df = pd.DataFrame.from_records([_jsonable(r) for r in records])
    if "scenario" in df:
        df = df.set_index("scenario")
    for col in df.columns:  # parquet needs one type per column; mixed object columns become text
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col].dropna()}
            if kinds and not kinds <= {str}:
                if kinds <= {int, float, bool, np.float64}:
                    df[col] = pd.to_numeric(df[col], errors="coerce")
                else:
                    df[col] = df[col].map(lambda v: None if v is None else str(v))
    return atomic_write_parquet(df, Path(batch_dir) / "summary.parquet")
