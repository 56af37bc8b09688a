"""Optional numba kernels of the open-pipeline hot loop (same arithmetic, same numbers as numpy).

The random numbers are still drawn by numpy in bulk, in the same order as the pure-numpy path;
the kernels only fuse the per-token arithmetic that follows (atom lookup, clock, outcome
classification, booking), so results are bit for bit the same with or without numba. Set
``SALESOPS_NUMBA=0`` to force the numpy path.
"""

from __future__ import annotations

import os

import numpy as np

try:  # pragma: no cover - exercised when numba is installed
    if os.environ.get("SALESOPS_NUMBA", "1") == "0":
        raise ImportError("disabled by SALESOPS_NUMBA=0")
    from numba import njit

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False

if AVAILABLE:

    @njit(nogil=True, cache=True)
    def first_step(u, lo, span, age, guide, scale, passes, cum, nxt, days, state, clock):  # type: ignore[no-untyped-def]
        """First stage exit of every open deal in every trial: ``state``/``clock`` (n, D)."""
        n, d_count = u.shape
        for t in range(n):
            for d in range(d_count):
                v = u[t, d] * span[d] + lo[d]
                idx = guide[np.int32(v * scale)]
                for _ in range(passes):
                    if cum[idx] < v:
                        idx += 1
                state[t, d] = nxt[idx]
                c = days[idx] - age[d]
                clock[t, d] = c if c > 1 else 1

    @njit(nogil=True, cache=True)
    def active_tokens(state, clock, n_open, horizon):  # type: ignore[no-untyped-def]
        """Flat indices of tokens still in an open stage and inside the horizon (row-major order)."""
        flat_s = state.ravel()
        flat_c = clock.ravel()
        count = 0
        for i in range(flat_s.size):
            if flat_s[i] < n_open and flat_c[i] <= horizon:
                count += 1
        out = np.empty(count, np.int64)
        k = 0
        for i in range(flat_s.size):
            if flat_s[i] < n_open and flat_c[i] <= horizon:
                out[k] = i
                k += 1
        return out

    @njit(nogil=True, cache=True)
    def outcomes(state, clock, won_state, lost_state, horizon, amount):  # type: ignore[no-untyped-def]
        """Won (trial, deal) pairs inside the horizon, in row-major order, and counts.

        Returns ``t_won, d_won, won_per_trial, lost_per_trial, won_per_deal, lost_per_deal,
        n_unknown`` (won pairs whose deal has no amount).
        """
        n, d_count = state.shape
        won_t = np.zeros(n, np.int64)
        lost_t = np.zeros(n, np.int64)
        won_d = np.zeros(d_count, np.int64)
        lost_d = np.zeros(d_count, np.int64)
        total = 0
        for t in range(n):
            for d in range(d_count):
                if clock[t, d] <= horizon:
                    s = state[t, d]
                    if s == won_state:
                        won_t[t] += 1
                        won_d[d] += 1
                        total += 1
                    elif s == lost_state:
                        lost_t[t] += 1
                        lost_d[d] += 1
        t_won = np.empty(total, np.int64)
        d_won = np.empty(total, np.int64)
        k = 0
        n_unknown = 0
        for t in range(n):
            for d in range(d_count):
                if clock[t, d] <= horizon and state[t, d] == won_state:
                    t_won[k] = t
                    d_won[k] = d
                    if np.isnan(amount[d]):
                        n_unknown += 1
                    k += 1
        return t_won, d_won, won_t, lost_t, won_d, lost_d, n_unknown

else:  # pragma: no cover
    first_step = active_tokens = outcomes = None

if AVAILABLE:

    @njit(nogil=True, cache=True)
    def advance_step(active, u, state, clock, gap, guide, scale, passes, cum, nxt, days, n_open, horizon):  # type: ignore[no-untyped-def]
        """One fresh stage visit of the ``active`` tokens (flat views); returns those still open."""
        keep = np.empty(active.size, np.int64)
        k = 0
        for i in range(active.size):
            j = active[i]
            v = u[i] + gap * state[j]
            idx = guide[np.int32(v * scale)]
            for _ in range(passes):
                if cum[idx] < v:
                    idx += 1
            s = nxt[idx]
            c = clock[j] + days[idx]
            state[j] = s
            clock[j] = c
            if s < n_open and c <= horizon:
                keep[k] = j
                k += 1
        return keep[:k]

else:  # pragma: no cover
    advance_step = None
