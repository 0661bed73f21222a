"""Quality checks of calibration sets: each check triggers on a deliberately bad simulated set and
passes on a good one; statistics agree with numpy on the same pixels."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.quality import checks as qc
from astrocal_widgets.quality.checks import CheckReport, check_frames, check_session
from astrocal_widgets.quality.stats import frame_statistics
from astrocal_widgets.simulate.scene import FilterSpec

SHAPE = (120, 160)
L_ONLY = [FilterSpec("L", flat_exposure=1.5)]


def _stack(tmp_path_factory, name: str, kind: str, n: int, seed: int = 3, **kw):
    d = tmp_path_factory.mktemp(name)
    return aw.simulate_stack(d, kind, n, shape=SHAPE, seed=seed, **kw)


def _read(path) -> np.ndarray:
    return fits.getdata(path).astype(np.float64)


def _copy_set(paths, dst: Path, changes: dict) -> list[Path]:
    """Copy frames into ``dst`` as new FITS files; ``changes[i](data, header)`` alters copy i.

    The simulator's output is never modified in place.
    """
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(paths):
        with fits.open(p) as hdul:
            data = hdul[0].data.astype(np.float64)
            header = hdul[0].header.copy()
        for key in ("BZERO", "BSCALE"):
            header.remove(key, ignore_missing=True)
        if i in changes:
            data = changes[i](data, header)
        data = np.clip(np.rint(data), 0, 65535).astype(np.uint16)
        target = dst / Path(p).name
        fits.PrimaryHDU(data, header=header).writeto(target)
        out.append(target)
    return out


# --- good sets ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_session(tmp_path_factory):
    """A night with recommended counts and a glow-free camera: everything passes."""
    d = tmp_path_factory.mktemp("good")
    aw.simulate_session(d, shape=SHAPE, seed=5, filters=L_ONLY, amp_glow=0.0,
                        counts={"bias": 50, "dark": 20, "flat": 20, "darkflat": 20, "light": 2})
    return d


def test_good_session_passes_everything(good_session):
    report = check_session(good_session)
    assert report.status == "pass", report.summary()
    assert not report.failed and not report.warnings
    names = set(report.table["name"])
    assert {"frame_count", "headers", "zero_pixels", "pedestal_stability", "read_noise", "temperature_spread",
            "lights_temperature", "hot_pixels", "amp_glow", "flat_level", "clipped_zero", "clipped_saturation",
            "level_drift", "outlier", "catalogue"} <= names
    # dark flats are held against their flats' count (20)
    darkflat = [c for c in report.get("frame_count") if c.group.startswith("darkflat")]
    assert darkflat[0].threshold[0] == 20 and darkflat[0].value == 20
    lights_t = report.get("lights_temperature")
    assert len(lights_t) == 2 and all(c.value < 0.3 for c in lights_t)  # darks at 300 s and 60 s
    text = report.summary()
    assert text.startswith("OVERALL PASS") and "PASS flat_level: all 20 frames pass" in text
    table = report.table
    assert list(table.columns[:5]) == ["group", "name", "scope", "frame", "status"]
    assert (table["status"] == "pass").all()


def test_frame_statistics_match_numpy(tmp_path_factory):
    sim = _stack(tmp_path_factory, "stats", "dark", 5, seed=11, exposure=60.0)
    cube = aw.open_frames(sim.paths["dark"])
    ds = frame_statistics(cube)
    data = np.stack([_read(p) for p in sim.paths["dark"]])
    med = np.median(data, axis=(1, 2))
    np.testing.assert_array_equal(ds["median"].values, med)
    mad = np.median(np.abs(data - med[:, None, None]), axis=(1, 2))
    np.testing.assert_allclose(ds["sigma"].values, 1.4826 * mad)
    np.testing.assert_array_equal(ds["min"].values, data.min(axis=(1, 2)))
    np.testing.assert_array_equal(ds["max"].values, data.max(axis=(1, 2)))
    np.testing.assert_allclose(ds["mean"].values, data.mean(axis=(1, 2)), rtol=1e-9)
    assert (ds["histogram"].sum("bin").values == SHAPE[0] * SHAPE[1]).all()
    assert ds.attrs["adc_max"] == 65535
    assert list(ds["path"].values) == [str(p) for p in sim.paths["dark"]]


def test_frame_statistics_cfa_channels(tmp_path_factory):
    sim = _stack(tmp_path_factory, "cfa", "flat", 3, camera="osc")
    cube = aw.open_frames(sim.paths["flat"])
    ds = frame_statistics(cube)
    assert ds.attrs["bayer_pattern"] == "RGGB"
    data = _read(sim.paths["flat"][0])
    r, b = data[0::2, 0::2], data[1::2, 1::2]
    g = np.concatenate([data[0::2, 1::2].ravel(), data[1::2, 0::2].ravel()])
    np.testing.assert_array_equal(ds["cfa_median"].values[0], [np.median(r), np.median(g), np.median(b)])


# --- flats ----------------------------------------------------------------------------------------


def test_underexposed_flats_fail(tmp_path_factory):
    sim = _stack(tmp_path_factory, "underflat", "flat", 6, filters=[FilterSpec("L", 1.5, flat_level=0.08)])
    report = check_frames(aw.open_frames(sim.paths["flat"]))
    levels = report.get("flat_level")
    assert len(levels) == 6 and all(c.status == "fail" for c in levels)
    expected = np.median(_read(sim.paths["flat"][0])) / 65535
    assert levels[0].value == pytest.approx(expected)
    assert levels[0].value == pytest.approx(0.08, abs=0.01)
    assert "lengthen the flat exposure" in levels[0].explanation and "50 %" in levels[0].explanation
    # 6 flats: enough to reject outliers, fewer than recommended
    assert report.one("frame_count").status == "warn" and report.one("frame_count").value == 6


def test_overexposed_flats_clip_at_saturation(tmp_path_factory):
    sim = _stack(tmp_path_factory, "overflat", "flat", 5, filters=[FilterSpec("L", 1.5, flat_level=0.97)])
    report = check_frames(aw.open_frames(sim.paths["flat"]))
    sat = report.get("clipped_saturation", sim.paths["flat"][0])[0]
    expected = np.mean(_read(sim.paths["flat"][0]) >= 65535)
    assert sat.status == "fail" and sat.value == pytest.approx(expected) and sat.value > 0.1
    assert report.get("flat_level")[0].status == "fail"
    assert all(c.status == "pass" for c in report.get("clipped_zero"))


def test_flats_slightly_outside_target_warn(tmp_path_factory):
    sim = _stack(tmp_path_factory, "lowflat", "flat", 5, filters=[FilterSpec("L", 1.5, flat_level=0.25)])
    levels = check_frames(aw.open_frames(sim.paths["flat"])).get("flat_level")
    assert all(c.status == "warn" for c in levels)
    assert levels[0].value == pytest.approx(0.25, abs=0.01)


def _scaled_flats(tmp_path_factory, tmp_path, name: str, factors: list[float]) -> list[Path]:
    """Flats of one simulated set, frame i (in time order) scaled by ``factors[i]``."""
    sim = _stack(tmp_path_factory, name, "flat", len(factors), seed=1, filters=L_ONLY)
    paths = sorted(sim.paths["flat"], key=lambda p: fits.getheader(p)["DATE-OBS"])

    def scale(factor):
        return lambda data, header: data * factor

    return _copy_set(paths, tmp_path / name, {i: scale(f) for i, f in enumerate(factors)})


def test_flat_level_swinging_back_and_forth_fails(tmp_path_factory, tmp_path):
    paths = _scaled_flats(tmp_path_factory, tmp_path, "swing", [1.0, 0.6, 1.0, 0.6, 1.0, 0.6])
    drift = check_frames(aw.open_frames(paths)).one("level_drift")
    med = [np.median(_read(p)) for p in paths]
    assert drift.value == pytest.approx((max(med) - min(med)) / np.median(med))
    assert drift.status == "fail" and drift.value > qc.FLAT_DRIFT_FAIL
    assert "back and forth" in drift.explanation


@pytest.mark.parametrize("factors, direction", [([1.0, 0.85, 0.72, 0.61, 0.52, 0.44], "falls"),
                                                ([0.6, 0.68, 0.76, 0.84, 0.92, 1.0], "rises")])
def test_steady_flat_level_drift_only_warns(tmp_path_factory, tmp_path, factors, direction):
    """Twilight sky flats: the level falls steadily; normalisation removes it, so a WARN with the reason."""
    paths = _scaled_flats(tmp_path_factory, tmp_path, f"twilight_{direction}", factors)
    # Listed out of time order: the trend is read in DATE-OBS order, not in the files' order.
    drift = check_frames(aw.open_frames([paths[i] for i in (3, 0, 5, 1, 4, 2)])).one("level_drift")
    assert drift.value > qc.FLAT_DRIFT_WARN
    assert drift.status == "warn", drift.explanation
    assert f"{direction} steadily" in drift.explanation and "normalised by its own level" in drift.explanation


def test_shadow_in_a_flat_is_an_outlier(tmp_path_factory, tmp_path):
    sim = _stack(tmp_path_factory, "shadowflat", "flat", 6, filters=L_ONLY)

    def shadow(data, header):
        data[:, :40] *= 0.7
        return data

    paths = _copy_set(sim.paths["flat"], tmp_path / "flats", {2: shadow})
    report = check_frames(aw.open_frames(paths))
    outliers = report.get("outlier")
    assert [c.status for c in outliers] == ["pass", "pass", "fail", "pass", "pass", "pass"]
    assert 0.25 < outliers[2].value < 0.5
    assert all(c.value < qc.FLAT_SHAPE_WARN for i, c in enumerate(outliers) if i != 2)
    assert "shadow" in outliers[2].explanation


def test_cfa_channel_levels(tmp_path_factory):
    good = _stack(tmp_path_factory, "cfa_good", "flat", 5, camera="osc")
    check = check_frames(aw.open_frames(good.paths["flat"])).one("cfa_levels")
    assert check.status == "pass"
    starved = _stack(tmp_path_factory, "cfa_low", "flat", 5, camera="osc",
                     filters=[FilterSpec("UVIRCut", 1.5, flat_level=0.12)])
    check = check_frames(aw.open_frames(starved.paths["flat"])).one("cfa_levels")
    red = np.median([np.median(_read(p)[0::2, 0::2]) for p in starved.paths["flat"]]) / 65535
    assert check.status in ("warn", "fail") and check.value == pytest.approx(red)
    assert "R channel is starved" in check.explanation


# --- bias -----------------------------------------------------------------------------------------


def test_clipped_bias_fails(tmp_path_factory):
    sim = _stack(tmp_path_factory, "clipbias", "bias", 6, bias_level=3.0)
    report = check_frames(aw.open_frames(sim.paths["bias"]))
    zero = report.get("zero_pixels")
    assert all(c.status == "fail" for c in zero)
    expected = np.mean(_read(sim.paths["bias"][0]) <= 0)
    assert zero[0].value == pytest.approx(expected) and zero[0].value > 0.1
    assert "raise the camera's offset" in zero[0].explanation


def test_bias_pedestal_noise_and_outlier(tmp_path_factory, tmp_path):
    sim = _stack(tmp_path_factory, "bias", "bias", 8)
    good = check_frames(aw.open_frames(sim.paths["bias"]))
    assert good.one("pedestal_stability").status == "pass" and good.one("pedestal_stability").value == 0
    assert all(c.status == "pass" for c in good.get("zero_pixels") + good.get("read_noise") + good.get("outlier"))

    rng = np.random.default_rng(0)

    def jump(data, header):
        return data + 20

    def noisy(data, header):
        return data + rng.normal(0, 8, data.shape)

    paths = _copy_set(sim.paths["bias"], tmp_path / "bias", {3: jump, 5: noisy})
    report = check_frames(aw.open_frames(paths))
    ped = report.one("pedestal_stability")
    assert ped.status == "fail" and ped.value == pytest.approx(20)
    assert report.get("outlier", paths[3])[0].status == "fail"
    assert report.get("outlier", paths[3])[0].value == pytest.approx(20)
    noise = report.get("read_noise", paths[5])[0]
    data = _read(paths[5])
    assert noise.value == pytest.approx(1.4826 * np.median(np.abs(data - np.median(data))))
    assert noise.status in ("warn", "fail") and noise.value > qc.NOISE_WARN_RATIO * 4.4
    assert report.get("read_noise", paths[0])[0].status == "pass"


def test_frame_counts(tmp_path_factory):
    few = _stack(tmp_path_factory, "fewbias", "bias", 3)
    check = check_frames(aw.open_frames(few.paths["bias"])).one("frame_count")
    assert (check.status, check.value, check.threshold) == ("fail", 3, (50, 100))
    many = _stack(tmp_path_factory, "manybias", "bias", 101)
    check = check_frames(aw.open_frames(many.paths["bias"])).one("frame_count")
    assert (check.status, check.value) == ("warn", 101)


# --- darks ----------------------------------------------------------------------------------------


def test_warm_darks_against_lights(tmp_path_factory):
    sim = _stack(tmp_path_factory, "warmdark", "dark", 5, temperature=-2.0, exposure=60.0)
    cube = aw.open_frames(sim.paths["dark"])
    report = check_frames(cube, lights_temperature=-10.0)
    check = report.one("lights_temperature")
    expected = abs(np.median(cube["temperature"].values) + 10.0)
    assert check.status == "fail" and check.value == pytest.approx(expected) and check.value > 7.5
    assert "retake the darks" in check.explanation
    assert report.one("temperature_spread").status == "pass"
    # without the lights' temperature, that check is not made
    assert not check_frames(cube).get("lights_temperature")


def test_dark_temperature_spread(tmp_path_factory):
    a = _stack(tmp_path_factory, "spread_a", "dark", 3, seed=1, temperature=-10.0, exposure=60.0)
    b = _stack(tmp_path_factory, "spread_b", "dark", 3, seed=2, temperature=-8.5, exposure=60.0)
    cube = aw.open_frames(a.paths["dark"] + b.paths["dark"])
    check = check_frames(cube).one("temperature_spread")
    t = cube["temperature"].values
    assert check.status == "fail" and check.value == pytest.approx(t.max() - t.min())


def test_light_leak_dark_is_an_outlier(tmp_path_factory, tmp_path):
    sim = _stack(tmp_path_factory, "leakdark", "dark", 6, exposure=60.0)

    def leak(data, header):
        return data + 150

    paths = _copy_set(sim.paths["dark"], tmp_path / "darks", {4: leak})
    report = check_frames(aw.open_frames(paths))
    outliers = report.get("outlier")
    assert [c.status for c in outliers] == ["pass"] * 4 + ["fail", "pass"]
    assert outliers[4].value == pytest.approx(150)
    assert "light leak" in outliers[4].explanation


def test_light_leak_gradient_is_an_outlier(tmp_path_factory, tmp_path):
    sim = _stack(tmp_path_factory, "leakdark2", "dark", 6, exposure=60.0)

    def gradient(data, header):
        return data + np.linspace(0, 80, data.shape[1])[None, :] ** 2 / 80

    paths = _copy_set(sim.paths["dark"], tmp_path / "darks", {1: gradient})
    outliers = check_frames(aw.open_frames(paths)).get("outlier")
    assert outliers[1].status == "fail" and outliers[1].value > 30
    assert all(c.status == "pass" for i, c in enumerate(outliers) if i != 1)


def test_hot_pixels_and_amp_glow(tmp_path_factory):
    hot = _stack(tmp_path_factory, "hotdark", "dark", 5, hot_pixel_fraction=0.03, amp_glow=0.0)
    report = check_frames(aw.open_frames(hot.paths["dark"]))
    checks = report.get("hot_pixels")
    assert all(c.status == "fail" for c in checks)
    assert checks[0].value == pytest.approx(0.03, rel=0.25)
    assert report.one("amp_glow").status == "pass"

    glow = _stack(tmp_path_factory, "glowdark", "dark", 5)  # the default camera glows in 300 s darks
    report = check_frames(aw.open_frames(glow.paths["dark"]))
    check = report.one("amp_glow")
    assert check.status == "warn" and check.value > qc.AMP_GLOW_WARN_SIGMA
    assert "top-right" in check.explanation
    assert all(c.status == "pass" for c in report.get("hot_pixels"))  # glow is not mistaken for hot pixels


def test_bias_with_zero_pixels_in_darks(tmp_path_factory):
    sim = _stack(tmp_path_factory, "zerodark", "dark", 5, exposure=1.0, bias_level=2.0)
    zero = check_frames(aw.open_frames(sim.paths["dark"])).get("zero_pixels")
    assert all(c.status == "fail" for c in zero)


def test_dead_rows_on_a_high_pedestal_are_a_defect_not_a_low_offset(tmp_path_factory, tmp_path):
    """1.5 ADU of noise at 1626 ADU never reaches zero: two rows of zeros are dead rows, not clipping."""
    sim = _stack(tmp_path_factory, "deadrows", "bias", 6, bias_level=1626.0, read_noise=1.2, row_pattern=0.3,
                 column_pattern=0.5, defects=False)

    def dead_rows(data, header):
        data[[37, 38]] = 0
        return data

    paths = _copy_set(sim.paths["bias"], tmp_path / "deadrows", {i: dead_rows for i in range(6)})
    report = check_frames(aw.open_frames(paths))
    zero = report.get("zero_pixels")
    assert len(zero) == 6 and all(c.status == "warn" for c in zero), [c.explanation for c in zero]
    assert zero[0].value == pytest.approx(2 / SHAPE[0])
    text = zero[0].explanation
    assert "2 dead rows (rows 37-38)" in text and "defect" in text and "offset" not in text.split("not a")[0]
    assert "raise the camera's offset" not in text
    assert 1 < float(report.get("read_noise")[0].value) < 2  # the set really has about 1.5 ADU of noise
    # A dead column at the border and a few dead pixels are named too.
    def border_column(data, header):
        data[:, -1] = 0
        data[5, 7] = data[60, 90] = 0
        return data

    paths = _copy_set(sim.paths["bias"], tmp_path / "deadcolumn", {i: border_column for i in range(6)})
    text = check_frames(aw.open_frames(paths)).get("zero_pixels")[0].explanation
    assert f"1 dead column (column {SHAPE[1] - 1} at the border) and 2 isolated pixels" in text


def test_clipped_noise_with_a_dead_row_names_both(tmp_path_factory, tmp_path):
    sim = _stack(tmp_path_factory, "clipdead", "bias", 5, bias_level=6.0, defects=False)

    def dead_row(data, header):
        data[3] = 0
        return data

    paths = _copy_set(sim.paths["bias"], tmp_path / "clipdead", {i: dead_row for i in range(5)})
    zero = check_frames(aw.open_frames(paths)).get("zero_pixels")[0]
    assert zero.status == "fail"
    assert "raise the camera's offset" in zero.explanation and "1 dead row (row 3)" in zero.explanation


# --- headers, folders, reports --------------------------------------------------------------------


def test_headers_missing_and_inconsistent(tmp_path_factory, tmp_path):
    sim = _stack(tmp_path_factory, "hdrdark", "dark", 5, exposure=60.0)

    def no_temperature(data, header):
        del header["CCD-TEMP"]
        return data

    paths = _copy_set(sim.paths["dark"], tmp_path / "missing", {0: no_temperature})
    check = check_frames(aw.open_frames(paths)).one("headers")
    assert check.status == "warn" and check.value == 1 and "temperature (1 of 5 frames)" in check.explanation

    def other_gain(data, header):
        header["GAIN"] = 200
        return data

    paths = _copy_set(sim.paths["dark"], tmp_path / "gain", {2: other_gain})
    check = check_frames(aw.open_frames(paths)).one("headers")
    assert check.status == "fail" and "gain (139.0, 200.0)" in check.explanation


def test_folder_and_group_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("folder")
    aw.simulate_session(d, shape=SHAPE, seed=9, filters=L_ONLY,
                        counts={"bias": 5, "dark": 5, "flat": 5, "darkflat": 3, "light": 2}, set_temperature=-10.0)
    group = aw.scan(d).groups("flat")[0]
    by_group = check_frames(group)
    assert by_group.checks[0].group == group.label
    by_folder = check_frames(d, kind="flat")
    assert {c.group for c in by_folder} == {group.label}
    assert by_folder.table["value"].tolist() == by_group.table["value"].tolist()
    session = check_session(d)
    df = [c for c in session.get("frame_count") if c.group.startswith("darkflat")][0]
    assert (df.status, df.value, df.threshold[0]) == ("fail", 3, 5)
    assert session.status == "fail" and df in session.failed
    assert "FAIL" in session.summary()


def test_report_api():
    report = CheckReport([
        qc.Check("a", "set", None, "pass", 1.0, 2.0, "fine.", group="g"),
        qc.Check("b", "frame", "/x/f1.fits", "warn", 3.0, 2.0, "meh.", group="g"),
        qc.Check("b", "frame", "/x/f2.fits", "pass", 1.0, 2.0, "fine.", group="g"),
    ])
    assert report.status == "warn" and len(report.warnings) == 1 and not report.failed
    assert report.get("b", "f1.fits")[0].value == 3.0
    assert "WARN b: 1 of 2 frames warn (1 to 3) [f1.fits]: meh." in report.summary()
    assert CheckReport().status == "pass"
    assert math.isclose(report.table["value"].sum(), 5.0)


def test_per_frame_results_are_aggregated():
    """19 failing frames are one line: the count, the worst frames named, the worst explained."""
    frames = [qc.Check("zero_pixels", "frame", f"/x/bias_{i:02d}.fits", "fail", 0.001 * (1 + i % 7), 1e-4,
                       f"{0.1 * (1 + i % 7):.1f} % at zero.", "fraction", "bias") for i in range(19)]
    report = CheckReport(frames + [qc.Check("frame_count", "set", None, "warn", 19, (50, 100), "19 bias frames.",
                                            "frames", "bias")])
    text = report.summary()
    lines = [l for l in text.splitlines() if "zero_pixels" in l]
    assert len(lines) == 1
    assert lines[0].startswith("  FAIL zero_pixels: 19 of 19 frames fail (0.1 % to 0.7 %); worst bias_06.fits, "
                               "bias_13.fits, bias_05.fits and 16 more: 0.7 % at zero.")
    entries = report.lines()
    assert [(e.name, e.status, e.n_frames) for e in entries] == [("zero_pixels", "fail", 19), ("frame_count", "warn", 1)]
    assert entries[0].counts == {"pass": 0, "warn": 0, "fail": 19} and len(entries[0].worst) == qc.WORST_SHOWN
    table = report.summary_table()
    assert table["frames"].tolist() == ["19 of 19 fail", "set"]
    assert table.loc[0, "worst"] == "bias_06.fits, bias_13.fits, bias_05.fits"
    assert len(report.table) == 20  # every frame's result is still there


def test_statistics_read_each_band_once(tmp_path_factory):
    from astrocal_widgets.io import READ_STATISTICS

    sim = _stack(tmp_path_factory, "onepass", "bias", 6)
    cube = aw.open_frames(sim.paths["bias"], chunks=20)  # 6 bands of 20 rows
    READ_STATISTICS.reset()
    frame_statistics(cube)
    assert READ_STATISTICS.rows == 6 * SHAPE[0]  # every row of every frame read exactly once
    assert READ_STATISTICS.calls == 6 * 6


def test_numpy_cube_and_explicit_kind(tmp_path_factory):
    sim = _stack(tmp_path_factory, "numpycube", "dark", 5, exposure=60.0)
    cube = aw.open_frames(sim.paths["dark"]).compute()  # numpy-backed
    lazy = check_frames(aw.open_frames(sim.paths["dark"]))
    eager = check_frames(cube, kind="dark")
    assert eager.table["value"].tolist() == lazy.table["value"].tolist()
    with pytest.raises(ValueError, match="kind must be one of"):
        check_frames(cube, kind="nonsense")


def test_good_colour_session_has_no_false_outliers(tmp_path):
    """A one-shot-colour night: grid levels per Bayer site, so good flats are not failed as outliers."""
    aw.simulate_session(tmp_path / "osc", camera="osc", seed=3)
    report = aw.check_session(tmp_path / "osc")
    assert not report.failed, report.summary()
