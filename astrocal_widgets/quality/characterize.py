"""Camera characterisation from calibration frames: gain, read noise, dark current, master noise.

:func:`characterize_camera` measures, from a folder (or catalogue) of bias, flat and dark frames:

* the conversion **gain** (e-/ADU) and the **read noise** (e-) by the difference-image method
  (Janesick, *Photon Transfer*, 2007): with two flats F1, F2 at one level and two bias frames
  B1, B2, fixed patterns (PRNU, vignetting, dust, bias rows/columns) cancel in the differences and::

      gain       = (mean(F1) + mean(F2) - mean(B1) - mean(B2)) / (var(F1 - F2) - var(B1 - B2))
      read_noise = gain * std(B1 - B2) / sqrt(2)

  and a **photon transfer curve** (temporal variance against signal) when flats at several
  levels are present (each flat group is one level; on a colour sensor each CFA plane is one
  more level, because the R, G and B pixels see different signals);
* the **dark current** (e-/s per pixel) as the slope of the dark signal (dark minus bias, ADU)
  against exposure, converted to electrons with the gain, and its **doubling temperature**
  when darks at several temperatures are present (fit of log2(rate) against CCD-TEMP);
* the **noise a master adds**: ``sigma / sqrt(N)`` for an average of N frames, about
  ``1.25 sigma / sqrt(N)`` (``sqrt(pi / 2)``) for a median of Gaussian frames, set
  against the light's own noise to tell how many frames are enough (:func:`master_noise`,
  :func:`frames_needed`, :func:`master_noise_table`).

Robustness and uncertainties (the method, in one place)
--------------------------------------------------------
Every image statistic is computed per **block** (default 32 x 32 pixels) of a central window:

* in a block, the difference image is sigma-clipped at 5 sigma (sigma from the MAD) before
  its mean and variance are taken, which drops cosmic rays and the odd flickering column
  (5-sigma clipping of Gaussian data biases the variance by < 1e-4, negligible);
* each block gives its own gain / read noise / dark rate; the result is the **median over
  blocks**, so a block spoiled by a defect (dust-donut edge, hot column, amp glow) cannot move it;
* the uncertainty is the standard error of that median,
  ``sqrt(pi / 2) * std(block values) / sqrt(n_blocks)``: blocks are independent samples of the
  same quantity, so their scatter measures the statistical error of the estimate (it does not
  include systematic errors such as a non-linear sensor);
* dark current: the dark signal of each block is the interquartile mean of its pixels (as robust
  as a median: hot and warm pixels are a fraction of a percent and cannot move it; unlike a
  median, not stuck on the quantisation steps of integer data), its rate the least-squares slope
  against exposure; blocks whose rate is more than 3 sigma (robust, iterated) from the median
  of all blocks are excluded, which removes the amp-glow corner whatever corner it is in.
  The pixels kept are returned as ``dark_region`` so the result can be compared with a truth.

The layers: this module reads frames through :mod:`astrocal_widgets.frames` / ``io`` and uses
the estimators of :mod:`astrocal_widgets.integrate`; it never imports a user-interface package.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..frames import FrameCatalog, FrameGroup, scan
from ..frames.grouping import EXPOSURE_ABSOLUTE_TOLERANCE, EXPOSURE_RELATIVE_TOLERANCE, cluster_values
from ..integrate.estimators import MAD_TO_SIGMA, noise_sigma
from ..io.cfa import CFA_SITES, site_slices

__all__ = [
    "block_levels",
    "Measurement",
    "PhotonTransferCurve",
    "CameraCharacteristics",
    "characterize_camera",
    "difference_statistics",
    "difference_gain",
    "dark_current_fit",
    "doubling_temperature_fit",
    "master_noise",
    "frames_needed",
    "master_noise_table",
    "MEDIAN_NOISE_FACTOR",
]

#: Noise of a median of N Gaussian frames relative to their average, sqrt(pi / 2) = 1.2533
#: (the median's asymptotic efficiency for Gaussian noise is 2 / pi).
MEDIAN_NOISE_FACTOR: float = math.sqrt(math.pi / 2.0)
#: Standard error of a median of n values is about sqrt(pi / 2) * std / sqrt(n).
_MEDIAN_SE = MEDIAN_NOISE_FACTOR
_CLIP = 5.0


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Measurement:
    """One measured camera quantity.

    Attributes
    ----------
    value : float
    uncertainty : float
        One-sigma statistical uncertainty, same unit (see the module notes for how).
    unit : str
    frames : tuple of str
        Paths of the frames the value was computed from.
    method : str
        How it was measured, in words.
    """

    value: float
    uncertainty: float
    unit: str
    frames: tuple[str, ...] = field(default=(), repr=False)
    method: str = ""

    @property
    def relative_uncertainty(self) -> float:
        return float(self.uncertainty / abs(self.value)) if self.value else math.nan

    def __str__(self) -> str:
        return f"{self.value:.4g} ± {self.uncertainty:.2g} {self.unit}"


@dataclass
class PhotonTransferCurve:
    """Temporal variance against signal from flat pairs at several levels.

    Attributes
    ----------
    signal : ndarray
        Bias-subtracted mean level of each point (ADU).
    variance : ndarray
        Temporal variance of one frame at that level, ``var(F1 - F2) / 2`` (ADU^2, read noise included).
    shot_variance : ndarray
        ``variance`` minus the read-noise variance ``var(B1 - B2) / 2`` (ADU^2).
    labels : list of str
        What each point is (flat group, CFA plane).
    gain : float
        Fitted gain (e-/ADU): least-squares slope through the origin of ``shot_variance``
        against ``signal`` is ``1 / gain``.
    gain_uncertainty : float
        From the residual scatter of the fit (NaN with a single point).
    """

    signal: np.ndarray
    variance: np.ndarray
    shot_variance: np.ndarray
    labels: list[str]
    gain: float
    gain_uncertainty: float

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"label": self.labels, "signal_adu": self.signal, "variance_adu2": self.variance,
                             "shot_variance_adu2": self.shot_variance})


@dataclass
class CameraCharacteristics:
    """What :func:`characterize_camera` measured.

    Attributes
    ----------
    gain : Measurement
        e-/ADU (difference method, combined over the flat groups).
    read_noise : Measurement
        e- rms per pixel and frame.
    dark_current : Measurement or None
        e-/s per pixel at ``dark_temperature`` (median pixel, amp glow excluded); None without darks.
    dark_temperature : float
        Mean CCD-TEMP (°C) of the darks the dark current comes from.
    doubling_temperature : Measurement or None
        °C over which the dark current doubles; None without darks at two temperatures or more.
    ptc : PhotonTransferCurve or None
    dark_series : pandas.DataFrame
        Per dark group: temperature, exposure, n_frames, median dark signal (ADU, dark minus bias).
    temperature_series : pandas.DataFrame
        Per temperature: mean CCD-TEMP, rate (ADU/s and e-/s) and its uncertainty.
    dark_region : ndarray of bool or None
        (y, x) pixels of the blocks the dark current was measured on (amp glow excluded).
    bias_sigma_adu, dark_sigma_adu, light_sigma_adu : float
        Temporal noise of one bias frame, of one dark of ``dark_sigma_exposure`` s, and the robust
        noise of one raw light (NaN when absent), in ADU.
    noise_table : pandas.DataFrame
        :func:`master_noise_table` for the bias and dark masters against the light's noise.
    n_lights : int
        The masters are judged against a stack of this many lights (1: a single light).
    frames_needed : dict
        ``{(master, combine): N}`` frames for the master to add at most 5 % (``max_increase``) to
        the noise of one light (or of a stack of ``n_lights``).
    """

    gain: Measurement
    read_noise: Measurement
    dark_current: Measurement | None = None
    dark_temperature: float = math.nan
    doubling_temperature: Measurement | None = None
    ptc: PhotonTransferCurve | None = None
    dark_series: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    temperature_series: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    dark_region: np.ndarray | None = field(default=None, repr=False)
    bias_sigma_adu: float = math.nan
    dark_sigma_adu: float = math.nan
    dark_sigma_exposure: float = math.nan
    light_sigma_adu: float = math.nan
    n_lights: int = 1
    max_increase: float = 0.05
    noise_table: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    frames_needed: dict = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        """A plain-text report of every figure with its uncertainty and frame count."""
        lines = ["Camera characteristics"]
        lines.append(f"  gain          {self.gain}  ({len(self.gain.frames)} frames; {self.gain.method})")
        lines.append(f"  read noise    {self.read_noise}  ({len(self.read_noise.frames)} frames; {self.read_noise.method})")
        if self.ptc is not None and len(self.ptc.signal) > 1:
            lines.append(f"  PTC gain      {self.ptc.gain:.4g} ± {self.ptc.gain_uncertainty:.2g} e-/ADU "
                         f"({len(self.ptc.signal)} points, {self.ptc.signal.min():.0f}-{self.ptc.signal.max():.0f} ADU)")
        if self.dark_current is not None:
            lines.append(f"  dark current  {self.dark_current} at {self.dark_temperature:.1f} °C "
                         f"({len(self.dark_current.frames)} frames; {self.dark_current.method})")
        else:
            lines.append("  dark current  not measured (no darks)")
        if self.doubling_temperature is not None:
            lines.append(f"  doubling      {self.doubling_temperature} "
                         f"({len(self.temperature_series)} temperatures)")
        if self.frames_needed:
            lines.append(f"  noise per frame: bias {self.bias_sigma_adu:.3g} ADU, dark ({self.dark_sigma_exposure:g} s) "
                         f"{self.dark_sigma_adu:.3g} ADU, light {self.light_sigma_adu:.3g} ADU")
            what = "a light's noise" if self.n_lights == 1 else f"the noise of a stack of {self.n_lights} lights"
            for (master, combine), n in sorted(self.frames_needed.items()):
                lines.append(f"  {master} master ({combine}): {n} frames add < {100 * self.max_increase:g} % to {what}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- block statistics


def _window(shape: tuple[int, int], block: int, max_size: int) -> tuple[slice, slice]:
    """Central window, at most ``max_size`` px a side, a whole number of blocks (even offsets for CFA)."""
    out = []
    for n in shape:
        size = min(n, max_size)
        size -= size % block
        start = ((n - size) // 2) & ~1
        out.append(slice(start, start + size))
    return out[0], out[1]


def _blocks(a: np.ndarray, block: int) -> np.ndarray:
    """(ny, nx) -> (nby * nbx, block * block) for the part covered by whole blocks."""
    ny, nx = a.shape[0] // block, a.shape[1] // block
    a = a[: ny * block, : nx * block]
    return a.reshape(ny, block, nx, block).transpose(0, 2, 1, 3).reshape(ny * nx, block * block)


def _clipped_mask(d: np.ndarray, k: float = _CLIP) -> np.ndarray:
    """Per block (rows of ``d``), True where ``|d - median| <= k * 1.4826 MAD`` (two passes)."""
    keep = np.ones(d.shape, bool)
    for _ in range(2):
        x = np.where(keep, d, np.nan)
        med = np.nanmedian(x, axis=1, keepdims=True)
        s = MAD_TO_SIGMA * np.nanmedian(np.abs(x - med), axis=1, keepdims=True)
        s = np.where(s > 0, s, np.inf)
        keep = np.abs(d - med) <= k * s
    return keep


def _masked_mean_var(values: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = keep.sum(axis=1)
    x = np.where(keep, values, 0.0)
    mean = x.sum(axis=1) / n
    var = (np.where(keep, values - mean[:, None], 0.0) ** 2).sum(axis=1) / (n - 1)
    return mean, var


def difference_statistics(a1: np.ndarray, a2: np.ndarray, block: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Per block: mean of ``(a1 + a2) / 2`` and variance of ``a1 - a2`` (5-sigma clipped), float64.

    Returns
    -------
    mean, diff_var : ndarray, shape (n_blocks,)
    """
    b1 = _blocks(np.asarray(a1, np.float64), block)
    b2 = _blocks(np.asarray(a2, np.float64), block)
    d = b1 - b2
    keep = _clipped_mask(d)
    _, var = _masked_mean_var(d, keep)
    s, _ = _masked_mean_var(0.5 * (b1 + b2), keep)
    return s, var


