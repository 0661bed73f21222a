"""Which frames belong together: tolerance clustering and the matching keys of each frame type."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["MATCH_KEYS", "cluster_values", "exposures_match", "EXPOSURE_RELATIVE_TOLERANCE",
           "TEMPERATURE_TOLERANCE"]

#: Exposures within this relative difference are the same exposure (DeepSkyStacker uses 5 %).
EXPOSURE_RELATIVE_TOLERANCE = 0.05
#: ... or within this many seconds, for very short exposures (flats, dark flats).
EXPOSURE_ABSOLUTE_TOLERANCE = 0.01
#: Sensor temperatures within this many °C are the same set point (dark current doubles ~6 °C).
TEMPERATURE_TOLERANCE = 1.0

#: The keys that must match within a calibration set, per frame type. ``exposure`` and
#: ``temperature`` are compared within tolerances; the rest exactly (NaN equals NaN: unknown).
MATCH_KEYS: dict[str, tuple[str, ...]] = {
    "bias": ("gain", "offset", "iso", "xbinning", "ybinning", "height", "width", "temperature"),
    "dark": ("exposure", "temperature", "gain", "offset", "iso", "xbinning", "ybinning", "height", "width"),
    "darkflat": ("exposure", "gain", "offset", "iso", "xbinning", "ybinning", "height", "width"),
    # Flats are normalised before integration, so their exposures need not match; the filter must.
    "flat": ("filter", "gain", "offset", "iso", "xbinning", "ybinning", "height", "width"),
    "light": ("filter", "exposure", "gain", "offset", "iso", "xbinning", "ybinning", "height", "width"),
}


def exposures_match(a: float, b: float) -> bool:
    """True when two exposures count as equal (5 % or 0.01 s; unknown matches only unknown)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= max(EXPOSURE_ABSOLUTE_TOLERANCE, EXPOSURE_RELATIVE_TOLERANCE * max(abs(a), abs(b)))


def cluster_values(values: Sequence[float], *, absolute: float = 0.0, relative: float = 0.0) -> np.ndarray:
    """Label values so that each cluster spans at most the tolerance from its smallest member.

    Parameters
    ----------
    values : sequence of float
        NaN values get their own cluster.
    absolute, relative : float
        A value joins the current cluster if it is within ``max(absolute, relative * value)`` of
        the cluster's first (smallest) value.

    Returns
    -------
    numpy.ndarray
        A representative value per input: the median of its cluster (NaN for NaN).
    """
    arr = np.asarray(values, dtype=float)
    out = np.full(arr.shape, np.nan)
    order = np.argsort(arr, kind="stable")
    order = order[~np.isnan(arr[order])]
    start = 0
    while start < len(order):
        first = arr[order[start]]
        end = start + 1
        while end < len(order) and arr[order[end]] - first <= max(absolute, relative * abs(arr[order[end]])):
            end += 1
        members = order[start:end]
        out[members] = float(np.median(arr[members]))
        start = end
    return out
