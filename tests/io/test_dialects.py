"""Header dialects: one test per capture program, each a header as that program writes it, on disk.

The headers follow each program's published examples (NINA, SGP, APT, MaxIm DL and SharpCap headers
as shared by users of those programs; CCDSoft as in the shared SBIG frames; MaxIm DL's keyword list
for EGAIN and READOUTM). Every test writes a tiny FITS, scans it, and checks the normalised fields.
"""
from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.io import HEADER_FIELDS, HeaderKeyword, read_field, register_keywords
from astrocal_widgets.io.headers import frame_metadata

from conftest import tree_hashes

DATA = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 7 + 900)


_FILE_NUMBER = itertools.count(1)


def write_cards(path: Path, cards: list[tuple], data: np.ndarray | None = None) -> Path:
    """A FITS file with these (keyword, value[, comment]) cards, as a capture program writes it.

    Each file gets pixels of its own: frames with the same pixels are duplicates, left out by scan.
    """
    if data is None:
        data = DATA + next(_FILE_NUMBER)
    header = fits.Header()
    for card in cards:
        header.append(card)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data, header=header).writeto(path)
    return path


def scan_one(path: Path, **kwargs) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's VerifyWarnings on non-standard cards
        table = aw.scan(path.parent, recursive=False, **kwargs).table
    return table[table["path"] == str(path)].iloc[0]


def test_nina(tmp_path):
    path = write_cards(tmp_path / "LIGHT" / "2021-03-02_21-19-00_L_-10.00_30.00s_0001.fits", [
        ("IMAGETYP", "LIGHT", "Type of exposure"), ("EXPOSURE", 30.0, "[s] Exposure duration"),
        ("EXPTIME", 30.0, "[s] Exposure duration"),
        ("DATE-LOC", "2021-03-02T21:19:00.455", "Time of observation (local)"),
        ("DATE-OBS", "2021-03-02T20:19:00.455", "Time of observation (UTC)"),
        ("XBINNING", 1, "X axis binning factor"), ("YBINNING", 1, "Y axis binning factor"),
        ("GAIN", 120, "Sensor gain"), ("OFFSET", 30, "Sensor gain offset"),
        ("EGAIN", 1.00224268436432, "[e-/ADU] Electrons per A/D unit"),
        ("INSTRUME", "ZWO ASI294MC Pro", "Imaging instrument name"),
        ("SET-TEMP", -10.0, "[degC] CCD temperature setpoint"), ("CCD-TEMP", -9.8, "[degC] CCD temperature"),
        ("READOUTM", "High Gain Mode", "Sensor readout mode"),
        ("BAYERPAT", "RGGB", "Sensor Bayer pattern"), ("XBAYROFF", 0, ""), ("YBAYROFF", 0, ""),
        ("ROWORDER", "TOP-DOWN", "FITS Image Orientation"), ("SWCREATE", "N.I.N.A. 1.10.2.90", ""),
    ])
    row = scan_one(path)
    assert row["frame_type"] == "light" and row["exposure"] == 30.0
    assert row["temperature"] == -9.8 and row["set_temperature"] == -10.0
    assert row["gain"] == 120 and row["offset"] == 30 and row["egain"] == pytest.approx(1.002243)
    assert row["readout_mode"] == "High Gain Mode" and row["bayer_pattern"] == "RGGB"
    assert row["date_obs"] == pd.Timestamp("2021-03-02T20:19:00.455")  # UTC, not DATE-LOC


