"""Parameterised notebooks: what runs inside them, and how the batch executes them with papermill.

Two halves:

* **Inside a notebook** (the kernel): :func:`notebook_context` turns the plain values of the
  ``parameters`` cell (``scenario_path``, ``out_dir``, ``seed``) into a
  :class:`~salesops_models.workflow.context.StageContext`, runs the upstream stages that have not
  run yet for that output folder, and logs to ``out_dir/logs/``. :func:`run_stage_if_available`
  runs the notebook's own stage, or notes that the stage is not part of this installation.
* **Outside** (a Dask worker or a test): :func:`execute_notebook` runs one notebook with papermill
  (absolute paths, ``cwd=None``, a kernel bound to this interpreter, an execution timeout) and
  turns a kernel that would not start into :class:`KernelStartError`, so the caller can retry.

Notebooks hold presentation only: every computation is a stage of the package.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salesops_models.errors import SalesopsError
from salesops_models.scenario import load_scenario
from salesops_models.workflow.context import STAGE_ORDER, StageContext
from salesops_models.workflow.contracts import check_run_order
from salesops_models.workflow.results import write_resolved_scenario

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotebookSpec:
    """One notebook of a scenario run: its file stem and the stage it runs (None: reads only)."""

    name: str
    stage: str | None
    timeout: int  # execution timeout of one cell [s]


# Dependency order: a notebook may read the tables of the notebooks before it. Territory design
# also runs the ``data`` stage (as its upstream stage), so the data stage has no notebook.
NOTEBOOKS: tuple[NotebookSpec, ...] = (
    NotebookSpec("territory_design", "territory", 900),
    NotebookSpec("revenue_forecast", "forecast", 900),
    NotebookSpec("pipeline_simulation", "pipeline", 900),
    NotebookSpec("quota_setting", "quota", 900),
    NotebookSpec("commission_cost", "compensation", 900),
    NotebookSpec("scenario_summary", None, 300),
)

#: Interactive notebooks: opened by an analyst (``make lab``), never run by the scenario batch. They
#: keep the batch notebooks' rules (committed clean, plain ``parameters`` cell, thin) and run under
#: papermill too (their tests do so), but run no stage of their own through ``notebook_context``.
INTERACTIVE_NOTEBOOKS: tuple[str, ...] = ("whatif",)

PLAIN_TYPES = (str, int, float, bool, type(None))

# Kernel command-line options: an in-memory IPython history (no sqlite lock between parallel
# kernels, as nbclient does by default) and no TCP-encryption warning on every start.
KERNEL_ARGS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]


class KernelStartError(SalesopsError):
    """A notebook kernel did not start (port race, slow start): the run may be retried as it is."""


class NotebookFailedError(SalesopsError):
    """A notebook raised in one of its cells, timed out, or its kernel died while running."""


# ------------------------------------------------------------------------------------------------
# paths
# ------------------------------------------------------------------------------------------------


def notebooks_dir() -> Path:
    """The folder of the shipped notebooks: ``$SALESOPS_NOTEBOOKS`` or ``<repo>/notebooks``."""
    env = os.environ.get("SALESOPS_NOTEBOOKS")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "notebooks"
    if not path.is_dir():
        raise SalesopsError(
            f"{path}: notebooks folder not found; run from a source checkout or set SALESOPS_NOTEBOOKS "
            "to the folder holding territory_design.ipynb and the other notebooks."
        )
    return path


def tiny_scenario_path() -> Path:
    """The tiny scenario the notebooks run by default (``notebooks/tiny.yaml``)."""
    return notebooks_dir() / "tiny.yaml"


def _resolve_scenario_path(scenario_path: str | os.PathLike[str]) -> Path:
    """A relative path is tried against the working directory, then the notebooks folder.

    JupyterLab starts a kernel in the notebook's folder, papermill with ``cwd=None`` in the
    caller's: the fallback lets the default ``"tiny.yaml"`` work in both.
    """
    path = Path(scenario_path).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    candidate = notebooks_dir() / path
    if candidate.exists():
        return candidate.resolve()
    raise SalesopsError(
        f"scenario_path {str(scenario_path)!r}: file not found (looked in {Path.cwd()} and {notebooks_dir()}); "
        "set scenario_path in the notebook's parameters cell to an existing scenario YAML."
    )


# ------------------------------------------------------------------------------------------------
# inside a notebook
# ------------------------------------------------------------------------------------------------


def stage_available(name: str) -> bool:
    """Whether the module of stage ``name`` exists in this installation."""
    from salesops_models.workflow.runner import available_stages

    return name in available_stages()


def _stage_done(out_dir: Path, stage: str) -> bool:
    return (out_dir / "stages" / f"{stage}.metrics.json").exists()


def _attach_log_file(out_dir: Path, name: str) -> None:
    """Log the package's INFO messages of this kernel to ``out_dir/logs/notebook-<name>.log``."""
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    path = (out_dir / "logs" / f"notebook-{name}.log").resolve()
    pkg = logging.getLogger("salesops_models")
    for h in pkg.handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path:
            return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    pkg.addHandler(handler)
    if pkg.getEffectiveLevel() > logging.INFO:
        pkg.setLevel(logging.INFO)


