"""Calculation trace: one rep's pay, step by step, in numbers a rep can recompute by hand.

This is a second, independent implementation of the plan arithmetic: plain Python floats, one rep,
one outcome, every step written down. The tests hold :mod:`.engine` (vectorised) to it, and the
benchmark uses it as the per-rep Python loop baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from salesops_models.compensation.plan import CompPlan, Measure, RateTable
from salesops_models.errors import PlanError


@dataclass
class TraceStep:
    """One line of a calculation trace."""

    component: str
    formula: str
    amount: float
    note: str = ""
    unit: str = "currency"  # or "fraction" (attainment, share of quota) or "factor" (tier pieces)


@dataclass
class PayoutTrace:
    """A rep's pay for the plan year with every step [currency].

    Attributes
    ----------
    steps
        The steps in order.
    base, earned, spif, clawback, true_up, variable, total, draw_balance
        The totals (the same meaning as in :class:`~salesops_models.compensation.engine.PayoutArrays`);
        ``total = base + variable``.
    """

    plan: str
    rep_id: str
    steps: list[TraceStep] = field(default_factory=list)
    base: float = 0.0
    earned: float = 0.0
    spif: float = 0.0
    clawback: float = 0.0
    true_up: float = 0.0
    variable: float = 0.0
    draw_balance: float = 0.0

    @property
    def total(self) -> float:
        """Base + variable [currency/yr]."""
        return self.base + self.variable

    def add(
        self, component: str, formula: str, amount: float, note: str = "", unit: str = "currency"
    ) -> float:
        """Write one step and return its amount (``unit``: currency, fraction or factor)."""
        self.steps.append(TraceStep(component, formula, amount, note, unit))
        return amount

    def to_frame(self) -> pd.DataFrame:
        """The steps as a table: component, formula, amount [``unit``], note, unit."""
        return pd.DataFrame(
            [s.__dict__ for s in self.steps], columns=["component", "formula", "amount", "note", "unit"]
        )

    def to_text(self) -> str:
        """The trace as plain text, one step per line."""
        lines = [f"Pay of rep {self.rep_id} under plan '{self.plan}'"]
        width = max((len(s.component) for s in self.steps), default=10)
        for s in self.steps:
            note = f"   ({s.note})" if s.note else ""
            lines.append(f"  {s.component:<{width}}  {s.formula} = {s.amount:,.4f}{note}")
        lines.append(
            f"  {'TOTAL':<{width}}  base {self.base:,.2f} + variable {self.variable:,.2f} = {self.total:,.2f}"
        )
        return "\n".join(lines)

    def summary(self) -> dict[str, float]:
        """The totals as a flat dict [currency]."""
        return {
            "base": self.base,
            "earned": self.earned,
            "spif": self.spif,
            "clawback": self.clawback,
            "true_up": self.true_up,
            "variable": self.variable,
            "total": self.total,
            "draw_balance": self.draw_balance,
        }


def tier_value(table: RateTable, a: float, trace: PayoutTrace | None = None, label: str = "") -> float:
    """Scalar tier function :math:`g(A)` (see :func:`~salesops_models.compensation.engine.tier_curve`),
    writing each slice to ``trace``."""
    tiers = table.tiers
    reached = 0
    for k, t in enumerate(tiers):
        if a > t.from_ or k == 0:
            reached = k
    r_reached = tiers[reached].rate

    def slices(upto: float) -> float:
        total = 0.0
        for t in tiers:
            hi = math.inf if t.to is None else t.to
            width = min(upto, hi) - t.from_
            if width <= 0:
                break
            total += t.rate * width
            if trace is not None:
                trace.add(
                    label,
                    f"slice {t.from_:g}-{min(upto, hi):g} x rate {t.rate:g}",
                    t.rate * width,
                    unit="factor",
                )
        return total

    if table.mode == "marginal":
        return slices(a)
    if table.mode == "retroactive":
        value = r_reached * a
        if trace is not None:
            trace.add(
                label,
                f"attainment {a:g} x reached tier {reached + 1} rate {r_reached:g}",
                value,
                unit="factor",
            )
        return value
    value = slices(min(a, 1.0))
    over = max(a - 1.0, 0.0)
    if trace is not None:
        trace.add(
            label,
            f"overage {over:g} x reached tier {reached + 1} rate {r_reached:g}",
            r_reached * over,
            unit="factor",
        )
    return value + r_reached * over


def _measure_pay(
    plan: CompPlan,
    measure: Measure,
    bookings: float,
    quota: float,
    credit: float,
    frac: float,
    trace: PayoutTrace | None,
    label: str,
) -> float:
    ti = plan.pay.target_incentive or 0.0
    mq = measure.quota_share * quota * frac
    credited = bookings * credit
    if mq <= 0:
        if trace is not None:
            trace.add(label, "no quota in this period: no pay", 0.0)
        return 0.0
    a = credited / mq
    t_m = measure.weight * ti * frac
    if trace is not None:
        trace.add(label, f"credited bookings {bookings:,.2f} x credit factor {credit:g}", credited)
        trace.add(
            label, f"attainment {credited:,.2f} / measure quota {mq:,.2f}", a, "fraction of quota", "fraction"
        )
    if measure.attainment_decimals is not None:
        a = round(a, measure.attainment_decimals)
        if trace is not None:
            trace.add(
                label, f"attainment rounded to {measure.attainment_decimals} decimals", a, unit="fraction"
            )
    if a < measure.threshold:
        if trace is not None:
            trace.add(label, f"attainment {a:g} below threshold {measure.threshold:g}: no pay", 0.0)
        return 0.0
    if measure.attainment_cap is not None and a > measure.attainment_cap:
        a = measure.attainment_cap
        if trace is not None:
            trace.add(label, f"attainment capped at {measure.attainment_cap:g}", a, unit="fraction")
    g = tier_value(measure.rate_table, a, trace, label)
    if measure.rate_table.rate_unit == "ti_multiple":
        scale, what = t_m, f"measure target incentive {t_m:,.2f}"
    else:
        scale, what = mq, f"measure quota {mq:,.2f}"
    pay = g * scale
    if trace is not None:
        trace.add(label, f"tier factor {g:g} x {what}", pay)
    if measure.payout_cap is not None and pay > measure.payout_cap * t_m:
        pay = measure.payout_cap * t_m
        if trace is not None:
            trace.add(label, f"payout capped at {measure.payout_cap:g} x {t_m:,.2f}", pay)
    return pay


def _earnings(
    plan: CompPlan,
    bookings: float,
    quota: float,
    credits: list[float],
    frac: float,
    trace: PayoutTrace | None,
    period: str,
) -> float:
    total = 0.0
    for measure, c in zip(plan.measures, credits, strict=True):
        total += _measure_pay(plan, measure, bookings, quota, c, frac, trace, f"{period} {measure.name}")
    return total


def payout_trace(
    plan: CompPlan,
    bookings: float | list[float],
    quota: float,
    *,
    rep_id: str = "rep",
    product_mix: dict[str, float] | None = None,
    quota_period_shares: list[float] | None = None,
    deal_size: dict[str, float] | None = None,
    quota_relief: float = 0.0,
    with_steps: bool = True,
) -> PayoutTrace:
    """Compute one rep's pay for the year and explain every step.

    Parameters
    ----------
    plan
        The plan.
    bookings
        The rep's bookings for the year [currency], or per quarter (4 values) for quarterly plans.
    quota
        The rep's annual quota before relief [currency].
    product_mix
        Share of the rep's bookings by product [0-1]; needed when the plan weights products.
    quota_period_shares
        Share of the annual quota per quarter (default 1/4 each).
    deal_size
        Mean deal size per product (key ``"*"`` for all) [currency/deal], for per-deal SPIFs.
    quota_relief
        Quota taken off for leave, territory changes, ... [currency].
    with_steps
        False skips writing the steps (the benchmark's plain per-rep loop).

    Returns
    -------
    PayoutTrace
    """
    tr = PayoutTrace(plan=plan.name, rep_id=rep_id)
    tracer = tr if with_steps else None
    n_p = plan.periods
    by_period = list(bookings) if isinstance(bookings, list | tuple) else None
    annual = float(sum(by_period)) if by_period is not None else float(bookings)
    shares = quota_period_shares or [1.0 / n_p] * n_p
    if by_period is None:
        by_period = [annual * s for s in shares] if n_p > 1 else [annual]
    if len(by_period) != n_p:
        raise ValueError(
            f"plan '{plan.name}' pays {n_p} period(s) a year; got {len(by_period)} bookings values"
        )
    q = quota - quota_relief
    if tracer:
        tr.add("quota", f"quota {quota:,.2f} - relief {quota_relief:,.2f}", q)
    if q <= 0:
        raise ValueError(f"rep {rep_id}: quota after relief is {q}; it must be > 0")
    credits = []
    for m in plan.measures:
        if m.product_weights and product_mix is None:
            raise PlanError(f"plan '{plan.name}': measure '{m.name}' weights products; give product_mix")
        if product_mix is None:
            c = m.other_products_weight
        else:
            c = sum(
                share * m.product_weights.get(p, m.other_products_weight) for p, share in product_mix.items()
            )
        credits.append(c)
    tr.base = plan.pay.base_salary
    if tracer:
        tr.add("base", "base salary", tr.base)

    h = plan.payout.holdback
    reversed_share = plan.clawback.reversed_share if plan.clawback else 0.0
    due_total = cash = balance = 0.0
    ytd_b = ytd_f = 0.0
    draw = plan.draw
    for k in range(n_p):
        name = f"Q{k + 1}" if n_p > 1 else "year"
        if plan.payout.basis == "cumulative" or n_p == 1:
            ytd_b += by_period[k]
            ytd_f += shares[k] if n_p > 1 else 1.0
            e = _earnings(plan, ytd_b, q, credits, ytd_f, tracer, f"{name} YTD" if n_p > 1 else name)
            due = max((1.0 - h) * e - due_total, 0.0)
            if n_p == 1:
                formula = f"earnings {e:,.2f}"
            else:
                formula = f"max(0, (1 - holdback {h:g}) x YTD earnings {e:,.2f} - paid {due_total:,.2f})"
        else:
            e = _earnings(plan, by_period[k], q, credits, shares[k], tracer, name)
            due = (1.0 - h) * e
            formula = f"(1 - holdback {h:g}) x earnings {e:,.2f}"
        if tracer:
            tr.add(f"{name} due", formula, due)
        due_total += due
        if draw is None:
            cash += due
            continue
        d = draw.amount_per_period
        paid = max(due, d)
        if draw.recoverable:
            short = max(d - due, 0.0)
            recover = min(balance, max(due - d, 0.0))
            paid -= recover
            balance += short - recover
            if tracer:
                tr.add(
                    f"{name} draw",
                    f"max(due, draw {d:,.2f}) - recovery {recover:,.2f}; balance now {balance:,.2f}",
                    paid,
                )
        elif tracer:
            tr.add(f"{name} draw", f"max(due {due:,.2f}, non-recoverable draw {d:,.2f})", paid)
        cash += paid

    if n_p > 1 or h > 0:
        e_gross = _earnings(plan, annual, q, credits, 1.0, tracer, "annual")
    else:
        e_gross = due_total
    true_up = e_gross - due_total
    if true_up < 0 and not plan.payout.recover_overpayment:
        true_up = 0.0
    if n_p > 1 and tracer:
        rule = "" if plan.payout.recover_overpayment else "max(0, ...): overpayments forgiven"
        tr.add("true-up", f"annual earnings {e_gross:,.2f} - quarterly due {due_total:,.2f}", true_up, rule)
    if plan.clawback is not None:
        net = [c * (1.0 - reversed_share) for c in credits]
        e_net = _earnings(plan, annual, q, net, 1.0, tracer, "net of reversals")
        clawback = e_gross - e_net
        if tracer:
            tr.add("clawback", f"earnings {e_gross:,.2f} - earnings on net bookings {e_net:,.2f}", clawback)
    else:
        e_net, clawback = e_gross, 0.0
    year_end = true_up - clawback
    if draw is not None and draw.recoverable:
        recover = min(balance, max(year_end, 0.0))
        year_end -= recover
        balance -= recover
        if tracer:
            tr.add(
                "draw recovery",
                "year-end recovery from true-up",
                -recover if recover else 0.0,
                f"balance {balance:,.2f}",
            )
        if draw.forgive_at_year_end:
            if tracer and balance > 0:
                tr.add("draw write-off", "balance forgiven at year end", balance)
            balance = 0.0
    cash += year_end
    spif_total = 0.0
    for s in plan.spifs:
        share = 1.0 if s.product is None else (product_mix or {}).get(s.product, 0.0)
        units = annual * share * s.qualifying_share
        if s.kind == "per_deal":
            size = (deal_size or {}).get(s.product or "*", (deal_size or {}).get("*", float("nan")))
            units /= size
        pay = s.amount * units
        if s.max_per_rep is not None:
            pay = min(pay, s.max_per_rep)
        if tracer:
            tr.add(
                f"SPIF {s.name}",
                f"{s.amount:g} x {units:,.4f} {'deals' if s.kind == 'per_deal' else 'booked'}",
                pay,
            )
        spif_total += pay
    cash += spif_total
    tr.earned, tr.spif, tr.clawback, tr.true_up = e_net, spif_total, clawback, true_up
    tr.variable, tr.draw_balance = cash, balance
    if tracer:
        tr.add("variable", "all variable cash for the year", cash)
    return tr


def bookings_for_payout(
    plan: CompPlan,
    variable_pay: float,
    quota: float,
    *,
    upper_attainment: float = 10.0,
    **kwargs: object,
) -> float:
    """Reverse mode: the annual bookings at which a rep's variable pay reaches ``variable_pay``.

    Parameters
    ----------
    plan
        The plan (bookings are split into quarters by ``quota_period_shares`` for quarterly plans).
    variable_pay
        The variable pay to reach [currency/yr].
    quota
        The rep's annual quota [currency/yr].
    upper_attainment
        Search up to this attainment [fraction of quota].
    **kwargs
        Passed to :func:`payout_trace` (``product_mix``, ``quota_relief``, ...).

    Returns
    -------
    float
        The smallest bookings [currency/yr] paying at least ``variable_pay`` (to 0.01 currency).

    Raises
    ------
    ValueError
        The pay is not reached below ``upper_attainment`` x quota (a cap, or a target too high).

    Notes
    -----
    Bisection on :func:`payout_trace`; pay is non-decreasing in bookings for plans whose tier rates
    do not fall, and the bisection returns the first crossing for those that do.
    """

    def pay(b: float) -> float:
        return payout_trace(plan, b, quota, with_steps=False, **kwargs).variable  # type: ignore[arg-type]

    lo, hi = 0.0, upper_attainment * quota
    if pay(hi) < variable_pay:
        raise ValueError(
            f"plan '{plan.name}' never pays {variable_pay:,.2f} below {upper_attainment:g} x quota "
            f"(pay there: {pay(hi):,.2f}); check caps or raise upper_attainment"
        )
    if pay(lo) >= variable_pay:
        return 0.0
    while hi - lo > 0.01:
        mid = 0.5 * (lo + hi)
        if pay(mid) >= variable_pay:
            hi = mid
        else:
            lo = mid
    return hi
