"""One light calibrated: its masters chosen by the matching rules, its defect map and master terms
made once and shared, ``L' = (L - B - k (D - B)) / (F / <F>) + pedestal``, and its hot and cold pixels
corrected (:func:`calibrate_light`); and the task that writes it with its provenance, run in a thread
or on a cluster's worker.
"""
from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from .._threading import usable_cpus
from ..cancel import CancelToken, raise_if_cancelled
from ..errors import AstrocalError
from ..frames import scan
from ..frames.grouping import exposures_match
from ..io.cube import compute_into_arrays, open_frames
from ..io.headers import read_field
from ..io.provenance import write_provenance
from ..io.sources import read_header
from ..io.write import write_fits_atomic
from .apply import optimize_dark_scale, prepare_masters
from .cosmetic import _dark_maps_of, correct_defects, defect_map
from .levels import master_level_problem
from .library import MasterLibrary, _read_master, find_master
from .matching import check_compatibility, enforce
from .options import CalibrationOptions, calibration_options
from .outputs import LightProvenance, calibration_record
from .overscan import calibrated_row, record_in_header

__all__ = ["calibrate_light", "CalibratedLight", "LightRecord", "MastersUsed", "LIGHT_THREADS"]

# Guards the caches of masters, prepared terms and defect maps shared by lights calibrated in threads.
_CACHE_LOCK = threading.RLock()


# Rules a lenient run (strict=False) may break with a warning; the others make calibration wrong
# whatever the user wants (a 2x2-binned dark on a 1x1 light cannot be subtracted).
_SOFT_RULES = {"temperature", "exposure", "dark_scaling", "instrument", "darkflat_exposure"}


@dataclass(kw_only=True)
class MastersUsed:
    """How a light was calibrated: the masters, the dark scale and the defects corrected.

    The one definition of these fields: a calibrated light in memory (:class:`CalibratedLight`), one
    written (:class:`LightRecord`) and a dashboard's preview
    (:class:`~astrocal_widgets.workflow.LightPreview`) carry them all. Keyword-only, after each
    record's own fields.

    Attributes
    ----------
    bias, dark, flat : str or None
        The masters used.
    dark_scale : float
        ``k``, the factor of the dark's thermal signal.
    dark_scale_method : str
        How ``k`` was chosen.
    defects_corrected : int
        Hot and cold pixels corrected.
    """

    bias: str | None
    dark: str | None
    flat: str | None
    dark_scale: float
    dark_scale_method: str
    defects_corrected: int = 0

    def masters_used(self) -> dict[str, Any]:
        """The fields above, to hand on to another record (``LightRecord(src, out, **light.masters_used())``)."""
        return {f.name: getattr(self, f.name) for f in fields(MastersUsed)}


