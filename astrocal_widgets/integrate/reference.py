"""Reference pixel rejection and combination: slow, readable numpy, the yardstick.

This module states what every rejection algorithm computes, written from the public descriptions
of Siril's rejection, PixInsight's ImageIntegration and IRAF's ``imcombine``. :func:`reject_stack`
works on the stack of one pixel; :func:`integrate_band` loops over the pixels of a band of full image rows. The fast numba
version, :mod:`astrocal_widgets.integrate.kernels`, has the same interface and must give the
same rejection maps; the tests compare the two.

Rejection names
---------------
One function ``reject_<name>`` per algorithm below; the rejection registry
(:mod:`astrocal_widgets.integrate.registry`) lists them with their names, defaults, valid
thresholds and peer codes, and :func:`reject_stack` finds them there by name.

Rules shared by all methods
---------------------------
* NaN is a missing value: it is never rejected, never combined, never counted.
* No rejection at all when 2 or fewer values are present.
* Iterative methods (sigma, mad, averaged_sigma, winsorized_sigma, linear_fit) repeat a pass
  until a pass rejects nothing or the guard below leaves nothing to reject (which includes
  "3 or fewer values remain"). percentile is one pass; minmax and esd are described below.
* **Guard** (our documented, order-independent replacement for Siril's visiting-order guard
  ``n_current - r_total <= 4``): a pixel never keeps fewer than
  ``min_keep(n_valid) = max(3, (n_valid + 1) // 2)`` values, ``n_valid`` being its number of
  non-NaN values. When a pass's candidates would cross that floor, only as many as the floor
  allows are rejected, in order of decreasing ``|deviation| / threshold``; ties go first to the
  value nearer its own end of the sorted stack, then to the high side. The guard applies to
  percentile, to trimmed (as a cap on its counts) and (as a cap on the number of candidates)
  to esd; minmax has its own rule.
  Compared with Siril's guard, ours does not depend on the frame order, is looser on small
  stacks (Siril keeps at least 4 values, so it rejects nothing from 4 or fewer; we keep 3) and
  stricter on heavily contaminated large stacks (never more than half the values rejected).
* A pass whose spread estimate is zero, or at the rounding level of the data
  (``spread <= 1e-12 * max|x|``), rejects nothing. Deviation from the literal definition, on
  purpose: with integer-valued data the MAD is often exactly 0 (more than half the values
  equal) and the literal rule would then reject every value off the median; and on exactly
  collinear sorted values the linear fit's residuals are pure rounding noise.
* ``rejected_low`` / ``rejected_high`` count values rejected below / above the centre in use
  when they were rejected (median, mean, or the fitted line; esd: the median of all values).
* The stack of a pixel is put in a canonical order first: ascending rejection value, ties
  broken by output value then weight. Every choice between equal values (guard, minmax, esd)
  is made in that order, so results do not depend on the frame order even when frames have
  different weights or output normalisation (permutation invariance, exact).
* Every sum is taken in one fixed order over the values in canonical (ascending) order: four
  left-to-right lane sums combined as ``(s0 + s1) + (s2 + s3)`` (:func:`_sum`; the winsorized
  prefix sums run left to right). The numba kernel sums in the same order, so both
  implementations make the same comparisons bit for bit, even on exact ties in integer-valued
  data.
* Values must be finite or NaN.

Methods (``low``, ``high``: defaults and valid ranges in the registry)
----------------------------------------------------------------------
* minmax: drop the ``low`` smallest and ``high`` largest values, but always keep at least 1:
  when ``low + high >= n`` the kept value is the one at sorted index
  ``clip((n - 1) // 2, n - 1 - high, low)`` (the median or as near as the counts allow).
* trimmed: drop the ``floor(low * n)`` smallest and ``floor(high * n)`` largest of the pixel's n
  values (fractions of its own valid values; ``+ TRIM_ROUNDING`` inside the floor, so that
  0.29 x 100 drops 29 and not 28). When that would keep fewer than ``min_keep(n)``, the larger
  count gives up values first (the high count when they are equal). Not a statistical test.
* percentile: one pass about the median m; low if ``m - x > low * m``, high if
  ``x - m > high * m``; nothing is rejected when ``m <= 0``.
* sigma: centre = median of the kept values, spread = their sample standard deviation
  (computed from the deviations about the median in one pass, see :func:`_std_about`).
* mad: centre = median, spread = ``1.4826 * median(|x - m|)``.
* averaged_sigma: the row's gain-like factor ``g`` (:func:`row_gain`) is estimated once per
  image row, before any rejection, from the (rejection-normalised) values of the row's pixels
  that have at least 3 values and a positive centre; a row with no such pixel gets no
  rejection. Per pixel, the centre is the mean without the minimum and the maximum in the
  first pass, then the mean of the kept values; the spread is ``sqrt(g * c)``; nothing more
  is rejected once ``c <= 0``.
* winsorized_sigma: s = sample std of the kept values, m = their median; repeat (at most 50
  times) ``s_new = 1.134 * std(clip(kept, m - 1.5 s, m + 1.5 s))`` until
  ``|s_new - s| <= 0.0005 s``, the spread being the last ``s_new`` (this reproduces
  PixInsight's documented example, sigma 6.372067); reject about m on the unclamped values.
  The clamped copy's sums come from prefix sums of the sorted deviations (exact algebra,
  O(log n) per inner iteration instead of O(n)).
* linear_fit: least-squares line through the sorted kept values against their rank
  ``j = 0..n-1``, refitted on the kept values each pass (not Siril's rank axis centred on the
  original stack size); spread = mean absolute residual; low if below the line by more than
  ``low * spread``, high if above it by more than ``high * spread``.
* esd: Rosner's generalised ESD test with ``low`` = maximum outlier fraction f and
  ``high`` = significance alpha. ``r = floor(n * f)`` candidates (capped by the guard): the
  value farthest from the mean is removed r times; the number of outliers is the largest i with
  ``G_i > lambda_i``; those i values are rejected. Not Siril's quirk that always rejects at
  least two values.

Combination (kept values, output normalisation)
-----------------------------------------------
``average`` (weighted mean), ``median`` (unweighted; mean of the two middle values for an even
count), ``minimum``, ``maximum``, ``sum`` = weighted mean of the kept values times the number of
non-NaN values at the pixel, so that rejecting an outlier does not make a dip in a summed
image. A pixel without any value gives NaN and counts of 0.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .estimators import MAD_TO_SIGMA

__all__ = [
    "REJECTIONS", "COMBINES", "DEFAULT_THRESHOLDS", "MAD_TO_SIGMA", "RejectFn",
    "min_keep", "esd_critical_value", "row_gain", "reject_stack", "combine_values",
    "integrate_band", "validate_band_arguments",
    "reject_none", "reject_minmax", "reject_percentile", "reject_sigma", "reject_mad",
    "reject_averaged_sigma", "reject_winsorized_sigma", "reject_linear_fit", "reject_esd", "reject_trimmed",
]

COMBINES = ("average", "median", "minimum", "maximum", "sum")

WINSOR_CLAMP = 1.5
WINSOR_FACTOR = 1.134
WINSOR_TOL = 0.0005
WINSOR_MAX_ITER = 50
ZERO_SPREAD_RTOL = 1e-12
#: Added to ``fraction * n`` before the trimmed mean's floor, as IRAF imcombine's minmax does: products
#: such as 0.29 * 100 = 28.999999999999996 count as the whole number they stand for.
TRIM_ROUNDING = 0.001

#: One algorithm's rejection of one pixel: ``fn(v, low, high, *, row_gain, guard, rank)`` on its
#: sorted non-NaN values ``v`` (at least 3) -> masks of the values rejected low and high, over ``v``.
#: ``row_gain``: the row's averaged-sigma factor; ``guard``, ``rank``: see :func:`reject_stack`.
RejectFn = Callable[..., "tuple[np.ndarray, np.ndarray]"]

# A pass: sorted kept values, first-pass flag -> (signed deviation x - centre, low threshold,
# high threshold), or None when the pass can reject nothing.
PassFn = Callable[[np.ndarray, bool], "tuple[np.ndarray, float, float] | None"]


def min_keep(n_valid: int) -> int:
    """Fewest values the guard lets a pixel keep: ``max(3, ceil(n_valid / 2))``."""
    return max(3, (n_valid + 1) // 2)


def _sum(a: np.ndarray) -> float:
    """Sum in the kernel's fixed order: four left-to-right lane sums, ``(s0 + s1) + (s2 + s3)``.

    Lane k sums ``a[k], a[k+4], a[k+8], ...``. Four independent sums run four times faster in
    the kernel than one chain (the add latency is the limit), and spelling the order out here
    keeps both implementations identical bit for bit (``np.sum`` sums pairwise, in blocks).
    """
    a = np.asarray(a, dtype=np.float64)
    lanes = []
    for k in range(4):
        total = 0.0
        for v in a[k::4].tolist():
            total += v
        lanes.append(total)
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])


def _mean(a: np.ndarray) -> float:
    return _sum(a) / a.size


def _std(a: np.ndarray) -> float:
    """Sample standard deviation (n - 1), two-pass."""
    return math.sqrt(_sum((a - _mean(a)) ** 2) / (a.size - 1))


def _std_from_sums(s1: float, s2: float, n: int) -> float:
    """Sample standard deviation from ``s1 = sum y`` and ``s2 = sum y^2``:
    ``sqrt((n s2 - s1^2) / (n (n - 1)))`` (one division: the winsorized loop is latency-bound)."""
    return math.sqrt(max(n * s2 - s1 * s1, 0.0) / (n * (n - 1)))


def _std_about(y: np.ndarray) -> float:
    """Sample standard deviation of values given as deviations ``y`` from a nearby centre.

    One pass over y and y^2: exact algebra, and accurate because ``y`` is taken about the
    median (the shifted-data formula), so ``s1^2`` is a small correction to ``n s2``. The
    kernel needs one pass instead of two.
    """
    return _std_from_sums(_sum(y), _sum(y * y), y.size)


def _spread_ok(spread: float, v: np.ndarray) -> bool:
    """False for a zero, rounding-level or NaN spread (``v`` sorted, so max|x| is at an end)."""
    return spread > ZERO_SPREAD_RTOL * max(abs(v[0]), abs(v[-1]))


def esd_critical_value(n: int, alpha: float) -> float:
    """Rosner's ``lambda`` for ``n`` remaining values: ``(n-1) t / sqrt(n (n-2+t^2))``."""
    from scipy import stats  # only ESD needs it (a slow import)

    t = float(stats.t.ppf(1 - alpha / (2 * n), n - 2))
    return (n - 1) * t / math.sqrt(n * (n - 2 + t * t))


