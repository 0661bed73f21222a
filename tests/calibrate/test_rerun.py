"""Nothing lost: one calibrated output per light whatever the layout and the way the folder is named,
reruns that write nothing, and stale outputs that are refused instead of reused.

The property test generates capture-program layouts (a folder per target, the same file names in
several folders, spaces, brackets and non-ASCII names) and names the session folder relatively,
absolutely or through a symbolic link.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocal_widgets import cli
from astrocal_widgets.calibrate import MasterLibrary, calibrate_session
from astrocal_widgets.errors import OutputCollisionError, StaleOutputError
from astrocal_widgets.io.provenance import path_from_header
from astrocal_widgets.simulate import simulate_session

COUNTS = {"bias": 5, "dark": 5, "flat": 5, "darkflat": 5, "light": 2}
SHAPE = (32, 48)

#: Every generated layout, so the number run can be reported (pytest -s prints it).
LAYOUTS: list[dict] = []


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A small simulated night: its calibration frames, and its raw lights to copy into layouts."""
    root = tmp_path_factory.mktemp("night")
    session = simulate_session(root / "sim", shape=SHAPE, counts=COUNTS, seed=3)
    lights = [Path(p) for p in session.paths["light"]]
    calibration = [Path(p) for kind in ("bias", "dark", "flat", "darkflat") for p in session.paths[kind]]
    return root / "sim", calibration, lights


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _make_light(source: Path, target: Path, tag: str) -> None:
    """A copy of a raw light with one header card and one pixel changed, so every light is its own frame.

    (The same pixels under two names would be one frame twice: a duplicate, left out.)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(tag.encode("utf-8")).hexdigest()
    with fits.open(source) as hdul:
        hdul[0].header["LAYOUTID"] = digest[:16]
        data = hdul[0].data.copy()
        data[0, 0] = 1000 + int(digest[:4], 16)  # uint16: one pixel of its own
        hdul[0].data = data
        hdul.writeto(target)


def _lay_out(sim_root: Path, calibration: list[Path], lights: list[Path], session: Path,
             placements: list[tuple[str, str, int]]) -> list[Path]:
    """Calibration frames under ``session/calibration``, lights where the layout says."""
    for p in calibration:
        target = session / "calibration" / p.relative_to(sim_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)
    written = []
    for folder, name, which in placements:
        target = session / folder / name if folder else session / name
        _make_light(lights[which % len(lights)], target, f"{folder}/{name}")
        written.append(target)
    return written


# Names as capture programs and users make them: targets, filters in brackets, spaces, accents.
_segment = st.sampled_from(["M31", "M33", "NGC 7000 [Ha]", "Nébuleuse du Cœur", "IC 1805 (Heart)", "LIGHT",
                            "2024-10-03", "Ha", "lights [L]", "Ωmega"])
_folder = st.lists(_segment, min_size=0, max_size=2).map(lambda parts: "/".join(parts))
_name = st.sampled_from(["Light_001.fits", "Light_002.fits", "light [1].fits", "Léger 01.fit",
                         "M31 Light (copy).fits", "Light_001.fts"])
_placements = st.lists(st.tuples(_folder, _name, st.integers(0, 3)), min_size=1, max_size=6,
                       unique_by=lambda t: (t[0], t[1]))


@settings(max_examples=int(os.environ.get("ASTROCAL_LAYOUTS", 40)), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(placements=_placements, naming=st.sampled_from(["relative", "absolute", "symlink"]))
def test_every_light_has_exactly_one_output_and_reruns_write_nothing(night, tmp_path_factory, monkeypatch,
                                                                     placements, naming):
    sim_root, calibration, lights = night
    base = tmp_path_factory.mktemp("layout")
    session = base / "My Night [2024]"
    inputs = _lay_out(sim_root, calibration, lights, session, placements)
    LAYOUTS.append({"placements": placements, "naming": naming})
    monkeypatch.chdir(base)
    if naming == "relative":
        given_path = Path("My Night [2024]")
    elif naming == "absolute":
        given_path = session
    else:
        link = base / "link to night"
        link.symlink_to(session, target_is_directory=True)
        given_path = link
    before = _tree_hashes(session)

    stems = {}
    for p in inputs:
        stems.setdefault((p.parent, p.stem), []).append(p)
    clashes = [ps for ps in stems.values() if len(ps) > 1]
    LAYOUTS[-1]["collision"] = bool(clashes)
    if clashes:  # 'Light_001.fits' beside 'Light_001.fts': refused before anything is written
        with pytest.raises(OutputCollisionError) as err:
            calibrate_session(given_path)
        assert all(p.name in str(err.value) for p in clashes[0])
        assert _tree_hashes(session) == before
        return

    first = calibrate_session(given_path)
    # exactly one output per light, each its own, each naming its own input
    assert len(first.lights) == len(inputs)
    assert sorted(os.path.realpath(l.source) for l in first.lights) == sorted(os.path.realpath(p) for p in inputs)
    outputs = [Path(l.output) for l in first.lights]
    assert len({os.path.realpath(o) for o in outputs}) == len(outputs)
    for record in first.lights:
        relative = Path(os.path.realpath(record.source)).relative_to(os.path.realpath(session))
        output = Path(os.path.realpath(record.output))
        assert output == Path(os.path.realpath(session)) / "calibrated" / relative.parent / (
            relative.stem + "_calibrated.fits")
        header = fits.getheader(output)
        assert path_from_header(header["SRCFILE"]) == relative.as_posix()
        assert header["SRCSHA"] == hashlib.sha256(Path(record.source).read_bytes()).hexdigest()
    made = _tree_hashes(session)

    second = calibrate_session(given_path)
    assert second.written == []
    assert all(l.reused for l in second.lights) and all(m.reused for m in second.masters)
    assert len(second.lights) == len(inputs)
    assert "nothing written" in second.summary()

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["calibrate", str(given_path)])
    assert code == 0, out.getvalue()
    assert "nothing written" in out.getvalue()

    after = _tree_hashes(session)
    assert after == made  # the second run and the CLI wrote nothing
    assert {k: v for k, v in after.items() if k in before} == before  # inputs byte-identical


def test_layouts_were_generated():
    # Runs after the property test in file order; the count goes into the closing note.
    n_lights = sum(len(layout["placements"]) for layout in LAYOUTS if not layout.get("collision"))
    print(f"generated layouts: {len(LAYOUTS)}, {sum(bool(l.get('collision')) for l in LAYOUTS)} of them with "
          f"clashing names (refused); {n_lights} lights calibrated in the others; namings: "
          + ", ".join(f"{n} {sum(l['naming'] == n for l in LAYOUTS)}" for n in ("relative", "absolute", "symlink")))
    if LAYOUTS:
        assert len(LAYOUTS) >= 10


def test_targets_with_the_same_file_names_from_a_relative_path(night, tmp_path, monkeypatch):
    """The reported case: M31/Light_001.fits and M33/Light_001.fits, the folder given relatively."""
    sim_root, calibration, lights = night
    session = tmp_path / "night"
    inputs = _lay_out(sim_root, calibration, lights, session,
                      [(t, f"Light_00{i}.fits", i) for t in ("M31", "M33") for i in (1, 2)])
    monkeypatch.chdir(tmp_path)
    relative = calibrate_session("night")
    assert len(relative.lights) == 4 and len({l.output for l in relative.lights}) == 4
    assert sorted(Path(l.output).relative_to(session / "calibrated").as_posix() for l in relative.lights) == [
        "M31/Light_001_calibrated.fits", "M31/Light_002_calibrated.fits",
        "M33/Light_001_calibrated.fits", "M33/Light_002_calibrated.fits"]
    absolute = calibrate_session(session)
    assert absolute.written == [] and [l.output for l in absolute.lights] == [l.output for l in relative.lights]
    assert len(inputs) == 4


def test_changed_inputs_make_outputs_stale_not_reused(night, tmp_path):
    sim_root, calibration, lights = night
    session = tmp_path / "night"
    inputs = _lay_out(sim_root, calibration, lights, session, [("M31", "Light_001.fits", 0),
                                                               ("M31", "Light_002.fits", 1)])
    calibrate_session(session)
    made = _tree_hashes(session / "calibrated")
    # a light changed after calibration (re-saved by another program)
    with fits.open(inputs[0], mode="update") as hdul:
        hdul[0].header["OBSERVER"] = "someone"
    with pytest.raises(StaleOutputError) as err:
        calibrate_session(session)
    assert "Light_001_calibrated.fits" in str(err.value) and "changed" in str(err.value)
    assert "Light_002" not in str(err.value)
    assert _tree_hashes(session / "calibrated") == made  # refused before writing anything
    rebuilt = calibrate_session(session, overwrite=True)
    assert len(rebuilt.written) > 0 and calibrate_session(session).written == []


def test_other_options_make_outputs_stale(night, tmp_path):
    sim_root, calibration, lights = night
    session = tmp_path / "night"
    _lay_out(sim_root, calibration, lights, session, [("M31", "Light_001.fits", 0)])
    calibrate_session(session)
    with pytest.raises(StaleOutputError, match="other options"):
        calibrate_session(session, pedestal=100.0)
    rebuilt = calibrate_session(session, pedestal=100.0, overwrite=True)
    assert fits.getheader(rebuilt.lights[0].output)["PEDESTAL"] == 100.0
    assert calibrate_session(session, pedestal=100.0).written == []


def test_a_new_frame_in_a_set_makes_its_master_stale(night, tmp_path):
    sim_root, calibration, lights = night
    session = tmp_path / "night"
    _lay_out(sim_root, calibration, lights, session, [("", "Light_001.fits", 0)])
    calibrate_session(session)
    bias = sorted((session / "calibration").rglob("*BIAS*/*.fits"))
    # A copy of a bias is the same frame: a duplicate, left out and named; the master stays up to date.
    shutil.copyfile(bias[0], bias[0].with_name("bias (1).fits"))
    rerun = calibrate_session(session)
    assert rerun.written == [] and any("bias (1).fits" in w and "duplicate" in w for w in rerun.warnings)
    extra = fits.getdata(bias[1]) + np.uint16(1)  # a new frame: other pixels
    fits.writeto(bias[0].with_name("extra bias.fits"), extra, fits.getheader(bias[1]))
    with pytest.raises(StaleOutputError) as err:
        calibrate_session(session)
    assert "master_bias" in str(err.value) and "extra bias.fits" in str(err.value)


def test_the_master_library_counts_each_master_once_on_a_rerun(night, tmp_path, monkeypatch):
    sim_root, calibration, lights = night
    session = tmp_path / "night"
    _lay_out(sim_root, calibration, lights, session, [("M31", "Light_001.fits", 0)])
    monkeypatch.chdir(tmp_path)
    first = calibrate_session("night")
    second = calibrate_session("night")
    masters = sorted((session / "masters").glob("master_*.fits"))
    lib = MasterLibrary(session / "masters")
    for path in masters:  # registered again under other spellings: still one row each
        lib.add(Path("night") / "masters" / path.name)
        lib.add(path)
    assert len(lib) == len(masters) == len(first.masters)
    # the choice words ("preferred over N other compatible master(s)") are the same on the rerun
    light_set = next(k for k in first.decisions_by_set if k.startswith("light"))
    chosen = lambda result: [t for t in result.decisions_by_set[light_set] if t.startswith(("bias", "dark", "flat"))]
    assert chosen(second) == chosen(first) and len(chosen(first)) == 3
    darks = [t for t in first.decisions_by_set[light_set] if t.startswith("dark ")]
    assert darks and "preferred over 1 other compatible master(s)" in darks[0]


def test_decisions_are_grouped_by_set_without_repeats(night, tmp_path):
    sim_root, calibration, lights = night
    session = tmp_path / "night"
    _lay_out(sim_root, calibration, lights, session, [("M31", f"Light_00{i}.fits", 0) for i in range(1, 5)])
    result = calibrate_session(session)
    assert len(result.decisions) == len(set(result.decisions))
    text = result.summary()
    assert "decisions, by set:" in text
    assert str(result.masters_dir) in text and str(result.lights_dir) in text and "next:" in text
    # four lights of one set: one line per master, not four
    assert sum(line.strip().startswith("bias master_bias") for line in text.splitlines()) == 1
