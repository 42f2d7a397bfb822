"""Plots from result series (matplotlib, headless)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def axis_label(col: dict[str, Any]) -> str:
    """'name (unit)', or the name alone when the column has no unit."""
    return f"{col['name']} ({col['unit']})" if col.get("unit") else col["name"]


def log_base(xs: list[Any]) -> int:
    """The base of a log x axis: 2 when every positive x is a power of 2 (sizes, batches, counts), else 10 (1, 10,
    100, 1000 replays read as decades, not as 2^3.3)."""
    pos = [float(x) for x in xs if isinstance(x, int | float) and x > 0]
    return 2 if pos and all(math.log2(x).is_integer() for x in pos) else 10


def label_axes(ax: Any, series: dict[str, Any]) -> None:
    """x/y labels with units and the series' log scales (x: see `log_base`)."""
    ax.set_xlabel(axis_label(series["x"]))
    ax.set_ylabel(axis_label(series["y"]))
    if series.get("log_x"):
        xs = [p[0] for pts in series.get("lines", {}).values() for p in pts]
        ax.set_xscale("log", base=log_base(xs))
    if series.get("log_y"):
        ax.set_yscale("log")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _timeline(series: dict[str, Any], title: str, path: Path) -> Path:
    """Gantt chart: one lane per label, one bar per [start, end] point."""
    labels = list(series["lines"])
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.45 * len(labels)), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, label in enumerate(labels):
        bars = [(s, max(e - s, 1e-9)) for s, e in series["lines"][label]]
        ax.broken_barh(bars, (i - 0.4, 0.8), facecolors=colors[i % len(colors)], edgecolor="black", linewidth=0.2)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(axis_label(series["x"]))
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")
HATCHES = ("", "//", "..", "xx")


def line_style(i: int, n: int) -> dict[str, Any]:
    """Plot keywords that keep line i of n distinct: with more lines than the colour cycle holds (10), every further
    round of colours gets its own line style and marker (bars: hatching). Up to 10 lines: matplotlib's defaults."""
    if n <= 10:
        return {}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    k = (i // len(colors)) % len(LINESTYLES)
    return {"color": colors[i % len(colors)], "linestyle": LINESTYLES[k], "marker": MARKERS[k], "hatch": HATCHES[k]}


def plot_series(series: dict[str, Any], title: str, path: Path) -> Path:
    """Render one Series dict (as stored in a result) to a PNG and return its path."""
    kind = series.get("kind", "line")
    if kind == "timeline":
        return _timeline(series, title, path)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    labels = list(series["lines"])
    for i, label in enumerate(labels):
        pts = series["lines"][label]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        style = line_style(i, len(labels))
        if kind == "bar":
            width = 0.8 / max(len(labels), 1)
            pos = [j + i * width for j in range(len(xs))]
            ax.bar(pos, ys, width=width, label=label, color=style.get("color"), hatch=style.get("hatch") or None)
            ticks = [str(x) for x in xs]
            long_ticks = max(len(t) for t in ticks) > 10  # long category names: slant them so they do not collide
            ax.set_xticks(
                [j + 0.4 - width / 2 for j in range(len(xs))],
                ticks,
                rotation=25 if long_ticks else 0,
                ha="right" if long_ticks else "center",
                fontsize=8 if long_ticks else None,
            )
        elif kind == "scatter":
            ax.scatter(xs, ys, label=label, s=14, color=style.get("color"), marker=style.get("marker", "o"))
        else:
            ls = {"color": style["color"], "linestyle": style["linestyle"]} if style else {}
            ax.plot(xs, ys, marker=style.get("marker", "o"), markersize=3, label=label, **ls)
    label_axes(ax, series)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if len(labels) > 1 or kind != "line":  # beside the axes, never over the data
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
        fig.set_size_inches(7 + 0.06 * max(len(str(label)) for label in labels), 4.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
