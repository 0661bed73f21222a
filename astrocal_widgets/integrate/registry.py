"""The rejection registry: one entry per rejection algorithm, and every table about them read from it.

Each :class:`RejectionAlgorithm` holds what the rest of the package knows about one algorithm: its
name and other names, default thresholds and their valid ranges (one rule, checked by
:meth:`RejectionAlgorithm.check_thresholds` wherever thresholds enter), the fewest frames it is
meant for, its reference function (:mod:`.reference`), its numba kernel code (:mod:`.kernels`), the
codes peers use for it (the master header's ``REJCODE``, IRAF ``imcombine``, Siril's ``stack``) and a
one-line description. Validation, ``integrate``'s defaults and threshold keywords, the CLI's choices,
the dashboards' menus and defaults, the master header and the Siril runner all read it.

Adding an algorithm: a ``reject_<name>`` function in :mod:`.reference`, a branch and an ``R_*`` code
in :mod:`.kernels`, an entry below, a page in ``docs/algorithms/`` and the tests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from . import kernels, reference
from .reference import RejectFn

__all__ = ["RejectionAlgorithm", "ThresholdRange", "REJECTION_ALGORITHMS", "DEFAULT_THRESHOLDS",
           "rejection_algorithm", "rejection_names"]


@dataclass(frozen=True)
class ThresholdRange:
    """The valid values of one threshold: ``minimum`` to ``maximum``, each end open or closed.

    ``whole``: only whole numbers (counts of values). Values must be finite.
    """

    minimum: float = 0.0
    maximum: float = math.inf
    include_minimum: bool = True
    include_maximum: bool = False
    whole: bool = False

    def contains(self, value: float) -> bool:
        """True when ``value`` is valid (NaN and infinities never are)."""
        if not math.isfinite(value):
            return False
        above = value >= self.minimum if self.include_minimum else value > self.minimum
        below = value <= self.maximum if self.include_maximum else value < self.maximum
        return above and below and (not self.whole or value == int(value))

    def __str__(self) -> str:
        if math.isinf(self.maximum):
            text = f"{'>=' if self.include_minimum else '>'} {self.minimum:g}"
        else:
            text = (f"in {'[' if self.include_minimum else '('}{self.minimum:g}, {self.maximum:g}"
                    f"{']' if self.include_maximum else ')'}")
        return f"a whole number {text}" if self.whole else text


@dataclass(frozen=True)
class RejectionAlgorithm:
    """One rejection algorithm: everything the package knows about it, in one place.

    Attributes
    ----------
    name : str
        The name ``integrate(rejection=...)``, the CLI and the header's ``REJECT`` use.
    summary : str
        One line for docs and help texts.
    reference : callable
        The numpy reference (:data:`~astrocal_widgets.integrate.reference.RejectFn`).
    kernel_code : int
        The code the numba kernel dispatches on (an ``R_*`` constant of :mod:`.kernels`).
    defaults : (float, float)
        Default ``low`` and ``high`` thresholds.
    low_range, high_range : ThresholdRange
        Their valid values: the one rule, for ``integrate`` and the kernels alike.
    threshold_names : (str, str) or None
        Keyword aliases of ``low`` and ``high`` in ``integrate`` (``kl``/``kh``); None: no thresholds.
    threshold_meaning : str
        What ``low`` and ``high`` are, in words (for messages and help).
    min_frames : int
        Fewest frames the algorithm is meant for (below it ``integrate`` falls back, with a warning).
    aliases : tuple of str
        Other names it goes by (peers' names, the header code), accepted by :func:`rejection_algorithm`.
    header_code : str
        The master header's ``REJCODE`` (the Siril or IRAF name where there is one).
    iraf_code, siril_code : str or None
        IRAF ``imcombine reject=`` name and Siril ``stack ... rej`` letter, None where the peer has none.
    needs_row_gain : bool
        The reference needs the image row's gain-like factor (averaged sigma).
    docs_page : str or None
        Its page, relative to ``docs/``.
    """

    name: str
    summary: str
    reference: RejectFn
    kernel_code: int
    defaults: tuple[float, float] = (0.0, 0.0)
    low_range: ThresholdRange = ThresholdRange()
    high_range: ThresholdRange = ThresholdRange()
    threshold_names: tuple[str, str] | None = None
    threshold_meaning: str = "unused"
    min_frames: int = 5
    aliases: tuple[str, ...] = ()
    header_code: str = ""
    iraf_code: str | None = None
    siril_code: str | None = None
    needs_row_gain: bool = False
    docs_page: str | None = None

    def check_thresholds(self, low: float, high: float) -> tuple[float, float]:
        """``(low, high)`` as floats, or ValueError naming the algorithm, the rule and the values."""
        low, high = float(low), float(high)
        if not (self.low_range.contains(low) and self.high_range.contains(high)):
            raise ValueError(f"{self.name}: low and high are {self.threshold_meaning}; low must be "
                             f"{self.low_range}, high {self.high_range}; got low={low:g}, high={high:g}")
        return low, high


_SIGMAS = "sigma multiples below and above the centre"

_ALGORITHMS = (
    RejectionAlgorithm(
        name="none", summary="No rejection: every value is combined.",
        reference=reference.reject_none, kernel_code=kernels.R_NONE, min_frames=1,
        header_code="none", iraf_code="none", siril_code="n"),
    RejectionAlgorithm(
        name="minmax", summary="Drops the low lowest and high highest values of each pixel, keeping at least one.",
        reference=reference.reject_minmax, kernel_code=kernels.R_MINMAX, defaults=(1, 1),
        low_range=ThresholdRange(whole=True), high_range=ThresholdRange(whole=True),
        threshold_names=("n_low", "n_high"), threshold_meaning="counts of values dropped at each end",
        min_frames=3, header_code="minmax", iraf_code="minmax", docs_page="algorithms/minmax.md"),
    RejectionAlgorithm(
        name="percentile", summary="One pass about the median, thresholds as fractions of the median.",
        reference=reference.reject_percentile, kernel_code=kernels.R_PERCENTILE, defaults=(0.2, 0.1),
        threshold_names=("pl", "ph"), threshold_meaning="fractions of the median below and above it",
        min_frames=3, header_code="percentile", siril_code="p", docs_page="algorithms/percentile.md"),
    RejectionAlgorithm(
        name="sigma", summary="Iterative clipping about the median, spread the standard deviation.",
        reference=reference.reject_sigma, kernel_code=kernels.R_SIGMA, defaults=(3.0, 3.0),
        threshold_names=("kl", "kh"), threshold_meaning=_SIGMAS,
        header_code="sigma", iraf_code="sigclip", siril_code="s", docs_page="algorithms/sigma.md"),
    RejectionAlgorithm(
        name="mad", summary="Iterative clipping about the median, spread 1.4826 MAD (a Gaussian sigma).",
        reference=reference.reject_mad, kernel_code=kernels.R_MAD, defaults=(3.0, 3.0),
        threshold_names=("kl", "kh"), threshold_meaning=_SIGMAS,
        header_code="mad", siril_code="m", docs_page="algorithms/mad.md"),
    RejectionAlgorithm(
        name="averaged_sigma", summary="IRAF avsigclip: spread from the image row's gain-like factor.",
        reference=reference.reject_averaged_sigma, kernel_code=kernels.R_AVSIGMA, defaults=(3.0, 3.0),
        threshold_names=("kl", "kh"), threshold_meaning=_SIGMAS, aliases=("avsigclip",),
        header_code="avsigclip", iraf_code="avsigclip", needs_row_gain=True,
        docs_page="algorithms/averaged_sigma.md"),
    RejectionAlgorithm(
        name="winsorized_sigma", summary="Iterative clipping about the median, spread the Winsorized sigma.",
        reference=reference.reject_winsorized_sigma, kernel_code=kernels.R_WINSOR, defaults=(3.0, 3.0),
        threshold_names=("kl", "kh"), threshold_meaning=_SIGMAS, aliases=("winsorized",),
        header_code="winsorized", siril_code="w", docs_page="algorithms/winsorized_sigma.md"),
    RejectionAlgorithm(
        name="linear_fit", summary="Iterative clipping about a straight line fitted to the sorted values.",
        reference=reference.reject_linear_fit, kernel_code=kernels.R_LINFIT, defaults=(5.0, 5.0),
        threshold_names=("kl", "kh"), threshold_meaning="multiples of the mean absolute residual from the line",
        aliases=("linearfit",), header_code="linearfit", siril_code="l", docs_page="algorithms/linear_fit.md"),
    RejectionAlgorithm(
        name="esd", summary="Rosner's generalised extreme Studentized deviate test.",
        reference=reference.reject_esd, kernel_code=kernels.R_ESD, defaults=(0.3, 0.05),
        low_range=ThresholdRange(0.0, 1.0, include_minimum=False),
        high_range=ThresholdRange(0.0, 1.0, include_minimum=False),
        threshold_names=("max_outliers", "alpha"),
        threshold_meaning="the largest outlier fraction and the significance alpha",
        aliases=("gesdt", "generalized_esd"), header_code="gesdt", siril_code="g", docs_page="algorithms/esd.md"),
    RejectionAlgorithm(
        name="trimmed", summary="Trimmed mean: drops the lowest and highest fractions of each pixel's values.",
        reference=reference.reject_trimmed, kernel_code=kernels.R_TRIMMED, defaults=(0.1, 0.1),
        low_range=ThresholdRange(0.0, 0.5), high_range=ThresholdRange(0.0, 0.5),
        threshold_names=("trim_low", "trim_high"),
        threshold_meaning="fractions of each pixel's values dropped at the low and high ends",
        min_frames=3, aliases=("trimmed_mean",), header_code="trimmed", iraf_code="minmax",
        docs_page="algorithms/trimmed.md"),
)

#: Every rejection algorithm by name, in the order menus list them.
REJECTION_ALGORITHMS: Mapping[str, RejectionAlgorithm] = MappingProxyType({a.name: a for a in _ALGORITHMS})
_BY_ALIAS = {alias: a for a in _ALGORITHMS for alias in a.aliases}

#: Default ``(low, high)`` of every algorithm that takes thresholds.
DEFAULT_THRESHOLDS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {a.name: a.defaults for a in _ALGORITHMS if a.threshold_names is not None})


def rejection_names() -> tuple[str, ...]:
    """The names of every rejection algorithm, in menu order (``auto`` is not one: it picks one)."""
    return tuple(REJECTION_ALGORITHMS)


def rejection_algorithm(name: str) -> RejectionAlgorithm:
    """The algorithm called ``name`` or going by it (an alias such as ``"avsigclip"``).

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    algorithm = REJECTION_ALGORITHMS.get(name) or _BY_ALIAS.get(name)
    if algorithm is None:
        raise ValueError(f"unknown rejection {name!r}; choose one of {', '.join(REJECTION_ALGORITHMS)}")
    return algorithm
