"""The files of a statistics table (bot/stats_files.py): the XLSX and the CSV read back, the "<3" rule of slices by
district × category, and the chart of each kind as a PNG of its size."""

from __future__ import annotations

import asyncio
import csv
import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from bot.charts import LINE_SIZE, chart_size, heat_map_size
from bot.domain import Dimension, Metric, PeriodKind, RejectReason, SliceSpec
from bot.i18n import create_i18n
from bot.services import Services
from bot.services.stats import Scope, Table, TableRow, fold
from bot.stats_files import (
    ChartKind,
    Sheet,
    chart_of,
    chart_png,
    csv_bytes,
    file_name,
    sheet_title,
    table_sheet,
    xlsx_bytes,
)
from storage.models import District
from tests.factories import make_world

PNG = b"\x89PNG\r\n\x1a\n"
FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)


@contextmanager
def locale(services: Services, lang: str = "ru") -> Iterator[None]:
    i18n = create_i18n(services.appeals.settings)
    with i18n.context(), i18n.use_locale(lang):
        yield


def table(services: Services, spec: SliceSpec, rows: list[TableRow], total: TableRow | None = None) -> Table:
    """A table as the service makes one, by hand: the rows in the given order, the total folded (or given)."""
    period = services.stats.days(FIRST, LAST)
    kind = Table(spec, period, Scope(), rows, TableRow((), None, 0)).kind
    return Table(spec, period, Scope(), rows, total or fold(rows, kind))


def count_row(keys: tuple[Any, ...], n: int) -> TableRow:
    return TableRow(keys, float(n), n, float(n))


def share_row(keys: tuple[Any, ...], num: int, base: int) -> TableRow:
    return TableRow(keys, num / base, base, float(num))


def read_xlsx(data: bytes) -> Any:
    return load_workbook(io.BytesIO(data))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def agency_ids(services: Services, n: int) -> list[int]:
    ids = [a.id for a in services.directory.agencies()][:n]
    assert len(ids) == n
    return ids


def district_ids(services: Services) -> list[int]:
    return [d.id for d in services.directory.districts()]


def category_ids(services: Services) -> list[int]:
    return [c.id for b in services.directory.blocks() for c in services.directory.categories(b.id)]


# --- the XLSX --------------------------------------------------------------------------------------------------


async def test_the_xlsx_has_every_row_as_numbers_under_a_bold_frozen_header(services: Services) -> None:
    agencies = agency_ids(services, 20)
    rows = [count_row((a,), 40 - i) for i, a in enumerate(agencies)]
    with locale(services):
        sheet = table_sheet(
            table(services, SliceSpec(Metric.received, (Dimension.agency,)), rows), "ru", services.directory, 3
        )
        data = xlsx_bytes([sheet])
        names = [services.directory.agency(a).name("ru") for a in agencies]  # type: ignore[union-attr]
    ws = read_xlsx(data).active
    assert ws.title == "Поступило обращений"
    assert ws["A1"].value == "Поступило обращений" and ws["A1"].font.b
    assert "01.10.2026–31.10.2026" in ws["A2"].value and "Ведомство" in ws["A2"].value
    assert [c.value for c in ws[3]] == ["Ведомство", "Поступило обращений"]
    assert all(c.font.b and c.fill.fgColor.rgb.endswith("DDEBF7") for c in ws[3])
    assert ws.freeze_panes == "A4"
    # Every row, not only the chat's top 15, then the total; numbers are numbers with an integer format.
    body = [[c.value for c in line] for line in ws.iter_rows(min_row=4)]
    assert body[:-1] == [[name, 40 - i] for i, name in enumerate(names)]
    assert body[-1] == ["Итого", sum(range(21, 41))]
    assert all(isinstance(ws.cell(r, 2).value, int) and ws.cell(r, 2).number_format == "0" for r in range(4, 25))
    assert ws.cell(24, 1).font.b
    assert ws.column_dimensions["A"].width >= max(len(n) for n in names)


