"""Robust location, scale and noise estimators used for normalisation and weighting.

All functions are plain numpy, work on arrays of any shape (the statistic is taken over
every value unless an ``axis`` is given) and ignore NaN, which marks a missing value
throughout astrocal-widgets. Computation is done in float64 whatever the input dtype, so
uint16 camera data never wraps around and float32 data does not lose precision in sums.

Definitions follow Siril's and PixInsight's published ones for normalisation and weights:

* MAD is the *raw* median absolute deviation, ``median(|x - median(x)|)``;
  ``MAD_TO_SIGMA * MAD`` (1.4826) is a consistent estimate of a Gaussian sigma.
* BWMV is the biweight midvariance with tuning constant 9 and ``n`` = the number of
  (non-NaN) values, including those with ``|u| >= 1`` that do not contribute to the sums.
  This equals ``astropy.stats.biweight_midvariance(x, c=9.0, modify_sample_size=False)``.
* IKSS is the iterative k-sigma estimator of location and scale (PixInsight, Siril),
  ``ikss_lite`` its one-pass variant.

Degenerate inputs never raise and never produce NaN from a division by zero: when the MAD
is 0 (all values equal, or more than half of them equal) the scale is 0. Empty or all-NaN
inputs give NaN.
"""
from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "MAD_TO_SIGMA",
    "IKSS_SCALE_FACTOR",
    "BWMV_TUNING",
    "LOCATION_SCALE_METHODS",
    "DEFAULT_SUBSAMPLE_PIXELS",
    "DEFAULT_SUBSAMPLE_BANDS",
    "median",
    "mad",
    "bwmv",
    "ikss",
    "ikss_lite",
    "location_scale",
    "noise_sigma",
    "frame_subsample",
]

#: Factor turning a raw MAD into a Gaussian sigma, 1 / Phi^-1(3/4) = 1.482602...
MAD_TO_SIGMA: float = 1.4826
#: IKSS scale = 0.991 * sqrt(BWMV): makes the clipped biweight a consistent Gaussian sigma.
IKSS_SCALE_FACTOR: float = 0.991
#: Biweight tuning constant c in u = (x - m) / (c * MAD).
BWMV_TUNING: float = 9.0
#: Methods accepted by :func:`location_scale`.
LOCATION_SCALE_METHODS: tuple[str, ...] = ("median", "ikss", "ikss_lite")
#: Default pixel budget of :func:`frame_subsample` (about 2 MB of uint16 per frame).
DEFAULT_SUBSAMPLE_PIXELS: int = 1_000_000
#: Default number of row bands of :func:`frame_subsample`.
DEFAULT_SUBSAMPLE_BANDS: int = 16

LocationScaleMethod = Literal["median", "ikss", "ikss_lite"]


# --------------------------------------------------------------------------- helpers


def _as_float(x: ArrayLike) -> np.ndarray:
    # float64 avoids uint16 wrap-around in differences and float32 round-off in sums.
    return np.asarray(x, dtype=np.float64)


def _valid_values(x: ArrayLike) -> np.ndarray:
    """All non-NaN values of ``x`` as a 1-D float64 array."""
    a = _as_float(x).ravel()
    return a[~np.isnan(a)]


class _Quiet:
    """Silence numpy warnings for empty / all-NaN slices and 0/0 in masked terms.

    Empty and all-NaN inputs are documented to give NaN; the warnings would only be noise.
    """

    def __enter__(self) -> None:
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        self._e = np.errstate(divide="ignore", invalid="ignore")
        self._e.__enter__()

    def __exit__(self, *exc) -> None:
        self._e.__exit__(*exc)
        self._w.__exit__(*exc)


def _scalar_or_array(out: np.ndarray, axis: int | tuple[int, ...] | None) -> float | np.ndarray:
    if axis is None:
        return float(np.asarray(out).reshape(()))
    return out


def _median_sorted(v: np.ndarray) -> float:
    """Median of an already sorted, NaN-free, non-empty 1-D array (O(1))."""
    n = v.size
    h = n // 2
    if n % 2:
        return float(v[h])
    return 0.5 * (float(v[h - 1]) + float(v[h]))


