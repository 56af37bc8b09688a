r"""Conversion drift: a trend of the win probability over creation cohorts, censoring respected.

The calibration (:mod:`.calibration`) pools every cohort of deals into one set of transition
probabilities. When conversion drifts (recent cohorts win less, or more, than older ones), the
pooled estimate credits the deals open today with the conversion of the older cohorts that dominate
the decided history. This module estimates a linear trend of the logit of winning in creation date
and says whether the data identify it; the simulation then moves each conversion cohort's
progress odds along the trend (and, with parameter uncertainty, draws the slope per trial from its
standard error, so the bands widen when the drift is uncertain).

Estimate (``pipeline.conversion_drift``):

- every deal from its first stage entry, censoring and left truncation respected: a Cox model of
  the cause-specific hazard of *winning* (lost deals and open deals censored, a deal engaged before
  the export's window enters the risk set late), :math:`h_w(s \mid t) = h_0(s)\, e^{\beta t}` with
  :math:`s` the deal's age and :math:`t` its creation date [years] (statsmodels ``PHReg``,
  Breslow ties). Recent cohorts inform the slope through their early hazard, before any of them
  could be decided, which a comparison of cohorts at a common age cannot use;
- the standard error of :math:`\hat\beta` is the larger of the model's and the cluster-robust
  (sandwich over calendar-month creation cohorts, small-sample factor :math:`G/(G-1)`): months that
  scatter beyond a smooth trend make the slope less certain, never more;
- 'auto' uses the trend only when won deals come from at least :data:`MIN_COHORTS` monthly
  cohorts and the slope is significant at the 5 % level (:math:`|\hat\beta| / \mathrm{se} \ge
  1.96`); otherwise the conversion is constant, as without drift, and the diagnostic says why.
  'fit' uses it whenever it can be fitted (the per-trial draws then carry its whole uncertainty).

How it is applied: with the win odds read as proportional to the win hazard (exact when the
competing hazards share their shape), a cohort created at :math:`t` gets a logit shift
:math:`\beta (\min(t, t_{as\,of}) - t_0)` of its win probability from entry, through the
progress-odds tilt of :mod:`.uncertainty`. :math:`t_0` is the creation date the pooled calibration
stands for: its hazard of winning at age :math:`s` is the risk set's average, so :math:`t_0` is the
risk sets' mean creation date averaged over the won deals' ages. The drift is carried up to the
snapshot, not extrapolated into the horizon (the history cannot say whether it goes on). Open deals
form one cohort at their mean creation date; new deals are created after the snapshot and get the
snapshot's shift. With parameter uncertainty each trial draws its slope from
:math:`N(\hat\beta, \mathrm{se}^2)`, so the bands widen when the drift is uncertain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DRIFT_MODES = ("auto", "fit", "none")
MIN_COHORTS = 4  # monthly cohorts a two-parameter trend needs to leave two degrees of freedom
Z_DETECT = 1.96  # two-sided 5 % test of "no drift"
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class ConversionDrift:
    """A fitted trend of the logit win probability in creation date (or none).

    Attributes
    ----------
    used
        The simulation applies the trend.
    slope, slope_se
        :math:`\\hat\\beta` and its standard error [log hazard ratio, read as logit, per year]; 0
        when not fitted.
    reference
        :math:`t_0`, the creation date the pooled calibration is read at (``None``: not fitted).
    cohorts, deals
        Monthly creation cohorts with won deals, and deals in the fit.
    dispersion
        Cluster-robust over model variance of the slope (1: the months scatter as the model says).
    diagnostic
        Plain-language statement of what was estimated and used.
    """

    used: bool = False
    slope: float = 0.0
    slope_se: float = 0.0
    reference: pd.Timestamp | None = None
    cohorts: int = 0
    deals: int = 0
    dispersion: float = 1.0
    diagnostic: str = (
        "conversion drift: off (pipeline.conversion_drift: none); conversion constant over cohorts"
    )

    def years(self, date: pd.Timestamp) -> float:
        """Years from the reference date to ``date`` (0 without a reference) [years]."""
        if self.reference is None:
            return 0.0
        return (pd.Timestamp(date) - self.reference).days / DAYS_PER_YEAR

    def shift(self, date: pd.Timestamp) -> float:
        """Logit shift of the win probability of a cohort created on ``date`` (0 when not used) [logit]."""
        return self.slope * self.years(date) if self.used else 0.0

    def shift_se(self, date: pd.Timestamp) -> float:
        """Standard error of :meth:`shift` from the slope's uncertainty [logit]."""
        return abs(self.slope_se * self.years(date)) if self.used else 0.0

    def summary(self) -> dict[str, float | int | str]:
        """Diagnostics for the calibration summary."""
        return {
            "conversion_drift_used": int(self.used),
            "conversion_drift_logit_per_year": float(self.slope),
            "conversion_drift_se": float(self.slope_se),
            "conversion_drift_reference": "" if self.reference is None else str(self.reference.date()),
            "conversion_drift_cohorts": int(self.cohorts),
            "conversion_drift_dispersion": float(self.dispersion),
            "conversion_drift": self.diagnostic,
        }


