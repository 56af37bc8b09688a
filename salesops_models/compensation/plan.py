"""Commission plans: the YAML format, its validation and the shipped example plans.

A plan is data. It is read by ``safe_io.load_yaml`` (safe loader, no aliases, a size cap) and
validated by pydantic models with
``extra="forbid"``, so a typo, an overlapping or gapped tier table, a negative rate, a cap below
target or a pay mix that does not add up is a :class:`~salesops_models.errors.PlanError` naming the
plan file, the field and the fix.

Units
-----
Attainment is a fraction of quota (1.0 = 100 %). Money is in the plan's currency per plan year.
A tier ``rate`` is either a multiple of the measure's target incentive per 1.0 of attainment
(``rate_unit: ti_multiple``, the base-commission-rate multiplier: 1.0 pays the target incentive at
quota) or a share of the credited bookings (``rate_unit: bookings_share``, 0.04 = 4 % commission).

Tier boundaries: a tier covers ``from < A <= to`` (the first tier also covers ``A = from = 0``), so a
rep must *exceed* a boundary to reach the next tier. The last tier is open-ended (``to: null``).
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from salesops_models.config_base import StrictModel
from salesops_models.errors import PlanError
from salesops_models.safe_io import is_path_reference, load_yaml

TierMode = Literal["marginal", "overage_at_reached_tier", "retroactive"]
RateUnit = Literal["ti_multiple", "bookings_share"]

TIER_MODES: tuple[str, ...] = ("marginal", "overage_at_reached_tier", "retroactive")
_TOL = 1e-9


class Tier(StrictModel):
    """One row of a rate table: attainment from ``from_`` (exclusive) to ``to`` (inclusive)."""

    from_: float = Field(
        ..., alias="from", ge=0.0, description="Lower attainment bound of the tier [fraction of quota]."
    )
    to: float | None = Field(
        ..., description="Upper attainment bound [fraction of quota]; null for the open-ended last tier."
    )
    rate: float = Field(
        ...,
        description="Pay rate inside the tier: a multiple of the measure's target incentive per 1.0 of attainment "
        "(ti_multiple) or a share of credited bookings (bookings_share). Must be >= 0.",
    )

    model_config = {**StrictModel.model_config, "populate_by_name": True}

    @field_validator("to")
    @classmethod
    def _infinite_is_open(cls, v: float | None) -> float | None:
        return None if v is not None and math.isinf(v) and v > 0 else v

    @field_validator("rate")
    @classmethod
    def _rate_not_negative(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(
                f"negative or non-finite rate {v}; a tier rate must be >= 0 (use a clawback for recoveries)"
            )
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Tier:
        if self.to is not None and self.to <= self.from_:
            raise ValueError(f"tier 'to' ({self.to}) must be greater than 'from' ({self.from_})")
        return self


class RateTable(StrictModel):
    """Tiers of a measure and how they apply to an attainment."""

    mode: TierMode = Field(
        ...,
        description="How tiers apply (required, no default): 'marginal' pays each slice of attainment at its own "
        "tier's rate; 'overage_at_reached_tier' pays up to quota slice by slice and all attainment above quota at "
        "the rate of the tier reached; 'retroactive' pays the whole attainment at the rate of the tier reached.",
    )
    rate_unit: RateUnit = Field(
        "ti_multiple",
        description="'ti_multiple': rate x target incentive per 1.0 of attainment; 'bookings_share': rate x credited "
        "bookings [currency/currency].",
    )
    tiers: list[Tier] = Field(
        ..., min_length=1, description="Tiers in increasing order, contiguous, from 0 to open end."
    )

    @model_validator(mode="after")
    def _contiguous(self) -> RateTable:
        t = self.tiers
        if abs(t[0].from_) > _TOL:
            raise ValueError(
                f"tiers: the first tier starts at {t[0].from_}; it must start at 0 (a gap below it)"
            )
        for i in range(1, len(t)):
            prev_to = t[i - 1].to
            if prev_to is None:
                raise ValueError(
                    f"tiers: tier {i} (from {t[i - 1].from_}) is open-ended but tier {i + 1} follows it; "
                    "only the last tier may have 'to: null'"
                )
            if t[i].from_ < prev_to - _TOL:
                raise ValueError(
                    f"tiers: tier {i + 1} starts at {t[i].from_} but tier {i} ends at {prev_to} (overlap); "
                    f"make tier {i + 1} start at {prev_to}"
                )
            if t[i].from_ > prev_to + _TOL:
                raise ValueError(
                    f"tiers: tier {i + 1} starts at {t[i].from_} but tier {i} ends at {prev_to} (gap); "
                    f"make tier {i + 1} start at {prev_to}"
                )
        if t[-1].to is not None:
            raise ValueError(
                f"tiers: the last tier ends at {t[-1].to}, leaving attainment above it unpaid (gap); "
                "set its 'to' to null (open-ended) and use attainment_cap or payout_cap to limit pay"
            )
        if self.mode == "overage_at_reached_tier" and not any(abs(x.from_ - 1.0) < _TOL for x in t):
            raise ValueError(
                "tiers: mode 'overage_at_reached_tier' needs a tier boundary at 1.0 (quota), where the overage starts"
            )
        return self

    @property
    def bounds(self) -> list[float]:
        """Inner tier boundaries [fraction of quota] (the ``to`` of every tier but the last)."""
        return [float(x.to) for x in self.tiers[:-1]]  # type: ignore[arg-type]

    @property
    def rates(self) -> list[float]:
        """Tier rates, in order."""
        return [x.rate for x in self.tiers]


class Measure(StrictModel):
    """A performance measure: what is credited, against which share of quota, paid by which rate table."""

    name: str = Field(..., description="Measure name, e.g. 'new_bookings'.")
    weight: float = Field(
        1.0, gt=0.0, le=1.0, description="Share of the target incentive paid through this measure [0-1]."
    )
    quota_share: float = Field(
        1.0, gt=0.0, le=1.0, description="Share of the rep's bookings quota assigned to this measure [0-1]."
    )
    product_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Crediting weight per product (1.0 = full credit, 0.5 = half, 0 = none) [currency/currency].",
    )
    other_products_weight: float = Field(
        1.0,
        ge=0.0,
        description="Crediting weight of products not listed in product_weights [currency/currency].",
    )
    rate_table: RateTable = Field(..., description="Tiers and how they apply.")
    threshold: float = Field(
        0.0,
        ge=0.0,
        description="Attainment below which this measure pays nothing [fraction of quota]; 0 = none.",
    )
    attainment_cap: float | None = Field(
        None, description="Attainment above which nothing more is credited [fraction of quota]; >= 1.0."
    )
    payout_cap: float | None = Field(
        None,
        description="Largest payout of this measure as a multiple of its target incentive [x TI]; >= 1.0.",
    )
    attainment_decimals: int | None = Field(
        None,
        ge=0,
        le=6,
        description="Round attainment to this many decimals before tiers apply (2 = whole percent).",
    )

    @field_validator("product_weights")
    @classmethod
    def _weights_not_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in v.items() if not math.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f"negative product weight(s) {bad}; crediting weights must be >= 0")
        return v

    @field_validator("attainment_cap", "payout_cap")
    @classmethod
    def _cap_at_least_target(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None and v < 1.0:
            raise ValueError(
                f"{info.field_name} {v} is below target (1.0); a cap below target pays less than the target "
                "incentive at quota: raise it to >= 1.0 or lower the tier rates instead"
            )
        return v

    @model_validator(mode="after")
    def _threshold_below_cap(self) -> Measure:
        if self.attainment_cap is not None and self.threshold >= self.attainment_cap:
            raise ValueError(
                f"threshold {self.threshold} is not below attainment_cap {self.attainment_cap}; nothing could be paid"
            )
        return self


class PayConfig(StrictModel):
    """Base salary and target incentive: the pay mix."""

    base_salary: float = Field(0.0, ge=0.0, description="Base salary [currency/yr].")
    target_incentive: float | None = Field(
        None, ge=0.0, description="Variable pay at 100 % attainment of every measure [currency/yr]."
    )
    on_target_earnings: float | None = Field(
        None, gt=0.0, description="Base + target incentive [currency/yr]; optional when both are given."
    )
    pay_mix: dict[Literal["base", "variable"], float] | None = Field(
        None,
        description="Base and variable shares of on-target earnings, e.g. {base: 0.5, variable: 0.5}; sum 1.",
    )

    @model_validator(mode="after")
    def _mix_adds_up(self) -> PayConfig:
        if self.pay_mix is not None:
            if set(self.pay_mix) != {"base", "variable"}:
                raise ValueError("pay_mix needs both 'base' and 'variable' shares")
            b, v = self.pay_mix["base"], self.pay_mix["variable"]
            if b < 0 or v < 0 or abs(b + v - 1.0) > 1e-6:
                raise ValueError(
                    f"pay_mix does not add up: base {b} + variable {v} = {b + v}; the shares must be >= 0 and sum to 1"
                )
            if self.on_target_earnings is not None:
                ote = self.on_target_earnings
                if "base_salary" not in self.model_fields_set:
                    self.__dict__["base_salary"] = ote * b
                if self.target_incentive is None:
                    self.__dict__["target_incentive"] = ote * v
        if self.on_target_earnings is not None and self.target_incentive is None:
            self.__dict__["target_incentive"] = self.on_target_earnings - self.base_salary
        ti = self.target_incentive
        if ti is not None:
            ote = self.base_salary + ti
            if self.on_target_earnings is not None and abs(ote - self.on_target_earnings) > 0.5:
                raise ValueError(
                    f"pay mix does not add up: base_salary {self.base_salary:g} + target_incentive {ti:g} = {ote:g}, "
                    f"not on_target_earnings {self.on_target_earnings:g}; fix one of the three"
                )
            if self.pay_mix is not None and ote > 0:
                share = self.base_salary / ote
                if abs(share - self.pay_mix["base"]) > 5e-3:
                    raise ValueError(
                        f"pay mix does not add up: base_salary {self.base_salary:g} is {share:.1%} of on-target "
                        f"earnings {ote:g}, but pay_mix.base says {self.pay_mix['base']:.1%}"
                    )
        if ti is not None and ti < 0:
            raise ValueError(
                f"target_incentive {ti:g} is negative; on_target_earnings must exceed base_salary"
            )
        return self

    @property
    def ote(self) -> float | None:
        """On-target earnings: base + target incentive [currency/yr]."""
        return None if self.target_incentive is None else self.base_salary + self.target_incentive


class Spif(StrictModel):
    """A sales performance incentive fund: a fixed bonus per qualifying deal or a share of qualifying bookings."""

    name: str = Field(..., description="SPIF name.")
    product: str | None = Field(None, description="Product that qualifies; null = every product.")
    kind: Literal["per_deal", "bookings_share"] = Field(
        ...,
        description="'per_deal': amount per qualifying deal; 'bookings_share': amount x qualifying bookings.",
    )
    amount: float = Field(
        ..., ge=0.0, description="Currency per deal, or share of bookings [currency/currency]."
    )
    qualifying_share: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of the product's bookings that qualifies, e.g. the multi-year share (the canonical tables "
        "carry no contract term) [0-1].",
    )
    max_per_rep: float | None = Field(
        None, ge=0.0, description="Largest SPIF payout per rep per year [currency]."
    )


class DrawConfig(StrictModel):
    """A draw: a minimum payment per payout period against future commission."""

    amount_per_period: float = Field(
        ..., gt=0.0, description="Guaranteed payment per payout period [currency]."
    )
    recoverable: bool = Field(
        ...,
        description="True: shortfalls are recovered from later commission; false: a non-recoverable guarantee.",
    )
    forgive_at_year_end: bool = Field(
        False,
        description="Recoverable only: write off the balance still owed at year end (else it carries forward).",
    )


class PayoutSchedule(StrictModel):
    """When commission is paid: annually, or quarterly with an annual true-up."""

    frequency: Literal["annual", "quarterly"] = Field(
        "annual", description="Payout periods per year: 1 or 4."
    )
    basis: Literal["cumulative", "discrete"] = Field(
        "cumulative",
        description="'cumulative': each quarter pays year-to-date earnings on year-to-date quota less what was paid; "
        "'discrete': each quarter pays on its own attainment against its own quota.",
    )
    holdback: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of quarterly commission held back until the annual true-up [0-1].",
    )
    recover_overpayment: bool = Field(
        False,
        description="True: the true-up recovers quarterly overpayments (negative true-up); false: forgiven.",
    )


class ClawbackConfig(StrictModel):
    """Clawbacks: commission on bookings reversed (cancelled, churned) within the clawback window is recovered."""

    reversed_share: float = Field(
        ..., ge=0.0, lt=1.0, description="Expected share of booked value reversed within the window [0-1]."
    )
    window_days: int = Field(90, ge=1, description="Clawback window after booking [days]; informational.")


class CompPlan(StrictModel):
    """A commission plan."""

    name: str = Field(..., description="Plan name, as used in scenarios and reports.")
    version: str = Field("1", description="Plan version; change it with every change to the plan.")
    description: str = Field("", description="One or two sentences for the report.")
    currency: str = Field("USD", description="Currency of every amount in the plan.")
    pay: PayConfig = Field(..., description="Base salary, target incentive, on-target earnings, pay mix.")
    measures: list[Measure] = Field(..., min_length=1, description="Performance measures; weights sum to 1.")
    spifs: list[Spif] = Field(default_factory=list, description="SPIFs paid on top of the measures.")
    draw: DrawConfig | None = Field(None, description="Draw against commission, per payout period.")
    payout: PayoutSchedule = Field(default_factory=PayoutSchedule, description="Payout periods and true-up.")
    clawback: ClawbackConfig | None = Field(None, description="Clawback of commission on reversed bookings.")

    @model_validator(mode="after")
    def _consistent(self) -> CompPlan:
        total = sum(m.weight for m in self.measures)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"measures: weights sum to {total:g}; the measures' weights are shares of the target incentive "
                "and must sum to 1"
            )
        names = [m.name for m in self.measures]
        if len(set(names)) != len(names):
            raise ValueError(f"measures: duplicate measure names {names}")
        if self.pay.target_incentive is None:
            needs = [
                m.name
                for m in self.measures
                if m.rate_table.rate_unit == "ti_multiple" or m.payout_cap is not None
            ]
            if needs:
                raise ValueError(
                    f"pay.target_incentive is missing but measure(s) {needs} pay in multiples of it "
                    "(rate_unit ti_multiple or payout_cap); give pay.target_incentive or on_target_earnings"
                )
        if self.payout.frequency == "annual" and self.payout.holdback > 0:
            raise ValueError(
                "payout.holdback applies to quarterly payouts only; set payout.frequency: quarterly"
            )
        return self

    @property
    def periods(self) -> int:
        """Payout periods per year."""
        return 4 if self.payout.frequency == "quarterly" else 1

    @property
    def products(self) -> list[str]:
        """Products named anywhere in the plan (measures' weights, SPIFs)."""
        names: set[str] = set()
        for m in self.measures:
            names.update(m.product_weights)
        names.update(s.product for s in self.spifs if s.product is not None)
        return sorted(names)

    def fingerprint(self) -> str:
        """A short hash of the plan's content: two plans with the same fingerprint pay the same."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------


def shipped_plans() -> list[str]:
    """Names of the example plans shipped with the package (``compensation/plans/*.yaml``)."""
    folder = resources.files("salesops_models.compensation") / "plans"
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith((".yaml", ".yml")))


def _shipped_path(name: str) -> Path:
    folder = resources.files("salesops_models.compensation") / "plans"
    for ext in (".yaml", ".yml"):
        candidate = folder / f"{name}{ext}"
        if candidate.is_file():
            return Path(str(candidate))
    raise PlanError(
        f"plan '{name}': no such shipped plan; shipped plans are {', '.join(shipped_plans())}. "
        "To use your own plan, give a path ending in .yaml."
    )


def is_plan_path(ref: str) -> bool:
    """True when a plan reference is a file path (ends .yaml/.yml or has a folder), not a shipped name."""
    return is_path_reference(ref)


def format_plan_error(source: str, exc: ValidationError) -> str:
    """One line per problem, naming the plan file, the field path and the fix."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown field '{loc}'; check its spelling against docs/compensation.md.")
        elif err["type"] == "missing":
            lines.append(f"{source}: missing required field '{loc}'.")
        else:
            lines.append(f"{source}: field '{loc}': {msg}.")
    return "\n".join(lines)


def plan_from_dict(doc: dict, source: str = "<plan>") -> CompPlan:
    """Validate a plan given as a mapping; ``source`` names it in error messages."""
    if not isinstance(doc, dict):
        raise PlanError(f"{source}: a plan must be a mapping of fields (name:, pay:, measures:, ...).")
    try:
        return CompPlan.model_validate(doc)
    except ValidationError as exc:
        raise PlanError(format_plan_error(source, exc)) from None


def load_plan(ref: str | Path) -> CompPlan:
    """Load a plan from a YAML file path or by the name of a shipped plan.

    Parameters
    ----------
    ref
        A path to a plan YAML (``.yaml``/``.yml``) or the name of a shipped plan (see :func:`shipped_plans`).

    Raises
    ------
    PlanError
        The file is missing, not YAML, or the plan is invalid; the message names the file and field.
    """
    ref_s = str(ref)
    path = (
        Path(ref_s).expanduser() if (isinstance(ref, Path) or is_plan_path(ref_s)) else _shipped_path(ref_s)
    )
    if not path.exists():
        raise PlanError(f"{path}: plan file not found; give an existing path or a shipped plan name.")
    doc = load_yaml(path, "plan file", error=PlanError)
    return plan_from_dict(doc, str(path))


def pay_cliffs(plan: CompPlan) -> list[str]:
    """Warnings for attainments where a measure's pay *drops* as attainment rises (a pay cliff).

    In ``retroactive`` and ``overage_at_reached_tier`` modes a tier whose rate is lower than the
    tier below it pays less just above the boundary than at it: a rep earns less by selling more.
    The plan is valid (some firms mean it as a decelerator), so this warns rather than refuses.
    Pay is evaluated with the engine's reference tier function, after the measure's attainment cap
    and (for ``ti_multiple`` rates) its payout cap.

    Returns
    -------
    list of str
        One line per cliff, naming the measure, the attainment and the pay on both sides.
    """
    import numpy as np

    from salesops_models.compensation.engine import tier_curve  # engine imports this module

    out = []
    for m in plan.measures:
        table = m.rate_table
        for k, b in enumerate(table.bounds):
            if m.attainment_cap is not None and b >= m.attainment_cap:
                break  # attainment is capped before this boundary: pay stays flat
            at, above = tier_curve(table, np.array([b, b + 1e-9 * max(1.0, b)]))
            if table.rate_unit == "ti_multiple" and m.payout_cap is not None:
                at, above = min(at, m.payout_cap), min(above, m.payout_cap)
            if above < at - 1e-6:
                unit = "x target incentive" if table.rate_unit == "ti_multiple" else "x quota"
                out.append(
                    f"plan '{plan.name}', measure '{m.name}': pay drops from {at:.3f} to {above:.3f} {unit} just "
                    f"above attainment {b:g} (tier {k + 2} rate {table.tiers[k + 1].rate:g} < tier {k + 1} rate "
                    f"{table.tiers[k].rate:g}, mode {table.mode}): a rep earns less by selling more. Raise tier "
                    f"{k + 2}'s rate or use mode 'marginal' if that is not meant."
                )
    return out
