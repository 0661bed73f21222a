"""Writing masters: FITS with rejection maps and provenance, atomically.

A master's provenance (:func:`master_record`, from the attrs that
:func:`~astrocal_widgets.integrate.integrate` records) is written and read back by the one mechanism
of :mod:`astrocal_widgets.io.provenance`, as every product's is.
"""
from __future__ import annotations

import math
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr
from astropy.io import fits

from .._version import __version__
from ..cancel import CancelToken
from ..errors import OutputExistsError
from ..io.cube import compute_into_arrays
from ..io.provenance import (FIELDS, InputFile, ProductRecord, content_hash, inputs_hash, prefetch_hashes,
                             provenance_from_header, sources_table, write_provenance)
from ..io.write import write_fits_atomic
from .registry import REJECTION_ALGORITHMS

__all__ = ["write_master", "master_header", "master_record", "MASTER_TYPES", "inputs_hash", "master_mismatch"]

MASTER_TYPES = {"bias": "MASTER BIAS", "dark": "MASTER DARK", "darkflat": "MASTER DARKFLAT",
                "flat": "MASTER FLAT", "light": "MASTER LIGHT"}

#: The integration settings in a master's header: keyword, ``integrate`` attribute, comment (the keywords
#: are :data:`~astrocal_widgets.io.provenance.FIELDS`'). Recorded by :func:`master_record` and compared by
#: :func:`master_mismatch`.
_SETTINGS = tuple((FIELDS[name][0], name, FIELDS[name][1]) for name in
                  ("combine", "rejection", "low", "high", "normalization", "rejection_normalization", "weights",
                   "estimator"))

#: The cards of the frames as read (``extra_cards`` of the integration attrs) by keyword: their decisions.
_FIELD_OF_KEYWORD = {FIELDS[name][0]: name for name in ("overscan", "trim")}

#: The camera settings a master records from its frames and compares on reuse: keyword, frame
#: coordinate, comment. Frames of two readout modes or conversion gains never make one master.
_FRAME_SETTINGS = (("READOUTM", "readout_mode", "sensor readout mode"),
                   ("EGAIN", "egain", "[e-/ADU] conversion gain"))

def _common(values: list, numeric: bool = True) -> Any:
    """The value the frames share: the median for numbers (NaN-free), the commonest text."""
    if not values:
        return None
    if numeric:
        arr = np.array([v for v in values if v is not None], dtype=float)
        arr = arr[np.isfinite(arr)]
        return None if arr.size == 0 else float(np.median(arr))
    texts = [str(v) for v in values if v not in (None, "")]
    return Counter(texts).most_common(1)[0][0] if texts else None


def _ascii(text: Any) -> str:
    """FITS headers hold printable ASCII only: escape anything else (a folder named 'Nébuleuse')."""
    return str(text).encode("ascii", "backslashreplace").decode("ascii")


