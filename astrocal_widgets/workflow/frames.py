"""Looking through a set frame by frame, and leaving frames out of it.

:func:`review_frames` measures every frame of a set once (its per-frame statistics and the set's
checks, outliers with the reason); :func:`frame_preview` reads one frame, band by band, into a
small auto-stretchable preview and a histogram sample, so browsing a 24-megapixel set never holds
more than one band of one frame. :func:`exclude_frames` and :func:`include_frames` edit the night's
exclusion list (:mod:`astrocal_widgets.frames.exclusions`), which every later run honours.
Computation only: nothing here imports plotting or widgets.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from ..frames import FrameGroup, add_exclusions, read_exclusions, remove_exclusions
from ..io.cube import open_frames
from ..quality import CheckReport, check_frames, frame_statistics
from ..quality.previews import block_reduce, preview_factor
from ..quality.stats import adc_max_of

__all__ = ["FrameReview", "review_frames", "FramePreview", "frame_preview", "PREVIEW_BAND_BYTES",
           "session_exclusions", "exclude_frames", "include_frames"]

Progress = Callable[[float, str], None]

#: Bytes of one band of rows read at a time by :func:`frame_preview` (float32 pixels).
PREVIEW_BAND_BYTES = 16 * 2**20

#: The per-frame statistics shown, in order.
_COLUMNS = ("median", "sigma", "mean", "min", "max", "hot_fraction")
_ORDER = {"pass": 0, "warn": 1, "fail": 2}


@dataclass
class FrameReview:
    """Every frame of a set measured once: its statistics and whether the set's checks single it out.

    Attributes
    ----------
    group : FrameGroup
    table : pandas.DataFrame
        One row per frame, in the set's order (index ``frame``): ``file``, ``path``, the statistics
        (median, sigma, mean, min, max in ADU; hot_fraction), ``status`` (the worst of the frame's
        own checks: pass, warn or fail) and ``reason`` (what those checks found, '' when it passed).
    report : CheckReport
        The set's checks (:func:`~astrocal_widgets.quality.check_frames`).
    """

    group: FrameGroup
    table: pd.DataFrame
    report: CheckReport

    def outliers(self, worst: str = "warn") -> dict[str, str]:
        """The frames whose own checks are at least ``worst`` (``"warn"`` or ``"fail"``): ``{path: reason}``."""
        level = _ORDER[worst]
        flagged = self.table[self.table["status"].map(_ORDER) >= level]
        return dict(zip(flagged["path"], flagged["reason"]))

    def sorted_by(self, column: str, descending: bool = False) -> pd.DataFrame:
        """The table sorted by one column (the frame number breaks ties)."""
        if column not in self.table.columns and column != "frame":
            raise ValueError(f"no column {column!r}; choose one of frame, {', '.join(self.table.columns)}")
        key = self.table.index.to_series() if column == "frame" else self.table[column]
        if column == "status":
            key = key.map(_ORDER)
        order = np.lexsort((self.table.index.to_numpy(), -key.to_numpy() if descending and column != "file"
                            else key.to_numpy()))
        table = self.table.iloc[order]
        return table.iloc[::-1] if descending and column == "file" else table


def review_frames(group: FrameGroup, *, lights_temperature: float | None = None,
                  progress: Progress | None = None) -> FrameReview:
    """Measure each frame of a set (one pass over its bands) and grade it with the set's checks.

    Parameters
    ----------
    group : FrameGroup
        A calibration set (bias, dark, darkflat or flat).
    lights_temperature : float, optional
        The lights' temperature (°C), for the darks' checks.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    FrameReview
    """
    if progress is not None:
        progress(0.0, f"measuring {len(group)} frames")
    cube = group.open()
    statistics = frame_statistics(cube)
    report = check_frames(cube, kind=group.frame_type, lights_temperature=lights_temperature,
                          statistics=statistics)
    paths = [str(p) for p in group.paths]
    table = pd.DataFrame({name: np.asarray(statistics[name].values) for name in _COLUMNS if name in statistics})
    table.insert(0, "file", [Path(p).name for p in paths])
    table.insert(1, "path", paths)
    status, reason = [], []
    for path in paths:
        found = [c for c in report if c.scope == "frame" and c.frame == path]
        bad = sorted((c for c in found if c.status != "pass"), key=lambda c: -_ORDER[c.status])
        status.append(bad[0].status if bad else "pass")
        reason.append(" ".join(c.explanation for c in bad))
    table["status"], table["reason"] = status, reason
    table.index.name = "frame"
    if progress is not None:
        progress(1.0, "frames measured")
    return FrameReview(group, table, report)


@dataclass
class FramePreview:
    """One frame as a view shows it: a block-mean preview and a sample of its pixels for the histogram.

    Attributes
    ----------
    path : str
    index : int
        Its position in the set.
    image : numpy.ndarray
        ``factor`` x ``factor`` block means of the frame (float32).
    factor : int
    sample : numpy.ndarray
        Whole 2 x 2 cells of the frame (every k-th pair of rows and columns, the CFA phase kept), at
        most about ``sample_pixels`` values: what its histogram is drawn from.
    adc_max : float
    bayer_pattern : str
    shape : (int, int)
        The frame's full size.
    """

    path: str
    index: int
    image: np.ndarray
    factor: int
    sample: np.ndarray
    adc_max: float
    bayer_pattern: str
    shape: tuple[int, int]

    @property
    def name(self) -> str:
        return Path(self.path).name


def frame_preview(group: FrameGroup, index: int, *, max_pixels: int = 1_000_000,
                  sample_pixels: int = 1_000_000) -> FramePreview:
    """Read one frame of a set, band by band, into a small preview and a histogram sample.

    Only this frame is read (as the masters read it: overscan subtracted and trimmed where the
    headers say so), :data:`PREVIEW_BAND_BYTES` of rows at a time; neither the set nor the
    full-size frame is ever held in memory.

    Parameters
    ----------
    group : FrameGroup
    index : int
        Which frame of the set (0-based).
    max_pixels, sample_pixels : int
        Pixel budgets of the preview and of the histogram sample.

    Returns
    -------
    FramePreview
    """
    if not 0 <= int(index) < len(group):
        raise IndexError(f"{group.label}: frame {index} out of 0-{len(group) - 1}")
    path = str(group.paths[int(index)])
    cube = open_frames([path], aliases=group.aliases, overscan="auto")
    _, height, width = (int(n) for n in cube.shape)
    factor = preview_factor((height, width), max_pixels)
    band = max(1, PREVIEW_BAND_BYTES // max(1, width * 4 * factor)) * factor
    band += band % 2  # whole 2 x 2 cells in every band
    cube = open_frames([path], aliases=group.aliases, overscan="auto", chunks=band)  # chunks = the bands read
    frame = cube.isel(frame=0)
    step = max(1, math.ceil(math.sqrt(height * width / max(1, sample_pixels))))
    columns = np.flatnonzero((np.arange(width) // 2) % step == 0)
    parts, samples = [], []
    for y0 in range(0, height, band):  # bands are whole blocks: the last one's spare rows are dropped
        rows = np.asarray(frame[y0:min(height, y0 + band)].values, dtype=np.float32)
        parts.append(block_reduce(rows, factor))
        keep = np.flatnonzero(((np.arange(y0, y0 + rows.shape[0])) // 2) % step == 0)
        samples.append(rows[np.ix_(keep, columns)])
        del rows
    pattern = str(cube["bayer_pattern"].values[0] or "") if "bayer_pattern" in cube.coords else ""
    image = np.concatenate(parts, axis=0) if parts else np.zeros((0, 0), np.float32)
    return FramePreview(path, int(index), image, factor, np.concatenate(samples, axis=0),
                        float(adc_max_of(cube)), pattern, (height, width))


def session_exclusions(session: Any) -> dict[str, str]:
    """The night's exclusion list as ``{full path: reason}`` (``session``: an :class:`~.SessionOverview`)."""
    root = Path(os.path.abspath(session.directory))
    return {str(root / name): reason for name, reason in read_exclusions(session.output).items()}


def exclude_frames(session: Any, frames: Iterable[str | os.PathLike] | Mapping[str, str],
                   reason: str = "") -> dict[str, str]:
    """Add frames to the night's exclusion list (in its output folder); returns the list (full paths).

    The frames are never moved or deleted; every later run (dashboard, ``calibrate_session``, the
    command) leaves them out of their sets.
    """
    add_exclusions(session.output, frames, os.path.abspath(session.directory), reason=reason)
    return session_exclusions(session)


def include_frames(session: Any, frames: Iterable[str | os.PathLike]) -> dict[str, str]:
    """Take frames off the night's exclusion list; returns the list (full paths)."""
    remove_exclusions(session.output, [os.path.abspath(f) for f in frames], os.path.abspath(session.directory))
    return session_exclusions(session)
