"""Products made stale by a change to what they were built from, found from their provenance alone,
and rebuilt in dependency order.

A master whose frames changed (or whose set of frames is not the night's any more), a master flat
whose dark flat or bias was replaced, a defect map whose master dark or flat was replaced, a
calibrated light whose bias, dark or flat was replaced or whose raw light changed: each records what
it was made from (names and SHA-256, see :mod:`~astrocal_widgets.io.provenance`), so the output folder
alone says what is stale, whatever made it and after any restart. A product built on a stale one is
stale too.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import AstrocalError
from ..frames import FrameCatalog, FrameGroup, scan
from ..frames.exclusions import read_exclusions, split_excluded
from ..integrate.master_file import master_mismatch
from ..io.provenance import InputFile, ProductRecord, canonical_path, content_hash, read_provenance
from ..io.frame_types import CALIBRATION_TYPES
from .options import CalibrationOptions, calibration_options, load_options
from .outputs import CALIBRATED_FOLDER, MASTERS_FOLDER
from .prerequisites import master_file
from .session import CalibrationResult, calibrate_session

__all__ = ["StaleProduct", "stale_products", "RebuildResult", "rebuild_stale", "STALE_BACKUP_FOLDER"]

#: Hidden folder of the output folder where stale products wait while they are rebuilt (put back if a
#: rebuild fails; scans skip hidden folders).
STALE_BACKUP_FOLDER = ".astrocal-stale"

# Dependency order: plain masters, master flats (calibrated with them), defect maps (from a dark and a
# flat), calibrated lights (with all of them).
_ORDER = {"bias": 0, "dark": 0, "darkflat": 0, "master": 0, "flat": 1, "defect map": 2, "light": 3}


@dataclass(frozen=True)
class StaleProduct:
    """A product that is not what its inputs would make now.

    Attributes
    ----------
    path : str
        The product's file.
    kind : str
        ``"bias"``, ``"dark"``, ``"darkflat"``, ``"flat"`` (a master of that type; ``"master"`` when its
        type is not recorded), ``"defect map"`` or ``"light"`` (a calibrated light).
    reason : str
        Why, naming the input that changed.
    """

    path: str
    kind: str
    reason: str

    @property
    def name(self) -> str:
        """The product's file name."""
        return Path(self.path).name

    @property
    def order(self) -> int:
        """Its place in the dependency order (masters 0, master flats 1, defect maps 2, lights 3)."""
        return _ORDER.get(self.kind, 0)

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def _products(folder: Path, pattern: str) -> list[Path]:
    """FITS files below ``folder`` (not in hidden folders, not temporary files being written)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in (".fits", ".fit", ".fts")
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _master_kind(record: ProductRecord) -> str:
    words = record.image_type.strip().lower().split()
    return words[1] if len(words) == 2 and words[0] == "master" and words[1] in _ORDER else "master"


def stale_products(directory: str | os.PathLike, *, output: str | os.PathLike | None = None,
                   catalog: FrameCatalog | None = None, check_frames: bool = True) -> list[StaleProduct]:
    """Every stale product of a session's output folder, with the reason, in dependency order.

    Read from the products' provenance (what :func:`calibrate_session` and the dashboard write):

    - a master whose frames changed, are gone, or are no longer the night's set (frames added or
      taken out); a master flat whose frames' dark flat or bias was replaced;
    - a defect map whose master dark or flat was replaced;
    - a calibrated light whose raw light changed or whose bias, dark or flat was replaced;
    - any product built on a stale one.

    Parameters
    ----------
    directory : path-like
        The night's folder (its raw lights, and the sets the masters should be made of).
    output : path-like, optional
        The folder holding ``masters/`` and ``calibrated/`` (default: ``directory``), as for
        :func:`calibrate_session`.
    catalog : FrameCatalog, optional
        The night scanned already (else it is scanned: headers only).
    check_frames : bool, default True
        Compare the raw frames and lights by content (SHA-256: every frame is read once per process).
        With False they are compared by name and presence only, which is quick on a large night; the
        masters are always compared by content.

    Returns
    -------
    list of StaleProduct
        Masters first, then the master flats built on them, the defect maps, the calibrated lights.
    """
    root = Path(os.path.abspath(directory))
    out = Path(os.path.abspath(output)) if output is not None else root
    masters_dir, lights_dir = out / MASTERS_FOLDER, out / CALIBRATED_FOLDER
    if catalog is None and root.is_dir():
        catalog = scan(root)
    groups: dict[str, FrameGroup] = {}
    if catalog is not None:
        # The sets as a run would integrate them: without the frames of the night's exclusion list.
        exclusions = read_exclusions(out)
        groups = {canonical_path(master_file(g, masters_dir)): split_excluded(g, exclusions, root)[0]
                  for g in catalog.groups() if g.frame_type in CALIBRATION_TYPES}

    found: list[tuple[int, str, ProductRecord]] = []
    for path in _products(masters_dir, "*") + _products(lights_dir, "**/*"):
        try:
            record = read_provenance(path, root=root)
        except (AstrocalError, OSError):
            continue  # not a product of ours (or unreadable): nothing to say about it
        kind = {"master": None, "defect map": "defect map", "calibrated light": "light"}[record.product]
        kind = kind or _master_kind(record)
        found.append((_ORDER[kind], kind, record))
    found.sort(key=lambda item: (item[0], item[2].path or ""))

    stale: dict[str, str] = {}  # canonical path -> reason
    out_list: list[StaleProduct] = []
    for _, kind, record in found:
        path = str(record.path)
        if kind == "light":
            reason = _light_reason(record, stale, check_frames)
        elif kind == "defect map":
            reason = _inputs_reason(record.files("dark") + record.files("flat"), stale)
        else:
            reason = (_frames_reason(record, groups.get(canonical_path(path)), check_frames)
                      or _inputs_reason(record.files("calibration"), stale, "its frames were calibrated with"))
        if reason:
            stale[canonical_path(path)] = reason
            out_list.append(StaleProduct(path, kind, reason))
    return out_list


def _frames_reason(record: ProductRecord, group: FrameGroup | None, check_frames: bool) -> str | None:
    """Why a master's frames are not what it was integrated from (None: they are)."""
    if group is not None and check_frames:
        # The rule a rerun of calibrate_session applies: the set's frames, by content.
        return master_mismatch(record.path, group.paths, None)
    frames = record.files("frame")
    if group is not None:
        recorded = Counter(Path(f.name or "").name for f in frames)
        now = Counter(Path(p).name for p in group.paths)
        if recorded != now:
            added, gone = now - recorded, recorded - now
            parts = [f"integrated from {sum(recorded.values())} frames, the set now has {sum(now.values())}"]
            if added:
                parts.append("new: " + _names(added))
            if gone:
                parts.append("no longer in the set: " + _names(gone))
            return "; ".join(parts)
    missing = [Path(f.name or "").name for f in frames if f.path is None]
    if missing:
        return f"{len(missing)} of its frames are gone: {_names(missing)}"
    if check_frames:
        changed = [Path(f.name or "").name for f in frames if f.sha256 and content_hash(f.path) != f.sha256]
        if changed:
            return f"{len(changed)} of its frames changed since it was made: {_names(changed)}"
    return None


