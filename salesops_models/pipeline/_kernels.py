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
    def first_step_stage(u, lo, span, age, guide, scale, passes, cum, nxt, days, state, clock):  # type: ignore[no-untyped-def]
        """The point calibration's first exit of every open deal (one lookup in the stage layout of
        the atoms, conditioned on age): ``state``/``clock`` (n, D)."""
        n, d_count = u.shape
        for t in range(n):
            for d in range(d_count):
                v = u[t, d] * span[d] + lo[d]
                idx = guide[np.int32(v * scale)]
                for _ in range(passes):  # branch-free: the guide bucket holds at most `passes` boundaries
                    idx += np.int32(cum[idx] < v)
                state[t, d] = nxt[idx]
                clock[t, d] = max(days[idx] - age[d], 1)

    @njit(nogil=True, cache=True)
    def advance_step_stage(
        active, u, state, clock, gap, guide, scale, passes, cum, nxt, days, n_open, horizon
    ):  # type: ignore[no-untyped-def]
        """The point calibration's fresh stage visit of the ``active`` tokens; returns those still open."""
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
        boot,
        size_key,
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
                if boot:
                    # the trial's bootstrap resample of the group (uncertainty.bootstrap_position)
                    x = size_key ^ ((np.uint64(t_won[i]) << np.uint64(32)) | np.uint64(pos))
                    z = x + np.uint64(0x9E3779B97F4A7C15)
                    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                    z = z ^ (z >> np.uint64(31))
                    h = np.float64(z >> np.uint64(11)) * 2.0**-53
                    pos = offset[g] + np.int64(h * count[g])
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
    active_tokens = outcomes = book_open = first_step_stage = advance_step_stage = None


# ------------------------------------------------------------------------------------------------
# per-trial parameters: exits from padded tables (a fixed width per stage, so loops unroll)
# ------------------------------------------------------------------------------------------------


def _make_exit_kernels(width: int):  # type: ignore[no-untyped-def]
    """First-step and advance kernels for exit tables padded to ``width`` exits per stage.

    The width is a compile-time constant of the closure: the loops over a stage's exits unroll and
    run branch-free (a variable trip count costs a mispredicted loop exit per token). Padded exits
    have zero mass and a running share of 1.0, so they are never chosen; sums over them add exact
    zeros, the same numbers as the numpy path.
    """
    W = width

    @njit(nogil=True)
    def first_step(  # type: ignore[no-untyped-def]
        u,
        stage,
        rep,
        pad_lo,
        pad_surv,
        age,
        mass,
        exit_cum,
        pad_seg,
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
        """First stage exit of every open deal in every trial (per-trial parameters): ``state``/``clock``.

        A deal that has just entered its stage (age <= 0) draws like a new visit, from the running
        exit shares; one with an age draws from the exit masses times the survival beyond it (the
        arithmetic of ``choose_destination``), and the uniform left inside the exit picks the holding
        time above the age.
        """
        n, d_count = u.shape
        n_c, n_r, n_s = mass.shape[1], mass.shape[2], mass.shape[3]
        m_flat = mass.reshape(-1)
        e_flat = exit_cum.reshape(-1)
        s_flat = pad_surv.reshape(-1)
        lo_flat = pad_lo.reshape(-1)
        for t in range(n):
            tb = t * n_c * n_r  # cohort 0
            for d in range(d_count):
                s = stage[d]
                b = ((tb + rep[d]) * n_s + s) * W
                x = u[t, d]
                if age[d] <= 0:
                    prev = 0.0
                    e = 0
                    for q in range(W):
                        cq = e_flat[b + q]
                        le = cq <= x
                        e += le
                        prev = cq if le else prev
                    v = gap * pad_seg[s, e] + (x - prev) / (e_flat[b + e] - prev)
                else:
                    sb = d * W
                    total = 0.0
                    last = 0
                    for q in range(W):
                        m = m_flat[b + q] * s_flat[sb + q]
                        total += m
                        last = q if m > 0 else last
                    x = x * total
                    acc = 0.0
                    prev = 0.0
                    e = 0
                    for q in range(W):
                        acc += m_flat[b + q] * s_flat[sb + q]
                        le = acc <= x
                        e += le
                        prev = acc if le else prev
                    if e > last:
                        # x reached the total by rounding: the last exit with mass, as numpy does
                        e = last
                        prev = 0.0
                        for q in range(last):
                            prev += m_flat[b + q] * s_flat[sb + q]
                    se = s_flat[sb + e]
                    u2 = (x - prev) / (m_flat[b + e] * se)
                    v = gap * pad_seg[s, e] + lo_flat[sb + e] + u2 * se
                idx = guide[np.int32(v * scale)]
                for _ in range(passes):  # branch-free: the guide bucket holds at most `passes` boundaries
                    idx += np.int32(cum[idx] < v)
                state[t, d] = nxt[idx]
                clock[t, d] = max(days[idx] - age[d], 1)

    @njit(nogil=True)
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
        exit_cum,
        pad_seg,
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

        Open-deal tokens (``n_deals > 0``) are ``trial * n_deals + deal`` in cohort 0; new-deal tokens
        carry their trial, cohort and rep in ``tok_*``. The exit is the number of running shares
        ``exit_cum[t, c, r, s]`` at or below the uniform.
        """
        keep = np.empty(active.size, np.int64)
        n_c, n_r, n_s = exit_cum.shape[1], exit_cum.shape[2], exit_cum.shape[3]
        e_flat = exit_cum.reshape(-1)
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
            x = u[i]
            b = (((t * n_c + c) * n_r + r) * n_s + s) * W
            prev = 0.0
            e = 0
            for q in range(W):
                cq = e_flat[b + q]
                le = cq <= x
                e += le
                prev = cq if le else prev
            v = gap * pad_seg[s, e] + (x - prev) / (e_flat[b + e] - prev)
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

    return first_step, advance_step


EXIT_WIDTHS = (2, 4, 8)  # tables are padded to the smallest of these that holds every stage's exits
_EXIT_KERNELS: dict = {}


def exit_kernels(width: int):  # type: ignore[no-untyped-def]
    """The (first_step, advance_step) pair for a padded width, compiled on first use."""
    if width not in _EXIT_KERNELS:
        _EXIT_KERNELS[width] = _make_exit_kernels(width)
    return _EXIT_KERNELS[width]
