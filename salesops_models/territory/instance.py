"""The alignment instance: the arrays every alignment method works on, built once from the tables.

:func:`prepare_instance` checks the accounts and reps tables (ids, metric columns, coordinates or a
distance table, capacities, locks) and turns them into an :class:`AlignmentInstance`: metric values,
capacity-weighted targets and bands, today's owners, locks, distances and the candidate
(account, rep) pairs. The heuristics (:mod:`~salesops_models.territory.heuristics`), the exact model
(:mod:`~salesops_models.territory.milp`) and the large-scale path
(:mod:`~salesops_models.territory.lp_round`) all read it and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError, SalesopsError, format_rows
from salesops_models.territory.geo import candidate_mask, distance_matrix_km

ACCOUNT_COUNT = "account_count"
#: Distances from the accounts' and the reps' coordinates (haversine).
TRAVEL_HAVERSINE = "haversine"
#: Distances from a given table.
TRAVEL_TABLE = "distance table"
#: No locations: no travel term, no compactness.
TRAVEL_NONE = "none"


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
class AlignmentInstance:
    """The arrays of one alignment problem (indices: accounts ``a``, reps ``r``, metrics ``k``, pairs ``p``).

    Attributes
    ----------
    account_ids, rep_ids
        Ids in table order; every other array refers to accounts and reps by position.
    capacity
        Rep capacity [0-1] (1 = full-time).
    owner
        Today's owner per account (rep position), -1 when the owner is not a rep of the table.
    lock
        Locked rep per account (rep position), -1 when free.
    metric_names, metric_values, tolerance, target
        Balanced metrics: values ``K x A`` [metric unit], band half-width ``K`` [-], capacity-weighted
        target ``K x R`` [metric unit].
    weight
        Travel weight per account (e.g. workload hours).
    value
        Value of an account that changes owner (disruption).
    distance
        Distance ``A x R`` [km] from each account to each rep's home base (zeros without locations).
    pair_a, pair_r
        Candidate (account, rep) pairs, sorted by account.
    owner_pair
        Pair index of (account, owner), -1 when the owner is not a candidate (locked elsewhere) or absent.
    travel_basis
        Where distances come from: :data:`TRAVEL_HAVERSINE`, :data:`TRAVEL_TABLE` or :data:`TRAVEL_NONE`
        (no locations: every distance 0, every rep a candidate).
    lat, lon
        Account coordinates [deg], ``None`` when the accounts table has none.
    """

    account_ids: np.ndarray
    rep_ids: np.ndarray
    capacity: np.ndarray
    owner: np.ndarray
    lock: np.ndarray
    metric_names: list[str]
    metric_values: np.ndarray
    tolerance: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    value: np.ndarray
    distance: np.ndarray
    pair_a: np.ndarray
    pair_r: np.ndarray
    owner_pair: np.ndarray
    travel_basis: str = "haversine"
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None

    @cached_property
    def pair_key(self) -> np.ndarray:
        """``a * R + r`` of every pair: ascending, since pairs are sorted by account, then rep."""
        return self.pair_a.astype(np.int64) * self.n_reps + self.pair_r

    @property
    def has_travel(self) -> bool:
        return self.travel_basis != TRAVEL_NONE

    @property
    def n_accounts(self) -> int:
        return len(self.account_ids)

    @property
    def n_reps(self) -> int:
        return len(self.rep_ids)

    @cached_property
    def pair_travel(self) -> np.ndarray:
        """Travel of each candidate pair, weight x distance [km x weight unit]."""
        return self.weight[self.pair_a] * self.distance[self.pair_a, self.pair_r]

    @cached_property
    def nearest_pair(self) -> np.ndarray:
        """Per account, its candidate pair of least travel (ties: the first rep)."""
        order = np.lexsort((self.pair_travel, self.pair_a))
        first = np.unique(self.pair_a[order], return_index=True)[1]
        return order[first]

    @property
    def nearest_travel(self) -> float:
        """:math:`T_0`: the travel of every account at its nearest candidate, a lower bound of any plan's."""
        return float(self.pair_travel[self.nearest_pair].sum())

    @property
    def lower(self) -> np.ndarray:
        return (1 - self.tolerance)[:, None] * self.target

    @property
    def upper(self) -> np.ndarray:
        return (1 + self.tolerance)[:, None] * self.target

    @property
    def owned_value(self) -> float:
        return float(self.value[self.owner >= 0].sum())


def require_columns(df: pd.DataFrame, table: str, columns: Iterable[str], why: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            table, [f"missing column(s) {missing} needed for {why}; the table has {list(df.columns)}."]
        )