def _names(names: Iterable[str]) -> str:
    names = sorted(names)
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _inputs_reason(inputs: list[InputFile], stale: dict[str, str], verb: str = "made from") -> str | None:
    """Why masters a product used are not the ones it used (replaced, gone, or stale themselves)."""
    for f in inputs:
        name = Path(f.name or "").name
        if f.path is None:
            return f"{verb} {name}, which is no longer there"
        if canonical_path(f.path) in stale:
            return f"{verb} {name}, which is stale ({stale[canonical_path(f.path)]})"
        if f.sha256 and content_hash(f.path) != f.sha256:
            return f"{verb} {name}, which was replaced since"
    return None


def _light_reason(record: ProductRecord, stale: dict[str, str], check_frames: bool) -> str | None:
    source = record.file("light")
    if source is not None and source.name:
        if source.path is None:
            return f"its raw light {source.name} is no longer in the night's folder"
        if check_frames and source.sha256 and content_hash(source.path) != source.sha256:
            return f"its raw light {source.name} changed since it was calibrated"
    masters = [f for role in ("bias", "dark", "flat") for f in record.files(role)]
    return _inputs_reason(masters, stale, "calibrated with")


@dataclass
class RebuildResult:
    """What :func:`rebuild_stale` found stale and what it made.

    Attributes
    ----------
    stale : list of StaleProduct
        The products found stale, in dependency order.
    calibration : CalibrationResult or None
        The run that rebuilt them (None when nothing was stale).
    not_rebuilt : list of str
        Stale products the run did not make again (their set or raw light is gone from the night):
        left in place, still stale.
    """

    stale: list[StaleProduct] = field(default_factory=list)
    calibration: CalibrationResult | None = None
    not_rebuilt: list[str] = field(default_factory=list)

    @property
    def rebuilt(self) -> list[str]:
        """The stale products written again."""
        return [s.path for s in self.stale if s.path not in self.not_rebuilt]

    def summary(self) -> str:
        """One line per product: rebuilt or not, and why it was stale."""
        if not self.stale:
            return "nothing stale: every product is up to date with its inputs"
        lines = [f"{len(self.rebuilt)} of {len(self.stale)} stale products rebuilt:"]
        lines += [f"  {'NOT rebuilt' if s.path in self.not_rebuilt else 'rebuilt'} {s}" for s in self.stale]
        return "\n".join(lines)


