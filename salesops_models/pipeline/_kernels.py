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

    @njit(nogil=True, cache=True, inline="always")
    def _choose(prob, row, s, w, sup_ptr, sup_dest, sup_succ, surv, d, use_surv, x_unit, mbuf):  # type: ignore[no-untyped-def]
        """Destination class and the uniform inside it (the arithmetic of ``choose_destination``),
        over the stage's support only: destinations off it have no mass and add exact zeros there."""
        k0 = sup_ptr[s]
        k1 = sup_ptr[s + 1]
        total = 0.0
        last = -1
        for k in range(k0, k1):
            j = sup_dest[k]
            t = w if sup_succ[k] else 1.0
            if use_surv:
                t = t * surv[d, j]
            m = prob[row, s, j] * t
            mbuf[k - k0] = m
            total += m
            if m > 0:
                last = k
        x = x_unit * total
        acc = 0.0
        prev = 0.0
        chosen = last
        for k in range(k0, k1):
            m = mbuf[k - k0]
            prev = acc
            acc += m
            if acc > x:
                chosen = k
                break
        if chosen == last and acc <= x:
            # x reached the total by rounding: the last destination with mass, as numpy does
            acc = 0.0
            for k in range(k0, last + 1):
                prev = acc
                acc += mbuf[k - k0]
        return sup_dest[chosen], (x - prev) / mbuf[chosen - k0]

    @njit(nogil=True, cache=True)
    def first_step(  # type: ignore[no-untyped-def]
        u,
        stage,
        rep,
        seg_lo,
        seg_surv,
        age,
        prob,
        stride,
        cohort_odds,
        rep_odds,
        sup_ptr,
        sup_dest,
        sup_succ,
        seg_id,
        gap,
        guide,
        scale,
        passes,
        cum,
        nxt,
        days,
        state,
        clock,
    ):
        """First stage exit of every open deal in every trial: ``state``/``clock`` (n, D)."""
        n, d_count = u.shape
        mbuf = np.empty(prob.shape[2])
        for t in range(n):
            row = t * stride
            w0 = cohort_odds[t, 0]
            for d in range(d_count):
                s = stage[d]
                w = w0 * rep_odds[t, rep[d]]
                j, u2 = _choose(
                    prob, row, s, w, sup_ptr, sup_dest, sup_succ, seg_surv, d, True, u[t, d], mbuf
                )
                v = gap * seg_id[s, j] + seg_lo[d, j] + u2 * seg_surv[d, j]
                idx = guide[np.int32(v * scale)]
                for _ in range(passes):  # branch-free: the guide bucket holds at most `passes` boundaries
                    idx += np.int32(cum[idx] < v)
                state[t, d] = nxt[idx]
                clock[t, d] = max(days[idx] - age[d], 1)

    @njit(nogil=True, cache=True)
    def active_tokens(state, clock, n_open, horizon):  # type: ignore[no-untyped-def]
        """Flat indices of tokens still in an open stage and inside the horizon (row-major order)."""
        flat_s = state.ravel()
        flat_c = clock.ravel()
        out = np.empty(flat_s.size + 1, np.int64)
        k = 0
        for i in range(flat_s.size):  # branch-free compaction: always write, advance when kept
            out[k] = i
            k += np.int64((flat_s[i] < n_open) & (flat_c[i] <= horizon))
        return out[:k].copy()

    @njit(nogil=True, cache=True)
    def outcomes(state, clock, won_state, lost_state, horizon, amount, pull_len):  # type: ignore[no-untyped-def]
        """Won (trial, deal) pairs inside the horizon, in row-major order, and counts.

        Returns ``t_won, d_won, won_per_trial, lost_per_trial, won_per_deal, lost_per_deal,
        n_unknown, n_pull`` (won pairs whose deal has no amount; whose close may be pulled).
        """
        n, d_count = state.shape
        won_t = np.zeros(n, np.int64)
        lost_t = np.zeros(n, np.int64)
        won_d = np.zeros(d_count, np.int64)
        lost_d = np.zeros(d_count, np.int64)
        t_won = np.empty(n * d_count + 1, np.int64)
        d_won = np.empty(n * d_count + 1, np.int64)
        unknown = np.empty(d_count, np.int64)
        for d in range(d_count):
            unknown[d] = np.int64(np.isnan(amount[d]))
        pulling = pull_len.size > 0
        last = pull_len.size - 1
        k = 0
        n_unknown = 0
        n_pull = 0
        for t in range(n):
            wt = 0
            lt = 0
            for d in range(d_count):  # branch-free: every test is an integer 0/1
                c = clock[t, d]
                s = state[t, d]
                inside = np.int64(c <= horizon)
                w = inside & np.int64(s == won_state)
                lo = inside & np.int64(s == lost_state)
                wt += w
                lt += lo
                won_d[d] += w
                lost_d[d] += lo
                t_won[k] = t
                d_won[k] = d
                n_unknown += w & unknown[d]
                if pulling:
                    n_pull += w & np.int64(pull_len[min(c, last)] > 0)
                k += w
            won_t[t] = wt
            lost_t[t] = lt
        return t_won[:k].copy(), d_won[:k].copy(), won_t, lost_t, won_d, lost_d, n_unknown, n_pull

    @njit(nogil=True, cache=True)
    def book_open(  # type: ignore[no-untyped-def]
        t_won,
        d_won,
        clock,
        amount,
        group,
        rep,
        u_amount,
        u_pull,
        pool,
        offset,
        count,
        size_index,
        pull,
        pull_start,
        pull_len,
        period_of_day,
        n_reps,
        n_periods,
        no_horizon,
        bookings,
    ):
        """Add the won open deals' values to ``bookings`` (flat trials x reps x periods), in order."""
        j = 0
        c = 0
        pulling = pull_len.size > 0
        for i in range(t_won.size):
            d = d_won[i]
            a = amount[d]
            if np.isnan(a):
                g = group[d]
                pos = offset[g] + np.int64(u_amount[j] * count[g])
                if size_index.size:
                    pos = size_index[t_won[i], pos]
                a = pool[pos]
                j += 1
            if no_horizon:
                p = 0
            else:
                day = np.int64(clock[t_won[i], d])
                if pulling:
                    length = pull_len[day]
                    if length > 0:
                        u = u_pull[c]
                        c += 1
                        if u < pull:
                            day = pull_start[day] + np.int64(u / pull * length)
                p = period_of_day[day]
            if p >= 0:
                bookings[(t_won[i] * n_reps + rep[d]) * n_periods + p] += a

