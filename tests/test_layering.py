"""The layers depend in one direction only, and packages meet through their public names.

Every module's imports are read with :mod:`ast` (also those inside functions), so an upward import
fails here before it can make a cycle or pull a user interface into the computation::

    io -> frames -> integrate -> calibrate -> quality -> plots -> workflow -> widgets / cli

``simulate`` writes synthetic frames with ``io`` alone, and only ``teaching``, ``widgets`` and ``cli``
use it (no computing layer depends on the simulator). ``teaching`` sits beside ``workflow``: it uses
the computing layers and the simulator, never ``workflow``, ``widgets`` or ``cli``, and nothing in the
package imports it. ``errors``, ``cancel``, ``warning_report``, ``heap``, ``_version`` and ``_threading`` are the base that
every layer may import.

Across packages a module imports only names its source lists in ``__all__``, and never a name or a
module starting with ``_``.
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

# Found from this file, not by importing the package: an upward import that makes a cycle breaks the
# import, and this test must still name it.
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "astrocal_widgets"
ROOT = "astrocal_widgets"

CHAIN = ("io", "frames", "integrate", "calibrate", "quality", "plots", "workflow")
BASE = {"errors", "warning_report", "_version", "_threading", "heap", "cancel"}


def _allowed() -> dict[str, set[str]]:
    """Package -> the packages it may import (besides itself and the base)."""
    allowed = {name: set(CHAIN[:i]) for i, name in enumerate(CHAIN)}
    allowed["simulate"] = {"io"}
    allowed["teaching"] = set(CHAIN[:CHAIN.index("workflow")]) | {"simulate"}
    allowed["widgets"] = set(CHAIN) | {"simulate"}
    allowed["cli"] = set(CHAIN) | {"simulate"}
    allowed["__main__"] = {"cli"}
    for name in BASE:
        allowed[name] = set()
    return allowed


ALLOWED = _allowed()
#: Third-party user-interface packages, and the only packages that may import them.
UI_IMPORTS = {"ipywidgets": {"widgets"}, "IPython": {"widgets"}, "ipympl": {"widgets"},
              "matplotlib": {"plots", "widgets"}}
#: Dunder names that are not private (``from .._version import __version__``).
PUBLIC_DUNDERS = {"__version__"}
#: Known breaches waiting for a file another branch is editing, with the reason; this set only shrinks.
PENDING: dict[tuple[str, str, str], str] = {}  # (module, source, name) -> why it is allowed for now


@dataclass(frozen=True)
class Import:
    module: str      # the importing module, dotted
    line: int
    source: str      # the imported module, dotted
    name: str | None  # the imported name (from-imports), else None


def module_name(path: Path, root: Path, package: str = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def imports_of(path: Path, root: Path, package: str = ROOT) -> list[Import]:
    """Every import of a module inside ``package``, relative ones resolved."""
    module = module_name(path, root, package)
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [Import(module, node.lineno, a.name, None) for a in node.names
                    if a.name.split(".")[0] == package]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != package:
                continue
            for alias in node.names:
                # `from . import plots` imports a module: check it as one.
                out.append(Import(module, node.lineno, source, alias.name))
    return out


def layer_of(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""  # "" is the top-level package itself


def _exports(root: Path, dotted: str, package: str) -> set[str] | None:
    """``__all__`` of a module (None when it has none or is not a file of the package)."""
    rel = Path(*dotted.split(".")[1:])
    for path in (root / rel / "__init__.py", (root / rel).with_suffix(".py")):
        if path.is_file():
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                    return set(ast.literal_eval(node.value))
            return None
    return None


def _is_module(root: Path, dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (root / rel / "__init__.py").is_file() or (root / rel).with_suffix(".py").is_file()


def check_layering(root: Path, package: str = ROOT) -> list[str]:
    """Every breach of the layering rules in a package folder, one line each (empty: none)."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        where = f"{path.relative_to(root.parent)}"
        for imp in imports_of(path, root, package):
            mine, theirs = layer_of(imp.module), layer_of(imp.source)
            target = imp.source
            if imp.name and _is_module(root, f"{imp.source}.{imp.name}"):
                target = f"{imp.source}.{imp.name}"  # `from .. import plots`, `from . import reference`
                theirs = layer_of(target)
            if not mine or mine == theirs:
                continue  # the top-level package gathers every layer; a package may use itself freely
            what = f"{where}:{imp.line}: {imp.module} imports {target}" + (
                f".{imp.name}" if imp.name and target == imp.source else "")
            if theirs and theirs not in BASE and theirs not in ALLOWED.get(mine, set()):
                problems.append(f"{what}: {mine} may not import {theirs} (layers: {' -> '.join(CHAIN)})")
                continue
            private = [p for p in target.split(".")[1:] if p.startswith("_") and p not in BASE
                       and p != "__init__"]
            if private:
                problems.append(f"{what}: private module {'.'.join(private)} used from another package")
            if imp.name and target == imp.source:
                if imp.name.startswith("_") and imp.name not in PUBLIC_DUNDERS:
                    problems.append(f"{what}: private name used from another package; make it public or move it")
                elif theirs not in BASE or theirs == "errors":
                    exported = _exports(root, imp.source, package)
                    pending = (imp.module, imp.source, imp.name) in PENDING and package == ROOT
                    if (exported is None or imp.name not in exported) and not pending:
                        problems.append(f"{what}: not in {imp.source}.__all__")
    return problems


