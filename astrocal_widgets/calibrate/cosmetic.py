"""Cosmetic correction: find hot and cold (dead) pixels in masters and repair them in frames.

As PixInsight's CosmeticCorrection and Siril's ``find_hot`` do it: hot pixels are where the master
dark exceeds its background by more than ``k_hot`` robust sigmas, cold/dead pixels where the master
flat (or the dark) falls below it by more than ``k_cold``; each defect is replaced by the median of
its same-colour neighbours.

How a pixel is judged (:func:`defect_residual`, the same for darks and flats):

1. **Local, same-colour background.** A median filter over the pixel's neighbourhood of the same
   CFA colour (:func:`local_background`, 5 x 5 samples). Amp glow, vignetting and dust donuts
   vary slowly compared with a single pixel, so they end up in the background, not in the
   residual; on a raw colour mosaic the very different R, G and B levels are never mixed.
2. **Line structure removed.** Each column's and each row's median residual is subtracted, so a
   bias column pattern or a flickering column left in a master is not a line of "hot pixels".
3. **A noise map, not one number** (:func:`noise_map`): the robust sigma (1.4826 MAD) of the
   residual per CFA colour plane, taken as the largest of the whole plane's value (the floor),
   that of a 7 x 7-sample window around the pixel, that of its column and that of its row.
4. **For darks, noise that grows with the signal**: a line ``var = v0 + g * level`` fitted to
   the residual's variance in bins of background level (the shot noise of the dark signal),
   evaluated at the pixel's level (:func:`defect_residual`).

A defect is then ``residual > k_hot * sigma`` (hot) or ``residual < -k_cold * sigma`` (cold);
flats are judged on the relative residual ``F / background - 1``, and a cold pixel of a flat must
also lose at least ``min_deficit`` (20 %) of its neighbours' response (:func:`cold_pixel_map`).

Why 3 and 4: the noise of a master dark is not uniform, and a single global sigma mistakes the
noisy places for defects. Shot noise of the amp glow makes the glowing corner several times
noisier than the rest, and no median background follows the glow's steep, curved peak at the
corner (the residuals of *all* pixels there are large, which the window term sees). A column
that flickered in some raw darks is noisier than its neighbours. Measured on the simulator
(240 x 320 px, master darks of 10 frames, mono and colour): one global sigma flagged 40-75
non-defective pixels, nearly all in the glow, of a 300 s master and 10-25, mostly along the
flickering column, of a 60 s one; with the noise map and the level term, 0 or 1 per master over
4 seeds, with every hot pixel still found.

Which pixels a dark-based map finds: every pixel whose thermal signal is significant against its
neighbours, i.e. hot pixels (100-1000x the mean dark current in the simulator) *and* warm pixels
(5-20x), which in a 300 s master stand 15-100 sigma out. Both are real thermal defects; to keep
only the strongest, raise ``k_hot`` (see :func:`hot_pixel_map`).

Cost: a 5 x 5 median filter per master and the row, column and plane medians. The median filter
is a compiled selection network applied to blocks of pixels at once (exactly scipy's
``median_filter`` with ``mode="mirror"``, about 50 times faster), the row and column medians are
compiled and parallel and need no transposed copy, the dark's residual serves both maps, the
element-wise steps are fused into compiled loops that write in place, and the work is in float32
(masters are float32). The window term is evaluated only at the pixels the other terms flag, since it can
only raise their threshold (the result is the same as with the full map).

All functions are pure: inputs are never modified, results are new arrays. CFA data are
described by ``bayer_pattern``, the 2x2 pattern at array element ``[0, 0]`` (``'RGGB'``,
``'GRBG'``, ``'GBRG'``, ``'BGGR'``; see :func:`astrocal_widgets.io.bayer_pattern_at_origin`),
or ``""`` for a monochrome sensor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike
from scipy import ndimage

from ..integrate.estimators import MAD_TO_SIGMA
# CFA_PATTERNS, cfa_planes and check_bayer_pattern were defined here: still importable from this module.
from ..io.cfa import CFA_PATTERNS, cfa_planes, check_bayer_pattern, site_colours  # noqa: F401

__all__ = [
    "COMPILING_MESSAGE",
    "kernels_need_compiling",
    "DefectMap",
    "cold_pixel_map",
    "dark_defect_maps",
    "correct_defects",
    "defect_map",
    "defect_residual",
    "hot_pixel_map",
    "local_background",
    "noise_map",
    "K_HOT",
    "K_COLD",
]

#: Working precision of the defect maps: float32 halves their memory (a 61-megapixel map holds
#: several frame-sized arrays at once); masters are float32 already.
WORK_DTYPE = np.float32
#: Default median-filter window (same-colour samples a side) of the local background.
DEFAULT_WINDOW: int = 5
#: Default smallest relative response deficit of a cold pixel in a flat (see :func:`cold_pixel_map`).
DEFAULT_MIN_DEFICIT: float = 0.2
#: Default thresholds of the hot and cold pixel maps, in robust sigmas of the local noise.
K_HOT: float = 5.0
K_COLD: float = 5.0
#: Default side (same-colour samples) of the window of the local noise term.
DEFAULT_NOISE_WINDOW: int = 7
#: Rings of neighbours searched by :func:`correct_defects` before giving up on a pixel.
_MAX_RINGS: int = 3
#: Bins of background level for the signal-dependent noise of darks.
_LEVEL_BINS: int = 40


# --------------------------------------------------------------------------- array helpers


def _as_2d_float(name: str, x: ArrayLike) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D image (rows, columns), got shape {a.shape}")
    return a.astype(WORK_DTYPE, copy=True)  # always a copy: the caller's array is never touched


def _check_same_shape(**arrays: ArrayLike | None) -> None:
    named = [(k, np.shape(v)) for k, v in arrays.items() if v is not None]
    for k, shp in named[1:]:
        if shp != named[0][1]:
            raise ValueError(
                f"{k} has shape {shp} but {named[0][0]} has shape {named[0][1]}; "
                "calibration images must have the same shape"
            )


# --------------------------------------------------------------------------- background and noise


def local_background(image: ArrayLike, *, bayer_pattern: str = "", size: int = DEFAULT_WINDOW) -> np.ndarray:
    """Median of each pixel's same-colour neighbourhood (itself included).

    Parameters
    ----------
    image : array_like, shape (ny, nx)
        A master dark, flat or any frame (finite values: NaN has no place in a median; the maps
        fill it first).
    bayer_pattern : str
        ``''`` (mono): a ``size x size`` median. A CFA pattern: the median over ``size x size``
        pixels *of the same colour* (every other row and column, ``2 size - 1`` pixels wide in
        the mosaic).
    size : int, default 5
        Window side in same-colour samples (odd, >= 3). A single defect, or a few touching
        ones, never reaches the median of a window of 9 or more samples.

    Returns
    -------
    ndarray of float32
        The background. Edges use mirrored neighbours without repeating the edge pixel, so a
        defect on the edge is not its own background.
    """
    if int(size) < 3 or int(size) % 2 == 0:
        raise ValueError(f"size must be an odd number >= 3, got {size!r}")
    return _local_background(_as_2d_float("image", image), bayer_pattern, int(size))


def _local_background(a: np.ndarray, bayer_pattern: str, size: int) -> np.ndarray:
    if not bayer_pattern:
        return median_filter(a, size)
    out = np.empty_like(a)
    for ys, xs in cfa_planes(bayer_pattern):
        out[ys, xs] = median_filter(a[ys, xs], size)
    return out


def median_filter(plane: np.ndarray, size: int, *, absolute: bool = False) -> np.ndarray:
    """``scipy.ndimage.median_filter(plane, size, mode="mirror")``, exactly, about 50 times faster.

    Each output is the middle of the ``size x size`` window's values, picked by a selection network
    (compare-exchanges, no branches) in compiled code, applied to a block of a row's pixels at once
    (vector instructions), rows in parallel. A median picks one of
    the window's own values, so the result is identical to scipy's, bit for bit.

    ``absolute=True`` filters ``|plane|`` (a local median absolute deviation of a residual) without
    making ``np.abs(plane)``, a full-size array, first.
    """
    plane = np.ascontiguousarray(plane)
    if plane.dtype not in (np.float32, np.float64) or min(plane.shape) < size // 2 + 1:
        # tiny or odd inputs: scipy
        return ndimage.median_filter(np.abs(plane) if absolute else plane, size=size, mode="mirror")
    return _median_filter_kernel(plane, size, _median_network(size * size), bool(absolute))


@lru_cache(maxsize=None)
def _median_network(n: int) -> np.ndarray:
    """Comparators of a sorting network for ``n`` values, pruned to those the middle output needs."""
    from ..integrate.kernels import sorting_network

    needed = {n // 2}
    kept = []
    for i, j in sorting_network(n)[::-1]:
        if i in needed or j in needed:
            kept.append((i, j))
            needed |= {int(i), int(j)}
    out = np.array(kept[::-1], dtype=np.int64).reshape(-1, 2)
    out.flags.writeable = False
    return out


#: Said by progress bars before the first defect map of an installation (numba compiles, then caches).
COMPILING_MESSAGE = "compiling the hot/cold pixel kernels (first run only, about 15 s)"


def kernels_need_compiling() -> bool:
    """True when the next defect map will compile its kernels (no compiled copy in memory or on disk)."""
    from ..integrate.kernels import dispatchers_need_compiling

    return dispatchers_need_compiling(_median_filter_kernel, _row_stats, _column_stats, _largest_term,
                                      _subtract_background, _exceeds, _corrected_values, _level_noise)


#: Pixels of a row filtered together: the comparators run over this many values at once (vectorised),
#: and the window's 25 values of them (100 KiB for float32) stay in the core's cache.
_MEDIAN_BLOCK = 1024


@njit(parallel=True, cache=True, nogil=True)
def _median_filter_kernel(a, size, pairs, absolute):  # pragma: no cover - compiled
    ny, nx = a.shape
    half = size // 2
    n = size * size
    mid = n // 2
    width = _MEDIAN_BLOCK
    out = np.empty_like(a)
    for y in prange(ny):
        # buf[m, t] holds window value m of pixel x0 + t: each comparator is then one exchange
        # applied to a whole block of pixels, which compiles to vector min/max instructions.
        buf = np.empty((n, width), a.dtype)
        rows = np.empty(size, np.int64)
        for k in range(size):  # mirrored at the edges without repeating the edge pixel
            r = y + k - half
            if r < 0:
                r = -r
            elif r >= ny:
                r = 2 * (ny - 1) - r
            rows[k] = r
        for x0 in range(0, nx, width):
            w = min(width, nx - x0)
            for k in range(size):
                r = rows[k]
                for j in range(size):
                    m = k * size + j
                    shift = j - half
                    if x0 + shift >= 0 and x0 + w - 1 + shift < nx:
                        for t in range(w):
                            buf[m, t] = a[r, x0 + shift + t]
                    else:
                        for t in range(w):
                            c = x0 + t + shift
                            if c < 0:
                                c = -c
                            elif c >= nx:
                                c = 2 * (nx - 1) - c
                            buf[m, t] = a[r, c]
                    if absolute:
                        for t in range(w):
                            buf[m, t] = abs(buf[m, t])
            for p in range(pairs.shape[0]):
                i0 = pairs[p, 0]
                i1 = pairs[p, 1]
                for t in range(w):
                    lo = buf[i0, t]
                    hi = buf[i1, t]
                    swap = hi < lo  # an exchange: the window's values are kept, only reordered
                    buf[i0, t] = hi if swap else lo
                    buf[i1, t] = lo if swap else hi
            for t in range(w):
                out[y, x0 + t] = buf[mid, t]
    return out


def _robust_sigma(x: np.ndarray, axis=None) -> np.ndarray | float:
    # Raw MAD about the median times 1.4826: a Gaussian sigma that ignores the defects themselves.
    if axis in (0, 1) and x.ndim == 2 and x.dtype in (np.float32, np.float64) and min(x.shape) > 0:
        # Per column or row, compiled and in parallel (numpy's partition along a strided axis is
        # most of a large map's cost); the same medians, so the same numbers.
        return MAD_TO_SIGMA * _line_stats(x, axis, True)
    if axis is None and x.dtype in (np.float32, np.float64) and x.size > 0:
        # One working copy serves both medians: the median only needs the values, not their order,
        # so the deviations are taken in the partitioned copy (a large map pays one copy, not four).
        buf = np.array(x, copy=True).reshape(-1)
        m = np.median(buf, overwrite_input=True)
        np.subtract(buf, m, out=buf)
        np.abs(buf, out=buf)
        return float(MAD_TO_SIGMA * np.median(buf, overwrite_input=True))
    m = np.median(x, axis=axis, keepdims=True)
    s = MAD_TO_SIGMA * np.median(np.abs(x - m), axis=axis)
    return float(s) if axis is None else s


#: Above this many pixels a plane's robust sigma (the noise floor) is taken from a regular sample of
#: about this many: its relative error is then about 0.05 %, and the two full-frame medians it saves
#: were a third of a 24-megapixel defect map's single-threaded time.
PLANE_SAMPLE = 4_000_000


def _plane_sigma(p: np.ndarray) -> float:
    """:func:`_robust_sigma` of a whole plane, from every k-th row and column of a large one."""
    step = int(math.isqrt(p.size // PLANE_SAMPLE)) if p.size > 2 * PLANE_SAMPLE else 1
    return _robust_sigma(p[::step, ::step] if step > 1 else p)


def _line_stats(x: np.ndarray, axis: int, mad: bool) -> np.ndarray:
    """Median (``mad=False``) or MAD of each column (``axis=0``) or row (``axis=1``) of a 2-D float array."""
    if axis == 1:
        return _row_stats(x, mad)
    return _column_stats(x, mad)


@njit(cache=True, nogil=True)
def _line_stat(line, mad):  # pragma: no cover - compiled
    med = _median_of(line)
    if not mad:
        return med
    dev = np.empty_like(line)
    for j in range(line.size):
        dev[j] = abs(line[j] - med)
    return _median_of(dev)


#: Values of a line sampled to bracket an order statistic before the line is scanned.
_BRACKET_SAMPLE = 128


@njit(cache=True, nogil=True)
def _median_of(x):  # pragma: no cover - compiled
    """``np.median`` of a 1-D float array (without NaN) as numba computes it: the middle value, or
    ``(a + b) / 2`` of the two middle ones (their sum in the array's precision)."""
    n = x.size
    half = n >> 1
    if n & 1 == 0:
        a, b = _order_statistics(x, half - 1, True)
        return (a + b) / 2
    a, _ = _order_statistics(x, half, False)
    return a


@njit(cache=True, nogil=True)
def _order_statistics(x, k, two):  # pragma: no cover - compiled
    """The ``k``-th smallest value of ``x`` (0-based) and, with ``two``, the ``k+1``-th; ``x`` is not changed.

    Exact, about 2.5 times faster than a selection of the whole line on lines of thousands of
    values: a regular sample of the line gives two values that bracket rank ``k`` with a margin of
    2.5 binomial sigmas; one branch-free pass counts the values below the bracket and gathers those
    inside it (about a quarter of the line), and the selection runs on them alone. When the bracket
    misses (or a NaN is met) the whole line is selected instead: slower, same result.
    """
    n = x.size
    s = _BRACKET_SAMPLE
    if n < 8 * s:
        return _select_pair(x.copy(), n, k, two)
    step = n // s
    sample = np.empty(s, x.dtype)
    for i in range(s):
        sample[i] = x[i * step]
    sample.sort()
    position = (k + 0.5) * s / n
    margin = 2.5 * math.sqrt(s * 0.25) + 1.0
    i_low, i_high = int(position - margin), int(position + margin) + 1
    low = sample[i_low] if i_low >= 0 else -np.inf
    high = sample[i_high] if i_high < s else np.inf
    inside = np.empty(n, x.dtype)
    below = 0
    count = 0
    nans = 0
    for i in range(n):
        v = x[i]
        below += v < low
        nans += v != v
        inside[count] = v
        count += (v >= low) & (v <= high)
    last = k + 1 if two else k
    if nans == 0 and below <= k and last < below + count:
        return _select_pair(inside, count, k - below, two)
    return _select_pair(x.copy(), n, k, two)


@njit(cache=True, nogil=True)
def _select_pair(a, n, k, two):  # pragma: no cover - compiled
    """Quickselect of ``a[:n]`` in place (median-of-three pivot, Hoare partition, as numba's own):
    the ``k``-th smallest, and with ``two`` the next one (the smallest of what lies after it)."""
    low, high = 0, n - 1
    while high > low:
        i = _partition(a, low, high)
        if i == k:
            break
        if i < k:
            low = i + 1
        else:
            high = i - 1
    first = a[k]
    second = first
    if two:
        second = a[k + 1]
        for j in range(k + 2, n):
            if a[j] < second:
                second = a[j]
    return first, second


@njit(cache=True, nogil=True)
def _partition(a, low, high):  # pragma: no cover - compiled
    mid = (low + high) >> 1
    if a[mid] < a[low]:
        a[low], a[mid] = a[mid], a[low]
    if a[high] < a[mid]:
        a[high], a[mid] = a[mid], a[high]
        if a[mid] < a[low]:
            a[low], a[mid] = a[mid], a[low]
    pivot = a[mid]
    a[high], a[mid] = a[mid], a[high]
    i, j = low, high - 1
    while True:
        while i < high and a[i] < pivot:
            i += 1
        while j >= low and pivot < a[j]:
            j -= 1
        if i >= j:
            break
        a[i], a[j] = a[j], a[i]
        i += 1
        j -= 1
    a[i], a[high] = a[high], a[i]
    return i


@njit(parallel=True, cache=True, nogil=True)
def _row_stats(x, mad):  # pragma: no cover - compiled
    n = x.shape[0]
    out = np.empty(n, np.float64)
    for i in prange(n):
        out[i] = _line_stat(x[i, :], mad)
    return out


#: Columns gathered together (a cache line of float32 per row) by the per-column statistics.
_COLUMN_BLOCK = 16


@njit(parallel=True, cache=True, nogil=True)
def _column_stats(x, mad):  # pragma: no cover - compiled
    # Columns are gathered a block at a time into rows of a small buffer, so no transposed copy of
    # the whole image is made and each image row is read a cache line at a time.
    n, m = x.shape
    out = np.empty(m, np.float64)
    width = _COLUMN_BLOCK
    for b in prange((m + width - 1) // width):
        j0 = b * width
        w = min(width, m - j0)
        cols = np.empty((w, n), x.dtype)
        for i in range(n):
            for c in range(w):
                cols[c, i] = x[i, j0 + c]
        for c in range(w):
            out[j0 + c] = _line_stat(cols[c], mad)
    return out


def noise_map(residual: ArrayLike, *, bayer_pattern: str = "", window: int | None = DEFAULT_NOISE_WINDOW) -> np.ndarray:
    """Robust per-pixel noise of a background-subtracted image (module notes, item 3).

    Parameters
    ----------
    residual : array_like, shape (ny, nx)
        Image minus its local background (finite values, centred on 0).
    bayer_pattern : str
        Statistics are taken per colour plane of a CFA mosaic.
    window : int or None, default 7
        Side (same-colour samples) of the window whose ``1.4826 * median |residual|`` is the
        local term; None leaves it out (the plane, column and row terms remain).

    Returns
    -------
    ndarray (float32 for float32 input, else float64)
        Per pixel the largest of the plane's (the floor), the window's, the column's and the
        row's robust sigma (1.4826 MAD).
    """
    r = np.asarray(residual)
    if r.dtype not in (np.float32, np.float64):
        r = r.astype(np.float64)
    return _noise_into(None, r, bayer_pattern, window)


def _noise_into(out: np.ndarray | None, r: np.ndarray, bayer_pattern: str, window: int | None) -> np.ndarray:
    """:func:`noise_map` of ``r``; given ``out`` (``r``'s shape and type), the larger of its values
    and the map's is left in it (the dark's signal noise, made in its background's array first)."""
    planes = cfa_planes(bayer_pattern)
    raise_existing = out is not None
    if out is None:
        # A mono frame's window term becomes the map itself (one full-size array fewer at the peak).
        out = None if len(planes) == 1 and window is not None else np.empty(r.shape, r.dtype)
    for ys, xs in planes:
        p = r[ys, xs]
        floor = _plane_sigma(p)
        # A noisy column (flickering readout, RTS) or row: judge its pixels against its own noise.
        columns = _robust_sigma(p, axis=0) if p.shape[0] >= 8 else np.full(p.shape[1], -np.inf)
        rows = _robust_sigma(p, axis=1) if p.shape[1] >= 8 else np.full(p.shape[0], -np.inf)
        local = np.full((1, 1), -np.inf, np.float32)
        if window is not None:
            # The residual is centred on 0 by construction, so median |r| is a local MAD.
            local = median_filter(p, int(window), absolute=True).astype(r.dtype, copy=False)
            local *= MAD_TO_SIGMA
        if out is None:
            out = local  # each pixel's term is read before the pixel is written
        _largest_term(out[ys, xs], floor, columns, rows, local, raise_existing)
    return out


@njit(parallel=True, cache=True, nogil=True)
def _largest_term(out, floor, columns, rows, local, raise_existing):  # pragma: no cover - compiled
    """``out[i, j] = max(floor, columns[j], rows[i], local[i, j])`` (computed in float64; ``local``
    of shape (1, 1) is left out); with ``raise_existing``, never below ``out``'s own value."""
    ny, nx = out.shape
    with_local = local.shape[0] == ny and local.shape[1] == nx
    for i in prange(ny):
        for j in range(nx):
            v = max(floor, columns[j], rows[i])
            if with_local:
                v = max(v, np.float64(local[i, j]))
            if raise_existing:
                # max of two values rounded to out's type: the same as rounding the larger one
                out[i, j] = max(out[i, j], out.dtype.type(v))
            else:
                out[i, j] = v
    return out


def _signal_noise_into(level: np.ndarray, residual: np.ndarray, bayer_pattern: str) -> np.ndarray:
    """Replace ``level`` (the local background) by the noise that grows with the signal,
    ``sqrt(v0 + g * level)``, fitted per colour plane; returns ``level``, now that noise.

    The variance of a master dark is linear in its level, ``read^2 / N + level / (gain N)``
    (shot noise of the thermal signal). Pixels are put in :data:`_LEVEL_BINS` bins by quantile
    of the local background (above its median); each bin gives a robust variance of the
    residual, and a least-squares line through them gives ``v0`` and ``g >= 0``. Where the level
    hardly varies the fitted slope is noisy, but then ``level`` is small too and ``g * level``
    stays within the scatter of the bin variances. A plane with too few levels to fit gets no
    such floor (0). Made in the background's own array: the dark's map needs no third full-size
    array, and the larger of this noise and :func:`noise_map`'s terms is the same as before.
    """
    for ys, xs in cfa_planes(bayer_pattern):
        level_plane = level[ys, xs]  # a view (planes are slices): written in place
        centre = np.median(level_plane)
        v0, g = _signal_noise_fit(level_plane, residual[ys, xs], centre)
        _level_noise(level_plane, centre, v0, g)
    return level


def _signal_noise_fit(level_plane: np.ndarray, residual_plane: np.ndarray, centre: float) -> tuple[float, float]:
    """``(v0, g)`` of :func:`_signal_noise_into` for one plane; ``(-1, 0)`` where there is no fit."""
    stride = max(1, level_plane.size // 200_000)  # a subsample is plenty for 40 variances
    r = residual_plane.ravel()[::stride]
    lv = level_plane.ravel()[::stride] - centre
    edges = np.unique(np.quantile(lv, np.linspace(0.0, 1.0, _LEVEL_BINS + 1)))
    if edges.size < 4:
        return -1.0, 0.0
    idx = np.clip(np.searchsorted(edges, lv, side="right") - 1, 0, edges.size - 2)
    levels, variances = [], []
    for i in range(edges.size - 1):
        sel = idx == i
        if sel.sum() >= 30:
            levels.append(np.median(lv[sel]))
            variances.append(_robust_sigma(r[sel]) ** 2)
    if len(levels) < 3:
        return -1.0, 0.0
    design = np.vstack([np.ones(len(levels)), levels]).T
    v0, g = np.linalg.lstsq(design, np.asarray(variances), rcond=None)[0]
    return max(float(v0), 0.0), max(float(g), 0.0)


@njit(parallel=True, cache=True, nogil=True)
def _level_noise(level, centre, v0, g):  # pragma: no cover - compiled
    """``level[i, j] = sqrt(v0 + g * max(level - centre, 0))`` in place (float64 arithmetic on the
    float32 level above its centre, as numpy would promote it); 0 everywhere when ``v0 < 0`` (no fit)."""
    for i in prange(level.shape[0]):
        for j in range(level.shape[1]):
            if v0 < 0:
                level[i, j] = 0
            else:
                above = level[i, j] - centre
                level[i, j] = math.sqrt(v0 + g * np.float64(max(above, 0)))


def _destripe(r: np.ndarray, bayer_pattern: str) -> np.ndarray:
    """Subtract every column's and then every row's median (per colour plane), in place."""
    for ys, xs in cfa_planes(bayer_pattern):
        p = r[ys, xs]
        if p.shape[0] >= 8:
            p -= _median_along(p, 0)[None, :]
        if p.shape[1] >= 8:
            p -= _median_along(p, 1)[:, None]
        r[ys, xs] = p
    return r


def _median_along(p: np.ndarray, axis: int) -> np.ndarray:
    """``np.median(p, axis)`` of a 2-D float plane, compiled and in parallel (the same values)."""
    if p.dtype not in (np.float32, np.float64):
        return np.median(p, axis=axis)
    return _line_stats(p, axis, False)


def _residual(
    image: ArrayLike, pat: str, relative: bool, size: int, window: int | None, owned: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(residual, sigma, invalid): see :func:`defect_residual`; residual 0 at invalid pixels.

    ``owned=True``: ``image`` is a float array of ours, used as the residual's storage.
    """
    a = image if owned else _as_2d_float("image", image)
    invalid = ~np.isfinite(a)
    if invalid.all():
        raise ValueError("image has no finite pixel: nothing to judge defects against")
    if invalid.any():
        # A median filter cannot skip NaN: fill with the colour plane's median, judge them apart.
        for ys, xs in cfa_planes(pat):
            p, bad = a[ys, xs], invalid[ys, xs]
            p[bad] = np.median(p[~bad]) if (~bad).any() else np.median(a[~invalid])
            a[ys, xs] = p
    bg = _local_background(a, pat, size)
    # a background <= 0 says nothing of the response: residual 0 there
    r = _subtract_background(a, bg, invalid, relative)  # in place: a becomes the residual
    _destripe(r, pat)
    r[invalid] = 0.0
    if relative:
        del bg  # a flat's noise has no signal term: the background is not needed any more
        sigma = noise_map(r, bayer_pattern=pat, window=window)
    else:
        sigma = _noise_into(_signal_noise_into(bg, r, pat), r, pat, window)
    return r, sigma, invalid


@njit(parallel=True, cache=True, nogil=True)
def _subtract_background(a, bg, invalid, relative):  # pragma: no cover - compiled
    """``a - bg`` or ``a / bg - 1`` (0 where ``bg <= 0``), 0 where invalid; in place in ``a``."""
    for i in prange(a.shape[0]):
        for j in range(a.shape[1]):
            if invalid[i, j]:
                a[i, j] = 0
            elif relative:
                a[i, j] = a[i, j] / bg[i, j] - 1 if bg[i, j] > 0 else 0
            else:
                a[i, j] = a[i, j] - bg[i, j]
    return a


def defect_residual(
    image: ArrayLike,
    *,
    bayer_pattern: str = "",
    relative: bool = False,
    size: int = DEFAULT_WINDOW,
    window: int | None = DEFAULT_NOISE_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Residual of each pixel from its local same-colour background, and the noise to judge it by.

    Parameters
    ----------
    image : array_like, shape (ny, nx)
        Master dark (ideally minus the master bias) or master flat.
    bayer_pattern : str
        CFA pattern at ``[0, 0]`` or ``''``.
    relative : bool, default False
        ``image / background - 1`` (flats: a dead pixel is a *fraction* of its neighbours'
        response whatever the vignetting) instead of ``image - background`` (darks).
    size : int, default 5
        Background window (same-colour samples a side), see :func:`local_background`.
    window : int or None, default 7
        Noise window, see :func:`noise_map`.

    Returns
    -------
    residual, sigma : ndarray of float32
        The residual after removing column and row medians (NaN where the image is not finite:
        such pixels are filled with their colour plane's median for the filters and left out of
        the statistics), and the per-pixel robust noise: the :func:`noise_map` of the residual
        and, for ``relative=False`` (darks), at least the signal-dependent noise
        ``sqrt(v0 + g * level)`` (module notes, item 4).

    Raises
    ------
    ValueError
        Not 2-D, no finite pixel, bad pattern or window.
    """
    r, sigma, invalid = _residual(image, check_bayer_pattern(bayer_pattern), relative, size, window)
    r[invalid] = np.nan
    return r, sigma


def _mirror(i: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected into 0..n-1 without repeating the edge (scipy's ``mode="mirror"``)."""
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    i = np.abs(i) % period
    return np.where(i >= n, period - i, i)


def _window_sigma_at(residual: np.ndarray, ys: np.ndarray, xs: np.ndarray, bayer_pattern: str,
                     window: int) -> np.ndarray:
    """The window term of :func:`noise_map` (``1.4826 * median |r|`` over ``window x window``
    same-colour samples, mirrored at the edges) at the given pixels only.

    Identical to the full map at those pixels; the maps evaluate it only where the cheaper terms
    already flag a pixel, because it can only raise the threshold (a median filter of the whole
    frame would be most of the cost).
    """
    pitch = 2 if bayer_pattern else 1
    half = int(window) // 2
    offsets = pitch * np.arange(-half, half + 1)
    ny, nx = residual.shape
    out = np.empty(ys.size, np.float64)
    for oy in range(pitch):  # colour plane by colour plane (rows/columns of one parity)
        for ox in range(pitch):
            sel = (ys % pitch == oy) & (xs % pitch == ox)
            if not sel.any():
                continue
            n_py, n_px = len(range(oy, ny, pitch)), len(range(ox, nx, pitch))
            py = _mirror((ys[sel] // pitch)[:, None] + offsets[None, :] // pitch, n_py) * pitch + oy
            px = _mirror((xs[sel] // pitch)[:, None] + offsets[None, :] // pitch, n_px) * pitch + ox
            values = np.abs(residual[py[:, :, None], px[:, None, :]]).reshape(py.shape[0], -1)
            out[sel] = MAD_TO_SIGMA * np.median(values, axis=1)
    return out


def _flag(residual: np.ndarray, sigma: np.ndarray, k: float, sign: int, bayer_pattern: str, window: int | None,
          floor: float = -math.inf) -> np.ndarray:
    """``sign * residual > max(k * sigma, floor)``, then the window term checked at the flagged pixels only."""
    flagged = _exceeds(residual, sigma, sigma.dtype.type(k), sign, sigma.dtype.type(floor))
    if window is not None and flagged.any():
        ys, xs = np.nonzero(flagged)
        local = _window_sigma_at(residual, ys, xs, bayer_pattern, window)
        flagged[ys, xs] = sign * residual[ys, xs] > k * local
    return flagged


@njit(parallel=True, cache=True, nogil=True)
def _exceeds(residual, sigma, k, sign, floor):  # pragma: no cover - compiled
    out = np.empty(residual.shape, np.bool_)
    for i in prange(residual.shape[0]):
        for j in range(residual.shape[1]):
            out[i, j] = sign * residual[i, j] > max(k * sigma[i, j], floor)
    return out


# --------------------------------------------------------------------------- maps


def hot_pixel_map(
    master_dark: ArrayLike,
    *,
    k_hot: float = K_HOT,
    bias: ArrayLike | None = None,
    bayer_pattern: str = "",
    size: int = DEFAULT_WINDOW,
    window: int | None = DEFAULT_NOISE_WINDOW,
) -> np.ndarray:
    """Hot pixels: the master dark exceeds its local same-colour background by more than ``k_hot`` sigma.

    Parameters
    ----------
    master_dark : array_like, shape (ny, nx)
        Master dark (with or without the bias pedestal).
    k_hot : float, default 5
        Threshold in robust sigmas of the local noise (3-5 is usual). On a master of
        many frames warm pixels (a few times the mean dark current) are significant too and are
        flagged; a larger ``k_hot`` keeps only the strongest (on the simulator's 300 s master,
        ``k_hot = 150`` separates the 100-1000x hot pixels from the 5-20x warm ones).
    bias : array_like, optional
        Master bias, subtracted first so that fixed bias structure is not judged as thermal
        signal (column and row structure is removed in any case).
    bayer_pattern : str
        CFA pattern at ``[0, 0]`` or ``''``: the background and noise are taken per colour.
    size, window : int
        Background window and noise window, see :func:`defect_residual`.

    Returns
    -------
    ndarray of bool
        True at hot pixels, and where the dark (or bias) is not finite: a pixel the dark cannot
        be subtracted from is a defect to replace.

    Raises
    ------
    ValueError
        Not 2-D, shapes differ, no finite pixel, bad pattern or ``k_hot <= 0``.
    """
    if not k_hot > 0:
        raise ValueError(f"k_hot must be > 0, got {k_hot!r}")
    _check_same_shape(master_dark=master_dark, bias=bias)
    pat = check_bayer_pattern(bayer_pattern)
    r, sigma, invalid = _dark_residual(master_dark, bias, pat, size)
    return _flag(r, sigma, k_hot, +1, pat, window) | invalid


def _dark_residual(master_dark, bias, pat: str, size: int, _memo: dict | None = None):
    """The dark's (minus the bias) residual, sigma and invalid pixels; reused from ``_memo`` when given."""
    if _memo is not None and "dark" in _memo:
        return _memo["dark"]
    out = _residual(_dark_minus_bias(master_dark, bias), pat, False, size, None, owned=True)
    if _memo is not None:
        _memo["dark"] = out
    return out


def _dark_minus_bias(master_dark, bias) -> np.ndarray:
    """A working copy of the dark with the bias subtracted (the caller's arrays are not touched)."""
    d = _as_2d_float("master_dark", master_dark)
    if bias is not None:
        d -= np.asarray(bias, dtype=d.dtype)
    return d


def cold_pixel_map(
    master_flat: ArrayLike | None = None,
    master_dark: ArrayLike | None = None,
    *,
    k_cold: float = K_COLD,
    bias: ArrayLike | None = None,
    bayer_pattern: str = "",
    min_deficit: float = DEFAULT_MIN_DEFICIT,
    size: int = DEFAULT_WINDOW,
    window: int | None = DEFAULT_NOISE_WINDOW,
    _memo: dict | None = None,
) -> np.ndarray:
    """Cold/dead pixels: the flat (relative to its local background) or the dark falls far below.

    Parameters
    ----------
    master_flat : array_like, optional
        Master flat (dark-flat subtracted; normalised or not: the test is on ``F / background``,
        so vignetting, dust donuts and the colour channels' different levels do not count, only
        a pixel's response relative to its same-colour neighbours).
    master_dark : array_like, optional
        Master dark: pixels far *below* their background (stuck low, dead readout).
    k_cold : float, default 5
        Threshold in robust sigmas of the local noise.
    bias : array_like, optional
        Master bias, subtracted from the dark first.
    bayer_pattern : str
        CFA pattern at ``[0, 0]`` or ``''``.
    min_deficit : float, default 0.2
        Flats only: a pixel is cold only if its response is also at least this fraction below
        its neighbours' (``F / background < 1 - max(k_cold * sigma, min_deficit)``). Why: a
        pixel a few per cent less sensitive is what the flat corrects, not a defect, while
        sharp-edged dust shadows only a few pixels wide (which no median background follows)
        are a few per cent deep; dead and cold pixels lose far more (the simulator's: 70-100 %).
        0 gives the pure sigma test.
    size, window : int
        Background window and noise window, see :func:`defect_residual`.

    Returns
    -------
    ndarray of bool
        True where the flat or the dark says cold (logical or), and where the flat is not
        finite (zero and negative flat pixels are cold anyway: 100 % or more below).

    Raises
    ------
    ValueError
        Neither master given, shapes differ, no finite pixel, bad pattern, ``k_cold <= 0`` or
        ``min_deficit`` outside [0, 1).
    """
    if master_flat is None and master_dark is None:
        raise ValueError("cold_pixel_map needs a master_flat, a master_dark or both")
    if not k_cold > 0:
        raise ValueError(f"k_cold must be > 0, got {k_cold!r}")
    if not 0 <= min_deficit < 1:
        raise ValueError(f"min_deficit must be in [0, 1), got {min_deficit!r}")
    _check_same_shape(master_flat=master_flat, master_dark=master_dark, bias=bias)
    pat = check_bayer_pattern(bayer_pattern)
    out = None
    if master_flat is not None:
        r, sigma, invalid = _residual(master_flat, pat, True, size, None)
        out = _flag(r, sigma, k_cold, -1, pat, window, floor=min_deficit) | invalid
    if master_dark is not None:
        r, sigma, _ = _dark_residual(master_dark, bias, pat, size, _memo)
        low = _flag(r, sigma, k_cold, -1, pat, window)
        out = low if out is None else out | low
    return out


@dataclass(frozen=True)
class DefectMap:
    """Hot and cold pixel maps of a sensor, with how they were found.

    Attributes
    ----------
    hot, cold : ndarray of bool
        The maps (all False when the master they come from was not given).
    counts : dict
        ``{"hot": n, "cold": n, "total": n}`` (a pixel both hot and cold counts once in total).
    thresholds : dict
        ``k_hot``, ``k_cold`` and the window sizes used.
    """

    hot: np.ndarray = field(repr=False)
    cold: np.ndarray = field(repr=False)
    counts: dict
    thresholds: dict

    @cached_property
    def mask(self) -> np.ndarray:
        """Every defect (hot or cold), ready for :func:`correct_defects` (made once: every light
        calibrated with this map uses it)."""
        return self.hot | self.cold

    @cached_property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of every defect (``np.nonzero(mask)``), found once for all the lights."""
        return np.nonzero(self.mask)


def dark_defect_maps(
    master_dark: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    k_hot: float = K_HOT,
    k_cold: float = K_COLD,
    bayer_pattern: str = "",
    min_deficit: float = DEFAULT_MIN_DEFICIT,
    size: int = DEFAULT_WINDOW,
    window: int | None = DEFAULT_NOISE_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """The dark's share of :func:`defect_map`: its hot pixels and its cold (dead) pixels.

    The two maps come from one residual of the dark, made once. :func:`defect_map` accepts them
    (``dark_maps=``), so the dark's part can be made as soon as the master dark exists, before the
    master flat does.

    Returns
    -------
    hot, cold : ndarray of bool
        As :func:`hot_pixel_map` and the dark's term of :func:`cold_pixel_map`.
    """
    _check_same_shape(master_dark=master_dark, bias=bias)
    return _dark_maps_of(_dark_minus_bias(master_dark, bias), bayer_pattern, k_hot=k_hot, k_cold=k_cold,
                         min_deficit=min_deficit, size=size, window=window)


def _dark_maps_of(d: np.ndarray, bayer_pattern: str = "", *, k_hot: float = K_HOT, k_cold: float = K_COLD,
                  min_deficit: float = DEFAULT_MIN_DEFICIT, size: int = DEFAULT_WINDOW,
                  window: int | None = DEFAULT_NOISE_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """:func:`dark_defect_maps` of ``d``, the dark minus its bias (``WORK_DTYPE``, overwritten: it
    becomes the residual, so a caller that made it holds no second full-size copy)."""
    if not k_hot > 0:
        raise ValueError(f"k_hot must be > 0, got {k_hot!r}")
    pat = check_bayer_pattern(bayer_pattern)
    memo = {"dark": _residual(d, pat, False, size, None, owned=True)}
    r, sigma, invalid = memo["dark"]
    hot = _flag(r, sigma, k_hot, +1, pat, window) | invalid
    cold = cold_pixel_map(None, r, k_cold=k_cold, min_deficit=min_deficit, _memo=memo, bayer_pattern=pat, size=size,
                          window=window)
    return hot, cold


def defect_map(
    master_dark: ArrayLike | None = None,
    master_flat: ArrayLike | None = None,
    *,
    bias: ArrayLike | None = None,
    k_hot: float = K_HOT,
    k_cold: float = K_COLD,
    bayer_pattern: str = "",
    min_deficit: float = DEFAULT_MIN_DEFICIT,
    size: int = DEFAULT_WINDOW,
    window: int | None = DEFAULT_NOISE_WINDOW,
    dark_maps: tuple[np.ndarray, np.ndarray] | None = None,
) -> DefectMap:
    """Hot map from the dark and cold map from the flat and the dark, in one :class:`DefectMap`.

    Parameters are those of :func:`hot_pixel_map` and :func:`cold_pixel_map`, and:

    dark_maps : (hot, cold) boolean arrays, optional
        What :func:`dark_defect_maps` made of this ``master_dark`` (and ``bias``, with the same
        settings), computed earlier, e.g. while the flats were still being integrated; the dark's
        residual is then not made again, and ``master_dark`` may be left out.
    """
    if master_dark is None and master_flat is None and dark_maps is None:
        raise ValueError("defect_map needs a master_dark, a master_flat or both")
    _check_same_shape(master_dark=master_dark, master_flat=master_flat, bias=bias)
    shape = np.shape(master_dark if master_dark is not None else
                     master_flat if master_flat is not None else dark_maps[0])
    opts = {"bayer_pattern": bayer_pattern, "size": size, "window": window}
    if not k_hot > 0:
        raise ValueError(f"k_hot must be > 0, got {k_hot!r}")
    pat = check_bayer_pattern(bayer_pattern)
    # The dark's residual serves both maps: computed once, both of its maps taken, then let go
    # before the flat's residual is made (the peak holds one residual, not two).
    dark_cold = None
    if dark_maps is not None:
        hot, dark_cold = dark_maps
        if hot.shape != shape:
            raise ValueError(f"dark_maps are {hot.shape[1]} x {hot.shape[0]} px, the masters {shape[1]} x {shape[0]}")
    elif master_dark is not None:
        hot, dark_cold = dark_defect_maps(master_dark, bias=bias, k_hot=k_hot, k_cold=k_cold, bayer_pattern=pat,
                                          min_deficit=min_deficit, size=size, window=window)
    else:
        hot = np.zeros(shape, bool)
    if master_flat is not None:
        cold = cold_pixel_map(master_flat, None, k_cold=k_cold, min_deficit=min_deficit, **opts)
        if dark_cold is not None:
            cold |= dark_cold
    else:
        cold = dark_cold
    counts = {"hot": int(hot.sum()), "cold": int(cold.sum()), "total": int((hot | cold).sum())}
    thresholds = {"k_hot": float(k_hot), "k_cold": float(k_cold), "min_deficit": float(min_deficit),
                  "size": int(size), "window": window}
    return DefectMap(hot, cold, counts, thresholds)


# --------------------------------------------------------------------------- correction


def _neighbour_rings(bayer_pattern: str, colour: str) -> list[list[tuple[int, int]]]:
    """Offsets (dy, dx) of same-colour neighbours, nearest ring first (:data:`_MAX_RINGS` rings).

    Mono: the 8-neighbourhood, then the squares at distance 2 and 3. Red and blue sites of a
    mosaic: the 8 same-colour pixels 2 apart, then those 4 apart, then 6. Green sites also have
    green diagonal neighbours 1 apart (the other green of the cell), so their first ring is the 8
    nearest greens: the 4 diagonals and the 4 greens 2 apart along rows and columns.
    """
    reach = 2 * _MAX_RINGS if bayer_pattern else _MAX_RINGS
    rings: list[list[tuple[int, int]]] = [[] for _ in range(_MAX_RINGS)]
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            cheb = max(abs(dy), abs(dx))
            if cheb == 0:
                continue
            if not bayer_pattern:
                ring = cheb
            elif colour == "G":
                if (dy + dx) % 2:
                    continue  # not on the green quincunx
                ring = 1 if dy * dy + dx * dx <= 4 else max(2, math.ceil(cheb / 2))
            else:
                if dy % 2 or dx % 2:
                    continue  # red and blue sites repeat every 2 pixels in both directions
                ring = cheb // 2
            if ring <= _MAX_RINGS:
                rings[ring - 1].append((dy, dx))
    return rings


def correct_defects(frame: ArrayLike, mask: ArrayLike | DefectMap, bayer_pattern: str = "", *,
                    inplace: bool = False) -> np.ndarray:
    """Replace each masked pixel by the median of its nearest unmasked same-colour neighbours.

    Parameters
    ----------
    frame : array_like, shape (ny, nx)
        Raw or calibrated frame (a CFA frame stays a mosaic).
    mask : array_like of bool, shape (ny, nx), or DefectMap
        True at the pixels to replace; a :class:`DefectMap` (its :attr:`~DefectMap.mask`) gives its
        defects' positions, found once for every light it corrects.
    bayer_pattern : str
        ``''``: the 8-neighbourhood. A CFA pattern at ``[0, 0]``: only pixels of the same colour
        (red and blue: the 8 pixels 2 apart; green: the 4 diagonal greens and the 4 greens 2
        apart along rows and columns).
    inplace : bool, default False
        Write into ``frame`` itself (a float32 or float64 array) instead of a new array: no full-frame
        copy, for calibrating large frames in bounded memory. The result is the same.

    Returns
    -------
    ndarray
        A new array (float32, or float64 for float64 input), or ``frame`` with ``inplace``. Neighbours that are themselves
        masked, NaN or outside the frame are ignored; a pixel with no usable neighbour in the
        first ring uses the next ring (up to 3); one with none at all becomes NaN (a missing
        value for integration).

    Raises
    ------
    ValueError
        Not 2-D, shapes differ, or bad pattern.
    """
    pat = check_bayer_pattern(bayer_pattern)
    src = np.asarray(frame)
    if src.ndim != 2:
        raise ValueError(f"frame must be a 2-D image (rows, columns), got shape {src.shape}")
    m = np.asarray(mask.mask if isinstance(mask, DefectMap) else mask)
    if m.shape != src.shape:
        raise ValueError(f"mask has shape {m.shape} but frame has shape {src.shape}")
    m = m.astype(bool, copy=False)  # a boolean map (a DefectMap's) is read as it is, not copied per light
    dtype = np.float64 if src.dtype == np.float64 else np.float32
    if inplace:
        if src.dtype not in (np.float32, np.float64):
            raise ValueError(f"inplace=True needs a float32 or float64 frame, not {src.dtype}")
        out = src
    else:
        out = src.astype(dtype, copy=True)
    ys, xs = mask.positions if isinstance(mask, DefectMap) else np.nonzero(m)
    if ys.size == 0:
        return out
    ring_dy, ring_dx, ring_len = _ring_tables(pat)
    site = (ys % 2) * 2 + xs % 2 if pat else np.zeros(ys.size, np.int64)
    # Neighbours are read from the frame at the defects only (no full-frame copy); masked ones and
    # NaN are skipped. Corrected values are written once all are computed, and masked pixels are
    # never read as neighbours, so working in place changes nothing.
    values = _corrected_values(out, m, ys, xs, site, ring_dy, ring_dx, ring_len)
    out[ys, xs] = values.astype(dtype)
    return out


@lru_cache(maxsize=None)
def _ring_tables(bayer_pattern: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_neighbour_rings` of each site of the 2x2 cell (one site for mono) as arrays:
    offsets ``(site, ring, k)`` and each ring's length ``(site, ring)``."""
    colours = site_colours(bayer_pattern).reshape(-1) if bayer_pattern else [""]
    rings = [_neighbour_rings(bayer_pattern, str(c)) for c in colours]
    longest = max(len(r) for site in rings for r in site)
    dy = np.zeros((len(rings), _MAX_RINGS, longest), np.int64)
    dx = np.zeros_like(dy)
    length = np.zeros((len(rings), _MAX_RINGS), np.int64)
    for i, site in enumerate(rings):
        for r, ring in enumerate(site):
            length[i, r] = len(ring)
            for k, (oy, ox) in enumerate(ring):
                dy[i, r, k], dx[i, r, k] = oy, ox
    for a in (dy, dx, length):
        a.flags.writeable = False
    return dy, dx, length


@njit(cache=True, nogil=True)
def _corrected_values(frame, mask, ys, xs, site, ring_dy, ring_dx, ring_len):  # pragma: no cover - compiled
    """Per defect, the median (float64; the mean of the two middle values for an even count) of its
    first ring holding a usable neighbour: inside the frame, not masked, not NaN. NaN where no
    ring has one."""
    ny, nx = frame.shape
    values = np.empty(ys.size, np.float64)
    buf = np.empty(ring_dy.shape[2], np.float64)
    for i in range(ys.size):
        y, x, s = ys[i], xs[i], site[i]
        value = np.nan
        for r in range(ring_len.shape[1]):
            k = 0
            for j in range(ring_len[s, r]):
                yy = y + ring_dy[s, r, j]
                xx = x + ring_dx[s, r, j]
                if 0 <= yy < ny and 0 <= xx < nx and not mask[yy, xx]:
                    v = np.float64(frame[yy, xx])
                    if not np.isnan(v):
                        t = k  # insertion sort: a ring holds at most a few dozen values
                        while t > 0 and buf[t - 1] > v:
                            buf[t] = buf[t - 1]
                            t -= 1
                        buf[t] = v
                        k += 1
            if k > 0:
                value = buf[k // 2] if k % 2 else (buf[k // 2 - 1] + buf[k // 2]) / 2
                break
        values[i] = value
    return values
