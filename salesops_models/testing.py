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
