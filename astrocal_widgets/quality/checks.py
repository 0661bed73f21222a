"""Quality checks of calibration sets: is this set of bias, darks, flats or dark flats any good?

:func:`check_frames` checks one set (a cube, a catalogue group, or every group of a folder) and
:func:`check_session` a whole night, passing the lights' temperature to the dark checks and the
flats' counts to the dark-flat checks. Every check has a status (``pass``, ``warn``, ``fail``), the
measured value, the threshold it was held against, and one sentence saying what it means and what
to do. All statistics come from :func:`astrocal_widgets.quality.stats.frame_statistics`, one lazy
pass over each set.

Thresholds are module constants; each says where it comes from. The recommended counts (bias 50-100,
darks 20-50, flats about 20, dark flats as many as flats) are explained in docs/quality.md; the
temperatures use the 1 °C matching tolerance and dark current doubling about every 6 °C.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import xarray as xr

from ..frames import FrameCatalog, FrameGroup, scan
from ..frames.grouping import TEMPERATURE_TOLERANCE, exposures_match
from ..io.frame_types import FRAME_TYPE_PLURALS
from .stats import HOT_PIXEL_SIGMA, frame_statistics

__all__ = [
    "Check", "CheckLine", "CheckReport", "check_frames", "check_session", "STATUSES",
    "RECOMMENDED_COUNTS", "MINIMUM_COUNT", "FLAT_LEVEL_TARGET", "FLAT_LEVEL_LIMITS", "CFA_LEVEL_WARN",
    "CFA_LEVEL_FAIL", "CLIPPED_WARN", "CLIPPED_FAIL", "FLAT_DRIFT_WARN", "FLAT_DRIFT_FAIL", "FLAT_TREND_TOLERANCE",
    "ZERO_WARN", "ZERO_FAIL", "ZERO_NOISE_REACH_SIGMA", "DEAD_LINE_FRACTION", "PEDESTAL_WARN_SIGMA",
    "PEDESTAL_FAIL_SIGMA", "NOISE_WARN_RATIO", "NOISE_FAIL_RATIO", "WORST_SHOWN",
    "TEMPERATURE_SPREAD_WARN", "TEMPERATURE_SPREAD_FAIL", "LIGHT_TEMPERATURE_WARN", "LIGHT_TEMPERATURE_FAIL",
    "HOT_FRACTION_WARN", "HOT_FRACTION_FAIL", "AMP_GLOW_WARN_SIGMA", "OUTLIER_WARN_SIGMA",
    "OUTLIER_FAIL_SIGMA", "FLAT_SHAPE_WARN", "FLAT_SHAPE_FAIL",
]

STATUSES = ("pass", "warn", "fail")
_RANK = {s: i for i, s in enumerate(STATUSES)}

# --- thresholds ---------------------------------------------------------------------------------

#: Recommended frames per set (low, high), docs/quality.md "How many frames": bias 50-100 (reusable), darks 20-50,
#: flats about 20, dark flats as many as flats (same range as flats when the flats are unknown).
#: Fewer than ``low`` warns; more than ``high`` warns too (the master's noise falls as 1/sqrt(N):
#: beyond the range the extra frames cost time for little gain).
RECOMMENDED_COUNTS: dict[str, tuple[int, int]] = {"bias": (50, 100), "dark": (20, 50), "flat": (15, 40),
                                                  "darkflat": (15, 40)}
#: Fewer frames than this fail: outlier rejection (sigma clipping, ESD) needs at least 5 values.
MINIMUM_COUNT = 5
#: Flat median as a fraction of the ADC range: pass inside (about 1/3 to 2/3, NINA's flat wizard aims at
#: 50 %), warn outside, fail outside FLAT_LEVEL_LIMITS (too little signal / non-linear near saturation).
FLAT_LEVEL_TARGET = (1 / 3, 2 / 3)
FLAT_LEVEL_LIMITS = (0.10, 0.90)
#: Per-CFA-channel flat medians (fraction of the ADC range): warn outside, fail outside.
CFA_LEVEL_WARN = (0.15, 0.80)
CFA_LEVEL_FAIL = (0.05, 0.90)
#: Fraction of a flat's pixels clipped (at zero or at saturation): warn above, fail above. A few
#: cosmic-ray pixels may saturate; a clipped area cannot be corrected by the flat.
CLIPPED_WARN = 1e-4
CLIPPED_FAIL = 1e-2
#: Flat level drift through the series, (max - min) / median of the frame medians. Only a level that
#: swings back and forth fails beyond FLAT_DRIFT_FAIL: a steady trend in time (twilight sky flats) is
#: removed by the per-frame multiplicative normalisation and warns at most. An additive level that
#: drifts (bias pedestal, dark level) cannot be normalised away: pedestal_stability and outlier fail it.
FLAT_DRIFT_WARN = 0.10
FLAT_DRIFT_FAIL = 0.30
#: Steps back against the trend a steady drift may take, as a fraction of the set's level.
FLAT_TREND_TOLERANCE = 0.01
#: Fraction of bias/dark pixels at zero that the noise explains (clipped noise: the offset is too low):
#: any warns, above ZERO_FAIL fails. Zeros the noise cannot explain are a defect and only warn.
ZERO_WARN = 0.0
ZERO_FAIL = 1e-4
#: Zeros are clipped noise only when the frame's median is less than this many robust sigmas above zero:
#: beyond 5 sigma a Gaussian puts under 3e-7 of the pixels at zero (about one pixel in 3 megapixels).
#: Zeros further down are structural (dead rows or columns, a border, dead pixels).
ZERO_NOISE_REACH_SIGMA = 5.0
#: A row or column with at least this fraction of its pixels at zero is a dead line.
DEAD_LINE_FRACTION = 0.5
#: Bias pedestal stability: peak-to-peak of the frame medians in units of the frames' robust sigma.
PEDESTAL_WARN_SIGMA = 0.5
PEDESTAL_FAIL_SIGMA = 2.0
#: A bias frame's noise (robust sigma: read noise plus fixed pattern) against the set's median noise.
NOISE_WARN_RATIO = 1.25
NOISE_FAIL_RATIO = 2.0
#: Sensor temperature spread within a dark set, °C (frames/grouping TEMPERATURE_TOLERANCE = 1 °C).
TEMPERATURE_SPREAD_WARN = 0.5
TEMPERATURE_SPREAD_FAIL = TEMPERATURE_TOLERANCE
#: Darks' temperature from the lights', °C: within the 1 °C matching tolerance passes; up to 3 °C warns
#: (dark current x 1.41 at 6 °C per doubling); beyond fails.
LIGHT_TEMPERATURE_WARN = TEMPERATURE_TOLERANCE
LIGHT_TEMPERATURE_FAIL = 3.0
#: Fraction of hot pixels per dark frame (HOT_PIXEL_SIGMA robust sigmas above the local level).
HOT_FRACTION_WARN = 0.005
HOT_FRACTION_FAIL = 0.02
#: Amp glow: brightest corner cell above the centre, in robust sigmas of the frames.
AMP_GLOW_WARN_SIGMA = 10.0
#: Outlier frames of bias/darks/dark flats: level or spatial-structure departure from the set, in robust
#: sigmas of a frame (a light leak, a changed offset).
OUTLIER_WARN_SIGMA = 1.0
OUTLIER_FAIL_SIGMA = 3.0
#: Outlier flats: largest relative departure of a grid cell of a frame's normalised shape from the
#: set's median shape (a shadow, a moved panel, a passing cloud).
FLAT_SHAPE_WARN = 0.01
FLAT_SHAPE_FAIL = 0.03



# --- results ------------------------------------------------------------------------------------


@dataclass
class Check:
    """One check of one frame or of a whole set.

    Attributes
    ----------
    name : str
        e.g. ``flat_level``, ``frame_count``, ``outlier``.
    scope : {'frame', 'set'}
    frame : str or None
        The frame's path for a per-frame check.
    status : {'pass', 'warn', 'fail'}
    value : float
        The measured value (in ``unit``).
    threshold : float or tuple
        What the value was held against (a limit, or (low, high)).
    explanation : str
        One sentence: what was measured and, unless it passed, the fix.
    unit : str
        Unit of ``value`` and ``threshold``.
    group : str
        The set the check belongs to (a catalogue group label).
    """

    name: str
    scope: str
    frame: str | None
    status: str
    value: float
    threshold: Any
    explanation: str
    unit: str = ""
    group: str = ""


@dataclass
class CheckReport:
    """The checks of one set or a whole session."""

    checks: list[Check] = field(default_factory=list)

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def __add__(self, other: "CheckReport") -> "CheckReport":
        return CheckReport(self.checks + other.checks)

    @property
    def status(self) -> str:
        """The worst status of all checks (``pass`` for an empty report)."""
        return max((c.status for c in self.checks), key=_RANK.get, default="pass")

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    def get(self, name: str, frame: str | os.PathLike | None = None, scope: str | None = None) -> list[Check]:
        """Checks by name (and frame path or file name, or scope)."""
        out = [c for c in self.checks if c.name == name and (scope is None or c.scope == scope)]
        if frame is not None:
            f = str(frame)
            out = [c for c in out if c.frame is not None and (c.frame == f or Path(c.frame).name == Path(f).name)]
        return out

    def one(self, name: str, frame: str | os.PathLike | None = None) -> Check:
        """The single check of that name (set scope unless ``frame`` is given)."""
        found = self.get(name, frame, None if frame is not None else "set")
        if len(found) != 1:
            raise KeyError(f"{len(found)} checks named {name!r}" + (f" for {frame}" if frame else ""))
        return found[0]

    @property
    def table(self) -> pd.DataFrame:
        """One row per check: group, name, scope, frame, status, value, threshold, unit, explanation."""
        columns = ["group", "name", "scope", "frame", "status", "value", "threshold", "unit", "explanation"]
        return pd.DataFrame([asdict(c) for c in self.checks], columns=columns)

    def lines(self) -> list["CheckLine"]:
        """The checks aggregated: one line per set check, one per per-frame check of a set.

        A check that did not pass on 19 of 19 frames is one line ("19 of 19 frames ..."), naming the
        worst frames and explaining the worst; :attr:`table` keeps every frame's result.
        """
        grouped: dict[tuple[str, str, str], list[Check]] = {}
        for c in self.checks:
            key = (c.group, c.name, c.scope) if c.scope != "set" else (c.group, c.name, f"set {id(c)}")
            grouped.setdefault(key, []).append(c)
        return [CheckLine.of(cs) for cs in grouped.values()]

    def summary_table(self) -> pd.DataFrame:
        """One row per :meth:`lines` entry: group, name, status, frames, values, worst, explanation."""
        columns = ["group", "name", "status", "frames", "values", "worst", "explanation"]
        rows = [{"group": l.group, "name": l.name, "status": l.status, "frames": l.frames_text, "values": l.span,
                 "worst": ", ".join(Path(f).name for f in l.worst), "explanation": l.explanation}
                for l in self.lines()]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> str:
        """Plain text: overall status, then per set one line per check (per-frame checks aggregated)."""
        counts = {s: sum(c.status == s for c in self.checks) for s in STATUSES}
        lines = [f"OVERALL {self.status.upper()}: {counts['fail']} failed, {counts['warn']} warnings, "
                 f"{counts['pass']} passed"]
        by_group: dict[str, list[CheckLine]] = {}
        for line in self.lines():
            by_group.setdefault(line.group, []).append(line)
        for label, entries in by_group.items():
            worst = max((e.status for e in entries), key=_RANK.get)
            lines.append(f"{worst.upper():4} {label or 'frames'}")
            lines += [f"  {e.text()}" for e in entries]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


#: Frames named in an aggregated line of a per-frame check that did not pass.
WORST_SHOWN = 3


@dataclass
class CheckLine:
    """One check of one set, its per-frame results aggregated.

    Attributes
    ----------
    group, name, scope, unit : str
        As the checks it aggregates.
    status : str
        The worst status of its checks.
    n_frames : int
        Frames checked (1 for a set check).
    counts : dict
        Checks per status.
    worst : list of str
        Up to :data:`WORST_SHOWN` frames that did not pass, worst first.
    explanation : str
        The worst check's explanation (the set check's for a set check).
    low, high : float
        The range of the measured values.
    """

    group: str
    name: str
    scope: str
    status: str
    n_frames: int
    counts: dict[str, int]
    worst: list[str]
    explanation: str
    unit: str = ""
    low: float = math.nan
    high: float = math.nan

    @classmethod
    def of(cls, checks: list[Check]) -> "CheckLine":
        first = checks[0]
        counts = {s: sum(c.status == s for c in checks) for s in STATUSES}
        status = max((c.status for c in checks), key=_RANK.get)
        bad = sorted((c for c in checks if c.status != "pass"), key=_badness, reverse=True)
        values = [c.value for c in checks if isinstance(c.value, (int, float)) and math.isfinite(c.value)]
        lead = bad[0] if bad else first
        return cls(first.group, first.name, first.scope, status, len(checks), counts,
                   [c.frame for c in bad[:WORST_SHOWN] if c.frame], lead.explanation, first.unit,
                   min(values) if values else math.nan, max(values) if values else math.nan)

    @property
    def frames_text(self) -> str:
        """``'set'``, ``'all 20 pass'``, ``'19 of 19 fail'`` or ``'2 fail and 3 warn of 19'``."""
        if self.scope == "set":
            return "set"
        n = self.n_frames
        fail, warn = self.counts["fail"], self.counts["warn"]
        if not fail and not warn:
            return f"all {n} pass"
        if fail and warn:
            return f"{fail} fail and {warn} warn of {n}"
        return f"{fail or warn} of {n} {'fail' if fail else 'warn'}"

    @property
    def span(self) -> str:
        """The measured values' range in words ('' when none is finite)."""
        return _span(self.low, self.high, self.unit) if math.isfinite(self.low) else ""

    def text(self) -> str:
        """The line as the summary prints it."""
        if self.scope == "set":
            return f"{self.status.upper():4} {self.name}: {self.explanation}"
        span = f" ({self.span})" if self.span else ""
        if self.status == "pass":
            return f"PASS {self.name}: all {self.n_frames} frames pass{span}"
        fail, warn, n = self.counts["fail"], self.counts["warn"], self.n_frames
        if fail and warn:
            counted = f"{fail} of {n} frames fail, {warn} warn"
        else:
            counted = f"{fail or warn} of {n} frames {'fail' if fail else 'warn'}"
        names = ", ".join(Path(f).name for f in self.worst)
        if fail + warn == 1:
            named = f" [{names}]" if names else ""
        else:
            rest = fail + warn - len(self.worst)
            named = f"; worst {names}" + (f" and {rest} more" if rest > 0 else "") if names else ""
        return f"{self.status.upper():4} {self.name}: {counted}{span}{named}: {self.explanation}"


