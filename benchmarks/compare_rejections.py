"""One "Compare rejections" of a 24-megapixel bias set on the default crop: seconds, peak RSS, bytes read.

    python benchmarks/compare_rejections.py                       # the session benchmark's 10 bias frames
    python benchmarks/compare_rejections.py --frames DIR          # any bias (or dark) folder
    python benchmarks/compare_rejections.py --flats               # the night's flats (normalised)

By default the 10 bias frames of the whole-night benchmark (``benchmarks/session.py``, cached under
``/tmp/astrocal-bench/session/4000x6000-4lights``) are read, never written; without them, 10 bias frames
of 6000 x 4000 are simulated into a temporary folder (removed afterwards). Each comparison runs
``compare_rejections(set, "sigma", "winsorized_sigma")`` on the default centred crop; the first call
includes loading (and, the very first time, compiling) the kernels, so two are timed. Peak RSS is the
process's own (``ru_maxrss``), which includes the imports.

``--flats`` compares the cached night's 6 flats instead, calibrated by their master dark flat as the
dashboard does, with the flats' multiplicative normalisation: the master dark flat is first integrated
into a temporary library by another process (removed afterwards), so the peak RSS is the comparison's.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DATA_DIR

SESSION_NIGHT = DEFAULT_DATA_DIR / "session" / "4000x6000-4lights" / "night"
SESSION_BIAS = SESSION_NIGHT / "2022-04-10" / "BIAS"
SHAPE = (4000, 6000)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=Path, default=None, help="a folder of one bias or dark set")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--flats", action="store_true", help="the cached night's flats (needs that night)")
    args = parser.parse_args()

    import astrocal_widgets as aw
    from astrocal_widgets.workflow import COMPARE_CROP

    scratch = None
    if args.flats:
        flats(SESSION_NIGHT, args.repeats)
        return
    folder = args.frames or (SESSION_BIAS if SESSION_BIAS.is_dir() else None)
    if folder is None:
        scratch = Path(tempfile.mkdtemp(prefix="astrocal-compare-"))
        print(f"simulating 10 bias frames of {SHAPE[1]} x {SHAPE[0]} into {scratch}")
        aw.simulate_stack(scratch, "bias", 10, shape=SHAPE, seed=0)
        folder = scratch
    try:
        group = aw.scan(folder).groups()[0]
        shape = (int(group.table["height"].iloc[0]), int(group.table["width"].iloc[0]))
        print(f"{group.label}: {len(group)} frames of {shape[1]} x {shape[0]}; crop {COMPARE_CROP} x {COMPARE_CROP}")
        print(f"after imports and scan: peak RSS {peak_rss_mib():.0f} MiB")
        print(timed_comparisons(group, shape, args.repeats, "").summary())
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def timed_comparisons(group, shape: tuple[int, int], repeats: int, what: str, **options):
    """``repeats`` comparisons of sigma and Winsorized sigma on ``group``, each timed with what it read."""
    from astrocal_widgets.io import READ_STATISTICS
    from astrocal_widgets.workflow import compare_rejections

    whole = len(group) * shape[0] * shape[1] * 2
    for k in range(repeats):
        READ_STATISTICS.reset()
        start = time.perf_counter()
        result = compare_rejections(group, "sigma", "winsorized_sigma", **options)
        seconds = time.perf_counter() - start
        print(f"run {k + 1}: {seconds:.2f} s, peak RSS {peak_rss_mib():.0f} MiB, read "
              f"{READ_STATISTICS.bytes / 2**20:.0f} MiB{what} ({READ_STATISTICS.rows} rows, "
              f"{READ_STATISTICS.bytes / whole:.1%} of the set)")
    return result


def flats(night: Path, repeats: int) -> None:
    """The night's flats compared, after their master dark flat is made into a temporary library."""
    import astrocal_widgets as aw

    if not night.is_dir():
        raise SystemExit(f"{night}: no cached night (python benchmarks/session.py simulates it)")
    catalog = aw.scan(night)
    library = Path(tempfile.mkdtemp(prefix="astrocal-compare-library-"))
    try:
        start = time.perf_counter()
        # In a child process, so this process's peak RSS is the comparison's (and the imports').
        code = ("import sys, astrocal_widgets as aw; from astrocal_widgets.workflow import integrate_master, "
                "save_master; g = aw.scan(sys.argv[1]).groups('darkflat')[0]; "
                "save_master(integrate_master(g), sys.argv[2])")
        subprocess.run([sys.executable, "-c", code, str(night), str(library)], check=True)
        print(f"master dark flat into a temporary library (another process): {time.perf_counter() - start:.1f} s; "
              f"this process after imports and scan: peak RSS {peak_rss_mib():.0f} MiB")
        group = catalog.groups("flat")[0]
        shape = (int(group.table["height"].iloc[0]), int(group.table["width"].iloc[0]))
        print(timed_comparisons(group, shape, repeats, " of flats", library=library, night=catalog).summary())
    finally:
        shutil.rmtree(library, ignore_errors=True)


if __name__ == "__main__":
    main()
