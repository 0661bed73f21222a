"""The one definition of the CFA split: sites, planes, colours and shifted patterns agree."""
from __future__ import annotations

import numpy as np
import pytest

from astrocal_widgets.io.cfa import (CFA_PATTERNS, CHANNEL_INDEX, cfa_planes, cfa_sites, channel_planes,
                                     check_bayer_pattern, shift_bayer_pattern, site_colours)


def _mosaic(pattern: str, shape=(6, 8)) -> np.ndarray:
    """Each pixel holds its colour's channel index."""
    cell = np.array([CHANNEL_INDEX[c] for c in pattern]).reshape(2, 2)
    return np.tile(cell, (shape[0] // 2, shape[1] // 2))


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_each_plane_holds_one_colour_and_the_planes_cover_the_frame(pattern):
    image = _mosaic(pattern)
    seen = np.zeros(image.shape, int)
    for colour, ys, xs in cfa_sites(pattern):
        assert set(np.unique(image[ys, xs])) == {CHANNEL_INDEX[colour]}
        seen[ys, xs] += 1
    assert (seen == 1).all()
    assert [(ys, xs) for _, ys, xs in cfa_sites(pattern)] == cfa_planes(pattern)
    grouped = channel_planes(pattern)
    assert list(grouped) == ["R", "G", "B"] and len(grouped["G"]) == 2
    assert all(site_colours(pattern)[ys.start, xs.start] == c for c, planes in grouped.items() for ys, xs in planes)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("rows, columns", [(0, 0), (1, 0), (0, 1), (3, 5)])
def test_a_shifted_pattern_describes_the_image_that_starts_further_on(pattern, rows, columns):
    image = _mosaic(pattern, (12, 14))
    assert (image[rows:, columns:][:8, :8] == _mosaic(shift_bayer_pattern(pattern, rows, columns), (8, 8))).all()


def test_mono_is_one_plane_and_bad_patterns_are_refused():
    assert cfa_planes("") == [(slice(None), slice(None))] and channel_planes(None) == {"": [(slice(None),) * 2]}
    with pytest.raises(ValueError, match="one of RGGB"):
        cfa_planes("RGBG")  # not a Bayer pattern
    assert sorted(channel_planes("RGBG")) == ["B", "G", "R"]  # a histogram still splits it
    with pytest.raises(ValueError, match="4 letters of R, G, B"):
        cfa_sites("XTRANS")
    assert check_bayer_pattern(" bggr ") == "BGGR"
