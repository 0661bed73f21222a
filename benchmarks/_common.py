"""Helpers shared by the benchmark scripts: test data, machine description, page cache, CPU load.

Only the standard library is imported at module level, so a benchmark child process pays for
nothing it does not use.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DATA_DIR = Path("/tmp/astrocal-bench")
FULL_SHAPE = (2000, 3000)
QUICK_SHAPE = (240, 320)
HERE = Path(__file__).resolve().parent
REPO = HERE.parent


# --- data --------------------------------------------------------------------------------------

def stack_dir(data_dir: Path, kind: str, shape: tuple[int, int], seed: int) -> Path:
    return Path(data_dir) / f"{kind}-{shape[0]}x{shape[1]}-seed{seed}"


def _list_frames(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.fits"))


def ensure_stack(data_dir: Path, kind: str, n: int, shape: tuple[int, int], seed: int,
                 log=print) -> list[Path]:
    """The first ``n`` frames of a cached simulated stack, generated (once) if missing.

    One stack of the largest size asked for serves every frame count: the 30-frame run uses the
    first 30 frames of the 100-frame stack. ``simulate_stack`` seeds each frame from ``seed`` and
    its index, so regenerating a larger stack keeps the first frames identical.
    """
    directory = stack_dir(data_dir, kind, shape, seed)
    frames = _list_frames(directory) if directory.is_dir() else []
    if len(frames) < n:
        import astrocal_widgets as aw  # noqa: PLC0415 - only when data must be written

        log(f"generating {n} {kind} frames of {shape[0]} x {shape[1]} in {directory} ...")
        t0 = time.perf_counter()
        aw.simulate_stack(directory, kind, n, shape=shape, seed=seed, overwrite=True)
        log(f"  done in {time.perf_counter() - t0:.1f} s")
        frames = _list_frames(directory)
    if len(frames) < n:
        raise RuntimeError(f"{directory} holds {len(frames)} frames, {n} needed")
    return frames[:n]


def warmup_stack(data_dir: Path, kind: str, n: int, seed: int) -> list[Path]:
    """A tiny stack (same frame count, 48 x 64 pixels, other files) to warm imports and the JIT."""
    return ensure_stack_isolated(Path(data_dir) / "warmup", kind, n, (48, 64), seed + 1000, quiet=True)


def ensure_stack_isolated(data_dir: Path, kind: str, n: int, shape: tuple[int, int], seed: int,
                          quiet: bool = False) -> list[Path]:
    """:func:`ensure_stack` in a child process, so that the caller never imports numpy & co.

    Why: Linux carries a process's peak RSS over ``fork``/``exec`` into the child's ``ru_maxrss``
    (the high-water mark of the parent's address space is recorded at ``exec``). A benchmark parent
    that imported astrocal_widgets (about 230 MB) would make every child, Siril included, report at
    least that much. The parent therefore stays a small pure-Python process.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "generate", str(data_dir), kind, str(n),
           str(shape[0]), str(shape[1]), str(seed)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL if quiet else None, text=True,
                         check=True)
    return [Path(p) for p in json.loads(out.stdout.strip().split("\n")[-1])]


# --- page cache --------------------------------------------------------------------------------

def resident_fraction(paths) -> float | None:
    """Fraction of the files' bytes in the page cache (``fincore``), or None if unavailable."""
    exe = shutil.which("fincore")
    if exe is None or not paths:
        return None
    total = 0
    resident = 0
    paths = [str(p) for p in paths]
    for i in range(0, len(paths), 200):
        out = subprocess.run([exe, "-b", "-n", "-r", "-o", "RES,SIZE", *paths[i:i + 200]],
                             capture_output=True, text=True)
        if out.returncode != 0:
            return None
        for line in out.stdout.split("\n"):
            parts = line.split()
            if len(parts) == 2:
                resident += int(parts[0])
                total += int(parts[1])
    return resident / total if total else None


