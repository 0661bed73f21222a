"""The rejection registry: one entry per algorithm, and every table about them read from it."""
from __future__ import annotations

import argparse
import ast
import math
import re
import zlib

import numpy as np
import pytest
from notebook_support import REPO_ROOT

from astrocal_widgets import cli
from astrocal_widgets.integrate import (MIN_FRAMES, REJECTION_ALGORITHMS, REJECTIONS, integrate, kernels,
                                        master_header, reference, rejection_algorithm, rejection_names)
from astrocal_widgets.integrate import combine, registry, siril
from astrocal_widgets.integrate.registry import ThresholdRange

NAMES = rejection_names()


def _stack(rng: np.random.Generator, n: int, integer: bool) -> np.ndarray:
    """Noise with outliers, NaN (an all-NaN pixel, pixels with 1 and 2 values) and, integer, many ties."""
    x = (rng.integers(95, 106, (n, 3, 7)).astype(float) if integer else rng.normal(1000.0, 10.0, (n, 3, 7)))
    out = rng.random(x.shape) < 0.1
    x[out] += rng.choice([-1.0, 1.0], out.sum()) * np.round(rng.uniform(30, 500, out.sum()))
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:, 0, 0] = np.nan
    x[1:, 0, 1] = np.nan
    x[2:, 0, 2] = np.nan
    return x.astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_has_a_reference_and_a_kernel_that_agree(name):
    """Random data, NaN and ties, plain and normalised: identical rejection maps, masters to float32."""
    algorithm = REJECTION_ALGORITHMS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for n in (3, 5, 8, 13, 30):
        for integer in (False, True):
            stack = _stack(rng, n, integer)
            w = rng.integers(1, 3, n).astype(float) if integer else rng.uniform(0.5, 2, n)
            kw = dict(rejection=name, low=algorithm.defaults[0], high=algorithm.defaults[1], combine="average",
                      weights=w, rej_scale=np.ones(n), rej_offset=rng.integers(-3, 4, n).astype(float),
                      out_scale=np.ones(n), out_offset=np.zeros(n))
            fast = kernels.integrate_band(stack, **kw)
            slow = reference.integrate_band(stack, **kw)
            for a, b in zip(fast[1:], slow[1:]):
                np.testing.assert_array_equal(a, b, err_msg=f"{name} n={n} integer={integer}")
            np.testing.assert_allclose(fast[0], slow[0], rtol=1e-6, err_msg=f"{name} n={n}")
            n_valid = (~np.isnan(stack)).sum(axis=0)
            assert np.array_equal(fast[1].astype(int) + fast[2] + fast[3], n_valid)


def test_entries_are_consistent():
    assert tuple(REJECTION_ALGORITHMS) == NAMES and len(set(NAMES)) == len(NAMES)
    codes = [a.kernel_code for a in REJECTION_ALGORITHMS.values()]
    assert len(set(codes)) == len(codes)                        # the kernel can tell them apart
    aliases = [alias for a in REJECTION_ALGORITHMS.values() for alias in a.aliases]
    assert len(set(aliases)) == len(aliases) and not set(aliases) & set(NAMES)
    for a in REJECTION_ALGORITHMS.values():
        assert a.reference is getattr(reference, f"reject_{a.name}")
        assert a.summary.endswith(".") and "\n" not in a.summary
        assert a.header_code and a.min_frames >= 1
        assert a.check_thresholds(*a.defaults) == tuple(float(t) for t in a.defaults)
        for alias in a.aliases + (a.name,):
            assert rejection_algorithm(alias) is a
    with pytest.raises(ValueError, match="unknown rejection 'kappa'; choose one of none, minmax"):
        rejection_algorithm("kappa")


def test_the_old_tables_are_read_from_the_registry():
    assert REJECTIONS == ("auto",) + NAMES
    assert reference.REJECTIONS == NAMES and kernels.REJECTIONS == NAMES
    assert MIN_FRAMES == {a.name: a.min_frames for a in REJECTION_ALGORITHMS.values()}
    expected = {a.name: a.defaults for a in REJECTION_ALGORITHMS.values() if a.threshold_names}
    assert dict(reference.DEFAULT_THRESHOLDS) == dict(kernels.DEFAULT_THRESHOLDS) == expected
    assert kernels._REJ_CODE == {a.name: a.kernel_code for a in REJECTION_ALGORITHMS.values()}
    assert combine._THRESHOLD_ALIASES == {a.name: a.threshold_names for a in REJECTION_ALGORITHMS.values()
                                          if a.threshold_names}


def _choices(parser: argparse.ArgumentParser, command: str) -> tuple:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return tuple(next(a for a in sub._actions if "--rejection" in a.option_strings).choices)


def test_cli_choices_are_the_registry_names():
    parser = cli.build_parser()
    for command in ("calibrate", "integrate"):
        assert _choices(parser, command) == ("auto",) + NAMES
    assert cli._thresholds("esd", 0.2, None) == (0.2, 0.05)      # the one not given: the registry's default
    epilog = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["integrate"].epilog
    assert all(f"  {a.name}: {a.summary}" in epilog for a in REJECTION_ALGORITHMS.values())


