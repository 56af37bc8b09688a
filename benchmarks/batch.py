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

Usage::

    .venv/bin/python benchmarks/batch.py                       # N=4
    .venv/bin/python benchmarks/batch.py --scenarios 6 --json out.json

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
    result = run_batch(paths, out, workers=workers, quiet=True)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", type=int, default=4, help="N scenarios (even numbers balance 2 workers)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the empty-notebook timing")
    ap.add_argument("--json", type=Path, default=None, help="write one JSON record here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    os.environ.setdefault("MPLBACKEND", "agg")

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
