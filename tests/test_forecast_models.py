"""Univariate forecasters: schema, hand values, guards, fallbacks, intervals, backtests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.errors import DataValidationError
from salesops_models.forecast.forecaster import (
    check_bounded,
    forecast_series,
    origins_for,
    rolling_origin,
    select_by_backtest,
)
from salesops_models.forecast.models import (
    ARIMA,
    ETS,
    Combination,
    ETSSpec,
    Naive2,
    SeasonalNaive,
    Theta,
    ets_candidates,
    make_model,
)
from salesops_models.forecast.schema import (
    QUANTILE_LEVELS,
    complete_series,
    quantile_column,
    quantile_columns,
)
from salesops_models.forecast.seasonality import seasonal_test

SCHEMA = ["mean", "q05", "q10", "q25", "q50", "q75", "q90", "q95"]


def monthly(n: int = 48, seed: int = 0, noise: float = 40.0) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 1000 + 10 * t + 250 * np.sin(2 * np.pi * t / 12) + rng.normal(0, noise, n)
    return pd.Series(y, index=pd.period_range("2022-01", periods=n, freq="M"))


def test_quantile_column_names():
    assert quantile_columns() == SCHEMA[1:]
    assert quantile_column(0.025) == "q025" and quantile_column(0.975) == "q975"


@pytest.mark.parametrize("family", ["naive", "snaive", "naive2", "ets_damped", "ses", "sarima", "theta"])
def test_every_family_returns_one_schema(family):
    y = monthly()
    # a fixed seasonal order keeps the test fast; the automatic search runs in the m = 1 tests
    model = ARIMA(12, (1, 0, 0), (0, 1, 1)) if family == "sarima" else make_model(family, 12, seed=1)
    fc = model.fit(y).forecast(12)
    assert list(fc.columns) == SCHEMA
    assert isinstance(fc.index, pd.PeriodIndex) and str(fc.index[0]) == "2026-01"
    q = fc[SCHEMA[1:]].to_numpy()
    assert np.isfinite(q).all()
    assert (np.diff(q, axis=1) >= -1e-9).all(), "quantiles must not cross"
    assert (fc["q05"] <= fc["mean"]).all() and (fc["mean"] <= fc["q95"]).all()


def test_seasonal_naive_hand_values():
    y = pd.Series(
        [1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 4.0, 5.0], index=pd.period_range("2024Q1", periods=8, freq="Q")
    )
    fc = SeasonalNaive(4).fit(y).forecast(6)
    np.testing.assert_allclose(fc["mean"], [2, 3, 4, 5, 2, 3])
    # sigma = RMS of seasonal differences = 1; the second year is sqrt(2) wider
    width = fc["q95"] - fc["q05"]
    assert width.iloc[4] / width.iloc[0] == pytest.approx(np.sqrt(2))
    assert width.iloc[0] == pytest.approx(2 * 1.6448536, rel=1e-6)


def test_naive2_deseasonalises_only_seasonal_series():
    y = monthly(60, noise=10)
    assert seasonal_test(y.to_numpy(), 12)
    seasonal = Naive2(12).fit(y)
    assert seasonal.model == "Naive2(seasonal)"
    fc = seasonal.forecast(12)["mean"].to_numpy()
    assert np.ptp(fc) > 100  # reseasonalised, not flat
    flat = Naive2(1).fit(y).forecast(3)["mean"].to_numpy()
    np.testing.assert_allclose(flat, y.iloc[-1])


def test_ets_multiplicative_only_for_positive_data():
    x = np.abs(monthly().to_numpy())
    assert any(s.error == "mul" for s in ets_candidates(x, 12))
    x[5] = 0.0
    cands = ets_candidates(x, 12)
    assert all(s.error == "add" and s.seasonal != "mul" for s in cands)
    assert all(s.trend != "mul" for s in ets_candidates(np.abs(x) + 1, 12))


def test_ets_automatic_choice_minimises_aicc():
    y = monthly(40, noise=20)
    specs = [ETSSpec("add", None, False, None), ETSSpec("add", None, False, "add")]
    fitted = ETS(12, candidates=specs).fit(y)
    single = [ETS(12, s).fit(y).aicc for s in specs]
    assert fitted.aicc == pytest.approx(min(single))
    assert fitted.model == "ETS(A,N,A)"  # a strong season with little noise


def test_arima_integration_matches_statsmodels_state_space():
    import warnings

    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = monthly(48)
    ours = ARIMA(12, order=(0, 1, 1), seasonal_order=(0, 1, 0)).fit(y).forecast(12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SARIMAX(y.to_numpy(), order=(0, 1, 1), seasonal_order=(0, 1, 0, 12)).fit(disp=False)
    fc = ref.get_forecast(12)
    np.testing.assert_allclose(ours["mean"], fc.predicted_mean, rtol=2e-3)
    np.testing.assert_allclose(ours["q95"] - ours["mean"], 1.6448536 * fc.se_mean, rtol=3e-2)


def test_combination_is_the_mean_of_its_members():
    y = monthly()
    members = [SeasonalNaive(12), Theta(12)]
    combo = Combination(12, members).fit(y).forecast(6)
    parts = [m.fit(y).forecast(6) for m in members]
    np.testing.assert_allclose(combo["mean"], (parts[0]["mean"] + parts[1]["mean"]) / 2)
    np.testing.assert_allclose(combo["q95"], (parts[0]["q95"] + parts[1]["q95"]) / 2)
    med = Combination(12, [*members, SeasonalNaive(12)], how="median").fit(y).forecast(6)
    np.testing.assert_allclose(med["mean"], parts[0]["mean"])


@pytest.mark.parametrize("family", ["naive", "naive2", "ets", "ets_damped", "ses", "arima", "theta"])
def test_intervals_widen_with_horizon(family):
    fc = make_model(family, 1).fit(monthly(48, seed=2)).forecast(24)
    width = (fc["q95"] - fc["q05"]).to_numpy()
    assert (np.diff(width) >= -1e-6 * width[0]).all()
    assert width[-1] > width[0]


@pytest.mark.parametrize("family", ["snaive", "naive2", "ets_AAdA", "ets_MNM", "arima", "theta"])
def test_seasonal_intervals_widen_year_over_year(family):
    # with seasonality the width follows the season; the same month a year later is wider
    specs = {"ets_AAdA": ETSSpec("add", "add", True, "add"), "ets_MNM": ETSSpec("mul", None, False, "mul")}
    if family in specs:
        model = ETS(12, specs[family], seed=3)
    elif family == "arima":
        model = ARIMA(12, (0, 1, 1), (0, 1, 1))
    else:
        model = make_model(family, 12)
    fc = model.fit(monthly(48, seed=2)).forecast(24)
    width = (fc["q95"] - fc["q05"]).to_numpy()
    assert (width[12:] >= width[:12] * (1 - 1e-6)).all()


def test_explosive_series_stays_bounded_and_fallback_is_recorded():
    # a series growing 50% a period: every trend model extrapolates it past twice its history
    # (a damped ETS stays under 10x, so the guard is set to 2x here to see it act)
    y = pd.Series(1.5 ** np.arange(30), index=pd.period_range("2020-01", periods=30, freq="M"))
    out = forecast_series(y, 24, "ets", 1, bound_factor=2.0)
    assert out.fallbacks, "the unbounded ETS forecast must be rejected"
    assert out.fallbacks[0].startswith("ets")
    assert np.isfinite(out.forecast.to_numpy()).all()
    assert out.forecast["mean"].abs().max() <= 2 * y.max()
    assert check_bounded(out.forecast, y.to_numpy(), 2.0) is None


def test_failing_model_falls_back_to_seasonal_naive():
    y = pd.Series([5.0, 6.0], index=pd.period_range("2025-01", periods=2, freq="M"))
    out = forecast_series(y, 3, "theta", 12)  # 2 points: theta, damped ETS and SES cannot fit
    assert out.model.startswith("Naive") or out.model.startswith("SNaive") or out.model.startswith("ETS")
    assert out.fallbacks


def test_gap_in_datetime_index_is_filled_and_counted():
    idx = pd.date_range("2023-01-01", periods=30, freq="MS").delete(10)
    y = pd.Series(np.arange(29, dtype=float) + 100, index=idx)
    with pytest.raises(DataValidationError, match="freq"):
        complete_series(y)
    s, filled = complete_series(y, "M")
    assert filled == 1 and isinstance(s.index, pd.PeriodIndex) and s.iloc[10] == 0.0
    out = forecast_series(y.to_period("M"), 6, "ets_damped", 12)
    assert out.filled_periods == 1
    assert str(out.forecast.index[0]) == "2025-07"


def test_nonnegative_clip_is_flagged():
    y = pd.Series(np.r_[np.linspace(100, 5, 20)], index=pd.period_range("2024-01", periods=20, freq="M"))
    out = forecast_series(y, 12, "naive", 12, nonnegative=True)
    assert out.clipped and (out.forecast.to_numpy() >= 0).all()


def test_rolling_origin_origins_and_coverage_calibration():
    assert origins_for(48, 12, 3) == [34, 35, 36]
    assert origins_for(48, 12, 3, step=6) == [24, 30, 36]
    # Gaussian random walks forecast by the naive model: its 90% interval is the true one
    rng = np.random.default_rng(11)
    cover = []
    for i in range(40):
        y = pd.Series(
            np.cumsum(rng.normal(0, 1, 80)) + 50, index=pd.period_range("2010-01", periods=80, freq="M")
        )
        bt = rolling_origin(y, 6, 2, "naive", 12, step=6, name=f"s{i}")
        cover.append(bt.accuracy["coverage90"].mean())
        assert set(bt.forecasts.columns) >= {"series", "origin", "step", "period", "y", *SCHEMA}
    assert 0.83 <= float(np.mean(cover)) <= 0.96


def test_select_by_backtest_prefers_the_seasonal_model_on_seasonal_data():
    y = monthly(48, noise=5)
    choice, table = select_by_backtest(y, ["naive", "snaive"], 12, 2, 12)
    assert choice == "snaive"
    assert table.set_index("model").loc["snaive", "mase"] < table.set_index("model").loc["naive", "mase"]


def test_default_quantile_levels_are_the_schema():
    assert tuple(QUANTILE_LEVELS) == (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)


def test_auto_selects_by_backtest_and_records_it():
    y = monthly(48, noise=5)
    cands = ("naive", "theta", "snaive")
    out = forecast_series(y, 6, "auto", 12, auto_candidates=cands)
    assert out.params.get("selected_by_backtest") == 1.0
    _, table = select_by_backtest(y, list(cands), 6, 2, 12)
    best = table.loc[table["mase"].idxmin(), "model"]
    assert best != "naive"  # strongly seasonal data
    assert out.requested == best
