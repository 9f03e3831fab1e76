"""The scheduled statistics reports (issue 14): every Monday at scheduler.digest_time (region time) for the week
before, the leadership's "state of the region", each block head's report of their block and every weekly preset to
its recipients; on the 1st of a month for the month before, every monthly preset and the agency rating to the
leadership.

Each report is a unit of its own: claimed in `digests` (kind, period) in the transaction that stores what it says
(storage.models.StatReport: one row per language, with the text, the chart and the spreadsheet) and queues its three
notifications per recipient (bot/notices.py StatsReportText/Chart/Sheet, one Telegram call each). So a restart
neither repeats a report nor skips one, and two instances racing for a claim send it once: the loser's insert fails
and its transaction, outbox rows included, is rolled back.

When a report is due: the cron job fires at digest time, and the catch-up (every sweep) sends the latest due period
if it is not claimed yet, so a bot down on Monday morning sends the week's reports when it is back (outside the quiet
hours; up to CATCH_UP_DAYS late). Once every unit of a period is done a marker claim (`reports_week`/`reports_month`) makes later sweeps cheap:
two primary-key reads.

A preset's report covers the last whole week or month (not the preset's own named period) and is computed under
each RECIPIENT's scope (a block head sees their block, a supervisor their agency); a recipient who may no longer
read it (a role revoked, a forged or foreign filter) is skipped. Stored reports are pruned after KEEP_DAYS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import notices
from bot.clock import Clock
from bot.config import Settings
from bot.domain import Dimension, Metric, ReportKind, ReportSchedule, Role, SliceSpec
from bot.services.calendar import next_allowed_time
from bot.services.errors import ServiceError
from bot.services.stats import AgencyRating, Period, RegionWeek, Scope, StatsService, Table
from bot.services.users import Actor
from storage.repositories.outbox import OutboxRepo
from storage.repositories.reminders import DigestRepo
from storage.repositories.stat_reports import Person, ScheduledPreset, StatReportRepo

logger = logging.getLogger("tsur.reports")

# Stored reports are deleted this many days after they were made: their notifications were sent (or given up after a
# day) long before, and the next period's report replaces them.
KEEP_DAYS = 35
DEFAULT_LOCALE = "ru"
# A report whose time passed while the bot was down is sent when it is back, up to this many days late (a week's
# report always is, before the next one is due); a first start in mid-month does not send last month's.
CATCH_UP_DAYS = 7


class ReportClaim(StrEnum):
    """The `digests.kind` of each report's claim (its period: "[id:]2026-W47" or "[id:]2026-11")."""

    region = "region_week"
    block = "block_week"
    preset_week = "preset_week"
    preset_month = "preset_month"
    rating = "rating_month"
    # Every unit of the period is done: the catch-up has nothing more to look at.
    week_done = "reports_week"
    month_done = "reports_month"


@dataclass(frozen=True)
class Composed:
    """One report in one language, as stored (storage.models.StatReport)."""

    text: str
    chart: bytes | None
    sheet: bytes | None


class Composer(Protocol):
    """Renders a report in a language (bot/reports_view.py ReportComposer)."""

    def region(self, week: RegionWeek, breakdown: Table, lang: str) -> Composed: ...

    def preset(self, name: str, table: Table, lang: str) -> Composed: ...

    def rating(self, rating: AgencyRating, lang: str) -> Composed: ...


# A report to make: its claim's kind and period, and what computes it (in a read-only session).
Unit = tuple["ReportClaim", str, Callable[[AsyncSession], Awaitable[list["Delivery"]]]]


@dataclass(frozen=True)
class Delivery:
    """One report made in one language, and who gets it."""

    kind: ReportKind
    preset_id: int | None
    label: str
    locale: str
    made: Composed
    people: tuple[Person, ...]


@dataclass(frozen=True)
class DuePeriod:
    period: Period
    label: str  # "2026-W47" or "2026-11": the claims' period and the files' names
    due_at: datetime  # when its reports went (or should have gone) out


