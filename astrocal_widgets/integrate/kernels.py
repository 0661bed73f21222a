"""Fast pixel rejection and combination: numba kernels over a band of full image rows.

Same interface and same results as :mod:`astrocal_widgets.integrate.reference`, whose module
docstring defines every method, the guard and the tie rules; this module only changes *how*
it is computed:

* each pixel's values are sorted once, in the reference's canonical order (rejection value,
  then output value, then weight). Measured: instead of an insertion
  sort per pixel, a chunk of :data:`CHUNK` columns is sorted at once by a Batcher sorting
  network whose inner loop runs over the columns, branch-free and vectorised (about 10x faster
  than insertion sort on 30 frames). Missing values enter as +inf and sort last;
* the kept values stay sorted: for every method but linear_fit the deviation from the centre is
  monotone in the sorted values, so the rejected values are a prefix and a suffix and the kept
  values a shrinking window ``[lo, lo + k)`` (nothing is moved); linear_fit and esd compact
  their rows stably. Every median is a lookup;
* when every frame has the same normalisation (above all none: bias, darks), the raw float32
  values are sorted (twice as many per vector instruction as float64) and normalised after
  sorting: the normalisation is monotone, so these are the same float64 values in the same order;
* means and spreads are linear passes (sigma: one pass over the deviations from the median;
  winsorized: prefix sums, then O(1) per inner iteration), summed in the reference's fixed
  order (four lane sums, ``reference._sum``), so every comparison is the same bit for bit: the
  rejection maps are identical to the reference's, and the master too up to the float32 cast;
* the MAD's median of ``|x - m|`` is a merge of the two sorted halves (no second sort);
* sigma, MAD and Winsorized clipping take a batch of :data:`BATCH` pixels through each stage side
  by side (spreads, Winsorizing iterations, rejections): one pixel's spread is a chain of
  dependent divisions and square roots, and the processor overlaps the chains of a batch.
  Measured on 30-frame bias bands (CPU time, with the float32 sort and the prefix sums kept in
  registers): Winsorized about 0.7x and sigma about 0.8x the previous kernel;
* the per-pixel data live in one workspace array allocated once per band (numba passes each
  array argument as about ten machine words, which cost more than the work on 30 values when a
  dozen separate arrays were passed); nothing is allocated inside the row or pixel loops;
* the method and the combination are dispatched by int code (``R_*``, each algorithm's
  ``kernel_code`` in the rejection registry, :mod:`.registry`); the Student-t quantiles of the
  ESD test come from a table of ``lambda_n`` computed with scipy before the kernel runs;
* ``@njit(nogil=True, cache=True)``, single-threaded: the caller runs threads over bands
  (numba ``parallel=True`` inside them oversubscribed the cores).

When the output normalisation equals the rejection normalisation and the weights are equal
(bias, darks, flats), only the rejection values are sorted; otherwise (value, output, weight)
tuples are. averaged_sigma sorts each row twice (once for the row's gain, once for the
rejection) rather than keeping a row of sorted stacks: the gain needs the whole row first.
Values must be finite or NaN (an infinite value would be confused with a missing one).
"""
from __future__ import annotations

import math
import os
from functools import lru_cache

import numpy as np
from numba import njit

from .estimators import MAD_TO_SIGMA
from .reference import (COMBINES, TRIM_ROUNDING, WINSOR_CLAMP, WINSOR_FACTOR, WINSOR_MAX_ITER, WINSOR_TOL,
                        ZERO_SPREAD_RTOL, validate_band_arguments)

__all__ = ["REJECTIONS", "COMBINES", "DEFAULT_THRESHOLDS", "CHUNK", "integrate_band",
           "esd_lambda_table", "sorting_network", "kernels_need_compiling", "dispatchers_need_compiling",
           "COMPILING_MESSAGE"]

#: What a progress bar says while the kernels compile (the first run after installing only).
COMPILING_MESSAGE = "compiling the rejection kernels (first run only, about 10 s)"

# error_model="numpy": a float division by zero gives inf instead of raising (a guard score
# with a zero threshold is +inf, as in the reference)
_JIT = dict(nogil=True, cache=True, error_model="numpy")
# small helpers called per pixel or per iteration: inlined by numba itself (a call that passes
# arrays costs more than these functions' work)
_INLINE = dict(_JIT, inline="always")

# Columns sorted together. 248 float64 = 31 cache lines: an odd stride in lines spreads the N
# values of one column over different L1 sets (a power-of-two stride makes them evict each other).
CHUNK = 248

# The kernels' codes of the rejection algorithms; the registry gives each algorithm its code
# (kernel_code), so that the codes live beside the numba code that branches on them (numba's
# cache is renewed when this file changes, not when another module's constants do).
(R_NONE, R_MINMAX, R_PERCENTILE, R_SIGMA, R_MAD, R_AVSIGMA, R_WINSOR, R_LINFIT,
 R_ESD, R_TRIMMED) = range(10)
(C_AVERAGE, C_MEDIAN, C_MINIMUM, C_MAXIMUM, C_SUM) = range(5)
_COMB_CODE = {name: i for i, name in enumerate(COMBINES)}
assert _COMB_CODE["sum"] == C_SUM


def _algorithms():
    """The rejection registry's entries, imported on use: the registry imports this module."""
    from .registry import REJECTION_ALGORITHMS
    return REJECTION_ALGORITHMS


def __getattr__(name: str):
    # Names, default thresholds and codes of the algorithms are the registry's; these stay for callers.
    if name == "_REJ_CODE":
        return {a.name: a.kernel_code for a in _algorithms().values()}
    if name in ("REJECTIONS", "DEFAULT_THRESHOLDS"):
        from . import registry
        return registry.rejection_names() if name == "REJECTIONS" else registry.DEFAULT_THRESHOLDS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def esd_lambda_table(alpha: float, n_max: int) -> np.ndarray:
    """Rosner's critical values ``lambda_n`` for n = 0..n_max (NaN below 3).

    Same formula and same scipy quantile as ``reference.esd_critical_value``, element by
    element, so the values are identical.
    """
    lam = np.full(max(n_max, 2) + 1, np.nan)
    if n_max >= 3:
        n = np.arange(3, n_max + 1)
        from scipy import stats  # only ESD needs it, and importing it costs a run's start 0.4 s

        t = stats.t.ppf(1 - alpha / (2 * n), n - 2)
        lam[3:] = (n - 1) * t / np.sqrt(n * (n - 2 + t * t))
    return lam


# --- sorting: a chunk of columns at a time ---------------------------------------------------

