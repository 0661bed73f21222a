"""The trimmed mean (rejection="trimmed"): hand-computed counts, the guard, NaN and ties, kernel = reference.

The expected counts come from the definition (floor(fraction x n + 0.001) values at each end, IRAF's
minmax arithmetic, capped so that max(3, ceil(n/2)) values stay), never from the implementation.
"""
from __future__ import annotations

import numpy as np
import pytest

from astrocal_widgets.integrate import integrate, kernels, master_header, reference, rejection_algorithm
from astrocal_widgets.integrate.reference import reject_stack

LONE = [1000, 1002, 998, 1001, 999, 1003, 997, 1000, 1001, 5000]


def counts(values, low, high):
    lo, hi = reject_stack(np.asarray(values, float), "trimmed", low, high)
    return int(lo.sum()), int(hi.sum())


def band(values, low, high, **kw):
    """Kernel and reference on one pixel stack (N, 1, 1): -> [(master, n low, n high, kept)] * 2."""
    stack = np.asarray(values, np.float32).reshape(-1, 1, 1)
    n = stack.shape[0]
    args = dict(rejection="trimmed", low=low, high=high, combine="average", weights=np.ones(n),
                rej_scale=np.ones(n), rej_offset=np.zeros(n), out_scale=np.ones(n), out_offset=np.zeros(n))
    args.update(kw)
    return [tuple(float(a[0, 0]) for a in impl.integrate_band(stack, **args)) for impl in (kernels, reference)]


def test_drops_the_fractions_of_each_end():
    lo, hi = reject_stack(np.array(LONE, float), "trimmed", 0.1, 0.1)
    assert np.array(LONE)[lo].tolist() == [997] and np.array(LONE)[hi].tolist() == [5000]
    fast, slow = band(LONE, 0.1, 0.1)
    kept = sorted(LONE)[1:-1]
    assert fast == slow == (pytest.approx(np.mean(kept)), 1, 1, 8)
    assert counts(LONE, 0.2, 0.0) == (2, 0)
    assert counts(range(9), 0.1, 0.1) == (0, 0)            # floor(0.9) = 0: nothing below 10 values
    assert counts(range(20), 0.1, 0.25) == (2, 5)


def test_fraction_times_n_counts_as_the_whole_number_it_stands_for():
    assert 0.29 * 100 < 29                                  # floating point: 28.999999999999996
    assert counts(range(100), 0.29, 0.0) == (29, 0)         # + 0.001 as IRAF: 29, not 28
    assert counts(range(100), 0.0, 0.29) == (0, 29)
    assert counts(range(10), 0.0999, 0.0) == (1, 0)         # 0.999 + 0.001 reaches 1, as IRAF's int()


def test_fractions_apply_to_the_valid_values_only():
    values = LONE + [np.nan] * 10                           # 20 frames, 10 valid: 10 % is one value
    assert counts(values, 0.1, 0.1) == (1, 1)
    fast, slow = band(values, 0.1, 0.1)
    assert fast == slow and fast[1:] == (1, 1, 8)


def test_the_guard_caps_the_counts_larger_count_first():
    # n = 4 keeps 3: 0.25/0.25 would drop 1 + 1; the high count (equal) gives up first
    assert counts([1, 2, 3, 4], 0.25, 0.25) == (1, 0)
    # n = 10 keeps 5: 0.4/0.45 would drop 4 + 4 -> 4 + 3 -> 3 + 3 -> 3 + 2
    assert counts(range(10), 0.4, 0.45) == (3, 2)
    # n = 40 keeps 20: 0.1/0.45 -> 4 + 18 = 22 > 20: the high count gives up 2
    assert counts(range(40), 0.1, 0.45) == (4, 16)
    assert counts([5, 1, 9], 0.49, 0.49) == (0, 0)          # 3 values: the guard keeps all three
    assert counts([5.0, 1.0], 0.4, 0.4) == (0, 0)           # 2 values or fewer: no rejection


