"""``integrate`` on a dask.distributed cluster of processes: the same call, the same master.

Proof that it ran on the cluster, not in the test process: the pixel reads are counted by the
workers' own ``READ_STATISTICS`` (fetched with ``client.run``) and none by this process, and the
client's task stream shows the band tasks on the two workers.
"""
from __future__ import annotations

import importlib.util
import json
import logging

import dask
import numpy as np
import pytest

import astrocal_widgets as aw
from astrocal_widgets.integrate import integrate, write_master
from astrocal_widgets.io import READ_STATISTICS

from conftest import skip_or_fail

SHAPE = (64, 96)
N = 10
BANDS = 4


def _worker_reads():
    from astrocal_widgets.io import READ_STATISTICS as stats

    return stats.bytes


def _worker_reset():
    from astrocal_widgets.io import READ_STATISTICS as stats

    stats.reset()


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("dark")
    aw.simulate_stack(root, "dark", N, shape=SHAPE, seed=3)
    cube = aw.open_frames(root, chunks={"y": SHAPE[0] // BANDS})
    # the threaded result first: the peer of the cluster run, and it compiles (and caches) the
    # numba kernel once here rather than in each worker process
    reference = {kw: integrate(cube, **dict(kw)).compute(scheduler="threads")
                 for kw in ((), (("normalization", "multiplicative"), ("rejection", "sigma")))}
    return root, cube, reference


@pytest.fixture(scope="module")
def client(frames, tmp_path_factory):
    if importlib.util.find_spec("distributed") is None:
        skip_or_fail("dask.distributed is not installed (pip install 'astrocal-widgets[distributed]')")
    from distributed import Client, LocalCluster

    # the cluster's scratch folders go with the test's, not into a dask-scratch-space left in /tmp
    with dask.config.set({"temporary-directory": str(tmp_path_factory.mktemp("dask"))}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as c:
        yield c


def test_integrate_runs_on_the_cluster(frames, client):
    from distributed import get_task_stream

    _, cube, reference = frames
    client.run(_worker_reset)
    READ_STATISTICS.reset()
    with get_task_stream(client) as stream:
        ds = integrate(cube)  # no scheduler argument: the active client is used
        out = ds.compute()
    # every pixel byte (uint16 files) was read by the workers, none by this process
    reads = client.run(_worker_reads)
    assert len(reads) == 2
    assert sum(reads.values()) == N * SHAPE[0] * SHAPE[1] * 2
    assert READ_STATISTICS.bytes == 0
    # the band tasks ran on the cluster's workers
    names = [t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in stream.data]
    band_tasks = [t for t, name in zip(stream.data, names) if name.startswith("_integrate_block")]
    assert len(band_tasks) == BANDS
    assert {t["worker"] for t in stream.data} <= set(client.scheduler_info()["workers"])
    # the same master and maps as the threaded scheduler
    expected = reference[()]
    for var in ("master", "rejected_low", "rejected_high", "contributing"):
        np.testing.assert_array_equal(out[var].values, expected[var].values)
    assert json.dumps(out.attrs, sort_keys=True) == json.dumps(expected.attrs, sort_keys=True)  # NaN-safe


def test_normalised_integration_and_progress_on_the_cluster(frames, client):
    _, cube, reference = frames
    calls = []
    ds = integrate(cube, normalization="multiplicative", rejection="sigma",
                   progress=lambda f, m: calls.append(f))
    # location/scale come from an eager subsample read in this process; the bands run on the workers
    assert calls == [0.0]
    out = ds.compute()
    expected = reference[(("normalization", "multiplicative"), ("rejection", "sigma"))]
    np.testing.assert_array_equal(out.master.values, expected.master.values)
    # documented: the callback cannot be reached from worker processes, so it is not called there
    assert calls == [0.0]


def test_write_master_with_an_active_client(frames, client, tmp_path):
    from astropy.io import fits

    _, cube, reference = frames
    client.run(_worker_reset)
    path = write_master(integrate(cube), tmp_path / "master_dark.fits")
    assert sum(client.run(_worker_reads).values()) == N * SHAPE[0] * SHAPE[1] * 2
    np.testing.assert_array_equal(fits.getdata(path), reference[()].master.values)
    assert fits.getheader(path)["IMAGETYP"] == "MASTER DARK"


def _tree_bytes(folder):
    from pathlib import Path

    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*.fits"))}


def test_calibrate_session_on_the_cluster_writes_the_same_bytes(client, tmp_path):
    """The whole night as tasks: masters' bands, the defect map and each light on the workers."""
    from distributed import get_task_stream

    from astrocal_widgets.calibrate import calibrate_session

    night = tmp_path / "night"
    aw.simulate_session(night, shape=SHAPE, counts={"bias": 5, "dark": 5, "flat": 5, "darkflat": 5, "light": 2})
    local = calibrate_session(night, output=tmp_path / "local")
    client.run(_worker_reset)
    with get_task_stream(client) as stream:
        remote = calibrate_session(night, output=tmp_path / "cluster", client=client)
    names = [t["key"][0] if isinstance(t["key"], tuple) else t["key"] for t in stream.data]
    workers = set(client.scheduler_info()["workers"])
    light_tasks = [t for t, name in zip(stream.data, names) if name.startswith("_light_task")]
    assert len(light_tasks) == len(remote.lights) == 4  # two filters, two lights each
    assert sum(name.startswith("_defect_map_task") for name in names) == 2  # one per (dark, flat) pair
    assert any(name.startswith("_integrate_block") for name in names)  # the masters' bands
    assert {t["worker"] for t in stream.data} <= workers
    assert sum(client.run(_worker_reads).values()) > 0  # the workers read the pixels
    # byte for byte the files of the local run: masters, defect maps, calibrated lights
    ours, theirs = _tree_bytes(tmp_path / "local"), _tree_bytes(tmp_path / "cluster")
    assert sorted(ours) == sorted(theirs) and len(ours) == 7 + 2 + 4
    different = [name for name in ours if ours[name] != theirs[name]]
    assert not different, different
    assert [l.output.replace("cluster", "local") for l in remote.lights] == [l.output for l in local.lights]
