"""Shared fixtures. Tests that read ../shared/benchmarks carry ``@pytest.mark.benchmarkdata``."""

from __future__ import annotations

import os

import pytest

from salesops_models.testing import benchmarks_dir, benchmarks_required

os.environ.setdefault("MPLBACKEND", "agg")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if benchmarks_dir().is_dir():
        return
    reason = f"benchmark data not found at {benchmarks_dir()} (set SALESOPS_BENCHMARKS to the shared/benchmarks folder)"
    if benchmarks_required():
        raise pytest.UsageError(f"SALESOPS_REQUIRE_BENCHMARKS is set but {reason}")
    for item in items:
        if "benchmarkdata" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def bench_dir():
    return benchmarks_dir()


@pytest.fixture(scope="session")
def maven(bench_dir):
    from salesops_models.data import load_crm_export

    return load_crm_export(bench_dir / "crm" / "maven_crm_sales_opportunities", "maven")


@pytest.fixture(scope="session")
def sample_company():
    from salesops_models.data import generate_sample_company

    return generate_sample_company()


@pytest.fixture(scope="session")
def small_company():
    from salesops_models.data import generate_sample_company

    return generate_sample_company(seed=3, n_accounts=150, n_reps=6, n_regions=2, years=2)
