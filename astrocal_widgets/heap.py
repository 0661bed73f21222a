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

__all__ = ["glibc", "trim_heap", "keep_freed_bands", "BAND_HEAP_BYTES"]


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


#: Free heap a thread's arena keeps for the next bands instead of handing it back at once.
BAND_HEAP_BYTES = 64 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's largest on 64-bit systems


def keep_freed_bands(keep: int = BAND_HEAP_BYTES) -> bool:
    """Let glibc keep up to ``keep`` bytes of freed heap for reuse, and serve blocks up to 32 MiB from it.

    By default glibc hands the top of a thread's heap back to the system as soon as a band is freed
    (its trim threshold follows the last large block), and the next band faults the same pages in
    again. On virtual machines that return freed memory to their host each such page costs a fault
    of the host: a 24-megapixel night took 1.23-1.37 million page faults and 4.7-5.3 s of system
    time this way, against 0.8-1.1 million and 3.6-3.9 s with 64 MiB kept, at the same peak (1.15-1.20
    against 1.16-1.17 GB). Phases still end with :func:`trim_heap`, which returns everything free.

    Returns
    -------
    bool
        Whether both were set (glibc only).
    """
    libc = glibc()
    return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
                and libc.mallopt(_M_TRIM_THRESHOLD, int(keep)))
