"""open_frames: dims, dtype, coordinates, BITPIX/BZERO/BSCALE, laziness, bad input."""
import gzip
import math
import shutil
from pathlib import Path

import dask
import numpy as np
import pytest
from astropy.io import fits

import astrocal_widgets as aw
from astrocal_widgets.errors import FrameReadError, IncompatibleFramesError
from astrocal_widgets.io import READ_STATISTICS

from conftest import APT_DSLR_BIAS, MAXIM_FLAT, NINA_LIGHT, SGP_DARK, tree_hashes, write_frame


def test_cube_dims_dtype_and_coordinates_from_each_style(tmp_path, frame_data):
    styles = {"nina.fits": NINA_LIGHT, "sgp.fit": SGP_DARK, "apt.FTS": APT_DSLR_BIAS, "maxim.FIT": MAXIM_FLAT}
    for name, header in styles.items():
        write_frame(tmp_path / name, frame_data, {k: v for k, v in header.items()
                                                   if k not in ("XBINNING", "YBINNING")})
    cube = aw.open_frames(tmp_path)
    assert cube.dims == ("frame", "y", "x") and cube.dtype == np.float32
    assert cube.shape == (4, 24, 32)
    assert isinstance(cube.data, dask.array.Array)
    by_name = {Path(p).name: i for i, p in enumerate(cube["path"].values)}
    nina, sgp, apt, maxim = (by_name[n] for n in ("nina.fits", "sgp.fit", "apt.FTS", "maxim.FIT"))
    assert list(cube["frame_type"].values[[nina, sgp, apt, maxim]]) == ["light", "dark", "bias", "flat"]
    assert cube["exposure"].values[sgp] == 120.0 and cube["temperature"].values[sgp] == -15.2
    assert cube["iso"].values[apt] == 800 and math.isnan(cube["temperature"].values[apt])
    assert cube["filter"].values[maxim] == "Red" and cube["gain"].values[nina] == 139
    assert cube["bayer_pattern"].values[apt] == "RGGB"
    assert cube["date_obs"].values[nina] == np.datetime64("2022-04-10T21:03:12.123")
    assert np.isnat(cube["date_obs"].values).sum() == 0
    # Pixel values: BZERO 32768 uint16 come back exactly.
    np.testing.assert_array_equal(cube.isel(frame=nina).values, frame_data.astype(np.float32))
    # Full headers stay reachable.
    assert cube.astrocal.header(nina)["READOUTM"] == "Normal"
    assert cube.astrocal.headers[sgp]["TEMPERAT"] == -15.2


def _scaled_hdu(data, bitpix_type, bzero, bscale):
    hdu = fits.PrimaryHDU(data.copy())
    hdu.scale(bitpix_type, bzero=bzero, bscale=bscale)
    return hdu


@pytest.mark.parametrize("make", [
    pytest.param(lambda r: fits.PrimaryHDU(r.integers(0, 255, (20, 30)).astype(np.uint8)), id="8"),
    pytest.param(lambda r: fits.PrimaryHDU(r.integers(0, 65535, (20, 30)).astype(np.uint16)), id="16-bzero32768"),
    pytest.param(lambda r: fits.PrimaryHDU(r.integers(-30000, 30000, (20, 30)).astype(np.int16)), id="16-signed"),
    pytest.param(lambda r: _scaled_hdu(r.normal(1000, 50, (20, 30)), "int16", 1000.0, 0.05), id="16-bscale"),
    pytest.param(lambda r: fits.PrimaryHDU(r.integers(0, 2**32 - 1, (20, 30), dtype=np.uint64).astype(np.uint32)),
                 id="32-bzero2^31"),
    pytest.param(lambda r: fits.PrimaryHDU(r.integers(-2**31, 2**31 - 1, (20, 30)).astype(np.int32)), id="32"),
    pytest.param(lambda r: _scaled_hdu(r.normal(0, 1e4, (20, 30)), "int32", 5.0, 1e-3), id="32-bscale"),
    pytest.param(lambda r: fits.PrimaryHDU(r.normal(500, 20, (20, 30)).astype(np.float32)), id="-32"),
    pytest.param(lambda r: fits.PrimaryHDU(r.normal(500, 20, (20, 30)).astype(np.float64)), id="-64"),
])
def test_bitpix_bzero_bscale_round_trip(tmp_path, make):
    hdu = make(np.random.default_rng(3))
    path = tmp_path / "frame.fits"
    hdu.writeto(path)
    expected = fits.getdata(path).astype(np.float64)  # astropy applies BZERO/BSCALE
    cube = aw.open_frames([path], chunks=7)
    got = cube.values[0].astype(np.float64)
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-7, atol=0)


