"""The dashboard in a real browser: notebooks/07-dashboard.ipynb served by Voila, clicked through in chromium.

Every step is driven the way a person does it on the default simulated night (Check, Integrate, Save,
Calibrate, Calibrate all, Back / Next). The test asserts that each plot arrives as a decoded image
(a bare Figure would show as the text "<Figure size ...>", which only a browser catches), that the
progress bar moves through intermediate values while the engine works, that no error is shown, and it
measures the kernel's peak RSS (Binder allows 2 GB).

Screenshots of every step go to the test's tmp folder; with ``ASTROCAL_SCREENSHOTS=DIR`` they are also
copied to DIR (that is how docs/images/dashboard/ is made). Skips for a user without chromium, voila
or playwright; fails in CI (CI=true), where .ci/run installs them.

``ASTROCAL_BROWSER_NIGHT=DIR`` walks another simulated night instead (any shape and frame counts of
:func:`~astrocal_widgets.simulate_session`, e.g. the 24-megapixel night ``benchmarks/dashboard_memory.py``
keeps under /tmp): its frames are linked, not copied, into the test's folder, where the masters and
lights are written, and every wait is longer. The default stays the small night, so CI stays fast.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

import astrocal_widgets as aw
from browser_support import (NOTEBOOK, OFFLINE_NOISE, KernelMemoryMonitor, Walk, launch_chromium, open_voila,
                             require_browser_tools, serve_voila)

# A minute or more: deselect with -m 'not slow' for a quick run (CI runs everything).
pytestmark = pytest.mark.slow

#: Another simulated night to walk (opt-in; see the module's docstring).
NIGHT_ENV = "ASTROCAL_BROWSER_NIGHT"
BINDER_LIMIT = 2 * 10**9  # bytes: mybinder.org's memory limit

CANVAS_DRAWN = """() => [...document.querySelectorAll('.astrocal-interactive canvas')].some(c => {
    if (!c.width || !c.height) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    // the figure's text and the stretched master are dark; an empty (or only cleared) canvas is not
    for (let i = 0; i < d.length; i += 4 * 37) if (d[i + 3] > 200 && d[i] + d[i + 1] + d[i + 2] < 150) return true;
    return false;
})"""


def linked_night(source: Path, target: Path) -> None:
    """``target`` as a copy of the night ``source`` made of symbolic links to its frames.

    The dashboard writes its masters and calibrated lights into the night's folder: the source stays
    untouched (its own ``masters`` and ``calibrated`` folders are left out).
    """
    from astrocal_widgets.calibrate.outputs import CALIBRATED_FOLDER, MASTERS_FOLDER

    frames = [p for p in source.rglob("*.fits") if not {MASTERS_FOLDER, CALIBRATED_FOLDER} & set(
        p.relative_to(source).parts[:1])]
    if not frames:
        raise AssertionError(f"{NIGHT_ENV}={source}: no FITS frames there")
    for path in frames:
        link = target / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve())


def test_dashboard_in_a_real_browser(tmp_path):
    require_browser_tools()
    from playwright.sync_api import expect, sync_playwright

    night = tmp_path / "night"
    source = os.environ.get(NIGHT_ENV)
    if source:
        linked_night(Path(source), night)
    else:
        aw.simulate_session(night)  # the default simulated session, as CalibrationDashboard.simulated() makes it
    catalog = aw.scan(night)
    n_frames = len(catalog.table)
    n_lights = int((catalog.table["frame_type"] == "light").sum())
    frame_pixels = int((catalog.table["height"] * catalog.table["width"]).max())
    patience = max(1.0, frame_pixels / 2e6)  # 12x for 24 megapixels
    shots = tmp_path / "screenshots"
    shots.mkdir()
    t0 = time.monotonic()
    with serve_voila(NOTEBOOK, log_dir=tmp_path, env={"ASTROCAL_FRAMES": str(night)}) as (url, server), \
            KernelMemoryMonitor(server.pid, include_kernel_children=True) as memory, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = open_voila(browser, url, server=server, viewport={"width": 1400, "height": 1000},
                              ready=lambda pg: pg.get_by_role("button", name="Next", exact=True),
                              timeout=120 * min(patience, 3))
            walk = Walk(page, shots, expect, patience)
            walk.memory = memory
            t_render = time.monotonic() - t0
            walk.no_errors("Session")
            expect(walk.body().get_by_role("button", name="Back", exact=True)).to_be_disabled()
            walk.wait_text(f"{n_frames} frames in 9 sets")

            # Session: the catalogue, the sets, the check summary.
            walk.go("Session")
            walk.click_and_watch("Check", "Session", lambda: walk.wait_text("OVERALL"))
            walk.shot("1-session")

            walk.go("Bias")
            walk.integrate_and_save_each_set("Bias", plots=5)
            walk.shot("2-bias")
            # Optional pan and zoom: the master in an ipympl canvas, then back to the PNG.
            zoom = page.get_by_role("checkbox", name="pan and zoom the master (ipympl)")
            zoom.check()
            wait = 60_000 * patience
            expect(walk.body().locator(".astrocal-interactive canvas").first).to_be_visible(timeout=wait)
            page.wait_for_function(CANVAS_DRAWN, timeout=wait)  # the kernel drew the figure into it
            walk.no_errors("Bias, ipympl view")
            # (an element shot: growing the viewport for a full-page shot makes ipympl redraw)
            walk.body().locator(".astrocal-interactive").first.screenshot(path=str(shots / "2-bias-zoom.png"))
            zoom.uncheck()
            walk.images_loaded("Bias, back to the PNG", 5)

            walk.go("Darks")
            walk.integrate_and_save_each_set("Darks", plots=5)
            walk.shot("3-darks")

            walk.go("Dark flats & flat calibration")
            # Two flat sets (L at 1.5 s, Ha at 8 s), dark flats at both: save the 1.5 s master only, and
            # the Ha flats must wait for theirs instead of being calibrated with the bias.
            walk.integrate_and_save_each_set("Dark flats", plots=5, sets=[0])
            walk.wait_text("1.5 s saved, 8 s not saved")  # the step list, per set
            walk.go("Flat integration")
            walk.wait_text("save the master dark flat 8 s, gain 139, offset 21 first")
            expect(page.get_by_role("button", name="Integrate", exact=True)).to_be_disabled()
            notes = " ".join(walk.body().locator("[class*='astrocal-step-']").all_inner_texts())
            assert "blocked" in notes and "dark flat 8 s" in notes, notes
            walk.shot("5-flats-blocked")
            walk.go("Dark flats & flat calibration")
            walk.integrate_and_save_each_set("Dark flats", plots=5, sets=[1])
            walk.click_and_watch("Calibrate", "Flat calibration", lambda: walk.wait_text("a level of"))
            walk.images_loaded("Flat calibration", 7)  # 5 of the dark flat + before/after
            walk.shot("4-darkflats")

            walk.go("Flat integration")
            walk.integrate_and_save_each_set("Flat integration", plots=6)
            walk.wait_text("Vignetting")
            walk.shot("5-flats")

            walk.go("Histogram checks")
            walk.click_and_watch("Check", "Histogram checks", lambda: None)
            walk.images_loaded("Histogram checks", 9)  # one histogram per set
            walk.shot("6-checks")

            walk.go("Lights")
            walk.click_and_watch("Calibrate", "Lights", lambda: walk.images_loaded("Light", 2))
            walk.mark("light before/after")
            walk.click_and_watch("Calibrate all", "Lights", lambda: walk.wait_text("calibrated lights in"))
            walk.shot("7-lights")

            # Back goes back without recomputing: the flat step's plots are still there.
            walk.go("Flat integration")
            walk.images_loaded("Flat integration again", 6)
            status_notes = walk.body().locator("[class*='astrocal-step-']").all_inner_texts()
            unexpected = [e for e in page.voila_errors if not any(n in e for n in OFFLINE_NOISE)]
            assert not unexpected, unexpected
        finally:
            browser.close()
    peak = memory.peak_rss
    written = sorted(p.name for p in (night / "calibrated").rglob("*_calibrated.fits"))
    masters = sorted(p.name for p in (night / "masters").glob("master_*.fits"))
    report = {"night": source or "default simulated night", "frames": n_frames, "frame_pixels": frame_pixels,
              "peak_kernel_rss_mib": round(peak / 2**20, 1), "peak_so_far_mib": walk.peak_so_far,
              "peak_by_step_mib": walk.peak_by_step,
              "page_rendered_s": round(t_render, 1),
              "total_s": round(time.monotonic() - t0, 1), "masters": masters, "calibrated": len(written),
              "images_seen": walk.images_seen, "steps": status_notes,
              "progress_values_seen": {k: len(v) for k, v in walk.progress.items()}}
    (tmp_path / "report.json").write_text(json.dumps(report, indent=2))
    print("\n" + json.dumps(report, indent=2))
    assert len(masters) == 7 and len(written) == n_lights
    assert memory.kernel_pids, "no kernel process was found under Voila"
    assert peak < BINDER_LIMIT, f"the kernel peaked at {peak / 2**20:.0f} MiB, over Binder's 2 GB"
    target = os.environ.get("ASTROCAL_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in sorted(shots.glob("*.png")):
            shutil.copy(shot, Path(target) / shot.name)
