"""Simulated imaging sessions written as NINA would: folders, file names, headers, uint16 FITS.

:func:`simulate_session` writes a whole night (bias, darks, flats, dark flats, lights) and
:func:`simulate_stack` a single kind of frame (e.g. 100 large bias frames for a benchmark).
Both plan the frames first (:class:`FrameSpec`: what, when, at which temperature), then render
and write them one at a time, in a few threads, so memory holds a handful of frames whatever
the stack size. They return a :class:`SimulatedSession` with the ground truth.
"""
from __future__ import annotations

import dataclasses
import io
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from astropy.io import fits

from ..errors import OutputExistsError
from ..io.frame_types import FRAME_TYPES
from ..io.write import write_fits_atomic
from .camera import CameraModel, SensorModel, camera_preset, quantize, stream_rng
from .scene import DEFAULT_FILTERS, FilterSpec, LightConditions, Scene

__all__ = [
    "FRAME_KINDS",
    "DEFAULT_COUNTS",
    "FrameSpec",
    "SimulatedSession",
    "simulate_session",
    "simulate_stack",
]

FRAME_KINDS = FRAME_TYPES
#: Frames per group: bias in total, darks per dark exposure, flats per filter, dark flats per
#: flat exposure, lights per filter.
DEFAULT_COUNTS: Mapping[str, int] = {"bias": 20, "dark": 10, "flat": 12, "darkflat": 12, "light": 4}
LIGHT_EXPOSURE = 300.0
#: Darks matching the lights, and shorter ones for exposure-scaling lessons.
DARK_EXPOSURES = (300.0, 60.0)
DEFAULT_START = datetime(2022, 4, 10, 21, 0, 0)
TELESCOPE = ("Simulated 80 mm f/6 APO", 480.0, 6.0)  # name, focal length mm, focal ratio
OBJECT = "M 101"
#: Seconds between the end of one exposure and the start of the next (download, dither, ...).
_OVERHEAD = {"bias": 1.2, "dark": 2.5, "flat": 2.1, "darkflat": 2.1, "light": 8.4}
_SOFTWARE = {"nina3": "N.I.N.A. 3.1.2.9001", "nina2": "N.I.N.A. 2.3.0.2035"}
_NINA_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_.*_-?\d+\.\d\ds_\d{4}\.fits?$", re.IGNORECASE)

ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class FrameSpec:
    """Everything that distinguishes one simulated frame.

    Parameters
    ----------
    kind : str
        One of :data:`FRAME_KINDS`.
    index : int
        Position in its group (0-based; the file's frame number is ``index + 1``).
    exposure : float
        Exposure in s.
    filter : str or None
        Filter in the light path (flats and lights), None for bias and darks.
    set_temperature, temperature : float
        Cooler set point and actual sensor temperature in °C.
    date_obs : datetime
        Start of the exposure (UTC).
    flicker : bool
        Whether the flickering column is up in this frame.
    light : int or None
        Position of a light in the truth's ``light`` dimension.
    conditions : LightConditions or None
        Dither, seeing, sky and satellite of a light.
    """

    kind: str
    index: int
    exposure: float
    filter: str | None
    set_temperature: float
    temperature: float
    date_obs: datetime
    flicker: bool = False
    light: int | None = None
    conditions: LightConditions | None = None

    @property
    def labels(self) -> tuple:
        """Random-stream labels: the frame's noise depends on these and the seed only."""
        return (self.kind, self.filter, self.exposure, self.set_temperature, self.index)

    def imagetyp(self, darkflat_style: str) -> str:
        """IMAGETYP value; NINA 3 writes dark flats as plain DARK."""
        if self.kind == "darkflat":
            return "DARK" if darkflat_style == "nina3" else "DARKFLAT"
        return self.kind.upper()

    def relpath(self, darkflat_style: str) -> Path:
        """NINA's default ``$$DATEMINUS12$$/$$IMAGETYPE$$/$$DATETIME$$_$$FILTER$$_$$SENSORTEMP$$_$$EXPOSURETIME$$s_$$FRAMENR$$``."""
        night = (self.date_obs - timedelta(hours=12)).date().isoformat()  # a night stays in one folder after midnight
        name = (
            f"{self.date_obs:%Y-%m-%d_%H-%M-%S}_{self.filter or ''}_{self.temperature:.2f}"
            f"_{self.exposure:.2f}s_{self.index + 1:04d}.fits"
        )
        return Path(night, self.imagetyp(darkflat_style), name)


