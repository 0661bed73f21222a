"""The dashboard driven through its widget objects (no browser): set values, click buttons, check state and files."""
from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import ipywidgets as w
import pytest
from astropy.io import fits

import astrocal_widgets
from astrocal_widgets.widgets import STEP_TITLES, CalibrationDashboard
from astrocal_widgets.widgets import master_steps

from widget_support import descendants, errors, images

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> CalibrationDashboard:
    return CalibrationDashboard.simulated(tmp_path_factory.mktemp("dash"))


def test_stepper_has_the_seven_steps_and_back_next(dashboard):
    assert [s.title for s in dashboard.steps] == list(STEP_TITLES)
    dashboard.go(STEP_TITLES[0])
    assert dashboard.back_button.description == "Back" and dashboard.next_button.description == "Next"
    assert dashboard.back_button.disabled and not dashboard.next_button.disabled
    for k in range(1, len(STEP_TITLES)):
        dashboard.next_button.click()
        assert dashboard.index == k
        assert html.escape(STEP_TITLES[k]) in dashboard.body.children[0].value
    assert dashboard.next_button.disabled
    dashboard.back_button.click()
    assert dashboard.index == len(STEP_TITLES) - 2
    # The step list is clickable too, and shows each step's status and reason.
    step_buttons = [b for b in dashboard.step_list.children if isinstance(b, w.Button)]
    assert len(step_buttons) == len(STEP_TITLES)
    step_buttons[STEP_TITLES.index("Darks")].click()
    assert dashboard.step.title == "Darks"
    dashboard.go("Session")


def test_steps_are_found_by_title(dashboard):
    assert len(set(STEP_TITLES)) == len(STEP_TITLES)  # a title names one step
    darks = dashboard.steps["Darks"]
    assert darks is dashboard.steps[STEP_TITLES.index("Darks")] and darks.panel.kind == "dark"
    dashboard.go("Darks")
    assert dashboard.step is darks and html.escape("Darks") in dashboard.body.children[0].value
    with pytest.raises(KeyError, match="no step titled 'Dark'; the steps are: .*Darks"):
        dashboard.go("Dark")
    assert dashboard.step is darks  # a wrong title moves nowhere
    dashboard.go(STEP_TITLES[0])


def test_the_written_step_order_is_the_dashboards():
    """README, docs/dashboards.md (its arrows and its table) and notebook 07 list the steps in STEPS order."""
    import json

    root = Path(astrocal_widgets.__file__).parents[1]
    notebook = json.loads((root / "notebooks" / "07-dashboard.ipynb").read_text())
    texts = {name: (root / name).read_text() for name in ("README.md", "docs/dashboards.md")}
    texts["notebooks/07-dashboard.ipynb"] = "\n".join("".join(c["source"]) for c in notebook["cells"]
                                                       if c["cell_type"] == "markdown")
    for name, text in texts.items():
        arrows = re.findall(r"\*\*([^*]+→[^*]+)\*\*", " ".join(text.split()))
        assert arrows, f"{name}: no step order written"
        assert [t.strip() for t in arrows[0].split("→")] == list(STEP_TITLES), name
    rows = re.findall(r"^\| ([^|]+?) \| ", texts["docs/dashboards.md"], flags=re.M)
    table = [t for row in rows for t in row.split(", ") if t in STEP_TITLES]
    assert table == list(STEP_TITLES), "docs/dashboards.md: the table of steps"


def test_initial_statuses_say_what_blocks(dashboard):
    statuses = dashboard.statuses()
    assert statuses["Session"][0] == "done" and "96 frames in 9 sets" in statuses["Session"][1]
    state, reason = statuses["Flat integration"]
    assert state == "blocked" and "dark flats" in reason
    notes = [x.value for x in dashboard.step_list.children if isinstance(x, w.HTML)]
    assert any("blocked" in n and "dark flats" in n for n in notes)


def test_session_step_shows_catalogue_groups_and_check_summary(dashboard):
    dashboard.go("Session")
    step = dashboard.step
    text = " ".join(x.value for x in descendants(step.widget) if isinstance(x, w.HTML))
    assert "master_bias_-10C_g139_o21_1x1_640x480.fits" in text  # the sets table names each master file
    assert "2022-04-10" in text  # the catalogue (file names) is there
    assert step.check_button.description == "Check"
    step.check_button.click()
    assert not errors(step.widget)
    assert "OVERALL" in step.report.children[0].value
    assert len(step.progress.history) >= 3 and step.progress.bar.value == 1.0
    assert dashboard.statuses()["Histogram checks"][0] in ("done", "warning")


