"""Quality: frame statistics, histogram and frame checks with traffic lights, camera characterisation.

Computation only (no plotting, no widgets): :mod:`astrocal_widgets.plots` draws what these return.
"""
from .characterize import CameraCharacteristics, characterize_camera, frames_needed, master_noise, master_noise_table
from .measurements import (background_noise, central_crop, central_window, channel_levels, radial_profile,
                           robust_sigma, temporal_noise)
from .checks import Check, CheckLine, CheckReport, check_frames, check_session
from .stats import frame_statistics
from .previews import downsample

__all__ = [
    "check_frames", "check_session", "Check", "CheckLine", "CheckReport", "frame_statistics", "characterize_camera",
    "CameraCharacteristics", "master_noise", "frames_needed", "master_noise_table", "radial_profile",
    "channel_levels", "robust_sigma", "background_noise", "temporal_noise", "central_crop", "central_window",
    "downsample",
]
