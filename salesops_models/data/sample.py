"""A deterministic sample company: a B2B seller with ~2,000 accounts and ~40 reps.

Everything is generated from one seed, so the same parameters give the same tables, bit for bit.
The generative story, kept deliberately simple and stated so that users know what the sample can
and cannot show:

* **Accounts** cluster around ~45 US metro areas (population-weighted), in three segments with
  log-normal annual potential (Enterprise median 400k, Mid-Market 120k, SMB 30k) and a selling
  workload that grows with the square root of potential.
* **Reps** live in the metros of their region; about one in six was hired in the last year and is
  still ramping (linear ramp over ``ramp_months``). Regions are longitude bands; managers lead
  about seven reps each. Today's alignment is "nearest rep in the region", disturbed by history:
  a share of accounts sits with a random rep of the region, so territories are unbalanced.
* **Opportunities** are created per account as a Poisson process whose rate is proportional to
  potential, with monthly seasonality and yearly growth, and only while the owner is employed.
  Each deal walks Prospecting -> Qualification -> Proposal -> Negotiation -> Won, may skip
  Qualification, and may be lost at every stage; stage durations are log-normal, longer for larger
  segments. Negotiations that would end just after a quarter end are pulled in before it (the
  quarter-end hockey stick). Deals still open at the snapshot date are the open pipeline.
* **Bookings** are the won amounts by close month, so they add up with the opportunities.
* **Activities**: weekly selling, admin and other hours per rep; ``admin_share`` is the mean admin
  share of working time. A rep's deal creation scales with his selling time.

**The plan year that follows** (:func:`generate_plan_year_actuals`): the same story carried on for
the year after the snapshot, as a CRM export taken on a chosen date. Deals open at the snapshot
play out their *true* future, drawn with the history (the history export only hides it); new deals
come from the same creation process (growth, seasonality, ramp, selling time, rep skill), owned by
the accounts' plan-year owners. New deals, their stage walks and the new weeks of activity draw
from streams of their own, ``SeedSequence(seed, spawn_key=(1, k))``, which the history never
touches: the history up to the snapshot stays bit for bit what :func:`generate_sample_company`
returns, and an export on a later date extends one on an earlier date.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.data.company import CompanyData, StageSet, bookings_from_opportunities
from salesops_models.data.loaders import read_table
from salesops_models.errors import DataValidationError
from salesops_models.geo import haversine_km

SAMPLE_STAGES = StageSet(("Prospecting", "Qualification", "Proposal", "Negotiation"), "Won", "Lost")

# name, lat, lon, relative weight (roughly metro population, millions)
_METROS: tuple[tuple[str, float, float, float], ...] = (
    ("Seattle", 47.61, -122.33, 4.0),
    ("Portland", 45.52, -122.68, 2.5),
    ("San Francisco", 37.77, -122.42, 4.7),
    ("San Jose", 37.34, -121.89, 2.0),
    ("Sacramento", 38.58, -121.49, 2.4),
    ("Los Angeles", 34.05, -118.24, 13.0),
    ("San Diego", 32.72, -117.16, 3.3),
    ("Las Vegas", 36.17, -115.14, 2.3),
    ("Phoenix", 33.45, -112.07, 4.9),
    ("Salt Lake City", 40.76, -111.89, 1.3),
    ("Boise", 43.62, -116.20, 0.8),
    ("Denver", 39.74, -104.99, 3.0),
    ("Albuquerque", 35.08, -106.65, 0.9),
    ("Dallas", 32.78, -96.80, 7.6),
    ("Houston", 29.76, -95.37, 7.1),
    ("Austin", 30.27, -97.74, 2.3),
    ("San Antonio", 29.42, -98.49, 2.6),
    ("Oklahoma City", 35.47, -97.52, 1.4),
    ("Kansas City", 39.10, -94.58, 2.2),
    ("Omaha", 41.26, -95.93, 1.0),
    ("Minneapolis", 44.98, -93.27, 3.7),
    ("St. Louis", 38.63, -90.20, 2.8),
    ("Chicago", 41.88, -87.63, 9.5),
    ("Milwaukee", 43.04, -87.91, 1.6),
    ("Indianapolis", 39.77, -86.16, 2.1),
    ("Detroit", 42.33, -83.05, 4.3),
    ("Columbus", 39.96, -83.00, 2.1),
    ("Cleveland", 41.50, -81.69, 2.1),
    ("Cincinnati", 39.10, -84.51, 2.3),
    ("Nashville", 36.16, -86.78, 2.0),
    ("Memphis", 35.15, -90.05, 1.3),
    ("New Orleans", 29.95, -90.07, 1.3),
    ("Atlanta", 33.75, -84.39, 6.1),
    ("Charlotte", 35.23, -80.84, 2.7),
    ("Raleigh", 35.78, -78.64, 1.4),
    ("Miami", 25.76, -80.19, 6.1),
    ("Tampa", 27.95, -82.46, 3.2),
    ("Orlando", 28.54, -81.38, 2.7),
    ("Jacksonville", 30.33, -81.66, 1.6),
    ("Washington", 38.91, -77.04, 6.3),
    ("Baltimore", 39.29, -76.61, 2.8),
    ("Philadelphia", 39.95, -75.17, 6.2),
    ("Pittsburgh", 40.44, -79.99, 2.4),
    ("New York", 40.71, -74.01, 19.8),
    ("Boston", 42.36, -71.06, 4.9),
    ("Hartford", 41.77, -72.67, 1.2),
    ("Buffalo", 42.89, -78.88, 1.2),
)
_REGION_NAMES = {
    1: ["National"],
    2: ["West", "East"],
    3: ["West", "Central", "East"],
    4: ["West", "Central", "South", "East"],
    5: ["West", "Mountain", "Central", "Midwest", "East"],
}
_SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
_SEGMENT_SHARE = (0.10, 0.30, 0.60)
_SEGMENT_POTENTIAL_MEDIAN = (400_000.0, 120_000.0, 30_000.0)  # [currency/yr]
_SEGMENT_DEAL_MEDIAN = (60_000.0, 18_000.0, 5_000.0)  # [currency/deal]
_SEGMENT_DURATION_FACTOR = (1.8, 1.0, 0.6)
_INDUSTRIES = (
    "Manufacturing",
    "Healthcare",
    "Financial Services",
    "Retail",
    "Technology",
    "Logistics",
    "Energy",
    "Public Sector",
    "Education",
    "Media",
)
_PRODUCTS = ("Core Platform", "Analytics", "Integrations", "Support Plus")
_PRODUCT_SHARE = (0.45, 0.25, 0.2, 0.1)
_PRODUCT_PRICE = (1.2, 1.0, 0.6, 0.35)
# Probability to move on from each open stage (the rest is lost there); Qualification may be skipped.
_ADVANCE = (0.82, 0.80, 0.84, 0.86)
_SKIP_QUALIFICATION = 0.12
_STAGE_MEDIAN_DAYS = (9.0, 14.0, 18.0, 12.0)
_MONTH_SEASONALITY = np.array([0.80, 0.92, 1.08, 0.98, 1.02, 1.10, 0.88, 0.90, 1.08, 1.12, 1.02, 1.10])
_FIRST = (
    "Ava",
    "Ben",
    "Carla",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jon",
    "Kira",
    "Liam",
    "Maya",
    "Nils",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Victor",
    "Wen",
    "Xavier",
    "Yara",
    "Zane",
)
_LAST = (
    "Abbott",
    "Baker",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ibrahim",
    "Jensen",
    "Khan",
    "Lopez",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quist",
    "Romero",
    "Singh",
    "Tanaka",
    "Umar",
    "Vogel",
    "Walsh",
    "Xu",
    "Young",
    "Zimmer",
)
_SYLLABLES = (
    "ac",
    "bel",
    "cor",
    "dyn",
    "el",
    "fin",
    "gal",
    "hal",
    "ion",
    "jet",
    "kor",
    "lum",
    "mer",
    "nov",
    "or",
    "pax",
    "quo",
    "ros",
    "syn",
    "tel",
    "ul",
    "ver",
    "wex",
    "zen",
)
_SUFFIXES = (
    "Systems",
    "Group",
    "Labs",
    "Industries",
    "Health",
    "Partners",
    "Logistics",
    "Foods",
    "Energy",
    "Solutions",
    "Holdings",
    "Works",
)


# The history draws from SeedSequence(seed) itself; the plan-year continuation from children
# (1, k) of it: 0 creation of new deals, 1 their stage walks, 2 new weeks of activity.
_CONTINUATION_STREAM = 1


def generate_sample_company(
    seed: int = 7,
    n_accounts: int = 2000,
    n_reps: int = 40,
    n_regions: int = 5,
    years: int = 3,
    end_date: str = "2025-12-31",
    admin_share: float = 0.35,
    growth: float = 0.12,
    ramp_months: int = 6,
    misalignment: float = 0.18,
    coverage_elasticity: float | None = None,
) -> CompanyData:
    """Generate the sample company's canonical tables.

    Parameters
    ----------
    seed
        Seed of every random draw; the same arguments give identical tables.
    n_accounts, n_reps, n_regions
        Sizes. Regions are longitude bands of the metro list (1 to 5 named regions, more numbered).
    years
        Years of opportunity history, ending at ``end_date`` (the snapshot date).
    admin_share
        Mean share of a rep's working hours spent on admin [0-1].
    growth
        Yearly growth of deal creation [0-1].
    ramp_months
        Months for a new rep to reach full productivity (linear ramp).
    misalignment
        Share of accounts that today sit with a random rep of their region instead of the nearest.
    coverage_elasticity
        How deal creation responds to the owner's coverage. None: an account creates deals in
        proportion to its potential, its owner's ramp and his selling hours, whatever the size of his
        territory (a rep's hours stretch over any number of accounts). A number :math:`\beta`: in
        proportion to its potential times :math:`(u_r c_r / \tilde c)^\beta`, with :math:`c_r` the
        owner's yearly selling hours over his territory's workload hours, :math:`\tilde c` its median
        over reps under today's owners and :math:`u_r` his ramp (a ramping rep sells fewer effective
        hours): diminishing returns to coverage, so that more reps on the same accounts create more
        deals. A continuation under other owners (:func:`generate_plan_year_actuals`) recomputes
        each owner's coverage on his new territory.

    Returns
    -------
    CompanyData
        Validated canonical tables with ``as_of = end_date``.
    """
    return _generate_world(
        seed,
        n_accounts,
        n_reps,
        n_regions,
        years,
        end_date,
        admin_share,
        growth,
        ramp_months,
        misalignment,
        coverage_elasticity,
    ).company


def generate_plan_year_actuals(
    through: str | pd.Timestamp, *, owners: pd.Series | None = None, **sample: Any
) -> CompanyData:
    """The sample company's CRM export taken on ``through``, a date in the year after the snapshot.

    Parameters
    ----------
    through
        Date of the export (inclusive): after ``end_date``, at most one year after it.
    owners
        Owner ``rep_id`` of each ``account_id`` from the day after ``end_date`` (e.g. a plan's
        territory assignment, as if the company put it in place); default: today's owners.
        Deals already open at the snapshot keep their rep; accounts not listed keep their owner.
    sample
        The arguments of :func:`generate_sample_company` that generate the history (``seed``,
        ``n_accounts``, ...; the same defaults).

    Returns
    -------
    CompanyData
        Validated canonical tables with ``as_of = through``: every deal created up to ``through``
        (history included) in its state on that day, the stage history up to it, bookings, and
        weekly activities. Accounts carry their plan-year owner in ``owner_rep_id``.

    Notes
    -----
    Cut back at ``end_date`` (``pipeline.snapshot_at``), the export shows what the history shows,
    except that open deals there have no amount. Closed deals of the history are unchanged.
    """
    args = inspect.signature(generate_sample_company).bind(**sample)
    args.apply_defaults()
    seed = args.arguments["seed"]
    world = _generate_world(*args.args)
    company, end = world.company, world.end
    through = pd.Timestamp(through).normalize()
    last = end + pd.DateOffset(years=1)
    if not end < through <= last:
        raise DataValidationError(
            "sample continuation",
            [
                f"through={through.date()}: the continuation covers the year after the snapshot, "
                f"{(end + pd.Timedelta(days=1)).date()} to {last.date()}; pick a date in it."
            ],
        )
    accounts = company.accounts.copy()
    if owners is not None:
        accounts["owner_rep_id"] = _plan_year_owners(accounts, company.reps, owners)
    owner_pos = world.creation.rep_position(accounts["owner_rep_id"])
    # History months stop with the snapshot's month (its deals created after the snapshot are
    # already in world.deals); the continuation starts with the next month.
    first = (end + pd.offsets.MonthBegin(1)).normalize()
    months = pd.date_range(first, last, freq="MS")

    def stream(k: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_CONTINUATION_STREAM, k)))

    new = _create_deals(stream(0), world.creation, owner_pos, months, first_id=len(world.deals.ids) + 1)
    _walk_stages(stream(1), new, world.skill)
    deals = world.deals.concat(new)
    opps, history = _export(deals, accounts, company.reps, through, world.start)
    # the whole year's weeks are drawn, then cut: an earlier export is a prefix of a later one
    weeks = pd.date_range(end + pd.Timedelta(days=1), last, freq="W-MON")
    new_weeks = _activities(stream(2), company.reps, weeks, world.rep_admin)
    activities = pd.concat(
        [company.activities, new_weeks[new_weeks["week_start"] <= through]], ignore_index=True
    )
    out = CompanyData(
        accounts=accounts,
        reps=company.reps,
        opportunities=opps,
        stage_history=history,
        bookings=bookings_from_opportunities(opps, company.reps),
        activities=activities,
        stages=SAMPLE_STAGES,
        as_of=through,
        name=company.name,
        source=f"generate_plan_year_actuals(seed={seed}, through={through.date()})",
    )
    return out.validated()


def plan_year_actuals_from(
    through: str | None, territories: str | Path | None = None, **sample: Any
) -> CompanyData:
    """:func:`generate_plan_year_actuals` for the command line: the date as text, the owners from a
    file with ``account_id`` and ``rep_id`` columns (CSV or Parquet, e.g. a plan's assignments)."""
    if through is None:
        raise DataValidationError(
            "salesops data sample",
            ["--territories sets the plan year's owners: give the export date with --through."],
        )
    try:
        day = pd.Timestamp(through)
    except ValueError:
        raise DataValidationError(
            "salesops data sample",
            [f"--through {through!r} is not a date; use ISO dates such as 2026-06-30."],
        ) from None
    owners = None
    if territories is not None:
        t = read_table(territories)
        missing = sorted({"account_id", "rep_id"} - set(t.columns))
        if missing:
            raise DataValidationError(
                str(territories), [f"missing column(s) {missing}; the file has {list(t.columns)}."]
            )
        owners = pd.Series(t["rep_id"].astype(str).to_numpy(), index=t["account_id"].astype(str))
    return generate_plan_year_actuals(day, owners=owners, **sample)


def _plan_year_owners(accounts: pd.DataFrame, reps: pd.DataFrame, owners: pd.Series) -> pd.Series:
    """Owner per account for the plan year: ``owners`` where given, else today's owner."""
    owners = owners.dropna()
    owners = pd.Series(owners.astype(str).to_numpy(), index=owners.index.astype(str))
    problems = []
    unknown_acc = sorted(set(owners.index) - set(accounts["account_id"].astype(str)))
    if unknown_acc:
        problems.append(f"account_id(s) {unknown_acc[:5]} are not accounts of the sample company.")
    unknown_rep = sorted(set(owners) - set(reps["rep_id"].astype(str)))
    if unknown_rep:
        problems.append(
            f"rep_id(s) {unknown_rep[:5]} are not reps of the sample company (planned hires cannot own "
            "accounts in the generated plan year)."
        )
    if problems:
        raise DataValidationError("sample continuation owners", problems)
    planned = accounts["account_id"].astype(str).map(owners)
    return planned.where(planned.notna(), accounts["owner_rep_id"])


@dataclass
class _Creation:
    """What drives deal creation per account and month (no randomness in it)."""

    rate_per_year: np.ndarray  # deals a year per account at the start of the grid [1/yr]
    deal_median: np.ndarray  # median deal value per account [currency]
    seg_idx: np.ndarray  # segment index per account
    sell_factor: np.ndarray  # selling time relative to the mean, per rep (reps table order)
    hire: np.ndarray  # hire dates, per rep
    rep_ids: np.ndarray
    months0: pd.Timestamp  # origin of the growth trend
    growth: float
    ramp_months: int
    coverage_elasticity: float | None = None  # None: no coverage response (see generate_sample_company)
    selling: np.ndarray | None = None  # mean weekly selling hours, per rep [h/week]
    workload: np.ndarray | None = None  # selling workload per account [h/yr]
    coverage_ref: float = 1.0  # median coverage under the history's owners

    def coverage_effort(self, owner_pos: np.ndarray, ramp: np.ndarray) -> np.ndarray:
        """Creation multiplier per account and month from its owner's coverage and ramp (with a response)."""
        assert self.coverage_elasticity is not None and self.selling is not None and self.workload is not None
        coverage = _coverage(self.selling, self.workload, owner_pos, self.coverage_ref)
        return (ramp * coverage[owner_pos][:, None] / self.coverage_ref) ** self.coverage_elasticity

    def rep_position(self, owner: pd.Series) -> np.ndarray:
        pos = {r: i for i, r in enumerate(self.rep_ids)}
        return np.array([pos[o] for o in owner])


@dataclass
class _Deals:
    """Every generated deal with its true future (the export decides what is visible when)."""

    ids: np.ndarray
    acc_i: np.ndarray
    rep_pos: np.ndarray
    product_idx: np.ndarray
    seg: np.ndarray
    created: np.ndarray  # datetime64
    amount: np.ndarray
    stage_dates: np.ndarray = None  # type: ignore[assignment]  # (n, 5) datetime64[D], set by _walk_stages
    outcome: np.ndarray = None  # type: ignore[assignment]  # 1 won, 0 lost
    close: np.ndarray = None  # type: ignore[assignment]  # datetime64[D]

    def concat(self, other: _Deals) -> _Deals:
        names = ("ids", "acc_i", "rep_pos", "product_idx", "seg", "created", "amount")
        names += ("stage_dates", "outcome", "close")
        return _Deals(**{k: np.concatenate([getattr(self, k), getattr(other, k)]) for k in names})


@dataclass
class _SampleWorld:
    """The generated history and the hidden state a continuation needs to carry its story on."""

    company: CompanyData
    deals: _Deals
    creation: _Creation
    skill: np.ndarray  # win-rate multiplier per rep
    rep_admin: np.ndarray  # mean admin share per rep
    start: pd.Timestamp
    end: pd.Timestamp


def _generate_world(
    seed: int,
    n_accounts: int,
    n_reps: int,
    n_regions: int,
    years: int,
    end_date: str,
    admin_share: float,
    growth: float,
    ramp_months: int,
    misalignment: float,
    coverage_elasticity: float | None = None,
) -> _SampleWorld:
    if n_reps < 1 or n_accounts < 1:
        raise ValueError("n_reps and n_accounts must be at least 1")
    n_regions = min(n_regions, n_reps)  # every region needs a rep
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    end = pd.Timestamp(end_date)
    start = (end - pd.DateOffset(years=years)) + pd.Timedelta(days=1)

    metros = pd.DataFrame(_METROS, columns=["metro", "lat", "lon", "weight"])
    region_names = _REGION_NAMES.get(n_regions, [f"Region {i + 1}" for i in range(n_regions)])
    order = metros["lon"].rank(method="first").to_numpy() - 1
    metros["region"] = [region_names[int(o * n_regions // len(metros))] for o in order]

    accounts = _accounts(rng, metros, n_accounts)
    reps = _reps(rng, metros, accounts, n_reps, region_names, end, (end - start).days)
    accounts["owner_rep_id"] = _current_owner(rng, accounts, reps, misalignment)
    rep_admin = np.clip(rng.normal(admin_share, 0.06, len(reps)), 0.05, 0.8)
    weeks = pd.date_range(start - pd.Timedelta(days=start.weekday()), end, freq="W-MON")
    activities = _activities(rng, reps, weeks, rep_admin)
    # Deals are created from six months before the window, so that its first months are not short of
    # closes (those older deals appear in the history, as they would in a real CRM export).
    months = pd.date_range(start - pd.DateOffset(months=6), end, freq="MS")
    creation = _creation_model(
        accounts, reps, activities, months[0], growth, ramp_months, coverage_elasticity
    )
    skill = rng.lognormal(0.0, 0.12, len(reps))  # win-rate multiplier per rep
    owner_pos = creation.rep_position(accounts["owner_rep_id"])
    deals = _create_deals(rng, creation, owner_pos, months, first_id=1)
    _walk_stages(rng, deals, skill)
    opps, history = _export(deals, accounts, reps, end, start)

    # Last year's revenue per account: won bookings in the last 12 months of history.
    last_year = opps[(opps["status"] == "won") & (opps["close_date"] > end - pd.DateOffset(years=1))]
    accounts["revenue_last_year"] = (
        accounts["account_id"].map(last_year.groupby("account_id")["amount"].sum()).fillna(0.0).round(2)
    )
    company = CompanyData(
        accounts=accounts,
        reps=reps,
        opportunities=opps,
        stage_history=history,
        bookings=bookings_from_opportunities(opps, reps),
        activities=activities,
        stages=SAMPLE_STAGES,
        as_of=end,
        name="sample-company",
        source=f"generate_sample_company(seed={seed})",
    )
    return _SampleWorld(company.validated(), deals, creation, skill, rep_admin, start, end)


def _accounts(rng: np.random.Generator, metros: pd.DataFrame, n: int) -> pd.DataFrame:
    w = metros["weight"].to_numpy()
    metro_idx = rng.choice(len(metros), size=n, p=w / w.sum())
    spread = np.where(rng.random(n) < 0.8, 0.35, 1.2)  # suburbs vs. the surrounding countryside [deg]
    lat = metros["lat"].to_numpy()[metro_idx] + rng.normal(0, 1, n) * spread * 0.8
    lon = metros["lon"].to_numpy()[metro_idx] + rng.normal(0, 1, n) * spread
    segment_idx = rng.choice(3, size=n, p=_SEGMENT_SHARE)
    potential = np.array(_SEGMENT_POTENTIAL_MEDIAN)[segment_idx] * rng.lognormal(0.0, 0.55, n)
    workload = (
        np.array([110.0, 45.0, 14.0])[segment_idx]
        * np.sqrt(potential / np.array(_SEGMENT_POTENTIAL_MEDIAN)[segment_idx])
        * rng.lognormal(0.0, 0.15, n)
    )
    names = [
        f"{_SYLLABLES[a].capitalize()}{_SYLLABLES[b]} {_SUFFIXES[c]}"
        for a, b, c in zip(
            rng.integers(0, len(_SYLLABLES), n),
            rng.integers(0, len(_SYLLABLES), n),
            rng.integers(0, len(_SUFFIXES), n),
            strict=True,
        )
    ]
    return pd.DataFrame(
        {
            "account_id": [f"A{i:05d}" for i in range(1, n + 1)],
            "account_name": names,
            "lat": np.clip(lat, 24.5, 49.0).round(4),
            "lon": np.clip(lon, -124.5, -67.0).round(4),
            "segment": np.array(_SEGMENTS)[segment_idx],
            "industry": np.array(_INDUSTRIES)[rng.integers(0, len(_INDUSTRIES), n)],
            "region": metros["region"].to_numpy()[metro_idx],
            "potential": potential.round(0),
            "workload_hours": workload.round(1),
        }
    )


def _reps(
    rng: np.random.Generator,
    metros: pd.DataFrame,
    accounts: pd.DataFrame,
    n_reps: int,
    region_names: list[str],
    end: pd.Timestamp,
    history_days: int,
) -> pd.DataFrame:
    # Reps per region proportional to the region's potential (largest remainder, at least one each).
    pot = accounts.groupby("region")["potential"].sum().reindex(region_names).fillna(0.0)
    raw = pot / pot.sum() * n_reps
    counts = np.maximum(np.floor(raw).astype(int), 1)
    for r in (raw - np.floor(raw)).sort_values(ascending=False).index:
        if counts.sum() >= n_reps:
            break
        counts[r] += 1
    while counts.sum() > n_reps:
        counts[counts.idxmax()] -= 1
    rows = []
    k = 0
    for region in region_names:
        m = metros[metros["region"] == region]
        w = m["weight"].to_numpy()
        homes = rng.choice(len(m), size=int(counts[region]), p=w / w.sum())
        n_mgr = max(1, round(counts[region] / 7))
        managers = [
            f"{_FIRST[rng.integers(len(_FIRST))]} {_LAST[rng.integers(len(_LAST))]}" for _ in range(n_mgr)
        ]
        for j, h in enumerate(homes):
            k += 1
            ramping = rng.random() < 0.17
            # Only ramping reps were hired inside the history window, so that history shows growth,
            # not the filling of vacancies.
            tenure_days = (
                rng.integers(30, 330) if ramping else rng.integers(history_days + 30, history_days + 2500)
            )
            rows.append(
                {
                    "rep_id": f"R{k:03d}",
                    "rep_name": f"{_FIRST[rng.integers(len(_FIRST))]} {_LAST[rng.integers(len(_LAST))]}",
                    "region": region,
                    "manager": managers[j % n_mgr],
                    "home_lat": round(float(m["lat"].iloc[h] + rng.normal(0, 0.1)), 4),
                    "home_lon": round(float(m["lon"].iloc[h] + rng.normal(0, 0.1)), 4),
                    "capacity": 0.8 if rng.random() < 0.08 else 1.0,
                    "hire_date": (end - pd.Timedelta(days=int(tenure_days))).normalize(),
                    "weekly_hours": float(rng.choice([40.0, 42.0, 45.0])),
                }
            )
    return pd.DataFrame(rows)


def _current_owner(
    rng: np.random.Generator, accounts: pd.DataFrame, reps: pd.DataFrame, misalignment: float
) -> np.ndarray:
    """Today's alignment: a rough, capacity-aware nearest-rep assignment, then historical drift.

    Accounts are taken in random order and given to the nearest rep of their region whose workload
    is still under 1.3 x his fair share (else the nearest); then a ``misalignment`` share moves to a
    random rep of the region. This leaves the moderate imbalance that realignment projects start from.
    """
    owner = np.empty(len(accounts), dtype=object)
    for region, acc in accounts.groupby("region"):
        rr = reps[reps["region"] == region]
        d = haversine_km(
            acc["lat"].to_numpy()[:, None],
            acc["lon"].to_numpy()[:, None],
            rr["home_lat"].to_numpy()[None, :],
            rr["home_lon"].to_numpy()[None, :],
        )
        work = acc["workload_hours"].to_numpy()
        cap = rr["capacity"].to_numpy()
        limit = 1.3 * work.sum() * cap / cap.sum()
        load = np.zeros(len(rr))
        chosen = np.empty(len(acc), dtype=int)
        for i in rng.permutation(len(acc)):
            ranked = np.argsort(d[i])
            ok = ranked[load[ranked] + work[i] <= limit[ranked]]
            j = ok[0] if len(ok) else ranked[0]
            chosen[i] = j
            load[j] += work[i]
        drift = rng.random(len(acc)) < misalignment
        chosen[drift] = rng.integers(0, len(rr), int(drift.sum()))
        owner[accounts.index.get_indexer(acc.index)] = rr["rep_id"].to_numpy()[chosen]
    return owner


def _activities(
    rng: np.random.Generator, reps: pd.DataFrame, weeks: pd.DatetimeIndex, rep_admin: np.ndarray
) -> pd.DataFrame:
    """Weekly hours of each rep employed in ``weeks`` (Mondays); ``rep_admin`` his mean admin share."""
    rows = []
    for i, rep in enumerate(reps.itertuples()):
        active = weeks[weeks >= rep.hire_date]
        n = len(active)
        if n == 0:
            continue
        hours = rep.weekly_hours * rep.capacity * rng.normal(1.0, 0.05, n)
        other = hours * np.clip(rng.normal(0.07, 0.03, n), 0.0, 0.3)
        admin = (hours - other) * np.clip(rng.normal(rep_admin[i], 0.04, n), 0.02, 0.9)
        rows.append(
            pd.DataFrame(
                {
                    "rep_id": rep.rep_id,
                    "week_start": active,
                    "selling_hours": (hours - other - admin).round(1),
                    "admin_hours": admin.round(1),
                    "other_hours": other.round(1),
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=["rep_id", "week_start", "selling_hours", "admin_hours", "other_hours"])
    return pd.concat(rows, ignore_index=True)


def _creation_model(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    activities: pd.DataFrame,
    months0: pd.Timestamp,
    growth: float,
    ramp_months: int,
    coverage_elasticity: float | None = None,
) -> _Creation:
    seg_idx = accounts["segment"].map({s: i for i, s in enumerate(_SEGMENTS)}).to_numpy()
    deal_median = np.array(_SEGMENT_DEAL_MEDIAN)[seg_idx]
    overall_win = np.prod(_ADVANCE)
    # Deals a year so that the expected won value is ~30% of potential (share of wallet).
    rate_per_year = (
        0.30 * accounts["potential"].to_numpy() / (overall_win * deal_median * np.exp(0.5 * 0.6**2))
    )
    rep_info = reps.set_index("rep_id")
    selling = activities.groupby("rep_id")["selling_hours"].mean()
    sell_factor = (selling / selling.mean()).reindex(rep_info.index).fillna(1.0).to_numpy()
    hours = selling.reindex(rep_info.index).to_numpy(float)
    workload = accounts["workload_hours"].to_numpy(float)
    pos = {r: i for i, r in enumerate(rep_info.index)}
    owners = np.array([pos[o] for o in accounts["owner_rep_id"]])
    ref = float(np.nanmedian(_coverage(hours, workload, owners, np.nan)))
    return _Creation(
        coverage_elasticity=coverage_elasticity,
        selling=hours,
        workload=workload,
        coverage_ref=ref,
        rate_per_year=rate_per_year,
        deal_median=deal_median,
        seg_idx=seg_idx,
        sell_factor=sell_factor,
        hire=rep_info["hire_date"].to_numpy(),
        rep_ids=rep_info.index.to_numpy(),
        months0=months0,
        growth=growth,
        ramp_months=ramp_months,
    )


def _coverage(selling: np.ndarray, workload: np.ndarray, owner_pos: np.ndarray, default: float) -> np.ndarray:
    """Each rep's yearly selling hours over the workload hours of the accounts he owns [-]."""
    territory = np.bincount(owner_pos, weights=workload, minlength=len(selling))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = 52.0 * selling / territory
    return np.where(np.isfinite(c) & (c > 0), c, default)


def _create_deals(
    rng: np.random.Generator,
    creation: _Creation,
    owner_pos: np.ndarray,
    months: pd.DatetimeIndex,
    first_id: int,
) -> _Deals:
    """New deals on the month grid ``months``, each owned by its account's owner (``owner_pos``)."""
    c = creation
    # Expected creations per account and month = rate/12 x seasonality x growth x ramp x selling time.
    t_years = np.asarray((months - c.months0).days) / 365.25
    season = _MONTH_SEASONALITY[months.month - 1]
    trend = (1.0 + c.growth) ** t_years
    hire = c.hire[owner_pos]
    months_employed = (months.to_numpy()[None, :] - hire[:, None]) / np.timedelta64(30, "D")
    ramp = np.clip(months_employed / max(c.ramp_months, 1), 0.0, 1.0)
    if c.coverage_elasticity is None:  # the original world, its numbers unchanged to the last bit
        lam = (
            (c.rate_per_year / 12.0)[:, None]
            * (season * trend)[None, :]
            * ramp
            * c.sell_factor[owner_pos][:, None]
        )
    else:
        lam = (
            (c.rate_per_year / 12.0)[:, None] * (season * trend)[None, :] * c.coverage_effort(owner_pos, ramp)
        )
    counts = rng.poisson(lam)
    acc_i, month_i = np.nonzero(counts)
    reps_n = counts[acc_i, month_i]
    acc_i = np.repeat(acc_i, reps_n)
    month_i = np.repeat(month_i, reps_n)
    n = len(acc_i)
    month_start = months.to_numpy()[month_i]
    days_in_month = months.days_in_month.to_numpy()[month_i]
    created = month_start + (rng.random(n) * days_in_month).astype("timedelta64[D]")
    product_idx = rng.choice(len(_PRODUCTS), size=n, p=_PRODUCT_SHARE)
    amount = c.deal_median[acc_i] * np.array(_PRODUCT_PRICE)[product_idx] * rng.lognormal(0.0, 0.6, n)
    return _Deals(
        ids=np.array([f"O{i:06d}" for i in range(first_id, first_id + n)]),
        acc_i=acc_i,
        rep_pos=owner_pos[acc_i],
        product_idx=product_idx,
        seg=c.seg_idx[acc_i],
        created=created,
        amount=np.round(amount, -1),
    )


def _walk_stages(rng: np.random.Generator, deals: _Deals, skill: np.ndarray) -> None:
    """Walk every deal through the stages to its true outcome (sets stage_dates, outcome, close)."""
    n = len(deals.ids)
    created, seg = deals.created, deals.seg
    rep_skill = skill[deals.rep_pos]
    stage_dates = np.full((n, 5), np.datetime64("NaT"), dtype="datetime64[D]")
    stage_dates[:, 0] = created
    t = created.astype("datetime64[D]")
    alive = np.ones(n, dtype=bool)
    outcome = np.full(n, -1)  # -1 open/undecided, 1 won, 0 lost
    close = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    dur_factor = np.array(_SEGMENT_DURATION_FACTOR)[seg]
    for s in range(4):
        if s == 1:  # some deals skip Qualification
            skip = alive & (rng.random(n) < _SKIP_QUALIFICATION)
        else:
            skip = np.zeros(n, dtype=bool)
        dur = np.ceil(_STAGE_MEDIAN_DAYS[s] * dur_factor * rng.lognormal(0.0, 0.7, n)).astype(
            "timedelta64[D]"
        )
        dur = np.where(skip, np.timedelta64(0, "D"), dur)
        nxt = t + dur
        if s == 3:  # quarter-end hockey stick: closes just after a quarter end are pulled before it
            q_end = _quarter_end(t)
            pull = alive & (nxt > q_end) & (nxt <= q_end + np.timedelta64(25, "D")) & (rng.random(n) < 0.55)
            nxt = np.where(pull, np.maximum(t, q_end - rng.integers(0, 6, n).astype("timedelta64[D]")), nxt)
        p_adv = np.clip(_ADVANCE[s] * rep_skill ** (1 / 4), 0.05, 0.99)
        advance = rng.random(n) < p_adv
        lost_here = alive & ~advance & ~skip
        close = np.where(lost_here, nxt, close)
        outcome = np.where(lost_here, 0, outcome)
        alive = alive & (advance | skip)
        if s < 3:
            stage_dates[:, s + 1] = np.where(alive, nxt, stage_dates[:, s + 1])
        else:
            close = np.where(alive, nxt, close)
            outcome = np.where(alive, 1, outcome)
        t = np.where(alive, nxt, t)
    # Skipped Qualification: no history row for it.
    skipped_q = stage_dates[:, 1] == stage_dates[:, 2]
    stage_dates[skipped_q, 1] = np.datetime64("NaT")
    deals.stage_dates, deals.outcome, deals.close = stage_dates, outcome, close


def _export(
    deals: _Deals, accounts: pd.DataFrame, reps: pd.DataFrame, cut: pd.Timestamp, window_start: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Opportunities and stage history as a CRM export taken on ``cut`` shows them.

    Deals created after ``cut`` are not in it, deals closed before ``window_start`` neither.
    """
    created, close, outcome, stage_dates = deals.created, deals.close, deals.outcome, deals.stage_dates
    end64 = np.datetime64(cut.date())
    is_open = close > end64
    # Warm-up deals that closed before the window opened are not part of the export.
    keep = (created <= end64) & (is_open | (close >= np.datetime64(window_start.date())))
    status = np.where(is_open, "open", np.where(outcome == 1, "won", "lost"))
    stages = np.array(["Prospecting", "Qualification", "Proposal", "Negotiation"])
    # Current stage of open deals: the last stage entered on or before the snapshot.
    entered = (stage_dates <= end64) & ~np.isnat(stage_dates)
    last_stage = np.where(entered[:, :4], np.arange(4)[None, :], -1).max(axis=1)
    stage_label = np.where(
        status == "won", "Won", np.where(status == "lost", "Lost", stages[np.maximum(last_stage, 0)])
    )
    opp_ids = deals.ids
    opps = pd.DataFrame(
        {
            "opportunity_id": opp_ids,
            "account_id": accounts["account_id"].to_numpy()[deals.acc_i],
            "rep_id": reps["rep_id"].to_numpy()[deals.rep_pos],
            "product": np.array(_PRODUCTS)[deals.product_idx],
            "segment": np.array(_SEGMENTS)[deals.seg],
            "created_date": created.astype("datetime64[ns]"),
            "stage": stage_label,
            "status": status,
            "close_date": np.where(is_open, np.datetime64("NaT"), close).astype("datetime64[ns]"),
            "amount": deals.amount,
        }
    )[keep]
    opps = opps.sort_values(["created_date", "opportunity_id"]).reset_index(drop=True)

    # Stage history rows: every stage entered up to the snapshot, plus the close.
    hist = []
    for s, label in enumerate(stages):
        d = stage_dates[:, s]
        m = keep & ~np.isnat(d) & (d <= end64)
        hist.append(pd.DataFrame({"opportunity_id": opp_ids[m], "stage": label, "entered_date": d[m]}))
    closed = keep & ~is_open
    hist.append(
        pd.DataFrame(
            {
                "opportunity_id": opp_ids[closed],
                "stage": np.where(outcome[closed] == 1, "Won", "Lost"),
                "entered_date": close[closed],
            }
        )
    )
    history = pd.concat(hist, ignore_index=True)
    history["entered_date"] = history["entered_date"].astype("datetime64[ns]")
    history = history.sort_values(["opportunity_id", "entered_date"], kind="stable").reset_index(drop=True)
    return opps, history


def _quarter_end(days: np.ndarray) -> np.ndarray:
    """Last day of the quarter containing each date."""
    months = days.astype("datetime64[M]")
    month_num = months.astype(int) % 12
    q_last_month = months + (2 - month_num % 3).astype("timedelta64[M]")
    return (q_last_month + np.timedelta64(1, "M")).astype("datetime64[D]") - np.timedelta64(1, "D")
