"""A process that ran parallel kernels from worker threads exits, also on fewer CPUs than the machine has.

With numba's TBB threading layer (oneTBB 2022) such a process hung at exit after its work was done
(numba issue #10556): ``astrocal calibrate --cores``-style runs, containers with CPU limits and batch
jobs would never return. The package puts OpenMP first.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

CODE = """
import threading
import numpy as np
import numba
from astrocal_widgets.calibrate.cosmetic import median_filter

def worker():
    median_filter(np.ones((300, 300), np.float32), 5)

thread = threading.Thread(target=worker)
thread.start()
thread.join()
print(numba.threading_layer())
"""


@pytest.mark.skipif(not shutil.which("taskset"), reason="taskset (util-linux) is needed to limit the CPUs")
def test_parallel_kernels_from_threads_exit_on_one_cpu():
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING_LAYER")}
    try:
        done = subprocess.run(["taskset", "-c", str(min(os.sched_getaffinity(0))), sys.executable, "-c", CODE],
                              capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the process did its work but did not exit within 120 s (threading layer hang at exit)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "omp"


def test_the_users_choice_of_threading_layer_is_kept():
    code = "import numba, astrocal_widgets; print(numba.config.THREADING_LAYER_PRIORITY)"
    env = {**os.environ, "NUMBA_THREADING_LAYER_PRIORITY": "tbb omp workqueue"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.stdout.strip() == "['tbb', 'omp', 'workqueue']", done.stderr


def test_openmp_threads_sleep_between_kernels_unless_the_user_chose():
    """Kernels are called from several threads at once: OpenMP's idle threads must not spin on the CPUs."""
    code = "import os, astrocal_widgets; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    ours = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert ours.stdout.strip() == "PASSIVE", ours.stderr
    theirs = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**env, "OMP_WAIT_POLICY": "ACTIVE"})
    assert theirs.stdout.strip() == "ACTIVE", theirs.stderr
