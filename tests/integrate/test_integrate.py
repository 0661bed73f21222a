"""The public ``integrate()``: algorithm choice, peers, normalisation, weights, combination, NaN,
bad input, laziness, chunks, progress and provenance attrs.

Expected values come from test vectors computed by hand from the published definitions (Siril,
PixInsight, IRAF), from a normalisation example, from short independent re-implementations of the definitions written
here, or from peers (astropy ``sigma_clip``, ``ccdproc.combine``, numpy) -- never from the code
under test.
"""
from __future__ import annotations

import json
import math
import threading
import warnings

import dask
import numpy as np
import pytest
import xarray as xr
from astropy.stats import sigma_clip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import astrocal_widgets as aw
from astrocal_widgets.errors import AstrocalError, IncompatibleFramesError
from astrocal_widgets.integrate import IntegrationWarning, integrate
from astrocal_widgets.integrate import combine as combine_module
from astrocal_widgets.integrate.estimators import frame_subsample, noise_sigma
from astrocal_widgets.io import READ_STATISTICS

from conftest import skip_or_fail, write_frame

SHAPE = (64, 96)


def std_ddof1(a, axis=None):
    """Our spread: the sample standard deviation (N - 1) of the kept values."""
    return np.nanstd(a, axis=axis, ddof=1)