def test_sequence_generator_pro(tmp_path):
    path = write_cards(tmp_path / "M57_30sec_1x1_HaOIII_frame1.fit", [
        ("OBJECT", "M57", "Object name"), ("DATE-LOC", "2020-05-30T02:22:49.0968820", "Local observation date"),
        ("DATE-OBS", "2020-05-30T00:22:49.0968820", "UTC observation date"),
        ("IMAGETYP", "LIGHT", "Type of frame"), ("CREATOR", "Sequence Generator Pro v3.1.0.479", ""),
        ("INSTRUME", "ZWO ASI294MC Pro", "Instrument name"), ("FILTER", "HaOIII", "Filter name"),
        ("EXPOSURE", 30, "Exposure time in seconds"), ("CCD-TEMP", -17.5, "Camera cooler temperature"),
        ("SET-TEMP", -18, "Camera cooler target temperature"), ("XBINNING", 1, "Camera X Bin"),
        ("CCDXBIN", 1, "Camera X Bin"), ("YBINNING", 1, "Camera Y Bin"), ("CCDYBIN", 1, "Camera Y Bin"),
        ("FOCTEMP", 14.162, "Focuser temperature"),
        ("GAIN", 120, "Camera gain"), ("EGAIN", 3.99000000953674, "Electrons Per ADU"), ("OFFSET", 30, "Camera offset"),
    ])
    row = scan_one(path)
    assert row["frame_type"] == "light" and row["exposure"] == 30.0  # EXPOSURE only
    assert row["temperature"] == -17.5 and row["set_temperature"] == -18  # not the focuser's
    assert row["gain"] == 120 and row["egain"] == pytest.approx(3.99) and row["filter"] == "HaOIII"
    assert row["date_obs"] == pd.Timestamp("2020-05-30T00:22:49.096")  # seven digits of seconds


def test_astro_photography_tool(tmp_path):
    path = write_cards(tmp_path / "L_0001_ISO0_240s__-15C.fit", [
        ("OBJECT", "TEST", "The name of Object Imaged"), ("INSTRUME", "ZWO ASI294MC Pro", "The model Camera used"),
        ("DATE-OBS", "2018-09-17T21:04:46", "The UTC date and time at the start of the expo"),
        ("EXPTIME", 240.0, "The total exposure time in seconds"), ("XBINNING", 1, "Binning factor in width"),
        ("YBINNING", 1, "Binning factor in height"), ("EGAIN", 1.00224268436432, "Electronic gain in e-/ADU"),
        ("SWCREATE", "Astro Photography Tool - APT v.3.54.1", "Imaging software"),
        ("SET-TEMP", -15.0, "The setpoint of the cooling in C"), ("IMAGETYP", "Light Frame", "The type of image"),
        ("GAIN", 120, "The gain set (if supported)"),
    ])
    row = scan_one(path)
    assert row["frame_type"] == "light" and row["exposure"] == 240.0
    assert math.isnan(row["temperature"]) and row["set_temperature"] == -15.0  # set point kept apart
    assert row["gain"] == 120 and row["egain"] == pytest.approx(1.002243)
    assert row["date_obs"] == pd.Timestamp("2018-09-17T21:04:46")


def test_maxim_dl(tmp_path):
    path = write_cards(tmp_path / "m17-001SII.fit", [
        ("DATE-OBS", "2018-07-04T14:03:03", "[ISO 8601] UTC date/time of exposure start"),
        ("EXPTIME", 300.0, "[sec] Duration of exposure"), ("EXPOSURE", 300.0, "[sec] Duration of exposure"),
        ("SET-TEMP", -35.0, "CCD temperature setpoint in C"),
        ("CCD-TEMP", -34.993802250000002, "CCD temperature at start of exposure in C"),
        ("XBINNING", 1, "Binning level along the X-axis"), ("YBINNING", 1, "Binning level along the Y-axis"),
        ("READOUTM", "Monochrome", "Readout mode of image"), ("FILTER", "SII", "Filter name"),
        ("IMAGETYP", "Light Frame", "Type of image"), ("SWCREATE", "MaxIm DL Version 5.24 140126 0KJR5", ""),
        ("INSTRUME", "Apogee USB/Net", "Detector instrument name"), ("EGAIN", 1.5, "Electronic gain in e-/ADU"),
        ("DATE", "04/07/18", "[old format] UTC date of exposure start"),
        ("TIME-OBS", "14:03:03", "[old format] UTC time of exposure start"),
    ])
    row = scan_one(path)
    assert row["frame_type"] == "light" and row["exposure"] == 300.0 and row["filter"] == "SII"
    assert row["temperature"] == pytest.approx(-34.9938) and row["set_temperature"] == -35.0
    assert row["readout_mode"] == "Monochrome" and row["egain"] == 1.5 and math.isnan(row["gain"])
    assert row["date_obs"] == pd.Timestamp("2018-07-04T14:03:03")


