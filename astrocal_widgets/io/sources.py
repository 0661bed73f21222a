"""Open a frame file once for its header, then read any band of rows on demand.

:func:`open_source` reads only the header (and, for FITS, where the data unit starts) and returns a
small, picklable :class:`FrameSource`. :meth:`FrameSource.read_rows` later reads just the bytes of the
rows asked for, converting to float32 with ``BZERO`` / ``BSCALE`` as it copies. That is what keeps
integration linear in the number of frames: each band task reads its own rows of each file, never a
whole file (ccdproc's ``combine`` re-reads every file for every chunk).

Uncompressed FITS and XISF take the direct path (a positioned read of the band's bytes). Tile-compressed
FITS, gzip-compressed FITS, compressed XISF and DSLR raw files take a slower path through their
libraries (documented in :class:`FrameSource`).
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..errors import FrameReadError, MissingExtraError
from ..warning_report import reading_file

__all__ = [
    "FITS_SUFFIXES", "XISF_SUFFIXES", "RAW_SUFFIXES", "FRAME_SUFFIXES",
    "FrameSource", "open_source", "cached_open_source", "read_header", "is_frame_file", "READ_STATISTICS",
]

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fz")
XISF_SUFFIXES = (".xisf",)
RAW_SUFFIXES = (".cr2", ".cr3", ".nef", ".arw", ".dng", ".orf", ".rw2", ".raf", ".pef")
FRAME_SUFFIXES = FITS_SUFFIXES + XISF_SUFFIXES + RAW_SUFFIXES

_BITPIX_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


class ReadStatistics:
    """Counts pixel reads, so tests can prove laziness ("opening 200 frames reads no pixels").

    Attributes
    ----------
    calls : int
        Number of :meth:`FrameSource.read_rows` calls.
    bytes : int
        Bytes of pixel data read from disk (direct path) or decoded (slow path).
    rows : int
        Image rows read, summed over frames.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.bytes = 0
        self.rows = 0

    def add(self, nbytes: int, nrows: int) -> None:
        with self._lock:
            self.calls += 1
            self.bytes += nbytes
            self.rows += nrows


#: Process-wide counters of pixel reads.
READ_STATISTICS = ReadStatistics()

_SCRATCH = threading.local()


def _scratch(nbytes: int) -> memoryview:
    """This thread's reusable read buffer, at least ``nbytes`` long (a view of exactly that length)."""
    buf = getattr(_SCRATCH, "buffer", None)
    if buf is None or len(buf) < nbytes:
        buf = _SCRATCH.buffer = bytearray(nbytes)
    return memoryview(buf)[:nbytes]


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in FRAME_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def is_frame_file(path: str | os.PathLike) -> bool:
    """True for file names with a frame suffix (FITS, XISF, DSLR raw), in any case."""
    p = Path(path)
    return not p.name.startswith(".") and _suffix(p) in FRAME_SUFFIXES


