"""The payout engine: what every rep earns in every trial, vectorised over reps x trials.

The engine takes bookings samples (reps x trials), quotas and the plan, and returns the cash paid
per rep and trial, split into its components. Everything is numpy; no Python loop runs over reps
or trials (only over the few measures, tiers and payout periods). :mod:`.trace` computes the same
numbers for one rep in plain Python, step by step, and the tests hold the two to each other.

Notes
-----
For measure :math:`m` of rep :math:`r` with bookings :math:`B` [currency], quota :math:`Q_r`
[currency], measure quota share :math:`s_m`, crediting factor :math:`c_{rm} = \\sum_p \\pi_{rp} w_{mp}`
(product mix :math:`\\pi`, product weights :math:`w`) and rounding to :math:`d` decimals:

.. math::

    A = \\mathrm{round}_d\\big(c_{rm} B / (s_m Q_r)\\big), \\qquad
    \\mathrm{pay}_m = \\min\\big(K_m\\, T_m\\,,\\; [A \\ge h_m]\\; U_{rm}\\, g_m(\\min(A, \\bar A_m))\\big)

with threshold :math:`h_m`, attainment cap :math:`\\bar A_m`, payout cap :math:`K_m` times the
measure's target incentive :math:`T_m = w_m\\,TI`, scale :math:`U_{rm} = T_m` (``ti_multiple``) or
:math:`s_m Q_r` (``bookings_share``), and the tier function :math:`g` for tiers with rates
:math:`r_k` on :math:`(b_{k-1}, b_k]`:

- marginal: :math:`g(A) = \\sum_k r_k\\, \\max(0, \\min(A, b_k) - b_{k-1})` (continuous);
- overage at reached tier: :math:`g(A) = g_{\\mathrm{marg}}(\\min(A, 1)) + r_{k(A)} \\max(0, A - 1)`;
- retroactive: :math:`g(A) = r_{k(A)}\\, A`,

where :math:`k(A)` is the tier with :math:`b_{k-1} < A \\le b_k`. Quarterly plans apply the same
formula per quarter (discrete basis) or to year-to-date bookings and quota (cumulative basis),
then pay an annual true-up (see :func:`compute_payouts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salesops_models.compensation.plan import CompPlan, Measure, RateTable
from salesops_models.errors import PlanError

# np.interp clamps outside its abscissae, so the marginal curve gets a far point that carries the last
# tier's slope; attainments above this are not meaningful in any plan.
_FAR_ATTAINMENT = 1.0e6


def tier_curve(table: RateTable, attainment: np.ndarray) -> np.ndarray:
    """Pay factor :math:`g(A)` of a rate table, per unit of scale.

    Parameters
    ----------
    table
        The rate table (tiers, mode).
    attainment
        Attainment [fraction of quota], any shape, >= 0.

    Returns
    -------
    numpy.ndarray
        :math:`g(A)`: multiples of the measure's target incentive (``ti_multiple``) or of its quota
        (``bookings_share``), same shape as ``attainment``.

    Notes
    -----
    A readable reference (``np.interp`` and ``np.searchsorted``); the engine itself evaluates the same
    function in hinge form, in place and block by block (``_TierKernel``), and the tests hold the
    two equal.

    Examples
    --------
    The worked example of FIELD-NOTES 3.4 (rates 1, 1.5, 2 on 0-100-125-inf %, rep at 140 %):
    marginal 1.675, overage at reached tier 1.80, retroactive 2.80.
    """
    a = np.asarray(attainment, dtype=float)
    rates = np.asarray(table.rates, dtype=float)
    bounds = np.asarray(table.bounds, dtype=float)
    if table.mode == "marginal":
        return _marginal(rates, bounds, a)
    idx = np.searchsorted(bounds, a, side="left")  # tier k(A): b_{k-1} < A <= b_k
    reached = rates[idx]
    if table.mode == "retroactive":
        return reached * a
    # overage at reached tier: slices up to quota, then all the overage at the reached tier's rate
    below = _marginal(rates, bounds, np.minimum(a, 1.0))
    return below + reached * np.maximum(a - 1.0, 0.0)


def _marginal(rates: np.ndarray, bounds: np.ndarray, a: np.ndarray) -> np.ndarray:
    x = np.concatenate(([0.0], bounds, [_FAR_ATTAINMENT]))
    y = np.concatenate(([0.0], np.cumsum(rates * np.diff(x))))
    return np.interp(a, x, y)


def credit_factors(
    plan: CompPlan, rep_ids: list[str], product_mix: np.ndarray | None, products: list[str]
) -> np.ndarray:
    """Crediting factor :math:`c_{rm} = \\sum_p \\pi_{rp} w_{mp}` per measure and rep.

    Parameters
    ----------
    plan
        The plan.
    rep_ids
        Reps, in row order.
    product_mix
        Share of each rep's bookings by product, shape (reps, products), rows summing to 1 [0-1];
        ``None`` when the data has no products.
    products
        Column labels of ``product_mix``.

    Returns
    -------
    numpy.ndarray
        Shape (measures, reps) [currency credited / currency booked].
    """
    out = np.empty((len(plan.measures), len(rep_ids)))
    for m, measure in enumerate(plan.measures):
        if product_mix is None:
            if measure.product_weights:
                raise PlanError(
                    f"plan '{plan.name}': measure '{measure.name}' weights products {sorted(measure.product_weights)}, "
                    "but the data has no product mix; give compensation.product_mix in the scenario or load "
                    "opportunities with a 'product' column"
                )
            out[m] = measure.other_products_weight
            continue
        w = np.array([measure.product_weights.get(p, measure.other_products_weight) for p in products])
        out[m] = product_mix @ w
    return out


def spif_factors(
    plan: CompPlan, product_mix: np.ndarray | None, products: list[str], deal_size: dict[str, float]
) -> np.ndarray:
    """SPIF units per currency booked, per SPIF and rep: deals (``per_deal``) or bookings (``bookings_share``).

    Parameters
    ----------
    product_mix
        Shape (reps, products) [0-1], or ``None`` (then only product-less SPIFs are allowed).
    deal_size
        Mean won deal size per product, and under key ``"*"`` over all products [currency/deal].

    Returns
    -------
    numpy.ndarray
        Shape (spifs, reps) [units / currency booked].
    """
    n_reps = 0 if product_mix is None else product_mix.shape[0]
    out = []
    for s in plan.spifs:
        if s.product is None:
            share = np.ones(max(n_reps, 1))
        elif product_mix is None or s.product not in products:
            raise PlanError(
                f"plan '{plan.name}': SPIF '{s.name}' pays on product '{s.product}', which the data's product mix "
                f"does not have (products: {products or 'none'}); fix the product name or give compensation.product_mix"
            )
        else:
            share = product_mix[:, products.index(s.product)]
        units = share * s.qualifying_share
        if s.kind == "per_deal":
            size = deal_size.get(s.product or "*", deal_size.get("*", float("nan")))
            if not np.isfinite(size) or size <= 0:
                raise PlanError(
                    f"plan '{plan.name}': SPIF '{s.name}' pays per deal but the mean deal size of "
                    f"'{s.product or 'all products'}' is unknown; give compensation.deal_size"
                )
            units = units / size
        out.append(units)
    return np.array(out).reshape(len(plan.spifs), -1)


@dataclass
class PayoutArrays:
    """Cash and earnings per rep and trial [currency/yr], arrays of shape (reps, trials).

    Attributes
    ----------
    variable
        All variable cash paid for the plan year: commission payments, draw top-ups, true-up, SPIFs, less
        clawbacks and draw recoveries.
    earned
        Commission earned on the year's net bookings (after reversals), before draws and SPIFs.
    spif
        SPIF payouts.
    clawback
        Commission recovered on reversed bookings (>= 0), ``None`` without clawback.
    true_up
        Year-end true-up payment (may be < 0 when overpayments are recovered), ``None`` for annual plans.
    draw_balance
        Recoverable draw still owed by the rep at year end (carried forward), ``None`` without a draw.
    """

    variable: np.ndarray
    earned: np.ndarray
    spif: np.ndarray | None = None
    clawback: np.ndarray | None = None
    true_up: np.ndarray | None = None
    draw_balance: np.ndarray | None = None


# Blocks of about this many elements keep the handful of passes over one block in cache.
_BLOCK_ELEMENTS = 1 << 16


class _TierKernel:
    """:math:`U_r\\, g(A)` for one rate table and per-rep scales, written in place block by block.

    Hinge form of the tier function (equal to :func:`tier_curve`):
    marginal :math:`g = r_1 A + \\sum_{k>1} (r_k - r_{k-1}) (A - b_{k-1})^+`; retroactive
    :math:`g = A\\,(r_1 + \\sum_{k>1} (r_k - r_{k-1}) [A > b_{k-1}])`; overage: the marginal form on
    :math:`\\min(A, 1)` plus :math:`(A - 1)^+` times the retroactive rate.
    """

    def __init__(self, table: RateTable):
        rates = np.asarray(table.rates, dtype=float)
        self.mode = table.mode
        # a boundary where the rate does not change adds nothing in any mode: skip its passes
        kept = [(float(b), float(d)) for b, d in zip(table.bounds, np.diff(rates), strict=True) if d != 0.0]
        self.bounds = [b for b, _ in kept]
        self.rate0 = float(rates[0])
        self.deltas = [d for _, d in kept]
        self.first = np.empty((0, 1))
        self.steps: list[np.ndarray] = []

    def scaled(self, scale: np.ndarray) -> _TierKernel:
        """Set the per-rep scales :math:`U_r` of the rows about to be processed, shape (rows,)."""
        self.first = (self.rate0 * scale)[:, None]
        self.steps = [(d * scale)[:, None] for d in self.deltas]
        return self

    def __call__(self, a: np.ndarray, out: np.ndarray, tmp: np.ndarray, tmp2: np.ndarray) -> None:
        if self.mode == "marginal":
            self._marginal(a, out, tmp)
        elif self.mode == "retroactive":
            self._reached_rate(a, out, tmp)
            np.multiply(out, a, out=out)
        else:
            np.minimum(a, 1.0, out=tmp2)
            self._marginal(tmp2, out, tmp, upto=1.0)
            self._reached_rate(a, tmp2, tmp)
            np.subtract(a, 1.0, out=tmp)
            np.maximum(tmp, 0.0, out=tmp)
            np.multiply(tmp, tmp2, out=tmp)
            np.add(out, tmp, out=out)

    def _marginal(self, a: np.ndarray, out: np.ndarray, tmp: np.ndarray, upto: float = np.inf) -> None:
        np.multiply(a, self.first, out=out)
        for b, step in zip(self.bounds, self.steps, strict=True):
            if b >= upto:
                break
            np.subtract(a, b, out=tmp)
            np.maximum(tmp, 0.0, out=tmp)
            np.multiply(tmp, step, out=tmp)
            np.add(out, tmp, out=out)

    def _reached_rate(self, a: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
        out[...] = self.first
        for b, step in zip(self.bounds, self.steps, strict=True):
            np.greater(a, b, out=tmp)  # 1.0 where the tier is reached, else 0.0
            np.multiply(tmp, step, out=tmp)
            np.add(out, tmp, out=out)


def measure_pay(
    measure: Measure,
    bookings: np.ndarray,
    attain_factor: np.ndarray,
    scale: np.ndarray,
    cap_amount: np.ndarray | None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Pay of one measure for one period.

    Parameters
    ----------
    bookings
        Bookings, shape (reps, trials) [currency].
    attain_factor
        :math:`c_{rm} / (s_m Q_r)` for the period's quota, shape (reps,) [1/currency].
    scale
        :math:`U_{rm}` for the period, shape (reps,) [currency].
    cap_amount
        Payout cap for the period, shape (reps,) [currency], or ``None``.
    out
        Array of the shape of ``bookings`` to write into (default: a new one).

    Returns
    -------
    numpy.ndarray
        Pay, shape (reps, trials) [currency].

    Notes
    -----
    Works through blocks of whole rows (about 2**17 values) with preallocated scratch arrays, so that
    the few elementwise passes of the tier function run in cache rather than over main memory.
    """
    n_reps, n_trials = bookings.shape
    out = np.empty_like(bookings) if out is None else out
    scale = np.asarray(scale, dtype=float)
    factor = np.asarray(attain_factor, dtype=float)
    cap = None if cap_amount is None else np.asarray(cap_amount, dtype=float)
    # blocks of whole rows where possible: contiguous memory, long inner loops
    width = max(1, min(n_trials, _BLOCK_ELEMENTS))
    height = max(1, min(n_reps, _BLOCK_ELEMENTS // width))
    bufs = [np.empty((height, width)) for _ in range(3)]
    below_buf = np.empty((height, width), dtype=bool) if measure.threshold > 0 else None
    tiers = _TierKernel(measure.rate_table)
    for i in range(0, n_reps, height):
        h = min(height, n_reps - i)
        rows = slice(i, i + h)
        kernel = tiers.scaled(scale[rows])
        f = factor[rows, None]
        c = None if cap is None else cap[rows, None]
        for j in range(0, n_trials, width):
            w = min(width, n_trials - j)
            a, tmp, tmp2 = (b[:h, :w] for b in bufs)
            o = out[rows, j : j + w]
            np.multiply(bookings[rows, j : j + w], f, out=a)
            if measure.attainment_decimals is not None:
                np.round(a, measure.attainment_decimals, out=a)
            below = None
            if below_buf is not None:
                below = below_buf[:h, :w]
                np.less(a, measure.threshold, out=below)
            if measure.attainment_cap is not None:
                np.minimum(a, measure.attainment_cap, out=a)
            kernel(a, o, tmp, tmp2)
            if below is not None:
                o[below] = 0.0
            if c is not None:
                np.minimum(o, c, out=o)
    return out


def earnings(
    plan: CompPlan,
    bookings: np.ndarray,
    quota: np.ndarray,
    credit: np.ndarray,
    period_fraction: np.ndarray | float = 1.0,
    out: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> np.ndarray:
    """Commission earned over a period by all measures [currency], shape (reps, trials).

    Parameters
    ----------
    bookings
        Bookings in the period, shape (reps, trials) [currency].
    quota
        Annual quota, shape (reps,) [currency].
    credit
        Crediting factors, shape (measures, reps).
    period_fraction
        The period's share of the annual quota (and so of the target incentive), scalar or (reps,) [0-1].
    out, scratch
        Optional arrays of the shape of ``bookings`` to write into (``scratch`` for plans with several
        measures), to save allocations in loops over periods.
    """
    ti = plan.pay.target_incentive or 0.0
    frac = np.broadcast_to(np.asarray(period_fraction, dtype=float), quota.shape)
    total = None
    for m, measure in enumerate(plan.measures):
        mq = measure.quota_share * quota * frac
        # a period without quota (a hire starting later in the year) pays nothing in that period
        factor = np.divide(credit[m], mq, out=np.zeros_like(mq), where=mq > 0)
        t_m = measure.weight * ti * frac
        scale = t_m if measure.rate_table.rate_unit == "ti_multiple" else mq
        cap = None if measure.payout_cap is None else measure.payout_cap * t_m
        if total is None:
            total = measure_pay(measure, bookings, factor, scale, cap, out=out)
        else:
            if scratch is None:
                scratch = np.empty_like(bookings)
            total += measure_pay(measure, bookings, factor, scale, cap, out=scratch)
    assert total is not None
    return total


def split_bookings(bookings: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Split annual bookings (reps, trials) into periods with shares (periods,), (periods, reps) or
    (periods, reps, trials) summing to 1 over periods; returns (periods, reps, trials) [currency]."""
    s = np.asarray(shares, dtype=float)
    if s.ndim == 1:
        s = s[:, None, None]
    elif s.ndim == 2:
        s = s[:, :, None]
    return bookings[None, :, :] * s


def compute_payouts(
    plan: CompPlan,
    bookings: np.ndarray,
    quota: np.ndarray,
    credit: np.ndarray,
    *,
    bookings_by_period: np.ndarray | None = None,
    quota_period_shares: np.ndarray | None = None,
    spif_units: np.ndarray | None = None,
) -> PayoutArrays:
    """Pay every rep in every trial under ``plan``.

    Parameters
    ----------
    plan
        The commission plan.
    bookings
        Annual bookings, shape (reps, trials) [currency/yr].
    quota
        Annual quota after quota relief, shape (reps,) [currency/yr]; > 0.
    credit
        Crediting factors from :func:`credit_factors`, shape (measures, reps).
    bookings_by_period
        Quarterly plans: bookings per quarter, shape (4, reps, trials) summing to ``bookings``
        [currency]; default: split by ``quota_period_shares``.
    quota_period_shares
        Quarterly plans: share of the annual quota in each quarter, shape (4,) or (4, reps); default 1/4 each.
    spif_units
        SPIF units per currency booked, shape (spifs, reps) from :func:`spif_factors`.

    Returns
    -------
    PayoutArrays

    Notes
    -----
    Quarter :math:`q` earns :math:`e_q` (discrete basis: the measures' pay on the quarter's bookings
    and quota, with the target incentive scaled by the quarter's quota share) or :math:`E_q` (cumulative
    basis: pay on year-to-date bookings against year-to-date quota). The commission due is

    .. math::

        d_q = (1 - h)\\,e_q \\quad\\text{or}\\quad d_q = \\max\\big(0, (1 - h) E_q - \\textstyle\\sum_{p<q} d_p\\big)

    with holdback :math:`h`. A draw :math:`D` pays :math:`\\max(d_q, D)`; a recoverable draw adds
    :math:`D - d_q` to a balance that later excess :math:`d_q - D` repays. The year-end true-up is
    :math:`E - \\sum_q d_q` for the annual earnings :math:`E` on the year's gross bookings (set to 0
    when negative unless overpayments are recovered), less the clawback
    :math:`E - E_{\\mathrm{net}}`, with :math:`E_{\\mathrm{net}}` earned on bookings net of the
    reversed share. SPIFs pay :math:`\\min(\\text{max\\_per\\_rep}, a_s\\,u_{rs} B)`.
    """
    bookings = np.asarray(bookings, dtype=float)
    quota = np.asarray(quota, dtype=float)
    if bookings.ndim != 2 or quota.shape != (bookings.shape[0],):
        raise ValueError(
            f"bookings must be (reps, trials) and quota (reps,); got {bookings.shape} and {quota.shape}"
        )
    if not np.all(quota > 0):
        raise ValueError("quota must be > 0 for every rep (after quota relief); check the quotas table")
    n_p = plan.periods
    if n_p == 1:
        q_shares = np.ones((1, quota.size))
    else:
        q_shares = (
            np.full((n_p, quota.size), 1.0 / n_p)
            if quota_period_shares is None
            else np.asarray(quota_period_shares, dtype=float)
        )
        if q_shares.ndim == 1:
            q_shares = np.repeat(q_shares[:, None], quota.size, axis=1)
        if q_shares.shape != (n_p, quota.size) or not np.allclose(q_shares.sum(axis=0), 1.0):
            raise ValueError(
                f"quota_period_shares must be ({n_p},) or ({n_p}, reps) summing to 1 over periods"
            )
    if plan.spifs:
        if spif_units is None:
            raise ValueError(f"plan '{plan.name}' has SPIFs: pass spif_units (see spif_factors)")
        spif_units = np.broadcast_to(np.asarray(spif_units, dtype=float), (len(plan.spifs), quota.size))
    n_reps, n_trials = bookings.shape
    simple = n_p == 1 and plan.draw is None and not plan.spifs and plan.clawback is None
    if simple or n_reps * n_trials <= _BLOCK_ELEMENTS:
        return _payouts_rows(plan, bookings, quota, credit, bookings_by_period, q_shares, spif_units)
    # Several full-size arrays per period would each be written and read once: in blocks of whole rows
    # (reps are independent) every intermediate stays in cache and only the outputs are full size.
    height = max(1, _BLOCK_ELEMENTS // n_trials)
    parts: dict[str, np.ndarray] = {}
    for r0 in range(0, n_reps, height):
        rows = slice(r0, min(r0 + height, n_reps))
        part = _payouts_rows(
            plan,
            bookings[rows],
            quota[rows],
            credit[:, rows],
            None if bookings_by_period is None else bookings_by_period[:, rows],
            q_shares[:, rows],
            None if spif_units is None else spif_units[:, rows],
        )
        for name, value in part.__dict__.items():
            if value is not None:
                if name not in parts:
                    parts[name] = np.empty_like(bookings)
                parts[name][rows] = value
    return PayoutArrays(**parts)


def _payouts_rows(
    plan: CompPlan,
    bookings: np.ndarray,
    quota: np.ndarray,
    credit: np.ndarray,
    bookings_by_period: np.ndarray | None,
    q_shares: np.ndarray,
    spif_units: np.ndarray | None,
) -> PayoutArrays:
    """:func:`compute_payouts` for a block of reps (validated inputs, quarterly shares (periods, reps))."""
    reversed_share = plan.clawback.reversed_share if plan.clawback is not None else 0.0
    net_credit = credit * (1.0 - reversed_share)

    spif = None
    if plan.spifs:
        assert spif_units is not None
        spif = np.zeros_like(bookings)
        for s, sp in enumerate(plan.spifs):
            pay = bookings * (sp.amount * spif_units[s])[:, None]
            if sp.max_per_rep is not None:
                np.minimum(pay, sp.max_per_rep, out=pay)
            spif += pay

    if plan.periods == 1 and plan.draw is None:
        # the fast path: one annual payment
        earned = earnings(plan, bookings, quota, net_credit)
        clawback = None
        if plan.clawback is not None:
            clawback = earnings(plan, bookings, quota, credit) - earned
        variable = earned if spif is None else earned + spif
        return PayoutArrays(variable=variable, earned=earned, spif=spif, clawback=clawback)

    n_p = plan.periods
    by_period = bookings_by_period
    h = plan.payout.holdback
    due_total = np.zeros_like(bookings)
    cash = np.zeros_like(bookings)
    draw = plan.draw
    balance = np.zeros_like(bookings) if (draw is not None and draw.recoverable) else None
    due = np.empty_like(bookings)
    tmp = np.empty_like(bookings)
    scratch = np.empty_like(bookings) if len(plan.measures) > 1 else None
    ytd_b = np.zeros_like(bookings) if n_p > 1 else bookings
    ytd_frac = np.zeros(quota.size)
    annual_ytd: np.ndarray | None = None
    for q in range(n_p):
        if by_period is None:
            period_b = bookings if n_p == 1 else np.multiply(bookings, q_shares[q][:, None], out=tmp)
        else:
            period_b = by_period[q]
        if plan.payout.basis == "cumulative" or n_p == 1:
            if n_p > 1:
                ytd_b += period_b
            ytd_frac = ytd_frac + q_shares[q]
            earnings(plan, ytd_b, quota, credit, ytd_frac, out=due, scratch=scratch)
            if q == n_p - 1 and n_p > 1:
                # year-to-date earnings at the last quarter are the annual earnings
                annual_ytd = due.copy()
            due *= 1.0 - h
            due -= due_total
            np.maximum(due, 0.0, out=due)
        else:
            earnings(plan, period_b, quota, credit, q_shares[q], out=due, scratch=scratch)
            due *= 1.0 - h
        due_total += due
        if draw is None:
            cash += due
            continue
        d = draw.amount_per_period
        if balance is not None:
            # shortfall below the draw adds to the balance; excess above it repays the balance
            np.subtract(due, d, out=tmp)  # excess (>0) or -shortfall (<0)
            recover = np.minimum(balance, np.maximum(tmp, 0.0))
            balance += np.maximum(-tmp, 0.0) - recover
            cash += np.maximum(due, d) - recover
        else:
            cash += np.maximum(due, d)
    del due, tmp
    if annual_ytd is not None:
        earned_gross = annual_ytd
    elif n_p > 1 or h > 0:
        earned_gross = earnings(plan, bookings, quota, credit)
    else:
        earned_gross = due_total
    true_up = earned_gross - due_total
    if not plan.payout.recover_overpayment:
        np.maximum(true_up, 0.0, out=true_up)
    if plan.clawback is not None:
        earned = earnings(plan, bookings, quota, net_credit)
        clawback = earned_gross - earned
    else:
        earned, clawback = earned_gross, None
    year_end = true_up - (clawback if clawback is not None else 0.0)
    if balance is not None:
        recover = np.minimum(balance, np.maximum(year_end, 0.0))
        year_end = year_end - recover
        balance -= recover
        if draw is not None and draw.forgive_at_year_end:
            balance = np.zeros_like(balance)
    cash += year_end
    if spif is not None:
        cash += spif
    return PayoutArrays(
        variable=cash,
        earned=earned,
        spif=spif,
        clawback=clawback,
        true_up=true_up if n_p > 1 else None,
        draw_balance=balance if draw is not None else None,
    )
