"""A library of masters, found again by their matching keys and reused across nights.

Masters carry their matching keys in the FITS header (``IMAGETYP='MASTER DARK'``, ``EXPTIME``,
``CCD-TEMP``, ``GAIN``, ``OFFSET``, ``READOUTM``, ``EGAIN``, ``NCOMBINE``, ...; see
:func:`~astrocal_widgets.integrate.master_file.master_header`). :class:`MasterLibrary` indexes a folder of
them from their headers alone, and :func:`find_master` picks the best compatible one for a light,
flat or group, saying why it was chosen and why each other master was not.

A bias, and a dark of a temperature-regulated camera, are reused across nights whenever their keys
match; a dark without a sensor temperature (DSLR) only matches its own night (rule ``night`` of
:func:`~astrocal_widgets.calibrate.matching.check_compatibility`).
"""
from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
from astropy.io import fits

from ..errors import AstrocalError, FrameReadError, MissingExtraError, NotAMasterError  # NotAMasterError: re-exported
from ..frames.grouping import EXPOSURE_RELATIVE_TOLERANCE, exposures_match
from ..io.cube import find_frame_files
from ..io.frame_types import FRAME_TYPE_PLURALS, FRAME_TYPE_WORDS
from ..io.provenance import canonical_path
from ..io.sources import FITS_SUFFIXES, XISF_SUFFIXES
from .matching import (DEFAULT_TEMPERATURE_TOLERANCE, ROLE_FRAME_TYPES, ROLES, FrameInfo, Mismatch,
                       check_compatibility, frame_info, is_unknown_number)

__all__ = ["MasterLibrary", "MasterChoice", "find_master", "NotAMasterError", "LIBRARY_COLUMNS"]

#: Columns of :attr:`MasterLibrary.table`.
LIBRARY_COLUMNS = (
    "path", "master_type", "imagetyp", "exposure", "temperature", "set_temperature", "temperature_min",
    "temperature_max", "gain", "offset", "iso", "egain", "readout_mode", "filter", "xbinning", "ybinning", "height", "width",
    "instrument", "bayer_pattern", "ncombine", "date_obs",
)


