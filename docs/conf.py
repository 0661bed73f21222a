"""Sphinx configuration: myst-nb for the markdown pages and the notebooks, numpydoc for the API reference.

Build (needs the ``docs`` extra): ``sphinx-build -W -b html docs docs/_build/html``. It works offline: no
intersphinx inventory is fetched.

The notebooks of ``notebooks/`` are copied into ``docs/notebooks/`` (generated, not in git) when the build
starts, and executed by myst-nb (cached in the build folder: a rebuild executes only notebooks that changed).
With ``ASTROCAL_DOCS_NOTEBOOKS=DIR`` the notebooks are taken from DIR, already executed, and not executed again
(the test suite does this: tests/test_docs.py builds from the copies tests/teaching/test_notebooks.py executed).
"""
import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent

project = "astrocal-widgets"
author = "astrocal-widgets developers"
extensions = ["myst_nb", "numpydoc", "sphinx.ext.autodoc", "sphinx.ext.autosummary"]
autosummary_generate = True
numpydoc_show_class_members = False
# "## How many frames" -> quality.md#how-many-frames, as on GitHub
myst_heading_anchors = 3
# $...$ and $$...$$ formulas (the algorithm pages, the notebooks' markdown cells)
myst_enable_extensions = ["dollarmath", "amsmath"]
html_theme = "pydata_sphinx_theme"
html_title = "astrocal-widgets"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]


def _notebooks_into_docs(source: Path, target: Path) -> None:
    """Copy ``source/*.ipynb`` to ``target`` (only what changed, so Sphinx re-reads only those)."""
    target.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted(source.glob("*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, path in wanted.items():
        copy = target / name
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            shutil.copyfile(path, copy)


_executed = os.environ.get("ASTROCAL_DOCS_NOTEBOOKS")
_notebooks_into_docs(Path(_executed) if _executed else HERE.parent / "notebooks", HERE / "notebooks")
# Already executed: shown as they are. Otherwise myst-nb executes them, each in a temporary folder (they
# write simulated nights beside themselves), and a notebook that raises fails the build.
nb_execution_mode = "off" if _executed else "cache"
nb_execution_in_temp = True
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
