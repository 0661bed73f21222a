"""Dashboards: thin ipywidgets views over :mod:`astrocal_widgets.workflow`.

Widgets hold state and layout, never the computation: each button calls one public core function.
Plots are rendered to PNG (:func:`astrocal_widgets.plots.to_png`) into Image widgets so they show in
JupyterLab, Notebook 7, Voila and static renderings alike. The dashboard's steps are declared once,
in order, in :data:`STEPS` (a :class:`StepSpec` each); a step is found by its title.
"""
from .base import StepSpec
from .dashboard import STEP_TITLES, STEPS, CalibrationDashboard
from .knobs import knobs

__all__ = ["CalibrationDashboard", "STEPS", "STEP_TITLES", "StepSpec", "knobs"]
