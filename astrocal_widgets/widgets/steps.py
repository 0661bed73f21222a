"""Session, histogram-check and light steps of the dashboard."""
from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as w
import pandas as pd

from .. import plots
from ..calibrate import calibrate_session, load_options, rebuild_stale
from ..workflow import check_sets, light_before_after
from ._display import (PREVIEW_PIXELS, STATUS_COLOURS, LongAction, ProgressView, figure_image, message, plot_grid,
                       run_action, table_html, text_block)
from .base import Step, StepSpec
from .options_form import OptionsForm
from .state import DashboardState


class _CheckingStep(Step):
    """A step with a Check button: the night is checked once, whichever step asks first."""

    def check(self) -> None:
        """Run :func:`check_sets` unless a step already did, then show the report (Cancel stops it)."""
        if self.state.checks is not None:
            self.progress.finish("checked already: shown from the cache")
            self.enter()
            self.changed()
            return

        def done(checks) -> None:
            self.state.checks = checks
            self.enter()
            self.changed()

        self.action.start(lambda cancel: check_sets(self.state.session, progress=self.progress, cancel=cancel), done,
                          self.feedback, self.progress, "checking every set")


class SessionStep(_CheckingStep):
    """The catalogue, the sets found, what could not be classified, and the check summary."""

    def __init__(self, state: DashboardState, spec: StepSpec) -> None:
        super().__init__(state, spec)
        session = state.session
        catalog = session.catalog
        parts = [*self.intro(), w.HTML(f"<p>Night: <code>{session.directory}</code>; masters are saved in "
                        f"<code>{session.masters_dir}</code>, calibrated lights in "
                        f"<code>{session.calibrated_dir}</code>.</p>"),
                 text_block(session.summary()),
                 w.HTML("<h4>Sets found</h4>"), table_html(session.groups_table())]
        if len(catalog.unclassified):
            parts += [w.HTML("<h4>Frames that could not be classified</h4>"),
                      table_html(catalog.unclassified[["path", "type_reason"]])]
        if len(catalog.skipped):
            parts += [w.HTML("<h4>Files that could not be read</h4>"), table_html(catalog.skipped)]
        self.check_button = w.Button(description="Check", button_style="primary",
                                     tooltip="read every frame and grade each set (traffic lights)")
        self.progress = ProgressView()
        self.action = LongAction(self.check_button)
        self.feedback = w.VBox()
        self.report = w.VBox()
        self.check_button.on_click(lambda _: self.check())
        accordion = w.Accordion(children=[table_html(session.table(), max_rows=500)], selected_index=None)
        accordion.set_title(0, f"Catalogue: {len(catalog.table)} frames (headers only)")
        parts += [accordion, w.HTML("<h4>Checks</h4>"), w.HBox([self.check_button, self.action.cancel_button]),
                  self.progress.widget,
                  self.feedback, self.report]
        self.widget = w.VBox(parts)

    def enter(self) -> None:
        checks = self.state.checks
        if checks is not None:
            self.report.children = (text_block(checks.report.summary()),)

    def status(self) -> tuple[str, str]:
        catalog = self.state.session.catalog
        problems = len(catalog.unclassified) + len(catalog.skipped)
        if problems:
            return "warning", f"{problems} files unclassified or unreadable"
        if not len(catalog.table):
            return "warning", "no frames found"
        products = len(catalog.products)
        frames = len(catalog.table) - products
        text = f"{frames} frames in {len(self.state.session.groups())} sets"
        return "done", text + (f" (and {products} masters or calibrated frames)" if products else "")


class ChecksStep(_CheckingStep):
    """The traffic-light report of every set, with its histogram."""

    def __init__(self, state: DashboardState, spec: StepSpec) -> None:
        super().__init__(state, spec)
        self.check_button = w.Button(description="Check", button_style="primary")
        self.progress = ProgressView()
        self.action = LongAction(self.check_button)
        self.feedback = w.VBox()
        self.sets = w.VBox()
        self._rendered = None
        self.check_button.on_click(lambda _: self.check())
        self.widget = w.VBox([*self.intro(), w.HBox([self.check_button, self.action.cancel_button]),
                              self.progress.widget, self.feedback, self.sets])

    def enter(self) -> None:
        checks = self.state.checks
        if checks is None or self._rendered is checks:
            return
        ok, boxes = run_action(lambda: self._render(checks), self.feedback)
        if ok:
            self.sets.children = boxes
            self._rendered = checks

    def _render(self, checks) -> tuple:
        boxes = [text_block(checks.report.summary().splitlines()[0])]
        for label, (frame, adc_max, pattern, kind) in checks.samples.items():
            status = checks.status_of(label)
            colour = STATUS_COLOURS[status]
            # One row per check: a check that fails on every frame is one row naming the worst frames.
            table = checks.summary_table(label)[["status", "name", "frames", "values", "worst", "explanation"]]
            picture = figure_image(plots.histogram(frame, adc_max=adc_max, bayer_pattern=pattern,
                                                   title=f"{kind}: middle frame"), "Histogram")
            boxes.append(w.VBox([w.HTML(f'<h4><span style="color:{colour}">\u25cf {status.upper()}</span> '
                                        f"{label}</h4>"),
                                 plot_grid([table_html(table, status_column="status"), picture],
                                           "minmax(0, 3fr) minmax(0, 2fr)")]))
        return tuple(boxes)

    def status(self) -> tuple[str, str]:
        checks = self.state.checks
        if checks is None:
            return "todo", "not checked yet"
        report = checks.report
        if report.status == "pass":
            return "done", "every check passed"
        return "warning", f"{len(report.failed)} failed, {len(report.warnings)} warnings"


