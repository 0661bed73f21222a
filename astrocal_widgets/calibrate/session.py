"""``calibrate_session``: a night from raw frames to calibrated lights, the way careful people do it.

Scan, group, build (or reuse) master bias, darks and dark flats; calibrate each flat by its dark
flat (else the bias) and integrate one master flat per filter; calibrate every light with the
matching masters, ``L' = (L - B - k (D - B)) / (F / <F>) + pedestal``; correct hot and cold pixels;
write everything atomically, overwrite nothing unless asked, and report every decision.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from astropy.io import fits

from .._version import __version__
from ..errors import AstrocalError, OutputExistsError
from ..frames import FrameCatalog, FrameGroup, scan
from ..frames.grouping import exposures_match
from ..integrate import write_master
from ..io.cube import open_frames
from ..io.sources import FrameSource, read_header
from ..io.write import write_fits_atomic
from .apply import calibrate_frame, optimize_dark_scale
from .cosmetic import correct_defects, defect_map
from .library import MasterLibrary, find_master
from .masters import build_master, subtract_masters
from .matching import check_compatibility, enforce

__all__ = ["calibrate_session", "CalibrationResult", "MasterRecord", "LightRecord", "calibrate_flats",
           "FlatCalibration", "calibrate_light", "CalibratedLight"]

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

    def summary(self) -> str:
        """A plain-text report."""
        lines = [f"{self.directory} -> {self.output}"]
        lines.append(f"masters ({len(self.masters)}):")
        for m in self.masters:
            state = "reused" if m.reused else "made"
            lines.append(f"  {state} {Path(m.path).name}: {m.label}, {m.n_frames} frames"
                         + (f", {m.rejection}" if m.rejection else ""))
        lines.append(f"lights ({len(self.lights)}):")
        for l in self.lights:
            state = "reused" if l.reused else "calibrated"
            lines.append(f"  {state} {Path(l.source).name} -> {Path(l.output).name} (dark x{l.dark_scale:.3f} "
                         f"{l.dark_scale_method}, {l.defects_corrected} defects corrected)")
        if self.decisions:
            lines.append("decisions:")
            lines += [f"  {d}" for d in self.decisions]
        if self.warnings:
            lines.append("warnings:")
            lines += [f"  {w}" for w in self.warnings]
        return "\n".join(lines)


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
    progress: Callable[[float, str], None] | None = None,
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
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    CalibrationMismatchError
        With ``strict=True``, when a light has no compatible master of a kind the session provides.
    """
    directory = Path(directory)
    out_root = Path(output) if output is not None else directory
    masters_dir = out_root / "masters"
    lights_dir = out_root / "calibrated"
    report = _Progress(progress)
    catalog = scan(directory)
    result = CalibrationResult(directory, out_root, catalog)
    for _, row in catalog.skipped.iterrows():
        result.warnings.append(f"skipped {row['path']}: {row['problem']}")
    for _, row in catalog.unclassified.iterrows():
        if not str(row["type_reason"]).startswith("product"):
            result.warnings.append(f"unclassified {row['path']}: {row['type_reason']}")

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

    groups = catalog.groups()
    lights = [g for g in groups if g.frame_type == "light"]
    steps = [g for g in groups if g.frame_type != "light"]
    total = len(steps) + sum(len(g) for g in lights)
    report.total = max(1, total)

    # 1. Bias, darks, dark flats: plain masters.
    for group in steps:
        if group.frame_type in ("bias", "dark", "darkflat"):
            record = _master(group, masters_dir, overwrite, report, result)
            lib.add(record.path)

    # 2. Flats: calibrate each by its dark flat (else bias), then integrate.
    for group in steps:
        if group.frame_type == "flat":
            record = _master_flat(group, masters_dir, lib, overwrite, report, result, temperature_tolerance,
                                  strict)
            lib.add(record.path)

    # 3. Lights. Defect maps are shared by every light calibrated with the same masters.
    defects: dict[tuple, Any] = {}
    for group in lights:
        _calibrate_lights(group, lib, external, lights_dir, directory, result, report, strict=strict,
                          temperature_tolerance=temperature_tolerance, allow_dark_scaling=allow_dark_scaling,
                          dark_optimization=dark_optimization, cosmetic=cosmetic, k_hot=k_hot, k_cold=k_cold,
                          pedestal=pedestal, overwrite=overwrite, defects=defects)
    report(1.0, "done")
    return result


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
            self.callback(min(1.0, (start + fraction) / self.total), f"{message}: {text}")

        sub(0.0, "start")
        return sub

    def __call__(self, fraction: float, message: str) -> None:
        if self.callback is not None:
            self.callback(fraction, message)


