"""Territory alignment with fixed rep home bases: a generalised-assignment MILP solved by HiGHS.

Formulation
-----------
Sets: accounts :math:`a \\in A`, reps :math:`r \\in R`, balanced metrics :math:`k \\in K`, candidate
pairs :math:`P \\subseteq A \\times R` (each account's ``candidate_k`` nearest reps, its current owner
and its lock).

Parameters: distance :math:`d_{ar}` [km], travel weight :math:`w_a` (e.g. workload hours), metric
values :math:`m_{ka}`, rep capacity :math:`c_r` [0-1], tolerance :math:`\\tau_k` [-], disruption value
:math:`v_a` of an account whose owner :math:`o(a)` changes, move cap :math:`N`, disruption budget
:math:`B` (share of :math:`V = \\sum_{a: o(a) \\in R} v_a`).

Variables: :math:`x_{ar} \\in \\{0, 1\\}` for :math:`(a, r) \\in P`.

.. math::

    \\min\\; \\alpha \\frac{\\sum_{(a,r) \\in P} w_a d_{ar} x_{ar}}{T_0}
        + \\beta \\frac{\\sum_{a: o(a) \\in R} v_a (1 - x_{a,o(a)})}{V}

    \\text{s.t.}\\; \\sum_{r:(a,r) \\in P} x_{ar} = 1 \\quad \\forall a

    (1-\\tau_k)\\, T_{kr} \\le \\sum_{a:(a,r) \\in P} m_{ka} x_{ar} \\le (1+\\tau_k)\\, T_{kr}, \\quad
    T_{kr} = \\frac{c_r}{\\sum_s c_s} \\sum_a m_{ka} \\quad \\forall k, r

    \\sum_{a: o(a) \\in R} (1 - x_{a,o(a)}) \\le N, \\qquad
    \\sum_{a: o(a) \\in R} v_a (1 - x_{a,o(a)}) \\le B V

with :math:`T_0 = \\sum_a \\min_{r:(a,r)\\in P} w_a d_{ar}` (the travel of "everyone to the nearest
candidate", a lower bound) so that both terms are shares near 1 and :math:`\\alpha`, :math:`\\beta`
are unit-free (``normalize=False`` drops the two denominators). Locked accounts keep only their
locked pair.

Elastic model (when the strict model is infeasible): each metric gets a relaxation
:math:`t_k \\ge 0` shared by all reps, the band becomes
:math:`(1-\\tau_k-t_k) T_{kr} \\le \\cdot \\le (1+\\tau_k+t_k) T_{kr}`, the move cap and the budget get
slacks :math:`s_N, s_B \\ge 0`, and :math:`M (\\sum_k t_k + s_N/|A| + s_B)` with :math:`M = 10^4` is
added to the objective. The nearest plan and :math:`\\tau_k + t_k` (the tolerance that would make the
plan feasible) are reported.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from salesops_models.errors import DataValidationError, SalesopsError, format_rows
from salesops_models.territory.geo import candidate_mask, distance_matrix_km
from salesops_models.territory.lp_round import lp_round
from salesops_models.territory.result import AlignmentResult
from salesops_models.territory.solver import (
    FEASIBLE,
    INFEASIBLE,
    OPTIMAL,
    RELAXED,
    SolveInfo,
    SolverOptions,
    relative_gap,
    solve_milp,
)

log = logging.getLogger(__name__)

ACCOUNT_COUNT = "account_count"
ELASTIC_PENALTY = 1e4
#: Candidate pairs from which ``assign_territories`` starts with the LP relaxation and its rounding.
LP_ROUNDING_PAIRS = 50_000


@dataclass(frozen=True)
class BalanceMetric:
    """A metric every territory must carry within a band around its capacity-weighted target.

    Parameters
    ----------
    column
        Accounts column summed per territory (``"account_count"`` counts accounts).
    tolerance
        Half-width of the band as a share of the target [-]: 0.1 means target +-10%.
    """

    column: str
    tolerance: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.tolerance < 1.0):
            raise SalesopsError(
                f"balance metric '{self.column}': tolerance {self.tolerance} must be in [0, 1) "
                "(a share of the target, e.g. 0.1 for +-10%)."
            )


@dataclass
class _Instance:
    account_ids: np.ndarray
    rep_ids: np.ndarray
    capacity: np.ndarray
    owner: np.ndarray  # rep index or -1
    lock: np.ndarray  # rep index or -1
    metric_names: list[str]
    metric_values: np.ndarray  # K x A
    tolerance: np.ndarray  # K
    target: np.ndarray  # K x R
    weight: np.ndarray  # A
    value: np.ndarray  # A (disruption value)
    distance: np.ndarray  # A x R (km)
    pair_a: np.ndarray
    pair_r: np.ndarray
    owner_pair: np.ndarray  # pair index of (a, owner) or -1

    @property
    def lower(self) -> np.ndarray:
        return (1 - self.tolerance)[:, None] * self.target

    @property
    def upper(self) -> np.ndarray:
        return (1 + self.tolerance)[:, None] * self.target

    @property
    def owned_value(self) -> float:
        return float(self.value[self.owner >= 0].sum())


# ------------------------------------------------------------------------------------------------
# Input checks and preparation
# ------------------------------------------------------------------------------------------------


def _require_columns(df: pd.DataFrame, table: str, columns: Iterable[str], why: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            table, [f"missing column(s) {missing} needed for {why}; the table has {list(df.columns)}."]
        )


def _numeric(df: pd.DataFrame, table: str, column: str, key: str) -> np.ndarray:
    if column == ACCOUNT_COUNT:
        return np.ones(len(df))
    _require_columns(df, table, [column], f"'{key}'")
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise DataValidationError(
            table,
            [
                f"column '{column}' (used by {key}) has empty, non-numeric or negative values at "
                f"{format_rows(list(df.loc[bad, 'account_id'] if 'account_id' in df else np.flatnonzero(bad)))}; "
                "fill them with numbers >= 0 or drop the accounts."
            ],
        )
    return values


def _prepare(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    balance: Sequence[BalanceMetric],
    distance: pd.DataFrame | None,
    travel_weight_column: str | None,
    disruption_column: str | None,
    locks: Mapping[str, str] | None,
    candidate_k: int | None,
) -> _Instance:
    _require_columns(accounts, "accounts", ["account_id"], "the alignment")
    _require_columns(reps, "reps", ["rep_id"], "the alignment")
    if len(reps) == 0 or len(accounts) == 0:
        raise DataValidationError("accounts/reps", ["the alignment needs at least one account and one rep."])
    account_ids = accounts["account_id"].astype(str).to_numpy()
    rep_ids = reps["rep_id"].astype(str).to_numpy()
    for ids, table, col in ((account_ids, "accounts", "account_id"), (rep_ids, "reps", "rep_id")):
        dup = pd.Series(ids).duplicated()
        if dup.any():
            raise DataValidationError(
                table,
                [f"column '{col}': duplicate ids {sorted(set(ids[dup.to_numpy()]))[:5]}; make them unique."],
            )
    rep_pos = {r: i for i, r in enumerate(rep_ids)}
    n_acc, n_rep = len(account_ids), len(rep_ids)

    capacity = (
        pd.to_numeric(reps["capacity"], errors="coerce").fillna(1.0).to_numpy(float)
        if "capacity" in reps
        else np.ones(n_rep)
    )
    if (capacity < 0).any() or capacity.sum() <= 0:
        raise DataValidationError(
            "reps", ["column 'capacity' must be >= 0 with a positive total (1 = full-time rep)."]
        )

    if "owner_rep_id" in accounts:
        owner = np.array([rep_pos.get(str(o), -1) if pd.notna(o) else -1 for o in accounts["owner_rep_id"]])
    else:
        owner = np.full(n_acc, -1)

    if distance is not None:
        missing_a = set(account_ids) - set(map(str, distance.index))
        missing_r = set(rep_ids) - set(map(str, distance.columns))
        if missing_a or missing_r:
            raise DataValidationError(
                "distance",
                [
                    "the distance table (index account_id, columns rep_id) lacks "
                    f"accounts {sorted(missing_a)[:5]} and reps {sorted(missing_r)[:5]}; give a distance for every pair."
                ],
            )
        dist = distance.copy()
        dist.index = dist.index.map(str)
        dist.columns = dist.columns.map(str)
        dmat = dist.loc[account_ids, rep_ids].to_numpy(float)
    else:
        _require_columns(accounts, "accounts", ["lat", "lon"], "haversine distances (or pass `distance`)")
        _require_columns(reps, "reps", ["home_lat", "home_lon"], "haversine distances (or pass `distance`)")
        for df, table, cols in (
            (accounts, "accounts", ("lat", "lon")),
            (reps, "reps", ("home_lat", "home_lon")),
        ):
            for c in cols:
                na = pd.to_numeric(df[c], errors="coerce").isna()
                if na.any():
                    key = "account_id" if table == "accounts" else "rep_id"
                    raise DataValidationError(
                        table,
                        [
                            f"column '{c}': empty coordinates for {format_rows(list(df.loc[na, key]))}; "
                            "geocode them or drop them before aligning."
                        ],
                    )
        dmat = distance_matrix_km(accounts["lat"], accounts["lon"], reps["home_lat"], reps["home_lon"])
    if not np.isfinite(dmat).all() or (dmat < 0).any():
        raise DataValidationError("distance", ["distances must be finite and >= 0."])

    names = [b.column for b in balance]
    if len(set(names)) != len(names):
        raise SalesopsError(f"balance metrics {names}: each column may be balanced once.")
    metric_values = (
        np.vstack([_numeric(accounts, "accounts", b.column, "balance") for b in balance])
        if balance
        else np.zeros((0, n_acc))
    )
    tolerance = np.array([b.tolerance for b in balance], dtype=float)
    share = capacity / capacity.sum()
    target = metric_values.sum(axis=1)[:, None] * share[None, :]
    weight = (
        _numeric(accounts, "accounts", travel_weight_column, "travel_weight_column")
        if travel_weight_column
        else np.ones(n_acc)
    )
    value = (
        _numeric(accounts, "accounts", disruption_column, "disruption_column")
        if disruption_column
        else np.ones(n_acc)
    )

    lock = np.full(n_acc, -1)
    if locks:
        acc_pos = {a: i for i, a in enumerate(account_ids)}
        unknown_a = [a for a in locks if str(a) not in acc_pos]
        unknown_r = [r for r in locks.values() if str(r) not in rep_pos]
        if unknown_a or unknown_r:
            raise SalesopsError(
                f"locks: unknown account_id(s) {unknown_a[:5]} / rep_id(s) {unknown_r[:5]}; "
                "lock only accounts and reps present in the tables."
            )
        for a, r in locks.items():
            lock[acc_pos[str(a)]] = rep_pos[str(r)]

    always = np.zeros((n_acc, n_rep), dtype=bool)
    has_owner = owner >= 0
    always[np.flatnonzero(has_owner), owner[has_owner]] = True
    mask = candidate_mask(dmat, candidate_k, always)
    locked = lock >= 0
    mask[locked] = False
    mask[np.flatnonzero(locked), lock[locked]] = True
    pair_a, pair_r = np.nonzero(mask)
    pair_index = np.full((n_acc, n_rep), -1, dtype=np.int64)
    pair_index[pair_a, pair_r] = np.arange(len(pair_a))
    owner_pair = np.where(has_owner, pair_index[np.arange(n_acc), np.maximum(owner, 0)], -1)
    return _Instance(
        account_ids=account_ids,
        rep_ids=rep_ids,
        capacity=capacity,
        owner=owner,
        lock=lock,
        metric_names=names,
        metric_values=metric_values,
        tolerance=tolerance,
        target=target,
        weight=weight,
        value=value,
        distance=dmat,
        pair_a=pair_a,
        pair_r=pair_r,
        owner_pair=owner_pair,
    )


# ------------------------------------------------------------------------------------------------
# Heuristic start: today's alignment, then greedy moves that reduce the balance violation
# ------------------------------------------------------------------------------------------------


def _rep_penalty(load: np.ndarray, lower: np.ndarray, upper: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-rep penalty (summed over metrics): band violation plus a small pull toward the target."""
    t = np.maximum(target, 1e-12)
    viol = (np.maximum(load - upper, 0) + np.maximum(lower - load, 0)) / t
    return (viol + CENTRE_PULL * np.abs(load / t - 1)).sum(axis=0)


