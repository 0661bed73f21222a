"""Image plots: a stretched preview of a frame or master, and the rejection maps of an integration."""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from matplotlib.colors import FuncNorm, Normalize
from matplotlib.figure import Figure

from ._common import (as_array, block_reduce, new_figure, pixel_axes_labels, preview_factor,
                      robust_location_scale)

__all__ = ["image", "rejection_maps", "mtf", "auto_stretch"]

#: PixInsight's ScreenTransferFunction auto-stretch defaults (also Siril's "autostretch").
STF_SHADOWS_CLIP = -2.8
STF_TARGET_BACKGROUND = 0.25
#: Half-width of the ``"linear"`` stretch in robust sigmas.
LINEAR_K = 5.0


def mtf(m: float, x: np.ndarray | float) -> np.ndarray:
    """Midtones transfer function: ``MTF(m, x) = (m - 1) x / ((2m - 1) x - m)`` for ``x`` in [0, 1].

    Maps 0 -> 0, ``m`` -> 0.5 and 1 -> 1; ``MTF(1 - m, .)`` is its inverse.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return (m - 1.0) * x / ((2.0 * m - 1.0) * x - m)


def auto_stretch(values: np.ndarray, stretch: str | tuple[float, float] = "auto") -> tuple[Normalize, str]:
    """The colour normalisation for ``stretch`` computed from ``values``, and a short description.

    Parameters
    ----------
    values : ndarray
        The pixels (NaNs ignored).
    stretch : {'auto', 'stf', 'linear', 'minmax'} or (vmin, vmax)
        ``'auto'`` (= ``'stf'``) is the PixInsight ScreenTransferFunction / Siril autostretch: shadows
        clipped at ``median - 2.8 sigma`` (sigma the normalised MAD), highlights at the maximum, and
        the midtones balance chosen so that the median is displayed at 25 % grey (a midtones transfer
        function, see :func:`mtf`). ``'linear'`` is ``median +/- 5 sigma``, ``'minmax'`` the full data
        range, a tuple a linear stretch between the two values.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Normalize(0.0, 1.0), "no finite pixel"
    low, high = float(finite.min()), float(finite.max())
    if isinstance(stretch, tuple):
        vmin, vmax = float(stretch[0]), float(stretch[1])
        return Normalize(vmin, vmax if vmax > vmin else vmin + 1.0), f"linear {vmin:.4g} to {vmax:.4g}"
    median, sigma = robust_location_scale(finite)
    if stretch == "minmax":
        return Normalize(low, high if high > low else low + 1.0), "linear min to max"
    if stretch == "linear":
        half = LINEAR_K * sigma if sigma > 0 else max(high - median, median - low, 1.0)
        return Normalize(median - half, median + half), f"linear median \u00b1 {LINEAR_K:g}\u03c3"
    if stretch not in ("auto", "stf"):
        raise ValueError(f"stretch must be 'auto', 'stf', 'linear', 'minmax' or (vmin, vmax), not {stretch!r}")
    vmin = max(low, median + STF_SHADOWS_CLIP * sigma)
    vmax = high if high > vmin else vmin + 1.0
    x_median = (median - vmin) / (vmax - vmin)
    m = float(mtf(STF_TARGET_BACKGROUND, x_median)) if 0.0 < x_median < 1.0 else 0.5
    m = min(max(m, 1e-9), 1.0 - 1e-9)
    span = vmax - vmin

    def forward(v):
        return mtf(m, (np.asarray(v, dtype=np.float64) - vmin) / span)

    def inverse(y):
        return vmin + span * mtf(1.0 - m, y)

    norm = FuncNorm((forward, inverse), vmin=vmin, vmax=vmax)
    norm.inverse_ticks = inverse  # colour-bar ticks evenly spaced in display
    return norm, "auto STF"


def _imshow_pixels(ax, shown: np.ndarray, factor: int, **kwargs):
    """imshow with axes in original pixel coordinates (FITS convention: row 0 at the bottom)."""
    height, width = shown.shape[0] * factor, shown.shape[1] * factor
    return ax.imshow(shown, origin="lower", interpolation="nearest",
                     extent=(-0.5, width - 0.5, -0.5, height - 0.5), **kwargs)


