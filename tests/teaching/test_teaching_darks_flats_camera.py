"""Notebooks 04-darks, 05-flats and 06-camera: their exercises, helpers and measured figures.

Every exercise is checked right and wrong on two cameras (the answers must follow the camera), the
helpers against frames simulated with the camera model, and each notebook is executed and its
``Measured against the truth:`` figures parsed and held against the truth.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from astrocal_widgets.simulate import camera_preset, simulate_stack
from astrocal_widgets.teaching import check_answer, exercises
from astrocal_widgets.teaching.camera import pair_gain, simulate_flat_pairs, temporal_variance
from astrocal_widgets.teaching.darks import (dark_current_factor, detection_scores, measure_dark_rates,
                                             measure_doubling_temperature, scaled_dark_error, thermal_signal,
                                             true_dark_scale)
from astrocal_widgets.teaching.exposures import expose_stack, master, teaching_sensor
from astrocal_widgets.teaching.flats import (channel_flat_levels, expected_flat_median, filter_spec,
                                             flat_exposure_for_level, flat_residuals, panel_rate)

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (128, 160)

MONO = camera_preset("mono")
# Another camera: other gain, read noise, dark current, doubling temperature, set point and channel response.
OTHER_MONO = dataclasses.replace(MONO, gain=1.3, read_noise=5.0, dark_current=0.05, dark_doubling_temperature=4.5,
                                 set_temperature=-5.0, bias_level=800.0)
OSC = camera_preset("osc")
OTHER_OSC = dataclasses.replace(OSC, channel_response=(0.9, 1.0, 0.5), gain=1.1)


def _wrong(expected):
    return expected * 1.3 if isinstance(expected, float) else expected + 1


# --------------------------------------------------------------------------- exercises


@pytest.mark.parametrize("name, options", [
    ("dark-current-growth", {}),
    ("dark-current-growth", {"from_temperature": -20, "to_temperature": -5}),
    ("dark-scale-factor", {}),
    ("flat-exposure-half-range", {"shape": SHAPE}),
    ("flat-exposure-half-range", {"shape": SHAPE, "filter": "Ha"}),
    ("gain-from-flat-pairs", {"shape": SHAPE}),
    ("flat-temporal-variance", {}),
])
def test_numeric_exercises_right_and_wrong_on_two_cameras(name, options):
    answers = {}
    for camera in (MONO, OTHER_MONO):
        verdict = check_answer(name, 0.0, camera=camera, **options)
        expected = verdict.expected
        answers[camera.name + str(camera.gain)] = expected
        assert check_answer(name, expected, camera=camera, **options), name
        wrong = check_answer(name, _wrong(expected), camera=camera, **options)
        assert not wrong and "the answer is" in str(wrong)
        assert not check_answer(name, "no idea", camera=camera, **options)  # never raises on a silly answer
    first, second = answers.values()
    if name != "flat-exposure-half-range":  # the simulated panel is set in ADU: see the test below
        assert not math.isclose(first, second, rel_tol=0.03), f"{name}: the answer does not follow the camera"


def test_flat_exposure_follows_the_filter_and_the_pedestal():
    """The simulator's panel gives ``flat_level`` of the ADC range (bias included) at the filter's flat exposure,
    so the half-range exposure follows the filter, and the camera through its bias pedestal and ADC range."""
    pedestal = dataclasses.replace(MONO, bias_level=6000.0, bit_depth=15)
    for camera in (MONO, pedestal):
        for name in ("L", "Ha"):
            filt = filter_spec(camera, name)
            t = check_answer("flat-exposure-half-range", 0, camera=camera, shape=SHAPE, filter=name).expected
            pedestal_left = camera.adc_max * np.array([0.5, filt.flat_level]) - camera.bias_level
            light_part = pedestal_left[0] / pedestal_left[1]
            assert t == pytest.approx(filt.flat_exposure * light_part, rel=0.015)  # the median is not the mean
    mono_answer = check_answer("flat-exposure-half-range", 0, camera=MONO, shape=SHAPE).expected
    assert not check_answer("flat-exposure-half-range", mono_answer, camera=pedestal, shape=SHAPE)


def test_dark_exercises_match_the_doubling_law():
    for camera in (MONO, OTHER_MONO):
        growth = check_answer("dark-current-growth", 0, camera=camera).expected
        assert growth == pytest.approx(2 ** (10 / camera.dark_doubling_temperature), rel=1e-3)
        k = check_answer("dark-scale-factor", 0, camera=camera).expected
        assert k == pytest.approx(5 * 2 ** (3 / camera.dark_doubling_temperature), rel=1e-3)


def test_flat_exposure_answer_puts_simulated_flats_at_half_range(tmp_path):
    """The answer is checked against flats the simulator writes, not against its own formula."""
    for camera in (MONO, OTHER_MONO):
        t = check_answer("flat-exposure-half-range", 0, camera=camera, shape=SHAPE, seed=4).expected
        written = simulate_stack(tmp_path / camera.name / str(camera.gain), "flat", 2, shape=SHAPE, seed=4,
                                 camera=camera, exposure=t, filter="L")
        from astrocal_widgets import open_frames
        median = float(np.median(open_frames(written.paths["flat"]).isel(frame=0).values)) / camera.adc_max
        assert median == pytest.approx(0.5, abs=0.005)


def test_gain_exercise_is_near_the_true_gain():
    for camera in (MONO, OTHER_MONO, OSC):
        expected = check_answer("gain-from-flat-pairs", 0, camera=camera, shape=SHAPE).expected
        assert expected == pytest.approx(camera.gain, rel=0.03)
        assert check_answer("gain-from-flat-pairs", camera.gain, camera=camera, shape=SHAPE)


@pytest.mark.parametrize("camera, filt, weakest", [(OSC, None, "R"), (OSC, "LExtreme", "G"), (OTHER_OSC, None, "B"),
                                                   (OTHER_OSC, "LExtreme", "B")])
def test_weakest_channel_follows_the_camera(camera, filt, weakest):
    options = {} if filt is None else {"filter": filt}
    assert check_answer("flat-weakest-channel", weakest, camera=camera, **options)
    word = {"R": "red", "G": "green", "B": "blue"}[weakest]
    assert check_answer("flat-weakest-channel", word.capitalize(), camera=camera, **options)
    for other in {"R", "G", "B"} - {weakest}:
        assert not check_answer("flat-weakest-channel", other, camera=camera, **options)
    assert not check_answer("flat-weakest-channel", None, camera=camera, **options)


def test_weakest_channel_needs_a_colour_camera():
    with pytest.raises(ValueError, match="colour camera"):
        check_answer("flat-weakest-channel", "R", camera=MONO)


def test_the_topic_exercises_are_registered():
    names = {n: e.topic for n, e in exercises().items()}
    for name in ("dark-current-growth", "dark-scale-factor", "flat-exposure-half-range", "flat-weakest-channel",
                 "gain-from-flat-pairs", "flat-temporal-variance"):
        assert name in names


# --------------------------------------------------------------------------- helpers against simulations


@pytest.mark.parametrize("camera", [MONO, OTHER_MONO], ids=["mono", "other"])
def test_measured_dark_rates_and_doubling_temperature(camera):
    sensor = teaching_sensor(camera, SHAPE, seed=5)
    temps = [camera.set_temperature - 5, camera.set_temperature, camera.set_temperature + 5]
    rates = measure_dark_rates(sensor, temps, seed=5)
    truth = [camera.dark_current * camera.dark_scale(t) for t in temps]
    np.testing.assert_allclose(rates["rate_e_s"], truth, rtol=0.05)
    doubling, err = measure_doubling_temperature(rates)
    assert doubling == pytest.approx(camera.dark_doubling_temperature, rel=0.05)
    assert 0 < err < 0.5
    assert dark_current_factor(camera, temps[0], temps[2]) == pytest.approx(truth[2] / truth[0])


def test_detection_scores_and_thermal_signal():
    sensor = teaching_sensor(MONO, SHAPE, seed=6)
    bias = master(expose_stack(sensor, 8, exposure=0.0, seed=6, label="bias"))
    dark = master(expose_stack(sensor, 6, exposure=300.0, seed=6, label="dark"))
    # The master dark minus bias is the true thermal signal, within its noise.
    residual = (dark - bias) - thermal_signal(sensor, 300.0, MONO.set_temperature)
    assert abs(float(np.median(residual))) < 0.3
    from astrocal_widgets.calibrate import defect_map
    found = defect_map(dark, bias=bias, k_hot=150).hot
    scores = detection_scores(found, sensor.hot_pixels)
    assert scores["true"] == int(sensor.hot_pixels.sum()) > 0
    assert scores["recall"] > 0.9 and scores["precision"] > 0.9
    empty = detection_scores(np.zeros_like(found), sensor.hot_pixels)
    assert empty["recall"] == 0 and empty["precision"] == 1.0 and empty["missed"] == empty["true"]


def test_true_dark_scale_minimises_the_scaled_dark_error():
    sensor = teaching_sensor(MONO, SHAPE, seed=7)
    bias = master(expose_stack(sensor, 8, exposure=0.0, seed=7, label="bias"))
    dark = master(expose_stack(sensor, 8, exposure=60.0, seed=7, label="dark"))
    k = true_dark_scale(MONO, light_exposure=300, light_temperature=-7, dark_exposure=60, dark_temperature=-10)
    assert k == pytest.approx(5 * 2 ** 0.5)
    right = scaled_dark_error(sensor, k, dark, bias, exposure=300, temperature=-7)
    short = scaled_dark_error(sensor, 5.0, dark, bias, exposure=300, temperature=-7)
    assert abs(right["mean_adu"]) < 0.5 and short["mean_adu"] < -3
    assert right["hot_rms_adu"] < 0.1 * short["hot_rms_adu"]


@pytest.mark.parametrize("camera", [MONO, OSC], ids=["mono", "osc"])
def test_expected_flat_median_matches_simulated_flats(camera):
    sensor = teaching_sensor(camera, SHAPE, seed=8)
    filt = filter_spec(camera)
    for exposure in (0.5 * filt.flat_exposure, filt.flat_exposure):
        flats = expose_stack(sensor, 2, exposure=exposure, illumination=panel_rate(sensor, filt) * exposure,
                             filter_name=filt.name, seed=8, label="flat")
        assert float(np.median(flats[0])) == pytest.approx(expected_flat_median(sensor, filt, exposure), rel=0.003)
    assert flat_exposure_for_level(camera, filt.name, 0.3, shape=SHAPE, seed=8) < \
        flat_exposure_for_level(camera, filt.name, 0.6, shape=SHAPE, seed=8)
    with pytest.raises(ValueError):
        flat_exposure_for_level(camera, filt.name, 0.001, shape=SHAPE, seed=8)  # below the bias pedestal


def test_flat_residuals_see_under_correction():
    from astrocal_widgets.calibrate import calibrate_frame
    sensor = teaching_sensor(MONO, SHAPE, seed=9)
    filt = filter_spec(MONO, "Ha")
    t = flat_exposure_for_level(MONO, "Ha", 0.1, shape=SHAPE, seed=9)
    flat = master(expose_stack(sensor, 8, exposure=t, illumination=panel_rate(sensor, filt) * t,
                               filter_name="Ha", seed=9, label="flat"))
    dark_flat = master(expose_stack(sensor, 8, exposure=t, seed=9, label="darkflat"))
    bias = master(expose_stack(sensor, 8, exposure=0.0, seed=9, label="bias"))
    sky = 10000.0
    light = expose_stack(sensor, 1, exposure=1.0, illumination=sky, filter_name="Ha", seed=9, label="light")[0]
    right = flat_residuals(calibrate_frame(light, bias=bias, flat=flat - dark_flat), sky / MONO.gain)
    no_dark_flat = flat_residuals(calibrate_frame(light, bias=bias, flat=flat), sky / MONO.gain)
    no_flat = flat_residuals(calibrate_frame(light, bias=bias), sky / MONO.gain)
    assert abs(right["gradient_pct"]) < 0.3
    assert no_dark_flat["gradient_pct"] < -0.8  # the pedestal left in the flat: corners under-corrected
    assert no_flat["gradient_pct"] < -10 and no_flat["worst_block_pct"] < -10


def test_channel_levels_and_temporal_variance():
    assert channel_flat_levels(OSC) == pytest.approx({"R": 0.6, "G": 1.0, "B": 0.8})
    with pytest.raises(ValueError, match="colour camera"):
        channel_flat_levels(MONO)
    for camera in (MONO, OTHER_MONO):
        f1, f2, b1, b2 = simulate_flat_pairs(camera, 0.3, shape=SHAPE, seed=10)
        signal = float(np.mean(f1 + f2 - b1 - b2) / 2)
        measured = float(np.var(f1 - f2) / 2)
        assert measured == pytest.approx(temporal_variance(camera, signal), rel=0.05)
        assert pair_gain(f1, f2, b1, b2) == pytest.approx(camera.gain, rel=0.03)
    with pytest.raises(ValueError):
        temporal_variance(MONO, -1.0)
