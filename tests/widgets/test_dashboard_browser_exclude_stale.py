"""A frame excluded in the frame browser, then a replaced master bias made stale, clicked in a real browser.

notebooks/07-dashboard.ipynb served by Voila on a small simulated night with a light leak planted in one
bias frame and no dark flats (so the flats are calibrated with the master bias), driven in chromium the
way a person does it, one page and one kernel for both scenarios:

* Exclude: on the Bias step, Measure the frames (the leaky frame is marked), Next to it, type a reason,
  tick "exclude this frame", Integrate, Save. The saved master names the frame (``EXCL1``, its
  provenance), ``excluded.txt`` lists it, and ``astrocal calibrate NIGHT --output NIGHT`` (the command,
  as a subprocess) leaves it out, says so, and reuses that master.
* Stale: Calibrate all on the Lights step, then the Bias set integrated again with another rejection and
  saved with "replace an existing file": the flats and lights built on the old bias are shown stale,
  with the reason, in the step list and on the Lights step; Rebuild stale clears the marks and makes
  exactly those files again (every other product byte for byte as before).

With ``ASTROCAL_SCREENSHOTS=DIR`` the frame browser's and the stale state's screenshots are copied to DIR
(docs/make_dashboard_screenshots.py). Skips for a user without chromium, voila or playwright; fails in
CI (CI=true).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astrocal_widgets.frames import read_exclusions
from astrocal_widgets.frames.exclusions import exclusion_list_path
from astrocal_widgets.io.provenance import read_provenance
from astrocal_widgets.simulate import simulate_session
from astrocal_widgets.widgets import STEP_TITLES
from browser_support import (NOTEBOOK, OFFLINE_NOISE, KernelMemoryMonitor, Walk, launch_chromium, open_voila,
                             require_browser_tools, serve_voila)

# A minute or more: deselect with -m 'not slow' for a quick run (CI runs everything).
pytestmark = pytest.mark.slow

WAIT = 60_000  # ms: the longest a page update may take (generous: CI's 2 cores are shared by 4 test workers)

SHAPE = (240, 320)
#: No dark flats: the flats are calibrated with the master bias, so replacing it makes them stale.
COUNTS = {"bias": 9, "dark": 5, "flat": 5, "darkflat": 0, "light": 2}
PLANTED = 3  # the bias frame given a light leak (frame 3 in the browser)
REASON = "light leak"
#: Another rejection than the one "auto" picks for 8 frames: a different master bias.
REPLACEMENT_REJECTION = "mad"


def leaky_night(root: Path) -> tuple[Path, str]:
    """A small simulated night, bias frame :data:`PLANTED` with +150 ADU all over (a light leak)."""
    session = simulate_session(root, shape=SHAPE, counts=COUNTS, seed=7)
    leaky = sorted(str(p) for p in session.paths["bias"])[PLANTED]
    with fits.open(leaky, mode="update") as hdul:
        hdul[0].data = (hdul[0].data.astype(np.int32) + 150).astype(np.uint16)
    return root, leaky


def products(night: Path) -> dict[Path, str]:
    """SHA-256 of every master, defect map and calibrated light of the night's output folder."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("masters", "calibrated") for p in sorted((night / folder).rglob("*.fits"))}


def wait_until(condition, what: str, timeout: float = 60.0):
    """Poll ``condition()`` until it returns something true (a file the kernel writes, ...)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:.0f} s")
        time.sleep(0.1)


def browser_next(page):
    """The frame browser's Next (an arrow icon and "Next"), not the dashboard's Next."""
    return page.locator(".astrocal-dashboard button.widget-button:has(i.fa-arrow-right)").filter(
        has_text=re.compile(r"^\s*Next\s*$"))


def frame_browser(page):
    """The frame browser of the step shown: the box under the heading "The frames: ..."."""
    return page.locator(".astrocal-dashboard h4", has_text="The frames:").locator(
        "xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")


def step_notes(walk: Walk) -> dict[str, str]:
    """The step list's note under each step title (its status and reason), by title."""
    notes = walk.body().locator("[class*='astrocal-step-']").all_inner_texts()
    return dict(zip(STEP_TITLES, notes))


