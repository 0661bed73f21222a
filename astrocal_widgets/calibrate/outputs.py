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
from ..io.provenance import canonical_path, content_hash, header_path, path_from_header

__all__ = ["session_relative_path", "calibrated_light_path", "check_one_to_one", "LightProvenance",
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


_ROLES = (("bias", "BIASSHA"), ("dark", "DARKSHA"), ("flat", "FLATSHA"))


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

    def cards(self) -> list[tuple[str, object, str]]:
        """Header cards: SRCFILE (the raw light, relative to the session folder), SRCSHA (its SHA-256),
        CALOPTS (the options) and BIASSHA/DARKSHA/FLATSHA (SHA-256 of the masters used)."""
        # No comments: a 64-digit hash or a long path leaves no room for one on the card.
        cards: list[tuple[str, object, str]] = [
            ("SRCFILE", header_path(self.source), ""),
            ("SRCSHA", self.source_hash, ""),
            ("CALOPTS", self.options, ""),
        ]
        keys = dict(_ROLES)
        for role, _, digest in self.masters:
            cards.append((keys[role], digest, ""))
        return cards

    def mismatch(self, path: str | os.PathLike, *, check_masters: bool = True) -> str | None:
        """Why the calibrated light at ``path`` was not made from this, or None when it was."""
        header = fits.getheader(path)
        if "SRCSHA" not in header:
            return "it records no input (made elsewhere or by an earlier version)"
        recorded_source = path_from_header(header.get("SRCFILE", ""))
        if recorded_source != self.source:
            return f"made from {recorded_source}, not {self.source}"
        if header["SRCSHA"] != self.source_hash:
            return f"{self.source} has changed since it was calibrated"
        if str(header.get("CALOPTS", "")) != self.options:
            return f"calibrated with other options ({header.get('CALOPTS', '')!r}, now {self.options!r})"
        if check_masters:
            now = {role: digest for role, _, digest in self.masters}
            for role, key in _ROLES:
                if str(header.get(key, "")) != now.get(role, ""):
                    name = next((n for r, n, _ in self.masters if r == role), None)
                    return (f"calibrated with another master {role} than now ({name or 'none'})")
        return None


def _word(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
