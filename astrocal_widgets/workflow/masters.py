"""One master at a time, with everything a view of it needs: the master, its rejection maps, the frames'
statistics, its noise against the recommended frame count; for flats the calibration and vignetting."""
from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from astropy.io import fits

from ..calibrate import MasterLibrary, build_master
from ..calibrate.overscan import overscan_attrs
from ..calibrate import FlatCalibration, calibrate_flats
from ..cancel import CancelToken, raise_if_cancelled
from ..errors import AstrocalError
from ..frames import FrameGroup
from ..integrate import write_master
from ..io.cube import compute_options, open_frames
from ..io.frame_types import CALIBRATION_TYPES
from ..quality import (central_crop, channel_levels, frame_statistics, frames_needed, master_noise, radial_profile,
                       temporal_noise)
from ..quality.previews import downsample
from ..quality.checks import RECOMMENDED_COUNTS

__all__ = ["MasterResult", "integrate_master", "save_master", "FlatPreview", "preview_flat_calibration",
           "MASTER_KINDS"]

#: The frame types a master is built from.
MASTER_KINDS = CALIBRATION_TYPES

Progress = Callable[[float, str], None]


@dataclass
class MasterResult:
    """A computed master and what it is made of.

    Attributes
    ----------
    group : FrameGroup
        The frames integrated.
    dataset : xarray.Dataset
        Computed result of :func:`~astrocal_widgets.integrate.integrate`: ``master``, ``rejected_low``,
        ``rejected_high``, ``contributing``; attrs with every parameter, the resolved rejection and why.
    statistics : xarray.Dataset
        Per-frame statistics of the input frames (:func:`~astrocal_widgets.quality.frame_statistics`).
    frame_sigma : float
        Temporal noise of one frame (ADU, from the difference of the first two frames, on a central
        crop of at most 2048 x 2048 pixels).
    master_sigma : float
        The master's expected noise, ``frame_sigma / sqrt(N)`` (x 1.25 for a median).
    light_sigma : float
        The lights' background noise the master is compared with (NaN when unknown or not relevant).
    recommended : (int, int)
        Recommended frame counts for this kind (docs/quality.md, "How many frames").
    frames_needed : int or None
        Fewest frames for which this master raises a light's noise by at most 5 % (bias and darks).
    flat_calibration : FlatCalibration or None
        For flats: which dark flats (or bias) were subtracted.
    profile : pandas.DataFrame or None
        For flats: the radial (vignetting) profile of the master.
    levels : dict
        Median level of the master per colour channel (``{'all': ...}`` for mono).
    warnings : list of str
        Fallbacks and problems, in words.
    excluded : dict
        Frames of the set left out (``{path: reason}``); ``group`` holds the others. Recorded in the
        saved master's header (``EXCLn``/``EXCRn``).
    saved_path : pathlib.Path or None
        The file :func:`save_master` wrote. From then on ``dataset`` reads its arrays from that file
        when they are used, instead of holding them in memory (:meth:`use_saved`).
    """

    group: FrameGroup
    dataset: xr.Dataset
    statistics: xr.Dataset
    frame_sigma: float = math.nan
    master_sigma: float = math.nan
    light_sigma: float = math.nan
    recommended: tuple[int, int] | None = None
    frames_needed: int | None = None
    flat_calibration: FlatCalibration | None = None
    profile: pd.DataFrame | None = None
    levels: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    saved_path: Path | None = None
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``bias``, ``dark``, ``darkflat`` or ``flat``."""
        return self.group.frame_type

    @property
    def master(self) -> np.ndarray:
        """The master image (float32)."""
        return np.asarray(self.dataset["master"].values)

    @property
    def n_frames(self) -> int:
        return int(self.dataset.attrs.get("n_frames", len(self.group)))

    @property
    def in_memory(self) -> bool:
        """Whether the master and its maps are held in memory (not yet saved)."""
        return self.saved_path is None

    def use_saved(self, path: str | os.PathLike) -> None:
        """Let go of the master and its maps held in memory: read them from ``path`` when used.

        ``path`` is the file :func:`save_master` wrote from this result (the master in the primary
        HDU, the maps in ``REJ_LOW``, ``REJ_HIGH`` and ``CONTRIB``); the values read back are the
        same, in the same types. Variables the file does not hold stay as they are.
        """
        path = Path(path)
        info = path.stat()
        stamp = (info.st_size, info.st_mtime_ns)  # a file replaced later is not this master any more
        extensions = {"master": 0, "rejected_low": "REJ_LOW", "rejected_high": "REJ_HIGH",
                      "contributing": "CONTRIB"}
        variables = {}
        for name, variable in self.dataset.data_vars.items():
            if name in extensions:
                data = da.from_delayed(dask.delayed(_read_hdu)(path, extensions[name], variable.dtype, stamp),
                                       variable.shape, variable.dtype)
                variables[name] = (variable.dims, data, variable.attrs)
            else:
                variables[name] = variable
        self.dataset = xr.Dataset(variables, coords=self.dataset.coords, attrs=self.dataset.attrs)
        self.saved_path = path

    @property
    def bayer_pattern(self) -> str:
        t = self.group.table
        return str(t["bayer_pattern"].iloc[0] or "") if "bayer_pattern" in t and len(t) else ""

    def frame_table(self) -> pd.DataFrame:
        """Per-frame statistics as a table: file, median, robust sigma, mean, min, max, hot fraction."""
        s = self.statistics
        table = pd.DataFrame({name: np.asarray(s[name].values) for name in
                              ("median", "sigma", "mean", "min", "max", "hot_fraction") if name in s})
        table.insert(0, "file", [Path(p).name for p in self.group.paths][:len(table)])
        table.index.name = "frame"
        return table

    def summary(self) -> str:
        """What was integrated, how, and what the master's noise costs."""
        a = self.dataset.attrs
        lines = [f"{self.group.label}: {self.n_frames} frames, {a.get('combine', '?')} with {a.get('rejection')} "
                 f"rejection ({a.get('rejection_reason', '')}), normalisation {a.get('normalization', 'none')}"]
        low, high = int(self.dataset["rejected_low"].sum()), int(self.dataset["rejected_high"].sum())
        total = self.dataset["master"].size * max(1, self.n_frames)
        lines.append(f"rejected {low:,} low and {high:,} high values ({(low + high) / total:.3%} of all)")
        if math.isfinite(self.frame_sigma):
            text = (f"noise of one frame {self.frame_sigma:.3g} ADU; of the master about {self.master_sigma:.3g} ADU")
            if math.isfinite(self.light_sigma):
                text += (f", adding {np.hypot(self.light_sigma, self.master_sigma) / self.light_sigma - 1:.1%} "
                         f"to a light's {self.light_sigma:.3g} ADU")
                if self.kind == "bias":
                    text += (" when the bias is subtracted on its own (darks of another exposure, scaled darks, "
                             "no darks; with darks of the lights' exposure it cancels)")
            lines.append(text)
        if self.recommended:
            rec = f"recommended {self.recommended[0]}-{self.recommended[1]} frames"
            if self.frames_needed is not None:
                rec += f"; {self.frames_needed} keep the light's noise within 5 %"
            lines.append(rec)
        if self.flat_calibration is not None and self.flat_calibration.masters:
            lines.append("flats calibrated with " + ", ".join(Path(m).name for m in self.flat_calibration.masters))
        if self.flat_calibration is not None:
            lines += [f"warning: {text}" for text in self.flat_calibration.warnings]
        if len(self.levels) > 1:
            lines.append("channel levels: " + ", ".join(f"{k} {v:.5g}" for k, v in self.levels.items()))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _scaled(progress: Progress | None, start: float, stop: float) -> Progress | None:
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (stop - start) * float(fraction), message)