def row_gain(row_stacks: list[np.ndarray]) -> float:
    """IRAF avsigclip gain-like factor of one image row.

    Parameters
    ----------
    row_stacks : list of ndarray
        For each pixel of the row, its non-NaN rejection-normalised values, sorted ascending.

    Returns
    -------
    float
        ``mean over pixels of sum_i (x_i - c)^2 / (n - 1) / c``, c the mean without the minimum
        and maximum, over the pixels with at least 3 values and ``c > 0``; NaN if none.
    """
    terms = []
    for v in row_stacks:
        if v.size < 3:
            continue
        c = _mean(v[1:-1])
        if not c > 0:
            continue
        terms.append(_sum((v - c) ** 2) / (v.size - 1) / c)
    return _sum(np.array(terms)) / len(terms) if terms else math.nan


# --- one pass of each iterative method -----------------------------------------------------

def _sigma_pass(low: float, high: float) -> PassFn:
    def deviations(v, first):
        d = v - np.median(v)
        s = _std_about(d)
        if not _spread_ok(s, v):
            return None
        return d, low * s, high * s
    return deviations


def _mad_pass(low: float, high: float) -> PassFn:
    def deviations(v, first):
        m = np.median(v)
        s = MAD_TO_SIGMA * np.median(np.abs(v - m))
        if not _spread_ok(s, v):
            return None
        return v - m, low * s, high * s
    return deviations


