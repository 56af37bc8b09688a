"""LP relaxation and rounding of the alignment MILP: a proven bound and a plan at scale.

The strict alignment model of :func:`~salesops_models.territory.assign_territories` is built here a
second time, straight into HiGHS from the arrays of the instance (no Pyomo: at 10,000 x 100 the Pyomo
build alone takes tens of seconds). One column per candidate pair :math:`p = (a, r)`, cost

.. math:: c_p = \\alpha\\, w_a d_{ar} / T_0 + \\beta\\, v_a [o_a \\ge 0,\\ r \\ne o_a] / V

(the objective of the MILP: travel plus the value of accounts that leave their owner :math:`o_a`),
rows: each account once; every balance metric of every territory inside its band; the disruption
budget; the move cap.

1. **LP relaxation** (:math:`0 \\le x \\le 1`, dual simplex). Its objective :math:`z_{LP}` is a lower
   bound of every plan, so the gap of any plan to it is a *proven* gap. An infeasible LP proves that no
   plan meets the bands with these candidates (the diagnosis then comes from the elastic MILP). The LP
   is nearly integral: at 10,000 x 100 it splits 159 accounts, and rounding each account to its largest
   share costs only 0.04% more than :math:`z_{LP}`, but leaves 89 territory-metric bands broken.
2. **A first plan.** The LP is re-solved from the same basis with every band at :data:`ROUNDING_SHRINK`
   times its width (0.3, then 0.6, then 1.0), rounded, and rebalanced by greedy moves and swaps
   (:func:`~salesops_models.territory.heuristics.greedy_start`): inside every band, but far from the
   bound (8% above it at 10,000 x 100, the price of the narrower bands).
3. **Relaxation-induced neighbourhoods** (:func:`~salesops_models.territory.neighbourhood.relaxation_induced_search`, RINS): a MILP over the
   accounts where the plan and the rounded LP disagree (and the accounts the LP splits), everything else
   fixed, started from the plan; repeated with the new plan, and with more pairs per account when a round
   improves nothing. At 10,000 x 100 the first round frees 1,420 accounts and brings the plan to 0.8%
   above the bound.
4. **Neighbourhood search** (:func:`~salesops_models.territory.neighbourhood.neighbourhood_search`):
   small groups of territories re-solved exactly, the rest fixed; the plan never gets worse.

Every MILP stops at ``SearchLimits.neighbourhood_nodes`` nodes and every loop at a count of rounds: the
plan is the same on any machine.

The result is a plan (or ``None``), the LP bound, the number of accounts the LP split and the time.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.sparse import coo_matrix

from salesops_models.territory.contiguity import Contiguity, cut_row
from salesops_models.territory.heuristics import SearchLimits, connected_plan, greedy_start, restore_budget
from salesops_models.territory.instance import (
    AlignmentInstance,
    Objective,
    largest_share,
    meets_constraints,
    plan_pairs,
)
from salesops_models.territory.lagrangian import LagrangianBound, lagrangian_bound
from salesops_models.territory.neighbourhood import (
    ELASTIC_WEIGHT,
    PairTerms,
    neighbourhood_search,
    relaxation_induced_search,
)
from salesops_models.territory.solver import (
    Deadline,
    PhaseTimer,
    SolverOptions,
    highs_lp,
    highs_solver,
    stopped_by_clock,
)

log = logging.getLogger(__name__)

#: Band half-widths (as shares of the requested tolerance) of the LPs that are rounded, tried in turn.
ROUNDING_SHRINK = (0.3, 0.6, 1.0)
#: From this many candidate pairs the LP is solved by column generation (:func:`lp_by_column_generation`)
#: instead of whole: at 100,000 x 300 (3M pairs) dual simplex on the whole LP took over 10 minutes.
COLUMN_GENERATION_PAIRS = 1_000_000
#: From this many candidate pairs the bound is the Lagrangian one (:mod:`~salesops_models.territory.lagrangian`):
#: at 100,000 x 300 (3M pairs) neither the whole LP nor its column generation was solved in minutes.
LAGRANGIAN_PAIRS = 2_000_000
#: Share of the accounts whose second cheapest pair by Lagrangian reduced cost starts in the core LP
#: (:func:`lagrangian_core`).
CORE_SECOND_SHARE = 0.5
#: Cheapest pairs per account in the first LP of the column generation.
CORE_PAIRS = 8
#: Pricing rounds of the column generation at most (a work limit).
PRICING_ROUNDS = 50
#: Pricing rounds on the Lagrangian path (a work limit): at 100,000 x 300 one warm re-solve of the core
#: LP took minutes (no presolve on a warm start), so the core LP gives the plan, and the bound is raised
#: by subgradient steps from its duals instead (:func:`multipliers_of_duals`).
LAGRANGIAN_PRICING_ROUNDS = 2


@dataclass
class LPRounding:
    """What :func:`lp_round` found.

    Attributes
    ----------
    lp_status
        ``"optimal"``, ``"infeasible"`` (no fractional plan meets the bands: no plan does),
        ``"lagrangian"`` (whole companies: the bound is the Lagrangian one, see
        :data:`LAGRANGIAN_PAIRS`), or the HiGHS status when the LP stopped otherwise.
    bound
        LP objective: a lower bound of the MILP objective (NaN unless ``lp_status == "optimal"``).
    assign
        Rep index per account of the rounded plan, or ``None``.
    objective
        MILP objective of that plan (NaN without a plan).
    split_accounts
        Accounts the LP assigned to more than one rep.
    seconds
        Wall-clock time [s], ``build_seconds`` included.
    build_seconds
        Time to build the LP and hand it to HiGHS [s].
    phase_seconds
        Wall-clock time of each step that ran [s], in order: ``lp build``, ``lp solve``, ``lp
        contiguity cuts``, ``rounding``, ``connect``, ``rins``, ``neighbourhood search``.
    row_dual
        Row duals of the LP relaxation (rows of :func:`_model`: accounts, bands, budget, move cap) when it
        was solved over every pair, else ``None``: the regional path
        (:mod:`~salesops_models.territory.regions`) starts the whole company's Lagrangian steps from them.
    x
        The LP relaxation's value of every pair, with ``row_dual`` (else ``None``): the block path
        (:mod:`~salesops_models.territory.aggregate`) spreads it to the accounts for their RINS.
    """

    lp_status: str
    bound: float
    assign: np.ndarray | None
    objective: float
    split_accounts: int
    seconds: float
    build_seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    row_dual: np.ndarray | None = None
    x: np.ndarray | None = None

    @property
    def gap(self) -> float:
        if self.assign is None or not np.isfinite(self.bound):
            return math.nan
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-9)


def _model(
    inst: AlignmentInstance,
    cost: np.ndarray,
    moves: np.ndarray,
    value: np.ndarray,
    disruption_budget: float | None,
    max_moves: int | None,
    slack_cost: float | None = None,
    cols: np.ndarray | None = None,
) -> object:
    """The strict model as a ``HighsLp``; with ``slack_cost``, elastic: every band row and the budget row
    get slack columns (after the pair columns) costing ``slack_cost`` per unit of target (of owned value).
    ``cols``: only these pairs get a column (in this order); default every pair."""

    if cols is not None:
        cost, moves, value = cost[cols], moves[cols], value[cols]
    pa = inst.pair_a if cols is None else inst.pair_a[cols]
    pr = inst.pair_r if cols is None else inst.pair_r[cols]
    P, A = len(pa), len(inst.account_ids)
    K, R = inst.target.shape
    cols = [np.arange(P)]
    rows = [pa]
    vals = [np.ones(P)]
    row_lo = [np.ones(A)]
    row_hi = [np.ones(A)]
    for k in range(K):
        cols.append(np.arange(P))
        rows.append(A + k * R + pr)
        vals.append(inst.metric_values[k][pa])
    row_lo.append(inst.lower.reshape(-1))
    row_hi.append(inst.upper.reshape(-1))
    n_row = A + K * R
    for used, cap in (
        (value, disruption_budget * inst.owned_value if disruption_budget is not None else None),
        (moves, float(max_moves) if max_moves is not None else None),
    ):
        if cap is None:
            continue
        nz = np.flatnonzero(used)
        cols.append(nz)
        rows.append(np.full(len(nz), n_row))
        vals.append(used[nz])
        row_lo.append(np.array([-np.inf]))
        row_hi.append(np.array([cap]))
        n_row += 1
    n_col, col_cost = P, [cost.astype(float)]
    if slack_cost is not None:
        band = A + np.arange(K * R)
        tgt = np.maximum(inst.target.reshape(-1), 1e-12)
        for sign in (1.0, -1.0):  # lifts a load below its band / lowers one above
            cols.append(n_col + np.arange(K * R))
            rows.append(band)
            vals.append(np.full(K * R, sign))
            col_cost.append(slack_cost / tgt)
            n_col += K * R
        if disruption_budget is not None:
            cols.append(np.array([n_col]))
            rows.append(np.array([A + K * R]))
            vals.append(np.array([-1.0]))
            col_cost.append(np.array([slack_cost / max(inst.owned_value, 1e-12)]))
            n_col += 1
    mat = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_row, n_col)
    )
    upper = np.r_[np.ones(P), np.full(n_col - P, np.inf)]
    lp = highs_lp(mat, np.concatenate(col_cost), upper, np.concatenate(row_lo), np.concatenate(row_hi))
    return lp


def _round_narrow_bands(
    inst: AlignmentInstance,
    h: object,
    max_moves: int | None,
    value: np.ndarray,
    moves: np.ndarray,
    limits: SearchLimits,
    deadline: Deadline,
    cols: np.ndarray | None = None,
    terms: PairTerms | None = None,
) -> np.ndarray:
    """Re-solve the LP in ``h`` with bands at :data:`ROUNDING_SHRINK` times their width, round, rebalance.

    ``cols``: the pair of each of the LP's first columns (column generation), default every pair. With
    ``terms`` and a budget, accounts are given back to their owners while the bands hold when the
    rounding moves more than the budget (:func:`restore_budget`); the first width whose plan meets the
    bands and the budget is kept, else the first that meets the bands (the searches then repair it)."""
    import highspy

    n_acc = inst.n_accounts
    K, R = inst.target.shape
    band_rows = np.arange(n_acc, n_acc + K * R, dtype=np.int32)
    plan = banded = None
    budget = None if terms is None else terms.budget
    for shrink in ROUNDING_SHRINK:
        if deadline.expired("LP rounding"):
            break
        tol = shrink * inst.tolerance[:, None]
        h.changeRowsBounds(  # type: ignore[attr-defined]
            len(band_rows),
            band_rows,
            ((1 - tol) * inst.target).reshape(-1),
            ((1 + tol) * inst.target).reshape(-1),
        )
        h.run()  # type: ignore[attr-defined]  # dual simplex from the previous basis
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # type: ignore[attr-defined]
            if stopped_by_clock(h):
                deadline.record("LP rounding")
            continue
        xs = pair_values(h, len(inst.pair_a), cols)
        plan = greedy_start(
            inst,
            max_moves,
            start=largest_share(inst, xs),
            max_steps=limits.rebalance_steps,
            deadline=deadline,
        )
        if budget is not None:
            plan = restore_budget(inst, plan, terms.cost, budget)  # type: ignore[union-attr]
        if meets_constraints(inst, plan, value, moves, None, max_moves):
            within = budget is None or value[plan_pairs(inst, plan)].sum() <= budget * (1 + 1e-9)
            log.info(
                "LP rounding: bands x%.1f, rounded and rebalanced%s",
                shrink,
                "" if within else ", over the budget",
            )
            if within:
                banded = None
                break
            banded = plan if banded is None else banded
    if banded is not None:
        plan = banded
    if plan is None:
        plan = greedy_start(inst, max_moves, max_steps=limits.rebalance_steps, deadline=deadline)
    return plan


def pair_rank(inst: AlignmentInstance, key: np.ndarray) -> np.ndarray:
    """Rank of each pair among its account's pairs by ``key`` (0: the smallest; ties by pair index)."""
    order = np.lexsort((key, inst.pair_a))
    start = np.r_[0, np.cumsum(np.bincount(inst.pair_a, minlength=inst.n_accounts))]
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = np.arange(len(key)) - start[inst.pair_a[order]]
    return rank


