"""The C heap of the process: hand the pages a finished phase freed back to the system (glibc only).

Bands and buffers below glibc's mmap threshold (32 MiB) come from the C heap, which keeps them when
they are freed, for the next allocation of that size. Full-size frames are larger and mapped afresh,
so they never reuse those pages: after the masters of a 24-megapixel night a quarter of a gigabyte
of free heap would sit under every light calibrated next. ``malloc_trim`` returns it, as dask's
workers do.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["glibc", "trim_heap"]


@functools.lru_cache(maxsize=1)
def glibc():
    """The C library if it is glibc (it has ``malloc_trim`` and ``mallopt``), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def trim_heap() -> bool:
    """Return the C heap's free pages to the system; False where the C library is not glibc."""
    libc = glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
