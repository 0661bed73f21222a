"""scan(): catalogue from headers only, calibration groups, NINA 3 dark flats, skipped files."""
import re
import time

import numpy as np
import pytest

import astrocal_widgets as aw
from astrocal_widgets.io import READ_STATISTICS

from conftest import tree_hashes, write_frame

SMALL = np.full((8, 10), 1000, np.uint16)


def nina(root, kind, n, exposure, *, filt="", temp=-10.0, imagetyp=None, gain=139, offset=21, start=0):
    """NINA's default layout: <night>/<IMAGETYPE>/<date>_<time>_<filter>_<temp>_<exp>s_<nnnn>.fits"""
    paths = []
    for i in range(n):
        name = f"2022-04-10_21-03-{i:02d}_{filt or 'NoFilter'}_{temp:.2f}_{exposure:.2f}s_{start + i:04d}.fits"
        header = {"IMAGETYP": imagetyp or kind.upper(), "EXPOSURE": exposure, "EXPTIME": exposure,
                  "CCD-TEMP": temp + 0.05 * (i % 3), "SET-TEMP": temp, "GAIN": gain, "OFFSET": offset,
                  "XBINNING": 1, "YBINNING": 1}
        if filt:
            header["FILTER"] = filt
        # Each frame its own level: identical files would be duplicates, left out of the sets.
        paths.append(write_frame(root / "2022-04-10" / (imagetyp or kind.upper()) / name, SMALL + start + i, header))
    return paths


def test_nina_session_groups_and_nina3_dark_flats(tmp_path):
    nina(tmp_path, "bias", 5, 0.0)
    nina(tmp_path, "dark", 4, 300.0)
    nina(tmp_path, "dark", 3, 60.0)
    nina(tmp_path, "dark", 3, 300.0, temp=-15.0, start=100)
    nina(tmp_path, "flat", 4, 1.5, filt="L")
    nina(tmp_path, "flat", 4, 8.0, filt="Ha")
    nina(tmp_path, "dark", 4, 1.5, imagetyp="DARK", start=200)  # NINA 3 dark flats: typed DARK
    nina(tmp_path, "darkflat", 2, 8.0, imagetyp="DARKFLAT")    # NINA 2 spelling
    nina(tmp_path, "light", 3, 300.0, filt="L")
    cat = aw.scan(tmp_path)
    assert len(cat) == 32 and len(cat.skipped) == 0 and len(cat.unclassified) == 0
    got = sorted((g.frame_type, g.key.get("exposure"), g.key.get("filter"), len(g)) for g in cat.groups())
    assert got == sorted([("bias", None, None, 5), ("dark", 60.0, None, 3), ("dark", 300.0, None, 3),
                          ("dark", 300.0, None, 4), ("darkflat", 1.5, None, 4), ("darkflat", 8.0, None, 2),
                          ("flat", None, "Ha", 4), ("flat", None, "L", 4), ("light", 300.0, "L", 3)])
    darks300 = [g for g in cat.groups("dark") if g.key["exposure"] == 300.0]
    assert sorted(round(g.key["temperature"]) for g in darks300) == [-15, -10]
    df = cat.groups("darkflat")[0]
    assert all("NINA 3" in r for r in df.table["type_reason"])
    assert all("DARK" in p for p in df.paths)
    cube = df.open()
    assert cube.sizes["frame"] == 4 and set(cube["frame_type"].values) == {"dark"}  # cube keeps the header's word
    # the 60 s darks are not dark flats: no flat at 60 s
    assert len(cat.groups("dark")) == 3
    assert re.search(r"dark, 300 s, -(9\.9|10\.0) °C, gain 139, offset 21, 1x1 bin, 10x8 px: 4 frames",
                     cat.summary())


def test_darks_far_shorter_than_lights_only(tmp_path):
    nina(tmp_path, "flat", 3, 30.0, filt="Ha")
    nina(tmp_path, "dark", 3, 30.0)           # the lights are 30 s too: a real dark, not a dark flat
    nina(tmp_path, "light", 3, 30.0, filt="Ha")
    cat = aw.scan(tmp_path)
    assert set(cat.table["frame_type"]) == {"flat", "dark", "light"}


