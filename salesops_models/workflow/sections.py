"""The sections of a scenario's ``report.html``: everything the stages computed, as view blocks.

One function per section, each reading the scenario's tables through
:class:`~salesops_models.workflow.collect.ScenarioResults` and returning a
:class:`~salesops_models.workflow.views.Section`. A missing table becomes a note saying why (stage
disabled, failed, not run, or the option that writes it is off), never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from salesops_models.workflow import charts, derived
from salesops_models.workflow.collect import ScenarioResults
from salesops_models.workflow.context import STAGE_ORDER
from salesops_models.workflow.exports import statement_filename
from salesops_models.workflow.views import (
    Block,
    Column,
    Section,
    chart,
    facts,
    missing_note,
    note,
    table,
    text,
)

C = Column
# Panel labels of the one-scenario charts. Not the scenario's name: the page already names the
# scenario, and a name in the picture would make every sweep child or renamed what-if draw again
# charts whose tables it shares (the chart cache keys on every label).
PANEL_TERRITORIES, PANEL_COMPANY, PANEL_TEAM = "Territory plan", "Company", "Team"
REP = [C("rep_id", "Rep"), C("rep_name", "Name"), C("region", "Region"), C("manager", "Manager")]


def statement_link(rec: Mapping[str, Any]) -> str | None:
    rep = rec.get("rep_id")
    return None if rep is None else "statements/" + quote(statement_filename(str(rep)))


def p_class(_: str, v: Any) -> str:
    """Colour class of a probability cell: likely to miss (< 30%), at risk (< 60%), likely to make it."""
    try:
        p = float(v)
    except (TypeError, ValueError):
        return ""
    if np.isnan(p):
        return "na"
    return "risk-high" if p < 0.3 else "risk-mid" if p < 0.6 else "risk-low"


def _or_note(block: Block | None, results: ScenarioResults, key: str, hint: str = "") -> Block:
    return block if block is not None else missing_note(results, key, hint)


# ------------------------------------------------------------------------------------------------
# overview
# ------------------------------------------------------------------------------------------------

HEADLINES = (
    ("Company target", "quota_company_target", "money"),
    ("Total quota", "quota_total", "money"),
    ("Bookings P10", "pipeline_bookings_p10", "money"),
    ("Bookings P50", "pipeline_bookings_p50", "money"),
    ("Bookings P90", "pipeline_bookings_p90", "money"),
    ("Reps at quota (expected)", "comp_share_at_quota", "share"),
    ("Commission cost P50", "comp_cost_p50", "money"),
    ("Commission cost P90", "comp_cost_p90", "money"),
    ("Cost of sales", "comp_cost_of_sales", "share"),
    ("Territory balance max/min", "territory_balance_max_min", "ratio"),
    ("Disruption (value moved)", "territory_disruption_share", "share"),
    ("Forecast plan-year total", "forecast_plan_year_total", "money"),
    ("Forecast backtest MAPE", "forecast_backtest_mape", "share"),
)


def overview_section(r: ScenarioResults, downloads: list[tuple[str, str]]) -> Section:
    s = Section("overview", "Overview")
    s.add(facts(HEADLINES, r.metrics) or note("No headline figures: no stage finished."))
    if downloads:
        s.add(Block("links", title="Files", links=downloads))
    rows = []
    for stage in STAGE_ORDER:
        rows.append(
            {
                "stage": stage,
                "state": r.stage_state(stage),
                "seconds": r.timings.get(f"{stage}_stage_seconds"),
            }
        )
    s.add(
        table(
            pd.DataFrame(rows),
            [C("stage", "Stage"), C("state", "State"), C("seconds", "Time", "seconds")],
            id="stages",
            row_class=lambda rec: f"state-{str(rec['state']).replace(' ', '-')}",
            key="stage",
        )
    )
    for p in r.problems:
        s.add(note(f"Damaged result: {p}"))
    return s


# ------------------------------------------------------------------------------------------------
# territories
# ------------------------------------------------------------------------------------------------


def territory_section(r: ScenarioResults) -> Section:
    s = Section("territory", "Territories")
    m = r.metrics
    s.add(
        facts(
            (
                ("Solver status", "territory_status", "text"),
                ("MIP gap", "territory_mip_gap", "share"),
                ("Accounts moved", "territory_moved", "int"),
                ("Disruption (value moved)", "territory_disruption_share", "share"),
                ("Travel after", "territory_travel", "money"),
                ("Travel before", "territory_travel_before", "money"),
                ("Balance max/min before", "territory_balance_max_min_before", "ratio"),
                ("Balance CV before", "territory_balance_cv_before", "ratio"),
            ),
            m,
        )
    )
    territories = r.table("territories")
    if territories is None:
        return s.add(missing_note(r, "territories"))
    summary = derived.balance_summary(territories)
    s.add(text("Balance of every metric the plan balances (loads relative to each territory's target)."))
    s.add(
        _or_note(
            table(
                summary,
                [
                    C("metric", "Metric"),
                    C("max_min", "Max/min", "ratio", "1 = perfectly balanced"),
                    C("cv", "CV", "ratio", "0 = perfectly balanced"),
                    C("max_abs_deviation", "Largest deviation", "share", "from target"),
                    C("within_band", "Inside band", "share", "share of territories"),
                ],
                id="balance",
                key="metric",
            ),
            r,
            "territories",
        )
    )
    s.add(chart("Balance by metric", charts.territory_deviation_chart, territories))
    metric_cols = []
    for metric in charts.balance_metrics(territories):
        metric_cols += [C(metric, metric, "num1"), C(f"{metric}_deviation", f"{metric} vs target", "share")]
    s.add(
        table(
            territories,
            [
                C("rep_id", "Territory (rep)"),
                C("accounts", "Accounts", "int"),
                *metric_cols,
                C("travel", "Travel", "money"),
                C("accounts_in", "Accounts in", "int"),
                C("accounts_out", "Accounts out", "int"),
            ],  # fmt: skip
            id="territories",
            caption="Every territory",
            key="rep_id",
        )
    )
    assignments = r.table("assignments")
    if assignments is not None:
        from salesops_models.workflow.report import account_points

        points = account_points(r.out_dir, assignments, r.company("accounts"))
        s.add(chart("Territory map", charts.territory_map, charts.single(PANEL_TERRITORIES, points),
                    missing="no account coordinates"))  # fmt: skip
    s.add(Block("heading", title="Diagnosis of the balance bands"))
    diagnosis, relaxation = r.table("territory_diagnosis"), r.table("territory_relaxation")
    if diagnosis is None and relaxation is None:
        s.add(note("Every balance band could be met: no diagnosis was needed."))
    else:
        needed = m.get("territory_relaxation_needed")
        s.add(text(f"Relaxation needed: {needed}" if needed else "No band had to be relaxed."))
        s.add(table(relaxation, [C("constraint", "Constraint"), C("requested", "Tolerance asked", "share"),
                                 C("required", "Tolerance needed", "share"), C("binding", "Binding", "bool")],
                    id="relaxation"))  # fmt: skip
        if diagnosis is not None and len(diagnosis):
            s.add(table(diagnosis, [C(c, c.replace("_", " "), "num2" if pd.api.types.is_float_dtype(diagnosis[c])
                                      else "text") for c in diagnosis.columns], id="diagnosis"))  # fmt: skip
    s.add(Block("heading", title="Travel versus disruption"))
    curve = r.table("territory_tradeoff")
    if curve is None:
        s.add(missing_note(r, "territory_tradeoff", "Set territory.tradeoff_budgets to draw the curve."))
    else:
        s.add(chart("Travel versus disruption", charts.tradeoff_chart, curve))
        s.add(table(curve, [C("budget", "Disruption budget", "pct0"), C("status", "Status"),
                            C("travel", "Travel", "money"), C("disruption_share", "Value moved", "share"),
                            C("moved", "Accounts moved", "int"), C("mip_gap", "MIP gap", "share")],
                    id="tradeoff"))  # fmt: skip
    new_reps = r.table("territory_new_reps")
    if new_reps is not None:
        s.add(Block("heading", title="New reps placed"))
        s.add(table(new_reps, [C(c, c.replace("_", " "), "text") for c in new_reps.columns], id="new-reps"))
    return s


# ------------------------------------------------------------------------------------------------
# forecast
# ------------------------------------------------------------------------------------------------


def forecast_section(r: ScenarioResults) -> Section:
    s = Section("forecast", "Revenue forecast")
    forecast = r.table("forecast")
    if forecast is None:
        return s.add(missing_note(r, "forecast"))
    s.add(
        facts(
            (
                ("Plan-year total", "forecast_plan_year_total", "money"),
                ("Model", "forecast_model", "text"),
                ("Reconciliation", "forecast_reconciliation", "text"),
                ("Backtest MAPE (company)", "forecast_backtest_mape", "share"),
                ("Backtest coverage of the 90% band", "forecast_coverage90", "share"),
            ),
            r.metrics,
        )
    )
    s.add(chart("Company forecast", charts.fan_chart, {PANEL_COMPANY: charts.top_series(forecast)},
                    "Plan-year bookings forecast (company level)"))  # fmt: skip
    regions = charts.level_series(forecast, "region")
    s.add(Block("heading", title="Forecast by region"))
    if not regions:
        s.add(note("No region level in this forecast (forecast.levels has no 'region')."))
    else:
        s.add(
            chart("Forecast by region", charts.fan_chart, regions, "Plan-year bookings forecast by region")
        )
        by_region = derived.forecast_by_region(forecast)
        if by_region is not None:
            cols = [C("region", "Region")] + [
                C(c, c, "money", "expected") for c in by_region.columns if c not in ("region",)
            ]
            s.add(table(by_region, cols, id="forecast-by-region", key="region"))
    accuracy = r.table("forecast_accuracy")
    s.add(Block("heading", title="Backtest accuracy by level"))
    s.add(
        _or_note(
            table(accuracy, [C("level", "Level"), C("n", "Origins", "int"), C("mape", "MAPE", "num1", "%"),
                             C("smape", "sMAPE", "num1", "%"), C("mase", "MASE", "num2"),
                             C("percent_bias", "Bias", "num1", "%"),
                             C("coverage80", "Inside 80% band", "share"),
                             C("coverage90", "Inside 90% band", "share")], id="forecast-accuracy"),
            r, "forecast_accuracy"))  # fmt: skip
    return s


# ------------------------------------------------------------------------------------------------
# pipeline
# ------------------------------------------------------------------------------------------------


def pipeline_section(r: ScenarioResults) -> Section:
    s = Section("pipeline", "Pipeline Monte Carlo")
    s.add(
        facts(
            (
                ("Trials", "pipeline_trials", "int"),
                ("Bookings P10", "pipeline_bookings_p10", "money"),
                ("Bookings P50", "pipeline_bookings_p50", "money"),
                ("Bookings P90", "pipeline_bookings_p90", "money"),
                ("Simulated win rate", "pipeline_win_rate", "share"),
                ("Sales cycle", "pipeline_cycle_days", "num1"),
                ("Open deals", "pipeline_open_deals", "int"),
                ("Stale deals", "pipeline_stale_deals", "int"),
                ("Admin time handed back", "pipeline_admin_time_reduction", "share"),
            ),
            r.metrics,
        )
    )
    samples = r.table("bookings_samples")
    if samples is None:
        return s.add(missing_note(r, "bookings_samples"))
    s.add(chart("Team bookings", charts.pipeline_total_chart, charts.single(PANEL_TEAM, samples)))
    s.add(Block("heading", title="Bookings by month"))
    by_month = r.table("pipeline_by_month")
    if by_month is None:
        s.add(missing_note(r, "pipeline_by_month"))
    else:
        quota_line = _company_monthly_quota(r, by_month)
        s.add(chart("Bookings by month", charts.band_by_month_chart,
            by_month, "Simulated company bookings by month", "bookings per month",
            quota_line, "company quota"))  # fmt: skip
        frame = by_month.assign(quota=quota_line.to_numpy() if quota_line is not None else np.nan)
        s.add(table(frame, [C("period", "Month"), C("p10", "P10", "money"), C("p50", "P50", "money"),
                            C("p90", "P90", "money"), C("mean", "Mean", "money"),
                            C("quota", "Company quota", "money")], id="pipeline-by-month", key="period"))  # fmt: skip
    summary = r.table("pipeline_summary")
    s.add(Block("heading", title="Per rep"))
    s.add(
        _or_note(
            table(summary, [C("rep_id", "Rep"), C("region", "Region"), C("p10", "P10", "money"),
                            C("p50", "P50", "money"), C("p90", "P90", "money"),
                            C("closed_to_date", "Closed to date", "money"), C("win_rate", "Win rate", "share"),
                            C("creation_per_week", "New deals", "num2", "per week"),
                            C("selling_hours", "Selling", "num1", "h/week"),
                            C("admin_hours", "Admin", "num1", "h/week")], id="pipeline-reps", key="rep_id"),
            r, "pipeline_summary"))  # fmt: skip
    s.add(Block("heading", title="Pipeline coverage"))
    coverage = derived.pipeline_coverage(r)
    if coverage is None:
        s.add(note("Not available: needs the quotas and pipeline_summary tables."))
    else:
        s.add(text("Open pipeline over the quota still to book; the weighted figure values each open deal at "
                   "its calibrated P(win | stage, age). Lowest coverage first."))  # fmt: skip
        s.add(table(coverage, [*REP[:3], C("quota", "Quota", "money"), C("open_deals", "Open deals", "int"),
                               C("open_value", "Open pipeline", "money"),
                               C("open_value_age_aware", "Weighted pipeline", "money"),
                               C("coverage", "Coverage", "multiple"),
                               C("coverage_weighted", "Weighted coverage", "multiple"),
                               C("simulated_p50_to_quota", "Simulated P50 / quota", "share")],
                    id="coverage", key="rep_id"))  # fmt: skip
    s.add(Block("heading", title="Capacity-limited reps (simpy)"))
    capacity = r.table("pipeline_capacity")
    if capacity is None:
        s.add(missing_note(r, "pipeline_capacity", "Set pipeline.capacity.enabled to run the simpy model."))
    else:
        s.add(facts((("Bookings P50 with capacity", "pipeline_capacity_bookings_p50", "money"),
                     ("Utilisation of selling hours", "pipeline_capacity_utilisation", "share"),
                     ("Mean queue", "pipeline_capacity_queue_days", "num1")), r.metrics))  # fmt: skip
        s.add(table(capacity, [C("rep_id", "Rep"), C("mean", "Mean", "money"), C("p10", "P10", "money"),
                               C("p50", "P50", "money"), C("p90", "P90", "money"),
                               C("utilisation", "Utilisation", "share")], id="capacity", key="rep_id"))  # fmt: skip
    return s


def _company_monthly_quota(r: ScenarioResults, by_month: pd.DataFrame) -> pd.Series | None:
    per = r.table("quotas_by_period")
    if per is None or "period" not in by_month.columns:
        return None
    m = per[per["period_type"] == "month"].groupby("period")["quota"].sum()
    line = m.reindex(by_month["period"].astype(str))
    return None if line.isna().any() else line


# ------------------------------------------------------------------------------------------------
# quotas
# ------------------------------------------------------------------------------------------------


def quota_section(r: ScenarioResults) -> Section:
    s = Section("quota", "Quotas")
    s.add(
        facts(
            (
                ("Method", "quota_method", "text"),
                ("Company target", "quota_company_target", "money"),
                ("Target from", "quota_target_source", "text"),
                ("Total quota", "quota_total", "money"),
                ("Bookings distribution from", "quota_distribution_source", "text"),
                ("Common P(attain) (equal chance)", "quota_equal_chance_p", "share"),
                ("Spread of P(attain)", "quota_p_attain_spread", "share"),
                ("Relief total", "quota_relief_total", "money"),
            ),
            r.metrics,
        )
    )
    quotas = r.table("quotas")
    if quotas is None:
        return s.add(missing_note(r, "quotas"))
    s.add(Block("heading", title="Quota methods compared"))
    fairness = r.table("quota_fairness")
    s.add(
        _or_note(
            table(fairness, [C("method", "Method"), C("chosen", "Chosen", "bool"),
                             C("quota_total", "Total quota", "money"),
                             C("quota_to_potential_cv", "Quota/potential CV", "ratio", "0 = proportional"),
                             C("p_attain_min", "Lowest P(attain)", "share"),
                             C("p_attain_max", "Highest P(attain)", "share"),
                             C("p_attain_spread", "Spread", "share"),
                             C("expected_share_at_quota", "Reps at quota", "share", "expected"),
                             C("error", "Note")], id="quota-methods", key="method",
                  row_class=lambda rec: "chosen" if rec.get("chosen") else ""),
            r, "quota_fairness", "Set quota.compare_methods to compare the methods."))  # fmt: skip
    s.add(Block("heading", title="Who is likely to miss: P(attain) by quarter"))
    s.add(risk_block(r))
    s.add(Block("heading", title="Quotas per rep"))
    s.add(table(quotas.sort_values("p_attain") if "p_attain" in quotas else quotas,
                [C("rep_id", "Rep"), C("region", "Region"), C("manager", "Manager"), C("quota", "Quota", "money"),
                 C("fair_share", "Fair share", "money"), C("prior_year", "Prior year", "money"),
                 C("potential", "Potential", "money"), C("ramp_factor", "Ramp", "share"),
                 C("relief", "Relief", "money"), C("binding_bounds", "Bound hit"),
                 C("p_attain", "P(attain) year", "share")],
                id="quotas", key="rep_id", cell_class=lambda k, v: p_class(k, v) if k == "p_attain" else ""))  # fmt: skip
    capacity = r.table("quota_capacity")
    s.add(Block("heading", title="Carried-quota capacity plan"))
    if capacity is None:
        s.add(missing_note(r, "quota_capacity", "Set quota.capacity.enabled for the capacity plan."))
    else:
        s.add(facts((("Extra hires needed", "quota_capacity_extra_hires_needed", "int"),
                     ("Capacity coverage of the target", "quota_capacity_coverage", "share"),
                     ("Gap", "quota_capacity_gap", "money")), r.metrics))  # fmt: skip
        s.add(table(capacity, [C("month", "Month", "int"), C("headcount", "Headcount", "num1"),
                               C("hires", "Hires", "num1"), C("backfills", "Backfills", "num1"),
                               C("departures", "Departures", "num2"), C("ramped_fte", "Ramped FTE", "num1"),
                               C("expected_bookings", "Expected bookings", "money")], id="quota-capacity"))  # fmt: skip
    relief = r.table("quota_relief")
    if relief is not None:
        s.add(Block("heading", title="Quota relief for accounts that move mid-year"))
        s.add(table(relief, [C(c, c.replace("_", " "), "money" if c == "relief" else "text") for c in relief.columns],
                    id="quota-relief"))  # fmt: skip
    return s


def risk_block(r: ScenarioResults) -> Block:
    """The quarter x rep risk table: P(attain) per quarter, reps least likely to make the year first."""
    risk = derived.attainment_risk(r)
    if risk is None:
        key = (
            "bookings_by_quarter_samples"
            if r.table("bookings_by_quarter_samples") is None
            else "quotas_by_period"
        )
        return missing_note(r, key)
    matrix = risk.matrix("p_attain")
    quarters = [str(c) for c in matrix.columns]
    wide = risk.by_rep.merge(matrix.reset_index(), on="rep_id", how="left")
    wide = derived.with_rep_details(r, wide)
    likely_miss = int((risk.by_rep["p_attain_year"] < 0.5).sum())
    cols = [
        *REP[:3],
        C("quota_year", "Annual quota", "money"),
        C("p_attain_year", "P(make the year)", "pct0"),
    ]
    cols += [C(q, q, "pct0", "P(make the quarter)") for q in quarters]
    cols += [C("quarters_missed_expected", "Quarters missed", "num1", "expected")]
    block = table(wide, cols, id="risk", key="rep_id",
                  cell_class=lambda k, v: p_class(k, v) if k in quarters or k == "p_attain_year" else "",
                  links={"rep_id": statement_link}, collapse=False)  # fmt: skip
    assert block is not None
    block.title = (
        f"{likely_miss} of {len(risk.by_rep)} reps are more likely to miss their annual quota than to make "
        f"it; least likely first. From {risk.trials} simulated plan years (standard error at most "
        f"{0.5 / np.sqrt(max(risk.trials, 1)):.1%})."
    )
    return block


# ------------------------------------------------------------------------------------------------
# commission
# ------------------------------------------------------------------------------------------------


def compensation_section(r: ScenarioResults) -> Section:
    s = Section("compensation", "Commission cost")
    s.add(
        facts(
            (
                ("Primary plan", "comp_primary_plan", "text"),
                ("Attainment from", "comp_attainment_source", "text"),
                ("Cost P50", "comp_cost_p50", "money"),
                ("Cost P90", "comp_cost_p90", "money"),
                ("Cost of sales", "comp_cost_of_sales", "share"),
                ("Reps at quota", "comp_share_at_quota", "share"),
                ("P90 earner (total pay)", "comp_p90_earner", "money"),
                ("P90 earner, multiple of target incentive", "comp_p90_earner_ti_multiple", "num2"),
            ),
            r.metrics,
        )
    )
    payouts = r.table("payouts")
    if payouts is None:
        return s.add(missing_note(r, "payouts"))
    comparison = r.table("plan_comparison")
    plan_cols = [C("plan", "Plan"), C("attainment_set", "Attainment set"), C("cost_p10", "Cost P10", "money"),
                 C("cost_p50", "Cost P50", "money"), C("cost_p90", "Cost P90", "money"),
                 C("cost_of_sales", "Cost of sales", "share"), C("share_at_quota", "Reps at quota", "share"),
                 C("p90_earner", "P90 earner", "money"),
                 C("p90_earner_ti_multiple", "P90 earner", "num2", "x target incentive")]  # fmt: skip
    s.add(Block("heading", title="Plans compared on this scenario's attainment"))
    if comparison is None or "mode" not in comparison.columns:
        s.add(missing_note(r, "plan_comparison"))
    else:
        primary_row: Callable[[Mapping[str, Any]], str] = lambda rec: "chosen" if rec.get("primary") else ""  # noqa: E731
        s.add(table(comparison[comparison["mode"] == "comparison"], plan_cols, id="plan-comparison", key="plan",
                    row_class=primary_row))  # fmt: skip
        by_plan = r.table("cost_samples_by_plan")
        if by_plan is not None and "plan" in by_plan.columns:
            groups = {str(k): g for k, g in by_plan.groupby("plan", sort=False)}
            s.add(chart("Cost by plan", charts.commission_cost_chart, groups, "Commission cost by plan"))
        s.add(Block("heading", title="The primary plan across attainment scenarios (costing mode)"))
        s.add(table(comparison[comparison["mode"] == "costing"], plan_cols, id="plan-costing",
                    key="attainment_set"))  # fmt: skip
    s.add(Block("heading", title="Cost of sales by attainment quartile"))
    quartiles = r.table("cost_by_quartile")
    if quartiles is None:
        s.add(missing_note(r, "cost_by_quartile"))
    else:
        s.add(chart("Cost of sales by quartile", charts.grouped_bars,
            quartiles, "cost_of_sales", "plan", "quartile", "Cost of sales by attainment quartile (1 = lowest)",
            "cost of sales", share=True))  # fmt: skip
        s.add(table(quartiles, [C("plan", "Plan"), C("quartile", "Quartile", "int", "1 = lowest"),
                                C("mean_attainment", "Mean attainment", "share"),
                                C("cost", "Cost", "money", "all trials"), C("revenue", "Revenue", "money", "all trials"),
                                C("cost_of_sales", "Cost of sales", "share")], id="quartiles"))  # fmt: skip
    s.add(Block("heading", title="Commission cost by month (accrued)"))
    monthly = derived.cost_by_month(r)
    if monthly is None:
        s.add(missing_note(r, "cost_samples"))
    else:
        by_month, basis = monthly
        s.add(text(f"How: {basis}. Monthly percentiles do not add up to the annual ones."))
        band = by_month.rename(columns={"total_p10": "p10", "total_p50": "p50", "total_p90": "p90"})
        s.add(chart("Cost by month", charts.band_by_month_chart, band,
                             "Commission cost by month (base + variable)", "cost per month"))  # fmt: skip
        s.add(table(by_month, [C("month", "Month"), C("base", "Base", "money"),
                               C("variable_p10", "Variable P10", "money"), C("variable_p50", "Variable P50", "money"),
                               C("variable_p90", "Variable P90", "money"), C("total_p10", "Total P10", "money"),
                               C("total_p50", "Total P50", "money"), C("total_p90", "Total P90", "money")],
                    id="cost-by-month", key="month"))  # fmt: skip
    s.add(Block("heading", title="Pay per rep and payout statements"))
    traces = r.table("traces")
    s.add(text("Each rep's variable pay over the simulated plan years; the rep id opens the rep's payout "
               "statement, a line-by-line calculation at the rep's median simulated bookings."
               if traces is not None else "Variable pay per rep over the simulated plan years."))  # fmt: skip
    if traces is None:
        s.add(missing_note(r, "traces"))
    ps = derived.with_rep_details(r, payouts.assign(rep_id=payouts["rep_id"].astype(str)))
    s.add(table(ps, [*REP[:3], C("quota", "Quota", "money"), C("attainment_p50", "Attainment P50", "share"),
                     C("p_attain", "P(reach quota)", "share"), C("payout_p10", "Variable P10", "money"),
                     C("payout_p50", "Variable P50", "money"), C("payout_p90", "Variable P90", "money"),
                     C("total_pay_p50", "Total pay P50", "money")], id="payouts", key="rep_id",
                links={"rep_id": statement_link} if traces is not None else None,
                cell_class=lambda k, v: p_class(k, v) if k == "p_attain" else ""))  # fmt: skip
    return s


# ------------------------------------------------------------------------------------------------
# KPIs and run details
# ------------------------------------------------------------------------------------------------

KPI_REP_COLUMNS = [C("rep_id", "Rep"), C("won", "Won", "int"), C("lost", "Lost", "int"),
                   C("win_rate", "Win rate", "share"), C("median_cycle_days", "Median cycle", "num1", "days"),
                   C("won_revenue", "Won revenue", "money"), C("selling_share", "Time selling", "share")]  # fmt: skip


def kpi_section(r: ScenarioResults) -> Section:
    s = Section("kpi", "Sales KPIs (history)")
    overall = r.table("kpi_overall")
    if overall is None:
        return s.add(missing_note(r, "kpi_overall"))
    o = overall.iloc[0].to_dict()
    s.add(facts((("Win rate", o.get("win_rate"), "share"), ("Median cycle (days)", o.get("median_cycle_days"), "num1"),
                 ("Revenue per rep", o.get("revenue_per_rep"), "money"), ("Won revenue", o.get("won_revenue"), "money"),
                 ("Open pipeline", o.get("open_pipeline_value"), "money"),
                 ("Mean won deal", o.get("mean_won_deal"), "money"),
                 ("Time selling", o.get("selling_time_share"), "share"))))  # fmt: skip
    s.add(Block("heading", title="By rep"))
    s.add(
        _or_note(
            table(r.table("kpi_by_rep"), KPI_REP_COLUMNS, id="kpi-by-rep", key="rep_id"), r, "kpi_by_rep"
        )
    )
    s.add(Block("heading", title="By quarter"))
    s.add(_or_note(table(r.table("kpi_by_quarter"), [C("period", "Quarter"), C("revenue", "Won revenue", "money"),
                                                    C("deals", "Won deals", "int")], id="kpi-by-quarter"),
                   r, "kpi_by_quarter"))  # fmt: skip
    return s


def run_section(r: ScenarioResults) -> Section:
    s = Section("run", "How this was computed")
    prov = r.resolved.get("_provenance") or {}
    s.add(facts((("Package version", prov.get("package_version"), "text"), ("Git commit", prov.get("git_commit"), "text"),
                 ("Master seed", prov.get("master_seed"), "text"), ("Run started", prov.get("created_utc"), "text"),
                 ("Plan year", r.resolved.get("plan_year"), "text"))))  # fmt: skip
    if r.resolved:
        import yaml

        doc = {k: v for k, v in r.resolved.items() if k != "_provenance"}
        s.add(Block("pre", title="The resolved scenario", text=yaml.safe_dump(doc, sort_keys=False)))
    return s


SECTIONS: tuple[tuple[str, Callable[[ScenarioResults], Section]], ...] = (
    ("Territories", territory_section),
    ("Revenue forecast", forecast_section),
    ("Pipeline Monte Carlo", pipeline_section),
    ("Quotas", quota_section),
    ("Commission cost", compensation_section),
    ("Sales KPIs (history)", kpi_section),
    ("How this was computed", run_section),
)
