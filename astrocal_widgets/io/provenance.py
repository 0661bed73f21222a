"""What a product was made from: content hashes, paths that survive a FITS header, and the provenance
record every product carries, written and read by one mechanism.

Every product (master, calibrated light, defect map) records its inputs by path and by content
hash, so that a rerun can tell an output made from exactly these inputs (reuse it) from one made
from something else (refuse, or rebuild when asked). The hash is SHA-256 of the file's bytes.

Writers describe a product by a :class:`ProductRecord` (its input files and every decision) and
:func:`write_provenance` turns it into header cards; :func:`provenance_from_header` and
:func:`read_provenance` give the same record back, and :func:`trace_provenance` follows a product to the
masters it used and their own inputs. No writer composes a provenance keyword itself.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote

import numpy as np

__all__ = ["content_hash", "prefetch_hashes", "header_path", "path_from_header", "canonical_path", "FIELDS",
           "FILE_KEYWORDS", "PRODUCTS", "InputFile", "ProductRecord", "inputs_hash", "provenance_cards",
           "write_provenance", "sources_table", "product_kind", "provenance_from_header", "read_provenance",
           "trace_provenance"]

_CHUNK = 1 << 22  # 4 MiB reads: hashlib releases the GIL on large buffers


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, cached while the file's size and modification time stay.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    p = os.path.abspath(path)
    st = os.stat(p)
    key = (p, st.st_size, st.st_mtime_ns)
    # Threads asking for the same file at once (lights calibrated together all name the same masters)
    # wait for one reading instead of each reading it.
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        digest = _hash(*key)
    with _LOCKS_LOCK:  # the next asker finds the digest cached: the lock is not kept for it
        _LOCKS.pop(key, None)
    return digest


_LOCKS: dict[tuple, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()
_PREFETCH: ThreadPoolExecutor | None = None


def prefetch_hashes(paths: Iterable[str | os.PathLike]) -> None:
    """Start hashing files in a background thread; :func:`content_hash` then finds their digests made.

    For a master's frames while it is integrated: without it their SHA-256 (a quarter of a second per
    ten 24-megapixel frames) is taken after the last band, while nothing else runs. A file still being
    hashed when :func:`content_hash` asks for it is waited for, not read twice; a file that cannot be
    read is left for :func:`content_hash` to report.
    """
    global _PREFETCH
    with _LOCKS_LOCK:
        if _PREFETCH is None:
            _PREFETCH = ThreadPoolExecutor(1, thread_name_prefix="astrocal-hash")
    for path in paths:
        _PREFETCH.submit(_quiet_hash, path)


def _quiet_hash(path: str | os.PathLike) -> None:
    try:
        content_hash(path)
    except OSError:
        pass


@lru_cache(maxsize=4096)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK)  # one buffer reused: no fresh memory per chunk
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


# FITS header values are printable ASCII: non-ASCII characters and '%' are percent-encoded (UTF-8),
# everything else (spaces, brackets, ...) is kept as it is, so most paths read as they are.
_SAFE = "".join(chr(c) for c in range(32, 127) if chr(c) != "%")


def header_path(path: str | os.PathLike) -> str:
    """A path as a FITS header value: POSIX separators, non-ASCII characters percent-encoded."""
    return quote(Path(path).as_posix(), safe=_SAFE)


def path_from_header(value: str) -> str:
    """The path :func:`header_path` encoded."""
    return unquote(str(value))


def canonical_path(path: str | os.PathLike) -> str:
    """One spelling per file: absolute, symbolic links resolved."""
    return os.path.realpath(os.path.abspath(path))


# --- Provenance records: one mechanism writes them into FITS headers and reads them back -------------
#
# Every product records what it was made from (input files by name and SHA-256) and every decision that
# shaped its pixels. Writers build a ProductRecord and give it to write_provenance; the keywords are
# composed here and nowhere else (as ccdproc's log_to_metadata), so a reader gets the same record back.

#: Every decision a product can record: name -> (keyword, comment). One definition of each keyword.
FIELDS: dict[str, tuple[str, str]] = {
    # a master's integration
    "combine": ("COMBINE", "combination of kept values"),
    "rejection": ("REJECT", "pixel rejection algorithm"),
    "rejection_code": ("REJCODE", "Siril/IRAF name"),
    "low": ("REJLOW", "low rejection threshold"),
    "high": ("REJHIGH", "high rejection threshold"),
    "normalization": ("NORMALIZ", "output normalisation"),
    "rejection_normalization": ("REJNORM", "rejection normalisation"),
    "weights": ("WEIGHTS", "frame weights"),
    "estimator": ("ESTIMATR", "location/scale estimator"),
    "software": ("CREATOR", ""),
    # how the frames were read (IRAF's names)
    "overscan": ("OVERSCAN", "overscan level subtracted"),
    "trim": ("TRIM", "trimmed to this section of the stored frame"),
    # what a master's rejection did
    "rejected_fraction_low": ("REJFRACL", "fraction of values rejected low"),
    "rejected_fraction_high": ("REJFRACH", "fraction of values rejected high"),
    # a calibrated light
    "calibration_status": ("CALSTAT", "calibrated with Bias/Dark/Flat"),
    "dark_scale": ("DARKSCAL", "dark scale factor k"),
    "dark_scale_method": ("DARKMETH", "how k was chosen"),
    "pedestal": ("PEDESTAL", "added after calibration [ADU]"),
    "defects_corrected": ("NDEFECTS", "hot/cold pixels corrected"),
    # No comment: a long list of options leaves no room for one on the card.
    "options": ("CALOPTS", ""),
    # a defect map
    "image_type": ("IMAGETYP", ""),
    "hot_pixels": ("NHOT", ""),
    "cold_pixels": ("NCOLD", ""),
    "k_hot": ("KHOT", ""),
    "k_cold": ("KCOLD", ""),
}

#: The files a product records by role: role -> (name keyword, hash keyword). A master's frames are in
#: its ``SOURCES`` table (and ``INPHASH``); the masters its frames were calibrated with (a flat's dark
#: flat or bias) in the numbered ``CALMASn`` / ``CALSHAn``.
FILE_KEYWORDS: dict[str, tuple[str, str]] = {
    "light": ("SRCFILE", "SRCSHA"),
    "bias": ("BIASFILE", "BIASSHA"),
    "dark": ("DARKFILE", "DARKSHA"),
    "flat": ("FLATFILE", "FLATSHA"),
}
CALIBRATION_KEYWORDS = ("CALMAS", "CALSHA")
#: The frames a master's set had but that were left out on purpose (the exclusion list): the numbered
#: ``EXCLn`` (the frame's full path) and ``EXCRn`` (why).
EXCLUSION_KEYWORDS = ("EXCL", "EXCR")

#: The products and the FITS ``IMAGETYP`` that tells them apart when read.
PRODUCTS = ("master", "calibrated light", "defect map")


@dataclass(frozen=True)
class InputFile:
    """One file a product was made from.

    Attributes
    ----------
    role : str
        ``"frame"`` (a master's frames), ``"calibration"`` (a master the frames were calibrated with:
        a flat's dark flat or bias), ``"light"`` (the raw light of a calibrated light), ``"bias"``,
        ``"dark"`` or ``"flat"`` (the masters a light or defect map used), ``"excluded"`` (a frame of a
        master's set left out on purpose: not an input, recorded with its ``reason``).
    name : str or None
        As the product records it: a frame's full path, the raw light relative to the session folder,
        a master's file name.
    sha256 : str or None
        SHA-256 of the file's bytes when it was used.
    location, scale, weight : float or None
        A master's frame: its estimated location and scale and its weight in the combination.
    path : str or None
        Read back: the file on disk the name resolves to (None when it is not there).
    intact : bool or None
        Read back with ``verify``: the file's content still has ``sha256``.
    record : ProductRecord or None
        From :func:`trace_provenance`: the master's own provenance.
    reason : str or None
        An excluded frame: why it was left out.
    """

    role: str
    name: str | None
    sha256: str | None = None
    location: float | None = None
    scale: float | None = None
    weight: float | None = None
    path: str | None = None
    intact: bool | None = None
    record: "ProductRecord | None" = None
    reason: str | None = None


@dataclass(frozen=True)
class ProductRecord:
    """What a product was made from and every decision that shaped it.

    Attributes
    ----------
    product : str
        One of :data:`PRODUCTS`.
    decisions : dict
        By the names of :data:`FIELDS` (``combine``, ``rejection``, ``low``, ``dark_scale``, ``options``, ...).
    inputs : tuple of InputFile
        The files, by role (see :class:`InputFile`).
    history : tuple of str
        HISTORY lines (written); read back, the header's HISTORY cards as they are stored.
    inputs_hash : str or None
        Read back from a master: ``INPHASH``, SHA-256 over its frames' sorted hashes.
    path : str or None
        Read back: the product's file.
    """

    product: str
    decisions: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[InputFile, ...] = ()
    history: tuple[str, ...] = ()
    inputs_hash: str | None = None
    path: str | None = None

    def files(self, role: str) -> list[InputFile]:
        """The inputs of one role, in order."""
        return [f for f in self.inputs if f.role == role]

    def file(self, role: str) -> InputFile | None:
        """The input of one role (a light's bias, ...), or None."""
        found = self.files(role)
        return found[0] if found else None

    @property
    def image_type(self) -> str:
        """The product's ``IMAGETYP`` when read back ('MASTER FLAT', 'DEFECT MAP', the light's own)."""
        return str(self.decisions.get("image_type", ""))

    @property
    def software(self) -> str | None:
        """The software that wrote it, from ``CREATOR`` or else its HISTORY line ('astrocal-widgets 0.1')."""
        if self.decisions.get("software"):
            return str(self.decisions["software"])
        found = re.search(r"astrocal-widgets (\S+?):? ", " ".join(self.history))
        return f"astrocal-widgets {found.group(1)}" if found else None

    def options(self) -> dict[str, str]:
        """A calibrated light's options (``CALOPTS``) as ``{name: word}``."""
        words = str(self.decisions.get("options", "") or "").split()
        return dict(w.split("=", 1) for w in words if "=" in w)


# What each product writes, in order: ("field", name[, comment]) a decision; ("name"/"hash", role, always)
# a file's name or hash ("" when the role is absent and `always`); "calibration" the numbered CALMAS/CALSHA;
# "inputs hash" INPHASH; "history" the HISTORY lines; "source history" one HISTORY line per frame;
# "excluded" the numbered EXCL/EXCR of the frames left out of the set and a HISTORY line each.
_SCHEMAS: dict[str, tuple[tuple, ...]] = {
    "master": (
        *(("field", n) for n in ("combine", "rejection", "rejection_code", "low", "high", "normalization",
                                 "rejection_normalization", "weights", "estimator", "software", "overscan", "trim",
                                 "rejected_fraction_low", "rejected_fraction_high")),
        ("inputs hash",), ("calibration",), ("history",), ("source history",), ("excluded",),
    ),
    "calibrated light": (
        ("field", "overscan"), ("field", "trim"), ("field", "calibration_status"),
        ("name", "bias", True), ("name", "dark", True), ("name", "flat", True),
        ("field", "dark_scale"), ("field", "dark_scale_method"), ("field", "pedestal"), ("field", "defects_corrected"),
        ("name", "light", False), ("hash", "light", False), ("field", "options"),
        ("hash", "bias", False), ("hash", "dark", False), ("hash", "flat", False), ("history",),
    ),
    "defect map": (
        ("field", "image_type", "1 = hot, 2 = cold, 3 = both"), ("field", "hot_pixels"), ("field", "cold_pixels"),
        ("field", "k_hot"), ("field", "k_cold"), ("name", "dark", True), ("name", "flat", True),
        ("hash", "dark", True), ("hash", "flat", True),
    ),
}

# Names a header holds percent-encoded (header_path); the masters' file names are written as they are.
_ENCODED_ROLES = {"light", "calibration", "excluded"}


def _ascii(text: Any) -> str:
    """FITS headers hold printable ASCII only: escape anything else (a folder named 'Nébuleuse')."""
    return str(text).encode("ascii", "backslashreplace").decode("ascii")


def inputs_hash(hashes: Iterable[str]) -> str:
    """One SHA-256 for a set of input hashes (order does not matter: frames may be listed in any order)."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode("ascii")).hexdigest()


def provenance_cards(record: ProductRecord) -> list[tuple[str, Any, str]]:
    """The header cards of a record, in order: ``(keyword, value, comment)``; ``HISTORY`` cards carry text.

    Decisions that are None or absent are left out; a light's and a defect map's master names (and a
    defect map's hashes) are written as ``""`` when no master of that role was used.
    """
    if record.product not in _SCHEMAS:
        raise ValueError(f"unknown product {record.product!r}; choose one of {', '.join(PRODUCTS)}")
    cards: list[tuple[str, Any, str]] = []
    for entry in _SCHEMAS[record.product]:
        kind = entry[0]
        if kind == "field":
            value = record.decisions.get(entry[1])
            if value is not None:
                keyword, comment = FIELDS[entry[1]]
                cards.append((keyword, value, entry[2] if len(entry) > 2 else comment))
        elif kind in ("name", "hash"):
            role, always = entry[1], entry[2]
            found = record.file(role)
            value = None if found is None else found.name if kind == "name" else found.sha256
            if value is None and not always:
                continue
            if kind == "name" and value and role in _ENCODED_ROLES:
                value = header_path(value)
            cards.append((FILE_KEYWORDS[role][0 if kind == "name" else 1], value or "", ""))
        elif kind == "calibration":
            for i, used in enumerate(record.files("calibration")):
                cards.append((f"{CALIBRATION_KEYWORDS[0]}{i + 1}", header_path(used.name or ""), ""))
                cards.append((f"{CALIBRATION_KEYWORDS[1]}{i + 1}", used.sha256 or "", ""))
        elif kind == "inputs hash":
            frames = record.files("frame")
            if frames and all(f.sha256 is not None for f in frames):
                # No comment: a 64-digit hash leaves no room for one.
                cards.append(("INPHASH", inputs_hash(f.sha256 for f in frames), ""))
        elif kind == "history":
            cards += [("HISTORY", _ascii(line), "") for line in record.history]
        elif kind == "excluded":
            for i, left in enumerate(record.files("excluded")):
                cards.append((f"{EXCLUSION_KEYWORDS[0]}{i + 1}", header_path(left.name or ""), "excluded frame"))
                cards.append((f"{EXCLUSION_KEYWORDS[1]}{i + 1}", _ascii(left.reason or ""), "why excluded"))
                cards.append(("HISTORY", _ascii(f"excluded {os.path.basename(left.name or '')}: "
                                                f"{left.reason or 'no reason given'}"), ""))
        elif kind == "source history":
            cards += [("HISTORY", _ascii(f"source {i + 1}: {os.path.basename(f.name or '')}"), "")
                      for i, f in enumerate(record.files("frame"))]
    return cards


def write_provenance(header: Any, record: ProductRecord) -> None:
    """Write a record into a FITS header: its cards set (in place when a keyword is there), HISTORY added.

    Parameters
    ----------
    header : astropy.io.fits.Header
    record : ProductRecord
    """
    for keyword, value, comment in provenance_cards(record):
        if keyword == "HISTORY":
            header.add_history(value)
        else:
            # With its comment, even an empty one: a comment already there described another value.
            header[keyword] = (value, comment)


def sources_table(record: ProductRecord) -> Any:
    """A master's ``SOURCES`` table (each frame's full path, location, scale, weight and SHA-256), or None."""
    from astropy.io import fits  # astropy only where FITS is written

    frames = record.files("frame")
    if not frames:
        return None
    # UTF-8 bytes: FITS character columns are bytes, and paths need not be ASCII
    encoded = np.array([(f.name or "").encode("utf-8") for f in frames])
    cols = [fits.Column("PATH", f"{max(1, encoded.dtype.itemsize)}A", array=encoded),
            fits.Column("LOCATION", "D", array=_column(frames, "location")),
            fits.Column("SCALE", "D", array=_column(frames, "scale")),
            fits.Column("WEIGHT", "D", array=_column(frames, "weight")),
            fits.Column("SHA256", "64A", array=np.array([(f.sha256 or "").encode("ascii") for f in frames]))]
    return fits.BinTableHDU.from_columns(cols, name="SOURCES")


def _column(frames: list[InputFile], name: str) -> np.ndarray:
    return np.array([math.nan if getattr(f, name) is None else float(getattr(f, name)) for f in frames])


def product_kind(header: Any) -> str | None:
    """Which product a header belongs to (one of :data:`PRODUCTS`), or None when it is none of ours."""
    image_type = str(header.get("IMAGETYP", "") or "").strip().upper()
    if image_type.startswith("MASTER") or "INPHASH" in header or "COMBINE" in header:
        return "master"
    if image_type == "DEFECT MAP":
        return "defect map"
    if "SRCSHA" in header or "CALSTAT" in header:
        return "calibrated light"
    return None


def provenance_from_header(header: Any, product: str | None = None, sources: Any = None) -> ProductRecord:
    """The record a header holds (what :func:`write_provenance` wrote), names as recorded, not resolved.

    Parameters
    ----------
    header : astropy.io.fits.Header
    product : str, optional
        One of :data:`PRODUCTS`; by default told from the header (:func:`product_kind`).
    sources : FITS table data, optional
        A master's ``SOURCES`` table (its frames, with their hashes).

    Raises
    ------
    ValueError
        When the header is not one of a product's and ``product`` is not given.
    """
    product = product or product_kind(header)
    if product not in _SCHEMAS:
        raise ValueError("not a product of astrocal-widgets (no master, calibrated light or defect map keywords)")
    decisions: dict[str, Any] = {}
    names: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for entry in _SCHEMAS[product]:
        if entry[0] == "field" and FIELDS[entry[1]][0] in header:
            decisions[entry[1]] = header[FIELDS[entry[1]][0]]
        elif entry[0] in ("name", "hash"):
            keyword = FILE_KEYWORDS[entry[1]][0 if entry[0] == "name" else 1]
            value = str(header.get(keyword, "") or "")
            if value:
                (names if entry[0] == "name" else hashes)[entry[1]] = (
                    path_from_header(value) if entry[0] == "name" and entry[1] in _ENCODED_ROLES else value)
    if "IMAGETYP" in header:
        decisions["image_type"] = header["IMAGETYP"]
    inputs: list[InputFile] = []
    if sources is not None:
        columns = sources.columns.names
        for i in range(len(sources)):
            def number(col: str) -> float | None:
                if col not in columns or not np.isfinite(sources[col][i]):
                    return None
                return float(sources[col][i])
            inputs.append(InputFile("frame", _text(sources["PATH"][i]),
                                    _text(sources["SHA256"][i]) if "SHA256" in columns else None,
                                    number("LOCATION"), number("SCALE"), number("WEIGHT")))
    i = 1
    while f"{CALIBRATION_KEYWORDS[0]}{i}" in header or f"{CALIBRATION_KEYWORDS[1]}{i}" in header:
        inputs.append(InputFile("calibration", path_from_header(header.get(f"{CALIBRATION_KEYWORDS[0]}{i}", "")),
                                str(header.get(f"{CALIBRATION_KEYWORDS[1]}{i}", "")) or None))
        i += 1
    i = 1
    while f"{EXCLUSION_KEYWORDS[0]}{i}" in header:
        inputs.append(InputFile("excluded", path_from_header(header[f"{EXCLUSION_KEYWORDS[0]}{i}"]),
                                reason=str(header.get(f"{EXCLUSION_KEYWORDS[1]}{i}", "") or "")))
        i += 1
    for role in FILE_KEYWORDS:
        if role in names or role in hashes:
            inputs.append(InputFile(role, names.get(role), hashes.get(role)))
    history = tuple(str(h) for h in header.get("HISTORY", ())) if "HISTORY" in header else ()
    return ProductRecord(product, decisions, tuple(inputs), history,
                         str(header["INPHASH"]) if "INPHASH" in header else None)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_provenance(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                    verify: bool = False) -> ProductRecord:
    """The provenance of a product file, with each input's name resolved to the file it names.

    Names are resolved as the products record them: a master's frames by their full paths (a relative
    one against the master's folder), the masters a flat's frames were calibrated with and the masters of
    a defect map beside the product, a light's masters in the ``masters`` folder of its output folder
    and its raw light in the session folder.

    Parameters
    ----------
    path : path-like
        A master, calibrated light or defect map.
    root : path-like, optional
        A calibrated light's session folder (by default its output folder, where the session writes
        ``calibrated/`` unless told otherwise).
    verify : bool, default False
        Hash each input found and say whether it is still the file used (:attr:`InputFile.intact`).

    Raises
    ------
    AstrocalError
        Naming the file, when it is not a product of astrocal-widgets.
    """
    from astropy.io import fits

    from ..errors import AstrocalError

    path = Path(path)
    with fits.open(path) as hdul:
        header = hdul[0].header.copy()
        table = None
        if "SOURCES" in hdul:
            table = hdul["SOURCES"].data.copy()
    try:
        record = provenance_from_header(header, sources=table)
    except ValueError as exc:
        raise AstrocalError(f"{path}: {exc}") from None
    folders = _folders(path, record, root)
    inputs = []
    for f in record.inputs:
        where = _resolve(f, folders)
        intact = None
        if verify and where is not None and f.sha256:
            intact = content_hash(where) == f.sha256
        inputs.append(replace(f, path=where, intact=intact))
    return replace(record, inputs=tuple(inputs), path=str(path))


def _folders(path: Path, record: ProductRecord, root: str | os.PathLike | None) -> dict[str, Path]:
    """Where each role's names are relative to."""
    here = path.parent
    if record.product != "calibrated light":
        return {"frame": here, "calibration": here, "bias": here, "dark": here, "flat": here, "excluded": here}
    # A light is written to <output>/calibrated/<its sub-folders in the session>/: its output folder is
    # as many levels up as its recorded source has parts (two for a light from outside the session).
    source = record.file("light")
    relative = Path(source.name) if source is not None and source.name else None
    levels = 2 if relative is None or relative.is_absolute() else len(relative.parts)
    output = path.parents[min(levels, len(path.parents) - 1)]
    session = Path(root) if root is not None else output
    masters = output / "masters"
    return {"light": session, "bias": masters, "dark": masters, "flat": masters}


def _resolve(f: InputFile, folders: dict[str, Path]) -> str | None:
    if not f.name:
        return None
    candidate = Path(f.name)
    if not candidate.is_absolute():
        candidate = folders.get(f.role, Path.cwd()) / candidate
    return str(candidate) if candidate.is_file() else None


def trace_provenance(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                     verify: bool = True) -> ProductRecord:
    """A product's provenance followed to the masters it used and their own inputs.

    A calibrated light leads to its bias, dark and flat; a master flat to the dark flat or bias its
    frames were calibrated with; a defect map to its dark and flat. Each such input found on disk
    carries its own record (:attr:`InputFile.record`), traced the same way.

    Parameters
    ----------
    path : path-like
    root : path-like, optional
        A calibrated light's session folder (see :func:`read_provenance`).
    verify : bool, default True
        Hash every input found and say whether it is the file that was used.
    """
    return _trace(Path(path), root, verify, seen=set())


def _trace(path: Path, root, verify: bool, seen: set[str]) -> ProductRecord:
    record = read_provenance(path, root=root, verify=verify)
    seen = seen | {canonical_path(path)}
    inputs = []
    for f in record.inputs:
        if f.role in ("calibration", "bias", "dark", "flat") and f.path and canonical_path(f.path) not in seen:
            f = replace(f, record=_trace(Path(f.path), None, verify, seen))
        inputs.append(f)
    return replace(record, inputs=tuple(inputs))
