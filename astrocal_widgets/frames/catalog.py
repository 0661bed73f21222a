"""A catalogue of a night's frames, built from headers only, and its calibration sets."""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from ..errors import AstrocalError, MissingExtraError
from ..io.cube import find_frame_files, open_frames
from ..io.frame_types import CALIBRATION_TYPES, FRAME_TYPES
from ..io.headers import COORDINATE_COLUMNS, check_aliases, frame_metadata
from ..io.sources import cached_open_source
from .grouping import (EGAIN_RELATIVE_TOLERANCE, EXPOSURE_ABSOLUTE_TOLERANCE, EXPOSURE_RELATIVE_TOLERANCE,
                       MATCH_KEYS, TEMPERATURE_TOLERANCE, cluster_values, egains_match, exposures_match)
from .oddities import (DUPLICATE_COLUMNS, duplicate_problem, find_duplicates, single_frame_problem,
                       size_strays)

__all__ = ["FrameCatalog", "FrameGroup", "scan"]

_TYPE_ORDER = {t: i for i, t in enumerate(CALIBRATION_TYPES + ("light",))}


@dataclass
class FrameGroup:
    """One calibration set: frames of one type whose matching keys agree.

    Attributes
    ----------
    frame_type : str
        ``bias``, ``dark``, ``darkflat``, ``flat`` or ``light``.
    key : dict
        The matching keys and their (representative) values, e.g. ``{"exposure": 300.0, ...}``.
    table : pandas.DataFrame
        The catalogue rows of the group's frames.
    aliases : mapping or None
        The extra header keywords the catalogue was scanned with (``scan(..., aliases=...)``);
        :meth:`open` reads the frames with them.
    shown : tuple of str
        Keys named in :attr:`label` and :attr:`slug` only when they tell groups apart
        (``readout_mode``, ``egain``): :meth:`FrameCatalog.groups` sets them for groups that
        would otherwise share a name, so every set keeps its own master file.
    """

    frame_type: str
    key: dict[str, Any]
    table: pd.DataFrame = field(repr=False)
    aliases: Any = field(default=None, repr=False)
    shown: tuple[str, ...] = field(default=(), repr=False)

    @property
    def paths(self) -> list[str]:
        """The frames' paths, in catalogue order."""
        return list(self.table["path"])

    def __len__(self) -> int:
        return len(self.table)

    def open(self, *, chunks: Any = None):
        """The group's frames as a lazy cube (see :func:`astrocal_widgets.open_frames`)."""
        return open_frames(self.paths, chunks=chunks, aliases=self.aliases)

    def _key_parts(self, short: bool) -> list[str]:
        """The key in words (``label``) or in file-name tokens (``slug``), in one order."""
        k = self.key
        parts = [self.frame_type]
        if k.get("filter"):
            filt = str(k["filter"])
            parts.append(re.sub(r"[^A-Za-z0-9.+-]+", "-", filt) if short else f"filter {filt}")
        if "exposure" in k and not _isnan(k["exposure"]):
            parts.append(f"{k['exposure']:g}{'s' if short else ' s'}")
        if "temperature" in k and not _isnan(k["temperature"]):
            parts.append(f"{k['temperature']:.0f}C" if short else f"{k['temperature']:.1f} °C")
        for name, word, tag in (("gain", "gain ", "g"), ("offset", "offset ", "o"), ("iso", "ISO ", "iso")):
            if name in k and not _isnan(k[name]):
                parts.append(f"{tag if short else word}{k[name]:g}")
        if "readout_mode" in self.shown:
            mode = str(k.get("readout_mode") or "")
            if short:
                parts.append(re.sub(r"[^A-Za-z0-9.+-]+", "-", mode).strip("-") or "no-mode")
            else:
                parts.append(f"readout '{mode}'" if mode else "no readout mode")
        if "egain" in self.shown and not _isnan(k.get("egain", math.nan)):
            parts.append(f"{k['egain']:.3g}e" if short else f"{k['egain']:.3g} e-/ADU")
        xb, yb = k.get("xbinning", math.nan), k.get("ybinning", math.nan)
        if not (_isnan(xb) and _isnan(yb)):
            parts.append(f"{_fmt(xb)}x{_fmt(yb)}" + ("" if short else " bin"))
        parts.append(f"{k['width']}x{k['height']}" + ("" if short else " px"))
        return parts

    @property
    def label(self) -> str:
        """A short human description, e.g. ``'dark, 300 s, -10.0 °C, gain 139, offset 21, 1x1 bin, 640x480 px'``."""
        return ", ".join(self._key_parts(short=False))

    @property
    def slug(self) -> str:
        """A file-name-safe name, e.g. ``'dark_300s_-10C_g139_o21_1x1_640x480'``."""
        return "_".join(self._key_parts(short=True)).replace("?", "na")

    def __str__(self) -> str:
        return f"{self.label}: {len(self)} frames"


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _fmt(v: float) -> str:
    return "?" if _isnan(v) else f"{v:g}"


