"""Two rejections of one set side by side, on a crop: what each rejects, and what it does to the master.

:func:`compare_rejections` integrates the same window of a calibration set twice, with two rejection
algorithms (or one algorithm with two pairs of thresholds), the way :func:`~.integrate_master` makes
the master (same frames, exclusions, flat calibration, combination and normalisation). Only the
window's rows are read, once, so a comparison of a 24-megapixel set answers in seconds.
Computation only: nothing here imports plotting or widgets.
"""
from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..calibrate import MasterLibrary, build_master
from ..cancel import CancelToken, raise_if_cancelled
from ..frames import FrameGroup
from ..integrate import rejection_algorithm, resolve_rejection
from ..io.cfa import channel_planes, check_bayer_pattern
from ..quality import central_window, master_noise, temporal_noise
from ..quality.measurements import clipped_sigma
from .masters import MASTER_KINDS, _leave_out, _master_cube, _scaled

__all__ = ["compare_rejections", "RejectionComparison", "RejectionOutcome", "COMPARE_CROP"]

#: Side of the centred window compared by default (pixels): a quarter of a megapixel answers in
#: seconds and holds hundreds of thousands of values per frame, plenty to see what a rejection does.
COMPARE_CROP = 512

Progress = Callable[[float, str], None]
#: A rejection to compare: its name, or (name, low, high), or {"rejection": name, "low": .., "high": ..}.
RejectionSpec = str | Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True)
class RejectionOutcome:
    """One of the two integrations of a comparison.

    Attributes
    ----------
    requested : str
        The rejection asked for (``auto`` or an algorithm's name or alias).
    algorithm : str
        The algorithm that ran (``auto`` resolved by the frame count).
    reason : str
        Why that algorithm (``chosen by the user`` or the ``auto`` rule).
    low, high : float
        The thresholds used, in the algorithm's own units (its defaults unless given).
    master : numpy.ndarray
        The master of the crop (float32).
    rejected_low, rejected_high : numpy.ndarray
        Per pixel, how many frames were rejected below and above (uint16).
    contributing : numpy.ndarray
        Per pixel, how many frames were combined (uint16).
    fraction_low, fraction_high, fraction : float
        Rejected values as a fraction of all ``n_frames x pixels``: low, high and both.
    noise : float
        Noise of the master crop, ADU: its 3-sigma clipped standard deviation, started from 1.4826 MAD
        (:func:`~astrocal_widgets.quality.measurements.clipped_sigma`; a plain MAD of a master of integer
        frames moves in steps of 1.4826 / N ADU and would hide the difference). On one green site for a
        colour sensor. It includes the set's fixed pattern, which is the same in both masters.
    expected_noise : float
        The master's temporal noise expected from one frame's noise and the frames each pixel kept:
        ``frame_sigma / sqrt(n_eff)`` with ``1 / n_eff`` the mean of ``1 / contributing`` (x 1.25 for a
        median); NaN with fewer than two frames.
    """

    requested: str
    algorithm: str
    reason: str
    low: float
    high: float
    master: np.ndarray
    rejected_low: np.ndarray
    rejected_high: np.ndarray
    contributing: np.ndarray
    fraction_low: float
    fraction_high: float
    fraction: float
    noise: float
    expected_noise: float

    @property
    def label(self) -> str:
        """The algorithm with its thresholds, e.g. ``sigma 3/3``."""
        if rejection_algorithm(self.algorithm).threshold_names is None:
            return self.algorithm
        return f"{self.algorithm} {self.low:g}/{self.high:g}"

    @property
    def rejected(self) -> np.ndarray:
        """Per pixel, how many frames were rejected (low and high)."""
        return self.rejected_low.astype(np.int32) + self.rejected_high


