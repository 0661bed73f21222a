"""Peak memory of the whole dashboard walk-through, as a kernel would run it (no browser).

Drives ``CalibrationDashboard`` step by step in this process (Check, Integrate and Save every set,
one flat and one light before/after, Calibrate all) on a simulated night and prints the peak RSS
against Binder's 2 GB. The browser test measures the same walk-through in Voila's kernel on the
default night; this script also runs it on big frames.

Run::

    python benchmarks/dashboard_memory.py                       # default night: 96 frames of 640 x 480
    python benchmarks/dashboard_memory.py --shape 4000 6000 --counts bias=10 dark=5 flat=6 darkflat=6 light=1
"""
from __future__ import annotations

import argparse
import atexit
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

BINDER_LIMIT = 2 * 10**9


class PeakRSS(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.running = True
        self.process = psutil.Process()

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.05)


def walk(board) -> None:
    board.steps[0].check_button.click()
    for index in (1, 2, 3, 4):
        board.go(index)
        panel = board.step.panel
        for k in range(len(panel.groups)):
            panel.group.value = k
            panel.integrate_button.click()
            panel.save_button.click()
            assert not any("astrocal-error" in getattr(c, "_dom_classes", ()) for c in panel.feedback.children), \
                [c.value for c in panel.feedback.children]
        if index == 3:
            board.step.calibrate_button.click()
    board.go(5)
    board.step.check_button.click()
    board.go(6)
    board.step.calibrate_button.click()
    board.step.all_button.click()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=2, default=(480, 640), metavar=("ROWS", "COLUMNS"))
    parser.add_argument("--counts", nargs="*", default=[], help="frames per group, e.g. bias=10 dark=5")
    parser.add_argument("--camera", default="mono", choices=("mono", "osc"))
    args = parser.parse_args()
    counts = {k: int(v) for k, v in (item.split("=") for item in args.counts)} or None

    import astrocal_widgets as aw
    from astrocal_widgets.widgets import CalibrationDashboard

    root = Path(tempfile.mkdtemp(prefix="astrocal-dashboard-memory-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # GBs for big frames: scratch only
    t0 = time.monotonic()
    session = aw.simulate_session(root / "night", shape=tuple(args.shape), counts=counts, camera=args.camera)
    simulated = time.monotonic() - t0
    n_frames = sum(1 for _ in (root / "night").rglob("*.fits"))
    baseline = psutil.Process().memory_info().rss
    monitor = PeakRSS()
    monitor.start()
    t1 = time.monotonic()
    board = CalibrationDashboard(root / "night")
    walk(board)
    elapsed = time.monotonic() - t1
    monitor.running = False
    monitor.join()
    peak = max(monitor.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    frame_mib = args.shape[0] * args.shape[1] * 2 / 2**20
    print(f"night: {n_frames} frames of {args.shape[1]} x {args.shape[0]} ({args.camera}), "
          f"{session.disk_bytes / 2**20:.0f} MiB on disk, simulated in {simulated:.0f} s; "
          f"one frame {frame_mib:.1f} MiB as uint16")
    print(f"walk-through: {elapsed:.0f} s; statuses: "
          + "; ".join(f"{t}: {s}" for t, (s, _) in board.statuses().items()))
    print(f"peak RSS {peak / 2**20:.0f} MiB (before the dashboard: {baseline / 2**20:.0f} MiB); "
          f"{peak / BINDER_LIMIT:.0%} of Binder's 2 GB")


if __name__ == "__main__":
    main()
