"""The batch on a real Dask cluster: a scheduler and two workers started with Dask's own commands.

- ``salesops batch --scheduler tcp://...`` gives the same numbers as a LocalCluster, byte for byte,
  with the results returned to the client (``SALESOPS_BATCH_RESULTS=returned``: workers without the
  results folder).
- A worker killed mid-batch: its scenario is run again on the other worker (or reported failed);
  every scenario that had completed keeps its results untouched; nothing is overwritten.

The scheduler listens on 127.0.0.1 in plain tcp (this test's own, short-lived cluster).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from salesops_models.workflow.batch import run_batch

pytestmark = pytest.mark.slow

DASK = str(Path(sys.executable).with_name("dask"))
SALESOPS = str(Path(sys.executable).with_name("salesops"))
SCENARIO = {
    "data": {"sample": {"seed": 7, "n_accounts": 40, "n_reps": 4, "n_regions": 2, "years": 2}},
    # proven optimal: the plan is the same on any worker, however busy
    "territory": {"time_limit": 60, "mip_gap": 0.0, "heuristic_seconds": 0.2},
    "forecast": {"backtest_folds": 0},
    "pipeline": {"trials": 100, "block_size": 50},
    "compensation": {"n_trials": 200},
}


def _scenarios(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        doc = {"name": f"s{i}", "seed": 100 + i, **SCENARIO}
        (folder / f"s{i}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def _wait(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes (each in its own process group)."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("cluster")
    sf = tmp / "scheduler.json"
    env = {**os.environ, "MPLBACKEND": "agg", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    logs = {n: open(tmp / f"{n}.log", "w") for n in ("scheduler", "w1", "w2")}  # noqa: SIM115
    procs = {
        "scheduler": subprocess.Popen(
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sf),
            ],
            stdout=logs["scheduler"],
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    }
    try:
        _wait(sf.exists, 60, "the scheduler file")
        for name in ("w1", "w2"):
            procs[name] = subprocess.Popen(
                [
                    DASK,
                    "worker",
                    "--scheduler-file",
                    str(sf),
                    "--nthreads",
                    "1",
                    "--name",
                    name,
                    "--no-dashboard",
                    "--local-directory",
                    str(tmp / name),
                ],
                stdout=logs[name],
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        address = json.loads(sf.read_text())["address"]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield {"address": address, "procs": procs, "env": env, "tmp": tmp}
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for f in logs.values():
            f.close()


def _batch_cli(cluster, folder: Path, out: Path, batch_id: str, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [
            SALESOPS,
            "--quiet",
            "batch",
            str(folder),
            "--scheduler",
            cluster["address"],
            "--no-notebooks",
            "--out",
            str(out),
            "--batch-id",
            batch_id,
        ],
        env={**cluster["env"], **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_external_cluster_gives_the_local_cluster_numbers(cluster, tmp_path):
    folder = _scenarios(tmp_path / "scenarios")
    proc = _batch_cli(cluster, folder, tmp_path / "results", "external", SALESOPS_BATCH_RESULTS="returned")
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output
    local = run_batch(
        [folder], tmp_path / "results", workers=2, notebooks=False, quiet=True, batch_id="local"
    )
    assert not local.failed and local.results_mode == "shared"
    ext = tmp_path / "results" / "external"
    for i in range(4):
        a, b = ext / f"s{i}", local.batch_dir / f"s{i}"
        assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes(), f"s{i}"
        for table in ("quotas", "rep_bookings_samples", "comp_cost_samples"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(a / f"{table}.parquet"), pd.read_parquet(b / f"{table}.parquet")
            )
        assert json.loads((a / "logs" / "task.json").read_text()) == {
            "attempt": 1,
            "completed": True,
            "status": "ok",
        }
    assert json.loads((ext / "s0" / "metrics.json").read_text())["status"] == "ok"


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_a_worker_killed_mid_batch(cluster, tmp_path):
    from distributed import Client

    folder = _scenarios(tmp_path / "scenarios")
    batch = tmp_path / "results" / "kill"
    proc = _batch_cli(cluster, folder, tmp_path / "results", "kill")

    def task(name: str) -> dict:
        f = batch / name / "logs" / "task.json"
        return json.loads(f.read_text()) if f.exists() else {}

    def completed() -> list[str]:
        return sorted(d.name for d in batch.glob("s[0-9]") if task(d.name).get("completed"))

    victim = killed_scenario = None
    with Client(cluster["address"], timeout=60) as client:

        def busy_worker() -> bool:
            """A scenario has completed, and a worker is inside another one (its attempt has begun)."""
            nonlocal victim, killed_scenario
            if not completed():
                return False
            names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
            for addr, keys in client.processing().items():
                for key in keys:
                    scenario = str(key).rsplit("-", 1)[-1]
                    started = task(scenario)
                    if str(key).startswith("salesops-kill-") and started and not started.get("completed"):
                        victim, killed_scenario = names[addr], scenario
                        return True
            return False

        _wait(busy_worker, 600, "a completed scenario and a busy worker")
        before = {name: _snapshot(batch / name) for name in completed()}
        killed_at = time.time_ns()
        os.killpg(cluster["procs"][victim].pid, signal.SIGKILL)
    output, _ = proc.communicate(timeout=900)
    assert victim in ("w1", "w2") and killed_scenario not in before

    metrics = {d.name: json.loads((d / "metrics.json").read_text()) for d in batch.glob("s[0-9]")}
    assert sorted(metrics) == ["s0", "s1", "s2", "s3"], output
    # the killed scenario was run again on the other worker, or is reported failed with the reason
    killed = metrics[killed_scenario]
    info = task(killed_scenario)
    if killed["status"] == "ok":
        assert info["attempt"] >= 2 and info["completed"], info
        assert (batch / killed_scenario / "attempts" / "1").is_dir(), (
            "the dead attempt's outputs are kept aside"
        )
        assert proc.returncode == 0, output
    else:
        assert killed["error"] and proc.returncode != 0, output
    # every scenario that had completed is exactly as it was: no file rewritten, none added
    for name, files in before.items():
        assert _snapshot(batch / name) == files, f"{name} changed after the kill"
        assert all(mtime < killed_at for mtime, _ in files.values())
    summary = pd.read_parquet(batch / "summary.parquet")
    assert set(summary.index) == set(metrics) and (summary["status"] == "ok").sum() >= len(before)
