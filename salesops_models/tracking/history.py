"""The history of tracking runs of one plan: one new folder per run, never overwritten.

```
results/<batch>/<scenario>/tracking/        (or the folder given with --out)
  2026-06-30_20261130-061502-3fa9/          <as-of>_<UTC time>-<random>: a run
    report.html, tracking_summary.json, *.parquet, changes.yaml
  2026-07-31_.../
```

A run folder is created exclusively (``mkdir`` without ``exist_ok``) and its
``tracking_summary.json`` is written last, atomically: a folder without it is a run that did not
finish, and the trend leaves it out.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path
from typing import Any

import pandas as pd

from salesops_models.errors import TrackingError
from salesops_models.safe_io import atomic_write_text

SUMMARY = "tracking_summary.json"


def tracking_root(plan_dir: Path, out: Path | None = None) -> Path:
    """Folder holding a plan's tracking runs: ``out``, else ``<plan_dir>/tracking``."""
    return Path(out) if out is not None else Path(plan_dir) / "tracking"


def new_run_dir(root: Path, as_of: pd.Timestamp) -> Path:
    """Create ``root/<as-of>_<UTC time>-<random>`` and return it; an existing folder is never reused."""
    root.mkdir(parents=True, exist_ok=True)
    name = f"{pd.Timestamp(as_of):%Y-%m-%d}_{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    path = root / name
    try:
        path.mkdir()
    except FileExistsError:
        raise TrackingError(f"{path} already exists; a tracking run never overwrites another.") from None
    return path


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``
    (``safe_io.atomic_write_text``, the one atomic writer)."""
    return atomic_write_text(path, text)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write the run's ``tracking_summary.json`` (last: it marks the run complete)."""
    return write_atomic(run_dir / SUMMARY, json.dumps(summary, indent=2, sort_keys=True, default=_plain))


def _plain(v: Any) -> Any:
    if isinstance(v, pd.Timestamp | dt.date):
        return str(pd.Timestamp(v).date())
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def earlier_runs(root: Path, exclude: Path | None = None) -> list[dict[str, Any]]:
    """Summaries of the finished runs under ``root`` (with ``run_dir``), by as-of date then run time."""
    if not root.is_dir():
        return []
    runs = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if exclude is not None and d.resolve() == exclude.resolve():
            continue
        f = d / SUMMARY
        if not f.is_file():
            continue
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and "as_of" in doc:
            doc["run_dir"] = d
            runs.append(doc)
    return sorted(runs, key=lambda r: (str(r["as_of"]), r["run_dir"].name))
