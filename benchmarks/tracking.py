"""Calibration of the tracking re-forecast on the sample company (issue #17).

For each sample seed, in one run:

1. the plan: the baseline scenario's data, pipeline, quota and compensation stages on the sample
   company (history to 2025-12-31, plan year 2026; the territory and forecast stages are left out,
   so the plan keeps today's territories, as the generated year does);
2. the truth: the sample company's plan-year continuation through 2026-12-31, and each rep's
   realised 2026 bookings;
3. at every month end of 2026, the export taken that day (``generate_plan_year_actuals``) is tracked
   against the plan (``salesops_models.tracking.track``), and each rep's realised year-end bookings
   are ranked in his re-forecast: inside P10-P90 or not, and the PIT (share of trials below the
   realised value plus half the ties) [0-1].

The first row ("plan") ranks the realised bookings in the plan's own pipeline samples, as of the
plan date. The 31 December row is trivial (everything is booked: the band is one point) and is
reported apart from the pooled January-November figure. A calibrated 80 % band holds 80 % of
reps; the target is 70-90 %.

    .venv/bin/python benchmarks/tracking.py [--seeds 7 11] [--trials 500] [--size-by-cycle default|on|off|both]
        [--json results/bench_tracking.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from switches import add_size_by_cycle, size_by_cycle_variants  # noqa: E402

from salesops_models.data.sample import generate_plan_year_actuals  # noqa: E402
from salesops_models.scenario import load_scenario  # noqa: E402
from salesops_models.tracking import load_saved_plan, track  # noqa: E402
from salesops_models.workflow.runner import run_scenario  # noqa: E402

PLAN_STAGES = ["data", "pipeline", "quota", "compensation"]


def make_plan(seed: int, folder: Path, size_by_cycle: bool | None = None):
    scenario = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    scenario = scenario.model_copy(
        update={
            "data": scenario.data.model_copy(deep=True),
            "pipeline": scenario.pipeline.model_copy(deep=True),
        }
    )
    scenario.data.sample.seed = seed
    if size_by_cycle is not None:
        scenario.pipeline.size_by_cycle = size_by_cycle
    variant = "" if size_by_cycle is None else f"-cycle{int(size_by_cycle)}"
    outcome = run_scenario(scenario, folder / f"plan-seed{seed}{variant}", stages=PLAN_STAGES)
    if outcome.status != "ok":
        raise SystemExit(f"plan for seed {seed} failed: {outcome.error}")
    return load_saved_plan(outcome.out_dir), sample_options(scenario)


def sample_options(scenario) -> dict:
    """The generator settings of the scenario's data section (seed included), as the data stage and
    ``salesops data sample --like`` pass them, so the actuals continue the very company the plan was
    made on (e.g. its coverage elasticity)."""
    return scenario.data.sample.model_dump()


def realised(sample: dict, year: int) -> pd.Series:
    truth = generate_plan_year_actuals(f"{year}-12-31", **sample)
    o = truth.opportunities
    won = o[(o["status"] == "won") & (o["close_date"].dt.year == year)]
    return (
        won.groupby(won["rep_id"].astype(str))["amount"]
        .sum()
        .reindex(truth.reps["rep_id"].astype(str), fill_value=0.0)
    )


def rank(samples: pd.DataFrame, actual: pd.Series) -> pd.DataFrame:
    """Per rep: P10, P90, inside, PIT of the realised value in trials x reps samples."""
    a = actual.reindex(samples.columns).to_numpy(float)
    x = samples.to_numpy(float)
    p10, p90 = np.percentile(x, [10, 90], axis=0)
    pit = (x < a[None, :]).mean(axis=0) + 0.5 * (x == a[None, :]).mean(axis=0)
    return pd.DataFrame(
        {
            "p10": p10,
            "p90": p90,
            "actual": a,
            "inside": (p10 <= a) & (a <= p90),
            "below": a < p10,
            "above": a > p90,
            "pit": pit,
        },
        index=samples.columns,
    )


def show(seed: int, label: str, r: pd.DataFrame, total: np.ndarray, truth: pd.Series, seconds: float) -> dict:
    """Print one as-of date's line and return it as a record."""
    q = np.percentile(total, [10, 50, 90])
    print(
        f"{seed:>4} {label:>10} {len(r):>4} {r['inside'].mean():>10.1%} {r['below'].mean():>6.1%} "
        f"{r['above'].mean():>6.1%} {r['pit'].mean():>8.3f} "
        f"{q[0] / 1e6:>9.2f}M / {q[1] / 1e6:6.2f}M / {q[2] / 1e6:6.2f}M vs {truth.sum() / 1e6:6.2f}M {seconds:>5.1f}"
    )
    return {
        "seed": seed,
        "as_of": label,
        "reps": len(r),
        "inside": float(r["inside"].mean()),
        "inside_n": int(r["inside"].sum()),
        "below": float(r["below"].mean()),
        "above": float(r["above"].mean()),
        "mean_pit": float(r["pit"].mean()),
        "company_p10": q[0],
        "company_p50": q[1],
        "company_p90": q[2],
        "company_realised": float(truth.sum()),
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7])
    ap.add_argument(
        "--trials", type=int, default=None, help="Monte Carlo trials per run (default: the plan's, 500)."
    )
    ap.add_argument("--months", type=int, nargs="+", default=list(range(1, 13)))
    add_size_by_cycle(ap, "the plan (the baseline scenario's by default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    print(
        f"# load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)"
    )
    variants = size_by_cycle_variants(args.size_by_cycle)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name, variant in variants.items():
                rows += track_seed(seed, name, variant, args.trials, args.months, Path(tmp))
    df = pd.DataFrame(rows)
    print("\n# pooled over as-of dates (reps x dates)")
    for variant, by_variant in df.groupby("size_by_cycle", sort=False):
        dated = by_variant[by_variant["as_of"] != "plan"]
        pooled = dated[~dated["as_of"].str.endswith("-12-31")]
        for label, part in (("Jan-Nov month ends", pooled), ("all 12 month ends", dated)):
            n = int((part["reps"]).sum())
            inside = float(part["inside_n"].sum() / n) if n else float("nan")
            pit = float((part["mean_pit"] * part["reps"]).sum() / n) if n else float("nan")
            print(
                f"size_by_cycle {variant:>8} {label:>20}: inside P10-P90 {inside:.1%} of {n} rep-dates "
                f"(target 70-90%); mean PIT {pit:.3f} (0.5 = unbiased)"
            )
    print(f"# load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=float))


def track_seed(
    seed: int, name: str, variant: bool | None, trials: int | None, months: list[int], tmp: Path
) -> list[dict]:
    """The plan and the month-end tracking runs of one seed with one ``size_by_cycle`` setting."""
    t0 = time.perf_counter()
    plan, sample = make_plan(seed, tmp, variant)
    year = plan.plan_year
    truth = realised(sample, year)
    s = plan.tables["rep_bookings_samples"]
    wide = s.pivot_table(index="trial", columns=s["rep_id"].astype(str), values="bookings", aggfunc="sum")
    r = rank(wide, truth)
    print(
        f"# seed {seed}, size_by_cycle {name}: plan built in {time.perf_counter() - t0:.1f} s; "
        f"realised {year} bookings {truth.sum():,.0f}"
    )
    header = f"{'seed':>4} {'as of':>10} {'reps':>4} {'in P10-P90':>10} {'<P10':>6} {'>P90':>6} {'mean PIT':>8} {'company P10 / P50 / P90 vs realised':>48} {'s':>5}"
    print(header)
    rows = [show(seed, "plan", r, wide.sum(axis=1).to_numpy(), truth, 0.0)]
    for m in months:
        day = pd.Timestamp(year=year, month=m, day=1) + pd.offsets.MonthEnd(0)
        t1 = time.perf_counter()
        actuals = generate_plan_year_actuals(day, **sample)
        res = track(plan, actuals, trials=trials)
        t = res.tables["reforecast_samples"]
        wide_t = t.pivot_table(index="trial", columns="rep_id", values="bookings", aggfunc="sum")
        ranked = rank(wide_t, truth)
        total = wide_t.sum(axis=1).to_numpy()
        rows.append(show(seed, str(day.date()), ranked, total, truth, time.perf_counter() - t1))
    return [{**row, "size_by_cycle": name} for row in rows]


if __name__ == "__main__":
    main()