class FrameCatalog:
    """Every frame of a folder with its normalised header values; built by :func:`scan`.

    Attributes
    ----------
    directory : pathlib.Path
        The scanned folder.
    table : pandas.DataFrame
        One row per readable frame: ``path``, ``frame_type``, ``type_reason``, the header
        coordinates (``exposure``, ``temperature``, ``gain``, ...), ``height``, ``width``,
        ``dtype`` (as stored) and ``reader``. Duplicates are not in it.
    skipped : pandas.DataFrame
        Files that could not be read, with the ``problem`` (never dropped silently).
    duplicates : pandas.DataFrame
        Frames with the same pixels as another frame (``path``, ``duplicate_of``, ``same``:
        ``'file'`` or ``'pixels'``): left out of the table, so no set stacks a frame twice.

    Notes
    -----
    :meth:`groups` is worked out once per ``table`` object (a dashboard asks for it hundreds of
    times): to change the catalogue, assign a new table rather than editing this one in place.
    """

    def __init__(self, directory: Path, table: pd.DataFrame, skipped: pd.DataFrame,
                 duplicates: pd.DataFrame | None = None, aliases: Any = None):
        self.directory = directory
        self.table = table
        self.skipped = skipped
        self.duplicates = pd.DataFrame(columns=DUPLICATE_COLUMNS) if duplicates is None else duplicates
        self.aliases = aliases
        self._groups: tuple[int, pd.DataFrame, list[FrameGroup]] | None = None

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        counts = self.table["frame_type"].replace("", "unclassified").value_counts().to_dict()
        return (f"<FrameCatalog {self.directory}: {len(self)} frames {counts}, "
                f"{len(self.skipped)} skipped, {len(self.duplicates)} duplicates>")

    @property
    def unclassified(self) -> pd.DataFrame:
        """Raw frames whose type could not be told from header, file name or folder."""
        t = self.table
        return t[(t["frame_type"] == "") & ~t["type_reason"].str.startswith("product")]

    @property
    def products(self) -> pd.DataFrame:
        """Masters and calibrated frames found in the folder (never used as raw frames)."""
        t = self.table
        return t[(t["frame_type"] == "") & t["type_reason"].str.startswith("product")]

    @property
    def strays(self) -> pd.DataFrame:
        """Raw frames of a size no other frame of their folder has (where the others share one).

        They are left out of every set (:meth:`groups`): one frame of another size in a folder of
        darks is not a master. Columns ``path``, ``frame_type``, ``height``, ``width``, ``problem``.
        """
        t = self.table
        return size_strays(t[~t["type_reason"].str.startswith("product")] if len(t) else t)

    def single_frame_sets(self) -> list[FrameGroup]:
        """Bias, dark, dark-flat and flat sets of a single frame: their masters are doubtful."""
        # Sets that become masters: one such frame is doubtful (a light may stand alone).
        return [g for g in self.groups() if g.frame_type in CALIBRATION_TYPES and len(g) == 1]

    @property
    def warnings(self) -> list[str]:
        """Every file skipped, unclassified, left out or doubtful, one sentence each naming it."""
        out = [f"skipped {row['path']}: {row['problem']}" for _, row in self.skipped.iterrows()]
        out += [f"unclassified {row['path']}: {row['type_reason']}" for _, row in self.unclassified.iterrows()]
        out += [f"duplicate {duplicate_problem(row)}" for _, row in self.duplicates.iterrows()]
        out += [f"stray {problem}" for problem in self.strays["problem"]]
        out += [f"doubtful {single_frame_problem(g.paths[0], g.label)}" for g in self.single_frame_sets()]
        return out

    def groups(self, frame_type: str | None = None) -> list[FrameGroup]:
        """Calibration sets: frames split by type and the keys that must match for that type.

        Parameters
        ----------
        frame_type : str, optional
            Only the groups of this type.

        Returns
        -------
        list of FrameGroup
            Ordered bias, dark, darkflat, flat, light, then by key.
        """
        if frame_type is not None and frame_type not in FRAME_TYPES:
            raise ValueError(f"frame_type must be one of {FRAME_TYPES}, not {frame_type!r}")
        cached = self._groups
        if cached is None or cached[1] is not self.table or cached[0] != id(self.aliases):
            cached = self._groups = (id(self.aliases), self.table, self._make_groups())
        return [g for g in cached[2] if frame_type is None or g.frame_type == frame_type]

    def _make_groups(self) -> list[FrameGroup]:
        out: list[FrameGroup] = []
        table = self.table[(self.table["frame_type"] != "") & ~self.table["path"].isin(self.strays["path"])].copy()
        if table.empty:
            return out
        table["_exposure_key"] = cluster_values(table["exposure"], absolute=EXPOSURE_ABSOLUTE_TOLERANCE,
                                                relative=EXPOSURE_RELATIVE_TOLERANCE)
        for ftype in sorted(table["frame_type"].unique(), key=_TYPE_ORDER.get):
            sub = table[table["frame_type"] == ftype].copy()
            keys = list(MATCH_KEYS[ftype])
            # Cluster temperatures per type so darks at -10 and -15 °C split, -10.1 and -9.9 do not.
            sub["_temperature_key"] = cluster_values(sub["temperature"], absolute=TEMPERATURE_TOLERANCE)
            sub["_egain_key"] = cluster_values(sub["egain"], relative=EGAIN_RELATIVE_TOLERANCE)
            # 'High Gain' and 'high  gain' are one readout mode; the key keeps the first spelling.
            sub["_readout_key"] = sub["readout_mode"].map(lambda m: " ".join(str(m).split()).casefold())
            renamed = {"exposure": "_exposure_key", "temperature": "_temperature_key", "egain": "_egain_key",
                       "readout_mode": "_readout_key"}
            columns = [renamed.get(k, k) for k in keys]
            filled = sub[columns].astype(object).where(sub[columns].notna(), "\0nan")
            for _, rows in sub.groupby([filled[c] for c in columns], sort=True, dropna=False):
                first = rows.iloc[0]
                key = {k: _py(first[c]) for k, c in zip(keys, columns)}
                if "readout_mode" in key:
                    key["readout_mode"] = _py(first["readout_mode"])
                out.append(FrameGroup(ftype, key, rows.drop(columns=[c for c in rows.columns if c.startswith("_")])
                                      .reset_index(drop=True), aliases=self.aliases))
        _name_settings_where_needed(out)
        return out

    def summary(self) -> str:
        """A plain-text report: groups, unclassified frames and skipped files."""
        lines = [f"{self.directory}: {len(self)} frames"]
        for group in self.groups():
            lines.append(f"  {group}")
        unclassified = self.unclassified
        if len(unclassified):
            lines.append(f"  unclassified: {len(unclassified)} frames")
            for _, row in unclassified.iterrows():
                lines.append(f"    {row['path']} ({row['type_reason']})")
        if len(self.products):
            lines.append(f"  masters and calibrated frames (not raw, not grouped): {len(self.products)}")
        if len(self.skipped):
            lines.append(f"  skipped: {len(self.skipped)} files")
            for _, row in self.skipped.iterrows():
                lines.append(f"    {row['path']}: {row['problem']}")
        if len(self.duplicates):
            lines.append(f"  duplicates, left out: {len(self.duplicates)} files")
            lines += [f"    {duplicate_problem(row)}" for _, row in self.duplicates.iterrows()]
        strays = self.strays
        if len(strays):
            lines.append(f"  strays of another size, left out: {len(strays)} frame(s)")
            lines += [f"    {problem}" for problem in strays["problem"]]
        singles = self.single_frame_sets()
        if singles:
            lines.append(f"  doubtful: {len(singles)} set(s) of a single frame")
            lines += [f"    {single_frame_problem(g.paths[0], g.label)}" for g in singles]
        reclassified = self.table[self.table["type_reason"].str.contains("dark flat|file name says", regex=True)]
        if len(reclassified):
            lines.append(f"  reclassified: {len(reclassified)} frames (the type_reason column of the table says "
                         "why for each frame):")
            for reason, n in reclassified["type_reason"].value_counts(sort=False).items():
                lines.append(f"    {n} x {reason}")
        return "\n".join(lines)


