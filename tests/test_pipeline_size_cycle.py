"""Deal value drawn with the simulated cycle (``pipeline.size_by_cycle``): big deals take longer.

The calibration pools won values by size group and bin of the created-to-won cycle; a new deal's
value comes from the cell of its simulated cycle. Checked here: the cells (no future deals, the
bin rule, the fallback), the bit-for-bit identity of everything but the values, and against a
known process whose value grows with the cycle, the mean value closed by a horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.backtest.pipeline import calibration_options
from salesops_models.pipeline.calibration import MIN_CELL_WON, POOLED, calibrate_pipeline, size_cycle_cells
from salesops_models.pipeline.config import PipelineConfig
from salesops_models.pipeline.simulation import compile_inputs, open_pipeline, simulate_pipeline
from salesops_models.pipeline.synthetic import (
    EXAMPLE_HOLDING_DAYS,
    EXAMPLE_TRANSITIONS,
    synthetic_history,
    true_value_closed,
)
from salesops_models.tracking.reforecast import config_options

AS_OF = pd.Timestamp("2025-12-31")


def _won(product: str, cycles: np.ndarray, amounts: np.ndarray, close: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "status": "won",
            "product": product,
            "created_date": close - pd.to_timedelta(cycles, unit="D"),
            "close_date": close,
            "amount": amounts.astype(float),
        }
    )


def test_cells_follow_the_cycle_and_ignore_deals_closed_after_the_snapshot():
    cycles = np.arange(1, 101)
    opp = pd.concat(
        [
            _won("A", cycles, 100.0 * cycles, AS_OF - pd.Timedelta(days=10)),  # value rises with cycle
            _won("B", np.arange(1, 31), np.full(30, 7.0), AS_OF),  # too few for two bins of 20
            _won("A", cycles[:40], np.full(40, 1e9), AS_OF + pd.Timedelta(days=1)),  # the future
        ],
        ignore_index=True,
    )
    groups = ("A", "B", POOLED)
    edges, pool, offset, count = size_cycle_cells(opp, AS_OF, "product", groups, np.zeros(3))
    assert pool.max() < 1e9, "a deal won after the snapshot leaked into the cells"
    # A: 100 won -> floor(100^(1/3)) = 4 bins of 25; B: 30 -> none; pooled 130 -> 5 bins of 26
    np.testing.assert_array_equal((count > 0).sum(axis=1), [4, 0, 5])
    np.testing.assert_array_equal(count[0, :4], [25, 25, 25, 25])
    assert (count[count > 0] >= MIN_CELL_WON).all()
    # A's cells partition its values by cycle: every value of bin j lies below every value of j + 1
    cells = [pool[offset[0, j] : offset[0, j] + count[0, j]] for j in range(4)]
    for lo, hi in zip(cells, cells[1:], strict=False):
        assert lo.max() < hi.min()
    np.testing.assert_allclose(np.sort(np.concatenate(cells)), 100.0 * cycles)
    np.testing.assert_allclose(edges[0, :3], [25.75, 50.5, 75.25])  # quartiles of 1..100 days
    assert np.isinf(edges[0, 3:]).all()


def test_no_cells_without_cycles_or_with_few_won_deals():
    cycles = np.arange(1, 101)
    few = _won("A", cycles[: 2 * MIN_CELL_WON - 1], cycles[: 2 * MIN_CELL_WON - 1], AS_OF)
    no_created = _won("A", cycles, cycles, AS_OF).assign(created_date=pd.NaT)
    for opp in (few, no_created, few.iloc[:0]):
        _, pool, _, count = size_cycle_cells(opp, AS_OF, "product", ("A", POOLED), np.ones(2))
        assert not count.any()
        np.testing.assert_array_equal(pool, np.ones(2))


def _simulate(h, size_by_cycle: bool, horizon_days: int, trials: int = 200, open_deals: bool = False):
    cal = calibrate_pipeline(
        h.opportunities,
        h.stage_history,
        h.reps,
        h.stages,
        h.as_of,
        seasonality="none",
        creation_trend="none",
        size_by="none",
        size_by_cycle=size_by_cycle,
    )
    deals = open_pipeline(cal, h.opportunities, h.stage_history, h.stages)
    if not open_deals:
        deals = deals.iloc[:0]
    edges = pd.DatetimeIndex([h.as_of + pd.Timedelta(days=1), h.as_of + pd.Timedelta(days=horizon_days + 1)])
    inp = compile_inputs(cal, deals, edges, uncertainty="point")
    sim = simulate_pipeline(inp, cal.rep_ids, trials=trials, block_size=100, seed=np.random.SeedSequence(11))
    return cal, sim


def test_an_export_with_few_won_deals_falls_back_to_independent_values_bit_for_bit():
    h = synthetic_history(EXAMPLE_TRANSITIONS, EXAMPLE_HOLDING_DAYS, n_reps=1, deals_per_rep_week=0.8, seed=4)
    assert (h.opportunities["status"] == "won").sum() < 2 * MIN_CELL_WON
    cal_on, on = _simulate(h, True, 90, trials=100, open_deals=True)
    cal_off, off = _simulate(h, False, 90, trials=100, open_deals=True)
    assert not cal_on.cell_count.any()
    assert cal_on.diagnostics["size_cycle_bins"] == "*:0"
    np.testing.assert_array_equal(on.bookings, off.bookings)


# A known world where value grows with the cycle: median value x (cycle / 30 days) ** 0.5,
# lognormal sigma 0.5 (a 90-day deal is worth 1.7 times a 30-day one); two years of history.
BETA, SIGMA, HORIZON = 0.5, 0.5, 90


@pytest.fixture(scope="module")
def dependent_world():
    h = synthetic_history(
        EXAMPLE_TRANSITIONS,
        EXAMPLE_HOLDING_DAYS,
        n_reps=8,
        deals_per_rep_week=4.0,
        amount_sigma=SIGMA,
        amount_cycle_elasticity=BETA,
        seed=5,
    )
    truth, _ = true_value_closed(
        EXAMPLE_TRANSITIONS,
        EXAMPLE_HOLDING_DAYS,
        HORIZON,
        amount_median=10_000.0,
        amount_sigma=SIGMA,
        amount_cycle_elasticity=BETA,
    )
    return h, truth


def test_value_closed_by_the_horizon_follows_the_cycle(dependent_world):
    """Mean value of a new deal won inside a 90-day horizon, against the true process.

    Tolerance 6%: the cell means come from the history's ~1,300 won deals (about 130 per cycle
    bin, sigma 0.5: a standard error of ~2% over the bins a 90-day horizon uses, so 6% is ~3 SE)
    plus the bins' discretisation (values vary inside a bin; ~1.5% with 10 bins here); the Monte
    Carlo error of 200 trials (~18,000 won deals) is 0.4%. The independent draw is off by ~19%,
    far outside, because quick wins are small deals while the whole pool is not.
    """
    h, truth = dependent_world
    cal_on, on = _simulate(h, True, HORIZON)
    cal_off, off = _simulate(h, False, HORIZON)
    assert cal_on.diagnostics["size_cycle_bins"] == "*:10"  # floor(1279 ** (1/3)) bins
    # only the values move: wins, losses and their timing are the same draws
    np.testing.assert_array_equal(on.new_won, off.new_won)
    np.testing.assert_array_equal(on.won, off.won)
    np.testing.assert_array_equal(on.new_cycle_days, off.new_cycle_days)
    mean_on = on.bookings.sum() / on.new_won.sum()
    mean_off = off.bookings.sum() / off.new_won.sum()
    assert abs(mean_on / truth - 1.0) < 0.06, (mean_on, truth)
    assert mean_off / truth - 1.0 > 0.12, (mean_off, truth)  # the test can tell the two models apart


def test_values_are_reproducible_bit_for_bit_across_block_groupings(dependent_world):
    h, _ = dependent_world
    cal = calibrate_pipeline(h.opportunities, h.stage_history, h.reps, h.stages, h.as_of, size_by="none", size_by_cycle=True)
    deals = open_pipeline(cal, h.opportunities, h.stage_history, h.stages)
    edges = pd.date_range("2026-01-01", "2026-04-01", freq="MS")
    inp = compile_inputs(cal, deals, edges)
    runs = [
        simulate_pipeline(
            inp, cal.rep_ids, trials=60, block_size=20, seed=np.random.SeedSequence(3), blocks_per_chunk=c
        )
        for c in (1, 3)
    ]
    assert cal.cell_count.any()
    np.testing.assert_array_equal(runs[0].bookings, runs[1].bookings)


def test_the_switch_reaches_every_caller_of_the_calibration():
    cfg = PipelineConfig(size_by_cycle=True)
    assert PipelineConfig().size_by_cycle is False
    assert calibration_options(cfg)["size_by_cycle"] is True
    assert config_options(calibrate_pipeline, cfg)["size_by_cycle"] is True
