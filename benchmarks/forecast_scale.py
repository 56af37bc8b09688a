"""The forecast at company scale: N rep x product series, forecast + rolling backtest + reconciliation.

Run through ``benchmarks/forecast.py --scale N [--workers K] [--products P] [--seed S]``.

The series come from the sample company's patterns (:mod:`salesops_models.data.scale`: won-deal
rates of its reps, product mix and deal sizes, seasonality and growth), N / P reps x P products,
with the hierarchy company > region > rep > rep x product. The model work is the forecast stage's
own (:func:`salesops_models.forecast.plan_year.forecast_with_backtest` with the default
``forecast:`` settings: model, MinT-shrink reconciliation, calibrated intervals, 2-fold rolling
backtest of 12 months), timed end to end and per phase. Printed: wall and CPU time, per-phase time,
peak memory (``VmHWM`` of this process and of each Dask worker), the
load average before and after. With ``--workers K > 1`` the fits run on a local Dask cluster of K
single-threaded worker processes; ``--compare-workers 1`` runs the whole thing again in-process and
prints whether every number (forecasts, quantiles, backtest) is identical.
"""

from __future__ import annotations

import cProfile
import io
import logging
import os
import pstats
import resource
import time
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.data import generate_sample_company
from salesops_models.data.scale import RepProductPanel, rep_product_patterns, scale_rep_product_panel
from salesops_models.forecast.config import ForecastConfig
from salesops_models.forecast.hierarchy import build_hierarchy
from salesops_models.forecast.plan_year import forecast_with_backtest

log = logging.getLogger("benchmarks.forecast_scale")

#: months forecast after the history (the plan year)
PLAN_MONTHS = 12


