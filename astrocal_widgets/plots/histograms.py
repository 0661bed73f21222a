"""Histogram of pixel values with the ADC range, thresholds and clipping marked."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from ..io.cfa import channel_planes
from ._common import as_array, new_figure

__all__ = ["histogram", "cfa_channels"]

CHANNEL_COLOURS = {"R": "tab:red", "G": "tab:green", "B": "tab:blue"}
THRESHOLD_COLOURS = ("tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
#: "auto" x range switches to the full ADC range when the data span at least this fraction of it.
FULL_RANGE_FRACTION = 0.02


def cfa_channels(values: np.ndarray, bayer_pattern: str) -> dict[str, np.ndarray]:
    """Split a CFA mosaic (last two axes y, x) into flattened R, G, B samples.

    ``bayer_pattern`` reads the 2 x 2 cell from array position [0, 0] row by row ('RGGB': [0, 0]
    is red, [0, 1] and [1, 0] green, [1, 1] blue); both greens are merged.
    """
    if not bayer_pattern.strip():  # a mosaic has colours; mono data have no channels to split
        raise ValueError(f"bayer_pattern must be 4 letters of R, G, B such as 'RGGB', not {bayer_pattern!r}")
    return {colour: np.concatenate([values[(..., *plane)].ravel() for plane in planes])
            for colour, planes in channel_planes(bayer_pattern).items()}


def _edges(lo: float, hi: float, bins: int, integer: bool) -> np.ndarray:
    if hi <= lo:
        hi = lo + 1.0
    if integer:
        # Integer-aligned bins: no comb pattern from bins holding alternately n and n+1 ADU values.
        width = max(1, int(np.ceil((hi - lo + 1) / bins)))
        start = np.floor(lo) - 0.5
        return np.arange(start, np.ceil(hi) + 0.5 + width, width, dtype=np.float64)
    return np.linspace(lo, hi, bins + 1)


def histogram(
    data: Any,
    *,
    adc_max: float = 65535,
    bayer_pattern: str = "",
    thresholds: Mapping[str, float] | None = None,
    bins: int = 256,
    xrange: str | tuple[float, float] = "auto",
    title: str | None = None,
) -> Figure:
    """Histogram of pixel values on a log count axis, with the ADC range, thresholds and clipping.

    Parameters
    ----------
    data : array-like
        Pixels (any shape; for a CFA pattern the last two axes are y, x): numpy, xarray or dask.
        Non-finite values are ignored.
    adc_max : float, default 65535
        Largest value the ADC can record (saturation). Lines mark 0 and ``adc_max``; the region
        outside the ADC range is shaded; the counts at or below 0 and at or above ``adc_max``
        (clipped) are written on the plot, per channel.
    bayer_pattern : str, default ''
        CFA pattern at array position [0, 0] ('RGGB', 'BGGR', 'GRBG', 'GBRG'): one histogram per
        channel in red, green and blue. Empty for a monochrome sensor (one histogram).
    thresholds : mapping of str to float, optional
        Named values drawn as dashed vertical lines (e.g. ``{"hot": 1200, "cold": 300}``).
    bins : int, default 256
        Number of bins across the shown range (integer data get integer-aligned bins, at least
        1 ADU wide).
    xrange : {'auto', 'adc', 'data'} or (lo, hi), default 'auto'
        ``'adc'`` shows the whole ADC range (0 to ``adc_max``, widened to include all data and
        thresholds): where a flat sits between the noise floor and saturation. ``'data'`` shows the
        data's span (plus thresholds): the shape of a bias or dark. ``'auto'`` picks ``'adc'``
        when the data span at least 2 % of the ADC range, else ``'data'``. With ``(lo, hi)``, values
        outside are not binned (the clipping counts still cover all values).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(as_array(data))
    thresholds = dict(thresholds or {})
    if bayer_pattern:
        if values.ndim < 2:
            raise ValueError("a bayer_pattern needs data with (y, x) as the last two axes")
        channels = cfa_channels(values, bayer_pattern)
    else:
        channels = {"all pixels": values.ravel()}
    channels = {name: v[np.isfinite(v)] for name, v in channels.items()}
    finite = [v for v in channels.values() if v.size]
    if not finite:
        raise ValueError("histogram() needs at least one finite value")
    dmin = float(min(v.min() for v in finite))
    dmax = float(max(v.max() for v in finite))
    integer = np.issubdtype(values.dtype, np.integer) or all(
        np.array_equal(v[:10000], np.round(v[:10000])) for v in finite)

    if isinstance(xrange, tuple):
        lo, hi = float(xrange[0]), float(xrange[1])
    else:
        mode = xrange
        if mode == "auto":
            mode = "adc" if (dmax - dmin) >= FULL_RANGE_FRACTION * adc_max else "data"
        if mode not in ("adc", "data"):
            raise ValueError(f"xrange must be 'auto', 'adc', 'data' or (lo, hi), not {xrange!r}")
        extra = list(thresholds.values()) + ([0.0, float(adc_max)] if mode == "adc" else [])
        lo, hi = min([dmin] + extra), max([dmax] + extra)
    edges = _edges(lo, hi, bins, integer)

    fig = new_figure((8.0, 4.5))
    ax = fig.add_subplot()
    notes = []
    for name, v in channels.items():
        # edges are uniform: bins + range takes numpy's fast path (no search per value)
        counts, _ = np.histogram(v, bins=len(edges) - 1, range=(edges[0], edges[-1]))
        colour = CHANNEL_COLOURS.get(name, "0.2")
        ax.stairs(counts, edges, color=colour, label=f"{name} ({v.size:,} px)",
                  fill=len(channels) == 1, alpha=0.85 if len(channels) > 1 else 0.6)
        below, above = int((v <= 0).sum()), int((v >= adc_max).sum())
        prefix = f"{name}: " if len(channels) > 1 else ""
        notes.append(f"{prefix}{below:,} at \u2264 0 ({below / max(v.size, 1):.3%}), "
                     f"{above:,} at \u2265 {adc_max:g} ({above / max(v.size, 1):.3%})")

    pad = 0.02 * (edges[-1] - edges[0])
    x0, x1 = edges[0] - pad, edges[-1] + pad
    if x0 < 0:
        ax.axvspan(x0, 0, color="0.85", zorder=0, label="outside ADC range")
    if x1 > adc_max:
        ax.axvspan(adc_max, x1, color="0.85", zorder=0,
                   label=None if x0 < 0 else "outside ADC range")
    for position, text in ((0.0, "ADC 0"), (float(adc_max), f"ADC max {adc_max:g}")):
        if x0 <= position <= x1:
            ax.axvline(position, color="black", lw=1.2, label=text)
    for index, (name, value) in enumerate(thresholds.items()):
        ax.axvline(value, color=THRESHOLD_COLOURS[index % len(THRESHOLD_COLOURS)], ls="--", lw=1.2,
                   label=f"{name} = {value:g}")
    ax.set_xlim(x0, x1)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.7)
    ax.set_xlabel("pixel value (ADU)")
    ax.set_ylabel("count (pixels per bin)")
    ax.text(0.01, 0.98, "clipped: " + "\n".join(notes), transform=ax.transAxes, va="top", ha="left",
            fontsize="small", bbox=dict(boxstyle="round", facecolor="white", alpha=0.8))
    ax.legend(loc="upper right", fontsize="small")
    width = edges[1] - edges[0]
    ax.set_title(title if title is not None else f"histogram ({len(edges) - 1} bins of {width:.4g} ADU)")
    return fig
