"""Camera characterisation (quality.characterize) against the simulator's known camera."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import astrocal_widgets as aw
from astrocal_widgets.quality.characterize import (
    MEDIAN_NOISE_FACTOR, CameraCharacteristics, characterize_camera, dark_current_fit, difference_gain,
    doubling_temperature_fit, frames_needed, master_noise, master_noise_table)

SHAPE = (240, 320)  # 76800 px: 70 blocks of 32 x 32, enough for ~0.2 % (gain) and ~0.3 % (dark) errors
PTC_EXPOSURES = (0.2, 0.6, 2.5)  # L flats: the session's are at 1.5 s (about 47 % of the ADC range)
WARM = -4.0  # one doubling (6 °C) above the set point


@pytest.fixture(scope="module")
def mono(tmp_path_factory):
    root = tmp_path_factory.mktemp("characterize_mono")
    session = aw.simulate_session(root / "night", seed=1, shape=SHAPE, counts={"light": 1})
    # Extra darks at a warmer set point and flats at other levels, in sub-folders of the same
    # tree (same seed and shape: the same sensor), so one scan finds everything.
    aw.simulate_stack(root / "warm", "dark", 10, shape=SHAPE, seed=1, temperature=WARM)
    for i, exposure in enumerate(PTC_EXPOSURES):
        aw.simulate_stack(root / f"ptc{i}", "flat", 4, shape=SHAPE, seed=1, exposure=exposure, filter="L")
    return session, characterize_camera(root)


def test_gain_and_read_noise_within_5_percent(mono):
    session, result = mono
    cam = session.camera
    assert isinstance(result, CameraCharacteristics)
    print(f"\ngain {result.gain} (sim {cam.gain}), read noise {result.read_noise} (sim {cam.read_noise})")
    assert result.gain.value == pytest.approx(cam.gain, rel=0.05)
    assert result.read_noise.value == pytest.approx(cam.read_noise, rel=0.05)
    # Uncertainties are honest figures: small, positive, and the truth is within a few of them.
    assert 0 < result.gain.uncertainty < 0.02 * cam.gain
    assert 0 < result.read_noise.uncertainty < 0.02 * cam.read_noise
    assert abs(result.gain.value - cam.gain) < 4 * result.gain.uncertainty + 0.005 * cam.gain
    # Frames used: real bias and flat files.
    assert all(Path(p).is_file() for p in result.gain.frames)
    kinds = {Path(p).parent.name for p in result.gain.frames}
    assert kinds == {"BIAS", "FLAT"}


def test_photon_transfer_curve(mono):
    session, result = mono
    ptc = result.ptc
    # 2 session filters + 3 extra exposures of L: 5 levels (the L flats split by exposure).
    assert len(ptc.signal) == 5
    assert ptc.signal.max() > 10 * ptc.signal.min()
    # Shot variance is linear in signal with slope 1 / gain at every level.
    np.testing.assert_allclose(ptc.signal / ptc.shot_variance, session.camera.gain, rtol=0.03)
    assert ptc.gain == pytest.approx(session.camera.gain, rel=0.05)
    # Total variance = shot + read noise variance (ADU^2).
    read_var = (session.camera.read_noise / session.camera.gain) ** 2
    np.testing.assert_allclose(ptc.variance - ptc.shot_variance, read_var, rtol=0.05)
    assert list(ptc.table().columns) == ["label", "signal_adu", "variance_adu2", "shot_variance_adu2"]


def test_dark_current_within_5_percent(mono):
    """Compare with the camera's dark current, the right quantity for a median of glow-free pixels.

    ``camera.dark_current`` (0.02 e-/s) is the mean rate of ordinary pixels at the set temperature,
    hot/warm pixels and amp glow excluded; with 10 % Gaussian non-uniformity their median is the
    same. The truth map ``truth['dark_current']`` (ADU/s) includes the amp glow, whose tail
    (1 e-/s at the corner, e-folding 0.08 x width = 26 px) covers a good part of a small frame:
    its whole-frame median is about 5 % above the camera's figure. Over the glow-free blocks the
    measurement used (``dark_region``), the truth's median agrees with the camera's figure.
    """
    session, result = mono
    cam = session.camera
    truth_e = session.truth["dark_current"].values * cam.gain  # e-/s at the set temperature
    region = result.dark_region
    print(f"\ndark current {result.dark_current} at {result.dark_temperature:.2f} °C; camera {cam.dark_current}; "
          f"truth median whole frame {np.median(truth_e):.5f}, glow-free region {np.median(truth_e[region]):.5f} "
          f"({region.mean():.0%} of the frame)")
    assert result.dark_current.value == pytest.approx(cam.dark_current, rel=0.05)
    assert result.dark_current.value == pytest.approx(float(np.median(truth_e[region])), rel=0.05)
    assert result.dark_temperature == pytest.approx(cam.set_temperature, abs=0.1)
    # The amp-glow corner (top-right) is excluded, most of the far (left) side kept (blocks tile
    # the frame from the top-left: rows 224-239 are no whole block and never used).
    assert not region[:96, 224:320].any() and region[:224, :128].mean() > 0.8 and not region[224:].any()
    assert np.median(truth_e) > np.median(truth_e[region])
    assert 0 < result.dark_current.uncertainty < 0.02 * cam.dark_current
    assert sorted(result.dark_series["exposure"].unique()) == [60.0, 300.0]


def test_doubling_temperature_within_10_percent(mono):
    session, result = mono
    print(f"\ndoubling {result.doubling_temperature}; {result.temperature_series.to_dict('records')}")
    assert len(result.temperature_series) == 2
    assert result.doubling_temperature.value == pytest.approx(session.camera.dark_doubling_temperature, rel=0.10)
    rates = result.temperature_series.set_index("set_temperature")["rate_e_s"]
    assert rates[WARM] / rates[session.camera.set_temperature] == pytest.approx(2.0, rel=0.05)


def test_master_noise_against_light(mono):
    session, result = mono
    cam = session.camera
    # One bias frame's temporal noise is the read noise in ADU.
    assert result.bias_sigma_adu == pytest.approx(cam.read_noise / cam.gain, rel=0.05)
    assert result.light_sigma_adu > result.bias_sigma_adu
    t = result.noise_table
    assert set(t["master"]) == {"bias", "dark"}
    bias = t[t["master"] == "bias"]
    np.testing.assert_allclose(bias["average_adu"], result.bias_sigma_adu / np.sqrt(bias["n"]))
    np.testing.assert_allclose(bias["median_adu"], 1.2533 * result.bias_sigma_adu / np.sqrt(bias["n"]), rtol=1e-4)
    for (master, combine), n in result.frames_needed.items():
        sigma = result.bias_sigma_adu if master == "bias" else result.dark_sigma_adu
        m = master_noise(sigma, n, combine)
        assert math.hypot(result.light_sigma_adu, m) <= 1.05 * result.light_sigma_adu + 1e-12
        if n > 1:
            m1 = master_noise(sigma, n - 1, combine)
            assert math.hypot(result.light_sigma_adu, m1) > 1.05 * result.light_sigma_adu
    text = result.summary()
    for word in ("gain", "read noise", "dark current", "doubling", "PTC", "frames add < 5 %"):
        assert word in text


@pytest.mark.parametrize("camera", ["osc"])
def test_colour_camera(tmp_path, camera):
    session = aw.simulate_session(tmp_path, camera=camera, seed=3, shape=SHAPE, counts={"light": 0})
    result = characterize_camera(aw.scan(tmp_path), light_sigma=9.0, n_lights=20)
    cam = session.camera
    print(f"\nosc: gain {result.gain}, read noise {result.read_noise}, dark {result.dark_current}")
    assert result.gain.value == pytest.approx(cam.gain, rel=0.05)
    assert result.read_noise.value == pytest.approx(cam.read_noise, rel=0.05)
    assert result.dark_current.value == pytest.approx(cam.dark_current, rel=0.05)
    # Each CFA plane of each flat level is one PTC point: 2 filters x 4 planes, at different levels.
    assert len(result.ptc.signal) == 8
    assert result.ptc.gain == pytest.approx(cam.gain, rel=0.05)
    # No lights here: the light's noise is given, and the masters judged against a stack of 20.
    assert result.light_sigma_adu == 9.0
    for (master, combine), n in result.frames_needed.items():
        sigma = result.bias_sigma_adu if master == "bias" else result.dark_sigma_adu
        assert n == frames_needed(sigma, 9.0 / math.sqrt(20), combine=combine) > 20
    assert "stack of 20 lights" in result.summary()


# --------------------------------------------------------------------------- pure functions


def test_master_noise_formulas_and_monte_carlo():
    assert master_noise(4.0, 16) == pytest.approx(1.0)
    assert master_noise(4.0, 16, "median") == pytest.approx(MEDIAN_NOISE_FACTOR)
    assert MEDIAN_NOISE_FACTOR == pytest.approx(1.2533, abs=1e-4)
    rng = np.random.default_rng(0)
    n = 25
    frames = rng.normal(0.0, 2.0, size=(n, 40000))
    assert frames.mean(0).std() == pytest.approx(master_noise(2.0, n), rel=0.02)
    assert np.median(frames, 0).std() == pytest.approx(master_noise(2.0, n, "median"), rel=0.04)
    with pytest.raises(ValueError):
        master_noise(1.0, 4, "sum")
    with pytest.raises(ValueError):
        master_noise(1.0, 0)


def test_frames_needed_and_table():
    # master <= light * sqrt(1.05^2 - 1) = 0.3202 light: sigma = light needs N >= 9.75 -> 10.
    assert frames_needed(1.0, 1.0) == 10
    assert frames_needed(1.0, 1.0, combine="median") == math.ceil(MEDIAN_NOISE_FACTOR**2 / (1.05**2 - 1))
    assert frames_needed(0.01, 10.0) == 1
    # Against a stack of 20 lights (the master's noise is common to all of them): 20 x as many.
    assert frames_needed(1.0, 1.0, n_lights=20) == math.ceil(20 / (1.05**2 - 1))
    with pytest.raises(ValueError):
        frames_needed(1.0, 0.0)
    t = master_noise_table(3.0, 6.0, ns=(1, 4, 100), master="bias")
    np.testing.assert_allclose(t["average_adu"], [3.0, 1.5, 0.3])
    np.testing.assert_allclose(t["average_increase_pct"], 100 * (np.sqrt(1 + (t["average_adu"] / 6.0) ** 2) - 1))
    assert (t["median_increase_pct"] > t["average_increase_pct"]).all()


def test_difference_gain_synthetic():
    """Known gain 1.6 e-/ADU and read noise 5 e- with a strong fixed pattern that must cancel."""
    rng = np.random.default_rng(5)
    g, rn, shape = 1.6, 5.0, (256, 256)
    bias = 1000 + rng.normal(0, 3, shape)  # fixed pattern, ADU
    prnu = 1 + 0.02 * rng.standard_normal(shape)
    def frame(electrons):
        e = rng.poisson(electrons * prnu) if electrons else np.zeros(shape)
        return bias + (e + rng.normal(0, rn, shape)) / g
    res = difference_gain([(frame(20000), frame(20000))], [(frame(0), frame(0))])
    assert res["gain"] == pytest.approx(g, rel=0.02)
    assert res["bias_sigma"] * res["gain"] == pytest.approx(rn, rel=0.02)
    assert res["gain_err"] < 0.02 * g


def test_dark_current_fit_and_doubling_synthetic():
    rng = np.random.default_rng(2)
    rate = np.full(100, 0.05) + rng.normal(0, 0.0005, 100)
    rate[:6] += [5, 2, 1, 0.5, 0.2, 0.1]  # a glowing corner
    exposures = [30.0, 120.0, 300.0]
    blocks = [10.0 + rate * t for t in exposures]  # with a bias offset of 10 ADU in the darks
    fit = dark_current_fit(exposures, blocks)
    assert fit["rate"] == pytest.approx(0.05, rel=0.01)
    assert fit["intercept"] == pytest.approx(10.0, abs=0.1)
    assert not fit["keep"][:5].any() and fit["keep"][6:].sum() >= 90
    td, err = doubling_temperature_fit([-20, -10, 0], [0.01, 0.01 * 2 ** (10 / 6.5), 0.01 * 2 ** (20 / 6.5)])
    assert td == pytest.approx(6.5)
    td, err = doubling_temperature_fit([-10, -4], [0.02, 0.04], [0.0002, 0.0004])
    assert td == pytest.approx(6.0) and 0 < err < 0.5


def test_needs_bias_and_flats(tmp_path):
    aw.simulate_stack(tmp_path, "dark", 2, shape=(32, 32), seed=0, exposure=10.0)
    with pytest.raises(ValueError, match="bias"):
        characterize_camera(tmp_path)
