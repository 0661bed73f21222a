"""Measurements of masters and single frames that the dashboards and teaching notebooks show.

Pure functions on arrays: the radial (vignetting) profile of a flat, per-channel levels of a colour
frame, the robust background noise of a light and the temporal noise of a frame pair.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..io.cfa import channel_planes, check_bayer_pattern
from .stats import MAD_TO_SIGMA

__all__ = ["radial_profile", "channel_levels", "robust_sigma", "clipped_sigma", "background_noise",
           "temporal_noise", "central_crop", "central_window"]

#: Central crop (pixels per side) used to measure a light's background noise.
NOISE_WINDOW = 512


#: Standard deviation of a unit Gaussian truncated at +/- 3 sigma: clipped estimates are divided by it.
CLIPPED_STD_3SIGMA = 0.9866


def clipped_sigma(values: Any, *, clip: float = 3.0, max_iterations: int = 10) -> float:
    """Noise of mostly Gaussian values with outliers: iterative 3-sigma clipped standard deviation.

    Unlike a median absolute deviation, it is not quantised on integer data (a MAD of integer pixel
    differences can only be a multiple of 0.5 ADU, i.e. steps of 0.74 ADU in sigma). Stars, hot
    pixels and cosmic rays are clipped; the result is corrected for the clipping of the Gaussian's
    own tails (x 1 / 0.9866 at 3 sigma).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2:
        return math.nan
    centre, sigma = float(np.median(v)), robust_sigma(v)
    if not sigma > 0:
        sigma = float(v.std())
    keep = v
    for _ in range(max_iterations):
        keep = v[np.abs(v - centre) <= clip * sigma]
        if keep.size < 2:
            return math.nan
        new_centre, new_sigma = float(keep.mean()), float(keep.std(ddof=1))
        done = abs(new_sigma - sigma) <= 1e-4 * max(sigma, 1e-12)
        centre, sigma = new_centre, new_sigma
        if done:
            break
    return sigma / CLIPPED_STD_3SIGMA if clip == 3.0 else sigma