def test_bias_step_integrate_shows_progress_plots_and_saves(dashboard, tmp_path):
    dashboard.go("Bias")
    panel = dashboard.step.panel
    assert panel.integrate_button.description == "Integrate" and panel.save_button.description == "Save"
    assert "20</b> bias frames; 50-100 are recommended" in panel.count.value
    assert "runs as <b>winsorized_sigma</b>" in panel.resolved.value  # auto, 20 frames
    assert panel.save_button.disabled
    panel.integrate_button.click()
    assert not errors(panel.widget)
    history = panel.progress.history
    middle = [v for v in history if 0 < v < 1]
    assert len(set(middle)) >= 3 and history == sorted(history) and history[-1] == 1.0  # a moving bar
    pictures = images(panel.plots)
    assert len(pictures) == 5  # master, histogram, rejection maps, frames, noise curve
    assert all(bytes(p.value).startswith(PNG) for p in pictures)
    summary = panel.summary.children[0].value
    assert "winsorized_sigma" in summary and "recommended 50-100 frames" in summary
    path = dashboard.state.session.master_path(panel.selected)
    assert not path.exists()
    panel.save_button.click()
    assert path.exists()
    with fits.open(path) as hdul:
        assert hdul[0].header["IMAGETYP"] == "MASTER BIAS" and hdul[0].header["NCOMBINE"] == 20
    assert dashboard.statuses()["Bias"][0] == "warning"  # saved, but 20 < 50 recommended
    # Saving again without "replace" is refused with a readable message, and the file is kept.
    before = path.read_bytes()
    panel.save_button.click()
    shown = errors(panel.widget)
    assert shown and "exists" in shown[0] and "Traceback" not in shown[0]
    assert path.read_bytes() == before


def test_master_can_be_panned_and_zoomed_with_ipympl(dashboard):
    from conftest import skip_or_fail
    from astrocal_widgets.widgets._display import ipympl_available
    if not ipympl_available():
        skip_or_fail("ipympl is not installed (pip install ipympl): the zoom view is optional")
    from ipympl.backend_nbagg import Canvas
    dashboard.go("Bias")
    panel = dashboard.step.panel
    panel.integrate_button.click()  # cached from the earlier test
    grid = panel.plots.children[0]
    assert isinstance(grid.children[0].children[1], w.Image)
    panel.zoom.value = True
    canvas = grid.children[0].children[1]
    assert isinstance(canvas, Canvas) and canvas.toolbar is not None and not errors(panel.widget)
    assert len(images(panel.plots)) == 4  # the other plots stay PNGs
    panel.zoom.value = False
    assert isinstance(grid.children[0].children[1], w.Image) and len(images(panel.plots)) == 5


def test_results_are_cached_across_back_next(dashboard, monkeypatch):
    calls = []
    real = master_steps.integrate_master
    monkeypatch.setattr(master_steps, "integrate_master", lambda *a, **k: calls.append(1) or real(*a, **k))
    dashboard.go("Darks")
    panel = dashboard.step.panel
    panel.group.value = 0
    panel.integrate_button.click()
    assert len(calls) == 1
    shown = images(panel.plots)
    dashboard.next_button.click()
    dashboard.back_button.click()
    assert images(panel.plots) == shown  # the same views, not redrawn
    panel.integrate_button.click()
    assert len(calls) == 1
    panel.rejection.value = "sigma"
    assert "chosen by the user" in panel.resolved.value
    assert not images(panel.plots)  # another choice: nothing shown until integrated
    panel.integrate_button.click()
    assert len(calls) == 2
    panel.rejection.value = "auto"
    assert images(panel.plots) == shown


def test_thresholds_reach_the_engine(dashboard):
    dashboard.go("Darks")
    panel = dashboard.step.panel
    panel.group.value = 1
    panel.rejection.value = "sigma"
    panel.default_thresholds.value = False
    assert not panel.low.disabled
    panel.low.value, panel.high.value = 2.0, 2.5
    panel.integrate_button.click()
    attrs = dashboard.state.results[panel.key()].dataset.attrs
    assert attrs["rejection"] == "sigma" and attrs["low"] == 2.0 and attrs["high"] == 2.5
    panel.default_thresholds.value = True
    panel.rejection.value = "auto"


