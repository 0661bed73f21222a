"""The colour filter array of a one-shot colour sensor: its patterns, its planes and their colours.

A Bayer pattern is written as the four letters of the 2x2 cell at array element ``[0, 0]``, row 0
then row 1 (``'RGGB'``: ``[0, 0]`` red, ``[0, 1]`` and ``[1, 0]`` green, ``[1, 1]`` blue); ``''`` is a
monochrome sensor. A *site* is one position of that cell, a *plane* the pixels of one site
(``image[site_slices(site)]``: pixels 2 apart, all of one colour). Every module that splits a mosaic
into planes or colours does it with these functions, so the split is written once.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "CFA_PATTERNS", "CFA_SITES", "CHANNEL_INDEX", "check_bayer_pattern", "site_slices", "cfa_sites",
    "cfa_planes", "channel_planes", "site_colours", "shift_bayer_pattern",
]

#: The 2x2 Bayer patterns accepted (the letters of row 0 then row 1 at array element [0, 0]).
CFA_PATTERNS: tuple[str, ...] = ("RGGB", "GRBG", "GBRG", "BGGR")
#: The four sites of the 2x2 cell as (row, column) offsets, row by row: the order of a pattern's letters.
CFA_SITES: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))
#: Index of each colour in per-channel arrays (histograms, simulated channel maps).
CHANNEL_INDEX: dict[str, int] = {"R": 0, "G": 1, "B": 2}

_ALL = (slice(None), slice(None))


def check_bayer_pattern(bayer_pattern: str | None) -> str:
    """Normalise a Bayer pattern argument: ``''`` for mono, else one of :data:`CFA_PATTERNS`.

    Parameters
    ----------
    bayer_pattern : str or None
        ``''`` or None for a monochrome sensor; otherwise the 2x2 pattern at array element
        ``[0, 0]`` (case and surrounding blanks ignored).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For anything else (e.g. ``'RGBG'``, an X-Trans name).
    """
    pat = "" if bayer_pattern is None else str(bayer_pattern).strip().upper()
    if pat and pat not in CFA_PATTERNS:
        raise ValueError(
            f"bayer_pattern must be '' (mono) or one of {', '.join(CFA_PATTERNS)} "
            f"(the 2x2 pattern at array element [0, 0]), got {bayer_pattern!r}"
        )
    return pat


def site_slices(site: tuple[int, int]) -> tuple[slice, slice]:
    """``(rows, columns)`` selecting the plane of one site: ``image[site_slices((0, 1))]``."""
    return slice(site[0], None, 2), slice(site[1], None, 2)


def cfa_sites(bayer_pattern: str | None) -> list[tuple[str, slice, slice]]:
    """``(colour, rows, columns)`` of each site, row by row; ``[('', all, all)]`` for mono.

    Any four letters of R, G and B are split (a histogram can show an unusual pattern); use
    :func:`check_bayer_pattern` first where only the four Bayer patterns make sense.

    Raises
    ------
    ValueError
        For a pattern that is not four letters of R, G and B.
    """
    pat = "" if bayer_pattern is None else str(bayer_pattern).strip().upper()
    if not pat:
        return [("", *_ALL)]
    if len(pat) != 4 or set(pat) - set("RGB"):
        raise ValueError(f"bayer_pattern must be 4 letters of R, G, B such as 'RGGB', not {bayer_pattern!r}")
    return [(pat[2 * site[0] + site[1]], *site_slices(site)) for site in CFA_SITES]


def cfa_planes(bayer_pattern: str | None) -> list[tuple[slice, slice]]:
    """Index pairs selecting each same-colour sub-lattice (four for a CFA, the whole frame for mono).

    ``image[ys, xs]`` for one pair is a colour plane: its pixels are 2 apart in the mosaic, so a
    filter applied to a plane only ever mixes pixels of the same colour. (Both green sites are
    planes of their own here; :func:`channel_planes` groups them by colour.)

    Raises
    ------
    ValueError
        For a pattern not in :data:`CFA_PATTERNS`.
    """
    return [(ys, xs) for _, ys, xs in cfa_sites(check_bayer_pattern(bayer_pattern))]


def channel_planes(bayer_pattern: str | None) -> dict[str, list[tuple[slice, slice]]]:
    """The planes of each colour, R, G then B (both green sites under ``'G'``); ``{'': [all]}`` for mono.

    Raises
    ------
    ValueError
        For a pattern that is not four letters of R, G and B.
    """
    out: dict[str, list[tuple[slice, slice]]] = {}
    for colour, ys, xs in sorted(cfa_sites(bayer_pattern), key=lambda s: CHANNEL_INDEX.get(s[0], -1)):
        out.setdefault(colour, []).append((ys, xs))
    return out


def site_colours(bayer_pattern: str) -> np.ndarray:
    """2x2 array of the colour letters of a pattern: the colour of pixel ``(y, x)`` is ``[y % 2, x % 2]``."""
    return np.array(list(bayer_pattern)).reshape(2, 2)


def shift_bayer_pattern(bayer_pattern: str, rows: Any = 0, columns: Any = 0) -> str:
    """The pattern at ``[0, 0]`` of the image that starts ``rows`` and ``columns`` further on.

    An odd number of rows swaps the cell's two rows, an odd number of columns its two columns
    (a band read from row ``y0``, a trimmed section, ``XBAYROFF`` / ``YBAYROFF``).
    """
    cell = [bayer_pattern[:2], bayer_pattern[2:]]
    if int(rows or 0) % 2:
        cell = cell[::-1]
    if int(columns or 0) % 2:
        cell = [r[::-1] for r in cell]
    return cell[0] + cell[1]
