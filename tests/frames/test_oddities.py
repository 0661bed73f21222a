"""Duplicates, strays and sets of one frame: found by scan, reported by scan, check and calibrate."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.frames import oddities

from conftest import tree_hashes, write_frame

SHAPE = (20, 30)


def noisy(rng, level, shape=SHAPE):
    return rng.normal(level, 5.0, shape).round().astype(np.uint16)


@pytest.fixture
def odd_night(tmp_path):
    """5 bias, 5 darks plus a copy, a re-headered duplicate and a dark of another size, one flat."""
    root = tmp_path / "night"
    rng = np.random.default_rng(3)
    for i in range(5):
        write_frame(root / "BIAS" / f"bias_{i:04d}.fits", noisy(rng, 500), {"IMAGETYP": "BIAS", "EXPTIME": 0.0})
        write_frame(root / "DARK" / f"dark_{i:04d}.fits", noisy(rng, 520), {"IMAGETYP": "DARK", "EXPTIME": 300.0})
    shutil.copy(root / "DARK" / "dark_0001.fits", root / "DARK" / "dark_0001 (1).fits")
    write_frame(root / "DARK" / "dark_0002_copy.fits", fits.getdata(root / "DARK" / "dark_0002.fits"),
                {"IMAGETYP": "DARK", "EXPTIME": 300.0, "OBSERVER": "someone else"})
    write_frame(root / "DARK" / "dark_stray.fits", noisy(rng, 520, (10, 30)), {"IMAGETYP": "DARK", "EXPTIME": 300.0})
    write_frame(root / "FLAT" / "flat_L_0000.fits", noisy(rng, 20000), {"IMAGETYP": "FLAT", "EXPTIME": 2.0,
                                                                      "FILTER": "L"})
    return root


ODD_FILES = ("dark_0001.fits", "dark_0001 (1).fits", "dark_0002_copy.fits", "dark_stray.fits", "flat_L_0000.fits")


def test_scan_finds_duplicates_strays_and_single_frame_sets(odd_night):
    before = tree_hashes(odd_night)
    cat = aw.scan(odd_night)
    dup = {p.rsplit("/", 1)[-1]: (d.rsplit("/", 1)[-1], same) for p, d, same in cat.duplicates.itertuples(index=False)}
    # Of frames with the same pixels the first by sorted path is kept; the report names both.
    assert dup == {"dark_0001.fits": ("dark_0001 (1).fits", "file"),
                   "dark_0002_copy.fits": ("dark_0002.fits", "pixels")}
    assert not cat.table["path"].isin(cat.duplicates["path"]).any()
    assert list(cat.strays["path"].str.rsplit("/", n=1).str[-1]) == ["dark_stray.fits"]
    darks = cat.groups("dark")
    assert len(darks) == 1 and len(darks[0]) == 5  # no copy stacked twice, no master of the stray
    assert not any("dark_stray" in p for g in cat.groups() for p in g.paths)
    assert [g.frame_type for g in cat.single_frame_sets()] == ["flat"]
    summary = cat.summary()
    for name in ODD_FILES:
        assert name in summary, name
    assert len(cat.warnings) == 4 and all(any(name in w for w in cat.warnings) for name in ODD_FILES)
    assert tree_hashes(odd_night) == before


def test_check_and_calibrate_report_every_odd_file(odd_night, tmp_path):
    report = aw.check_session(odd_night)
    named = {c.name: c for c in report if c.name in ("duplicates", "strays", "single_frame_sets")}
    assert set(named) == {"duplicates", "strays", "single_frame_sets"}
    assert all(c.status == "warn" for c in named.values())
    assert named["duplicates"].value == 2 and "dark_0001 (1).fits" in named["duplicates"].explanation
    assert "dark_stray.fits" in named["strays"].explanation
    assert "flat_L_0000.fits" in named["single_frame_sets"].explanation

    result = aw.calibrate_session(odd_night, output=tmp_path / "out")
    for name in ODD_FILES:
        assert any(name in w for w in result.warnings), name
    masters = {m.frame_type: m for m in result.masters}
    assert fits.getheader(masters["dark"].path)["NCOMBINE"] == 5  # duplicates and the stray left out
    assert masters["flat"].n_frames == 1 and "DOUBTFUL" in result.summary()
    assert not any("10x30" in m.label for m in result.masters)


def run(*args):
    return subprocess.run([sys.executable, "-m", "astrocal_widgets", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def test_cli_names_every_odd_file_in_scan_check_and_calibrate(odd_night, tmp_path):
    for args in (("scan", odd_night), ("check", odd_night), ("calibrate", odd_night, "--output", tmp_path / "o")):
        result = run(*args)
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
        for name in ODD_FILES:
            assert name in result.stdout, (args[0], name, result.stdout)


def test_duplicate_search_hashes_only_frames_that_could_be_equal(tmp_path):
    rng = np.random.default_rng(5)
    for i in range(30):
        write_frame(tmp_path / f"light_{i:04d}.fits", noisy(rng, 1000), {"IMAGETYP": "LIGHT", "EXPTIME": 60.0})
    write_frame(tmp_path / "other_size.fits", noisy(rng, 1000, (21, 30)), {"IMAGETYP": "LIGHT", "EXPTIME": 60.0})
    oddities._span_digest.cache_clear()
    oddities._sample_digest.cache_clear()
    assert len(aw.scan(tmp_path).duplicates) == 0
    # 30 frames of one size: a few kilobytes each; none hashed in full; the odd size not even sampled.
    assert oddities._sample_digest.cache_info().misses == 30
    assert oddities._span_digest.cache_info().misses == 0
    shutil.copy(tmp_path / "light_0007.fits", tmp_path / "light_0007 - Copy.fits")
    oddities._span_digest.cache_clear()
    cat = aw.scan(tmp_path)
    assert oddities._span_digest.cache_info().misses == 2  # the copy and its original only
    assert list(cat.duplicates["duplicate_of"].str.endswith("light_0007 - Copy.fits")) == [True]


def test_constant_frames_are_duplicates_only_when_byte_identical(tmp_path):
    flat = np.full(SHAPE, 1000, np.uint16)
    write_frame(tmp_path / "a.fits", flat, {"IMAGETYP": "BIAS", "XBINNING": 1})
    write_frame(tmp_path / "b.fits", flat, {"IMAGETYP": "BIAS", "XBINNING": 2})  # same pixels, not a copy
    assert len(aw.scan(tmp_path).duplicates) == 0
    shutil.copy(tmp_path / "a.fits", tmp_path / "c.fits")
    dup = aw.scan(tmp_path).duplicates
    assert list(dup["path"].str.endswith("c.fits")) == [True] and list(dup["same"]) == ["file"]


def test_a_light_of_its_own_is_not_doubtful_but_a_stray_light_is_left_out(tmp_path):
    rng = np.random.default_rng(6)
    write_frame(tmp_path / "light_a.fits", noisy(rng, 900), {"IMAGETYP": "LIGHT", "EXPTIME": 60.0, "FILTER": "R"})
    cat = aw.scan(tmp_path)
    assert cat.single_frame_sets() == [] and cat.warnings == []
    write_frame(tmp_path / "light_b.fits", noisy(rng, 900), {"IMAGETYP": "LIGHT", "EXPTIME": 60.0, "FILTER": "L"})
    write_frame(tmp_path / "light_c.fits", noisy(rng, 900, (40, 60)), {"IMAGETYP": "LIGHT", "EXPTIME": 60.0})
    cat = aw.scan(tmp_path)
    assert list(cat.strays["path"].str.endswith("light_c.fits")) == [True]
    assert sorted(len(g) for g in cat.groups("light")) == [1, 1]
