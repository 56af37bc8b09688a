"""Speed and accuracy of the payout engine: 1,000 reps x 100,000 trials, against per-rep Python loops.

What it measures, all in the same run:

- ``payout_cpu_seconds``: CPU time of the payout work summed over threads; on a shared machine the
  wall time is inflated by other processes, this figure is not.
- ``seconds``: wall time of the payouts (attainment -> every rep's pay in every trial -> total cost per
  trial) for ``--reps`` x ``--trials`` under the analytic oracle plan (1x up to quota, 2x above,
  uncapped), with ``--threads`` threads over chunks of ``--chunk`` trials. Drawing the attainment
  samples is timed separately (``sample_seconds``) and not included; ``end_to_end_seconds`` has both.
- ``speedup_vs_loop`` (wall) and ``speedup_vs_loop_cpu`` (CPU time): the same payouts computed by a
  per-rep Python loop (plain floats, one rep-trial at a time, the tier table walked slice by slice) on
  a subsample, per payout, divided into the vectorised time per payout. The per-rep calculation trace (``payout_trace``, the package's scalar implementation)
  and a loop over reps with numpy over each rep's trials are measured too.
- ``analytic_z``: (mean payout / TI - 1.0398942) / standard error over all reps x trials, attainment
  ~ Normal(1, 0.1) (FIELD-NOTES 3.4). |z| < 3 is the pass mark.

Memory: one chunk is ``reps x chunk`` float64 values (16 MB at 1,000 x 2,000) for the samples and as
much for the payouts, per thread; the full 1e8 set is never held.

Usage::

    .venv/bin/python benchmarks/compensation.py [--reps 1000] [--trials 100000] [--threads 1] [--chunk 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from salesops_models.compensation import (  # noqa: E402
    compute_payouts,
    credit_factors,
    load_plan,
    payout_trace,
)
from salesops_models.compensation.engine import spif_factors  # noqa: E402

ORACLE = 1.0398942  # E[payout] / TI for the 1x/2x plan with attainment ~ N(1, 0.1)


def draw_chunk(seed: int, index: int, quota: np.ndarray, n_trials: int) -> np.ndarray:
    """Bookings of one chunk: quota x N(1, 0.1), from its own spawned stream (thread-count independent)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    b = rng.standard_normal((quota.size, n_trials))
    b *= 0.1
    b += 1.0
    b *= quota[:, None]
    return b


