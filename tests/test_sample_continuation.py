"""The sample company's plan-year continuation: the history stays bit for bit, the future is true."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from salesops_models.backtest import snapshot_at
from salesops_models.data import CompanyData, generate_plan_year_actuals
from salesops_models.errors import DataValidationError

SMALL = {"seed": 3, "n_accounts": 150, "n_reps": 6, "n_regions": 2, "years": 2}

# sha256 (first 16 hex digits) of each table's CSV text, taken from the generator before the
# continuation existed: the golden figures of tests and README, and other engineers' benchmarks,
# rest on these tables.
GOLDEN = {
    "seed7-default": {
        "accounts": "9a9a941292d9b00d",
        "reps": "3c7df955ccfb11c1",
        "opportunities": "9ded36ef2258cece",
        "stage_history": "dceb42182f6c40c6",
        "bookings": "9f2d50caf5d1378d",
        "activities": "af27e558bedaede7",
    },
    "seed3-small": {
        "accounts": "8e211be8900c8e61",
        "reps": "d58c5c2dfcae58f2",
        "opportunities": "ef9294578d7ab7b0",
        "stage_history": "b8da367e8d4d335d",
        "bookings": "d3b4bc92230ef2cb",
        "activities": "d64cafeb9b908101",
    },
}


def digest(company: CompanyData) -> dict[str, str]:
    return {
        t: hashlib.sha256(getattr(company, t).to_csv(index=False).encode()).hexdigest()[:16]
        for t in company.TABLES
    }


def test_history_is_bit_identical_to_before_the_continuation(sample_company, small_company):
    assert digest(sample_company) == GOLDEN["seed7-default"]
    assert digest(small_company) == GOLDEN["seed3-small"]


@pytest.fixture(scope="module")
def year_end():
    return generate_plan_year_actuals("2026-12-31", **SMALL)


@pytest.fixture(scope="module")
def mid_year():
    return generate_plan_year_actuals("2026-06-30", **SMALL)


def cut(company: CompanyData, day: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Opportunities and stage history as an export on ``day`` shows them: ``snapshot_at``, with
    every deal open that day in the last open stage it had entered by then."""
    opp, sh = snapshot_at(company.opportunities, company.stage_history, company.stages, day)
    rank = {s: i for i, s in enumerate(company.stages.all_stages)}
    last = (
        sh[sh["stage"].isin(company.stages.open_stages)]
        .assign(r=sh["stage"].map(rank))
        .sort_values(["opportunity_id", "entered_date", "r"])
        .groupby("opportunity_id")["stage"]
        .last()
    )
    is_open = opp["status"] == "open"
    opp.loc[is_open, "stage"] = opp.loc[is_open, "opportunity_id"].map(last).to_numpy()
    return opp, sh


def test_cut_back_at_the_snapshot_the_continuation_is_the_history(small_company, year_end):
    opp, sh = cut(year_end, "2025-12-31")
    a = opp.set_index("opportunity_id").sort_index()
    b = small_company.opportunities.set_index("opportunity_id").sort_index()
    assert a.index.equals(b.index)
    for col in [
        "account_id",
        "rep_id",
        "product",
        "segment",
        "created_date",
        "stage",
        "status",
        "close_date",
    ]:
        assert a[col].equals(b[col]), col
    closed = b["status"] != "open"
    assert a.loc[closed, "amount"].equals(b.loc[closed, "amount"])  # open deals' values are hidden by the cut
    hist = sh.sort_values(["opportunity_id", "entered_date", "stage"]).reset_index(drop=True)
    ref = small_company.stage_history.sort_values(["opportunity_id", "entered_date", "stage"]).reset_index(
        drop=True
    )
    pd.testing.assert_frame_equal(hist, ref, check_dtype=False)


