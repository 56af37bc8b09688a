"""salesops_models: a reproducible workbench for sales operations research.

Import as ``import salesops_models as so``. Models live in subpackages (``territory``, ``quota``,
``forecast``, ``pipeline``, ``compensation``, ``kpi``); ``data`` holds the canonical tables,
loaders and the sample company; ``workflow`` runs scenarios and batches.

The names below are imported on first use (PEP 562), so that importing one light module (the CLI,
``safe_io``, ``errors``) does not load pandas, scipy and pyomo: the CLI refuses a hostile file
before it pays for them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "CompanyData": "salesops_models.data",
    "StageSet": "salesops_models.data",
    "generate_sample_company": "salesops_models.data",
    "load_crm_export": "salesops_models.data",
    "Scenario": "salesops_models.scenario",
    "load_scenario": "salesops_models.scenario",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")  # a subpackage, e.g. so.territory
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
