"""The step protocol of the dashboard: a titled view with a status (done, warning, blocked, to do)."""
from __future__ import annotations

from typing import Callable

import ipywidgets as w

from .state import DashboardState

#: A step's status: done; done with warnings; cannot start yet (with the reason); not done yet.
STATUSES = ("done", "warning", "blocked", "todo")


class Step:
    """One page of the stepper.

    Subclasses build ``self.widget`` and implement :meth:`status`; :meth:`enter` is called each time
    the page is shown (to pick up what other steps saved) and must not recompute anything.
    """

    title = "step"

    def __init__(self, state: DashboardState) -> None:
        self.state = state
        self.widget = w.VBox()
        self.on_change: Callable[[], None] = lambda: None

    def status(self) -> tuple[str, str]:
        """``(status, reason)`` with status one of :data:`STATUSES`."""
        return "todo", ""

    def enter(self) -> None:
        """Refresh what depends on other steps (cheap: no computation)."""

    def changed(self) -> None:
        """Tell the dashboard the status may have changed."""
        self.on_change()
