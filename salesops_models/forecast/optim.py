"""Small compiled optimisers for the fast forecasters: Nelder-Mead in a box, and Brent on an interval.

Why not ``scipy.optimize``: an ETS or ARIMA likelihood on a sales or competition series costs a few
microseconds once compiled, so scipy's Python loop around it (tens of microseconds per call) would
dominate the fit. Both optimisers here run inside numba together with the objective; each stops on a
tolerance or on a fixed number of function evaluations (a work limit, never the wall clock), so the
same input gives the same parameters bit for bit.

The objective is any ``numba.njit`` function ``fun(x, *args) -> float`` (``args`` a tuple; ``inf`` or
``nan`` marks an inadmissible point). :func:`make_nelder_mead` and :func:`make_brent` compile one
optimiser per objective: numba keeps such closures in its on-disk cache, whereas a compiled function
passed as an argument is recompiled in every process (tens of seconds on a busy 2-core machine).
"""

from __future__ import annotations

import numba as nb
import numpy as np

JIT = {"cache": True, "nogil": True}
#: Small kernels called once per likelihood evaluation are inlined into their callers at numba's IR
#: level: a call that passes arrays costs 20-60 ns (reference counts, array structs), which on a short
#: series is more than the arithmetic it wraps. The arithmetic is unchanged (no fast-math).
INLINE = {**JIT, "inline": "always"}


