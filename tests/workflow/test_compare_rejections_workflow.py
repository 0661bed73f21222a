"""compare_rejections: two rejections of one crop, against integrate on the same crop; reads only the crop's bands."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from astrocal_widgets.calibrate import build_master, calibrate_flats
from astrocal_widgets.errors import CancelledError
from astrocal_widgets.integrate import integrate
from astrocal_widgets.io import READ_STATISTICS
from astrocal_widgets.io.cube import open_frames
from astrocal_widgets.simulate import FilterSpec, simulate_session
from astrocal_widgets.workflow import (COMPARE_CROP, compare_rejections, integrate_master, open_session,
                                       save_master)

SHAPE = (96, 128)
L_ONLY = [FilterSpec("L", flat_exposure=1.5)]


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare") / "night"
    simulate_session(root, shape=SHAPE, seed=3, filters=L_ONLY,
                     counts={"bias": 9, "dark": 0, "flat": 7, "darkflat": 6, "light": 1})
    return open_session(root)


def _direct(group, crop, **options):
    """The master of the cropped cube straight from integrate (the reference)."""
    y0, y1, x0, x1 = crop
    cube = open_frames(group.paths, overscan="auto").isel(y=slice(y0, y1), x=slice(x0, x1))
    return integrate(cube, combine="average", normalization="none", **options).compute()


def test_each_master_is_integrate_of_the_cropped_cube(night):
    bias = night.groups("bias")[0]
    crop = (10, 74, 20, 100)
    result = compare_rejections(bias, "sigma", ("mad", 2.0, 2.5), crop=crop)
    assert result.crop == crop and result.n_frames == 9 and result.kind == "bias"
    assert result.frame_shape == SHAPE and result.combine == "average" and result.normalization == "none"
    for outcome, options in ((result.first, dict(rejection="sigma")),
                             (result.second, dict(rejection="mad", low=2.0, high=2.5))):
        direct = _direct(bias, crop, **options)
        assert outcome.master.shape == (64, 80)
        np.testing.assert_array_equal(outcome.master, direct["master"].values)
        np.testing.assert_array_equal(outcome.rejected_low, direct["rejected_low"].values)
        np.testing.assert_array_equal(outcome.rejected_high, direct["rejected_high"].values)
        np.testing.assert_array_equal(outcome.contributing, direct["contributing"].values)
        assert outcome.algorithm == options["rejection"]
        assert (outcome.low, outcome.high) == (direct.attrs["low"], direct.attrs["high"])
        # the rejected fractions are the maps' means over the frames
        assert outcome.fraction_low == pytest.approx(outcome.rejected_low.mean() / 9, rel=1e-12)
        assert outcome.fraction_high == pytest.approx(outcome.rejected_high.mean() / 9, rel=1e-12)
        assert outcome.fraction == pytest.approx(outcome.rejected.mean() / 9, rel=1e-12)
        assert outcome.noise > 0 and outcome.expected_noise > 0
    assert result.first.label == "sigma 3/3" and result.second.label == "mad 2/2.5"
    # mad at 2/2.5 sigma rejects more than sigma at 3/3
    assert result.second.fraction > result.first.fraction >= 0
    # the difference is exactly second - first, and its figures are its own
    np.testing.assert_array_equal(result.difference, result.second.master - result.first.master)
    assert result.difference_rms == pytest.approx(float(np.sqrt(np.mean(result.difference.astype(float) ** 2))))
    assert result.difference_max == pytest.approx(float(np.abs(result.difference).max()))
    assert result.difference_max > 0
    # expected noise: one frame's temporal noise over sqrt of the frames kept (fewer kept: more noise)
    assert result.second.expected_noise > result.first.expected_noise
    assert result.first.expected_noise == pytest.approx(
        result.frame_sigma * float(np.sqrt(np.mean(1.0 / result.first.contributing))), rel=1e-9)
    text = result.summary()
    assert "sigma 3/3" in text and "mad 2/2.5" in text and "rows 10-73, columns 20-99" in text
    assert [row["rejection"] for row in result.table()] == ["sigma 3/3", "mad 2/2.5"]
    with pytest.raises(ValueError):  # the result's arrays are read-only: it is a record
        result.difference[0, 0] = 1.0


def test_the_default_crop_is_centred_with_even_offsets(night):
    bias = night.groups("bias")[0]
    result = compare_rejections(bias, "none", "percentile", crop_size=30)
    y0, y1, x0, x1 = result.crop
    assert (y1 - y0, x1 - x0) == (30, 30) and y0 % 2 == 0 and x0 % 2 == 0
    assert abs((y0 + y1) / 2 - SHAPE[0] / 2) <= 1 and abs((x0 + x1) / 2 - SHAPE[1] / 2) <= 1
    assert result.first.fraction == 0 and result.first.label == "none"  # no rejection rejects nothing
    np.testing.assert_array_equal(result.first.master, _direct(bias, result.crop, rejection="none")["master"].values)
    # larger than the frames: the whole frame
    assert compare_rejections(bias, "none", "sigma").crop == (0, SHAPE[0], 0, SHAPE[1]) and COMPARE_CROP > SHAPE[1]


def test_flats_are_calibrated_and_normalised_as_their_master(night):
    masters = night.masters_dir
    darkflats = night.groups("darkflat")[0]
    save_master(integrate_master(darkflats), masters)
    flats = night.groups("flat")[0]
    crop = (16, 80, 32, 96)
    result = compare_rejections(flats, "winsorized_sigma", ("percentile", 0.1, 0.05), crop=crop, library=masters,
                                night=night.catalog)
    assert result.kind == "flat" and result.normalization == "multiplicative"
    calibrated = calibrate_flats(flats, masters).cube.isel(y=slice(16, 80), x=slice(32, 96))
    for outcome, options in ((result.first, dict(rejection="winsorized_sigma")),
                             (result.second, dict(rejection="percentile", low=0.1, high=0.05))):
        direct = build_master(calibrated, "flat", **options).compute()
        assert direct.attrs["rejection_normalization"] == "equalize_fluxes"
        np.testing.assert_array_equal(outcome.master, direct["master"].values)
        np.testing.assert_array_equal(outcome.rejected_high, direct["rejected_high"].values)
    # the dark flat's pedestal is gone: the flat's level is its light, near the simulated level
    assert 0.9 * float(np.median(calibrated.values)) < float(np.median(result.first.master)) < 1.1 * float(
        np.median(calibrated.values))
    # the combine can be changed, as for the master
    median = compare_rejections(flats, "sigma", "mad", crop=crop, library=masters, combine="median")
    assert median.combine == "median"
    assert median.first.expected_noise == pytest.approx(
        1.2533 * median.frame_sigma * float(np.sqrt(np.mean(1.0 / median.first.contributing))), rel=1e-3)


def test_only_the_crops_bands_are_read(night):
    bias = night.groups("bias")[0]
    cube = open_frames(bias.paths)
    edges = np.cumsum((0,) + cube.chunks[1])  # the bands a cube reads, each whole
    crop = (40, 50, 0, SHAPE[1])
    bands = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if a < crop[1] and b > crop[0]]
    READ_STATISTICS.reset()
    compare_rejections(bias, "sigma", "mad", crop=crop)
    rows = sum(b - a for a, b in bands)
    assert READ_STATISTICS.rows == 9 * rows < 9 * SHAPE[0] / 2  # once for both integrations, not the frames
    assert READ_STATISTICS.bytes == 9 * rows * SHAPE[1] * 2


def test_excluded_frames_are_left_out(night):
    bias = night.groups("bias")[0]
    left_out = {str(bias.paths[2]): "satellite trail"}
    result = compare_rejections(bias, "sigma", "mad", crop=(0, 32, 0, 32), excluded=left_out)
    assert result.n_frames == 8 and dict(result.excluded) == left_out
    kept = [p for i, p in enumerate(bias.paths) if i != 2]
    cube = open_frames(kept).isel(y=slice(0, 32), x=slice(0, 32))
    np.testing.assert_array_equal(result.first.master, integrate(cube, rejection="sigma")["master"].values)


@pytest.mark.parametrize("first, second, message", [
    ("kappa", "sigma", "unknown rejection 'kappa'"),
    ("sigma", ("esd", 1.5, 0.05), "esd: low and high are the largest outlier fraction"),
    (("sigma", -1.0, 3.0), "mad", "sigma: low and high are sigma multiples"),
    ({"rejection": "minmax", "low": 1.5}, "none", "minmax: low and high are counts"),
    ("sigma", ("mad", 3.0), "a name, \\(name, low, high\\) or a mapping"),
])
def test_bad_choices_are_clear_errors_before_any_read(night, first, second, message):
    bias = night.groups("bias")[0]
    READ_STATISTICS.reset()
    with pytest.raises(ValueError, match=message):
        compare_rejections(bias, first, second)
    assert READ_STATISTICS.rows == 0


def test_too_few_frames_crop_and_kind_errors(night):
    bias = night.groups("bias")[0]
    few = {str(p): "test" for p in bias.paths[:5]}  # 4 frames left: sigma needs 5
    with pytest.raises(ValueError, match="sigma needs at least 5 frames, the set has 4 once the 5 excluded"):
        compare_rejections(bias, "percentile", "sigma", excluded=few)
    assert compare_rejections(bias, "percentile", "none", excluded=few, crop_size=16).n_frames == 4
    with pytest.raises(ValueError, match="not inside the 128 x 96 frames"):
        compare_rejections(bias, "sigma", "mad", crop=(0, 200, 0, 10))
    with pytest.raises(ValueError, match="crop is"):
        compare_rejections(bias, "sigma", "mad", crop=(0, 10))
    with pytest.raises(TypeError, match="not rejection"):
        compare_rejections(bias, "sigma", "mad", rejection="none")
    with pytest.raises(ValueError, match="masters are made of"):
        compare_rejections(night.groups("light")[0], "sigma", "mad")


def test_a_colour_crop_keeps_the_bayer_pattern(tmp_path):
    root = tmp_path / "osc"
    simulate_session(root, camera="osc", shape=(64, 64), seed=2, filters=L_ONLY,
                     counts={"bias": 6, "dark": 0, "flat": 0, "darkflat": 0, "light": 1})
    bias = open_session(root).groups("bias")[0]
    with pytest.raises(ValueError, match="even row and column"):
        compare_rejections(bias, "sigma", "mad", crop=(1, 33, 0, 32))
    result = compare_rejections(bias, "sigma", "mad", crop_size=31)
    assert result.bayer_pattern == "RGGB" and result.crop[0] % 2 == 0 and result.crop[2] % 2 == 0
    assert math.isfinite(result.first.noise)


def test_cancel_stops_it(night):
    token = threading.Event()
    token.set()
    with pytest.raises(CancelledError):
        compare_rejections(night.groups("bias")[0], "sigma", "mad", cancel=token)
