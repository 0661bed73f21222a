"""Give memory freed by a finished step back to the system, so a long session stays within its limit."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc

__all__ = ["release_memory"]


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or None on other C libraries (macOS, Windows, musl)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_memory() -> bool:
    """Collect garbage and hand the C heap's free pages back to the system.

    A step leaves freed bands and buffers in the C heap of each thread, which the process keeps:
    a kernel that has integrated a few 24-megapixel masters holds hundreds of megabytes it no
    longer uses, on top of which the next step's large arrays come. glibc's ``malloc_trim`` returns
    them (as dask's workers do); elsewhere only the garbage is collected.

    Returns
    -------
    bool
        Whether the heap was trimmed (glibc only).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