def _percentile_pass(low: float, high: float) -> PassFn:
    def deviations(v, first):
        m = np.median(v)
        if not m > 0:
            return None
        return v - m, low * m, high * m
    return deviations


def _averaged_sigma_pass(low: float, high: float, g: float | None) -> PassFn:
    def deviations(v, first):
        c = _mean(v[1:-1]) if first else _mean(v)
        if g is None or not (g > 0 and math.isfinite(g)) or not c > 0:
            return None
        s = math.sqrt(g * c)
        if not _spread_ok(s, v):
            return None
        return v - c, low * s, high * s
    return deviations


def _winsorized_pass(low: float, high: float) -> PassFn:
    def deviations(v, first):
        d = v - np.median(v)          # sorted deviations from the median
        n = d.size
        # Sums of the winsorised (clamped) copy from prefix sums of the sorted deviations:
        # clip(d, -lim, lim) is -lim for the a values below -lim, +lim for the n - b values
        # above +lim, d in between. Same values as np.clip, O(log n) per inner iteration.
        p1 = np.concatenate(([0.0], np.cumsum(d)))
        p2 = np.concatenate(([0.0], np.cumsum(d * d)))
        s = _std_from_sums(p1[n], p2[n], n)
        if not _spread_ok(s, v):
            return None
        for _ in range(WINSOR_MAX_ITER):
            lim = WINSOR_CLAMP * s
            a = int(np.searchsorted(d, -lim, "left"))     # number of d < -lim
            b = int(np.searchsorted(d, lim, "right"))     # number of d <= lim
            s1 = (p1[b] - p1[a]) + (n - b - a) * lim
            s2 = (p2[b] - p2[a]) + (n - b + a) * (lim * lim)
            s_new = WINSOR_FACTOR * _std_from_sums(s1, s2, n)
            done = abs(s_new - s) <= WINSOR_TOL * s
            s = s_new
            if done:
                break
        if not _spread_ok(s, v):
            return None
        return d, low * s, high * s
    return deviations


