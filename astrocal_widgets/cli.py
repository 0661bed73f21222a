"""The astrocal command: calibrate a night of astrophotography frames from a shell.

astrocal demo [DIR] simulates a night and calibrates it; astrocal scan DIR lists the calibration
sets of a folder; astrocal check DIR grades them; astrocal integrate DIR|GLOB --output MASTER.fits
integrates one set into a master; astrocal calibrate DIR makes every master and calibrates the lights.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from ._version import __version__
from .heap import keep_freed_bands
from .errors import AstrocalError, OutputExistsError
from .io.frame_types import CALIBRATION_TYPES
from .integrate import integrate, write_master
from .calibrate.cosmetic import COMPILING_MESSAGE as COSMETIC_COMPILING_MESSAGE
from .integrate.kernels import COMPILING_MESSAGE
from .warning_report import WarningLog, collect_warnings

__all__ = ["main", "ConsoleProgress", "API_FLAGS", "cli_message"]

#: What the core's messages ask for, in Python terms, and the command option meaning the same
#: (its ``argparse`` destination and its flag). The core never names flags: the command adds them.
API_FLAGS: dict[str, tuple[str, str]] = {
    "overwrite=True": ("overwrite", "--overwrite"),
    "strict=False": ("lenient", "--lenient"),
}


def cli_message(text: str, args: argparse.Namespace | None = None) -> str:
    """A core message as the command shows it: each Python term followed by the flag that does the same.

    ``'pass overwrite=True to replace it'`` becomes ``'pass overwrite=True (or --overwrite) to replace
    it'``. With ``args``, only the flags of the command that ran are named (``astrocal demo`` has
    ``--overwrite`` but no ``--lenient``).
    """
    for term, (dest, flag) in API_FLAGS.items():
        if args is None or hasattr(args, dest):
            text = text.replace(term, f"{term} (or {flag})")
    return text


class ConsoleProgress:
    """A text progress bar for ``progress(fraction, message)`` callbacks, drawn on stderr."""

    def __init__(self, label: str, stream=None, width: int = 30):
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.t0 = time.perf_counter()
        self._last = -1.0

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = min(1.0, max(0.0, fraction))
        if COMPILING_MESSAGE in message or COSMETIC_COMPILING_MESSAGE in message:
            # A pause of several seconds follows: say why, on a line of its own, tty or log.
            self.stream.write(f"\r{self.label}: {message}\n")
            self.stream.flush()
            return
        if fraction < 1.0 and fraction - self._last < 0.01:
            return
        self._last = fraction
        filled = int(round(self.width * fraction))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.perf_counter() - self.t0
        end = "\n" if fraction >= 1.0 else ""
        tty = getattr(self.stream, "isatty", lambda: False)()
        if not tty:
            if 0.0 < fraction < 1.0:
                return  # in a log, print only the start and the end, one line each
            end = "\n"
        self.stream.write(f"\r{self.label} [{bar}] {fraction:4.0%} {elapsed:5.1f}s {message[:40]:<40}{end}")
        self.stream.flush()


def _print_warnings(log: WarningLog | None, stream=None) -> None:
    """The warnings collected so far (not yet shown), once per kind, in words."""
    lines = log.unshown() if log is not None else []
    if lines:
        print(f"warnings while reading and computing ({len(lines)} kind(s), each once):", file=stream or sys.stdout)
        for line in lines:
            print(f"  {line}", file=stream or sys.stdout)


def _cmd_scan(args: argparse.Namespace) -> int:
    from .frames import scan

    catalog = scan(args.directory, recursive=not args.no_recursive)
    print(catalog.summary())
    _print_warnings(args.warning_log)
    if args.table:
        cols = ["path", "frame_type", "exposure", "temperature", "gain", "offset", "filter", "xbinning",
                "type_reason"]
        table = catalog.table[cols].copy()
        root = os.path.abspath(args.directory)
        table["path"] = [os.path.relpath(p, root) for p in table["path"]]
        print(table.to_string(index=False))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .frames import scan
    from .simulate import simulate_session

    directory = Path(args.directory)
    if directory.exists() and any(directory.rglob("*.fits")) and not args.overwrite:
        print(f"Using the simulated night already in {directory} (--overwrite simulates it again)")
    else:
        print(f"Simulating a {args.camera} session in {directory} ...")
        t0 = time.perf_counter()
        session = simulate_session(directory, camera=args.camera, seed=args.seed, overwrite=args.overwrite,
                                   progress=ConsoleProgress("simulate"))
        cam = session.camera
        print(f"  camera: gain {cam.gain} e-/ADU, read noise {cam.read_noise} e-, dark current "
              f"{cam.dark_current} e-/s at {cam.set_temperature} °C ({time.perf_counter() - t0:.1f} s)")
    catalog = scan(directory)
    print(catalog.summary())
    from .calibrate import CalibrationOptions

    return _run_calibration(directory, CalibrationOptions(), output=args.output, overwrite=args.overwrite,
                            log=args.warning_log)


def _run_calibration(directory: Path, options, *, output, overwrite: bool, log: WarningLog | None = None) -> int:
    from .calibrate import calibrate_session

    print(f"Calibrating {directory} ...")
    result = calibrate_session(directory, options, output=output, overwrite=overwrite,
                               progress=ConsoleProgress("calibrate"))
    if log is not None:  # the run's Python and astropy warnings: in the report, once per kind
        result.warnings += log.unshown()
    print(result.summary())
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import CalibrationOptions

    thresholds = None if args.low is None and args.high is None else _thresholds(args.rejection, args.low, args.high)
    options = CalibrationOptions(strict=not args.lenient, dark_optimization=args.dark_optimization,
                                 cosmetic=not args.no_cosmetic, rejection=args.rejection,
                                 rejection_thresholds=thresholds, overscan=args.overscan, library=args.library or ())
    if args.exclude:
        _add_exclusions(Path(args.directory), args.output, args.exclude)
    return _run_calibration(Path(args.directory), options, output=args.output, overwrite=args.overwrite,
                            log=args.warning_log)


def _add_exclusions(directory: Path, output: str | None, entries: list[list[str]]) -> None:
    """--exclude FILE [REASON]: onto the exclusion list of the output folder, before the run reads it.

    FILE is a path as typed (from the current folder) or relative to the night's folder.
    """
    from .frames import add_exclusions, exclusion_list_path

    frames: dict[str, str] = {}
    for entry in entries:
        if len(entry) > 2:
            raise ValueError(f"--exclude takes a file and at most one reason (quote a reason of several words), "
                             f"not {' '.join(entry)!r}")
        frame, reason = entry[0], entry[1] if len(entry) == 2 else ""
        typed = Path(frame)
        frames[str(typed.resolve() if typed.exists() else directory.resolve() / typed)] = reason
    folder = Path(output) if output is not None else directory
    listed = add_exclusions(folder, frames, directory.resolve())
    print(f"exclusion list {exclusion_list_path(folder)}: {len(listed)} frame(s) left out")


def _thresholds(rejection: str, low: float | None, high: float | None) -> tuple[float, float]:
    """--low/--high, the one not given taken from the rejection's defaults."""
    from .integrate import rejection_algorithm

    if rejection == "auto":
        raise ValueError("--low/--high need a named --rejection (auto chooses its own thresholds)")
    default_low, default_high = rejection_algorithm(rejection).defaults
    return (default_low if low is None else low, default_high if high is None else high)


