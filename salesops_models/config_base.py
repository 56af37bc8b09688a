"""Base class of every scenario section: strict pydantic models.

``extra="forbid"`` turns a typo in a scenario file into an error that names the key, instead of a
setting that is silently ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
