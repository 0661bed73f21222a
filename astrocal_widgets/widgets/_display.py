"""Small view helpers: figures as PNG images, tables, messages, a progress bar fed by the engine.

Layout and formatting only. A matplotlib Figure displayed into an Output shows in Voila as the text
"<Figure size ... with 1 Axes>", so every plot goes through :func:`~astrocal_widgets.plots.to_png`
into an :class:`ipywidgets.Image`.
"""
from __future__ import annotations

import html
import importlib.util
import threading
import time
import traceback
from typing import Any, Callable

import ipywidgets as w
import pandas as pd

from ..cancel import CancelToken
from ..errors import CancelledError
from ..plots import to_png
from ..workflow.memory import release_memory

#: Largest number of pixels an image preview shows (a 24-megapixel master is block-averaged to this).
PREVIEW_PIXELS = 1_000_000

STATUS_COLOURS = {"pass": "#1a7f37", "warn": "#b35900", "fail": "#c62828", "done": "#1a7f37", "todo": "#555",
                  "blocked": "#888", "warning": "#b35900"}
STATUS_ICONS = {"done": "\u2714", "warning": "\u26a0", "blocked": "\u2298", "todo": "\u25cb"}


def figure_image(fig: Any, caption: str = "") -> w.VBox:
    """A figure rendered to PNG in an Image widget (with a caption), the figure released."""
    png = to_png(fig)
    image = w.Image(value=png, format="png", layout=w.Layout(max_width="100%", height="auto"))
    image.add_class("astrocal-plot")
    parts = [w.HTML(f"<b>{html.escape(caption)}</b>")] if caption else []
    return w.VBox(parts + [image], layout=w.Layout(margin="4px 8px 12px 0"))


def ipympl_available() -> bool:
    """Whether ipympl (interactive matplotlib widgets: pan and zoom) is installed."""
    return importlib.util.find_spec("ipympl") is not None


def interactive_figure(fig: Any, caption: str = "", width_px: int = 560) -> w.VBox | None:
    """A figure as an ipympl canvas with its pan/zoom toolbar, or None without ipympl.

    The figure is drawn by the kernel on demand (no pyplot, no global figure list), so it works in
    Voila as in JupyterLab; a PNG stays the default because it also works in static renderings.
    """
    if not ipympl_available():
        return None
    from ipympl.backend_nbagg import Canvas, FigureManager

    width, height = fig.get_size_inches()
    scale = width_px / (width * fig.dpi)  # fit a grid column: the canvas is drawn at its figure size
    fig.set_size_inches(width * scale, height * scale)
    canvas = Canvas(fig)
    FigureManager(canvas, 0)  # gives the canvas its toolbar
    canvas.header_visible = False
    canvas.toolbar_visible = "visible"
    canvas.toolbar_position = "top"
    canvas.add_class("astrocal-interactive")
    parts = [w.HTML(f"<b>{html.escape(caption)}</b>")] if caption else []
    return w.VBox(parts + [canvas], layout=w.Layout(margin="4px 8px 12px 0"))


def plot_grid(images: list[w.Widget], columns: int | str = 2) -> w.GridBox:
    """Plots side by side: ``columns`` equal columns, or a CSS ``grid-template-columns`` string."""
    template = columns if isinstance(columns, str) else " ".join(["minmax(0, 1fr)"] * columns)
    return w.GridBox(images, layout=w.Layout(grid_template_columns=template, width="100%"))


def table_html(table: pd.DataFrame, *, max_rows: int = 60, status_column: str | None = None,
               float_format: str = "{:.4g}") -> w.HTML:
    """A DataFrame as an HTML table (statuses coloured), scrolled when long."""
    t = table.head(max_rows).copy()
    for column in t.columns:
        if pd.api.types.is_float_dtype(t[column]):
            t[column] = t[column].map(lambda v: "" if pd.isna(v) else float_format.format(v))
    body = t.to_html(index=False, escape=True, border=0, classes="astrocal-table")
    if status_column and status_column in t.columns:
        for status, colour in STATUS_COLOURS.items():
            body = body.replace(f"<td>{status}</td>",
                                f'<td style="color:{colour};font-weight:bold">{status.upper()}</td>')
    more = f"<p><i>{len(table) - max_rows} more rows not shown</i></p>" if len(table) > max_rows else ""
    style = ("<style>.astrocal-table{border-collapse:collapse;font-size:12px}.astrocal-table td,"
             ".astrocal-table th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}</style>")
    return w.HTML(style + f'<div style="max-height:360px;overflow:auto">{body}</div>' + more)


