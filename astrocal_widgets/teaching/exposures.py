"""Frames exposed in memory with the simulator's sensor model, for the darks, flats and camera notebooks.

The teaching notebooks need many small frames (darks at five temperatures, flats at several
levels) and their truth, quickly. Writing FITS files for each would cost more than the lesson;
:func:`expose_stack` reads them out of a :class:`~astrocal_widgets.simulate.SensorModel` straight
into memory instead, with the same physics as :func:`~astrocal_widgets.simulate.simulate_session`.
:func:`teaching_sensor` builds that sensor as the simulator does for a session of the camera
(its default filters, their colours and dust), so its flat fields are those a session would write.
"""
from __future__ import annotations

import numpy as np

from ..simulate.camera import CameraModel, SensorModel, camera_preset, stream_rng
from ..simulate.scene import DEFAULT_FILTERS, FilterSpec

__all__ = ["TEACHING_SHAPE", "default_filters", "teaching_sensor", "expose_stack", "master"]

#: Frame size of the teaching notebooks: small enough for a notebook to run in seconds on two
#: cores, large enough for thousands of pixels per statistic.
TEACHING_SHAPE: tuple[int, int] = (256, 320)


def default_filters(camera: CameraModel) -> tuple[FilterSpec, ...]:
    """The filters a simulated session of ``camera`` uses (mono: L and Ha; colour: UVIRCut and LExtreme)."""
    return DEFAULT_FILTERS["osc" if camera.bayer_pattern else "mono"]


def teaching_sensor(camera: CameraModel | str = "mono", shape: tuple[int, int] = TEACHING_SHAPE,
                    seed: int = 0, *, defects: bool = True) -> SensorModel:
    """The sensor model a simulated session of ``camera`` would use (same maps for the same seed and shape).

    Parameters
    ----------
    camera : CameraModel or str
        A model or a preset name (``'mono'``, ``'osc'``).
    shape : (int, int)
        Frame size (rows, columns).
    seed : int
        Session seed: the bias pattern, hot pixels, dust and PRNU follow from it.
    defects : bool
        Hot, warm and cold pixels and the flickering column.
    """
    model = camera_preset(camera)
    filters = default_filters(model)
    return SensorModel(model, shape, seed, filter_colours={f.name: f.colour for f in filters},
                       filter_dust={f.name: f.dust_donuts for f in filters}, defects=defects)


def expose_stack(sensor: SensorModel, n: int, *, exposure: float, temperature: float | None = None,
                 illumination: float | np.ndarray | None = None, filter_name: str | None = None,
                 seed: int = 0, label: str = "") -> np.ndarray:
    """``n`` raw frames read out of ``sensor``, as float32 ADU (rounded and clipped like the files).

    Parameters
    ----------
    sensor : SensorModel
    n : int
        Number of frames.
    exposure : float
        Seconds (0 for bias frames).
    temperature : float, optional
        Sensor temperature in °C (default the camera's set point): scales the dark current.
    illumination : float or ndarray, optional
        Electrons per pixel arriving during the exposure before the flat field (a flat panel, a
        sky); None for bias and darks.
    filter_name : str, optional
        The filter whose flat field shapes the illumination.
    seed : int
        Noise seed; each frame has its own stream from ``(seed, label, exposure, temperature, i)``.
    label : str
        Names the stack in the noise stream, so two stacks of the same settings differ.

    Returns
    -------
    ndarray of float32, shape (n, rows, columns)
    """
    temp = sensor.camera.set_temperature if temperature is None else float(temperature)
    out = np.empty((int(n), *sensor.shape), np.float32)
    for i in range(int(n)):
        rng = stream_rng(seed, "teaching", label, float(exposure), temp, filter_name, i)
        out[i], _ = sensor.expose(rng, exposure=float(exposure), temperature=temp, illumination=illumination,
                                  filter_name=filter_name)
    return out


def master(frames: np.ndarray) -> np.ndarray:
    """The average of a stack (float32): a master without rejection, enough for in-memory lessons."""
    return np.asarray(frames, np.float32).mean(axis=0, dtype=np.float64).astype(np.float32)
