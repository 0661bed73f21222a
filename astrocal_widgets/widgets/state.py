"""What the dashboard knows: the night, the results computed so far (cached) and where they were saved."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..calibrate import StaleProduct, stale_products
from ..frames import FrameGroup
from ..workflow import MasterResult, SessionChecks, SessionOverview


@dataclass
class DashboardState:
    """Cached results of every step, so Back / Next never recompute.

    Attributes
    ----------
    session : SessionOverview
        The scanned night.
    checks : SessionChecks or None
        The traffic-light checks, once run.
    results : dict
        Master results by (set label, options). Saved ones read their arrays from their files; those
        not saved yet hold a master and its rejection maps in memory, and at most :attr:`max_results`
        of them are kept.
    warnings : dict
        The warnings of the latest master result per set label.
    saved : dict
        Set label -> path of the master saved from the dashboard.
    previews : dict
        Flat and light before/after previews by key.
    calibration : CalibrationResult or None
        The whole night, once calibrated.
    calibration_options : CalibrationOptions or None
        The options :attr:`calibration` was made with.
    stale : list of StaleProduct
        The products of the output folder made stale by a change to their inputs (:meth:`find_stale`).
    """

    session: SessionOverview
    checks: SessionChecks | None = None
    results: dict[tuple, MasterResult] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    saved: dict[str, Path] = field(default_factory=dict)
    previews: dict[tuple, Any] = field(default_factory=dict)
    calibration: Any = None
    calibration_options: Any = None
    stale: list[StaleProduct] = field(default_factory=list)

    #: Results not saved yet that are kept (each holds a master and its rejection maps in memory:
    #: about 230 MB at 24 megapixels).
    max_results: int = 2

    def remember(self, key: tuple, result: MasterResult) -> None:
        """Keep ``result`` as the most recent; forget the oldest unsaved ones beyond :attr:`max_results`."""
        self.results.pop(key, None)
        self.results[key] = result
        unsaved = [k for k, r in self.results.items() if r.in_memory]
        for old in unsaved[:max(0, len(unsaved) - self.max_results)]:
            del self.results[old]

    def forget_replaced(self, result: MasterResult, path: Path) -> None:
        """``result`` was saved to ``path``: results saved there before are not what it holds any more."""
        for key in [k for k, r in self.results.items() if r is not result and r.saved_path == Path(path)]:
            del self.results[key]

    def master_on_disk(self, group: FrameGroup) -> Path | None:
        """The saved master of a set (this session's or an earlier run's), if there is one."""
        path = self.session.master_path(group, self.saved)
        return path if path.exists() else None

    def masters_fingerprint(self, *kinds: str) -> tuple:
        """Which masters of these kinds are on disk, and their versions (name, size, mtime).

        Part of the cache keys of results that depend on saved masters (flats calibrated by dark
        flats, previews of calibrated flats and lights), so saving or replacing a master recomputes them.
        """
        stamp = []
        for path in self.saved_kinds(*kinds):
            info = Path(path).stat()
            stamp.append((Path(path).name, info.st_size, info.st_mtime_ns))
        return tuple(sorted(stamp))

    def forget_calibration(self) -> None:
        """A master was saved or replaced: the whole-night calibration shown is out of date."""
        self.calibration = None

    def find_stale(self) -> list[StaleProduct]:
        """Read the output folder's provenance for stale products (:func:`~astrocal_widgets.calibrate.stale_products`).

        Raw frames are compared by name here (quick at every save); Rebuild stale compares them by content.
        """
        session = self.session
        self.stale = stale_products(session.directory, output=session.output, catalog=session.catalog,
                                    check_frames=False)
        return self.stale

    def stale_of(self, *kinds: str) -> list[StaleProduct]:
        """The stale products of these kinds (``"bias"``, ``"flat"``, ``"light"``, ``"defect map"``, ...)."""
        return [s for s in self.stale if s.kind in kinds]

    def saved_kinds(self, *kinds: str) -> list[Path]:
        """Saved masters of the given kinds."""
        out = []
        for kind in kinds:
            for group in self.session.groups(kind):
                path = self.master_on_disk(group)
                if path is not None:
                    out.append(path)
        return out