def notebook_context(
    scenario_path: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str] | None,
    stage: str | None,
    seed: int | None = None,
) -> StageContext:
    """The context of a notebook's stage, with every upstream stage already run.

    Parameters
    ----------
    scenario_path
        Scenario YAML (absolute, relative to the working directory, or relative to the notebooks
        folder). None: the tiny scenario ``notebooks/tiny.yaml``.
    out_dir
        Results folder of this scenario. None: a fresh temporary folder, so that a notebook opened
        on its own recomputes its upstream stages from the scenario as it is now. When the folder
        already holds ``scenario.resolved.yaml`` (a batch wrote it), that file is the scenario.
    stage
        The notebook's own stage; the stages before it in ``STAGE_ORDER`` that have no metrics
        file in ``out_dir/stages/`` yet are run first. None: no stage (a summary notebook).
    seed
        Overrides the scenario's master seed when given (only when ``out_dir`` has no resolved
        scenario yet).

    Returns
    -------
    StageContext
        For ``stage`` (or for ``data`` when ``stage`` is None).
    """
    if stage is not None and stage not in STAGE_ORDER:
        raise SalesopsError(f"notebook stage {stage!r} is not a stage; stages are {', '.join(STAGE_ORDER)}.")
    if seed is not None and not isinstance(seed, int | float | str):
        raise SalesopsError(f"parameter seed={seed!r}: must be an integer or None.")
    out = (
        Path(out_dir).expanduser().resolve()
        if out_dir
        else Path(tempfile.mkdtemp(prefix="salesops-notebook-"))
    )
    out.mkdir(parents=True, exist_ok=True)
    resolved = out / "scenario.resolved.yaml"
    if not resolved.exists():
        scenario = load_scenario(_resolve_scenario_path(scenario_path or tiny_scenario_path()))
        if seed is not None:
            scenario.seed = int(seed)
        write_resolved_scenario(scenario, out)
    elif seed is not None:
        log.warning("%s exists; parameter seed=%s is ignored (the resolved scenario wins)", resolved, seed)
    _attach_log_file(out, stage or "summary")
    ctx = StageContext.from_paths(resolved, out, stage or "data")
    from salesops_models.workflow.runner import planned_stages

    check_run_order(planned_stages(ctx.scenario))  # refused before any stage runs, as in a batch
    upstream = STAGE_ORDER[: STAGE_ORDER.index(stage)] if stage else STAGE_ORDER
    for name in upstream:
        if not _stage_done(out, name):
            run_stage_if_available(ctx, name)
    return ctx


