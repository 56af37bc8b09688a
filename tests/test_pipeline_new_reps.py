"""Planned hires get creation rates from the territory they are given, ramped from their hire date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.pipeline.scaling import new_rep_rates


def test_new_rep_rate_by_hand():
    rep_ids = np.array(["a", "b", "new1", "new2"], dtype=object)
    rates = np.array([2.0, 1.0, 0.0, 0.0])
    table = pd.DataFrame(
        {
            "rep_id": rep_ids,
            "potential_old": [200.0, 100.0, 0.0, 0.0],
            "potential_new": [150.0, 100.0, 30.0, 60.0],
        }
    )
    hires = pd.Series(pd.to_datetime(["2010-01-01", "2012-01-01", "2026-01-01", "2026-07-01"]), index=rep_ids)
    edges = pd.date_range("2026-01-01", "2027-01-01", freq="MS")
    out, t = new_rep_rates(rates, rep_ids, table, hires, edges, ramp_months=0)
    # 3 deals/week on 300 of potential -> 0.01 per unit; new1 full year, new2 half a year
    assert out[:2].tolist() == [2.0, 1.0]
    assert out[2] == pytest.approx(0.3)
    assert out[3] == pytest.approx(0.6 * 6 / 12)
    assert list(t["rep_id"]) == ["new1", "new2"]
    ramped, _ = new_rep_rates(rates, rep_ids, table, hires, edges, ramp_months=6)
    # linear ramp over 6 months, evaluated at mid-month: (0.5+1.5+...+5.5)/6 + 6 full months, over 12
    expected = (sum(m + 0.5 for m in range(6)) / 6 + 6) / 12
    assert ramped[2] == pytest.approx(0.3 * expected)


def test_no_hires_no_change():
    rep_ids = np.array(["a"], dtype=object)
    table = pd.DataFrame({"rep_id": ["a"], "potential_old": [1.0], "potential_new": [1.0]})
    out, t = new_rep_rates(
        np.array([1.5]),
        rep_ids,
        table,
        pd.Series(dtype="datetime64[ns]"),
        pd.date_range("2026-01-01", "2027-01-01", freq="MS"),
        6,
    )
    assert out.tolist() == [1.5] and t.empty


def test_growth_scenario_hires_book_revenue(tmp_path):
    from salesops_models.scenario import load_scenario
    from salesops_models.workflow.runner import run_scenario

    f = tmp_path / "grow.yaml"
    f.write_text(
        "name: grow\nplan_year: 2026\n"
        "data: {sample: {n_accounts: 200, n_reps: 6, n_regions: 2, years: 2},"
        " hires: [{region: West, count: 1, start_month: 3}]}\n"
        "territory: {time_limit: 20}\npipeline: {trials: 50, block_size: 25}\n"
    )
    sc = load_scenario(f)
    out = run_scenario(sc, tmp_path / "out", stages=["data", "territory", "pipeline"])
    assert out.status == "ok", out.error
    samples = pd.read_parquet(tmp_path / "out" / "rep_bookings_samples.parquet")
    new = samples[samples["rep_id"] == "NEW01"]
    assert len(new) == 50 and new["bookings"].mean() > 0
    assert (tmp_path / "out" / "pipeline_new_reps.parquet").exists()
