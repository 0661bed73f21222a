"""Per-frame statistics of a cube in one lazy pass: the numbers every quality check reads.

:func:`frame_statistics` reads each band of the cube once (one dask graph, one ``compute``) and
keeps, per frame, a histogram on fixed bins (1 ADU wide over the whole ADC range by default), the
sum, minimum, maximum, the counts of pixels at zero and at saturation, per-CFA-channel histograms
for colour sensors and a coarse spatial grid of cell levels. Medians and robust sigmas come from
the histograms afterwards: with 1-ADU bins and integer data they are exact.

Hot pixels are counted against the local level and spread (median and MAD of each band's part of
each grid cell), so amp glow and vignetting gradients are not mistaken for hot pixels.

The grid: the frame is cut into ``GRID x GRID`` cells; each band contributes the median of its part
of each cell, and a cell's level is the pixel-weighted mean of those part medians (robust to hot
pixels and cosmic rays, and it needs no second pass). Corner cells against central cells measure
amp glow; a frame's grid against the set's median grid finds shadows and light leaks.
"""
from __future__ import annotations

import math
import threading

import dask
import numpy as np
import xarray as xr

from ..cancel import CancelToken, raise_if_cancelled
from ..integrate.estimators import MAD_TO_SIGMA
from ..io.cube import compute_options
from ..io.cfa import CFA_SITES, CHANNEL_INDEX, cfa_sites, shift_bayer_pattern, site_slices

__all__ = ["frame_statistics", "adc_max_of", "histogram_median", "histogram_mad", "GRID", "HOT_PIXEL_SIGMA",
           "MAD_TO_SIGMA", "DEFAULT_ADC_MAX"]

#: Cells per side of the spatial grid of cell levels (8 x 8 = 64 cells).
GRID = 8
#: A pixel is hot in a frame when it exceeds the frame's median by this many robust sigmas. Read noise
#: alone never gets there (a Gaussian 10-sigma tail is ~1e-23); hot and the brighter warm pixels do.
HOT_PIXEL_SIGMA = 10.0
#: ADC maximum assumed when the header does not tell (16-bit cameras and 16-bit scaled FITS).
DEFAULT_ADC_MAX = 65535


def adc_max_of(cube: xr.DataArray) -> float:
    """The ADC's largest value for a cube: ``DATAMAX`` if the first header has one, else from ``BITPIX``.

    ``BITPIX`` 8 gives 255, 16 (with or without ``BZERO``) 65535; anything else (floats, DSLR raw)
    gives :data:`DEFAULT_ADC_MAX`. Pass ``adc_max=`` to the checks for 12- or 14-bit raw data.
    """
    try:
        header = cube.astrocal.header(0)
    except Exception:  # noqa: BLE001 - a cube not built by open_frames: fall back to the default
        return float(DEFAULT_ADC_MAX)
    datamax = header.get("DATAMAX") if hasattr(header, "get") else None
    if isinstance(datamax, (int, float)) and datamax > 0:
        return float(datamax)
    bitpix = header.get("BITPIX") if hasattr(header, "get") else None
    if bitpix == 8:
        return 255.0
    return float(DEFAULT_ADC_MAX)


def _cell_edges(n: int, grid: int) -> np.ndarray:
    return np.linspace(0, n, grid + 1).round().astype(int)


