"""Conversion drift (pipeline.conversion_drift): a trend of conversion over creation cohorts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from salesops_models.errors import ScenarioError
from salesops_models.pipeline.calibration import calibrate_pipeline
from salesops_models.pipeline.simulation import compile_inputs, open_pipeline, simulate_pipeline
from salesops_models.pipeline.synthetic import synthetic_funnel


def _calibrate(h, mode: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calibrate_pipeline(h.opportunities, h.stage_history, h.reps, h.stages, h.as_of, conversion_drift=mode)


def _simulate(h, cal, uncertainty: str, trials: int = 400) -> np.ndarray:
    deals = open_pipeline(cal, h.opportunities, h.stage_history, h.stages)
    edges = pd.date_range(h.as_of + pd.Timedelta(days=1), periods=4, freq="MS")
    inputs = compile_inputs(cal, deals, list(edges), uncertainty=uncertainty)
    sim = simulate_pipeline(inputs, cal.rep_ids, trials=trials, block_size=200, seed=11)
    return sim.total_bookings()


@pytest.mark.parametrize("seed", [0, 1])
def test_downward_drift_recovers_recent_conversion(seed: int) -> None:
    # conversion of leads created on the snapshot 0.10, one logit a year higher for each year
    # older (0.23 a year before): the constant model credits recent leads with the old cohorts'
    h = synthetic_funnel(seed=seed, conversion_drift=-1.0)
    const = _calibrate(h, "none").win_rate_created(h.as_of)
    cal = _calibrate(h, "auto")
    drift = cal.win_rate_created(h.as_of)
    assert cal.drift.used and cal.drift.slope < 0
    assert "conversion drift: used" in cal.diagnostics["conversion_drift"]
    # stated tolerance: within 0.045 of the truth (the Cox slope of a drift in the cured share is
    # attenuated, ~0.8-0.9 of the logit slope), while the constant model is > 0.12 off
    assert abs(const - 0.10) > 0.12
    assert abs(drift - 0.10) < 0.045


def test_no_drift_auto_equals_today() -> None:
    h = synthetic_funnel(seed=0)
    none, auto = _calibrate(h, "none"), _calibrate(h, "auto")
    assert not auto.drift.used
    assert "not used" in auto.diagnostics["conversion_drift"]
    np.testing.assert_array_equal(none.transition_matrix, auto.transition_matrix)
    for mode in ("point", "calibrated"):
        np.testing.assert_array_equal(_simulate(h, none, mode, 200), _simulate(h, auto, mode, 200))


def test_no_drift_false_alarm_rate() -> None:
    # the 5 % test: over 12 constant funnels, at most 3 alarms (P(>3 | 0.05, 12) < 0.003)
    alarms = sum(_calibrate(synthetic_funnel(seed=s, weeks=52), "auto").drift.used for s in range(20, 32))
    assert alarms <= 3


def test_drift_lowers_the_forecast_and_widens_the_band() -> None:
    h = synthetic_funnel(seed=3, conversion_drift=-1.0)
    const, drift = _calibrate(h, "none"), _calibrate(h, "auto")
    for mode in ("point", "calibrated"):
        a, b = _simulate(h, const, mode), _simulate(h, drift, mode)
        assert b.mean() < 0.85 * a.mean()  # the constant model credits open leads with old cohorts
    # the slope's uncertainty is drawn per trial: the calibrated band is wider than the point one
    p, c = _simulate(h, drift, "point"), _simulate(h, drift, "calibrated")
    assert np.std(c) / c.mean() > np.std(p) / p.mean()


def test_bad_mode_is_a_scenario_error() -> None:
    h = synthetic_funnel(seed=0, weeks=20)
    with pytest.raises(ScenarioError, match="conversion_drift"):
        _calibrate(h, "yes")