def lagrangian_core(inst: AlignmentInstance, lag: LagrangianBound) -> np.ndarray:
    """Boolean per pair: the core LP of a whole company, read off the Lagrangian steps.

    Every pair the relaxed choice took in the last steps (:attr:`LagrangianBound.recent`: the accounts
    the multipliers move back and forth are where the LP splits), and each account's second cheapest
    pair at the best multipliers when it is within the median of those (:data:`CORE_SECOND_SHARE`).
    Accounts far from any other rep keep one column, which presolve fixes. Pricing adds what the LP's
    own duals ask for (:func:`lp_by_column_generation`); each pricing round at 100,000 x 300 re-solves
    an LP of 100,000 rows, so a core that leaves few rounds matters more than a small one.
    """
    rank = pair_rank(inst, lag.reduced)
    second = rank == 1
    cut = np.quantile(lag.reduced[second], CORE_SECOND_SHARE) if second.any() else 0.0
    return lag.recent | (rank == 0) | (second & (lag.reduced <= cut))


def dual_bound(
    inst: AlignmentInstance, terms: PairTerms, objective: Objective, row_dual: np.ndarray
) -> float:
    r"""The Lagrangian value at the band, budget and move-cap duals of an LP (:func:`_model` rows): a
    lower bound of every plan over **all** candidate pairs, whatever columns that LP had.

    With :math:`y_{kr}` the band duals (positive at a lower bound), :math:`y_B, y_N \le 0` those of the
    budget and move cap: :math:`L(y) = \sum_a \min_r [c_{ar} - \sum_k y_{kr} m_{ka} - y_B v_{ar} - y_N
    s_{ar}] + \sum_{k,r} (y^+_{kr} \ell_{kr} - y^-_{kr} u_{kr}) + y_B B + y_N N` (weak duality for any
    such :math:`y`). At the duals of an LP over every pair that prices nothing out it is the LP bound.
    """
    A = inst.n_accounts
    K, R = inst.target.shape
    y = np.asarray(row_dual, float).copy()
    y[:A] = 0.0  # the account rows are kept: each account takes its cheapest pair
    row = A + K * R
    const = 0.0
    for cap in (terms.budget, terms.max_moves):
        if cap is not None:
            y[row] = min(y[row], 0.0)  # a <= row: only a non-positive dual is a valid multiplier
            const += y[row] * cap
            row += 1
    band = y[A : A + K * R].reshape(K, R)
    const += float((np.maximum(band, 0) * inst.lower - np.maximum(-band, 0) * inst.upper).sum())
    d = reduced_costs(inst, terms, y, objective)
    starts = np.r_[0, np.flatnonzero(np.diff(inst.pair_a)) + 1]
    return float(np.minimum.reduceat(d, starts).sum()) + const