@dataclass
class SimulatedSession:
    """What :func:`simulate_session` or :func:`simulate_stack` wrote, with the ground truth.

    Attributes
    ----------
    directory : pathlib.Path
        Root folder of the session.
    camera : CameraModel
        The simulated camera.
    paths : dict of str to list of pathlib.Path
        Written files per kind (``bias``, ``dark``, ``flat``, ``darkflat``, ``light``), in time order.
    truth : xarray.Dataset
        ``bias`` (y, x) ADU pedestal with row/column pattern (no flicker); ``dark_current`` (y, x)
        ADU/s at the set temperature (hot/warm pixels and amp glow included; multiply by
        ``2**((CCD-TEMP - SET-TEMP) / dark_doubling_temperature)`` for a frame's temperature);
        ``flat`` (filter, y, x) mean 1; ``light_signal`` (light, y, x) ADU of sky and stars before
        the flat (the satellite trail and cosmic rays excluded); ``satellite_trail`` (y, x) ADU of
        the trail before the flat in the one light whose ``light_has_trail`` is True;
        ``hot_pixels``, ``warm_pixels``, ``cold_pixels`` (y, x) bool. Attributes: camera
        parameters, seed, flicker column, trail light. float32 unless noted.
    frames : pandas.DataFrame
        One row per file in time order: path, kind, imagetyp, filter, exposure, set_temp,
        ccd_temp, date_obs, frame number, flicker, cosmic_rays, satellite_trail.
    elapsed : float
        Seconds spent simulating and writing.
    """

    directory: Path
    camera: CameraModel
    paths: dict[str, list[Path]] = field(repr=False)
    truth: xr.Dataset = field(repr=False)
    frames: pd.DataFrame = field(repr=False)
    elapsed: float = 0.0

    @property
    def disk_bytes(self) -> int:
        """Total size in bytes of the written files."""
        return int(sum(p.stat().st_size for ps in self.paths.values() for p in ps))


# --- planning ---------------------------------------------------------------------------


def _temperature(camera: CameraModel, seed: int, set_temperature: float, labels: tuple) -> float:
    """Sensor temperature of one frame: set point plus a small regulation jitter (0.01 °C steps)."""
    jitter = stream_rng(seed, "ccd-temp", *labels).uniform(-1.0, 1.0) * camera.temperature_jitter
    return round(set_temperature + jitter, 2) + 0.0  # + 0.0 turns -0.0 into 0.0


class _Planner:
    """Lays frames out on a clock, the way a night unfolds."""

    def __init__(self, camera: CameraModel, seed: int, start: datetime, defects: bool, set_temperature: float):
        self.camera, self.seed, self.clock, self.defects = camera, seed, start, defects
        self.set_temperature = set_temperature
        self.specs: list[FrameSpec] = []

    def pause(self, seconds: float) -> None:
        self.clock += timedelta(seconds=seconds)

    def group(
        self, kind: str, n: int, exposure: float, filt: str | None = None, scene: Scene | None = None
    ) -> None:
        for i in range(n):
            labels = (kind, filt, float(exposure), self.set_temperature, i)
            spec = FrameSpec(
                kind=kind,
                index=i,
                exposure=float(exposure),
                filter=filt,
                set_temperature=self.set_temperature,
                temperature=_temperature(self.camera, self.seed, self.set_temperature, labels),
                date_obs=self.clock,
                # Exactly every third bias/dark frame, so "about a third" holds for any count
                # and each frame knows its state from its own index.
                flicker=self.defects and kind in ("bias", "dark", "darkflat") and i % 3 == 1,
            )
            if kind == "light":
                assert scene is not None and filt is not None
                spec = dataclasses.replace(spec, conditions=scene.conditions(filt, i))
            self.specs.append(spec)
            self.clock += timedelta(seconds=exposure + _OVERHEAD[kind])

    def finish(self) -> list[FrameSpec]:
        """Number the lights and put the satellite in exactly one of them."""
        lights = [k for k, s in enumerate(self.specs) if s.kind == "light"]
        if lights:
            hit = int(stream_rng(self.seed, "satellite-frame").integers(len(lights)))
            for n, k in enumerate(lights):
                cond = dataclasses.replace(self.specs[k].conditions, trail=(n == hit))
                self.specs[k] = dataclasses.replace(self.specs[k], light=n, conditions=cond)
        return self.specs


