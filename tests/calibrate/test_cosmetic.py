"""Cosmetic correction (``calibrate.cosmetic``): hot and cold pixel maps against the simulator's truth,
amp glow / vignetting / dust donuts not flagged, and same-colour defect replacement.

Scoring of the hot-pixel map. The simulator has hot pixels (100-1000x the mean dark current) and warm
pixels (5-20x). In a 300 s master dark of 10 frames a warm pixel stands 15-100 sigma above its
neighbours, so at ``k_hot = 5`` it is - rightly - a detected thermal defect. So:

* recall = detected truth hot pixels / truth hot pixels (every hot pixel must be found);
* precision = detections that are truth hot *or warm* pixels / detections (a detection that is
  neither is a false alarm: amp glow, noise, a flickering column);
* with ``k_hot = 150`` the map separates hot from warm, and precision is scored against the hot
  pixels alone.

Masters are combined with a numpy sigma-clipped mean (what is tested is defect detection, not
integration, whose kernels' first compilation would cost more than this file).
"""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from astrocal_widgets import simulate_session
from astrocal_widgets.calibrate.cosmetic import (DefectMap, check_bayer_pattern, cold_pixel_map, correct_defects,
                                                 defect_map, defect_residual, hot_pixel_map, local_background,
                                                 noise_map)

SHAPE = (240, 320)
COUNTS = {"bias": 20, "dark": 10, "flat": 10, "darkflat": 10, "light": 1}


def _master(paths, k: float = 3.0) -> np.ndarray:
    """Mean after one 3-sigma clip about the per-pixel median (cosmic rays and flicker out)."""
    cube = np.stack([fits.getdata(p).astype(np.float64) for p in paths])
    med = np.median(cube, axis=0)
    sig = np.maximum(1.4826 * np.median(np.abs(cube - med), axis=0), 1e-6)
    keep = np.abs(cube - med) <= k * sig
    return (np.where(keep, cube, 0.0).sum(0) / keep.sum(0)).astype(np.float32)


@pytest.fixture(scope="module", params=["mono", "osc"])
def night(request, tmp_path_factory):
    s = simulate_session(tmp_path_factory.mktemp(request.param), camera=request.param, seed=0, shape=SHAPE,
                         counts=COUNTS)
    fr = s.frames
    darks = fr[fr.kind == "dark"]
    flats = {}
    for f in s.truth.filter.values:
        fl = fr[(fr.kind == "flat") & (fr["filter"] == f)]
        df = fr[(fr.kind == "darkflat") & (fr.exposure == fl.exposure.iloc[0])]
        flats[str(f)] = _master(list(fl.path)) - _master(list(df.path))
    return {
        "session": s,
        "truth": s.truth,
        "pattern": s.camera.bayer_pattern or "",
        "bias": _master(s.paths["bias"]),
        "dark": {t: _master(list(darks[darks.exposure == t].path)) for t in (300.0, 60.0)},
        "flats": flats,
    }


def _scores(flagged, truth_pos, allowed):
    recall = (flagged & truth_pos).sum() / truth_pos.sum()
    precision = (flagged & allowed).sum() / max(flagged.sum(), 1)
    return recall, precision


# --------------------------------------------------------------------------- hot pixels


@pytest.mark.parametrize("exposure", [300.0, 60.0])
@pytest.mark.parametrize("with_bias", [True, False])
def test_hot_pixel_map_recall_precision(night, exposure, with_bias):
    """Measured (seed 0): recall 100 %, precision 100 %, mono and colour, 300 s and 60 s, with or without bias."""
    t = night["truth"]
    hot, warm = t.hot_pixels.values, t.warm_pixels.values
    dark, bias = night["dark"][exposure], night["bias"]
    inputs = (dark.copy(), bias.copy())
    h = hot_pixel_map(dark, bias=bias if with_bias else None, bayer_pattern=night["pattern"])
    assert h.dtype == bool and h.shape == dark.shape
    recall, precision = _scores(h, hot, hot | warm)
    assert recall == 1.0
    assert precision > 0.95
    if exposure == 300.0:  # warm pixels are 15-100 sigma in a 300 s master: all found too
        assert (h & warm).sum() / warm.sum() > 0.95
    np.testing.assert_array_equal(dark, inputs[0])
    np.testing.assert_array_equal(bias, inputs[1])