def _linear_fit_pass(low: float, high: float) -> PassFn:
    def deviations(v, first):
        n = v.size
        j = np.arange(n, dtype=np.float64) - (n - 1) / 2   # centred rank
        ybar = _mean(v)
        b = _sum(j * (v - ybar)) / _sum(j * j)
        residual = v - (ybar + b * j)
        s = _mean(np.abs(residual))
        if not _spread_ok(s, v):
            return None
        return residual, low * s, high * s
    return deviations


def _guard_select(d: np.ndarray, tl: float, th: float, is_low: np.ndarray, cand: np.ndarray,
                  allowed: int) -> np.ndarray:
    """The ``allowed`` candidates (sorted positions) that the guard lets a pass reject."""
    with np.errstate(divide="ignore"):
        score = np.where(is_low[cand], -d[cand] / tl, d[cand] / th)
    dist = np.where(is_low[cand], cand, d.size - 1 - cand)   # distance from own end
    order = np.lexsort((is_low[cand], dist, -score))          # score desc, dist asc, high first
    return np.sort(cand[order[:allowed]])


def _clip(v: np.ndarray, deviations: PassFn, iterate: bool, guard: str = "half",
          rank: np.ndarray | None = None, guarded: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Run passes over the sorted values ``v``; masks of rejected low and high values.

    ``guard="siril"`` reproduces Siril 1.0.6's guard instead of ours: passes continue while more
    than 3 values are kept, and within a pass at most ``n_current - r_total - 4`` values are
    rejected (``r_total`` counting earlier passes too), the first candidates in *frame order*
    (``rank``: each sorted value's frame index) going first. ``guarded=False``: Siril's percentile
    clipping, which has no guard.
    """
    if guard == "siril":
        return _clip_siril(v, deviations, iterate, rank, guarded)
    rej_low = np.zeros(v.size, bool)
    rej_high = np.zeros(v.size, bool)
    floor = min_keep(v.size)
    kept = np.arange(v.size)          # positions in v of the kept values, ascending
    first = True
    while kept.size > floor:
        res = deviations(v[kept], first)
        first = False
        if res is None:
            break
        d, tl, th = res
        is_low = -d > tl
        is_high = d > th
        cand = np.flatnonzero(is_low | is_high)
        if cand.size == 0:
            break
        if kept.size - cand.size < floor:
            cand = _guard_select(d, tl, th, is_low, cand, kept.size - floor)
        rej_low[kept[cand[is_low[cand]]]] = True
        rej_high[kept[cand[is_high[cand]]]] = True
        kept = np.delete(kept, cand)
        if not iterate:
            break
    return rej_low, rej_high


def _clip_siril(v: np.ndarray, deviations: PassFn, iterate: bool, rank: np.ndarray | None,
                guarded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Siril's order-dependent guard (see :func:`_clip`); for cross-checks only."""
    rank = np.arange(v.size) if rank is None else np.asarray(rank)
    rej_low = np.zeros(v.size, bool)
    rej_high = np.zeros(v.size, bool)
    kept = np.arange(v.size)
    r_total = 0
    first = True
    while kept.size > 3:
        res = deviations(v[kept], first)
        first = False
        if res is None:
            break
        d, tl, th = res
        is_low = -d > tl
        is_high = d > th
        cand = np.flatnonzero(is_low | is_high)
        if guarded:
            allowed = max(0, kept.size - r_total - 4)
            cand = cand[np.argsort(rank[kept[cand]], kind="stable")][:allowed]
        if cand.size == 0:
            break
        rej_low[kept[cand[is_low[cand]]]] = True
        rej_high[kept[cand[is_high[cand]]]] = True
        r_total += cand.size
        kept = np.delete(kept, np.sort(cand))
        if not iterate:
            break
    return rej_low, rej_high


def _minmax(v: np.ndarray, n_low: int, n_high: int) -> tuple[np.ndarray, np.ndarray]:
    n = v.size
    if n_low + n_high >= n:           # keep one value, as near the median as allowed
        n_low = min(max((n - 1) // 2, n - 1 - n_high), n_low)
        n_high = n - 1 - n_low
    idx = np.arange(n)
    return idx < n_low, idx >= n - n_high


def _esd(v: np.ndarray, frac: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Rosner's generalised ESD test on the sorted values ``v``."""
    n_valid = v.size
    rej_low = np.zeros(n_valid, bool)
    rej_high = np.zeros(n_valid, bool)
    r = min(math.floor(n_valid * frac), n_valid - min_keep(n_valid))
    med = np.median(v)
    lo, hi = 0, n_valid - 1           # the remaining values are v[lo:hi+1]
    removed = []                      # (position, is_low) in order of removal
    n_out = 0
    for i in range(1, r + 1):
        rest = v[lo:hi + 1]
        mean = _mean(rest)
        s = _std(rest)
        if not _spread_ok(s, rest):   # all remaining equal: no further outlier
            break
        d_lo, d_hi = abs(v[lo] - mean), abs(v[hi] - mean)
        if d_hi >= d_lo:
            pos, g_i = hi, d_hi / s
            hi -= 1
        else:
            pos, g_i = lo, d_lo / s
            lo += 1
        x = v[pos]
        removed.append((pos, x < med or (x == med and x < mean)))
        if g_i > esd_critical_value(rest.size, alpha):
            n_out = i
    for pos, is_low in removed[:n_out]:
        (rej_low if is_low else rej_high)[pos] = True
    return rej_low, rej_high


# --- one function per algorithm (the registry's ``reference``) ------------------------------

def reject_none(v: np.ndarray, low: float, high: float, **context) -> tuple[np.ndarray, np.ndarray]:
    """No rejection."""
    return np.zeros(v.size, bool), np.zeros(v.size, bool)


def reject_minmax(v: np.ndarray, low: float, high: float, **context) -> tuple[np.ndarray, np.ndarray]:
    """Drop the ``low`` smallest and ``high`` largest values, keeping at least one."""
    return _minmax(v, int(low), int(high))


def reject_percentile(v: np.ndarray, low: float, high: float, *, guard: str = "half",
                      rank: np.ndarray | None = None, **context) -> tuple[np.ndarray, np.ndarray]:
    """One pass about the median, thresholds as fractions of it (no guard with ``guard="siril"``)."""
    return _clip(v, _percentile_pass(low, high), iterate=False, guard=guard, rank=rank, guarded=False)


def reject_sigma(v: np.ndarray, low: float, high: float, *, guard: str = "half",
                 rank: np.ndarray | None = None, **context) -> tuple[np.ndarray, np.ndarray]:
    """Iterative clipping about the median, spread = sample standard deviation."""
    return _clip(v, _sigma_pass(low, high), iterate=True, guard=guard, rank=rank)


def reject_mad(v: np.ndarray, low: float, high: float, *, guard: str = "half",
               rank: np.ndarray | None = None, **context) -> tuple[np.ndarray, np.ndarray]:
    """Iterative clipping about the median, spread = ``MAD_TO_SIGMA`` x MAD."""
    return _clip(v, _mad_pass(low, high), iterate=True, guard=guard, rank=rank)


def reject_averaged_sigma(v: np.ndarray, low: float, high: float, *, row_gain: float | None = None,
                          guard: str = "half", rank: np.ndarray | None = None,
                          **context) -> tuple[np.ndarray, np.ndarray]:
    """IRAF avsigclip: spread ``sqrt(g * c)`` from the row's gain-like factor (nothing without it)."""
    return _clip(v, _averaged_sigma_pass(low, high, row_gain), iterate=True, guard=guard, rank=rank)


def reject_winsorized_sigma(v: np.ndarray, low: float, high: float, *, guard: str = "half",
                            rank: np.ndarray | None = None, **context) -> tuple[np.ndarray, np.ndarray]:
    """Iterative clipping about the median, spread = Winsorized sigma."""
    return _clip(v, _winsorized_pass(low, high), iterate=True, guard=guard, rank=rank)


def reject_linear_fit(v: np.ndarray, low: float, high: float, *, guard: str = "half",
                      rank: np.ndarray | None = None, **context) -> tuple[np.ndarray, np.ndarray]:
    """Iterative clipping about the least-squares line through the sorted values."""
    return _clip(v, _linear_fit_pass(low, high), iterate=True, guard=guard, rank=rank)


def reject_esd(v: np.ndarray, low: float, high: float, **context) -> tuple[np.ndarray, np.ndarray]:
    """Rosner's generalised ESD test: ``low`` = largest outlier fraction, ``high`` = alpha."""
    return _esd(v, low, high)


def reject_trimmed(v: np.ndarray, low: float, high: float, **context) -> tuple[np.ndarray, np.ndarray]:
    """Trimmed mean: drop the lowest ``low`` and highest ``high`` fractions of the values (the guard applied)."""
    n = v.size
    n_low = math.floor(low * n + TRIM_ROUNDING)
    n_high = math.floor(high * n + TRIM_ROUNDING)
    allowed = n - min_keep(n)
    while n_low + n_high > allowed:   # the guard: the larger count gives up values first
        if n_high >= n_low:
            n_high -= 1
        else:
            n_low -= 1
    idx = np.arange(n)
    return idx < n_low, idx >= n - n_high


def _registry():
    """The rejection registry, imported on use: it imports this module for its functions."""
    from . import registry
    return registry


def __getattr__(name: str):
    # The tables of names and default thresholds are the registry's; these names stay for callers.
    if name == "REJECTIONS":
        return _registry().rejection_names()
    if name == "DEFAULT_THRESHOLDS":
        return _registry().DEFAULT_THRESHOLDS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reject_stack(values_1d: np.ndarray, method: str, low: float, high: float,
                 row_gain: float | None = None, guard: str = "half") -> tuple[np.ndarray, np.ndarray]:
    """Reject the outliers of one pixel's stack.

    Parameters
    ----------
    values_1d : ndarray, shape (N,)
        Rejection-normalised values of one pixel; NaN = missing.
    method : str
        One of :data:`REJECTIONS` (the registry's names).
    low, high : float
        Thresholds, meaning per method as in the registry (not checked here).
    row_gain : float, optional
        Gain-like factor of the pixel's row (:func:`row_gain`), needed by ``averaged_sigma``;
        without it averaged_sigma rejects nothing.
    guard : {"half", "siril"}
        ``"half"`` (default): ours, described in the module docstring. ``"siril"``: Siril 1.0.6's
        order-dependent guard, with ``values_1d`` in frame order (sigma, mad, averaged sigma,
        Winsorized, linear fit and percentile; for cross-checks against Siril).

    Returns
    -------
    low_mask, high_mask : ndarray of bool, shape (N,)
        Values rejected below / above the centre, in the input order. Among equal values,
        the earlier one in the input is treated as the smaller (stable sort).
    """
    algorithms = _registry().REJECTION_ALGORITHMS
    if method not in algorithms:
        raise ValueError(f"unknown rejection {method!r}; expected one of {tuple(algorithms)}")
    x = np.asarray(values_1d, dtype=np.float64)
    low_mask = np.zeros(x.shape, bool)
    high_mask = np.zeros(x.shape, bool)
    idx = np.flatnonzero(~np.isnan(x))
    idx = idx[np.argsort(x[idx], kind="stable")]
    v = x[idx]
    if v.size <= 2:
        return low_mask, high_mask
    lo, hi = algorithms[method].reference(v, low, high, row_gain=row_gain, guard=guard, rank=idx)
    low_mask[idx[lo]] = True
    high_mask[idx[hi]] = True
    return low_mask, high_mask


def combine_values(values: np.ndarray, weights: np.ndarray, combine: str, n_valid: int) -> float:
    """Combine the kept output-normalised ``values`` (canonical order) of one pixel."""
    if values.size == 0:
        return math.nan
    if combine == "median":
        return float(np.median(values))
    if combine == "minimum":
        return float(values.min())
    if combine == "maximum":
        return float(values.max())
    mean = _sum(weights * values) / _sum(weights)
    return mean * n_valid if combine == "sum" else mean


def validate_band_arguments(stack, rejection, low, high, combine, weights, rej_scale, rej_offset,
                            out_scale, out_offset):
    """Check and convert the arguments of ``integrate_band`` (shared with the kernel module).

    Returns
    -------
    tuple
        ``(stack float32 C-contiguous, low, high, weights, rej_scale, rej_offset, out_scale,
        out_offset)``, the vectors as float64 arrays of shape (N,).

    Raises
    ------
    ValueError
        Unknown method, wrong shapes, non-finite or non-positive scales or weights, thresholds
        outside the algorithm's valid ranges (the registry's one rule), or more than 65535 frames
        (the counts are uint16).
    """
    algorithms = _registry().REJECTION_ALGORITHMS
    if rejection not in algorithms:
        raise ValueError(f"unknown rejection {rejection!r}; expected one of {tuple(algorithms)}")
    if combine not in COMBINES:
        raise ValueError(f"unknown combine {combine!r}; expected one of {COMBINES}")
    stack = np.ascontiguousarray(stack, dtype=np.float32)
    if stack.ndim != 3:
        raise ValueError(f"stack must have shape (N, rows, cols), got {stack.shape}")
    n = stack.shape[0]
    if n == 0:
        raise ValueError("stack has no frame")
    if n > 65535:
        raise ValueError(f"{n} frames: at most 65535 (counts are uint16)")
    vecs = []
    for name, vec in (("weights", weights), ("rej_scale", rej_scale), ("rej_offset", rej_offset),
                      ("out_scale", out_scale), ("out_offset", out_offset)):
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {vec.shape}")
        if not np.all(np.isfinite(vec)):
            raise ValueError(f"{name} must be finite")
        if name in ("weights", "rej_scale", "out_scale") and not np.all(vec > 0):
            raise ValueError(f"{name} must be > 0")
        vecs.append(vec)
    low, high = algorithms[rejection].check_thresholds(low, high)
    return (stack, low, high, *vecs)


def integrate_band(stack: np.ndarray, *, rejection: str, low: float, high: float, combine: str,
                   weights: np.ndarray, rej_scale: np.ndarray, rej_offset: np.ndarray,
                   out_scale: np.ndarray, out_offset: np.ndarray, guard: str = "half"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reject and combine a band of full image rows, one pixel at a time (slow).

    Parameters
    ----------
    stack : ndarray, shape (N, rows, cols), float32
        The band of each of N frames; NaN = missing.
    rejection : str
        One of :data:`REJECTIONS` (the registry's names).
    low, high : float
        Thresholds (the registry gives their meaning, defaults and valid ranges).
    combine : str
        One of :data:`COMBINES`.
    weights : ndarray, shape (N,)
        Positive frame weights (all ones = unweighted), used by average and sum.
    rej_scale, rej_offset : ndarray, shape (N,)
        Rejection normalisation: rejection sees ``stack[i] * rej_scale[i] + rej_offset[i]``.
    out_scale, out_offset : ndarray, shape (N,)
        Output normalisation: combination uses ``stack[i] * out_scale[i] + out_offset[i]``.
    guard : {"half", "siril"}
        Ours (default) or Siril's order-dependent guard (:func:`reject_stack`); only this
        reference implementation offers ``"siril"``.

    Returns
    -------
    master : ndarray, shape (rows, cols), float32
        Combined value; NaN where a pixel has no value.
    rejected_low, rejected_high, contributing : ndarray, shape (rows, cols), uint16
        Numbers of values rejected low, rejected high, and kept (combined).
    """
    if guard not in ("half", "siril"):
        raise ValueError(f"guard must be 'half' or 'siril', not {guard!r}")
    (stack, low, high, weights, rej_scale, rej_offset, out_scale,
     out_offset) = validate_band_arguments(stack, rejection, low, high, combine, weights,
                                           rej_scale, rej_offset, out_scale, out_offset)
    _, rows, cols = stack.shape
    data = stack.astype(np.float64)
    rej = data * rej_scale[:, None, None] + rej_offset[:, None, None]
    out = data * out_scale[:, None, None] + out_offset[:, None, None]
    master = np.full((rows, cols), np.nan, np.float32)
    rej_lo = np.zeros((rows, cols), np.uint16)
    rej_hi = np.zeros((rows, cols), np.uint16)
    contributing = np.zeros((rows, cols), np.uint16)
    for row in range(rows):
        # canonical order of each pixel's valid frames: rejection value, output value, weight
        orders = []
        for col in range(cols):
            valid = np.flatnonzero(~np.isnan(data[:, row, col]))
            orders.append(valid[np.lexsort((weights[valid], out[valid, row, col],
                                            rej[valid, row, col]))])
        g = None
        if _registry().REJECTION_ALGORITHMS[rejection].needs_row_gain:
            g = row_gain([rej[o, row, col] for col, o in enumerate(orders)])
        for col, order in enumerate(orders):
            if guard == "siril":
                # Siril visits the values in frame order; combine the kept ones in canonical order.
                frames = np.sort(order)
                lo_mask, hi_mask = reject_stack(rej[frames, row, col], rejection, low, high, row_gain=g,
                                                guard="siril")
                rejected = set(frames[lo_mask | hi_mask].tolist())
                keep = np.array([f for f in order if f not in rejected], dtype=order.dtype)
            else:
                lo_mask, hi_mask = reject_stack(rej[order, row, col], rejection, low, high, row_gain=g)
                keep = order[~(lo_mask | hi_mask)]
            master[row, col] = combine_values(out[keep, row, col], weights[keep], combine,
                                              order.size)
            rej_lo[row, col] = lo_mask.sum()
            rej_hi[row, col] = hi_mask.sum()
            contributing[row, col] = keep.size
    return master, rej_lo, rej_hi, contributing
