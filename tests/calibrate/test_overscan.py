"""Overscan and trim: the section syntax, the pure functions (against hand-made arrays and ccdproc),
the lazy cube, and a simulated night with overscan columns calibrated against the simulator's truth."""
from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.calibrate import calibrate_session
from astrocal_widgets.errors import IncompatibleFramesError, StaleOutputError
from astrocal_widgets.io import READ_STATISTICS, read_field
from astrocal_widgets.io.overscan import (Overscan, Section, SectionError, overscan_level, overscan_plan,
                                          parse_section, subtract_overscan, trim_image)

from conftest import tree_hashes
from test_calibrate_session import _channels, _light_index, _sky_mask, expected_signal, noise_floor


def _ccdproc():
    try:
        import ccdproc  # noqa: PLC0415
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("ccdproc is not installed")
    return ccdproc


# --- sections -----------------------------------------------------------------------------------

def test_section_syntax_is_fits_1_based_inclusive_x_first():
    s = parse_section("[3001:3040, 1:2000]")
    assert (s.x0, s.x1, s.y0, s.y1) == (3000, 3040, 0, 2000)
    assert s.shape == (2000, 40) and s.fits == "[3001:3040,1:2000]"
    assert parse_section("[*,5:6]", (10, 20)) == Section(0, 20, 4, 6)
    frame = np.arange(12).reshape(3, 4)
    assert frame[parse_section("[2:3,1:2]").slices].tolist() == [[1, 2], [5, 6]]


@pytest.mark.parametrize("text, words", [
    ("1:10,1:10", "is not a section"),
    ("[1:10]", "is not a section"),
    ("[0:10,1:10]", "sections start at 1"),
    ("[10:1,1:10]", "reversed"),
    ("[1:10,1:999]", "past the frame's 100 rows"),
    ("[1:200,1:10]", "past the frame's 50 columns"),
])
def test_bad_sections_are_refused_naming_file_and_keyword(text, words):
    with pytest.raises(SectionError) as err:
        parse_section(text, (100, 50), keyword="TRIMSEC", path="/night/bias_001.fits")
    message = str(err.value)
    assert words in message and "/night/bias_001.fits" in message and "TRIMSEC" in message


def test_the_dialect_table_reads_the_sections():
    header = fits.Header([("BIASSEC", "[641:664, 1:480]"), ("TRIMSEC", "[1:640,1:480]")])
    assert read_field(header, "biassec") == "[641:664,1:480]"
    assert read_field(header, "trimsec") == "[1:640,1:480]"
    assert read_field(header, "datasec") == ""


def test_a_trim_section_the_overscan_does_not_cover_is_refused():
    header = {"BIASSEC": "[41:48,1:20]", "TRIMSEC": "[1:40,1:30]"}
    with pytest.raises(SectionError, match="no overscan level for the others"):
        overscan_plan(header, (30, 48), "/x/f.fits")
    with pytest.raises(SectionError, match="overlaps"):
        overscan_plan({"BIASSEC": "[30:48,1:30]", "TRIMSEC": "[1:40,1:30]"}, (30, 48), "/x/f.fits")
    assert overscan_plan(header, (30, 48), "/x/f.fits", "off") is None
    assert overscan_plan({}, (30, 48), "/x/f.fits") is None  # no sections: nothing to do
    plan = overscan_plan({"DATASEC": "[1:40,1:30]"}, (30, 48), "/x/f.fits")  # DATASEC stands in for TRIMSEC
    assert plan.biassec is None and plan.output_shape == (30, 40)


# --- the pure functions ---------------------------------------------------------------------------

def _frame(rng, h=40, w=30, n=8, axis=1):
    """Image plus overscan with a known level per row (axis 1) or column (axis 0)."""
    if axis == 1:
        level = 500 + 3.0 * np.sin(np.arange(h) / 5.0)
        frame = rng.normal(0, 2.0, (h, w + n)) + level[:, None]
        frame[:, :w] += 100.0  # the "sky", only in the image
        return frame, f"[{w + 1}:{w + n},1:{h}]", f"[1:{w},1:{h}]", level
    level = 500 + 3.0 * np.cos(np.arange(w) / 4.0)
    frame = rng.normal(0, 2.0, (h + n, w)) + level[None, :]
    frame[:h] += 100.0
    return frame, f"[1:{w},{h + 1}:{h + n}]", f"[1:{w},1:{h}]", level