def run_stage_if_available(ctx: StageContext, name: str) -> dict[str, Any]:
    """Run stage ``name`` (see ``runner.run_stage``) or, when its module does not exist, skip it.

    Returns the stage's metrics; a missing stage returns ``{"<name>_missing": True}`` and logs a
    warning, so the notebook can say so instead of failing.
    """
    from salesops_models.workflow.runner import run_stage

    if not stage_available(name):
        log.warning("stage %s is not part of this installation yet; skipped", name)
        return {f"{name}_missing": True}
    log.info("running stage %s of scenario %s", name, ctx.scenario.name)
    return run_stage(ctx, name)


# ------------------------------------------------------------------------------------------------
# outside: papermill
# ------------------------------------------------------------------------------------------------


def _kernel_runs_this_interpreter(argv0: str) -> bool:
    # jupyter_client replaces a bare "python"/"python3"/"python3.X" by sys.executable.
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    if argv0 in bare:
        return True
    try:
        return Path(argv0).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


def project_kernel_name() -> str:
    """A kernelspec name whose kernel runs this very interpreter (the project's ``.venv``).

    ``python3`` when it resolves to ``sys.executable``; otherwise (a stale user kernelspec
    shadowing it, jupyter/jupyter_client#269) a ``salesops-<hash>`` kernelspec is installed into
    ``sys.prefix`` pointing at ``sys.executable`` and its name returned.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    try:
        spec = ksm.get_kernel_spec("python3")
        if spec.argv and _kernel_runs_this_interpreter(spec.argv[0]):
            return "python3"
    except NoSuchKernel:
        pass
    import hashlib

    name = "salesops-" + hashlib.sha1(sys.executable.encode()).hexdigest()[:8]
    try:
        spec = ksm.get_kernel_spec(name)
        if spec.argv and _kernel_runs_this_interpreter(spec.argv[0]):
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=name, display_name=f"salesops ({sys.executable})", prefix=sys.prefix)
    log.info("installed kernelspec %s for %s", name, sys.executable)
    return name


class KernelSession:
    """One kernel that runs a scenario's notebooks one after the other (a context manager).

    A kernel start costs seconds (process start, imports of pandas, matplotlib and the package);
    a scenario runs six notebooks, so it starts one kernel and clears the namespace
    (``%reset -f``) between notebooks. Imported modules stay loaded, variables do not: each
    notebook still runs as if alone (the notebook tests run each one in a fresh kernel).

    Parameters
    ----------
    kernel_name
        Kernelspec (default :func:`project_kernel_name`).
    start_timeout
        Seconds to wait for the kernel to answer [s].
    log_path
        File that receives the kernel process's own stdout and stderr (what bypasses the notebook:
        C-level solver output, the kernel's shutdown messages); default: the caller's.

    Raises
    ------
    KernelStartError
        On entering, when the kernel does not start or answer in time.
    """

    def __init__(
        self,
        kernel_name: str | None = None,
        start_timeout: int = 120,
        log_path: str | os.PathLike[str] | None = None,
    ):
        self.kernel_name = kernel_name or project_kernel_name()
        self.start_timeout = start_timeout
        self.log_path = Path(log_path) if log_path is not None else None
        self._log: Any = None
        self.km: Any = None

    def __enter__(self) -> KernelSession:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self.km = AsyncKernelManager(kernel_name=self.kernel_name)
        try:
            # The kernel must not find the batch's cluster: a notebook never submits work to it.
            env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
            streams = {}
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
                streams = {"stdout": self._log, "stderr": self._log}
            run_sync(self.km.start_kernel)(extra_arguments=KERNEL_ARGS, env=env, **streams)
            self._run("pass")  # waits until the kernel answers
        except Exception as exc:
            self.close()
            raise KernelStartError(
                f"kernel {self.kernel_name} did not start: {type(exc).__name__}: {exc}"
            ) from exc
        return self

    def _run(self, code: str) -> None:
        from jupyter_client import BlockingKernelClient

        kc = BlockingKernelClient()
        kc.load_connection_info(self.km.get_connection_info())
        # No heartbeat channel: a client without a manager would read "not beating yet" as dead.
        kc.start_channels(hb=False)
        try:
            kc.wait_for_ready(timeout=self.start_timeout)
            kc.execute_interactive(code, timeout=self.start_timeout, output_hook=lambda msg: None)
        finally:
            kc.stop_channels()

    def reset(self) -> None:
        """Delete every variable of the kernel's namespace (``%reset -f``)."""
        self._run("%reset -f")

    @property
    def alive(self) -> bool:
        from jupyter_core.utils import run_sync

        return self.km is not None and bool(run_sync(self.km.is_alive)())

    def close(self) -> None:
        from jupyter_core.utils import run_sync

        if self.km is not None and self.km.has_kernel:
            try:
                run_sync(self.km.shutdown_kernel)(now=False)
            except Exception as exc:  # the kernel may already be gone
                log.warning("kernel shutdown: %s", exc)
        self.km = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __exit__(self, *exc: object) -> None:
        self.close()