# --- rendering --------------------------------------------------------------------------


def _flat_rate(sensor: SensorModel, filt: FilterSpec) -> float:
    """Flat-panel electrons per second per pixel (at flat = 1) in ``filt``.

    Set so that a flat at the filter's own flat exposure has a mean raw level of
    ``filt.flat_level`` of the ADC range; flats at other exposures scale linearly.
    """
    cam = sensor.camera
    target = (filt.flat_level * cam.adc_max - cam.bias_level) * cam.gain
    dark = float(sensor.dark_rate.mean(dtype=np.float64)) * filt.flat_exposure
    return max(target - dark, 0.0) / filt.flat_exposure


@dataclass
class _Job:
    """Shared state of one writing run (read-only for the worker threads, except the truth slots)."""

    directory: Path
    sensor: SensorModel
    scene: Scene
    filters: dict[str, FilterSpec]
    darkflat_style: str
    overwrite: bool
    seed: int
    light_signal: np.ndarray  # (n_lights, h, w) float32, filled by the workers
    verify: bool = False  # the files are there already: check they are these frames, write nothing
    flat_rates: dict[str, float] = field(default_factory=dict)  # e-/s per pixel at flat = 1
    overscan: int = 0  # overscan columns right of the image (0: none)

    def prepare(self, specs: Sequence[FrameSpec]) -> None:
        """Compute the shared maps once, in the calling thread, before the workers read them."""
        names = sorted({s.filter for s in specs if s.filter is not None})
        self.sensor.prepare(names)
        self.flat_rates = {name: _flat_rate(self.sensor, self.filters[name]) for name in names}
        if any(s.kind == "light" for s in specs):
            self.scene.prepare()

    def write(self, spec: FrameSpec) -> int:
        """Render and write one frame; return its number of cosmic-ray hits."""
        sensor, cam = self.sensor, self.sensor.camera
        illumination = None
        if spec.kind == "flat":
            illumination = self.flat_rates[spec.filter] * spec.exposure
        elif spec.kind == "light":
            filt = self.filters[spec.filter]
            illumination = self.scene.sky_and_stars(filt, spec.exposure, spec.conditions)
            np.multiply(illumination, np.float32(1.0 / cam.gain), out=self.light_signal[spec.light])
            if spec.conditions.trail:
                illumination += self.scene.trail(filt)
        data, hits = sensor.expose(
            stream_rng(self.seed, "noise", *spec.labels),
            exposure=spec.exposure,
            temperature=spec.temperature,
            illumination=illumination,
            filter_name=spec.filter,
            flicker=spec.flicker,
        )
        if self.overscan:
            data = with_overscan(data, sensor, stream_rng(self.seed, "overscan", *spec.labels), self.overscan)
        hdu = fits.PrimaryHDU(data, header=_header(cam, spec, self.darkflat_style, self.seed, self.overscan,
                                                   sensor.shape))
        path = self.directory / spec.relpath(self.darkflat_style)
        if self.verify:
            rendered = io.BytesIO()
            fits.HDUList([hdu]).writeto(rendered, output_verify="silentfix")
            if path.read_bytes() != rendered.getvalue():
                raise OutputExistsError(path, "holds another frame than this simulation makes (another seed, "
                                              "shape or camera, or a changed file)")
            return hits
        write_fits_atomic(path, hdu, overwrite=self.overwrite)
        return hits


#: Largest per-frame shift of the bias level (ADU) in frames with overscan, and of its drift down the frame.
OVERSCAN_LEVEL_JUMP = 8
OVERSCAN_ROW_DRIFT = 3.0


