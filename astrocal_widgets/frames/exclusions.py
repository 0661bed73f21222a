"""Frames left out of their sets on purpose: the night's exclusion list, a plain-text file.

Throwing out the flat with a shadow or the dark with a light leak is a decision, so it is written
down where every tool reads it: ``excluded.txt`` in the output folder (the night's folder unless an
output folder is given). One frame a line, its path relative to the night's folder, then a tab (or
``" # "``) and the reason; lines starting with ``#`` are comments::

    # frames left out of their calibration sets
    flats/L/flat_003.fits	shadow of a cable
    darks/dark_007.fits # light leak

An excluded frame is never moved, renamed or deleted: it is only left out of its set
(:func:`split_excluded`) before a master is built, and the master's provenance names it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import AstrocalError
from ..io.write import atomic_path
from .catalog import FrameGroup

__all__ = ["EXCLUSION_FILE", "exclusion_list_path", "read_exclusions", "write_exclusions", "add_exclusions",
           "remove_exclusions", "excluded_key", "split_excluded", "ExcludedFrame"]

#: The exclusion list's file name, in the output folder.
EXCLUSION_FILE = "excluded.txt"

_HEADER = ("# astrocal-widgets exclusion list: frames left out of their calibration sets (never moved or deleted).\n"
           "# One frame a line: its path relative to the night's folder, a tab, then the reason.\n")


@dataclass(frozen=True)
class ExcludedFrame:
    """A frame left out of its set.

    Attributes
    ----------
    path : str
        The frame's full path.
    reason : str
        Why, as the exclusion list gives it ('' when none was given).
    """

    path: str
    reason: str = ""

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def exclusion_list_path(output: str | os.PathLike) -> Path:
    """``output/excluded.txt``: where the exclusion list of a night written to ``output`` is."""
    return Path(output) / EXCLUSION_FILE


def excluded_key(frame: str | os.PathLike, root: str | os.PathLike) -> str:
    """How the list names a frame: its path relative to the night's folder, with ``/`` separators.

    A frame outside the night's folder is named by its absolute path.
    """
    frame_path = Path(os.path.abspath(Path(root) / frame if not os.path.isabs(frame) else frame))
    try:
        return frame_path.relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return frame_path.as_posix()


def read_exclusions(output: str | os.PathLike) -> dict[str, str]:
    """The exclusion list of ``output`` (``{relative path: reason}``, in file order); empty when there is none.

    Parameters
    ----------
    output : path-like
        The output folder (the night's folder by default).

    Raises
    ------
    AstrocalError
        Naming the file and the line, for a line that names no frame.
    """
    path = exclusion_list_path(output)
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip()  # a leading tab is kept: it means a reason without a frame
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" in line:
            frame, reason = line.split("\t", 1)
        elif " # " in line:
            frame, reason = line.split(" # ", 1)
        else:
            frame, reason = line, ""
        frame, reason = frame.strip(), reason.strip()
        if not frame:
            raise AstrocalError(f"{path}, line {number}: names no frame ({raw!r}); a line is a path relative "
                                "to the night's folder, then a tab and the reason")
        found[Path(frame).as_posix()] = reason
    return found


def write_exclusions(output: str | os.PathLike, exclusions: Mapping[str, str]) -> Path:
    """Write the exclusion list of ``output`` atomically (replacing it); no file when the list is empty.

    Parameters
    ----------
    output : path-like
    exclusions : mapping
        ``{path relative to the night's folder: reason}``.

    Returns
    -------
    pathlib.Path
        The list's path.
    """
    path = exclusion_list_path(output)
    if not exclusions:
        path.unlink(missing_ok=True)
        return path
    lines = [_HEADER]
    for frame, reason in exclusions.items():
        reason = " ".join(str(reason).split())  # one line each: no tab or newline inside a reason
        lines.append(f"{Path(frame).as_posix()}\t{reason}\n" if reason else f"{Path(frame).as_posix()}\n")
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")
    return path


def add_exclusions(output: str | os.PathLike, frames: Iterable[str | os.PathLike] | Mapping[str, str],
                   root: str | os.PathLike, reason: str = "") -> dict[str, str]:
    """Add frames to the exclusion list of ``output`` (a frame already there gets the new reason if one is given).

    Parameters
    ----------
    output : path-like
        The output folder (the night's folder by default).
    frames : iterable of path-like, or mapping of path to reason
        Absolute paths, or paths relative to ``root``.
    root : path-like
        The night's folder: the list names frames relative to it.
    reason : str
        The reason of frames given without one.

    Returns
    -------
    dict
        The whole list, as written.

    Raises
    ------
    AstrocalError
        Naming the frame, when it is not a file.
    """
    reasons = dict(frames) if isinstance(frames, Mapping) else {f: reason for f in frames}
    current = read_exclusions(output)
    for frame, why in reasons.items():
        full = frame if os.path.isabs(frame) else Path(root) / frame
        if not os.path.isfile(full):
            raise AstrocalError(f"{full}: no such frame to exclude")
        key = excluded_key(full, root)
        if why or key not in current:
            current[key] = str(why or "")
    write_exclusions(output, current)
    return current


def remove_exclusions(output: str | os.PathLike, frames: Iterable[str | os.PathLike],
                      root: str | os.PathLike) -> dict[str, str]:
    """Take frames off the exclusion list of ``output`` (they go back into their sets); returns the list."""
    current = read_exclusions(output)
    for frame in frames:
        current.pop(excluded_key(frame, root), None)
    write_exclusions(output, current)
    return current


def split_excluded(group: FrameGroup, exclusions: Mapping[str, str],
                   root: str | os.PathLike) -> tuple[FrameGroup, list[ExcludedFrame]]:
    """A set without its excluded frames, and those frames with their reasons (in the set's order).

    The set keeps its key, label and slug (so its master keeps its file name); only its table loses
    the excluded rows. Frames are matched by their path relative to ``root``.
    """
    if not exclusions:
        return group, []
    keep, left_out = [], []
    for path in group.paths:
        key = excluded_key(path, root)
        if key in exclusions:
            left_out.append(ExcludedFrame(str(path), exclusions[key]))
        keep.append(key not in exclusions)
    if not left_out:
        return group, []
    return replace(group, table=group.table[keep]), left_out
