"""One light calibrated in memory for a before/after view (the whole night is
:func:`~astrocal_widgets.calibrate.calibrate_session`)."""
from __future__ import annotations

import numbers
from typing import Any

from ..calibrate import MasterLibrary
from ..calibrate.session import CalibratedLight, calibrate_light
from ..errors import AstrocalError
from .session import SessionOverview

__all__ = ["preview_light"]


def preview_light(session: SessionOverview, light: int | Any = 0, **options: Any) -> CalibratedLight:
    """Calibrate one light of the night with the masters saved so far (nothing is written).

    Parameters
    ----------
    session : SessionOverview
        From :func:`~astrocal_widgets.workflow.open_session`; masters are taken from its
        ``masters_dir``.
    light : int or catalogue row or path, default 0
        Which light: an index into the night's lights (all light sets in order), a catalogue row or a path.
    **options
        As :func:`~astrocal_widgets.calibrate.calibrate_light` (``strict``, ``dark_optimization``,
        ``cosmetic``, ``pedestal``, ...).

    Returns
    -------
    CalibratedLight
        ``raw`` and ``data`` are the light before and after.
    """
    if isinstance(light, numbers.Integral):
        light = int(light)
        table = session.catalog.table
        lights = table[table["frame_type"] == "light"].reset_index(drop=True)
        if lights.empty:
            raise AstrocalError(f"{session.directory}: the night has no lights to calibrate")
        if not 0 <= light < len(lights):
            raise IndexError(f"light {light} out of 0-{len(lights) - 1}")
        light = lights.iloc[light]
    if not session.masters_dir.is_dir():
        raise AstrocalError(f"{session.masters_dir}: no masters saved yet: save the master bias, darks and flats "
                            "first")
    return calibrate_light(light, MasterLibrary(session.masters_dir), **options)
