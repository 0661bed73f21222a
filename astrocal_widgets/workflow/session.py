"""A night opened for stepping through: the catalogue, where outputs go, the lights' noise; and its checks."""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from ..calibrate.outputs import CALIBRATED_FOLDER, MASTERS_FOLDER
from ..cancel import CancelToken, raise_if_cancelled
from ..calibrate.prerequisites import (Prerequisites, flat_prerequisites, light_prerequisites, saved_master_path,
                                      short_label)
from ..frames import FrameCatalog, FrameGroup, scan
from ..quality import CheckReport, background_noise, check_session
from ..quality.checks import RECOMMENDED_COUNTS
from ..quality.stats import adc_max_of

__all__ = ["SessionOverview", "open_session", "SessionChecks", "check_sets", "CATALOGUE_COLUMNS",
           "distinguishing_names"]

#: Catalogue columns a person reads first (the rest stay in ``catalog.table``).
CATALOGUE_COLUMNS = ("name", "frame_type", "exposure", "temperature", "gain", "offset", "iso", "filter",
                     "xbinning", "ybinning", "date_obs", "type_reason")

Progress = Callable[[float, str], None]


@dataclass
class SessionOverview:
    """A scanned night: its catalogue and the figures every later step needs.

    Attributes
    ----------
    directory : pathlib.Path
        The night's folder.
    output : pathlib.Path
        Where ``masters/`` and ``calibrated/`` are written (the night's folder by default, as
        :func:`~astrocal_widgets.calibrate.calibrate_session` does).
    catalog : FrameCatalog
        From :func:`~astrocal_widgets.scan` (headers only).
    light_sigma : float
        Robust background noise of the first light (ADU; NaN without lights): what a master's noise
        is compared with.
    lights_temperature : float or None
        Median sensor temperature of the lights (°C).
    """

    directory: Path
    output: Path
    catalog: FrameCatalog
    light_sigma: float = math.nan
    lights_temperature: float | None = None

    @property
    def masters_dir(self) -> Path:
        """``output/masters``: where masters are saved and looked up."""
        return self.output / MASTERS_FOLDER

    @property
    def calibrated_dir(self) -> Path:
        """``output/calibrated``: where calibrated lights go."""
        return self.output / CALIBRATED_FOLDER

    def groups(self, frame_type: str | None = None) -> list[FrameGroup]:
        """The calibration and light sets (of one type)."""
        return self.catalog.groups(frame_type)

    def table(self) -> pd.DataFrame:
        """The catalogue with the columns a person reads first (file name instead of the full path)."""
        t = self.catalog.table.copy()
        t.insert(0, "name", [Path(p).name for p in t["path"]])
        return t[[c for c in CATALOGUE_COLUMNS if c in t.columns]]

    def groups_table(self) -> pd.DataFrame:
        """One row per set: type, label, frame count and the recommended count (docs/quality.md)."""
        rows = []
        for g in self.groups():
            low, high = RECOMMENDED_COUNTS.get(g.frame_type, (None, None))
            rows.append({"type": g.frame_type, "set": g.label, "frames": len(g),
                         "recommended": f"{low}-{high}" if low else "", "master file": f"master_{g.slug}.fits"
                         if g.frame_type != "light" else ""})
        return pd.DataFrame(rows, columns=["type", "set", "frames", "recommended", "master file"])

    def master_path(self, group: FrameGroup, saved: Mapping[str, Any] | None = None) -> Path:
        """Where the master of ``group`` is saved (the name :func:`calibrate_session` uses and reuses),
        or ``saved[label]`` for one saved under another name."""
        return saved_master_path(group, self.masters_dir, saved)

    def prerequisites(self, target: Any, *, saved: Mapping[str, Any] | None = None) -> Prerequisites:
        """The night's masters a flat set or a light (set or catalogue row) is calibrated with, saved or not.

        The calibration's own matching rules decide (see
        :func:`~astrocal_widgets.calibrate.flat_prerequisites`): a flat set needs the master of the
        dark flats that match it whenever the night has them, and falls back to the bias only when it has
        none. ``saved`` maps set labels to masters saved under other names.
        """
        if isinstance(target, FrameGroup) and target.frame_type == "flat":
            return flat_prerequisites(target, self.catalog, self.masters_dir, saved=saved)
        return light_prerequisites(target, self.catalog, self.masters_dir, saved=saved)

    def set_progress(self, frame_type: str, saved: Mapping[str, Any] | None = None) -> str:
        """Which sets of a kind have a saved master, by what tells them apart: ``'1.5 s saved, 8 s not saved'``."""
        groups = self.groups(frame_type)
        names = distinguishing_names(groups)
        words = []
        for group, name in zip(groups, names):
            path = self.master_path(group, saved)
            words.append(f"{name} {'saved' if path.exists() else 'not saved'}")
        return ", ".join(words)

    def summary(self) -> str:
        """The catalogue's summary and the lights' noise."""
        text = self.catalog.summary()
        if math.isfinite(self.light_sigma):
            text += f"\nlights' background noise: {self.light_sigma:.3g} ADU (first light, central crop)"
        return text


