"""A whole night at full size: ``astrocal calibrate`` against a Siril 1.0.6 script doing the same work.

The night (simulated once, cached): bias 10, darks 5 x 300 s, NINA 3 dark flats 6 x 1.5 s, flats 6
(filter L), lights N (default 4), uint16 FITS of 6000 x 4000 (24 MP, ``--size 24``) or 9576 x 6388
(61 MP, ``--size 61``).

Siril's script: ``convert`` each set; ``stack ... rej w 3 3 -nonorm`` for bias, darks and dark flats;
``preprocess flat -bias=<master dark flat>``; ``stack pp_flat rej w 3 3 -norm=mul``;
``preprocess light -dark=<master dark> -flat=<master flat> -cc=dark 3 3``.

Runs alternate (ours, Siril, ours, ...) ``--repeats`` times each; each run starts from no outputs.
Reported: median wall time and peak RSS (of the whole process tree, sampled every 20 ms), the
ratios, and the agreement of the calibrated lights in shape (``--agreement``: both tools again with
cosmetic correction off; each light divided by its median; RMS of the difference, leaving out the
pixels either tool's cosmetic correction changes).

    python benchmarks/session.py                      # 24 MP, 3 + 3 runs, agreement
    python benchmarks/session.py --size 61 --repeats 1
    python benchmarks/session.py --lights 16 --repeats 1 --no-siril     # scaling with the light count

Results go to ``benchmarks/results/session-<size>mp[-<lights>]/`` (JSON and Markdown).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from _common import (DEFAULT_DATA_DIR, HERE, machine_info, machine_lines, priority_popen_kwargs, siril_version,
                     write_json)

SIZES = {24: (4000, 6000), 61: (6388, 9576)}
COUNTS = {"bias": 10, "dark": 5, "flat": 6, "darkflat": 6}


class TreePeak(threading.Thread):
    """Peak RSS of a process and its children, sampled every 20 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        import psutil

        while self.running:
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            time.sleep(0.02)


#: CPUs the measured tools may use (``--cores``); None = all.
CORES: int | None = None
#: Niceness of the measured tools, each in its own session (``--nice``); 0 = as this process.
NICE = 0


