"""Provenance written by one mechanism and read back, for every product the pipeline writes.

A small simulated night (a colour camera with an overscan strip) is calibrated with options that
differ from the defaults; every master (bias, dark, dark flat, flat), every calibrated light and
every defect map is then read back with :func:`~astrocal_widgets.io.provenance.read_provenance`:
each provenance field must be there and right -- the input files' hashes recomputed from their
bytes, their recorded names resolving to the files used, the decisions equal to the options passed.
The pipeline writes no calibrated flat files (flats are calibrated lazily as they are integrated):
their provenance is the master flat's ``CALMASn``/``CALSHAn``, checked here.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astrocal_widgets._version import __version__
from astrocal_widgets.calibrate import MASTER_OPTIONS, MasterLibrary, calibrate_session
from astrocal_widgets.errors import AstrocalError
from astrocal_widgets.frames import scan
from astrocal_widgets.io.provenance import (FIELDS, FILE_KEYWORDS, InputFile, ProductRecord, inputs_hash,
                                            provenance_cards, provenance_from_header, read_provenance, sources_table,
                                            trace_provenance, write_provenance)
from astrocal_widgets.simulate import simulate_session
from astrocal_widgets.workflow import integrate_master, save_master

COUNTS = {"bias": 5, "dark": 5, "flat": 5, "darkflat": 5, "light": 2}
OPTIONS = dict(dark_optimization=True, k_hot=4.0, k_cold=6.0, pedestal=100.0, rejection="winsorized_sigma",
               rejection_thresholds=(2.5, 3.5))
MASTER_TYPES = {"bias": "MASTER BIAS", "dark": "MASTER DARK", "darkflat": "MASTER DARKFLAT", "flat": "MASTER FLAT"}


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("provenance") / "night"
    simulate_session(root, camera="osc", shape=(32, 48), counts=COUNTS, seed=11, overscan=8)
    result = calibrate_session(root, **OPTIONS)
    return root, result


def _group_paths(result) -> dict[str, list[str]]:
    return {g.label: [str(p) for p in g.paths] for g in result.catalog.groups()}


@pytest.mark.parametrize("kind", ["bias", "dark", "darkflat", "flat"])
def test_master_round_trip(night, kind):
    root, result = night
    masters = [m for m in result.masters if m.frame_type == kind]
    assert masters
    paths_of = _group_paths(result)
    for master in masters:
        record = read_provenance(master.path, verify=True)
        assert record.product == "master" and record.image_type == MASTER_TYPES[kind]
        assert record.path == master.path
        # the input frames: full paths resolving to the set's files, hashes of their bytes
        frames = record.files("frame")
        assert [f.name for f in frames] == paths_of[master.label]
        for f in frames:
            assert f.path == f.name and Path(f.path).is_file()
            assert f.sha256 == sha256(f.path) and f.intact is True
            assert f.weight == 1.0
            # statistics are estimated only where a normalisation needs them (flats)
            assert (f.location is not None and f.scale is not None) == (kind == "flat")
        assert record.inputs_hash == hashlib.sha256(
            "\n".join(sorted(sha256(f.name) for f in frames)).encode()).hexdigest()
        # the decisions: the options passed, the standard ones of the master's type, the software
        d = record.decisions
        standard = MASTER_OPTIONS[kind]
        assert (d["combine"], d["rejection"], d["low"], d["high"]) == ("average", "winsorized_sigma", 2.5, 3.5)
        assert d["rejection_code"] == "winsorized"
        assert d["normalization"] == standard["normalization"]
        assert d["rejection_normalization"] == standard.get("rejection_normalization", "none")
        assert d["weights"] == "none" and d["estimator"]
        assert d["overscan"].startswith("median of [49:56,1:32] per row") and d["trim"] == "[1:48,1:32]"
        assert 0 <= d["rejected_fraction_low"] < 1 and 0 <= d["rejected_fraction_high"] < 1
        assert record.software == f"astrocal-widgets {__version__}"
        assert any("winsorized_sigma" in line for line in record.history)
        # what calibrated the frames: a flat's dark flat (or bias), nothing for the others
        used = record.files("calibration")
        if kind != "flat":
            assert used == []
            continue
        assert master.calibrated_with and [f.name for f in used] == [Path(p).name for p in master.calibrated_with]
        for f, expected in zip(used, master.calibrated_with):
            assert f.path == expected and f.sha256 == sha256(expected) and f.intact is True


def test_master_flat_traces_to_its_dark_flat_and_their_frames(night):
    root, result = night
    paths_of = _group_paths(result)
    darkflats = {m.path: m for m in result.masters if m.frame_type == "darkflat"}
    for master in (m for m in result.masters if m.frame_type == "flat"):
        traced = trace_provenance(master.path)
        (used,) = traced.files("calibration")
        assert used.record is not None and used.record.image_type == "MASTER DARKFLAT"  # a dark flat, not the bias
        assert used.path in darkflats
        frames = used.record.files("frame")
        assert [f.name for f in frames] == paths_of[darkflats[used.path].label]
        assert all(f.intact for f in frames)


def test_calibrated_light_round_trip(night):
    root, result = night
    assert result.lights
    for light in result.lights:
        record = read_provenance(light.output, verify=True)
        assert record.product == "calibrated light"
        source = record.file("light")
        assert source.name == Path(light.source).relative_to(root).as_posix()
        assert source.path == light.source and source.sha256 == sha256(light.source) and source.intact
        for role, used in (("bias", light.bias), ("dark", light.dark), ("flat", light.flat)):
            f = record.file(role)
            assert used is not None and f.name == Path(used).name
            assert f.path == used and f.sha256 == sha256(used) and f.intact is True
        d = record.decisions
        assert d["calibration_status"] == "BDF"
        assert d["dark_scale"] == pytest.approx(light.dark_scale) and d["dark_scale_method"] == "optimised"
        assert d["pedestal"] == 100.0 and d["defects_corrected"] == light.defects_corrected > 0
        assert d["overscan"].startswith("median of [49:56,1:32]") and d["trim"] == "[1:48,1:32]"
        assert record.options() == {"allow_dark_scaling": "True", "cosmetic": "True", "dark_optimization": "True",
                                    "k_hot": "4", "k_cold": "6", "pedestal": "100", "overscan": "auto"}
        assert record.software == f"astrocal-widgets {__version__}"


def test_light_traces_to_its_masters_and_their_inputs(night):
    root, result = night
    light = result.lights[0]
    traced = trace_provenance(light.output)
    flat = traced.file("flat").record
    assert flat.image_type == "MASTER FLAT" and flat.path == light.flat
    darkflat = flat.files("calibration")[0].record
    assert darkflat.image_type == "MASTER DARKFLAT" and all(f.intact for f in darkflat.files("frame"))
    assert traced.file("dark").record.image_type == "MASTER DARK"
    assert traced.file("bias").record.image_type == "MASTER BIAS"


def test_defect_map_round_trip(night):
    root, result = night
    assert result.defect_maps
    pairs = {(Path(l.dark).name, Path(l.flat).name): l for l in result.lights}
    for path in result.defect_maps:
        record = read_provenance(path, verify=True)
        assert record.product == "defect map" and record.image_type == "DEFECT MAP"
        data = fits.getdata(path)
        d = record.decisions
        assert d["hot_pixels"] == int(np.count_nonzero(data & 1))
        assert d["cold_pixels"] == int(np.count_nonzero(data & 2))
        assert (d["k_hot"], d["k_cold"]) == (4.0, 6.0)
        light = pairs[(record.file("dark").name, record.file("flat").name)]
        for role, used in (("dark", light.dark), ("flat", light.flat)):
            f = record.file(role)
            assert f.path == used and f.sha256 == sha256(used) and f.intact is True


def test_dashboard_master_flat_records_its_dark_flat(night, tmp_path):
    """The dashboard's save_master writes the flat's calibration masters as the session does."""
    root, result = night
    flats = next(g for g in scan(root).groups() if g.frame_type == "flat")
    made = integrate_master(flats, library=MasterLibrary(result.masters_dir))
    written = save_master(made, tmp_path / "flat.fits")
    record = read_provenance(written, verify=True)
    used = record.files("calibration")
    assert [f.name for f in used] == [Path(p).name for p in made.flat_calibration.masters] and used
    assert all(f.sha256 == sha256(p) for f, p in zip(used, made.flat_calibration.masters))


def test_a_changed_input_is_seen(night, tmp_path):
    """A frame whose bytes are not those recorded is found but not intact (its recorded hash changed here)."""
    root, result = night
    master = next(m for m in result.masters if m.frame_type == "bias")
    fake = tmp_path / "master.fits"
    with fits.open(master.path) as hdul:
        hdul["SOURCES"].data["SHA256"][0] = ("0" * 64).encode()
        hdul.writeto(fake)
    frames = read_provenance(fake, verify=True).files("frame")
    assert frames[0].path is not None and frames[0].intact is False
    assert all(f.intact for f in frames[1:])


# The mechanism on its own: every field of every product written and read back.

def _full_records() -> list[ProductRecord]:
    h = "ab" * 32
    master = ProductRecord(
        "master", {"combine": "average", "rejection": "sigma", "rejection_code": "sigma", "low": 3.0, "high": 2.5,
                   "normalization": "multiplicative", "rejection_normalization": "equalize_fluxes",
                   "weights": "noise", "estimator": "median", "software": "astrocal-widgets 9", "overscan": "mean of x",
                   "trim": "[1:4,1:4]", "rejected_fraction_low": 0.01, "rejected_fraction_high": 0.02},
        (InputFile("frame", "/night/Flat 1 é.fits", h, 100.0, 5.0, 1.0),
         InputFile("frame", "/night/f2.fits", "cd" * 32, 101.0, 5.5, 0.5),
         InputFile("calibration", "master_darkflat é%.fits", "ef" * 32),
         InputFile("excluded", "/night/Flat 3 é.fits", reason="shadow of a cable"),
         InputFile("excluded", "/night/f4.fits", reason="")),
        ("made",))
    light = ProductRecord(
        "calibrated light", {"overscan": "median of y", "trim": "[1:4,1:4]", "calibration_status": "BF",
                             "dark_scale": 1.0, "dark_scale_method": "none", "pedestal": 10.0,
                             "defects_corrected": 3, "options": "cosmetic=True k_hot=5"},
        (InputFile("light", "sub folder/ligh t é.fits", h), InputFile("bias", "master_bias.fits", "12" * 32),
         InputFile("flat", "master_flat.fits", "34" * 32)),
        ("calibrated",))
    defects = ProductRecord("defect map", {"image_type": "DEFECT MAP", "hot_pixels": 4, "cold_pixels": 1,
                                           "k_hot": 5.0, "k_cold": 4.0},
                            (InputFile("dark", "master_dark.fits", h),))
    return [master, light, defects]


@pytest.mark.parametrize("record", _full_records(), ids=lambda r: r.product)
def test_every_field_round_trips(record, tmp_path):
    header = fits.Header()
    write_provenance(header, record)
    hdus = [fits.PrimaryHDU(np.zeros((2, 2), np.float32), header=header)]
    if sources_table(record) is not None:
        hdus.append(sources_table(record))
    fits.HDUList(hdus).writeto(tmp_path / "product.fits")
    with fits.open(tmp_path / "product.fits") as hdul:
        back = provenance_from_header(hdul[0].header, sources=hdul["SOURCES"].data if len(hdul) > 1 else None)
    assert back.product == record.product
    for name, value in record.decisions.items():
        assert back.decisions[name] == value, name
    assert [(f.role, f.name, f.sha256, f.location, f.scale, f.weight) for f in back.inputs if f.role == "frame"] == \
        [(f.role, f.name, f.sha256, f.location, f.scale, f.weight) for f in record.inputs if f.role == "frame"]
    others = sorted((f.role, f.name, f.sha256) for f in back.inputs if f.role != "frame")
    assert others == sorted((f.role, f.name, f.sha256) for f in record.inputs if f.role != "frame")
    assert all(line in "".join(back.history) for line in record.history)
    assert [(f.name, f.reason) for f in back.files("excluded")] == \
        [(f.name, f.reason) for f in record.files("excluded")]
    if record.product == "master":
        assert back.inputs_hash == inputs_hash(f.sha256 for f in record.files("frame"))


def test_one_definition_of_each_keyword():
    cards = [c for r in _full_records() for c in provenance_cards(r) if c[0] != "HISTORY"]
    keywords = [k for k, _, _ in cards]
    assert all(len(k) <= 8 for k in keywords)
    known = {k for k, _ in FIELDS.values()} | {k for pair in FILE_KEYWORDS.values() for k in pair} | {"INPHASH"}
    assert {k.rstrip("0123456789") for k in keywords} <= known | {"CALMAS", "CALSHA", "EXCL", "EXCR"}
    assert len({k for k, _ in FIELDS.values()}) == len(FIELDS)


def test_a_header_written_by_the_previous_version_reads(tmp_path):
    """Cards as the version before this mechanism wrote them (copied from a master flat and a light)."""
    flat = fits.Header.fromstring("\n".join([
        "IMAGETYP= 'MASTER FLAT'        / integrated master frame",
        "COMBINE = 'average '           / combination of kept values",
        "REJECT  = 'percentile'         / pixel rejection algorithm",
        "REJCODE = 'percentile'         / Siril/IRAF name",
        "REJLOW  =                  0.2 / low rejection threshold",
        "REJHIGH =                  0.1 / high rejection threshold",
        "NORMALIZ= 'multiplicative'     / output normalisation",
        "REJNORM = 'equalize_fluxes'    / rejection normalisation",
        "WEIGHTS = 'none    '           / frame weights",
        "ESTIMATR= 'median  '           / location/scale estimator",
        "CREATOR = 'astrocal-widgets 0.1.0.dev0'",
        "REJFRACL=                  0.0 / fraction of values rejected low",
        "REJFRACH= 0.000162760416666666 / fraction of values rejected high",
        "INPHASH = '9bf5b5a2b97f4c094a8ea0d4f469193765c399c76b7841f61365de28455cb620'",
        "CALMAS1 = 'master_darkflat_1.5s_g139_o21_1x1_48x32.fits'",
        "CALSHA1 = '6b2b64785bd68b0fd219daf4c4fcbf505eae1324186603715d3c627fe6690f11'",
        "HISTORY astrocal-widgets 0.1.0.dev0 integrate: auto: 4 frames (fewer than 7 fram",
    ]), sep="\n")
    record = provenance_from_header(flat)
    assert record.product == "master" and record.decisions["rejection"] == "percentile"
    assert record.decisions["low"] == 0.2 and record.software == "astrocal-widgets 0.1.0.dev0"
    assert record.inputs_hash.startswith("9bf5b5a2")
    assert [(f.role, f.name) for f in record.inputs] == [
        ("calibration", "master_darkflat_1.5s_g139_o21_1x1_48x32.fits")]
    light = fits.Header.fromstring("\n".join([
        "IMAGETYP= 'LIGHT   '           / Type of exposure",
        "CALSTAT = 'BDF     '           / calibrated with Bias/Dark/Flat",
        "BIASFILE= 'master_bias.fits'",
        "DARKFILE= 'master_dark.fits'",
        "FLATFILE= ''",
        "DARKSCAL=   1.0141687885143549 / dark scale factor k",
        "DARKMETH= 'optimised'          / how k was chosen",
        "PEDESTAL=                  0.0 / added after calibration [ADU]",
        "NDEFECTS=                   10 / hot/cold pixels corrected",
        "SRCFILE = '2022-04-10/LIGHT/L%C3%A9_0001.fits'",
        "SRCSHA  = '30772d4eb1d196cd7e3582cf7865fcfc6afaff572e6f9f687c52b2e44fae7df8'",
        "CALOPTS = 'cosmetic=True k_hot=5'",
        "BIASSHA = 'f50bb0d2f59d7b49bb1dc743b75e3a3d4b9e5b1c6143ee7cc3907a4ebe247899'",
        "DARKSHA = '7be31326ade1962c6d92bea475ce17effd6d7752d8c34e7d3d3ca880a11b0071'",
        "HISTORY astrocal-widgets 0.1.0.dev0: L' = (L - B - k (D - B)) / (F / <F>) + pede",
    ]), sep="\n")
    record = provenance_from_header(light)
    assert record.product == "calibrated light"
    assert record.file("light").name == "2022-04-10/LIGHT/Lé_0001.fits"
    assert record.file("bias").sha256.startswith("f50bb0d2") and record.file("flat") is None
    assert record.decisions["dark_scale_method"] == "optimised"
    assert record.options() == {"cosmetic": "True", "k_hot": "5"}
    assert record.software == "astrocal-widgets 0.1.0.dev0"


def test_not_a_product_is_named(tmp_path):
    path = tmp_path / "raw.fits"
    fits.PrimaryHDU(np.zeros((2, 2), np.uint16), header=fits.Header([("IMAGETYP", "LIGHT")])).writeto(path)
    with pytest.raises(AstrocalError, match="raw.fits: not a product"):
        read_provenance(path)


def test_excluded_frames_leave_the_other_cards_as_they_were():
    """Recording exclusions adds EXCLn/EXCRn and a HISTORY line each, and changes no other card."""
    master = _full_records()[0]
    without = ProductRecord(master.product, master.decisions,
                            tuple(f for f in master.inputs if f.role != "excluded"), master.history)
    cards, plain = provenance_cards(master), provenance_cards(without)
    assert cards[:len(plain)] == plain
    added = cards[len(plain):]
    assert [k for k, _, _ in added] == ["EXCL1", "EXCR1", "HISTORY", "EXCL2", "EXCR2", "HISTORY"]
    assert added[2][1] == "excluded Flat 3 \\xe9.fits: shadow of a cable"  # HISTORY is ASCII, as source history
    assert added[5][1] == "excluded f4.fits: no reason given"
