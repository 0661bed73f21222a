"""Overscan subtraction and trimming, as ccdproc does them, for whole frames and for bands of rows.

CCD cameras of labs and observatories read a few columns (or rows) past the edge of the sensor: the
*overscan*. It holds the bias level of each row as that frame was read out, without light or dark
current. ``BIASSEC`` names it, ``TRIMSEC`` (else ``DATASEC``) the part that holds the image, in the
FITS/IRAF section syntax ``'[x1:x2,y1:y2]'``: 1-based, inclusive, x (the column) first.

:func:`subtract_overscan` and :func:`trim_image` work on whole 2-D frames, as
``ccdproc.subtract_overscan`` and ``ccdproc.trim_image`` do (see their docstrings for the
differences). :class:`OverscanPlan` is what :func:`~astrocal_widgets.open_frames` applies lazily, band
by band, so that masters, flats and lights are corrected before anything else and no more than one
band of rows (or, for a fitted level, one frame's overscan strip) is held per frame.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import SectionError  # re-exported: it was defined here
from .cfa import shift_bayer_pattern

__all__ = [
    "Section", "SectionError", "parse_section", "subtract_overscan", "trim_image", "overscan_level",
    "Overscan", "OverscanPlan", "overscan_plan", "shifted_bayer_pattern", "OVERSCAN_METHODS", "OVERSCAN_FITS",
]

#: Statistics of the overscan along a row (or column).
OVERSCAN_METHODS = ("median", "mean")
#: Smooth fits of the overscan level along the frame (None: the raw per-row values).
OVERSCAN_FITS = (None, "poly")


_RANGE = r"\s*(?:(\*)|(\d+)\s*:\s*(\d+))\s*"
_SECTION = re.compile(rf"^\[{_RANGE},{_RANGE}\]$")


@dataclass(frozen=True)
class Section:
    """A rectangle of a frame in array indices: rows ``y0:y1``, columns ``x0:x1`` (0-based, end excluded).

    Build it from the header text with :func:`parse_section`; :attr:`fits` gives the FITS spelling back.
    """

    x0: int
    x1: int
    y0: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)`` to index a numpy frame."""
        return (slice(self.y0, self.y1), slice(self.x0, self.x1))

    @property
    def fits(self) -> str:
        """The section in FITS spelling, ``'[x1:x2,y1:y2]'`` (1-based, inclusive)."""
        return f"[{self.x0 + 1}:{self.x1},{self.y0 + 1}:{self.y1}]"

    def __str__(self) -> str:
        return self.fits


def parse_section(text: str, shape: tuple[int, int] | None = None, *, keyword: str = "section",
                  path: str | Path | None = None) -> Section:
    """A FITS/IRAF section ``'[x1:x2,y1:y2]'`` as a :class:`Section`, checked against the frame.

    The section is in the stored (binned) pixels of the image, as IRAF and ccdproc read ``BIASSEC``
    and ``TRIMSEC``: binning needs no conversion. ``*`` stands for a whole axis. A reversed range
    (``[100:1,...]``) flips the axis in IRAF and ccdproc; flipping is refused here (we never flip
    pixel data).

    Parameters
    ----------
    text : str
        The header value, e.g. ``'[1:3000,1:2000]'`` (spaces are ignored).
    shape : (height, width), optional
        The frame; the section must lie inside it.
    keyword, path : str, optional
        Name the keyword and the file in error messages.

    Returns
    -------
    Section

    Raises
    ------
    SectionError
        Not the section syntax, a reversed or empty range, or outside the frame (the message names the
        file, the keyword and the value).

    Examples
    --------
    >>> parse_section("[3001:3040,1:2000]")
    Section(x0=3000, x1=3040, y0=0, y1=2000)
    """
    where = f"{path}: " if path is not None else ""
    m = _SECTION.match(str(text))
    if not m:
        raise SectionError(f"{where}{keyword} = {text!r} is not a section '[x1:x2,y1:y2]' (1-based, x first)")
    bounds = []
    for axis, (star, a, b), size in (("x", m.groups()[:3], None if shape is None else shape[1]),
                                     ("y", m.groups()[3:], None if shape is None else shape[0])):
        if star:
            if size is None:
                raise SectionError(f"{where}{keyword} = {text!r}: '*' needs the frame size")
            bounds.append((0, size))
            continue
        lo, hi = int(a), int(b)
        if lo < 1:
            raise SectionError(f"{where}{keyword} = {text!r}: {axis} starts at {lo}; sections start at 1")
        if hi < lo:
            raise SectionError(f"{where}{keyword} = {text!r}: the {axis} range {lo}:{hi} is reversed "
                               "(a flipped section); flipping is not supported")
        if size is not None and hi > size:
            raise SectionError(f"{where}{keyword} = {text!r}: {axis} ends at {hi}, past the frame's "
                               f"{size} {'columns' if axis == 'x' else 'rows'}")
        bounds.append((lo - 1, hi))
    (x0, x1), (y0, y1) = bounds
    return Section(x0, x1, y0, y1)