def check_ui_imports(root: Path, package: str = ROOT) -> list[str]:
    """Third-party UI packages imported outside the layers that draw."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        mine = layer_of(module_name(path, root, package))
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top in UI_IMPORTS and mine not in UI_IMPORTS[top]:
                    problems.append(f"{path.relative_to(root.parent)}:{node.lineno}: {mine or package} imports {top}")
    return problems


def test_the_package_follows_its_layers():
    problems = check_layering(PACKAGE_DIR)
    assert not problems, "\n".join(problems)


def test_pending_breaches_are_still_there():
    """A pending entry that was fixed is removed from :data:`PENDING`, so the list cannot go stale."""
    for module, source, name in PENDING:
        rel = Path(*module.split(".")[1:]).with_suffix(".py")
        found = [i for i in imports_of(PACKAGE_DIR / rel, PACKAGE_DIR) if (i.source, i.name) == (source, name)]
        assert found and name not in (_exports(PACKAGE_DIR, source, ROOT) or set()), (module, source, name)


def test_computation_never_imports_a_user_interface():
    problems = check_ui_imports(PACKAGE_DIR)
    assert not problems, "\n".join(problems)


def test_every_subpackage_has_a_place_in_the_layers():
    packages = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__"}
    assert packages | modules <= set(ALLOWED), (packages | modules) - set(ALLOWED)


def test_teaching_is_imported_by_nothing_and_imports_no_widget():
    assert "widgets" not in ALLOWED["teaching"] and "workflow" not in ALLOWED["teaching"]
    assert not any("teaching" in allowed for name, allowed in ALLOWED.items())


# --- the checker itself, on a synthetic package with planted breaches -----------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / ROOT
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


CLEAN = {
    "__init__.py": "from .io import read\n",
    "errors.py": "__all__ = ['Oops']\nclass Oops(Exception): pass\n",
    "io/__init__.py": "from .reader import read\n__all__ = ['read']\n",
    "io/reader.py": "from ..errors import Oops\n__all__ = ['read']\ndef read(): pass\ndef _helper(): pass\n",
    "calibrate/__init__.py": "",
    "calibrate/apply.py": "from ..io import read\nfrom ..io.reader import read as again\n__all__ = []\n",
    "widgets/__init__.py": "",
    "widgets/view.py": "import ipywidgets\nfrom ..calibrate import apply\n",
}


def test_the_checker_passes_a_clean_package(tmp_path):
    root = _package(tmp_path, CLEAN)
    assert check_layering(root) == [] and check_ui_imports(root) == []


@pytest.mark.parametrize("planted, expected", [
    ({"io/reader.py": CLEAN["io/reader.py"] + "from ..calibrate import apply\n"}, "io may not import calibrate"),
    ({"io/reader.py": CLEAN["io/reader.py"] + "def f():\n    import astrocal_widgets.widgets.view\n"},
     "io may not import widgets"),
    ({"calibrate/apply.py": "from ..io.reader import _helper\n"}, "private name used from another package"),
    ({"calibrate/apply.py": "from ..io.reader import Oops\n"}, "not in astrocal_widgets.io.reader.__all__"),
    ({"calibrate/apply.py": "import ipywidgets\n"}, "calibrate imports ipywidgets"),
])
def test_the_checker_fails_on_a_planted_breach(tmp_path, planted, expected):
    root = _package(tmp_path, {**CLEAN, **planted})
    problems = check_layering(root) + check_ui_imports(root)
    assert any(expected in p for p in problems), problems


def test_aw_integrate_is_the_subpackage_and_calling_it_integrates():
    """The top-level name no longer hides the subpackage, and ``aw.integrate(cube)`` still works."""
    import importlib
    import inspect

    import numpy as np

    import astrocal_widgets as aw

    subpackage = importlib.import_module("astrocal_widgets.integrate")
    assert aw.integrate is subpackage and aw.integrate.kernels.__name__ == "astrocal_widgets.integrate.kernels"
    frames = np.ones((3, 4, 5), np.float32) + np.arange(3, dtype=np.float32)[:, None, None]
    called = aw.integrate(frames, rejection="none").compute()
    direct = subpackage.integrate(frames, rejection="none").compute()
    np.testing.assert_array_equal(called["master"].values, direct["master"].values)
    assert np.allclose(called["master"].values, 2.0)
    assert inspect.signature(aw.integrate) == inspect.signature(subpackage.integrate)
