"""Where our integration time goes: reading vs kernel vs dask/writing, and how many cores are busy.

    python benchmarks/profile_integrate.py --frames 30 --rejection sigma
    setsid python benchmarks/profile_integrate.py --frames 100 --rejection sigma --nice -20   # busy machine
    python benchmarks/profile_integrate.py --frames 100 --rejection winsorized_sigma --skip-preload

Measured in this one process, after a warm-up (imports, numba cache), on the cached stack of
``benchmarks/integrate.py`` (warm page cache). Every figure is printed with the CPU time of the
process beside the wall time, and with the CPU time *other* processes used meanwhile, because a
shared 2-core machine makes wall times noisy.

1. read only: every band of every frame through ``read_band`` (the engine's reader), one thread and
   two threads; then the same bytes with a single ``readinto`` + one numba conversion pass (what a
   leaner reader could cost);
2. kernel only: ``kernels.integrate_band`` on bands already in memory, one thread and two threads,
   and with ``rejection="none"`` (load + sort + mean, no rejection) to split sorting from rejecting;
3. the pipeline as users run it (``open_frames`` -> ``integrate`` -> ``write_master``) with the reader,
   the kernel and the FITS writer wrapped to add up their time per thread, so that what is left is
   scheduling, idle cores and the rest.
"""
from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, FULL_SHAPE, cpu_busy_seconds, ensure_stack, prewarm  # noqa: E402


