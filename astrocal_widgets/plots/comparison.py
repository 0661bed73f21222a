"""Two rejections of one set compared: the masters' difference, both rejection maps and their figures."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ._common import as_array, block_reduce, new_figure, pixel_axes_labels, preview_factor

__all__ = ["rejection_comparison_figure"]

#: The difference's colour scale spans +/- this percentile of |second - first| (larger values saturate).
DIFFERENCE_PERCENTILE = 99.5


def _show(ax, values: np.ndarray, crop: tuple[int, int, int, int], factor: int, **kwargs):
    """imshow in the frame's pixel coordinates (the crop's place in it; row 0 at the bottom, as FITS)."""
    y0, _, x0, _ = crop
    y1, x1 = y0 + values.shape[0] * factor, x0 + values.shape[1] * factor  # a preview drops partial blocks
    return ax.imshow(values, origin="lower", interpolation="nearest",
                     extent=(x0 - 0.5, x1 - 0.5, y0 - 0.5, y1 - 0.5), **kwargs)


def _value(x: float, unit: str = "") -> str:
    return "-" if not math.isfinite(x) else f"{x:.4g}{unit}"


def rejection_comparison_figure(result: Any, *, max_pixels: int = 1_000_000, cmap: str = "magma",
                                diverging_cmap: str = "RdBu_r") -> Figure:
    """Two rejections of one crop side by side: the masters' difference, each rejection map, a table.

    Parameters
    ----------
    result : RejectionComparison
        From :func:`astrocal_widgets.workflow.compare_rejections` (or any object with its attributes:
        ``first`` and ``second``, each with ``label``, ``rejected_low``, ``rejected_high``,
        ``fraction_low``, ``fraction_high``, ``fraction``, ``noise`` and ``expected_noise``;
        ``difference``, ``difference_rms``, ``difference_max``, ``crop``, ``n_frames``, ``label``).
    max_pixels : int, default 1_000_000
        Larger crops are shown as previews: block mean of the difference, block maximum of the maps
        (a single rejected pixel stays visible); the factor is in the titles.
    cmap : str, default 'magma'
        Colour map of the rejection counts (shared scale, so the two maps compare).
    diverging_cmap : str, default 'RdBu_r'
        Colour map of the difference, on a scale symmetric about 0 (red: the second master is higher)
        that spans the 99.5th percentile (:data:`DIFFERENCE_PERCENTILE`) of ``|difference|`` (beyond it,
        colours saturate: the few outliers one rejection kept do not flatten the rest).

    Returns
    -------
    matplotlib.figure.Figure
        Top: ``second - first`` and the rejected values per pixel (low + high) of each; below, a table
        of the rejected fractions (low, high, all) and the noise of each master, measured and expected.
    """
    first, second = result.first, result.second
    difference = as_array(result.difference).astype(np.float32, copy=False)
    if difference.ndim != 2:
        raise ValueError(f"rejection_comparison_figure needs a 2-D difference, got shape {difference.shape}")
    crop = tuple(int(v) for v in getattr(result, "crop", (0, difference.shape[0], 0, difference.shape[1])))
    factor = preview_factor(difference.shape, max_pixels)
    maps = [as_array(o.rejected_low).astype(np.int32) + as_array(o.rejected_high) for o in (first, second)]
    counts_max = max(1, int(max(m.max(initial=0) for m in maps)))
    finite = np.abs(difference[np.isfinite(difference)])
    # A symmetric scale where most differences are seen: a few rejected outliers would flatten a max scale.
    limit = float(np.percentile(finite, DIFFERENCE_PERCENTILE)) if finite.size else 0.0
    if not limit > 0:
        limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    note = f"\npreview 1/{factor}" if factor > 1 else ""

    fig = new_figure((13.5, 6.6))
    grid = fig.add_gridspec(2, 3, height_ratios=(4.2, 1.0))
    ax = fig.add_subplot(grid[0, 0])
    artist = _show(ax, block_reduce(difference, factor), crop, factor, cmap=diverging_cmap,
                   norm=Normalize(-limit, limit))
    pixel_axes_labels(ax)
    fig.colorbar(artist, ax=ax, shrink=0.85, location="bottom", extend="both").set_label(
        f"second - first (ADU), saturated beyond \u00b1{limit:.3g}")
    ax.set_title(f"difference: RMS {_value(result.difference_rms)}, largest {_value(result.difference_max)} ADU"
                 + note)
    for k, (name, outcome, counts) in enumerate((("first", first, maps[0]), ("second", second, maps[1]))):
        ax = fig.add_subplot(grid[0, k + 1])
        artist = _show(ax, block_reduce(counts, factor, how="max"), crop, factor, cmap=cmap, vmin=0,
                       vmax=counts_max)
        pixel_axes_labels(ax)
        fig.colorbar(artist, ax=ax, shrink=0.85, location="bottom").set_label("rejected frames per pixel")
        ax.set_title(f"{name}: {outcome.label}\nrejected {outcome.fraction_low:.3%} low, "
                     f"{outcome.fraction_high:.3%} high" + note)
    table_ax = fig.add_subplot(grid[1, :])
    table_ax.set_axis_off()
    rows = [[name, o.label, f"{o.fraction_low:.3%}", f"{o.fraction_high:.3%}", f"{o.fraction:.3%}",
             _value(o.noise), _value(o.expected_noise)] for name, o in (("first", first), ("second", second))]
    table = table_ax.table(cellText=rows, colLabels=["", "rejection", "rejected low", "rejected high", "rejected",
                                                     "noise (ADU)", "expected noise (ADU)"],
                           loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.auto_set_column_width(list(range(len(rows[0]))))
    table.scale(1.0, 1.4)
    table_ax.set_title("noise: clipped sigma of each master crop (with the fixed pattern); expected: one frame's "
                       "temporal noise over the square root of the frames kept", fontsize=9)
    y0, y1, x0, x1 = crop
    fig.suptitle(f"{getattr(result, 'label', '')}: {getattr(result, 'n_frames', '?')} frames, crop "
                 f"{x1 - x0} x {y1 - y0} at x {x0}, y {y0}".lstrip(": "))
    return fig
