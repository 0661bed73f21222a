"""The API reference (docs/api.md) lists the public API.

The docs build itself (``sphinx-build -W``, offline, on the executed notebooks) is tested in
tests/teaching/test_notebooks.py, beside the notebooks' execution, so each notebook runs once.
"""
from __future__ import annotations

import importlib
import importlib.util
import re

from notebook_support import REPO_ROOT

DOCS = REPO_ROOT / "docs"
#: The packages whose ``__all__`` is the public API; api.md documents each callable once.
PUBLIC_PACKAGES = ["astrocal_widgets", "astrocal_widgets.io", "astrocal_widgets.frames",
                   "astrocal_widgets.integrate", "astrocal_widgets.calibrate", "astrocal_widgets.quality",
                   "astrocal_widgets.plots", "astrocal_widgets.workflow", "astrocal_widgets.widgets",
                   "astrocal_widgets.simulate", "astrocal_widgets.teaching"]


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
