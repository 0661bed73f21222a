"""Overscan and trim in a calibration run: which frames get them, how it is recorded.

The arithmetic is in :mod:`astrocal_widgets.io.overscan` (``subtract_overscan`` and ``trim_image``, as
ccdproc's); :func:`~astrocal_widgets.open_frames` applies it lazily as frames are read. Here: the
catalogue row of a frame as the calibration sees it (the trimmed size, the CFA pattern at the new
origin), and the header cards of a trimmed, overscan-corrected output.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import SectionError
from ..io.overscan import (Overscan, OverscanPlan, Section, overscan_plan, parse_section, shifted_bayer_pattern,
                           subtract_overscan, trim_image)
from ..io.provenance import FIELDS
from ..io.sources import cached_open_source

__all__ = ["Overscan", "OverscanPlan", "Section", "SectionError", "parse_section", "subtract_overscan",
           "trim_image", "frame_plan", "calibrated_row", "record_in_header", "overscan_cards", "overscan_mismatch",
           "overscan_word", "overscan_attrs", "SECTION_KEYWORDS"]

#: Keywords a trimmed output no longer carries (its pixels are the image only).
SECTION_KEYWORDS = ("BIASSEC", "TRIMSEC", "DATASEC")


def frame_plan(path: str, option: Any = "auto", aliases: Any = None) -> OverscanPlan | None:
    """The overscan plan of one frame file (None: nothing to do), from its header."""
    header, source = cached_open_source(path)
    return overscan_plan(header, source.shape, path, option, aliases=aliases)


def calibrated_row(row: pd.Series, option: Any = "auto", aliases: Any = None) -> pd.Series:
    """A catalogue row as the calibration sees the frame: trimmed size and CFA pattern at the new origin.

    Masters are made of trimmed frames, so a light must be matched to them by its trimmed size.
    """
    plan = frame_plan(str(row["path"]), option, aliases)
    if plan is None or plan.trimsec is None:
        return row
    out = row.copy()
    out["height"], out["width"] = plan.output_shape
    out["bayer_pattern"] = shifted_bayer_pattern(str(row.get("bayer_pattern", "") or ""), plan.trimsec)
    return out


def record_in_header(header: Any, plan: OverscanPlan | None) -> None:
    """Say in a calibrated frame's header what was done (IRAF's ``OVERSCAN`` / ``TRIM`` cards) and
    drop the sections of the stored frame; a WCS reference pixel moves with the trim."""
    if plan is None:
        return
    for key in SECTION_KEYWORDS:
        header.remove(key, ignore_missing=True)
    for key, value, comment in overscan_cards(plan):
        header[key] = (value, comment)
    if plan.trimsec is not None:
        for axis, start in (("1", plan.trimsec.x0), ("2", plan.trimsec.y0)):
            if start and f"CRPIX{axis}" in header:
                header[f"CRPIX{axis}"] = header[f"CRPIX{axis}"] - start
    header.add_history(plan.describe())


def overscan_cards(plan: OverscanPlan | None) -> list[tuple[str, str, str]]:
    """The ``OVERSCAN`` and ``TRIM`` cards a master or calibrated frame of ``plan`` carries (IRAF's names)."""
    if plan is None:
        return []
    cards = []
    if plan.biassec is not None:
        o = plan.options
        keyword, comment = FIELDS["overscan"]  # keywords and comments defined once, with every product's
        cards.append((keyword, f"{o.method} of {plan.biassec.fits} per {'row' if plan.axis == 1 else 'column'}"
                      + (f", poly {o.order}" if o.fit == "poly" else ""), comment))
    if plan.trimsec is not None:
        cards.append((FIELDS["trim"][0], plan.trimsec.fits, FIELDS["trim"][1]))
    return cards


def overscan_mismatch(header: Any, plan: OverscanPlan | None) -> str | None:
    """Why an existing output was not made with ``plan``'s overscan and trim (None when it was)."""
    now = {key: value for key, value, _ in overscan_cards(plan)}
    for key in ("OVERSCAN", "TRIM"):
        then = str(header.get(key, "") or "")
        if then != now.get(key, ""):
            return (f"{key.lower()} {then or 'none'} in the file, {now.get(key) or 'none'} now "
                    "(made with another overscan setting)")
    return None


def overscan_word(option: Any) -> str:
    """The overscan option as one word for a calibrated light's ``CALOPTS``: 'auto', 'off', 'mean-poly3'."""
    options = Overscan.from_option(option)
    return "off" if options is None else options.word()


def overscan_attrs(cube: Any) -> dict[str, Any]:
    """Integration attrs that make a master's header name its frames' overscan and trim (``{}`` for none).

    ``cube`` is a cube from :func:`~astrocal_widgets.open_frames` (or derived from one); update the
    integrated dataset's attrs with the result before :func:`~astrocal_widgets.write_master`.
    """
    plan = getattr(cube, "attrs", {}).get("overscan_plan")
    if plan is None:
        return {}
    return {"extra_cards": overscan_cards(plan), "extra_history": [plan.describe()]}
