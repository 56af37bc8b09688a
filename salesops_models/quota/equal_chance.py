"""Equal-chance quotas: one probability of making quota shared by every rep.

Each rep ``r`` has a distribution of attainable plan-year bookings ``B_r`` (parametric, Monte Carlo
samples from the pipeline model, or forecast quantiles). The quota of rep ``r`` at attainment
probability ``p`` is ``Q_r(p) = F_r^{-1}(1 - p)``, so ``P(B_r >= Q_r) = p`` for every rep. The
common ``p`` solves ``sum_r F_r^{-1}(1 - p) = T``; the sum is non-decreasing in ``1 - p``, so a
bracketing root finder (Brent) is safe.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import brentq

from salesops_models.errors import DataValidationError, InfeasibleError
from salesops_models.quota.allocation import QuotaResult, _result, fair_shares

log = logging.getLogger(__name__)

QUANTILE_COLUMNS = ("q05", "q10", "q25", "q50", "q75", "q90", "q95")


class BookingsDistribution(ABC):
    """Distribution of each rep's attainable plan-year bookings [currency/yr]."""

    rep_ids: pd.Index

    @abstractmethod
    def quantile(self, u: float) -> np.ndarray:
        """The ``u``-quantile of every rep's bookings, in ``rep_ids`` order [currency/yr]."""

    @abstractmethod
    def prob_at_least(self, quota: np.ndarray) -> np.ndarray:
        """``P(B_r >= quota_r)`` per rep [0-1]."""

    #: the range of ``u`` over which :meth:`quantile` is defined
    u_range: tuple[float, float] = (1e-9, 1 - 1e-9)

    def mean(self) -> np.ndarray:
        """Expected bookings per rep [currency/yr] (midpoint rule on 2,000 quantiles)."""
        u = (np.arange(2000) + 0.5) / 2000
        return np.mean([self.quantile(x) for x in u], axis=0)

    def p_attain(self, quotas: pd.Series) -> pd.Series:
        """``P(B_r >= Q_r)`` for the reps of ``quotas`` (index rep_id) [0-1]."""
        pos = self.reindex(quotas.index)
        full = self.quantile(0.5)
        full[pos] = quotas.to_numpy(float)
        return pd.Series(self.prob_at_least(full)[pos], index=quotas.index, name="p_attain")

    def reindex(self, rep_ids: pd.Index) -> np.ndarray:
        """Positions of ``rep_ids`` in this distribution; raise if any is missing."""
        pos = self.rep_ids.get_indexer(rep_ids)
        if (pos < 0).any():
            missing = list(rep_ids[pos < 0][:5])
            raise DataValidationError(
                "bookings distribution",
                [
                    f"no distribution for rep(s) {missing}; every quota-carrying rep needs one (rep_id column)."
                ],
            )
        return pos


class NormalBookings(BookingsDistribution):
    """Normal bookings ``B_r ~ N(mu_r, sigma_r^2)``.

    Notes
    -----
    ``Q_r(u) = mu_r + sigma_r Phi^{-1}(u)``; with a common ``z`` the target gives
    ``z = (T - sum mu) / sum sigma`` and ``p = 1 - Phi(z)`` in closed form.
    """

    def __init__(self, mean: pd.Series, sd: pd.Series):
        self.rep_ids = pd.Index(mean.index.astype(str), name="rep_id")
        self.mu = mean.to_numpy(float)
        self.sd = sd.reindex(mean.index).to_numpy(float)

    def quantile(self, u: float) -> np.ndarray:
        return self.mu + self.sd * stats.norm.ppf(u)

    def prob_at_least(self, quota: np.ndarray) -> np.ndarray:
        return stats.norm.sf(np.asarray(quota, float), self.mu, np.maximum(self.sd, 1e-12))

    def mean(self) -> np.ndarray:
        return self.mu.copy()


