"""Integration engine: rejection kernels, estimators, normalisation, chunked combination, masters.

:func:`integrate` is the entry point; :mod:`.reference` holds the short numpy definitions each fast
kernel in :mod:`.kernels` is tested against.
"""
from .combine import (AUTO_RULE, COMBINES, MIN_FRAMES, REJECTIONS, WEIGHTINGS, IntegrationWarning, integrate,
                      resolve_rejection)
from .estimators import bwmv, ikss, ikss_lite, location_scale, mad, median, noise_sigma
from .master import master_header, write_master
from .normalization import NORMALIZATIONS, normalization_coefficients
from .registry import REJECTION_ALGORITHMS, RejectionAlgorithm, ThresholdRange, rejection_algorithm, rejection_names

__all__ = [
    "integrate", "write_master", "master_header", "resolve_rejection", "IntegrationWarning", "AUTO_RULE",
    "COMBINES", "MIN_FRAMES", "REJECTIONS", "WEIGHTINGS", "NORMALIZATIONS", "normalization_coefficients",
    "bwmv", "ikss", "ikss_lite", "location_scale", "mad", "median", "noise_sigma",
    "REJECTION_ALGORITHMS", "RejectionAlgorithm", "ThresholdRange", "rejection_algorithm", "rejection_names",
]