def numeric_column(df: pd.DataFrame, table: str, column: str, key: str) -> np.ndarray:
    if column == ACCOUNT_COUNT:
        return np.ones(len(df))
    require_columns(df, table, [column], f"'{key}'")
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


def coordinates(
    df: pd.DataFrame, table: str, columns: tuple[str, str], key: str, required: bool = True
) -> tuple[np.ndarray, np.ndarray] | None:
    """Latitude and longitude [deg] of every row, or ``None`` when the table has no coordinates at all.

    A table without the columns, or with every value empty, has no coordinates (a CRM export often
    has none). Some rows empty and others not is a data error (``required``), or ``None`` otherwise.
    """
    if not set(columns) <= set(df.columns):
        return None
    values = [pd.to_numeric(df[c], errors="coerce").to_numpy(float) for c in columns]
    na = np.isnan(values[0]) | np.isnan(values[1])
    if na.all():
        return None
    if na.any():
        if not required:
            return None
        raise DataValidationError(
            table,
            [
                f"columns {list(columns)}: empty coordinates for {format_rows(list(df.loc[na, key]))} while "
                f"{int((~na).sum())} rows have them; geocode them, drop them, or drop the columns to align "
                "without travel."
            ],
        )
    return values[0], values[1]


def prepare_instance(
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    balance: Sequence[BalanceMetric],
    distance: pd.DataFrame | None,
    travel_weight_column: str | None,
    disruption_column: str | None,
    locks: Mapping[str, str] | None,
    candidate_k: int | None,
) -> AlignmentInstance:
    require_columns(accounts, "accounts", ["account_id"], "the alignment")
    require_columns(reps, "reps", ["rep_id"], "the alignment")
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
        travel_basis = TRAVEL_TABLE
        account_xy = coordinates(accounts, "accounts", ("lat", "lon"), "account_id", required=False)
    else:
        account_xy = coordinates(accounts, "accounts", ("lat", "lon"), "account_id")
        home_xy = coordinates(reps, "reps", ("home_lat", "home_lon"), "rep_id")
        if account_xy is not None and home_xy is not None:
            dmat = distance_matrix_km(account_xy[0], account_xy[1], home_xy[0], home_xy[1])
            travel_basis = TRAVEL_HAVERSINE
        else:
            # a CRM export without locations: balance and disruption only, every rep a candidate
            dmat = np.zeros((n_acc, n_rep))
            travel_basis = TRAVEL_NONE
            candidate_k = None
    if not np.isfinite(dmat).all() or (dmat < 0).any():
        raise DataValidationError("distance", ["distances must be finite and >= 0."])

    names = [b.column for b in balance]
    if len(set(names)) != len(names):
        raise SalesopsError(f"balance metrics {names}: each column may be balanced once.")
    metric_values = (
        np.vstack([numeric_column(accounts, "accounts", b.column, "balance") for b in balance])
        if balance
        else np.zeros((0, n_acc))
    )
    tolerance = np.array([b.tolerance for b in balance], dtype=float)
    share = capacity / capacity.sum()
    target = metric_values.sum(axis=1)[:, None] * share[None, :]
    weight = (
        numeric_column(accounts, "accounts", travel_weight_column, "travel_weight_column")
        if travel_weight_column
        else np.ones(n_acc)
    )
    value = (
        numeric_column(accounts, "accounts", disruption_column, "disruption_column")
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
    del mask, always
    # the pairs are in row-major order, so (account, owner) is found by bisection on a * R + r (a dense
    # A x R index table would take 1 GB at 250,000 x 500)
    owner_pair = find_pairs(pair_a.astype(np.int64) * n_rep + pair_r, n_rep, owner)
    return AlignmentInstance(
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
        travel_basis=travel_basis,
        lat=None if account_xy is None else account_xy[0],
        lon=None if account_xy is None else account_xy[1],
    )


def objective_scales(inst: AlignmentInstance, normalize: bool) -> tuple[float, float]:
    """Divisors of the travel and disruption terms: :math:`(T_0, V)`, or ``(1, 1)`` without ``normalize``."""
    if not normalize:
        return 1.0, 1.0
    t0, v = inst.nearest_travel, inst.owned_value
    return (t0 if t0 > 0 else 1.0), (v if v > 0 else 1.0)


@dataclass(frozen=True)
class Objective:
    """What an alignment minimises and the caps it keeps, in one place for every method.

    Parameters
    ----------
    travel_weight, disruption_weight
        Weights :math:`\\alpha, \\beta` of the travel and disruption terms [-].
    scales
        Divisors of the two terms, :math:`(T_0, V)` or ``(1, 1)`` (:func:`objective_scales`).
    disruption_budget
        Largest share of today's owned value that may change owner [0-1] (``None``: no budget).
    max_moves
        Largest number of accounts that may change owner (``None``: no cap).
    """

    travel_weight: float
    disruption_weight: float
    scales: tuple[float, float]
    disruption_budget: float | None = None
    max_moves: int | None = None

    def budget_value(self, inst: AlignmentInstance) -> float | None:
        """The budget in value units (``None`` without one)."""
        return None if self.disruption_budget is None else self.disruption_budget * inst.owned_value


def pair_costs(inst: AlignmentInstance, objective: Objective) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate pair: objective coefficient, 1 if it moves an owned account, the value it moves.

    The coefficient of pair :math:`(a, r)` is
    :math:`\\alpha\\, w_a d_{ar} / T_0 + \\beta\\, v_a [o_a \\ge 0,\\ r \\ne o_a] / V`: the objective of
    the alignment MILP is the sum of the coefficients of the pairs a plan uses.
    """
    pa, pr = inst.pair_a, inst.pair_r
    t_scale, d_scale = objective.scales
    moves = ((inst.owner[pa] >= 0) & (pr != inst.owner[pa])).astype(float)
    value = inst.value[pa] * moves
    cost = (
        objective.travel_weight * inst.pair_travel / t_scale + objective.disruption_weight * value / d_scale
    )
    return cost, moves, value


def territory_loads(inst: AlignmentInstance, assign: np.ndarray) -> np.ndarray:
    """Each territory's total of each balanced metric, ``K x R`` [metric unit], for rep index per account."""
    K, R = inst.target.shape
    load = np.zeros((K, R))
    for k in range(K):
        load[k] = np.bincount(assign, weights=inst.metric_values[k], minlength=R)
    return load


def plan_pairs(inst: AlignmentInstance, assign: np.ndarray) -> np.ndarray:
    """Indices of the candidate pairs a plan uses (one per account whose rep is a candidate), ascending.

    Found by bisection in :attr:`AlignmentInstance.pair_key`: ``O(A log P)``, not ``O(P)``, because the
    searches of the large path call it once per neighbourhood.
    """
    at = account_pairs(inst, assign)
    return at[at >= 0]


def account_pairs(inst: AlignmentInstance, assign: np.ndarray) -> np.ndarray:
    """Per account, the index of its pair with ``assign``'s rep; -1 when that rep is not a candidate."""
    return find_pairs(inst.pair_key, inst.n_reps, assign)


def find_pairs(pair_key: np.ndarray, n_reps: int, rep: np.ndarray) -> np.ndarray:
    """Per account ``a``, the index of the pair with key ``a * n_reps + rep[a]`` in the ascending
    ``pair_key``; -1 where ``rep[a] < 0`` or that pair is not a candidate."""
    rep = np.asarray(rep, dtype=np.int64)
    if len(pair_key) == 0:
        return np.full(len(rep), -1, dtype=np.int64)
    want = np.arange(len(rep), dtype=np.int64) * n_reps + np.maximum(rep, 0)
    at = np.minimum(np.searchsorted(pair_key, want), len(pair_key) - 1)
    return np.where((rep >= 0) & (pair_key[at] == want), at, -1)


def meets_constraints(
    inst: AlignmentInstance,
    assign: np.ndarray,
    value: np.ndarray,
    moves: np.ndarray,
    disruption_budget: float | None,
    max_moves: int | None,
) -> bool:
    """The plan meets every band, the disruption budget and the move cap (to a relative 1e-9).

    ``value`` and ``moves`` are the per-pair arrays of :func:`pair_costs`.
    """
    if (assign < 0).any():
        return False
    load = territory_loads(inst, assign)
    if (load > inst.upper * (1 + 1e-9) + 1e-9).any() or (load < inst.lower * (1 - 1e-9) - 1e-9).any():
        return False
    chosen = plan_pairs(inst, assign)
    if disruption_budget is not None and value[chosen].sum() > disruption_budget * inst.owned_value * (
        1 + 1e-9
    ):
        return False
    return max_moves is None or moves[chosen].sum() <= max_moves


def largest_share(inst: AlignmentInstance, x: np.ndarray) -> np.ndarray:
    """Rep index per account: the candidate with the largest value in the (fractional) solution ``x``."""
    order = np.lexsort((x, inst.pair_a))
    last = np.r_[np.flatnonzero(np.diff(inst.pair_a[order])), len(order) - 1]
    plan = np.full(inst.n_accounts, -1)
    plan[inst.pair_a[order][last]] = inst.pair_r[order][last]
    return plan