def _uptime() -> str:
    """What ``uptime`` prints (time and load averages), read without starting a process.

    A child process would spoil the memory figure: ``ru_maxrss`` of children counts a forked child
    at its parent's size.
    """
    one, five, fifteen = os.getloadavg()
    return f"{time.strftime('%H:%M:%S', time.gmtime())} UTC load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def _peak_mb() -> float:
    """Peak resident memory of the calling process [MB].

    ``VmHWM`` of ``/proc/self/status`` where there is one: ``ru_maxrss`` of a process started by fork
    and exec (a Dask worker) starts at its parent's size at the fork, ``VmHWM`` at its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_panel(n_series: int, n_products: int, seed: int) -> tuple[RepProductPanel, Any]:
    """The generated rep x product panel and its hierarchy (company > region > rep > rep x product)."""
    patterns = rep_product_patterns(generate_sample_company())
    data = scale_rep_product_panel(patterns, n_series, n_products=n_products, seed=seed)
    hierarchy = build_hierarchy(
        data.keys, RepProductPanel.LEVELS, RepProductPanel.LEVEL_NAMES, label="path", top_label="company"
    )
    print(
        f"generated {n_series} rep x product series ({n_series // n_products} reps x {n_products} products, "
        f"{data.keys['region'].nunique()} regions, {len(data.panel)} months, seed {seed}) from the sample "
        f"company: growth {patterns.yearly_growth:.1%}/yr, zero months {np.mean(data.panel.to_numpy() == 0):.0%}; "
        f"hierarchy {hierarchy.n} nodes",
        flush=True,
    )
    return data, hierarchy


def _run(data: RepProductPanel, hierarchy: Any, seed: int, client: Any) -> tuple[Any, pd.DataFrame, dict]:
    timings: dict[str, float] = {}
    fc, backtest, _ = forecast_with_backtest(
        data.panel, hierarchy, ForecastConfig(), PLAN_MONTHS, seed, client=client, timings=timings
    )
    return fc, backtest, timings


def _cluster(workers: int) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        silence_logs=logging.ERROR,
    )
    return cluster, Client(cluster)


def _warm_up(client: Any) -> float:
    """Load the compiled kernels once in this process (and every worker): not part of the timing [s]."""
    from salesops_models.forecast.parallel import forecast_many

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    toy = {
        str(i): pd.Series(rng.gamma(2.0, 1.0, 36), index=pd.period_range("2023-01", periods=36, freq="M"))
        for i in range(4)
    }
    kw = {"model": ForecastConfig().model, "season_length": 12}
    forecast_many(toy, 12, **kw)
    if client is not None:
        client.run(forecast_many, toy, 12, **kw)
    return time.perf_counter() - t0


def identical(a: tuple[Any, pd.DataFrame], b: tuple[Any, pd.DataFrame]) -> bool:
    """Every reconciled and base forecast value and every backtest row bit for bit the same."""
    (fa, ba), (fb, bb) = a, b
    try:
        pd.testing.assert_frame_equal(fa.base, fb.base, check_exact=True)
        for m in fa.reconciled:
            pd.testing.assert_frame_equal(fa.reconciled[m], fb.reconciled[m], check_exact=True)
        pd.testing.assert_frame_equal(ba, bb, check_exact=True)
    except AssertionError as exc:
        print(f"  first difference: {str(exc).splitlines()[0:3]}")
        return False
    return True


def run_scale(
    n_series: int,
    *,
    n_products: int = 10,
    workers: int = 1,
    compare_workers: int | None = None,
    seed: int = 0,
    profile: bool = False,
) -> dict[str, Any]:
    """Time the forecast stage's model work on ``n_series`` generated series; print and return the figures."""
    cfg = ForecastConfig()
    print(
        f"settings: the forecast stage's defaults: model {cfg.model}, reconciliation {cfg.reconciliation}, "
        f"intervals {cfg.interval_method} ({cfg.calibration_source}, {cfg.calibration_origins} origins), backtest "
        f"{cfg.backtest_folds} folds x {cfg.backtest_horizon} months every {cfg.backtest_step}; plan {PLAN_MONTHS} months"
    )
    t0 = time.perf_counter()
    data, hierarchy = make_panel(n_series, n_products, seed)
    generate_s = time.perf_counter() - t0
    cluster = client = None
    if workers > 1:
        cluster, client = _cluster(workers)
    try:
        warm = _warm_up(client)
        print(f"warm-up (compiled kernels loaded, not timed below): {warm:.1f} s", flush=True)
        load_before = _uptime()
        print(f"before: {load_before}", flush=True)
        prof = cProfile.Profile() if profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        fc, backtest, timings = _run(data, hierarchy, seed, client)
        if prof:
            prof.disable()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        load_after = _uptime()
        worker_mb = list(client.run(_peak_mb).values()) if client is not None else []
    finally:
        if client is not None:
            client.close()
            cluster.close()
    own = _peak_mb()
    out: dict[str, Any] = {
        "n_series": n_series,
        "n_nodes": hierarchy.n,
        "workers": workers,
        "seconds": wall,
        "cpu_seconds_main_process": cpu,
        "generate_seconds": generate_s,
        "phases": timings,
        "peak_rss_mb_main": own,
        "peak_rss_mb_workers": worker_mb,
        "load_before": load_before,
        "load_after": load_after,
        "plan_total": float(fc.reconciled[cfg.reconciliation].query("level == 'company'")["mean"].sum()),
    }
    print(f"\nforecast + backtest + reconciliation of {n_series} series ({hierarchy.n} nodes), {workers} worker(s):")
    print(f"  wall {wall:.1f} s ({wall / 60:.2f} min), CPU of the main process {cpu:.1f} s")
    for phase, s in timings.items():
        print(f"  {phase:<20} {s:8.1f} s")
    workers_text = f", Dask workers {', '.join(f'{m:.0f}' for m in worker_mb)} MB" if worker_mb else ""
    print(f"  peak RSS: main process {own:.0f} MB{workers_text}")
    print(f"  plan-year company total {out['plan_total']:,.0f}")
    print(f"  load: before [{load_before}]\n        after  [{load_after}]")
    if prof:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
        print(buf.getvalue())
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        print(buf.getvalue())
    if compare_workers is not None and compare_workers != workers:
        other_cluster = other_client = None
        if compare_workers > 1:
            other_cluster, other_client = _cluster(compare_workers)
        try:
            t1 = time.perf_counter()
            fc2, backtest2, _ = _run(data, hierarchy, seed, other_client)
            other_wall = time.perf_counter() - t1
        finally:
            if other_client is not None:
                other_client.close()
                other_cluster.close()
        same = identical((fc, backtest), (fc2, backtest2))
        out.update({"compare_workers": compare_workers, "compare_seconds": other_wall, "identical": same})
        print(
            f"  {workers} vs {compare_workers} worker(s): results {'IDENTICAL' if same else 'DIFFERENT'} "
            f"(the {compare_workers}-worker run took {other_wall:.1f} s; load now [{_uptime()}])"
        )
    return out