@dataclass(frozen=True)
class FrameSource:
    """Where one frame's pixels are and how to turn them into float32.

    Parameters
    ----------
    path : str
        The file.
    shape : (int, int)
        Image (height, width) as stored: rows are the FITS ``NAXIS2`` axis.
    reader : {"direct", "fits", "xisf", "raw"}
        ``direct``: positioned read of the rows' bytes at ``offset``; the others decode through
        astropy (tile-compressed or gzip FITS: only the band's tiles for tile compression), the
        ``xisf`` package (compressed XISF) or rawpy (DSLR raw, the whole mosaic decoded per call).
    hdu : int
        Index of the image HDU (FITS).
    offset : int
        Byte offset of the first pixel (direct path).
    dtype : str
        Stored numpy dtype with byte order, e.g. ``'>i2'``.
    bzero, bscale : float
        Physical value = stored * bscale + bzero.
    blank : int or None
        Stored integer value that means "no data" (FITS ``BLANK``); read as NaN.
    """

    path: str
    shape: tuple[int, int]
    reader: str
    hdu: int = 0
    offset: int = 0
    dtype: str = ">i2"
    bzero: float = 0.0
    bscale: float = 1.0
    blank: int | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def stored_nbytes(self) -> int:
        """Bytes of the stored data unit."""
        return self.shape[0] * self.shape[1] * np.dtype(self.dtype).itemsize

    def read_rows(self, y0: int = 0, y1: int | None = None) -> np.ndarray:
        """Read rows ``y0:y1`` as float32 physical values (NaN for blank pixels).

        Raises
        ------
        FrameReadError
            If the file vanished, is truncated, or cannot be decoded.
        """
        height, width = self.shape
        y1 = height if y1 is None else y1
        if not 0 <= y0 <= y1 <= height:
            raise ValueError(f"{self.path}: rows {y0}:{y1} outside 0:{height}")
        if self.reader == "direct":
            stored = self._read_direct(y0, y1)
        elif self.reader == "fits":
            stored = self._read_fits(y0, y1)
        elif self.reader == "xisf":
            stored = _read_xisf_image(self.path)[y0:y1]
        elif self.reader == "raw":
            stored = _read_raw_image(self.path)[y0:y1]
        else:  # pragma: no cover - constructed only here
            raise ValueError(f"unknown reader {self.reader!r}")
        READ_STATISTICS.add(stored.nbytes, (y1 - y0))
        return self._to_float32(stored)

    def read_rows_into(self, out: np.ndarray, y0: int, y1: int) -> None:
        """:meth:`read_rows` written into ``out`` (float32, ``(y1 - y0, width)``), the same values.

        Uncompressed 8/16-bit integer FITS (most camera frames) convert straight from the file's
        bytes into ``out``, with no intermediate array; other data go through :meth:`read_rows`.
        """
        dtype = np.dtype(self.dtype)
        if not (self.reader == "direct" and dtype.kind in "iu" and dtype.itemsize <= 2 and self.bscale == 1.0
                and 0 <= y0 <= y1 <= self.shape[0]):
            out[...] = self.read_rows(y0, y1)
            return
        stored = self._read_direct(y0, y1, scratch=True)
        READ_STATISTICS.add(stored.nbytes, (y1 - y0))
        np.copyto(out, stored, casting="unsafe")  # byte order and type in one pass
        if self.bzero != 0.0:
            out += np.float32(self.bzero)
        if self.blank is not None:
            out[stored == self.blank] = np.nan

    def _read_direct(self, y0: int, y1: int, scratch: bool = False) -> np.ndarray:
        """The stored rows ``y0:y1``. ``scratch=True``: read into this thread's reusable buffer (the
        array is then valid until the thread's next such read), which spares the system mapping
        fresh memory for every band (on virtual machines each fresh page is a costly fault)."""
        dtype = np.dtype(self.dtype)
        width = self.shape[1]
        count = (y1 - y0) * width
        nbytes = count * dtype.itemsize
        start = self.offset + y0 * width * dtype.itemsize
        try:
            with open(self.path, "rb", buffering=0) as f:
                f.seek(start)
                if scratch:
                    buf = _scratch(nbytes)
                    got = 0
                    while got < nbytes and (n := f.readinto(buf[got:])):
                        got += n
                else:
                    buf = f.read(nbytes)
                    got = len(buf)
        except OSError as exc:
            raise FrameReadError(self.path, f"cannot read pixel data: {exc}") from exc
        if got != nbytes:
            raise FrameReadError(
                self.path, f"truncated: rows {y0}:{y1} need bytes {start}-{start + nbytes}, "
                f"the file ends at {start + got}")
        return np.frombuffer(buf, dtype=dtype, count=count).reshape(y1 - y0, width)

    def _read_fits(self, y0: int, y1: int) -> np.ndarray:
        try:
            with reading_file(self.path), fits.open(self.path, memmap=False, do_not_scale_image_data=True) as hdul:
                hdu = hdul[self.hdu]
                # Index rows on the last-but-one axis: a NAXIS3=1 cube is (1, H, W).
                if isinstance(hdu, fits.CompImageHDU):
                    # The section reads only the tiles that cover the rows; scaling is ours.
                    data = np.asarray(hdu.section[..., y0:y1, :])
                else:
                    data = np.asarray(hdu.data[..., y0:y1, :])
                data = data.reshape(y1 - y0, self.shape[1])
        except (OSError, ValueError, TypeError) as exc:
            raise FrameReadError(self.path, f"cannot decode FITS data: {exc}") from exc
        return data

    def _to_float32(self, stored: np.ndarray) -> np.ndarray:
        if stored.dtype.kind == "f":
            out = stored.astype(np.float32)
            if self.bscale != 1.0 or self.bzero != 0.0:
                out = (stored.astype(np.float64) * self.bscale + self.bzero).astype(np.float32)
            out[np.isinf(out)] = np.nan  # the kernels take finite values or NaN (missing)
            return out
        if stored.dtype.itemsize >= 4 or self.bscale != 1.0:
            # float32 holds integers exactly only up to 2**24: scale 32/64-bit data in float64.
            out = (stored.astype(np.float64) * self.bscale + self.bzero).astype(np.float32)
        else:
            out = stored.astype(np.float32)
            if self.bzero != 0.0:
                out += np.float32(self.bzero)
        if self.blank is not None:
            out[stored == self.blank] = np.nan
        return out


