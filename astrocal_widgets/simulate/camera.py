"""Camera and sensor model of the simulator: what turns light into ADU.

:class:`CameraModel` holds the physical parameters of a cooled astronomy camera (with units);
:class:`SensorModel` turns them into fixed per-pixel maps for one frame size and seed (bias
pattern, dark current with hot and warm pixels and amp glow, flat fields with vignetting, dust,
PRNU, dead pixels and the colour filter array) and reads out a single exposure with
:meth:`SensorModel.expose`.

Random numbers are drawn from :func:`stream_rng`, a ``numpy.random.default_rng`` seeded from
the session seed and labels, so every map and every frame is reproducible on its own, whatever
else is simulated, in whatever order and in whichever thread.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping

import numpy as np

from ..io.cfa import CHANNEL_INDEX

__all__ = [
    "CameraModel",
    "CAMERA_PRESETS",
    "camera_preset",
    "SensorModel",
    "stream_rng",
    "bayer_channels",
    "shot_noise",
    "quantize",
]

# Above this many expected electrons the Poisson law is replaced by its Gaussian limit
# (same mean and variance, skewness 1/sqrt(lambda) < 3 %): several times faster for flats
# and star cores, indistinguishable once read noise and quantisation are added.
POISSON_GAUSS_THRESHOLD = 1000.0



@dataclass(frozen=True)
class CameraModel:
    """Physical parameters of a simulated cooled camera.

    The defaults describe a cooled 16-bit CMOS camera like those sold for deep-sky
    imaging (IMX571 class) at a low-noise gain setting. Pass a modified copy
    (``dataclasses.replace``) or keyword overrides to :func:`simulate_session`.

    Parameters
    ----------
    name : str
        Camera name, written as INSTRUME.
    gain : float
        Conversion gain in e-/ADU (written as EGAIN). Default 0.8.
    read_noise : float
        Read noise in e- rms (Gaussian, per pixel and frame). Default 3.5.
    dark_current : float
        Mean dark current in e-/s per pixel at ``set_temperature``, hot pixels and amp glow
        excluded. Default 0.02.
    dark_doubling_temperature : float
        Temperature step in °C over which the dark current doubles. Default 6.0.
    set_temperature : float
        Cooler set point in °C (SET-TEMP); ``dark_current`` is given at this temperature.
        Default -10.
    temperature_jitter : float
        Half-width in °C of the uniform scatter of the sensor temperature (CCD-TEMP) around
        the set point. Default 0.1.
    bias_level : float
        Mean bias pedestal in ADU (set by the OFFSET setting). Default 500.
    bit_depth : int
        ADC bits: values are clipped to ``0 .. 2**bit_depth - 1``. Default 16.
    full_well : float
        Full-well capacity in e-; a pixel holds no more. Default 60000 (above the ADC range
        at this gain, so the ADC clips first, as on real cameras at such gains).
    pixel_size : float
        Pixel pitch in µm (XPIXSZ, YPIXSZ). Default 3.76.
    bayer_pattern : str or None
        Colour filter array, e.g. ``'RGGB'`` (first row then second row, top-down), or
        None for a monochrome sensor.
    gain_setting : int
        Camera gain setting written as GAIN (a driver unit, not e-/ADU). Default 139.
    offset_setting : int
        Camera offset setting written as OFFSET. Default 21.
    readout_mode : str
        Readout mode written as READOUTM. Default ``'Normal'``.
    row_pattern : float
        Rms in ADU of the fixed per-row bias offsets. Default 1.0.
    column_pattern : float
        Rms in ADU of the fixed per-column bias offsets. Default 2.0.
    dark_nonuniformity : float
        Relative rms of the per-pixel dark current (DSNU), dimensionless. Default 0.1.
    hot_pixel_fraction : float
        Fraction of hot pixels. Default 5e-4 (0.05 %).
    hot_pixel_factor : tuple of float
        Range (log-uniform) of a hot pixel's dark current, in multiples of
        ``dark_current``. Default (100, 1000).
    warm_pixel_fraction : float
        Fraction of warm pixels. Default 2e-3 (0.2 %).
    warm_pixel_factor : tuple of float
        Range (log-uniform) of a warm pixel's dark current in multiples of
        ``dark_current``. Default (5, 20).
    cold_pixel_fraction : float
        Fraction of cold/dead pixels. Default 2e-4 (0.02 %).
    cold_pixel_response : tuple of float
        Range (uniform) of a cold pixel's response to light, relative. Default (0, 0.3).
    amp_glow : float
        Amp-glow dark signal in e-/s at the glowing corner. Default 1.0.
    amp_glow_scale : float
        E-folding distance of the glow as a fraction of the frame width. Default 0.08.
    amp_glow_corner : str
        Corner the glow comes from: ``'top-left'``, ``'top-right'``, ``'bottom-left'`` or
        ``'bottom-right'`` (top = first row, as ROWORDER='TOP-DOWN'). Default ``'top-right'``.
    prnu : float
        Pixel response non-uniformity, relative rms (Gaussian per pixel). Default 0.007.
    vignetting : float
        Relative illumination loss at the frame corners. Default 0.25.
    dust_donuts : int
        Number of dust shadows from the sensor window (present in every filter). Default 3.
    dust_depth : tuple of float
        Range (uniform) of a dust ring's relative darkening. Default (0.02, 0.05).
    channel_response : tuple of float
        Relative quantum efficiency of the R, G and B pixels of a colour sensor (ignored
        when ``bayer_pattern`` is None). Default (0.6, 1.0, 0.8).
    cosmic_ray_rate : float
        Cosmic-ray hits per megapixel per second of exposure. Default 0.04 (a few per 300 s
        frame of 0.3 Mpx; more than at sea level, on purpose, for rejection tests).
    cosmic_ray_readout_hits : float
        Hits per megapixel per frame whatever the exposure (so bias frames get a few).
        Default 6.0.
    cosmic_ray_energy : float
        Median energy deposited by one hit in e- (log-normal, spread over 1-4 pixels).
        Default 3000.
    flicker_column_jump : float
        Bias jump in ADU of the flickering column (only with ``defects=True``). Default 30.
    """

    name: str = "Simulated IMX571 mono"
    gain: float = 0.8
    read_noise: float = 3.5
    dark_current: float = 0.02
    dark_doubling_temperature: float = 6.0
    set_temperature: float = -10.0
    temperature_jitter: float = 0.1
    bias_level: float = 500.0
    bit_depth: int = 16
    full_well: float = 60000.0
    pixel_size: float = 3.76
    bayer_pattern: str | None = None
    gain_setting: int = 139
    offset_setting: int = 21
    readout_mode: str = "Normal"
    row_pattern: float = 1.0
    column_pattern: float = 2.0
    dark_nonuniformity: float = 0.1
    hot_pixel_fraction: float = 5e-4
    hot_pixel_factor: tuple[float, float] = (100.0, 1000.0)
    warm_pixel_fraction: float = 2e-3
    warm_pixel_factor: tuple[float, float] = (5.0, 20.0)
    cold_pixel_fraction: float = 2e-4
    cold_pixel_response: tuple[float, float] = (0.0, 0.3)
    amp_glow: float = 1.0
    amp_glow_scale: float = 0.08
    amp_glow_corner: str = "top-right"
    prnu: float = 0.007
    vignetting: float = 0.25
    dust_donuts: int = 3
    dust_depth: tuple[float, float] = (0.02, 0.05)
    channel_response: tuple[float, float, float] = (0.6, 1.0, 0.8)
    cosmic_ray_rate: float = 0.04
    cosmic_ray_readout_hits: float = 6.0
    cosmic_ray_energy: float = 3000.0
    flicker_column_jump: float = 30.0

    def __post_init__(self) -> None:
        problems = []
        if not self.gain > 0:
            problems.append(f"gain must be > 0 e-/ADU, got {self.gain}")
        if not 8 <= int(self.bit_depth) <= 16:
            problems.append(f"bit_depth must be 8..16 (written as uint16), got {self.bit_depth}")
        if self.read_noise < 0 or self.dark_current < 0:
            problems.append("read_noise and dark_current must be >= 0")
        if self.dark_doubling_temperature <= 0:
            problems.append("dark_doubling_temperature must be > 0 °C")
        if not 0 <= self.bias_level < 2**int(self.bit_depth):
            problems.append(f"bias_level {self.bias_level} ADU is outside the ADC range")
        if self.bayer_pattern is not None and (
            len(self.bayer_pattern) != 4 or sorted(self.bayer_pattern.upper()) != ["B", "G", "G", "R"]
        ):
            problems.append(f"bayer_pattern must be None or like 'RGGB', got {self.bayer_pattern!r}")
        if self.amp_glow_corner not in _GLOW_CORNERS:
            problems.append(f"amp_glow_corner must be one of {sorted(_GLOW_CORNERS)}")
        if problems:
            raise ValueError("invalid CameraModel: " + "; ".join(problems))

    @property
    def adc_max(self) -> int:
        """Largest value the ADC can return, ``2**bit_depth - 1`` (ADU)."""
        return 2 ** int(self.bit_depth) - 1

    def dark_scale(self, temperature: float) -> float:
        """Dark current at ``temperature`` (°C) relative to that at the set temperature."""
        return float(2.0 ** ((temperature - self.set_temperature) / self.dark_doubling_temperature))


_GLOW_CORNERS = {"top-left": (0, 0), "top-right": (0, 1), "bottom-left": (1, 0), "bottom-right": (1, 1)}

CAMERA_PRESETS: Mapping[str, CameraModel] = {
    "mono": CameraModel(),
    "osc": CameraModel(name="Simulated IMX571 colour", bayer_pattern="RGGB", gain_setting=100, offset_setting=50),
}


def camera_preset(camera: str | CameraModel = "mono", **overrides) -> CameraModel:
    """Return a camera model from a preset name (``'mono'``, ``'osc'``) or a model, with overrides.

    Parameters
    ----------
    camera : str or CameraModel
        Preset name or a ready model.
    **overrides
        Fields of :class:`CameraModel` to replace, e.g. ``read_noise=5.0``.

    Raises
    ------
    ValueError
        Unknown preset name.
    TypeError
        An override that is not a CameraModel field.
    """
    if isinstance(camera, CameraModel):
        model = camera
    else:
        try:
            model = CAMERA_PRESETS[camera]
        except KeyError:
            raise ValueError(f"unknown camera {camera!r}; choose one of {sorted(CAMERA_PRESETS)} or pass a CameraModel") from None
    fields = {f.name for f in dataclasses.fields(CameraModel)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown camera parameter(s) {unknown}; CameraModel fields are {sorted(fields)}")
    return dataclasses.replace(model, **overrides) if overrides else model


def _label_code(label: object) -> int:
    """Map a label (str, number, None) to a non-negative int for SeedSequence entropy."""
    if label is None:
        return 0
    if isinstance(label, (bool, np.bool_)):
        return int(label)
    if isinstance(label, (int, np.integer)):
        return int(label) if label >= 0 else zlib.crc32(str(label).encode())
    if isinstance(label, (float, np.floating)):
        return zlib.crc32(f"{float(label):.6f}".encode())  # exposure 1.5 and 1.50 give the same stream
    return zlib.crc32(str(label).encode())


def stream_rng(seed: int, *labels: object) -> np.random.Generator:
    """Independent random generator for ``seed`` and a tuple of labels.

    Parameters
    ----------
    seed : int
        Session seed (>= 0).
    *labels
        Strings or numbers naming the stream, e.g. ``("noise", "dark", None, 300.0, 3)``.

    Returns
    -------
    numpy.random.Generator
        ``default_rng`` seeded from ``(seed, *labels)``: the same labels always give the same
        numbers, different labels independent ones.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(_label_code(x) for x in labels)]))


