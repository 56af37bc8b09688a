"""Scenario section `territory:`: the settings of the territory model (owned by the territory model)."""

from __future__ import annotations

from pydantic import Field

from salesops_models.config_base import StrictModel


class TerritoryConfig(StrictModel):
    """Settings of the territory stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