def rebuild_stale(directory: str | os.PathLike, options: CalibrationOptions | None = None, *,
                  output: str | os.PathLike | None = None, progress: Callable[[float, str], None] | None = None,
                  client: Any = None, cancel: Any = None, **changes: Any) -> RebuildResult:
    """Make every stale product again, in dependency order, and nothing else that exists.

    The stale products (:func:`stale_products`) are moved into the hidden folder
    :data:`STALE_BACKUP_FOLDER` of the output folder, then :func:`calibrate_session` runs without
    overwriting: it makes exactly what is missing (in its order: masters, master flats, defect maps,
    lights; each written atomically) and reuses every other product untouched. The moved files are
    deleted once their replacements exist; when the run fails they are put back where no new file was
    made. Products the night no longer has inputs for are put back and listed as not rebuilt.

    Missing products (a light never calibrated) are made too, as :func:`calibrate_session` would.

    Parameters
    ----------
    directory, output, progress, client
        As :func:`calibrate_session`.
    options : CalibrationOptions, optional
        By default the options the session was last calibrated with (its ``calibration_options.json``),
        else the defaults: products made with other options would be refused as stale by the run.
    **changes
        Fields of :class:`CalibrationOptions` replacing those of ``options``.

    Returns
    -------
    RebuildResult

    Raises
    ------
    StaleOutputError
        When a product is stale for a reason the provenance of inputs does not show (other options
        than ``options``): nothing is changed then.
    """
    out = Path(os.path.abspath(output)) if output is not None else Path(os.path.abspath(directory))
    if options is None:
        options = load_options(out)
    opts = calibration_options(options, changes)
    stale = stale_products(directory, output=output)
    if not stale:
        return RebuildResult()
    backup = out / STALE_BACKUP_FOLDER
    moved: list[tuple[Path, Path]] = []
    try:
        for product in stale:
            original = Path(product.path)
            aside = backup / Path(os.path.relpath(original, out))
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(original, aside)  # a rename: the file is whole in one place or the other
            moved.append((original, aside))
        calibration = calibrate_session(directory, opts, output=output, progress=progress, client=client,
                                        cancel=cancel)
    except BaseException:
        _put_back(moved)
        _remove_empty(backup)
        raise
    not_rebuilt = [str(original) for original, _ in moved if not original.exists()]
    _put_back(moved)
    for original, aside in moved:
        aside.unlink(missing_ok=True)
    _remove_empty(backup)
    return RebuildResult(stale, calibration, not_rebuilt)


def _put_back(moved: list[tuple[Path, Path]]) -> None:
    """Stale files back where no new file was made (a new one is up to date: it stays)."""
    for original, aside in moved:
        if aside.exists() and not original.exists():
            os.replace(aside, original)


def _remove_empty(folder: Path) -> None:
    if folder.is_dir():
        for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()
