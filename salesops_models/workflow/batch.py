"""Scenario batches on Dask distributed: validate all, then one task per scenario.

Each task runs the scenario's notebooks in dependency order with papermill (see
``workflow.notebooks.NOTEBOOKS``), in the worker process, one kernel at a time; then it merges the
stage metrics into ``metrics.json`` and renders the code-free ``report.html``. A notebook never
submits work back to the cluster (tasks waiting on tasks deadlock once every slot is busy).

The cluster is a ``LocalCluster(n_workers, threads_per_worker=1)`` by default, or an existing
scheduler given by ``scheduler=`` / ``DASK_SCHEDULER_ADDRESS``. Results reach ``out_root`` in one
of two ways (``results=``): workers that see the caller's results folder write into it
(``shared``); others run each scenario in a folder of their own and return it, packed, to the
caller, which writes it (``returned``). ``auto`` finds out by asking every worker to read a token
file the caller wrote.

Security: a Dask scheduler runs any function a client sends it, so the local cluster listens on
``tls://`` with throw-away certificates (``Security.temporary()``, which needs ``cryptography``)
and refuses clients without them: another local user cannot run code in the batch's workers. An
existing cluster is reached with the ``distributed.comm.tls.*`` settings of the Dask config
(``--scheduler tls://host:8786``); a plain ``tcp://`` address gets a warning (see docs/batch.md).

A failed scenario (a model raising in a notebook, a timeout, a dead kernel) is recorded with its
error and logs and the others go on; a kernel that did not start raises in the task so that Dask
retries it (``retries=2``), and a scenario whose worker dies is run again by Dask on another one.
Each run of a task is an *attempt* (``logs/task.json``): a new attempt moves a dead attempt's
partial outputs to ``attempts/<n>/``, and a scenario that completed is never run again, so a
completed scenario's results are never overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salesops_models.errors import SalesopsError, ScenarioError
from salesops_models.safe_io import atomic_write_text
from salesops_models.scenario import load_scenario, resolve_document
from salesops_models.workflow.collect import STATUS_NOT_RUN, read_metrics_file
from salesops_models.workflow.results import (
    collect_metrics,
    new_batch_dir,
    scenario_dir,
    write_resolved_scenario,
    write_summary,
)

log = logging.getLogger(__name__)

IGNORED_IN_DIFF = {"name", "description", "extends"}


@dataclass
class BatchResult:
    """What a batch produced.

    Attributes
    ----------
    batch_dir
        ``results/<batch-id>``.
    records
        One dict per scenario (in input order): ``scenario``, ``status``, ``error`` and its metrics.
    index_html
        The leadership page, or None if it could not be written (the error is logged).
    seconds
        Wall time of the whole batch [s].
    workers
        Dask workers the batch ran on.
    phases
        Wall time of each phase [s]: ``prepare`` (validation, folders), ``cluster_start``,
        ``scenarios`` (the tasks), ``cluster_close``, ``index``.
    """

    batch_dir: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    index_html: Path | None = None
    seconds: float = 0.0
    workers: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    results_mode: str = "shared"

    @property
    def failed(self) -> list[str]:
        """Names of the scenarios that did not complete."""
        return [str(r.get("scenario")) for r in self.records if r.get("status") != "ok"]


class BatchInterrupted(SalesopsError):
    """The batch was interrupted (Ctrl-C); the summary and index.html hold what finished."""


# ------------------------------------------------------------------------------------------------
# what a scenario changes versus its base
# ------------------------------------------------------------------------------------------------


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: doc}


def scenario_changes(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in which the scenario at ``path`` differs from the scenario it ``extends``.

    Both are fully resolved (defaults included) and compared key path by key path, so a change
    made through a base of the base shows too.

    Returns
    -------
    dict
        ``{"base": <base name or None>, "base_file": ..., "changes": [{"key", "base", "value"}]}``.
    """
    _, chain = resolve_document(path)
    if len(chain) < 2:
        return {"base": None, "base_file": None, "changes": []}
    base = load_scenario(chain[-2])
    this = load_scenario(path)
    a = {
        k: v
        for k, v in _flatten(base.model_dump(mode="json")).items()
        if k.split(".")[0] not in IGNORED_IN_DIFF
    }
    b = {
        k: v
        for k, v in _flatten(this.model_dump(mode="json")).items()
        if k.split(".")[0] not in IGNORED_IN_DIFF
    }
    changes = [
        {"key": k, "base": a.get(k), "value": b.get(k)}
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]
    return {"base": base.name, "base_file": Path(chain[-2]).name, "changes": changes}


