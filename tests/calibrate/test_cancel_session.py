"""``calibrate_session(..., cancel=token)``: stops between masters, bands and lights and within a light
(``calibrate_light(cancel=)``); what it wrote stays valid,
nothing half-made is left, and a rerun completes into the same bytes as an uncancelled run."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

import pytest
from astropy.io import fits

from astrocal_widgets.calibrate import calibrate_light, calibrate_session
from astrocal_widgets.calibrate import lights as lights_module
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


@pytest.fixture(scope="module")
def plain(night, tmp_path_factory) -> Path:
    """The night calibrated once, never cancelled."""
    out = tmp_path_factory.mktemp("plain")
    calibrate_session(night, output=out)
    return out


def _cancel_once_read(monkeypatch, token: CancelToken, at: str = "compute_into_arrays") -> list[tuple]:
    """Cancel once ``at`` (a function the lights module calls) first returns: the user clicks Cancel while a
    light is calibrated (``compute_into_arrays``: once the light is read; ``write_provenance``: once its
    header is made, just before the write). Returns the shapes of the frames whose cosmetic correction started."""
    step = getattr(lights_module, at)
    corrected: list[tuple] = []

    def step_then_cancel(*args, **kwargs):
        value = step(*args, **kwargs)
        token.cancel()
        return value

    def correct(data, *args, **kwargs):
        corrected.append(data.shape)
        return correct_defects(data, *args, **kwargs)

    correct_defects = lights_module.correct_defects
    monkeypatch.setattr(lights_module, at, step_then_cancel)
    monkeypatch.setattr(lights_module, "correct_defects", correct)
    return corrected


@pytest.mark.parametrize("at", ["compute_into_arrays", "write_provenance"])
def test_cancelled_within_a_light_stops_it_before_it_is_written_and_the_rerun_is_the_same_bytes(
        night, plain, tmp_path, monkeypatch, at):
    out = tmp_path / "within"
    token = CancelToken()
    corrected = _cancel_once_read(monkeypatch, token, at)
    with pytest.raises(CancelledError):
        calibrate_session(night, output=out, cancel=token)
    assert token.cancelled
    if at == "compute_into_arrays":
        assert corrected == []  # stopped once read: no cosmetic correction
    assert not (out / "calibrated").exists() or not any((out / "calibrated").rglob("*.fit*"))  # no light
    assert [p.name for p in out.rglob("*") if p.is_file() and ".tmp." in p.name] == []
    assert len(list((out / "masters").glob("master_*.fits"))) >= 4  # the masters were all written whole
    monkeypatch.undo()
    result = calibrate_session(night, output=out)
    assert len(result.lights) == _n_lights(night) and not any(l.reused for l in result.lights)
    assert _hashes(out) == _hashes(plain)


def test_calibrate_light_looks_at_its_token_within_the_light(night, plain, monkeypatch):
    light = sorted(p for p in night.rglob("*.fits") if "LIGHT" in p.parts)[0]
    expected = calibrate_light(light, plain / "masters", keep_raw=False).data
    token = CancelToken()
    assert np.array_equal(calibrate_light(light, plain / "masters", keep_raw=False, cancel=token).data, expected)
    corrected = _cancel_once_read(monkeypatch, token)
    with pytest.raises(CancelledError, match=f"^{light.name}: cancelled$"):
        calibrate_light(light, plain / "masters", cancel=token)
    assert corrected == []
    token = threading.Event()  # an event works as well, and one set before anything is read stops at once
    token.set()
    monkeypatch.undo()
    with pytest.raises(CancelledError):
        calibrate_light(light, plain / "masters", cancel=token)
