"""``calibrate_session``: a night from raw frames to calibrated lights, the way careful people do it.

Scan, group, build (or reuse) master bias, darks and dark flats; calibrate each flat by its dark
flat (else the bias) and integrate one master flat per filter; calibrate every light with the
matching masters, ``L' = (L - B - k (D - B)) / (F / <F>) + pedestal``; correct hot and cold pixels;
write everything atomically, overwrite nothing unless asked, and report every decision.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import dask
import numpy as np
from astropy.io import fits

from ..errors import AstrocalError, MissingMasterError, StaleOutputError
from ..frames import FrameCatalog, FrameGroup, scan
from ..frames.grouping import exposures_match
from ..heap import trim_heap
from ..integrate import write_master
from ..integrate.master_file import master_mismatch
from ..io.cube import compute_into_arrays, open_frames
from ..io.frame_types import CALIBRATION_TYPES
from ..io.headers import read_field
from ..io.provenance import write_provenance
from ..io.sources import read_header
from ..io.write import write_fits_atomic
from .apply import optimize_dark_scale, prepare_masters
from .cosmetic import COMPILING_MESSAGE as COSMETIC_COMPILING_MESSAGE
from .cosmetic import _dark_maps_of, correct_defects, defect_map
from .cosmetic import kernels_need_compiling as cosmetic_kernels_need_compiling
from .levels import master_level_problem, sample_rows
from .library import MasterLibrary, find_master
from .build_masters import build_master, subtract_masters
from .overscan import (calibrated_row, frame_plan, overscan_attrs, overscan_mismatch, overscan_word,
                       record_in_header)
from .matching import check_compatibility, enforce
from .outputs import (CALIBRATED_FOLDER, MASTERS_FOLDER, LightProvenance, calibrated_light_path, calibration_record,
                      check_one_to_one, defect_map_mismatch, defect_map_record)
from .prerequisites import flat_prerequisites, master_file

__all__ = ["calibrate_session", "CalibrationResult", "MasterRecord", "LightRecord", "calibrate_flats",
           "FlatCalibration", "calibrate_light", "CalibratedLight"]

# Guards the caches of masters, prepared terms and defect maps shared by lights calibrated in threads.
_CACHE_LOCK = threading.RLock()

# Rules a lenient run (strict=False) may break with a warning; the others make calibration wrong
# whatever the user wants (a 2x2-binned dark on a 1x1 light cannot be subtracted).
_SOFT_RULES = {"temperature", "exposure", "dark_scaling", "instrument", "darkflat_exposure"}


@dataclass
class MasterRecord:
    """A master the run made or reused."""

    frame_type: str
    path: str
    label: str
    n_frames: int
    rejection: str = ""
    reason: str = ""
    reused: bool = False
    calibrated_with: list[str] = field(default_factory=list)


@dataclass
class LightRecord:
    """A calibrated light: where from, where to, with what."""

    source: str
    output: str
    bias: str | None
    dark: str | None
    flat: str | None
    dark_scale: float
    dark_scale_method: str
    defects_corrected: int = 0
    reused: bool = False
    #: Whether cosmetic correction was asked for (``defects_corrected`` is 0 when it was not).
    cosmetic: bool = True


@dataclass
class CalibrationResult:
    """What :func:`calibrate_session` made from what, the decisions taken and every warning."""

    directory: Path
    output: Path
    catalog: FrameCatalog
    masters: list[MasterRecord] = field(default_factory=list)
    lights: list[LightRecord] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    defect_maps: list[str] = field(default_factory=list)
    #: Files this run wrote (empty on a rerun that found everything up to date).
    written: list[str] = field(default_factory=list)
    #: The decisions by calibration set (label), in order, without repeats.
    decisions_by_set: dict[str, list[str]] = field(default_factory=dict)

    @property
    def masters_dir(self) -> Path:
        """Where the masters (and defect maps) are."""
        return self.output / MASTERS_FOLDER

    @property
    def lights_dir(self) -> Path:
        """Where the calibrated lights are (in the sub-folders of the raw lights)."""
        return self.output / CALIBRATED_FOLDER

    def decide(self, label: str, text: str) -> None:
        """Record a decision about the set ``label`` (once)."""
        line = f"{label}: {text}" if label else text
        if line not in self.decisions:
            self.decisions.append(line)
            self.decisions_by_set.setdefault(label, []).append(text)

    def summary(self) -> str:
        """A plain-text report: what was made or reused, where it is, the decisions by set, the warnings."""
        n_reused = sum(m.reused for m in self.masters) + sum(l.reused for l in self.lights)
        lines = [f"calibrated {self.directory}"]
        lines.append(f"masters ({len(self.masters)}) in {self.masters_dir}:")
        for m in self.masters:
            state = "reused" if m.reused else "made"
            lines.append(f"  {state} {Path(m.path).name}: {m.n_frames} frames"
                         + (f", {m.rejection}" if m.rejection else "") + _flat_words(m)
                         + (" -- DOUBTFUL: a master of one frame (see the warnings)" if m.n_frames == 1 else ""))
        lines.append(f"lights ({len(self.lights)}) in {self.lights_dir}:")
        for l in self.lights:
            state = "reused" if l.reused else "calibrated"
            lines.append(f"  {state} {_shown(l.source, self.directory)} -> {_shown(l.output, self.lights_dir)} "
                         f"({_light_words(l)})")
        if self.decisions_by_set:
            lines.append("decisions, by set:")
            for label, texts in self.decisions_by_set.items():
                lines.append(f"  {label or 'other'}:")
                lines += [f"    {t}" for t in _merge_per_frame(texts)]
        if self.warnings:
            lines.append(f"warnings ({len(self.warnings)}):")
            lines += [f"  {w}" for w in dict.fromkeys(self.warnings)]
        if self.written:
            lines.append(f"wrote {len(self.written)} file(s); {n_reused} output(s) were up to date and reused")
        else:
            lines.append(f"nothing written: all {n_reused} outputs are up to date (same inputs, same options) "
                         "and were reused")
        lines.append("next: stack the calibrated lights (e.g. in Siril or PixInsight), or open the dashboard "
                     "(astrocal_widgets.widgets.CalibrationDashboard) to inspect the masters")
        return "\n".join(lines)


def _shown(path: str, folder: Path) -> str:
    try:
        return Path(path).relative_to(os.path.abspath(folder)).as_posix()
    except ValueError:
        return str(path)


def _light_words(light: "LightRecord") -> str:
    """What was applied to a light, every term named: present, scaled how, or absent."""
    words = ["bias" if light.bias else "no bias",
             f"dark x{light.dark_scale:.3f} {light.dark_scale_method}" if light.dark else "no dark",
             "flat" if light.flat else "no flat"]
    if not light.cosmetic:
        words.append("cosmetic correction off")
    elif not light.dark and not light.flat:
        words.append("no defect map (no dark or flat)")
    else:
        words.append(f"{light.defects_corrected} defects corrected")
    return ", ".join(words)


def _flat_words(master: "MasterRecord") -> str:
    """How a master flat's frames were calibrated ('' for other masters)."""
    if master.frame_type != "flat":
        return ""
    if not master.calibrated_with:
        return ", flats not calibrated (no dark flat or bias)"
    return ", flats calibrated with " + " and ".join(Path(p).name for p in master.calibrated_with)


