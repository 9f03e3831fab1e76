"""The files of a statistics table (bot/services/stats.py Table): the chart image sent with the chat's table, and
the whole table as a spreadsheet (XLSX) or CSV for the export buttons and the scheduled reports.

Called inside the reader's locale, like bot/stats_view.py, whose names and labels it uses. The spreadsheets keep
numbers as numbers (counts as integers, shares as fractions with a percent format, times as hours) and every row
of the table, with a total; the chart shows what the chat's table shows (the top rows, the rest summed).

The "<3" rule of the issue: in a slice by district × category (both among the dimensions, or one a dimension and
the other a filter, or both filters), a cell standing on 1 to small_cell − 1 appeals shows "<3" instead of its
value and its n, for every metric (a cell of none reveals nobody and keeps its 0). Everything that leaves the bot
applies it: the sheets always, the charts when the caller passes `small_cell` (the scheduled reports do; the
chat's own chart, like the chat's table, does not).

Building a file is CPU work (a year by day × category is some 20,000 rows, a few seconds of openpyxl): callers on
the event loop run these functions through `asyncio.to_thread`, which carries the reader's locale along (aiogram's
i18n keeps it in a context variable)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum

from aiogram.utils.i18n import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from bot import charts
from bot.domain import TIME_DIMENSIONS, Dimension, Metric, MetricKind, RejectReason
from bot.i18n import N_
from bot.services.directory import DirectoryService
from bot.services.stats import Table, TableRow, fold
from bot.stats_view import REASON_NAMES, dimension_name, label, metric_name, period_text, row_label, value_text

Cell = str | int | float | None
Key = int | str | None

TOP_BARS = 15
TOP_LINES = 5
TOP_HEAT_ROWS = 15
TOP_HEAT_COLUMNS = 10
DIGITS = 4  # fractions and hours keep 4 decimals: 66.67 %, 0.0001 h, plain in a CSV
SHEET_TITLE_CHARS = 31  # Excel's limit
SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # not allowed in XLSX text
FORMULA_START = ("=", "+", "-", "@")  # a spreadsheet would run a text starting so as a formula
NUMBER_FORMATS = {"int": "0", "percent": "0.0%", "float2": "0.00", "hours": "0.0"}
KIND_FORMATS = {
    MetricKind.count: "int",
    MetricKind.share: "percent",
    MetricKind.average: "float2",
    MetricKind.duration: "hours",
}
BASE_NAMES = {
    Metric.rating_avg: N_("Ratings, n"),
    Metric.fixed_share: N_("Replies, n"),
}
BASE_NAME = N_("Appeals, n")
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TITLE_ROW, NOTE_ROW, HEADER_ROW = 1, 2, 3


@dataclass(frozen=True)
class Sheet:
    title: str  # the sheet's name (≤ 31 chars, Excel's limit; sanitized)
    headers: list[str]
    rows: list[list[Cell]]
    formats: list[str | None]  # per column: None (text), "int", "percent", "float2", "hours"
    note: str = ""  # a line under the title: period, dimensions, filters


# --- the "<3" rule ----------------------------------------------------------------------------------------------


def small_cells_hidden(table: Table) -> bool:
    """Whether the table is a slice by district × category (by its dimensions or its filters)."""
    spec = table.spec
    cut = set(spec.dims) | {dim for dim, _values in spec.filters}
    return {Dimension.district, Dimension.category} <= cut


def hidden(table: Table, row: TableRow, small_cell: int) -> bool:
    """Whether this row's cell is shown as "<small_cell" (see the module's docstring)."""
    return small_cells_hidden(table) and 0 < row.base < small_cell


# --- the sheet --------------------------------------------------------------------------------------------------


def sheet_title(text: str) -> str:
    """A worksheet name Excel accepts: no []:*?/\\, no apostrophe at the ends, at most 31 characters."""
    text = SHEET_TITLE_FORBIDDEN.sub(" ", CONTROL.sub("", text)).strip().strip("'").strip()
    if len(text) > SHEET_TITLE_CHARS:
        text = text[: SHEET_TITLE_CHARS - 1].rstrip() + "…"
    return text or "Sheet"


def _number(value: float | None, kind: MetricKind) -> Cell:
    if value is None:
        return None
    match kind:
        case MetricKind.count:
            return round(value)
        case MetricKind.duration:
            return round(value / 3600, DIGITS)
    return round(value, DIGITS)


def _filters(table: Table, lang: str, directory: DirectoryService) -> str:
    """«Only: District: Grozny; Kind: …», or "" without filters (plain text: files are not HTML)."""
    if not table.spec.filters:
        return ""
    filters = "; ".join(
        f"{dimension_name(dim)}: {', '.join(label(dim, v, lang, directory) for v in values)}"
        for dim, values in table.spec.filters
    )
    return _("Only: {filters}").format(filters=filters)


def _note(table: Table, lang: str, directory: DirectoryService, small_cell: int, title: str) -> str:
    spec = table.spec
    name = metric_name(spec.metric)
    parts = [name] if name != title else []
    parts.append(_("Period: {period}").format(period=period_text(table.period)))
    if spec.dims:
        parts.append(_("By: {dimensions}").format(dimensions=" × ".join(dimension_name(d) for d in spec.dims)))
    if spec.filters:
        parts.append(_filters(table, lang, directory))
    if small_cells_hidden(table):
        parts.append(_("“<{count}”: fewer than {count} appeals, not shown").format(count=small_cell))
    return " · ".join(parts)


def table_sheet(table: Table, lang: str, directory: DirectoryService, small_cell: int) -> Sheet:
    """Every row of the table (not only the chat's top), one column per dimension, the value, its n (for shares,
    averages and times), one column per reject reason (rejected share), and the total row."""
    spec = table.spec
    kind = table.kind
    rejected = spec.metric == Metric.rejected_share
    value_header = metric_name(spec.metric)
    if kind == MetricKind.duration:
        value_header = _("{metric}, hours").format(metric=value_header)
    headers = [dimension_name(d) for d in spec.dims] or [""]
    formats: list[str | None] = [None] * len(headers)
    headers.append(value_header)
    formats.append(KIND_FORMATS[kind])
    if kind != MetricKind.count:
        headers.append(_(BASE_NAMES.get(spec.metric, BASE_NAME)))
        formats.append("int")
    if rejected:
        for reason in RejectReason:
            headers.append(_("Rejected: {reason}").format(reason=_(REASON_NAMES[reason])))
            formats.append("int")
    mask = f"<{small_cell}"

    def figures(row: TableRow) -> list[Cell]:
        cells: list[Cell] = [_number(row.value, kind)]
        if kind != MetricKind.count:
            cells.append(row.base)
        if rejected:
            cells.extend(row.reasons or (0,) * len(RejectReason))
        return [mask] * len(cells) if hidden(table, row, small_cell) else cells

    rows: list[list[Cell]] = []
    for row in table.rows:
        labels: list[Cell] = [label(d, k, lang, directory) for d, k in zip(spec.dims, row.keys, strict=True)]
        rows.append(labels + figures(row))
    total: list[Cell] = [_("Total")] + [""] * (max(len(spec.dims), 1) - 1)
    rows.append(total + figures(table.total))
    title = sheet_title(metric_name(spec.metric))
    return Sheet(title, headers, rows, formats, _note(table, lang, directory, small_cell, title))


def file_name(table: Table, extension: str) -> str:
    """An ASCII file name for the export: stats-<metric>-<dimensions>-<first day>-<last day>.<extension>."""
    parts = ["stats", table.spec.metric.value, *(d.value for d in table.spec.dims)]
    first, last = table.period.first_day, table.period.last_day
    return "-".join([*parts, f"{first:%Y%m%d}", f"{last:%Y%m%d}"]).replace("_", "-") + f".{extension}"


# --- XLSX and CSV -----------------------------------------------------------------------------------------------


def _text(value: str) -> str:
    return CONTROL.sub("", value)


def xlsx_bytes(sheets: list[Sheet]) -> bytes:
    """One worksheet per sheet: the title and the note above a bold, filled header row, frozen below it; numbers
    with their column's format; the last row (the total) bold; columns as wide as their contents."""
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    used: set[str] = set()
    for sheet in sheets:
        name, n = sheet.title, 1
        while name.lower() in used:
            n += 1
            suffix = f" ({n})"
            name = sheet.title[: SHEET_TITLE_CHARS - len(suffix)] + suffix
        used.add(name.lower())
        ws = workbook.create_sheet(name)
        title = ws.cell(TITLE_ROW, 1, _text(sheet.title))
        title.font = Font(bold=True, size=13)
        if sheet.note:
            note = ws.cell(NOTE_ROW, 1, _text(sheet.note))
            note.font = Font(italic=True, color="555555")
        for column, header in enumerate(sheet.headers, start=1):
            cell = ws.cell(HEADER_ROW, column, _text(header))
            cell.data_type = "s"
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        widths = [min(len(h), 30) for h in sheet.headers]
        for offset, values in enumerate(sheet.rows):
            row = HEADER_ROW + 1 + offset
            last = offset == len(sheet.rows) - 1
            for column, (value, kind) in enumerate(zip(values, sheet.formats, strict=True), start=1):
                cell = ws.cell(row, column, _text(value) if isinstance(value, str) else value)
                if isinstance(value, str):
                    cell.data_type = "s"  # a label starting with "=" stays a text, not a formula
                    if kind is not None:
                        cell.alignment = Alignment(horizontal="right")
                elif value is not None and kind is not None:
                    cell.number_format = NUMBER_FORMATS[kind]
                if last:
                    cell.font = Font(bold=True)
                shown = value if isinstance(value, str) else _plain(value)
                widths[column - 1] = max(widths[column - 1], len(shown))
        for column, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(column)].width = min(max(width + 2, 10), 60)
        ws.freeze_panes = ws.cell(HEADER_ROW + 1, 1)
        if len(sheet.rows) > 1:
            ws.auto_filter.ref = (
                f"A{HEADER_ROW}:{get_column_letter(len(sheet.headers))}{HEADER_ROW + len(sheet.rows) - 1}"
            )
    if not sheets:
        workbook.create_sheet("Sheet")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _plain(value: Cell) -> str:
    """A number as a spreadsheet reads it anywhere: "." decimal, no exponent, no trailing zeros."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.{DIGITS}f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    return value


def _csv_text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_bytes(sheet: Sheet) -> bytes:
    """The header row and every row, "," separated, UTF-8 with a BOM (so that Excel reads the Cyrillic right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_csv_text(h) for h in sheet.headers])
    for values in sheet.rows:
        writer.writerow([_csv_text(v) if isinstance(v, str) else _plain(v) for v in values])
    return buffer.getvalue().encode("utf-8-sig")


