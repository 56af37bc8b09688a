"""Oracles: the analytic Normal(1, 0.1) expectation, pbpython's Monte Carlo, calibration to stated facts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from salesops_models.compensation import (
    AttainmentSamples,
    CompInputs,
    calibrate_attainment,
    compare_plans,
    compute_payouts,
    cost_plan_across,
    credit_factors,
    load_plan,
    plan_from_dict,
    simulate_cost,
    tier_curve,
)


def expected_accelerated(mu: float, sigma: float, m: float) -> float:
    """E[g(A)] for g = A up to 1 and m above, A ~ N(mu, sigma) (FIELD-NOTES 3.4)."""
    d = (mu - 1) / sigma
    return mu + (m - 1) * (sigma * stats.norm.pdf(d) + (mu - 1) * stats.norm.cdf(d))


def test_analytic_formula_gives_the_published_figure():
    assert expected_accelerated(1.0, 0.1, 2.0) == pytest.approx(1.0398942, abs=5e-8)
    # and numerical integration of the engine's own tier curve agrees with the closed form
    rt = load_plan("uncapped_1x_2x").measures[0].rate_table
    val, _ = integrate.quad(
        lambda a: tier_curve(rt, np.array([a]))[0] * stats.norm.pdf(a, 1, 0.1), -1, 3, points=[1.0]
    )
    assert val == pytest.approx(1.0398942, abs=1e-7)


def test_monte_carlo_expectation_within_three_standard_errors():
    plan = load_plan("uncapped_1x_2x")
    ti = plan.pay.target_incentive
    rng = np.random.default_rng(20261126)
    reps, trials = 200, 2_000
    quota = np.full(reps, 1e6)
    a = rng.normal(1.0, 0.1, (reps, trials))
    out = compute_payouts(plan, a * quota[:, None], quota, credit_factors(plan, ["r"] * reps, None, []))
    x = out.variable.ravel() / ti
    se = x.std(ddof=1) / np.sqrt(x.size)
    z = (x.mean() - 1.0398942) / se
    assert abs(z) < 3, f"MC mean {x.mean():.6f}, SE {se:.2e}, z {z:.2f}"
    assert 3 * se < 1e-3  # the check has teeth: a 0.1 % error in the engine would fail it


def test_capped_accelerator_subtracts_the_term_at_the_cap():
    # attainment cap C = 1.1: E = E_uncapped - m [sigma phi(dC) + (mu - C) Phi(dC)], dC = (mu - C) / sigma
    mu, sigma, m, c = 1.0, 0.1, 2.0, 1.1
    dc = (mu - c) / sigma
    expected = expected_accelerated(mu, sigma, m) - m * (
        sigma * stats.norm.pdf(dc) + (mu - c) * stats.norm.cdf(dc)
    )
    doc = load_plan("uncapped_1x_2x").model_dump(by_alias=True)
    doc["measures"][0]["attainment_cap"] = c
    rt_plan = plan_from_dict(doc)
    grid = np.linspace(-1, 3, 400_001)
    g = tier_curve(rt_plan.measures[0].rate_table, np.minimum(grid, c))
    numeric = integrate.trapezoid(g * stats.norm.pdf(grid, mu, sigma), grid)
    assert numeric == pytest.approx(expected, abs=1e-7)
    assert expected < 1.0398942


PB_TARGETS = np.array([75_000, 100_000, 200_000, 300_000, 400_000, 500_000], dtype=float)
PB_PROBS = np.array([0.3, 0.3, 0.2, 0.1, 0.05, 0.05])
PB_ORACLE = 2_859_382.0


def test_pbpython_exact_expectation_through_the_engine():
    """E[total] = 500 x E[target] x sum_k P(A = k %) g(k %), with the engine's g on the rounded grid."""
    plan = load_plan("pbpython_2_3_4")
    grid = np.arange(0, 301) / 100  # attainment rounded to whole percent
    p = stats.norm.cdf((grid + 0.005 - 1) / 0.1) - stats.norm.cdf((grid - 0.005 - 1) / 0.1)
    quota = np.array([1.0])
    credit = credit_factors(plan, ["r"], None, [])
    g = compute_payouts(plan, grid[None, :] * quota[:, None], quota, credit).variable[0]  # per unit of target
    total = 500 * (PB_TARGETS @ PB_PROBS) * float(p @ g)
    assert total == pytest.approx(PB_ORACLE, abs=1.0)
    rate = g / np.where(grid > 0, grid, 1)
    rate[0] = 0.02
    for r, share in ((0.02, 0.171), (0.03, 0.309), (0.04, 0.520)):
        assert p[np.isclose(rate, r)].sum() == pytest.approx(share, abs=5e-4)


