"""The frame browser of a master step, driven in Python: browse, exclude, Integrate, Save; the outliers in one
click; one frame read at a time; the next dashboard and calibrate_session honour the exclusions."""
from __future__ import annotations

import hashlib
from pathlib import Path

import ipywidgets as w
import numpy as np
import pytest
from astropy.io import fits

from astrocal_widgets.calibrate import calibrate_session
from astrocal_widgets.frames import read_exclusions
from astrocal_widgets.io import READ_STATISTICS
from astrocal_widgets.simulate import simulate_session
from astrocal_widgets.widgets import CalibrationDashboard
from astrocal_widgets.widgets.frame_browser import PAGE_ROWS
from astrocal_widgets.workflow import exclude_frames

from widget_support import descendants, images

SHAPE = (64, 96)
COUNTS = {"bias": 7, "dark": 0, "flat": 0, "darkflat": 0, "light": 1}
PLANTED = 5  # the bias frame given a light leak


@pytest.fixture
def night(tmp_path):
    root = tmp_path / "night"
    session = simulate_session(root, shape=SHAPE, counts=COUNTS, seed=5)
    biases = sorted(str(p) for p in session.paths["bias"])
    with fits.open(biases[PLANTED], mode="update") as hdul:  # a light leak: +150 ADU on the whole frame
        hdul[0].data = (hdul[0].data.astype(np.int32) + 150).astype(np.uint16)
    return root


def _bias_step(dashboard):
    dashboard.go("Bias")
    return dashboard.step.panel, dashboard.step.panel.browser


def test_browse_to_frame_3_exclude_it_and_integrate_names_it(night):
    inputs = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in night.rglob("*.fits")}
    dashboard = CalibrationDashboard(night)
    panel, browser = _bias_step(dashboard)
    paths = [str(p) for p in panel.selected.paths]
    assert browser.index.value == 0 and len([x for x in descendants(browser.view) if isinstance(x, w.Image)]) == 2
    for _ in range(3):
        browser.next_button.click()
    assert browser.index.value == 3
    browser.reason.value = "satellite trail"
    browser.exclude_this.value = True
    rel = Path(paths[3]).relative_to(night).as_posix()
    assert read_exclusions(night) == {rel: "satellite trail"}
    assert browser.boxes[paths[3]].value and "1 of the set's 7 excluded" in panel.count.value
    panel.integrate_button.click()
    assert panel.state.results[panel.key()].n_frames == 6
    panel.save_button.click()
    master = panel.state.master_on_disk(panel.selected)
    header = fits.getheader(master)
    assert header["NCOMBINE"] == 6 and header["EXCL1"] == paths[3] and header["EXCR1"] == "satellite trail"
    assert any("excluded " + Path(paths[3]).name in h for h in header["HISTORY"])
    # the browser's box, back and forth: the list follows, Previous walks back
    browser.previous_button.click()
    assert browser.index.value == 2 and not browser.exclude_this.value
    # never moved or changed
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in inputs} == inputs
    # the next dashboard session and calibrate_session honour the list: the saved master is up to date
    again = CalibrationDashboard(night)
    _, browser2 = _bias_step(again)
    assert browser2.boxes[paths[3]].value and set(browser2.excluded()) == {paths[3]}
    result = calibrate_session(night, cosmetic=False)
    bias = next(m for m in result.masters if m.frame_type == "bias")
    assert bias.reused and [f.path for f in result.excluded[bias.label]] == [paths[3]]


def test_exclude_the_outliers_in_one_click(night):
    dashboard = CalibrationDashboard(night)
    panel, browser = _bias_step(dashboard)
    paths = [str(p) for p in panel.selected.paths]
    browser.outliers_button.click()  # measures the set first
    review = browser.reviews[panel.selected.label]
    assert review.table.loc[PLANTED, "status"] in ("warn", "fail")
    assert "Outlier" in review.table.loc[PLANTED, "reason"]
    assert set(review.outliers()) == {paths[PLANTED]}
    listed = read_exclusions(night)
    assert list(listed) == [Path(paths[PLANTED]).relative_to(night).as_posix()]
    assert listed[Path(paths[PLANTED]).relative_to(night).as_posix()].startswith("outlier: Outlier:")
    assert browser.boxes[paths[PLANTED]].value and sum(b.value for b in browser.boxes.values()) == 1
    # the table sorts: by median, descending, the leaky frame comes first, marked with its reason
    browser.sort.value, browser.descending.value = "median", True
    first = browser.rows.children[1]
    assert first.children[1].description == str(PLANTED) and "Outlier" in first.children[2].value
    # unticking puts it back
    browser.boxes[paths[PLANTED]].value = False
    assert read_exclusions(night) == {}
    browser.outliers_button.click()
    panel.integrate_button.click()
    assert panel.state.results[panel.key()].excluded == {paths[PLANTED]: listed[
        Path(paths[PLANTED]).relative_to(night).as_posix()]}


