"""The company as the plan will run it: new territories, the reps placed for them, history that follows.

A territory plan changes who owns which account, and may add reps (``territory.new_reps``). Every
model downstream must then see the same company:

- the **roster**: today's reps plus the reps placed by territory design (hired at the start of the
  plan year unless their row says otherwise);
- **accounts** with their new owner (``owner_rep_id``) and the one before (``previous_owner_rep_id``);
- **opportunities that follow their account**: every deal (open, won or lost) on an account that
  changes owner, booked by the account's previous owner, is re-credited to the new owner. Open deals
  are then worked by the new owner, bookings already closed this year count for him, and his
  history (prior-year and trailing bookings, the rep-level forecast) is the history of his new
  territory;
- **bookings re-based** the same way, month by month.

:func:`realign_company` returns that company and a record of what moved, so that each stage can say
what it changed. Reps and accounts not touched by the plan keep their rows unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import pandas as pd

from salesops_models.data.company import CompanyData, bookings_from_opportunities
from salesops_models.data.schema import BOOKINGS, WON
from salesops_models.errors import DataValidationError

log = logging.getLogger(__name__)


@dataclass
class Realignment:
    """A company under a territory plan.

    Attributes
    ----------
    company
        The realigned company (roster, new owners, opportunities and bookings that follow accounts).
    previous_owner
        Owner of each account before the plan (index ``account_id``; NA when unknown).
    moved_accounts
        Ids of the accounts whose owner changes (known previous owner, different new owner).
    moved_deals
        One row per re-credited opportunity: ``opportunity_id, account_id, status, amount,
        close_date, from_rep_id, to_rep_id``.
    placed_reps
        Ids of the reps added by territory design (not in the company's reps table before).
    """

    company: CompanyData
    previous_owner: pd.Series
    moved_accounts: list[str]
    moved_deals: pd.DataFrame
    placed_reps: list[str]

    def summary(self) -> dict[str, int | float]:
        """Counts of what the plan moved: accounts, deals (open, won) and won value [currency]."""
        d = self.moved_deals
        won = d[d["status"] == WON]
        return {
            "moved_accounts": len(self.moved_accounts),
            "moved_open_deals": int((d["status"] == "open").sum()),
            "moved_won_deals": len(won),
            "moved_won_value": float(won["amount"].fillna(0.0).sum()),
            "placed_reps": len(self.placed_reps),
        }


def plan_roster(reps: pd.DataFrame, placed: pd.DataFrame | None, plan_year: int) -> pd.DataFrame:
    """Today's reps plus the reps territory design placed, with a hire date for each placed rep.

    Parameters
    ----------
    reps
        Canonical reps table.
    placed
        Reps added by territory design (``rep_id`` and any reps columns); None or empty: none.
    plan_year
        Placed reps without a ``hire_date`` start on 1 January of this year (so they ramp).

    Returns
    -------
    pandas.DataFrame
        The reps table of the plan; placed reps already in ``reps`` are not added twice.
    """
    if placed is None or placed.empty:
        return reps
    new = placed.assign(rep_id=placed["rep_id"].astype(str))
    new = new[~new["rep_id"].isin(reps["rep_id"].astype(str))]
    if new.empty:
        return reps
    hire = pd.to_datetime(new["hire_date"]) if "hire_date" in new else pd.Series(pd.NaT, index=new.index)
    new["hire_date"] = hire.fillna(pd.Timestamp(year=plan_year, month=1, day=1))
    if "manager" in reps and "manager" not in new and "region" in new and "region" in reps:
        # a placed rep joins the team that most of his region's reps report to
        mode = reps.dropna(subset=["manager"]).groupby("region")["manager"].agg(lambda s: s.mode().iloc[0])
        new["manager"] = new["region"].map(mode)
    cols = [c for c in new.columns if c in reps.columns]
    return pd.concat([reps, new[cols]], ignore_index=True)


def realign_company(
    company: CompanyData,
    owner: pd.Series | None = None,
    placed: pd.DataFrame | None = None,
    plan_year: int | None = None,
) -> Realignment:
    """The company under a territory plan: roster, new owners, deals and bookings that follow accounts.

    Parameters
    ----------
    company
        Canonical company (today's owners in ``accounts.owner_rep_id``).
    owner
        New owner per account (index ``account_id``), e.g. the territory stage's ``assignments``;
        None: today's owners (only ``placed`` changes the company).
    placed
        Reps added by territory design (see :func:`plan_roster`).
    plan_year
        The planned year (hire date of placed reps); default: the year after ``as_of``.

    Returns
    -------
    Realignment

    Raises
    ------
    DataValidationError
        When ``owner`` names a rep that is neither in the reps table nor among ``placed``.

    Notes
    -----
    An account moves when its previous owner is known and differs from its new owner. A deal moves
    with it when it was booked by that previous owner (deals of other reps on the account, e.g. an
    overlay, stay with them). An account without a previous owner (an export without territories,
    such as Maven's) is assigned for the first time: all its deals follow it. Re-based bookings: ``B' = B - B(moved deals, old rep) + B(moved deals,
    new rep)`` by month, rep, region (the rep's) and segment, so that company totals never change.
    """
    year = int(plan_year) if plan_year is not None else pd.Timestamp(company.as_of).year + 1
    reps = plan_roster(company.reps, placed, year)
    known = set(reps["rep_id"].astype(str))
    accounts = company.accounts.copy()
    acc_ids = accounts["account_id"].astype(str)
    before = pd.Series(accounts["owner_rep_id"].astype("string").to_numpy(), index=acc_ids.to_numpy())
    if owner is None:
        after = before.copy()
    else:
        owner = owner.copy()
        owner.index = owner.index.astype(str)
        after = owner.astype("string").reindex(before.index).fillna(before)
        unknown = sorted(set(after.dropna()) - known)
        if unknown:
            raise DataValidationError(
                "territory assignments",
                [
                    f"rep_id(s) {unknown[:5]} own accounts but are not in the reps table or among the placed reps."
                ],
            )
    moved = (before.notna() & after.notna() & (before != after)).fillna(False)
    # an account without an owner before the plan (an export without territories) is assigned for
    # the first time: its deals, whoever worked them, follow it to its owner
    first = (before.isna() & after.notna()).fillna(False)
    moved_ids = list(before.index[moved.to_numpy()])
    accounts["previous_owner_rep_id"] = before.to_numpy()
    accounts["owner_rep_id"] = after.to_numpy()

    opp = company.opportunities.copy()
    acc_of = opp["account_id"].astype("string")
    old_rep = opp["rep_id"].astype(str)
    changes = moved | first
    new_owner = acc_of.map(after[changes])
    prev = acc_of.map(before[changes])
    follows = (new_owner.notna() & (prev.isna() | (old_rep == prev)) & (old_rep != new_owner)).fillna(False)
    moved_deals = pd.DataFrame(
        {
            "opportunity_id": opp.loc[follows, "opportunity_id"].astype(str),
            "account_id": acc_of[follows].astype(str),
            "status": opp.loc[follows, "status"].astype(str),
            "amount": opp.loc[follows, "amount"].astype(float),
            "close_date": opp.loc[follows, "close_date"],
            "from_rep_id": old_rep[follows],
            "to_rep_id": new_owner[follows].astype(str),
        }
    ).reset_index(drop=True)
    opp.loc[follows, "rep_id"] = new_owner[follows].astype(str).to_numpy()

    bookings = rebase_bookings(
        company.bookings, company.opportunities[follows.to_numpy()], opp[follows], reps
    )
    realigned = dataclasses.replace(
        company, accounts=accounts, reps=reps, opportunities=opp, bookings=bookings
    )
    log.info(
        "realigned company: %d account(s) moved, %d deal(s) follow them, %d placed rep(s)",
        len(moved_ids),
        len(moved_deals),
        len(reps) - len(company.reps),
    )
    placed_ids = [r for r in reps["rep_id"].astype(str) if r not in set(company.reps["rep_id"].astype(str))]
    return Realignment(
        realigned.validated(), before.rename("previous_owner"), moved_ids, moved_deals, placed_ids
    )


def rebase_bookings(
    bookings: pd.DataFrame, deals_before: pd.DataFrame, deals_after: pd.DataFrame, reps: pd.DataFrame
) -> pd.DataFrame:
    """Monthly bookings with the won value of re-credited deals moved from their old to their new rep.

    Parameters
    ----------
    bookings
        Canonical monthly bookings.
    deals_before, deals_after
        The same re-credited opportunities with their old and their new ``rep_id``.
    reps
        Reps table of the plan (each rep's region).

    Returns
    -------
    pandas.DataFrame
        Canonical bookings; the company total per month is unchanged. A bookings table that holds
        less than the deals (not derived from them) is floored at zero, with a warning.
    """
    keys = ["month", "rep_id", "region", "segment"]
    if bookings is None or len(bookings) == 0 or len(deals_before) == 0:
        return bookings
    won_before = deals_before[deals_before["status"] == WON]
    if won_before.empty:
        return bookings
    minus = bookings_from_opportunities(won_before, reps).assign(amount=lambda d: -d["amount"])
    plus = bookings_from_opportunities(deals_after[deals_after["status"] == WON], reps)
    b = bookings.assign(month=pd.to_datetime(bookings["month"]).dt.to_period("M").dt.to_timestamp())
    parts = [b[keys + ["amount"]], minus[keys + ["amount"]], plus[keys + ["amount"]]]
    out = (
        pd.concat(parts, ignore_index=True)
        .astype({"region": "string", "segment": "string", "rep_id": "string"})
        .groupby(keys, dropna=False, observed=True)["amount"]
        .sum()
        .reset_index()
    )
    # sums of floats leave dust where a rep's whole month moved away
    out["amount"] = out["amount"].where(
        out["amount"].abs() > 1e-6 * max(1.0, float(b["amount"].abs().max())), 0.0
    )
    if (out["amount"] < 0).any():
        log.warning(
            "re-based bookings: %d rep-month(s) would go negative (the bookings table holds less than the "
            "deals that moved); floored at 0",
            int((out["amount"] < 0).sum()),
        )
        out["amount"] = out["amount"].clip(lower=0.0)
    out = out[(out["amount"] != 0) | out.set_index(keys).index.isin(b.set_index(keys).index)]
    return out[BOOKINGS.column_names].sort_values(["month", "rep_id"]).reset_index(drop=True)


def history_shift(original: pd.Series, realigned: pd.Series) -> pd.Series:
    """Per rep, how much of a history figure moved in (positive) or out (negative) [currency]."""
    idx = realigned.index.union(original.index)
    return realigned.reindex(idx, fill_value=0.0) - original.reindex(idx, fill_value=0.0)


__all__ = ["Realignment", "history_shift", "plan_roster", "realign_company", "rebase_bookings"]
