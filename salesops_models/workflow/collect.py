"""The analysts' API: a batch's results as DataFrames with a ``scenario`` index level.

>>> from salesops_models.workflow.collect import load_metrics, load_table
>>> metrics = load_metrics("results/20261126-190102-3fa9")          # one row per scenario
>>> quotas = load_table("results/20261126-190102-3fa9", "quotas")   # index (scenario, row)
>>> quotas.groupby(level="scenario")["quota"].sum()

Scenarios are the sub-folders of the batch folder that hold a ``scenario.resolved.yaml``; a failed
scenario has a row in :func:`load_metrics` (status ``failed`` and its error) and no rows in the
tables it never wrote.

A batch may have been killed at any moment: every result file is written atomically (whole or
absent), and the readers here never raise on a missing or damaged file. A scenario's status is
``ok`` or ``failed`` (from its ``metrics.json``), ``partial`` (it started, but its
``metrics.json`` is missing or damaged: interrupted) or ``not run`` (it never started).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from salesops_models.errors import SalesopsError
from salesops_models.safe_io import read_text

log = logging.getLogger(__name__)

STATUS_PARTIAL = "partial"
STATUS_NOT_RUN = "not run"
STATUSES = ("ok", "failed", STATUS_PARTIAL, STATUS_NOT_RUN)
_MAX_JSON_BYTES = 64 << 20  # a metrics file is a few KB; anything huge is not ours [bytes]


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a results file, or None (with a warning) when it is missing or damaged."""
    if not path.exists():
        return None
    try:
        doc = json.loads(read_text(path, _MAX_JSON_BYTES, "results file"))
    except (SalesopsError, ValueError) as exc:
        log.warning("%s: damaged, ignored (%s)", path, str(exc).splitlines()[0][:200])
        return None
    if not isinstance(doc, dict):
        log.warning("%s: not a JSON object, ignored", path)
        return None
    return doc


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
    """``metrics.json`` of one scenario; when it is missing or damaged, the merged stage metrics and
    the status ``partial`` (the scenario started) or ``not run`` (it never started)."""
    doc = read_json(out_dir / "metrics.json")
    if doc is not None and doc.get("status") in ("ok", "failed"):
        return doc
    metrics: dict[str, Any] = {"scenario": out_dir.name}
    done = stage_metrics(out_dir)
    metrics.update(done)
    started = any((out_dir / sub).is_dir() for sub in ("stages", "logs", "notebooks"))
    damaged = (out_dir / "metrics.json").exists()
    if started or damaged:
        from salesops_models.workflow.context import STAGE_ORDER

        ran = [st for st in STAGE_ORDER if (out_dir / "stages" / f"{st}.metrics.json").exists()]
        metrics["stages_run"] = ",".join(ran)
        metrics["status"] = STATUS_PARTIAL
        metrics["error"] = (
            ("metrics.json is damaged" if damaged else "interrupted before it finished")
            + f"; stages with results: {', '.join(ran) if ran else 'none'}. Run the scenario again."
        )
    else:
        metrics["status"] = STATUS_NOT_RUN
        metrics["error"] = "not run: the batch stopped before this scenario started."
    return metrics


