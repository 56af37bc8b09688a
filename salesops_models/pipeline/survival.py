"""Competing-risks estimates for CRM histories: Aalen-Johansen with delayed entry, and a follow-up check.

A stage visit (or a lead) ends in one of several outcomes (next stage, won, lost) or is still open
on the snapshot date (right-censored). A CRM export that only shows deals open on or after some
date also *left-truncates* older deals: a deal engaged before that date is in the export only
because it had not closed by then. Both are handled by the counting-process form of the
Aalen-Johansen estimator, with each visit at risk on ``(entry, time]``.

``statsmodels.duration.survfunc.CumIncidenceRight`` gives the same incidences and standard errors
without delayed entry (a test checks this); it has no ``entry`` argument, hence this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CumulativeIncidence:
    """Aalen-Johansen cumulative incidence of each outcome, with delta-method standard errors.

    Attributes
    ----------
    times
        Distinct observed times, increasing [days].
    incidence
        ``incidence[k, m]``: probability of outcome ``k + 1`` by ``times[m]`` [0-1].
    se
        Standard errors of ``incidence`` (Marubini & Valsecchi delta method) [0-1].
    at_risk, events
        Visits at risk and events of any outcome at each time [visits].
    survival
        Probability of no outcome yet just after each time [0-1].
    survival_se
        Greenwood standard error of ``survival`` with delayed entry [0-1].
    """

    times: np.ndarray
    incidence: np.ndarray
    se: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    survival: np.ndarray
    survival_se: np.ndarray

    @property
    def final(self) -> np.ndarray:
        """Incidence of each outcome at the last observed time [0-1]."""
        if not self.times.size:
            return np.zeros(self.incidence.shape[0])
        return self.incidence[:, -1]

    @property
    def final_se(self) -> np.ndarray:
        """Standard error of :attr:`final` [0-1]."""
        if not self.times.size:
            return np.zeros(self.incidence.shape[0])
        return self.se[:, -1]


def aalen_johansen(
    time: np.ndarray, status: np.ndarray, n_outcomes: int, entry: np.ndarray | None = None
) -> CumulativeIncidence:
    """Cumulative incidence of competing outcomes, right-censored and optionally left-truncated.

    Parameters
    ----------
    time
        Time of the outcome, or of censoring (age on the snapshot date) [days].
    status
        Outcome ``1..n_outcomes``, or 0 for a censored (still open) visit.
    n_outcomes
        Number of outcome codes.
    entry
        Delayed entry [days]: visit ``v`` is at risk at time ``t`` only if ``entry[v] < t <= time[v]``
        (``-1``: at risk from the start, including outcomes at time 0). ``None``: no truncation.

    Returns
    -------
    CumulativeIncidence

    Notes
    -----
    With :math:`Y(t)` visits at risk, :math:`d_k(t)` outcomes ``k`` and :math:`d(t) = \\sum_k d_k(t)`
    at time :math:`t`, and :math:`S(t-)` the all-outcome survival just before :math:`t`,

    .. math:: F_k(t) = \\sum_{s \\le t} S(s-) \\, d_k(s) / Y(s).

    The variance is the delta-method (Greenwood-type) estimate of Marubini & Valsecchi (1995), the
    one statsmodels uses:

    .. math:: \\mathrm{Var} F_k(t) = \\sum_{s \\le t} [F_k(t) - F_k(s)]^2 \\frac{d(s)}{Y(s)(Y(s) - d(s))}
              + \\sum_{s \\le t} S(s-)^2 \\frac{d_k(s)(Y(s) - d_k(s))}{Y(s)^3}
              - 2 \\sum_{s \\le t} [F_k(t) - F_k(s)] S(s-) \\frac{d_k(s)}{Y(s)^2}.

    Delayed entry only changes :math:`Y(t)` (Andersen, Borgan, Gill & Keiding 1993, ch. III.3).
    """
    time = np.asarray(time, dtype=float)
    status = np.asarray(status, dtype=np.int64)
    if time.shape != status.shape:
        raise ValueError("time and status must have the same length")
    if not time.size:
        empty = np.zeros((n_outcomes, 0))
        z = np.zeros(0)
        return CumulativeIncidence(z, empty, empty.copy(), z, z, z, z)
    times, inv = np.unique(time, return_inverse=True)
    m = times.size
    # exits (events or censoring) at each time, and entries: a visit with entry e joins the risk
    # set of every time strictly greater than e
    leaving = np.bincount(inv, minlength=m).astype(float)
    out_before = np.concatenate([[0.0], np.cumsum(leaving)[:-1]])
    if entry is None:
        joined = np.full(m, float(time.size))
    else:
        e = np.asarray(entry, dtype=float)
        joined = np.searchsorted(np.sort(e), times, side="left").astype(float)
    at_risk = joined - out_before
    d_k = np.zeros((n_outcomes, m))
    for k in range(n_outcomes):
        sel = status == k + 1
        if sel.any():
            d_k[k] = np.bincount(inv[sel], minlength=m)
    d = d_k.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, d / at_risk, 0.0)
        surv = np.cumprod(1.0 - hazard)
        s_before = np.concatenate([[1.0], surv[:-1]])
        frac = np.where(at_risk > 0, d_k / at_risk, 0.0)
        inc = np.cumsum(s_before * frac, axis=1)
        # variance terms as cumulative sums, evaluated at every time t
        ra = np.where((at_risk > 0) & (at_risk > d), d / (at_risk * (at_risk - d)), 0.0)
        var = inc**2 * np.cumsum(ra) - 2 * inc * np.cumsum(inc * ra, axis=1) + np.cumsum(inc**2 * ra, axis=1)
        var += np.cumsum(np.where(at_risk > 0, s_before**2 * (at_risk - d_k) * d_k / at_risk**3, 0.0), axis=1)
        rb = np.where(at_risk > 0, s_before * d_k / at_risk**2, 0.0)
        var += -2 * inc * np.cumsum(rb, axis=1) + 2 * np.cumsum(inc * rb, axis=1)
    se = np.sqrt(np.maximum(var, 0.0))
    surv_se = surv * np.sqrt(np.cumsum(ra))  # Greenwood
    return CumulativeIncidence(times, inc, se, at_risk, d, surv, surv_se)


@dataclass(frozen=True)
class FollowUpCheck:
    """Can the data tell how many visits never reach an outcome (the plateau of the incidence)?

    Attributes
    ----------
    identified
        True when the decisions have died out before the end of follow-up.
    last_decision_days
        Longest observed time to an outcome [days].
    follow_up_days
        Longest time with at least ``min_at_risk`` visits still observed [days].
    late_share
        Share of the decided mass that fell in the last fifth of the follow-up window [0-1].
    at_risk_late
        Visits still at risk at the start of that last fifth [visits].
    reason
        Why the plateau is not identified (empty when it is).
    """

    identified: bool
    last_decision_days: float
    follow_up_days: float
    late_share: float
    at_risk_late: float
    reason: str = ""


def follow_up_check(
    ci: CumulativeIncidence,
    *,
    min_at_risk: int = 10,
    late_fraction: float = 0.2,
    max_late_share: float = 0.01,
) -> FollowUpCheck:
    """Judge whether follow-up is long enough for the incidence to have reached its plateau.

    Parameters
    ----------
    ci
        The fitted incidence.
    min_at_risk
        Visits that must still be observed for a time to count as followed up [visits].
    late_fraction
        The last part of the follow-up window inspected [0-1].
    max_late_share
        Largest share of the decided mass allowed in that last part [0-1].

    Notes
    -----
    The estimate :math:`F(\\tau)` of the share that ever decides is unbiased only if few decisions
    happen after :math:`\\tau`, the end of follow-up. That cannot be seen directly, but the rate
    at which decisions still arrive near :math:`\\tau` can: when less than ``max_late_share`` of the
    decided mass arrived in :math:`[(1 - f)\\tau, \\tau]` while at least ``min_at_risk`` visits were
    watched through that window, the hazard has died out (the idea behind Maller & Zhou's test for
    sufficient follow-up, 1996, ch. 4, with a threshold that does not shrink with the sample size).
    """
    if not ci.times.size or ci.events.sum() == 0:
        return FollowUpCheck(False, 0.0, 0.0, 1.0, 0.0, "no decisions observed")
    decided = ci.incidence.sum(axis=0)
    last = float(ci.times[ci.events > 0].max())
    watched = ci.times[ci.at_risk >= min_at_risk]
    if not watched.size:
        return FollowUpCheck(
            False,
            last,
            0.0,
            1.0,
            float(ci.at_risk.max()),
            f"fewer than {min_at_risk} visits observed at any time",
        )
    tau = float(watched.max())
    start = (1.0 - late_fraction) * tau
    total = float(decided[-1])
    before = float(decided[ci.times < start][-1]) if (ci.times < start).any() else 0.0
    late = (float(decided[ci.times <= tau][-1]) - before) / total if total > 0 else 1.0
    # decisions after tau (seen in fewer than min_at_risk visits) count as late too
    late += (total - float(decided[ci.times <= tau][-1])) / total if total > 0 else 0.0
    risk_late = float(ci.at_risk[ci.times >= start][0]) if (ci.times >= start).any() else 0.0
    ok = late <= max_late_share and risk_late >= min_at_risk
    reason = (
        ""
        if ok
        else f"{late:.0%} of the decisions arrived in the last {late_fraction:.0%} of {tau:.0f} days of follow-up"
    )
    return FollowUpCheck(bool(ok), last, tau, float(late), risk_late, reason)