# ------------------------------------------------------------------------------------------------
# the task (runs in a Dask worker process)
# ------------------------------------------------------------------------------------------------


def _task_logger(out_dir: Path, name: str) -> tuple[logging.Logger, logging.Handler]:
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"salesops_models.batch.scenario.{name}")
    handler = logging.FileHandler(out_dir / "logs" / "batch.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def run_scenario_notebooks(
    out_dir: str,
    notebooks: bool = True,
    execution_timeout: int | None = None,
    only: Sequence[str] | None = None,
    kernel_per_notebook: bool = False,
) -> dict[str, Any]:
    """Run one scenario whose ``scenario.resolved.yaml`` is already in ``out_dir``; return its record.

    Parameters
    ----------
    out_dir
        The scenario's results folder (absolute).
    notebooks
        True: execute the notebooks with papermill and render ``report.html``. False: run the stages
        in this process (``runner.run_scenario``), no notebooks, no report.
    execution_timeout
        Per-cell timeout [s]; default: each notebook's own (``NotebookSpec.timeout``).
    only
        Run only these notebooks (names), e.g. for benchmarks; default all of ``NOTEBOOKS``.
    kernel_per_notebook
        True: a fresh kernel per notebook. False (default): one kernel per scenario, its namespace
        cleared between notebooks (saves a kernel start and the imports per notebook).

    Returns
    -------
    dict
        ``metrics.json`` content plus ``scenario_seconds`` [s].

    Raises
    ------
    KernelStartError
        A kernel did not start: the task should be retried (Dask ``retries``).
    """
    from salesops_models.workflow.notebooks import (
        NOTEBOOKS,
        KernelSession,
        KernelStartError,
        NotebookFailedError,
        execute_notebook,
        notebooks_dir,
        project_kernel_name,
    )
    from salesops_models.workflow.report import publish_scenario

    out = Path(out_dir)
    resolved = out / "scenario.resolved.yaml"
    scenario = load_scenario(resolved, trusted=True)  # written by the driver after its checks
    attempt = start_attempt(out)
    if attempt is None:  # a worker lost after the scenario completed: its results stand
        return completed_record(out)
    logger, handler = _task_logger(out, scenario.name)
    if attempt > 1:
        logger.warning(
            "attempt %d: the outputs of the attempt before are in attempts/%d/", attempt, attempt - 1
        )
    t0 = time.perf_counter()
    status, error = "ok", None
    timings: dict[str, float] = {}
    try:
        if not notebooks:
            from salesops_models.workflow.runner import run_scenario

            outcome = run_scenario(scenario, out)
            status, error = outcome.status, outcome.error
            logger.info("ran in-process (no notebooks): %s", status)
        else:
            kernel = project_kernel_name()
            src = notebooks_dir()
            params = {"scenario_path": str(resolved), "out_dir": str(out), "seed": None}
            executed: list[Path] = []
            session = (
                None if kernel_per_notebook else KernelSession(kernel, log_path=out / "logs" / "kernel.log")
            )
            try:
                if session is not None:
                    t_start = time.perf_counter()
                    session.__enter__()
                    timings["kernel_start"] = time.perf_counter() - t_start
                for spec in NOTEBOOKS:
                    if only is not None and spec.name not in only:
                        continue
                    nb_out = out / "notebooks" / f"{spec.name}.ipynb"
                    logger.info("notebook %s: start (kernel %s)", spec.name, kernel)
                    try:
                        timings[spec.name] = execute_notebook(
                            src / f"{spec.name}.ipynb",
                            nb_out,
                            params,
                            kernel_name=kernel,
                            execution_timeout=execution_timeout or spec.timeout,
                            log_dir=out / "logs",
                            session=session,
                        )
                        executed.append(nb_out)
                        logger.info("notebook %s: done in %.1f s", spec.name, timings[spec.name])
                    except NotebookFailedError as exc:
                        status, error = "failed", str(exc)
                        if nb_out.exists():
                            executed.append(nb_out)
                        logger.error("notebook %s failed: %s", spec.name, exc)
                        break  # later notebooks depend on this one
            except KernelStartError as exc:
                logger.warning("kernel did not start (%s); the task will be retried", exc)
                raise
            finally:
                if session is not None:
                    session.close()
            # exports, notebooks.html and report.html (publish_scenario logs and never raises)
            for problem in publish_scenario(out, executed, status, error, link_index=True).problems:
                logger.error("%s", problem)
    except KernelStartError:
        raise
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        logger.error("scenario failed: %s\n%s", error, traceback.format_exc())
    finally:
        logger.removeHandler(handler)
        handler.close()
    seconds = time.perf_counter() - t0
    atomic_write_text(
        out / "logs" / "timings.json",
        json.dumps({"scenario_seconds": seconds, "notebook_seconds": timings}, indent=2),
    )
    record = collect_metrics(out, status, error)
    record["scenario"] = scenario.name
    record["scenario_seconds"] = round(seconds, 3)
    _write_json_atomic(out / TASK_RECORD, {"attempt": attempt, "completed": True, "status": status})
    return record


