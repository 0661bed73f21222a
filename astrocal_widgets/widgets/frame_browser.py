"""The frame browser of a master step: look through a set frame by frame, and tick the frames to leave out.

Previous / Next (or the slider) show one frame, downsampled and auto-stretched, with its histogram
(:func:`~astrocal_widgets.workflow.frame_preview` reads only that frame, band by band). Beside it, the
per-frame statistics (:func:`~astrocal_widgets.workflow.review_frames`), sortable, outliers marked
with the reason, and an Exclude box per frame, :data:`PAGE_ROWS` frames a page (the page of the frame
browsed); "Exclude the outliers" ticks the flagged ones of the whole set, on every page. Every
tick is written to the night's exclusion list at once (:func:`~astrocal_widgets.workflow.exclude_frames`),
so Integrate, Calibrate all, ``calibrate_session`` and the next dashboard all leave those frames out.
"""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as w

from .. import plots
from ..frames import FrameGroup
from ..workflow import exclude_frames, frame_preview, include_frames, review_frames, session_exclusions
from ._display import PREVIEW_PIXELS, STATUS_COLOURS, ProgressView, figure_image, message, run_action
from .state import DashboardState

#: Reason written to the exclusion list for a frame ticked by hand with no reason typed.
BY_EYE = "excluded by eye in the dashboard"
#: Columns the table can be sorted by.
SORT_COLUMNS = ("frame", "file", "median", "sigma", "mean", "min", "max", "hot_fraction", "status")
#: Rows of the table shown at a time: a set of hundreds of frames would be hundreds of widgets.
PAGE_ROWS = 50


