"""The vectorised Monte Carlo: exact against the Markov chain, reproducible for any chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.pipeline.calibration import calibrate_pipeline
from salesops_models.pipeline.markov import absorbing_chain
from salesops_models.pipeline.simulation import (
    compile_inputs,
    draw_atoms,
    open_pipeline,
    simulate_pipeline,
)
from salesops_models.pipeline.synthetic import EXAMPLE_TRANSITIONS, synthetic_history

TRUE_P = EXAMPLE_TRANSITIONS


@pytest.fixture(scope="module")
def model():
    h = synthetic_history(TRUE_P, np.array([10.0, 20.0, 15.0]), n_reps=6, deals_per_rep_week=3.0, seed=3)
    cal = calibrate_pipeline(h.opportunities, h.stage_history, h.reps, h.stages, h.as_of)
    deals = open_pipeline(cal, h.opportunities, h.stage_history, h.stages)
    return h, cal, deals


def _expected_amount(cal, deals):
    fallback = np.array([cal.mean_won_amount(g) for g in deals["size_group"]])
    return np.where(np.isnan(deals["amount"]), fallback, deals["amount"])


def test_guide_table_equals_searchsorted(model):
    _, cal, deals = model
    inp = compile_inputs(cal, deals, None)
    v = np.random.default_rng(0).random(200_000) * (2.0 * cal.n_open)
    v = v[(v % 2.0) <= 1.0]  # the stage bands [2i, 2i+1]
    np.testing.assert_array_equal(draw_atoms(inp, v), np.searchsorted(inp.atom_cum, v, side="left"))


@pytest.mark.parametrize(("age_aware", "draw"), [(False, "stage"), (True, "stage"), (True, "segment")])
def test_monte_carlo_within_3_se_of_the_markov_oracle(model, age_aware, draw):
    """Infinite horizon: every deal runs to won or lost. Oracle: B = N R (fresh) or the atoms' P(win | age).

    Point calibration, drawn both ways: one lookup per visit in the stage layout (the point mode),
    and destination first, then holding time (the path of the calibrated mode, fed point parameters).
    """
    import dataclasses

    _, cal, deals = model
    inp = compile_inputs(cal, deals, None, age_aware=age_aware, stale_policy="fresh", uncertainty="point")
    inp = dataclasses.replace(inp, draw=draw)
    sim = simulate_pipeline(inp, cal.rep_ids, trials=4000, block_size=500, seed=42)
    p = deals["p_win_age_aware"].fillna(deals["p_win_fresh"]) if age_aware else deals["p_win_fresh"]
    p = p.to_numpy()
    n_deals = len(deals)
    # win fraction over all deal-trials: variance of a sum of independent Bernoullis
    won = sim.won.sum()
    se_won = np.sqrt(np.sum(p * (1 - p)) * sim.trials)
    z_won = (won - p.sum() * sim.trials) / se_won
    assert abs(z_won) < 3, z_won
    assert sim.won.sum() + sim.lost.sum() == n_deals * sim.trials  # nothing left open
    # expected bookings: sum of P(win) x expected value; SE from the trials themselves
    expected = float(np.sum(p * _expected_amount(cal, deals)))
    s = sim.summary()
    z = (s["bookings_mean"] - expected) / s["bookings_se"]
    assert abs(z) < 3, z


def test_mean_time_to_close_matches_n_times_d(model):
    _, cal, _ = model
    # one fresh deal in the entry stage, many trials: mean days to absorption = (N d)[entry]
    chain = absorbing_chain(cal.transition_matrix, cal.n_open)
    expected = chain.expected_time(cal.mean_holding_days())[0]
    from salesops_models.pipeline.simulation import _advance

    inp = compile_inputs(
        cal,
        pd.DataFrame(columns=["rep_id", "stage", "age_days", "amount", "size_group"]),
        None,
        uncertainty="point",
    )
    rng = np.random.default_rng(1)
    state = np.zeros(200_000, np.int64)
    clock = np.zeros(200_000, np.int64)
    _advance(inp, rng, state, clock)
    assert (state >= cal.n_open).all()
    se = clock.std() / np.sqrt(clock.size)
    assert abs(clock.mean() - expected) < 3 * se
    assert np.mean(state == cal.n_open) == pytest.approx(
        chain.win_probability[0], abs=3 * np.sqrt(0.25 / clock.size)
    )


def test_bit_identical_for_any_chunking(model):
    h, cal, deals = model
    edges = pd.date_range("2026-01-01", "2027-01-01", freq="QS")
    inp = compile_inputs(cal, deals, edges)
    runs = [
        simulate_pipeline(inp, cal.rep_ids, trials=230, block_size=50, seed=7, blocks_per_chunk=k)
        for k in (None, 1, 2, 3)
    ]
    for other in runs[1:]:
        np.testing.assert_array_equal(runs[0].bookings, other.bookings)
        np.testing.assert_array_equal(runs[0].won, other.won)
    # a different seed gives different numbers; a different block size too (documented)
    other_seed = simulate_pipeline(inp, cal.rep_ids, trials=230, block_size=50, seed=8)
    assert not np.array_equal(runs[0].bookings, other_seed.bookings)
    assert runs[0].bookings.shape == (230, len(cal.rep_ids), 4)


def test_bit_identical_on_dask(model):
    pytest.importorskip("distributed")
    from salesops_models.testing import threaded_dask_client

    _, cal, deals = model
    edges = pd.date_range("2026-01-01", "2026-07-01", freq="QS")
    inp = compile_inputs(cal, deals, edges)
    serial = simulate_pipeline(inp, cal.rep_ids, trials=120, block_size=40, seed=9)
    with threaded_dask_client(n_workers=1, threads_per_worker=2) as client:
        on_dask = simulate_pipeline(inp, cal.rep_ids, trials=120, block_size=40, seed=9, client=client)
    np.testing.assert_array_equal(serial.bookings, on_dask.bookings)


def test_horizon_new_deals_and_quarter_end_pull(model):
    _, cal, deals = model
    edges = pd.date_range("2026-01-01", "2027-01-01", freq="MS")
    inp = compile_inputs(cal, deals, edges, uncertainty="point")
    sim = simulate_pipeline(inp, cal.rep_ids, trials=300, block_size=100, seed=1)
    expected_new = cal.weekly_rate.sum() * 365 / 7
    assert sim.created.mean() == pytest.approx(expected_new, rel=0.05)
    # open deals' bookings all land before new deals can: January gets the open pipeline too
    by_month = sim.bookings.sum(axis=(0, 1))
    assert (by_month > 0).all()
    # a strong quarter-end pull moves won value into each quarter's third month, not across quarters
    cal.quarter_end_pull = 0.9
    pulled = simulate_pipeline(
        compile_inputs(cal, deals, edges), cal.rep_ids, trials=300, block_size=100, seed=1
    )
    cal.quarter_end_pull = 0.0
    flat = simulate_pipeline(
        compile_inputs(cal, deals, edges), cal.rep_ids, trials=300, block_size=100, seed=1
    )
    m3 = [2, 5, 8, 11]
    share = lambda s: s.bookings.sum(axis=(0, 1))[m3].sum() / s.bookings.sum()  # noqa: E731
    assert share(pulled) > share(flat) + 0.3
    q = lambda s: s.bookings.sum(axis=1).reshape(s.trials, 4, 3).sum(axis=2).mean(axis=0)  # noqa: E731
    np.testing.assert_allclose(q(pulled), q(flat), rtol=0.05)


def test_admin_time_scale_raises_creation(model):
    from salesops_models.pipeline.scaling import admin_time_scale

    _, cal, deals = model
    edges = pd.date_range("2026-01-01", "2026-07-01", freq="QS")
    scale = admin_time_scale(np.full(6, 20.0), np.full(6, 10.0), 0.5)
    np.testing.assert_allclose(scale, 1.25)
    base = simulate_pipeline(
        compile_inputs(cal, deals, edges), cal.rep_ids, trials=200, block_size=100, seed=2
    )
    more = simulate_pipeline(
        compile_inputs(cal, deals, edges, creation_scale=scale),
        cal.rep_ids,
        trials=200,
        block_size=100,
        seed=2,
    )
    assert more.created.mean() == pytest.approx(1.25 * base.created.mean(), rel=0.03)
    assert more.total_bookings().mean() > base.total_bookings().mean()


@pytest.mark.parametrize("uncertainty", ["point", "calibrated"])
def test_numba_kernels_give_the_numpy_numbers(model, monkeypatch, uncertainty):
    from salesops_models.pipeline import _kernels

    if not _kernels.AVAILABLE:
        pytest.skip("numba is not installed or SALESOPS_NUMBA=0: only the numpy path exists")
    _, cal, deals = model
    edges = pd.date_range("2026-01-01", "2026-07-01", freq="MS")
    runs = []
    for on in (True, False):
        monkeypatch.setattr(_kernels, "AVAILABLE", on)
        for e in (edges, None):
            inp = compile_inputs(cal, deals, e, new_deals=e is not None, uncertainty=uncertainty)
            runs.append(simulate_pipeline(inp, cal.rep_ids, trials=60, block_size=20, seed=12))
    for a, b in zip(runs[:2], runs[2:], strict=True):
        np.testing.assert_array_equal(a.bookings, b.bookings)
        np.testing.assert_array_equal(a.won, b.won)
        np.testing.assert_array_equal(a.lost_by_rep, b.lost_by_rep)
        assert a.draws == b.draws