@dataclass(frozen=True)
class RejectionComparison:
    """Two integrations of the same crop of a set, and how they differ.

    Attributes
    ----------
    label : str
        The set.
    kind : str
        ``bias``, ``dark``, ``darkflat`` or ``flat``.
    n_frames : int
        Frames integrated (the set less the excluded frames).
    crop : (int, int, int, int)
        The window ``(y0, y1, x0, x1)`` in the frame as integrated (after any overscan trim).
    frame_shape : (int, int)
        ``(height, width)`` of those frames.
    combine, normalization : str
        How both were combined and normalised (the kind's standard unless changed).
    first, second : RejectionOutcome
        The two integrations.
    difference : numpy.ndarray
        ``second.master - first.master`` (float32).
    difference_rms, difference_max : float
        Root mean square and largest absolute value of ``difference`` (ADU).
    frame_sigma : float
        Temporal noise of one frame on the crop (from the first two frames), ADU.
    bayer_pattern : str
        The crop's CFA pattern at ``[0, 0]`` ('' for mono).
    excluded : dict
        Frames of the set left out, ``{path: reason}``.
    warnings : tuple of str
        What the integrations or the flat calibration warned about.
    """

    label: str
    kind: str
    n_frames: int
    crop: tuple[int, int, int, int]
    frame_shape: tuple[int, int]
    combine: str
    normalization: str
    first: RejectionOutcome
    second: RejectionOutcome
    difference: np.ndarray
    difference_rms: float
    difference_max: float
    frame_sigma: float
    bayer_pattern: str = ""
    excluded: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def outcomes(self) -> tuple[RejectionOutcome, RejectionOutcome]:
        return self.first, self.second

    def table(self) -> list[dict[str, Any]]:
        """One row per integration: rejection, rejected fractions (low, high, all), noise measured and expected."""
        return [{"rejection": o.label, "rejected_low": o.fraction_low, "rejected_high": o.fraction_high,
                 "rejected": o.fraction, "noise": o.noise, "expected_noise": o.expected_noise}
                for o in self.outcomes]

    def summary(self) -> str:
        """The comparison in words and figures."""
        y0, y1, x0, x1 = self.crop
        lines = [f"{self.label}: {self.n_frames} frames, {self.combine}, normalisation {self.normalization}; "
                 f"crop rows {y0}-{y1 - 1}, columns {x0}-{x1 - 1} ({x1 - x0} x {y1 - y0} of "
                 f"{self.frame_shape[1]} x {self.frame_shape[0]} pixels)"]
        for name, o in (("first", self.first), ("second", self.second)):
            text = (f"{name}: {o.label} - rejected {o.fraction_low:.3%} low, {o.fraction_high:.3%} high "
                    f"({o.fraction:.3%} of all values); noise of the master {o.noise:.4g} ADU")
            if math.isfinite(o.expected_noise):
                text += f" (temporal noise expected {o.expected_noise:.4g} ADU)"
            if o.requested != o.algorithm:
                text += f" [{o.reason}]"
            lines.append(text)
        lines.append(f"second - first: RMS {self.difference_rms:.4g} ADU, largest {self.difference_max:.4g} ADU")
        if math.isfinite(self.frame_sigma):
            lines.append(f"noise of one frame on the crop {self.frame_sigma:.4g} ADU")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def compare_rejections(group: FrameGroup, first: RejectionSpec, second: RejectionSpec, *,
                       crop: tuple[int, int, int, int] | None = None, crop_size: int = COMPARE_CROP,
                       library: MasterLibrary | str | os.PathLike | None = None, strict: bool = True,
                       night: Any = None, saved: dict[str, Any] | None = None,
                       excluded: Mapping[str, str] | None = None, progress: Progress | None = None,
                       cancel: CancelToken | threading.Event | None = None, **options: Any) -> RejectionComparison:
    """Integrate one crop of a calibration set with two rejections and compare the masters.

    The frames are those :func:`~.integrate_master` would integrate (the set less ``excluded``; flats
    calibrated by their master dark flats, else bias, from ``library``), combined and normalised the
    same way (the kind's standard options, changed by ``options``). Only the crop's rows are read
    (whole rows: the bands of the files that hold them), once for both integrations.

    Normalisation (flats) is estimated on the crop, so a flat master's level may differ slightly from
    that of the whole frame; the comparison of the two rejections is not affected.

    Parameters
    ----------
    group : FrameGroup
        A bias, dark, dark-flat or flat set (from :func:`~.open_session` ``.groups(kind)``).
    first, second : str, (str, float, float) or mapping
        The two rejections: a name of :data:`~.REJECTION_CHOICES` (or an alias), with the algorithm's
        default thresholds, or ``(name, low, high)``, or ``{"rejection": name, "low": .., "high": ..}``
        (a missing threshold is the default).
    crop : (y0, y1, x0, x1), optional
        The window, in the frames as integrated (after any overscan trim). For a colour (CFA) set it must
        start on even rows and columns, so the Bayer pattern is the frames' own. Default: the centred
        ``crop_size`` x ``crop_size`` window (even offsets).
    crop_size : int, default :data:`COMPARE_CROP`
        Side of the default window (the whole frame when it is smaller).
    library, strict, night, saved, excluded, cancel
        As :func:`~.integrate_master`.
    progress : callable, optional
        ``progress(fraction, message)``.
    **options
        Options of :func:`~astrocal_widgets.integrate.integrate` other than the rejection and its
        thresholds (``combine``, ``normalization``, ...), for both integrations.

    Returns
    -------
    RejectionComparison

    Raises
    ------
    ValueError
        An unknown rejection, thresholds outside the algorithm's range, an algorithm meant for more
        frames than the set has (it would fall back to another, and compare something else), a crop
        outside the frames or, for a colour set, one that starts on an odd row or column.
    TypeError
        ``rejection``, ``low`` or ``high`` in ``options``.
    """
    kind = group.frame_type
    if kind not in MASTER_KINDS:
        raise ValueError(f"compare_rejections: {group.label} is a {kind or 'unclassified'} set; masters are made "
                         f"of {', '.join(MASTER_KINDS)}")
    clash = sorted({"rejection", "low", "high"} & set(options))
    if clash:
        raise TypeError(f"compare_rejections: give the rejections as first and second, not {', '.join(clash)}")
    raise_if_cancelled(cancel, group.label)
    group, left_out = _leave_out(group, excluded or {})
    n = len(group)
    # Every choice is checked before a pixel is read.
    choices = [_resolve(spec, n, group.label, len(left_out)) for spec in (first, second)]
    cube, flats = _master_cube(group, library=library, strict=strict, night=night, saved=saved)
    notes = list(flats.warnings) if flats is not None else []
    n = int(cube.sizes["frame"])  # strict=False may leave flats out
    if n != len(group):
        choices = [_resolve(spec, n, group.label, len(left_out)) for spec in (first, second)]
    height, width = int(cube.sizes["y"]), int(cube.sizes["x"])
    pattern = _bayer_pattern(cube)
    y0, y1, x0, x1 = _window(crop, crop_size, (height, width), pattern, group.label)

    if progress is not None:
        progress(0.0, f"reading rows {y0}-{y1 - 1} of {n} frames")
    # Read once (the bands holding the crop's rows), then integrated twice from memory.
    window = cube.isel(y=slice(y0, y1), x=slice(x0, x1))
    values = np.asarray(window.values, dtype=np.float32)
    raise_if_cancelled(cancel, group.label)
    stack = xr.DataArray(values, dims=window.dims, coords=window.coords, attrs=window.attrs)
    del window, values

    frame_sigma = math.nan
    if n >= 2:
        frame_sigma = temporal_noise(stack.values[0], stack.values[1], match_levels=kind == "flat")
    outcomes = []
    attrs: dict[str, Any] = {}
    for k, (requested, low, high) in enumerate(choices):
        start = 0.2 + 0.4 * k
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = build_master(stack, kind, rejection=requested, low=low, high=high,
                              progress=_scaled(progress, start, start + 0.4), cancel=cancel, **options).compute()
        raise_if_cancelled(cancel, group.label)
        notes += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        attrs = ds.attrs
        outcomes.append(_outcome(ds, requested, n, frame_sigma, pattern))
    one, two = outcomes
    difference = np.subtract(two.master, one.master, dtype=np.float32)
    finite = difference[np.isfinite(difference)]
    rms = float(np.sqrt(np.mean(np.square(finite, dtype=np.float64)))) if finite.size else math.nan
    largest = float(np.max(np.abs(finite))) if finite.size else math.nan
    difference.setflags(write=False)
    if progress is not None:
        progress(1.0, "comparison ready")
    return RejectionComparison(
        label=group.label, kind=kind, n_frames=n, crop=(y0, y1, x0, x1), frame_shape=(height, width),
        combine=str(attrs.get("combine", "")), normalization=str(attrs.get("normalization", "")),
        first=one, second=two, difference=difference, difference_rms=rms, difference_max=largest,
        frame_sigma=float(frame_sigma), bayer_pattern=pattern, excluded=dict(left_out),
        warnings=tuple(dict.fromkeys(notes)))


