"""Charts (matplotlib, Agg backend: no display, no pyplot state shared between tasks): a poll's results as a
horizontal bar chart with the aggregated CSV, and a statistics table's bars, lines and heat map
(bot/stats_files.py turns a table into their plain values). Plain values in, bytes out; the labels come localized.

Every text is drawn with math parsing off: a question or option with `$` (e.g. `$\\frac$`) is shown as typed instead
of being parsed as matplotlib math text (which fails on it)."""

from __future__ import annotations

import csv
import io
import math

import matplotlib
import numpy

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

Number = float | None

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


# --- a statistics table's charts -------------------------------------------------------------------------------
LINE_SIZE = (1000, 600)
LINE_TICKS = 12  # at most this many labels under a line chart's time axis
HEAT_HEAD_PX = 220  # the title band and the column labels (turned) of a heat map
HEAT_ROW_PX = 44
HEAT_LABEL_PX = 330
HEAT_COLUMN_PX = 78
HEAT_TAIL_PX = 200  # the colour bar and the right margin
HEAT_LABEL_CHARS = 28
COLOR = "#2f7ebc"
SERIES_COLORS = ("#2f7ebc", "#e07b39", "#3a9e5c", "#c0392b", "#8e6bbf", "#7f7f7f")


def _title(figure: Figure, title: str, height: int, footer: str) -> None:
    figure.suptitle(title if len(title) <= 90 else title[:89] + "…", fontsize=12, y=1 - 20 / height, parse_math=False)
    if footer:
        footer = footer if len(footer) <= 150 else footer[:149] + "…"
        figure.text(0.01, 10 / height, footer, fontsize=9, color="#555555", parse_math=False)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _value(value: Number) -> float:
    return math.nan if value is None else float(value)


def stat_bars(
    title: str, bars: list[tuple[str, Number, str]], axis: str, footer: str = "", *, integer: bool = False
) -> bytes:
    """A horizontal bar per (label, value in the axis' unit, the value as the chat writes it), the first on top; a
    value None (not known, or hidden) draws no bar, only its text. `integer`: the values are counts (no 0.2 ticks)."""
    return _png(stat_bars_figure(title, bars, axis, footer, integer=integer))


def stat_bars_figure(
    title: str, bars: list[tuple[str, Number, str]], axis: str, footer: str = "", *, integer: bool = False
) -> Figure:
    width, height = chart_size(len(bars))
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.36, 80 / height, 0.54, 1 - 140 / height))
    positions = list(range(len(bars)))[::-1]
    values = [value or 0.0 for _label, value, _text in bars]
    axes.barh(positions, values, color=COLOR, height=0.6)
    axes.set_yticks(positions, [_short(label) for label, _value, _text in bars], fontsize=9, parse_math=False)
    most = max(values, default=0) or 1
    axes.set_xlim(0, most * 1.25)
    for y, value, (_label, _number, text) in zip(positions, values, bars, strict=True):
        axes.text(value + most * 0.01, y, text, va="center", fontsize=10, parse_math=False)
    if integer:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(axis, parse_math=False)
    axes.spines[["top", "right"]].set_visible(False)
    _title(figure, title, height, footer)
    return figure


def stat_lines(
    title: str,
    ticks: list[str],
    series: list[tuple[str, list[Number]]],
    axis: str,
    footer: str = "",
    *,
    integer: bool = False,
) -> bytes:
    """One line per (name, a value per tick) over the time axis `ticks` (a value None leaves a gap); a legend when
    there are several lines. `integer`: the values are counts (no 0.2 ticks)."""
    return _png(stat_lines_figure(title, ticks, series, axis, footer, integer=integer))


def stat_lines_figure(
    title: str,
    ticks: list[str],
    series: list[tuple[str, list[Number]]],
    axis: str,
    footer: str = "",
    *,
    integer: bool = False,
) -> Figure:
    width, height = LINE_SIZE
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    several = len(series) > 1
    axes = figure.add_axes((0.08, 0.2, 0.62 if several else 0.88, 0.68))
    positions = list(range(len(ticks)))
    marker = "o" if len(ticks) <= 31 else None
    for n, (name, values) in enumerate(series):
        color = SERIES_COLORS[n % len(SERIES_COLORS)]
        axes.plot(positions, [_value(v) for v in values], color=color, marker=marker, markersize=4, label=_short(name))
    step = max(1, math.ceil(len(ticks) / LINE_TICKS))
    shown = positions[::step]
    axes.set_xticks(shown, [ticks[i] for i in shown], rotation=30, ha="right", fontsize=9, parse_math=False)
    axes.set_xlim(-0.5, max(len(ticks) - 0.5, 0.5))
    axes.set_ylim(bottom=0)
    if integer:
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(axis, parse_math=False)
    axes.grid(axis="y", color="#dddddd")
    axes.spines[["top", "right"]].set_visible(False)
    if several:
        legend = axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=9)
        for text in legend.get_texts():
            text.set_parse_math(False)
    _title(figure, title, height, footer)
    return figure


def heat_map_size(rows: int, columns: int) -> tuple[int, int]:
    """The PNG's width and height in pixels for a heat map of `rows` × `columns` cells."""
    width = HEAT_LABEL_PX + HEAT_COLUMN_PX * max(columns, 1) + HEAT_TAIL_PX
    return max(width, WIDTH_PX), HEAT_HEAD_PX + HEAT_ROW_PX * max(rows, 1) + 40


def heat_map(
    title: str,
    rows: list[str],
    columns: list[str],
    cells: list[list[Number]],
    texts: list[list[str]],
    axis: str,
    footer: str = "",
) -> bytes:
    """A grid of `rows` × `columns` coloured by the cells' values (in the axis' unit; None: grey), each cell
    saying its text."""
    width, height = heat_map_size(len(rows), len(columns))
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    grid_width = HEAT_COLUMN_PX * max(len(columns), 1)
    axes = figure.add_axes(
        (HEAT_LABEL_PX / width, 40 / height, grid_width / width, HEAT_ROW_PX * max(len(rows), 1) / height)
    )
    matrix = numpy.ma.masked_invalid(numpy.array([[_value(v) for v in line] for line in cells], dtype=float))
    palette = matplotlib.colormaps["Blues"].with_extremes(bad="#eeeeee")
    known = [v for line in cells for v in line if v is not None]
    top = max(known, default=0.0) or 1.0
    image = axes.imshow(matrix, cmap=palette, vmin=0, vmax=top, aspect="auto")
    axes.set_xticks(
        range(len(columns)),
        [c if len(c) <= HEAT_LABEL_CHARS else c[: HEAT_LABEL_CHARS - 1] + "…" for c in columns],
        rotation=40,
        ha="left",
        fontsize=9,
        parse_math=False,
    )
    axes.xaxis.tick_top()
    axes.set_yticks(range(len(rows)), [_short(r) for r in rows], fontsize=9, parse_math=False)
    for y, line in enumerate(cells):
        for x, value in enumerate(line):
            dark = value is not None and value > 0.6 * top
            axes.text(
                x,
                y,
                texts[y][x],
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "#222222",
                parse_math=False,
            )
    colorbar = figure.colorbar(image, ax=axes, fraction=0.05, pad=0.02)
    colorbar.set_label(axis, parse_math=False)
    _title(figure, title, height, footer)
    return _png(figure)
