"""Review plots (matplotlib, headless): host-vs-host comparison curves and the program's progress curve.

Every line is told apart by colour, marker or line style (never all three shared), the legend sits outside the
axes, and axes carry units. Lines of one series are split over several panels when there are more than
`MAX_LINES_PER_PANEL` of them, so a legend never grows past what a reader can match to colours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ailab.report.plots import label_axes

MAX_LINES_PER_PANEL = 8
# one colour per line label inside a panel (tab10 has 10, panels hold at most 8); one style per host class
COLOURS = plt.get_cmap("tab10").colors
HOST_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


def comparable(series: list[dict[str, Any]]) -> bool:
    """Series of different hosts can share axes: same kind (line), same x and y columns (name and unit)."""
    first = series[0]
    return all(
        s.get("kind", "line") == "line" == first.get("kind", "line") and s["x"] == first["x"] and s["y"] == first["y"]
        for s in series
    )


def comparison_panels(by_host: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Line labels present on every host, in first-host order, split into panels of at most MAX_LINES_PER_PANEL."""
    hosts = list(by_host)
    common = [label for label in by_host[hosts[0]]["lines"] if all(label in by_host[h]["lines"] for h in hosts[1:])]
    return [common[i : i + MAX_LINES_PER_PANEL] for i in range(0, len(common), MAX_LINES_PER_PANEL)]


def styles(labels: list[str], hosts: list[str]) -> dict[tuple[str, str], tuple[Any, str, str]]:
    """(label, host) -> (colour, line style, marker): colour by label, style and marker by host class."""
    if len(hosts) > len(HOST_STYLES):
        raise ValueError(f"{len(hosts)} host classes: at most {len(HOST_STYLES)} can be told apart in one plot")
    out = {}
    for i, label in enumerate(labels):
        for j, h in enumerate(hosts):
            out[(label, h)] = (COLOURS[i % len(COLOURS)], *HOST_STYLES[j])
    return out


def plot_comparison(by_host: dict[str, dict[str, Any]], title: str, path: Path) -> Path:
    """One series measured on several host classes: colour = line, line style and marker = host class."""
    panels = comparison_panels(by_host)
    if not panels:
        raise ValueError(f"{title}: no line is measured on every host class ({', '.join(by_host)})")
    hosts = list(by_host)
    first = by_host[hosts[0]]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.6 * len(panels)), dpi=100, squeeze=False)
    for ax, labels in zip(axes[:, 0], panels, strict=True):
        style = styles(labels, hosts)
        for label in labels:
            for h in hosts:
                pts = by_host[h]["lines"][label]
                colour, ls, marker = style[(label, h)]
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    color=colour,
                    linestyle=ls,
                    marker=marker,
                    markersize=3,
                    label=f"{label} ({h})",
                )
        label_axes(ax, first)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axes[0, 0].set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


# kinds drawn in the progress curve, bottom to top, with their colours
PROGRESS_KINDS = (
    ("measured_gpu", "measured on GPU", "#1b7837"),
    ("measured_cpu", "measured on CPU", "#5aae61"),
    ("substitute", "substitute", "#fdb863"),
    ("derived", "derived", "#b2abd2"),
    ("generated", "generated (drawn from code)", "#4393c3"),
)


def plot_progress(counts: list[dict[str, int]], weeks: list[int], current: int, path: Path) -> Path:
    """Per week: experiments with an ok result by kind (stacked bars, left); cumulative over the program (right).

    `counts[i]` holds the kinds of week `weeks[i]`; the week under review is outlined."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    bottom = [0] * len(weeks)
    for kind, label, colour in PROGRESS_KINDS:
        ys = [c.get(kind, 0) for c in counts]
        # the week under review outlined; empty segments drawn without an edge, so they leave no stray line
        widths = [1.2 if w == current and y else 0 for w, y in zip(weeks, ys, strict=True)]
        left.bar(weeks, ys, bottom=bottom, color=colour, edgecolor="black", linewidth=widths, label=label)
        bottom = [b + y for b, y in zip(bottom, ys, strict=True)]
    left.set_xlabel("curriculum week")
    left.set_ylabel("experiments with a result (count, of 35 per week)")
    left.set_xticks(weeks)
    left.set_ylim(0, 35)
    left.set_title("per week", fontsize=10)
    left.grid(True, axis="y", alpha=0.3)
    measured = [c.get("measured_gpu", 0) + c.get("measured_cpu", 0) for c in counts]
    anything = [sum(c.get(k, 0) for k, _, _ in PROGRESS_KINDS) for c in counts]
    cum = lambda xs: [sum(xs[: i + 1]) for i in range(len(xs))]  # noqa: E731
    right.plot(weeks, cum(measured), color="#1b7837", marker="o", label="measured (CPU or GPU), cumulative")
    right.plot(weeks, cum(anything), color="#542788", marker="s", linestyle="--", label="any ok result, cumulative")
    right.axvline(current, color="grey", linestyle=":", linewidth=1, label=f"week {current}")
    right.set_xlabel("curriculum week")
    right.set_ylabel("experiments (count, cumulative)")
    right.set_xticks(weeks)
    right.set_ylim(0, None)
    right.set_title("over the program", fontsize=10)
    right.grid(True, alpha=0.3)
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Progress of the program through week {current}", fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
