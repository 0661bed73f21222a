"""``integrate``: rejection and combination of a stack, lazily, band by band.

The cube's frame axis is kept whole and its rows are split into bands; each band task reads its rows
of every frame once and runs the fast kernel (:mod:`.kernels`) on them, so peak memory is set by the
band size, never by frames x frame size. Per-frame location and scale (for normalisation and noise
weights) are estimated once per frame, before the bands run, from a fixed subsample of full-width row
bands (:func:`.estimators.frame_subsample`, about one million pixels per frame).
"""
from __future__ import annotations

import math
import threading
import warnings
from typing import Any, Callable, Sequence

import dask.array as da
import numpy as np
import xarray as xr

from ..cancel import CancelToken
from ..errors import AstrocalError, FrameReadError, IncompatibleFramesError
from ..io.cube import band_rows, open_frames
from ..io.sources import cached_open_source
from . import kernels
from . import reference as _reference_impl
from .estimators import frame_subsample, location_scale, noise_sigma
from .normalization import NORMALIZATIONS, normalization_coefficients
from .registry import REJECTION_ALGORITHMS, rejection_algorithm, rejection_names

__all__ = ["integrate", "resolve_rejection", "REJECTIONS", "COMBINES", "WEIGHTINGS", "AUTO_RULE",
           "MIN_FRAMES", "IntegrationWarning"]

#: ``auto`` (chosen by :data:`AUTO_RULE`) and every algorithm of the rejection registry.
REJECTIONS = ("auto",) + rejection_names()
COMBINES = tuple(kernels.COMBINES)
WEIGHTINGS = ("none", "exposure", "noise")
ESTIMATORS = ("median", "ikss", "ikss_lite")

#: The frame-count rule of experienced PixInsight users ("auto").
AUTO_RULE = ((6, "percentile"), (10, "averaged_sigma"), (25, "winsorized_sigma"), (math.inf, "linear_fit"))

#: Fewest frames each algorithm is meant for; below it the documented fallback applies:
#: percentile for 3 frames or more, no rejection for 1 or 2 (no rejection is possible there).
#: (The registry's ``min_frames``.)
MIN_FRAMES = {a.name: a.min_frames for a in REJECTION_ALGORITHMS.values()}

# Other spellings of the thresholds, per algorithm: (name of low, name of high), from the registry.
_THRESHOLD_ALIASES = {a.name: a.threshold_names for a in REJECTION_ALGORITHMS.values() if a.threshold_names}
_OTHER_PARAMS = ("estimator", "reference", "progress", "label", "guard", "cancel")


#: Siril 1.0.6's guard, offered for cross-checks (``guard="siril"``): numpy reference path, slow.
SIRIL_GUARD_DESCRIPTION = ("Siril 1.0.6 guard (guard='siril'): within a pass at most n_current - r_total - 4 values "
                           "are rejected, in frame order; passes stop at 3 or fewer kept; depends on frame order")
#: The guard against over-rejection (peers differ here, so each implementation must choose one and say which).
GUARD_DESCRIPTION = ("no rejection with 2 or fewer values; iterations stop at 3 or fewer kept; a pass never "
                     "keeps fewer than max(3, ceil(n/2)) values, rejecting the largest deviations first")


class IntegrationWarning(UserWarning):
    """A stack too small for the algorithm, or another choice the user should know about."""


def resolve_rejection(rejection: str, n_frames: int) -> tuple[str, str]:
    """The algorithm to run for ``rejection`` on ``n_frames`` frames, and why.

    Parameters
    ----------
    rejection : str
        One of :data:`REJECTIONS`.
    n_frames : int
        Stack size.

    Returns
    -------
    algorithm, reason : str, str
    """
    if rejection not in REJECTIONS:
        raise ValueError(f"unknown rejection {rejection!r}; choose one of {', '.join(REJECTIONS)}")
    if rejection == "auto":
        for limit, name in AUTO_RULE:
            if n_frames <= limit:
                chosen, reason = name, _auto_reason(name, n_frames)
                break
    else:
        chosen, reason = rejection, "chosen by the user"
    if n_frames < MIN_FRAMES[chosen]:
        fallback = "percentile" if n_frames >= 3 else "none"
        reason = (f"{chosen} needs at least {MIN_FRAMES[chosen]} frames, the stack has {n_frames}: "
                  f"fell back to {fallback}")
        if not (rejection == "auto" and fallback == "percentile"):
            warnings.warn(reason, IntegrationWarning, stacklevel=3)
        chosen = fallback
    return chosen, reason


