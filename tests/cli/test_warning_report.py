"""Warnings belong to the report: collected, counted by kind, said once; the Python API unchanged."""
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

import astrocal_widgets as aw
from astrocal_widgets.warning_report import collect_warnings, reading_file

from conftest import tree_hashes, write_frame

CARD = "Card 'EXPOSURE' is not FITS standard (invalid value string: '+6.000000000000e+000').  Fixed 'EXPOSURE' card"
#: What a raw warning looks like on a console: astropy's logger ("WARNING: VerifyWarning: ...") or
#: Python's ("/path/file.py:58: IntegrationWarning: ...").
RAW_WARNING = re.compile(r"Warning:|\.py:\d+:")


def ccdsoft_frame(path, level: int, exposure: str = "+6.000000000000e+000"):
    """A bias as CCDSoft writes it: EXPOSURE as a lower-case-exponent float, the header padded with NULs."""
    data = np.random.default_rng(level).normal(level, 3, (16, 24)).round().astype(np.uint16)
    write_frame(path, data, {"EXPOSURE": 6.0, "TEMPERAT": -5.0})
    raw = bytearray(path.read_bytes())
    start = raw.index(b"EXPOSURE=")
    raw[start:start + 80] = f"EXPOSURE= {exposure:>20} / exposure in seconds".ljust(80).encode()
    end = raw.index(b"END" + b" " * 77) + 80
    raw[end:2880] = b"\0" * (2880 - end)
    path.write_bytes(bytes(raw))
    return path


def test_log_counts_by_kind_and_by_file():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # Python's default (pytest shows them)
        with collect_warnings() as log:
            for name in ("a.fits", "b.fits"):
                with reading_file(name):
                    warnings.warn("Verification reported errors:", VerifyWarning)
                    warnings.warn(CARD, VerifyWarning)
                    warnings.warn(CARD.replace("EXPOSURE", "TEMPERAT"), VerifyWarning)
            for _ in range(3):
                warnings.warn("a single frame: the master is that frame", UserWarning)
            warnings.warn("old API", DeprecationWarning)  # ignored by a filter: stays ignored
    lines = log.lines()
    assert lines == ["2 files: non-standard number cards (EXPOSURE, TEMPERAT; e.g. EXPOSURE = +6.000000000000e+000), "
                     "read as numbers (the files are not changed)",
                     "3 times: a single frame: the master is that frame (UserWarning)"]
    assert log.unshown() == lines and log.unshown() == []
    with pytest.warns(UserWarning, match="outside"):  # after the block, warnings are as before
        warnings.warn("outside", UserWarning)


def test_error_filters_still_raise():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with pytest.raises(UserWarning), collect_warnings():
            warnings.warn("boom", UserWarning)


def test_the_api_still_warns_and_reads_the_values(tmp_path):
    ccdsoft_frame(tmp_path / "bias_1.fit", 100)
    with pytest.warns(VerifyWarning, match="EXPOSURE"):
        cat = aw.scan(tmp_path)
    assert list(cat.table["exposure"]) == [6.0]


def assert_no_raw_warning(result):
    assert "Traceback" not in result.stderr, result.stderr
    for stream in (result.stdout, result.stderr):
        raw = [line for line in stream.splitlines() if RAW_WARNING.search(line)]
        assert raw == [], raw


def run(*args):
    return subprocess.run([sys.executable, "-m", "astrocal_widgets", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def test_cli_reports_header_warnings_once_in_words(tmp_path):
    night = tmp_path / "night"
    for i in range(5):
        ccdsoft_frame(night / f"slit.{i:08d}.BIAS.FIT", 100 + i, exposure="+0.000000000000e+000")
    before = tree_hashes(night)
    for args in (("scan", night), ("check", night), ("calibrate", night, "--output", tmp_path / "out")):
        result = run(*args)
        assert result.returncode in (0, 1), result.stderr
        assert_no_raw_warning(result)
        out = result.stdout
        assert out.count("5 files: non-standard number cards (EXPOSURE") == 1, out
        assert out.count("5 files: header padded with NUL bytes") == 1, out
    assert "made master_bias" in out
    assert tree_hashes(night) == before


def test_cli_reports_our_own_warnings_without_source_lines(tmp_path):
    """A set of one bias: the engine warns (IntegrationWarning); the CLI says it once, in words."""
    rng = np.random.default_rng(0)
    write_frame(tmp_path / "night" / "bias_1.fits", rng.normal(500, 5, (16, 24)).astype(np.uint16),
                {"IMAGETYP": "BIAS"})
    result = run("calibrate", tmp_path / "night", "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert_no_raw_warning(result)
    assert "1 time: a single frame: the master is that frame" in result.stdout
