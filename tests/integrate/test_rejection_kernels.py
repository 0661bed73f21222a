"""The numba kernels against the reference, and properties of the rejection (hypothesis).

The kernels sum in the reference's order, so the rejection maps must be identical (not just
close) and the master equal to float32 rounding, on data with outliers, NaN (all-NaN pixels
too), ties (integer-valued data), 1 to 100 frames, with and without normalisation and weights.
"""
from __future__ import annotations

import itertools
import threading
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocal_widgets.integrate import kernels, reference
from astrocal_widgets.integrate.reference import COMBINES, DEFAULT_THRESHOLDS, REJECTIONS, min_keep

NS = [1, 2, 3, 4, 5, 7, 10, 16, 25, 40, 100]
# default thresholds, and aggressive ones under which the guard fires often
THRESHOLDS = {
    "default": {**DEFAULT_THRESHOLDS, "none": (0, 0)},
    "aggressive": {"none": (0, 0), "minmax": (3, 5), "percentile": (0.01, 0.02),
                   "sigma": (1.0, 1.5), "mad": (1.0, 1.0), "averaged_sigma": (1.0, 1.0),
                   "winsorized_sigma": (1.0, 1.5), "linear_fit": (1.0, 1.5),
                   "esd": (0.5, 0.3), "trimmed": (0.3, 0.45)},
}
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


def make_stack(rng: np.random.Generator, n: int, rows: int, cols: int,
               integer: bool) -> np.ndarray:
    """Noise plus outliers of both signs, 5 % NaN, an all-NaN pixel and pixels with 1 and 2
    values; integer-valued data on a narrow range has many ties."""
    if integer:
        x = rng.integers(95, 106, (n, rows, cols)).astype(float)
    else:
        x = rng.normal(1000.0, 10.0, (n, rows, cols))
    out = rng.random(x.shape) < 0.08
    jump = rng.choice([-1.0, 1.0], out.sum()) * rng.uniform(30, 500, out.sum())
    x[out] += np.round(jump) if integer else jump
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:, 0, 0] = np.nan
    if cols > 2:
        x[1:, 0, 1] = np.nan
        x[2:, 0, 2] = np.nan
    return x.astype(np.float32)


def coefficients(rng: np.random.Generator, n: int, normalised: bool, integer: bool) -> dict:
    if not normalised:
        return dict(weights=np.ones(n), rej_scale=np.ones(n), rej_offset=np.zeros(n),
                    out_scale=np.ones(n), out_offset=np.zeros(n))
    if integer:   # keep ties among normalised values and among (value, output, weight)
        return dict(weights=rng.integers(1, 4, n).astype(float),
                    rej_scale=rng.integers(1, 3, n).astype(float),
                    rej_offset=rng.integers(-5, 6, n).astype(float),
                    out_scale=np.ones(n), out_offset=rng.integers(-2, 3, n).astype(float))
    return dict(weights=rng.uniform(0.5, 2.0, n), rej_scale=rng.uniform(0.8, 1.25, n),
                rej_offset=rng.uniform(-20, 20, n), out_scale=rng.uniform(0.8, 1.25, n),
                out_offset=rng.uniform(-20, 20, n))


def assert_same(fast, slow, context=""):
    m_fast, *maps_fast = fast
    m_slow, *maps_slow = slow
    for name, a, b in zip(("rejected_low", "rejected_high", "contributing"), maps_fast,
                          maps_slow):
        assert a.dtype == np.uint16 and a.shape == b.shape
        bad = np.argwhere(a != b)
        assert bad.size == 0, f"{context}: {name} differs at {bad[:5].tolist()}"
    assert m_fast.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(m_fast), np.isnan(m_slow), err_msg=context)
    scale = np.nanmax(np.abs(m_slow)) if np.isfinite(m_slow).any() else 1.0
    np.testing.assert_allclose(m_fast, m_slow, rtol=1e-6, atol=1e-6 * scale, err_msg=context)


