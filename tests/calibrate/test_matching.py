"""check_compatibility / enforce: every compatibility rule triggered, and its message."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.calibrate.matching import (CalibrationMismatchError, CalibrationWarning, FrameInfo,
                                                 Mismatch, check_compatibility, enforce, frame_info,
                                                 master_type_from_value)
from astrocal_widgets.errors import AstrocalError, IncompatibleFramesError

from conftest import write_frame

SHAPE = (8, 10)  # height, width
LIGHT_PATH = "/data/2022-04-10/LIGHT/2022-04-10_21-03-12_Ha_-10.00_300.00s_0001.fits"
LIGHT = {  # a catalogue row, as scan() makes it (NINA, cooled mono camera)
    "path": LIGHT_PATH, "frame_type": "light", "type_reason": "header IMAGETYP='LIGHT'",
    "exposure": 300.0, "temperature": -9.9, "set_temperature": -10.0, "gain": 139.0, "offset": 21.0,
    "iso": math.nan, "filter": "Ha", "xbinning": 1.0, "ybinning": 1.0,
    "date_obs": pd.Timestamp("2022-04-10T21:03:12"), "instrument": "ZWO ASI2600MM Pro", "bayer_pattern": "",
    "height": SHAPE[0], "width": SHAPE[1],
}
MASTER_KEYS = {  # what integrate.master_file.master_header writes for frames matching LIGHT
    "NCOMBINE": 20, "EXPTIME": 300.0, "EXPOSURE": 300.0, "CCD-TEMP": -10.0, "SET-TEMP": -10.0, "GAIN": 139,
    "OFFSET": 21, "XBINNING": 1, "YBINNING": 1, "INSTRUME": "ZWO ASI2600MM Pro",
    "DATE-OBS": "2022-04-10T23:00:00",
}
IMAGETYP = {"bias": "MASTER BIAS", "dark": "MASTER DARK", "darkflat": "MASTER DARKFLAT", "flat": "MASTER FLAT"}


def light(**changes) -> pd.Series:
    row = dict(LIGHT)
    row.update(changes)
    return pd.Series(row)


def write_master(path: Path, kind: str, shape: tuple[int, int] = SHAPE, **changes) -> Path:
    """A master-like FITS: IMAGETYP MASTER <kind> and the matching keys; ``KEY=None`` removes KEY.

    Keyword arguments use ``_`` for ``-`` (``CCD_TEMP`` -> ``CCD-TEMP``).
    """
    header = fits.Header()
    header["IMAGETYP"] = IMAGETYP[kind]
    keys = dict(MASTER_KEYS)
    if kind == "bias":
        keys.update(EXPTIME=0.0, EXPOSURE=0.0)
    if kind == "flat":
        keys.update(EXPTIME=2.0, EXPOSURE=2.0, FILTER="Ha")
    if kind == "darkflat":
        keys.update(EXPTIME=2.0, EXPOSURE=2.0)
    for key, value in changes.items():
        keys[key.replace("_", "-")] = value
    for key, value in keys.items():
        if value is not None:
            header[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.zeros(shape, np.float32), header=header).writeto(path)
    return path


def rules(mismatches: list[Mismatch], severity: str | None = None) -> list[str]:
    return [m.rule for m in mismatches if severity is None or m.severity == severity]


def only(mismatches: list[Mismatch], rule: str) -> Mismatch:
    found = [m for m in mismatches if m.rule == rule]
    assert len(found) == 1, [m.message for m in mismatches]
    return found[0]


# --- the baseline: a matching master has no problem, so every rule below is triggered by its change

@pytest.mark.parametrize("kind", ["bias", "dark", "flat"])
def test_matching_masters_pass(tmp_path, kind):
    master = write_master(tmp_path / f"master_{kind}.fits", kind)
    assert check_compatibility(light(), master, role=kind) == []
    assert enforce([], strict=True) == []


def test_matching_darkflat_passes(tmp_path):
    flat = light(frame_type="flat", exposure=2.0, path="/data/FLAT/flat_0001.fits")
    master = write_master(tmp_path / "master_darkflat.fits", "darkflat")
    assert check_compatibility(flat, master, role="darkflat") == []


# --- one test per rule ----------------------------------------------------------------------------

def test_size_is_an_error_naming_both_frames_and_sizes(tmp_path):
    master = write_master(tmp_path / "master_dark.fits", "dark", shape=(16, 10))
    m = only(check_compatibility(light(), master, role="dark"), "size")
    assert m.severity == "error" and m.target_value == (10, 8) and m.calibration_value == (10, 16)
    assert str(master) in m.message and LIGHT_PATH in m.message
    assert "10x16 px" in m.message and "10x8 px" in m.message and "region of interest" in m.message


@pytest.mark.parametrize("role", ["bias", "dark", "flat"])
def test_size_is_checked_for_every_role(tmp_path, role):
    master = write_master(tmp_path / f"master_{role}.fits", role, shape=(8, 12))
    assert "size" in rules(check_compatibility(light(), master, role=role), "error")


def test_binning(tmp_path):
    master = write_master(tmp_path / "master_bias.fits", "bias", XBINNING=2, YBINNING=2)
    m = only(check_compatibility(light(), master, role="bias"), "binning")
    assert m.severity == "error"
    assert "binned 2x2" in m.message and "binned 1x1" in m.message and "binning 1x1" in m.message
    assert str(master) in m.message and LIGHT_PATH in m.message


def test_gain(tmp_path):
    master = write_master(tmp_path / "master_dark.fits", "dark", GAIN=100)
    m = only(check_compatibility(light(), master, role="dark"), "gain")
    assert m.severity == "error" and (m.target_value, m.calibration_value) == (139.0, 100.0)
    assert "gain 100" in m.message and "gain 139" in m.message and "take the darks at gain 139" in m.message
    assert str(master) in m.message and LIGHT_PATH in m.message


def test_iso_for_dslr(tmp_path):
    dslr = light(gain=math.nan, offset=math.nan, iso=800.0, temperature=math.nan, set_temperature=math.nan,
                 instrument="Canon EOS 6D", bayer_pattern="RGGB")
    master = write_master(tmp_path / "master_bias.fits", "bias", GAIN=None, OFFSET=None, CCD_TEMP=None,
                          SET_TEMP=None, ISOSPEED=1600, INSTRUME="Canon EOS 6D", BAYERPAT="RGGB")
    found = check_compatibility(dslr, master, role="bias")
    m = only(found, "iso")
    assert m.severity == "error" and "ISO 1600" in m.message and "ISO 800" in m.message
    assert "gain" not in rules(found) and "offset" not in rules(found)  # both unknown: nothing to say


def test_offset(tmp_path):
    master = write_master(tmp_path / "master_flat.fits", "flat", OFFSET=30)
    m = only(check_compatibility(light(), master, role="flat"), "offset")
    assert m.severity == "error" and "offset 30" in m.message and "offset 21" in m.message
    assert "pedestal" in m.message


def test_temperature_beyond_tolerance(tmp_path):
    master = write_master(tmp_path / "master_dark_-5C.fits", "dark", CCD_TEMP=-5.0, SET_TEMP=-5.0)
    m = only(check_compatibility(light(), master, role="dark"), "temperature")
    assert m.severity == "error" and (m.target_value, m.calibration_value) == (-9.9, -5.0)
    assert "-5.0 °C" in m.message and "-9.9 °C" in m.message and "tolerance 1.0 °C" in m.message
    assert "set point" in m.message and "dark scaling" in m.message and "~6 °C" in m.message
    assert str(master) in m.message and LIGHT_PATH in m.message


def test_temperature_tolerance_is_a_parameter(tmp_path):
    master = write_master(tmp_path / "master_dark.fits", "dark", CCD_TEMP=-10.8)
    assert check_compatibility(light(), master, role="dark") == []        # 0.9 °C apart
    m = only(check_compatibility(light(), master, role="dark", temperature_tolerance=0.5), "temperature")
    assert "tolerance 0.5 °C" in m.message
    edge = write_master(tmp_path / "master_dark_edge.fits", "dark", CCD_TEMP=-10.9)  # exactly 1.0 °C
    assert check_compatibility(light(), edge, role="dark") == []


def test_temperature_for_bias_but_not_for_flats(tmp_path):
    bias = write_master(tmp_path / "master_bias.fits", "bias", CCD_TEMP=0.0)
    m = only(check_compatibility(light(), bias, role="bias"), "temperature")
    assert m.severity == "error" and "bias" in m.message and "0.0 °C" in m.message
    flat = write_master(tmp_path / "master_flat.fits", "flat", CCD_TEMP=0.0)
    assert check_compatibility(light(), flat, role="flat") == []


def test_set_point_used_when_no_sensor_temperature(tmp_path):
    master = write_master(tmp_path / "master_dark.fits", "dark", CCD_TEMP=None, SET_TEMP=-20.0)
    m = only(check_compatibility(light(), master, role="dark"), "temperature")
    assert "-20.0 °C" in m.message


def test_unknown_temperature_is_a_warning(tmp_path):
    dslr = light(temperature=math.nan, set_temperature=math.nan)
    master = write_master(tmp_path / "master_dark.fits", "dark")
    found = check_compatibility(dslr, master, role="dark")
    m = only(found, "temperature_unknown")
    assert m.severity == "warning" and rules(found, "error") == []
    assert LIGHT_PATH in m.message and str(master) in m.message and "-10.0 °C" in m.message
    assert "unknown" in m.message and "DSLR" in m.message
    # warnings never raise, even when strict
    with pytest.warns(CalibrationWarning, match="cannot check"):
        assert enforce(found, strict=True) == found
    # unknown on the master's side too
    master2 = write_master(tmp_path / "master_dark2.fits", "dark", CCD_TEMP=None, SET_TEMP=None)
    assert rules(check_compatibility(light(), master2, role="dark")) == ["temperature_unknown"]


def test_unregulated_dark_from_another_night(tmp_path):
    dslr = light(temperature=math.nan, set_temperature=math.nan)
    master = write_master(tmp_path / "master_dark.fits", "dark", CCD_TEMP=None, SET_TEMP=None,
                          DATE_OBS="2022-03-01T22:00:00")
    m = only(check_compatibility(dslr, master, role="dark"), "night")
    assert m.severity == "error" and "2022-02-28" not in m.message
    assert "2022-03-01" in m.message and "2022-04-10" in m.message and "same night" in m.message
    # after midnight is still the same night
    same_night = write_master(tmp_path / "master_dark_same.fits", "dark", CCD_TEMP=None, SET_TEMP=None,
                              DATE_OBS="2022-04-11T02:30:00")
    assert rules(check_compatibility(dslr, same_night, role="dark")) == ["temperature_unknown"]
    # a bias is reused across nights whatever
    bias = write_master(tmp_path / "master_bias.fits", "bias", CCD_TEMP=None, SET_TEMP=None,
                        DATE_OBS="2022-03-01T22:00:00")
    assert rules(check_compatibility(dslr, bias, role="bias")) == ["temperature_unknown"]


def test_temperature_spread_of_a_light_group(tmp_path):
    base = {"IMAGETYP": "LIGHT", "EXPTIME": 300.0, "SET-TEMP": -10.0, "GAIN": 139, "OFFSET": 21,
            "XBINNING": 1, "YBINNING": 1, "FILTER": "Ha"}
    for i, temp in enumerate([-10.0, -10.1, -9.9, -12.5]):  # the cooler lost the set point once
        write_frame(tmp_path / "night" / "LIGHT" / f"L_{i:04d}.fits", np.zeros(SHAPE, np.uint16),
                    {**base, "CCD-TEMP": temp})
    group = aw.scan(tmp_path / "night").groups("light")[0]
    master = write_master(tmp_path / "masters" / "master_dark.fits", "dark")
    m = only(check_compatibility(group, master, role="dark"), "temperature_spread")
    assert m.severity == "warning" and "-12.5 to -9.9 °C" in m.message and group.label in m.message


def test_dark_exposure(tmp_path):
    master = write_master(tmp_path / "master_dark_120s.fits", "dark", EXPTIME=120.0, EXPOSURE=120.0)
    m = only(check_compatibility(light(), master, role="dark"), "exposure")
    assert m.severity == "error" and (m.target_value, m.calibration_value) == (300.0, 120.0)
    assert "120 s" in m.message and "300 s" in m.message and "allow_dark_scaling=True" in m.message
    assert "5%" in m.message


def test_dark_exposure_within_deepskystackers_5_percent(tmp_path):
    near = write_master(tmp_path / "master_dark_310s.fits", "dark", EXPTIME=310.0, EXPOSURE=310.0)
    assert check_compatibility(light(), near, role="dark") == []      # 3.2 %
    far = write_master(tmp_path / "master_dark_320s.fits", "dark", EXPTIME=320.0, EXPOSURE=320.0)
    assert rules(check_compatibility(light(), far, role="dark")) == ["exposure"]  # 6.25 %


def test_dark_exposure_allowed_with_scaling(tmp_path):
    longer = write_master(tmp_path / "master_dark_600s.fits", "dark", EXPTIME=600.0, EXPOSURE=600.0)
    assert check_compatibility(light(), longer, role="dark", allow_dark_scaling=True) == []
    shorter = write_master(tmp_path / "master_dark_60s.fits", "dark", EXPTIME=60.0, EXPOSURE=60.0)
    found = check_compatibility(light(), shorter, role="dark", allow_dark_scaling=True)
    m = only(found, "dark_scaling")
    assert m.severity == "warning" and rules(found, "error") == [] and "k = 5" in m.message
    assert "60 s" in m.message and "300 s" in m.message


def test_darkflat_exposure(tmp_path):
    flat = light(frame_type="flat", exposure=1.5, path="/data/FLAT/flat_Ha_0001.fits")
    master = write_master(tmp_path / "master_darkflat.fits", "darkflat")  # 2 s
    for scaling in (False, True):  # dark flats are never scaled
        m = only(check_compatibility(flat, master, role="darkflat", allow_dark_scaling=scaling), "exposure")
        assert m.severity == "error" and "2 s" in m.message and "1.5 s" in m.message
        assert "flat '/data/FLAT/flat_Ha_0001.fits'" in m.message and "dark flats" in m.message
    # NINA 3 writes dark flats as DARK: a master dark at the flats' exposure is a fine dark flat
    nina3 = write_master(tmp_path / "master_dark_1.5s.fits", "dark", EXPTIME=1.5, EXPOSURE=1.5)
    assert check_compatibility(flat, nina3, role="darkflat") == []


def test_filter(tmp_path):
    master = write_master(tmp_path / "master_flat_OIII.fits", "flat", FILTER="OIII")
    m = only(check_compatibility(light(), master, role="flat"), "filter")
    assert m.severity == "error" and "'OIII'" in m.message and "'Ha'" in m.message
    assert "filter 'Ha'" in m.message and str(master) in m.message and LIGHT_PATH in m.message
    same = write_master(tmp_path / "master_flat_ha.fits", "flat", FILTER="ha ")
    assert check_compatibility(light(), same, role="flat") == []
    none = write_master(tmp_path / "master_flat_none.fits", "flat", FILTER=None)
    assert rules(check_compatibility(light(), none, role="flat")) == ["filter"]
    assert check_compatibility(light(), none, role="flat")[0].severity == "warning"


def test_cfa_pattern(tmp_path):
    osc = light(bayer_pattern="RGGB", filter="")
    master = write_master(tmp_path / "master_flat.fits", "flat", FILTER=None, BAYERPAT="GRBG")
    m = only(check_compatibility(osc, master, role="flat"), "cfa")
    assert m.severity == "error" and "GRBG" in m.message and "RGGB" in m.message and "ROWORDER" in m.message
    # BAYERPAT honours ROWORDER: RGGB written bottom-up starts on the G B row of the stored array
    flipped = write_master(tmp_path / "master_dark.fits", "dark", BAYERPAT="RGGB", ROWORDER="BOTTOM-UP")
    m = only(check_compatibility(osc, flipped, role="dark"), "cfa")
    assert m.calibration_value == "GBRG"
    good = write_master(tmp_path / "master_dark_ok.fits", "dark", BAYERPAT="RGGB", ROWORDER="TOP-DOWN")
    assert check_compatibility(osc, good, role="dark") == []


def test_instrument_is_a_warning(tmp_path):
    master = write_master(tmp_path / "master_dark.fits", "dark", INSTRUME="QHY268M")
    found = check_compatibility(light(), master, role="dark")
    m = only(found, "instrument")
    assert m.severity == "warning" and rules(found, "error") == []
    assert "'QHY268M'" in m.message and "'ZWO ASI2600MM Pro'" in m.message


def test_wrong_frame_type_for_the_role(tmp_path):
    flat = write_master(tmp_path / "master_flat.fits", "flat", EXPTIME=300.0, FILTER=None)
    m = only(check_compatibility(light(), flat, role="dark"), "frame_type")
    assert m.severity == "error" and "master flat" in m.message and "not a dark" in m.message


def test_value_on_one_side_only_cannot_be_checked(tmp_path):
    master = write_master(tmp_path / "master_dark.fits", "dark", GAIN=None)
    m = only(check_compatibility(light(), master, role="dark"), "gain")
    assert m.severity == "warning" and "cannot check" in m.message and "GAIN" in m.message
    assert "gain 139" in m.message


def test_bad_arguments(tmp_path):
    master = write_master(tmp_path / "master_dark.fits", "dark")
    with pytest.raises(ValueError, match="role"):
        check_compatibility(light(), master, role="light")
    with pytest.raises(ValueError, match="temperature_tolerance"):
        check_compatibility(light(), master, role="dark", temperature_tolerance=-1)
    with pytest.raises(TypeError):
        frame_info(42)


# --- strict and not strict ------------------------------------------------------------------------

def test_strict_raises_listing_every_error(tmp_path):
    master = write_master(tmp_path / "master_dark.fits", "dark", GAIN=100, OFFSET=30, CCD_TEMP=-20.0,
                          INSTRUME="QHY268M")
    found = check_compatibility(light(), master, role="dark")
    assert sorted(rules(found, "error")) == ["gain", "offset", "temperature"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # strict with errors: raises, issues no warning
        with pytest.raises(CalibrationMismatchError) as info:
            enforce(found, strict=True)
    err = info.value
    assert isinstance(err, AstrocalError) and isinstance(err, IncompatibleFramesError)
    assert [m.rule for m in err.mismatches] == rules(found, "error")
    assert [m.rule for m in err.warnings] == ["instrument"]
    text = str(err)
    assert text.startswith("3 calibration mismatches")
    for m in found:
        assert m.message in text


def test_not_strict_warns_once_per_problem(tmp_path):
    master = write_master(tmp_path / "master_dark.fits", "dark", GAIN=100, INSTRUME="QHY268M")
    found = check_compatibility(light(), master, role="dark")
    with pytest.warns(CalibrationWarning) as record:
        returned = enforce(found, strict=False)
    assert returned == found and len(record) == len(found) == 2
    by_rule = {w.message.mismatch.rule: str(w.message) for w in record}
    assert by_rule["gain"].startswith("error: gain:") and by_rule["instrument"].startswith("warning:")
    assert issubclass(CalibrationWarning, UserWarning)


# --- the normalised view --------------------------------------------------------------------------

def test_frame_info_from_header_file_row_and_group(tmp_path):
    path = write_master(tmp_path / "master_darkflat.fits", "darkflat", TEMPMIN=-10.2, TEMPMAX=-9.8)
    header = fits.getheader(path)
    from_file = frame_info(path)
    assert from_file.is_master and from_file.frame_type == "darkflat" and from_file.kind == "master dark flat"
    assert (from_file.height, from_file.width, from_file.n_frames) == (8, 10, 20)
    assert (from_file.temperature_min, from_file.temperature_max) == (-10.2, -9.8)
    assert from_file.date_obs == pd.Timestamp("2022-04-10T23:00:00")
    from_header = frame_info(header)          # NAXIS gives the size
    assert from_header.exposure == 2.0 and (from_header.height, from_header.width) == (8, 10)
    assert frame_info(dict(header)).gain == 139.0  # a plain dict of keywords is a header too
    row = frame_info(light())
    assert not row.is_master and row.kind == "light" and row.n_frames == 1 and row.name == LIGHT_PATH
    assert frame_info(row) is row
    round_trip = FrameInfo.from_row(pd.Series(from_file.as_row()))
    assert round_trip == from_file  # as_row() and from_row() round-trip

    write_frame(tmp_path / "n" / "DARK" / "d1.fits", np.zeros(SHAPE, np.uint16),
                {"IMAGETYP": "DARK", "EXPTIME": 60.0, "CCD-TEMP": -10.1, "GAIN": 139, "OFFSET": 21})
    write_frame(tmp_path / "n" / "DARK" / "d2.fits", np.zeros(SHAPE, np.uint16),
                {"IMAGETYP": "DARK", "EXPTIME": 60.0, "CCD-TEMP": -9.9, "GAIN": 139, "OFFSET": 21})
    group = aw.scan(tmp_path / "n").groups("dark")[0]
    g = frame_info(group)
    assert g.kind == "dark group" and g.name == group.label and g.n_frames == 2 and g.path is None
    assert g.exposure == 60.0 and g.temperature == pytest.approx(-10.0) and (g.height, g.width) == SHAPE


def test_master_type_from_imagetyp():
    assert master_type_from_value("MASTER DARKFLAT") == "darkflat"
    assert master_type_from_value("Master Dark Flat") == "darkflat"
    assert master_type_from_value("MASTER BIAS") == "bias"
    assert master_type_from_value("MasterFlat") == "flat"
    assert master_type_from_value("MASTER") == ""
    assert master_type_from_value("DARK") is None and master_type_from_value("masterpiece") is None