def _partial(block: np.ndarray, y0: int, height: int, lo: float, width: float, nbins: int, adc_max: float,
             grid: int, cfa: str, hot_sigma: float, cancel: CancelToken | None = None) -> dict[str, np.ndarray]:
    """Statistics of one band (all frames of a frame chunk, some rows) to be summed over bands."""
    if cancel is not None:  # a cancelled run stops at the next band, and dask raises at once
        cancel.raise_if_cancelled("per-frame statistics")
    nf, rows, w = block.shape
    flat = block.reshape(nf, -1)
    finite = np.isfinite(flat)
    idx = np.floor((np.where(finite, flat, lo) - lo) / width).astype(np.int64)
    np.clip(idx, 0, nbins - 1, out=idx)
    offsets = (np.arange(nf, dtype=np.int64) * nbins)[:, None]
    weights = finite.astype(np.int32) if not finite.all() else None
    hist = np.bincount((idx + offsets).ravel(), weights=None if weights is None else weights.ravel(),
                       minlength=nf * nbins).reshape(nf, nbins).astype(np.int64)
    # Zeros per row and per column: dead rows and columns are told from clipped noise by where they are.
    zero = block <= 0
    zero_rows = np.zeros((nf, height), np.int32)
    zero_rows[:, y0:y0 + rows] = zero.sum(axis=2)
    out: dict[str, np.ndarray] = {
        "hist": hist,
        "sum": np.nansum(flat, axis=1, dtype=np.float64),
        "min": np.nanmin(np.where(finite, flat, np.inf), axis=1).astype(np.float64),
        "max": np.nanmax(np.where(finite, flat, -np.inf), axis=1).astype(np.float64),
        "count": finite.sum(axis=1).astype(np.int64),
        "n_zero": zero.sum(axis=(1, 2)).astype(np.int64),
        "zero_rows": zero_rows,
        "zero_cols": zero.sum(axis=1).astype(np.int32),
        "n_saturated": (flat >= adc_max).sum(axis=1).astype(np.int64),
    }
    if cfa:
        chist = np.zeros((nf, 3, nbins), np.int64)
        bidx = idx.reshape(nf, rows, w)
        for colour, ys, xs in cfa_sites(shift_bayer_pattern(cfa, rows=y0)):  # the pattern at the band's row 0
            sub = bidx[:, ys, xs].reshape(nf, -1)
            chist[:, CHANNEL_INDEX[colour], :] += np.bincount((sub + offsets).ravel(),
                                                              minlength=nf * nbins).reshape(nf, nbins)
        out["cfa_hist"] = chist
    # Grid: median of this band's part of each cell, weighted by its pixel count.
    yedges, xedges = _cell_edges(height, grid), _cell_edges(w, grid)
    gsum = np.zeros((nf, grid, grid), np.float64)
    gcount = np.zeros((grid, grid), np.int64)
    nhot = np.zeros(nf, np.int64)
    for gy in range(grid):
        a, b = max(yedges[gy], y0), min(yedges[gy + 1], y0 + rows)
        if a >= b:
            continue
        for gx in range(grid):
            piece = block[:, a - y0:b - y0, xedges[gx]:xedges[gx + 1]]
            n = piece.shape[1] * piece.shape[2]
            if n == 0:
                continue
            values = piece.reshape(nf, -1)
            med = np.nanmedian(values, axis=1)
            if cfa and piece.shape[1] >= 2 and piece.shape[2] >= 2:
                # A mosaic's median falls between the colour populations and jumps with noise: the
                # cell level is the mean of the four Bayer sites' medians instead.
                level = np.mean([np.nanmedian(piece[(slice(None), *site_slices(site))].reshape(nf, -1), axis=1)
                                 for site in CFA_SITES], axis=0)
            else:
                level = med
            gsum[:, gy, gx] = level * n
            gcount[gy, gx] = n
            # Hot pixels against the local level and spread, so amp glow and vignetting are not "hot".
            spread = np.maximum(MAD_TO_SIGMA * np.nanmedian(np.abs(values - med[:, None]), axis=1), width)
            nhot += (values > (med + hot_sigma * spread)[:, None]).sum(axis=1)
    out["grid_sum"] = gsum
    out["grid_count"] = np.broadcast_to(gcount, (nf, grid, grid)).copy()
    out["n_hot"] = nhot
    return out