def text_block(text: str) -> w.HTML:
    """Preformatted text (summaries, reports)."""
    # A div, not a <pre>: Jupyter's styles break <pre> text in mid-word.
    return w.HTML('<div style="white-space:pre-wrap;word-break:normal;overflow-wrap:break-word;font-family:'
                  f'monospace;font-size:12px;margin:4px 0">{html.escape(text)}</div>')


def message(text: str, kind: str = "info") -> w.HTML:
    """A message box; ``kind`` is info, warning, error or cancelled (it carries the class ``astrocal-<kind>``)."""
    colours = {"info": ("#e8f0fe", "#1a4d8f"), "warning": ("#fff4e5", "#8a4b00"), "error": ("#fdecea", "#a50e0e"),
               "cancelled": ("#f1f1f1", "#333")}
    back, fore = colours.get(kind, colours["info"])
    box = w.HTML(f'<div style="background:{back};color:{fore};padding:6px 10px;border-radius:4px;'
                 f'white-space:pre-wrap">{html.escape(text)}</div>')
    box.add_class(f"astrocal-{kind}")
    return box


class ProgressView:
    """A progress bar and a line of text, driven by the engine's ``progress(fraction, message)`` hook."""

    def __init__(self) -> None:
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="", bar_style="",
                                   layout=w.Layout(width="50%"))
        self.bar.add_class("astrocal-progress")
        self.label = w.Label("")
        self.widget = w.HBox([self.bar, self.label])
        self.history: list[float] = []  # every value shown, so tests can see the bar move
        self._last = 0.0
        self._finished = False

    def start(self, text: str = "") -> None:
        self._finished = False
        self.bar.bar_style = ""
        self.bar.value = 0.0
        self.label.value = text
        self.history = [0.0]

    def __call__(self, fraction: float, text: str = "") -> None:
        if self._finished:
            # A band already running when its action was cancelled (or failed) ends later: the step
            # keeps saying "cancelled", not "band 2 of 8".
            return
        fraction = min(1.0, max(0.0, float(fraction)))
        now = time.monotonic()
        # Fewer messages to the browser: at most every 50 ms, except the last.
        if fraction < 1.0 and now - self._last < 0.05 and fraction - self.bar.value < 0.05:
            return
        self._last = now
        self.bar.value = fraction
        self.label.value = text
        self.history.append(fraction)

    def finish(self, text: str, ok: bool = True) -> None:
        self._finished = True
        self.bar.value = 1.0 if ok else self.bar.value
        self.bar.bar_style = "success" if ok else "danger"
        self.label.value = text
        self.history.append(self.bar.value)


def run_action(action: Callable[[], Any], feedback: w.Box, progress: ProgressView | None = None,
               busy: str = "working...") -> tuple[bool, Any]:
    """Call ``action``; show a readable message (never a traceback) if it raises.

    Returns ``(True, result)`` or ``(False, exception)``. The traceback is kept on the exception
    (``__traceback__``) and in ``feedback.last_traceback`` for whoever debugs. Memory the action freed is
    handed back to the system afterwards (:func:`~astrocal_widgets.workflow.memory.release_memory`).
    """
    feedback.children = ()
    if progress is not None:
        progress.start(busy)
    try:
        result = action()
    except CancelledError as error:  # asked for: said plainly, not as a failure
        feedback.children = (message(f"Cancelled: {busy.rstrip('.')} was stopped, and nothing it had made is "
                                     "kept (files are written whole or not at all). Start it again when ready.",
                                     "cancelled"),)
        if progress is not None:
            progress.finish("cancelled", ok=False)
        return False, error
    except Exception as error:  # noqa: BLE001 - every failure becomes a message in the dashboard
        text = str(error) or type(error).__name__
        feedback.children = (message(f"{type(error).__name__}: {text}", "error"),)
        feedback.last_traceback = traceback.format_exc()  # type: ignore[attr-defined]
        if progress is not None:
            progress.finish("failed", ok=False)
        return False, error
    finally:
        release_memory()  # what the action freed, back to the system before the next one
    if progress is not None:
        progress.finish("done")
    return True, result


