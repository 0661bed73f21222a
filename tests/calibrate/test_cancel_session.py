"""``calibrate_session(..., cancel=token)``: stops between masters, bands and lights; what it wrote stays valid,
nothing half-made is left, and a rerun completes into the same bytes as an uncancelled run."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from astropy.io import fits

from astrocal_widgets.calibrate import calibrate_session
from astrocal_widgets.cancel import CancelToken
from astrocal_widgets.errors import CancelledError
from astrocal_widgets.integrate.master_file import master_mismatch
from astrocal_widgets.simulate import simulate_session

COUNTS = {"bias": 5, "dark": 5, "flat": 5, "darkflat": 5, "light": 3}


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cancel")
    simulate_session(root / "night", shape=(64, 96), counts=COUNTS, seed=3)
    return root / "night"


def _n_lights(night: Path) -> int:
    return sum(1 for p in night.rglob("*.fits") if "LIGHT" in p.parts)  # counts["light"] is per filter


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cancelled_after_the_first_master_keeps_it_valid_and_leaves_no_partial_light(night, tmp_path):
    out = tmp_path / "cancelled"
    masters = out / "masters"
    token = CancelToken()
    messages = []

    def progress(fraction, message):
        messages.append(message)
        if not token.cancelled and any(masters.glob("master_*.fits")):  # the first master is written
            token.cancel()

    with pytest.raises(CancelledError):
        calibrate_session(night, output=out, progress=progress, cancel=token)
    assert token.cancelled
    written = sorted(masters.glob("master_*.fits"))
    assert written, messages
    assert len(written) < len(list(night.rglob("*.fits"))) and not any("master flat" in m for m in messages), \
        "the run went on after the cancel"
    for path in written:  # each master is whole, and is this set's master (a rerun reuses it)
        with fits.open(path) as hdul:
            assert hdul[0].header["IMAGETYP"].startswith("MASTER") and hdul[0].data.shape == (64, 96)
    assert [p.name for p in out.rglob("*") if p.is_file() and ".tmp." in p.name] == []  # no temporary file
    assert not (out / "calibrated").exists() or not any((out / "calibrated").rglob("*.fit*"))  # no light

    # The rerun reuses the masters the cancelled run made, and completes.
    before = {p.name: p.stat().st_mtime_ns for p in written}
    result = calibrate_session(night, output=out)
    assert {Path(m.path).name for m in result.masters if m.reused} >= set(before)
    assert all(p.stat().st_mtime_ns == before[p.name] for p in written)
    assert len(result.lights) == _n_lights(night) > COUNTS["light"]

    # ... into the same bytes as a run never cancelled.
    plain = tmp_path / "plain"
    calibrate_session(night, output=plain)
    assert _hashes(out) == _hashes(plain)


def test_cancelled_between_lights_keeps_the_lights_written_and_the_rerun_finishes_them(night, tmp_path):
    out = tmp_path / "lights"
    token = CancelToken()

    def progress(fraction, message):
        if message.startswith("light "):  # the first light is recorded
            token.cancel()

    with pytest.raises(CancelledError):
        calibrate_session(night, output=out, progress=progress, cancel=token)
    lights = sorted((out / "calibrated").rglob("*.fits"))
    assert 1 <= len(lights) < _n_lights(night)
    for path in lights:  # whole files, readable
        with fits.open(path) as hdul:
            assert hdul[0].data.shape == (64, 96)
    result = calibrate_session(night, output=out)
    assert sum(l.reused for l in result.lights) == len(lights)
    assert len(list((out / "calibrated").rglob("*.fits"))) == _n_lights(night)


def test_a_cancelled_token_stops_the_run_before_anything_is_written(night, tmp_path):
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError, match="calibrate_session: cancelled"):
        calibrate_session(night, output=tmp_path / "out", cancel=token)
    assert not (tmp_path / "out").exists()
