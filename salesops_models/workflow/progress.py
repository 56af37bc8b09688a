"""Progress of a batch: each finished stage or notebook of a scenario, told to the driver as it happens.

A task running in a Dask worker reports each step with :func:`report_step`: a line in the
scenario's own log, and an event on the Dask topic :data:`TOPIC` (``Worker.log_event``), which the
driver (:class:`BatchProgress`) receives while the batch runs: it writes the line to the batch's
``progress.log`` and, unless quiet, shows it above the progress bar. Outside a worker (``salesops
run``, a test, a notebook kernel) only the log line is written.

Long single solves say where they stand as they run: the territory MILPs log their incumbent and
bound now and then (:class:`~salesops_models.territory.solver.MipProgress`), and
:func:`forward_solver_progress` sends those lines of a scenario's run to the driver as well
(status ``progress``: a line in ``progress.log``, not a finished step).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: the Dask event topic of the batch's progress
TOPIC = "salesops-progress"
PROGRESS_LOG = "progress.log"


def _worker() -> Any:
    if "distributed" not in sys.modules:  # never import Dask just to find out we are not in a worker
        return None
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


def report_step(scenario: str, step: str, status: str, seconds: float, detail: str = "") -> None:
    """Tell the log (and the batch driver, inside a Dask worker) that ``step`` of ``scenario`` ended.

    Parameters
    ----------
    scenario
        Scenario name.
    step
        Stage or notebook name.
    status
        ``computed``, ``cached``, ``skipped``, ``done`` or ``failed``.
    seconds
        Wall time of the step [s].
    detail
        Anything else worth a word (e.g. the cache key).
    """
    log.info("scenario %s: %s %s in %.1f s%s", scenario, step, status, seconds, f" ({detail})" if detail else "")
    worker = _worker()
    if worker is None:
        return
    try:
        worker.log_event(TOPIC, {"scenario": scenario, "step": step, "status": status,
                                 "seconds": round(float(seconds), 2)})  # fmt: skip
    except Exception as exc:  # progress is a courtesy; it never fails a scenario
        log.debug("progress event not sent: %s", exc)


class _SolverProgressHandler(logging.Handler):
    """Sends the solver progress lines of one scenario's run to the batch driver."""

    def __init__(self, scenario: str, worker: Any):
        super().__init__(logging.INFO)
        self.scenario = scenario
        self.worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.worker.log_event(
                TOPIC, {"scenario": self.scenario, "step": "solver", "status": "progress", "detail": record.getMessage()}
            )
        except Exception:  # noqa: BLE001 - progress is a courtesy; it never fails a solve
            pass


@contextlib.contextmanager
def forward_solver_progress(scenario: str) -> Iterator[None]:
    """Inside a Dask worker, send the territory solver's progress lines to the batch driver while
    the enclosed code runs; elsewhere they only go to the log."""
    from salesops_models.territory.solver import PROGRESS_LOGGER

    worker = _worker()
    if worker is None:
        yield
        return
    handler = _SolverProgressHandler(scenario, worker)
    logger = logging.getLogger(PROGRESS_LOGGER)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


class BatchProgress:
    """The driver's end: ``progress.log`` in the batch folder, and lines above the progress bar.

    Parameters
    ----------
    batch_dir
        The batch folder.
    echo
        A function that prints one line without breaking the progress bar (``tqdm.write``), or
        None (quiet).
    """

    def __init__(self, batch_dir: Path, echo: Any = None):
        self.path = Path(batch_dir) / PROGRESS_LOG
        self.echo = echo
        self.steps = 0
        self._lock = threading.Lock()

    def __call__(self, event: tuple[float, Any]) -> None:
        _, msg = event
        if not isinstance(msg, dict):
            return
        running = msg.get("status") == "progress"  # a solve's line while it runs, not a finished step
        line = (
            f"{time.strftime('%H:%M:%S')} {msg.get('scenario')}: {msg.get('detail')}"
            if running
            else f"{time.strftime('%H:%M:%S')} {msg.get('scenario')}: {msg.get('step')} {msg.get('status')} "
            f"in {msg.get('seconds', 0):.1f} s"
        )
        with self._lock:
            self.steps += 0 if running else 1
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        if self.echo is not None:
            self.echo(line)