def with_overscan(data: np.ndarray, sensor: SensorModel, rng: np.random.Generator, columns: int) -> np.ndarray:
    """The frame with ``columns`` overscan columns on its right, as a CCD reads them past the sensor.

    The overscan holds each row's bias level (the bias pedestal and its fixed row offsets) and read
    noise: no light, no dark current, no hot pixels. The readout electronics move the level of the
    whole frame by a few ADU from frame to frame (up to :data:`OVERSCAN_LEVEL_JUMP`), with a slight
    drift down the rows (up to :data:`OVERSCAN_ROW_DRIFT`); image and overscan move together, so only
    an overscan correction removes it. Whole ADU are added to the image, so its pixels stay exact.
    """
    cam = sensor.camera
    h, w = data.shape
    jump = float(rng.integers(-OVERSCAN_LEVEL_JUMP, OVERSCAN_LEVEL_JUMP + 1))
    drift = np.rint(jump + rng.uniform(-OVERSCAN_ROW_DRIFT, OVERSCAN_ROW_DRIFT) * np.arange(h) / max(1, h - 1))
    image = np.clip(data.astype(np.int32) + drift.astype(np.int32)[:, None], 0, cam.adc_max).astype(np.uint16)
    row_level = np.median(sensor.bias_map, axis=1) + drift  # the pedestal and row offsets of each row
    strip = rng.standard_normal((h, columns), dtype=np.float32) * np.float32(cam.read_noise / cam.gain)
    strip += row_level.astype(np.float32)[:, None]
    return np.concatenate([image, quantize(strip, cam.adc_max)], axis=1)


def _header(cam: CameraModel, spec: FrameSpec, darkflat_style: str, seed: int, overscan: int = 0,
            shape: tuple[int, int] | None = None) -> fits.Header:
    """FITS header with the keywords and order NINA writes (and IRAF's sections with overscan)."""
    cards: list[tuple] = [
        ("IMAGETYP", spec.imagetyp(darkflat_style), "Type of exposure"),
        ("EXPOSURE", spec.exposure, "[s] Exposure duration"),
        ("EXPTIME", spec.exposure, "[s] Exposure duration"),
        ("DATE-OBS", spec.date_obs.isoformat(timespec="milliseconds"), "Time of observation (UTC)"),
        ("XBINNING", 1, "X axis binning factor"),
        ("YBINNING", 1, "Y axis binning factor"),
        ("GAIN", cam.gain_setting, "Sensor gain"),
        ("OFFSET", cam.offset_setting, "Sensor gain offset"),
        ("EGAIN", cam.gain, "[e-/ADU] Electrons per A/D unit"),
        ("XPIXSZ", cam.pixel_size, "[um] Pixel X axis size"),
        ("YPIXSZ", cam.pixel_size, "[um] Pixel Y axis size"),
        ("INSTRUME", cam.name, "Imaging instrument name"),
        ("SET-TEMP", spec.set_temperature, "[degC] CCD temperature setpoint"),
        ("CCD-TEMP", spec.temperature, "[degC] CCD temperature"),
        ("READOUTM", cam.readout_mode, "Sensor readout mode"),
    ]
    if cam.bayer_pattern:
        cards += [
            ("BAYERPAT", cam.bayer_pattern.upper(), "Sensor Bayer pattern"),
            ("XBAYROFF", 0, "Bayer pattern X axis offset"),
            ("YBAYROFF", 0, "Bayer pattern Y axis offset"),
        ]
    name, focal, ratio = TELESCOPE
    cards += [
        ("TELESCOP", name, "Name of telescope"),
        ("FOCALLEN", focal, "[mm] Focal length"),
        ("FOCRATIO", ratio, "Focal ratio"),
    ]
    if spec.filter is not None:
        cards.append(("FILTER", spec.filter, "Active filter name"))
    if spec.kind == "light":
        cards.append(("OBJECT", OBJECT, "Name of the object of interest"))
    if overscan and shape is not None:
        h, w = shape
        cards += [
            ("BIASSEC", f"[{w + 1}:{w + overscan},1:{h}]", "overscan section"),
            ("TRIMSEC", f"[1:{w},1:{h}]", "section to keep after trimming"),
            ("DATASEC", f"[1:{w},1:{h}]", "image data section"),
        ]
    cards += [
        ("ROWORDER", "TOP-DOWN", "FITS Image Orientation"),
        ("SWCREATE", _SOFTWARE[darkflat_style], "Software that created this file"),
        ("COMMENT", f"Simulated frame (astrocal_widgets.simulate, seed {seed}), not a real exposure"),
    ]
    return fits.Header(cards)


