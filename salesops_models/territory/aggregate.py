"""Whole companies by aggregation: blocks of neighbouring accounts solved first, then the accounts.

At 100,000 accounts x 300 reps (3M candidate pairs) one simplex solve of the alignment LP takes
minutes, and the Lagrangian relaxation alone gives no balanced plan (docs/territory.md). A sales
territory holds hundreds of accounts, so a block of a few neighbouring accounts with the same owner
and the same lock hardly changes which plans are good. This path (aggregation and disaggregation,
surveyed by Rogers et al., Operations Research 1991; as in districting from census blocks to tracts):

1. **Blocks** (:func:`account_blocks`): accounts sorted by (lock, owner, preferred rep) and along a
   Morton curve of their locations, cut into runs of at most ``size`` accounts; the preferred rep is
   the nearest, then each account's cheapest rep at the first block LP's duals (:data:`REFINE_PASSES`:
   blocks then agree with the LP's own decisions); an account holding a large share of a
   band (:data:`BIG_ACCOUNT_SHARE`) stays alone. A block's candidates are the reps every member has
   as a candidate (a block without one falls apart into its accounts).
2. **The block instance** (:func:`block_instance`): metrics, travel and moved value summed, so a
   block plan spread back to the accounts has exactly the block plan's loads, objective and moved
   value: every band, the budget and the locks hold for the accounts too.
3. **The block plan**: :func:`~salesops_models.territory.lp_round.lp_round` on the block instance
   (whole LP, rounding, RINS). The block size is ``ceil(pairs / BLOCK_PAIRS)``: 6 at 100,000 x 300
   (839,023 block pairs: runs within a (lock, owner, preferred rep) are often shorter than the size),
   13 at 250,000 x 500 (1,336,917); the block LP is solved whole (60 s and 150 s).
4. **The bound** is the Lagrangian value over **every** account pair at the block LP's band and
   budget duals (:func:`~salesops_models.territory.lp_round.dual_bound`; weak duality holds for any
   multipliers): 0.02% below the account LP at 10,000 x 100, 0.17% at 100,000 x 300. The block LP's
   own objective is *not* a bound (blocks remove plans). (500 subgradient steps from these duals,
   aimed at the plan, raised it by nothing at either size, for 28.6 s at 100,000 x 300: not taken.)
5. **Account-level search** on the whole instance: relaxation-induced neighbourhoods against the
   block LP's values, one MILP per region of :data:`RINS_REGION_REPS` reps in turn. No group
   neighbourhood search: it re-solves a group of territories per rep each round (251 s for 100
   territories at 10,000 x 100), so on a whole company its wall-clock safety net, not its work
   limit, would decide the plan.

Every step stops on work limits; the wall clock only as the safety net of ``deadline``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

import numpy as np

from salesops_models.territory.heuristics import SearchLimits
from salesops_models.territory.instance import (
    AlignmentInstance,
    Objective,
    find_pairs,
    meets_constraints,
)
from salesops_models.territory.lp_round import (
    LPRounding,
    dual_bound,
    lp_round,
    lp_solution,
    reduced_costs,
)
from salesops_models.territory.neighbourhood import PairTerms, relaxation_induced_search
from salesops_models.territory.regions import rep_centroids, rep_regions
from salesops_models.territory.solver import Deadline, PhaseTimer, SolverOptions

log = logging.getLogger(__name__)

#: From this many candidate pairs (and without contiguity or a move cap) the alignment solves blocks of
#: accounts first; ``None`` turns the path off.
AGGREGATE_PAIRS: int | None = 2_000_000
#: Pairs the block instance aims at: the block size is ``ceil(pairs / BLOCK_PAIRS)`` accounts.
BLOCK_PAIRS = 600_000
#: An account whose value of a balanced metric exceeds this share of the mean band half-width of that
#: metric stays a block of its own (a block of such accounts would be too coarse to balance with).
BIG_ACCOUNT_SHARE = 0.2
#: Grid of the Morton curve that orders accounts by location (bits per coordinate).
MORTON_BITS = 16
#: Reps per region of the region-by-region relaxation-induced search on the accounts.
RINS_REGION_REPS = 30
#: Passes that re-cut the blocks by each account's cheapest rep at the previous block LP's duals.
REFINE_PASSES = 1


def _morton(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Morton (Z-order) code of points: nearby points get nearby codes, mostly."""

    def spread(v: np.ndarray) -> np.ndarray:
        v = v.astype(np.uint64)
        v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
        v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
        v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
        v = (v | (v << np.uint64(1))) & np.uint64(0x55555555)
        return v

    top = (1 << MORTON_BITS) - 1

    def grid(v: np.ndarray) -> np.ndarray:
        lo, hi = float(v.min()), float(v.max())
        return np.round((v - lo) / max(hi - lo, 1e-12) * top).astype(np.int64)

    return spread(grid(x)) | (spread(grid(y)) << np.uint64(1))