async def test_shares_are_fractions_with_a_percent_format_and_their_n(services: Services) -> None:
    districts = district_ids(services)[:3]
    rows = [share_row((districts[0],), 2, 3), share_row((districts[1],), 9, 10), share_row((districts[2],), 0, 4)]
    with locale(services):
        spec = SliceSpec(Metric.on_time_share, (Dimension.district,))
        ws = read_xlsx(xlsx_bytes([table_sheet(table(services, spec, rows), "ru", services.directory, 3)])).active
    assert [c.value for c in ws[3]] == ["Район", "Доля отвеченных в срок", "Обращений, n"]
    values = [[c.value for c in line][1:] for line in ws.iter_rows(min_row=4)]
    assert values == [[0.6667, 3], [0.9, 10], [0, 4], [0.6471, 17]]  # the total: 11 of 17
    assert {ws.cell(r, 2).number_format for r in range(4, 8)} == {"0.0%"}
    assert {ws.cell(r, 3).number_format for r in range(4, 8)} == {"0"}


async def test_times_are_hours_and_averages_two_decimals(services: Services) -> None:
    agencies = agency_ids(services, 2)
    rows = [TableRow((agencies[0],), 5400.0, 7), TableRow((agencies[1],), 3 * 86400.0, 2)]
    total = TableRow((), 7200.0, 9)
    with locale(services, "en"):
        spec = SliceSpec(Metric.answer_median, (Dimension.agency,))
        ws = read_xlsx(
            xlsx_bytes([table_sheet(table(services, spec, rows, total), "en", services.directory, 3)])
        ).active
    assert ws.title == "Time to the answer, median"
    assert [c.value for c in ws[3]] == ["Agency", "Time to the answer, median, hours", "Appeals, n"]
    assert [[c.value for c in line][1:] for line in ws.iter_rows(min_row=4)] == [[1.5, 7], [72, 2], [2, 9]]
    assert ws["B4"].number_format == "0.0"

    rows = [TableRow((agencies[0],), 4.25, 4, 17.0), TableRow((agencies[1],), 2.0, 1, 2.0)]
    with locale(services, "en"):
        spec = SliceSpec(Metric.rating_avg, (Dimension.agency,))
        ws = read_xlsx(xlsx_bytes([table_sheet(table(services, spec, rows), "en", services.directory, 3)])).active
    assert [c.value for c in ws[3]][1:] == ["Average rating", "Ratings, n"]
    assert [[c.value for c in line][1:] for line in ws.iter_rows(min_row=4)] == [[4.25, 4], [2, 1], [3.8, 5]]
    assert ws["B4"].number_format == "0.00"


async def test_the_rejected_share_has_a_column_per_reason(services: Services) -> None:
    districts = district_ids(services)[:2]
    reasons_a = (1, 0, 2, 0, 0, 1)
    reasons_b = (0, 3, 0, 0, 1, 0)
    rows = [
        TableRow((districts[0],), 4 / 10, 10, 4.0, reasons_a),
        TableRow((districts[1],), 4 / 20, 20, 4.0, reasons_b),
    ]
    with locale(services):
        spec = SliceSpec(Metric.rejected_share, (Dimension.district,))
        sheet = table_sheet(table(services, spec, rows), "ru", services.directory, 3)
        ws = read_xlsx(xlsx_bytes([sheet])).active
    assert len(RejectReason) == 6
    assert [c.value for c in ws[3]][3:] == [
        "Отклонено: нецензурная брань или угрозы",
        "Отклонено: неразборчиво",
        "Отклонено: нет адреса",
        "Отклонено: спам",
        "Отклонено: повторное",
        "Отклонено: вне компетенции",
    ]
    body = [[c.value for c in line][1:] for line in ws.iter_rows(min_row=4)]
    assert body == [[0.4, 10, *reasons_a], [0.2, 20, *reasons_b], [0.2667, 30, 1, 3, 2, 0, 1, 1]]
    assert sheet.formats == [None, "percent", "int", *["int"] * 6]


async def test_a_slice_by_no_dimension_is_one_total_line(services: Services) -> None:
    with locale(services):
        spec = SliceSpec(Metric.on_time_share)
        sheet = table_sheet(table(services, spec, [], TableRow((), 0.75, 8, 6.0)), "ru", services.directory, 3)
    assert sheet.headers == ["", "Доля отвеченных в срок", "Обращений, n"]
    assert sheet.rows == [["Итого", 0.75, 8]]


