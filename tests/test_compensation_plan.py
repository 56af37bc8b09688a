"""Plan YAML validation: shipped plans load, bad plans fail with the file and the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from salesops_models.compensation import load_plan, plan_from_dict, shipped_plans
from salesops_models.compensation.config import AttainmentFacts, CompensationConfig
from salesops_models.errors import PlanError


def good_plan() -> dict:
    return {
        "name": "t",
        "pay": {"base_salary": 50_000, "target_incentive": 50_000},
        "measures": [
            {
                "name": "bookings",
                "rate_table": {
                    "mode": "marginal",
                    "tiers": [
                        {"from": 0.0, "to": 1.0, "rate": 1.0},
                        {"from": 1.0, "to": 1.25, "rate": 1.5},
                        {"from": 1.25, "to": None, "rate": 2.0},
                    ],
                },
            }
        ],
    }


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "bad_plan.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_every_shipped_plan_loads_and_has_a_stable_fingerprint():
    names = shipped_plans()
    assert {
        "ae_standard",
        "ae_retroactive_capped",
        "new_hire_draw",
        "pbpython_2_3_4",
        "uncapped_1x_2x",
    } <= set(names)
    for name in names:
        plan = load_plan(name)
        assert plan.name == name
        assert plan.fingerprint() == load_plan(name).fingerprint()
    assert load_plan("ae_standard").fingerprint() != load_plan("ae_retroactive_capped").fingerprint()


def test_pay_mix_derives_base_and_target_incentive():
    p = load_plan("ae_standard")
    assert p.pay.base_salary == pytest.approx(80_000)
    assert p.pay.target_incentive == pytest.approx(80_000)
    p = load_plan("new_hire_draw")
    assert (p.pay.base_salary, p.pay.target_incentive) == pytest.approx((90_000, 60_000))


def test_a_plan_file_round_trips(tmp_path):
    path = write(tmp_path, good_plan())
    assert load_plan(str(path)).measures[0].rate_table.bounds == [1.0, 1.25]
    # YAML's .inf reads as an open-ended last tier
    text = path.read_text().replace("to: null", "to: .inf")
    assert ".inf" in text
    path.write_text(text)
    assert load_plan(path).measures[0].rate_table.tiers[-1].to is None


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (
            lambda d: d["measures"][0]["rate_table"]["tiers"][1].update({"from": 0.9}),
            "measures.0.rate_table",
            "overlap",
        ),
        (
            lambda d: d["measures"][0]["rate_table"]["tiers"][1].update({"from": 1.1}),
            "measures.0.rate_table",
            "gap",
        ),
        (
            lambda d: d["measures"][0]["rate_table"]["tiers"][2].update({"to": 3.0}),
            "measures.0.rate_table",
            "gap",
        ),
        (
            lambda d: d["measures"][0]["rate_table"]["tiers"][0].update({"from": 0.2}),
            "measures.0.rate_table",
            "start at 0",
        ),
        (
            lambda d: d["measures"][0]["rate_table"]["tiers"][1].update({"rate": -1.5}),
            "measures.0.rate_table.tiers.1.rate",
            "negative",
        ),
        (lambda d: d["measures"][0].update({"payout_cap": 0.8}), "measures.0.payout_cap", "below target"),
        (
            lambda d: d["measures"][0].update({"attainment_cap": 0.9}),
            "measures.0.attainment_cap",
            "below target",
        ),
        (
            lambda d: d["pay"].update({"pay_mix": {"base": 0.6, "variable": 0.5}}),
            "pay",
            "does not add up",
        ),
        (
            lambda d: d["pay"].update({"on_target_earnings": 120_000}),
            "pay",
            "does not add up",
        ),
        (
            lambda d: d["pay"].update({"pay_mix": {"base": 0.6, "variable": 0.4}}),
            "pay",
            "does not add up",
        ),
        (lambda d: d["measures"][0]["rate_table"].pop("mode"), "measures.0.rate_table.mode", "missing"),
        (
            lambda d: d["measures"][0]["rate_table"].update({"mode": "stepped"}),
            "measures.0.rate_table.mode",
            "marginal",
        ),
        (lambda d: d["measures"][0].update({"weight": 0.5}), "(top level)", "sum to 1"),
        (lambda d: d["measures"][0].update({"treshold": 0.5}), "measures.0.treshold", "unknown field"),
    ],
)
def test_bad_plans_name_the_file_and_the_field(tmp_path, mutate, field, words):
    doc = good_plan()
    mutate(doc)
    path = write(tmp_path, doc)
    with pytest.raises(PlanError) as err:
        load_plan(str(path))
    msg = str(err.value)
    assert str(path) in msg
    assert f"'{field}'" in msg
    assert words in msg


def test_overage_mode_needs_a_boundary_at_quota():
    doc = good_plan()
    doc["measures"][0]["rate_table"]["mode"] = "overage_at_reached_tier"
    plan_from_dict(doc)  # boundary at 1.0 present
    doc["measures"][0]["rate_table"]["tiers"] = [
        {"from": 0.0, "to": 1.1, "rate": 1.0},
        {"from": 1.1, "to": None, "rate": 2.0},
    ]
    with pytest.raises(PlanError, match="boundary at 1.0"):
        plan_from_dict(doc, "x.yaml")


def test_ti_multiple_rates_need_a_target_incentive():
    doc = good_plan()
    doc["pay"] = {"base_salary": 10.0}
    with pytest.raises(PlanError, match="target_incentive is missing"):
        plan_from_dict(doc)


def test_unknown_plan_name_lists_the_shipped_plans(tmp_path):
    with pytest.raises(PlanError, match="ae_standard"):
        load_plan("no_such_plan")
    with pytest.raises(PlanError, match="not found"):
        load_plan(str(tmp_path / "missing.yaml"))


def test_config_defaults_and_fact_count():
    cfg = CompensationConfig()
    assert cfg.plans[0] == "ae_standard"
    assert cfg.fallback_attainment.facts() == {"share_at_quota": 0.6, "sd": 0.25}
    with pytest.raises(ValueError, match="exactly two"):
        AttainmentFacts(share_at_quota=0.6, sd=0.2, mean=1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        CompensationConfig(product_mix={"a": 0.5, "b": 0.4})


@pytest.mark.parametrize(
    ("mode", "rates", "cap", "cliffs_at"),
    [
        ("marginal", [1.0, 0.5, 0.2], None, []),  # a decelerator lowers the slope, never the pay
        ("retroactive", [1.0, 1.5, 2.0], None, []),
        ("retroactive", [1.0, 1.5, 1.2], None, [1.25]),  # 1.875 at 1.25, 1.5 just above
        ("overage_at_reached_tier", [1.0, 1.5, 1.2], None, [1.25]),  # 1.375 at 1.25, 1.3 just above
        ("retroactive", [1.0, 1.5, 1.2], 1.2, []),  # attainment capped below the boundary
    ],
)
def test_pay_cliffs_are_found_where_pay_drops(mode, rates, cap, cliffs_at):
    from salesops_models.compensation.plan import pay_cliffs

    doc = good_plan()
    table = doc["measures"][0]["rate_table"]
    table["mode"] = mode
    for tier, rate in zip(table["tiers"], rates, strict=True):
        tier["rate"] = rate
    if cap is not None:
        doc["measures"][0]["attainment_cap"] = cap
    found = pay_cliffs(plan_from_dict(doc))
    assert len(found) == len(cliffs_at), found
    for text, at in zip(found, cliffs_at, strict=True):
        assert f"above attainment {at:g}" in text and "earns less by selling more" in text
