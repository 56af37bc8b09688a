"""Mid-year changes: quota relief pro-rated to the day, accounts and open deals reassigned as stated.

Hand-computed example (plan year 2026, flat monthly quotas):

* R1 carries 10,000 a month (120,000), R2 5,000 (60,000), R3 10,000. R1 owns A1 (potential 300)
  and A2 (100); R2 owns A3; R3 owns A4.
* R1's last day is 2026-04-15: from 16 April (16 of April's 30 days... 15 days left) his accounts move.
  remaining share = (15/30 + 8) / 12 = 0.708333.
  - A1 (3/4 of his potential, account quota 90,000) goes to R2: 90,000 x 0.708333 = 63,750
    (April 3,750 = 0.75 x 10,000 x 15/30, May-December 7,500 a month).
  - A2 (account quota 30,000) goes to the vacancy: 21,250.
  - R1 keeps 30,000 (January-March) + 5,000 (half of April) = 35,000: relief 85,000.
* R9 is hired on 2026-07-01 with an annual quota of 60,000: he carries July-December, 30,000.
* On 2026-07-01 every account of the vacancy (A2) moves to R9: 6 x 2,500 = 15,000; the vacancy
  keeps April-June: 1,250 + 2 x 2,500 = 6,250.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salesops_models.errors import TrackingError
from salesops_models.tracking import ChangeLog, apply_changes, load_changes
from salesops_models.tracking.commission import employment_share

HOLDERS = pd.DataFrame(
    {
        "rep_id": ["R1", "R2", "R3"],
        "rep_name": ["Ann", "Bob", "Cid"],
        "region": ["West", "West", "East"],
        "manager": ["Mia", "Mia", "Max"],
    }
)
MONTHLY = pd.DataFrame(
    np.array([[10_000.0] * 12, [5_000.0] * 12, [10_000.0] * 12]),
    index=["R1", "R2", "R3"],
    columns=range(1, 13),
)
ACCOUNTS = pd.DataFrame({"account_id": ["A1", "A2", "A3", "A4"], "potential": [300.0, 100.0, 200.0, 50.0]})
OWNERS = pd.Series(["R1", "R1", "R2", "R3"], index=["A1", "A2", "A3", "A4"])

CHANGES = {
    "changes": [
        # listed out of date order on purpose: they are applied by date
        {
            "type": "account_move",
            "from_rep_id": "VACANT-R1",
            "to_rep_id": "R9",
            "effective_date": "2026-07-01",
        },
        {"type": "departure", "rep_id": "R1", "last_day": "2026-04-15", "accounts": {"A1": "R2"}},
        {"type": "hire", "rep_id": "R9", "start_date": "2026-07-01", "region": "West", "annual_quota": 60000},
    ]
}


def apply(doc: dict) -> object:
    return apply_changes(
        ChangeLog.model_validate(doc),
        plan_year=2026,
        holders=HOLDERS,
        monthly_quota=MONTHLY,
        accounts=ACCOUNTS,
        owners=OWNERS,
    )


@pytest.fixture(scope="module")
def mid():
    return apply(CHANGES)


def test_relief_is_pro_rated_to_the_day(mid):
    q = mid.annual_quota
    assert q["R1"] == pytest.approx(35_000.0)
    assert mid.relief()["R1"] == pytest.approx(-85_000.0)
    assert q["R2"] == pytest.approx(60_000.0 + 63_750.0)
    assert q["VACANT-R1"] == pytest.approx(6_250.0)
    assert q["R9"] == pytest.approx(30_000.0 + 15_000.0)
    assert q["R3"] == pytest.approx(120_000.0)
    # no quota is created or lost by moving accounts; only the hire adds his own
    assert q.sum() == pytest.approx(MONTHLY.to_numpy().sum() + 30_000.0)
    m = mid.monthly_quota
    np.testing.assert_allclose(m.loc["R1"], [10_000] * 3 + [5_000] + [0] * 8)
    np.testing.assert_allclose(m.loc["R2"], [5_000] * 3 + [5_000 + 3_750] + [12_500] * 8)
    np.testing.assert_allclose(m.loc["VACANT-R1"], [0, 0, 0, 1_250, 2_500, 2_500] + [0] * 6)
    np.testing.assert_allclose(m.loc["R9"], [0] * 6 + [5_000 + 2_500] * 6)
    assert mid.summary() == {
        "holders": 5,
        "hires": 1,
        "leavers": 1,
        "vacancies": 1,
        "quota_moved": pytest.approx(30_000.0 + 63_750.0 + 21_250.0 + 15_000.0),
        "annual_quota": pytest.approx(MONTHLY.to_numpy().sum() + 30_000.0),
    }


def test_transfers_are_listed_with_their_arithmetic(mid):
    t = mid.transfers.set_index(["type", "account_id"], drop=False)
    a1 = t.loc[("departure", "A1")]
    assert (a1["from_rep_id"], a1["to_rep_id"]) == ("R1", "R2")
    assert a1["effective_date"] == pd.Timestamp("2026-04-16")
    assert a1["account_quota"] == pytest.approx(90_000.0)
    assert a1["remaining_share"] == pytest.approx(8.5 / 12)
    assert a1["transfer"] == pytest.approx(63_750.0)
    a2 = t.loc[("departure", "A2")]
    assert a2["to_rep_id"] == "VACANT-R1" and a2["transfer"] == pytest.approx(21_250.0)
    move = t.loc[("account_move", "A2")]
    assert (move["from_rep_id"], move["to_rep_id"]) == ("VACANT-R1", "R9")
    assert move["transfer"] == pytest.approx(15_000.0)
    hire = mid.transfers[mid.transfers["type"] == "hire"].iloc[0]
    assert hire["to_rep_id"] == "R9" and hire["transfer"] == pytest.approx(30_000.0)


def test_accounts_and_open_deals_are_reassigned_as_stated(mid):
    assert mid.owners.to_dict() == {"A1": "R2", "A2": "R9", "A3": "R2", "A4": "R3"}
    opps = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3", "O4", "O5", "O6", "O7", "O8"],
            "rep_id": ["R1", "R1", "R1", "R1", "R1", "R2", "R1", "R1"],
            "account_id": ["A1", "A1", "A2", None, "A1", "A3", "A1", "A2"],
            "status": ["won", "open", "won", "open", "lost", "open", "won", "open"],
            "close_date": pd.to_datetime(
                ["2026-04-10", None, "2026-05-02", None, "2026-04-16", None, "2026-04-15", None]
            ),
        }
    )
    credited = mid.credit(opps)
    assert credited.tolist() == [
        "R1",  # won before he left: his
        "R2",  # open, account A1 went to R2
        "VACANT-R1",  # closed 2 May, A2 was with the vacancy then (it moved to R9 on 1 July)
        "VACANT-R1",  # no account: the catch-all owner of his deals
        "R2",  # closed on the effective day itself: no longer his
        "R2",  # another rep's deal is untouched
        "R1",  # closed on his last day: his
        "R9",  # open on 1 July on A2: followed the account to the hire
    ]


def test_employment_is_pro_rated_to_the_day(mid):
    share = employment_share(mid.holders, 2026)
    assert share["R1"] == pytest.approx((31 + 28 + 31 + 15) / 365)
    assert share["R9"] == pytest.approx(184 / 365)
    assert share["R2"] == 1.0 and share["VACANT-R1"] == 0.0
    h = mid.holders.set_index("rep_id")
    assert h.loc["VACANT-R1", "region"] == "West" and h.loc["VACANT-R1", "manager"] == "Mia"
    assert h.loc["R9", "manager"] == "Mia"  # the region's most common manager


def test_a_leaver_without_accounts_leaves_his_quota_to_the_vacancy():
    doc = {"changes": [{"type": "departure", "rep_id": "R3", "last_day": "2026-06-30", "accounts_to": "R2"}]}
    mid = apply_changes(
        ChangeLog.model_validate(doc),
        plan_year=2026,
        holders=HOLDERS,
        monthly_quota=MONTHLY,
        accounts=ACCOUNTS.assign(potential=[300.0, 100.0, 200.0, 0.0]),
        owners=OWNERS,
    )
    # A4 has no potential and no revenue: it carries no quota; the rest of R3's year stays in East
    assert mid.annual_quota["R3"] == pytest.approx(60_000.0)
    assert mid.annual_quota["VACANT-R3"] == pytest.approx(60_000.0)
    assert mid.annual_quota["R2"] == pytest.approx(60_000.0)
    assert mid.owners["A4"] == "R2"


def test_every_bad_change_is_named_at_once():
    doc = {
        "changes": [
            {"type": "departure", "rep_id": "R7", "last_day": "2026-03-31"},
            {"type": "departure", "rep_id": "R2", "last_day": "2025-12-15"},
            {"type": "hire", "rep_id": "R3", "start_date": "2026-02-01", "region": "West"},
            {"type": "hire", "rep_id": "R8", "start_date": "2026-02-01", "region": "North"},
            {"type": "account_move", "account_id": "A9", "to_rep_id": "R2", "effective_date": "2026-03-01"},
            {"type": "account_move", "account_id": "A3", "to_rep_id": "R2", "effective_date": "2026-03-01"},
            {"type": "departure", "rep_id": "R1", "last_day": "2026-04-15", "accounts": {"A4": "R2"}},
        ]
    }
    with pytest.raises(TrackingError) as err:
        apply(doc)
    text = str(err.value)
    for part in [
        "change 1 (departure R7): 'R7' is not a rep of the plan",
        "change 2 (departure R2): date 2025-12-15 is not in the plan year 2026",
        "change 3 (hire R3): rep_id 'R3' is already used",
        "change 4 (hire R8): region 'North' is not a region of the plan (East, West)",
        "change 5 (account_move A9 -> R2): account 'A9' is not an account of the plan",
        "change 6 (account_move A3 -> R2): account(s) already belong to 'R2'",
        "change 7 (departure R1): account(s) ['A4'] under 'accounts' are not his",
    ]:
        assert part in text, (part, text)


def test_a_new_owner_must_be_working_on_the_day():
    doc = {
        "changes": [
            {"type": "hire", "rep_id": "R9", "start_date": "2026-09-01", "region": "West"},
            {"type": "departure", "rep_id": "R1", "last_day": "2026-04-15", "accounts_to": "R9"},
        ]
    }
    with pytest.raises(
        TrackingError,
        match=r"new owner 'R9' is not a rep of the plan, nor a hire who has started by 2026-04-16",
    ):
        apply(doc)
    doc["changes"][0]["start_date"] = "2026-03-01"
    doc["changes"].append(
        {"type": "departure", "rep_id": "R2", "last_day": "2026-02-27", "accounts_to": "R3"}
    )
    doc["changes"].append(
        {"type": "account_move", "account_id": "A4", "to_rep_id": "R2", "effective_date": "2026-03-02"}
    )
    with pytest.raises(TrackingError, match=r"to_rep_id 'R2' is not working on 2026-03-02"):
        apply(doc)


def test_changes_file_errors_name_file_entry_and_field(tmp_path):
    f = tmp_path / "changes.yaml"
    f.write_text("changes:\n  - {type: departure, rep_id: R1, last_dy: 2026-04-15}\n  - {type: promotion}\n")
    with pytest.raises(TrackingError) as err:
        load_changes(f)
    text = str(err.value)
    assert f"{f}: unknown key 'changes.0.departure.last_dy'" in text
    assert "'changes.0.departure.last_day': Field required" in text
    assert "type must be one of departure, hire, account_move" in text
    f.write_text("a: &x [1, 2]\nchanges: *x\n")
    with pytest.raises(TrackingError, match="aliases"):
        load_changes(f)
    f.write_text("- just a list\n")
    with pytest.raises(TrackingError, match="top level must be a mapping"):
        load_changes(f)
    f.write_text(
        "changes:\n  - {type: account_move, account_id: A1, from_rep_id: R1, to_rep_id: R2, effective_date: 2026-03-01}\n"
    )
    with pytest.raises(TrackingError, match="exactly one of account_id"):
        load_changes(f)
    with pytest.raises(TrackingError, match="not found"):
        load_changes(tmp_path / "missing.yaml")
