"""Which of the night's masters a set needs before it is calibrated, by the calibration's own rules.

A flat set is calibrated with the master dark flat that matches it; only when the night holds no
matching dark flats does the master bias stand in. A light needs the matching master bias, dark and
flat. :func:`flat_prerequisites` and :func:`light_prerequisites` find, with
:func:`~astrocal_widgets.calibrate.matching.check_compatibility`, the night's sets that match and
whether their masters are saved yet, so that nothing is calibrated with a fallback while the right
master merely waits to be built (what a step-by-step dashboard must never do).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..frames import FrameCatalog, FrameGroup
from ..io.frame_types import FRAME_TYPE_PLURALS, FRAME_TYPE_WORDS
from .library import _scaling_rank
from .matching import DEFAULT_TEMPERATURE_TOLERANCE, ROLE_FRAME_TYPES, check_compatibility

__all__ = ["NeededMaster", "Prerequisites", "flat_prerequisites", "light_prerequisites", "master_file",
           "saved_master_path", "short_label"]



def master_file(group: FrameGroup, masters_dir: str | os.PathLike) -> Path:
    """Where the master of a set is saved: ``masters_dir/master_<set>.fits`` (one name, reused by every run)."""
    return Path(masters_dir) / f"master_{group.slug}.fits"


def saved_master_path(group: FrameGroup, masters_dir: str | os.PathLike,
                      saved: Mapping[str, Any] | None = None) -> Path:
    """Where a set's master is (or will be): ``saved[label]`` for one saved under another name, else
    :func:`master_file`."""
    return Path(saved[group.label]) if saved and group.label in saved else master_file(group, masters_dir)


def short_label(group: FrameGroup) -> str:
    """A set's values without its type, binning and size: ``'8 s, gain 139, offset 21'``."""
    parts = group.label.split(", ")[1:]
    return ", ".join(p for p in parts if not p.endswith((" bin", " px"))) or group.label


@dataclass
class NeededMaster:
    """A master of the night that a set is calibrated with.

    Attributes
    ----------
    role : str
        ``bias``, ``dark``, ``darkflat`` or ``flat``: what it is used as.
    group : FrameGroup
        The night's set it is integrated from.
    path : pathlib.Path
        Where it is (or will be) saved.
    saved : bool
        Whether it exists.
    """

    role: str
    group: FrameGroup
    path: Path
    saved: bool

    @property
    def name(self) -> str:
        """``'master dark flat 8 s, gain 139, offset 21'``."""
        return f"master {FRAME_TYPE_WORDS[self.role]} {short_label(self.group)}"


@dataclass
class Prerequisites:
    """The masters a set needs, which of them are saved, and what stands in for a missing kind.

    Attributes
    ----------
    target : FrameGroup or row
        What is calibrated.
    label : str
        Its set's label.
    masters : list of NeededMaster
        The night's sets that match it, one or more per role.
    warnings : list of str
        Fallbacks, with the reason (e.g. flats calibrated with the bias: no dark flats match).
    """

    target: Any
    label: str
    masters: list[NeededMaster] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[NeededMaster]:
        """The matching masters not saved yet."""
        return [m for m in self.masters if not m.saved]

    @property
    def blocked(self) -> bool:
        """True while a matching master is not saved: calibrating now would use a fallback."""
        return bool(self.missing)

    @property
    def reason(self) -> str:
        """What to do first, naming each missing master (empty when nothing is missing)."""
        if not self.missing:
            return ""
        names = [m.name for m in self.missing]
        kinds = sorted({FRAME_TYPE_PLURALS[m.role] for m in self.missing})
        return (f"save the {' and the '.join(names)} first: the night has the matching {' and '.join(kinds)}, "
                f"and calibrating without {'it' if len(names) == 1 else 'them'} would use a fallback")


def _matching(target: Any, catalog: FrameCatalog, role: str, **rules: Any) -> list[FrameGroup]:
    out = []
    for frame_type in ROLE_FRAME_TYPES[role]:
        for group in catalog.groups(frame_type):
            problems = check_compatibility(target, group, role=role, **rules)
            if not any(m.severity == "error" for m in problems):
                out.append(group)
    return out


def _needed(role: str, group: FrameGroup, masters_dir: Path, saved: Mapping[str, Any] | None) -> NeededMaster:
    path = saved_master_path(group, masters_dir, saved)
    return NeededMaster(role, group, path, path.exists())