def _ccdsoft_file(path: Path, cards: list[str], data: np.ndarray) -> Path:
    """A file as CCDSoft writes it: no space before the SIMPLE comment, '+4.6E-001' floats, NUL padding."""
    text = "".join(c.ljust(80)[:80] for c in cards + ["END"])
    block = text.encode("ascii")
    block += b"\0" * (-len(block) % 2880)
    raw = (data.astype(np.int32) - 32768).astype(">i2").tobytes()
    raw += b"\0" * (-len(raw) % 2880)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(block + raw)
    return path


def test_ccdsoft_and_theskyx(tmp_path):
    ccdsoft = _ccdsoft_file(tmp_path / "slitview.00000352.BIAS.FIT", [
        "SIMPLE  =                    T/CCDSOFT-SOFTWARE BISQUE 2", "BITPIX  =                   16",
        "NAXIS   =                    2", "NAXIS1  =                   16", "NAXIS2  =                   12",
        "BSCALE  = +1.000000000000E+000", "BZERO   = +3.276800000000E+004", "BIAS    =                  100",
        "DATE-OBS= '2019-04-29          '", "TIME-OBS= '23:14:44            '",
        "CCDXBIN =                    3", "CCDYBIN =                    3", "TEMPERAT= -4.817803680962E+000",
        "INSTRUME= 'SBIG ST-7/7E/7XE    '", "E-GAIN  = +4.600000000000E-001", "EXPOSURE= +0.000000000000E+000",
    ], DATA)
    theskyx = write_cards(tmp_path / "dark_0001.fit", [
        ("IMAGETYP", "Dark Frame", "Type of image"), ("EXPTIME", 120.0, "Exposure time in seconds"),
        ("CCD-TEMP", -20.1, "CCD temperature at start of exposure in C"), ("SET-TEMP", -20.0, ""),
        ("XBINNING", 2, ""), ("YBINNING", 2, ""), ("EGAIN", 0.37, "Electrons per ADU"),
        ("DATE-OBS", "2022-11-04T03:10:00.250", "UTC start"), ("SWCREATE", "TheSkyX Version 10.5.0", ""),
    ])
    bias = scan_one(ccdsoft)
    assert bias["frame_type"] == "bias" and bias["exposure"] == 0.0  # no IMAGETYP: the name says
    assert bias["temperature"] == pytest.approx(-4.8178) and math.isnan(bias["set_temperature"])
    assert (bias["xbinning"], bias["ybinning"]) == (3, 3) and bias["egain"] == pytest.approx(0.46)
    assert math.isnan(bias["gain"]) and bias["date_obs"] == pd.Timestamp("2019-04-29T23:14:44")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = aw.open_frames([ccdsoft])
    np.testing.assert_array_equal(cube[0].values, DATA.astype(np.float32))  # BZERO '+3.2768E+004' applied
    dark = scan_one(theskyx)
    assert dark["frame_type"] == "dark" and dark["temperature"] == -20.1 and dark["egain"] == 0.37
    assert (dark["xbinning"], dark["ybinning"]) == (2, 2)


def test_theskyx_cmos_gain_setting_and_conversion_gain(tmp_path):
    """TheSkyX writes a CMOS camera's gain setting as GAINRAW and its e-/ADU as GAINADU (no GAIN, no EGAIN)."""
    path = write_cards(tmp_path / "light_0001.fit", [
        ("IMAGETYP", "Light Frame", "Type of image"), ("EXPTIME", 180.0, "Exposure time in seconds"),
        ("CCD-TEMP", -10.0, "CCD temperature at start of exposure in C"), ("GAINRAW", 100, "Gain factor"),
        ("GAINADU", 0.78, "Electrons per ADU"), ("SWCREATE", "TheSkyX Version 10.5.0", ""),
    ])
    light = scan_one(path)
    assert light["frame_type"] == "light" and light["gain"] == 100 and light["egain"] == 0.78
    # The other spellings still win when present: GAIN before GAINRAW, EGAIN before GAINADU.
    both = {"GAIN": 139, "GAINRAW": 100, "EGAIN": 1.0, "GAINADU": 0.78}
    assert (read_field(both, "gain"), read_field(both, "egain")) == (139, 1.0)


