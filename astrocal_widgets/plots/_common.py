"""Helpers shared by the plot functions: figures without pyplot, PNG rendering, array coercion."""
from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..integrate.estimators import MAD_TO_SIGMA
from ..quality.previews import block_reduce, preview_factor  # noqa: F401 (shared with the views)

__all__ = ["to_png", "new_figure", "as_array", "block_reduce", "robust_location_scale"]


def to_png(fig: Figure, *, dpi: float | None = None) -> bytes:
    """Render a figure to PNG bytes with the Agg canvas (no pyplot, no GUI backend).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to render, e.g. the return value of any function of :mod:`astrocal_widgets.plots`.
    dpi : float, optional
        Resolution; the figure's own ``dpi`` when omitted.

    Returns
    -------
    bytes
        The PNG file content (starts with ``b"\\x89PNG\\r\\n\\x1a\\n"``), ready for an
        ``ipywidgets.Image(value=..., format="png")`` or ``IPython.display.Image``.
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi if dpi is not None else "figure")
    return buffer.getvalue()


def new_figure(figsize: tuple[float, float] = (7.0, 4.5), dpi: float = 100) -> Figure:
    """A free-standing figure (not registered with pyplot) with constrained layout and an Agg canvas."""
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def as_array(data: Any) -> np.ndarray:
    """A numpy array from numpy, xarray (computed if lazy), dask or list input."""
    values = getattr(data, "values", data) if not isinstance(data, np.ndarray) else data
    if hasattr(values, "compute") and not isinstance(values, np.ndarray):
        values = values.compute()
    return np.asarray(values)


def robust_location_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and normalised-MAD sigma of the finite values (``nan, nan`` when there are none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    median = float(np.median(finite))
    return median, float(MAD_TO_SIGMA * np.median(np.abs(finite - median)))


def pixel_axes_labels(ax) -> None:
    ax.set_xlabel("x (pixel)")
    ax.set_ylabel("y (pixel)")
