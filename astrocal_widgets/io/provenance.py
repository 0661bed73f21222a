"""What a product was made from: content hashes of files, and paths that survive a FITS header.

Every product (master, calibrated light, defect map) records its inputs by path and by content
hash, so that a rerun can tell an output made from exactly these inputs (reuse it) from one made
from something else (refuse, or rebuild when asked). The hash is SHA-256 of the file's bytes.
"""
from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, unquote

__all__ = ["content_hash", "header_path", "path_from_header", "canonical_path"]

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
        return _hash(*key)


_LOCKS: dict[tuple, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


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
