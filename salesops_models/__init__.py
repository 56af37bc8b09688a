"""salesops_models: a reproducible workbench for sales operations research.

Import as ``import salesops_models as so``. Models live in subpackages (``territory``, ``quota``,
``forecast``, ``pipeline``, ``compensation``, ``kpi``); ``data`` holds the canonical tables,
loaders and the sample company; ``workflow`` runs scenarios and batches.
"""

from __future__ import annotations

__version__ = "0.1.0"

from salesops_models.data import CompanyData, StageSet, generate_sample_company, load_crm_export  # noqa: E402
from salesops_models.scenario import Scenario, load_scenario  # noqa: E402

__all__ = [
    "__version__",
    "CompanyData",
    "StageSet",
    "Scenario",
    "generate_sample_company",
    "load_crm_export",
    "load_scenario",
]
