"""Writing masters: FITS with rejection maps and provenance, atomically.

All provenance keywords are written here, in one place (as ccdproc's ``log_meta`` does), from the
attrs that :func:`~astrocal_widgets.integrate.integrate` records.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import dask
import numpy as np
import xarray as xr
from astropy.io import fits

from .._version import __version__
from ..errors import OutputExistsError
from ..io.write import write_fits_atomic

__all__ = ["write_master", "master_header", "MASTER_TYPES"]

MASTER_TYPES = {"bias": "MASTER BIAS", "dark": "MASTER DARK", "darkflat": "MASTER DARKFLAT",
                "flat": "MASTER FLAT", "light": "MASTER LIGHT"}

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
    h["COMBINE"] = (attrs["combine"], "combination of kept values")
    h["REJECT"] = (attrs["rejection"], "pixel rejection algorithm")
    h["REJCODE"] = (_REJECTION_CODES.get(attrs["rejection"], attrs["rejection"]), "Siril/IRAF name")
    h["REJLOW"] = (attrs["low"], "low rejection threshold")
    h["REJHIGH"] = (attrs["high"], "high rejection threshold")
    h["NORMALIZ"] = (attrs["normalization"], "output normalisation")
    h["REJNORM"] = (attrs["rejection_normalization"], "rejection normalisation")
    h["WEIGHTS"] = (str(attrs["weights"]), "frame weights")
    h["ESTIMATR"] = (attrs["estimator"], "location/scale estimator")
    h["CREATOR"] = f"astrocal-widgets {__version__}"
    h.add_history(f"astrocal-widgets {__version__} integrate: {attrs['rejection_reason']}")
    h.add_history(f"combine={attrs['combine']} rejection={attrs['rejection']} low={attrs['low']:g} "
                  f"high={attrs['high']:g} normalization={attrs['normalization']} "
                  f"rejection_normalization={attrs['rejection_normalization']} weights={attrs['weights']}")
    h.add_history(f"guard: {attrs['guard']}")
    if attrs.get("rejected_fraction_low") is not None:
        h["REJFRACL"] = (attrs["rejected_fraction_low"], "fraction of values rejected low")
        h["REJFRACH"] = (attrs["rejected_fraction_high"], "fraction of values rejected high")
    for i, path in enumerate(attrs.get("source_paths", [])):
        h.add_history(_ascii(f"source {i + 1}: {os.path.basename(path)}"))
    return h


def write_master(dataset: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False,
                 progress: Callable[[float, str], None] | None = None) -> Path:
    """Compute a master and write it as FITS, atomically.

    The primary HDU holds the master (float32) with provenance keywords; image extensions
    ``REJ_LOW``, ``REJ_HIGH`` and ``CONTRIB`` hold the per-pixel rejection counts and kept-frame
    counts; a ``SOURCES`` table lists each frame's full path, location, scale and weight.

    Parameters
    ----------
    dataset : xarray.Dataset
        From :func:`~astrocal_widgets.integrate.integrate` (lazy or computed).
    path : path-like
        Destination (``.fits``).
    overwrite : bool, default False
        Replace an existing file; otherwise :class:`~astrocal_widgets.OutputExistsError`.
    progress : callable, optional
        Not used directly (pass ``progress=`` to ``integrate``); accepted for symmetry.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)  # before computing anything
    master, low, high, contributing = dask.compute(dataset["master"].data, dataset["rejected_low"].data,
                                                   dataset["rejected_high"].data, dataset["contributing"].data)
    attrs = dict(dataset.attrs)
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
    sources = attrs.get("source_paths") or []
    if sources:
        n = len(sources)
        # UTF-8 bytes: FITS character columns are bytes, and paths need not be ASCII
        encoded = np.array([s.encode("utf-8") for s in sources])
        cols = [fits.Column("PATH", f"{max(1, encoded.dtype.itemsize)}A", array=encoded),
                fits.Column("LOCATION", "D", array=_vector(attrs.get("locations"), n)),
                fits.Column("SCALE", "D", array=_vector(attrs.get("scales"), n)),
                fits.Column("WEIGHT", "D", array=_vector(attrs.get("weight_values"), n))]
        hdus.append(fits.BinTableHDU.from_columns(cols, name="SOURCES"))
    return write_fits_atomic(path, fits.HDUList(hdus), overwrite=overwrite)


def _vector(values, n: int) -> np.ndarray:
    if values is None or len(values) != n:
        return np.full(n, math.nan)
    return np.asarray(values, dtype=float)