def lp_solution(
    inst: AlignmentInstance, objective: Objective, solver: SolverOptions, deadline: Deadline
) -> tuple[np.ndarray, np.ndarray] | None:
    """Pair values and row duals of the LP relaxation of the strict model over every pair (:func:`_model`
    rows), or ``None`` when the LP is not solved to optimality (infeasible, or stopped by the safety net)."""
    import highspy

    terms = PairTerms.of(inst, objective)
    lp = _model(inst, terms.cost, terms.moves, terms.value, objective.disruption_budget, objective.max_moves)
    h = highs_solver(solver, deadline, mip=False)
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # type: ignore[attr-defined]
        if stopped_by_clock(h):
            deadline.record("LP relaxation")
        return None
    sol = h.getSolution()
    return np.asarray(sol.col_value, float)[: len(inst.pair_a)], np.asarray(sol.row_dual, float)


def multipliers_of_duals(
    inst: AlignmentInstance, terms: PairTerms, row_dual: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The LP's band, budget and move-cap duals as the (row-scaled) multipliers of
    :func:`~salesops_models.territory.lagrangian.lagrangian_bound`, to start its steps from."""
    A = inst.n_accounts
    K, R = inst.target.shape
    net = -np.asarray(row_dual, float)[A : A + K * R].reshape(K, R) * np.maximum(inst.target, 1e-12)
    row, mu, nu = A + K * R, 0.0, 0.0
    if terms.budget is not None:
        mu = max(-float(row_dual[row]), 0.0) * max(inst.owned_value, 1e-12)
        row += 1
    if terms.max_moves is not None:
        nu = max(-float(row_dual[row]), 0.0) * max(inst.n_accounts, 1)
    return np.maximum(net, 0.0), np.maximum(-net, 0.0), mu, nu


def pair_values(h: object, n_pairs: int, cols: np.ndarray | None) -> np.ndarray:
    """The LP's value of every candidate pair (0 for pairs without a column)."""
    col_value = np.asarray(h.getSolution().col_value, float)  # type: ignore[attr-defined]
    if cols is None:
        return col_value[:n_pairs]
    x = np.zeros(n_pairs)
    is_pair = cols >= 0
    x[cols[is_pair]] = col_value[: len(cols)][is_pair]
    return x


def reduced_costs(
    inst: AlignmentInstance, terms: PairTerms, row_dual: np.ndarray, objective: Objective
) -> np.ndarray:
    """Reduced cost :math:`c_p - a_p^T y` of every candidate pair for the row duals ``y`` of :func:`_model`
    (rows: accounts, bands ``k * R + r``, then the budget row and the move-cap row when present)."""
    pa, pr = inst.pair_a, inst.pair_r
    A = inst.n_accounts
    K, R = inst.target.shape
    d = terms.cost - row_dual[pa]
    for k in range(K):
        d -= row_dual[A + k * R + pr] * inst.metric_values[k][pa]
    row = A + K * R
    for used, cap in ((terms.value, objective.disruption_budget), (terms.moves, objective.max_moves)):
        if cap is not None:
            d -= row_dual[row] * used
            row += 1
    return d


def lp_by_column_generation(
    inst: AlignmentInstance,
    terms: PairTerms,
    objective: Objective,
    solver: SolverOptions,
    deadline: Deadline,
    core_k: int = CORE_PAIRS,
    rounds: int = PRICING_ROUNDS,
    core: np.ndarray | None = None,
) -> tuple[object, np.ndarray, str]:
    """The LP relaxation over all candidate pairs, solved on a core of pairs priced out in rounds.

    The core is ``core`` (a boolean per pair, e.g. :func:`lagrangian_core`), by default each account's
    ``core_k`` cheapest pairs; the owners' pairs are always in it. Band and budget rows get
    slack (so the core LP always has a solution), priced high. Each round adds, per account, its pair of
    most negative reduced cost (:func:`reduced_costs` with the LP's row duals; one per account keeps the
    LP small: the next round's duals decide whether a second is needed) and re-solves from the last basis.
    When no pair prices out and no slack is used, the LP over the core is optimal for the LP over all
    pairs: its objective is the same bound, exactly. Returns ``(highs, cols, status)``: ``cols`` is the
    pair of each column (-1: a slack column); ``status`` is ``"optimal"``, or what stopped it (the caller
    then solves the whole LP).
    """
    import highspy

    if core is None:
        core = pair_rank(inst, terms.cost) < core_k
    core = core.copy()
    core[inst.owner_pair[inst.owner_pair >= 0]] = True
    cols = np.flatnonzero(core)
    # slack priced against the size of a plan (every account at its cheapest pair), not of all pairs: a cost
    # 10^6 times the objective made the first LP at 30,000 x 150 take minutes instead of seconds
    starts = np.r_[0, np.flatnonzero(np.diff(inst.pair_a)) + 1]
    slack_cost = ELASTIC_WEIGHT * max(float(np.minimum.reduceat(terms.cost, starts).sum()), 1e-9)
    lp = _model(
        inst,
        terms.cost,
        terms.moves,
        terms.value,
        objective.disruption_budget,
        objective.max_moves,
        slack_cost=slack_cost,
        cols=cols,
    )
    cols = np.r_[cols, np.full(lp.num_col_ - len(cols), -1)]  # type: ignore[attr-defined]
    h = highs_solver(solver, deadline, mip=False)
    h.passModel(lp)
    del lp
    A = inst.n_accounts
    K, R = inst.target.shape
    status = "pricing rounds"
    for i in range(rounds):
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return h, cols, "stopped by clock" if stopped_by_clock(h) else str(h.getModelStatus())
        sol = h.getSolution()
        d = reduced_costs(inst, terms, np.asarray(sol.row_dual, float), objective)
        d[cols[cols >= 0]] = 0.0
        new = np.flatnonzero(d < -1e-9 * max(1.0, abs(h.getInfo().objective_function_value)))
        if len(new):
            # the most negative pair of each account only (pair_a is sorted, so is new)
            best = new[np.lexsort((d[new], inst.pair_a[new]))]
            new = np.sort(best[np.r_[True, np.diff(inst.pair_a[best]) > 0]])
        log.info(
            "LP column generation %d: %d columns, bound %.6g, %d pairs price out",
            i,
            len(cols),
            h.getInfo().objective_function_value,
            len(new),
        )
        if len(new) == 0:
            slack = np.asarray(sol.col_value, float)[cols < 0]
            status = "optimal" if slack.max(initial=0.0) <= 1e-9 else "slack"
            break
        if i == rounds - 1:
            break  # keep the last LP solved: its duals still give a bound (:func:`dual_bound`)
        # new columns: the account row, the band rows of their rep, the budget and move-cap rows
        pa, pr = inst.pair_a[new], inst.pair_r[new]
        rows = [pa] + [A + k * R + pr for k in range(K)]
        vals = [np.ones(len(new))] + [inst.metric_values[k][pa] for k in range(K)]
        row = A + K * R
        for used, cap in (
            (terms.value, objective.disruption_budget),
            (terms.moves, objective.max_moves),
        ):
            if cap is not None:
                nz = used[new] != 0
                rows.append(np.where(nz, row, -1))
                vals.append(used[new])
                row += 1
        mat = coo_matrix(
            (
                np.concatenate(vals)[np.concatenate(rows) >= 0],
                (
                    np.concatenate(rows)[np.concatenate(rows) >= 0],
                    np.tile(np.arange(len(new)), len(rows))[np.concatenate(rows) >= 0],
                ),
            ),
            shape=(h.getNumRow(), len(new)),
        ).tocsc()
        mat.sort_indices()
        h.addCols(
            len(new),
            terms.cost[new].astype(float),
            np.zeros(len(new)),
            np.ones(len(new)),
            mat.nnz,
            mat.indptr[:-1].astype(np.int32),
            mat.indices.astype(np.int32),
            mat.data.astype(float),
        )
        cols = np.r_[cols, new]
    return h, cols, status


def contiguity_cut_loop(
    inst: AlignmentInstance, h: object, contiguity: Contiguity, rounds: int, deadline: Deadline
) -> tuple[np.ndarray, np.ndarray, float]:
    """Strengthen the LP in ``h`` by separator cuts until its rounding is connected; ``(x, reduced, bound)``.

    Each round rounds the LP (each account to its largest share), cuts every territory of the rounding
    that is in pieces (:meth:`~salesops_models.territory.contiguity.Contiguity.add_cuts`), adds the cuts
    as rows and re-solves from the last basis. Stops when the rounding is connected, when no cut is new
    or after ``rounds`` rounds. Every cut holds for every connected plan, so the LP stays a relaxation
    and its objective a valid bound.
    """
    import highspy

    P = len(inst.pair_a)
    added = 0
    for i in range(rounds):
        x = np.asarray(h.getSolution().col_value, float)[:P]  # type: ignore[attr-defined]
        rounded = largest_share(inst, x)
        broken = contiguity.broken(rounded)
        if not broken or deadline.expired("LP contiguity cuts"):
            break
        if contiguity.add_cuts(inst, rounded, broken, per_piece=2) == 0:
            break
        rows = [cut_row(inst, cut) for cut in contiguity.cuts[added:]]
        added = len(contiguity.cuts)
        starts = np.cumsum([0] + [len(c) for c, _ in rows[:-1]]).astype(np.int32)
        h.addRows(  # type: ignore[attr-defined]
            len(rows),
            np.full(len(rows), -np.inf),
            np.ones(len(rows)),
            int(sum(len(c) for c, _ in rows)),
            starts,
            np.concatenate([c for c, _ in rows]).astype(np.int32),
            np.concatenate([v for _, v in rows]),
        )
        h.run()  # type: ignore[attr-defined]
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # type: ignore[attr-defined]
            if stopped_by_clock(h):
                deadline.record("LP contiguity cuts")
            break
        log.info(
            "LP contiguity round %d: %d territories in pieces, %d cuts, bound %.6g",
            i + 1,
            len(broken),
            added,
            h.getInfo().objective_function_value,  # type: ignore[attr-defined]
        )
    sol = h.getSolution()  # type: ignore[attr-defined]
    x = np.asarray(sol.col_value, float)[:P]
    reduced = np.maximum(np.asarray(sol.col_dual, float)[:P], 0.0)
    return x, reduced, float(h.getInfo().objective_function_value)  # type: ignore[attr-defined]


def lp_round(
    inst: AlignmentInstance,
    objective: Objective,
    solver: SolverOptions,
    *,
    limits: SearchLimits | None = None,
    contiguity: Contiguity | None = None,
    deadline: Deadline | None = None,
    whole_lp: bool = False,
    restore: bool = True,
) -> LPRounding:
    """Solve the LP relaxation of the strict alignment model and round it on reduced costs.

    Parameters
    ----------
    inst
        The prepared instance (candidates, bands, owners, locks).
    objective
        The objective and the side constraints of the MILP.
    solver
        ``mip_gap``: the gap aimed at (the largest reduced-cost threshold tried is ``mip_gap * z_LP``);
        ``node_limit``: the work limit of the restricted MILPs; threads.
    limits
        Work limits of rebalancing and the neighbourhood searches.
    contiguity
        Connected territories: the first plan is made connected, and every MILP of the searches keeps
        it so (cut loop). The LP bound stays valid (contiguity only removes plans).
    deadline
        Wall-clock safety net of the whole path (steps it stops are recorded on it).
    whole_lp
        Solve the LP over every pair whatever its size (no column generation, no Lagrangian path): the
        block instance of :mod:`~salesops_models.territory.aggregate` needs its duals.
    restore
        Give moved accounts back to their owners when the rounding breaks the budget
        (:func:`~salesops_models.territory.heuristics.restore_budget`); off, RINS repairs the budget.
    """
    import highspy

    limits = limits or SearchLimits()
    deadline = deadline or Deadline(solver.time_limit)
    phase = PhaseTimer()
    tick, phases = phase.start, phase.seconds
    terms = PairTerms.of(inst, objective)
    cost, moves, value = terms.cost, terms.moves, terms.value
    disruption_budget, max_moves = objective.disruption_budget, objective.max_moves

    lag = None
    if contiguity is None and not whole_lp and len(inst.pair_a) >= LAGRANGIAN_PAIRS:
        # whole companies: the LP is too big to solve whole, and column generation from the cheapest
        # pairs too (100,000 x 300: neither in 8 minutes); the Lagrangian multipliers say which pairs
        # matter, so the LP starts from those and its duals give a bound over every pair
        lag = lagrangian_bound(inst, terms, objective, iterations=limits.lagrangian_steps, deadline=deadline)
        phase("lagrangian bound")
        log.info("Lagrangian bound %.6g after %d steps", lag.bound, lag.iterations)
    cols = None  # the pair of each LP column (column generation), None: column p is pair p
    h = None
    if (
        contiguity is None
        and not whole_lp
        and (lag is not None or len(inst.pair_a) >= COLUMN_GENERATION_PAIRS)
    ):
        core = None if lag is None else lagrangian_core(inst, lag)
        h, cols, cg_status = lp_by_column_generation(
            inst,
            terms,
            objective,
            solver,
            deadline,
            core=core,
            rounds=PRICING_ROUNDS if lag is None else LAGRANGIAN_PRICING_ROUNDS,
        )
        phase("lp column generation")
        solved = h.getModelStatus() == highspy.HighsModelStatus.kOptimal  # type: ignore[attr-defined]
        # with a Lagrangian bound, a core LP that is not proven whole still gives the plan (its duals
        # the bound below); without one, only an LP equal to the whole LP is used
        if not (cg_status == "optimal" or (lag is not None and solved)):
            log.info("LP column generation: %s; solving the whole LP", cg_status)
            h, cols = None, None
    build_seconds = 0.0
    if h is None:
        lp = _model(inst, cost, moves, value, disruption_budget, max_moves)
        h = highs_solver(solver, deadline, mip=False)
        h.passModel(lp)
        del lp
        build_seconds = time.perf_counter() - phase.lap
        phase("lp build")
        h.run()
        phase("lp solve")
    status = h.getModelStatus()
    n_acc = len(inst.account_ids)
    if status != highspy.HighsModelStatus.kOptimal:
        # x is bounded, so "unbounded or infeasible" from presolve means infeasible
        infeasible = status in (
            highspy.HighsModelStatus.kInfeasible,
            highspy.HighsModelStatus.kUnboundedOrInfeasible,
        )
        if stopped_by_clock(h):
            deadline.record("LP relaxation")
        name = "infeasible" if infeasible else str(status).split(".")[-1]
        log.info("LP relaxation: %s after %.1fs", name, time.perf_counter() - tick)
        return LPRounding(
            name, math.nan, None, math.nan, 0, time.perf_counter() - tick, build_seconds, phases
        )
    sol = h.getSolution()
    if cols is None:
        x = np.asarray(sol.col_value, float)
        reduced = np.maximum(np.asarray(sol.col_dual, float), 0.0)
    else:
        x = pair_values(h, len(inst.pair_a), cols)
        reduced = np.maximum(reduced_costs(inst, terms, np.asarray(sol.row_dual, float), objective), 0.0)
    bound = float(h.getInfo().objective_function_value)
    lp_status = "optimal"
    row_dual = np.asarray(sol.row_dual, float) if cols is None and contiguity is None else None
    if lag is not None and cols is not None:
        # the core LP's objective bounds only plans on its columns: the bound is the Lagrangian value
        # at its duals (over every pair), or the subgradient's, whichever is higher
        at_duals = dual_bound(inst, terms, objective, np.asarray(sol.row_dual, float))
        log.info("Lagrangian bound at the core LP's duals %.6g (core LP %.6g)", at_duals, bound)
        bound, lp_status = max(lag.bound, at_duals), "lagrangian"
        lag = replace(lag, multipliers=multipliers_of_duals(inst, terms, np.asarray(sol.row_dual, float)))
    if contiguity is not None:
        x, reduced, bound = contiguity_cut_loop(inst, h, contiguity, limits.contiguity_rounds, deadline)
        phase("lp contiguity cuts")
    split = np.bincount(inst.pair_a[(x > 1e-6) & (x < 1 - 1e-6)], minlength=n_acc) > 0
    log.info(
        "LP relaxation: bound %.6g, %d split accounts, %.1fs",
        bound,
        int(split.sum()),
        time.perf_counter() - tick,
    )
    n_split = int(split.sum())

    def result(assign: np.ndarray | None) -> LPRounding:
        obj = math.nan if assign is None else float(cost[plan_pairs(inst, assign)].sum())
        return LPRounding(
            lp_status,
            bound,
            assign,
            obj,
            n_split,
            time.perf_counter() - tick,
            build_seconds,
            phases,
            row_dual,
            None if row_dual is None else x,
        )

    # 2. a plan: the LP re-solved with narrower bands and rounded, then rebalanced (greedy)
    sub_solver = replace(solver, mip_gap=1e-6, node_limit=limits.neighbourhood_nodes)
    plan = _round_narrow_bands(
        inst, h, max_moves, value, moves, limits, deadline, cols, terms if restore else None
    )
    del h  # the LP is not needed any more: free its memory before the searches
    phase("rounding")
    if contiguity is not None:
        # connected first (bands break), then boundary moves and swaps rebalance the plan and lower its cost
        plan = connected_plan(inst, contiguity, plan, objective, limits, deadline)
        phase("connect")
    # 3. relaxation-induced neighbourhoods: re-solve the accounts where the plan and the LP disagree (not
    # with contiguity: the LP's rounding is then in pieces almost everywhere, the neighbourhood would be
    # the whole plan, and its MILP carries thousands of cuts)
    if contiguity is None:
        plan = relaxation_induced_search(
            inst, plan, x, reduced, terms, sub_solver, rounds=limits.rins_rounds, deadline=deadline
        )
        phase("rins")
    if not meets_constraints(inst, plan, value, moves, disruption_budget, max_moves) or (
        contiguity is not None and contiguity.broken(plan)
    ):
        log.info("LP rounding: no plan inside every band and the budget")
        return result(None)
    best = result(plan)
    log.info("LP rounding: plan %.6g, gap to the LP bound %.3g%%", best.objective, 100 * best.gap)
    if lp_status == "lagrangian" and best.gap > solver.mip_gap:
        # subgradient steps from the core LP's duals, aimed at the plan's objective (a true upper bound)
        more = lagrangian_bound(
            inst,
            terms,
            objective,
            best.objective,
            iterations=limits.lagrangian_steps,
            start=lag,
            deadline=deadline,
        )
        phase("lagrangian bound from the lp duals")
        log.info("Lagrangian bound from the core LP's duals: %.6g -> %.6g", bound, max(bound, more.bound))
        bound = max(bound, more.bound)
        best = result(plan)
    if best.gap <= solver.mip_gap:
        return best
    # 4. large-neighbourhood search: re-solve a few neighbouring territories at a time exactly (not with
    # contiguity: the group MILPs' plans fall apart, and their cut loops found nothing in 10 minutes at
    # 2,000 x 40; the boundary moves of polish improve those plans instead)
    if contiguity is None:
        plan = neighbourhood_search(
            inst,
            plan,
            terms,
            sub_solver,
            rounds=limits.neighbourhood_rounds,
            group_size=limits.neighbourhood_size,
            deadline=deadline,
        )
        phase("neighbourhood search")
    best = result(plan)
    log.info("LP rounding: after neighbourhood search %.6g, gap %.3g%%", best.objective, 100 * best.gap)
    return best
