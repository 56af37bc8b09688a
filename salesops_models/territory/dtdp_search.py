"""Variable neighbourhood search for min-max-diameter territories with balanced activities (DTDP).

State: a territory label per unit, the activity loads of each territory and each territory's
diameter (largest distance between two of its units) with the two units that realise it. The search
minimises the merit

.. math::

    \\frac{D_{\\max}}{D_G} + \\lambda \\sum_{t, a} \\frac{\\max(0, \\ell_a - L_{ta}, L_{ta} - u_a)}{T_a}
    + \\varepsilon \\frac{\\sum_t D_t}{p\\, D_G}

(:math:`D_t` diameters, :math:`D_G` the largest distance in the graph, :math:`L_{ta}` loads, band
:math:`[\\ell_a, u_a]` around the target :math:`T_a`): the largest diameter first, a penalty for
activity outside its band so that a shaken plan can be repaired (Aly, Gabor & Sleptchenko 2024 use the
same merit), and the sum of diameters as a tie-breaker that lets the other territories keep improving.

- **Local search**: best improvement over moving one unit to another territory and swapping two
  units of different territories (one of them in a territory whose diameter is within 2% of the
  largest), until no move lowers the merit. A diameter is updated in :math:`O(m)` when a unit joins
  (its largest distance to the members) and from a cache when it leaves (each territory keeps its
  diameter without each of its two extreme units).
- **Shake** of size k: the k units of a territory nearest to one of its extreme units move to the
  territory nearest to that unit.
- **VNS**: shake, local search, accept when the plan meets every band and has a smaller
  (largest diameter, sum of diameters); otherwise grow k up to ``k_max`` and start again at 1.

All loops are written so that numba compiles them (``SALESOPS_NUMBA=0`` or no numba: the same code
runs as plain Python, slowly but with the same results). Stopping is by iteration counts only; the
random stream is a seeded ``numpy`` generator whose draws are made outside the compiled loops.
"""

from __future__ import annotations

import math
import time

import numpy as np

from salesops_models.jit import AVAILABLE, njit

__all__ = ["AVAILABLE", "variable_neighbourhood_search"]

#: Weight of the sum of diameters in the merit (a tie-breaker, far below one unit of D_max / D_G).
TIE_WEIGHT = 1e-3
#: Territories whose diameter is within this share of the largest take part in swaps.
CRITICAL_SHARE = 0.02


@njit(cache=True)
def _diameter(dist, mem, cnt, t, skip):  # type: ignore[no-untyped-def]
    """Diameter of territory t without unit ``skip`` (-1: none) and the two units realising it."""
    best = 0.0
    a = -1
    b = -1
    m = cnt[t]
    for x in range(m):
        u = mem[t, x]
        if u == skip:
            continue
        for y in range(x + 1, m):
            v = mem[t, y]
            if v == skip:
                continue
            if dist[u, v] > best:
                best = dist[u, v]
                a = u
                b = v
    return best, a, b


@njit(cache=True)
def _refresh(dist, mem, cnt, t, diam, ends, without):  # type: ignore[no-untyped-def]
    """Recompute the diameter of t, its extreme units and the diameters without each of them."""
    d, a, b = _diameter(dist, mem, cnt, t, -1)
    diam[t] = d
    ends[t, 0] = a
    ends[t, 1] = b
    without[t, 0] = _diameter(dist, mem, cnt, t, a)[0] if a >= 0 else 0.0
    without[t, 1] = _diameter(dist, mem, cnt, t, b)[0] if b >= 0 else 0.0


@njit(cache=True)
def _diam_without(diam, ends, without, t, u):  # type: ignore[no-untyped-def]
    if u == ends[t, 0]:
        return without[t, 0]
    if u == ends[t, 1]:
        return without[t, 1]
    return diam[t]


@njit(cache=True)
def _reach(dist, mem, cnt, t, u, skip):  # type: ignore[no-untyped-def]
    """Largest distance from u to the members of t other than ``skip``."""
    best = 0.0
    for x in range(cnt[t]):
        v = mem[t, x]
        if v != skip and dist[u, v] > best:
            best = dist[u, v]
    return best


