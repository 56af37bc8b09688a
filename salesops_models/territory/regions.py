"""Whole companies by regions: a balanced plan from regional alignments, a bound of the whole company.

At 100,000 accounts x 300 reps (3M candidate pairs) no LP of the whole company was solved in
minutes, and the Lagrangian relaxed choice is too far from the bands to repair by moves
(docs/territory.md). The LP path closes to about 1% at 10,000 x 100 in a minute or two, so the company
is cut into regions of that size and each is aligned alone:

1. **Regions of reps** (:func:`rep_regions`): recursive coordinate bisection of the reps' locations
   (the centroid of the accounts nearest to each, :func:`rep_centroids`), splitting the rep counts so every region gets
   at most :data:`REGION_REPS` reps. Deterministic: ties are broken by rep position.
2. **Accounts to regions** (:func:`balance_regions`): each account goes to its owner's region (an
   unowned one to the region of its nearest candidate, a locked one to its lock's). A region with
   :math:`n` reps must then carry the sum of its reps' targets within their bands; the totals are
   brought within :data:`REGION_BAND_SHARE` times the tolerance of that sum by greedy rebalancing on
   the instance whose "reps" are the regions (an account may go only to a region holding one of its
   candidates), so each region has room left for its reps' own bands. Accounts moved there count
   against the disruption budget.
3. **Each region** is aligned by :func:`~salesops_models.territory.lp_round.lp_round` (LP bound,
   rounding, relaxation-induced search, neighbourhood search) with the company's objective scales,
   over the candidate pairs inside the region, with the rest of the budget shared in proportion to the
   owned value each region keeps.
4. **The bound of the whole company**: the sum of regional optima is *not* a bound (the regions cut
   pairs away). The regional LPs' band and budget duals, put side by side, are multipliers of the whole
   company's Lagrangian (each rep lies in one region), whose value is a lower bound of every plan over
   every candidate pair (weak duality); subgradient steps from there, aimed at the combined plan's
   objective, raise it (:func:`~salesops_models.territory.lagrangian.lagrangian_bound`).
5. The combined plan is checked on the whole instance (every account once, every band, the budget, the
   move cap) and its objective recomputed there.

Every step stops on work limits (rounds, steps, nodes): the same instance gives the same plan on any
machine; the wall clock is only the safety net of :class:`~salesops_models.territory.solver.Deadline`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from salesops_models.territory.heuristics import SearchLimits, greedy_start
from salesops_models.territory.instance import (
    AlignmentInstance,
    Objective,
    find_pairs,
    meets_constraints,
    plan_pairs,
    territory_loads,
)
from salesops_models.territory.lagrangian import LagrangianBound, lagrangian_bound
from salesops_models.territory.lp_round import LPRounding, lp_round, lp_solution, multipliers_of_duals
from salesops_models.territory.neighbourhood import PairTerms
from salesops_models.territory.solver import Deadline, PhaseTimer, SolverOptions

log = logging.getLogger(__name__)

#: From this many candidate pairs the alignment goes by regions (100,000 x 300 has about 3M; 30,000 x 150
#: about 0.9M, where the whole LP is still solved). ``None`` (default): only when asked (the benchmark's
#: ``--regional-pairs``). Opt-in until the regional split is shown to give a plan at whole-company scale:
#: at 100,000 x 300 it found none in 28 minutes (docs/territory.md), and the LP path it falls back to
#: would then start only after that.
REGIONAL_PAIRS: int | None = None
#: Reps per region at most: the 10,000 x 100 LP closes to about 1% in a minute or two; regions of 30
#: reps hold 3,000-15,000 accounts at 100-500 accounts per rep.
REGION_REPS = 30
#: Band half-width of each region's total, as a share of the metric's tolerance, tried in turn (the
#: reps' bands are then met inside the region with room to spare; at 10,000 x 100 wider bands for the
#: regions gave worse plans, 1.72 against 1.67, and regions with no plan).
REGION_BAND_SHARE = (0.3, 0.6, 1.0)
#: Candidate reps an account needs in a region to be aligned to it (unless it is its owner's region). At
#: 3, a rep on a region's edge lost the accounts nearest to it (their other candidates were next door)
#: and its region's LP was infeasible at 100,000 x 300.
REGION_MIN_CANDIDATES = 1
#: Share of the disruption budget the alignment of accounts to regions may use (the rest, and what it
#: leaves, goes to the regions).
REGION_BUDGET_SHARE = 0.5
#: Rounds of the group neighbourhood search in each region at most (a work limit): at 25 reps one
#: round takes about 20 s, and the split into regions costs more than the regions' own gaps (about 1%).
REGION_NEIGHBOURHOOD_ROUNDS = 0
#: Relaxation-induced search rounds of the alignment of accounts to regions (a work limit).
REGION_RINS_ROUNDS = 2


@dataclass
class RegionalPlan:
    """What :func:`regional_plan` found (besides the :class:`LPRounding` it returns).

    Attributes
    ----------
    region
        Region index per rep.
    account_region
        Region index per account after rebalancing the regions.
    region_moved_value
        Owned value that changed region (and so owner) in rebalancing [value unit].
    regional
        Per region: accounts, reps, pairs, LP bound, plan objective, seconds.
    """

    region: np.ndarray
    account_region: np.ndarray
    region_moved_value: float
    regional: list[dict[str, float]] = field(default_factory=list)


def rep_centroids(inst: AlignmentInstance) -> tuple[np.ndarray, np.ndarray]:
    """Per rep, where its candidate accounts are: the mean location of the accounts whose nearest
    candidate it is (else of all accounts it is a candidate of), as planar ``(x, y)`` [deg, longitude
    scaled by the cosine of the mean latitude].

    Not the accounts it owns: candidates are the nearest reps to the home base, and a rep whose
    accounts today lie elsewhere would land in a region where no account has it as a candidate (at
    100,000 x 300 such a region had no balanced LP even merged with three neighbours)."""
    if inst.lat is None or inst.lon is None:
        raise ValueError("regions need account locations")
    lat, lon = inst.lat, inst.lon
    R = inst.n_reps
    x = lon * math.cos(math.radians(float(np.mean(lat))))
    cx, cy = np.full(R, float(x.mean())), np.full(R, float(lat.mean()))
    nearest = inst.nearest_pair
    for pa, pr in ((inst.pair_a, inst.pair_r), (inst.pair_a[nearest], inst.pair_r[nearest])):
        n = np.bincount(pr, minlength=R)
        has = n > 0  # the nearest accounts win where there are any
        cx[has] = np.bincount(pr, weights=x[pa], minlength=R)[has] / n[has]
        cy[has] = np.bincount(pr, weights=lat[pa], minlength=R)[has] / n[has]
    return cx, cy


def rep_regions(x: np.ndarray, y: np.ndarray, max_reps: int) -> np.ndarray:
    """Region index per rep by recursive coordinate bisection of the points ``(x, y)``.

    Each set of reps is cut across its longer side into two parts whose sizes follow the number of
    regions each part will hold (``ceil(n / max_reps)`` regions in all), so every region has at most
    ``max_reps`` reps and the sizes differ by at most one within a level. Ties by rep position.
    """
    region = np.zeros(len(x), dtype=np.int64)
    next_id = 0

    def cut(idx: np.ndarray) -> None:
        nonlocal next_id
        parts = math.ceil(len(idx) / max_reps)
        if parts <= 1:
            region[idx] = next_id
            next_id += 1
            return
        spread_x, spread_y = np.ptp(x[idx]), np.ptp(y[idx])
        coord = x[idx] if spread_x >= spread_y else y[idx]
        order = idx[np.lexsort((idx, coord))]
        left_parts = parts // 2
        n_left = round(len(idx) * left_parts / parts)
        cut(order[:n_left])
        cut(order[n_left:])

    cut(np.arange(len(x)))
    return region


def _region_instance(
    inst: AlignmentInstance, region: np.ndarray, share: float, priced: np.ndarray | None = None
) -> AlignmentInstance:
    """The instance whose "reps" are the regions: targets summed, bands ``share`` x the tolerance, one
    pair per account and region holding one of its candidates.

    The "distance" of a pair is its account's travel distance to the nearest such candidate, or with
    ``priced`` (a cost per candidate pair, e.g. Lagrangian-adjusted) the least priced cost of the account
    in the region above its least overall, with travel weight 1 (so the travel term is that cost x the
    travel scale)."""
    G = int(region.max()) + 1
    key = inst.pair_a.astype(np.int64) * G + region[inst.pair_r]
    dist = inst.distance[inst.pair_a, inst.pair_r] if priced is None else priced
    order = np.lexsort((dist, key))
    new_key = np.r_[True, np.diff(key[order]) > 0]
    first = order[new_key]  # the nearest candidate per (account, region)
    # an account goes to a region other than its owner's (or lock's) only where it has
    # REGION_MIN_CANDIDATES candidates: one lone border rep would have to take every such account (at
    # 100,000 x 300 two regions' LPs were infeasible so)
    count = np.diff(np.r_[np.flatnonzero(new_key), len(order)])
    home = np.where(inst.lock >= 0, inst.lock, inst.owner)
    home_region = np.where(home >= 0, region[np.maximum(home, 0)], -1)
    fa, fg = inst.pair_a[first], region[inst.pair_r[first]]
    ok = (count >= REGION_MIN_CANDIDATES) | (fg == home_region[fa])
    ok |= np.bincount(fa[ok], minlength=inst.n_accounts)[fa] == 0  # never leave an account with none
    first = first[ok]
    pair_a, pair_r = inst.pair_a[first], region[inst.pair_r[first]]
    d = dist[first]
    weight = inst.weight
    if priced is not None:
        starts = np.r_[0, np.flatnonzero(np.diff(pair_a)) + 1]
        d = d - np.minimum.reduceat(d, starts)[pair_a]
        weight = np.ones(inst.n_accounts)
    distance = np.zeros((inst.n_accounts, G))
    distance[pair_a, pair_r] = d
    owner = np.where(inst.owner >= 0, region[np.maximum(inst.owner, 0)], -1)
    lock = np.where(inst.lock >= 0, region[np.maximum(inst.lock, 0)], -1)
    pair_key = pair_a.astype(np.int64) * G + pair_r
    target = np.stack([np.bincount(region, weights=t, minlength=G) for t in inst.target])
    return replace(
        inst,
        rep_ids=np.array([f"region {g}" for g in range(G)]),
        capacity=np.bincount(region, weights=inst.capacity, minlength=G),
        owner=owner,
        lock=lock,
        tolerance=share * inst.tolerance,
        target=target.reshape(len(inst.target), G),
        weight=weight,
        distance=distance,
        pair_a=pair_a,
        pair_r=pair_r,
        owner_pair=find_pairs(pair_key, G, owner),
    )


def balance_regions(
    inst: AlignmentInstance,
    region: np.ndarray,
    objective: Objective,
    solver: SolverOptions,
    limits: SearchLimits,
    deadline: Deadline,
    priced: np.ndarray | None = None,
) -> np.ndarray | None:
    """Region index per account: the alignment of the accounts to the regions.

    Solved by :func:`~salesops_models.territory.lp_round.lp_round` on the instance whose "reps" are the
    regions (:func:`_region_instance`: an account costs its travel to the nearest candidate in the
    region, or with ``priced`` its least priced cost there; moving it out of its owner's region moves
    it), with every region's totals within :data:`REGION_BAND_SHARE` x the tolerance of its reps' summed
    targets (the narrowest share met) and at most :data:`REGION_BUDGET_SHARE` of the disruption budget:
    accounts owned by a far rep go to the region where they are. ``None`` when no share gives a plan;
    greedy rebalancing from the owners' regions is then tried (:func:`greedy_start`).
    """
    coarse_limits = replace(
        limits, rins_rounds=min(limits.rins_rounds, REGION_RINS_ROUNDS), neighbourhood_rounds=0
    )
    budget = (
        None if objective.disruption_budget is None else REGION_BUDGET_SHARE * objective.disruption_budget
    )
    max_moves = None if objective.max_moves is None else int(REGION_BUDGET_SHARE * objective.max_moves)
    coarse_objective = replace(objective, disruption_budget=budget, max_moves=max_moves)
    if priced is not None:
        coarse_objective = replace(coarse_objective, travel_weight=1.0, scales=(1.0, objective.scales[1]))
    for share in REGION_BAND_SHARE:
        coarse = _region_instance(inst, region, share, priced)
        res = lp_round(coarse, coarse_objective, solver, limits=coarse_limits, deadline=deadline)
        if res.assign is not None:
            log.info(
                "regions: accounts aligned to regions by %s, totals within %.1f x the tolerance",
                "travel" if priced is None else "price",
                share,
            )
            return res.assign
    for share in REGION_BAND_SHARE:
        coarse = _region_instance(inst, region, share, priced)
        plan = greedy_start(coarse, max_moves, max_steps=limits.rebalance_steps, deadline=deadline)
        load = territory_loads(coarse, plan)
        if (load <= coarse.upper + 1e-9).all() and (load >= coarse.lower - 1e-9).all():
            log.info(
                "regions: owners' regions rebalanced greedily, totals within %.1f x the tolerance", share
            )
            return plan
    return None


def sub_instance(inst: AlignmentInstance, accounts: np.ndarray, reps: np.ndarray) -> AlignmentInstance:
    """The instance of ``accounts`` and ``reps`` (ascending positions), over the pairs between them.

    Targets and bands stay the company's (a rep's band does not depend on its region); an account whose
    owner is outside the region has no owner here (it has moved already)."""
    local_rep = np.full(inst.n_reps, -1)
    local_rep[reps] = np.arange(len(reps))
    local_acc = np.full(inst.n_accounts, -1)
    local_acc[accounts] = np.arange(len(accounts))
    keep = (local_acc[inst.pair_a] >= 0) & (local_rep[inst.pair_r] >= 0)
    pair_a, pair_r = local_acc[inst.pair_a[keep]], local_rep[inst.pair_r[keep]]
    owner = np.where(inst.owner[accounts] >= 0, local_rep[np.maximum(inst.owner[accounts], 0)], -1)
    lock = np.where(inst.lock[accounts] >= 0, local_rep[np.maximum(inst.lock[accounts], 0)], -1)
    pair_key = pair_a.astype(np.int64) * len(reps) + pair_r
    return replace(
        inst,
        account_ids=inst.account_ids[accounts],
        rep_ids=inst.rep_ids[reps],
        capacity=inst.capacity[reps],
        owner=owner,
        lock=lock,
        metric_values=inst.metric_values[:, accounts],
        target=inst.target[:, reps],
        weight=inst.weight[accounts],
        value=inst.value[accounts],
        distance=inst.distance[np.ix_(accounts, reps)],
        pair_a=pair_a,
        pair_r=pair_r,
        owner_pair=find_pairs(pair_key, len(reps), owner),
        lat=None if inst.lat is None else inst.lat[accounts],
        lon=None if inst.lon is None else inst.lon[accounts],
    )


@dataclass
class _Regions:
    """One split of the accounts into regions and what the regional solves gave."""

    region: np.ndarray
    account_region: np.ndarray
    moved_value: float
    plan: np.ndarray | None
    multipliers: tuple[np.ndarray, np.ndarray, float, float]
    regional: list[dict[str, float]]
    failure: str = ""


def _partner(inst: AlignmentInstance, region: np.ndarray, account_region: np.ndarray, g: int) -> int:
    """The region holding most accounts that have a rep of region ``g`` as a candidate (where a rep that
    ``g`` starves finds its accounts); -1 when none does."""
    pa_region, pr_region = account_region[inst.pair_a], region[inst.pair_r]
    n = int(max(region.max(), account_region.max())) + 1
    shared = np.bincount(pa_region[(pr_region == g) & (pa_region != g)], minlength=n)
    return int(np.argmax(shared)) if shared.max() > 0 else -1


def _solve_regions(
    inst: AlignmentInstance,
    objective: Objective,
    solver: SolverOptions,
    limits: SearchLimits,
    deadline: Deadline,
    region: np.ndarray,
    account_region: np.ndarray,
    with_plan: bool,
) -> _Regions:
    """Each region's LP (``with_plan``: and its plan by :func:`lp_round`), the regions' duals put side by
    side as multipliers of the whole company's Lagrangian, and the combined plan.

    Every region gets the same share of the owned value it keeps as budget (what the moves between
    regions leave). A region whose LP is infeasible (a rep in a corner whose accounts went to the
    neighbouring region: at 30,000 x 90 one rep lacked 26% of its lower band) or that finds no plan is
    merged with the region sharing most candidate pairs with it (:func:`_partner`) and solved again."""
    terms = PairTerms.of(inst, objective)
    K, R = inst.target.shape
    region, account_region = region.copy(), account_region.copy()
    owned = inst.owner >= 0
    left_home = owned & (account_region != region[np.maximum(inst.owner, 0)])
    moved_value = float(inst.value[left_home].sum())
    moved_count = int(left_home.sum())
    out = _Regions(
        region, account_region, moved_value, None, (np.zeros((K, R)), np.zeros((K, R)), 0.0, 0.0), []
    )
    budget = terms.budget
    if budget is not None and moved_value > budget * (1 + 1e-9):
        out.failure = "aligning the accounts to regions alone uses more than the disruption budget"
        return out
    stay = owned & ~left_home
    stay_value = float(inst.value[stay].sum())
    share = None if budget is None else min(max(budget - moved_value, 0.0) / max(stay_value, 1e-12), 1.0)
    move_room = None if objective.max_moves is None else objective.max_moves - moved_count
    done: dict[int, tuple] = {}  # region -> (accounts, reps, sub, sub objective, row duals, assign)
    pending = list(range(int(region.max()) + 1))
    while pending:
        g = pending.pop(0)
        accounts = np.flatnonzero(account_region == g)
        reps = np.flatnonzero(region == g)
        sub = sub_instance(inst, accounts, reps)
        cap = None
        if move_room is not None:
            cap = int(move_room * stay[accounts].sum() // max(int(stay.sum()), 1))
        sub_objective = replace(objective, disruption_budget=share, max_moves=cap)
        start = time.perf_counter()
        assign = None
        if with_plan:
            res = lp_round(sub, sub_objective, solver, limits=limits, deadline=deadline)
            row_dual, status, bound, cost, assign = (
                res.row_dual,
                res.lp_status,
                res.bound,
                res.objective,
                res.assign,
            )
        else:
            lp = lp_solution(sub, sub_objective, solver, deadline)
            row_dual = None if lp is None else lp[1]
            status = "optimal" if row_dual is not None else "not solved"
            bound = cost = math.nan
        seconds = time.perf_counter() - start
        out.regional.append(
            {
                "region": g,
                "accounts": len(accounts),
                "reps": len(reps),
                "pairs": len(sub.pair_a),
                "lp_bound": bound,
                "objective": cost,
                "seconds": seconds,
            }
        )
        log.info(
            "region %d: %d accounts x %d reps, %d pairs: LP %s %.6g, plan %.6g in %.1fs",
            g,
            len(accounts),
            len(reps),
            len(sub.pair_a),
            status,
            bound,
            cost,
            seconds,
        )
        if row_dual is None or (with_plan and assign is None):
            h = _partner(inst, region, account_region, g)
            if h < 0:
                out.failure = f"region {g} ({len(accounts)} accounts x {len(reps)} reps): no plan ({status})"
                return out
            log.info("region %d: %s; merged with region %d", g, status, h)
            region[region == h] = g
            account_region[account_region == h] = g
            done.pop(h, None)
            if h in pending:
                pending.remove(h)
            pending.insert(0, g)
            continue
        done[g] = (accounts, reps, sub, sub_objective, row_dual, assign)
    # the regions' duals side by side (each rep in one region) as the company's multipliers
    lam_up, lam_lo = np.zeros((K, R)), np.zeros((K, R))
    mu_value = nu_count = 0.0
    plan = np.full(inst.n_accounts, -1)
    for accounts, reps, sub, sub_objective, row_dual, assign in done.values():
        up, lo, mu, nu = multipliers_of_duals(sub, PairTerms.of(sub, sub_objective), row_dual)
        lam_up[:, reps], lam_lo[:, reps] = up, lo
        mu_value += mu  # the region's budget dual x its owned value: summed, a value-weighted mean
        nu_count += nu / max(sub.n_accounts, 1)
        if assign is not None:
            plan[accounts] = reps[assign]
    mu = mu_value / max(stay_value, 1e-12) * max(inst.owned_value, 1e-12) if budget is not None else 0.0
    nu = nu_count / len(done) * inst.n_accounts if objective.max_moves is not None else 0.0
    out.multipliers = (lam_up, lam_lo, mu, nu)
    # regions numbered 0.. again after merges
    ids, out.region = np.unique(region, return_inverse=True)
    out.account_region = np.searchsorted(ids, account_region)
    if with_plan:
        out.plan = plan
    return out


def priced_costs(inst: AlignmentInstance, terms: PairTerms, lag: LagrangianBound) -> np.ndarray:
    """Per candidate pair, its cost plus the band multipliers of ``lag`` times the account's metrics: what
    the whole company's relaxation charges for putting the account with that rep (budget and move cap
    left out: the regions keep them as rows)."""
    lam_up, lam_lo, _, _ = lag.multipliers
    net = (lam_up - lam_lo) / np.maximum(inst.target, 1e-12)
    priced = terms.cost.copy()
    for k in range(len(inst.target)):
        priced += net[k][inst.pair_r] * inst.metric_values[k][inst.pair_a]
    return priced


def regional_plan(
    inst: AlignmentInstance,
    objective: Objective,
    solver: SolverOptions,
    *,
    limits: SearchLimits | None = None,
    max_reps: int | None = None,
    deadline: Deadline | None = None,
) -> tuple[LPRounding, RegionalPlan | None]:
    """A balanced plan of the whole company from regional alignments, and a Lagrangian bound of it.

    Two passes over the same regions of reps. The first aligns the accounts to regions by travel
    (:func:`balance_regions`) and solves only each region's LP: their duals side by side, raised by
    subgradient steps, price every pair for the whole company (:func:`priced_costs`). The second aligns
    the accounts to regions again on those prices, so an account goes where the whole company's
    relaxation would put it, not only near its rep, and aligns each region (:func:`lp_round`). At
    10,000 x 100 with +-5% on two metrics the travel-only split cost 5-6% against the whole LP.

    Parameters
    ----------
    inst
        The whole company's instance (account locations needed for the regions).
    objective
        Objective, disruption budget and move cap of the whole company.
    solver
        Options of every regional :func:`~salesops_models.territory.lp_round.lp_round`.
    limits
        Work limits of the regional searches and of the Lagrangian steps of the bound.
    max_reps
        Reps per region at most (default :data:`REGION_REPS`).
    deadline
        Wall-clock safety net (recorded when it fires).

    Returns
    -------
    LPRounding, RegionalPlan
        The plan (``assign`` ``None`` when some region found none), the Lagrangian bound of the whole
        company (``lp_status`` ``"lagrangian"``), the time of every phase; the regions.
    """
    limits = limits or SearchLimits()
    max_reps = max_reps or REGION_REPS
    deadline = deadline or Deadline(solver.time_limit)
    phase = PhaseTimer()
    tick, phases = phase.start, phase.seconds

    terms = PairTerms.of(inst, objective)

    def failed(why: str, regions: RegionalPlan | None = None) -> tuple[LPRounding, RegionalPlan | None]:
        log.warning("regional alignment: %s", why)
        return LPRounding(why, math.nan, None, math.nan, 0, time.perf_counter() - tick, 0.0, phases), regions

    region = rep_regions(*rep_centroids(inst), max_reps)
    region_limits = replace(
        limits, neighbourhood_rounds=min(limits.neighbourhood_rounds, REGION_NEIGHBOURHOOD_ROUNDS)
    )
    # pass 1: regions by travel, their LPs' duals, subgradient steps: prices for the whole company
    first = balance_regions(inst, region, objective, solver, limits, deadline)
    phase("regions by travel")
    if first is None:
        return failed("no split of the accounts into regions meets the regions' bands")
    one = _solve_regions(inst, objective, solver, limits, deadline, region, first, with_plan=False)
    phase("regional LPs")
    if one.failure:
        return failed(one.failure)
    start = LagrangianBound(-math.inf, np.empty(0), np.empty(0), 0, one.multipliers, np.empty(0))
    lag = lagrangian_bound(
        inst, terms, objective, iterations=limits.lagrangian_steps, start=start, deadline=deadline
    )
    phase("lagrangian bound")
    log.info("regional alignment: Lagrangian bound %.6g from the regional LPs' duals", lag.bound)
    # pass 2: regions (as merged in pass 1) on those prices, each region aligned; the split by travel when
    # that fails
    region = one.region
    second = balance_regions(
        inst, region, objective, solver, limits, deadline, priced_costs(inst, terms, lag)
    )
    phase("regions by price")
    two = None
    for split in (second, one.account_region):
        if split is None:
            continue
        two = _solve_regions(inst, objective, solver, region_limits, deadline, region, split, with_plan=True)
        phase("regional alignments")
        if two.plan is not None:
            break
        log.info("regional alignment: %s; next split", two.failure)
    assert two is not None  # the first split exists
    regions = RegionalPlan(two.region, two.account_region, two.moved_value, two.regional)
    log.info(
        "regions: %d of at most %d reps; accounts moved between regions: value %.4g",
        int(two.region.max()) + 1,
        max_reps,
        two.moved_value,
    )
    if two.plan is None:
        return failed(two.failure, regions)
    plan = two.plan
    # the combined plan, checked on the whole instance
    if not meets_constraints(
        inst, plan, terms.value, terms.moves, objective.disruption_budget, objective.max_moves
    ):
        return failed("the combined regional plans break a band, the budget or the move cap", regions)
    cost = float(terms.cost[plan_pairs(inst, plan)].sum())
    phase("check")
    # the bound: from the second pass's duals, aimed at the plan; the best of both passes
    start = LagrangianBound(-math.inf, np.empty(0), np.empty(0), 0, two.multipliers, np.empty(0))
    more = lagrangian_bound(
        inst, terms, objective, cost, iterations=limits.lagrangian_steps, start=start, deadline=deadline
    )
    phase("lagrangian bound")
    bound = max(lag.bound, more.bound)
    log.info("regional alignment: plan %.6g, Lagrangian bound %.6g / %.6g", cost, lag.bound, more.bound)
    return LPRounding("lagrangian", bound, plan, cost, 0, time.perf_counter() - tick, 0.0, phases), regions