def measure(command: list[str], cwd: Path, log: Path) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (bytes) and exit code of a command (on ``CORES`` CPUs when set)."""
    if CORES is not None:
        command = ["taskset", "-c", ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:CORES])] + command
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                **priority_popen_kwargs(NICE))
        monitor = TreePeak(proc.pid)
        monitor.start()
        code = proc.wait()
        seconds = time.perf_counter() - t0
        monitor.running = False
        monitor.join()
    return seconds, monitor.peak, code


def simulate(night: Path, shape: tuple[int, int], n_lights: int) -> None:
    """The night, written once (kept between runs of the benchmark)."""
    marker = night / ".complete"
    if marker.exists():
        return
    import astrocal_widgets as aw
    from astrocal_widgets.simulate.scene import DEFAULT_FILTERS

    if night.exists():
        shutil.rmtree(night)
    t0 = time.perf_counter()
    aw.simulate_session(night, shape=shape, counts={**COUNTS, "light": n_lights},
                        filters=[DEFAULT_FILTERS["mono"][0]], overwrite=True)
    for path in night.rglob("*_60.00s_*.fits"):  # the session also shoots 60 s darks: not in this night
        path.unlink()
    marker.write_text(f"simulated in {time.perf_counter() - t0:.0f} s\n")


def frames_by_set(night: Path) -> dict[str, list[Path]]:
    from astrocal_widgets import scan

    catalog = scan(night)
    out = {}
    for kind in ("bias", "dark", "darkflat", "flat", "light"):
        groups = catalog.groups(kind)
        assert len(groups) == 1, f"{kind}: {len(groups)} sets"
        out[kind] = [Path(p) for p in groups[0].paths]
    return out


def siril_script(sets: dict[str, list[Path]], work: Path, cosmetic: bool, float_copies: bool = False) -> Path:
    """Folders of links to the frames, and the script doing what ``astrocal calibrate`` does.

    ``float_copies``: give Siril 32-bit float copies scaled to [0, 1] instead of links to the 16-bit
    files. Its 16-bit path rounds the Winsorizing bounds to whole ADU, which on a 5-frame stack
    changes which values it rejects; its float path does not.
    """
    from astropy.io import fits

    if work.exists():
        shutil.rmtree(work)
    for kind, paths in sets.items():
        folder = work / kind
        folder.mkdir(parents=True)
        for i, p in enumerate(paths):
            target = folder / f"{kind}_{i + 1:05d}.fits"
            if float_copies:
                with fits.open(p) as hdul:
                    header = hdul[0].header.copy()
                    data = (hdul[0].data.astype(np.float32) / np.float32(65535))
                for key in ("BZERO", "BSCALE"):
                    header.remove(key, ignore_missing=True)
                fits.PrimaryHDU(data, header=header).writeto(target)
            else:
                target.symlink_to(p)
    cc = " -cc=dark 3 3" if cosmetic else ""
    lines = ["requires 1.0.0", "setext fits"]
    for kind in sets:
        lines += [f"cd {kind}", f"convert {kind} -out=../process", "cd .."]
    lines += ["cd process",
              "stack bias rej w 3 3 -nonorm -out=../master_bias",
              "stack dark rej w 3 3 -nonorm -out=../master_dark",
              "stack darkflat rej w 3 3 -nonorm -out=../master_darkflat",
              "preprocess flat -bias=../master_darkflat",
              "stack pp_flat rej w 3 3 -norm=mul -out=../master_flat",
              f"preprocess light -dark=../master_dark -flat=../master_flat{cc}",
              ""]
    script = work / "night.ssf"
    script.write_text("\n".join(lines))
    return script


#: The Siril script's rejection for every master (``rej w 3 3``), for like-for-like comparisons.
SIRIL_REJECTION = ["--rejection", "winsorized_sigma", "--low", "3", "--high", "3"]


def run_ours(night: Path, out: Path, logs: Path, tag: str, cosmetic: bool = True,
             extra: list[str] | None = None) -> tuple[float, int]:
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "astrocal_widgets", "calibrate", str(night), "--output", str(out)]
    if not cosmetic:
        command.append("--no-cosmetic")
    command += extra or []
    seconds, peak, code = measure(command, out.parent, logs / f"ours-{tag}.log")
    if code != 0:
        raise RuntimeError(f"astrocal calibrate failed, see {logs / f'ours-{tag}.log'}")
    return seconds, peak


def run_siril(sets, work: Path, logs: Path, tag: str, cosmetic: bool = True,
              float_copies: bool = False) -> tuple[float, int]:
    script = siril_script(sets, work, cosmetic, float_copies)
    seconds, peak, code = measure(["siril-cli", "-d", str(work), "-s", str(script)], work, logs / f"siril-{tag}.log")
    if code != 0 or not list((work / "process").glob("pp_light_*.fit*")):
        raise RuntimeError(f"Siril failed, see {logs / f'siril-{tag}.log'}")
    return seconds, peak


def _light_pairs(ours_dir: Path, siril_dir: Path, n: int) -> list[tuple[Path, Path]]:
    ours = sorted((ours_dir / "calibrated").rglob("*_calibrated.fits"))
    siril = sorted((siril_dir / "process").glob("pp_light_*.fit*"))
    assert len(ours) == len(siril) == n, (len(ours), len(siril))
    return list(zip(ours, siril))


def _read(path: Path) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path) as hdul:
        data = hdul[0].data.astype(np.float32)
        bottom_up = str(hdul[0].header.get("ROWORDER", "")).upper() == "BOTTOM-UP"
    return data[::-1] if bottom_up else data


def _siril_corrections(work: Path, index: int, light: np.ndarray) -> np.ndarray:
    """Pixels Siril's preprocess changed beyond its own formula ``(raw - dark) / flat * norm``.

    Siril 1.0.6 turns its cosmetic correction on whenever ``-dark=`` is given (hot pixels at 3
    sigma; ``-cc=dark`` only sets the thresholds), so its lights cannot be made without it. The
    corrected pixels are found by redoing Siril's formula with Siril's own masters: elsewhere the
    two agree to float32 rounding.
    """
    raw = _read((work / "light" / f"light_{index:05d}.fits").resolve()).astype(np.float64)
    if np.nanmax(raw) <= 1.0:  # a float copy scaled to [0, 1]
        raw *= 65535
    dark = _read(work / "master_dark.fits").astype(np.float64) * 65535
    flat = _read(work / "master_flat.fits").astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        formula = (raw - dark) / flat
        norm = np.nanmedian(light / formula)
        off = np.abs(light - norm * formula)
    return ~(off <= 1e-5 * np.nanmedian(light))


def agreement(root: Path, sets, logs: Path, n_lights: int, *, rerun: bool = True,
              float_copies: bool = False) -> dict:
    """RMS difference of the lights divided by their medians, cosmetic correction off where possible.

    Left out: the pixels either tool's cosmetic correction changes (ours: the lights made with and
    without it differ; Siril's: see :func:`_siril_corrections`, its correction cannot be turned
    off), and the pixels Siril clipped (its 32-bit lights are clipped to [0, 1]: saturated stars,
    and negative values at 0), which hold no calibration to compare.
    """
    night = root / "night"
    ours_cc, ours_raw = root / "agree-ours-cc", root / "agree-ours"
    siril_raw = root / ("agree-siril-float" if float_copies else "agree-siril")
    if rerun:
        # the script's rejection for every master, so the masters are made the same way
        run_ours(night, ours_cc, logs, "agree-cc", cosmetic=True, extra=SIRIL_REJECTION)
        run_ours(night, ours_raw, logs, "agree", cosmetic=False, extra=SIRIL_REJECTION)
        run_siril(sets, siril_raw, logs, "agree-float" if float_copies else "agree", cosmetic=False,
                  float_copies=float_copies)
    rows = []
    pairs = zip(_light_pairs(ours_cc, siril_raw, n_lights), _light_pairs(ours_raw, siril_raw, n_lights))
    for index, ((o_cc, _), (o, s)) in enumerate(pairs, start=1):
        a, b = _read(o), _read(s)
        by_siril = _siril_corrections(siril_raw, index, b)
        if np.nanmean(np.abs(a / np.nanmedian(a) - b / np.nanmedian(b))) > \
                np.nanmean(np.abs(a / np.nanmedian(a) - b[::-1] / np.nanmedian(b))):
            b, by_siril = b[::-1], by_siril[::-1]  # Siril stored the rows the other way up
            flip = True
        else:
            flip = False
        ra, rb = a / np.nanmedian(a), b / np.nanmedian(b)
        by_ours = _read(o_cc) != a
        clipped = (b <= 0) | (b >= 1)
        flagged = by_ours | by_siril
        keep = ~flagged & ~clipped & np.isfinite(ra) & np.isfinite(rb)
        diff = (ra - rb)[keep]
        rows.append({"light": o.name, "rms_percent": float(100 * np.sqrt(np.mean(diff ** 2))),
                     "p99_abs_percent": float(100 * np.quantile(np.abs(diff), 0.99)),
                     "flagged_pixels": int(flagged.sum()), "flagged_by_siril": int(by_siril.sum()),
                     "flagged_by_ours": int(by_ours.sum()),
                     "clipped_pixels": int((clipped & ~flagged).sum()), "rows_flipped": flip})
    return {"lights": rows, "max_rms_percent": max(r["rms_percent"] for r in rows),
            "siril_input": "32-bit float copies" if float_copies else "the 16-bit files"}


def _agreement_lines(found: dict) -> list[str]:
    lines = [f"Agreement (Siril given {found.get('siril_input', 'the 16-bit files')}; lights divided by their "
             "medians; pixels either tool's cosmetic correction changed, and pixels Siril clipped, left out):", "",
             "| light | RMS difference (%) | 99th percentile (%) | left out: ours / Siril's corrections | clipped by Siril |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['light']} | {r['rms_percent']:.4f} | {r['p99_abs_percent']:.4f} | "
              f"{r.get('flagged_by_ours', '')} / {r.get('flagged_by_siril', '')} | {r.get('clipped_pixels', '')} |"
              for r in found["lights"]]
    return lines


def write_report(result: dict, out_dir: Path, command: str) -> list[str]:
    """``result.json`` and ``result.md`` in ``out_dir``; returns the Markdown lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "result.json", result)
    shape, summary = result["shape"], result["summary"]
    lines = [f"# A night of {shape[1]} x {shape[0]} frames, {result['lights']} lights", "",
             f"Command: `{command}`", ""] + machine_lines(result["machine"])
    if result.get("nice"):
        lines.append(f"every run of both tools at niceness {result['nice']} in its own session (scheduler "
                     "autogroup), so that other processes on a shared machine yield the CPUs to it")
    lines += ["", "| tool | median wall (s) | median peak RSS (GiB) | runs |", "|---|---|---|---|"]
    for tool, s in summary.items():
        lines.append(f"| {tool} | {s['seconds']:.1f} | {s['peak_gib']:.2f} | "
                     + ", ".join(f"{r['seconds']:.1f} s / {r['peak_gib']:.2f} GiB" for r in s["runs"]) + " |")
    if "time_ratio" in result:
        lines += ["", f"ours / Siril: time {result['time_ratio']:.2f} x, peak memory {result['memory_ratio']:.2f} x"]
    if "agreement" in result:
        lines += [""] + _agreement_lines(result["agreement"])
    (out_dir / "result.md").write_text("\n".join(lines) + "\n")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, choices=sorted(SIZES), default=24, help="megapixels: 24 or 61")
    parser.add_argument("--shape", type=int, nargs=2, default=None, metavar=("ROWS", "COLUMNS"),
                        help="another frame size (overrides --size)")
    parser.add_argument("--lights", type=int, default=4, help="number of lights (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each tool (default 3)")
    parser.add_argument("--no-siril", action="store_true", help="time ours only")
    parser.add_argument("--cores", type=int, default=None,
                        help="run the tools on this many CPUs (taskset), e.g. 1 to measure the gain of 2")
    parser.add_argument("--like-siril", action="store_true",
                        help="time ours with the script's rejection for every master (Winsorized 3/3) "
                             "instead of the default auto rule")
    parser.add_argument("--agreement", action=argparse.BooleanOptionalAction, default=True,
                        help="compare the calibrated lights with Siril's (cosmetic correction off)")
    parser.add_argument("--agreement-only", action="store_true",
                        help="only the agreement runs (no timing), written to agreement.json/.md")
    parser.add_argument("--siril-float", action="store_true",
                        help="agreement with Siril given 32-bit float copies of the frames (its float path)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR / "session", help="scratch and cached night")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of both tools' runs, each in its own session and scheduler autogroup (e.g. "
                             "-20 as root on a shared machine, so that others' processes yield the CPUs to them)")
    args = parser.parse_args()
    global CORES, NICE
    CORES, NICE = args.cores, args.nice
    shape = tuple(args.shape) if args.shape else SIZES[args.size]
    name = f"{shape[0]}x{shape[1]}-{args.lights}lights"
    root = args.data / name
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    simulate(root / "night", shape, args.lights)
    sets = frames_by_set(root / "night")
    use_siril = not args.no_siril and shutil.which("siril-cli") is not None
    if args.agreement_only:
        found = agreement(root, sets, logs, args.lights, float_copies=args.siril_float)
        out_dir = HERE / "results" / f"session-{shape[0]}x{shape[1]}-{args.lights}lights"
        out_dir.mkdir(parents=True, exist_ok=True)
        tag = "agreement-float" if args.siril_float else "agreement"
        write_json(out_dir / f"{tag}.json", found)
        lines = [f"# Agreement with Siril ({found['siril_input']})", "", f"Command: `{' '.join(sys.argv)}`", ""]
        lines += _agreement_lines(found)
        (out_dir / f"{tag}.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return
    runs: dict[str, list[tuple[float, int]]] = {"ours": [], "siril": []}
    for k in range(args.repeats):
        runs["ours"].append(run_ours(root / "night", root / "ours", logs, str(k),
                                     extra=SIRIL_REJECTION if args.like_siril else None))
        print(f"ours  run {k + 1}: {runs['ours'][-1][0]:6.1f} s, peak {runs['ours'][-1][1] / 2**30:.2f} GiB", flush=True)
        if use_siril:
            runs["siril"].append(run_siril(sets, root / "siril", logs, str(k)))
            print(f"siril run {k + 1}: {runs['siril'][-1][0]:6.1f} s, peak {runs['siril'][-1][1] / 2**30:.2f} GiB",
                  flush=True)
    summary = {tool: {"seconds": statistics.median(s for s, _ in r), "peak_gib": statistics.median(p for _, p in r) / 2**30,
                      "runs": [{"seconds": s, "peak_gib": p / 2**30} for s, p in r]}
               for tool, r in runs.items() if r}
    result = {"shape": shape, "lights": args.lights, "counts": COUNTS, "summary": summary,
              "per_light_seconds": summary["ours"]["seconds"] / args.lights, "machine": machine_info(),
              "siril": siril_version() if use_siril else None}
    if use_siril:
        result["time_ratio"] = summary["ours"]["seconds"] / summary["siril"]["seconds"]
        result["memory_ratio"] = summary["ours"]["peak_gib"] / summary["siril"]["peak_gib"]
        if args.agreement:
            result["agreement"] = agreement(root, sets, logs, args.lights)
    result["ours_rejection"] = "winsorized_sigma 3/3 (--like-siril)" if args.like_siril else "auto"
    suffix = ("-like-siril" if args.like_siril else "") + (f"-{args.cores}cores" if args.cores else "")
    result["cores"] = args.cores or len(os.sched_getaffinity(0))
    result["nice"] = args.nice
    out_dir = HERE / "results" / f"session-{shape[0]}x{shape[1]}-{args.lights}lights{suffix}"
    lines = write_report(result, out_dir, " ".join(sys.argv))
    print("\n".join(lines))
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1, default=str)[:3000])


if __name__ == "__main__":
    main()
