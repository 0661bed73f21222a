"""Each notebook of notebooks/ executed once per test session, shared by the tests that need it.

tests/teaching/test_notebooks.py checks what each notebook shows; tests/test_docs.py builds the docs from the same
executed copies (myst-nb does not execute them again). Whichever asks first executes the notebook; a
notebook that failed is not executed again either (the error is raised to every caller).

The kernel runs in a folder of its own (``tmp_path_factory``), where the notebooks write their simulated
nights, with ``TMPDIR`` pointing there too, and with this checkout first on ``PYTHONPATH`` so that it imports
the package under test (also in dask's worker processes), not another installed copy.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Seconds one cell may run before the execution is stopped (a notebook should take well under 60 s).
CELL_TIMEOUT = 240
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@dataclass
class ExecutedNotebook:
    """A notebook after execution: the executed copy, its working folder and the time it took."""

    path: Path
    notebook: object  # nbformat.NotebookNode
    workdir: Path
    seconds: float
    error: BaseException | None = field(default=None, repr=False)
    #: Wall-clock times (``time.time()``) of the run's start, the kernel ready, and the kernel shut down.
    marks: dict = field(default_factory=dict, repr=False)

    @property
    def outputs(self) -> list[dict]:
        return [o for c in self.notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]

    def slowest_cell(self) -> tuple[int, float] | None:
        """(index, seconds) of the cell that took longest from the kernel's start of it to its reply
        (nbclient's timing metadata), to tell a slow cell from a slow kernel start or shutdown."""
        from datetime import datetime

        found = []
        for i, cell in enumerate(self.notebook.cells):
            timing = cell.get("metadata", {}).get("execution", {})
            start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
            if start and end:
                seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                           - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
                found.append((i, seconds))
        return max(found, key=lambda f: f[1]) if found else None

    def phases(self) -> str:
        """Where the time went: starting the kernel, the cells (first busy to last idle), shutting it down."""
        from datetime import datetime

        def stamp(text):
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

        timings = [c["metadata"]["execution"] for c in self.notebook.cells
                   if "iopub.status.busy" in c.get("metadata", {}).get("execution", {})]
        if not timings or not {"start", "ready", "done"} <= set(self.marks):
            return ""
        first = stamp(timings[0]["iopub.status.busy"])
        last = stamp(timings[-1].get("iopub.status.idle", timings[-1]["iopub.status.busy"]))
        return (f"kernel start {self.marks['ready'] - self.marks['start']:.1f} s, before the first cell "
                f"{first - self.marks['ready']:.1f} s, cells {last - first:.1f} s, shutdown {self.marks['done'] - last:.1f} s")

    @property
    def errors(self) -> list[dict]:
        return [o for o in self.outputs if o.get("output_type") == "error"]

    @property
    def text(self) -> str:
        """Everything the code cells printed (stdout and stderr)."""
        return "".join(o.get("text", "") for o in self.outputs if o.get("output_type") == "stream")

    def count(self, mime: str) -> int:
        """How many outputs carry ``mime`` (``image/png`` for plots, the widget-view type for widgets)."""
        return sum(mime in o.get("data", {}) for o in self.outputs)


#: Executed notebooks of this session, by source path (what the terminal summary reports).
EXECUTED: dict[Path, ExecutedNotebook] = {}


#: Tag of the cells the tests append to a notebook (see TEST_CELLS).
TEST_ONLY = "test-only"


def _test_cells() -> dict[str, str]:
    from notebook_checks import KNOB_MOVED

    return {"02": KNOB_MOVED, "03": KNOB_MOVED}


#: Code the tests run after a notebook's own cells, by notebook number.
TEST_CELLS: dict[str, str] = _test_cells()


def without_test_cells(notebook):
    """A copy of an executed notebook without the cells the tests appended (what the docs show)."""
    import copy

    out = copy.deepcopy(notebook)
    out.cells = [c for c in out.cells if TEST_ONLY not in c.get("metadata", {}).get("tags", [])]
    return out


def execute_once(path: Path, tmp_path_factory) -> ExecutedNotebook:
    """Execute ``path`` top to bottom (nbclient, kernel ``python3``) unless this session already did.

    Raises the execution's error (a cell that raised, a timeout) to every caller.
    """
    path = Path(path).resolve()
    done = EXECUTED.get(path)
    if done is None:
        import nbclient
        import nbformat

        workdir = tmp_path_factory.mktemp(path.stem)
        env = dict(os.environ, TMPDIR=str(workdir), PYTHONUNBUFFERED="1")
        env.pop("ASTROCAL_FRAMES", None)  # the notebooks' own default: a simulated night
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        notebook = nbformat.read(path, as_version=4)
        extra = TEST_CELLS.get(path.name[:2])
        if extra:  # what a student does next (a knob moved), for the test only: tagged, left out of the docs
            notebook.cells.append(nbformat.v4.new_code_cell(extra, metadata={"tags": [TEST_ONLY]}))
        marks: dict[str, float] = {}
        client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                         resources={"metadata": {"path": str(workdir)}},
                                         store_widget_state=True,
                                         # Killed when done: a graceful shutdown (interrupt, shutdown request,
                                         # then a wait) sometimes took the cell timeout, 240 s, after every
                                         # cell had run (seen on 03-rejection; the phases say where).
                                         shutdown_kernel="immediate",
                                         on_notebook_start=lambda **_: marks.setdefault("ready", time.time()),
                                         on_notebook_complete=lambda **_: marks.setdefault("done", time.time()))
        marks["start"] = time.time()
        start = time.monotonic()
        error = None
        try:
            client.execute(env=env)
        except Exception as exc:  # noqa: BLE001 - kept and raised to every caller below
            error = exc
        done = EXECUTED[path] = ExecutedNotebook(path, notebook, workdir, time.monotonic() - start, error, marks)
    if done.error is not None:
        raise done.error
    return done
