"""Every line of CalibrationResult.summary() says what was applied, read back from the outputs.

One small simulated night, calibrated with sets removed (no bias, no dark, no flat, no dark flats,
darks of another exposure only) and with options (dark optimisation, cosmetic correction off). Each
light's summary line is compared with the calibrated file's own header (BIASFILE, DARKFILE,
FLATFILE, DARKSCAL, DARKMETH, NDEFECTS), and each master flat's line with the masters its flats
were calibrated with.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.calibrate import calibrate_session
from astrocal_widgets.simulate.scene import FilterSpec

SHAPE = (48, 64)


@pytest.fixture(scope="module")
def full_night(tmp_path_factory):
    root = tmp_path_factory.mktemp("summary")
    return aw.simulate_session(root / "full", shape=SHAPE, seed=21, filters=[FilterSpec("L", flat_exposure=1.5)],
                               counts={"bias": 5, "dark": 5, "flat": 5, "darkflat": 5, "light": 2})


def _night_without(full, target: Path, drop) -> Path:
    """The night as links to the full night's files, without the frames ``drop(kind, exposure)`` picks."""
    for _, row in full.frames.iterrows():
        if drop(row["kind"], float(row["exposure"])):
            continue
        path = Path(row["path"])
        link = target / path.relative_to(full.directory)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return target


def _light_lines(result) -> dict[str, str]:
    """Calibrated light output -> the words in brackets of its summary line."""
    out = {}
    for line in result.summary().splitlines():
        found = re.match(r"\s+(?:calibrated|reused) .+ -> (.+) \((.+)\)$", line)
        if found:
            out[Path(found.group(1)).name] = found.group(2)
    return out


def _assert_light_lines_match_headers(result, cosmetic: bool = True) -> list[fits.Header]:
    lines = _light_lines(result)
    assert len(lines) == len(result.lights) > 0, result.summary()
    headers = []
    for light in result.lights:
        header = fits.getheader(light.output)
        headers.append(header)
        words = lines[Path(light.output).name].split(", ")
        assert words[0] == ("bias" if header["BIASFILE"] else "no bias")
        if header["DARKFILE"]:
            assert words[1] == f"dark x{header['DARKSCAL']:.3f} {header['DARKMETH']}"
        else:
            assert words[1] == "no dark"
            assert header["DARKSCAL"] == 1.0 and "dark x" not in lines[Path(light.output).name]
        assert words[2] == ("flat" if header["FLATFILE"] else "no flat")
        if not cosmetic:
            assert words[3] == "cosmetic correction off" and header["NDEFECTS"] == 0
        elif not header["DARKFILE"] and not header["FLATFILE"]:
            assert words[3] == "no defect map (no dark or flat)" and header["NDEFECTS"] == 0
        else:
            assert words[3] == f"{header['NDEFECTS']} defects corrected"
        assert header["CALSTAT"] == "".join(c for c, key in (("B", "BIASFILE"), ("D", "DARKFILE"),
                                                              ("F", "FLATFILE")) if header[key])
    return headers


def _master_flat_line(result) -> str:
    lines = [l for l in result.summary().splitlines() if re.match(r"\s+(made|reused) master_flat", l)]
    assert len(lines) == 1, result.summary()
    return lines[0]


def test_full_night(full_night, tmp_path):
    result = calibrate_session(full_night.directory, output=tmp_path / "out")
    headers = _assert_light_lines_match_headers(result)
    assert all(h["DARKMETH"] == "matching exposure" and h["BIASFILE"] and h["FLATFILE"] for h in headers)
    line = _master_flat_line(result)
    assert re.search(r"flats calibrated with master_darkflat\S*\.fits$", line), line
    assert any("(dark flat)" in d for d in result.decisions)
    # A rerun reuses every output and says the same.
    again = calibrate_session(full_night.directory, output=tmp_path / "out")
    assert _light_lines(again) == _light_lines(result)
    assert _master_flat_line(again).replace("reused", "made") == line


def test_no_dark_at_all(full_night, tmp_path):
    """The issue's case: a light calibrated without any dark was summarised 'dark x1.000 matching exposure'."""
    night = _night_without(full_night, tmp_path / "night", lambda kind, exposure: kind == "dark")
    result = calibrate_session(night, output=tmp_path / "out", strict=False)
    headers = _assert_light_lines_match_headers(result)
    assert all(h["DARKFILE"] == "" and h["BIASFILE"] and h["FLATFILE"] for h in headers)
    assert all("no dark" in words and "matching exposure" not in words for words in _light_lines(result).values())


def test_no_bias_and_no_flat(full_night, tmp_path):
    night = _night_without(full_night, tmp_path / "night", lambda kind, exposure: kind in ("bias", "flat"))
    result = calibrate_session(night, output=tmp_path / "out", strict=False)
    headers = _assert_light_lines_match_headers(result)
    assert all(h["BIASFILE"] == "" and h["FLATFILE"] == "" and h["DARKFILE"] for h in headers)
    assert all(words.startswith("no bias, dark x1.000 matching exposure, no flat")
               for words in _light_lines(result).values())


def test_nothing_but_lights_and_flats_without_calibration(full_night, tmp_path):
    night = _night_without(full_night, tmp_path / "night",
                           lambda kind, exposure: kind in ("bias", "dark", "darkflat"))
    result = calibrate_session(night, output=tmp_path / "out", strict=False)
    _assert_light_lines_match_headers(result)
    assert all(words.startswith("no bias, no dark, flat") for words in _light_lines(result).values())
    assert _master_flat_line(result).endswith("flats not calibrated (no dark flat or bias)")


def test_flats_calibrated_by_the_bias_without_dark_flats(full_night, tmp_path):
    night = _night_without(full_night, tmp_path / "night", lambda kind, exposure: kind == "darkflat")
    result = calibrate_session(night, output=tmp_path / "out", strict=False)
    _assert_light_lines_match_headers(result)
    assert re.search(r"flats calibrated with master_bias\S*\.fits$", _master_flat_line(result))
    assert any("(bias: no matching dark flat)" in d for d in result.decisions)


def test_scaled_and_optimised_darks_and_cosmetic_off(full_night, tmp_path):
    """Only the 60 s darks for 300 s lights: scaled by the exposure ratio, or optimised."""
    night = _night_without(full_night, tmp_path / "night", lambda kind, exposure: kind == "dark" and exposure == 300)
    scaled = calibrate_session(night, output=tmp_path / "scaled", strict=False)
    headers = _assert_light_lines_match_headers(scaled)
    assert all(h["DARKMETH"] == "exposure ratio" and h["DARKSCAL"] == pytest.approx(5.0) for h in headers)
    optimised = calibrate_session(night, output=tmp_path / "optimised", strict=False, dark_optimization=True)
    headers = _assert_light_lines_match_headers(optimised)
    assert all(h["DARKMETH"] == "optimised" for h in headers)
    assert all(re.search(r"dark x\d\.\d{3} optimised", words) for words in _light_lines(optimised).values())
    plain = calibrate_session(night, output=tmp_path / "plain", strict=False, cosmetic=False)
    _assert_light_lines_match_headers(plain, cosmetic=False)
    assert all(words.endswith("cosmetic correction off") for words in _light_lines(plain).values())
