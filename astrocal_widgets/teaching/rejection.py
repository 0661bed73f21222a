"""Pixel rejection on a stack whose truth is known: the sums and the stack behind notebook ``03-rejection``.

:func:`rejection_stack` simulates registered lights of one field with the mono camera, calibrates
them with the sensor's *true* bias, dark and flat (so that noise, one satellite trail and cosmic
rays are all that is left), and keeps the true sky-and-stars signal. :func:`compare_rejections`
integrates the stack with each algorithm and measures the master's error against that truth.

The exercises' algebra is here too: sigma clipping measures each value's deviation from the median
in units of the stack's sample standard deviation, and one outlier can only reach
:func:`lone_outlier_score` of them, however bright it is.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..integrate import REJECTIONS, integrate
from ..simulate.camera import CameraModel, SensorModel, camera_preset, stream_rng
from ..simulate.scene import DEFAULT_FILTERS, LightConditions, Scene
from .exercises import Exercise, register
from .noise import BROADBAND_SKY_RATE, light_noise

__all__ = ["RejectionStack", "rejection_stack", "master_errors", "compare_rejections", "lone_outlier_score",
           "sigma_clip_min_frames", "faintest_rejected_hit", "ALGORITHMS"]

#: Every rejection algorithm, without ``auto`` (which picks one of them by the frame count).
ALGORITHMS: tuple[str, ...] = tuple(name for name in REJECTIONS if name != "auto")


@dataclass(frozen=True)
class RejectionStack:
    """Calibrated lights of one field, a satellite trail and cosmic rays in them, and the truth.

    Attributes
    ----------
    frames : ndarray, shape (n, rows, columns), float32
        The lights in ADU, calibrated with the sensor's true bias, dark and flat.
    truth : ndarray, shape (rows, columns), float32
        What every frame would show without noise, trail and cosmic rays (ADU).
    noise : ndarray, shape (rows, columns), float32
        Expected noise of one calibrated frame at each pixel (ADU): shot noise of the sky, stars
        and dark current, read noise and rounding, divided by the flat.
    trail : ndarray, shape (rows, columns), float32
        The satellite trail's signal in frame ``trail_frame`` (ADU).
    trail_frame : int
        The frame the satellite crossed.
    valid : ndarray of bool, shape (rows, columns)
        Pixels unsaturated in every frame: only these can be compared with the truth.
    cosmic_rays : tuple of int
        Cosmic-ray hits in each frame.
    camera : CameraModel
    exposure : float
        Exposure of each light in s.
    """

    frames: np.ndarray
    truth: np.ndarray
    noise: np.ndarray
    trail: np.ndarray
    trail_frame: int
    valid: np.ndarray
    cosmic_rays: tuple[int, ...]
    camera: CameraModel
    exposure: float

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def trail_pixels(self) -> np.ndarray:
        """Pixels where the trail is brighter than one frame's noise (and valid)."""
        return (self.trail > self.noise) & self.valid

    def subset(self, n_frames: int) -> "RejectionStack":
        """The first ``n_frames`` frames (the trail frame among them when ``n_frames > trail_frame``)."""
        if not 1 <= n_frames <= self.n_frames:
            raise ValueError(f"n_frames must be 1..{self.n_frames}, got {n_frames}")
        trail = self.trail if self.trail_frame < n_frames else np.zeros_like(self.trail)
        return dataclasses.replace(self, frames=self.frames[:n_frames], trail=trail,
                                   cosmic_rays=self.cosmic_rays[:n_frames])

    def noise_floor(self) -> float:
        """RMS error (ADU, valid pixels) of the average of this many clean frames: ``noise / sqrt(n)``."""
        return float(np.sqrt(np.mean(np.square(self.noise[self.valid], dtype=np.float64)) / self.n_frames))


