"""Helpers shared by the tests and the benchmark scripts (no test framework imports here)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def benchmarks_dir() -> Path:
    """The shared benchmark data folder: ``$SALESOPS_BENCHMARKS``, default ``<repo>/../shared/benchmarks``."""
    env = os.environ.get("SALESOPS_BENCHMARKS")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "benchmarks").resolve()


def benchmarks_required() -> bool:
    """True in CI: missing benchmark data must fail the run instead of skipping tests."""
    return os.environ.get("SALESOPS_REQUIRE_BENCHMARKS", "") not in ("", "0", "false")
