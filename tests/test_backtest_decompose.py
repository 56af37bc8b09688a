"""The backtest decomposition: wins of the horizon from open deals and from new deals, model and actual."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from salesops_models.backtest import won_in
from salesops_models.backtest.decompose import AGE_BANDS, decompose_horizon
from salesops_models.data.company import CompanyData
from salesops_models.data.schema import OPEN, WON
from salesops_models.pipeline.config import PipelineConfig
from salesops_models.pipeline.synthetic import EXAMPLE_HOLDING_DAYS, EXAMPLE_TRANSITIONS, synthetic_history

CUTOFF = pd.Timestamp("2025-09-30")
START, END = pd.Timestamp("2025-10-01"), pd.Timestamp("2026-01-01")


@pytest.fixture(scope="module")
def company() -> CompanyData:
    """A stationary history drawn from the model's own process, known to 2025-12-31."""
    h = synthetic_history(EXAMPLE_TRANSITIONS, EXAMPLE_HOLDING_DAYS, n_reps=5, deals_per_rep_week=3.0, seed=21)
    accounts = pd.DataFrame(columns=["account_id"])
    return CompanyData(accounts, h.reps, h.opportunities, h.stages, h.as_of, stage_history=h.stage_history)


def _z(row: pd.Series, trials_sd: float) -> float:
    return (row["actual_won"] - row["model_won"]) / trials_sd


def test_parts_add_up_and_the_true_process_is_recovered_in_each_part(company):
    d = decompose_horizon(company, CUTOFF, START, END, PipelineConfig(), trials=400, seed=5, by_age=False)
    t = d.table.set_index("part")
    # the actual parts are a partition of the horizon's won value
    assert t["actual_value"].sum() == pytest.approx(won_in(company.opportunities, START, END), rel=1e-12)
    # the history is the model's own process: each part's real win count lies within 3 sd of the
    # model's distribution (sd from the model's P10-P90, 2.563 sd wide for a normal)
    for part in ("open", "new"):
        sd = (t.loc[part, "model_won_p90"] - t.loc[part, "model_won_p10"]) / 2.563
        assert abs(_z(t.loc[part], max(sd, 1.0))) < 3.0, (part, t.loc[part].to_dict())
    # sizes are drawn from the won deals' pool: the mean won size of each part within 15 % of the truth
    ratio = t["model_won_size"] / t["actual_won_size"]
    assert ratio.between(0.85, 1.15).all(), ratio.to_dict()
    # the open part's deal count is the live open pipeline on the cutoff, model and actual alike
    assert t.loc["open", "model_deals"] == t.loc["open", "actual_deals"] > 0
    assert t.loc["new", "model_cycle_days"] > 0 and t.loc["new", "actual_cycle_days"] > 0


def test_an_open_pipeline_that_stops_converting_shows_in_the_open_part_only(company):
    """The mechanism the Maven backtest shows: deals open on the cutoff that are never decided.

    The same history, except that every deal open on the cutoff stays open to the export's end
    (no deal of the open pipeline is ever won or lost). The model, calibrated on the history
    before the cutoff, cannot know it: the open part must carry the whole over-forecast, and the new
    part must still be recovered.
    """
    opp = company.opportunities.copy()
    open_then = (opp["created_date"] <= CUTOFF) & ~(opp["close_date"] <= CUTOFF)
    opp.loc[open_then, ["status", "close_date", "amount"]] = [OPEN, pd.NaT, np.nan]
    sh = company.stage_history
    ids = set(opp.loc[open_then, "opportunity_id"])
    sh = sh[~(sh["opportunity_id"].isin(ids) & (sh["entered_date"] > CUTOFF))]
    zombie = dataclasses.replace(company, opportunities=opp, stage_history=sh)
    d = decompose_horizon(zombie, CUTOFF, START, END, PipelineConfig(), trials=400, seed=5)
    t = d.table.set_index("part")
    assert t.loc["open", "actual_won"] == 0 and t.loc["open", "model_won_p10"] > 10
    sd_new = (t.loc["new", "model_won_p90"] - t.loc["new", "model_won_p10"]) / 2.563
    assert abs(_z(t.loc["new"], max(sd_new, 1.0))) < 3.0
    # by age band: every open deal is accounted for, and its fate shares add up to one
    a = d.by_age
    assert a["deals"].sum() == t.loc["open", "actual_deals"] + int((a["stale"] * a["deals"]).round().sum())
    fate = a[["actual_won", "actual_lost", "actual_won_later", "actual_lost_later", "actual_open_at_end"]]
    np.testing.assert_allclose(fate.sum(axis=1), 1.0)
    assert (a["actual_open_at_end"] == 1.0).all() and (a["model_won"] > 0).any()
    assert set(a["age_from"]) <= set(AGE_BANDS)
    assert (opp.loc[open_then, "status"] != WON).all()