def rejection_stack(camera: CameraModel | str = "mono", n_frames: int = 12, *, shape: tuple[int, int] = (200, 300),
                    seed: int = 0, exposure: float = 60.0, filter_name: str = "L", trail_frame: int = 0,
                    cosmic_rays_per_frame: float = 20.0) -> RejectionStack:
    """Simulate a stack of registered lights with a satellite trail and cosmic rays.

    Parameters
    ----------
    camera : CameraModel or str
        The camera (a preset name or a model); its cosmic-ray rate is raised to
        ``cosmic_rays_per_frame`` so the lesson has some to reject.
    n_frames : int
        Lights in the stack.
    shape : tuple of int
        Frame size (rows, columns).
    seed : int
        Seed of the sensor, the field and the noise.
    exposure : float
        Exposure of each light in s.
    filter_name : str
        One of the simulator's mono filters (``'L'`` or ``'Ha'``): sky level and star brightness.
    trail_frame : int
        The frame the satellite crosses (-1: none).
    cosmic_rays_per_frame : float
        Mean number of cosmic-ray hits per frame.

    Returns
    -------
    RejectionStack
    """
    model = camera_preset(camera) if isinstance(camera, str) else camera
    npix_mega = shape[0] * shape[1] / 1e6
    rate = max(cosmic_rays_per_frame / npix_mega - model.cosmic_ray_readout_hits, 0.0) / exposure
    model = dataclasses.replace(model, cosmic_ray_rate=rate)
    filters = {f.name: f for f in DEFAULT_FILTERS["mono"]}
    if filter_name not in filters:
        raise ValueError(f"unknown filter {filter_name!r}; choose one of {sorted(filters)}")
    filt = filters[filter_name]
    sensor = SensorModel(model, shape, seed, defects=False)
    scene = Scene(shape, seed)
    # Registered frames: no dither, median seeing, the filter's own sky, so one truth serves all.
    still = LightConditions(dx=0.0, dy=0.0, seeing=Scene.SEEING, sky_scale=1.0)
    sky_and_stars = scene.sky_and_stars(filt, exposure, still)
    trail_e = scene.trail(filt)
    flat = sensor.flat(filter_name)
    dark_e = sensor.dark_rate * np.float32(exposure)
    gain = np.float32(model.gain)
    frames = np.empty((int(n_frames),) + sensor.shape, np.float32)
    saturated = np.zeros(sensor.shape, bool)
    hits = []
    for i in range(int(n_frames)):
        light = sky_and_stars + trail_e if i == trail_frame else sky_and_stars
        raw, n_hits = sensor.expose(stream_rng(seed, "teaching-rejection", i), exposure=exposure,
                                    temperature=model.set_temperature, illumination=light, filter_name=filter_name)
        saturated |= raw >= model.adc_max
        frames[i] = (raw - sensor.bias_map - dark_e / gain) / flat
        hits.append(n_hits)
    # Variance of one calibrated frame, in ADU^2: Poisson light and dark signal, read noise, rounding.
    variance = (flat * sky_and_stars + dark_e + np.float32(model.read_noise) ** 2) / gain ** 2 + np.float32(1 / 12)
    noise = (np.sqrt(variance) / flat).astype(np.float32)
    return RejectionStack(frames=frames, truth=(sky_and_stars / gain).astype(np.float32), noise=noise,
                          trail=(trail_e / gain).astype(np.float32) if 0 <= trail_frame < n_frames
                          else np.zeros(sensor.shape, np.float32),
                          trail_frame=int(trail_frame), valid=~saturated, cosmic_rays=tuple(hits),
                          camera=model, exposure=float(exposure))


def master_errors(result, stack: RejectionStack) -> dict[str, float]:
    """How far an integration of ``stack`` is from the truth.

    Parameters
    ----------
    result : xarray.Dataset
        What :func:`~astrocal_widgets.integrate.integrate` returned for ``stack.frames`` (computed or lazy).
    stack : RejectionStack

    Returns
    -------
    dict
        ``rms_error`` (ADU, valid pixels), ``mean_error`` (ADU: a bias, when the thresholds are
        lopsided), ``trail_error`` (RMS on the trail's pixels, ADU),
        ``worst_error`` (largest absolute error, ADU), ``rejected_percent`` (values rejected, % of
        all), ``noise_floor`` (the RMS error of an average of as many clean frames, ADU).
    """
    master = np.asarray(result["master"].values, np.float64)
    error = (master - stack.truth)[stack.valid]
    on_trail = (master - stack.truth)[stack.trail_pixels]
    rejected = (np.asarray(result["rejected_low"].values, np.int64).sum()
                + np.asarray(result["rejected_high"].values, np.int64).sum())
    return {
        "rms_error": float(np.sqrt(np.mean(error ** 2))),
        "mean_error": float(error.mean()),
        "trail_error": float(np.sqrt(np.mean(on_trail ** 2))) if on_trail.size else 0.0,
        "worst_error": float(np.abs(error).max()),
        "rejected_percent": float(100.0 * rejected / stack.frames.size),
        "noise_floor": stack.noise_floor(),
    }