class MasterLibrary:
    """Masters under a folder (recursively), indexed by the matching keys in their headers.

    Parameters
    ----------
    folder : path-like
        The library folder, e.g. one sub-folder per night. It need not exist yet (an empty library).
    recursive : bool, default True
        Look into sub-folders.

    Attributes
    ----------
    folder : pathlib.Path
    table : pandas.DataFrame
        One row per master: the columns of :data:`LIBRARY_COLUMNS` (``master_type`` is ``bias``,
        ``dark``, ``darkflat`` or ``flat``; ``ncombine`` is ``NCOMBINE``; ``date_obs`` the first frame's
        ``DATE-OBS``), sorted by path.
    skipped : pandas.DataFrame
        Files that could not be read or are masters of unknown type, with the ``problem``.
    ignored : list of str
        Frame files under the folder that are not masters (``IMAGETYP`` not ``MASTER ...``).

    Examples
    --------
    >>> lib = MasterLibrary("~/astro/masters")                      # doctest: +SKIP
    >>> choice = lib.find(catalog.groups("light")[0], role="dark")  # doctest: +SKIP
    >>> print(choice)                                               # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike, *, recursive: bool = True):
        self.folder = Path(folder).expanduser()
        self.recursive = recursive
        self._added: list[str] = []
        self.table = _empty_table()
        self.skipped = pd.DataFrame(columns=["path", "problem"])
        self.ignored: list[str] = []
        self.refresh()

    # -- indexing --

    def refresh(self) -> "MasterLibrary":
        """Re-read the folder (and the masters registered with :meth:`add`); returns ``self``."""
        paths: list[Path] = []
        if self.folder.is_dir():
            # One canonical path per master, however it was reached: nothing is counted twice.
            paths = [Path(canonical_path(p)) for p in find_frame_files(self.folder, recursive=self.recursive)
                     if _is_master_suffix(p)]
            paths = list(dict.fromkeys(paths))
        known = {str(p) for p in paths}
        paths += [Path(p) for p in self._added if p not in known and Path(p).exists()]
        rows, skipped, ignored = [], [], []
        for path in paths:
            try:
                info = FrameInfo.from_file(path)
            except (AstrocalError, OSError) as exc:
                problem = exc.problem if isinstance(exc, FrameReadError) else str(exc)
                if isinstance(exc, MissingExtraError):
                    problem = str(exc)
                skipped.append({"path": str(path), "problem": problem})
                continue
            if not info.is_master:
                ignored.append(str(path))
            elif info.frame_type not in ROLES:
                skipped.append({"path": str(path), "problem": f"a master of unknown type (IMAGETYP="
                                f"{info.imagetyp!r}, and the file name does not say)"})
            else:
                rows.append(_row(info))
        self.table = _make_table(rows)
        self.skipped = pd.DataFrame(skipped, columns=["path", "problem"])
        self.ignored = ignored
        return self

    def add(self, path: str | os.PathLike) -> pd.Series:
        """Register a master (e.g. just written by :func:`~astrocal_widgets.write_master`).

        The file may be outside :attr:`folder`; it stays registered across :meth:`refresh`.
        Adding a path again (however spelled: relative, absolute, through a link) re-reads its
        header; the library holds one row per file, under its resolved path.

        Parameters
        ----------
        path : path-like

        Returns
        -------
        pandas.Series
            Its row of :attr:`table`.

        Raises
        ------
        NotAMasterError
            If its ``IMAGETYP`` is not ``MASTER ...`` or names no known type.
        FrameReadError
            If it cannot be read.
        """
        p = Path(canonical_path(path))
        info = FrameInfo.from_file(p)
        if not info.is_master or info.frame_type not in ROLES:
            raise NotAMasterError(path, info.imagetyp)
        key = str(p)
        if key not in self._added:
            self._added.append(key)
        rows = [r for _, r in self.table.iterrows() if r["path"] != key] + [pd.Series(_row(info))]
        self.table = _make_table([dict(r) for r in rows])
        self.skipped = self.skipped[self.skipped["path"] != key].reset_index(drop=True)
        return self.table[self.table["path"] == key].iloc[0]

    # -- access --

    def __len__(self) -> int:
        return len(self.table)

    def __iter__(self) -> Iterator[FrameInfo]:
        return iter(self.infos())

    def __repr__(self) -> str:
        counts = self.table["master_type"].value_counts().to_dict() if len(self.table) else {}
        return f"<MasterLibrary {self.folder}: {len(self)} masters {counts}, {len(self.skipped)} skipped>"

    def infos(self, master_type: str | tuple[str, ...] | None = None) -> list[FrameInfo]:
        """The masters as :class:`~astrocal_widgets.calibrate.matching.FrameInfo`, optionally of some types."""
        table = self.table
        if master_type is not None:
            types = (master_type,) if isinstance(master_type, str) else tuple(master_type)
            table = table[table["master_type"].isin(types)]
        return [FrameInfo.from_row(row) for _, row in table.iterrows()]

    def find(self, frame_or_group: Any, *, role: str,
             temperature_tolerance: float = DEFAULT_TEMPERATURE_TOLERANCE,
             allow_dark_scaling: bool = False) -> "MasterChoice":
        """:func:`find_master` in this library."""
        return find_master(frame_or_group, self, role=role, temperature_tolerance=temperature_tolerance,
                           allow_dark_scaling=allow_dark_scaling)


@dataclass
class MasterChoice:
    """The master :func:`find_master` chose, and why; and why the others were not.

    Attributes
    ----------
    path : str or None
        The chosen master, or None when none is compatible.
    reason : str
        Why it was chosen (its matching values against the target's, its frame count, the night it
        comes from, its warnings), or why nothing was.
    refused : list of (str, list of str)
        Every other candidate of the role's type with the reasons it was not chosen: the messages of
        the rules it breaks, or, for a compatible one, what made the chosen master better.
    role : str
    warnings : list of Mismatch
        Warning-severity problems of the chosen master (e.g. an unknown temperature).
    dark_scale : float or None
        For ``role='dark'``: 1.0 for a dark of the target's exposure, else ``k = t_target / t_dark``
        (needs a master bias). None otherwise or when nothing was chosen.
    info : FrameInfo or None
        The chosen master's values.
    """

    path: str | None
    reason: str
    refused: list[tuple[str, list[str]]] = field(default_factory=list)
    role: str = ""
    warnings: list[Mismatch] = field(default_factory=list)
    dark_scale: float | None = None
    info: FrameInfo | None = None

    def __bool__(self) -> bool:
        return self.path is not None

    def __str__(self) -> str:
        lines = [self.reason]
        for path, reasons in self.refused:
            lines.append(f"  not {Path(path).name}: " + "; ".join(reasons))
        return "\n".join(lines)


def find_master(frame_or_group: Any, library: MasterLibrary | str | os.PathLike, *, role: str,
                temperature_tolerance: float = DEFAULT_TEMPERATURE_TOLERANCE,
                allow_dark_scaling: bool = False) -> MasterChoice:
    """The best compatible master of a library for a frame or group, with the reasons.

    Candidates are the library's masters of the role's type (for ``role='darkflat'`` master dark flats,
    then master darks: NINA 3 writes dark flats as darks). Those breaking a rule of
    :func:`~astrocal_widgets.calibrate.matching.check_compatibility` are refused with its messages.
    Among the compatible ones the preferred is, in this order: of the role's own type; a dark of the
    target's exposure before a scalable one (and a longer dark before a shorter one); fewer warnings;
    the closest temperature (to 0.1 °C); the most frames (``NCOMBINE``); the newest (``DATE-OBS``).

    Parameters
    ----------
    frame_or_group : frame-like
        A catalogue row, FrameGroup, FITS header, path or FrameInfo: what will be calibrated
        (a light; a flat for ``role='darkflat'``).
    library : MasterLibrary or path-like
        A folder is indexed on the fly.
    role : {"bias", "dark", "darkflat", "flat"}
    temperature_tolerance : float, default 1.0
        °C, for bias and darks.
    allow_dark_scaling : bool, default False
        Accept darks of another exposure (scaled by ``t_target / t_dark``) when none matches exactly.

    Returns
    -------
    MasterChoice
        ``choice.path`` is None, with the reason, when the library has no compatible master.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    lib = library if isinstance(library, MasterLibrary) else MasterLibrary(library)
    target = frame_info(frame_or_group)
    word = FRAME_TYPE_WORDS[role]
    types = ROLE_FRAME_TYPES[role]
    candidates = lib.infos(types)
    if not candidates:
        if not lib.folder.is_dir() and not len(lib):
            why = f"the folder {lib.folder} does not exist"
        elif not len(lib):
            why = f"the library {lib.folder} holds no masters"
        else:
            counts = lib.table["master_type"].value_counts().to_dict()
            why = f"the library {lib.folder} holds only " + ", ".join(
                f"{n} master {FRAME_TYPE_WORDS.get(t, t)}{'s' if n != 1 and t != 'bias' else ''}"
                for t, n in sorted(counts.items()))
        return MasterChoice(None, f"no master {word} for {target.describe}: {why}; integrate "
                                  f"{FRAME_TYPE_PLURALS[role]} matching it and add the master to the library", [], role)

    compatible: list[tuple[FrameInfo, list[Mismatch], tuple]] = []
    refused: list[tuple[str, list[str]]] = []
    rules: Counter[str] = Counter()
    for cand in candidates:
        problems = check_compatibility(target, cand, role=role, temperature_tolerance=temperature_tolerance,
                                       allow_dark_scaling=allow_dark_scaling)
        errors = [m for m in problems if m.severity == "error"]
        if errors:
            refused.append((cand.path or cand.name, [m.message for m in errors]))
            rules.update(m.rule for m in errors)
        else:
            compatible.append((cand, problems, _rank(target, cand, problems, role)))
    if not compatible:
        summary = ", ".join(f"{rule} ({n})" for rule, n in rules.most_common())
        # The first refusal in full, so a one-line warning still names both values.
        return MasterChoice(None, f"no compatible master {word} for {target.describe} among {len(candidates)} "
                                  f"in {lib.folder}: refused for {summary} (e.g. {refused[0][1][0]}); see .refused "
                                  f"for each", refused, role)

    compatible.sort(key=lambda item: item[2])
    best, best_problems, best_rank = compatible[0]
    outranked = [(cand.path or cand.name, ["compatible, but not chosen: "
                                           + _why_not(target, best, cand, best_rank, rank, problems, role)])
                 for cand, problems, rank in compatible[1:]]
    scale = None
    if role == "dark":
        scale = 1.0 if _exact_exposure(target, best) else target.exposure / best.exposure
    reason = _reason(target, best, best_problems, role, scale, len(compatible) - 1, len(refused))
    return MasterChoice(best.path, reason, outranked + refused, role, list(best_problems), scale, best)