def test_subtract_overscan_and_trim_against_hand_made_arrays():
    frame = np.full((4, 6), 100.0)
    frame[:, :4] += 5.0
    frame[2, 4:] = [110.0, 130.0]  # row 2's overscan is higher
    before = frame.copy()
    mean = subtract_overscan(frame, "[5:6,1:4]", method="mean")
    assert mean.dtype == np.float32
    assert mean[:, 0].tolist() == [5.0, 5.0, -15.0, 5.0]
    assert trim_image(mean, "[1:4,1:4]").shape == (4, 4)
    median = subtract_overscan(np.array([[7.0, 1.0, 2.0, 60.0]]), "[2:4,1:1]", method="median")
    assert median[0, 0] == 5.0  # the median ignores the 60 (a cosmic ray in the overscan)
    np.testing.assert_array_equal(frame, before)  # the input is not modified
    # A quadratic drift down the rows is what a degree-2 fit returns, noise-free.
    rows = np.arange(50.0)
    drift = 400 + 0.3 * rows - 0.004 * rows**2
    ramp = np.tile(drift[:, None], (1, 12))
    np.testing.assert_allclose(overscan_level(ramp, "[9:12,1:50]", fit="poly", order=2), drift, atol=1e-9)


@pytest.mark.parametrize("axis", [1, 0])
def test_the_level_per_row_or_column_is_recovered(axis):
    rng = np.random.default_rng(1)
    frame, biassec, trimsec, level = _frame(rng, h=500, w=500, n=60, axis=axis)
    out = trim_image(subtract_overscan(frame, biassec, axis=None), trimsec)  # the strip's short side: ``axis``
    # Per row (column), the overscan median is within its noise of the true level: the image keeps 100.
    assert abs(float(out.mean()) - 100.0) < 0.1
    profile = overscan_level(frame, biassec, axis=None)
    assert np.abs(profile - level).max() < 5 * 2.0 * 1.25 / np.sqrt(60)


@pytest.mark.parametrize("method", ["mean", "median"])
@pytest.mark.parametrize("order", [None, 3])
@pytest.mark.parametrize("axis", [1, 0])
def test_agrees_with_ccdproc(method, order, axis):
    ccdproc = _ccdproc()
    from astropy.modeling import models
    from astropy.nddata import CCDData

    rng = np.random.default_rng(2)
    frame, biassec, trimsec, _ = _frame(rng, axis=axis)
    ccd = CCDData(frame, unit="adu")
    theirs = ccdproc.subtract_overscan(ccd, fits_section=biassec, overscan_axis=axis, median=method == "median",
                                       model=None if order is None else models.Polynomial1D(order))
    theirs = ccdproc.trim_image(theirs, fits_section=trimsec).data
    ours = trim_image(subtract_overscan(frame, biassec, method=method, axis=axis,
                                        fit=None if order is None else "poly", order=order or 3), trimsec)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-3)  # float32 of values near 600


# --- the lazy cube --------------------------------------------------------------------------------

def _write(folder, name, data, **cards):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    header = fits.Header([("IMAGETYP", "Bias Frame")] + list(cards.items()))
    fits.writeto(path, data.astype(np.float32), header)
    return path


@pytest.mark.parametrize("option", ["auto", "mean-poly2", Overscan(method="mean")])
@pytest.mark.parametrize("axis", [1, 0])
def test_open_frames_applies_the_sections_band_by_band(tmp_path, option, axis):
    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        frame, biassec, trimsec, _ = _frame(rng, h=45, w=31, n=6, axis=axis)
        paths.append(_write(tmp_path, f"b{i}.fits", frame + 7 * i, BIASSEC=biassec, TRIMSEC=trimsec))
    cube = aw.open_frames(paths, overscan=option, chunks=8)  # several bands, so the bands must join up
    options = Overscan.from_option(option)
    expected = np.stack([trim_image(subtract_overscan(fits.getdata(p), fits.getheader(p)["BIASSEC"], axis=None,
                                                      method=options.method, fit=options.fit, order=options.order),
                                    fits.getheader(p)["TRIMSEC"]) for p in paths])
    assert cube.shape == (3, 45, 31) and len(cube.data.chunks[1]) > 1
    np.testing.assert_allclose(cube.values, expected, atol=1e-4)
    assert "trimmed to [1:31,1:45]" in cube.attrs["overscan"]
    raw = aw.open_frames(paths)  # off by default: the stored pixels
    np.testing.assert_array_equal(raw.values[0], fits.getdata(paths[0]))


