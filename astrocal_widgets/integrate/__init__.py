"""Integration engine: rejection kernels, estimators, normalisation, chunked combination, masters.

:func:`integrate` is the entry point; :mod:`.reference` holds the short numpy definitions each fast
kernel in :mod:`.kernels` is tested against.
"""
import sys as _sys

from .combine import (AUTO_RULE, COMBINES, MIN_FRAMES, REJECTIONS, WEIGHTINGS, IntegrationWarning, integrate,
                      resolve_rejection)
from .estimators import bwmv, ikss, ikss_lite, location_scale, mad, median, noise_sigma
from . import master_file
from .master_file import master_header, write_master
from .normalization import NORMALIZATIONS, normalization_coefficients
from .registry import REJECTION_ALGORITHMS, RejectionAlgorithm, ThresholdRange, rejection_algorithm, rejection_names

# The master file's module had the old path astrocal_widgets.integrate.master: code importing it still works.
master = _sys.modules.setdefault(f"{__name__}.master", master_file)

__all__ = [
    "integrate", "write_master", "master_header", "resolve_rejection", "IntegrationWarning", "AUTO_RULE",
    "COMBINES", "MIN_FRAMES", "REJECTIONS", "WEIGHTINGS", "NORMALIZATIONS", "normalization_coefficients",
    "bwmv", "ikss", "ikss_lite", "location_scale", "mad", "median", "noise_sigma",
    "REJECTION_ALGORITHMS", "RejectionAlgorithm", "ThresholdRange", "rejection_algorithm", "rejection_names",
]