def test_maps_equal_full_noise_map(night):
    """The window term, evaluated only where the other terms flag, gives the full-map result."""
    pat = night["pattern"]
    d = night["dark"][300.0] - night["bias"]
    r, sigma = defect_residual(d, bayer_pattern=pat)
    np.testing.assert_array_equal(hot_pixel_map(d, bayer_pattern=pat), r > 5 * sigma)
    np.testing.assert_array_equal(cold_pixel_map(master_dark=d, bayer_pattern=pat), r < -5 * sigma)
    flat = next(iter(night["flats"].values()))
    r, sigma = defect_residual(flat, bayer_pattern=pat, relative=True)
    np.testing.assert_array_equal(cold_pixel_map(flat, bayer_pattern=pat), r < -np.maximum(5 * sigma, 0.2))
    assert np.all(sigma >= noise_map(r, bayer_pattern=pat, window=None))


def test_hot_pixel_map_high_threshold_keeps_hot_only(night):
    t = night["truth"]
    hot = t.hot_pixels.values
    h = hot_pixel_map(night["dark"][300.0], bias=night["bias"], k_hot=150, bayer_pattern=night["pattern"])
    recall, precision = _scores(h, hot, hot)
    assert recall > 0.95 and precision > 0.95


def test_amp_glow_not_flagged(night):
    """The glowing corner (dark signal up to 50x the mean) yields no detection but true defects."""
    t = night["truth"]
    cam = night["session"].camera
    defects = t.hot_pixels.values | t.warm_pixels.values
    glow = t.dark_current.values * cam.gain > 3 * cam.dark_current  # > 3x the mean: the glow region
    glow &= ~defects
    assert glow.sum() > 300  # the region is not trivially small
    for exposure in (300.0, 60.0):
        for bias in (night["bias"], None):
            h = hot_pixel_map(night["dark"][exposure], bias=bias, bayer_pattern=night["pattern"])
            assert not (h & glow).any()
            assert not cold_pixel_map(master_dark=night["dark"][exposure], bias=bias,
                                      bayer_pattern=night["pattern"])[glow].any()


# --------------------------------------------------------------------------- cold pixels


def test_cold_pixel_map_from_flats(night):
    """Measured: all 15 cold pixels found in every filter, no false detection (vignetting, dust, PRNU)."""
    cold = night["truth"].cold_pixels.values
    for name, flat in night["flats"].items():
        before = flat.copy()
        c = cold_pixel_map(flat, bayer_pattern=night["pattern"])
        recall, precision = _scores(c, cold, cold)
        assert recall > 0.95 and precision > 0.95, name
        assert (c & ~cold).sum() <= 1, name
        np.testing.assert_array_equal(flat, before)
        # the scale of the flat does not matter
        np.testing.assert_array_equal(cold_pixel_map(flat / flat.mean(), bayer_pattern=night["pattern"]), c)


def test_cold_pixel_map_from_dark_alone_finds_nothing_on_a_normal_dark(night):
    # the simulator's cold pixels respond little to light but have a normal dark current
    c = cold_pixel_map(master_dark=night["dark"][300.0], bias=night["bias"], bayer_pattern=night["pattern"])
    assert c.sum() <= 1


