"""The index page's sensitivity view of a batch's sweeps: which swept setting moves what.

For every sweep (``sweeps.json``, written by the batch; :mod:`salesops_models.sweep`) and every
headline metric, the children are grouped by the value of one swept key and the metric averaged
within each group (over the other keys' values, for a grid: a main effect); the range between the
lowest and the highest group mean is that key's bar in the tornado chart. The centre line is the
mean over all children that completed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from salesops_models.sweep import SWEEPS_FILE
from salesops_models.workflow.charts import distribution_overlay_chart, tornado_chart
from salesops_models.workflow.collect import ScenarioResults, scenario_dirs
from salesops_models.workflow.views import Column, Section, chart, figure, note, table

log = logging.getLogger(__name__)

#: metrics.json keys of the headline outputs, with their labels (the order of the panels)
HEADLINES: dict[str, str] = {
    "pipeline_bookings_p50": "Bookings P50",
    "comp_cost_p50": "Commission cost P50",
    "comp_cost_p90": "Commission cost P90",
    "comp_cost_of_sales": "Cost of sales (commission / bookings)",
    "comp_share_at_quota": "Share of reps at quota",
}


def load_sweeps(batch_dir: Path) -> dict[str, Any]:
    """``sweeps.json`` of a batch, or {} (no sweep, or an unreadable file: logged)."""
    path = Path(batch_dir) / SWEEPS_FILE
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable (%s); no sensitivity view", path, exc)
        return {}
    return doc if isinstance(doc, dict) else {}


def _value_label(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def sensitivity_ranges(metrics: pd.DataFrame, sweep: dict[str, Any]) -> pd.DataFrame:
    """One row per (metric, swept key): low/high group means, the values behind them, the swing.

    Parameters
    ----------
    metrics
        Headline metrics, one row per scenario (index: scenario name), with a ``status`` column.
    sweep
        One entry of ``sweeps.json``: ``keys``, ``base`` and ``children`` (name -> {key: value}).
    """
    children = sweep.get("children", {})
    ok = metrics.index[metrics.get("status", pd.Series("ok", index=metrics.index)).astype(str) == "ok"]
    names = [n for n in children if n in ok]
    if len(names) < 2:
        return pd.DataFrame()
    base = sweep.get("base", {})
    settings = pd.DataFrame(
        [{k: _value_label(children[n].get(k, base.get(k))) for k in sweep.get("keys", [])} for n in names],
        index=names,
    )
    rows = []
    for metric in HEADLINES:
        if metric not in metrics.columns:
            continue
        values = pd.to_numeric(metrics.loc[names, metric], errors="coerce")
        if values.notna().sum() < 2:
            continue
        centre = float(values.mean())
        for key in settings.columns:
            means = values.groupby(settings[key]).mean().dropna()
            if len(means) < 2:
                continue
            rows.append({
                "metric": metric, "label": HEADLINES[metric], "key": key, "centre": centre,
                "low": float(means.min()), "low_value": str(means.idxmin()),
                "high": float(means.max()), "high_value": str(means.idxmax()),
                "swing": float(means.max() - means.min()),
            })  # fmt: skip
    return pd.DataFrame(rows)


#: the outputs whose per-trial distributions the sweep overlays: label -> (table, samples of a table)
OVERLAYS: dict[str, tuple[str, Any]] = {
    "team bookings per trial, plan year": (
        "bookings_samples",
        lambda df: df.groupby("trial")["bookings"].sum().to_numpy(float) if {"trial", "bookings"} <= set(df) else None,
    ),
    "commission cost per trial (base + variable)": (
        "cost_samples",
        lambda df: df["total_cost"].to_numpy(float) if "total_cost" in df else None,
    ),
}


def sweep_distributions(batch_dir: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Output label -> child name -> its per-trial samples, for the children that wrote them."""
    dirs = scenario_dirs(Path(batch_dir))
    out: dict[str, dict[str, Any]] = {label: {} for label in OVERLAYS}
    for name in names:
        if name not in dirs:
            continue
        results = ScenarioResults(dirs[name])
        for label, (key, samples) in OVERLAYS.items():
            df = results.table(key)
            values = samples(df) if df is not None and len(df) else None
            if values is not None and len(values):
                out[label][name] = values
    return out


def sensitivity_section(batch_dir: Path, metrics: pd.DataFrame) -> Section | None:
    """The index's "Sensitivity" section: a tornado chart and a table per sweep; None without sweeps."""
    sweeps = load_sweeps(batch_dir)
    if not sweeps:
        return None
    s = Section(
        "sensitivity",
        "Sensitivity: what moves the outputs",
        intro="Each bar spans the lowest to the highest mean of a headline output over the child scenarios "
        "that share one value of a swept setting (averaged over the other swept settings); the line is the "
        "mean over all children. Widest bars move the output most.",
    )
    for name, sweep in sweeps.items():
        ranges = sensitivity_ranges(metrics, sweep)
        if ranges.empty:
            s.add(note(f"Sweep {name}: fewer than two child scenarios completed; nothing to compare."))
            continue
        n = len(sweep.get("children", {}))
        s.add(
            figure(f"Sweep {name}: {n} child scenarios", tornado_chart(ranges, HEADLINES, f"Sweep {name}")),
            table(
                ranges.sort_values(["metric", "swing"], ascending=[True, False]),
                [
                    Column("label", "output"),
                    Column("key", "swept setting"),
                    Column("low_value", "value at low"),
                    Column("low", "low", "num2"),
                    Column("high_value", "value at high"),
                    Column("high", "high", "num2"),
                    Column("swing", "swing", "num2"),
                ],
                id=f"sensitivity-{name}",
                caption=f"Sweep {name}: range of each headline output per swept setting.",
            ),
        )
        completed = [c for c in sweep.get("children", {}) if c in metrics.index]
        s.add(
            chart(
                f"Sweep {name}: every child's distribution",
                distribution_overlay_chart,
                sweep_distributions(batch_dir, completed),
                f"Sweep {name}",
                missing="no child scenario wrote rep_bookings_samples or comp_cost_samples.",
            )
        )
    return s
