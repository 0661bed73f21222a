"""Master steps: pick a set, choose how to integrate, Integrate (with real progress), look, Save; compare two
rejections on a crop (teaching)."""
from __future__ import annotations

import html
import warnings
from pathlib import Path

import ipywidgets as w

from .. import plots
from ..io.frame_types import FRAME_TYPE_PLURALS, FRAME_TYPE_WORDS
from ..workflow import (MASTER_COMBINES, MASTER_OPTIONS, OUTPUT_NORMALIZATIONS, RECOMMENDED_COUNTS,
                        REJECTION_CHOICES, default_thresholds, integrate_master, preview_flat_calibration,
                        resolve_rejection, save_master, session_exclusions)
from ._display import (PREVIEW_PIXELS, STATUS_COLOURS, LongAction, ProgressView, figure_image, interactive_figure,
                       ipympl_available, message, plot_grid, run_action, table_html, text_block)

#: Largest image an interactive (ipympl) view shows at full resolution; larger ones are block-averaged.
ZOOM_PIXELS = 4_000_000
from .base import Step, StepSpec
from .compare_view import RejectionComparisonView
from .frame_browser import FrameBrowser
from .state import DashboardState

_WORDS = FRAME_TYPE_PLURALS
_NAMES = {kind: f"master {word}" for kind, word in FRAME_TYPE_WORDS.items()}


