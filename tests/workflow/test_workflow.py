"""The step functions the dashboards call, used directly as a notebook user would."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets import workflow as wf
from astrocal_widgets.calibrate import calibrate_session
from astrocal_widgets.calibrate import lights as lights_module
from astrocal_widgets.cancel import CancelToken
from astrocal_widgets.errors import CancelledError, OutputExistsError
from astrocal_widgets.quality import background_noise, channel_levels, radial_profile, temporal_noise


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("wf") / "night"
    sim = aw.simulate_session(root, shape=(120, 160))
    return root, sim


def test_open_session_measures_the_lights_noise(night):
    root, sim = night
    session = wf.open_session(root)
    assert len(session.groups()) == 9
    assert session.masters_dir == root / "masters"
    table = session.groups_table()
    assert table["master file"].iloc[0].startswith("master_bias_")
    # Sky noise of a 300 s light: sqrt(sky electrons + read noise^2) / gain, measured on a central crop.
    assert 5 < session.light_sigma < 15
    assert session.lights_temperature == pytest.approx(-10, abs=0.5)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        wf.open_session(root / "nowhere")


def test_integrate_master_is_the_engines_master_plus_what_judges_it(night):
    root, _ = night
    session = wf.open_session(root)
    bias = session.groups("bias")[0]
    seen = []
    result = wf.integrate_master(bias, light_sigma=session.light_sigma, progress=lambda f, m: seen.append(f))
    direct = aw.integrate(bias.open(), rejection="auto").compute()
    np.testing.assert_array_equal(result.master, direct["master"].values)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(set(seen)) >= 4
    assert result.statistics.sizes["frame"] == len(bias)
    assert result.frame_table().shape[0] == len(bias)
    # Temporal noise of one bias: the simulated read noise 3.5 e- at gain 0.8 e-/ADU, about 4.4 ADU.
    assert result.frame_sigma == pytest.approx(3.5 / 0.8, rel=0.1)
    assert result.master_sigma == pytest.approx(result.frame_sigma / math.sqrt(len(bias)))
    assert result.recommended == (50, 100)
    assert result.frames_needed is not None and result.frames_needed >= 1
    assert "recommended 50-100 frames" in result.summary()


def test_save_master_uses_the_name_calibrate_session_reuses(night, tmp_path):
    root, _ = night
    session = wf.open_session(root, output=tmp_path / "out")
    dark = session.groups("dark")[0]
    result = wf.integrate_master(dark, rejection="sigma", low=2.5, high=2.5)
    path = wf.save_master(result, session.masters_dir)
    assert path == session.master_path(dark)
    assert fits.getheader(path)["IMAGETYP"] == "MASTER DARK"
    with pytest.raises(OutputExistsError):
        wf.save_master(result, session.masters_dir)
    run = calibrate_session(root, output=tmp_path / "out")
    reused = [m for m in run.masters if m.path == str(path)]
    assert reused and reused[0].reused and reused[0].rejection.lower().startswith("sigma")


def test_flat_preview_removes_the_dark_flat_level_and_flat_master_is_calibrated(night, tmp_path):
    root, _ = night
    session = wf.open_session(root, output=tmp_path)
    for group in session.groups("darkflat"):
        wf.save_master(wf.integrate_master(group), session.masters_dir)
    flats = session.groups("flat")[0]
    preview = wf.preview_flat_calibration(flats, session.masters_dir, frame=2)
    master = fits.getdata(preview.subtracted)
    np.testing.assert_allclose(preview.before - preview.after, master, atol=4e-3)  # float32 at 30,000 ADU
    assert preview.level_removed == pytest.approx(float(np.median(master)))
    result = wf.integrate_master(flats, library=session.masters_dir)
    assert result.flat_calibration.masters == [preview.subtracted]
    assert result.profile["level"].iloc[0] == pytest.approx(1.0, abs=0.01)
    assert result.profile["level"].iloc[-1] < 0.9
    with pytest.raises(aw.errors.AstrocalError, match="library="):
        wf.integrate_master(flats)


def test_flat_preview_takes_its_flat_from_the_set_without_the_excluded_ones(night, tmp_path):
    root, _ = night
    session = wf.open_session(root, output=tmp_path)
    for group in session.groups("darkflat"):
        wf.save_master(wf.integrate_master(group), session.masters_dir)
    flats = session.groups("flat")[0]
    paths = [str(p) for p in flats.paths]
    plain = wf.preview_flat_calibration(flats, session.masters_dir, frame=1)
    assert plain.path == paths[1] and plain.instead_of is None and "excluded" not in plain.summary()
    wf.exclude_frames(session, {paths[0]: "shadow of a cable"})
    excluded = wf.session_exclusions(session)
    # the first flat is excluded: the preview shows the next one, and says which it replaces
    preview = wf.preview_flat_calibration(flats, session.masters_dir, frame=0, excluded=excluded)
    assert preview.path == paths[1] and preview.instead_of == paths[0]
    assert preview.summary().startswith(f"{Path(paths[0]).name} is excluded, shown instead: {Path(paths[1]).name}:")
    np.testing.assert_array_equal(preview.after, plain.after)  # the same flat, calibrated the same way
    # a flat kept is the one asked for, numbered as in the whole set
    assert wf.preview_flat_calibration(flats, session.masters_dir, frame=2, excluded=excluded).path == paths[2]
    # the last flat excluded: the one before it
    last = wf.preview_flat_calibration(flats, session.masters_dir, frame=len(paths) - 1,
                                       excluded={paths[-1]: "trail"})
    assert last.path == paths[-2] and last.instead_of == paths[-1]
    with pytest.raises(aw.errors.AstrocalError, match="every frame is excluded"):
        wf.preview_flat_calibration(flats, session.masters_dir, excluded=dict.fromkeys(paths, "x"))


def test_preview_light_equals_the_written_calibrated_light(night, tmp_path, monkeypatch):
    root, _ = night
    run = calibrate_session(root, output=tmp_path)
    session = wf.open_session(root, output=tmp_path)
    light = wf.preview_light(session, 0)
    written = {r.source: r.output for r in run.lights}[light.source]
    np.testing.assert_array_equal(light.data, fits.getdata(written))
    assert light.raw.shape == light.data.shape and float(np.median(light.raw)) > float(np.median(light.data))
    # Cancel clicked while the light is read: the preview stops there, before its cosmetic correction.
    token, corrected = CancelToken(), []
    read, correct = lights_module.compute_into_arrays, lights_module.correct_defects
    monkeypatch.setattr(lights_module, "compute_into_arrays", lambda *a, **k: (read(*a, **k), token.cancel())[0])
    monkeypatch.setattr(lights_module, "correct_defects", lambda *a, **k: corrected.append(1) or correct(*a, **k))
    with pytest.raises(CancelledError, match=Path(light.source).name):
        wf.light_before_after(session, 0, cancel=token)
    assert token.cancelled and corrected == []


def test_check_sets_keeps_a_frame_per_set(night):
    root, _ = night
    session = wf.open_session(root)
    seen = []
    checks = wf.check_sets(session, progress=lambda f, m: seen.append(f))
    assert set(checks.samples) == {g.label for g in session.groups()}
    assert seen[-1] == pytest.approx(1.0) and len(seen) > len(session.groups())
    assert checks.status_of(session.groups("flat")[0].label) in ("pass", "warn", "fail")
    assert set(checks.table()["group"]) >= {g.label for g in session.groups() if g.frame_type != "light"}
    # Aggregated: one row per check of a set, failures first; per-frame results counted.
    flat = session.groups("flat")[0].label
    summary = checks.summary_table(flat)
    assert len(summary) == summary["name"].nunique() < len(checks.table(flat))
    assert summary["status"].map({"fail": 0, "warn": 1, "pass": 2}).is_monotonic_increasing
    n_flats = len(session.groups("flat")[0])
    assert f"all {n_flats} pass" in summary["frames"].tolist() or any(
        f" of {n_flats}" in f for f in summary["frames"])


def test_radial_profile_recovers_a_known_vignetting():
    y, x = np.indices((201, 301))
    r = np.hypot(y - 100, x - 150)
    image = 1000.0 * (1 - 0.3 * (r / r.max()) ** 2)
    profile = radial_profile(image, bins=20)
    expected = 1 - 0.3 * (profile["radius"] / r.max()) ** 2
    np.testing.assert_allclose(profile["level"], expected / expected.iloc[0], atol=0.01)
    assert profile["n_pixels"].sum() == image.size


def test_channel_levels_and_noise_estimators():
    rng = np.random.default_rng(3)
    mosaic = np.empty((100, 100))
    mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2] = 100, 200, 200, 50
    assert channel_levels(mosaic, "RGGB") == {"R": 100.0, "G": 200.0, "B": 50.0}
    assert channel_levels(mosaic) == {"all": 150.0}  # half the pixels 200, a quarter 100 and 50
    pattern = rng.normal(0, 50, (400, 400))  # fixed pattern: cancels in the difference
    a = 1000 + pattern + rng.normal(0, 4, (400, 400))
    b = 1000 + pattern + rng.normal(0, 4, (400, 400))
    assert temporal_noise(a, b) == pytest.approx(4.0, rel=0.03)
    sky = rng.normal(500, 7, (600, 600))
    sky[::37, ::41] += 5000  # stars do not count
    assert background_noise(sky) == pytest.approx(7.0, rel=0.03)


def test_noise_estimates_are_not_quantised_on_integer_data():
    rng = np.random.default_rng(5)
    for true in (1.5, 1.8, 4.4):
        a = np.round(rng.normal(500, true, (300, 300)))
        b = np.round(rng.normal(500, true, (300, 300)))
        expected = math.sqrt(true ** 2 + 1 / 12)  # rounding adds 1/12 ADU^2
        assert temporal_noise(a, b) == pytest.approx(expected, rel=0.03)
    # Flats whose level drifted 10 % between the two frames.
    flat = rng.normal(30000, 170, (300, 300))
    drifted = 1.1 * rng.normal(30000, 170, (300, 300))  # scaled back to 30,000 its noise is 170 again
    assert temporal_noise(flat, drifted, match_levels=True) == pytest.approx(170, rel=0.03)


def test_a_calibrated_light_is_a_product_even_when_nothing_matched(tmp_path):
    from conftest import NINA_LIGHT, write_frame
    write_frame(tmp_path / "LIGHT" / "raw.fits", np.full((8, 8), 1000, np.uint16), NINA_LIGHT)
    write_frame(tmp_path / "calibrated" / "raw_calibrated.fits", np.full((8, 8), 1000.0, np.float32),
                {**NINA_LIGHT, "CALSTAT": ""})
    table = aw.scan(tmp_path).table
    types = dict(zip(table["path"].map(lambda p: p.split("/")[-1]), table["frame_type"]))
    assert types == {"raw.fits": "light", "raw_calibrated.fits": ""}
