"""One light calibrated in memory for a before/after view (the whole night is
:func:`~astrocal_widgets.calibrate.calibrate_session`)."""
from __future__ import annotations

import numbers
import os
from typing import Any

from ..calibrate import MasterLibrary
from ..calibrate.session import CalibratedLight, calibrate_light
from ..errors import AstrocalError, MissingMasterError
from .session import SessionOverview

__all__ = ["preview_light"]


def preview_light(session: SessionOverview, light: int | Any = 0, *, saved: dict[str, Any] | None = None,
                  **options: Any) -> CalibratedLight:
    """Calibrate one light of the night with the masters saved so far (nothing is written).

    Parameters
    ----------
    session : SessionOverview
        From :func:`~astrocal_widgets.workflow.open_session`; masters are taken from its
        ``masters_dir``.
    light : int or catalogue row or path, default 0
        Which light: an index into the night's lights (all light sets in order), a catalogue row or a path.
    saved : dict, optional
        Set label -> path of masters saved under other names than ``master_<set>.fits``.
    **options
        As :func:`~astrocal_widgets.calibrate.calibrate_light` (``strict``, ``dark_optimization``,
        ``cosmetic``, ``pedestal``, ...).

    Returns
    -------
    CalibratedLight
        ``raw`` and ``data`` are the light before and after.

    Raises
    ------
    MissingMasterError
        When a master bias, dark or flat that matches the light exists in the night (its frames are
        there) but is not saved yet: the light would be calibrated with a fallback.
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
    if isinstance(light, (str, os.PathLike)):  # a path: its catalogue row, when it is one of the night's
        table = session.catalog.table
        rows = table[[os.path.realpath(p) == os.path.realpath(light) for p in table["path"]]]
        light = rows.iloc[0] if len(rows) else light
    if not session.masters_dir.is_dir():
        raise AstrocalError(f"{session.masters_dir}: no masters saved yet: save the master bias, darks and flats "
                            "first")
    if not isinstance(light, (str, os.PathLike)):
        needs = session.prerequisites(light, saved=saved)
        if needs.blocked:
            raise MissingMasterError(f"{needs.label}: {needs.reason}")
    return calibrate_light(light, MasterLibrary(session.masters_dir), **options)
