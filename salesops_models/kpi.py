"""The KPIs sales operations is measured by, from canonical tables.

Definitions (each function repeats its own):

* **win rate** = won / (won + lost), counting closed deals only; open deals are neither.
* **sales cycle** = close_date - created_date [days], won deals with both dates.
* **revenue per rep** = won amount / number of reps; "active" reps are those who own at least one
  opportunity, "all" reps are every row of the reps table.
* **forecast accuracy** per period = 100 - |F - A| / A x 100; across periods MAPE, signed bias
  and the share of periods within +-5% and +-10% (``salesops_models.forecast.metrics``).
* **time spent selling** = selling hours / (selling + admin + other hours).
* **pipeline coverage** = open pipeline value / (target - closed won to date).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salesops_models.data.company import CompanyData
from salesops_models.data.schema import LOST, OPEN, WON
from salesops_models.errors import DataValidationError


def _closed(opps: pd.DataFrame) -> pd.DataFrame:
    return opps[opps["status"].isin([WON, LOST])]


def _as_list(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def _with_rep_attributes(opps: pd.DataFrame, reps: pd.DataFrame | None, by: list[str]) -> pd.DataFrame:
    """Bring rep attributes (manager, region) onto opportunities when grouping by them."""
    need = [c for c in by if c not in opps.columns]
    if not need:
        return opps
    if reps is None or any(c not in reps.columns for c in need):
        raise DataValidationError("kpi", [f"cannot group by {need}: not a column of opportunities or reps."])
    return opps.merge(reps[["rep_id", *need]], on="rep_id", how="left")


def win_rate(
    opps: pd.DataFrame, by: str | Sequence[str] | None = None, reps: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Win rate = won / (won + lost) [0-1], overall or by group; with the won and lost counts.

    Open deals are excluded (neither won nor lost yet): counting them as lost is the commonest way
    to understate a win rate.
    """
    keys = _as_list(by)
    closed = _with_rep_attributes(_closed(opps), reps, keys)
    won = closed["status"] == WON
    frame = closed.assign(won=won.astype(int), lost=(~won).astype(int))
    if keys:
        g = frame.groupby(keys, observed=True, dropna=False)[["won", "lost"]].sum()
    else:
        g = pd.DataFrame(
            {"won": [int(frame["won"].sum())], "lost": [int(frame["lost"].sum())]}, index=["all"]
        )
    g["win_rate"] = g["won"] / (g["won"] + g["lost"]).replace(0, np.nan)
    return g


def sales_cycle(
    opps: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    reps: pd.DataFrame | None = None,
    status: str = WON,
) -> pd.DataFrame:
    """Sales cycle [days] = close_date - created_date of ``status`` deals: mean, median, p10, p90, count."""
    keys = _as_list(by)
    d = _with_rep_attributes(opps[opps["status"] == status], reps, keys)
    d = d[d["created_date"].notna() & d["close_date"].notna()]
    days = (d["close_date"] - d["created_date"]).dt.days.astype(float)
    frame = d.assign(cycle_days=days)
    funcs = {
        "mean_cycle_days": "mean",
        "median_cycle_days": "median",
        "p10_cycle_days": lambda s: s.quantile(0.1),
        "p90_cycle_days": lambda s: s.quantile(0.9),
        "deals": "count",
    }
    if keys:
        return frame.groupby(keys, observed=True, dropna=False)["cycle_days"].agg(**funcs)
    return frame["cycle_days"].agg(list(funcs.values())).set_axis(list(funcs)).to_frame("all").T