async def test_an_empty_slice_is_a_sheet_with_its_header_and_a_zero_total(services: Services) -> None:
    with locale(services):
        spec = SliceSpec(Metric.received, (Dimension.district, Dimension.kind))
        sheet = table_sheet(table(services, spec, []), "ru", services.directory, 3)
        data = xlsx_bytes([sheet])
    assert sheet.rows == [["Итого", "", 0]]
    ws = read_xlsx(data).active
    assert [c.value for c in ws[3]] == ["Район", "Вид обращения", "Поступило обращений"] and ws.freeze_panes == "A4"


async def test_sheet_names_are_what_excel_accepts(services: Services) -> None:
    assert sheet_title("a/b:c*d?[e]\\f") == "a b c d  e  f"
    assert sheet_title("'quoted'") == "quoted"
    assert sheet_title("") == "Sheet"
    long = sheet_title("Время до первого действия, 90-й процентиль")
    assert len(long) == 31 and long.endswith("…")
    one = Sheet("Same", ["x"], [[1]], ["int"])
    two = Sheet("Same", ["x"], [[2]], ["int"])
    book = read_xlsx(xlsx_bytes([one, two]))
    assert book.sheetnames == ["Same", "Same (2)"]
    assert book["Same (2)"]["A4"].value == 2


# --- the CSV ---------------------------------------------------------------------------------------------------


async def test_the_csv_is_utf8_with_a_bom_and_plain_numbers(services: Services) -> None:
    districts = district_ids(services)[:2]
    rows = [share_row((districts[0],), 2, 3), share_row((districts[1],), 1, 8)]
    with locale(services):
        spec = SliceSpec(Metric.on_time_share, (Dimension.district,))
        data = csv_bytes(table_sheet(table(services, spec, rows), "ru", services.directory, 3))
        names = [services.directory.district(d).name("ru") for d in districts]  # type: ignore[union-attr]
    assert data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines == [
        ["Район", "Доля отвеченных в срок", "Обращений, n"],
        [names[0], "0.6667", "3"],
        [names[1], "0.125", "8"],
        ["Итого", "0.2727", "11"],
    ]
    assert any("а" <= ch <= "я" for ch in names[0].lower())  # the labels are Cyrillic, read back as written


# --- the "<3" rule ---------------------------------------------------------------------------------------------


async def test_small_cells_of_district_by_category_are_hidden_in_every_file(services: Services) -> None:
    d, c = district_ids(services)[:2], category_ids(services)[:2]
    rows = [
        count_row((d[0], c[0]), 7),
        count_row((d[0], c[1]), 3),
        count_row((d[1], c[0]), 2),
        count_row((d[1], c[1]), 1),
    ]
    with locale(services):
        spec = SliceSpec(Metric.received, (Dimension.district, Dimension.category))
        sheet = table_sheet(table(services, spec, rows), "ru", services.directory, 3)
        data = csv_bytes(sheet)
        book = read_xlsx(xlsx_bytes([sheet])).active
    assert [line[2] for line in sheet.rows] == [7, 3, "<3", "<3", 13]
    assert "«<3»" in sheet.note or "“<3”" in sheet.note
    assert [line[2] for line in csv.reader(io.StringIO(data.decode("utf-8-sig")))][1:] == ["7", "3", "<3", "<3", "13"]
    assert book["C6"].value == "<3" and book["C6"].data_type == "s"

    # A share hides its value and its n; so does a time, and the reasons of the rejected share.
    rows = [share_row((d[0], c[0]), 1, 2), share_row((d[1], c[0]), 3, 4)]
    with locale(services):
        spec = SliceSpec(Metric.on_time_share, (Dimension.category, Dimension.district))
        sheet = table_sheet(table(services, spec, rows), "ru", services.directory, 3)
    assert [line[2:] for line in sheet.rows] == [["<3", "<3"], [0.75, 4], [0.6667, 6]]
    rows = [TableRow((d[0], c[0]), 0.5, 2, 1.0, (1, 0, 0, 0, 0, 0))]
    with locale(services):
        spec = SliceSpec(Metric.rejected_share, (Dimension.district, Dimension.category))
        sheet = table_sheet(table(services, spec, rows), "ru", services.directory, 3)
    assert sheet.rows[0][2:] == ["<3"] * 8
    rows = [TableRow((d[0], c[0]), 3600.0, 2)]
    with locale(services):
        spec = SliceSpec(Metric.answer_median, (Dimension.district, Dimension.category))
        sheet = table_sheet(table(services, spec, rows, TableRow((), 3600.0, 2)), "ru", services.directory, 5)
    assert sheet.rows == [[sheet.rows[0][0], sheet.rows[0][1], "<5", "<5"], ["Итого", "", "<5", "<5"]]