class LognormalBookings(BookingsDistribution):
    """Lognormal bookings with the given mean [currency/yr] and coefficient of variation.

    Notes
    -----
    ``s^2 = ln(1 + cv^2)``, ``m = ln(mean) - s^2/2``, ``Q_r(u) = exp(m_r + s_r Phi^{-1}(u))``.
    Positively skewed like real attainment (FIELD-NOTES 1.8).
    """

    def __init__(self, mean: pd.Series, cv: pd.Series | float):
        self.rep_ids = pd.Index(mean.index.astype(str), name="rep_id")
        mu = np.maximum(mean.to_numpy(float), 1e-9)
        cv_arr = cv.reindex(mean.index).to_numpy(float) if isinstance(cv, pd.Series) else np.full(len(mu), cv)
        self.s = np.sqrt(np.log1p(cv_arr**2))
        self.m = np.log(mu) - self.s**2 / 2
        self._mean = mean.to_numpy(float)

    def quantile(self, u: float) -> np.ndarray:
        return np.exp(self.m + self.s * stats.norm.ppf(u))

    def prob_at_least(self, quota: np.ndarray) -> np.ndarray:
        q = np.maximum(np.asarray(quota, float), 1e-300)
        return stats.norm.sf((np.log(q) - self.m) / np.maximum(self.s, 1e-12))

    def mean(self) -> np.ndarray:
        return self._mean.copy()


class SampleBookings(BookingsDistribution):
    """Monte Carlo samples of bookings per rep (the pipeline stage's ``rep_bookings_samples``).

    Parameters
    ----------
    samples
        Long table with columns ``trial``, ``rep_id``, ``bookings`` [currency/yr]; every rep must
        have the same trials.

    Notes
    -----
    ``Q_r(u)`` is the linear-interpolation sample quantile (``numpy.quantile`` default), continuous
    and non-decreasing in ``u``; ``P(B_r >= q)`` is the share of trials with ``bookings >= q``.
    """

    u_range = (0.0, 1.0)

    def __init__(self, samples: pd.DataFrame):
        missing = {"trial", "rep_id", "bookings"} - set(samples.columns)
        if missing:
            raise DataValidationError(
                "rep_bookings_samples",
                [f"missing column(s) {sorted(missing)}; expected trial, rep_id, bookings."],
            )
        wide = samples.pivot_table(index="trial", columns="rep_id", values="bookings", aggfunc="sum")
        if wide.isna().any().any():
            bad = list(wide.columns[wide.isna().any()][:5])
            raise DataValidationError(
                "rep_bookings_samples",
                [f"rep(s) {bad} lack some trials; every rep needs a value in every trial."],
            )
        self.rep_ids = pd.Index(wide.columns.astype(str), name="rep_id")
        self.sorted = np.sort(wide.to_numpy(float).T, axis=1)  # reps x trials
        self.n_trials = self.sorted.shape[1]

    def quantile(self, u: float) -> np.ndarray:
        pos = u * (self.n_trials - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, self.n_trials - 1)
        w = pos - lo
        return self.sorted[:, lo] * (1 - w) + self.sorted[:, hi] * w

    def prob_at_least(self, quota: np.ndarray) -> np.ndarray:
        q = np.asarray(quota, float)[:, None]
        return (self.sorted >= q - 1e-9 * np.maximum(1.0, np.abs(q))).mean(axis=1)

    def mean(self) -> np.ndarray:
        return self.sorted.mean(axis=1)