# --- opening -------------------------------------------------------------------------------------

def open_source(path: str | os.PathLike) -> tuple[dict[str, Any], FrameSource]:
    """Read one file's header and locate its pixels, reading no pixel data.

    Parameters
    ----------
    path : path-like
        A FITS (``.fits .fit .fts`` in any case, optionally ``.gz``; tile-compressed too), XISF or
        DSLR raw file.

    Returns
    -------
    header : dict-like
        The header (an ``astropy.io.fits.Header`` for FITS; FITS keywords for XISF; EXIF mapped to
        FITS names for raw).
    source : FrameSource

    Raises
    ------
    FrameReadError
        If the file is missing, unreadable, truncated, or holds no 2-D image.
    MissingExtraError
        For XISF or raw files without the optional package.
    """
    p = Path(path)
    if not p.exists():
        raise FrameReadError(p, "no such file")
    if p.is_dir():
        raise FrameReadError(p, "is a folder, not a frame file")
    suffix = _suffix(p)
    with reading_file(p):  # a report counts the header warnings of this file as its own
        if suffix in XISF_SUFFIXES:
            return _open_xisf(p)
        if suffix in RAW_SUFFIXES:
            return _open_raw(p)
        return _open_fits(p)


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The full header of a frame file (a copy: cached by path, size and modification time)."""
    return cached_open_source(path)[0].copy()


def cached_open_source(path: str | os.PathLike) -> tuple[Any, FrameSource]:
    """:func:`open_source`, cached by path, size and modification time (a changed file is re-read).

    The returned header is shared with the cache: copy it before changing it (:func:`read_header`
    does).

    Raises
    ------
    FrameReadError
        If the file is missing, a folder, or unreadable.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise FrameReadError(p, "no such file") from None
    if p.is_dir():
        raise FrameReadError(p, "is a folder, not a frame file")
    return _cached_open(str(p), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=4096)
def _cached_open(path: str, size: int, mtime_ns: int):
    return open_source(path)


