"""Every notebook of notebooks/ runs top to bottom on simulated frames (what Binder users open first).

Each notebook is executed once in the session (tests/notebook_support.py; tests/test_docs.py builds the docs
from the same executed copies). What each must show is keyed by its number: ``01-quick-start`` prints the
rejection counts of a master and shows plots, the theory notebooks 02-06 print a line starting with
``Measured against the truth:``, ``07-dashboard`` displays one widget view, and ``08-your-own-frames``
calibrates the same night locally and on a dask cluster with the same files as the result. The execution
times are printed at the end of the run (terminal summary).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from conftest import skip_or_fail
from notebook_support import NOTEBOOK_DIR, NOTEBOOKS, WIDGET_VIEW, ExecutedNotebook, execute_once

TRUTH_LINE = re.compile(r"^Measured against the truth:", re.MULTILINE)


def _tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def expect_quick_start(run: ExecutedNotebook) -> None:
    assert re.search(r"rejected \d+ low and \d+ high values", run.text), run.text[-2000:]
    assert "master - true bias" in run.text
    assert re.search(r"lights \(\d+\) in ", run.text), "calibrate_session's summary is missing"
    assert run.count("image/png") >= 2  # the raw and the calibrated light
    assert list(run.workdir.glob("astrocal-night/calibrated/*/LIGHT/*_calibrated.fits"))


def expect_measured_truth(run: ExecutedNotebook) -> None:
    assert TRUTH_LINE.search(run.text), (
        f"{run.path.name} prints no line starting with 'Measured against the truth:'")
    assert run.count("image/png") >= 1


def expect_dashboard(run: ExecutedNotebook) -> None:
    # The last cell displays the dashboard: one widget view (what Voila and Jupyter draw).
    assert run.count(WIDGET_VIEW) == 1
    assert list(run.workdir.glob("astrocal-dashboard-*/night/*/LIGHT/*.fits"))  # the simulated night


def expect_own_frames(run: ExecutedNotebook) -> None:
    match = re.search(r"^Both runs made the same (\d+) files, byte for byte\.$", run.text, re.MULTILINE)
    assert match, run.text[-2000:]
    # checked here too, not only by the notebook's own words
    output = run.workdir / "astrocal-own-frames-output"
    local, cluster = _tree_hashes(output / "local"), _tree_hashes(output / "cluster")
    assert local and local == cluster
    assert int(match.group(1)) == len(local)
    assert sum(name.endswith("_calibrated.fits") for name in local) >= 1
    assert run.count("image/png") >= 1


#: What each notebook must show, by its number (02-06 come with the theory notebooks).
EXPECTATIONS = {"01": expect_quick_start, **{f"0{n}": expect_measured_truth for n in range(2, 7)},
                "07": expect_dashboard, "08": expect_own_frames}


def test_notebooks_are_numbered_and_stored_without_outputs():
    assert NOTEBOOKS, f"no notebook in {NOTEBOOK_DIR}"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", path.name), path.name
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
            f"{path.name} is stored with outputs: clear them before committing")
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert len(numbers) == len(set(numbers)), numbers
    assert {"01", "07", "08"} <= set(numbers)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path_factory):
    for module in ("nbformat", "nbclient", "ipykernel"):
        try:
            __import__(module)
        except ImportError:
            skip_or_fail(f"executing the notebooks needs {module} (pip install -e '.[test]')")
    run = execute_once(path, tmp_path_factory)
    print(f"{path.name}: executed in {run.seconds:.1f} s")
    assert not run.errors
    expect = EXPECTATIONS.get(path.name[:2])
    if expect is not None:
        expect(run)
