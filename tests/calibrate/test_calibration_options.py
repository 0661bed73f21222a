"""CalibrationOptions: one set of documented options shared by the session, its steps and the CLI."""
from __future__ import annotations

import dataclasses
import inspect

import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets import cli
from astrocal_widgets.calibrate import (CalibrationOptions, calibrate_flats, calibrate_light, calibrate_session)
from astrocal_widgets.calibrate.matching import DEFAULT_TEMPERATURE_TOLERANCE

COUNTS = {"bias": 5, "dark": 5, "flat": 5, "darkflat": 5, "light": 2}
FIELDS = [f.name for f in dataclasses.fields(CalibrationOptions)]


def test_defaults_and_named_tolerance():
    options = CalibrationOptions()
    assert options.strict and options.cosmetic and not options.dark_optimization
    assert options.temperature_tolerance == DEFAULT_TEMPERATURE_TOLERANCE
    assert options.library == () and options.integration() == {}
    assert options.light_options() == {"allow_dark_scaling": True, "dark_optimization": False, "cosmetic": True,
                                       "k_hot": 5.0, "k_cold": 5.0, "pedestal": 0.0, "overscan": "auto"}


@pytest.mark.parametrize("changes, words", [
    ({"k_hot": 0}, "k_hot must be"),
    ({"k_cold": float("nan")}, "k_cold must be"),
    ({"temperature_tolerance": -1}, "temperature_tolerance must be"),
    ({"pedestal": float("inf")}, "pedestal must be"),
    ({"rejection": "sigmaclip"}, "rejection must be one of auto, none"),
    ({"rejection_thresholds": (3, 3)}, "need a named rejection"),
    ({"rejection": "esd", "rejection_thresholds": (3, 3)}, "esd"),
])
def test_bad_values_are_refused_when_the_options_are_made(changes, words):
    with pytest.raises(ValueError, match=words):
        CalibrationOptions(**changes)


def test_replace_names_the_fields_on_a_typo():
    with pytest.raises(TypeError, match="unknown calibration option stirct; the options are strict"):
        CalibrationOptions().replace(stirct=False)
    changed = CalibrationOptions(library="/a").replace(rejection="sigma", rejection_thresholds=[2, 3])
    assert changed.library == ("/a",) and changed.rejection_thresholds == (2.0, 3.0)
    assert changed.integration() == {"rejection": "sigma", "low": 2.0, "high": 3.0}


def test_the_calibration_functions_share_the_options():
    """No function repeats the options as its own keywords: each takes ``options`` and ``**changes``.

    (``library`` of a light or flat step is tonight's masters, its first argument; the options' other
    nights' library is the session's to index.)"""
    for function in (calibrate_session, calibrate_light, calibrate_flats):
        parameters = dict(inspect.signature(function).parameters)
        assert "options" in parameters, function.__name__
        assert parameters.pop("changes").kind is inspect.Parameter.VAR_KEYWORD
        if function is not calibrate_session:
            assert list(parameters)[1] == "library"
            del parameters["library"]
        assert not set(parameters) & set(FIELDS), (function.__name__, set(parameters) & set(FIELDS))


def test_options_and_keywords_give_the_same_night(tmp_path):
    night = tmp_path / "night"
    aw.simulate_session(night, shape=(48, 64), counts=COUNTS, seed=5)
    options = CalibrationOptions(pedestal=100.0, cosmetic=False, rejection="sigma", rejection_thresholds=(3.0, 3.0))
    by_object = calibrate_session(night, options, output=tmp_path / "a")
    by_keywords = calibrate_session(night, output=tmp_path / "b", pedestal=100.0, cosmetic=False, rejection="sigma",
                                    rejection_thresholds=(3.0, 3.0))
    overridden = calibrate_session(night, CalibrationOptions(pedestal=7.0), output=tmp_path / "c", pedestal=100.0,
                                   cosmetic=False, rejection="sigma", rejection_thresholds=(3.0, 3.0))
    for one, other in ((by_object, by_keywords), (by_object, overridden)):
        assert len(one.lights) == len(other.lights) == 4
        for a, b in zip(one.lights, other.lights):
            assert (fits.getdata(a.output) == fits.getdata(b.output)).all()
            assert fits.getheader(a.output)["CALOPTS"] == fits.getheader(b.output)["CALOPTS"]
    header = fits.getheader(by_object.lights[0].output)
    assert "pedestal=100" in header["CALOPTS"] and "cosmetic=False" in header["CALOPTS"]
    assert fits.getheader(by_object.masters[0].path)["REJECT"] == "sigma"
    with pytest.raises(TypeError, match="unknown calibration option"):
        calibrate_session(night, output=tmp_path / "d", cosmetics=False)


def test_the_cli_builds_the_options(monkeypatch, tmp_path):
    seen = {}

    def fake(directory, options=None, **kwargs):
        seen["options"] = options
        raise SystemExit(0)

    monkeypatch.setattr("astrocal_widgets.calibrate.calibrate_session", fake)
    with pytest.raises(SystemExit):
        cli.main(["calibrate", str(tmp_path), "--lenient", "--no-cosmetic", "--dark-optimization", "--rejection",
                  "winsorized_sigma", "--low", "2.5", "--library", str(tmp_path / "lib")])
    assert seen["options"] == CalibrationOptions(strict=False, cosmetic=False, dark_optimization=True,
                                                 rejection="winsorized_sigma", rejection_thresholds=(2.5, 3.0),
                                                 library=(str(tmp_path / "lib"),))