def test_exclude_a_frame_then_replace_the_bias_and_rebuild_stale(tmp_path):
    require_browser_tools()
    from playwright.sync_api import expect, sync_playwright

    night, leaky = leaky_night(tmp_path / "night")
    leaky_rel = Path(leaky).relative_to(night).as_posix()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    figures: dict[str, float] = {}
    t0 = time.monotonic()
    with serve_voila(NOTEBOOK, log_dir=tmp_path, env={"ASTROCAL_FRAMES": str(night)}) as (url, server), \
            KernelMemoryMonitor(server.pid, include_kernel_children=True) as memory, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = open_voila(browser, url, server=server, viewport={"width": 1400, "height": 1000},
                              ready=lambda pg: pg.get_by_role("button", name="Next", exact=True))
            walk = Walk(page, shots, expect)
            walk.memory = memory
            figures["page_rendered_s"] = time.monotonic() - t0

            # ---------------------------------------------------------------- A. exclude a frame
            t_a = time.monotonic()
            walk.go("Bias")
            browser_box = frame_browser(page)
            expect(browser_box).to_be_visible(timeout=WAIT)
            browser_box.get_by_role("button", name="Measure the frames").click()
            # the leaky frame's row: marked by the checks, with the reason
            leak_row = browser_box.locator(".widget-html-content", has_text=Path(leaky).name)
            expect(leak_row).to_contain_text("Outlier", timeout=60_000)
            expect(leak_row).to_contain_text(re.compile(r"\b(warn|fail)\b"), timeout=WAIT)
            slider = browser_box.get_by_role("slider")
            for k in range(1, PLANTED + 1):
                browser_next(page).click()
                expect(slider).to_have_attribute("aria-valuetext", str(k), timeout=WAIT)
            walk.images_loaded("Bias, frame browser", 2)  # the frame and its histogram
            browser_box.get_by_label("Reason").fill(REASON)
            browser_box.get_by_role("checkbox", name="exclude this frame").check()
            listed = wait_until(lambda: read_exclusions(night), "the exclusion list written by the tick")
            assert listed == {leaky_rel: REASON}
            expect(walk.body()).to_contain_text(f"1 of the set's {COUNTS['bias']} excluded", timeout=WAIT)
            expect(leak_row).to_contain_text(f"excluded: {REASON}", timeout=WAIT)
            walk.no_errors("Bias, frame excluded")
            _element_shot(page, browser_box, shots / "8-frame-browser.png")

            walk.click_and_watch("Integrate", "Bias", lambda: expect(
                page.get_by_role("button", name="Save", exact=True)).to_be_enabled(timeout=120_000))
            page.get_by_role("button", name="Save", exact=True).click()
            walk.wait_text("Saved /")
            master = wait_until(lambda: next((night / "masters").glob("master_bias_*.fits"), None),
                                "the saved master bias")
            header = fits.getheader(master)
            assert header["EXCL1"] == leaky and header["EXCR1"] == REASON
            assert header["NCOMBINE"] == COUNTS["bias"] - 1
            record = read_provenance(master)
            assert [f.name for f in record.files("excluded")] == [leaky]
            assert leaky not in {f.name for f in record.files("frame")}
            assert leaky_rel in exclusion_list_path(night).read_text()
            saved_bias = hashlib.sha256(master.read_bytes()).hexdigest()

            # the command honours the same list: it reuses that master and says what it left out
            run = subprocess.run([sys.executable, "-m", "astrocal_widgets", "calibrate", str(night),
                                  "--output", str(night)], capture_output=True, text=True, timeout=600,
                                 env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                     [str(NOTEBOOK.parents[1]), os.environ.get("PYTHONPATH", "")])))
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
            assert re.search(rf"excluded \(1\) by {re.escape(str(exclusion_list_path(night)))}", run.stdout), \
                run.stdout[-3000:]
            assert f"left out {Path(leaky).name} (exclusion list: {REASON})" in run.stdout, run.stdout[-3000:]
            assert hashlib.sha256(master.read_bytes()).hexdigest() == saved_bias  # reused, not rebuilt
            for light in (night / "calibrated").rglob("*_calibrated.fits"):
                used = read_provenance(light).file("bias")
                assert used is not None and used.name == master.name and used.sha256 == saved_bias
            figures["A_exclude_s"] = time.monotonic() - t_a
            walk.mark("A: exclude, Integrate, Save")

            # ------------------------------------------------- C. a replaced bias makes products stale
            t_c = time.monotonic()
            walk.go("Lights")
            walk.click_and_watch("Calibrate all", "Lights", lambda: walk.wait_text("calibrated lights in"))
            before = products(night)
            assert len([p for p in before if p.name.endswith("_calibrated.fits")]) == 2 * COUNTS["light"]
            assert not any("stale" in note for note in step_notes(walk).values())

            walk.go("Bias")
            page.get_by_label("Rejection", exact=True).select_option(REPLACEMENT_REJECTION)
            expect(walk.body()).to_contain_text(f"Rejection {REPLACEMENT_REJECTION} runs as", timeout=WAIT)
            walk.click_and_watch("Integrate", "Bias again", lambda: expect(
                page.get_by_role("button", name="Save", exact=True)).to_be_enabled(timeout=120_000))
            page.get_by_role("checkbox", name="replace an existing file").check()
            page.get_by_role("button", name="Save", exact=True).click()
            walk.wait_text("replaced the earlier master")
            assert hashlib.sha256(master.read_bytes()).hexdigest() != saved_bias
            note = walk.body().locator("[class*='astrocal-step-']")  # the step list redraws after the message
            expect(note.nth(STEP_TITLES.index("Lights"))).to_contain_text("calibrated lights stale", timeout=WAIT)
            notes = step_notes(walk)
            assert "stale" in notes["Flat integration"] and master.name in notes["Flat integration"], notes
            assert "calibrated lights stale" in notes["Lights"] and master.name in notes["Lights"], notes
            assert "stale" not in notes["Darks"] and "stale" not in notes["Bias"], notes

            walk.go("Lights")
            stale_box = walk.body().locator(".astrocal-stale")
            expect(stale_box).to_be_visible(timeout=WAIT)
            shown = stale_box.inner_text()
            stale_names = [p.name for p in before if p.name != master.name and (
                p.name.startswith("master_flat_") or p.name.startswith("defects_")
                or p.name.endswith("_calibrated.fits"))]
            assert all(name in shown for name in stale_names), shown
            assert "which was replaced since" in shown and master.name in shown
            expect(page.get_by_role("button", name="Rebuild stale")).to_be_enabled(timeout=WAIT)
            walk.shot("9-stale")

            walk.click_and_watch("Rebuild stale", "Lights", lambda: expect(stale_box).to_have_count(0, timeout=180_000))
            expect(page.get_by_role("button", name="Rebuild stale")).to_be_disabled(timeout=WAIT)
            expect(note.nth(STEP_TITLES.index("Lights"))).not_to_contain_text("stale", timeout=WAIT)
            notes = step_notes(walk)
            assert not any("stale" in note for note in notes.values()), notes
            after = products(night)
            assert set(after) == set(before)
            for path in before:
                if path.name in stale_names:
                    assert after[path] != before[path], f"{path.name} was stale and was not made again"
                elif path != master:
                    assert after[path] == before[path], f"{path.name} changed though it was not stale"
            assert after[master] == hashlib.sha256(master.read_bytes()).hexdigest()
            figures["C_stale_s"] = time.monotonic() - t_c
            walk.mark("C: Calibrate all, replace the bias, Rebuild stale")
            walk.no_errors("Lights after Rebuild stale")
            unexpected = [e for e in page.voila_errors if not any(n in e for n in OFFLINE_NOISE)]
            assert not unexpected, unexpected
        finally:
            browser.close()
    figures["total_s"] = time.monotonic() - t0
    report = {k: round(v, 1) for k, v in figures.items()}
    report["peak_kernel_rss_mib"] = round(memory.peak_rss / 2**20, 1)
    report["peak_by_step_mib"] = walk.peak_by_step
    print("\n" + json.dumps(report, indent=2))
    target = os.environ.get("ASTROCAL_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in sorted(shots.glob("*.png")):
            shutil.copy(shot, Path(target) / shot.name)


def _element_shot(page, element, path: Path, width: int = 1800) -> None:
    """Screenshot one element, the window widened (the table's rows on one line) and grown to fit it whole."""
    size = page.viewport_size
    try:
        page.set_viewport_size({"width": width, "height": size["height"]})
        page.wait_for_timeout(300)  # the boxes lay themselves out again
        height = element.evaluate("e => e.getBoundingClientRect().height")
        page.set_viewport_size({"width": width, "height": int(min(max(size["height"], height + 200), 8000))})
        element.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