# --- writing ----------------------------------------------------------------------------


def _check_folders(directory: Path, planned: Sequence[Path], overwrite: bool) -> bool:
    """Refuse to mix sessions: the target image-type folders must hold no FITS unless overwriting.

    With ``overwrite=True`` stale NINA-named FITS files that the new plan does not rewrite are
    removed, so a folder never mixes frames of two sessions (e.g. two seeds, whose file names
    differ in the temperature token).

    Returns True when the folders hold exactly the planned files already (a rerun): they are then
    checked frame by frame instead of written.
    """
    keep = set(planned)
    folders = sorted({p.parent for p in planned})
    existing = sorted(f for folder in folders if folder.is_dir() for f in folder.iterdir()
                      if f.is_file() and f.suffix.lower() in (".fits", ".fit", ".fts"))
    if existing and not overwrite:
        if set(existing) == keep:
            return True
        raise OutputExistsError(existing[0])
    for f in existing:
        if f not in keep and _NINA_NAME.match(f.name):
            f.unlink()
    return False


def _run(
    job: _Job, specs: Sequence[FrameSpec], progress: ProgressCallback | None, workers: int | None
) -> tuple[dict[str, list[Path]], pd.DataFrame]:
    """Render and write ``specs`` (a few at a time), reporting progress in the calling thread."""
    paths = [job.directory / s.relpath(job.darkflat_style) for s in specs]
    job.verify = _check_folders(job.directory, paths, job.overwrite)
    job.prepare(specs)
    if progress:
        progress(0.0, f"writing {len(specs)} frames to {job.directory}")
    workers = min(4, os.cpu_count() or 1) if workers is None else max(int(workers), 1)
    hits: list[int] = []
    # numpy's random generators, arithmetic and astropy's data write release the GIL, so a
    # couple of threads keep both cores busy; each holds one frame, never the whole stack.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for k, n in enumerate(pool.map(job.write, specs) if workers > 1 else map(job.write, specs)):
                hits.append(n)
                if progress:
                    progress((k + 1) / len(specs), f"{'checked' if job.verify else 'wrote'} {paths[k].name}")
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    by_kind: dict[str, list[Path]] = {k: [] for k in FRAME_KINDS}
    for s, p in zip(specs, paths):
        by_kind[s.kind].append(p)
    frames = pd.DataFrame(
        {
            "path": [str(p) for p in paths],
            "kind": [s.kind for s in specs],
            "imagetyp": [s.imagetyp(job.darkflat_style) for s in specs],
            "filter": [s.filter for s in specs],
            "exposure": [s.exposure for s in specs],
            "set_temp": [s.set_temperature for s in specs],
            "ccd_temp": [s.temperature for s in specs],
            "date_obs": pd.to_datetime([s.date_obs for s in specs]),
            "frame_number": [s.index + 1 for s in specs],
            "flicker": [s.flicker for s in specs],
            "cosmic_rays": hits,
            "satellite_trail": [bool(s.conditions and s.conditions.trail) for s in specs],
        }
    )
    return by_kind, frames