def test_bands_read_only_their_rows(tmp_path):
    rng = np.random.default_rng(4)
    frame, biassec, trimsec, _ = _frame(rng, h=64, w=32)
    paths = [_write(tmp_path, f"b{i}.fits", frame, BIASSEC=biassec, TRIMSEC="[1:32,9:56]") for i in range(4)]
    cube = aw.open_frames(paths, overscan="auto", chunks=8)
    READ_STATISTICS.reset()
    cube.values
    assert READ_STATISTICS.rows == 4 * 48  # the trimmed rows of each frame, once


def test_an_odd_trim_moves_the_bayer_pattern(tmp_path):
    data = np.zeros((20, 24))
    path = _write(tmp_path, "f.fits", data, BAYERPAT="RGGB", BIASSEC="[22:24,1:20]", TRIMSEC="[2:21,2:19]")
    cube = aw.open_frames([path], overscan="auto")
    assert cube.shape == (1, 18, 20)
    assert cube["bayer_pattern"].values[0] == "BGGR"  # one row and one column in: [0, 0] is now B
    assert aw.open_frames([path])["bayer_pattern"].values[0] == "RGGB"


def test_frames_with_other_sections_are_not_stacked(tmp_path):
    data = np.zeros((20, 24))
    a = _write(tmp_path, "a.fits", data, BIASSEC="[22:24,1:20]", TRIMSEC="[1:21,1:20]")
    b = _write(tmp_path, "b.fits", data, BIASSEC="[21:24,1:20]", TRIMSEC="[1:20,1:20]")
    c = _write(tmp_path, "c.fits", data)
    for other in (b, c):
        with pytest.raises(IncompatibleFramesError, match="overscan sections") as err:
            aw.open_frames([a, other], overscan="auto")
        assert str(a) in str(err.value) and str(other) in str(err.value)
    assert aw.open_frames([a, b, c]).shape == (3, 20, 24)  # off: the stored pixels stack
    bad = _write(tmp_path, "bad.fits", data, BIASSEC="[22:30,1:20]")
    with pytest.raises(SectionError, match="bad.fits"):
        aw.open_frames([bad], overscan="auto")


# --- a night with overscan against the simulator's truth ----------------------------------------------

OVERSCAN_COLUMNS = 24


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("overscan-night")
    session = aw.simulate_session(root / "night", camera="mono", seed=4, overscan=OVERSCAN_COLUMNS)
    before = tree_hashes(root / "night")
    result = calibrate_session(root / "night", output=root / "out")
    return session, result, before, root


def test_simulated_frames_carry_overscan_sections(night):
    session, result, _, _ = night
    h, w = session.truth.sizes["y"], session.truth.sizes["x"]
    light = session.truth["light_path"].values[0]
    data, header = fits.getdata(light, header=True)
    assert data.shape == (h, w + OVERSCAN_COLUMNS)
    assert header["BIASSEC"] == f"[{w + 1}:{w + OVERSCAN_COLUMNS},1:{h}]" and header["TRIMSEC"] == f"[1:{w},1:{h}]"
    assert set(result.catalog.table["trimsec"]) == {f"[1:{w},1:{h}]"}