def test_widget_menu_and_defaults_are_the_registry(tmp_path):
    from astrocal_widgets.widgets import CalibrationDashboard
    from astrocal_widgets.widgets.master_steps import MasterPanel

    dashboard = CalibrationDashboard.simulated(tmp_path / "night")
    panel = MasterPanel(dashboard.state, "bias", lambda *args: None)
    assert tuple(panel.rejection.options) == ("auto",) + NAMES
    assert len(panel.selected) >= max(MIN_FRAMES.values())  # every algorithm runs as itself
    for name in NAMES:
        panel.rejection.value = name
        assert (panel.low.value, panel.high.value) == tuple(float(t) for t in REJECTION_ALGORITHMS[name].defaults)


def test_siril_runner_lists_the_registry_siril_codes():
    assert siril.SIRIL_REJECTION_CODES == {a.name: a.siril_code for a in REJECTION_ALGORITHMS.values()
                                           if a.siril_code}
    assert set(siril.SIRIL_REJECTION_CODES) <= set(NAMES)
    assert len(set(siril.SIRIL_REJECTION_CODES.values())) == len(siril.SIRIL_REJECTION_CODES)


@pytest.mark.parametrize("name", NAMES)
def test_master_header_writes_the_registry_codes(name):
    rng = np.random.default_rng(3)
    ds = integrate(rng.normal(100, 3, (6, 4, 5)).astype(np.float32), rejection=name).compute()
    h = master_header(ds.attrs)
    assert h["REJECT"] == name and h["REJCODE"] == REJECTION_ALGORITHMS[name].header_code


def _outside(r: ThresholdRange) -> list[float]:
    """Values the range refuses: below its minimum, at an open end, above its maximum, not whole, NaN."""
    bad = [r.minimum - 1, math.nan, math.inf]
    if not r.include_minimum:
        bad.append(r.minimum)
    if math.isfinite(r.maximum):
        bad.append(r.maximum + 1)
        if not r.include_maximum:
            bad.append(r.maximum)
    if r.whole:
        bad.append(r.minimum + 0.5)
    return bad


@pytest.mark.parametrize("name", NAMES)
def test_thresholds_outside_the_valid_range_are_clear_errors(name):
    """One rule: integrate, the kernel and the reference refuse the same values with the same message."""
    algorithm = REJECTION_ALGORITHMS[name]
    low0, high0 = algorithm.defaults
    cube = np.random.default_rng(4).normal(100, 3, (8, 2, 3)).astype(np.float32)
    band = dict(combine="average", weights=np.ones(8), rej_scale=np.ones(8), rej_offset=np.zeros(8),
                out_scale=np.ones(8), out_offset=np.zeros(8))
    cases = [(bad, high0) for bad in _outside(algorithm.low_range)]
    cases += [(low0, bad) for bad in _outside(algorithm.high_range)]
    for low, high in cases:
        text = re.escape(f"{name}: low and high are {algorithm.threshold_meaning}; low must be "
                         f"{algorithm.low_range}, high {algorithm.high_range}")
        with pytest.raises(ValueError, match=text):
            integrate(cube, rejection=name, low=low, high=high)
        for implementation in (kernels, reference):
            with pytest.raises(ValueError, match=text):
                implementation.integrate_band(cube, rejection=name, low=low, high=high, **band)


def test_threshold_range_text():
    assert str(ThresholdRange()) == ">= 0"
    assert str(ThresholdRange(whole=True)) == "a whole number >= 0"
    assert str(ThresholdRange(0, 1, include_minimum=False)) == "in (0, 1)"
    assert str(ThresholdRange(0, 0.5)) == "in [0, 0.5)"
    assert ThresholdRange(0, 0.5).contains(0) and not ThresholdRange(0, 0.5).contains(0.5)


def test_every_algorithm_page_is_in_the_algorithms_index():
    index = (REPO_ROOT / "docs" / "algorithms.md").read_text()
    for a in REJECTION_ALGORITHMS.values():
        if a.name == "none":
            continue
        assert a.docs_page, a.name
        assert (REPO_ROOT / "docs" / a.docs_page).is_file(), a.docs_page
        assert f"\n{a.docs_page.removesuffix('.md')}\n" in index, a.docs_page


def test_one_mad_to_sigma_constant():
    """The factor 1.4826 is defined once (integrate.estimators) and imported everywhere else."""
    from astrocal_widgets.integrate.estimators import MAD_TO_SIGMA
    from astrocal_widgets.plots import _common
    from astrocal_widgets.quality import stats

    assert reference.MAD_TO_SIGMA is stats.MAD_TO_SIGMA is _common.MAD_TO_SIGMA is MAD_TO_SIGMA
    defined = []
    for path in (REPO_ROOT / "astrocal_widgets").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, float) and (
                    round(node.value, 4) == 1.4826 or round(node.value, 4) == 0.6745):
                defined.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert defined == ["astrocal_widgets/integrate/estimators.py:49"]


def test_registry_module_is_what_the_package_exports():
    assert registry.REJECTION_ALGORITHMS is REJECTION_ALGORITHMS
    assert registry.rejection_algorithm is rejection_algorithm
