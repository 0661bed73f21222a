"""Normalise what capture programs write into one set of frame coordinates.

NINA, Sequence Generator Pro, APT, MaxIm DL, CCDSoft / TheSkyX, KStars / Ekos, SharpCap, ASIAIR,
observatory systems such as LOIS (IRAF-style headers) and DSLR EXIF all spell the same facts
differently (``EXPTIME`` or ``EXPOSURE``, ``CCD-TEMP``, ``TEMPERAT`` or ``DETTEMP``, ``XBINNING`` or
``CCDSUM = '2 2'``, ``'Dark Frame'`` or ``'DARK'``). :data:`HEADER_FIELDS` is the dialect table: for
each normalised field, the keywords that may hold it in priority order and how each is parsed.
:func:`frame_metadata` turns a header into the coordinates every cube carries, through that table;
:func:`read_field` reads one field. Missing values are NaN, ``NaT`` or empty strings, never invented.

The table is extensible: :func:`register_keywords` adds keywords for the whole session (every
reader goes through the table), and ``scan(..., aliases=...)`` / ``open_frames(..., aliases=...)``
add keywords for one call. The user guide (``docs/headers.md``) lists the table and the dialects.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field as _dataclass_field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .cfa import shift_bayer_pattern
# FRAME_TYPES and the two readers of frame types were defined here: still importable from this module.
from .frame_types import FRAME_TYPES, frame_type_from_path, frame_type_from_value  # noqa: F401

__all__ = [
    "COORDINATE_COLUMNS",
    "HeaderKeyword",
    "HeaderField",
    "HEADER_FIELDS",
    "register_keywords",
    "read_field",
    "frame_metadata",
    "bayer_pattern_at_origin",
    "check_aliases",
    "first_keyword_value",
]

#: Coordinate names on the ``frame`` axis of every cube, in table order.
COORDINATE_COLUMNS = (
    "path", "frame_type", "type_reason", "exposure", "temperature", "set_temperature", "gain",
    "offset", "iso", "egain", "readout_mode", "filter", "xbinning", "ybinning", "date_obs", "instrument",
    "bayer_pattern", "biassec", "trimsec", "datasec",
)


# --- parsers -------------------------------------------------------------------------------------

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


def _as_text(value: Any) -> str:
    """A header value as stripped text (``''`` for nothing)."""
    return "" if value is None else " ".join(str(value).split())


#: Below this a temperature is in °C; above it, in kelvin (observatory detectors often report
#: ``DETTEMP`` in K: a cooled CCD at 173 K; no sensor runs at 120 °C).
KELVIN_THRESHOLD = 120.0


def _as_celsius(value: Any) -> float:
    """A temperature in °C; values of :data:`KELVIN_THRESHOLD` and above are kelvin."""
    v = _as_float(value)
    return v - 273.15 if v >= KELVIN_THRESHOLD else v


def _binning_axis(axis: int) -> Callable[[Any], float]:
    """Parse one axis of a binning written as one string: ``CCDSUM = '2 2'``, ``'2x2'``, ``'2*2'``."""
    def parse(value: Any) -> float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return float(value)  # one number: the same binning on both axes
        parts = re.split(r"[\sx*,]+", str(value).strip().lower())
        parts = [p for p in parts if p]
        if not parts:
            return math.nan
        return _as_float(parts[min(axis, len(parts) - 1)])
    parse.__name__ = f"binning_axis_{axis}"
    return parse


def _as_section_text(value: Any) -> str:
    """A FITS/IRAF section such as ``'[3001:3040, 1:2000]'`` as text without spaces (checked when used)."""
    return "" if value is None else "".join(str(value).split())


def _says_electrons_per_adu(comment: str) -> bool:
    """True when a card's comment says its value is in electrons per ADU (IRAF-style ``GAIN``)."""
    return bool(re.search(r"e-?\s*/\s*(adu|dn|count)|electrons?\s*(per|/)\s*(adu|dn|count)", comment,
                          re.IGNORECASE))


def _not_electrons_per_adu(comment: str) -> bool:
    return not _says_electrons_per_adu(comment)