def min_keep(n_valid):
    """The documented guard: a pixel never keeps fewer than max(3, ceil(n/2)) values."""
    return np.maximum(3, (np.asarray(n_valid) + 1) // 2)


def tile(values, shape=(2, 3)):
    """A cube whose every pixel holds the same stack ``values``."""
    v = np.asarray(values, dtype=np.float64)
    return np.ascontiguousarray(np.broadcast_to(v[:, None, None], (v.size,) + shape))


def run(cube, **kw):
    """integrate and compute (threaded), warnings of IntegrationWarning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        return integrate(cube, **kw).compute(scheduler="threads")


@pytest.fixture(scope="module")
def bias_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bias")
    aw.simulate_stack(root, "bias", 8, shape=SHAPE, seed=0)
    return root


# --- auto rule and fallbacks -----------------------------------------------------------------

def _auto_expected(n):
    # The rule of experienced PixInsight users: N < 7 percentile; 7-10 averaged sigma; 11-25 Winsorized; > 25 linear fit
    if n < 7:
        return "percentile"
    if n <= 10:
        return "averaged_sigma"
    if n <= 25:
        return "winsorized_sigma"
    return "linear_fit"


@pytest.mark.parametrize("n", [3, 6, 7, 10, 11, 25, 26])
def test_auto_rule_records_and_runs_its_choice(n):
    rng = np.random.default_rng(n)
    cube = 1000 + rng.normal(0, 10, (n, 6, 8))
    cube[0, 2, 3] = 5000  # an outlier, so that the algorithms differ in what they do
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto within its range warns about nothing
        ds = integrate(cube)
    expected = _auto_expected(n)
    assert ds.attrs["rejection"] == expected
    assert ds.attrs["rejection_requested"] == "auto"
    assert str(n) in ds.attrs["rejection_reason"] and expected in ds.attrs["rejection_reason"]
    explicit = run(cube, rejection=expected)
    got = ds.compute()
    for var in ("master", "rejected_low", "rejected_high", "contributing"):
        np.testing.assert_array_equal(got[var].values, explicit[var].values)
    if n > 3:
        assert got.rejected_high.values[2, 3] == 1  # the 5000 goes, whatever the algorithm
    else:  # documented guard: never fewer than 3 values kept, so 3 frames reject nothing
        assert (got.contributing.values == 3).all()


@pytest.mark.parametrize("rejection, n, fallback", [
    ("sigma", 4, "percentile"), ("winsorized_sigma", 3, "percentile"), ("linear_fit", 4, "percentile"),
    ("esd", 4, "percentile"), ("sigma", 2, "none"), ("percentile", 2, "none"), ("auto", 2, "none"),
    ("auto", 1, "none"),
])
def test_too_small_stack_warns_and_falls_back(rejection, n, fallback):
    cube = tile([100.0, 101.0, 99.0, 400.0][:n])
    with pytest.warns(IntegrationWarning) as record:
        ds = integrate(cube, rejection=rejection)
    assert any(f"fell back to {fallback}" in str(w.message) for w in record)
    assert ds.attrs["rejection"] == fallback
    assert "fell back" in ds.attrs["rejection_reason"]


def test_fallback_uses_its_own_default_thresholds():
    # sigma thresholds (3 sigma) mean nothing to percentile (fractions of the median: 3 = 300 %);
    # the fallback must run with percentile's defaults 0.2 / 0.1 and so catch the 400
    cube = tile([100.0, 101.0, 99.0, 400.0])
    with pytest.warns(IntegrationWarning, match="fell back to percentile"):
        ds = integrate(cube, rejection="sigma", low=3, high=3).compute()
    assert (ds.attrs["low"], ds.attrs["high"]) == (0.2, 0.1)
    assert (ds.rejected_high.values == 1).all()
    np.testing.assert_allclose(ds.master.values, 100.0, rtol=1e-6)


# --- test vectors computed by hand from the definitions, through integrate --------------------

SET1 = [145, 125, 190, 135, 220, 130, 210, 3, 165, 165, 150, 350, 170, 180, 195, 440, 215, 135, 410, 40,
        140, 175]


@pytest.mark.parametrize("values, kw, n_low, n_high, mean", [
    (SET1, dict(rejection="sigma", low=3, high=3), 0, 0, 185.818182),
    (SET1, dict(rejection="sigma", low=2, high=2), 2, 3, 167.352941),
    (SET1, dict(rejection="winsorized_sigma", low=3, high=3), 2, 3, 167.352941),
    (SET1, dict(rejection="percentile", pl=0.3, ph=0.4), 2, 3, 167.352941),
    (SET1, dict(rejection="esd", max_outliers=0.33, alpha=0.05), 2, 3, 167.352941),   # 7 candidates
    ([1000, 1002, 998, 1001, 999, 1003, 997, 1000, 1001, 5000], dict(rejection="sigma", kl=3, kh=3), 0, 1,
     1000.111111),
    ([100, 101, 99, 100, 102, 98, 100, 101, 99, 100], dict(rejection="esd"), 0, 0, 100.0),
    ([100, 98, 102, 101, 99, 97, 103, 100, 130, 60, 100], dict(rejection="esd", low=0.3, high=0.05), 1, 1, 100.0),
    ([9, 13, 15, 15, 17, 18, 18, 19, 21, 23, 24, 24, 25, 31, 33], dict(rejection="winsorized_sigma", low=2, high=2),
     0, 2, 18.538462),
])
def test_algorithms_md_vectors(values, kw, n_low, n_high, mean):
    # frame order shuffled: the result must not depend on it
    values = np.random.default_rng(0).permutation(values)
    ds = run(tile(values), **kw)
    assert (ds.rejected_low.values == n_low).all() and (ds.rejected_high.values == n_high).all()
    assert (ds.contributing.values == len(values) - n_low - n_high).all()
    np.testing.assert_allclose(ds.master.values, mean, rtol=2e-7 * 4)


# --- sigma clipping against astropy and ccdproc ------------------------------------------------

def _astropy_sigma(cube64, kl, kh):
    """astropy configured as our sigma: median centre, sample std (ddof=1), iterate to convergence."""
    return sigma_clip(cube64, sigma_lower=kl, sigma_upper=kh, cenfunc="median", stdfunc=std_ddof1,
                      maxiters=None, axis=0, masked=True)


def _compare_sigma_with_astropy(cube32, kl, kh, weights=None):
    cube64 = cube32.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy: "input contains NaNs"
        clipped = _astropy_sigma(cube64, kl, kh)
        median = np.nanmedian(cube64, axis=0)
    mask = clipped.mask & ~np.isnan(cube64)
    n_valid = (~np.isnan(cube64)).sum(axis=0)
    rejected = mask.sum(axis=0)
    # pixels the guard cannot touch: astropy never goes below max(3, ceil(n/2)) kept values
    comparable = n_valid - rejected >= min_keep(n_valid)
    ds = run(cube32, rejection="sigma", low=kl, high=kh, weights=weights)
    ours = (ds.rejected_low + ds.rejected_high).values
    np.testing.assert_array_equal(ours[comparable], rejected[comparable])
    # low / high by side of the centre (the median of the kept values at the last pass); a value below
    # the median of all values is also below the final centre for these outlier stacks
    low = (mask & (cube64 < median)).sum(axis=0)
    np.testing.assert_array_equal(ds.rejected_low.values[comparable], low[comparable])
    np.testing.assert_array_equal(ds.contributing.values[comparable], (n_valid - rejected)[comparable])
    w = np.ones(cube32.shape[0]) if weights is None else np.asarray(weights, float)
    kept = np.where(mask | np.isnan(cube64), 0.0, 1.0) * w[:, None, None]
    expected = np.nansum(np.nan_to_num(cube64) * kept, axis=0) / kept.sum(axis=0)
    np.testing.assert_allclose(ds.master.values[comparable], expected[comparable], rtol=1e-6)
    return comparable, rejected


def _outlier_cube(rng, n, shape, n_out, n_nan, sigma=10.0):
    cube = 1000 + rng.normal(0, sigma, (n,) + shape)
    for _ in range(n_out):
        idx = (rng.integers(0, n, shape),) + tuple(np.indices(shape))
        cube[idx] += rng.choice([-1, 1], shape) * rng.uniform(5, 100, shape) * sigma
    for _ in range(n_nan):
        idx = (rng.integers(0, n, shape),) + tuple(np.indices(shape))
        cube[idx] = np.nan
    return cube.astype(np.float32)


def test_sigma_agrees_with_astropy_sigma_clip():
    rng = np.random.default_rng(42)
    cube = _outlier_cube(rng, 15, (30, 40), n_out=2, n_nan=1)
    comparable, rejected = _compare_sigma_with_astropy(cube, 3.0, 3.0)
    assert comparable.mean() > 0.99          # the guard is not what this test is about
    assert rejected[comparable].sum() > 1500  # and the data do make it reject (iterating: >2 per pixel)
    assert (rejected > 2).any()


def test_weighted_sigma_average_agrees_with_astropy_mask():
    rng = np.random.default_rng(7)
    cube = _outlier_cube(rng, 12, (10, 12), n_out=1, n_nan=1)
    weights = rng.uniform(0.5, 2.0, 12)
    _compare_sigma_with_astropy(cube, 2.5, 3.5, weights=weights)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 30), n_out=st.integers(0, 3),
       n_nan=st.integers(0, 2), kl=st.sampled_from([2.0, 2.5, 3.0, 4.0]), kh=st.sampled_from([2.5, 3.0, 5.0]))
def test_sigma_agrees_with_astropy_property(seed, n, n_out, n_nan, kl, kh):
    cube = _outlier_cube(np.random.default_rng(seed), n, (4, 5), n_out, n_nan)
    comparable, _ = _compare_sigma_with_astropy(cube, kl, kh)
    assert comparable.mean() >= 0.75  # the guard rarely matters on these stacks: the check is not vacuous


def test_sigma_agrees_with_ccdproc_combine_on_whole_cube():
    try:
        import ccdproc
    except ImportError:
        skip_or_fail("ccdproc is not installed (pip install 'astrocal-widgets[test]')")
    from astropy.nddata import CCDData

    rng = np.random.default_rng(3)
    n, shape = 15, (40, 50)
    # bounded (uniform) noise and at most one strong outlier per pixel: one clipping pass is already
    # converged, which matters because ccdproc.combine runs astropy's sigma_clip with maxiters=1
    cube = 1000 + rng.uniform(-10, 10, (n,) + shape)
    hit = rng.random(shape) < 0.15
    yy, xx = np.nonzero(hit)
    sign = np.where(rng.random(yy.size) < 0.5, -1.0, 1.0)
    cube[rng.integers(0, n, yy.size), yy, xx] += sign * rng.uniform(200, 2000, yy.size)
    cube = cube.astype(np.float32)
    cube64 = cube.astype(np.float64)
    one = sigma_clip(cube64, sigma_lower=3, sigma_upper=3, cenfunc="median", stdfunc=std_ddof1, maxiters=1, axis=0)
    converged = _astropy_sigma(cube64, 3, 3)
    np.testing.assert_array_equal(one.mask, converged.mask)  # precondition of the comparison
    assert (converged.mask.sum(axis=0) <= 1).all()           # the guard cannot fire

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = ccdproc.combine([CCDData(f, unit="adu") for f in cube64], method="average", sigma_clip=True,
                               sigma_clip_low_thresh=3, sigma_clip_high_thresh=3,
                               sigma_clip_func=np.nanmedian, sigma_clip_dev_func=std_ddof1)
    ds = run(cube, rejection="sigma", low=3, high=3, combine="average")
    np.testing.assert_allclose(ds.master.values, peer.data, rtol=1e-6)
    np.testing.assert_array_equal((ds.rejected_low + ds.rejected_high).values, converged.mask.sum(axis=0))
    assert ds.rejected_low.values.sum() > 100 and ds.rejected_high.values.sum() > 100


# --- the other auto algorithms, against short re-implementations of the definitions -----------

def _avsigclip_definition(cube, kl, kh):
    """IRAF avsigclip as its imcombine help describes it (no guard: the test data never need one)."""
    n, h, w = cube.shape
    master = np.empty((h, w))
    counts = np.zeros((2, h, w), int)
    for y in range(h):
        terms = []
        for x in range(w):
            v = np.sort(cube[:, y, x])
            c = v[1:-1].mean()
            terms.append(((v - c) ** 2).sum() / (n - 1) / c)
        g = np.mean(terms)  # once per row, before any rejection
        for x in range(w):
            kept = cube[:, y, x].copy()
            first = True
            while kept.size >= 3:
                c = np.sort(kept)[1:-1].mean() if first else kept.mean()
                first = False
                s = math.sqrt(g * c)
                lo, hi = c - kept > kl * s, kept - c > kh * s
                if not (lo.any() or hi.any()):
                    break
                counts[0, y, x] += lo.sum()
                counts[1, y, x] += hi.sum()
                kept = kept[~(lo | hi)]
            master[y, x] = kept.mean()
    return master, counts


def test_averaged_sigma_matches_its_definition():
    rng = np.random.default_rng(11)
    n, shape = 9, (6, 20)
    cube = rng.poisson(1000, (n,) + shape).astype(np.float64)  # Poisson-like: sigma^2 ~ g * c
    hit = rng.random(shape) < 0.2
    yy, xx = np.nonzero(hit)
    cube[rng.integers(0, n, yy.size), yy, xx] += np.where(rng.random(yy.size) < 0.5, -1, 1) * 600
    master, counts = _avsigclip_definition(cube, 3.0, 3.0)
    assert (n - counts.sum(axis=0) >= min_keep(n)).all()  # the guard cannot fire
    assert counts.sum() >= hit.sum()
    ds = run(cube.astype(np.float32), rejection="averaged_sigma", low=3, high=3)
    np.testing.assert_array_equal(ds.rejected_low.values, counts[0])
    np.testing.assert_array_equal(ds.rejected_high.values, counts[1])
    np.testing.assert_allclose(ds.master.values, master, rtol=1e-6)


def _linear_fit_definition(stack, kl, kh):
    kept = np.sort(stack)
    n_low = n_high = 0
    while True:
        j = np.arange(kept.size)
        b, a = np.polyfit(j, kept, 1)
        res = kept - (a + b * j)
        s = np.abs(res).mean()
        lo, hi = res < -kl * s, res > kh * s
        if not (lo.any() or hi.any()):
            return kept.mean(), n_low, n_high, kept.size
        n_low += lo.sum()
        n_high += hi.sum()
        kept = kept[~(lo | hi)]


def test_linear_fit_matches_its_definition():
    rng = np.random.default_rng(5)
    n, shape = 30, (3, 10)
    drift = np.linspace(0, 50, n)[:, None, None]  # frames drift: what linear fit is for
    cube = 1000 + drift + rng.normal(0, 3, (n,) + shape)
    cube[rng.integers(0, n, shape), *np.indices(shape)] += 3000
    cube = cube.astype(np.float32)
    ds = run(cube, rejection="linear_fit", low=5, high=5)
    for y, x in np.ndindex(shape):
        mean, n_low, n_high, k = _linear_fit_definition(cube[:, y, x].astype(np.float64), 5, 5)
        assert k >= min_keep(n)
        assert (ds.rejected_low.values[y, x], ds.rejected_high.values[y, x]) == (n_low, n_high)
        assert n_high >= 1
        np.testing.assert_allclose(ds.master.values[y, x], mean, rtol=1e-6)


# --- normalisation ----------------------------------------------------------------------------

def _normalisation_stack():
    """Frame 0: median 1000, 1.4826 MAD = 50; frame 1: 1200 and 60, with the pixel 1300 where frame 0
    has no value (NaN), so the master there is frame 1's normalised 1300."""
    z0 = np.array([-2, -1, -1, 0, 1, 1, 2, np.nan])
    t = 100 * 1.4826 / 60  # 1200 + t * 60 / 1.4826 = 1300
    z1 = np.array([-2, -1, -1, 0, 0, 1, 1, t])
    f0 = 1000 + 50 / 1.4826 * z0
    f1 = 1200 + 60 / 1.4826 * z1
    assert np.nanmedian(f0) == 1000 and np.median(f1) == 1200
    return np.stack([f0, f1]).reshape(2, 2, 4)


@pytest.mark.parametrize("mode, expected", [
    ("none", 1300.0), ("additive", 1100.0), ("additive_scaling", 1083.333333), ("multiplicative", 1083.333333),
    ("multiplicative_scaling", 902.777778),
])
def test_normalisation_modes_match_the_spec_numbers(mode, expected):
    ds = run(_normalisation_stack(), rejection="none", normalization=mode)
    assert ds.contributing.values[1, 3] == 1
    np.testing.assert_allclose(ds.master.values[1, 3], expected, rtol=2e-6)
    assert ds.attrs["normalization"] == mode
    if mode != "none":
        np.testing.assert_allclose(ds.attrs["locations"], [1000, 1200], rtol=1e-6)
        np.testing.assert_allclose(ds.attrs["scales"], [50, 60], rtol=1e-5)


def test_reference_frame_changes_the_target_level():
    # multiplicative to frame 1 (location 1200): the pixel 1300 of frame 1 stays 1300
    ds = run(_normalisation_stack(), rejection="none", normalization="multiplicative", reference=1)
    np.testing.assert_allclose(ds.master.values[1, 3], 1300.0, rtol=1e-6)
    assert ds.attrs["reference_frame"] == 1


def test_rejection_normalisation_equalize_fluxes_rejects_on_scaled_values():
    # flats at levels 1000 .. 1450: unnormalised, the spread at a pixel is ~150 ADU and a +200 ADU
    # defect on one frame is not an outlier; equalised, the spread is ~1 ADU and it is
    rng = np.random.default_rng(2)
    n, shape = 10, (8, 12)
    levels = 1000 * (1 + 0.05 * np.arange(n))
    cube = levels[:, None, None] * (1 + rng.normal(0, 1e-3, (n,) + shape))
    cube[4, 3, 5] += 200
    cube = cube.astype(np.float32)
    plain = run(cube, rejection="sigma", normalization="none")
    assert plain.rejected_high.values[3, 5] == 0
    ds = run(cube, rejection="sigma", normalization="none", rejection_normalization="equalize_fluxes")
    assert ds.rejected_high.values[3, 5] == 1 and ds.rejected_low.values[3, 5] == 0
    # the output is not normalised: the mean of the raw values of the kept frames
    expected = np.delete(cube[:, 3, 5].astype(np.float64), 4).mean()
    np.testing.assert_allclose(ds.master.values[3, 5], expected, rtol=1e-6)
    assert ds.attrs["rejection_normalization"] == "equalize_fluxes"
    np.testing.assert_allclose(np.array(ds.attrs["locations"]) / levels, 1, rtol=5e-3)


def test_multiplicative_output_brings_frames_to_the_reference_level():
    rng = np.random.default_rng(9)
    n, shape = 5, (16, 20)
    pattern = 1 + 0.1 * rng.random(shape)                  # the flat field
    levels = np.array([1000, 1500, 800, 1200, 900.0])
    cube = (levels[:, None, None] * pattern).astype(np.float32)
    ds = run(cube, rejection="none", normalization="multiplicative")
    med = np.median(pattern)
    np.testing.assert_allclose(ds.master.values, 1000 * pattern, rtol=1e-5)
    np.testing.assert_allclose(ds.attrs["locations"], levels * med, rtol=1e-5)


def test_normalisation_statistics_come_from_the_values_integrated(tmp_path):
    # flats minus a master dark flat: xarray arithmetic keeps the path coordinate, but the values to
    # normalise are the calibrated ones, not the files' (a constant 500 stands for the dark flat)
    aw.simulate_stack(tmp_path, "flat", 5, shape=SHAPE, seed=0)
    calibrated = aw.open_frames(tmp_path) - 500.0
    ds = run(calibrated, normalization="multiplicative", rejection="none")
    values = calibrated.values.astype(np.float64)
    medians = np.median(values.reshape(5, -1), axis=1)
    np.testing.assert_allclose(ds.attrs["locations"], medians, rtol=1e-7)
    expected = (values * (medians[0] / medians)[:, None, None]).mean(axis=0)
    np.testing.assert_allclose(ds.master.values, expected, rtol=1e-6)


def test_estimator_choice_is_recorded_and_used():
    ds = run(_normalisation_stack(), rejection="none", normalization="additive", estimator="ikss_lite")
    assert ds.attrs["estimator"] == "ikss_lite"
    assert np.isfinite(ds.attrs["locations"]).all()


# --- weights ----------------------------------------------------------------------------------

def test_exposure_weights_from_coordinates():
    cube = xr.DataArray(tile([10.0, 20.0, 40.0]), dims=("frame", "y", "x"),
                        coords={"exposure": ("frame", [1.0, 2.0, 4.0])})
    ds = run(cube, rejection="none", weights="exposure")
    np.testing.assert_allclose(ds.master.values, (10 * 1 + 20 * 2 + 40 * 4) / 7, rtol=1e-6)
    assert ds.attrs["weights"] == "exposure"
    np.testing.assert_allclose(ds.attrs["weight_values"], [0.25, 0.5, 1.0])


def test_exposure_weights_from_fits_headers(tmp_path):
    paths = [write_frame(tmp_path / f"f{i}.fits", np.full((4, 6), v, np.float32), {"EXPTIME": t, "IMAGETYP": "DARK"})
             for i, (v, t) in enumerate([(10.0, 1.0), (20.0, 2.0), (40.0, 4.0)])]
    ds = run(paths, rejection="none", weights="exposure")
    np.testing.assert_allclose(ds.master.values, 30.0, rtol=1e-6)


def test_exposure_weights_need_exposures():
    with pytest.raises(AstrocalError, match="exposure"):
        integrate(tile([1.0, 2.0, 3.0]), weights="exposure")
    cube = xr.DataArray(tile([1.0, 2.0, 3.0]), dims=("frame", "y", "x"),
                        coords={"exposure": ("frame", [1.0, np.nan, 2.0])})
    with pytest.raises(AstrocalError, match="exposure"):
        integrate(cube, weights="exposure")


def test_noise_weights_are_inverse_variance():
    rng = np.random.default_rng(4)
    sigmas = np.array([2.0, 4.0, 8.0])
    levels = np.array([100.0, 200.0, 300.0])
    cube = (levels[:, None, None] + sigmas[:, None, None] * rng.normal(size=(3,) + SHAPE)).astype(np.float32)
    ds = run(cube, rejection="none", weights="noise")
    # the estimates are close to the true noise...
    np.testing.assert_allclose(ds.attrs["noise_sigmas"], sigmas, rtol=0.06)
    # ...the weights are 1 / sigma^2 of the documented estimator, and the master their weighted mean
    est = np.array([noise_sigma(f) for f in cube])
    w = 1 / est ** 2
    np.testing.assert_allclose(ds.attrs["weight_values"], w / w.max(), rtol=1e-6)
    expected = np.tensordot(w, cube.astype(np.float64), axes=1) / w.sum()
    np.testing.assert_allclose(ds.master.values, expected, rtol=1e-6)
    truth = (levels / sigmas ** 2).sum() / (1 / sigmas ** 2).sum()
    assert abs(float(ds.master.mean()) - truth) < 0.02 * truth


def test_array_weights_and_errors():
    cube = tile([10.0, 20.0, 40.0])
    ds = run(cube, rejection="none", weights=[1, 2, 1])
    np.testing.assert_allclose(ds.master.values, (10 + 40 + 40) / 4, rtol=1e-6)
    assert ds.attrs["weights"] == "array"
    with pytest.raises(ValueError, match="expected 3 values"):
        integrate(cube, weights=[1, 2])
    with pytest.raises(ValueError, match="expected 3 values"):
        integrate(cube, weights=np.ones((3, 1)))
    for bad in ([1, 0, 1], [1, -1, 1], [1, np.nan, 1], [1, np.inf, 1]):
        with pytest.raises(AstrocalError, match="finite and > 0"):
            integrate(cube, weights=bad)
    with pytest.raises(ValueError, match="unknown weights"):
        integrate(cube, weights="snr")


# --- combination and NaN ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def nan_cube():
    rng = np.random.default_rng(8)
    cube = rng.normal(100, 5, (6, 5, 7)).astype(np.float32)
    cube[rng.random(cube.shape) < 0.2] = np.nan
    cube[:, 0, 0] = np.nan           # a pixel without any value
    cube[:5, 0, 1] = np.nan          # a pixel with one value
    cube[5, 0, 1] = 100.0
    return cube


@pytest.mark.parametrize("mode, peer", [
    ("average", np.nanmean), ("median", np.nanmedian), ("minimum", np.nanmin), ("maximum", np.nanmax),
    ("sum", np.nansum),
])
def test_combine_modes_agree_with_numpy_and_skip_nan(nan_cube, mode, peer):
    ds = run(nan_cube, rejection="none", combine=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = peer(nan_cube.astype(np.float64), axis=0)
    expected[0, 0] = np.nan  # documented: a pixel without any value is NaN, for every mode
    np.testing.assert_allclose(ds.master.values, expected, rtol=1e-6)
    assert ds.master.dtype == np.float32
    np.testing.assert_array_equal(ds.contributing.values, (~np.isnan(nan_cube)).sum(axis=0))
    assert ds.attrs["combine"] == mode


def test_all_nan_pixel_gives_nan_and_zero_counts(nan_cube):
    for rejection in ("sigma", "winsorized_sigma", "linear_fit", "esd", "minmax", "percentile", "averaged_sigma"):
        ds = run(nan_cube, rejection=rejection)
        assert np.isnan(ds.master.values[0, 0])
        assert ds.contributing.values[0, 0] == ds.rejected_low.values[0, 0] == ds.rejected_high.values[0, 0] == 0
        assert np.isfinite(ds.master.values.ravel()[1:]).all()
        # NaN never counts: kept + rejected = the pixel's number of values
        total = (ds.contributing + ds.rejected_low + ds.rejected_high).values
        np.testing.assert_array_equal(total, (~np.isnan(nan_cube)).sum(axis=0))


def test_sum_after_rejection_has_no_dip():
    # minmax 1/1 on 6 values: sum = mean of the 4 kept x the 6 valid values
    values = np.array([10.0, 11, 12, 13, 14, 100])
    ds = run(tile(values), rejection="minmax", combine="sum")
    np.testing.assert_allclose(ds.master.values, np.mean([11, 12, 13, 14]) * 6, rtol=1e-6)
    assert (ds.rejected_low.values == 1).all() and (ds.rejected_high.values == 1).all()


def test_combine_modes_after_rejection():
    values = np.array([10.0, 11, 12, 13, 14, 100])
    kept = np.array([11.0, 12, 13, 14])
    for mode, expected in (("average", kept.mean()), ("median", np.median(kept)), ("minimum", 11.0),
                           ("maximum", 14.0)):
        ds = run(tile(values), rejection="minmax", combine=mode)
        np.testing.assert_allclose(ds.master.values, expected, rtol=1e-6)


def test_accumulation_is_in_float64():
    # float32 sums lose the 1 next to 1e8 (spacing 8): the mean of the three values is 1/3
    ds = run(tile([1e8, 1.0, -1e8]), rejection="none")
    np.testing.assert_allclose(ds.master.values, np.float32(1 / 3), rtol=1e-7)
    ds = run(tile([1e8, 1.0, -1e8]), rejection="none", combine="sum")
    np.testing.assert_allclose(ds.master.values, 1.0, rtol=1e-7)


def test_every_kind_of_input_gives_the_same_master(bias_dir):
    paths = sorted(str(p) for p in bias_dir.rglob("*.fits"))
    group = aw.scan(bias_dir).groups("bias")[0]
    cube = aw.open_frames(paths)
    expected = run(cube.values, rejection="sigma").master.values
    for source in (cube, paths, str(bias_dir), str(bias_dir / "**" / "*.fits"), group, list(cube.values)):
        np.testing.assert_array_equal(run(source, rejection="sigma").master.values, expected)


# --- bad input --------------------------------------------------------------------------------

def test_single_frame_warns_and_returns_the_frame():
    frame = np.random.default_rng(0).normal(100, 5, (1, 4, 6)).astype(np.float32)
    with pytest.warns(IntegrationWarning) as record:
        ds = integrate(frame).compute()
    assert any("single frame" in str(w.message) for w in record)
    np.testing.assert_array_equal(ds.master.values, frame[0])
    assert (ds.contributing.values == 1).all() and ds.attrs["rejection"] == "none"
    assert ds.attrs["n_frames"] == 1


@pytest.mark.parametrize("rejection", ["none", "percentile", "sigma", "mad", "averaged_sigma", "winsorized_sigma",
                                       "linear_fit", "esd"])
def test_zero_spread_stack_rejects_nothing(rejection):
    cube = np.full((12, 3, 4), 523.0, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = integrate(cube, rejection=rejection).compute()
    assert (ds.master.values == 523.0).all()
    assert (ds.contributing.values == 12).all()
    assert ds.rejected_low.values.sum() == ds.rejected_high.values.sum() == 0


def test_zero_spread_stack_minmax_and_scaling_normalisation():
    cube = np.full((12, 3, 4), 523.0, np.float32)
    ds = run(cube, rejection="minmax")  # documented: minmax drops n_low and n_high values whatever they are
    assert (ds.master.values == 523.0).all() and (ds.contributing.values == 10).all()
    ds = run(cube, rejection="sigma", normalization="multiplicative")
    assert (ds.master.values == 523.0).all()
    # a scaling normalisation divides by a zero scale: a clear error naming the frame
    with pytest.raises(AstrocalError, match="scale.*frame 0"):
        integrate(cube, normalization="additive_scaling")


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32, np.uint8])
def test_integer_cubes_are_integrated_as_floats(dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    hi = min(info.max, 2**24)  # float32 holds every integer up to 2**24
    cube = rng.integers(max(info.min, -2**24), hi, (9, 4, 5), endpoint=True).astype(dtype)
    cube[:, 0, 0] = hi  # no wrap-around at the top of the range
    ds = run(cube, rejection="sigma")
    ref = run(cube.astype(np.float64), rejection="sigma")
    assert ds.master.dtype == np.float32
    np.testing.assert_array_equal(ds.master.values, ref.master.values)
    assert ds.master.values[0, 0] == hi


def test_mixed_shapes_are_a_clear_error(tmp_path):
    a = write_frame(tmp_path / "a.fits", np.zeros((8, 10), np.uint16))
    b = write_frame(tmp_path / "b.fits", np.zeros((10, 8), np.uint16))
    with pytest.raises(IncompatibleFramesError, match="differ in size"):
        integrate([a, b])
    with pytest.raises(IncompatibleFramesError, match="one 2-D shape"):
        integrate([np.zeros((8, 10)), np.zeros((10, 8))])
    ds = run([np.zeros((8, 10)), np.ones((8, 10))], rejection="none")  # a list of equal frames is fine
    np.testing.assert_allclose(ds.master.values, 0.5)


def test_unknown_names_are_clear_errors():
    cube = tile([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="unknown rejection 'kappa'.*winsorized_sigma"):
        integrate(cube, rejection="kappa")
    with pytest.raises(ValueError, match="unknown combine 'mean'"):
        integrate(cube, combine="mean")
    with pytest.raises(ValueError, match="unknown normalization 'mul'"):
        integrate(cube, normalization="mul")
    with pytest.raises(ValueError, match="unknown normalization 'equalize_fluxes'"):
        integrate(cube, normalization="equalize_fluxes")  # rejection only
    with pytest.raises(ValueError, match="unknown rejection_normalization"):
        integrate(cube, rejection_normalization="flux")
    with pytest.raises(ValueError, match="unknown estimator"):
        integrate(cube, normalization="additive", estimator="mean")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['sigma'\]"):
        integrate(cube, rejection="sigma", sigma=3)
    # a threshold alias of another algorithm is not silently ignored
    with pytest.raises(TypeError, match="pl do not apply to rejection 'sigma'"):
        integrate(cube, rejection="sigma", pl=0.3)
    with pytest.raises(TypeError, match="either low/high or kl"):
        integrate(cube, rejection="sigma", low=3, kl=3)
    # with auto the choice depends on the frame count: a warning, and the alias is ignored
    with pytest.warns(IntegrationWarning, match="kl do not apply to rejection 'percentile'"):
        ds = integrate(cube, kl=4)
    assert ds.attrs["low"] == 0.2


def test_bad_thresholds_and_shapes():
    cube = tile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    with pytest.raises(ValueError, match=">= 0"):
        integrate(cube, rejection="sigma", low=-1)
    with pytest.raises(ValueError, match="counts"):
        integrate(cube, rejection="minmax", low=1.5)
    with pytest.raises(ValueError, match="esd"):
        integrate(cube, rejection="esd", alpha=2)
    with pytest.raises(ValueError, match="3-D"):
        integrate(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="dims"):
        integrate(xr.DataArray(np.zeros((3, 4, 5)), dims=("t", "y", "x")))
    with pytest.raises(ValueError, match="at least one frame"):
        integrate(np.zeros((0, 4, 5)))
    with pytest.raises(ValueError, match="reference frame 7"):
        integrate(cube, reference=7)
    with pytest.warns(IntegrationWarning, match="minmax"):
        ds = integrate(tile([1.0, 2.0, 3.0]), rejection="minmax", low=2, high=2).compute()
    assert (ds.contributing.values == 1).all() and (ds.master.values == 2.0).all()


# --- laziness, chunks, progress ---------------------------------------------------------------

def test_integrate_reads_no_pixels_until_computed(bias_dir):
    cube = aw.open_frames(bias_dir, chunks={"y": 16})
    READ_STATISTICS.reset()
    ds = integrate(cube, rejection="sigma")
    assert READ_STATISTICS.calls == 0 and READ_STATISTICS.bytes == 0
    assert all(isinstance(ds[v].data, dask.array.Array) for v in ds.data_vars)
    ds.compute(scheduler="threads")
    # every stored byte (uint16) of every frame read exactly once
    assert READ_STATISTICS.bytes == 8 * SHAPE[0] * SHAPE[1] * 2
    assert READ_STATISTICS.rows == 8 * SHAPE[0]


def test_normalisation_reads_only_the_row_subsample(tmp_path):
    shape = (1500, 1000)  # 1.5 Mpixel: more than the ~1 Mpixel subsample of frame_subsample
    rng = np.random.default_rng(0)
    for i in range(3):
        write_frame(tmp_path / f"flat_{i}.fits", rng.integers(20000, 30000, shape).astype(np.uint16),
                    {"IMAGETYP": "FLAT", "EXPTIME": 1.0})
    cube = aw.open_frames(tmp_path)
    READ_STATISTICS.reset()
    ds = integrate(cube, normalization="multiplicative", rejection="none")
    rows = frame_subsample(shape)
    assert 0 < rows.size < shape[0]
    assert READ_STATISTICS.rows == 3 * rows.size
    assert READ_STATISTICS.bytes == 3 * rows.size * shape[1] * 2
    assert np.isfinite(ds.attrs["locations"]).all()
    assert all(isinstance(ds[v].data, dask.array.Array) for v in ds.data_vars)


def test_bands_hold_the_whole_frame_axis(bias_dir, monkeypatch):
    seen = []
    real = combine_module.kernels.integrate_band

    def spy(stack, **kw):
        seen.append(stack.shape)
        return real(stack, **kw)

    # frames split in the input chunks: integrate rejoins the frame axis, keeps the row bands
    cube = aw.open_frames(bias_dir, chunks={"frame": 3, "y": 16})
    ds = integrate(cube, rejection="winsorized_sigma")
    monkeypatch.setattr(combine_module.kernels, "integrate_band", spy)
    assert ds.master.data.chunks == ((16, 16, 16, 16), (SHAPE[1],))
    out = ds.compute(scheduler="threads")
    assert sorted(seen) == [(8, 16, SHAPE[1])] * 4
    # the band size changes nothing in the result (averaged sigma's row model works on whole rows)
    for rejection in ("winsorized_sigma", "averaged_sigma"):
        whole = run(aw.open_frames(bias_dir, chunks={"y": -1}), rejection=rejection)
        banded = run(aw.open_frames(bias_dir, chunks={"y": 5}), rejection=rejection)
        for var in out.data_vars:
            np.testing.assert_array_equal(whole[var].values, banded[var].values)


def test_in_memory_cubes_are_banded_too():
    cube = np.zeros((100, 2000, 300), np.uint16)  # 240 MB as float32: must not be one chunk
    ds = integrate(cube, rejection="none")
    assert len(ds.master.data.chunks[0]) > 1
    assert max(ds.master.data.chunks[0]) * 300 * 100 * 4 <= 2 * 64 * 2**20


def test_threaded_scheduler_by_default(bias_dir):
    threads = set()
    real = combine_module.kernels.integrate_band

    def spy(stack, **kw):
        threads.add(threading.get_ident())
        return real(stack, **kw)

    ds = integrate(aw.open_frames(bias_dir, chunks={"y": 2}), rejection="sigma")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(combine_module.kernels, "integrate_band", spy)
        ds.compute()  # no scheduler given
    assert len(threads) >= 1 and threading.get_ident() not in threads


def test_progress_is_monotone_and_reaches_one(bias_dir):
    calls = []
    lock = threading.Lock()

    def progress(fraction, message):
        with lock:
            calls.append((fraction, message))

    cube = aw.open_frames(bias_dir, chunks={"y": 2})  # 32 bands
    ds = integrate(cube, rejection="sigma", normalization="additive", progress=progress)
    assert calls == [(0.0, calls[0][1])]  # the per-frame statistics are done eagerly
    with dask.config.set(scheduler="threads", num_workers=4):
        ds.compute()
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and len(set(fractions[1:])) == 32
    assert fractions[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in fractions)
    assert all(isinstance(m, str) and m for _, m in calls)
    # computing again (write_master after a plot, say) is a new run from the start
    calls.clear()
    ds.master.compute(scheduler="threads")
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 1 / 32 and fractions[-1] == 1.0


# --- provenance attrs -------------------------------------------------------------------------

def test_attrs_record_parameters_choice_and_sources(bias_dir):
    cube = aw.open_frames(bias_dir)
    ds = integrate(cube, combine="median", rejection="winsorized_sigma", low=4, high=2.5,
                   normalization="additive", rejection_normalization="additive_scaling", weights=[1] * 8)
    a = ds.attrs
    expected = dict(n_frames=8, combine="median", rejection_requested="winsorized_sigma",
                    rejection="winsorized_sigma", low=4.0, high=2.5, normalization="additive",
                    rejection_normalization="additive_scaling", weights="array", estimator="median",
                    reference_frame=0)
    assert {k: a[k] for k in expected} == expected
    assert a["rejection_reason"] and "max(3, ceil(n/2))" in a["guard"]
    assert a["source_paths"] == [str(p) for p in cube["path"].values]
    assert len(a["locations"]) == len(a["scales"]) == 8 and np.isfinite(a["scales"]).all()
    # estimator "median": location = median, scale = 1.4826 MAD, of each frame (a small frame's
    # subsample is the whole frame)
    frames = cube.values.reshape(8, -1).astype(np.float64)
    med = np.median(frames, axis=1)
    np.testing.assert_allclose(a["locations"], med, rtol=1e-7)
    np.testing.assert_allclose(a["scales"], 1.4826 * np.median(np.abs(frames - med[:, None]), axis=1), rtol=1e-6)
    assert a["frame_frame_type"] == ["bias"] * 8
    assert a["frame_gain"] == [139.0] * 8
    json.dumps(a)  # plain values only: the attrs can go to netCDF/zarr/JSON
    assert not any(v is None for v in a.values())


def test_attrs_of_defaults(bias_dir):
    ds = integrate(aw.open_frames(bias_dir))
    a = ds.attrs
    assert a["rejection"] == "averaged_sigma" and a["rejection_requested"] == "auto"
    assert (a["low"], a["high"]) == (3.0, 3.0)
    assert a["weights"] == "none" and a["weight_values"] == [1.0] * 8
    assert a["normalization"] == a["rejection_normalization"] == "none"
    assert ds.master.dtype == np.float32
    assert all(ds[v].dtype.kind == "u" for v in ("rejected_low", "rejected_high", "contributing"))
    assert ds.master.dims == ("y", "x")
