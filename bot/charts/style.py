"""What every chart shares: the palette and type sizes, a 1200x675 canvas with large type (readable when
Slack shrinks it to a ~400 px preview), titles fitted to the width, and saving as PNG. Figures are built
with the object-oriented API (no pyplot state), so rendering in a long-running worker neither leaks
figures nor shares state between threads."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.legend import Legend

# One palette and one set of type sizes for every chart.
ALERT = "#C62828"
PRIMARY = "#1F5FA8"
MUTED = "#A7AFB8"
INK = "#1F2328"
SUBTLE = "#57606A"
GRID = "#E4E7EB"
BAND = "#FBE9E7"

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 6.75, 100  # 1200 x 675 px
TITLE_SIZE = 28
SUBTITLE_SIZE = 21
LABEL_SIZE = 22
TICK_SIZE = 20
NOTE_SIZE = 21
MARGIN_PX = 14

TICK_STEPS = [1, 2, 2.5, 5, 10]
MAX_NAME_CHARS = 28


@dataclass(frozen=True)
class Chart:
    path: Path
    title: str
    alt_text: str


def new_figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(w_pad=0.2, h_pad=0.15)
    return fig, fig.add_subplot()


def style_axes(ax: Axes, *, grid_axis: str) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(SUBTLE)
    ax.tick_params(labelsize=TICK_SIZE, colors=INK, width=1.5, length=6)
    ax.grid(axis=grid_axis, color=GRID, linewidth=1.5, zorder=0)
    ax.set_axisbelow(True)


def top_legend(ax: Axes, handles: list | None = None) -> Legend:
    """A one-row legend above the plot, right-aligned, so it never covers a bar."""
    count = len(handles or ax.get_legend_handles_labels()[0])
    return ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1, 1), ncols=count, fontsize=NOTE_SIZE,
                     frameon=False, borderaxespad=0.3, handlelength=1.4, columnspacing=1.2)


def set_titles(fig: Figure, ax: Axes, title: str, subtitle: str, *, beside: Legend | None = None) -> None:
    # Title and subtitle both start at the figure's left edge, whatever the width of the y labels.
    left = MARGIN_PX / fig.bbox.width
    fig.suptitle(safe(_fit(fig, title, TITLE_SIZE, "bold", max_lines=2)), x=left, ha="left",
                 fontsize=TITLE_SIZE, fontweight="bold", color=INK)
    if subtitle:
        taken = 0.0
        if beside is not None and beside.get_in_layout():
            taken = beside.get_window_extent(fig.canvas.get_renderer()).width + 3 * MARGIN_PX
        line = _fit(fig, subtitle, SUBTITLE_SIZE, "normal", max_lines=1, taken_px=taken)
        ax.annotate(safe(line), (left, 1),
                    xycoords=("figure fraction", "axes fraction"), xytext=(0, 14),
                    textcoords="offset points", va="bottom", fontsize=SUBTITLE_SIZE, color=SUBTLE)


def _fit(fig: Figure, text: str, size: float, weight: str, *, max_lines: int,
         taken_px: float = 0.0) -> str:
    """Wrap text to the canvas width as rendered, ending with an ellipsis past max_lines."""
    renderer = fig.canvas.get_renderer()
    font = FontProperties(size=size, weight=weight)
    limit = fig.bbox.width - 2 * MARGIN_PX - taken_px

    def fits(line: str) -> bool:
        return renderer.get_text_width_height_descent(line, font, ismath=False)[0] <= limit

    lines = [text]
    for width in range(len(text), 0, -1):
        lines = textwrap.wrap(text, width) or [""]
        if all(fits(line) for line in lines):
            break
    # Balance the lines, so a wrapped title does not end on a lone word.
    for width in range(math.ceil(len(text) / len(lines)), len(text) + 1):
        balanced = textwrap.wrap(text, width)
        if len(balanced) == len(lines) and all(fits(line) for line in balanced):
            lines = balanced
            break
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        while lines[-1] and not fits(lines[-1] + "…"):
            lines[-1] = lines[-1][:-1]
        lines[-1] = lines[-1].rstrip() + "…"
    return "\n".join(lines)


def save(fig: Figure, out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, format="png", dpi=DPI, facecolor="white")
    finally:
        fig.clear()  # breaks the figure/axes reference cycles now rather than at the next gc pass


def safe(text: str) -> str:
    # A pair of "$" would switch matplotlib into math mode ("$18,300 vs $10,000").
    return text.replace("$", r"\$")


def shorten(name: str) -> str:
    # Cut in the middle: long feature names often share a prefix and differ at the end.
    if len(name) <= MAX_NAME_CHARS:
        return name
    head = (MAX_NAME_CHARS - 1) * 2 // 5
    return name[:head] + "…" + name[len(name) - (MAX_NAME_CHARS - 1 - head):]


def mid_sentence(label: str) -> str:
    # "Weekly fraud amount missed" -> "weekly fraud amount missed", but "ROC AUC" stays as it is.
    return label[0].lower() + label[1:] if label[:2].istitle() else label


def day(when: datetime, *, year: bool = False) -> str:
    return f"{when:%b} {when.day}" + (f", {when.year}" if year else "")


def date_labels(dates: list[datetime]) -> list[str]:
    """Axis labels for dates: the first with its year ("Nov 2, 2026"), and any where the year turns."""
    return [day(d, year=i == 0 or d.year != dates[i - 1].year) for i, d in enumerate(dates)]