# --- the table -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HeaderKeyword:
    """One keyword that may hold a field, and how to read it.

    Parameters
    ----------
    keyword : str
        The FITS keyword (upper case; ``HIERARCH`` keywords by their name after ``HIERARCH``).
    parse : callable, optional
        ``parse(value) -> value`` for this keyword; default: the field's parser.
    when : callable, optional
        ``when(comment) -> bool``: the card counts only when its comment passes (``GAIN`` is the
        camera setting unless its comment says e-/ADU).
    note : str
        Who writes it; shown in the documentation.
    """

    keyword: str
    parse: Callable[[Any], Any] | None = None
    when: Callable[[str], bool] | None = None
    note: str = ""


@dataclass(frozen=True)
class HeaderField:
    """A normalised field and the keywords that may hold it, in priority order.

    Parameters
    ----------
    name : str
        The normalised name (a column of the catalogue or a helper such as ``time_obs``).
    keywords : tuple of HeaderKeyword
        Tried in order; the first present, non-blank, accepted and parseable value wins.
    parse : callable
        ``parse(value) -> value``: the default parser of the keywords.
    missing : Any
        The value when no keyword gives one (NaN or ``''``).
    description : str
        What the field means and its unit.
    """

    name: str
    keywords: tuple[HeaderKeyword, ...]
    parse: Callable[[Any], Any]
    missing: Any
    description: str
    extra: tuple[HeaderKeyword, ...] = _dataclass_field(default=(), repr=False)

    @property
    def keyword_names(self) -> tuple[str, ...]:
        """The keywords, in priority order (those added by :func:`register_keywords` first)."""
        return tuple(k.keyword for k in self.extra + self.keywords)


def _k(*names: str, note: str = "", **kwargs: Any) -> tuple[HeaderKeyword, ...]:
    return tuple(HeaderKeyword(n, note=note, **kwargs) for n in names)


_NAN = math.nan