# --- the chart --------------------------------------------------------------------------------------------------


def _scale(table: Table) -> tuple[str, float]:
    """The value axis' name and the factor from the metric's value to it."""
    match table.kind:
        case MetricKind.count:
            return (_("Ratings") if table.spec.metric == Metric.rating_count else _("Appeals")), 1.0
        case MetricKind.share:
            return _("Share, %"), 100.0
        case MetricKind.average:
            return _("Rating, stars"), 1.0
    longest = max((r.value for r in table.rows if r.value is not None), default=0.0)
    if longest >= 3 * 86400:
        return _("Days"), 1 / 86400
    return _("Hours"), 1 / 3600


def _point(table: Table, row: TableRow, factor: float, small_cell: int) -> tuple[float | None, str]:
    if small_cell and hidden(table, row, small_cell):
        return None, f"<{small_cell}"
    value = None if row.value is None else row.value * factor
    return value, value_text(table.spec.metric, row.value)


def _buckets(dimension: Dimension, first: date, last: date) -> list[str]:
    """Every day, week (its Monday) or month ("YYYY-MM") of the period, as the SQL keys them."""
    if dimension == Dimension.month:
        keys, year, month = [], first.year, first.month
        while (year, month) <= (last.year, last.month):
            keys.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return keys
    step = 7 if dimension == Dimension.week else 1
    day = first - timedelta(days=first.weekday()) if dimension == Dimension.week else first
    keys = []
    while day <= last:
        keys.append(day.isoformat())
        day += timedelta(days=step)
    return keys


