"""Noise curves: the photon transfer curve and the master noise against the number of frames."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ._common import as_array, new_figure

__all__ = ["photon_transfer_curve", "master_noise_curve", "fit_photon_transfer", "MEDIAN_NOISE_FACTOR"]

#: Noise of a median of N Gaussian values relative to their mean, for large N: sqrt(pi / 2).
MEDIAN_NOISE_FACTOR = math.sqrt(math.pi / 2)


def fit_photon_transfer(signal: np.ndarray, variance: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Fit ``variance = signal / gain + read_noise_adu**2`` below full well.

    Only points up to the largest variance (in signal order) are used: past full well the variance
    drops. The fit is least squares weighted by ``1 / variance`` (relative errors, as the curve is
    read on log-log axes).

    Returns
    -------
    gain : float
        e-/ADU.
    read_noise_adu : float
        ADU (0 when the intercept is negative).
    used : ndarray of bool
        The points used by the fit.
    """
    signal = np.asarray(signal, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    valid = np.isfinite(signal) & np.isfinite(variance) & (signal > 0) & (variance > 0)
    order = np.argsort(np.where(valid, signal, np.inf))
    used = np.zeros(signal.shape, bool)
    n_valid = int(valid.sum())
    if n_valid < 2:
        raise ValueError("photon transfer fit needs at least two points with positive signal and variance")
    ordered = order[:n_valid]
    peak = int(np.argmax(variance[ordered]))
    used[ordered[: max(peak + 1, 2)]] = True
    weights = 1.0 / variance[used]
    slope, intercept = np.polyfit(signal[used], variance[used], 1, w=weights)
    if not slope > 0:
        raise ValueError("photon transfer fit gave a non-positive slope: variance does not grow with signal")
    return 1.0 / slope, math.sqrt(max(intercept, 0.0)), used


def photon_transfer_curve(
    signal: Any,
    variance: Any,
    *,
    gain: float | None = None,
    read_noise: float | None = None,
    title: str | None = None,
) -> Figure:
    """The photon transfer curve: temporal variance against mean signal on log-log axes.

    Parameters
    ----------
    signal : array-like
        Mean bias-subtracted signal of each flat pair (ADU).
    variance : array-like
        Temporal variance at that signal (ADU^2), e.g. ``var(flat1 - flat2) / 2``.
    gain : float, optional
        System gain in e-/ADU. When omitted, fitted (see :func:`fit_photon_transfer`) together with
        the read noise; when given, only the read noise is fitted unless ``read_noise`` is given too.
    read_noise : float, optional
        Read noise in electrons (used only with ``gain``).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        The measured points, the model ``variance = signal / gain + (read_noise / gain)**2`` with
        its shot-noise (slope 1) and read-noise (flat) asymptotes, and the gain in the legend.
    """
    s = as_array(signal).astype(np.float64).ravel()
    v = as_array(variance).astype(np.float64).ravel()
    if s.shape != v.shape:
        raise ValueError(f"signal and variance differ in length: {s.size} and {v.size}")
    positive = np.isfinite(s) & np.isfinite(v) & (s > 0) & (v > 0)
    if gain is None:
        gain, rn_adu, used = fit_photon_transfer(s, v)
        how = "fitted"
    else:
        used = positive.copy()
        if read_noise is not None:
            rn_adu = read_noise / gain
        else:
            residual = v[used] - s[used] / gain
            rn_adu = math.sqrt(max(float(np.median(residual)), 0.0)) if residual.size else 0.0
        how = "given"
    read_noise_e = rn_adu * gain

    fig = new_figure((7.0, 5.0))
    ax = fig.add_subplot()
    ax.loglog(s[used], v[used], "o", color="tab:blue", ms=5, label="measured")
    if (positive & ~used).any():
        ax.loglog(s[positive & ~used], v[positive & ~used], "o", mfc="none", color="tab:blue", ms=5,
                  label="not fitted (past full well)")
    lo, hi = s[positive].min() / 2, s[positive].max() * 2
    grid = np.geomspace(lo, hi, 200)
    ax.loglog(grid, grid / gain + rn_adu ** 2, color="tab:red", lw=1.5,
              label=f"gain = {gain:.3g} e\u207b/ADU ({how}), read noise = {read_noise_e:.3g} e\u207b")
    ax.loglog(grid, grid / gain, color="tab:red", lw=0.8, ls="--", label="shot noise (slope 1)")
    if rn_adu > 0:
        ax.axhline(rn_adu ** 2, color="tab:gray", lw=0.8, ls=":", label=f"read noise\u00b2 = {rn_adu ** 2:.3g} ADU\u00b2")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("mean signal (ADU)")
    ax.set_ylabel("variance (ADU\u00b2)")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title if title is not None else f"photon transfer curve: gain {gain:.3g} e\u207b/ADU")
    return fig


