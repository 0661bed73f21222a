"""Flats: vignetting and dust, dark flats, colour flats and the flat's level (notebook 05).

A flat records how much of a uniform light each pixel receives (vignetting, dust donuts, pixel
response). Its level must be set by the exposure: :func:`expected_flat_median` says where the
simulated panel puts the flat's median for an exposure, and :func:`flat_exposure_for_level` which
exposure puts it at a given fraction of the ADC range. :func:`flat_residuals` measures what a
calibration with the wrong flat (or a flat without its dark flat) leaves in a light.
:func:`channel_flat_levels` gives a colour camera's R, G and B flat levels relative to each other.

The panel follows the simulator's definition of a filter (:class:`~astrocal_widgets.simulate.FilterSpec`):
flats at the filter's ``flat_exposure`` have a mean raw level of ``flat_level`` of the ADC range,
bias included, and other exposures scale linearly.

Exercises: ``flat-exposure-half-range`` and ``flat-weakest-channel``.
"""
from __future__ import annotations

import math

import numpy as np

from ..simulate.camera import CameraModel, SensorModel, bayer_channels, camera_preset
from ..simulate.scene import FilterSpec
from .exercises import Exercise, register
from .exposures import TEACHING_SHAPE, default_filters, teaching_sensor

__all__ = [
    "filter_spec", "panel_rate", "expected_flat_median", "flat_exposure_for_level", "flat_residuals",
    "channel_flat_levels", "channel_masks",
]

_COLOURS = ("R", "G", "B")
_COLOUR_WORDS = {"red": "R", "green": "G", "blue": "B"}


def filter_spec(camera: CameraModel, name: str | None = None) -> FilterSpec:
    """The simulator's filter ``name`` for ``camera`` (default its first: L for mono, UVIRCut for colour)."""
    filters = {f.name: f for f in default_filters(camera)}
    if name is None:
        return next(iter(filters.values()))
    if name not in filters:
        raise ValueError(f"unknown filter {name!r} for this camera; its filters are {list(filters)}")
    return filters[name]


def panel_rate(sensor: SensorModel, filt: FilterSpec) -> float:
    """Electrons per second the flat panel gives a pixel of flat field 1 through ``filt``.

    Set, as the simulator sets it, so that a flat at ``filt.flat_exposure`` has a mean raw level of
    ``filt.flat_level`` of the ADC range: the bias pedestal and the dark signal make up the rest.
    """
    cam = sensor.camera
    target = (filt.flat_level * cam.adc_max - cam.bias_level) * cam.gain
    dark = float(sensor.dark_rate.mean(dtype=np.float64)) * filt.flat_exposure
    return max(target - dark, 0.0) / filt.flat_exposure


def expected_flat_median(sensor: SensorModel, filt: FilterSpec, exposure: float) -> float:
    """Median raw level (ADU) of a flat of ``exposure`` seconds: bias + (light + dark signal) / gain.

    Noise-free (the noise is symmetric and leaves the median where it is), clipped to the ADC range.
    """
    cam = sensor.camera
    electrons = sensor.flat(filt.name) * np.float32(panel_rate(sensor, filt) * exposure)
    electrons += sensor.dark_rate * np.float32(exposure)
    np.minimum(electrons, np.float32(cam.full_well), out=electrons)
    level = sensor.bias_map + electrons / np.float32(cam.gain)
    return float(np.median(np.clip(level, 0, cam.adc_max)))