def test_kstars_ekos(tmp_path):
    """INDI (KStars / Ekos) types frames with FRAME, not IMAGETYP."""
    path = write_cards(tmp_path / "Dark" / "Dark_60_secs_2023-01-05T20-11-12_001.fits", [
        ("EXPTIME", 60.0, "Total Exposure Time (s)"), ("DARKTIME", 60.0, "Total Dark Exposure Time (s)"),
        ("CCD-TEMP", -10.0, "CCD Temperature (Celsius)"), ("PIXSIZE1", 3.76, "Pixel Size 1 (microns)"),
        ("XBINNING", 2, "Binning factor in width"), ("YBINNING", 2, "Binning factor in height"),
        ("FRAME", "Dark", "Frame Type"), ("IMAGETYP", "", ""), ("GAIN", 100.0, "Gain"), ("OFFSET", 50.0, "Offset"),
        ("FILTER", "L", "Filter"), ("INSTRUME", "ZWO CCD ASI533MC Pro", "CCD Name"),
        ("DATE-OBS", "2023-01-05T20:11:12.345", "UTC start date of observation"), ("BAYERPAT", "RGGB", ""),
    ])
    row = scan_one(path)
    assert row["frame_type"] == "dark" and row["type_reason"] == "header FRAME='Dark'"
    assert row["exposure"] == 60.0 and row["temperature"] == -10.0 and row["xbinning"] == 2
    assert row["gain"] == 100 and row["offset"] == 50 and row["filter"] == "L"
    assert row["date_obs"] == pd.Timestamp("2023-01-05T20:11:12.345")


def test_sharpcap(tmp_path):
    """SharpCap writes no IMAGETYP: the type comes from the capture folder."""
    path = write_cards(tmp_path / "darks" / "Capture_00001.fits", [
        ("SWCREATE", "SharpCap", ""), ("CCD-TEMP", 12.7, ""), ("YBINNING", 1, ""), ("XBINNING", 1, ""),
        ("YPIXSZ", 2.90000009536743, ""), ("EXPTIME", 2, ""), ("GAIN", 300, ""),
        ("DATE-OBS", "2019-04-29T20:25:29.8219583", "System Clock-Frame Grabbed"),
        ("XPIXSZ", 2.90000009536743, ""), ("INSTRUME", "ZWO ASI290MM Mini", ""),
    ])
    row = scan_one(path)
    assert row["frame_type"] == "dark" and row["type_reason"] == "file or folder name"
    assert row["exposure"] == 2 and row["temperature"] == 12.7 and row["gain"] == 300
    assert row["instrument"] == "ZWO ASI290MM Mini" and row["date_obs"] == pd.Timestamp("2019-04-29T20:25:29.821")


def test_asiair(tmp_path):
    path = write_cards(tmp_path / "Flat" / "Flat_1.5ms_Bin1_2600MC_gain100_20231015-213012_-10.0C_0001.fit", [
        ("CREATOR", "ZWO ASIAIR", "Capture software"), ("XORGSUBF", 0, ""), ("YORGSUBF", 0, ""),
        ("XBINNING", 1, "Camera X Bin"), ("YBINNING", 1, "Camera Y Bin"), ("CCDXBIN", 1, ""), ("CCDYBIN", 1, ""),
        ("XPIXSZ", 3.76, "pixel size in microns (with binning)"), ("IMAGETYP", "Flat", "Type of image"),
        ("EXPOSURE", 0.0015, "Exposure time in seconds"), ("EXPTIME", 0.0015, "Exposure time in seconds"),
        ("CCD-TEMP", -10.0, "sensor temperature in C"), ("SET-TEMP", -10.0, ""),
        ("DATE-OBS", "2023-10-15T13:30:12.123456", "Image created time"), ("FILTER", "L-eXtreme", ""),
        ("INSTRUME", "ZWO ASI2600MC Pro", "Camera model"), ("BAYERPAT", "RGGB", "Bayer pattern"),
        ("GAIN", 100, "Gain Value"), ("OFFSET", 50, ""),
    ])
    row = scan_one(path)
    assert row["frame_type"] == "flat" and row["exposure"] == 0.0015 and row["filter"] == "L-eXtreme"
    assert row["gain"] == 100 and row["offset"] == 50 and row["temperature"] == -10.0
    assert row["bayer_pattern"] == "RGGB" and row["date_obs"] == pd.Timestamp("2023-10-15T13:30:12.123")


