"""Base class of every scenario section: strict pydantic models.

``extra="forbid"`` turns a typo in a scenario file into an error that names the key, instead of a
setting that is silently ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def section_model(annotation: Any) -> type[StrictModel] | None:
    """The :class:`StrictModel` a field's type annotation holds (``X``, ``X | None``, ...), or None."""
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = section_model(arg)
        if found is not None:
            return found
    return None
