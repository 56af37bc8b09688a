"""Stage ``forecast``: plan-year bookings forecast at every hierarchy level, reconciled, with a backtest.

Reads ``bookings`` (and ``reps`` for each rep's region). Writes ``forecast`` (level, series, month,
model, mean, q05 ... q95, plus fitted_model, reconciliation, clipped) for the plan year's 12 months,
``forecast_backtest`` (rolling-origin forecasts against actuals at every level) and
``forecast_backtest_accuracy`` (metrics per level), and the fan chart ``figures/forecast_fan_chart.png``.

Metric units: ``forecast_backtest_mape`` and ``forecast_backtest_smape`` are shares (0.12 = 12%)
at the company level (sMAPE on the 0-2 scale: 200|y-f|/(|y|+|f|) / 100); coverage and
within-share metrics are shares [0-1]; totals in currency.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.errors import DataValidationError
from salesops_models.forecast.blend import blend_with_pipeline
from salesops_models.forecast.config import ForecastConfig
from salesops_models.forecast.hierarchy import build_hierarchy, coherence_error, forecast_hierarchy
from salesops_models.forecast.metrics import accuracy_by_series
from salesops_models.forecast.schema import QUANTILE_LEVELS, quantile_columns
from salesops_models.workflow.context import StageContext

log = logging.getLogger(__name__)

KEY_OF_LEVEL = {"region": "region", "segment": "segment", "rep": "rep_id"}
QCOLS = quantile_columns(QUANTILE_LEVELS)


def monthly_panel(
    bookings: pd.DataFrame, reps: pd.DataFrame, levels: list[str], as_of: pd.Timestamp, min_months: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bottom-level monthly bookings (complete months x bottom series) and the bottom key table.

    A rep's region is taken from the reps table (today's alignment), so that a rep is one series.
    Months without bookings are 0; the month containing ``as_of`` is dropped unless ``as_of`` is its
    last day (an incomplete month would look like a collapse).
    """
    keys = [KEY_OF_LEVEL[lv] for lv in levels[1:]]
    if bookings is None or len(bookings) == 0:
        raise DataValidationError(
            "bookings", ["the company has no bookings table; the forecast needs monthly bookings history."]
        )
    df = bookings.copy()
    df["month"] = pd.to_datetime(df["month"]).dt.to_period("M")
    if "rep_id" in keys and "region" in keys and "region" in reps:
        region_of = reps.set_index("rep_id")["region"].astype("string")
        df["region"] = df["rep_id"].map(region_of).fillna(df["region"].astype("string"))
    for k in keys:
        if k not in df:
            raise DataValidationError("bookings", [f"column '{k}' is needed for the '{k}' forecast level."])
        df[k] = df[k].astype("string").fillna("unknown")
    last = pd.Timestamp(as_of).to_period("M")
    if pd.Timestamp(as_of).normalize() < last.end_time.normalize():
        last = last - 1
    first = df["month"].min()
    months = pd.period_range(first, last, freq="M")
    if len(months) < min_months:
        raise DataValidationError(
            "bookings",
            [
                f"{len(months)} complete month(s) of history ({first} to {last}); the forecast needs at least "
                f"{min_months}. Lower forecast.min_history_months or supply more history."
            ],
        )
    df = df[df["month"] <= last]
    panel = df.pivot_table(index="month", columns=keys, values="amount", aggfunc="sum", fill_value=0.0)
    if "rep_id" in keys and "rep_id" in reps:
        # reps without bookings yet are still forecast (as zeros) so that every rep has a row
        extra = [r for r in reps["rep_id"].astype(str) if r not in set(df["rep_id"].astype(str))]
        for rep in extra:
            row = reps.loc[reps["rep_id"].astype(str) == rep].iloc[0]
            col = tuple(str(row.get(k, "unknown")) if k != "rep_id" else rep for k in keys)
            panel[col if len(keys) > 1 else col[0]] = 0.0
    panel = panel.reindex(months, fill_value=0.0)
    cols = panel.columns.to_frame(index=False) if len(keys) > 1 else pd.DataFrame({keys[0]: panel.columns})
    cols = cols.astype(str).reset_index(drop=True)
    # columns are named by the last key when it is unique (rep ids), else by the key path
    panel.columns = (
        cols[keys[-1]].tolist() if cols[keys[-1]].is_unique else ["/".join(t) for t in cols.values]
    )
    if not cols[keys[-1]].is_unique:
        cols[keys[-1]] = list(panel.columns)
    return panel.astype(float), cols