@nb.njit(**INLINE)
def _clip(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    for i in range(x.size):
        if x[i] < lower[i]:
            x[i] = lower[i]
        elif x[i] > upper[i]:
            x[i] = upper[i]
    return x


@nb.njit(**INLINE)
def _safe(v: float) -> float:
    return v if np.isfinite(v) else np.inf


@nb.njit(**INLINE)
def _sort_simplex(sim: np.ndarray, fs: np.ndarray, spare: np.ndarray) -> None:
    """Order the vertices by value in place, ties kept in position order (a stable insertion sort).

    The same order as a stable ``argsort`` and a reindexing, without the two copies per iteration;
    after one replacement the simplex is sorted but for one vertex, so this costs O(k) moves.
    """
    for i in range(1, fs.size):
        f = fs[i]
        if not fs[i - 1] > f:
            continue
        spare[:] = sim[i]
        j = i
        while j > 0 and fs[j - 1] > f:
            fs[j] = fs[j - 1]
            sim[j] = sim[j - 1]
            j -= 1
        fs[j] = f
        sim[j] = spare


def make_nelder_mead(fun):  # type: ignore[no-untyped-def]
    """A compiled Nelder-Mead minimiser of ``fun(x, *args)`` over a box.

    The returned function is ``nelder_mead(x0, step, lower, upper, args, max_evals, ftol, restarts)``.

    Parameters
    ----------
    x0, step
        Start point and the initial simplex edge per coordinate (same units as ``x0``).
    lower, upper
        Box bounds; trial points are projected into the box (clipping, as in R's ``ets``
        implementations), so every evaluated point is admissible for the bounds.
    args
        Extra arguments of ``fun`` (a tuple).
    max_evals
        Work limit: the largest number of evaluations [-].
    ftol
        Stop when :math:`f_{worst} - f_{best} \\le \\mathrm{ftol}\\,(|f_{best}| + \\mathrm{ftol})`.
    restarts
        Fresh simplices around the optimum after convergence, as long as each improves on the
        previous one by more than ``ftol`` (Nelder-Mead can stall on a degenerate simplex).

    Returns
    -------
    (ndarray, float, int)
        Best point, its value and the number of evaluations used.

    Notes
    -----
    Standard coefficients: reflection 1, expansion 2, contraction 0.5, shrink 0.5 (Lagarias et al.
    1998). Points are ordered by value with ties broken by position, so runs are deterministic.
    """

    @nb.njit(**JIT)
    def nelder_mead(x0, step, lower, upper, args, max_evals, ftol, restarts):  # type: ignore[no-untyped-def]
        # every work array is allocated once per call: the objective of a short series costs less
        # than a heap allocation, so temporaries inside the loop would dominate the fit
        k = x0.size
        best_x = _clip(x0.copy(), lower, upper)
        best_f = np.inf
        evals = 0
        cen = np.empty(k)
        sim = np.empty((k + 1, k))
        fs = np.empty(k + 1)
        xr = np.empty(k)
        xe = np.empty(k)
        xc = np.empty(k)
        spare = np.empty(k)
        for _attempt in range(restarts + 1):
            # (re)start: a fresh simplex around the best point so far (Nelder-Mead can stall on a
            # degenerate simplex; one restart from the optimum costs little when it has converged)
            sim[0] = best_x
            for i in range(k):
                row = sim[i + 1]
                row[:] = best_x
                row[i] = best_x[i] + step[i]
                if row[i] > upper[i]:
                    row[i] = best_x[i] - step[i]
                _clip(row, lower, upper)
            for i in range(k + 1):
                fs[i] = _safe(fun(sim[i], *args))
            evals += k + 1
            while evals < max_evals:
                _sort_simplex(sim, fs, spare)
                if np.isfinite(fs[k]) and fs[k] - fs[0] <= ftol * (abs(fs[0]) + ftol):
                    break
                for j in range(k):
                    s = 0.0
                    for i in range(k):
                        s += sim[i, j]
                    cen[j] = s / k
                worst = sim[k]
                for j in range(k):
                    xr[j] = cen[j] + (cen[j] - worst[j])
                _clip(xr, lower, upper)
                fr = _safe(fun(xr, *args))
                evals += 1
                if fr < fs[0]:
                    for j in range(k):
                        xe[j] = cen[j] + 2.0 * (cen[j] - worst[j])
                    _clip(xe, lower, upper)
                    fe = _safe(fun(xe, *args))
                    evals += 1
                    if fe < fr:
                        worst[:] = xe
                        fs[k] = fe
                    else:
                        worst[:] = xr
                        fs[k] = fr
                elif fr < fs[k - 1]:
                    worst[:] = xr
                    fs[k] = fr
                else:
                    towards = xr if fr < fs[k] else worst
                    for j in range(k):
                        xc[j] = cen[j] + 0.5 * (towards[j] - cen[j])
                    _clip(xc, lower, upper)
                    fc = _safe(fun(xc, *args))
                    evals += 1
                    if fc < min(fr, fs[k]):
                        worst[:] = xc
                        fs[k] = fc
                    else:
                        for i in range(1, k + 1):
                            row = sim[i]
                            for j in range(k):
                                row[j] = sim[0, j] + 0.5 * (row[j] - sim[0, j])
                            _clip(row, lower, upper)
                            fs[i] = _safe(fun(row, *args))
                        evals += k
            j = 0
            for i in range(1, k + 1):
                if fs[i] < fs[j]:
                    j = i
            improved = fs[j] < best_f - ftol * (abs(best_f) + ftol) if np.isfinite(best_f) else True
            if fs[j] < best_f:
                best_f = fs[j]
                best_x = sim[j].copy()
            if not improved or evals >= max_evals:
                break
        return best_x, best_f, evals

    return nelder_mead


def make_brent(fun):  # type: ignore[no-untyped-def]
    """A compiled Brent minimiser (golden section + parabolas) of a scalar ``fun(x, *args)``.

    The returned function is ``brent_min(a, b, args, xtol, max_iter)``, minimising on ``[a, b]``
    to the tolerance ``xtol`` (relative, plus 1e-12 absolute) in at most ``max_iter`` iterations
    (a work limit). It returns the minimiser and its value.
    """

    @nb.njit(**JIT)
    def brent_min(a, b, args, xtol, max_iter):  # type: ignore[no-untyped-def]

        golden = 0.3819660112501051
        x = w = v = a + golden * (b - a)
        fx = fw = fv = _safe(fun(x, *args))
        d = 0.0
        e = 0.0
        for _ in range(max_iter):
            xm = 0.5 * (a + b)
            tol1 = xtol * abs(x) + 1e-12
            tol2 = 2.0 * tol1
            if abs(x - xm) <= tol2 - 0.5 * (b - a):
                break
            use_golden = True
            if abs(e) > tol1:
                r = (x - w) * (fx - fv)
                q = (x - v) * (fx - fw)
                p = (x - v) * q - (x - w) * r
                q = 2.0 * (q - r)
                if q > 0.0:
                    p = -p
                q = abs(q)
                etemp = e
                e = d
                if abs(p) < abs(0.5 * q * etemp) and p > q * (a - x) and p < q * (b - x):
                    d = p / q
                    u = x + d
                    if u - a < tol2 or b - u < tol2:
                        d = tol1 if xm >= x else -tol1
                    use_golden = False
            if use_golden:
                e = (a - x) if x >= xm else (b - x)
                d = golden * e
            u = x + d if abs(d) >= tol1 else x + (tol1 if d >= 0 else -tol1)
            fu = _safe(fun(u, *args))
            if fu <= fx:
                if u >= x:
                    a = x
                else:
                    b = x
                v, w, x = w, x, u
                fv, fw, fx = fw, fx, fu
            else:
                if u < x:
                    a = u
                else:
                    b = u
                if fu <= fw or w == x:
                    v, w = w, u
                    fv, fw = fw, fu
                elif fu <= fv or v == x or v == w:
                    v = u
                    fv = fu
        return x, fx

    return brent_min