def _as_section(section: Section | str, shape: tuple[int, int], keyword: str) -> Section:
    return section if isinstance(section, Section) else parse_section(section, shape, keyword=keyword)


def _overscan_axis(section: Section, axis: int | None) -> int:
    """ccdproc's rule for ``overscan_axis=None``: combine along the section's shorter side."""
    if axis is None:
        return 0 if section.width > section.height else 1
    if axis not in (0, 1):
        raise ValueError(f"overscan axis must be 0, 1 or None, got {axis!r}")
    return axis


def _check_method(method: str, fit: str | None, order: int) -> None:
    if method not in OVERSCAN_METHODS:
        raise ValueError(f"overscan method must be one of {OVERSCAN_METHODS}, got {method!r}")
    if fit not in OVERSCAN_FITS:
        raise ValueError(f"overscan fit must be None or 'poly', got {fit!r}")
    if fit is not None and (int(order) != order or order < 0):
        raise ValueError(f"overscan fit order must be an integer >= 0, got {order!r}")


def _combine(values: np.ndarray, method: str, axis: int) -> np.ndarray:
    """Mean or median of the overscan along ``axis`` in float64 (NaN, a BLANK pixel, ignored)."""
    values = np.asarray(values, dtype=np.float64)
    if method == "median":
        return np.nanmedian(values, axis=axis)
    return np.nanmean(values, axis=axis)


def _smooth(profile: np.ndarray, order: int) -> np.ndarray:
    """A least-squares polynomial of ``order`` through the profile, against its index (as ccdproc's
    ``model=Polynomial1D(order)`` with ``LinearLSQFitter``; numpy's ``Polynomial.fit`` maps the index
    onto [-1, 1], which gives the same curve with better conditioning)."""
    index = np.arange(profile.size, dtype=np.float64)
    good = np.isfinite(profile)
    if good.sum() <= order:
        return profile
    poly = np.polynomial.Polynomial.fit(index[good], profile[good], order)
    return poly(index)


def overscan_level(frame: np.ndarray, section: Section | str, *, method: str = "median", fit: str | None = None,
                   order: int = 3, axis: int | None = 1) -> np.ndarray:
    """The overscan level to subtract: one value per row (``axis=1``) or per column (``axis=0``).

    Parameters
    ----------
    frame : 2-D array
    section : Section or str
        ``BIASSEC``.
    method : {'median', 'mean'}
        How each row (column) of the overscan is combined.
    fit : {None, 'poly'}
        None keeps each row's own value; ``'poly'`` fits a polynomial of ``order`` along the rows
        (columns), which removes the noise of each row's few overscan pixels and keeps a slow drift.
    order : int
        Order of the polynomial fit.
    axis : {1, 0, None}
        Along which axis the overscan is combined (ccdproc's ``overscan_axis``): 1 gives a value per
        row (overscan columns), 0 per column (overscan rows), None the section's shorter side.

    Returns
    -------
    ndarray of float64
        One value per row (or column) of the section.
    """
    frame = np.asarray(frame)
    _check_method(method, fit, order)
    sec = _as_section(section, frame.shape, "BIASSEC")
    axis = _overscan_axis(sec, axis)
    profile = _combine(frame[sec.slices], method, axis)
    return _smooth(profile, order) if fit == "poly" else profile


