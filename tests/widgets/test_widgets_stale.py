"""The Lights step's options for Calibrate all, and stale products marked in the step list with Rebuild
stale, driven through the widget objects (steps found by title)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import ipywidgets as w
from astropy.io import fits

from astrocal_widgets.calibrate import CalibrationOptions
from astrocal_widgets.calibrate.options import OPTIONS_FILE
from astrocal_widgets.widgets import CalibrationDashboard

from widget_support import descendants, errors


SHAPE = (48, 64)


def _calibrated_lights(board) -> list[Path]:
    return sorted(board.state.session.calibrated_dir.rglob("*_calibrated.fits"))


def _replace_master(board, title: str, rejection: str = "sigma") -> Path:
    """Integrate the step's first set with another rejection and save it over the saved master."""
    board.go(title)
    panel = board.step.panel
    panel.rejection.value = rejection
    panel.integrate_button.click()
    panel.overwrite.value = True
    panel.save_button.click()
    assert not errors(panel.widget)
    return board.state.master_on_disk(panel.selected)


def test_calibrate_all_options_are_the_dataclass_fields_and_reach_the_lights_headers(tmp_path):
    board = CalibrationDashboard.simulated(tmp_path, shape=SHAPE)
    board.go("Lights")
    step = board.step
    form = step.options_form
    fields = dataclasses.fields(CalibrationOptions)
    assert list(form.controls) == [f.name for f in fields]  # one widget per field, in order
    assert form.options() == CalibrationOptions()  # the dataclass's defaults
    assert "robust sigmas" in form.controls["k_hot"].tooltip  # the field's documentation
    assert set(form.controls["rejection"].options) >= {"auto", "sigma", "winsorized_sigma"}

    form.controls["rejection_thresholds"].value = "three"
    step.all_button.click()
    assert "rejection thresholds must be two numbers" in errors(step.widget)[0]
    assert not _calibrated_lights(board)  # nothing ran

    library = tmp_path / "library"
    library.mkdir()
    form.controls["rejection_thresholds"].value = ""
    form.controls["strict"].value = False
    form.controls["cosmetic"].value = False
    form.controls["dark_optimization"].value = True
    form.controls["pedestal"].value = 100.0
    form.controls["overscan"].value = "off"
    form.controls["library"].value = str(library)
    step.all_button.click()
    assert not errors(step.widget)
    lights = _calibrated_lights(board)
    assert lights
    for light in lights:
        words = fits.getheader(light)["CALOPTS"].split()
        assert {"cosmetic=False", "dark_optimization=True", "pedestal=100", "overscan=off"} <= set(words)
        assert fits.getheader(light)["PEDESTAL"] == 100
    saved = json.loads((board.state.session.output / OPTIONS_FILE).read_text())["options"]
    assert saved["strict"] is False and saved["library"] == [str(library)] and saved["pedestal"] == 100

    # After a restart the form shows the options the night was calibrated with.
    again = CalibrationDashboard(board.directory)
    again.go("Lights")
    shown = again.step.options_form.options()
    assert shown == form.options() and shown.pedestal == 100 and not shown.cosmetic

    # Other options on a calibrated night: refused, then replaced when told to.
    step.options_form.controls["pedestal"].value = 200.0
    step.all_button.click()
    assert "other options" in errors(step.widget)[0]
    step.overwrite.value = True
    step.all_button.click()
    assert not errors(step.widget)
    assert all(fits.getheader(p)["PEDESTAL"] == 200 for p in _calibrated_lights(board))


def test_a_replaced_master_marks_what_it_made_stale_and_rebuild_stale_clears_it(tmp_path):
    board = CalibrationDashboard.simulated(tmp_path, shape=SHAPE)
    board.go("Lights")
    step = board.step
    step.all_button.click()  # every master built, every light calibrated
    assert not errors(step.widget)
    assert board.state.stale == [] and step.rebuild_button.disabled
    assert "stale" not in board.statuses()["Lights"][1]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted(board.state.session.output.rglob("*.fits")) if "masters" in p.parts
              or "calibrated" in p.parts}

    bias = _replace_master(board, "Bias")
    darkflat = _replace_master(board, "Dark flats & flat calibration")
    statuses = board.statuses()
    status, reason = statuses["Lights"]
    assert status == "warning" and "calibrated lights stale" in reason and bias.name in reason
    status, reason = statuses["Flat integration"]  # the flats were calibrated with the dark flats
    assert status == "warning" and "stale" in reason and darkflat.name in reason
    assert "stale" not in statuses["Bias"][1] and "stale" not in statuses["Darks"][1]
    notes = [x.value for x in descendants(board.step_list) if isinstance(x, w.HTML) and "stale" in x.value]
    assert notes  # the step list shows the reason
    stale = {s.path for s in board.state.stale}

    # The dependency graph is the products' provenance: a new dashboard on the folder sees the same.
    again = CalibrationDashboard(board.directory)
    assert {s.path for s in again.state.stale} == stale
    assert again.statuses()["Lights"][0] == "warning"

    board.go("Lights")
    assert not step.rebuild_button.disabled
    shown = " ".join(x.value for x in descendants(step.stale_view) if isinstance(x, w.HTML))
    assert all(Path(p).name in shown for p in stale) and "which was replaced since" in shown
    step.rebuild_button.click()
    assert not errors(step.widget)
    assert board.state.stale == [] and step.rebuild_button.disabled and not step.stale_view.children
    assert "stale" not in board.statuses()["Lights"][1] and "stale" not in board.statuses()["Flat integration"][1]
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before}
    for path in before:
        if str(path) in stale:
            assert after[path] != before[path], f"{path.name} was not made again"
        elif path not in (bias, darkflat):
            assert after[path] == before[path], f"{path.name} changed though it was not stale"
