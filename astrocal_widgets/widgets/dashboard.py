"""``CalibrationDashboard``: a night's calibration as a stepper with Back / Next in Jupyter and Voila."""
from __future__ import annotations

import atexit
import html
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..workflow import open_session
from ..workflow.memory import limit_heap_arenas
from ._display import STATUS_COLOURS, STATUS_ICONS, run_action
from .base import Step, StepSpec
from .master_steps import DarkFlatStep, FlatStep, MasterStep
from .state import DashboardState
from .steps import ChecksStep, LightsStep, SessionStep

__all__ = ["CalibrationDashboard", "STEPS", "STEP_TITLES"]

#: The dashboard's steps, in order: the one place a step is added or moved. The step list, the
#: headings, Back / Next and the statuses are made from it; tests find steps by their titles.
STEPS: tuple[StepSpec, ...] = (
    StepSpec("Session", SessionStep),
    StepSpec("Histogram checks", ChecksStep,
             intro="Every set graded: flats near mid-range and unclipped, bias without clipping or pedestal, darks "
                   "at the lights' temperature, hot pixels, drift and outlier frames. Each set shows its middle "
                   "frame's histogram."),
    StepSpec("Bias", MasterStep, kind="bias",
             intro="The master bias holds the sensor's offset and its fixed pattern; it is subtracted from every "
                   "frame that is not calibrated by a matching dark."),
    StepSpec("Darks", MasterStep, kind="dark",
             intro="Master darks hold the thermal signal, amp glow and hot pixels at one exposure and temperature; "
                   "lights are calibrated with the matching one."),
    StepSpec("Dark flats & flat calibration", DarkFlatStep, kind="darkflat",
             intro="Master dark flats (darks at the flats' exposure) hold the pedestal and dark signal of the flats: "
                   "subtracting them is what makes a flat divide correctly."),
    StepSpec("Flat integration", FlatStep, kind="flat",
             intro="Each flat is calibrated by its saved dark flat (else the bias), then the flats are normalised "
                   "and integrated: the master flat shows the vignetting and the dust donuts the lights will be "
                   "divided by."),
    StepSpec("Lights", LightsStep),
)

#: The steps' titles, in order.
STEP_TITLES: tuple[str, ...] = tuple(spec.title for spec in STEPS)


class TitledSteps(list):
    """The dashboard's step pages in order, also found by title: ``dashboard.steps["Darks"]``."""

    def __getitem__(self, key):
        if isinstance(key, str):
            return super().__getitem__(self.position(key))
        return super().__getitem__(key)

    def position(self, title: str) -> int:
        """Where the step titled ``title`` is in the order."""
        for k, step in enumerate(self):
            if step.title == title:
                return k
        raise KeyError(f"no step titled {title!r}; the steps are: {', '.join(s.title for s in self) or 'none'}")