def _name_settings_where_needed(groups: list[FrameGroup]) -> None:
    """Groups that would share a name (a master file) get their readout mode, then their e-/ADU gain, in it.

    A night in one readout mode keeps its usual names; frames of two modes make two masters with two names.
    """
    for key in ("readout_mode", "egain"):
        by_slug: dict[str, list[FrameGroup]] = {}
        for group in groups:
            by_slug.setdefault(group.slug, []).append(group)
        for same in by_slug.values():
            if len(same) > 1:
                for group in same:
                    group.shown += (key,)


def _py(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value


def scan(directory: str | os.PathLike, recursive: bool = True, *,
         progress: Callable[[float, str], None] | None = None,
         aliases: Mapping[str, Any] | None = None) -> FrameCatalog:
    """Catalogue every frame file in a folder from its headers (and a few kilobytes to spot duplicates).

    Frame types come from ``IMAGETYP`` and its spellings, else the file or folder name, so the
    NINA, SGP and APT folder layouts classify without configuration. Darks at the flats' exposure
    that are far shorter than any light are dark flats (NINA 3 writes dark flats as ``'DARK'``);
    ``type_reason`` says why each frame got its type.

    Frames with the same pixels as another (a copied file, or the same data under another header)
    are left out and listed in :attr:`FrameCatalog.duplicates`; to find them, only frames whose data
    have the same size are compared, by a few kilobytes first and in full only when those agree.
    Frames of a size no folder-mate has are listed in :attr:`FrameCatalog.strays` and left out of
    the sets; :attr:`FrameCatalog.warnings` names every file left out or doubtful.

    Parameters
    ----------
    directory : path-like
        The folder of a night (or of many).
    recursive : bool, default True
        Look into sub-folders.
    progress : callable, optional
        ``progress(fraction, message)``.
    aliases : mapping, optional
        Extra header keywords for this scan, tried before the dialect table's: field name ->
        keyword or list of keywords, e.g. ``{"readout_mode": "CAMMODE", "egain": ["GAIN_E"]}``
        (fields: :data:`~astrocal_widgets.io.headers.HEADER_FIELDS`). The groups open their frames
        with them. For every reader at once, use
        :func:`~astrocal_widgets.io.headers.register_keywords`.

    Returns
    -------
    FrameCatalog

    Raises
    ------
    FrameReadError
        If ``directory`` does not exist.
    """
    root = Path(directory)
    check_aliases(aliases)  # an unknown field fails before any file is read
    files = find_frame_files(root, recursive=recursive)
    rows, skipped, sources = [], [], []
    for i, path in enumerate(files):
        try:
            header, source = cached_open_source(path)
            meta = frame_metadata(header, path, source.shape, aliases=aliases)
        except (AstrocalError, OSError, ValueError, TypeError) as exc:
            problem = exc.problem if hasattr(exc, "problem") else str(exc)
            if isinstance(exc, MissingExtraError):
                problem = str(exc)
            skipped.append({"path": str(path), "problem": problem})
            continue
        meta.update(height=source.shape[0], width=source.shape[1], dtype=source.dtype, reader=source.reader)
        rows.append(meta)
        sources.append(source)
        if progress is not None and (i % 50 == 0 or i == len(files) - 1):
            progress((i + 1) / len(files), f"read {i + 1} of {len(files)} headers")
    columns = list(COORDINATE_COLUMNS) + ["height", "width", "dtype", "reader"]
    table = pd.DataFrame(rows, columns=columns)
    if len(table):
        table["date_obs"] = pd.to_datetime(table["date_obs"])
    raw = ~table["type_reason"].astype(str).str.startswith("product")
    duplicates = find_duplicates(list(table["path"][raw]), [s for s, r in zip(sources, raw) if r])
    table = table[~table["path"].isin(duplicates["path"])].reset_index(drop=True)
    _recognise_nina3_dark_flats(table)
    skipped_table = pd.DataFrame(skipped, columns=["path", "problem"])
    return FrameCatalog(root, table, skipped_table, duplicates, aliases)


def _recognise_nina3_dark_flats(table: pd.DataFrame) -> None:
    """Retype darks taken at a flat group's exposure, far shorter than any light, as dark flats.

    NINA 3 removed the DARKFLAT image type: its dark flats are ``IMAGETYP='DARK'`` at the flats'
    exposure (NINA 3.0 release notes). A dark is a dark flat when some flat has the same exposure
    (within tolerance), gain, offset, ISO, binning and size, and the dark is shorter than half the
    shortest light (any dark qualifies when there are no lights).
    """
    if table.empty:
        return
    flats = table[table["frame_type"] == "flat"]
    lights = table[table["frame_type"] == "light"]
    shortest_light = lights["exposure"].min() if len(lights) else math.inf
    if math.isnan(shortest_light):
        shortest_light = math.inf
    same = ("gain", "offset", "iso", "readout_mode", "xbinning", "ybinning", "height", "width")
    for idx in table.index[table["frame_type"] == "dark"]:
        dark = table.loc[idx]
        if math.isnan(dark["exposure"]) or not dark["exposure"] < shortest_light / 2:
            continue
        for _, flat in flats.iterrows():
            if exposures_match(dark["exposure"], flat["exposure"]) and egains_match(dark["egain"], flat["egain"]) \
                    and all((dark[k] == flat[k]) or (_isnan(dark[k]) and _isnan(flat[k])) for k in same):
                table.loc[idx, "frame_type"] = "darkflat"
                light_text = (f"shorter than half the shortest light ({shortest_light:g} s)"
                              if math.isfinite(shortest_light) else "and there are no lights")
                table.loc[idx, "type_reason"] = (
                    f"{dark['type_reason']} at the exposure of flats ({flat['exposure']:g} s, filter "
                    f"{flat['filter'] or '?'}), {light_text}: a dark flat (NINA 3 writes dark flats as DARK)")
                break
