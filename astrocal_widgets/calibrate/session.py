"""``calibrate_session``: a night from raw frames to calibrated lights, the way careful people do it.

The orchestrator. Scan, group, plan every output and refuse stale ones; build (or reuse) master
bias, darks and dark flats; calibrate each flat by its dark flat (else the bias, :mod:`.flats`) and
integrate one master flat per filter; calibrate every light with the matching masters
(:mod:`.lights`); write everything atomically, overwrite nothing unless asked, and report every
decision. How is one :class:`~astrocal_widgets.calibrate.options.CalibrationOptions`.
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import dask
import numpy as np
from astropy.io import fits

from ..cancel import CancelToken, raise_if_cancelled
from ..errors import AstrocalError, StaleOutputError
from ..frames import ExcludedFrame, FrameCatalog, FrameGroup, exclusion_list_path, read_exclusions, scan, split_excluded
from ..heap import trim_heap
from ..integrate import write_master
from ..integrate.master_file import master_mismatch
from ..io.cube import open_frames
from ..io.frame_types import CALIBRATION_TYPES
from ..io.provenance import write_provenance
from ..io.sources import read_header
from ..io.write import write_fits_atomic
from .build_masters import build_master
from .cosmetic import COMPILING_MESSAGE as COSMETIC_COMPILING_MESSAGE
from .cosmetic import kernels_need_compiling as cosmetic_kernels_need_compiling
from .flats import calibrate_flats
from .library import MasterLibrary
from .lights import (LIGHT_THREADS, LightRecord, _dark_part_key, _dark_part_task, _defect_map_task, _light_masters,
                     _light_task)
from .options import CalibrationOptions, calibration_options, save_options
from .outputs import (CALIBRATED_FOLDER, MASTERS_FOLDER, LightProvenance, calibrated_light_path, check_one_to_one,
                      defect_map_mismatch, defect_map_record)
from .overscan import calibrated_row, frame_plan, overscan_attrs, overscan_mismatch
from .prerequisites import master_file

__all__ = ["calibrate_session", "CalibrationResult", "MasterRecord", "MASTER_THREADS"]


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
    #: Frames left out of their sets by the exclusion list (``output/excluded.txt``): set label -> frames.
    excluded: dict[str, list[ExcludedFrame]] = field(default_factory=dict)

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
        if self.excluded:
            n_excluded = sum(len(frames) for frames in self.excluded.values())
            lines.append(f"excluded ({n_excluded}) by {exclusion_list_path(self.output)}, never moved or deleted:")
            for label, frames in self.excluded.items():
                lines += [f"  {label}: {_shown(f.path, self.directory)}: {f.reason or 'no reason given'}"
                          for f in frames]
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
    options: CalibrationOptions | None = None,
    *,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: Callable[[float, str], None] | None = None,
    client: Any = None,
    cancel: CancelToken | threading.Event | None = None,
    **changes: Any,
) -> CalibrationResult:
    """Calibrate a night: masters, calibrated flats, master flats, calibrated lights.

    Parameters
    ----------
    directory : path-like
        The night's folder (any layout :func:`~astrocal_widgets.scan` understands).
    options : CalibrationOptions, optional
        How to calibrate: matching rules (``strict``, ``temperature_tolerance``), dark scaling and
        optimisation, cosmetic correction, pedestal, the masters' rejection, overscan, and a library
        of other nights' masters. The defaults when not given.
    output : path-like, optional
        Where to write; by default masters go to ``directory/masters`` and calibrated lights to
        ``directory/calibrated``. With ``output``: ``output/masters`` and ``output/calibrated``.
    overwrite : bool, default False
        Rebuild and replace existing outputs. Without it, existing masters and calibrated lights are
        reused and nothing is replaced.
    progress : callable, optional
        ``progress(fraction, message)``.
    client : distributed.Client, optional
        Run on a dask.distributed cluster: the masters' bands and each light's calibration become
        tasks on its workers (which must see the same files: a shared file system), the defect maps
        one task per pair of masters. The outputs are byte-identical to a local run. Any cluster
        dask supports (LocalCluster, SLURM with dask-jobqueue, Kubernetes with dask-kubernetes).
    cancel : CancelToken or threading.Event, optional
        Stop the run: it is looked at between masters, before each band of a master, and before each
        light and within it (once read, before its cosmetic correction, before its write), and the
        run raises :class:`~astrocal_widgets.errors.CancelledError`. Files are written whole or not at
        all, so what was written stays valid and a rerun reuses it. (On a cluster, tasks already handed
        to the workers finish; nothing more is started.)
    **changes
        Any field of :class:`CalibrationOptions` (``strict=False``, ``dark_optimization=True``,
        ``library="~/darks"``, ...), replacing the one of ``options``.

    Returns
    -------
    CalibrationResult

    Notes
    -----
    Frames named in the output folder's exclusion list (``excluded.txt``, see
    :mod:`astrocal_widgets.frames.exclusions`) are left out of their sets before anything is built:
    the result's :attr:`~CalibrationResult.excluded` and its summary list each one and why, and each
    master's provenance names those of its set (``EXCLn``/``EXCRn``). A master saved before a frame was
    excluded no longer matches its set: it is reported as stale (:class:`StaleOutputError`, naming the
    excluded frames) and rebuilt only with ``overwrite=True``.

    Raises
    ------
    StaleOutputError
        Outputs made from other inputs or options, among them masters made before an exclusion.
    CalibrationMismatchError
        With ``strict=True``, when a light has no compatible master of a kind the session provides.
    CancelledError
        When ``cancel`` was set before the run finished.
    """
    opts = calibration_options(options, changes)
    token = CancelToken.of(cancel)
    raise_if_cancelled(token, "calibrate_session")
    # One absolute spelling of the folder: relative, absolute and symlinked paths give the same outputs.
    root = Path(os.path.abspath(directory))
    out_root = Path(os.path.abspath(output)) if output is not None else root
    report = _Progress(progress)
    catalog = scan(root)
    result = CalibrationResult(Path(directory), out_root, catalog)
    masters_dir, lights_dir = result.masters_dir, result.lights_dir
    # Skipped, unclassified, duplicate and stray files (left out of every set), and sets of one frame.
    result.warnings += catalog.warnings

    groups = _without_excluded(catalog.groups(), read_exclusions(out_root), root, result)
    lights = [g for g in groups if g.frame_type == "light"]
    steps = [g for g in groups if g.frame_type in CALIBRATION_TYPES]
    plan = _Plan(root, masters_dir, lights_dir, steps, lights, opts, result.excluded)
    plan.check(overwrite)  # before anything is written: one output per input, nothing stale

    masters_dir.mkdir(parents=True, exist_ok=True)
    lib = MasterLibrary(masters_dir)
    # Other nights' masters are a fallback for bias and darks only: tonight's masters come first,
    # and flats (dust, rotation) and dark flats are never taken from another night.
    external = MasterLibrary(masters_dir / ".external-none")
    for folder in opts.library:
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
                                                report.step(f"master {group.frame_type}"), log, opts,
                                                result.excluded.get(group.label, []), token))
                for group in steps if group.frame_type in ("bias", "dark", "darkflat")]
        for log, job in jobs:
            lib.add(job.result().path)
            log.replay(result)
        trim_heap()  # the masters' freed bands: the flats' full-size arrays would not reuse them

        # 2. Flats: calibrate each by its dark flat (else bias), then integrate.
        jobs = [(log := _TaskLog(), pool.submit(_master_flat, group, plan.masters[group.slug], lib, overwrite,
                                                report.step("master flat"), log, opts,
                                                result.excluded.get(group.label, []), token))
                for group in steps if group.frame_type == "flat"]
        # Meanwhile the darks' share of the lights' defect maps, in the thread the flats leave free.
        dark_parts = _dark_parts_ahead(pool, lights, lib, external, plan, overwrite) if client is None else {}
        for log, job in jobs:
            lib.add(job.result().path)
            log.replay(result)

    # 3. Lights. Defect maps are shared by every light calibrated with the same masters.
    trim_heap()
    defects: dict[tuple, Any] = {}
    for group in lights:
        _calibrate_lights(group, lib, external, plan, result, report, overwrite=overwrite, defects=defects,
                          client=client, dark_parts=dark_parts, cancel=token)
    # Part of the session's provenance: what the next run (or Rebuild stale) starts from.
    save_options(opts, out_root)
    report(1.0, "done")
    return result


class _Plan:
    """Every output of a run, derived from its input before anything is written."""

    def __init__(self, root: Path, masters_dir: Path, lights_dir: Path, steps: list[FrameGroup],
                 lights: list[FrameGroup], options: CalibrationOptions,
                 excluded: dict[str, list[ExcludedFrame]] | None = None):
        self.root, self.masters_dir, self.lights_dir = root, masters_dir, lights_dir
        self.excluded = excluded or {}
        self.options = options
        self.integration = options.integration()  # the masters' integration options beyond the standard ones
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
                                      frame_plan(str(group.paths[0]), self.options.overscan, group.aliases))
                if why:
                    stale.append(f"{target}: {why}{_exclusion_note(self.excluded.get(group.label))}")
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
        return LightProvenance.of(source, self.root, self.options.light_options(), masters)


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


def _without_excluded(groups: list[FrameGroup], exclusions: dict[str, str], root: Path,
                      result: CalibrationResult) -> list[FrameGroup]:
    """The sets without the frames of the exclusion list; what was left out goes into the result.

    A set whose frames are all excluded is dropped (and said so); a listed frame that is in no set
    is a warning (a typing error in the list would otherwise go unnoticed).
    """
    if not exclusions:
        return groups
    kept, matched = [], set()
    for group in groups:
        smaller, left_out = split_excluded(group, exclusions, root)
        if left_out:
            result.excluded[group.label] = left_out
            matched.update(Path(f.path).resolve() for f in left_out)
            for frame in left_out:
                why = frame.reason or "no reason given"
                result.decide(group.label, f"left out {frame.name} (exclusion list: {why})")
        if len(smaller):
            kept.append(smaller)
        else:
            result.decide(group.label, f"every frame is on the exclusion list: no {group.frame_type} master or output")
    listed = exclusion_list_path(result.output)
    for name in exclusions:
        if (root / name).resolve() not in matched:
            result.warnings.append(f"{listed}: {name} is in no set of {root} (not a frame of this night, or "
                                   "misspelt); nothing was left out for it")
    return kept


def _exclusion_note(excluded: list[ExcludedFrame] | None) -> str:
    """Why a master's frame set changed, when the exclusion list is the cause."""
    if not excluded:
        return ""
    names = ", ".join(f.name for f in excluded[:3]) + (", ..." if len(excluded) > 3 else "")
    return f" (the exclusion list leaves out {names}; rebuild the master without them to use it)"


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


