"""Scenario section `forecast:`: the settings of the forecast model (owned by the forecast model)."""

from __future__ import annotations

from pydantic import Field

from salesops_models.config_base import StrictModel


class ForecastConfig(StrictModel):
    """Settings of the forecast stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