_SHARED_ENGINE = "salesops-shared-kernel"
_OWN_KERNEL_ENGINE = "salesops-nbclient"
#: Longest single wait of the notebook client on the kernel's shell channel [s] (see
#: :func:`_poll_shell_in_slices`).
SHELL_POLL_SLICE = 1.0


def _poll_shell_in_slices(kc: Any, slice_seconds: float = SHELL_POLL_SLICE) -> None:
    """Make ``kc``'s shell channel wait for a message in slices of ``slice_seconds``.

    nbclient waits for a cell's reply with one poll of the whole cell timeout. With widgets on the
    page that poll can miss the reply's wake-up: the kernel sits idle and the cell "runs" until the
    timeout (seen here: the what-if notebook's widget cell took exactly its 600 s timeout, the
    reply waiting; jupyter/nbclient#312). A fresh poll sees a message that is already there, so
    waiting in short slices bounds such a miss to one slice. The total timeout is unchanged.
    """
    import queue

    channel = kc.shell_channel
    wait = channel.get_msg

    async def get_msg(timeout: float | None = None) -> dict[str, Any]:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_seconds if end is None else min(slice_seconds, max(end - time.monotonic(), 0.0))
            try:
                return await wait(timeout=left)
            except queue.Empty:
                if end is not None and time.monotonic() >= end:
                    raise

    channel.get_msg = get_msg


def _notebook_client_class() -> type:
    """papermill's notebook client whose shell channel waits in slices (:func:`_poll_shell_in_slices`)."""
    from papermill.clientwrap import PapermillNotebookClient

    class SlicedPollClient(PapermillNotebookClient):
        async def async_start_new_kernel_client(self) -> Any:
            kc = await super().async_start_new_kernel_client()
            _poll_shell_in_slices(kc)
            return kc

    return SlicedPollClient


