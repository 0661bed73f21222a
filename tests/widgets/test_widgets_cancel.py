"""Cancel on the dashboard's long actions, driven in Python as a browser would: click the action, click
Cancel while it runs (the action in a worker thread, as in a kernel), see "cancelled", start it again."""
from __future__ import annotations

import pytest

from astrocal_widgets.widgets import CalibrationDashboard
from astrocal_widgets.widgets._display import LongAction

COUNTS = {"bias": 5, "dark": 5, "flat": 5, "darkflat": 5, "light": 2}


@pytest.fixture
def board(tmp_path) -> CalibrationDashboard:
    return CalibrationDashboard.simulated(tmp_path, shape=(240, 320), counts=COUNTS, seed=1)


def texts(box) -> str:
    return " ".join(child.value for child in box.children)


class CancelWhenTheBarMoves(list):
    """Clicks Cancel the first time the progress bar shows work under way (what a person sees); holds the
    values it saw."""

    def __init__(self, progress, action: LongAction) -> None:
        super().__init__()
        self.progress, self.action = progress, action
        progress.bar.observe(self.moved, "value")

    def moved(self, change) -> None:
        if 0 < change["new"] < 1 and not self:
            self.append(change["new"])
            assert not self.action.cancel_button.disabled  # enabled while the action runs
            self.action.cancel_button.click()

    def stop(self) -> None:
        self.progress.bar.unobserve(self.moved, "value")


def run_in_background(action: LongAction, button) -> None:
    action.background = True  # as in a kernel: the click returns at once
    assert action.cancel_button.disabled  # nothing runs yet
    button.click()


def test_integrate_cancelled_shows_cancelled_keeps_nothing_and_runs_again(board):
    board.go("Bias")
    panel = board.step.panel
    action = panel.action
    seen = CancelWhenTheBarMoves(panel.progress, action)
    run_in_background(action, panel.integrate_button)
    assert action.wait(120)
    assert seen, "the progress bar never moved"
    assert panel.progress.label.value == "cancelled" and "Cancelled" in texts(panel.feedback)
    assert "astrocal-cancelled" in panel.feedback.children[0]._dom_classes
    assert not board.state.results and panel.save_button.disabled  # nothing half-made kept
    assert not board.state.session.masters_dir.exists() or not any(board.state.session.masters_dir.iterdir())
    assert action.cancel_button.disabled and not panel.integrate_button.disabled
    assert action.cancel_button.description == "Cancel"

    seen.stop()  # the second run is left alone
    panel.integrate_button.click()
    assert action.wait(120)
    assert panel.progress.label.value == "done" and len(board.state.results) == 1
    assert not panel.save_button.disabled and panel.plots.children
    panel.save_button.click()
    assert board.state.master_on_disk(panel.selected) is not None


def test_calibrate_all_cancelled_keeps_no_result_and_runs_again(board):
    board.go("Lights")
    step = board.step
    seen = CancelWhenTheBarMoves(step.progress, step.action)
    run_in_background(step.action, step.all_button)
    assert step.calibrate_button.disabled and step.all_button.disabled  # one action at a time on the step
    assert step.action.wait(300)
    assert seen and step.progress.label.value == "cancelled" and "Cancelled" in texts(step.feedback)
    assert board.state.calibration is None and not step.result.children
    assert board.statuses()["Lights"][0] == "todo"
    seen.stop()
    step.all_button.click()
    assert step.action.wait(300)
    assert board.state.calibration is not None and step.progress.label.value == "done"


def test_check_cancelled_keeps_no_report_and_runs_again(board):
    board.go("Histogram checks")
    step = board.step
    seen = CancelWhenTheBarMoves(step.progress, step.action)
    run_in_background(step.action, step.check_button)
    assert step.action.wait(120)
    assert seen and step.progress.label.value == "cancelled" and board.state.checks is None
    seen.stop()
    step.check_button.click()
    assert step.action.wait(120)
    assert board.state.checks is not None and step.sets.children


def test_one_long_action_at_a_time(board):
    board.go("Bias")
    panel = board.step.panel
    lights = board.steps["Lights"]
    started = []

    def try_another(change) -> None:  # while Integrate runs, Calibrate all is asked for
        if 0 < change["new"] < 1 and not started:
            started.append(lights.action.start(lambda cancel: 1 / 0, lambda _: None, lights.feedback))

    panel.progress.bar.observe(try_another, "value")
    run_in_background(panel.action, panel.integrate_button)
    assert panel.action.wait(120)
    assert started == [False] and "Another action is running" in texts(lights.feedback)
    assert len(board.state.results) == 1  # the running one was not disturbed
