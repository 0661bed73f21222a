"""The dashboard in JupyterLab 4 and Notebook 7, in a real browser (not only Voila).

notebooks/07-dashboard.ipynb is copied into a fresh folder and served by ``python -m jupyterlab`` or
``python -m notebook`` (tests/browser_support.py ``serve_jupyter``: loopback, no token, private
Jupyter config/data/runtime/settings folders, no news or update checks). Chromium opens the notebook,
waits for its kernel (this interpreter), runs every cell with Run > Run All Cells, and drives the
dashboard as a person does: Next to the Bias step, Integrate, Save. The test asserts the plots arrive
as decoded images (not the text "<Figure size ...>"), no error is shown, and the master is on disk.

Screenshots go to the test's tmp folder; with ``ASTROCAL_SCREENSHOTS=DIR`` they are also copied to DIR
as ``jupyterlab-bias.png`` / ``notebook7-bias.png``. Skips for a user without chromium, playwright,
jupyterlab or notebook; fails in CI (CI=true).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

import astrocal_widgets as aw
from browser_support import (jupyter_kernel_processes, jupyter_screenshot, launch_chromium,
                             missing_jupyter_app, open_jupyter_notebook, require_browser_tools,
                             run_all_cells, serve_jupyter, step_to, wait_for_notebook_output)
from conftest import skip_or_fail

# A minute or more: deselect with -m 'not slow' for a quick run (CI runs everything).
pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "07-dashboard.ipynb"
SHOT_NAMES = {"lab": "jupyterlab-bias.png", "notebook": "notebook7-bias.png"}
#: Page errors that are not the dashboard's. Offline: none seen (news and update checks are off),
#: kept for hosts without a network. Notebook 7.6.5 itself throws one TypeError on every page load
#: (also /tree, with its default settings and every lab extension disabled): JupyterLab's shortcuts
#: plugin, bundled in notebook_core, reads ``plugins[id].schema`` of a plugin the setting registry
#: does not hold on ``pluginChanged``.
KNOWN_NOISE = {
    "lab": ("ERR_NAME_NOT_RESOLVED", "ERR_INTERNET_DISCONNECTED"),
    "notebook": ("ERR_NAME_NOT_RESOLVED", "ERR_INTERNET_DISCONNECTED",
                 "pageerror: Cannot read properties of undefined (reading 'schema')"),
}

IMAGES_DECODED = """(n) => {
    const imgs = [...document.querySelectorAll('.astrocal-dashboard img.widget-image')];
    return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 100);
}"""


@pytest.mark.parametrize("app", ["lab", "notebook"], ids=["jupyterlab4", "notebook7"])
def test_dashboard_in_jupyter(app, tmp_path):
    require_browser_tools()
    missing = missing_jupyter_app(app)
    if missing:
        skip_or_fail("the dashboard's Jupyter browser test needs " + ", ".join(missing))
    from playwright.sync_api import expect, sync_playwright

    t0 = time.monotonic()
    times: dict[str, float] = {}

    def mark(name: str) -> None:
        times[name] = round(time.monotonic() - t0, 1)

    night = tmp_path / "night"
    aw.simulate_session(night, shape=(240, 320))
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    shot = shots / SHOT_NAMES[app]

    with serve_jupyter(app, root, log_dir=tmp_path, env={"ASTROCAL_FRAMES": str(night)}) as server, \
            sync_playwright() as p:
        mark("server")
        browser = launch_chromium(p)
        try:
            page = open_jupyter_notebook(browser, server, NOTEBOOK.name, timeout=120)
            mark("kernel_ready")
            kernels = jupyter_kernel_processes(server)
            assert kernels, f"no kernel process under the server:\n{server.log_tail()}"
            for kernel in kernels:  # the kernel runs this interpreter (browser_support.ensure_kernelspec)
                exe = kernel.cmdline()[0]  # compared without resolving symlinks, as ensure_kernelspec does
                assert os.path.dirname(os.path.abspath(exe)) == os.path.dirname(os.path.abspath(sys.executable)), \
                    f"the kernel runs {exe}, not {sys.executable}"

            run_all_cells(page)
            mark("run_all")
            wait_for_notebook_output(page, server, lambda pg: pg.get_by_role("button", name="Next", exact=True),
                                     timeout=120)
            mark("dashboard_drawn")
            body = page.locator(".astrocal-dashboard")
            expect(body).to_have_count(1, timeout=30_000)

            def no_errors(where: str) -> None:
                shown = page.locator(".astrocal-error")
                if shown.count():
                    raise AssertionError(f"{where}: the dashboard shows an error: {shown.first.inner_text()}")
                text = body.inner_text()
                assert "<Figure size" not in text, f"{where}: a figure arrived as text, not as an image"
                assert "Traceback" not in text, f"{where}: {text[-2000:]}"

            no_errors("Session")
            expect(body.get_by_text("96 frames in 9 sets").first).to_be_visible(timeout=30_000)

            step_to(body, expect, "Bias")
            no_errors("Bias")

            body.get_by_role("button", name="Integrate", exact=True).click()
            page.wait_for_function(IMAGES_DECODED, arg=5, timeout=120_000)
            mark("integrated")
            images = body.locator("img.widget-image")
            widths = images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) >= 5 and min(widths) > 100, widths
            no_errors("Bias after Integrate")

            save = body.get_by_role("button", name="Save", exact=True)
            expect(save).to_be_enabled(timeout=30_000)
            save.click()
            expect(body.get_by_text("Saved /").first).to_be_visible(timeout=60_000)
            mark("saved")
            no_errors("Bias after Save")

            jupyter_screenshot(page, shot)
            unexpected = [e for e in page.jupyter_errors if not any(n in e for n in KNOWN_NOISE[app])]
            assert not unexpected, unexpected
        finally:
            browser.close()
    mark("total")

    masters = sorted((night / "masters").glob("master_bias_*.fits"))
    assert masters, f"no master bias in {night / 'masters'}"
    report = {"app": app, "seconds": times, "images": widths, "masters": [m.name for m in masters]}
    (tmp_path / "report.json").write_text(json.dumps(report, indent=2))
    print("\n" + json.dumps(report))
    target = os.environ.get("ASTROCAL_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)
