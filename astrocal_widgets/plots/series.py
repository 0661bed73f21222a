"""Per-frame statistics through a series of frames."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._common import MAD_TO_SIGMA, new_figure

__all__ = ["frame_series"]


def frame_series(
    table: pd.DataFrame,
    columns: Sequence[str] | str = ("median", "robust_sigma"),
    *,
    x: str = "index",
    flagged: str = "flagged",
    title: str | None = None,
) -> Figure:
    """Per-frame statistics through the series, one panel per column, flagged frames marked.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per frame, in series order.
    columns : str or sequence of str, default ('median', 'robust_sigma')
        Numeric columns to plot, one panel each (sharing the x axis). Each panel shows the series'
        median as a line and a band of +/- 3 robust sigma (normalised MAD) of that column.
    x : str, default 'index'
        ``'index'`` plots against the table index (labelled "frame"), otherwise the name of a
        column (e.g. a time stamp or the exposure).
    flagged : str, default 'flagged'
        Name of a boolean column; when present, the flagged frames are drawn as red crosses and
        counted in the legend.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(columns, str):
        columns = (columns,)
    missing = [c for c in columns if c not in table.columns]
    if missing or not columns:
        raise ValueError(f"frame_series: columns {missing or columns} not in the table "
                         f"(available: {list(table.columns)})")
    if x == "index":
        xs = table.index.to_numpy()
        xlabel = table.index.name or "frame"
    else:
        if x not in table.columns:
            raise ValueError(f"frame_series: x column {x!r} not in the table")
        xs = table[x].to_numpy()
        xlabel = x
    mask = (table[flagged].fillna(False).astype(bool).to_numpy() if flagged in table.columns
            else np.zeros(len(table), bool))

    fig = new_figure((8.0, 1.0 + 2.3 * len(columns)))
    axes = fig.subplots(len(columns), 1, sharex=True, squeeze=False)[:, 0]
    for ax, column in zip(axes, columns):
        ys = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        ax.plot(xs, ys, marker="o", ms=3.5, lw=1, color="tab:blue", label=column)
        good = np.isfinite(ys) & ~mask
        if good.any():
            centre = float(np.median(ys[good]))
            spread = MAD_TO_SIGMA * float(np.median(np.abs(ys[good] - centre)))
            ax.axhline(centre, color="0.3", lw=0.8, ls=":", label=f"median {centre:.5g}")
            if spread > 0:
                ax.axhspan(centre - 3 * spread, centre + 3 * spread, color="tab:blue", alpha=0.08,
                           label="\u00b1 3 robust \u03c3")
        if mask.any():
            ax.plot(xs[mask], ys[mask], ls="none", marker="x", ms=9, mew=2, color="tab:red",
                    label=f"flagged ({int(mask.sum())})")
        ax.set_ylabel(column)
        ax.set_xlabel(xlabel)
        ax.set_title(f"{column} per frame")
        ax.legend(loc="best", fontsize="small")
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    fig.suptitle(title if title is not None else f"{len(table)} frames")
    return fig