class MasterPanel:
    """Integrate and save the masters of one frame type."""

    def __init__(self, state: DashboardState, kind: str, on_change) -> None:
        self.state, self.kind, self.on_change = state, kind, on_change
        self.groups = state.session.groups(kind)
        defaults = MASTER_OPTIONS[kind]
        self.group = w.Dropdown(options=[(f"{g.label} ({len(g)} frames)", i) for i, g in enumerate(self.groups)],
                                description="Set", layout=w.Layout(width="95%"), style={"description_width": "90px"})
        self.count = w.HTML()
        self.combine = w.Dropdown(options=list(MASTER_COMBINES),
                                  value=defaults["combine"], description="Combine", style={"description_width": "90px"})
        self.rejection = w.Dropdown(options=list(REJECTION_CHOICES), value=defaults["rejection"], description="Rejection",
                                    style={"description_width": "90px"})
        self.normalization = w.Dropdown(options=list(OUTPUT_NORMALIZATIONS), value=defaults["normalization"],
                                        description="Normalise", style={"description_width": "90px"})
        self.default_thresholds = w.Checkbox(value=True, description="the algorithm's default thresholds",
                                             indent=False)
        self.low = w.FloatText(value=3.0, description="low", layout=w.Layout(width="160px"), disabled=True)
        self.high = w.FloatText(value=3.0, description="high", layout=w.Layout(width="160px"), disabled=True)
        self.resolved = w.HTML()
        self.integrate_button = w.Button(description="Integrate", button_style="primary")
        self.save_button = w.Button(description="Save", disabled=True)
        self.overwrite = w.Checkbox(value=False, description="replace an existing file", indent=False)
        self.zoom = w.Checkbox(value=False, description="pan and zoom the master (ipympl)", indent=False,
                               layout=w.Layout(display="" if ipympl_available() else "none"))
        self._zoom_views: dict[tuple, w.Widget] = {}
        self.progress = ProgressView()
        self.action = LongAction(self.integrate_button)  # its Cancel button stops an Integrate
        self.feedback = w.VBox()
        self.summary = w.VBox()
        self.plots = w.VBox()
        self._views: dict[tuple, tuple] = {}

        self.group.observe(self._group_changed, "value")
        for control in (self.rejection, self.combine, self.normalization, self.low, self.high):
            control.observe(lambda _: self._show_choice(), "value")
        self.default_thresholds.observe(self._toggle_thresholds, "value")
        self.integrate_button.on_click(lambda _: self.integrate())
        self.save_button.on_click(lambda _: self.save())
        self.zoom.observe(lambda _: self._show_master_view(), "value")
        controls = w.VBox([
            self.group, self.count,
            w.HBox([self.combine, self.rejection, self.normalization]),
            w.HBox([self.default_thresholds, self.low, self.high]),
            self.resolved,
            w.HBox([self.integrate_button, self.action.cancel_button, self.save_button, self.overwrite, self.zoom]),
            self.progress.widget, self.feedback,
        ])
        self.browser = FrameBrowser(state, lambda: self.selected, self._exclusions_changed)
        self.compare: RejectionComparisonView | None = None
        if self.groups:  # the set's frames as Integrate takes them, with the choices above but the rejection
            self.compare = RejectionComparisonView(state, kind, lambda: self.selected, self.browser.excluded,
                                                   self.options)
        self.widget = w.VBox([controls, self.browser.widget, self.summary, self.plots, self.compare.widget]
                             ) if self.groups else w.VBox([message(f"This night has no {_WORDS[kind]}.", "warning")])
        if self.groups:
            self.browser.reset()
            self._show_choice()

    # ------------------------------------------------------------------ choices
    @property
    def selected(self):
        return self.groups[self.group.value]

    def options(self) -> dict:
        """The integration options chosen in the controls."""
        options = {"combine": self.combine.value, "rejection": self.rejection.value,
                   "normalization": self.normalization.value}
        if not self.default_thresholds.value:
            options.update(low=float(self.low.value), high=float(self.high.value))
        return options

    def _toggle_thresholds(self, change) -> None:
        self.low.disabled = self.high.disabled = bool(change["new"])
        self._show_choice()

    def _group_changed(self, _change) -> None:
        self.overwrite.value = False  # replacing one set's master is never carried over to another
        self.browser.reset()
        self._show_choice()

    def _exclusions_changed(self) -> None:
        """Frames were ticked or unticked: another master (the cache key names the excluded frames)."""
        self._show_choice()
        self.on_change()

    def key(self) -> tuple:
        """Cache key of the result for the current choices (flats: also the dark flats and bias saved)."""
        key = (self.selected.label, tuple(sorted(self.options().items())), tuple(sorted(self.browser.excluded())))
        if self.kind == "flat":
            key += (self.state.masters_fingerprint("darkflat", "bias"),)
        return key

    def _show_choice(self) -> None:
        group = self.selected
        excluded = self.browser.excluded()
        n = len(group) - len(excluded)
        low, high = RECOMMENDED_COUNTS[self.kind]
        colour = STATUS_COLOURS["pass" if low <= n <= high else "warn"]
        self.count.value = (f'<span style="color:{colour}"><b>{n}</b> {_WORDS[self.kind]}; {low}-{high} are '
                            f"recommended (see How many frames in docs/quality.md)</span>"
                            + (f"; {len(excluded)} of the set's {len(group)} excluded" if excluded else ""))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            algorithm, reason = resolve_rejection(self.rejection.value, n)
        self.resolved.value = (f"Rejection <b>{html.escape(self.rejection.value)}</b> runs as "
                               f"<b>{html.escape(algorithm)}</b>: {html.escape(reason)}")
        if self.default_thresholds.value:  # show what the defaults are, in the algorithm's own units
            low, high = default_thresholds(algorithm)
            with self.low.hold_trait_notifications(), self.high.hold_trait_notifications():
                self.low.value, self.high.value = float(low), float(high)
        key = self.key()
        view = self._views.get(key) if key in self.state.results else None
        self.summary.children, self.plots.children = view if view else ((), ())
        self.save_button.disabled = view is None
        self._show_master_view()
        on_disk = self.state.master_on_disk(group)
        self.feedback.children = (message(f"Saved master: {on_disk}", "info"),) if on_disk else ()
        if self.compare is not None:
            self.compare.refresh()
        needs = self.prerequisites()
        if needs is not None:  # a flat set waits for the masters it is calibrated with
            self.integrate_button.disabled = needs.blocked
            notes = [needs.reason] if needs.blocked else needs.warnings
            self.feedback.children = tuple(message(t, "warning") for t in notes) + self.feedback.children

    def prerequisites(self):
        """For a flat set: the night's master dark flats (else bias) it is calibrated with; None otherwise."""
        if self.kind != "flat" or not self.groups:
            return None
        return self.state.session.prerequisites(self.selected, saved=self.state.saved)

    # ------------------------------------------------------------------ actions
    def integrate(self) -> None:
        """Integrate the selected set with the chosen options (cached: the same choice is not recomputed).

        A long action (:class:`~astrocal_widgets.widgets._display.LongAction`): Cancel stops it and
        nothing of it is kept.
        """
        group = self.selected
        options = self.options()
        key = self.key()
        excluded = self.browser.excluded()
        if key in self.state.results:
            self._show_result(key)
            return
        flat = self.kind == "flat"
        library = self.state.session.masters_dir if flat else None
        night = dict(night=self.state.session.catalog, saved=self.state.saved) if flat else {}

        def done(result) -> None:
            self.state.results[key] = result
            if self.key() == key:  # the set and choices are still the ones shown
                self._show_result(key)
            else:
                self.state.remember(key, result)

        self.action.start(lambda cancel: integrate_master(group, library=library,
                                                          light_sigma=self.state.session.light_sigma,
                                                          progress=self.progress, excluded=excluded, cancel=cancel,
                                                          **night, **options),
                          done, self.feedback, self.progress,
                          f"integrating {len(group) - len(excluded)} {_WORDS[self.kind]}")

    def _show_result(self, key: tuple) -> None:
        """Show the integrated master of ``key`` (rendered once, then from the cache)."""
        self.state.remember(key, self.state.results[key])
        result = self.state.results[key]
        self.state.warnings[result.group.label] = list(result.warnings)
        if key not in self._views:
            ok, view = run_action(lambda: self._render(result), self.feedback)
            if not ok:
                return
            self._views[key] = view
        self.summary.children, self.plots.children = self._views[key]
        self._show_master_view()
        self.save_button.disabled = False
        self.feedback.children = tuple(message(text, "warning") for text in result.warnings)
        self.on_change()

    def _render(self, result) -> tuple:
        name = _NAMES[self.kind]
        ds = result.dataset
        images = [
            figure_image(plots.image(result.master, title=name, max_pixels=PREVIEW_PIXELS), "The master"),
            figure_image(plots.histogram(result.master, bayer_pattern=result.bayer_pattern, xrange="data",
                                         title=f"{name}: histogram"), "Its histogram"),
        ]
        if self.kind == "flat" and result.profile is not None:
            levels = result.levels if len(result.levels) > 1 else None
            images.append(figure_image(plots.radial_profile(result.profile, channel_levels=levels),
                                       "Vignetting: level against distance from the centre"))
        images.append(figure_image(plots.rejection_maps(ds, max_pixels=PREVIEW_PIXELS), "Rejection maps"))
        images.append(figure_image(plots.frame_series(result.frame_table(), ("median", "sigma"),
                                                      title="per-frame statistics"), "Frames"))
        if result.frame_sigma > 0:
            light = result.light_sigma if result.light_sigma > 0 else None
            images.append(figure_image(plots.master_noise_curve(
                result.frame_sigma, n_current=result.n_frames, recommended=result.recommended,
                light_noise=light, combine="median" if ds.attrs.get("combine") == "median" else "average"),
                "The master's noise against the frame count"))
        summary = (text_block(result.summary()), table_html(result.frame_table(), max_rows=15))
        grid = plot_grid(images)
        grid.png_master = images[0]  # restored when the zoom box is unticked
        return summary, (grid,)

    def _show_master_view(self) -> None:
        """The master as a PNG, or (with the zoom box ticked and ipympl installed) as an ipympl canvas."""
        key = self.key()
        view = self._views.get(key)
        if view is None or key not in self.state.results:
            return
        grid = view[1][0]
        if self.zoom.value:
            if key not in self._zoom_views:
                result = self.state.results[key]
                title = f"{_NAMES[self.kind]} (pan and zoom)"
                ok, canvas = run_action(lambda: interactive_figure(
                    plots.image(result.master, title=title, max_pixels=ZOOM_PIXELS), "The master"), self.feedback)
                if not ok or canvas is None:
                    return
                self._zoom_views[key] = canvas
            shown = self._zoom_views[key]
        else:
            shown = grid.png_master
        grid.children = (shown,) + tuple(grid.children[1:])

    def save(self) -> None:
        """Write the current master into the night's masters folder."""
        result = self.state.results.get(self.key())  # the master shown, for the choices shown
        if result is None:
            self.feedback.children = (message("Integrate the set with these choices first.", "warning"),)
            return
        replaced = self.state.master_on_disk(self.selected) is not None and self.overwrite.value
        ok, path = run_action(lambda: save_master(result, self.state.session.masters_dir,
                                                  overwrite=self.overwrite.value), self.feedback)
        if ok:
            self.state.forget_replaced(result, path)
            self.state.saved[self.selected.label] = Path(path)
            self.state.forget_calibration()
            run_action(self.state.find_stale, self.feedback)  # what the replaced master made stale
            self.overwrite.value = False
            text = f"Saved {path}"
            if replaced:
                built_on = [x for x in self.state.stale if x.kind != self.kind]
                text += (f" (replaced the earlier master: {len(built_on)} products built on it are stale; "
                         "Rebuild stale on the Lights step makes them again)" if built_on else
                         " (replaced the earlier master)")
            self.feedback.children = (message(text, "info"),)
            self.on_change()

    # ------------------------------------------------------------------ status
    def status(self) -> tuple[str, str]:
        if not self.groups:
            return "blocked", f"no {_WORDS[self.kind]} in this night"
        missing = [g for g in self.groups if self.state.master_on_disk(g) is None]
        if missing:
            if len(self.groups) == 1:
                return "todo", "master not saved yet"
            return "todo", self.state.session.set_progress(self.kind, self.state.saved)
        stale = self.state.stale_of(self.kind)
        if stale:
            return "warning", f"stale: {stale[0]}" + (f" (and {len(stale) - 1} more)" if len(stale) > 1 else "")
        low = RECOMMENDED_COUNTS[self.kind][0]
        few = [g for g in self.groups if len(g) < low]
        warned = [w for g in self.groups if (w := self.state.warnings.get(g.label))]
        if few or warned:
            reason = f"{len(few)} set(s) below the recommended {low} frames" if few else warned[0][0]
            return "warning", reason
        return "done", "masters saved"