async def test_a_filter_counts_as_the_other_half_of_district_by_category(services: Services) -> None:
    d, c = district_ids(services)[:2], category_ids(services)[:2]
    rows = [count_row((d[0],), 5), count_row((d[1],), 1)]
    with locale(services):
        by_district = SliceSpec(Metric.received, (Dimension.district,))
        plain = table_sheet(table(services, by_district, rows), "ru", services.directory, 3)
        filtered = by_district.with_filter(Dimension.category, (c[0],))
        hidden = table_sheet(table(services, filtered, rows), "ru", services.directory, 3)
        both = SliceSpec(Metric.received, (), ((Dimension.category, (c[0],)), (Dimension.district, (d[1],))))
        one = table_sheet(table(services, both, [], TableRow((), 2.0, 2, 2.0)), "ru", services.directory, 3)
        by_block = SliceSpec(Metric.received, (Dimension.district, Dimension.block))
        blocks = table_sheet(table(services, by_block, [count_row((d[0], 1), 1)]), "ru", services.directory, 3)
    assert [line[1] for line in plain.rows] == [5, 1, 6]  # by district alone: nothing hidden
    assert [line[1] for line in hidden.rows] == [5, "<3", 6]
    category = services.directory.category(c[0]).name("ru")  # type: ignore[union-attr]
    assert f"Только: Категория: {category}" in hidden.note and "«<3»" in hidden.note and "«<3»" not in plain.note
    assert one.rows == [["Итого", "<3"]]
    assert blocks.rows[0][2] == 1


# --- labels that look like markup, math or formulas -----------------------------------------------------------


async def test_labels_with_markup_dollars_or_formulas_stay_text(services: Services) -> None:
    d = district_ids(services)[:3]
    odd = {d[0]: "<b>Район</b> & $\\frac$", d[1]: "=SUM(A1:A9)", d[2]: "$x$ район"}
    async with services.appeals.sessionmaker() as session:
        for district_id, name in odd.items():
            await session.execute(update(District).where(District.id == district_id).values(names={"ru": name}))
        await session.commit()
    await services.directory.reload()
    rows = [count_row((d[0],), 5), count_row((d[1],), 4), count_row((d[2],), 3)]
    with locale(services):
        spec = SliceSpec(Metric.received, (Dimension.district,))
        made = table(services, spec, rows)
        sheet = table_sheet(made, "ru", services.directory, 3)
        ws = read_xlsx(xlsx_bytes([sheet])).active
        data = csv_bytes(sheet)
        png = chart_png(made, "ru", services.directory)
        by_day = table(
            services,
            SliceSpec(Metric.received, (Dimension.day, Dimension.district)),
            [
                count_row((FIRST.isoformat(), d[0]), 2),
                count_row((FIRST.isoformat(), d[2]), 1),
            ],
        )
        lines = chart_png(by_day, "ru", services.directory)
        heat = chart_png(
            table(
                services,
                SliceSpec(Metric.received, (Dimension.district, Dimension.kind)),
                [
                    count_row((d[0], "message"), 2),
                    count_row((d[2], "appeal"), 1),
                ],
            ),
            "ru",
            services.directory,
        )
    assert [ws.cell(r, 1).value for r in range(4, 7)] == list(odd.values())
    assert ws["A5"].data_type == "s"  # not a formula
    assert [line[0] for line in csv.reader(io.StringIO(data.decode("utf-8-sig")))][1:4] == [
        odd[d[0]],
        "'" + odd[d[1]],
        odd[d[2]],
    ]
    assert png is not None and png[:8] == PNG
    assert lines is not None and lines[:8] == PNG
    assert heat is not None and heat[:8] == PNG


# --- charts ----------------------------------------------------------------------------------------------------