@lru_cache(maxsize=None)
def sorting_network(n: int) -> np.ndarray:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for n inputs, shape (M, 2).

    Built for the next power of two and pruned of comparators that touch an index >= n: the
    missing inputs act as +inf, which such a network never moves down, so the pruned network
    sorts n values.
    """
    p = 1
    while p < n:
        p *= 2
    pairs = []
    t = 1
    while t < p:
        k = t
        while k >= 1:
            for j in range(k % t, p - k, 2 * k):
                for i in range(min(k, p - j - k)):
                    if (i + j) // (2 * t) == (i + j + k) // (2 * t) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        t *= 2
    out = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    out.flags.writeable = False
    return out


@njit(**_JIT)
def _load_chunk(stack, row, c0, cc, scale, offset, buf, cnt):
    """Normalised values of a chunk of columns into buf (frame-major), NaN -> +inf so that
    missing values sort last; cnt[c] = number of valid values of column c."""
    for c in range(cc):
        cnt[c] = 0
    for i in range(stack.shape[0]):
        src = stack[i, row, c0:c0 + cc]
        sc = scale[i]
        of = offset[i]
        dst = buf[i]
        for c in range(cc):
            x = src[c]
            bad = math.isnan(x)
            dst[c] = np.inf if bad else np.float64(x) * sc + of
            cnt[c] += 0 if bad else 1


@njit(**_JIT)
def _load_chunk_raw(stack, row, c0, cc, buf, cnt):
    """As _load_chunk without normalising: the float32 values themselves (NaN -> +inf)."""
    for c in range(cc):
        cnt[c] = 0
    for i in range(stack.shape[0]):
        src = stack[i, row, c0:c0 + cc]
        dst = buf[i]
        for c in range(cc):
            x = src[c]
            bad = math.isnan(x)
            dst[c] = np.float32(np.inf) if bad else x
            cnt[c] += 0 if bad else 1


@njit(**_JIT)
def _load_payload(stack, row, c0, cc, scale, offset, weights, bo, bw):
    """Output-normalised values and weights of the chunk (+inf where missing)."""
    for i in range(stack.shape[0]):
        src = stack[i, row, c0:c0 + cc]
        sc = scale[i]
        of = offset[i]
        wi = weights[i]
        dst_o = bo[i]
        dst_w = bw[i]
        for c in range(cc):
            x = src[c]
            bad = math.isnan(x)
            dst_o[c] = np.inf if bad else np.float64(x) * sc + of
            dst_w[c] = np.inf if bad else wi


@njit(**_JIT)
def _sort_chunk(pairs, cc, br):
    """Apply the sorting network to every column of the chunk at once."""
    for q in range(pairs.shape[0]):
        ra = br[pairs[q, 0]]
        rb = br[pairs[q, 1]]
        for c in range(cc):
            a = ra[c]
            b = rb[c]
            ra[c] = min(a, b)
            rb[c] = max(a, b)


@njit(**_JIT)
def _sort_chunk_payload(pairs, cc, br, bo, bw):
    """As _sort_chunk, on the tuples (r, o, w) in lexicographic (canonical) order."""
    for q in range(pairs.shape[0]):
        ra = br[pairs[q, 0]]
        rb = br[pairs[q, 1]]
        oa = bo[pairs[q, 0]]
        ob = bo[pairs[q, 1]]
        wa = bw[pairs[q, 0]]
        wb = bw[pairs[q, 1]]
        for c in range(cc):
            a = ra[c]
            b = rb[c]
            u = oa[c]
            v = ob[c]
            y = wa[c]
            z = wb[c]
            swap = (a > b) | ((a == b) & ((u > v) | ((u == v) & (y > z))))
            ra[c] = b if swap else a
            rb[c] = a if swap else b
            oa[c] = v if swap else u
            ob[c] = u if swap else v
            wa[c] = z if swap else y
            wb[c] = y if swap else z


# --- statistics on a window [lo, lo + n) of a workspace row ------------------------------------
#
# The per-pixel data live in one workspace ``ws`` (float64, shape (7, N + 1)) and ``iw``
# (int64, shape (2, N)) instead of separate arrays: numba passes each array argument as some ten
# machine words, and with a dozen arrays per call that cost more than the work on ~30 values.

R, O, W, D, T, P1, P2 = range(7)  # ws rows: sorted rejection values, output values, weights,
                                  # deviations, scratch, prefix sums of d and d^2 (winsorized);
                                  # when output == rejection normalisation, O is R
F, Q = 0, 1                       # iw rows: candidate flags, order of the esd removals


@njit(**_JIT)
def _median(ws, row, lo, n):
    h = lo + n // 2
    if n % 2 == 1:
        return ws[row, h]
    return (ws[row, h - 1] + ws[row, h]) / 2.0


@njit(**_JIT)
def _sum(ws, row, lo, n):
    """Sum of ws[row, lo:lo+n] in the reference's order: four lane sums, (s0+s1)+(s2+s3)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    p = lo
    end = lo + n
    while p + 4 <= end:
        s0 += ws[row, p]
        s1 += ws[row, p + 1]
        s2 += ws[row, p + 2]
        s3 += ws[row, p + 3]
        p += 4
    if p < end:
        s0 += ws[row, p]
    if p + 1 < end:
        s1 += ws[row, p + 1]
    if p + 2 < end:
        s2 += ws[row, p + 2]
    return (s0 + s1) + (s2 + s3)


@njit(**_JIT)
def _std_from_sums(s1, s2, n):
    """As reference._std_from_sums."""
    return math.sqrt(max(n * s2 - s1 * s1, 0.0) / (n * (n - 1)))


@njit(**_JIT)
def _std_about(ws, lo, n, c):
    """reference._std_about(x - c) over the window: sums of y and y^2 in one pass."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    b3 = 0.0
    r = ws[R]
    p = lo
    end = lo + n
    while p + 4 <= end:
        v0 = r[p] - c
        v1 = r[p + 1] - c
        v2 = r[p + 2] - c
        v3 = r[p + 3] - c
        a0 += v0
        a1 += v1
        a2 += v2
        a3 += v3
        b0 += v0 * v0
        b1 += v1 * v1
        b2 += v2 * v2
        b3 += v3 * v3
        p += 4
    if p < end:
        v = r[p] - c
        a0 += v
        b0 += v * v
    if p + 1 < end:
        v = r[p + 1] - c
        a1 += v
        b1 += v * v
    if p + 2 < end:
        v = r[p + 2] - c
        a2 += v
        b2 += v * v
    s1 = (a0 + a1) + (a2 + a3)
    s2 = (b0 + b1) + (b2 + b3)
    return _std_from_sums(s1, s2, n)


@njit(**_INLINE)
def _winsor_prefix(ws, lo, n, c):
    """Deviations d of the window from c (sorted) and their prefix sums of d and d^2 into ws[D],
    ws[P1], ws[P2]; -> the plain sample spread, the Winsorizing's starting point."""
    # the running sums stay in registers: read back from ws, each add would wait for the
    # previous store (numba cannot tell that the rows do not overlap)
    s1 = 0.0
    s2 = 0.0
    ws[P1, 0] = s1
    ws[P2, 0] = s2
    for p in range(n):
        dv = ws[R, lo + p] - c
        ws[D, p] = dv
        s1 += dv
        s2 += dv * dv
        ws[P1, p + 1] = s1
        ws[P2, p + 1] = s2
    return _std_from_sums(s1, s2, n)


