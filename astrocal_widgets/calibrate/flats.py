"""Flats calibrated before they are integrated: each minus the master dark flat of its exposure (else
the master bias), lazily, band by band (:func:`calibrate_flats`).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..errors import MissingMasterError
from ..frames import FrameCatalog, FrameGroup
from ..io.cube import open_frames
from .build_masters import subtract_masters
from .levels import master_level_problem, sample_rows
from .library import MasterLibrary, _read_master, find_master
from .options import CalibrationOptions, calibration_options
from .overscan import calibrated_row
from .prerequisites import flat_prerequisites

__all__ = ["calibrate_flats", "FlatCalibration"]


@dataclass
class FlatCalibration:
    """Flats calibrated by their dark flats (else the bias), lazily, ready to integrate.

    Attributes
    ----------
    group : FrameGroup
        The flats.
    cube : xarray.DataArray
        The calibrated ``(frame, y, x)`` cube (flats without a master left out, or the raw cube
        when no flat has one and ``strict=False``).
    masters : list of str
        The masters subtracted.
    index : list of int
        For each frame of ``cube``, which of ``masters`` (-1: none).
    decisions, warnings : list of str
        What was chosen and what is wrong, in words.
    """

    group: FrameGroup
    cube: Any
    masters: list[str] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def level_removed(self, frame: int = 0) -> float:
        """The median level subtracted from frame ``frame`` of ``cube`` (ADU; 0 when nothing was)."""
        i = self.index[frame] if self.index else -1
        if i < 0:
            return 0.0
        return float(np.median(fits.getdata(self.masters[i])))


def calibrate_flats(group: FrameGroup, library: MasterLibrary | str | os.PathLike,
                    options: CalibrationOptions | None = None, *, night: FrameCatalog | None = None,
                    saved: dict[str, Any] | None = None, **changes: Any) -> FlatCalibration:
    """Each flat minus its master dark flat (else the master bias), lazily.

    Parameters
    ----------
    group : FrameGroup
        A flat set from :func:`~astrocal_widgets.scan`.
    library : MasterLibrary or path-like
        Where the master dark flats and bias are (a folder is indexed on the fly).
    options : CalibrationOptions, optional
        Its ``strict`` (a flat without a dark flat or bias is an error; with ``strict=False`` such flats
        are left out, or, when no flat has one, all are kept uncalibrated, with a warning),
        ``temperature_tolerance`` (°C between flats and dark flats) and ``overscan`` (subtracted and
        trimmed as the flats are read) play a part.
    night : FrameCatalog, optional
        The night the flats belong to. When given, a dark-flat set of the night that matches the
        flats must have its master in ``library`` (see
        :func:`~astrocal_widgets.calibrate.prerequisites.flat_prerequisites`): the bias stands in
        only where the night has no matching dark flats, and that is warned.
    saved : dict, optional
        With ``night``: set label -> path of masters saved under other names than ``master_<set>.fits``.
    **changes
        Any field of :class:`CalibrationOptions`, replacing the one of ``options``.

    Returns
    -------
    FlatCalibration

    Raises
    ------
    MissingMasterError
        With ``night``, when a matching dark flat (or bias) of the night has no saved master yet; with
        ``strict=True``, naming a flat that no master dark flat and no master bias of ``library`` matches.
    """
    opts = calibration_options(options, changes)
    strict, temperature_tolerance, overscan = opts.strict, opts.temperature_tolerance, opts.overscan
    lib = library if isinstance(library, MasterLibrary) else MasterLibrary(library)
    cube = open_frames(group.paths, aliases=group.aliases, overscan=overscan)
    out = FlatCalibration(group, cube)
    if night is not None:
        needs = flat_prerequisites(group, night, lib.folder, temperature_tolerance=temperature_tolerance,
                                   saved=saved)
        if needs.blocked:
            raise MissingMasterError([m.role for m in needs.missing], group.label, needs.reason)
        out.warnings += needs.warnings
    masters: list[np.ndarray] = []
    index = []
    roles: dict[str, str] = {}  # master path -> what it is, for the decisions
    refusals: list[str] = []  # why the dark flats and bias there are were not used, naming both values
    for _, row in group.table.iterrows():
        row = calibrated_row(row, overscan, group.aliases)  # matched to masters by its trimmed size
        choice = find_master(row, lib, role="darkflat", temperature_tolerance=temperature_tolerance)
        role = "dark flat"
        if not choice:
            refusals += [r for _, reasons in choice.refused for r in reasons]
            choice = find_master(row, lib, role="bias", temperature_tolerance=math.inf)
            role = "bias: no matching dark flat"
        if not choice:
            refusals += [r for _, reasons in choice.refused for r in reasons]
            index.append(-1)
            continue
        roles[choice.path] = role
        if choice.path not in out.masters:
            out.masters.append(choice.path)
            masters.append(_read_master(choice.path))
        index.append(out.masters.index(choice.path))
    if all(i == -1 for i in index):
        text = (f"{group.label}: no dark flats and no bias match these flats, e.g. {group.paths[0]}: their "
                "pedestal would stay in the master flat and leave a residual in every light; take dark flats "
                "at the flats' exposure (or bias frames)")
        if refusals:
            text += " — refused: " + "; ".join(dict.fromkeys(refusals))
        if strict:
            raise MissingMasterError(("darkflat", "bias"), group.label,
                                     text.removeprefix(f"{group.label}: ")
                                     + " (or calibrate with strict=False to integrate them uncalibrated)")
        out.warnings.append(text + ": integrated uncalibrated")
        out.index = index
        return out
    if any(i == -1 for i in index):
        missing = [p for p, i in zip(group.paths, index) if i == -1]
        text = (f"{group.label}: no dark flat or bias for {len(missing)} of the {len(index)} flats, "
                f"e.g. {missing[0]} ({group.table['exposure'].iloc[index.index(-1)]:g} s); take dark flats "
                "at their exposure")
        if strict:
            raise MissingMasterError(("darkflat", "bias"), group.label,
                                     text.removeprefix(f"{group.label}: ") + " (or calibrate with strict=False to "
                                                                              "leave them out)")
        out.warnings.append(text + ": left out of the master flat")
        keep = [k for k, i in enumerate(index) if i != -1]
        cube = cube.isel(frame=keep)
        index = [index[k] for k in keep]
    out.cube = subtract_masters(cube, masters, index)
    out.index = index
    for m, name in enumerate(out.masters):  # no header needed: does each master's level fit its flats?
        k = index.index(m)
        rows = sample_rows(*masters[m].shape)  # one band of the flat is read, not the whole frame
        problem = master_level_problem(out.cube[k, rows].values, frame=Path(str(out.cube["path"].values[k])).name,
                                       master=Path(name).name, master_level=float(np.nanmedian(masters[m][rows])))
        if problem:
            out.warnings.append(f"{group.label}: {problem}")
    for name in out.masters:
        out.decisions.append(f"{group.label}: flats calibrated with {Path(name).name} ({roles[name]})")
    return out
