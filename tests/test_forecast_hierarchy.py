"""Hierarchy: summing matrix, reconciliation algebra, coherence, clipping, blend, parallel fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.forecast.blend import blend_weight_from_backtest, blend_with_pipeline
from salesops_models.forecast.hierarchy import (
    METHODS,
    build_hierarchy,
    coherence_error,
    forecast_hierarchy,
    reconcile,
    reconciliation_matrix,
    shrunk_covariance,
)
from salesops_models.forecast.parallel import forecast_many

REPS = pd.DataFrame({"region": ["East", "East", "West"], "rep_id": ["R1", "R2", "R3"]})
LEVELS = [(), ("region",), ("region", "rep_id")]


def test_summing_matrix_company_region_rep():
    h = build_hierarchy(REPS, LEVELS, ["company", "region", "rep"], label="last")
    expected = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    np.testing.assert_array_equal(h.S, expected)
    assert list(h.nodes["series"]) == ["total", "East", "West", "R1", "R2", "R3"]
    assert h.bottom_labels == ["R1", "R2", "R3"]


def test_grouped_structure_counts():
    bottom = pd.DataFrame(
        [(s, f"{s}{r}", p) for s in "AB" for r in "xy" for p in ("biz", "hol")],
        columns=["state", "region", "purpose"],
    )
    levels = [
        (),
        ("state",),
        ("state", "region"),
        ("purpose",),
        ("state", "purpose"),
        ("state", "region", "purpose"),
    ]
    h = build_hierarchy(bottom, levels)
    assert h.S.shape == (1 + 2 + 4 + 2 + 4 + 8, 8)
    np.testing.assert_array_equal(h.S[-8:], np.eye(8))


@pytest.mark.parametrize("method", ["bottom_up", "ols", "wls_struct", "wls_var", "mint_shrink", "top_down"])
def test_reconciliation_is_a_projection(method):
    h = build_hierarchy(REPS, LEVELS)
    rng = np.random.default_rng(0)
    resid = rng.normal(size=(30, h.n))
    hist = h.aggregate(rng.uniform(1, 10, size=(24, 3)))
    g = reconciliation_matrix(h.S, method, residuals=resid, history=hist)
    # coherent base forecasts are left unchanged by every unbiased method: S G S = S
    if method != "top_down":
        np.testing.assert_allclose(h.S @ g @ h.S, h.S, atol=1e-10)
    assert g.shape == (3, 6)


def test_ols_hand_value():
    # two children and a total: OLS moves each of the three nodes by a third of the gap of 3
    bottom = pd.DataFrame({"k": ["a", "b"]})
    h = build_hierarchy(bottom, [(), ("k",)])
    base = np.array([12.0, 5.0, 4.0])  # total says 12, children say 9: gap 3
    g = reconciliation_matrix(h.S, "ols")
    rec = h.S @ g @ base
    np.testing.assert_allclose(rec, [11.0, 6.0, 5.0])


def test_top_down_uses_historical_proportions():
    h = build_hierarchy(REPS, LEVELS)
    hist = h.aggregate(np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 2.0]]))
    g = reconciliation_matrix(h.S, "top_down", history=hist)
    rec = h.S @ g @ np.array([100.0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(rec[-3:], [25.0, 25.0, 50.0])


def test_shrinkage_between_zero_and_one_and_identity_for_independent_noise():
    rng = np.random.default_rng(1)
    w, lam = shrunk_covariance(rng.normal(size=(200, 5)))
    assert 0.0 <= lam <= 1.0
    assert lam > 0.5  # independent noise: shrink hard towards the diagonal
    common = rng.normal(size=(200, 1))
    _, lam_corr = shrunk_covariance(common + 0.1 * rng.normal(size=(200, 5)))
    assert lam_corr < 0.1


def _bookings(n_periods: int = 36, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n_periods)
    cols = {}
    for i, rep in enumerate(["R1", "R2", "R3"]):
        cols[rep] = 100 + 20 * i + 2 * t + 15 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 8, n_periods)
    return pd.DataFrame(cols, index=pd.period_range("2023-01", periods=n_periods, freq="M"))


@pytest.mark.parametrize("model", ["ses", "theta"])
def test_reconciled_levels_add_up(model):
    h = build_hierarchy(REPS, LEVELS, ["company", "region", "rep"], label="last")
    out = forecast_hierarchy(_bookings(), h, 12, model=model, methods=METHODS, seed=5)
    for method, df in out.reconciled.items():
        assert coherence_error(h, df) < 1e-6, method
        assert set(df.columns) >= {"level", "series", "period", "mean", "q05", "q95", "method"}
        q = df[["q05", "q10", "q25", "q50", "q75", "q90", "q95"]].to_numpy()
        assert (np.diff(q, axis=1) >= -1e-9).all()
    # base forecasts are fitted independently: they do not add up in general
    assert coherence_error(h, out.base) > 1e-3
    assert out.summary()["n_nodes"] == 6


def test_bottom_up_equals_sum_of_bottom_base_forecasts():
    h = build_hierarchy(REPS, LEVELS)
    out = forecast_hierarchy(_bookings(), h, 6, model="snaive", methods=["bottom_up"])
    base = out.base.pivot_table(index="period", columns="series", values="mean")
    rec = out.reconciled["bottom_up"].pivot_table(index="period", columns="series", values="mean")
    np.testing.assert_allclose(rec["total"], base[["East/R1", "East/R2", "West/R3"]].sum(axis=1))


def test_negative_reconciled_forecasts_are_clipped_and_flagged():
    h = build_hierarchy(REPS, LEVELS)
    idx = pd.period_range("2026-01", periods=2, freq="M")
    base = [
        pd.DataFrame({"mean": [v, v], "q05": [v - 1, v - 1], "q95": [v + 1, v + 1]}, index=idx)
        for v in (0.0, 0.0, 0.0, -5.0, 1.0, 0.0)
    ]
    frames, info = reconcile(h, base, "bottom_up", levels=(0.05, 0.95), nonnegative=True)
    assert info["clipped"]
    assert frames[3]["mean"].eq(0).all() and frames[0]["mean"].eq(1.0).all()
    frames, info = reconcile(h, base, "bottom_up", levels=(0.05, 0.95), nonnegative=False)
    assert not info["clipped"] and frames[0]["mean"].eq(-4.0).all()


def test_reconciled_quantiles_reflect_correlation():
    # perfectly correlated children: bottom-up sd of the total is the sum of sds, not sqrt(sum sq)
    bottom = pd.DataFrame({"k": ["a", "b"]})
    h = build_hierarchy(bottom, [(), ("k",)])
    idx = pd.period_range("2026-01", periods=1, freq="M")
    z = 1.6448536269514722
    base = [
        pd.DataFrame({"mean": [m], "q05": [m - z * s], "q95": [m + z * s]}, index=idx)
        for m, s in ((20.0, 2.0), (10.0, 1.0), (10.0, 1.0))
    ]
    rng = np.random.default_rng(0)
    e = rng.normal(size=(50, 1))
    resid = np.hstack([2 * e, e, e])
    frames, _ = reconcile(h, base, "bottom_up", residuals=resid, levels=(0.05, 0.95))
    assert (frames[0]["q95"] - frames[0]["mean"]).iloc[0] == pytest.approx(z * 2.0, rel=0.02)
    frames, _ = reconcile(h, base, "bottom_up", levels=(0.05, 0.95))
    assert (frames[0]["q95"] - frames[0]["mean"]).iloc[0] == pytest.approx(z * np.sqrt(2.0), rel=1e-6)


def test_blend_hand_values_and_weight():
    fc = pd.DataFrame({"series": ["a", "a"], "period": [1, 2], "mean": [100.0, 100.0], "q05": [80.0, 80.0]})
    pipe = pd.DataFrame({"series": ["a"], "period": [1], "mean": [120.0]})
    out = blend_with_pipeline(fc, pipe, 0.25)
    assert out["mean"].tolist() == [105.0, 100.0]
    assert out["q05"].tolist() == [85.0, 80.0]
    assert out["blended"].tolist() == [True, False]
    # actuals exactly halfway between the two forecasts: w = 0.5
    assert blend_weight_from_backtest([110.0, 90.0], [100.0, 100.0], [120.0, 80.0]) == pytest.approx(0.5)
    assert blend_weight_from_backtest([120.0], [100.0], [120.0]) == pytest.approx(1.0)


def test_parallel_equals_serial():
    hist = {c: s for c, s in _bookings().items()}
    serial = forecast_many(hist, 6, model="theta", n_jobs=1, seed=1)
    parallel = forecast_many(hist, 6, model="theta", n_jobs=2, seed=1)
    for k in hist:
        pd.testing.assert_frame_equal(serial[k].forecast, parallel[k].forecast)


def test_daemonic_process_forces_in_process_fits(monkeypatch):
    import multiprocessing

    from salesops_models.forecast.parallel import effective_jobs

    class _Daemon:
        daemon = True

    assert effective_jobs(1) == 1 and effective_jobs(3) == 3
    monkeypatch.setattr(multiprocessing, "current_process", lambda: _Daemon())
    assert effective_jobs(4) == 1  # Dask workers are daemonic: no process pool there


@pytest.mark.parametrize("method", ["ols", "wls_struct", "wls_var", "mint_shrink"])
def test_large_hierarchy_reconciler_equals_the_dense_matrix(method):
    # Woodbury solves (used above DENSE_LIMIT nodes) against the explicit G on a medium hierarchy
    from salesops_models.forecast.hierarchy import Reconciler, reconciliation_matrix, shrinkage_intensity

    rng = np.random.default_rng(3)
    keys = pd.DataFrame({"region": np.repeat(["a", "b", "c"], 20), "rep": [f"r{i}" for i in range(60)]})
    h = build_hierarchy(keys, [(), ("region",), ("region", "rep")])
    bottom = rng.normal(size=(30, 1)) * 2 + rng.normal(size=(30, 60))
    resid = h.aggregate(bottom) + rng.normal(size=(30, h.n)) * 0.3
    dense = reconciliation_matrix(h.S, method, residuals=resid)
    structured = Reconciler(h.S, method, residuals=resid, dense_limit=10)
    assert structured.g is None
    np.testing.assert_allclose(structured.matrix(), dense, atol=1e-10)
    if method == "mint_shrink":
        from salesops_models.forecast.hierarchy import shrunk_covariance

        lam = shrinkage_intensity(resid)
        assert 0.0 < lam < 1.0 and lam == pytest.approx(shrunk_covariance(resid)[1], rel=1e-12)


@pytest.mark.slow  # about 7 s: three local clusters
def test_forecast_backtest_and_reconciliation_identical_for_1_2_and_4_dask_workers():
    """The stage's model work (forecast, rolling backtest, MinT) on 32 rep x product series, bit for bit."""
    distributed = pytest.importorskip("distributed")
    from salesops_models.data import generate_sample_company
    from salesops_models.data.scale import RepProductPanel, rep_product_patterns, scale_rep_product_panel
    from salesops_models.forecast.config import ForecastConfig
    from salesops_models.forecast.plan_year import forecast_with_backtest
    from salesops_models.testing import threaded_dask_client

    pat = rep_product_patterns(generate_sample_company(n_accounts=300, n_reps=8, seed=4))
    data = scale_rep_product_panel(pat, 32, n_products=4, seed=9)
    h = build_hierarchy(data.keys, RepProductPanel.LEVELS, RepProductPanel.LEVEL_NAMES, label="path")
    cfg = ForecastConfig(backtest_horizon=6)
    serial = forecast_with_backtest(data.panel, h, cfg, 6, seed=5)
    assert len(serial[1]) and serial[0].reconciled["mint_shrink"]["mean"].notna().all()
    for workers in (1, 2, 4):
        with (
            threaded_dask_client(n_workers=workers, threads_per_worker=1) as client,
            distributed.get_task_stream(client) as stream,
        ):
            fc, backtest, accuracy = forecast_with_backtest(data.panel, h, cfg, 6, seed=5, client=client)
        assert len({task["worker"] for task in stream.data}) == workers  # the fits were spread over all
        pd.testing.assert_frame_equal(fc.base, serial[0].base, check_exact=True)
        pd.testing.assert_frame_equal(fc.reconciled["mint_shrink"], serial[0].reconciled["mint_shrink"], check_exact=True)
        pd.testing.assert_frame_equal(backtest, serial[1], check_exact=True)
        pd.testing.assert_frame_equal(accuracy, serial[2], check_exact=True)