def _record_overscan(ds: Any, cube: Any, group: FrameGroup, result: CalibrationResult | _TaskLog) -> None:
    """Name the overscan and trim of a master's frames in its header and in the decisions."""
    if "overscan" not in cube.attrs:
        return
    ds.attrs.update(overscan_attrs(cube))
    result.decide(group.label, cube.attrs["overscan"])


def _master(group: FrameGroup, path: Path, overwrite: bool, sub: Callable[[float, str], None] | None,
            result: CalibrationResult | _TaskLog, options: CalibrationOptions,
            excluded: list[ExcludedFrame] = (), cancel: CancelToken | None = None) -> MasterRecord:
    if path.exists() and not overwrite:
        record = _existing_master(path, group)  # the plan checked it is up to date
    else:
        raise_if_cancelled(cancel, group.label)
        cube = open_frames(group.paths, aliases=group.aliases, overscan=options.overscan)
        # Lazy: write_master computes it band by band into the final arrays (computing the dataset
        # first would hold every band and then their concatenation, twice the master and its maps).
        ds = build_master(cube, group.frame_type, progress=sub, cancel=cancel, **options.integration())
        _record_overscan(ds, cube, group, result)
        ds.attrs["excluded_frames"] = [(f.path, f.reason) for f in excluded]
        write_master(ds, path, overwrite=overwrite, cancel=cancel)
        result.written.append(str(path))
        record = MasterRecord(group.frame_type, str(path), group.label, ds.attrs["n_frames"],
                              ds.attrs["rejection"], ds.attrs["rejection_reason"])
        result.decide(group.label, f"{ds.attrs['rejection']} ({ds.attrs['rejection_reason']})")
    result.masters.append(record)
    return record


