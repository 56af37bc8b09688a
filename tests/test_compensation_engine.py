"""Exact payouts: hand-computed cases, the three tier modes, and the engine held to the scalar trace."""

from __future__ import annotations

import numpy as np
import pytest

from salesops_models.compensation import (
    compute_payouts,
    credit_factors,
    load_plan,
    payout_trace,
    plan_from_dict,
    shipped_plans,
    tier_curve,
)
from salesops_models.compensation.engine import spif_factors


def table(mode: str, tiers: list[tuple[float, float | None, float]], unit: str = "ti_multiple") -> dict:
    return {"mode": mode, "rate_unit": unit, "tiers": [{"from": a, "to": b, "rate": r} for a, b, r in tiers]}


def plan(rate_table: dict, ti: float = 40_000.0, **extra) -> object:
    measure = {"name": "bookings", "rate_table": rate_table}
    measure.update(extra.pop("measure", {}))
    doc = {"name": "hand", "pay": {"base_salary": 0.0, "target_incentive": ti}, "measures": [measure]}
    doc.update(extra)
    return plan_from_dict(doc)


def pay(p, bookings, quota, *, by_period=None, mix=None, products=(), deal_size=None, **kw) -> dict:
    """Engine payout for one rep (one trial), as floats."""
    b = np.array([[float(bookings)]])
    q = np.array([float(quota)])
    mix_m = None if mix is None else np.array([[mix[p_] for p_ in products]])
    credit = credit_factors(p, ["r"], mix_m, list(products))
    spif = spif_factors(p, mix_m, list(products), deal_size or {}) if p.spifs else None
    bp = None if by_period is None else np.array(by_period, dtype=float)[:, None, None]
    out = compute_payouts(p, b, q, credit, bookings_by_period=bp, spif_units=spif, **kw)
    return {k: (None if v is None else float(v[0, 0])) for k, v in out.__dict__.items()}


EXAMPLE = [(0.0, 1.0, 1.0), (1.0, 1.25, 1.5), (1.25, None, 2.0)]


@pytest.mark.parametrize(
    ("mode", "expected"), [("marginal", 167.5), ("overage_at_reached_tier", 180.0), ("retroactive", 280.0)]
)
def test_field_notes_140_percent_example_three_modes(mode, expected):
    # quota 100k, base rate r = 10 % of bookings: pay = expected x r x 1k
    p = plan(table(mode, [(a, b, 0.10 * r) for a, b, r in EXAMPLE], unit="bookings_share"))
    assert pay(p, 140_000, 100_000)["variable"] == pytest.approx(expected * 0.10 * 1000, rel=1e-12)
    assert payout_trace(p, 140_000.0, 100_000.0).variable == pytest.approx(expected * 100, rel=1e-12)
    # the same table in multiples of the target incentive (TI 100k): g(1.4) = expected / 100
    q = plan(table(mode, EXAMPLE), ti=100_000)
    assert tier_curve(q.measures[0].rate_table, np.array([1.4]))[0] == pytest.approx(expected / 100)
    assert pay(q, 140_000, 100_000)["variable"] == pytest.approx(expected * 1000)


def test_tier_boundary_belongs_to_the_lower_tier():
    rt = plan(table("retroactive", EXAMPLE)).measures[0].rate_table
    g = tier_curve(rt, np.array([1.0, 1.25, 1.2500001]))
    assert g[0] == 1.0  # exactly at quota: base rate
    assert g[1] == pytest.approx(1.25 * 1.5)  # exactly 125 %: still the 1.5x tier
    assert g[2] == pytest.approx(1.2500001 * 2.0)


DECEL = [(0.0, 0.5, 0.5), (0.5, 1.0, 1.5), (1.0, 1.5, 2.0), (1.5, None, 3.0)]


@pytest.mark.parametrize(
    ("attainment", "expected"),
    [
        (0.30, 0.0),  # below the 40 % threshold
        (0.45, 13_500.0),  # 0.45 x 0.5 = 0.225 x 60k (decelerator)
        (0.80, 42_000.0),  # 0.25 + 0.3 x 1.5 = 0.70 x 60k
        (1.00, 60_000.0),  # 1.0 x TI at quota
        (1.20, 84_000.0),  # 1 + 0.2 x 2 = 1.4 x 60k
        (1.90, 150_000.0),  # 1 + 0.5 x 2 + 0.4 x 3 = 3.2 x 60k = 192k, capped at 2.5 x 60k
    ],
)
def test_hand_computed_threshold_decelerator_accelerator_cap(attainment, expected):
    p = plan(table("marginal", DECEL), ti=60_000, measure={"threshold": 0.4, "payout_cap": 2.5})
    got = pay(p, attainment * 500_000, 500_000)
    assert got["variable"] == pytest.approx(expected, abs=1e-6)
    assert payout_trace(p, attainment * 500_000, 500_000.0).variable == pytest.approx(expected, abs=1e-6)