class ChartKind(StrEnum):
    bars = "bars"
    lines = "lines"
    heat_map = "heat_map"


@dataclass(frozen=True)
class Chart:
    """What a chart shows, in plain values (values in the axis' unit; None: not known or hidden), before it is
    drawn by bot/charts.py."""

    kind: ChartKind
    title: str
    axis: str
    footer: str = ""
    integer: bool = False  # the values are counts: whole ticks on the value axis
    bars: list[tuple[str, float | None, str]] = field(default_factory=list)  # label, value, its text
    ticks: list[str] = field(default_factory=list)  # lines: the time axis
    series: list[tuple[str, list[float | None]]] = field(default_factory=list)  # lines: name, a value per tick
    rows: list[str] = field(default_factory=list)  # heat map
    columns: list[str] = field(default_factory=list)
    cells: list[list[float | None]] = field(default_factory=list)
    texts: list[list[str]] = field(default_factory=list)


def chart_of(
    table: Table, lang: str, directory: DirectoryService, small_cell: int = 0, top: int = TOP_BARS
) -> Chart | None:
    """The chart that helps read the table, or None (no dimension, no rows): bars for one dimension (the top
    rows, the rest summed), a line over a time dimension (one per value of a second dimension: the 5 biggest, the
    rest summed), a heat map for two dimensions (the top 15 × top 10 by total). `small_cell`: apply the "<3" rule
    (for charts that leave the bot)."""
    spec = table.spec
    if not spec.dims or not table.rows:
        return None
    title = f"{metric_name(spec.metric)} · {period_text(table.period)}"
    axis, factor = _scale(table)
    chart = Chart(ChartKind.bars, title, axis, _filters(table, lang, directory), integer=table.kind == MetricKind.count)
    times = [d for d in spec.dims if d in TIME_DIMENSIONS]
    if times:
        return _lines(chart, table, lang, directory, times[0], factor, small_cell)
    if len(spec.dims) == 1:
        shown, rest = table.head(top)
        bars = [(row_label(table, row, lang, directory), *_point(table, row, factor, small_cell)) for row in shown]
        if rest is not None:
            others = _("Others ({count})").format(count=len(table.rows) - len(shown))
            bars.append((others, *_point(table, rest, factor, small_cell)))
        return replace(chart, bars=bars)
    return _heat(chart, table, lang, directory, factor, small_cell)


