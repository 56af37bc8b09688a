"""The analysts' API: a batch's results as DataFrames with a ``scenario`` index level.

>>> from salesops_models.workflow.collect import load_metrics, load_table
>>> metrics = load_metrics("results/20261126-190102-3fa9")          # one row per scenario
>>> quotas = load_table("results/20261126-190102-3fa9", "quotas")   # index (scenario, row)
>>> quotas.groupby(level="scenario")["quota"].sum()

Scenarios are the sub-folders of the batch folder that hold a ``scenario.resolved.yaml``; a failed
scenario has a row in :func:`load_metrics` (status ``failed`` and its error) and no rows in the
tables it never wrote.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from salesops_models.errors import SalesopsError

log = logging.getLogger(__name__)


def _batch_path(batch_dir: str | os.PathLike[str]) -> Path:
    path = Path(batch_dir).expanduser()
    if not path.is_dir():
        raise SalesopsError(
            f"{path}: not a batch folder; pass results/<batch-id> as written by 'salesops batch' "
            "(it holds one sub-folder per scenario)."
        )
    return path


def scenario_dirs(batch_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Scenario name -> results folder, in name order, for every scenario of the batch.

    Parameters
    ----------
    batch_dir
        ``results/<batch-id>``.
    """
    path = _batch_path(batch_dir)
    out = {}
    for d in sorted(p for p in path.iterdir() if p.is_dir()):
        if (d / "scenario.resolved.yaml").exists() or (d / "metrics.json").exists():
            out[d.name] = d
    return out


def read_metrics_file(out_dir: Path) -> dict[str, Any]:
    """``metrics.json`` of one scenario; when it is missing, the merged ``stages/*.metrics.json``."""
    f = out_dir / "metrics.json"
    if f.exists():
        return json.loads(f.read_text(encoding="utf-8"))
    metrics: dict[str, Any] = {"scenario": out_dir.name, "status": "unknown", "error": "metrics.json missing"}
    for stage_file in sorted((out_dir / "stages").glob("*.metrics.json")):
        metrics.update(json.loads(stage_file.read_text(encoding="utf-8")))
    return metrics


def stage_metrics(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The metrics of every stage that has run in ``out_dir`` (``stages/*.metrics.json``, stage order)."""
    from salesops_models.workflow.context import STAGE_ORDER

    out: dict[str, Any] = {}
    for stage in STAGE_ORDER:
        f = Path(out_dir) / "stages" / f"{stage}.metrics.json"
        if f.exists():
            out.update(json.loads(f.read_text(encoding="utf-8")))
    return out


def load_metrics(batch_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Headline metrics, one row per scenario (index ``scenario``), one column per metric.

    Reads ``summary.parquet`` when it exists (written at the end of a batch), else every
    scenario's ``metrics.json``. Columns: ``status`` (``ok``/``failed``), ``error`` and the stage
    metrics named in docs/STAGES.md (a metric a scenario did not produce is NaN/None).
    """
    path = _batch_path(batch_dir)
    summary = path / "summary.parquet"
    if summary.exists():
        df = pd.read_parquet(summary)
        if df.index.name != "scenario" and "scenario" in df.columns:
            df = df.set_index("scenario")
        return df
    records = [read_metrics_file(d) | {"scenario": name} for name, d in scenario_dirs(path).items()]
    if not records:
        return pd.DataFrame(index=pd.Index([], name="scenario"))
    return pd.DataFrame.from_records(records).set_index("scenario")


def load_table(
    batch_dir: str | os.PathLike[str], table: str, scenarios: list[str] | None = None
) -> pd.DataFrame:
    """One Parquet table of every scenario, stacked with ``scenario`` as the outer index level.

    Parameters
    ----------
    batch_dir
        ``results/<batch-id>``.
    table
        Table name from docs/STAGES.md, e.g. ``quotas``, ``forecast``, ``comp_cost_samples``.
    scenarios
        Only these scenarios (default: all that wrote the table).

    Returns
    -------
    pandas.DataFrame
        Index ``(scenario, <the table's own index>)``; empty with the ``scenario`` level when no
        scenario wrote the table.
    """
    if not table.replace("_", "").replace("-", "").isalnum():
        raise SalesopsError(f"table name {table!r}: letters, digits, '_' or '-' only (e.g. 'quotas').")
    frames = {}
    for name, d in scenario_dirs(batch_dir).items():
        if scenarios is not None and name not in scenarios:
            continue
        f = d / f"{table}.parquet"
        if f.exists():
            frames[name] = pd.read_parquet(f)
    if not frames:
        log.info("no scenario of %s wrote table %s", batch_dir, table)
        return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], []], names=["scenario", None]))
    return pd.concat(frames, names=["scenario"])


def load_changes(batch_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """What each scenario changed versus its base: ``changes.json`` of every scenario (see ``batch``)."""
    out = {}
    for name, d in scenario_dirs(batch_dir).items():
        f = d / "changes.json"
        out[name] = json.loads(f.read_text(encoding="utf-8")) if f.exists() else {"base": None, "changes": []}
    return out
