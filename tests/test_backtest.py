"""The backtest harness: scores with known values, bad input, artefacts, reproducibility, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from salesops_models.backtest import (
    BacktestError,
    BacktestSettings,
    company_at,
    default_cutoffs,
    horizon_of,
    load_latest_backtest,
    run_backtest,
)
from salesops_models.backtest.scoring import (
    crps_from_quantiles,
    crps_samples,
    pinball_loss,
    pit_quantiles,
    pit_samples,
    score_samples,
)
from salesops_models.pipeline.config import PipelineConfig


def test_crps_of_samples_matches_the_normal_closed_form():
    # CRPS(N(0,1), y) = z(2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi) (Gneiting & Raftery 2007)
    x = stats.norm.ppf((np.arange(20_000) + 0.5) / 20_000)
    for y in (-1.3, 0.0, 0.4, 2.5):
        exact = y * (2 * stats.norm.cdf(y) - 1) + 2 * stats.norm.pdf(y) - 1 / np.sqrt(np.pi)
        assert crps_samples(x, y) == pytest.approx(exact, abs=2e-4)
    # a point forecast: the absolute error
    assert crps_samples(np.array([3.0]), 5.5) == pytest.approx(2.5)
    # the quantile form approaches it with many levels
    levels = (np.arange(99) + 1) / 100
    assert crps_from_quantiles(stats.norm.ppf(levels), levels, 0.4) == pytest.approx(
        crps_samples(x, 0.4), rel=0.05
    )


def test_pinball_and_pit_by_hand():
    assert pinball_loss(np.array([10.0]), np.array([0.9]), 4.0) == pytest.approx(0.1 * 6)
    assert pinball_loss(np.array([10.0]), np.array([0.9]), 14.0) == pytest.approx(0.9 * 4)
    assert pit_samples(np.array([1.0, 2.0, 3.0, 4.0]), 3.0) == pytest.approx(0.625)
    q, tau = np.array([1.0, 2.0, 4.0]), np.array([0.1, 0.5, 0.9])
    assert pit_quantiles(q, tau, 3.0) == pytest.approx(0.7)
    assert pit_quantiles(q, tau, 0.0) == pytest.approx(0.05) and pit_quantiles(q, tau, 9.0) == pytest.approx(
        0.95
    )
    row = score_samples(np.arange(1.0, 101.0), 95.0)
    assert row["inside_p05_p95"] and not row["inside_p10_p90"]


def test_horizon_is_the_next_calendar_months():
    start, end = horizon_of(pd.Timestamp("2017-06-30"), 3)
    assert (start, end) == (pd.Timestamp("2017-07-01"), pd.Timestamp("2017-10-01"))
    cuts = default_cutoffs(pd.Timestamp("2017-12-31"), 3)
    assert [str(c.date()) for c in cuts] == [
        "2017-04-30",
        "2017-05-31",
        "2017-06-30",
        "2017-07-31",
        "2017-08-31",
        "2017-09-30",
    ]


def test_company_at_knows_nothing_after_the_cutoff(small_company):
    cut = pd.Timestamp("2025-03-31")
    c = company_at(small_company, cut)
    assert c.as_of == cut
    assert c.opportunities["created_date"].max() <= cut
    assert (c.opportunities["close_date"].dropna() <= cut).all()
    assert c.opportunities.loc[c.opportunities["status"] == "open", "amount"].isna().all()
    assert pd.to_datetime(c.bookings["month"]).max() <= cut
    assert (pd.to_datetime(c.reps["hire_date"]).dropna() <= cut).all()


@pytest.mark.parametrize(
    ("cutoffs", "match"),
    [
        (
            ("2025-11-30",),
            "outside the data.*horizon ends 2026-02-28.*Fix: use cutoffs on or before 2025-09-30",
        ),
        (("2023-06-30",), "outside the data"),
        (("2024-01-20",), "too little history.*Fix: use later cutoffs"),
    ],
)
def test_bad_cutoffs_name_the_problem_and_the_fix(small_company, cutoffs, match):
    settings = BacktestSettings(cutoffs=tuple(pd.Timestamp(c) for c in cutoffs), trials=10)
    with pytest.raises(BacktestError, match=match):
        run_backtest(small_company, settings)
    with pytest.raises(BacktestError, match="unknown model"):
        run_backtest(small_company, BacktestSettings(cutoffs=(pd.Timestamp("2025-06-30"),), models=("pipe",)))


@pytest.fixture(scope="module")
def small_report(small_company):
    settings = BacktestSettings(
        cutoffs=(pd.Timestamp("2025-06-30"), pd.Timestamp("2025-08-31")),
        horizon_months=3,
        trials=60,
        pipeline=PipelineConfig(block_size=30),
        label="small",
    )
    return settings, run_backtest(small_company, settings)


def test_report_scores_every_model_and_its_baseline(small_company, small_report):
    settings, rep = small_report
    s = rep.scores
    assert set(s["model"]) == {"pipeline", "forecast", "rep_attainment", "commission"}
    for model in ("pipeline", "commission"):
        part = s[s["model"] == model]
        assert len(part) == 4 and part["naive"].sum() == 2  # model and naive at both cutoffs
    assert len(s[(s["model"] == "forecast") & ~s["naive"]]) == 6  # 3 months x 2 cutoffs
    # the actual is what happened in the horizon, from the full history
    opp = small_company.opportunities
    won = opp[(opp["status"] == "won") & opp["close_date"].between("2025-07-01", "2025-09-30")]
    first = s[(s["model"] == "pipeline") & (s["cutoff"] == "2025-06-30") & ~s["naive"]].iloc[0]
    assert first["actual"] == pytest.approx(won["amount"].sum())
    assert first["q05"] <= first["q10"] <= first["q50"] <= first["q90"] <= first["q95"]
    m = rep.summary["models"]["pipeline"]
    assert m["model"]["n"] == 2 and sum(m["model"]["pit_histogram"]) == 2
    assert 0.0 <= m["model"]["coverage_p10_p90"] <= m["model"]["coverage_p05_p95"] <= 1.0
    assert m["crps_skill"] == pytest.approx(1 - m["model"]["crps_mean"] / m["naive"]["crps_mean"])
    assert rep.summary["horizon_definition"].startswith("the calendar months after each cutoff")
    assert len(rep.summary["rep_attainment_spread"]) == 2 and len(rep.summary["commission"]) == 2
    json.dumps(rep.summary)


def test_same_settings_same_scores(small_company, small_report):
    settings, rep = small_report
    again = run_backtest(small_company, settings)
    pd.testing.assert_frame_equal(rep.scores, again.scores)


def test_artefact_folder_and_latest_loader(tmp_path, small_report):
    _, rep = small_report
    first = rep.write(tmp_path)
    second = rep.write(tmp_path)  # never overwrites
    assert first != second
    for name in ("scores.parquet", "model_summary.parquet", "summary.json", "coverage.png"):
        assert (first / name).stat().st_size > 0
    summary, scores, folder = load_latest_backtest(tmp_path)
    assert folder in (first, second) and summary["label"] == "small" and len(scores) == len(rep.scores)
    with pytest.raises(Exception, match="no backtest artefact"):
        load_latest_backtest(tmp_path / "empty")


def test_cli_backtest(tmp_path, small_company):
    from salesops_models.cli import main

    folder = tmp_path / "company"
    small_company.to_dir(folder)
    runner = CliRunner()
    args = ["backtest", str(folder), "--mapping", "canonical", "--trials", "20", "--models", "pipeline"]
    ok = runner.invoke(main, [*args, "--cutoffs", "2025-06-30", "--out", str(tmp_path / "bt")])
    assert ok.exit_code == 0, ok.output
    assert "pipeline" in ok.output and (tmp_path / "bt").is_dir()
    bad = runner.invoke(main, [*args, "--cutoffs", "2025-12-15", "--out", str(tmp_path / "bt")])
    assert bad.exit_code != 0 and "outside the data" in bad.output and "Traceback" not in bad.output
    junk = runner.invoke(main, [*args, "--cutoffs", "June", "--out", str(tmp_path / "bt")])
    assert junk.exit_code != 0 and "--cutoffs" in junk.output
