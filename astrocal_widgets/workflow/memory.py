"""Give memory freed by a finished step back to the system, so a long session stays within its limit."""
from __future__ import annotations

import gc
import os

from ..heap import glibc, trim_heap

__all__ = ["release_memory", "limit_heap_arenas", "HEAP_ARENAS"]

#: Heaps ("arenas") glibc's malloc may keep; by default up to 8 per core, one per new thread.
HEAP_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


def limit_heap_arenas(arenas: int = HEAP_ARENAS) -> bool:
    """Let glibc's malloc keep at most ``arenas`` heaps for the threads created from now on.

    Every thread that reads, integrates or calibrates (dask's, the light calibration's) otherwise gets
    a heap of its own, and freed bands stay scattered over all of them: a 24-megapixel night
    calibrated in a dashboard's kernel peaked at 1.7 GB with 2 threads, 1.3 GB with 2 heaps, in the
    same time. The setting is the process's (as ``MALLOC_ARENA_MAX`` is); other C libraries are left
    alone.

    Returns
    -------
    bool
        Whether the limit was set (glibc only).
    """
    libc = glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, int(arenas)))


#: Resident size above which :func:`release_memory` collects every generation.
FULL_COLLECT_ABOVE = 512 * 2**20


def _resident_bytes() -> int | None:
    """The process's resident set size (Linux), None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def release_memory() -> bool:
    """Collect garbage and hand the C heap's free pages back to the system.

    A step leaves freed bands and buffers in the C heap of each thread, which the process keeps:
    a kernel that has integrated a few 24-megapixel masters holds hundreds of megabytes it no
    longer uses, on top of which the next step's large arrays come. glibc's ``malloc_trim`` returns
    them (as dask's workers do); elsewhere only the garbage is collected.

    A full garbage collection walks every object of the session (a few tenths of a second in a
    dashboard); it runs when the process holds more than :data:`FULL_COLLECT_ABOVE` bytes, where
    frames in reference cycles matter. Below that the young generations are collected.

    Returns
    -------
    bool
        Whether the heap was trimmed (glibc only).
    """
    resident = _resident_bytes()
    gc.collect() if resident is None or resident > FULL_COLLECT_ABOVE else gc.collect(1)
    return trim_heap()