class QuantileBookings(BookingsDistribution):
    """Bookings known through a few quantiles per rep (a forecast's q05..q95).

    Parameters
    ----------
    table
        Index rep_id; columns named ``qNN`` (NN in percent) [currency/yr].

    Notes
    -----
    The quantile function is interpolated linearly in normal-score space: with
    ``z_k = Phi^{-1}(level_k)``, ``Q(u)`` is piecewise linear in ``z = Phi^{-1}(u)`` through the
    points ``(z_k, q_k)`` and extended linearly beyond the end points (normal-like tails). Values are
    floored at 0 (bookings are not negative).
    """

    def __init__(self, table: pd.DataFrame):
        cols = [c for c in table.columns if isinstance(c, str) and c.startswith("q") and c[1:].isdigit()]
        if len(cols) < 2:
            raise DataValidationError(
                "forecast quantiles", ["need at least two columns named qNN, e.g. q05, q95."]
            )
        levels = np.array([int(c[1:]) / 100 for c in cols])
        order = np.argsort(levels)
        self.levels = levels[order]
        self.z = stats.norm.ppf(self.levels)
        vals = table[[cols[i] for i in order]].to_numpy(float)
        self.values = np.maximum.accumulate(vals, axis=1)  # enforce monotone quantiles
        self.rep_ids = pd.Index(table.index.astype(str), name="rep_id")
        dz_lo, dz_hi = self.z[1] - self.z[0], self.z[-1] - self.z[-2]
        self.slope_lo = (self.values[:, 1] - self.values[:, 0]) / dz_lo
        self.slope_hi = (self.values[:, -1] - self.values[:, -2]) / dz_hi

    def _at_z(self, z: float) -> np.ndarray:
        if z <= self.z[0]:
            out = self.values[:, 0] + self.slope_lo * (z - self.z[0])
        elif z >= self.z[-1]:
            out = self.values[:, -1] + self.slope_hi * (z - self.z[-1])
        else:
            k = int(np.searchsorted(self.z, z) - 1)
            w = (z - self.z[k]) / (self.z[k + 1] - self.z[k])
            out = self.values[:, k] * (1 - w) + self.values[:, k + 1] * w
        return np.maximum(out, 0.0)

    def quantile(self, u: float) -> np.ndarray:
        return self._at_z(float(stats.norm.ppf(u)))

    def prob_at_least(self, quota: np.ndarray) -> np.ndarray:
        q = np.asarray(quota, float)
        z = np.empty(len(q))
        for i, (row, qi) in enumerate(zip(self.values, q, strict=True)):
            if qi <= row[0]:
                z[i] = self.z[0] + (qi - row[0]) / self.slope_lo[i] if self.slope_lo[i] > 0 else -np.inf
            elif qi >= row[-1]:
                z[i] = self.z[-1] + (qi - row[-1]) / self.slope_hi[i] if self.slope_hi[i] > 0 else np.inf
            else:
                z[i] = np.interp(qi, row, self.z)
        return stats.norm.sf(z)


def annual_quantiles_from_monthly(monthly: pd.DataFrame, correlation: float = 0.5) -> pd.DataFrame:
    """Add monthly forecast quantiles up to plan-year quantiles per series.

    Parameters
    ----------
    monthly
        Rows of one series per month: columns ``series``, ``month``, ``q50`` and other ``qNN`` [currency/month].
    correlation
        Correlation ``rho`` of the monthly errors [0-1].

    Returns
    -------
    pandas.DataFrame
        Index series; the same ``qNN`` columns for the year [currency/yr].

    Notes
    -----
    With ``d_km = q_km - q50_m`` the offset of level k in month m,
    ``q_k = sum_m q50_m + sign(d_k) sqrt(sum_m d_km^2 + rho sum_{i != j} d_ki d_kj)``:
    exact for independent normal months at ``rho = 0``, the comonotone sum of quantiles at ``rho = 1``.
    """
    cols = [c for c in monthly.columns if isinstance(c, str) and c.startswith("q") and c[1:].isdigit()]
    out = {}
    for series, g in monthly.groupby("series", sort=True):
        med = g["q50"].to_numpy(float)
        row = {}
        for c in cols:
            d = g[c].to_numpy(float) - med
            s, s2 = d.sum(), (d**2).sum()
            var = s2 + correlation * (s**2 - s2)
            row[c] = med.sum() + np.sign(s) * np.sqrt(max(var, 0.0))
        out[series] = row
    df = pd.DataFrame.from_dict(out, orient="index")[cols]
    df.index = df.index.astype(str)
    df.index.name = "rep_id"
    return df


