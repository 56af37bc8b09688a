"""Stages of a scenario run, one module each, each with ``run(ctx) -> dict`` (see ``context``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from salesops_models.workflow.context import StageContext
from salesops_models.workflow.contracts import STAGE_ORDER

StageFn = Callable[[StageContext], dict[str, Any]]


def stage_function(name: str) -> StageFn:
    """The ``run`` function of stage ``name``."""
    if name not in STAGE_ORDER:
        raise KeyError(f"unknown stage {name!r}; stages are {', '.join(STAGE_ORDER)}")
    module = importlib.import_module(f"salesops_models.workflow.stages.{name}")
    return module.run
