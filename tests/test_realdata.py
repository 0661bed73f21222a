"""Real camera frames (see conftest.REALDATA; skipped when the folder is absent)."""
import numpy as np
import pytest
from astropy.io import fits

import astrocal_widgets as aw

from conftest import tree_hashes


def test_sbig_ccdsoft_session(realdata):
    root = realdata / "sbig_st402_spectro"
    before = tree_hashes(root)
    cat = aw.scan(root)
    assert len(cat) == 38 and len(cat.skipped) == 0 and len(cat.unclassified) == 0
    t = cat.table.set_index(cat.table["path"].str.rsplit("/", n=1).str[-1])
    # Flats typed 'Light Frame' by CCDSoft are flats by their names; dark flats by their names too.
    flats = t[t.index.str.startswith("L2-flat-")]
    assert len(flats) == 9 and set(flats["frame_type"]) == {"flat"}
    assert flats["type_reason"].str.contains("Light Frame").all()
    darkflats = t[t.index.str.startswith("L2-dark-flat-360")]
    assert len(darkflats) == 5 and set(darkflats["frame_type"]) == {"darkflat"}
    assert set(t.loc[t.index.str.startswith("L2-sci-"), "frame_type"]) == {"light"}
    # Asymmetric binning, temperatures, exposure
    assert set(t["xbinning"]) == {1.0} and set(t["ybinning"]) == {2.0}
    assert t["set_temperature"].eq(-15).all()
    darks = {g.key["exposure"]: len(g) for g in cat.groups("dark")}
    assert darks == {240.0: 5, 1200.0: 5}  # -14.81 and -15.23 °C are one set point
    cube = cat.groups("darkflat")[0].open()
    assert cube.shape == (5, 255, 765) and cube.dtype == np.float32
    ref = fits.getdata(cube["path"].values[2]).astype(np.float32)
    np.testing.assert_array_equal(cube[2].values, ref)
    assert tree_hashes(root) == before


def test_tircam_types_from_names_and_string_exposure(realdata):
    cat = aw.scan(realdata / "tircam2_ic310")
    counts = cat.table["frame_type"].value_counts().to_dict()
    assert counts == {"": 5, "flat": 5, "bias": 3}
    # The lights carry no type anywhere: listed as unclassified, never dropped or guessed.
    assert cat.unclassified["path"].str.contains("IC310_").all()
    assert sorted(cat.table["exposure"].unique()) == [0.0, 6.0, 40.0]  # EXPTIME stored as strings
    assert cat.table["temperature"].isna().all() and cat.table["xbinning"].isna().all()
    flats = cat.groups("flat")[0].open()
    assert float(flats[:, 200:210].mean()) > 30000  # offset-dominated infrared array


def test_seestar_osc_bayer_and_portrait(realdata):
    cube = aw.open_frames(realdata / "seestar_s50_osc_lights")
    assert cube.shape == (6, 1920, 1080)
    assert set(cube["bayer_pattern"].values) == {"GRBG"} and set(cube["frame_type"].values) == {"light"}
    assert (cube["gain"] == 80).all() and np.isnan(cube["offset"].values).all()
    assert not np.isnat(cube["date_obs"].values).any()
    assert (cube["temperature"] > 20).all()
    band = cube[:, 100:104].values
    ref = fits.getdata(cube["path"].values[0])[100:104].astype(np.float32)
    np.testing.assert_array_equal(band[0], ref)
    cat = aw.scan(realdata / "seestar_s50_osc_lights")
    assert [g.frame_type for g in cat.groups()] == ["light"]


def test_calibrate_sbig_session_strict_and_lenient(realdata, tmp_path):
    """A real night with gaps: no bias, no dark flats for the 180 s flats, no darks for short lights."""
    from astrocal_widgets.calibrate import calibrate_session

    root = realdata / "sbig_st402_spectro"
    before = tree_hashes(root)
    with pytest.raises(aw.AstrocalError, match=r"no dark flat or bias for 5 of the 9 flats.*L2-flat-red-180"):
        calibrate_session(root, output=tmp_path / "strict")
    result = calibrate_session(root, output=tmp_path / "lenient", strict=False)
    assert any("left out of the master flat" in w for w in result.warnings)
    flat = fits.getheader(next((tmp_path / "lenient" / "masters").glob("master_flat_*.fits")))
    assert flat["NCOMBINE"] == 4  # the 360 s flats, calibrated by their dark flats
    by_name = {l.source.rsplit("/", 1)[-1]: l for l in result.lights}
    short = by_name["L2-arc-neon.00000000.FIT"]  # 60 s: only 240 s / 1200 s darks, no bias to scale them
    assert short.dark is None and fits.getheader(short.output)["DARKFILE"] == ""
    matched = by_name["L2-sci-hg-240.00000000.FIT"]
    assert matched.dark.endswith("master_dark_240s_-15C_1x2_765x255.fits") and matched.dark_scale == 1.0
    assert tree_hashes(root) == before


def test_checks_on_real_bias_with_a_too_low_offset(realdata):
    """The ST-7's bias (about 110 ADU, 38 ADU of noise) really clips: its zeros are the noise's tail."""
    from astrocal_widgets.quality import check_session

    report = check_session(realdata / "sbig_st7_slitview")
    zero = [c for c in report.get("zero_pixels")]
    assert len(zero) == 5 and all(c.status == "fail" for c in zero)
    assert all("raise the camera's offset" in c.explanation and "dead" not in c.explanation for c in zero)
    # The zeros are where the Gaussian tail puts them (measured 0.13-0.32 %; predicted within 10 %).
    for c in zero:
        predicted = float(c.explanation.split("which puts ")[1].split(" %")[0]) / 100
        assert c.value == pytest.approx(predicted, rel=0.15)
    lines = [l for l in report.summary().splitlines() if "zero_pixels" in l]
    assert len(lines) == 1 and "5 of 5 frames fail" in lines[0]
    assert "ALGORITHMS" not in report.summary()


def test_checks_on_real_spectrograph_flats(realdata):
    """Two lamps' flats in one set: their level jumps between sources, which stays a FAIL."""
    from astrocal_widgets.quality import check_session

    report = check_session(realdata / "sbig_st402_spectro", kind="flat")
    drift = report.one("level_drift")
    assert drift.status == "fail" and "back and forth" in drift.explanation
    assert sum("outlier" in l for l in report.summary().splitlines()) == 1