def equal_chance_p(dist: BookingsDistribution, target: float, rep_ids: pd.Index | None = None) -> float:
    """The common probability ``p`` that every rep makes quota when quotas sum to ``target``.

    Parameters
    ----------
    dist
        Bookings distribution per rep.
    target
        The total of the quotas [currency/yr].
    rep_ids
        Reps to include (default: all of ``dist``).

    Returns
    -------
    float
        ``p`` in [0, 1].

    Raises
    ------
    InfeasibleError
        When ``target`` is outside ``[sum_r Q_r(u_min), sum_r Q_r(u_max)]`` (sample-based
        distributions are bounded by their smallest and largest trial).

    Notes
    -----
    Solves ``S(u) = sum_r Q_r(u) = T`` with Brent's method on ``u``; ``p = 1 - u``.
    """
    pos = dist.reindex(rep_ids) if rep_ids is not None else np.arange(len(dist.rep_ids))
    lo, hi = dist.u_range

    def excess(u: float) -> float:
        return float(dist.quantile(u)[pos].sum()) - target

    f_lo, f_hi = excess(lo), excess(hi)
    if f_lo > 0:
        raise InfeasibleError(
            f"equal-chance quotas: the target {target:,.0f} is below the sum of every rep's lowest bookings "
            f"{f_lo + target:,.0f}: every rep would make quota for sure. Raise the target to at least "
            f"{f_lo + target:,.0f}, or use a method that does not need distributions.",
            diagnosis={"field": "company_target", "needed": f_lo + target},
        )
    if f_hi < 0:
        raise InfeasibleError(
            f"equal-chance quotas: the target {target:,.0f} exceeds the sum of every rep's highest bookings "
            f"{f_hi + target:,.0f}: no rep could make quota. Lower the target to at most {f_hi + target:,.0f} "
            "(or simulate more trials / use forecast quantiles with tails).",
            diagnosis={"field": "company_target", "needed": f_hi + target},
        )
    if f_lo == 0:
        return 1.0 - lo
    if f_hi == 0:
        return 1.0 - hi
    u = brentq(excess, lo, hi, xtol=1e-12, rtol=1e-12, maxiter=200)
    return 1.0 - u


def quota_by_equal_attainment_probability(
    basis: pd.DataFrame,
    dist: BookingsDistribution,
    company_target: float,
    *,
    over_assignment: float = 0.0,
    rounding_unit: float = 1.0,
    weights: dict[str, float] | None = None,
) -> QuotaResult:
    """Quotas that give every rep the same probability ``p`` of making quota.

    Parameters
    ----------
    basis
        Per-rep basis; its index decides which reps get a quota.
    dist
        Attainable bookings per rep.
    company_target
        Company target [currency/yr]; quotas sum to ``company_target (1 + over_assignment)``.
    rounding_unit
        Quota unit [currency]; rounding moves each rep's probability a little, so ``p_attain`` is
        recomputed on the rounded quotas.
    weights
        Optional blend weights, only for the explanation columns.

    Returns
    -------
    QuotaResult
        ``extra['equal_chance_p']`` is the common p before rounding; ``quotas['p_attain']`` per rep after.

    Notes
    -----
    ``Q_r = F_r^{-1}(1 - p)`` with ``sum_r Q_r = T (1 + o)``; see :func:`equal_chance_p`.
    """
    t0 = time.perf_counter()
    target = company_target * (1.0 + over_assignment)
    pos = dist.reindex(basis.index)
    p = equal_chance_p(dist, target, basis.index)
    unrounded = pd.Series(dist.quantile(1.0 - p)[pos], index=basis.index)
    shares = fair_shares(basis, weights) if weights is not None else None
    res = _result(
        "equal_chance",
        basis,
        shares,
        unrounded,
        target,
        company_target,
        rounding_unit,
        0.0,
        {"equal_chance_p": float(p)},
    )
    res.quotas["p_attain"] = dist.p_attain(res.quotas["quota"])
    res.seconds = time.perf_counter() - t0
    return res