def _read_hdu(path: Path, extension: int | str, dtype: np.dtype, stamp: tuple[int, int]) -> np.ndarray:
    """One image HDU of a saved master, read when needed (no file is kept open in between)."""
    info = path.stat() if path.exists() else None
    if info is None or (info.st_size, info.st_mtime_ns) != stamp:
        raise AstrocalError(f"{path}: {'removed' if info is None else 'replaced'} since this master was saved to "
                            "it; integrate the set again")
    with fits.open(path, memmap=False) as hdus:
        return np.asarray(hdus[extension].data, dtype=dtype)


#: Side of the central crop the temporal noise is measured on (4 megapixels are plenty).
NOISE_CROP = 2048
#: Pixels the vignetting profile is measured on (about 100,000 a ring): the frame's whole area, sampled.
PROFILE_PIXELS = 4_000_000


def integrate_master(group: FrameGroup, *, library: MasterLibrary | str | os.PathLike | None = None,
                     light_sigma: float | None = None, strict: bool = True, progress: Progress | None = None,
                     night: Any = None, saved: dict[str, Any] | None = None,
                     excluded: Mapping[str, str] | None = None, cancel: CancelToken | threading.Event | None = None,
                     **options: Any) -> MasterResult:
    """Integrate one calibration set into a master (in memory) with the figures to judge it.

    Bias, darks and dark flats are integrated as they are; flats are first calibrated by their master
    dark flats (else the master bias) found in ``library`` (:func:`~astrocal_widgets.calibrate.calibrate_flats`).

    Parameters
    ----------
    group : FrameGroup
        A set from :func:`~astrocal_widgets.scan` of type bias, dark, darkflat or flat.
    library : MasterLibrary or path-like, optional
        Where the master dark flats and bias are; needed for flats.
    light_sigma : float, optional
        The lights' background noise (ADU), to say what the master's noise costs (bias and darks).
    strict : bool, default True
        For flats: a flat without a dark flat or bias is an error (else left out, with a warning).
    progress : callable, optional
        ``progress(fraction, message)``: the engine's progress as bands finish, then the statistics.
    night, saved : optional
        For flats: the night's catalogue (and masters saved under other names), so that a flat set
        whose dark flats are in the night is never calibrated with the bias while their master is
        missing (:class:`~astrocal_widgets.errors.MissingMasterError`).
    excluded : mapping, optional
        Frames of the set to leave out, ``{path: reason}`` (as :func:`~.session_exclusions` gives the
        night's exclusion list); the master's provenance names them. Paths not in the set are ignored.
    cancel : CancelToken or threading.Event, optional
        Stop: looked at before each band of the integration and between the steps after it; raises
        :class:`~astrocal_widgets.errors.CancelledError` and returns nothing half-made.
    **options
        Any option of :func:`~astrocal_widgets.integrate.integrate` (``combine``, ``rejection``, ``low``,
        ``high``, ``normalization``, ...); the rest are the standard options of
        :data:`~astrocal_widgets.calibrate.MASTER_OPTIONS`.

    Returns
    -------
    MasterResult
    """
    kind = group.frame_type
    if kind not in MASTER_KINDS:
        raise ValueError(f"integrate_master: {group.label} is a {kind or 'unclassified'} set; masters are made "
                         f"of {', '.join(MASTER_KINDS)}")
    raise_if_cancelled(cancel, group.label)
    group, left_out = _leave_out(group, excluded or {})
    cube, flats = _master_cube(group, library=library, strict=strict, night=night, saved=saved)
    notes: list[str] = list(flats.warnings) if flats is not None else []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = build_master(cube, kind, progress=_scaled(progress, 0.0, 0.8), cancel=cancel, **options)
        dataset = dataset.compute(**compute_options(dataset))
    raise_if_cancelled(cancel, group.label)  # cancelled during the last band: the statistics are not started
    dataset.attrs.update(overscan_attrs(cube))
    dataset.attrs["excluded_frames"] = list(left_out.items())  # written as EXCLn/EXCRn
    notes += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if progress is not None:
        progress(0.8, "per-frame statistics")
    # The per-frame histograms (65,536 bins a frame, and their bin centres) and grid levels are not shown.
    statistics = frame_statistics(group.open(), cancel=cancel)
    statistics = statistics.compute(**compute_options(statistics)).drop_vars(["histogram", "grid", "bin_centre"],
                                                                             errors="ignore")
    raise_if_cancelled(cancel, group.label)
    n = int(dataset.attrs.get("n_frames", len(group)))
    combine = "median" if dataset.attrs.get("combine") == "median" else "average"
    result = MasterResult(group, dataset, statistics, warnings=notes, recommended=RECOMMENDED_COUNTS.get(kind),
                          excluded=left_out)
    if n >= 2:
        first_two = np.asarray(central_crop(cube.isel(frame=[0, 1]), NOISE_CROP))
        result.frame_sigma = temporal_noise(first_two[0], first_two[1], match_levels=kind == "flat")
        result.master_sigma = float(master_noise(result.frame_sigma, n, combine))
    if kind in ("bias", "dark") and light_sigma is not None and light_sigma > 0 and math.isfinite(light_sigma):
        result.light_sigma = float(light_sigma)
        if result.frame_sigma > 0:
            result.frames_needed = frames_needed(result.frame_sigma, light_sigma, combine=combine)
    result.levels = channel_levels(result.master, result.bayer_pattern)
    if kind == "flat":
        flats.cube = None  # the lazy cube holds the subtracted masters: the result does not need it
        result.flat_calibration = flats
        result.profile = radial_profile(result.master, bayer_pattern=result.bayer_pattern, max_pixels=PROFILE_PIXELS)
    if progress is not None:
        progress(1.0, f"master {kind} ready")
    return result


