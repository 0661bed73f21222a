"""The session simulator: reproducibility, NINA layout and headers, file format, physics, truth."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astrocal_widgets.errors import OutputExistsError
from astrocal_widgets.simulate import CameraModel, FilterSpec, simulate_session, simulate_stack

SHAPE = (120, 160)
NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})_(\d{2}-\d{2}-\d{2})_([^_]*)_(-?\d+\.\d\d)_(\d+\.\d\d)s_(\d{4})\.fits$")


@pytest.fixture(scope="module")
def mono(tmp_path_factory):
    """A default-count mono session at a small size (about 0.3 s)."""
    return simulate_session(tmp_path_factory.mktemp("mono"), seed=5, shape=SHAPE)


@pytest.fixture(scope="module")
def osc(tmp_path_factory):
    counts = {"bias": 2, "dark": 1, "flat": 2, "darkflat": 1, "light": 1}
    return simulate_session(tmp_path_factory.mktemp("osc"), camera="osc", seed=2, shape=SHAPE, counts=counts)


def load(paths) -> np.ndarray:
    return np.array([fits.getdata(p).astype(np.float64) for p in paths])


def clipped_std(a: np.ndarray, k: float = 5.0) -> float:
    """Std after iterative k-sigma clipping (cosmic rays out; integer data keeps it unbiased, unlike the MAD)."""
    a = a.ravel()
    for _ in range(5):
        m, s = a.mean(), a.std()
        a = a[np.abs(a - m) < k * s]
    return float(a.std())


def kind_rows(session, kind):
    return session.frames[session.frames.kind == kind]


# --- reproducibility --------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.fits"))}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    counts = {"bias": 2, "dark": 1, "flat": 1, "darkflat": 1, "light": 1}
    a = simulate_session(tmp_path / "a", seed=11, shape=(40, 48), counts=counts)
    b = simulate_session(tmp_path / "b", seed=11, shape=(40, 48), counts=counts, workers=1)
    c = simulate_session(tmp_path / "c", seed=12, shape=(40, 48), counts=counts)
    ta, tb, tc = _tree(a.directory), _tree(b.directory), _tree(c.directory)
    assert len(ta) == 2 + 2 + 2 + 2 + 2
    assert ta == tb  # thread count changes nothing
    for kind in ("bias", "light"):
        da, dc = load(a.paths[kind][:1]), load(c.paths[kind][:1])
        assert not np.array_equal(da, dc)
    assert a.truth.drop_vars("light_path").identical(b.truth.drop_vars("light_path"))


def test_stack_reuses_session_frames(tmp_path, mono):
    """Each frame depends on (seed, kind, filter, exposure, temperature, index) only."""
    stack = simulate_stack(tmp_path, "bias", 3, shape=SHAPE, seed=5)
    assert [p.name[20:] for p in stack.paths["bias"]] == [p.name[20:] for p in mono.paths["bias"][:3]]
    np.testing.assert_array_equal(load(stack.paths["bias"]), load(mono.paths["bias"][:3]))
    assert all(len(v) == 0 for k, v in stack.paths.items() if k != "bias")


# --- layout, headers, format ------------------------------------------------------------


def test_layout_and_names(mono):
    night = mono.directory / "2022-04-10"
    assert sorted(p.name for p in night.iterdir()) == ["BIAS", "DARK", "FLAT", "LIGHT"]  # nina3: no DARKFLAT
    counts = mono.frames.groupby("kind").size().to_dict()
    assert counts == {"bias": 20, "dark": 20, "flat": 24, "darkflat": 24, "light": 8}
    for row in mono.frames.itertuples():
        path = Path(row.path)
        m = NAME.match(path.name)
        assert m, path.name
        date, clock, filt, temp, exposure, number = m.groups()
        hdr = fits.getheader(path)
        assert path.parent.name == hdr["IMAGETYP"]
        assert hdr["DATE-OBS"].startswith(f"{date}T{clock.replace('-', ':')}")
        assert filt == hdr.get("FILTER", "")
        assert float(temp) == hdr["CCD-TEMP"]
        assert float(exposure) == hdr["EXPTIME"] == hdr["EXPOSURE"]
        assert int(number) == row.frame_number


def test_headers(mono):
    dates = []
    for row in mono.frames.itertuples():
        hdr = fits.getheader(row.path)
        assert hdr["IMAGETYP"] == {"darkflat": "DARK"}.get(row.kind, row.kind.upper())
        assert (hdr["GAIN"], hdr["OFFSET"], hdr["EGAIN"]) == (139, 21, 0.8)
        assert hdr["XBINNING"] == hdr["YBINNING"] == 1
        assert hdr["SET-TEMP"] == -10.0 and abs(hdr["CCD-TEMP"] + 10.0) <= 0.1
        assert hdr["ROWORDER"] == "TOP-DOWN" and hdr["READOUTM"] == "Normal"
        assert hdr["XPIXSZ"] == hdr["YPIXSZ"] == 3.76
        assert hdr["INSTRUME"] and hdr["TELESCOP"]
        assert ("FILTER" in hdr) == (row.kind in ("flat", "light"))
        assert ("OBJECT" in hdr) == (row.kind == "light")
        assert "BAYERPAT" not in hdr
        dates.append(hdr["DATE-OBS"])
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    kinds = list(mono.frames.kind)
    assert kinds.index("flat") > max(i for i, k in enumerate(kinds) if k == "light")  # flats after the lights
    temps = mono.frames.ccd_temp
    assert temps.nunique() > 5  # it jitters
    darkflats = kind_rows(mono, "darkflat")
    assert sorted(darkflats.exposure.unique()) == [1.5, 8.0]
    assert sorted(kind_rows(mono, "dark").exposure.unique()) == [60.0, 300.0]


def test_nina2_darkflats(tmp_path):
    s = simulate_session(tmp_path, shape=(32, 32), darkflat_style="nina2",
                         counts={"bias": 0, "dark": 0, "flat": 1, "darkflat": 2, "light": 0})
    assert [p.parent.name for p in s.paths["darkflat"]] == ["DARKFLAT"] * 4
    assert {fits.getval(p, "IMAGETYP") for p in s.paths["darkflat"]} == {"DARKFLAT"}
    assert fits.getval(s.paths["flat"][0], "SWCREATE").startswith("N.I.N.A. 2")


def test_uint16_with_bzero_on_disk(mono):
    path = mono.paths["light"][0]
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        hdr, raw = hdul[0].header, hdul[0].data
        assert hdr["BITPIX"] == 16 and hdr["BZERO"] == 32768 and hdr["BSCALE"] == 1
        assert raw.dtype == np.dtype(">i2") and raw.shape == SHAPE
    data = fits.getdata(path)
    assert data.dtype == np.uint16


# --- physics ----------------------------------------------------------------------------


def test_bias_level_read_noise_and_flicker(mono):
    cam = mono.camera
    bias = load(mono.paths["bias"])
    assert abs(bias.mean() - cam.bias_level) < 1.0
    expected = np.sqrt(2) * cam.read_noise / cam.gain
    rows = kind_rows(mono, "bias")
    quiet = np.flatnonzero(~rows.flicker.to_numpy())
    diff = bias[quiet[0]] - bias[quiet[1]]
    assert clipped_std(diff) == pytest.approx(expected, rel=0.05)
    # Row/column pattern is fixed: the master bias shows it, and matches the truth.
    master = np.median(bias, axis=0)
    assert np.corrcoef(master.mean(axis=0), mono.truth.bias.values.mean(axis=0))[0, 1] > 0.95
    # Flickering column: +30 ADU in every third bias frame only.
    col = mono.truth.attrs["flicker_column"]
    jump = np.median(bias[:, :, col] - bias[:, :, col + 1] - (mono.truth.bias.values[:, col] - mono.truth.bias.values[:, col + 1]), axis=1)
    up = rows.flicker.to_numpy()
    assert 0.25 <= up.mean() <= 0.4
    assert np.all(np.abs(jump[up] - cam.flicker_column_jump) < 3)
    assert np.all(np.abs(jump[~up]) < 3)


def test_dark_current(mono):
    cam, truth = mono.camera, mono.truth
    master_bias = load(mono.paths["bias"]).mean(axis=0)
    rows = kind_rows(mono, "dark")
    long = (rows.exposure == 300).to_numpy()
    darks = load(mono.paths["dark"])[long]
    scale = np.mean(2 ** ((rows.ccd_temp[long] - cam.set_temperature) / cam.dark_doubling_temperature))
    increase = np.median(darks, axis=0) - master_bias
    hot = truth.hot_pixels.values
    # Against the truth map (amp glow and warm pixels included, hot pixels excluded).
    expected = truth.dark_current.values * 300 * scale
    assert increase[~hot].mean() == pytest.approx(expected[~hot].mean(), rel=0.05)
    # Against the camera parameter, away from the glowing corner and the defects.
    h, w = SHAPE
    centre = np.zeros(SHAPE, bool)
    centre[h // 4: 3 * h // 4, w // 8: w // 2] = True
    clean = centre & ~hot & ~truth.warm_pixels.values
    assert increase[clean].mean() == pytest.approx(cam.dark_current * 300 / cam.gain, rel=0.05)
    # Hot pixels really are hot, and the amp glow corner (top right) glows.
    assert np.median(increase[hot]) > 100 * cam.dark_current * 300 / cam.gain * 0.5
    assert increase[:5, -5:].mean() > 10 * increase[clean].mean()


def test_dark_current_doubles_every_six_degrees(tmp_path):
    kw = dict(shape=(64, 64), seed=3, defects=False, amp_glow=0.0, dark_current=0.2)
    cold = simulate_stack(tmp_path / "cold", "dark", 3, **kw)
    warm = simulate_stack(tmp_path / "warm", "dark", 3, temperature=-4.0, **kw)
    assert fits.getval(warm.paths["dark"][0], "SET-TEMP") == -4.0
    bias = cold.camera.bias_level
    ratio = (load(warm.paths["dark"]).mean() - bias) / (load(cold.paths["dark"]).mean() - bias)
    assert ratio == pytest.approx(2.0, rel=0.05)


def test_flats(mono):
    truth = mono.truth
    adc = mono.camera.adc_max
    flats = load(mono.paths["flat"])
    levels = flats.mean(axis=(1, 2)) / adc
    assert np.all((levels > 0.45) & (levels < 0.50))
    assert np.allclose(truth.flat.mean(dim=("y", "x")), 1.0, atol=1e-5)
    f = truth.flat.sel(filter="L").values
    h, w = SHAPE
    corners = np.mean([f[:4, :4].mean(), f[:4, -4:].mean(), f[-4:, :4].mean(), f[-4:, -4:].mean()])
    centre = f[h // 2 - 4: h // 2 + 4, w // 2 - 4: w // 2 + 4].mean()
    assert 0.65 < corners / centre < 0.85  # vignetting
    assert not np.allclose(truth.flat.sel(filter="L"), truth.flat.sel(filter="Ha"))  # own dust per filter
    cold = truth.cold_pixels.values
    assert cold.any() and f[cold].max() < 0.35 * centre
    # The master flat (dark-flat subtracted) matches the truth's shape.
    rows = kind_rows(mono, "flat")
    dflat = load([p for p, e in zip(mono.paths["darkflat"], kind_rows(mono, "darkflat").exposure) if e == 1.5]).mean(axis=0)
    master = flats[(rows["filter"] == "L").to_numpy()].mean(axis=0) - dflat
    master /= master.mean()
    assert np.std(master - f) < 0.01


def test_osc_colour_flats_and_headers(osc):
    assert osc.camera.bayer_pattern == "RGGB"
    hdr = fits.getheader(osc.paths["flat"][0])
    assert (hdr["BAYERPAT"], hdr["XBAYROFF"], hdr["YBAYROFF"], hdr["ROWORDER"]) == ("RGGB", 0, 0, "TOP-DOWN")
    flat = load(osc.paths["flat"][:1])[0]
    r, g1, g2, b = flat[0::2, 0::2].mean(), flat[0::2, 1::2].mean(), flat[1::2, 0::2].mean(), flat[1::2, 1::2].mean()
    assert g1 == pytest.approx(g2, rel=0.01)
    assert r < 0.8 * b and b < 0.9 * g1  # R 0.6 : G 1.0 : B 0.8
    assert r / g1 == pytest.approx(0.6, rel=0.1) and b / g1 == pytest.approx(0.8, rel=0.1)


def test_lights_trail_clipping_and_truth(mono):
    cam, truth = mono.camera, mono.truth
    lights = load(mono.paths["light"])
    rows = kind_rows(mono, "light")
    assert (lights == cam.adc_max).any(axis=(1, 2)).sum() >= 1  # bright stars clip at 65535
    assert lights.max() == 65535
    trail = truth.satellite_trail.values > 20
    assert trail.sum() > SHAPE[1]  # a line across the frame
    excess = []
    for i, light in enumerate(lights):
        scale = 2 ** ((rows.ccd_temp.iloc[i] - cam.set_temperature) / cam.dark_doubling_temperature)
        flat = truth.flat.sel(filter=rows["filter"].iloc[i]).values
        calibrated = (light - truth.bias.values - truth.dark_current.values * rows.exposure.iloc[i] * scale) / flat
        residual = calibrated - truth.light_signal.values[i]
        ok = (light < cam.adc_max) & ~truth.hot_pixels.values & ~truth.cold_pixels.values & ~trail
        # A perfect calibration recovers the truth: mean residual within the noise.
        r = residual[ok]
        mean = r[np.abs(r) < 6 * clipped_std(r)].mean()  # cosmic rays out
        assert abs(mean) < 1.0, (i, mean)
        excess.append(np.median(residual[trail & (light < cam.adc_max)]))
    has_trail = np.array(excess) > 50
    assert has_trail.sum() == 1
    assert list(has_trail) == list(truth.light_has_trail.values) == list(rows.satellite_trail)
    assert truth.attrs["satellite_trail_light"] == int(np.argmax(has_trail))


def test_cosmic_rays(mono):
    bias = load(mono.paths["bias"])
    rows = kind_rows(mono, "bias")
    col = mono.truth.attrs["flicker_column"]
    spikes = ((bias - mono.truth.bias.values) > 60)
    spikes[:, :, col] = False
    hits = spikes.any(axis=(1, 2))
    assert list(hits) == list(rows.cosmic_rays > 0)
    assert 0 < rows.cosmic_rays.sum() < 5 * len(rows)  # a few, in some bias frames
    darks = kind_rows(mono, "dark")
    assert darks[darks.exposure == 300].cosmic_rays.mean() > darks[darks.exposure == 60].cosmic_rays.mean()


def test_truth_contents(mono):
    t = mono.truth
    h, w = SHAPE
    assert t.bias.shape == t.dark_current.shape == (h, w)
    assert t.flat.shape == (2, h, w) and list(t["filter"].values) == ["L", "Ha"]
    assert t.light_signal.shape == (8, h, w)
    for name in ("bias", "dark_current", "flat", "light_signal", "satellite_trail"):
        assert t[name].dtype == np.float32
    for name in ("hot_pixels", "warm_pixels", "cold_pixels"):
        assert t[name].dtype == bool
    assert list(t.light_path.values) == [str(p) for p in mono.paths["light"]]
    assert t.attrs["gain"] == 0.8 and t.attrs["read_noise"] == 3.5 and t.attrs["seed"] == 5
    assert 0 < t.hot_pixels.values.mean() < 0.002
    cam = mono.camera
    centre = t.dark_current.values[h // 4: 3 * h // 4, w // 8: w // 2]  # away from the amp glow
    assert np.median(centre) == pytest.approx(cam.dark_current / cam.gain, rel=0.05)


# --- API behaviour ----------------------------------------------------------------------


def test_refuses_to_overwrite_a_session(tmp_path):
    counts = {"bias": 2, "dark": 0, "flat": 0, "darkflat": 0, "light": 0}
    first = simulate_session(tmp_path, shape=(32, 32), counts=counts, seed=1)
    before = _tree(tmp_path)
    with pytest.raises(OutputExistsError) as err:
        simulate_session(tmp_path, shape=(32, 32), counts=counts, seed=2)
    assert str(first.paths["bias"][0]) in str(err.value) and "overwrite" in str(err.value)
    assert _tree(tmp_path) == before  # nothing written
    second = simulate_session(tmp_path, shape=(32, 32), counts=counts, seed=2, overwrite=True)
    written = sorted(p for p in tmp_path.rglob("*.fits"))
    assert written == sorted(second.paths["bias"])  # the old seed's files are gone, not mixed in


def test_counts_progress_and_validation(tmp_path):
    calls = []
    s = simulate_session(tmp_path, shape=(24, 32), counts={"bias": 1, "dark": 0, "flat": 0, "darkflat": 0, "light": 0},
                         progress=lambda f, m: calls.append((f, m)))
    assert len(s.frames) == 1 and s.truth.light_signal.shape == (0, 24, 32)
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    with pytest.raises(ValueError, match="unknown frame kind"):
        simulate_session(tmp_path / "x", counts={"flats": 3})
    with pytest.raises(TypeError, match="unknown camera parameter"):
        simulate_session(tmp_path / "x", readnoise=3)
    with pytest.raises(ValueError, match="darkflat_style"):
        simulate_session(tmp_path / "x", darkflat_style="nina4")
    with pytest.raises(ValueError, match="kind"):
        simulate_stack(tmp_path / "x", "flatdark", 2)


def test_camera_overrides_and_custom_filters(tmp_path):
    s = simulate_stack(tmp_path, "flat", 2, shape=(32, 40), filter="R", bit_depth=12, read_noise=1.0,
                       filters=[FilterSpec("R", flat_exposure=2.0, flat_level=0.3)])
    assert isinstance(s.camera, CameraModel) and s.camera.bit_depth == 12
    data = load(s.paths["flat"])
    assert data.max() <= 4095 and data.mean() / 4095 == pytest.approx(0.3, abs=0.01)
    assert fits.getval(s.paths["flat"][0], "FILTER") == "R"
