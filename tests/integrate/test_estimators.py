"""Tests of robust estimators (estimators.py) and normalisation (normalization.py).

Reference values are computed by hand from the definitions (Siril and PixInsight publish them); the
biweight is cross-checked against astropy. Run with ``python -m pytest tests/integrate/test_estimators.py`` from the
repository root.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocal_widgets.integrate.estimators import (
    LOCATION_SCALE_METHODS,
    MAD_TO_SIGMA,
    bwmv,
    frame_subsample,
    ikss,
    ikss_lite,
    location_scale,
    mad,
    median,
    noise_sigma,
)
from astrocal_widgets.integrate.normalization import (
    NORMALIZATIONS,
    choose_reference,
    normalization_coefficients,
)

SPEC_VECTOR = np.array([10, 12, 11, 13, 9, 10, 11, 12, 10, 11, 50, 10, 9, 11, 12, 10], dtype=float)


class _Strict:
    """Turn every warning into an error: degenerate inputs must stay quiet."""

    def __enter__(self):
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


# ----------------------------------------------------------------- spec test vectors


def test_spec_vector_median_mad_bwmv():
    assert median(SPEC_VECTOR) == 11.0
    assert mad(SPEC_VECTOR) == 1.0
    assert math.sqrt(bwmv(SPEC_VECTOR)) == pytest.approx(1.230786, abs=5e-7)


def test_spec_vector_bwmv_by_hand():
    # Independent re-computation of the spec formula, n = all 16 values (50 has |u| > 1).
    x = SPEC_VECTOR
    u = (x - 11.0) / 9.0
    k = np.abs(u) < 1
    assert k.sum() == 15
    num = 16 * np.sum((x[k] - 11) ** 2 * (1 - u[k] ** 2) ** 4)
    den = np.sum((1 - u[k] ** 2) * (1 - 5 * u[k] ** 2)) ** 2
    assert bwmv(x) == pytest.approx(num / den, rel=1e-14)


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("additive", 1100.0),
        ("additive_scaling", 1083.333333),
        ("multiplicative", 1083.333333),
        ("multiplicative_scaling", 902.777778),
        ("equalize_fluxes", 1083.333333),
        ("none", 1300.0),
    ],
)
def test_spec_normalisation_vectors(mode, expected):
    a, b = normalization_coefficients([1000.0, 1200.0], [50.0, 60.0], mode, reference=0)
    assert a.dtype == np.float64 and b.dtype == np.float64 and a.shape == b.shape == (2,)
    assert 1300.0 * a[1] + b[1] == pytest.approx(expected, abs=5e-7)
    # the reference frame is left unchanged
    assert a[0] == pytest.approx(1.0) and b[0] == pytest.approx(0.0, abs=1e-9)


def test_spec_normalisation_with_reference_not_first():
    # Same numbers with the frames swapped and reference=1 (and -1).
    for ref in (1, -1):
        a, b = normalization_coefficients([1200.0, 1000.0], [60.0, 50.0], "additive_scaling", reference=ref)
        assert 1300.0 * a[0] + b[0] == pytest.approx(1083.333333, abs=5e-7)


# ----------------------------------------------------------------- astropy cross-check


def test_bwmv_matches_astropy_configuration():
    stats = pytest.importorskip("astropy.stats")
    x = SPEC_VECTOR
    # Spec: c = 9, M = median, n = all values  <=>  astropy's modify_sample_size=False.
    ref = stats.biweight_midvariance(x, c=9.0, M=np.median(x), modify_sample_size=False)
    assert bwmv(x) == pytest.approx(ref, rel=1e-12)
    # modify_sample_size=True counts only the |u| < 1 values (15 here), which is NOT the spec.
    other = stats.biweight_midvariance(x, c=9.0, modify_sample_size=True)
    assert math.sqrt(other) == pytest.approx(1.191704, abs=1e-6)
    assert not math.isclose(bwmv(x), other, rel_tol=1e-3)

    rng = np.random.default_rng(7)
    for size in (5, 16, 101, 1000):
        y = rng.standard_t(3, size) * 4 + 100
        y[rng.random(size) < 0.1] = np.nan
        ref = stats.biweight_midvariance(y, c=9.0, modify_sample_size=False, ignore_nan=True)
        assert bwmv(y) == pytest.approx(ref, rel=1e-12)
        ref_axis = stats.biweight_midvariance(
            y.reshape(1, -1), c=9.0, axis=1, modify_sample_size=False, ignore_nan=True
        )
        assert bwmv(y.reshape(1, -1), axis=1)[0] == pytest.approx(ref_axis[0], rel=1e-12)


# ----------------------------------------------------------------- general behaviour


def test_nan_is_ignored():
    x = np.concatenate([SPEC_VECTOR, [np.nan] * 5])
    assert median(x) == 11.0 and mad(x) == 1.0
    assert bwmv(x) == pytest.approx(bwmv(SPEC_VECTOR), rel=1e-15)
    for m in LOCATION_SCALE_METHODS:
        assert location_scale(x, m) == pytest.approx(location_scale(SPEC_VECTOR, m), rel=1e-15)


def test_mad_with_center_and_nd_input():
    assert mad([1.0, 2.0, 3.0, 4.0, 100.0], center=0.0) == 3.0
    x = SPEC_VECTOR.reshape(4, 4)
    assert median(x) == 11.0 and mad(x) == 1.0
    assert bwmv(x) == pytest.approx(bwmv(SPEC_VECTOR))


def test_axis_reductions_match_loops():
    rng = np.random.default_rng(3)
    x = rng.normal(50, 5, size=(7, 9, 11))
    x[rng.random(x.shape) < 0.05] = np.nan
    x[2, :, 4] = np.nan  # an all-NaN slice along axis 1
    x[3, :, 5] = 42.0  # a constant slice
    got_m, got_mad, got_b = median(x, axis=1), mad(x, axis=1), bwmv(x, axis=1)
    assert got_m.shape == got_mad.shape == got_b.shape == (7, 11)
    for i in range(7):
        for k in range(11):
            col = x[i, :, k]
            for got, fn in ((got_m, median), (got_mad, mad), (got_b, bwmv)):
                want = fn(col)
                if math.isnan(want):
                    assert math.isnan(got[i, k])
                else:
                    assert got[i, k] == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert got_b[3, 5] == 0.0 and math.isnan(got_b[2, 4])


def test_integer_input_is_converted():
    x = np.array([65535, 0, 65534, 65535, 65533], dtype=np.uint16)
    assert median(x) == 65534.0 and mad(x) == 1.0


# ----------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize("value", [0.0, 7.5, -3.0])
def test_constant_input_gives_zero_scale(value):
    x = np.full(100, value)
    with _Strict():
        assert mad(x) == 0.0 and bwmv(x) == 0.0
        assert ikss(x) == (value, 0.0)
        assert ikss_lite(x) == (value, 0.0)
        for m in LOCATION_SCALE_METHODS:
            assert location_scale(x, m) == (value, 0.0)
        assert noise_sigma(np.full((8, 8), value)) == 0.0


def test_mostly_constant_input_gives_zero_scale():
    # 60 % equal values: MAD = 0, scale 0 (no division by zero, no NaN).
    x = np.concatenate([np.full(60, 5.0), np.linspace(-100, 100, 40)])
    with _Strict():
        assert mad(x) == 0.0 and bwmv(x) == 0.0
        for m in LOCATION_SCALE_METHODS:
            loc, s = location_scale(x, m)
            assert loc == 5.0 and s == 0.0


@pytest.mark.parametrize("x", [np.array([]), np.full(10, np.nan), np.full((3, 4), np.nan)])
def test_empty_or_all_nan_gives_nan(x):
    with _Strict():
        assert math.isnan(median(x)) and math.isnan(mad(x)) and math.isnan(bwmv(x))
        for m in LOCATION_SCALE_METHODS:
            loc, s = location_scale(x, m)
            assert math.isnan(loc) and math.isnan(s)
        assert all(math.isnan(v) for v in ikss(x) + ikss_lite(x))


def test_single_and_two_values():
    assert location_scale([3.0], "ikss") == (3.0, 0.0)
    assert location_scale([3.0], "ikss_lite") == (3.0, 0.0)
    loc, s = location_scale([2.0, 4.0], "ikss")
    assert loc == 3.0 and s > 0 and math.isfinite(s)


# ----------------------------------------------------------------- IKSS accuracy


@pytest.mark.parametrize("two_sided", [False, True])
def test_ikss_recovers_gaussian_with_outliers(two_sided):
    rng = np.random.default_rng(11)
    mu, sigma, n = 1000.0, 10.0, 20000
    x = rng.normal(mu, sigma, n)
    idx = rng.choice(n, n // 20, replace=False)  # 5 % outliers
    lo = 0.0 if two_sided else mu + 10 * sigma
    x[idx] = rng.uniform(lo, 5000.0, idx.size)
    for est in (ikss, ikss_lite):
        loc, s = est(x)
        assert abs(loc - mu) < 0.03 * sigma
        assert s == pytest.approx(sigma, rel=0.03)
    # The plain median / 1.4826 MAD is visibly more biased by the outliers.
    _, s_med = location_scale(x, "median")
    assert abs(s_med / sigma - 1) > abs(ikss(x)[1] / sigma - 1)


def test_ikss_iteration_controls():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 1, 5000), rng.normal(30, 1, 300)])
    loc1, s1 = ikss(x, max_iter=1)  # one pass: no clipping yet
    loc, s = ikss(x)
    assert s < s1 and abs(loc) < 0.1 and s == pytest.approx(1.0, rel=0.05)
    assert ikss(x, tol=1e-12) == pytest.approx((loc, s), rel=1e-9)
    with pytest.raises(ValueError, match="tol"):
        ikss(x, tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        ikss(x, max_iter=0)


@pytest.mark.parametrize("method", LOCATION_SCALE_METHODS)
def test_location_scale_equivariance(method):
    rng = np.random.default_rng(2)
    x = rng.normal(100, 3, 3000)
    x[:100] += 80
    loc, s = location_scale(x, method)
    loc2, s2 = location_scale(2.5 * x + 1234.0, method)
    assert loc2 == pytest.approx(2.5 * loc + 1234.0, rel=1e-9)
    assert s2 == pytest.approx(2.5 * s, rel=1e-9)


def test_median_method_scale_is_gaussian_sigma():
    rng = np.random.default_rng(9)
    loc, s = location_scale(rng.normal(10, 4, 200_000), "median")
    assert loc == pytest.approx(10, abs=0.05) and s == pytest.approx(4, rel=0.01)
    assert MAD_TO_SIGMA == pytest.approx(1 / 0.6744897501960817, rel=1e-4)


def test_unknown_location_scale_method():
    with pytest.raises(ValueError, match=r"unknown .*'mean'.*median, ikss, ikss_lite"):
        location_scale(SPEC_VECTOR, "mean")


# ----------------------------------------------------------------- noise sigma


def _sky(shape, rng, sigma, stars=60):
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    img = 800.0 + 0.3 * xx + 0.2 * yy + 40.0 * np.sin(xx / 90.0) * np.cos(yy / 70.0)  # smooth gradient
    for cy, cx, amp in zip(rng.uniform(0, ny, stars), rng.uniform(0, nx, stars), rng.uniform(50, 5000, stars)):
        img += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.8**2))  # sparse stars
    return img + rng.normal(0, sigma, shape)


@pytest.mark.parametrize("sigma", [3.0, 12.0])
def test_noise_sigma_on_gradient_and_stars(sigma):
    rng = np.random.default_rng(21)
    img = _sky((400, 600), rng, sigma)
    assert noise_sigma(img) == pytest.approx(sigma, rel=0.03)
    assert noise_sigma(img, step=1) == pytest.approx(sigma, rel=0.03)
    assert noise_sigma(img, estimator="mad") == pytest.approx(sigma, rel=0.05)
    # hot pixels and NaN do not matter
    img[rng.random(img.shape) < 0.002] = 65535.0
    img[rng.random(img.shape) < 0.01] = np.nan
    assert noise_sigma(img) == pytest.approx(sigma, rel=0.03)
    # the row subsample gives the same answer
    rows = frame_subsample(img.shape, max_pixels=60_000)
    assert noise_sigma(img[rows]) == pytest.approx(sigma, rel=0.05)


def test_noise_sigma_on_cfa_mosaic_and_uint16():
    rng = np.random.default_rng(4)
    sigma = 6.0
    ny, nx = 400, 600
    yy, xx = np.mgrid[0:ny, 0:nx]
    level = np.where(yy % 2 == 0, np.where(xx % 2 == 0, 1200.0, 3000.0), np.where(xx % 2 == 0, 3000.0, 1800.0))
    level = level * (1 - 0.2 * ((xx - nx / 2) ** 2 + (yy - ny / 2) ** 2) / (nx / 2) ** 2)  # vignetting
    raw = np.round(level + rng.normal(0, sigma, (ny, nx))).astype(np.uint16)
    assert noise_sigma(raw) == pytest.approx(sigma, rel=0.03)  # same-colour differences
    assert noise_sigma(raw, estimator="mad") == pytest.approx(sigma, rel=0.03)
    assert noise_sigma(raw, step=1) > 20 * sigma  # adjacent differences mix R, G, B


def test_noise_sigma_input_checks():
    with pytest.raises(ValueError, match="2-D"):
        noise_sigma(np.zeros(10))
    with pytest.raises(ValueError, match="step"):
        noise_sigma(np.zeros((4, 4)), step=0)
    with pytest.raises(ValueError, match="valid: ikss_lite, mad"):
        noise_sigma(np.zeros((4, 8)), estimator="std")
    assert math.isnan(noise_sigma(np.zeros((4, 4))))
    assert math.isnan(noise_sigma(np.full((4, 8), np.nan)))


# ----------------------------------------------------------------- frame subsample


def test_frame_subsample_rule():
    rows = frame_subsample((4000, 6000))
    assert rows.dtype == np.intp
    assert np.array_equal(rows, frame_subsample((4000, 6000)))  # deterministic
    assert np.all(np.diff(rows) > 0) and rows[0] >= 0 and rows[-1] < 4000
    assert rows.size * 6000 <= 1_000_000
    # 16 bands of even height starting on even rows (whole Bayer periods)
    starts = rows[np.concatenate([[True], np.diff(rows) > 1])]
    assert starts.size == 16 and np.all(starts % 2 == 0)
    heights = np.diff(np.append(np.flatnonzero(np.diff(rows) > 1) + 1, rows.size), prepend=0)
    assert np.all(heights == heights[0]) and heights[0] % 2 == 0
    assert np.sum(rows % 2 == 0) == np.sum(rows % 2 == 1)
    # bands spread over the whole height
    assert starts[0] < 4000 / 16 and starts[-1] > 4000 * 15 / 16 - 2 * heights[0]


def test_frame_subsample_small_and_edge_cases():
    assert np.array_equal(frame_subsample((100, 100)), np.arange(100))
    assert np.array_equal(frame_subsample((3, 200, 100)), np.arange(200))  # colour planes
    assert np.array_equal(frame_subsample((1, 10), max_pixels=1), [0])
    rows = frame_subsample((1001, 5000), max_pixels=10)  # budget below one row: one 2-row band
    assert rows.size == 2 and rows[0] % 2 == 0
    rows = frame_subsample((1001, 300), max_pixels=30_000, n_bands=7)
    assert rows.max() < 1001 and rows.size * 300 <= 30_000
    for bad in [dict(shape=(10,)), dict(shape=(0, 5)), dict(shape=(5, 5), max_pixels=0), dict(shape=(5, 5), n_bands=0)]:
        with pytest.raises(ValueError):
            frame_subsample(**bad)


@pytest.mark.parametrize("method", LOCATION_SCALE_METHODS)
def test_frame_subsample_matches_full_frame_on_vignetted_flat(method):
    rng = np.random.default_rng(8)
    ny, nx = 1200, 1800
    yy, xx = np.mgrid[0:ny, 0:nx]
    r2 = ((yy - ny * 0.45) ** 2 + (xx - nx * 0.55) ** 2) / (0.5 * math.hypot(ny, nx)) ** 2
    flat = 30000.0 * (1 - 0.35 * r2) * (1 + 0.02 * xx / nx)  # off-centre vignetting + tilt
    flat = flat + rng.normal(0, 1, flat.shape) * np.sqrt(flat)  # shot noise
    flat[rng.random(flat.shape) < 1e-3] = 65535.0  # hot pixels
    rows = frame_subsample(flat.shape, max_pixels=200_000)
    assert rows.size * nx <= 200_000
    loc_full, s_full = location_scale(flat, method)
    loc_sub, s_sub = location_scale(flat[rows], method)
    assert loc_sub == pytest.approx(loc_full, rel=2e-3)
    assert s_sub == pytest.approx(s_full, rel=1e-2)


# ----------------------------------------------------------------- normalisation


def test_normalisation_modes_tuple():
    assert NORMALIZATIONS == (
        "none",
        "additive",
        "multiplicative",
        "additive_scaling",
        "multiplicative_scaling",
        "equalize_fluxes",
    )


@settings(max_examples=60, deadline=None)
@given(
    locs=st.lists(st.floats(1.0, 1e5), min_size=1, max_size=8),
    data=st.data(),
)
def test_normalisation_formulas_property(locs, data):
    n = len(locs)
    scales = data.draw(st.lists(st.floats(0.1, 1e4), min_size=n, max_size=n))
    ref = data.draw(st.integers(0, n - 1))
    x = data.draw(st.floats(-1e5, 1e5))
    L, S = np.array(locs), np.array(scales)
    Lr, Sr = L[ref], S[ref]
    expect = {
        "none": x + 0 * L,
        "additive": x - L + Lr,
        "multiplicative": x * Lr / L,
        "additive_scaling": (x - L) * Sr / S + Lr,
        "multiplicative_scaling": x * (Sr / S) * (Lr / L),
        "equalize_fluxes": x * Lr / L,
    }
    for mode in NORMALIZATIONS:
        a, b = normalization_coefficients(L, S, mode, reference=ref)
        np.testing.assert_allclose(x * a + b, expect[mode], rtol=1e-9, atol=1e-9 * (abs(x) + L.max()))
        assert a[ref] == pytest.approx(1.0, rel=1e-12) and b[ref] == pytest.approx(0.0, abs=1e-9 * Lr)


def test_normalisation_scales_optional_for_non_scaling_modes():
    for mode in ("none", "additive", "multiplicative", "equalize_fluxes"):
        a, b = normalization_coefficients([10.0, 20.0], None, mode)
        assert a.shape == (2,)
    with pytest.raises(ValueError, match="scales"):
        normalization_coefficients([10.0, 20.0], None, "additive_scaling")


def test_normalisation_errors():
    with pytest.raises(ValueError, match=r"unknown normalisation mode 'median'.*none, additive, multiplicative"):
        normalization_coefficients([1.0], [1.0], "median")
    with pytest.raises(ValueError, match=r"frame 2 has location -5\.0"):
        normalization_coefficients([10.0, 20.0, -5.0, 0.0], [1.0] * 4, "multiplicative")
    with pytest.raises(ValueError, match=r"frame 1 has location 0\.0"):
        normalization_coefficients([10.0, 0.0], [1.0, 1.0], "multiplicative_scaling")
    with pytest.raises(ValueError, match=r"frame 1 has location 0\.0"):
        normalization_coefficients([10.0, 0.0], None, "equalize_fluxes")
    # additive modes accept non-positive locations (e.g. bias-subtracted data)
    normalization_coefficients([10.0, -3.0], [1.0, 1.0], "additive_scaling")
    with pytest.raises(ValueError, match=r"frame 1 has scale 0\.0"):
        normalization_coefficients([10.0, 20.0], [1.0, 0.0], "additive_scaling")
    with pytest.raises(ValueError, match=r"frame 0 has scale -1\.0"):
        normalization_coefficients([10.0, 20.0], [-1.0, 1.0], "multiplicative_scaling")
    with pytest.raises(ValueError, match=r"location of frame 1 is nan"):
        normalization_coefficients([10.0, np.nan], [1.0, 1.0], "additive")
    with pytest.raises(ValueError, match="reference frame index 3 out of range for 2"):
        normalization_coefficients([10.0, 20.0], [1.0, 1.0], "additive", reference=3)
    with pytest.raises(ValueError, match="scales has 3 values but locations has 2"):
        normalization_coefficients([10.0, 20.0], [1.0, 1.0, 1.0], "additive_scaling")
    with pytest.raises(ValueError, match="1-D"):
        normalization_coefficients([[10.0, 20.0]], None, "additive")
    with pytest.raises(ValueError, match="at least one frame"):
        normalization_coefficients([], [], "additive")


def test_none_mode_accepts_anything_finite_or_not():
    a, b = normalization_coefficients([np.nan, -1.0, 0.0], None, "none")
    assert np.array_equal(a, [1, 1, 1]) and np.array_equal(b, [0, 0, 0])


def test_choose_reference():
    locs, scales = [1000.0, 1200.0, 900.0, 1100.0], [50.0, 40.0, np.nan, 45.0]
    assert choose_reference(locs, scales) == 0  # Siril's default: the first frame
    assert choose_reference(locs, scales, "min_scale") == 1
    assert choose_reference(locs, scales, "median_location") == 0  # median 1050: tie 1000/1100 -> lowest index
    assert choose_reference([5.0, np.nan, 7.0, 6.0], None, "median_location") == 3
    with pytest.raises(ValueError, match="valid: first, min_scale, median_location"):
        choose_reference(locs, scales, "best")
    with pytest.raises(ValueError, match="scales"):
        choose_reference(locs, None, "min_scale")
    with pytest.raises(ValueError, match="no frame"):
        choose_reference(locs, [0.0, -1.0, np.nan, 0.0], "min_scale")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_subnormal=False), min_size=1, max_size=40))
def test_bwmv_matches_astropy_property(values):
    stats = pytest.importorskip("astropy.stats")
    x = np.array(values)
    with warnings.catch_warnings():
        # astropy squares u for every value and may overflow on a tiny MAD (harmless there)
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = stats.biweight_midvariance(x, c=9.0, modify_sample_size=False)
    assert bwmv(x) == pytest.approx(ref, rel=1e-9, abs=1e-300)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_subnormal=False), min_size=1, max_size=40),
    st.floats(0.5, 4.0),
    st.floats(-1e4, 1e4),
)
def test_median_mad_bwmv_equivariance_property(values, a, b):
    x = np.array(values)
    y = a * x + b
    assert median(y) == pytest.approx(a * median(x) + b, rel=1e-9, abs=1e-7)
    assert mad(y) == pytest.approx(a * mad(x), rel=1e-6, abs=1e-7)
    assert bwmv(y) == pytest.approx(a * a * bwmv(x), rel=1e-6, abs=1e-6)
