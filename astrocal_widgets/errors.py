"""Exceptions raised by astrocal-widgets.

Every error that concerns a file names the file and what is wrong with it, so that a
message shown in a notebook or dashboard is enough to fix the problem.
"""
from __future__ import annotations

from os import PathLike


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
        super().__init__(f"{self.path}: {problem}; pass overwrite=True (or --overwrite) to replace it")

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
                  + "\nrebuild them with overwrite=True (or --overwrite), or move them away")
        self.path, self.problem = first, "stale"

    def __reduce__(self):
        return (type(self), (self.stale,))


class OutputCollisionError(AstrocalError, ValueError):
    """Two inputs would be written to the same output: nothing is written."""


class MissingMasterError(AstrocalError):
    """A master that the night provides (its frames are there) is not built yet.

    Calibrating now would fall back to another master (a flat calibrated with the bias while its
    dark flats wait), so the calibration stops and says which master to build first.
    """