# --- ranking and words ---------------------------------------------------------------------------

def _rank(t: FrameInfo, c: FrameInfo, problems: list[Mismatch], role: str) -> tuple:
    types = ROLE_FRAME_TYPES[role]
    type_rank = types.index(c.frame_type) if c.frame_type in types else len(types)
    if role == "dark" and not _exact_exposure(t, c):
        exposure_rank: tuple = _scaling_rank(t.exposure, c.exposure)
    else:
        exposure_rank = (0, 0, 0.0)
    diff = _temperature_difference(t, c)
    n = c.n_frames or 0
    date = -c.date_obs.value if c.date_obs is not None else math.inf
    return (type_rank, exposure_rank, len(problems), round(diff, 1), -n, date, c.path or c.name)


def _scaling_rank(target_exposure: float, dark_exposure: float) -> tuple:
    """How darks of another exposure than the target's are preferred: longer than the target first
    (scaled down, ``k <= 1``), then the closest exposure."""
    k = target_exposure / dark_exposure if dark_exposure > 0 else math.inf
    return (1, int(k > 1 + EXPOSURE_RELATIVE_TOLERANCE), abs(math.log(k)) if 0 < k < math.inf else math.inf)


def _why_not(t: FrameInfo, best: FrameInfo, c: FrameInfo, best_rank: tuple, rank: tuple,
             problems: list[Mismatch], role: str) -> str:
    name = Path(best.path or best.name).name
    if rank[0] != best_rank[0]:
        return (f"a master {FRAME_TYPE_WORDS.get(c.frame_type, c.frame_type)} while {name} is a master "
                f"{FRAME_TYPE_WORDS.get(best.frame_type, best.frame_type)}")
    if rank[1] != best_rank[1]:
        if best_rank[1][0] == 0:
            return (f"needs dark scaling ({c.exposure:g} s for the {t.exposure:g} s {t.kind}) while {name} "
                    f"has the same exposure")
        return (f"needs scaling by k = {t.exposure / c.exposure:.3g} while {name} needs "
                f"k = {t.exposure / best.exposure:.3g}")
    if rank[2] != best_rank[2]:
        return (f"{len(problems)} warning(s) ({', '.join(m.rule for m in problems)}) while {name} has "
                f"{best_rank[2]}")
    if rank[3] != best_rank[3]:
        return (f"temperature {_fmt_temp(c.sensor_temperature)} is {_fmt_diff(rank[3])} from the {t.kind}'s "
                f"{_fmt_temp(t.sensor_temperature)}, {name} only {_fmt_diff(best_rank[3])}")
    if rank[4] != best_rank[4]:
        return f"{c.n_frames or 'unknown number of'} frames while {name} has {best.n_frames}"
    if rank[5] != best_rank[5]:
        return f"older ({_fmt_date(c.date_obs)}) than {name} ({_fmt_date(best.date_obs)})"
    return f"equivalent to {name}, which comes first by path"


