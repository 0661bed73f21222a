"""astrocal-widgets: trustworthy calibration masters from a night's frames, lazily, in Jupyter.

The layers depend in one direction only::

    io -> frames -> integrate -> calibrate -> quality -> plots -> workflow -> widgets

``simulate`` writes synthetic sessions, ``cli`` runs everything headless. Nothing below
``widgets`` imports a user-interface package.
"""
from __future__ import annotations

import inspect
import types

from . import _threading  # noqa: F401  (numba's threading layer, before any kernel runs)
from .errors import (AstrocalError, FrameReadError, IncompatibleFramesError, MissingExtraError,
                     OutputExistsError)
from .frames import FrameCatalog, FrameGroup, scan
from .io import open_frames
from . import integrate  # noqa: E402  (after the layers it builds on)
from .integrate import write_master  # noqa: E402


class _CallableModule(types.ModuleType):
    """A subpackage that runs its main function when called."""

    def __call__(self, *args, **kwargs):
        return self.integrate(*args, **kwargs)


# ``aw.integrate`` is the subpackage (``aw.integrate.kernels``, ``import astrocal_widgets.integrate as m``
# work), and calling it runs :func:`astrocal_widgets.integrate.integrate`, so ``aw.integrate(cube)`` keeps
# working: the function no longer hides the subpackage.
integrate.__class__ = _CallableModule
integrate.__signature__ = inspect.signature(integrate.integrate)

from ._version import __version__
from .cancel import CancelToken  # noqa: E402
from .errors import CancelledError  # noqa: E402

__all__ = [
    "open_frames", "scan", "integrate", "write_master", "calibrate_session", "check_frames", "check_session",
    "characterize_camera", "frame_statistics", "FrameCatalog", "FrameGroup", "simulate_session", "SimulatedSession",
    "simulate_stack", "AstrocalError", "FrameReadError", "IncompatibleFramesError", "MissingExtraError",
    "OutputExistsError", "__version__",
]
__all__ += ["CancelToken", "CancelledError"]  # stopping long work from Python (integrate, calibrate_session)


def __getattr__(name: str):
    # The simulator is loaded on first use: most sessions never need it.
    if name in ("simulate_session", "SimulatedSession", "simulate_stack"):
        from . import simulate
        return getattr(simulate, name)
    if name in ("check_frames", "check_session", "characterize_camera", "frame_statistics"):
        from . import quality
        return getattr(quality, name)
    if name == "calibrate_session":
        from .calibrate import calibrate_session
        return calibrate_session
    raise AttributeError(f"module 'astrocal_widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazily loaded functions too, so help(astrocal_widgets) and tab completion list them.
    return sorted(set(globals()) | set(__all__))
