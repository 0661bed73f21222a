"""Make the dashboard screenshots of the README and docs from the real-browser tests.

Run: ``python docs/make_dashboard_screenshots.py`` (needs chromium, voila and playwright, as the tests), or
``python docs/make_dashboard_screenshots.py 8-frame-browser 9-stale`` for some of them only (only the tests
that take those run). Each test of :data:`SCREENSHOT_TESTS` runs with ``ASTROCAL_SCREENSHOTS`` pointing
at a temporary folder, where it copies its screenshots; each is then written to ``docs/images/dashboard/``
at 1000 pixels wide with a 256-colour palette (a tenth of the size; text stays legible).

A view no test walks through is shot with :func:`screenshot_step` (the dashboard opened in Voila and
chromium, a step shown, a few clicks): :func:`rejection_comparison_screenshots` is where the rejection
comparison view's screenshot goes, one call of it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "images" / "dashboard"
WIDTH = 1000
NOTEBOOK = ROOT / "notebooks" / "07-dashboard.ipynb"

#: The real-browser tests that take screenshots, and the screenshots each takes.
SCREENSHOT_TESTS: dict[str, tuple[str, ...]] = {
    "tests/widgets/test_dashboard_browser.py": (
        "1-session", "2-bias", "2-bias-zoom", "3-darks", "4-darkflats", "5-flats", "6-checks", "7-lights"),
    # the frame browser with an outlier marked and excluded; a replaced master bias's stale products
    "tests/widgets/test_dashboard_browser_exclude_stale.py": ("8-frame-browser", "9-stale"),
}


def run_tests(raw: Path, names: set[str] | None = None) -> None:
    """Run the tests of :data:`SCREENSHOT_TESTS` that take any of ``names`` (all by default), shots into ``raw``."""
    tests = [str(ROOT / test) for test, shots in SCREENSHOT_TESTS.items() if names is None or names & set(shots)]
    if not tests:
        return
    env = dict(os.environ, ASTROCAL_SCREENSHOTS=str(raw))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                   check=True, env=env, cwd=ROOT)


def screenshot_step(raw: Path, step: str, name: str, prepare: Callable | None = None, *,
                    night: str | os.PathLike | None = None, element: Callable | None = None) -> Path:
    """Open the dashboard in Voila and chromium, show ``step``, click, and save ``raw/name.png``.

    Parameters
    ----------
    raw : Path
        Where the screenshot is written (at full size; :func:`shrink` makes the docs' copy).
    step : str
        The step's title (``astrocal_widgets.widgets.STEP_TITLES``), reached with Next as a person would.
    name : str
        The screenshot's name, without ``.png``.
    prepare : callable, optional
        ``prepare(page)``: the clicks that open the view, waiting until it is drawn (Playwright's ``page``).
    night : path-like, optional
        The night's folder (default: the notebook's simulated night, made in a temporary folder).
    element : callable, optional
        ``element(page)`` returns the locator to shoot alone; default: the whole page.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import full_screenshot, launch_chromium, open_voila, serve_voila, step_to
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as work:
        env = {"ASTROCAL_FRAMES": str(night)} if night is not None else {}
        with serve_voila(NOTEBOOK, cwd=work, log_dir=work, env=env) as (url, server), sync_playwright() as p:
            browser = launch_chromium(p)
            try:
                page = open_voila(browser, url, server=server, viewport={"width": 1400, "height": 1000},
                                  ready=lambda pg: pg.get_by_role("button", name="Next", exact=True))
                step_to(page.locator(".astrocal-dashboard"), expect, step, timeout=60_000)
                if prepare is not None:
                    prepare(page)
                path = Path(raw) / f"{name}.png"
                if element is None:
                    full_screenshot(page, path)
                else:
                    element(page).screenshot(path=str(path))
            finally:
                browser.close()
    return path


def rejection_comparison_screenshots(raw: Path) -> list[Path]:
    """The rejection comparison view of the Bias step, after Compare (its default choices): the
    difference image, both rejection maps and the figures."""

    def compare(page) -> None:
        view = page.locator(".astrocal-compare-rejections")
        view.get_by_role("button", name="Compare", exact=True).click()
        page.wait_for_function("() => [...document.querySelectorAll('.astrocal-compare-rejections "
                               "img.widget-image')].some(i => i.complete && i.naturalWidth > 100)",
                               timeout=120_000)
        view.scroll_into_view_if_needed()

    return [screenshot_step(raw, "Bias", "10-rejection-comparison", compare,
                            element=lambda page: page.locator(".astrocal-compare-rejections"))]


def shrink(shot: Path, target: Path = TARGET) -> Path:
    """``shot`` at :data:`WIDTH` pixels wide with a 256-colour palette, written to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    image = Image.open(shot).convert("RGB")
    height = round(image.height * WIDTH / image.width)
    small = image.resize((WIDTH, height), Image.LANCZOS).quantize(colors=256, method=Image.MEDIANCUT)
    out = target / shot.name
    small.save(out, optimize=True)
    print(f"{out}: {WIDTH}x{height}, {out.stat().st_size / 1024:.0f} KiB")
    return out


def main(names: list[str]) -> None:
    listed = {name for shots in SCREENSHOT_TESTS.values() for name in shots}
    wanted = set(names) or None
    with tempfile.TemporaryDirectory() as work:
        raw = Path(work)
        run_tests(raw, wanted)
        made = [raw / f"{name}.png" for name in sorted(listed) if (raw / f"{name}.png").exists()]
        made += rejection_comparison_screenshots(raw)
        for shot in made:
            if wanted is None or shot.stem in wanted:
                shrink(shot)


if __name__ == "__main__":
    main(sys.argv[1:])