def _open_fits(p: Path) -> tuple[fits.Header, FrameSource]:
    size = p.stat().st_size
    if size == 0:
        raise FrameReadError(p, "empty file")
    gz = p.name.lower().endswith(".gz")
    try:
        hdul = fits.open(p, memmap=False, lazy_load_hdus=True, do_not_scale_image_data=True)
    except Exception as exc:  # astropy raises OSError, TypeError, ValueError for junk
        raise FrameReadError(p, f"not a readable FITS file ({exc})") from exc
    try:
        index = None
        for i in range(len(hdul) if not hdul[0].header.get("NAXIS", 0) else 1):
            hdr = hdul[i].header
            if isinstance(hdul[i], (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) and hdr.get("NAXIS", 0) >= 2:
                index = i
                break
            if i >= 1:  # only the primary HDU or the first image extension
                break
        if index is None:
            raise FrameReadError(p, "no image: the primary HDU and the first extension hold no 2-D data")
        hdu = hdul[index]
        header = hdu.header.copy()
        if index > 0:
            # Keywords such as IMAGETYP often sit in the primary header only.
            primary = hdul[0].header
            for card in primary.cards:
                if card.keyword not in header and card.keyword not in ("", "COMMENT", "HISTORY") \
                        and card.keyword not in ("SIMPLE", "EXTEND", "NAXIS", "BITPIX", "BZERO", "BSCALE",
                                                 "BLANK", "CHECKSUM", "DATASUM"):
                    header[card.keyword] = card.value
        naxis = header.get("NAXIS", 0)
        if isinstance(hdu, fits.CompImageHDU):
            bitpix = header.get("ZBITPIX", header.get("BITPIX"))
            shape_axes = [header.get(f"ZNAXIS{k}", header.get(f"NAXIS{k}")) for k in range(1, naxis + 1)]
        else:
            bitpix = header.get("BITPIX")
            shape_axes = [header.get(f"NAXIS{k}") for k in range(1, naxis + 1)]
        if any(n is None for n in shape_axes):
            raise FrameReadError(p, "header has NAXIS but not every NAXISn")
        extra_axes = [n for n in shape_axes[2:] if n != 1]
        if extra_axes:
            raise FrameReadError(
                p, f"a {naxis}-D image ({' x '.join(map(str, shape_axes))}): colour cubes are not "
                "calibration frames; use the raw mosaic (one plane)")
        if bitpix not in _BITPIX_DTYPES:
            raise FrameReadError(p, f"unsupported BITPIX={bitpix}")
        shape = (int(shape_axes[1]), int(shape_axes[0]))
        bzero = float(header.get("BZERO", 0.0))
        bscale = float(header.get("BSCALE", 1.0))
        blank = header.get("BLANK") if bitpix > 0 else None
        if isinstance(hdu, fits.CompImageHDU):
            source = FrameSource(str(p), shape, "fits", index, 0, _BITPIX_DTYPES[bitpix], bzero, bscale,
                                 blank)
        elif gz:
            source = FrameSource(str(p), shape, "fits", index, 0, _BITPIX_DTYPES[bitpix], bzero, bscale,
                                 blank)
        else:
            info = hdul.fileinfo(index)
            source = FrameSource(str(p), shape, "direct", index, int(info["datLoc"]),
                                 _BITPIX_DTYPES[bitpix], bzero, bscale, blank)
            needed = source.offset + source.stored_nbytes
            if size < needed:
                raise FrameReadError(
                    p, f"truncated: the header announces {shape[1]} x {shape[0]} pixels of BITPIX {bitpix} "
                    f"({source.stored_nbytes} bytes from byte {source.offset}), but the file has only "
                    f"{size} bytes")
        for key in ("ZBITPIX", "ZNAXIS", "ZNAXIS1", "ZNAXIS2", "ZCMPTYPE"):
            header.remove(key, ignore_missing=True)
        return header, source
    except FrameReadError:
        raise
    except Exception as exc:
        raise FrameReadError(p, f"not a readable FITS file ({exc})") from exc
    finally:
        hdul.close()


# --- XISF ----------------------------------------------------------------------------------------

def _xisf_module():
    try:
        import xisf  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise MissingExtraError("Reading XISF files", "xisf", "xisf") from exc
    return xisf


def _open_xisf(p: Path) -> tuple[dict[str, Any], FrameSource]:
    xisf = _xisf_module()
    try:
        meta = xisf.XISF(str(p)).get_images_metadata()[0]
        width, height, channels = meta["geometry"][:3]
        np.dtype(meta["dtype"])
    except Exception as exc:
        raise FrameReadError(p, f"not a readable XISF file ({exc})") from exc
    if channels != 1:
        raise FrameReadError(p, f"{channels} channels: colour images are not calibration frames")
    header: dict[str, Any] = {}
    for key, entries in meta.get("FITSKeywords", {}).items():
        value = entries[0]["value"] if entries else None
        header[key] = _parse_fits_value(value)
    location = meta.get("location", ())
    dtype = np.dtype(meta["dtype"]).newbyteorder("<")
    if location and location[0] == "attachment" and "compression" not in meta:
        source = FrameSource(str(p), (int(height), int(width)), "direct", 0, int(location[1]), dtype.str)
        if p.stat().st_size < source.offset + source.stored_nbytes:
            raise FrameReadError(p, "truncated: the image block extends past the end of the file")
    else:
        source = FrameSource(str(p), (int(height), int(width)), "xisf", 0, 0, dtype.str)
    return header, source


def _parse_fits_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].strip()
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def _read_xisf_image(path: str) -> np.ndarray:
    xisf = _xisf_module()
    try:
        data = xisf.XISF(path).read_image(0)
    except Exception as exc:
        raise FrameReadError(path, f"cannot decode XISF data: {exc}") from exc
    return np.asarray(data)[..., 0]


