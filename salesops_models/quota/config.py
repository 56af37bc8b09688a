"""Scenario section `quota:`: the settings of the quota model (owned by the quota model)."""

from __future__ import annotations

from pydantic import Field

from salesops_models.config_base import StrictModel


class QuotaConfig(StrictModel):
    """Settings of the quota stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
