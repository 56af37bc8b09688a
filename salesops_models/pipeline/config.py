"""Scenario section `pipeline:`: the settings of the pipeline model (owned by the pipeline model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from salesops_models.config_base import StrictModel


class CreationResponseConfig(StrictModel):
    """How opportunity creation follows selling hours and territory workload (the coverage model)."""

    hours_elasticity: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Elasticity of creation to a rep's selling hours [-]; empty: calibrated from history "
        "(rep-quarters of deals created against hours and workload), 1 when history cannot tell.",
    )
    workload_elasticity: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Elasticity of creation to the workload of the rep's territory, with a minus sign [-]: "
        "0 means a territory twice the size with the same hours creates twice the deals, 1 that it creates "
        "the same; empty: calibrated from history, 0 when history cannot tell. Equal elasticities are the "
        "coverage model: creation ~ potential x (hours / workload)^elasticity.",
    )
    quarters: int = Field(
        8, ge=2, le=40, description="Complete quarters of history the calibration uses [quarters]."
    )
    min_rep_quarters: int = Field(
        24,
        ge=4,
        description="Fewer usable rep-quarters than this: no calibration (the elasticities above, or 1 and 0).",
    )
    prior_sd: float = Field(
        0.5,
        gt=0.0,
        description="Standard deviation of the prior around hours elasticity 1 and workload elasticity 0 [-]: "
        "estimates from a short or noisy history are pulled towards them (precision-weighted).",
    )


class CapacityConfig(StrictModel):
    """Capacity-limited reps (simpy): a diagnostic of whether reps have the hours for the pipeline."""

    enabled: bool = Field(
        False,
        description="Also run the simpy capacity model (reps with limited selling hours) and report its "
        "utilisation, queueing and bookings next to the vectorised ones, as a diagnostic (it feeds no other "
        "stage). Slower: it runs `trials` trials of its own.",
    )
    trials: int = Field(
        20, ge=1, le=10_000, description="Trials of the simpy capacity model (each is an event simulation)."
    )
    effort_hours: dict[str, float] | float = Field(
        4.0,
        description="Rep effort a deal needs in each open stage [h/deal/stage]: one number for all stages, "
        "or a mapping stage label -> hours.",
    )
    routing: Literal["owner", "round_robin", "capacity_aware"] = Field(
        "owner",
        description="How new leads reach reps: 'owner' (each rep's own calibrated creation rate), "
        "'round_robin' (a pooled lead stream dealt in turn) or 'capacity_aware' (each lead to the rep "
        "with the least outstanding work).",
    )


class PipelineConfig(StrictModel):
    """Settings of the pipeline stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
    trials: int = Field(
        500, ge=1, le=10_000_000, description="Monte Carlo trials (simulated plan years) [trials]."
    )
    block_size: int = Field(
        250,
        ge=1,
        le=1_000_000,
        description="Trials per random block [trials]. Each block has its own spawned seed, so results are "
        "identical however blocks are grouped into chunks or Dask tasks; changing it changes the numbers.",
    )
    admin_time_reduction: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="What-if: share of each rep's admin hours turned into selling time [0-1]. Creation "
        "rates rise in proportion to selling hours: rate * (S + x*A) / S, S and A the rep's weekly selling "
        "and admin hours from the activities table.",
    )
    default_admin_share: float = Field(
        0.35,
        ge=0.0,
        lt=1.0,
        description="Admin share of working hours used for reps without activities data [0-1].",
    )
    rate_window_weeks: int = Field(
        26,
        ge=4,
        le=520,
        description="Weeks of history before the snapshot date used to estimate each rep's opportunity "
        "creation rate [weeks].",
    )
    seasonality: Literal["auto", "month", "none"] = Field(
        "auto",
        description="Creation seasonality by calendar month: 'month' estimates 12 multipliers from history, "
        "'auto' does so only with at least 24 months of creation dates, 'none' keeps rates flat.",
    )
    creation_trend: Literal["auto", "fit", "none"] = Field(
        "auto",
        description="Growth trend of deal creation: 'auto' fits one (quasi-Poisson on de-seasonalised months) when "
        ">= 24 full months of creation dates exist, 'fit' from >= 6 months, 'none' keeps the rate window's level. "
        "With parameter uncertainty each trial draws its own growth from the fit's standard error.",
    )
    conversion_drift: Literal["auto", "fit", "none"] = Field(
        "none",
        description="Trend of conversion over creation cohorts: 'auto' fits a Cox model of the hazard of winning "
        "in creation date (censoring and delayed entry respected, cluster-robust standard error over monthly "
        "cohorts) and uses it when won deals come from >= 4 monthly cohorts and the slope is significant at 5%: "
        "each cohort's win odds move along it up to the snapshot, the slope drawn per trial from its standard "
        "error; 'fit' uses it whenever it can be fitted; 'none' keeps conversion constant. The calibration "
        "diagnostic 'conversion_drift' says what was used.",
    )
    quarter_end_pull: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Share of won deals closing in a quarter's first two months that are pulled to its last "
        "month (the quarter-end hockey stick) [0-1]; empty: calibrated from history.",
    )
    size_by: Literal["product", "segment", "none"] = Field(
        "product",
        description="Group won deal values by this column when drawing sizes of deals without an amount.",
    )
    size_by_cycle: bool = Field(
        False,
        description="Draw a new deal's value from the won deals of its size group whose created-to-won cycle "
        "fell in the same quantile bin as its simulated cycle (a group of n won deals gets floor(n^(1/3)) bins, "
        "each holding >= 20 won deals; a group that cannot have two: its whole pool), so big deals take longer "
        "as in history; false (the default) draws the value independent of the cycle. Off by default: on the "
        "2025 backtest of the sample company it moves the 12-month plan about 5 % low and the realised "
        "bookings out of the P10-P90 band (docs/pipeline.md section 7).",
    )
    use_open_amounts: bool = Field(
        True,
        description="Use the amount recorded on an open deal as its value when won; otherwise draw one.",
    )
    age_aware: bool = Field(
        True,
        description="Condition an open deal's outcome and remaining time on its age in the current stage "
        "(P(win | stage, age)); false treats every open deal as if it had just entered its stage.",
    )
    stale_policy: Literal["lost", "fresh"] = Field(
        "lost",
        description="Open deals older than every observed exit from their stage: 'lost' (dead pipeline) or "
        "'fresh' (treated as newly entered).",
    )
    history_start: str | None = Field(
        None,
        description="ISO date: calibrate transitions and durations only on deals created on/after it "
        "(guards against left truncation of old cohorts); empty: all history.",
    )
    residual: Literal["no_decision", "redistribute"] = Field(
        "no_decision",
        description="Deals still open after the longest observed time in their stage (the censored tail): "
        "'no_decision' (default, censoring-aware) reads the win rate as the cumulative incidence of winning "
        "and counts the rest as deals that never close; 'redistribute' gives them the won/lost odds of closed "
        "deals (win rate = won / (won + lost); 1.0 for an export without lost deals).",
    )
    observed_from: str | None = Field(
        "auto",
        description="First day the export can show a close (left truncation: deals engaged earlier appear only "
        "if still open then). 'auto': the earliest won/lost date in the history; an ISO date; or empty / 'none' for "
        "no correction. Earlier visits enter the survival risk sets late; creation is counted from this day.",
    )
    uncertainty: Literal["calibrated", "point"] = Field(
        "calibrated",
        description="'calibrated': every trial draws its own parameters (Dirichlet exits, Gamma creation rates, "
        "bootstrapped deal sizes) and shocks (company and rep creation, cohort and rep conversion), all "
        "estimated from history; 'point': every trial uses the point calibration (Monte Carlo noise only).",
    )
    territory_scaling: bool = Field(
        True,
        description="If the territory stage wrote `assignments`, creation follows the accounts: each rep "
        "creates what his new accounts created in history, adjusted by the creation response for his hours "
        "and workload; false keeps each rep's calibrated rate (reps without history then create nothing).",
    )
    new_rep_ramp_months: int = Field(
        6,
        ge=0,
        le=36,
        description="Months for a rep without history (a planned hire, or a rep placed by territory design) "
        "to reach the creation his accounts and hours give him (linear ramp from his hire date).",
    )
    creation_response: CreationResponseConfig = Field(default_factory=CreationResponseConfig)
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)
