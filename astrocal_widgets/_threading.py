"""Which threading layer numba's parallel kernels use, chosen before any of them runs.

The hot/cold pixel kernels are parallel and are called from worker threads (two lights at a time).
With numba's TBB layer and oneTBB 2022, a process that did this and may use fewer CPUs than the
machine has (``taskset``, a container's CPU limit, a batch job's allocation) hangs at exit after
its work is done (numba issue #10556). OpenMP has no such problem and is as fast here, so it comes
first when it is available; TBB, then numba's own work queue, remain the fallbacks. A choice made
with ``NUMBA_THREADING_LAYER`` or ``NUMBA_THREADING_LAYER_PRIORITY`` is left alone.
"""
from __future__ import annotations

import os

LAYER_PRIORITY = ["omp", "tbb", "workqueue"]


def usable_cpus() -> int:
    """The CPUs this process may run on (``taskset``, a container's or a batch job's allocation), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def prefer_openmp() -> bool:
    """Put OpenMP first in numba's threading-layer priority unless the user chose; True if set.

    Its threads then sleep as soon as a parallel kernel ends (``OMP_WAIT_POLICY=PASSIVE``, unless set):
    our kernels are called from several threads at once (two masters, two lights), and OpenMP's
    threads, spinning while they wait for the next kernel, took the CPUs from the other threads: a
    24-megapixel night of 16 lights on 2 CPUs took 13.6-14.0 s and 15.4 s of CPU spinning a while
    (OpenMP's default), 12.5-12.9 s and 15.1 s sleeping at once. Read when OpenMP starts, at the first
    parallel kernel.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "NUMBA_THREADING_LAYER" in os.environ or "NUMBA_THREADING_LAYER_PRIORITY" in os.environ:
        return False
    import numba

    numba.config.THREADING_LAYER_PRIORITY = list(LAYER_PRIORITY)  # read when the threads start
    return True


prefer_openmp()