def compare_rejections(stack: RejectionStack, algorithms: tuple[str, ...] | None = None,
                       thresholds: dict[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """Integrate ``stack`` with each algorithm and measure the master against the truth.

    Parameters
    ----------
    stack : RejectionStack
    algorithms : tuple of str, optional
        Rejections to run (default :data:`ALGORITHMS`; ``'auto'`` is allowed).
    thresholds : dict, optional
        ``{algorithm: (low, high)}`` for the algorithms not run with their defaults.

    Returns
    -------
    pandas.DataFrame
        One row per algorithm (index), columns ``ran`` (the algorithm that ran, which differs for
        ``auto`` and fallbacks), ``low``, ``high`` and those of :func:`master_errors`.
    """
    rows = {}
    for name in algorithms or ALGORITHMS:
        low, high = (thresholds or {}).get(name, (None, None))
        result = integrate(stack.frames, rejection=name, low=low, high=high).compute()
        rows[name] = {"ran": result.attrs["rejection"], "low": result.attrs["low"], "high": result.attrs["high"],
                      **master_errors(result, stack)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "rejection"
    return table


def lone_outlier_score(n_frames: int) -> float:
    """Largest deviation, in sample standard deviations, that one outlier reaches in ``n_frames`` values.

    With N - 1 equal values and one outlier A above them, the median is the common value (N >= 3),
    the outlier's deviation is A and the sample standard deviation (N - 1 in the denominator) is
    ``A / sqrt(N)``: the score is ``sqrt(N)`` whatever A is. Noise on the other values moves it by a
    fraction of the order of noise / A, either way.
    """
    if n_frames < 3:
        raise ValueError(f"sigma clipping needs at least 3 values, got {n_frames}")
    return math.sqrt(n_frames)


def sigma_clip_min_frames(k: float = 3.0) -> int:
    """Fewest frames in which sigma clipping at ``k`` sigma is sure to reject a lone, bright outlier.

    The outlier is rejected when its score, ``sqrt(N)`` (:func:`lone_outlier_score`), exceeds k:
    ``N > k^2``. When ``k^2`` is a whole number, ``N = k^2`` is a tie that the noise of the other
    values decides (the outlier goes in some pixels and stays in others); below it, never.
    """
    if not k > 0:
        raise ValueError(f"k must be > 0, got {k}")
    return max(3, math.floor(k * k) + 1)


def faintest_rejected_hit(camera: CameraModel, k: float = 3.0, exposure: float = 60.0,
                          sky_rate: float = BROADBAND_SKY_RATE) -> float:
    """Cosmic-ray charge (e- in one pixel) that sigma clipping at ``k`` rejects half the time in a large stack.

    In a large stack the median is the pixel's true value and the spread its noise sigma (e-), so a
    hit of ``h`` e- is rejected when ``h + noise > k sigma``: more often than not once ``h > k sigma``.
    """
    return k * light_noise(camera, exposure, sky_rate)


# --- exercises ---------------------------------------------------------------------------------

def _solve_min_frames(camera: CameraModel, k: float = 3.0) -> tuple[int, str]:
    n = sigma_clip_min_frames(k)
    return n, (
        f"With N - 1 equal values and one outlier A, the median is the common value, the outlier's deviation "
        f"is A and the sample standard deviation is A / sqrt(N): the outlier scores sqrt(N) sigma however "
        f"bright it is (the noise of the other values moves that only by a hair). It is rejected when "
        f"sqrt(N) > {k:g}, i.e. N > {k * k:g}: N = {n} (sqrt({n}) = {math.sqrt(n):.3f}; with {n - 1} frames the "
        f"score is {math.sqrt(n - 1):.3f}, "
        + ("a tie that the noise decides). " if math.isclose(math.sqrt(n - 1), k) else "not enough). ")
        + f"This holds for any camera ({camera.name})."
    )


def _solve_faintest_hit(camera: CameraModel, k: float = 3.0, exposure: float = 60.0,
                        sky_rate: float = BROADBAND_SKY_RATE) -> tuple[float, str]:
    sigma = light_noise(camera, exposure, sky_rate)
    hit = faintest_rejected_hit(camera, k, exposure, sky_rate)
    return round(hit, 1), (
        f"A {exposure:g} s light has sky {sky_rate * exposure:.1f} e-, dark {camera.dark_current * exposure:.2f} e- "
        f"and read noise {camera.read_noise:g} e-: sigma = {sigma:.2f} e-. In a large stack the median is the "
        f"true value and the spread is sigma, so a hit is rejected more often than not above {k:g} x {sigma:.2f} "
        f"= {hit:.1f} e- ({hit / camera.gain:.1f} ADU at {camera.gain:g} e-/ADU)."
    )


SIGMA_CLIP_MIN_FRAMES = register(Exercise(
    "sigma-clip-fewest-frames",
    "What is the fewest frames for which sigma clipping at 3 sigma is sure to reject a lone outlier, however bright?",
    _solve_min_frames, tolerance=0, topic="rejection",
))

FAINTEST_REJECTED_HIT = register(Exercise(
    "faintest-rejected-hit",
    "In a large stack of 60 s L lights (sky 1.5 e-/s per pixel), how many electrons must a cosmic ray leave in "
    "a pixel for sigma clipping at 3 sigma to reject it more often than not?",
    _solve_faintest_hit, tolerance=0.05, topic="rejection",
))
