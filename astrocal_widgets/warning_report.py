"""Warnings as part of a report: collected during a run, counted by kind, said once in plain words.

Astropy warns once per file about headers that capture programs write slightly off the FITS
standard, and Python prints each warning with the source line that raised it; both read like
bugs. A command-line run (or a dashboard) wraps its work in :func:`collect_warnings` and shows
:meth:`WarningLog.lines` in its summary instead::

    with collect_warnings() as log:
        catalog = scan(folder)
    print(catalog.summary())
    for line in log.lines():
        print(" ", line)   # "8 files: non-standard number cards (BZERO, EXPOSURE, ...), read as numbers"

Outside such a block nothing changes: the Python API warns (or raises) exactly as before.
"""
from __future__ import annotations

import contextlib
import re
import threading
import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["collect_warnings", "WarningLog", "reading_file"]

# The file being read in this thread (or task), so a warning astropy raises while parsing a header
# is counted per file: astropy's messages do not name the file.
_CURRENT_FILE: ContextVar[str | None] = ContextVar("astrocal_current_file", default=None)


@contextlib.contextmanager
def reading_file(path: object) -> Iterator[None]:
    """Attribute warnings raised inside the block to the file ``path`` (see :class:`WarningLog`)."""
    token = _CURRENT_FILE.set(str(path))
    try:
        yield
    finally:
        _CURRENT_FILE.reset(token)


@dataclass
class _Kind:
    """One kind of warning: how often, in which files, and the details that vary (card names)."""

    text: str
    category: str
    files: set[str] = field(default_factory=set)
    times: int = 0
    details: dict[str, str] = field(default_factory=dict)  # e.g. card keyword -> an example value


# Astropy's verification report comes as a header line, one line per card and a footnote; only the
# card lines say something.
_IGNORED = (re.compile(r"^Verification reported errors:?\s*$"),
            re.compile(r"^Note: astropy\.io\.fits uses zero-based indexing"))
_CARD = re.compile(r"Card '(?P<key>[^']*)' is not FITS standard \((?P<why>.*?)\)\.?(\s+Fixed .*)?$", re.S)
_INVALID_VALUE = re.compile(r"invalid value string: '(?P<value>.*)'", re.S)
_NULL_PADDING = re.compile(r"Header block contains null bytes instead of spaces")


def _is_number(text: str) -> bool:
    try:
        float(text.strip().replace("D", "E").replace("d", "e"))
    except ValueError:
        return False
    return True


class WarningLog:
    """Warnings collected by :func:`collect_warnings`, grouped by kind (in the order first seen)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self._shown = 0

    def __len__(self) -> int:
        return len(self._kinds)

    def add(self, message: Warning | str, category: type[Warning] = UserWarning, file: str | None = None) -> None:
        """Count one warning (``file``: the file being read, when known)."""
        text = str(message).strip()
        if any(p.search(text) for p in _IGNORED):
            return
        name = category.__name__
        key, detail = (name, text), None
        card = _CARD.search(text)
        if card:
            invalid = _INVALID_VALUE.search(card["why"])
            value = invalid["value"].split("/")[0].strip() if invalid else ""  # astropy keeps the comment
            if invalid and _is_number(value):
                key = (name, "number cards")
            else:
                key = (name, f"cards ({re.sub(r'[:].*', '', card['why'])})")
            detail = (card["key"], value)
        elif _NULL_PADDING.search(text):
            key = (name, "nul padding")
        with self._lock:
            kind = self._kinds.get(key)
            if kind is None:
                kind = self._kinds[key] = _Kind(key[1] if key[1] != text else text, name)
            kind.times += 1
            if file:
                kind.files.add(file)
            if detail:
                kind.details.setdefault(*detail)

    def lines(self) -> list[str]:
        """One line per kind, e.g. ``"8 files: header padded with NUL bytes ..."`` (no source lines)."""
        with self._lock:
            kinds = list(self._kinds.values())
        return [_describe(kind) for kind in kinds]

    def unshown(self) -> list[str]:
        """The lines of kinds not returned by an earlier call (so a report shows each kind once)."""
        lines = self.lines()
        new, self._shown = lines[self._shown:], len(lines)
        return new


def _describe(kind: _Kind) -> str:
    count = (f"{len(kind.files)} file{'s' if len(kind.files) != 1 else ''}" if kind.files
             else f"{kind.times} time{'s' if kind.times != 1 else ''}")
    if kind.text == "number cards":
        keys = ", ".join(sorted(kind.details))
        key, value = next(iter(kind.details.items()))
        return (f"{count}: non-standard number cards ({keys}; e.g. {key} = {value.strip()}), read as numbers "
                "(the files are not changed)")
    if kind.text.startswith("cards ("):
        keys = ", ".join(sorted(kind.details))
        return f"{count}: header cards not in FITS standard form ({keys}): {kind.text[7:-1]}; read as astropy fixed them"
    if kind.text == "nul padding":
        return (f"{count}: header padded with NUL bytes instead of spaces (not FITS-compliant), read as usual "
                "(the files are not changed)")
    first = kind.text.splitlines()[0] if kind.text else kind.category
    return f"{count}: {first} ({kind.category})"


@contextlib.contextmanager
def collect_warnings() -> Iterator[WarningLog]:
    """Collect every warning raised inside the block (in any thread) instead of printing it.

    Warnings the active filters ignore stay ignored and ``error`` filters still raise; the others
    are counted every time (not once per source line), by kind and, where known, by file.

    Yields
    ------
    WarningLog
    """
    log = WarningLog()

    def record(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001 - signature fixed
        log.add(message, category, _CURRENT_FILE.get())

    with warnings.catch_warnings():
        # "default", "module" and "once" print the first occurrence per place: count every one instead.
        warnings.filters[:] = [("always",) + f[1:] if f[0] in ("default", "module", "once") else f
                               for f in warnings.filters]
        warnings.filterwarnings("always", append=True)  # what no filter matches (Python's "default")
        warnings.showwarning = record
        yield log
