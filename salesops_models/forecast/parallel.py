"""Forecast many series in parallel over processes, with a progress bar.

``n_jobs=1`` runs in the calling process: use it inside Dask workers, whose daemonic processes cannot
start a process pool (dask/distributed#2142). A daemonic caller is detected and falls back to it.
Seeds are derived from the series' position, so results do not depend on ``n_jobs``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.forecast.forecaster import SeriesForecast, forecast_series

log = logging.getLogger(__name__)


def series_seed(seed: int | None, position: int) -> int | None:
    """Seed of the series at ``position``: child ``position`` of ``seed`` (independent of workers)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence(seed, spawn_key=(position,)).generate_state(1)[0])


def _one(args: tuple[str, pd.Series, int, dict[str, Any]]) -> SeriesForecast:
    name, y, horizon, kwargs = args
    out = forecast_series(y, horizon, name=name, **kwargs)
    out.fitted = None  # closures over statsmodels results do not cross process boundaries
    return out


def effective_jobs(n_jobs: int) -> int:
    """Workers actually used: ``-1`` means all cores; 1 inside daemonic processes (Dask workers)."""
    if multiprocessing.current_process().daemon and n_jobs != 1:
        log.info("running inside a daemonic process (e.g. a Dask worker): n_jobs=%d reduced to 1", n_jobs)
        return 1
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return n_jobs


def forecast_many(
    histories: Mapping[str, pd.Series | np.ndarray],
    horizon: int | Mapping[str, int],
    *,
    model: str = "combination",
    season_length: int | Mapping[str, int] = 12,
    n_jobs: int = 1,
    progress: bool = False,
    seed: int | None = None,
    keep_fitted: bool = False,
    chunksize: int | None = None,
    **kwargs: Any,
) -> dict[str, SeriesForecast]:
    """Run :func:`~salesops_models.forecast.forecaster.forecast_series` on every series.

    Parameters
    ----------
    histories
        Series by name [unit/period].
    horizon, season_length
        One value for all series or one per series [periods].
    n_jobs
        Worker processes (``-1``: all cores; ``1``: in-process, for Dask workers and notebooks).
    progress
        Show a tqdm progress bar.
    seed
        Master seed; series ``i`` gets child ``i`` (:func:`series_seed`).
    keep_fitted
        Keep the fitted model objects (only with ``n_jobs=1``; they cannot be pickled).
    kwargs
        Passed to ``forecast_series`` (``levels``, ``nonnegative``, ``bound_factor``, ``fallback``).

    Returns
    -------
    dict
        :class:`~salesops_models.forecast.forecaster.SeriesForecast` by series name, in input order.
    """
    from tqdm.auto import tqdm

    names = list(histories)
    tasks = []
    for i, name in enumerate(names):
        h = horizon[name] if isinstance(horizon, Mapping) else horizon
        m = season_length[name] if isinstance(season_length, Mapping) else season_length
        kw = {"model": model, "season_length": m, "seed": series_seed(seed, i), **kwargs}
        tasks.append((name, histories[name], int(h), kw))
    jobs = min(effective_jobs(n_jobs), max(len(tasks), 1))
    bar = tqdm(total=len(tasks), desc=f"forecast ({model})", disable=not progress, unit="series")
    out: dict[str, SeriesForecast] = {}
    try:
        if jobs == 1:
            for task in tasks:
                res = forecast_series(task[1], task[2], name=task[0], **task[3])
                if not keep_fitted:
                    res.fitted = None
                out[task[0]] = res
                bar.update()
        else:
            size = chunksize or max(1, min(32, len(tasks) // (jobs * 8) or 1))
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for task, res in zip(tasks, pool.map(_one, tasks, chunksize=size), strict=True):
                    out[task[0]] = res
                    bar.update()
    finally:
        bar.close()
    return out
