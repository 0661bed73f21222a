"""Where a session's outputs go, checked before anything is written, and how a rerun recognises them.

One rule derives every output path: the input's path relative to the session folder, the same
whether the folder was given as a relative, absolute or symlinked path. An input outside the
folder gets a name made unique by a hash of its full path, never its bare name. The plan is
checked one-to-one before the first byte is written.

Every calibrated light records its input (path relative to the session folder and SHA-256), the
options that shape its pixels and the masters used (by content). A rerun reuses an output only
when all of these match; otherwise the output is stale and is rebuilt only when asked.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from astropy.io import fits

from ..errors import OutputCollisionError
from .._version import __version__
from ..io.provenance import (InputFile, ProductRecord, canonical_path, content_hash, provenance_cards,
                             provenance_from_header, write_provenance)

__all__ = ["session_relative_path", "calibrated_light_path", "check_one_to_one", "LightProvenance",
           "calibration_record", "defect_map_record", "defect_map_mismatch",
           "OUTSIDE_FOLDER", "MASTERS_FOLDER", "CALIBRATED_FOLDER"]

#: Sub-folders of the output folder (the night's folder by default): masters and defect maps, calibrated lights.
MASTERS_FOLDER = "masters"
CALIBRATED_FOLDER = "calibrated"

#: Sub-folder of ``calibrated/`` for lights that are not below the session folder.
OUTSIDE_FOLDER = "_outside_session"


def session_relative_path(source: str | os.PathLike, root: str | os.PathLike) -> Path | None:
    """``source`` relative to the session folder ``root``, or None when it is not below it.

    Tried as written (made absolute against the working folder), then with symbolic links
    resolved on both sides, so ``night``, ``/abs/night`` and a link to it give the same answer.
    """
    for norm in (os.path.abspath, canonical_path):
        try:
            return Path(norm(source)).relative_to(norm(root))
        except ValueError:
            continue
    return None


def calibrated_light_path(source: str | os.PathLike, root: str | os.PathLike,
                          lights_dir: str | os.PathLike) -> Path:
    """The calibrated light's path: ``lights_dir/<sub-folders of source>/<stem>_calibrated.fits``.

    A light outside ``root`` goes to ``lights_dir/_outside_session/<stem>-<hash>_calibrated.fits``,
    the hash taken from its resolved full path, so two such lights of the same name never meet.
    """
    source = Path(source)
    relative = session_relative_path(source, root)
    if relative is not None:
        return Path(lights_dir) / relative.parent / f"{source.stem}_calibrated.fits"
    tag = hashlib.sha256(canonical_path(source).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return Path(lights_dir) / OUTSIDE_FOLDER / f"{source.stem}-{tag}_calibrated.fits"


def check_one_to_one(plan: Iterable[tuple[str | os.PathLike, str | os.PathLike]]) -> None:
    """Refuse a plan in which two inputs would be written to one output, naming them.

    Parameters
    ----------
    plan : iterable of (input, output)

    Raises
    ------
    OutputCollisionError
        Listing every output that more than one input maps to, with those inputs.
    """
    by_output: dict[str, list[str]] = {}
    for source, target in plan:
        by_output.setdefault(canonical_path(target), []).append(str(source))
    clashes = {t: s for t, s in by_output.items() if len(set(map(canonical_path, s))) > 1}
    if clashes:
        lines = [f"{target} <- " + ", ".join(sorted(set(sources))) for target, sources in sorted(clashes.items())]
        raise OutputCollisionError(
            f"{len(clashes)} output(s) would be written by more than one input, so nothing was written:\n  "
            + "\n  ".join(lines[:10]) + ("\n  ..." if len(lines) > 10 else "")
            + "\nrename one of each pair (e.g. 'Light_001.fit' beside 'Light_001.fits') or calibrate the folders "
              "separately")


_ROLES = ("bias", "dark", "flat")


@dataclass(frozen=True)
class LightProvenance:
    """What a calibrated light was made from: written into its header, compared on a rerun.

    Attributes
    ----------
    source : str
        The raw light, relative to the session folder (POSIX separators).
    source_hash : str
        SHA-256 of the raw light's bytes.
    options : str
        The calibration options that shape the pixels, as ``key=value`` words.
    masters : mapping of role to (file name, SHA-256), for the bias, dark and flat used.
    """

    source: str
    source_hash: str
    options: str
    masters: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def of(cls, source: str | os.PathLike, root: str | os.PathLike, options: Mapping[str, object],
           masters: Mapping[str, str | None] | None = None) -> "LightProvenance":
        """The provenance a light calibrated now would carry (hashing its input and masters)."""
        relative = session_relative_path(source, root)
        name = relative.as_posix() if relative is not None else canonical_path(source)
        opts = " ".join(f"{k}={_word(v)}" for k, v in sorted(options.items()))
        used = tuple((role, Path(p).name, content_hash(p)) for role, p in sorted((masters or {}).items()) if p)
        return cls(name, content_hash(source), opts, used)

    def record(self) -> ProductRecord:
        """As a provenance record (:mod:`~astrocal_widgets.io.provenance`): the raw light, the options, the masters."""
        inputs = [InputFile("light", self.source, self.source_hash)]
        inputs += [InputFile(role, name, digest) for role, name, digest in self.masters]
        return ProductRecord("calibrated light", {"options": self.options}, tuple(inputs))

    def cards(self) -> list[tuple[str, object, str]]:
        """Header cards: BIASFILE/DARKFILE/FLATFILE (the masters' names), SRCFILE (the raw light, relative to
        the session folder), SRCSHA (its SHA-256), CALOPTS (the options) and BIASSHA/DARKSHA/FLATSHA
        (SHA-256 of the masters used)."""
        return provenance_cards(self.record())

    def mismatch(self, path: str | os.PathLike, *, check_masters: bool = True) -> str | None:
        """Why the calibrated light at ``path`` was not made from this, or None when it was."""
        recorded = provenance_from_header(fits.getheader(path), "calibrated light")
        source = recorded.file("light")
        if source is None or source.sha256 is None:
            return "it records no input (made elsewhere or by an earlier version)"
        if (source.name or "") != self.source:
            return f"made from {source.name or ''}, not {self.source}"
        if source.sha256 != self.source_hash:
            return f"{self.source} has changed since it was calibrated"
        options = str(recorded.decisions.get("options", ""))
        if options != self.options:
            return f"calibrated with other options ({options!r}, now {self.options!r})"
        if check_masters:
            now = {role: digest for role, _, digest in self.masters}
            for role in _ROLES:
                then = recorded.file(role)
                if ((then.sha256 if then is not None else None) or "") != now.get(role, ""):
                    name = next((n for r, n, _ in self.masters if r == role), None)
                    return (f"calibrated with another master {role} than now ({name or 'none'})")
        return None


def calibration_record(masters: Mapping[str, str | None], dark_scale: float, dark_scale_method: str,
                       pedestal: float, defects_corrected: int) -> ProductRecord:
    """How a light was calibrated: which masters (by name), the dark scale and how it was chosen, the
    pedestal and the defects corrected; the hashes are added by :class:`LightProvenance` when it is written.

    Parameters
    ----------
    masters : mapping of role to path or None
        The ``bias``, ``dark`` and ``flat`` used (None: none of that role).
    """
    used = [(role, masters.get(role)) for role in _ROLES]
    decisions = {"calibration_status": "".join(role[0].upper() for role, p in used if p),
                 "dark_scale": dark_scale, "dark_scale_method": dark_scale_method, "pedestal": pedestal,
                 "defects_corrected": defects_corrected}
    inputs = tuple(InputFile(role, Path(p).name) for role, p in used if p)
    history = (f"astrocal-widgets {__version__}: L' = (L - B - k (D - B)) / (F / <F>) + pedestal",)
    return ProductRecord("calibrated light", decisions, inputs, history)


def defect_map_record(counts: Mapping[str, int], thresholds: Mapping[str, float], dark_path: str | None,
                      flat_path: str | None) -> ProductRecord:
    """A defect map's provenance: its counts and thresholds, the master dark and flat it was found in."""
    decisions = {"image_type": "DEFECT MAP", "hot_pixels": counts["hot"], "cold_pixels": counts["cold"],
                 "k_hot": thresholds["k_hot"], "k_cold": thresholds["k_cold"]}
    inputs = tuple(InputFile(role, Path(p).name, content_hash(p))  # the masters used, by content
                   for role, p in (("dark", dark_path), ("flat", flat_path)) if p)
    return ProductRecord("defect map", decisions, inputs)


def defect_map_mismatch(path: str | os.PathLike, record: ProductRecord) -> str | None:
    """Why the defect map at ``path`` is not the one ``record`` describes (other masters or thresholds)."""
    fresh = fits.Header()
    write_provenance(fresh, record)  # compared as the header holds them, card for card

    def key(r: ProductRecord) -> list[str]:
        return [str((r.file(role).sha256 if r.file(role) else None) or "") for role in ("dark", "flat")] + \
            [str(r.decisions.get(name, "")) for name in ("k_hot", "k_cold")]

    then = provenance_from_header(fits.getheader(path), "defect map")
    now = provenance_from_header(fresh, "defect map")
    return None if key(then) == key(now) else "made from other masters or thresholds than now"


def _word(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
