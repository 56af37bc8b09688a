"""The batch's cluster refuses other processes; a batch killed at any moment stays reportable (issue 18)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from salesops_models.cli import main
from salesops_models.workflow.collect import STATUS_NOT_RUN, STATUS_PARTIAL, STATUSES, load_metrics
from salesops_models.workflow.notebooks import tiny_scenario_path

SALESOPS = str(Path(sys.executable).with_name("salesops"))

INTRUDER = """
import sys
from distributed import Client
from distributed.security import Security

address = sys.argv[1]
attempts = {
    "plain tcp": dict(address=address.replace("tls://", "tcp://")),
    "tls without certificates": dict(address=address),
    "tls with its own certificates": dict(address=address, security=Security.temporary()),
}
for label, kwargs in attempts.items():
    try:
        client = Client(timeout=4, **kwargs)
        print(label, "CONNECTED", client.run(lambda: "code ran in the worker"))
        client.close()
    except Exception as exc:
        print(label, "refused", type(exc).__name__)
"""


@pytest.mark.slow
def test_another_local_process_cannot_submit_work_to_the_batch_cluster():
    from salesops_models.workflow.batch import _client

    client, cluster, _ = _client(1, None, 1, quiet=True)
    try:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        assert client.submit(sum, [1, 2]).result(timeout=30) == 3, "the batch's own client works"
        res = subprocess.run(
            [sys.executable, "-c", INTRUDER, address], capture_output=True, text=True, timeout=120
        )
        lines = res.stdout.strip().splitlines()
        assert len(lines) == 3, res.stdout + res.stderr
        assert all("refused" in ln and "CONNECTED" not in ln for ln in lines), lines
    finally:
        client.close()
        cluster.close()


# ---- kill -9 at several moments, then `salesops report` ----------------------------------------------


def _scenarios(folder: Path) -> Path:
    """Three scenarios of the tiny company that run only the data stage: a few seconds each."""
    (folder / "base").mkdir(parents=True)
    shutil.copy(tiny_scenario_path(), folder / "base" / "tiny.yaml")
    off = "".join(f"{s}: {{enabled: false}}\n" for s in ("territory", "forecast", "pipeline", "quota", "compensation"))
    for name in ("light1", "light2", "light3"):
        (folder / f"{name}.yaml").write_text(f"extends: base/tiny.yaml\nname: {name}\n{off}")
    return folder


def _batch(folder: Path, out: Path, batch_id: str) -> subprocess.Popen:
    # its own session, so that the batch and its Dask worker processes can be killed together
    return subprocess.Popen(
        [SALESOPS, "--quiet", "batch", str(folder), "--no-notebooks", "--workers", "1", "--out", str(out)]
        + ["--batch-id", batch_id],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the batch ended before the moment to kill it: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("the moment to kill the batch never came")
        time.sleep(0.02)


def _kill_all(proc: subprocess.Popen) -> None:
    with_group = os.getpgid(proc.pid)
    proc.kill()
    try:
        os.killpg(with_group, signal.SIGKILL)  # the Dask nanny and worker processes too
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


MOMENTS: dict[str, Callable[[Path], bool]] = {
    "scenarios written, cluster not up": lambda b: len(list(b.glob("*/changes.json"))) == 3,
    "first stage finished": lambda b: any(b.glob("*/stages/data.metrics.json")),
    "summary written": lambda b: (b / "summary.parquet").exists(),
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_batch_killed_at_any_moment_is_still_reported(tmp_path, moment):
    folder = _scenarios(tmp_path / "scenarios")
    out = tmp_path / "results"
    proc = _batch(folder, out, "k")
    batch = out / "k"
    try:
        _wait_for(proc, lambda: batch.is_dir() and MOMENTS[moment](batch))
    finally:
        _kill_all(proc)
    res = CliRunner().invoke(main, ["report", str(batch)])
    assert res.exit_code == 0, res.output
    page = (batch / "index.html").read_text()
    metrics = load_metrics(batch)
    assert sorted(metrics.index) == ["light1", "light2", "light3"]
    assert set(metrics["status"]) <= set(STATUSES), metrics["status"]
    assert "failed" not in set(metrics["status"]), "a killed batch leaves no scenario 'failed'"
    for name, status in metrics["status"].items():
        assert f'data-key="{name}"' in page
        has_metrics = (batch / name / "metrics.json").exists()
        assert (status == "ok") == has_metrics, (name, status)
    if moment == "scenarios written, cluster not up":
        assert set(metrics["status"]) == {STATUS_NOT_RUN}
    else:
        assert set(metrics["status"]) & {"ok", STATUS_PARTIAL}


@pytest.mark.slow
def test_an_interrupted_batch_marks_scenarios_not_run_not_failed(tmp_path):
    folder = _scenarios(tmp_path / "scenarios")
    out = tmp_path / "results"
    proc = _batch(folder, out, "i")
    batch = out / "i"
    try:
        _wait_for(proc, lambda: batch.is_dir() and any(batch.glob("*/metrics.json")))
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            _kill_all(proc)
        else:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # any Dask process left over
            except ProcessLookupError:
                pass
    assert proc.returncode == 130, stderr
    assert "batch interrupted" in stderr and "Traceback" not in stderr
    metrics = load_metrics(batch)
    statuses = set(metrics["status"])
    assert "ok" in statuses and "failed" not in statuses, metrics["status"]
    assert statuses - {"ok"} <= {STATUS_PARTIAL, STATUS_NOT_RUN}
    assert (batch / "index.html").exists(), "the interrupted batch writes its index itself"