def _badness(c: Check) -> tuple[int, float]:
    """Sort key of a per-frame check: status first, then how far its value is from passing."""
    value = c.value if isinstance(c.value, (int, float)) and math.isfinite(c.value) else 0.0
    threshold = c.threshold
    if isinstance(threshold, tuple) and len(threshold) == 4:  # a band: distance from its middle
        value = abs(value - 0.5 * (threshold[1] + threshold[2]))
    return _RANK[c.status], value


def _fmt(v: float) -> str:
    if v == 0 or (abs(v) >= 0.01 and abs(v) < 1e5):
        return f"{v:.4g}"
    return f"{v:.3g}"


def _span(lo: float, hi: float, unit: str) -> str:
    if unit == "fraction":
        return _pct(lo) if _pct(lo) == _pct(hi) else f"{_pct(lo)} to {_pct(hi)}"
    unit = {"adu": "ADU", "degC": "°C"}.get(unit, unit)
    return (f"{_fmt(lo)}" if _fmt(lo) == _fmt(hi) else f"{_fmt(lo)} to {_fmt(hi)}") + (f" {unit}" if unit else "")


def _pct(v: float) -> str:
    return f"{100 * v:.3g} %"


def _grade(value: float, warn: float, fail: float) -> str:
    """Status of a value that is bad when large."""
    if not math.isfinite(value):
        return "warn"
    return "fail" if value > fail else "warn" if value > warn else "pass"