CENTRE_PULL = 0.05


def greedy_start(
    inst: _Instance, max_moves: int | None, seconds: float = 10.0, start: np.ndarray | None = None
) -> np.ndarray:
    r"""Rep index per account: today's owner (or nearest candidate), then greedy rebalancing moves and swaps.

    ``start`` replaces today's alignment as the plan to repair (locks still apply), e.g. the rounded LP
    relaxation of :mod:`~salesops_models.territory.lp_round`.

    Local search on the penalty :math:`f = \sum_{k,r} [\max(0, L_{kr} - U_{kr}) + \max(0, \ell_{kr} -
    L_{kr})] / T_{kr} + 0.05 \sum_{k,r} |L_{kr}/T_{kr} - 1|` (band violation plus a small pull toward
    the target, which makes room for later moves). Each step applies the candidate move with the
    largest drop of :math:`f` (ties broken by travel); when no move helps, the best swap of two accounts
    between a violated territory and a neighbour. Stops when the bands are met, when nothing helps, at the
    move cap (only moves back to the owner remain) or after ``seconds`` [s].
    """
    n_acc = len(inst.account_ids)
    cost = inst.weight[inst.pair_a] * inst.distance[inst.pair_a, inst.pair_r]
    assign = np.full(n_acc, -1)
    # nearest candidate per account
    order = np.lexsort((cost, inst.pair_a))
    first = np.unique(inst.pair_a[order], return_index=True)[1]
    assign[inst.pair_a[order][first]] = inst.pair_r[order][first]
    keep = inst.owner >= 0
    assign[keep] = inst.owner[keep]
    if start is not None:
        assign = np.asarray(start, dtype=int).copy()
    locked = inst.lock >= 0
    assign[locked] = inst.lock[locked]
    if inst.metric_values.shape[0] == 0:
        return assign
    K, R = inst.target.shape
    load = np.zeros((K, R))
    for k in range(K):
        load[k] = np.bincount(assign, weights=inst.metric_values[k], minlength=R)
    movable = ~locked[inst.pair_a]
    pa, pr = inst.pair_a[movable], inst.pair_r[movable]
    pcost = cost[movable]
    mv = inst.metric_values[:, pa]  # K x P
    lo, hi, tg = inst.lower, inst.upper, inst.target
    moves = int(((assign != inst.owner) & keep).sum())
    deadline = time.perf_counter() + seconds
    scale = max(float(np.abs(pcost).max()), 1e-12)

    def apply(a: int, r_new: int) -> None:
        nonlocal moves
        r_old = assign[a]
        load[:, r_old] -= inst.metric_values[:, a]
        load[:, r_new] += inst.metric_values[:, a]
        was_home = r_old == inst.owner[a]
        assign[a] = r_new
        if keep[a]:
            moves += int(was_home) - int(r_new == inst.owner[a])

    for _ in range(20 * n_acc):
        if time.perf_counter() > deadline:
            break
        if ((load > hi + 1e-9) | (load < lo - 1e-9)).sum() == 0:
            break  # bands met: travel and disruption are the MILP's job
        pen = _rep_penalty(load, lo, hi, tg)
        src = assign[pa]
        active = src != pr
        if max_moves is not None and moves >= max_moves:
            active &= pr == inst.owner[pa]  # only moves back to the owner are still allowed
        after = _rep_penalty(load[:, src] - mv, lo[:, src], hi[:, src], tg[:, src]) + _rep_penalty(
            load[:, pr] + mv, lo[:, pr], hi[:, pr], tg[:, pr]
        )
        delta = after - pen[src] - pen[pr]
        score = np.where(active, delta + 1e-9 * (pcost / scale), np.inf)
        best = int(np.argmin(score))
        if np.isfinite(score[best]) and delta[best] < -1e-9:
            apply(int(pa[best]), int(pr[best]))
            continue
        # no improving move: best swap between a violated territory and a neighbour
        viol = (np.maximum(load - hi, 0) + np.maximum(lo - load, 0)).sum(axis=0)
        swapped = False
        for r1 in np.argsort(-viol):
            if viol[r1] <= 1e-12:
                break
            out1 = np.flatnonzero((src == r1) & (pr != r1))
            best_swap = (0.0, -1, -1)
            for r2 in np.unique(pr[out1]):
                ia = out1[pr[out1] == r2]
                ib = np.flatnonzero((src == r2) & (pr == r1))
                if len(ia) == 0 or len(ib) == 0:
                    continue
                diff = mv[:, ia][:, :, None] - mv[:, ib][:, None, :]  # K x A x B, load leaving r1
                l1 = load[:, r1][:, None, None] - diff
                l2 = load[:, r2][:, None, None] + diff
                f = _rep_penalty(l1.reshape(K, -1), lo[:, [r1]], hi[:, [r1]], tg[:, [r1]]) + _rep_penalty(
                    l2.reshape(K, -1), lo[:, [r2]], hi[:, [r2]], tg[:, [r2]]
                )
                d = f - pen[r1] - pen[r2]
                j = int(np.argmin(d))
                if d[j] < best_swap[0] - 1e-9:
                    best_swap = (float(d[j]), int(pa[ia[j // len(ib)]]), int(pa[ib[j % len(ib)]]))
                    best_r2 = int(r2)
            if best_swap[1] >= 0:
                a1, a2 = best_swap[1], best_swap[2]
                apply(a1, best_r2)
                apply(a2, int(r1))
                swapped = True
                break
        if not swapped:
            break
    return assign


def polish(
    inst: _Instance,
    assign: np.ndarray,
    *,
    travel_weight: float,
    disruption_weight: float,
    scales: tuple[float, float],
    max_moves: int | None,
    disruption_budget: float | None,
    seconds: float,
) -> np.ndarray:
    """Improve a plan by single-account moves that keep every band, the move cap and the budget.

    Each step applies the move with the largest drop of the objective
    :math:`\\alpha \\Delta\\text{travel} / T_0 + \\beta \\Delta\\text{disruption} / V` among the moves that
    keep every territory inside its bands (territories already outside a band may not get worse), then
    the best improving swap of two accounts between each pair of neighbouring territories; passes repeat
    until nothing improves or ``seconds`` [s] have passed.
    """
    assign = assign.copy()
    cost = inst.weight[inst.pair_a] * inst.distance[inst.pair_a, inst.pair_r]
    movable = inst.lock[inst.pair_a] < 0
    pa, pr, pc = inst.pair_a[movable], inst.pair_r[movable], cost[movable]
    if len(pa) == 0:
        return assign
    K, R = inst.target.shape
    mv = inst.metric_values[:, pa]
    lo, hi = inst.lower, inst.upper
    load = np.zeros((K, R))
    for k in range(K):
        load[k] = np.bincount(assign, weights=inst.metric_values[k], minlength=R)
    t_scale, d_scale = scales
    owned = inst.owner >= 0
    v = np.where(owned, inst.value, 0.0)
    moved = owned & (assign != inst.owner)
    n_moved = int(moved.sum())
    disruption = float(v[moved].sum())
    budget = None if disruption_budget is None else disruption_budget * inst.owned_value
    # cost of each account's current pair
    idx = np.full((len(inst.account_ids), R), np.nan)
    idx[inst.pair_a, inst.pair_r] = cost
    cur_cost = idx[np.arange(len(assign)), assign]
    deadline = time.perf_counter() + seconds
    state = {"n_moved": n_moved, "disruption": disruption}

    def move_pass() -> int:
        done = 0
        for _ in range(20 * len(assign)):
            if time.perf_counter() > deadline:
                break
            src = assign[pa]
            active = src != pr
            was_moved = owned[pa] & (src != inst.owner[pa])
            now_moved = owned[pa] & (pr != inst.owner[pa])
            d_moves = now_moved.astype(int) - was_moved.astype(int)
            d_dis = v[pa] * d_moves
            delta = travel_weight * (pc - cur_cost[pa]) / t_scale + disruption_weight * d_dis / d_scale
            ok = active & (delta < -1e-12)
            if max_moves is not None:
                ok &= state["n_moved"] + d_moves <= max(max_moves, state["n_moved"])
            if budget is not None:
                ok &= state["disruption"] + d_dis <= max(budget, state["disruption"]) + 1e-9
            if not ok.any():
                break
            cand = np.flatnonzero(ok)
            new_src = load[:, src[cand]] - mv[:, cand]
            new_dst = load[:, pr[cand]] + mv[:, cand]
            # a territory may leave its band only in the direction of its target
            src_ok = ((new_src >= lo[:, src[cand]] - 1e-9) | (new_src >= load[:, src[cand]])).all(axis=0)
            dst_ok = ((new_dst <= hi[:, pr[cand]] + 1e-9) | (new_dst <= load[:, pr[cand]])).all(axis=0)
            cand = cand[src_ok & dst_ok]
            if len(cand) == 0:
                break
            best = int(cand[np.argmin(delta[cand])])
            a, r_new, r_old = int(pa[best]), int(pr[best]), int(src[best])
            load[:, r_old] -= inst.metric_values[:, a]
            load[:, r_new] += inst.metric_values[:, a]
            state["n_moved"] += int(d_moves[best])
            state["disruption"] += float(d_dis[best])
            assign[a] = r_new
            cur_cost[a] = pc[best]
            done += 1
        return done

    def swap_pass() -> int:
        # swap a (r1 -> r2) with b (r2 -> r1): the loads of both territories change only by the difference
        done = 0
        src = assign[pa]
        pairs_of: dict[tuple[int, int], list[int]] = {}
        for q in np.flatnonzero(src != pr):
            pairs_of.setdefault((int(src[q]), int(pr[q])), []).append(int(q))
        for (r1, r2), qa in pairs_of.items():
            if r1 > r2 or time.perf_counter() > deadline:
                continue
            qb = pairs_of.get((r2, r1))
            if not qb:
                continue
            qa_arr = np.array([q for q in qa if assign[pa[q]] == r1], dtype=int)
            qb_arr = np.array([q for q in qb if assign[pa[q]] == r2], dtype=int)
            if len(qa_arr) == 0 or len(qb_arr) == 0:
                continue
            ia, ib = pa[qa_arr], pa[qb_arr]
            dm_a = (owned[ia] & (r2 != inst.owner[ia])).astype(int) - (
                owned[ia] & (r1 != inst.owner[ia])
            ).astype(int)
            dm_b = (owned[ib] & (r1 != inst.owner[ib])).astype(int) - (
                owned[ib] & (r2 != inst.owner[ib])
            ).astype(int)
            dd_a, dd_b = v[ia] * dm_a, v[ib] * dm_b
            gain_a = (
                travel_weight * (pc[qa_arr] - cur_cost[ia]) / t_scale + disruption_weight * dd_a / d_scale
            )
            gain_b = (
                travel_weight * (pc[qb_arr] - cur_cost[ib]) / t_scale + disruption_weight * dd_b / d_scale
            )
            delta = gain_a[:, None] + gain_b[None, :]
            ok = delta < -1e-12
            if max_moves is not None:
                ok &= state["n_moved"] + dm_a[:, None] + dm_b[None, :] <= max(max_moves, state["n_moved"])
            if budget is not None:
                ok &= (
                    state["disruption"] + dd_a[:, None] + dd_b[None, :]
                    <= max(budget, state["disruption"]) + 1e-9
                )
            if not ok.any():
                continue
            diff = inst.metric_values[:, ia][:, :, None] - inst.metric_values[:, ib][:, None, :]
            l1 = load[:, r1][:, None, None] - diff
            l2 = load[:, r2][:, None, None] + diff
            ok &= ((l1 >= lo[:, r1, None, None] - 1e-9) & (l1 <= hi[:, r1, None, None] + 1e-9)).all(axis=0)
            ok &= ((l2 >= lo[:, r2, None, None] - 1e-9) & (l2 <= hi[:, r2, None, None] + 1e-9)).all(axis=0)
            if not ok.any():
                continue
            j = int(np.argmin(np.where(ok, delta, np.inf)))
            x, y = divmod(j, len(ib))
            a1, a2 = int(ia[x]), int(ib[y])
            load[:, r1] -= diff[:, x, y]
            load[:, r2] += diff[:, x, y]
            assign[a1], assign[a2] = r2, r1
            cur_cost[a1], cur_cost[a2] = pc[qa_arr[x]], pc[qb_arr[y]]
            state["n_moved"] += int(dm_a[x] + dm_b[y])
            state["disruption"] += float(dd_a[x] + dd_b[y])
            done += 1
        return done

    while time.perf_counter() <= deadline:
        if move_pass() + swap_pass() == 0:
            break
    return assign


def _objective_scales(inst: _Instance, normalize: bool) -> tuple[float, float]:
    cost = inst.weight[inst.pair_a] * inst.distance[inst.pair_a, inst.pair_r]
    order = np.lexsort((cost, inst.pair_a))
    first = np.unique(inst.pair_a[order], return_index=True)[1]
    t0 = float(cost[order][first].sum())
    V = inst.owned_value
    if not normalize:
        return 1.0, 1.0
    return (t0 if t0 > 0 else 1.0), (V if V > 0 else 1.0)


# ------------------------------------------------------------------------------------------------
# The MILP
# ------------------------------------------------------------------------------------------------


def _groups(keys: np.ndarray, n: int) -> list[np.ndarray]:
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n)]


def _build(
    inst: _Instance,
    *,
    travel_weight: float,
    disruption_weight: float,
    disruption_budget: float | None,
    max_moves: int | None,
    normalize: bool,
    elastic: bool,
) -> pyo.ConcreteModel:
    n_acc, n_rep = len(inst.account_ids), len(inst.rep_ids)
    P = len(inst.pair_a)
    K = len(inst.metric_names)
    cost = inst.weight[inst.pair_a] * inst.distance[inst.pair_a, inst.pair_r]
    m = pyo.ConcreteModel("territory_alignment")
    m.P = pyo.RangeSet(0, P - 1)
    m.x = pyo.Var(m.P, within=pyo.Binary)
    x = m.x
    by_account = _groups(inst.pair_a, n_acc)
    m.assign = pyo.Constraint(
        pyo.RangeSet(0, n_acc - 1), rule=lambda _, a: pyo.quicksum(x[int(p)] for p in by_account[a]) == 1
    )
    by_rep = _groups(inst.pair_r, n_rep)
    if elastic:
        m.K = pyo.RangeSet(0, max(K - 1, 0))
        m.relax = pyo.Var(m.K, within=pyo.NonNegativeReals)

    def load(k: int, r: int) -> pyo.Expression:
        vals = inst.metric_values[k]
        return pyo.quicksum(float(vals[inst.pair_a[p]]) * x[int(p)] for p in by_rep[r])

    if K:
        m.KR = pyo.Set(initialize=[(k, r) for k in range(K) for r in range(n_rep)], dimen=2)
        lo, hi, tg = inst.lower, inst.upper, inst.target
        if not elastic:
            m.balance = pyo.Constraint(
                m.KR, rule=lambda _, k, r: pyo.inequality(float(lo[k, r]), load(k, r), float(hi[k, r]))
            )
        else:
            m.balance_hi = pyo.Constraint(
                m.KR, rule=lambda mm, k, r: load(k, r) <= float(hi[k, r]) + float(tg[k, r]) * mm.relax[k]
            )
            m.balance_lo = pyo.Constraint(
                m.KR, rule=lambda mm, k, r: load(k, r) >= float(lo[k, r]) - float(tg[k, r]) * mm.relax[k]
            )

    owned = np.flatnonzero(inst.owner_pair >= 0)
    V = inst.owned_value
    stays = pyo.quicksum(x[int(inst.owner_pair[a])] for a in owned)
    kept_value = pyo.quicksum(float(inst.value[a]) * x[int(inst.owner_pair[a])] for a in owned)
    # accounts whose owner is a rep but the pair was removed by a lock always move
    m.moved = pyo.Expression(expr=float(len(owned)) - stays + float((inst.owner >= 0).sum() - len(owned)))
    lost_value = float(inst.value[(inst.owner >= 0) & (inst.owner_pair < 0)].sum())
    m.disruption = pyo.Expression(expr=float(inst.value[owned].sum()) - kept_value + lost_value)
    m.travel = pyo.Expression(expr=pyo.quicksum(float(cost[p]) * x[p] for p in range(P)))
    order = np.lexsort((cost, inst.pair_a))
    first = np.unique(inst.pair_a[order], return_index=True)[1]
    t0 = float(cost[order][first].sum())
    if normalize:
        t_scale = t0 if t0 > 0 else 1.0
        d_scale = V if V > 0 else 1.0
    else:
        t_scale = d_scale = 1.0
    obj = 0.0
    if travel_weight:
        obj = obj + travel_weight / t_scale * m.travel
    if disruption_weight:
        obj = obj + disruption_weight / d_scale * m.disruption
    # penalty per unit of relaxation: ELASTIC_PENALTY times the size of the objective itself, so a
    # relaxation of 1e-4 (0.01 percentage points) outweighs any travel/disruption saving
    size = abs(travel_weight) * t0 / t_scale + abs(disruption_weight) * V / d_scale
    big = ELASTIC_PENALTY * max(size, 1.0)
    penalty = 0.0
    if max_moves is not None:
        if elastic:
            m.move_slack = pyo.Var(within=pyo.NonNegativeReals)
            m.move_cap = pyo.Constraint(expr=m.moved <= max_moves + m.move_slack)
            penalty = penalty + big * m.move_slack / max(n_acc, 1)
        else:
            m.move_cap = pyo.Constraint(expr=m.moved <= max_moves)
    if disruption_budget is not None:
        budget = disruption_budget * V
        if elastic:
            m.budget_slack = pyo.Var(within=pyo.NonNegativeReals)
            m.budget = pyo.Constraint(expr=m.disruption <= budget + m.budget_slack)
            penalty = penalty + big * m.budget_slack / max(V, 1e-12)
        else:
            m.budget = pyo.Constraint(expr=m.disruption <= budget)
    if elastic and K:
        penalty = penalty + big * pyo.quicksum(m.relax[k] for k in range(K))
    m.caps = (
        float(max_moves) if max_moves is not None else math.inf,
        disruption_budget * V if disruption_budget is not None else math.inf,
    )
    m.base_objective = pyo.Expression(expr=obj)
    m.obj = pyo.Objective(expr=obj + penalty, sense=pyo.minimize)
    return m


def _extract(m: pyo.ConcreteModel, inst: _Instance) -> np.ndarray:
    vals = np.fromiter(
        (m.x[p].value or 0.0 for p in range(len(inst.pair_a))), dtype=float, count=len(inst.pair_a)
    )
    assign = np.full(len(inst.account_ids), -1)
    best = np.full(len(inst.account_ids), -1.0)
    # the pair with the largest value per account (all 0/1 up to tolerance)
    order = np.lexsort((vals, inst.pair_a))
    last = np.r_[np.flatnonzero(np.diff(inst.pair_a[order])), len(order) - 1]
    assign[inst.pair_a[order][last]] = inst.pair_r[order][last]
    best[inst.pair_a[order][last]] = vals[order][last]
    if (best < 0.5).any():
        raise SalesopsError("internal: an account without an assigned rep in the solver's solution.")
    return assign


# ------------------------------------------------------------------------------------------------
# Result tables
# ------------------------------------------------------------------------------------------------


def _tables(
    inst: _Instance,
    assign: np.ndarray,
    accounts: pd.DataFrame,
    adjacency: object | None,
) -> tuple[pd.DataFrame, pd.DataFrame, float, float, int, int | None]:
    n_acc, n_rep = len(inst.account_ids), len(inst.rep_ids)
    idx = np.arange(n_acc)
    dist = inst.distance[idx, assign]
    travel = inst.weight * dist
    has_owner = inst.owner >= 0
    moved = has_owner & (assign != inst.owner)
    prev = np.where(
        has_owner,
        inst.rep_ids[np.maximum(inst.owner, 0)],
        accounts["owner_rep_id"].astype("string").to_numpy() if "owner_rep_id" in accounts else None,
    )
    asg = pd.DataFrame(
        {
            "account_id": inst.account_ids,
            "rep_id": inst.rep_ids[assign],
            "previous_rep_id": pd.array(prev, dtype="string"),
            "moved": moved,
            "locked": inst.lock >= 0,
            "distance_km": dist,
            "travel": travel,
        }
    )
    for k, name in enumerate(inst.metric_names):
        asg[name] = inst.metric_values[k]
    ter = pd.DataFrame({"rep_id": inst.rep_ids, "capacity": inst.capacity})
    ter["accounts"] = np.bincount(assign, minlength=n_rep)
    for k, name in enumerate(inst.metric_names):
        load = np.bincount(assign, weights=inst.metric_values[k], minlength=n_rep)
        tgt = inst.target[k]
        ter[name] = load
        ter[f"{name}_target"] = tgt
        ter[f"{name}_deviation"] = np.where(tgt > 0, load / np.where(tgt > 0, tgt, 1) - 1, 0.0)
        ter[f"{name}_lower"] = inst.lower[k]
        ter[f"{name}_upper"] = inst.upper[k]
    ter["travel"] = np.bincount(assign, weights=travel, minlength=n_rep)
    ter["distance_km"] = np.bincount(assign, weights=dist, minlength=n_rep)
    ter["accounts_in"] = np.bincount(assign[moved], minlength=n_rep)
    ter["accounts_out"] = np.bincount(inst.owner[moved], minlength=n_rep)
    disruption = float(inst.value[moved].sum())
    V = inst.owned_value
    share = disruption / V if V > 0 else 0.0
    disconnected = None
    if adjacency is not None:
        disconnected = count_disconnected(adjacency, asg["account_id"], asg["rep_id"])
        ter["pieces"] = (
            ter["rep_id"].map(territory_pieces(adjacency, asg["account_id"], asg["rep_id"])).fillna(0)
        )
    return asg, ter, disruption, share, int(moved.sum()), disconnected


def territory_pieces(adjacency: object, account_id: pd.Series, rep_id: pd.Series) -> dict[str, int]:
    """Number of connected pieces of each territory in the adjacency graph (nodes = account ids)."""
    import networkx as nx

    graph: nx.Graph = adjacency  # type: ignore[assignment]
    out: dict[str, int] = {}
    for rep, ids in pd.Series(account_id.to_numpy()).groupby(rep_id.to_numpy()):
        nodes = [n for n in ids if n in graph]
        out[str(rep)] = nx.number_connected_components(graph.subgraph(nodes)) if nodes else 0
    return out


def count_disconnected(adjacency: object, account_id: pd.Series, rep_id: pd.Series) -> int:
    """Number of territories made of more than one connected piece of the adjacency graph."""
    return int(sum(p > 1 for p in territory_pieces(adjacency, account_id, rep_id).values()))


def _diagnose(
    inst: _Instance,
    assign: np.ndarray,
    m: pyo.ConcreteModel,
    max_moves: int | None,
    disruption_budget: float | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    n_rep = len(inst.rep_ids)
    relax_rows = []
    for k, name in enumerate(inst.metric_names):
        load = np.bincount(assign, weights=inst.metric_values[k], minlength=n_rep)
        tgt = inst.target[k]
        for r in range(n_rep):
            lo, hi = inst.lower[k, r], inst.upper[k, r]
            if load[r] > hi * (1 + 1e-9) + 1e-9 or load[r] < lo * (1 - 1e-9) - 1e-9:
                side = "above" if load[r] > hi else "below"
                outside = (load[r] - hi) if side == "above" else (lo - load[r])
                rows.append(
                    {
                        "rep_id": inst.rep_ids[r],
                        "metric": name,
                        "side": side,
                        "load": load[r],
                        "target": tgt[r],
                        "lower": lo,
                        "upper": hi,
                        "outside_by": outside,
                        "outside_share": outside / tgt[r] if tgt[r] > 0 else math.inf,
                    }
                )
        dev = np.where(tgt > 0, np.abs(load / np.where(tgt > 0, tgt, 1) - 1), 0.0)
        need = float(dev.max()) if len(dev) else 0.0
        relax_rows.append(
            {
                "constraint": f"tolerance[{name}]",
                "requested": float(inst.tolerance[k]),
                "required": max(need, float(inst.tolerance[k])),
                "binding": need > inst.tolerance[k] + 1e-9,
            }
        )
    moved = (inst.owner >= 0) & (assign != inst.owner)
    if max_moves is not None:
        relax_rows.append(
            {
                "constraint": "max_moves",
                "requested": float(max_moves),
                "required": float(max(moved.sum(), max_moves)),
                "binding": moved.sum() > max_moves,
            }
        )
    if disruption_budget is not None:
        V = inst.owned_value
        share = float(inst.value[moved].sum()) / V if V > 0 else 0.0
        relax_rows.append(
            {
                "constraint": "disruption_budget",
                "requested": float(disruption_budget),
                "required": max(share, disruption_budget),
                "binding": share > disruption_budget + 1e-9,
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(relax_rows)


# ------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------


def assign_territories(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    *,
    balance: Sequence[BalanceMetric] = (BalanceMetric("workload_hours", 0.10),),
    travel_weight_column: str | None = "workload_hours",
    distance: pd.DataFrame | None = None,
    travel_weight: float = 1.0,
    disruption_column: str | None = None,
    disruption_weight: float = 0.0,
    disruption_budget: float | None = None,
    max_moves: int | None = None,
    locks: Mapping[str, str] | None = None,
    candidate_k: int | None = None,
    adjacency: object | None = None,
    warm_start: bool = True,
    heuristic_seconds: float = 10.0,
    elastic_first: bool = True,
    normalize: bool = True,
    lp_rounding: bool | None = None,
    solver: SolverOptions | None = None,
) -> AlignmentResult:
    """Assign every account to one rep: compact, balanced and with limited disruption.

    Parameters
    ----------
    accounts
        One row per account: ``account_id``, ``lat``/``lon`` [deg] (unless ``distance`` is given),
        ``owner_rep_id`` (today's alignment; optional) and the metric columns named in ``balance``,
        ``travel_weight_column`` and ``disruption_column``.
    reps
        One row per rep: ``rep_id``, ``home_lat``/``home_lon`` [deg] (unless ``distance`` is given)
        and ``capacity`` [0-1] (default 1): a rep's target share of each metric is proportional to it.
    balance
        Metrics to balance, each with its tolerance around the capacity-weighted target.
    travel_weight_column
        Account column weighting distance in the travel term (workload hours: travel ~ visits);
        ``None`` weighs every account 1.
    distance
        Optional distance table [km] (index account_id, columns rep_id); default haversine between
        account and rep home base.
    travel_weight, disruption_weight
        Weights of the (normalised) travel and disruption terms of the objective [-].
    disruption_column
        Account column valuing a change of owner (e.g. ``revenue_last_year``); ``None`` counts accounts.
    disruption_budget
        Largest share of today's owned value that may change owner [0-1] (epsilon constraint).
    max_moves
        Largest number of accounts that may change owner.
    locks
        ``account_id -> rep_id`` assignments that must hold ("stay" = the current owner, "go" = another rep).
    candidate_k
        Keep only each account's ``candidate_k`` nearest reps (plus its owner and lock); ``None`` keeps all.
    adjacency
        Optional ``networkx.Graph`` over account ids; the result then counts disconnected territories.
    warm_start
        Start HiGHS from today's alignment rebalanced by :func:`greedy_start`.
    heuristic_seconds
        Time allowed to each of the two heuristic steps (greedy rebalancing, then polishing) [s].
    elastic_first
        Solve the elastic model straight away (default): it always has a plan, its bound is a valid
        bound of the strict model, and when its relaxations end at 0 its plan is a plan of the strict
        model. ``False`` solves the strict model first and falls back to the elastic one only when the
        strict model has no plan (which proves infeasibility when HiGHS says so).
    normalize
        Divide travel and disruption by their scales (see Notes of the module) so the weights are unit-free.
    lp_rounding
        Solve the LP relaxation first and round it (:mod:`~salesops_models.territory.lp_round`) within
        ``solver.time_limit``: a rounded plan that meets every constraint is returned with the LP bound
        and its proven gap, without the MILP. Without such a plan the (elastic) MILP runs in the time
        left and gives the diagnosis. ``None`` (default): on from :data:`LP_ROUNDING_PAIRS` candidate
        pairs. An infeasible LP proves that no plan meets the bands.
    solver
        Time limit, MIP gap, threads; see :class:`SolverOptions`.

    Returns
    -------
    AlignmentResult
        The plan, per-territory table, solve status/objective/bound/gap/time. When the tolerances
        cannot all be met, the status is ``"relaxed"``: the plan is the nearest one (elastic model)
        and ``diagnosis`` / ``relaxation`` say which territories and metrics conflict and by how much
        each tolerance must widen. Nothing is raised for infeasible data.
    """
    solver = solver or SolverOptions()
    tick = time.perf_counter()
    inst = _prepare(
        accounts, reps, balance, distance, travel_weight_column, disruption_column, locks, candidate_k
    )
    notes: list[str] = []
    start_assign = None
    scales = _objective_scales(inst, normalize)
    lp = None
    if lp_rounding or (lp_rounding is None and len(inst.pair_a) >= LP_ROUNDING_PAIRS):
        lp = lp_round(
            inst,
            travel_weight=travel_weight,
            disruption_weight=disruption_weight,
            scales=scales,
            disruption_budget=disruption_budget,
            max_moves=max_moves,
            mip_gap=solver.mip_gap,
            seconds=0.95 * solver.time_limit,
            threads=solver.threads,
        )
        if lp.lp_status == "infeasible":
            notes.append("LP relaxation infeasible: no plan meets every band with these candidates")
        elif np.isfinite(lp.bound):
            notes.append(
                f"LP relaxation bound {lp.bound:.6g}; rounded plan "
                + (f"{lp.objective:.6g} (gap {lp.gap:.2%})" if lp.assign is not None else "not found")
                + f" in {lp.seconds:.1f}s"
            )
        if lp.assign is not None:
            # the plan meets every constraint and its gap is proven by the LP bound; at the sizes this
            # path is for, the MILP could not improve either within the time left (10,000 x 100: the
            # Pyomo build alone takes ~20 s and HiGHS does not finish the root LP in a minute)
            info = SolveInfo(
                status=OPTIMAL if lp.gap <= 1e-9 else FEASIBLE,
                objective=lp.objective,
                bound=lp.bound,
                gap=lp.gap,
                seconds=lp.seconds - lp.build_seconds,
                termination="lp_rounding",
            )
            build_seconds = time.perf_counter() - tick - lp.seconds + lp.build_seconds
            return _result(inst, lp.assign, accounts, adjacency, info, build_seconds, notes)
        solver = replace(solver, time_limit=max(solver.time_limit - lp.seconds, 0.2 * solver.time_limit))
    if warm_start:
        start_assign = greedy_start(inst, max_moves, heuristic_seconds)
        start_assign = polish(
            inst,
            start_assign,
            travel_weight=travel_weight,
            disruption_weight=disruption_weight,
            scales=scales,
            max_moves=max_moves,
            disruption_budget=disruption_budget,
            seconds=heuristic_seconds,
        )
    build = dict(
        travel_weight=travel_weight,
        disruption_weight=disruption_weight,
        disruption_budget=disruption_budget,
        max_moves=max_moves,
        normalize=normalize,
    )
    model = _build(inst, elastic=elastic_first, **build)  # type: ignore[arg-type]
    build_seconds = time.perf_counter() - tick
    log.info(
        "alignment: %d accounts x %d reps, %d candidate pairs, %d metrics; built in %.2fs",
        len(inst.account_ids),
        len(inst.rep_ids),
        len(inst.pair_a),
        len(inst.metric_names),
        build_seconds,
    )
    ws = _start_values(model, inst, start_assign) if start_assign is not None else None
    info = solve_milp(model, solver, ws)
    diagnosis = relaxation = pd.DataFrame()
    strict: SolveInfo | None = None
    if not elastic_first and info.status in (OPTIMAL, FEASIBLE):
        assign = _extract(model, inst)
        if lp is not None and np.isfinite(lp.bound) and not (info.bound >= lp.bound):
            info = replace(info, bound=lp.bound, gap=relative_gap(info.objective, lp.bound))
    else:
        if elastic_first:
            elastic, info_e = model, info
        else:
            strict = info
            notes.append(f"strict model: {strict.status} ({strict.termination}) after {strict.seconds:.1f}s")
            elastic = _build(inst, elastic=True, **build)  # type: ignore[arg-type]
            ws = _start_values(elastic, inst, start_assign) if start_assign is not None else None
            remaining = max(solver.time_limit - strict.seconds, 0.2 * solver.time_limit)
            info_e = solve_milp(elastic, replace(solver, time_limit=remaining), ws)
        if info_e.has_solution:
            assign = _extract(elastic, inst)
        elif start_assign is not None:
            assign = start_assign
            notes.append("the MILP found no plan in time; the plan is the greedy start")
        else:
            raise SalesopsError(
                "territory alignment: the MILP found no plan within "
                f"{solver.time_limit}s; raise territory.time_limit or enable warm_start."
            )
        diagnosis, relaxation = _diagnose(inst, assign, elastic, max_moves, disruption_budget)
        needs_relax = bool(relaxation["binding"].any()) if not relaxation.empty else False
        if not needs_relax:
            diagnosis = pd.DataFrame()
        if needs_relax:
            status = RELAXED
            if strict is not None and strict.status != INFEASIBLE:
                notes.append("the strict model was not proven infeasible (it stopped without a plan)")
        elif info_e.has_solution:
            status = info_e.status
        else:
            status = FEASIBLE
        # the elastic bound is a valid bound of the strict model (the strict model is a restriction)
        objective = float(pyo.value(elastic.base_objective)) if info_e.has_solution else math.nan
        if not info_e.has_solution:
            objective = math.nan
        bound = info_e.bound
        if lp is not None and np.isfinite(lp.bound) and not (bound >= lp.bound):
            bound = lp.bound  # the LP relaxation's bound is the better one
        info = SolveInfo(
            status=status,
            objective=objective if not needs_relax else info_e.objective,
            bound=bound if not needs_relax else info_e.bound,
            gap=relative_gap(objective, bound) if not needs_relax else info_e.gap,
            seconds=(strict.seconds if strict else 0.0) + info_e.seconds,
            termination=(f"strict={strict.termination}; " if strict else "")
            + f"elastic={info_e.termination}",
            nodes=info_e.nodes,
        )
        if needs_relax:
            log.warning(
                "alignment: the tolerances cannot all be met; nearest plan needs %s",
                "; ".join(
                    f"{r.constraint} {r.requested:g}->{r.required:.4g}"
                    for r in relaxation.itertuples()
                    if r.binding
                ),
            )
    return _result(inst, assign, accounts, adjacency, info, build_seconds, notes, diagnosis, relaxation)


def _result(
    inst: _Instance,
    assign: np.ndarray,
    accounts: pd.DataFrame,
    adjacency: object | None,
    info: SolveInfo,
    build_seconds: float,
    notes: list[str],
    diagnosis: pd.DataFrame | None = None,
    relaxation: pd.DataFrame | None = None,
) -> AlignmentResult:
    asg, ter, disruption, share, moved, disconnected = _tables(inst, assign, accounts, adjacency)
    return AlignmentResult(
        assignments=asg,
        territories=ter,
        solve=info,
        metrics=list(inst.metric_names),
        travel=float(asg["travel"].sum()),
        disruption=disruption,
        disruption_share=share,
        moved=moved,
        diagnosis=pd.DataFrame() if diagnosis is None else diagnosis,
        relaxation=pd.DataFrame() if relaxation is None else relaxation,
        disconnected_territories=disconnected,
        build_seconds=build_seconds,
        candidate_pairs=len(inst.pair_a),
        notes=notes,
    )


def _start_values(m: pyo.ConcreteModel, inst: _Instance, assign: np.ndarray) -> list[tuple[object, float]]:
    chosen = np.zeros(len(inst.pair_a), dtype=bool)
    chosen[inst.pair_r == assign[inst.pair_a]] = True
    values: list[tuple[object, float]] = [(m.x[p], float(chosen[p])) for p in range(len(inst.pair_a))]
    if hasattr(m, "relax"):
        # the elastic variables at the smallest values that make the start feasible
        K, R = inst.target.shape
        for k in range(K):
            load = np.bincount(assign, weights=inst.metric_values[k], minlength=R)
            t = np.maximum(inst.target[k], 1e-12)
            need = np.maximum(np.maximum(load - inst.upper[k], inst.lower[k] - load), 0) / t
            values.append((m.relax[k], float(need.max()) * (1 + 1e-9)))
        moved = (inst.owner >= 0) & (assign != inst.owner)
        if hasattr(m, "move_slack"):
            values.append((m.move_slack, max(float(moved.sum()) - m.caps[0], 0.0)))
        if hasattr(m, "budget_slack"):
            values.append((m.budget_slack, max(float(inst.value[moved].sum()) - m.caps[1], 0.0)))
    return values


def disruption_tradeoff(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    budgets: Sequence[float],
    **kwargs: object,
) -> pd.DataFrame:
    """Trace the travel-versus-disruption curve with a disruption budget (epsilon constraint).

    Parameters
    ----------
    accounts, reps
        As for :func:`assign_territories`.
    budgets
        Disruption budgets to solve for, shares of today's owned value [0-1].
    **kwargs
        Further arguments of :func:`assign_territories` (``disruption_budget`` and
        ``disruption_weight`` are set here).

    Returns
    -------
    pandas.DataFrame
        One row per budget: ``budget``, ``status``, ``travel``, ``disruption``, ``disruption_share``,
        ``moved``, ``mip_gap``, ``seconds``.
    """
    rows = []
    for b in budgets:
        res = assign_territories(accounts, reps, disruption_budget=float(b), disruption_weight=0.0, **kwargs)  # type: ignore[arg-type]
        s = res.summary()
        rows.append(
            {
                "budget": float(b),
                "status": s["status"],
                "travel": s["travel"],
                "disruption": s["disruption"],
                "disruption_share": s["disruption_share"],
                "moved": s["moved"],
                "mip_gap": s["mip_gap"],
                "seconds": s["seconds"],
            }
        )
    return pd.DataFrame(rows)


def evaluate_plan(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    rep_of_account: pd.Series | None = None,
    *,
    balance: Sequence[BalanceMetric] = (BalanceMetric("workload_hours", 0.10),),
    travel_weight_column: str | None = "workload_hours",
    distance: pd.DataFrame | None = None,
    disruption_column: str | None = None,
    adjacency: object | None = None,
) -> AlignmentResult:
    """Score a given plan (default: today's, ``owner_rep_id``) with the tables of :func:`assign_territories`.

    Parameters
    ----------
    rep_of_account
        ``rep_id`` per account, indexed by ``account_id``; default the ``owner_rep_id`` column.

    Returns
    -------
    AlignmentResult
        With ``solve.status == "given"`` and no objective; travel, balance and disruption as computed.
    """
    inst = _prepare(accounts, reps, balance, distance, travel_weight_column, disruption_column, None, None)
    pos = {r: i for i, r in enumerate(inst.rep_ids)}
    if rep_of_account is None:
        _require_columns(accounts, "accounts", ["owner_rep_id"], "scoring today's plan")
        rep_of_account = pd.Series(accounts["owner_rep_id"].to_numpy(), index=inst.account_ids)
    plan = pd.Series(rep_of_account).astype("string")
    plan.index = plan.index.map(str)
    reps_for = plan.reindex(inst.account_ids)
    unknown = reps_for.isna() | ~reps_for.isin(list(pos))
    if unknown.any():
        raise DataValidationError(
            "plan",
            [
                f"accounts {format_rows(list(inst.account_ids[unknown.to_numpy()]))} have no rep of the reps table "
                "in the plan; give every account a known rep_id."
            ],
        )
    assign = reps_for.map(pos).to_numpy(int)
    asg, ter, disruption, share, moved, disconnected = _tables(inst, assign, accounts, adjacency)
    return AlignmentResult(
        assignments=asg,
        territories=ter,
        solve=SolveInfo(status="given"),
        metrics=list(inst.metric_names),
        travel=float(asg["travel"].sum()),
        disruption=disruption,
        disruption_share=share,
        moved=moved,
        disconnected_territories=disconnected,
        candidate_pairs=len(inst.pair_a),
    )