def test_attainment_cap_stops_crediting():
    p = plan(table("marginal", DECEL), ti=60_000, measure={"attainment_cap": 1.5})
    assert pay(p, 1.9 * 500_000, 500_000)["variable"] == pytest.approx(2.0 * 60_000)  # g(1.5) = 1 + 0.5 x 2


@pytest.mark.parametrize(
    ("attainment", "marginal", "retroactive"),
    [(0.4, 0.20, 0.20), (0.8, 0.70, 1.20), (1.2, 1.40, 2.40), (1.8, 2.90, 5.40)],
)
def test_marginal_versus_retroactive_on_the_same_table(attainment, marginal, retroactive):
    # retroactive = 0.8 x 1.5; 1.2 x 2; 1.8 x 3. marginal: 0.25 + 0.3 x 1.5; 1 + 0.4; 1 + 1 + 0.9
    m = plan(table("marginal", DECEL), ti=1.0)
    r = plan(table("retroactive", DECEL), ti=1.0)
    assert pay(m, attainment * 1e6, 1e6)["variable"] == pytest.approx(marginal)
    assert pay(r, attainment * 1e6, 1e6)["variable"] == pytest.approx(retroactive)


FLAT2 = [(0.0, 1.0, 1.0), (1.0, None, 2.0)]


def quarterly(basis: str, holdback: float = 0.0, recover: bool = False, **extra):
    sched = {"frequency": "quarterly", "basis": basis, "holdback": holdback, "recover_overpayment": recover}
    return plan(table("marginal", FLAT2), ti=40_000, payout=sched, **extra)


def test_quarterly_cumulative_pays_ytd_and_trues_up():
    p = quarterly("cumulative")
    # Q1 YTD 1.5 -> 2.0 x 10k = 20k; Q2 YTD 1.0 -> 20k, nothing more; Q3 0.667 -> 20k; Q4 1.0 -> 40k, due 20k
    got = pay(p, 400_000, 400_000, by_period=[150_000, 50_000, 0, 200_000])
    assert got["variable"] == pytest.approx(40_000)
    assert got["true_up"] == pytest.approx(0.0)
    # a strong Q1 then nothing: 30k paid in Q1, annual earnings 20k; overpayment forgiven or recovered
    got = pay(p, 200_000, 400_000, by_period=[200_000, 0, 0, 0])
    assert got["variable"] == pytest.approx(30_000)
    assert pay(quarterly("cumulative", recover=True), 200_000, 400_000, by_period=[200_000, 0, 0, 0])[
        "variable"
    ] == pytest.approx(20_000)


def test_quarterly_discrete_with_holdback_and_true_up():
    p = quarterly("discrete", holdback=0.1)
    # quarters 1.5, 0.5, 0, 2.0 of 100k: earn 20k, 5k, 0, 30k; 90 % paid = 49.5k; annual 1.0 -> 40k
    lumpy = [150_000, 50_000, 0, 200_000]
    got = pay(p, 400_000, 400_000, by_period=lumpy)
    assert got["variable"] == pytest.approx(49_500)  # negative true-up forgiven: lumpy quarters cost more
    assert pay(quarterly("discrete", 0.1, recover=True), 400_000, 400_000, by_period=lumpy)[
        "variable"
    ] == pytest.approx(40_000)
    even = pay(p, 400_000, 400_000, by_period=[100_000] * 4)
    assert even["variable"] == pytest.approx(40_000)  # 4 x 9k + true-up 4k
    assert even["true_up"] == pytest.approx(4_000)


def draw_plan(recoverable: bool, forgive: bool = False):
    sched = {"frequency": "quarterly", "basis": "discrete"}
    draw = {"amount_per_period": 8_000, "recoverable": recoverable, "forgive_at_year_end": forgive}
    return plan(table("marginal", [(0.0, None, 1.0)]), ti=40_000, payout=sched, draw=draw)


def test_recoverable_draw_is_paid_back_from_later_commission():
    # earned 0, 5k, 25k, 10k: paid 8k (bal 8k), 8k (bal 11k), 25k - 11k = 14k (bal 0), 10k
    got = pay(draw_plan(True), 400_000, 400_000, by_period=[0, 50_000, 250_000, 100_000])
    assert got["variable"] == pytest.approx(40_000)
    assert got["draw_balance"] == pytest.approx(0.0)
    # non-recoverable: the guarantee is never paid back
    got = pay(draw_plan(False), 400_000, 400_000, by_period=[0, 50_000, 250_000, 100_000])
    assert got["variable"] == pytest.approx(51_000)


