"""review_frames and frame_preview: the per-frame table with outliers and reasons; one frame read in bands."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from astrocal_widgets.io import READ_STATISTICS
from astrocal_widgets.quality.previews import block_reduce
from astrocal_widgets.simulate import simulate_session
from astrocal_widgets.workflow import frame_preview, open_session, review_frames
from astrocal_widgets.workflow import frames as frames_module


@pytest.fixture(scope="module")
def bias_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("n")
    simulate_session(root, shape=(60, 90), counts={"bias": 6, "dark": 0, "flat": 0, "darkflat": 0, "light": 0},
                     seed=2)
    group = open_session(root).groups("bias")[0]
    with fits.open(group.paths[1], mode="update") as hdul:
        hdul[0].data = (hdul[0].data.astype(np.int32) + 200).astype(np.uint16)
    return group


def test_the_review_marks_the_planted_outlier_with_its_reason(bias_set):
    review = review_frames(bias_set)
    assert list(review.table.index) == list(range(6)) and review.table["path"].tolist() == bias_set.paths
    assert review.table.loc[1, "status"] != "pass" and "Outlier" in review.table.loc[1, "reason"]
    assert (review.table.drop(index=1)["status"] == "pass").all()
    assert list(review.outliers()) == [bias_set.paths[1]]
    assert review.sorted_by("median", descending=True).index[0] == 1
    assert review.sorted_by("status", descending=True).index[0] == 1
    with pytest.raises(ValueError, match="no column"):
        review.sorted_by("nothing")


def test_a_preview_reads_only_its_frame_band_by_band(bias_set, monkeypatch):
    monkeypatch.setattr(frames_module, "PREVIEW_BAND_BYTES", 90 * 4 * 8)  # bands of 8 rows (16 at factor 2)
    READ_STATISTICS.reset()
    preview = frame_preview(bias_set, 4, max_pixels=60 * 90 // 4)
    assert READ_STATISTICS.rows == 60 and READ_STATISTICS.bytes == 60 * 90 * 2  # one frame, every row once
    assert READ_STATISTICS.calls > 1  # in bands, not whole
    full = fits.getdata(bias_set.paths[4]).astype(np.float32)
    assert preview.factor == 2 and preview.shape == (60, 90)
    np.testing.assert_allclose(preview.image, block_reduce(full, 2), rtol=1e-6)
    assert preview.sample.size <= 60 * 90 and preview.sample.size > 0
    with pytest.raises(IndexError, match="frame 6 out of 0-5"):
        frame_preview(bias_set, 6)
