"""Output paths, the one-to-one plan and path encoding in headers (the pieces of a rerun-safe session)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from astropy.io import fits

from astrocal_widgets.calibrate.outputs import (OUTSIDE_FOLDER, calibrated_light_path, check_one_to_one,
                                                session_relative_path)
from astrocal_widgets.errors import OutputCollisionError
from astrocal_widgets.io.provenance import content_hash, header_path, path_from_header


def test_relative_absolute_and_linked_folders_give_one_path(tmp_path, monkeypatch):
    night = tmp_path / "night [1]"
    light = night / "M31" / "Light_001.fits"
    light.parent.mkdir(parents=True)
    light.write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(night, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    out = night / "calibrated"
    expected = out / "M31" / "Light_001_calibrated.fits"
    assert calibrated_light_path(light, "night [1]", out) == expected
    assert calibrated_light_path(light, night, out) == expected
    assert calibrated_light_path(Path("night [1]/M31/Light_001.fits"), night, out) == expected
    assert calibrated_light_path(light, link, out) == expected  # resolved on both sides
    assert calibrated_light_path(link / "M31" / "Light_001.fits", link, out) == expected
    assert session_relative_path(light, tmp_path / "elsewhere") is None


def test_a_light_outside_the_folder_gets_a_collision_proof_name(tmp_path):
    a, b = tmp_path / "a" / "Light_001.fits", tmp_path / "b" / "Light_001.fits"
    out = tmp_path / "night" / "calibrated"
    pa, pb = (calibrated_light_path(p, tmp_path / "night", out) for p in (a, b))
    assert pa != pb and pa.parent == pb.parent == out / OUTSIDE_FOLDER
    assert pa.name.startswith("Light_001-") and pa.name.endswith("_calibrated.fits")
    assert calibrated_light_path(a, tmp_path / "night", out) == pa  # stable across runs


def test_the_plan_refuses_two_inputs_for_one_output_and_names_them(tmp_path):
    out = tmp_path / "calibrated"
    plan = [(tmp_path / "Light_001.fits", out / "Light_001_calibrated.fits"),
            (tmp_path / "Light_001.fit", out / "Light_001_calibrated.fits"),
            (tmp_path / "Light_002.fits", out / "Light_002_calibrated.fits")]
    with pytest.raises(OutputCollisionError) as err:
        check_one_to_one(plan)
    assert "Light_001.fits" in str(err.value) and "Light_001.fit," in str(err.value)
    assert "Light_002" not in str(err.value)
    check_one_to_one(plan[::2])  # one-to-one: fine
    # the same input named twice (relative and absolute) is not a clash
    check_one_to_one([(tmp_path / "x.fits", out / "x.fits"), (tmp_path / "." / "x.fits", out / "x.fits")])


@pytest.mark.parametrize("name", ["M31/Light 001.fits", "NGC 7000 [Ha]/l (1).fits", "Nébuleuse du Cœur/Ωmega.fit",
                                  "100%/a.fits"])
def test_paths_survive_a_fits_header(tmp_path, name):
    value = header_path(name)
    assert value.isascii()
    header = fits.Header()
    header["SRCFILE"] = value
    path = tmp_path / "h.fits"
    fits.PrimaryHDU(header=header).writeto(path)
    assert path_from_header(fits.getheader(path)["SRCFILE"]) == name


def test_content_hash_follows_the_content(tmp_path):
    p = tmp_path / "f.fits"
    p.write_bytes(b"one")
    first = content_hash(p)
    assert first == content_hash(str(p)) and len(first) == 64
    p.write_bytes(b"two")
    os.utime(p, ns=(1, 1))  # even with a reset time stamp the size/time key changes here
    assert content_hash(p) != first