#: The dialect table: normalised field name -> :class:`HeaderField`. Read it through
#: :func:`read_field`; extend it with :func:`register_keywords`.
HEADER_FIELDS: dict[str, HeaderField] = {f.name: f for f in (
    HeaderField("imagetyp", _k("IMAGETYP", note="NINA, SGP, APT, MaxIm DL, CCDSoft, ASIAIR")
                + _k("FRAMETYP") + _k("FRAME", note="KStars / Ekos (INDI)") + _k("IMAGETYPE")
                + _k("OBSTYPE", note="LOIS and IRAF-style observatory headers"),
                _as_text, "", "frame type as written ('Dark Frame', 'DARK', 'Bias', 'OBJECT', ...)"),
    HeaderField("exposure", _k("EXPTIME") + _k("EXPOSURE", note="alone: CCDSoft, SGP")
                + _k("EXP_TIME", "EXPOSURETIME"),
                _as_float, _NAN, "exposure time [s]"),
    HeaderField("temperature", _k("CCD-TEMP", note="NINA, SGP, APT, MaxIm DL, Ekos, SharpCap, ASIAIR")
                + _k("CCD_TEMP", "CCDTEMP") + _k("TEMPERAT", note="CCDSoft (SBIG)")
                + _k("CAMTCCD", "SENSOR-TEMP", "DET-TEMP") + _k("DETTEMP", note="LOIS (°C, or K above 120)"),
                _as_celsius, _NAN, "measured sensor temperature [°C]"),
    HeaderField("set_temperature", _k("SET-TEMP", "SET_TEMP", "SETTEMP", "CCD-TSET", "TEMP_SET"),
                _as_celsius, _NAN, "cooler set point [°C], kept apart from the measured temperature"),
    HeaderField("gain", _k("GAIN", when=_not_electrons_per_adu, note="camera setting (CMOS)")
                + _k("CAMGAIN") + _k("GAINRAW", note="TheSkyX"),
                _as_float, _NAN, "camera gain setting (unitless; not e-/ADU)"),
    HeaderField("offset", _k("OFFSET", "BLKLEVEL", "CAMOFFSET"), _as_float, _NAN, "camera offset setting"),
    HeaderField("iso", _k("ISOSPEED", "ISO"), _as_float, _NAN, "DSLR ISO"),
    HeaderField("egain", _k("EGAIN", note="NINA, SGP, APT, MaxIm DL, CCDSoft") + _k("E-GAIN", note="CCDSoft (SBIG)")
                + _k("GAINADU", note="TheSkyX")
                + _k("GAIN", when=_says_electrons_per_adu, note="IRAF style, when its comment says e-/ADU"),
                _as_float, _NAN, "conversion gain [e-/ADU], kept apart from the gain setting"),
    HeaderField("readout_mode", _k("READOUTM", note="NINA, MaxIm DL, LOIS") + _k("READMODE", "READOUT", "RDMODE"),
                _as_text, "", "sensor readout mode ('High Gain', 'Low Gain', 'Monochrome', ...)"),
    HeaderField("filter", _k("FILTER") + _k("FILT-1") + _k("FILTNAME", note="LOIS") + _k("FILTERS") + _k("FILTER1"),
                _as_text, "", "filter name"),
    HeaderField("xbinning", _k("XBINNING", "BINX", "XBIN") + _k("CCDXBIN", note="CCDSoft (SBIG)")
                + _k("CCDSUM", parse=_binning_axis(0), note="IRAF / LOIS: 'x y'")
                + _k("BINNING", parse=_binning_axis(0), note="'2*2' or '2x2'"),
                _as_float, _NAN, "binning along x (columns)"),
    HeaderField("ybinning", _k("YBINNING", "BINY", "YBIN") + _k("CCDYBIN", note="CCDSoft (SBIG)")
                + _k("CCDSUM", parse=_binning_axis(1), note="IRAF / LOIS: 'x y'")
                + _k("BINNING", parse=_binning_axis(1), note="'2*2' or '2x2'"),
                _as_float, _NAN, "binning along y (rows)"),
    # Not DATE: that is when the file was written.
    HeaderField("date_obs", _k("DATE-OBS", "DATE-BEG", "DATE_OBS"), _as_text, "",
                "start of the exposure (UTC); a date alone is completed by time_obs"),
    HeaderField("time_obs", _k("TIME-OBS", note="CCDSoft, old FITS") + _k("UTCSTART", note="LOIS")
                + _k("UTSTART", "TIME-BEG", "UT"),
                _as_text, "", "time of day of the start (UTC), for a DATE-OBS that holds only the date"),
    HeaderField("instrument", _k("INSTRUME", "CAMERA"), _as_text, "", "camera name"),
    HeaderField("bayer_pattern", _k("BAYERPAT", "CFA-PAT", "COLORTYP"), _as_text, "", "CFA pattern as written"),
    # Sections in stored (binned) pixels, '[x1:x2,y1:y2]', 1-based, inclusive, x first (IRAF, ccdproc).
    HeaderField("biassec", _k("BIASSEC", note="IRAF, LOIS, MaxIm DL (CCDs with overscan)"),
                _as_section_text, "", "overscan section '[x1:x2,y1:y2]' (1-based, x first)"),
    HeaderField("trimsec", _k("TRIMSEC", note="IRAF, LOIS"), _as_section_text, "",
                "section kept after trimming '[x1:x2,y1:y2]'"),
    HeaderField("datasec", _k("DATASEC", note="IRAF, LOIS"), _as_section_text, "",
                "section holding the image data '[x1:x2,y1:y2]' (the trim section when TRIMSEC is absent)"),
)}


def register_keywords(field: str, *keywords: str | HeaderKeyword) -> None:
    """Add keywords to a field of :data:`HEADER_FIELDS`, before its own, for every reader.

    Use it when a capture program writes a keyword the table does not know; every later
    :func:`~astrocal_widgets.scan`, :func:`~astrocal_widgets.open_frames`, master search and
    calibration reads it. Registering a keyword twice keeps one entry.

    Parameters
    ----------
    field : str
        A name of :data:`HEADER_FIELDS` (``'exposure'``, ``'egain'``, ``'readout_mode'``, ...).
    *keywords : str or HeaderKeyword
        Keywords (parsed by the field's parser) or :class:`HeaderKeyword` with their own parser.

    Raises
    ------
    KeyError
        For an unknown field (the message lists the known ones).

    Examples
    --------
    >>> register_keywords("readout_mode", "CAMMODE")  # doctest: +SKIP
    """
    if field not in HEADER_FIELDS:
        raise KeyError(f"unknown header field {field!r}; known: {', '.join(HEADER_FIELDS)}")
    entry = HEADER_FIELDS[field]
    added = tuple(k if isinstance(k, HeaderKeyword) else HeaderKeyword(str(k).strip().upper()) for k in keywords)
    kept = tuple(k for k in entry.extra if k.keyword not in {a.keyword for a in added})
    HEADER_FIELDS[field] = HeaderField(entry.name, entry.keywords, entry.parse, entry.missing, entry.description,
                                       added + kept)


