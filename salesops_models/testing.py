"""Helpers shared by the tests and the benchmark scripts (no test framework imports here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def benchmarks_dir() -> Path:
    """The shared benchmark data folder: ``$SALESOPS_BENCHMARKS``, default ``<repo>/../shared/benchmarks``."""
    env = os.environ.get("SALESOPS_BENCHMARKS")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "benchmarks").resolve()


def benchmarks_required() -> bool:
    """True in CI: missing benchmark data must fail the run instead of skipping tests."""
    return os.environ.get("SALESOPS_REQUIRE_BENCHMARKS", "") not in ("", "0", "false")


@contextmanager
def threaded_dask_client(n_workers: int = 1, threads_per_worker: int = 2) -> Iterator[Any]:
    """A ``dask.distributed.Client`` on an in-process cluster, for checks that results do not depend on it.

    Threads, not processes (fast to start, nothing left behind); no dashboard, and the scheduler's
    side server on a free port: 8787 may belong to another engineer's cluster on a shared machine.
    """
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=False,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def tiny_scenario(name: str, **sections: Any) -> dict[str, Any]:
    """A scenario document of a 60-account, 4-rep company whose full run takes seconds.

    Each keyword replaces one whole section (e.g. ``compensation={"n_trials": 150, "plans": [...]}``).
    """
    doc: dict[str, Any] = {
        "name": name,
        "seed": 5,
        "plan_year": 2026,
        "data": {"sample": {"seed": 3, "n_accounts": 60, "n_reps": 4, "n_regions": 2, "years": 2}},
        "territory": {"time_limit": 60, "mip_gap": 0.0, "heuristic_seconds": 0.2},
        "forecast": {"backtest_folds": 1},
        "pipeline": {"trials": 80, "block_size": 40},
        "quota": {"growth_max": 2.0},
        "compensation": {"n_trials": 150},
    }
    doc.update(sections)
    return doc