def subtract_overscan(frame: np.ndarray, section: Section | str, *, method: str = "median",
                      fit: str | None = None, order: int = 3, axis: int | None = 1) -> np.ndarray:
    """The frame minus its overscan level, per row (or column), as float32; the input is not changed.

    Follows ``ccdproc.subtract_overscan(ccd, fits_section=section, overscan_axis=axis, median=...,
    model=...)``: the overscan section is combined along ``axis`` and the resulting row (or column)
    profile, optionally a least-squares polynomial through it, is subtracted from every pixel of the
    row (or column). Differences from ccdproc:

    - the default statistic is the median (ccdproc: the mean), which ignores a cosmic ray or a hot
      pixel in the overscan;
    - the fit is named (``fit='poly'``, ``order``) instead of an astropy model;
    - the section may cover fewer rows than the frame (ccdproc then fails to broadcast): rows outside
      it are left as they are here, and :class:`OverscanPlan` refuses a trim section that reaches them;
    - the result is float32 (the package's working type); ccdproc keeps the input's type.

    Parameters
    ----------
    frame : 2-D array
    section : Section or str
        ``BIASSEC``, e.g. ``'[3001:3040,1:2000]'``.
    method, fit, order, axis
        As :func:`overscan_level`.

    Returns
    -------
    ndarray of float32

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.full((4, 6), 100.0); frame[:, :4] += 5
    >>> subtract_overscan(frame, "[5:6,1:4]")[0].tolist()
    [5.0, 5.0, 5.0, 5.0, 0.0, 0.0]
    """
    frame = np.asarray(frame)
    sec = _as_section(section, frame.shape, "BIASSEC")
    axis = _overscan_axis(sec, axis)
    level = overscan_level(frame, sec, method=method, fit=fit, order=order, axis=axis)
    out = frame.astype(np.float32, copy=True)
    if axis == 1:
        out[sec.y0:sec.y1] -= level[:, None].astype(np.float32)
    else:
        out[:, sec.x0:sec.x1] -= level[None, :].astype(np.float32)
    return out


def trim_image(frame: np.ndarray, section: Section | str) -> np.ndarray:
    """A copy of the part of the frame inside ``section`` (``TRIMSEC``), as ``ccdproc.trim_image``.

    Unlike ccdproc, a reversed range is refused rather than flipped (see :func:`parse_section`).
    """
    frame = np.asarray(frame)
    sec = _as_section(section, frame.shape, "TRIMSEC")
    return frame[sec.slices].copy()


# --- what open_frames applies ---------------------------------------------------------------------

