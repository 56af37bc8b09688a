"""Calibrated intervals: the pooled-quantile estimator, coverage on known processes, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri

from salesops_models.errors import DataValidationError
from salesops_models.forecast.forecaster import forecast_series
from salesops_models.forecast.intervals import (
    RollingErrors,
    calibrated_quantiles,
    calibration_origins,
    errors_at_origins,
    pooled_quantiles,
)
from salesops_models.forecast.parallel import forecast_many


def _sample(u: np.ndarray) -> RollingErrors:
    return RollingErrors(np.arange(len(u)), np.zeros_like(u), u, np.ones_like(u), np.ones(u.shape[1]))


def test_pooled_quantiles_recover_a_known_distribution():
    # standardised errors that are exactly N(0, 1) in every step: q_s(p) ~ z_p
    rng = np.random.default_rng(0)
    samples = [_sample(rng.standard_normal((40, 3))) for _ in range(100)]
    q = pooled_quantiles(samples, 3, [0.05, 0.5, 0.95])
    np.testing.assert_allclose(q, np.tile(ndtri([0.05, 0.5, 0.95]), (3, 1)), atol=0.05)


def test_pooled_quantiles_weight_every_series_equally():
    # one long series with wide errors, many short ones with narrow errors: equal weights per series
    rng = np.random.default_rng(1)
    long = _sample(10 * rng.standard_normal((1000, 1)))
    short = [_sample(rng.standard_normal((5, 1))) for _ in range(99)]
    q = pooled_quantiles([long, *short], 1, [0.5, 0.95])
    assert q[0, 1] < 3.0  # dominated by the 99 narrow series, not the 1000 wide errors


def test_small_pool_uses_the_t_prediction_interval_and_widening_is_monotone():
    u = np.array([[0.5, 1.0], [-0.5, -1.0], [1.0, 2.0], [-1.0, np.nan]])
    q = pooled_quantiles([_sample(u)], 4, [0.05, 0.95])
    assert q[0, 1] > np.quantile(u[:, 0], 0.95)  # wider than the empirical 95% of four errors
    assert (np.diff(q[:, 1]) >= 0).all() and (np.diff(q[:, 0]) <= 0).all()
    assert np.isfinite(q).all()  # steps without errors extend the last estimated one


def test_errors_are_standardised_by_sd_and_forecast_level():
    history = np.array([10.0, 12.0, 14.0, 16.0, 18.0, 20.0])
    origins = np.array([3, 4])
    forecasts = np.array([[13.0, 15.0], [15.0, np.nan]])
    e = errors_at_origins(history, origins, forecasts, mean=np.array([20.0, 22.0]), sd=np.array([2.0, 3.0]))
    np.testing.assert_allclose(e.errors, [[3.0, 3.0], [3.0, np.nan]])
    # standardiser: sd_s times forecast / final mean (errors of lower-level origins scaled up)
    np.testing.assert_allclose(e.standardiser[0], [2.0 * 13 / 20, 3.0 * 15 / 22])
    q = calibrated_quantiles(np.array([20.0, 22.0]), e.sd, np.array([[-1.0, 1.0], [-2.0, 2.0]]))
    np.testing.assert_allclose(q, [[18.0, 22.0], [16.0, 28.0]])


def test_calibration_origins_cover_two_horizons():
    o = calibration_origins(40, 1, 6, "refit", 12)
    np.testing.assert_array_equal(o, np.arange(28, 40))
    o = calibration_origins(100, 12, 18, "refit", 12)
    assert o[-1] == 99 and np.all(np.diff(o) == 3) and len(o) == 12
    # a short sales history: every origin after 14 months, up to the last
    np.testing.assert_array_equal(calibration_origins(21, 12, 12, "refit", 12), np.arange(14, 21))
    assert calibration_origins(10, 12, 6, "refit", 12).size == 0  # too short for any refit


def _random_walks(n_series: int, n: int, seed: int, df: float = 3.0) -> dict[str, np.ndarray]:
    # heavy-tailed (t) increments: the naive model's Gaussian interval is too narrow in the tails
    rng = np.random.default_rng(seed)
    return {f"s{i}": 100 + np.cumsum(rng.standard_t(df, n)) for i in range(n_series)}


@pytest.mark.slow
def test_calibrated_intervals_cover_heavy_tailed_random_walks():
    hist = _random_walks(150, 50, seed=2)
    rng = np.random.default_rng(3)
    future = {k: v[-1] + np.cumsum(rng.standard_t(3.0, 4)) for k, v in hist.items()}
    cover = {}
    for method in ("calibrated", "gaussian"):
        fc = forecast_many(hist, 4, model="naive", season_length=1, levels=(0.025, 0.975), interval_method=method)
        inside = [
            np.mean((future[k] >= f.forecast["q025"]) & (future[k] <= f.forecast["q975"])) for k, f in fc.items()
        ]
        cover[method] = float(np.mean(inside))
    # 600 forecasts: the standard error of a 0.95 coverage is about 0.009 (plus dependence within a path)
    assert 0.92 <= cover["calibrated"] <= 0.98
    assert cover["calibrated"] > cover["gaussian"] - 0.01


def test_same_input_same_numbers_bit_for_bit():
    # the ETS simulated quantiles used to draw from fresh OS entropy when no seed was given
    y = pd.Series(
        200 + 3 * np.arange(40) + np.random.default_rng(4).normal(0, 8, 40),
        index=pd.period_range("2020-01", periods=40, freq="M"),
    )
    for method in ("gaussian", "calibrated"):
        a = forecast_series(y, 12, "ets", 1, interval_method=method)
        b = forecast_series(y, 12, "ets", 1, interval_method=method)
        pd.testing.assert_frame_equal(a.forecast, b.forecast, check_exact=True)
        assert a.interval_method == method


def test_worker_count_does_not_change_calibrated_numbers():
    hist = _random_walks(12, 30, seed=5)
    one = forecast_many(hist, 5, model="theta", season_length=1, n_jobs=1, seed=3)
    two = forecast_many(hist, 5, model="theta", season_length=1, n_jobs=2, seed=3, chunksize=5)
    for k in hist:
        pd.testing.assert_frame_equal(one[k].forecast, two[k].forecast, check_exact=True)
        assert one[k].interval_method == "calibrated"


def test_unknown_interval_method_is_a_clear_error():
    with pytest.raises(DataValidationError, match="interval_method"):
        forecast_series(np.arange(20.0), 3, "naive", 1, interval_method="bootstrap")


def test_dask_client_gives_the_same_numbers_as_in_process():
    distributed = pytest.importorskip("distributed")
    hist = _random_walks(10, 30, seed=6)
    serial = forecast_many(hist, 4, model="theta", season_length=1, seed=2)
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = forecast_many(hist, 4, model="theta", season_length=1, seed=2, client=client, chunksize=3)
    assert list(on_dask) == list(serial)
    for k in hist:
        pd.testing.assert_frame_equal(serial[k].forecast, on_dask[k].forecast, check_exact=True)
