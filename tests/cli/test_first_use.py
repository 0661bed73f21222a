"""A first run that explains itself: the CLI's help and version, the kernel compilation announced,
progress labels said once, the README's notebook snippet safe to run twice, help() complete."""
from __future__ import annotations

import io
import os
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets import cli
from astrocal_widgets.calibrate import calibrate_session
from astrocal_widgets.errors import OutputExistsError
from astrocal_widgets.integrate import kernels

README = Path(__file__).resolve().parents[2] / "README.md"
COUNTS = {"bias": 5, "dark": 5, "flat": 5, "darkflat": 5, "light": 1}


def test_version_and_help_on_every_argument(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"astrocal-widgets {aw.__version__}"
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    assert set(subparsers) == {"scan", "demo", "calibrate", "check", "integrate"}
    for name, sub in subparsers.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"astrocal {name}: {action.dest} has no help"
        text = sub.format_help()
        assert "``" not in text and ":func:" not in text, text  # plain text, not reST markup
    assert "``" not in parser.format_help()


def test_scan_table_says_why_each_frame_got_its_type(tmp_path, capsys):
    aw.simulate_session(tmp_path / "night", shape=(16, 24), counts=COUNTS)
    assert cli.main(["scan", str(tmp_path / "night"), "--table"]) == 0
    out = capsys.readouterr().out
    assert "type_reason" in out and "NINA 3 writes dark flats as DARK" in out
    assert "table['type_reason']" not in out  # a pointer to something the CLI has


def test_kernel_compilation_is_announced(monkeypatch, tmp_path):
    monkeypatch.setattr(kernels, "kernels_need_compiling", lambda: True)
    session = aw.simulate_session(tmp_path / "night", shape=(16, 24), counts={**COUNTS, "light": 0})
    messages = []
    aw.integrate(session.paths["bias"], progress=lambda f, m: messages.append(m)).compute()
    assert any(kernels.COMPILING_MESSAGE in m for m in messages[:2]), messages
    log = io.StringIO()  # not a tty: a log file keeps only the start and end lines, and this one
    bar = cli.ConsoleProgress("calibrate", stream=log)
    bar(0.0, "master bias: start")
    bar(0.01, f"master bias: {kernels.COMPILING_MESSAGE}")
    bar(0.5, "master bias: band 4 of 8")
    assert kernels.COMPILING_MESSAGE in log.getvalue() and "band 4" not in log.getvalue()


def test_kernels_need_compiling_is_false_once_compiled():
    aw.integrate(np.ones((3, 8, 8), np.float32) + np.arange(3)[:, None, None]).compute()
    assert kernels.kernels_need_compiling() is False


def test_progress_labels_are_not_doubled(tmp_path):
    aw.simulate_session(tmp_path / "night", shape=(16, 24), counts=COUNTS)
    messages = []
    calibrate_session(tmp_path / "night", progress=lambda f, m: messages.append(m))
    assert messages and not [m for m in messages if re.match(r"^(master \w+): \1", m)], messages[:5]
    assert any(m.startswith("master bias: band") for m in messages)


def test_help_lists_every_public_function():
    text = pydoc.render_doc(aw, renderer=pydoc.plaintext)
    for name in ("simulate_session", "calibrate_session", "check_session", "characterize_camera", "scan",
                 "integrate", "write_master", "open_frames"):
        assert name in text, name
    assert set(aw.__all__) <= set(dir(aw))


def test_write_master_reuse_keeps_the_same_master_and_refuses_another(tmp_path):
    session = aw.simulate_session(tmp_path / "night", shape=(16, 24), counts={**COUNTS, "light": 0})
    target = tmp_path / "master_bias.fits"
    aw.write_master(aw.integrate(session.paths["bias"]), target)
    mtime = target.stat().st_mtime_ns
    assert aw.write_master(aw.integrate(session.paths["bias"]), target, reuse=True) == target
    assert target.stat().st_mtime_ns == mtime
    with pytest.raises(OutputExistsError, match="combine"):  # other settings: not this master
        aw.write_master(aw.integrate(session.paths["bias"], combine="median"), target, reuse=True)
    with pytest.raises(OutputExistsError, match="frames"):  # other frames: not this master
        aw.write_master(aw.integrate(session.paths["bias"][:4]), target, reuse=True)
    assert target.stat().st_mtime_ns == mtime
    header = fits.getheader(target)
    assert len(header["INPHASH"]) == 64
    assert len(fits.getdata(target, "SOURCES")["SHA256"][0]) == 64


def test_simulate_session_twice_keeps_the_files(tmp_path):
    first = aw.simulate_session(tmp_path / "night", shape=(16, 24), counts=COUNTS, seed=4)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "night").rglob("*.fits")}
    second = aw.simulate_session(tmp_path / "night", shape=(16, 24), counts=COUNTS, seed=4)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "night").rglob("*.fits")} == stamps
    assert np.array_equal(first.truth["bias"].values, second.truth["bias"].values)
    some = sorted(stamps)[0]
    with fits.open(some, mode="update") as hdul:  # a changed file is not "this session" any more
        hdul[0].data[0, 0] += 1
    with pytest.raises(OutputExistsError, match="another frame"):
        aw.simulate_session(tmp_path / "night", shape=(16, 24), counts=COUNTS, seed=4)


def _readme_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## In a notebook", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_notebook_snippet_runs_twice(tmp_path, monkeypatch):
    code = _readme_snippet()
    assert 'simulate_session("night/")' in code  # the snippet this test stands for
    monkeypatch.chdir(tmp_path)
    for run in range(2):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "MPLBACKEND": "Agg"})
        assert out.returncode == 0, f"run {run + 1}:\n{out.stderr[-3000:]}"
        assert "Traceback" not in out.stderr
    assert "nothing written" in out.stdout


def test_cosmetic_kernel_compilation_is_announced(monkeypatch, tmp_path):
    """The hot/cold pixel kernels compile on first use too (about 15 s): the light step says so."""
    from astrocal_widgets.calibrate import cosmetic, session as session_module

    aw.simulate_session(tmp_path / "night", shape=(16, 24), counts={**COUNTS, "light": 1})
    monkeypatch.setattr(session_module, "cosmetic_kernels_need_compiling", lambda: True)
    messages = []
    aw.calibrate_session(tmp_path / "night", progress=lambda f, m: messages.append(m))
    assert any(cosmetic.COMPILING_MESSAGE in m for m in messages), messages
    log = io.StringIO()
    cli.ConsoleProgress("calibrate", stream=log)(0.5, f"lights: {cosmetic.COMPILING_MESSAGE}")
    assert cosmetic.COMPILING_MESSAGE in log.getvalue()


def test_cosmetic_kernels_need_compiling_only_without_a_cache(tmp_path):
    from astrocal_widgets.calibrate import cosmetic

    code = "from astrocal_widgets.calibrate import cosmetic as c; print(c.kernels_need_compiling())"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")})
    assert fresh.stdout.split() == ["True"], fresh.stderr  # an empty cache: they will compile
    cosmetic.defect_map(np.ones((16, 16), np.float32) + np.eye(16, dtype=np.float32), np.ones((16, 16), np.float32))
    assert cosmetic.kernels_need_compiling() is False