# --- per-kind checks ----------------------------------------------------------------------------


class _Ctx:
    def __init__(self, cube: xr.DataArray, stats: xr.Dataset, kind: str, group: str):
        self.cube, self.stats, self.kind, self.group = cube, stats, kind, group
        self.paths = [str(p) for p in cube["path"].values] if "path" in cube.coords else \
            [f"frame {i}" for i in range(cube.sizes["frame"])]
        self.checks: list[Check] = []
        self.words = FRAME_TYPE_PLURALS.get(kind, "frames")

    def add(self, name: str, status: str, value: float, threshold: Any, explanation: str, unit: str = "",
            frame: int | None = None) -> None:
        self.checks.append(Check(name, "set" if frame is None else "frame",
                                 None if frame is None else self.paths[frame], status,
                                 float(value) if value is not None else math.nan, threshold, explanation, unit,
                                 self.group))

    @property
    def noise(self) -> float:
        """The set's typical per-frame robust sigma (ADU), at least 0.5 ADU (quantisation)."""
        return max(float(np.nanmedian(self.stats["sigma"].values)), 0.5)


def _check_count(ctx: _Ctx, n: int, expected: int | None) -> None:
    kind = ctx.kind
    if kind == "light" or kind not in RECOMMENDED_COUNTS:
        ctx.add("frame_count", "pass", n, None, f"{n} {ctx.words}; no recommended count for this kind.", "frames")
        return
    low, high = RECOMMENDED_COUNTS[kind]
    if kind == "darkflat" and expected:
        low, high = expected, max(2 * expected, high)
    rng = (low, high)
    if n < MINIMUM_COUNT:
        status, text = "fail", (f"Only {n} {ctx.words}: outlier rejection needs at least {MINIMUM_COUNT}; take "
                                f"{low}-{high} (see How many frames in docs/quality.md).")
    elif n < low:
        why = f"as many as the {expected} flats" if kind == "darkflat" and expected else f"{low}-{high} are recommended"
        status, text = "warn", (f"{n} {ctx.words}, {why}: take {low - n} more so the master adds less noise "
                                f"(it falls as 1/sqrt(N)).")
    elif n > high:
        status, text = "warn", (f"{n} {ctx.words}, more than the recommended {low}-{high}: the master's noise falls "
                                f"only as 1/sqrt(N), so fewer frames would save time for almost the same master.")
    else:
        status, text = "pass", f"{n} {ctx.words}, within the recommended {low}-{high}."
    ctx.add("frame_count", status, n, rng, text, "frames")