def _fraction(ds) -> float:
    low, high, kept = (int(ds[v].sum()) for v in ("rejected_low", "rejected_high", "contributing"))
    return (low + high) / max(1, low + high + kept)


def _cmd_check(args: argparse.Namespace) -> int:
    from .quality.checks import check_frames, check_session

    report = (check_session(args.directory, adc_max=args.adc_max) if args.kind is None
              else check_frames(args.directory, kind=args.kind, adc_max=args.adc_max))
    print(report.summary())
    if args.table:
        print(report.table.drop(columns=["explanation"]).to_string(index=False))
    _print_warnings(args.warning_log)
    bad = ("warn", "fail") if args.strict else ("fail",)
    return 1 if report.status in bad else 0


def _cmd_integrate(args: argparse.Namespace) -> int:
    from .io import open_frames
    from .io.cube import resolve_paths  # folder, glob or file -> paths, as open_frames reads them

    output = Path(args.output)
    if output.exists() and not args.overwrite:  # before hours of integration, not after
        raise OutputExistsError(output)
    paths = [p for source in args.source for p in resolve_paths(source)]
    if output.exists() and any(p.exists() and os.path.samefile(p, output) for p in paths):
        raise AstrocalError(f"{output}: is one of the input frames; choose another output name")
    cube = open_frames(paths, overscan=args.overscan)
    # Masters and calibrated frames are products, never inputs; one kind of frame per master.
    is_product = [str(r).startswith("product") for r in cube["type_reason"].values]
    if any(is_product):
        first = cube["path"].values[is_product.index(True)]
        print(f"leaving out {sum(is_product)} master or calibrated file(s), e.g. {first}")
        cube = cube.isel(frame=[i for i, product in enumerate(is_product) if not product])
    kinds = sorted({str(t) or "unclassified" for t in cube["frame_type"].values})
    if len(kinds) > 1:
        raise AstrocalError(f"the frames mix {', '.join(kinds)}: integrate one set at a time "
                            f"(astrocal scan lists the sets)")
    ds = integrate(cube, combine=args.combine, rejection=args.rejection, low=args.low, high=args.high,
                   normalization=args.normalization, rejection_normalization=args.rejection_normalization,
                   weights=args.weights, progress=ConsoleProgress("integrate"))
    ds = ds.compute()
    from .calibrate.overscan import overscan_attrs
    ds.attrs.update(overscan_attrs(cube))  # the master's header names the overscan and trim
    path = write_master(ds, args.output, overwrite=args.overwrite)
    print(f"{path}: {ds.attrs['n_frames']} frames, {ds.attrs['rejection']} ({ds.attrs['rejection_reason']}), "
          f"rejected {100 * _fraction(ds):.2f} % of values")
    return 0


