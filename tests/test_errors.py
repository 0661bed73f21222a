"""Errors live in one module, a missing master says which and for what, and core messages name no
command-line flag (the ``astrocal`` command adds its own)."""
from __future__ import annotations

import argparse
import ast
import pickle
import re
from pathlib import Path

import pytest

import astrocal_widgets as aw
from astrocal_widgets import errors
from astrocal_widgets.cli import cli_message, main

PACKAGE = Path(aw.__file__).parent
# The command-line entry points may name their own flags.
COMMAND_LINE_MODULES = {PACKAGE / "cli.py", PACKAGE / "simulate" / "__main__.py"}


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _is_exception_class(node: ast.ClassDef) -> bool:
    names = {b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "" for b in node.bases}
    return any(n.endswith(("Error", "Exception")) for n in names)


def test_every_exception_class_is_defined_in_errors_py():
    elsewhere = [f"{path.relative_to(PACKAGE)}: {node.name}" for path in _modules()
                 if path.name != "errors.py"
                 for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)
                 and _is_exception_class(node)]
    assert not elsewhere, elsewhere
    defined = {n.name for n in ast.walk(ast.parse((PACKAGE / "errors.py").read_text()))
               if isinstance(n, ast.ClassDef)}
    assert defined == set(errors.__all__)


@pytest.mark.parametrize("module, name", [
    ("astrocal_widgets.calibrate.matching", "CalibrationMismatchError"),
    ("astrocal_widgets.calibrate", "CalibrationMismatchError"),
    ("astrocal_widgets.calibrate.library", "NotAMasterError"),
    ("astrocal_widgets.io.overscan", "SectionError"),
    ("astrocal_widgets.io", "SectionError"),
    ("astrocal_widgets.calibrate", "SectionError"),
    ("astrocal_widgets.calibrate.overscan", "SectionError"),
])
def test_moved_errors_stay_importable_where_they_were(module, name):
    import importlib

    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def test_missing_master_error_names_the_role_and_the_target():
    exc = errors.MissingMasterError(["darkflat", "bias"], "flat, filter L", "save the master dark flat first")
    assert (exc.role, exc.roles, exc.target) == ("darkflat", ("darkflat", "bias"), "flat, filter L")
    assert str(exc) == "flat, filter L: save the master dark flat first"
    assert isinstance(exc, aw.AstrocalError)
    again = pickle.loads(pickle.dumps(exc))  # survives process and distributed schedulers
    assert (again.roles, again.target, str(again)) == (exc.roles, exc.target, str(exc))
    assert str(errors.MissingMasterError("dark", "light_001.fits")) == "light_001.fits: save the master dark first"


def _string_constants(path: Path):
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_core_messages_name_no_command_line_flag():
    flags = [f"{path.relative_to(PACKAGE)}:{line}: {text!r}" for path in _modules() if path not in COMMAND_LINE_MODULES
             for line, text in _string_constants(path) if re.search(r"(?<![\w-])--[a-z]", text)]
    assert not flags, flags


def test_cli_message_adds_the_flags_of_the_command_that_ran():
    text = "out.fits: exists; pass overwrite=True to replace it (or calibrate with strict=False to leave them out)"
    both = cli_message(text, argparse.Namespace(overwrite=False, lenient=False))
    assert both == ("out.fits: exists; pass overwrite=True (or --overwrite) to replace it "
                    "(or calibrate with strict=False (or --lenient) to leave them out)")
    demo = cli_message(text, argparse.Namespace(overwrite=False))  # astrocal demo has no --lenient
    assert "--overwrite" in demo and "--lenient" not in demo
    assert cli_message("nothing to translate") == "nothing to translate"


@pytest.fixture(scope="module")
def flats_without_dark_flats(tmp_path_factory):
    return aw.simulate_session(tmp_path_factory.mktemp("night"), seed=12, shape=(48, 64),
                               counts={"bias": 0, "dark": 3, "flat": 3, "darkflat": 0, "light": 1})


def test_core_says_strict_false_and_the_command_says_lenient(flats_without_dark_flats, tmp_path, capsys):
    with pytest.raises(errors.MissingMasterError) as caught:
        aw.calibrate_session(flats_without_dark_flats.directory, output=tmp_path / "api")
    exc = caught.value
    assert (exc.role, exc.roles) == ("darkflat", ("darkflat", "bias")) and exc.target.startswith("flat")
    assert str(exc).startswith(exc.target + ": no dark flats and no bias match these flats")
    assert "strict=False" in str(exc) and "--" not in str(exc)

    code = main(["calibrate", str(flats_without_dark_flats.directory), "--output", str(tmp_path / "cli")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no dark flats and no bias match these flats" in err
    assert "calibrate with strict=False (or --lenient) to integrate them uncalibrated" in err
