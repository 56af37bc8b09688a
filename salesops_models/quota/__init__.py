"""Quota model: a company target split into fair, explainable rep quotas.

Methods: top-down weighted blend (:func:`allocate_top_down`), even split (:func:`allocate_even`),
bottom-up reconciliation (:func:`reconcile_bottom_up`), an L1 MILP around the fair share with
growth, ramp and subtotal bounds (:func:`optimise_quotas`), and equal-chance quotas
(:func:`quota_by_equal_attainment_probability`). Around them: seasonality split and quota relief
(:mod:`.periods`), carried-quota capacity planning (:mod:`.capacity`), fairness figures
(:mod:`.fairness`).
"""

from salesops_models.quota.allocation import (
    QuotaResult,
    allocate_even,
    allocate_top_down,
    fair_shares,
    reconcile_bottom_up,
    round_to_unit,
)
from salesops_models.quota.basis import ramp_by_month, rep_basis
from salesops_models.quota.capacity import CapacityPlan, carried_quota_plan
from salesops_models.quota.equal_chance import (
    BookingsDistribution,
    LognormalBookings,
    NormalBookings,
    QuantileBookings,
    SampleBookings,
    annual_quantiles_from_monthly,
    equal_chance_p,
    quota_by_equal_attainment_probability,
)
from salesops_models.quota.fairness import compare_methods, fairness_figures, run_method
from salesops_models.quota.optimise import Subtotal, optimise_quotas
from salesops_models.quota.periods import (
    quota_relief,
    remaining_share,
    seasonal_profile_from_forecast,
    seasonal_profile_from_history,
    split_by_period,
)
from salesops_models.quota.risk import QuarterlyAttainmentRisk, quarterly_attainment_risk

__all__ = [
    "BookingsDistribution",
    "CapacityPlan",
    "LognormalBookings",
    "NormalBookings",
    "QuantileBookings",
    "QuarterlyAttainmentRisk",
    "QuotaResult",
    "SampleBookings",
    "Subtotal",
    "allocate_even",
    "allocate_top_down",
    "annual_quantiles_from_monthly",
    "carried_quota_plan",
    "compare_methods",
    "equal_chance_p",
    "fair_shares",
    "fairness_figures",
    "optimise_quotas",
    "quota_by_equal_attainment_probability",
    "quarterly_attainment_risk",
    "quota_relief",
    "ramp_by_month",
    "reconcile_bottom_up",
    "remaining_share",
    "rep_basis",
    "round_to_unit",
    "run_method",
    "seasonal_profile_from_forecast",
    "seasonal_profile_from_history",
    "split_by_period",
]
