"""Run Siril (``siril-cli``) on the same frames, to cross-check and benchmark the engine.

Siril is the peer the engine is checked against (docs/siril-agreement.md). Its 16-bit path rounds normalised values and
Winsorizing bounds to integers, so the cross-check gives it 32-bit float copies of the frames scaled to
[0, 1] (Siril's float convention) and multiplies its master back by 65535. Nothing here is used by the
engine itself.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.io import fits

from ..errors import AstrocalError
from .registry import REJECTION_ALGORITHMS

__all__ = ["siril_executable", "SirilResult", "siril_stack", "write_float_copies", "SIRIL_REJECTION_CODES"]

#: Our rejection names -> Siril's ``stack ... rej <code>`` letters (the registry's ``siril_code``).
SIRIL_REJECTION_CODES = {a.name: a.siril_code for a in REJECTION_ALGORITHMS.values() if a.siril_code}
SIRIL_NORMALIZATIONS = {"none": "-nonorm", "multiplicative": "-norm=mul", "additive": "-norm=add",
                        "multiplicative_scaling": "-norm=mulscale", "additive_scaling": "-norm=addscale"}
ADU_SCALE = 65535.0


def siril_executable() -> str | None:
    """Path of ``siril-cli``, or None when Siril is not installed."""
    return shutil.which("siril-cli")


@dataclass
class SirilResult:
    """A Siril master (in ADU) and how long Siril took."""

    master: np.ndarray
    seconds: float
    log: str


def write_float_copies(paths: Sequence[str | os.PathLike], directory: str | os.PathLike,
                       prefix: str = "frame") -> list[Path]:
    """Write 32-bit float copies of frames, scaled to [0, 1] (divided by 65535), for Siril."""
    out = []
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(paths):
        data = fits.getdata(p).astype(np.float64) / ADU_SCALE
        target = directory / f"{prefix}_{i + 1:05d}.fits"
        fits.PrimaryHDU(data.astype(np.float32)).writeto(target, overwrite=True)
        out.append(target)
    return out


def siril_stack(paths: Sequence[str | os.PathLike], *, rejection: str, low: float, high: float,
                normalization: str = "none", float_copies: bool = True,
                workdir: str | os.PathLike | None = None, timeout: float = 600) -> SirilResult:
    """Stack frames with Siril's ``stack <seq> rej`` (average with rejection).

    Parameters
    ----------
    paths : sequence of path-like
        The frames (FITS).
    rejection : str
        One of :data:`SIRIL_REJECTION_CODES`.
    low, high : float
        Thresholds in Siril's convention (sigma multiples; fractions for percentile; for ESD the
        outlier fraction and alpha).
    normalization : str
        ``none`` or one of :data:`SIRIL_NORMALIZATIONS`.
    float_copies : bool, default True
        Give Siril 32-bit float copies in [0, 1] (see the module docstring). When False Siril reads
        the original files (its timing then includes reading 16-bit data, as in the benchmark).
    workdir : path-like, optional
        Scratch folder (a temporary one by default, removed afterwards).

    Returns
    -------
    SirilResult
        ``master`` in ADU (float64), ``seconds`` of Siril's whole run (conversion included).
    """
    exe = siril_executable()
    if exe is None:
        raise AstrocalError("siril-cli is not installed (Debian: apt-get install siril)")
    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix="siril-")) if own else Path(workdir)
    try:
        src = work / "in"
        if float_copies:
            write_float_copies(paths, src)
        else:
            src.mkdir(parents=True, exist_ok=True)
            for i, p in enumerate(paths):
                os.symlink(os.path.abspath(p), src / f"frame_{i + 1:05d}.fits")
        seq = work / "seq"
        seq.mkdir(exist_ok=True)
        result = work / "result"
        script = work / "stack.ssf"
        norm = SIRIL_NORMALIZATIONS[normalization]
        # ``rej n`` takes no thresholds (Siril aborts on "Unexpected argument").
        thresholds = "" if rejection == "none" else f" {low:g} {high:g}"
        # Paths relative to the working folder (``-d``): Siril 1.0.6's script parser keeps single
        # quotes as part of a path (``cd '/tmp/x'`` makes a folder named ``'``), and the scratch
        # folder's own name never needs quoting.
        script.write_text("\n".join([
            "requires 1.0.0", "setext fits", f"cd {src.name}", f"convert frame -out=../{seq.name}",
            f"cd ../{seq.name}",
            f"stack frame rej {SIRIL_REJECTION_CODES[rejection]}{thresholds} {norm} -out=../{result.name}",
            ""]))
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "-d", str(work), "-s", str(script)], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        out_file = result.with_suffix(".fits")
        if proc.returncode != 0 or not out_file.exists():
            raise AstrocalError(f"siril-cli failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        data = fits.getdata(out_file).astype(np.float64)
        if data.dtype.kind == "f" and np.nanmax(data) <= 1.5:
            data = data * ADU_SCALE  # Siril writes float results in [0, 1]
        return SirilResult(data, seconds, proc.stdout)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
