"""Canonical tables, loaders, column mappings and the sample company."""

from salesops_models.data.company import CompanyData, StageSet, bookings_from_opportunities
from salesops_models.data.loaders import load_crm_export, read_table
from salesops_models.data.sample import generate_plan_year_actuals, generate_sample_company
from salesops_models.data.schema import SCHEMAS

__all__ = [
    "CompanyData",
    "StageSet",
    "SCHEMAS",
    "bookings_from_opportunities",
    "generate_plan_year_actuals",
    "generate_sample_company",
    "load_crm_export",
    "read_table",
]