def both(stack, **kw):
    return kernels.integrate_band(stack, **kw), reference.integrate_band(stack, **kw)


# --- fast == reference ------------------------------------------------------------------------

@pytest.mark.parametrize("setting", THRESHOLDS)
@pytest.mark.parametrize("rejection", REJECTIONS)
def test_kernel_matches_reference(rejection, setting):
    low, high = THRESHOLDS[setting][rejection]
    rng = np.random.default_rng(zlib.crc32(f"{rejection}/{setting}".encode()))
    cases = itertools.product(NS, (False, True), (False, True))
    for i, (n, integer, normalised) in enumerate(cases):
        stack = make_stack(rng, n, 2, 6, integer)
        kw = dict(rejection=rejection, low=low, high=high, combine=COMBINES[i % len(COMBINES)],
                  **coefficients(rng, n, normalised, integer))
        fast, slow = both(stack, **kw)
        assert_same(fast, slow, f"n={n} integer={integer} normalised={normalised} "
                                f"combine={kw['combine']}")
        n_valid = (~np.isnan(stack)).sum(axis=0)
        assert np.array_equal(fast[1].astype(int) + fast[2] + fast[3], n_valid)


@pytest.mark.parametrize("rejection", REJECTIONS)
def test_every_combination(rejection):
    rng = np.random.default_rng(11)
    low, high = DEFAULT_THRESHOLDS.get(rejection, (0, 0))
    for integer in (False, True):
        stack = make_stack(rng, 12, 2, 5, integer)
        coef = coefficients(rng, 12, True, integer)
        for combine in COMBINES:
            fast, slow = both(stack, rejection=rejection, low=low, high=high, combine=combine,
                              **coef)
            assert_same(fast, slow, f"{combine} integer={integer}")