Aliases = Mapping[str, "str | HeaderKeyword | Sequence[str | HeaderKeyword]"]


def check_aliases(aliases: Aliases | None) -> dict[str, tuple[HeaderKeyword, ...]]:
    """Per-call extra keywords by field, validated (an unknown field is an error, not ignored)."""
    if not aliases:
        return {}
    out = {}
    for name, keywords in aliases.items():
        if name not in HEADER_FIELDS:
            raise KeyError(f"aliases: unknown header field {name!r}; known: {', '.join(HEADER_FIELDS)}")
        if isinstance(keywords, (str, HeaderKeyword)):
            keywords = [keywords]
        out[name] = tuple(k if isinstance(k, HeaderKeyword) else HeaderKeyword(str(k).strip().upper())
                          for k in keywords)
    return out


def _comment(header: Mapping[str, Any], keyword: str) -> str:
    comments = getattr(header, "comments", None)
    if comments is None:
        return ""
    try:
        return str(comments[keyword])
    except (KeyError, IndexError):
        return ""


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return math.isnan(value)
    return False


def _lookup(header: Mapping[str, Any], entry: HeaderField,
            extra: Iterable[HeaderKeyword] = ()) -> tuple[str | None, Any, Any]:
    """(keyword, raw value, parsed value) of the first keyword that gives a value, else (None, None, missing)."""
    for kw in tuple(extra) + entry.extra + entry.keywords:
        if kw.keyword not in header:
            continue
        raw = header[kw.keyword]
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        if kw.when is not None and not kw.when(_comment(header, kw.keyword)):
            continue
        value = (kw.parse or entry.parse)(raw)
        if _missing(value):
            continue
        return kw.keyword, raw, value
    return None, None, entry.missing


def read_field(header: Mapping[str, Any], field: str, *, aliases: Aliases | None = None) -> Any:
    """One normalised field of a header, through the dialect table :data:`HEADER_FIELDS`.

    Parameters
    ----------
    header : mapping
        Keyword -> value in FITS spelling (``astropy.io.fits.Header`` works; its comments are
        used where a keyword's meaning depends on them).
    field : str
        A name of :data:`HEADER_FIELDS`.
    aliases : mapping, optional
        Field -> extra keyword(s) tried first, for this call only.

    Returns
    -------
    Any
        The parsed value (float, text), or the field's missing value (NaN or ``''``). ``date_obs``
        is returned as text here; :func:`frame_metadata` completes and parses it.

    Examples
    --------
    >>> read_field({"CCDSUM": "2 2"}, "xbinning")
    2.0
    """
    if field not in HEADER_FIELDS:
        raise KeyError(f"unknown header field {field!r}; known: {', '.join(HEADER_FIELDS)}")
    return _lookup(header, HEADER_FIELDS[field], check_aliases(aliases).get(field, ()))[2]


def first_keyword_value(header: Mapping[str, Any], aliases: tuple[str, ...]) -> Any:
    """The first present, non-blank value among ``aliases`` (raw; for keywords outside the table)."""
    for key in aliases:
        if key in header:
            value = header[key]
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            return value
    return None


def _finite_or_zero(value: Any) -> float:
    """A Bayer offset: a number, else 0 (a blank or odd value must not stop a scan)."""
    v = _as_float(value)
    return v if math.isfinite(v) else 0.0


def _as_datetime(date: Any, time: Any = None) -> np.datetime64:
    """The start of an exposure from a ``DATE-OBS``-like value, completed by a time of day.

    FITS allows ``'YYYY-MM-DD'``, ``'YYYY-MM-DDThh:mm:ss[.sss]'`` and the old ``'DD/MM/YY'`` (19YY).
    A value holding only the date (CCDSoft, LOIS) takes its time from ``time`` (``TIME-OBS``,
    ``UTCSTART``, ...). A trailing ``Z`` or time zone is dropped (UTC); more than millisecond digits
    are cut.
    """
    if date is None:
        return np.datetime64("NaT", "ms")
    text = str(date).strip().replace(" ", "T")
    old = re.fullmatch(r"(\d\d)/(\d\d)/(\d\d)", text)
    if old:
        text = f"19{old.group(3)}-{old.group(2)}-{old.group(1)}"
    text = re.sub(r"(Z|[+-]\d\d:?\d\d)$", "", text)
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text) and time is not None and str(time).strip():
        clock = re.sub(r"(Z|[+-]\d\d:?\d\d)$", "", str(time).strip())
        if re.fullmatch(r"\d{1,2}:\d\d(:\d\d(\.\d*)?)?", clock):
            text = f"{text}T{clock.zfill(len(clock) + (1 if clock.index(':') == 1 else 0))}"
    text = re.sub(r"(\.\d{3})\d+$", r"\1", text)  # numpy wants at most the unit's digits
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
    shift_y = int(yoffset or 0) % 2
    if roworder.strip().upper() == "BOTTOM-UP" and height is not None and height % 2 == 0:
        shift_y ^= 1
    return shift_bayer_pattern(pat, shift_y, xoffset)


