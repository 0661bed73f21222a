"""Render the plot gallery of ``docs/plots.md`` from simulated frames (no data to download).

Run: ``python docs/make_plot_gallery.py`` (writes ``docs/images/plots/*.png``, about 20 s).
Every picture is made by one :mod:`astrocal_widgets.plots` function and :func:`~astrocal_widgets.plots.to_png`
(no pyplot), at 80 dpi so each file stays below 100 kB.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets import plots
from astrocal_widgets.workflow import compare_rejections

OUT = Path(__file__).parent / "images" / "plots"
DPI = 80
SHAPE = (240, 320)


def read(path) -> np.ndarray:
    return fits.getdata(path).astype(np.float64)


def save(name: str, fig) -> None:
    path = OUT / f"{name}.png"
    path.write_bytes(plots.to_png(fig, dpi=DPI))
    print(f"{path} ({path.stat().st_size / 1024:.0f} kB)")


def robust(values: np.ndarray) -> tuple[float, float]:
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp())
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # scratch frames: only the PNGs are kept

    # Ten raw lights (one with a satellite trail, some with cosmic rays), integrated as they are.
    lights = aw.simulate_stack(root / "lights", "light", 10, shape=SHAPE, seed=0)
    result = aw.integrate(aw.open_frames(lights.paths["light"])).compute()
    save("rejection_maps", plots.rejection_maps(result))
    fig = plots.image(result.master, title="10 raw lights integrated")
    fig.set_size_inches(5.4, 3.9)
    save("image", fig)

    # Per-frame statistics of the lights; the simulator's truth flags the frame with the trail.
    rows = []
    for path in lights.paths["light"]:
        median, sigma = robust(read(path))
        rows.append({"median": median, "robust_sigma": sigma})
    table = pd.DataFrame(rows)
    table["flagged"] = lights.frames["satellite_trail"].to_numpy()
    save("frame_series", plots.frame_series(table, title="10 lights (flagged: satellite trail)"))

    # One flat of a one-shot-colour camera: per-channel histograms in the ADC range.
    flats = aw.simulate_stack(root / "flats", "flat", 1, shape=SHAPE, seed=1, camera="osc")
    flat = fits.getdata(flats.paths["flat"][0])
    pattern = fits.getheader(flats.paths["flat"][0]).get("BAYERPAT", "RGGB")
    save("histogram", plots.histogram(flat, bayer_pattern=pattern, xrange="adc",
                                      thresholds={"20 % of range": 0.2 * 65535, "80 % of range": 0.8 * 65535},
                                      title=f"one flat, {pattern} channels"))

    # Photon transfer curve from flat pairs at increasing exposures (mono camera, gain 0.8 e-/ADU).
    bias_stack = aw.simulate_stack(root / "ptc-bias", "bias", 2, shape=(128, 128), seed=0)
    bias = np.mean([read(p) for p in bias_stack.paths["bias"]], axis=0)
    signal, variance = [], []
    for i, exposure in enumerate(1.5 * np.geomspace(0.002, 3, 12)):
        pair = aw.simulate_stack(root / f"ptc-{i}", "flat", 2, shape=(128, 128), seed=i + 1,
                                 exposure=float(exposure), filter="L")
        first, second = (read(p) for p in pair.paths["flat"])
        signal.append(float(((first + second) / 2 - bias).mean()))
        variance.append(float(np.var(first - second) / 2))
    save("photon_transfer_curve", plots.photon_transfer_curve(signal, variance))

    # Master noise against frame count: sigma of one simulated bias frame, an illustrative light noise.
    sigma = float(np.std(read(bias_stack.paths["bias"][0]) - read(bias_stack.paths["bias"][1])) / np.sqrt(2))
    save("master_noise_curve", plots.master_noise_curve(sigma, n_max=60, combine="average",
                                                        light_noise=2.0 * sigma, n_current=10,
                                                        recommended=(20, 50)))

    # Two rejections of ten darks (cosmic rays, hot pixels) on a crop: sigma 3/3 against a tight Winsorized 2/2.
    aw.simulate_stack(root / "darks", "dark", 10, shape=SHAPE, seed=0)
    darks = aw.scan(root / "darks").groups()[0]
    comparison = compare_rejections(darks, "sigma", ("winsorized_sigma", 2.0, 2.0), crop_size=80)
    fig = plots.rejection_comparison_figure(comparison)
    fig.set_size_inches(10.5, 5.2)  # the noisy difference compresses badly: a smaller picture stays below 100 kB
    save("rejection_comparison", fig)


if __name__ == "__main__":
    main()