def _truth(job: _Job, specs: Sequence[FrameSpec], paths: Mapping[str, list[Path]]) -> xr.Dataset:
    """Ground-truth dataset of a run (see :class:`SimulatedSession`)."""
    sensor, cam = job.sensor, job.sensor.camera
    h, w = sensor.shape
    names = list(job.filters)
    lights = [s for s in specs if s.kind == "light"]
    trail_light = next((s for s in lights if s.conditions.trail), None)
    trail = np.zeros((h, w), np.float32)
    if trail_light is not None:
        trail = job.scene.trail(job.filters[trail_light.filter]) / np.float32(cam.gain)
    adu = {"units": "adu"}
    data_vars = {
        "bias": (("y", "x"), sensor.bias_map, adu),
        "dark_current": (("y", "x"), sensor.dark_rate / np.float32(cam.gain), {"units": "adu/s"}),
        "flat": (("filter", "y", "x"), np.stack([sensor.flat(f) for f in names]) if names else np.zeros((0, h, w), np.float32)),
        "light_signal": (("light", "y", "x"), job.light_signal, adu),
        "satellite_trail": (("y", "x"), trail, adu),
        "hot_pixels": (("y", "x"), sensor.hot_pixels),
        "warm_pixels": (("y", "x"), sensor.warm_pixels),
        "cold_pixels": (("y", "x"), sensor.cold_pixels),
    }
    coords = {
        "y": np.arange(h),
        "x": np.arange(w),
        "filter": names,
        "light": np.arange(len(lights)),
        "light_path": ("light", [str(p) for p in paths["light"]]),
        "light_filter": ("light", [s.filter for s in lights]),
        "light_exposure": ("light", np.array([s.exposure for s in lights], float)),
        "light_has_trail": ("light", np.array([s.conditions.trail for s in lights], bool)),
    }
    attrs: dict = {}
    for f in dataclasses.fields(cam):
        value = getattr(cam, f.name)
        attrs[f.name] = "" if value is None else list(value) if isinstance(value, tuple) else value
    attrs.update(
        seed=job.seed,
        darkflat_style=job.darkflat_style,
        flicker_column=sensor.flicker_column,
        overscan_columns=job.overscan,
        satellite_trail_light=-1 if trail_light is None else int(trail_light.light),
    )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# --- public API -------------------------------------------------------------------------


def _prepare(
    directory: str | os.PathLike,
    camera: str | CameraModel,
    seed: int,
    shape: Sequence[int],
    darkflat_style: str,
    defects: bool,
    filters: Iterable[FilterSpec] | None,
    camera_overrides: dict,
) -> tuple[Path, CameraModel, SensorModel, Scene, dict[str, FilterSpec]]:
    """Validate the common arguments and build the camera, sensor and scene models."""
    if darkflat_style not in _SOFTWARE:
        raise ValueError(f"darkflat_style must be 'nina3' or 'nina2', got {darkflat_style!r}")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if len(shape) != 2 or min(int(shape[0]), int(shape[1])) < 16:
        raise ValueError(f"shape must be (rows, columns), each >= 16, got {tuple(shape)!r}")
    cam = camera_preset(camera, **camera_overrides)
    if filters is None:
        filters = DEFAULT_FILTERS["osc" if cam.bayer_pattern else "mono"]
    fdict = {f.name: f for f in filters}
    if not fdict:
        raise ValueError("at least one filter is needed")
    shape2 = (int(shape[0]), int(shape[1]))
    sensor = SensorModel(
        cam,
        shape2,
        seed,
        filter_colours={f.name: f.colour for f in fdict.values()},
        filter_dust={f.name: f.dust_donuts for f in fdict.values()},
        defects=defects,
    )
    return Path(directory), cam, sensor, Scene(shape2, seed), fdict


def _execute(
    directory: Path,
    sensor: SensorModel,
    scene: Scene,
    filters: dict[str, FilterSpec],
    specs: list[FrameSpec],
    *,
    seed: int,
    darkflat_style: str,
    overwrite: bool,
    progress: ProgressCallback | None,
    workers: int | None,
    t0: float,
    overscan: int = 0,
) -> SimulatedSession:
    n_lights = sum(s.kind == "light" for s in specs)
    job = _Job(
        directory, sensor, scene, filters, darkflat_style, overwrite, int(seed),
        np.zeros((n_lights, *sensor.shape), np.float32), overscan=int(overscan),
    )
    paths, frames = _run(job, specs, progress, workers)
    truth = _truth(job, specs, paths)
    if progress:
        progress(1.0, f"done: {len(specs)} frames")
    return SimulatedSession(directory, sensor.camera, paths, truth, frames, time.perf_counter() - t0)


