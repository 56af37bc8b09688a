"""Rolling-cutoff backtests of the plan numbers' bands: how far to trust them.

For every cutoff the company is cut to what was known on that day
(:func:`~salesops_models.backtest.snapshot.company_at`), every model is calibrated on that alone and
forecasts the *horizon*: the ``H`` calendar months after the cutoff, ``[cutoff + 1 day, cutoff + 1 day
+ H months)`` (with month-end cutoffs, exactly the next ``H`` calendar months). What happened in the
horizon is then scored against the forecast:

===============  =====================================================================================
model            forecast and actual
===============  =====================================================================================
pipeline         company won revenue of the horizon (the pipeline Monte Carlo)
forecast         company bookings of each month of the horizon (the forecast package's public API)
rep_attainment   each rep's horizon bookings over a quota set by the quota package (equal chance)
commission       the commission (variable pay) of the plan over those quotas (compensation package)
===============  =====================================================================================

Each model has a naive baseline scored in the same run: the pipeline, attainment and commission
baselines take the last period (the ``H`` months before the cutoff; for ``H >= 12`` times the
growth of the last 12 months over the 12 before) as their centre and the ratios of one period to the
period before in history as their spread; the forecast's baseline is the forecast package's naive
model. Scores: coverage of P10-P90 and P5-P95, the PIT histogram, CRPS and pinball loss
(:mod:`.scoring`), and the CRPS skill :math:`1 - \\mathrm{CRPS}/\\mathrm{CRPS}_{naive}`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from salesops_models.backtest.pipeline import HorizonSimulation, simulate_horizon
from salesops_models.backtest.scoring import (
    LEVELS,
    naive_ratio_samples,
    score_quantiles,
    score_samples,
    summarise,
)
from salesops_models.backtest.snapshot import company_at, won_in
from salesops_models.data.company import CompanyData
from salesops_models.data.schema import WON
from salesops_models.errors import DataValidationError, SalesopsError
from salesops_models.pipeline.config import PipelineConfig

log = logging.getLogger(__name__)

MODELS = ("pipeline", "forecast", "rep_attainment", "commission")
MIN_WON_DEALS = 30  # won deals a cutoff's history needs before anything is calibrated on it
MIN_HISTORY_DAYS = 56  # days of observed history before a cutoff
MIN_FORECAST_MONTHS = 4  # whole months a time-series forecast needs


class BacktestError(SalesopsError, ValueError):
    """A backtest cannot run as asked (a cutoff outside the data, too little history...)."""


@dataclass(frozen=True)
class BacktestSettings:
    """What a backtest runs.

    Attributes
    ----------
    cutoffs
        Last days of known history, increasing.
    horizon_months
        Calendar months forecast after each cutoff [months].
    models
        Models to score (subset of :data:`MODELS`).
    trials
        Monte Carlo trials per cutoff.
    seed
        Master seed; cutoff ``k`` uses ``SeedSequence(seed, spawn_key=(k,))``.
    pipeline
        Settings of the pipeline model (a scenario's ``pipeline:`` section).
    plan
        Commission plan (shipped name or YAML path).
    forecast_model
        Forecast family for the forecast model.
    label
        Name of the run (used in the artefact folder's name).
    """

    cutoffs: tuple[pd.Timestamp, ...]
    horizon_months: int = 3
    models: tuple[str, ...] = MODELS
    trials: int = 1000
    seed: int = 2017
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    plan: str = "ae_standard"
    forecast_model: str = "theta"
    label: str = "backtest"


def horizon_of(cutoff: pd.Timestamp, months: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The horizon of a cutoff: ``[cutoff + 1 day, cutoff + 1 day + months)``."""
    start = pd.Timestamp(cutoff).normalize() + pd.Timedelta(days=1)
    return start, start + pd.DateOffset(months=months)


def default_cutoffs(as_of: pd.Timestamp, horizon_months: int, n: int = 6) -> tuple[pd.Timestamp, ...]:
    """The last ``n`` month ends whose horizon ends on or before ``as_of`` (monthly rolling cutoffs)."""
    last_start = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1) - pd.DateOffset(months=horizon_months)
    last = (last_start - pd.Timedelta(days=1)).normalize()
    if not last.is_month_end:
        last = (last - pd.offsets.MonthEnd(1)).normalize()
    ends = pd.date_range(end=last, periods=n, freq="ME")
    return tuple(pd.Timestamp(d) for d in ends)


def check_cutoffs(company: CompanyData, cutoffs: tuple[pd.Timestamp, ...], horizon_months: int) -> None:
    """Raise :class:`BacktestError` naming the cutoff and the fix when a cutoff cannot be scored."""
    if not cutoffs:
        raise BacktestError("backtest: no cutoffs given; pass --cutoffs YYYY-MM-DD[,YYYY-MM-DD...].")
    as_of = pd.Timestamp(company.as_of)
    opp = company.opportunities
    first_close = opp["close_date"].min()
    first = first_close if pd.notna(first_close) else opp["created_date"].min()
    latest = (
        as_of + pd.Timedelta(days=1) - pd.DateOffset(months=horizon_months) - pd.Timedelta(days=1)
    ).date()
    for c in cutoffs:
        _, end = horizon_of(c, horizon_months)
        if end - pd.Timedelta(days=1) > as_of:
            raise BacktestError(
                f"backtest: cutoff {c.date()} is outside the data: its {horizon_months}-month horizon ends "
                f"{(end - pd.Timedelta(days=1)).date()}, after the export's snapshot date {as_of.date()}, so what "
                f"happened is not known. Fix: use cutoffs on or before {latest}, or a shorter --horizon-months."
            )
        if pd.isna(first) or c < first:
            raise BacktestError(
                f"backtest: cutoff {c.date()} is outside the data: the history starts "
                f"{'nowhere' if pd.isna(first) else pd.Timestamp(first).date()}. Fix: use later cutoffs."
            )
        won = opp[(opp["status"] == WON) & (opp["close_date"] <= c)]
        days = (c - pd.Timestamp(first)).days
        if len(won) < MIN_WON_DEALS or days < MIN_HISTORY_DAYS:
            raise BacktestError(
                f"backtest: cutoff {c.date()} has too little history: {len(won)} won deals over {days} days "
                f"before it (at least {MIN_WON_DEALS} won deals and {MIN_HISTORY_DAYS} days are needed to "
                "calibrate). Fix: use later cutoffs."
            )


# --------------------------------------------------------------------------------------------
# naive baselines
# --------------------------------------------------------------------------------------------


def _naive_center_and_ratios(
    opp: pd.DataFrame, cutoff: pd.Timestamp, months: int, observed_from: pd.Timestamp, by: str | None = None
) -> tuple[float | pd.Series, np.ndarray]:
    """Last period (prorated when the history is shorter; times the last year's growth for
    ``months >= 12`` when two years are known) and the ratios of consecutive periods in history."""
    start, _ = horizon_of(cutoff, months)
    prev = start - pd.DateOffset(months=months)
    lo = max(prev, observed_from)
    days = (start - lo).days
    full = (start - prev).days
    last = won_in(opp, lo, start, by)
    scale = full / days if days > 0 else np.nan
    center = last * scale
    if months >= 12 and prev - pd.DateOffset(months=12) >= observed_from:
        # last year x growth: the company's growth of the last 12 months over the 12 before
        a, b = (
            won_in(opp, start - pd.DateOffset(months=12), start),
            won_in(opp, start - pd.DateOffset(months=24), start - pd.DateOffset(months=12)),
        )
        if b > 0:
            center = center * (a / b)
    # ratios: periods ending at month ends, each against the one just before
    ratios: list[np.ndarray] = []
    end = start
    while end - pd.DateOffset(months=2 * months) >= observed_from:
        cur = won_in(opp, end - pd.DateOffset(months=months), end, by)
        old = won_in(opp, end - pd.DateOffset(months=2 * months), end - pd.DateOffset(months=months), by)
        if by is None:
            if old > 0:
                ratios.append(np.array([cur / old]))
        else:
            both = pd.concat([cur, old], axis=1, keys=["cur", "old"]).fillna(0.0)
            both = both[both["old"] > 0]
            ratios.append((both["cur"] / both["old"]).to_numpy(float))
        end = end - pd.DateOffset(months=1)
    return center, np.concatenate(ratios) if ratios else np.zeros(0)


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


@dataclass
class BacktestReport:
    """Scores of every model and its naive baseline at every cutoff.

    Attributes
    ----------
    scores
        One row per model, baseline (``naive`` true/false), cutoff and target (``company``, a month, or a
        rep): ``actual, mean, q05..q95, pit, crps, pinball, inside_p10_p90, inside_p05_p95``.
    summary
        Per model: the scores summarised for the model and its naive baseline, and the CRPS skill; run
        settings, warnings and skipped parts.
    """

    scores: pd.DataFrame
    summary: dict[str, Any]

    def write(self, root: str | Path, name: str | None = None) -> Path:
        """Write the artefact folder ``root/<name>`` (new; default ``<label>-<timestamp>``): ``scores.parquet``,
        ``model_summary.parquet``, ``summary.json`` and ``coverage.png``; files are written atomically."""
        from salesops_models.backtest.charts import plot_coverage

        root = Path(root)
        stamp = self.summary.get("created", "").replace(":", "").replace("-", "")[:15]
        folder = root / (name or f"{self.summary.get('label', 'backtest')}-{stamp}")
        k = 1
        base = folder
        while folder.exists():
            k += 1
            folder = base.with_name(f"{base.name}-{k}")
        folder.mkdir(parents=True)
        _atomic(folder / "scores.parquet", lambda p: self.scores.to_parquet(p, index=False))
        _atomic(
            folder / "model_summary.parquet", lambda p: model_table(self.summary).to_parquet(p, index=False)
        )
        _atomic(folder / "summary.json", lambda p: Path(p).write_text(json.dumps(self.summary, indent=2)))
        fig = plot_coverage(self.summary)
        _atomic(folder / "coverage.png", lambda p: fig.savefig(p, dpi=110, format="png"))
        return folder


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def model_table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per model and baseline: n, coverage P10-P90 and P5-P95, CRPS, pinball, skill."""
    rows = []
    for model, s in summary.get("models", {}).items():
        for kind in ("model", "naive"):
            part = s.get(kind, {})
            if not part.get("n"):
                continue
            rows.append(
                {
                    "model": model,
                    "baseline": kind == "naive",
                    "n": part["n"],
                    "coverage_p10_p90": part["coverage_p10_p90"],
                    "coverage_p05_p95": part["coverage_p05_p95"],
                    "crps_mean": part["crps_mean"],
                    "pinball_mean": part["pinball_mean"],
                    "crps_skill": s.get("crps_skill") if kind == "model" else None,
                }
            )
    return pd.DataFrame(rows)


def run_backtest(company: CompanyData, settings: BacktestSettings) -> BacktestReport:
    """Score the models' bands at every cutoff of ``settings`` (see the module docstring).

    Raises
    ------
    BacktestError
        A cutoff outside the data, or with too little history before it.
    """
    unknown = sorted(set(settings.models) - set(MODELS))
    if unknown:
        raise BacktestError(f"backtest: unknown model(s) {unknown}; choose from {list(MODELS)}.")
    cutoffs = tuple(sorted(pd.Timestamp(c).normalize() for c in settings.cutoffs))
    check_cutoffs(company, cutoffs, settings.horizon_months)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    skipped: list[str] = []
    spread: list[dict[str, Any]] = []
    commission: list[dict[str, Any]] = []
    calibrations: list[dict[str, Any]] = []
    opp_all = company.opportunities
    for k, cutoff in enumerate(cutoffs):
        start, end = horizon_of(cutoff, settings.horizon_months)
        known = company_at(company, cutoff)
        observed = _observed_start(known)
        base = {
            "cutoff": str(cutoff.date()),
            "horizon_start": str(start.date()),
            "horizon_end": str(end.date()),
        }
        seed = np.random.SeedSequence(settings.seed, spawn_key=(k,))
        need_sim = any(m in settings.models for m in ("pipeline", "rep_attainment", "commission"))
        sim: HorizonSimulation | None = None
        if need_sim:
            sim = simulate_horizon(known, start, end, settings.pipeline, trials=settings.trials, seed=seed)
            notes += [f"{cutoff.date()}: {w}" for w in sim.warnings]
            calibrations.append({"cutoff": str(cutoff.date()), **_plain(sim.calibration_summary)})
        if "pipeline" in settings.models and sim is not None:
            actual = float(won_in(opp_all, start, end))
            rows.append(
                {
                    **base,
                    "model": "pipeline",
                    "naive": False,
                    "target": "company",
                    **score_samples(sim.total, actual),
                }
            )
            center, ratios = _naive_center_and_ratios(
                known.opportunities, cutoff, settings.horizon_months, observed
            )
            rows.append(
                {
                    **base,
                    "model": "pipeline",
                    "naive": True,
                    "target": "company",
                    **score_samples(naive_ratio_samples(float(center), ratios), actual),
                }
            )
        if "forecast" in settings.models:
            out, why = _forecast_rows(known, opp_all, cutoff, start, end, settings, observed)
            if why:
                skipped.append(f"forecast at {cutoff.date()}: {why}")
            rows += [{**base, **r} for r in out]
        if sim is not None and ("rep_attainment" in settings.models or "commission" in settings.models):
            r_rows, s_row, c_rows, c_row = _plan_rows(
                known, opp_all, cutoff, start, end, sim, settings, observed, seed
            )
            if "rep_attainment" in settings.models:
                rows += [{**base, **r} for r in r_rows]
                spread.append({**base, **s_row})
            if "commission" in settings.models:
                rows += [{**base, **r} for r in c_rows]
                commission.append({**base, **c_row})
        log.info("backtest: cutoff %s scored", cutoff.date())
    scores = pd.DataFrame(rows)
    summary = _summary(scores, settings, company, cutoffs, notes, skipped, spread, commission, calibrations)
    return BacktestReport(scores, summary)


def _observed_start(company: CompanyData) -> pd.Timestamp:
    """First day of usable history: the earliest close (exports before it are left-truncated)."""
    opp = company.opportunities
    first = opp["close_date"].min()
    return pd.Timestamp(first if pd.notna(first) else opp["created_date"].min()).normalize()


def _forecast_rows(
    known: CompanyData,
    opp_all: pd.DataFrame,
    cutoff: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    settings: BacktestSettings,
    observed: pd.Timestamp,
) -> tuple[list[dict[str, Any]], str]:
    """The forecast package's model and naive on the company's monthly bookings, scored per month."""
    from salesops_models.forecast import forecast_series

    if not (cutoff + pd.Timedelta(days=1)).is_month_start:
        return [], "the cutoff is not a month end (the forecasters work on whole months)"
    first = observed.to_period("M") if observed.is_month_start else observed.to_period("M") + 1
    months = pd.period_range(first, cutoff.to_period("M"), freq="M")
    if len(months) < MIN_FORECAST_MONTHS:
        return (
            [],
            f"{len(months)} whole month(s) of bookings; a time-series forecast needs {MIN_FORECAST_MONTHS}",
        )
    won = known.opportunities[known.opportunities["status"] == WON]
    y = won.groupby(won["close_date"].dt.to_period("M"))["amount"].sum().reindex(months, fill_value=0.0)
    h = settings.horizon_months
    out = []
    for naive, model in ((False, settings.forecast_model), (True, "naive")):
        fc = forecast_series(
            y, h, model=model, season_length=12, nonnegative=True, seed=settings.seed
        ).forecast
        for m in range(h):
            lo = (start + pd.DateOffset(months=m)).normalize()
            hi = lo + pd.DateOffset(months=1)
            actual = float(won_in(opp_all, lo, hi))
            q = fc.iloc[m][[f"q{int(round(100 * p)):02d}" for p in LEVELS]].to_numpy(float)
            out.append(
                {
                    "model": "forecast",
                    "naive": naive,
                    "target": str(lo.to_period("M")),
                    **score_quantiles(float(fc["mean"].iloc[m]), q, actual),
                }
            )
    return out, ""


def _plan_rows(
    known: CompanyData,
    opp_all: pd.DataFrame,
    cutoff: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    sim: HorizonSimulation,
    settings: BacktestSettings,
    observed: pd.Timestamp,
    seed: np.random.SeedSequence,
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Quotas from the simulated rep bookings (quota package, equal chance), attainment and commission
    (compensation package) against the realised rep bookings, and their naive baselines."""
    from salesops_models.compensation import AttainmentSamples, load_plan, simulate_cost
    from salesops_models.quota import SampleBookings, quota_by_equal_attainment_probability

    B = sim.rep_bookings
    carry = B.mean(axis=0) > 0  # reps the model expects to book anything carry a quota
    reps = sim.rep_ids[carry]
    B = B[:, carry]
    samples = pd.DataFrame(
        {
            "trial": np.repeat(np.arange(B.shape[0]), B.shape[1]),
            "rep_id": np.tile(reps, B.shape[0]),
            "bookings": B.ravel(),
        }
    )
    dist = SampleBookings(samples)
    target = float(B.sum(axis=1).mean())  # the planner's target: the simulation's expected bookings
    basis = pd.DataFrame(index=pd.Index(reps, name="rep_id"))
    quota = (
        quota_by_equal_attainment_probability(basis, dist, target)
        .quotas["quota"]
        .reindex(reps)
        .to_numpy(float)
    )
    ok = quota > 0
    reps, B, quota = reps[ok], B[:, ok], quota[ok]
    realised = won_in(opp_all, start, end, "rep_id").reindex(reps, fill_value=0.0).to_numpy(float)
    A = B / quota[None, :]
    a_real = realised / quota
    # naive: each rep's last period, spread by the rep-level ratios of consecutive periods
    center, ratios = _naive_center_and_ratios(
        known.opportunities, cutoff, settings.horizon_months, observed, "rep_id"
    )
    center = pd.Series(center).reindex(reps, fill_value=0.0).to_numpy(float)
    rng = np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 7)))
    r = ratios[np.isfinite(ratios) & (ratios >= 0)]
    naive_b = center[None, :] * (rng.choice(r, size=(B.shape[0], reps.size)) if r.size >= 3 else 1.0)
    naive_b = np.broadcast_to(naive_b, B.shape)
    rep_rows = []
    for j, rep in enumerate(reps):
        rep_rows.append(
            {"model": "rep_attainment", "naive": False, "target": rep, **score_samples(A[:, j], a_real[j])}
        )
        rep_rows.append(
            {
                "model": "rep_attainment",
                "naive": True,
                "target": rep,
                **score_samples(naive_b[:, j] / quota[j], a_real[j]),
            }
        )
    sim_spread = float(np.subtract(*np.quantile(A.ravel(), [0.9, 0.1])))
    real_spread = float(np.subtract(*np.quantile(a_real, [0.9, 0.1])))
    spread_row = {
        "reps": int(reps.size),
        "simulated_p10": float(np.quantile(A.ravel(), 0.1)),
        "simulated_p90": float(np.quantile(A.ravel(), 0.9)),
        "realised_p10": float(np.quantile(a_real, 0.1)),
        "realised_p90": float(np.quantile(a_real, 0.9)),
        "spread_ratio": sim_spread / real_spread if real_spread > 0 else float("nan"),
        "p_attain_simulated": float(np.mean(A >= 1.0)),
        "share_at_quota_realised": float(np.mean(a_real >= 1.0)),
    }
    plan = load_plan(settings.plan)
    rep_list = [str(x) for x in reps]
    cost = simulate_cost(plan, AttainmentSamples(rep_list, quota, B.T, "pipeline")).cost_samples[
        "variable_cost"
    ]
    real_cost = float(
        simulate_cost(plan, AttainmentSamples(rep_list, quota, realised[:, None], "realised"))
        .cost_samples["variable_cost"]
        .iloc[0]
    )
    naive_cost = simulate_cost(
        plan, AttainmentSamples(rep_list, quota, np.ascontiguousarray(naive_b.T), "naive")
    )
    c_rows = [
        {
            "model": "commission",
            "naive": False,
            "target": "company",
            **score_samples(cost.to_numpy(), real_cost),
        },
        {
            "model": "commission",
            "naive": True,
            "target": "company",
            **score_samples(naive_cost.cost_samples["variable_cost"].to_numpy(), real_cost),
        },
    ]
    q10, q50, q90 = np.quantile(cost.to_numpy(), [0.1, 0.5, 0.9])
    c_row = {
        "plan": plan.name,
        "realised": real_cost,
        "simulated_p10": float(q10),
        "simulated_p50": float(q50),
        "simulated_p90": float(q90),
        "inside_p10_p90": bool(q10 <= real_cost <= q90),
    }
    return rep_rows, spread_row, c_rows, c_row


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy (numpy scalars to Python, non-finite floats to None)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            v = None
        out[k] = v
    return out


