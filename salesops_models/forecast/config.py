"""Scenario section `forecast:`: the settings of the forecast model (owned by the forecast model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from salesops_models.config_base import StrictModel

ModelName = Literal[
    "naive",
    "snaive",
    "naive2",
    "ets",
    "ets_damped",
    "ses",
    "arima",
    "theta",
    "combination",
    "combination_median",
    "auto",
    "ets_statsmodels",
    "arima_statsmodels",
    "theta_statsmodels",
    "combination_statsmodels",
]
IntervalMethod = Literal["calibrated", "gaussian"]
CalibrationMethod = Literal["shrunk_scale", "pooled"]
CalibrationSource = Literal["refit", "refilter"]
ReconciliationName = Literal["bottom_up", "top_down", "ols", "wls_struct", "wls_var", "mint_shrink", "none"]


class PipelineBlendConfig(StrictModel):
    """Blend of the time-series forecast with the pipeline Monte Carlo for the first months."""

    enabled: bool = Field(
        True,
        description="Reconcile the forecast with the pipeline projection (table 'pipeline_by_month') in the "
        "reconcile stage, after both have run; the quota target is the reconciled forecast. False: the "
        "reconciled forecast is the time-series forecast unchanged.",
    )
    months: int = Field(
        3, ge=1, le=12, description="Months from the start of the plan year to blend [months]."
    )
    weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of the pipeline projection in the blend [0-1]."
    )


class ForecastConfig(StrictModel):
    """Settings of the forecast stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
    model: ModelName = Field(
        "theta",
        description="Forecasting model for every series: 'theta' (fast, strong on short sales series), "
        "'ets_damped', 'ets' (automatic ETS by AICc), 'arima' (automatic SARIMA), 'combination' (mean of "
        "ets, arima and theta), 'auto' (per series, the best of theta, ets, arima and snaive in a backtest; "
        "slowest), 'snaive', 'naive2', ...; ets, arima and theta are compiled (numba), the statsmodels "
        "versions stay as 'ets_statsmodels', 'arima_statsmodels', 'theta_statsmodels'.",
    )
    company_model: ModelName | None = Field(
        None, description="Model for the company and region levels only (None: same as 'model')."
    )
    levels: list[str] = Field(
        default_factory=lambda: ["company", "region", "rep"],
        description="Hierarchy levels, top first: 'company' (the total), then any of 'region', 'segment', 'rep'.",
    )
    reconciliation: ReconciliationName = Field(
        "mint_shrink",
        description="How levels are made to add up: bottom_up, top_down (historical proportions), ols, wls_struct, "
        "wls_var, mint_shrink (MinT with shrunk residual covariance), or none (base forecasts).",
    )
    season_length: int = Field(12, ge=1, le=12, description="Seasonal period of monthly bookings [months].")
    nonnegative: bool = Field(True, description="Clip negative forecasts to 0 (flagged in the output).")
    bound_factor: float = Field(
        10.0, gt=1.0, description="A forecast above this multiple of the history's maximum is rejected [-]."
    )
    backtest_horizon: int = Field(12, ge=1, le=24, description="Horizon of each backtest fold [months].")
    backtest_folds: int = Field(
        2, ge=0, le=12, description="Rolling origins of the backtest (0: no backtest)."
    )
    backtest_step: int = Field(3, ge=1, le=12, description="Months between backtest origins [months].")
    min_history_months: int = Field(
        12, ge=3, description="Fewer complete months of history than this is an error [months]."
    )
    n_jobs: int = Field(
        1, description="Worker processes for the fits (1: in-process, required inside Dask workers)."
    )
    interval_method: IntervalMethod = Field(
        "calibrated",
        description="How quantiles are made: 'calibrated' (empirical quantiles of the model's own errors from "
        "earlier forecast origins, standardised by its predictive sd and pooled per hierarchy level; they cover "
        "what really happened) or 'gaussian' (the model's own normal/simulated quantiles, too narrow on real data).",
    )
    calibration_source: CalibrationSource = Field(
        "refit",
        description="Forecasts from earlier origins for 'calibrated' intervals: 'refit' re-estimates each model "
        "on the shorter history (out-of-sample errors, warm-started), 'refilter' keeps the parameters and re-runs "
        "the filter (cheaper, optimistic on short histories).",
    )
    calibration_method: CalibrationMethod = Field(
        "shrunk_scale",
        description="How 'calibrated' intervals turn the pooled errors into quantiles: 'shrunk_scale' gives each "
        "series its own error scale, estimated from its earlier origins and shrunk towards the level's pool by "
        "how well a series' past error size predicts its next (estimated from the data), with the conformal "
        "finite-sample correction; 'pooled' uses one pooled quantile per step for every series of a level.",
    )
    calibration_origins: int = Field(
        12,
        ge=3,
        le=60,
        description="Earlier origins per series whose forecast errors calibrate the intervals (spread over the "
        "last two horizons) [-].",
    )
    pipeline_blend: PipelineBlendConfig = Field(default_factory=PipelineBlendConfig)

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[str]) -> list[str]:
        allowed = {"company", "region", "segment", "rep"}
        bad = [x for x in v if x not in allowed]
        if bad:
            raise ValueError(f"unknown level(s) {bad}; allowed: company, region, segment, rep")
        if len(v) < 2 or v[0] != "company":
            raise ValueError(
                "the first level must be 'company' (the total), followed by at least one more level"
            )
        if len(set(v)) != len(v):
            raise ValueError("levels must not repeat")
        return v