def _existing_master(path: Path, group: FrameGroup) -> MasterRecord:
    header = read_header(path)
    return MasterRecord(group.frame_type, str(path), group.label, int(header.get("NCOMBINE", 0)),
                        str(header.get("REJECT", "")), "exists, reused (overwrite=True rebuilds it)", reused=True)


def _master(group: FrameGroup, masters_dir: Path, overwrite: bool, report: _Progress,
            result: CalibrationResult) -> MasterRecord:
    path = masters_dir / f"master_{group.slug}.fits"
    sub = report.step(f"master {group.frame_type}")
    if path.exists() and not overwrite:
        record = _existing_master(path, group)
    else:
        ds = build_master(group.open(), group.frame_type, progress=sub).compute()
        write_master(ds, path, overwrite=overwrite)
        record = MasterRecord(group.frame_type, str(path), group.label, ds.attrs["n_frames"],
                              ds.attrs["rejection"], ds.attrs["rejection_reason"])
        result.decisions.append(f"{group.label}: {ds.attrs['rejection']} ({ds.attrs['rejection_reason']})")
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
                    temperature_tolerance: float = 1.0) -> FlatCalibration:
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

    Returns
    -------
    FlatCalibration

    Raises
    ------
    AstrocalError
        With ``strict=True``, naming a flat that has no dark flat and no bias.
    """
    lib = library if isinstance(library, MasterLibrary) else MasterLibrary(library)
    cube = group.open()
    out = FlatCalibration(group, cube)
    masters: list[np.ndarray] = []
    index = []
    for _, row in group.table.iterrows():
        choice = find_master(row, lib, role="darkflat", temperature_tolerance=temperature_tolerance)
        if not choice:
            choice = find_master(row, lib, role="bias", temperature_tolerance=math.inf)
        if not choice:
            index.append(-1)
            continue
        if choice.path not in out.masters:
            out.masters.append(choice.path)
            masters.append(fits.getdata(choice.path).astype(np.float32))
        index.append(out.masters.index(choice.path))
    if all(i == -1 for i in index):
        text = (f"{group.label}: no dark flats and no bias match these flats, e.g. {group.paths[0]}: their "
                "pedestal would stay in the master flat and leave a residual in every light; take dark flats "
                "at the flats' exposure (or bias frames)")
        if strict:
            raise AstrocalError(text + " (or calibrate with strict=False / --lenient to integrate them "
                                       "uncalibrated)")
        out.warnings.append(text + ": integrated uncalibrated")
        out.index = index
        return out
    if any(i == -1 for i in index):
        missing = [p for p, i in zip(group.paths, index) if i == -1]
        text = (f"{group.label}: no dark flat or bias for {len(missing)} of the {len(index)} flats, "
                f"e.g. {missing[0]} ({group.table['exposure'].iloc[index.index(-1)]:g} s); take dark flats "
                "at their exposure")
        if strict:
            raise AstrocalError(text + " (or calibrate with strict=False / --lenient to leave them out)")
        out.warnings.append(text + ": left out of the master flat")
        keep = [k for k, i in enumerate(index) if i != -1]
        cube = cube.isel(frame=keep)
        index = [index[k] for k in keep]
    out.cube = subtract_masters(cube, masters, index)
    out.index = index
    for name in out.masters:
        out.decisions.append(f"{group.label}: flats calibrated with {Path(name).name}")
    return out


def _master_flat(group: FrameGroup, masters_dir: Path, lib: MasterLibrary, overwrite: bool,
                 report: _Progress, result: CalibrationResult, temperature_tolerance: float,
                 strict: bool) -> MasterRecord:
    path = masters_dir / f"master_{group.slug}.fits"
    sub = report.step("master flat")
    if path.exists() and not overwrite:
        record = _existing_master(path, group)
        result.masters.append(record)
        return record
    flats = calibrate_flats(group, lib, strict=strict, temperature_tolerance=temperature_tolerance)
    result.warnings += flats.warnings
    result.decisions += flats.decisions
    names = flats.masters
    ds = build_master(flats.cube, "flat", progress=sub).compute()
    ds.attrs["calibrated_with"] = [Path(n).name for n in names]
    write_master(ds, path, overwrite=overwrite)
    record = MasterRecord("flat", str(path), group.label, ds.attrs["n_frames"], ds.attrs["rejection"],
                          ds.attrs["rejection_reason"], calibrated_with=names)
    result.decisions.append(f"{group.label}: {ds.attrs['rejection']} ({ds.attrs['rejection_reason']}), "
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
        best_header = read_header(best)
        t_l, t_d = float(row["exposure"]), float(best_header.get("EXPTIME", best_header.get("EXPOSURE", math.nan)))
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
    strict, temperature_tolerance, allow_dark_scaling, dark_optimization, cosmetic, k_hot, k_cold, pedestal
        As :func:`calibrate_session`.
    label : str, optional
        The light set's label, used in the decisions.
    masters_cache, defects : dict, optional
        Caches shared between lights (loaded masters; defect maps by masters used).

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
        if path not in cache:
            cache[path] = fits.getdata(path).astype(np.float32)
        return cache[path]

    (bias_path, dark_path, flat_path), scale = _choose_masters(
        row, lib, external, label, decisions, notes, strict=strict, temperature_tolerance=temperature_tolerance,
        allow_dark_scaling=allow_dark_scaling)
    raw = open_frames([source]).values[0]
    bias, dark, flat = load(bias_path), load(dark_path), load(flat_path)
    k = 1.0 if scale is None else float(scale)
    method = "matching exposure" if scale in (None, 1.0) else "exposure ratio"
    if dark is not None and bias is None and not math.isclose(k, 1.0):
        # A dark of another exposure holds the pedestal: without a master bias it can be neither
        # scaled nor subtracted as it is. Better no dark than a wrong one.
        notes.append(f"{source.name}: the only usable dark ({Path(dark_path).name}) needs scaling "
                     f"x{k:.3f}, which needs a master bias: no dark subtracted; take darks at "
                     f"{row['exposure']:g} s or bias frames")
        decisions.append(f"{source.name}: dark {Path(dark_path).name} not used (needs scaling "
                         "without a master bias)")
        dark, dark_path, k, method = None, None, 1.0, "none (no matching dark)"
    if dark_optimization and dark is not None and bias is not None:
        # Search around the exposure ratio: a 60 s dark for a 300 s light needs k near 5.
        opt = optimize_dark_scale(raw, bias, dark, bayer_pattern=pattern, bounds=(0.0, 2.0 * max(1.0, k)))
        decisions.append(f"{source.name}: dark optimisation k = {opt.k:.4f} (exposure ratio "
                         f"{k:.4f}, {opt.n_pixels} thermal pixels)")
        k, method = opt.k, "optimised"
    calibrated = calibrate_frame(raw, bias=bias, dark=dark, flat=flat, dark_scale=k, pedestal=pedestal,
                                 bayer_pattern=pattern)
    n_defects, dm = 0, None
    if cosmetic and (dark is not None or flat is not None):
        key = (dark_path, flat_path, bias_path)
        if key not in defects:
            defects[key] = defect_map(dark, flat, bias=bias, k_hot=k_hot, k_cold=k_cold, bayer_pattern=pattern)
        dm = defects[key]
        calibrated = correct_defects(calibrated, dm.mask, bayer_pattern=pattern)
        n_defects = int(dm.counts["total"])
    source_header = read_header(source)
    if isinstance(source_header, fits.Header):
        header = fits.Header(source_header, copy=True)
    else:  # XISF keywords or raw EXIF mapped to FITS names
        header = fits.Header([(k_, v) for k_, v in source_header.items()
                              if len(k_) <= 8 and isinstance(v, (int, float, str, bool))])
    for key in ("BZERO", "BSCALE", "BLANK", "BITPIX"):
        header.remove(key, ignore_missing=True)
    header["CALSTAT"] = ("".join(c for c, p in (("B", bias_path), ("D", dark_path), ("F", flat_path)) if p),
                         "calibrated with Bias/Dark/Flat")
    header["BIASFILE"] = Path(bias_path).name if bias_path else ""
    header["DARKFILE"] = Path(dark_path).name if dark_path else ""
    header["FLATFILE"] = Path(flat_path).name if flat_path else ""
    header["DARKSCAL"] = (k, "dark scale factor k")
    header["DARKMETH"] = (method, "how k was chosen")
    header["PEDESTAL"] = (pedestal, "added after calibration [ADU]")
    header["NDEFECTS"] = (n_defects, "hot/cold pixels corrected")
    header.add_history(f"astrocal-widgets {__version__}: L' = (L - B - k (D - B)) / (F / <F>) + pedestal")
    return CalibratedLight(str(source), calibrated.astype(np.float32), header, bias_path, dark_path, flat_path, k,
                           method, n_defects, dm, decisions, notes, raw)


def _calibrate_lights(group: FrameGroup, lib: MasterLibrary, external: MasterLibrary, lights_dir: Path,
                      directory: Path,
                      result: CalibrationResult, report: _Progress, *, strict: bool, temperature_tolerance: float,
                      allow_dark_scaling: bool, dark_optimization: bool, cosmetic: bool, k_hot: float,
                      k_cold: float, pedestal: float, overwrite: bool, defects: dict[tuple, Any]) -> None:
    cache: dict[str, np.ndarray] = {}
    options = dict(strict=strict, temperature_tolerance=temperature_tolerance, allow_dark_scaling=allow_dark_scaling)
    for _, row in group.table.iterrows():
        source = Path(row["path"])
        report.step(f"light {source.name}")
        try:
            relative = source.relative_to(directory)
        except ValueError:
            relative = Path(source.name)
        target = lights_dir / relative.parent / f"{source.stem}_calibrated.fits"
        if target.exists() and not overwrite:
            decisions: list[str] = []
            chosen, _ = _choose_masters(row, lib, external, group.label, decisions, result.warnings, **options)
            result.decisions += [d for d in decisions if d not in result.decisions]
            header = read_header(target)
            result.lights.append(LightRecord(str(source), str(target), *chosen,
                                             float(header.get("DARKSCAL", 1.0)), str(header.get("DARKMETH", "")),
                                             int(header.get("NDEFECTS", 0)), reused=True))
            continue
        known = set(defects)
        light = calibrate_light(row, lib, external=external, dark_optimization=dark_optimization, cosmetic=cosmetic,
                                k_hot=k_hot, k_cold=k_cold, pedestal=pedestal, label=group.label,
                                masters_cache=cache, defects=defects, **options)
        for line in light.decisions:
            if line not in result.decisions:  # once per light group, not once per light
                result.decisions.append(line)
        result.warnings += light.warnings
        for key in set(defects) - known:
            dm = defects[key]
            dark_path, flat_path, _ = key
            map_path = _save_defect_map(dm, lights_dir.parent / "masters", dark_path, flat_path, overwrite)
            result.decisions.append(f"defect map from {Path(dark_path).name if dark_path else '-'} and "
                                    f"{Path(flat_path).name if flat_path else '-'}: {dm.counts['hot']} hot, "
                                    f"{dm.counts['cold']} cold pixels, saved as {map_path.name}")
            result.defect_maps.append(str(map_path))
        write_fits_atomic(target, fits.PrimaryHDU(light.data, header=light.header), overwrite=overwrite)
        result.lights.append(LightRecord(str(source), str(target), light.bias, light.dark, light.flat,
                                         light.dark_scale, light.dark_scale_method, light.defects_corrected))


def _save_defect_map(dm, folder: Path, dark_path: str | None, flat_path: str | None, overwrite: bool) -> Path:
    """Write the defect map (1 = hot, 2 = cold, 3 = both) beside the masters, once; reuse it after."""
    name = "_".join(Path(p).stem.replace("master_", "") for p in (dark_path, flat_path) if p)
    path = folder / f"defects_{name}.fits"
    if path.exists() and not overwrite:
        return path
    data = dm.hot.astype(np.uint8) + 2 * dm.cold.astype(np.uint8)
    header = fits.Header()
    header["IMAGETYP"] = ("DEFECT MAP", "1 = hot, 2 = cold, 3 = both")
    header["NHOT"] = dm.counts["hot"]
    header["NCOLD"] = dm.counts["cold"]
    header["KHOT"] = dm.thresholds["k_hot"]
    header["KCOLD"] = dm.thresholds["k_cold"]
    header["DARKFILE"] = Path(dark_path).name if dark_path else ""
    header["FLATFILE"] = Path(flat_path).name if flat_path else ""
    write_fits_atomic(path, fits.PrimaryHDU(data, header=header), overwrite=overwrite)
    return path
