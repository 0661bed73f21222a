"""The frame-type vocabulary: the types, their names in words, and how headers and file names spell them.

Every module that names, orders, validates or recognises a frame type uses these, so adding a
spelling a capture program writes (``'Dark Flat'``, ``'FlatDark'``, ``'Zero'``) is one line here.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = [
    "FRAME_TYPES", "CALIBRATION_TYPES", "FRAME_TYPE_WORDS", "FRAME_TYPE_PLURALS", "frame_type_from_value",
    "frame_type_from_path", "master_type_from_value",
]

#: Frame types recognised by the toolkit.
FRAME_TYPES: tuple[str, ...] = ("bias", "dark", "flat", "darkflat", "light")
#: The types masters are made of, in the order they are built (dark flats before the flats they calibrate).
CALIBRATION_TYPES: tuple[str, ...] = ("bias", "dark", "darkflat", "flat")
#: Each type in words, singular (``'a master dark flat'``) ...
FRAME_TYPE_WORDS: dict[str, str] = {"bias": "bias", "dark": "dark", "darkflat": "dark flat", "flat": "flat",
                                    "light": "light"}
#: ... and plural (``'take the dark flats at ...'``).
FRAME_TYPE_PLURALS: dict[str, str] = {"bias": "bias frames", "dark": "darks", "darkflat": "dark flats",
                                      "flat": "flats", "light": "lights"}

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


def master_type_from_value(value: Any) -> str | None:
    """The frame type of a master from its ``IMAGETYP``; None when it is not a master.

    ``'MASTER DARK'`` -> ``'dark'``, ``'Master Dark Flat'`` -> ``'darkflat'``, ``'MASTER'`` -> ``''``
    (a master of unknown type), ``'DARK'`` -> None.
    """
    if value is None:
        return None
    m = re.match(r"^\s*master(?![a-z])[\s_\-]*(.*)$", str(value), re.IGNORECASE) or \
        re.match(r"^\s*master(bias|dark|darkflat|flatdark|flat)\s*$", str(value), re.IGNORECASE)
    if not m:
        return None
    return frame_type_from_value(m.group(1)) if m.group(1).strip() else ""