@dataclass(frozen=True)
class Overscan:
    """How to apply the headers' sections: ``open_frames(..., overscan=Overscan(method="mean"))``.

    ``overscan="auto"`` is ``Overscan()``: the median of each row's overscan, no fit.

    Parameters
    ----------
    method : {'median', 'mean'}
    fit : {None, 'poly'}
    order : int
        Order of the ``'poly'`` fit.
    """

    method: str = "median"
    fit: str | None = None
    order: int = 3

    def __post_init__(self) -> None:
        _check_method(self.method, self.fit, self.order)

    @classmethod
    def from_option(cls, option: Any) -> "Overscan | None":
        """The options an ``overscan=`` argument means (None: off).

        ``'auto'`` / ``True``: the default (median per row). ``'off'`` / ``None`` / ``False``: None.
        ``'mean'``, ``'median'``, ``'mean-poly3'``, ``'median-poly2'``: that statistic, and a polynomial
        fit of that order (the words the CLI takes and :meth:`word` writes). An :class:`Overscan` as it
        is; a mapping: its fields (``{"method": "mean"}``).
        """
        if isinstance(option, Overscan):
            return option
        if option is None or option is False:
            return None
        if option is True:
            return cls()
        if isinstance(option, Mapping):
            return cls(**option)
        if isinstance(option, str):
            text = option.strip().lower()
            if text == "off":
                return None
            if text == "auto":
                return cls()
            m = re.fullmatch(r"(median|mean)(?:-poly(\d+))?", text)
            if m:
                return cls(m.group(1), "poly" if m.group(2) else None, int(m.group(2) or 3))
        raise ValueError(f"overscan must be 'auto', 'off', 'median', 'mean', 'median-poly<order>', "
                         f"'mean-poly<order>', an Overscan or a mapping of its fields, not {option!r}")

    def word(self) -> str:
        """The options as one word that :meth:`from_option` reads back: 'auto', 'mean', 'median-poly3'."""
        if self == Overscan():
            return "auto"
        return self.method + (f"-poly{self.order}" if self.fit == "poly" else "")


