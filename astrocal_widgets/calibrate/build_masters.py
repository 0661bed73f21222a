"""Masters by the standard process (as PixInsight's WBPP and Siril make them), and lazy per-frame calibration of stacks.

Bias, darks and dark flats: average, no normalisation (the pedestal and the thermal signal must
survive), weights 1, ``auto`` rejection. Flats: each flat calibrated first (master dark flat, else
master bias), then average with multiplicative output normalisation and ``equalize_fluxes``
rejection normalisation.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import dask.array as da
import numpy as np
import xarray as xr

from ..integrate import integrate

__all__ = ["MASTER_OPTIONS", "build_master", "subtract_masters"]

#: Integration options per frame type.
MASTER_OPTIONS: dict[str, dict[str, Any]] = {
    "bias": {"combine": "average", "rejection": "auto", "normalization": "none", "weights": None},
    "dark": {"combine": "average", "rejection": "auto", "normalization": "none", "weights": None},
    "darkflat": {"combine": "average", "rejection": "auto", "normalization": "none", "weights": None},
    "flat": {"combine": "average", "rejection": "auto", "normalization": "multiplicative",
             "rejection_normalization": "equalize_fluxes", "weights": None},
}


def build_master(frames: Any, frame_type: str | None = None, *,
                 progress: Callable[[float, str], None] | None = None, **options: Any) -> xr.Dataset:
    """Integrate a calibration set with the standard options for its type (lazy).

    Parameters
    ----------
    frames : cube, FrameGroup, folder, glob or paths
        The set (flats should already be calibrated, see :func:`subtract_masters`).
    frame_type : str, optional
        ``bias``, ``dark``, ``darkflat`` or ``flat``; by default the frames' ``frame_type``.
    progress : callable, optional
        ``progress(fraction, message)``.
    **options
        Override any option of :func:`~astrocal_widgets.integrate.integrate` (e.g. ``rejection="sigma"``).

    Returns
    -------
    xarray.Dataset
        As :func:`~astrocal_widgets.integrate.integrate` returns, with ``attrs["master_type"]``.
    """
    if frame_type is None:
        frame_type = getattr(frames, "frame_type", None)
        if frame_type is None and isinstance(frames, xr.DataArray) and "frame_type" in frames.coords:
            types = set(frames["frame_type"].values.tolist())
            frame_type = types.pop() if len(types) == 1 else None
    if frame_type not in MASTER_OPTIONS:
        raise ValueError(f"build_master: frame_type must be one of {sorted(MASTER_OPTIONS)}, got {frame_type!r}")
    kwargs = {**MASTER_OPTIONS[frame_type], **options}
    ds = integrate(frames, progress=progress, label=f"master {frame_type}", **kwargs)
    ds.attrs["master_type"] = frame_type
    return ds


def subtract_masters(cube: xr.DataArray, masters: Sequence[np.ndarray], index: Sequence[int]) -> xr.DataArray:
    """Frame ``i`` minus ``masters[index[i]]``, lazily, band by band.

    Used to calibrate flats (each by the dark flat of its exposure) before they are integrated. The
    result keeps the cube's coordinates; its bands read the same rows of the files as the cube's.

    Parameters
    ----------
    cube : xarray.DataArray
        ``(frame, y, x)`` cube from :func:`~astrocal_widgets.open_frames`.
    masters : sequence of 2-D arrays
        The masters to subtract (each of the frame shape).
    index : sequence of int
        For each frame, which master.
    """
    index = np.asarray(index, dtype=int)
    if index.shape != (cube.sizes["frame"],):
        raise ValueError(f"subtract_masters: need one master index per frame ({cube.sizes['frame']}), "
                         f"got {index.shape}")
    stack = np.stack([np.asarray(m, dtype=np.float32) for m in masters])
    if stack.shape[1:] != cube.shape[1:]:
        raise ValueError(f"subtract_masters: masters are {stack.shape[2]} x {stack.shape[1]}, "
                         f"frames {cube.shape[2]} x {cube.shape[1]} (width x height)")
    data = cube.data if isinstance(cube.data, da.Array) else da.from_array(np.asarray(cube.data))

    def _subtract(block: np.ndarray, block_info=None) -> np.ndarray:
        (f0, f1), (y0, y1), (x0, x1) = block_info[0]["array-location"]
        out = np.empty(block.shape, np.float32)
        for i, f in enumerate(range(f0, f1)):  # frame by frame: no gathered copy of the masters
            np.subtract(block[i], stack[index[f], y0:y1, x0:x1], out=out[i])
        return out

    out = data.map_blocks(_subtract, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32))
    result = cube.copy(data=out)
    result.attrs = {k: v for k, v in cube.attrs.items()}
    result.attrs["calibrated"] = "master subtracted per frame"
    return result