def test_lois_iraf_style_observatory(tmp_path):
    """OBSTYPE, CCDSUM 'x y', DETTEMP, FILTNAME, READOUTM, a date-only DATE-OBS with UTCSTART, GAIN in e-/ADU."""
    common = [("CCDSUM", "3 3", "on-chip summation"), ("FILTNAME", "V", "filter name"),
              ("DATE-OBS", "2019-10-01", "UT date of observation"), ("UTCSTART", "03:12:45.67", "UT start"),
              ("GAIN", 2.89, "[e-/ADU] detector gain"), ("INSTRUME", "LOIS", "")]
    flat = write_cards(tmp_path / "lmi.0012.fits", [("OBSTYPE", "DOME FLAT", "observation type"),
                                                     ("EXPTIME", 4.0, ""), ("DETTEMP", -110.2, "[C] detector")]
                       + common + [("READOUTM", "Low Gain", "readout mode")])
    bias = write_cards(tmp_path / "lmi.0001.fits", [("OBSTYPE", "BIAS", "observation type"), ("EXPTIME", 0.0, ""),
                                                    ("DETTEMP", 163.0, "detector temperature")]
                       + common + [("READOUTM", "High Gain", "readout mode")])
    f, b = scan_one(flat), scan_one(bias)
    assert f["frame_type"] == "flat" and f["type_reason"] == "header OBSTYPE='DOME FLAT'"
    assert (f["xbinning"], f["ybinning"]) == (3, 3) and f["filter"] == "V"
    assert f["temperature"] == -110.2 and b["temperature"] == pytest.approx(163.0 - 273.15)  # kelvin
    assert f["egain"] == 2.89 and math.isnan(f["gain"])  # GAIN in e-/ADU is not a gain setting
    assert f["date_obs"] == pd.Timestamp("2019-10-01T03:12:45.670")
    assert b["frame_type"] == "bias" and (f["readout_mode"], b["readout_mode"]) == ("Low Gain", "High Gain")


class _Ratio:
    def __init__(self, num, den):
        self.num, self.den = num, den


class _Tag:
    def __init__(self, values):
        self.values = values


def test_dslr_exif(monkeypatch, tmp_path):
    """What the raw reader maps from EXIF (exposure, ISO, date, camera) normalises like a FITS header."""
    import exifread

    from astrocal_widgets.io import sources

    tags = {"EXIF ExposureTime": _Tag([_Ratio(1, 4000)]), "EXIF ISOSpeedRatings": _Tag([1600]),
            "EXIF DateTimeOriginal": _Tag("2020:08:14 22:10:05"), "Image Model": _Tag("Canon EOS 6D")}
    monkeypatch.setattr(exifread, "process_file", lambda f, details=False: tags)
    raw = tmp_path / "BIAS" / "IMG_0001.CR2"
    raw.parent.mkdir()
    raw.write_bytes(b"not read by the fake exifread")
    header = {"BAYERPAT": "RGGB", "BLKLEVEL": 2047.0, "DATAMAX": 15000.0}  # what _open_raw adds from rawpy
    header.update(sources._exif_header(raw))
    meta = frame_metadata(header, raw, (24, 32))
    assert meta["frame_type"] == "bias" and meta["exposure"] == pytest.approx(1 / 4000)
    assert meta["iso"] == 1600 and meta["offset"] == 2047.0 and meta["bayer_pattern"] == "RGGB"
    assert meta["date_obs"] == np.datetime64("2020-08-14T22:10:05")
    assert meta["instrument"] == "Canon EOS 6D" and math.isnan(meta["temperature"]) and math.isnan(meta["egain"])


# --- extending the table -------------------------------------------------------------------------

def test_scan_aliases_add_keywords_for_one_scan(tmp_path):
    path = write_cards(tmp_path / "bias_001.fits", [("CAMMODE", "Low Noise", ""), ("GAIN_E", "0.25", "")])
    plain = scan_one(path)
    assert plain["readout_mode"] == "" and math.isnan(plain["egain"])
    row = scan_one(path, aliases={"readout_mode": "CAMMODE", "egain": ["GAIN_E"]})
    assert row["readout_mode"] == "Low Noise" and row["egain"] == 0.25
    cat = aw.scan(tmp_path, aliases={"readout_mode": "CAMMODE"})
    assert cat.groups()[0].open()["readout_mode"].values.tolist() == ["Low Noise"]  # the cube reads them too
    with pytest.raises(KeyError, match="unknown header field 'readmode'.*readout_mode"):
        aw.scan(tmp_path, aliases={"readmode": "CAMMODE"})