def master_noise_curve(
    sigma: float,
    *,
    n_max: int = 100,
    combine: str = "average",
    light_noise: float | None = None,
    n_current: int | None = None,
    recommended: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Noise a master adds against the number of frames integrated.

    Parameters
    ----------
    sigma : float
        Noise of one calibration frame (ADU).
    n_max : int, default 100
        Largest frame count shown.
    combine : {'average', 'median'}, default 'average'
        The master's noise is ``sigma / sqrt(N)`` for an average and ``sqrt(pi / 2) sigma / sqrt(N)``
        (about 1.25 sigma / sqrt(N)) for a median.
    light_noise : float, optional
        The light's own noise (ADU): a horizontal line, and the light's noise after calibration,
        ``sqrt(light_noise**2 + master_noise**2)``, as a second curve.
    n_current : int, optional
        The frame count in use: marked, with the noise it adds.
    recommended : (float, float), optional
        Recommended range of frame counts, shaded.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if combine not in ("average", "median"):
        raise ValueError(f"combine must be 'average' or 'median', not {combine!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    factor = 1.0 if combine == "average" else MEDIAN_NOISE_FACTOR
    n_max = max(int(n_max), 2, int(n_current or 0), int(math.ceil(recommended[1])) if recommended else 0)
    n = np.arange(1, n_max + 1)
    noise = factor * sigma / np.sqrt(n)

    fig = new_figure((7.0, 4.5))
    ax = fig.add_subplot()
    if recommended is not None:
        ax.axvspan(recommended[0], recommended[1], color="tab:green", alpha=0.12,
                   label=f"recommended: {recommended[0]:g} to {recommended[1]:g} frames")
    formula = "\u03c3/\u221aN" if combine == "average" else "1.25 \u03c3/\u221aN"
    ax.plot(n, noise, color="tab:blue", lw=1.8, label=f"master noise, {combine} ({formula}, \u03c3 = {sigma:.3g})")
    if light_noise is not None:
        ax.axhline(light_noise, color="tab:orange", lw=1.2, ls="--", label=f"light's own noise {light_noise:.3g}")
        ax.plot(n, np.hypot(light_noise, noise), color="tab:orange", lw=1.2,
                label="light after calibration (in quadrature)")
    if n_current is not None:
        current = factor * sigma / math.sqrt(n_current)
        text = f"N = {n_current}: adds {current:.3g} ADU"
        if light_noise:
            text += f" (+{np.hypot(light_noise, current) / light_noise - 1:.1%} to the light's noise)"
        ax.axvline(n_current, color="tab:red", lw=1, ls=":")
        ax.plot([n_current], [current], "o", color="tab:red", ms=7, label=text)
    ax.set_xlim(0, n_max + 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("number of frames N")
    ax.set_ylabel("noise (ADU)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center right", fontsize="small")
    ax.set_title(title if title is not None else f"noise added by a master ({combine})")
    return fig


def radial_profile(profile: Any, *, channel_levels: dict[str, float] | None = None,
                   title: str | None = None) -> Figure:
    """A flat's vignetting: its level in rings around the centre, with the spread within each ring.

    Parameters
    ----------
    profile : pandas.DataFrame
        From :func:`astrocal_widgets.quality.radial_profile`: ``radius``, ``level`` and ``sigma``
        (normalised to the centre by default).
    channel_levels : dict, optional
        Per-channel levels of a colour flat (:func:`astrocal_widgets.quality.channel_levels`),
        written in the legend.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    for column in ("radius", "level", "sigma"):
        if column not in profile:
            raise ValueError(f"radial_profile: the profile has no {column!r} column")
    radius = np.asarray(profile["radius"], float)
    level = np.asarray(profile["level"], float)
    spread = np.asarray(profile["sigma"], float)
    fig = new_figure((7.0, 4.0))
    ax = fig.add_subplot()
    ax.fill_between(radius, level - spread, level + spread, color="tab:blue", alpha=0.18,
                    label="\u00b1 1 robust \u03c3 within the ring (dust, gradients)")
    ax.plot(radius, level, color="tab:blue", lw=1.8, marker="o", ms=3, label="mean level")
    if len(level):
        edge = level[-1]
        ax.annotate(f"corner: {edge:.1%} of the centre" if edge < 5 else f"corner: {edge:.4g}",
                    (radius[-1], edge), textcoords="offset points", xytext=(-10, 12), ha="right")
    if channel_levels:
        text = ", ".join(f"{k} {v:.5g}" for k, v in channel_levels.items())
        ax.plot([], [], " ", label=f"channel levels: {text}")
    ax.set_xlabel("distance from the centre (pixel)")
    ax.set_ylabel("level (centre = 1)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    ax.set_title(title if title is not None else "radial profile (vignetting)")
    return fig
