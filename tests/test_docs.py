"""The documentation builds with ``sphinx-build -W`` (offline) and shows each notebook executed, with its plots.

The build takes the notebooks executed by this test session (tests/notebook_support.py, shared with
tests/test_notebooks.py: each notebook runs once) through ``ASTROCAL_DOCS_NOTEBOOKS``, so myst-nb does not
execute them again. A user's build (``sphinx-build -W -b html docs docs/_build/html``) executes them itself.
Skips without Sphinx, myst-nb, numpydoc or the PyData theme; fails in CI (CI=true), where the ``test`` extra
installs them.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import skip_or_fail
from notebook_support import NOTEBOOKS, REPO_ROOT, WIDGET_VIEW, execute_once

DOCS = REPO_ROOT / "docs"
#: The packages whose ``__all__`` is the public API; api.md documents each callable once.
PUBLIC_PACKAGES = ["astrocal_widgets", "astrocal_widgets.io", "astrocal_widgets.frames",
                   "astrocal_widgets.integrate", "astrocal_widgets.calibrate", "astrocal_widgets.quality",
                   "astrocal_widgets.plots", "astrocal_widgets.workflow", "astrocal_widgets.widgets",
                   "astrocal_widgets.simulate", "astrocal_widgets.teaching"]
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


def test_api_reference_lists_the_public_api():
    """Every public function and class is in docs/api.md (under the first package that exports it)."""
    api = (DOCS / "api.md").read_text()
    sections = dict(re.findall(r"currentmodule:: (\S+)\n\n\.\. autosummary::\n   :toctree: generated\n\n((?:   \S+\n)+)",
                               api))
    documented = {id(getattr(importlib.import_module(mod), name.strip()))
                  for mod, names in sections.items() for name in names.split()}
    missing = []
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not name.startswith("__") and callable(obj) and id(obj) not in documented:
                missing.append(f"{package}.{name}")
    assert not missing, f"not in docs/api.md: {missing}"


def test_docs_build_offline_with_the_executed_notebooks(tmp_path, tmp_path_factory):
    _require_sphinx()
    import nbformat

    executed_dir = tmp_path / "executed"
    executed_dir.mkdir()
    runs = {}
    for path in NOTEBOOKS:
        runs[path.name] = run = execute_once(path, tmp_path_factory)
        nbformat.write(run.notebook, executed_dir / path.name)

    out = tmp_path / "html"
    env = dict(os.environ, ASTROCAL_DOCS_NOTEBOOKS=str(executed_dir), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    start = time.monotonic()
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(out),
                            "-d", str(tmp_path / "doctrees")],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    print(f"sphinx-build: {time.monotonic() - start:.1f} s")
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