def _auto_reason(name: str, n: int) -> str:
    above = 0  # the rule's frame counts, in words: "fewer than 7", "7 to 10", ..., "more than 25"
    for limit, rule_name in AUTO_RULE:
        if rule_name == name:
            break
        above = limit
    if above == 0:
        span = f"fewer than {limit + 1}"
    elif math.isinf(limit):
        span = f"more than {above}"
    else:
        span = f"{above + 1} to {limit}"
    return f"auto: {n} frames ({span} frames -> {name})"


def _as_cube(cube: Any) -> xr.DataArray:
    if isinstance(cube, xr.DataArray):
        if cube.dims != ("frame", "y", "x"):
            raise ValueError(f"integrate needs a cube with dims ('frame', 'y', 'x'), got {cube.dims}")
        return cube
    if hasattr(cube, "open") and hasattr(cube, "paths"):
        return cube.open()
    if isinstance(cube, np.ndarray) or isinstance(cube, da.Array):
        if cube.ndim != 3:
            raise ValueError(f"integrate needs a 3-D stack (frame, y, x), got shape {cube.shape}")
        return xr.DataArray(cube, dims=("frame", "y", "x"))
    if isinstance(cube, (list, tuple)) and cube and all(isinstance(f, (np.ndarray, da.Array)) for f in cube):
        # in-memory frames: they must all have one 2-D shape
        shapes = sorted({tuple(f.shape) for f in cube})
        if len(shapes) > 1 or len(shapes[0]) != 2:
            raise IncompatibleFramesError(f"integrate needs frames of one 2-D shape (y, x), got shapes {shapes}")
        stack = da.stack(cube) if any(isinstance(f, da.Array) for f in cube) else np.stack(cube)
        return xr.DataArray(stack, dims=("frame", "y", "x"))
    return open_frames(cube)


def _thresholds(algorithm: str, low: Any, high: Any, params: dict) -> tuple[float, float]:
    names = _THRESHOLD_ALIASES.get(algorithm)
    if names:
        for name, given in zip(names, (low, high)):
            if name in params and given is not None:
                raise TypeError(f"give either low/high or {name}, not both")
        low = params.pop(names[0], low)
        high = params.pop(names[1], high)
    entry = rejection_algorithm(algorithm)
    low = entry.defaults[0] if low is None else low
    high = entry.defaults[1] if high is None else high
    return entry.check_thresholds(low, high)


def _sample_frames(cube: xr.DataArray, rows: np.ndarray) -> list[np.ndarray]:
    """The subsample rows of each frame, read straight from the files when the cube has them."""
    runs = np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1)
    paths = cube["path"].values if "path" in cube.coords else None
    # Only a cube still holding the files' pixels may be sampled from the files: arithmetic keeps
    # the path coordinate (flats - master dark flat), and then the values are no longer the files'.
    if not (isinstance(cube.data, da.Array) and cube.data.name.startswith("read-frames-")):
        paths = None
    out = []
    if paths is not None:
        try:
            sources = [cached_open_source(p)[1] for p in paths]
        except (OSError, FrameReadError):
            sources = None
        if sources is not None and all(s.shape == cube.shape[1:] for s in sources):
            for src in sources:
                out.append(np.concatenate([src.read_rows(int(r[0]), int(r[-1]) + 1) for r in runs]))
            return out
    sample = cube.isel(y=rows)
    values = np.asarray(sample.values if hasattr(sample, "values") else sample, dtype=np.float32)
    return list(values)