def test_overscan_night_calibrates_to_the_truth_and_lights_are_trimmed(night):
    session, result, before, root = night
    assert tree_hashes(root / "night") == before  # inputs untouched
    shape = (session.truth.sizes["y"], session.truth.sizes["x"])
    assert len(result.lights) == 8 and all(l.bias and l.dark and l.flat for l in result.lights)
    for master in result.masters:
        data, header = fits.getdata(master.path, header=True)
        assert data.shape == shape and header["TRIM"] == f"[1:{shape[1]},1:{shape[0]}]"
        assert header["OVERSCAN"].startswith("median of [641:664,1:480] per row")
    bias = fits.getdata(next(m.path for m in result.masters if m.frame_type == "bias"))
    assert abs(float(np.median(bias))) < 20  # the pedestal went with the overscan: what is left is structure
    assert any("overscan: median of columns 641-664 per row" in d and "trimmed to [1:640,1:480]" in d
               for d in result.decisions)
    for light in result.lights:
        data, header = fits.getdata(light.output, header=True)
        assert data.shape == shape  # trimmed to TRIMSEC
        assert "BIASSEC" not in header and "TRIMSEC" not in header and header["TRIM"] == "[1:640,1:480]"
        j = _light_index(session, light.source)
        truth = expected_signal(session, j)
        mask = _sky_mask(session, j, _channels(data.shape, "")["mono"])
        res = data[mask].astype(np.float64) - truth[mask]
        diff = float(np.mean(res))
        robust = 1.4826 * np.median(np.abs(res - np.median(res)))
        # The floor of an untrimmed night, plus what the light's own per-row overscan median adds: the
        # median of n read-noise values has variance (pi/2) RN^2 / n (the masters' share is N times less).
        cam = session.camera
        floor = np.sqrt(noise_floor(session, light, mask) ** 2
                        + np.pi / 2 * (cam.read_noise / cam.gain) ** 2 / OVERSCAN_COLUMNS)
        print(f"\noverscan {light.source.split('/')[-1]}: mean(cal - true) {diff:+.3f} ADU, noise {robust:.3f} "
              f"ADU vs floor {floor:.3f} ADU ({robust / floor - 1:+.1%})")
        assert abs(diff) < 0.5
        assert abs(robust / floor - 1) < 0.10


def test_without_the_overscan_the_level_jumps_spoil_the_night(night):
    """The control: the same frames calibrated with overscan='off' miss the truth by the level jumps."""
    session, _, _, root = night
    result = calibrate_session(root / "night", output=root / "out-off", overscan="off", cosmetic=False)
    worst = 0.0
    for light in result.lights:
        data = fits.getdata(light.output)
        assert data.shape[1] == session.truth.sizes["x"] + OVERSCAN_COLUMNS  # not trimmed
        j = _light_index(session, light.source)
        mask = _sky_mask(session, j)
        worst = max(worst, abs(float(np.mean(data[:, :-OVERSCAN_COLUMNS][mask] - expected_signal(session, j)[mask]))))
    assert worst > 0.5


def test_a_rerun_with_another_overscan_setting_finds_the_masters_stale(night):
    _, result, _, root = night
    with pytest.raises(StaleOutputError, match="another overscan setting"):
        calibrate_session(root / "night", output=root / "out", overscan="mean")


def test_the_dashboard_workflow_makes_the_same_trimmed_masters(night, tmp_path):
    """Masters made step by step (the dashboard's path) are trimmed too, so they match trimmed lights."""
    from astrocal_widgets.workflow import integrate_master, save_master

    session, result, _, _ = night
    bias = next(g for g in result.catalog.groups() if g.frame_type == "bias")
    made = integrate_master(bias)
    path = save_master(made, tmp_path / "master_bias.fits")
    data, header = fits.getdata(path, header=True)
    assert data.shape == (session.truth.sizes["y"], session.truth.sizes["x"]) and header["TRIM"] == "[1:640,1:480]"
    session_bias = next(m.path for m in result.masters if m.frame_type == "bias")
    np.testing.assert_array_equal(data, fits.getdata(session_bias))


def test_the_cli_takes_an_overscan_option(capsys):
    from astrocal_widgets.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["calibrate", "night"]).overscan == "auto"
    assert parser.parse_args(["calibrate", "night", "--overscan", "median-poly3"]).overscan == "median-poly3"
    assert parser.parse_args(["integrate", "x", "-o", "m.fits", "--overscan", "off"]).overscan == "off"
    with pytest.raises(SystemExit):
        parser.parse_args(["calibrate", "night", "--overscan", "sideways"])
    assert "overscan must be" in capsys.readouterr().err