def _resolve(spec: RejectionSpec, n: int, label: str, excluded: int = 0) -> tuple[str, float | None, float | None]:
    """``(rejection, low, high)`` of one choice, checked against the registry and the frame count."""
    if isinstance(spec, str):
        name, low, high = spec, None, None
    elif isinstance(spec, Mapping):
        unknown = set(spec) - {"rejection", "low", "high"}
        if unknown or "rejection" not in spec:
            raise ValueError(f"a rejection to compare is {{'rejection': name, 'low': .., 'high': ..}}, got {dict(spec)}")
        name, low, high = spec["rejection"], spec.get("low"), spec.get("high")
    elif isinstance(spec, Sequence) and len(spec) in (1, 3) and isinstance(spec[0], str):
        name, low, high = (spec[0], None, None) if len(spec) == 1 else tuple(spec)
    else:
        raise ValueError(f"a rejection to compare is a name, (name, low, high) or a mapping, got {spec!r}")
    if name != "auto":
        name = rejection_algorithm(name).name  # unknown names raise, aliases become the name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        algorithm, _ = resolve_rejection(name, n)
    if name != "auto" and algorithm != name:
        # integrate would fall back to another algorithm: the comparison would not be of this one
        left = f" once the {excluded} excluded are left out" if excluded else ""
        raise ValueError(f"{label}: {name} needs at least {rejection_algorithm(name).min_frames} frames, the set has "
                         f"{n}{left}; compare other rejections (or include more frames)")
    entry = rejection_algorithm(algorithm)
    if low is not None or high is not None:
        low, high = entry.check_thresholds(entry.defaults[0] if low is None else low,
                                           entry.defaults[1] if high is None else high)
    return name, low, high


