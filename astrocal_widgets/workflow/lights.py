"""One light calibrated in memory for a before/after view (the whole night is
:func:`~astrocal_widgets.calibrate.calibrate_session`)."""
from __future__ import annotations

import numbers
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..calibrate import MasterLibrary
from ..calibrate import CalibratedLight, MastersUsed, calibrate_light
from ..cancel import CancelToken, raise_if_cancelled
from ..errors import AstrocalError, MissingMasterError
from ..quality.previews import downsample
from .session import SessionOverview

__all__ = ["preview_light", "LightPreview", "light_before_after"]

#: Pixels of a before/after image (a 24-megapixel light is block-averaged 5 x 5 to this).
PREVIEW_PIXELS = 1_000_000


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
        there) but is not saved yet (the light would be calibrated with a fallback), or no master is
        saved at all.
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
        target = Path(str(light if isinstance(light, (str, os.PathLike)) else light["path"])).name
        raise MissingMasterError(("bias", "dark", "flat"), target,
                                 f"no masters saved yet in {session.masters_dir}: save the master bias, darks and "
                                 "flats first")
    if not isinstance(light, (str, os.PathLike)):
        needs = session.prerequisites(light, saved=saved)
        if needs.blocked:
            raise MissingMasterError([m.role for m in needs.missing], needs.label, needs.reason)
    return calibrate_light(light, MasterLibrary(session.masters_dir), **options)


@dataclass
class LightPreview(MastersUsed):
    """One light before and after calibration, as block-mean previews, and how it was calibrated.

    Attributes
    ----------
    source : str
        The raw light.
    before, after : numpy.ndarray
        Block means of ``factor`` x ``factor`` pixels of the raw and the calibrated light (float32).
    factor : int
        The block size (1: full size).
    bias, dark, flat, dark_scale, dark_scale_method, defects_corrected
        As :class:`~astrocal_widgets.calibrate.MastersUsed`.
    decisions, warnings : list of str
        As :class:`~astrocal_widgets.calibrate.CalibratedLight`.
    """

    source: str
    before: np.ndarray
    after: np.ndarray
    factor: int
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def light_before_after(session: SessionOverview, light: int | Any = 0, *, max_pixels: int | None = PREVIEW_PIXELS,
                       saved: dict[str, Any] | None = None, cancel: CancelToken | threading.Event | None = None,
                       **options: Any) -> LightPreview:
    """Calibrate one light as :func:`preview_light` does and keep only what a before/after view shows.

    The full-size frames are let go as soon as their previews exist, and the masters once their
    prepared terms and defect map exist: what is kept is two previews and the decisions.

    Parameters
    ----------
    session, light, saved, **options
        As :func:`preview_light`.
    max_pixels : int or None, default PREVIEW_PIXELS
        Pixels of each preview; ``None`` keeps full size.
    cancel : CancelToken or threading.Event, optional
        Looked at before the light is calibrated, within it (as
        :func:`~astrocal_widgets.calibrate.calibrate_light` looks) and after it: raises
        :class:`~astrocal_widgets.errors.CancelledError`.

    Returns
    -------
    LightPreview
    """
    raise_if_cancelled(cancel, "light preview")
    own_cache = "masters_cache" not in options
    # With a cache, the raw dark and flat are dropped once their prepared terms and defect map exist.
    cache = options.pop("masters_cache", None) if not own_cache else {}
    calibrated = preview_light(session, light, saved=saved, masters_cache=cache, cancel=cancel, **options)
    if own_cache:
        cache.clear()  # the bias and the prepared terms
    raise_if_cancelled(cancel, "light preview")
    # The raw light as the calibration read it (same size and orientation as the calibrated one).
    (before, factor), (after, _) = downsample(calibrated.raw, max_pixels), downsample(calibrated.data, max_pixels)
    return LightPreview(calibrated.source, before, after, factor, list(calibrated.decisions),
                        list(calibrated.warnings), **calibrated.masters_used())
