"""Peak RSS of ``open_frames(paths).mean("frame").compute()`` beside the stack's size on disk and in float32.

For the closing note of the foundation issue: a lazy cube of 100 frames of 2000 x 3000 uint16
(1.2 GB on disk, 2.4 GB as float32) is reduced band by band, so the process never holds the stack.

    python benchmarks/open_frames_memory.py                    # 100 frames of 2000 x 3000
    python benchmarks/open_frames_memory.py --frames 30 100    # also shows that it does not grow with N

Each measurement runs in a fresh process (this script with ``--child``) and is reaped with ``os.wait4``:
the peak RSS is that process's ``ru_maxrss``, imports included (their share is printed separately, as
"after imports"). The parent imports no numpy, so it adds nothing to the child's figure (Linux carries
a parent's high-water mark into a child's ``ru_maxrss`` across fork/exec).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (DEFAULT_DATA_DIR, FULL_SHAPE, QUICK_SHAPE, REPO, command_line,  # noqa: E402
                     ensure_stack_isolated, machine_info, machine_lines, prewarm, resident_fraction,
                     rss_now_mb, maxrss_mb, write_json)


def child(paths_file: str, result: str) -> None:
    import resource  # noqa: PLC0415

    import dask  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    import astrocal_widgets as aw  # noqa: PLC0415

    paths = [p for p in Path(paths_file).read_text().split("\n") if p]
    after_imports = maxrss_mb()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    cube = aw.open_frames(paths)
    mean = cube.mean("frame").compute()
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    Path(result).write_text(json.dumps({
        "seconds": t1 - t0, "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "after_imports_mb": after_imports, "rss_now_mb": rss_now_mb(),
        "chunks": [len(c) for c in cube.data.chunks], "band_rows": max(cube.data.chunks[1]),
        "chunk_mb": cube.data.dtype.itemsize * len(paths) * max(cube.data.chunks[1]) * cube.shape[2] / 2**20,
        "mean_of_mean": float(np.asarray(mean).mean()), "dask_workers": dask.config.get("num_workers", None)
        or os.cpu_count(),
    }))


def measure(paths: list[Path], work: Path, tag: str) -> dict:
    paths_file = work / f"{tag}.txt"
    paths_file.write_text("\n".join(map(str, paths)) + "\n")
    result = work / f"{tag}.json"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(paths_file),
                             str(result)], stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode})")
    out = json.loads(result.read_text())
    out["peak_mb"] = usage.ru_maxrss / 1024
    out["process_wall_s"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=None, help="stack sizes (default 100)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--shape", type=int, nargs=2, default=None, metavar=("HEIGHT", "WIDTH"))
    p.add_argument("--kind", default="bias")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    shape = tuple(args.shape) if args.shape else (QUICK_SHAPE if args.quick else FULL_SHAPE)
    frames_list = args.frames or [100]
    repeats = 1 if args.quick else args.repeats
    out_stem = args.out or (REPO / "benchmarks" / "results" /
                            ("open_frames_memory-quick" if args.quick else "open_frames_memory"))
    info = machine_info()
    for line in machine_lines(info):
        print(line, flush=True)
    all_paths = ensure_stack_isolated(args.data_dir, args.kind, max(frames_list), shape, args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="astrocal-ofm-") as tmp:
        work = Path(tmp)
        for n in frames_list:
            paths = all_paths[:n]
            prewarm(paths)
            resident = resident_fraction(paths)
            runs = [measure(paths, work, f"{n}-{r}") for r in range(repeats)]
            disk = sum(q.stat().st_size for q in paths)
            row = {"frames": n, "shape": shape, "disk_bytes": disk, "float32_bytes": n * shape[0] * shape[1] * 4,
                   "peak_mb": max(r["peak_mb"] for r in runs), "after_imports_mb": max(r["after_imports_mb"] for r in runs),
                   "seconds": min(r["seconds"] for r in runs), "cpu_s": min(r["cpu_s"] for r in runs),
                   "chunks": runs[0]["chunks"], "band_rows": runs[0]["band_rows"], "chunk_mb": runs[0]["chunk_mb"],
                   "dask_workers": runs[0]["dask_workers"], "resident": resident, "runs": runs}
            rows.append(row)
            print(f"{n} frames: peak RSS {row['peak_mb']:.0f} MiB (after imports {row['after_imports_mb']:.0f}), "
                  f"{row['seconds']:.2f} s; on disk {disk / 2**20:.0f} MiB, float32 {row['float32_bytes'] / 2**20:.0f} MiB",
                  flush=True)
    lines = [f"Command: `{command_line()}`", ""] + [f"- {x}" for x in machine_lines(info)] + [
        f"- page cache: warm (files pre-read; {100 * min(1.0, min(r['resident'] or 0 for r in rows)):.0f}% resident "
        "before the runs)", f"- {repeats} run(s) per size in fresh processes; peak = max, time = min", "",
        "| frames | size on disk (MiB) | float32 stack (MiB) | peak RSS (MiB) | of which imports (MiB) | "
        "peak / float32 | bands x rows (chunk MiB) | time (s) |",
        "|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['frames']} | {r['disk_bytes'] / 2**20:.0f} | {r['float32_bytes'] / 2**20:.0f} | "
                     f"{r['peak_mb']:.0f} | {r['after_imports_mb']:.0f} | {r['peak_mb'] * 2**20 / r['float32_bytes']:.2f} | "
                     f"{r['chunks'][1]} x {r['band_rows']} ({r['chunk_mb']:.0f}) | {r['seconds']:.2f} |")
    text = "\n".join(lines) + "\n"
    write_json(Path(str(out_stem) + ".json"), {"command": command_line(), "machine": info, "rows": rows})
    Path(str(out_stem) + ".md").write_text(text)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