@njit(cache=True)
def _violation(load_t, lo, hi, target):  # type: ignore[no-untyped-def]
    s = 0.0
    for a in range(load_t.shape[0]):
        if load_t[a] < lo[a]:
            s += (lo[a] - load_t[a]) / target[a]
        elif load_t[a] > hi[a]:
            s += (load_t[a] - hi[a]) / target[a]
    return s


@njit(cache=True)
def _max_except(diam, s, t):  # type: ignore[no-untyped-def]
    best = 0.0
    for x in range(diam.shape[0]):
        if x != s and x != t and diam[x] > best:
            best = diam[x]
    return best


@njit(cache=True)
def _move(mem, cnt, pos, lab, u, t):  # type: ignore[no-untyped-def]
    """Move unit u to territory t in the member lists (order: swap-with-last removal)."""
    s = lab[u]
    i = pos[u]
    last = mem[s, cnt[s] - 1]
    mem[s, i] = last
    pos[last] = i
    cnt[s] -= 1
    mem[t, cnt[t]] = u
    pos[u] = cnt[t]
    cnt[t] += 1
    lab[u] = t


@njit(cache=True)
def merit_of(diam, load, lo, hi, target, lam, scale):  # type: ignore[no-untyped-def]
    p = diam.shape[0]
    viol = 0.0
    for t in range(p):
        viol += _violation(load[t], lo, hi, target)
    return diam.max() / scale + lam * viol + TIE_WEIGHT * diam.sum() / (p * scale), viol


@njit(cache=True)
def _pair_merit(largest, viol, dsum, old_s, old_t, new_s, new_t, lam, scale, p):  # type: ignore[no-untyped-def]
    """Merit after territories s and t change diameter from (old_s, old_t) to (new_s, new_t)."""
    return largest / scale + lam * viol + TIE_WEIGHT * (dsum - old_s - old_t + new_s + new_t) / (p * scale)


