"""Lazy ``(frame, y, x)`` cubes of frames, backed by dask, with header-derived coordinates."""
from __future__ import annotations

import glob as _glob
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import dask
import dask.array as da
import dask.base
import dask.local
import dask.threaded
import numpy as np
import xarray as xr
from dask.highlevelgraph import HighLevelGraph
from dask.base import tokenize

from .._threading import usable_cpus
from ..errors import AstrocalError, FrameReadError, IncompatibleFramesError
from .headers import COORDINATE_COLUMNS, frame_metadata
from .overscan import OverscanPlan, overscan_plan, shifted_bayer_pattern
from .sources import FrameSource, cached_open_source, is_frame_file, read_header

__all__ = ["open_frames", "find_frame_files", "resolve_paths", "band_rows", "read_band", "DEFAULT_BAND_BYTES",
           "compute_into_arrays", "compute_options"]

#: Target size of one band chunk (all frames x some rows, float32). Two bands in flight per core
#: keep peak memory a few hundred MB whatever the number of frames. Below 32 MiB, glibc's malloc
#: serves a band from memory the process already has (larger blocks are mapped afresh each time,
#: and on a virtual machine every fresh page is a costly fault: a 24 MP night spent 15 s of system
#: time in them with 64 MiB bands, 8-10 s with these).
DEFAULT_BAND_BYTES = 24 * 2**20
#: Fewest bands a frame is split into by default (each at least 16 rows).
MIN_BANDS = 8