def distinguishing_names(groups: list[FrameGroup]) -> list[str]:
    """Each set's values, without those every set shares: ``['1.5 s', '8 s']`` for two dark-flat sets."""
    parts = [short_label(g).split(", ") for g in groups]
    common = set.intersection(*map(set, parts)) if len(parts) > 1 else set()
    return [", ".join(p for p in ps if p not in common) or short_label(g) for ps, g in zip(parts, groups)]


def open_session(directory: str | os.PathLike, *, output: str | os.PathLike | None = None,
                 progress: Progress | None = None) -> SessionOverview:
    """Scan a night's folder (headers only) and measure one light's background noise.

    Parameters
    ----------
    directory : path-like
        The night's folder.
    output : path-like, optional
        Where masters and calibrated lights go (default: the night's folder).
    progress : callable, optional
        ``progress(fraction, message)`` while scanning.

    Returns
    -------
    SessionOverview
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such folder of frames")
    catalog = scan(directory, progress=progress)
    overview = SessionOverview(directory, Path(output) if output is not None else directory, catalog)
    lights = catalog.groups("light")
    if lights:
        first = lights[0]
        temps = catalog.table.loc[catalog.table["frame_type"] == "light", "temperature"].dropna()
        overview.lights_temperature = float(temps.median()) if len(temps) else None
        frame = first.open().isel(frame=0)  # lazy: background_noise reads only its central crop
        pattern = str(first.table["bayer_pattern"].iloc[0] or "") if "bayer_pattern" in first.table else ""
        overview.light_sigma = background_noise(frame, bayer_pattern=pattern)
    return overview


@dataclass
class SessionChecks:
    """Traffic-light checks of every set, with one frame per set for its histogram.

    Attributes
    ----------
    report : CheckReport
        From :func:`~astrocal_widgets.quality.check_session`.
    samples : dict
        Per set label: ``(pixels, adc_max, bayer_pattern, frame_type)``: the set's middle frame,
        subsampled to at most :data:`SAMPLE_PIXELS` pixels in whole 2 x 2 cells (the Bayer phase is kept).
    """

    report: CheckReport
    samples: dict[str, tuple[np.ndarray, float, str, str]] = field(default_factory=dict, repr=False)

    def status_of(self, label: str) -> str:
        """Worst status of one set (``pass`` when it has no checks)."""
        return CheckReport([c for c in self.report if c.group == label]).status

    def table(self, label: str | None = None) -> pd.DataFrame:
        """The checks (of one set) as a table."""
        t = self.report.table
        return t if label is None else t[t["group"] == label].reset_index(drop=True)

    def summary_table(self, label: str | None = None) -> pd.DataFrame:
        """The checks (of one set) aggregated: one row per check, per-frame results counted.

        See :meth:`~astrocal_widgets.quality.CheckReport.summary_table`; failures first, then warnings.
        """
        t = self.report.summary_table()
        if label is not None:
            t = t[t["group"] == label]
        order = t["status"].map({"fail": 0, "warn": 1, "pass": 2})
        return t.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order") \
            .reset_index(drop=True)


#: Pixels kept of each set's sample frame (a histogram needs no more).
SAMPLE_PIXELS = 1_000_000


def _cells_subsample(frame):
    """Every k-th pair of rows and of columns: whole 2 x 2 CFA cells, at most SAMPLE_PIXELS pixels."""
    h, w = frame.shape
    k = max(1, math.ceil(math.sqrt(h * w / SAMPLE_PIXELS)))
    if k == 1:
        return frame
    rows = np.flatnonzero((np.arange(h) // 2) % k == 0)
    cols = np.flatnonzero((np.arange(w) // 2) % k == 0)
    return frame.isel(y=rows, x=cols)


def check_sets(session: SessionOverview, *, progress: Progress | None = None,
               cancel: CancelToken | threading.Event | None = None) -> SessionChecks:
    """Check every set of the night and keep one frame per set for its histogram.

    Parameters
    ----------
    session : SessionOverview
        From :func:`open_session`.
    progress : callable, optional
        ``progress(fraction, message)`` as each set is checked.
    cancel : CancelToken or threading.Event, optional
        Stop between sets: raises :class:`~astrocal_widgets.errors.CancelledError`.

    Returns
    -------
    SessionChecks
    """
    def checking(fraction: float, message: str) -> None:
        raise_if_cancelled(cancel, "checks")  # called before each set is checked
        if progress is not None:
            progress(0.9 * fraction, message)

    report = check_session(session.catalog, lights_temperature=session.lights_temperature, progress=checking)
    out = SessionChecks(report)
    groups = session.groups()
    for k, group in enumerate(groups):
        raise_if_cancelled(cancel, "checks")
        cube = group.open()
        middle = _cells_subsample(cube.isel(frame=len(group) // 2))
        adc = float(adc_max_of(cube))
        pattern = str(group.table["bayer_pattern"].iloc[0] or "") if "bayer_pattern" in group.table else ""
        out.samples[group.label] = (np.asarray(middle.values), adc, pattern, group.frame_type)
        if progress is not None:
            progress(0.9 + 0.1 * (k + 1) / len(groups), f"histogram of {group.label}")
    return out