def _start(start: datetime | str) -> datetime:
    """Start time as a naive UTC datetime (DATE-OBS carries no time zone)."""
    dt = datetime.fromisoformat(start) if isinstance(start, str) else start
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def simulate_session(
    directory: str | os.PathLike,
    *,
    camera: str | CameraModel = "mono",
    seed: int = 0,
    shape: tuple[int, int] = (480, 640),
    counts: Mapping[str, int] | None = None,
    overwrite: bool = False,
    darkflat_style: str = "nina3",
    defects: bool = True,
    progress: ProgressCallback | None = None,
    filters: Sequence[FilterSpec] | None = None,
    start: datetime | str = DEFAULT_START,
    workers: int | None = None,
    overscan: int = 0,
    **camera_overrides,
) -> SimulatedSession:
    """Write a realistic simulated night of calibration frames and lights as NINA would.

    In time order: lights (``counts['light']`` per filter, 300 s) from ``start``, then per
    filter its flats and the dark flats at the flat exposure, then darks at 300 s and 60 s,
    then bias frames. Files are uint16 FITS (BITPIX 16, BZERO 32768) under
    ``<directory>/<night>/<IMAGETYP>/<date>_<time>_<filter>_<temp>_<exposure>s_<nnnn>.fits``.

    Parameters
    ----------
    directory : path-like
        Session root (created if needed).
    camera : {'mono', 'osc'} or CameraModel
        Monochrome camera, or one-shot colour with an RGGB mosaic.
    seed : int
        Same seed, same bytes; each frame's noise comes from ``(seed, kind, filter, exposure,
        set temperature, index)`` alone.
    shape : tuple of int
        Frame size (rows, columns).
    counts : mapping, optional
        Frames per group, overriding :data:`DEFAULT_COUNTS` (bias 20 in total; dark 10 per dark
        exposure; flat 12 per filter; darkflat 12 per flat exposure; light 4 per filter). 0 skips a kind.
    overwrite : bool
        Replace an existing session. Otherwise a folder holding exactly this session already (same
        files, same bytes: a rerun) is kept as it is, and image-type folders holding anything else
        are refused.
    darkflat_style : {'nina3', 'nina2'}
        NINA 3 writes dark flats as IMAGETYP='DARK' in the DARK folder; NINA 2 as 'DARKFLAT'
        in a DARKFLAT folder. Pixel data are the same.
    defects : bool
        Hot, warm and cold pixels and a flickering column (+30 ADU in every third bias, dark
        and dark-flat frame). False gives a clean sensor.
    progress : callable, optional
        ``progress(fraction, message)`` after each frame (called in the calling thread).
    filters : sequence of FilterSpec, optional
        Filters of the session; default ``L`` (flats 1.5 s) and ``Ha`` (8 s) for mono,
        ``UVIRCut`` and ``LExtreme`` for osc.
    start : datetime or str
        Start of the first light (UTC).
    workers : int, optional
        Writer threads (default: number of cores, at most 4).
    overscan : int, default 0
        Overscan columns to add right of each frame (a lab CCD's layout, see :func:`with_overscan`),
        named by ``BIASSEC``, ``TRIMSEC`` and ``DATASEC``. The bias level then jumps by a few ADU from
        frame to frame and drifts down the rows, in the image and the overscan alike. The truth stays
        in image pixels (``shape``); files are ``shape[1] + overscan`` columns wide.
    **camera_overrides
        :class:`CameraModel` fields, e.g. ``read_noise=5.0``.

    Returns
    -------
    SimulatedSession

    Raises
    ------
    OutputExistsError
        The session's folders already hold FITS files and ``overwrite`` is False.
    """
    if int(overscan) != overscan or overscan < 0:
        raise ValueError(f"overscan must be a number of columns >= 0, got {overscan!r}")
    t0 = time.perf_counter()
    directory, cam, sensor, scene, fdict = _prepare(
        directory, camera, seed, shape, darkflat_style, defects, filters, camera_overrides
    )
    unknown = set(counts or {}) - set(FRAME_KINDS)
    if unknown:
        raise ValueError(f"unknown frame kind(s) in counts: {sorted(unknown)}; use {FRAME_KINDS}")
    n = {k: int(v) for k, v in {**DEFAULT_COUNTS, **(counts or {})}.items()}
    if any(v < 0 for v in n.values()):
        raise ValueError(f"counts must be >= 0, got {dict(n)}")

    plan = _Planner(cam, seed, _start(start), defects, cam.set_temperature)
    for f in fdict:
        plan.group("light", n["light"], LIGHT_EXPOSURE, f, scene)
        plan.pause(45)  # filter change and refocus
    plan.pause(20 * 60)  # waiting for the flat panel at dawn, or a coffee
    done_darkflats: set[float] = set()
    for f in fdict.values():
        plan.group("flat", n["flat"], f.flat_exposure, f.name)
        if f.flat_exposure not in done_darkflats:  # one set of dark flats per flat exposure
            plan.group("darkflat", n["darkflat"], f.flat_exposure)
            done_darkflats.add(f.flat_exposure)
        plan.pause(30)
    plan.pause(10 * 60)  # scope capped
    for exposure in DARK_EXPOSURES:
        plan.group("dark", n["dark"], exposure)
    plan.group("bias", n["bias"], 0.0)
    return _execute(
        directory, sensor, scene, fdict, plan.finish(), seed=seed, darkflat_style=darkflat_style,
        overwrite=overwrite, progress=progress, workers=workers, t0=t0, overscan=overscan,
    )


