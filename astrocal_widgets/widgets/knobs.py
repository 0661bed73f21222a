"""Knobs for teaching notebooks: controls that redraw a plain function's output below them."""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as w

__all__ = ["knobs"]


def knobs(function: Callable[..., Any], **controls: w.ValueWidget) -> w.VBox:
    """The controls, and below them ``function(**their values)``, drawn again whenever one moves.

    Unlike :func:`ipywidgets.interact` nothing is drawn when the knobs are made: draw the default
    with a plain call in the cell above. A figure drawn into an output widget while a notebook is
    run top to bottom (nbclient, a docs build) can leave the runner waiting for a reply it missed.

    Parameters
    ----------
    function : callable
        Called with the controls' values as keyword arguments; what it prints or shows appears
        below the controls.
    **controls : ipywidgets widgets with a ``value``
        One per keyword argument of ``function``.

    Returns
    -------
    ipywidgets.VBox
        The controls, then the output area (its last child).
    """
    output = w.Output()

    def redraw(change: Any) -> None:
        with output:
            output.clear_output(wait=True)
            function(**{name: control.value for name, control in controls.items()})

    for control in controls.values():
        control.observe(redraw, names="value")
    return w.VBox([*controls.values(), output])