def _median_se(values: np.ndarray) -> tuple[float, float]:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    se = _MEDIAN_SE * float(np.std(v, ddof=1)) / math.sqrt(v.size) if v.size > 1 else math.nan
    return float(np.median(v)), se


def _planes(bayer: bool) -> list[tuple[int, int]]:
    return list(CFA_SITES) if bayer else [(0, 0)]


def _plane(a: np.ndarray, p: tuple[int, int], bayer: bool) -> np.ndarray:
    return a[site_slices(p)] if bayer else a


def difference_gain(
    flat_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    bias_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    block: int = 32,
    bayer: bool = False,
) -> dict[str, Any]:
    """Gain and read noise by the difference method from flat pairs and bias pairs at one level.

    Block statistics are averaged over the pairs, then each block gives
    ``gain = 2 (S_F - S_B) / (V_F - V_B)`` (S a pair's mean level, V the variance of its
    difference) and ``sigma_B = sqrt(V_B / 2)``; results are medians over blocks (and, for a
    colour sensor, over the four CFA planes pooled).

    Returns
    -------
    dict
        ``gain``, ``gain_err`` (e-/ADU), ``bias_sigma``, ``bias_sigma_err`` (ADU, one frame),
        ``planes``: list of per-plane ``(signal ADU, var(F1-F2)/2, var(B1-B2)/2, gain)``, the first
        three as means over blocks (the photon-transfer point), the gain as the median over blocks.
    """
    gains, sig_b, planes = [], [], []
    for p in _planes(bayer):
        sf = vf = sb = vb = 0.0
        for f1, f2 in flat_pairs:
            s, v = difference_statistics(_plane(f1, p, bayer), _plane(f2, p, bayer), block)
            sf, vf = sf + s, vf + v
        for b1, b2 in bias_pairs:
            s, v = difference_statistics(_plane(b1, p, bayer), _plane(b2, p, bayer), block)
            sb, vb = sb + s, vb + v
        sf, vf = sf / len(flat_pairs), vf / len(flat_pairs)
        sb, vb = sb / len(bias_pairs), vb / len(bias_pairs)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = 2.0 * (sf - sb) / (vf - vb)
        gains.append(g)
        sig_b.append(np.sqrt(vb / 2.0))
        # PTC point: means over blocks (each block already clipped), so signal and variance
        # describe the same pixels (medians of the two could come from different blocks).
        planes.append((float(np.mean(sf - sb)), float(np.mean(vf) / 2), float(np.mean(vb) / 2),
                       float(np.median(g))))
    gain, gain_err = _median_se(np.concatenate(gains))
    sb, sb_err = _median_se(np.concatenate(sig_b))
    return {"gain": gain, "gain_err": gain_err, "bias_sigma": sb, "bias_sigma_err": sb_err, "planes": planes}


