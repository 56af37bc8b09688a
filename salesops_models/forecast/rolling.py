"""Rolling-origin backtest of a whole forecast hierarchy: forecasts against actuals at every level.

:func:`backtest_hierarchy` refits the hierarchy at a few origins before the end of the history,
reconciles as the plan-year forecast does, and scores each node's forecast against what happened
(:func:`~salesops_models.forecast.metrics.accuracy_by_series`). :func:`accuracy_by_level` averages the
scores per level: the figures a planner reads next to the forecast.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.forecast.hierarchy import Hierarchy, forecast_hierarchy
from salesops_models.forecast.metrics import accuracy_by_series


def backtest_origins(
    n_months: int, horizon: int, folds: int, step: int, min_train: int
) -> tuple[int, list[int]]:
    """The horizon used and the training lengths of each fold (oldest first) [months].

    The horizon is at most a third of the history; origins closer to the start than ``min_train``
    months are dropped.
    """
    h = min(horizon, max(n_months // 3, 1))
    origins = [n_months - h - (folds - 1 - k) * step for k in range(folds)]
    return h, [t for t in origins if t >= min_train]


def backtest_hierarchy(
    panel: pd.DataFrame,
    hierarchy: Hierarchy,
    *,
    horizon: int,
    folds: int,
    step: int,
    season_length: int,
    method: str,
    model: Any,
    nonnegative: bool = True,
    n_jobs: int = 1,
    seed: int = 0,
    interval_options: Mapping[str, Any] | None = None,
    client: Any = None,
    timings: dict[str, float] | None = None,
    bound_factor: float = 10.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecasts of every node at rolling origins, against the actuals, with accuracy per node and fold.

    Parameters
    ----------
    panel
        Bottom series by month (:func:`~salesops_models.forecast.panel.monthly_panel`) [currency/month].
    hierarchy
        The hierarchy over the panel's columns.
    horizon, folds, step
        Months forecast per fold, number of folds and months between origins.
    season_length
        Seasonal period [months]; also the least training length (with 6).
    method
        Reconciliation method, or ``"none"`` for base forecasts.
    model
        Model name, or a mapping level -> model name.
    interval_options
        How intervals are made at each origin (``interval_method``, ``calibration_source``,
        ``calibration_origins_count``, ``calibration_method`` of
        :func:`~salesops_models.forecast.hierarchy.forecast_hierarchy`); each origin calibrates on
        its own training part only.
    n_jobs, client
        Worker processes or a Dask client for the fits
        (:func:`~salesops_models.forecast.parallel.forecast_many`; the numbers do not depend on them).
    timings
        When given, the wall time of each phase is added to it: ``fit``, ``reconcile`` and ``score``
        [s] (reported only; no number depends on it).
    bound_factor
        As in :func:`~salesops_models.forecast.hierarchy.forecast_hierarchy` [-].

    Returns
    -------
    (backtest, accuracy)
        ``backtest``: one row per node, origin and step (``level, series, month, mean, q.., y,
        origin, step``); ``accuracy``: one row per node and origin (metrics of
        :func:`~salesops_models.forecast.metrics.accuracy_by_series`, ``level``, ``series``,
        ``origin``). Both empty when the history is too short for any fold.
    """
    h, origins = backtest_origins(len(panel), horizon, folds, step, max(season_length, 6))
    all_hist = hierarchy.aggregate(panel.to_numpy(float))
    node_pos = {
        (lv, s): i
        for i, (lv, s) in enumerate(zip(hierarchy.nodes["level"], hierarchy.nodes["series"], strict=True))
    }
    rows, acc = [], []
    for t in origins:
        res = forecast_hierarchy(
            panel.iloc[:t],
            hierarchy,
            h,
            model=model,
            season_length=season_length,
            methods=[] if method == "none" else [method],
            nonnegative=nonnegative,
            n_jobs=n_jobs,
            seed=seed,
            client=client,
            bound_factor=bound_factor,
            **(interval_options or {}),
        )
        scoring = time.perf_counter()
        rec = (res.reconciled[method] if method != "none" else res.base).copy()
        # actuals by array indexing (a .loc per row took seconds per thousand nodes)
        node = np.fromiter(
            (node_pos[(lv, s)] for lv, s in zip(rec["level"], rec["series"], strict=True)), int, len(rec)
        )
        month = pd.PeriodIndex(rec["period"]).asi8 - panel.index[t].ordinal
        rec["y"] = all_hist[t + month, node]
        rec["origin"] = str(panel.index[t - 1])
        rec["step"] = rec.groupby(["level", "series"]).cumcount() + 1
        rec["node"] = rec["level"] + "|" + rec["series"]
        hist = {f"{lv}|{s}": all_hist[:t, i] for (lv, s), i in node_pos.items()}
        per = accuracy_by_series(rec, hist, season_length, series_col="node")
        per["origin"] = str(panel.index[t - 1])
        acc.append(per)
        rows.append(rec.drop(columns=["node"]))
        if timings is not None:
            for phase, seconds in (*res.timings.items(), ("score", time.perf_counter() - scoring)):
                timings[phase] = timings.get(phase, 0.0) + seconds
    if not rows:
        return pd.DataFrame(), pd.DataFrame()
    bt = pd.concat(rows, ignore_index=True)
    bt["month"] = bt["period"].map(lambda p: p.to_timestamp())
    bt = bt.drop(columns=["period", "method"], errors="ignore")
    accuracy = pd.concat(acc, ignore_index=True)
    accuracy[["level", "series"]] = accuracy["node"].str.split("|", n=1, expand=True)
    return bt, accuracy.drop(columns=["node"])


def accuracy_by_level(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Mean of each accuracy metric per level over series and folds (one row per level, top first)."""
    return (
        accuracy.drop(columns=["series", "origin"])
        .groupby("level", sort=False)
        .mean(numeric_only=True)
        .reset_index()
    )