def flat_prerequisites(flats: FrameGroup, catalog: FrameCatalog, masters_dir: str | os.PathLike, *,
                       temperature_tolerance: float = DEFAULT_TEMPERATURE_TOLERANCE,
                       saved: Mapping[str, Any] | None = None) -> Prerequisites:
    """The master dark flats (else bias) of the night that a flat set is calibrated with.

    For each exposure of the set, the night's dark-flat sets that match it (the rules
    :func:`~astrocal_widgets.calibrate.calibrate_flats` applies); only for an exposure that no dark-flat
    set matches, the matching bias sets, with a warning.

    Parameters
    ----------
    flats : FrameGroup
    catalog : FrameCatalog
        The night.
    masters_dir : path-like
        Where masters are saved.
    temperature_tolerance : float
        °C, as for :func:`~astrocal_widgets.calibrate.calibrate_flats`.
    saved : mapping of set label to path, optional
        Masters saved under other names than ``master_<set>.fits``.

    Returns
    -------
    Prerequisites
    """
    out = Prerequisites(flats, flats.label)
    masters_dir = Path(masters_dir)
    seen: set[tuple[str, str]] = set()
    for exposure, rows in flats.table.groupby("exposure", dropna=False, sort=True):
        row = rows.iloc[0]
        darkflats = _matching(row, catalog, "darkflat", temperature_tolerance=temperature_tolerance)
        role, sets = "darkflat", darkflats
        if not darkflats:
            role, sets = "bias", _matching(row, catalog, "bias", temperature_tolerance=math.inf)
            seconds = "unknown exposure" if exposure != exposure else f"{exposure:g} s"
            if sets:
                out.warnings.append(f"{flats.label}: no dark flats in the night match the {seconds} flats: they are "
                                    f"calibrated with the master bias ({short_label(sets[0])}), which leaves their "
                                    "dark signal in the master flat; take dark flats at the flats' exposure")
            else:
                out.warnings.append(f"{flats.label}: no dark flats and no bias in the night match the {seconds} "
                                    "flats: their pedestal would stay in the master flat; take dark flats at the "
                                    "flats' exposure")
        for group in sets:
            if (role, group.label) not in seen:
                seen.add((role, group.label))
                out.masters.append(_needed(role, group, masters_dir, saved))
    return out


def light_prerequisites(light: Any, catalog: FrameCatalog, masters_dir: str | os.PathLike, *,
                        temperature_tolerance: float = DEFAULT_TEMPERATURE_TOLERANCE,
                        allow_dark_scaling: bool = True,
                        saved: Mapping[str, Any] | None = None) -> Prerequisites:
    """The night's master bias, dark and flat that match a light (a catalogue row or a light set).

    A dark of the light's exposure is needed when the night has one; darks of other exposures only
    when it has none (and ``allow_dark_scaling``), as :func:`~astrocal_widgets.calibrate.calibrate_light`
    chooses them.

    Parameters
    ----------
    light : catalogue row or FrameGroup
    catalog : FrameCatalog
    masters_dir : path-like
    temperature_tolerance : float
    allow_dark_scaling : bool
    saved : mapping of set label to path, optional

    Returns
    -------
    Prerequisites
    """
    label = light.label if isinstance(light, FrameGroup) else Path(str(light["path"])).name
    out = Prerequisites(light, label)
    masters_dir = Path(masters_dir)
    for role in ("bias", "dark", "flat"):
        sets = _matching(light, catalog, role, temperature_tolerance=temperature_tolerance)
        if role == "dark" and not sets and allow_dark_scaling:
            # The dark find_master would scale: ranked by the same rule.
            exposure = float(light.key["exposure"] if isinstance(light, FrameGroup) else light["exposure"])
            scalable = _matching(light, catalog, role, temperature_tolerance=temperature_tolerance,
                                 allow_dark_scaling=True)
            sets = sorted(scalable, key=lambda g: _scaling_rank(exposure, float(g.key["exposure"])))[:1]
        out.masters += [_needed(role, g, masters_dir, saved) for g in sets]
        if not sets:
            out.warnings.append(f"{label}: no {FRAME_TYPE_WORDS[role]} frames in the night match it")
    return out
