"""The forecast stage on a small sample company: tables, coherence, metrics, chart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.errors import DataValidationError
from salesops_models.forecast.panel import monthly_panel
from salesops_models.scenario import Scenario
from salesops_models.workflow.context import StageContext
from salesops_models.workflow.stages import forecast as stage

QCOLS = ["q05", "q10", "q25", "q50", "q75", "q90", "q95"]


@pytest.fixture(scope="module")
def small_company():
    from salesops_models.data.sample import generate_sample_company

    return generate_sample_company(seed=7, n_accounts=300, n_reps=8, n_regions=2)


@pytest.fixture(scope="module")
def stage_run(small_company, tmp_path_factory):
    out = tmp_path_factory.mktemp("forecast_stage")
    sc = Scenario(name="fc-test", plan_year=2026, forecast={"backtest_folds": 1})
    ctx = StageContext(sc, out, "forecast", {"company": small_company})
    metrics = stage.run(ctx)
    return ctx, metrics


def test_stage_writes_contract_tables_and_metrics(stage_run, small_company):
    ctx, metrics = stage_run
    fc = ctx.read_table("forecast")
    assert {"level", "series", "month", "model", "mean", *QCOLS} <= set(fc.columns)
    assert fc["model"].nunique() == 1  # one model name: downstream stages pick rows by it
    months = pd.to_datetime(fc["month"])
    assert months.dt.year.eq(2026).all() and months.nunique() == 12
    assert set(fc["level"]) == {"company", "region", "rep"}
    assert set(fc.loc[fc["level"] == "rep", "series"]) == set(small_company.reps["rep_id"].astype(str))
    for key in (
        "forecast_plan_year_total",
        "forecast_backtest_mape",
        "forecast_backtest_smape",
        "forecast_coverage90",
    ):
        assert key in metrics
    assert metrics["forecast_plan_year_total"] == pytest.approx(
        fc.loc[fc["level"] == "company", "mean"].sum()
    )
    assert 0.0 <= metrics["forecast_coverage90"] <= 1.0
    assert np.isfinite(metrics["forecast_backtest_mape"])
    assert ctx.has_table("forecast_backtest")
    assert ctx.figure_path("forecast_fan_chart").stat().st_size > 5_000


def test_stage_levels_add_up(stage_run, small_company):
    ctx, metrics = stage_run
    fc = ctx.read_table("forecast")
    piv = fc.pivot_table(index="month", columns="level", values="mean", aggfunc="sum")
    np.testing.assert_allclose(piv["region"], piv["company"], rtol=0, atol=1e-6 * piv["company"].abs().max())
    np.testing.assert_allclose(piv["rep"], piv["company"], rtol=0, atol=1e-6 * piv["company"].abs().max())
    region_of = small_company.reps.set_index("rep_id")["region"].astype(str)
    reps = fc[fc["level"] == "rep"].assign(region=lambda d: d["series"].map(region_of))
    by_region = reps.groupby(["month", "region"])["mean"].sum()
    regions = fc[fc["level"] == "region"].set_index(["month", "series"])["mean"]
    regions.index = regions.index.set_names(["month", "region"])
    np.testing.assert_allclose(by_region.sort_index(), regions.sort_index(), atol=1e-6 * regions.abs().max())
    assert metrics["forecast_coherence_error"] < 1e-6


def test_stage_quantiles_ordered_and_nonnegative(stage_run):
    ctx, _ = stage_run
    fc = ctx.read_table("forecast")
    q = fc[QCOLS].to_numpy()
    assert (np.diff(q, axis=1) >= -1e-6).all()
    assert (fc[["mean", *QCOLS]].to_numpy() >= 0).all()


def test_monthly_panel_fills_zero_months_and_drops_incomplete_month():
    bookings = pd.DataFrame(
        {
            "month": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-04-01", "2024-02-01"]),
            "rep_id": ["A", "A", "A", "B"],
            "region": ["N", "N", "N", "S"],
            "segment": ["x", "x", "x", "x"],
            "amount": [10.0, 30.0, 99.0, 5.0],
        }
    )
    reps = pd.DataFrame({"rep_id": ["A", "B", "C"], "region": ["N", "S", "S"]})
    panel, keys = monthly_panel(
        bookings, reps, ["company", "region", "rep"], pd.Timestamp("2024-04-15"), 3
    )
    assert list(panel.index.astype(str)) == ["2024-01", "2024-02", "2024-03"]  # April is incomplete
    assert panel.loc[pd.Period("2024-02", "M"), "A"] == 0.0
    assert panel["C"].eq(0).all()  # a rep without bookings is still a series
    assert set(keys["region"]) == {"N", "S"}
    with pytest.raises(DataValidationError, match="at least 12"):
        monthly_panel(bookings, reps, ["company", "rep"], pd.Timestamp("2024-04-30"), 12)


def test_config_rejects_bad_levels():
    from pydantic import ValidationError

    from salesops_models.forecast.config import ForecastConfig

    with pytest.raises(ValidationError, match="first level"):
        ForecastConfig(levels=["region", "rep"])
    with pytest.raises(ValidationError, match="unknown level"):
        ForecastConfig(levels=["company", "team"])


def test_stage_without_reconciliation_writes_base_forecasts(small_company, tmp_path):
    sc = Scenario(name="fc-none", forecast={"reconciliation": "none", "backtest_folds": 1, "model": "snaive"})
    ctx = StageContext(sc, tmp_path, "forecast", {"company": small_company})
    metrics = stage.run(ctx)
    fc = ctx.read_table("forecast")
    assert fc["reconciliation"].eq("none").all()
    assert np.isfinite(metrics["forecast_backtest_mape"])
    # seasonal naive base forecasts are coherent by construction (sums of last year's months)
    assert metrics["forecast_coherence_error"] < 1e-6 * fc["mean"].max()
