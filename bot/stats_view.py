"""How a statistics table (bot/services/stats.py Table) reads in a chat: the names of metrics, dimensions and
periods, each row's label in the reader's language, each value in its unit, and the compact table message.

Called inside the reader's locale (a handler's, or `i18n.use_locale` for the scheduler's reports): `_` is the
current gettext. Every label that comes from a directory (names admins may edit) is escaped before it goes into
HTML. Charts and spreadsheets of the same table: bot/stats_files.py."""

from __future__ import annotations

from datetime import date
from html import escape

from aiogram.utils.i18n import gettext as _
from babel.dates import format_date

from bot.domain import (
    METRIC_KINDS,
    Dimension,
    Metric,
    MetricKind,
    PeriodKind,
    RejectReason,
)
from bot.i18n import N_
from bot.services.directory import DirectoryService
from bot.services.stats import Period, Table, TableRow
from bot.texts import status_name

METRIC_NAMES = {
    Metric.received: N_("Appeals received"),
    Metric.answered: N_("Appeals answered"),
    Metric.on_time: N_("Answered on time"),
    Metric.overdue: N_("Overdue now"),
    Metric.on_time_share: N_("Share answered on time"),
    Metric.first_action_median: N_("Time to the first action, median"),
    Metric.first_action_p90: N_("Time to the first action, 90th percentile"),
    Metric.answer_median: N_("Time to the answer, median"),
    Metric.answer_p90: N_("Time to the answer, 90th percentile"),
    Metric.reopened_share: N_("Share re-opened"),
    Metric.rejected_share: N_("Share rejected"),
    Metric.rating_avg: N_("Average rating"),
    Metric.rating_count: N_("Ratings given"),
    Metric.fixed_share: N_("«Is it fixed?»: share of yes"),
}
DIMENSION_NAMES = {
    Dimension.block: N_("Thematic block"),
    Dimension.category: N_("Category"),
    Dimension.agency: N_("Agency"),
    Dimension.district: N_("District"),
    Dimension.status: N_("Status"),
    Dimension.kind: N_("Kind"),
    Dimension.month: N_("Month"),
    Dimension.week: N_("Week"),
    Dimension.day: N_("Day"),
}
PERIOD_NAMES = {
    PeriodKind.today: N_("Today"),
    PeriodKind.days7: N_("7 days"),
    PeriodKind.days30: N_("30 days"),
    PeriodKind.this_month: N_("This month"),
    PeriodKind.last_month: N_("Last month"),
    PeriodKind.quarter: N_("This quarter"),
    PeriodKind.year: N_("This year"),
    PeriodKind.custom: N_("Two dates…"),
}
SHORT_KINDS = {"message": N_("Message (ПОС)"), "appeal": N_("Appeal (59-FZ)")}
REASON_NAMES = {
    RejectReason.obscene: N_("obscenity or threats"),
    RejectReason.unreadable: N_("unreadable"),
    RejectReason.no_address: N_("no address"),
    RejectReason.spam: N_("spam"),
    RejectReason.repeated: N_("repeated"),
    RejectReason.out_of_competence: N_("out of competence"),
}
LABEL_CHARS = 26
VALUE_CHARS = 9


def metric_name(metric: Metric) -> str:
    return _(METRIC_NAMES[metric])


def dimension_name(dimension: Dimension) -> str:
    return _(DIMENSION_NAMES[dimension])


def period_text(period: Period) -> str:
    first, last = period.first_day.strftime("%d.%m.%Y"), period.last_day.strftime("%d.%m.%Y")
    return first if first == last else f"{first}–{last}"


def label(dimension: Dimension, key: int | str | None, lang: str, directory: DirectoryService) -> str:
    """The plain (unescaped) name of one value of a dimension in `lang`."""
    if key is None:
        return _("not routed") if dimension == Dimension.agency else "—"
    match dimension:
        case Dimension.block:
            named = directory.block(int(key))
        case Dimension.category:
            named = directory.category(int(key))
        case Dimension.agency:
            named = directory.agency(int(key))
        case Dimension.district:
            named = directory.district(int(key))
        case Dimension.status:
            return status_name(str(key))
        case Dimension.kind:
            name = SHORT_KINDS.get(str(key))
            return _(name) if name else str(key)
        case Dimension.month:
            year, month = str(key).split("-")[:2]
            return format_date(date(int(year), int(month), 1), "LLLL yyyy", locale=lang)
        case Dimension.week:
            return _("week of {date}").format(date=date.fromisoformat(str(key)).strftime("%d.%m.%Y"))
        case Dimension.day:
            return date.fromisoformat(str(key)).strftime("%d.%m.%Y")
    return named.name(lang) if named else str(key)


FILTER_NAMES_SHOWN = 5


