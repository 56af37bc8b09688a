"""The KPIs by month of the plan year, actual against what the plan assumed.

One row per month and KPI (``month, kpi, unit, plan, actual, partial``); the month of the tracking
date is ``partial`` (its plan figures that scale with time are pro-rated by day). Definitions are
those of :mod:`salesops_models.kpi`:

* ``win_rate`` = won / (won + lost) of the deals closed in the month [0-1]; plan: the win rate the
  plan's pipeline simulation expected among the plan year's closes (``pipeline_win_rate``), else
  the history's.
* ``cycle_days`` = mean created-to-won days of the deals won in the month [days]; plan: the same
  over the last 12 months of the plan's history.
* ``revenue_per_rep`` = bookings in the month / reps working in it [currency/rep]; plan: the plan's
  monthly bookings forecast / the plan's reps.
* ``selling_time_share`` = selling / (selling + admin + other) hours of the weeks starting in the
  month [0-1]; plan: the last 13 weeks of the plan's history, with the plan's admin-time what-if
  (``pipeline.admin_time_reduction``) applied: (S + x A) / (S + A + O).
* ``forecast_accuracy`` = 100 - |F - A| / A x 100 of the month's bookings against the plan's
  forecast for it [%]; plan: 100 x (1 - the forecast backtest's MAPE), the accuracy the plan's
  forecast showed on history.

The plan's monthly bookings forecast is the forecast stage's company level (what set the target),
else the pipeline stage's simulated mean, else the monthly quotas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salesops_models import kpi
from salesops_models.data.schema import LOST, WON
from salesops_models.tracking.periods import elapsed_month_fractions
from salesops_models.tracking.plan import SavedPlan

UNITS = {
    "win_rate": "share",
    "cycle_days": "days",
    "revenue_per_rep": "currency/rep",
    "selling_time_share": "share",
    "forecast_accuracy": "%",
}


@dataclass(frozen=True)
class PlanAssumptions:
    """What the plan assumed for the year (see the module docstring)."""

    win_rate: float
    cycle_days: float
    monthly_bookings: np.ndarray  # 12 months [currency]
    bookings_source: str
    reps: int
    selling_time_share: float
    forecast_accuracy: float


def plan_assumptions(plan: SavedPlan) -> PlanAssumptions:
    """Read the plan's assumptions from its metrics, tables and the history it was made on."""
    company = plan.company
    as_of = pd.Timestamp(company.as_of)
    opps = company.opportunities
    recent = opps[opps["close_date"] > as_of - pd.DateOffset(years=1)]
    win = plan.metrics.get("pipeline_win_rate")
    if win is None or not np.isfinite(win):
        win = float(kpi.win_rate(recent)["win_rate"].iloc[0])
    cycle = float(kpi.sales_cycle(recent)["mean_cycle_days"].iloc[0])
    monthly, source = _plan_monthly_bookings(plan)
    act = company.activities
    share = float("nan")
    if len(act):
        last = act[act["week_start"] > as_of - pd.Timedelta(weeks=13)]
        t = kpi.time_selling(last if len(last) else act, by=None).iloc[0]
        x = plan.scenario.pipeline.admin_time_reduction
        total = t["selling_hours"] + t["admin_hours"] + t["other_hours"]
        share = float((t["selling_hours"] + x * t["admin_hours"]) / total) if total > 0 else float("nan")
    mape = plan.metrics.get("forecast_backtest_mape")
    accuracy = 100.0 * (1.0 - float(mape)) if mape is not None and np.isfinite(mape) else float("nan")
    return PlanAssumptions(float(win), cycle, monthly, source, len(plan.quotas), share, accuracy)


def _plan_monthly_bookings(plan: SavedPlan) -> tuple[np.ndarray, str]:
    f = plan.tables.get("forecast")
    if f is not None and {"level", "month", "mean"} <= set(f.columns):
        comp = f[f["level"].astype(str).isin(["company", "total"])]
        if "model" in comp and comp["model"].nunique() > 1:
            comp = comp[comp["model"] == comp["model"].iloc[0]]
        months = pd.to_datetime(comp["month"])
        comp = comp[months.dt.year == plan.plan_year]
        if len(comp):
            by = comp.groupby(pd.to_datetime(comp["month"]).dt.month)["mean"].sum()
            return by.reindex(range(1, 13)).fillna(0.0).to_numpy(float), "forecast (company level)"
    p = plan.tables.get("pipeline_by_month")
    if p is not None and {"period", "mean"} <= set(p.columns) and len(p) == 12:
        return p["mean"].to_numpy(float), "pipeline simulation (mean)"
    return plan.monthly_quota.sum(axis=0).to_numpy(float), "quotas"


