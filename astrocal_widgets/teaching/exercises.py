"""The exercise registry and :func:`check_answer`.

An :class:`Exercise` is a question plus a function that computes its right answer from a camera
model, and a rule that says whether a student's answer is close enough. Topic modules
(``noise``, ``rejection``, ``darks``, ...) define their exercises and :func:`register` them when
they are imported; :func:`exercises` imports them all first, so every exercise can be found by
name.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..simulate.camera import CameraModel, camera_preset

__all__ = ["Exercise", "Verdict", "register", "exercise", "exercises", "check_answer", "TOPIC_MODULES"]

#: Modules holding exercises, imported by :func:`exercises` (a topic module that does not exist
#: yet is skipped, so topics can be added one at a time).
TOPIC_MODULES: tuple[str, ...] = ("noise", "rejection", "darks", "flats", "camera")


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is right, the right answer and why.

    Attributes
    ----------
    correct : bool
        True when the answer is accepted.
    answer : Any
        The student's answer, as given.
    expected : Any
        The right answer computed for this camera.
    explanation : str
        Why the right answer is right, with the figures it was computed from.
    """

    correct: bool
    answer: Any
    expected: Any
    explanation: str

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        head = "Right" if self.correct else f"Not quite: you said {self.answer!r}, the answer is {self.expected!r}"
        return f"{head}. {self.explanation}"

    def _repr_html_(self) -> str:
        import html

        colour = "#1a7f37" if self.correct else "#b42318"
        return f'<div style="border-left: 4px solid {colour}; padding-left: 8px">{html.escape(str(self))}</div>'


def _default_accept(answer: Any, expected: Any, tolerance: float) -> bool:
    """Numbers within ``tolerance`` (relative), anything else by equality."""
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        try:
            value = float(answer)
        except (TypeError, ValueError):
            return False
        if isinstance(expected, int) and tolerance == 0:
            return value == expected
        return math.isclose(value, float(expected), rel_tol=tolerance, abs_tol=0.0)
    if isinstance(expected, str) and isinstance(answer, str):
        return answer.strip().lower() == expected.strip().lower()
    return answer == expected


@dataclass(frozen=True)
class Exercise:
    """One exercise of a teaching notebook.

    Parameters
    ----------
    name : str
        Short identifier, e.g. ``'darks-for-5-percent'``: what :func:`check_answer` is called with.
    question : str
        The question as the notebook asks it.
    solve : callable
        ``solve(camera, **options) -> (expected, explanation)``: computes the right answer for a
        :class:`CameraModel` and explains it with the figures used.
    tolerance : float
        Relative tolerance for numeric answers (0 for exact integers).
    accept : callable, optional
        ``accept(answer, expected) -> bool`` when the default rule (numbers within ``tolerance``,
        text case-insensitive) does not fit, e.g. "any frame count at least the minimum".
    """

    name: str
    question: str
    solve: Callable[..., tuple[Any, str]]
    tolerance: float = 0.05
    accept: Callable[[Any, Any], bool] | None = None
    topic: str = field(default="", compare=False)

    def check(self, answer: Any, camera: CameraModel | str | None = None, **options: Any) -> Verdict:
        """Judge ``answer`` against the answer computed for ``camera`` (a preset name or a model)."""
        model = camera if isinstance(camera, CameraModel) else camera_preset(camera or "mono")
        expected, explanation = self.solve(model, **options)
        ok = self.accept(answer, expected) if self.accept else _default_accept(answer, expected, self.tolerance)
        return Verdict(bool(ok), answer, expected, explanation)


_REGISTRY: dict[str, Exercise] = {}


def register(item: Exercise) -> Exercise:
    """Add an exercise to the registry (names are unique); returns it, so it can decorate a constant."""
    if item.name in _REGISTRY and _REGISTRY[item.name] is not item:
        raise ValueError(f"an exercise named {item.name!r} is already registered")
    _REGISTRY[item.name] = item
    return item


def exercises() -> dict[str, Exercise]:
    """Every exercise by name, the topic modules imported first."""
    for topic in TOPIC_MODULES:
        try:
            importlib.import_module(f"{__package__}.{topic}")
        except ModuleNotFoundError as error:
            if error.name != f"{__package__}.{topic}":
                raise
    return dict(_REGISTRY)


def exercise(name: str) -> Exercise:
    """The exercise called ``name``; a clear error listing the known ones otherwise."""
    known = exercises()
    if name not in known:
        raise KeyError(f"no exercise named {name!r}; known: {', '.join(sorted(known)) or 'none'}")
    return known[name]


def check_answer(name: str, answer: Any, camera: CameraModel | str | None = None, **options: Any) -> Verdict:
    """Tell whether ``answer`` to exercise ``name`` is right, and why.

    Parameters
    ----------
    name : str
        The exercise's name, as the notebook gives it.
    answer : Any
        The student's answer.
    camera : CameraModel or str, optional
        The camera the answer is computed for: a model or a preset name (default ``'mono'``, the
        notebooks' camera). A teacher who changes the notebook's camera passes the same one here.
    **options
        Exercise-specific settings (for example the target percentage), passed to its solver.

    Returns
    -------
    Verdict
        Truthy when right; prints as a sentence and renders in colour in Jupyter.
    """
    return exercise(name).check(answer, camera, **options)
