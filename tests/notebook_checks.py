"""What the theory notebooks' "Measured against the truth:" lines must say, figure by figure.

Used by tests/test_notebooks.py on the executed notebooks: each check parses the printed figures and
compares them with the simulator's truth, so a notebook that measures badly fails.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

_NUMBER = r"([-+]?\d+(?:\.\d+)?)"


def measured_lines(text: str) -> list[str]:
    """The lines a notebook printed that start with 'Measured against the truth:'."""
    return [line for line in text.splitlines() if line.startswith("Measured against the truth:")]


def _figure(lines: list[str], pattern: str) -> tuple[float, ...]:
    for line in lines:
        found = re.search(pattern, line)
        if found:
            return tuple(float(g) for g in found.groups())
    raise AssertionError(f"no figure matching {pattern!r} in {lines}")


def check_darks(lines):
    doubling, _, truth = _figure(lines, rf"doubling temperature {_NUMBER} ± {_NUMBER} °C \(truth {_NUMBER} °C\)")
    assert doubling == pytest.approx(truth, rel=0.05)
    rate, truth = _figure(lines, rf"dark current at -?\d+ °C {_NUMBER} e-/s \(truth {_NUMBER} e-/s\)")
    assert rate == pytest.approx(truth, rel=0.05)
    recall, precision = _figure(lines, rf"hot pixels \(k_hot=150\) recall {_NUMBER} %, precision {_NUMBER} %")
    assert recall >= 95 and precision >= 95
    k, k_true = _figure(lines, rf"optimised dark scale {_NUMBER} \(truth {_NUMBER}\)")
    assert k == pytest.approx(k_true, rel=0.02)
    optimised, exposure_scaled = _figure(lines, rf"mean error {_NUMBER} ADU optimised, {_NUMBER} ADU exposure-scaled")
    assert abs(optimised) < 0.5 < abs(exposure_scaled)
    hot_opt, hot_exp = _figure(lines, rf"hot pixel rms error {_NUMBER} ADU optimised, {_NUMBER} ADU exposure-scaled")
    assert hot_opt < 0.2 * hot_exp


def check_flats(lines):
    right, no_dark_flat, dim, no_flat, true_vignetting = _figure(
        lines, rf"residual gradient {_NUMBER} % with the right flat, {_NUMBER} % without dark flat, {_NUMBER} % for a "
               rf"dim flat without dark flat, {_NUMBER} % without a flat \(the true flat's own: {_NUMBER} %\)")
    assert abs(right) < 0.15 and dim < no_dark_flat < -0.1 and dim < -0.8
    assert no_flat == pytest.approx(true_vignetting, abs=0.3) and true_vignetting < -10
    wrong_filter, long_dark = _figure(
        lines, rf"worst block {_NUMBER} % with the wrong filter's flat, {_NUMBER} % with a 300 s dark")
    assert abs(wrong_filter) > 1.0 and long_dark > 0.5
    measured = _figure(
        lines, rf"colour flat levels R {_NUMBER} G {_NUMBER} B {_NUMBER} \(truth R {_NUMBER} G {_NUMBER} B {_NUMBER}\)")
    np.testing.assert_allclose(measured[:3], measured[3:], atol=0.01)
    per_colour, one_factor, truth = _figure(
        lines, rf"calibrated sky R/G {_NUMBER} per colour, {_NUMBER} with one factor \(truth {_NUMBER}\)")
    assert per_colour == pytest.approx(truth, abs=0.01) and abs(one_factor - truth) > 0.1
    exposure, median = _figure(lines, rf"half range {_NUMBER} s predicted; .* median of {_NUMBER} %")
    assert median == pytest.approx(50, abs=0.5) and exposure > 0


def check_camera(lines):
    for name, unit in (("gain", "e-/ADU"), ("read noise", "e-"), ("dark current", "e-/s")):
        value, err, *_, truth = _figure(lines, rf"{name} {_NUMBER} ± {_NUMBER} {unit}[^(]*\(truth {_NUMBER}\)")
        assert value == pytest.approx(truth, rel=0.05), name
        assert abs(value - truth) < 5 * err + 0.01 * truth, name
    ptc, truth = _figure(lines, rf"PTC gain {_NUMBER} e-/ADU \(truth {_NUMBER}\)")
    assert ptc == pytest.approx(truth, rel=0.03)
    doubling, _, truth = _figure(lines, rf"doubling temperature {_NUMBER} ± {_NUMBER} °C \(truth {_NUMBER}\)")
    assert doubling == pytest.approx(truth, rel=0.05)


