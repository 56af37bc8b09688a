"""Attainment samples: from the pipeline Monte Carlo, or from a distribution calibrated to stated facts.

A planner rarely knows a distribution; she knows facts such as "60 % of reps make quota" and "the
spread of attainment is about 25 points". :func:`calibrate_attainment` turns exactly two such facts
into a normal or lognormal distribution of attainment.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from salesops_models.errors import DataValidationError, SalesopsError

log = logging.getLogger(__name__)

Family = Literal["normal", "lognormal"]
FACTS: tuple[str, ...] = ("share_at_quota", "mean", "sd", "median", "p90")


@dataclass(frozen=True)
class AttainmentDistribution:
    """Attainment :math:`A` [fraction of quota] of one rep in one trial.

    ``normal``: :math:`A \\sim N(\\mathrm{loc}, \\mathrm{scale}^2)`, samples clipped at 0 (bookings are
    never negative; the clipped mass is :math:`\\Phi(-\\mathrm{loc}/\\mathrm{scale})`).
    ``lognormal``: :math:`\\ln A \\sim N(\\mathrm{loc}, \\mathrm{scale}^2)`.
    """

    family: Family
    loc: float
    scale: float

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"attainment distribution: scale must be > 0, got {self.scale}")

    def quantile(self, p: float) -> float:
        """The ``p`` quantile of attainment [fraction of quota]."""
        z = self.loc + self.scale * float(stats.norm.ppf(p))
        return float(np.exp(z)) if self.family == "lognormal" else z

    def cdf(self, x: float) -> float:
        """:math:`P(A \\le x)` (the normal's clipped mass sits at 0)."""
        if self.family == "lognormal":
            return 0.0 if x <= 0 else float(stats.norm.cdf((np.log(x) - self.loc) / self.scale))
        return 0.0 if x < 0 else float(stats.norm.cdf((x - self.loc) / self.scale))

    def share_at_quota(self) -> float:
        """:math:`P(A \\ge 1)`."""
        x = 0.0 if self.family == "lognormal" else 1.0
        return float(stats.norm.sf((x - self.loc) / self.scale))

    def mean(self) -> float:
        """Mean attainment [fraction of quota]."""
        if self.family == "lognormal":
            return float(np.exp(self.loc + self.scale**2 / 2))
        return self.loc

    def sd(self) -> float:
        """Standard deviation of attainment [fraction of quota]."""
        if self.family == "lognormal":
            return float(np.sqrt(np.expm1(self.scale**2)) * self.mean())
        return self.scale

    def fact(self, name: str) -> float:
        """The value of a stated fact (``share_at_quota``, ``mean``, ``sd``, ``median``, ``p90``)."""
        return {
            "share_at_quota": self.share_at_quota,
            "mean": self.mean,
            "sd": self.sd,
            "median": lambda: self.quantile(0.5),
            "p90": lambda: self.quantile(0.9),
        }[name]()

    def sample(self, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        """Draw attainments [fraction of quota]."""
        z = rng.standard_normal(size)
        z *= self.scale
        z += self.loc
        if self.family == "lognormal":
            return np.exp(z, out=z)
        return np.maximum(z, 0.0, out=z)

    def describe(self) -> str:
        """One line for logs and tables: family, parameters and the facts it meets."""
        return (
            f"{self.family}(loc={self.loc:.4g}, scale={self.scale:.4g}): {self.share_at_quota():.0%} at quota, "
            f"mean {self.mean():.3f}, sd {self.sd():.3f}, median {self.quantile(0.5):.3f}, p90 {self.quantile(0.9):.3f}"
        )


@dataclass(frozen=True)
class AttainmentMixture:
    """A mixture of attainment distributions, e.g. a bimodal sales force (stars and strugglers).

    Attributes
    ----------
    components
        ``(weight, distribution)`` pairs; weights > 0 summing to 1.

    Notes
    -----
    Each rep-trial draws its component independently with the weights' probabilities. Mean and share
    at quota are the weighted sums; :math:`\\mathrm{Var} = \\sum_i w_i(\\sigma_i^2 + \\mu_i^2) - \\mu^2`.
    """

    components: tuple[tuple[float, AttainmentDistribution], ...]

    def __post_init__(self) -> None:
        w = [c[0] for c in self.components]
        if not self.components or min(w) <= 0 or abs(sum(w) - 1.0) > 1e-9:
            raise ValueError(f"mixture weights must be > 0 and sum to 1, got {w}")

    def share_at_quota(self) -> float:
        """:math:`P(A \\ge 1)` [0-1]."""
        return float(sum(w * d.share_at_quota() for w, d in self.components))

    def mean(self) -> float:
        """Mean attainment [fraction of quota]."""
        return float(sum(w * d.mean() for w, d in self.components))

    def sd(self) -> float:
        """Standard deviation of attainment [fraction of quota]."""
        m2 = sum(w * (d.sd() ** 2 + d.mean() ** 2) for w, d in self.components)
        return float(np.sqrt(max(m2 - self.mean() ** 2, 0.0)))

    def cdf(self, x: float) -> float:
        """:math:`P(A \\le x)`."""
        return float(sum(w * d.cdf(x) for w, d in self.components))

    def quantile(self, p: float) -> float:
        """The ``p`` quantile [fraction of quota] (root of the mixture's cdf)."""
        hi = max(d.quantile(0.999999) for _, d in self.components)
        return float(optimize.brentq(lambda x: self.cdf(x) - p, 0.0, hi, xtol=1e-12))

    def sample(self, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        """Draw attainments [fraction of quota]: one component per draw, then that component's value."""
        u = rng.random(size)
        out = np.empty(size)
        edges = np.cumsum([w for w, _ in self.components])
        lo = 0.0
        for (_, d), hi in zip(self.components, edges, strict=True):
            pick = (u >= lo) & (u < hi) if hi < edges[-1] else (u >= lo)
            out[pick] = d.sample(rng, (int(pick.sum()),))
            lo = hi
        return out

    def describe(self) -> str:
        """One line for logs and tables."""
        parts = " + ".join(f"{w:g} x {d.family}({d.loc:.3g}, {d.scale:.3g})" for w, d in self.components)
        return f"mixture {parts}: {self.share_at_quota():.0%} at quota, mean {self.mean():.3f}, sd {self.sd():.3f}"


def calibrate_attainment(family: Family = "lognormal", **facts: float | None) -> AttainmentDistribution:
    """A distribution of attainment that meets exactly two stated facts.

    Parameters
    ----------
    family
        ``"normal"`` or ``"lognormal"``.
    **facts
        Exactly two of ``share_at_quota`` (:math:`P(A \\ge 1)` [0-1]), ``mean``, ``sd``, ``median``,
        ``p90`` [fraction of quota]; ``None`` values are ignored.

    Returns
    -------
    AttainmentDistribution

    Raises
    ------
    ValueError
        Not exactly two facts, an unknown fact, or facts no distribution of the family meets.

    Notes
    -----
    Quantile facts are linear in (loc, scale) after the family's transform:
    :math:`t(x_p) = \\mathrm{loc} + \\mathrm{scale}\\,\\Phi^{-1}(p)` with :math:`t` the identity or
    :math:`\\ln`, and "share at quota" is the fact :math:`x_{1-s} = 1`. Two such facts are solved in
    closed form; pairs involving the mean or sd of a lognormal are solved numerically and checked.

    Examples
    --------
    >>> d = calibrate_attainment("normal", share_at_quota=0.6, sd=0.2)
    >>> round(d.loc, 4)  # 1 + 0.2 * z_0.6
    1.0507
    """
    given = {k: float(v) for k, v in facts.items() if v is not None}
    return _calibrated(family, tuple(given.items()))


@functools.lru_cache(maxsize=256)
def _calibrated(family: Family, facts: tuple[tuple[str, float], ...]) -> AttainmentDistribution:
    """:func:`calibrate_attainment` of facts already given as floats, remembered per process.

    The numerical fits (a lognormal's mean or sd with a quantile) take a few least-squares runs;
    an analyst's what-if costs the same stated facts again on every change. The result is a frozen
    dataclass, so sharing it is safe; an error is raised again on every call (not cached).
    """
    given = dict(facts)
    unknown = sorted(set(given) - set(FACTS))
    if unknown:
        raise ValueError(f"unknown attainment fact(s) {unknown}; use two of {', '.join(FACTS)}")
    if len(given) != 2:
        raise ValueError(
            f"state exactly two attainment facts, got {len(given)} ({', '.join(given) or 'none'}); "
            f"choose two of {', '.join(FACTS)} and set the others to null"
        )
    if "share_at_quota" in given and not 0 < given["share_at_quota"] < 1:
        raise ValueError(f"share_at_quota must be strictly between 0 and 1, got {given['share_at_quota']}")
    for k in ("sd", "median", "p90", "mean"):
        if k in given and given[k] <= 0:
            raise ValueError(f"attainment fact {k} must be > 0, got {given[k]}")

    def t(x: float) -> float:
        return float(np.log(x)) if family == "lognormal" else x

    quantile_facts: list[tuple[float, float]] = []  # (z, t(x))
    if "share_at_quota" in given:
        quantile_facts.append((float(stats.norm.ppf(1 - given["share_at_quota"])), t(1.0)))
    if "median" in given:
        quantile_facts.append((0.0, t(given["median"])))
    if "p90" in given:
        quantile_facts.append((float(stats.norm.ppf(0.9)), t(given["p90"])))
    if family == "normal":
        if "mean" in given:
            quantile_facts.append((0.0, given["mean"]))
        if "sd" in given:
            ((z, x),) = quantile_facts
            return AttainmentDistribution(family, x - z * given["sd"], given["sd"])
    if len(quantile_facts) == 2:
        (z1, x1), (z2, x2) = quantile_facts
        if abs(z1 - z2) < 1e-12:
            raise ValueError(f"facts {list(given)} pin the same quantile; state two different facts")
        scale = (x2 - x1) / (z2 - z1)
        if scale <= 0:
            raise ValueError(
                f"facts {given} are inconsistent: the higher quantile is not above the lower one"
            )
        return AttainmentDistribution(family, x1 - z1 * scale, scale)
    if family == "lognormal" and "sd" in given and "mean" in given:
        s2 = np.log1p((given["sd"] / given["mean"]) ** 2)
        return AttainmentDistribution(family, float(np.log(given["mean"]) - s2 / 2), float(np.sqrt(s2)))
    # lognormal: one quantile fact and mean or sd
    names = list(given)

    def residual(p: np.ndarray) -> np.ndarray:
        d = AttainmentDistribution(family, float(p[0]), float(np.exp(p[1])))
        return np.array([d.fact(n) - given[n] for n in names])

    best = None
    for s0 in (0.05, 0.2, 0.5, 1.0):
        sol = optimize.least_squares(residual, x0=[0.0, np.log(s0)], xtol=1e-14, ftol=1e-14, gtol=1e-14)
        if best is None or sol.cost < best.cost:
            best = sol
    assert best is not None
    if np.max(np.abs(best.fun)) > 1e-8:
        raise ValueError(f"no lognormal attainment distribution meets the facts {given}; check them")
    return AttainmentDistribution(family, float(best.x[0]), float(np.exp(best.x[1])))


@dataclass
class AttainmentSamples:
    """Bookings per rep and trial, with the quotas they are measured against.

    Attributes
    ----------
    rep_ids
        Reps, in row order.
    quota
        Annual quota per rep, shape (reps,) [currency/yr].
    bookings
        Bookings, shape (reps, trials) [currency/yr].
    label
        Where the samples come from (for tables and reports).
    """

    rep_ids: list[str]
    quota: np.ndarray
    bookings: np.ndarray
    label: str = "samples"
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.quota = np.asarray(self.quota, dtype=float)
        self.bookings = np.asarray(self.bookings, dtype=float)
        if (
            self.bookings.ndim != 2
            or self.bookings.shape[0] != len(self.rep_ids)
            or self.quota.shape != (len(self.rep_ids),)
        ):
            raise ValueError(
                f"attainment samples '{self.label}': bookings must be (reps, trials) and quota (reps,) for "
                f"{len(self.rep_ids)} reps; got {self.bookings.shape} and {self.quota.shape}"
            )

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return self.bookings.shape[1]

    @property
    def attainment(self) -> np.ndarray:
        """Bookings / quota, shape (reps, trials) [fraction of quota]."""
        return self.bookings / self.quota[:, None]

    @classmethod
    def from_distribution(
        cls,
        dist: AttainmentDistribution | AttainmentMixture,
        rep_ids: list[str],
        quota: np.ndarray,
        n_trials: int,
        rng: np.random.Generator,
        label: str | None = None,
    ) -> AttainmentSamples:
        """Independent attainments for every rep and trial, times the rep's quota."""
        quota = np.asarray(quota, dtype=float)
        a = dist.sample(rng, (len(rep_ids), n_trials))
        return cls(list(rep_ids), quota, a * quota[:, None], label or dist.describe())

    @classmethod
    def from_tables(
        cls, rep_bookings_samples: pd.DataFrame, quotas: pd.DataFrame, label: str = "pipeline"
    ) -> AttainmentSamples:
        """Pivot the pipeline stage's samples (trial, rep_id, bookings) against the quota stage's quotas.

        Reps in the quotas without samples, or with samples but no quota, are dropped with a warning.
        """
        for name, df, cols in (
            ("rep_bookings_samples", rep_bookings_samples, ("trial", "rep_id", "bookings")),
            ("quotas", quotas, ("rep_id", "quota")),
        ):
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise DataValidationError(
                    name, [f"missing column(s) {missing}; the table has {list(df.columns)}"]
                )
        wide = rep_bookings_samples.pivot_table(
            index="rep_id", columns="trial", values="bookings", aggfunc="sum"
        )
        q = quotas.drop_duplicates("rep_id").set_index("rep_id")["quota"].astype(float)
        reps = [r for r in q.index if r in wide.index]
        dropped = sorted(set(q.index) ^ set(wide.index))
        if dropped:
            log.warning(
                "compensation: %d rep(s) lack either samples or a quota and are left out: %s",
                len(dropped),
                dropped[:10],
            )
        if not reps:
            raise SalesopsError(
                "rep_bookings_samples and quotas share no rep_id; check that the pipeline and quota stages ran "
                "on the same reps"
            )
        bad = q.loc[reps][~(q.loc[reps] > 0)]
        if len(bad):
            raise DataValidationError(
                "quotas", [f"column 'quota': reps {list(bad.index)[:5]} have quota <= 0 or empty"]
            )
        b = wide.loc[reps].to_numpy(dtype=float)
        if np.isnan(b).any():
            b = np.nan_to_num(b, nan=0.0)  # a rep with no row in a trial booked nothing in it
        return cls([str(r) for r in reps], q.loc[reps].to_numpy(), b, label)
