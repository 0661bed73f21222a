"""What the dashboard keeps in memory: saved masters are re-read from their files, previews are small.

A 24-megapixel night must fit Binder's 2 GB: nothing full-size that can be re-read stays in the
dashboard's state, and before/after views keep block-mean previews. (The walk-through's peak on a
24-megapixel night is measured by benchmarks/dashboard_memory.py.)
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets import plots
from astrocal_widgets import workflow as wf
from astrocal_widgets.quality import downsample, radial_profile
from astrocal_widgets.quality.previews import block_reduce, preview_factor
from astrocal_widgets.widgets import CalibrationDashboard, master_steps, steps
from astrocal_widgets.workflow import session as workflow_session

SHAPE = (120, 160)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory") / "night"
    aw.simulate_session(root, shape=SHAPE)
    return root


def in_memory_arrays(obj, seen=None) -> list[tuple[str, int]]:
    """(where, pixels) of every numpy array held by ``obj``: dataclasses, dicts, sequences, xarray data.

    Lazy (dask-backed) xarray variables are not counted: they are read when used.
    """
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found = []
    if isinstance(obj, np.ndarray):
        return [(type(obj).__name__, obj.size)]
    if isinstance(obj, xr.Dataset):
        for name, variable in obj.variables.items():
            if isinstance(variable._data, np.ndarray):
                found.append((f"variable {name}", variable.size))
        return found
    if isinstance(obj, (pd.DataFrame, pd.Series, str, bytes)):
        return []
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        children = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    elif isinstance(obj, dict):
        children = {repr(k)[:40]: v for k, v in obj.items()}
    elif isinstance(obj, (list, tuple)):
        children = {str(i): v for i, v in enumerate(obj)}
    else:
        return []
    for name, child in children.items():
        found += [(f"{name}.{where}", size) for where, size in in_memory_arrays(child, seen)]
    return found


def test_block_reduce_and_downsample_of_a_lazy_image_agree():
    rng = np.random.default_rng(1)
    image = rng.normal(100, 5, (1003, 1501)).astype(np.float32)
    factor = preview_factor(image.shape, 20_000)
    assert (image.shape[0] // factor) * (image.shape[1] // factor) <= 20_000
    assert (image.shape[0] // (factor - 1)) * (image.shape[1] // (factor - 1)) > 20_000  # the smallest factor
    small, f = downsample(image, 20_000)
    assert f == factor and small.dtype == np.float32
    expected = image[:factor * 2, :factor * 3].reshape(2, factor, 3, factor).mean(axis=(1, 3))
    np.testing.assert_allclose(small[:2, :3], expected, rtol=1e-6)
    lazy = xr.DataArray(image, dims=("y", "x")).chunk({"y": 100})
    np.testing.assert_array_equal(downsample(lazy, 20_000)[0], small)
    counts = np.zeros((40, 40), np.uint16)
    counts[7, 9] = 3
    assert block_reduce(counts, 10, how="max")[0, 0] == 3  # a single rejected pixel stays visible
    full, one = downsample(image, None)
    assert one == 1 and full is image


def test_saved_master_result_reads_its_arrays_from_the_file(night, tmp_path):
    session = wf.open_session(night, output=tmp_path)
    result = wf.integrate_master(session.groups("dark")[0])
    before = {name: result.dataset[name].values.copy() for name in result.dataset.data_vars}
    assert result.in_memory and in_memory_arrays(result.dataset)
    path = wf.save_master(result, session.masters_dir)
    assert not result.in_memory and result.saved_path == path
    assert not [where for where, size in in_memory_arrays(result) if size >= SHAPE[0] * SHAPE[1]]
    for name, values in before.items():  # the same values and types, read back
        assert result.dataset[name].dtype == values.dtype
        np.testing.assert_array_equal(result.dataset[name].values, values)
    assert "rejected" in result.summary()
    # Saving it again (elsewhere) writes the same master.
    again = wf.save_master(result, tmp_path / "copy.fits")
    np.testing.assert_array_equal(fits.getdata(again), before["master"])


def test_flat_preview_keeps_block_means_and_full_size_medians(night, tmp_path):
    session = wf.open_session(night, output=tmp_path)
    for group in session.groups("darkflat"):
        wf.save_master(wf.integrate_master(group), session.masters_dir)
    flats = session.groups("flat")[0]
    full = wf.preview_flat_calibration(flats, session.masters_dir, frame=1)
    small = wf.preview_flat_calibration(flats, session.masters_dir, frame=1, max_pixels=2_000)
    assert full.factor == 1 and small.factor == preview_factor(SHAPE, 2_000) > 1
    np.testing.assert_allclose(small.before, block_reduce(full.before, small.factor), rtol=1e-6)
    np.testing.assert_allclose(small.after, block_reduce(full.after, small.factor), rtol=1e-6)
    assert small.median_before == pytest.approx(float(np.median(full.before)))
    assert small.median_after == pytest.approx(float(np.median(full.after)))
    assert small.summary() == full.summary()


def test_light_before_after_is_the_calibrated_light_block_averaged(night, tmp_path):
    session = wf.open_session(night, output=tmp_path)
    aw.calibrate_session(night, output=tmp_path)  # every master saved
    light = wf.preview_light(session, 1)
    small = wf.light_before_after(session, 1, max_pixels=3_000)
    assert small.factor == preview_factor(SHAPE, 3_000) > 1
    assert small.before.size <= 3_000 and small.after.size <= 3_000
    np.testing.assert_allclose(small.after, block_reduce(light.data, small.factor), rtol=1e-6)
    np.testing.assert_allclose(small.before, block_reduce(light.raw, small.factor), rtol=1e-6)
    assert (small.source, small.dark, small.flat, small.dark_scale) == (light.source, light.dark, light.flat,
                                                                         light.dark_scale)
    assert small.defects_corrected == light.defects_corrected and small.decisions == light.decisions
    assert not [where for where, size in in_memory_arrays(small) if size > 3_000]


def test_radial_profile_on_a_sample_matches_the_whole_frame():
    y, x = np.indices((900, 1200))
    r = np.hypot(y - 449.5, x - 599.5)
    image = 1000.0 * (1 - 0.3 * (r / r.max()) ** 2)
    # A colour flat: very different channel levels, which the per-channel equalisation must remove.
    image[0::2, 0::2] *= 1.6  # R
    image[1::2, 1::2] *= 0.5  # B
    whole = radial_profile(image, bayer_pattern="RGGB")
    sample = radial_profile(image, bayer_pattern="RGGB", max_pixels=60_000)
    assert sample["n_pixels"].sum() <= 1.1 * 60_000 < whole["n_pixels"].sum()
    np.testing.assert_allclose(sample["radius"], whole["radius"])
    np.testing.assert_allclose(sample["level"], whole["level"], atol=0.005)
    # The channels were equalised in the sample too: whole cells were taken, the CFA's phase kept.
    assert sample["sigma"].max() < 0.02 and whole["sigma"].max() < 0.02


def test_image_of_a_preview_keeps_original_pixel_coordinates():
    small = np.arange(30 * 40, dtype=np.float32).reshape(30, 40)
    fig = plots.image(small, title="light", downsampled=5)
    ax = fig.axes[0]
    assert "preview 1/5" in ax.get_title()
    assert ax.images[0].get_extent() == pytest.approx([-0.5, 199.5, -0.5, 149.5])


def test_dashboard_state_holds_no_full_size_array_after_each_action(night, tmp_path, monkeypatch):
    """Walk the whole dashboard; after every action, what its state keeps is small or on disk."""
    pixels = SHAPE[0] * SHAPE[1]
    budget = 2_000  # previews and samples as a 24-megapixel night has them: a small share of the frame
    for module in (master_steps, steps):
        monkeypatch.setattr(module, "PREVIEW_PIXELS", budget)
    monkeypatch.setattr(workflow_session, "SAMPLE_PIXELS", budget)
    board = CalibrationDashboard(night)

    def check(action: str) -> None:
        state = board.state
        unsaved = [r for r in state.results.values() if r.in_memory]
        assert len(unsaved) <= 1, f"after {action}: {len(unsaved)} unsaved masters held"  # the one to save
        kept = [state.session, state.checks, state.previews, state.calibration,
                [r for r in state.results.values() if not r.in_memory]]
        big = [(where, size) for where, size in in_memory_arrays(kept) if size >= pixels // 2]
        assert not big, f"after {action}: full-size arrays kept: {big}"

    board.steps["Session"].check_button.click()
    check("Check")
    for title in ("Bias", "Darks", "Dark flats & flat calibration", "Flat integration"):
        board.go(title)
        panel = board.step.panel
        for k in range(len(panel.groups)):
            panel.group.value = k
            panel.integrate_button.click()
            check(f"{board.step.title} {k}: Integrate")
            panel.save_button.click()
            check(f"{board.step.title} {k}: Save")
            assert all(not r.in_memory for r in board.state.results.values())
        if title == "Dark flats & flat calibration":
            board.step.calibrate_button.click()
            check("flat before/after")
    assert len(board.state.results) == len([g for g in board.state.session.groups() if g.frame_type != "light"])
    board.go("Lights")
    board.step.calibrate_button.click()
    check("light before/after")
    (light, _), = [v for k, v in board.state.previews.items() if k[0] == "light"]
    assert light.factor > 1 and light.before.size <= budget
    board.step.all_button.click()
    check("Calibrate all")
    assert pixels > budget


def test_release_memory_hands_freed_heap_pages_back():
    import platform

    import psutil

    from astrocal_widgets.workflow.memory import release_memory

    if platform.libc_ver()[0] != "glibc":
        assert release_memory() is False  # only the garbage is collected
        return
    process = psutil.Process()
    chunks = [bytearray(b"x" * 65536) for _ in range(3200)]  # 200 MB in the C heap, below mmap's threshold
    last = chunks[-1]
    del chunks  # freed, but the last chunk pins the heap's top: the pages stay with the process
    held = process.memory_info().rss
    assert release_memory() is True
    assert held - process.memory_info().rss > 100 * 2**20
    assert len(last) == 65536


HEAPS_SCRIPT = r"""
import ctypes, sys, tempfile, threading
from astrocal_widgets.workflow.memory import limit_heap_arenas
limited = limit_heap_arenas(2) if sys.argv[1] == "limit" else False
# every thread alive at once (glibc hands a finished thread's heap to the next one: threads that
# ran one after the other, as on a busy machine, would share one heap whatever the limit)
together = threading.Barrier(6)
def work():
    chunks = [bytearray(4096) for _ in range(2000)]
    together.wait()
    del chunks
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
path = tempfile.mktemp()
stream = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(limited, open(path).read().count("<heap nr="))
"""


def test_limit_heap_arenas_keeps_new_threads_on_few_heaps():
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        from astrocal_widgets.workflow.memory import limit_heap_arenas
        assert limit_heap_arenas() is False
        return
    counts = {}
    for mode in ("limit", "default"):
        out = subprocess.run([sys.executable, "-c", HEAPS_SCRIPT, mode], capture_output=True, text=True, check=True,
                             env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"})
        limited, heaps = out.stdout.split()
        counts[mode] = int(heaps)
        assert (limited == "True") == (mode == "limit")
    assert counts["limit"] <= 2 < counts["default"], counts


def test_a_saved_result_refuses_a_file_replaced_since(night, tmp_path):
    session = wf.open_session(night, output=tmp_path)
    group = session.groups("bias")[0]
    first = wf.integrate_master(group, combine="average")
    path = wf.save_master(first, session.masters_dir)
    second = wf.integrate_master(group, combine="median")
    wf.save_master(second, path, overwrite=True)
    np.testing.assert_array_equal(second.master, fits.getdata(path))
    with pytest.raises(aw.errors.AstrocalError, match="replaced since this master was saved"):
        first.master


def test_binder_start_exports_what_the_browser_tests_give_voila():
    from pathlib import Path

    from browser_support import BINDER_ENV

    start = Path(__file__).resolve().parents[2] / "binder" / "start"
    text = start.read_text()
    assert os.access(start, os.X_OK) and text.rstrip().endswith('exec "$@"')  # Binder's contract
    for name, value in BINDER_ENV.items():
        assert f"export {name}={value}\n" in text