_TEMPERATURE = re.compile(r"\((light|flat) (-?\d+(?:\.\d+)?) °C\)")


def _merge_per_frame(texts: list[str]) -> list[str]:
    """One line for decisions that differ only in each frame's own temperature ("light -9.9 °C")."""
    merged: dict[str, list[float]] = {}
    kinds: dict[str, str] = {}
    for text in texts:
        key = _TEMPERATURE.sub("(@@ °C)", text)
        found = _TEMPERATURE.findall(text)
        merged.setdefault(key, [])
        if found:
            kinds[key] = found[0][0]
            merged[key] += [float(v) for _, v in found]
    out = []
    for key, temps in merged.items():
        if not temps:
            out.append(key)
            continue
        lo, hi = min(temps), max(temps)
        span = f"{kinds[key]} {lo:.1f} °C" if lo == hi else f"{kinds[key]}s {lo:.1f} to {hi:.1f} °C"
        out.append(key.replace("@@ °C", span))
    return out


def calibrate_session(
    directory: str | os.PathLike,
    *,
    output: str | os.PathLike | None = None,
    library: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    overwrite: bool = False,
    strict: bool = True,
    temperature_tolerance: float = 1.0,
    allow_dark_scaling: bool = True,
    dark_optimization: bool = False,
    cosmetic: bool = True,
    k_hot: float = 5.0,
    k_cold: float = 5.0,
    pedestal: float = 0.0,
    rejection: str = "auto",
    rejection_thresholds: tuple[float, float] | None = None,
    overscan: Any = "auto",
    progress: Callable[[float, str], None] | None = None,
    client: Any = None,
) -> CalibrationResult:
    """Calibrate a night: masters, calibrated flats, master flats, calibrated lights.

    Parameters
    ----------
    directory : path-like
        The night's folder (any layout :func:`~astrocal_widgets.scan` understands).
    output : path-like, optional
        Where to write; by default masters go to ``directory/masters`` and calibrated lights to
        ``directory/calibrated``. With ``output``: ``output/masters`` and ``output/calibrated``.
    library : path-like or list of them, optional
        Folders of masters from other nights (bias and temperature-regulated darks are reused when
        this night has none that match).
    overwrite : bool, default False
        Rebuild and replace existing outputs. Without it, existing masters and calibrated lights are
        reused and nothing is replaced.
    strict : bool, default True
        A broken compatibility rule (temperature beyond tolerance, an exposure mismatch without
        scaling, ...) is an error naming both frames and both values. With ``strict=False`` the
        closest master is used with a warning for the soft rules (temperature, exposure,
        instrument); size, binning, gain, offset, ISO, filter and CFA mismatches are never used.
    temperature_tolerance : float, default 1.0
        °C between lights and darks/bias.
    allow_dark_scaling : bool, default True
        Use darks of another exposure, scaled by the exposure ratio (needs a master bias).
    dark_optimization : bool, default False
        Choose the dark scale that minimises the calibrated frame's noise (needs a master bias).
    cosmetic : bool, default True
        Correct hot pixels (from the master dark) and cold pixels (from the master flat and dark).
    k_hot, k_cold : float
        Defect thresholds in robust sigmas.
    pedestal : float
        Added to calibrated lights (keeps them positive).
    rejection : str, default "auto"
        Pixel rejection of every master: ``"auto"`` chooses by frame count (see
        :func:`~astrocal_widgets.integrate.integrate`), or one algorithm for all (e.g. ``"winsorized_sigma"``,
        as a Siril script's ``rej w 3 3``). With a named rejection, an existing master made with
        another is stale; with ``"auto"`` any existing master of the same frames is reused (such as one
        saved from the dashboard with the user's own choice).
    rejection_thresholds : (low, high), optional
        Thresholds of ``rejection`` (its defaults otherwise); needs a named ``rejection``.
    overscan : {'auto', 'off'}, Overscan or mapping, default 'auto'
        ``'auto'``: frames whose headers give ``BIASSEC`` have each row's overscan level (median)
        subtracted, and frames whose headers give ``TRIMSEC`` (else ``DATASEC``) are trimmed to it, as
        they are read and before anything else (masters, flats and lights alike; see
        :func:`~astrocal_widgets.open_frames`). Frames without sections are untouched. ``'off'`` keeps
        the stored pixels. Masters and calibrated lights say what was done (``OVERSCAN``, ``TRIM``).
    progress : callable, optional
        ``progress(fraction, message)``.
    client : distributed.Client, optional
        Run on a dask.distributed cluster: the masters' bands and each light's calibration become
        tasks on its workers (which must see the same files: a shared file system), the defect maps
        one task per pair of masters. The outputs are byte-identical to a local run. Any cluster
        dask supports (LocalCluster, SLURM with dask-jobqueue, Kubernetes with dask-kubernetes).

    Returns
    -------
    CalibrationResult

    Raises
    ------
    CalibrationMismatchError
        With ``strict=True``, when a light has no compatible master of a kind the session provides.
    """
    # One absolute spelling of the folder: relative, absolute and symlinked paths give the same outputs.
    root = Path(os.path.abspath(directory))
    out_root = Path(os.path.abspath(output)) if output is not None else root
    report = _Progress(progress)
    catalog = scan(root)
    result = CalibrationResult(Path(directory), out_root, catalog)
    masters_dir, lights_dir = result.masters_dir, result.lights_dir
    # Skipped, unclassified, duplicate and stray files (left out of every set), and sets of one frame.
    result.warnings += catalog.warnings

    groups = catalog.groups()
    lights = [g for g in groups if g.frame_type == "light"]
    steps = [g for g in groups if g.frame_type in CALIBRATION_TYPES]
    options = dict(allow_dark_scaling=allow_dark_scaling, dark_optimization=dark_optimization, cosmetic=cosmetic,
                   k_hot=k_hot, k_cold=k_cold, pedestal=pedestal, overscan=overscan_word(overscan))
    integration = _integration_options(rejection, rejection_thresholds)
    plan = _Plan(root, masters_dir, lights_dir, steps, lights, options, integration)
    plan.check(overwrite)  # before anything is written: one output per input, nothing stale

    masters_dir.mkdir(parents=True, exist_ok=True)
    lib = MasterLibrary(masters_dir)
    # Other nights' masters are a fallback for bias and darks only: tonight's masters come first,
    # and flats (dust, rotation) and dark flats are never taken from another night.
    external = MasterLibrary(masters_dir / ".external-none")
    for folder in ([] if library is None else [library] if isinstance(library, (str, os.PathLike)) else library):
        for path in sorted(Path(folder).rglob("*.fit*")):
            try:
                external.add(path)
            except AstrocalError:
                continue

    total = len(steps) + sum(len(g) for g in lights)
    report.total = max(1, total)

    # The masters' band tasks go to the cluster's scheduler when there is one. Two masters are made
    # at a time, so one is written to disk (one thread) while the other is integrated; each
    # records into its own log, replayed in order, so the report does not depend on timing.
    with (dask.config.set(scheduler=client) if client is not None else contextlib.nullcontext()), \
            ThreadPoolExecutor(MASTER_THREADS, thread_name_prefix="astrocal-master") as pool:
        # 1. Bias, darks, dark flats: plain masters.
        jobs = [(log := _TaskLog(), pool.submit(_master, group, plan.masters[group.slug], overwrite,
                                                report.step(f"master {group.frame_type}"), log, integration,
                                                overscan))
                for group in steps if group.frame_type in ("bias", "dark", "darkflat")]
        for log, job in jobs:
            lib.add(job.result().path)
            log.replay(result)
        trim_heap()  # the masters' freed bands: the flats' full-size arrays would not reuse them

        # 2. Flats: calibrate each by its dark flat (else bias), then integrate.
        jobs = [(log := _TaskLog(), pool.submit(_master_flat, group, plan.masters[group.slug], lib, overwrite,
                                                report.step("master flat"), log, temperature_tolerance, strict,
                                                integration, overscan))
                for group in steps if group.frame_type == "flat"]
        # Meanwhile the darks' share of the lights' defect maps, in the thread the flats leave free.
        dark_parts = _dark_parts_ahead(pool, lights, lib, external, plan, strict=strict,
                                       temperature_tolerance=temperature_tolerance,
                                       overwrite=overwrite) if client is None else {}
        for log, job in jobs:
            lib.add(job.result().path)
            log.replay(result)

    # 3. Lights. Defect maps are shared by every light calibrated with the same masters.
    trim_heap()
    defects: dict[tuple, Any] = {}
    for group in lights:
        _calibrate_lights(group, lib, external, plan, result, report, strict=strict,
                          temperature_tolerance=temperature_tolerance, overwrite=overwrite, defects=defects,
                          client=client, dark_parts=dark_parts)
    report(1.0, "done")
    return result