def _master_flat(group: FrameGroup, path: Path, lib: MasterLibrary, overwrite: bool,
                 sub: Callable[[float, str], None] | None, result: CalibrationResult | _TaskLog,
                 options: CalibrationOptions, excluded: list[ExcludedFrame] = (),
                 cancel: CancelToken | None = None) -> MasterRecord:
    raise_if_cancelled(cancel, group.label)
    flats = calibrate_flats(group, lib, options)
    integration = options.integration()
    names = flats.masters
    result.warnings += flats.warnings
    _record_decisions(result, group.label, flats.decisions)
    if path.exists() and not overwrite:
        why = master_mismatch(path, [str(p) for p in flats.cube["path"].values], names,
                              settings=integration or None)  # "auto" accepts any rejection
        if why:
            raise StaleOutputError([f"{path}: {why}{_exclusion_note(list(excluded))}"])
        record = _existing_master(path, group)
        record.calibrated_with = names
        result.masters.append(record)
        return record
    ds = build_master(flats.cube, "flat", progress=sub, cancel=cancel, **integration)  # computed by write_master
    _record_overscan(ds, flats.cube, group, result)
    ds.attrs["calibrated_with_paths"] = list(names)  # written as CALMASn/CALSHAn
    ds.attrs["excluded_frames"] = [(f.path, f.reason) for f in excluded]  # written as EXCLn/EXCRn
    write_master(ds, path, overwrite=overwrite, cancel=cancel)
    result.written.append(str(path))
    record = MasterRecord("flat", str(path), group.label, ds.attrs["n_frames"], ds.attrs["rejection"],
                          ds.attrs["rejection_reason"], calibrated_with=names)
    result.decide(group.label, f"{ds.attrs['rejection']} ({ds.attrs['rejection_reason']}), "
                               "multiplicative normalisation, equalize_fluxes for rejection")
    result.masters.append(record)
    return record