def integrate(
    cube: Any,
    *,
    combine: str = "average",
    rejection: str = "auto",
    low: float | None = None,
    high: float | None = None,
    normalization: str = "none",
    rejection_normalization: str | None = None,
    weights: str | Sequence[float] | np.ndarray | None = None,
    **params: Any,
) -> xr.Dataset:
    """Reject outliers and combine a stack of frames into a master, lazily.

    Parameters
    ----------
    cube : xarray.DataArray, catalogue group, folder, glob or list of paths
        The stack, dims ``("frame", "y", "x")`` (anything :func:`~astrocal_widgets.open_frames`
        opens is opened). Integer data are converted to float32; NaN is a missing pixel.
    combine : {"average", "median", "minimum", "maximum", "sum"}
        How kept values are combined. ``sum`` is the weighted mean of kept values times the number
        of valid values, so rejection leaves no dips.
    rejection : str
        ``"auto"`` (frame-count rule: <7 percentile, 7-10 averaged sigma, 11-25 Winsorized sigma,
        >25 linear fit) or the name of an algorithm of the rejection registry
        (:func:`~astrocal_widgets.integrate.rejection_names`: ``"none"``, ``"minmax"``,
        ``"percentile"``, ``"sigma"``, ``"winsorized_sigma"``, ...; a page each in docs/algorithms).
    low, high : float, optional
        Thresholds; their meaning, defaults, valid ranges and keyword aliases are the algorithm's
        (:func:`~astrocal_widgets.integrate.rejection_algorithm`): sigma multiples (sigma family,
        3/3; linear fit 5/5), fractions of the median (percentile, 0.2/0.1), counts (minmax, 1/1),
        or for esd the largest outlier fraction and the significance alpha (0.3/0.05). Aliases:
        ``kl``/``kh``, ``pl``/``ph``, ``n_low``/``n_high``, ``max_outliers``/``alpha``.
    normalization : str
        Output normalisation: ``none``, ``additive``, ``multiplicative``, ``additive_scaling``,
        ``multiplicative_scaling``. Bias and darks: none; flats: multiplicative.
    rejection_normalization : str, optional
        Normalisation of the values rejection sees; defaults to ``normalization``;
        ``equalize_fluxes`` (multiplicative) is allowed here.
    weights : None, "exposure", "noise" or array of N floats
        Frame weights of the average: all 1, exposure time, inverse noise variance (robust
        per-frame estimate), or given.
    **params
        ``estimator`` (``"median"``, default: median and 1.4826 MAD, fastest; ``"ikss_lite"``: clip at 6
        MAD, median and 0.991 sqrt(BWMV), as Siril 1.0.6 normalises; ``"ikss"``) for location and scale;
        ``reference`` (frame index of the normalisation reference, default 0); ``progress``
        (``callable(fraction, message)`` called as bands finish, threaded scheduler); threshold aliases
        above; ``cancel`` (a :class:`~astrocal_widgets.cancel.CancelToken` or :class:`threading.Event`):
        every band looks at it before it runs, so a computation (``.compute()``, ``write_master``)
        raises :class:`~astrocal_widgets.errors.CancelledError` within about one band of
        ``cancel()``. An alias the resolved algorithm does not use is a TypeError (with ``rejection="auto"``:
        an IntegrationWarning, and it is ignored). When a stack is too small for the requested
        algorithm, the fallback runs with its own default thresholds (the ones given were meant for the
        requested algorithm).

    Returns
    -------
    xarray.Dataset
        Lazy variables ``master`` (y, x; float32), ``rejected_low``, ``rejected_high`` and
        ``contributing`` (y, x; uint16). Attrs record every parameter, the resolved algorithm and
        why, the frame count, each frame's location and scale, and the source paths.

    Warns
    -----
    IntegrationWarning
        When the stack is too small for the chosen algorithm (the fallback is recorded).
    """
    unknown = set(params) - set(_OTHER_PARAMS) - {n for pair in _THRESHOLD_ALIASES.values() for n in pair}
    if unknown:
        valid = sorted(set(_OTHER_PARAMS) | {n for pair in _THRESHOLD_ALIASES.values() for n in pair})
        raise TypeError(f"integrate: unknown parameter(s) {sorted(unknown)}; valid: {', '.join(valid)}")
    if combine not in COMBINES:
        raise ValueError(f"unknown combine {combine!r}; choose one of {', '.join(COMBINES)}")
    output_modes = tuple(m for m in NORMALIZATIONS if m != "equalize_fluxes")
    if normalization not in output_modes:
        raise ValueError(f"unknown normalization {normalization!r}; choose one of {', '.join(output_modes)}")
    rejection_normalization = normalization if rejection_normalization is None else rejection_normalization
    if rejection_normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown rejection_normalization {rejection_normalization!r}; "
                         f"choose one of {', '.join(NORMALIZATIONS)}")
    estimator = params.pop("estimator", "median")
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    reference = int(params.pop("reference", 0))
    progress: Callable[[float, str], None] | None = params.pop("progress", None)
    label = params.pop("label", "integrate")
    cancel = CancelToken.of(params.pop("cancel", None))
    guard = params.pop("guard", "half")
    if guard not in ("half", "siril"):
        raise ValueError(f"unknown guard {guard!r}; choose 'half' (ours, default) or 'siril' (Siril 1.0.6's, "
                         "order-dependent, slow; for cross-checks)")

    if cancel is not None:
        cancel.raise_if_cancelled(label)
    cube = _as_cube(cube)
    n, height, width = cube.shape
    if n == 0 or height == 0 or width == 0:
        raise ValueError(f"integrate needs at least one frame of at least one pixel, got shape {cube.shape}")
    if not 0 <= reference < n:
        raise ValueError(f"reference frame {reference} outside the stack of {n} frames")
    if n == 1:
        warnings.warn("a single frame: the master is that frame, nothing can be rejected",
                      IntegrationWarning, stacklevel=2)
    algorithm, reason = resolve_rejection(rejection, n)
    if rejection not in ("auto", algorithm):
        # fell back to another algorithm: thresholds given for the requested one mean something
        # else there (sigma multiples vs fractions of the median), so the fallback's defaults apply
        given = [k for k, v in (("low", low), ("high", high)) if v is not None] + sorted(params)
        if given:
            reason += f" (with its default thresholds; {', '.join(given)} were given for {rejection})"
        low = high = None
        params.clear()
    low_value, high_value = _thresholds(algorithm, low, high, params)
    if params:
        text = (f"parameter(s) {', '.join(sorted(params))} do not apply to rejection {algorithm!r} "
                f"(its thresholds: low/high or {'/'.join(_THRESHOLD_ALIASES.get(algorithm, ('-', '-')))})")
        if rejection != "auto":
            raise TypeError(f"integrate: {text}")
        warnings.warn(f"{text}: ignored ({reason})", IntegrationWarning, stacklevel=2)
    if algorithm == "minmax" and low_value + high_value >= n:
        warnings.warn(f"minmax {low_value:g}/{high_value:g} would drop every one of {n} frames: "
                      "keeping at least one value per pixel", IntegrationWarning, stacklevel=2)

    needs_stats = (normalization != "none" or rejection_normalization != "none"
                   or (isinstance(weights, str) and weights == "noise"))
    locations = np.full(n, np.nan)
    scales = np.full(n, np.nan)
    noises = np.full(n, np.nan)
    if needs_stats:
        rows = frame_subsample((height, width))
        for i, sample in enumerate(_sample_frames(cube, rows)):
            locations[i], scales[i] = location_scale(sample, estimator)
            if isinstance(weights, str) and weights == "noise":
                noises[i] = noise_sigma(sample)
        if progress is not None:
            progress(0.0, "estimated frame locations and scales")
        if cancel is not None:
            cancel.raise_if_cancelled(label)

    paths = [str(p) for p in cube["path"].values] if "path" in cube.coords else []
    rej_scale, rej_offset = _coefficients(locations, scales, rejection_normalization, reference, paths)
    out_scale, out_offset = _coefficients(locations, scales, normalization, reference, paths)
    weight_values = _weights(weights, cube, noises, n)

    if isinstance(cube.data, da.Array):
        data = cube.data
    else:  # in memory: bands of rows too, so the float32 copy and the kernels go band by band
        data = da.from_array(np.asarray(cube.data), chunks=(-1, band_rows(n, height, width), -1))
    if data.dtype != np.float32:
        data = data.astype(np.float32)
    data = data.rechunk({0: -1, 2: -1})
    band_count = len(data.chunks[1])
    if progress is not None and guard != "siril" and kernels.kernels_need_compiling():
        progress(0.0, f"{label}: {kernels.COMPILING_MESSAGE}")
    done = _BandCounter(band_count, progress, label)
    kwargs = dict(rejection=algorithm, low=low_value, high=high_value, combine=combine,
                  weights=weight_values, rej_scale=rej_scale, rej_offset=rej_offset,
                  out_scale=out_scale, out_offset=out_offset)
    if guard == "siril":
        kwargs["guard"] = "siril"  # only the numpy reference implements it
    # meta= keeps dask from calling the kernel on an empty block to guess the output type.
    stacked = data.map_blocks(_integrate_block, dtype=np.float32, chunks=((4,),) + data.chunks[1:],
                              meta=np.empty((0, 0, 0), dtype=np.float32),
                              counter=done if progress is not None else None, cancel=cancel, label=label,
                              **kwargs)
    dims = ("y", "x")
    ds = xr.Dataset({
        "master": (dims, stacked[0]),
        "rejected_low": (dims, stacked[1].astype(np.uint16)),
        "rejected_high": (dims, stacked[2].astype(np.uint16)),
        "contributing": (dims, stacked[3].astype(np.uint16)),
    })
    ds["master"].attrs["units"] = cube.attrs.get("units", "adu")
    ds.attrs.update(_provenance(cube, combine, rejection, algorithm, reason, low_value, high_value,
                                normalization, rejection_normalization, weights, weight_values, estimator,
                                reference, locations, scales, noises, paths, guard=guard))
    return ds


