"""Render the README picture: a raw simulated light, the master flat, and the calibrated light.

Run: ``python docs/make_readme_figure.py`` (writes ``docs/images/demo.png``).
"""
import atexit
import shutil
from pathlib import Path
import tempfile

import numpy as np
from astropy.io import fits
from matplotlib.figure import Figure

import astrocal_widgets as aw
from astrocal_widgets.calibrate import calibrate_session


def stretch(image: np.ndarray, low: float = 1, high: float = 97) -> np.ndarray:
    """A hard linear stretch on the background, so vignetting, glow and dust show."""
    lo, hi = np.nanpercentile(image, [low, high])
    return np.clip((image - lo) / (hi - lo), 0, 1)


def main() -> None:
    root = Path(tempfile.mkdtemp())
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # scratch frames: only the PNG is kept
    aw.simulate_session(root / "night", seed=0, counts={"light": 1})
    result = calibrate_session(root / "night")
    light = [l for l in result.lights if "_L_" in l.source][0]
    flat = [m for m in result.masters if m.frame_type == "flat" and "filter L" in m.label][0]
    panels = [("raw light (300 s, L)", fits.getdata(light.source).astype(float)),
              ("master flat: vignetting and dust", fits.getdata(flat.path).astype(float)),
              ("calibrated light", fits.getdata(light.output).astype(float))]
    fig = Figure(figsize=(12, 3.4), dpi=100)
    for i, (title, image) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.imshow(stretch(image, 0.5, 99.5) if i == 1 else stretch(image), cmap="gray", origin="lower")
        ax.set_title(title)
        ax.set_axis_off()
    fig.tight_layout()
    out = Path(__file__).parent / "images" / "demo.png"
    fig.savefig(out)
    print(out)


if __name__ == "__main__":
    main()
