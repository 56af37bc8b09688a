"""The notebooks: committed clean, thin, and each runs under papermill on the tiny scenario."""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from salesops_models.errors import SalesopsError
from salesops_models.workflow.notebooks import (
    INTERACTIVE_NOTEBOOKS,
    NOTEBOOKS,
    KernelSession,
    NotebookFailedError,
    execute_notebook,
    notebooks_dir,
    project_kernel_name,
    tiny_scenario_path,
)
from salesops_models.workflow.runner import available_stages

NB_DIR = notebooks_dir()
NAMES = [spec.name for spec in NOTEBOOKS]
#: every shipped notebook: the batch's and the interactive ones (never run by the batch)
ALL_NAMES = [*NAMES, *INTERACTIVE_NOTEBOOKS]


def _nb(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)


# ------------------------------------------------------------------------------------------------
# committed state (no kernel)
# ------------------------------------------------------------------------------------------------


def test_every_notebook_is_shipped_and_listed():
    shipped = sorted(p.stem for p in NB_DIR.glob("*.ipynb"))
    assert shipped == sorted(ALL_NAMES)
    assert not set(NAMES) & set(INTERACTIVE_NOTEBOOKS), "an interactive notebook must not run in the batch"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_committed_without_outputs(name):
    raw = json.loads((NB_DIR / f"{name}.ipynb").read_text())
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name}: a code cell has outputs; strip them (nbstripout)"
            assert cell["execution_count"] is None, f"{name}: execution counts must be cleared"
        assert "papermill" not in cell.get("metadata", {}), f"{name}: papermill metadata committed"
    assert "papermill" not in raw["metadata"]
    nbformat.validate(nbformat.reads(json.dumps(raw), as_version=4))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_parameters_cell_holds_plain_values_only(name):
    nb = _nb(name)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one cell tagged 'parameters'"
    tree = ast.parse(tagged[0].source)
    assigned = {}
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, f"{name}: only 'name = value' lines"
        value = ast.literal_eval(stmt.value)  # raises for anything but a literal
        assert isinstance(value, str | int | float | bool | type(None))
        assigned[stmt.targets[0].id] = value
    # an interactive notebook also has the switch of its headless run, off as an analyst opens it
    extra = {"exercise_levers": False} if name in INTERACTIVE_NOTEBOOKS else {}
    assert set(assigned) == {"scenario_path", "out_dir", "seed", *extra}
    assert {k: assigned[k] for k in extra} == extra
    assert assigned["out_dir"] is None
    assert (NB_DIR / assigned["scenario_path"]).resolve() == tiny_scenario_path().resolve()


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_thin(name):
    """Presentation only: no model imports or loops over data in a notebook; plumbing cells are tagged."""
    nb = _nb(name)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for forbidden in ("import numpy", "pyomo", "statsmodels", "def run(", "for _ in range"):
        assert forbidden not in code, f"{name}: {forbidden!r} belongs in the package"
    plumbing = [c for c in nb.cells if "notebook_context(" in c.source]
    assert len(plumbing) == 1 and "remove-cell" in plumbing[0].metadata.get("tags", [])
    assert sum(len(c.source.splitlines()) for c in nb.cells if c.cell_type == "code") < 60


@pytest.mark.parametrize("name", INTERACTIVE_NOTEBOOKS)
def test_interactive_notebooks_only_build_widgets(name):
    """Widgets and their wiring only: the runs, the figures and the checks are the package's
    (``workflow.whatif``, tested without a browser in tests/test_whatif.py)."""
    nb = _nb(name)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for forbidden in ("import numpy", "import pandas", "pyomo", "run_scenario", "model_dump", "read_parquet"):
        assert forbidden not in code, f"{name}: {forbidden!r} belongs in the package"
    assert "notebook_context(" not in code, f"{name}: an interactive notebook runs no stage of its own"
    assert "ipywidgets" in code and ".observe(" in code
    assert sum(len(c.source.splitlines()) for c in nb.cells if c.cell_type == "code") < 60


def test_parameters_must_be_plain_values(tmp_path):
    with pytest.raises(SalesopsError, match="seed=.*int64"):
        execute_notebook(NB_DIR / "scenario_summary.ipynb", tmp_path / "x.ipynb", {"seed": np.int64(3)})
    with pytest.raises(SalesopsError, match="pass only str, int, float, bool or None"):
        execute_notebook(NB_DIR / "scenario_summary.ipynb", tmp_path / "x.ipynb", {"seed": (1, 2)})


# ------------------------------------------------------------------------------------------------
# execution (kernels)
# ------------------------------------------------------------------------------------------------


def _tiny_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _printed(path: Path) -> str:
    return nbformat.read(path, as_version=4).cells[-1].outputs[0]["text"].strip()


@pytest.fixture(scope="module")
def session():
    """One kernel for this module's notebooks, as a batch task has one per scenario (started while
    a Dask scheduler address is set, as on a worker of a remote cluster)."""
    old = os.environ.get("DASK_SCHEDULER_ADDRESS")
    os.environ["DASK_SCHEDULER_ADDRESS"] = "tcp://127.0.0.1:1"
    try:
        session = KernelSession(project_kernel_name()).__enter__()
    finally:
        if old is None:
            del os.environ["DASK_SCHEDULER_ADDRESS"]
        else:
            os.environ["DASK_SCHEDULER_ADDRESS"] = old
    yield session
    session.close()


def test_kernel_runs_the_project_interpreter(tmp_path, session):
    src = _tiny_notebook(tmp_path / "which.ipynb", "import sys\nprint(sys.executable)")
    execute_notebook(src, tmp_path / "out.ipynb", {}, execution_timeout=60, session=session)
    assert Path(_printed(tmp_path / "out.ipynb")).resolve() == Path(sys.executable).resolve()