def _bwmv_1d(v: np.ndarray, m: float) -> float:
    """BWMV of a NaN-free 1-D array about its median ``m`` (spec formula, n = v.size)."""
    if v.size == 0:
        return math.nan
    d = v - m
    s = float(np.median(np.abs(d)))
    if s == 0.0:
        # MAD = 0: more than half the values equal m; the biweight is undefined, and the
        # only sensible spread for normalisation is 0 (documented degenerate case).
        return 0.0
    u = d / (BWMV_TUNING * s)
    keep = np.abs(u) < 1.0
    u2 = u[keep] ** 2
    dk = d[keep]
    num = v.size * np.sum(dk * dk * (1.0 - u2) ** 4)
    # The denominator is > 0: at least half the values have |u| <= 1/9 and contribute
    # >= 0.92 each, the others at worst -0.8.
    den = np.sum((1.0 - u2) * (1.0 - 5.0 * u2)) ** 2
    return float(num / den)


# --------------------------------------------------------------------------- estimators


def median(x: ArrayLike, axis: int | tuple[int, ...] | None = None) -> float | np.ndarray:
    """Median ignoring NaN.

    Parameters
    ----------
    x : array_like
        Values, any shape and real dtype.
    axis : int or tuple of int, optional
        Axis (axes) along which to take the median; default all values.

    Returns
    -------
    float or ndarray
        The median; NaN for an empty or all-NaN input (or slice).
    """
    a = _as_float(x)
    if a.size == 0 and axis is None:
        return math.nan
    with _Quiet():
        out = np.nanmedian(a, axis=axis)
    return _scalar_or_array(out, axis)


def mad(
    x: ArrayLike,
    center: float | ArrayLike | None = None,
    axis: int | tuple[int, ...] | None = None,
) -> float | np.ndarray:
    """Raw median absolute deviation, ``median(|x - center|)``, ignoring NaN.

    The raw MAD is returned (no 1.4826 factor); multiply by :data:`MAD_TO_SIGMA` for a
    Gaussian-consistent sigma.

    Parameters
    ----------
    x : array_like
        Values, any shape.
    center : float or array_like, optional
        Centre of the deviations; default the NaN-ignoring median of ``x`` (along
        ``axis``). With ``axis`` given, an array centre must broadcast against ``x``
        with the reduced axes kept.
    axis : int or tuple of int, optional
        Axis (axes) of the reduction; default all values.

    Returns
    -------
    float or ndarray
        The MAD; NaN for an empty or all-NaN input (or slice).
    """
    a = _as_float(x)
    if a.size == 0 and axis is None:
        return math.nan
    with _Quiet():
        if center is None:
            c = np.nanmedian(a, axis=axis, keepdims=True)
        else:
            c = _as_float(center)
        out = np.nanmedian(np.abs(a - c), axis=axis)
    return _scalar_or_array(out, axis)


def bwmv(x: ArrayLike, axis: int | tuple[int, ...] | None = None) -> float | np.ndarray:
    """Biweight midvariance (tuning constant 9), as Siril and PixInsight define it for IKSS.

    With ``m`` the median, ``MAD`` the raw MAD about ``m``, ``u_i = (x_i - m) / (9 MAD)``
    and only ``|u_i| < 1`` contributing to the sums::

        BWMV = n * sum (x_i - m)^2 (1 - u_i^2)^4 / [ sum (1 - u_i^2)(1 - 5 u_i^2) ]^2

    where ``n`` counts *all* non-NaN values, including those with ``|u_i| >= 1``. This is
    ``astropy.stats.biweight_midvariance(x, c=9.0, M=median, modify_sample_size=False)``
    (astropy's defaults); ``modify_sample_size=True`` would use only the contributing
    values for ``n`` and is *not* what the spec (or Siril) computes.

    Parameters
    ----------
    x : array_like
        Values, any shape. NaN is ignored (neither a value nor counted in ``n``).
    axis : int or tuple of int, optional
        Axis (axes) of the reduction; default all values.

    Returns
    -------
    float or ndarray
        BWMV (a variance: take the square root for a scale). 0 when the MAD is 0
        (all values, or more than half of them, equal); NaN for empty / all-NaN input.
    """
    a = _as_float(x)
    if axis is None:
        v = a.ravel()
        v = v[~np.isnan(v)]
        if v.size == 0:
            return math.nan
        return _bwmv_1d(v, float(np.median(v)))
    # Vectorised N-D version: masked contributions are replaced by 0 so NaN and |u| >= 1
    # drop out of the sums without any per-slice Python loop.
    with _Quiet():
        m = np.nanmedian(a, axis=axis, keepdims=True)
        d = a - m
        s = np.nanmedian(np.abs(d), axis=axis, keepdims=True)
        n = np.sum(~np.isnan(a), axis=axis, keepdims=True)
        u = d / (BWMV_TUNING * s)
        keep = np.abs(u) < 1.0  # False for NaN and for MAD == 0
        u2 = np.where(keep, u * u, 0.0)
        num = n * np.sum(np.where(keep, d * d * (1.0 - u2) ** 4, 0.0), axis=axis, keepdims=True)
        den = np.sum(np.where(keep, (1.0 - u2) * (1.0 - 5.0 * u2), 0.0), axis=axis, keepdims=True) ** 2
        out = num / den
    out = np.where(s == 0.0, 0.0, out)
    out = np.where(n == 0, np.nan, out)
    return np.squeeze(out, axis=axis)