def test_ties_and_nan_kernel_equals_reference():
    """Integer-valued stacks (many exact ties), NaN, weights and normalisation: identical maps."""
    rng = np.random.default_rng(21)
    for n in (3, 4, 7, 10, 21, 50):
        for low, high in ((0.1, 0.1), (0.25, 0.0), (0.4, 0.45), (0.0, 0.3)):
            stack = rng.integers(95, 100, (n, 4, 9)).astype(np.float32)
            stack[rng.random(stack.shape) < 0.15] = np.nan
            stack[:, 0, 0] = np.nan
            kw = dict(rejection="trimmed", low=low, high=high, combine="average",
                      weights=rng.integers(1, 3, n).astype(float), rej_scale=np.ones(n),
                      rej_offset=rng.integers(-2, 3, n).astype(float), out_scale=np.ones(n), out_offset=np.zeros(n))
            fast = kernels.integrate_band(stack, **kw)
            slow = reference.integrate_band(stack, **kw)
            for a, b in zip(fast[1:], slow[1:]):
                np.testing.assert_array_equal(a, b, err_msg=f"n={n} {low}/{high}")
            np.testing.assert_allclose(fast[0], slow[0], rtol=1e-6)
            n_valid = (~np.isnan(stack)).sum(axis=0)
            assert np.array_equal(fast[1].astype(int) + fast[2] + fast[3], n_valid)


def test_the_same_frames_are_dropped_whatever_their_order():
    """Equal values: the canonical order (value, output value, weight) picks the dropped one."""
    values = np.array([7, 7, 7, 7, 1, 9, 7, 7, 7, 7], np.float32).reshape(-1, 1, 1)
    out_offset = np.arange(10, dtype=float)                 # the tied 7s differ in output value
    results = set()
    for perm in (np.arange(10), np.arange(10)[::-1], np.random.default_rng(2).permutation(10)):
        m, lo, hi, kept = kernels.integrate_band(
            values[perm], rejection="trimmed", low=0.2, high=0.2, combine="average", weights=np.ones(10),
            rej_scale=np.ones(10), rej_offset=np.zeros(10), out_scale=np.ones(10), out_offset=out_offset[perm])
        results.add((float(m[0, 0]), int(lo[0, 0]), int(hi[0, 0])))
    assert len(results) == 1 and next(iter(results))[1:] == (2, 2)


def test_integrate_with_trimmed_records_it_in_the_header():
    rng = np.random.default_rng(5)
    cube = rng.normal(1000, 5, (20, 6, 7)).astype(np.float32)
    cube[3, 2, 2] = 60000                                   # a cosmic ray
    ds = integrate(cube, rejection="trimmed", trim_low=0.05, trim_high=0.1).compute()
    assert (ds.attrs["rejection"], ds.attrs["low"], ds.attrs["high"]) == ("trimmed", 0.05, 0.1)
    assert (ds.rejected_low.values == 1).all() and (ds.rejected_high.values == 2).all()
    assert ds.master.values[2, 2] < 1010                    # the cosmic ray is among the dropped
    h = master_header(ds.attrs)
    assert (h["REJECT"], h["REJCODE"]) == ("trimmed", "trimmed")
    defaults = integrate(cube, rejection="trimmed").compute().attrs
    assert (defaults["low"], defaults["high"]) == (0.1, 0.1)


def test_fractions_outside_zero_to_a_half_are_refused():
    cube = np.zeros((6, 2, 2), np.float32)
    for low, high in ((0.5, 0.1), (0.1, 0.7), (-0.1, 0.1)):
        with pytest.raises(ValueError, match=r"trimmed: low and high are fractions.*in \[0, 0\.5\)"):
            integrate(cube, rejection="trimmed", low=low, high=high)
    assert rejection_algorithm("trimmed_mean").name == "trimmed"
    assert rejection_algorithm("trimmed").iraf_code == "minmax" and rejection_algorithm("trimmed").siril_code is None