@njit(**_INLINE)
def _winsor_step(ws, n, s, a, b):
    """One Winsorizing iteration (reference._winsorized_pass) from the spread s and the clamp
    counts a, b of the previous one; -> (new spread, a, b, converged)."""
    lim = WINSOR_CLAMP * s
    # a = number of d < -lim, b = number of d <= lim (from the previous a, b: lim moves little)
    while a > 0 and ws[D, a - 1] >= -lim:
        a -= 1
    while a < n and ws[D, a] < -lim:
        a += 1
    while b < n and ws[D, b] <= lim:
        b += 1
    while b > 0 and ws[D, b - 1] > lim:
        b -= 1
    s1 = (ws[P1, b] - ws[P1, a]) + (n - b - a) * lim
    s2 = (ws[P2, b] - ws[P2, a]) + (n - b + a) * (lim * lim)
    s_new = WINSOR_FACTOR * _std_from_sums(s1, s2, n)
    return s_new, a, b, abs(s_new - s) <= WINSOR_TOL * s


@njit(**_JIT)
def _winsorized_std(ws, lo, n, c):
    """Winsorized sigma about c (reference._winsorized_pass), from prefix sums of the sorted
    deviations: each inner iteration is O(1) plus a short search instead of O(n)."""
    s = _winsor_prefix(ws, lo, n, c)
    if not _spread_ok(s, ws, lo, n):
        return s
    a = 0
    b = n
    for _ in range(WINSOR_MAX_ITER):
        s, a, b, done = _winsor_step(ws, n, s, a, b)
        if done:
            break
    return s


@njit(**_JIT)
def _std(ws, lo, n, mean):
    """Sample standard deviation of ws[R, lo:lo+n] about its mean (as reference._std)."""
    for p in range(n):
        dv = ws[R, lo + p] - mean
        ws[T, p] = dv * dv
    return math.sqrt(_sum(ws, T, 0, n) / (n - 1))


@njit(**_JIT)
def _spread_ok(s, ws, lo, n):
    """False for a zero, rounding-level or NaN spread (as reference._spread_ok)."""
    return s > ZERO_SPREAD_RTOL * max(abs(ws[R, lo]), abs(ws[R, lo + n - 1]))


@njit(**_JIT)
def _mad(ws, lo, n, m):
    """Raw MAD of the sorted window about its median m: median of |x - m| (mean of the middle
    two for even n), without sorting the deviations.

    Left of the split the deviations grow leftwards, right of it rightwards: two sorted
    sequences A and B, and the k-th smallest of their merge is found by binary search on how
    many of the first k + 1 come from A.
    """
    r = ws[R]
    end = lo + n
    split = lo + n // 2                  # first index with r >= m (m is the median)
    while split > lo and r[split - 1] >= m:
        split -= 1
    while split < end and r[split] < m:
        split += 1
    na = split - lo                      # A[i] = |r[split - 1 - i] - m|
    nb = end - split                     # B[j] = |r[split + j] - m|
    take = (n - 1) // 2 + 1              # up to and including the (lower) middle element
    i_lo = max(0, take - nb)
    i_hi = min(take, na)
    while i_lo < i_hi:                   # smallest i with B[take - i - 1] <= A[i]
        i = (i_lo + i_hi) // 2
        if abs(r[split + take - i - 1] - m) > abs(r[split - 1 - i] - m):
            i_lo = i + 1
        else:
            i_hi = i
    i = i_lo
    j = take - i
    v = -np.inf
    if i > 0:
        v = abs(r[split - i] - m)
    if j > 0:
        v = max(v, abs(r[split + j - 1] - m))
    if n % 2 == 1:
        return v
    nxt = np.inf                         # the next deviation in merge order
    if i < na:
        nxt = abs(r[split - 1 - i] - m)
    if j < nb:
        nxt = min(nxt, abs(r[split + j] - m))
    return (v + nxt) / 2.0


# --- rejection -------------------------------------------------------------------------------

@njit(**_JIT)
def _centre_spread(method, ws, lo, n, low, high, g, first):
    """Centre and thresholds of one pass of a monotone method; -> (ok, c, tl, th)."""
    if method == R_AVSIGMA:
        if first:
            c = _sum(ws, R, lo + 1, n - 2) / (n - 2)
        else:
            c = _sum(ws, R, lo, n) / n
        if not (g > 0 and math.isfinite(g)) or not c > 0:
            return False, 0.0, 0.0, 0.0
        s = math.sqrt(g * c)
    else:
        c = _median(ws, R, lo, n)
        if method == R_PERCENTILE:
            return c > 0, c, low * c, high * c
        if method == R_MAD:
            s = MAD_TO_SIGMA * _mad(ws, lo, n, c)
        elif method == R_WINSOR:
            s = _winsorized_std(ws, lo, n, c)
        else:   # sigma
            s = _std_about(ws, lo, n, c)
    if not _spread_ok(s, ws, lo, n):
        return False, 0.0, 0.0, 0.0
    return True, c, low * s, high * s


@njit(**_INLINE)
def _clip_candidates(ws, lo, k, floor, c, tl, th):
    """Numbers (a, b) of the lowest and highest values of the window [lo, lo + k) to reject in
    one pass about the centre c with thresholds tl, th, the guard (at least floor kept) applied."""
    r = ws[R]
    a = 0
    while a < k and -(r[lo + a] - c) > tl:
        a += 1
    b = 0
    while b < k - a and r[lo + k - 1 - b] - c > th:
        b += 1
    if a + b > 0 and k - a - b < floor:
        # guard: merge the two candidate lists by score (as reference._guard_select:
        # score desc, then nearer its own end, then the high side)
        ia = 0
        ib = 0
        for _ in range(k - floor):
            if ia < a and ib < b:
                sl = -(r[lo + ia] - c) / tl
                sh = (r[lo + k - 1 - ib] - c) / th
                take_high = sh > sl or (sh == sl and ib <= ia)
            else:
                take_high = ib < b
            if take_high:
                ib += 1
            else:
                ia += 1
        a = ia
        b = ib
    return a, b


