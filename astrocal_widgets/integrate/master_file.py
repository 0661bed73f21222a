"""Writing masters: FITS with rejection maps and provenance, atomically.

All provenance keywords are written here, in one place (as ccdproc's ``log_meta`` does), from the
attrs that :func:`~astrocal_widgets.integrate.integrate` records.
"""
from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import dask
import dask.array as da
import dask.base as dask_base
import dask.local
import dask.threaded
import numpy as np
import xarray as xr
from astropy.io import fits

from .._version import __version__
from ..errors import OutputExistsError
from ..io.provenance import content_hash, header_path
from ..io.write import write_fits_atomic

__all__ = ["write_master", "master_header", "MASTER_TYPES", "inputs_hash", "master_mismatch"]

MASTER_TYPES = {"bias": "MASTER BIAS", "dark": "MASTER DARK", "darkflat": "MASTER DARKFLAT",
                "flat": "MASTER FLAT", "light": "MASTER LIGHT"}

#: The integration settings in a master's header: keyword, ``integrate`` attribute, comment. Written by
#: :func:`master_header` and compared by :func:`master_mismatch`.
_SETTINGS = (("COMBINE", "combine", "combination of kept values"),
             ("REJECT", "rejection", "pixel rejection algorithm"),
             ("REJLOW", "low", "low rejection threshold"), ("REJHIGH", "high", "high rejection threshold"),
             ("NORMALIZ", "normalization", "output normalisation"),
             ("REJNORM", "rejection_normalization", "rejection normalisation"),
             ("WEIGHTS", "weights", "frame weights"), ("ESTIMATR", "estimator", "location/scale estimator"))

#: The camera settings a master records from its frames and compares on reuse: keyword, frame
#: coordinate, comment. Frames of two readout modes or conversion gains never make one master.
_FRAME_SETTINGS = (("READOUTM", "readout_mode", "sensor readout mode"),
                   ("EGAIN", "egain", "[e-/ADU] conversion gain"))

_REJECTION_CODES = {"none": "none", "minmax": "minmax", "percentile": "percentile", "sigma": "sigma",
                    "mad": "mad", "averaged_sigma": "avsigclip", "winsorized_sigma": "winsorized",
                    "linear_fit": "linearfit", "esd": "gesdt"}


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
    for key, name, comment in _SETTINGS:
        h[key] = (str(attrs[name]) if key == "WEIGHTS" else attrs[name], comment)
        if key == "REJECT":
            h["REJCODE"] = (_REJECTION_CODES.get(attrs["rejection"], attrs["rejection"]), "Siril/IRAF name")
    h["CREATOR"] = f"astrocal-widgets {__version__}"
    for key, value, comment in attrs.get("extra_cards", ()):  # e.g. OVERSCAN and TRIM of the frames
        h[key] = (value, comment)
    for text in attrs.get("extra_history", ()):
        h.add_history(_ascii(text))
    h.add_history(f"astrocal-widgets {__version__} integrate: {attrs['rejection_reason']}")
    h.add_history(f"combine={attrs['combine']} rejection={attrs['rejection']} low={attrs['low']:g} "
                  f"high={attrs['high']:g} normalization={attrs['normalization']} "
                  f"rejection_normalization={attrs['rejection_normalization']} weights={attrs['weights']}")
    h.add_history(f"guard: {attrs['guard']}")
    if attrs.get("rejected_fraction_low") is not None:
        h["REJFRACL"] = (attrs["rejected_fraction_low"], "fraction of values rejected low")
        h["REJFRACH"] = (attrs["rejected_fraction_high"], "fraction of values rejected high")
    hashes = attrs.get("source_hashes")
    if hashes:
        h["INPHASH"] = inputs_hash(hashes)  # SHA-256 over the sorted input hashes (no room for a comment)
    calibrated_with = attrs.get("calibrated_with_paths") or []
    for i, path in enumerate(calibrated_with):
        # Which master calibrated the frames (a flat's dark flat or bias), by name and content.
        h[f"CALMAS{i + 1}"] = header_path(os.path.basename(path))
        h[f"CALSHA{i + 1}"] = content_hash(path)
    for i, path in enumerate(attrs.get("source_paths", [])):
        h.add_history(_ascii(f"source {i + 1}: {os.path.basename(path)}"))
    return h


