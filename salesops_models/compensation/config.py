"""Scenario section `compensation:`: the settings of the compensation model (owned by the compensation model)."""

from __future__ import annotations

from pydantic import Field

from salesops_models.config_base import StrictModel


class CompensationConfig(StrictModel):
    """Settings of the compensation stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
