"""What a master can be made with, as the dashboards offer it: the standard options per frame type,
the combinations, the rejections (from the rejection registry) with their default thresholds and what
``auto`` picks, the output normalisations and the recommended frame counts.

The widgets read their menus and hints from here, never from the engine's modules directly.
"""
from __future__ import annotations

from ..calibrate import MASTER_OPTIONS
from ..integrate import COMBINES, NORMALIZATIONS, REJECTIONS, rejection_algorithm, resolve_rejection
from ..quality.checks import RECOMMENDED_COUNTS

__all__ = ["MASTER_OPTIONS", "OUTPUT_NORMALIZATIONS", "RECOMMENDED_COUNTS", "MASTER_COMBINES", "REJECTION_CHOICES",
           "default_thresholds", "resolve_rejection"]

#: Combinations a master step offers.
MASTER_COMBINES: tuple[str, ...] = tuple(c for c in COMBINES if c in ("average", "median"))
#: Rejections a master step offers: ``auto`` (chosen by frame count, see :func:`resolve_rejection`) and every
#: algorithm of the rejection registry.
REJECTION_CHOICES: tuple[str, ...] = tuple(REJECTIONS)


def default_thresholds(algorithm: str) -> tuple[float, float]:
    """The registry's default (low, high) thresholds of a rejection algorithm."""
    return tuple(rejection_algorithm(algorithm).defaults)

#: Normalisations a master's output can have (``equalize_fluxes`` is for rejection only).
OUTPUT_NORMALIZATIONS: tuple[str, ...] = tuple(m for m in NORMALIZATIONS if m != "equalize_fluxes")
