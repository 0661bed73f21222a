"""The exclusion list: a plain-text file read, added to and written back atomically; frames never touched."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from astrocal_widgets.errors import AstrocalError
from astrocal_widgets.frames import (EXCLUSION_FILE, add_exclusions, exclusion_list_path, read_exclusions,
                                     remove_exclusions, scan, split_excluded, write_exclusions)
from astrocal_widgets.simulate import simulate_session


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really a frame")
    return path


def test_the_list_round_trips_with_comments_tabs_and_hashes(tmp_path):
    (tmp_path / EXCLUSION_FILE).write_text(
        "# my notes\n\nflats/L/flat 003.fits\tshadow of a cable\n  darks/dark_007.fits # light leak  \n"
        "bias/b1.fits\n", encoding="utf-8")
    listed = read_exclusions(tmp_path)
    assert listed == {"flats/L/flat 003.fits": "shadow of a cable", "darks/dark_007.fits": "light leak",
                      "bias/b1.fits": ""}
    write_exclusions(tmp_path, listed)
    assert read_exclusions(tmp_path) == listed
    text = exclusion_list_path(tmp_path).read_text(encoding="utf-8")
    assert "flats/L/flat 003.fits\tshadow of a cable\n" in text and text.startswith("#")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_add_and_remove_keep_the_frames_and_name_them_relative_to_the_night(tmp_path):
    night = tmp_path / "night"
    a, b = _touch(night / "flats" / "f1.fits"), _touch(night / "flats" / "f2.fits")
    before = {p: p.read_bytes() for p in (a, b)}
    listed = add_exclusions(night, [a], night, reason="shadow")
    assert listed == {"flats/f1.fits": "shadow"}
    listed = add_exclusions(night, {"flats/f2.fits": "cloud"}, night)  # relative to the night's folder
    assert listed == {"flats/f1.fits": "shadow", "flats/f2.fits": "cloud"}
    assert add_exclusions(night, [a], night)["flats/f1.fits"] == "shadow"  # no new reason: the old one stays
    assert remove_exclusions(night, [a], night) == {"flats/f2.fits": "cloud"}
    assert read_exclusions(night) == {"flats/f2.fits": "cloud"}
    assert {p: p.read_bytes() for p in (a, b)} == before and a.exists() and b.exists()
    remove_exclusions(night, [b], night)
    assert not exclusion_list_path(night).exists() and read_exclusions(night) == {}


def test_an_output_folder_elsewhere_holds_the_list(tmp_path):
    night, output = tmp_path / "night", tmp_path / "out"
    frame = _touch(night / "f1.fits")
    add_exclusions(output, [frame], night, reason="x")
    assert read_exclusions(output) == {"f1.fits": "x"} and not (night / EXCLUSION_FILE).exists()


def test_bad_entries_are_named(tmp_path):
    with pytest.raises(AstrocalError, match="no such frame to exclude"):
        add_exclusions(tmp_path, ["missing.fits"], tmp_path)
    (tmp_path / EXCLUSION_FILE).write_text("\t a reason without a frame\n", encoding="utf-8")
    with pytest.raises(AstrocalError, match=r"excluded.txt, line 1: names no frame"):
        read_exclusions(tmp_path)


def test_split_excluded_keeps_the_set_name_and_the_others(tmp_path):
    session = simulate_session(tmp_path / "n", shape=(16, 24), counts={"bias": 5, "dark": 0, "flat": 0,
                                                                         "darkflat": 0, "light": 0}, seed=1)
    root = tmp_path / "n"
    group = scan(root).groups("bias")[0]
    left = session.paths["bias"][3]
    smaller, out = split_excluded(group, {os.path.relpath(left, root).replace(os.sep, "/"): "light leak"}, root)
    assert len(smaller) == len(group) - 1 and str(left) not in smaller.paths
    assert (smaller.label, smaller.slug) == (group.label, group.slug)
    assert [(Path(f.path).name, f.reason) for f in out] == [(Path(left).name, "light leak")]
    assert split_excluded(group, {}, root) == (group, [])