def test_open_deals_at_the_snapshot_play_out_their_true_future(small_company, year_end):
    was_open = small_company.opportunities.query("status == 'open'")["opportunity_id"]
    later = year_end.opportunities.set_index("opportunity_id").loc[was_open]
    assert (later["status"] != "open").mean() > 0.9  # stage durations are weeks, not a year
    won = later[later["status"] == "won"]
    assert (won["close_date"] > pd.Timestamp("2025-12-31")).all() and len(won) > 10
    # the amount recorded on the open deal is the value booked when it is won
    before = small_company.opportunities.set_index("opportunity_id")["amount"]
    assert won["amount"].equals(before.loc[won.index])
    # new deals are created in the plan year, with ids after the history's
    new = year_end.opportunities[year_end.opportunities["created_date"] > pd.Timestamp("2025-12-31")]
    assert (
        len(new) > 100 and new["opportunity_id"].min() > small_company.opportunities["opportunity_id"].max()
    )


def test_an_earlier_export_is_a_prefix_of_a_later_one(year_end, mid_year):
    day = pd.Timestamp("2026-06-30")
    assert mid_year.as_of == day
    a = cut(year_end, "2026-06-30")[0].set_index("opportunity_id").sort_index()
    b = mid_year.opportunities.set_index("opportunity_id").sort_index()
    assert a.index.equals(b.index)
    for col in ["rep_id", "account_id", "created_date", "stage", "status", "close_date"]:
        assert a[col].equals(b[col]), col
    won = b["status"] == "won"
    assert a.loc[won, "amount"].equals(b.loc[won, "amount"])
    pd.testing.assert_frame_equal(
        year_end.activities[year_end.activities["week_start"] <= day].reset_index(drop=True),
        mid_year.activities,
    )
    assert mid_year.bookings["month"].max() <= day


def test_the_continuation_follows_the_sample_story(small_company, year_end):
    o = year_end.opportunities
    by_year = o[o["status"] == "won"].groupby(o["close_date"].dt.year)["amount"].sum()
    assert by_year[2026] > 0.9 * by_year[2025]  # creation keeps growing 12 % a year
    assert year_end.activities["week_start"].max() > pd.Timestamp("2026-12-20")
    pd.testing.assert_frame_equal(year_end.reps, small_company.reps)


def test_plan_year_owners_take_the_new_deals(small_company):
    acc = small_company.accounts
    moved = acc["account_id"].iloc[:40]
    owners = pd.Series("R001", index=moved)
    c = generate_plan_year_actuals("2026-12-31", owners=owners, **SMALL)
    assert (c.accounts.set_index("account_id").loc[moved, "owner_rep_id"] == "R001").all()
    new = c.opportunities[c.opportunities["created_date"] > pd.Timestamp("2025-12-31")]
    on_moved = new[new["account_id"].isin(moved)]
    assert len(on_moved) > 10 and (on_moved["rep_id"] == "R001").all()
    old_open = small_company.opportunities.query("status == 'open'").set_index("opportunity_id")["rep_id"]
    assert c.opportunities.set_index("opportunity_id").loc[old_open.index, "rep_id"].equals(old_open)


@pytest.mark.parametrize(
    ("through", "owners", "match"),
    [
        ("2025-12-31", None, "covers the year after the snapshot"),
        ("2027-01-02", None, "covers the year after the snapshot"),
        ("2026-03-31", pd.Series({"A99999": "R001"}), "not accounts of the sample company"),
        ("2026-03-31", pd.Series({"A00001": "R077"}), "not reps of the sample company"),
    ],
)
def test_bad_continuation_requests_are_named(through, owners, match):
    with pytest.raises(DataValidationError, match=match):
        generate_plan_year_actuals(through, owners=owners, **SMALL)


def test_same_arguments_same_continuation(year_end):
    again = generate_plan_year_actuals("2026-12-31", **SMALL)
    assert digest(again) == digest(year_end)
    other = generate_plan_year_actuals("2026-12-31", **{**SMALL, "seed": 4})
    assert digest(other)["opportunities"] != digest(year_end)["opportunities"]