def find_frame_files(directory: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Frame files below ``directory`` (FITS, XISF, raw; any case), sorted by path."""
    root = Path(os.path.abspath(directory))
    if not root.is_dir():
        raise FrameReadError(root, "no such folder")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in root.glob(pattern) if p.is_file() and is_frame_file(p)
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def resolve_paths(source: Any) -> list[Path]:
    """The frame files a source names, as :func:`open_frames` reads them (absolute paths).

    ``source`` is a folder (its frame files, recursively), a file, a glob pattern, a list of files, or
    an object with ``.paths`` (a :class:`~astrocal_widgets.FrameGroup`).

    Raises
    ------
    FrameReadError
        A folder without frame files, or a pattern that matches nothing.
    AstrocalError
        An empty list.
    """
    if hasattr(source, "paths") and not isinstance(source, (str, os.PathLike)):
        return [Path(os.path.abspath(p)) for p in source.paths]
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        p = Path(text)
        if p.is_dir():
            paths = find_frame_files(p)
            if not paths:
                raise FrameReadError(p, "no frame files (.fits .fit .fts .xisf or raw) in this folder")
            return paths
        if p.exists():
            return [Path(os.path.abspath(p))]
        if any(ch in text for ch in "*?["):
            paths = sorted(Path(os.path.abspath(q)) for q in _glob.glob(text, recursive=True) if Path(q).is_file())
            if not paths:
                raise FrameReadError(text, "the pattern matches no file")
            return paths
        return [p]
    if isinstance(source, Iterable):
        paths = [Path(os.path.abspath(q)) for q in source]
        if not paths:
            raise AstrocalError("open_frames: the list of frames is empty")
        return paths
    raise TypeError(f"open_frames: cannot open frames from a {type(source).__name__}")


def band_rows(n_frames: int, height: int, width: int, band_bytes: int = DEFAULT_BAND_BYTES) -> int:
    """Rows per band so that one band of every frame (float32) stays near ``band_bytes``.

    At least :data:`MIN_BANDS` bands of 16 rows or more, so that two cores share the work and
    progress can be reported. The bands are then evened out so the last one is not a sliver.
    """
    rows = max(1, min(height, band_bytes // max(1, n_frames * width * 4)))
    # At least MIN_BANDS bands (of 16 rows or more), so both cores get work and progress moves.
    rows = min(rows, max(16, math.ceil(height / MIN_BANDS)))
    n_bands = math.ceil(height / rows)
    return math.ceil(height / n_bands)


def read_band(sources: Sequence[FrameSource], y0: int, y1: int) -> np.ndarray:
    """Rows ``y0:y1`` of every source, stacked as a ``(frame, rows, x)`` float32 array.

    Each file is opened once for the band and only the band's bytes are read.
    """
    height = y1 - y0
    width = sources[0].shape[1]
    out = np.empty((len(sources), height, width), dtype=np.float32)
    for i, src in enumerate(sources):
        src.read_rows_into(out[i], y0, y1)
    return out


def read_corrected_band(sources: Sequence[FrameSource], plan: OverscanPlan, y0: int, y1: int,
                        profiles: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Rows ``y0:y1`` of every source after overscan subtraction and trimming (``plan``), ``(frame, rows, x)``.

    Rows are counted in the trimmed frame. Each file is read for the band's rows only (full width:
    the overscan columns are in the same rows); ``profiles`` hold each frame's whole-strip level when
    the plan needs one (a fit, or a level per column).
    """
    out_sec = plan.output
    out = np.empty((len(sources), y1 - y0, out_sec.width), dtype=np.float32)
    for i, src in enumerate(sources):
        raw = src.read_rows(out_sec.y0 + y0, out_sec.y0 + y1)
        out[i] = plan.correct(raw, y0, None if profiles is None else profiles[i])
    return out


def _frame_profile(source: FrameSource, plan: OverscanPlan) -> np.ndarray:
    return plan.profile(source)


def _overscan_plans(sources: Sequence[FrameSource], headers: Sequence[Any], option: Any,
                    aliases: Mapping[str, Any] | None) -> OverscanPlan | None:
    """The one plan of a stack (None: nothing to do); frames of other sections are refused."""
    plans = [overscan_plan(h, s.shape, s.path, option, aliases=aliases) for h, s in zip(headers, sources)]
    first = plans[0]
    for src, plan in zip(sources[1:], plans[1:]):
        if (plan is None) != (first is None) or (plan is not None and plan.key != first.key):
            def words(p: OverscanPlan | None) -> str:
                if p is None:
                    return "no overscan or trim section"
                return (f"BIASSEC {p.biassec.fits if p.biassec else '-'}, "
                        f"trim {p.trimsec.fits if p.trimsec else '-'}")
            raise IncompatibleFramesError(
                f"frames differ in their overscan sections: {sources[0].path} has {words(first)} but "
                f"{src.path} has {words(plan)}; they cannot be stacked together (open each layout "
                "separately, or pass overscan='off' to read them untrimmed)")
    return first


def _parse_chunks(chunks: Any, n: int, height: int, width: int) -> tuple[int, int]:
    """(frames per chunk, rows per chunk) from the ``chunks`` argument."""
    frame_chunk, row_chunk = n, None
    if chunks is None or chunks == "auto":
        pass
    elif isinstance(chunks, int):
        row_chunk = chunks
    elif isinstance(chunks, Mapping):
        unknown = set(chunks) - {"frame", "y", "x"}
        if unknown:
            raise ValueError(f"chunks: unknown dimension(s) {sorted(unknown)}; use 'frame' and 'y'")
        if chunks.get("x", -1) not in (-1, None, width):
            raise ValueError("chunks: bands always span whole rows (x is never split); "
                             "averaged sigma and contiguous reads need full rows")
        f = chunks.get("frame", -1)
        frame_chunk = n if f in (-1, None) else int(f)
        y = chunks.get("y")
        row_chunk = None if y in (-1, None, "auto") else int(y)
        if y == -1:
            row_chunk = height
    elif isinstance(chunks, (tuple, list)) and len(chunks) in (2, 3):
        frame_chunk = n if chunks[0] in (-1, None) else int(chunks[0])
        row_chunk = height if chunks[1] == -1 else (None if chunks[1] is None else int(chunks[1]))
    else:
        raise ValueError(f"chunks: expected None, rows per band (int), a dict or a tuple, not {chunks!r}")
    frame_chunk = max(1, min(n, frame_chunk))
    if row_chunk is None:
        row_chunk = band_rows(frame_chunk, height, width)
    return frame_chunk, max(1, min(height, row_chunk))


def _splits(total: int, step: int) -> list[tuple[int, int]]:
    return [(start, min(total, start + step)) for start in range(0, total, step)]


def open_frames(source: Any, *, chunks: Any = None, aliases: Mapping[str, Any] | None = None,
                overscan: Any = "off") -> xr.DataArray:
    """Open frames as a lazy ``(frame, y, x)`` float32 cube whose coordinates come from the headers.

    Only headers are read here. Pixels are read when a chunk is computed, and a chunk reads only
    its rows of each file (a positioned read of the data unit for uncompressed FITS and XISF).

    Parameters
    ----------
    source : folder, glob pattern, list of paths, or catalogue group
        The frames. A folder is searched recursively for ``.fits .fit .fts`` (any case, ``.gz`` and
        tile-compressed too), ``.xisf`` and DSLR raw files.
    chunks : None, int, dict or tuple, optional
        Default: the whole frame axis times bands of rows sized to about 64 MiB. An int gives rows per
        band; a dict ``{"frame": n, "y": rows}`` or a tuple ``(n, rows)`` sets both. Bands always
        span whole rows.
    aliases : mapping, optional
        Field -> extra header keyword(s) for this call (see
        :func:`~astrocal_widgets.io.headers.frame_metadata`); a catalogue group passes its own.
    overscan : {'off', 'auto'}, Overscan or mapping, default 'off'
        ``'auto'``: where the headers give ``BIASSEC``, each row's overscan level (median of its
        overscan pixels) is subtracted, and where they give ``TRIMSEC`` (else ``DATASEC``) the frames
        are trimmed to it, band by band as they are read: every consumer sees corrected, trimmed frames.
        Frames without sections are read as they are. ``Overscan(method="mean", fit="poly")`` (or a
        dict of its fields) chooses the statistic and a smooth fit along the rows (see
        :mod:`astrocal_widgets.io.overscan`). ``'off'`` reads the stored pixels. The cube's
        ``attrs["overscan"]`` says what was done.

    Returns
    -------
    xarray.DataArray
        Named ``"frames"``, dims ``("frame", "y", "x")``, float32, dask-backed. Coordinates on
        ``frame``: ``path``, ``frame_type``, ``type_reason``, ``exposure`` (s), ``temperature``
        (°C), ``set_temperature``, ``gain``, ``offset``, ``iso``, ``filter``, ``xbinning``,
        ``ybinning``, ``egain`` (e-/ADU), ``readout_mode``, ``date_obs``, ``instrument``,
        ``bayer_pattern`` (the CFA pattern at ``[0, 0]`` as stored). Missing values are NaN or empty. Full headers:
        ``cube.astrocal.header(i)``.

    Raises
    ------
    FrameReadError
        A file is unreadable, truncated or not an image (the message names it).
    IncompatibleFramesError
        Frames differ in size, binning or (with ``overscan``) sections (the message names a file of each).
    SectionError
        With ``overscan``, a section that cannot be read or does not fit its frame (naming the file).
    """
    paths = resolve_paths(source)
    if aliases is None:
        aliases = getattr(source, "aliases", None)
    opened = [cached_open_source(p) for p in paths]
    headers = [h for h, _ in opened]
    sources = [s for _, s in opened]
    metas = [frame_metadata(h, s.path, s.shape, aliases=aliases) for h, s in opened]
    _check_same_geometry(sources, metas)
    plan = _overscan_plans(sources, headers, overscan, aliases)

    n = len(sources)
    height, width = sources[0].shape if plan is None else plan.output_shape
    frame_chunk, row_chunk = _parse_chunks(chunks, n, height, width)
    frame_splits = _splits(n, frame_chunk)
    row_splits = _splits(height, row_chunk)

    # Another name for corrected frames: integrate samples "read-frames-" cubes straight from the files.
    prefix = "read-frames-" if plan is None else "overscan-frames-"
    name = prefix + tokenize([(s.path, s.offset, s.shape) for s in sources], frame_chunk, row_chunk,
                             [os.stat(s.path).st_mtime_ns for s in sources], plan)
    dsk = {}
    profiles = [None] * n
    if plan is not None and plan.needs_profile:
        # One task per frame reads its overscan strip once; every band of the frame uses it.
        for k, src in enumerate(sources):
            profiles[k] = ("overscan-level-" + name, k)
            dsk[profiles[k]] = (_frame_profile, src, plan)
    for i, (f0, f1) in enumerate(frame_splits):
        group = tuple(sources[f0:f1])
        for j, (y0, y1) in enumerate(row_splits):
            if plan is None:
                dsk[(name, i, j, 0)] = (read_band, group, y0, y1)
            elif plan.needs_profile:
                dsk[(name, i, j, 0)] = (read_corrected_band, group, plan, y0, y1, list(profiles[f0:f1]))
            else:
                dsk[(name, i, j, 0)] = (read_corrected_band, group, plan, y0, y1)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    chunk_sizes = (tuple(b - a for a, b in frame_splits), tuple(b - a for a, b in row_splits), (width,))
    data = da.Array(graph, name, chunk_sizes, dtype=np.float32)

    coords: dict[str, Any] = {}
    for column in COORDINATE_COLUMNS:
        values = [m[column] for m in metas]
        if column == "date_obs":
            coords[column] = ("frame", np.array(values, dtype="datetime64[ms]").astype("datetime64[ns]"))
        elif isinstance(values[0], float):
            coords[column] = ("frame", np.array(values, dtype=np.float64))
        else:
            coords[column] = ("frame", np.array(values, dtype=object))
    attrs: dict[str, Any] = {"units": "adu", "n_frames": n}
    if plan is not None:
        attrs["overscan"] = plan.describe()
        attrs["overscan_plan"] = plan
        # An odd trim start moves the CFA pattern at [0, 0].
        coords["bayer_pattern"] = ("frame", np.array([shifted_bayer_pattern(str(p), plan.trimsec)
                                                      for p in coords["bayer_pattern"][1]], dtype=object))
    cube = xr.DataArray(data, dims=("frame", "y", "x"), coords=coords, name="frames", attrs=attrs)
    del headers  # headers stay reachable through the cache: cube.astrocal.header(i)
    return cube


def _check_same_geometry(sources: Sequence[FrameSource], metas: Sequence[dict]) -> None:
    first, meta0 = sources[0], metas[0]
    for src, meta in zip(sources[1:], metas[1:]):
        if src.shape != first.shape:
            raise IncompatibleFramesError(
                f"frames differ in size: {first.path} is {first.shape[1]} x {first.shape[0]} "
                f"but {src.path} is {src.shape[1]} x {src.shape[0]} (width x height); "
                "open each size separately (scan(...).groups() splits them)")
        for key in ("xbinning", "ybinning"):
            a, b = meta0[key], meta[key]
            # NaN means the header does not say: unknown is not a mismatch.
            if not (math.isnan(a) or math.isnan(b)) and a != b:
                raise IncompatibleFramesError(
                    f"frames differ in {key}: {first.path} has {a:g} but {src.path} has {b:g}; "
                    "open each binning separately")


@xr.register_dataarray_accessor("astrocal")
class AstrocalAccessor:
    """``cube.astrocal``: frame headers and helpers on cubes made by :func:`open_frames`."""

    def __init__(self, obj: xr.DataArray):
        self._obj = obj

    def header(self, frame: int | str) -> Any:
        """The full header of one frame, by position or by path."""
        if isinstance(frame, (int, np.integer)):
            path = str(self._obj["path"].values[frame])
        else:
            path = str(frame)
        return read_header(path)

    @property
    def headers(self) -> list[Any]:
        """All frames' full headers, in frame order."""
        return [read_header(p) for p in self._obj["path"].values]


def compute_into_arrays(arrays: Sequence[Any], dtypes: Sequence[Any],
                        out: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """Lazy arrays computed together into numpy arrays of ``dtypes``, band by band.

    On this process's own scheduler (threads or synchronous) each band is stored straight into the
    final array as it is made: ``dask.compute`` would hold every band and then their concatenation,
    twice the result (a quarter of a gigabyte for a 24-megapixel master and its rejection maps).
    Elsewhere (a cluster's client, or a task on a cluster's worker, whose bands other workers may
    compute) the results are computed and converted.

    ``out`` may give, per array, an existing array of its shape and dtype to store into (a buffer
    reused from one light to the next needs no fresh memory); None or a mismatch gets a new one.
    """
    lazy = [a for a in arrays if isinstance(a, da.Array)]
    if len(lazy) != len(arrays) or dask.base.get_scheduler(collections=lazy) not in (dask.threaded.get,
                                                                                     dask.local.get_sync):
        return [np.asarray(a, dtype=t) for a, t in zip(dask.compute(*arrays), dtypes)]
    given = list(out) if out is not None else [None] * len(lazy)
    targets = [b if b is not None and b.shape == a.shape and b.dtype == np.dtype(t) and b.flags.writeable
               else np.empty(a.shape, t) for a, t, b in zip(lazy, dtypes, given)]
    da.store(lazy, targets, lock=False, **compute_options(*lazy))
    return targets


def compute_options(*collections: Any) -> dict[str, Any]:
    """Keywords for ``dask.compute`` (or ``.compute()``) of band tasks: one thread per CPU.

    Called from any thread but the main one (a session's master threads, a dashboard's action),
    dask's threaded scheduler would start the CPUs + 4 threads, each holding a band: six bands in
    flight per master on 2 CPUs, 0.1-0.2 GB more at the peak of a 24-megapixel night, and no faster.
    A ``num_workers`` set in dask's configuration is kept; other schedulers get nothing.
    """
    if dask.base.get_scheduler(collections=list(collections)) is not dask.threaded.get:
        return {}
    return {"num_workers": dask.config.get("num_workers", None) or usable_cpus()}