async def test_one_dimension_is_bars_of_the_top_rows_and_the_rest(services: Services) -> None:
    agencies = agency_ids(services, 20)
    rows = [count_row((a,), 40 - i) for i, a in enumerate(agencies)]
    with locale(services):
        png = chart_png(
            table(services, SliceSpec(Metric.received, (Dimension.agency,)), rows), "ru", services.directory
        )
        few = chart_png(
            table(services, SliceSpec(Metric.received, (Dimension.agency,)), rows[:4]), "ru", services.directory
        )
    assert png is not None and png_size(png) == chart_size(16)  # 15 and the others
    assert few is not None and png_size(few) == chart_size(4)


async def test_a_time_dimension_is_a_line_and_a_second_one_makes_a_line_each(services: Services) -> None:
    days = [(FIRST + timedelta(days=i)).isoformat() for i in range(31)]
    with locale(services):
        one = table(
            services,
            SliceSpec(Metric.received, (Dimension.day,)),
            [count_row((k,), i % 5) for i, k in enumerate(days) if i % 5],
        )
        png = chart_png(one, "ru", services.directory)
        districts = district_ids(services)[:8]
        rows = [count_row((k, dist), 1 + (i + j) % 4) for i, k in enumerate(days) for j, dist in enumerate(districts)]
        several = chart_png(
            table(services, SliceSpec(Metric.received, (Dimension.day, Dimension.district)), rows),
            "ru",
            services.directory,
        )
        months = table(
            services,
            SliceSpec(Metric.answer_median, (Dimension.district, Dimension.month)),
            [TableRow((dist, "2026-10"), 7200.0 * (j + 1), 3) for j, dist in enumerate(districts)],
        )
        durations = chart_png(months, "ru", services.directory)
        weeks = table(
            services,
            SliceSpec(Metric.on_time_share, (Dimension.week,)),
            [share_row(("2026-09-28",), 1, 2), share_row(("2026-10-12",), 3, 4)],
        )
        shares = chart_png(weeks, "ru", services.directory)
    for made in (png, several, durations, shares):
        assert made is not None and png_size(made) == LINE_SIZE


async def test_two_dimensions_are_a_heat_map_of_the_top_15_by_10(services: Services) -> None:
    districts, categories = district_ids(services), category_ids(services)
    assert len(districts) > 15 and len(categories) > 10
    rows = [count_row((d, c), 1 + (i * j) % 7) for i, d in enumerate(districts) for j, c in enumerate(categories)]
    small = [count_row((d, c), 1 + i + j) for i, d in enumerate(districts[:3]) for j, c in enumerate(categories[:2])]
    with locale(services):
        big = chart_png(
            table(services, SliceSpec(Metric.received, (Dimension.district, Dimension.category)), rows),
            "ru",
            services.directory,
        )
        few = chart_png(
            table(services, SliceSpec(Metric.received, (Dimension.district, Dimension.category)), small),
            "ru",
            services.directory,
            small_cell=3,
        )
    assert big is not None and png_size(big) == heat_map_size(15, 10)
    assert few is not None and png_size(few) == heat_map_size(3, 2)


async def test_no_chart_without_a_dimension_or_without_rows(services: Services) -> None:
    with locale(services):
        assert (
            chart_png(
                table(services, SliceSpec(Metric.received), [], TableRow((), 4.0, 4, 4.0)), "ru", services.directory
            )
            is None
        )
        assert (
            chart_png(table(services, SliceSpec(Metric.received, (Dimension.district,)), []), "ru", services.directory)
            is None
        )


async def test_the_bars_are_the_chats_top_rows_and_the_rest_summed(services: Services) -> None:
    agencies = agency_ids(services, 20)
    rows = [share_row((a,), i % 4, 4) for i, a in enumerate(agencies)]
    with locale(services):
        chart = chart_of(
            table(services, SliceSpec(Metric.on_time_share, (Dimension.agency,)), rows), "ru", services.directory
        )
        names = [services.directory.agency(a).name("ru") for a in agencies]  # type: ignore[union-attr]
    assert chart is not None and chart.kind == ChartKind.bars
    assert chart.title == "Доля отвеченных в срок · 01.10.2026–31.10.2026" and chart.axis == "Доля, %"
    assert [b[0] for b in chart.bars] == [*names[:15], "Остальные (5)"]
    assert chart.bars[1] == (names[1], 25.0, "25.0%")
    rest = sum(i % 4 for i in range(15, 20)) / 20
    assert chart.bars[-1][1] == pytest.approx(100 * rest)


