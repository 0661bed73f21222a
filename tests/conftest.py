"""Shared test helpers: frame writers in the styles of capture programs, real-data location."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

#: Real camera frames (read-only, never copied into the project): ASTROCAL_REALDATA, else the
#: project's sibling folder of real data where the maintainers keep them.
REALDATA = Path(os.environ.get("ASTROCAL_REALDATA")
                or Path(__file__).resolve().parents[1].parent / "shared" / "realdata")


def in_ci() -> bool:
    """CI runs with CI=true: there, a missing optional tool is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str):
    """Skip for a user without an optional tool; fail in CI, where .ci/run installs it."""
    if in_ci():
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
    pytest.skip(reason)


@pytest.fixture
def realdata() -> Path:
    """The real camera frames; skips when the folder is absent (a user's clone), fails in CI."""
    if not REALDATA.is_dir():
        skip_or_fail(f"real camera frames not present at {REALDATA} (set ASTROCAL_REALDATA)")
    return REALDATA


def write_frame(path: Path, data: np.ndarray, header: dict | None = None) -> Path:
    """Write ``data`` as a FITS primary HDU with the given keywords (uint16 -> BZERO 32768)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hdr = fits.Header()
    for key, value in (header or {}).items():
        hdr[key] = value
    fits.PrimaryHDU(data, header=hdr).writeto(path)
    return path


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` (to prove inputs are untouched)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def frame_data() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(400, 60000, size=(24, 32)).astype(np.uint16)


NINA_LIGHT = {
    "IMAGETYP": "LIGHT", "EXPOSURE": 300.0, "EXPTIME": 300.0, "CCD-TEMP": -9.9, "SET-TEMP": -10.0,
    "GAIN": 139, "OFFSET": 21, "EGAIN": 0.8, "FILTER": "Ha", "XBINNING": 1, "YBINNING": 1,
    "DATE-OBS": "2022-04-10T21:03:12.123", "INSTRUME": "ZWO ASI2600MM Pro", "ROWORDER": "TOP-DOWN",
    "READOUTM": "Normal",
}
SGP_DARK = {  # SGP writes EXPOSURE (not EXPTIME) and TEMPERAT (not CCD-TEMP); ISO for Canon bodies
    "IMAGETYP": "Dark Frame", "EXPOSURE": 120.0, "TEMPERAT": -15.2, "SET-TEMP": -15.0,
    "XBINNING": 2, "YBINNING": 2, "DATE-OBS": "2021-10-01T01:02:03", "INSTRUME": "QHY163M",
    "GAIN": 0, "OFFSET": 30,
}
APT_DSLR_BIAS = {  # APT with a Canon DSLR: ISOSPEED, no temperature, CFA pattern
    "IMAGETYP": "Bias", "EXPTIME": 0.000125, "ISOSPEED": 800, "INSTRUME": "Canon EOS 6D",
    "DATE-OBS": "2020-08-14T22:10:00", "BAYERPAT": "RGGB",
}
MAXIM_FLAT = {
    "IMAGETYP": "Flat Field", "EXPTIME": 2.5, "CCD-TEMP": -20.03, "SET-TEMP": -20.0,
    "XBINNING": 1, "YBINNING": 1, "FILTER": "Red", "INSTRUME": "SBIG STF-8300M",
    "DATE-OBS": "2019-03-02T05:06:07",
}


_MEASURED: list[str] = []


def pytest_runtest_logreport(report):
    """Figures a test records with ``record_property("measured", text)``: also from parallel workers."""
    if report.when == "call":
        _MEASURED.extend(str(value) for name, value in report.user_properties if name == "measured")


def pytest_terminal_summary(terminalreporter):
    """The figures tests measured (notebook and docs build times, ...), whether or not output is captured."""
    if _MEASURED:
        terminalreporter.section("measured")
        for line in _MEASURED:
            terminalreporter.write_line(line)
