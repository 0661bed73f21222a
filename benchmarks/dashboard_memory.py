"""Peak memory of the whole dashboard walk-through, as a kernel would run it (no browser).

Drives ``CalibrationDashboard`` step by step in this process (Check, Integrate and Save every set,
one flat and one light before/after, Calibrate all) on a simulated night and prints the peak RSS
against Binder's 2 GB, with the peak of each action. The browser test measures the same
walk-through in Voila's kernel (``ASTROCAL_BROWSER_NIGHT`` points it at a night folder).

The night is simulated once and kept under ``--data`` (``/tmp/astrocal-bench/dashboard`` by default:
a 24-megapixel night is 1.5 GB); each run starts without the masters and calibrated lights of the
previous one. ``--fresh`` simulates into a temporary folder removed at exit instead.

Run::

    python benchmarks/dashboard_memory.py                       # default night: 96 frames of 640 x 480
    python benchmarks/dashboard_memory.py --shape 4000 6000 --counts bias=10 dark=5 flat=6 darkflat=6 light=4
"""
from __future__ import annotations

import argparse
import atexit
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, REPO  # noqa: E402

sys.path.insert(0, str(REPO))  # this checkout's package, not whichever one is installed

BINDER_LIMIT = 2 * 10**9
#: Written once a night is completely simulated, so an interrupted simulation is redone.
COMPLETE = ".simulated"


class PeakRSS(threading.Thread):
    """Peak RSS of this process, overall and per labelled action (sampled every 20 ms)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.running = True
        self.process = psutil.Process()
        self.label = "start"
        self.peaks: dict[str, int] = {}

    def run(self) -> None:
        while self.running:
            rss = self.process.memory_info().rss
            self.peak = max(self.peak, rss)
            self.peaks[self.label] = max(self.peaks.get(self.label, 0), rss)
            time.sleep(0.02)


class Actions:
    """Labels each action for the monitor and records its peak, the RSS after it and its time."""

    def __init__(self, monitor: PeakRSS) -> None:
        self.monitor = monitor
        self.rows: list[tuple[str, int, int, float]] = []

    def __call__(self, label: str, action) -> None:
        self.monitor.label = label
        rss = self.monitor.process.memory_info().rss
        self.monitor.peaks[label] = rss
        t0 = time.monotonic()
        action()
        seconds = time.monotonic() - t0
        after = self.monitor.process.memory_info().rss
        peak = max(self.monitor.peaks.get(label, 0), after)
        self.rows.append((label, peak, after, seconds))
        self.monitor.label = "between actions"
        print(row(label, peak, after, seconds), flush=True)


def row(label: str, peak: int, after: int, seconds: float) -> str:
    return f"{label:<32} peak {peak / 2**20:6.0f} MiB, after {after / 2**20:6.0f} MiB, {seconds:6.1f} s"


def walk(board, act: Actions) -> None:
    act("session check", board.steps["Session"].check_button.click)
    for title in ("Bias", "Darks", "Dark flats & flat calibration", "Flat integration"):
        board.go(title)
        panel = board.step.panel
        for k in range(len(panel.groups)):
            panel.group.value = k
            name = f"{board.step.title[:14]} {k}"
            act(f"{name} integrate", panel.integrate_button.click)
            act(f"{name} save", panel.save_button.click)
            assert not any("astrocal-error" in getattr(c, "_dom_classes", ()) for c in panel.feedback.children), \
                [c.value for c in panel.feedback.children]
        if title == "Dark flats & flat calibration":
            act("flat preview", board.step.calibrate_button.click)
    board.go("Histogram checks")
    act("checks", board.step.check_button.click)
    board.go("Lights")
    act("light preview", board.step.calibrate_button.click)
    act("calibrate all", board.step.all_button.click)
    for feedback in (board.step.feedback,):
        assert not any("astrocal-error" in getattr(c, "_dom_classes", ()) for c in feedback.children), \
            [c.value for c in feedback.children]


def simulated_night(args, counts) -> tuple[Path, float, bool]:
    """The night's folder, the seconds it took, and whether it was simulated now (else reused)."""
    import astrocal_widgets as aw
    from astrocal_widgets.calibrate.outputs import CALIBRATED_FOLDER, MASTERS_FOLDER

    if args.fresh:
        root = Path(tempfile.mkdtemp(prefix="astrocal-dashboard-memory-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)  # GBs for big frames: scratch only
    else:
        name = f"{args.shape[0]}x{args.shape[1]}-{args.camera}-" + ("-".join(args.counts) or "default")
        root = Path(args.data) / name
    night = root / "night"
    t0 = time.monotonic()
    simulate = not (root / COMPLETE).exists()
    if simulate:
        shutil.rmtree(root, ignore_errors=True)
        aw.simulate_session(night, shape=tuple(args.shape), counts=counts, camera=args.camera)
        (root / COMPLETE).touch()
    for folder in (MASTERS_FOLDER, CALIBRATED_FOLDER):  # the previous walk-through's outputs
        shutil.rmtree(night / folder, ignore_errors=True)
    return night, time.monotonic() - t0, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=2, default=(480, 640), metavar=("ROWS", "COLUMNS"))
    parser.add_argument("--counts", nargs="*", default=[], help="frames per group, e.g. bias=10 dark=5")
    parser.add_argument("--camera", default="mono", choices=("mono", "osc"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR / "dashboard",
                        help="where simulated nights are kept between runs")
    parser.add_argument("--fresh", action="store_true", help="simulate into a temporary folder removed at exit")
    args = parser.parse_args()
    counts = {k: int(v) for k, v in (item.split("=") for item in args.counts)} or None

    import astrocal_widgets
    from astrocal_widgets.widgets import CalibrationDashboard

    night, simulated, fresh = simulated_night(args, counts)
    frames = list(night.rglob("*.fits"))
    disk = sum(p.stat().st_size for p in frames)
    frame_mib = args.shape[0] * args.shape[1] * 2 / 2**20
    print(f"package: {Path(astrocal_widgets.__file__).parent}")
    print(f"night: {len(frames)} frames of {args.shape[1]} x {args.shape[0]} ({args.camera}) in {night}, "
          f"{disk / 2**20:.0f} MiB on disk ({'simulated' if fresh else 'reused'}: {simulated:.0f} s); "
          f"one frame {frame_mib:.1f} MiB as uint16", flush=True)
    baseline = psutil.Process().memory_info().rss
    monitor = PeakRSS()
    monitor.start()
    act = Actions(monitor)
    t1 = time.monotonic()
    holder = {}
    act("open", lambda: holder.setdefault("board", CalibrationDashboard(night)))
    board = holder["board"]
    walk(board, act)
    elapsed = time.monotonic() - t1
    monitor.running = False
    monitor.join()
    peak = monitor.peak
    if not fresh:  # the kernel's own high-water mark catches spikes between samples (not the simulation's)
        peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(f"walk-through: {elapsed:.0f} s; statuses: "
          + "; ".join(f"{t}: {s}" for t, (s, _) in board.statuses().items()))
    print(f"peak RSS {peak / 2**20:.0f} MiB (before the dashboard: {baseline / 2**20:.0f} MiB); "
          f"{peak / BINDER_LIMIT:.0%} of Binder's 2 GB")


if __name__ == "__main__":
    main()
