"""Header normalisation: NINA, SGP, APT (DSLR), MaxIm spellings into one set of coordinates."""
import math

import numpy as np
import pytest

from astrocal_widgets.io.headers import (bayer_pattern_at_origin, frame_metadata, frame_type_from_path,
                                         frame_type_from_value)

from conftest import APT_DSLR_BIAS, MAXIM_FLAT, NINA_LIGHT, SGP_DARK


@pytest.mark.parametrize("value, expected", [
    ("LIGHT", "light"), ("Light Frame", "light"), ("light", "light"), ("Dark Frame", "dark"),
    ("DARK", "dark"), ("Bias Frame", "bias"), ("BIAS", "bias"), ("Offset", "bias"), ("Flat Field", "flat"),
    ("FLAT", "flat"), ("FLATDARK", "darkflat"), ("DARKFLAT", "darkflat"), ("Dark Flat", "darkflat"),
    ("flat-dark", "darkflat"), ("Tricolor", ""), ("", ""), (None, ""),
])
def test_frame_type_spellings(value, expected):
    assert frame_type_from_value(value) == expected


@pytest.mark.parametrize("path, expected", [
    ("night/BIAS/2022-04-10_21-03-12_-10.00_0.00s_0001.fits", "bias"),
    ("night/DARKFLAT/x_0001.fits", "darkflat"),
    ("night/FLAT/x_0001.fits", "flat"),
    ("night/Dark Flats/x.fit", "darkflat"),
    ("L2-dark-flat-360.00000001.DARK.FIT", "darkflat"),
    ("L2-flat-hg-360.00000000.FIT", "flat"),
    ("bias_001.fits", "bias"),
    ("IC310_0003.fits", ""),
    ("night/Lights/M31_001.fits", "light"),
    ("darkness/xx.fits", ""),  # 'dark' inside a longer word is not a type
])
def test_frame_type_from_path(path, expected):
    assert frame_type_from_path(path) == expected


def test_nina_header():
    meta = frame_metadata(NINA_LIGHT, "a/b.fits")
    assert meta["frame_type"] == "light"
    assert meta["exposure"] == 300.0 and meta["temperature"] == -9.9 and meta["set_temperature"] == -10.0
    assert meta["gain"] == 139 and meta["offset"] == 21 and meta["filter"] == "Ha"
    assert meta["xbinning"] == 1 and meta["ybinning"] == 1
    assert meta["date_obs"] == np.datetime64("2022-04-10T21:03:12.123")
    assert meta["instrument"] == "ZWO ASI2600MM Pro"
    assert math.isnan(meta["iso"]) and meta["bayer_pattern"] == ""


def test_sgp_header_aliases():
    meta = frame_metadata(SGP_DARK, "x.fits")
    assert meta["frame_type"] == "dark"
    assert meta["exposure"] == 120.0 and meta["temperature"] == -15.2
    assert meta["xbinning"] == 2 and meta["gain"] == 0 and meta["offset"] == 30


def test_apt_dslr_header_missing_values_are_nan():
    meta = frame_metadata(APT_DSLR_BIAS, "x.fits", (24, 32))
    assert meta["frame_type"] == "bias" and meta["iso"] == 800
    assert math.isnan(meta["temperature"]) and math.isnan(meta["gain"]) and math.isnan(meta["xbinning"])
    assert meta["bayer_pattern"] == "RGGB" and meta["filter"] == ""


def test_maxim_header():
    meta = frame_metadata(MAXIM_FLAT, "x.fits")
    assert meta["frame_type"] == "flat" and meta["filter"] == "Red" and meta["exposure"] == 2.5


def test_string_exposure_and_header_type_precedence():
    meta = frame_metadata({"EXPTIME": "40"}, "data/IC310_0001.fits")
    assert meta["exposure"] == 40.0 and meta["frame_type"] == ""
    assert "no IMAGETYP" in meta["type_reason"]
    meta = frame_metadata({"EXPTIME": "0"}, "data/bias_0001.fits")
    assert meta["frame_type"] == "bias" and meta["type_reason"] == "file or folder name"


def test_ccdsoft_flats_typed_light_follow_the_file_name():
    meta = frame_metadata({"IMAGETYP": "Light Frame"}, "L2-flat-hg-360.00000000.FIT")
    assert meta["frame_type"] == "flat"
    assert "file name says flat" in meta["type_reason"] and "Light Frame" in meta["type_reason"]
    # A light named like a light stays a light.
    assert frame_metadata({"IMAGETYP": "Light Frame"}, "L2-sci-hg-240.FIT")["frame_type"] == "light"


def test_two_filter_wheels():
    meta = frame_metadata({"FILTER1": "Ks", "FILTER2": "open"}, "x.fits")
    assert meta["filter"] == "Ks+open"


@pytest.mark.parametrize("pattern, xoff, yoff, roworder, height, expected", [
    ("RGGB", 0, 0, "TOP-DOWN", 10, "RGGB"),
    ("RGGB", 1, 0, "", 10, "GRBG"),
    ("RGGB", 0, 1, "", 10, "GBRG"),
    ("RGGB", 1, 1, "", 10, "BGGR"),
    ("RGGB", 0, 0, "BOTTOM-UP", 10, "GBRG"),   # even height: stored row 0 is the other pattern row
    ("RGGB", 0, 0, "BOTTOM-UP", 11, "RGGB"),   # odd height: same parity
    ("GRBG", 0, 0, "", None, "GRBG"),
    ("XYZW", 0, 0, "", None, ""),
])
def test_bayer_pattern_at_origin(pattern, xoff, yoff, roworder, height, expected):
    assert bayer_pattern_at_origin(pattern, xoff, yoff, roworder, height) == expected


def test_bayer_offsets_from_header():
    hdr = {"BAYERPAT": "RGGB", "XBAYROFF": 1, "YBAYROFF": 0, "ROWORDER": "TOP-DOWN"}
    assert frame_metadata(hdr, "x.fits", (20, 30))["bayer_pattern"] == "GRBG"


def test_a_folder_name_never_overrides_the_header():
    meta = frame_metadata({"IMAGETYP": "LIGHT"}, "/data/flat-field study/M31/M31_001.fits")
    assert meta["frame_type"] == "light"
    # settings in folder names are not types
    assert frame_metadata({}, "/data/M31/gain139_offset30/M31_300s_0001.fits")["frame_type"] == ""
    assert frame_metadata({}, "/data/Offset/frame_0001.fits")["frame_type"] == "bias"


def test_odd_bayer_offsets_do_not_stop_anything():
    assert frame_metadata({"BAYERPAT": "RGGB", "XBAYROFF": "abc", "YBAYROFF": ""}, "x.fits")["bayer_pattern"] == "RGGB"