@pytest.mark.parametrize("pattern", ["", "RGGB"])
def test_vignetting_and_dust_not_flagged_dead_pixels_are(pattern):
    """Synthetic flat: 35 % vignetting, sharp 10 % dust donuts, colour channels, 0.7 % PRNU, dead pixels."""
    rng = np.random.default_rng(5)
    shape = (200, 300)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    r2 = ((yy - 100) ** 2 + (xx - 150) ** 2) / (100 ** 2 + 150 ** 2)
    flat = 1 - 0.35 * r2
    for cy, cx, outer in [(50, 60, 12), (150, 220, 20), (120, 100, 6)]:
        r = np.hypot(yy - cy, xx - cx)
        flat *= 1 - 0.10 * ((r < outer) & (r > 0.45 * outer))
    if pattern:
        cell = np.array([[0.6, 1.0], [1.0, 0.8]])
        flat *= np.tile(cell, (shape[0] // 2, shape[1] // 2))
    flat *= 1 + 0.007 * rng.standard_normal(shape)
    dead = np.zeros(shape, bool)
    dead[rng.integers(0, shape[0], 20), rng.integers(0, shape[1], 20)] = True
    flat[dead] *= rng.uniform(0.0, 0.3, dead.sum())
    c = cold_pixel_map(flat * 25000, bayer_pattern=pattern)
    np.testing.assert_array_equal(c, dead)
    # the pure sigma test would take pixels on the sharp edges of the thin donut for dead ones
    c0 = cold_pixel_map(flat * 25000, bayer_pattern=pattern, min_deficit=0.0)
    assert c0[dead].all() and (c0 & ~dead).sum() > 0


@pytest.mark.parametrize("pattern", ["", "GBRG"])
def test_non_finite_master_pixels_are_defects(pattern):
    """NaN in a master (no frame contributed) cannot calibrate: flagged, without disturbing the rest."""
    rng = np.random.default_rng(4)
    dark = 500 + rng.normal(0, 2, (64, 80))
    dark[5, 6] = dark[40, 41] = np.nan
    dark[20, 30] += 400  # a real hot pixel
    before = dark.copy()
    h = hot_pixel_map(dark, bayer_pattern=pattern)
    assert h[5, 6] and h[40, 41] and h[20, 30] and h.sum() == 3
    np.testing.assert_array_equal(dark, before)  # NaN included: the input is untouched
    r, _ = defect_residual(dark, bayer_pattern=pattern)
    assert np.isnan(r[5, 6]) and np.isfinite(np.delete(r.ravel(), [5 * 80 + 6, 40 * 80 + 41])).all()
    flat = 1 + rng.normal(0, 0.005, (64, 80))
    flat[7, 7], flat[9, 9], flat[11, 11] = np.nan, 0.0, -1.0
    c = cold_pixel_map(flat, bayer_pattern=pattern)
    assert c[7, 7] and c[9, 9] and c[11, 11] and c.sum() == 3


def test_dead_pixel_in_dark_is_cold():
    rng = np.random.default_rng(2)
    dark = 500 + rng.normal(0, 2, (64, 64))
    dark[10, 20] = 0.0
    c = cold_pixel_map(master_dark=dark)
    assert c[10, 20] and c.sum() == 1


def test_defect_map_bundles_both(night):
    dm = defect_map(night["dark"][300.0], night["flats"][next(iter(night["flats"]))], bias=night["bias"],
                    bayer_pattern=night["pattern"])
    assert isinstance(dm, DefectMap)
    assert dm.counts["hot"] == dm.hot.sum() and dm.counts["cold"] == dm.cold.sum()
    assert dm.counts["total"] == (dm.hot | dm.cold).sum() == dm.mask.sum()
    assert dm.thresholds["k_hot"] == 5.0 and dm.thresholds["k_cold"] == 5.0
    assert dm.cold[night["truth"].cold_pixels.values].all()


def test_the_darks_share_made_ahead_gives_the_same_map(night):
    """calibrate_session makes the dark's part while the flats integrate; handed in, the map is the same."""
    from astrocal_widgets.calibrate import dark_defect_maps

    dark, flat = night["dark"][300.0], night["flats"][next(iter(night["flats"]))]
    whole = defect_map(dark, flat, bias=night["bias"], bayer_pattern=night["pattern"])
    hot, cold = dark_defect_maps(dark, bias=night["bias"], bayer_pattern=night["pattern"])
    assert np.array_equal(hot, whole.hot) and hot.any()
    ahead = defect_map(None, flat, bayer_pattern=night["pattern"], dark_maps=(hot, cold))
    assert np.array_equal(ahead.hot, whole.hot) and np.array_equal(ahead.cold, whole.cold)
    assert ahead.counts == whole.counts
    with pytest.raises(ValueError, match="dark_maps are"):
        defect_map(None, flat[:-2], dark_maps=(hot, cold))


def test_a_large_planes_noise_floor_comes_from_a_sample():
    """Above PLANE_SAMPLE pixels the floor is estimated from every k-th row and column: within 0.5 %."""
    from astrocal_widgets.calibrate import cosmetic

    rng = np.random.default_rng(5)
    plane = rng.normal(0, 4.0, (1200, 1100)).astype(np.float32)
    plane[rng.random(plane.shape) < 0.01] = 500.0  # defects do not move a robust sigma
    exact = cosmetic._robust_sigma(plane)
    old = cosmetic.PLANE_SAMPLE
    try:
        cosmetic.PLANE_SAMPLE = 200_000
        sampled = cosmetic._plane_sigma(plane)
    finally:
        cosmetic.PLANE_SAMPLE = old
    assert sampled != exact and sampled == pytest.approx(exact, rel=5e-3)
    assert cosmetic._plane_sigma(plane) == exact  # below the threshold: every pixel


# --------------------------------------------------------------------------- correction


def test_correct_defects_mono_median_of_8_neighbours():
    frame = np.arange(25, dtype=np.float32).reshape(5, 5) * 10
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    before = frame.copy()
    out = correct_defects(frame, mask)
    assert out[2, 2] == np.median([60, 70, 80, 110, 130, 160, 170, 180])
    np.testing.assert_array_equal(np.delete(out.ravel(), 12), np.delete(frame.ravel(), 12))
    np.testing.assert_array_equal(frame, before)  # a new array, the input untouched
    # masked neighbours are ignored
    mask[1, 1] = mask[1, 2] = True
    out = correct_defects(frame, mask)
    assert out[2, 2] == np.median([80, 110, 130, 160, 170, 180])


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_correct_defects_cfa_uses_same_colour(pattern):
    rng = np.random.default_rng(0)
    shape = (40, 60)
    level = {"R": 1000.0, "G": 3000.0, "B": 2000.0}
    cell = np.array([[level[pattern[0]], level[pattern[1]]], [level[pattern[2]], level[pattern[3]]]])
    clean = np.tile(cell, (shape[0] // 2, shape[1] // 2)) + rng.normal(0, 1, shape)
    frame = clean.astype(np.float32)
    mask = np.zeros(shape, bool)
    ys, xs = rng.integers(0, shape[0], 60), rng.integers(0, shape[1], 60)
    mask[ys, xs] = True
    mask[0, 0] = mask[-1, -1] = True  # corners
    mask[20:23, 30:33] = True  # a 3x3 cluster: its centre's green neighbours are partly masked
    frame[mask] = 60000.0  # hot
    out = correct_defects(frame, mask, pattern)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[mask], clean[mask], atol=5)  # the defect's own colour level
    np.testing.assert_array_equal(out[~mask], frame[~mask])


def test_correct_defects_cfa_green_uses_diagonal_greens():
    frame = np.zeros((8, 8))
    frame[0::2, 1::2] = 10.0  # G (RGGB)
    frame[1::2, 0::2] = 20.0  # the other G
    mask = np.zeros((8, 8), bool)
    mask[3, 4] = True  # a G site of row-type 2 (value 20): its diagonal greens are the other G sites
    out = correct_defects(frame, mask, "RGGB")
    # 4 diagonal greens (10) and 4 greens 2 away (20): median of 8 = 15
    assert out[3, 4] == 15.0


def test_correct_defects_hot_pixels_of_a_light(night):
    """Replacing the hot pixels of a raw light brings them to their same-colour neighbourhood."""
    s, pat = night["session"], night["pattern"]
    light = fits.getdata(s.paths["light"][0]).astype(np.float32)
    mask = hot_pixel_map(night["dark"][300.0], bias=night["bias"], bayer_pattern=pat)
    out = correct_defects(light, mask, pat)
    bg = local_background(light, bayer_pattern=pat, size=5)
    hot = night["truth"].hot_pixels.values
    assert np.all(light[hot] - bg[hot] > 50)  # hot pixels stand out before ...
    assert np.median(np.abs(out[hot] - bg[hot])) < 30  # ... and blend in after
    assert np.isfinite(out).all()


def test_correct_defects_edges_and_hopeless_pixels():
    frame = np.full((6, 6), 7.0, np.float32)
    mask = np.ones((6, 6), bool)
    mask[0, 0] = False
    out = correct_defects(frame, mask)
    # pixels within 3 rings of the only good pixel take its value; the others have no neighbour left
    assert out[3, 3] == 7.0 and np.isnan(out[5, 5]) and out[0, 0] == 7.0
    assert correct_defects(frame.astype(np.float64), mask).dtype == np.float64


def test_errors():
    with pytest.raises(ValueError, match="bayer_pattern"):
        check_bayer_pattern("RGBG")
    assert check_bayer_pattern(None) == "" and check_bayer_pattern(" bggr ") == "BGGR"
    with pytest.raises(ValueError, match=r"bias has shape \(4, 4\) but master_dark has shape \(8, 8\)"):
        hot_pixel_map(np.ones((8, 8)), bias=np.ones((4, 4)))
    with pytest.raises(ValueError, match="no finite pixel"):
        hot_pixel_map(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="k_hot"):
        hot_pixel_map(np.ones((8, 8)), k_hot=0)
    with pytest.raises(ValueError, match="needs a master_flat"):
        cold_pixel_map()
    with pytest.raises(ValueError, match=r"mask has shape \(3, 3\) but frame has shape \(8, 8\)"):
        correct_defects(np.ones((8, 8)), np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="odd"):
        local_background(np.ones((8, 8)), size=4)


# --------------------------------------------------------------------------- compiled statistics


@pytest.mark.parametrize("size", [3, 5, 7])
@pytest.mark.parametrize("shape", [(9, 2500), (40, 37), (1030, 12)])
def test_median_filter_is_scipys_bit_for_bit(size, shape):
    """The compiled filter works on blocks of a row (2500 > one block): every edge and block seam."""
    from scipy import ndimage

    from astrocal_widgets.calibrate.cosmetic import median_filter

    rng = np.random.default_rng(size)
    image = rng.normal(100, 10, shape).astype(np.float32)
    image[rng.integers(0, shape[0], 50), rng.integers(0, shape[1], 50)] = 5e4  # hot pixels
    image[:, :3] = np.round(image[:, :3])  # ties
    assert np.array_equal(median_filter(image, size), ndimage.median_filter(image, size=size, mode="mirror"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_line_and_plane_statistics_are_numpys(dtype):
    """Row, column and whole-plane median and MAD as numpy computes them, also on CFA plane views."""
    from astrocal_widgets.calibrate.cosmetic import MAD_TO_SIGMA, _median_along, _robust_sigma

    rng = np.random.default_rng(3)
    image = rng.normal(0, 3, (101, 70)).astype(dtype)
    image[5] = 1.0  # a constant row and ties
    for plane in (image, image[1::2, ::2], image[:, :69]):
        for axis in (0, 1):
            assert np.array_equal(_median_along(plane, axis), np.median(plane, axis=axis))
            mad = np.median(np.abs(plane - np.median(plane, axis=axis, keepdims=True)), axis=axis)
            assert np.allclose(_robust_sigma(plane, axis=axis), MAD_TO_SIGMA * mad, rtol=1e-6, atol=0)
        m = np.median(plane, keepdims=True)
        assert _robust_sigma(plane) == float(MAD_TO_SIGMA * np.median(np.abs(plane - m)))


@pytest.mark.parametrize("n", [1024, 2047, 4000, 6001])
@pytest.mark.parametrize("kind", ["normal", "ties", "sorted", "outliers", "constant", "nan"])
def test_long_line_statistics_are_exact(n, kind):
    """Lines long enough for the bracketed selection give numpy's medians and MADs exactly, also
    where the sample's bracket misses the middle (sorted lines, a third of the line far out, ties,
    a constant line) or a NaN forces the whole-line selection."""
    from numba import njit

    from astrocal_widgets.calibrate.cosmetic import _line_stats

    numba_median = njit(lambda line: np.median(line))
    rng = np.random.default_rng(n)
    lines = rng.normal(0, 0.01, (12, n)).astype(np.float32)
    if kind == "ties":
        lines = np.round(lines * 300).astype(np.float32)
    elif kind == "sorted":
        lines = np.sort(lines, axis=1)
        lines[1::2] = lines[1::2, ::-1]
    elif kind == "outliers":
        lines[:, : n // 3] = 5e4
    elif kind == "constant":
        lines[:] = 7.0
    elif kind == "nan":
        lines[:, 17] = np.nan
    for axis, image in ((1, lines), (0, np.ascontiguousarray(lines.T))):
        median = np.median(lines, axis=1)
        deviations = np.abs(lines - median[:, None].astype(np.float64)).astype(np.float32)
        mad = np.median(deviations, axis=1)
        if kind == "nan":
            # numpy says NaN; the maps never hold one (invalid pixels are filled first), and a line
            # with one is selected whole, as numba's own median did before the bracketed selection
            median = np.array([numba_median(line) for line in lines])
            assert not np.isnan(median).all()
            assert np.array_equal(_line_stats(image, axis, False), median, equal_nan=True)
            continue
        assert np.array_equal(_line_stats(image, axis, False), median)
        assert np.array_equal(_line_stats(image, axis, True), mad)


def _correct_defects_reference(frame, mask, pattern=""):
    """The correction written with numpy alone, ring by ring (the compiled loop must agree exactly)."""
    from astrocal_widgets.calibrate.cosmetic import _neighbour_rings
    from astrocal_widgets.io.cfa import site_colours

    out = np.array(frame, dtype=np.float32 if np.asarray(frame).dtype != np.float64 else np.float64)
    m = np.asarray(mask, bool)
    ny, nx = out.shape
    ys, xs = np.nonzero(m)
    colours = site_colours(pattern)[ys % 2, xs % 2] if pattern else np.full(ys.size, "")
    for colour in np.unique(colours):
        sel = colours == colour
        py, px = ys[sel], xs[sel]
        result = np.full(py.size, np.nan)
        todo = np.ones(py.size, bool)
        for offsets in _neighbour_rings(pattern, str(colour)):
            if not todo.any():
                break
            ty, tx = py[todo], px[todo]
            oy, ox = np.array([o[0] for o in offsets]), np.array([o[1] for o in offsets])
            ny_, nx_ = ty[:, None] + oy[None, :], tx[:, None] + ox[None, :]
            inside = (ny_ >= 0) & (ny_ < ny) & (nx_ >= 0) & (nx_ < nx)
            neigh = np.full(ny_.shape, np.nan)
            iy, ix = ny_[inside], nx_[inside]
            neigh[inside] = np.where(m[iy, ix], np.nan, out[iy, ix].astype(np.float64))
            ok = np.any(~np.isnan(neigh), axis=1)
            idx = np.flatnonzero(todo)[ok]
            with np.errstate(all="ignore"):
                result[idx] = np.nanmedian(neigh[ok], axis=1)
            todo[idx] = False
        out[py, px] = result.astype(out.dtype)
    return out


@pytest.mark.parametrize("pattern", ["", "RGGB", "GBRG"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_correction_matches_the_ring_by_ring_reference(pattern, dtype):
    """Scattered and clustered defects (whose first rings are all masked), defects on the edges and
    corners, NaN neighbours and a fully masked corner block (no usable neighbour: NaN)."""
    rng = np.random.default_rng(len(pattern) + np.dtype(dtype).itemsize)
    frame = rng.normal(1000, 30, (60, 70))
    frame = frame.astype(dtype) if dtype != np.uint16 else np.round(frame).astype(np.uint16)
    mask = rng.random(frame.shape) < 0.05
    mask[20:27, 30:37] = True  # a cluster: the inner pixels fall back to rings 2 and 3
    mask[0, :5] = mask[-1, -3:] = mask[:, 0] = True
    mask[-12:, :12] = True  # larger than every ring: no usable neighbour
    if dtype != np.uint16:
        frame[rng.random(frame.shape) < 0.02] = np.nan
    expected = _correct_defects_reference(frame, mask, pattern)
    got = correct_defects(frame, mask, pattern)
    assert np.isnan(got[-6, 5]) and np.isfinite(got[22, 32])  # (22, 32) only has ring-3 neighbours
    np.testing.assert_array_equal(got, expected)
    as_map = DefectMap(mask, np.zeros_like(mask), {}, {})  # its positions, found once, give the same
    np.testing.assert_array_equal(correct_defects(frame, as_map, pattern), expected)
    if dtype != np.uint16:
        in_place = frame.copy()
        correct_defects(in_place, mask, pattern, inplace=True)
        np.testing.assert_array_equal(in_place, expected)
