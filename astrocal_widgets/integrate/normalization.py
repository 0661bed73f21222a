"""Per-frame normalisation as affine coefficients, ``x' = x * scale_coef + offset_coef``.

Every normalisation mode (additive, multiplicative, with or without scaling, in Siril's forms) is
affine in the pixel value, so a frame's normalisation is two numbers computed once from its
location ``L_i`` and scale ``S_i`` (see :func:`astrocal_widgets.integrate.estimators.location_scale`)
and those of the reference frame r. Rejection and combination kernels then apply ``x * a_i + b_i``
without knowing which mode was chosen.

Modes, as ``formula -> (scale_coef, offset_coef)``:

* ``none``: ``x`` -> ``(1, 0)``;
* ``additive``: ``x - L_i + L_r`` -> ``(1, L_r - L_i)``;
* ``multiplicative``: ``x * L_r / L_i`` -> ``(L_r / L_i, 0)``;
* ``additive_scaling``: ``(x - L_i) * S_r / S_i + L_r`` -> ``(S_r / S_i, L_r - L_i * S_r / S_i)``;
* ``multiplicative_scaling``: ``x * (S_r / S_i) * (L_r / L_i)`` -> ``(S_r L_r / (S_i L_i), 0)``;
* ``equalize_fluxes``: as multiplicative -> ``(L_r / L_i, 0)`` (meant for rejection only).

``multiplicative_scaling`` is Siril's form, as the spec states. ``equalize_fluxes`` is
PixInsight's rejection-only normalisation; for flats it is multiplicative, and here it is
*exactly* multiplicative. The "rejection only" part is the caller's business: it uses
these coefficients for the values rejection sees and another mode (normally "none" or
"multiplicative") for the output.

Typical use: bias and darks "none" (the pedestal and thermal signal must survive),
flats "multiplicative", lights "additive_scaling" or "multiplicative_scaling".
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "NORMALIZATIONS",
    "REFERENCE_CRITERIA",
    "normalization_coefficients",
    "choose_reference",
]

#: Valid normalisation modes.
NORMALIZATIONS: tuple[str, ...] = (
    "none",
    "additive",
    "multiplicative",
    "additive_scaling",
    "multiplicative_scaling",
    "equalize_fluxes",
)

#: Modes that divide by the location (need L_i > 0 for every frame).
_NEEDS_POSITIVE_LOCATION = frozenset({"multiplicative", "multiplicative_scaling", "equalize_fluxes"})
#: Modes that divide by the scale (need S_i > 0 for every frame).
_NEEDS_POSITIVE_SCALE = frozenset({"additive_scaling", "multiplicative_scaling"})
#: Modes that read the location at all.
_NEEDS_LOCATION = frozenset(NORMALIZATIONS) - {"none"}

#: Criteria accepted by :func:`choose_reference`.
REFERENCE_CRITERIA: tuple[str, ...] = ("first", "min_scale", "median_location")

NormalizationMode = Literal[
    "none", "additive", "multiplicative", "additive_scaling", "multiplicative_scaling", "equalize_fluxes"
]


def _check_vector(values: ArrayLike | None, name: str, n: int | None) -> np.ndarray:
    if values is None:
        raise ValueError(f"{name} are needed for this normalisation mode, got None")
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence (one value per frame), got shape {a.shape}")
    if n is not None and a.size != n:
        raise ValueError(f"{name} has {a.size} values but locations has {n}: one value per frame is needed")
    return a


def _check_finite(a: np.ndarray, name: str, mode: str) -> None:
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"normalisation {mode!r}: {name} of frame {i} is {float(a[i])!r}; "
            f"a finite value is needed ({bad.size} frame(s) affected)"
        )


def normalization_coefficients(
    locations: ArrayLike,
    scales: ArrayLike | None,
    mode: NormalizationMode | str,
    reference: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Affine normalisation coefficients of every frame.

    Parameters
    ----------
    locations : array_like, shape (N,)
        Location ``L_i`` of each frame (median or IKSS location).
    scales : array_like, shape (N,), or None
        Scale ``S_i`` of each frame (1.4826 MAD or IKSS scale). Only read by the scaling
        modes; may be None otherwise.
    mode : str
        One of :data:`NORMALIZATIONS`.
    reference : int, default 0
        Index of the reference frame r (negative indices count from the end). The
        first frame is the default, as in Siril; see :func:`choose_reference`.

    Returns
    -------
    scale_coef, offset_coef : ndarray of float64, shape (N,)
        Frame i is normalised as ``x * scale_coef[i] + offset_coef[i]``. The reference
        frame always gets ``(1, 0)`` up to round-off.

    Raises
    ------
    ValueError
        Unknown mode (the message lists the valid ones); inputs not 1-D or of different
        lengths; ``reference`` out of range; a non-finite location or scale needed by the
        mode; ``L_i <= 0`` in a multiplicative mode or ``S_i <= 0`` in a scaling mode
        (the message names the first offending frame index and its value).
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation mode {mode!r}; valid modes: {', '.join(NORMALIZATIONS)}")
    loc = _check_vector(locations, "locations", None)
    n = loc.size
    if n == 0:
        raise ValueError("normalisation needs at least one frame, got 0 locations")
    r = int(reference)
    if not -n <= r < n:
        raise ValueError(f"reference frame index {reference} out of range for {n} frame(s)")
    r %= n

    if mode == "none":
        return np.ones(n), np.zeros(n)

    if mode in _NEEDS_LOCATION:
        _check_finite(loc, "location", mode)
    if mode in _NEEDS_POSITIVE_LOCATION:
        bad = np.flatnonzero(loc <= 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"normalisation {mode!r} divides by the location, which must be > 0: "
                f"frame {i} has location {float(loc[i])!r} ({bad.size} frame(s) affected); "
                "use an additive mode for data without a positive pedestal"
            )
    sc = None
    if mode in _NEEDS_POSITIVE_SCALE:
        sc = _check_vector(scales, "scales", n)
        _check_finite(sc, "scale", mode)
        bad = np.flatnonzero(sc <= 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"normalisation {mode!r} divides by the scale, which must be > 0: "
                f"frame {i} has scale {float(sc[i])!r} ({bad.size} frame(s) affected); "
                "a zero scale means a constant (or mostly constant) frame"
            )

    L_r = loc[r]
    if mode == "additive":
        return np.ones(n), L_r - loc
    if mode in ("multiplicative", "equalize_fluxes"):
        return L_r / loc, np.zeros(n)
    assert sc is not None
    ratio = sc[r] / sc
    if mode == "additive_scaling":
        # (x - L_i) * S_r/S_i + L_r  =  x * S_r/S_i + (L_r - L_i * S_r/S_i)
        return ratio, L_r - loc * ratio
    # multiplicative_scaling (Siril's form): x * (S_r/S_i) * (L_r/L_i)
    return ratio * (L_r / loc), np.zeros(n)


def choose_reference(
    locations: ArrayLike,
    scales: ArrayLike | None = None,
    criterion: Literal["first", "min_scale", "median_location"] | str = "first",
) -> int:
    """Pick the index of the reference frame.

    The default, ``"first"``, returns 0: Siril normalises to the first frame of the
    sequence, and a fixed choice keeps results reproducible when frames are added at the
    end. The other criteria ignore frames with a non-finite value:

    * ``"min_scale"``: the frame with the smallest positive scale (least dispersion,
      usually the cleanest / best-transparency frame among lights of one target);
    * ``"median_location"``: the frame whose location is closest to the median of all
      locations, which keeps every frame's correction as small as possible.

    Ties go to the lowest index.

    Parameters
    ----------
    locations : array_like, shape (N,)
        Frame locations.
    scales : array_like, shape (N,), optional
        Frame scales; needed for ``"min_scale"``.
    criterion : {"first", "min_scale", "median_location"}
        Selection rule.

    Returns
    -------
    int
        Index of the reference frame.

    Raises
    ------
    ValueError
        Unknown criterion, no frames, missing scales, or no usable value.
    """
    if criterion not in REFERENCE_CRITERIA:
        raise ValueError(f"unknown reference criterion {criterion!r}; valid: {', '.join(REFERENCE_CRITERIA)}")
    loc = _check_vector(locations, "locations", None)
    if loc.size == 0:
        raise ValueError("choose_reference needs at least one frame, got 0 locations")
    if criterion == "first":
        return 0
    if criterion == "min_scale":
        sc = _check_vector(scales, "scales", loc.size)
        ok = np.isfinite(sc) & (sc > 0)
        if not ok.any():
            raise ValueError("choose_reference('min_scale'): no frame has a finite scale > 0")
        return int(np.argmin(np.where(ok, sc, np.inf)))
    ok = np.isfinite(loc)
    if not ok.any():
        raise ValueError("choose_reference('median_location'): no frame has a finite location")
    target = np.median(loc[ok])
    return int(np.argmin(np.where(ok, np.abs(loc - target), np.inf)))
