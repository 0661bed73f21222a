"""plots.rejection_comparison_figure: the difference on a symmetric scale, both maps on one scale, the figures."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib._pylab_helpers import Gcf
from matplotlib.table import Table

from astrocal_widgets import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _outcome(label, low, high, n, noise):
    return SimpleNamespace(label=label, rejected_low=low, rejected_high=high, fraction_low=low.mean() / n,
                           fraction_high=high.mean() / n, fraction=(low.mean() + high.mean()) / n, noise=noise,
                           expected_noise=noise * 0.5)


def _result(shape=(40, 60), crop_origin=(100, 200), seed=0):
    rng = np.random.default_rng(seed)
    n = 10
    first = _outcome("sigma 3/3", np.zeros(shape, np.uint16), (rng.random(shape) < 0.01).astype(np.uint16), n, 2.5)
    second = _outcome("mad 2/2", (rng.random(shape) < 0.05).astype(np.uint16),
                      (rng.random(shape) < 0.05).astype(np.uint16) * 3, n, 2.25)
    difference = rng.normal(0.0, 1.0, shape).astype(np.float32)
    difference[5, 5] = 500.0  # one outlier kept by the first: it must not flatten the scale
    y0, x0 = crop_origin
    return SimpleNamespace(first=first, second=second, difference=difference,
                           difference_rms=float(np.sqrt(np.mean(difference.astype(float) ** 2))),
                           difference_max=500.0, crop=(y0, y0 + shape[0], x0, x0 + shape[1]), n_frames=n,
                           label="bias set")


def test_the_comparison_figure_shows_difference_maps_and_figures():
    result = _result()
    fig = plots.rejection_comparison_figure(result)
    png = plots.to_png(fig)
    assert png.startswith(PNG) and len(png) > 20_000
    images = [ax for ax in fig.axes if ax.images and not hasattr(ax, "_colorbar")]
    assert len(images) == 3
    for ax in images:
        assert ax.get_xlabel() == "x (pixel)" and ax.get_ylabel() == "y (pixel)" and ax.get_title()
        # drawn where the crop is in the frame
        assert ax.images[0].get_extent() == [199.5, 259.5, 99.5, 139.5]
    difference, first, second = (ax.images[0] for ax in images)
    assert difference.norm.vmin == -difference.norm.vmax  # symmetric about 0
    assert 2.0 < difference.norm.vmax < 10.0  # the outlier saturates instead of setting the scale
    np.testing.assert_array_equal(difference.get_array(), result.difference)
    assert (first.norm.vmin, first.norm.vmax) == (second.norm.vmin, second.norm.vmax) == (0, 4)  # one scale
    np.testing.assert_array_equal(second.get_array(), result.second.rejected_low + result.second.rejected_high)
    assert "RMS" in images[0].get_title() and "500 ADU" in images[0].get_title()
    assert images[1].get_title().startswith("first: sigma 3/3") and images[2].get_title().startswith("second: mad 2/2")
    tables = [child for ax in fig.axes for child in ax.get_children() if isinstance(child, Table)]
    cells = {cell.get_text().get_text() for cell in tables[0].get_celld().values()}
    assert {"sigma 3/3", "mad 2/2", f"{result.second.fraction:.3%}", f"{result.first.fraction_high:.3%}",
            "2.5", "2.25", "1.125", "noise (ADU)", "expected noise (ADU)"} <= cells
    assert "bias set: 10 frames, crop 60 x 40 at x 200, y 100" == fig._suptitle.get_text()
    assert not Gcf.get_all_fig_managers()  # no pyplot state


def test_a_large_crop_is_previewed_keeping_single_rejections():
    result = _result(shape=(400, 500), crop_origin=(0, 0))
    result.first.rejected_high[:] = 0
    result.first.rejected_high[201, 303] = 1
    fig = plots.rejection_comparison_figure(result, max_pixels=20_000)
    images = [ax for ax in fig.axes if ax.images and not hasattr(ax, "_colorbar")]
    assert all("preview 1/" in ax.get_title() for ax in images)
    shown = images[1].images[0].get_array()
    assert shown.size <= 20_000 and shown.max() == 1  # block maximum: the lone rejection stays


def test_a_difference_that_is_not_an_image_is_refused():
    result = _result()
    result.difference = np.zeros(5)
    with pytest.raises(ValueError, match="2-D difference"):
        plots.rejection_comparison_figure(result)