def _check_headers(ctx: _Ctx) -> None:
    cube, kind = ctx.cube, ctx.kind
    missing, inconsistent = [], []

    def values(name: str) -> np.ndarray | None:
        return cube[name].values if name in cube.coords else None

    def is_missing(v: Any) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v == "") or \
            (isinstance(v, np.datetime64) and np.isnat(v))

    required = ["exposure", "date_obs"]
    if kind in ("bias", "dark", "darkflat"):
        required.append("temperature")
    if kind in ("flat", "light"):
        required.append("filter")
    for name in required:
        vals = values(name)
        if vals is None:
            missing.append(f"{name} (all frames)")
            continue
        n_miss = sum(is_missing(v) for v in vals)
        if n_miss:
            missing.append(f"{name} ({n_miss} of {len(vals)} frames)")
    gain, iso = values("gain"), values("iso")
    if gain is not None and iso is not None and all(is_missing(g) and is_missing(i) for g, i in zip(gain, iso)):
        missing.append("gain or ISO")

    exact = ["frame_type", "gain", "offset", "iso", "xbinning", "ybinning", "set_temperature", "instrument",
             "bayer_pattern"]
    if kind in ("flat", "light"):
        exact.append("filter")
    for name in exact:
        vals = values(name)
        if vals is None:
            continue
        present = {(round(v, 6) if isinstance(v, float) else v) for v in vals if not is_missing(v)}
        if len(present) > 1:
            inconsistent.append(f"{name} ({', '.join(sorted(map(str, present)))})")
    if kind != "flat":
        exps = [float(v) for v in (values("exposure") if values("exposure") is not None else []) if not is_missing(v)]
        if exps and not all(exposures_match(min(exps), e) for e in exps):
            inconsistent.append(f"exposure ({min(exps):g} to {max(exps):g} s)")
    n_problems = len(missing) + len(inconsistent)
    if inconsistent:
        text = (f"Headers differ within the set: {'; '.join(inconsistent)}"
                + (f", and are missing: {'; '.join(missing)}" if missing else "")
                + f": split the {ctx.words} by these settings (scan(...).groups() does) or retake the odd ones.")
        status = "fail"
    elif missing:
        text = (f"Headers are missing {'; '.join(missing)}: matching falls back on what is known, so set the "
                f"capture program to write these keywords (NINA, SGP and APT do when the camera reports them).")
        status = "warn"
    else:
        text = "Headers are complete and consistent."
        status = "pass"
    ctx.add("headers", status, n_problems, 0, text, "problems")


@dataclass
class _Zeros:
    """A frame's pixels at zero, split into dead lines, isolated zeros and clipped noise."""

    total: int
    dead_rows: list[int]
    dead_cols: list[int]
    in_lines: int  # zeros on the dead rows and columns
    rest: int  # the other zeros
    predicted: float  # fraction of pixels the frame's noise puts at zero (Gaussian tail below 0.5 ADU)
    noise_reaches_zero: bool

    @property
    def clipped(self) -> int:
        """Zeros the noise explains: the offset is too low for them."""
        return self.rest if self.noise_reaches_zero else 0

    @property
    def structural(self) -> int:
        """Zeros the noise cannot explain: dead rows, columns and pixels (a defect, not the offset)."""
        return self.in_lines + (0 if self.noise_reaches_zero else self.rest)

    def describe_structure(self, height: int, width: int) -> str:
        parts = []
        for lines, word, size in ((self.dead_rows, "row", height), (self.dead_cols, "column", width)):
            if lines:
                border = " at the border" if lines[0] == 0 or lines[-1] == size - 1 else ""
                parts.append(f"{len(lines)} dead {word}{'s' if len(lines) > 1 else ''} "
                             f"({word}{'s' if len(lines) > 1 else ''} {_ranges(lines)}{border})")
        isolated = 0 if self.noise_reaches_zero else self.rest
        if isolated:
            parts.append(f"{isolated} isolated pixel{'s' if isolated > 1 else ''}")
        return " and ".join(parts)


def _ranges(values: list[int]) -> str:
    """``[0, 1, 2, 7]`` -> ``'0-2, 7'`` (at most 6 runs, then ``...``)."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:6])
    return text + (", ..." if len(runs) > 6 else "")


def _zeros(st: xr.Dataset, i: int) -> _Zeros:
    """Where frame ``i``'s zeros are and whether its noise explains them."""
    total = int(st["n_zero"][i])
    median, sigma = float(st["median"][i]), float(st["sigma"][i])
    if total == 0:
        return _Zeros(0, [], [], 0, 0, 0.0, False)
    rows = np.asarray(st["zero_rows"][i]) if "zero_rows" in st else np.zeros(0)
    cols = np.asarray(st["zero_cols"][i]) if "zero_cols" in st else np.zeros(0)
    height, width = len(rows), len(cols)
    dead_rows = np.flatnonzero(rows >= DEAD_LINE_FRACTION * width).tolist() if width else []
    dead_cols = np.flatnonzero(cols >= DEAD_LINE_FRACTION * height).tolist() if height else []
    # Where a dead row crosses a dead column the zero is counted twice.
    in_lines = int(rows[dead_rows].sum() + cols[dead_cols].sum()) - len(dead_rows) * len(dead_cols)
    in_lines = min(max(in_lines, 0), total)
    sigma = max(sigma, 0.5) if math.isfinite(sigma) else 0.5
    distance = (median - 0.5) / sigma if math.isfinite(median) else 0.0
    predicted = 0.5 * math.erfc(distance / math.sqrt(2))
    return _Zeros(total, dead_rows, dead_cols, in_lines, total - in_lines, predicted,
                  distance < ZERO_NOISE_REACH_SIGMA)


