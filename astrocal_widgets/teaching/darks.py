"""Darks: dark current against exposure and temperature, hot pixels, dark scaling (notebook 04).

The dark signal of a pixel is ``rate x t x 2**((T - T_set) / T_d)`` electrons: linear in the
exposure t and doubling every ``T_d`` degrees (the camera's ``dark_doubling_temperature``). The
functions here compute what the camera model says (:func:`dark_current_factor`,
:func:`true_dark_scale`, :func:`thermal_signal`) and measure it from frames exposed in memory
(:func:`measure_dark_rates`, :func:`measure_doubling_temperature`), so the notebook and the
exercises compare the two. :func:`detection_scores` compares a found defect map with the truth.

Exercises: ``dark-current-growth`` and ``dark-scale-factor``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..quality.characterize import block_levels, dark_current_fit, doubling_temperature_fit
from ..simulate.camera import CameraModel, SensorModel
from .exercises import Exercise, register
from .exposures import expose_stack, master

__all__ = [
    "dark_current_factor", "true_dark_scale", "thermal_signal", "measure_dark_rates",
    "measure_doubling_temperature", "detection_scores", "scaled_dark_error",
]


def dark_current_factor(camera: CameraModel, from_temperature: float, to_temperature: float) -> float:
    """How many times the dark current grows from one sensor temperature to another (°C).

    ``2 ** ((to - from) / T_d)`` with ``T_d`` the camera's ``dark_doubling_temperature``: below 1
    when cooling.
    """
    return camera.dark_scale(to_temperature) / camera.dark_scale(from_temperature)


def true_dark_scale(camera: CameraModel, *, light_exposure: float, light_temperature: float,
                    dark_exposure: float, dark_temperature: float) -> float:
    """The dark scale k that turns a dark's thermal signal ``D - B`` into the light's.

    ``k = (t_L / t_D) x 2 ** ((T_L - T_D) / T_d)``: exposure scaling alone gives the first factor;
    a light warmer than its darks needs the second too.
    """
    if not (light_exposure >= 0 and dark_exposure > 0):
        raise ValueError("the dark's exposure must be > 0 s and the light's >= 0 s")
    return light_exposure / dark_exposure * dark_current_factor(camera, dark_temperature, light_temperature)


def thermal_signal(sensor: SensorModel, exposure: float, temperature: float) -> np.ndarray:
    """The true mean dark signal of every pixel (ADU): rate x exposure x temperature factor / gain.

    Hot and warm pixels and amp glow included, noise and bias excluded: what a perfect
    ``k (D - B)`` would subtract from a light of that exposure and temperature.
    """
    cam = sensor.camera
    return sensor.dark_rate * np.float32(exposure * cam.dark_scale(temperature) / cam.gain)


def measure_dark_rates(sensor: SensorModel, temperatures: Sequence[float], exposures: Sequence[float] = (60.0, 300.0),
                       *, n_frames: int = 4, n_bias: int = 16, block: int = 32, seed: int = 0) -> pd.DataFrame:
    """Measure the dark current at each temperature from darks exposed in memory.

    At every temperature, ``n_frames`` darks per exposure are averaged and a master bias of
    ``n_bias`` frames subtracted. Each block of ``block x block`` pixels gives its dark signal (the
    interquartile mean: hot pixels and cosmic rays cannot move it) and its rate (the slope of the
    signal against exposure, so a bias offset does not count); the rate is the median over the
    blocks. The blocks kept are chosen at the first temperature (the amp-glow corner is left out)
    and used at every temperature, so all rates describe the same pixels.

    Returns
    -------
    pandas.DataFrame
        One row per temperature: ``temperature`` (°C), ``rate_adu_s``, ``rate_adu_s_err``,
        ``rate_e_s`` (with the camera's gain) and ``n_frames``.
    """
    if len(set(exposures)) < 2:
        raise ValueError("measure_dark_rates needs two exposures or more (the rate is a slope)")
    bias = master(expose_stack(sensor, n_bias, exposure=0.0, seed=seed, label="bias"))
    rows, keep = [], None
    for temp in temperatures:
        levels = [block_levels(master(expose_stack(sensor, n_frames, exposure=t, temperature=temp, seed=seed,
                                                    label="dark")) - bias, block) for t in exposures]
        fit = dark_current_fit(list(exposures), levels, keep)
        keep = fit["keep"] if keep is None else keep
        rows.append({"temperature": float(temp), "rate_adu_s": fit["rate"], "rate_adu_s_err": fit["rate_err"],
                     "rate_e_s": fit["rate"] * sensor.camera.gain, "n_frames": n_frames * len(exposures)})
    return pd.DataFrame(rows)


def measure_doubling_temperature(rates: pd.DataFrame) -> tuple[float, float]:
    """The doubling temperature (°C) and its uncertainty from :func:`measure_dark_rates`' table.

    A straight line through ``log2(rate)`` against temperature: its slope is ``1 / T_d``.
    """
    if len(rates) < 2:
        raise ValueError("the doubling temperature needs dark rates at two temperatures or more")
    return doubling_temperature_fit(rates["temperature"], rates["rate_adu_s"], rates["rate_adu_s_err"])


def detection_scores(found: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Recall and precision of a found defect map against the true one.

    Returns
    -------
    dict
        ``recall`` (fraction of the true defects found), ``precision`` (fraction of the found
        pixels that are true defects; 1 when nothing was found), ``found``, ``true``, ``missed``
        and ``false`` (pixel counts).
    """
    found, truth = np.asarray(found, bool), np.asarray(truth, bool)
    if found.shape != truth.shape:
        raise ValueError(f"maps differ in shape: {found.shape} and {truth.shape}")
    hits = int((found & truth).sum())
    n_found, n_true = int(found.sum()), int(truth.sum())
    return {"recall": hits / n_true if n_true else 1.0, "precision": hits / n_found if n_found else 1.0,
            "found": n_found, "true": n_true, "missed": n_true - hits, "false": n_found - hits}


def scaled_dark_error(sensor: SensorModel, k: float, master_dark: np.ndarray, master_bias: np.ndarray, *,
                      exposure: float, temperature: float) -> dict[str, float]:
    """How far ``k (D - B)`` is from the true dark signal of a light (ADU), hot pixels apart.

    Parameters
    ----------
    sensor : SensorModel
        The sensor the frames came from (its true dark rate).
    k : float
        The dark scale used.
    master_dark, master_bias : ndarray
        D and B.
    exposure, temperature : float
        The light's exposure (s) and sensor temperature (°C).

    Returns
    -------
    dict
        ``mean_adu``: mean error over the ordinary pixels (hot and warm ones left out): the dark
        signal left in (negative) or removed twice (positive). ``hot_rms_adu``: rms error over the
        hot pixels, where a wrong scale shows first. ``hot_true_adu``: their true mean dark signal,
        for scale.
    """
    truth = thermal_signal(sensor, exposure, temperature)
    error = np.float32(k) * (np.asarray(master_dark, np.float32) - np.asarray(master_bias, np.float32)) - truth
    hot = sensor.hot_pixels
    ordinary = ~(hot | sensor.warm_pixels)
    return {"mean_adu": float(error[ordinary].mean(dtype=np.float64)),
            "hot_rms_adu": float(np.sqrt(np.mean(error[hot].astype(np.float64) ** 2))) if hot.any() else 0.0,
            "hot_true_adu": float(truth[hot].mean(dtype=np.float64)) if hot.any() else 0.0}


# --------------------------------------------------------------------------- exercises


def _solve_growth(camera: CameraModel, from_temperature: float = -10.0, to_temperature: float = 0.0):
    factor = dark_current_factor(camera, from_temperature, to_temperature)
    td = camera.dark_doubling_temperature
    return round(factor, 3), (
        f"The dark current doubles every {td:g} °C, so from {from_temperature:g} °C to {to_temperature:g} °C it is "
        f"multiplied by 2 ** (({to_temperature:g} - {from_temperature:g}) / {td:g}) = {factor:.3f}.")


def _solve_scale(camera: CameraModel, light_exposure: float = 300.0, light_temperature: float = -7.0,
                 dark_exposure: float = 60.0, dark_temperature: float = -10.0):
    k = true_dark_scale(camera, light_exposure=light_exposure, light_temperature=light_temperature,
                        dark_exposure=dark_exposure, dark_temperature=dark_temperature)
    td = camera.dark_doubling_temperature
    return round(k, 3), (
        f"k = (t_L / t_D) x 2 ** ((T_L - T_D) / T_d) = ({light_exposure:g} / {dark_exposure:g}) x "
        f"2 ** (({light_temperature:g} - {dark_temperature:g}) / {td:g}) = "
        f"{light_exposure / dark_exposure:g} x {dark_current_factor(camera, dark_temperature, light_temperature):.3f}"
        f" = {k:.3f}. Exposure scaling alone ({light_exposure / dark_exposure:g}) would leave "
        f"{100 * (1 - light_exposure / dark_exposure / k):.0f} % of the light's dark signal in it.")


DARK_CURRENT_GROWTH = register(Exercise(
    "dark-current-growth",
    "By what factor does the dark current grow when the sensor warms from -10 °C to 0 °C?",
    _solve_growth, tolerance=0.03, topic="darks"))

DARK_SCALE_FACTOR = register(Exercise(
    "dark-scale-factor",
    "Your master dark is 60 s at -10 °C, the light 300 s at -7 °C. Which dark scale k makes k (D - B) "
    "equal to the light's dark signal?",
    _solve_scale, tolerance=0.03, topic="darks"))