async def test_the_lines_fill_the_period_and_keep_the_five_biggest(services: Services) -> None:
    districts = district_ids(services)[:8]
    days = [(FIRST + timedelta(days=i)).isoformat() for i in range(31)]
    # District j has j + 1 appeals a day, except on the 2nd of October (no row: none that day).
    rows = [count_row((k, d), j + 1) for k in days if k != "2026-10-02" for j, d in enumerate(districts)]
    with locale(services):
        chart = chart_of(
            table(services, SliceSpec(Metric.received, (Dimension.day, Dimension.district)), rows),
            "ru",
            services.directory,
        )
        names = [services.directory.district(d).name("ru") for d in districts]  # type: ignore[union-attr]
    assert chart is not None and chart.kind == ChartKind.lines and chart.axis == "Обращения"
    assert chart.ticks[0] == "01.10.2026" and chart.ticks[-1] == "31.10.2026" and len(chart.ticks) == 31
    assert [name for name, _values in chart.series] == [*names[7:2:-1], "Остальные (3)"]
    assert chart.series[0][1][:3] == [8.0, 0.0, 8.0]
    assert chart.series[-1][1][:3] == [6.0, 0.0, 6.0]  # 1 + 2 + 3

    # Weeks (their Mondays) over the whole period; a share of no appeals is a gap; times of the rest: no line.
    weeks = [share_row(("2026-09-28",), 1, 2), share_row(("2026-10-12",), 3, 4)]
    months = [TableRow((d, "2026-10"), 3600.0 * (j + 1), j + 1) for j, d in enumerate(districts)]
    with locale(services):
        by_week = chart_of(
            table(services, SliceSpec(Metric.on_time_share, (Dimension.week,)), weeks), "ru", services.directory
        )
        by_month = chart_of(
            table(services, SliceSpec(Metric.answer_median, (Dimension.district, Dimension.month)), months),
            "ru",
            services.directory,
        )
    assert by_week is not None
    assert by_week.ticks == [
        "неделя с 28.09.2026",
        "неделя с 05.10.2026",
        "неделя с 12.10.2026",
        "неделя с 19.10.2026",
        "неделя с 26.10.2026",
    ]
    assert by_week.series == [("Доля отвеченных в срок", [50.0, None, 75.0, None, None])]
    assert by_month is not None and by_month.axis == "Часы" and len(by_month.series) == 5
    assert by_month.series[0][1] == [8.0]


async def test_the_heat_map_is_the_top_rows_by_the_top_columns(services: Services) -> None:
    districts, categories = district_ids(services)[:17], category_ids(services)[:12]
    # The appeals grow with the district's and the category's position: the last ones are the biggest.
    rows = [count_row((d, c), 1 + i + j) for i, d in enumerate(districts) for j, c in enumerate(categories)]
    with locale(services):
        spec = SliceSpec(Metric.received, (Dimension.district, Dimension.category))
        chart = chart_of(table(services, spec, rows), "ru", services.directory, small_cell=3)
        plain = chart_of(table(services, spec, rows), "ru", services.directory)
        by_kind = [count_row((d, "message"), 1) for d in districts[:2]]
        kinds = chart_of(
            table(services, SliceSpec(Metric.received, (Dimension.district, Dimension.kind)), by_kind),
            "ru",
            services.directory,
            small_cell=3,
        )
        row_names = [services.directory.district(d).name("ru") for d in districts]  # type: ignore[union-attr]
    assert chart is not None and chart.kind == ChartKind.heat_map
    assert chart.rows == row_names[:1:-1] and len(chart.columns) == 10
    assert chart.cells[0][0] == 16 + 11 + 1 and chart.texts[0][0] == "28"
    # Only the smallest cells (1 and 2 appeals) are hidden, and they are not among the top 15 × 10 here…
    assert all(text != "<3" for line in chart.texts for text in line)
    small = [count_row((districts[0], categories[0]), 1), count_row((districts[0], categories[1]), 4)]
    with locale(services):
        few = chart_of(table(services, spec, small), "ru", services.directory, small_cell=3)
    assert few is not None and few.cells == [[4.0, None]] and few.texts == [["4", "<3"]]
    # …without small_cell (the chat's own chart) nothing is hidden; a slice by district × kind hides nothing.
    assert plain is not None and plain.texts == chart.texts
    assert kinds is not None and kinds.texts == [["1"], ["1"]]


