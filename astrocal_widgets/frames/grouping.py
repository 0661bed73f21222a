"""Which frames belong together: tolerance clustering and the matching keys of each frame type."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["MATCH_KEYS", "cluster_values", "exposures_match", "EXPOSURE_RELATIVE_TOLERANCE",
           "EXPOSURE_ABSOLUTE_TOLERANCE", "TEMPERATURE_TOLERANCE",
           "EGAIN_RELATIVE_TOLERANCE", "egains_match", "readout_modes_match"]

#: Exposures within this relative difference are the same exposure (DeepSkyStacker uses 5 %).
EXPOSURE_RELATIVE_TOLERANCE = 0.05
#: ... or within this many seconds, for very short exposures (flats, dark flats).
EXPOSURE_ABSOLUTE_TOLERANCE = 0.01
#: Sensor temperatures within this many °C are the same set point (dark current doubles ~6 °C).
TEMPERATURE_TOLERANCE = 1.0
#: Conversion gains (e-/ADU) within this relative difference are the same gain: drivers report a
#: nominal or rounded value, and another readout mode or gain setting changes it by far more.
EGAIN_RELATIVE_TOLERANCE = 0.05

#: The camera settings every calibration set shares: a readout mode or gain changes the pedestal,
#: the conversion gain (``egain``, e-/ADU) and the noise, so frames of two modes never share a master.
_SETTINGS = ("gain", "offset", "iso", "readout_mode", "egain", "xbinning", "ybinning", "height", "width")

#: The keys that must match within a calibration set, per frame type. ``exposure``, ``temperature``
#: and ``egain`` are compared within tolerances; the rest exactly (NaN equals NaN: unknown).
MATCH_KEYS: dict[str, tuple[str, ...]] = {
    "bias": _SETTINGS + ("temperature",),
    "dark": ("exposure", "temperature") + _SETTINGS,
    "darkflat": ("exposure",) + _SETTINGS,
    # Flats are normalised before integration, so their exposures need not match; the filter must.
    "flat": ("filter",) + _SETTINGS,
    "light": ("filter", "exposure") + _SETTINGS,
}


def exposures_match(a: float, b: float) -> bool:
    """True when two exposures count as equal (5 % or 0.01 s; unknown matches only unknown)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= max(EXPOSURE_ABSOLUTE_TOLERANCE, EXPOSURE_RELATIVE_TOLERANCE * max(abs(a), abs(b)))


def egains_match(a: float, b: float) -> bool:
    """True when two conversion gains (e-/ADU) count as equal (5 %; unknown matches only unknown)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= EGAIN_RELATIVE_TOLERANCE * max(abs(a), abs(b))


def readout_modes_match(a: str, b: str) -> bool:
    """True when two readout modes are the same words (case and spacing aside; unknown matches unknown)."""
    return " ".join(str(a or "").split()).casefold() == " ".join(str(b or "").split()).casefold()


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
