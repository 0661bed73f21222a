"""How a night is calibrated: one frozen set of options shared by the session, its steps, the CLI and
the dashboard.

:func:`~astrocal_widgets.calibrate.calibrate_session`, :func:`~astrocal_widgets.calibrate.calibrate_light`
and :func:`~astrocal_widgets.calibrate.calibrate_flats` take a :class:`CalibrationOptions` (``options=``)
and accept any of its fields as keywords too, which replace the options' values for that call::

    opts = CalibrationOptions(strict=False, dark_optimization=True)
    calibrate_session("night", opts)                  # as set
    calibrate_session("night", opts, cosmetic=False)  # the same, without cosmetic correction
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .._version import __version__
from ..integrate.registry import rejection_algorithm, rejection_names
from ..io.write import atomic_path
from .cosmetic import K_COLD, K_HOT
from .matching import DEFAULT_TEMPERATURE_TOLERANCE
from .overscan import overscan_word

__all__ = ["CalibrationOptions", "K_HOT", "K_COLD", "calibration_options", "OPTIONS_FILE", "OPTION_CHOICES",
           "save_options", "load_options"]


@dataclass(frozen=True)
class CalibrationOptions:
    """Every choice that shapes a calibration, documented once.

    Attributes
    ----------
    strict : bool, default True
        A broken compatibility rule (temperature beyond tolerance, an exposure mismatch without
        scaling, a flat without a dark flat or bias, ...) is an error naming both frames and both
        values. With ``strict=False`` the closest master is used with a warning for the soft rules
        (temperature, exposure, instrument); size, binning, gain, offset, ISO, filter and CFA
        mismatches are never used.
    temperature_tolerance : float, default 1.0 (``matching.DEFAULT_TEMPERATURE_TOLERANCE``)
        °C between lights and darks/bias, and between flats and dark flats.
    allow_dark_scaling : bool, default True
        Use darks of another exposure, scaled by the exposure ratio (needs a master bias).
    dark_optimization : bool, default False
        Choose the dark scale that minimises each calibrated light's noise (needs a master bias).
    cosmetic : bool, default True
        Correct hot pixels (from the master dark) and cold pixels (from the master flat and dark).
    k_hot, k_cold : float, default 5
        Defect thresholds in robust sigmas.
    pedestal : float, default 0
        Added to calibrated lights (ADU), keeping them positive for software that clips at 0.
    rejection : str, default "auto"
        Pixel rejection of every master: ``"auto"`` chooses by frame count (see
        :func:`~astrocal_widgets.integrate.integrate`), or one algorithm for all (e.g.
        ``"winsorized_sigma"``, as a Siril script's ``rej w 3 3``). With a named rejection, an
        existing master made with another is stale; with ``"auto"`` any existing master of the same
        frames is reused (such as one saved from the dashboard with the user's own choice).
    rejection_thresholds : (low, high), optional
        Thresholds of ``rejection`` (its defaults otherwise); needs a named ``rejection``.
    overscan : {'auto', 'off'}, Overscan or mapping, default 'auto'
        ``'auto'``: frames whose headers give ``BIASSEC`` have each row's overscan level (median)
        subtracted, and frames whose headers give ``TRIMSEC`` (else ``DATASEC``) are trimmed to it,
        as they are read (see :func:`~astrocal_widgets.open_frames`). ``'off'`` keeps the stored
        pixels.
    library : tuple of str
        Folders of masters from other nights: bias and temperature-regulated darks are taken from
        them when the night has none that match (flats and dark flats never are).
    """

    strict: bool = True
    temperature_tolerance: float = DEFAULT_TEMPERATURE_TOLERANCE
    allow_dark_scaling: bool = True
    dark_optimization: bool = False
    cosmetic: bool = True
    k_hot: float = K_HOT
    k_cold: float = K_COLD
    pedestal: float = 0.0
    rejection: str = "auto"
    rejection_thresholds: tuple[float, float] | None = None
    overscan: Any = "auto"
    library: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        library = self.library
        if library is None:
            library = ()
        elif isinstance(library, (str, os.PathLike)):
            library = (library,)
        object.__setattr__(self, "library", tuple(os.path.expanduser(os.fspath(p)) for p in library))
        if not (isinstance(self.temperature_tolerance, (int, float)) and self.temperature_tolerance >= 0):
            raise ValueError(f"temperature_tolerance must be a number of °C >= 0 (math.inf: no limit), "
                             f"got {self.temperature_tolerance!r}")
        for name in ("k_hot", "k_cold"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a number of robust sigmas > 0, got {value!r}")
        if not (isinstance(self.pedestal, (int, float)) and math.isfinite(self.pedestal)):
            raise ValueError(f"pedestal must be a finite number of ADU, got {self.pedestal!r}")
        if self.rejection != "auto" and self.rejection not in rejection_names():
            raise ValueError(f"rejection must be one of auto, {', '.join(rejection_names())}, got {self.rejection!r}")
        if self.rejection_thresholds is not None:
            if self.rejection == "auto":
                raise ValueError("rejection_thresholds need a named rejection (not 'auto', which chooses its own)")
            low, high = (float(v) for v in self.rejection_thresholds)
            rejection_algorithm(self.rejection).check_thresholds(low, high)
            object.__setattr__(self, "rejection_thresholds", (low, high))

    def replace(self, **changes: Any) -> "CalibrationOptions":
        """A copy with some fields changed (an unknown name is an error that lists the fields)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"unknown calibration option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                            f"the options are {', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def integration(self) -> dict[str, Any]:
        """``build_master`` overrides for every master: none for ``"auto"``, else the rejection and its
        thresholds."""
        if self.rejection == "auto":
            return {}
        options: dict[str, Any] = {"rejection": self.rejection}
        if self.rejection_thresholds is not None:
            options["low"], options["high"] = self.rejection_thresholds
        return options

    def light_options(self) -> dict[str, Any]:
        """The options that shape a calibrated light's pixels, as its provenance (``CALOPTS``) records them."""
        return dict(allow_dark_scaling=self.allow_dark_scaling, dark_optimization=self.dark_optimization,
                    cosmetic=self.cosmetic, k_hot=self.k_hot, k_cold=self.k_cold, pedestal=self.pedestal,
                    overscan=overscan_word(self.overscan))

    def matching(self) -> dict[str, Any]:
        """The rules a light's masters are chosen by (keywords of the matching helpers)."""
        return dict(strict=self.strict, temperature_tolerance=self.temperature_tolerance,
                    allow_dark_scaling=self.allow_dark_scaling)


def calibration_options(options: CalibrationOptions | None = None,
                        changes: Mapping[str, Any] | None = None) -> CalibrationOptions:
    """``options`` (the defaults when None) with ``changes`` applied: what a function taking
    ``options=`` and keyword overrides calibrates with."""
    if options is not None and not isinstance(options, CalibrationOptions):
        raise TypeError(f"options must be a CalibrationOptions, got {type(options).__name__}")
    base = options if options is not None else CalibrationOptions()
    return base.replace(**changes) if changes else base


#: The options of the last :func:`~astrocal_widgets.calibrate.calibrate_session` run, in its output folder.
OPTIONS_FILE = "calibration_options.json"

#: The values a text option can take (the menus of the dashboard and the CLI's choices).
OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "rejection": ("auto", *rejection_names()),
    "overscan": ("auto", "off", "median", "mean", "median-poly3", "mean-poly3"),
}


def _jsonable(options: CalibrationOptions) -> dict[str, Any]:
    values = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    values["overscan"] = overscan_word(options.overscan)  # one word that reads back the same options
    values["library"] = list(options.library)
    if options.rejection_thresholds is not None:
        values["rejection_thresholds"] = list(options.rejection_thresholds)
    return values


def save_options(options: CalibrationOptions, folder: str | os.PathLike) -> Path:
    """Record the options a session was calibrated with: ``folder/calibration_options.json`` (atomic).

    Parameters
    ----------
    options : CalibrationOptions
    folder : path-like
        The session's output folder (the one holding ``masters/`` and ``calibrated/``).

    Returns
    -------
    pathlib.Path
        The file (left as it is when it already holds these options).
    """
    path = Path(folder) / OPTIONS_FILE
    text = json.dumps({"software": f"astrocal-widgets {__version__}", "options": _jsonable(options)}, indent=2)
    text += "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path  # a rerun with the same options writes nothing
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def load_options(folder: str | os.PathLike) -> CalibrationOptions | None:
    """The options recorded by :func:`save_options` in ``folder``, or None when there are none.

    Options this version does not know are left out (a file from a newer version still reads).

    Raises
    ------
    AstrocalError
        Naming the file, when it cannot be read or holds an invalid value.
    """
    from ..errors import AstrocalError

    path = Path(folder) / OPTIONS_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))["options"]
        known = {f.name for f in dataclasses.fields(CalibrationOptions)}
        values = {k: v for k, v in values.items() if k in known}
        if values.get("rejection_thresholds") is not None:
            values["rejection_thresholds"] = tuple(values["rejection_thresholds"])
        return CalibrationOptions(**values)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AstrocalError(f"{path}: not a calibration options file ({exc})") from None
