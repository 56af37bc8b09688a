"""Scenario section `quota:`: the settings of the quota model (owned by the quota model)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from salesops_models.config_base import StrictModel

QuotaMethod = Literal["top_down", "even", "bottom_up", "optimised", "equal_chance"]
METHODS: tuple[str, ...] = ("top_down", "even", "bottom_up", "optimised", "equal_chance")


class BlendWeights(StrictModel):
    """Weights of the fair-share blend; they must sum to one."""

    potential: float = Field(0.4, ge=0, le=1, description="Weight of the territory's potential [0-1].")
    prior_year: float = Field(0.2, ge=0, le=1, description="Weight of last calendar year's bookings [0-1].")
    ttm: float = Field(0.2, ge=0, le=1, description="Weight of the trailing twelve months' bookings [0-1].")
    forecast: float = Field(
        0.2, ge=0, le=1, description="Weight of the rep-level forecast for the plan year [0-1]."
    )

    @model_validator(mode="after")
    def _sum_to_one(self) -> BlendWeights:
        total = self.potential + self.prior_year + self.ttm + self.forecast
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            scaled = (
                ", ".join(f"{k}: {v / total:.4g}" for k, v in self.as_dict().items()) if total > 0 else ""
            )
            fix = f" Smallest fix: scale them by 1/{total:.4g} -> {scaled}." if total > 0 else ""
            raise ValueError(f"quota.weights must sum to 1, they sum to {total:.6g}.{fix}")
        return self

    def as_dict(self) -> dict[str, float]:
        return {
            "potential": self.potential,
            "prior_year": self.prior_year,
            "ttm": self.ttm,
            "forecast": self.forecast,
        }


class CapacityConfig(StrictModel):
    """Carried-quota capacity planning: how many reps the target needs."""

    enabled: bool = Field(True, description="Compute the capacity plan (table `quota_capacity`).")
    attainment_factor: float = Field(
        0.85,
        gt=0,
        le=2,
        description="Expected bookings of a ramped rep as a share of full productivity [0-2].",
    )
    monthly_attrition: float = Field(
        0.015, ge=0, lt=1, description="Share of reps leaving each month [1/month]."
    )
    backfill_months: int = Field(
        3, ge=0, le=24, description="Months from a departure to the backfill's start [month]."
    )
    productivity: float | None = Field(
        None,
        gt=0,
        description="Annual bookings of a fully ramped rep at full productivity [currency/yr]; default: prior-year "
        "bookings per ramped rep over attainment_factor, so that a ramped rep is expected to book what a "
        "ramped rep booked last year.",
    )
    hiring_plan: list[int] = Field(
        default_factory=lambda: [0] * 12,
        description="New hires starting in each month of the plan year (12 integers) [reps/month].",
    )

    @field_validator("hiring_plan")
    @classmethod
    def _twelve(cls, v: list[int]) -> list[int]:
        if len(v) != 12 or any(h < 0 for h in v):
            raise ValueError(f"must be 12 non-negative integers, one per month (got {len(v)} values)")
        return v


class AccountMove(StrictModel):
    """An account that changes owner during the plan year: pro-rated quota relief."""

    account_id: str = Field(..., description="The account that moves.")
    to_rep_id: str = Field(..., description="The rep who takes it over.")
    effective_date: str = Field(
        ..., description="First day the new owner carries it (ISO date, in the plan year)."
    )


class QuotaConfig(StrictModel):
    """Settings of the quota stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
    method: QuotaMethod = Field(
        "optimised",
        description="How quotas are set: top_down (weighted blend), even, bottom_up (reconciled), optimised "
        "(MILP around the blend), equal_chance (common probability of attainment).",
    )
    weights: BlendWeights = Field(
        default_factory=BlendWeights, description="Fair-share blend weights (sum to 1)."
    )
    over_assignment: float = Field(
        0.0, ge=0, le=1, description="Quotas add up to target x (1 + over_assignment) [share of target]."
    )
    target_growth: float = Field(
        0.10,
        ge=-0.9,
        le=5,
        description="Growth over prior-year bookings used as the target when neither company_target nor the "
        "forecast table is available [share].",
    )
    rounding_unit: float = Field(
        1000.0,
        gt=0,
        description="Annual quotas are multiples of this unit; the sub-unit rest goes to one rep [currency].",
    )
    period_rounding_unit: float = Field(
        1.0,
        gt=0,
        description="Monthly quotas are multiples of this unit, summing exactly to the annual quota [currency].",
    )
    growth_min: float = Field(
        -0.3,
        ge=-1,
        description="Lowest quota vs the rep's prior-year bookings at this year's ramp, as growth (optimised) [share].",
    )
    growth_max: float = Field(
        0.6,
        gt=-1,
        description="Highest quota vs the rep's prior-year bookings at this year's ramp, as growth (optimised) [share].",
    )
    ramp: list[float] = Field(
        default_factory=lambda: [0.1, 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        description="Productivity by month of tenure (month 1, 2, ...), last value held thereafter [0-1].",
    )
    region_tolerance: float | None = Field(
        None,
        ge=0,
        description="Optimised method: each region's quotas within this share of its blended fair share [share]; "
        "None: no region subtotal.",
    )
    manager_tolerance: float | None = Field(
        None,
        ge=0,
        description="Optimised method: each manager's quotas within this share of the team's fair share [share]; "
        "None: no manager subtotal.",
    )
    bottom_up_blend: float = Field(
        1.0,
        ge=0,
        le=1,
        description="bottom_up: weight of the scaled submissions against the top-down share (1 = submissions only).",
    )
    time_limit: float = Field(20.0, gt=0, description="HiGHS wall-clock limit for the optimised method [s].")
    mip_rel_gap: float = Field(1e-4, ge=0, le=1, description="HiGHS relative MIP gap [share].")
    seasonality: Literal["history", "forecast", "flat"] = Field(
        "history", description="Monthly profile for quotas_by_period: bookings history, forecast, or flat."
    )
    forecast_rep_level: str | None = Field(
        None,
        description="`level` of the forecast table whose series are reps; None: the first level named 'rep', "
        "'rep_id' or ending in '/rep_id' (series 'region/R001' are read as 'R001').",
    )
    forecast_company_level: str | None = Field(
        None, description="`level` of the forecast table for the company total; None: 'total' or 'company'."
    )
    forecast_month_correlation: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Correlation of monthly forecast errors when monthly quantiles are added up to a year [0-1].",
    )
    default_cv: float = Field(
        0.25,
        gt=0,
        le=3,
        description="Coefficient of variation of a rep's annual bookings when no samples, forecast or history "
        "exist [share].",
    )
    cv_from_history: bool = Field(
        True,
        description="Parametric fallback: each rep's coefficient of variation from his monthly bookings "
        "(default_cv when he has under 12 months).",
    )
    account_moves: list[AccountMove] = Field(
        default_factory=list, description="Accounts moving mid-year; the old owner gets pro-rated relief."
    )
    compare_methods: bool = Field(
        True, description="Also run every other method and write the fairness table `quota_fairness`."
    )
    capacity: CapacityConfig = Field(
        default_factory=CapacityConfig, description="Carried-quota capacity plan."
    )

    @field_validator("ramp")
    @classmethod
    def _ramp_ok(cls, v: list[float]) -> list[float]:
        if not v or any(x < 0 or x > 1 for x in v):
            raise ValueError("must be a non-empty list of shares in [0, 1], e.g. [0.25, 0.5, 0.75, 1.0]")
        return v

    @model_validator(mode="after")
    def _bounds_ordered(self) -> QuotaConfig:
        if self.growth_min > self.growth_max:
            raise ValueError(
                f"quota.growth_min ({self.growth_min}) is above quota.growth_max ({self.growth_max}); "
                "swap them or widen the band."
            )
        return self