def _check_zero(ctx: _Ctx) -> None:
    st = ctx.stats
    height, width = int(st.attrs.get("height", 0)), int(st.attrs.get("width", 0))
    for i in range(st.sizes["frame"]):
        n = float(st["n_pixels"][i])
        zeros = _zeros(st, i)
        frac = zeros.total / n
        median, sigma = float(st["median"][i]), float(st["sigma"][i])
        clipped = zeros.clipped / n
        status = "fail" if clipped > ZERO_FAIL else "warn" if clipped > ZERO_WARN else "pass"
        texts = []
        if zeros.clipped:
            texts.append(f"{_pct(clipped)} of the pixels are at zero (median {median:.0f} ADU, noise {sigma:.3g} "
                         f"ADU, which puts {_pct(zeros.predicted)} at zero): the offset is too low and the noise "
                         f"is clipped, so raise the camera's offset and retake the {ctx.words}.")
        if zeros.structural:
            status = max(status, "warn", key=_RANK.get)
            where = zeros.describe_structure(height, width)
            texts.append(f"{where.capitalize()} read zero ({_pct(zeros.structural / n)} of the pixels), far "
                         f"below what the noise reaches (median {median:.0f} ADU, noise {sigma:.3g} ADU): a sensor "
                         f"or readout defect, not a low offset; these pixels carry no signal, so crop or mask them "
                         f"in the lights.")
        if not texts:
            texts.append("No pixel at zero: the offset keeps the noise above the ADC floor.")
        ctx.add("zero_pixels", status, frac, (ZERO_WARN, ZERO_FAIL), " ".join(texts), "fraction", frame=i)


def _check_pedestal(ctx: _Ctx) -> None:
    med = ctx.stats["median"].values
    ptp = float(np.nanmax(med) - np.nanmin(med))
    noise = ctx.noise
    thr = (PEDESTAL_WARN_SIGMA * noise, PEDESTAL_FAIL_SIGMA * noise)
    status = _grade(ptp, *thr)
    if status == "pass":
        text = f"The bias pedestal is stable: frame medians span {ptp:.2g} ADU (noise {noise:.3g} ADU)."
    else:
        text = (f"Frame medians span {ptp:.3g} ADU, {ptp / noise:.2g} times the noise: the pedestal moved "
                f"(offset changed, camera warming up or a readout mode change), so keep the camera settings fixed, "
                f"let it settle and retake the bias frames.")
    ctx.add("pedestal_stability", status, ptp, thr, text, "adu")


def _check_read_noise(ctx: _Ctx) -> None:
    st = ctx.stats
    sig = st["sigma"].values
    ref = float(np.nanmedian(sig))
    gain = _egain(ctx.cube)
    for i, s in enumerate(sig):
        ratio = float(s / ref) if ref > 0 else 1.0
        status = _grade(ratio, NOISE_WARN_RATIO, NOISE_FAIL_RATIO)
        e = f" ({s * gain:.3g} e-)" if gain else ""
        if status == "pass":
            text = f"Noise {s:.3g} ADU{e} (read noise with fixed pattern), like the rest of the set."
        else:
            text = (f"Noise {s:.3g} ADU{e} is {ratio:.2g} times the set's {ref:.3g} ADU: interference or a changed "
                    f"readout mode, so drop this frame (rejection may not catch a frame-wide excess).")
        ctx.add("read_noise", status, float(s), (NOISE_WARN_RATIO * ref, NOISE_FAIL_RATIO * ref), text, "adu", frame=i)


def _egain(cube: xr.DataArray) -> float | None:
    try:
        g = cube.astrocal.header(0).get("EGAIN")
    except Exception:  # noqa: BLE001
        return None
    return float(g) if isinstance(g, (int, float)) and g > 0 else None


def _check_temperature_spread(ctx: _Ctx) -> None:
    if "temperature" not in ctx.cube.coords:
        return
    t = np.asarray(ctx.cube["temperature"].values, float)
    t = t[np.isfinite(t)]
    if not len(t):
        ctx.add("temperature_spread", "warn", math.nan, (TEMPERATURE_SPREAD_WARN, TEMPERATURE_SPREAD_FAIL),
                "No sensor temperature in the headers: the spread cannot be checked, so use a cooled camera that "
                "reports CCD-TEMP.", "degC")
        return
    spread = float(t.max() - t.min())
    status = _grade(spread, TEMPERATURE_SPREAD_WARN, TEMPERATURE_SPREAD_FAIL)
    if status == "pass":
        text = f"Sensor temperature steady within {spread:.2g} °C ({t.min():.2f} to {t.max():.2f} °C)."
    else:
        text = (f"Sensor temperature spans {spread:.2g} °C ({t.min():.2f} to {t.max():.2f} °C): the cooler was not "
                f"settled, so wait for the set point to stabilise and retake the {ctx.words} (dark current doubles "
                f"about every 6 °C).")
    ctx.add("temperature_spread", status, spread, (TEMPERATURE_SPREAD_WARN, TEMPERATURE_SPREAD_FAIL), text, "degC")


def _check_light_temperature(ctx: _Ctx, lights_temperature: float) -> None:
    t = np.asarray(ctx.cube["temperature"].values, float) if "temperature" in ctx.cube.coords else np.array([])
    t = t[np.isfinite(t)]
    if not len(t) or not math.isfinite(lights_temperature):
        return
    dark_t = float(np.median(t))
    dist = abs(dark_t - lights_temperature)
    status = _grade(dist, LIGHT_TEMPERATURE_WARN, LIGHT_TEMPERATURE_FAIL)
    factor = 2 ** ((dark_t - lights_temperature) / 6.0)
    if status == "pass":
        text = f"Darks at {dark_t:.1f} °C match the lights at {lights_temperature:.1f} °C."
    else:
        text = (f"Darks at {dark_t:.1f} °C are {dist:.1f} °C from the lights at {lights_temperature:.1f} °C "
                f"(dark current x {factor:.2g}): retake the darks at the lights' set point (or use dark "
                f"optimisation, which cannot fix amp glow and hot pixels exactly).")
    ctx.add("lights_temperature", status, dist, (LIGHT_TEMPERATURE_WARN, LIGHT_TEMPERATURE_FAIL), text, "degC")


def _check_hot(ctx: _Ctx) -> None:
    st = ctx.stats
    for i in range(st.sizes["frame"]):
        frac = float(st["hot_fraction"][i])
        status = _grade(frac, HOT_FRACTION_WARN, HOT_FRACTION_FAIL)
        if status == "pass":
            text = f"{_pct(frac)} hot pixels (over {HOT_PIXEL_SIGMA:g} sigma above the local level)."
        else:
            text = (f"{_pct(frac)} hot pixels (over {HOT_PIXEL_SIGMA:g} sigma above the local level): the sensor "
                    f"is too warm or the exposure too long, so cool the camera further and dither the lights so "
                    f"that rejection removes what the dark leaves.")
        ctx.add("hot_pixels", status, frac, (HOT_FRACTION_WARN, HOT_FRACTION_FAIL), text, "fraction", frame=i)


