"""Compare rejections in Voila, clicked in chromium: the comparison runs in the kernel's worker thread and its
figure arrives as an image, with its figures as text and no error (the Python-driven tests are in
test_compare_rejections.py)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from astrocal_widgets.simulate import FilterSpec, simulate_session
from browser_support import full_screenshot, launch_chromium, open_voila, require_browser_tools, serve_voila, step_to

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "07-dashboard.ipynb"
pytestmark = pytest.mark.slow  # a browser
COUNTS = {"bias": 7, "dark": 0, "flat": 0, "darkflat": 0, "light": 1}


def test_compare_in_voila(tmp_path, record_property):
    require_browser_tools()
    from playwright.sync_api import expect, sync_playwright

    night = tmp_path / "night"
    simulate_session(night, shape=(240, 320), counts=COUNTS, seed=6, filters=[FilterSpec("L", flat_exposure=1.5)])
    with serve_voila(NOTEBOOK, log_dir=tmp_path, env={"ASTROCAL_FRAMES": str(night)}) as (url, server), \
            sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = open_voila(browser, url, server=server, viewport={"width": 1400, "height": 1000},
                              ready=lambda pg: pg.get_by_role("button", name="Next", exact=True))
            body = page.locator(".astrocal-dashboard")
            step_to(body, expect, "Bias")
            view = body.locator(".astrocal-compare-rejections")
            expect(view.get_by_role("button", name="Compare", exact=True)).to_be_visible()
            start = time.monotonic()
            view.get_by_role("button", name="Compare", exact=True).click()
            image = view.locator("img.widget-image")
            expect(image).to_have_count(1, timeout=120_000)
            page.wait_for_function("() => [...document.querySelectorAll('.astrocal-compare-rejections "
                                   "img.widget-image')].every(i => i.complete && i.naturalWidth > 100)",
                                   timeout=60_000)
            record_property("measured", f"Compare clicked to image shown: {time.monotonic() - start:.1f} s")
            text = view.inner_text()
            assert "second - first: RMS" in text and "sigma 3/3" in text and "winsorized_sigma 3/3" in text
            assert not body.locator(".astrocal-error").count() and "Traceback" not in body.inner_text()
            expect(view.get_by_role("button", name="Cancel")).to_be_disabled()  # done: nothing runs
            full_screenshot(page, tmp_path / "compare.png")
        finally:
            browser.close()