def revenue_per_rep(
    opps: pd.DataFrame,
    reps: pd.DataFrame,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> dict[str, float]:
    """Won revenue per rep [currency/rep] between ``start`` and ``end`` (close dates, inclusive).

    Returns the total, the mean and median over *active* reps (owning at least one opportunity in
    the data) and the mean over *all* reps in the reps table.
    """
    won = opps[opps["status"] == WON]
    if start is not None:
        won = won[won["close_date"] >= pd.Timestamp(start)]
    if end is not None:
        won = won[won["close_date"] <= pd.Timestamp(end)]
    active = pd.Index(opps["rep_id"].dropna().unique())
    per_rep = won.groupby("rep_id")["amount"].sum().reindex(active, fill_value=0.0)
    total = float(won["amount"].sum())
    return {
        "won_revenue": total,
        "revenue_per_rep_mean_active": float(per_rep.mean()) if len(per_rep) else float("nan"),
        "revenue_per_rep_median_active": float(per_rep.median()) if len(per_rep) else float("nan"),
        "revenue_per_rep_all": total / len(reps) if len(reps) else float("nan"),
        "active_reps": int(len(active)),
        "reps": int(len(reps)),
    }


def won_revenue_by_period(
    opps: pd.DataFrame, freq: str = "Q", by: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """Won revenue [currency] and deal count by close period (``freq`` "M" or "Q"), optionally by group."""
    keys = _as_list(by)
    won = opps[(opps["status"] == WON) & opps["close_date"].notna()]
    period = won["close_date"].dt.to_period(freq)
    g = won.assign(period=period).groupby(["period", *keys], observed=True)
    return g["amount"].agg(revenue="sum", deals="count")


def time_selling(activities: pd.DataFrame, by: str | Sequence[str] | None = "rep_id") -> pd.DataFrame:
    """Share of working time spent selling [0-1] = selling / (selling + admin + other) hours."""
    keys = _as_list(by)
    a = activities.assign(other_hours=activities["other_hours"].fillna(0.0))
    cols = ["selling_hours", "admin_hours", "other_hours"]
    g = a.groupby(keys, observed=True)[cols].sum() if keys else a[cols].sum().to_frame("all").T
    g["selling_share"] = g["selling_hours"] / g[cols].sum(axis=1).replace(0, np.nan)
    return g


def pipeline_coverage(open_pipeline: float, target: float, closed_won: float = 0.0) -> float:
    """Pipeline coverage [x] = open pipeline value / (target - closed won to date); inf when the gap is 0."""
    gap = target - closed_won
    return float("inf") if gap <= 0 else open_pipeline / gap


def forecast_accuracy(actual: Sequence[float], forecast: Sequence[float]) -> dict[str, float]:
    """Sales-ops forecast accuracy over periods.

    ``accuracy`` = mean over periods of 100 - |F - A| / A x 100 [%]; ``mape`` [%]; ``bias`` = mean
    (F - A) / A [%]; ``within_5pct`` and ``within_10pct`` = share of periods within +-5% / +-10% [0-1].
    """
    from salesops_models.forecast.metrics import mape, percent_bias, within_share

    m = mape(actual, forecast)
    return {
        "accuracy": 100.0 - m,
        "mape": m,
        "bias": percent_bias(actual, forecast),
        "within_5pct": within_share(actual, forecast, 0.05),
        "within_10pct": within_share(actual, forecast, 0.10),
    }


@dataclass
class KpiReport:
    """Headline KPIs and the per-rep / per-group tables behind them."""

    overall: dict[str, float]
    by_rep: pd.DataFrame
    by_manager: pd.DataFrame | None = None
    by_region: pd.DataFrame | None = None
    by_period: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return dict(self.overall)


def company_kpis(company: CompanyData, period_start: str | pd.Timestamp | None = None) -> KpiReport:
    """Every KPI for a company, overall and by rep, manager, region and quarter.

    ``period_start`` limits revenue per rep to closes on or after that date (default: the last 12
    months before ``company.as_of`` when the data spans more than a year, else everything).
    """
    opps, reps = company.opportunities, company.reps
    as_of = pd.Timestamp(company.as_of)
    first_close = opps["close_date"].min()
    if period_start is None and pd.notna(first_close) and first_close < as_of - pd.DateOffset(years=1):
        period_start = as_of - pd.DateOffset(years=1) + pd.Timedelta(days=1)
    notes = []
    wr = win_rate(opps)
    cyc = sales_cycle(opps)
    rpr = revenue_per_rep(opps, reps, start=period_start, end=as_of)
    open_value = float(opps.loc[opps["status"] == OPEN, "amount"].sum(skipna=True))
    if opps.loc[opps["status"] == OPEN, "amount"].isna().any():
        notes.append("some open deals have no amount; open pipeline value counts only those with one")
    overall: dict[str, float] = {
        "opportunities": float(len(opps)),
        "win_rate": float(wr["win_rate"].iloc[0]),
        "won": float(wr["won"].iloc[0]),
        "lost": float(wr["lost"].iloc[0]),
        "open": float((opps["status"] == OPEN).sum()),
        "median_cycle_days": float(cyc["median_cycle_days"].iloc[0]),
        "mean_cycle_days": float(cyc["mean_cycle_days"].iloc[0]),
        "revenue_per_rep": rpr["revenue_per_rep_mean_active"],
        "revenue_per_rep_all": rpr["revenue_per_rep_all"],
        "won_revenue": rpr["won_revenue"],
        "open_pipeline_value": open_value,
        "mean_won_deal": float(opps.loc[opps["status"] == WON, "amount"].mean()),
        "revenue_period_start": str(pd.Timestamp(period_start).date()) if period_start is not None else "all",
    }
    by_rep = win_rate(opps, "rep_id").join(
        sales_cycle(opps, "rep_id")[["median_cycle_days", "mean_cycle_days"]]
    )
    won = opps[opps["status"] == WON]
    if period_start is not None:
        won = won[won["close_date"] >= pd.Timestamp(period_start)]
    by_rep["won_revenue"] = won.groupby("rep_id")["amount"].sum()
    by_rep["won_revenue"] = by_rep["won_revenue"].fillna(0.0)
    if len(company.activities):
        ts = time_selling(company.activities)
        by_rep = by_rep.join(ts[["selling_share"]], how="left")
        overall["selling_time_share"] = float(
            time_selling(company.activities, by=None)["selling_share"].iloc[0]
        )
    by_manager = by_region = None
    if reps["manager"].notna().any():
        by_manager = win_rate(opps, "manager", reps)
    if reps["region"].notna().any():
        by_region = win_rate(opps, "region", reps)
    by_period = won_revenue_by_period(opps, "Q")
    return KpiReport(overall, by_rep, by_manager, by_region, by_period, notes)