def _bayer_pattern(cube: xr.DataArray) -> str:
    if "bayer_pattern" not in cube.coords or not cube.sizes["frame"]:
        return ""
    return check_bayer_pattern(str(cube["bayer_pattern"].values[0] or ""))


def _window(crop: Sequence[int] | None, size: int, shape: tuple[int, int], pattern: str,
            label: str) -> tuple[int, int, int, int]:
    """The crop as ``(y0, y1, x0, x1)``, checked against the frame and its CFA pattern."""
    if crop is None:
        return central_window(shape, size)
    if len(crop) != 4:
        raise ValueError(f"crop is (y0, y1, x0, x1), got {crop!r}")
    y0, y1, x0, x1 = (int(v) for v in crop)
    height, width = shape
    if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
        raise ValueError(f"{label}: crop rows {y0}:{y1}, columns {x0}:{x1} is not inside the {width} x {height} "
                         "frames (y0 < y1 <= height, x0 < x1 <= width)")
    if pattern and (y0 % 2 or x0 % 2):
        raise ValueError(f"{label}: a colour ({pattern}) set's crop starts on an even row and column, so it keeps "
                         f"the Bayer pattern; got y0={y0}, x0={x0}")
    return y0, y1, x0, x1


def _outcome(ds: xr.Dataset, requested: str, n: int, frame_sigma: float, pattern: str) -> RejectionOutcome:
    arrays = {name: np.asarray(ds[name].values) for name in ("master", "rejected_low", "rejected_high",
                                                              "contributing")}
    for array in arrays.values():
        array.setflags(write=False)
    values = arrays["master"].size * max(1, n)
    low = int(arrays["rejected_low"].sum(dtype=np.int64)) / values
    high = int(arrays["rejected_high"].sum(dtype=np.int64)) / values
    master = arrays["master"]
    noise = clipped_sigma(master[channel_planes(pattern)["G"][0]] if pattern else master)
    expected = math.nan
    kept = arrays["contributing"]
    if math.isfinite(frame_sigma) and kept.size and kept.min() > 0:
        n_eff = 1.0 / float(np.mean(1.0 / kept.astype(np.float64)))
        expected = float(master_noise(frame_sigma, n_eff, "median" if ds.attrs.get("combine") == "median"
                                      else "average"))
    return RejectionOutcome(requested=requested, algorithm=str(ds.attrs["rejection"]),
                            reason=str(ds.attrs.get("rejection_reason", "")), low=float(ds.attrs["low"]),
                            high=float(ds.attrs["high"]), master=master, rejected_low=arrays["rejected_low"],
                            rejected_high=arrays["rejected_high"], contributing=kept, fraction_low=low,
                            fraction_high=high, fraction=low + high, noise=float(noise), expected_noise=expected)