@pytest.mark.parametrize("rejection", ["sigma", "mad", "winsorized_sigma", "averaged_sigma", "linear_fit"])
def test_rows_wider_than_a_chunk(rejection):
    """Several column chunks per row: averaged_sigma's row gain spans them all; the last chunk
    (17 columns) ends with a partial batch of pixels for the batched methods."""
    rng = np.random.default_rng(12)
    cols = 2 * kernels.CHUNK + 17
    stack = make_stack(rng, 8, 2, cols, False)
    stack[:, 1, :cols // 2] *= 3      # the row gain depends on the whole row
    low, high = DEFAULT_THRESHOLDS[rejection]
    fast, slow = both(stack, rejection=rejection, low=low, high=high, combine="average",
                      **coefficients(rng, 8, False, False))
    assert_same(fast, slow, rejection)


@pytest.mark.parametrize("rejection", REJECTIONS)
def test_one_normalisation_for_every_frame(rejection):
    """The same scale and offset for every frame: the kernel sorts the raw float32 values and
    normalises them after sorting, which must give the reference's results."""
    rng = np.random.default_rng(13)
    low, high = DEFAULT_THRESHOLDS.get(rejection, (0, 0))
    for n in (3, 10, 30, 100):
        stack = make_stack(rng, n, 2, 40, False)
        for scale, offset in ((1.7, -12.5), (0.3, 0.0)):
            kw = dict(weights=np.ones(n), rej_scale=np.full(n, scale), rej_offset=np.full(n, offset))
            fast, slow = both(stack, rejection=rejection, low=low, high=high, combine="average",
                              out_scale=kw["rej_scale"], out_offset=kw["rej_offset"], **kw)
            assert_same(fast, slow, f"n={n} scale={scale} offset={offset}")


def _band_kernel_outputs(stack, rejection, combine, scale, offset, raw):
    nf, rows, cols = stack.shape
    out = [np.empty((rows, cols), np.float32)] + [np.empty((rows, cols), np.uint16) for _ in range(3)]
    low, high = DEFAULT_THRESHOLDS.get(rejection, (0, 0))
    rs = np.full(nf, scale)
    ro = np.full(nf, offset)
    lam = kernels.esd_lambda_table(high, nf) if rejection == "esd" else np.empty(1)
    kernels._band_kernel(stack, kernels._REJ_CODE[rejection], float(low), float(high),
                         kernels._COMB_CODE[combine], np.ones(nf), rs, ro, rs, ro, True, raw,
                         kernels.sorting_network(nf), lam, kernels.CHUNK, *out)
    return out


@pytest.mark.parametrize("rejection", REJECTIONS)
def test_float32_sort_gives_the_float64_results_bit_for_bit(rejection):
    """Sorting raw float32 values and normalising afterwards (one normalisation for all frames)
    gives the same float64 values in the same order as normalising then sorting in float64:
    every output is identical, the master included (not just within rounding)."""
    rng = np.random.default_rng(14)
    for n, integer in ((5, True), (30, False), (30, True), (64, False)):
        stack = make_stack(rng, n, 2, kernels.CHUNK + 9, integer)
        for combine in ("average", "median"):
            for scale, offset in ((1.0, 0.0), (1.3, 7.25)):
                a = _band_kernel_outputs(stack, rejection, combine, scale, offset, raw=True)
                b = _band_kernel_outputs(stack, rejection, combine, scale, offset, raw=False)
                for x, y in zip(a, b):
                    np.testing.assert_array_equal(x, y, err_msg=f"n={n} {combine} {scale} {offset}")


@pytest.mark.parametrize("rejection", ["sigma", "mad", "winsorized_sigma"])
@pytest.mark.parametrize("setting", THRESHOLDS)
def test_batched_clipping_is_the_per_pixel_clipping(rejection, setting):
    """_clip_columns (a batch of pixels side by side) returns exactly _clip_monotone's windows
    and counts for every pixel, guard included (aggressive thresholds)."""
    rng = np.random.default_rng(zlib.crc32(f"batch/{rejection}/{setting}".encode()))
    low, high = THRESHOLDS[setting][rejection]
    code = kernels._REJ_CODE[rejection]
    for n in (3, 4, 7, 16, 30, 100):
        for integer in (False, True):
            stack = make_stack(rng, n, 1, 3 * kernels.BATCH + 5, integer)[:, 0, :]
            nb_max = kernels.BATCH
            wsb = np.empty((nb_max, 7, n + 1))
            st_ = np.empty((9, nb_max), np.int64)
            sf = np.empty((2, nb_max))
            for j0 in range(0, stack.shape[1], nb_max):
                nb = min(nb_max, stack.shape[1] - j0)
                expected = []
                for j in range(nb):
                    v = np.sort(stack[:, j0 + j][~np.isnan(stack[:, j0 + j])].astype(np.float64))
                    wsb[j, kernels.R, :v.size] = v
                    st_[kernels.N0, j] = v.size
                    ws = np.empty((7, n + 1))
                    ws[kernels.R, :v.size] = v
                    expected.append(kernels._clip_monotone(code, ws, v.size, float(low), float(high), np.nan)
                                    if v.size > 2 else (0, v.size, 0, 0))
                kernels._clip_columns(code, wsb, nb, st_, sf, float(low), float(high))
                got = [tuple(int(st_[r, j]) for r in (kernels.LO_, kernels.K_, kernels.NLO, kernels.NHI))
                       for j in range(nb)]
                assert got == [tuple(map(int, e)) for e in expected], f"n={n} integer={integer}"


def test_sorting_network_sorts():
    for n in range(0, 13):            # 0-1 principle: all binary inputs
        pairs = kernels.sorting_network(n)
        for bits in itertools.product((0, 1), repeat=n):
            x = list(bits)
            for i, j in pairs:
                if x[i] > x[j]:
                    x[i], x[j] = x[j], x[i]
            assert x == sorted(bits)
    rng = np.random.default_rng(13)
    for n in (13, 30, 64, 65, 100, 128):
        x = rng.integers(0, 20, n)
        y = x.copy()
        for i, j in kernels.sorting_network(n):
            if y[i] > y[j]:
                y[i], y[j] = y[j], y[i]
        assert np.array_equal(y, np.sort(x))


def test_esd_table_is_the_reference_value():
    for alpha in (0.05, 0.01, 0.3):
        lam = kernels.esd_lambda_table(alpha, 100)
        assert all(lam[n] == reference.esd_critical_value(n, alpha) for n in range(3, 101))


def test_input_layout_and_dtype():
    rng = np.random.default_rng(14)
    stack = make_stack(rng, 9, 3, 8, False)
    coef = coefficients(rng, 9, True, False)
    kw = dict(rejection="winsorized_sigma", low=3, high=3, combine="average", **coef)
    expected = kernels.integrate_band(stack, **kw)
    wide = np.zeros((9, 3, 16), np.float64)
    wide[:, :, ::2] = stack
    for variant in (stack.astype(np.float64), wide[:, :, ::2]):
        for a, b in zip(kernels.integrate_band(variant, **kw), expected):
            np.testing.assert_array_equal(a, b)


def test_two_threads():
    """The kernel releases the GIL; concurrent bands give the same results."""
    rng = np.random.default_rng(15)
    bands = [make_stack(rng, 20, 20, 300, False) for _ in range(2)]
    kw = dict(rejection="sigma", low=3, high=3, combine="average",
              **coefficients(rng, 20, False, False))
    expected = [kernels.integrate_band(b, **kw) for b in bands]
    results = [None, None]

    def work(i):
        results[i] = kernels.integrate_band(bands[i], **kw)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, exp in zip(results, expected):
        for a, b in zip(got, exp):
            np.testing.assert_array_equal(a, b)


# --- properties -------------------------------------------------------------------------------

def thresholds_for(method: str, draw) -> tuple[float, float]:
    if method == "minmax":
        return draw(st.integers(0, 4)), draw(st.integers(0, 4))
    if method == "esd":
        return draw(st.sampled_from([0.1, 0.3, 0.5])), draw(st.sampled_from([0.01, 0.05, 0.3]))
    if method == "percentile":
        return draw(st.sampled_from([0.01, 0.05, 0.2])), draw(st.sampled_from([0.01, 0.1]))
    if method == "trimmed":
        return draw(st.sampled_from([0.0, 0.1, 0.25, 0.4])), draw(st.sampled_from([0.0, 0.2, 0.49]))
    return draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])), draw(st.sampled_from([0.5, 1.5, 3.0]))