# ------------------------------------------------------------------------------------------------
# attempts: a retried task never mixes its outputs with a dead attempt's, never redoes a finished one
# ------------------------------------------------------------------------------------------------

#: per scenario: which attempt runs and whether the scenario completed (written atomically)
TASK_RECORD = "logs/task.json"
#: what a new attempt keeps in the scenario folder (everything else of an earlier attempt moves aside)
KEPT_BY_ATTEMPTS = frozenset({"scenario.resolved.yaml", "changes.json", "logs", "attempts"})


def _write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=2))


def start_attempt(out: Path) -> int | None:
    """Begin an attempt at the scenario in ``out``: its number, or None when the scenario is complete.

    A task can run more than once: Dask retries it after a kernel that did not start, and reruns it
    when the worker running it dies. An earlier attempt that did not complete leaves partial outputs;
    they move to ``attempts/<n>/`` (nothing is deleted), so every attempt starts from a clean folder.
    A scenario that completed is never run again.
    """
    marker = out / TASK_RECORD
    info = json.loads(marker.read_text()) if marker.exists() else {}
    if info.get("completed"):
        return None
    attempt = int(info.get("attempt", 0)) + 1
    leftovers = [p for p in out.iterdir() if p.name not in KEPT_BY_ATTEMPTS]
    if attempt > 1 or leftovers:
        # the folder exists for every earlier attempt, empty when it died before writing anything,
        # so the log line "outputs of the attempt before are in attempts/<n>/" always points somewhere
        dest = out / "attempts" / str(attempt - 1)
        dest.mkdir(parents=True, exist_ok=True)
        for p in leftovers:
            os.replace(p, dest / p.name)
    _write_json_atomic(marker, {"attempt": attempt, "completed": False})
    return attempt


def completed_record(out: Path) -> dict[str, Any]:
    """The record of a scenario that already completed (its ``metrics.json``)."""
    record = read_metrics_file(out)
    record["scenario"] = out.name
    timings = out / "logs" / "timings.json"
    if timings.exists():
        record["scenario_seconds"] = round(json.loads(timings.read_text())["scenario_seconds"], 3)
    return record


# ------------------------------------------------------------------------------------------------
# results returned to the client (workers without the driver's results folder)
# ------------------------------------------------------------------------------------------------