def test_kernel_cannot_find_the_cluster(tmp_path, session):
    """A notebook never submits to the batch's cluster: its kernel has no scheduler address."""
    src = _tiny_notebook(tmp_path / "env.ipynb", "import os\nprint(os.environ.get('DASK_SCHEDULER_ADDRESS'))")
    execute_notebook(src, tmp_path / "env.out.ipynb", {}, execution_timeout=60, session=session)
    assert _printed(tmp_path / "env.out.ipynb") == "None"


def test_shared_kernel_clears_variables_between_notebooks(tmp_path, session):
    a = _tiny_notebook(tmp_path / "a.ipynb", "leftover = 41")
    b = _tiny_notebook(tmp_path / "b.ipynb", "import os\nprint('leftover' in dir(), os.getpid())")
    execute_notebook(a, tmp_path / "a.out.ipynb", {}, session=session)
    execute_notebook(b, tmp_path / "b1.out.ipynb", {}, session=session)
    execute_notebook(b, tmp_path / "b2.out.ipynb", {}, session=session)
    first, second = _printed(tmp_path / "b1.out.ipynb").split(), _printed(tmp_path / "b2.out.ipynb").split()
    assert first[0] == "False", "a variable of the previous notebook survived the reset"
    assert first[1] == second[1], "the notebooks did not share one kernel"


def test_failing_cell_raises_with_notebook_and_error(tmp_path, session):
    bad = _tiny_notebook(tmp_path / "bad.ipynb", "leftover = 1", "raise ValueError('boom in cell')")
    with pytest.raises(
        NotebookFailedError, match=r"bad.ipynb: cell 2 raised ValueError: boom in cell \(executed notebook"
    ):
        execute_notebook(bad, tmp_path / "bad.out.ipynb", {}, execution_timeout=60, session=session)
    assert (tmp_path / "bad.out.ipynb").exists(), "the executed notebook with the traceback is kept"
    check = _tiny_notebook(tmp_path / "check.ipynb", "print('leftover' in dir())")
    execute_notebook(check, tmp_path / "check.out.ipynb", {}, session=session)
    assert _printed(tmp_path / "check.out.ipynb") == "False", "namespace not cleared after a failure"


# Every notebook's papermill run on the tiny scenario, in the batch's own way (one kernel per
# scenario, namespace cleared between notebooks), is checked notebook by notebook in
# tests/test_batch.py::test_every_notebook_ran_under_papermill (one run serves both tests).


@pytest.mark.slow
def test_defaults_run_the_tiny_scenario(tmp_path):
    """An analyst opens the notebook and runs it as it is: no parameters passed at all."""
    execute_notebook(NB_DIR / "territory_design.ipynb", tmp_path / "t.ipynb", {}, execution_timeout=300)
    nb = nbformat.read(tmp_path / "t.ipynb", as_version=4)
    assert not [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    if "territory" in available_stages():
        assert "territory_balance_cv" in text


@pytest.mark.slow
def test_whatif_notebook_runs_headless_and_moves_every_lever(tmp_path):
    """The what-if notebook under papermill (no browser): ``exercise_levers`` sets each widget once,
    its callback re-runs the tiny scenario through the cache, and the figures reach the cell."""
    out = tmp_path / "whatif.ipynb"
    execute_notebook(
        NB_DIR / "whatif.ipynb",
        out,
        {"out_dir": str(tmp_path / "runs"), "exercise_levers": True},
        execution_timeout=600,
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]
    summaries = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    # the first run, then one per lever (plan, target, admin time, balance tolerance)
    assert len(summaries) == 5, summaries
    assert not [s for s in summaries if "Not applied" in s]
    recomputed = [s.split("Recomputed: ")[1].split(";")[0] for s in summaries]
    assert recomputed[0].startswith("data, territory")  # a cold cache: every stage
    assert recomputed[1] == "compensation"  # another plan: the cost only
    assert recomputed[2] == "quota, compensation"  # the target: quotas and cost
    assert recomputed[3].startswith("pipeline")  # admin time: the pipeline onwards
    assert "territory" in recomputed[4]  # the balance band: every stage from territory on
    # the runs went to out_dir; only the latest and the first are kept
    assert len(list((tmp_path / "runs").glob("run-*"))) == 2


def test_shell_channel_waits_in_slices():
    """A reply the first wait missed is read by the next slice, long before the cell timeout; with no
    reply at all the wait still ends at the whole timeout (jupyter/nbclient#312 workaround)."""
    import asyncio
    import queue
    import time
    from types import SimpleNamespace

    from salesops_models.workflow.notebooks import _poll_shell_in_slices

    calls = []

    async def get_msg(timeout=None):
        calls.append(timeout)
        await asyncio.sleep(min(timeout, 0.05))  # each wait gives up after its slice (shortened here)
        if len(calls) < 3:
            raise queue.Empty  # the reply's wake-up was missed
        return {"msg": "reply"}

    kc = SimpleNamespace(shell_channel=SimpleNamespace(get_msg=get_msg))
    _poll_shell_in_slices(kc, slice_seconds=0.05)
    t0 = time.monotonic()
    assert asyncio.run(kc.shell_channel.get_msg(timeout=600)) == {"msg": "reply"}
    assert time.monotonic() - t0 < 5 and len(calls) == 3 and max(calls) <= 0.05

    async def never(timeout=None):
        await asyncio.sleep(timeout)
        raise queue.Empty

    kc = SimpleNamespace(shell_channel=SimpleNamespace(get_msg=never))
    _poll_shell_in_slices(kc, slice_seconds=0.05)
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        asyncio.run(kc.shell_channel.get_msg(timeout=0.3))
    assert 0.29 <= time.monotonic() - t0 < 2