def test_sgp_and_apt_folder_layouts_without_imagetyp(tmp_path):
    # SGP/APT users often sort by folder; some writers leave IMAGETYP out.
    for k, (folder, n) in enumerate((("Bias", 2), ("Darks", 2), ("Flats", 2), ("Dark Flats", 2), ("Lights", 2))):
        for i in range(n):
            write_frame(tmp_path / "M31" / folder / f"M31_{i:03d}.fit", SMALL + 10 * k + i, {"EXPOSURE": 1.0})
    write_frame(tmp_path / "M31" / "misc" / "frame_001.fit", SMALL + 99, {"EXPOSURE": 1.0})
    cat = aw.scan(tmp_path)
    assert sorted(cat.table["frame_type"]) == sorted(["bias"] * 2 + ["dark"] * 2 + ["flat"] * 2
                                                     + ["darkflat"] * 2 + ["light"] * 2 + [""])
    assert list(cat.unclassified["path"].str.endswith("frame_001.fit")) == [True]
    assert "unclassified: 1 frames" in cat.summary()


def test_unreadable_files_are_listed_not_dropped(tmp_path):
    write_frame(tmp_path / "bias_1.fits", SMALL, {"IMAGETYP": "BIAS"})
    (tmp_path / "bias_2.fits").write_text("garbage")
    cut = write_frame(tmp_path / "bias_3.fits", SMALL.repeat(40, 0), {"IMAGETYP": "BIAS"})
    cut.write_bytes(cut.read_bytes()[:3000])
    cat = aw.scan(tmp_path)
    assert list(cat.table["path"].str.endswith("bias_1.fits")) == [True]
    problems = dict(zip(cat.skipped["path"].str.rsplit("/", n=1).str[-1], cat.skipped["problem"]))
    assert problems["bias_2.fits"].startswith("not a readable FITS file")
    assert problems["bias_3.fits"].startswith("truncated")
    assert "skipped: 2 files" in cat.summary()


def test_scan_reads_headers_only(tmp_path):
    data = np.zeros((64, 64), np.uint16)
    for i in range(1000):
        data[0, 0] = i  # a thousand different frames (identical files would be duplicates)
        write_frame(tmp_path / f"dark_{i:04d}.fits", data, {"IMAGETYP": "DARK", "EXPTIME": 10.0})
    READ_STATISTICS.reset()
    t0 = time.perf_counter()
    cat = aw.scan(tmp_path)
    elapsed = time.perf_counter() - t0
    assert len(cat) == 1000 and READ_STATISTICS.calls == 0 and READ_STATISTICS.bytes == 0
    assert len(cat.groups()) == 1
    print(f"scanned 1000 headers in {elapsed:.2f} s")


def test_scan_leaves_inputs_untouched_and_errors_on_missing_folder(tmp_path):
    nina(tmp_path, "bias", 3, 0.0)
    before = tree_hashes(tmp_path)
    aw.scan(tmp_path).groups()
    assert tree_hashes(tmp_path) == before
    with pytest.raises(aw.FrameReadError, match="no such folder"):
        aw.scan(tmp_path / "nope")


def test_groups_split_by_size_and_binning(tmp_path):
    write_frame(tmp_path / "bias_a.fits", SMALL, {"IMAGETYP": "BIAS", "XBINNING": 1, "YBINNING": 1})
    write_frame(tmp_path / "bias_b.fits", SMALL, {"IMAGETYP": "BIAS", "XBINNING": 2, "YBINNING": 2})
    for name, level in (("bias_c.fits", 0), ("bias_d.fits", 1)):  # two of 9x10 px: a set, not a stray
        write_frame(tmp_path / name, np.full((9, 10), level, np.uint16), {"IMAGETYP": "BIAS", "XBINNING": 1,
                                                                          "YBINNING": 1})
    groups = aw.scan(tmp_path).groups("bias")
    assert len(groups) == 3
    for g in groups:
        g.open()  # each group opens as one consistent cube