def _check_amp_glow(ctx: _Ctx) -> None:
    grid = np.nanmedian(ctx.stats["grid"].values, axis=0)  # (gy, gx), median over frames
    g = grid.shape[0]
    c0, c1 = g // 2 - 1, g // 2 + 1
    centre = float(np.nanmedian(grid[c0:c1, c0:c1]))
    corners = {"top-left": grid[0, 0], "top-right": grid[0, -1], "bottom-left": grid[-1, 0],
               "bottom-right": grid[-1, -1]}
    where, level = max(corners.items(), key=lambda kv: kv[1])
    excess = float(level - centre)
    noise = ctx.noise
    sig = excess / noise
    status = "warn" if sig > AMP_GLOW_WARN_SIGMA else "pass"
    if status == "pass":
        text = f"No significant amp glow: the brightest corner ({where}) is {excess:.3g} ADU above the centre."
    else:
        text = (f"Amp glow: the {where} corner is {excess:.3g} ADU ({sig:.3g} sigma) above the centre: use darks at "
                f"exactly the lights' exposure, gain and temperature, without scaling, so the glow subtracts cleanly.")
    ctx.add("amp_glow", status, sig, AMP_GLOW_WARN_SIGMA, text, "sigma")


def _check_outliers_dark(ctx: _Ctx) -> None:
    st = ctx.stats
    n = st.sizes["frame"]
    if n < 3:
        return
    med = st["median"].values
    grid = st["grid"].values
    ref_level = float(np.nanmedian(med))
    structure = grid - med[:, None, None]
    ref_structure = np.nanmedian(structure, axis=0)
    noise = ctx.noise
    thr = (OUTLIER_WARN_SIGMA * noise, OUTLIER_FAIL_SIGMA * noise)
    for i in range(n):
        level_dev = float(med[i] - ref_level)
        struct_dev = float(np.nanmax(np.abs(structure[i] - ref_structure)))
        value = max(abs(level_dev), struct_dev)
        status = _grade(value, *thr)
        if status == "pass":
            text = f"Like the rest of the set (within {value:.2g} ADU)."
        else:
            what = (f"its level is {level_dev:+.3g} ADU from the set's" if abs(level_dev) >= struct_dev
                    else f"part of the frame departs by {struct_dev:.3g} ADU from the set's pattern")
            text = (f"Outlier: {what} ({value / noise:.2g} sigma), as a light leak or a changed offset would do: "
                    f"cover the telescope or camera properly and drop or retake this frame.")
        ctx.add("outlier", status, value, thr, text, "adu", frame=i)


def _check_flat_levels(ctx: _Ctx, adc_max: float) -> None:
    st = ctx.stats
    lo_t, hi_t = FLAT_LEVEL_TARGET
    lo_f, hi_f = FLAT_LEVEL_LIMITS
    for i in range(st.sizes["frame"]):
        frac = float(st["median"][i]) / adc_max
        if frac < lo_f or frac > hi_f:
            status = "fail"
        elif frac < lo_t or frac > hi_t:
            status = "warn"
        else:
            status = "pass"
        if status == "pass":
            text = f"Flat median is {_pct(frac)} of the ADC range, in the target {lo_t:.0%}-{hi_t:.0%}."
        elif frac < lo_t:
            text = (f"Flat median is {_pct(frac)} of the ADC range: lengthen the flat exposure (or brighten the "
                    f"panel) to reach about 50 % (NINA's flat wizard aims at 50 %).")
        else:
            text = (f"Flat median is {_pct(frac)} of the ADC range: shorten the flat exposure (or dim the panel) to "
                    f"reach about 50 %, away from the sensor's non-linear top (NINA's flat wizard aims at 50 %).")
        ctx.add("flat_level", status, frac, (FLAT_LEVEL_LIMITS[0], lo_t, hi_t, FLAT_LEVEL_LIMITS[1]), text,
                "fraction", frame=i)


def _check_clipped(ctx: _Ctx) -> None:
    st = ctx.stats
    height, width = int(st.attrs.get("height", 0)), int(st.attrs.get("width", 0))
    for i in range(st.sizes["frame"]):
        n = float(st["n_pixels"][i])
        zeros = _zeros(st, i)
        for name, count, fix in (
            ("clipped_zero", float(zeros.clipped), "raise the camera's offset"),
            ("clipped_saturation", float(st["n_saturated"][i]), "shorten the flat exposure or dim the panel"),
        ):
            frac = count / n
            status = _grade(frac, CLIPPED_WARN, CLIPPED_FAIL)
            where = "at zero" if name == "clipped_zero" else "at saturation"
            if status == "pass":
                text = f"{_pct(frac)} of the pixels {where}."
            else:
                text = (f"{_pct(frac)} of the pixels are clipped {where}: clipped pixels carry no flat-field "
                        f"information, so {fix} and retake the flats.")
            if name == "clipped_zero" and zeros.structural:
                # Dead lines read zero at any exposure: a defect of the sensor, not clipping.
                status = max(status, "warn", key=_RANK.get)
                text += (f" {zeros.describe_structure(height, width).capitalize()} read zero, far below the flat's "
                         f"level: a sensor or readout defect, not clipping; crop or mask these pixels in the "
                         f"lights.")
            ctx.add(name, status, frac, (CLIPPED_WARN, CLIPPED_FAIL), text, "fraction", frame=i)


def _time_order(cube: xr.DataArray) -> np.ndarray:
    """Frame indices in order of DATE-OBS (the files' order where a date is missing)."""
    n = cube.sizes["frame"]
    if "date_obs" not in cube.coords:
        return np.arange(n)
    dates = pd.to_datetime(pd.Series(cube["date_obs"].values), errors="coerce")
    if dates.isna().any():
        return np.arange(n)
    return np.argsort(dates.values, kind="stable")


def _is_steady_trend(levels: np.ndarray, tolerance: float) -> bool:
    """True when ``levels`` only fall, or only rise, allowing steps back of at most ``tolerance``."""
    steps = np.diff(levels[np.isfinite(levels)])
    return bool(len(steps)) and (bool(np.all(steps <= tolerance)) or bool(np.all(steps >= -tolerance)))