def test_the_forecast_sections_bound_factor_reaches_the_forecast_and_the_backtest():
    """``forecast.bound_factor`` was silently ignored by the stage: a growing series forecast above
    1.05 x its history maximum must now be rejected for its fallback, at the plan and every origin."""
    from salesops_models.forecast.config import ForecastConfig
    from salesops_models.forecast.plan_year import forecast_with_backtest

    months = pd.period_range("2021-01", periods=36, freq="M")
    growth = np.linspace(100.0, 400.0, 36)
    rng = np.random.default_rng(3)
    panel = pd.DataFrame({f"r{i}": growth * (1 + i / 10) + rng.normal(0, 5, 36) for i in range(4)}, index=months)
    keys = pd.DataFrame({"region": ["a", "a", "b", "b"], "rep": list(panel.columns)})
    h = build_hierarchy(keys, [(), ("region",), ("region", "rep")], ["company", "region", "rep"])
    runs = {}
    for factor in (10.0, 1.05):
        cfg = ForecastConfig(model="theta", backtest_horizon=6, bound_factor=factor)
        runs[factor] = forecast_with_backtest(panel, h, cfg, 12, seed=1)
    loose, tight = runs[10.0], runs[1.05]
    assert int(loose[0].fits["fallbacks"].sum()) == 0
    assert int(tight[0].fits["fallbacks"].sum()) > 0, "bound_factor did not reach the plan's fits"
    assert not np.allclose(loose[1]["mean"].to_numpy(), tight[1]["mean"].to_numpy()), (
        "bound_factor did not reach the backtest's fits"
    )