def test_recoverable_draw_balance_at_year_end():
    # earned 0, 5k, 5k, 10k: paid 8k, 8k, 8k, 10k - 2k = 8k; balance 8k + 3k + 3k - 2k = 12k
    got = pay(draw_plan(True), 200_000, 400_000, by_period=[0, 50_000, 50_000, 100_000])
    assert got["variable"] == pytest.approx(32_000)
    assert got["draw_balance"] == pytest.approx(12_000)
    got = pay(draw_plan(True, forgive=True), 200_000, 400_000, by_period=[0, 50_000, 50_000, 100_000])
    assert got["draw_balance"] == pytest.approx(0.0)
    tr = payout_trace(draw_plan(True), [0.0, 50_000.0, 50_000.0, 100_000.0], 400_000.0)
    assert (tr.variable, tr.draw_balance) == pytest.approx((32_000, 12_000))


def test_clawback_recovers_commission_on_reversed_bookings():
    p = plan(table("marginal", FLAT2), clawback={"reversed_share": 0.1})
    # gross 500k / 400k = 1.25 -> 1.5 x 40k = 60k; net 450k -> 1.125 -> 1.25 x 40k = 50k
    got = pay(p, 500_000, 400_000)
    assert (got["variable"], got["clawback"], got["earned"]) == pytest.approx((50_000, 10_000, 50_000))


def test_spifs_product_weights_and_quota_relief():
    doc_extra = {
        "spifs": [
            {
                "name": "multi_year",
                "product": "Core",
                "kind": "per_deal",
                "amount": 1_000,
                "qualifying_share": 0.2,
            },
            {
                "name": "capped",
                "product": "Core",
                "kind": "per_deal",
                "amount": 1_000,
                "qualifying_share": 0.2,
                "max_per_rep": 1_500,
            },
            {
                "name": "share",
                "product": "Core",
                "kind": "bookings_share",
                "amount": 0.01,
                "qualifying_share": 0.2,
            },
        ],
        "measure": {"product_weights": {"Core": 1.0, "Services": 0.5}, "other_products_weight": 0.0},
    }
    p = plan(table("marginal", FLAT2), **doc_extra)
    mix = {"Core": 0.6, "Services": 0.4}
    # credited 500k x (0.6 + 0.2) = 400k = quota -> 40k; SPIF units 500k x 0.6 x 0.2 / 20k = 3 deals
    got = pay(p, 500_000, 400_000, mix=mix, products=("Core", "Services"), deal_size={"Core": 20_000.0})
    assert got["earned"] == pytest.approx(40_000)
    assert got["spif"] == pytest.approx(3_000 + 1_500 + 600)
    assert got["variable"] == pytest.approx(45_100)
    tr = payout_trace(
        p, 500_000.0, 500_000.0, product_mix=mix, deal_size={"Core": 20_000.0}, quota_relief=100_000
    )
    assert tr.variable == pytest.approx(45_100)
    assert "SPIF multi_year" in tr.to_text()


def random_mix(rng, reps, products):
    m = rng.dirichlet(np.ones(len(products)), size=reps)
    return m


@pytest.mark.parametrize("name", shipped_plans())
def test_engine_matches_the_scalar_trace_on_every_shipped_plan(name):
    """The vectorised engine and the independent per-rep calculation agree to the cent."""
    p = load_plan(name)
    if name == "product_weighted_spif":
        d = p.model_dump(by_alias=True)
        d["measures"][0]["product_weights"] = {"Core": 1.0, "Services": 0.5}
        d["spifs"][0]["product"] = "Core"
        p = plan_from_dict(d)
    rng = np.random.default_rng(3)
    reps, trials = 7, 60
    products = ["Core", "Services", "Other"]
    mix = random_mix(rng, reps, products)
    quota = rng.uniform(2e5, 2e6, reps)
    attain = rng.lognormal(0.0, 0.45, (reps, trials))
    attain[0, :5] = [0.0, 0.5, 1.0, 1.25, 0.9]  # boundaries
    bookings = attain * quota[:, None]
    q_shares = np.array([0.2, 0.25, 0.25, 0.3])
    split = rng.dirichlet(10 * q_shares, size=(reps, trials)).transpose(2, 0, 1)
    by_period = bookings[None] * split
    deal_size = {"Core": 25_000.0, "*": 30_000.0}
    credit = credit_factors(p, [f"r{i}" for i in range(reps)], mix, products)
    spif = spif_factors(p, mix, products, deal_size) if p.spifs else None
    out = compute_payouts(
        p,
        bookings,
        quota,
        credit,
        bookings_by_period=by_period if p.periods > 1 else None,
        quota_period_shares=q_shares if p.periods > 1 else None,
        spif_units=spif,
    )
    for r in range(reps):
        for t in range(0, trials, 7):
            b = list(by_period[:, r, t]) if p.periods > 1 else float(bookings[r, t])
            tr = payout_trace(
                p,
                b,
                float(quota[r]),
                product_mix=dict(zip(products, mix[r], strict=True)),
                quota_period_shares=list(q_shares) if p.periods > 1 else None,
                deal_size=deal_size,
                with_steps=bool(t == 0),
            )
            assert out.variable[r, t] == pytest.approx(tr.variable, abs=0.01), (name, r, t)
            assert out.earned[r, t] == pytest.approx(tr.earned, abs=0.01)
            if out.draw_balance is not None:
                assert out.draw_balance[r, t] == pytest.approx(tr.draw_balance, abs=0.01)