def _dark_parts_ahead(pool: ThreadPoolExecutor, lights: list[FrameGroup], lib: MasterLibrary,
                      external: MasterLibrary, plan: _Plan, overwrite: bool) -> dict[tuple, Any]:
    """Start the darks' share of the lights' defect maps (:func:`dark_defect_maps`) while the flats integrate.

    Which dark and bias each light set takes is asked of the same matching as the lights', with
    the masters made so far; a set whose choice fails here, or whose lights end up with other
    masters, simply makes its map later. Returns futures by :func:`_dark_part_key`.
    """
    options = plan.options
    if not options.cosmetic or not lights:
        return {}
    parts: dict[tuple, Any] = {}
    for group in lights:
        if not overwrite and all(plan.lights[str(p)].exists() for p in group.paths):
            continue  # nothing to calibrate in this set (its outputs are reused)
        row = calibrated_row(group.table.iloc[0], options.overscan, group.aliases)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bias_path, dark_path, _, _, _ = _light_masters(row, lib, external, group.label, [], [], options)
        except (AstrocalError, ValueError):
            continue
        if dark_path is None:
            continue
        pattern = row["bayer_pattern"] or ""
        key = _dark_part_key(dark_path, bias_path, options.k_hot, options.k_cold, pattern)
        if key not in parts:
            parts[key] = pool.submit(_dark_part_task, dark_path, bias_path, options.k_hot, options.k_cold, pattern)
    return parts


