"""Small previews of big images: block means (or maxima) that bring a frame under a pixel budget.

What a view keeps of a 24-megapixel frame: one million block-mean pixels are 4 MB instead of 96.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["preview_factor", "block_reduce", "downsample"]


def preview_factor(shape: tuple[int, ...], max_pixels: int | None) -> int:
    """The smallest integer block size that brings ``shape`` under ``max_pixels`` pixels (1: no reduction)."""
    size = int(np.prod(shape))
    if not max_pixels or max_pixels <= 0 or size <= max_pixels:
        return 1
    factor = max(2, math.ceil(math.sqrt(size / max_pixels)))
    while (shape[0] // factor) * (shape[1] // factor) > max_pixels:
        factor += 1
    return factor


def block_reduce(image: np.ndarray, factor: int, how: str = "mean") -> np.ndarray:
    """Reduce a 2-D image by ``factor`` x ``factor`` blocks (edges that do not fill a block are dropped).

    ``how`` is ``"mean"`` (a preview of an image: noise averages down; float32) or ``"max"`` (a map
    of counts: an isolated non-zero pixel stays visible). No full-size copy is made.
    """
    if how not in ("mean", "max"):
        raise ValueError(f"how must be 'mean' or 'max', not {how!r}")
    if factor <= 1:
        return image
    rows, cols = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor)
    if how == "max":
        return blocks.max(axis=(1, 3))
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def downsample(image: Any, max_pixels: int | None, how: str = "mean") -> tuple[np.ndarray, int]:
    """A block-mean (or block-maximum) preview of a 2-D image with at most ``max_pixels`` pixels.

    Parameters
    ----------
    image : array-like, shape (y, x)
        Numpy array, or a lazy (xarray or dask) array: then one band of rows is read at a time.
    max_pixels : int or None
        Pixel budget; ``None`` or 0 keeps the image as it is (as a numpy array).
    how : {'mean', 'max'}

    Returns
    -------
    (numpy.ndarray, int)
        The preview and its factor ``f``: preview pixel ``[i, j]`` is the mean of the original
        pixels ``[f i : f (i + 1), f j : f (j + 1)]``.
    """
    shape = tuple(int(n) for n in image.shape)
    if len(shape) != 2:
        raise ValueError(f"downsample needs a 2-D image, got shape {shape}")
    factor = preview_factor(shape, max_pixels)
    if isinstance(image, np.ndarray):
        return block_reduce(image, factor, how), factor
    if factor == 1:
        return np.asarray(getattr(image, "values", image)), 1
    # A lazy image: reduce bands of whole blocks, so only one band is ever in memory.
    band = max(1, (16 * 2**20) // max(1, shape[1] * 4 * factor)) * factor
    parts = []
    for y0 in range(0, (shape[0] // factor) * factor, band):
        rows = np.asarray(getattr(image[y0:y0 + band], "values", image[y0:y0 + band]))
        parts.append(block_reduce(rows, factor, how))
    return np.concatenate(parts, axis=0), factor
