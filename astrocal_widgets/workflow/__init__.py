"""The calibration of a night step by step, each step one function returning everything a view needs.

What the dashboards call (and what a notebook user can call directly): :func:`open_session` (the
catalogue), :func:`check_sets` (traffic-light checks with a frame per set), :func:`integrate_master`
and :func:`save_master` (one master with its rejection maps, statistics and noise),
:func:`compare_rejections` (two rejections of one set on a crop, side by side),
:func:`preview_flat_calibration` (one flat before/after its dark flat), :func:`preview_light` (one
light calibrated in memory) and :func:`light_before_after` (its downsampled before/after); the whole
night is :func:`~astrocal_widgets.calibrate.calibrate_session`. What the dashboards offer to choose
(:data:`MASTER_OPTIONS`, :data:`OUTPUT_NORMALIZATIONS`, :data:`RECOMMENDED_COUNTS`) is in
:mod:`~astrocal_widgets.workflow.choices`.
Computation only: nothing here imports plotting or widgets.
"""
from .choices import (MASTER_COMBINES, MASTER_OPTIONS, OUTPUT_NORMALIZATIONS, RECOMMENDED_COUNTS,
                      REJECTION_CHOICES, default_thresholds, resolve_rejection)
from .compare import COMPARE_CROP, RejectionComparison, RejectionOutcome, compare_rejections
from .frames import (FramePreview, FrameReview, exclude_frames, frame_preview, include_frames, review_frames,
                     session_exclusions)
from .lights import LightPreview, light_before_after, preview_light
from .masters import MASTER_KINDS, FlatPreview, MasterResult, integrate_master, preview_flat_calibration, save_master
from .session import SessionChecks, SessionOverview, check_sets, open_session

__all__ = [
    "open_session", "SessionOverview", "check_sets", "SessionChecks", "integrate_master", "save_master",
    "MasterResult", "MASTER_KINDS", "preview_flat_calibration", "FlatPreview", "preview_light",
    "light_before_after", "LightPreview", "MASTER_OPTIONS", "OUTPUT_NORMALIZATIONS", "RECOMMENDED_COUNTS",
    "MASTER_COMBINES", "REJECTION_CHOICES", "default_thresholds", "resolve_rejection",
    "review_frames", "FrameReview", "frame_preview", "FramePreview", "session_exclusions", "exclude_frames",
    "include_frames", "compare_rejections", "RejectionComparison", "RejectionOutcome", "COMPARE_CROP",
]