def simulate_stack(
    directory: str | os.PathLike,
    kind: str,
    n: int,
    *,
    shape: tuple[int, int] = (480, 640),
    seed: int = 0,
    camera: str | CameraModel = "mono",
    exposure: float | None = None,
    filter: str | None = None,
    temperature: float | None = None,
    overwrite: bool = False,
    darkflat_style: str = "nina3",
    defects: bool = True,
    progress: ProgressCallback | None = None,
    filters: Sequence[FilterSpec] | None = None,
    start: datetime | str = DEFAULT_START,
    workers: int | None = None,
    **camera_overrides,
) -> SimulatedSession:
    """Write ``n`` frames of one kind only (e.g. 100 bias frames of 2000 x 3000 for a benchmark).

    Same camera model, file layout and per-frame seeding as :func:`simulate_session`: with the
    same seed, shape and camera, frame ``i`` of a stack has the pixel data of frame ``i`` of
    that kind's group in a session.

    Parameters
    ----------
    directory : path-like
        Session root.
    kind : {'bias', 'dark', 'flat', 'darkflat', 'light'}
    n : int
        Number of frames.
    shape, seed, camera, overwrite, darkflat_style, defects, progress, filters, start, workers, **camera_overrides
        As in :func:`simulate_session`.
    exposure : float, optional
        Exposure in s; default 0 for bias, 300 for darks and lights, the filter's flat
        exposure for flats and dark flats. Flats at another exposure scale linearly (the
        panel's brightness stays), which makes photon-transfer series easy.
    filter : str, optional
        Filter of flats and lights (default the first filter); for dark flats, the filter
        whose flat exposure they match.
    temperature : float, optional
        Cooler set point for this stack in °C (SET-TEMP), default the camera's. The camera's
        ``dark_current`` stays defined at ``camera.set_temperature``, so a stack at another
        temperature shows the doubling law.

    Returns
    -------
    SimulatedSession
        Truth as for a session; ``light_signal`` holds this stack's lights (none for other kinds).
    """
    t0 = time.perf_counter()
    if kind not in FRAME_KINDS:
        raise ValueError(f"kind must be one of {FRAME_KINDS}, got {kind!r}")
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    directory, cam, sensor, scene, fdict = _prepare(
        directory, camera, seed, shape, darkflat_style, defects, filters, camera_overrides
    )
    fname = next(iter(fdict)) if filter is None else filter
    if fname not in fdict:
        raise ValueError(f"unknown filter {fname!r}; the session's filters are {list(fdict)}")
    if exposure is None:
        exposure = {"bias": 0.0, "dark": 300.0, "light": LIGHT_EXPOSURE}.get(kind, fdict[fname].flat_exposure)
    if exposure < 0 or (kind == "bias" and exposure != 0):
        raise ValueError(f"exposure {exposure} s is not valid for {kind} frames")
    set_temp = cam.set_temperature if temperature is None else float(temperature)
    plan = _Planner(cam, seed, _start(start), defects, set_temp)
    plan.group(kind, int(n), exposure, fname if kind in ("flat", "light") else None, scene)
    return _execute(
        directory, sensor, scene, fdict, plan.finish(), seed=seed, darkflat_style=darkflat_style,
        overwrite=overwrite, progress=progress, workers=workers, t0=t0,
    )