def stage_metrics(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The metrics of every stage that has run in ``out_dir`` (``stages/*.metrics.json``, stage order)."""
    from salesops_models.workflow.context import STAGE_ORDER

    out: dict[str, Any] = {}
    for stage in STAGE_ORDER:
        doc = read_json(Path(out_dir) / "stages" / f"{stage}.metrics.json")
        if doc is not None:
            out.update(doc)
    return out


def read_summary(batch_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """``summary.parquet`` indexed by scenario, or None (with a warning) when missing or damaged."""
    summary = Path(batch_dir) / "summary.parquet"
    if not summary.exists():
        return None
    try:
        df = pd.read_parquet(summary)
    except Exception as exc:  # pyarrow raises several types for a truncated file
        log.warning("%s: damaged, rebuilt from the scenarios' metrics.json (%s)", summary, type(exc).__name__)
        return None
    if df.index.name != "scenario" and "scenario" in df.columns:
        df = df.set_index("scenario")
    return df


def load_metrics(batch_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Headline metrics, one row per scenario (index ``scenario``), one column per metric.

    Reads ``summary.parquet`` (rewritten after every finished scenario) and, for every scenario it
    lacks or when it is damaged, the scenario's own files (:func:`read_metrics_file`). Columns:
    ``status`` (one of :data:`STATUSES`), ``error`` and the stage metrics named in docs/STAGES.md
    (a metric a scenario did not produce is NaN/None).
    """
    path = _batch_path(batch_dir)
    summary = read_summary(path)
    known = set() if summary is None else set(map(str, summary.index))
    records = [
        read_metrics_file(d) | {"scenario": name} for name, d in scenario_dirs(path).items() if name not in known
    ]
    extra = pd.DataFrame.from_records(records).set_index("scenario") if records else None
    frames = [f for f in (summary, extra) if f is not None]
    if not frames:
        return pd.DataFrame(index=pd.Index([], name="scenario"))
    df = pd.concat(frames) if len(frames) > 1 else frames[0]
    df.index.name = "scenario"
    return df


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
        out[name] = read_json(d / "changes.json") or {"base": None, "changes": []}
    return out


# ------------------------------------------------------------------------------------------------
# One scenario's results, as the scenario report and the exports read them
# ------------------------------------------------------------------------------------------------

#: What the report and the exports read: their own name -> the table's file name (``<name>.parquet``
#: in the scenario folder). A stage that renames a table changes one line here.
TABLES: dict[str, str] = {
    "assignments": "assignments",
    "territories": "territories",
    "territory_diagnosis": "territory_diagnosis",
    "territory_relaxation": "territory_relaxation",
    "territory_tradeoff": "territory_tradeoff",
    "territory_new_reps": "territory_new_reps",
    "forecast": "forecast",
    "forecast_reconciled": "forecast_reconciled",
    "forecast_accuracy": "forecast_backtest_accuracy",
    "forecast_models": "forecast_models",
    "bookings_samples": "rep_bookings_samples",
    "bookings_by_quarter_samples": "rep_bookings_by_quarter_samples",
    "pipeline_summary": "pipeline_summary",
    "pipeline_by_month": "pipeline_by_month",
    "pipeline_capacity": "pipeline_capacity_summary",
    "pipeline_creation": "pipeline_creation",
    "quotas": "quotas",
    "quotas_by_period": "quotas_by_period",
    "quota_fairness": "quota_fairness",
    "quota_capacity": "quota_capacity",
    "quota_relief": "quota_relief",
    "payouts": "payouts_summary",
    "cost_samples": "comp_cost_samples",
    "cost_samples_by_plan": "comp_cost_samples_by_plan",
    "plan_comparison": "comp_plan_comparison",
    "cost_by_quartile": "comp_cost_by_quartile",
    "traces": "comp_traces",
    "kpi_overall": "kpi_overall",
    "kpi_by_rep": "kpi_by_rep",
    "kpi_by_quarter": "kpi_by_quarter",
}

#: Which stage writes each table (for "why is this missing" notes); a test holds it to the stage
#: contracts (salesops_models.workflow.contracts).
TABLE_STAGE: dict[str, str] = {
    **dict.fromkeys(
        ["assignments", "territories", "territory_diagnosis", "territory_relaxation", "territory_tradeoff",
         "territory_new_reps"], "territory"),
    **dict.fromkeys(["forecast", "forecast_accuracy", "forecast_models"], "forecast"),
    "forecast_reconciled": "reconcile",
    **dict.fromkeys(
        ["bookings_samples", "bookings_by_quarter_samples", "pipeline_summary", "pipeline_by_month",
         "pipeline_capacity", "pipeline_creation"], "pipeline"),
    **dict.fromkeys(["quotas", "quotas_by_period", "quota_fairness", "quota_capacity", "quota_relief"], "quota"),
    **dict.fromkeys(
        ["payouts", "cost_samples", "cost_samples_by_plan", "plan_comparison", "cost_by_quartile", "traces"],
        "compensation"),
    **dict.fromkeys(["kpi_overall", "kpi_by_rep", "kpi_by_quarter"], "data"),
}  # fmt: skip


class ScenarioResults:
    """Read-only access to one scenario's results folder that never raises for a missing piece.

    A missing table is ``None``; an unreadable one is ``None`` too and leaves a one-line entry in
    :attr:`problems`, so a report of a partial or damaged scenario still renders.

    Parameters
    ----------
    out_dir
        The scenario's results folder.
    status, error
        Override the status and error of ``metrics.json`` (a batch renders the report before it
        merges the metrics).
    """

    def __init__(
        self, out_dir: str | os.PathLike[str], status: str | None = None, error: str | None = None
    ) -> None:
        self.out_dir = Path(out_dir)
        self.problems: list[str] = []
        self._tables: dict[str, pd.DataFrame | None] = {}
        self._derived: dict[str, Any] = {}
        self.metrics = self._read_metrics()
        self.timings = self._read_timings()
        if status is not None:
            self.metrics["status"], self.metrics["error"] = status, error
        self.resolved = self._read_resolved()

    @property
    def name(self) -> str:
        return str(self.resolved.get("name") or self.out_dir.name)

    @property
    def status(self) -> str:
        return str(self.metrics.get("status") or "unknown")

    def _read_metrics(self) -> dict[str, Any]:
        try:
            if (self.out_dir / "metrics.json").exists():
                return dict(read_metrics_file(self.out_dir))
            return {"status": "unknown", "error": None} | stage_metrics(self.out_dir)
        except (OSError, ValueError) as exc:  # a truncated JSON is a ValueError
            self.problems.append(f"metrics: cannot read ({type(exc).__name__}: {exc})")
            return {"status": "unknown", "error": None}

    def _read_timings(self) -> dict[str, Any]:
        """Wall times of the stages [s] (``timings.json``, else ``stages/*.timings.json``); {} when absent."""
        try:
            f = self.out_dir / "timings.json"
            if f.exists():
                return dict(json.loads(f.read_text(encoding="utf-8")))
            out: dict[str, Any] = {}
            for t in sorted((self.out_dir / "stages").glob("*.timings.json")):
                out.update(json.loads(t.read_text(encoding="utf-8")))
            return out
        except (OSError, ValueError) as exc:
            self.problems.append(f"timings: cannot read ({type(exc).__name__}: {exc})")
            return {}

    def _read_resolved(self) -> dict[str, Any]:
        import yaml

        f = self.out_dir / "scenario.resolved.yaml"
        if not f.exists():
            return {}
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            self.problems.append(f"{f.name}: cannot read ({type(exc).__name__})")
            return {}
        return doc if isinstance(doc, dict) else {}

    def _read(self, path: Path, label: str) -> pd.DataFrame | None:
        if not path.exists():
            return None
        try:
            df = pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid, a ValueError
            self.problems.append(f"{label}: cannot read {path.name} ({type(exc).__name__}: {exc})")
            log.warning("%s: cannot read %s: %s", self.out_dir, path.name, exc)
            return None
        return df if len(df.columns) else None

    def table(self, key: str) -> pd.DataFrame | None:
        """The table the report calls ``key`` (see :data:`TABLES`), or None when it is missing."""
        if key not in self._tables:
            self._tables[key] = self._read(self.out_dir / f"{TABLES[key]}.parquet", TABLES[key])
        return self._tables[key]

    def derived(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()``, computed once per results object (the report and the statements both show
        e.g. the quarterly attainment risk; the tables it is built from are read once too)."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def company(self, name: str) -> pd.DataFrame | None:
        """A company table the scenario ran on (``data/<name>.parquet``: accounts, reps, ...), or None."""
        key = f"data/{name}"
        if key not in self._tables:
            self._tables[key] = self._read(self.out_dir / "data" / f"{name}.parquet", key)
        return self._tables[key]

    def stage_state(self, stage: str) -> str:
        """``ran``, ``disabled``, ``failed`` (the first stage that did not finish in a failed scenario)
        or ``not run``."""
        from salesops_models.workflow.context import STAGE_ORDER

        if self.metrics.get(f"{stage}_skipped"):
            return "disabled"
        if (self.out_dir / "stages" / f"{stage}.metrics.json").exists():
            return "ran"
        if self.status == "failed":
            done = [
                s
                for s in STAGE_ORDER
                if (self.out_dir / "stages" / f"{s}.metrics.json").exists()
                or self.metrics.get(f"{s}_skipped")
            ]
            pending = [s for s in STAGE_ORDER if s not in done]
            if pending and pending[0] == stage:
                return "failed"
        return "not run"