def kpi_history(
    opportunities: pd.DataFrame,
    credited: pd.Series,
    activities: pd.DataFrame,
    employed_reps: pd.Series,
    as_of: pd.Timestamp,
    plan_year: int,
    plan: PlanAssumptions,
) -> pd.DataFrame:
    """KPIs by month of the plan year up to ``as_of``, plan against actual.

    Parameters
    ----------
    opportunities
        The export's opportunities, cut at ``as_of``.
    credited
        Holder credited with each opportunity.
    activities
        Weekly time use (may be empty: the selling-time KPI is then NaN).
    employed_reps
        Number of reps working in each month (index 1-12) [reps].
    as_of
        Tracking date.
    plan_year
        The plan year.
    plan
        :func:`plan_assumptions`.

    Returns
    -------
    pandas.DataFrame
        ``month`` (``YYYY-MM``), ``kpi``, ``unit``, ``plan``, ``actual``, ``partial``.
    """
    rows = []
    opp = opportunities.assign(rep_id=credited.astype(str).to_numpy())
    for m in range(1, as_of.month + 1):
        first = pd.Timestamp(year=plan_year, month=m, day=1)
        last = min(first + pd.offsets.MonthEnd(0), as_of)
        elapsed = last.day / first.days_in_month
        partial = last < first + pd.offsets.MonthEnd(0)
        closed = opp[opp["close_date"].between(first, last) & opp["status"].isin([WON, LOST])]
        won = closed[closed["status"] == WON]
        wr = kpi.win_rate(closed)["win_rate"].iloc[0] if len(closed) else np.nan
        cyc = kpi.sales_cycle(won)["mean_cycle_days"].iloc[0] if len(won) else np.nan
        booked = float(won["amount"].sum())
        reps = float(employed_reps.get(m, np.nan))
        forecast = plan.monthly_bookings[m - 1] * elapsed
        sell = np.nan
        if activities is not None and len(activities):
            wk = activities[activities["week_start"].between(first, last)]
            if len(wk):
                sell = float(kpi.time_selling(wk, by=None)["selling_share"].iloc[0])
        accuracy = 100.0 - abs(forecast - booked) / booked * 100.0 if booked > 0 else np.nan
        values = {
            "win_rate": (plan.win_rate, wr),
            "cycle_days": (plan.cycle_days, cyc),
            "revenue_per_rep": (
                forecast / plan.reps if plan.reps else np.nan,
                booked / reps if reps else np.nan,
            ),
            "selling_time_share": (plan.selling_time_share, sell),
            "forecast_accuracy": (plan.forecast_accuracy, accuracy),
        }
        for name, (p, a) in values.items():
            rows.append((f"{plan_year}-{m:02d}", name, UNITS[name], float(p), float(a), bool(partial)))
    return pd.DataFrame(rows, columns=["month", "kpi", "unit", "plan", "actual", "partial"])


def forecast_accuracy_to_date(
    plan: PlanAssumptions, booked_by_month: np.ndarray, as_of: pd.Timestamp
) -> dict:
    """Accuracy of the plan's bookings forecast so far [%].

    ``ytd_accuracy`` = 100 - |F - A| / A x 100 on the year-to-date totals (the month of ``as_of``
    pro-rated by day in F); over the complete months, :func:`salesops_models.kpi.forecast_accuracy`
    (``accuracy``, ``mape``, ``bias``, ``within_5pct``, ``within_10pct``).
    """
    actual = booked_by_month.sum(axis=0)
    f = plan.monthly_bookings * elapsed_month_fractions(as_of)
    a_ytd, f_ytd = float(actual.sum()), float(f.sum())
    out: dict[str, float] = {
        "ytd_forecast": f_ytd,
        "ytd_actual": a_ytd,
        "ytd_accuracy": 100.0 - abs(f_ytd - a_ytd) / a_ytd * 100.0 if a_ytd > 0 else float("nan"),
    }
    complete = as_of.month if as_of == as_of + pd.offsets.MonthEnd(0) else as_of.month - 1
    if complete:
        out.update(kpi.forecast_accuracy(actual[:complete], plan.monthly_bookings[:complete]))
    return out