def test_blank_integer_pixels_become_nan(tmp_path):
    data = np.arange(20 * 30, dtype=np.int16).reshape(20, 30)
    data[3, 4] = -999
    hdu = fits.PrimaryHDU(data)
    hdu.header["BLANK"] = -999
    hdu.writeto(tmp_path / "b.fits")
    values = aw.open_frames([tmp_path / "b.fits"]).values[0]
    assert np.isnan(values[3, 4]) and np.isnan(values).sum() == 1


def test_image_in_first_extension_tile_compressed_and_gzip(tmp_path, frame_data):
    ext = tmp_path / "ext.fits"
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"IMAGETYP": "FLAT"})), fits.ImageHDU(frame_data)]).writeto(ext)
    comp = tmp_path / "comp.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(frame_data, header=fits.Header({"IMAGETYP": "DARK"}))]
                 ).writeto(comp)
    gz = tmp_path / "gz.fits.gz"
    fits.PrimaryHDU(frame_data, header=fits.Header({"IMAGETYP": "BIAS"})).writeto(gz)
    cube = aw.open_frames([ext, comp, gz], chunks=5)
    assert list(cube["frame_type"].values) == ["flat", "dark", "bias"]  # primary keywords reach the cube
    for i in range(3):
        np.testing.assert_array_equal(cube.values[i], frame_data.astype(np.float32))


def test_opening_200_frames_reads_no_pixels_and_a_band_reads_only_its_rows(tmp_path):
    data = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    paths = [write_frame(tmp_path / f"bias_{i:03d}.fits", data + i, {"IMAGETYP": "BIAS"}) for i in range(200)]
    READ_STATISTICS.reset()
    cube = aw.open_frames(paths, chunks={"y": 16})
    assert cube.shape == (200, 64, 48)
    assert READ_STATISTICS.calls == 0 and READ_STATISTICS.bytes == 0
    assert cube.data.chunks == ((200,), (16, 16, 16, 16), (48,))
    band = cube.isel(y=slice(16, 32)).values
    assert READ_STATISTICS.rows == 200 * 16
    assert READ_STATISTICS.bytes == 200 * 16 * 48 * 2  # 16-bit stored pixels of one band, nothing more
    np.testing.assert_array_equal(band[7], (data + 7)[16:32].astype(np.float32))
    READ_STATISTICS.reset()
    cube.mean("frame").compute()
    assert READ_STATISTICS.bytes == 200 * 64 * 48 * 2  # every byte once, none twice


def test_default_chunks_whole_frame_axis_times_bands(tmp_path):
    data = np.zeros((300, 200), np.uint16)
    paths = [write_frame(tmp_path / f"d{i}.fits", data) for i in range(3)]
    cube = aw.open_frames(paths)
    assert cube.data.chunks[0] == (3,) and cube.data.chunks[2] == (200,)
    cube2 = aw.open_frames(paths, chunks={"frame": 2, "y": 100})
    assert cube2.data.chunks == ((2, 1), (100, 100, 100), (200,))
    with pytest.raises(ValueError, match="whole rows"):
        aw.open_frames(paths, chunks={"x": 10})


def test_glob_and_list_sources(tmp_path, frame_data):
    for i in range(3):
        write_frame(tmp_path / f"a{i}.fits", frame_data)
    write_frame(tmp_path / "b.fit", frame_data)
    assert aw.open_frames(str(tmp_path / "a*.fits")).sizes["frame"] == 3
    assert aw.open_frames(tmp_path).sizes["frame"] == 4