class _Plan:
    """Every output of a run, derived from its input before anything is written."""

    def __init__(self, root: Path, masters_dir: Path, lights_dir: Path, steps: list[FrameGroup],
                 lights: list[FrameGroup], options: dict[str, Any], integration: dict[str, Any] | None = None):
        self.root, self.masters_dir, self.lights_dir = root, masters_dir, lights_dir
        self.options = options
        self.integration = integration or {}  # the masters' integration options beyond the standard ones
        self.steps = steps
        self.masters = {g.slug: master_file(g, masters_dir) for g in steps}
        self.lights = {str(p): calibrated_light_path(p, root, lights_dir) for g in lights for p in g.paths}

    def check(self, overwrite: bool) -> None:
        """Refuse two inputs for one output, and (unless overwriting) outputs made from something else."""
        check_one_to_one([(g.label, self.masters[g.slug]) for g in self.steps] + list(self.lights.items()))
        if overwrite:
            return
        stale = []
        for group in self.steps:
            target = self.masters[group.slug]
            if target.exists():
                # A flat's calibration masters are compared once they exist (step 2).
                why = master_mismatch(target, group.paths, None, settings=self.master_settings(group)) or \
                    overscan_mismatch(read_header(target),
                                      frame_plan(str(group.paths[0]), self.options["overscan"], group.aliases))
                if why:
                    stale.append(f"{target}: {why}")
        for source, target in self.lights.items():
            if target.exists():
                why = self.provenance(source).mismatch(target, check_masters=False)
                if why:
                    stale.append(f"{target}: {why}")
        if stale:
            raise StaleOutputError(stale)

    def master_settings(self, group: FrameGroup) -> dict[str, Any] | None:
        """The integration settings a master of ``group`` must have been made with to be reused.

        None with ``rejection="auto"``: any rejection is accepted then, so a master saved from the
        dashboard with the user's own choice is reused, not rebuilt.
        """
        return dict(self.integration) or None

    def provenance(self, source: str, masters: dict[str, str | None] | None = None) -> LightProvenance:
        return LightProvenance.of(source, self.root, self.options, masters)


def _read_master(path: str | None) -> np.ndarray | None:
    """A master's pixels as float32 (None for no master)."""
    return None if path is None else fits.getdata(path).astype(np.float32)


class _Progress:
    def __init__(self, callback):
        self.callback = callback
        self.total = 1
        self.done = 0

    def step(self, message: str) -> Callable[[float, str], None] | None:
        """A sub-progress callback for one step, mapped into the whole run."""
        start = self.done
        self.done += 1
        if self.callback is None:
            return None

        def sub(fraction: float, text: str) -> None:
            # The engine's messages often name the step already ("master bias: band 2 of 8").
            words = text if text.startswith(message) else f"{message}: {text}"
            self.callback(min(1.0, (start + fraction) / self.total), words)

        sub(0.0, "start")
        return sub

    def __call__(self, fraction: float, message: str) -> None:
        if self.callback is not None:
            self.callback(fraction, message)


def _existing_master(path: Path, group: FrameGroup) -> MasterRecord:
    header = read_header(path)
    return MasterRecord(group.frame_type, str(path), group.label, int(header.get("NCOMBINE", 0)),
                        str(header.get("REJECT", "")), "up to date (same input frames), reused", reused=True)


#: Masters made at the same time by :func:`calibrate_session`.
MASTER_THREADS = 2


class _TaskLog:
    """What one master's task records, replayed into the result in the order the tasks were given."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.masters: list[MasterRecord] = []
        self.warnings: list[str] = []
        self._decisions: list[tuple[str, str]] = []

    def decide(self, label: str, text: str) -> None:
        self._decisions.append((label, text))

    def replay(self, result: CalibrationResult) -> None:
        result.written += self.written
        result.warnings += self.warnings
        for label, text in self._decisions:
            result.decide(label, text)
        result.masters += self.masters


def _integration_options(rejection: str, thresholds: tuple[float, float] | None) -> dict[str, Any]:
    """``build_master`` overrides for a named rejection (none for ``"auto"``), checked before any work."""
    from ..integrate.combine import REJECTIONS

    if rejection not in REJECTIONS:
        raise ValueError(f"rejection must be one of {', '.join(REJECTIONS)}, got {rejection!r}")
    if rejection == "auto":
        if thresholds is not None:
            raise ValueError("rejection_thresholds need a named rejection (not 'auto', which chooses its own)")
        return {}
    options: dict[str, Any] = {"rejection": rejection}
    if thresholds is not None:
        options["low"], options["high"] = (float(v) for v in thresholds)
    return options


def _record_overscan(ds: Any, cube: Any, group: FrameGroup, result: CalibrationResult | _TaskLog) -> None:
    """Name the overscan and trim of a master's frames in its header and in the decisions."""
    if "overscan" not in cube.attrs:
        return
    ds.attrs.update(overscan_attrs(cube))
    result.decide(group.label, cube.attrs["overscan"])


