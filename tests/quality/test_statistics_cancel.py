"""Cancel reaches the per-frame statistics: ``frame_statistics(cancel=)`` stops at the next band, and an
Integrate cancelled while it measures the frames stops at once instead of reading the whole set again."""
from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from astrocal_widgets.cancel import CancelToken
from astrocal_widgets.errors import CancelledError
from astrocal_widgets.io import READ_STATISTICS
from astrocal_widgets.quality import frame_statistics
from astrocal_widgets.simulate import simulate_session
from astrocal_widgets.workflow import integrate_master, open_session

FRAMES = 24


def _cube(on_read) -> xr.DataArray:
    """A lazy cube, one frame a chunk, calling ``on_read()`` as each chunk is made."""
    def make(block, block_info=None):
        on_read()
        rng = np.random.default_rng(block_info[None]["chunk-location"][0])
        return rng.normal(1000, 10, block.shape).astype(np.float32)

    data = da.zeros((FRAMES, 64, 48), chunks=(1, 64, 48), dtype=np.float32).map_blocks(make, dtype=np.float32)
    return xr.DataArray(data, dims=("frame", "y", "x"))


@pytest.mark.parametrize("kind", ["token", "event"])
def test_frame_statistics_stops_at_the_next_band_once_cancelled(kind):
    cancel = CancelToken() if kind == "token" else threading.Event()
    read = []
    lock = threading.Lock()

    def on_read():
        with lock:
            read.append(1)
        cancel.set() if kind == "event" else cancel.cancel()  # as the first band is read

    with pytest.raises(CancelledError, match="per-frame statistics: cancelled"):
        frame_statistics(_cube(on_read), adc_max=65535, cancel=cancel)
    # Stopped within about a band a thread: the other threads may finish the band they had started.
    assert 1 <= len(read) < FRAMES // 2, len(read)
    assert frame_statistics(_cube(lambda: None), adc_max=65535)["median"].shape == (FRAMES,)  # no token: all


def test_an_integrate_cancelled_while_it_measures_the_frames_stops_there(tmp_path):
    simulate_session(tmp_path, shape=(96, 128), counts={"bias": 16, "dark": 0, "flat": 0, "darkflat": 0,
                                                         "light": 0}, seed=2)
    group = open_session(tmp_path).groups("bias")[0]
    token = CancelToken()

    def progress(fraction, message):
        if message == "per-frame statistics":  # the master is made: now every frame is read again
            READ_STATISTICS.reset()
            token.cancel()

    with pytest.raises(CancelledError):
        integrate_master(group, progress=progress, cancel=token)
    whole_set = 16 * 96 * 128 * 2  # uint16 on disk
    assert READ_STATISTICS.bytes < whole_set / 2, f"{READ_STATISTICS.bytes} bytes read after Cancel, of {whole_set}"
