"""Parameter uncertainty and over-dispersion of the pipeline model, estimated from history.

The point calibration (:mod:`.calibration`) gives one transition matrix, one creation rate per rep
and one pool of deal sizes. Real quarters scatter far more than a simulation of those fixed
parameters does: the parameters are estimated from finite (and censored) history, and the world
moves between quarters. This module estimates both from the same history and draws, for every
simulated trial, its own parameters:

============================  =========================================================================
component                     per trial
============================  =========================================================================
undecided share               :math:`\\nu^{(t)}_i \\sim \\mathrm{Beta}(\\kappa^\\nu_i \\hat\\nu_i, \\kappa^\\nu_i (1 - \\hat\\nu_i))`
exits among the decided        :math:`q^{(t)}_{i\\cdot} \\sim \\mathrm{Dirichlet}(n_i \\hat q_{i\\cdot})`, :math:`P^{(t)}_{ij} = (1 - \\nu^{(t)}_i) q^{(t)}_{ij}`
rep creation rate             :math:`\\lambda^{(t)}_r = \\hat\\lambda_r G_{tr}`, :math:`G_{tr} \\sim \\Gamma(a_r, 1/a_r)`
company creation level        :math:`L_t \\sim \\Gamma(K_w/\\phi_c, \\phi_c/K_w)`
company shock, quarter q      :math:`C_{tq} \\sim \\Gamma(1/\\phi_c, \\phi_c)`
rep shock, quarter q          :math:`Z_{trq} \\sim \\Gamma(1/\\phi_r, \\phi_r)`
conversion, cohort c          :math:`\\delta_{tc} \\sim N(0, \\tau_c^2)` plus a level :math:`N(0, \\tau_c^2/K_c)`
rep conversion                :math:`\\rho_{tr} \\sim N(\\hat\\rho_r, v_r)` (empirical Bayes)
creation growth               :math:`g_t \\sim N(\\hat g, \\mathrm{se}_g^2)` (quasi-Poisson fit; with >= 24 months)
deal sizes                    a bootstrap resample of each size group's won values
============================  =========================================================================

New deals of rep ``r`` created in horizon quarter ``q`` of trial ``t`` arrive at
:math:`\\lambda^{(t)}_r L_t C_{tq} Z_{trq}` (a negative-binomial count given the parameters). A
conversion shock multiplies the odds of every *progress* exit (won, or a later open stage) by
:math:`e^{c(\\delta + \\rho)}`, with ``c`` chosen so that the win probability from entry moves by
:math:`\\delta + \\rho` on the logit scale. Open deals form cohort 0, new deals of horizon quarter
``q`` cohort ``q + 1``.

How each figure is estimated (numbers in the calibration's diagnostics):

- :math:`n_i`: the exits seen from stage ``i`` (a Dirichlet over counts: the split among decided
  exits); :math:`\\kappa^\\nu_i = \\hat\\nu(1-\\hat\\nu)/\\mathrm{se}^2` with the Greenwood standard error of
  the survival at the last decision: the share that never decides is only as certain as the number of
  visits watched past that time, so open deals widen the posterior instead of counting as outcomes.
- :math:`\\phi_c, \\phi_r`: method of moments on the counts of deals created by rep and 13-week
  block (4-week blocks, read as persistent over a quarter, when the history has fewer than four
  blocks): :math:`n_{rk} \\sim \\mathrm{Poisson}(\\mu_{rk} C_k Z_{rk})`.
- :math:`a_r = 1/(1/n_r + \\phi_r/K_w)`: Gamma posterior of a rate counted over :math:`K_w`
  quarters of the rate window with :math:`n_r` deals (Poisson plus rep shocks).
- :math:`\\tau_c^2`: DerSimonian-Laird between-cohort variance of the logit probability of winning
  within a common age (the age by which three quarters of the decisions happen) of the creation
  cohorts old enough to have reached it; :math:`\\tau_r^2` the same across reps, and
  :math:`\\hat\\rho_r, v_r` the normal-normal posterior of each rep's effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SHOCK_WEEKS = 13  # shocks are drawn per quarter-long block of the horizon
FALLBACK_WEEKS = 4
MIN_BLOCKS = 4  # 13-week blocks needed to estimate the dispersion at quarter granularity
MIN_GROUPS = 3  # cohorts (or reps) needed for a between-group variance


@dataclass(frozen=True)
class ParameterUncertainty:
    """Posterior and over-dispersion figures of a calibration (see the module docstring).

    Attributes
    ----------
    exit_concentration
        :math:`n_i` per open stage: exits seen, the concentration of the split among decided exits.
    undecided_concentration
        :math:`\\kappa^\\nu_i` per open stage (``inf``: no undecided share, or no variance).
    rate_shape
        :math:`a_r` per rep (``calibration.rep_ids`` order); ``inf``: no rate uncertainty (no deals).
    level_shape
        Shape of the company creation level :math:`L_t` (``inf``: none).
    creation_company_var, creation_rep_var
        :math:`\\phi_c, \\phi_r` [-] (variance of a mean-1 multiplier per quarter).
    conversion_cohort_var, conversion_level_var
        :math:`\\tau_c^2` and :math:`\\tau_c^2/K_c` [logit^2].
    rep_logit_mean, rep_logit_var
        :math:`\\hat\\rho_r, v_r` per rep [logit, logit^2].
    rep_logit_prior_var
        :math:`\\tau^2`, the between-rep variance of conversion: the effect of a rep with no history
        of his own (a hire) is drawn from :math:`N(0, \\tau^2)` [logit^2].
    tilt_scale
        :math:`c`: the progress-odds exponent per unit logit shift of the win probability from entry.
    block_weeks
        Length of the history blocks the dispersions were measured on [weeks].
    creation_blocks, conversion_cohorts, rep_groups
        How many blocks, cohorts and reps entered the estimates.
    notes
        Plain-language notes on what could not be estimated.
    """

    exit_concentration: np.ndarray
    rate_shape: np.ndarray
    undecided_concentration: np.ndarray = field(default_factory=lambda: np.zeros(0))
    level_shape: float = np.inf
    creation_company_var: float = 0.0
    creation_rep_var: float = 0.0
    conversion_cohort_var: float = 0.0
    conversion_level_var: float = 0.0
    rep_logit_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rep_logit_var: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rep_logit_prior_var: float = 0.0
    tilt_scale: float = 1.0
    block_weeks: int = SHOCK_WEEKS
    creation_blocks: int = 0
    conversion_cohorts: int = 0
    rep_groups: int = 0
    notes: tuple[str, ...] = ()

    def for_roster(self, old_ids: np.ndarray, new_ids: np.ndarray) -> ParameterUncertainty:
        """The per-rep figures re-keyed from the calibrated reps ``old_ids`` to a plan's roster.

        A rep of both keeps his own figures; a rep with no history (a planned hire) gets the rate
        shape of the median calibrated rep (as uncertain as a typical rep's rate) and a conversion
        effect drawn from the between-rep prior :math:`N(0, \\tau^2)`.
        """
        old = [str(r) for r in old_ids]
        pos = {r: k for k, r in enumerate(old)}
        idx = np.array([pos.get(str(r), -1) for r in new_ids], dtype=np.int64)
        known = idx >= 0

        def pick(x: np.ndarray, fill: float) -> np.ndarray:
            x = np.asarray(x, float)
            if x.size != len(old):  # not estimated per rep
                return x
            out = np.full(len(idx), fill)
            out[known] = x[idx[known]]
            return out

        finite = np.asarray(self.rate_shape, float)
        finite = finite[np.isfinite(finite)]
        typical_shape = float(np.median(finite)) if finite.size else np.inf
        return replace(
            self,
            rate_shape=pick(self.rate_shape, typical_shape),
            rep_logit_mean=pick(self.rep_logit_mean, 0.0),
            rep_logit_var=pick(self.rep_logit_var, self.rep_logit_prior_var),
        )

    def summary(self) -> dict[str, float | int | str]:
        """Headline figures (for diagnostics and reports)."""
        finite = self.exit_concentration[np.isfinite(self.exit_concentration)]
        return {
            "uncertainty_exit_concentration_min": float(finite.min()) if finite.size else float("inf"),
            "uncertainty_undecided_concentration_min": float(np.min(self.undecided_concentration))
            if self.undecided_concentration.size
            else float("inf"),
            "uncertainty_creation_company_cv": float(np.sqrt(self.creation_company_var)),
            "uncertainty_creation_rep_cv": float(np.sqrt(self.creation_rep_var)),
            "uncertainty_conversion_cohort_sd_logit": float(np.sqrt(self.conversion_cohort_var)),
            "uncertainty_rep_conversion_sd_logit": float(np.sqrt(np.mean(self.rep_logit_var)))
            if self.rep_logit_var.size
            else 0.0,
            "uncertainty_block_weeks": int(self.block_weeks),
            "uncertainty_creation_blocks": int(self.creation_blocks),
            "uncertainty_conversion_cohorts": int(self.conversion_cohorts),
            "uncertainty_notes": " ".join(self.notes),
        }


# --------------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------------


def dersimonian_laird(y: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Between-group variance and pooled mean of estimates ``y`` with sampling variances ``v``.

    Returns
    -------
    tau2, mean
        :math:`\\hat\\tau^2 = \\max(0, (Q - (k-1)) / (\\sum w - \\sum w^2 / \\sum w))`, ``w = 1/v``,
        :math:`Q = \\sum w (y - \\bar y_w)^2` (DerSimonian & Laird 1986), and the random-effects mean
        weighted by :math:`1/(v + \\hat\\tau^2)`.
    """
    y = np.asarray(y, float)
    v = np.asarray(v, float)
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    y, v = y[ok], v[ok]
    if y.size < 2:
        return 0.0, float(y.mean()) if y.size else float("nan")
    w = 1.0 / v
    ybar = float(np.sum(w * y) / w.sum())
    q = float(np.sum(w * (y - ybar) ** 2))
    denom = float(w.sum() - np.sum(w**2) / w.sum())
    tau2 = max(0.0, (q - (y.size - 1)) / denom) if denom > 0 else 0.0
    ws = 1.0 / (v + tau2)
    return tau2, float(np.sum(ws * y) / ws.sum())


def creation_dispersion(counts: np.ndarray, exposure: np.ndarray) -> tuple[float, float]:
    """Method-of-moments company and rep over-dispersion of creation counts.

    Parameters
    ----------
    counts
        Deals created ``n[r, k]`` by rep and block [deals].
    exposure
        Seasonal exposure ``e[r, k]`` of each rep in each block [weeks].

    Returns
    -------
    phi_company, phi_rep
        Variances of the mean-1 multipliers :math:`C_k` and :math:`Z_{rk}` [-], clipped at 0.

    Notes
    -----
    With :math:`\\hat\\lambda_r = \\sum_k n_{rk} / \\sum_k e_{rk}`, :math:`\\mu_{rk} = \\hat\\lambda_r e_{rk}`,
    :math:`M_k = \\sum_r \\mu_{rk}`, :math:`N_k = \\sum_r n_{rk}` and :math:`\\hat C_k = N_k / M_k`:

    .. math:: \\hat\\phi_r = \\frac{\\frac{RK}{(R-1)(K-1)} \\sum_{rk} (n_{rk} - \\mu_{rk}\\hat C_k)^2 - \\sum_{rk} \\mu_{rk}\\hat C_k}
              {\\sum_{rk} (\\mu_{rk} \\hat C_k)^2}, \\qquad
              \\hat\\phi_c = \\frac{\\frac{K}{K-1} \\sum_k (N_k - M_k)^2 - \\sum_k N_k - \\hat\\phi_r \\sum_{rk} \\mu_{rk}^2}
              {\\sum_k M_k^2}

    (the factors undo the degrees of freedom spent on the rates and the block levels; on synthetic
    counts the estimates come out about 10% low, from the noise of the estimated rates in the
    denominators, a test checks the size of this).
    """
    n = np.asarray(counts, float)
    e = np.asarray(exposure, float)
    k = n.shape[1]
    active = (n.sum(axis=1) > 0) & (e.sum(axis=1) > 0)
    n, e = n[active], e[active]
    if k < 2 or not n.size:
        return 0.0, 0.0
    lam = n.sum(axis=1) / e.sum(axis=1)
    mu = lam[:, None] * e
    M = mu.sum(axis=0)
    N = n.sum(axis=0)
    keep = M > 0
    if keep.sum() < 2:
        return 0.0, 0.0
    C = np.where(keep, N / np.where(keep, M, 1.0), 1.0)
    mc = mu * C[None, :]
    corr = k / (k - 1)
    corr_r = corr * n.shape[0] / max(n.shape[0] - 1, 1)
    den_r = float(np.sum(mc[:, keep] ** 2))
    num_r = corr_r * float(np.sum(((n - mc) ** 2)[:, keep])) - float(np.sum(mc[:, keep]))
    phi_r = num_r / den_r if den_r > 0 else 0.0
    phi_r = max(0.0, phi_r)
    den_c = float(np.sum(M[keep] ** 2))
    num_c = corr * float(np.sum(((N - M) ** 2)[keep])) - float(
        np.sum((N + phi_r * np.sum(mu**2, axis=0))[keep])
    )
    phi_c = max(0.0, num_c / den_c) if den_c > 0 else 0.0
    return phi_c, phi_r


def logit_estimate(p: float, se: float) -> tuple[float, float]:
    """Logit of a proportion and its delta-method variance (``nan`` when ``p`` is 0 or 1)."""
    if not (0.0 < p < 1.0) or not se > 0:
        return float("nan"), float("nan")
    return float(np.log(p / (1 - p))), float((se / (p * (1 - p))) ** 2)


def shrink_rep_effects(y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Empirical-Bayes rep effects around the pooled mean (normal-normal).

    Returns
    -------
    mean, var, tau2, groups
        Posterior mean :math:`B_r (y_r - \\bar y)` and variance :math:`B_r v_r` of each rep's logit
        effect, :math:`B_r = \\tau^2/(\\tau^2 + v_r)`; reps without an estimate get 0 and
        :math:`\\tau^2`. ``tau2`` is the DerSimonian-Laird between-rep variance, ``groups`` the number
        of reps with an estimate.
    """
    y = np.asarray(y, float)
    v = np.asarray(v, float)
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    if ok.sum() < MIN_GROUPS:
        return np.zeros(y.size), np.zeros(y.size), 0.0, int(ok.sum())
    tau2, mean = dersimonian_laird(y[ok], v[ok])
    post_mean = np.zeros(y.size)
    post_var = np.full(y.size, tau2)
    if tau2 > 0:
        b = tau2 / (tau2 + v[ok])
        post_mean[ok] = b * (y[ok] - mean)
        post_var[ok] = b * v[ok]
    else:
        post_var[:] = 0.0
    return post_mean, post_var, tau2, int(ok.sum())


def gamma_shape(var: float) -> float:
    """Shape of a mean-1 Gamma multiplier with variance ``var`` (``inf``: a constant 1)."""
    return 1.0 / var if var > 1e-12 else np.inf


# --------------------------------------------------------------------------------------------
# per-block draws (compiled arrays and the draw itself)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UncertaintyInputs:
    """The arrays a simulation block needs to draw its trials' parameters (picklable).

    ``alpha[i, j]``: Dirichlet parameters of open stage ``i`` over its decided destinations ``j`` (0
    off the support and for the never-decided class); ``undecided[i]``: the Beta parameters ``(a, b)``
    of its never-decided share (``(0, 1)``: none); ``success[i, j]``: destination ``j`` is progress from
    ``i`` (tilted by conversion shocks). The other fields mirror :class:`ParameterUncertainty` in the
    simulation's rep order.
    """

    alpha: np.ndarray
    undecided: np.ndarray
    success: np.ndarray
    rate_shape: np.ndarray
    level_shape: float
    company_shape: float
    rep_shape: float
    cohort_sd: float
    level_sd: float
    rep_mean: np.ndarray
    rep_sd: np.ndarray
    tilt_scale: float
    bootstrap_sizes: bool = True
    trend_sd: float = 0.0
    drift_slope: float = 0.0
    drift_sd: float = 0.0
    cohort_years: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class BlockParameters:
    """One block's parameter draws: ``n`` trials.

    Attributes
    ----------
    dest_prob
        ``(n, n_open, n_dest)`` exit probabilities of each trial (or ``(1, ...)``: the point values).
    cohort_odds, rep_odds
        ``(n, cohorts)`` and ``(n, reps)`` multipliers of progress odds; a token's multiplier is
        ``cohort_odds[t, c] * rep_odds[t, r]``.
    creation
        ``(n, reps, weeks)`` multipliers of the creation rate (``None``: 1).
    size_key
        Key of the block's bootstrap of the size pool (``None``: no bootstrap): trial ``t``'s resample
        holds, at pool position ``p`` of group ``g``, the value at :func:`bootstrap_position`.
    """

    dest_prob: np.ndarray
    cohort_odds: np.ndarray
    rep_odds: np.ndarray
    creation: np.ndarray | None
    size_key: int | None
    draws: int = 0


def point_parameters(
    dest_prob: np.ndarray, n: int, n_cohorts: int, n_reps: int, cohort_odds: np.ndarray | None = None
) -> BlockParameters:
    """The point calibration in :class:`BlockParameters` form (every trial shares it); ``cohort_odds``:
    each cohort's progress-odds multiplier (the point conversion drift; ``None``: 1)."""
    odds = np.ones((n, n_cohorts)) if cohort_odds is None else np.broadcast_to(cohort_odds, (n, n_cohorts))
    return BlockParameters(
        dest_prob=dest_prob[None, :, :],
        cohort_odds=odds,
        rep_odds=np.ones((n, n_reps)),
        creation=None,
        size_key=None,
    )


def _gamma_mean_one(rng: np.random.Generator, shape: np.ndarray | float, size: tuple[int, ...]) -> np.ndarray:
    """Mean-1 Gamma multipliers; an infinite shape gives exactly 1 (no draw consumed)."""
    shape = np.broadcast_to(np.asarray(shape, float), size)
    out = np.ones(size)
    fin = np.isfinite(shape)
    if fin.any():
        s = shape[fin]
        out[fin] = rng.gamma(s, 1.0 / s)
    return out


def draw_block_parameters(
    unc: UncertaintyInputs,
    rng: np.random.Generator,
    n: int,
    *,
    n_cohorts: int,
    week_quarter: np.ndarray,
    n_quarters: int,
    size_offset: np.ndarray,
    size_count: np.ndarray,
    week_years: np.ndarray | None = None,
) -> BlockParameters:
    """Draw the parameters of ``n`` trials (the order of draws is fixed: results are reproducible).

    Parameters
    ----------
    unc
        Compiled uncertainty arrays.
    rng
        The block's parameter stream.
    n
        Trials in the block.
    n_cohorts
        1 (open deals) + horizon quarters.
    week_quarter
        Horizon quarter of each creation week.
    n_quarters
        Horizon quarters.
    size_offset, size_count
        Size groups in the pool.
    week_years
        Years from the creation rates' reference date to each creation week (for the trend's
        posterior: a trial's growth ``g ~ N(g_hat, trend_sd^2)`` moves week ``w`` by
        ``exp((g - g_hat) week_years[w])``).
    """
    n_open, n_dest = unc.alpha.shape
    R = unc.rate_shape.size
    # exit probabilities: the never-decided share (Beta), then the split among decided exits
    # (Dirichlet), both as normalised gammas
    g = np.zeros((n, n_open, n_dest))
    sup = unc.alpha > 0
    a = np.broadcast_to(unc.alpha, (n, n_open, n_dest))[:, sup]
    g[:, sup] = rng.gamma(a)
    dest_prob = g / g.sum(axis=2, keepdims=True)
    has = unc.undecided[:, 0] > 0
    if has.any():
        ga = rng.gamma(np.broadcast_to(unc.undecided[has, 0], (n, int(has.sum()))))
        gb = rng.gamma(np.broadcast_to(unc.undecided[has, 1], (n, int(has.sum()))))
        nu = ga / (ga + gb)
        dest_prob[:, has, :] *= (1.0 - nu)[:, :, None]
        dest_prob[:, has, n_dest - 1] = nu
    # creation: rep rate posterior, company level, company and rep shocks per horizon quarter
    rep_rate = _gamma_mean_one(rng, unc.rate_shape, (n, R))
    level = _gamma_mean_one(rng, unc.level_shape, (n, 1))
    company = _gamma_mean_one(rng, unc.company_shape, (n, max(n_quarters, 1)))
    rep_shock = _gamma_mean_one(rng, unc.rep_shape, (n, R, max(n_quarters, 1)))
    if week_quarter.size:
        creation = (
            (rep_rate * level)[:, :, None] * company[:, None, week_quarter] * rep_shock[:, :, week_quarter]
        )
    else:
        creation = None
    # conversion: cohort shocks and their common level, rep effects (progress odds multipliers)
    cohort = rng.standard_normal((n, n_cohorts)) * unc.cohort_sd + rng.standard_normal((n, 1)) * unc.level_sd
    if unc.drift_slope or unc.drift_sd:
        # conversion drift: the trial's slope [logit/year] times each cohort's years from the
        # reference (drawn only when a drift is used, so runs without one keep their streams)
        slope = unc.drift_slope + unc.drift_sd * rng.standard_normal((n, 1))
        cohort = cohort + slope * unc.cohort_years[None, :n_cohorts]
    rep = unc.rep_mean[None, :] + rng.standard_normal((n, R)) * unc.rep_sd[None, :]
    cohort_odds = np.exp(unc.tilt_scale * cohort)
    rep_odds = np.exp(unc.tilt_scale * rep)
    # deal sizes: a bootstrap resample of each group, per trial, drawn lazily from a counter-based
    # generator keyed by the block (only the positions a trial uses are ever computed)
    size_key = int(rng.integers(0, 2**63)) if unc.bootstrap_sizes and size_count.size else None
    return BlockParameters(dest_prob, cohort_odds, rep_odds, creation, size_key)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def bootstrap_position(
    key: int, trial: np.ndarray, position: np.ndarray, offset: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """Pool position that trial ``trial``'s bootstrap resample holds at ``position`` (group offset and size
    ``offset``, ``count``): ``offset + floor(h * count)``, ``h`` uniform on [0, 1) from SplitMix64 of
    ``key ^ (trial << 32 | position)`` (Steele, Lea & Flood 2014). For a fixed trial the positions of a
    group map to independent uniform draws of the group: a resample with replacement. The numba
    kernel computes the same bits."""
    with np.errstate(over="ignore"):
        x = np.uint64(key) ^ ((trial.astype(np.uint64) << np.uint64(32)) | position.astype(np.uint64))
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    h = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return offset + (h * count).astype(np.int64)


# --------------------------------------------------------------------------------------------
# estimation from history
# --------------------------------------------------------------------------------------------


def progress_mask(n_open: int, n_dest: int) -> np.ndarray:
    """``mask[i, j]``: destination ``j`` is progress from open stage ``i`` (a later stage, or won)."""
    mask = np.zeros((n_open, n_dest), bool)
    for i in range(n_open):
        mask[i, i + 1 : n_open + 1] = True
    return mask


def tilted_matrix(transition_matrix: np.ndarray, n_open: int, x: float) -> np.ndarray:
    """The jump chain with every open stage's progress odds multiplied by ``exp(x)`` (rows renormalised)."""
    P = np.asarray(transition_matrix, float)
    Q = P.copy()
    Q[:n_open] = np.where(progress_mask(n_open, P.shape[1]), P[:n_open] * np.exp(x), P[:n_open])
    Q[:n_open] /= Q[:n_open].sum(axis=1, keepdims=True)
    return Q


def tilt_scale(transition_matrix: np.ndarray, n_open: int, entry_stage: int) -> float:
    """Exponent ``c`` with ``d logit B(entry, won) / d(c x) = 1`` when progress odds are multiplied
    by ``exp(c x)``: a conversion shock of ``x`` logits moves the win probability from entry by ``x``.
    """
    from salesops_models.pipeline.markov import absorbing_chain

    P = np.asarray(transition_matrix, float)

    def logit_win(x: float) -> float:
        p = float(absorbing_chain(tilted_matrix(P, n_open, x), n_open).win_probability[entry_stage])
        return float(np.log(p / (1 - p))) if 0 < p < 1 else float("nan")

    h = 1e-4
    slope = (logit_win(h) - logit_win(-h)) / (2 * h)
    return float(1.0 / slope) if np.isfinite(slope) and slope > 1e-9 else 1.0


def _block_edges(first: pd.Timestamp, as_of: pd.Timestamp) -> tuple[list[pd.Timestamp], int]:
    """Edges (newest first) of quarter-long blocks ending at ``as_of``, or 4-week blocks when fewer
    than :data:`MIN_BLOCKS` quarters fit after ``first``."""
    for weeks in (SHOCK_WEEKS, FALLBACK_WEEKS):
        edges = [as_of]
        while edges[-1] - pd.Timedelta(weeks=weeks) >= first:
            edges.append(edges[-1] - pd.Timedelta(weeks=weeks))
        if len(edges) - 1 >= (MIN_BLOCKS if weeks == SHOCK_WEEKS else 2):
            return edges, weeks
    return edges, FALLBACK_WEEKS


def estimate_uncertainty(
    *,
    exit_concentration: np.ndarray,
    undecided_concentration: np.ndarray,
    transition_matrix: np.ndarray,
    n_open: int,
    entry_stage: int,
    rep_ids: np.ndarray,
    created: pd.DataFrame,
    exposure: Callable[[pd.Timestamp, pd.Timestamp], np.ndarray],
    rate_counts: np.ndarray,
    rate_weeks: float,
    deals: pd.DataFrame,
    first_date: pd.Timestamp,
    as_of: pd.Timestamp,
) -> ParameterUncertainty:
    """Estimate :class:`ParameterUncertainty` from history known on ``as_of``.

    Parameters
    ----------
    exit_concentration, undecided_concentration
        :math:`n_i` and :math:`\\kappa^\\nu_i` per open stage.
    transition_matrix, n_open, entry_stage
        The point chain (for the conversion tilt scale).
    rep_ids
        Reps in calibration order.
    created
        ``rep_id, created_date`` of deals created on or after ``first_date``.
    exposure
        ``exposure(start, end)``: each rep's seasonal exposure in ``(start, end]`` [weeks].
    rate_counts, rate_weeks
        Deals per rep in the creation-rate window and the window's length [deals, weeks].
    deals
        One row per deal from its first stage entry: ``start`` (date), ``time`` [days], ``status``
        (1 won, 2 lost, 0 open), ``entry`` (delayed entry [days], -1 none), ``rep_id``.
    first_date
        First day of usable history (the observed window start).
    as_of
        Snapshot date.
    """
    from salesops_models.pipeline.survival import aalen_johansen

    notes: list[str] = []
    edges, weeks = _block_edges(pd.Timestamp(first_date), pd.Timestamp(as_of))
    K = len(edges) - 1
    # ---- creation dispersion over blocks ---------------------------------------------------------
    phi_c = phi_r = 0.0
    if K >= 2:
        rid = {r: k for k, r in enumerate(rep_ids)}
        counts = np.zeros((len(rep_ids), K))
        expo = np.zeros((len(rep_ids), K))
        cd = created["created_date"]
        ri = created["rep_id"].astype(str).map(rid).to_numpy()
        for k in range(K):
            lo, hi = edges[k + 1], edges[k]
            sel = ((cd > lo) & (cd <= hi)).to_numpy() & ~pd.isna(ri)
            np.add.at(counts[:, k], ri[sel].astype(int), 1.0)
            expo[:, k] = exposure(lo, hi)
        phi_c, phi_r = creation_dispersion(counts, expo)
    else:
        notes.append(
            "too little history to measure how creation varies between quarters (fewer than two "
            f"{FALLBACK_WEEKS}-week blocks): creation shocks are left out and the bands are too narrow."
        )
    if weeks != SHOCK_WEEKS and K >= 2:
        notes.append(
            f"creation and conversion spread measured on {weeks}-week blocks (fewer than {MIN_BLOCKS} "
            "quarters of history) and applied as if they lasted a whole quarter."
        )
    k_w = max(rate_weeks / SHOCK_WEEKS, 1.0)
    n_r = np.asarray(rate_counts, float)
    with np.errstate(divide="ignore"):
        rate_shape = np.where(n_r > 0, 1.0 / (1.0 / np.maximum(n_r, 1e-12) + phi_r / k_w), np.inf)
    level_shape = gamma_shape(phi_c / k_w)
    # ---- conversion: cohorts with enough follow-up, and reps -------------------------------------
    tau_c = 0.0
    n_cohorts = 0
    rep_mean = np.zeros(len(rep_ids))
    rep_var = np.zeros(len(rep_ids))
    rep_prior_var = 0.0
    n_rep_groups = 0
    if len(deals) and (deals["status"] == 1).any():
        time = deals["time"].to_numpy(float)
        status = deals["status"].to_numpy(np.int64)
        entry = deals["entry"].to_numpy(float)
        overall = aalen_johansen(time, status, 2, entry)
        decided = overall.incidence.sum(axis=0)
        # cohorts are compared at a common age that each of them has reached: the age by which three
        # quarters of the decisions happen (later ages would leave too few cohorts to compare)
        age = float(overall.times[np.searchsorted(decided, 0.75 * decided[-1])]) if decided[-1] > 0 else 0.0
        y, v = [], []
        start = deals["start"]
        for k in range(K):
            lo, hi = edges[k + 1], edges[k]
            if (pd.Timestamp(as_of) - hi).days < age:
                continue
            sel = ((start > lo) & (start <= hi)).to_numpy()
            if sel.sum() < 20:
                continue
            ci = aalen_johansen(time[sel], status[sel], 2, entry[sel])
            m = int(np.searchsorted(ci.times, age, side="right")) - 1
            if m < 0:
                continue
            a, b = logit_estimate(float(ci.incidence[0, m]), float(ci.se[0, m]))
            y.append(a)
            v.append(b)
        if len(y) >= MIN_GROUPS:
            tau_c, _ = dersimonian_laird(np.array(y), np.array(v))
            n_cohorts = len(y)
        else:
            notes.append(
                f"only {len(y)} creation cohort(s) followed up for {age:.0f} days (75% of decisions): the "
                "spread of conversion between cohorts cannot be measured and is left out."
            )
        ys, vs = np.full(len(rep_ids), np.nan), np.full(len(rep_ids), np.nan)
        rep_of = deals["rep_id"].astype(str).to_numpy()
        for k, r in enumerate(rep_ids):
            sel = rep_of == r
            if sel.sum() >= 20:
                ci = aalen_johansen(time[sel], status[sel], 2, entry[sel])
                ys[k], vs[k] = logit_estimate(float(ci.final[0]), float(ci.final_se[0]))
        rep_mean, rep_var, rep_prior_var, n_rep_groups = shrink_rep_effects(ys, vs)
    return ParameterUncertainty(
        exit_concentration=np.asarray(exit_concentration, float),
        undecided_concentration=np.asarray(undecided_concentration, float),
        rate_shape=rate_shape,
        level_shape=level_shape,
        creation_company_var=phi_c,
        creation_rep_var=phi_r,
        conversion_cohort_var=tau_c,
        conversion_level_var=tau_c / max(n_cohorts, 1),
        rep_logit_mean=rep_mean,
        rep_logit_var=rep_var,
        rep_logit_prior_var=rep_prior_var,
        tilt_scale=tilt_scale(transition_matrix, n_open, entry_stage),
        block_weeks=weeks,
        creation_blocks=K,
        conversion_cohorts=n_cohorts,
        rep_groups=n_rep_groups,
        notes=tuple(notes),
    )