# --------------------------------------------------------------------------- dark current


def block_levels(a: np.ndarray, block: int) -> np.ndarray:
    """Per block, the interquartile mean (mean of the values between the 25th and 75th percentiles).

    As robust as the median to hot and warm pixels (a fraction of a percent, all on one side),
    but not stuck on the quantisation steps of integer data or of an average of N integer frames,
    which would bias a median of a dark signal of a few ADU by up to half a step.
    """
    b = np.sort(_blocks(a, block), axis=1)
    n = b.shape[1]
    return b[:, n // 4: n - n // 4].mean(axis=1)


def _glow_free(rates: np.ndarray, k: float = 3.0, iterations: int = 20) -> np.ndarray:
    """Blocks within ``k`` robust sigma of the median rate (iterated): the amp-glow corner is cut."""
    keep = np.isfinite(rates)
    for _ in range(iterations):
        r = rates[keep]
        m = np.median(r)
        s = MAD_TO_SIGMA * np.median(np.abs(r - m))
        new = np.isfinite(rates) & (np.abs(rates - m) <= k * s) if s > 0 else keep
        if np.array_equal(new, keep):
            break
        keep = new
    return keep


def dark_current_fit(exposures: Sequence[float], signal_blocks: Sequence[np.ndarray],
                     keep: np.ndarray | None = None) -> dict[str, Any]:
    """Dark rate (ADU/s) from per-block median dark signals (dark minus bias, ADU) at several exposures.

    Each block's rate is the least-squares slope of signal against exposure, with an intercept
    when two exposures or more are given (it absorbs a bias level that differs between bias and
    dark frames) and through the origin otherwise. Blocks outside ``keep`` (default: chosen by
    :func:`_glow_free`, 3 robust sigma) are ignored; the rate is the median of the kept blocks.

    Returns
    -------
    dict
        ``rate``, ``rate_err`` (ADU/s), ``intercept`` (ADU, median), ``block_rates``, ``keep``.
    """
    t = np.asarray(exposures, float)
    s = np.stack([np.asarray(b, float) for b in signal_blocks])  # (n_exp, n_blocks)
    if np.unique(t).size >= 2:
        tm = t.mean()
        sm = s.mean(axis=0)
        slope = ((t - tm)[:, None] * (s - sm)).sum(axis=0) / ((t - tm) ** 2).sum()
        intercept = sm - slope * tm
    else:
        slope = (t[:, None] * s).sum(axis=0) / (t**2).sum()
        intercept = np.zeros_like(slope)
    if keep is None:
        keep = _glow_free(slope)
    rate, err = _median_se(slope[keep])
    return {"rate": rate, "rate_err": err, "intercept": float(np.median(intercept[keep])),
            "block_rates": slope, "keep": keep}


def doubling_temperature_fit(temperatures: Sequence[float], rates: Sequence[float],
                             rate_errors: Sequence[float] | None = None) -> tuple[float, float]:
    """Doubling temperature (°C) from dark rates at several temperatures: fit ``log2(rate) = a + T / T_d``.

    Weighted least squares when ``rate_errors`` are given (sigma of log2 rate = err / (rate ln 2)).
    The uncertainty propagates those errors (or, without them and with more than two points,
    the residual scatter). Returns ``(T_d, T_d_err)``.
    """
    T = np.asarray(temperatures, float)
    r = np.asarray(rates, float)
    y = np.log2(r)
    if rate_errors is not None:
        sy = np.asarray(rate_errors, float) / (r * math.log(2.0))
        w = 1.0 / np.where(sy > 0, sy, np.inf) ** 2
        if not np.all(np.isfinite(w)) or not np.any(w > 0):
            w = np.ones_like(T)
    else:
        w = np.ones_like(T)
    W = w.sum()
    Tm, ym = (w * T).sum() / W, (w * y).sum() / W
    Sxx = (w * (T - Tm) ** 2).sum()
    a = (w * (T - Tm) * (y - ym)).sum() / Sxx
    if rate_errors is not None and np.all(np.isfinite(sy)):
        a_err = math.sqrt(1.0 / Sxx)
    elif T.size > 2:
        resid = y - ym - a * (T - Tm)
        a_err = math.sqrt((w * resid**2).sum() / (T.size - 2) / Sxx)
    else:
        a_err = math.nan
    return 1.0 / a, a_err / a**2


# --------------------------------------------------------------------------- master noise


def master_noise(sigma: float | np.ndarray, n: int | np.ndarray, combine: str = "average") -> float | np.ndarray:
    """Noise of a master of ``n`` frames of per-frame noise ``sigma``.

    ``sigma / sqrt(n)`` for an average, ``sqrt(pi / 2) * sigma / sqrt(n)`` (about 1.25) for a
    median of Gaussian frames (for small odd n the exact median is a
    little better, e.g. 1.16 at n = 3).
    """
    factor = {"average": 1.0, "mean": 1.0, "median": MEDIAN_NOISE_FACTOR}.get(combine)
    if factor is None:
        raise ValueError(f"combine must be 'average' or 'median', got {combine!r}")
    n = np.asarray(n)
    if np.any(n < 1):
        raise ValueError("n must be >= 1")
    out = factor * np.asarray(sigma, float) / np.sqrt(n)
    return float(out) if out.ndim == 0 else out


def frames_needed(frame_sigma: float, light_sigma: float, *, max_increase: float = 0.05,
                  combine: str = "average", n_lights: int = 1) -> int:
    """Smallest N for which a master of N frames raises the calibrated noise by at most ``max_increase``.

    Subtracting (or dividing by) a master adds its noise in quadrature:
    ``sqrt(L^2 + master^2) <= (1 + max_increase) * L`` with ``master = master_noise(frame_sigma, N)``
    and ``L = light_sigma / sqrt(n_lights)``. With ``n_lights = 1`` this is one calibrated light;
    with the number of lights of a stack it is the stack, because the master's noise is the same
    in every light and stacking does not average it down (without dithering): the stricter figure.
    """
    if not (light_sigma > 0 and max_increase > 0 and n_lights >= 1):
        raise ValueError("light_sigma and max_increase must be > 0, n_lights >= 1")
    allowed = light_sigma / math.sqrt(n_lights) * math.sqrt((1.0 + max_increase) ** 2 - 1.0)
    factor = master_noise(1.0, 1, combine)
    return max(1, math.ceil((factor * frame_sigma / allowed) ** 2 - 1e-9))


def master_noise_table(frame_sigma: float, light_sigma: float, ns: Sequence[int] = (1, 2, 5, 10, 15, 20, 30, 50, 100),
                       master: str = "", n_lights: int = 1) -> pd.DataFrame:
    """The noise a master of N frames adds, for an average and a median, against a light's own noise.

    Columns: ``master``, ``n``, ``average_adu``, ``median_adu`` (master noise), ``light_adu``
    (``light_sigma / sqrt(n_lights)``: one light, or a stack of ``n_lights``, see
    :func:`frames_needed`), and ``average_increase_pct`` / ``median_increase_pct``: how much the
    calibrated noise grows, ``100 (sqrt(1 + (master / light)^2) - 1)``.
    """
    n = np.asarray(ns, int)
    light_sigma = light_sigma / math.sqrt(n_lights)
    avg = master_noise(frame_sigma, n, "average")
    med = master_noise(frame_sigma, n, "median")
    inc = lambda m: 100.0 * (np.sqrt(1.0 + (m / light_sigma) ** 2) - 1.0)  # noqa: E731
    return pd.DataFrame({"master": master, "n": n, "average_adu": avg, "median_adu": med, "light_adu": light_sigma,
                         "average_increase_pct": inc(avg), "median_increase_pct": inc(med)})


# --------------------------------------------------------------------------- frames


def _read(group: FrameGroup, indices: Sequence[int]) -> list[np.ndarray]:
    cube = group.open()
    return [np.asarray(cube.isel(frame=int(i)).values, np.float64) for i in indices]


def _settings_match(group: FrameGroup, ref: dict) -> bool:
    for k in ("gain", "offset", "iso", "width", "height", "xbinning", "ybinning"):
        a, b = group.key.get(k), ref.get(k)
        if a is None or b is None:
            continue
        if isinstance(a, float) and isinstance(b, float) and (math.isnan(a) or math.isnan(b)):
            continue
        if a != b:
            return False
    return True


def _mean_frame(group: FrameGroup, window: tuple[slice, slice], max_frames: int) -> np.ndarray:
    cube = group.open()
    n = min(len(group), max_frames)
    return np.asarray(cube.isel(frame=slice(0, n))[:, window[0], window[1]].mean("frame").values, np.float64)


def _split_by_exposure(group: FrameGroup) -> list[FrameGroup]:
    """A flat group (one filter, any exposures) split into one group per exposure: one level each."""
    t = group.table
    if "exposure" not in t or len(t) == 0:
        return [group]
    keys = cluster_values(t["exposure"], absolute=EXPOSURE_ABSOLUTE_TOLERANCE, relative=EXPOSURE_RELATIVE_TOLERANCE)
    keys = np.asarray(keys)
    if np.unique(keys.astype(str)).size <= 1:
        return [group]
    out = []
    for k in sorted(set(keys.tolist()), key=str):
        rows = t[keys == k].reset_index(drop=True)
        out.append(FrameGroup(group.frame_type, {**group.key, "exposure": float(rows["exposure"].iloc[0])}, rows,
                              aliases=group.aliases))
    return out


def _saturated(frames: Sequence[np.ndarray], fraction: float = 1e-3) -> bool:
    """True when more than ``fraction`` of a frame's pixels sit at its maximum value (ADC or full-well clip)."""
    return any(float(np.mean(f == f.max())) > fraction for f in frames)


def _group_temperature(group: FrameGroup, n: int | None = None) -> float:
    t = group.table["temperature"].to_numpy(float)[:n]
    t = t[np.isfinite(t)]
    return float(t.mean()) if t.size else math.nan


# --------------------------------------------------------------------------- main entry


def characterize_camera(
    source: str | os.PathLike | FrameCatalog,
    *,
    flat_groups: Sequence[FrameGroup] | None = None,
    block: int = 32,
    max_size: int = 1024,
    max_pairs: int = 4,
    max_dark_frames: int = 20,
    max_increase: float = 0.05,
    light_sigma: float | None = None,
    n_lights: int = 1,
) -> CameraCharacteristics:
    """Measure gain, read noise, dark current (and its doubling temperature) and master noise figures.

    Parameters
    ----------
    source : path-like or FrameCatalog
        A folder of frames (scanned) or a catalogue. It needs a bias group with two frames or
        more and a flat group with two frames or more; darks are optional.
    flat_groups : sequence of FrameGroup, optional
        The flat levels to use (default every flat group of the catalogue with the bias
        group's camera settings). Each level is one photon-transfer point (per CFA plane on a
        colour sensor); the reported gain is their inverse-variance weighted mean.
    block : int
        Block size in pixels (per CFA plane on a colour sensor) of the robust statistics.
    max_size : int
        Side of the central window the gain and noise are measured in (pixels).
    max_pairs : int
        At most this many disjoint frame pairs per group for the difference method.
    max_dark_frames : int
        At most this many frames averaged per dark group (and for the bias reference).
    max_increase : float
        Criterion of :func:`frames_needed` (default 5 %).
    light_sigma : float, optional
        Noise of one raw light in ADU; default the robust noise (:func:`noise_sigma`) of up to
        three lights of the catalogue's first light group. Without either, no noise table.
    n_lights : int
        Judge the masters against a stack of this many lights (default 1: one light).

    Returns
    -------
    CameraCharacteristics

    Raises
    ------
    ValueError
        No bias pair or no flat pair with matching settings.
    """
    catalog = source if isinstance(source, FrameCatalog) else scan(source)
    biases = sorted((g for g in catalog.groups("bias") if len(g) >= 2), key=len, reverse=True)
    if not biases:
        raise ValueError("characterize_camera needs a bias group of two frames or more")
    bias = biases[0]
    ref = bias.key
    candidates = list(flat_groups) if flat_groups is not None else [
        g for g in catalog.groups("flat") if _settings_match(g, ref)]
    flats = [s for g in candidates for s in _split_by_exposure(g) if len(s) >= 2]
    if not flats:
        raise ValueError("characterize_camera needs a flat group of two frames or more with the bias frames' settings")
    bayer_codes = set(bias.table.get("bayer_pattern", pd.Series([""])).fillna("").astype(str))
    bayer = any(code.strip() for code in bayer_codes)
    shape = (int(bias.table["height"].iloc[0]), int(bias.table["width"].iloc[0]))
    window = _window(shape, 2 * block if bayer else block, max_size)  # whole blocks of every CFA plane

    # --- gain and read noise: bias pairs once, flat pairs per level
    nb = min(len(bias) // 2, max_pairs)
    bias_frames = _read(bias, range(2 * nb))
    bias_w = [b[window] for b in bias_frames]
    bias_pairs = [(bias_w[2 * i], bias_w[2 * i + 1]) for i in range(nb)]
    bias_paths = tuple(bias.paths[: 2 * nb])
    per_group, signal, var, shot, labels, flat_paths = [], [], [], [], [], []
    saturated = []
    for g in flats:
        nf = min(len(g) // 2, max_pairs)
        fr = [f[window] for f in _read(g, range(2 * nf))]
        if _saturated(fr):
            saturated.append(g.label)
            continue
        res = difference_gain([(fr[2 * i], fr[2 * i + 1]) for i in range(nf)], bias_pairs, block=block, bayer=bayer)
        per_group.append(res)
        flat_paths.extend(g.paths[: 2 * nf])
        for p, (s, vf, vb, _) in zip(_planes(bayer), res["planes"]):
            signal.append(s)
            var.append(vf)
            shot.append(vf - vb)
            labels.append(g.label + (f", {g.key['exposure']:g} s" if "exposure" in g.key else "")
                          + (f", CFA plane {p}" if bayer else ""))
    if not per_group:
        raise ValueError(f"every flat level is saturated: {saturated}")
    gains = np.array([r["gain"] for r in per_group])
    gerr = np.array([r["gain_err"] for r in per_group])
    if np.all(np.isfinite(gerr) & (gerr > 0)):
        w = 1.0 / gerr**2
        gain, gain_err = float((w * gains).sum() / w.sum()), float(1.0 / math.sqrt(w.sum()))
    else:
        gain, gain_err = float(np.median(gains)), float(np.nanmax(gerr)) if np.any(np.isfinite(gerr)) else math.nan
    sb = float(np.median([r["bias_sigma"] for r in per_group]))
    sb_err = float(per_group[0]["bias_sigma_err"])
    rn = gain * sb
    rn_err = rn * math.hypot(gain_err / gain, sb_err / sb)
    method = (f"difference method, median of {block}x{block} blocks" + (" per CFA plane" if bayer else "")
              + f", {nb} bias pair(s), {len(per_group)} flat level(s)"
              + (f"; {len(saturated)} saturated level(s) skipped" if saturated else ""))
    gain_m = Measurement(gain, gain_err, "e-/ADU", bias_paths + tuple(flat_paths), method)
    rn_m = Measurement(rn, rn_err, "e-", bias_paths + tuple(flat_paths), "gain x std(B1 - B2) / sqrt(2), " + method)
    sig, sh = np.array(signal), np.array(shot)
    ptc_gain = float((sig**2).sum() / (sig * sh).sum())
    if sig.size > 1:
        resid = sh - sig / ptc_gain
        slope_err = math.sqrt((resid**2).sum() / (sig.size - 1) / (sig**2).sum())
        ptc_err = ptc_gain**2 * slope_err
    else:
        ptc_err = math.nan
    ptc = PhotonTransferCurve(sig, np.array(var), sh, labels, ptc_gain, ptc_err)

    out = CameraCharacteristics(gain=gain_m, read_noise=rn_m, ptc=ptc, bias_sigma_adu=sb)

    # --- dark current
    darks = [g for g in catalog.groups("dark") if _settings_match(g, ref) and len(g) >= 1]
    light_groups = [g for g in catalog.groups("light") if _settings_match(g, ref)]
    if darks:
        full = (slice(0, shape[0]), slice(0, shape[1]))
        bias_mean = _mean_frame(bias, full, max_dark_frames)
        rows = []
        for g in darks:
            n = min(len(g), max_dark_frames)
            signal_map = _mean_frame(g, full, max_dark_frames) - bias_mean
            st = g.table["set_temperature"].to_numpy(float) if "set_temperature" in g.table else np.array([math.nan])
            set_t = float(np.nanmean(st)) if np.any(np.isfinite(st)) else math.nan
            rows.append({"group": g, "exposure": float(g.key.get("exposure", math.nan)),
                         "temperature": _group_temperature(g, n),
                         "set_temperature": set_t if math.isfinite(set_t) else round(_group_temperature(g, n)),
                         "n_frames": n, "blocks": block_levels(signal_map, block),
                         "median_signal_adu": float(np.median(signal_map)), "paths": tuple(g.paths[:n])})
        series = pd.DataFrame([{k: r[k] for k in ("set_temperature", "temperature", "exposure", "n_frames",
                                                  "median_signal_adu")} for r in rows])
        out.dark_series = series
        by_t: dict[float, list[dict]] = {}
        for r in rows:
            by_t.setdefault(round(float(r["set_temperature"]), 1), []).append(r)
        # Reference temperature: the one with most dark frames (ties: more exposures, then colder).
        ref_t = max(by_t, key=lambda t: (sum(r["n_frames"] for r in by_t[t]), len(by_t[t]), -t))
        fits = {}
        keep = None
        for t in [ref_t] + [t for t in sorted(by_t) if t != ref_t]:
            rs = [r for r in by_t[t] if r["exposure"] > 0]
            if not rs:
                continue
            fit = dark_current_fit([r["exposure"] for r in rs], [r["blocks"] for r in rs], keep)
            if keep is None:
                keep = fit["keep"]  # the same glow-free blocks at every temperature
            frames = sum((r["paths"] for r in rs), ())
            tmean = float(np.average([r["temperature"] for r in rs], weights=[r["n_frames"] for r in rs]))
            fits[t] = (fit, frames, tmean)
        if ref_t in fits:
            fit, frames, tmean = fits[ref_t]
            rate_e = fit["rate"] * gain
            err_e = rate_e * math.hypot(fit["rate_err"] / fit["rate"], gain_err / gain)
            nexp = len({r["exposure"] for r in by_t[ref_t]})
            out.dark_current = Measurement(
                rate_e, err_e, "e-/s", frames + tuple(bias.paths[:max_dark_frames]),
                f"slope of robust (interquartile mean) dark - bias against {nexp} exposure(s), median of "
                f"{int(fit['keep'].sum())}/{fit['keep'].size} {block}x{block} blocks (amp glow excluded), x gain")
            out.dark_temperature = tmean
            ny, nx = shape[0] // block, shape[1] // block
            region = np.zeros(shape, bool)
            region[: ny * block, : nx * block] = np.repeat(np.repeat(fit["keep"].reshape(ny, nx), block, 0), block, 1)
            out.dark_region = region
        temps = pd.DataFrame([{"set_temperature": t, "temperature": tm, "rate_adu_s": f["rate"],
                               "rate_adu_s_err": f["rate_err"], "rate_e_s": f["rate"] * gain,
                               "n_frames": len(fr)} for t, (f, fr, tm) in sorted(fits.items())])
        out.temperature_series = temps
        if len(temps) >= 2:
            td, td_err = doubling_temperature_fit(temps["temperature"], temps["rate_adu_s"], temps["rate_adu_s_err"])
            out.doubling_temperature = Measurement(
                td, td_err, "°C", sum((fr for _, fr, _ in fits.values()), ()),
                f"fit of log2(dark rate) against mean CCD-TEMP at {len(temps)} temperatures")
        # temporal noise of one dark at the longest exposure at the reference temperature
        longest = max((r for r in by_t[ref_t] if len(r["group"]) >= 2), key=lambda r: r["exposure"], default=None)
        if longest is not None:
            d1, d2 = (d[window] for d in _read(longest["group"], (0, 1)))
            _, v = difference_statistics(d1, d2, block)
            out.dark_sigma_adu = float(np.median(np.sqrt(v / 2.0)))
            out.dark_sigma_exposure = longest["exposure"]

    # --- master noise against the light's own noise
    if light_sigma is not None:
        out.light_sigma_adu = float(light_sigma)
    elif light_groups:
        g = light_groups[0]
        out.light_sigma_adu = float(np.median([noise_sigma(f) for f in _read(g, range(min(len(g), 3)))]))
    out.n_lights, out.max_increase = int(n_lights), float(max_increase)
    if math.isfinite(out.light_sigma_adu):
        masters = {"bias": out.bias_sigma_adu}
        if math.isfinite(out.dark_sigma_adu):
            masters["dark"] = out.dark_sigma_adu
        out.noise_table = pd.concat([master_noise_table(s, out.light_sigma_adu, master=m, n_lights=n_lights)
                                     for m, s in masters.items()], ignore_index=True)
        out.frames_needed = {(m, c): frames_needed(s, out.light_sigma_adu, max_increase=max_increase, combine=c,
                                                   n_lights=n_lights)
                             for m, s in masters.items() for c in ("average", "median")}
    return out