def estimate_conversion_drift(deals: pd.DataFrame, as_of: pd.Timestamp, mode: str) -> ConversionDrift:
    """Fit and test the trend of conversion over creation cohorts (see the module docstring).

    Parameters
    ----------
    deals
        One row per deal from its first stage entry: ``start`` (date), ``time`` [days], ``status``
        (1 won, 2 lost, 0 open), ``entry`` (delayed entry [days], -1 none).
    as_of
        Snapshot date.
    mode
        'auto' (fit; use when identified and significant), 'fit' (use whenever identified, however
        uncertain: the per-trial slope draws carry the uncertainty) or 'none'.

    Returns
    -------
    ConversionDrift
    """
    if mode == "none":
        return ConversionDrift()

    def constant(why: str, **kw: float | int) -> ConversionDrift:
        return ConversionDrift(
            diagnostic=f"conversion drift: not used ({why}); conversion constant over cohorts", **kw
        )

    status = deals["status"].to_numpy(np.int64)
    won = (status == 1).astype(np.int64)
    if won.sum() < MIN_COHORTS:
        return constant("too few won deals")
    start = pd.to_datetime(deals["start"])
    month = start.dt.to_period("M")
    wins = pd.Series(won.astype(float)).groupby(month.to_numpy()).sum()
    cohorts = int((wins > 0).sum())
    if cohorts < MIN_COHORTS:
        return constant(
            f"won deals in {cohorts} monthly creation cohort(s); a trend needs {MIN_COHORTS}", cohorts=cohorts
        )
    from statsmodels.duration.hazard_regression import PHReg

    years = ((start - start.min()).dt.days / DAYS_PER_YEAR).to_numpy(float)
    # day 0 outcomes need a risk set that opens before them: shift the clock by one day
    time = deals["time"].to_numpy(float) + 1.0
    entry = np.minimum(np.maximum(deals["entry"].to_numpy(float), -1.0) + 1.0, time - 0.5)
    x = years - years.mean()
    model = PHReg(time, x[:, None], status=won, entry=entry, ties="breslow")
    naive = model.fit(disp=0)
    slope = float(naive.params[0])
    # cluster-robust (sandwich) variance over creation months from the score residuals; a deal
    # censored after the last event has no residual (statsmodels gives nan) and contributes none
    score = np.nan_to_num(np.asarray(naive.score_residuals, float)[:, 0])
    per_month = np.bincount(pd.factorize(month)[0], weights=score)
    bread = float(naive.cov_params()[0, 0])
    n_groups = per_month.size
    robust_var = bread**2 * float(np.sum(per_month**2)) * n_groups / max(n_groups - 1, 1)
    # never more certain than either the model or the creation-month clusters say (cohorts that
    # scatter beyond the model make the slope less certain)
    se = float(np.sqrt(max(bread, robust_var)))
    dispersion = robust_var / bread if bread > 0 else 1.0
    # the pooled calibration's hazard of winning at age s is the risk set's average; read it as the
    # hazard of the risk set's mean creation date, averaged over the won deals' ages
    order_t, order_e = np.argsort(time), np.argsort(entry)
    cum_t = np.concatenate([[0.0], np.cumsum(x[order_t])])
    cum_e = np.concatenate([[0.0], np.cumsum(x[order_e])])
    s = time[won == 1]
    n_in = np.searchsorted(entry[order_e], s, side="left")
    n_out = np.searchsorted(time[order_t], s, side="left")
    at_risk = n_in - n_out
    ok = at_risk > 0
    x_ref = float(np.mean((cum_e[n_in] - cum_t[n_out])[ok] / at_risk[ok])) if ok.any() else 0.0
    reference = (start.min() + pd.Timedelta(days=(x_ref + years.mean()) * DAYS_PER_YEAR)).normalize()
    z = slope / se if se > 0 else 0.0
    used = bool(np.isfinite(z) and (abs(z) >= Z_DETECT or mode == "fit"))
    what = (
        f"log hazard ratio of winning per year of creation date, {len(deals)} deals in {cohorts} monthly cohorts "
        f"with wins: {slope:+.3f} ± {se:.3f} (z = {z:+.2f}, cluster/model variance ratio {dispersion:.2f}), "
        f"pooled calibration read at {reference.date()}"
    )
    if used:
        diagnostic = (
            f"conversion drift: used ({what}); each cohort's win odds move along it up to the snapshot, "
            "the slope drawn per trial from its standard error"
        )
    else:
        diagnostic = (
            f"conversion drift: not used ({what}; not significant at 5 %); conversion constant over cohorts"
        )
    log.info("pipeline calibration: %s", diagnostic)
    return ConversionDrift(
        used=used,
        slope=slope,
        slope_se=se,
        reference=reference,
        cohorts=cohorts,
        deals=len(deals),
        dispersion=dispersion,
        diagnostic=diagnostic,
    )
