"""Compensation model: commission plans in YAML, an exact vectorised payout engine, cost simulation.

Typical use::

    from salesops_models import compensation as comp
    plan = comp.load_plan("ae_standard")
    dist = comp.calibrate_attainment("lognormal", share_at_quota=0.6, sd=0.25)
    samples = comp.AttainmentSamples.from_distribution(dist, rep_ids, quotas, 2000, rng)
    result = comp.simulate_cost(plan, samples)
    result.summary()
"""

from salesops_models.compensation.attainment import (
    AttainmentDistribution,
    AttainmentMixture,
    AttainmentSamples,
    calibrate_attainment,
)
from salesops_models.compensation.engine import PayoutArrays, compute_payouts, credit_factors, tier_curve
from salesops_models.compensation.plan import CompPlan, load_plan, plan_from_dict, shipped_plans
from salesops_models.compensation.simulation import (
    CompInputs,
    CostSimulation,
    compare_plans,
    cost_plan_across,
    simulate_cost,
)
from salesops_models.compensation.statements import payout_traces
from salesops_models.compensation.trace import PayoutTrace, bookings_for_payout, payout_trace

__all__ = [
    "AttainmentDistribution",
    "AttainmentMixture",
    "AttainmentSamples",
    "CompInputs",
    "CompPlan",
    "CostSimulation",
    "PayoutArrays",
    "PayoutTrace",
    "bookings_for_payout",
    "calibrate_attainment",
    "compare_plans",
    "compute_payouts",
    "cost_plan_across",
    "credit_factors",
    "load_plan",
    "payout_trace",
    "payout_traces",
    "plan_from_dict",
    "shipped_plans",
    "simulate_cost",
    "tier_curve",
]