else:  # pragma: no cover
    first_step = active_tokens = outcomes = book_open = _choose = None

if AVAILABLE:

    @njit(nogil=True, cache=True)
    def advance_step(  # type: ignore[no-untyped-def]
        active,
        u,
        state,
        clock,
        n_deals,
        deal_rep,
        tok_trial,
        tok_cohort,
        tok_rep,
        prob,
        stride,
        cohort_odds,
        rep_odds,
        sup_ptr,
        sup_dest,
        sup_succ,
        seg_id,
        gap,
        guide,
        scale,
        passes,
        cum,
        nxt,
        days,
        n_open,
        horizon,
    ):
        """One fresh stage visit of the ``active`` tokens (flat views); returns those still open.

        Open-deal tokens (``n_deals > 0``) are ``trial * n_deals + deal`` in cohort 0; new-deal
        tokens carry their trial, cohort and rep in ``tok_*``.
        """
        keep = np.empty(active.size, np.int64)
        mbuf = np.empty(prob.shape[2])
        dummy = np.zeros((1, 1))
        k = 0
        for i in range(active.size):
            j = active[i]
            if n_deals > 0:
                t = j // n_deals
                c = 0
                r = deal_rep[j - t * n_deals]
            else:
                t = tok_trial[j]
                c = tok_cohort[j]
                r = tok_rep[j]
            s = state[j]
            w = cohort_odds[t, c] * rep_odds[t, r]
            dest, u2 = _choose(
                prob, t * stride, s, w, sup_ptr, sup_dest, sup_succ, dummy, 0, False, u[i], mbuf
            )
            v = gap * seg_id[s, dest] + u2
            idx = guide[np.int32(v * scale)]
            for _ in range(passes):
                if cum[idx] < v:
                    idx += 1
            s_new = nxt[idx]
            c_new = clock[j] + days[idx]
            state[j] = s_new
            clock[j] = c_new
            if s_new < n_open and c_new <= horizon:
                keep[k] = j
                k += 1
        return keep[:k]

else:  # pragma: no cover
    advance_step = None
