"""Scenario section `compensation:`: the settings of the compensation model (owned by the compensation model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from salesops_models.compensation.attainment import (
    AttainmentDistribution,
    AttainmentMixture,
    calibrate_attainment,
)
from salesops_models.config_base import StrictModel


class ComponentFacts(StrictModel):
    """One component of a mixture of attainment distributions: a weight and two facts."""

    weight: float = Field(
        ..., gt=0.0, le=1.0, description="Share of rep-years drawn from this component [0-1]."
    )
    family: Literal["normal", "lognormal"] = Field("lognormal", description="Distribution family.")
    share_at_quota: float | None = Field(None, gt=0.0, lt=1.0, description="P(attainment >= 1) [0-1].")
    mean: float | None = Field(None, gt=0.0, description="Mean attainment [fraction of quota].")
    sd: float | None = Field(
        None, gt=0.0, description="Standard deviation of attainment [fraction of quota]."
    )
    median: float | None = Field(None, gt=0.0, description="Median attainment [fraction of quota].")
    p90: float | None = Field(None, gt=0.0, description="90th percentile of attainment [fraction of quota].")

    @model_validator(mode="after")
    def _two_facts(self) -> ComponentFacts:
        given = [k for k in ("share_at_quota", "mean", "sd", "median", "p90") if getattr(self, k) is not None]
        if len(given) != 2:
            raise ValueError(
                f"state exactly two facts for a mixture component, got {len(given)} ({', '.join(given) or 'none'})"
            )
        return self

    def facts(self) -> dict[str, float]:
        """The stated facts, by name."""
        return {
            k: float(v)
            for k in ("share_at_quota", "mean", "sd", "median", "p90")
            if (v := getattr(self, k)) is not None
        }


class AttainmentFacts(StrictModel):
    """A distribution of attainment stated by two facts (set the facts you do not state to null), or a
    mixture of components (e.g. bimodal), each stated by its weight and two facts."""

    name: str = Field("parametric", description="Label of this attainment set in tables and reports.")
    family: Literal["normal", "lognormal"] = Field(
        "lognormal",
        description="Distribution family of attainment (lognormal: skewed right, never negative).",
    )
    share_at_quota: float | None = Field(
        None, gt=0.0, lt=1.0, description="Share of rep-years at or above quota, e.g. 0.6 [0-1]."
    )
    mean: float | None = Field(None, gt=0.0, description="Mean attainment [fraction of quota].")
    sd: float | None = Field(
        None, gt=0.0, description="Standard deviation of attainment [fraction of quota]."
    )
    median: float | None = Field(None, gt=0.0, description="Median attainment [fraction of quota].")
    p90: float | None = Field(None, gt=0.0, description="90th percentile of attainment [fraction of quota].")
    components: list[ComponentFacts] | None = Field(
        None,
        description="A mixture instead of one distribution (set the five facts above to null); weights sum to 1.",
    )

    @model_validator(mode="after")
    def _two_facts(self) -> AttainmentFacts:
        given = [k for k in ("share_at_quota", "mean", "sd", "median", "p90") if getattr(self, k) is not None]
        if self.components is not None:
            if given:
                raise ValueError(
                    f"give either components (a mixture) or two facts, not both; set {', '.join(given)} to null"
                )
            total = sum(c.weight for c in self.components)
            if not self.components or abs(total - 1.0) > 1e-6:
                raise ValueError(f"components: weights sum to {total:g}; they must sum to 1")
            return self
        if len(given) != 2:
            raise ValueError(
                f"state exactly two attainment facts, got {len(given)} ({', '.join(given) or 'none'}); keep two of "
                "share_at_quota, mean, sd, median, p90 and set the others to null"
            )
        return self

    def facts(self) -> dict[str, float]:
        """The stated facts, by name."""
        return {
            k: float(v)
            for k in ("share_at_quota", "mean", "sd", "median", "p90")
            if (v := getattr(self, k)) is not None
        }

    def distribution(self) -> AttainmentDistribution | AttainmentMixture:
        """The calibrated distribution (or mixture) these facts state."""
        if self.components is not None:
            return AttainmentMixture(
                tuple((c.weight, calibrate_attainment(c.family, **c.facts())) for c in self.components)
            )
        return calibrate_attainment(self.family, **self.facts())


def _default_fallback() -> AttainmentFacts:
    return AttainmentFacts(name="fallback: 60% at quota, sd 0.25", share_at_quota=0.6, sd=0.25)


def _default_costing_sets() -> list[AttainmentFacts]:
    return [
        AttainmentFacts(name="weak year: 40% at quota", share_at_quota=0.4, sd=0.25),
        AttainmentFacts(name="strong year: 70% at quota", share_at_quota=0.7, sd=0.25),
        AttainmentFacts(name="wide spread: 60% at quota, sd 0.45", share_at_quota=0.6, sd=0.45),
        AttainmentFacts(
            name="bimodal: 70% near 1.2, 30% near 0.6",
            components=[
                ComponentFacts(weight=0.7, median=1.2, sd=0.15),
                ComponentFacts(weight=0.3, median=0.6, sd=0.15),
            ],
        ),
    ]


class CompensationConfig(StrictModel):
    """Settings of the compensation stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
    plans: list[str] = Field(
        default_factory=lambda: ["ae_standard", "ae_retroactive_capped", "new_hire_draw"],
        min_length=1,
        description="Plans to cost: names of shipped plans (see salesops_models.compensation.shipped_plans()) or "
        "paths to plan YAML files (relative paths resolve against the scenario file's folder).",
    )
    primary_plan: str | None = Field(
        None,
        description="Plan behind the headline metrics and the payouts_summary/comp_cost_samples tables: its 'name' "
        "field or its entry in 'plans'; default: the first plan.",
    )
    attainment_source: Literal["auto", "pipeline", "parametric"] = Field(
        "auto",
        description="'pipeline': the pipeline stage's rep_bookings_samples over the quota stage's quotas (error "
        "when missing); 'parametric': the fallback distribution; 'auto': pipeline when both tables exist.",
    )
    fallback_attainment: AttainmentFacts = Field(
        default_factory=_default_fallback,
        description="Distribution of attainment used when the pipeline samples are missing (or when "
        "attainment_source is 'parametric'); calibrated to two stated facts.",
    )
    costing_sets: list[AttainmentFacts] = Field(
        default_factory=_default_costing_sets,
        description="Costing mode: further attainment distributions the primary plan is costed across, next to "
        "the primary attainment set.",
    )
    n_trials: int = Field(
        2000, ge=10, le=1_000_000, description="Trials drawn from parametric attainment distributions."
    )
    fallback_quota: float | None = Field(
        None,
        gt=0.0,
        description="Quota per rep when the quotas table is missing [currency/yr]; default: each rep's bookings "
        "over the last 12 months of history (company mean for reps without any).",
    )
    quota_relief: dict[str, float] = Field(
        default_factory=dict,
        description="Quota relief per rep_id (leave, ...) taken off the annual quota [currency/yr], on top of any "
        "relief the quota stage already netted into its quotas table (mid-year account moves).",
    )
    product_mix: dict[str, float] | None = Field(
        None,
        description="Share of bookings by product for every rep [0-1]; default: each rep's won bookings by "
        "product in the history (only needed by plans that weight products or pay product SPIFs).",
    )
    deal_size: dict[str, float] | None = Field(
        None,
        description="Mean deal size per product, key '*' for all products [currency/deal]; default: mean won deal "
        "size in the history (for per-deal SPIFs).",
    )
    quarter_split_concentration: float | None = Field(
        50.0,
        gt=0.0,
        description="Quarterly plans: Dirichlet concentration of each rep-trial's split of annual bookings into "
        "quarters around the seasonal shares (larger = steadier quarters); null = exactly the seasonal shares.",
    )
    trace_rep: str | None = Field(
        None,
        description="rep_id whose calculation trace (primary plan, at the rep's median bookings) is written to "
        "comp_trace; default: the rep with the median P50 attainment.",
    )

    @field_validator("quota_relief")
    @classmethod
    def _relief_not_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if x < 0}
        if bad:
            raise ValueError(f"negative quota relief {bad}; relief is taken off quota and must be >= 0")
        return v

    @field_validator("product_mix")
    @classmethod
    def _mix_sums_to_one(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None:
            if any(x < 0 for x in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
                raise ValueError(f"product_mix shares must be >= 0 and sum to 1, got {v}")
        return v