def _master(group: FrameGroup, path: Path, overwrite: bool, sub: Callable[[float, str], None] | None,
            result: CalibrationResult | _TaskLog, integration: dict[str, Any] | None = None,
            overscan: Any = "auto") -> MasterRecord:
    if path.exists() and not overwrite:
        record = _existing_master(path, group)  # the plan checked it is up to date
    else:
        cube = open_frames(group.paths, aliases=group.aliases, overscan=overscan)
        # Lazy: write_master computes it band by band into the final arrays (computing the dataset
        # first would hold every band and then their concatenation, twice the master and its maps).
        ds = build_master(cube, group.frame_type, progress=sub, **(integration or {}))
        _record_overscan(ds, cube, group, result)
        write_master(ds, path, overwrite=overwrite)
        result.written.append(str(path))
        record = MasterRecord(group.frame_type, str(path), group.label, ds.attrs["n_frames"],
                              ds.attrs["rejection"], ds.attrs["rejection_reason"])
        result.decide(group.label, f"{ds.attrs['rejection']} ({ds.attrs['rejection_reason']})")
    result.masters.append(record)
    return record


@dataclass
class FlatCalibration:
    """Flats calibrated by their dark flats (else the bias), lazily, ready to integrate.

    Attributes
    ----------
    group : FrameGroup
        The flats.
    cube : xarray.DataArray
        The calibrated ``(frame, y, x)`` cube (flats without a master left out, or the raw cube
        when no flat has one and ``strict=False``).
    masters : list of str
        The masters subtracted.
    index : list of int
        For each frame of ``cube``, which of ``masters`` (-1: none).
    decisions, warnings : list of str
        What was chosen and what is wrong, in words.
    """

    group: FrameGroup
    cube: Any
    masters: list[str] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def level_removed(self, frame: int = 0) -> float:
        """The median level subtracted from frame ``frame`` of ``cube`` (ADU; 0 when nothing was)."""
        i = self.index[frame] if self.index else -1
        if i < 0:
            return 0.0
        return float(np.median(fits.getdata(self.masters[i])))


def calibrate_flats(group: FrameGroup, library: MasterLibrary | str | os.PathLike, *, strict: bool = True,
                    temperature_tolerance: float = 1.0, night: FrameCatalog | None = None,
                    saved: dict[str, Any] | None = None, overscan: Any = "auto") -> FlatCalibration:
    """Each flat minus its master dark flat (else the master bias), lazily.

    Parameters
    ----------
    group : FrameGroup
        A flat set from :func:`~astrocal_widgets.scan`.
    library : MasterLibrary or path-like
        Where the master dark flats and bias are (a folder is indexed on the fly).
    strict : bool, default True
        A flat without a dark flat or bias is an error; with ``strict=False`` such flats are left out
        (or, when no flat has one, all are kept uncalibrated) with a warning.
    temperature_tolerance : float, default 1.0
        °C between flats and dark flats.
    night : FrameCatalog, optional
        The night the flats belong to. When given, a dark-flat set of the night that matches the
        flats must have its master in ``library`` (see
        :func:`~astrocal_widgets.calibrate.prerequisites.flat_prerequisites`): the bias stands in
        only where the night has no matching dark flats, and that is warned.
    saved : dict, optional
        With ``night``: set label -> path of masters saved under other names than ``master_<set>.fits``.
    overscan : {'auto', 'off'}, Overscan or mapping, default 'auto'
        Overscan subtraction and trim of the flats as they are read (as :func:`calibrate_session`).

    Returns
    -------
    FlatCalibration

    Raises
    ------
    MissingMasterError
        With ``night``, when a matching dark flat (or bias) of the night has no saved master yet; with
        ``strict=True``, naming a flat that no master dark flat and no master bias of ``library`` matches.
    """
    lib = library if isinstance(library, MasterLibrary) else MasterLibrary(library)
    cube = open_frames(group.paths, aliases=group.aliases, overscan=overscan)
    out = FlatCalibration(group, cube)
    if night is not None:
        needs = flat_prerequisites(group, night, lib.folder, temperature_tolerance=temperature_tolerance,
                                   saved=saved)
        if needs.blocked:
            raise MissingMasterError([m.role for m in needs.missing], group.label, needs.reason)
        out.warnings += needs.warnings
    masters: list[np.ndarray] = []
    index = []
    roles: dict[str, str] = {}  # master path -> what it is, for the decisions
    refusals: list[str] = []  # why the dark flats and bias there are were not used, naming both values
    for _, row in group.table.iterrows():
        row = calibrated_row(row, overscan, group.aliases)  # matched to masters by its trimmed size
        choice = find_master(row, lib, role="darkflat", temperature_tolerance=temperature_tolerance)
        role = "dark flat"
        if not choice:
            refusals += [r for _, reasons in choice.refused for r in reasons]
            choice = find_master(row, lib, role="bias", temperature_tolerance=math.inf)
            role = "bias: no matching dark flat"
        if not choice:
            refusals += [r for _, reasons in choice.refused for r in reasons]
            index.append(-1)
            continue
        roles[choice.path] = role
        if choice.path not in out.masters:
            out.masters.append(choice.path)
            masters.append(_read_master(choice.path))
        index.append(out.masters.index(choice.path))
    if all(i == -1 for i in index):
        text = (f"{group.label}: no dark flats and no bias match these flats, e.g. {group.paths[0]}: their "
                "pedestal would stay in the master flat and leave a residual in every light; take dark flats "
                "at the flats' exposure (or bias frames)")
        if refusals:
            text += " — refused: " + "; ".join(dict.fromkeys(refusals))
        if strict:
            raise MissingMasterError(("darkflat", "bias"), group.label,
                                     text.removeprefix(f"{group.label}: ")
                                     + " (or calibrate with strict=False to integrate them uncalibrated)")
        out.warnings.append(text + ": integrated uncalibrated")
        out.index = index
        return out
    if any(i == -1 for i in index):
        missing = [p for p, i in zip(group.paths, index) if i == -1]
        text = (f"{group.label}: no dark flat or bias for {len(missing)} of the {len(index)} flats, "
                f"e.g. {missing[0]} ({group.table['exposure'].iloc[index.index(-1)]:g} s); take dark flats "
                "at their exposure")
        if strict:
            raise MissingMasterError(("darkflat", "bias"), group.label,
                                     text.removeprefix(f"{group.label}: ") + " (or calibrate with strict=False to "
                                                                              "leave them out)")
        out.warnings.append(text + ": left out of the master flat")
        keep = [k for k, i in enumerate(index) if i != -1]
        cube = cube.isel(frame=keep)
        index = [index[k] for k in keep]
    out.cube = subtract_masters(cube, masters, index)
    out.index = index
    for m, name in enumerate(out.masters):  # no header needed: does each master's level fit its flats?
        k = index.index(m)
        rows = sample_rows(*masters[m].shape)  # one band of the flat is read, not the whole frame
        problem = master_level_problem(out.cube[k, rows].values, frame=Path(str(out.cube["path"].values[k])).name,
                                       master=Path(name).name, master_level=float(np.nanmedian(masters[m][rows])))
        if problem:
            out.warnings.append(f"{group.label}: {problem}")
    for name in out.masters:
        out.decisions.append(f"{group.label}: flats calibrated with {Path(name).name} ({roles[name]})")
    return out


