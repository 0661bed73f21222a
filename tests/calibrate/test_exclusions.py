"""calibrate_session and astrocal calibrate honour the exclusion list: the frame is left out, named in the
master's provenance and in the report, never touched; a master made before the exclusion is refused as stale."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from astropy.io import fits

from astrocal_widgets import cli
from astrocal_widgets.calibrate import calibrate_session
from astrocal_widgets.errors import StaleOutputError
from astrocal_widgets.frames import add_exclusions, read_exclusions, scan
from astrocal_widgets.io.provenance import read_provenance
from astrocal_widgets.simulate import simulate_session

COUNTS = {"bias": 5, "dark": 0, "flat": 5, "darkflat": 5, "light": 1}


@pytest.fixture
def night(tmp_path):
    root = tmp_path / "night"
    session = simulate_session(root, shape=(32, 48), counts=COUNTS, seed=4)
    return root, session


def _hashes(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def _flat_master(result, flat: str):
    label = next(g.label for g in scan(result.directory).groups("flat") if flat in g.paths)
    return next(m for m in result.masters if m.label == label), label


def test_an_excluded_flat_is_left_out_named_and_untouched(night):
    root, session = night
    flat = str(session.paths["flat"][2])
    inputs = _hashes(p for kind in session.paths.values() for p in kind)
    add_exclusions(root, {flat: "shadow of a cable"}, root)
    result = calibrate_session(root, cosmetic=False)
    master, label = _flat_master(result, flat)
    n_set = len(next(g for g in scan(root).groups("flat") if g.label == label))
    assert master.n_frames == n_set - 1
    record = read_provenance(master.path)
    assert flat not in [f.name for f in record.files("frame")]
    assert [(f.name, f.reason) for f in record.files("excluded")] == [(flat, "shadow of a cable")]
    header = fits.getheader(master.path)
    assert header["EXCL1"] == flat and header["EXCR1"] == "shadow of a cable"
    # every input accounted for: in the report, with its reason
    assert [(f.path, f.reason) for f in result.excluded[label]] == [(flat, "shadow of a cable")]
    summary = result.summary()
    assert "excluded (1)" in summary and f"{Path(flat).name}: shadow of a cable" in summary
    assert _hashes(inputs) == inputs  # never moved, renamed or changed
    # other masters record no exclusion
    bias = next(m for m in result.masters if m.frame_type == "bias")
    assert "EXCL1" not in fits.getheader(bias.path)


def test_a_master_made_before_an_exclusion_is_refused_then_rebuilt_on_request(night):
    root, session = night
    first = calibrate_session(root, cosmetic=False)
    bias = str(session.paths["bias"][1])
    add_exclusions(root, [bias], root, reason="light leak")
    with pytest.raises(StaleOutputError) as err:
        calibrate_session(root, cosmetic=False)
    text = str(err.value)
    assert "master_bias" in text and "the exclusion list leaves out" in text and Path(bias).name in text
    rebuilt = calibrate_session(root, cosmetic=False, overwrite=True)
    made = next(m for m in rebuilt.masters if m.frame_type == "bias")
    assert made.n_frames == COUNTS["bias"] - 1 and not made.reused
    assert [f.name for f in read_provenance(made.path).files("excluded")] == [bias]
    assert calibrate_session(root, cosmetic=False).written == []  # the rebuilt master is up to date
    assert len(first.masters) == len(rebuilt.masters)


def test_a_listed_frame_in_no_set_is_a_warning(night):
    root, _ = night
    (root / "excluded.txt").write_text("nowhere/missing.fits\ttypo\n", encoding="utf-8")
    result = calibrate_session(root, cosmetic=False)
    assert any("nowhere/missing.fits is in no set" in w for w in result.warnings)


def test_the_cli_adds_to_the_list_and_honours_it(night, tmp_path, capsys, monkeypatch):
    root, session = night
    output = tmp_path / "out"
    flat = Path(session.paths["flat"][0])
    bias = Path(session.paths["bias"][0])
    monkeypatch.chdir(root)  # FILE as typed from the current folder ...
    code = cli.main(["calibrate", str(root), "-o", str(output), "--no-cosmetic",
                     "--exclude", str(flat.relative_to(root)), "shadow",
                     "--exclude", str(bias)])
    assert code == 0
    listed = read_exclusions(output)
    assert listed == {flat.relative_to(root).as_posix(): "shadow", bias.relative_to(root).as_posix(): ""}
    out = capsys.readouterr().out
    assert "excluded (2)" in out and f"{flat.name}: shadow" in out and f"{bias.name}: no reason given" in out
    masters = {Path(p).name: p for p in (output / "masters").glob("master_*.fits")}
    bias_master = next(p for n, p in masters.items() if n.startswith("master_bias"))
    assert fits.getheader(bias_master)["NCOMBINE"] == COUNTS["bias"] - 1
    assert fits.getheader(bias_master)["EXCL1"] == str(bias)
    # ... and a rerun without --exclude reads the list: nothing stale, nothing written
    assert cli.main(["calibrate", str(root), "-o", str(output), "--no-cosmetic"]) == 0
    assert "nothing written" in capsys.readouterr().out


def test_the_cli_names_a_frame_that_is_not_there(night, capsys):
    root, _ = night
    assert cli.main(["calibrate", str(root), "--exclude", "no/such.fits"]) != 0
    assert "no such frame to exclude" in capsys.readouterr().err