def _overscan_argument(p: argparse.ArgumentParser) -> None:
    def option(text: str) -> str:
        from .io.overscan import Overscan
        try:
            Overscan.from_option(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    p.add_argument("--overscan", type=option, default="auto", metavar="auto|off|mean|median-poly3",
                   help="subtract the overscan (BIASSEC) per row and trim to TRIMSEC where the headers give "
                        "them (auto, the default); off keeps the stored pixels; mean/median and -polyN choose "
                        "the statistic and a smooth fit along the rows")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="astrocal", description=__doc__.strip().splitlines()[0],
                                     epilog="Run 'astrocal COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"astrocal-widgets {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from .integrate import COMBINES, NORMALIZATIONS, REJECTION_ALGORITHMS, REJECTIONS

    p = sub.add_parser("scan", help="list the calibration sets of a folder (headers only)",
                       description="List the calibration sets of a folder from the headers alone.")
    p.add_argument("directory", help="the night's folder (sub-folders are read too)")
    p.add_argument("--no-recursive", action="store_true", help="do not look into sub-folders")
    p.add_argument("--table", action="store_true",
                   help="also print one line per frame, with type_reason: why it got its type")
    p.set_defaults(func=_cmd_scan)

    p = sub.add_parser("demo", help="simulate a night and calibrate it",
                       description="Simulate a night of frames (once; a rerun reuses it) and calibrate it.")
    p.add_argument("directory", nargs="?", default="astrocal-demo",
                   help="where the simulated night goes (default: astrocal-demo)")
    p.add_argument("-o", "--output", default=None,
                   help="write masters/ and calibrated/ here (default: inside the night's folder)")
    p.add_argument("--camera", choices=("mono", "osc"), default="mono",
                   help="monochrome or one-shot colour (RGGB) camera (default: mono)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulation (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="simulate again and rebuild every output")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("calibrate", help="masters, calibrated flats and calibrated lights for a night",
                       description="Build the masters, calibrate the flats and the lights of a night. "
                                   "A rerun reuses every output made from the same inputs and options.")
    p.add_argument("directory", help="the night's folder (sub-folders are read too)")
    p.add_argument("-o", "--output", default=None,
                   help="write masters/ and calibrated/ here (default: inside DIRECTORY)")
    p.add_argument("--library", action="append", default=None,
                   help="a folder of masters from other nights (bias and darks); repeat for several")
    p.add_argument("--overwrite", action="store_true",
                   help="rebuild and replace outputs (otherwise outputs are reused when up to date, "
                        "and the run stops on outputs made from other inputs)")
    p.add_argument("--lenient", action="store_true",
                   help="warn (instead of stopping) on temperature/exposure mismatches")
    p.add_argument("--dark-optimization", action="store_true", help="choose the dark scale minimising noise")
    p.add_argument("--no-cosmetic", action="store_true",
                   help="do not correct hot and cold pixels (they are corrected by default)")
    p.add_argument("--rejection", choices=REJECTIONS, default="auto",
                   help="pixel rejection of every master (auto: chosen from each set's frame count)")
    p.add_argument("--low", type=float, default=None, help="low rejection threshold (with --rejection)")
    p.add_argument("--high", type=float, default=None, help="high rejection threshold (with --rejection)")
    p.add_argument("--exclude", action="append", nargs="+", default=None, metavar=("FILE", "REASON"),
                   help="leave FILE out of its set, for REASON (optional): added to the exclusion list "
                        "excluded.txt of the output folder, which every run reads; repeatable; the file is never "
                        "moved or deleted")
    _overscan_argument(p)
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("check", help="quality checks of every calibration set of a folder (traffic lights)",
                       description="Grade every calibration set of a folder: pass, warn or fail, with the fix.")
    p.add_argument("directory", help="the night's folder")
    p.add_argument("--kind", choices=CALIBRATION_TYPES + ("light",), default=None,
                   help="only the sets of this kind")
    p.add_argument("--adc-max", type=float, default=None, help="ADC maximum in ADU (default from the header)")
    p.add_argument("--table", action="store_true", help="also print one line per check")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.set_defaults(func=_cmd_check)


    algorithms = "".join(f"\n  {a.name}: {a.summary}" + (f"\n      --low/--high {a.defaults[0]:g}/{a.defaults[1]:g} by "
                                                         f"default: {a.threshold_meaning}" if a.threshold_names else "")
                         for a in REJECTION_ALGORITHMS.values())
    p = sub.add_parser("integrate", help="integrate frames into a master FITS",
                       description="Integrate one set of frames into a master FITS file.",
                       epilog=f"rejection algorithms (docs/algorithms.md has a page for each):{algorithms}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="+", help="a folder, a glob pattern or frame files")
    p.add_argument("-o", "--output", required=True, help="the master file to write")
    p.add_argument("--combine", choices=COMBINES, default="average", help="how kept values are combined")
    p.add_argument("--rejection", choices=REJECTIONS, default="auto",
                   help="pixel rejection (auto: chosen from the number of frames)")
    p.add_argument("--low", type=float, default=None, help="low threshold (meaning depends on --rejection)")
    p.add_argument("--high", type=float, default=None, help="high threshold")
    p.add_argument("--normalization", choices=[m for m in NORMALIZATIONS if m != "equalize_fluxes"],
                   default="none", help="output normalisation (multiplicative for flats)")
    p.add_argument("--rejection-normalization", choices=NORMALIZATIONS, default=None,
                   help="normalisation used only to decide rejection (default: as --normalization)")
    p.add_argument("--weights", choices=("none", "exposure", "noise"), default=None, help="frame weights")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _overscan_argument(p)
    p.set_defaults(func=_cmd_integrate)
    return parser


def tune_process_memory() -> dict[str, bool]:
    """Settings of the memory allocators that suit many large, short-lived arrays.

    The command owns its process, so it sets them (a notebook user can set the equivalent
    environment variables ``NUMPY_MADVISE_HUGEPAGE=0`` and ``MALLOC_ARENA_MAX=2`` before starting
    Jupyter; see docs/dashboards.md). A variable the user has set is respected.

    - **Huge pages off.** numpy asks Linux for transparent huge pages for every large array. In
      virtual machines that give freed memory back to their host (cloud VMs, CI runners, Binder),
      each fresh huge page is then faulted in from the host and cleared: on a 2-core VM, making three
      96 MB temporaries cost 1.2 s of CPU with huge pages and 0.17 s without.
    - **Two malloc arenas.** glibc gives each thread its own arena and keeps what is freed in it;
      with the band threads of several masters, a 24-megapixel night peaked at 2.1 GB this way
      against 1.4 GB with two arenas, for the same work.
    - **Freed bands kept for the next ones** (:func:`~astrocal_widgets.heap.keep_freed_bands`): up to
      64 MiB of freed heap per arena is reused instead of being handed back and faulted in again
      (``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_`` set by the user are respected).

    Returns which of them were changed.
    """
    changed = {"huge_pages_off": False, "malloc_arenas": False, "freed_bands_kept": False}
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        import numpy as np

        setter = getattr(getattr(np, "_core", np).multiarray, "_set_madvise_hugepage", None)
        if setter is not None:
            setter(False)
            changed["huge_pages_off"] = True
    if "MALLOC_ARENA_MAX" not in os.environ:
        from .workflow.memory import limit_heap_arenas  # the dashboard's kernel does the same

        changed["malloc_arenas"] = limit_heap_arenas()
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        changed["freed_bands_kept"] = keep_freed_bands()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``astrocal`` console command."""
    tune_process_memory()  # before any thread: the command owns its process
    parser = build_parser()
    args = parser.parse_args(argv)
    # Astropy's and our own warnings are part of the report: counted by kind and shown once, in
    # words, never raw with a source line (the Python API still warns as usual).
    with collect_warnings() as log:
        args.warning_log = log
        try:
            code = args.func(args)
        except (AstrocalError, ValueError, OSError) as exc:
            # Bad input gets a readable message, never a traceback.
            print(f"astrocal: error: {cli_message(str(exc), args)}", file=sys.stderr)
            _print_warnings(args.warning_log, sys.stderr)
            return 2
    _print_warnings(args.warning_log)  # what a command did not show itself (integrate, demo's simulation)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
