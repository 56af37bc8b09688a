"""The plan year's bookings forecast at every level of the hierarchy, reconciled, with its backtest.

:func:`forecast_plan_year` is what the ``forecast`` stage runs: monthly panel
(:mod:`~salesops_models.forecast.panel`) -> hierarchy -> base forecasts and reconciliation
(:func:`~salesops_models.forecast.hierarchy.forecast_hierarchy`) -> the plan year's 12 months in the
forecast table schema -> rolling-origin backtest (:mod:`~salesops_models.forecast.rolling`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError
from salesops_models.forecast.config import ForecastConfig
from salesops_models.forecast.hierarchy import (
    Hierarchy,
    HierarchyForecast,
    build_hierarchy,
    coherence_error,
    forecast_hierarchy,
)
from salesops_models.forecast.panel import hierarchy_levels, monthly_panel
from salesops_models.forecast.rolling import accuracy_by_level, backtest_hierarchy
from salesops_models.forecast.schema import QUANTILE_LEVELS, quantile_columns

log = logging.getLogger(__name__)

QCOLS = quantile_columns(QUANTILE_LEVELS)
#: columns of the ``forecast`` table
FORECAST_COLUMNS = (
    "level",
    "series",
    "month",
    "model",
    "mean",
    *QCOLS,
    "fitted_model",
    "reconciliation",
    "clipped",
)


@dataclass
class PlanYearForecast:
    """A plan-year forecast and its backtest.

    Attributes
    ----------
    table
        The ``forecast`` table: every level and series, the plan year's 12 months [currency/month].
    fits
        One row per node: the fitted model, fallbacks, clipping.
    panel
        The history the forecast was fitted on (months x bottom series) [currency/month].
    backtest, accuracy
        Rolling-origin forecasts against actuals, and the mean accuracy per level (empty without folds).
    """

    table: pd.DataFrame
    fits: pd.DataFrame
    panel: pd.DataFrame
    backtest: pd.DataFrame
    accuracy: pd.DataFrame
    model: str
    reconciliation: str
    n_series: int
    coherence: float
    folds: int

    def metrics(self) -> dict[str, Any]:
        """Headline figures (the ``forecast_*`` metrics without the prefix); shares as 0-1."""
        out: dict[str, Any] = {"backtest_mape": None, "backtest_smape": None, "coverage90": None}
        if len(self.accuracy):
            by = self.accuracy.set_index("level")
            top = by.loc["company"]
            out.update(
                {
                    "backtest_mape": float(top["mape"]) / 100.0,
                    "backtest_smape": float(top["smape"]) / 100.0,
                    "backtest_mase": float(top["mase"]),
                    "backtest_bias": float(top["percent_bias"]) / 100.0,
                    "backtest_within_5pct": float(top["within_5pct"]),
                    "backtest_within_10pct": float(top["within_10pct"]),
                    "coverage90": float(top.get("coverage90", np.nan)),
                    "coverage80": float(top.get("coverage80", np.nan)),
                    "backtest_folds": self.folds,
                }
            )
            for lv in by.index[1:]:
                out[f"backtest_mase_{lv}"] = float(by.loc[lv, "mase"])
                out[f"coverage90_{lv}"] = float(by.loc[lv].get("coverage90", np.nan))
        comp = self.table[self.table["level"] == "company"]
        out.update(
            {
                "plan_year_total": float(comp["mean"].sum()),
                "model": self.model,
                "reconciliation": self.reconciliation,
                "series": self.n_series,
                "fallbacks": int((self.fits["fallbacks"] > 0).sum()),
                "clipped": bool(self.table["clipped"].any()),
                "coherence_error": self.coherence,
                "history_months": len(self.panel),
            }
        )
        return out


def model_spec(cfg: ForecastConfig, levels: list[str]) -> Any:
    """The model argument of :func:`forecast_hierarchy`: one name, or one per level with ``company_model``."""
    if cfg.company_model is None:
        return cfg.model
    return {lv: (cfg.company_model if lv in ("company", "region") else cfg.model) for lv in levels}


def forecast_plan_year(
    bookings: pd.DataFrame,
    reps: pd.DataFrame,
    cfg: ForecastConfig,
    plan_year: int,
    as_of: pd.Timestamp,
    seed: int,
    client: Any = None,
) -> PlanYearForecast:
    """Forecast the 12 months of ``plan_year`` at every level, reconcile, backtest.

    Parameters
    ----------
    bookings, reps
        Canonical tables; under a territory plan, the realigned ones (history follows accounts, so
        each rep's series is the history of his new territory).
    cfg
        The scenario's ``forecast:`` section.
    plan_year
        The year forecast; its first month must come after the last complete month of history.
    as_of
        Snapshot date of the data.
    seed
        Seed of the models that simulate (integer).
    client
        A ``dask.distributed.Client`` to fit the series on (forecast and backtest); ``cfg.n_jobs`` is
        then ignored. The numbers are the same with or without it, for any number of workers.

    Raises
    ------
    DataValidationError
        Too short a history, or a history that runs into the plan year.
    """
    panel, keys = monthly_panel(bookings, reps, cfg.levels, as_of, cfg.min_history_months)
    last = panel.index[-1]
    plan_start = pd.Period(f"{plan_year}-01", freq="M")
    horizon = (plan_start.ordinal + 11) - last.ordinal
    if horizon < 12:
        raise DataValidationError(
            "bookings",
            [
                f"history runs to {last}, inside or past plan year {plan_year}; set the scenario's plan_year after "
                "the last complete month of bookings."
            ],
        )
    spec, names = hierarchy_levels(cfg.levels)
    try:
        hierarchy = build_hierarchy(keys, spec, names, label="last", top_label="company")
    except DataValidationError:  # e.g. segment names repeat across regions: label by path
        hierarchy = build_hierarchy(keys, spec, names, label="path", top_label="company")
    method = cfg.reconciliation
    fc, backtest, per_node = forecast_with_backtest(panel, hierarchy, cfg, horizon, seed, client=client)
    long = fc.base if method == "none" else fc.reconciled[method]
    coherence = coherence_error(hierarchy, long)
    long = long[long["period"] >= plan_start]
    label = cfg.model if cfg.company_model is None else f"{cfg.company_model}/{cfg.model}"
    table = long.copy()
    table["month"] = table["period"].map(lambda p: p.to_timestamp())
    fitted = fc.fits.set_index(["level", "series"])["model"]
    table["fitted_model"] = [
        fitted.get((lv, s), "") for lv, s in zip(table["level"], table["series"], strict=True)
    ]
    table["model"] = label
    table["reconciliation"] = method
    table["clipped"] = bool(fc.clipped.get(method, False)) or bool(fc.fits["clipped"].any())
    table = table[list(FORECAST_COLUMNS)].reset_index(drop=True)

    accuracy = pd.DataFrame()
    folds = 0
    if len(per_node):
        accuracy = accuracy_by_level(per_node)
        folds = int(per_node["origin"].nunique())
    return PlanYearForecast(
        table,
        fc.fits.copy(),
        panel,
        backtest,
        accuracy,
        cfg.model,
        method,
        int(hierarchy.n),
        coherence,
        folds,
    )


def forecast_with_backtest(
    panel: pd.DataFrame,
    hierarchy: Hierarchy,
    cfg: ForecastConfig,
    horizon: int,
    seed: int,
    *,
    client: Any = None,
    timings: dict[str, float] | None = None,
) -> tuple[HierarchyForecast, pd.DataFrame, pd.DataFrame]:
    """Reconciled forecasts of every node and their rolling-origin backtest, with the settings of ``cfg``.

    The model work of :func:`forecast_plan_year` on a panel and hierarchy already built (a benchmark
    or a notebook may build them otherwise, e.g. with a product level below the rep).

    Parameters
    ----------
    panel
        Bottom series by month, columns the hierarchy's bottom labels [currency/month].
    hierarchy
        From :func:`~salesops_models.forecast.hierarchy.build_hierarchy`.
    cfg
        The ``forecast:`` section (model, reconciliation, backtest, ``n_jobs``).
    horizon
        Months to forecast after the panel's last month.
    seed
        Seed of the models that simulate (integer).
    client
        A ``dask.distributed.Client`` for the fits (``cfg.n_jobs`` is then ignored); the numbers do
        not depend on it or on its number of workers.
    timings
        When given, receives the wall time of each phase [s]: ``forecast_fit``, ``forecast_reconcile``,
        ``backtest_fit``, ``backtest_reconcile``, ``backtest_score`` (reported only).

    Returns
    -------
    (HierarchyForecast, DataFrame, DataFrame)
        The forecast, the backtest rows and the accuracy per node and origin (both empty without folds).
    """
    model = model_spec(cfg, hierarchy.level_names)
    method = cfg.reconciliation
    intervals = {
        "interval_method": cfg.interval_method,
        "calibration_source": cfg.calibration_source,
        "calibration_origins_count": cfg.calibration_origins,
        "calibration_method": cfg.calibration_method,
    }
    fc = forecast_hierarchy(
        panel,
        hierarchy,
        horizon,
        model=model,
        season_length=cfg.season_length,
        methods=[] if method == "none" else [method],
        nonnegative=cfg.nonnegative,
        n_jobs=cfg.n_jobs,
        seed=seed,
        client=client,
        bound_factor=cfg.bound_factor,
        **intervals,
    )
    if timings is not None:
        timings.update({f"forecast_{k}": v for k, v in fc.timings.items()})
    backtest = per_node = pd.DataFrame()
    if cfg.backtest_folds > 0:
        phases: dict[str, float] = {}
        backtest, per_node = backtest_hierarchy(
            panel,
            hierarchy,
            horizon=cfg.backtest_horizon,
            folds=cfg.backtest_folds,
            step=cfg.backtest_step,
            season_length=cfg.season_length,
            method=method,
            model=model,
            nonnegative=cfg.nonnegative,
            n_jobs=cfg.n_jobs,
            seed=seed,
            client=client,
            timings=phases,
            interval_options=intervals,
            bound_factor=cfg.bound_factor,
        )
        if timings is not None:
            timings.update({f"backtest_{k}": v for k, v in phases.items()})
    return fc, backtest, per_node