def frame_metadata(header: Mapping[str, Any], path: str | Path, shape: tuple[int, int] | None = None,
                   *, aliases: Aliases | None = None) -> dict[str, Any]:
    """Normalised coordinates of one frame from its header (FITS, XISF or EXIF mapped to FITS names).

    Every value is read through the dialect table :data:`HEADER_FIELDS`.

    Parameters
    ----------
    header : mapping
        Keyword -> value, FITS spelling (``astropy.io.fits.Header`` works).
    path : path-like
        The file; its name and folders classify frames whose header has no type.
    shape : (height, width), optional
        Image shape, used to place the Bayer pattern for ``ROWORDER='BOTTOM-UP'``.
    aliases : mapping, optional
        Field -> extra keyword(s), tried before the table's, for this call only, e.g.
        ``{"readout_mode": "CAMMODE"}``.

    Returns
    -------
    dict
        One value per name in :data:`COORDINATE_COLUMNS`. ``type_reason`` says where
        ``frame_type`` came from.

    Raises
    ------
    KeyError
        If ``aliases`` names a field the table does not have.
    """
    extra = check_aliases(aliases)

    def lookup(name: str) -> tuple[str | None, Any, Any]:
        return _lookup(header, HEADER_FIELDS[name], extra.get(name, ()))

    meta: dict[str, Any] = {"path": str(path)}
    type_keyword, raw_type, type_text = lookup("imagetyp")
    header_type = frame_type_from_value(type_text) if type_keyword else ""
    name_type = frame_type_from_path(path)
    file_type = frame_type_from_path(path, file_name_only=True)
    shown = f"{type_keyword or 'IMAGETYP'}={raw_type!r}"
    product_type = type_text.upper() if type_keyword else ""
    if product_type.startswith("MASTER") or product_type == "DEFECT MAP" or "CALSTAT" in header:
        # Our own (or another tool's) products: masters and calibrated frames are not raw frames. A
        # CALSTAT keyword, even empty (a light calibrated when no master matched), marks a product.
        meta["frame_type"] = ""
        what = shown if "CALSTAT" not in header else f"CALSTAT={header['CALSTAT']!r}"
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
        meta["type_reason"] = f"file name says {file_type} (header {shown})"
    elif header_type:
        meta["frame_type"] = header_type
        meta["type_reason"] = f"header {shown}"
    elif name_type:
        meta["frame_type"] = name_type
        meta["type_reason"] = "file or folder name"
    else:
        meta["frame_type"] = ""
        meta["type_reason"] = (f"unrecognised {shown}" if type_keyword
                               else "no IMAGETYP and no type in the file or folder name")

    for name in ("exposure", "temperature", "set_temperature", "gain", "offset", "iso", "egain",
                 "xbinning", "ybinning", "readout_mode", "instrument", "biassec", "trimsec", "datasec"):
        meta[name] = lookup(name)[2]

    filter_keyword, _, filt = lookup("filter")
    if filter_keyword == "FILTER1" and "FILTER2" in header and _as_text(header["FILTER2"]):
        # Two filter wheels (e.g. TIRCAM2): name both.
        filt = f"{filt}+{_as_text(header['FILTER2'])}"
    meta["filter"] = filt
    meta["date_obs"] = _as_datetime(lookup("date_obs")[2] or None, lookup("time_obs")[2] or None)

    pat = lookup("bayer_pattern")[2]
    meta["bayer_pattern"] = "" if not pat else bayer_pattern_at_origin(
        pat, _finite_or_zero(header.get("XBAYROFF", 0)), _finite_or_zero(header.get("YBAYROFF", 0)),
        str(header.get("ROWORDER", "")), None if shape is None else shape[0])
    return meta