def _check_flat_drift(ctx: _Ctx) -> None:
    """Level drift of flats: a steady trend warns, an unsteady swing beyond FLAT_DRIFT_FAIL fails.

    Each flat is divided by its own level before stacking (multiplicative normalisation), so a level
    that falls steadily (twilight sky flats) or rises (a panel warming up) costs only the signal of
    the fainter frames. A level that jumps back and forth means an unsteady source (a flickering panel,
    passing clouds, mixed light sources), whose illumination pattern rarely stays the same.
    """
    med = ctx.stats["median"].values
    ref = float(np.nanmedian(med))
    drift = float((np.nanmax(med) - np.nanmin(med)) / ref) if ref > 0 else math.nan
    status = _grade(drift, FLAT_DRIFT_WARN, FLAT_DRIFT_FAIL)
    in_time = med[_time_order(ctx.cube)]
    steady = _is_steady_trend(in_time, FLAT_TREND_TOLERANCE * ref)
    span = f"({np.nanmin(med):.0f} to {np.nanmax(med):.0f} ADU)"
    if status == "pass":
        text = f"Flat levels stay within {_pct(drift)} through the series."
    elif steady:
        status = "warn"
        direction = "falls" if in_time[-1] < in_time[0] else "rises"
        text = (f"The flat level {direction} steadily by {_pct(drift)} through the series {span}, as twilight sky "
                f"flats or a warming panel do: each flat is normalised by its own level before stacking, so "
                f"this is harmless as long as every frame stays in the target range; a steady panel or "
                f"auto-exposure per flat (NINA, SGP) keeps the level constant.")
    else:
        text = (f"Flat levels swing by {_pct(drift)} through the series {span}, back and forth: the light source "
                f"was not steady (a flickering panel, passing clouds, mixed sources), so its pattern may have "
                f"changed too; use a steady panel and retake the flats.")
    ctx.add("level_drift", status, drift, (FLAT_DRIFT_WARN, FLAT_DRIFT_FAIL), text, "fraction")


def _check_cfa(ctx: _Ctx, adc_max: float) -> None:
    st = ctx.stats
    if "cfa_median" not in st:
        return
    levels = np.nanmedian(st["cfa_median"].values, axis=0) / adc_max  # R, G, B
    names = list(st["cfa"].values)
    weakest, strongest = int(np.argmin(levels)), int(np.argmax(levels))
    lo, hi = float(levels[weakest]), float(levels[strongest])

    def grade_low(v: float) -> str:
        return "fail" if v < CFA_LEVEL_FAIL[0] else "warn" if v < CFA_LEVEL_WARN[0] else "pass"

    def grade_high(v: float) -> str:
        return "fail" if v > CFA_LEVEL_FAIL[1] else "warn" if v > CFA_LEVEL_WARN[1] else "pass"

    s_lo, s_hi = grade_low(lo), grade_high(hi)
    listing = ", ".join(f"{n} {_pct(v)}" for n, v in zip(names, levels))
    if _RANK[s_hi] > _RANK[s_lo]:
        status, value = s_hi, hi
        text = (f"Per-channel flat levels {listing}: the {names[strongest]} channel is near saturation, so shorten "
                f"the exposure until it is below {CFA_LEVEL_WARN[1]:.0%}.")
    else:
        status, value = s_lo, lo
        if status == "pass":
            text = f"Per-channel flat levels {listing}: every channel has enough signal."
        else:
            text = (f"Per-channel flat levels {listing}: the {names[weakest]} channel is starved, so lengthen the "
                    f"exposure (or use a whiter panel) until it reaches {CFA_LEVEL_WARN[0]:.0%} without saturating "
                    f"the others.")
    ctx.add("cfa_levels", status, value, (CFA_LEVEL_FAIL[0], CFA_LEVEL_WARN[0], CFA_LEVEL_WARN[1], CFA_LEVEL_FAIL[1]),
            text, "fraction")


def _check_outliers_flat(ctx: _Ctx) -> None:
    st = ctx.stats
    n = st.sizes["frame"]
    if n < 3:
        return
    med = st["median"].values
    shape = st["grid"].values / med[:, None, None]
    ref = np.nanmedian(shape, axis=0)
    for i in range(n):
        rel = np.abs(shape[i] / ref - 1)
        dev = float(np.nanmax(rel))
        status = _grade(dev, FLAT_SHAPE_WARN, FLAT_SHAPE_FAIL)
        if status == "pass":
            text = f"Illumination pattern like the rest of the set (within {_pct(dev)})."
        else:
            gy, gx = np.unravel_index(int(np.nanargmax(rel)), rel.shape)
            text = (f"Outlier: the illumination pattern departs by {_pct(dev)} (grid cell row {gy}, column {gx}) "
                    f"from the set's, as a shadow, a moved panel or a cloud would do: drop this flat or retake it.")
        ctx.add("outlier", status, dev, (FLAT_SHAPE_WARN, FLAT_SHAPE_FAIL), text, "fraction", frame=i)


# --- entry points -------------------------------------------------------------------------------


def _kind_of(cube: xr.DataArray) -> str:
    if "frame_type" not in cube.coords:
        raise ValueError("the cube has no frame_type coordinate: pass kind='bias', 'dark', 'darkflat' or 'flat'")
    types = [str(t) for t in cube["frame_type"].values if str(t)]
    if not types:
        raise ValueError("the frames' type is unknown (no IMAGETYP, no type in the name): pass kind=...")
    return max(set(types), key=types.count)