def _reason(t: FrameInfo, c: FrameInfo, problems: list[Mismatch], role: str, scale: float | None,
            n_other_compatible: int, n_refused: int) -> str:
    parts: list[str] = []
    if role == "dark":
        if is_unknown_number(t.exposure) or is_unknown_number(c.exposure):
            parts.append(f"exposure {_fmt_seconds(c.exposure)} ({t.kind} {_fmt_seconds(t.exposure)})")
        elif scale == 1.0:
            parts.append(f"same exposure {c.exposure:g} s")
        else:
            parts.append(f"exposure {c.exposure:g} s scaled by k = {scale:.3g} to the {t.kind}'s "
                         f"{t.exposure:g} s (dark scaling: needs a master bias)")
    elif role == "darkflat":
        parts.append(f"same exposure {c.exposure:g} s as the {t.kind}" if not is_unknown_number(c.exposure)
                     else "exposure unknown")
    elif role == "flat":
        parts.append(f"filter {c.filter}" if c.filter else "no filter recorded")
    if role in ("bias", "dark"):
        if is_unknown_number(c.sensor_temperature) or is_unknown_number(t.sensor_temperature):
            parts.append(f"temperature {_fmt_temp(c.sensor_temperature)} ({t.kind} "
                         f"{_fmt_temp(t.sensor_temperature)})")
        else:
            parts.append(f"temperature {c.sensor_temperature:.1f} °C ({t.kind} {t.sensor_temperature:.1f} °C)")
    for key, word in (("gain", "gain"), ("iso", "ISO"), ("offset", "offset")):
        value = getattr(c, key)
        if not is_unknown_number(value):
            parts.append(f"{word} {value:g}")
    if c.readout_mode:
        parts.append(f"readout mode '{c.readout_mode}'")
    if not is_unknown_number(c.egain):
        parts.append(f"{c.egain:.3g} e-/ADU")
    text = f"{Path(c.path or c.name).name}: " + ", ".join(parts)
    if c.n_frames:
        text += f"; {c.n_frames} frames"
    if c.night is not None and t.night is not None and c.night != t.night:
        text += f"; reused from the night of {c.night:%Y-%m-%d} ({t.kind}: {t.night:%Y-%m-%d})"
    if problems:
        text += "; warnings: " + " | ".join(m.message for m in problems)
    others = []
    if n_other_compatible:
        others.append(f"preferred over {n_other_compatible} other compatible master(s)")
    if n_refused:
        others.append(f"{n_refused} incompatible refused")
    if others:
        text += "; " + ", ".join(others)
    return text