def prewarm(paths) -> float:
    """Read every file once so that all measured runs see a warm page cache; -> seconds."""
    t0 = time.perf_counter()
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass
    return time.perf_counter() - t0


# --- CPU use of the whole machine (to see other people's load during a run) ---------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + (fields[7] if len(fields) > 7 else 0)
    return busy / _CLK_TCK


def wait_for_quiet(threshold: float, max_wait: float, window: float = 1.0, needed: int = 2) -> tuple[float, float]:
    """Wait until other processes use less than ``threshold`` cores for ``needed`` windows in a row.

    Returns (seconds waited, load in cores of the last window). Gives up after ``max_wait`` seconds
    (the run then goes ahead and its "others" column shows the load it met).
    """
    t0 = time.perf_counter()
    quiet = 0
    load = 0.0
    while True:
        b0 = cpu_busy_seconds()
        time.sleep(window)
        load = (cpu_busy_seconds() - b0) / window
        quiet = quiet + 1 if load < threshold else 0
        waited = time.perf_counter() - t0
        if quiet >= needed or waited >= max_wait:
            return waited, load


# --- description of the machine ------------------------------------------------------------------

def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version(module)
    except Exception:
        return None


def siril_version() -> str | None:
    exe = shutil.which("siril-cli")
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).strip() or None


def engine_digest() -> str:
    """Short hash of the engine's sources (io/ and integrate/): other people edit them between runs."""
    import hashlib  # noqa: PLC0415

    h = hashlib.sha1()
    pkg = REPO / "astrocal_widgets"
    for path in sorted(list((pkg / "io").glob("*.py")) + list((pkg / "integrate").glob("*.py"))):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def machine_info() -> dict:
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    git = None
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        git = rev + (" (working tree modified)" if dirty else "")
    except OSError:
        pass
    return {
        "engine_digest": engine_digest(),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": _version("numpy"), "numba": _version("numba"), "dask": _version("dask"),
        "xarray": _version("xarray"), "astropy": _version("astropy"), "ccdproc": _version("ccdproc"),
        "astrocal_widgets": _version("astrocal_widgets"),
        "siril": siril_version(),
        "git": git,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def machine_lines(info: dict) -> list[str]:
    return [
        f"machine: {info['nproc']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB RAM, "
        f"Linux {info['kernel']}",
        f"software: Python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, dask {info['dask']}, "
        f"xarray {info['xarray']}, astropy {info['astropy']}, ccdproc {info['ccdproc']}, {info['siril']}",
        f"astrocal_widgets {info['astrocal_widgets']} at {info['git']}, engine sources (io/, integrate/) "
        f"digest {info.get('engine_digest')}; run {info['date']}",
    ]


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def rss_now_mb() -> float:
    """Current resident set of this process (MiB)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def maxrss_mb() -> float:
    """Peak resident set of this process so far (MiB); ru_maxrss is in KiB on Linux."""
    import resource  # noqa: PLC0415

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def command_line() -> str:
    return " ".join([Path(sys.executable).name] + [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "generate":
        _, _, d, k, n, h, w, seed = sys.argv
        frames = ensure_stack(Path(d), k, int(n), (int(h), int(w)), int(seed),
                              log=lambda *a: print(*a, file=sys.stderr, flush=True))
        print(json.dumps([str(p) for p in frames]))
    else:
        sys.exit("usage: _common.py generate DIR KIND N HEIGHT WIDTH SEED")


def priority_popen_kwargs(nice: int) -> dict:
    """``subprocess.Popen`` keywords that run a measured command in its own session at ``nice``.

    With ``kernel.sched_autogroup_enabled`` (the default on most distributions) a plain nice value acts
    only inside the caller's session; the autogroup's own nice is what counts against other sessions, so
    the child gets a session (hence an autogroup) of its own, at ``nice``. Nothing for ``nice == 0``.
    """
    if not nice:
        return {}

    def raise_priority() -> None:  # in the child, before exec
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(nice))
        except OSError:
            pass

    return {"start_new_session": True, "preexec_fn": raise_priority}