def _frame_setting(attrs: dict[str, Any], name: str) -> Any:
    """The frames' common readout mode (text) or conversion gain (median), or None when unknown."""
    return _common(attrs.get(f"frame_{name}", []), numeric=name != "readout_mode")


def inputs_hash(hashes) -> str:
    """One SHA-256 for a set of input hashes (order does not matter: frames may be listed in any order)."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode("ascii")).hexdigest()


def write_master(dataset: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False, reuse: bool = False,
                 progress: Callable[[float, str], None] | None = None) -> Path:
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

    Returns
    -------
    pathlib.Path
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
    master, low, high, contributing = _computed([dataset[name].data for name in
                                                 ("master", "rejected_low", "rejected_high", "contributing")])
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
    for name, data, comment in (("REJ_LOW", low, "frames rejected low per pixel"),
                                ("REJ_HIGH", high, "frames rejected high per pixel"),
                                ("CONTRIB", contributing, "frames kept per pixel")):
        hdu = fits.ImageHDU(np.asarray(data, dtype=np.uint16), name=name)
        hdu.header["COMMENT"] = comment
        hdus.append(hdu)
    if sources:
        n = len(sources)
        # UTF-8 bytes: FITS character columns are bytes, and paths need not be ASCII
        encoded = np.array([s.encode("utf-8") for s in sources])
        cols = [fits.Column("PATH", f"{max(1, encoded.dtype.itemsize)}A", array=encoded),
                fits.Column("LOCATION", "D", array=_vector(attrs.get("locations"), n)),
                fits.Column("SCALE", "D", array=_vector(attrs.get("scales"), n)),
                fits.Column("WEIGHT", "D", array=_vector(attrs.get("weight_values"), n)),
                fits.Column("SHA256", "64A", array=np.array([h.encode("ascii") for h in attrs["source_hashes"]]))]
        hdus.append(fits.BinTableHDU.from_columns(cols, name="SOURCES"))
    return write_fits_atomic(path, fits.HDUList(hdus), overwrite=overwrite)


def _computed(arrays: list[Any]) -> list[np.ndarray]:
    """The arrays computed together. On this machine's own scheduler each band is stored straight
    into the final array as it is made, so the bands are not all held and then copied once more
    (a quarter of a gigabyte for a 24-megapixel master and its rejection maps)."""
    lazy = [a for a in arrays if isinstance(a, da.Array)]
    if len(lazy) != len(arrays) or dask_base.get_scheduler(collections=lazy) not in (dask.threaded.get,
                                                                                    dask.local.get_sync):
        return list(dask.compute(*arrays))
    targets = [np.empty(a.shape, a.dtype) for a in lazy]
    da.store(lazy, targets, lock=False)
    return targets


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
            recorded = [h.decode() if isinstance(h, bytes) else str(h) for h in hdul["SOURCES"].data["SHA256"]]
        except (KeyError, IndexError, ValueError):
            return "it records no input hashes (made elsewhere or by an earlier version)"
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
    recorded_cal = sorted(str(header[k]) for k in header if k.startswith("CALSHA"))
    current_cal = None if calibrated_with is None else sorted(content_hash(p) for p in calibrated_with)
    if current_cal is not None and recorded_cal != current_cal:
        names = ", ".join(os.path.basename(str(p)) for p in calibrated_with) or "no master"
        return f"its frames were calibrated with other masters than now ({names})"
    if settings is not None:
        for key, name, _ in _SETTINGS:
            if key in header and name in settings and str(header[key]) != str(settings[name]):
                if _close(header[key], settings[name]):
                    continue
                return f"{name} {header[key]} in the file, {settings[name]} now"
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