class LightsStep(Step):
    """One light before/after, then the whole night into the output folder."""

    def __init__(self, state: DashboardState, spec: StepSpec) -> None:
        super().__init__(state, spec)
        table = state.session.catalog.table
        self.lights = table[table["frame_type"] == "light"].reset_index(drop=True)
        self.light = w.Dropdown(options=[(Path(p).name, i) for i, p in enumerate(self.lights["path"])],
                                description="Light", layout=w.Layout(width="95%"), style={"description_width": "90px"})
        self.calibrate_button = w.Button(description="Calibrate", button_style="primary",
                                         tooltip="calibrate this light with the saved masters (nothing is written)")
        self.all_button = w.Button(description="Calibrate all",
                                   tooltip="calibrate every light into the output folder (missing masters are built)")
        self.progress = ProgressView()
        self.feedback = w.VBox()
        self.uses = w.HTML()
        self.view = w.VBox()
        self.result = w.VBox()
        # Calibrate all's options: those the night was last calibrated with (its calibration_options.json).
        ok, recorded = run_action(lambda: load_options(state.session.output), self.feedback)
        self.options_form = OptionsForm(recorded if ok else None)
        self.overwrite = w.Checkbox(value=False, indent=False,
                                    description="replace outputs made with other options")
        self.options_box = w.Accordion(children=[w.VBox([self.options_form.widget, self.overwrite])],
                                       selected_index=None)
        self.options_box.set_title(0, "Options for Calibrate all")
        self.rebuild_button = w.Button(description="Rebuild stale", button_style="warning",
                                       tooltip="make again every product whose inputs changed, in dependency order")
        self.action = LongAction(self.calibrate_button, self.all_button, self.rebuild_button)  # one Cancel for all
        self.stale_view = w.VBox()
        self.light.observe(lambda _: self._show_uses(), "value")
        self.calibrate_button.on_click(lambda _: self.calibrate_one())
        self.all_button.on_click(lambda _: self.calibrate_all())
        self.rebuild_button.on_click(lambda _: self.rebuild())
        self.widget = w.VBox([
            *self.intro(),
            w.HTML(f"<p>Output folder: <code>{state.session.calibrated_dir}</code>. Masters saved in the earlier "
                   "steps are used; <b>Calibrate all</b> builds any that are missing, with the options below (saved in "
                   "<code>calibration_options.json</code> beside the outputs), and replaces an existing file only "
                   "when told to. <b>Rebuild stale</b> makes again what a replaced master made stale.</p>"),
            self.light, self.uses, self.options_box,
            w.HBox([self.calibrate_button, self.all_button, self.rebuild_button, self.action.cancel_button]),
            self.progress.widget,
            self.feedback, self.stale_view,
            self.view, self.result]) if len(self.lights) else w.VBox([*self.intro(),
                                                                      message("This night has no lights.", "warning")])

    def prerequisites(self):
        """The night's master bias, dark and flat that match the selected light, saved or not."""
        return self.state.session.prerequisites(self.lights.iloc[int(self.light.value)], saved=self.state.saved)

    def _show_uses(self) -> None:
        """Before anything runs: which masters Calibrate will use, and which matching ones are not saved."""
        if not len(self.lights):
            return
        needs = self.prerequisites()
        saved = [m.name for m in needs.masters if m.saved]
        lines = ["Calibrate uses " + (", ".join(html.escape(n) for n in saved) if saved else "no saved master yet")]
        if needs.missing:
            lines.append("<b>not saved yet</b>, though the night has their frames: "
                         + ", ".join(html.escape(m.name) for m in needs.missing))
        lines += [html.escape(t) for t in needs.warnings]
        self.uses.value = "<p>" + "<br>".join(lines) + "</p>"
        self.calibrate_button.disabled = needs.blocked

    def enter(self) -> None:
        self._show_uses()
        self._show_stale()

    def _show_stale(self) -> None:
        """The stale products, each with its reason; Rebuild stale is enabled when there are some."""
        stale = self.state.stale
        self.rebuild_button.disabled = not stale
        if not stale:
            self.stale_view.children = ()
            return
        rows = pd.DataFrame([{"product": s.name, "kind": s.kind, "why it is stale": s.reason} for s in stale])
        text = (f"{len(stale)} products are stale: their inputs changed since they were made. "
                "Rebuild stale makes exactly these again (masters, then the flats built on them, then the lights).")
        box = w.VBox([message(text, "warning"), table_html(rows)])
        box.add_class("astrocal-stale")
        self.stale_view.children = (box,)

    def calibrate_one(self) -> None:
        index = int(self.light.value)
        needs = self.prerequisites()
        if needs.blocked:  # a fallback master would be used: say which to save instead
            self.feedback.children = (message(needs.reason, "warning"),)
            return
        key = ("light", index, self.state.masters_fingerprint("bias", "dark", "darkflat", "flat"))
        if key in self.state.previews:
            self._show_light(key)
            return

        def compute(cancel):
            light = light_before_after(self.state.session, index, saved=self.state.saved,
                                       max_pixels=PREVIEW_PIXELS, cancel=cancel)
            self.progress(0.6, "rendering")
            name = Path(light.source).name
            images = [figure_image(plots.image(light.before, title=f"{name}: raw", downsampled=light.factor),
                                   "Before"),
                      figure_image(plots.image(light.after, title=f"{name}: calibrated",
                                               downsampled=light.factor), "After")]
            dark = (f"dark x{light.dark_scale:.3f} ({light.dark_scale_method})" if light.dark
                    else "no dark subtracted")
            lines = [f"{dark}, {light.defects_corrected} defective pixels corrected"] + light.decisions
            return light, w.VBox([text_block("\n".join(lines)), plot_grid(images)])

        def done(value) -> None:
            self.state.previews[key] = value
            if int(self.light.value) == index:  # still the light shown
                self._show_light(key)

        self.action.start(compute, done, self.feedback, self.progress, "calibrating one light")

    def _show_light(self, key: tuple) -> None:
        light, view = self.state.previews[key]
        self.view.children = (view,)
        self.feedback.children = tuple(message(t, "warning") for t in light.warnings)

    def calibrate_all(self) -> None:
        """Calibrate the whole night into the output folder (a long action: Cancel stops it)."""
        session = self.state.session
        ok, options = run_action(self.options_form.options, self.feedback)
        if not ok:
            return
        if self.state.calibration is not None and self.state.calibration_options == options \
                and not self.overwrite.value:
            self._show_calibration()
            return
        overwrite = self.overwrite.value

        def done(result) -> None:
            self.state.calibration, self.state.calibration_options = result, options
            self.overwrite.value = False
            run_action(self.state.find_stale, self.feedback)
            self._show_calibration()

        self.action.start(lambda cancel: calibrate_session(session.directory, options, output=session.output,
                                                           overwrite=overwrite, progress=self.progress,
                                                           cancel=cancel),
                          done, self.feedback, self.progress, "calibrating the night")

    def rebuild(self) -> None:
        """Make every stale product again (:func:`~astrocal_widgets.calibrate.rebuild_stale`), with the
        options the night was calibrated with (a long action: Cancel stops it)."""
        session = self.state.session

        def done(rebuilt) -> None:
            run_action(self.state.find_stale, self.feedback)
            # Results and previews made with the replaced files are out of date.
            self.state.previews.clear()
            if rebuilt.calibration is not None:
                self.state.calibration = rebuilt.calibration
                self.state.calibration_options = None
                self._show_calibration()
            level = "warning" if rebuilt.not_rebuilt else "info"
            self.feedback.children = (message(rebuilt.summary().splitlines()[0], level),)
            self._show_stale()
            self.changed()

        self.action.start(lambda cancel: rebuild_stale(session.directory, output=session.output,
                                                       progress=self.progress, cancel=cancel),
                          done, self.feedback, self.progress, "rebuilding the stale products")

    def _show_calibration(self) -> None:
        session = self.state.session
        result = self.state.calibration
        rows = pd.DataFrame([{"light": Path(l.source).name, "written": Path(l.output).name,
                              "state": "reused" if l.reused else "calibrated",
                              "bias": Path(l.bias).name if l.bias else "", "dark": Path(l.dark).name if l.dark else "",
                              "flat": Path(l.flat).name if l.flat else "", "dark scale": l.dark_scale,
                              "defects corrected": l.defects_corrected} for l in result.lights])
        report = w.Accordion(children=[text_block(result.summary())], selected_index=None)
        report.set_title(0, f"Full report: {len(result.decisions)} decisions, {len(result.warnings)} warnings")
        self.result.children = (message(f"{len(result.lights)} calibrated lights in {session.calibrated_dir}", "info"),
                                table_html(rows), report)
        self._show_stale()
        self.changed()

    def status(self) -> tuple[str, str]:
        if not len(self.lights):
            return "blocked", "no lights in this night"
        stale = self.state.stale_of("light")
        if stale:
            return "warning", f"{len(stale)} calibrated lights stale: {stale[0].reason}"
        if self.state.calibration is not None:
            if self.state.calibration.warnings:
                return "warning", f"{len(self.state.calibration.warnings)} warnings"
            return "done", f"{len(self.state.calibration.lights)} lights calibrated"
        if not self.state.saved_kinds("bias", "dark", "flat"):
            return "todo", "no master saved yet (Calibrate all builds them)"
        return "todo", "not calibrated yet"
