"""Atomic writing of FITS files: temporary file in the target folder, then rename."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

from astropy.io import fits

from ..errors import OutputExistsError

__all__ = ["write_fits_atomic", "atomic_path"]


class atomic_path:
    """Context manager giving a temporary path that is renamed to ``path`` on success.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic
    on POSIX: readers see either no file or the complete one, never a half-written file.

    Parameters
    ----------
    path : path-like
        Final destination.
    overwrite : bool
        If False and ``path`` exists, :class:`OutputExistsError` is raised before
        anything is written.
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        if self.path.exists() and not self.overwrite:
            raise OutputExistsError(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Keep the destination's suffixes: writers choose the format by them (".fits.gz" is gzipped).
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.tmp.", suffix="".join(self.path.suffixes),
                                   dir=self.path.parent)
        os.close(fd)
        os.unlink(tmp)  # writers such as astropy refuse an existing file
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is None:
            if self.path.exists() and not self.overwrite:
                # Someone else created it meanwhile: keep theirs, drop ours.
                self.tmp.unlink(missing_ok=True)
                raise OutputExistsError(self.path)
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_fits_atomic(
    path: str | os.PathLike,
    hdus: fits.HDUList | Sequence[fits.hdu.base.ExtensionHDU] | fits.PrimaryHDU,
    *,
    overwrite: bool = False,
) -> Path:
    """Write an HDU list to ``path`` atomically, refusing to replace a file unless asked.

    Parameters
    ----------
    path : path-like
        Destination file name.
    hdus : HDUList, PrimaryHDU or sequence of HDUs
        What to write.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    if isinstance(hdus, fits.PrimaryHDU):
        hdus = fits.HDUList([hdus])
    elif not isinstance(hdus, fits.HDUList):
        hdus = fits.HDUList(list(hdus))
    with atomic_path(path, overwrite=overwrite) as tmp:
        hdus.writeto(tmp, output_verify="silentfix")
    return Path(path)
