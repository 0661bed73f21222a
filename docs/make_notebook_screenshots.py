"""Make the screenshots of two teaching notebooks' widgets in the docs (docs/notebooks.md).

Run: ``python docs/make_notebook_screenshots.py`` (needs chromium, playwright, jupyterlab and
jupyterlab_widgets, as tests/widgets/test_dashboard_jupyter.py; never ``playwright install``: Debian's
``/usr/bin/chromium`` is used). Notebooks 02 (noise) and 05 (flats) are copied into a temporary folder
and served by JupyterLab (tests/browser_support.py ``serve_jupyter``: loopback, private settings). In
each, chromium runs every cell with Run > Run All Cells, moves the slider as a student does (typing a
value into its readout), waits until the redrawn figure has arrived, and photographs the slider's cell
output. The PNGs go to ``docs/images/notebooks/`` with a 256-colour palette (small files).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser helpers of the test suite

from browser_support import (JUPYTER_USER_SETTINGS, launch_chromium, missing_browser_tools,  # noqa: E402
                             missing_jupyter_app, open_jupyter_notebook, run_all_cells, serve_jupyter,
                             wait_for_notebook_output)

TARGET = ROOT / "docs" / "images" / "notebooks"
#: Every cell stays in the page (JupyterLab 4 otherwise detaches cells scrolled out of view).
SETTINGS = {**JUPYTER_USER_SETTINGS, "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"}}


@dataclass(frozen=True)
class Shot:
    """A notebook, the description of its slider, the value to type into it and the PNG to write."""

    notebook: str
    slider: str
    value: str
    name: str
    #: text the redrawn output must contain (the figure's own text is in the image, not the page)
    ready_text: str = ""


SHOTS = [
    Shot("02-noise.ipynb", "frames", "4", "noise-frames-slider.png"),
    Shot("05-flats.ipynb", "exposure (s)", "2.6", "flats-exposure-slider.png", ready_text="clipped_saturation"),
]

#: The images of the slider cell's output, as data URLs (the figures are inline PNGs).
OUTPUT_IMAGES = "el => [...el.querySelectorAll('.jp-OutputArea-output img')].map(i => i.src.slice(-200))"


def photograph(browser, server, shot: Shot, folder: Path) -> Path:
    """Open ``shot.notebook``, run it, move its slider and screenshot the slider cell's output."""
    page = open_jupyter_notebook(browser, server, shot.notebook, timeout=180,
                                 viewport={"width": 1100, "height": 1000})
    try:
        run_all_cells(page)
        cell = page.locator(".jp-CodeCell").filter(
            has=page.locator(".widget-slider", has_text=shot.slider)).first
        wait_for_notebook_output(page, server, lambda pg: cell.locator(".widget-slider"), timeout=180)
        # wait until the whole notebook has run (every prompt numbered), so the kernel is free
        page.wait_for_function("""() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
            .every(p => /\\[\\d+\\]/.test(p.innerText))""", timeout=180_000)
        output = cell.locator(".jp-Cell-outputArea").first
        output.scroll_into_view_if_needed()
        before = output.evaluate(OUTPUT_IMAGES)
        readout = cell.locator(".widget-slider .widget-readout").first
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(shot.value)
        page.keyboard.press("Enter")
        page.wait_for_function("""([el, before, text]) => {
            const imgs = [...el.querySelectorAll('.jp-OutputArea-output img')];
            const now = imgs.map(i => i.src.slice(-200));
            return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 100)
                && JSON.stringify(now) !== JSON.stringify(before) && el.innerText.includes(text);
        }""", arg=[output.element_handle(), before, shot.ready_text], timeout=120_000)
        page.mouse.click(5, 5)  # move the focus off the readout: no text cursor in the picture
        page.wait_for_timeout(500)
        raw = folder / shot.name
        output.screenshot(path=str(raw))
        return raw
    finally:
        page.close()


def shrink(raw: Path, target: Path, max_width: int = 800) -> None:
    """Write ``raw`` to ``target`` at most ``max_width`` wide with a 256-colour palette."""
    image = Image.open(raw).convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.MEDIANCUT).save(target, optimize=True)
    print(f"{target.relative_to(ROOT)}: {image.width}x{image.height}, {target.stat().st_size / 1024:.0f} KiB")


def main() -> None:
    missing = missing_browser_tools() + missing_jupyter_app("lab")
    if missing:
        sys.exit("needs " + ", ".join(missing))
    from playwright.sync_api import sync_playwright

    start = time.monotonic()
    TARGET.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="astrocal-shots-") as scratch:
        scratch = Path(scratch)
        root = scratch / "notebooks"  # the notebooks write their simulated frames beside themselves
        root.mkdir()
        for shot in SHOTS:
            shutil.copy(ROOT / "notebooks" / shot.notebook, root / shot.notebook)
        with sync_playwright() as p:
            browser = launch_chromium(p)
            try:
                for shot in SHOTS:
                    # one server each: JupyterLab's saved workspace would reopen the previous notebook
                    with serve_jupyter("lab", root, log_dir=scratch, user_settings=SETTINGS) as server:
                        shrink(photograph(browser, server, shot, scratch), TARGET / shot.name)
                    print(f"  {shot.notebook} done after {time.monotonic() - start:.0f} s")
            finally:
                browser.close()
    print(f"total {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