def _master_flat(group: FrameGroup, path: Path, lib: MasterLibrary, overwrite: bool,
                 sub: Callable[[float, str], None] | None, result: CalibrationResult | _TaskLog,
                 temperature_tolerance: float, strict: bool, integration: dict[str, Any] | None = None,
                 overscan: Any = "auto") -> MasterRecord:
    flats = calibrate_flats(group, lib, strict=strict, temperature_tolerance=temperature_tolerance,
                            overscan=overscan)
    names = flats.masters
    result.warnings += flats.warnings
    _record_decisions(result, group.label, flats.decisions)
    if path.exists() and not overwrite:
        why = master_mismatch(path, [str(p) for p in flats.cube["path"].values], names,
                              settings=dict(integration or {}) or None)  # "auto" accepts any rejection
        if why:
            raise StaleOutputError([f"{path}: {why}"])
        record = _existing_master(path, group)
        record.calibrated_with = names
        result.masters.append(record)
        return record
    ds = build_master(flats.cube, "flat", progress=sub, **(integration or {}))  # computed by write_master
    _record_overscan(ds, flats.cube, group, result)
    ds.attrs["calibrated_with_paths"] = list(names)  # written as CALMASn/CALSHAn
    write_master(ds, path, overwrite=overwrite)
    result.written.append(str(path))
    record = MasterRecord("flat", str(path), group.label, ds.attrs["n_frames"], ds.attrs["rejection"],
                          ds.attrs["rejection_reason"], calibrated_with=names)
    result.decide(group.label, f"{ds.attrs['rejection']} ({ds.attrs['rejection_reason']}), "
                               "multiplicative normalisation, equalize_fluxes for rejection")
    result.masters.append(record)
    return record