# --- bad input ------------------------------------------------------------------------------------

def test_truncated_file_names_the_file(tmp_path, frame_data):
    path = write_frame(tmp_path / "cut.fits", frame_data)
    raw = path.read_bytes()
    path.write_bytes(raw[: 2880 + 500])
    with pytest.raises(FrameReadError, match=r"cut\.fits: truncated"):
        aw.open_frames([path])


def test_non_fits_and_empty_and_table_only(tmp_path):
    text = tmp_path / "notes.fits"
    text.write_text("this is not a FITS file\n" * 200)
    with pytest.raises(FrameReadError, match=r"notes\.fits: not a readable FITS file"):
        aw.open_frames([text])
    empty = tmp_path / "empty.fit"
    empty.write_bytes(b"")
    with pytest.raises(FrameReadError, match=r"empty\.fit: empty file"):
        aw.open_frames([empty])
    table = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]
                 ).writeto(table)
    with pytest.raises(FrameReadError, match=r"table\.fits: no image"):
        aw.open_frames([table])
    missing = tmp_path / "gone.fits"
    with pytest.raises(FrameReadError, match=r"gone\.fits: no such file"):
        aw.open_frames([missing])


def test_colour_cube_is_refused(tmp_path):
    fits.PrimaryHDU(np.zeros((3, 10, 12), np.uint16)).writeto(tmp_path / "rgb.fits")
    with pytest.raises(FrameReadError, match=r"rgb\.fits: a 3-D image"):
        aw.open_frames([tmp_path / "rgb.fits"])


