"""Make the dashboard screenshots of the README and docs from the real-browser test.

Run: ``python docs/make_dashboard_screenshots.py`` (needs chromium, voila and playwright, as the test).
It runs ``tests/widgets/test_dashboard_browser.py`` with ``ASTROCAL_SCREENSHOTS`` pointing at a temporary
folder, then writes each step's screenshot to ``docs/images/dashboard/`` at 1000 pixels wide with a
256-colour palette (a tenth of the size; text stays legible).
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "images" / "dashboard"
WIDTH = 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as raw:
        env = dict(os.environ, ASTROCAL_SCREENSHOTS=raw)
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(ROOT / "tests" / "test_dashboard_browser.py")], check=True, env=env, cwd=ROOT)
        TARGET.mkdir(parents=True, exist_ok=True)
        for shot in sorted(Path(raw).glob("*.png")):
            image = Image.open(shot).convert("RGB")
            height = round(image.height * WIDTH / image.width)
            small = image.resize((WIDTH, height), Image.LANCZOS).quantize(colors=256, method=Image.MEDIANCUT)
            small.save(TARGET / shot.name, optimize=True)
            print(f"{TARGET / shot.name}: {WIDTH}x{height}, {(TARGET / shot.name).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