# --- DSLR raw -------------------------------------------------------------------------------------

def _rawpy_module():
    try:
        import rawpy  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise MissingExtraError("Reading DSLR raw files", "raw", "rawpy") from exc
    return rawpy


def _open_raw(p: Path) -> tuple[dict[str, Any], FrameSource]:
    rawpy = _rawpy_module()
    try:
        with rawpy.imread(str(p)) as raw:
            height, width = raw.raw_image_visible.shape
            colors = "".join(raw.color_desc.decode()[i] for i in raw.raw_pattern.flatten())
            black = float(np.mean(raw.black_level_per_channel))
            white = float(raw.white_level)
    except Exception as exc:
        raise FrameReadError(p, f"not a readable raw file ({exc})") from exc
    # Black level as stored; the mosaic is returned as stored, so BAYERPAT is the pattern at [0, 0].
    header: dict[str, Any] = {"BAYERPAT": colors if len(colors) == 4 else "",
                              "BLKLEVEL": black, "DATAMAX": white}
    header.update(_exif_header(p))
    return header, FrameSource(str(p), (int(height), int(width)), "raw", 0, 0, "<u2")


def _exif_header(p: Path) -> dict[str, Any]:
    """Exposure, ISO, date and camera from EXIF (raw files carry no FITS header)."""
    try:
        import exifread  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise MissingExtraError("Reading DSLR raw metadata", "raw", "exifread") from exc
    with open(p, "rb") as f:
        tags = exifread.process_file(f, details=False)
    def tag(name: str):
        # DNG writers may put EXIF fields in IFD0 ("Image ...") instead of the EXIF IFD.
        return tags.get(f"EXIF {name}", tags.get(f"Image {name}"))

    out: dict[str, Any] = {}
    exposure = tag("ExposureTime")
    if exposure is not None:
        ratio = exposure.values[0]
        out["EXPTIME"] = float(ratio.num) / float(ratio.den) if ratio.den else math.nan
    iso = tag("ISOSpeedRatings")
    if iso is not None:
        out["ISOSPEED"] = float(iso.values[0])
    date = tag("DateTimeOriginal")
    if date is not None:
        d = str(date.values).strip()
        out["DATE-OBS"] = d[:10].replace(":", "-") + "T" + d[11:]
    model = tags.get("Image Model")
    if model is not None:
        out["INSTRUME"] = str(model.values).strip()
    return out


def _read_raw_image(path: str) -> np.ndarray:
    rawpy = _rawpy_module()
    try:
        with rawpy.imread(path) as raw:
            return np.array(raw.raw_image_visible, dtype=np.uint16)
    except Exception as exc:
        raise FrameReadError(path, f"cannot decode raw data: {exc}") from exc
