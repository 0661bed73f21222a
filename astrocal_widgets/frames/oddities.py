"""Frames that do not belong in a stack as they are: duplicates, strays of another size, sets of one.

A copied file ("light_0001 (1).fit") stacked with its original counts that frame twice; one frame
of another size in a folder of darks becomes a "master" of one frame. The catalogue finds both
(and sets of a single calibration frame) so that scan, check and calibrate can leave them out or
say they are doubtful, naming each file.

Duplicates are found cheaply: only frames whose pixel data have the same size, type and scaling can
be the same, a few kilobytes of each such frame tell almost all of them apart, and only frames
whose samples agree are hashed in full (SHA-256 of the pixel data, or of the whole file for
compressed formats). Nothing is written.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..io.provenance import content_hash
from ..io.sources import FrameSource

__all__ = ["find_duplicates", "duplicate_problem", "size_strays", "single_frame_problem", "DUPLICATE_COLUMNS",
           "STRAY_COLUMNS"]

#: Columns of :attr:`FrameCatalog.duplicates`: the file left out, the file kept, and ``same``:
#: ``'file'`` (byte-identical) or ``'pixels'`` (the same pixel data under another header).
DUPLICATE_COLUMNS = ["path", "duplicate_of", "same"]
#: Columns of :attr:`FrameCatalog.strays`.
STRAY_COLUMNS = ["path", "frame_type", "height", "width", "problem"]

_SAMPLE = 4096  # bytes per sample: two different exposures never agree on 2,000 pixels of noise
_CHUNK = 1 << 22


def _data_span(source: FrameSource, size: int) -> tuple[int, int, tuple]:
    """Where the pixels are in the file (offset, length) and what must agree for equal pixels."""
    if source.reader == "direct":  # uncompressed FITS or XISF: the data unit itself
        return source.offset, source.stored_nbytes, ("data", source.shape, source.dtype, source.bzero,
                                                     source.bscale, source.blank)
    return 0, size, ("file", size)  # compressed or raw formats: the whole file


@lru_cache(maxsize=8192)
def _sample_digest(path: str, offset: int, length: int, size: int, mtime_ns: int, itemsize: int) -> str | None:
    """SHA-256 of three small samples of a byte span (start, middle, end); None when they hold one value.

    Frames of one constant value (simulated or blank frames) share their pixels without being copies
    of each other: only byte-identical files count as duplicates for them.
    """
    digest = hashlib.sha256()
    constant = itemsize > 0
    with open(path, "rb") as f:
        for start in sorted({offset, offset + max(0, length // 2 - _SAMPLE // 2), offset + max(0, length - _SAMPLE)}):
            f.seek(start)
            sample = f.read(min(_SAMPLE, length))
            constant = constant and sample == sample[:itemsize] * (len(sample) // itemsize)
            digest.update(sample)
    return None if constant else digest.hexdigest()


@lru_cache(maxsize=8192)
def _span_digest(path: str, offset: int, length: int, size: int, mtime_ns: int) -> str:
    """SHA-256 of a byte span of a file (the pixel data)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left > 0 and (chunk := f.read(min(_CHUNK, left))):
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def find_duplicates(paths: Sequence[str], sources: Sequence[FrameSource]) -> pd.DataFrame:
    """Frames with the same pixels as another: each left-out file with the one kept.

    Parameters
    ----------
    paths : sequence of str
        The frames (raw frames only: masters and calibrated files are not compared).
    sources : sequence of FrameSource
        Where each frame's pixels are (from :func:`~astrocal_widgets.io.sources.open_source`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DUPLICATE_COLUMNS`, one row per duplicate. Of frames with the same pixels
        the first by sorted path is kept.
    """
    candidates: dict[tuple, list[tuple[str, int, int, int, int, int]]] = defaultdict(list)
    for path, source in zip(paths, sources):
        try:
            st = os.stat(path)
        except OSError:
            continue
        offset, length, key = _data_span(source, st.st_size)
        itemsize = np.dtype(source.dtype).itemsize if key[0] == "data" else 0
        candidates[key].append((str(path), offset, length, st.st_size, st.st_mtime_ns, itemsize))
    rows = []
    for members in candidates.values():
        if len(members) < 2:
            continue
        by_sample: dict[str, list] = defaultdict(list)
        for m in members:
            by_sample[_sample_digest(*m)].append(m)
        for sample, alike in by_sample.items():
            if len(alike) < 2:
                continue
            by_data: dict[str, list[str]] = defaultdict(list)
            for m in alike:
                by_data[_span_digest(*m[:5]) if sample is not None else content_hash(m[0])].append(m[0])
            for same in by_data.values():
                if len(same) < 2:
                    continue
                kept, *others = sorted(same)
                for other in others:
                    identical = content_hash(other) == content_hash(kept)
                    rows.append({"path": other, "duplicate_of": kept, "same": "file" if identical else "pixels"})
    return pd.DataFrame(sorted(rows, key=lambda r: r["path"]), columns=DUPLICATE_COLUMNS)


def duplicate_problem(row: pd.Series) -> str:
    """One sentence about a duplicate, naming both files."""
    same = "the same file as" if row["same"] == "file" else "the same pixels (under another header) as"
    return f"{row['path']}: {same} {row['duplicate_of']}; left out (stacking both would count one frame twice)"


def size_strays(table: pd.DataFrame) -> pd.DataFrame:
    """Frames whose size no other frame of their folder has, in a folder whose other frames agree.

    Parameters
    ----------
    table : pandas.DataFrame
        Catalogue rows of raw frames (``path``, ``frame_type``, ``height``, ``width``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`STRAY_COLUMNS`, with the problem in words (naming the folder's size).
    """
    rows = []
    if len(table):
        folders = table["path"].map(lambda p: str(Path(p).parent))
        for folder, sub in table.groupby(folders, sort=True):
            shapes = sub.groupby(["height", "width"]).size().sort_values(ascending=False, kind="stable")
            if len(shapes) < 2 or shapes.iloc[0] < 2:
                continue  # one size, or no size most frames share: nothing stands out
            (height, width), n_common = shapes.index[0], int(shapes.iloc[0])
            for _, row in sub.iterrows():
                if (row["height"], row["width"]) != (height, width) and \
                        shapes[(row["height"], row["width"])] == 1:
                    kind = row["frame_type"] or "unclassified frame"
                    rows.append({"path": row["path"], "frame_type": row["frame_type"], "height": row["height"],
                                 "width": row["width"],
                                 "problem": (f"{row['path']}: {kind} of {row['width']}x{row['height']} px, unlike "
                                             f"the {n_common} frames of {width}x{height} px in its folder; left out "
                                             "of every set (move it out, or next to frames of its size)")})
    return pd.DataFrame(rows, columns=STRAY_COLUMNS)


def single_frame_problem(path: str, label: str) -> str:
    """One sentence about a calibration set of one frame."""
    return (f"{path}: the only frame of its set ({label}); a master of one frame rejects nothing and keeps "
            "the frame's full noise: take more frames (15 or more), or remove it if it does not belong")
