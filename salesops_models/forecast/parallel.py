"""Forecast many series: in-process, over a process pool or on a Dask cluster, with the same results.

Two steps (:mod:`~salesops_models.forecast.forecaster`): every series is fitted independently
(:func:`~salesops_models.forecast.forecaster.fit_series`, the expensive part, spread over workers in
chunks), then the intervals are calibrated from the pooled rolling-origin errors in input order in
the calling process (:func:`~salesops_models.forecast.forecaster.finish_forecasts`). Seeds derive
from each series' position (:func:`series_seed`), the compiled kernels are deterministic, and the
pool is assembled in input order, so the numbers are identical for any number of workers or chunks.

``n_jobs=1`` runs in the calling process: use it inside Dask workers, whose daemonic processes cannot
start a process pool (dask/distributed#2142); a daemonic caller is detected and falls back to it.
With a Dask ``client`` the fits run as Dask tasks (one per chunk) on that cluster instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.forecast.base import DEFAULT_SEED
from salesops_models.forecast.forecaster import FittedSeries, SeriesForecast, finish_forecasts, fit_series

log = logging.getLogger(__name__)

#: Series per task when work is spread over processes or Dask workers (results do not depend on it).
DEFAULT_CHUNK = 64

Task = tuple[str, Any, int, dict[str, Any]]


def series_seed(seed: int | None, position: int) -> int:
    """Seed of the series at ``position``: child ``position`` of ``seed`` (independent of workers).

    ``seed=None`` uses :data:`~salesops_models.forecast.base.DEFAULT_SEED`, so that an unseeded
    call still gives the same numbers on every run.
    """
    master = DEFAULT_SEED if seed is None else seed
    return int(np.random.SeedSequence(master, spawn_key=(position,)).generate_state(1)[0])


def _fit_chunk(tasks: Sequence[Task]) -> list[FittedSeries]:
    """Fit a chunk of series (runs in a worker); fitted models are dropped (closures do not pickle)."""
    return [fit_series(y, h, name=name, keep_fitted=False, **kw) for name, y, h, kw in tasks]


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


def client_chunk(n_tasks: int, client: Any) -> int:
    """Series per Dask task: about four tasks per worker thread, at most :data:`DEFAULT_CHUNK`.

    Results do not depend on it; it only spreads a few dozen series over every worker as well as
    thousands.
    """
    workers = client.scheduler_info().get("workers", {})
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
    return max(1, min(DEFAULT_CHUNK, -(-n_tasks // (4 * threads))))


def _chunks(tasks: list[Task], size: int) -> list[list[Task]]:
    return [tasks[i : i + size] for i in range(0, len(tasks), size)]


def fit_many(
    histories: Mapping[str, pd.Series | np.ndarray],
    horizon: int | Mapping[str, int],
    *,
    model: str = "combination",
    season_length: int | Mapping[str, int] = 12,
    n_jobs: int = 1,
    client: Any = None,
    progress: bool = False,
    seed: int | None = None,
    keep_fitted: bool = False,
    chunksize: int | None = None,
    **kwargs: Any,
) -> list[FittedSeries]:
    """The first step of :func:`forecast_many`: every series fitted, with its rolling-origin errors.

    Parameters and seeds as in :func:`forecast_many`; the drafts come back in input order, for
    :func:`~salesops_models.forecast.forecaster.finish_forecasts` (which may be called more than once,
    e.g. with different ``calibration_method``: the point forecasts stay the same).
    """
    from tqdm.auto import tqdm

    names = list(histories)
    tasks: list[Task] = []
    for i, name in enumerate(names):
        h = horizon[name] if isinstance(horizon, Mapping) else horizon
        m = season_length[name] if isinstance(season_length, Mapping) else season_length
        kw = {"model": model, "season_length": m, "seed": series_seed(seed, i), **kwargs}
        tasks.append((name, histories[name], int(h), kw))
    jobs = 1 if client is not None else min(effective_jobs(n_jobs), max(len(tasks), 1))
    bar = tqdm(total=len(tasks), desc=f"forecast ({model})", disable=not progress, unit="series")
    drafts: list[FittedSeries] = []
    try:
        if client is not None:
            from dask.base import tokenize
            from distributed import as_completed

            chunks = _chunks(tasks, chunksize or client_chunk(len(tasks), client))
            # keys from the chunks' content (histories, horizons, settings, seeds): two calls with the
            # same model and sizes but other data (rolling origins) must never share a key and result
            futures = [client.submit(_fit_chunk, chunk, key=f"forecast-fit-{tokenize(chunk)}") for chunk in chunks]
            done: dict[int, list[FittedSeries]] = {}
            position = {f.key: i for i, f in enumerate(futures)}
            for fut in as_completed(futures):
                done[position[fut.key]] = fut.result()
                bar.update(len(done[position[fut.key]]))
            for i in range(len(chunks)):
                drafts.extend(done[i])
        elif jobs == 1:
            for name, y, h, kw in tasks:
                drafts.append(fit_series(y, h, name=name, keep_fitted=keep_fitted, **kw))
                bar.update()
        else:
            size = chunksize or max(1, min(DEFAULT_CHUNK, len(tasks) // (jobs * 4) or 1))
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for part in pool.map(_fit_chunk, _chunks(tasks, size)):
                    drafts.extend(part)
                    bar.update(len(part))
    finally:
        bar.close()
    return drafts


def forecast_many(
    histories: Mapping[str, pd.Series | np.ndarray],
    horizon: int | Mapping[str, int],
    *,
    keep_errors: bool = False,
    **kwargs: Any,
) -> dict[str, SeriesForecast]:
    """Run :func:`~salesops_models.forecast.forecaster.forecast_series` on every series, errors pooled.

    Parameters
    ----------
    histories
        Series by name [unit/period].
    horizon, season_length
        One value for all series or one per series [periods].
    n_jobs
        Worker processes (``-1``: all cores; ``1``: in-process, for Dask workers and notebooks).
    client
        A ``dask.distributed.Client``: fit the chunks as tasks on its cluster (``n_jobs`` is then
        ignored).
    progress
        Show a tqdm progress bar.
    seed
        Master seed; series ``i`` gets child ``i`` (:func:`series_seed`).
    keep_fitted
        Keep the fitted model objects (only in-process, ``n_jobs=1`` without a client).
    keep_errors
        Keep each series' rolling-origin errors (``SeriesForecast.rolling_errors``).
    chunksize
        Series per task for processes and Dask (default: about four tasks per worker, at most
        :data:`DEFAULT_CHUNK`; see :func:`client_chunk`).
    kwargs
        The other parameters of :func:`fit_many` (``model``, ``season_length`` (default 12),
        ``n_jobs``, ``client``, ``progress``, ``seed``, ``keep_fitted``, ``chunksize``; defaults as
        there), and those passed on to ``forecast_series`` (``levels``, ``nonnegative``,
        ``bound_factor``, ``fallback``, ``interval_method``, ``calibration_source``,
        ``calibration_origins_count``, ``calibration_method``).

    Returns
    -------
    dict
        :class:`~salesops_models.forecast.forecaster.SeriesForecast` by series name, in input order.
        With ``interval_method="calibrated"`` (default) the quantiles of every series come from the
        rolling-origin errors of all of them (:mod:`~salesops_models.forecast.intervals`).
    """
    drafts = fit_many(histories, horizon, **kwargs)
    results = finish_forecasts(drafts, keep_errors=keep_errors)
    return {r.series: r for r in results}
