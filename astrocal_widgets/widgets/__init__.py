"""Dashboards: thin ipywidgets views over :mod:`astrocal_widgets.workflow`.

Widgets hold state and layout, never the computation: each button calls one public core function.
Plots are rendered to PNG (:func:`astrocal_widgets.plots.to_png`) into Image widgets so they show in
JupyterLab, Notebook 7, Voila and static renderings alike.
"""
from .dashboard import STEP_TITLES, CalibrationDashboard
from .knobs import knobs

__all__ = ["CalibrationDashboard", "STEP_TITLES", "knobs"]