@dataclass(frozen=True)
class OverscanPlan:
    """What to do to one frame: subtract the level of ``biassec`` (if any), keep ``trimsec`` (if any).

    Attributes
    ----------
    shape : (height, width)
        The stored frame.
    biassec, trimsec : Section or None
    options : Overscan
    axis : int
        1: a level per row (overscan columns); 0: per column (overscan rows).
    """

    shape: tuple[int, int]
    biassec: Section | None
    trimsec: Section | None
    options: Overscan
    axis: int = 1

    @property
    def output(self) -> Section:
        """The part of the frame kept (the whole frame when nothing is trimmed)."""
        return self.trimsec or Section(0, self.shape[1], 0, self.shape[0])

    @property
    def output_shape(self) -> tuple[int, int]:
        return self.output.shape

    @property
    def needs_profile(self) -> bool:
        """True when the level needs the whole strip (a fit, or a level per column), not one band."""
        return self.biassec is not None and (self.options.fit is not None or self.axis == 0)

    @property
    def key(self) -> tuple:
        """What must be equal for frames to be stacked together."""
        return (self.shape, self.biassec, self.trimsec, self.axis)

    def describe(self) -> str:
        """In words, for decisions and headers: 'median of columns 3001-3040 per row, trimmed to [...]'."""
        parts = []
        if self.biassec is not None:
            b, o = self.biassec, self.options
            what = (f"columns {b.x0 + 1}-{b.x1} per row" if self.axis == 1
                    else f"rows {b.y0 + 1}-{b.y1} per column")
            fit = f", smoothed by a degree-{o.order} polynomial" if o.fit == "poly" else ""
            parts.append(f"overscan: {o.method} of {what} ({b.fits}){fit} subtracted")
        else:
            parts.append("no overscan section (BIASSEC): no level subtracted")
        parts.append(f"trimmed to {self.trimsec.fits}" if self.trimsec is not None else "not trimmed")
        return ", ".join(parts)

    def profile(self, source: Any) -> np.ndarray:
        """The level of one frame along its whole overscan strip, read in bands of rows (a task)."""
        b = self.biassec
        step = max(1, (4 * 2**20) // max(1, 4 * self.shape[1]))  # about 4 MiB of rows per read
        strip = np.empty(b.shape, dtype=np.float32)
        for y in range(b.y0, b.y1, step):
            end = min(b.y1, y + step)
            strip[y - b.y0:end - b.y0] = source.read_rows(y, end)[:, b.x0:b.x1]
        profile = _combine(strip, self.options.method, self.axis)
        return _smooth(profile, self.options.order) if self.options.fit == "poly" else profile

    def correct(self, raw: np.ndarray, y0: int, profile: np.ndarray | None = None) -> np.ndarray:
        """Rows of the output: ``raw`` holds the stored rows ``output.y0 + y0`` onwards, full width."""
        out_sec = self.output
        data = raw[:, out_sec.x0:out_sec.x1]
        if self.biassec is None:
            return np.ascontiguousarray(data)
        b = self.biassec
        ry0 = out_sec.y0 + y0
        rows = raw.shape[0]
        if self.axis == 1:
            if profile is None:
                level = _combine(raw[:, b.x0:b.x1], self.options.method, 1)
            else:
                level = profile[ry0 - b.y0: ry0 - b.y0 + rows]
            return data - level.astype(np.float32)[:, None]
        level = profile[out_sec.x0 - b.x0: out_sec.x1 - b.x0]
        return data - level.astype(np.float32)[None, :]


def _section_of(header: Mapping[str, Any], names: Sequence[str], shape: tuple[int, int], path: Any,
                read: Any) -> tuple[str, Section] | None:
    for name in names:
        text = read(header, name)
        if text:
            return name, parse_section(text, shape, keyword=name.upper(), path=path)
    return None


def overscan_plan(header: Mapping[str, Any], shape: tuple[int, int], path: str | Path, option: Any = "auto",
                  *, aliases: Mapping[str, Any] | None = None) -> OverscanPlan | None:
    """What ``overscan=option`` does to one frame, from its ``BIASSEC`` and ``TRIMSEC`` (else ``DATASEC``).

    Parameters
    ----------
    header : mapping
    shape : (height, width)
        The stored frame.
    path : path-like
        Named in errors.
    option : 'auto', 'off', Overscan or mapping
        ``'off'``: None. ``'auto'``: the sections the header gives (None when it gives none).
    aliases : mapping, optional
        Extra keywords for the ``biassec`` / ``trimsec`` / ``datasec`` fields.

    Returns
    -------
    OverscanPlan or None

    Raises
    ------
    SectionError
        A section that cannot be read, lies outside the frame, or a trim section with rows (columns)
        the overscan does not cover.
    """
    from .headers import read_field  # noqa: PLC0415 - headers imports nothing from here

    options = Overscan.from_option(option)
    if options is None:
        return None

    def read(h, name):
        return read_field(h, name, aliases=aliases)

    bias = _section_of(header, ("biassec",), shape, path, read)
    trim = _section_of(header, ("trimsec", "datasec"), shape, path, read)
    if bias is None and trim is None:
        return None
    biassec = None if bias is None else bias[1]
    trimsec = None if trim is None else trim[1]
    axis = 1 if biassec is None else _overscan_axis(biassec, None)
    plan = OverscanPlan(tuple(int(s) for s in shape), biassec, trimsec, options, axis)
    if biassec is not None:
        out = plan.output
        if axis == 1 and (out.y0 < biassec.y0 or out.y1 > biassec.y1):
            raise SectionError(f"{path}: BIASSEC = {biassec.fits} covers rows {biassec.y0 + 1}-{biassec.y1}, but "
                               f"the image {out.fits} has rows {out.y0 + 1}-{out.y1}: no overscan level for the others")
        if axis == 0 and (out.x0 < biassec.x0 or out.x1 > biassec.x1):
            raise SectionError(f"{path}: BIASSEC = {biassec.fits} covers columns {biassec.x0 + 1}-{biassec.x1}, "
                               f"but the image {out.fits} has columns {out.x0 + 1}-{out.x1}")
        if trimsec is not None and _overlap(biassec, trimsec):
            raise SectionError(f"{path}: BIASSEC = {biassec.fits} overlaps the image {trimsec.fits} "
                               f"({trim[0].upper()}): the overscan must be outside the data")
    return plan


def _overlap(a: Section, b: Section) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def shifted_bayer_pattern(pattern: str, section: Section | None) -> str:
    """The CFA pattern at ``[0, 0]`` after keeping ``section`` (an odd start moves it)."""
    if not pattern or section is None or (section.x0 % 2 == 0 and section.y0 % 2 == 0):
        return pattern
    return shift_bayer_pattern(pattern, section.y0, section.x0)

