"""The files of a poll's results: a horizontal bar chart (matplotlib, Agg backend: no display, no pyplot state
shared between tasks) and the aggregated CSV. Plain values in, bytes out; the labels come localized.

Every text is drawn with math parsing off: a question or option with `$` (e.g. `$\\frac$`) is shown as typed instead
of being parsed as matplotlib math text (which fails on it)."""

from __future__ import annotations

import csv
import io

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100
WIDTH_PX = 1000
# The height grows with the number of bars: a title band plus one band per bar.
HEAD_PX = 160
BAR_PX = 60
LABEL_CHARS = 40


def chart_size(bars: int) -> tuple[int, int]:
    """The PNG's width and height in pixels for a chart of `bars` bars."""
    return WIDTH_PX, HEAD_PX + BAR_PX * max(bars, 1)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def bar_chart(title: str, bars: list[tuple[str, int, float]], footer: str = "") -> bytes:
    """A horizontal bar per (label, count, percent), the first on top; each bar says its count and percent."""
    width, height = chart_size(len(bars))
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.32, 60 / height, 0.6, 1 - 120 / height))
    labels = [_short(label) for label, _count, _percent in bars]
    counts = [count for _label, count, _percent in bars]
    positions = list(range(len(bars)))[::-1]
    axes.barh(positions, counts, color="#2f7ebc", height=0.6)
    axes.set_yticks(positions, labels, parse_math=False)
    most = max(counts, default=0) or 1
    axes.set_xlim(0, most * 1.25)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts of people: no 0.5 ticks
    for y, (_label, count, percent) in zip(positions, bars, strict=True):
        axes.text(count + most * 0.01, y, f"{count} ({percent:.1f}%)", va="center", fontsize=10, parse_math=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.suptitle(_short(title) if len(title) > 90 else title, fontsize=12, y=1 - 20 / height, parse_math=False)
    if footer:
        figure.text(0.01, 10 / height, footer, fontsize=9, color="#555555", parse_math=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def score_chart(title: str, bars: list[tuple[str, float]], footer: str = "") -> bytes:
    """A horizontal bar per (label, score on 0–100), the first on top, the axis from 0 to 100; each bar says its
    score (the agency index of /rating)."""
    width, height = chart_size(len(bars))
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.32, 60 / height, 0.6, 1 - 120 / height))
    labels = [_short(label) for label, _score in bars]
    scores = [score for _label, score in bars]
    positions = list(range(len(bars)))[::-1]
    axes.barh(positions, scores, color="#2f7ebc", height=0.6)
    axes.set_yticks(positions, labels, parse_math=False)
    axes.set_xlim(0, 112)  # room for the last score's label at 100
    for y, score in zip(positions, scores, strict=True):
        axes.text(score + 1, y, f"{score:.1f}", va="center", fontsize=10, parse_math=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.suptitle(_short(title) if len(title) > 90 else title, fontsize=12, y=1 - 20 / height, parse_math=False)
    if footer:
        figure.text(0.01, 10 / height, footer, fontsize=9, color="#555555", parse_math=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def results_csv(header: list[str], rows: list[list[object]]) -> bytes:
    """UTF-8 with a BOM, so that spreadsheet programs read the Cyrillic right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")