@njit(**_JIT)
def _clip_monotone(method, ws, n, low, high, g):
    """Iterative (percentile: one-pass) clipping about a centre.

    The deviation x - c is monotone in the sorted values (rounding is monotone too), so the
    candidates are the a lowest and b highest kept values and the kept values stay a window
    [lo, lo + k) of the sorted row. -> (lo, k, n low, n high).
    """
    floor = max(3, (n + 1) // 2)
    lo = 0
    k = n
    nlo = 0
    nhi = 0
    first = True
    while k > floor:
        ok, c, tl, th = _centre_spread(method, ws, lo, k, low, high, g, first)
        first = False
        if not ok:
            break
        a, b = _clip_candidates(ws, lo, k, floor, c, tl, th)
        if a + b == 0:
            break
        lo += a
        k -= a + b
        nlo += a
        nhi += b
        if method == R_PERCENTILE:
            break
    return lo, k, nlo, nhi


# --- sigma, MAD and Winsorized clipping of a batch of pixels at once ----------------------------
#
# One pixel's spread is a chain of dependent steps (Winsorized: ~6 iterations, each a division
# and a square root), and the rejection after it branches on the data, which stops the processor
# from working ahead on the next pixel. Taking a batch of pixels through each stage side by side
# (spreads, Winsorizing iterations, then rejections) gives it independent chains to overlap.
# Each pixel does exactly what _clip_monotone does, in the same order: the same results, bit for bit.

BATCH = 16                              # pixels side by side: enough chains, workspaces in L1
BATCH_SIGMA_MAX_FRAMES = 64
LO_, K_, NLO, NHI, N0, ACT, CA, CB, RUN = range(9)   # rows of the batch's int state
CEN, SPR = 0, 1                         # rows of its float state: centre, spread


@njit(**_JIT)
def _clip_columns(method, wsb, nb, st, sf, low, high):
    """Sigma, MAD or Winsorized sigma clipping of the sorted pixels wsb[j, R, :st[N0, j]], j < nb.

    -> kept windows and counts in st[LO_], st[K_], st[NLO], st[NHI] (as _clip_monotone's).
    """
    for j in range(nb):
        n = st[N0, j]
        st[LO_, j] = 0
        st[K_, j] = n
        st[NLO, j] = 0
        st[NHI, j] = 0
        st[ACT, j] = 1 if n > max(3, (n + 1) // 2) else 0
        st[RUN, j] = 0
    nact = nb
    while nact > 0:
        # each active pixel: centre and spread (Winsorized: deviations, prefix sums and the
        # starting spread)
        nrun = 0
        for j in range(nb):
            if st[ACT, j] == 0:
                continue
            ws = wsb[j]
            lo = st[LO_, j]
            k = st[K_, j]
            c = _median(ws, R, lo, k)
            sf[CEN, j] = c
            if method == R_SIGMA:
                sf[SPR, j] = _std_about(ws, lo, k, c)
                continue
            if method == R_MAD:
                sf[SPR, j] = MAD_TO_SIGMA * _mad(ws, lo, k, c)
                continue
            s = _winsor_prefix(ws, lo, k, c)
            if not _spread_ok(s, ws, lo, k):
                st[ACT, j] = 0
                continue
            sf[SPR, j] = s
            st[CA, j] = 0
            st[CB, j] = k
            st[RUN, j] = 1
            nrun += 1
        # the Winsorizing iterations, side by side
        for _ in range(WINSOR_MAX_ITER):
            if nrun == 0:
                break
            for j in range(nb):
                if st[RUN, j] == 0:
                    continue
                s, a, b, done = _winsor_step(wsb[j], st[K_, j], sf[SPR, j], st[CA, j], st[CB, j])
                sf[SPR, j] = s
                st[CA, j] = a
                st[CB, j] = b
                if done:
                    st[RUN, j] = 0
                    nrun -= 1
        # reject about the spreads
        nact = 0
        for j in range(nb):
            if st[ACT, j] == 0:
                continue
            st[RUN, j] = 0
            ws = wsb[j]
            lo = st[LO_, j]
            k = st[K_, j]
            s = sf[SPR, j]
            if not _spread_ok(s, ws, lo, k):
                st[ACT, j] = 0
                continue
            n = st[N0, j]
            floor = max(3, (n + 1) // 2)
            a, b = _clip_candidates(ws, lo, k, floor, sf[CEN, j], low * s, high * s)
            if a + b == 0:
                st[ACT, j] = 0
                continue
            st[LO_, j] = lo + a
            st[K_, j] = k - a - b
            st[NLO, j] += a
            st[NHI, j] += b
            st[ACT, j] = 1 if k - a - b > floor else 0
            nact += st[ACT, j]


@njit(**_JIT)
def _guard(ws, iw, n, tl, th, allowed):
    """Keep only ``allowed`` flagged candidates: score desc, nearer own end, high side first."""
    for _ in range(allowed):
        best = -1
        bs = 0.0
        bd = 0
        bh = False
        for p in range(n):
            f = iw[F, p]
            if f != 1 and f != 2:
                continue
            hi = f == 2
            if hi:
                sc = ws[D, p] / th
                di = n - 1 - p
            else:
                sc = -ws[D, p] / tl
                di = p
            if best < 0 or sc > bs or (sc == bs and (di < bd or (di == bd and hi and not bh))):
                best = p
                bs = sc
                bd = di
                bh = hi
        iw[F, best] += 2                  # 3 / 4 = selected low / high
    for p in range(n):
        f = iw[F, p]
        iw[F, p] = f - 2 if f >= 3 else 0


@njit(**_JIT)
def _compact(ws, iw, orow, n):
    """Drop flagged values (stable, so the rows stay sorted); -> (n kept, n low, n high)."""
    k = 0
    nlo = 0
    nhi = 0
    for p in range(n):
        f = iw[F, p]
        if f == 0:
            ws[R, k] = ws[R, p]
            ws[orow, k] = ws[orow, p]
            ws[W, k] = ws[W, p]
            k += 1
        elif f == 1:
            nlo += 1
        else:
            nhi += 1
    return k, nlo, nhi


@njit(**_JIT)
def _linear_fit(ws, iw, orow, n, low, high):
    """Iterative clipping about the least-squares line through (rank, sorted value)."""
    floor = max(3, (n + 1) // 2)
    k = n
    nlo = 0
    nhi = 0
    while k > floor:
        jbar = (k - 1) / 2
        ybar = _sum(ws, R, 0, k) / k
        for p in range(k):
            ws[T, p] = (p - jbar) * (ws[R, p] - ybar)
        sjy = _sum(ws, T, 0, k)
        for p in range(k):
            j = p - jbar
            ws[T, p] = j * j
        b = sjy / _sum(ws, T, 0, k)
        for p in range(k):
            res = ws[R, p] - (ybar + b * (p - jbar))
            ws[D, p] = res
            ws[T, p] = abs(res)
        s = _sum(ws, T, 0, k) / k
        if not _spread_ok(s, ws, 0, k):
            break
        tl = low * s
        th = high * s
        ncand = 0
        for p in range(k):
            dp = ws[D, p]
            if -dp > tl:
                iw[F, p] = 1
                ncand += 1
            elif dp > th:
                iw[F, p] = 2
                ncand += 1
            else:
                iw[F, p] = 0
        if ncand == 0:
            break
        if k - ncand < floor:
            _guard(ws, iw, k, tl, th, k - floor)
        k, a, bb = _compact(ws, iw, orow, k)
        nlo += a
        nhi += bb
    return 0, k, nlo, nhi


@njit(**_JIT)
def _esd(ws, iw, orow, n, frac, lam):
    """Rosner's generalised ESD test on the sorted ws[R, :n]; -> (0, n kept, n low, n high)."""
    rmax = min(int(math.floor(n * frac)), n - max(3, (n + 1) // 2))
    if rmax <= 0:
        return 0, n, 0, 0
    med = _median(ws, R, 0, n)
    for p in range(n):
        iw[F, p] = 0
    lo = 0
    hi = n - 1
    n_out = 0
    n_removed = 0
    for i in range(1, rmax + 1):
        m_ = hi - lo + 1
        mean = _sum(ws, R, lo, m_) / m_
        s = _std(ws, lo, m_, mean)
        if not _spread_ok(s, ws, lo, m_):
            break
        d_lo = abs(ws[R, lo] - mean)
        d_hi = abs(ws[R, hi] - mean)
        if d_hi >= d_lo:
            pos = hi
            gi = d_hi / s
            hi -= 1
        else:
            pos = lo
            gi = d_lo / s
            lo += 1
        x = ws[R, pos]
        iw[F, pos] = 1 if (x < med or (x == med and x < mean)) else 2
        iw[Q, n_removed] = pos
        n_removed += 1
        if gi > lam[m_]:
            n_out = i
    for q in range(n_out, n_removed):   # removed but not significant: kept after all
        iw[F, iw[Q, q]] = 0
    k, nlo, nhi = _compact(ws, iw, orow, n)
    return 0, k, nlo, nhi


@njit(**_JIT)
def _reject(method, ws, iw, orow, n, low, high, g, lam):
    """Reject from the sorted ws[:, :n]. -> (lo, k, n low, n high): kept = [lo, lo + k)."""
    if method == R_NONE or n <= 2:
        return 0, n, 0, 0
    if method == R_MINMAX:
        n_low = int(low)
        n_high = int(high)
        if n_low + n_high >= n:       # keep one value, as near the median as allowed
            n_low = min(max((n - 1) // 2, n - 1 - n_high), n_low)
            n_high = n - 1 - n_low
        return n_low, n - n_low - n_high, n_low, n_high
    if method == R_TRIMMED:           # fractions of the n values, the guard applied (reference.reject_trimmed)
        n_low = int(math.floor(low * n + TRIM_ROUNDING))
        n_high = int(math.floor(high * n + TRIM_ROUNDING))
        allowed = n - max(3, (n + 1) // 2)
        while n_low + n_high > allowed:
            if n_high >= n_low:
                n_high -= 1
            else:
                n_low -= 1
        return n_low, n - n_low - n_high, n_low, n_high
    if method == R_ESD:
        return _esd(ws, iw, orow, n, low, lam)
    if method == R_LINFIT:
        return _linear_fit(ws, iw, orow, n, low, high)
    return _clip_monotone(method, ws, n, low, high, g)


@njit(**_JIT)
def _combine(combine, ws, orow, lo, k, n_valid):
    """Combine the kept output values ws[orow, lo:lo+k] (as reference.combine_values)."""
    if k == 0:
        return np.nan
    if combine == C_MEDIAN:
        # output values are in rejection order: insertion-sort a copy (sorted when O is R)
        for p in range(k):
            v = ws[orow, lo + p]
            j = p
            while j > 0 and ws[T, j - 1] > v:
                ws[T, j] = ws[T, j - 1]
                j -= 1
            ws[T, j] = v
        return _median(ws, T, 0, k)
    if combine == C_MINIMUM:
        v = ws[orow, lo]
        for p in range(lo + 1, lo + k):
            v = min(v, ws[orow, p])
        return v
    if combine == C_MAXIMUM:
        v = ws[orow, lo]
        for p in range(lo + 1, lo + k):
            v = max(v, ws[orow, p])
        return v
    # weighted mean: sum(w * x) and sum(w), each in the four-lane order of _sum
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    b3 = 0.0
    p = lo
    end = lo + k
    while p + 4 <= end:
        a0 += ws[W, p] * ws[orow, p]
        a1 += ws[W, p + 1] * ws[orow, p + 1]
        a2 += ws[W, p + 2] * ws[orow, p + 2]
        a3 += ws[W, p + 3] * ws[orow, p + 3]
        b0 += ws[W, p]
        b1 += ws[W, p + 1]
        b2 += ws[W, p + 2]
        b3 += ws[W, p + 3]
        p += 4
    if p < end:
        a0 += ws[W, p] * ws[orow, p]
        b0 += ws[W, p]
    if p + 1 < end:
        a1 += ws[W, p + 1] * ws[orow, p + 1]
        b1 += ws[W, p + 1]
    if p + 2 < end:
        a2 += ws[W, p + 2] * ws[orow, p + 2]
        b2 += ws[W, p + 2]
    mean = ((a0 + a1) + (a2 + a3)) / ((b0 + b1) + (b2 + b3))
    if combine == C_SUM:
        return mean * n_valid
    return mean


@njit(**_JIT)
def _row_gain(stack, row, rs, ro, pairs, br, cnt, ws, terms):
    """IRAF avsigclip gain-like factor of one row, before any rejection (reference.row_gain)."""
    cols = stack.shape[2]
    chunk = br.shape[1]
    nterm = 0
    for c0 in range(0, cols, chunk):
        cc = min(chunk, cols - c0)
        _load_chunk(stack, row, c0, cc, rs, ro, br, cnt)
        _sort_chunk(pairs, cc, br)
        for c in range(cc):
            n = cnt[c]
            if n < 3:
                continue
            ok, term = _gain_term(ws, br, c, n)
            if ok:
                terms[nterm] = term
                nterm += 1
    return _mean_of_terms(terms, nterm)


@njit(**_INLINE)
def _gain_term(ws, br, c, n):
    """One column's term of the row gain (its sorted values in br[:n, c]) -> (False, 0) when its centre is not > 0."""
    for p in range(n):
        ws[R, p] = br[p, c]
    cen = _sum(ws, R, 1, n - 2) / (n - 2)
    if not cen > 0:
        return False, 0.0
    for p in range(n):
        dv = ws[R, p] - cen
        ws[T, p] = dv * dv
    return True, _sum(ws, T, 0, n) / (n - 1) / cen


@njit(**_INLINE)
def _mean_of_terms(terms, nterm):
    """The row gain: the mean of its terms, summed in the same four-lane order as everything else."""
    if nterm == 0:
        return np.nan
    return _sum(terms.reshape(1, -1), 0, 0, nterm) / nterm


@njit(**_INLINE)
def _column_into(ws, br, br32, bo, bw, c, n, raw, sc, of, simple):
    """Sorted values of column c of the chunk into the workspace rows R (and O, W)."""
    if raw:   # sorted raw values, normalised now: the same float64 values as _load_chunk's
        for p in range(n):
            ws[R, p] = np.float64(br32[p, c]) * sc + of
    else:
        for p in range(n):
            ws[R, p] = br[p, c]
    if not simple:
        for p in range(n):
            ws[O, p] = bo[p, c]
            ws[W, p] = bw[p, c]


# --- percentile, sigma and averaged sigma clipping, a chunk of columns side by side -------------
#
# These three methods need only the window's median or mean and sums over the window: on the
# stacks they are used for (a few to a few dozen frames) the per-pixel path's bookkeeping costs
# far more than the arithmetic. Here each stage runs over the chunk's columns in a loop the
# compiler can vectorise; a column's kept values stay a window [lo, lo + k) of its sorted values,
# as in _clip_monotone. Sums run in the same four lanes, in the same order, as _sum, _std_about
# and _combine (a value outside the window adds +0.0, which changes no sum), so every result is
# the per-pixel path's bit for bit. Columns with a missing value, or whose candidates the guard
# has to choose between, are left to the per-pixel path (todo[c] = 1).

CHUNK_METHODS_MAX_FRAMES = 12   # beyond, the per-pixel (batched) path is as fast (measured at 16 and 30 frames)


@njit(**_JIT)
def _lane_sums(vals, nf, cc, start, length, active, s0, s1, s2, s3, centre, mode, factor):
    """Four-lane sums over each active column's window [start, start + length), in _sum's order,
    of ``factor * x`` (mode 0), ``x - centre`` (mode 1) or ``(x - centre)^2`` (mode 2)."""
    for c in range(cc):
        s0[c] = 0.0
        s1[c] = 0.0
        s2[c] = 0.0
        s3[c] = 0.0
    for p in range(nf):
        vp = vals[p]
        for c in range(cc):
            st = start[c]
            inside = active[c] != 0 and p >= st and p < st + length[c]
            lane = (p - st) & 3
            x = vp[c]
            if mode == 0:
                x = factor * x
            else:
                x = x - centre[c]
                if mode == 2:
                    x = x * x
            s0[c] += x if (inside and lane == 0) else 0.0
            s1[c] += x if (inside and lane == 1) else 0.0
            s2[c] += x if (inside and lane == 2) else 0.0
            s3[c] += x if (inside and lane == 3) else 0.0


@njit(**_JIT)
def _clip_chunk(method, vals, nf, cnt, cc, low, high, g, w, acc, ab, todo,
                master, rej_lo, rej_hi, contributing, row, c0):
    """Percentile, sigma or averaged sigma clipping and the equal-weight mean of the chunk's
    columns vals[:nf, :cc] (each sorted), written to master etc. at (row, c0 + c)."""
    cen = acc[0]
    s0 = acc[1]
    s1 = acc[2]
    s2 = acc[3]
    s3 = acc[4]
    thl = acc[5]
    thh = acc[6]
    y1 = acc[7]
    lo = ab[0]
    k = ab[1]
    na = ab[2]
    nb = ab[3]
    act = ab[4]
    pa = ab[5]
    pb = ab[6]
    st = ab[7]
    ln = ab[8]
    floor = max(3, (nf + 1) // 2)
    nact = 0
    for c in range(cc):
        full = cnt[c] == nf
        todo[c] = 0 if full else 1
        lo[c] = 0
        k[c] = nf
        na[c] = 0
        nb[c] = 0
        act[c] = 1 if (full and nf > floor) else 0
        nact += act[c]
    first = True
    while nact > 0:
        # the centre: the window's median, or (averaged sigma) its mean, the first time without
        # its lowest and highest value
        if method == R_AVSIGMA:
            for c in range(cc):
                st[c] = lo[c] + 1 if first else lo[c]
                ln[c] = k[c] - 2 if first else k[c]
            _lane_sums(vals, nf, cc, st, ln, act, s0, s1, s2, s3, cen, 0, 1.0)
            for c in range(cc):
                cen[c] = ((s0[c] + s1[c]) + (s2[c] + s3[c])) / ln[c]
        elif first:           # every window is the whole column: the median is a row
            h = nf // 2
            vh = vals[h]
            vh1 = vals[h - 1]
            for c in range(cc):
                cen[c] = vh[c] if nf % 2 == 1 else (vh1[c] + vh[c]) / 2.0
        else:
            for c in range(cc):
                if act[c] != 0:
                    h = lo[c] + k[c] // 2
                    cen[c] = vals[h][c] if k[c] % 2 == 1 else (vals[h - 1][c] + vals[h][c]) / 2.0
        # the thresholds, or no rejection where the spread is unusable (as _centre_spread)
        if method == R_SIGMA:     # as _std_about: sums of y = x - c and of y^2 over the window
            _lane_sums(vals, nf, cc, lo, k, act, s0, s1, s2, s3, cen, 1, 1.0)
            for c in range(cc):
                y1[c] = (s0[c] + s1[c]) + (s2[c] + s3[c])
            _lane_sums(vals, nf, cc, lo, k, act, s0, s1, s2, s3, cen, 2, 1.0)
            for c in range(cc):
                if act[c] != 0:
                    thl[c] = _std_from_sums(y1[c], (s0[c] + s1[c]) + (s2[c] + s3[c]), k[c])
        for c in range(cc):
            if act[c] == 0:
                continue
            m = cen[c]
            if method == R_PERCENTILE:
                ok = m > 0
                tl = low * m
                th = high * m
            else:
                ok_g = True
                if method == R_SIGMA:
                    spread = thl[c]
                else:
                    ok_g = g > 0 and math.isfinite(g) and m > 0
                    spread = math.sqrt(g * m) if ok_g else 0.0
                bound = ZERO_SPREAD_RTOL * max(abs(vals[lo[c]][c]), abs(vals[lo[c] + k[c] - 1][c]))
                ok = spread > bound
                if method == R_AVSIGMA:
                    ok = ok and ok_g
                tl = low * spread
                th = high * spread
            if not ok:
                act[c] = 0
            thl[c] = tl
            thh[c] = th
        # the candidates: the lowest and highest values of the window beyond the thresholds
        for c in range(cc):
            pa[c] = 0
            pb[c] = 0
        for p in range(nf):
            vp = vals[p]
            for c in range(cc):
                inside = act[c] != 0 and p >= lo[c] and p < lo[c] + k[c]
                d = vp[c] - cen[c]
                pa[c] += 1 if (inside and -d > thl[c]) else 0
                pb[c] += 1 if (inside and d > thh[c]) else 0
        nact = 0
        for c in range(cc):
            if act[c] == 0:
                continue
            nact += 1
        # once few columns are still clipping, the per-pixel path redoes those (the same results)
        hand_back = nact * 4 < cc
        nact = 0
        for c in range(cc):
            if act[c] == 0:
                continue
            a = pa[c]
            b = pb[c]
            if a + b == 0:
                act[c] = 0
                continue
            if k[c] - a - b < floor:      # the guard must choose: the per-pixel path does
                todo[c] = 1
                act[c] = 0
                continue
            if hand_back and method != R_PERCENTILE:
                todo[c] = 1
                act[c] = 0
                continue
            lo[c] += a
            k[c] -= a + b
            na[c] += a
            nb[c] += b
            act[c] = 1 if (k[c] > floor and method != R_PERCENTILE) else 0
            nact += act[c]
        first = False
    # the mean of each window: sums of w * x and of the weights in _combine's lanes
    for c in range(cc):
        act[c] = 1
    _lane_sums(vals, nf, cc, lo, k, act, s0, s1, s2, s3, cen, 0, w)
    for c in range(cc):
        if todo[c]:
            continue
        kk = k[c]
        q = kk // 4
        r = kk % 4
        w0 = 0.0
        w1 = 0.0
        w2 = 0.0
        w3 = 0.0
        for _ in range(q):
            w0 += w
            w1 += w
            w2 += w
            w3 += w
        if r > 0:
            w0 += w
        if r > 1:
            w1 += w
        if r > 2:
            w2 += w
        col = c0 + c
        master[row, col] = np.float32(((s0[c] + s1[c]) + (s2[c] + s3[c])) / ((w0 + w1) + (w2 + w3)))
        rej_lo[row, col] = na[c]
        rej_hi[row, col] = nb[c]
        contributing[row, col] = kk


@njit(**_JIT)
def _fill_vals(vals, br, br32, raw, sc, of, nf, cc):
    """The chunk's sorted values as _column_into would give them, frame-major, into vals."""
    for p in range(nf):
        vp = vals[p]
        if raw:
            src = br32[p]
            for c in range(cc):
                vp[c] = np.float64(src[c]) * sc + of
        else:
            src64 = br[p]
            for c in range(cc):
                vp[c] = src64[c]


@njit(**_JIT)
def _sorted_row_and_gain(stack, row, rs, ro, pairs, br, cnt, ws, terms, rowbuf, rowcnt, acc, ab):
    """_row_gain, its columns side by side, keeping the row's sorted values for the clipping."""
    nf, _, cols = stack.shape
    chunk = br.shape[1]
    cen = acc[0]
    s0 = acc[1]
    s1 = acc[2]
    s2 = acc[3]
    s3 = acc[4]
    st = ab[0]
    ln = ab[1]
    act = ab[2]
    nterm = 0
    for c0 in range(0, cols, chunk):
        cc = min(chunk, cols - c0)
        _load_chunk(stack, row, c0, cc, rs, ro, br, cnt)
        _sort_chunk(pairs, cc, br)
        for p in range(nf):
            src = br[p]
            dst = rowbuf[p]
            for c in range(cc):
                dst[c0 + c] = src[c]
        for c in range(cc):
            rowcnt[c0 + c] = cnt[c]
            act[c] = 1 if cnt[c] == nf else 0
            st[c] = 1
            ln[c] = nf - 2
        _lane_sums(br, nf, cc, st, ln, act, s0, s1, s2, s3, cen, 0, 1.0)
        for c in range(cc):
            cen[c] = ((s0[c] + s1[c]) + (s2[c] + s3[c])) / (nf - 2)
            st[c] = 0
            ln[c] = nf
        _lane_sums(br, nf, cc, st, ln, act, s0, s1, s2, s3, cen, 2, 1.0)
        for c in range(cc):      # in column order, as _row_gain appends its terms
            n = cnt[c]
            if n < 3:
                continue
            if n == nf:
                cv = cen[c]
                if not cv > 0:
                    continue
                terms[nterm] = ((s0[c] + s1[c]) + (s2[c] + s3[c])) / (n - 1) / cv
                nterm += 1
                continue
            ok, term = _gain_term(ws, br, c, n)
            if ok:
                terms[nterm] = term
                nterm += 1
    return _mean_of_terms(terms, nterm)


@njit(**_JIT)
def _band_kernel(stack, method, low, high, combine, weights, rs, ro, os_, oo, simple, raw, pairs,
                 lam, chunk, master, rej_lo, rej_hi, contributing, columns_side_by_side=True):
    nf, rows, cols = stack.shape
    # per-band scratch: nothing is allocated inside the row or pixel loops
    br = np.empty((nf, chunk) if not raw or method == R_AVSIGMA else (1, 1))
    br32 = np.empty((nf, chunk) if raw else (1, 1), np.float32)
    bo = np.empty((nf, chunk) if not simple else (1, 1))
    bw = np.empty((nf, chunk) if not simple else (1, 1))
    cnt = np.empty(chunk, np.int64)
    # sigma and MAD gain from batching on short stacks only (measured: 0.75x at 10-30 frames,
    # 1.02-1.09x at 100, where one pixel's pass is long enough to keep the processor busy)
    batched = method == R_WINSOR or ((method == R_SIGMA or method == R_MAD)
                                     and nf <= BATCH_SIGMA_MAX_FRAMES)
    nb_max = BATCH if batched else 1
    wsb = np.empty((nb_max, 7, nf + 1))
    st = np.empty((9, nb_max), np.int64)
    sf = np.empty((2, nb_max))
    ws = np.empty((7, nf + 1))   # the workspace of the pixel-by-pixel methods
    iw = np.empty((2, nf), np.int64)
    terms = np.empty(cols)
    # percentile, sigma and averaged sigma on equal weights, averaged: the chunk's columns side by
    # side (_clip_chunk)
    by_chunk = columns_side_by_side and simple and combine == C_AVERAGE and nf >= 3 and (
        method == R_PERCENTILE
        or ((method == R_SIGMA or method == R_AVSIGMA) and nf <= CHUNK_METHODS_MAX_FRAMES))
    acc = np.empty((8 + nf, chunk) if by_chunk else (1, 1))
    vals = acc[8:]
    ab = np.empty((9, chunk) if by_chunk else (1, 1), np.int64)
    todo = np.empty(chunk if by_chunk else 1, np.int64)
    row_kept = by_chunk and method == R_AVSIGMA
    rowbuf = np.empty((nf, cols) if row_kept else (1, 1))
    rowcnt = np.empty(cols if row_kept else 1, np.int64)
    orow = O
    if simple:
        orow = R              # output value == rejection value: one row, moved once
        ws[W, :] = weights[0]  # equal weights: compaction keeps the row constant
        wsb[:, W, :] = weights[0]
    sc = rs[0]
    of = ro[0]
    for row in range(rows):
        g = np.nan
        if row_kept:
            g = _sorted_row_and_gain(stack, row, rs, ro, pairs, br, cnt, ws, terms, rowbuf, rowcnt, acc, ab)
        elif method == R_AVSIGMA:
            g = _row_gain(stack, row, rs, ro, pairs, br, cnt, ws, terms)
        for c0 in range(0, cols, chunk):
            cc = min(chunk, cols - c0)
            if row_kept:
                for p in range(nf):
                    for c in range(cc):
                        vals[p, c] = rowbuf[p, c0 + c]
                for c in range(cc):
                    cnt[c] = rowcnt[c0 + c]
            elif raw:
                _load_chunk_raw(stack, row, c0, cc, br32, cnt)
                _sort_chunk(pairs, cc, br32)
            else:
                _load_chunk(stack, row, c0, cc, rs, ro, br, cnt)
                if simple:
                    _sort_chunk(pairs, cc, br)
                else:
                    _load_payload(stack, row, c0, cc, os_, oo, weights, bo, bw)
                    _sort_chunk_payload(pairs, cc, br, bo, bw)
            if by_chunk:
                if not row_kept:
                    _fill_vals(vals, br, br32, raw, sc, of, nf, cc)
                _clip_chunk(method, vals, nf, cnt, cc, low, high, g, weights[0], acc, ab, todo,
                            master, rej_lo, rej_hi, contributing, row, c0)
                for c in range(cc):
                    if todo[c] == 0:
                        continue
                    n = cnt[c]
                    for p in range(n):
                        ws[R, p] = vals[p, c]
                    lo, k, nlo, nhi = _reject(method, ws, iw, orow, n, low, high, g, lam)
                    col = c0 + c
                    master[row, col] = np.float32(_combine(combine, ws, orow, lo, k, n))
                    rej_lo[row, col] = nlo
                    rej_hi[row, col] = nhi
                    contributing[row, col] = k
                continue
            if batched:
                for j0 in range(0, cc, nb_max):
                    nb = min(nb_max, cc - j0)
                    for j in range(nb):
                        n = cnt[j0 + j]
                        _column_into(wsb[j], br, br32, bo, bw, j0 + j, n, raw, sc, of, simple)
                        st[N0, j] = n
                    _clip_columns(method, wsb, nb, st, sf, low, high)
                    for j in range(nb):
                        col = c0 + j0 + j
                        lo = st[LO_, j]
                        k = st[K_, j]
                        master[row, col] = np.float32(_combine(combine, wsb[j], orow, lo, k, st[N0, j]))
                        rej_lo[row, col] = st[NLO, j]
                        rej_hi[row, col] = st[NHI, j]
                        contributing[row, col] = k
                continue
            for c in range(cc):
                n = cnt[c]
                _column_into(ws, br, br32, bo, bw, c, n, raw, sc, of, simple)
                lo, k, nlo, nhi = _reject(method, ws, iw, orow, n, low, high, g, lam)
                col = c0 + c
                master[row, col] = np.float32(_combine(combine, ws, orow, lo, k, n))
                rej_lo[row, col] = nlo
                rej_hi[row, col] = nhi
                contributing[row, col] = k


def integrate_band(stack: np.ndarray, *, rejection: str, low: float, high: float, combine: str,
                   weights: np.ndarray, rej_scale: np.ndarray, rej_offset: np.ndarray,
                   out_scale: np.ndarray, out_offset: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reject and combine a band of full image rows (fast numba kernel).

    Parameters
    ----------
    stack : ndarray, shape (N, rows, cols), float32
        The band of each of N frames; NaN = missing (other values must be finite).
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

    Returns
    -------
    master : ndarray, shape (rows, cols), float32
        Combined value; NaN where a pixel has no value.
    rejected_low, rejected_high, contributing : ndarray, shape (rows, cols), uint16
        Numbers of values rejected low, rejected high, and kept (combined).

    Notes
    -----
    Releases the GIL while it computes: run bands in threads for parallelism.
    """
    (stack, low, high, weights, rej_scale, rej_offset, out_scale,
     out_offset) = validate_band_arguments(stack, rejection, low, high, combine, weights,
                                           rej_scale, rej_offset, out_scale, out_offset)
    nf, rows, cols = stack.shape
    code = _algorithms()[rejection].kernel_code
    lam = esd_lambda_table(high, nf) if code == R_ESD else np.empty(1)
    # one sorted array is enough when output = rejection normalisation and the weights are
    # equal (bias, darks, flats); otherwise (value, output, weight) are sorted together
    simple = bool(np.array_equal(rej_scale, out_scale) and np.array_equal(rej_offset, out_offset)
                  and np.all(weights == weights[0]))
    # the same normalisation for every frame (above all none: bias, darks) keeps the order of the
    # raw values: sort those in float32 (twice the values per vector instruction) and normalise
    # each sorted value as _load_chunk would, which gives the same float64 values in the same order
    raw = bool(simple and rej_scale[0] > 0 and np.all(rej_scale == rej_scale[0])
               and np.all(rej_offset == rej_offset[0]))
    master = np.empty((rows, cols), np.float32)
    rej_lo = np.empty((rows, cols), np.uint16)
    rej_hi = np.empty((rows, cols), np.uint16)
    contributing = np.empty((rows, cols), np.uint16)
    _band_kernel(stack, code, low, high, _COMB_CODE[combine], weights,
                 rej_scale, rej_offset, out_scale, out_offset, simple, raw, sorting_network(nf), lam,
                 CHUNK, master, rej_lo, rej_hi, contributing)
    return master, rej_lo, rej_hi, contributing


def kernels_need_compiling() -> bool:
    """True when the next integration will compile the kernels (no compiled copy in memory or on disk).

    Numba caches the machine code beside this module, so this is true once per installation (and
    again after an upgrade); a progress bar can say so instead of looking frozen.
    """
    return dispatchers_need_compiling(_band_kernel)


def dispatchers_need_compiling(*dispatchers) -> bool:
    """True when some of these numba functions has no compiled copy in memory or in numba's cache."""
    if all(d.signatures for d in dispatchers):
        return False
    try:
        return not all(os.path.exists(d._cache._cache_file._index_path) for d in dispatchers)
    except AttributeError:  # another numba's internals: say nothing rather than something wrong
        return False