# --- a table the service made ---------------------------------------------------------------------------------


async def test_a_slice_of_filed_appeals_exports_as_it_was_counted(services: Services, clock: Any) -> None:
    world = await make_world(services, clock)
    d = district_ids(services)
    for district_id in (d[0], d[0], d[0], d[1]):
        await world.file(district_id=district_id)
    spec = SliceSpec(Metric.received, (Dimension.district,), (), PeriodKind.today)
    made = await services.stats.slice(world["analyst"], spec)
    with locale(services):
        sheet = table_sheet(made, "ru", services.directory, 3)
        ws = read_xlsx(xlsx_bytes([sheet])).active
        png = chart_png(made, "ru", services.directory)
        names = [services.directory.district(i).name("ru") for i in d[:2]]  # type: ignore[union-attr]
    assert [[c.value for c in line] for line in ws.iter_rows(min_row=4)] == [[names[0], 3], [names[1], 1], ["Итого", 4]]
    assert png is not None and png_size(png) == chart_size(2)

    # The same appeals by district × category: the district of one appeal is hidden, the total is not.
    spec = SliceSpec(Metric.received, (Dimension.district, Dimension.category), (), PeriodKind.today)
    made = await services.stats.slice(world["analyst"], spec)
    with locale(services):
        sheet = table_sheet(made, "ru", services.directory, 3)
    assert [line[2] for line in sheet.rows] == [3, "<3", 4]


@pytest.mark.parametrize("lang", ["ru", "ce", "en"])
async def test_every_language_names_the_columns(services: Services, lang: str) -> None:
    with locale(services, lang):
        spec = SliceSpec(Metric.rejected_share, (Dimension.district, Dimension.category))
        sheet = table_sheet(table(services, spec, []), lang, services.directory, 3)
    assert all(h for h in sheet.headers) and "{" not in sheet.note
    assert len(set(sheet.headers)) == len(sheet.headers)


async def test_the_files_are_made_off_the_event_loop_in_the_readers_language(services: Services) -> None:
    rows = [count_row((d,), 2) for d in district_ids(services)[:3]]
    made = table(
        services, SliceSpec(Metric.answer_p90, (Dimension.district,)), [TableRow(r.keys, 3600.0, 4) for r in rows]
    )
    with locale(services, "ce"):
        sheet = await asyncio.to_thread(table_sheet, made, "ce", services.directory, 3)
        png = await asyncio.to_thread(chart_png, made, "ce", services.directory)
    assert sheet.headers[0] == "КӀошт" and sheet.rows[-1][0] == "Дерриге а"
    assert png is not None and png_size(png) == chart_size(3)
    assert file_name(made, "xlsx") == "stats-answer-p90-district-20261001-20261031.xlsx"


async def test_a_count_chart_has_whole_ticks_and_a_share_chart_keeps_its_fractions(services: Services) -> None:
    """QA: a chart of 1 and 2 appeals had an axis of 0.2 steps; counts of appeals have whole ticks only."""
    from bot.charts import stat_bars_figure, stat_lines_figure

    districts = district_ids(services)[:2]
    with locale(services):
        rows = [count_row((d,), 1 + n) for n, d in enumerate(districts)]
        counts = chart_of(table(services, SliceSpec(Metric.received, (Dimension.district,)), rows), "ru", services.directory)
        shares = chart_of(
            table(services, SliceSpec(Metric.on_time_share, (Dimension.district,)), [share_row((districts[0],), 1, 2)]),
            "ru",
            services.directory,
        )
    assert counts is not None and counts.integer and shares is not None and not shares.integer
    bars = stat_bars_figure(counts.title, counts.bars, counts.axis, integer=counts.integer).axes[0].get_xticks()
    assert len(bars) >= 2 and all(float(t).is_integer() for t in bars)
    plain = stat_bars_figure(counts.title, counts.bars, counts.axis).axes[0].get_xticks()
    assert not all(float(t).is_integer() for t in plain)  # what matplotlib draws by itself for 1 and 2
    lines = stat_lines_figure("t", ["a", "b"], [("x", [1.0, 2.0])], "Обращения", integer=True).axes[0].get_yticks()
    assert all(float(t).is_integer() for t in lines)
