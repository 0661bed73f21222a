"""The astrocal command: scan, demo, integrate (run as a user would, in a subprocess)."""
import shutil
import subprocess
import sys

import pytest
from astropy.io import fits

import astrocal_widgets as aw

from conftest import tree_hashes


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "astrocal_widgets", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return aw.simulate_session(tmp_path_factory.mktemp("night"), counts={"light": 1})


def test_console_script_is_installed():
    assert shutil.which("astrocal"), "pip install -e . must install the 'astrocal' command"


def test_scan_prints_the_groups(session):
    result = run("scan", session.directory)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "bias, -10.0 °C, gain 139, offset 21, 1x1 bin, 640x480 px: 20 frames" in out
    assert "dark, 300 s" in out and "dark, 60 s" in out
    assert "darkflat, 1.5 s" in out and "darkflat, 8 s" in out
    assert "flat, filter L" in out and "flat, filter Ha" in out and "light, filter L, 300 s" in out


def test_scan_of_a_missing_folder_is_a_clear_error(tmp_path):
    result = run("scan", tmp_path / "nope")
    assert result.returncode == 2
    assert "nope: no such folder" in result.stderr and "Traceback" not in result.stderr


def test_demo_simulates_scans_and_calibrates_then_reuses(tmp_path):
    result = run("demo", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert "Simulating a mono session" in result.stdout
    masters = sorted(p.name for p in (tmp_path / "demo" / "masters").glob("master_*.fits"))
    assert len(list((tmp_path / "demo" / "masters").glob("defects_*.fits"))) == 2
    assert len(masters) == 7 and "master_bias_-10C_g139_o21_1x1_640x480.fits" in masters
    header = fits.getheader(tmp_path / "demo" / "masters" / "master_bias_-10C_g139_o21_1x1_640x480.fits")
    assert header["IMAGETYP"] == "MASTER BIAS" and header["NCOMBINE"] == 20
    calibrated = sorted((tmp_path / "demo" / "calibrated").rglob("*_calibrated.fits"))
    assert len(calibrated) == 8
    assert fits.getheader(calibrated[0])["CALSTAT"] == "BDF"
    before = tree_hashes(tmp_path / "demo")
    again = run("demo", tmp_path / "demo")
    assert again.returncode == 0, again.stderr
    assert "already" in again.stdout and again.stdout.count("reused") >= 15
    assert "made " not in again.stdout
    assert tree_hashes(tmp_path / "demo") == before  # nothing overwritten
    # the masters and calibrated lights are never taken for raw frames
    scan = run("scan", tmp_path / "demo")
    assert "masters and calibrated frames (not raw, not grouped): 17" in scan.stdout
    assert "bias, -10.0 °C, gain 139, offset 21, 1x1 bin, 640x480 px: 20 frames" in scan.stdout


def test_integrate_writes_a_master_and_refuses_to_overwrite(session, tmp_path):
    bias = [g for g in aw.scan(session.directory).groups("bias")][0]
    out = tmp_path / "master_bias.fits"
    result = run("integrate", *bias.paths, "--rejection", "sigma", "--output", out)
    assert result.returncode == 0, result.stderr
    assert "20 frames, sigma" in result.stdout
    with fits.open(out) as hdul:
        assert hdul[0].header["REJECT"] == "sigma" and [h.name for h in hdul][1:4] == ["REJ_LOW", "REJ_HIGH",
                                                                                       "CONTRIB"]
    mtime = out.stat().st_mtime_ns
    again = run("integrate", *bias.paths, "--output", out)
    assert again.returncode == 2 and "exists; pass overwrite=True (or --overwrite)" in again.stderr
    assert out.stat().st_mtime_ns == mtime
    forced = run("integrate", *bias.paths, "--output", out, "--overwrite")
    assert forced.returncode == 0, forced.stderr


def test_check_prints_the_traffic_light_report(session):
    result = run("check", session.directory)
    assert result.returncode == 0, result.stderr  # warnings only: exit 0 unless --strict
    out = result.stdout
    assert out.startswith("OVERALL WARN")
    assert "WARN frame_count: 20 bias frames, 50-100 are recommended" in out
    assert "PASS flat_level" in out and "PASS lights_temperature" in out
    # Per-frame results aggregated: each check once per set, however many frames it ran on.
    names_by_set: list[list[str]] = []
    for line in out.splitlines()[1:]:
        if not line.startswith("  "):
            names_by_set.append([])
        else:
            names_by_set[-1].append(line.split()[1].rstrip(":"))
    assert all(len(names) == len(set(names)) for names in names_by_set), out
    assert "PASS read_noise: all 20 frames pass" in out
    strict = run("check", session.directory, "--strict")
    assert strict.returncode == 1


def test_integrate_refuses_mixed_sets_and_checks_the_output_first(session, tmp_path):
    mixed = run("integrate", session.directory, "--output", tmp_path / "mixed.fits")
    assert mixed.returncode == 2 and "the frames mix bias, dark, flat, light" in mixed.stderr
    existing = tmp_path / "exists.fits"
    existing.write_bytes(b"keep me")
    bias_dir = next(session.directory.rglob("BIAS"))
    result = run("integrate", bias_dir, "--output", existing)
    assert result.returncode == 2 and "exists" in result.stderr and "integrate:" not in result.stderr
    assert existing.read_bytes() == b"keep me"
    bad = run("integrate", bias_dir, "--output", tmp_path / "m.fits", "--rejection", "esd", "--low", "2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_calibrate_with_one_rejection_for_every_master(tmp_path):
    aw.simulate_session(tmp_path / "night", shape=(48, 64), counts={"bias": 6, "dark": 5, "flat": 5, "darkflat": 5,
                                                                      "light": 1}, seed=1)
    result = run("calibrate", tmp_path / "night", "--no-cosmetic", "--rejection", "winsorized_sigma", "--low", "3")
    assert result.returncode == 0, result.stderr
    masters = sorted((tmp_path / "night" / "masters").glob("master_*.fits"))
    assert masters and all(fits.getheader(p)["REJECT"] == "winsorized_sigma" for p in masters)
    assert {fits.getheader(p)["REJLOW"] for p in masters} == {3}
    bad = run("calibrate", tmp_path / "night", "--low", "3")
    assert bad.returncode == 2 and "named --rejection" in bad.stderr and "Traceback" not in bad.stderr


def test_the_command_tunes_its_memory_allocators_unless_the_user_chose():
    code = ("import numpy as np; from astrocal_widgets.cli import tune_process_memory; "
            "print(tune_process_memory(), np._core.multiarray._get_madvise_hugepage())")
    chosen = ("NUMPY_MADVISE_HUGEPAGE", "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")
    env = {k: v for k, v in __import__("os").environ.items() if k not in chosen}
    ours = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert ours.stdout.strip() == ("{'huge_pages_off': True, 'malloc_arenas': True, 'freed_bands_kept': True} "
                                   "False"), ours.stderr
    theirs = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**env, "NUMPY_MADVISE_HUGEPAGE": "1", "MALLOC_ARENA_MAX": "8",
                                 "MALLOC_TRIM_THRESHOLD_": "131072"})
    assert theirs.stdout.strip() == ("{'huge_pages_off': False, 'malloc_arenas': False, 'freed_bands_kept': False} "
                                     "True"), theirs.stderr
