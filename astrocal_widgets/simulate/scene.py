"""The sky in front of the simulated camera: filters, sky background, stars and a satellite.

Everything here is in electrons arriving at a pixel *before* the flat field (vignetting,
dust, PRNU and the colour filter array are the sensor model's business), so that the truth
``light_signal`` is simply these electrons divided by the gain.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .camera import stream_rng

__all__ = ["FilterSpec", "DEFAULT_FILTERS", "LightConditions", "Scene"]


@dataclass(frozen=True)
class FilterSpec:
    """One filter of the simulated session.

    Parameters
    ----------
    name : str
        Filter name (FILTER keyword and file-name token).
    flat_exposure : float
        Exposure of its flats and dark flats, in s.
    flat_level : float
        Mean raw level of its flats as a fraction of the ADC range (bias included).
    sky_rate : float
        Sky background in e-/s per pixel (before the flat field).
    star_scale : float
        Star fluxes relative to the broadband reference (1 for L).
    colour : tuple of float
        Transmission seen by R, G and B pixels of a colour sensor, relative.
    dust_donuts : int
        Dust shadows from dust on this filter (on top of the sensor window's).
    """

    name: str
    flat_exposure: float
    flat_level: float = 0.47
    sky_rate: float = 1.5
    star_scale: float = 1.0
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    dust_donuts: int = 1


DEFAULT_FILTERS: dict[str, tuple[FilterSpec, ...]] = {
    "mono": (
        FilterSpec("L", flat_exposure=1.5, sky_rate=1.5, star_scale=1.0),
        FilterSpec("Ha", flat_exposure=8.0, sky_rate=0.08, star_scale=0.05),
    ),
    # A colour camera behind a UV/IR-cut filter and a dual-band (Ha + OIII) filter: the
    # dual-band passes mostly red (Ha) and some green/blue (OIII), so its flat is reddish.
    "osc": (
        FilterSpec("UVIRCut", flat_exposure=1.5, sky_rate=1.5, star_scale=1.0),
        FilterSpec("LExtreme", flat_exposure=8.0, sky_rate=0.1, star_scale=0.06, colour=(1.0, 0.35, 0.45)),
    ),
}


@dataclass(frozen=True)
class LightConditions:
    """What changes from one light frame to the next.

    Parameters
    ----------
    dx, dy : float
        Dither offset of the star field in pixels (columns, rows).
    seeing : float
        Gaussian PSF sigma in pixels.
    sky_scale : float
        Sky brightness relative to the filter's ``sky_rate``.
    trail : bool
        Whether the session's satellite crosses this frame.
    """

    dx: float
    dy: float
    seeing: float
    sky_scale: float
    trail: bool = False


class Scene:
    """Sky background, star field and satellite trail for one frame size and seed.

    Parameters
    ----------
    shape : tuple of int
        Frame size (rows, columns).
    seed : int
        Session seed.
    star_density : float
        Field stars per pixel (a power-law brightness distribution, plus a few very bright
        stars that saturate the ADC in broadband lights).
    """

    #: dither amplitude in px (uniform, each axis)
    DITHER = 4.0
    #: median PSF sigma in px (FWHM about 3.3 px)
    SEEING = 1.4
    #: faintest and brightest field star in e-/s (broadband), and bright-star range
    FIELD_FLUX = (3.0, 1500.0)
    BRIGHT_FLUX = (3000.0, 30000.0)
    #: relative sky gradient across the frame (light pollution)
    SKY_GRADIENT = 0.1
    #: satellite trail peak in e- (broadband; scaled by the filter's star_scale) and sigma in px
    TRAIL_PEAK = 5000.0
    TRAIL_WIDTH = 1.0

    def __init__(self, shape: tuple[int, int], seed: int, *, star_density: float = 1 / 1200):
        self.shape = (int(shape[0]), int(shape[1]))
        self.seed = int(seed)
        self.star_density = float(star_density)

    def prepare(self) -> None:
        """Compute the star catalogue and sky gradient now, so threads later only read them."""
        _ = self.stars, self.sky_gradient

    @cached_property
    def stars(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Star catalogue ``(y, x, flux)``: positions in px of the undithered frame, flux in e-/s."""
        rng = stream_rng(self.seed, "stars")
        h, w = self.shape
        margin = self.DITHER + 10  # stars just outside can dither in
        area = (h + 2 * margin) * (w + 2 * margin)
        n = int(rng.poisson(area * self.star_density))
        lo, hi = self.FIELD_FLUX
        # Euclidean counts N(>F) ~ F^-1.5, truncated at hi: inverse-CDF sampling.
        u = rng.uniform((hi / lo) ** -1.5, 1.0, n)
        flux = lo * u ** (-1 / 1.5)
        n_bright = max(3, int(round(h * w / 1e5)))
        flux = np.concatenate([flux, np.exp(rng.uniform(*np.log(self.BRIGHT_FLUX), n_bright))])
        m = flux.size
        y = rng.uniform(-margin, h + margin, m)
        x = rng.uniform(-margin, w + margin, m)
        # Keep the bright stars off the very edge so they stay inside after dithering.
        yb = slice(n, m)
        y[yb] = rng.uniform(0.1 * h, 0.9 * h, n_bright)
        x[yb] = rng.uniform(0.1 * w, 0.9 * w, n_bright)
        return y, x, flux

    @cached_property
    def sky_gradient(self) -> np.ndarray:
        """Relative sky brightness across the frame, mean 1 (a linear light-pollution gradient)."""
        rng = stream_rng(self.seed, "sky-gradient")
        theta = rng.uniform(0, 2 * np.pi)
        h, w = self.shape
        gy = (np.linspace(-0.5, 0.5, h, dtype=np.float32) * np.float32(np.sin(theta)))[:, None]
        gx = (np.linspace(-0.5, 0.5, w, dtype=np.float32) * np.float32(np.cos(theta)))[None, :]
        return 1.0 + np.float32(self.SKY_GRADIENT) * (gy + gx)

    @cached_property
    def trail_line(self) -> tuple[float, float, float]:
        """Satellite path ``(y0, x0, angle)``: a point near the centre and a direction in rad."""
        rng = stream_rng(self.seed, "satellite")
        h, w = self.shape
        return rng.uniform(0.3 * h, 0.7 * h), rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0, np.pi)

    def conditions(self, filter_name: str, index: int, trail: bool = False) -> LightConditions:
        """Dither, seeing and sky brightness of light ``index`` of ``filter_name`` (reproducible)."""
        rng = stream_rng(self.seed, "conditions", filter_name, index)
        return LightConditions(
            dx=float(rng.uniform(-self.DITHER, self.DITHER)),
            dy=float(rng.uniform(-self.DITHER, self.DITHER)),
            seeing=float(self.SEEING * np.clip(1 + 0.07 * rng.standard_normal(), 0.8, 1.3)),
            sky_scale=float(1 + 0.05 * rng.standard_normal()),
            trail=trail,
        )

    def sky_and_stars(self, filt: FilterSpec, exposure: float, cond: LightConditions) -> np.ndarray:
        """Electrons per pixel from sky and stars over ``exposure`` s, before the flat field (float32)."""
        out = self.sky_gradient * np.float32(filt.sky_rate * cond.sky_scale * exposure)
        y, x, flux = self.stars
        _add_gaussians(out, y + cond.dy, x + cond.dx, flux * (filt.star_scale * exposure), cond.seeing)
        return out

    def trail(self, filt: FilterSpec) -> np.ndarray:
        """Electrons per pixel of the satellite trail, before the flat field (float32)."""
        y0, x0, angle = self.trail_line
        h, w = self.shape
        yy = np.arange(h, dtype=np.float32)[:, None] - np.float32(y0)
        xx = np.arange(w, dtype=np.float32)[None, :] - np.float32(x0)
        d = yy * np.float32(np.cos(angle)) - xx * np.float32(np.sin(angle))  # distance from the line
        peak = np.float32(self.TRAIL_PEAK * filt.star_scale)
        return peak * np.exp(-0.5 * (d / np.float32(self.TRAIL_WIDTH)) ** 2)