class _BandCounter:
    """Calls progress as band tasks finish (thread-safe; threaded scheduler)."""

    def __init__(self, total: int, progress, label: str):
        self.total, self.progress, self.label = total, progress, label
        self.done = 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        # The callback runs under the lock: two threads finishing together must not report
        # their counts out of order. A second compute of the same graph starts a new 0..1 run.
        with self._lock:
            self.done += 1
            done = (self.done - 1) % self.total + 1
            if self.progress is not None:
                self.progress(done / self.total, f"{self.label}: band {done} of {self.total}")

    def __reduce__(self):
        # On a distributed cluster the callback cannot reach the client: drop it.
        return (_BandCounter, (self.total, None, self.label))


def _integrate_block(block: np.ndarray, *, counter: _BandCounter | None = None, cancel: CancelToken | None = None,
                     label: str = "integrate", **kwargs) -> np.ndarray:
    if cancel is not None:
        # Before the kernel: a cancelled run stops at the next band, and the scheduler raises at once.
        cancel.raise_if_cancelled(label)
    band = np.ascontiguousarray(block, dtype=np.float32)
    if kwargs.get("guard") == "siril":
        master, low, high, contributing = _reference_impl.integrate_band(band, **kwargs)
    else:
        master, low, high, contributing = kernels.integrate_band(band, **kwargs)
    out = np.empty((4,) + master.shape, dtype=np.float32)
    out[0] = master
    out[1] = low
    out[2] = high
    out[3] = contributing
    if counter is not None and (cancel is None or not cancel.cancelled):  # a cancelled run reports no more bands
        counter.tick()
    return out