class MasterStep(Step):
    """A page with the master panel of one kind (the spec's ``kind``)."""

    def __init__(self, state: DashboardState, spec: StepSpec) -> None:
        super().__init__(state, spec)
        self.panel = MasterPanel(state, spec.kind, self.changed)
        self.widget = w.VBox([*self.intro(), self.panel.widget])

    def status(self) -> tuple[str, str]:
        return self.panel.status()

    def enter(self) -> None:
        if self.panel.groups:
            self.panel.browser.activate()
            self.panel._show_choice()


class FlatStep(MasterStep):
    """Flat integration: each flat set waits for the master dark flats (else bias) it is calibrated with."""

    def __init__(self, state: DashboardState, spec: StepSpec) -> None:
        super().__init__(state, spec)
        self.panel.group.observe(lambda _: self.changed(), "value")  # another set may be blocked

    def status(self) -> tuple[str, str]:
        needs = self.panel.prerequisites()
        if needs is not None and needs.blocked:
            return "blocked", needs.reason
        state, reason = self.panel.status()
        if self.panel.groups and state in ("todo", "done"):
            fallbacks = [w for g in self.panel.groups
                         for w in self.state.session.prerequisites(g, saved=self.state.saved).warnings]
            if fallbacks:
                return "warning", f"{reason}; {fallbacks[0]}"
        return state, reason