def master_header(attrs: dict[str, Any]) -> fits.Header:
    """The primary header of a master: type, matching keys, NCOMBINE, algorithm, HISTORY, sources.

    Parameters
    ----------
    attrs : dict
        ``Dataset.attrs`` from :func:`~astrocal_widgets.integrate.integrate`.
    """
    h = fits.Header()
    # The catalogue's type wins over the headers' word: NINA 3 dark flats say DARK.
    ftype = attrs.get("master_type") or _common(attrs.get("frame_frame_type", []), numeric=False)
    h["IMAGETYP"] = (MASTER_TYPES.get(ftype or "", "MASTER"), "integrated master frame")
    n = int(attrs["n_frames"])
    h["NCOMBINE"] = (n, "number of frames integrated")
    h["STACKCNT"] = (n, "number of frames integrated (Siril)")
    for key, name, comment in (("EXPTIME", "exposure", "[s] exposure of the frames"),
                               ("EXPOSURE", "exposure", "[s] exposure of the frames"),
                               ("CCD-TEMP", "temperature", "[C] median sensor temperature"),
                               ("SET-TEMP", "set_temperature", "[C] sensor set point"),
                               ("GAIN", "gain", "camera gain setting"),
                               ("OFFSET", "offset", "camera offset setting"),
                               ("ISOSPEED", "iso", "ISO"),
                               ("XBINNING", "xbinning", "binning"),
                               ("YBINNING", "ybinning", "binning")):
        value = _common(attrs.get(f"frame_{name}", []))
        if value is not None:
            h[key] = (int(value) if key in ("XBINNING", "YBINNING") else value, comment)
    temps = np.array([t for t in attrs.get("frame_temperature", []) if t is not None], dtype=float)
    temps = temps[np.isfinite(temps)]
    if temps.size:
        h["TEMPMIN"] = (float(temps.min()), "[C] coldest frame")
        h["TEMPMAX"] = (float(temps.max()), "[C] warmest frame")
    for key, name, comment in _FRAME_SETTINGS:
        value = _frame_setting(attrs, name)
        if value is not None:
            h[key] = (_ascii(value) if isinstance(value, str) else value, comment)
    for key, name in (("FILTER", "filter"), ("INSTRUME", "instrument"), ("BAYERPAT", "bayer_pattern")):
        value = _common(attrs.get(f"frame_{name}", []), numeric=False)
        if value is not None:
            h[key] = _ascii(value)
    if h.get("BAYERPAT"):
        h["XBAYROFF"] = (0, "pattern given at the first stored pixel")
        h["YBAYROFF"] = 0
        h["ROWORDER"] = "TOP-DOWN"
    dates = sorted(d for d in attrs.get("frame_date_obs", []) if d and d != "NaT")
    if dates:
        h["DATE-OBS"] = (dates[0], "first frame")
        h["DATE-END"] = (dates[-1], "last frame")
    write_provenance(h, master_record(attrs))
    return h


def master_record(attrs: dict[str, Any]) -> ProductRecord:
    """A master's provenance from its integration attrs: the settings, its frames, the masters they were
    calibrated with (``attrs["calibrated_with_paths"]``: a flat's dark flats or bias), the frames of the set
    left out on purpose (``attrs["excluded_frames"]``: ``(path, reason)`` pairs), the software.

    Parameters
    ----------
    attrs : dict
        ``Dataset.attrs`` from :func:`~astrocal_widgets.integrate.integrate` (with ``source_hashes`` and
        the rejected fractions once :func:`write_master` has computed them).
    """
    decisions = {name: attrs[name] for _, name, _ in _SETTINGS}
    decisions["weights"] = str(attrs["weights"])
    known = REJECTION_ALGORITHMS.get(attrs["rejection"])
    decisions["rejection_code"] = known.header_code if known else attrs["rejection"]
    decisions["software"] = f"astrocal-widgets {__version__}"
    for key, value, _ in attrs.get("extra_cards", ()):  # the frames' OVERSCAN and TRIM
        if key not in _FIELD_OF_KEYWORD:
            raise ValueError(f"extra_cards: {key} is not a provenance keyword ({', '.join(_FIELD_OF_KEYWORD)})")
        decisions[_FIELD_OF_KEYWORD[key]] = value
    decisions["rejected_fraction_low"] = attrs.get("rejected_fraction_low")
    decisions["rejected_fraction_high"] = attrs.get("rejected_fraction_high") \
        if attrs.get("rejected_fraction_low") is not None else None
    history = [*attrs.get("extra_history", ()),
               f"astrocal-widgets {__version__} integrate: {attrs['rejection_reason']}",
               f"combine={attrs['combine']} rejection={attrs['rejection']} low={attrs['low']:g} "
               f"high={attrs['high']:g} normalization={attrs['normalization']} "
               f"rejection_normalization={attrs['rejection_normalization']} weights={attrs['weights']}",
               f"guard: {attrs['guard']}"]
    sources = attrs.get("source_paths") or []
    hashes = attrs.get("source_hashes")
    n = len(sources)
    per_frame = {name: _vector(attrs.get(key), n) for name, key in (("location", "locations"), ("scale", "scales"),
                                                                    ("weight", "weight_values"))}
    frames = [InputFile("frame", str(path), hashes[i] if hashes else None,
                        **{name: _number(values[i]) for name, values in per_frame.items()})
              for i, path in enumerate(sources)]
    # Which master calibrated the frames (a flat's dark flat or bias), by name and content.
    calibration = [InputFile("calibration", os.path.basename(path), content_hash(path))
                   for path in attrs.get("calibrated_with_paths") or []]
    # Frames of the set left out on purpose (the exclusion list): named with the reason, never inputs.
    excluded = [InputFile("excluded", str(path), reason=str(reason or ""))
                for path, reason in attrs.get("excluded_frames") or []]
    return ProductRecord("master", decisions, tuple(frames + calibration + excluded), tuple(history))


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _frame_setting(attrs: dict[str, Any], name: str) -> Any:
    """The frames' common readout mode (text) or conversion gain (median), or None when unknown."""
    return _common(attrs.get(f"frame_{name}", []), numeric=name != "readout_mode")