def test_trace_reads_like_a_hand_calculation():
    p = load_plan("ae_standard")
    tr = payout_trace(p, 1_300_000.0, 1_000_000.0, rep_id="R007")
    text = tr.to_text()
    assert "R007" in text and "slice 1-1.25 x rate 1.5" in text and "true-up" in text
    # annual 1.3: 0.25 + 0.75 + 0.375 + 0.1 = 1.475 x 80k = 118k, paid quarterly YTD and trued up
    assert tr.variable == pytest.approx(118_000)
    frame = tr.to_frame()
    assert list(frame.columns) == ["component", "formula", "amount", "note", "unit"]
    units = dict(zip(frame["formula"], frame["unit"], strict=True))
    assert units["attainment 1,300,000.00 / measure quota 1,000,000.00"] == "fraction"
    assert units["slice 1-1.25 x rate 1.5"] == "factor" and units["base salary"] == "currency"
    assert tr.summary()["total"] == pytest.approx(80_000 + 118_000)


@pytest.mark.parametrize("mode", ["marginal", "overage_at_reached_tier", "retroactive"])
@pytest.mark.parametrize("block", [64, 1 << 16])
def test_blocked_kernel_equals_the_tier_curve(monkeypatch, mode, block):
    """The engine's in-place blocked kernel gives tier_curve's values, across block edges, with caps."""
    import salesops_models.compensation.engine as engine

    monkeypatch.setattr(engine, "_BLOCK_ELEMENTS", block)
    p = plan(table(mode, DECEL), ti=1.0, measure={"threshold": 0.3, "attainment_cap": 2.2, "payout_cap": 4.0})
    rng = np.random.default_rng(9)
    a = rng.uniform(0, 2.6, (37, 101))
    a[0, :4] = [0.3, 0.5, 1.0, 1.5]
    scale = rng.uniform(0.5, 2.0, 37)
    got = engine.measure_pay(p.measures[0], a, np.ones(37), scale, 4.0 * np.ones(37))
    g = tier_curve(p.measures[0].rate_table, np.minimum(a, 2.2)) * scale[:, None]
    want = np.minimum(np.where(a < 0.3, 0.0, g), 4.0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_reverse_mode_finds_the_bookings_for_a_payout():
    from salesops_models.compensation import bookings_for_payout

    p = plan(table("marginal", FLAT2), ti=40_000)
    # 60k = 40k x (1 + 2 x (A - 1)) -> A = 1.25 -> 500k on a 400k quota
    assert bookings_for_payout(p, 60_000, 400_000) == pytest.approx(500_000, abs=0.02)
    capped = plan(table("marginal", FLAT2), ti=40_000, measure={"payout_cap": 1.2})
    with pytest.raises(ValueError, match="never pays"):
        bookings_for_payout(capped, 60_000, 400_000)


def test_a_quarter_without_quota_pays_nothing_then_the_true_up_settles():
    # a hire whose quota starts in Q3: shares 0, 0, 0.5, 0.5 of a 400k quota, TI 40k, 1x/2x
    for basis in ("discrete", "cumulative"):
        p = quarterly(basis)
        shares = np.array([0.0, 0.0, 0.5, 0.5])
        got = pay(
            p, 400_000, 400_000, by_period=[50_000, 50_000, 150_000, 150_000], quota_period_shares=shares
        )
        tr = payout_trace(
            p, [50_000.0, 50_000.0, 150_000.0, 150_000.0], 400_000.0, quota_period_shares=list(shares)
        )
        assert np.isfinite(got["variable"])
        # annual attainment 1.0 -> 40k in the end, whatever was paid in the quarters (never less)
        assert got["variable"] >= 40_000 - 1e-6
        assert got["variable"] == pytest.approx(tr.variable)
    # discrete: Q3 and Q4 each at 150k / 200k = 0.75 -> 0.75 x 20k = 15k each; true-up 10k
    got = pay(
        quarterly("discrete"),
        400_000,
        400_000,
        by_period=[50_000, 50_000, 150_000, 150_000],
        quota_period_shares=np.array([0.0, 0.0, 0.5, 0.5]),
    )
    assert got["variable"] == pytest.approx(40_000)
    assert got["true_up"] == pytest.approx(10_000)