def flat_exposure_for_level(camera: CameraModel | str = "mono", filter: str | None = None, level: float = 0.5, *,
                            shape: tuple[int, int] = TEACHING_SHAPE, seed: int = 0) -> float:
    """The flat exposure (s) that puts the flat's median at ``level`` of the ADC range.

    Parameters
    ----------
    camera : CameraModel or str
    filter : str, optional
        Filter name (default the camera's first filter).
    level : float
        Target median as a fraction of the ADC range (0.5: half range, what NINA's flat wizard aims at).
    shape, seed : as for :func:`~astrocal_widgets.teaching.exposures.teaching_sensor`
        The median depends a little on the vignetting and dust of that sensor.

    Raises
    ------
    ValueError
        A level the bias pedestal already exceeds, or one the sensor cannot reach.
    """
    model = camera_preset(camera)
    sensor = teaching_sensor(model, shape, seed)
    filt = filter_spec(model, filter)
    target = level * model.adc_max
    if not expected_flat_median(sensor, filt, 0.0) < target < model.adc_max:
        raise ValueError(f"a flat median of {level:.0%} of the ADC range is out of reach "
                         f"(bias {model.bias_level:g} ADU, ADC maximum {model.adc_max})")
    lo, hi = 0.0, filt.flat_exposure
    while expected_flat_median(sensor, filt, hi) < target:
        lo, hi = hi, 2 * hi
        if hi > 1e6:
            raise ValueError("the flat never reaches that level (full well below it?)")
    for _ in range(50):  # the median grows with the exposure: bisection to 1e-15 of the bracket
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if expected_flat_median(sensor, filt, mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


def flat_residuals(calibrated: np.ndarray, expected: float | np.ndarray, *, block: int = 16) -> dict[str, float]:
    """What a flat left in a calibrated light of a uniform sky, in per cent of the sky.

    Parameters
    ----------
    calibrated : ndarray
        The calibrated light (bias and dark subtracted, divided by the normalised flat).
    expected : float or ndarray
        The true sky in ADU before the flat: what a perfect calibration gives.
    block : int
        Side of the blocks averaged for ``worst_block_pct`` (beats the shot noise down).

    Returns
    -------
    dict
        ``gradient_pct``: the outer ring (radius over 80 % of the centre-to-corner distance) minus
        the centre (under 25 %): negative when the corners come out too dark (under-correction),
        positive when too bright (over-correction). ``worst_block_pct``: the ``block x block`` mean
        farthest from the overall mean, signed (a dust donut or an amp-glow corner left over).
        ``mean_pct``: the overall offset.
    """
    rel = np.asarray(calibrated, np.float64) / np.asarray(expected, np.float64) - 1.0
    h, w = rel.shape
    y, x = np.ogrid[:h, :w]
    r = np.hypot(y - (h - 1) / 2, x - (w - 1) / 2) / math.hypot((h - 1) / 2, (w - 1) / 2)
    finite = np.isfinite(rel)
    outer, centre = finite & (r > 0.8), finite & (r < 0.25)
    nby, nbx = h // block, w // block
    blocks = np.nanmedian(rel[: nby * block, : nbx * block].reshape(nby, block, nbx, block).swapaxes(1, 2)
                          .reshape(nby, nbx, block * block), axis=2)
    mean = float(np.nanmean(rel))
    worst = blocks.flat[int(np.nanargmax(np.abs(blocks - mean)))] - mean
    return {"gradient_pct": 100 * float(rel[outer].mean() - rel[centre].mean()),
            "worst_block_pct": 100 * float(worst), "mean_pct": 100 * mean}


def channel_flat_levels(camera: CameraModel | str = "osc", filter: str | None = None) -> dict[str, float]:
    """A colour camera's flat levels per channel through ``filter``, relative to the strongest (1).

    Each channel sees the panel through its own filter dye (``camera.channel_response``) and the
    filter's own colour (:attr:`FilterSpec.colour`).

    Raises
    ------
    ValueError
        A monochrome camera (no colour filter array).
    """
    model = camera_preset(camera)
    if model.bayer_pattern is None:
        raise ValueError("a monochrome camera has one flat level: channel levels need a colour camera "
                         "(a bayer_pattern, e.g. camera='osc')")
    filt = filter_spec(model, filter)
    levels = {c: r * t for c, r, t in zip(_COLOURS, model.channel_response, filt.colour)}
    strongest = max(levels.values())
    return {c: v / strongest for c, v in levels.items()}


def channel_masks(camera: CameraModel, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Boolean maps of the R, G and B pixels of a colour camera's mosaic (empty for mono)."""
    chan = bayer_channels(camera.bayer_pattern, shape)
    return {} if chan is None else {c: chan == i for i, c in enumerate(_COLOURS)}


# --------------------------------------------------------------------------- exercises


def _solve_half_range(camera: CameraModel, filter: str | None = None, level: float = 0.5,
                      shape: tuple[int, int] = TEACHING_SHAPE, seed: int = 0):
    filt = filter_spec(camera, filter)
    t = flat_exposure_for_level(camera, filt.name, level, shape=shape, seed=seed)
    return round(t, 3), (
        f"Through {filt.name} a {filt.flat_exposure:g} s flat has a mean raw level of {filt.flat_level:.0%} of the "
        f"ADC range, bias ({camera.bias_level:g} ADU) included; the light part grows linearly with the exposure, "
        f"so the median reaches {level:.0%} ({level * camera.adc_max:.0f} ADU) at {t:.3f} s.")


def _solve_weakest(camera: CameraModel, filter: str | None = None):
    levels = channel_flat_levels(camera, filter)
    weakest = min(levels, key=levels.get)
    listing = ", ".join(f"{c} {v:.2f}" for c, v in levels.items())
    name = filter_spec(camera, filter).name
    return weakest, (f"Through {name} the channels' levels relative to the strongest are {listing} "
                     f"(the sensor's response times the filter's colour): {weakest} is the weakest, so it "
                     "sets the flat exposure if every channel must have enough signal.")


def _accept_colour(answer, expected) -> bool:
    text = str(answer).strip().lower()
    return _COLOUR_WORDS.get(text, text.upper()) == expected


FLAT_EXPOSURE_HALF_RANGE = register(Exercise(
    "flat-exposure-half-range",
    "Which flat exposure (s) puts the flat's median at half the ADC range for this camera and filter?",
    _solve_half_range, tolerance=0.03, topic="flats"))

FLAT_WEAKEST_CHANNEL = register(Exercise(
    "flat-weakest-channel",
    "Through the colour camera's filter, which channel of the flat is the weakest: 'R', 'G' or 'B'?",
    _solve_weakest, accept=_accept_colour, topic="flats"))