def write_master(dataset: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False, reuse: bool = False,
                 progress: Callable[[float, str], None] | None = None,
                 cancel: CancelToken | threading.Event | None = None) -> Path:
    """Compute a master and write it as FITS, atomically.

    The primary HDU holds the master (float32) with provenance keywords; image extensions
    ``REJ_LOW``, ``REJ_HIGH`` and ``CONTRIB`` hold the per-pixel rejection counts and kept-frame
    counts; a ``SOURCES`` table lists each frame's full path, SHA-256, location, scale and weight.
    ``INPHASH`` summarises the input hashes, and ``CALMASn``/``CALSHAn`` name the masters the
    frames were calibrated with (``attrs["calibrated_with_paths"]``).

    Parameters
    ----------
    dataset : xarray.Dataset
        From :func:`~astrocal_widgets.integrate.integrate` (lazy or computed).
    path : path-like
        Destination (``.fits``).
    overwrite : bool, default False
        Replace an existing file; otherwise :class:`~astrocal_widgets.OutputExistsError`.
    reuse : bool, default False
        Keep an existing file that is this master already: made from the same input files (by
        content) with the same settings. Nothing is computed or written, and its path is returned;
        an existing file made from anything else still raises. Makes a notebook cell safe to run
        again.
    progress : callable, optional
        Not used directly (pass ``progress=`` to ``integrate``); accepted for symmetry.
    cancel : CancelToken or threading.Event, optional
        Looked at once the master is computed, before anything is written (pass the same token to
        ``integrate`` to stop the computation itself within a band).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    CancelledError
        When ``cancel`` was set: no file is written (nor any temporary file left).
    """
    path = Path(path)
    if path.exists() and not overwrite:  # before computing anything
        if reuse:
            why = master_mismatch(path, dataset.attrs.get("source_paths") or [],
                                  dataset.attrs.get("calibrated_with_paths") or [], settings=dataset.attrs)
            if why is None:
                return path
            raise OutputExistsError(path, f"is not this master ({why})")
        raise OutputExistsError(path)
    # Counts per pixel never exceed the frame count: one byte each up to 255 frames, which halves the
    # maps' memory and file size (and FITS has no unsigned 16-bit type, so uint16 would need BZERO).
    count_type = np.uint8 if int(dataset.attrs.get("n_frames", 1 << 16)) <= np.iinfo(np.uint8).max else np.uint16
    # The inputs' SHA-256 (for the provenance) are taken while the bands are computed, not after.
    # (A path that cannot be read is skipped there and reported below, as before.)
    prefetch_hashes([*(dataset.attrs.get("source_paths") or []), *(dataset.attrs.get("calibrated_with_paths") or [])])
    master, low, high, contributing = compute_into_arrays([dataset[name].data for name in
                                                           ("master", "rejected_low", "rejected_high",
                                                            "contributing")],
                                                          [np.float32, count_type, count_type, count_type])
    token = CancelToken.of(cancel)
    if token is not None:  # the work is done, but the caller no longer wants the file
        token.raise_if_cancelled(path.name)
    attrs = dict(dataset.attrs)
    sources = attrs.get("source_paths") or []
    # The inputs by content, so a rerun can tell whether this master is still theirs.
    attrs["source_hashes"] = [content_hash(s) if os.path.exists(s) else "" for s in sources]
    total = float(np.sum(contributing, dtype=np.int64) + np.sum(low, dtype=np.int64)
                  + np.sum(high, dtype=np.int64))
    if total > 0:
        attrs["rejected_fraction_low"] = float(np.sum(low, dtype=np.int64) / total)
        attrs["rejected_fraction_high"] = float(np.sum(high, dtype=np.int64) / total)
    header = master_header(attrs)
    hdus = [fits.PrimaryHDU(np.asarray(master, dtype=np.float32), header=header)]
    table = sources_table(master_record(attrs))
    for name, data, comment in (("REJ_LOW", low, "frames rejected low per pixel"),
                                ("REJ_HIGH", high, "frames rejected high per pixel"),
                                ("CONTRIB", contributing, "frames kept per pixel")):
        hdu = fits.ImageHDU(np.asarray(data, dtype=count_type), name=name)
        hdu.header["COMMENT"] = comment
        hdus.append(hdu)
    if table is not None:
        hdus.append(table)
    return write_fits_atomic(path, fits.HDUList(hdus), overwrite=overwrite)