def _master_cube(group: FrameGroup, *, library: MasterLibrary | str | os.PathLike | None, strict: bool = True,
                 night: Any = None, saved: dict[str, Any] | None = None) -> tuple[xr.DataArray, FlatCalibration | None]:
    """The lazy cube a master of ``group`` integrates (flats: calibrated), and for flats their calibration."""
    if group.frame_type == "flat":
        if library is None:
            raise AstrocalError(f"{group.label}: flats are calibrated by master dark flats or a master bias before "
                                "they are integrated: pass library= (the folder where those masters are saved)")
        flats = calibrate_flats(group, library, strict=strict, night=night, saved=saved)
        return flats.cube, flats
    # As calibrate_session reads them: overscan subtracted and trimmed where the headers say so.
    return open_frames(group.paths, aliases=group.aliases, overscan="auto"), None


def _leave_out(group: FrameGroup, excluded: Mapping[str, str]) -> tuple[FrameGroup, dict[str, str]]:
    """The set without the frames of ``excluded`` (by full path), and those frames with their reasons."""
    if not excluded:
        return group, {}
    wanted = {os.path.abspath(p): str(reason or "") for p, reason in excluded.items()}
    keep = [os.path.abspath(p) not in wanted for p in group.paths]
    left_out = {str(p): wanted[os.path.abspath(p)] for p, k in zip(group.paths, keep) if not k}
    if not left_out:
        return group, {}
    if not any(keep):
        raise AstrocalError(f"{group.label}: every frame is excluded; include some to make a master")
    return replace(group, table=group.table[keep]), left_out


