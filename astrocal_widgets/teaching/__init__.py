"""Teaching helpers: exercises whose answers are computed from a simulated camera.

The teaching notebooks (``notebooks/02-*`` to ``06-*``) end with exercises such as "how many darks
do you need for the master to add less than 5 % to a light's noise?". :func:`check_answer` tells
the student whether an answer is right and why. The right answer is never written down: each
exercise computes it from the :class:`~astrocal_widgets.simulate.CameraModel` it is given (or
from the simulated frames), so a teacher who changes the camera gets answers that follow.

>>> from astrocal_widgets.teaching import check_answer, exercises
>>> sorted(exercises())                                # doctest: +SKIP
>>> check_answer("darks-for-5-percent", 16)            # doctest: +SKIP
Right: ...

This package sits beside ``workflow``: it uses the simulator and the computing layers, and no
widget imports it.
"""
from __future__ import annotations

from .exercises import Exercise, Verdict, check_answer, exercise, exercises, register

__all__ = ["Exercise", "Verdict", "check_answer", "exercise", "exercises", "register"]