def test_pbpython_monte_carlo_within_three_standard_errors():
    plan = load_plan("pbpython_2_3_4")
    rng = np.random.default_rng(7)
    reps, trials = 500, 2_000
    quota = rng.choice(PB_TARGETS, size=(reps, trials), p=PB_PROBS)  # pbpython redraws targets every trial
    pct = rng.normal(1.0, 0.1, (reps, trials))
    # engine per trial: quotas differ by trial here, so pay is computed on unit quota and scaled
    unit = compute_payouts(plan, pct, np.ones(reps), credit_factors(plan, ["r"] * reps, None, [])).variable
    totals = (unit * quota).sum(axis=0)
    se = totals.std(ddof=1) / np.sqrt(trials)
    z = (totals.mean() - PB_ORACLE) / se
    assert abs(z) < 3, f"mean {totals.mean():,.0f}, SE {se:,.0f}, z {z:.2f}"


@pytest.mark.parametrize(
    ("family", "facts"),
    [
        ("normal", {"share_at_quota": 0.6, "sd": 0.2}),
        ("normal", {"mean": 1.05, "sd": 0.2}),
        ("normal", {"share_at_quota": 0.4, "p90": 1.3}),
        ("lognormal", {"share_at_quota": 0.6, "sd": 0.25}),
        ("lognormal", {"share_at_quota": 0.6, "mean": 1.1}),
        ("lognormal", {"median": 1.0, "p90": 1.5}),
        ("lognormal", {"mean": 1.0, "sd": 0.3}),
    ],
)
def test_calibration_meets_the_stated_facts(family, facts):
    d = calibrate_attainment(family, **facts)
    for name, value in facts.items():
        assert d.fact(name) == pytest.approx(value, rel=1e-8)
    rng = np.random.default_rng(1)
    a = d.sample(rng, (200_000,))
    if "share_at_quota" in facts:
        s = facts["share_at_quota"]
        assert abs((a >= 1).mean() - s) < 3 * np.sqrt(s * (1 - s) / a.size)


def test_calibration_closed_form_and_bad_facts():
    d = calibrate_attainment("normal", share_at_quota=0.6, sd=0.2)
    assert d.loc == pytest.approx(1 - 0.2 * stats.norm.ppf(0.4))
    with pytest.raises(ValueError, match="exactly two"):
        calibrate_attainment("normal", share_at_quota=0.6)
    with pytest.raises(ValueError, match="inconsistent"):
        calibrate_attainment("normal", share_at_quota=0.6, p90=0.9)  # p90 below quota but 60 % above it


def test_spread_costs_money_under_accelerators():
    """Same mean attainment, more spread: a convex (accelerated) plan costs more; a flat one does not."""
    rng = np.random.default_rng(11)
    reps = 100
    quota = np.full(reps, 1e6)
    narrow = AttainmentSamples.from_distribution(
        calibrate_attainment("normal", mean=1.0, sd=0.1), [f"r{i}" for i in range(reps)], quota, 500, rng
    )
    wide = AttainmentSamples.from_distribution(
        calibrate_attainment("normal", mean=1.0, sd=0.3), narrow.rep_ids, quota, 500, rng
    )
    accel = load_plan("uncapped_1x_2x")
    table, _ = cost_plan_across(accel, {"narrow": narrow, "wide": wide})
    cost = table.set_index("attainment_set")["variable_cost_mean"]
    # analytic: 100 reps x 100k x E[g]; wide adds (m - 1) sigma phi(0) = 0.2x more
    assert cost["narrow"] == pytest.approx(100 * 100_000 * expected_accelerated(1, 0.1, 2), rel=0.01)
    assert cost["wide"] == pytest.approx(100 * 100_000 * expected_accelerated(1, 0.3, 2), rel=0.01)
    assert cost["wide"] > cost["narrow"] * 1.07


def test_comparison_mode_and_summary_figures():
    rng = np.random.default_rng(5)
    reps = [f"r{i}" for i in range(30)]
    quota = rng.uniform(5e5, 1.5e6, 30)
    samples = AttainmentSamples.from_distribution(
        calibrate_attainment("lognormal", share_at_quota=0.6, sd=0.25), reps, quota, 400, rng
    )
    plans = [load_plan(n) for n in ("ae_standard", "ae_retroactive_capped", "new_hire_draw")]
    table, results = compare_plans(plans, samples, CompInputs(quota_relief={"r0": 1e5}))
    assert list(table["plan"]) == [p.name for p in plans]
    r = results["ae_retroactive_capped"]
    s = r.summary()
    # cost = 30 x base + variable, per trial
    assert np.allclose(r.cost_samples["total_cost"], 30 * 80_000 + r.payouts.variable.sum(axis=0))
    assert s["cost_of_sales"] == pytest.approx(
        r.cost_samples["total_cost"].mean() / r.cost_samples["revenue"].mean()
    )
    assert 0.45 < s["share_at_quota"] < 0.75
    # retroactive capped: nobody earns more than 2.5 x TI
    assert r.payouts.variable.max() <= 2.5 * 80_000 + 1e-6
    assert s["p90_earner_ti_multiple"] <= 2.5
    row = r.payouts_summary.set_index("rep_id").loc["r0"]
    assert row["quota"] == pytest.approx(quota[0] - 1e5)
    assert row["payout_p10"] <= row["payout_p50"] <= row["payout_p90"]


