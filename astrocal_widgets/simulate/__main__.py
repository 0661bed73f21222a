"""``python -m astrocal_widgets.simulate DIR [--camera osc] [--seed N] [--overwrite]``: write a session and time it."""
from __future__ import annotations

import argparse

from . import simulate_session


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m astrocal_widgets.simulate", description=__doc__)
    parser.add_argument("directory")
    parser.add_argument("--camera", default="mono", choices=["mono", "osc"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", type=int, nargs=2, default=(480, 640), metavar=("ROWS", "COLS"))
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    session = simulate_session(args.directory, camera=args.camera, seed=args.seed, shape=tuple(args.shape), overwrite=args.overwrite)
    print(
        f"{len(session.frames)} frames of {args.shape[0]} x {args.shape[1]} written to {session.directory} "
        f"in {session.elapsed:.2f} s, {session.disk_bytes / 1e6:.1f} MB on disk"
    )


if __name__ == "__main__":
    main()