def test_browsing_reads_one_frame_at_a_time(night):
    dashboard = CalibrationDashboard(night)
    panel, browser = _bias_step(dashboard)
    frame_bytes = SHAPE[0] * SHAPE[1] * 2  # uint16 on disk
    for _ in range(3):
        READ_STATISTICS.reset()
        browser.next_button.click()
        assert READ_STATISTICS.bytes == frame_bytes and READ_STATISTICS.rows == SHAPE[0]
    READ_STATISTICS.reset()
    browser.previous_button.click()  # shown before: kept, not read again
    assert READ_STATISTICS.bytes == 0


def test_building_the_dashboard_reads_no_frame_for_the_browser(night):
    READ_STATISTICS.reset()
    dashboard = CalibrationDashboard(night)
    before = READ_STATISTICS.bytes
    _bias_step(dashboard)
    assert READ_STATISTICS.bytes - before == SHAPE[0] * SHAPE[1] * 2  # the first frame, once the step is shown


def test_the_flat_calibration_preview_takes_its_flat_from_the_set_without_the_excluded_ones(tmp_path):
    root = tmp_path / "night"
    simulate_session(root, shape=SHAPE, counts={"bias": 0, "dark": 0, "flat": 3, "darkflat": 3, "light": 1}, seed=5)
    dashboard = CalibrationDashboard(root)
    dashboard.go("Dark flats & flat calibration")
    step = dashboard.step
    for k in range(len(step.panel.groups)):
        step.panel.group.value = k
        step.panel.integrate_button.click()
        step.panel.save_button.click()
    paths = [Path(p) for p in step.flats[step.flat_group.value].paths]
    step.flat_index.value = 0
    step.calibrate_button.click()
    assert f"{paths[0].name}: subtracted" in step.flat_view.children[0].children[0].value
    exclude_frames(dashboard.state.session, {str(paths[0]): "shadow of a cable"})  # e.g. from the Flat step
    step.calibrate_button.click()
    text = step.flat_view.children[0].children[0].value
    assert f"{paths[0].name} is excluded, shown instead: {paths[1].name}: subtracted" in text, text
    assert len(images(step.flat_view)) == 2


def test_the_table_of_a_large_set_is_paged_and_the_outliers_of_every_page_are_excluded(tmp_path):
    n, planted = PAGE_ROWS + 20, (10, PAGE_ROWS + 5)  # two pages, an outlier on each
    root = tmp_path / "night"
    session = simulate_session(root, shape=SHAPE, counts={"bias": n, "dark": 0, "flat": 0, "darkflat": 0,
                                                             "light": 1}, seed=5)
    biases = sorted(str(p) for p in session.paths["bias"])
    for k in planted:
        with fits.open(biases[k], mode="update") as hdul:
            hdul[0].data = (hdul[0].data.astype(np.int32) + 150).astype(np.uint16)
    dashboard = CalibrationDashboard(root)
    panel, browser = _bias_step(dashboard)
    paths = [str(p) for p in panel.selected.paths]
    assert paths == biases and browser.n_pages == 2
    assert len(browser.boxes) == PAGE_ROWS and set(browser.boxes) == set(paths[:PAGE_ROWS])
    assert browser.previous_page.disabled and "page 1 of 2" in browser.page_label.value
    browser.next_page.click()
    assert set(browser.boxes) == set(paths[PAGE_ROWS:]) and browser.next_page.disabled
    assert not browser.previous_page.disabled and "page 2 of 2" in browser.page_label.value
    browser.index.value = 3  # the table follows the frame browsed
    assert browser.page == 0 and paths[3] in browser.boxes
    # every outlier is excluded, not only those of the page shown
    browser.outliers_button.click()
    listed = read_exclusions(root)
    assert sorted(listed) == sorted(Path(paths[k]).relative_to(root).as_posix() for k in planted)
    assert browser.boxes[paths[planted[0]]].value and paths[planted[1]] not in browser.boxes
    assert sum(b.value for b in browser.boxes.values()) == 1 and "2 excluded" in browser.page_label.value
    browser.index.value = planted[1]
    assert browser.page == 1 and browser.boxes[paths[planted[1]]].value and browser.exclude_this.value
    # sorted by median, descending: the two leaky frames top the first page, marked and ticked
    browser.sort.value, browser.descending.value = "median", True
    assert browser.page == 0
    top = browser.rows.children[1:3]
    assert {int(r.children[1].description) for r in top} == set(planted)
    assert all("Outlier" in r.children[2].value and r.children[0].value for r in top)
    # a box of the page unticks its frame; the browser's own box follows across pages
    browser.boxes[paths[planted[1]]].value = False
    assert list(read_exclusions(root)) == [Path(paths[planted[0]]).relative_to(root).as_posix()]
    assert not browser.exclude_this.value
    browser.index.value = planted[0]
    assert browser.exclude_this.value
    browser.next_page.click()
    assert browser.page == 1 and len(browser.boxes) == n - PAGE_ROWS