def _combine(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {k: v.copy() for k, v in parts[0].items()}
    for p in parts[1:]:
        for k, v in p.items():
            if k == "min":
                np.minimum(out[k], v, out=out[k])
            elif k == "max":
                np.maximum(out[k], v, out=out[k])
            else:
                out[k] += v
    return out


def _kth_centre(counts: np.ndarray, centres: np.ndarray, k: int) -> float:
    """Centre of the bin holding the k-th (0-based) smallest value."""
    cum = np.cumsum(counts)
    return float(centres[min(int(np.searchsorted(cum, k, side="right")), len(centres) - 1)])


def histogram_median(counts: np.ndarray, centres: np.ndarray) -> float:
    """Median of the values counted in ``counts`` (exact for integer data in 1-ADU bins)."""
    n = int(counts.sum())
    if n == 0:
        return math.nan
    if n % 2:
        return _kth_centre(counts, centres, n // 2)
    return 0.5 * (_kth_centre(counts, centres, n // 2 - 1) + _kth_centre(counts, centres, n // 2))


def histogram_mad(counts: np.ndarray, centres: np.ndarray, median: float) -> float:
    """Median absolute deviation from ``median`` of the values counted in ``counts``."""
    if not np.isfinite(median):
        return math.nan
    dist = np.abs(centres - median)
    order = np.argsort(dist, kind="stable")
    return histogram_median(counts[order], dist[order])


def frame_statistics(cube: xr.DataArray, *, bins: int | None = None, adc_max: float | None = None,
                     grid: int = GRID, hot_sigma: float = HOT_PIXEL_SIGMA,
                     cancel: CancelToken | threading.Event | None = None) -> xr.Dataset:
    """Per-frame statistics of a ``(frame, y, x)`` cube, computed in one pass over its bands.

    Parameters
    ----------
    cube : xarray.DataArray
        A cube from :func:`astrocal_widgets.open_frames` (any dask- or numpy-backed cube works).
    bins : int, optional
        Histogram bins over ``[-0.5, adc_max + 0.5]``; default ``adc_max + 1`` (1 ADU per bin, which
        makes medians and MADs of integer data exact).
    adc_max : float, optional
        ADC maximum in ADU (saturation); default :func:`adc_max_of`.
    grid : int
        Cells per side of the spatial grid.
    hot_sigma : float
        Hot-pixel threshold in robust sigmas above the frame's median.
    cancel : CancelToken or threading.Event, optional
        Looked at before each band: once set, :class:`~astrocal_widgets.errors.CancelledError` is raised.

    Returns
    -------
    xarray.Dataset
        On ``frame`` (with the cube's frame coordinates): ``median``, ``sigma`` (1.4826 MAD),
        ``mean``, ``min``, ``max``, ``n_pixels``, ``n_zero`` (values <= 0), ``n_saturated``
        (>= ``adc_max``), ``hot_fraction``; ``zero_rows`` (frame, y) and ``zero_cols`` (frame, x), the
        pixels at zero in each row and column; ``histogram`` (frame, bin) with ``bin_centre``; ``grid``
        (frame, gy, gx) cell levels; for a colour sensor (``bayer_pattern`` coordinate set)
        ``cfa_median`` (frame, cfa) with ``cfa`` = R, G, B. Attributes ``adc_max``, ``bin_width``,
        ``hot_sigma``, ``bayer_pattern``.
    """
    if cube.dims != ("frame", "y", "x"):
        cube = cube.transpose("frame", "y", "x")
    token = CancelToken.of(cancel)
    raise_if_cancelled(token, "per-frame statistics")
    amax = float(adc_max_of(cube) if adc_max is None else adc_max)
    nbins = int(bins) if bins is not None else int(round(amax)) + 1
    lo, hi = -0.5, amax + 0.5
    width = (hi - lo) / nbins
    centres = lo + (np.arange(nbins) + 0.5) * width
    nframes, height, w = cube.shape
    cfa = ""
    if "bayer_pattern" in cube.coords:
        pats = [str(p) for p in cube["bayer_pattern"].values if str(p)]
        cfa = pats[0] if pats and len(pats[0]) == 4 else ""

    data = cube.data
    if not hasattr(data, "to_delayed"):  # numpy-backed: one block
        import dask.array as da
        data = da.from_array(np.asarray(data), chunks=(nframes, max(16, height // 4), w))
    if len(data.chunks[2]) != 1:
        data = data.rechunk({2: -1})
    if max(data.chunks[0]) > 1:  # one frame per task: a band's bin indices (int64) would be 8x its pixels
        data = data.rechunk({0: 1})
    blocks = data.to_delayed()
    ystarts = np.concatenate([[0], np.cumsum(data.chunks[1])[:-1]])
    per_chunk = []
    for i in range(blocks.shape[0]):
        parts = [dask.delayed(_partial)(blocks[i, j, 0], int(ystarts[j]), height, lo, width, nbins, amax, grid, cfa,
                                                  hot_sigma, token)
                 for j in range(blocks.shape[1])]
        # Pairwise tree: partial histograms never pile up.
        while len(parts) > 1:
            parts = [dask.delayed(_combine)(*parts[k:k + 2]) for k in range(0, len(parts), 2)]
        per_chunk.append(parts[0])
    results = dask.compute(*per_chunk, **compute_options(*per_chunk))
    total = {k: np.concatenate([r[k] for r in results], axis=0) for k in results[0]}

    hist = total["hist"]
    median = np.array([histogram_median(h, centres) for h in hist])
    mad = np.array([histogram_mad(h, centres, m) for h, m in zip(hist, median)])
    sigma = MAD_TO_SIGMA * mad
    count = total["count"]
    hot = total["n_hot"]
    with np.errstate(invalid="ignore", divide="ignore"):
        gridv = total["grid_sum"] / total["grid_count"]
        mean = total["sum"] / count
        hot_fraction = hot / count

    frame_coords = {k: v for k, v in cube.coords.items() if v.dims == ("frame",)}
    ds = xr.Dataset(
        {
            "median": ("frame", median, {"units": "adu"}),
            "sigma": ("frame", sigma, {"units": "adu", "long_name": "robust sigma (1.4826 MAD)"}),
            "mean": ("frame", mean, {"units": "adu"}),
            "min": ("frame", total["min"], {"units": "adu"}),
            "max": ("frame", total["max"], {"units": "adu"}),
            "n_pixels": ("frame", count),
            "n_zero": ("frame", total["n_zero"]),
            "n_saturated": ("frame", total["n_saturated"]),
            "hot_fraction": ("frame", hot_fraction),
            "histogram": (("frame", "bin"), hist),
            "zero_rows": (("frame", "y"), total["zero_rows"]),
            "zero_cols": (("frame", "x"), total["zero_cols"]),
            "grid": (("frame", "gy", "gx"), gridv, {"units": "adu"}),
        },
        coords={**frame_coords, "bin_centre": ("bin", centres)},
        attrs={"adc_max": amax, "bin_width": width, "hot_sigma": hot_sigma, "bayer_pattern": cfa, "grid": grid,
               "height": height, "width": w},
    )
    if cfa:
        chist = total["cfa_hist"]
        cmed = np.array([[histogram_median(chist[f, c], centres) for c in range(3)] for f in range(nframes)])
        ds["cfa_median"] = (("frame", "cfa"), cmed, {"units": "adu"})
        ds = ds.assign_coords(cfa=["R", "G", "B"])
    return ds