def image(
    data: Any,
    *,
    stretch: str | tuple[float, float] = "auto",
    title: str | None = None,
    cmap: str = "gray",
    max_pixels: int = 2_000_000,
    colorbar_label: str = "ADU",
    downsampled: int = 1,
) -> Figure:
    """An image with an automatic stretch and a colour bar in data units.

    Parameters
    ----------
    data : array-like, shape (y, x)
        A frame or master: numpy array, xarray DataArray (computed if lazy) or dask array.
    stretch : {'auto', 'stf', 'linear', 'minmax'} or (vmin, vmax), default 'auto'
        ``'auto'`` is the PixInsight STF / Siril autostretch (shadows at median - 2.8 sigma,
        highlights at the maximum, midtones so that the median shows at 25 % grey); ``'linear'`` is
        median +/- 5 robust sigma; ``'minmax'`` the full range; a tuple gives linear limits. See
        :func:`auto_stretch`. The colour bar is labelled in data units whatever the stretch.
    title : str, optional
        Axes title; the stretch (and the preview factor when downsampled) is appended.
    cmap : str, default 'gray'
        Matplotlib colour map name.
    max_pixels : int, default 2_000_000
        Larger images are shown as a block-mean preview (integer factor f: each displayed pixel is
        the mean of f x f pixels), so a 24-megapixel master stays responsive; the factor is noted
        in the title and the axes stay in original pixel coordinates.
    colorbar_label : str, default 'ADU'
        Unit label of the colour bar.
    downsampled : int, default 1
        ``data`` is already a block-mean preview of this factor (from
        :func:`astrocal_widgets.quality.downsample`): the axes show original pixel coordinates and the
        title notes the factor.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = as_array(data)
    values = np.squeeze(values)
    if values.ndim != 2:
        raise ValueError(f"image() needs a 2-D array, got shape {values.shape}")
    more = preview_factor(values.shape, max_pixels)
    shown = block_reduce(values.astype(np.float32, copy=False), more)
    factor = more * max(1, int(downsampled))
    norm, description = auto_stretch(shown, stretch)

    aspect = values.shape[0] / max(values.shape[1], 1)
    width = 7.5
    fig = new_figure((width, max(2.5, min(8.0, width * 0.85 * aspect + 0.8))))
    ax = fig.add_subplot()
    artist = _imshow_pixels(ax, shown, factor, cmap=cmap, norm=norm)
    pixel_axes_labels(ax)
    colorbar = fig.colorbar(artist, ax=ax, shrink=0.9)
    ticks = getattr(norm, "inverse_ticks", None)
    if ticks is not None:
        colorbar.set_ticks(ticks(np.linspace(0.0, 1.0, 6)))
        colorbar.ax.yaxis.set_major_formatter("{x:.5g}")
    colorbar.set_label(colorbar_label)
    label = title if title is not None else f"{values.shape[1] * downsampled} x {values.shape[0] * downsampled} image"
    label += f" (stretch: {description}"
    if factor > 1:
        label += f"; preview 1/{factor}: {factor}x{factor} block mean"
    ax.set_title(label + ")")
    return fig


def rejection_maps(dataset: Any, *, title: str | None = None, max_pixels: int = 2_000_000,
                   cmap: str = "magma") -> Figure:
    """The low and high rejection maps of an integration, side by side with colour bars.

    Parameters
    ----------
    dataset : xarray.Dataset or mapping
        The result of :func:`astrocal_widgets.integrate.integrate` (computed or lazy), or any mapping with
        ``rejected_low`` and ``rejected_high`` (y, x) counts of rejected frames per pixel. The
        number of frames is read from ``attrs['n_frames']``, else from
        ``contributing + rejected_low + rejected_high``; ``attrs['rejection']`` names the algorithm.
    title : str, optional
        Figure title; defaults to the rejection algorithm and frame count.
    max_pixels : int, default 2_000_000
        Larger maps are shown as a block-maximum preview (a single rejected pixel stays visible);
        the factor is noted in the titles.
    cmap : str, default 'magma'
        Colour map of the counts.

    Returns
    -------
    matplotlib.figure.Figure
        Titles give the number of rejected values and the fraction of all ``n_frames x pixels``.
    """
    low = as_array(dataset["rejected_low"])
    high = as_array(dataset["rejected_high"])
    attrs: Mapping = getattr(dataset, "attrs", {}) or {}
    n_frames = attrs.get("n_frames")
    if n_frames is None:
        try:
            n_frames = int((as_array(dataset["contributing"]).astype(np.int64) + low + high).max())
        except (KeyError, ValueError):
            n_frames = None
    n_values = low.size * n_frames if n_frames else None
    factor = preview_factor(low.shape, max_pixels)
    vmax = max(1, int(max(low.max(initial=0), high.max(initial=0))))

    aspect = low.shape[0] / max(low.shape[1], 1)
    fig = new_figure((11.0, max(2.8, min(7.0, 4.6 * aspect + 1.2))))
    for index, (name, counts) in enumerate((("low", low), ("high", high))):
        ax = fig.add_subplot(1, 2, index + 1)
        shown = block_reduce(counts, factor, how="max")
        artist = _imshow_pixels(ax, shown, factor, cmap=cmap, vmin=0, vmax=vmax)
        pixel_axes_labels(ax)
        colorbar = fig.colorbar(artist, ax=ax, shrink=0.9)
        colorbar.set_label("rejected frames per pixel")
        total = int(counts.sum(dtype=np.int64))
        text = f"rejected {name}: {total:,} values"
        if n_values:
            text += f" ({total / n_values:.3%})"
        if factor > 1:
            text += f"\npreview 1/{factor}: {factor}x{factor} block max"
        ax.set_title(text)
    if title is None:
        title = f"rejection maps: {attrs['rejection']}" if attrs.get("rejection") else "rejection maps"
        if n_frames:
            title += f", {n_frames} frames"
    fig.suptitle(title)
    return fig
