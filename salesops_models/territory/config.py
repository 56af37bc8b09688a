"""Scenario section `territory:`: the settings of the territory model (owned by the territory model)."""

from __future__ import annotations

from pydantic import Field, model_validator

from salesops_models.config_base import StrictModel


class BalanceMetricConfig(StrictModel):
    """One metric to balance across territories."""

    column: str = Field(
        ...,
        description="Accounts column summed per territory (workload_hours, potential, revenue_last_year, ...); "
        "'account_count' counts accounts.",
    )
    tolerance: float = Field(
        ..., ge=0.0, lt=1.0, description="Half-width of the band around the capacity-weighted target [0-1]."
    )


class TerritoryConfig(StrictModel):
    """Settings of the territory stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
    balance: list[BalanceMetricConfig] = Field(
        default_factory=lambda: [
            BalanceMetricConfig(column="workload_hours", tolerance=0.10),
            BalanceMetricConfig(column="potential", tolerance=0.15),
        ],
        description="Metrics every territory must carry within target +-tolerance; the first is the headline "
        "balance metric. Targets are proportional to rep capacity.",
    )
    travel_weight_column: str | None = Field(
        "workload_hours",
        description="Accounts column weighting distance in the travel term (null: every account weighs 1).",
    )
    travel_weight: float = Field(1.0, ge=0.0, description="Weight of normalised travel in the objective [-].")
    disruption_column: str | None = Field(
        "revenue_last_year",
        description="Accounts column valuing a change of owner (null: count accounts).",
    )
    disruption_weight: float = Field(
        0.5,
        ge=0.0,
        description="Weight of the normalised disruption (share of owned value moved) in the objective [-].",
    )
    disruption_budget: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Largest share of today's owned value allowed to change owner [0-1] (null: no budget).",
    )
    max_moved_share: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Largest share of accounts allowed to change owner [0-1] (null: no cap).",
    )
    lock_segments: list[str] = Field(
        default_factory=list,
        description="Segments whose accounts stay with their current owner (e.g. ['Enterprise']).",
    )
    locks: dict[str, str] = Field(
        default_factory=dict, description="Explicit locks account_id -> rep_id (stay or go)."
    )
    candidate_k: int | None = Field(
        10, ge=1, description="Each account may go to its k nearest reps (plus its owner); null: any rep."
    )
    node_limit: int = Field(
        300,
        ge=1,
        description="Branch-and-bound nodes of each MILP solve: the work limit that stops the solver at the "
        "same point on any machine, so the same scenario gives the same plan bit for bit.",
    )
    polish_passes: int = Field(
        50, ge=0, description="Passes of the local-search polish (moves, then swaps) at most: a work limit."
    )
    neighbourhood_rounds: int = Field(
        2,
        ge=0,
        description="Rounds over all territories of the large-scale neighbourhood search (one small MILP per "
        "territory and round): a work limit.",
    )
    time_limit: float = Field(
        600.0,
        gt=0,
        description="Wall-clock safety net of the whole alignment [s]. The plan depends on the work limits "
        "only; when this net stops a step instead, the metric territory_time_limit_hit and a warning say "
        "so (the plan then depends on the machine's load).",
    )
    mip_gap: float = Field(
        0.01, ge=0.0, le=1.0, description="Relative MIP gap at which the solver stops [-]."
    )
    threads: int = Field(
        1,
        ge=1,
        le=64,
        description="HiGHS threads (keep 1 on Dask workers, and for plans that are the same bit for bit).",
    )
    heuristic_seconds: float | None = Field(
        None,
        ge=0.0,
        description="Wall-clock safety net of each heuristic step (greedy rebalancing, polish) [s]; null: only "
        "time_limit. Their work is limited by polish_passes.",
    )
    lp_rounding: bool | None = Field(
        None,
        description="Start from the LP relaxation and round it (a proven bound; the plan without the MILP "
        "when it meets every band); null: from 10,000 candidate pairs on.",
    )
    tradeoff_budgets: list[float] = Field(
        default_factory=list,
        description="Disruption budgets [0-1] for a travel-versus-disruption curve (empty: no curve; each "
        "point is one more solve).",
    )
    contiguity: bool = Field(
        False,
        description="Every territory must be one connected piece of the adjacency graph (the units of its "
        "accounts; see docs/territory.md for the rule).",
    )
    contiguity_exceptions: list[str] = Field(
        default_factory=list, description="Rep ids whose territories may be in several pieces (e.g. islands)."
    )
    adjacency: str | None = Field(
        None,
        description="CSV or parquet file of adjacent unit pairs (first two columns, one pair per row); null: "
        "the Delaunay graph of the account locations with long edges cut.",
    )
    contiguity_unit: str | None = Field(
        None,
        description="Accounts column naming the unit the adjacency pairs refer to (e.g. a ZIP code column); "
        "null: each account is a unit (pairs of account ids).",
    )
    new_reps: int = Field(
        0,
        ge=0,
        le=500,
        description="Growth scenario: place this many new full-time reps (home base at an account chosen by "
        "p-median over the accounts' workload) before aligning.",
    )

    @model_validator(mode="after")
    def _distinct_metrics(self) -> TerritoryConfig:
        cols = [b.column for b in self.balance]
        if len(set(cols)) != len(cols):
            raise ValueError(f"balance: each column may appear once, got {cols}")
        if any(not 0 <= b <= 1 for b in self.tradeoff_budgets):
            raise ValueError("tradeoff_budgets: every budget is a share in [0, 1]")
        return self