def actor_of(person: Person) -> Actor:
    """A recipient as the statistics' scope rules read them (roles, agency, block)."""
    return Actor(
        id=person.user_id,
        tg_id=person.tg_id,
        locale=person.locale,
        has_consent=True,
        roles=person.roles,
        agency_id=person.agency_id,
        block_id=person.block_id,
    )


class ReportService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        stats: StatsService,
        composer: Composer,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings
        self.stats = stats
        self.composer = composer
        self.on_commit = on_commit

    # --- when -------------------------------------------------------------------------------------------------

    def _at(self, day: date) -> datetime:
        return datetime.combine(day, self.settings.scheduler.digest_time, tzinfo=self.settings.tz)

    def due_week(self, now: datetime) -> DuePeriod:
        """The latest week whose report time (its next Monday at digest time) has come."""
        today = now.astimezone(self.settings.tz).date()
        monday = today - timedelta(days=today.weekday())
        if now < self._at(monday):
            monday -= timedelta(days=7)
        first = monday - timedelta(days=7)
        year, week, _day = first.isocalendar()
        return DuePeriod(self.stats.days(first, monday - timedelta(days=1)), f"{year}-W{week:02d}", self._at(monday))

    def due_month(self, now: datetime) -> DuePeriod:
        """The latest month whose report time (the next 1st at digest time) has come."""
        today = now.astimezone(self.settings.tz).date()
        first_next = today.replace(day=1)
        if now < self._at(first_next):
            first_next = (first_next - timedelta(days=1)).replace(day=1)
        last = first_next - timedelta(days=1)
        first = last.replace(day=1)
        return DuePeriod(self.stats.days(first, last), f"{first.year}-{first.month:02d}", self._at(first_next))

    def quiet(self, moment: datetime) -> bool:
        config = self.settings.scheduler
        allowed = next_allowed_time(moment, quiet_start=config.quiet_start, quiet_end=config.quiet_end, tz=self.settings.tz)
        return allowed != moment

    # --- the jobs ---------------------------------------------------------------------------------------------

    async def tick(self) -> int:
        """The cron job's and the catch-up's: the latest due week's and month's reports not yet sent. Returns how
        many notifications were queued."""
        now = self.clock.now()
        if self.quiet(now):
            return 0
        week, month = self.due_week(now), self.due_month(now)
        late = timedelta(days=CATCH_UP_DAYS)
        async with self.sessionmaker() as session:
            claims = DigestRepo(session)
            week_due = now < week.due_at + late and not await claims.claimed(ReportClaim.week_done, week.label)
            month_due = now < month.due_at + late and not await claims.claimed(ReportClaim.month_done, month.label)
        queued = 0
        if week_due:
            queued += await self.weekly(week)
        if month_due:
            queued += await self.monthly(month)
        return queued

    async def daily(self) -> int:
        """The cron job at digest time: old reports pruned, then what is due."""
        await self.prune()
        return await self.tick()

    async def prune(self) -> int:
        async with self.sessionmaker() as session:
            removed = await StatReportRepo(session).prune(self.clock.now() - timedelta(days=KEEP_DAYS))
            await session.commit()
        return removed

    async def weekly(self, due: DuePeriod) -> int:
        async with self.sessionmaker() as session:
            heads = await StatReportRepo(session).people(roles=(Role.block_head,))
            presets = await StatReportRepo(session).scheduled_presets(ReportSchedule.weekly)
        blocks = sorted({p.block_id for p in heads if Role.block_head in p.roles and p.block_id is not None})
        units: list[Unit] = [(ReportClaim.region, due.label, lambda s: self._region(s, due, None))]
        units += [
            (ReportClaim.block, f"{block_id}:{due.label}", lambda s, b=block_id: self._region(s, due, b))
            for block_id in blocks
        ]
        units += [
            (ReportClaim.preset_week, f"{p.id}:{due.label}", lambda s, p=p: self._preset(s, due, p)) for p in presets
        ]
        return await self._run(units, ReportClaim.week_done, due.label)

    async def monthly(self, due: DuePeriod) -> int:
        async with self.sessionmaker() as session:
            presets = await StatReportRepo(session).scheduled_presets(ReportSchedule.monthly)
        units: list[Unit] = [(ReportClaim.rating, due.label, lambda s: self._rating(s, due))]
        units += [
            (ReportClaim.preset_month, f"{p.id}:{due.label}", lambda s, p=p: self._preset(s, due, p)) for p in presets
        ]
        return await self._run(units, ReportClaim.month_done, due.label)

    async def _run(self, units: list[Unit], done: ReportClaim, label: str) -> int:
        """Each report on its own: one that fails (a bug, the database gone for a moment) is logged and tried again
        by the next sweep, and does not keep the others from going out; the period is marked done only when none
        failed."""
        queued, failed = 0, 0
        for kind, period, make in units:
            try:
                queued += await self._unit(kind, period, make)
            except Exception:
                failed += 1
                logger.exception("report %s %s failed; the next sweep tries it again", kind, period)
        if not failed:
            await self._mark(done, label)
        return queued

    # --- one report -------------------------------------------------------------------------------------------

    async def _unit(
        self, kind: ReportClaim, period: str, make: Callable[[AsyncSession], Awaitable[list[Delivery]]]
    ) -> int:
        """Compute one report, then claim it and queue it in one short transaction; 0 when it was claimed already (here
        or by another instance meanwhile: its claim wins and this work is dropped).

        The figures and the files are made before the claim, in a read-only session of their own: the transaction that
        writes (and on SQLite holds the database's write lock) stays a few inserts long."""
        async with self.sessionmaker() as session:
            if await DigestRepo(session).claimed(kind, period):
                return 0
            deliveries = await make(session)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            try:
                await DigestRepo(session).claim(kind, period, now)
                queued = await self._store(session, deliveries, now)
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return 0
        if queued:
            self.on_commit()
        return queued

    async def _mark(self, kind: ReportClaim, period: str) -> None:
        async with self.sessionmaker() as session:
            claims = DigestRepo(session)
            if await claims.claimed(kind, period):
                return
            try:
                await claims.claim(kind, period, self.clock.now())
                await session.commit()
            except IntegrityError:
                await session.rollback()

    async def _compose(
        self,
        kind: ReportKind,
        preset_id: int | None,
        label: str,
        recipients: list[Person],
        compose: Callable[[str], Composed],
    ) -> list[Delivery]:
        """The report once per language of its recipients. Drawing the chart and writing the spreadsheet is CPU work
        (seconds for a big preset): it runs in a worker thread, so the bot's event loop keeps answering meanwhile."""
        by_locale: dict[str, list[Person]] = {}
        for person in recipients:
            by_locale.setdefault(person.locale or DEFAULT_LOCALE, []).append(person)
        return [
            Delivery(kind, preset_id, label, locale, await asyncio.to_thread(compose, locale), tuple(people))
            for locale, people in sorted(by_locale.items())
        ]

    @staticmethod
    async def _store(session: AsyncSession, deliveries: list[Delivery], now: datetime) -> int:
        """Each report stored, its parts queued to each of its recipients (text, chart, spreadsheet: one call each)."""
        reports = StatReportRepo(session)
        queued = 0
        for d in deliveries:
            made = d.made
            report_id = await reports.add(d.kind, d.preset_id, d.label, d.locale, made.text, made.chart, made.sheet, now)
            parts: list[notices.Notice] = [notices.StatsReportText(report_id)]
            if made.chart is not None:
                parts.append(notices.StatsReportChart(report_id))
            if made.sheet is not None:
                parts.append(notices.StatsReportSheet(report_id))
            rows = [OutboxRepo.values(p.user_id, part, now) for p in d.people for part in parts]
            await OutboxRepo(session).insert_many(rows)
            queued += len(rows)
        return queued

    async def _region(self, session: AsyncSession, due: DuePeriod, block_id: int | None) -> list[Delivery]:
        """The leadership's "state of the region" (block_id None), or a block's report to its heads."""
        reports = StatReportRepo(session)
        if block_id is None:
            people = [p for p in await reports.people(roles=(Role.leadership,)) if Role.leadership in p.roles]
            scope, kind, dims = Scope(), ReportKind.region, (Dimension.block,)
        else:
            people = [p for p in await reports.people(roles=(Role.block_head,)) if p.block_id == block_id]
            scope, kind, dims = Scope(block_id=block_id), ReportKind.block, (Dimension.category,)
        if not people:
            return []
        week = await self.stats.region_week(session, scope, due.period)
        breakdown_spec = SliceSpec(Metric.received, dims)
        if block_id is not None:
            breakdown_spec = breakdown_spec.with_filter(Dimension.block, (block_id,))
        breakdown = await self.stats.table(session, scope, breakdown_spec, due.period)
        return await self._compose(kind, None, due.label, people, lambda lang: self.composer.region(week, breakdown, lang))

    async def _preset(self, session: AsyncSession, due: DuePeriod, preset: ScheduledPreset) -> list[Delivery]:
        """A scheduled preset's slice over the due period, computed under each recipient's scope."""
        try:
            spec = SliceSpec.from_json(preset.spec)
        except (ValueError, TypeError, KeyError):
            logger.warning("preset %d: its stored slice is not valid; not sent", preset.id)
            return []
        people = await StatReportRepo(session).people(user_ids=preset.recipients)
        groups: dict[tuple[Scope, SliceSpec], list[Person]] = {}
        for person in people:
            scope = self.stats.scope_of(actor_of(person))
            if scope is None:
                logger.info("preset %d: user %d may no longer read statistics; skipped", preset.id, person.user_id)
                continue
            try:
                allowed = self.stats.allowed(scope, spec)
            except ServiceError as error:
                logger.info("preset %d: user %d may not read it (%s); skipped", preset.id, person.user_id, error)
                continue
            groups.setdefault((scope, allowed), []).append(person)
        deliveries: list[Delivery] = []
        for (scope, allowed), members in groups.items():
            table = await self.stats.table(session, scope, allowed, due.period)
            deliveries += await self._compose(
                ReportKind.preset,
                preset.id,
                due.label,
                members,
                lambda lang, t=table: self.composer.preset(preset.name, t, lang),
            )
        return deliveries

    async def _rating(self, session: AsyncSession, due: DuePeriod) -> list[Delivery]:
        people = [p for p in await StatReportRepo(session).people(roles=(Role.leadership,)) if Role.leadership in p.roles]
        if not people:
            return []
        rating = await self.stats.agency_rating(session, due.period)
        return await self._compose(ReportKind.rating, None, due.label, people, lambda lang: self.composer.rating(rating, lang))

    # --- what the renderer reads ------------------------------------------------------------------------------

    async def content(self, report_id: int) -> notices.ReportContent | None:
        """A stored report's text and files (the outbox renderer's loader), None when it is gone."""
        async with self.sessionmaker() as session:
            row = await StatReportRepo(session).get(report_id)
            if row is None:
                return None
            stem = FILE_STEMS.get(ReportKind(row.kind), "report")
            if row.preset_id is not None:
                stem = f"{stem}-{row.preset_id}"
            return notices.ReportContent(row.id, row.text, row.chart, row.sheet, f"{stem}-{row.period}")


FILE_STEMS = {
    ReportKind.region: "state-of-region",
    ReportKind.block: "block-report",
    ReportKind.preset: "report",
    ReportKind.rating: "agency-rating",
}