class CalibrationDashboard:
    """Step through a night's calibration, one page per entry of :data:`STEPS`.

    Every action calls one public function of :mod:`astrocal_widgets.workflow` (or
    :func:`~astrocal_widgets.calibrate.calibrate_session`); the dashboard holds the results (so Back
    and Next never recompute) and the layout, never the computation.

    Parameters
    ----------
    directory : path-like
        The night's folder of frames.
    output : path-like, optional
        Where ``masters/`` and ``calibrated/`` go (default: the night's folder).

    Attributes
    ----------
    steps : list of Step
        The pages in order; ``steps["Darks"]`` finds one by title.

    Examples
    --------
    >>> from astrocal_widgets.widgets import CalibrationDashboard
    >>> board = CalibrationDashboard("night/")      # doctest: +SKIP
    >>> board.go("Darks")                           # doctest: +SKIP
    >>> CalibrationDashboard.simulated()            # doctest: +SKIP
    """

    def __init__(self, directory: str | os.PathLike, *, output: str | os.PathLike | None = None) -> None:
        # A kernel that steps through a night's big frames: fewer C heaps keep its peak low (Binder's 2 GB).
        limit_heap_arenas()
        self.directory = Path(directory)
        self.steps = TitledSteps()
        self.index = 0
        self.header = w.HTML(f"<h3 style='margin:4px 0'>Calibration of <code>{html.escape(str(directory))}</code></h3>")
        self.step_list = w.VBox(layout=w.Layout(width="290px", min_width="240px"))
        self.body = w.VBox(layout=w.Layout(flex="1 1 auto", padding="0 0 0 12px"))
        self.back_button = w.Button(description="Back")
        self.next_button = w.Button(description="Next", button_style="info")
        self.position = w.HTML()
        self.back_button.on_click(lambda _: self.go(self.index - 1))
        self.next_button.on_click(lambda _: self.go(self.index + 1))
        self.feedback = w.VBox()
        navigation = w.HBox([self.back_button, self.next_button, self.position])
        self.widget = w.VBox([self.header, self.feedback, w.HBox([self.step_list, self.body]), navigation])
        self.widget.add_class("astrocal-dashboard")
        ok, session = run_action(lambda: open_session(self.directory, output=output), self.feedback)
        if not ok:  # a readable message in place of the stepper
            self.state = None
            self.back_button.disabled = self.next_button.disabled = True
            return
        self.state = DashboardState(session)
        # From the products' provenance: what a change made stale is known after a restart too.
        run_action(self.state.find_stale, self.feedback)
        self.steps = TitledSteps(spec.build(self.state) for spec in STEPS)
        for step in self.steps:
            step.on_change = self.refresh
        self.go(0)

    # ------------------------------------------------------------------ construction
    @classmethod
    def simulated(cls, directory: str | os.PathLike | None = None, *, camera: str = "mono", seed: int = 0,
                  **options: Any) -> "CalibrationDashboard":
        """The dashboard on a simulated night, written to ``directory/night``.

        Parameters
        ----------
        directory : path-like, optional
            Where the night is written; an existing simulated night there is reused (so is what the
            dashboard saved there). By default a new temporary folder, removed with everything the
            dashboard saved in it when the Python process (the kernel) exits: pass a folder to keep
            the night and its masters.
        camera : {'mono', 'osc'}
        seed : int
        **options
            Passed to :func:`~astrocal_widgets.simulate_session` (``shape``, ``counts``, ...).
        """
        from ..simulate import simulate_session

        if directory is None:
            root = Path(tempfile.mkdtemp(prefix="astrocal-dashboard-"))
            # ~60 MB a call (each Voila page load makes one): left behind, they would fill /tmp
            atexit.register(shutil.rmtree, root, ignore_errors=True)
        else:
            root = Path(directory)
        night = root / "night"
        if not any(night.rglob("*.fits")):
            simulate_session(night, camera=camera, seed=seed, **options)
        return cls(night)

    # ------------------------------------------------------------------ navigation
    @property
    def step(self) -> Step:
        """The step shown."""
        return self.steps[self.index]

    def go(self, where: int | str) -> None:
        """Show a step: by title (``go("Darks")``), or by position (clamped to the first and last).

        Raises
        ------
        KeyError
            No step has that title (the message lists the titles).
        """
        if not self.steps:  # the night could not be opened: its message is shown instead
            return
        if isinstance(where, str):
            where = self.steps.position(where)
        self.index = max(0, min(len(self.steps) - 1, int(where)))
        step = self.steps[self.index]
        ok, _ = run_action(step.enter, self.feedback)
        self.body.children = (w.HTML(f"<h3 style='margin:4px 0'>{html.escape(step.title)}</h3>"), step.widget)
        self.refresh()

    def refresh(self) -> None:
        """Redraw the step list (statuses and reasons) and the navigation."""
        buttons = []
        for k, step in enumerate(self.steps):
            status, reason = step.status()
            button = w.Button(description=f"{STATUS_ICONS[status]} {k + 1}. {step.title}",
                              tooltip=f"{status}: {reason}" if reason else status,
                              layout=w.Layout(width="100%", justify_content="flex-start"),
                              button_style="info" if k == self.index else "")
            button.style.text_color = "white" if k == self.index else STATUS_COLOURS[status]
            button.on_click(lambda _, k=k: self.go(k))
            note = w.HTML(f"<div style='font-size:11px;color:{STATUS_COLOURS[status]};margin:-2px 0 6px 8px'>"
                          f"{html.escape(status)}{': ' + html.escape(reason) if reason else ''}</div>")
            note.add_class(f"astrocal-step-{status}")
            buttons += [button, note]
        self.step_list.children = buttons
        self.back_button.disabled = self.index == 0
        self.next_button.disabled = self.index == len(self.steps) - 1
        self.position.value = f"step {self.index + 1} of {len(self.steps)}"

    def statuses(self) -> dict[str, tuple[str, str]]:
        """Each step's ``(status, reason)`` by title."""
        return {step.title: step.status() for step in self.steps}

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        steps = ", ".join(f"{t}: {s}" for t, (s, _) in self.statuses().items())
        return f"CalibrationDashboard({str(self.directory)!r}; {steps})"
