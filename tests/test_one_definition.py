"""One definition each: the CFA split lives in ``io/cfa.py``, the frame-type vocabulary in
``io/frame_types.py``; a copy elsewhere in the package fails here."""
from __future__ import annotations

import ast
from pathlib import Path

import astrocal_widgets as aw
from astrocal_widgets.io.frame_types import CALIBRATION_TYPES, FRAME_TYPE_PLURALS, FRAME_TYPES, FRAME_TYPE_WORDS

PACKAGE = Path(aw.__file__).parent
TYPES = set(FRAME_TYPES)
# The header values written into masters: integrate/master_file.py's own table (IMAGETYP = 'MASTER DARK').
ALLOWED_TYPE_TABLES = {("integrate/master_file.py", "MASTER_TYPES")}


def _trees():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text())


def _two_step_slices(tree: ast.AST) -> list[int]:
    """Lines slicing with a literal step of 2 (``a[1::2]``, ``slice(i, None, 2)``)."""
    lines = []
    for node in ast.walk(tree):
        step = None
        if isinstance(node, ast.Slice):
            step = node.step
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "slice" and len(node.args) == 3:
            step = node.args[2]
        if isinstance(step, ast.Constant) and step.value == 2:
            lines.append(node.lineno)
    return lines


def test_the_cfa_planes_are_sliced_in_one_module():
    copies = {name: lines for name, tree in _trees() if name != "io/cfa.py" and (lines := _two_step_slices(tree))}
    assert not copies, f"split the mosaic with astrocal_widgets.io.cfa, not by hand: {copies}"


def _type_table(node: ast.AST) -> bool:
    """A tuple of frame-type names, or a dict from frame types to words: the vocabulary, written again."""
    if isinstance(node, ast.Tuple) and len(node.elts) >= 4:
        values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        return len(values) == len(node.elts) and set(values) <= TYPES
    if isinstance(node, ast.Dict) and len(node.keys) >= 4:
        keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
        words = all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in node.values)
        return len(keys) == len(node.keys) and set(keys) <= TYPES and words
    return False


def test_the_frame_type_vocabulary_is_written_once():
    copies = []
    for name, tree in _trees():
        if name == "io/frame_types.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                label = ",".join(getattr(t, "id", "?") for t in targets)
                if _type_table(node.value) and (name, label) not in ALLOWED_TYPE_TABLES:
                    copies.append(f"{name}:{node.lineno} {label}")
            elif isinstance(node, ast.Call):
                copies += [f"{name}:{node.lineno} (argument)" for a in [*node.args, *(k.value for k in node.keywords)]
                           if _type_table(a)]
    assert not copies, f"use astrocal_widgets.io.frame_types: {copies}"


def test_the_vocabulary_is_consistent():
    assert set(CALIBRATION_TYPES) | {"light"} == set(FRAME_TYPES)
    assert list(FRAME_TYPE_WORDS) == list(FRAME_TYPE_PLURALS) == [*CALIBRATION_TYPES, "light"]