def _summary(
    scores: pd.DataFrame,
    settings: BacktestSettings,
    company: CompanyData,
    cutoffs: tuple[pd.Timestamp, ...],
    notes: list[str],
    skipped: list[str],
    spread: list[dict[str, Any]],
    commission: list[dict[str, Any]],
    calibrations: list[dict[str, Any]],
) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for m in settings.models:
        part = scores[scores["model"] == m] if len(scores) else scores
        if part.empty:
            continue
        s_model = summarise(part[~part["naive"]])
        s_naive = summarise(part[part["naive"]])
        skill = (
            1.0 - s_model["crps_mean"] / s_naive["crps_mean"]
            if s_model.get("n") and s_naive.get("n") and s_naive["crps_mean"] > 0
            else None
        )
        models[m] = {"model": s_model, "naive": s_naive, "crps_skill": skill}
    ratios = [r["spread_ratio"] for r in spread if np.isfinite(r["spread_ratio"])]
    return {
        "label": settings.label,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": company.source or company.name,
        "as_of": str(pd.Timestamp(company.as_of).date()),
        "horizon_months": settings.horizon_months,
        "horizon_definition": "the calendar months after each cutoff: [cutoff + 1 day, cutoff + 1 day + "
        f"{settings.horizon_months} months)",
        "cutoffs": [str(c.date()) for c in cutoffs],
        "trials": settings.trials,
        "seed": settings.seed,
        "pipeline_settings": settings.pipeline.model_dump(mode="json"),
        "plan": settings.plan,
        "forecast_model": settings.forecast_model,
        "quota_method": "equal_chance (target: the simulation's expected bookings)",
        "models": models,
        "rep_attainment_spread": spread,
        "rep_attainment_spread_ratio_mean": float(np.mean(ratios)) if ratios else None,
        "commission": commission,
        "calibration": calibrations,
        "warnings": notes,
        "skipped": skipped,
    }


def load_latest_backtest(root: str | Path = "results/backtests") -> tuple[dict[str, Any], pd.DataFrame, Path]:
    """The newest artefact folder under ``root``: its ``summary.json``, ``scores.parquet`` and folder.

    Raises
    ------
    DataValidationError
        When ``root`` holds no backtest artefact.
    """
    root = Path(root)
    found = []
    for f in root.glob("*/summary.json") if root.is_dir() else []:
        try:
            s = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        found.append((s.get("created", ""), f.parent.name, f.parent, s))
    if not found:
        raise DataValidationError(
            str(root),
            ["no backtest artefact (a folder with summary.json) found; run `salesops backtest` first."],
        )
    created, _, folder, summary = max(found, key=lambda x: (x[0], x[1]))
    return summary, pd.read_parquet(folder / "scores.parquet"), folder