def test_cost_of_sales_by_quartile_falls_with_attainment():
    rng = np.random.default_rng(2)
    reps = [f"r{i}" for i in range(40)]
    quota = np.full(40, 1e6)
    samples = AttainmentSamples.from_distribution(
        calibrate_attainment("lognormal", share_at_quota=0.6, sd=0.3), reps, quota, 300, rng
    )
    r = simulate_cost(load_plan("ae_retroactive_capped"), samples)
    q = r.cost_of_sales_by_quartile()
    assert list(q["quartile"]) == [1, 2, 3, 4]
    assert q["rep_years"].sum() == 40 * 300 and (q["rep_years"] == 10 * 300).all()
    # the quartiles add up to the whole
    assert q["cost"].sum() == pytest.approx(r.cost_samples["total_cost"].sum())
    assert q["revenue"].sum() == pytest.approx(r.cost_samples["revenue"].sum())
    assert q["mean_attainment"].is_monotonic_increasing
    # base pay weighs on low attainers (accelerators make the middle non-monotone under this plan)
    assert q["cost_of_sales"].iloc[0] > q["cost_of_sales"].iloc[-1]
    # with pay linear in attainment, cost of sales (base + TI A) / (A Q) falls quartile by quartile
    doc = load_plan("uncapped_1x_2x").model_dump(by_alias=True)
    doc["measures"][0]["rate_table"]["tiers"] = [{"from": 0.0, "to": None, "rate": 1.0}]
    flat = simulate_cost(plan_from_dict(doc), samples).cost_of_sales_by_quartile()
    assert flat["cost_of_sales"].is_monotonic_decreasing


def test_bimodal_attainment_costs_more_and_matches_the_mixture_oracle():
    """Same mean attainment (1.0), two modes at 0.8 and 1.2: the 1x/2x plan costs
    sum_i w_i E_i (the closed form per component), more than the unimodal N(1, 0.1)."""
    from salesops_models.compensation import AttainmentMixture
    from salesops_models.compensation.attainment import AttainmentDistribution

    mix = AttainmentMixture(
        (
            (0.5, AttainmentDistribution("normal", 0.8, 0.05)),
            (0.5, AttainmentDistribution("normal", 1.2, 0.05)),
        )
    )
    assert mix.mean() == pytest.approx(1.0)
    assert mix.sd() == pytest.approx(np.sqrt(0.05**2 + 0.2**2))
    assert mix.share_at_quota() == pytest.approx(0.5)
    assert mix.cdf(mix.quantile(0.3)) == pytest.approx(0.3)
    oracle = 0.5 * expected_accelerated(0.8, 0.05, 2) + 0.5 * expected_accelerated(1.2, 0.05, 2)
    plan = load_plan("uncapped_1x_2x")
    rng = np.random.default_rng(4)
    reps = [f"r{i}" for i in range(100)]
    samples = AttainmentSamples.from_distribution(mix, reps, np.full(100, 1e6), 2000, rng)
    x = simulate_cost(plan, samples).payouts.variable.ravel() / plan.pay.target_incentive
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert abs(x.mean() - oracle) < 3 * se
    assert oracle > 1.0398942 + 0.05


def test_config_mixture_facts():
    from salesops_models.compensation.config import AttainmentFacts

    facts = AttainmentFacts.model_validate(
        {
            "components": [
                {"weight": 0.7, "median": 1.2, "sd": 0.15},
                {"weight": 0.3, "median": 0.6, "sd": 0.15},
            ]
        }
    )
    d = facts.distribution()
    assert d.quantile(0.5) > 0.6
    assert d.mean() == pytest.approx(0.7 * d.components[0][1].mean() + 0.3 * d.components[1][1].mean())
    with pytest.raises(ValueError, match="not both"):
        AttainmentFacts.model_validate(
            {"share_at_quota": 0.6, "components": facts.model_dump()["components"]}
        )
    with pytest.raises(ValueError, match="sum to 1"):
        AttainmentFacts.model_validate({"components": [{"weight": 0.5, "median": 1.0, "sd": 0.1}]})