def _levels_spec(levels: list[str]) -> tuple[list[tuple[str, ...]], list[str]]:
    keys = [KEY_OF_LEVEL[lv] for lv in levels[1:]]
    spec = [tuple(keys[:i]) for i in range(len(keys) + 1)]
    return spec, list(levels)


def _table(long: pd.DataFrame, model: str, method: str, fits: pd.DataFrame) -> pd.DataFrame:
    out = long.copy()
    out["month"] = out["period"].map(lambda p: p.to_timestamp())
    out = out.drop(columns=["period", "method"], errors="ignore")
    fitted = fits.set_index(["level", "series"])["model"]
    out["fitted_model"] = [fitted.get((lv, s), "") for lv, s in zip(out["level"], out["series"], strict=True)]
    out["model"] = model
    out["reconciliation"] = method
    return out[["level", "series", "month", "model", "mean", *QCOLS, "fitted_model", "reconciliation"]]


def _blend(
    table: pd.DataFrame, ctx: StageContext, cfg: ForecastConfig, top: str
) -> tuple[pd.DataFrame, bool]:
    """Blend the company level with the pipeline projection and rescale the levels below (coherent)."""
    if not cfg.pipeline_blend.enabled or not ctx.has_table("pipeline_by_month"):
        return table, False
    pipe = ctx.read_table("pipeline_by_month")
    if not {"period", "mean"} <= set(pipe.columns):
        log.warning("pipeline_by_month lacks period/mean columns; no blend")
        return table, False
    pipe = pipe.assign(month=pd.to_datetime(pipe["period"].astype(str)).dt.to_period("M").dt.to_timestamp())
    months = sorted(table["month"].unique())[: cfg.pipeline_blend.months]
    pipe = pipe[pipe["month"].isin(months)].assign(series=top)[["series", "month", "mean"]]
    company = table[table["level"] == "company"]
    blended = blend_with_pipeline(company, pipe, cfg.pipeline_blend.weight, keys=("series", "month"))
    ratio = (
        blended.set_index("month")["mean"] / company.set_index("month")["mean"].replace(0, np.nan)
    ).fillna(1.0)
    out = table.copy()
    r = out["month"].map(ratio).fillna(1.0).to_numpy()
    out[["mean", *QCOLS]] = out[["mean", *QCOLS]].to_numpy() * r[:, None]
    return out, bool((r != 1.0).any())