@st.composite
def tied_stacks(draw):
    """Small integer-valued stacks (many ties), NaN, integer normalisation and weights."""
    n = draw(st.integers(1, 30))
    cols = draw(st.integers(1, 4))
    values = draw(st.lists(st.integers(0, 12), min_size=n * cols, max_size=n * cols))
    stack = np.array(values, dtype=np.float32).reshape(n, 1, cols) * 10 + 100
    nan = draw(st.lists(st.booleans(), min_size=n * cols, max_size=n * cols))
    stack[np.array(nan).reshape(n, 1, cols) & (np.arange(n)[:, None, None] % 3 == 0)] = np.nan
    small = st.lists(st.integers(1, 3), min_size=n, max_size=n)
    offs = st.lists(st.integers(-20, 20), min_size=n, max_size=n)
    coef = dict(weights=np.array(draw(small), float), rej_scale=np.array(draw(small), float),
                rej_offset=np.array(draw(offs), float), out_scale=np.array(draw(small), float),
                out_offset=np.array(draw(offs), float))
    method = draw(st.sampled_from(REJECTIONS))
    low, high = thresholds_for(method, draw)
    return stack, dict(rejection=method, low=low, high=high,
                       combine=draw(st.sampled_from(COMBINES)), **coef)


@PROPERTY_SETTINGS
@given(case=tied_stacks(), data=st.data())
def test_permutation_invariance(case, data):
    stack, kw = case
    n = stack.shape[0]
    perm = np.array(data.draw(st.permutations(range(n))), dtype=int)
    permuted = {k: (v[perm] if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    for a, b in zip(kernels.integrate_band(stack, **kw),
                    kernels.integrate_band(stack[perm], **permuted)):
        np.testing.assert_array_equal(a, b)           # exact, master included


@PROPERTY_SETTINGS
@given(case=tied_stacks())
def test_counts_add_up_and_guard_floor(case):
    stack, kw = case
    master, lo, hi, contributing = kernels.integrate_band(stack, **kw)
    n_valid = (~np.isnan(stack)).sum(axis=0)
    assert np.array_equal(lo.astype(int) + hi + contributing, n_valid)
    assert np.array_equal(np.isnan(master), n_valid == 0)
    if kw["rejection"] == "minmax":
        floor = np.minimum(n_valid, 1)
    else:
        floor = np.where(n_valid <= 2, n_valid, [[min_keep(int(v)) for v in r] for r in n_valid])
    assert (contributing >= floor).all()


CLEAN_THRESHOLDS = {   # wide enough that a clean stack never loses a value
    "none": (0, 0), "minmax": (0, 0), "percentile": (0.5, 0.5), "sigma": (10, 10),
    "mad": (25, 25), "averaged_sigma": (10, 10), "winsorized_sigma": (25, 25),
    "linear_fit": (100, 100), "esd": (0.3, 1e-9), "trimmed": (0, 0),
}


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(10, 60), method=st.sampled_from(REJECTIONS))
def test_clean_gaussian_stack_gives_its_mean(seed, n, method):
    rng = np.random.default_rng(seed)
    stack = rng.normal(1000.0, 5.0, (n, 2, 7)).astype(np.float32)
    low, high = CLEAN_THRESHOLDS[method]
    master, lo, hi, contributing = kernels.integrate_band(
        stack, rejection=method, low=low, high=high, combine="average",
        **coefficients(rng, n, False, False))
    assert not lo.any() and not hi.any() and (contributing == n).all()
    np.testing.assert_allclose(master, stack.astype(np.float64).mean(axis=0), rtol=1e-6)


@st.composite
def noisy_stacks(draw):
    """Continuous data with outliers and NaN (no exact ties at a threshold)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(3, 40))
    stack = rng.normal(1000.0, 10.0, (n, 1, 6))
    out = rng.random(stack.shape) < draw(st.sampled_from([0.0, 0.1, 0.3]))
    stack[out] += rng.uniform(-300, 300, out.sum())
    stack[rng.random(stack.shape) < 0.1] = np.nan
    return stack.astype(np.float32), rng


def rejection_maps(stack, method, low, high, rej_scale, rej_offset):
    n = stack.shape[0]
    _, lo, hi, c = kernels.integrate_band(
        stack, rejection=method, low=low, high=high, combine="average", weights=np.ones(n),
        rej_scale=rej_scale, rej_offset=rej_offset, out_scale=np.ones(n), out_offset=np.zeros(n))
    return lo, hi, c


@PROPERTY_SETTINGS
@given(case=noisy_stacks(), shift=st.floats(-1e4, 1e4),
       method=st.sampled_from(["sigma", "mad", "winsorized_sigma", "linear_fit", "esd",
                               "minmax", "none"]))
def test_translation_invariance(case, shift, method):
    stack, rng = case
    n = stack.shape[0]
    low, high = DEFAULT_THRESHOLDS.get(method, (0, 0))
    scale = rng.uniform(0.9, 1.1, n)          # any per-frame normalisation, then a shift
    offset = rng.uniform(-5, 5, n)
    base = rejection_maps(stack, method, low, high, scale, offset)
    moved = rejection_maps(stack, method, low, high, scale, offset + shift)
    for a, b in zip(base, moved):
        np.testing.assert_array_equal(a, b)


@PROPERTY_SETTINGS
@given(case=noisy_stacks(), factor=st.floats(0.01, 100), method=st.sampled_from(REJECTIONS))
def test_scale_invariance(case, factor, method):
    stack, rng = case
    n = stack.shape[0]
    low, high = DEFAULT_THRESHOLDS.get(method, (0, 0))
    scale = rng.uniform(0.9, 1.1, n)
    offset = rng.uniform(-5, 5, n)
    base = rejection_maps(stack, method, low, high, scale, offset)
    scaled = rejection_maps(stack, method, low, high, scale * factor, offset * factor)
    for a, b in zip(base, scaled):
        np.testing.assert_array_equal(a, b)


def test_percentile_and_averaged_sigma_are_not_translation_invariant():
    """Section 7: their thresholds scale with the level, so a shift changes the rejection."""
    rng = np.random.default_rng(16)
    n = 8
    level = np.linspace(200.0, 3000.0, 200)            # levels vary along the row
    stack = (level + rng.normal(0.0, 10.0, (n, 1, 200))).astype(np.float32)
    stack[0] += 60 + 0.15 * level
    for method, low, high in (("percentile", 0.1, 0.1), ("averaged_sigma", 3, 3)):
        base = rejection_maps(stack, method, low, high, np.ones(n), np.zeros(n))
        moved = rejection_maps(stack, method, low, high, np.ones(n), np.full(n, 5000.0))
        assert base[1].sum() != moved[1].sum(), method


@pytest.mark.parametrize("rejection", ["percentile", "sigma", "averaged_sigma"])
@pytest.mark.parametrize("setting", THRESHOLDS)
def test_columns_side_by_side_give_the_per_pixel_results(rejection, setting):
    """Percentile, sigma and averaged sigma on equal weights, averaged, take a chunk of columns
    side by side (_clip_chunk, and _sorted_row_and_gain for averaged sigma's row gain); every
    pixel's mean and counts are the per-pixel path's, bit for bit, including the columns handed
    back to it (missing values, the guard choosing between candidates)."""
    rng = np.random.default_rng(zlib.crc32(f"side-by-side/{rejection}/{setting}".encode()))
    low, high = (float(t) for t in THRESHOLDS[setting][rejection])
    code = kernels._REJ_CODE[rejection]
    cases = ((False, 1.0, 0.0, False), (True, 1.0, 0.0, True), (False, 0.5, 3.0, True), (True, 0.5, 3.0, False))
    for n in (3, 4, 5, 6, 9, 16, 30):
        for integer, scale, offset, raw in cases:
            stack = make_stack(rng, n, 3, 2 * kernels.CHUNK + 37, integer).astype(np.float32)
            if not integer:
                stack[:, 1] = np.abs(stack[:, 1])   # positive centres, so percentile and averaged sigma clip
            outputs = []
            for side_by_side in (True, False):
                master = np.empty(stack.shape[1:], np.float32)
                lo, hi, kept = (np.empty(stack.shape[1:], np.uint16) for _ in range(3))
                norm = (np.full(n, scale), np.full(n, offset))
                kernels._band_kernel(stack, code, low, high, kernels.C_AVERAGE, np.full(n, 0.3), *norm, *norm, True,
                                     raw, kernels.sorting_network(n), np.empty(1), kernels.CHUNK, master, lo, hi,
                                     kept, side_by_side)
                outputs.append((master, lo, hi, kept))
            for x, y, name in zip(*outputs, ("master", "rejected low", "rejected high", "kept")):
                np.testing.assert_array_equal(x, y, err_msg=f"{name}: n={n} integer={integer} scale={scale} raw={raw}")
            assert outputs[0][1].any() or outputs[0][2].any() or n <= 3 or rejection != "percentile"
