"""A larger company's rep x product bookings, drawn from the patterns of a smaller one (the sample company).

Scale tests of the forecast need thousands of monthly rep x product series that look like sales
data: lumpy, often zero, seasonal, growing, with reps of very different productivity. Rather than
invent those traits, :func:`rep_product_patterns` measures them on a company's won deals and
:func:`scale_rep_product_panel` draws a company of any size from them.

Generative story
----------------
The won deals of rep :math:`r` and product :math:`p` in month :math:`t` are a compound Poisson sum:

.. math::
    N_{rpt} \\sim \\mathrm{Poisson}(\\lambda_r\\,\\pi_p\\,s_{m(t)}\\,e^{\\beta (t - \\bar t)}\\,[t \\ge t_r]), \\qquad
    y_{rpt} = \\sum_{k=1}^{N_{rpt}} a_k, \\quad \\log a_k \\sim \\mathcal N(\\mu_p, \\sigma_p^2)

=====================  ===========================================================================
symbol                 measured on the source company as
=====================  ===========================================================================
:math:`s_m`            monthly seasonal index of the company's won-deal count (mean 1) [-]
:math:`\\beta`          monthly log growth of that count (``growth`` :math:`= e^{12\\beta}-1` per year)
:math:`\\lambda_r`      won deals per month of a source rep, seasonality and growth removed, over the
                       months since his hire [deals/month]
:math:`t_r`            first month a rep could book (his hire month, 0 for reps hired before the
                       history starts) [month index]
:math:`\\pi_p`          share of won deals of a source product [-]
:math:`\\mu_p,\\sigma_p`  mean and sd of the log won amount of a source product [log currency]
=====================  ===========================================================================

A generated rep copies the rate, hire month and region of a source rep drawn at random, times a
log-normal factor (sd ``rep_spread``) so that no two reps are copies; a generated product copies
the share and deal-size distribution of a source product drawn by its share, its share times a
log-normal factor (sd ``product_spread``), the shares then normalised so that a rep's total deal
rate stays the source rep's. Level, trend, seasonality and noise (Poisson counts times log-normal
sizes) thus come from the source company; what the story leaves out is stated: no ramp-up after
hire, no quarter-end pull-in beyond what the monthly index carries, independent reps.

Seeds: the draws come from ``SeedSequence(seed, spawn_key=(k,))``, one stream per part (0 reps, 1
products, 2 deal counts, 3 deal sizes), so the same arguments give the same panel bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesops_models.data.company import CompanyData, last_complete_month
from salesops_models.data.schema import WON
from salesops_models.errors import DataValidationError


@dataclass(frozen=True)
class RepProductPatterns:
    """Patterns of rep x product bookings measured on a company's won deals (see the module notes).

    Attributes
    ----------
    months
        The history's complete months.
    seasonality
        Monthly index of won-deal counts, January first, mean 1 [-].
    monthly_log_growth
        :math:`\\beta` [1/month].
    rep_rate
        :math:`\\lambda_r` per source rep with at least one won deal [deals/month].
    rep_start
        :math:`t_r` per source rep [month index].
    rep_region
        Region of each source rep.
    product_names, product_share, size_logmean, size_logsd
        Per source product: name, :math:`\\pi_p` [-], :math:`\\mu_p` and :math:`\\sigma_p` [log currency].
    """

    months: pd.PeriodIndex
    seasonality: np.ndarray
    monthly_log_growth: float
    rep_rate: np.ndarray
    rep_start: np.ndarray
    rep_region: np.ndarray
    product_names: tuple[str, ...]
    product_share: np.ndarray
    size_logmean: np.ndarray
    size_logsd: np.ndarray

    @property
    def yearly_growth(self) -> float:
        """Growth of the won-deal count per year [-]."""
        return float(np.expm1(12.0 * self.monthly_log_growth))


@dataclass(frozen=True)
class RepProductPanel:
    """Generated monthly bookings of every rep x product.

    Attributes
    ----------
    panel
        Months x series [currency/month]; columns ``region/rep_id/product``, the labels
        :func:`~salesops_models.forecast.hierarchy.build_hierarchy` gives with ``label="path"``.
    keys
        One row per column: ``region``, ``rep_id``, ``product``.
    """

    panel: pd.DataFrame
    keys: pd.DataFrame

    #: hierarchy levels company > region > rep > rep x product (keys of each level)
    LEVELS = ((), ("region",), ("region", "rep_id"), ("region", "rep_id", "product"))
    LEVEL_NAMES = ("company", "region", "rep", "rep_product")


def rep_product_patterns(company: CompanyData) -> RepProductPatterns:
    """Measure the patterns of :func:`scale_rep_product_panel` on a company's won deals.

    Parameters
    ----------
    company
        Canonical tables with won opportunities carrying ``close_date``, ``amount``, ``rep_id`` and
        ``product`` (the sample company has them).

    Raises
    ------
    DataValidationError
        No product column, fewer than 24 months of won deals, or no positive won amount.
    """
    opp = company.opportunities
    if "product" not in opp or opp["product"].isna().all():
        raise DataValidationError(
            "opportunities", ["no 'product' column; rep x product patterns need the product of each deal."]
        )
    won = opp[(company.stages.status_of(opp["stage"]) == WON) & opp["close_date"].notna()]
    won = won[pd.to_numeric(won["amount"], errors="coerce") > 0]
    last = last_complete_month(company.as_of)
    month = pd.to_datetime(won["close_date"]).dt.to_period("M")
    won, month = won[month <= last], month[month <= last]
    if len(won) == 0:
        raise DataValidationError("opportunities", ["no won deal with a positive amount before the snapshot."])
    months = pd.period_range(month.min(), last, freq="M")
    if len(months) < 24:
        raise DataValidationError(
            "opportunities", [f"{len(months)} months of won deals; rep x product patterns need at least 24."]
        )
    t = np.asarray([p.ordinal for p in month]) - months[0].ordinal
    count = np.bincount(t, minlength=len(months)).astype(float)
    # log count = a + beta t + s_month by least squares (months without a won deal left out)
    cal = np.asarray([p.month - 1 for p in months])
    ok = count > 0
    x = np.column_stack([np.arange(len(months)) - (len(months) - 1) / 2.0, np.eye(12)[cal]])
    coef, *_ = np.linalg.lstsq(x[ok], np.log(count[ok]), rcond=None)
    beta = float(coef[0])
    season = np.exp(coef[1:] - coef[1:].mean())
    season /= season.mean()
    # each rep's rate over the months since his hire, seasonality and growth removed
    reps = company.reps.reset_index(drop=True)
    hire = pd.to_datetime(reps.get("hire_date", pd.Series(pd.NaT, index=reps.index)))
    start = np.asarray(
        [0 if pd.isna(d) else max(0, d.to_period("M").ordinal - months[0].ordinal) for d in hire], dtype=int
    )
    start = np.minimum(start, len(months) - 1)
    expected = season[cal] * np.exp(beta * x[:, 0])  # deals per month per unit rate
    rep_pos = {r: i for i, r in enumerate(reps["rep_id"].astype(str))}
    pos = won["rep_id"].astype(str).map(rep_pos)
    per_rep = np.bincount(pos.dropna().astype(int), minlength=len(reps)).astype(float)
    exposure = np.asarray([expected[s:].sum() for s in start])
    rate = per_rep / exposure
    keep = rate > 0
    products = won["product"].astype(str)
    names = tuple(sorted(products.unique()))
    logs = np.log(won["amount"].to_numpy(float))
    share = np.asarray([(products == p).mean() for p in names])
    logmean = np.asarray([logs[(products == p).to_numpy()].mean() for p in names])
    logsd = np.asarray([logs[(products == p).to_numpy()].std() if (products == p).sum() > 1 else 0.0 for p in names])
    return RepProductPatterns(
        months=months,
        seasonality=season,
        monthly_log_growth=beta,
        rep_rate=rate[keep],
        rep_start=start[keep],
        rep_region=reps["region"].astype(str).to_numpy()[keep],
        product_names=names,
        product_share=share,
        size_logmean=logmean,
        size_logsd=logsd,
    )


def _stream(seed: int, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))


def scale_rep_product_panel(
    patterns: RepProductPatterns,
    n_series: int,
    *,
    n_products: int = 10,
    seed: int = 0,
    rep_spread: float = 0.25,
    product_spread: float = 0.3,
) -> RepProductPanel:
    """Draw ``n_series`` rep x product monthly bookings series from ``patterns`` (module notes).

    Parameters
    ----------
    patterns
        From :func:`rep_product_patterns`.
    n_series
        Series to draw: ``n_series / n_products`` reps times ``n_products`` products.
    n_products
        Products each rep sells.
    seed
        Master seed (streams per part, see the module notes).
    rep_spread, product_spread
        Sd of the log-normal factors on each drawn rep's rate and each drawn product's share [-].

    Raises
    ------
    DataValidationError
        ``n_series`` not a positive multiple of ``n_products``.
    """
    if n_products < 1 or n_series < n_products or n_series % n_products:
        raise DataValidationError(
            "scale",
            [f"{n_series} series for {n_products} products per rep; give a positive multiple of {n_products}."],
        )
    n_reps = n_series // n_products
    n_months = len(patterns.months)
    rng_rep, rng_prod = _stream(seed, 0), _stream(seed, 1)
    donor = rng_rep.integers(0, len(patterns.rep_rate), n_reps)
    rate = patterns.rep_rate[donor] * rng_rep.lognormal(0.0, rep_spread, n_reps)
    start = patterns.rep_start[donor]
    region = patterns.rep_region[donor]
    prod_donor = rng_prod.choice(len(patterns.product_names), n_products, p=patterns.product_share)
    share = patterns.product_share[prod_donor] * rng_prod.lognormal(0.0, product_spread, n_products)
    share /= share.sum()
    cal = np.asarray([p.month - 1 for p in patterns.months])
    trend = np.exp(patterns.monthly_log_growth * (np.arange(n_months) - (n_months - 1) / 2.0))
    shape = patterns.seasonality[cal] * trend  # n_months
    active = np.arange(n_months)[None, :] >= start[:, None]  # reps x months
    lam = (rate[:, None, None] * share[None, :, None]) * (shape[None, None, :] * active[:, None, :])
    counts = _stream(seed, 2).poisson(lam)  # reps x products x months
    # deal sizes: one log-normal draw per won deal, summed per cell
    flat = counts.ravel()
    cell = np.repeat(np.arange(flat.size), flat)
    prod_of_cell = np.repeat(np.broadcast_to(np.arange(n_products)[None, :, None], counts.shape).ravel(), flat)
    d = prod_donor[prod_of_cell]
    sizes = np.exp(_stream(seed, 3).normal(patterns.size_logmean[d], patterns.size_logsd[d]))
    amount = np.bincount(cell, weights=sizes, minlength=flat.size).reshape(counts.shape)
    width = len(str(n_reps))
    rep_ids = np.asarray([f"R{i + 1:0{width}d}" for i in range(n_reps)])
    product_ids = np.asarray([f"P{j + 1:02d}" for j in range(n_products)])
    keys = pd.DataFrame(
        {
            "region": np.repeat(region, n_products),
            "rep_id": np.repeat(rep_ids, n_products),
            "product": np.tile(product_ids, n_reps),
        }
    )
    # columns in the hierarchy's bottom order (sorted by region, rep, product)
    order = keys.sort_values(["region", "rep_id", "product"], kind="stable").index.to_numpy()
    keys = keys.iloc[order].reset_index(drop=True)
    labels = (keys["region"] + "/" + keys["rep_id"] + "/" + keys["product"]).tolist()
    values = amount.reshape(n_series, n_months)[order].T
    panel = pd.DataFrame(values, index=patterns.months, columns=labels)
    return RepProductPanel(panel, keys)