def run_scenario_returned(
    name: str,
    resolved_yaml: str,
    changes_json: str,
    notebooks: bool = True,
    execution_timeout: int | None = None,
    kernel_per_notebook: bool = False,
) -> dict[str, Any]:
    """Run one scenario in a folder of the worker's own and return its record and its folder.

    For clusters whose workers cannot write into the driver's results folder: the scenario runs in
    a temporary folder on the worker, which is packed (tar.gz, in memory) into ``archive`` and
    removed; the driver unpacks it into ``results/<batch-id>/<scenario>/``.
    """
    import io
    import shutil
    import tarfile
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="salesops-task-"))
    try:
        out = tmp / name
        out.mkdir()
        (out / "scenario.resolved.yaml").write_text(resolved_yaml, encoding="utf-8")
        (out / "changes.json").write_text(changes_json, encoding="utf-8")
        record = run_scenario_notebooks(str(out), notebooks, execution_timeout, None, kernel_per_notebook)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for p in sorted(out.rglob("*")):
                if p.is_file() and p.name not in ("scenario.resolved.yaml", "changes.json"):
                    tar.add(p, arcname=str(p.relative_to(out)))
        return {"record": record, "archive": buf.getvalue()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def unpack_returned(out: Path, archive: bytes) -> None:
    """Unpack a returned scenario folder into ``out``; refuses members that would leave it."""
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(out, filter="data")  # "data": no absolute paths, no "..", no links out


def workers_share_folder(client: Any, folder: Path) -> bool:
    """Whether every worker of ``client`` sees ``folder`` as the driver does (a token file it writes)."""
    import secrets

    token = secrets.token_hex(8)
    probe = folder / f".probe-{token}"
    probe.write_text(token)
    try:
        seen = client.run(_reads_token, str(probe), token)
    finally:
        probe.unlink(missing_ok=True)
    return bool(seen) and all(seen.values())


def _reads_token(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------
# the driver
# ------------------------------------------------------------------------------------------------


def _client(workers: int | None, scheduler: str | None, n_tasks: int, quiet: bool) -> tuple[Any, Any, int]:
    """A Dask client: to ``scheduler`` (or ``DASK_SCHEDULER_ADDRESS``), else a fresh LocalCluster on TLS.

    The local cluster gets throw-away TLS certificates held in memory by this process only, so no
    other process, of this user or another, can submit work to it. An existing scheduler is
    reached with the security of the Dask config (``distributed.comm.tls.*``).
    """
    import dask
    from distributed import Client, LocalCluster
    from distributed.security import Security

    # distributed sets its own loggers to INFO when imported; a batch shows warnings only.
    logging.getLogger("distributed").setLevel(logging.ERROR if quiet else logging.WARNING)
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        if not address.startswith("tls://"):
            log.warning(
                "Dask scheduler %s is not TLS: anyone who can reach it can run code in its workers; "
                "use tls:// with the distributed.comm.tls settings (docs/batch.md) or a private network",
                address,
            )
        client = Client(address)
        n = len(client.scheduler_info().get("workers", {}))
        log.info("connected to Dask scheduler %s (%d workers)", address, n)
        return client, None, n
    try:
        security = Security.temporary()
    except ImportError:
        raise SalesopsError(
            "the batch's local Dask cluster needs TLS certificates, which need the 'cryptography' "
            "package: pip install 'salesops-models[dask]' (or pip install cryptography)."
        ) from None
    n = workers or max(1, min(n_tasks, os.cpu_count() or 1))
    _fork_workers_from_a_preloaded_server()
    # The scheduler's plain-HTTP side server (started even without a dashboard) keeps only its
    # health check: its info pages would show task names and worker addresses to any local user.
    # One worker is started, then the others are asked for without waiting: tasks start on the first.
    with dask.config.set({"distributed.scheduler.http.routes": ["distributed.http.health"]}):
        cluster = LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            protocol="tls://",
            host="127.0.0.1",
            security=security,
            dashboard_address=None,
            # its side server on a free local port: no clash with another engineer's cluster
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR if quiet else logging.WARNING,
        )
    client = Client(
        cluster, security=security
    )  # before scaling: a Client made while a worker spawns waits for it
    if n > 1:
        cluster.scale(n)
    return client, cluster, n


class _HeartbeatFailureInOneLine(logging.Filter):
    """A worker's failed heartbeat is logged as one line, not a traceback.

    When the batch is interrupted or ends, the scheduler can close while a worker's heartbeat is in
    flight; Dask logs that with a full traceback, which reads like a crash to a planner. The message
    stays (a lost scheduler during a run is worth a line), with the exception's last line in it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Failed to communicate with scheduler"):
            exc = record.exc_info[1]
            record.msg = f"{record.msg} ({type(exc).__name__}: {exc})"
            record.exc_info, record.exc_text = None, None
        return True


# in the driver and, through the preloaded fork server, in every local worker process
logging.getLogger("distributed.worker").addFilter(_HeartbeatFailureInOneLine())


def _fork_workers_from_a_preloaded_server() -> None:
    """Start local worker processes by forking a server that has imported the package once.

    Spawned workers each import the package (seconds each, and side by side on a busy machine, many
    more); with Dask's ``forkserver`` method and the package preloaded, the first worker pays the
    import once and the others start in a fraction of a second.
    """
    import dask
    from distributed.utils import get_mp_context

    dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
    # after Dask's own call, which sets its preload list once; the server starts with the first worker
    get_mp_context().set_forkserver_preload(["distributed", "salesops_models.workflow.batch"])


def _close(client: Any, cluster: Any, phases: dict[str, float]) -> None:
    """Close the client and the local cluster (run beside the summary and index: mostly waiting)."""
    t0 = time.perf_counter()
    try:
        client.close()
        if cluster is not None:
            cluster.close()
    finally:
        phases["cluster_close"] = time.perf_counter() - t0


def run_batch(
    paths: Sequence[str | os.PathLike[str]],
    out_root: str | os.PathLike[str] = "results",
    workers: int | None = None,
    scheduler: str | None = None,
    notebooks: bool = True,
    quiet: bool = False,
    batch_id: str | None = None,
    execution_timeout: int | None = None,
    kernel_per_notebook: bool = False,
    results: str = "auto",
) -> BatchResult:
    """Validate every scenario in ``paths``, then run them as Dask tasks; write summary and index.

    Parameters
    ----------
    paths
        Scenario files and/or folders of ``*.yaml``.
    out_root
        Where ``<batch-id>/`` is created (default ``results``).
    workers
        Local worker processes (one kernel each); default: min(scenarios, CPU cores). Ignored with
        a scheduler.
    scheduler
        Address of an existing Dask scheduler (``tcp://host:8786``); default
        ``DASK_SCHEDULER_ADDRESS`` when set, else a LocalCluster.
    notebooks
        False: run the stages in-process per task (no papermill, no report.html).
    quiet
        No progress bar.
    batch_id
        Name of the batch folder (default: UTC time and a random suffix).
    execution_timeout
        Per-cell notebook timeout [s] (default: each notebook's own).
    kernel_per_notebook
        A fresh kernel for every notebook instead of one per scenario (see
        :func:`run_scenario_notebooks`).
    results
        'shared': workers write into ``out_root`` (a folder they all see); 'returned': each task
        runs in a folder of its worker and returns it to the driver, which writes it into
        ``out_root``; 'auto' (default, or ``SALESOPS_BATCH_RESULTS``): 'shared' on a LocalCluster,
        else 'shared' when every worker sees a token file the driver writes into the batch folder.

    Returns
    -------
    BatchResult
        ``failed`` lists the scenarios that did not complete; callers exit non-zero when it is not empty.

    Raises
    ------
    ScenarioError
        Any scenario is invalid: nothing runs, and the message lists every problem.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    from salesops_models.workflow.preflight import check_scenarios

    t0 = time.perf_counter()
    checked = check_scenarios(list(paths))
    if checked.errors:
        raise ScenarioError("invalid scenario(s); nothing was run:\n" + "\n".join(checked.errors))
    for warning in checked.warnings:
        log.warning("%s", warning)
    scenarios, files = checked.scenarios, checked.files
    batch_dir = new_batch_dir(out_root, batch_id).resolve()
    result = BatchResult(batch_dir)
    out_dirs: dict[str, Path] = {}
    for sc, f in zip(scenarios, files, strict=True):
        out = scenario_dir(batch_dir, sc.name)
        write_resolved_scenario(sc, out)
        atomic_write_text(out / "changes.json", json.dumps(scenario_changes(f), indent=2, default=str))
        out_dirs[sc.name] = out
    log.info("batch %s: %d scenario(s) validated", batch_dir.name, len(scenarios))
    t_phase = time.perf_counter()
    result.phases["prepare"] = t_phase - t0

    client, cluster, n_workers = _client(workers, scheduler, len(scenarios), quiet)
    result.workers = n_workers
    result.phases["cluster_start"] = time.perf_counter() - t_phase
    t_phase = time.perf_counter()
    records: dict[str, dict[str, Any]] = {}
    try:
        try:
            mode = results if results != "auto" else os.environ.get("SALESOPS_BATCH_RESULTS", "auto")
            if mode == "auto":
                mode = (
                    "shared" if cluster is not None or workers_share_folder(client, batch_dir) else "returned"
                )
            if mode not in ("shared", "returned"):
                raise ScenarioError(f"batch results mode {mode!r}: use 'shared', 'returned' or 'auto'.")
            result.results_mode = mode
            log.info("batch %s: results %s", batch_dir.name, mode)
            futures = {}
            for name, out in out_dirs.items():
                if mode == "shared":
                    args: tuple[Any, ...] = (
                        run_scenario_notebooks,
                        str(out),
                        notebooks,
                        execution_timeout,
                        None,
                        kernel_per_notebook,
                    )
                else:
                    args = (
                        run_scenario_returned,
                        name,
                        (out / "scenario.resolved.yaml").read_text(encoding="utf-8"),
                        (out / "changes.json").read_text(encoding="utf-8"),
                        notebooks,
                        execution_timeout,
                        kernel_per_notebook,
                    )
                futures[
                    client.submit(*args, key=f"salesops-{batch_dir.name}-{name}", pure=False, retries=2)
                ] = name
            bar = tqdm(total=len(futures), desc="scenarios", unit="scenario", disable=quiet)
            for fut in as_completed(futures):
                name = futures[fut]
                try:
                    record = fut.result()
                    if mode == "returned":
                        unpack_returned(out_dirs[name], record["archive"])
                        record = record["record"]
                except Exception as exc:  # retries exhausted, worker lost, ...
                    error = f"{type(exc).__name__}: {exc}"
                    logs = out_dirs[name] / "logs"
                    logs.mkdir(parents=True, exist_ok=True)
                    with open(logs / "batch.log", "a", encoding="utf-8") as fh:
                        fh.write(f"task failed after retries: {error}\n")
                    record = collect_metrics(out_dirs[name], "failed", error)
                # a finished scenario is not computed again when the worker that holds its result dies
                fut.release()
                records[name] = record
                bar.set_postfix_str(f"{name}: {record.get('status')}")
                bar.update()
                write_summary(batch_dir, [records[n] for n in out_dirs if n in records])  # survives a crash
            bar.close()
        finally:
            result.phases["scenarios"] = time.perf_counter() - t_phase
            t_phase = time.perf_counter()
            # Interrupted (Ctrl-C, an error in the driver): a scenario without a record is 'partial' when
            # it started and 'not run' when it never did, never 'failed'.
            result.records = [
                records.get(n) or read_metrics_file(d) | {"scenario": n} for n, d in out_dirs.items()
            ]
            interrupted = len(records) < len(out_dirs)
            # the cluster closes beside the summary and the index (closing is mostly waiting)
            closer = threading.Thread(
                target=_close, args=(client, cluster, result.phases), name="salesops-close"
            )
            closer.start()
            try:
                t_phase = time.perf_counter()
                write_summary(batch_dir, result.records)
                try:
                    from salesops_models.workflow.report import build_index

                    result.index_html = build_index(batch_dir)
                except Exception as exc:
                    log.error("index.html not written: %s\n%s", exc, traceback.format_exc())
                result.phases["index"] = time.perf_counter() - t_phase
                if interrupted:
                    log.warning(
                        "batch %s interrupted: %d scenario(s) not run, %d interrupted; index rebuilt",
                        batch_dir.name,
                        sum(r.get("status") == STATUS_NOT_RUN for r in result.records),
                        sum(r.get("status") not in ("ok", "failed", STATUS_NOT_RUN) for r in result.records),
                    )
            finally:
                closer.join()
    except KeyboardInterrupt:
        done = sum(r.get("status") in ("ok", "failed") for r in result.records)
        raise BatchInterrupted(
            f"batch interrupted: {done} of {len(out_dirs)} scenario(s) finished; the others are marked "
            f"'partial' or 'not run' in {batch_dir / 'index.html'}."
        ) from None
    result.seconds = time.perf_counter() - t0
    if result.failed:
        log.warning(
            "batch %s: %d scenario(s) failed: %s",
            batch_dir.name,
            len(result.failed),
            ", ".join(result.failed),
        )
    return result