class FrameBrowser:
    """Browse and exclude the frames of the set a :class:`MasterPanel` has selected."""

    def __init__(self, state: DashboardState, group: Callable[[], FrameGroup], on_change: Callable[[], None]) -> None:
        self.state, self._group, self.on_change = state, group, on_change
        self.reviews: dict[str, object] = {}  # by set label
        self._previews: dict[tuple, w.Widget] = {}
        self.index = w.IntSlider(value=0, min=0, max=0, description="Frame", continuous_update=False,
                                 style={"description_width": "60px"}, layout=w.Layout(width="420px"))
        self.previous_button = w.Button(description="Previous", icon="arrow-left", layout=w.Layout(width="110px"))
        self.next_button = w.Button(description="Next", icon="arrow-right", layout=w.Layout(width="110px"))
        self.exclude_this = w.Checkbox(value=False, description="exclude this frame", indent=False)
        self.reason = w.Text(value="", placeholder=BY_EYE, description="Reason", style={"description_width": "60px"},
                             layout=w.Layout(width="420px"))
        self.measure_button = w.Button(description="Measure the frames", tooltip="per-frame statistics and checks")
        self.outliers_button = w.Button(description="Exclude the outliers", button_style="warning",
                                        tooltip="tick every frame the set's checks single out (warn or fail)")
        self.sort = w.Dropdown(options=SORT_COLUMNS, value="frame", description="Sort by",
                               style={"description_width": "60px"}, layout=w.Layout(width="200px"))
        self.descending = w.Checkbox(value=False, description="descending", indent=False)
        self.progress = ProgressView()
        self.feedback = w.VBox()
        self.view = w.VBox()
        self.rows = w.VBox()
        #: The Exclude boxes of the rows on the page shown, by path.
        self.boxes: dict[str, w.Checkbox] = {}
        self.page = 0  # 0-based
        self.previous_page = w.Button(description="Previous page", icon="angle-left", layout=w.Layout(width="130px"))
        self.next_page = w.Button(description="Next page", icon="angle-right", layout=w.Layout(width="130px"))
        self.page_label = w.HTML("")
        self._listed: dict[str, str] = {}  # the set's exclusions, as last read
        self._quiet = False
        #: Frames are read only once the step is on screen (:meth:`activate`): building the dashboard reads none.
        self.active = False

        self.index.observe(lambda _: self.show() if self.active else None, "value")
        self.previous_button.on_click(lambda _: self.step(-1))
        self.next_button.on_click(lambda _: self.step(+1))
        self.exclude_this.observe(self._this_toggled, "value")
        self.measure_button.on_click(lambda _: self.measure())
        self.outliers_button.on_click(lambda _: self.exclude_outliers())
        for control in (self.sort, self.descending):
            control.observe(lambda _: self.turn_to(0), "value")  # sorted anew: from its top
        self.previous_page.on_click(lambda _: self.turn_to(self.page - 1))
        self.next_page.on_click(lambda _: self.turn_to(self.page + 1))
        self.pages = w.HBox([self.previous_page, self.page_label, self.next_page])
        table = w.VBox([w.HBox([self.measure_button, self.outliers_button, self.sort, self.descending]), self.pages,
                        self.rows],
                       layout=w.Layout(max_height="520px", overflow="auto", flex="1 1 50%"))
        browse = w.VBox([w.HBox([self.previous_button, self.index, self.next_button]),
                         w.HBox([self.exclude_this, self.reason]), self.view],
                        layout=w.Layout(flex="1 1 50%"))
        self.widget = w.VBox([w.HTML("<h4>The frames: look through the set, leave frames out</h4>"),
                              self.progress.widget, self.feedback,
                              w.HBox([browse, table], layout=w.Layout(flex_flow="row wrap"))])

    # ------------------------------------------------------------------ state
    @property
    def group(self) -> FrameGroup:
        return self._group()

    def excluded(self) -> dict[str, str]:
        """The selected set's frames on the night's exclusion list: ``{path: reason}``."""
        listed = session_exclusions(self.state.session)
        return {p: listed[p] for p in map(str, self.group.paths) if p in listed}

    def reset(self) -> None:
        """Another set was selected: back to its first frame."""
        active, self.active = self.active, False
        self.index.max = max(0, len(self.group) - 1)
        self.index.value = 0
        self.active = active
        self.view.children = ()
        self.page = 0
        self._fill_rows()
        if self.active:
            self.show()

    def activate(self) -> None:
        """The step is shown: show the current frame (read now, the first time)."""
        self.active = True
        self._fill_rows()  # the exclusion list may have changed elsewhere (Calibrate all, a notebook)
        self.show()

    # ------------------------------------------------------------------ browsing
    def step(self, delta: int) -> None:
        """Show the previous (-1) or next (+1) frame."""
        self.index.value = min(self.index.max, max(0, self.index.value + delta))

    def show(self) -> None:
        """The current frame (downsampled, auto-stretched) and its histogram; read once and kept."""
        group, i = self.group, int(self.index.value)
        path = str(group.paths[i])
        key = (group.label, path)
        if key not in self._previews:
            def render():
                preview = frame_preview(group, i, max_pixels=PREVIEW_PIXELS)
                name = preview.name
                return w.HBox([figure_image(plots.image(preview.image, title=f"{i}: {name}",
                                                        downsampled=preview.factor), "The frame"),
                               figure_image(plots.histogram(preview.sample, adc_max=preview.adc_max,
                                                            bayer_pattern=preview.bayer_pattern,
                                                            title=f"{name}: histogram"), "Its histogram")])
            ok, view = run_action(render, self.feedback, self.progress, f"reading frame {i}")
            if not ok:
                return
            self._previews[key] = view
        self.view.children = (self._previews[key],)
        page = self._order().index(i) // PAGE_ROWS  # the table follows the frame browsed
        if page != self.page:
            self.turn_to(page)
        self._quiet = True
        self.exclude_this.value = path in self._listed
        self._quiet = False

    # ------------------------------------------------------------------ the table
    def measure(self) -> None:
        """Per-frame statistics and checks of the selected set (each frame read once, band by band)."""
        group = self.group
        if group.label in self.reviews:
            return
        ok, review = run_action(lambda: review_frames(group, lights_temperature=self.state.session.lights_temperature,
                                                      progress=self.progress),
                                self.feedback, self.progress, f"measuring {len(group)} frames")
        if ok:
            self.reviews[group.label] = review
            self._fill_rows()

    def _order(self) -> list[int]:
        """The set's frame numbers in the table's order (sorted once measured)."""
        review = self.reviews.get(self.group.label)
        if review is None:
            return list(range(len(self.group)))
        return [int(i) for i in review.sorted_by(self.sort.value, self.descending.value).index]

    @property
    def n_pages(self) -> int:
        return max(1, -(-len(self.group) // PAGE_ROWS))

    def turn_to(self, page: int) -> None:
        """Show one page of the table (0-based; clipped to the pages there are)."""
        self.page = min(self.n_pages - 1, max(0, int(page)))
        self._fill_rows()

    def _fill_rows(self) -> None:
        group = self.group
        excluded = self._listed = self.excluded()
        review = self.reviews.get(group.label)
        self.boxes = {}
        header = ["", "frame", "file", "median", "sigma", "min", "max", "status / reason"]
        rows = [w.HTML("<b>" + "</b> | <b>".join(header[1:]) + "</b> (tick to exclude)")]
        self.page = min(self.n_pages - 1, max(0, self.page))
        first = self.page * PAGE_ROWS
        if review is None:
            order = [(i, str(group.paths[i]), None) for i in range(first, min(len(group), first + PAGE_ROWS))]
        else:
            table = review.sorted_by(self.sort.value, self.descending.value).iloc[first:first + PAGE_ROWS]
            order = [(int(i), row["path"], row) for i, row in table.iterrows()]
        self.previous_page.disabled, self.next_page.disabled = self.page == 0, self.page == self.n_pages - 1
        self.page_label.value = (f"page {self.page + 1} of {self.n_pages} (rows "
                                 f"{first + 1}-{first + len(order)} of {len(group)}, {len(excluded)} excluded)")
        self.pages.layout.display = "flex" if self.n_pages > 1 else "none"
        for i, path, row in order:
            box = w.Checkbox(value=path in excluded, indent=False, layout=w.Layout(width="28px"),
                             tooltip=f"exclude frame {i}")
            box.path = path  # type: ignore[attr-defined]
            box.observe(self._box_toggled, "value")
            self.boxes[path] = box
            show = w.Button(description=str(i), layout=w.Layout(width="44px"), tooltip="show this frame")
            show.on_click(lambda _, i=i: setattr(self.index, "value", i))
            rows.append(w.HBox([box, show, w.HTML(self._row_html(path, row, excluded.get(path)))]))
        self.rows.children = tuple(rows)

    @staticmethod
    def _row_html(path: str, row, reason: str | None) -> str:
        name = html.escape(path.rsplit("/", 1)[-1])
        if row is None:
            cells = [name]
        else:
            colour = STATUS_COLOURS.get(row["status"], "#555")
            status = f'<span style="color:{colour}"><b>{row["status"]}</b></span>'
            if row["reason"]:
                status += f': {html.escape(row["reason"])}'
            cells = [name] + [f"{row[c]:.5g}" for c in ("median", "sigma", "min", "max")] + [status]
        if reason is not None:
            cells.append(f"<i>excluded: {html.escape(reason or 'no reason given')}</i>")
        return " | ".join(cells)

    # ------------------------------------------------------------------ excluding
    def _this_toggled(self, change) -> None:
        if self._quiet:
            return
        path = str(self.group.paths[int(self.index.value)])
        self.set_excluded({path: self.reason.value.strip() or BY_EYE} if change["new"] else {}, [] if change["new"]
                          else [path])

    def _box_toggled(self, change) -> None:
        if self._quiet:
            return
        path = change["owner"].path
        if change["new"]:
            self.set_excluded({path: self.reason.value.strip() or BY_EYE}, [])
        else:
            self.set_excluded({}, [path])

    def exclude_outliers(self) -> None:
        """Tick every frame the set's checks single out (warn or fail), with the checks' reason."""
        self.measure()
        review = self.reviews.get(self.group.label)
        if review is None:
            return
        outliers = review.outliers("warn")
        if not outliers:
            self.feedback.children = (message("The checks single out no frame of this set.", "info"),)
            return
        self.set_excluded({p: f"outlier: {why}" for p, why in outliers.items()}, [])
        self.feedback.children = (message(f"Excluded {len(outliers)} outlier(s); Integrate leaves them out.",
                                          "info"),)

    def set_excluded(self, add: dict[str, str], remove: list[str]) -> None:
        """Write the choice into the night's exclusion list, then redraw (the master's choice changed)."""
        def write():
            if add:
                exclude_frames(self.state.session, add)
            if remove:
                include_frames(self.state.session, remove)
        ok, _ = run_action(write, self.feedback)
        self._quiet = True
        try:
            self._fill_rows()
            path = str(self.group.paths[int(self.index.value)])
            self.exclude_this.value = path in self._listed
        finally:
            self._quiet = False
        if ok:
            self.on_change()
