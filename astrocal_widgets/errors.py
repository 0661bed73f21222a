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

    def __init__(self, path: str | PathLike):
        self.path = str(path)
        super().__init__(f"{self.path}: exists; pass overwrite=True (or --overwrite) to replace it")
