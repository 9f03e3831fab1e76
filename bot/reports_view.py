"""How the scheduled reports read (bot/services/reports.py): the leadership's weekly "state of the region" (a block
head's is the same held to the block), a scheduled preset's slice and the monthly agency rating, each as an HTML text,
a chart (PNG) and a spreadsheet (XLSX, a sheet per section), in one language.

Everything here leaves the bot, so a category × district cell counting fewer than `stats.small_cell` appeals shows
"<3" (the text, the sheet and the chart alike), and a figure that would give such a cell away (the change against the
week before, a growth factor) is not shown. Names from the directories are escaped before they go into HTML.

Called inside the reader's locale (`I18n.use_locale`): `_` is the current gettext."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from html import escape

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot import stats_files
from bot.charts import bar_chart
from bot.config import Settings
from bot.domain import METRIC_KINDS, Dimension, MetricKind
from bot.rating_view import rating_chart, rating_sheet, rating_text
from bot.services.directory import DirectoryService
from bot.services.reports import Composed
from bot.services.stats import AgencyRating, ProblemSpot, RegionWeek, Table, TableRow
from bot.stats_view import dimension_name, heading_lines, label, period_text, row_label, value_text

# Lines of the overdue-by-agency section in the text (the spreadsheet has every agency).
OVERDUE_LINES = 15
# The columns of bot/rating_view.py rating_sheet: place, agency, index, previous place, answered, on-time share,
# median days, average rating, ratings, re-opened share, returned share.
RATING_FORMATS: list[str | None] = ["int", None, "float2", "int", "int", "percent", "float2", "float2", "int", "percent", "percent"]
# Problem spots listed in the text (the spreadsheet has them all); with the top 10 the text stays within 4096 characters.
SPOT_LINES = 10


def is_small(count: int | float | None, small: int) -> bool:
    """A cell of 1 to small − 1 appeals (bot/stats_files.py `hidden`: a cell of none reveals nobody and keeps its 0)."""
    return 0 < int(count or 0) < small


def masked(count: int | float | None, small: int) -> str:
    """A category × district cell as it leaves the bot: "<3" for a small one."""
    return f"<{small}" if is_small(count, small) else str(int(count or 0))


def cell(count: int | float | None, small: int) -> int | str:
    """The same for a spreadsheet: a number, or the "<3" text."""
    return f"<{small}" if is_small(count, small) else int(count or 0)


def change(now: int, before: int, small: int) -> str:
    """The change of a cell against the period before; not shown when either count is a small cell (it would give the
    small one away), except that growth from or to a small cell shows as an arrow."""
    if not is_small(now, small) and not is_small(before, small):
        return f"{now - before:+d}"
    if not is_small(now, small) or not is_small(before, small):
        return "↑" if now > before else "↓"
    return "—"


def change_cell(now: int, before: int, small: int) -> int | str:
    """The change for a spreadsheet: a number when it gives nothing away."""
    return now - before if not is_small(now, small) and not is_small(before, small) else change(now, before, small)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _avg(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _count(row: TableRow) -> int:
    return int(row.value or 0)


class ReportComposer:
    """Renders the reports' data in a language (bot/services/reports.py calls it for each recipients' language)."""

    def __init__(self, i18n: I18n, settings: Settings, directory: DirectoryService) -> None:
        self.i18n = i18n
        self.settings = settings
        self.directory = directory

    @contextmanager
    def _in(self, lang: str) -> Iterator[None]:
        """The reader's gettext as the current one (the scheduler's jobs run outside any update's context)."""
        with self.i18n.context(), self.i18n.use_locale(lang):
            yield

    @property
    def small(self) -> int:
        return self.settings.stats.small_cell

    def _name(self, dimension: Dimension, key: int | None, lang: str) -> str:
        return label(dimension, key, lang, self.directory)

    # --- the weekly "state of the region" (and of a block) -----------------------------------------------------

    def region(self, week: RegionWeek, breakdown: Table, lang: str) -> Composed:
        with self._in(lang):
            return Composed(
                self._region_text(week, lang), self.region_chart(week, breakdown, lang), self.region_sheet(week, lang)
            )

    def region_title(self, week: RegionWeek, lang: str) -> str:
        if week.scope.block_id is not None:
            block = self._name(Dimension.block, week.scope.block_id, lang)
            return _("Week {period} in the block «{block}»").format(period=period_text(week.period), block=block)
        return _("State of the region, week {period}").format(period=period_text(week.period))

    def region_text(self, week: RegionWeek, lang: str) -> str:
        """The report's text alone, in `lang`."""
        with self._in(lang):
            return self._region_text(week, lang)

    def _region_text(self, week: RegionWeek, lang: str) -> str:
        small = self.small
        received, before = _count(week.received), _count(week.received_before)
        answered = week.answered
        lines = [
            f"<b>📈 {escape(self.region_title(week, lang))}</b>",
            "",
            _("Received: {count} (the week before: {before}, {change:+d})").format(
                count=received, before=before, change=received - before
            ),
            _("Answered: {count}, on time: {on_time} ({share}; the week before: {before})").format(
                count=answered.base,
                on_time=int(answered.num or 0),
                share=_pct(answered.value),
                before=_pct(week.answered_before.value),
            ),
            _("Average rating: {average} of 5 ({count} ratings; the week before: {before})").format(
                average=_avg(week.rating.value), count=week.rating.base, before=_avg(week.rating_before.value)
            ),
            _("«Is it fixed?»: yes {share} of {count} answers").format(
                share=_pct(week.fixed.value), count=week.fixed.base
            ),
            "",
            "<b>" + escape(_("Overdue now by agency: {count}").format(count=_count(week.overdue.total))) + "</b>",
        ]
        shown, rest = week.overdue.head(OVERDUE_LINES)
        for row in shown:
            lines.append(f"• {escape(self._name(Dimension.agency, row.keys[0], lang))}: {_count(row)}")  # type: ignore[arg-type]
        if rest is not None:
            lines.append("• " + escape(_("Others ({count})").format(count=len(week.overdue.rows) - len(shown))) + f": {_count(rest)}")
        lines += ["", "<b>" + escape(_("Top {count} problems: category × district").format(count=len(week.problems))) + "</b>"]
        if not week.problems:
            lines.append(escape(_("No appeals this week.")))
        for index, problem in enumerate(week.problems, 1):
            name = f"{self._name(Dimension.category, problem.category_id, lang)} · {self._name(Dimension.district, problem.district_id, lang)}"
            lines.append(
                escape(
                    _("{index}. {name}: {count} (the week before: {before}, {change})").format(
                        index=index,
                        name=name,
                        count=masked(problem.count, small),
                        before=masked(problem.before, small),
                        change=change(problem.count, problem.before, small),
                    )
                )
            )
        lines += ["", "<b>" + escape(_("⚠️ Problem spots (conflict situations)")) + "</b>"]
        if not week.spots:
            lines.append(escape(_("None: no category × district grew past {factor} times its usual week.").format(
                factor=self.settings.stats.problem_factor
            )))
        for spot in week.spots[:SPOT_LINES]:
            name = f"{self._name(Dimension.category, spot.category_id, lang)} · {self._name(Dimension.district, spot.district_id, lang)}"
            four_weeks = round(spot.weekly_before * 4)
            if not is_small(spot.count, small) and not is_small(four_weeks, small) and four_weeks:
                line = _("{name}: {count} this week, {before} in the 4 weeks before (×{factor:.1f})").format(
                    name=name, count=spot.count, before=four_weeks, factor=spot.factor or 0
                )
            else:
                line = _("{name}: {count} this week, {before} in the 4 weeks before").format(
                    name=name, count=masked(spot.count, small), before=masked(four_weeks, small)
                )
            lines.append("• " + escape(line))
        if len(week.spots) > SPOT_LINES:
            lines.append(escape(_("…and {count} more (in the spreadsheet).").format(count=len(week.spots) - SPOT_LINES)))
        return "\n".join(lines)

    def region_chart(self, week: RegionWeek, breakdown: Table, lang: str) -> bytes | None:
        """Bars of the appeals received in the week by thematic block (a block head's: by category)."""
        if not breakdown.rows:
            return None
        total = _count(breakdown.total) or 1
        dimension = breakdown.spec.dims[0]
        bars = [
            (self._name(dimension, row.keys[0], lang), _count(row), 100 * _count(row) / total)  # type: ignore[arg-type]
            for row in breakdown.rows
        ]
        title = _("Appeals received by {dimension}, {period}").format(
            dimension=dimension_name(dimension).lower(), period=period_text(week.period)
        )
        return bar_chart(title, bars, self.region_title(week, lang))

    def region_sheet(self, week: RegionWeek, lang: str) -> bytes:
        """A sheet per section: the summary, overdue by agency, the top problems, the problem spots."""
        small = self.small
        answered, before = week.answered, week.answered_before
        note = self.region_title(week, lang)
        summary = stats_files.Sheet(
            _("Summary"),
            [_("Figure"), _("This week"), _("The week before")],
            [
                [_("Received"), _count(week.received), _count(week.received_before)],
                [_("Answered"), answered.base, before.base],
                [_("Answered on time"), int(answered.num or 0), int(before.num or 0)],
                [_("Share answered on time"), answered.value, before.value],
                [_("Average rating"), week.rating.value, week.rating_before.value],
                [_("Ratings given"), week.rating.base, week.rating_before.base],
                [_("«Is it fixed?»: share of yes"), week.fixed.value, None],
                [_("Overdue now"), _count(week.overdue.total), None],
            ],
            [None, None, None],
            note,
        )
        overdue = stats_files.Sheet(
            _("Overdue by agency"),
            [_("Agency"), _("Overdue now")],
            [[self._name(Dimension.agency, row.keys[0], lang), _count(row)] for row in week.overdue.rows],  # type: ignore[arg-type]
            [None, "int"],
            note,
        )
        problems = stats_files.Sheet(
            _("Top problems"),
            [_("Category"), _("District"), _("This week"), _("The week before"), _("Change")],
            [
                [
                    self._name(Dimension.category, p.category_id, lang),
                    self._name(Dimension.district, p.district_id, lang),
                    cell(p.count, small),
                    cell(p.before, small),
                    change_cell(p.count, p.before, small),
                ]
                for p in week.problems
            ],
            [None, None, "int", "int", "int"],
            note,
        )
        spots = stats_files.Sheet(
            _("Problem spots"),
            [_("Category"), _("District"), _("This week"), _("The 4 weeks before"), _("Growth factor")],
            [self._spot_row(s, lang) for s in week.spots],
            [None, None, "int", "int", "float2"],
            note,
        )
        return stats_files.xlsx_bytes([summary, overdue, problems, spots])

    def _spot_row(self, spot: ProblemSpot, lang: str) -> list[int | float | str | None]:
        small = self.small
        four_weeks = round(spot.weekly_before * 4)
        shown = not is_small(spot.count, small) and not is_small(four_weeks, small) and spot.factor is not None
        return [
            self._name(Dimension.category, spot.category_id, lang),
            self._name(Dimension.district, spot.district_id, lang),
            cell(spot.count, small),
            cell(four_weeks, small),
            round(spot.factor, 2) if shown and spot.factor is not None else None,
        ]

    # --- a scheduled preset ---------------------------------------------------------------------------------

    def preset(self, name: str, table: Table, lang: str) -> Composed:
        with self._in(lang):
            text = (
                "<b>" + escape(_("🗓 Scheduled report «{name}»").format(name=name)) + "</b>\n"
                + self.table_text(table, lang)
            )
            chart = stats_files.chart_png(table, lang, self.directory, self.small)
            sheet = stats_files.xlsx_bytes([stats_files.table_sheet(table, lang, self.directory, self.small)])
            return Composed(text, chart, sheet)

    def table_text(self, table: Table, lang: str) -> str:
        """A slice as a report's text: bot/stats_view.py's layout, with category × district cells under the threshold
        shown as "<3" (a count) or left out (a share or a time standing on fewer appeals)."""
        spec = table.spec
        kind = METRIC_KINDS[spec.metric]
        lines = heading_lines(table, lang, self.directory)
        lines.append("")
        if not spec.dims:
            value = value_text(spec.metric, table.total.value)
            show = kind == MetricKind.count or table.total.base
            lines.append(f"<b>{escape(value)}</b>" if show else "—")
            return "\n".join(lines)
        if not table.rows:
            lines.append(escape(_("No appeals in this slice.")))
            return "\n".join(lines)
        shown, rest = table.head(self.settings.stats.top_rows)
        body = []
        for row in shown:
            body.append(f"{row_label(table, row, lang, self.directory)}: {self._value(table, row)}")
        if rest is not None:
            others = _("Others ({count})").format(count=len(table.rows) - len(shown))
            body.append(f"{others}: {value_text(spec.metric, rest.value)}")
        body.append(f"{_('Total')}: {value_text(spec.metric, table.total.value)}")
        lines += [escape(line) for line in body]
        return "\n".join(lines)

    def _value(self, table: Table, row: TableRow) -> str:
        """A row's value (and for a share, an average or a time, the n it stands on); "<3" for a small category ×
        district cell, whatever the metric (bot/stats_files.py applies the same rule to the sheet and the chart)."""
        small = self.small
        if stats_files.hidden(table, row, small):
            return f"<{small}"
        value = value_text(table.spec.metric, row.value)
        return value if table.kind == MetricKind.count else f"{value} (n = {row.base})"

    # --- the monthly agency rating ---------------------------------------------------------------------------

    def rating(self, rating: AgencyRating, lang: str) -> Composed:
        with self._in(lang):
            # rating_text has its own title (the agency rating, the period and the one it is compared with).
            text = escape(_("📅 Monthly report to the leadership")) + "\n" + rating_text(rating, lang, self.directory)
            chart = rating_chart(rating, lang, self.directory)
            header, *rows = rating_sheet(rating, lang, self.directory)
            sheet = stats_files.Sheet(
                _("Agency rating"),
                [str(h) for h in header],
                [[v if isinstance(v, int | float | str) or v is None else str(v) for v in row] for row in rows],
                RATING_FORMATS,
                period_text(rating.period),
            )
            return Composed(text, chart, stats_files.xlsx_bytes([sheet]))