def render(chart: Chart) -> bytes:
    """The chart as a PNG."""
    match chart.kind:
        case ChartKind.bars:
            return charts.stat_bars(chart.title, chart.bars, chart.axis, chart.footer, integer=chart.integer)
        case ChartKind.lines:
            return charts.stat_lines(
                chart.title, chart.ticks, chart.series, chart.axis, chart.footer, integer=chart.integer
            )
    return charts.heat_map(chart.title, chart.rows, chart.columns, chart.cells, chart.texts, chart.axis, chart.footer)


def chart_png(
    table: Table, lang: str, directory: DirectoryService, small_cell: int = 0, top: int = TOP_BARS
) -> bytes | None:
    """The table's chart (chart_of) as a PNG, or None when no chart helps."""
    chart = chart_of(table, lang, directory, small_cell, top)
    return render(chart) if chart is not None else None


def _groups(table: Table, position: int) -> dict[Key, list[TableRow]]:
    groups: dict[Key, list[TableRow]] = {}
    for row in table.rows:
        groups.setdefault(row.keys[position], []).append(row)
    return groups


def _ranked(groups: dict[Key, list[TableRow]], kind: MetricKind, limit: int) -> tuple[list[Key], list[Key]]:
    """The keys of one dimension by the number of appeals they stand on: the `limit` biggest and the rest."""
    order = sorted(groups, key=lambda k: (-fold(groups[k], kind).base, str(k)))
    return order[:limit], order[limit:]


def _lines(
    chart: Chart,
    table: Table,
    lang: str,
    directory: DirectoryService,
    time: Dimension,
    factor: float,
    small_cell: int,
) -> Chart:
    spec = table.spec
    at = spec.dims.index(time)
    keys = sorted(
        set(_buckets(time, table.period.first_day, table.period.last_day)) | {r.keys[at] for r in table.rows}, key=str
    )
    # A count missing from the SQL's rows is 0; a share or a time of no appeals is not known (a gap).
    empty = 0.0 if table.kind == MetricKind.count else None

    def line(rows: list[TableRow]) -> list[float | None]:
        by_key = {row.keys[at]: row for row in rows}
        return [_point(table, by_key[k], factor, small_cell)[0] if k in by_key else empty for k in keys]

    if len(spec.dims) == 1:
        series = [(metric_name(spec.metric), line(table.rows))]
    else:
        other = 1 - at
        groups = _groups(table, other)
        biggest, rest = _ranked(groups, table.kind, TOP_LINES)
        series = [(label(spec.dims[other], key, lang, directory), line(groups[key])) for key in biggest]
        if rest and table.kind != MetricKind.duration:  # a percentile of the rest is not known: no line
            left: dict[Key, list[TableRow]] = {}
            for key in rest:
                for row in groups[key]:
                    left.setdefault(row.keys[at], []).append(row)
            values = [
                _point(table, fold(left[k], table.kind), factor, small_cell)[0] if k in left else empty for k in keys
            ]
            series.append((_("Others ({count})").format(count=len(rest)), values))
    ticks = [label(time, k, lang, directory) for k in keys]
    return replace(chart, kind=ChartKind.lines, ticks=ticks, series=series)


def _heat(
    chart: Chart,
    table: Table,
    lang: str,
    directory: DirectoryService,
    factor: float,
    small_cell: int,
) -> Chart:
    spec = table.spec
    lines, _rest = _ranked(_groups(table, 0), table.kind, TOP_HEAT_ROWS)
    columns, _rest = _ranked(_groups(table, 1), table.kind, TOP_HEAT_COLUMNS)
    by_keys = {row.keys: row for row in table.rows}
    cells: list[list[float | None]] = []
    texts: list[list[str]] = []
    for line in lines:
        values, words = [], []
        for column in columns:
            row = by_keys.get((line, column))
            if row is None:  # no appeals there: a count of 0, a share or a time not known
                values.append(0.0 if table.kind == MetricKind.count else None)
                words.append("")
                continue
            value, text = _point(table, row, factor, small_cell)
            values.append(value)
            words.append(text)
        cells.append(values)
        texts.append(words)
    return replace(
        chart,
        kind=ChartKind.heat_map,
        rows=[label(spec.dims[0], k, lang, directory) for k in lines],
        columns=[label(spec.dims[1], k, lang, directory) for k in columns],
        cells=cells,
        texts=texts,
    )