def filter_names(dimension: Dimension, values: tuple[int | str, ...], lang: str, directory: DirectoryService) -> str:
    """The chosen values of a filter by name, or how many when there are many (a message has 4096 characters)."""
    if len(values) > FILTER_NAMES_SHOWN:
        return _("{count} chosen").format(count=len(values))
    return ", ".join(label(dimension, v, lang, directory) for v in values)


def row_label(table: Table, row: TableRow, lang: str, directory: DirectoryService, width: int | None = None) -> str:
    """The row's labels joined; with `width`, each part is cut to its share of it, so that two long names stay
    told apart («Ачхой-Мартанов… · Отсутствие…», not the first name alone)."""
    parts = [label(d, k, lang, directory) for d, k in zip(table.spec.dims, row.keys, strict=True)]
    if width is not None and len(parts) > 1 and len(" · ".join(parts)) > width:
        share = max(4, (width - 3 * (len(parts) - 1)) // len(parts))
        parts = [_cut(p, share) for p in parts]
    return " · ".join(parts)


def duration(seconds: float | None) -> str:
    """A working time in its largest sensible units: «3 d 4 h», «5 h 20 min», «12 min»."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("{days} d {hours} h").format(days=days, hours=hours)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=minutes)
    return _("{minutes} min").format(minutes=minutes)


def value_text(metric: Metric, value: float | None) -> str:
    """A value in its metric's unit, for the chat (the spreadsheets keep plain numbers)."""
    kind = METRIC_KINDS[metric]
    if value is None:
        return "—"
    if kind == MetricKind.count:
        return f"{int(value):d}"
    if kind == MetricKind.share:
        return f"{100 * value:.1f}%"
    if kind == MetricKind.average:
        return f"{value:.2f}"
    return duration(value)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _line(name: str, value: str, base: str, show_base: bool) -> str:
    cells = f"{_cut(name, LABEL_CHARS):<{LABEL_CHARS}} {value:>{VALUE_CHARS}}"
    return escape(cells + (f" {base:>6}" if show_base else ""))


def heading_lines(table: Table, lang: str, directory: DirectoryService) -> list[str]:
    """A slice's heading, in the chat and in the reports alike: the metric, the period, the dimensions, the filters
    (summed up when there are many: a message has 4096 characters)."""
    spec = table.spec
    lines = [
        f"<b>📊 {escape(metric_name(spec.metric))}</b>",
        _("Period: {period}").format(period=period_text(table.period)),
    ]
    if spec.dims:
        lines.append(_("By: {dimensions}").format(dimensions=escape(" × ".join(dimension_name(d) for d in spec.dims))))
    if spec.filters:
        parts = [f"{dimension_name(dim)}: {filter_names(dim, values, lang, directory)}" for dim, values in spec.filters]
        lines.append(escape(_("Only: {filters}").format(filters="; ".join(parts))))
    return lines


def table_text(table: Table, lang: str, directory: DirectoryService, limit: int) -> str:
    """The slice as one HTML message: title, period and dimensions, the top `limit` rows, the rest summed, the
    total; a share or a duration also shows how many appeals each value stands on (n)."""
    spec = table.spec
    kind = METRIC_KINDS[spec.metric]
    lines = heading_lines(table, lang, directory)
    show_base = kind != MetricKind.count
    if spec.dims and not table.rows:
        lines.append("")
        lines.append(_("No appeals in this slice."))
        return "\n".join(lines)
    body: list[str] = []
    if spec.dims:
        shown, rest = table.head(limit)
        body.append(_line("", "", "n", show_base) if show_base else "")
        for row in shown:
            body.append(
                _line(
                    row_label(table, row, lang, directory, LABEL_CHARS), value_text(spec.metric, row.value), str(row.base), show_base
                )
            )
        if rest is not None:
            others = _("Others ({count})").format(count=len(table.rows) - len(shown))
            body.append(_line(others, value_text(spec.metric, rest.value), str(rest.base), show_base))
        body.append(_line(_("Total"), value_text(spec.metric, table.total.value), str(table.total.base), show_base))
        body = [b for b in body if b]
        lines.append("")
        lines.append("<pre>" + "\n".join(body) + "</pre>")
    else:
        value = value_text(spec.metric, table.total.value)
        lines.append("")
        lines.append(f"<b>{escape(value)}</b>" + (f"  (n = {table.total.base})" if show_base else ""))
    if spec.metric == Metric.rejected_share and table.total.reasons and any(table.total.reasons):
        reasons = ", ".join(
            f"{_(REASON_NAMES[reason])}: {count}"
            for reason, count in zip(RejectReason, table.total.reasons, strict=True)
            if count
        )
        lines.append(escape(_("Rejected by reason: {reasons}").format(reasons=reasons)))
    return "\n".join(lines)