class DarkFlatStep(MasterStep):
    """Dark flats, and one flat before/after its dark flat is subtracted."""

    def __init__(self, state: DashboardState, spec: StepSpec) -> None:
        super().__init__(state, spec)
        self.flats = state.session.groups("flat")
        self.flat_group = w.Dropdown(options=[(f"{g.label} ({len(g)} frames)", i) for i, g in enumerate(self.flats)],
                                     description="Flat set", layout=w.Layout(width="95%"),
                                     style={"description_width": "90px"})
        self.flat_index = w.BoundedIntText(value=0, min=0, max=max(0, len(self.flats[0]) - 1 if self.flats else 0),
                                           description="Flat no.", style={"description_width": "90px"},
                                           layout=w.Layout(width="200px"))
        self.calibrate_button = w.Button(description="Calibrate", button_style="primary",
                                         tooltip="subtract the saved master dark flat (else bias) from one flat")
        self.flat_progress = ProgressView()
        self.flat_feedback = w.VBox()
        self.flat_view = w.VBox()
        self.flat_group.observe(self._flat_group_changed, "value")
        self.calibrate_button.on_click(lambda _: self.calibrate_flat())
        section = w.VBox([w.HTML("<h4>Flat calibration: one flat before and after</h4>"),
                          w.HBox([self.flat_group]), w.HBox([self.flat_index, self.calibrate_button]),
                          self.flat_progress.widget, self.flat_feedback, self.flat_view])
        if self.flats:
            self.widget.children = self.widget.children + (section,)

    def _flat_group_changed(self, change) -> None:
        self.flat_index.max = max(0, len(self.flats[change["new"]]) - 1)

    def calibrate_flat(self) -> None:
        """Show one flat before/after (needs a saved master dark flat or bias)."""
        group = self.flats[self.flat_group.value]
        listed = session_exclusions(self.state.session)  # the flat shown is one Integrate would use
        excluded = {p: listed[p] for p in map(str, group.paths) if p in listed}
        key = ("flat", group.label, int(self.flat_index.value), self.state.masters_fingerprint("darkflat", "bias"),
               tuple(sorted(excluded)))
        if key not in self.state.previews:
            def compute():
                preview = preview_flat_calibration(group, self.state.session.masters_dir,
                                                   frame=int(self.flat_index.value),
                                                   night=self.state.session.catalog, saved=self.state.saved,
                                                   max_pixels=PREVIEW_PIXELS, excluded=excluded)
                self.flat_progress(0.5, "rendering")
                name = Path(preview.path).name
                images = [figure_image(plots.image(preview.before, title=f"{name}: raw",
                                                   downsampled=preview.factor), "Before"),
                          figure_image(plots.image(preview.after, title=f"{name}: calibrated",
                                                   downsampled=preview.factor), "After")]
                return preview, w.VBox([text_block(preview.summary()), plot_grid(images)])
            ok, value = run_action(compute, self.flat_feedback, self.flat_progress, "calibrating one flat")
            if not ok:
                return
            self.state.previews[key] = value
        preview, view = self.state.previews[key]
        self.flat_view.children = (view,)
        self.flat_feedback.children = tuple(message(t, "warning") for t in preview.warnings)
