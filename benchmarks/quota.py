"""Quota methods on the sample company: fairness (spread of P(attain)) and time, per method.

Usage::

    .venv/bin/python benchmarks/quota.py [--json PATH] [--distribution auto|parametric|pipeline]
                                         [--repeats 3] [--no-backtest] [--no-scaling]

What it measures, all in this run:

1. The five methods on the sample company (seed 7, 2,000 accounts, 40 reps; target = prior-year
   bookings x 1.10, the stage default). P(attain) per rep comes from the pipeline stage's Monte Carlo
   samples when that stage is available (quotas fitted on half of the trials, P(attain) measured on
   the other half), else from the stage's parametric fallback (lognormal, per-rep cv from monthly
   history; in-sample). Baseline: the even split, measured in the same run.
2. A backtest: quotas for 2025 set from data up to 2024-12-31, scored against the actual 2025
   bookings (share of reps at >= 100%, spread of realised attainment).
3. Scaling of the MILP and of the equal-chance root finding with the number of reps, and the
   equal-chance p against the closed form for normal bookings.

Timings are wall-clock on a shared machine; they are the minimum over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from salesops_models.data.sample import generate_sample_company  # noqa: E402
from salesops_models.quota import (  # noqa: E402
    NormalBookings,
    SampleBookings,
    equal_chance_p,
    fairness_figures,
    optimise_quotas,
    rep_basis,
    run_method,
)
from salesops_models.quota.basis import annual_cv_from_history, bookings_growth  # noqa: E402
from salesops_models.quota.config import METHODS, QuotaConfig  # noqa: E402
from salesops_models.workflow.stages.quota import parametric_distribution  # noqa: E402

CFG = QuotaConfig()
WEIGHTS = CFG.weights.as_dict()


def method_kwargs(dist) -> dict:
    return {
        "submissions": None,
        "over_assignment": CFG.over_assignment,
        "rounding_unit": CFG.rounding_unit,
        "growth_min": CFG.growth_min,
        "growth_max": CFG.growth_max,
        "time_limit": CFG.time_limit,
        "mip_rel_gap": CFG.mip_rel_gap,
    }


def pipeline_samples(company) -> pd.DataFrame | None:
    """rep_bookings_samples from the pipeline stage, when that stage exists and runs."""
    try:
        from salesops_models.scenario import Scenario
        from salesops_models.workflow.context import StageContext
        from salesops_models.workflow.stages import stage_function

        run = stage_function("pipeline")
    except Exception as exc:  # the stage may not exist yet
        print(f"# pipeline stage unavailable ({type(exc).__name__}: {exc}); using the parametric fallback")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        ctx = StageContext(Scenario(name="bench"), Path(tmp), "pipeline", {"company": company})
        t0 = time.perf_counter()
        try:
            run(ctx)
        except Exception as exc:
            print(f"# pipeline stage failed ({type(exc).__name__}: {exc}); using the parametric fallback")
            return None
        print(f"# pipeline stage: {time.perf_counter() - t0:.1f} s")
        return ctx.read_table("rep_bookings_samples")


def compare(basis, target, fit_dist, eval_dist, repeats: int) -> list[dict]:
    rows = []
    submissions = pd.Series(fit_dist.mean()[fit_dist.reindex(basis.index)], index=basis.index)
    for method in METHODS:
        kw = method_kwargs(fit_dist) | {"submissions": submissions}
        times, res = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = run_method(method, basis, target, WEIGHTS, dist=fit_dist, **kw)
            times.append(time.perf_counter() - t0)
        fig = fairness_figures(res, basis, eval_dist)
        in_sample = fairness_figures(res, basis, fit_dist)["p_attain_spread"]
        rows.append(
            {
                "method": method,
                "p_attain_spread": fig["p_attain_spread"],
                "seconds": min(times),
                "p_attain_spread_in_sample": in_sample,
                "p_attain_min": fig["p_attain_min"],
                "p_attain_max": fig["p_attain_max"],
                "p_attain_std": fig["p_attain_std"],
                "expected_share_at_quota": fig["expected_share_at_quota"],
                "quota_to_potential_cv": fig["quota_to_potential_cv"],
                "quota_total": fig["quota_total"],
                "equal_chance_p": res.extra.get("equal_chance_p"),
            }
        )
    return rows


def backtest(company) -> pd.DataFrame:
    """Quotas for 2025 from data up to 2024, scored against actual 2025 bookings."""
    bk = company.bookings.assign(month=pd.to_datetime(company.bookings["month"]))
    hist = bk[bk["month"] < "2025-01-01"]
    actual = bk[bk["month"].dt.year == 2025].groupby("rep_id")["amount"].sum()
    basis = rep_basis(
        company.reps, company.accounts, hist, 2025, ramp=CFG.ramp, as_of=pd.Timestamp("2024-12-31")
    )
    target = float(basis["prior_year"].sum()) * (1 + CFG.target_growth)
    cv = annual_cv_from_history(hist, basis.index, default=CFG.default_cv)
    dist = parametric_distribution(basis, bookings_growth(hist) or CFG.target_growth, cv)
    submissions = pd.Series(dist.mean()[dist.reindex(basis.index)], index=basis.index)
    rows = []
    for method in METHODS:
        res = run_method(
            method, basis, target, WEIGHTS, dist=dist, **(method_kwargs(dist) | {"submissions": submissions})
        )
        att = actual.reindex(basis.index).fillna(0.0) / res.quota
        rows.append(
            {
                "method": method,
                "share_at_quota_2025": float((att >= 1).mean()),
                "attainment_p10": float(att.quantile(0.1)),
                "attainment_p90": float(att.quantile(0.9)),
                "attainment_spread_p90_p10": float(att.quantile(0.9) - att.quantile(0.1)),
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["target"] = target
    out.attrs["actual"] = float(actual.sum())
    return out


def scaling(basis: pd.DataFrame, target: float, repeats: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for n in (40, 400, 2000):
        reps = rng.integers(0, len(basis), n)
        b = basis.iloc[reps].copy()
        b.index = pd.Index([f"S{i:05d}" for i in range(n)], name="rep_id")
        for col in ("potential", "prior_year", "ttm", "forecast"):
            b[col] = b[col] * rng.uniform(0.8, 1.2, n)
        t = target * n / len(basis)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = optimise_quotas(
                b,
                t,
                WEIGHTS,
                rounding_unit=CFG.rounding_unit,
                growth_min=CFG.growth_min,
                growth_max=CFG.growth_max,
                time_limit=CFG.time_limit,
            )
            times.append(time.perf_counter() - t0)
        mu = pd.Series(rng.uniform(2e5, 3e6, n), index=b.index)
        sd = mu * rng.uniform(0.1, 0.5, n)
        tt = float(mu.sum() * 1.05)
        t0 = time.perf_counter()
        p = equal_chance_p(NormalBookings(mu, sd), tt)
        t_ec = time.perf_counter() - t0
        p_exact = 1 - stats.norm.cdf((tt - mu.sum()) / sd.sum())
        rows.append(
            {
                "reps": n,
                "milp_seconds": min(times),
                "milp_status": res.extra["status"],
                "milp_gap": res.extra["mip_gap"],
                "equal_chance_seconds": t_ec,
                "equal_chance_p_abs_error": abs(p - p_exact),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write [{method, p_attain_spread, seconds, ...}] here")
    ap.add_argument("--distribution", choices=("auto", "parametric", "pipeline"), default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-backtest", action="store_true")
    ap.add_argument("--no-scaling", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)

    t0 = time.perf_counter()
    company = generate_sample_company(seed=7, n_accounts=2000, n_reps=40)
    print(f"# sample company (seed 7, 2000 accounts, 40 reps) generated in {time.perf_counter() - t0:.1f} s")
    plan_year = 2026
    basis = rep_basis(
        company.reps, company.accounts, company.bookings, plan_year, ramp=CFG.ramp, as_of=company.as_of
    )
    target = float(basis["prior_year"].sum()) * (1 + CFG.target_growth)
    print(f"# target = prior-year bookings {basis['prior_year'].sum():,.0f} x 1.10 = {target:,.0f}")

    samples = pipeline_samples(company) if args.distribution in ("auto", "pipeline") else None
    if samples is None and args.distribution == "pipeline":
        print("error: --distribution pipeline but the pipeline stage did not produce samples")
        return 2
    if samples is not None:
        trials = np.sort(samples["trial"].unique())
        fit = SampleBookings(samples[samples["trial"].isin(trials[::2])])
        ev = SampleBookings(samples[samples["trial"].isin(trials[1::2])])
        basis["forecast"] = fit.mean()[fit.reindex(basis.index)]  # as the stage: pipeline mean as forecast
        source = f"pipeline samples ({len(trials)} trials; fit on even trials, P(attain) on odd trials)"
    else:
        cv = annual_cv_from_history(company.bookings, basis.index, default=CFG.default_cv)
        fit = ev = parametric_distribution(basis, bookings_growth(company.bookings) or CFG.target_growth, cv)
        g = bookings_growth(company.bookings)
        source = f"parametric lognormal (stage fallback: last year x {1 + g:.3f}, per-rep cv from history; in-sample)"
    print(f"# P(attain) from: {source}")

    rows = compare(basis, target, fit, ev, args.repeats)
    table = pd.DataFrame(rows).set_index("method")
    base = table.loc["even", "p_attain_spread"]
    table["spread_vs_even"] = table["p_attain_spread"] / base
    print("\n## Fairness per method (sample company, plan year 2026)")
    print(
        table[
            [
                "p_attain_spread",
                "spread_vs_even",
                "p_attain_spread_in_sample",
                "p_attain_min",
                "p_attain_max",
                "expected_share_at_quota",
                "quota_to_potential_cv",
                "seconds",
            ]
        ].to_string(float_format=lambda v: f"{v:.4f}")
    )
    p = table.loc["equal_chance", "equal_chance_p"]
    print(f"equal-chance common p (fit) = {p:.4f}")
    if samples is not None:
        # Monte Carlo noise floor: the max - min of 40 reps' P(attain) when every rep's true p is the
        # same and both fit and evaluation use half the trials (two independent binomial errors)
        n_half = len(trials) // 2
        rng = np.random.default_rng(1)
        n_reps = len(basis)
        sims = (
            rng.binomial(n_half, p, (2000, n_reps)) - rng.binomial(n_half, p, (2000, n_reps))
        ) / n_half + p
        floor = float(np.mean(sims.max(axis=1) - sims.min(axis=1)))
        print(
            f"Monte Carlo noise floor of the out-of-sample spread ({n_half} + {n_half} trials): ~{floor:.3f}"
        )

    if not args.no_backtest:
        bt = backtest(company)
        print(
            f"\n## Backtest: quotas for 2025 from data to 2024-12-31 (target {bt.attrs['target']:,.0f}; "
            f"actual 2025 bookings {bt.attrs['actual']:,.0f})"
        )
        print(bt.set_index("method").to_string(float_format=lambda v: f"{v:.4f}"))

    if not args.no_scaling:
        sc = scaling(basis, target, max(1, args.repeats))
        print("\n## Scaling (synthetic reps resampled from the sample company)")
        print(sc.to_string(index=False, float_format=lambda v: f"{v:.3g}"))

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        records = [
            {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
            for r in rows
        ]
        for r in records:
            r["distribution"] = source
        args.json.write_text(json.dumps(records, indent=2))
        print(f"\n# wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
