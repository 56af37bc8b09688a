"""Batch speed: N scenarios on 1 and on 2 Dask workers, and the overhead of a notebook.

Measures, in one run on this machine:

* ``seconds_1_worker`` / ``seconds_2_workers``: wall time of ``run_batch`` (cluster start, all
  notebooks of every scenario, reports, index.html) on N copies of the tiny scenario that differ
  only in their seed; ``speedup_2_workers`` is their ratio (target >= 1.7).
* ``overhead_seconds_per_notebook``: papermill + a fresh kernel on a notebook with one empty cell
  (median of ``--repeats``): what a notebook costs before it does any work.
* ``overhead_seconds_per_notebook_shared_kernel``: the same notebook in a kernel that is already
  running (what the batch pays per notebook after the first: it runs a scenario's notebooks in one
  kernel).
* ``notebook_vs_stage_seconds``: from the batch itself, the notebooks' wall time minus the time
  spent inside the stages, per notebook (imports, charts, tables, papermill).

With ``--sweep`` it measures the planner's cycle instead (issue #15), all on the baseline scenario,
each run with a cold stage cache of its own unless said otherwise:

* ``sweep_ratio``: a batch of a 12-commission-plan sweep (``sweep: grid: compensation.plans``, 12
  plans differing in pay mix and accelerators) over a batch of the baseline alone (same settings,
  same workers, ``--no-notebooks``); target <= 2.
* ``whatif_ratio``: in-process (``run_scenario``, what ``salesops run`` and a notebook do), the
  baseline run with a cold cache, then the same scenario with another commission plan through the
  cache that run filled; the second's wall time over the first's; target <= 0.10.

Usage::

    .venv/bin/python benchmarks/batch.py                       # N=4
    .venv/bin/python benchmarks/batch.py --scenarios 6 --json out.json
    nice -n 10 .venv/bin/python benchmarks/batch.py --sweep    # sweep and what-if ratios

The machine is shared: the script prints the load average before and after, since contention
inflates every figure and lowers the speedup.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

from salesops_models.workflow.batch import run_batch
from salesops_models.workflow.notebooks import (
    KernelSession,
    execute_notebook,
    project_kernel_name,
    tiny_scenario_path,
)


def make_scenarios(folder: Path, n: int) -> list[Path]:
    """N copies of the tiny scenario with seeds 1..N (same work each, different numbers)."""
    base = yaml.safe_load(tiny_scenario_path().read_text())
    paths = []
    for i in range(n):
        doc = dict(base, name=f"bench{i:02d}", seed=1000 + i, description=f"Benchmark copy {i}")
        p = folder / f"bench{i:02d}.yaml"
        p.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(p)
    return paths


def empty_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("pass")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def notebook_overhead(tmp: Path, repeats: int) -> tuple[float, float]:
    """Median seconds of an empty notebook: fresh kernel each time, and in one running kernel."""
    src = empty_notebook(tmp / "empty.ipynb")
    kernel = project_kernel_name()
    fresh = []
    for i in range(repeats):
        fresh.append(execute_notebook(src, tmp / f"fresh{i}.ipynb", {"x": i}, kernel_name=kernel))
    shared = []
    with KernelSession(kernel) as session:
        for i in range(repeats):
            shared.append(execute_notebook(src, tmp / f"shared{i}.ipynb", {"x": i}, session=session))
    return statistics.median(fresh), statistics.median(shared)


def timed_batch(paths: list[Path], out: Path, workers: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    # no stage cache: the speedup measures parallel work, and a cache the 1-worker run filled (or one
    # scenario filled for the others) would hand the 2-worker run finished stages
    result = run_batch(paths, out, workers=workers, quiet=True, cache=False)
    seconds = time.perf_counter() - t0
    if result.failed:
        raise SystemExit(f"benchmark batch failed for {result.failed}; see {result.batch_dir}")
    nb_total = stage_total = 0.0
    n_notebooks = 0
    for rec in result.records:
        d = result.batch_dir / rec["scenario"]
        timings = json.loads((d / "logs" / "timings.json").read_text())["notebook_seconds"]
        nbs = {k: v for k, v in timings.items() if k != "kernel_start"}
        nb_total += sum(nbs.values()) + timings.get("kernel_start", 0.0)
        n_notebooks += len(nbs)
        stage_timings = json.loads((d / "timings.json").read_text())  # wall times are not metrics
        stage_total += sum(v for k, v in stage_timings.items() if k.endswith("_stage_seconds"))
    return seconds, {
        "phases": result.phases,
        "notebooks": n_notebooks,
        "notebook_seconds": nb_total,
        "stage_seconds": stage_total,
        "scenario_seconds": sum(r["scenario_seconds"] for r in result.records),
    }


SWEEP_MIXES = (0.4, 0.5, 0.6)  # variable share of on-target earnings
SWEEP_TOP_RATES = (2.0, 2.5, 3.0, 3.5)  # rate above 150 % of quota [x target incentive]


def sweep_plans(folder: Path) -> list[str]:
    """12 commission plans: the shipped AE plan under 3 pay mixes x 4 top accelerators (file names)."""
    from salesops_models.compensation.plan import _shipped_path

    base = yaml.safe_load(_shipped_path("ae_standard").read_text())
    names = []
    for mix in SWEEP_MIXES:
        for top in SWEEP_TOP_RATES:
            doc = json.loads(json.dumps(base))
            doc["name"] = f"ae_mix{int(mix * 100)}_top{top:g}"
            doc["pay"]["pay_mix"] = {"base": round(1 - mix, 2), "variable": mix}
            doc["measures"][0]["rate_table"]["tiers"][-1]["rate"] = top
            (folder / f"{doc['name']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
            names.append(f"{doc['name']}.yaml")
    return names


def cycle_benchmark(tmp: Path, workers: int) -> dict:
    """Sweep of 12 plans vs one scenario (batches), and the what-if vs the full run (in-process)."""
    from salesops_models.scenario import load_scenario
    from salesops_models.testing import REPO_ROOT
    from salesops_models.workflow.cache import StageCache
    from salesops_models.workflow.runner import run_scenario

    folder = tmp / "sweep"
    folder.mkdir()
    plans = sweep_plans(folder)
    baseline = yaml.safe_load((REPO_ROOT / "scenarios" / "baseline.yaml").read_text())
    single = dict(baseline, name="one", compensation={"plans": [plans[0]]})
    sweep = dict(baseline, name="plans", sweep={"grid": {"compensation.plans": [[p] for p in plans]}})
    (folder / "one.yaml").write_text(yaml.safe_dump(single, sort_keys=False))
    (folder / "plans.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False))
    whatif = dict(single, name="whatif", compensation={"plans": [plans[-1]]})
    (folder / "whatif.yaml").write_text(yaml.safe_dump(whatif, sort_keys=False))

    def batch(path: Path, cache: Path) -> tuple[float, object]:
        t0 = time.perf_counter()
        result = run_batch([path], tmp / "results", workers=workers, notebooks=False, quiet=True, cache=cache)
        seconds = time.perf_counter() - t0
        if result.failed:
            raise SystemExit(f"benchmark batch failed for {result.failed}; see {result.batch_dir}")
        return seconds, result

    out: dict = {"workers": workers, "uptime_before": _uptime()}
    t_one, _ = batch(folder / "one.yaml", tmp / "cache-one")
    print(f"one scenario (baseline, 1 plan), batch --no-notebooks: {t_one:.1f} s   [{_uptime()}]")
    t_sweep, res = batch(folder / "plans.yaml", tmp / "cache-sweep")
    print(f"sweep of {len(res.records)} commission plans, same batch:   {t_sweep:.1f} s   [{_uptime()}]")
    # where a child's time went: stages computed vs restored, and the rest (exports, report)
    kids = []
    for rec in res.records:
        d = res.batch_dir / rec["scenario"]
        t = json.loads((d / "timings.json").read_text())
        stages = sum(v for k, v in t.items() if k.endswith("_stage_seconds"))
        computed = [k.removesuffix("_cache_hit") for k, v in t.items() if k.endswith("_cache_hit") and not v]
        kids.append((rec["scenario_seconds"], stages, computed))
        print(f"  {rec['scenario']}: {rec['scenario_seconds']:.1f} s, stages {stages:.1f} s, "
              f"computed: {', '.join(computed) or 'none'}")  # fmt: skip
    later = kids[1:]
    out["sweep_child_seconds_mean"] = round(sum(k[0] for k in later) / max(1, len(later)), 2)
    out["sweep_child_stage_seconds_mean"] = round(sum(k[1] for k in later) / max(1, len(later)), 2)
    out["sweep_upstream_computations"] = sum("territory" in k[2] for k in kids)
    out.update(one_seconds=round(t_one, 2), sweep_seconds=round(t_sweep, 2), sweep_children=len(res.records),
               sweep_ratio=round(t_sweep / t_one, 3), sweep_phases={k: round(v, 2) for k, v in res.phases.items()})
    cache = StageCache(tmp / "cache-whatif")
    t0 = time.perf_counter()
    full = run_scenario(load_scenario(folder / "one.yaml"), tmp / "inproc" / "full" / "one", cache=cache)
    t_full = time.perf_counter() - t0
    print(f"full run in-process (cold cache):                        {t_full:.1f} s   [{_uptime()}]")
    t0 = time.perf_counter()
    again = run_scenario(load_scenario(folder / "whatif.yaml"), tmp / "inproc" / "whatif" / "whatif", cache=cache)
    t_whatif = time.perf_counter() - t0
    print(f"what-if (another compensation plan, cache warm):         {t_whatif:.1f} s   [{_uptime()}]")
    if full.status != "ok" or again.status != "ok":
        raise SystemExit(f"in-process runs failed: {full.error} / {again.error}")
    timings = json.loads((again.out_dir / "timings.json").read_text())
    recomputed = [s for s in timings if s.endswith("_cache_hit") and not timings[s]]
    out.update(full_seconds=round(t_full, 2), whatif_seconds=round(t_whatif, 2),
               whatif_ratio=round(t_whatif / t_full, 3), whatif_recomputed=recomputed)  # fmt: skip
    print(f"sweep / one scenario: {t_sweep / t_one:.2f}x (target <= 2x, issue #15)")
    print(f"what-if / full run:   {t_whatif / t_full:.3f} (target <= 0.10); recomputed: {', '.join(recomputed)}")
    out["uptime_after"] = _uptime()
    print(f"uptime: {out['uptime_after']}")
    return out


def _uptime() -> str:
    import subprocess

    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", type=int, default=4, help="N scenarios (even numbers balance 2 workers)")
    ap.add_argument("--sweep", action="store_true", help="measure the sweep and what-if ratios (issue #15)")
    ap.add_argument("--workers", type=int, default=2, help="Dask workers of the --sweep batches")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the empty-notebook timing")
    ap.add_argument("--json", type=Path, default=None, help="write one JSON record here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    os.environ.setdefault("MPLBACKEND", "agg")

    if args.sweep:
        with tempfile.TemporaryDirectory(prefix="salesops-bench-sweep-") as tmp_name:
            record = {"benchmark": "batch-sweep", **cycle_benchmark(Path(tmp_name), args.workers)}
        if args.json:
            args.json.write_text(json.dumps(record, indent=2))
            print(f"wrote {args.json}")
        return 0

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="salesops-bench-batch-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "scenarios").mkdir()
        paths = make_scenarios(tmp / "scenarios", args.scenarios)
        fresh, shared = notebook_overhead(tmp, args.repeats)
        print(
            f"empty notebook, fresh kernel (papermill + kernel start): {fresh:.2f} s (median of {args.repeats})"
        )
        print(f"empty notebook, running kernel:                        {shared:.2f} s")
        t1, info1 = timed_batch(paths, tmp / "results", 1)
        print(f"{args.scenarios} scenarios on 1 worker:  {t1:.1f} s")
        t2, info2 = timed_batch(paths, tmp / "results", 2)
        print(f"{args.scenarios} scenarios on 2 workers: {t2:.1f} s")
    speedup = t1 / t2
    # Concurrency reached: task-seconds per second of the scenarios phase (2.0 = both workers busy
    # all the time). A lower speedup with concurrency near 2 means each task ran slower side by
    # side (CPU share), not that the batch failed to run them in parallel.
    concurrency = {
        label: info["scenario_seconds"] / info["phases"]["scenarios"]
        for label, info in (("1", info1), ("2", info2))
    }
    task_slowdown = info2["scenario_seconds"] / info1["scenario_seconds"]
    phase_speedup = info1["phases"]["scenarios"] / info2["phases"]["scenarios"]
    for label, info in (("1 worker", info1), ("2 workers", info2)):
        print(f"phases, {label}: " + ", ".join(f"{k} {v:.1f} s" for k, v in info["phases"].items()))
    print(f"speedup of the scenarios phase alone (tasks only): {phase_speedup:.2f}x")
    print(
        f"concurrency reached (task-seconds / phase seconds): {concurrency['1']:.2f} on 1 worker, "
        f"{concurrency['2']:.2f} on 2 workers; a task took {task_slowdown:.2f}x as long side by side"
    )
    per_nb = (info2["notebook_seconds"] - info2["stage_seconds"]) / max(1, info2["notebooks"])
    load_after = os.getloadavg()
    print(f"speedup 2 workers / 1 worker: {speedup:.2f}x (target >= 1.7x, issue #13)")
    print(
        f"in the batch, notebook wall time minus stage time: {per_nb:.2f} s per notebook "
        f"({info2['notebooks']} notebooks, {info2['notebook_seconds']:.1f} s in notebooks, "
        f"{info2['stage_seconds']:.1f} s in stages)"
    )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} cores")
    record = {
        "benchmark": "batch",
        "scenarios": args.scenarios,
        "seconds_1_worker": round(t1, 2),
        "seconds_2_workers": round(t2, 2),
        "speedup_2_workers": round(speedup, 3),
        "speedup_2_workers_scenarios_phase": round(phase_speedup, 3),
        "concurrency_1_worker": round(concurrency["1"], 3),
        "concurrency_2_workers": round(concurrency["2"], 3),
        "task_slowdown_side_by_side": round(task_slowdown, 3),
        "phases_1_worker": {k: round(v, 2) for k, v in info1["phases"].items()},
        "phases_2_workers": {k: round(v, 2) for k, v in info2["phases"].items()},
        "overhead_seconds_per_notebook": round(fresh, 3),
        "overhead_seconds_per_notebook_shared_kernel": round(shared, 3),
        "notebook_vs_stage_seconds_per_notebook": round(per_nb, 3),
        "stage_seconds_2_workers": round(info2["stage_seconds"], 2),
        "notebook_seconds_2_workers": round(info2["notebook_seconds"], 2),
        "load_average_before": round(load_before[0], 2),
        "load_average_after": round(load_after[0], 2),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    if args.json:
        args.json.write_text(json.dumps(record, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
