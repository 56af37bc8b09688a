"""Who is likely to miss, quarter by quarter: P(attain) per rep and quarter from simulated bookings.

The pipeline Monte Carlo gives bookings per trial, rep and quarter (``rep_bookings_by_quarter_samples``);
the quota stage gives quarterly quotas (``quotas_by_period``). Over the trials :math:`t = 1..T`:

- quarter alone: :math:`p_{r,q} = \\frac{1}{T} \\sum_t [B_{t,r,q} \\ge Q_{r,q}]`;
- year to date (what quarterly plans paid on a cumulative basis look at):
  :math:`\\frac{1}{T} \\sum_t [\\sum_{k \\le q} B_{t,r,k} \\ge \\sum_{k \\le q} Q_{r,k}]`;
- the year: the same over all four quarters.

A quarter whose quota is zero (a new hire still ramping) has no attainment probability (NaN), not a
certain one: there is nothing to attain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError


@dataclass
class QuarterlyAttainmentRisk:
    """P(attain) per rep and quarter.

    Attributes
    ----------
    by_quarter
        One row per (rep, quarter): ``rep_id``, ``quarter``, ``quota`` [currency], ``quota_ytd``
        [currency], ``bookings_p10``/``p50``/``p90`` [currency], ``p_attain`` (the quarter alone,
        [0-1]), ``p_attain_ytd`` (year to date, [0-1]).
    by_rep
        One row per rep, the reps least likely to make the year first: ``rep_id``, ``quota_year``
        [currency], ``p_attain_year`` [0-1], ``quarters_missed_expected`` (expected number of
        quarters below quota [quarters]), ``worst_quarter`` and ``worst_p_attain`` [0-1].
    trials
        Trials the probabilities are estimated from (their standard error is at most
        :math:`0.5/\\sqrt{T}`).
    """

    by_quarter: pd.DataFrame
    by_rep: pd.DataFrame
    trials: int

    def matrix(self, column: str = "p_attain") -> pd.DataFrame:
        """``column`` as a rep x quarter table, rows in the order of :attr:`by_rep`."""
        wide = self.by_quarter.pivot(index="rep_id", columns="quarter", values=column)
        return wide.reindex(index=self.by_rep["rep_id"], columns=sorted(wide.columns))


def quarterly_attainment_risk(
    samples: pd.DataFrame, quotas_by_period: pd.DataFrame
) -> QuarterlyAttainmentRisk:
    """P(attain) by rep and quarter from simulated quarterly bookings against quarterly quotas.

    Parameters
    ----------
    samples
        ``trial``, ``rep_id``, ``quarter`` (``YYYY-Qn``), ``bookings`` [currency] (the pipeline
        stage's ``rep_bookings_by_quarter_samples``).
    quotas_by_period
        ``rep_id``, ``period``, ``period_type``, ``quota`` [currency] (the quota stage's
        ``quotas_by_period``); the rows with ``period_type == "quarter"`` are used.

    Returns
    -------
    QuarterlyAttainmentRisk
        Reps that have both quarterly quotas and samples; a quarter without samples counts as zero
        bookings in every trial (a rep the simulation never gave a deal in that quarter).

    Raises
    ------
    DataValidationError
        A table lacks a needed column, or the two tables share no rep.
    """
    _require(samples, "rep_bookings_by_quarter_samples", {"trial", "rep_id", "quarter", "bookings"})
    _require(quotas_by_period, "quotas_by_period", {"rep_id", "period", "period_type", "quota"})
    q = quotas_by_period[quotas_by_period["period_type"] == "quarter"]
    quota = q.pivot_table(index="rep_id", columns="period", values="quota", aggfunc="sum")
    quota.index = quota.index.astype(str)
    simulated = set(samples["rep_id"].astype(str))
    reps = [r for r in quota.index if r in simulated]
    if not reps:
        raise DataValidationError(
            "rep_bookings_by_quarter_samples",
            ["no rep has both quarterly quotas and simulated quarterly bookings; were they made for the "
             "same scenario?"],
        )  # fmt: skip
    quarters = sorted(quota.columns)
    quota = quota.reindex(index=reps, columns=quarters).fillna(0.0)
    trials = np.sort(samples["trial"].unique())
    # (trials, reps, quarters), zero where a (trial, rep, quarter) has no row
    cube = np.zeros((len(trials), len(reps), len(quarters)))
    s = samples[samples["rep_id"].astype(str).isin(reps) & samples["quarter"].astype(str).isin(quarters)]
    ti = np.searchsorted(trials, s["trial"].to_numpy())
    ri = pd.Index(reps).get_indexer(s["rep_id"].astype(str))
    qi = pd.Index(quarters).get_indexer(s["quarter"].astype(str))
    np.add.at(cube, (ti, ri, qi), s["bookings"].to_numpy(float))

    qv = quota.to_numpy(float)  # (reps, quarters)
    ytd_q = np.cumsum(qv, axis=1)
    ytd_b = np.cumsum(cube, axis=2)
    with np.errstate(invalid="ignore"):
        p_q = np.where(qv > 0, (cube >= qv[None]).mean(axis=0), np.nan)
        p_ytd = np.where(ytd_q > 0, (ytd_b >= ytd_q[None]).mean(axis=0), np.nan)
    pct = np.percentile(cube, [10, 50, 90], axis=0)  # (3, reps, quarters)
    by_quarter = pd.DataFrame(
        {
            "rep_id": np.repeat(reps, len(quarters)),
            "quarter": np.tile(quarters, len(reps)),
            "quota": qv.ravel(),
            "quota_ytd": ytd_q.ravel(),
            "bookings_p10": pct[0].ravel(),
            "bookings_p50": pct[1].ravel(),
            "bookings_p90": pct[2].ravel(),
            "p_attain": p_q.ravel(),
            "p_attain_ytd": p_ytd.ravel(),
        }
    )
    year_quota = qv.sum(axis=1)
    p_year = np.where(year_quota > 0, (cube.sum(axis=2) >= year_quota[None]).mean(axis=0), np.nan)
    filled = np.where(np.isnan(p_q), np.inf, p_q)
    worst = filled.argmin(axis=1)
    has_quarter = np.isfinite(filled.min(axis=1))
    by_rep = pd.DataFrame(
        {
            "rep_id": reps,
            "quota_year": year_quota,
            "p_attain_year": p_year,
            "quarters_missed_expected": np.nansum(1.0 - p_q, axis=1),
            "worst_quarter": np.where(has_quarter, np.asarray(quarters, dtype=object)[worst], None),
            "worst_p_attain": np.where(has_quarter, filled.min(axis=1), np.nan),
        }
    )
    # least likely to make the year first; ties broken by the expected quarters missed, then rep id
    by_rep = by_rep.sort_values(
        ["p_attain_year", "quarters_missed_expected", "rep_id"],
        ascending=[True, False, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    return QuarterlyAttainmentRisk(by_quarter, by_rep, len(trials))


def _require(df: pd.DataFrame, table: str, columns: set[str]) -> None:
    missing = sorted(columns - set(df.columns))
    if missing:
        raise DataValidationError(
            table, [f"missing column(s) {', '.join(missing)}; expected {', '.join(sorted(columns))}"]
        )