def _integrate_and_save_all(panel):
    for k in range(len(panel.groups)):
        panel.group.value = k
        panel.integrate_button.click()
        panel.save_button.click()
        assert not errors(panel.widget), errors(panel.widget)


def test_dark_flats_then_flat_calibration_then_flat_integration(dashboard):
    dashboard.go("Darks")
    _integrate_and_save_all(dashboard.step.panel)
    dashboard.go("Dark flats & flat calibration")
    step = dashboard.step
    _integrate_and_save_all(step.panel)
    assert step.calibrate_button.description == "Calibrate"
    step.calibrate_button.click()
    text = step.flat_view.children[0].children[0].value
    level = float(re.search(r"a level of ([\d.]+) ADU", text).group(1))
    assert 400 < level < 700  # the simulated pedestal (500 ADU) plus a little dark signal
    assert len(images(step.flat_view)) == 2
    dashboard.go("Flat integration")
    assert dashboard.statuses()["Flat integration"][0] == "todo"
    panel = dashboard.step.panel
    assert not panel.integrate_button.disabled
    panel.integrate_button.click()
    assert not errors(panel.widget)
    assert len(images(panel.plots)) == 6  # + the radial (vignetting) profile
    result = dashboard.state.results[panel.key()]
    assert result.profile["level"].iloc[-1] < 0.9  # the corners are vignetted
    assert "flats calibrated with master_darkflat" in panel.summary.children[0].value
    _integrate_and_save_all(panel)
    assert dashboard.statuses()["Flat integration"][0] in ("done", "warning")


def test_histogram_checks_step_shows_every_set_with_its_histogram(dashboard):
    dashboard.go("Histogram checks")
    step = dashboard.step
    step.check_button.click()
    assert not errors(step.widget)
    sets = step.sets.children[1:]
    assert len(sets) == len(dashboard.state.session.groups())
    for box in sets:
        assert len(images(box)) == 1 and bytes(images(box)[0].value).startswith(PNG)
        assert re.search(r"(PASS|WARN|FAIL)</span>", box.children[0].value)
        # One row per check: per-frame results are counted ("all 20 pass", "3 of 20 fail"), not listed.
        table = box.children[1].children[0].value
        names = re.findall(r"<tr>\s*<td[^>]*>\w+</td>\s*<td>(\w+)</td>", table)
        assert names and len(names) == len(set(names)), names


def test_lights_step_calibrates_one_then_all(dashboard):
    dashboard.go("Lights")
    step = dashboard.step
    step.calibrate_button.click()
    assert not errors(step.widget)
    assert len(images(step.view)) == 2
    assert "master_dark_300s" in step.view.children[0].children[0].value
    calibrated = dashboard.state.session.calibrated_dir
    assert not calibrated.exists()  # the preview writes nothing
    step.all_button.click()
    assert not errors(step.widget)
    files = sorted(calibrated.rglob("*_calibrated.fits"))
    assert len(files) == 8
    assert str(calibrated) in step.result.children[0].value
    # The masters saved from the dashboard were reused, not rebuilt.
    reused = {Path(m.path).name for m in dashboard.state.calibration.masters if m.reused}
    assert {p.name for p in dashboard.state.saved.values()} <= reused
    assert dashboard.statuses()["Lights"][0] in ("done", "warning")


def test_flat_integration_is_blocked_until_dark_flats_or_bias_are_saved(tmp_path):
    board = CalibrationDashboard.simulated(tmp_path, shape=(96, 128))
    board.go("Flat integration")
    state, reason = board.statuses()["Flat integration"]
    # the selected set (Ha, 8 s) names the master it waits for (per set, see test_widgets_prerequisites)
    assert state == "blocked" and "save the master dark flat 8 s, gain 139, offset 21 first" in reason
    panel = board.step.panel
    assert panel.integrate_button.disabled
    panel.integrate()  # called anyway: a readable error naming the set and its master, nothing written
    shown = errors(panel.widget)
    assert shown and "flat, filter Ha" in shown[0] and "master dark flat 8 s" in shown[0]
    assert not list(board.state.session.masters_dir.glob("*.fits"))


def test_a_missing_folder_is_a_message_not_a_traceback(tmp_path):
    board = CalibrationDashboard(tmp_path / "nowhere")
    shown = errors(board.widget)
    assert shown and "nowhere" in shown[0] and "Traceback" not in shown[0]
    assert board.steps == [] and board.next_button.disabled


