"""Scenario section `pipeline:`: the settings of the pipeline model (owned by the pipeline model)."""

from __future__ import annotations

from pydantic import Field

from salesops_models.config_base import StrictModel


class PipelineConfig(StrictModel):
    """Settings of the pipeline stage of a scenario."""

    enabled: bool = Field(True, description="Run this stage in the scenario.")
