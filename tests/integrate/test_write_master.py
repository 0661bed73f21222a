"""``write_master``: FITS layout, provenance keywords, SOURCES table and atomic writing.

Expected keyword values are read from the input frames' own headers with astropy (not from the
attrs the code computed), and the pixel data are compared with the computed dataset.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.errors import OutputExistsError
from astrocal_widgets.integrate import IntegrationWarning, integrate, write_master
from astrocal_widgets.io import READ_STATISTICS

SHAPE = (64, 96)
N = 8


def _frames(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.fits"))


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """Simulated bias, dark and flat stacks (FITS, NINA style)."""
    out = {}
    for kind in ("bias", "dark", "flat"):
        root = tmp_path_factory.mktemp(kind)
        aw.simulate_stack(root, kind, N, shape=SHAPE, seed=1)
        out[kind] = root
    return out


def _integrate(root, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        return integrate(aw.open_frames(root), **kw)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind, imagetyp, normalization", [
    ("bias", "MASTER BIAS", "none"), ("dark", "MASTER DARK", "none"), ("flat", "MASTER FLAT", "multiplicative"),
])
def test_header_keys_match_the_frames(stacks, tmp_path, kind, imagetyp, normalization):
    ds = _integrate(stacks[kind], normalization=normalization)
    out = write_master(ds, tmp_path / f"master_{kind}.fits")
    assert out == tmp_path / f"master_{kind}.fits"
    frame_headers = [fits.getheader(p) for p in _frames(stacks[kind])]
    h = fits.getheader(out)
    assert h["IMAGETYP"] == imagetyp
    assert h["NCOMBINE"] == N and h["STACKCNT"] == N
    # the group's matching keys, as the frames state them
    for key in ("EXPTIME", "GAIN", "OFFSET", "XBINNING", "YBINNING", "SET-TEMP"):
        values = {fh[key] for fh in frame_headers}
        assert len(values) == 1, key
        assert h[key] == values.pop(), key
    temps = [fh["CCD-TEMP"] for fh in frame_headers]
    assert h["CCD-TEMP"] == pytest.approx(np.median(temps))
    assert h["TEMPMIN"] == pytest.approx(min(temps)) and h["TEMPMAX"] == pytest.approx(max(temps))
    assert h["INSTRUME"] == frame_headers[0]["INSTRUME"]
    if kind == "flat":
        assert h["FILTER"] == frame_headers[0]["FILTER"].strip()
    else:
        assert "FILTER" not in h
    assert h["DATE-OBS"].startswith(min(fh["DATE-OBS"] for fh in frame_headers)[:19])
    # algorithm and parameters: 8 frames -> averaged sigma by the auto rule (PixInsight users' frame-count rule)
    assert h["REJECT"] == "averaged_sigma" and h["REJCODE"] == "avsigclip"
    assert (h["REJLOW"], h["REJHIGH"]) == (3.0, 3.0)
    assert h["COMBINE"] == "average"
    assert h["NORMALIZ"] == normalization and h["REJNORM"] == normalization
    assert h["WEIGHTS"] == "none"
    history = "\n".join(h["HISTORY"])
    assert "auto: 8 frames" in history and "averaged_sigma" in history
    assert f"normalization={normalization}" in history and "max(3, ceil(n/2))" in history
    for p in _frames(stacks[kind]):
        assert p.name in history  # the source list
    assert h["CREATOR"].startswith("astrocal-widgets")


def test_extensions_hold_master_and_rejection_maps(stacks, tmp_path):
    ds = _integrate(stacks["dark"])  # averaged sigma: catches the cosmic rays of 300 s darks
    out = write_master(ds, tmp_path / "master_dark.fits")
    computed = ds.compute()
    with fits.open(out) as hdul:
        names = [hdu.name for hdu in hdul]
        assert names == ["PRIMARY", "REJ_LOW", "REJ_HIGH", "CONTRIB", "SOURCES"]
        assert hdul[0].header["BITPIX"] == -32
        np.testing.assert_array_equal(hdul[0].data, computed.master.values)
        for name, var in (("REJ_LOW", "rejected_low"), ("REJ_HIGH", "rejected_high"), ("CONTRIB", "contributing")):
            assert isinstance(hdul[name], fits.ImageHDU)
            assert hdul[name].header["BITPIX"] == 8  # counts of up to 255 frames: one byte each
            np.testing.assert_array_equal(hdul[name].data, computed[var].values)
        # no NaN in the frames: kept + rejected = N everywhere, and the fractions follow
        total = hdul["CONTRIB"].data.astype(int) + hdul["REJ_LOW"].data + hdul["REJ_HIGH"].data
        assert (total == N).all()
        h = hdul[0].header
        assert h["REJFRACL"] == pytest.approx(hdul["REJ_LOW"].data.sum() / (N * SHAPE[0] * SHAPE[1]))
        assert h["REJFRACH"] == pytest.approx(hdul["REJ_HIGH"].data.sum() / (N * SHAPE[0] * SHAPE[1]))
        assert hdul["REJ_HIGH"].data.sum() > 0  # the simulated darks have cosmic rays


def test_counts_of_more_than_255_frames_keep_16_bits(tmp_path):
    n = 300
    cube = np.random.default_rng(3).normal(100.0, 5.0, (n, 6, 7)).astype(np.float32)
    cube[:, 0, 0] = 7.0  # one pixel where every frame is equal: all n kept
    ds = integrate(cube, rejection="sigma", low=3.0, high=3.0)
    out = write_master(ds, tmp_path / "master_many.fits")
    with fits.open(out) as hdul:
        assert hdul["CONTRIB"].data.dtype == np.uint16
        assert hdul["CONTRIB"].data[0, 0] == n
        np.testing.assert_array_equal(hdul["CONTRIB"].data, ds["contributing"].values)


def test_sources_table(stacks, tmp_path):
    ds = _integrate(stacks["flat"], normalization="multiplicative", weights=np.arange(1, N + 1))
    out = write_master(ds, tmp_path / "master_flat.fits")
    with fits.open(out) as hdul:
        table = hdul["SOURCES"].data
        assert [str(p) for p in table["PATH"]] == [str(p) for p in _frames(stacks["flat"])]
        # locations: each flat's median (small frames: the subsample is the whole frame)
        medians = [np.median(fits.getdata(p).astype(np.float64)) for p in _frames(stacks["flat"])]
        np.testing.assert_allclose(table["LOCATION"], medians, rtol=1e-6)
        assert (table["SCALE"] > 0).all()
        np.testing.assert_allclose(table["WEIGHT"], np.arange(1, N + 1) / N)


def test_bias_sources_have_no_location_when_not_normalised(stacks, tmp_path):
    out = write_master(_integrate(stacks["bias"]), tmp_path / "m.fits")
    table = fits.getdata(out, "SOURCES")
    assert np.isnan(table["LOCATION"]).all() and (table["WEIGHT"] == 1).all()


def test_refuses_to_overwrite_and_leaves_the_file_untouched(stacks, tmp_path):
    target = tmp_path / "master.fits"
    write_master(_integrate(stacks["bias"]), target)
    before, mtime = _sha(target), target.stat().st_mtime_ns
    ds = _integrate(stacks["bias"], combine="median")
    READ_STATISTICS.reset()
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_master(ds, target)
    assert READ_STATISTICS.calls == 0  # refused before computing anything
    assert _sha(target) == before and target.stat().st_mtime_ns == mtime
    assert sorted(os.listdir(tmp_path)) == ["master.fits"]
    # asked to, it replaces the file
    write_master(ds, target, overwrite=True)
    assert fits.getheader(target)["COMBINE"] == "median"
    assert sorted(os.listdir(tmp_path)) == ["master.fits"]


def test_failed_write_leaves_no_partial_or_temporary_file(stacks, tmp_path, monkeypatch):
    ds = _integrate(stacks["bias"])
    target = tmp_path / "master.fits"

    def broken_writeto(self, name, *args, **kwargs):
        Path(name).write_bytes(b"SIMPLE  =                    T" + b" " * 100)  # half a file...
        raise OSError("disk full")                                                # ...then failure

    monkeypatch.setattr(fits.HDUList, "writeto", broken_writeto)
    with pytest.raises(OSError, match="disk full"):
        write_master(ds, target)
    assert os.listdir(tmp_path) == []
    # an existing master survives a failed overwrite
    monkeypatch.undo()
    write_master(ds, target)
    before = _sha(target)
    monkeypatch.setattr(fits.HDUList, "writeto", broken_writeto)
    with pytest.raises(OSError, match="disk full"):
        write_master(ds, target, overwrite=True)
    assert _sha(target) == before and os.listdir(tmp_path) == ["master.fits"]


def test_lazy_and_computed_datasets_write_the_same_master(stacks, tmp_path):
    ds = _integrate(stacks["dark"])
    a = write_master(ds, tmp_path / "lazy.fits")
    b = write_master(ds.compute(), tmp_path / "computed.fits")
    for ext in (0, "REJ_LOW", "REJ_HIGH", "CONTRIB"):
        np.testing.assert_array_equal(fits.getdata(a, ext), fits.getdata(b, ext))


def test_in_memory_stack_without_sources(tmp_path):
    cube = np.random.default_rng(0).normal(100, 3, (5, 6, 7)).astype(np.float32)
    out = write_master(integrate(cube, rejection="sigma"), tmp_path / "m.fits")
    with fits.open(out) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "REJ_LOW", "REJ_HIGH", "CONTRIB"]
        h = hdul[0].header
        assert h["IMAGETYP"] == "MASTER" and h["NCOMBINE"] == 5 and h["REJECT"] == "sigma"
        assert "EXPTIME" not in h and "CCD-TEMP" not in h


def test_non_ascii_paths_and_values(tmp_path):
    folder = tmp_path / "Nébuleuse d'Orion"
    aw.simulate_stack(folder, "bias", 3, shape=(16, 16), seed=2)
    first = _frames(folder)[0]
    first.rename(first.with_name("bias_été_0001.fits"))
    frames = _frames(folder)
    out = write_master(_integrate(folder, rejection="none"), tmp_path / "master_bias.fits")
    with fits.open(out) as hdul:
        # the table keeps the exact paths (UTF-8), the header an ASCII-escaped name
        paths = [p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in hdul["SOURCES"].data["PATH"]]
        assert paths == [str(p) for p in frames]
        assert hdul[0].header["NCOMBINE"] == 3
        assert any("bias_" in line and "0001.fits" in line for line in hdul[0].header["HISTORY"])
    # a filter named with a Greek letter
    cube = xr.DataArray(np.ones((3, 4, 5), np.float32), dims=("frame", "y", "x"),
                        coords={"frame_type": ("frame", ["flat"] * 3), "filter": ("frame", ["Hα"] * 3)})
    out = write_master(integrate(cube, rejection="none"), tmp_path / "master_flat.fits")
    h = fits.getheader(out)
    assert h["IMAGETYP"] == "MASTER FLAT" and h["FILTER"].startswith("H") and h["FILTER"].isascii()
