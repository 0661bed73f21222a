"""Integration benchmark: astrocal-widgets against Siril and ccdproc, on the same files, same run.

The issue's requirement, verbatim:

    30 frames of 2000 x 3000 uint16 FITS and a 100-frame variant, sigma and Winsorized sigma, wall time
    and peak RSS for this project, Siril and ccdproc.combine measured in the same run, alternating, and
    printed as ratios (ours counted from `open_frames` to the written master, interpreter start-up
    excluded; Siril's whole run). Targets on 2 cores: at most 1.0 x Siril's time, at least 6 x faster
    than ccdproc, peak RSS under 1 GB for the 100-frame stack and not growing with the number of
    frames.

Run it (not a test)::

    python benchmarks/integrate.py                       # 30 and 100 frames, 3 repeats (~10-15 min)
    python benchmarks/integrate.py --quick               # smoke run on 240 x 320 frames
    python benchmarks/integrate.py --frames 30 --repeats 5
    # as in docs/benchmarks.md (shared machine; bottleneck for ccdproc only):
    pip install --target /tmp/bench-bottleneck bottleneck
    python benchmarks/integrate.py --nice -20 --max-wait 15 --ccdproc-pythonpath /tmp/bench-bottleneck

How each peer is measured
-------------------------
Every measurement is a fresh process, started by this script and reaped with ``os.wait4`` so that
its own peak RSS (``ru_maxrss``) and CPU time come from the kernel, not from polling.

* **ours** (``--child ours``): imports, then a warm-up integration of a tiny stack of other files
  (numba kernels loaded from the cache, astropy's FITS writer imported), then the timer runs from
  ``open_frames(paths)`` to ``write_master(...)`` returning. Interpreter start-up, imports and warm-up
  are outside the timer; the peak RSS is the process's (they are inside it, about 200 MB).
  Default settings: dask's threaded scheduler with one worker per CPU.
* **Siril** (``siril-cli -s script``): the whole ``siril-cli`` run is timed: start-up (about 0.15 s),
  ``convert`` (for FITS input it only makes symbolic links, so Siril reads the 16-bit originals
  itself), ``stack <seq> rej s|w 3 3 -nonorm`` and saving its 32-bit result. Siril gets a private copy
  of the user's configuration (``-i``) so that other Siril runs on the machine cannot change it.
* **ccdproc** (``--child ccdproc``): ``ccdproc.combine(files, method="average", sigma_clip=True,
  sigma_clip_low_thresh=3, sigma_clip_high_thresh=3, sigma_clip_func="median",
  sigma_clip_dev_func="std", unit="adu", output_file=...)`` with its defaults otherwise
  (``mem_limit`` 16 GB, float64). Timer from the call to the written file. ccdproc clips once
  (astropy ``sigma_clip`` with ``maxiters=1``; ``combine`` cannot pass another value), while Siril
  and we iterate to convergence: ccdproc does less work. It has no Winsorized sigma clipping, so the
  Winsorized rows are compared with Siril only.

Before each run the script waits (up to ``--max-wait`` s) until other processes use less than
``--quiet-below`` cores, since others may share the machine; ``--nice -20`` (root) runs every peer at
the highest priority, which on a busy shared machine is the nearest thing to an idle one.

The peers run alternately (ours, Siril, ccdproc, ours, Siril, ccdproc, ...) on the same files. The
files are read once before the first run, so every run finds them in the page cache ("warm"); the
script checks this with ``fincore`` before each run and records it. It also records how much CPU
*other* processes used during each run (``/proc/stat`` minus the run's own CPU time), because on a
shared 2-core machine that is the main source of noise.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (DEFAULT_DATA_DIR, FULL_SHAPE, QUICK_SHAPE, REPO, command_line,  # noqa: E402
                     cpu_busy_seconds, ensure_stack_isolated, machine_info, machine_lines, maxrss_mb, prewarm,
                     priority_popen_kwargs, resident_fraction, rss_now_mb, wait_for_quiet, warmup_stack, write_json)

REJECTIONS = ("sigma", "winsorized_sigma")
SIRIL_CODES = {"sigma": "s", "winsorized_sigma": "w"}
PEERS = ("ours", "siril", "ccdproc")
TARGET_SIRIL_RATIO = 1.0
TARGET_CCDPROC_SPEEDUP = 6.0
TARGET_RSS_MB = 1000.0   # "under 1 GB": 10^9 bytes is 954 MiB; both are printed


# --- children ----------------------------------------------------------------------------------

def _child_ours(args) -> dict:
    import gc  # noqa: PLC0415
    import resource  # noqa: PLC0415

    import dask  # noqa: PLC0415
    import numba  # noqa: PLC0415

    import astrocal_widgets as aw  # noqa: PLC0415

    paths = Path(args.paths_file).read_text().split("\n")
    paths = [p for p in paths if p]
    warm = Path(args.warmup_file).read_text().split("\n")
    warm = [p for p in warm if p]
    out = Path(args.output)
    # Warm-up on other (tiny) files: imports, numba cache load, FITS writer; no data-specific cache.
    t0 = time.perf_counter()
    ds = aw.integrate(aw.open_frames(warm), rejection=args.rejection, low=args.low, high=args.high)
    aw.write_master(ds, out.with_name(out.stem + "-warmup.fits"), overwrite=True)
    warmup_s = time.perf_counter() - t0
    del ds
    gc.collect()
    rss_before = rss_now_mb()
    peak_before = maxrss_mb()

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    b0 = cpu_busy_seconds()
    t0 = time.perf_counter()
    cube = aw.open_frames(paths)
    t_open = time.perf_counter()
    ds = aw.integrate(cube, rejection=args.rejection, low=args.low, high=args.high)
    t_graph = time.perf_counter()
    aw.write_master(ds, out, overwrite=True)
    t1 = time.perf_counter()
    b1 = cpu_busy_seconds()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {
        "seconds": t1 - t0, "section_others_cores": max(0.0, (b1 - b0 - cpu) / (t1 - t0)),
        "open_s": t_open - t0, "integrate_graph_s": t_graph - t_open, "compute_write_s": t1 - t_graph,
        "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
        "rss_before_mb": rss_before, "peak_before_mb": peak_before, "peak_mb": maxrss_mb(),
        "warmup_s": warmup_s, "bands": len(cube.data.chunks[1]), "band_rows": max(cube.data.chunks[1]),
        "dask_workers": dask.config.get("num_workers", None) or os.cpu_count(),
        "dask_scheduler": dask.config.get("scheduler", None) or "threads (default)",
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
    }


def _child_ccdproc(args) -> dict:
    import resource  # noqa: PLC0415

    import astropy.stats  # noqa: F401, PLC0415
    import ccdproc  # noqa: PLC0415

    paths = [p for p in Path(args.paths_file).read_text().split("\n") if p]
    peak_before = maxrss_mb()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    b0 = cpu_busy_seconds()
    t0 = time.perf_counter()
    ccdproc.combine(paths, output_file=args.output, method="average", sigma_clip=True,
                    sigma_clip_low_thresh=args.low, sigma_clip_high_thresh=args.high,
                    sigma_clip_func="median", sigma_clip_dev_func="std", unit="adu",
                    overwrite_output=True)
    t1 = time.perf_counter()
    b1 = cpu_busy_seconds()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    from astropy.utils.compat.optional_deps import HAS_BOTTLENECK  # noqa: PLC0415

    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"seconds": t1 - t0, "cpu_s": cpu, "section_others_cores": max(0.0, (b1 - b0 - cpu) / (t1 - t0)),
            "peak_before_mb": peak_before, "peak_mb": maxrss_mb(), "bottleneck": bool(HAS_BOTTLENECK)}


def _child_agree(args) -> dict:
    pairs = json.loads(Path(args.paths_file).read_text())
    out = []
    for item in pairs:
        a = agreement(item["ours"], item["other"], scale_unit=(item["peer"] == "siril"))
        a.update({k: item[k] for k in ("frames", "rejection", "peer")})
        out.append(a)
    return {"agreement": out}


def child_main(args) -> None:
    child = {"ours": _child_ours, "ccdproc": _child_ccdproc, "agree": _child_agree}[args.child]
    Path(args.result).write_text(json.dumps(child(args)))


# --- running one measurement -------------------------------------------------------------------

_NICE = 0


def _popen_kwargs() -> dict:
    return priority_popen_kwargs(_NICE)


def _spawn(cmd: list[str], log_path: Path, cwd: Path | None = None, timeout: float | None = None,
           env: dict | None = None) -> dict:
    """Run cmd, reap it with wait4: wall time, the child's own peak RSS and CPU, others' CPU."""
    busy0 = cpu_busy_seconds()
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, env=env, **_popen_kwargs())
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    busy = cpu_busy_seconds() - busy0
    cpu = usage.ru_utime + usage.ru_stime
    return {"process_wall_s": wall, "process_cpu_s": cpu, "process_peak_mb": usage.ru_maxrss / 1024,
            "others_cores": max(0.0, (busy - cpu) / wall) if wall > 0 else 0.0,
            "returncode": proc.returncode}


def run_python_child(peer: str, paths_file: Path, warmup_file: Path, rejection: str, low: float,
                     high: float, work: Path, tag: str, timeout: float, env: dict | None = None) -> dict:
    result = work / f"{tag}.json"
    output = work / f"{tag}-master.fits"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", peer, "--paths-file", str(paths_file),
           "--warmup-file", str(warmup_file), "--rejection", rejection, "--low", str(low),
           "--high", str(high), "--output", str(output), "--result", str(result)]
    proc = _spawn(cmd, work / f"{tag}.log", timeout=timeout, env=env)
    if proc["returncode"] != 0 or not result.exists():
        raise RuntimeError(f"{peer} child failed ({proc['returncode']}); see {work / (tag + '.log')}:\n"
                           + (work / f"{tag}.log").read_text()[-3000:])
    out = json.loads(result.read_text())
    out.update(proc)
    # others' load during the timed section only (the process's imports run on one core, and other
    # processes fill the second one meanwhile: that says nothing about the measured section)
    out["process_others_cores"] = out["others_cores"]
    out["others_cores"] = out.get("section_others_cores", out["others_cores"])
    out["peak_mb"] = proc["process_peak_mb"]   # the kernel's figure (same as the child's own)
    out["output"] = str(output)
    return out


def run_siril(paths: list[Path], rejection: str, low: float, high: float, work: Path, tag: str,
              config: Path | None, timeout: float) -> dict:
    exe = shutil.which("siril-cli")
    run_dir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=work))
    src = run_dir / "in"
    src.mkdir()
    for i, p in enumerate(paths):
        os.symlink(os.path.abspath(p), src / f"frame_{i + 1:05d}.fits")
    # Siril's script parser takes quotes inside -out='...' literally: paths are given unquoted
    # (the scratch folder has no spaces).
    script = run_dir / "stack.ssf"
    script.write_text("\n".join([
        "requires 1.0.0", "setext fits", f"cd {src}", f"convert frame -out={run_dir / 'seq'}",
        f"cd {run_dir / 'seq'}",
        f"stack frame rej {SIRIL_CODES[rejection]} {low:g} {high:g} -nonorm -out={run_dir / 'result'}", ""]))
    cmd = [exe] + (["-i", str(config)] if config else []) + ["-d", str(run_dir), "-s", str(script)]
    out = _spawn(cmd, run_dir / "siril.log", timeout=timeout)
    result = run_dir / "result.fits"
    if out["returncode"] != 0 or not result.exists():
        raise RuntimeError(f"siril-cli failed ({out['returncode']}); log {run_dir / 'siril.log'}:\n"
                           + (run_dir / "siril.log").read_text()[-3000:])
    out.update({"seconds": out["process_wall_s"], "cpu_s": out["process_cpu_s"],
                "peak_mb": out["process_peak_mb"], "output": str(result)})
    log = (run_dir / "siril.log").read_text(errors="replace")
    for line in log.split("\n"):
        if "parallel blocks" in line or "memory maximum" in line or "Pixel rejection in" in line:
            out.setdefault("siril_notes", []).append(line.replace("log: ", "").strip())
    shutil.rmtree(src)
    shutil.rmtree(run_dir / "seq")
    return out


def siril_startup(work: Path, config: Path | None, repeats: int = 3) -> float:
    """Median wall time of a siril-cli run that does nothing (its fixed start-up cost)."""
    run_dir = Path(tempfile.mkdtemp(prefix="siril-startup-", dir=work))
    script = run_dir / "noop.ssf"
    script.write_text("requires 1.0.0\n")
    times = []
    for _ in range(repeats):
        cmd = [shutil.which("siril-cli")] + (["-i", str(config)] if config else []) + \
              ["-d", str(run_dir), "-s", str(script)]
        times.append(_spawn(cmd, run_dir / "log.txt")["process_wall_s"])
    return statistics.median(times)


# --- agreement of the masters (outside every timer) ---------------------------------------------

def agreement(ours_path: str, other_path: str, scale_unit: bool) -> dict:
    import numpy as np  # noqa: PLC0415
    from astropy.io import fits  # noqa: PLC0415

    a = fits.getdata(ours_path, 0).astype(np.float64)
    b = fits.getdata(other_path, 0).astype(np.float64)
    if scale_unit and np.nanmax(b) <= 1.5:
        b = b * 65535.0   # Siril writes 32-bit results in [0, 1]
    d = np.abs(a - b)
    return {"median_abs_diff_adu": float(np.nanmedian(d)), "p99_9_abs_diff_adu": float(np.nanpercentile(d, 99.9)),
            "max_abs_diff_adu": float(np.nanmax(d)), "frac_pixels_over_0.01_adu": float(np.mean(d > 0.01))}


# --- the benchmark -----------------------------------------------------------------------------

def _log(*a):
    print(*a, flush=True)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    keys = sorted({(r["frames"], r["rejection"]) for r in runs}, key=lambda k: (k[0], REJECTIONS.index(k[1])))
    for frames, rejection in keys:
        for peer in PEERS:
            sel = [r for r in runs if r["frames"] == frames and r["rejection"] == rejection and r["peer"] == peer]
            if not sel:
                continue
            rows.append({
                "frames": frames, "rejection": rejection, "peer": peer, "runs": len(sel),
                "median_s": _median([r["seconds"] for r in sel]), "min_s": min(r["seconds"] for r in sel),
                "max_s": max(r["seconds"] for r in sel),
                "median_cpu_s": _median([r["cpu_s"] for r in sel]),
                "peak_mb": max(r["peak_mb"] for r in sel),
                "median_others_cores": _median([r["others_cores"] for r in sel]),
                "max_others_cores": max(r["others_cores"] for r in sel),
                "min_resident": min((r["resident_before"] for r in sel if r["resident_before"] is not None),
                                    default=None),
                "phases": ({k: _median([r[k] for r in sel]) for k in ("open_s", "integrate_graph_s",
                                                                         "compute_write_s")}
                           if peer == "ours" else None),
            })
    return rows


def ratios(runs: list[dict], rows: list[dict]) -> list[dict]:
    out = []
    for frames, rejection in sorted({(r["frames"], r["rejection"]) for r in rows},
                                    key=lambda k: (k[0], REJECTIONS.index(k[1]))):
        def row(peer):
            return next((r for r in rows if r["frames"] == frames and r["rejection"] == rejection
                         and r["peer"] == peer), None)

        def paired(peer_a, peer_b):
            # ratio a/b within each repeat (adjacent runs), then the median: robust to drifting load
            vals = []
            for rep in sorted({r["repeat"] for r in runs}):
                a = [r for r in runs if (r["frames"], r["rejection"], r["peer"], r["repeat"]) ==
                     (frames, rejection, peer_a, rep)]
                b = [r for r in runs if (r["frames"], r["rejection"], r["peer"], r["repeat"]) ==
                     (frames, rejection, peer_b, rep)]
                if a and b:
                    vals.append(a[0]["seconds"] / b[0]["seconds"])
            return _median(vals)

        ours, siril, ccd = row("ours"), row("siril"), row("ccdproc")
        out.append({
            "frames": frames, "rejection": rejection,
            "ours_over_siril": ours["median_s"] / siril["median_s"] if ours and siril else None,
            "ours_over_siril_paired": paired("ours", "siril") if ours and siril else None,
            "ours_cpu_over_siril_cpu": ours["median_cpu_s"] / siril["median_cpu_s"] if ours and siril else None,
            "ccdproc_over_ours": ccd["median_s"] / ours["median_s"] if ours and ccd else None,
            "ccdproc_over_ours_paired": paired("ccdproc", "ours") if ours and ccd else None,
            "ours_peak_mb": ours["peak_mb"] if ours else None,
            "siril_peak_mb": siril["peak_mb"] if siril else None,
            "ccdproc_peak_mb": ccd["peak_mb"] if ccd else None,
        })
    return out


def _f(v, fmt="{:.2f}", none="—"):
    return none if v is None else fmt.format(v)


PEER_NAMES = {"ours": "astrocal-widgets", "siril": "Siril (siril-cli)", "ccdproc": "ccdproc.combine"}
REJ_NAMES = {"sigma": "sigma", "winsorized_sigma": "Winsorized sigma"}


def markdown(payload: dict) -> str:
    rows, rat = payload["summary"], payload["ratios"]
    lines = [f"Command: `{payload['command']}`", ""]
    lines += [f"- {line}" for line in machine_lines(payload["machine"])]
    s = payload["settings"]
    lines += [f"- data: simulated `{s['kind']}` frames, {s['shape'][0]} x {s['shape'][1]} uint16 FITS "
              f"(BZERO 32768), seed {s['seed']}, in `{s['data_dir']}`; thresholds {s['low']:g}/{s['high']:g}",
              f"- page cache: {payload['page_cache']}",
              f"- Siril start-up alone (a script with only `requires`): {payload['siril_startup_s']:.2f} s "
              "(inside Siril's times below)" if payload.get("siril_startup_s") is not None else "- Siril: —"]
    if s.get("nice"):
        lines += [f"- every measured process ran in its own session at niceness {s['nice']} (process and "
                  "scheduler autogroup; all peers alike), so that other people's processes on this shared "
                  "machine yield the CPU to it"]
    if s.get("quiet_below_cores"):
        waits = [r.get("waited_for_quiet_s") or 0 for r in payload["runs"]]
        gave_up = sum(1 for w in waits if w >= s["max_wait_s"])
        lines += [f"- shared machine: before each run the script waited until other processes used less than "
                  f"{s['quiet_below_cores']:g} core for 2 s (at most {s['max_wait_s']:g} s; waited {sum(waits):.0f} s "
                  f"in all, gave up {gave_up} time(s)); \"others' load\" is the CPU other processes used during "
                  "each timed section, in cores"]
    if s.get("ccdproc_bottleneck"):
        lines += [f"- ccdproc: {s['ccdproc']}; bottleneck (used by astropy's sigma_clip when installed) "
                  f"available to it: {', '.join(map(str, s['ccdproc_bottleneck']))}"]
    if payload.get("skipped"):
        lines += [f"- skipped: {x}" for x in payload["skipped"]]
    lines += ["", "| frames | rejection | peer | runs | median wall (s) | min–max (s) | median CPU (s) | "
              "peak RSS (MiB) | others' load (cores, median / max) |",
              "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['frames']} | {REJ_NAMES[r['rejection']]} | {PEER_NAMES[r['peer']]} | {r['runs']} | "
                     f"{r['median_s']:.2f} | {r['min_s']:.2f}–{r['max_s']:.2f} | {r['median_cpu_s']:.2f} | "
                     f"{r['peak_mb']:.0f} | {r['median_others_cores']:.2f} / {r['max_others_cores']:.2f} |")
    lines += ["", "| frames | rejection | ours / Siril (medians) | ours / Siril (paired) | ours CPU / Siril CPU | "
              "ccdproc / ours (medians) | ccdproc / ours (paired) | peak RSS ours / Siril / ccdproc (MiB) |",
              "|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rat:
        lines.append(f"| {r['frames']} | {REJ_NAMES[r['rejection']]} | {_f(r['ours_over_siril'])} | "
                     f"{_f(r['ours_over_siril_paired'])} | {_f(r['ours_cpu_over_siril_cpu'])} | "
                     f"{_f(r['ccdproc_over_ours'], '{:.1f}')} | {_f(r['ccdproc_over_ours_paired'], '{:.1f}')} | "
                     f"{_f(r['ours_peak_mb'], '{:.0f}')} / {_f(r['siril_peak_mb'], '{:.0f}')} / "
                     f"{_f(r['ccdproc_peak_mb'], '{:.0f}')} |")
    ph = [r for r in rows if r["peer"] == "ours"]
    if ph:
        lines += ["", "Our timed section by phase (medians, s): "
                  + "; ".join(f"{r['frames']} frames {REJ_NAMES[r['rejection']]}: open_frames "
                              f"{r['phases']['open_s']:.2f}, integrate (graph) {r['phases']['integrate_graph_s']:.2f}, "
                              f"write_master (compute + write) {r['phases']['compute_write_s']:.2f}" for r in ph)]
    if payload.get("agreement"):
        lines += ["", "Agreement of the masters (last run of each; ADU): "
                  + "; ".join(f"{a['frames']} frames {REJ_NAMES[a['rejection']]} ours vs {a['peer']}: median "
                              f"{a['median_abs_diff_adu']:.3g}, 99.9% {a['p99_9_abs_diff_adu']:.3g}, max "
                              f"{a['max_abs_diff_adu']:.3g}" for a in payload["agreement"])]
    lines += ["", "Targets: " + "; ".join(payload["verdicts"])]
    return "\n".join(lines) + "\n"


def verdicts(rat: list[dict], rows: list[dict]) -> list[str]:
    out = []
    for r in rat:
        name = f"{r['frames']} frames {REJ_NAMES[r['rejection']]}"
        if r["ours_over_siril"] is not None:
            ok = r["ours_over_siril"] <= TARGET_SIRIL_RATIO
            out.append(f"{name}: ours/Siril {r['ours_over_siril']:.2f} (target <= {TARGET_SIRIL_RATIO:.1f}) "
                       f"{'MET' if ok else 'MISSED'}")
        if r["ccdproc_over_ours"] is not None:
            ok = r["ccdproc_over_ours"] >= TARGET_CCDPROC_SPEEDUP
            out.append(f"{name}: ccdproc/ours {r['ccdproc_over_ours']:.1f} (target >= {TARGET_CCDPROC_SPEEDUP:.0f}) "
                       f"{'MET' if ok else 'MISSED'}")
    ours = [r for r in rows if r["peer"] == "ours"]
    if ours:
        biggest = max(r["frames"] for r in ours)
        peak_big = max(r["peak_mb"] for r in ours if r["frames"] == biggest)
        ok = peak_big * 2**20 < 1e9
        out.append(f"peak RSS ours at {biggest} frames {peak_big:.0f} MiB = {peak_big * 2**20 / 1e9:.2f} GB "
                   f"(target < 1 GB) {'MET' if ok else 'MISSED'}")
        frames = sorted({r["frames"] for r in ours})
        if len(frames) > 1:
            lo = max(r["peak_mb"] for r in ours if r["frames"] == frames[0])
            growth = peak_big - lo
            out.append(f"peak RSS ours {frames[0]} -> {biggest} frames: {lo:.0f} -> {peak_big:.0f} MiB "
                       f"({growth:+.0f} MiB; target: not growing) "
                       f"{'MET' if growth <= 0.1 * lo else 'MISSED'}")
    return out


def print_table(payload: dict) -> None:
    print()
    print(markdown(payload))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, nargs="+", default=None, help="stack sizes (default 30 100)")
    p.add_argument("--repeats", type=int, nargs="+", default=[3],
                   help="runs of each peer per configuration; one value, or one per --frames value (default 3)")
    p.add_argument("--rejections", nargs="+", default=list(REJECTIONS), choices=REJECTIONS)
    p.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS)
    p.add_argument("--shape", type=int, nargs=2, default=None, metavar=("HEIGHT", "WIDTH"),
                   help=f"frame size (default {FULL_SHAPE[0]} {FULL_SHAPE[1]})")
    p.add_argument("--kind", default="bias", help="simulated frame kind (default bias)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--low", type=float, default=3.0)
    p.add_argument("--high", type=float, default=3.0)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"cache of generated frames, reused across runs (default {DEFAULT_DATA_DIR})")
    p.add_argument("--ccdproc-max-frames", type=int, default=30,
                   help="run ccdproc only on stacks up to this size (default 30: at 100 frames it holds "
                        "the whole float64 stack, several GB, see docs/benchmarks.md)")
    p.add_argument("--ccdproc-pythonpath", type=Path, default=None, metavar="DIR",
                   help="extra PYTHONPATH for the ccdproc runs only, e.g. a folder where bottleneck was installed "
                        "with 'pip install --target DIR bottleneck' (astropy's sigma_clip uses it when present)")
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_SHAPE[0]} x {QUICK_SHAPE[1]} "
                                                        "frames, 1 repeat")
    p.add_argument("--no-siril-config-copy", action="store_true",
                   help="let Siril use the user's configuration file directly")
    p.add_argument("--timeout", type=float, default=1800, help="per run, seconds")
    p.add_argument("--quiet-below", type=float, default=0.25, metavar="CORES",
                   help="before each run, wait until other processes use fewer cores than this (default 0.25; "
                        "0 disables the wait)")
    p.add_argument("--nice", type=int, default=0,
                   help="niceness for every measured process (inherited from this one); on a shared machine "
                        "-20 (root only) lets the peers run as if the machine were idle (default 0)")
    p.add_argument("--max-wait", type=float, default=300,
                   help="longest wait for a quiet machine before a run, seconds (default 300)")
    p.add_argument("--out", type=Path, default=None,
                   help="result file stem (default benchmarks/results/integrate[-quick]); .json and .md")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (masters, logs)")
    # internal: one measurement in a fresh process
    p.add_argument("--child", choices=("ours", "ccdproc", "agree"), help=argparse.SUPPRESS)
    p.add_argument("--paths-file", help=argparse.SUPPRESS)
    p.add_argument("--warmup-file", help=argparse.SUPPRESS)
    p.add_argument("--rejection", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_main(args)
        return 0

    shape = tuple(args.shape) if args.shape else (QUICK_SHAPE if args.quick else FULL_SHAPE)
    frames_list = args.frames or ([30] if args.quick else [30, 100])
    repeats = args.repeats if len(args.repeats) == len(frames_list) else [args.repeats[0]] * len(frames_list)
    if args.quick and args.repeats == [3]:
        repeats = [1] * len(frames_list)
    out_stem = args.out or (REPO / "benchmarks" / "results" / ("integrate-quick" if args.quick else "integrate"))
    if "siril" in args.peers and shutil.which("siril-cli") is None:
        p.error("siril-cli is not installed (Debian: apt-get install siril); or pass --peers ours ccdproc")

    global _NICE
    _NICE = args.nice
    info = machine_info()
    for line in machine_lines(info):
        _log(line)
    work = Path(tempfile.mkdtemp(prefix="astrocal-bench-run-"))
    config = None
    user_config = Path.home() / ".config" / "siril" / "siril.config"
    if "siril" in args.peers and not args.no_siril_config_copy and user_config.exists():
        config = work / "siril.config"
        shutil.copy(user_config, config)

    all_paths = ensure_stack_isolated(args.data_dir, args.kind, max(frames_list), shape, args.seed)
    startup = siril_startup(work, config) if "siril" in args.peers else None
    if startup is not None:
        _log(f"Siril start-up alone: {startup:.2f} s")

    runs: list[dict] = []
    skipped: list[str] = []
    last_outputs: dict = {}
    resident_seen = []
    for n, reps in zip(frames_list, repeats):
        paths = all_paths[:n]
        paths_file = work / f"paths-{n}.txt"
        paths_file.write_text("\n".join(str(q) for q in paths) + "\n")
        warm = warmup_stack(args.data_dir, args.kind, n, args.seed)
        warmup_file = work / f"warmup-{n}.txt"
        warmup_file.write_text("\n".join(str(q) for q in warm) + "\n")
        before = resident_fraction(paths)
        before = None if before is None else min(1.0, before)
        secs = prewarm(paths)
        _log(f"\n{n} frames: {sum(q.stat().st_size for q in paths) / 1e9:.2f} GB on disk; page cache held "
             f"{_f(before and 100 * before, '{:.0f}', '?')}% before a pre-read of {secs:.1f} s")
        peers = list(args.peers)
        if "ccdproc" in peers and n > args.ccdproc_max_frames:
            peers.remove("ccdproc")
            skipped.append(f"ccdproc at {n} frames (--ccdproc-max-frames {args.ccdproc_max_frames}): it loads "
                           f"the whole stack as float64 ({n * shape[0] * shape[1] * 8 / 1e9:.1f} GB) plus "
                           "sigma_clip temporaries")
        for rep in range(reps):
            for rejection in args.rejections:
                for peer in peers:
                    if peer == "ccdproc" and rejection != "sigma":
                        continue  # ccdproc has no Winsorized sigma clipping
                    tag = f"{peer}-{n}-{rejection}-{rep}"
                    waited, quiet_load = (wait_for_quiet(args.quiet_below, args.max_wait)
                                          if args.quiet_below > 0 else (0.0, None))
                    resident = resident_fraction(paths)
                    resident = None if resident is None else min(1.0, resident)
                    resident_seen.append(resident)
                    load = os.getloadavg()[0]
                    if peer == "siril":
                        r = run_siril(paths, rejection, args.low, args.high, work, tag, config, args.timeout)
                    else:
                        env = None
                        if peer == "ccdproc" and args.ccdproc_pythonpath:
                            env = dict(os.environ)
                            env["PYTHONPATH"] = os.pathsep.join(
                                [str(args.ccdproc_pythonpath)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
                        r = run_python_child(peer, paths_file, warmup_file, rejection, args.low, args.high,
                                             work, tag, args.timeout, env=env)
                    r.update({"peer": peer, "frames": n, "rejection": rejection, "repeat": rep,
                              "resident_before": resident, "loadavg_1min_before": load,
                              "waited_for_quiet_s": waited, "load_before_cores": quiet_load})
                    runs.append(r)
                    last_outputs[(n, rejection, peer)] = r["output"]
                    extra = ""
                    if peer == "ours":
                        extra = (f" [open {r['open_s']:.2f} + graph {r['integrate_graph_s']:.2f} + compute/write "
                                 f"{r['compute_write_s']:.2f}; RSS before timer {r['rss_before_mb']:.0f} MiB]")
                    _log(f"  {tag:<34} {r['seconds']:7.2f} s  CPU {r['cpu_s']:6.2f} s  peak {r['peak_mb']:6.0f} MiB"
                         f"  others {r['others_cores']:.2f} cores (waited {waited:.0f} s){extra}")

    # agreement of the masters, in a child too (the parent never imports numpy)
    pairs = [{"frames": n, "rejection": rejection, "peer": peer, "other": path,
              "ours": last_outputs[(n, rejection, "ours")]}
             for (n, rejection, peer), path in sorted(last_outputs.items())
             if peer != "ours" and (n, rejection, "ours") in last_outputs]
    agree = []
    if pairs:
        (work / "agree.txt").write_text(json.dumps(pairs))
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "agree", "--paths-file",
                        str(work / "agree.txt"), "--result", str(work / "agree.json")], check=True)
        agree = json.loads((work / "agree.json").read_text())["agreement"]

    rows = summarise(runs)
    rat = ratios(runs, rows)
    known = [x for x in resident_seen if x is not None]
    cache = (f"warm: the frames were read once before the first run, and before every run at least "
             f"{100 * min(known):.0f}% of their bytes were in the page cache (fincore); all peers read the same "
             f"warm files" if known else "unknown (fincore not available); files were pre-read once")
    payload = {
        "command": command_line(), "machine": info,
        "settings": {"kind": args.kind, "shape": shape, "seed": args.seed, "low": args.low, "high": args.high,
                     "frames": frames_list, "repeats": repeats, "data_dir": str(args.data_dir),
                     "ccdproc": "combine(method='average', sigma_clip=True, sigma_clip_func='median', "
                                "sigma_clip_dev_func='std', unit='adu'); defaults otherwise (float64, "
                                "mem_limit 16e9, maxiters=1)",
                     "ccdproc_bottleneck": sorted({r.get("bottleneck") for r in runs if r["peer"] == "ccdproc"}),
                     "ccdproc_pythonpath": str(args.ccdproc_pythonpath) if args.ccdproc_pythonpath else None,
                     "siril_config": "private copy of ~/.config/siril/siril.config" if config else "user's",
                     "quiet_below_cores": args.quiet_below, "max_wait_s": args.max_wait,
                     "nice": args.nice},
        "page_cache": cache, "siril_startup_s": startup, "skipped": skipped,
        "runs": runs, "summary": rows, "ratios": rat, "agreement": agree,
    }
    payload["verdicts"] = verdicts(rat, rows)
    write_json(Path(str(out_stem) + ".json"), payload)
    Path(str(out_stem) + ".md").write_text(markdown(payload))
    print_table(payload)
    _log(f"results: {out_stem}.json and {out_stem}.md (parent peak RSS {maxrss_mb():.0f} MiB: it imports "
         "no numpy, so it adds nothing to the children's ru_maxrss)")
    if args.keep:
        _log(f"scratch kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
