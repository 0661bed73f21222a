"""One "Compare rejections" of a 24-megapixel bias set on the default crop: seconds, peak RSS, bytes read.

    python benchmarks/compare_rejections.py                       # the session benchmark's 10 bias frames
    python benchmarks/compare_rejections.py --frames DIR          # any bias (or dark) folder

By default the 10 bias frames of the whole-night benchmark (``benchmarks/session.py``, cached under
``/tmp/astrocal-bench/session/4000x6000-4lights``) are read, never written; without them, 10 bias frames
of 6000 x 4000 are simulated into a temporary folder (removed afterwards). Each comparison runs
``compare_rejections(set, "sigma", "winsorized_sigma")`` on the default centred crop; the first call
includes loading (and, the very first time, compiling) the kernels, so two are timed. Peak RSS is the
process's own (``ru_maxrss``), which includes the imports.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DATA_DIR

SESSION_BIAS = DEFAULT_DATA_DIR / "session" / "4000x6000-4lights" / "night" / "2022-04-10" / "BIAS"
SHAPE = (4000, 6000)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=Path, default=None, help="a folder of one bias or dark set")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import astrocal_widgets as aw
    from astrocal_widgets.io import READ_STATISTICS
    from astrocal_widgets.workflow import COMPARE_CROP, compare_rejections

    scratch = None
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
        for k in range(args.repeats):
            READ_STATISTICS.reset()
            start = time.perf_counter()
            result = compare_rejections(group, "sigma", "winsorized_sigma")
            seconds = time.perf_counter() - start
            whole = len(group) * shape[0] * shape[1] * 2
            print(f"run {k + 1}: {seconds:.2f} s, peak RSS {peak_rss_mib():.0f} MiB, read "
                  f"{READ_STATISTICS.bytes / 2**20:.0f} MiB ({READ_STATISTICS.rows} rows, "
                  f"{READ_STATISTICS.bytes / whole:.1%} of the set)")
        print(result.summary())
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