def _backtest(
    panel: pd.DataFrame, hierarchy: Any, cfg: ForecastConfig, method: str, model: Any, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(panel)
    h = min(cfg.backtest_horizon, max(n // 3, 1))
    origins = [n - h - (cfg.backtest_folds - 1 - k) * cfg.backtest_step for k in range(cfg.backtest_folds)]
    origins = [t for t in origins if t >= max(cfg.season_length, 6)]
    rows, acc = [], []
    all_hist = hierarchy.aggregate(panel.to_numpy(float))
    for t in origins:
        train = panel.iloc[:t]
        res = forecast_hierarchy(
            train,
            hierarchy,
            h,
            model=model,
            season_length=cfg.season_length,
            methods=[] if method == "none" else [method],
            nonnegative=cfg.nonnegative,
            n_jobs=cfg.n_jobs,
            seed=seed,
        )
        rec = res.reconciled[method] if method != "none" else res.base
        actual = pd.DataFrame(all_hist[t : t + h], index=panel.index[t : t + h])
        node_pos = {
            (lv, s): i
            for i, (lv, s) in enumerate(zip(hierarchy.nodes["level"], hierarchy.nodes["series"], strict=True))
        }
        rec = rec.copy()
        rec["y"] = [
            actual.loc[p, node_pos[(lv, s)]]
            for lv, s, p in zip(rec["level"], rec["series"], rec["period"], strict=True)
        ]
        rec["origin"] = str(panel.index[t - 1])
        rec["step"] = rec.groupby(["level", "series"]).cumcount() + 1
        rec["node"] = rec["level"] + "|" + rec["series"]
        hist = {f"{lv}|{s}": all_hist[:t, i] for (lv, s), i in node_pos.items()}
        per = accuracy_by_series(rec, hist, cfg.season_length, series_col="node")
        per["origin"] = str(panel.index[t - 1])
        acc.append(per)
        rows.append(rec.drop(columns=["node"]))
    if not rows:
        return pd.DataFrame(), pd.DataFrame()
    bt = pd.concat(rows, ignore_index=True)
    bt["month"] = bt["period"].map(lambda p: p.to_timestamp())
    bt = bt.drop(columns=["period", "method"], errors="ignore")
    accuracy = pd.concat(acc, ignore_index=True)
    accuracy[["level", "series"]] = accuracy["node"].str.split("|", n=1, expand=True)
    return bt, accuracy.drop(columns=["node"])


def _fan_chart(panel_total: pd.Series, table: pd.DataFrame, path: Any, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comp = table[table["level"] == "company"].sort_values("month")
    regions = table[table["level"] == "region"]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    hist_x = panel_total.index.to_timestamp()
    ax.plot(hist_x, panel_total.to_numpy() / 1e6, color="0.25", lw=1.4, label="bookings (history)")
    x = comp["month"]
    ax.fill_between(
        x, comp["q05"] / 1e6, comp["q95"] / 1e6, color="tab:blue", alpha=0.18, label="90% interval"
    )
    ax.fill_between(
        x, comp["q25"] / 1e6, comp["q75"] / 1e6, color="tab:blue", alpha=0.35, label="50% interval"
    )
    ax.plot(x, comp["mean"] / 1e6, color="tab:blue", lw=1.8, label="forecast (mean)")
    if len(regions):
        for i, (_, g) in enumerate(regions.groupby("series")):
            g = g.sort_values("month")
            label = "regions (mean)" if i == 0 else None
            ax.plot(g["month"], g["mean"] / 1e6, lw=0.8, alpha=0.6, ls="--", label=label)
    ax.set_ylabel("bookings [million / month]")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(ctx: StageContext) -> dict[str, Any]:
    """Forecast the plan year at every level, reconcile, backtest, chart; return headline metrics."""
    t0 = time.perf_counter()
    cfg: ForecastConfig = ctx.scenario.forecast
    company = ctx.company
    plan_year = int(ctx.scenario.plan_year)
    seed = int(ctx.seed_sequence.generate_state(1)[0])
    panel, keys = monthly_panel(
        company.bookings, company.reps, cfg.levels, company.as_of, cfg.min_history_months
    )
    last = panel.index[-1]
    plan_start = pd.Period(f"{plan_year}-01", freq="M")
    horizon = (plan_start.ordinal + 11) - last.ordinal
    if horizon < 12:
        raise DataValidationError(
            "bookings",
            [
                f"history runs to {last}, inside or past plan year {plan_year}; set the scenario's plan_year after "
                "the last complete month of bookings."
            ],
        )
    spec, names = _levels_spec(cfg.levels)
    try:
        hierarchy = build_hierarchy(keys, spec, names, label="last", top_label="company")
    except DataValidationError:  # e.g. segment names repeat across regions: label by path
        hierarchy = build_hierarchy(keys, spec, names, label="path", top_label="company")
    model: Any = cfg.model
    if cfg.company_model is not None:
        model = {lv: (cfg.company_model if lv in ("company", "region") else cfg.model) for lv in names}
    method = cfg.reconciliation
    fc = forecast_hierarchy(
        panel,
        hierarchy,
        horizon,
        model=model,
        season_length=cfg.season_length,
        methods=[] if method == "none" else [method],
        nonnegative=cfg.nonnegative,
        n_jobs=cfg.n_jobs,
        seed=seed,
    )
    long = fc.base if method == "none" else fc.reconciled[method]
    coherence = coherence_error(hierarchy, long)
    long = long[long["period"] >= plan_start]
    table = _table(
        long, cfg.model if cfg.company_model is None else f"{cfg.company_model}/{cfg.model}", method, fc.fits
    )
    table, blended = _blend(table, ctx, cfg, "company")
    table["clipped"] = bool(fc.clipped.get(method, False)) or bool(fc.fits["clipped"].any())
    ctx.write_table("forecast", table.reset_index(drop=True))
    fits = fc.fits.copy()
    ctx.write_table("forecast_models", fits)

    metrics: dict[str, Any] = {}
    if cfg.backtest_folds > 0:
        bt, acc = _backtest(panel, hierarchy, cfg, method, model, seed)
        if len(bt):
            ctx.write_table("forecast_backtest", bt)
            by_level = (
                acc.drop(columns=["series", "origin"]).groupby("level", sort=False).mean(numeric_only=True)
            )
            by_level = by_level.reset_index()
            ctx.write_table("forecast_backtest_accuracy", by_level)
            top = by_level.set_index("level").loc["company"]
            metrics.update(
                {
                    "forecast_backtest_mape": float(top["mape"]) / 100.0,
                    "forecast_backtest_smape": float(top["smape"]) / 100.0,
                    "forecast_backtest_mase": float(top["mase"]),
                    "forecast_backtest_bias": float(top["percent_bias"]) / 100.0,
                    "forecast_backtest_within_5pct": float(top["within_5pct"]),
                    "forecast_backtest_within_10pct": float(top["within_10pct"]),
                    "forecast_coverage90": float(top.get("coverage90", np.nan)),
                    "forecast_coverage80": float(top.get("coverage80", np.nan)),
                    "forecast_backtest_folds": int(acc["origin"].nunique()),
                }
            )
            for lv in names[1:]:
                if lv in by_level["level"].values:
                    row = by_level.set_index("level").loc[lv]
                    metrics[f"forecast_backtest_mase_{lv}"] = float(row["mase"])
                    metrics[f"forecast_coverage90_{lv}"] = float(row.get("coverage90", np.nan))
    metrics.setdefault("forecast_backtest_mape", None)
    metrics.setdefault("forecast_backtest_smape", None)
    metrics.setdefault("forecast_coverage90", None)

    comp = table[table["level"] == "company"]
    total = float(comp["mean"].sum())
    _fan_chart(
        panel.sum(axis=1),
        table,
        ctx.figure_path("forecast_fan_chart"),
        f"Bookings forecast {plan_year}: {cfg.model}, {method} reconciliation",
    )
    metrics.update(
        {
            "forecast_plan_year_total": total,
            "forecast_model": cfg.model,
            "forecast_reconciliation": method,
            "forecast_series": int(hierarchy.n),
            "forecast_fallbacks": int((fc.fits["fallbacks"] > 0).sum()),
            "forecast_clipped": bool(table["clipped"].any()),
            "forecast_blended": blended,
            "forecast_coherence_error": coherence,
            "forecast_history_months": len(panel),
            "forecast_seconds": time.perf_counter() - t0,
        }
    )
    log.info(
        "forecast: plan-year total %.0f, %d series, %.1f s", total, hierarchy.n, metrics["forecast_seconds"]
    )
    return metrics