def _coefficients(locations, scales, mode, reference, paths) -> tuple[np.ndarray, np.ndarray]:
    n = len(locations)
    if mode == "none":
        return np.ones(n), np.zeros(n)
    try:
        return normalization_coefficients(locations, scales, mode, reference=reference)
    except ValueError as exc:
        # Name the file behind "frame i" so the user knows which frame to look at.
        text = str(exc)
        for i, p in enumerate(paths):
            text = text.replace(f"frame {i} ", f"frame {i} ({p}) ")
        raise AstrocalError(text) from exc


def _weights(weights, cube: xr.DataArray, noises: np.ndarray, n: int) -> np.ndarray:
    if weights is None or (isinstance(weights, str) and weights == "none"):
        return np.ones(n)
    if isinstance(weights, str):
        if weights == "exposure":
            if "exposure" not in cube.coords or np.isnan(cube["exposure"].values).any():
                raise AstrocalError("weights='exposure' needs every frame's exposure time in its header")
            w = np.asarray(cube["exposure"].values, dtype=float)
        elif weights == "noise":
            w = 1.0 / noises ** 2
        else:
            raise ValueError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHTINGS)} or an array")
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,):
            raise ValueError(f"weights: expected {n} values (one per frame), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise AstrocalError(f"weights must be finite and > 0, got {np.round(w, 6).tolist()}")
    return w / w.max()


def _provenance(cube, combine, rejection, algorithm, reason, low, high, normalization,
                rejection_normalization, weights, weight_values, estimator, reference, locations, scales,
                noises, paths, guard="half") -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "n_frames": int(cube.shape[0]),
        "combine": combine,
        "rejection_requested": rejection,
        "rejection": algorithm,
        "rejection_reason": reason,
        "low": low,
        "high": high,
        "guard": SIRIL_GUARD_DESCRIPTION if guard == "siril" else GUARD_DESCRIPTION,
        "normalization": normalization,
        "rejection_normalization": rejection_normalization,
        "weights": "none" if weights is None else weights if isinstance(weights, str) else "array",
        "weight_values": weight_values.tolist(),
        "estimator": estimator,
        "reference_frame": reference,
        "locations": locations.tolist(),
        "scales": scales.tolist(),
        "source_paths": paths,
    }
    if np.isfinite(noises).any():
        attrs["noise_sigmas"] = noises.tolist()
    for name in ("frame_type", "exposure", "temperature", "set_temperature", "gain", "offset", "iso", "egain",
                 "readout_mode", "filter", "xbinning", "ybinning", "instrument", "bayer_pattern", "date_obs"):
        if name in cube.coords:
            values = cube[name].values
            if values.dtype.kind == "M":
                values = np.datetime_as_string(values, unit="s")
            attrs[f"frame_{name}"] = values.tolist()
    return attrs
