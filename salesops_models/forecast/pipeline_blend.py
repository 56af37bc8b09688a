"""Reconcile the time-series forecast with the pipeline Monte Carlo: one plan-year number for quotas.

The time series knows the run rate; the pipeline knows which deals are open now and what the reps
will create. For the first months of the plan year, a weighted mean of both is usually better than
either (FIELD-NOTES 2.5, after Fildes et al. 2009). :func:`reconcile_with_pipeline` blends the
company level month by month (:func:`~salesops_models.forecast.blend.blend_with_pipeline`) and scales
every level below by the same monthly ratio, so the reconciled table stays coherent: regions and reps
still add up to the company.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError
from salesops_models.forecast.blend import blend_with_pipeline
from salesops_models.forecast.schema import quantile_columns


@dataclass
class PipelineReconciliation:
    """A forecast table reconciled with the pipeline.

    Attributes
    ----------
    table
        The forecast table with blended values, ``blended`` (month blended) and ``pipeline_weight``.
    months
        Months blended (the first ``months`` of the plan year that the pipeline covers).
    forecast_total, pipeline_total, reconciled_total
        Company totals over the whole table before and after [currency]; ``pipeline_total`` is the
        pipeline mean over the blended months only.
    """

    table: pd.DataFrame
    months: list[pd.Timestamp]
    weight: float
    forecast_total: float
    pipeline_total: float
    forecast_total_blended_months: float
    reconciled_total: float

    @property
    def blended(self) -> bool:
        """Whether any month moved."""
        return bool(len(self.months)) and not np.isclose(
            self.reconciled_total, self.forecast_total, rtol=0, atol=0
        )

    def summary(self) -> dict[str, float | int | bool]:
        return {
            "blended": self.blended,
            "months": len(self.months),
            "weight": self.weight,
            "forecast_total": self.forecast_total,
            "pipeline_total_blended_months": self.pipeline_total,
            "forecast_total_blended_months": self.forecast_total_blended_months,
            "total": self.reconciled_total,
        }


def reconcile_with_pipeline(
    forecast: pd.DataFrame,
    pipeline_by_month: pd.DataFrame,
    *,
    months: int,
    weight: float,
    top: str = "company",
) -> PipelineReconciliation:
    """Blend the company forecast with the pipeline for the first ``months`` months; rescale the levels below.

    Parameters
    ----------
    forecast
        The ``forecast`` table (``level, series, month, mean, q05..q95``) [currency/month].
    pipeline_by_month
        The pipeline's ``period`` (``YYYY-MM``) and ``mean`` [currency/month] (company).
    months
        Months from the start of the table to blend [months].
    weight
        Weight of the pipeline [0-1].
    top
        Level name of the company total.

    Returns
    -------
    PipelineReconciliation

    Notes
    -----
    Company month :math:`m`: :math:`\\bar y_m = w p_m + (1 - w) s_m`. Every row of month :math:`m`,
    mean and quantiles, at every level, is multiplied by :math:`\\bar y_m / s_m`: aggregates stay equal
    to the sum of their children, and each series keeps the relative spread of its time-series
    forecast (the pipeline's quantiles describe another quantity, the sum of its trials).
    """
    for name, df, need in (
        ("forecast", forecast, ("level", "series", "month", "mean")),
        ("pipeline_by_month", pipeline_by_month, ("period", "mean")),
    ):
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise DataValidationError(
                name, [f"missing column(s) {missing} needed to reconcile forecast and pipeline."]
            )
    qcols = [c for c in quantile_columns() if c in forecast.columns]
    table = forecast.assign(month=pd.to_datetime(forecast["month"]))
    company = table[table["level"] == top]
    covered = sorted(table["month"].unique())[:months]
    pipe = pipeline_by_month.assign(
        month=pd.to_datetime(pipeline_by_month["period"].astype(str)).dt.to_period("M").dt.to_timestamp()
    )
    pipe = pipe[pipe["month"].isin(covered)].assign(series=company["series"].iloc[0] if len(company) else top)
    blended = blend_with_pipeline(
        company, pipe[["series", "month", "mean"]], weight, keys=("series", "month")
    )
    ratio = (
        blended.set_index("month")["mean"] / company.set_index("month")["mean"].replace(0, np.nan)
    ).fillna(1.0)
    out = table.copy()
    r = out["month"].map(ratio).fillna(1.0).to_numpy()
    out[["mean", *qcols]] = out[["mean", *qcols]].to_numpy() * r[:, None]
    used = sorted(pipe["month"].unique())
    out["blended"] = out["month"].isin(used)
    out["pipeline_weight"] = np.where(out["blended"], weight, 0.0)
    return PipelineReconciliation(
        table=out,
        months=[pd.Timestamp(m) for m in used],
        weight=float(weight),
        forecast_total=float(company["mean"].sum()),
        pipeline_total=float(pipe["mean"].sum()),
        forecast_total_blended_months=float(company.loc[company["month"].isin(used), "mean"].sum()),
        reconciled_total=float(out.loc[out["level"] == top, "mean"].sum()),
    )