def _add_gaussians(out: np.ndarray, y: np.ndarray, x: np.ndarray, total: np.ndarray, sigma: float) -> None:
    """Add circular Gaussians of integral ``total`` centred at (y, x) to ``out`` in place.

    Each star is a separable stamp just large enough that the dropped wings are below
    0.05 e- per pixel, so faint stars cost a few pixels and bright ones stay smooth.
    """
    h, w = out.shape
    norm = 1.0 / (np.sqrt(2 * np.pi) * sigma)
    peak = total * norm * norm
    radius = np.ceil(sigma * np.sqrt(2 * np.log(np.maximum(peak / 0.05, 1.0)))).astype(int) + 1
    for yc, xc, f, r in zip(y, x, total, radius):
        r0, r1 = max(int(yc) - r, 0), min(int(yc) + r + 2, h)
        c0, c1 = max(int(xc) - r, 0), min(int(xc) + r + 2, w)
        if r0 >= r1 or c0 >= c1:
            continue
        py = np.exp(-0.5 * ((np.arange(r0, r1) - yc) / sigma) ** 2) * (norm * f)
        px = np.exp(-0.5 * ((np.arange(c0, c1) - xc) / sigma) ** 2) * norm
        out[r0:r1, c0:c1] += np.outer(py, px).astype(np.float32)
