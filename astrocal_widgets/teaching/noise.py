"""Where the noise of a calibrated light comes from, and how many calibration frames are enough.

The sums behind notebook ``02-noise`` and its exercises. Noise is counted in electrons (e-) unless
a name says ADU; a camera's ``gain`` (e-/ADU) converts. One frame's noise is

    sigma^2 = signal + dark current x exposure + read noise^2        (e-^2)

(shot noise of the light and of the dark current, which are Poisson, plus the read noise). The
average of N such frames has ``sigma / sqrt(N)`` (:func:`master_noise`). A master subtracted from
(or dividing) a light adds its own noise to the light's: :func:`noise_increase` says by how much,
:func:`frames_needed` how many frames keep that below a target.

>>> from astrocal_widgets.simulate import camera_preset
>>> camera = camera_preset("mono")
>>> darks_needed(camera, exposure=300, sky_rate=0.08)      # doctest: +SKIP
5
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import quality
from ..simulate.camera import CameraModel, SensorModel, stream_rng
from ..simulate.scene import DEFAULT_FILTERS
from .exercises import Exercise, register

__all__ = [
    "master_noise", "noise_increase", "frames_needed", "dark_signal", "frame_noise", "light_noise",
    "flat_electrons", "master_contributions", "darks_needed", "simulate_frames", "bias_pair",
    "read_noise_from_pair", "NARROWBAND_SKY_RATE", "BROADBAND_SKY_RATE", "FLAT_LEVEL",
]

#: Sky background in e-/s per pixel of the simulator's filters: broadband (L) and narrowband (Ha).
BROADBAND_SKY_RATE: float = DEFAULT_FILTERS["mono"][0].sky_rate
NARROWBAND_SKY_RATE: float = DEFAULT_FILTERS["mono"][1].sky_rate
#: Mean level of the simulator's flats as a fraction of the ADC range (bias included).
FLAT_LEVEL: float = DEFAULT_FILTERS["mono"][0].flat_level


def master_noise(frame_noise: float, n_frames: int) -> float:
    """Noise of the average of ``n_frames`` frames that each have ``frame_noise`` (any unit).

    Independent noises add in quadrature: the sum of N frames has ``sqrt(N) sigma``, and the
    average, that sum divided by N, has ``sigma / sqrt(N)``: :func:`astrocal_widgets.quality.master_noise`,
    which the dashboards use too.
    """
    return float(quality.master_noise(frame_noise, n_frames))


def noise_increase(light_noise: float, master_frame_noise: float, n_frames: int) -> float:
    """Fraction by which a master of ``n_frames`` frames raises a calibrated light's noise.

    Parameters
    ----------
    light_noise : float
        The light's own noise (with a perfect, noiseless master).
    master_frame_noise : float
        Noise of one of the master's frames, as it enters the light (same unit).
    n_frames : int
        Frames in the master (averaged).

    Returns
    -------
    float
        ``sqrt(light^2 + (frame / sqrt(N))^2) / light - 1``; 0.05 means 5 % more noise.
    """
    if not light_noise > 0:
        raise ValueError(f"light_noise must be > 0, got {light_noise}")
    ratio = master_noise(master_frame_noise, n_frames) / light_noise
    return math.sqrt(1.0 + ratio * ratio) - 1.0


def frames_needed(light_noise: float, master_frame_noise: float, max_increase: float = 0.05) -> int:
    """Fewest frames whose master raises the light's noise by less than ``max_increase``.

    From ``sqrt(1 + r^2 / N) < 1 + p`` with ``r = master_frame_noise / light_noise``:
    ``N > r^2 / ((1 + p)^2 - 1)``.
    """
    n = quality.frames_needed(master_frame_noise, light_noise, max_increase=max_increase)
    # That one keeps the increase at most max_increase; here it must stay below it: settle a tie (and
    # any rounding of the closed form) with the definition itself.
    while noise_increase(light_noise, master_frame_noise, n) >= max_increase:
        n += 1
    while n > 1 and noise_increase(light_noise, master_frame_noise, n - 1) < max_increase:
        n -= 1
    return n


def dark_signal(camera: CameraModel, exposure: float, temperature: float | None = None) -> float:
    """Mean dark signal in e- of an exposure (hot pixels and amp glow aside).

    ``camera.dark_current`` is given at ``camera.set_temperature``; another ``temperature`` (°C)
    scales it by the doubling law.
    """
    scale = 1.0 if temperature is None else camera.dark_scale(temperature)
    return camera.dark_current * scale * float(exposure)


def frame_noise(camera: CameraModel, exposure: float = 0.0, signal: float = 0.0,
                temperature: float | None = None) -> float:
    """Noise in e- of one frame: ``sqrt(signal + dark signal + read noise^2)``.

    Parameters
    ----------
    camera : CameraModel
    exposure : float
        Exposure in s (0 for a bias frame).
    signal : float
        Light collected in e- (0 for bias and darks).
    temperature : float, optional
        Sensor temperature in °C, default the camera's set point.
    """
    return math.sqrt(float(signal) + dark_signal(camera, exposure, temperature) + camera.read_noise ** 2)


def light_noise(camera: CameraModel, exposure: float, sky_rate: float, temperature: float | None = None) -> float:
    """Noise in e- of a light of a sky background of ``sky_rate`` e-/s per pixel."""
    return frame_noise(camera, exposure, sky_rate * exposure, temperature)


def flat_electrons(camera: CameraModel, level: float = FLAT_LEVEL) -> float:
    """Light in e- of a flat whose mean raw level is ``level`` of the ADC range (bias included)."""
    return (level * camera.adc_max - camera.bias_level) * camera.gain


def master_contributions(camera: CameraModel, *, exposure: float = 300.0, sky_rate: float = BROADBAND_SKY_RATE,
                         signal: float | None = None, counts: dict[str, int] | None = None,
                         flat_level: float = FLAT_LEVEL, flat_exposure: float = 1.5) -> list[dict]:
    """How much each master adds to the noise of one calibrated light.

    Parameters
    ----------
    camera : CameraModel
    exposure : float
        The light's exposure in s (the darks match it).
    sky_rate : float
        Sky background in e-/s per pixel.
    signal : float, optional
        Light in e- of the pixel considered (default: the sky, ``sky_rate x exposure``); a
        bright nebula or star makes the flat's share larger.
    counts : dict, optional
        Frames per master: ``bias``, ``dark``, ``flat``, ``darkflat`` (default 50, 20, 20, 20).
    flat_level : float
        Mean raw level of the flats, fraction of the ADC range.
    flat_exposure : float
        Exposure of the flats and dark flats in s.

    Returns
    -------
    list of dict
        One row per master: ``master``, ``frames``, ``frame_noise`` (e-, one frame's noise as it
        enters the light), ``master_noise`` (e-), ``light_noise`` and ``light_noise_with`` (e-,
        the light without and with this master's noise) and ``increase_percent``.

    Notes
    -----
    The master dark matches the lights and holds the bias, so a light calibrated with it needs
    no bias; the bias row is for a light calibrated with the master bias alone (exposures so
    short that the dark signal is negligible), where the bias's noise enters as it is. The master
    flat divides the light: its relative noise, ``sqrt(F + R^2) / F`` per flat of ``F`` e-,
    becomes ``signal x`` that in the light. The master dark flat is subtracted from every flat,
    so its noise enters the light the same way, ``signal x sqrt(D_f + R^2) / F``.
    """
    counts = {"bias": 50, "dark": 20, "flat": 20, "darkflat": 20, **(counts or {})}
    light_signal = sky_rate * exposure if signal is None else float(signal)
    sigma_light = frame_noise(camera, exposure, light_signal)
    flat_e = flat_electrons(camera, flat_level)
    per_frame = {
        "bias": camera.read_noise,
        "dark": frame_noise(camera, exposure),
        "flat": light_signal * frame_noise(camera, flat_exposure, flat_e) / flat_e,
        "darkflat": light_signal * frame_noise(camera, flat_exposure) / flat_e,
    }
    # A bias-calibrated light is one short enough to have no dark signal worth a dark frame.
    light_for = {"bias": math.sqrt(light_signal + camera.read_noise ** 2)}
    rows = []
    for name in ("bias", "dark", "flat", "darkflat"):
        n = int(counts[name])
        sigma = light_for.get(name, sigma_light)
        added = master_noise(per_frame[name], n)
        rows.append({
            "master": name, "frames": n, "frame_noise": per_frame[name], "master_noise": added,
            "light_noise": sigma, "light_noise_with": math.hypot(sigma, added),
            "increase_percent": 100.0 * noise_increase(sigma, per_frame[name], n),
        })
    return rows


def darks_needed(camera: CameraModel, exposure: float = 300.0, sky_rate: float = NARROWBAND_SKY_RATE,
                 max_increase: float = 0.05) -> int:
    """Fewest darks whose master adds less than ``max_increase`` to a light's noise.

    The light (``exposure`` s, sky ``sky_rate`` e-/s per pixel) has noise
    ``sqrt(sky + dark + R^2)``; each dark ``sqrt(dark + R^2)``.
    """
    return frames_needed(light_noise(camera, exposure, sky_rate), frame_noise(camera, exposure), max_increase)


def simulate_frames(camera: CameraModel, n_frames: int, *, exposure: float = 0.0, signal: float | None = None,
                    shape: tuple[int, int] = (256, 256), seed: int = 0, defects: bool = False,
                    sensor: SensorModel | None = None, first: int = 0) -> tuple[np.ndarray, SensorModel]:
    """Frames of one kind, straight from the camera model, as float32 ADU (no files).

    Parameters
    ----------
    camera : CameraModel
    n_frames : int
    exposure : float
        Exposure in s: 0 gives bias frames, > 0 darks (or flats with ``signal``).
    signal : float, optional
        Uniform light in e- per pixel before the flat field (a flat panel); None for bias/darks.
    shape : tuple of int
        Frame size (rows, columns).
    seed : int
        Seed of the sensor's fixed maps and of the frames' noise.
    defects : bool
        Hot, warm and cold pixels (off by default: a lesson on noise needs none).
    sensor : SensorModel, optional
        Reuse this sensor (its camera, shape and seed) instead of making one.
    first : int
        Number of the first frame: the same arguments give the same frames, so a second call that
        needs other frames of the same kind starts where the first one stopped.

    Returns
    -------
    frames : ndarray, shape (n_frames, rows, columns), float32
    sensor : SensorModel
        The sensor, whose maps (``bias_map``, ``dark_rate``, ``flat('L')``) are the truth.
    """
    if sensor is None:
        sensor = SensorModel(camera, shape, seed, defects=defects, filter_dust={"L": 0})
    kind = "bias" if exposure == 0 else ("dark" if signal is None else "flat")
    frames = np.empty((int(n_frames),) + sensor.shape, np.float32)
    for i in range(int(n_frames)):
        rng = stream_rng(sensor.seed, "teaching-noise", kind, float(exposure), signal, int(first) + i)
        data, _ = sensor.expose(rng, exposure=exposure, temperature=sensor.camera.set_temperature,
                                illumination=signal, filter_name=None if signal is None else "L")
        frames[i] = data
    return frames, sensor


def bias_pair(camera: CameraModel, *, shape: tuple[int, int] = (256, 256), seed: int = 0) -> np.ndarray:
    """Two bias frames (float32 ADU, shape (2, rows, columns)) without cosmic-ray hits.

    The hits are left out so that a plain standard deviation of the pair's difference measures
    the read noise (one hit of a few thousand e- would dominate it).
    """
    quiet = dataclasses.replace(camera, cosmic_ray_readout_hits=0.0, cosmic_ray_rate=0.0)
    frames, _ = simulate_frames(quiet, 2, shape=shape, seed=seed)
    return frames


def read_noise_from_pair(pair: np.ndarray) -> float:
    """Read noise in ADU measured from two bias frames: ``std(b1 - b2) / sqrt(2)``.

    The difference cancels the pedestal and its fixed row and column pattern, and holds the read
    noise of both frames, hence the ``sqrt(2)``.
    """
    difference = np.asarray(pair[0], np.float64) - np.asarray(pair[1], np.float64)
    return float(difference.std() / math.sqrt(2.0))


# --- exercises ---------------------------------------------------------------------------------

def _solve_darks(camera: CameraModel, exposure: float = 300.0, sky_rate: float = NARROWBAND_SKY_RATE,
                 max_increase: float = 0.05) -> tuple[int, str]:
    n = darks_needed(camera, exposure, sky_rate, max_increase)
    sky, dark, read2 = sky_rate * exposure, dark_signal(camera, exposure), camera.read_noise ** 2
    light, one_dark = light_noise(camera, exposure, sky_rate), frame_noise(camera, exposure)
    below = noise_increase(light, one_dark, n - 1) if n > 1 else float("nan")
    return n, (
        f"A {exposure:g} s light has sky {sky:.1f} e-, dark {dark:.1f} e- and read noise^2 {read2:.2f} e-^2: "
        f"noise {light:.2f} e-. One dark has sqrt({dark:.1f} + {read2:.2f}) = {one_dark:.2f} e-, a master of N "
        f"darks {one_dark:.2f}/sqrt(N). The light's noise grows by sqrt(1 + ({one_dark:.2f}/{light:.2f})^2 / N) - 1, "
        f"which is below {100 * max_increase:g} % from N = {n} "
        f"({100 * noise_increase(light, one_dark, n):.2f} %"
        + (f"; {n - 1} darks give {100 * below:.2f} %)." if n > 1 else ").")
    )


def _solve_pair(camera: CameraModel, seed: int = 0, shape: tuple[int, int] = (256, 256)) -> tuple[float, str]:
    measured = read_noise_from_pair(bias_pair(camera, shape=shape, seed=seed))
    return round(measured, 3), (
        f"std(b1 - b2) / sqrt(2) = {measured:.3f} ADU: the difference removes the pedestal and the fixed "
        f"pattern and holds two frames' read noise. The camera's true read noise is {camera.read_noise:g} e- / "
        f"{camera.gain:g} e-/ADU = {camera.read_noise / camera.gain:.3f} ADU."
    )


DARKS_FOR_5_PERCENT = register(Exercise(
    "darks-for-5-percent",
    "How many darks do you need for the master dark to add less than 5 % to the noise of a 300 s "
    "narrowband light (sky 0.08 e-/s per pixel)?",
    _solve_darks, tolerance=0, topic="noise",
))

BIAS_PAIR_READ_NOISE = register(Exercise(
    "bias-pair-read-noise",
    "What read noise in ADU does the bias pair `bias_pair(camera)` show?",
    _solve_pair, tolerance=0.03, topic="noise",
))