def check_frames(cube_or_group: Any, *, kind: str | None = None, lights_temperature: float | None = None,
                 adc_max: float | None = None, expected_count: int | None = None,
                 statistics: xr.Dataset | None = None) -> CheckReport:
    """Check one calibration set (or each set of a folder).

    Parameters
    ----------
    cube_or_group : xarray.DataArray, FrameGroup, or folder
        A cube from :func:`astrocal_widgets.open_frames`, a catalogue group (opened lazily), or a folder,
        checked set by set as :func:`check_session` does.
    kind : {'bias', 'dark', 'darkflat', 'flat', 'light'}, optional
        Default: the ``frame_type`` coordinate (for a folder: only the groups of this kind).
    lights_temperature : float, optional
        The lights' sensor temperature in °C; darks are checked against it.
    adc_max : float, optional
        The ADC's maximum in ADU (default from the header, 65535 for 16-bit data).
    expected_count : int, optional
        For dark flats, the number of flats they go with.
    statistics : xarray.Dataset, optional
        The set's :func:`frame_statistics` (with ``adc_max``) when already measured: the frames are not
        read again.

    Returns
    -------
    CheckReport
    """
    if isinstance(cube_or_group, (str, os.PathLike)):
        return check_session(cube_or_group, adc_max=adc_max, kind=kind, lights_temperature=lights_temperature)
    label = ""
    if isinstance(cube_or_group, FrameGroup):
        label = cube_or_group.label
        kind = kind or cube_or_group.frame_type
        cube = cube_or_group.open()
    elif isinstance(cube_or_group, xr.DataArray):
        cube = cube_or_group
    else:
        raise TypeError(f"check_frames: expected a cube, a FrameGroup or a folder, not {type(cube_or_group).__name__}")
    kind = kind or _kind_of(cube)
    if kind not in FRAME_TYPE_PLURALS:
        raise ValueError(f"kind must be one of {tuple(FRAME_TYPE_PLURALS)}, not {kind!r}")
    n = int(cube.sizes["frame"])
    label = label or f"{kind}, {n} frames"
    stats = frame_statistics(cube, adc_max=adc_max) if statistics is None else statistics
    amax = float(stats.attrs["adc_max"])
    ctx = _Ctx(cube, stats, kind, label)
    _check_count(ctx, n, expected_count)
    _check_headers(ctx)
    if kind == "bias":
        _check_zero(ctx)
        _check_pedestal(ctx)
        _check_read_noise(ctx)
        _check_outliers_dark(ctx)
    elif kind in ("dark", "darkflat"):
        _check_zero(ctx)
        _check_temperature_spread(ctx)
        if kind == "dark":
            if lights_temperature is not None:
                _check_light_temperature(ctx, float(lights_temperature))
            _check_hot(ctx)
            _check_amp_glow(ctx)
        _check_outliers_dark(ctx)
    elif kind == "flat":
        _check_flat_levels(ctx, amax)
        _check_clipped(ctx)
        _check_flat_drift(ctx)
        _check_cfa(ctx, amax)
        _check_outliers_flat(ctx)
    return CheckReport(ctx.checks)


def _oddity_checks(catalog: FrameCatalog) -> list[Check]:
    """Duplicate and stray files and sets of one frame: a WARN naming each file.

    One check per kind of oddity (scope ``set``), so a report that condenses per-frame checks still
    names every file.
    """
    kinds = (("duplicates", "have the same pixels as another frame, left out", "duplicate "),
             ("strays", "are of another size than their folder-mates, left out", "stray "),
             ("single_frame_sets", "are the only frame of their set (a doubtful master)", "doubtful "))
    found = catalog.warnings
    checks = []
    for name, words, prefix in kinds:
        lines = [w[len(prefix):] for w in found if w.startswith(prefix)]
        if lines:
            checks.append(Check(name, "set", None, "warn", len(lines), 0,
                                f"{len(lines)} file(s) {words}: " + " | ".join(lines), "files",
                                str(catalog.directory)))
    return checks


def check_session(directory: str | os.PathLike | FrameCatalog, *, adc_max: float | None = None,
                  kind: str | None = None,
                  lights_temperature: float | None = None,
                  progress: Callable[[float, str], None] | None = None) -> CheckReport:
    """Check every calibration set of a night's folder (and the lights' headers).

    The darks are checked against the lights' median sensor temperature (or ``lights_temperature``), the
    dark flats' count against their flats' count. Unclassified or unreadable files are reported too.

    Parameters
    ----------
    directory : path-like or FrameCatalog
        The folder (scanned recursively, headers only until a set is checked), or its catalogue
        from :func:`~astrocal_widgets.scan` (not scanned again).
    adc_max : float, optional
        The ADC's maximum in ADU.
    kind : str, optional
        Only the sets of this kind.
    lights_temperature : float, optional
        Overrides the lights' temperature from the headers.
    progress : callable, optional
        ``progress(fraction, message)``, called as each set is checked.

    Returns
    -------
    CheckReport
    """
    catalog = directory if isinstance(directory, FrameCatalog) else scan(directory)
    directory = catalog.directory
    groups = catalog.groups()
    if lights_temperature is None:
        lights = catalog.table[catalog.table["frame_type"] == "light"]
        temps = lights["temperature"].dropna() if len(lights) else pd.Series([], dtype=float)
        lights_temperature = float(temps.median()) if len(temps) else None
    flats = [g for g in groups if g.frame_type == "flat"]
    report = CheckReport()
    chosen = [g for g in groups if kind is None or g.frame_type == kind]
    for done, group in enumerate(chosen):
        if progress is not None:
            progress(done / max(1, len(chosen)), f"checking {group.label}")
        expected = None
        if group.frame_type == "darkflat":
            exp = group.key.get("exposure", math.nan)
            matching = [len(f) for f in flats if f.table["exposure"].notna().any()
                        and any(exposures_match(float(e), float(exp)) for e in f.table["exposure"].dropna())]
            expected = max(matching) if matching else None
        report = report + check_frames(group, lights_temperature=lights_temperature if group.frame_type == "dark"
                                       else None, adc_max=adc_max, expected_count=expected)
    if kind is None:
        n_unclassified, n_skipped = len(catalog.unclassified), len(catalog.skipped)
        problems = n_unclassified + n_skipped
        if problems:
            text = (f"{n_unclassified} frames have no recognisable type and {n_skipped} files could not be read: set "
                    f"IMAGETYP in the capture program or sort the files into BIAS/DARK/FLAT/DARKFLAT/LIGHT folders: "
                    + "; ".join([f"{row['path']} ({row['type_reason']})" for _, row in catalog.unclassified.iterrows()]
                                + [f"{row['path']} ({row['problem']})" for _, row in catalog.skipped.iterrows()]))
        else:
            text = "Every file was read and classified."
        report.checks.append(Check("catalogue", "set", None, "warn" if problems else "pass", problems, 0, text,
                                   "files", str(directory)))
        report.checks += _oddity_checks(catalog)
    if progress is not None:
        progress(1.0, "checked")
    return report