def in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (JupyterLab, Voila), where a click must return at once."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LongAction:
    """The long actions of a step (Integrate, Check, Calibrate, Calibrate all), each with Cancel.

    In a kernel the action runs in a worker thread: the kernel stays free to receive the Cancel click
    (a click handler that ran the action itself would hold it until the end). Elsewhere (a script,
    the tests) it runs in the caller's thread, as before, unless :attr:`background` is set. Cancel sets
    the run's :class:`~astrocal_widgets.cancel.CancelToken`, which the core function looks at between
    bands, masters or lights; the step then shows "cancelled", keeps nothing of the run (``done``
    is only called on success), and can be started again. One long action runs at a time in a
    kernel: two at once would double the memory a 24-megapixel night needs.

    Parameters
    ----------
    *buttons : ipywidgets.Button
        The buttons that start the actions: disabled while one runs, restored after.

    Attributes
    ----------
    cancel_button : ipywidgets.Button
        Enabled only while an action runs.
    background : bool
        Run in a worker thread (default: when in a kernel).
    token : CancelToken or None
        The running (or last) action's token.
    """

    _lock = threading.Lock()
    _running: "LongAction | None" = None  # the one long action running in this process

    def __init__(self, *buttons: w.Button) -> None:
        self.buttons = buttons
        self.cancel_button = w.Button(description="Cancel", disabled=True, icon="stop",
                                      tooltip="stop the running action (within about one band of frames)")
        self.cancel_button.add_class("astrocal-cancel")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.background = in_kernel()
        self.token: CancelToken | None = None
        self.thread: threading.Thread | None = None
        self._was_disabled: list[bool] = []

    @property
    def running(self) -> bool:
        """Whether an action of this step is running."""
        return LongAction._running is self

    def start(self, action: Callable[[CancelToken], Any], done: Callable[[Any], None], feedback: w.Box,
              progress: ProgressView | None = None, busy: str = "working...") -> bool:
        """Run ``action(token)`` (through :func:`run_action`), then ``done(result)`` if it succeeded.

        Returns False (and says why in ``feedback``) when a long action is already running.
        """
        with LongAction._lock:
            other = LongAction._running
            if other is None:
                LongAction._running = self
        if other is not None:
            feedback.children = (message("Another action is running: wait for it to finish, or cancel it, "
                                         "then start this one.", "warning"),)
            return False
        token = self.token = CancelToken()
        self._was_disabled = [b.disabled for b in self.buttons]
        for button in self.buttons:
            button.disabled = True
        self.cancel_button.disabled = False

        def work() -> None:
            try:
                ok, result = run_action(lambda: action(token), feedback, progress, busy)
            finally:
                self.cancel_button.disabled = True
                self.cancel_button.description = "Cancel"
                for button, disabled in zip(self.buttons, self._was_disabled):
                    button.disabled = disabled
                with LongAction._lock:
                    LongAction._running = None
            if ok:  # only a finished result reaches the step's state and views
                run_action(lambda: done(result), feedback)

        if self.background:
            self.thread = threading.Thread(target=work, name="astrocal-action", daemon=True)
            self.thread.start()
        else:
            work()
        return True

    def cancel(self) -> None:
        """Ask the running action to stop (nothing happens when none runs)."""
        if self.token is not None and self.running:
            self.token.cancel()
            self.cancel_button.disabled = True  # pressed once is enough
            self.cancel_button.description = "Cancelling..."

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for an action running in the background; True once none runs."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.running