def _exact_exposure(t: FrameInfo, c: FrameInfo) -> bool:
    if is_unknown_number(t.exposure) or is_unknown_number(c.exposure):
        return True  # cannot tell: check_compatibility warned
    return exposures_match(t.exposure, c.exposure)


def _temperature_difference(t: FrameInfo, c: FrameInfo) -> float:
    a, b = t.sensor_temperature, c.sensor_temperature
    return math.inf if is_unknown_number(a) or is_unknown_number(b) else abs(a - b)


def _is_master_suffix(p: Path) -> bool:
    name = p.name.lower()
    return name.endswith(FITS_SUFFIXES) or name.endswith(XISF_SUFFIXES)


def _row(info: FrameInfo) -> dict[str, Any]:
    row = info.as_row()
    row["master_type"] = row.pop("frame_type")
    row["ncombine"] = row.pop("n_frames")
    return {k: row.get(k) for k in LIBRARY_COLUMNS}


def _empty_table() -> pd.DataFrame:
    return _make_table([])


def _make_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(LIBRARY_COLUMNS))
    table["date_obs"] = pd.to_datetime(table["date_obs"])
    for col in ("height", "width", "ncombine"):
        table[col] = table[col].astype("Int64")
    return table.sort_values("path", kind="stable").reset_index(drop=True)


def _fmt_temp(v: float) -> str:
    return "unknown" if is_unknown_number(v) else f"{v:.1f} °C"


def _fmt_seconds(v: float) -> str:
    return "unknown" if is_unknown_number(v) else f"{v:g} s"


def _fmt_diff(v: float) -> str:
    return "unknown" if math.isinf(v) else f"{v:.1f} °C"


def _fmt_date(d: pd.Timestamp | None) -> str:
    return "unknown date" if d is None else f"{d:%Y-%m-%d %H:%M}"


def _read_master(path: str | None) -> np.ndarray | None:
    """A master's pixels as float32 (None for no master)."""
    return None if path is None else fits.getdata(path).astype(np.float32)