def robust_sigma(values: Any) -> float:
    """1.4826 x the median absolute deviation of the finite values (NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(v - np.median(v))))


def central_crop(frame: Any, size: int) -> Any:
    """The central ``size x size`` pixels of a frame or of a ``(..., y, x)`` stack, lazily if it is lazy.

    Offsets are even, so a colour (CFA) frame keeps its Bayer phase. Works on numpy arrays and on
    xarray/dask cubes (nothing is read until the crop is used).
    """
    y0, y1, x0, x1 = central_window(frame.shape[-2:], size)
    return frame[..., y0:y1, x0:x1]


def central_window(shape: tuple[int, ...], size: int | tuple[int, int]) -> tuple[int, int, int, int]:
    """The central window of a frame of ``shape`` (``(..., y, x)``) as ``(y0, y1, x0, x1)``.

    ``size`` is the side of a square window, or ``(height, width)``; a frame smaller than it gives
    its whole extent on that axis. Offsets are even, so a colour (CFA) frame's window keeps its Bayer
    phase. :func:`central_crop` cuts this window.
    """
    h, w = (int(n) for n in shape[-2:])
    height, width = (int(size), int(size)) if np.ndim(size) == 0 else (int(size[0]), int(size[1]))
    if height < 1 or width < 1:
        raise ValueError(f"central_window: the window must be at least 1 x 1 pixels, got {width} x {height}")
    y0, x0 = max(0, (h - height) // 2) & ~1, max(0, (w - width) // 2) & ~1
    return y0, min(h, y0 + height), x0, min(w, x0 + width)


def background_noise(frame: Any, *, window: int = NOISE_WINDOW, bayer_pattern: str = "") -> float:
    """Robust noise of a light's sky background (ADU), from a central crop.

    A 3-sigma clipped standard deviation (:func:`clipped_sigma`) ignores the stars; the crop keeps
    the cost of a 24-megapixel frame small. For a colour sensor one Bayer site (the first green) is
    used, so the different channel levels do not count as noise.
    """
    if len(frame.shape) != 2:
        raise ValueError(f"background_noise needs a 2-D frame, got shape {frame.shape}")
    crop = np.asarray(central_crop(frame, window), dtype=np.float32)
    if bayer_pattern:
        crop = crop[channel_planes(check_bayer_pattern(bayer_pattern))["G"][0]]
    return clipped_sigma(crop)


def temporal_noise(frame_a: Any, frame_b: Any, *, match_levels: bool = False) -> float:
    """Per-frame temporal noise (ADU) from two frames of a set: clipped sigma of ``a - b`` over sqrt(2).

    Fixed patterns (bias structure, amp glow, vignetting) cancel in the difference, so this is the
    noise that averaging N frames reduces as 1/sqrt(N). With
    ``match_levels`` (flats, whose level drifts with the sky or panel), ``b`` is first scaled to
    ``a``'s median so the drift does not count as noise.
    """
    a = np.asarray(frame_a, dtype=np.float64)
    b = np.asarray(frame_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"temporal_noise: frames differ in shape {a.shape} vs {b.shape}")
    if match_levels:
        mb = float(np.nanmedian(b))
        if mb:
            b = b * (float(np.nanmedian(a)) / mb)
    return clipped_sigma(a - b) / math.sqrt(2.0)


def radial_profile(image: Any, *, bins: int = 40, center: tuple[float, float] | None = None,
                   normalize: bool = True, bayer_pattern: str = "", max_pixels: int | None = None) -> pd.DataFrame:
    """Mean level of an image in rings around its centre: a flat's vignetting profile.

    Parameters
    ----------
    image : array-like, shape (y, x)
        A master flat (or any frame). Non-finite pixels are ignored.
    bins : int, default 40
        Rings of equal width from the centre to the farthest corner.
    center : (y, x), optional
        Optical centre in pixels; default the image centre.
    normalize : bool, default True
        Divide by the central ring's level, so the profile reads as the fraction of light reaching
        each radius (1 at the centre).
    bayer_pattern : str, optional
        For a colour (CFA) flat: each channel is first divided by its own median
        (:func:`channel_levels`), so the very different R, G and B levels do not count as spread.
    max_pixels : int, optional
        Measure at most about this many pixels: every k-th pair of rows and of columns (whole 2 x 2
        colour cells, spread over the whole frame). A few million pixels give each of 40 rings tens of
        thousands of pixels, and the working memory stays that of the sample, not of the frame.

    Returns
    -------
    pandas.DataFrame
        ``radius`` (ring centre, pixels), ``level`` (mean), ``median``, ``sigma`` (spread within
        the ring, 1.4826 x the mean absolute deviation from the ring's mean scaled to a sigma;
        dust donuts and gradients widen it) and ``n_pixels`` (pixels measured), one row per non-empty ring.
    """
    shape = tuple(int(n) for n in np.shape(image))
    if len(shape) != 2:
        raise ValueError(f"radial_profile needs a 2-D image, got shape {shape}")
    h, w = shape
    step = math.ceil(math.sqrt(h * w / max_pixels)) if max_pixels and h * w > max_pixels else 1
    rows, cols = _cell_indices(h, step), _cell_indices(w, step)
    if step > 1:  # only the sample is copied
        a = np.asarray(getattr(image, "values", image))[np.ix_(rows, cols)].astype(np.float32)
    else:
        a = np.array(image, dtype=np.float32)  # a copy: the CFA equalisation below writes into it
    if bayer_pattern:
        pattern = check_bayer_pattern(bayer_pattern)
        levels = channel_levels(a, pattern)
        for colour, planes in channel_planes(pattern).items():
            for plane in planes:
                if levels.get(colour):
                    a[plane] /= levels[colour]
    cy, cx = ((h - 1) / 2.0, (w - 1) / 2.0) if center is None else center
    yy, xx = rows[:, None], cols[None, :]
    r = np.sqrt((yy.astype(np.float32) - cy) ** 2 + (xx.astype(np.float32) - cx) ** 2)
    # The farthest corner (also when the sample leaves out the last rows or columns).
    r_max = max(math.hypot(y - cy, x - cx) for y in (0, h - 1) for x in (0, w - 1)) + 1e-6
    ring = np.minimum((r * (bins / r_max)).astype(np.int32), bins - 1).ravel()
    del r
    values = a.ravel()
    ok = np.isfinite(values)
    ring, values = ring[ok], values[ok].astype(np.float64)
    count = np.bincount(ring, minlength=bins)
    total = np.bincount(ring, weights=values, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        # Mean absolute deviation from the ring mean, as a sigma (x sqrt(pi/2)): one more pass, no sort.
        spread = np.sqrt(np.pi / 2) * np.bincount(ring, weights=np.abs(values - mean[ring]), minlength=bins) / count
    median = np.full(bins, np.nan)
    order = np.argsort(ring, kind="stable")
    starts = np.concatenate([[0], np.cumsum(count)])
    sorted_values = values[order]
    for k in range(bins):
        if count[k]:
            median[k] = float(np.median(sorted_values[starts[k]:starts[k + 1]]))
    edges = np.linspace(0.0, r_max, bins + 1)
    table = pd.DataFrame({"radius": 0.5 * (edges[:-1] + edges[1:]), "level": mean, "median": median,
                          "sigma": spread, "n_pixels": count})
    table = table[table["n_pixels"] > 0].reset_index(drop=True)
    if normalize and len(table):
        for column, ref in (("level", table["level"].iloc[0]), ("median", table["median"].iloc[0]),
                            ("sigma", table["level"].iloc[0])):
            if ref and math.isfinite(ref):
                table[column] = table[column] / ref
    return table


def _cell_indices(n: int, step: int) -> np.ndarray:
    """Every ``step``-th pair of indices (0, 1, 2k, 2k + 1, ...): whole 2 x 2 colour cells."""
    return np.flatnonzero((np.arange(n) // 2) % step == 0)


def channel_levels(image: Any, bayer_pattern: str = "") -> dict[str, float]:
    """Median level of each colour channel of a CFA frame (both greens merged), or of all pixels.

    A master flat of a colour camera has very different R, G and B levels (the sensor and the light
    source); the flat is normalised per channel for that reason.
    """
    a = np.asarray(image, dtype=np.float32)
    if not bayer_pattern:
        finite = a[np.isfinite(a)]
        return {"all": float(np.median(finite)) if finite.size else math.nan}
    pattern = check_bayer_pattern(bayer_pattern)
    out = {}
    for colour, planes in channel_planes(pattern).items():
        v = np.concatenate([a[plane].ravel() for plane in planes])
        v = v[np.isfinite(v)]
        out[colour] = float(np.median(v)) if v.size else math.nan
    return out
