"""The step protocol of the dashboard: a titled view with a status (done, warning, blocked, to do),
declared once as a :class:`StepSpec`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import ipywidgets as w

from .state import DashboardState

#: A step's status: done; done with warnings; cannot start yet (with the reason); not done yet.
STATUSES = ("done", "warning", "blocked", "todo")


@dataclass(frozen=True)
class StepSpec:
    """One step of the dashboard, declared once (the dashboard's ``STEPS`` lists them in order).

    The step list, the headings, Back / Next, :meth:`CalibrationDashboard.statuses` and the look-up
    by title (``dashboard.go("Darks")``, ``dashboard.steps["Darks"]``) all come from these entries:
    adding or moving a step is one entry added or moved.

    Attributes
    ----------
    title : str
        The step's name: its heading, its line in the step list and how it is found.
    view : callable
        ``view(state, spec)`` builds the step's page (a :class:`Step`) for a
        :class:`~astrocal_widgets.widgets.state.DashboardState`.
    intro : str
        The paragraph (HTML) at the top of the page saying what the step is for; empty for none.
    kind : str
        The frame type a master step integrates (``"bias"``, ``"dark"``, ``"darkflat"``,
        ``"flat"``); empty for the other steps.
    """

    title: str
    view: Callable[[DashboardState, "StepSpec"], "Step"]
    intro: str = ""
    kind: str = ""

    def build(self, state: DashboardState) -> "Step":
        """The step's page for ``state``."""
        return self.view(state, self)


class Step:
    """One page of the stepper, built from its :class:`StepSpec`.

    Subclasses build ``self.widget`` and implement :meth:`status`; :meth:`enter` is called each time
    the page is shown (to pick up what other steps saved) and must not recompute anything.
    """

    def __init__(self, state: DashboardState, spec: StepSpec) -> None:
        self.state = state
        self.spec = spec
        self.widget = w.VBox()
        self.on_change: Callable[[], None] = lambda: None

    @property
    def title(self) -> str:
        """The step's title (from its :class:`StepSpec`)."""
        return self.spec.title

    def intro(self) -> tuple[w.Widget, ...]:
        """The page's opening paragraph, if the step has one."""
        return (w.HTML(f"<p>{self.spec.intro}</p>"),) if self.spec.intro else ()

    def status(self) -> tuple[str, str]:
        """``(status, reason)`` with status one of :data:`STATUSES`."""
        return "todo", ""

    def enter(self) -> None:
        """Refresh what depends on other steps (cheap: no computation)."""

    def changed(self) -> None:
        """Tell the dashboard the status may have changed."""
        self.on_change()
