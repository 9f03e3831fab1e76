"""The scheduled reports' composition and timing, without Telegram (tests/test_reports_e2e.py has them as their
readers get them): when a week's and a month's reports fall due, the "<3" rule for category × district cells and the
figures that would give one away, a slice's text with and without such cells, a stored report's parts as the outbox
sends them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram.types import BufferedInputFile
from aiogram.utils.i18n import I18n

from bot import notices
from bot.clock import ManualClock
from bot.domain import Dimension, Metric, SliceSpec
from bot.i18n import create_i18n
from bot.notifications import make_renderer, render_report_part
from bot.reports_view import ReportComposer, cell, change, masked
from bot.services import Services
from bot.services.reports import ReportService
from bot.services.stats import Problem, ProblemSpot, RegionWeek, Scope, Table, TableRow

MSK = ZoneInfo("Europe/Moscow")
WEEK47 = (date(2026, 11, 16), date(2026, 11, 22))


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=MSK).astimezone(UTC)


@pytest.fixture
def i18n(services: Services) -> I18n:
    return create_i18n(services.appeals.settings)


@pytest.fixture
def composer(services: Services, i18n: I18n) -> ReportComposer:
    return ReportComposer(i18n, services.appeals.settings, services.directory)


@pytest.fixture
def reports(services: Services, clock: ManualClock, composer: ReportComposer) -> ReportService:
    return ReportService(services.stats.sessionmaker, clock, services.appeals.settings, services.stats, composer)


# --- when -------------------------------------------------------------------------------------------------------


def test_a_weeks_report_falls_due_on_the_next_monday_at_digest_time(reports: ReportService) -> None:
    before = reports.due_week(at(11, 23, 8, 59))
    assert before.label == "2026-W46" and before.due_at == at(11, 16, 9)
    due = reports.due_week(at(11, 23, 9))
    assert due.label == "2026-W47" and due.due_at == at(11, 23, 9)
    assert (due.period.first_day.isoformat(), due.period.last_day.isoformat()) == ("2026-11-16", "2026-11-22")
    assert due.period.start == at(11, 16) and due.period.end == at(11, 23)  # local midnights
    assert reports.due_week(at(11, 29, 23, 59)).label == "2026-W47"  # all week long, for the catch-up
    # The ISO year of the week's Monday: 28 December 2026 – 3 January 2027 is 2026-W53.
    assert reports.due_week(at(12, 31, 12) + timedelta(days=4)).label == "2026-W53"


def test_a_months_report_falls_due_on_the_first_at_digest_time(reports: ReportService) -> None:
    assert reports.due_month(at(12, 1, 8, 59)).label == "2026-10"
    due = reports.due_month(at(12, 1, 9))
    assert due.label == "2026-11" and due.due_at == at(12, 1, 9)
    assert (due.period.first_day.isoformat(), due.period.last_day.isoformat()) == ("2026-11-01", "2026-11-30")
    january = reports.due_month(datetime(2027, 1, 1, 9, tzinfo=MSK))
    assert january.label == "2026-12"


async def test_nothing_is_sent_in_the_quiet_hours_nor_a_month_late(reports: ReportService, clock: ManualClock) -> None:
    clock.set(at(11, 23, 8, 30))
    assert await reports.tick() == 0
    # No one to send to: the periods are claimed all the same (and nothing is queued).
    clock.set(at(11, 23, 9))
    assert await reports.tick() == 0
    async with reports.sessionmaker() as session:
        from bot.services.reports import ReportClaim
        from storage.repositories.reminders import DigestRepo

        claims = DigestRepo(session)
        assert await claims.claimed(ReportClaim.week_done, "2026-W47")
        assert await claims.claimed(ReportClaim.region, "2026-W47")
        # November 1st's report (October's) was due three weeks before: not caught up on a first start.
        assert not await claims.claimed(ReportClaim.month_done, "2026-10")


# --- small cells -------------------------------------------------------------------------------------------------


def test_a_small_cell_shows_as_under_the_threshold() -> None:
    # A cell of none reveals nobody: it keeps its 0 (as bot/stats_files.py does).
    assert [masked(v, 3) for v in (0, 1, 2, 3, 10)] == ["0", "<3", "<3", "3", "10"]
    assert [cell(v, 3) for v in (0, 2, 3)] == [0, "<3", 3]
    assert masked(4, 5) == "<5"


def test_the_change_of_a_small_cell_is_not_given_away() -> None:
    assert change(7, 3, 3) == "+4" and change(3, 7, 3) == "-4" and change(5, 5, 3) == "+0"
    assert change(6, 2, 3) == "↑" and change(2, 6, 3) == "↓"  # one side small: the direction only
    assert change(2, 1, 3) == "—"  # both small: nothing
    assert change(6, 0, 3) == "+6"  # from none: nobody to single out


def table(spec: SliceSpec, rows: list[TableRow], total: TableRow, reports: ReportService) -> Table:
    return Table(spec, reports.stats.days(*WEEK47), Scope(), rows, total)


def test_a_slices_text_hides_small_category_by_district_cells(
    services: Services, composer: ReportComposer, reports: ReportService
) -> None:
    d = services.directory
    cat = d.categories(d.blocks()[0].id)[0]
    d1, d2 = d.districts()[:2]
    spec = SliceSpec(Metric.received, (Dimension.category, Dimension.district))
    rows = [TableRow((cat.id, d1.id), 5, 5, 5), TableRow((cat.id, d2.id), 1, 1, 1)]
    made = composer.preset("Cells", table(spec, rows, TableRow((), 6, 6, 6), reports), "en")
    assert f"{cat.name('en')} · {d1.name('en')}: 5" in made.text
    assert f"{cat.name('en')} · {d2.name('en')}: &lt;3" in made.text  # HTML-escaped "<3"
    assert "Total: 6" in made.text
    # A share standing on fewer appeals than the threshold is left out, its n too.
    share = SliceSpec(Metric.on_time_share, (Dimension.category, Dimension.district))
    rows = [TableRow((cat.id, d1.id), 0.8, 5, 4), TableRow((cat.id, d2.id), 1.0, 2, 2)]
    made = composer.preset("Shares", table(share, rows, TableRow((), 6 / 7, 7, 6), reports), "en")
    assert f"{d1.name('en')}: 80.0% (n = 5)" in made.text
    assert f"{d2.name('en')}: &lt;3" in made.text and "100.0%" not in made.text
    # One district filtered, by category: still district × category cells.
    pinned = SliceSpec(Metric.received, (Dimension.category,)).with_filter(Dimension.district, (d2.id,))
    made = composer.preset("Pinned", table(pinned, [TableRow((cat.id,), 2, 2, 2)], TableRow((), 2, 2, 2), reports), "en")
    assert f"{cat.name('en')}: &lt;3" in made.text
    # By agency: no district × category cell, every figure as it is.
    agency = SliceSpec(Metric.received, (Dimension.agency,))
    some = d.agencies()[0]
    made = composer.preset("Agencies", table(agency, [TableRow((some.id,), 1, 1, 1)], TableRow((), 1, 1, 1), reports), "en")
    assert f"{some.name('en')}: 1" in made.text


def region(services: Services, reports: ReportService, scope: Scope | None = None) -> RegionWeek:
    scope = scope or Scope()
    d = services.directory
    cat = d.categories(d.blocks()[0].id)[0]
    d1, d2 = d.districts()[:2]
    period = reports.stats.days(*WEEK47)
    overdue = Table(SliceSpec(Metric.overdue, (Dimension.agency,)), period, scope, [], TableRow((), 0, 0, 0))
    return RegionWeek(
        period=period,
        scope=scope,
        received=TableRow((), 9, 9, 9),
        received_before=TableRow((), 4, 4, 4),
        answered=TableRow((), 0.75, 4, 3),
        answered_before=TableRow((), None, 0, 0),
        overdue=overdue,
        rating=TableRow((), 4.5, 2, 9),
        rating_before=TableRow((), None, 0),
        fixed=TableRow((), 0.5, 2, 1),
        problems=[Problem(cat.id, d1.id, 7, 2), Problem(cat.id, d2.id, 2, 1)],
        spots=[ProblemSpot(cat.id, d1.id, 7, 0.5)],
    )


def test_the_state_of_the_region_text(services: Services, composer: ReportComposer, reports: ReportService) -> None:
    d = services.directory
    cat = d.categories(d.blocks()[0].id)[0]
    d1, d2 = d.districts()[:2]
    text = composer.region_text(region(services, reports), "en")
    assert text.startswith("<b>📈 State of the region, week 16.11.2026–22.11.2026</b>")
    assert "Received: 9 (the week before: 4, +5)" in text
    assert "Answered: 4, on time: 3 (75.0%; the week before: —)" in text
    assert "Average rating: 4.50 of 5 (2 ratings; the week before: —)" in text
    assert "«Is it fixed?»: yes 50.0% of 2 answers" in text
    assert "Overdue now by agency: 0" in text
    assert f"1. {cat.name('en')} · {d1.name('en')}: 7 (the week before: &lt;3, ↑)" in text
    assert f"2. {cat.name('en')} · {d2.name('en')}: &lt;3 (the week before: &lt;3, —)" in text
    # 2 in the 4 weeks before is a small cell: the factor (which would give it away) is not shown.
    assert f"• {cat.name('en')} · {d1.name('en')}: 7 this week, &lt;3 in the 4 weeks before" in text
    assert "×" not in text.split("Problem spots")[1]
    block = d.blocks()[0]
    head = composer.region_text(region(services, reports, Scope(block_id=block.id)), "en")
    assert f"Week 16.11.2026–22.11.2026 in the block «{block.name('en')}»" in head


def test_every_language_has_the_reports_words(services: Services, composer: ReportComposer, reports: ReportService) -> None:
    english = composer.region_text(region(services, reports), "en")
    for lang in ("ru", "ce"):
        text = composer.region_text(region(services, reports), lang)
        assert text != english, lang
        assert "State of the region" not in text and "Problem spots" not in text, lang


# --- a stored report's parts ------------------------------------------------------------------------------------------


async def test_a_reports_parts_render_as_one_call_each(services: Services, i18n: I18n) -> None:
    report = notices.ReportContent(4, "<b>Report</b>", b"\x89PNG...", b"PK...", "state-of-region-2026-W47")
    text = render_report_part(notices.StatsReportText(4), report)
    assert text is not None and text.text == "<b>Report</b>" and not text.media
    chart = render_report_part(notices.StatsReportChart(4), report)
    assert chart is not None and len(chart.media) == 1
    kind, photo = chart.media[0]
    assert kind == "photo" and isinstance(photo, BufferedInputFile)
    assert photo.filename == "state-of-region-2026-W47.png" and photo.data == b"\x89PNG..."
    sheet = render_report_part(notices.StatsReportSheet(4), report)
    assert sheet is not None
    kind, document = sheet.media[0]
    assert kind == "document" and isinstance(document, BufferedInputFile)
    assert document.filename == "state-of-region-2026-W47.xlsx"
    # A report without a chart (nothing to draw): that row is skipped, not sent empty.
    bare = notices.ReportContent(5, "Text", None, b"PK", "report-3-2026-11")
    assert render_report_part(notices.StatsReportChart(5), bare) is None

    async def gone(report_id: int) -> notices.ReportContent | None:
        return None

    render = make_renderer(i18n, services.appeals.settings, services.directory, reports=gone)
    with pytest.raises(notices.UnknownNotice, match="report 4 not found"):
        await render("stats_report_text", {"report_id": 4}, "en", 1)


def test_the_text_stays_within_one_telegram_message(
    services: Services, composer: ReportComposer, reports: ReportService
) -> None:
    """The longest names, every agency overdue, ten problems and thirty problem spots: one message still."""
    d = services.directory
    categories = sorted(
        (c for b in d.blocks() for c in d.categories(b.id)), key=lambda c: -len(c.name("ru"))
    )
    districts = sorted(d.districts(), key=lambda x: -len(x.name("ru")))
    pairs = [(c.id, x.id) for c in categories for x in districts][:30]
    week = region(services, reports)
    agencies = [TableRow((a.id,), 9, 9, 9) for a in sorted(d.agencies(), key=lambda a: -len(a.name("ru")))]
    overdue = Table(week.overdue.spec, week.period, week.scope, agencies, TableRow((), 9 * len(agencies), 9, 9))
    crowded = RegionWeek(
        **{
            **week.__dict__,
            "overdue": overdue,
            "problems": [Problem(c, x, 50, 40) for c, x in pairs[:10]],
            "spots": [ProblemSpot(c, x, 50, 5.0) for c, x in pairs],
        }
    )
    for lang in ("ru", "ce", "en"):
        text = composer.region_text(crowded, lang)
        assert len(text) <= 4096, (lang, len(text))
    assert "…and 20 more (in the spreadsheet)." in composer.region_text(crowded, "en")


async def test_the_scheduler_runs_the_reports_at_digest_time_and_catches_up(
    services: Services, reports: ReportService
) -> None:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from bot.scheduler import create_scheduler

    scheduler = create_scheduler(services.appeals.settings, services.reminders, reports=reports)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    cron, catch_up = jobs["reports"].trigger, jobs["reports_catch_up"].trigger
    assert isinstance(cron, CronTrigger) and str(cron.timezone) == "Europe/Moscow"
    sunday = datetime(2026, 11, 22, 10, 0, tzinfo=MSK)
    assert cron.get_next_fire_time(None, sunday) == datetime(2026, 11, 23, 9, 0, tzinfo=MSK)
    assert isinstance(catch_up, IntervalTrigger)
    assert catch_up.interval == timedelta(seconds=services.appeals.settings.scheduler.sweep_seconds)


# --- one report at a time; old ones pruned ------------------------------------------------------------------------


class Flaky(ReportComposer):
    """A composer that fails on the preset named «Boom» while `broken` (a bug, say)."""

    broken = True

    def preset(self, name: str, table: Table, lang: str):  # type: ignore[no-untyped-def]
        if name == "Boom" and self.broken:
            raise RuntimeError("boom")
        return super().preset(name, table, lang)


async def test_a_failing_report_does_not_hold_up_the_others(services: Services, clock: ManualClock, i18n: I18n) -> None:
    from sqlalchemy import select

    from bot.domain import ReportSchedule
    from bot.services.reports import ReportClaim
    from storage.models import Outbox, StatPreset
    from storage.repositories.reminders import DigestRepo
    from tests.factories import make_world

    clock.set(at(11, 20, 12))
    people = await make_world(services, clock)
    composer = Flaky(i18n, services.appeals.settings, services.directory)
    reports = ReportService(services.stats.sessionmaker, clock, services.appeals.settings, services.stats, composer)
    async with services.stats.sessionmaker() as session:
        for name in ("Boom", "Fine"):
            session.add(
                StatPreset(
                    owner_id=people["analyst"].id,
                    name=name,
                    spec=SliceSpec(Metric.received).to_json(),
                    schedule=ReportSchedule.weekly,
                    recipients=[people["analyst"].id],
                    created_at=clock.now(),
                    updated_at=clock.now(),
                )
            )
        await session.commit()

    async def queued() -> list[tuple[int, str]]:
        async with services.stats.sessionmaker() as session:
            rows = await session.execute(select(Outbox.user_id, Outbox.template).where(Outbox.template.like("stats_%")))
            return [tuple(r) for r in rows.all()]  # type: ignore[misc]

    clock.set(at(11, 23, 9))
    assert await reports.tick() == 2  # «Fine»: text and sheet (one figure: no chart helps); «Boom» failed
    async with services.stats.sessionmaker() as session:
        assert not await DigestRepo(session).claimed(ReportClaim.week_done, "2026-W47")
    composer.broken = False  # the fix is deployed: the next sweep sends «Boom», and «Fine» not again
    clock.set(at(11, 23, 9, 1))
    assert await reports.tick() == 2
    assert len(await queued()) == 4
    clock.set(at(11, 23, 9, 2))
    assert await reports.tick() == 0


async def test_stored_reports_are_pruned_after_keep_days(services: Services, clock: ManualClock, reports: ReportService) -> None:
    from bot.services.reports import KEEP_DAYS
    from storage.repositories.stat_reports import StatReportRepo

    clock.set(at(11, 1, 9))
    async with services.stats.sessionmaker() as session:
        old = await StatReportRepo(session).add("region", None, "2026-W43", "ru", "old", None, None, clock.now())
        await session.commit()
    clock.set(at(11, 1, 9) + timedelta(days=KEEP_DAYS - 1))
    async with services.stats.sessionmaker() as session:
        recent = await StatReportRepo(session).add("region", None, "2026-W48", "ru", "new", None, None, clock.now())
        await session.commit()
    assert await reports.prune() == 0
    clock.set(at(11, 1, 9) + timedelta(days=KEEP_DAYS, minutes=1))
    assert await reports.prune() == 1
    assert await reports.content(old) is None
    content = await reports.content(recent)
    assert content is not None and content.text == "new" and content.file_stem == "state-of-region-2026-W48"
