"""Every notebook of notebooks/ runs top to bottom on simulated frames (what Binder users open first).

Each notebook is executed once in the session (tests/notebook_support.py); the docs build at the end of this
file takes the same executed copies. What each must show is keyed by its number: ``01-quick-start`` prints the
rejection counts of a master and shows plots, the theory notebooks 02-06 print a line starting with
``Measured against the truth:``, ``07-dashboard`` displays one widget view, and ``08-your-own-frames``
calibrates the same night locally and on a dask cluster with the same files as the result. The execution
times, and the docs build's, are printed at the end of the run (the "measured" terminal summary).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import skip_or_fail
from notebook_checks import (check_camera, check_darks, check_flats, check_knob_moved, check_noise,
                             check_rejection, measured_lines)
from notebook_support import (NOTEBOOK_DIR, NOTEBOOKS, REPO_ROOT, TEST_ONLY, WIDGET_VIEW, ExecutedNotebook,
                              execute_once, without_test_cells)

# A minute or more: deselect with -m 'not slow' for a quick run (CI runs everything).
pytestmark = pytest.mark.slow

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


def expect_theory(check, knob: bool = False):
    """A theory notebook: its measured figures against the truth, a knob (moved, for 02 and 03), the
    two exercises judged."""
    def expect(run: ExecutedNotebook) -> None:
        expect_measured_truth(run)
        assert run.count("image/png") >= 2, "the figures are not drawn"
        assert run.count(WIDGET_VIEW) >= 1, "no widget to turn"
        verdicts = [o for o in run.outputs if "Verdict(" in o.get("data", {}).get("text/plain", "")]
        waiting = re.findall(r"^Set \w+ and run this cell again\.$", run.text, re.MULTILINE)
        # the two exercises ran with their placeholder answers: judged, or asking for an answer
        assert len(verdicts) + len(waiting) == 2, "the two exercises did not run"
        check(measured_lines(run.text))
        if knob:
            last = run.notebook.cells[-1]
            assert TEST_ONLY in last.metadata.get("tags", [])
            check_knob_moved("".join(o.get("text", "") for o in last.get("outputs", [])))
    return expect


#: What each notebook must show, by its number.
EXPECTATIONS = {"01": expect_quick_start, "02": expect_theory(check_noise, knob=True),
                "03": expect_theory(check_rejection, knob=True),
                "04": expect_theory(check_darks), "05": expect_theory(check_flats), "06": expect_theory(check_camera),
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
def test_notebook_executes(path, tmp_path_factory, record_property):
    for module in ("nbformat", "nbclient", "ipykernel"):
        try:
            __import__(module)
        except ImportError:
            skip_or_fail(f"executing the notebooks needs {module} (pip install -e '.[test]')")
    run = execute_once(path, tmp_path_factory)
    slowest = run.slowest_cell()
    record_property("measured", f"{path.name}: executed in {run.seconds:.1f} s"
                    + (f" (slowest cell {slowest[0]}: {slowest[1]:.1f} s; {run.phases()})" if slowest else ""))
    assert not run.errors
    expect = EXPECTATIONS.get(path.name[:2])
    if expect is not None:
        expect(run)


# --- the documentation: sphinx-build -W, offline, on the notebooks executed above ----------------

DOCS = REPO_ROOT / "docs"
BUILD_TIMEOUT = 900


def _require_sphinx() -> None:
    missing = [m for m in ("sphinx", "myst_nb", "numpydoc", "pydata_sphinx_theme")
               if importlib.util.find_spec(m) is None]
    if missing:
        skip_or_fail(f"building the docs needs {', '.join(missing)} (pip install -e '.[docs]')")


def _page_images(html: str) -> list[str]:
    """The ``src`` of every image in the page's article (the theme's logos and icons are outside it)."""
    article = re.search(r"<article[^>]*>(.*)</article>", html, re.S)
    return re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", article.group(1) if article else html)


def test_docs_build_offline_with_the_executed_notebooks(tmp_path, tmp_path_factory, record_property):
    """The docs build with ``sphinx-build -W`` (offline) and show each notebook executed, with its plots.

    The build takes this session's executed copies through ``ASTROCAL_DOCS_NOTEBOOKS``, so myst-nb does
    not execute them again (a user's build executes them itself). Here, in the notebooks' file, so that
    parallel test workers (one per file) still execute each notebook once.
    """
    _require_sphinx()
    import nbformat

    executed_dir = tmp_path / "executed"
    executed_dir.mkdir()
    runs = {}
    for path in NOTEBOOKS:
        runs[path.name] = run = execute_once(path, tmp_path_factory)
        nbformat.write(without_test_cells(run.notebook), executed_dir / path.name)

    out = tmp_path / "html"
    env = dict(os.environ, ASTROCAL_DOCS_NOTEBOOKS=str(executed_dir), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    start = time.monotonic()
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(out),
                            "-d", str(tmp_path / "doctrees")],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    record_property("measured", f"sphinx-build -W with the executed notebooks: {time.monotonic() - start:.1f} s")
    assert build.returncode == 0, f"sphinx-build -W failed:\n{build.stdout[-3000:]}\n{build.stderr[-6000:]}"
    assert "Executed notebook" not in build.stdout + build.stderr  # the executed copies were used, not executed again

    for name, run in runs.items():
        page = out / "notebooks" / name.replace(".ipynb", ".html")
        assert page.is_file(), f"no page for {name}"
        html = page.read_text()
        images = _page_images(html)
        plots = run.count("image/png")
        print(f"{page.name}: {len(images)} images ({plots} plots in the notebook)")
        assert len(images) >= plots, f"{page.name}: {len(images)} images for {plots} plots"
        assert all((page.parent / src).resolve().is_file() for src in images), images
        if run.count(WIDGET_VIEW):
            assert WIDGET_VIEW in html  # the widget's view and state, for the widget manager
        else:
            assert plots >= 1, f"{name} shows no plot"

    # the pages of the algorithms, the install and troubleshooting pages, and the API reference
    index = (out / "index.html").read_text()
    for doc in ("installation", "troubleshooting", "notebooks", "algorithms", "siril-agreement", "benchmarks",
                "distributed", "api"):
        assert f'href="{doc}.html"' in index, f"{doc} is not linked from the index"
    api_page = (out / "generated" / "astrocal_widgets.calibrate_session.html").read_text()
    assert "Parameters" in api_page and "temperature_tolerance" in api_page
