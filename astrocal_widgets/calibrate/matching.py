"""Which calibration frames may calibrate which: the compatibility rules and the checks users forget.

Every frame-like thing (a catalogue row, a :class:`~astrocal_widgets.FrameGroup`, a master's FITS
header or file) is first turned into a :class:`FrameInfo`, a normalised view of the values that
matter for matching. :func:`check_compatibility` then applies the matching rules (docs/calibration.md)
and returns one :class:`Mismatch` per problem, each with a message that names both
frames and both values and says what to do. :func:`enforce` turns the problems into an exception
(``strict=True``) or warnings.

The rules (``Mismatch.rule``), by the role the calibration frame plays for the target:

- ``frame_type`` (all roles): the calibration frame is of the role's type (a dark flat may be a
  NINA 3 ``DARK``); error, a warning when the type is unknown.
- ``size``, ``binning``, ``gain``, ``iso``, ``offset`` (all roles): equal; error.
- ``readout_mode`` (all roles): the same readout mode (``READOUTM``, ``READMODE``, ...; case and
  spacing aside); error. Another mode has another pedestal, conversion gain and read noise.
- ``egain`` (all roles): conversion gains in e-/ADU (``EGAIN``, ``E-GAIN``) within 5 %; error.
- ``temperature`` (bias, dark): sensor temperatures within the tolerance (1 °C by default; the
  set point when no sensor temperature is recorded); error.
- ``temperature_unknown`` (bias, dark): no temperature on either side (DSLR); warning.
- ``night`` (dark): no temperature and taken on another night than the target; error.
- ``temperature_spread`` (bias, dark): some frames of a target group lie beyond the tolerance
  although their median does not; warning.
- ``exposure`` (dark, darkflat): equal within DeepSkyStacker's 5 %, unless dark scaling is allowed
  (darks only); error.
- ``dark_scaling`` (dark, scaling allowed): the dark is shorter, so it would be scaled up; warning.
- ``filter`` (flat): the light's filter; error.
- ``cfa`` (all roles): the same Bayer pattern at the first stored pixel; error.
- ``instrument`` (all roles): the same camera name; warning.

A value recorded on one side only ("cannot check") is a warning, never an error: headers written
by different programs do not all carry every keyword.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from astropy.io import fits

from ..errors import CalibrationMismatchError  # re-exported: it was defined here
from ..frames.catalog import FrameGroup
from ..frames.grouping import (EGAIN_RELATIVE_TOLERANCE, EXPOSURE_RELATIVE_TOLERANCE, egains_match,
                               exposures_match, readout_modes_match)
# master_type_from_value was defined here: still importable from this module.
from ..io.frame_types import (CALIBRATION_TYPES, FRAME_TYPE_PLURALS, FRAME_TYPE_WORDS, frame_type_from_path,
                              master_type_from_value)
from ..io.headers import first_keyword_value, frame_metadata, read_field
from ..io.sources import cached_open_source

__all__ = [
    "FrameInfo", "frame_info", "Mismatch", "check_compatibility", "enforce",
    "CalibrationMismatchError", "CalibrationWarning", "ROLES",
    "ROLE_FRAME_TYPES", "DEFAULT_TEMPERATURE_TOLERANCE", "is_unknown_number",
]

#: What a calibration frame can be used for.
ROLES = CALIBRATION_TYPES
#: Frame types acceptable in each role, preferred first (NINA 3 writes dark flats as ``DARK``).
ROLE_FRAME_TYPES: dict[str, tuple[str, ...]] = {
    "bias": ("bias",), "dark": ("dark",), "darkflat": ("darkflat", "dark"), "flat": ("flat",),
}
#: Sensor temperatures within this many °C match (dark current doubles about every 6 °C).
DEFAULT_TEMPERATURE_TOLERANCE = 1.0

_EPS = 1e-9


# --- the normalised view -------------------------------------------------------------------------

@dataclass(frozen=True)
class FrameInfo:
    """The values of a frame, group or master that matter for matching, normalised.

    Unknown numbers are NaN, unknown text is ``""``, unknown size, frame count and date are None.
    Build one with :func:`frame_info` (or the ``from_*`` class methods).

    Attributes
    ----------
    name : str
        How messages name it: the file's path, or a group's label.
    kind : str
        How messages call it: ``'light'``, ``'master dark'``, ``'flat group'``, ...
    frame_type : str
        ``bias``, ``dark``, ``darkflat``, ``flat``, ``light`` or ``""``.
    path : str or None
        The file (None for a group).
    exposure, temperature, set_temperature : float
        Seconds, sensor temperature (``CCD-TEMP``) and set point (``SET-TEMP``) in °C.
    temperature_min, temperature_max : float
        The temperature range of a group's frames (or a master's ``TEMPMIN``/``TEMPMAX``).
    gain, offset, iso, xbinning, ybinning : float
    egain : float
        Conversion gain in e-/ADU (``EGAIN``), apart from the ``gain`` setting.
    readout_mode : str
        The sensor readout mode as written (``READOUTM``, ...).
    filter, instrument, bayer_pattern : str
        ``bayer_pattern`` is the CFA pattern at the first stored pixel (``ROWORDER`` and
        ``XBAYROFF``/``YBAYROFF`` applied).
    height, width : int or None
    date_obs : pandas.Timestamp or None
    n_frames : int or None
        1 for a frame, the group's size, or a master's ``NCOMBINE``.
    is_master : bool
    imagetyp : str
        The raw ``IMAGETYP`` of a file, as written.
    """

    name: str
    kind: str
    frame_type: str = ""
    path: str | None = None
    exposure: float = math.nan
    temperature: float = math.nan
    set_temperature: float = math.nan
    temperature_min: float = math.nan
    temperature_max: float = math.nan
    gain: float = math.nan
    offset: float = math.nan
    iso: float = math.nan
    egain: float = math.nan
    readout_mode: str = ""
    filter: str = ""
    xbinning: float = math.nan
    ybinning: float = math.nan
    height: int | None = None
    width: int | None = None
    instrument: str = ""
    bayer_pattern: str = ""
    date_obs: pd.Timestamp | None = None
    n_frames: int | None = None
    is_master: bool = False
    imagetyp: str = ""

    # -- derived values --

    @property
    def sensor_temperature(self) -> float:
        """The measured sensor temperature, else the set point, else NaN."""
        return self.temperature if not math.isnan(self.temperature) else self.set_temperature

    @property
    def describe(self) -> str:
        """Kind and name, as messages write it: ``"master dark '/lib/master_dark.fits'"``."""
        return f"{self.kind} '{self.name}'"

    @property
    def night(self) -> pd.Timestamp | None:
        """The calendar date of the evening the frame was taken (``date_obs`` minus 12 h)."""
        if self.date_obs is None:
            return None
        return (self.date_obs - pd.Timedelta(hours=12)).normalize()

    @property
    def plural(self) -> str:
        """``'lights'``, ``'flats'``, ... (for advice such as "take darks at the lights' set point")."""
        return FRAME_TYPE_PLURALS.get(self.frame_type, "frames")

    # -- constructors --

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, name: str | None = None) -> "FrameInfo":
        """From a catalogue row (a :attr:`FrameCatalog.table` row) or a :class:`MasterLibrary` row.

        Parameters
        ----------
        row : pandas.Series or mapping
            With (some of) the catalogue's columns: ``path``, ``frame_type``, ``exposure``, ...
            A ``master_type`` column marks a master (as in the library's table).
        name : str, optional
            Overrides the name used in messages (default: the path).
        """
        get = row.get
        is_master = "master_type" in row or bool(_scalar(get("is_master", False)) or False)
        frame_type = _text(get("master_type")) if "master_type" in row else _text(get("frame_type"))
        path = _text(get("path")) or None
        n = get("ncombine", get("n_frames"))
        return cls(
            name=name or path or "<frame>",
            kind=_kind(frame_type, is_master),
            frame_type=frame_type, path=path,
            exposure=_float(get("exposure")), temperature=_float(get("temperature")),
            set_temperature=_float(get("set_temperature")),
            temperature_min=_float(get("temperature_min")), temperature_max=_float(get("temperature_max")),
            gain=_float(get("gain")), offset=_float(get("offset")), iso=_float(get("iso")),
            egain=_float(get("egain")), readout_mode=_text(get("readout_mode")),
            filter=_text(get("filter")), xbinning=_float(get("xbinning")), ybinning=_float(get("ybinning")),
            height=_int(get("height")), width=_int(get("width")),
            instrument=_text(get("instrument")), bayer_pattern=_text(get("bayer_pattern")),
            date_obs=_timestamp(get("date_obs")),
            n_frames=_int(n) if n is not None else (None if is_master else 1),
            is_master=is_master, imagetyp=_text(get("imagetyp")),
        )

    @classmethod
    def from_group(cls, group: FrameGroup) -> "FrameInfo":
        """From a :class:`~astrocal_widgets.FrameGroup`: its key, completed by its first row.

        The temperature is the key's (bias, darks) or else the median of the frames' sensor
        temperatures; ``temperature_min``/``max`` span the group's frames; the date is the earliest.
        """
        table = group.table
        values: dict[str, Any] = dict(table.iloc[0]) if len(table) else {}
        values.update(group.key)
        temps = pd.to_numeric(table["temperature"], errors="coerce").dropna() if "temperature" in table \
            else pd.Series(dtype=float)
        if is_unknown_number(_float(group.key.get("temperature"))) and len(temps):
            values["temperature"] = float(temps.median())
        if len(temps):
            values["temperature_min"] = float(temps.min())
            values["temperature_max"] = float(temps.max())
        if "date_obs" in table and len(table):
            dates = pd.to_datetime(table["date_obs"], errors="coerce").dropna()
            values["date_obs"] = dates.min() if len(dates) else None
        values["path"] = None
        values["n_frames"] = len(group)
        values["frame_type"] = group.frame_type
        values.pop("master_type", None)
        info = cls.from_row(values, name=group.label)
        return _replace(info, kind=f"{FRAME_TYPE_WORDS.get(group.frame_type, group.frame_type)} group", path=None)

    @classmethod
    def from_header(cls, header: Mapping[str, Any], path: str | os.PathLike | None = None,
                    shape: tuple[int, int] | None = None, *, name: str | None = None) -> "FrameInfo":
        """From a FITS header (frame or master), through :func:`~astrocal_widgets.io.frame_metadata`.

        Parameters
        ----------
        header : mapping
            ``astropy.io.fits.Header`` or keyword -> value in FITS spelling.
        path : path-like, optional
            The file (names it in messages; classifies a frame whose header has no type).
        shape : (height, width), optional
            Default: ``NAXIS2``/``NAXIS1`` from the header.
        name : str, optional
            Overrides the name used in messages.
        """
        if shape is None and "NAXIS1" in header and "NAXIS2" in header:
            shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        meta = frame_metadata(header, path if path is not None else "", shape)
        raw_type = read_field(header, "imagetyp") or None
        master = master_type_from_value(raw_type)
        frame_type = meta["frame_type"]
        if master is not None:
            frame_type = master or (frame_type_from_path(path) if path is not None else "")
        n = first_keyword_value(header, ("NCOMBINE", "STACKCNT"))
        row = dict(meta)
        row.update(
            path=None if path is None else str(path), frame_type=frame_type,
            height=None if shape is None else shape[0], width=None if shape is None else shape[1],
            temperature_min=_float(header.get("TEMPMIN")), temperature_max=_float(header.get("TEMPMAX")),
            n_frames=_int(n) if n is not None else (None if master is not None else 1),
            is_master=master is not None, imagetyp=_text(raw_type),
        )
        return cls.from_row(row, name=name or (str(path) if path is not None else "<header>"))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "FrameInfo":
        """From a frame or master file (FITS, XISF, raw), reading its header only.

        Raises
        ------
        FrameReadError
            If the file cannot be read.
        """
        p = Path(path)
        header, source = cached_open_source(p)
        return cls.from_header(header, p, source.shape)

    def as_row(self) -> dict[str, Any]:
        """The values as a dict (the columns of :attr:`MasterLibrary.table` for a master)."""
        row = asdict(self)
        row.pop("name")
        row.pop("kind")
        return row


def frame_info(obj: Any) -> FrameInfo:
    """A :class:`FrameInfo` of a frame-like object.

    Parameters
    ----------
    obj : FrameInfo, FrameGroup, pandas.Series, mapping, astropy.io.fits.Header or path-like
        A catalogue (or library) row has lower-case column names (``exposure``, ``frame_type``,
        ...); a mapping without them is taken as a FITS header; a path is read (header only).

    Returns
    -------
    FrameInfo
    """
    if isinstance(obj, FrameInfo):
        return obj
    if isinstance(obj, FrameGroup):
        return FrameInfo.from_group(obj)
    if isinstance(obj, fits.Header):
        return FrameInfo.from_header(obj)
    if isinstance(obj, (str, os.PathLike)):
        return FrameInfo.from_file(obj)
    if isinstance(obj, (pd.Series, Mapping)):
        keys = set(obj.index if isinstance(obj, pd.Series) else obj.keys())
        if keys & {"path", "frame_type", "master_type", "exposure", "temperature", "gain", "height"}:
            return FrameInfo.from_row(obj)
        return FrameInfo.from_header(obj)
    raise TypeError(f"cannot match a {type(obj).__name__}: pass a catalogue row, a FrameGroup, "
                    "a FITS header or a file path")


# --- mismatches ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    """One violated compatibility rule.

    Attributes
    ----------
    rule : str
        ``size``, ``binning``, ``gain``, ``iso``, ``offset``, ``temperature``, ``exposure``, ...
        (see the module documentation).
    key : str
        The catalogue column compared (``temperature``, ``exposure``, ``size``, ...).
    target_value, calibration_value : Any
        The two values (NaN / ``""`` / None when unknown).
    severity : {"error", "warning"}
    message : str
        Names both frames and both values and says what to do.
    """

    rule: str
    key: str
    target_value: Any
    calibration_value: Any
    severity: str
    message: str

    def __str__(self) -> str:
        return self.message


class CalibrationWarning(UserWarning):
    """A compatibility problem reported as a warning; ``.mismatch`` holds the :class:`Mismatch`."""

    def __init__(self, mismatch: Mismatch | str):
        self.mismatch = mismatch if isinstance(mismatch, Mismatch) else None
        text = f"{mismatch.severity}: {mismatch.message}" if isinstance(mismatch, Mismatch) else str(mismatch)
        super().__init__(text)


def enforce(mismatches: Iterable[Mismatch], *, strict: bool = True, stacklevel: int = 2) -> list[Mismatch]:
    """Act on the result of :func:`check_compatibility`.

    Parameters
    ----------
    mismatches : iterable of Mismatch
    strict : bool, default True
        Raise :class:`CalibrationMismatchError` listing every error. When False, errors are
        reported as warnings too.
    stacklevel : int, default 2
        Passed to :func:`warnings.warn` (2: the caller of ``enforce``).

    Returns
    -------
    list of Mismatch
        The problems issued as :class:`CalibrationWarning` (one warning each). Warning-severity
        items never raise.

    Raises
    ------
    CalibrationMismatchError
        If ``strict`` and any mismatch has severity ``'error'`` (no warning is issued then; the
        exception lists the warnings too).
    """
    items = list(mismatches)
    errors = [m for m in items if m.severity == "error"]
    if strict and errors:
        raise CalibrationMismatchError(errors, [m for m in items if m.severity != "error"])
    for m in items:
        warnings.warn(CalibrationWarning(m), stacklevel=stacklevel)
    return items


# --- the rules -----------------------------------------------------------------------------------

def check_compatibility(target: Any, calibration: Any, *, role: str,
                        temperature_tolerance: float = DEFAULT_TEMPERATURE_TOLERANCE,
                        allow_dark_scaling: bool = False) -> list[Mismatch]:
    """Every compatibility rule that ``calibration`` breaks as the ``role`` frame of ``target``.

    Parameters
    ----------
    target : frame-like
        What is calibrated: a light (a flat for ``role='darkflat'``; a light, flat or dark for
        ``role='bias'``). Anything :func:`frame_info` accepts: catalogue row, FrameGroup, FITS
        header, path, FrameInfo.
    calibration : frame-like
        The (master) calibration frame.
    role : {"bias", "dark", "darkflat", "flat"}
        What ``calibration`` is for.
    temperature_tolerance : float, default 1.0
        Largest sensor temperature difference in °C (bias and dark roles).
    allow_dark_scaling : bool, default False
        Darks of another exposure are fine (``k = t_L / t_D`` with a master bias); a dark shorter
        than the target still gets a ``dark_scaling`` warning.

    Returns
    -------
    list of Mismatch
        Empty when everything matches. Use :func:`enforce` to raise or warn.

    Examples
    --------
    >>> problems = check_compatibility(light_row, "masters/master_dark.fits", role="dark")  # doctest: +SKIP
    >>> enforce(problems, strict=True)  # raises CalibrationMismatchError on errors      # doctest: +SKIP
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    if not temperature_tolerance >= 0:
        raise ValueError(f"temperature_tolerance must be >= 0 °C, not {temperature_tolerance!r}")
    t, c = frame_info(target), frame_info(calibration)
    out: list[Mismatch] = []
    _check_frame_type(out, t, c, role)
    _check_size(out, t, c, role)
    _check_binning(out, t, c, role)
    _check_setting(out, t, c, role, "gain", "gain", "GAIN",
                   "gain changes the bias level, the dark current in ADU and the flat's levels")
    _check_setting(out, t, c, role, "iso", "ISO", "ISOSPEED", "ISO changes the bias level and the noise")
    _check_setting(out, t, c, role, "offset", "offset", "OFFSET",
                   "the offset sets the bias pedestal that calibration subtracts")
    _check_readout_mode(out, t, c, role)
    _check_egain(out, t, c, role)
    if role in ("bias", "dark"):
        _check_temperature(out, t, c, role, float(temperature_tolerance))
    if role == "dark":
        _check_dark_exposure(out, t, c, allow_dark_scaling)
    if role == "darkflat":
        _check_darkflat_exposure(out, t, c)
    if role == "flat":
        _check_filter(out, t, c)
    _check_cfa(out, t, c, role)
    _check_instrument(out, t, c, role)
    return out


def _check_frame_type(out: list[Mismatch], t: FrameInfo, c: FrameInfo, role: str) -> None:
    allowed = ROLE_FRAME_TYPES[role]
    wanted = FRAME_TYPE_WORDS[role]
    if not c.frame_type:
        out.append(Mismatch("frame_type", "frame_type", t.frame_type, c.frame_type, "warning",
                            f"frame type: cannot check — {c.describe} has no recognisable frame type "
                            f"(IMAGETYP={c.imagetyp!r}); make sure it is a {wanted} before using it for "
                            f"{t.describe}"))
    elif c.frame_type not in allowed:
        out.append(Mismatch("frame_type", "frame_type", t.frame_type, c.frame_type, "error",
                            f"frame type: {c.describe} is a {FRAME_TYPE_WORDS.get(c.frame_type, c.frame_type)}, "
                            f"not a {wanted}, so it cannot serve as the {wanted} of {t.describe} "
                            f"(a {FRAME_TYPE_WORDS.get(t.frame_type, t.frame_type or 'frame')}): use a {wanted}"))


def _check_size(out: list[Mismatch], t: FrameInfo, c: FrameInfo, role: str) -> None:
    ts, cs = (t.width, t.height), (c.width, c.height)
    if None in ts or None in cs:
        if ts != cs:
            out.append(_cannot("size", "size", t, c, role, ts, cs, "image size",
                               lambda v: f"{v[0]}x{v[1]} px", "NAXIS1/NAXIS2"))
        return
    if ts != cs:
        out.append(Mismatch(
            "size", "size", ts, cs, "error",
            f"size: {c.describe} is {cs[0]}x{cs[1]} px but {t.describe} is {ts[0]}x{ts[1]} px: calibration "
            f"frames must have the {t.plural}' size — take the {FRAME_TYPE_PLURALS[role]} with the same camera, "
            f"binning and region of interest (no subframe/ROI, no crop), or crop both identically"))


def _check_binning(out: list[Mismatch], t: FrameInfo, c: FrameInfo, role: str) -> None:
    tb, cb = (t.xbinning, t.ybinning), (c.xbinning, c.ybinning)
    t_known, c_known = not all(map(is_unknown_number, tb)), not all(map(is_unknown_number, cb))
    if not t_known and not c_known:
        return
    if t_known != c_known:
        out.append(_cannot("binning", "binning", t, c, role, tb, cb, "binning", _fmt_bin, "XBINNING/YBINNING"))
        return
    if not all(_same_number(a, b) for a, b in zip(tb, cb)):
        out.append(Mismatch(
            "binning", "binning", tb, cb, "error",
            f"binning: {c.describe} is binned {_fmt_bin(cb)} but {t.describe} is binned {_fmt_bin(tb)}: "
            f"take the {FRAME_TYPE_PLURALS[role]} at the {t.plural}' binning {_fmt_bin(tb)}"))


def _check_setting(out: list[Mismatch], t: FrameInfo, c: FrameInfo, role: str, key: str, word: str,
                   keyword: str, why: str) -> None:
    tv, cv = getattr(t, key), getattr(c, key)
    if is_unknown_number(tv) and is_unknown_number(cv):
        return
    if is_unknown_number(tv) or is_unknown_number(cv):
        out.append(_cannot(key, key, t, c, role, tv, cv, word, lambda v: f"{word} {v:g}", keyword))
        return
    if not _same_number(tv, cv):
        out.append(Mismatch(
            key, key, tv, cv, "error",
            f"{word}: {c.describe} is at {word} {cv:g} but {t.describe} is at {word} {tv:g}: take the "
            f"{FRAME_TYPE_PLURALS[role]} at {word} {tv:g} ({why})"))


def _check_readout_mode(out: list[Mismatch], t: FrameInfo, c: FrameInfo, role: str) -> None:
    tm, cm = t.readout_mode, c.readout_mode
    if not tm and not cm:
        return
    if not tm or not cm:
        out.append(_cannot("readout_mode", "readout_mode", t, c, role, tm, cm, "readout mode",
                           lambda v: f"readout mode '{v}'", "READOUTM/READMODE"))
        return
    if not readout_modes_match(tm, cm):
        out.append(Mismatch(
            "readout_mode", "readout_mode", tm, cm, "error",
            f"readout mode: {c.describe} was read out in '{cm}' but {t.describe} in '{tm}': take the "
            f"{FRAME_TYPE_PLURALS[role]} in readout mode '{tm}' (another readout mode has another pedestal, conversion "
            f"gain and read noise)"))


def _check_egain(out: list[Mismatch], t: FrameInfo, c: FrameInfo, role: str) -> None:
    tg, cg = t.egain, c.egain
    if is_unknown_number(tg) and is_unknown_number(cg):
        return
    if is_unknown_number(tg) or is_unknown_number(cg):
        out.append(_cannot("egain", "egain", t, c, role, tg, cg, "conversion gain",
                           lambda v: f"{v:.3g} e-/ADU", "EGAIN/E-GAIN"))
        return
    if not egains_match(tg, cg):
        out.append(Mismatch(
            "egain", "egain", tg, cg, "error",
            f"conversion gain: {c.describe} is at {cg:.3g} e-/ADU but {t.describe} at {tg:.3g} e-/ADU (more than "
            f"{EGAIN_RELATIVE_TOLERANCE:.0%} apart: another gain setting or readout mode): take the "
            f"{FRAME_TYPE_PLURALS[role]} with the {t.plural}' gain and readout mode"))


def _check_temperature(out: list[Mismatch], t: FrameInfo, c: FrameInfo, role: str, tol: float) -> None:
    tt, ct = t.sensor_temperature, c.sensor_temperature
    if is_unknown_number(tt) or is_unknown_number(ct):
        tn, cn = t.night, c.night
        if role == "dark" and tn is not None and cn is not None and tn != cn:
            out.append(Mismatch(
                "night", "date_obs", t.date_obs, c.date_obs, "error",
                f"night: {_who_lacks_temperature(t, c)}, and {c.describe} is from the night of "
                f"{cn:%Y-%m-%d} while {t.describe} is from the night of {tn:%Y-%m-%d}: darks without "
                f"temperature regulation only match the night (ambient temperature) they were taken in — "
                f"take darks the same night as the {t.plural}, or record the sensor temperature"))
            return
        out.append(Mismatch(
            "temperature_unknown", "temperature", tt, ct, "warning",
            f"temperature: cannot check — {c.describe} is at {_fmt_temp(ct)} and {t.describe} at "
            f"{_fmt_temp(tt)} ({_who_lacks_temperature(t, c, short=True)}; usual for DSLRs): make sure "
            f"the {FRAME_TYPE_PLURALS[role]} were taken at the {t.plural}' sensor temperature (same night, similar "
            f"ambient temperature)"))
        return
    diff = abs(tt - ct)
    if diff > tol + _EPS:
        if role == "dark":
            advice = (f"take darks at the {t.plural}' set point, or use dark scaling with a master bias "
                      f"(dark current doubles every ~6 °C)")
        else:
            advice = (f"take bias frames at the {t.plural}' set point (the bias level of many CMOS sensors "
                      f"drifts with temperature), or choose a master bias at {tt:.1f} °C")
        out.append(Mismatch(
            "temperature", "temperature", tt, ct, "error",
            f"temperature: {c.describe} at {ct:.1f} °C for {t.describe} at {tt:.1f} °C "
            f"differs by {diff:.1f} °C (tolerance {tol:.1f} °C): {advice}"))
        return
    lo, hi = t.temperature_min, t.temperature_max
    if not (is_unknown_number(lo) or is_unknown_number(hi)) and max(abs(lo - ct), abs(hi - ct)) > tol + _EPS:
        out.append(Mismatch(
            "temperature_spread", "temperature", (lo, hi), ct, "warning",
            f"temperature: {t.describe} spans {lo:.1f} to {hi:.1f} °C, beyond the tolerance {tol:.1f} °C of "
            f"{c.describe} at {ct:.1f} °C for some frames (did the cooler hold the set point?): split the "
            f"{t.plural} by temperature and match each part, or drop the frames out of range"))


def _check_dark_exposure(out: list[Mismatch], t: FrameInfo, c: FrameInfo, allow_scaling: bool) -> None:
    te, ce = t.exposure, c.exposure
    if is_unknown_number(te) or is_unknown_number(ce):
        out.append(_cannot("exposure", "exposure", t, c, "dark", te, ce, "exposure",
                           lambda v: f"{v:g} s", "EXPTIME/EXPOSURE"))
        return
    if exposures_match(te, ce):
        return
    if allow_scaling and ce > 0:
        k = te / ce
        if k > 1 + EXPOSURE_RELATIVE_TOLERANCE:
            out.append(Mismatch(
                "dark_scaling", "exposure", te, ce, "warning",
                f"dark scaling: {c.describe} ({ce:g} s) would be scaled up by k = {k:.3g} for {t.describe} "
                f"({te:g} s): scaling up multiplies the dark's noise and hot-pixel residuals — prefer darks "
                f"at least as long as the {t.plural}, and calibrate with a master bias"))
        return
    scaling = ("allow dark scaling (allow_dark_scaling=True) with a master bias" if ce > 0
               else "use a real dark (a 0 s dark cannot be scaled)")
    out.append(Mismatch(
        "exposure", "exposure", te, ce, "error",
        f"exposure: {c.describe} is {ce:g} s but {t.describe} is {te:g} s (more than "
        f"DeepSkyStacker's {EXPOSURE_RELATIVE_TOLERANCE:.0%} apart): take darks at the {t.plural}' "
        f"exposure of {te:g} s, or {scaling}"))


def _check_darkflat_exposure(out: list[Mismatch], t: FrameInfo, c: FrameInfo) -> None:
    te, ce = t.exposure, c.exposure
    if is_unknown_number(te) or is_unknown_number(ce):
        out.append(_cannot("exposure", "exposure", t, c, "darkflat", te, ce, "exposure",
                           lambda v: f"{v:g} s", "EXPTIME/EXPOSURE"))
        return
    if not exposures_match(te, ce):
        out.append(Mismatch(
            "exposure", "exposure", te, ce, "error",
            f"exposure: {c.describe} is {ce:g} s but {t.describe} is {te:g} s: take dark flats "
            f"at the {t.plural}' exposure of {te:g} s (same gain and offset), or calibrate short flats "
            f"with a master bias instead"))


def _check_filter(out: list[Mismatch], t: FrameInfo, c: FrameInfo) -> None:
    tf, cf = t.filter.strip(), c.filter.strip()
    if not tf and not cf:
        return
    if not tf or not cf:
        out.append(_cannot("filter", "filter", t, c, "flat", tf, cf, "filter", lambda v: f"filter '{v}'",
                           "FILTER"))
        return
    if tf.casefold() != cf.casefold():
        out.append(Mismatch(
            "filter", "filter", tf, cf, "error",
            f"filter: {c.describe} was taken through filter '{cf}' but {t.describe} through '{tf}': use "
            f"flats taken with filter '{tf}' (flats are per filter and optical setup: no rotation or refocus "
            f"between flats and lights)"))


def _check_cfa(out: list[Mismatch], t: FrameInfo, c: FrameInfo, role: str) -> None:
    tp, cp = t.bayer_pattern.strip().upper(), c.bayer_pattern.strip().upper()
    if not tp and not cp:
        return
    if not tp or not cp:
        out.append(_cannot("cfa", "bayer_pattern", t, c, role, tp, cp, "Bayer (CFA) pattern",
                           lambda v: f"Bayer pattern {v}", "BAYERPAT"))
        return
    if tp != cp:
        out.append(Mismatch(
            "cfa", "bayer_pattern", tp, cp, "error",
            f"CFA pattern: {c.describe} has Bayer pattern {cp} but {t.describe} has {tp} (at the first stored "
            f"pixel): a different camera, or frames flipped or cropped differently (check ROWORDER and "
            f"XBAYROFF/YBAYROFF) — use {FRAME_TYPE_PLURALS[role]} from the same camera in the same orientation"))


def _check_instrument(out: list[Mismatch], t: FrameInfo, c: FrameInfo, role: str) -> None:
    ti, ci = t.instrument.strip(), c.instrument.strip()
    if ti and ci and ti.casefold() != ci.casefold():
        out.append(Mismatch(
            "instrument", "instrument", ti, ci, "warning",
            f"instrument: {c.describe} was taken with '{ci}' but {t.describe} with '{ti}': calibration frames "
            f"must come from the same camera (the same sensor, not just the same model); check that these "
            f"{FRAME_TYPE_PLURALS[role]} belong to this camera"))


# --- helpers -------------------------------------------------------------------------------------

def _cannot(rule: str, key: str, t: FrameInfo, c: FrameInfo, role: str, tv: Any, cv: Any, word: str,
            fmt: Any, keyword: str) -> Mismatch:
    """A 'cannot check' warning: one side records the value, the other does not."""
    t_known = not _unknown(tv)
    have, lack = (t, c) if t_known else (c, t)
    value = fmt(tv if t_known else cv)
    if _unknown(tv) and _unknown(cv):
        text = (f"{word}: cannot check — neither {t.describe} nor {c.describe} records the {word} "
                f"({keyword}): make sure the {FRAME_TYPE_PLURALS[role]} match the {t.plural}")
    else:
        text = (f"{word}: cannot check — {lack.describe} records no {word} ({keyword}) while "
                f"{have.describe} is at {value}: make sure the {FRAME_TYPE_PLURALS[role]} were taken at {value}")
    return Mismatch(rule, key, tv, cv, "warning", text)


def _who_lacks_temperature(t: FrameInfo, c: FrameInfo, *, short: bool = False) -> str:
    t_nan, c_nan = is_unknown_number(t.sensor_temperature), is_unknown_number(c.sensor_temperature)
    if t_nan and c_nan:
        return (f"neither the {t.kind} nor the {c.kind}" if short else f"neither {t.describe} nor {c.describe}") \
            + " records a sensor temperature (CCD-TEMP/SET-TEMP)"
    lack = t if t_nan else c
    return f"{'the ' + lack.kind if short else lack.describe} records no sensor temperature (CCD-TEMP/SET-TEMP)"


def _unknown(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    if isinstance(v, tuple):
        return all(_unknown(x) for x in v)
    return is_unknown_number(v)


def _kind(frame_type: str, is_master: bool) -> str:
    word = FRAME_TYPE_WORDS.get(frame_type, frame_type or "frame")
    return f"master {word}" if is_master else word


def _replace(info: FrameInfo, **changes: Any) -> FrameInfo:
    values = asdict(info)
    values.update(changes)
    return FrameInfo(**values)


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def is_unknown_number(v: Any) -> bool:
    """True for None and NaN (and what ``float()`` turns into NaN); False for any other value."""
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def _float(v: Any) -> float:
    v = _scalar(v)
    if v is None or isinstance(v, bool) or v is pd.NaT or v is pd.NA:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _int(v: Any) -> int | None:
    f = _float(v)
    return None if math.isnan(f) else int(round(f))


def _text(v: Any) -> str:
    v = _scalar(v)
    if v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def _timestamp(v: Any) -> pd.Timestamp | None:
    if v is None:
        return None
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT or pd.isna(ts):
        return None
    return ts.tz_convert(None) if ts.tzinfo is not None else ts


def _same_number(a: float, b: float) -> bool:
    if is_unknown_number(a) and is_unknown_number(b):
        return True
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def _fmt_bin(b: tuple[float, float]) -> str:
    return "x".join("?" if is_unknown_number(v) else f"{v:g}" for v in b)


def _fmt_temp(v: float) -> str:
    return "unknown" if is_unknown_number(v) else f"{v:.1f} °C"
