"""Equal-chance quotas against the closed form for normal bookings, and on samples and quantiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from salesops_models.errors import InfeasibleError
from salesops_models.quota import (
    LognormalBookings,
    NormalBookings,
    QuantileBookings,
    SampleBookings,
    annual_quantiles_from_monthly,
    equal_chance_p,
    quota_by_equal_attainment_probability,
)

REPS = pd.Index(["R1", "R2", "R3", "R4"], name="rep_id")
MU = pd.Series([1_000_000.0, 800_000.0, 1_500_000.0, 400_000.0], index=REPS)
SD = pd.Series([200_000.0, 300_000.0, 250_000.0, 100_000.0], index=REPS)


def basis_for(index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({"ramp_factor": 1.0, "prior_year": 1.0, "potential": 1.0}, index=index)


@pytest.mark.parametrize("target", [3_000_000.0, 3_700_000.0, 4_200_000.0])
def test_normal_closed_form(target):
    # Q_r = mu_r + sigma_r z, sum = T  ->  z = (T - sum mu) / sum sigma, p = 1 - Phi(z)
    z = (target - MU.sum()) / SD.sum()
    p_exact = 1 - stats.norm.cdf(z)
    dist = NormalBookings(MU, SD)
    assert equal_chance_p(dist, target) == pytest.approx(p_exact, abs=1e-10)
    res = quota_by_equal_attainment_probability(basis_for(REPS), dist, target, rounding_unit=0.01)
    assert res.quotas["unrounded_quota"].to_numpy() == pytest.approx((MU + SD * z).to_numpy(), rel=1e-9)
    assert res.quota.sum() == pytest.approx(target, abs=1e-6)
    assert res.quotas["p_attain"].to_numpy() == pytest.approx(p_exact, abs=1e-6)
    assert res.extra["equal_chance_p"] == pytest.approx(p_exact, abs=1e-10)


def test_lognormal_every_rep_same_probability():
    dist = LognormalBookings(MU, 0.4)
    res = quota_by_equal_attainment_probability(basis_for(REPS), dist, 3_900_000.0, rounding_unit=1.0)
    p = res.quotas["p_attain"]
    assert p.max() - p.min() < 1e-5
    assert res.quota.sum() == 3_900_000.0
    # with one cv, lognormal quantiles are proportional to the means
    assert (res.quotas["unrounded_quota"] / MU).std() < 1e-9


def test_samples_converge_to_normal_case():
    rng = np.random.default_rng(11)
    n = 40_000
    rows = [
        pd.DataFrame({"trial": np.arange(n), "rep_id": r, "bookings": rng.normal(MU[r], SD[r], n)})
        for r in REPS
    ]
    dist = SampleBookings(pd.concat(rows))
    target = 3_500_000.0
    p_exact = 1 - stats.norm.cdf((target - MU.sum()) / SD.sum())
    p = equal_chance_p(dist, target)
    assert p == pytest.approx(p_exact, abs=0.01)  # Monte Carlo error of the sample quantiles
    res = quota_by_equal_attainment_probability(basis_for(REPS), dist, target, rounding_unit=1000.0)
    assert res.quota.sum() == target
    assert (res.quotas["p_attain"] - p).abs().max() < 0.01


def test_sample_quantile_matches_numpy():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"trial": np.tile(np.arange(101), 2), "rep_id": np.repeat(["A", "B"], 101)})
    df["bookings"] = rng.gamma(2.0, 1000.0, len(df))
    dist = SampleBookings(df)
    for u in (0.0, 0.137, 0.5, 0.9, 1.0):
        expect = [np.quantile(df.loc[df.rep_id == r, "bookings"], u) for r in ("A", "B")]
        assert dist.quantile(u) == pytest.approx(expect)


def test_samples_out_of_range_target_is_explained():
    df = pd.DataFrame(
        {"trial": [0, 1, 0, 1], "rep_id": ["A", "A", "B", "B"], "bookings": [1.0, 3.0, 2.0, 4.0]}
    )
    dist = SampleBookings(df)
    with pytest.raises(InfeasibleError, match="exceeds the sum of every rep's highest bookings 7"):
        equal_chance_p(dist, 8.0)
    with pytest.raises(InfeasibleError, match="below the sum"):
        equal_chance_p(dist, 2.0)
    assert equal_chance_p(dist, 5.0) == pytest.approx(0.5)


def test_quantile_table_exact_for_normal():
    # normal quantiles are linear in z, so interpolation in normal-score space is exact, tails included
    levels = [5, 10, 25, 50, 75, 90, 95]
    table = pd.DataFrame(
        {f"q{lv:02d}": MU + SD * stats.norm.ppf(lv / 100) for lv in levels},
        index=REPS,
    )
    dist = QuantileBookings(table)
    for target in (2_000_000.0, 3_700_000.0, 5_000_000.0):
        p_exact = 1 - stats.norm.cdf((target - MU.sum()) / SD.sum())
        assert equal_chance_p(dist, target) == pytest.approx(p_exact, abs=1e-9)
    q = MU + SD * 0.3
    assert dist.prob_at_least(q.to_numpy()) == pytest.approx(1 - stats.norm.cdf(0.3), abs=1e-9)


def test_annual_quantiles_from_monthly_rho_0_and_1():
    mu_m, sd_m = 100.0, 10.0
    lv = {"q05": stats.norm.ppf(0.05), "q50": 0.0, "q95": stats.norm.ppf(0.95)}
    monthly = pd.DataFrame(
        [{"series": "R1", "month": m, **{k: mu_m + sd_m * z for k, z in lv.items()}} for m in range(12)]
    )
    ind = annual_quantiles_from_monthly(monthly, correlation=0.0)
    assert ind.loc["R1", "q95"] == pytest.approx(1200 + lv["q95"] * sd_m * np.sqrt(12))
    como = annual_quantiles_from_monthly(monthly, correlation=1.0)
    assert como.loc["R1", "q05"] == pytest.approx(12 * (mu_m + sd_m * lv["q05"]))
    assert como.loc["R1", "q50"] == pytest.approx(1200.0)