def test_colour_camera_flat_shows_channel_levels(tmp_path):
    board = CalibrationDashboard.simulated(tmp_path, camera="osc", shape=(120, 160))
    board.go("Dark flats & flat calibration")
    _integrate_and_save_all(board.step.panel)
    board.go("Flat integration")
    panel = board.step.panel
    panel.integrate_button.click()
    assert not errors(panel.widget)
    summary = panel.summary.children[0].value
    assert re.search(r"channel levels: R [\d.]+, G [\d.]+, B [\d.]+", summary)
    profile = board.state.results[panel.key()].profile
    assert profile["level"].iloc[0] == pytest.approx(1.0, abs=0.01)  # channels equalised before profiling
    assert 0.5 < profile["level"].iloc[-1] < 0.9


def test_widgets_hold_no_numerics_and_computation_imports_no_ui():
    root = Path(astrocal_widgets.__file__).parent
    for path in (root / "widgets").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not imported & {"numpy", "scipy", "numba", "dask", "dask.array", "xarray"}, path
    for path in root.rglob("*.py"):
        if "widgets" in path.parts:
            continue
        text = path.read_text()
        assert "ipywidgets" not in text.replace("ipywidgets.Image", "").replace("ipywidgets.Image(", ""), path


def test_results_follow_the_saved_masters_and_save_writes_what_is_shown(tmp_path, monkeypatch):
    board = CalibrationDashboard.simulated(tmp_path, shape=(96, 128))
    board.go("Dark flats & flat calibration")
    darkflats = board.step.panel
    _integrate_and_save_all(darkflats)
    calls = []
    real = master_steps.integrate_master
    monkeypatch.setattr(master_steps, "integrate_master", lambda *a, **k: calls.append(1) or real(*a, **k))
    board.go("Flat integration")
    flats = board.step.panel
    flats.integrate_button.click()
    assert len(calls) == 1
    flats.integrate_button.click()
    assert len(calls) == 1  # cached
    # Replacing a dark flat master makes the flat result (and the flat's before/after) out of date.
    board.go("Dark flats & flat calibration")
    darkflats.group.value = 0
    darkflats.integrate_button.click()  # a saved result is kept (it reads from its file): not integrated again
    assert len(calls) == 1 and images(darkflats.plots)
    darkflats.overwrite.value = True
    darkflats.save_button.click()
    assert not errors(darkflats.widget) and "replaced the earlier master" in darkflats.feedback.children[0].value
    assert darkflats.overwrite.value is False  # never carried over
    board.go("Flat integration")
    assert not images(flats.plots)  # the old flat is not shown as if it were current
    flats.integrate_button.click()
    assert len(calls) == 2
    # Save writes the master shown for the choices shown, or nothing.
    flats.combine.value = "median"
    assert flats.save_button.disabled and not images(flats.plots)
    flats.save()
    assert "Integrate the set with these choices first" in flats.feedback.children[0].value
    assert board.state.master_on_disk(flats.selected) is None
    flats.combine.value = "average"
    flats.save_button.click()
    with fits.open(board.state.master_on_disk(flats.selected)) as hdul:
        assert hdul[0].header["COMBINE"] == "average"


def test_threshold_boxes_show_the_resolved_algorithms_defaults(dashboard):
    dashboard.go("Bias")
    panel = dashboard.step.panel
    panel.rejection.value = "percentile"
    assert (panel.low.value, panel.high.value) == (0.2, 0.1)  # fractions of the median, not sigmas
    panel.rejection.value = "sigma"
    assert (panel.low.value, panel.high.value) == (3.0, 3.0)
    panel.rejection.value = "auto"  # 20 frames: winsorized sigma
    assert (panel.low.value, panel.high.value) == (3.0, 3.0)
    panel.overwrite.value = True
    panel.group.value = 0  # same set: re-selecting does not fire; a set change resets it (see above)
    panel.overwrite.value = False


def test_knobs_draw_below_themselves_only_when_moved():
    import ipywidgets as w

    from astrocal_widgets.widgets import knobs

    calls = []
    slider = w.IntSlider(value=3, min=1, max=10)
    panel = knobs(lambda n, name: calls.append((n, name)), n=slider, name=w.Text(value="a"))
    assert isinstance(panel.children[-1], w.Output) and panel.children[0] is slider
    assert calls == []  # nothing drawn when made: the notebook draws the default in a plain cell
    slider.value = 5
    panel.children[1].value = "b"
    assert calls == [(5, "a"), (5, "b")]
