"""Readout mode and e-/ADU gain as matching keys, and the header-free level check of masters."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.calibrate import (CalibrationMismatchError, check_calibrated_level, check_compatibility,
                                        enforce, find_master, master_level_problem)
from astrocal_widgets.calibrate.matching import FrameInfo
from astrocal_widgets.integrate.master import master_header, master_mismatch

from conftest import write_frame

SMALL = (48, 64)


def _info(**values) -> FrameInfo:
    base = dict(name="x", kind="light", frame_type="light", width=64, height=48, gain=100.0, offset=10.0,
                temperature=-10.0)
    base.update(values)
    return FrameInfo(**base)


def _bias(**values) -> FrameInfo:
    return _info(name="master_bias.fits", kind="master bias", frame_type="bias", is_master=True, **values)


# --- the rules -----------------------------------------------------------------------------------

def test_readout_mode_mismatch_is_an_error_naming_both_modes():
    problems = check_compatibility(_info(readout_mode="Low Gain"), _bias(readout_mode="High Gain"), role="bias")
    [m] = [p for p in problems if p.rule == "readout_mode"]
    assert m.severity == "error" and (m.target_value, m.calibration_value) == ("Low Gain", "High Gain")
    assert "'High Gain'" in m.message and "'Low Gain'" in m.message
    with pytest.raises(CalibrationMismatchError, match="readout mode"):
        enforce(problems, strict=True)
    with pytest.warns(aw.calibrate.CalibrationWarning, match="High Gain.*Low Gain"):
        enforce(problems, strict=False)


def test_readout_mode_ignores_case_and_spacing_and_warns_when_one_side_is_silent():
    same = check_compatibility(_info(readout_mode="High  Gain"), _bias(readout_mode="high gain"), role="bias")
    assert not [p for p in same if p.rule == "readout_mode"]
    [m] = [p for p in check_compatibility(_info(readout_mode="Low Gain"), _bias(), role="bias")
           if p.rule == "readout_mode"]
    assert m.severity == "warning" and "cannot check" in m.message and "Low Gain" in m.message


def test_egain_four_times_apart_is_an_error_and_five_percent_is_the_same_gain():
    [m] = [p for p in check_compatibility(_info(egain=0.8), _bias(egain=3.2), role="bias") if p.rule == "egain"]
    assert m.severity == "error" and "3.2 e-/ADU" in m.message and "0.8 e-/ADU" in m.message
    assert not [p for p in check_compatibility(_info(egain=0.80), _bias(egain=0.82), role="bias")
                if p.rule == "egain"]
    [w] = [p for p in check_compatibility(_info(egain=0.8), _bias(), role="bias") if p.rule == "egain"]
    assert w.severity == "warning"


# --- grouping and masters ------------------------------------------------------------------------

def _frames(folder: Path, n: int, level: float, cards: dict, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    return [write_frame(folder / f"bias_{cards.get('READOUTM', 'x').replace(' ', '')}_{i:03d}.fits",
                        rng.normal(level, 3.0, SMALL).round().astype(np.uint16), cards) for i in range(n)]


def test_frames_of_two_readout_modes_never_share_a_master(tmp_path):
    _frames(tmp_path, 3, 1626, {"IMAGETYP": "BIAS", "READOUTM": "High Gain", "EGAIN": 0.36}, seed=1)
    _frames(tmp_path, 3, 400, {"IMAGETYP": "BIAS", "READOUTM": "Low Gain", "EGAIN": 1.45}, seed=2)
    groups = aw.scan(tmp_path).groups("bias")
    assert [(g.key["readout_mode"], len(g)) for g in groups] == [("High Gain", 3), ("Low Gain", 3)]
    assert "readout 'High Gain'" in groups[0].label and "High-Gain" in groups[0].slug
    assert groups[0].slug != groups[1].slug


def test_frames_differing_only_in_egain_get_two_masters_with_two_names(tmp_path):
    _frames(tmp_path / "a", 2, 500, {"IMAGETYP": "BIAS", "EGAIN": 0.5}, seed=3)
    _frames(tmp_path / "b", 2, 500, {"IMAGETYP": "BIAS", "EGAIN": 2.0}, seed=4)
    _frames(tmp_path / "c", 1, 500, {"IMAGETYP": "BIAS", "EGAIN": 2.02}, seed=5)
    groups = aw.scan(tmp_path).groups("bias")
    assert [len(g) for g in groups] == [2, 3]  # 2.0 and 2.02 e-/ADU are one gain
    assert len({g.slug for g in groups}) == 2 and "0.5 e-/ADU" in groups[0].label


def test_master_records_readout_mode_and_egain_and_reuse_compares_them(tmp_path):
    paths = _frames(tmp_path / "in", 3, 700, {"IMAGETYP": "BIAS", "READOUTM": "Low Gain", "EGAIN": 1.45})
    ds = aw.integrate(aw.open_frames(paths), combine="median", rejection="none")
    header = master_header(dict(ds.attrs, n_frames=3))
    assert header["READOUTM"] == "Low Gain" and header["EGAIN"] == 1.45
    out = aw.write_master(ds.compute(), tmp_path / "master_bias.fits")
    assert master_mismatch(out, paths, settings=ds.attrs) is None
    other = dict(ds.attrs, frame_readout_mode=["High Gain"] * 3)
    assert "readout mode Low Gain in the file, High Gain now" in master_mismatch(out, paths, settings=other)
    # The library finds it again by its readout mode, and refuses it for the other mode.
    light = _info(readout_mode="High Gain", egain=0.36, gain=math.nan, offset=math.nan)
    choice = find_master(light, tmp_path, role="bias")
    assert choice.path is None and "High Gain" in str(choice) and "Low Gain" in str(choice)
    assert find_master(_info(readout_mode="Low Gain", egain=1.45, gain=math.nan, offset=math.nan),
                       tmp_path, role="bias").path == str(out)


# --- through calibrate_session -------------------------------------------------------------------

def _retag(paths, **cards) -> None:
    for p in paths:
        with fits.open(p, mode="update") as hdul:
            for key, value in cards.items():
                hdul[0].header[key] = value


@pytest.fixture
def mixed_modes(tmp_path):
    """A night whose bias frames were taken in 'High Gain' and everything else in 'Low Gain'."""
    night = aw.simulate_session(tmp_path / "night", seed=21, shape=(96, 128), defects=False,
                                counts={"bias": 5, "dark": 0, "flat": 5, "darkflat": 0, "light": 1})
    _retag(night.paths["bias"], READOUTM="High Gain", EGAIN=3.2)
    _retag(night.paths["flat"] + night.paths["light"], READOUTM="Low Gain")
    return night


def test_bias_of_another_readout_mode_is_refused_strictly_and_warned_leniently(mixed_modes, tmp_path):
    from astrocal_widgets.calibrate import calibrate_session

    with pytest.raises(aw.AstrocalError, match=r"no dark flats and no bias match these flats.*"
                                               r"read out in 'High Gain'.*in 'Low Gain'"):
        calibrate_session(mixed_modes.directory, output=tmp_path / "strict")
    result = calibrate_session(mixed_modes.directory, output=tmp_path / "lenient", strict=False)
    flat_warnings = [w for w in result.warnings if "integrated uncalibrated" in w]
    assert flat_warnings and "'High Gain'" in flat_warnings[0] and "'Low Gain'" in flat_warnings[0]
    assert "3.2 e-/ADU" in flat_warnings[0]  # the conversion gains differ too
    assert all(l.bias is None for l in result.lights)  # never subtracted across modes


def test_dark_of_another_readout_mode_is_refused_strictly_and_named_leniently(tmp_path):
    from astrocal_widgets.calibrate import calibrate_session

    night = aw.simulate_session(tmp_path / "night", seed=23, shape=(96, 128), defects=False,
                                counts={"bias": 0, "dark": 3, "flat": 3, "darkflat": 3, "light": 1})
    _retag(night.paths["dark"], READOUTM="High Gain")
    _retag(night.paths["light"], READOUTM="Low Gain")
    with pytest.raises(CalibrationMismatchError, match=r"readout mode: master dark .*'High Gain'.*'Low Gain'"):
        calibrate_session(night.directory, output=tmp_path / "strict")
    result = calibrate_session(night.directory, output=tmp_path / "lenient", strict=False)
    named = [w for w in result.warnings if "no usable dark master" in w]
    assert named and "'High Gain'" in named[0] and "'Low Gain'" in named[0]
    assert all(l.dark is None for l in result.lights)


# --- the level check -----------------------------------------------------------------------------

def test_level_check_questions_a_master_above_the_frames_dark_level():
    rng = np.random.default_rng(7)
    flat = rng.normal(2000.0, 12.0, (200, 300)) * np.linspace(0.8, 1.0, 300)  # vignetted flat
    bias_level = 400.0
    good = master_level_problem(flat + bias_level - bias_level, frame="flat_1.fits", master="bias_low.fits")
    assert good is None
    wrong = master_level_problem(flat - 2500.0, frame="flat_1.fits", master="master_bias_high.fits",
                                 master_level=2500.0)
    assert wrong is not None and "flat_1.fits" in wrong and "master_bias_high.fits" in wrong
    assert "2500 ADU" in wrong and "READOUTM" in wrong
    check = check_calibrated_level(flat - 2500.0)
    assert check.questioned and check.negative_fraction > 0.5 and 10 < check.noise < 15


def test_level_check_tolerates_noise_around_zero_and_a_pedestal():
    rng = np.random.default_rng(8)
    faint = rng.normal(3.0, 5.0, (300, 300))  # a faint sky after a right dark: many values just below 0
    assert master_level_problem(faint, frame="l.fits", master="d.fits") is None
    faint[:6] = -500.0  # two percent dead rows are a defect, above the threshold
    assert master_level_problem(faint, frame="l.fits", master="d.fits") is not None
    shifted = rng.normal(103.0, 5.0, (300, 300))
    assert master_level_problem(shifted, frame="l.fits", master="d.fits", offset=100.0) is None
    assert master_level_problem(shifted, frame="l.fits", master="d.fits", offset=200.0) is not None
    with pytest.raises(ValueError, match="2-D"):
        check_calibrated_level(np.zeros(5))


def test_calibrate_session_warns_when_a_dark_is_above_the_lights(tmp_path):
    """Darks from another mode (a higher pedestal) with the same keywords: only the pixels tell."""
    from astrocal_widgets.calibrate import calibrate_session

    night = aw.simulate_session(tmp_path / "night", seed=22, shape=(96, 128), defects=False,
                                counts={"bias": 0, "dark": 4, "flat": 4, "darkflat": 4, "light": 1})
    lights_exposure = fits.getval(night.paths["light"][0], "EXPTIME")
    for p in night.paths["dark"]:
        if fits.getval(p, "EXPTIME") != lights_exposure:
            continue
        with fits.open(p) as hdul:
            header, data = hdul[0].header.copy(), hdul[0].data.astype(np.int64)
        for key in ("BZERO", "BSCALE"):
            header.remove(key, ignore_missing=True)
        fits.PrimaryHDU(np.clip(data + 3000, 0, 65535).astype(np.uint16), header=header).writeto(p, overwrite=True)
    result = calibrate_session(night.directory, output=tmp_path / "out")
    level = [w for w in result.warnings if w.startswith("level:")]
    assert len(level) == len(night.paths["light"]) and all("master_dark_300s" in w for w in level)
    assert {Path(p).name for p in night.paths["light"]} == {w.split()[1] for w in level}
    clean = aw.simulate_session(tmp_path / "clean", seed=22, shape=(96, 128), defects=False,
                                counts={"bias": 0, "dark": 4, "flat": 4, "darkflat": 4, "light": 1})
    assert not [w for w in calibrate_session(clean.directory, output=tmp_path / "out2").warnings if "level:" in w]
