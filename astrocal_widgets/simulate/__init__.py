"""Simulated astrophotography sessions with ground truth, for tests, benchmarks and teaching.

>>> from astrocal_widgets.simulate import simulate_session
>>> session = simulate_session("night", seed=1)          # doctest: +SKIP
>>> session.paths["bias"][:2], session.truth.flat.sel(filter="L").mean()  # doctest: +SKIP

A frame is ``bias + (dark current x t + flat x scene + cosmic rays + noise) / gain``,
rounded and clipped to the ADC range, written as uint16 FITS with NINA's headers and names;
``session.truth`` holds each term so a calibration can be checked against what it should find.
Run ``python -m astrocal_widgets.simulate DIR`` to write the default session and time it.
"""
from .camera import CAMERA_PRESETS, CameraModel, SensorModel, camera_preset
from .scene import DEFAULT_FILTERS, FilterSpec, LightConditions, Scene
from .session import (
    DEFAULT_COUNTS,
    FRAME_KINDS,
    FrameSpec,
    SimulatedSession,
    simulate_session,
    simulate_stack,
)

__all__ = [
    "CAMERA_PRESETS",
    "CameraModel",
    "DEFAULT_COUNTS",
    "DEFAULT_FILTERS",
    "FRAME_KINDS",
    "FilterSpec",
    "FrameSpec",
    "LightConditions",
    "Scene",
    "SensorModel",
    "SimulatedSession",
    "camera_preset",
    "simulate_session",
    "simulate_stack",
]