def test_folder_without_frames(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(FrameReadError, match="no frame files"):
        aw.open_frames(tmp_path)
    with pytest.raises(FrameReadError, match="matches no file"):
        aw.open_frames(str(tmp_path / "*.fits"))


def test_mixed_sizes_and_binning_are_refused(tmp_path):
    a = write_frame(tmp_path / "a.fits", np.zeros((10, 12), np.uint16), {"XBINNING": 1})
    b = write_frame(tmp_path / "b.fits", np.zeros((10, 14), np.uint16), {"XBINNING": 1})
    c = write_frame(tmp_path / "c.fits", np.zeros((10, 12), np.uint16), {"XBINNING": 2})
    with pytest.raises(IncompatibleFramesError, match=r"a\.fits is 12 x 10 but .*b\.fits is 14 x 10"):
        aw.open_frames([a, b])
    with pytest.raises(IncompatibleFramesError, match=r"xbinning: .*a\.fits has 1 but .*c\.fits has 2"):
        aw.open_frames([a, c])


def test_inputs_are_never_modified(tmp_path, frame_data):
    for i in range(3):
        write_frame(tmp_path / f"f{i}.fits", frame_data + i, {"IMAGETYP": "FLAT", "FILTER": "L"})
    before = tree_hashes(tmp_path)
    cube = aw.open_frames(tmp_path)
    cube.mean("frame").compute()
    aw.scan(tmp_path).groups()[0].open().values
    assert tree_hashes(tmp_path) == before


def test_xisf_frames(tmp_path, frame_data):
    xisf = pytest.importorskip("xisf")
    path = tmp_path / "dark.xisf"
    xisf.XISF.write(str(path), frame_data[..., None], creator_app="test", image_metadata={
        "FITSKeywords": {"IMAGETYP": [{"value": "'Dark Frame'", "comment": ""}],
                         "EXPTIME": [{"value": "30.", "comment": ""}],
                         "CCD-TEMP": [{"value": "-10.5", "comment": ""}]}})
    READ_STATISTICS.reset()
    cube = aw.open_frames([path], chunks=8)
    assert cube["frame_type"].values[0] == "dark" and cube["exposure"].values[0] == 30.0
    assert cube["temperature"].values[0] == -10.5
    np.testing.assert_array_equal(cube.values[0], frame_data.astype(np.float32))
    assert READ_STATISTICS.bytes == frame_data.nbytes  # direct band reads, no whole-file decode


def test_missing_extras_give_a_clear_error(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name in ("rawpy", "xisf"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    (tmp_path / "IMG_0001.CR2").write_bytes(b"\0" * 100)
    (tmp_path / "x.xisf").write_bytes(b"\0" * 100)
    with pytest.raises(aw.MissingExtraError, match=r"rawpy.*astrocal-widgets\[raw\]"):
        aw.open_frames([tmp_path / "IMG_0001.CR2"])
    with pytest.raises(aw.MissingExtraError, match=r"xisf.*astrocal-widgets\[xisf\]"):
        aw.open_frames([tmp_path / "x.xisf"])


def _write_dng(path, mosaic, *, exposure=(1, 30), iso=800, pattern="GRBG", black=256):
    """A DNG as a DSLR converter writes it (pidng): CFA mosaic, black level, exposure, ISO, date."""
    core = pytest.importorskip("pidng.core")
    defs = pytest.importorskip("pidng.defs")
    h, w = mosaic.shape
    t = core.DNGTags()
    for tag, value in ((core.Tag.ImageWidth, w), (core.Tag.ImageLength, h), (core.Tag.TileWidth, w),
                       (core.Tag.TileLength, h), (core.Tag.Orientation, defs.Orientation.Horizontal),
                       (core.Tag.PhotometricInterpretation, defs.PhotometricInterpretation.Color_Filter_Array),
                       (core.Tag.SamplesPerPixel, 1), (core.Tag.BitsPerSample, 16),
                       (core.Tag.CFARepeatPatternDim, [2, 2]), (core.Tag.CFAPattern, getattr(defs.CFAPattern, pattern)),
                       (core.Tag.BlackLevel, black), (core.Tag.WhiteLevel, 65535),
                       (core.Tag.ColorMatrix1, [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]),
                       (core.Tag.CalibrationIlluminant1, defs.CalibrationIlluminant.D65),
                       (core.Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]), (core.Tag.Make, "Canon"),
                       (core.Tag.Model, "EOS 6D"), (core.Tag.ExposureTime, [list(exposure)]),
                       (core.Tag.PhotographicSensitivity, iso),
                       (core.Tag.DateTimeOriginal, "2020:08:14 22:10:00"),
                       (core.Tag.DNGVersion, defs.DNGVersion.V1_4),
                       (core.Tag.DNGBackwardVersion, defs.DNGVersion.V1_2)):
        t.set(tag, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = core.RAW2DNG()
    writer.options(t, path=str(path.parent), compress=False)
    writer.convert(mosaic, filename=path.stem)
    return path


def test_dslr_raw_mosaic_exposure_iso_and_black_level(tmp_path):
    pytest.importorskip("rawpy")
    pytest.importorskip("exifread")
    rng = np.random.default_rng(5)
    mosaics = [rng.integers(256, 4000, (64, 96)).astype(np.uint16) for _ in range(2)]
    paths = [_write_dng(tmp_path / "DARK" / f"IMG_{i:04d}.dng", m) for i, m in enumerate(mosaics)]
    READ_STATISTICS.reset()
    cube = aw.open_frames(tmp_path / "DARK")
    assert READ_STATISTICS.calls == 0
    assert cube.shape == (2, 64, 96)
    assert list(cube["frame_type"].values) == ["dark", "dark"]  # from the folder: raw files carry no type
    assert cube["exposure"].values[0] == pytest.approx(1 / 30) and cube["iso"].values[0] == 800
    assert cube["offset"].values[0] == 256  # the black level, as Siril reads BLKLEVEL
    assert cube["bayer_pattern"].values[0] == "GRBG" and cube["instrument"].values[0] == "EOS 6D"
    assert cube["date_obs"].values[0] == np.datetime64("2020-08-14T22:10:00")
    assert np.isnan(cube["temperature"].values).all()  # DSLRs report no sensor temperature here
    np.testing.assert_array_equal(cube.values[1], mosaics[1].astype(np.float32))  # mosaic as stored
    assert all(p.exists() for p in paths)


def test_review_regressions(tmp_path, monkeypatch):
    """NAXIS3=1 on the slow paths, brackets in real names, relative paths, inf, header copies,
    gzip outputs and picklable errors."""
    import pickle

    from astrocal_widgets.io.write import write_fits_atomic

    data = np.arange(8 * 10, dtype=np.uint16).reshape(8, 10)
    fits.PrimaryHDU(data[None]).writeto(tmp_path / "cube.fits.gz")
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data[None])]).writeto(tmp_path / "cube_c.fits")
    for name in ("cube.fits.gz", "cube_c.fits"):
        np.testing.assert_array_equal(aw.open_frames([tmp_path / name], chunks=3).values[0], data)
    odd = tmp_path / "M31 [Ha]"
    write_frame(odd / "dark_0.fits", data)
    assert aw.open_frames(str(odd / "dark_0.fits")).shape == (1, 8, 10)
    monkeypatch.chdir(odd)
    cube = aw.open_frames("dark_0.fits")
    monkeypatch.chdir(tmp_path)
    np.testing.assert_array_equal(cube.values[0], data)  # absolute paths survive a chdir
    floats = np.ones((8, 10), np.float32)
    floats[2, 3] = np.inf
    fits.PrimaryHDU(floats).writeto(tmp_path / "inf.fits")
    assert np.isnan(aw.open_frames([tmp_path / "inf.fits"]).values[0, 2, 3])
    h = aw.open_frames([tmp_path / "inf.fits"]).astrocal.header(0)
    h["EXPTIME"] = 999
    assert "EXPTIME" not in aw.open_frames([tmp_path / "inf.fits"]).astrocal.header(0)
    out = write_fits_atomic(tmp_path / "out.fits.gz", fits.PrimaryHDU(data))
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # really gzipped
    err = pickle.loads(pickle.dumps(aw.MissingExtraError("Reading raw", "raw", "rawpy")))
    assert "rawpy" in str(err)
    err = pickle.loads(pickle.dumps(aw.FrameReadError("a.fits", "truncated")))
    assert str(err) == "a.fits: truncated"


