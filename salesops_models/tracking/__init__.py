"""Tracking: the plan meets the year.

A saved plan (a scenario's results folder) and an export of actuals taken during the plan year go
in; out come attainment to date by rep, manager and region against the period quotas, the
year-end re-forecast per rep conditioned on what is booked (P10/P50/P90, P(make quota)), the
commission accrual and the year's expected cost, the KPIs by month against the plan's assumptions,
and a risk list. Mid-year changes (a rep who leaves, a hire, an account move) are applied
explicitly (:mod:`.changes`). Every run is kept in a new folder, so the report draws the trend.

Typical use::

    from salesops_models.tracking import track_plan
    run = track_plan("results/<batch>/baseline", "actuals/", as_of="2026-06-30")
    run.report        # report.html of the new run folder

or, without files, :func:`track` on a :class:`SavedPlan` and a :class:`~salesops_models.data.CompanyData`.
"""

from salesops_models.tracking.actuals import check_same_company, cut_at, load_actuals, tracking_date
from salesops_models.tracking.changes import (
    AccountMove,
    ChangeLog,
    Departure,
    Hire,
    MidYearPlan,
    apply_changes,
    load_changes,
    vacancy_id,
)
from salesops_models.tracking.plan import SavedPlan, compatible, load_saved_plan
from salesops_models.tracking.reforecast import Reforecast, reforecast_year_end
from salesops_models.tracking.run import TrackingResult, TrackingRun, track, track_plan

__all__ = [
    "AccountMove",
    "ChangeLog",
    "Departure",
    "Hire",
    "MidYearPlan",
    "Reforecast",
    "SavedPlan",
    "TrackingResult",
    "TrackingRun",
    "apply_changes",
    "check_same_company",
    "compatible",
    "cut_at",
    "load_actuals",
    "load_changes",
    "load_saved_plan",
    "reforecast_year_end",
    "track",
    "track_plan",
    "tracking_date",
    "vacancy_id",
]