@dataclass
class LightRecord(MastersUsed):
    """A calibrated light: where from, where to, with what (the fields of :class:`MastersUsed`)."""

    source: str
    output: str
    reused: bool = False
    #: Whether cosmetic correction was asked for (``defects_corrected`` is 0 when it was not).
    cosmetic: bool = True


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
class CalibratedLight(MastersUsed):
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
    bias, dark, flat, dark_scale, dark_scale_method, defects_corrected
        As :class:`MastersUsed`.
    defect_map : DefectMap or None
        The map used (shared by lights calibrated with the same masters).
    decisions, warnings : list of str
    raw : numpy.ndarray
        The light before calibration (float32), for before/after views.
    """

    source: str
    data: np.ndarray
    header: fits.Header
    defect_map: Any = None
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    raw: np.ndarray | None = field(default=None, repr=False)


def _choose_masters(row, lib: MasterLibrary, external: MasterLibrary | None, label: str, decisions: list[str],
                    notes: list[str], options: CalibrationOptions
                    ) -> tuple[tuple[str | None, str | None, str | None], float | None]:
    """Bias, dark and flat for one light (paths or None) and the dark scale; reasons go to the lists."""
    source = Path(row["path"])
    rules = options.matching()
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
                   notes: list[str], options: CalibrationOptions
                   ) -> tuple[str | None, str | None, str | None, float, str]:
    """The masters a light is calibrated with: bias, dark, flat (paths or None), the dark scale and its method."""
    source = Path(row["path"])
    (bias_path, dark_path, flat_path), scale = _choose_masters(row, lib, external, label, decisions, notes, options)
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
    options: CalibrationOptions | None = None,
    *,
    external: MasterLibrary | None = None,
    label: str = "",
    masters_cache: dict[str, np.ndarray] | None = None,
    defects: dict[tuple, Any] | None = None,
    keep_raw: bool = True,
    dark_parts: dict[tuple, Any] | None = None,
    out: np.ndarray | None = None,
    cancel: CancelToken | threading.Event | None = None,
    **changes: Any,
) -> CalibratedLight:
    """Calibrate one light with the matching masters of a library, in memory (nothing is written).

    What :func:`calibrate_session` does for each light, and what a dashboard shows as before/after.

    Parameters
    ----------
    light : catalogue row or path
        A row of :attr:`FrameCatalog.table` (or a light's path, scanned on the fly).
    library : MasterLibrary or path-like
        Tonight's masters (a folder is indexed on the fly).
    options : CalibrationOptions, optional
        How to calibrate (the defaults when not given); ``rejection`` and ``library`` play no part here.
    external : MasterLibrary, optional
        Other nights' masters, used for bias and darks when none of ``library`` fits.
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
    out : numpy.ndarray, optional
        A float32 array of the light's shape to calibrate into (it becomes ``data``), e.g. the
        previous light's once that is written: calibrating many lights then takes no fresh memory
        per light. Another shape or type is ignored.
    cancel : CancelToken or threading.Event, optional
        Stop: looked at before the light is read, once it is read, before its cosmetic correction
        and before its header is made; raises :class:`~astrocal_widgets.errors.CancelledError` and
        returns nothing half-made (the masters' caches keep only whole entries).
    **changes
        Any field of :class:`CalibrationOptions` (``strict=False``, ``cosmetic=False``, ...), replacing
        the one of ``options``.

    Returns
    -------
    CalibratedLight

    Raises
    ------
    CalibrationMismatchError
        With ``strict=True``, when the library has masters of a kind but none compatible.
    CancelledError
        When ``cancel`` was set before the light was calibrated.
    """
    opts = calibration_options(options, changes)
    token = CancelToken.of(cancel)
    if isinstance(light, (str, os.PathLike)):
        path = Path(light)
        table = scan(path.parent, recursive=False).table
        rows = table[table["path"].map(lambda q: Path(q).resolve() == path.resolve())]
        if rows.empty:
            raise AstrocalError(f"{path}: not a readable frame")
        row = rows.iloc[0]
    else:
        row = light
    row = calibrated_row(row, opts.overscan)  # matched to the (trimmed) masters by its trimmed size
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

    bias_path, dark_path, flat_path, k, method = _light_masters(row, lib, external, label, decisions, notes, opts)
    k_hot, k_cold, pedestal = opts.k_hot, opts.k_cold, opts.pedestal
    terms_key = ("terms", bias_path, dark_path, flat_path, k, pattern)
    defects_key = (dark_path, flat_path, bias_path)
    wants_defects = opts.cosmetic and (dark_path is not None or flat_path is not None)
    optimise = opts.dark_optimization and dark_path is not None and bias_path is not None
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
    # The masters' terms and defect map are ready (and cached whole): the light next.
    raise_if_cancelled(token, source.name)
    light_cube = open_frames([source], overscan=opts.overscan)  # overscan subtracted and trimmed as it is read
    calibrated = compute_into_arrays([light_cube.data[0]], [np.float32], out=[out])[0]  # calibrated in place below
    raise_if_cancelled(token, source.name)
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
    raise_if_cancelled(token, source.name)
    if wants_defects:
        dm = defects[defects_key]
        correct_defects(calibrated, dm, bayer_pattern=pattern, inplace=True)
        n_defects = int(dm.counts["total"])
    if bias_path or dark_path:  # no header needed: does the bias/dark level fit this light?
        used = " and ".join(Path(p).name for p in (bias_path, dark_path) if p)
        problem = master_level_problem(calibrated, frame=source.name, master=used, offset=pedestal)
        if problem:
            notes.append(problem)
    raise_if_cancelled(token, source.name)
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
    return CalibratedLight(str(source), calibrated, header, dm, decisions, notes, raw, bias=bias_path, dark=dark_path,
                           flat=flat_path, dark_scale=k, dark_scale_method=method, defects_corrected=n_defects)


#: Lights calibrated at once: reading, the float32 arithmetic and writing release the GIL.
LIGHT_THREADS = min(2, usable_cpus())


def _light_task(row, lib: MasterLibrary, external: MasterLibrary | None, label: str, options: CalibrationOptions,
                root: Path, target: Path, overwrite: bool, masters_cache: dict | None = None,
                defects: dict | None = None, dark_parts: dict | None = None, cancel: CancelToken | None = None,
                buffers: threading.local | None = None) -> tuple[LightRecord, list[str], list[str]]:
    """Calibrate one light and write it with its provenance; only metadata comes back.

    One task: run in a thread (sharing the caches) or on a cluster's worker (its own caches, the
    defect map handed in), with the same arithmetic, so the files are the same bytes. ``cancel`` is
    looked at within the light and last before the write (atomic: a cancelled light leaves no file);
    a cluster's task gets none, as the caller's event cannot reach another process. ``buffers``
    (threads only) keeps each thread's light array for its next light once this one is written.
    """
    light = calibrate_light(row, lib, options, external=external, label=label, masters_cache=masters_cache,
                            defects=defects, keep_raw=False, dark_parts=dark_parts, cancel=cancel,
                            out=getattr(buffers, "light", None))
    provenance = LightProvenance.of(str(row["path"]), root, options.light_options(),
                                    {"bias": light.bias, "dark": light.dark, "flat": light.flat})
    write_provenance(light.header, provenance.record())
    raise_if_cancelled(cancel, Path(str(row["path"])).name)
    write_fits_atomic(target, fits.PrimaryHDU(light.data, header=light.header), overwrite=overwrite)
    if buffers is not None:
        buffers.light = light.data
    return (LightRecord(str(row["path"]), str(target), cosmetic=options.cosmetic, **light.masters_used()),
            light.decisions, light.warnings)


def _defect_map_task(dark_path: str | None, flat_path: str | None, bias_path: str | None, k_hot: float,
                     k_cold: float, bayer_pattern: str):
    """The defect map of a pair of masters, from their files (a cluster task)."""
    return defect_map(_read_master(dark_path), _read_master(flat_path), bias=_read_master(bias_path), k_hot=k_hot,
                      k_cold=k_cold, bayer_pattern=bayer_pattern)


def _dark_part_key(dark_path: str, bias_path: str | None, k_hot: float, k_cold: float, pattern: str) -> tuple:
    return ("dark part", dark_path, bias_path, float(k_hot), float(k_cold), pattern)


def _dark_part_task(dark_path: str, bias_path: str | None, k_hot: float, k_cold: float, pattern: str):
    """:func:`dark_defect_maps` of two master files, holding one full-size frame at a time: the bias is
    subtracted in place and let go, and the difference becomes the residual."""
    d = _read_master(dark_path)
    if bias_path is not None:
        d -= _read_master(bias_path)
    return _dark_maps_of(d, pattern, k_hot=k_hot, k_cold=k_cold)
