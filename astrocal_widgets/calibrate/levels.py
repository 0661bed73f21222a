"""A header-free check that a master's level fits the frames it calibrates.

Headers can be silent or wrong: a master bias of another readout mode (another pedestal) passes every
keyword rule when the keywords are missing. The pixels still tell: a frame that holds signal or a
pedestal never goes far below zero once the right bias or dark is subtracted. When many pixels of a
calibrated frame lie several noise sigmas below zero, the master's level is above the frame's own
dark level, and the calibration is questioned.

The noise is measured on the calibrated frame itself, from differences of pixels two columns apart
(same CFA colour, insensitive to gradients such as vignetting), so the check needs no header at all.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..integrate.estimators import MAD_TO_SIGMA

__all__ = ["LevelCheck", "check_calibrated_level", "master_level_problem", "sample_rows", "NEGATIVE_SIGMAS",
           "MAX_NEGATIVE_FRACTION"]

#: A pixel this many noise sigmas below zero cannot be noise around a true level of zero or more.
NEGATIVE_SIGMAS = 5.0
#: More than this fraction of such pixels questions the master (dead pixels stay far below it).
MAX_NEGATIVE_FRACTION = 0.01
#: At most about this many pixels are looked at (evenly spaced whole rows): a 61 MP light costs
#: milliseconds and a few MB, and a 1 % fraction is still measured to a tenth of a percent.
_MAX_SAMPLE = 2**20


def sample_rows(height: int, width: int) -> slice:
    """The middle rows of a frame holding about as many pixels as the check looks at.

    For a lazy cube: computing only these rows reads one band of the file, not the whole frame.
    """
    rows = max(1, min(height, _MAX_SAMPLE // max(1, width)))
    start = (height - rows) // 2
    return slice(start, start + rows)


@dataclass(frozen=True)
class LevelCheck:
    """What :func:`check_calibrated_level` measured.

    Attributes
    ----------
    negative_fraction : float
        Fraction of sampled pixels more than ``n_sigma`` noise sigmas below zero.
    noise : float
        Pixel noise of the calibrated frame (ADU, robust, from differences two columns apart).
    median : float
        Median of the calibrated frame (ADU).
    n_sigma : float
        The threshold used.
    questioned : bool
        True when ``negative_fraction`` exceeds the allowed fraction.
    """

    negative_fraction: float
    noise: float
    median: float
    n_sigma: float
    questioned: bool


def check_calibrated_level(calibrated: np.ndarray, *, offset: float = 0.0, n_sigma: float = NEGATIVE_SIGMAS,
                           max_fraction: float = MAX_NEGATIVE_FRACTION) -> LevelCheck:
    """How much of a calibrated frame lies far below zero.

    Parameters
    ----------
    calibrated : numpy.ndarray
        A calibrated 2-D frame (light or flat minus its bias or dark; NaN allowed).
    offset : float, default 0
        A pedestal added after calibration, removed before the check.
    n_sigma : float
        How many noise sigmas below zero count as "far below".
    max_fraction : float
        Largest fraction of such pixels that is not questioned.

    Returns
    -------
    LevelCheck
    """
    data = np.asarray(calibrated)
    if data.ndim != 2:
        raise ValueError(f"check_calibrated_level: expected a 2-D frame, got shape {data.shape}")
    step = max(1, math.ceil(data.size / _MAX_SAMPLE))
    sample = data[::step].astype(np.float64) - offset
    finite = sample[np.isfinite(sample)]
    if finite.size == 0 or sample.shape[1] < 3:
        return LevelCheck(0.0, math.nan, math.nan, n_sigma, False)
    diffs = (sample[:, 2:] - sample[:, :-2]).ravel()
    diffs = diffs[np.isfinite(diffs)]
    # MAD of the difference of two pixels, scaled to one pixel's sigma.
    noise = float(MAD_TO_SIGMA * np.median(np.abs(diffs - np.median(diffs))) / math.sqrt(2)) if diffs.size else math.nan
    median = float(np.median(finite))
    if not noise > 0:
        # A noiseless frame (a synthetic master, a constant): any clearly negative value counts.
        threshold = 0.0 if not median else -1e-6 * abs(median)
        fraction = float(np.mean(finite < threshold)) if median < 0 else 0.0
    else:
        fraction = float(np.mean(finite < -n_sigma * noise))
    return LevelCheck(fraction, noise, median, n_sigma, fraction > max_fraction)


def master_level_problem(calibrated: np.ndarray, *, frame: str, master: str, offset: float = 0.0,
                         master_level: float | None = None, n_sigma: float = NEGATIVE_SIGMAS,
                         max_fraction: float = MAX_NEGATIVE_FRACTION) -> str | None:
    """A warning when a master's level does not fit the frame it calibrated, else None.

    Parameters
    ----------
    calibrated : numpy.ndarray
        The frame after the master was subtracted (see :func:`check_calibrated_level`).
    frame, master : str
        How the message names the frame and the master (file names).
    offset : float, default 0
        A pedestal added after calibration.
    master_level : float, optional
        The master's median level (ADU), quoted in the message.
    n_sigma, max_fraction : float
        As :func:`check_calibrated_level`.

    Returns
    -------
    str or None
        Names the frame, the master, the fraction below zero and the levels, and says what to check.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> flat = rng.normal(400.0, 5.0, (64, 64))  # flats of one readout mode (dark level ~ 0 here)
    >>> master_level_problem(flat - 1626.0, frame="flat_001.fits", master="master_bias.fits") is not None
    True
    """
    check = check_calibrated_level(calibrated, offset=offset, n_sigma=n_sigma, max_fraction=max_fraction)
    if not check.questioned:
        return None
    level = f" (median {master_level:.6g} ADU)" if master_level is not None and math.isfinite(master_level) else ""
    noise = f"{check.n_sigma:g} sigma = {check.n_sigma * check.noise:.3g} ADU" if math.isfinite(check.noise) \
        and check.noise > 0 else "clearly"
    return (f"level: {frame} minus {master}{level} has {check.negative_fraction:.1%} of its pixels more than "
            f"{noise} below zero (calibrated median {check.median:.4g} ADU): the master's level is above the "
            f"frame's own dark level — a master of another readout mode, gain or offset? Compare READOUTM, GAIN, "
            f"OFFSET and EGAIN of both, or take the master with the frames' settings")
