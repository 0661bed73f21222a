"""Measurements of masters and single frames that the dashboards and teaching notebooks show.

Pure functions on arrays: the radial (vignetting) profile of a flat, per-channel levels of a colour
frame, the robust background noise of a light and the temporal noise of a frame pair.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..calibrate.cosmetic import check_bayer_pattern
from .stats import MAD_TO_SIGMA

__all__ = ["radial_profile", "channel_levels", "robust_sigma", "background_noise", "temporal_noise"]

#: Central crop (pixels per side) used to measure a light's background noise.
NOISE_WINDOW = 512


def robust_sigma(values: Any) -> float:
    """1.4826 x the median absolute deviation of the finite values (NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(v - np.median(v))))


def background_noise(frame: Any, *, window: int = NOISE_WINDOW, bayer_pattern: str = "") -> float:
    """Robust noise of a light's sky background (ADU), from a central crop.

    The median absolute deviation ignores the stars; the crop keeps the cost of a 24-megapixel frame
    small. For a colour sensor one Bayer site (the first green) is used, so the different channel
    levels do not count as noise.
    """
    a = np.asarray(frame, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"background_noise needs a 2-D frame, got shape {a.shape}")
    h, w = a.shape
    y0, x0 = max(0, (h - window) // 2) & ~1, max(0, (w - window) // 2) & ~1  # even: keep the CFA phase
    crop = a[y0:y0 + window, x0:x0 + window]
    if bayer_pattern:
        pattern = check_bayer_pattern(bayer_pattern)
        dy, dx = divmod(pattern.index("G"), 2)
        crop = crop[dy::2, dx::2]
    return robust_sigma(crop)


def temporal_noise(frame_a: Any, frame_b: Any) -> float:
    """Per-frame temporal noise (ADU) from two frames of a set: robust sigma of ``a - b`` over sqrt(2).

    Fixed patterns (bias structure, amp glow, vignetting) cancel in the difference, so this is the
    noise that averaging N frames reduces as 1/sqrt(N) (ALGORITHMS.md section 3).
    """
    a = np.asarray(frame_a, dtype=np.float64)
    b = np.asarray(frame_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"temporal_noise: frames differ in shape {a.shape} vs {b.shape}")
    return robust_sigma(a - b) / math.sqrt(2.0)


def radial_profile(image: Any, *, bins: int = 40, center: tuple[float, float] | None = None,
                   normalize: bool = True) -> pd.DataFrame:
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
        Divide the levels by the median of the central ring, so the profile reads as the fraction of
        light reaching each radius (1 at the centre).

    Returns
    -------
    pandas.DataFrame
        ``radius`` (ring centre, pixels), ``level`` (mean), ``median``, ``sigma`` (robust spread
        within the ring, showing dust donuts and gradients) and ``n_pixels``, one row per non-empty
        ring.
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"radial_profile needs a 2-D image, got shape {a.shape}")
    h, w = a.shape
    cy, cx = ((h - 1) / 2.0, (w - 1) / 2.0) if center is None else center
    yy, xx = np.indices(a.shape)
    r = np.hypot(yy - cy, xx - cx)
    edges = np.linspace(0.0, float(r.max()) + 1e-9, int(bins) + 1)
    ring = np.clip(np.digitize(r.ravel(), edges) - 1, 0, bins - 1)
    values = a.ravel()
    ok = np.isfinite(values)
    rows = []
    for k in range(bins):
        v = values[(ring == k) & ok]
        if v.size == 0:
            continue
        rows.append((0.5 * (edges[k] + edges[k + 1]), float(v.mean()), float(np.median(v)), robust_sigma(v), v.size))
    table = pd.DataFrame(rows, columns=["radius", "level", "median", "sigma", "n_pixels"])
    if normalize and len(table):
        ref = table["median"].iloc[0]
        if ref and math.isfinite(ref):
            for column in ("level", "median", "sigma"):
                table[column] = table[column] / ref
    return table


def channel_levels(image: Any, bayer_pattern: str = "") -> dict[str, float]:
    """Median level of each colour channel of a CFA frame (both greens merged), or of all pixels.

    A master flat of a colour camera has very different R, G and B levels (the sensor and the light
    source); the flat is normalised per channel for that reason.
    """
    a = np.asarray(image, dtype=np.float64)
    if not bayer_pattern:
        finite = a[np.isfinite(a)]
        return {"all": float(np.median(finite)) if finite.size else math.nan}
    pattern = check_bayer_pattern(bayer_pattern)
    parts: dict[str, list[np.ndarray]] = {}
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        parts.setdefault(colour, []).append(a[dy::2, dx::2].ravel())
    out = {}
    for colour in "RGB":
        if colour in parts:
            v = np.concatenate(parts[colour])
            v = v[np.isfinite(v)]
            out[colour] = float(np.median(v)) if v.size else math.nan
    return out
