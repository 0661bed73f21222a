"""Notebooks 02 (noise) and 03 (rejection): their exercises and their public sums against simulations.

The notebooks themselves are executed by tests/teaching/test_notebooks.py (once each), which checks their
figures with tests/notebook_checks.py."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import astrocal_widgets as aw
from astrocal_widgets.simulate import camera_preset
from astrocal_widgets.teaching import check_answer, exercises
from astrocal_widgets.teaching import noise, rejection

MONO = camera_preset("mono")
# A second camera unlike the first: a noisier, cooler, higher-gain sensor (CCD-like).
OTHER = dataclasses.replace(MONO, name="test CCD", read_noise=7.0, dark_current=0.01, gain=1.5, bias_level=1000.0)
CAMERAS = [pytest.param(MONO, id="mono"), pytest.param(OTHER, id="other")]
QUIET = {"cosmic_ray_rate": 0.0, "cosmic_ray_readout_hits": 0.0}


def test_the_exercises_are_registered_under_their_topics():
    known = exercises()
    for name, topic in (("darks-for-5-percent", "noise"), ("bias-pair-read-noise", "noise"),
                        ("sigma-clip-fewest-frames", "rejection"), ("faintest-rejected-hit", "rejection")):
        assert known[name].topic == topic


# --- exercises: right and wrong on two cameras ------------------------------------------------------

def test_darks_for_5_percent_follows_the_camera():
    answers = {}
    for camera in (MONO, OTHER):
        # From the definition: the light's noise, one dark's, and the fewest N below 5 %.
        sky, dark = 0.08 * 300, camera.dark_current * 300
        light, one = math.sqrt(sky + dark + camera.read_noise ** 2), math.sqrt(dark + camera.read_noise ** 2)
        n = next(n for n in range(1, 1000) if math.sqrt(1 + one ** 2 / (n * light ** 2)) - 1 < 0.05)
        answers[camera.name] = n
        assert check_answer("darks-for-5-percent", n, camera)
        verdict = check_answer("darks-for-5-percent", n - 1, camera)
        assert not verdict and verdict.expected == n and "%" in verdict.explanation
        assert not check_answer("darks-for-5-percent", n + 1, camera)
    assert answers[MONO.name] != answers[OTHER.name]  # the two cameras are told apart
    # Another target: the option reaches the solver.
    assert check_answer("darks-for-5-percent", noise.darks_needed(MONO, max_increase=0.01), MONO, max_increase=0.01)


@pytest.mark.parametrize("camera", CAMERAS)
def test_bias_pair_read_noise(camera):
    pair = noise.bias_pair(camera)
    measured = float(np.std(pair[0].astype(np.float64) - pair[1]) / math.sqrt(2))
    assert measured == pytest.approx(camera.read_noise / camera.gain, rel=0.02)  # the pair shows the truth
    assert check_answer("bias-pair-read-noise", measured, camera)
    assert check_answer("bias-pair-read-noise", camera.read_noise / camera.gain, camera)
    assert not check_answer("bias-pair-read-noise", measured * 1.1, camera)
    assert not check_answer("bias-pair-read-noise", camera.read_noise, camera) or camera.gain == 1.0  # e-, not ADU
    assert not check_answer("bias-pair-read-noise", "four", camera)
    assert not check_answer("bias-pair-read-noise", None, camera)


@pytest.mark.parametrize("camera", CAMERAS)
def test_sigma_clip_fewest_frames(camera):
    assert check_answer("sigma-clip-fewest-frames", 10, camera)
    assert not check_answer("sigma-clip-fewest-frames", 9, camera)
    assert not check_answer("sigma-clip-fewest-frames", 11, camera)
    assert check_answer("sigma-clip-fewest-frames", 7, camera, k=2.5)
    assert not check_answer("sigma-clip-fewest-frames", 10, camera, k=2.5)


@pytest.mark.parametrize("camera", CAMERAS)
def test_faintest_rejected_hit(camera):
    sigma = math.sqrt(1.5 * 60 + camera.dark_current * 60 + camera.read_noise ** 2)
    assert check_answer("faintest-rejected-hit", 3 * sigma, camera)
    assert check_answer("faintest-rejected-hit", 3 * sigma * 1.03, camera)
    assert not check_answer("faintest-rejected-hit", 3 * sigma * 1.2, camera)
    assert not check_answer("faintest-rejected-hit", 3 * sigma / camera.gain, camera)  # ADU, not e-
    assert check_answer("faintest-rejected-hit", 4 * sigma, camera, k=4.0)


# --- the public sums against simulations -------------------------------------------------------------

def test_frames_needed_is_the_fewest_below_the_target():
    # The worst case r = 1 gives the rules of thumb; every answer is the fewest N below the target.
    assert [noise.frames_needed(1.0, 1.0, p) for p in (0.025, 0.01, 0.005)] == [20, 50, 100]
    for light, frame, target in ((6.5, 4.27, 0.05), (21.6, 4.27, 0.01), (3.0, 9.0, 0.02)):
        n = noise.frames_needed(light, frame, target)
        assert noise.noise_increase(light, frame, n) < target
        assert n == 1 or noise.noise_increase(light, frame, n - 1) >= target


@pytest.mark.parametrize("camera", CAMERAS)
def test_master_noise_falls_as_sqrt_n(camera):
    quiet = dataclasses.replace(camera, **QUIET)
    frames, sensor = noise.simulate_frames(quiet, 36, shape=(160, 160), seed=3)
    frame_sigma = math.sqrt((camera.read_noise / camera.gain) ** 2 + 1 / 12)  # rounding to ADU as well
    for n in (1, 4, 9, 36):
        measured = float((frames[:n].mean(axis=0) - sensor.bias_map).std())
        assert measured == pytest.approx(noise.master_noise(frame_sigma, n), rel=0.03), n


@pytest.mark.parametrize("camera", CAMERAS)
def test_a_master_dark_adds_what_noise_increase_says(camera):
    quiet = dataclasses.replace(camera, amp_glow=0.0, **QUIET)
    exposure, sky = 300.0, 0.08 * 300.0
    darks, sensor = noise.simulate_frames(quiet, 3, exposure=exposure, shape=(200, 200), seed=5)
    lights, _ = noise.simulate_frames(quiet, 1, exposure=exposure, signal=sky, sensor=sensor)
    expected_light = sensor.bias_map + (sensor.dark_rate * exposure + sensor.flat("L") * sky) / quiet.gain
    with_master = float((lights[0] - darks.mean(axis=0) - (expected_light - sensor.bias_map
                                                           - sensor.dark_rate * exposure / quiet.gain)).std())
    perfect = float((lights[0] - expected_light).std())
    increase = noise.noise_increase(noise.light_noise(quiet, exposure, sky / exposure),
                                    noise.frame_noise(quiet, exposure), 3)
    assert increase > 0.05  # big enough to be measured
    assert with_master / perfect - 1 == pytest.approx(increase, abs=0.015)
    assert perfect * quiet.gain == pytest.approx(noise.light_noise(quiet, exposure, sky / exposure), rel=0.03)


def test_the_master_flat_adds_what_master_contributions_says():
    camera = dataclasses.replace(MONO, vignetting=0.0, dust_donuts=0, **QUIET)
    flat_e, n_flats, signal = 20000.0, 2, 20000.0
    flats, sensor = noise.simulate_frames(camera, n_flats, exposure=1.5, signal=flat_e, shape=(200, 200), seed=7)
    lights, _ = noise.simulate_frames(camera, 1, exposure=1.5, signal=signal, sensor=sensor, first=n_flats)
    offset = sensor.bias_map + sensor.dark_rate * 1.5 / camera.gain
    master_flat = (flats - offset).mean(axis=0)
    master_flat /= master_flat.mean()
    light = lights[0] - offset
    truth = signal / camera.gain
    with_master = float((light / master_flat - truth).std()) * camera.gain
    perfect = float((light / sensor.flat("L") - truth).std()) * camera.gain
    row = next(r for r in noise.master_contributions(camera, exposure=1.5, signal=signal, counts={"flat": n_flats},
                                                     flat_level=(flat_e / camera.gain + camera.bias_level)
                                                     / camera.adc_max)
               if r["master"] == "flat")
    assert row["increase_percent"] > 10
    assert 100 * (with_master / perfect - 1) == pytest.approx(row["increase_percent"], abs=2.0)


def test_lone_outlier_algebra_matches_integrate():
    rng = np.random.default_rng(1)
    for k in (3.0, 2.5):
        n_min = rejection.sigma_clip_min_frames(k)
        assert math.sqrt(n_min) > k >= math.sqrt(n_min - 1)
        shares = {}
        for n in range(n_min - 2, n_min + 1):
            stack = rng.normal(100.0, 1.0, (n, 20, 20)).astype(np.float32)
            stack[0] += 1e5  # one outlier at every pixel, far brighter than the noise
            result = aw.integrate(stack, rejection="sigma", low=k, high=k).compute()
            shares[n] = float((result["rejected_high"].values > 0).mean())
        assert shares[n_min] == 1.0 and shares[n_min - 2] == 0.0, (k, shares)
        if k * k == n_min - 1:  # N = k^2 exactly: a tie the noise decides, pixel by pixel
            assert 0.0 < shares[n_min - 1] < 1.0, (k, shares)
        else:
            assert shares[n_min - 1] == 0.0, (k, shares)


@pytest.mark.parametrize("camera", CAMERAS)
def test_faintest_rejected_hit_is_rejected_half_the_time(camera):
    hit_e = rejection.faintest_rejected_hit(camera, 3.0)
    sigma_adu = noise.light_noise(camera, 60.0, noise.BROADBAND_SKY_RATE) / camera.gain
    rng = np.random.default_rng(2)
    stack = rng.normal(500.0, sigma_adu, (200, 40, 50)).astype(np.float32)
    # Noise alone has values beyond 3 sigma too: the hit was rejected where one more value went.
    clean = aw.integrate(stack, rejection="sigma", low=3.0, high=3.0).compute()["rejected_high"].values
    shares = []
    for factor in (0.8, 1.0, 1.2):
        hit = stack.copy()
        hit[7] += np.float32(factor * hit_e / camera.gain)
        result = aw.integrate(hit, rejection="sigma", low=3.0, high=3.0).compute()
        shares.append(float((result["rejected_high"].values > clean).mean()))
    assert shares[0] < 0.4 < shares[1] < 0.6 < shares[2]


def test_rejection_stack_holds_its_truth():
    stack = rejection.rejection_stack(MONO, 6, shape=(120, 160), seed=2, trail_frame=3)
    residual = (np.delete(stack.frames, 3, axis=0) - stack.truth) / stack.noise  # the frames without the trail
    clean = residual[:, stack.valid]
    assert float(np.median(np.abs(clean))) == pytest.approx(0.6745, rel=0.05)  # the noise model is right
    assert stack.trail_pixels.sum() > 100
    assert float((stack.frames[3] - stack.truth)[stack.trail_pixels].mean()) > 20 * float(np.median(stack.noise))
    assert all(n > 5 for n in stack.cosmic_rays)
    assert not stack.subset(3).trail.any() and stack.subset(4).trail.any()
    table = rejection.compare_rejections(stack, ("none", "winsorized_sigma"))
    assert table.loc["none", "trail_error"] > 10 * table.loc["winsorized_sigma", "trail_error"]
    assert table.loc["winsorized_sigma", "rms_error"] < 1.3 * stack.noise_floor()