@njit(cache=True)
def local_search(dist, act, lab, mem, cnt, pos, load, diam, ends, without, lo, hi, target, lam, scale, max_moves):  # type: ignore[no-untyped-def]
    """Best-improvement local search (moves and swaps) on the merit; returns the number of moves made."""
    n = dist.shape[0]
    p = diam.shape[0]
    na = act.shape[1]
    new_s = np.empty(na)
    new_t = np.empty(na)
    made = 0
    while made < max_moves:
        cur, _ = merit_of(diam, load, lo, hi, target, lam, scale)
        viol_now = np.empty(p)
        for t in range(p):
            viol_now[t] = _violation(load[t], lo, hi, target)
        tot_viol = viol_now.sum()
        dsum = diam.sum()
        dmax = diam.max()
        best_delta = -1e-12
        bu = -1
        bv = -1
        bt = -1
        # moves of one unit
        for u in range(n):
            s = lab[u]
            if cnt[s] <= 1:
                continue
            ds = _diam_without(diam, ends, without, s, u)
            for a in range(na):
                new_s[a] = load[s, a] - act[u, a]
            vs = _violation(new_s, lo, hi, target)
            for t in range(p):
                if t == s:
                    continue
                for a in range(na):
                    new_t[a] = load[t, a] + act[u, a]
                vt = _violation(new_t, lo, hi, target)
                viol = tot_viol - viol_now[s] - viol_now[t] + vs + vt
                # a cheap lower bound first: the diameter of t can only grow
                others = _max_except(diam, s, t)
                lb = max(others, ds, diam[t])
                lb_merit = _pair_merit(lb, viol, dsum, diam[s], diam[t], ds, diam[t], lam, scale, p)
                if lb_merit - cur >= best_delta:
                    continue
                dt = max(diam[t], _reach(dist, mem, cnt, t, u, -1))
                m_new = max(others, ds, dt)
                merit = _pair_merit(m_new, viol, dsum, diam[s], diam[t], ds, dt, lam, scale, p)
                if merit - cur < best_delta:
                    best_delta = merit - cur
                    bu = u
                    bt = t
                    bv = -1
        # swaps: u in a critical territory, v anywhere else
        for s in range(p):
            if diam[s] < (1.0 - CRITICAL_SHARE) * dmax:
                continue
            for x in range(cnt[s]):
                u = mem[s, x]
                ds_minus = _diam_without(diam, ends, without, s, u)
                for v in range(n):
                    t = lab[v]
                    if t == s:
                        continue
                    for a in range(na):
                        new_s[a] = load[s, a] - act[u, a] + act[v, a]
                        new_t[a] = load[t, a] - act[v, a] + act[u, a]
                    viol = tot_viol - viol_now[s] - viol_now[t] + _violation(new_s, lo, hi, target) + _violation(new_t, lo, hi, target)
                    others = _max_except(diam, s, t)
                    dt_minus = _diam_without(diam, ends, without, t, v)
                    lb = max(others, ds_minus, dt_minus)
                    lb_merit = _pair_merit(lb, viol, dsum, diam[s], diam[t], ds_minus, dt_minus, lam, scale, p)
                    if lb_merit - cur >= best_delta:
                        continue
                    ds_new = max(ds_minus, _reach(dist, mem, cnt, s, v, u))
                    lb_merit = _pair_merit(max(others, ds_new, dt_minus), viol, dsum, diam[s], diam[t], ds_new, dt_minus, lam, scale, p)
                    if lb_merit - cur >= best_delta:
                        continue
                    dt_new = max(dt_minus, _reach(dist, mem, cnt, t, u, v))
                    m_new = max(others, ds_new, dt_new)
                    merit = _pair_merit(m_new, viol, dsum, diam[s], diam[t], ds_new, dt_new, lam, scale, p)
                    if merit - cur < best_delta:
                        best_delta = merit - cur
                        bu = u
                        bv = v
                        bt = t
        if bu < 0:
            break
        s = lab[bu]
        if bv < 0:
            for a in range(na):
                load[s, a] -= act[bu, a]
                load[bt, a] += act[bu, a]
            _move(mem, cnt, pos, lab, bu, bt)
        else:
            for a in range(na):
                load[s, a] += act[bv, a] - act[bu, a]
                load[bt, a] += act[bu, a] - act[bv, a]
            _move(mem, cnt, pos, lab, bu, bt)
            _move(mem, cnt, pos, lab, bv, s)
        _refresh(dist, mem, cnt, s, diam, ends, without)
        _refresh(dist, mem, cnt, bt, diam, ends, without)
        made += 1
    return made


@njit(cache=True)
def shake(dist, act, lab, mem, cnt, pos, load, diam, ends, without, t_from, end_pick, k, t_rank):  # type: ignore[no-untyped-def]
    """Move the k units of ``t_from`` nearest to one of its extreme units to a nearby territory.

    ``end_pick`` (0/1) chooses the extreme unit; ``t_rank`` (0 = nearest) chooses the receiving
    territory by the distance from that unit to its nearest member.
    """
    p = diam.shape[0]
    u = ends[t_from, end_pick]
    if u < 0 or cnt[t_from] <= k:
        return
    near = np.empty(p)
    for t in range(p):
        near[t] = np.inf
        if t == t_from:
            continue
        for x in range(cnt[t]):
            d = dist[u, mem[t, x]]
            if d < near[t]:
                near[t] = d
    order = np.argsort(near)
    dest = order[min(t_rank, p - 2)]
    members = mem[t_from, : cnt[t_from]].copy()
    dd = np.empty(members.shape[0])
    for x in range(members.shape[0]):
        dd[x] = dist[u, members[x]]
    ranked = members[np.argsort(dd)]
    for x in range(k):
        w = ranked[x]
        for a in range(act.shape[1]):
            load[t_from, a] -= act[w, a]
            load[dest, a] += act[w, a]
        _move(mem, cnt, pos, lab, w, dest)
    _refresh(dist, mem, cnt, t_from, diam, ends, without)
    _refresh(dist, mem, cnt, dest, diam, ends, without)