def test_register_keywords_reaches_every_reader(monkeypatch, tmp_path):
    monkeypatch.setitem(HEADER_FIELDS, "exposure", HEADER_FIELDS["exposure"])  # restored after the test
    path = write_cards(tmp_path / "dark_001.fits", [("IMAGETYP", "DARK", ""), ("EXP", "15", "[s]")])
    assert math.isnan(scan_one(path)["exposure"])
    register_keywords("exposure", "EXP")
    assert scan_one(path)["exposure"] == 15.0
    assert HEADER_FIELDS["exposure"].keyword_names[0] == "EXP"
    from astrocal_widgets.calibrate.matching import frame_info
    assert frame_info(path).exposure == 15.0  # the matching rules read it too
    register_keywords("exposure", HeaderKeyword("EXP", parse=lambda v: float(v) / 1000))  # milliseconds
    assert read_field({"EXP": "1500"}, "exposure") == 1.5 and HEADER_FIELDS["exposure"].keyword_names.count("EXP") == 1
    with pytest.raises(KeyError, match="unknown header field"):
        register_keywords("exposur", "EXP")


def test_keyword_priority_and_separate_fields():
    header = fits.Header([("CCD-TEMP", -10.0), ("DETTEMP", -50.0), ("SET-TEMP", -12.0), ("GAIN", 139),
                          ("EGAIN", 0.8), ("CCDSUM", "1 2"), ("DATE-OBS", "2022-01-02T03:04:05"),
                          ("TIME-OBS", "23:00:00")])
    meta = frame_metadata(header, "x.fits")
    assert meta["temperature"] == -10.0 and meta["set_temperature"] == -12.0
    assert meta["gain"] == 139 and meta["egain"] == 0.8
    assert (meta["xbinning"], meta["ybinning"]) == (1, 2)
    assert meta["date_obs"] == np.datetime64("2022-01-02T03:04:05")  # a full DATE-OBS wins over TIME-OBS
    assert read_field({"BINNING": "2*2"}, "ybinning") == 2.0


# --- real data ---------------------------------------------------------------------------------

def test_sbig_st7_slitview_scans_with_types_temperature_binning_egain_and_time(realdata):
    root = realdata / "sbig_st7_slitview"
    before = tree_hashes(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cat = aw.scan(root)
    t = cat.table
    assert len(t) == 8 and len(cat.skipped) == 0 and len(cat.unclassified) == 0
    assert t["frame_type"].value_counts().to_dict() == {"bias": 5, "flat": 3}
    assert sorted(t["exposure"].unique()) == [0.0, 6.0]
    assert t["temperature"].between(-5.5, -4.5).all() and t["set_temperature"].isna().all()
    assert (t["xbinning"] == 1).all() and (t["ybinning"] == 1).all()
    assert (t["egain"] == 0.46).all() and t["gain"].isna().all()
    assert t["date_obs"].notna().all() and (t["date_obs"].dt.hour == 23).all()  # date + TIME-OBS
    first = t.sort_values("path").iloc[0]
    assert first["date_obs"] == pd.Timestamp("2019-04-29T23:14:44")
    assert [g.frame_type for g in cat.groups()] == ["bias", "flat"]
    assert tree_hashes(root) == before


@pytest.mark.parametrize("name", ["sbig_st402_spectro", "sbig_st7_slitview", "seestar_s50_osc_lights",
                                  "tircam2_ic310"])
def test_every_real_set_still_scans(realdata, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cat = aw.scan(realdata / name)
    assert len(cat) > 0 and len(cat.skipped) == 0
    assert {"egain", "readout_mode"} <= set(cat.table.columns)
    if name == "sbig_st402_spectro":
        assert (cat.table["egain"] == 1.49).all()  # EGAIN, with no GAIN keyword


def test_the_docs_list_every_keyword_of_the_table():
    text = (Path(__file__).resolve().parents[2] / "docs" / "headers.md").read_text()
    for entry in HEADER_FIELDS.values():
        assert f"`{entry.name}`" in text, entry.name
        for keyword in entry.keyword_names:
            assert f"`{keyword}`" in text, f"{entry.name}: {keyword}"
