"""Stale products found from provenance alone, and rebuilt in dependency order: replace the master bias
and the flats calibrated with it, their defect maps and the lights are stale; Rebuild stale makes them
again and leaves everything else byte for byte."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astrocal_widgets.calibrate import (CalibrationOptions, calibrate_session, load_options, rebuild_stale,
                                        save_options, stale_products)
from astrocal_widgets.calibrate import stale as stale_module
from astrocal_widgets.calibrate.options import OPTIONS_FILE
from astrocal_widgets.calibrate.stale import STALE_BACKUP_FOLDER
from astrocal_widgets.simulate import simulate_session
from astrocal_widgets.workflow import integrate_master, open_session, save_master

# No dark flats: the flats are calibrated with the master bias, so replacing it reaches them.
COUNTS = {"bias": 6, "dark": 5, "flat": 5, "darkflat": 0, "light": 2}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> Path:
    night = tmp_path_factory.mktemp("stale") / "night"
    simulate_session(night, shape=(32, 48), counts=COUNTS, seed=5)
    calibrate_session(night)
    return night


@pytest.fixture
def night(calibrated, tmp_path) -> Path:
    """A fresh copy of the calibrated night for each test (the tests change it)."""
    copy = tmp_path / "night"
    shutil.copytree(calibrated, copy)
    # The copies' provenance names the original's frames by full path: calibrate the copy anew.
    shutil.rmtree(copy / "masters")
    shutil.rmtree(copy / "calibrated")
    calibrate_session(copy)
    return copy


def _products(night: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("masters", "calibrated") for p in sorted((night / folder).rglob("*.fits"))}


def _replace_bias(night: Path) -> Path:
    """Integrate the bias again with another rejection and save it over the old one (as the dashboard does)."""
    session = open_session(night)
    group = session.groups("bias")[0]
    result = integrate_master(group, rejection="sigma", low=2.0, high=2.0)
    return Path(save_master(result, session.masters_dir, overwrite=True))


def test_a_calibrated_night_has_nothing_stale(night):
    assert stale_products(night) == []
    assert stale_products(night, check_frames=False) == []


def test_replaced_bias_makes_flats_maps_and_lights_stale_and_rebuild_redoes_exactly_them(night):
    before = _products(night)
    bias = _replace_bias(night)
    found = stale_products(night)
    kinds = [s.kind for s in found]
    # Every master flat (its frames were calibrated with the bias), every defect map made from a flat,
    # every calibrated light; the bias itself (same frames) and the darks are not stale.
    assert kinds.count("flat") == 2 and kinds.count("light") == 4 and kinds.count("defect map") == 2
    assert [s.order for s in found] == sorted(s.order for s in found)  # masters before flats before lights
    assert str(bias) not in {s.path for s in found}
    for s in found:
        assert bias.name in s.reason, s
    flat = next(s for s in found if s.kind == "flat")
    assert "its frames were calibrated with" in flat.reason and "replaced" in flat.reason
    light = next(s for s in found if s.kind == "light")
    assert light.reason == f"calibrated with {bias.name}, which was replaced since"

    untouched = {p: h for p, h in _products(night).items() if p not in {s.path for s in found}}
    result = rebuild_stale(night)
    assert sorted(result.rebuilt) == sorted(s.path for s in found) and result.not_rebuilt == []
    assert sorted(result.calibration.written) == sorted(s.path for s in found)
    after = _products(night)
    for s in found:
        assert after[s.path] != before[s.path], f"{s.name} was not made again"
    for path, digest in untouched.items():
        assert after[path] == digest, f"{Path(path).name} changed though it was not stale"
    assert stale_products(night) == []
    assert not (night / STALE_BACKUP_FOLDER).exists()
    # The new lights name the new bias by content.
    header = fits.getheader(next(s.path for s in found if s.kind == "light"))
    assert header["BIASSHA"] == hashlib.sha256(bias.read_bytes()).hexdigest()


def test_a_changed_frame_set_makes_the_master_and_everything_built_on_it_stale(night):
    frames = sorted(p for p in night.rglob("*.fits") if "BIAS" in p.as_posix().upper()
                    and "masters" not in p.parts)
    frames[0].unlink()
    for check_frames in (True, False):
        found = stale_products(night, check_frames=check_frames)
        assert found[0].kind == "bias"
        assert "integrated from 6 frames, the set now has 5" in found[0].reason
        assert {"flat", "light"} <= {s.kind for s in found[1:]}
        assert all("which is stale" in s.reason for s in found if s.kind in ("flat", "light"))
    result = rebuild_stale(night)
    assert result.not_rebuilt == [] and stale_products(night) == []
    assert fits.getheader(found[0].path)["NCOMBINE"] == 5


def test_a_changed_raw_light_makes_only_its_calibrated_light_stale(night):
    raw = sorted(p for p in night.rglob("*.fits") if "LIGHT" in p.as_posix() and "calibrated" not in p.parts)[0]
    with fits.open(raw, mode="update") as hdul:
        hdul[0].data[0, 0] += 7
    found = stale_products(night)
    assert len(found) == 1 and found[0].kind == "light" and raw.stem in found[0].path
    assert "changed since it was calibrated" in found[0].reason
    assert stale_products(night, check_frames=False) == []  # by name only: the change is not seen


def test_a_failed_rebuild_puts_every_stale_product_back(night, monkeypatch):
    _replace_bias(night)
    before = _products(night)

    def fail(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(stale_module, "calibrate_session", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        rebuild_stale(night)
    assert _products(night) == before
    assert not (night / STALE_BACKUP_FOLDER).exists()
    assert len(stale_products(night)) == 8


def test_calibrate_session_records_its_options_and_rebuild_uses_them(night):
    recorded = load_options(night)
    assert recorded == CalibrationOptions()
    options = CalibrationOptions(strict=False, pedestal=100.0, cosmetic=False, overscan="off",
                                 rejection="sigma", rejection_thresholds=(2.5, 2.5))
    written = save_options(options, night)
    assert load_options(night) == options
    stamp = written.stat().st_mtime_ns
    save_options(options, night)
    assert written.stat().st_mtime_ns == stamp  # the same options: the file is not written again
    text = json.loads(written.read_text())
    assert text["options"]["overscan"] == "off" and text["options"]["rejection_thresholds"] == [2.5, 2.5]
    (night / OPTIONS_FILE).write_text("{not json")
    with pytest.raises(Exception, match=OPTIONS_FILE):
        load_options(night)


def test_lights_calibrated_with_other_options_are_rebuilt_with_the_recorded_ones(tmp_path):
    night = tmp_path / "night"
    simulate_session(night, shape=(32, 48), counts=COUNTS, seed=6)
    calibrate_session(night, pedestal=50.0, cosmetic=False)
    assert load_options(night).pedestal == 50.0
    _replace_bias(night)
    result = rebuild_stale(night)  # with the session's options: no light is refused for its options
    assert result.not_rebuilt == [] and stale_products(night) == []
    light = next(p for p in result.rebuilt if p.endswith("_calibrated.fits"))
    assert "pedestal=50" in fits.getheader(light)["CALOPTS"]
    assert np.isfinite(fits.getdata(light)).all()


def test_a_master_made_without_excluded_frames_is_not_stale(calibrated, tmp_path):
    """The exclusion list is part of what a run integrates: a master made without the listed frames
    matches the night, and taking a frame off the list makes it stale."""
    from astrocal_widgets.frames import add_exclusions, remove_exclusions

    night = tmp_path / "excluded"
    shutil.copytree(calibrated, night)
    shutil.rmtree(night / "masters")
    shutil.rmtree(night / "calibrated")
    bias = sorted(p for p in night.rglob("*.fits") if "bias" in p.name.lower() or "BIAS" in str(p.parent))[0]
    add_exclusions(night, [bias], night, reason="a light leak")
    calibrate_session(night)
    assert stale_products(night) == []
    remove_exclusions(night, [bias], night)
    found = stale_products(night)
    assert found and found[0].kind == "bias", found