def _choose(row, lib: MasterLibrary, role: str, *, strict: bool, temperature_tolerance: float,
            allow_dark_scaling: bool, warnings_out: list[str], external: MasterLibrary | None = None):
    """The master for one role of one light, enforcing the rules (strict) or warning (lenient).

    Tonight's masters first; for bias and darks, other nights' (``external``) only when none of
    tonight's fit. A missing or incompatible bias is never fatal (matched darks hold the pedestal).
    """
    choice = find_master(row, lib, role=role, temperature_tolerance=temperature_tolerance,
                         allow_dark_scaling=allow_dark_scaling)
    if not choice and external is not None and len(external) and role in ("bias", "dark"):
        other = find_master(row, external, role=role, temperature_tolerance=temperature_tolerance,
                            allow_dark_scaling=allow_dark_scaling)
        if other:
            choice = other
    for w in choice.warnings:
        warnings_out.append(str(w))
    if choice:
        return choice.path, choice.dark_scale, choice.reason
    candidates = [p for p, _ in choice.refused]
    if not candidates:
        return None, None, choice.reason
    if role == "bias":
        warnings_out.append(f"{Path(str(row['path'])).name}: no compatible master bias ({choice.reason})")
        return None, None, choice.reason
    # Something exists but breaks a rule: an error (strict) or the closest soft mismatch with warnings.
    problems_by_path = {p: check_compatibility(row, p, role=role, temperature_tolerance=temperature_tolerance,
                                               allow_dark_scaling=allow_dark_scaling) for p in candidates}
    if strict:
        enforce([m for ms in problems_by_path.values() for m in ms if m.severity == "error"], strict=True)
    soft_rules = _SOFT_RULES if allow_dark_scaling else _SOFT_RULES - {"exposure", "dark_scaling"}
    soft = {p: ms for p, ms in problems_by_path.items()
            if all(m.rule in soft_rules for m in ms if m.severity == "error")}
    if not soft:
        warnings_out.append(f"{Path(str(row['path'])).name}: no usable {role} master: {choice.reason}")
        return None, None, choice.reason
    best = min(soft, key=lambda p: sum(1 for m in soft[p] if m.severity == "error"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enforce(soft[best], strict=False)
    warnings_out += [str(c.message) for c in caught]
    scale = None
    if role == "dark":
        t_l, t_d = float(row["exposure"]), float(read_field(read_header(best), "exposure"))
        scale = 1.0 if exposures_match(t_l, t_d) else t_l / t_d
    return best, scale, f"{Path(best).name}: used despite {len(soft[best])} problem(s) (strict=False)"


@dataclass
class CalibratedLight:
    """One light calibrated in memory (not yet written): the data, its header and what was used.

    Attributes
    ----------
    source : str
        The raw light.
    data : numpy.ndarray
        ``(L - B - k (D - B)) / (F / <F>) + pedestal``, defects corrected (float32).
    header : astropy.io.fits.Header
        The light's header with CALSTAT, BIASFILE, DARKFILE, FLATFILE, DARKSCAL, DARKMETH, PEDESTAL,
        NDEFECTS and a HISTORY line.
    bias, dark, flat : str or None
        The masters used.
    dark_scale : float
        ``k``.
    dark_scale_method : str
        How ``k`` was chosen.
    defects_corrected : int
        Hot and cold pixels corrected.
    defect_map : DefectMap or None
        The map used (shared by lights calibrated with the same masters).
    decisions, warnings : list of str
    raw : numpy.ndarray
        The light before calibration (float32), for before/after views.
    """

    source: str
    data: np.ndarray
    header: fits.Header
    bias: str | None
    dark: str | None
    flat: str | None
    dark_scale: float
    dark_scale_method: str
    defects_corrected: int = 0
    defect_map: Any = None
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    raw: np.ndarray | None = field(default=None, repr=False)


def _choose_masters(row, lib: MasterLibrary, external: MasterLibrary | None, label: str, decisions: list[str],
                    notes: list[str], **rules: Any) -> tuple[tuple[str | None, str | None, str | None], float | None]:
    """Bias, dark and flat for one light (paths or None) and the dark scale; reasons go to the lists."""
    source = Path(row["path"])
    allow = rules.pop("allow_dark_scaling")
    bias_path, _, bias_reason = _choose(row, lib, "bias", allow_dark_scaling=allow, external=external,
                                        warnings_out=notes, **rules)
    dark_path, scale, dark_reason = _choose(row, lib, "dark", allow_dark_scaling=allow and bias_path is not None,
                                            external=external, warnings_out=notes, **rules)
    flat_path, _, flat_reason = _choose(row, lib, "flat", allow_dark_scaling=allow, warnings_out=notes, **rules)
    for role, path, reason in (("bias", bias_path, bias_reason), ("dark", dark_path, dark_reason),
                               ("flat", flat_path, flat_reason)):
        if path is None:
            notes.append(f"{source.name}: no {role}: {reason}")
        else:
            decisions.append(f"{label}: {role} {reason}")
    return (bias_path, dark_path, flat_path), scale


def _light_masters(row, lib: MasterLibrary, external: MasterLibrary | None, label: str, decisions: list[str],
                   notes: list[str], **rules: Any) -> tuple[str | None, str | None, str | None, float, str]:
    """The masters a light is calibrated with: bias, dark, flat (paths or None), the dark scale and its method."""
    source = Path(row["path"])
    (bias_path, dark_path, flat_path), scale = _choose_masters(row, lib, external, label, decisions, notes, **rules)
    k = 1.0 if scale is None else float(scale)
    method = ("none (no matching dark)" if dark_path is None else "matching exposure" if scale in (None, 1.0)
              else "exposure ratio")
    if dark_path is not None and bias_path is None and not math.isclose(k, 1.0):
        # A dark of another exposure holds the pedestal: without a master bias it can be neither
        # scaled nor subtracted as it is. Better no dark than a wrong one.
        notes.append(f"{source.name}: the only usable dark ({Path(dark_path).name}) needs scaling "
                     f"x{k:.3f}, which needs a master bias: no dark subtracted; take darks at "
                     f"{row['exposure']:g} s or bias frames")
        decisions.append(f"{label}: dark {Path(dark_path).name} not used (needs scaling without a master bias)")
        dark_path, k, method = None, 1.0, "none (no matching dark)"
    return bias_path, dark_path, flat_path, k, method


def calibrate_light(
    light: Any,
    library: MasterLibrary | str | os.PathLike,
    *,
    external: MasterLibrary | None = None,
    strict: bool = True,
    temperature_tolerance: float = 1.0,
    allow_dark_scaling: bool = True,
    dark_optimization: bool = False,
    cosmetic: bool = True,
    k_hot: float = 5.0,
    k_cold: float = 5.0,
    pedestal: float = 0.0,
    label: str = "",
    masters_cache: dict[str, np.ndarray] | None = None,
    defects: dict[tuple, Any] | None = None,
    keep_raw: bool = True,
    overscan: Any = "auto",
    dark_parts: dict[tuple, Any] | None = None,
) -> CalibratedLight:
    """Calibrate one light with the matching masters of a library, in memory (nothing is written).

    What :func:`calibrate_session` does for each light, and what a dashboard shows as before/after.

    Parameters
    ----------
    light : catalogue row or path
        A row of :attr:`FrameCatalog.table` (or a light's path, scanned on the fly).
    library : MasterLibrary or path-like
        Tonight's masters (a folder is indexed on the fly).
    external : MasterLibrary, optional
        Other nights' masters, used for bias and darks when none of ``library`` fits.
    strict, temperature_tolerance, allow_dark_scaling, dark_optimization, cosmetic, k_hot, k_cold, pedestal, overscan
        As :func:`calibrate_session`.
    label : str, optional
        The light set's label, used in the decisions.
    masters_cache, defects : dict, optional
        Caches shared between lights (loaded masters and their prepared terms; defect maps by masters
        used). Safe to share between threads.
    keep_raw : bool, default True
        Keep a copy of the light before calibration in ``raw`` (for before/after views); without it
        one full-size frame is all the light costs.
    dark_parts : dict, optional
        Futures of the darks' share of the defect maps (:func:`~astrocal_widgets.calibrate.dark_defect_maps`),
        started by :func:`calibrate_session` while the flats integrate; a missing or failed one is
        made here instead.

    Returns
    -------
    CalibratedLight

    Raises
    ------
    CalibrationMismatchError
        With ``strict=True``, when the library has masters of a kind but none compatible.
    """
    if isinstance(light, (str, os.PathLike)):
        path = Path(light)
        table = scan(path.parent, recursive=False).table
        rows = table[table["path"].map(lambda q: Path(q).resolve() == path.resolve())]
        if rows.empty:
            raise AstrocalError(f"{path}: not a readable frame")
        row = rows.iloc[0]
    else:
        row = light
    row = calibrated_row(row, overscan)  # matched to the (trimmed) masters by its trimmed size
    lib = library if isinstance(library, MasterLibrary) else MasterLibrary(library)
    cache = {} if masters_cache is None else masters_cache
    defects = {} if defects is None else defects
    decisions: list[str] = []
    notes: list[str] = []
    source = Path(row["path"])
    label = label or source.name
    pattern = row["bayer_pattern"] or ""

    def load(path: str | None) -> np.ndarray | None:
        if path is None:
            return None
        with _CACHE_LOCK:  # lights calibrated in threads share the masters, loaded once
            if path not in cache:
                cache[path] = _read_master(path)
            return cache[path]

    bias_path, dark_path, flat_path, k, method = _light_masters(
        row, lib, external, label, decisions, notes, strict=strict, temperature_tolerance=temperature_tolerance,
        allow_dark_scaling=allow_dark_scaling)
    terms_key = ("terms", bias_path, dark_path, flat_path, k, pattern)
    defects_key = (dark_path, flat_path, bias_path)
    wants_defects = cosmetic and (dark_path is not None or flat_path is not None)
    optimise = dark_optimization and dark_path is not None and bias_path is not None
    # Masters first, the light after: the defect map (the largest working set) and the prepared terms
    # are made while no light is held. Without dark optimisation each is made from masters read for
    # it alone (reading one is quick), so no raw master outlives its use: the defect map holds only
    # the flat, and the terms are made in the masters' own arrays.
    own = None if optimise else _read_master
    with _CACHE_LOCK:
        if wants_defects and defects_key not in defects:
            dark_maps = None
            part = (dark_parts or {}).get(_dark_part_key(dark_path, bias_path, k_hot, k_cold, pattern)) \
                if dark_path is not None else None
            if part is not None:
                try:
                    dark_maps = part.result()
                except Exception:  # noqa: BLE001 - made again below, where its error is the user's to see
                    dark_maps = None
            fetch = own or load
            dark = fetch(dark_path) if dark_maps is None else None
            defects[defects_key] = defect_map(dark, fetch(flat_path), bias=None if dark is None else fetch(bias_path),
                                              k_hot=k_hot, k_cold=k_cold, bayer_pattern=pattern, dark_maps=dark_maps)
            del dark
        terms = None  # an optimised k is this light's own: its terms are made below, not kept
        if not optimise:
            terms = cache.get(terms_key)
            if terms is None:
                terms = cache[terms_key] = prepare_masters(bias=own(bias_path), dark=own(dark_path),
                                                           flat=own(flat_path), dark_scale=k, bayer_pattern=pattern,
                                                           consume=True)
    light_cube = open_frames([source], overscan=overscan)  # overscan subtracted and trimmed as it is read
    calibrated = compute_into_arrays([light_cube.data[0]], [np.float32])[0]  # calibrated in place below
    raw = calibrated.copy() if keep_raw else None
    if optimise:
        bias, dark = load(bias_path), load(dark_path)
        # Search around the exposure ratio: a 60 s dark for a 300 s light needs k near 5.
        opt = optimize_dark_scale(calibrated, bias, dark, bayer_pattern=pattern, bounds=(0.0, 2.0 * max(1.0, k)))
        decisions.append(f"{source.name}: dark optimisation k = {opt.k:.4f} (exposure ratio "
                         f"{k:.4f}, {opt.n_pixels} thermal pixels)")
        k, method = opt.k, "optimised"
        terms = prepare_masters(bias=bias, dark=dark, flat=load(flat_path), dark_scale=k, bayer_pattern=pattern)
    terms.apply(calibrated, pedestal=pedestal)
    n_defects, dm = 0, None
    if wants_defects:
        dm = defects[defects_key]
        correct_defects(calibrated, dm.mask, bayer_pattern=pattern, inplace=True)
        n_defects = int(dm.counts["total"])
    if bias_path or dark_path:  # no header needed: does the bias/dark level fit this light?
        used = " and ".join(Path(p).name for p in (bias_path, dark_path) if p)
        problem = master_level_problem(calibrated, frame=source.name, master=used, offset=pedestal)
        if problem:
            notes.append(problem)
    source_header = read_header(source)
    if isinstance(source_header, fits.Header):
        header = fits.Header(source_header, copy=True)
    else:  # XISF keywords or raw EXIF mapped to FITS names
        header = fits.Header([(k_, v) for k_, v in source_header.items()
                              if len(k_) <= 8 and isinstance(v, (int, float, str, bool))])
    for key in ("BZERO", "BSCALE", "BLANK", "BITPIX"):
        header.remove(key, ignore_missing=True)
    record_in_header(header, light_cube.attrs.get("overscan_plan"))
    if "overscan" in light_cube.attrs:
        decisions.append(f"{label}: {light_cube.attrs['overscan']}")
    write_provenance(header, calibration_record({"bias": bias_path, "dark": dark_path, "flat": flat_path}, k, method,
                                                pedestal, n_defects))
    return CalibratedLight(str(source), calibrated, header, bias_path, dark_path, flat_path, k,
                           method, n_defects, dm, decisions, notes, raw)


#: Lights calibrated at once: reading, the float32 arithmetic and writing release the GIL.
LIGHT_THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _light_task(row, lib: MasterLibrary, external: MasterLibrary | None, label: str, options: dict[str, Any],
                rules: dict[str, Any], root: Path, target: Path, overwrite: bool, masters_cache: dict | None = None,
                defects: dict | None = None, dark_parts: dict | None = None) -> tuple[LightRecord, list[str], list[str]]:
    """Calibrate one light and write it with its provenance; only metadata comes back.

    One task: run in a thread (sharing the caches) or on a cluster's worker (its own caches, the
    defect map handed in), with the same arithmetic, so the files are the same bytes.
    """
    light = calibrate_light(row, lib, external=external, dark_optimization=options["dark_optimization"],
                            cosmetic=options["cosmetic"], k_hot=options["k_hot"], k_cold=options["k_cold"],
                            pedestal=options["pedestal"], label=label, masters_cache=masters_cache,
                            defects=defects, keep_raw=False, overscan=options["overscan"], dark_parts=dark_parts,
                            **rules)
    provenance = LightProvenance.of(str(row["path"]), root, options,
                                    {"bias": light.bias, "dark": light.dark, "flat": light.flat})
    write_provenance(light.header, provenance.record())
    write_fits_atomic(target, fits.PrimaryHDU(light.data, header=light.header), overwrite=overwrite)
    return (LightRecord(str(row["path"]), str(target), light.bias, light.dark, light.flat, light.dark_scale,
                        light.dark_scale_method, light.defects_corrected, cosmetic=options["cosmetic"]),
            light.decisions, light.warnings)


def _defect_map_task(dark_path: str | None, flat_path: str | None, bias_path: str | None, k_hot: float,
                     k_cold: float, bayer_pattern: str):
    """The defect map of a pair of masters, from their files (a cluster task)."""
    return defect_map(_read_master(dark_path), _read_master(flat_path), bias=_read_master(bias_path), k_hot=k_hot,
                      k_cold=k_cold, bayer_pattern=bayer_pattern)


def _dark_part_key(dark_path: str, bias_path: str | None, k_hot: float, k_cold: float, pattern: str) -> tuple:
    return ("dark part", dark_path, bias_path, float(k_hot), float(k_cold), pattern)


def _dark_parts_ahead(pool: ThreadPoolExecutor, lights: list[FrameGroup], lib: MasterLibrary,
                      external: MasterLibrary, plan: _Plan, *, strict: bool, temperature_tolerance: float,
                      overwrite: bool) -> dict[tuple, Any]:
    """Start the darks' share of the lights' defect maps (:func:`dark_defect_maps`) while the flats integrate.

    Which dark and bias each light set takes is asked of the same matching as the lights', with
    the masters made so far; a set whose choice fails here, or whose lights end up with other
    masters, simply makes its map later. Returns futures by :func:`_dark_part_key`.
    """
    options = plan.options
    if not options["cosmetic"] or not lights:
        return {}
    parts: dict[tuple, Any] = {}
    rules = dict(strict=strict, temperature_tolerance=temperature_tolerance,
                 allow_dark_scaling=options["allow_dark_scaling"])
    for group in lights:
        if not overwrite and all(plan.lights[str(p)].exists() for p in group.paths):
            continue  # nothing to calibrate in this set (its outputs are reused)
        row = calibrated_row(group.table.iloc[0], options["overscan"], group.aliases)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bias_path, dark_path, _, _, _ = _light_masters(row, lib, external, group.label, [], [], **rules)
        except (AstrocalError, ValueError):
            continue
        if dark_path is None:
            continue
        pattern = row["bayer_pattern"] or ""
        key = _dark_part_key(dark_path, bias_path, options["k_hot"], options["k_cold"], pattern)
        if key not in parts:
            parts[key] = pool.submit(_dark_part_task, dark_path, bias_path, options["k_hot"], options["k_cold"],
                                     pattern)
    return parts


def _dark_part_task(dark_path: str, bias_path: str | None, k_hot: float, k_cold: float, pattern: str):
    """:func:`dark_defect_maps` of two master files, holding one full-size frame at a time: the bias is
    subtracted in place and let go, and the difference becomes the residual."""
    d = _read_master(dark_path)
    if bias_path is not None:
        d -= _read_master(bias_path)
    return _dark_maps_of(d, pattern, k_hot=k_hot, k_cold=k_cold)


def _calibrate_lights(group: FrameGroup, lib: MasterLibrary, external: MasterLibrary, plan: _Plan,
                      result: CalibrationResult, report: _Progress, *, strict: bool, temperature_tolerance: float,
                      overwrite: bool, defects: dict[tuple, Any], client: Any = None,
                      dark_parts: dict[tuple, Any] | None = None) -> None:
    cache: dict[Any, Any] = {}
    rules = dict(strict=strict, temperature_tolerance=temperature_tolerance,
                 allow_dark_scaling=plan.options["allow_dark_scaling"])
    saved_maps: set[tuple] = set(defects)  # maps of earlier light sets are saved already

    def reused(row, target: Path) -> tuple[LightRecord, list[str], list[str]]:
        """An existing output: up to date (reused) or stale (an error)."""
        decisions: list[str] = []
        notes: list[str] = []
        bias, dark, flat, _, _ = _light_masters(row, lib, external, group.label, decisions, notes, **rules)
        why = plan.provenance(str(row["path"]), {"bias": bias, "dark": dark, "flat": flat}).mismatch(target)
        if why:
            raise StaleOutputError([f"{target}: {why}"])
        header = read_header(target)
        return (LightRecord(str(row["path"]), str(target), bias, dark, flat, float(header.get("DARKSCAL", 1.0)),
                            str(header.get("DARKMETH", "")), int(header.get("NDEFECTS", 0)), reused=True,
                            cosmetic=plan.options["cosmetic"]),
                decisions, notes)

    def one(row) -> tuple[LightRecord, list[str], list[str]]:
        target = plan.lights[str(row["path"])]
        if target.exists() and not overwrite:
            return reused(row, target)
        return _light_task(row, lib, external, group.label, plan.options, rules, plan.root, target, overwrite,
                           cache, defects, dark_parts)

    if plan.options["cosmetic"] and client is None and cosmetic_kernels_need_compiling():
        report(report.done / report.total, f"lights: {COSMETIC_COMPILING_MESSAGE}")
    # Matched to the masters by the size they have once trimmed.
    rows = [calibrated_row(row, plan.options["overscan"], group.aliases) for _, row in group.table.iterrows()]
    # Locally, peak memory is the masters and their prepared terms plus one frame per thread (written by
    # the thread itself, so finished lights hold nothing), whatever the number of lights.
    pool = ThreadPoolExecutor(max_workers=LIGHT_THREADS) if client is None else None
    outcomes = (pool.map(one, rows) if pool is not None
                else _lights_on_cluster(client, rows, group, lib, external, plan, rules, overwrite, defects, reused))
    try:
        for row, (record, decisions, notes) in zip(rows, outcomes):
            report.step(f"light {Path(row['path']).name}")
            _record_decisions(result, group.label, decisions)
            result.warnings += notes
            if not record.reused:
                result.written.append(record.output)
            result.lights.append(record)
            for key in [k for k in defects if k not in saved_maps]:
                saved_maps.add(key)
                dm = defects[key]
                dark_path, flat_path, _ = key
                map_path = _save_defect_map(dm, plan.masters_dir, dark_path, flat_path, overwrite, result)
                result.decide(group.label, f"defect map from {Path(dark_path).name if dark_path else '-'} and "
                                           f"{Path(flat_path).name if flat_path else '-'}: {dm.counts['hot']} hot, "
                                           f"{dm.counts['cold']} cold pixels, saved as {map_path.name}")
                if str(map_path) not in result.defect_maps:
                    result.defect_maps.append(str(map_path))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _lights_on_cluster(client, rows, group, lib, external, plan, rules, overwrite, defects, reused):
    """Each light a task on the cluster's workers; the defect maps first, one task per pair of masters."""
    options = plan.options
    submitted = []
    maps: dict[tuple, Any] = {}
    for row in rows:
        target = plan.lights[str(row["path"])]
        if target.exists() and not overwrite:
            submitted.append(reused(row, target))
            continue
        bias, dark, flat, _, _ = _light_masters(row, lib, external, group.label, [], [], **rules)
        key = (dark, flat, bias)
        light_defects = {}
        if options["cosmetic"] and (dark is not None or flat is not None):
            if key not in defects and key not in maps:
                maps[key] = client.submit(_defect_map_task, dark, flat, bias, options["k_hot"], options["k_cold"],
                                          row["bayer_pattern"] or "", pure=False)
            light_defects = {key: defects[key] if key in defects else maps[key]}
        submitted.append(client.submit(_light_task, row, lib, external, group.label, options, rules, plan.root,
                                       target, overwrite, None, light_defects, pure=False))
    for key, future in maps.items():
        defects[key] = future.result()  # saved beside the masters by this process, as in a local run
    return (item if isinstance(item, tuple) else item.result() for item in submitted)


def _record_decisions(result: CalibrationResult | _TaskLog, label: str, lines: list[str]) -> None:
    """Decisions of a set, as calibrate_flats and calibrate_light word them (``"<set>: ..."``), by set."""
    for line in lines:
        result.decide(label, line[len(label) + 2:] if line.startswith(label + ": ") else line)


def _save_defect_map(dm, folder: Path, dark_path: str | None, flat_path: str | None, overwrite: bool,
                     result: CalibrationResult) -> Path:
    """Write the defect map (1 = hot, 2 = cold, 3 = both) beside the masters, once; reuse it after."""
    name = "_".join(Path(p).stem.replace("master_", "") for p in (dark_path, flat_path) if p)
    path = folder / f"defects_{name}.fits"
    record = defect_map_record(dm.counts, dm.thresholds, dark_path, flat_path)
    if path.exists() and not overwrite:
        why = defect_map_mismatch(path, record)
        if why is None:
            return path
        raise StaleOutputError([f"{path}: {why}"])
    header = fits.Header()
    write_provenance(header, record)
    data = dm.hot.astype(np.uint8) + 2 * dm.cold.astype(np.uint8)
    write_fits_atomic(path, fits.PrimaryHDU(data, header=header), overwrite=overwrite)
    result.written.append(str(path))
    return path
