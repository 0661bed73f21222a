"""What the widget tests look for in a dashboard: every widget below one, its images and its error boxes."""
from __future__ import annotations

import ipywidgets as w


def descendants(widget):
    """Every widget below ``widget`` (children of boxes, accordions and grids)."""
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from descendants(child)


def images(widget) -> list[w.Image]:
    return [x for x in descendants(widget) if isinstance(x, w.Image)]


def errors(widget) -> list[str]:
    return [x.value for x in descendants(widget) if isinstance(x, w.HTML) and "astrocal-error" in x._dom_classes]