def _vector(values, n: int) -> np.ndarray:
    if values is None or len(values) != n:
        return np.full(n, math.nan)
    return np.asarray(values, dtype=float)


def master_mismatch(path: str | os.PathLike, sources, calibrated_with=(), *,
                    settings: dict[str, Any] | None = None) -> str | None:
    """Why an existing master is not the one these inputs would make, or None when it is.

    Compares the input frames by content (the ``SHA256`` column of its ``SOURCES`` table), the
    masters its frames were calibrated with (``CALSHAn``) and, when ``settings`` (integration attrs)
    are given, the integration settings.

    Parameters
    ----------
    path : path-like
        The existing master.
    sources : sequence of path-like
        The frames it should have been integrated from.
    calibrated_with : sequence of path-like, or None
        The masters those frames should have been calibrated with (a flat's dark flats or bias);
        None does not compare them.
    settings : dict, optional
        ``Dataset.attrs`` of an integration, to compare combine, rejection, thresholds, ... and the
        frames' readout mode and conversion gain (``READOUTM``, ``EGAIN``).

    Returns
    -------
    str or None
    """
    with fits.open(path) as hdul:  # one open for the header and the SOURCES table
        header = hdul[0].header.copy()
        try:
            table = hdul["SOURCES"].data
            if "SHA256" not in table.columns.names:
                raise KeyError("SHA256")
            record = provenance_from_header(header, "master", sources=table)
        except (KeyError, IndexError, ValueError, AttributeError):
            return "it records no input hashes (made elsewhere or by an earlier version)"
    recorded = [f.sha256 or "" for f in record.files("frame")]
    current = [content_hash(s) for s in sources]
    if sorted(recorded) != sorted(current):
        left = Counter(recorded)
        new = []
        for source, digest in zip(sources, current):
            if left[digest] > 0:
                left[digest] -= 1
            else:
                new.append(os.path.basename(str(source)))
        gone = sum(left.values())
        text = f"integrated from {len(recorded)} frames, the set now has {len(current)}"
        if new:
            text += f"; new or changed since: {', '.join(new[:3])}" + (", ..." if len(new) > 3 else "")
        if gone:
            text += f"; {gone} of its frames are no longer in the set or have changed"
        return text
    recorded_cal = sorted(f.sha256 or "" for f in record.files("calibration"))
    current_cal = None if calibrated_with is None else sorted(content_hash(p) for p in calibrated_with)
    if current_cal is not None and recorded_cal != current_cal:
        names = ", ".join(os.path.basename(str(p)) for p in calibrated_with) or "no master"
        return f"its frames were calibrated with other masters than now ({names})"
    if settings is not None:
        recorded_settings = record.decisions
        for _, name, _ in _SETTINGS:
            then = recorded_settings.get(name)
            if name in recorded_settings and name in settings and str(then) != str(settings[name]):
                if _close(then, settings[name]):
                    continue
                return f"{name} {then} in the file, {settings[name]} now"
        for key, name, _ in _FRAME_SETTINGS:
            if f"frame_{name}" not in settings:
                continue
            now, then = _frame_setting(settings, name), header.get(key)
            if now is None and then is None:
                continue
            if now is None or then is None or (str(then) != str(now) and not _close(then, now)):
                return (f"{name.replace('_', ' ')} {then if then is not None else 'not recorded'} in the file, "
                        f"{now if now is not None else 'unknown'} now")
    return None


def _close(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False