def pay_chunk(
    plan, bookings: np.ndarray, quota: np.ndarray, credit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Payouts of one chunk, the total cost per trial, and the CPU seconds of this thread."""
    c0 = time.thread_time()
    out = compute_payouts(plan, bookings, quota, credit)
    totals = out.variable.sum(axis=0)
    return out.variable, totals, time.thread_time() - c0


def lean_loop(plan, bookings: np.ndarray, quota: np.ndarray) -> np.ndarray:
    """The per-rep Python loop: plain floats, one payout at a time, tiers walked slice by slice."""
    m = plan.measures[0]
    ti = plan.pay.target_incentive * m.weight
    tiers = [(t.from_, float("inf") if t.to is None else t.to, t.rate) for t in m.rate_table.tiers]
    out = np.empty_like(bookings)
    n_reps, n_trials = bookings.shape
    for r in range(n_reps):
        q = float(quota[r]) * m.quota_share
        row = bookings[r].tolist()
        res = [0.0] * n_trials
        for t in range(n_trials):
            a = row[t] / q
            g = 0.0
            for lo, hi, rate in tiers:
                if a <= lo:
                    break
                g += rate * (min(a, hi) - lo)
            res[t] = g * ti
        out[r] = res
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=2_000, help="trials per chunk")
    ap.add_argument(
        "--threads", type=int, default=1, help="threads over chunks (2 was slower on the shared machine)"
    )
    ap.add_argument("--loop-trials", type=int, default=50, help="trials per rep in the Python-loop baselines")
    ap.add_argument("--loop-reps", type=int, default=20, help="reps in the per-rep numpy loop baseline")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--json", type=Path, default=None, help="write one JSON record here")
    ap.add_argument("--skip-other-plans", action="store_true", help="do not time the shipped AE plans")
    args = ap.parse_args(argv)

    plan = load_plan("uncapped_1x_2x")
    ti = float(plan.pay.target_incentive)
    rng = np.random.default_rng(args.seed)
    quota = rng.uniform(5e5, 2e6, args.reps)
    credit = credit_factors(plan, [f"r{i}" for i in range(args.reps)], None, [])
    starts = list(range(0, args.trials, args.chunk))
    sizes = [min(args.chunk, args.trials - s) for s in starts]
    load_before = os.getloadavg()

    # ---- vectorised: rounds of `threads` chunks, sampling and paying timed apart ----------------------
    sample_wall = pay_wall = pay_cpu = 0.0
    cpu0 = time.process_time()
    s1 = s2 = 0.0
    n = 0
    totals = np.empty(args.trials)
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        for r0 in range(0, len(starts), args.threads):
            idx = list(range(r0, min(r0 + args.threads, len(starts))))
            t0 = time.perf_counter()
            chunks = list(pool.map(lambda i: draw_chunk(args.seed, i, quota, sizes[i]), idx))
            t1 = time.perf_counter()
            results = list(pool.map(lambda c: pay_chunk(plan, c, quota, credit), chunks))
            t2 = time.perf_counter()
            sample_wall += t1 - t0
            pay_wall += t2 - t1
            for i, (pay, tot, cpu) in zip(idx, results, strict=True):
                pay_cpu += cpu
                totals[starts[i] : starts[i] + sizes[i]] = tot
                x = pay / ti
                s1 += float(x.sum())
                s2 += float(np.einsum("ij,ij->", x, x))
                n += x.size
            del chunks, results
    cpu_all = time.process_time() - cpu0
    mean = s1 / n
    sd = np.sqrt(max(s2 / n - mean**2, 0.0) * n / (n - 1))
    se = sd / np.sqrt(n)
    z = (mean - ORACLE) / se
    per_payout = pay_wall / n

    # ---- baselines on a subsample, same run ------------------------------------------------------------
    lt = args.loop_trials
    sub = draw_chunk(args.seed, 0, quota, lt)
    ref, _, _ = pay_chunk(plan, sub, quota, credit)
    t0, c0 = time.perf_counter(), time.process_time()
    lean = lean_loop(plan, sub, quota)
    lean_per = (time.perf_counter() - t0) / sub.size
    lean_cpu_per = (time.process_time() - c0) / sub.size
    assert np.allclose(lean, ref, rtol=1e-12, atol=1e-6), "the Python loop and the engine disagree"
    n_tr = min(sub.size, 4000)
    t0 = time.perf_counter()
    for k in range(n_tr):
        r, t = divmod(k, lt)
        v = payout_trace(plan, float(sub[r, t]), float(quota[r]), with_steps=False).variable
        assert abs(v - ref[r, t]) < 1e-6
    trace_per = (time.perf_counter() - t0) / n_tr
    # a loop over reps, numpy over each rep's full set of trials (a subset of reps, extrapolated)
    n_loop_reps = min(args.reps, args.loop_reps)
    rep_numpy = 0.0
    for r in range(n_loop_reps):
        row = draw_chunk(args.seed, 10_000 + r, quota[r : r + 1], args.trials)
        t0 = time.perf_counter()
        compute_payouts(plan, row, quota[r : r + 1], credit[:, r : r + 1]).variable.sum(axis=0)
        rep_numpy += time.perf_counter() - t0
    rep_numpy_per = rep_numpy / (n_loop_reps * args.trials)

    record = {
        "seconds": round(pay_wall, 3),
        "speedup_vs_loop": round(lean_per / per_payout, 1),
        "analytic_z": round(float(z), 3),
        "reps": args.reps,
        "trials": args.trials,
        "threads": args.threads,
        "chunk_trials": args.chunk,
        "sample_seconds": round(sample_wall, 3),
        "end_to_end_seconds": round(sample_wall + pay_wall, 3),
        "payout_cpu_seconds": round(pay_cpu, 3),
        "process_cpu_seconds": round(cpu_all, 3),
        "ns_per_payout": round(per_payout * 1e9, 2),
        "loop_ns_per_payout": round(lean_per * 1e9, 1),
        "speedup_vs_loop_cpu": round(lean_cpu_per / (pay_cpu / n), 1),
        "loop_seconds_extrapolated": round(lean_per * n, 1),
        "trace_ns_per_payout": round(trace_per * 1e9, 1),
        "speedup_vs_trace_loop": round(trace_per / per_payout, 1),
        "rep_numpy_loop_ns_per_payout": round(rep_numpy_per * 1e9, 2),
        "speedup_vs_rep_numpy_loop": round(rep_numpy_per / per_payout, 2),
        "mean_payout_ti": round(mean, 8),
        "standard_error": float(f"{se:.3g}"),
        "oracle": ORACLE,
        "cost_p50": float(np.quantile(totals, 0.5)),
        "cost_p90": float(np.quantile(totals, 0.9)),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }

    if not args.skip_other_plans:
        other, other_cpu = {}, {}
        t_other = min(args.trials, args.chunk)
        b = draw_chunk(args.seed, 0, quota, t_other)
        for name in ("ae_standard", "ae_retroactive_capped", "new_hire_draw", "product_weighted_spif"):
            p = load_plan(name)
            mix = np.full((args.reps, 4), 0.25)
            products = ["Core Platform", "Analytics", "Integrations", "Support Plus"]
            c = credit_factors(p, [f"r{i}" for i in range(args.reps)], mix, products)
            units = spif_factors(p, mix, products, {"Core Platform": 50_000.0}) if p.spifs else None
            t0, c0 = time.perf_counter(), time.process_time()
            compute_payouts(p, b, quota, c, spif_units=units)
            other[name] = round((time.perf_counter() - t0) / b.size * 1e9, 2)
            other_cpu[name] = round((time.process_time() - c0) / b.size * 1e9, 2)
        record["other_plans_ns_per_payout"] = other
        record["other_plans_cpu_ns_per_payout"] = other_cpu
        record["other_plans_size"] = f"{args.reps} x {t_other}"

    print(
        f"payouts {args.reps:,} reps x {args.trials:,} trials, {args.threads} thread(s), chunks of {args.chunk:,}"
    )
    print(
        f"  payout wall time        {pay_wall:8.3f} s   ({per_payout * 1e9:.2f} ns per payout; target <= 3 s)"
    )
    print(f"  sampling wall time      {sample_wall:8.3f} s   (not included above)")
    print(
        f"  payout CPU time         {pay_cpu:8.3f} s   (summed over threads: the work, whatever the contention)"
    )
    print(f"  process CPU time        {cpu_all:8.3f} s   (sampling + payouts + checks, all threads)")
    print(
        f"  per-rep Python loop     {lean_per * 1e9:8.1f} ns per payout -> {lean_per * n:,.0f} s extrapolated; "
        f"speedup {lean_per / per_payout:,.0f}x (CPU time ratio {record['speedup_vs_loop_cpu']:,.0f}x)"
    )
    print(
        f"  payout_trace loop       {trace_per * 1e9:8.1f} ns per payout; speedup {trace_per / per_payout:,.0f}x"
    )
    print(
        f"  per-rep numpy loop      {rep_numpy_per * 1e9:8.2f} ns per payout; speedup {rep_numpy_per / per_payout:.1f}x"
    )
    print(f"  E[payout]/TI            {mean:.7f} vs oracle {ORACLE} (SE {se:.2e}): z = {z:+.2f}")
    if "other_plans_ns_per_payout" in record:
        print(
            f"  other plans ({record['other_plans_size']}), wall ns per payout: {record['other_plans_ns_per_payout']}"
        )
        print(f"  other plans, CPU ns per payout: {record['other_plans_cpu_ns_per_payout']}")
    print(
        f"  load average before/after: {record['load_average_before']} / {record['load_average_after']} on {os.cpu_count()} CPUs"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2))
        print(f"  wrote {args.json}")
    return record


if __name__ == "__main__":
    main()
