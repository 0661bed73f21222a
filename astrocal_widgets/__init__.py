"""astrocal-widgets: trustworthy calibration masters from a night's frames, lazily, in Jupyter.

The layers depend in one direction only::

    io -> frames -> integrate -> calibrate -> quality -> plots -> widgets

``simulate`` writes synthetic sessions, ``cli`` runs everything headless. Nothing below
``widgets`` imports a user-interface package.
"""
from __future__ import annotations

from .errors import (AstrocalError, FrameReadError, IncompatibleFramesError, MissingExtraError,
                     OutputExistsError)
from .frames import FrameCatalog, FrameGroup, scan
from .io import open_frames

from ._version import __version__

__all__ = [
    "open_frames", "scan", "FrameCatalog", "FrameGroup", "simulate_session", "SimulatedSession",
    "AstrocalError", "FrameReadError", "IncompatibleFramesError", "MissingExtraError",
    "OutputExistsError", "__version__",
]


def __getattr__(name: str):
    # The simulator and the engine import numba/scipy; load them on first use so that
    # `import astrocal_widgets` and header scans stay quick.
    if name in ("simulate_session", "SimulatedSession", "simulate_stack"):
        from . import simulate
        return getattr(simulate, name)
    if name in ("integrate", "write_master"):
        from . import integrate as _integrate
        return getattr(_integrate, name)
    raise AttributeError(f"module 'astrocal_widgets' has no attribute {name!r}")
