"""Characterise a camera: gain from flat pairs, read noise, the photon transfer curve (notebook 06).

Two flats of the same level differ only by their noise: vignetting, dust and pixel response
cancel in ``F1 - F2``. Photon noise makes the variance of one flat grow as ``S / g`` (S the signal
in ADU above bias, g the gain in e-/ADU), read noise adds ``(r / g)**2``. So
``g = (mean(F1) + mean(F2) - mean(B1) - mean(B2)) / (var(F1 - F2) - var(B1 - B2))``: the
difference method :func:`pair_gain` applies, as :func:`~astrocal_widgets.characterize_camera` does
on a whole folder. :func:`simulate_flat_pairs` exposes the pairs in memory, :func:`temporal_variance`
gives the variance the camera model predicts.

Exercises: ``gain-from-flat-pairs`` and ``flat-temporal-variance``.
"""
from __future__ import annotations

import numpy as np

from ..integrate.estimators import MAD_TO_SIGMA
from ..simulate.camera import CameraModel, camera_preset
from .exercises import Exercise, register
from .exposures import TEACHING_SHAPE, expose_stack, teaching_sensor
from .flats import filter_spec, flat_exposure_for_level, panel_rate

__all__ = ["temporal_variance", "simulate_flat_pairs", "pair_gain", "FLAT_PAIR_LEVEL"]

#: Level (fraction of the ADC range) of the flat pair the ``gain-from-flat-pairs`` exercise shows.
FLAT_PAIR_LEVEL = 0.4


def temporal_variance(camera: CameraModel, signal: float) -> float:
    """Variance (ADU²) of one frame's temporal noise at ``signal`` ADU above bias: ``S / g + (r / g)**2``.

    The photon noise of ``S g`` electrons is ``sqrt(S g)`` electrons, ``sqrt(S / g)`` ADU; the read
    noise ``r`` electrons is ``r / g`` ADU; independent noises add in variance.
    """
    if signal < 0:
        raise ValueError(f"signal must be >= 0 ADU above bias, got {signal}")
    return signal / camera.gain + (camera.read_noise / camera.gain) ** 2


def simulate_flat_pairs(camera: CameraModel | str = "mono", level: float = FLAT_PAIR_LEVEL, *,
                        shape: tuple[int, int] = TEACHING_SHAPE, seed: int = 0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two flats with their median at ``level`` of the ADC range and two bias frames, in memory.

    Returns
    -------
    flat1, flat2, bias1, bias2 : ndarray of float32
        Raw frames (ADU) of the camera's first filter, from the sensor of ``shape`` and ``seed``.
    """
    model = camera_preset(camera)
    sensor = teaching_sensor(model, shape, seed)
    filt = filter_spec(model)
    t = flat_exposure_for_level(model, filt.name, level, shape=shape, seed=seed)
    flats = expose_stack(sensor, 2, exposure=t, illumination=panel_rate(sensor, filt) * t, filter_name=filt.name,
                         seed=seed, label="flat-pair")
    bias = expose_stack(sensor, 2, exposure=0.0, seed=seed, label="bias-pair")
    return flats[0], flats[1], bias[0], bias[1]


def _clipped_variance(difference: np.ndarray, clip: float = 5.0) -> float:
    """Variance of a difference image without its outliers (cosmic rays): |d - median| <= clip robust sigmas."""
    d = np.asarray(difference, np.float64).ravel()
    centre = np.median(d)
    sigma = MAD_TO_SIGMA * np.median(np.abs(d - centre))
    return float(np.var(d[np.abs(d - centre) <= clip * sigma], ddof=1)) if sigma > 0 else float(np.var(d, ddof=1))


def pair_gain(flat1: np.ndarray, flat2: np.ndarray, bias1: np.ndarray, bias2: np.ndarray) -> float:
    """The gain (e-/ADU) a flat pair and a bias pair show, by the difference method.

    ``(mean F1 + mean F2 - mean B1 - mean B2) / (var(F1 - F2) - var(B1 - B2))`` over the whole frame,
    each variance taken without the pixels more than 5 robust sigmas off (a cosmic ray in one
    frame of a pair would add its square to the variance). On a colour sensor the mean and the
    variance both add up over the channels, so the ratio holds for the mosaic as a whole.
    :func:`~astrocal_widgets.characterize_camera` does the same block by block, over several pairs.
    """
    f1, f2, b1, b2 = (np.asarray(a, np.float64) for a in (flat1, flat2, bias1, bias2))
    signal = float(f1.mean() + f2.mean() - b1.mean() - b2.mean())
    photon_variance = _clipped_variance(f1 - f2) - _clipped_variance(b1 - b2)
    if not photon_variance > 0:
        raise ValueError("the flats' difference is no noisier than the bias frames': no photon signal to measure")
    return signal / photon_variance


# --------------------------------------------------------------------------- exercises


def _solve_pair_gain(camera: CameraModel, level: float = FLAT_PAIR_LEVEL, shape: tuple[int, int] = TEACHING_SHAPE,
                     seed: int = 0):
    f1, f2, b1, b2 = simulate_flat_pairs(camera, level, shape=shape, seed=seed)
    gain = pair_gain(f1, f2, b1, b2)
    signal = float(f1.mean() + f2.mean() - b1.mean() - b2.mean())
    return round(gain, 3), (
        f"These pairs show {gain:.3f} e-/ADU (the camera's true gain is {camera.gain:g}): the summed signal above "
        f"bias, {signal:.0f} ADU, over var(F1 - F2) - var(B1 - B2) = {signal / gain:.0f} ADU², the variance the "
        "photons add to the difference of the flats.")


def _solve_variance(camera: CameraModel, signal: float = 20000.0):
    v = temporal_variance(camera, signal)
    return round(v, 1), (
        f"S / g + (r / g)² = {signal:g} / {camera.gain:g} + ({camera.read_noise:g} / {camera.gain:g})² = "
        f"{signal / camera.gain:.1f} + {(camera.read_noise / camera.gain) ** 2:.1f} = {v:.1f} ADU²: the photon "
        "noise dominates, which is why flats measure the gain.")


GAIN_FROM_FLAT_PAIRS = register(Exercise(
    "gain-from-flat-pairs",
    "What gain in e-/ADU do these flat pairs show (simulate_flat_pairs(camera))?",
    _solve_pair_gain, tolerance=0.03, topic="camera"))

FLAT_TEMPORAL_VARIANCE = register(Exercise(
    "flat-temporal-variance",
    "A flat is 20000 ADU above bias: what variance (ADU²) does its temporal noise have?",
    _solve_variance, tolerance=0.02, topic="camera"))
