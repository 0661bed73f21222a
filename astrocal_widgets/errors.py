"""Exceptions raised by astrocal-widgets, all in one module so that users find what to catch.

Every error that concerns a file names the file and what is wrong with it, so that a
message shown in a notebook or dashboard is enough to fix the problem. Messages say what to do in
terms of the Python API (``overwrite=True``, ``strict=False``); the ``astrocal`` command adds its
own flags when it shows them.

Warnings stay with the code that emits them
(:class:`~astrocal_widgets.integrate.IntegrationWarning`,
:class:`~astrocal_widgets.calibrate.CalibrationWarning`): they are filtered by category rather than
caught, and the calibration warning carries the matching rule it reports on.
"""
from __future__ import annotations

from os import PathLike
from typing import Any, Sequence

__all__ = [
    "AstrocalError", "FrameReadError", "IncompatibleFramesError", "MissingExtraError", "OutputExistsError",
    "StaleOutputError", "OutputCollisionError", "MissingMasterError", "NotAMasterError", "SectionError",
    "CalibrationMismatchError", "CancelledError",
]


class AstrocalError(Exception):
    """Base class of every error raised on purpose by astrocal-widgets."""


class FrameReadError(AstrocalError, OSError):
    """A frame could not be read: unreadable, truncated, not an image, unsupported."""

    def __init__(self, path: str | PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


class IncompatibleFramesError(AstrocalError, ValueError):
    """Frames that must match (size, binning, ...) do not."""


class MissingExtraError(AstrocalError, ImportError):
    """An optional dependency is needed for this file format or feature."""

    def __init__(self, what: str, extra: str, package: str):
        self.what, self.extra, self.package = what, extra, package
        super().__init__(
            f"{what} needs the optional package '{package}': "
            f"pip install 'astrocal-widgets[{extra}]'"
        )

    def __reduce__(self):
        # Picklable, so the error survives the processes / distributed schedulers.
        return (type(self), (self.what, self.extra, self.package))


class OutputExistsError(AstrocalError, FileExistsError):
    """An output file exists and overwrite was not asked for."""

    def __init__(self, path: str | PathLike, problem: str = "exists"):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}; pass overwrite=True to replace it")

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


class StaleOutputError(OutputExistsError):
    """Outputs exist but were made from other inputs or options than a rerun would use.

    They are neither reused (that would hide the change) nor replaced (unless overwrite is asked
    for). ``stale`` lists them as ``"path: why"``.
    """

    def __init__(self, stale: list[str] | str):
        self.stale = [stale] if isinstance(stale, str) else list(stale)
        first = self.stale[0].split(": ", 1)[0] if self.stale else ""
        AstrocalError.__init__(
            self, f"{len(self.stale)} output(s) exist but were made from other inputs or options than now, so "
                  "they are neither reused nor replaced:\n  " + "\n  ".join(self.stale[:20])
                  + ("\n  ..." if len(self.stale) > 20 else "")
                  + "\nrebuild them with overwrite=True, or move them away")
        self.path, self.problem = first, "stale"

    def __reduce__(self):
        return (type(self), (self.stale,))


class OutputCollisionError(AstrocalError, ValueError):
    """Two inputs would be written to the same output: nothing is written."""


class MissingMasterError(AstrocalError):
    """A master needed to calibrate something is missing: not saved yet, or none that matches.

    Calibrating now would fall back to another master (a flat calibrated with the bias while its
    dark flats wait) or leave a term uncalibrated, so the calibration stops and says which master to
    build first.

    Parameters
    ----------
    role : str or sequence of str
        What the missing master is used as (``'bias'``, ``'dark'``, ``'darkflat'`` or ``'flat'``);
        several when more than one is missing.
    target : str
        What was to be calibrated: a set's label or a light's file name.
    reason : str, optional
        What to do first, in words; the message is ``'<target>: <reason>'``.

    Attributes
    ----------
    role : str
        The first missing master's role.
    roles : tuple of str
        Every missing master's role, in calibration order.
    target, reason : str
    """

    def __init__(self, role: str | Sequence[str], target: str, reason: str = ""):
        self.roles = (role,) if isinstance(role, str) else tuple(role)
        self.role = self.roles[0] if self.roles else ""
        self.target = str(target)
        self.reason = reason or f"save the master {' and '.join(self.roles)} first"
        super().__init__(f"{self.target}: {self.reason}")

    def __reduce__(self):
        return (type(self), (self.roles, self.target, self.reason))


class NotAMasterError(AstrocalError, ValueError):
    """A file given to :meth:`~astrocal_widgets.calibrate.MasterLibrary.add` is not a master.

    Its ``IMAGETYP`` is not ``MASTER ...``.
    """

    def __init__(self, path: str | PathLike, imagetyp: str):
        self.path = str(path)
        self.imagetyp = imagetyp
        super().__init__(f"{self.path}: not a master (IMAGETYP={imagetyp!r}, expected 'MASTER BIAS', "
                         f"'MASTER DARK', 'MASTER DARKFLAT' or 'MASTER FLAT')")

    def __reduce__(self):
        return (type(self), (self.path, self.imagetyp))


class SectionError(AstrocalError, ValueError):
    """A ``BIASSEC`` / ``TRIMSEC`` / ``DATASEC`` that cannot be read or does not fit the frame."""


class CalibrationMismatchError(IncompatibleFramesError):
    """A calibration frame breaks compatibility rules.

    Raised by :func:`~astrocal_widgets.calibrate.enforce` when strict.

    Attributes
    ----------
    mismatches : list of Mismatch
        Every error (severity ``'error'``), as :class:`~astrocal_widgets.calibrate.Mismatch`.
    warnings : list of Mismatch
        The warnings found with them (not raised on their own).
    """

    def __init__(self, mismatches: Sequence[Any], warnings: Sequence[Any] | None = None):
        self.mismatches = list(mismatches)
        self.warnings = list(warnings or [])
        n = len(self.mismatches)
        lines = [f"{n} calibration mismatch{'es' if n != 1 else ''} (pass strict=False to warn instead):"]
        lines += [f"  - {m.message}" for m in self.mismatches]
        if self.warnings:
            lines.append("and warnings:")
            lines += [f"  - {m.message}" for m in self.warnings]
        super().__init__("\n".join(lines))


class CancelledError(AstrocalError):
    """Work was cancelled (:class:`~astrocal_widgets.cancel.CancelToken`) before it finished.

    What was written before stays valid (files are written whole or not at all) and a rerun
    reuses it; nothing half-made is left.

    Attributes
    ----------
    what : str
        What was stopped (``"master bias"``), or empty.
    """

    def __init__(self, what: str = ""):
        self.what = str(what)
        super().__init__(f"{self.what}: cancelled" if self.what else "cancelled")

    def __reduce__(self):
        return (type(self), (self.what,))