def save_master(result: MasterResult, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a master atomically (refusing to replace an existing file unless ``overwrite``).

    The result then reads its master and maps from the file when they are used
    (:meth:`MasterResult.use_saved`): a saved master costs no memory.

    Parameters
    ----------
    result : MasterResult
        From :func:`integrate_master`.
    path : path-like
        The file, or a folder: then ``master_<set>.fits`` inside it, the name
        :func:`~astrocal_widgets.calibrate.calibrate_session` reuses.
    overwrite : bool, default False

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / f"master_{result.group.slug}.fits"
    path.parent.mkdir(parents=True, exist_ok=True)
    if result.flat_calibration is not None:
        # The dark flats or bias the flats were calibrated with: written as CALMASn/CALSHAn.
        result.dataset.attrs["calibrated_with_paths"] = list(result.flat_calibration.masters)
    written = Path(write_master(result.dataset, path, overwrite=overwrite))
    result.use_saved(written)
    return written


@dataclass
class FlatPreview:
    """One flat before and after its dark flat (or bias) was subtracted.

    Attributes
    ----------
    path : str
        The flat.
    before, after : numpy.ndarray
        The raw and the calibrated flat (float32), or their block-mean previews (see ``factor``).
    subtracted : str or None
        The master subtracted.
    level_removed : float
        Median of that master (ADU): the pedestal and dark signal taken out of the flat.
    warnings : list of str
    factor : int
        ``before`` and ``after`` are ``factor`` x ``factor`` block means of the flat (1: full size).
    median_before, median_after : float
        Medians of the full-size flat before and after (ADU).
    instead_of : str or None
        The flat asked for when it is excluded (then ``path`` is the next one kept), else None.
    """

    path: str
    before: np.ndarray
    after: np.ndarray
    subtracted: str | None
    level_removed: float
    warnings: list[str] = field(default_factory=list)
    factor: int = 1
    median_before: float = math.nan
    median_after: float = math.nan
    instead_of: str | None = None

    def summary(self) -> str:
        name = Path(self.subtracted).name if self.subtracted else "nothing"
        before = self.median_before if math.isfinite(self.median_before) else float(np.median(self.before))
        after = self.median_after if math.isfinite(self.median_after) else float(np.median(self.after))
        instead = (f"{Path(self.instead_of).name} is excluded, shown instead: " if self.instead_of else "")
        return (f"{instead}{Path(self.path).name}: subtracted {name}, a level of {self.level_removed:.1f} ADU; "
                f"median {before:.1f} -> {after:.1f} ADU")


def preview_flat_calibration(group: FrameGroup, library: MasterLibrary | str | os.PathLike, *, frame: int = 0,
                             strict: bool = True, night: Any = None, saved: dict[str, Any] | None = None,
                             max_pixels: int | None = None, excluded: Mapping[str, str] | None = None
                             ) -> FlatPreview:
    """Calibrate one flat of a set by its master dark flat (else bias) to see what is removed.

    Parameters
    ----------
    group : FrameGroup
        A flat set.
    library : MasterLibrary or path-like
        Where the master dark flats and bias are saved.
    frame : int, default 0
        Which flat of the set (numbered as the whole set, excluded flats included).
    strict, night, saved
        As :func:`~astrocal_widgets.calibrate.calibrate_flats`.
    max_pixels : int, optional
        Keep ``before`` and ``after`` as block-mean previews of at most this many pixels (what a
        view shows); the medians are measured on the full-size flat first. Default: full size.
    excluded : mapping, optional
        Frames left out, ``{path: reason}`` (as :func:`~.session_exclusions` gives the night's
        exclusion list), as :func:`integrate_master` leaves them out: the flats are calibrated without
        them, and an excluded ``frame`` is replaced by the next flat kept (else the one before), named in
        :attr:`FlatPreview.instead_of` and the summary.

    Returns
    -------
    FlatPreview
    """
    frame = int(frame)
    if not 0 <= frame < len(group):
        raise IndexError(f"{group.label}: frame {frame} out of 0-{len(group) - 1}")
    asked = str(group.paths[frame])
    kept, left_out = _leave_out(group, excluded or {})  # every flat excluded: an error saying so
    instead_of = None
    if left_out:
        gone = {os.path.abspath(p) for p in left_out}
        keep = [os.path.abspath(p) not in gone for p in group.paths]
        if not keep[frame]:
            instead_of = asked
            # The next flat kept, else the one before: as near as can be to the one asked for.
            frame = ([i for i in range(frame + 1, len(group)) if keep[i]] +
                     [i for i in range(frame - 1, -1, -1) if keep[i]])[0]
        frame = sum(keep[:frame])  # its place among the flats kept
        group = kept
    flats = calibrate_flats(group, library, strict=strict, night=night, saved=saved)
    if not 0 <= frame < flats.cube.sizes["frame"]:
        raise IndexError(f"{group.label}: frame {frame} out of 0-{flats.cube.sizes['frame'] - 1}")
    path = str(flats.cube["path"].values[frame]) if "path" in flats.cube.coords else group.paths[frame]
    position = group.paths.index(path) if path in group.paths else frame
    before = np.asarray(open_frames(group.paths, aliases=group.aliases, overscan="auto").isel(frame=position).values,
                        np.float32)  # as the flats were read: overscan subtracted and trimmed
    after = np.asarray(flats.cube.isel(frame=frame).values, np.float32)
    index = flats.index[frame] if flats.index else -1
    subtracted = flats.masters[index] if index >= 0 else None
    medians = float(np.median(before)), float(np.median(after))
    (before, factor), (after, _) = downsample(before, max_pixels), downsample(after, max_pixels)
    flats.cube = None  # it holds the subtracted masters
    return FlatPreview(path, before, after, subtracted, flats.level_removed(frame), list(flats.warnings),
                       factor=factor, median_before=medians[0], median_after=medians[1], instead_of=instead_of)
