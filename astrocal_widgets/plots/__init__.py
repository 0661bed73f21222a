"""Plots as pure functions: data in, :class:`matplotlib.figure.Figure` out.

No pyplot global state (figures are built with :class:`matplotlib.figure.Figure` and an Agg canvas),
so the same functions serve the widgets, notebooks and the documentation. :func:`to_png` renders a
figure to PNG bytes, which is what the dashboards display (a bare Figure shows as text in Voila).

Topics: :mod:`.histograms` (:func:`histogram`), :mod:`.images` (:func:`image`,
:func:`rejection_maps`), :mod:`.series` (:func:`frame_series`), :mod:`.curves`
(:func:`photon_transfer_curve`, :func:`master_noise_curve`,
:func:`radial_profile`), :mod:`.comparison` (:func:`rejection_comparison_figure`).
"""
from ._common import to_png
from .comparison import rejection_comparison_figure
from .curves import fit_photon_transfer, master_noise_curve, photon_transfer_curve, radial_profile
from .histograms import histogram
from .images import auto_stretch, image, mtf, rejection_maps
from .series import frame_series

__all__ = [
    "histogram", "image", "rejection_maps", "frame_series", "photon_transfer_curve",
    "master_noise_curve", "radial_profile", "to_png", "auto_stretch", "mtf", "fit_photon_transfer",
    "rejection_comparison_figure",
]
