"""Normalise what capture programs write into one set of frame coordinates.

NINA, Sequence Generator Pro, APT, MaxIm DL / CCDSoft, Siril and DSLR EXIF all spell the same
facts differently (``EXPTIME`` or ``EXPOSURE``, ``CCD-TEMP`` or ``TEMPERAT``, ``'Dark Frame'`` or
``'DARK'``). :func:`frame_metadata` turns a header into the coordinates every cube carries. Missing
values are NaN or empty strings, never invented.

The alias table holds Siril's aliases plus what NINA, SGP, MaxIm and APT write.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = [
    "FRAME_TYPES",
    "COORDINATE_COLUMNS",
    "frame_metadata",
    "frame_type_from_value",
    "frame_type_from_path",
    "bayer_pattern_at_origin",
]

#: Frame types recognised by the toolkit.
FRAME_TYPES = ("bias", "dark", "flat", "darkflat", "light")

#: Coordinate names on the ``frame`` axis of every cube, in table order.
COORDINATE_COLUMNS = (
    "path", "frame_type", "type_reason", "exposure", "temperature", "set_temperature", "gain",
    "offset", "iso", "filter", "xbinning", "ybinning", "date_obs", "instrument", "bayer_pattern",
)

# Keyword aliases, most specific first.
_ALIASES: dict[str, tuple[str, ...]] = {
    "imagetyp": ("IMAGETYP", "FRAMETYP", "FRAME", "IMAGETYPE", "OBSTYPE"),
    "exposure": ("EXPTIME", "EXPOSURE", "EXP_TIME", "EXPOSURETIME"),
    "temperature": ("CCD-TEMP", "CCD_TEMP", "CCDTEMP", "TEMPERAT", "CAMTCCD", "SENSOR-TEMP", "DET-TEMP"),
    "set_temperature": ("SET-TEMP", "SET_TEMP", "SETTEMP", "CCD-TSET"),
    "gain": ("GAIN", "CAMGAIN"),
    "offset": ("OFFSET", "BLKLEVEL", "CAMOFFSET"),
    "iso": ("ISOSPEED", "ISO"),
    "filter": ("FILTER", "FILT-1", "FILTNAME", "FILTER1"),
    "xbinning": ("XBINNING", "BINX", "XBIN", "CCDXBIN"),
    "ybinning": ("YBINNING", "BINY", "YBIN", "CCDYBIN"),
    "date_obs": ("DATE-OBS", "DATE-BEG"),  # not DATE: that is when the file was written
    "instrument": ("INSTRUME", "CAMERA"),
    "bayer_pattern": ("BAYERPAT", "CFA-PAT", "COLORTYP"),
}

# Spellings of frame types in headers, after lower-casing and removing spaces, '-' and '_'.
_TYPE_SPELLINGS = {
    "bias": "bias", "biasframe": "bias", "offset": "bias", "zero": "bias",
    "dark": "dark", "darkframe": "dark", "thermal": "dark",
    "flat": "flat", "flatfield": "flat", "flatframe": "flat", "skyflat": "flat", "domeflat": "flat",
    "twilightflat": "flat",
    "darkflat": "darkflat", "flatdark": "darkflat", "darkflatframe": "darkflat", "flatdarkframe": "darkflat",
    "biasflat": "darkflat",
    "light": "light", "lightframe": "light", "science": "light", "object": "light", "sci": "light",
}

# Tokens in file or folder names. Order matters: dark flats before darks and flats.
_NAME_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("darkflat", re.compile(r"(?<![a-z])(dark[\s_\-.]?flats?|flat[\s_\-.]?darks?)(?![a-z])")),
    ("bias", re.compile(r"(?<![a-z])(bias(es)?)(?![a-z])|^(offsets?|zeros?)$")),
    ("flat", re.compile(r"(?<![a-z])(flats?|flatfields?|skyflats?)(?![a-z])")),
    ("dark", re.compile(r"(?<![a-z])(darks?)(?![a-z])")),
    ("light", re.compile(r"(?<![a-z])(lights?|sci(ence)?|objects?)(?![a-z])")),
)


def frame_type_from_value(value: Any) -> str:
    """Map an ``IMAGETYP``-like value to a frame type, or ``""`` if unknown."""
    if value is None:
        return ""
    key = re.sub(r"[\s\-_]", "", str(value).strip().lower())
    return _TYPE_SPELLINGS.get(key, "")


def frame_type_from_path(path: str | Path, *, file_name_only: bool = False) -> str:
    """Frame type from the file name, else the nearest folder name that names one, else ``""``.

    The file name wins over its folders: ``FLAT/…_darkflat_001.fits`` is a dark flat. ``offset``
    and ``zero`` count only as a whole name part (Siril calls bias frames offsets; "gain139_offset30"
    is a setting, not a type).
    """
    p = Path(path)
    parts = [p.stem] if file_name_only else [p.stem] + [q for q in reversed(p.parent.parts)]
    for part in parts:
        text = part.lower()
        for ftype, pattern in _NAME_PATTERNS:
            if pattern.search(text):
                return ftype
    return ""


def _first(header: Mapping[str, Any], aliases: tuple[str, ...]) -> Any:
    for key in aliases:
        if key in header:
            value = header[key]
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            return value
    return None


def _as_float(value: Any) -> float:
    """A header value as float: numbers as they are, numeric strings parsed, else NaN."""
    if value is None or isinstance(value, bool):
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(str(value).strip().rstrip("s").strip())
    except ValueError:
        return math.nan


def _finite_or_zero(value: Any) -> float:
    """A Bayer offset: a number, else 0 (a blank or odd value must not stop a scan)."""
    v = _as_float(value)
    return v if math.isfinite(v) else 0.0


def _as_datetime(value: Any) -> np.datetime64:
    if value is None:
        return np.datetime64("NaT", "ms")
    text = str(value).strip().replace(" ", "T")
    # FITS allows 'YYYY-MM-DD' and 'YYYY-MM-DDThh:mm:ss[.sss]'; drop a trailing Z / timezone.
    text = re.sub(r"(Z|[+-]\d\d:?\d\d)$", "", text)
    try:
        return np.datetime64(text, "ms")
    except ValueError:
        return np.datetime64("NaT", "ms")


def bayer_pattern_at_origin(pattern: str, xoffset: float = 0, yoffset: float = 0,
                            roworder: str = "", height: int | None = None) -> str:
    """The 2x2 CFA pattern that starts at array element ``[0, 0]`` as the data are stored.

    ``BAYERPAT`` describes the pattern at the top-left of the image shown top-down. ``XBAYROFF`` /
    ``YBAYROFF`` shift it by a column / row. ``ROWORDER='BOTTOM-UP'`` means the first stored row is
    the bottom of the image, so with an even number of rows the stored first row starts on the
    other row of the pattern. We never flip pixel data, so the pattern is moved instead.

    Parameters
    ----------
    pattern : str
        Four letters such as ``'RGGB'``.
    xoffset, yoffset : float
        ``XBAYROFF`` and ``YBAYROFF`` (0 when absent).
    roworder : str
        ``'TOP-DOWN'``, ``'BOTTOM-UP'`` or empty (treated as top-down, as NINA and most writers mean).
    height : int, optional
        Number of rows, needed for ``BOTTOM-UP``.

    Returns
    -------
    str
        The four-letter pattern at ``[0, 0]``, or ``""`` if ``pattern`` is not a 2x2 CFA pattern.
    """
    pat = str(pattern).strip().upper()
    if len(pat) != 4 or set(pat) - set("RGB"):
        return ""
    rows = [pat[:2], pat[2:]]
    shift_y = int(yoffset or 0) % 2
    if roworder.strip().upper() == "BOTTOM-UP" and height is not None and height % 2 == 0:
        shift_y ^= 1
    if shift_y:
        rows = rows[::-1]
    if int(xoffset or 0) % 2:
        rows = [r[::-1] for r in rows]
    return rows[0] + rows[1]


def frame_metadata(header: Mapping[str, Any], path: str | Path, shape: tuple[int, int] | None = None
                   ) -> dict[str, Any]:
    """Normalised coordinates of one frame from its header (FITS, XISF or EXIF mapped to FITS names).

    Parameters
    ----------
    header : mapping
        Keyword -> value, FITS spelling (``astropy.io.fits.Header`` works).
    path : path-like
        The file; its name and folders classify frames whose header has no type.
    shape : (height, width), optional
        Image shape, used to place the Bayer pattern for ``ROWORDER='BOTTOM-UP'``.

    Returns
    -------
    dict
        One value per name in :data:`COORDINATE_COLUMNS`. ``type_reason`` says where
        ``frame_type`` came from.
    """
    meta: dict[str, Any] = {"path": str(path)}

    header_type = frame_type_from_value(_first(header, _ALIASES["imagetyp"]))
    name_type = frame_type_from_path(path)
    file_type = frame_type_from_path(path, file_name_only=True)
    raw_type = _first(header, _ALIASES["imagetyp"])
    product_type = str(raw_type).strip().upper() if raw_type is not None else ""
    if product_type.startswith("MASTER") or product_type == "DEFECT MAP" or "CALSTAT" in header:
        # Our own (or another tool's) products: masters and calibrated frames are not raw frames. A
        # CALSTAT keyword, even empty (a light calibrated when no master matched), marks a product.
        meta["frame_type"] = ""
        what = f"IMAGETYP={raw_type!r}" if "CALSTAT" not in header else f"CALSTAT={header['CALSTAT']!r}"
        meta["type_reason"] = f"product: a master or calibrated frame ({what}), not a raw frame"
    elif header_type and file_type and file_type != header_type and (
        (header_type == "light" and file_type in ("flat", "darkflat"))
        or (header_type == "dark" and file_type == "darkflat")
        or (header_type == "flat" and file_type == "darkflat")
    ):
        # CCDSoft types flats as 'Light Frame'; dark flats are often typed 'Dark Frame'. The
        # more specific *file* name wins (never a folder: '/data/flat-field study/M31/...' holds
        # lights), and the reason says so.
        meta["frame_type"] = file_type
        meta["type_reason"] = f"file name says {file_type} (header IMAGETYP={raw_type!r})"
    elif header_type:
        meta["frame_type"] = header_type
        meta["type_reason"] = f"header IMAGETYP={raw_type!r}"
    elif name_type:
        meta["frame_type"] = name_type
        meta["type_reason"] = "file or folder name"
    else:
        meta["frame_type"] = ""
        meta["type_reason"] = (f"unrecognised IMAGETYP={raw_type!r}" if raw_type is not None
                               else "no IMAGETYP and no type in the file or folder name")

    for name in ("exposure", "temperature", "set_temperature", "gain", "offset", "iso",
                 "xbinning", "ybinning"):
        meta[name] = _as_float(_first(header, _ALIASES[name]))

    filt = _first(header, _ALIASES["filter"])
    if filt is not None and "FILTER" not in header and "FILTER2" in header:
        # Two filter wheels (e.g. TIRCAM2): name both.
        filt = f"{header['FILTER1']}+{header['FILTER2']}" if "FILTER1" in header else filt
    meta["filter"] = "" if filt is None else str(filt).strip()
    meta["date_obs"] = _as_datetime(_first(header, _ALIASES["date_obs"]))
    inst = _first(header, _ALIASES["instrument"])
    meta["instrument"] = "" if inst is None else str(inst).strip()

    pat = _first(header, _ALIASES["bayer_pattern"])
    meta["bayer_pattern"] = "" if pat is None else bayer_pattern_at_origin(
        pat, _finite_or_zero(header.get("XBAYROFF", 0)), _finite_or_zero(header.get("YBAYROFF", 0)),
        str(header.get("ROWORDER", "")), None if shape is None else shape[0])
    return meta
