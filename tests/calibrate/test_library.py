"""MasterLibrary and find_master: choosing among masters, with reasons, across nights."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import astrocal_widgets as aw
from astrocal_widgets.calibrate.library import LIBRARY_COLUMNS, MasterLibrary, NotAMasterError, find_master
from astrocal_widgets.calibrate.matching import check_compatibility
from astrocal_widgets.errors import AstrocalError

from conftest import write_frame
from test_matching import LIGHT_PATH, SHAPE, light, write_master


def refused_reasons(choice, name: str) -> list[str]:
    found = [reasons for path, reasons in choice.refused if Path(path).name == name]
    assert len(found) == 1, choice.refused
    return found[0]


@pytest.fixture
def darks(tmp_path) -> Path:
    """A library of darks and others: one best dark, and one reason to refuse or outrank each other."""
    lib = tmp_path / "masters" / "2022-04-10"
    write_master(lib / "master_dark_300s_-10C.fits", "dark", NCOMBINE=20)
    write_master(lib / "master_dark_300s_-10.6C_50.fits", "dark", CCD_TEMP=-10.6, NCOMBINE=50)
    write_master(lib / "master_dark_300s_-15C.fits", "dark", CCD_TEMP=-15.0, SET_TEMP=-15.0)
    write_master(lib / "master_dark_120s_-10C.fits", "dark", EXPTIME=120.0, EXPOSURE=120.0)
    write_master(lib / "master_dark_300s_g100.fits", "dark", GAIN=100)
    write_master(lib / "master_flat_Ha.fits", "flat")
    write_master(lib / "master_bias.fits", "bias")
    return tmp_path / "masters"


def test_library_table(darks):
    write_master(darks / "2022-04-10" / "master_darkflat.fits", "darkflat")
    write_frame(darks / "raw" / "dark_0001.fits", np.zeros(SHAPE, np.uint16),
                {"IMAGETYP": "DARK", "EXPTIME": 300.0})
    (darks / "broken.fits").write_bytes(b"SIMPLE  = junk")
    lib = MasterLibrary(darks)
    assert list(lib.table.columns) == list(LIBRARY_COLUMNS) and len(lib) == 8
    assert sorted(lib.table["master_type"]) == ["bias", "dark", "dark", "dark", "dark", "dark", "darkflat", "flat"]
    row = lib.table[lib.table["path"].str.endswith("master_dark_300s_-10.6C_50.fits")].iloc[0]
    assert (row["exposure"], row["temperature"], row["gain"], row["offset"], row["ncombine"]) == (300.0, -10.6, 139, 21, 50)
    assert (row["height"], row["width"]) == SHAPE and row["date_obs"] == pd.Timestamp("2022-04-10T23:00")
    assert lib.ignored == [str(darks / "raw" / "dark_0001.fits")]          # a frame, not a master
    assert list(lib.skipped["path"]) == [str(darks / "broken.fits")]      # listed, not dropped
    assert "8 masters" in repr(lib)


def test_choice_among_several_with_reasons(darks):
    lib = MasterLibrary(darks)
    choice = find_master(light(), lib, role="dark")
    assert choice and Path(choice.path).name == "master_dark_300s_-10C.fits" and choice.dark_scale == 1.0
    assert choice.reason == ("master_dark_300s_-10C.fits: same exposure 300 s, temperature -10.0 °C "
                             "(light -9.9 °C), gain 139, offset 21; 20 frames; preferred over 1 other "
                             "compatible master(s), 3 incompatible refused")
    assert choice.warnings == [] and choice.info.n_frames == 20
    # every other dark is in the refused list, with its reason; masters of other types are not
    assert len(choice.refused) == 4
    closest = refused_reasons(choice, "master_dark_300s_-10.6C_50.fits")
    assert closest == ["compatible, but not chosen: temperature -10.6 °C is 0.7 °C from the light's -9.9 °C, "
                       "master_dark_300s_-10C.fits only 0.1 °C"]
    (cold,) = refused_reasons(choice, "master_dark_300s_-15C.fits")
    assert cold.startswith("temperature:") and "-15.0 °C" in cold and "-9.9 °C" in cold
    (short,) = refused_reasons(choice, "master_dark_120s_-10C.fits")
    assert short.startswith("exposure:") and "120 s" in short
    (gain,) = refused_reasons(choice, "master_dark_300s_g100.fits")
    assert gain.startswith("gain:") and "gain 100" in gain
    # the compatible-but-outranked come first
    assert Path(choice.refused[0][0]).name == "master_dark_300s_-10.6C_50.fits"
    assert "not master_dark_300s_-15C.fits: temperature" in str(choice)
    # the chosen one really is compatible
    assert check_compatibility(light(), choice.path, role="dark") == []


def test_most_frames_then_newest(tmp_path):
    lib = tmp_path / "lib"
    write_master(lib / "a_20.fits", "dark", NCOMBINE=20)
    write_master(lib / "b_50_old.fits", "dark", NCOMBINE=50, DATE_OBS="2022-01-01T22:00:00")
    write_master(lib / "c_50_new.fits", "dark", NCOMBINE=50, DATE_OBS="2022-03-01T22:00:00")
    choice = find_master(light(), lib, role="dark")  # a folder works as the library too
    assert Path(choice.path).name == "c_50_new.fits" and "; 50 frames" in choice.reason
    assert refused_reasons(choice, "b_50_old.fits") == [
        "compatible, but not chosen: older (2022-01-01 22:00) than c_50_new.fits (2022-03-01 22:00)"]
    assert refused_reasons(choice, "a_20.fits") == ["compatible, but not chosen: 20 frames while c_50_new.fits has 50"]


def test_exact_exposure_before_scalable_and_longer_before_shorter(tmp_path):
    lib = tmp_path / "lib"
    write_master(lib / "dark_600s.fits", "dark", EXPTIME=600.0, EXPOSURE=600.0, CCD_TEMP=-9.9, NCOMBINE=100)
    write_master(lib / "dark_60s.fits", "dark", EXPTIME=60.0, EXPOSURE=60.0, CCD_TEMP=-9.9, NCOMBINE=100)
    write_master(lib / "dark_300s.fits", "dark", CCD_TEMP=-10.5, NCOMBINE=10)
    library = MasterLibrary(lib)
    exact = find_master(light(), library, role="dark", allow_dark_scaling=True)
    assert Path(exact.path).name == "dark_300s.fits" and exact.dark_scale == 1.0
    assert "needs dark scaling (600 s for the 300 s light)" in refused_reasons(exact, "dark_600s.fits")[0]
    (library.folder / "dark_300s.fits").unlink()
    library.refresh()
    scaled = find_master(light(), library, role="dark", allow_dark_scaling=True)
    assert Path(scaled.path).name == "dark_600s.fits" and scaled.dark_scale == pytest.approx(0.5)
    assert "scaled by k = 0.5" in scaled.reason and "master bias" in scaled.reason
    assert "k = 5 while dark_600s.fits needs k = 0.5" in refused_reasons(scaled, "dark_60s.fits")[0]
    # without scaling nothing fits, and the reason says why
    none = find_master(light(), library, role="dark")
    assert none.path is None and not none and none.dark_scale is None
    assert "no compatible master dark" in none.reason and "exposure (2)" in none.reason
    assert len(none.refused) == 2


def test_bias_and_regulated_darks_reused_across_nights(tmp_path):
    lib = tmp_path / "masters"
    bias = write_master(lib / "2022-03-01" / "master_bias.fits", "bias", DATE_OBS="2022-03-01T20:00:00")
    dark = write_master(lib / "2022-03-15" / "master_dark_300s.fits", "dark", DATE_OBS="2022-03-15T23:00:00")
    night = light(date_obs=pd.Timestamp("2022-04-10T23:30:00"))
    library = MasterLibrary(lib)
    b = find_master(night, library, role="bias")
    assert b.path == str(bias) and "reused from the night of 2022-03-01 (light: 2022-04-10)" in b.reason
    d = find_master(night, library, role="dark")
    assert d.path == str(dark) and "reused from the night of 2022-03-15" in d.reason


def test_unregulated_darks_only_match_their_night(tmp_path):
    lib = tmp_path / "masters"
    dslr_keys = dict(GAIN=None, OFFSET=None, CCD_TEMP=None, SET_TEMP=None, ISOSPEED=800, INSTRUME="Canon EOS 6D")
    other = write_master(lib / "night1" / "master_dark.fits", "dark", DATE_OBS="2022-04-01T22:00:00", NCOMBINE=50,
                         **dslr_keys)
    same = write_master(lib / "night2" / "master_dark.fits", "dark", DATE_OBS="2022-04-11T01:00:00", NCOMBINE=10,
                        **dslr_keys)
    dslr = light(gain=math.nan, offset=math.nan, iso=800.0, temperature=math.nan, set_temperature=math.nan,
                 instrument="Canon EOS 6D")
    choice = find_master(dslr, lib, role="dark")
    assert choice.path == str(same)
    assert [w.rule for w in choice.warnings] == ["temperature_unknown"] and "warnings: temperature" in choice.reason
    assert [path for path, _ in choice.refused] == [str(other)]
    (why,) = choice.refused[0][1]
    assert why.startswith("night:") and "2022-04-01" in why and "2022-04-10" in why


def test_empty_library_and_no_master_of_that_type(tmp_path):
    empty = MasterLibrary(tmp_path / "empty_but_there")
    assert len(empty) == 0 and list(empty.table.columns) == list(LIBRARY_COLUMNS)
    choice = find_master(light(), empty, role="dark")
    assert choice.path is None and choice.refused == [] and not choice
    assert "no master dark" in choice.reason and "does not exist" in choice.reason and LIGHT_PATH in choice.reason
    (tmp_path / "lib").mkdir()
    choice = find_master(light(), tmp_path / "lib", role="bias")
    assert choice.path is None and "holds no masters" in choice.reason
    write_master(tmp_path / "lib" / "master_flat.fits", "flat")
    choice = find_master(light(), tmp_path / "lib", role="dark")
    assert choice.path is None and "holds only 1 master flat" in choice.reason


def test_darkflat_role_prefers_dark_flats_but_takes_nina3_darks(tmp_path):
    lib = tmp_path / "lib"
    write_master(lib / "master_dark_2s.fits", "dark", EXPTIME=2.0, EXPOSURE=2.0, NCOMBINE=50)
    write_master(lib / "master_darkflat_2s.fits", "darkflat", NCOMBINE=10)
    flat = light(frame_type="flat", exposure=2.0, path="/data/FLAT/flat_0001.fits")
    library = MasterLibrary(lib)
    choice = find_master(flat, library, role="darkflat")
    assert Path(choice.path).name == "master_darkflat_2s.fits" and "same exposure 2 s as the flat" in choice.reason
    assert "a master dark while master_darkflat_2s.fits is a master dark flat" in \
        refused_reasons(choice, "master_dark_2s.fits")[0]
    (lib / "master_darkflat_2s.fits").unlink()
    assert Path(library.refresh().find(flat, role="darkflat").path).name == "master_dark_2s.fits"


def test_flat_by_filter(tmp_path):
    lib = tmp_path / "lib"
    write_master(lib / "master_flat_OIII.fits", "flat", FILTER="OIII")
    write_master(lib / "master_flat_Ha.fits", "flat", FILTER="Ha")
    choice = find_master(light(), lib, role="flat")
    assert Path(choice.path).name == "master_flat_Ha.fits" and "filter Ha" in choice.reason
    assert refused_reasons(choice, "master_flat_OIII.fits")[0].startswith("filter:")


def test_add_and_refresh(tmp_path):
    library = MasterLibrary(tmp_path / "lib")
    elsewhere = write_master(tmp_path / "session" / "master_bias.fits", "bias")
    row = library.add(elsewhere)
    assert row["master_type"] == "bias" and row["path"] == str(elsewhere) and len(library) == 1
    assert library.add(elsewhere)["ncombine"] == 20 and len(library) == 1         # again: re-read, not doubled
    write_master(tmp_path / "lib" / "master_dark.fits", "dark")
    assert len(library) == 1 and len(library.refresh()) == 2                    # refresh keeps added masters
    assert find_master(light(), library, role="bias").path == str(elsewhere)
    frame = write_frame(tmp_path / "session" / "bias_0001.fits", np.zeros(SHAPE, np.uint16), {"IMAGETYP": "BIAS"})
    with pytest.raises(NotAMasterError, match="not a master") as info:
        library.add(frame)
    assert isinstance(info.value, AstrocalError)
    with pytest.raises(AstrocalError):
        library.add(tmp_path / "missing.fits")


def test_group_and_real_master_round_trip(tmp_path):
    """A master written by write_master is found again for the light group it was made for."""
    base = {"EXPTIME": 300.0, "SET-TEMP": -10.0, "GAIN": 139, "OFFSET": 21, "XBINNING": 1, "YBINNING": 1,
            "INSTRUME": "ZWO ASI2600MM Pro"}
    rng = np.random.default_rng(0)
    for i in range(3):
        write_frame(tmp_path / "n1" / "DARK" / f"d_{i}.fits", rng.integers(900, 1100, SHAPE).astype(np.uint16),
                    {**base, "IMAGETYP": "DARK", "CCD-TEMP": -10.0 + 0.1 * i, "DATE-OBS": f"2022-04-10T23:0{i}:00"})
        write_frame(tmp_path / "n2" / "LIGHT" / f"l_{i}.fits", rng.integers(900, 1100, SHAPE).astype(np.uint16),
                    {**base, "IMAGETYP": "LIGHT", "FILTER": "Ha", "CCD-TEMP": -9.8,
                     "DATE-OBS": f"2022-05-01T23:0{i}:00"})
    dark_group = aw.scan(tmp_path / "n1").groups("dark")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few frames: integrate may warn about the rejection
        master = aw.write_master(aw.integrate(dark_group), tmp_path / "masters" / f"master_{dark_group.slug}.fits")
    lights = aw.scan(tmp_path / "n2").groups("light")[0]
    choice = find_master(lights, MasterLibrary(tmp_path / "masters"), role="dark")
    assert choice.path == str(master)
    assert choice.reason.startswith(f"master_{dark_group.slug}.fits: same exposure 300 s, temperature -9.9 °C "
                                    f"(light group -9.8 °C), gain 139, offset 21; 3 frames")
    assert "reused from the night of 2022-04-10" in choice.reason
