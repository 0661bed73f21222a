"""Compare rejections (teaching), driven in Python in every master step: pick two rejections, Compare, read
the figure and the figures; the same values as compare_rejections called directly; flats calibrated and
normalised as their master; errors and Cancel as messages."""
from __future__ import annotations

import numpy as np
import pytest

from astrocal_widgets.simulate import FilterSpec, simulate_session
from astrocal_widgets.widgets import CalibrationDashboard
from astrocal_widgets.widgets import compare_view
from astrocal_widgets.workflow import compare_rejections

from widget_support import descendants, errors, images

SHAPE = (64, 96)
COUNTS = {"bias": 7, "dark": 5, "flat": 6, "darkflat": 6, "light": 1}
MASTER_STEPS = ("Bias", "Darks", "Dark flats & flat calibration", "Flat integration")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare") / "night"
    simulate_session(root, shape=SHAPE, counts=COUNTS, seed=4, filters=[FilterSpec("L", flat_exposure=1.5)])
    return root


@pytest.fixture
def dashboard(night):
    return CalibrationDashboard(night)


def _texts(box) -> str:
    return " ".join(child.value for child in box.children)


def test_every_master_step_has_the_comparison(dashboard):
    for title in MASTER_STEPS:
        dashboard.go(title)
        view = dashboard.steps[title].panel.compare
        assert view is not None and view.widget in list(descendants(dashboard.step.widget))
        assert view.compare_button.description == "Compare" and view.action.cancel_button.disabled
        assert not view.output.children  # nothing computed until asked


def test_bias_compare_shows_the_figure_and_the_figures(dashboard, monkeypatch):
    calls = []
    real = compare_view.compare_rejections
    monkeypatch.setattr(compare_view, "compare_rejections", lambda *a, **k: calls.append(k) or real(*a, **k))
    dashboard.go("Bias")
    view = dashboard.step.panel.compare
    # the threshold boxes follow the algorithm, in its own units
    view.first.rejection.value = "percentile"
    assert (view.first.low.value, view.first.high.value) == (0.2, 0.1)
    view.first.rejection.value = "none"
    assert view.first.low.disabled and view.first.choice() == "none"
    view.first.rejection.value = "auto"  # 7 frames: averaged sigma
    assert "runs as <b>averaged_sigma</b>" in view.first.resolved.value and not view.first.low.disabled
    view.first.rejection.value = "sigma"
    view.second.rejection.value = "mad"
    view.second.low.value, view.second.high.value = 2.0, 2.5
    view.crop.value = 32
    view.compare_button.click()
    assert not errors(view.widget), errors(view.widget)
    assert len(calls) == 1 and calls[0]["crop_size"] == 32 and calls[0]["combine"] == "average"
    pictures = images(view.output)
    assert len(pictures) == 1 and bytes(pictures[0].value).startswith(PNG)
    result = view.results[view.key()]
    text = view.output.children[1].value
    assert "sigma 3/3" in text and "mad 2/2.5" in text and f"{result.second.fraction:.3%}" in text
    assert f"noise of the master {result.first.noise:.4g} ADU" in text
    assert result.crop[1] - result.crop[0] == 32 and result.n_frames == 7
    # the same values as the workflow function called directly: the widget adds no math
    direct = compare_rejections(dashboard.step.panel.selected, ("sigma", 3.0, 3.0), ("mad", 2.0, 2.5), crop_size=32)
    np.testing.assert_array_equal(result.difference, direct.difference)
    np.testing.assert_array_equal(result.second.rejected_high, direct.second.rejected_high)
    # asked again: shown from the cache; another choice clears the view until compared
    shown = view.output.children
    view.compare_button.click()
    assert len(calls) == 1 and view.output.children == shown
    view.second.high.value = 3.0
    assert not view.output.children
    view.second.high.value = 2.5
    assert view.output.children == shown
    panel = dashboard.step.panel
    panel.combine.value = "median"  # the step's own choices count too
    assert not view.output.children
    panel.combine.value = "average"
    assert view.output.children == shown
    # only the last comparisons are kept (their arrays are a few MB each at the default crop)
    monkeypatch.setattr(compare_view, "KEEP_RESULTS", 1)
    view.second.rejection.value = "percentile"
    view.compare_button.click()
    assert len(calls) == 2 and list(view.results) == [view.key()] and len(view._views) == 2


def test_excluded_frames_are_left_out_of_the_comparison(dashboard):
    dashboard.go("Darks")
    panel = dashboard.step.panel
    browser = panel.browser
    path = str(panel.selected.paths[1])
    browser.boxes[path].value = True  # excluded in the frame browser
    try:
        view = panel.compare
        view.first.rejection.value = "percentile"  # 4 frames left: sigma needs 5
        view.second.rejection.value = "sigma"
        view.compare_button.click()
        shown = errors(view.widget)
        assert shown and "sigma needs at least 5 frames, the set has 4" in shown[0] and "Traceback" not in shown[0]
        view.second.rejection.value = "none"
        view.compare_button.click()
        assert not errors(view.widget)
        assert view.results[view.key()].n_frames == 4 and path in view.results[view.key()].excluded
    finally:
        browser.boxes[path].value = False


def test_flats_compare_after_their_dark_flats_are_saved(dashboard):
    dashboard.go("Flat integration")
    view = dashboard.step.panel.compare
    view.crop.value = 48
    view.compare_button.click()  # the dark flats' master is not saved yet: a message, not a traceback
    shown = errors(view.widget)
    assert shown and "dark flat" in shown[0] and "Traceback" not in shown[0] and not view.output.children
    dashboard.go("Dark flats & flat calibration")
    panel = dashboard.step.panel
    panel.integrate_button.click()
    panel.save_button.click()
    assert not errors(panel.widget)
    dashboard.go("Flat integration")
    view.compare_button.click()
    assert not errors(view.widget), errors(view.widget)
    result = view.results[view.key()]
    assert result.kind == "flat" and result.normalization == "multiplicative"  # the flats' own normalisation
    assert "normalisation multiplicative" in view.output.children[1].value
    session = dashboard.state.session
    direct = compare_rejections(dashboard.step.panel.selected, ("sigma", 3.0, 3.0),
                                ("winsorized_sigma", 3.0, 3.0), crop_size=48, library=session.masters_dir,
                                night=session.catalog)
    np.testing.assert_array_equal(result.first.master, direct.first.master)
    # a choice the registry refuses is a message in the step
    view.second.rejection.value = "esd"
    view.second.low.value = 1.5
    view.compare_button.click()
    shown = errors(view.widget)
    assert shown and "esd: low and high are" in shown[0]


def test_cancel_keeps_nothing_and_it_runs_again(dashboard):
    dashboard.go("Bias")
    view = dashboard.step.panel.compare
    view.crop.value = 48
    seen = []

    def moved(change):
        if 0 < change["new"] < 1 and not seen:
            seen.append(change["new"])
            view.action.cancel_button.click()
    view.progress.bar.observe(moved, "value")
    view.action.background = True  # as in a kernel
    view.compare_button.click()
    assert view.action.wait(120)
    view.progress.bar.unobserve(moved, "value")
    assert seen and "Cancelled" in _texts(view.feedback) and not view.output.children and not view.results
    assert view.action.cancel_button.disabled and not view.compare_button.disabled
    view.action.background = False
    view.compare_button.click()
    assert images(view.output) and not errors(view.widget)