def _common_candidates(inst: AlignmentInstance, block: np.ndarray) -> np.ndarray:
    """Boolean per pair: its rep is a candidate of every account of its account's block."""
    size = np.bincount(block)
    key = block[inst.pair_a].astype(np.int64) * inst.n_reps + inst.pair_r
    uniq, inverse, count = np.unique(key, return_inverse=True, return_counts=True)
    return (count == size[uniq // inst.n_reps])[inverse]


def account_blocks(inst: AlignmentInstance, size: int, prefer: np.ndarray | None = None) -> np.ndarray:
    """Block index per account (blocks numbered in the order of their first account in the sort).

    Accounts are sorted by lock, owner, ``prefer`` (a rep per account; default the nearest candidate)
    and Morton code of their location (without locations: the nearest candidate) and cut into runs of
    at most ``size`` within each (lock, owner, preferred rep). Large
    accounts (:data:`BIG_ACCOUNT_SHARE`) and the accounts of a block whose members share no candidate
    rep are blocks of their own.
    """
    A, R = inst.n_accounts, inst.n_reps
    mean_half_width = inst.tolerance * inst.target.mean(axis=1)
    big = (inst.metric_values > BIG_ACCOUNT_SHARE * mean_half_width[:, None]).any(axis=0)
    if inst.lat is not None and inst.lon is not None:
        place = _morton(inst.lon, inst.lat).astype(np.int64)
    else:
        place = inst.pair_r[inst.nearest_pair].astype(np.int64)
    if prefer is None:
        prefer = inst.pair_r[inst.nearest_pair]
    prefer = prefer.astype(np.int64)
    alone = big.copy()
    for _ in range(2):  # the second pass only splits blocks without a common candidate
        group = ((inst.lock.astype(np.int64) + 1) * (R + 1) + inst.owner + 1) * R + prefer
        group = np.where(alone, -1 - np.arange(A), group)  # lone accounts: a group each
        order = np.lexsort((np.arange(A), place, group))
        g = group[order]
        run_start = np.r_[True, g[1:] != g[:-1]]
        first = np.flatnonzero(run_start)
        pos = np.arange(A) - np.repeat(first, np.diff(np.r_[first, A]))
        new_block = run_start | (pos % size == 0)
        block = np.empty(A, dtype=np.int64)
        block[order] = np.cumsum(new_block) - 1
        common = _common_candidates(inst, block)
        has = np.bincount(block[inst.pair_a[common]], minlength=int(block.max()) + 1) > 0
        if has.all():
            break
        alone |= ~has[block]
    return block


def block_instance(inst: AlignmentInstance, block: np.ndarray) -> AlignmentInstance:
    """The instance whose "accounts" are the blocks: metrics, travel and value summed, pairs to the reps
    every member has as a candidate; owners and locks are the members' (the same by construction)."""
    G, R = int(block.max()) + 1, inst.n_reps
    common = _common_candidates(inst, block)
    key = block[inst.pair_a[common]].astype(np.int64) * R + inst.pair_r[common]
    uniq, inverse = np.unique(key, return_inverse=True)
    travel = np.bincount(inverse, weights=inst.pair_travel[common], minlength=len(uniq))
    pair_a, pair_r = uniq // R, uniq % R
    weight = np.bincount(block, weights=inst.weight, minlength=G)
    distance = np.zeros((G, R))
    distance[pair_a, pair_r] = travel / np.where(weight[pair_a] > 0, weight[pair_a], 1.0)
    first = np.full(G, -1)
    first[block[::-1]] = np.arange(inst.n_accounts)[::-1]  # a member of each block
    owner, lock = inst.owner[first], inst.lock[first]
    members = np.bincount(block, minlength=G)

    def mean(v: np.ndarray | None) -> np.ndarray | None:
        return None if v is None else np.bincount(block, weights=v, minlength=G) / members

    return replace(
        inst,
        account_ids=np.array([f"block {g}" for g in range(G)]),
        owner=owner,
        lock=lock,
        metric_values=np.stack([np.bincount(block, weights=m, minlength=G) for m in inst.metric_values]),
        weight=np.where(weight > 0, weight, 1.0),
        value=np.bincount(block, weights=inst.value, minlength=G),
        distance=distance,
        pair_a=pair_a,
        pair_r=pair_r,
        owner_pair=find_pairs(uniq, R, owner),
        lat=mean(inst.lat),
        lon=mean(inst.lon),
    )


def aggregated_plan(
    inst: AlignmentInstance,
    objective: Objective,
    solver: SolverOptions,
    *,
    limits: SearchLimits,
    deadline: Deadline | None = None,
) -> LPRounding:
    """The alignment of a whole company through blocks of accounts (module notes); an
    :class:`~salesops_models.territory.lp_round.LPRounding` of the whole instance, ``lp_status``
    ``"lagrangian"`` (the bound is a Lagrangian value over every pair), ``assign`` ``None`` when the
    block instance gave no plan (the caller then tries the account-level path)."""
    deadline = deadline or Deadline(solver.time_limit)
    phase = PhaseTimer()
    tick, phases = phase.start, phase.seconds

    size = max(1, math.ceil(len(inst.pair_a) / BLOCK_PAIRS))
    terms = PairTerms.of(inst, objective)
    block = account_blocks(inst, size)
    coarse = block_instance(inst, block)
    phase("blocks")
    for _ in range(REFINE_PASSES):
        # each account's cheapest rep at the block LP's duals: blocks of accounts that agree on it
        first = lp_solution(coarse, objective, solver, deadline)
        if first is None:
            break
        y = np.r_[np.zeros(inst.n_accounts), first[1][coarse.n_accounts :]]
        d = reduced_costs(inst, terms, y, objective)
        order = np.lexsort((d, inst.pair_a))
        cheapest = order[np.r_[0, np.flatnonzero(np.diff(inst.pair_a[order])) + 1]]
        block = account_blocks(inst, size, inst.pair_r[cheapest])
        coarse = block_instance(inst, block)
        phase("blocks at the block duals")
    log.info(
        "aggregation: %d accounts in %d blocks of at most %d, %d block pairs",
        inst.n_accounts,
        coarse.n_accounts,
        size,
        len(coarse.pair_a),
    )
    region = None
    if inst.lat is not None and inst.lon is not None and inst.n_reps > RINS_REGION_REPS:
        region = rep_regions(*rep_centroids(inst), RINS_REGION_REPS)

    def failed(status: str) -> LPRounding:
        return LPRounding(status, math.nan, None, math.nan, 0, time.perf_counter() - tick, 0.0, phases)

    # the whole block LP (its duals give the bound); budget repaired by RINS, not by giving blocks back
    # (at 100,000 x 300 blocks RINS then ended at 2.44289 against 2.46594 from the restored plan)
    res = lp_round(
        coarse,
        objective,
        solver,
        limits=replace(limits, neighbourhood_rounds=0),
        deadline=deadline,
        whole_lp=True,
        restore=False,
    )
    for name, seconds in res.phase_seconds.items():
        phases[f"blocks: {name}"] = seconds
    phase.restart()
    if res.assign is None or res.row_dual is None or res.x is None:
        log.info("aggregation: no block plan (%s)", res.lp_status)
        return failed(res.lp_status)
    coarse_x, coarse_dual, block_plan, lp_value = res.x, res.row_dual, res.assign, res.bound
    plan = block_plan[block]
    if not meets_constraints(
        inst, plan, terms.value, terms.moves, objective.disruption_budget, objective.max_moves
    ):
        log.info("aggregation: the block plan breaks a constraint on the accounts")  # not expected
        return failed("infeasible")
    split_blocks = res.split_accounts
    G = coarse.n_accounts
    y = np.r_[np.zeros(inst.n_accounts), coarse_dual[G:]]
    bound = dual_bound(inst, terms, objective, y)
    phase("bound at the block duals")
    log.info(
        "aggregation: block plan %.6g (block LP %.6g); Lagrangian bound at its duals %.6g",
        terms.objective(inst, plan),
        lp_value,
        bound,
    )
    # the block LP's values spread to the accounts' pairs (0 where the pair is not a block pair), and
    # the reduced costs of every account pair at its duals: the relaxation the account RINS compares with
    key = block[inst.pair_a].astype(np.int64) * coarse.n_reps + inst.pair_r
    where = np.searchsorted(coarse.pair_key, key)
    where = np.minimum(where, len(coarse.pair_key) - 1)
    hit = coarse.pair_key[where] == key
    x = np.where(hit, coarse_x[where], 0.0)
    reduced = np.maximum(reduced_costs(inst, terms, y, objective), 0.0)
    sub_solver = replace(solver, mip_gap=1e-6, node_limit=limits.neighbourhood_nodes)
    plan = relaxation_induced_search(
        inst, plan, x, reduced, terms, sub_solver, rounds=limits.rins_rounds, deadline=deadline, region=region
    )
    phase("rins on the accounts")
    obj = terms.objective(inst, plan)
    log.info("aggregation: plan %.6g, bound %.6g, gap %.3g%%", obj, bound, 100 * (obj - bound) / obj)
    return LPRounding(
        "lagrangian",
        bound,
        plan,
        obj,
        split_blocks,
        time.perf_counter() - tick,
        0.0,
        phases,
    )
