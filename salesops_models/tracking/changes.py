"""Mid-year changes to a saved plan: reps who leave, hires, accounts that move.

A changes file is YAML (data only, read safely, no aliases)::

    changes:
      - type: departure
        rep_id: R007
        last_day: 2026-04-15         # his last working day: he carries quota up to and including it
        accounts_to: R008            # new owner of his accounts: a rep_id, or 'vacancy' (the default)
        accounts: {A00012: R009}     # exceptions, account by account
      - type: hire
        rep_id: R041
        start_date: 2026-05-01
        region: West
        manager: Xavier Quist         # default: the region's most common manager
        annual_quota: 900000          # full-year quota; he carries the part from his start date on
      - type: account_move
        account_id: A00123            # one account ... (or from_rep_id: every account of that rep)
        to_rep_id: R041
        effective_date: 2026-05-01    # first day the new owner carries it

Quota follows the accounts, pro-rated to the day
------------------------------------------------
An account carries the share of its owner's quota that its potential has in the owner's territory
on the change date (last year's revenue where the territory has no potential):
``a = Q_from potential_a / sum_{a' of from} potential_a'`` (:func:`salesops_models.quota.quota_relief`).
From the effective day ``e`` on, that share of each of the owner's remaining monthly quotas moves
to the new owner: month ``m`` moves ``q_from,m a / Q_from f_m`` with ``f_m = 0`` before ``e``'s month,
``(D - d_e + 1) / D`` in it (``D`` its days, ``d_e`` the day) and 1 after. The total moved is
``a x remaining_share(e)`` with the owner's own monthly profile.

A **departure** moves all the leaver's accounts on the day after his last day, each to its named
owner or to the vacancy ``VACANT-<rep_id>`` (which keeps the quota in its region and manager's
team; nobody is paid on it). Whatever quota is left after his accounts have moved (a territory
without potential) goes to the vacancy, so the leaver keeps exactly his quota up to his last day:
the months before it, and the month of it pro-rated by day. His deals not closed before the
effective day go with their account (to the catch-all owner when the account is not his).

A **hire** carries ``annual_quota`` times the plan's company-wide monthly profile, from his start
day (pro-rated in the start month), plus the quota of any accounts moved to him.

An **account move** moves one account (or every account of ``from_rep_id``, a vacancy included),
its pro-rated quota, and its deals not closed before the effective day, when they belong to the
old owner.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, model_validator

from salesops_models.config_base import StrictModel
from salesops_models.errors import TrackingError
from salesops_models.quota.periods import quota_relief
from salesops_models.safe_io import load_yaml
from salesops_models.tracking.periods import month_fractions

log = logging.getLogger(__name__)

VACANCY = "vacancy"


def vacancy_id(rep_id: str) -> str:
    """Quota holder id of the vacancy a leaver leaves behind."""
    return f"VACANT-{rep_id}"


class Departure(StrictModel):
    """A rep who leaves during the plan year."""

    type: Literal["departure"]
    rep_id: str = Field(..., description="The rep who leaves.")
    last_day: dt.date = Field(..., description="His last working day (ISO date, in the plan year).")
    accounts_to: str = Field(
        VACANCY, description="New owner of his accounts and open deals: a rep_id, or 'vacancy'."
    )
    accounts: dict[str, str] = Field(
        default_factory=dict,
        description="Exceptions: account_id -> new owner (a rep_id or 'vacancy').",
    )


class Hire(StrictModel):
    """A rep who joins during the plan year."""

    type: Literal["hire"]
    rep_id: str = Field(..., description="The new rep's id (unused by the plan).")
    start_date: dt.date = Field(..., description="First working day (ISO date, in the plan year).")
    region: str = Field(..., description="Region he joins (one of the plan's regions).")
    rep_name: str | None = Field(None, description="Display name.")
    manager: str | None = Field(None, description="First-line manager; default: the region's most common.")
    annual_quota: float = Field(
        0.0, ge=0.0, description="Full-year quota [currency/yr]; he carries the part from his start day on."
    )


class AccountMove(StrictModel):
    """One account, or every account of a rep (or vacancy), changing owner during the plan year."""

    type: Literal["account_move"]
    to_rep_id: str = Field(..., description="The new owner (a rep_id or a VACANT-<rep_id> vacancy).")
    effective_date: dt.date = Field(..., description="First day the new owner carries it (ISO date).")
    account_id: str | None = Field(None, description="The account that moves.")
    from_rep_id: str | None = Field(
        None, description="Instead of account_id: every account this rep or vacancy owns on that day."
    )

    @model_validator(mode="after")
    def _one_source(self) -> AccountMove:
        if (self.account_id is None) == (self.from_rep_id is None):
            raise ValueError("give exactly one of account_id (one account) or from_rep_id (all his accounts)")
        return self


Change = Annotated[Departure | Hire | AccountMove, Field(discriminator="type")]


class ChangeLog(StrictModel):
    """The mid-year changes of one plan year, in any order (they are applied by date)."""

    changes: list[Change] = Field(default_factory=list, description="Departures, hires, account moves.")


def load_changes(path: str | Path) -> ChangeLog:
    """Read and validate a changes file; errors name the file, the entry and the field."""
    path = Path(path)
    if not path.exists():
        raise TrackingError(f"{path}: changes file not found.")
    # the one safe YAML reader: a regular file under 1 MiB, UTF-8, no code, no aliases, a node budget
    doc = load_yaml(path, "changes file", error=TrackingError)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise TrackingError(f"{path}: the top level must be a mapping with a 'changes:' list.")
    try:
        return ChangeLog.model_validate(doc)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                lines.append(f"{path}: unknown key '{loc}'.")
            elif err["type"] == "union_tag_invalid":
                lines.append(f"{path}: '{loc}': type must be one of departure, hire, account_move.")
            else:
                lines.append(f"{path}: '{loc}': {msg}.")
        raise TrackingError("\n".join(lines)) from None


# ------------------------------------------------------------------------------------------------
# applying the changes
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerEvent:
    """Deals not closed before ``date`` move from ``from_rep_id`` to ``to_rep_id``: those of one
    account (``account_id``), or every remaining deal of the rep (``account_id`` None)."""

    date: pd.Timestamp
    account_id: str | None
    from_rep_id: str
    to_rep_id: str


@dataclass
class MidYearPlan:
    """The plan's quotas and owners after the mid-year changes.

    Attributes
    ----------
    plan_year
        The plan year.
    holders
        One row per quota holder: ``rep_id, rep_name, region, manager, kind`` (``rep``, ``hire``
        or ``vacancy``), ``start_date`` (hires, vacancies), ``last_day`` (leavers).
    monthly_quota
        Quota per holder (index) and month 1-12 (columns) [currency].
    plan_quota
        The plan's annual quota per holder before any change [currency/yr] (0 for new holders).
    transfers
        One row per quota transfer: ``change, type, account_id, from_rep_id, to_rep_id,
        effective_date, account_quota, remaining_share, transfer`` [currency].
    owners
        Owner of each account after every change.
    events
        Deal ownership changes, in the order they apply.
    """

    plan_year: int
    holders: pd.DataFrame
    monthly_quota: pd.DataFrame
    plan_quota: pd.Series
    transfers: pd.DataFrame
    owners: pd.Series
    events: list[OwnerEvent] = field(default_factory=list)

    @property
    def annual_quota(self) -> pd.Series:
        """Annual quota per holder after the changes [currency/yr]."""
        return self.monthly_quota.sum(axis=1)

    def summary(self) -> dict[str, float | int]:
        """Headline figures: holders by kind, quota moved by the changes, total quota [currency]."""
        kinds = self.holders["kind"].value_counts()
        leavers = int(self.holders["last_day"].notna().sum())
        return {
            "holders": len(self.holders),
            "hires": int(kinds.get("hire", 0)),
            "leavers": leavers,
            "vacancies": int(kinds.get("vacancy", 0)),
            "quota_moved": float(self.transfers["transfer"].sum()) if len(self.transfers) else 0.0,
            "annual_quota": float(self.annual_quota.sum()),
        }

    def relief(self) -> pd.Series:
        """Quota change per holder against the plan [currency/yr] (negative: relief)."""
        plan = self.plan_quota.reindex(self.monthly_quota.index, fill_value=0.0)
        return self.annual_quota - plan

    def credit(self, opportunities: pd.DataFrame) -> pd.Series:
        """The holder each deal is credited to, after the ownership changes.

        A deal follows an event when it belongs to the event's old owner (and account, for an
        account event) and was not closed before the event's date.
        """
        credited = opportunities["rep_id"].astype(str).to_numpy(dtype=object).copy()
        close = opportunities["close_date"]
        account = opportunities["account_id"].astype("string").fillna("")
        for ev in self.events:
            alive = (close.isna() | (close >= ev.date)).to_numpy()
            m = alive & (credited == ev.from_rep_id)
            if ev.account_id is not None:
                m &= (account == ev.account_id).to_numpy()
            credited[m] = ev.to_rep_id
        return pd.Series(credited, index=opportunities.index, name="credited_rep_id")

    def owners_after(self, owners: pd.Series, on: pd.Timestamp | None = None) -> pd.Series:
        """Another owner map (e.g. the CRM's) with the ownership changes dated up to ``on`` applied.

        An account event moves the account when it is still with the event's old owner; a
        leaver's catch-all event moves every account left with him.
        """
        out = pd.Series(owners.astype(str).to_numpy(), index=owners.index.astype(str))
        for ev in self.events:
            if on is not None and ev.date > on:
                continue
            if ev.account_id is not None:
                if out.get(ev.account_id) == ev.from_rep_id:
                    out[ev.account_id] = ev.to_rep_id
            else:
                out[out == ev.from_rep_id] = ev.to_rep_id
        return out

    def employed(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        """Whether each holder (not a vacancy) works some day of ``[start, end]``."""
        h = self.holders.set_index("rep_id")
        began = h["start_date"].isna() | (h["start_date"] <= end)
        stays = h["last_day"].isna() | (h["last_day"] >= start)
        return (h["kind"] != "vacancy") & began & stays


def apply_changes(
    log_: ChangeLog,
    *,
    plan_year: int,
    holders: pd.DataFrame,
    monthly_quota: pd.DataFrame,
    accounts: pd.DataFrame,
    owners: pd.Series,
    source: str = "changes",
) -> MidYearPlan:
    """Apply the changes in date order to the plan's quotas and account owners.

    Parameters
    ----------
    log_
        The changes (:func:`load_changes`).
    plan_year
        Every change must fall in it.
    holders
        The plan's reps: ``rep_id, rep_name, region, manager``.
    monthly_quota
        The plan's monthly quota per rep (index rep_id, columns 1-12) [currency].
    accounts
        ``account_id, potential`` and optionally ``revenue_last_year``.
    owners
        Owner of each account (index account_id) at the start of the plan year.
    source
        The changes file's name, for error messages.

    Raises
    ------
    TrackingError
        Listing every change that names an unknown rep, account or region, a date outside the plan
        year, a rep who is not employed on the date, and so on.

    Notes
    -----
    See the module docstring for the quota arithmetic.
    """
    state = _State.start(plan_year, holders, monthly_quota, accounts, owners)
    problems: list[str] = []
    rank = {"hire": 0, "departure": 1, "account_move": 2}  # on one day: hire first, moves last
    order = sorted(
        range(len(log_.changes)),
        key=lambda i: (_effective(log_.changes[i]), rank[log_.changes[i].type], i),
    )
    for i in order:
        change = log_.changes[i]
        who = (
            change.rep_id
            if not isinstance(change, AccountMove)
            else f"{change.account_id or change.from_rep_id} -> {change.to_rep_id}"
        )
        where = f"{source}: change {i + 1} ({change.type} {who})"
        day = change_date(change)
        if day.year != plan_year:
            problems.append(f"{where}: date {day.date()} is not in the plan year {plan_year}.")
        elif isinstance(change, Hire):
            state.hire(change, where, problems)
        elif isinstance(change, Departure):
            state.depart(change, i + 1, where, problems)
        else:
            state.move(change, i + 1, where, problems)
    if problems:
        raise TrackingError("\n".join(problems))
    return state.result()


def change_date(change: Departure | Hire | AccountMove) -> pd.Timestamp:
    """The date a change names: a leaver's last day, a hire's start, a move's effective date."""
    if isinstance(change, Departure):
        return pd.Timestamp(change.last_day)
    if isinstance(change, Hire):
        return pd.Timestamp(change.start_date)
    return pd.Timestamp(change.effective_date)


def _effective(change: Departure | Hire | AccountMove) -> pd.Timestamp:
    """First day a change is in force (the day after a leaver's last day)."""
    day = change_date(change)
    return day + pd.Timedelta(days=1) if isinstance(change, Departure) else day


@dataclass
class _State:
    plan_year: int
    holders: pd.DataFrame  # indexed by rep_id
    monthly: pd.DataFrame
    plan_quota: pd.Series
    accounts: pd.DataFrame  # account_id, potential, revenue_last_year
    owners: pd.Series
    profile: np.ndarray  # company monthly shape of quota (12, sums to 1)
    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[OwnerEvent] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        plan_year: int,
        holders: pd.DataFrame,
        monthly_quota: pd.DataFrame,
        accounts: pd.DataFrame,
        owners: pd.Series,
    ) -> _State:
        h = holders.assign(rep_id=holders["rep_id"].astype(str)).set_index("rep_id")
        h = h.reindex(columns=["rep_name", "region", "manager"])
        h["kind"] = "rep"
        h["start_date"] = pd.NaT
        h["last_day"] = pd.NaT
        monthly = monthly_quota.reindex(index=h.index, columns=range(1, 13)).fillna(0.0).astype(float)
        total = monthly.to_numpy().sum(axis=0)
        profile = total / total.sum() if total.sum() > 0 else np.full(12, 1 / 12)
        acc = accounts.assign(account_id=accounts["account_id"].astype(str))
        if "potential" not in acc:
            acc["potential"] = 0.0
        own = pd.Series(owners.astype(str).to_numpy(), index=owners.index.astype(str))
        return cls(plan_year, h, monthly, monthly.sum(axis=1), acc, own, profile)

    # ---- helpers --------------------------------------------------------------------------------
    def active(self, rep: str, day: pd.Timestamp) -> bool:
        if rep not in self.holders.index:
            return False
        r = self.holders.loc[rep]
        return (pd.isna(r["start_date"]) or r["start_date"] <= day) and (
            pd.isna(r["last_day"]) or day <= r["last_day"]
        )

    def known(self, rep: str) -> str:
        reps = sorted(self.holders.index[self.holders["kind"] != "vacancy"])
        more = ", ..." if len(reps) > 6 else ""
        return f"'{rep}' is not a rep of the plan or a hire of the changes file (reps: {', '.join(reps[:6])}{more})"

    def add_vacancy(self, leaver: str, day: pd.Timestamp) -> str:
        vid = vacancy_id(leaver)
        if vid not in self.holders.index:
            r = self.holders.loc[leaver]
            self.holders.loc[vid] = {
                "rep_name": f"Vacancy ({r['rep_name'] if pd.notna(r['rep_name']) else leaver})",
                "region": r["region"],
                "manager": r["manager"],
                "kind": "vacancy",
                "start_date": day,
                "last_day": pd.NaT,
            }
            self.monthly.loc[vid] = 0.0
        return vid

    def transfer(
        self, number: int, kind: str, frm: str, moves: list[tuple[str, str]], day: pd.Timestamp
    ) -> None:
        """Move accounts (account_id, to) of ``frm`` on ``day`` with their pro-rated quota."""
        if not moves:
            return
        q_from = float(self.monthly.loc[frm].sum())
        frac = month_fractions(day)
        if q_from > 0:
            quotas = self.monthly.sum(axis=1)
            relief = quota_relief(
                pd.DataFrame(
                    {
                        "account_id": [a for a, _ in moves],
                        "to_rep_id": [t for _, t in moves],
                        "effective_date": [day] * len(moves),
                    }
                ),
                self.accounts,
                self.owners,
                quotas,
                (self.monthly.loc[frm] / q_from).to_numpy(),
                self.plan_year,
            )
            account_quota = relief["account_quota"].to_numpy(float)
            share = relief["remaining_share"].to_numpy(float)
        else:
            account_quota = np.zeros(len(moves))
            share = np.full(len(moves), float(np.dot(self.profile, frac)))
        base = self.monthly.loc[frm].to_numpy(float).copy()
        for (acc, to), aq, rs in zip(moves, account_quota, share, strict=True):
            amounts = base * (aq / q_from if q_from > 0 else 0.0) * frac
            self.monthly.loc[frm] -= amounts
            self.monthly.loc[to] += amounts
            self.owners[acc] = to
            self.events.append(OwnerEvent(day, acc, frm, to))
            self.rows.append(
                {
                    "change": number,
                    "type": kind,
                    "account_id": acc,
                    "from_rep_id": frm,
                    "to_rep_id": to,
                    "effective_date": day,
                    "account_quota": float(aq),
                    "remaining_share": float(rs),
                    "transfer": float(amounts.sum()),
                }
            )

    def target(
        self, value: str, leaver: str, day: pd.Timestamp, where: str, problems: list[str]
    ) -> str | None:
        if value == VACANCY:
            return self.add_vacancy(leaver, day)
        if value == leaver:
            problems.append(f"{where}: cannot hand his accounts to himself ('{value}').")
            return None
        if value not in self.holders.index:
            problems.append(
                f"{where}: new owner '{value}' is not a rep of the plan, nor a hire who has started by "
                f"{day.date()}; name a rep employed then, or 'vacancy'."
            )
            return None
        if not self.active(value, day):
            problems.append(
                f"{where}: new owner '{value}' is not working on {day.date()}; name a rep employed then, or 'vacancy'."
            )
            return None
        return value

    # ---- the three kinds of change ---------------------------------------------------------------
    def hire(self, c: Hire, where: str, problems: list[str]) -> None:
        if c.rep_id in self.holders.index:
            problems.append(f"{where}: rep_id '{c.rep_id}' is already used; give the hire a new id.")
            return
        regions = sorted(self.holders["region"].dropna().astype(str).unique())
        if c.region not in regions:
            problems.append(
                f"{where}: region '{c.region}' is not a region of the plan ({', '.join(regions)})."
            )
            return
        manager = c.manager
        if manager is None:
            in_region = self.holders[
                (self.holders["region"] == c.region) & (self.holders["kind"] != "vacancy")
            ]
            mode = in_region["manager"].dropna().mode()
            manager = str(mode.iloc[0]) if len(mode) else None
        day = pd.Timestamp(c.start_date)
        self.holders.loc[c.rep_id] = {
            "rep_name": c.rep_name or c.rep_id,
            "region": c.region,
            "manager": manager,
            "kind": "hire",
            "start_date": day,
            "last_day": pd.NaT,
        }
        self.monthly.loc[c.rep_id] = c.annual_quota * self.profile * month_fractions(day)
        self.plan_quota.loc[c.rep_id] = 0.0
        if c.annual_quota > 0:
            self.rows.append(
                {
                    "change": 0,
                    "type": "hire",
                    "account_id": None,
                    "from_rep_id": None,
                    "to_rep_id": c.rep_id,
                    "effective_date": day,
                    "account_quota": float(c.annual_quota),
                    "remaining_share": float(np.dot(self.profile, month_fractions(day))),
                    "transfer": float(self.monthly.loc[c.rep_id].sum()),
                }
            )

    def depart(self, c: Departure, number: int, where: str, problems: list[str]) -> None:
        rep = c.rep_id
        last = pd.Timestamp(c.last_day)
        day = last + pd.Timedelta(days=1)
        if rep not in self.holders.index or self.holders.loc[rep, "kind"] == "vacancy":
            problems.append(f"{where}: {self.known(rep)}.")
            return
        if not self.active(rep, last):
            problems.append(
                f"{where}: {rep} is not employed on his last day {last.date()} (hired later, or left)."
            )
            return
        mine = sorted(self.owners.index[self.owners == rep])
        stray = sorted(set(c.accounts) - set(mine))
        if stray:
            problems.append(
                f"{where}: account(s) {stray[:5]} under 'accounts' are not his on {day.date()}; "
                "list only accounts he owns."
            )
            return
        self.holders.loc[rep, "last_day"] = last
        if day.year != self.plan_year:  # leaves on 31 December: nothing moves inside the plan year
            return
        catch_all = self.target(c.accounts_to, rep, day, where, problems)
        targets = {a: self.target(t, rep, day, where, problems) for a, t in c.accounts.items()}
        if catch_all is None or any(t is None for t in targets.values()):
            return
        kept = self.monthly.loc[rep].to_numpy(float) * (1.0 - month_fractions(day))
        self.transfer(number, "departure", rep, [(a, targets.get(a) or catch_all) for a in mine], day)
        leftover = np.clip(self.monthly.loc[rep].to_numpy(float) - kept, 0.0, None)
        self.monthly.loc[rep] = kept  # exactly his quota up to his last day
        if leftover.sum() > 1e-6 * max(float(kept.sum()), 1.0):
            # no accounts (or none with potential or revenue): the rest of his quota stays in the region
            vid = self.add_vacancy(rep, day)
            self.monthly.loc[vid] += leftover
            self.rows.append(
                {
                    "change": number,
                    "type": "departure",
                    "account_id": None,
                    "from_rep_id": rep,
                    "to_rep_id": vid,
                    "effective_date": day,
                    "account_quota": float("nan"),
                    "remaining_share": float("nan"),
                    "transfer": float(leftover.sum()),
                }
            )
        # his deals on accounts that were not his go with the catch-all owner
        self.events.append(OwnerEvent(day, None, rep, catch_all))

    def move(self, c: AccountMove, number: int, where: str, problems: list[str]) -> None:
        day = pd.Timestamp(c.effective_date)
        to = c.to_rep_id
        if to not in self.holders.index:
            problems.append(f"{where}: to_rep_id {self.known(to)}.")
            return
        if not self.active(to, day):
            problems.append(f"{where}: to_rep_id '{to}' is not working on {day.date()}.")
            return
        if c.account_id is not None:
            acc = c.account_id
            if acc not in self.owners.index:
                problems.append(f"{where}: account '{acc}' is not an account of the plan.")
                return
            frm = str(self.owners[acc])
            accounts = [acc]
        else:
            frm = str(c.from_rep_id)
            if frm not in self.holders.index:
                problems.append(f"{where}: from_rep_id {self.known(frm)}.")
                return
            accounts = sorted(self.owners.index[self.owners == frm])
            if not accounts:
                problems.append(f"{where}: '{frm}' owns no account on {day.date()}; nothing to move.")
                return
        if frm == to:
            problems.append(f"{where}: account(s) already belong to '{to}'.")
            return
        self.transfer(number, "account_move", frm, [(a, to) for a in accounts], day)

    def result(self) -> MidYearPlan:
        transfers = pd.DataFrame(
            self.rows,
            columns=[
                "change",
                "type",
                "account_id",
                "from_rep_id",
                "to_rep_id",
                "effective_date",
                "account_quota",
                "remaining_share",
                "transfer",
            ],
        )
        holders = self.holders.reset_index().rename(columns={"index": "rep_id"})
        return MidYearPlan(
            plan_year=self.plan_year,
            holders=holders,
            monthly_quota=self.monthly,
            plan_quota=self.plan_quota.reindex(self.monthly.index, fill_value=0.0),
            transfers=transfers,
            owners=self.owners,
            events=list(self.events),
        )