def ikss(x: ArrayLike, tol: float = 1e-6, max_iter: int = 50) -> tuple[float, float]:
    """Iterative k-sigma estimator of location and scale (IKSS).

    Algorithm (as PixInsight and Siril describe it): sort the non-NaN values once; then loop on
    the current range: ``m`` = its median, ``s = sqrt(BWMV)`` of the range about ``m``;
    if ``s`` changed by at most ``tol`` relative to the previous pass (``|s_prev - s| <=
    tol * s``), stop with location ``m`` and scale ``0.991 s``; otherwise keep only the
    values in ``[m - 4 s, m + 4 s]`` and repeat. Because the data are sorted, each range
    is a slice, each median a lookup and each clip a binary search.

    Choices where the spec leaves room (documented deviations from Siril's code):

    * the first pass always clips (there is no previous ``s``), and a pass that clips
      nothing stops immediately, since the next pass would give the same ``s``;
    * the relative change is taken in absolute value (Siril compares the signed
      ``(s_prev - s) / s`` against a first ``s_prev`` of 1, which only works for data
      normalised to [0, 1]); our result is independent of the data's units;
    * when ``max_iter`` passes are done without convergence the last ``(m, 0.991 s)``
      is returned.

    Parameters
    ----------
    x : array_like
        Values, any shape (all values are used); NaN ignored.
    tol : float, default 1e-6
        Relative change of ``s`` below which the iteration stops.
    max_iter : int, default 50
        Maximum number of passes.

    Returns
    -------
    location, scale : float
        ``(m, 0.991 * s)``. ``(m, 0.0)`` when the MAD of a range is 0 (all values equal);
        ``(nan, nan)`` for empty / all-NaN input.

    Raises
    ------
    ValueError
        If ``tol`` is not positive or ``max_iter`` is less than 1.
    """
    if not (tol > 0):
        raise ValueError(f"ikss: tol must be > 0, got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"ikss: max_iter must be >= 1, got {max_iter!r}")
    v = np.sort(_valid_values(x))
    if v.size == 0:
        return math.nan, math.nan
    lo, hi = 0, v.size
    s_prev: float | None = None
    m = s = math.nan
    for _ in range(int(max_iter)):
        seg = v[lo:hi]
        m = _median_sorted(seg)
        s = math.sqrt(_bwmv_1d(seg, m))
        if s == 0.0:
            return m, 0.0
        if s_prev is not None and abs(s_prev - s) <= tol * s:
            break
        # Clip within the current range only: values once rejected never come back.
        new_lo = max(lo, int(np.searchsorted(v, m - 4.0 * s, side="left")))
        new_hi = min(hi, int(np.searchsorted(v, m + 4.0 * s, side="right")))
        if (new_lo, new_hi) == (lo, hi) or new_hi <= new_lo:
            break  # nothing clipped (converged), or a clip that would empty the range
        lo, hi, s_prev = new_lo, new_hi, s
    return m, IKSS_SCALE_FACTOR * s


def ikss_lite(x: ArrayLike) -> tuple[float, float]:
    """One-pass ("lite") IKSS: clip once to ``median +/- 6 MAD``, then median and BWMV.

    The location is the median of the kept values and the scale ``0.991 sqrt(BWMV)`` of
    the kept values (BWMV about their own median, with their own MAD), as Siril's
    "lite" IKSS does. With MAD = 0 the clip keeps only the values equal to the
    median and the scale is 0.

    Parameters
    ----------
    x : array_like
        Values, any shape; NaN ignored.

    Returns
    -------
    location, scale : float
        ``(nan, nan)`` for empty / all-NaN input.
    """
    v = _valid_values(x)
    if v.size == 0:
        return math.nan, math.nan
    m = float(np.median(v))
    s = float(np.median(np.abs(v - m)))
    kept = v[(v >= m - 6.0 * s) & (v <= m + 6.0 * s)]  # never empty: contains the median region
    if kept.size == 0:  # pragma: no cover - defensive (even-length gap larger than 12 MAD)
        kept = v
    loc = float(np.median(kept))
    return loc, IKSS_SCALE_FACTOR * math.sqrt(_bwmv_1d(kept, loc))


def location_scale(x: ArrayLike, method: LocationScaleMethod | str = "median") -> tuple[float, float]:
    """Location and scale of a frame for normalisation.

    Parameters
    ----------
    x : array_like
        Pixel values (any shape, typically a frame or a :func:`frame_subsample` of it);
        NaN ignored.
    method : {"median", "ikss", "ikss_lite"}
        ``"median"``: ``(median, 1.4826 * MAD)``, the fast choice. The spec's table says
        "1.5 * MAD"; 1.4826 is used so that the scale is a consistent Gaussian sigma.
        Normalisation only uses scale *ratios* S_r / S_i, in which the constant cancels.
        ``"ikss"``: :func:`ikss`; ``"ikss_lite"``: :func:`ikss_lite`.

    Returns
    -------
    location, scale : float
        ``(nan, nan)`` for empty / all-NaN input; scale 0 for constant input.

    Raises
    ------
    ValueError
        For an unknown ``method``.
    """
    if method == "median":
        v = _valid_values(x)
        if v.size == 0:
            return math.nan, math.nan
        m = float(np.median(v))
        return m, MAD_TO_SIGMA * float(np.median(np.abs(v - m)))
    if method == "ikss":
        return ikss(x)
    if method == "ikss_lite":
        return ikss_lite(x)
    raise ValueError(
        f"unknown location/scale method {method!r}; valid methods: {', '.join(LOCATION_SCALE_METHODS)}"
    )


def noise_sigma(
    image_2d: ArrayLike,
    step: int = 2,
    estimator: Literal["ikss_lite", "mad"] | str = "ikss_lite",
) -> float:
    """Robust per-frame estimate of the Gaussian noise sigma of one pixel.

    The frame is high-pass filtered along rows with the second difference of pixels
    ``step`` columns apart, ``d = x[:, j] - 2 x[:, j + step] + x[:, j + 2 step]``; for
    white noise ``var(d) = 6 sigma^2``, so the result is ``scale(d) / sqrt(6)`` where
    ``scale`` is a robust Gaussian-consistent sigma of ``d``. Why this form:

    * a smooth background (sky gradient, vignetting, a flat's fall-off) is locally
      linear and cancels exactly in a second difference. A first difference
      ``x[j + step] - x[j]`` leaves the local slope, which varies across the frame and
      widens the distribution: on a vignetted frame with strong fall-off it overestimated
      sigma by ~5 % in our tests, the second difference by < 1 %;
    * ``step = 2`` (default) pairs pixels of the same colour in a Bayer (2x2) CFA mosaic,
      so the very different R, G, B levels of a raw colour frame are never mixed. For a
      mono frame ``step = 2`` is as good as 1 (and less sensitive to correlation between
      adjacent pixels). On a CFA frame the result pools the four channels: when their
      noise differs (shot noise), it is a median-like mixture of the channel sigmas;
    * stars, cosmic rays and hot pixels touch a small fraction of the differences. The
      default scale, the "lite" IKSS (clip to +/- 6 MAD, then ``0.991 sqrt(BWMV)``), is
      less affected by the faint wings of stars than ``1.4826 MAD``: on a dense star
      field the MAD overestimated sigma by ~4.5 %, the clipped biweight by < 2 %.
      ``estimator="mad"`` gives the classic ``1.4826 MAD(d) / sqrt(6)``, 4x faster.

    Only horizontal differences are used, so the estimate may be computed from any set of
    full-width rows, e.g. ``noise_sigma(frame[frame_subsample(frame.shape)])`` (advised
    for large frames: about 0.1 s per million pixels).

    The MAD of integer data is quantised: for noise below about 1 ADU the estimate from
    raw integer data is coarse (a limitation shared by every MAD-based noise estimate).

    Parameters
    ----------
    image_2d : array_like, shape (ny, nx)
        One frame (or a stack of its rows). NaN pixels are ignored (every difference
        touching one is dropped).
    step : int, default 2
        Column distance of the paired pixels; keep it even for CFA data.
    estimator : {"ikss_lite", "mad"}, default "ikss_lite"
        Robust scale of the differences.

    Returns
    -------
    float
        The noise sigma (same units as the data); 0 for a constant frame; NaN when
        there are no valid differences (width <= 2 * step, or all NaN).

    Raises
    ------
    ValueError
        If the input is not 2-D, ``step`` < 1 or the estimator is unknown.
    """
    a = _as_float(image_2d)  # float64 first: uint16 differences would wrap around
    if a.ndim != 2:
        raise ValueError(f"noise_sigma needs a 2-D image (ny, nx), got shape {a.shape}")
    if int(step) < 1:
        raise ValueError(f"noise_sigma: step must be >= 1, got {step!r}")
    if estimator not in ("ikss_lite", "mad"):
        raise ValueError(f"noise_sigma: unknown estimator {estimator!r}; valid: ikss_lite, mad")
    k = int(step)
    if a.shape[1] <= 2 * k:
        return math.nan
    d = a[:, : -2 * k] - 2.0 * a[:, k:-k] + a[:, 2 * k :]
    # var(d) = (1 + 4 + 1) sigma^2 for independent pixels.
    if estimator == "mad":
        s = MAD_TO_SIGMA * float(mad(d))
    else:
        s = ikss_lite(d)[1]
    return s / math.sqrt(6.0)


def frame_subsample(
    shape: tuple[int, ...],
    max_pixels: int = DEFAULT_SUBSAMPLE_PIXELS,
    n_bands: int = DEFAULT_SUBSAMPLE_BANDS,
) -> np.ndarray:
    """Row indices of a deterministic subsample of a frame for per-frame statistics.

    The rule, so that estimating L and S reads only a few contiguous row bands of each
    file (a memory-mapped FITS data unit is stored row by row):

    1. ``ny, nx = shape[-2:]``; the row budget is ``max(2, max_pixels // nx)``;
    2. ``n_bands`` is reduced to ``max(1, budget // 2)`` if needed; each band has
       ``band_rows = max(2, budget // n_bands)`` rounded *down to an even number* rows;
    3. if ``n_bands * band_rows >= ny`` every row is returned (small frames are
       read in full);
    4. band k is centred on ``(k + 0.5) * ny / n_bands``, its first row rounded down to
       an even index and clipped into the frame.

    Bands are full width, evenly spaced, start on even rows and have an even height, so
    a Bayer CFA frame contributes its four colour sites equally and each band spans the
    frame's full horizontal extent (vignetting, gradients) while the bands sample it
    vertically. The result depends only on ``shape`` and the arguments.

    Parameters
    ----------
    shape : tuple of int
        Frame shape; rows are axis -2, columns axis -1 (leading axes, e.g. colour
        planes, are ignored: select the same rows in each).
    max_pixels : int, default 1_000_000
        Pixel budget per frame (rows * nx stays at or below it, except that at least
        one band of two rows is always taken).
    n_bands : int, default 16
        Number of row bands.

    Returns
    -------
    ndarray of intp
        Sorted, unique row indices; use as ``frame[..., rows, :]``.

    Raises
    ------
    ValueError
        For a shape with fewer than 2 axes or an empty axis, or non-positive
        ``max_pixels`` / ``n_bands``.
    """
    if len(shape) < 2:
        raise ValueError(f"frame_subsample needs a shape with at least 2 axes (ny, nx), got {shape!r}")
    ny, nx = int(shape[-2]), int(shape[-1])
    if ny < 1 or nx < 1:
        raise ValueError(f"frame_subsample: empty frame shape {shape!r}")
    if int(max_pixels) < 1:
        raise ValueError(f"frame_subsample: max_pixels must be >= 1, got {max_pixels!r}")
    if int(n_bands) < 1:
        raise ValueError(f"frame_subsample: n_bands must be >= 1, got {n_bands!r}")
    budget = max(2, int(max_pixels) // nx)
    bands = min(int(n_bands), max(1, budget // 2))
    band_rows = max(2, (budget // bands) // 2 * 2)
    if bands * band_rows >= ny:
        return np.arange(ny, dtype=np.intp)
    centres = (np.arange(bands) + 0.5) * (ny / bands)
    starts = np.floor((centres - band_rows / 2) / 2).astype(np.intp) * 2
    max_start = (ny - band_rows) // 2 * 2
    starts = np.clip(starts, 0, max_start)
    rows = (starts[:, None] + np.arange(band_rows, dtype=np.intp)[None, :]).ravel()
    return np.unique(rows)
