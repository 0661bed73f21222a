"""What a master can be made with, as the dashboards offer it: the standard options per frame type,
the output normalisations and the recommended frame counts.

The widgets read their menus and hints from here (or from the integration engine's rejection
choices), never from the kernels or the quality checks directly.
"""
from __future__ import annotations

from ..calibrate import MASTER_OPTIONS
from ..integrate import NORMALIZATIONS
from ..quality.checks import RECOMMENDED_COUNTS

__all__ = ["MASTER_OPTIONS", "OUTPUT_NORMALIZATIONS", "RECOMMENDED_COUNTS"]

#: Normalisations a master's output can have (``equalize_fluxes`` is for rejection only).
OUTPUT_NORMALIZATIONS: tuple[str, ...] = tuple(m for m in NORMALIZATIONS if m != "equalize_fluxes")