def _register_engines() -> None:
    """Two papermill engines with the sliced-poll client: one for a kernel of its own (papermill's
    nbclient engine otherwise) and one for a kernel the caller owns, which then stops its client's
    channels (papermill leaves them open when it does not own the kernel, which leaks zmq sockets
    and delays the worker's exit) and leaves the kernel running."""
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    if _SHARED_ENGINE in papermill_engines._engines:
        return
    client_class = _notebook_client_class()

    class OwnKernelEngine(NBClientEngine):
        stop_channels = False

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: int | None = None,
            **kwargs: Any,
        ) -> Any:
            kwargs = remove_args(["input_path"], **kwargs)
            safe = remove_args(["timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                safe,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logging.getLogger("papermill"),
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = client_class(nb_man, **final)
            try:
                return client.execute()
            finally:
                if cls.stop_channels and client.kc is not None:
                    client.kc.stop_channels()

    class SharedKernelEngine(OwnKernelEngine):
        stop_channels = True

    papermill_engines.register(_OWN_KERNEL_ENGINE, OwnKernelEngine)
    papermill_engines.register(_SHARED_ENGINE, SharedKernelEngine)


def _check_parameters(parameters: dict[str, Any]) -> None:
    for key, value in parameters.items():
        if not isinstance(value, PLAIN_TYPES) or type(value).__module__ == "numpy":
            raise SalesopsError(
                f"notebook parameter {key}={value!r} ({type(value).__name__}): pass only str, int, float, bool or "
                "None (cast numpy values with int()/float(); papermill cannot store the others)."
            )


def _is_kernel_start_failure(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    markers = ("Kernel didn't respond", "Address already in use", "ZMQError", "Kernel died before replying")
    return type(exc).__name__ == "ZMQError" or any(m in text for m in markers)


def execute_notebook(
    notebook: str | os.PathLike[str],
    output: str | os.PathLike[str],
    parameters: dict[str, Any],
    *,
    kernel_name: str | None = None,
    execution_timeout: int | None = 900,
    start_timeout: int = 120,
    log_dir: str | os.PathLike[str] | None = None,
    session: KernelSession | None = None,
) -> float:
    """Execute ``notebook`` into ``output`` with papermill; return the wall time [s].

    Runs with absolute paths and ``cwd=None`` (papermill's ``cwd`` is a process-wide ``chdir``),
    a kernel bound to this interpreter, and a per-cell ``execution_timeout`` [s]. Cell output
    streams go to ``log_dir/<notebook>.stdout.log`` / ``.stderr.log`` when ``log_dir`` is given.
    With ``session``, the notebook runs in that session's kernel (its namespace is cleared after);
    without, in a kernel of its own.

    Raises
    ------
    KernelStartError
        The kernel did not start; nothing ran, so the same call may simply be retried.
    NotebookFailedError
        A cell raised (the executed notebook, with the traceback, is still written to ``output``),
        a cell exceeded ``execution_timeout``, or the kernel died.
    """
    import papermill as pm

    _check_parameters(parameters)
    _register_engines()
    nb_in = Path(notebook).resolve()
    nb_out = Path(output).resolve()
    nb_out.parent.mkdir(parents=True, exist_ok=True)
    streams: dict[str, Any] = {}
    files = []
    if log_dir is not None:
        ld = Path(log_dir).resolve()
        ld.mkdir(parents=True, exist_ok=True)
        for kind in ("stdout", "stderr"):
            fh = open(ld / f"{nb_in.stem}.{kind}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
            files.append(fh)
            streams[f"{kind}_file"] = fh
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb_in),
            str(nb_out),
            parameters=parameters,
            kernel_name=session.kernel_name
            if session is not None
            else (kernel_name or project_kernel_name()),
            cwd=None,
            progress_bar=False,
            log_output=False,
            execution_timeout=execution_timeout,
            start_timeout=start_timeout,
            request_save_on_cell_execute=True,
            extra_arguments=KERNEL_ARGS,
            **(
                {"km": session.km, "engine_name": _SHARED_ENGINE}
                if session is not None
                else {"engine_name": _OWN_KERNEL_ENGINE}
            ),
            **streams,
        )
    except pm.PapermillExecutionError as exc:
        raise NotebookFailedError(
            f"{nb_in.name}: cell {exc.cell_index + 1} raised {exc.ename}: {exc.evalue} (executed notebook with the "
            f"traceback: {nb_out})"
        ) from None
    except Exception as exc:
        if _is_kernel_start_failure(exc):
            raise KernelStartError(
                f"{nb_in.name}: the kernel did not start: {type(exc).__name__}: {exc}"
            ) from exc
        kind = type(exc).__name__
        hint = ""
        if kind == "CellTimeoutError":
            hint = f" (a cell ran longer than execution_timeout={execution_timeout} s)"
        elif kind == "DeadKernelError":
            hint = " (the kernel died: out of memory?)"
        raise NotebookFailedError(f"{nb_in.name}: {kind}: {exc}{hint}") from exc
    finally:
        for fh in files:
            fh.close()
        if session is not None and session.alive:
            session.reset()  # the next notebook starts from an empty namespace, even after a failure
    return time.perf_counter() - t0
