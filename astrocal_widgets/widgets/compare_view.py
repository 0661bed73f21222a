"""Compare two rejections (teaching), in every master step: pick two algorithms or threshold pairs, Compare.

One call to :func:`~astrocal_widgets.workflow.compare_rejections` integrates a crop of the selected set
(the frames Integrate would use: exclusions, flat calibration, the step's combine and normalisation)
with both choices; the view shows :func:`~astrocal_widgets.plots.rejection_comparison_figure` and the
comparison's summary. A long action with Cancel; the last comparisons are kept, so going back to one is instant.
"""
from __future__ import annotations

import html
import warnings
from typing import Any, Callable

import ipywidgets as w

from .. import plots
from ..frames import FrameGroup
from ..workflow import COMPARE_CROP, REJECTION_CHOICES, compare_rejections, default_thresholds, resolve_rejection
from ._display import LongAction, ProgressView, figure_image, message, text_block
from .state import DashboardState

#: What the two sides start with: the classic clipping against a more robust spread.
DEFAULT_CHOICES = ("sigma", "winsorized_sigma")
#: Comparisons kept: their results (a few MB each at the default crop) and their views (a PNG and a text each).
KEEP_RESULTS, KEEP_VIEWS = 4, 32


class RejectionSide:
    """One side of the comparison: an algorithm and its thresholds (the algorithm's defaults at first)."""

    def __init__(self, name: str, value: str, frames: Callable[[], int]) -> None:
        self.frames = frames
        self.rejection = w.Dropdown(options=list(REJECTION_CHOICES), value=value, description=name,
                                    style={"description_width": "60px"}, layout=w.Layout(width="240px"))
        self.low = w.FloatText(description="low", layout=w.Layout(width="150px"), style={"description_width": "40px"})
        self.high = w.FloatText(description="high", layout=w.Layout(width="150px"), style={"description_width": "40px"})
        self.resolved = w.HTML()
        self._defaults_of: str | None = None  # the algorithm whose defaults the boxes were last set to
        self.rejection.observe(lambda _: self.refresh(force=True), "value")
        self.widget = w.HBox([self.rejection, self.low, self.high, self.resolved])
        self.refresh(force=True)

    def algorithm(self) -> tuple[str, str]:
        """The algorithm the choice runs as for the set's frame count, and why."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return resolve_rejection(self.rejection.value, self.frames())

    def refresh(self, force: bool = False) -> None:
        """Thresholds: the defaults of the algorithm when it changes (``auto`` follows the frame count)."""
        algorithm, reason = self.algorithm()
        self.resolved.value = (f"runs as <b>{html.escape(algorithm)}</b>" if self.rejection.value == "auto"
                               else "")
        if force or algorithm != self._defaults_of:
            self.low.value, self.high.value = (float(v) for v in default_thresholds(algorithm))
            self._defaults_of = algorithm
        self.low.disabled = self.high.disabled = algorithm == "none"

    def choice(self) -> Any:
        """What :func:`compare_rejections` is given: the name, with the thresholds in the boxes."""
        if self.low.disabled:
            return self.rejection.value
        return (self.rejection.value, float(self.low.value), float(self.high.value))


class RejectionComparisonView:
    """Two rejections of the selected set compared on a crop.

    Parameters
    ----------
    state : DashboardState
    kind : str
        The step's frame type.
    group : callable
        The selected set.
    excluded : callable
        Its frames on the night's exclusion list (``{path: reason}``).
    options : callable
        The step's integration options; all but the rejection are used (combine, normalisation).
    """

    def __init__(self, state: DashboardState, kind: str, group: Callable[[], FrameGroup],
                 excluded: Callable[[], dict[str, str]], options: Callable[[], dict[str, Any]]) -> None:
        self.state, self.kind = state, kind
        self._group, self._excluded, self._options = group, excluded, options
        self.first = RejectionSide("First", DEFAULT_CHOICES[0], self.frames)
        self.second = RejectionSide("Second", DEFAULT_CHOICES[1], self.frames)
        self.crop = w.BoundedIntText(value=COMPARE_CROP, min=16, max=8192, step=16, description="Crop",
                                     tooltip="side of the centred window compared (pixels)",
                                     style={"description_width": "60px"}, layout=w.Layout(width="180px"))
        self.compare_button = w.Button(description="Compare", button_style="primary",
                                       tooltip="integrate the crop with both rejections")
        self.action = LongAction(self.compare_button)
        self.progress = ProgressView()
        self.feedback = w.VBox()
        self.output = w.VBox()
        self.results: dict[tuple, Any] = {}
        self._views: dict[tuple, tuple] = {}
        self.compare_button.on_click(lambda _: self.compare())
        for control in (self.first.rejection, self.first.low, self.first.high, self.second.rejection, self.second.low,
                        self.second.high, self.crop):
            control.observe(lambda _: self.show(), "value")  # another choice: its comparison, or none yet
        self.widget = w.VBox([
            w.HTML("<h4>Compare two rejections (teaching)</h4><p style='margin:0 0 4px 0'>The same centred crop "
                   "of the set integrated twice, as Integrate would (the frames not excluded, the combine and "
                   "normalisation above): the difference of the two masters, what each rejects, and the noise "
                   "of each. Only the crop's rows are read, so it answers in seconds on big frames.</p>"),
            self.first.widget, self.second.widget,
            w.HBox([self.crop, self.compare_button, self.action.cancel_button]),
            self.progress.widget, self.feedback, self.output,
        ])
        self.widget.add_class("astrocal-compare-rejections")

    # ------------------------------------------------------------------ state
    def frames(self) -> int:
        """Frames the set has once its excluded frames are left out."""
        return len(self._group()) - len(self._excluded())

    def options(self) -> dict[str, Any]:
        return {k: v for k, v in self._options().items() if k not in ("rejection", "low", "high")}

    def key(self) -> tuple:
        """The comparison the controls describe (flats: also the dark flats and bias saved)."""
        key = (self._group().label, tuple(sorted(self._excluded())), tuple(sorted(self.options().items())),
               repr(self.first.choice()), repr(self.second.choice()), int(self.crop.value))
        if self.kind == "flat":
            key += (self.state.masters_fingerprint("darkflat", "bias"),)
        return key

    def refresh(self) -> None:
        """Another set, other exclusions or options: ``auto`` follows the frame count; the view its comparison."""
        for side in (self.first, self.second):
            side.refresh()
        self.show()

    def show(self) -> None:
        """The comparison of the choices shown, if it was made (else nothing)."""
        self.output.children = self._views.get(self.key(), ())

    # ------------------------------------------------------------------ action
    def compare(self) -> None:
        """Compare the two choices (once per choice: shown again from the cache)."""
        key = self.key()
        if key in self._views:
            self.output.children = self._views[key]
            return
        group, excluded, options = self._group(), self._excluded(), self.options()
        first, second, size = self.first.choice(), self.second.choice(), int(self.crop.value)
        if self.kind == "flat":
            session = self.state.session
            options.update(library=session.masters_dir, night=session.catalog, saved=self.state.saved)

        def done(result) -> None:
            self.results[key] = result
            self._views[key] = (figure_image(plots.rejection_comparison_figure(result),
                                             "Second minus first, and what each rejects"),
                                text_block(result.summary()))
            for kept, most in ((self.results, KEEP_RESULTS), (self._views, KEEP_VIEWS)):
                while len(kept) > most:  # the oldest go first
                    del kept[next(iter(kept))]
            if self.key() == key:  # still the choice shown
                self.output.children = self._views[key]
            if result.warnings:
                self.feedback.children = tuple(message(t, "warning") for t in result.warnings)

        self.output.children = ()
        self.action.start(lambda cancel: compare_rejections(group, first, second, crop_size=size, excluded=excluded,
                                                            progress=self.progress, cancel=cancel, **options),
                          done, self.feedback, self.progress, f"comparing two rejections on a {size}-pixel crop")
