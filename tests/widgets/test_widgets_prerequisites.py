"""Each set waits for the masters it is calibrated with: a flat set is never calibrated with the bias
while its own dark flats wait unsaved, and the Lights step says which matching masters are missing."""
from __future__ import annotations

import ipywidgets as w
import pytest
from astropy.io import fits

from astrocal_widgets.calibrate import flat_prerequisites, light_prerequisites
from astrocal_widgets.errors import MissingMasterError
from astrocal_widgets.frames import scan
from astrocal_widgets.widgets import CalibrationDashboard
from astrocal_widgets.workflow import open_session, preview_light

from widget_support import descendants, errors

SHAPE = (96, 128)


def warnings_shown(widget) -> list[str]:
    return [x.value for x in descendants(widget) if isinstance(x, w.HTML) and "astrocal-warning" in x._dom_classes]


def _select(panel, text: str) -> None:
    panel.group.value = next(i for i, g in enumerate(panel.groups) if text in g.label)


def _integrate_and_save(panel, text: str) -> None:
    _select(panel, text)
    panel.integrate_button.click()
    panel.save_button.click()
    assert not errors(panel.widget), errors(panel.widget)


def test_a_flat_set_waits_for_its_own_dark_flats(tmp_path):
    # Two filters: L flats at 1.5 s, Ha flats at 8 s, NINA 3 dark flats at both exposures.
    board = CalibrationDashboard.simulated(tmp_path, shape=SHAPE)
    board.go("Bias")
    _integrate_and_save(board.step.panel, "bias")  # a bias is there to fall back on: it must not be used
    board.go("Dark flats & flat calibration")
    _integrate_and_save(board.step.panel, "1.5 s")
    state, reason = board.statuses()["Dark flats & flat calibration"]
    assert state == "todo" and reason == "1.5 s saved, 8 s not saved"

    board.go("Flat integration")
    flats = board.step.panel
    _select(flats, "filter Ha")
    state, reason = board.statuses()["Flat integration"]
    assert state == "blocked" and "save the master dark flat 8 s, gain 139, offset 21 first" in reason
    assert flats.integrate_button.disabled
    assert any("master dark flat 8 s" in t for t in warnings_shown(flats.widget))
    flats.integrate()  # called anyway: refused by the engine, naming the set, nothing integrated
    assert any("master dark flat 8 s" in t for t in errors(flats.widget))
    assert not list(board.state.session.masters_dir.glob("master_flat_*"))
    # the L flats have their dark flats: not blocked
    _select(flats, "filter L")
    assert board.statuses()["Flat integration"][0] == "todo" and not flats.integrate_button.disabled

    board.go("Dark flats & flat calibration")
    _integrate_and_save(board.step.panel, "8 s")
    assert board.statuses()["Dark flats & flat calibration"][0] in ("done", "warning")
    board.go("Flat integration")
    _select(flats, "filter Ha")
    assert not flats.integrate_button.disabled
    _integrate_and_save(flats, "filter Ha")
    master = board.state.master_on_disk(flats.selected)
    header = fits.getheader(master)
    assert header["CALMAS1"].startswith("master_darkflat_8s") and "CALMAS2" not in header
    assert "flats calibrated with master_darkflat_8s" in flats.summary.children[0].value


def test_without_dark_flats_the_bias_fallback_is_allowed_and_warned(tmp_path):
    board = CalibrationDashboard.simulated(tmp_path, shape=SHAPE, counts={"darkflat": 0})
    board.go("Flat integration")
    state, reason = board.statuses()["Flat integration"]
    assert state == "blocked" and "save the master bias" in reason  # the bias is what these flats need
    board.go("Bias")
    _integrate_and_save(board.step.panel, "bias")
    board.go("Flat integration")
    flats = board.step.panel
    state, reason = board.statuses()["Flat integration"]
    assert state == "warning" and "no dark flats in the night match" in reason and "bias" in reason
    assert not flats.integrate_button.disabled
    flats.integrate_button.click()
    assert not errors(flats.widget)
    summary = flats.summary.children[0].value
    assert "flats calibrated with master_bias" in summary and "no dark flats in the night match" in summary
    assert any("no dark flats in the night match" in t for t in warnings_shown(flats.widget))


def test_the_lights_step_lists_the_unsaved_matching_masters_before_it_runs(tmp_path):
    board = CalibrationDashboard.simulated(tmp_path, shape=SHAPE)
    board.go("Bias")
    _integrate_and_save(board.step.panel, "bias")
    board.go("Darks")
    _integrate_and_save(board.step.panel, "300 s")
    board.go("Lights")
    step = board.step
    step.light.value = next(i for i, p in enumerate(step.lights["path"]) if "_Ha_" in p)
    text = step.uses.value
    assert "master bias" in text and "master dark 300 s" in text
    assert "not saved yet" in text and "master flat filter Ha" in text
    assert step.calibrate_button.disabled
    step.calibrate_one()  # called anyway: says what to save, calibrates nothing
    assert any("master flat filter Ha" in t for t in warnings_shown(step.widget))
    assert not step.view.children
    with pytest.raises(MissingMasterError, match="master flat filter Ha"):
        preview_light(board.state.session, int(step.light.value))


def test_prerequisites_come_from_the_matching_rules(tmp_path):
    from astrocal_widgets.simulate import simulate_session
    simulate_session(tmp_path / "night", shape=(32, 48), counts={"bias": 3, "dark": 3, "flat": 3, "darkflat": 3,
                                                                 "light": 1})
    catalog = scan(tmp_path / "night")
    ha, = [g for g in catalog.groups("flat") if "Ha" in g.label]
    needs = flat_prerequisites(ha, catalog, tmp_path / "night" / "masters")
    assert [(m.role, m.name) for m in needs.masters] == [("darkflat", "master dark flat 8 s, gain 139, offset 21")]
    assert needs.blocked and not needs.warnings
    light = catalog.table[catalog.table["frame_type"] == "light"].iloc[0]
    roles = [m.role for m in light_prerequisites(light, catalog, tmp_path / "night" / "masters").masters]
    assert roles == ["bias", "dark", "flat"]
    session = open_session(tmp_path / "night")
    assert session.set_progress("darkflat") == "1.5 s not saved, 8 s not saved"