class SearchState:
    """Arrays of one plan for the compiled kernels (members, positions, loads, diameters, caches)."""

    def __init__(self, dist: np.ndarray, act: np.ndarray, lab: np.ndarray, p: int):
        n = len(lab)
        self.lab = lab.astype(np.int64).copy()
        self.mem = np.full((p, n), -1, dtype=np.int64)
        self.cnt = np.zeros(p, dtype=np.int64)
        self.pos = np.zeros(n, dtype=np.int64)
        for u in range(n):
            t = self.lab[u]
            self.mem[t, self.cnt[t]] = u
            self.pos[u] = self.cnt[t]
            self.cnt[t] += 1
        self.load = np.zeros((p, act.shape[1]))
        np.add.at(self.load, self.lab, act)
        self.diam = np.zeros(p)
        self.ends = np.full((p, 2), -1, dtype=np.int64)
        self.without = np.zeros((p, 2))
        for t in range(p):
            _refresh(dist, self.mem, self.cnt, t, self.diam, self.ends, self.without)

    def copy(self) -> SearchState:
        other = object.__new__(SearchState)
        for name in ("lab", "mem", "cnt", "pos", "load", "diam", "ends", "without"):
            setattr(other, name, getattr(self, name).copy())
        return other

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.lab, self.mem, self.cnt, self.pos, self.load, self.diam, self.ends, self.without


def variable_neighbourhood_search(
    dist: np.ndarray,
    act: np.ndarray,
    start: np.ndarray,
    p: int,
    tau: float,
    rng: np.random.Generator,
    *,
    iterations: int = 2000,
    k_max: int = 8,
    lam: float = 5.0,
    max_moves: int = 2000,
    deadline: float = math.inf,
) -> tuple[np.ndarray, int, int]:
    """Improve a plan that meets every band.

    Returns the best plan met, the number of accepted shakes and the number of shakes done (fewer
    than ``iterations`` only when the wall-clock safety net ``deadline`` [``time.perf_counter``] fired).

    Parameters
    ----------
    dist
        All-pairs distances.
    act
        Activities per unit, shape (n, a).
    start
        A plan meeting every band.
    p, tau
        Territories and band half-width [-].
    rng
        Source of the shake choices (drawn here, outside the compiled code).
    iterations
        Shakes (the work limit).
    k_max
        Largest shake size.
    lam
        Penalty weight of band violation in the merit.
    max_moves
        Cap on moves of one local search.
    """
    act = np.ascontiguousarray(act, dtype=float)
    target = act.sum(axis=0) / p
    lo, hi = (1 - tau) * target, (1 + tau) * target
    scale = float(dist.max())
    cur = SearchState(dist, act, start, p)
    local_search(dist, act, *cur.arrays(), lo, hi, target, lam, scale, max_moves)
    if merit_of(cur.diam, cur.load, lo, hi, target, lam, scale)[1] > 1e-12:
        cur = SearchState(dist, act, start, p)  # the search left the bands: keep the start
    best = cur.copy()
    accepted = 0
    done = 0
    k = 1
    for _ in range(iterations):
        if time.perf_counter() >= deadline:
            break
        done += 1
        cand = cur.copy()
        critical = np.flatnonzero(cand.diam >= (1 - CRITICAL_SHARE) * cand.diam.max())
        t_from = int(critical[rng.integers(len(critical))]) if rng.random() < 0.7 else int(rng.integers(p))
        shake(dist, act, *cand.arrays(), t_from, int(rng.integers(2)), k, int(rng.integers(3)))
        local_search(dist, act, *cand.arrays(), lo, hi, target, lam, scale, max_moves)
        viol = merit_of(cand.diam, cand.load, lo, hi, target, lam, scale)[1]
        c_max, b_max = cand.diam.max(), cur.diam.max()
        better = c_max < b_max - 1e-12 or (c_max <= b_max + 1e-12 and cand.diam.sum() < cur.diam.sum() - 1e-9)
        if viol <= 1e-12 and better:
            cur = cand
            accepted += 1
            k = 1
            if (cur.diam.max(), cur.diam.sum()) < (best.diam.max(), best.diam.sum()):
                best = cur.copy()
        else:
            k = k + 1 if k < k_max else 1
    return best.lab, accepted, done