def bayer_channels(pattern: str | None, shape: tuple[int, int]) -> np.ndarray | None:
    """Colour index (0 = R, 1 = G, 2 = B) of every pixel for a Bayer pattern, or None for mono.

    ``pattern`` lists the top-left 2x2 cell row by row, first row of the data first
    (ROWORDER='TOP-DOWN', XBAYROFF = YBAYROFF = 0).
    """
    if pattern is None:
        return None
    cell = np.array([CHANNEL_INDEX[c] for c in pattern.upper()], dtype=np.uint8).reshape(2, 2)
    h, w = shape
    return np.tile(cell, ((h + 1) // 2, (w + 1) // 2))[:h, :w]


def shot_noise(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw photo-electrons: Poisson of ``expected`` (e-), Gaussian limit above 1000 e-.

    Parameters
    ----------
    expected : ndarray of float32
        Expected electrons per pixel (>= 0).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of float32
    """
    big = expected >= POISSON_GAUSS_THRESHOLD
    if not big.any():
        return rng.poisson(expected).astype(np.float32)
    out = rng.standard_normal(expected.shape, dtype=np.float32)
    out *= np.sqrt(expected)
    out += expected
    small = ~big
    if small.any():
        out[small] = rng.poisson(expected[small])
    return out


def _smooth_ring(r: np.ndarray, inner: float, outer: float, edge: float = 1.5) -> np.ndarray:
    """1 inside the annulus inner <= r <= outer, 0 outside, with logistic edges ``edge`` px wide."""
    with np.errstate(over="ignore"):  # far from the ring exp overflows to inf, and 1 / (1 + inf) is the 0 wanted
        return 1.0 / (1.0 + np.exp((r - outer) / edge)) * (1.0 / (1.0 + np.exp((inner - r) / edge)))


class SensorModel:
    """Fixed per-pixel maps of one camera at one frame size, and the read-out of exposures.

    Parameters
    ----------
    camera : CameraModel
    shape : tuple of int
        Frame size (rows, columns).
    seed : int
        Session seed; maps come from ``stream_rng(seed, <map name>)``.
    filter_colours : mapping of str to (float, float, float)
        Per filter, the relative transmission seen by R, G and B pixels (only used for
        colour sensors). Filters not listed transmit (1, 1, 1).
    filter_dust : mapping of str to int, optional
        Per filter, the number of dust donuts from dust on the filter itself (default 1).
    defects : bool
        Whether the sensor has hot, warm and cold pixels and a flickering column.

    Notes
    -----
    Maps are computed on first use and cached; they are read-only afterwards, so one model
    can serve several threads rendering different frames.
    """

    def __init__(
        self,
        camera: CameraModel,
        shape: tuple[int, int],
        seed: int,
        *,
        filter_colours: Mapping[str, tuple[float, float, float]] | None = None,
        filter_dust: Mapping[str, int] | None = None,
        defects: bool = True,
    ):
        self.camera = camera
        self.shape = (int(shape[0]), int(shape[1]))
        self.seed = int(seed)
        self.filter_colours = dict(filter_colours or {})
        self.filter_dust = dict(filter_dust or {})
        self.defects = bool(defects)
        self._flats: dict[str, np.ndarray] = {}

    @property
    def npix(self) -> int:
        return self.shape[0] * self.shape[1]

    def prepare(self, filter_names: Iterable[str] = ()) -> None:
        """Compute the maps a read-out needs now, so threads later only read them."""
        _ = self.bias_map, self.dark_rate, self.flicker_column
        for name in filter_names:
            self.flat(name)

    # --- bias -------------------------------------------------------------------------
    @cached_property
    def bias_map(self) -> np.ndarray:
        """Bias pedestal in ADU: bias level + fixed row and column offsets (float32)."""
        rng = stream_rng(self.seed, "bias-pattern")
        h, w = self.shape
        rows = rng.standard_normal(h).astype(np.float32) * np.float32(self.camera.row_pattern)
        cols = rng.standard_normal(w).astype(np.float32) * np.float32(self.camera.column_pattern)
        return np.float32(self.camera.bias_level) + rows[:, None] + cols[None, :]

    @cached_property
    def flicker_column(self) -> int:
        """Column whose bias jumps in some bias/dark frames, or -1 without defects."""
        if not self.defects:
            return -1
        # Away from the edges so cropping or an overscan-like border never hides it.
        w = self.shape[1]
        return int(stream_rng(self.seed, "flicker-column").integers(w // 8, w - w // 8))

    # --- defects ----------------------------------------------------------------------
    @cached_property
    def _defect_maps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(hot, warm, cold masks, dark multiplier, light response) drawn together so they never overlap."""
        cam, n = self.camera, self.npix
        hot = np.zeros(n, bool)
        warm = np.zeros(n, bool)
        cold = np.zeros(n, bool)
        dark_factor = np.ones(n, np.float32)
        response = np.ones(n, np.float32)
        if self.defects:
            rng = stream_rng(self.seed, "defects")
            k = [int(round(f * n)) for f in (cam.hot_pixel_fraction, cam.warm_pixel_fraction, cam.cold_pixel_fraction)]
            idx = rng.choice(n, size=min(sum(k), n), replace=False)
            i_hot, i_warm, i_cold = np.split(idx, [k[0], k[0] + k[1]])
            hot[i_hot] = warm[i_warm] = cold[i_cold] = True
            lo, hi = np.log(cam.hot_pixel_factor)
            dark_factor[i_hot] = np.exp(rng.uniform(lo, hi, i_hot.size))
            lo, hi = np.log(cam.warm_pixel_factor)
            dark_factor[i_warm] = np.exp(rng.uniform(lo, hi, i_warm.size))
            response[i_cold] = rng.uniform(*cam.cold_pixel_response, i_cold.size)
        shp = self.shape
        return hot.reshape(shp), warm.reshape(shp), cold.reshape(shp), dark_factor.reshape(shp), response.reshape(shp)

    @property
    def hot_pixels(self) -> np.ndarray:
        """Bool map of hot pixels (dark current 100-1000x)."""
        return self._defect_maps[0]

    @property
    def warm_pixels(self) -> np.ndarray:
        """Bool map of warm pixels (dark current 5-20x)."""
        return self._defect_maps[1]

    @property
    def cold_pixels(self) -> np.ndarray:
        """Bool map of cold/dead pixels (low response to light)."""
        return self._defect_maps[2]

    # --- dark current -------------------------------------------------------------------
    @cached_property
    def amp_glow_map(self) -> np.ndarray:
        """Amp-glow rate in e-/s at the set temperature (float32)."""
        cam = self.camera
        h, w = self.shape
        cy, cx = _GLOW_CORNERS[cam.amp_glow_corner]
        y = np.arange(h, dtype=np.float32) - cy * (h - 1)
        x = np.arange(w, dtype=np.float32) - cx * (w - 1)
        d = np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)
        return (np.float32(cam.amp_glow) * np.exp(-d / np.float32(max(cam.amp_glow_scale * w, 1e-3)))).astype(np.float32)

    @cached_property
    def dark_rate(self) -> np.ndarray:
        """Dark signal rate in e-/s at the set temperature: DSNU x hot/warm factors + amp glow."""
        cam = self.camera
        rng = stream_rng(self.seed, "dark-nonuniformity")
        dsnu = 1.0 + np.float32(cam.dark_nonuniformity) * rng.standard_normal(self.shape, dtype=np.float32)
        np.maximum(dsnu, 0.0, out=dsnu)
        rate = np.float32(cam.dark_current) * dsnu * self._defect_maps[3]
        rate += self.amp_glow_map
        return rate

    # --- flat fields --------------------------------------------------------------------
    @cached_property
    def _optics(self) -> np.ndarray:
        """Vignetting x sensor-window dust x PRNU x cold-pixel response (not normalised)."""
        cam = self.camera
        h, w = self.shape
        rng = stream_rng(self.seed, "optics")
        # Optical axis slightly off the frame centre, as in a real, imperfectly squared train.
        oy = (h - 1) / 2 + rng.uniform(-0.03, 0.03) * h
        ox = (w - 1) / 2 + rng.uniform(-0.03, 0.03) * w
        rc = np.hypot(h / 2, w / 2)
        y2 = ((np.arange(h, dtype=np.float32) - np.float32(oy)) / np.float32(rc)) ** 2
        x2 = ((np.arange(w, dtype=np.float32) - np.float32(ox)) / np.float32(rc)) ** 2
        r2 = y2[:, None] + x2[None, :]
        flat = 1.0 - np.float32(cam.vignetting) * (0.6 * r2 + 0.4 * r2 * r2)
        self._add_dust(flat, rng, cam.dust_donuts, radius=(0.02, 0.035))
        prnu = stream_rng(self.seed, "prnu").standard_normal(self.shape, dtype=np.float32)
        prnu *= np.float32(cam.prnu)
        prnu += 1.0
        flat *= prnu
        flat *= self._defect_maps[4]
        return flat

    def _add_dust(self, flat: np.ndarray, rng: np.random.Generator, n: int, radius: tuple[float, float]) -> None:
        """Darken ``flat`` in place with ``n`` dust donuts (out-of-focus rings with a central hole)."""
        h, w = flat.shape
        size = min(h, w)
        for _ in range(int(n)):
            outer = max(rng.uniform(*radius) * size, 3.0)
            inner = 0.45 * outer  # the hole is the shadow of the telescope's central obstruction / focal ratio cone
            depth = rng.uniform(*self.camera.dust_depth)
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            r0, r1 = int(max(cy - outer - 6, 0)), int(min(cy + outer + 6, h))
            c0, c1 = int(max(cx - outer - 6, 0)), int(min(cx + outer + 6, w))
            if r0 >= r1 or c0 >= c1:
                continue
            yy = np.arange(r0, r1, dtype=np.float32)[:, None] - np.float32(cy)
            xx = np.arange(c0, c1, dtype=np.float32)[None, :] - np.float32(cx)
            ring = _smooth_ring(np.sqrt(yy * yy + xx * xx), inner, outer)
            flat[r0:r1, c0:c1] *= (1.0 - np.float32(depth) * ring).astype(np.float32)

    def flat(self, filter_name: str) -> np.ndarray:
        """Flat field of ``filter_name`` normalised to mean 1 (float32, cached).

        Vignetting, dust on the sensor window plus the filter's own dust, PRNU, cold pixels
        and, for colour sensors, each channel's response times the filter's transmission.
        """
        if filter_name not in self._flats:
            flat = self._optics.copy()
            rng = stream_rng(self.seed, "filter-dust", filter_name)
            # Dust on the filter is farther from the sensor: bigger, fainter donuts.
            self._add_dust(flat, rng, self.filter_dust.get(filter_name, 1), radius=(0.05, 0.07))
            chan = bayer_channels(self.camera.bayer_pattern, self.shape)
            if chan is not None:
                colour = self.filter_colours.get(filter_name, (1.0, 1.0, 1.0))
                gains = np.asarray(self.camera.channel_response, np.float32) * np.asarray(colour, np.float32)
                flat *= gains[chan]
            flat /= np.float32(flat.mean(dtype=np.float64))
            flat.setflags(write=False)
            self._flats[filter_name] = flat
        return self._flats[filter_name]

    # --- read-out -----------------------------------------------------------------------
    def expose(
        self,
        rng: np.random.Generator,
        *,
        exposure: float,
        temperature: float,
        illumination: np.ndarray | float | None = None,
        filter_name: str | None = None,
        flicker: bool = False,
    ) -> tuple[np.ndarray, int]:
        """Simulate one exposure and return the raw frame as uint16 and its cosmic-ray count.

        Parameters
        ----------
        rng : numpy.random.Generator
            The frame's own noise generator.
        exposure : float
            Exposure time in s.
        temperature : float
            Actual sensor temperature in °C (scales the dark current).
        illumination : ndarray, float or None
            Electrons per pixel arriving during the exposure before the flat field (scene);
            None for dark frames.
        filter_name : str, optional
            Filter whose flat field shapes the illumination (required with illumination).
        flicker : bool
            Raise the flickering column by ``camera.flicker_column_jump`` ADU.

        Returns
        -------
        data : ndarray of uint16
            Clipped to ``0 .. camera.adc_max``.
        n_cosmic_rays : int
        """
        cam = self.camera
        expected = None
        if exposure > 0:
            expected = self.dark_rate * np.float32(exposure * cam.dark_scale(temperature))
        if illumination is not None:
            if filter_name is None:
                raise ValueError("illumination needs the filter whose flat field it goes through")
            light = self.flat(filter_name) * np.asarray(illumination, np.float32)
            expected = light if expected is None else expected + light
        electrons = shot_noise(expected, rng) if expected is not None else np.zeros(self.shape, np.float32)
        n_hits = self._add_cosmic_rays(electrons, rng, exposure)
        np.minimum(electrons, np.float32(cam.full_well), out=electrons)
        noise = rng.standard_normal(self.shape, dtype=np.float32)
        noise *= np.float32(cam.read_noise)
        electrons += noise
        electrons *= np.float32(1.0 / cam.gain)
        electrons += self.bias_map
        if flicker and self.flicker_column >= 0:
            electrons[:, self.flicker_column] += np.float32(cam.flicker_column_jump)
        return quantize(electrons, cam.adc_max), n_hits

    def _add_cosmic_rays(self, electrons: np.ndarray, rng: np.random.Generator, exposure: float) -> int:
        """Add cosmic-ray hits (short tracks of 1-4 pixels) to ``electrons`` in place."""
        cam = self.camera
        mean = self.npix / 1e6 * (cam.cosmic_ray_rate * exposure + cam.cosmic_ray_readout_hits)
        n = int(rng.poisson(mean))
        if n == 0:
            return 0
        h, w = self.shape
        y0 = rng.uniform(0, h, n)
        x0 = rng.uniform(0, w, n)
        length = rng.integers(1, 5, n)
        angle = rng.uniform(0, np.pi, n)
        energy = rng.lognormal(np.log(cam.cosmic_ray_energy), 0.6, n)
        step = np.concatenate([np.arange(k) for k in length])
        hit = np.repeat(np.arange(n), length)
        ys = np.floor(y0[hit] + step * np.sin(angle[hit])).astype(np.intp)
        xs = np.floor(x0[hit] + step * np.cos(angle[hit])).astype(np.intp)
        share = (energy / length)[hit] * rng.uniform(0.5, 1.5, hit.size)
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        np.add.at(electrons, (ys[inside], xs[inside]), share[inside].astype(np.float32))
        return n


def quantize(adu: np.ndarray, adc_max: int) -> np.ndarray:
    """Round ADU to integers and clip to the ADC range ``0 .. adc_max`` (uint16). Modifies ``adu``."""
    np.rint(adu, out=adu)
    np.clip(adu, 0, adc_max, out=adu)
    return adu.astype(np.uint16)
