"""Light calibration (``calibrate.apply``): flat normalisation, the calibration formula, dark optimisation.

Exact checks use noise-free frames built from the simulator's ground truth; the dark optimisation
is checked on simulated raw frames (mono and colour) against the k implied by the frames' exposures
and sensor temperatures. Masters are combined here with a plain numpy sigma-clipped mean rather
than ``astrocal_widgets.integrate``: what is tested is calibration, and the integration kernels'
first compilation would cost more than this whole file.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

from astrocal_widgets import simulate_session
from astrocal_widgets.calibrate.apply import (DarkScaleResult, calibrate_frame, normalized_flat,
                                              optimize_dark_scale)
from astrocal_widgets.calibrate.matching import CalibrationWarning
from astrocal_widgets.simulate import simulate_stack

SHAPE = (240, 320)
COUNTS = {"bias": 20, "dark": 10, "flat": 0, "darkflat": 0, "light": 1}
PATTERNS = ("RGGB", "GRBG", "GBRG", "BGGR")


def _load(paths) -> np.ndarray:
    return np.stack([fits.getdata(p).astype(np.float64) for p in paths])


def _master(paths, k: float = 3.0) -> np.ndarray:
    """Mean after one 3-sigma clip about the per-pixel median (cosmic rays and flicker out)."""
    cube = _load(paths)
    med = np.median(cube, axis=0)
    sig = np.maximum(1.4826 * np.median(np.abs(cube - med), axis=0), 1e-6)
    keep = np.abs(cube - med) <= k * sig
    return (np.where(keep, cube, 0.0).sum(0) / keep.sum(0)).astype(np.float32)


def _dark_factor(camera, temperature: float) -> float:
    return 2.0 ** ((temperature - camera.set_temperature) / camera.dark_doubling_temperature)


def _colour_index(pattern: str, shape) -> np.ndarray:
    cell = np.array(["RGB".index(c) for c in pattern]).reshape(2, 2)
    return np.tile(cell, (shape[0] // 2 + 1, shape[1] // 2 + 1))[: shape[0], : shape[1]]


@pytest.fixture(scope="module", params=["mono", "osc"])
def night(request, tmp_path_factory):
    """A simulated night with its masters: bias, darks at 300 s and 60 s, darks 3 °C colder."""
    cam = request.param
    root = tmp_path_factory.mktemp(cam)
    s = simulate_session(root / "night", camera=cam, seed=0, shape=SHAPE, counts=COUNTS)
    fr = s.frames
    darks = fr[fr.kind == "dark"]
    cold = simulate_stack(root / "cold", "dark", 10, shape=SHAPE, seed=0, camera=cam, exposure=300.0,
                          temperature=s.camera.set_temperature - 3.0)
    return {
        "session": s,
        "pattern": s.camera.bayer_pattern or "",
        "bias": _master(s.paths["bias"]),
        "dark": {t: (_master(list(darks[darks.exposure == t].path)), list(darks[darks.exposure == t].ccd_temp))
                 for t in (300.0, 60.0)},
        "cold_dark": (_master(cold.paths["dark"]), list(cold.frames.ccd_temp)),
    }


# --------------------------------------------------------------------------- normalized_flat


def test_normalized_flat_mono_mean_and_median():
    rng = np.random.default_rng(1)
    flat = (20000 * (1 + 0.05 * rng.standard_normal((60, 80)))).astype(np.float32)
    before = flat.copy()
    n = normalized_flat(flat)
    assert n.dtype == np.float32 and n.shape == flat.shape
    assert np.mean(n, dtype=np.float64) == pytest.approx(1.0, abs=1e-6)
    assert np.median(normalized_flat(flat, statistic="median")) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(flat, before)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_normalized_flat_cfa_each_colour_mean_one(pattern):
    shape = (64, 96)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    vignetting = 1 - 0.3 * (((yy - 32) / 40) ** 2 + ((xx - 48) / 60) ** 2)
    gains = np.array([0.6, 1.0, 0.8])  # R, G, B
    colour = _colour_index(pattern, shape)
    flat = (30000 * vignetting * gains[colour]).astype(np.float32)
    n = normalized_flat(flat, pattern)
    for c in range(3):
        assert n[colour == c].mean(dtype=np.float64) == pytest.approx(1.0, abs=1e-6)
    # both green sites share one factor: the ratio between them is kept
    g = colour == 1
    np.testing.assert_allclose(n[g] / flat[g], (n[g] / flat[g])[0], rtol=1e-6)
    # lower case and blanks are accepted
    np.testing.assert_array_equal(normalized_flat(flat, f" {pattern.lower()} "), n)


def test_normalized_flat_guards_bad_pixels():
    flat = np.full((20, 30), 2.0, np.float32)
    flat[0, 0], flat[1, 1], flat[2, 2], flat[3, 3] = 0.0, -5.0, np.nan, np.inf
    before = flat.copy()
    with pytest.warns(CalibrationWarning, match="4 master flat pixel"):
        n = normalized_flat(flat)
    assert np.isnan(n).sum() == 4 and np.all(np.isnan(n[[0, 1, 2, 3], [0, 1, 2, 3]]))
    np.testing.assert_allclose(n[np.isfinite(n)], 1.0)  # <F> from the valid pixels only
    np.testing.assert_array_equal(flat, before)


def test_normalized_flat_errors():
    with pytest.raises(ValueError, match="bayer_pattern"):
        normalized_flat(np.ones((4, 4)), "RGBG")
    with pytest.raises(ValueError, match="statistic"):
        normalized_flat(np.ones((4, 4)), statistic="mode")
    with pytest.raises(ValueError, match="2-D"):
        normalized_flat(np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="not a single positive"):
        normalized_flat(np.zeros((4, 4)))
    flat = np.ones((4, 4))
    flat[0::2, 0::2] = 0.0  # every red pixel of an RGGB mosaic dead
    with pytest.raises(ValueError, match="the R pixels"):
        normalized_flat(flat, "RGGB")


# --------------------------------------------------------------------------- calibrate_frame


def _noise_free(truth, camera, light: int = 0, t_light=300.0, t_dark=60.0, dT_light=0.3, dT_dark=-0.2):
    """Raw light and master dark from the truth, without noise; returns (L, B, D, F, signal, k)."""
    B = truth["bias"].values.astype(np.float64)
    dc = truth["dark_current"].values.astype(np.float64)
    f_light = _dark_factor(camera, camera.set_temperature + dT_light)
    f_dark = _dark_factor(camera, camera.set_temperature + dT_dark)
    filt = str(truth["light_filter"].values[light])
    F = truth["flat"].sel(filter=filt).values.astype(np.float64)
    signal = truth["light_signal"].values[light].astype(np.float64)
    L = B + dc * t_light * f_light + F * signal
    D = B + dc * t_dark * f_dark
    return L, B, D, F, signal, t_light * f_light / (t_dark * f_dark)


@pytest.mark.parametrize("night", ["mono"], indirect=True)
def test_calibrate_frame_recovers_light_signal_mono(night):
    s = night["session"]
    L, B, D, F, signal, k = _noise_free(s.truth, s.camera)
    inputs = [a.copy() for a in (L, B, D, F)]
    # the flat at an arbitrary scale: it is normalised inside
    out = calibrate_frame(L, bias=B, dark=D, flat=3.7 * F, dark_scale=k)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, signal, rtol=1e-5, atol=0.02)
    for a, b in zip((L, B, D, F), inputs, strict=True):
        np.testing.assert_array_equal(a, b)
    # matched dark, no bias: (L - D) / (F / <F>)
    L2, _, D2, _, _, k2 = _noise_free(s.truth, s.camera, t_dark=300.0, dT_dark=0.3)
    assert k2 == pytest.approx(1.0)
    np.testing.assert_allclose(calibrate_frame(L2, dark=D2, flat=F), signal, rtol=1e-5, atol=0.02)
    # pedestal is added after the flat division
    out_p = calibrate_frame(L2, dark=D2, flat=F, pedestal=100.0)
    np.testing.assert_allclose(out_p - 100.0, signal, rtol=1e-5, atol=0.02)


@pytest.mark.parametrize("night", ["osc"], indirect=True)
def test_calibrate_frame_cfa_recovers_signal_without_tint(night):
    s, pat = night["session"], night["pattern"]
    L, B, D, F, signal, k = _noise_free(s.truth, s.camera)
    colour = _colour_index(pat, F.shape)
    chan_mean = np.array([F[colour == c].mean() for c in range(3)])
    assert chan_mean.max() / chan_mean.min() > 1.3  # the flat is strongly coloured
    out = calibrate_frame(L, bias=B, dark=D, flat=F, dark_scale=k, bayer_pattern=pat)
    # per-colour normalisation divides by F / <F>_colour: the light keeps each colour's mean response
    np.testing.assert_allclose(out, signal * chan_mean[colour], rtol=1e-5, atol=0.02)

    # A uniformly lit sky: every colour's mean is what it was before the flat division (no tint) ...
    sky = 1000.0
    raw = B + F * sky
    cal = calibrate_frame(raw, bias=B, flat=F, bayer_pattern=pat)
    for c in range(3):
        assert cal[colour == c].mean() == pytest.approx((raw - B)[colour == c].mean(), rel=1e-5)
        assert cal[colour == c].std() < 1e-3 * sky  # and the flat field is gone within each colour
    # ... whereas one factor for the whole mosaic divides the light by the flat's colour balance.
    tinted = calibrate_frame(raw, bias=B, flat=F)
    ratio = [tinted[colour == c].mean() / (raw - B)[colour == c].mean() for c in range(3)]
    assert max(ratio) / min(ratio) > 1.3


def test_calibrate_frame_partial_calibrations():
    rng = np.random.default_rng(3)
    L = rng.uniform(600, 5000, (16, 24)).astype(np.float32)
    B = rng.uniform(490, 510, (16, 24)).astype(np.float32)
    D = (B + rng.uniform(5, 50, (16, 24))).astype(np.float32)
    np.testing.assert_allclose(calibrate_frame(L), L)
    np.testing.assert_allclose(calibrate_frame(L, bias=B), L - B, atol=1e-3)
    np.testing.assert_allclose(calibrate_frame(L, bias=B, dark=D), L - D, atol=1e-3)
    np.testing.assert_allclose(calibrate_frame(L, bias=B, dark=D, dark_scale=0.5), L - B - 0.5 * (D - B), atol=1e-3)
    np.testing.assert_allclose(calibrate_frame(L, dark=D, pedestal=-7), L - D - 7, atol=1e-3)
    assert calibrate_frame(L.astype(np.uint16), bias=B).dtype == np.float32


def test_calibrate_frame_nan_where_flat_is_dead():
    L = np.full((8, 8), 1500.0)
    F = np.ones((8, 8))
    F[2, 3] = 0.0
    with pytest.warns(CalibrationWarning):
        out = calibrate_frame(L, flat=F)
    assert np.isnan(out[2, 3]) and np.isfinite(np.delete(out.ravel(), 2 * 8 + 3)).all()


def test_calibrate_frame_errors():
    L = np.ones((8, 10))
    with pytest.raises(ValueError, match=r"needs the master bias.*pedestal"):
        calibrate_frame(L, dark=L, dark_scale=2.0)
    with pytest.raises(ValueError, match="no dark"):
        calibrate_frame(L, bias=L, dark_scale=2.0)
    with pytest.raises(ValueError, match=r"dark has shape \(8, 9\) but frame has shape \(8, 10\)"):
        calibrate_frame(L, bias=L, dark=np.ones((8, 9)))
    with pytest.raises(ValueError, match=r"flat has shape \(10, 8\) but frame has shape \(8, 10\)"):
        calibrate_frame(L, flat=np.ones((10, 8)))
    with pytest.raises(ValueError, match="dark_scale"):
        calibrate_frame(L, bias=L, dark=L, dark_scale=-1.0)
    with pytest.raises(ValueError, match="dark_scale"):
        calibrate_frame(L, bias=L, dark=L, dark_scale=float("nan"))


# --------------------------------------------------------------------------- optimize_dark_scale


def _light(night):
    s = night["session"]
    row = s.frames[s.frames.kind == "light"].iloc[0]
    return fits.getdata(row.path), float(row.ccd_temp), float(row.exposure)


def _true_k(camera, t_light, temp_light, t_dark, dark_temps):
    # the master dark's thermal signal is the mean of its frames' (each at its own temperature)
    dark_mean = np.mean([_dark_factor(camera, t) for t in dark_temps])
    return t_light * _dark_factor(camera, temp_light) / (t_dark * dark_mean)


@pytest.mark.parametrize("case", ["matched 300 s", "60 s darks", "3 degC colder darks"])
def test_optimize_dark_scale_recovers_k(night, case):
    """k within 3 % of the truth (measured: within 0.6 % on these frames, mono and colour)."""
    s = night["session"]
    L, temp_light, t_light = _light(night)
    if case == "matched 300 s":
        (D, temps), t_dark, bounds = night["dark"][300.0], 300.0, (0.0, 2.0)
    elif case == "60 s darks":
        (D, temps), t_dark, bounds = night["dark"][60.0], 60.0, (0.0, 10.0)
    else:
        (D, temps), t_dark, bounds = night["cold_dark"], 300.0, (0.0, 2.0)
    k_true = _true_k(s.camera, t_light, temp_light, t_dark, temps)
    inputs = [a.copy() for a in (L, night["bias"], D)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)  # neither at a bound nor a fallback
        res = optimize_dark_scale(L, night["bias"], D, bounds=bounds, bayer_pattern=night["pattern"])
    assert isinstance(res, DarkScaleResult)
    assert res.method == "thermal" and res.at_bound == "" and res.n_pixels >= 100
    assert abs(res.k / k_true - 1) < 0.03, (res.k, k_true)
    assert 10 < res.evaluations < 40 and res.noise > 0
    if case == "3 degC colder darks":
        assert abs(k_true - 1) > 0.35  # the exposure ratio alone (1) would be 30 % off
    for a, b in zip((L, night["bias"], D), inputs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_optimize_dark_scale_central_region_and_mask(night):
    s = night["session"]
    L, temp_light, t_light = _light(night)
    D, temps = night["dark"][60.0]
    k_true = _true_k(s.camera, t_light, temp_light, 60.0, temps)
    region = (slice(60, 180), slice(80, 240))  # the central 50 % x 50 %
    res = optimize_dark_scale(L, night["bias"], D, region=region, bounds=(0, 10), bayer_pattern=night["pattern"])
    assert res.region == region and res.method == "thermal"
    assert abs(res.k / k_true - 1) < 0.03
    mask = np.zeros(L.shape, bool)
    mask[region] = True
    res_m = optimize_dark_scale(L, night["bias"], D, region=mask, bounds=(0, 10), bayer_pattern=night["pattern"])
    assert res_m.k == pytest.approx(res.k, abs=2e-3)


def test_optimize_dark_scale_reports_bound(night):
    L, _, _ = _light(night)
    D, _ = night["dark"][60.0]  # true k ~ 5, outside the default bounds
    with pytest.warns(CalibrationWarning, match="upper bound"):
        res = optimize_dark_scale(L, night["bias"], D, bayer_pattern=night["pattern"])
    assert res.k == 2.0 and res.at_bound == "upper"


def test_optimize_dark_scale_fallback_without_thermal_pixels():
    """A sensor without hot pixels: the rms over the region is used, and the user is told."""
    rng = np.random.default_rng(7)
    shape = (128, 128)
    B = 500.0 + rng.normal(0, 0.3, shape)
    rate = 0.05 * (1 + 0.4 * rng.standard_normal(shape))  # strong DSNU, below per-pixel significance
    D = B + 60 * rate + rng.normal(0, 1.0, shape)
    L = B + 300 * rate + 200 + rng.normal(0, 1.0, shape)
    with pytest.warns(CalibrationWarning, match="significant thermal signal"):
        res = optimize_dark_scale(L, B, D, bounds=(0, 10))
    assert res.method == "all" and res.n_pixels == shape[0] * shape[1]
    assert 0 <= res.k <= 10


def test_optimize_dark_scale_synthetic_exact():
    """Noise-free: the residual vanishes at the true k, found to within tol."""
    rng = np.random.default_rng(11)
    shape = (96, 128)
    B = 500 + rng.normal(0, 2, shape)
    rate = np.full(shape, 0.02)
    hot = rng.random(shape) < 0.01
    rate[hot] *= rng.uniform(100, 1000, hot.sum())
    D = B + 60 * rate
    L = B + 300 * rate + 800 + 50 * np.sin(np.arange(shape[1]) / 9.0)[None, :]
    res = optimize_dark_scale(L, B, D, bounds=(0, 10), tol=1e-4)
    assert res.k == pytest.approx(5.0, abs=2e-4)
    assert res.noise < 0.5  # only the curvature of the smooth sky is left in the high-pass


def test_optimize_dark_scale_errors():
    a = np.ones((32, 32))
    with pytest.raises(ValueError, match=r"dark has shape \(32, 31\) but frame has shape \(32, 32\)"):
        optimize_dark_scale(a, a, np.ones((32, 31)))
    with pytest.raises(ValueError, match="bounds"):
        optimize_dark_scale(a, a, a, bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="bounds"):
        optimize_dark_scale(a, a, a, bounds=(-1.0, 1.0))
    with pytest.raises(ValueError, match="needs the master bias"):
        optimize_dark_scale(a, None, a)
    with pytest.raises(ValueError, match="tol"):
        optimize_dark_scale(a, a, a, tol=0)
    with pytest.raises(ValueError, match="region"):
        optimize_dark_scale(a, a, a, region="centre")
    with pytest.raises(ValueError, match="region mask"):
        optimize_dark_scale(a, a, a, region=np.ones((8, 8), bool))