class Clock:
    """Wall, own CPU and others' CPU (cores) of a block."""

    def __enter__(self):
        self.b0 = cpu_busy_seconds()
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.c0 = r.ru_utime + r.ru_stime
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = r.ru_utime + r.ru_stime - self.c0
        self.others = max(0.0, (cpu_busy_seconds() - self.b0 - self.cpu) / self.wall)

    def __str__(self):
        return (f"wall {self.wall:6.2f} s  CPU {self.cpu:6.2f} s  ({self.cpu / self.wall:.2f} cores busy; "
                f"others {self.others:.2f} cores)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--rejection", default="sigma")
    p.add_argument("--shape", type=int, nargs=2, default=FULL_SHAPE)
    p.add_argument("--kind", default="bias")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--skip-preload", action="store_true", help="skip section 2 (holds the float32 stack)")
    p.add_argument("--repeats", type=int, default=2, help="pipeline runs in section 3")
    p.add_argument("--nice", type=int, default=0,
                   help="run at this niceness, in a session (scheduler autogroup) of its own where possible; "
                        "-20 (root) on a busy shared machine")
    args = p.parse_args(argv)
    if args.nice:
        try:
            os.setsid()
        except OSError:
            pass   # already a session or group leader: the current session's autogroup is changed
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(args.nice))
        except OSError:
            pass

    import dask  # noqa: PLC0415
    import numba  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    import astrocal_widgets as aw  # noqa: PLC0415
    from astrocal_widgets.integrate import kernels, master  # noqa: PLC0415
    from astrocal_widgets.io import cube as cube_mod  # noqa: PLC0415

    paths = ensure_stack(args.data_dir, args.kind, args.frames, tuple(args.shape), args.seed)
    prewarm(paths)
    n = len(paths)
    kw = dict(rejection=args.rejection, low=3.0, high=3.0, combine="average", weights=np.ones(n),
              rej_scale=np.ones(n), rej_offset=np.zeros(n), out_scale=np.ones(n), out_offset=np.zeros(n))
    # warm-up: JIT cache and imports
    kernels.integrate_band(np.random.default_rng(0).normal(500, 5, (n, 2, 64)).astype(np.float32), **kw)
    kernels.integrate_band(np.random.default_rng(0).normal(500, 5, (n, 2, 64)).astype(np.float32),
                           **{**kw, "rejection": "none"})

    cube = aw.open_frames(paths)
    srcs = [cube_mod._cached_source(Path(q))[1] for q in paths]
    splits = [(sum(cube.data.chunks[1][:i]), sum(cube.data.chunks[1][:i + 1])) for i in range(len(cube.data.chunks[1]))]
    print(f"{n} frames of {args.shape[0]} x {args.shape[1]}, {args.rejection}; {len(splits)} bands of "
          f"{max(b - a for a, b in splits)} rows; dask workers {dask.config.get('num_workers', None) or os.cpu_count()}, "
          f"NUMBA_NUM_THREADS {numba.config.NUMBA_NUM_THREADS}, CPUs {os.cpu_count()}")

    # 1. reading ------------------------------------------------------------------------------
    print("\n1. reading the frames (read_band over every band)")
    for workers in (1, 2):
        with Clock() as c:
            with ThreadPoolExecutor(workers) as ex:
                list(ex.map(lambda s: cube_mod.read_band(srcs, *s).shape, splits))
        print(f"   read_band, {workers} thread(s):            {c}")

    @numba.njit(nogil=True, cache=False)
    def _convert(raw, out, bzero):
        flat = out.reshape(-1)
        for k in range(raw.shape[0]):
            # big-endian int16 -> value, by hand (raw holds the bytes as (pixels, 2) uint8)
            flat[k] = np.float32(np.int16((np.uint16(raw[k, 0]) << 8) | np.uint16(raw[k, 1]))) + bzero

    def lean_band(span):
        y0, y1 = span
        width = args.shape[1]
        out = np.empty((n, y1 - y0, width), np.float32)
        raw = np.empty(((y1 - y0) * width, 2), np.uint8)
        for i, s in enumerate(srcs):
            with open(s.path, "rb", buffering=0) as f:
                f.seek(s.offset + y0 * width * 2)
                f.readinto(memoryview(raw).cast("B"))
            _convert(raw, out[i], np.float32(s.bzero))
        return out.shape

    lean_band(splits[0])
    for workers in (1, 2):
        with Clock() as c:
            with ThreadPoolExecutor(workers) as ex:
                list(ex.map(lean_band, splits))
        print(f"   readinto + 1 numba pass, {workers} thread(s): {c}")

    # 2. kernel only --------------------------------------------------------------------------
    if not args.skip_preload:
        print("\n2. kernel only (bands already in memory)")
        bands = [cube_mod.read_band(srcs, *s) for s in splits]
        for rej in (args.rejection, "none"):
            for workers in (1, 2):
                with Clock() as c:
                    with ThreadPoolExecutor(workers) as ex:
                        list(ex.map(lambda b: kernels.integrate_band(b, **{**kw, "rejection": rej})[0].shape, bands))
                print(f"   integrate_band {rej:<17} {workers} thread(s): {c}")
        del bands

    # 3. the pipeline, instrumented -----------------------------------------------------------
    print("\n3. open_frames -> integrate -> write_master, with per-thread timers")
    spent = collections.defaultdict(float)
    threads = set()
    lock = threading.Lock()

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                with lock:
                    spent[name] += time.perf_counter() - t0
                    threads.add(threading.get_ident())
        return wrapper

    orig = (cube_mod.read_band, kernels.integrate_band, master.write_fits_atomic)
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            spent.clear()
            threads.clear()
            cube_mod.read_band = timed("read_band", orig[0])
            kernels.integrate_band = timed("kernel", orig[1])
            master.write_fits_atomic = timed("fits write", orig[2])
            try:
                aw.io.sources._cached_open.cache_clear()   # headers are read inside the timer too
                with Clock() as c:
                    t0 = time.perf_counter()
                    cb = aw.open_frames(paths)
                    t_open = time.perf_counter() - t0
                    ds = aw.integrate(cb, rejection=args.rejection, low=3, high=3)
                    aw.write_master(ds, Path(tmp) / "m.fits", overwrite=True)
            finally:
                cube_mod.read_band, kernels.integrate_band, master.write_fits_atomic = orig
            busy = sum(v for k, v in spent.items() if k != "fits write")
            print(f"   run {rep + 1}: {c}")
            print(f"      open_frames {t_open:.2f} s; summed over threads: read_band {spent['read_band']:.2f} s, "
                  f"kernel {spent['kernel']:.2f} s; fits write {spent['fits write']:.2f} s; threads that ran tasks: "
                  f"{len(threads)}; thread-seconds not in read/kernel during compute: "
                  f"{2 * (c.wall - t_open - spent['fits write']) - busy:.2f} (of {2 * c.wall:.2f} available)")
    print(f"\npeak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