def _calibrate_lights(group: FrameGroup, lib: MasterLibrary, external: MasterLibrary, plan: _Plan,
                      result: CalibrationResult, report: _Progress, *, overwrite: bool, defects: dict[tuple, Any],
                      client: Any = None,
                      dark_parts: dict[tuple, Any] | None = None, cancel: CancelToken | None = None) -> None:
    cache: dict[Any, Any] = {}
    buffers = threading.local()  # each light thread's array, reused for its next light
    saved_maps: set[tuple] = set(defects)  # maps of earlier light sets are saved already

    def reused(row, target: Path) -> tuple[LightRecord, list[str], list[str]]:
        """An existing output: up to date (reused) or stale (an error)."""
        decisions: list[str] = []
        notes: list[str] = []
        bias, dark, flat, _, _ = _light_masters(row, lib, external, group.label, decisions, notes, plan.options)
        why = plan.provenance(str(row["path"]), {"bias": bias, "dark": dark, "flat": flat}).mismatch(target)
        if why:
            raise StaleOutputError([f"{target}: {why}"])
        header = read_header(target)
        return (LightRecord(str(row["path"]), str(target), reused=True, cosmetic=plan.options.cosmetic, bias=bias,
                            dark=dark, flat=flat, dark_scale=float(header.get("DARKSCAL", 1.0)),
                            dark_scale_method=str(header.get("DARKMETH", "")),
                            defects_corrected=int(header.get("NDEFECTS", 0))),
                decisions, notes)

    def one(row) -> tuple[LightRecord, list[str], list[str]]:
        target = plan.lights[str(row["path"])]
        if target.exists() and not overwrite:
            return reused(row, target)
        raise_if_cancelled(cancel, Path(row["path"]).name)  # before the light, within it, before its write
        return _light_task(row, lib, external, group.label, plan.options, plan.root, target, overwrite,
                           cache, defects, dark_parts, cancel, buffers)

    if plan.options.cosmetic and client is None and cosmetic_kernels_need_compiling():
        report(report.done / report.total, f"lights: {COSMETIC_COMPILING_MESSAGE}")
    # Matched to the masters by the size they have once trimmed.
    rows = [calibrated_row(row, plan.options.overscan, group.aliases) for _, row in group.table.iterrows()]
    # Locally, peak memory is the masters and their prepared terms plus one frame per thread (written by
    # the thread itself, so finished lights hold nothing), whatever the number of lights.
    pool = ThreadPoolExecutor(max_workers=LIGHT_THREADS) if client is None else None
    outcomes = (pool.map(one, rows) if pool is not None
                else _lights_on_cluster(client, rows, group, lib, external, plan, overwrite, defects, reused))
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
            # After the light's defect map is saved: a rerun reuses both. (On a cluster: stop collecting.)
            raise_if_cancelled(cancel, group.label)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _lights_on_cluster(client, rows, group, lib, external, plan, overwrite, defects, reused):
    """Each light a task on the cluster's workers; the defect maps first, one task per pair of masters."""
    options = plan.options
    submitted = []
    maps: dict[tuple, Any] = {}
    for row in rows:
        target = plan.lights[str(row["path"])]
        if target.exists() and not overwrite:
            submitted.append(reused(row, target))
            continue
        bias, dark, flat, _, _ = _light_masters(row, lib, external, group.label, [], [], options)
        key = (dark, flat, bias)
        light_defects = {}
        if options.cosmetic and (dark is not None or flat is not None):
            if key not in defects and key not in maps:
                maps[key] = client.submit(_defect_map_task, dark, flat, bias, options.k_hot, options.k_cold,
                                          row["bayer_pattern"] or "", pure=False)
            light_defects = {key: defects[key] if key in defects else maps[key]}
        submitted.append(client.submit(_light_task, row, lib, external, group.label, options, plan.root,
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