@pytest.mark.parametrize("kind", ["uint16", "int16-blank", "uint8", "float32", "int32-scaled"])
def test_read_rows_into_gives_read_rows_values(tmp_path, kind):
    """Bands convert straight from the file's bytes into the band array: the same values as read_rows."""
    from astrocal_widgets.io.sources import open_source

    rng = np.random.default_rng(1)
    path = tmp_path / f"{kind}.fits"
    if kind == "uint16":
        hdu = fits.PrimaryHDU(rng.integers(0, 65535, (20, 30)).astype(np.uint16))
    elif kind == "int16-blank":
        data = rng.integers(-3000, 3000, (20, 30)).astype(np.int16)
        data[3, 4] = -32768
        hdu = fits.PrimaryHDU(data)
        hdu.header["BLANK"] = -32768
    elif kind == "uint8":
        hdu = fits.PrimaryHDU(rng.integers(0, 255, (20, 30)).astype(np.uint8))
    elif kind == "float32":
        hdu = fits.PrimaryHDU(rng.normal(0, 1, (20, 30)).astype(np.float32))
    else:
        hdu = fits.PrimaryHDU(rng.integers(-2**30, 2**30, (20, 30)).astype(np.int32))
        hdu.header["BSCALE"], hdu.header["BZERO"] = 0.5, 7.0
    hdu.writeto(path)
    _, source = open_source(path)
    expected = source.read_rows(5, 17)
    out = np.full((12, 30), -1.0, np.float32)
    source.read_rows_into(out, 5, 17)
    assert np.array_equal(out, expected, equal_nan=True)
    if kind == "int16-blank":
        whole = np.empty((20, 30), np.float32)
        source.read_rows_into(whole, 0, 20)
        assert np.isnan(whole[3, 4])
