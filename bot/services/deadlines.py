"""SLA clocks: the reminders of each appeal, the sweep that sends those due, and the digests.

Reminders are rows, not scheduler jobs: a short periodic sweep claims the due ones over an index
(`UPDATE … SET sent_at … WHERE sent_at IS NULL AND due_at <= now RETURNING`) in the transaction that
writes their notifications, so a restart neither repeats nor skips one, and two bot instances on
PostgreSQL never send one twice."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import notices
from bot.clock import Clock
from bot.config import Settings
from bot.domain import (
    AGENCY_REMINDERS,
    FOLLOWUP_MIN_RATING,
    LOW_RATING,
    RUNNING,
    TRIAGE,
    AccessKind,
    AppealStatus,
    DigestKind,
    HistoryDetails,
    HistoryEvent,
    ReminderKind,
    RequestKind,
    RequestState,
    Role,
)
from bot.services.access_log import log_pushed
from bot.services.calendar import ProductionCalendar, next_allowed_time
from storage.models import Appeal, AppealRequest, Followup, Rating, UserRole
from storage.repositories.outbox import OutboxRepo
from storage.repositories.rating_stats import RatingStatsRepo
from storage.repositories.reminders import DigestRepo, ReminderRepo
from storage.repositories.users import UserRepo

logger = logging.getLogger("tsur.deadlines")


def cut(text: str | None, limit: int) -> str | None:
    """A resident's text shortened for a list (marked with "…" when it was); escaped where it is shown."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit].rstrip() + "…"


class StaffDirectory:
    """Who holds which role, read once per sweep."""

    def __init__(self, rows: Iterable[tuple[int, str, int | None]]) -> None:
        self._by_role: dict[str, list[int]] = {}
        self._by_agency: dict[tuple[int | None, str], list[int]] = {}
        for user_id, role, agency_id in rows:
            self._by_role.setdefault(role, []).append(user_id)
            self._by_agency.setdefault((agency_id, role), []).append(user_id)

    def of(self, agency_id: int | None, role: str) -> list[int]:
        return self._by_agency.get((agency_id, role), []) if agency_id is not None else []

    def coordinators(self) -> list[int]:
        """The coordinators; while there are none, the admins stand in."""
        return self._by_role.get(Role.coordinator) or self._by_role.get(Role.admin, [])


# The clock runs only while the agency works on the appeal (a clarification pauses it): bot.domain.RUNNING.
AGENCY_KINDS = AGENCY_REMINDERS
REMINDER_NOTICES: dict[str, type[notices.Reminder]] = {
    ReminderKind.half: notices.ReminderHalf,
    ReminderKind.day_before: notices.ReminderDayBefore,
    ReminderKind.deadline: notices.ReminderDeadline,
}
# The resident's: to rate an answer, the closing without a rating, "is it fixed?" (bot/services/ratings.py).
RESIDENT_KINDS = (ReminderKind.rate_reminder, ReminderKind.rate_close, ReminderKind.followup)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # config.scheduler.weekly_day's values
# Reminders per tick: one transaction stays short (well under 50 ms on SQLite), the writer lock brief.
BATCH = 250
# The digests' agency ratings cover this many days; the coordinators' list of low ratings holds this many.
RATING_DAYS = 30
LOW_RATINGS_LISTED = 10
# A resident's comment in that list is cut here (ten of them stay under Telegram's 4096 characters).
LOW_RATING_COMMENT = 200


class ReminderService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        calendar: ProductionCalendar,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings
        self.calendar = calendar
        self.on_commit = on_commit

    # --- planning ----------------------------------------------------------------------------------

    def _allowed(self, moment: datetime) -> datetime:
        config = self.settings.scheduler
        return next_allowed_time(
            moment, quiet_start=config.quiet_start, quiet_end=config.quiet_end, tz=self.settings.tz
        )

    def allowed(self, moment: datetime) -> datetime:
        """`moment`, or the end of the quiet hours it falls in: when a person may be pinged."""
        return self._allowed(moment)

    def _morning_of(self, day: datetime) -> datetime:
        local = day.astimezone(self.settings.tz).date()
        return datetime.combine(local, self.settings.scheduler.quiet_end, tzinfo=self.settings.tz)

    def _morning_after(self, moment: datetime) -> datetime:
        """The first morning (quiet_end, region time) strictly after `moment`: when escalations go out, the
        same time every day whenever the previous one was delivered."""
        morning = self._morning_of(moment)
        return morning if morning > moment else self._morning_of(moment + timedelta(days=1))

    def quiet(self, moment: datetime) -> bool:
        """Within quiet hours: nobody is pinged now."""
        return self._allowed(moment) != moment

    def points(
        self, start: datetime, deadline: datetime, paused: timedelta = timedelta(0)
    ) -> dict[ReminderKind, datetime]:
        """When each reminder falls due (in UTC, outside quiet hours).

        half: half of the working time used (a pause, added back to the deadline, is not working time);
        deadline: the morning of the last day (the day before, should a deadline fall in the small hours;
        pauses count in whole days, so none does since); day_before: the morning of the last working day
        before that day;
        escalation: the first morning after the term has ended (then every morning, see _fire)."""
        tz = self.settings.tz
        last_morning = self._morning_of(deadline)
        if last_morning >= deadline:
            last_morning -= timedelta(days=1)
        before = self.calendar.previous_working_day(last_morning.astimezone(tz).date())
        working = max(deadline - start - paused, timedelta(0))
        return {
            ReminderKind.half: self._allowed(start + paused + working / 2),
            ReminderKind.day_before: self._allowed(
                datetime.combine(before, self.settings.scheduler.quiet_end, tzinfo=tz)
            ),
            ReminderKind.deadline: self._allowed(last_morning),
            ReminderKind.escalation: self._allowed(self._morning_after(deadline)),
        }

    async def schedule(self, session: AsyncSession, appeal: Appeal, now: datetime) -> None:
        """(Re)plan the reminders of an appeal whose deadline was set or moved; sent ones stay sent."""
        await self.unschedule(session, appeal.id, kinds=(*AGENCY_KINDS, ReminderKind.escalation))
        if appeal.deadline_at is None or appeal.status not in RUNNING:
            return
        reminders = ReminderRepo(session)
        sent = await reminders.sent(appeal.id)
        sent_kinds = {kind for kind, _seq in sent}
        escalated = [seq for kind, seq in sent if kind == ReminderKind.escalation]
        start = appeal.assigned_at or appeal.created_at
        paused = timedelta(seconds=appeal.paused_seconds or 0)
        for kind, due in self.points(start, appeal.deadline_at, paused).items():
            if kind == ReminderKind.escalation:
                # Escalations repeat: resume with the next one after those already sent.
                seq = max(escalated) + 1 if escalated else 0
                reminders.add(appeal.id, kind, seq, max(due, self._allowed(now)))
                continue
            if kind in sent_kinds or (due <= now and kind != ReminderKind.deadline):
                # A point already behind us when the term is planned is not worth a late ping,
                # except that the last day is always announced.
                continue
            reminders.add(appeal.id, kind, 0, max(due, now))

    async def schedule_forward(self, session: AsyncSession, appeal_ids: list[int], registered_at: datetime) -> None:
        """59-ФЗ: an appeal for another body must be forwarded within 7 days; remind the coordinators before."""
        due = self._allowed(registered_at + timedelta(days=self.settings.scheduler.forward_remind_days))
        rows = [
            {"appeal_id": i, "kind": ReminderKind.forward_due, "seq": 0, "due_at": due, "sent_at": None}
            for i in appeal_ids
        ]
        await ReminderRepo(session).insert_many(rows)

    async def unschedule(self, session: AsyncSession, appeal_id: int, kinds: tuple[str, ...]) -> None:
        await ReminderRepo(session).drop_pending(appeal_id, kinds)

    # --- the sweep ---------------------------------------------------------------------------------

    async def sweep_all(self, limit: int = BATCH) -> int:
        """The scheduler's job: ticks until what is due is done (a 09:00 burst takes a few short ones)."""
        total = 0
        while (claimed := await self.sweep(limit)) == limit:
            total += claimed
        return total + claimed

    async def tick(self) -> int:
        """The scheduler's sweep job: the due reminders, then a digest whose time has come and gone unsent
        today (the bot was down at digest time)."""
        return await self.sweep_all() + await self.catch_up_digests()

    async def sweep(self, limit: int = BATCH) -> int:
        """One tick: claim up to `limit` due reminders and write their notifications, in one transaction.

        Nothing is claimed during quiet hours: planning moves reminders out of them, but after downtime the
        ones that fell due meanwhile would all go out at once, at night; they wait for the morning."""
        now = self.clock.now()
        if self.quiet(now):
            return 0
        async with self.sessionmaker() as session:
            claimed = await ReminderRepo(session).claim_due(now, limit)
            if not claimed:
                return 0
            # Everything the claimed reminders need, in a few set-based queries (not one per reminder),
            # and their notifications written in one executemany: the tick's cost stays small per reminder.
            appeal_ids = {c.appeal_id for c in claimed}
            appeals = {
                row.id: row
                for row in await session.execute(
                    select(
                        Appeal.id,
                        Appeal.number,
                        Appeal.status,
                        Appeal.deadline_at,
                        Appeal.created_at,
                        Appeal.agency_id,
                        Appeal.official_id,
                        Appeal.user_id,
                        Appeal.answered_at,
                    ).where(Appeal.id.in_(appeal_ids))
                )
            }
            staff = StaffDirectory(
                (
                    await session.execute(
                        select(UserRole.user_id, UserRole.role, UserRole.agency_id).where(
                            UserRole.role.in_([Role.official, Role.supervisor, Role.coordinator, Role.admin])
                        )
                    )
                ).all()
            )
            redirects: set[int] = set()
            if any(c.kind == ReminderKind.forward_due for c in claimed):
                redirects = set(
                    (
                        await session.execute(
                            select(AppealRequest.appeal_id).where(
                                AppealRequest.appeal_id.in_(appeal_ids),
                                AppealRequest.kind == RequestKind.redirect,
                                AppealRequest.status == RequestState.pending,
                            )
                        )
                    ).scalars()
                )
            queued: list[dict[str, Any]] = []
            follow_ups: list[dict[str, Any]] = []
            for _id, appeal_id, kind, seq in claimed:
                appeal = appeals.get(appeal_id)
                if appeal is not None and kind not in RESIDENT_KINDS:
                    self._fire(appeal, kind, seq, now, staff, appeal_id in redirects, queued, follow_ups)
            residents = [(appeals[c.appeal_id], c.kind) for c in claimed if c.kind in RESIDENT_KINDS and c.appeal_id in appeals]
            await self._fire_resident(session, residents, now, queued)
            await OutboxRepo(session).insert_many(queued)
            await ReminderRepo(session).insert_many(follow_ups)
            await session.commit()
        self.on_commit()
        return len(claimed)

    def _fire(
        self,
        appeal: Any,
        kind: str,
        seq: int,
        now: datetime,
        staff: StaffDirectory,
        redirect_pending: bool,
        queued: list[dict[str, Any]],
        follow_ups: list[dict[str, Any]],
    ) -> None:
        """What one claimed reminder causes: notification rows, and for an escalation tomorrow's."""
        deadline = appeal.deadline_at.isoformat() if appeal.deadline_at else None

        def notify(user_ids: list[int], notice: notices.Notice) -> None:
            for user_id in dict.fromkeys(user_ids):
                queued.append(OutboxRepo.values(user_id, notice, now))

        if kind == ReminderKind.forward_due:
            if appeal.status in TRIAGE or redirect_pending:
                due = appeal.created_at + timedelta(days=self.settings.deadlines.redirect_days)
                notify(staff.coordinators(), notices.ForwardDue(appeal.id, appeal.number, deadline, due.isoformat()))
            return
        if appeal.status not in RUNNING or appeal.deadline_at is None:
            return  # answered, paused or closed since it was planned: nothing to remind of
        if kind in AGENCY_KINDS:
            if now > appeal.deadline_at:
                return  # delivered after the term (downtime): stale, the escalation speaks instead
            officials = [appeal.official_id] if appeal.official_id else staff.of(appeal.agency_id, Role.official)
            notify(officials, REMINDER_NOTICES[kind](appeal.id, appeal.number, deadline))
        elif kind == ReminderKind.escalation:
            days_over = max(1, (now - appeal.deadline_at).days + 1)
            notify(
                [*staff.of(appeal.agency_id, Role.supervisor), *staff.coordinators()],
                notices.Escalation(appeal.id, appeal.number, deadline, days_over),
            )
            # Daily until it is answered, every morning at the same time: tomorrow's is planned from the
            # calendar, not 24 hours after this delivery, so a late one does not shift the later ones.
            follow_ups.append(
                {
                    "appeal_id": appeal.id,
                    "kind": ReminderKind.escalation,
                    "seq": seq + 1,
                    "due_at": self._allowed(self._morning_after(now)),
                    "sent_at": None,
                }
            )

    async def _fire_resident(
        self, session: AsyncSession, claimed: list[tuple[Any, str]], now: datetime, queued: list[dict[str, Any]]
    ) -> None:
        """The resident's judgement of an answer (bot/services/ratings.py): the one reminder to rate, the closing
        without a rating, and "Is the problem actually fixed?". Each checks that it still applies."""
        if not claimed:
            return
        from bot.services.lifecycle import Lifecycle  # it plans through this service: imported when needed

        ids = [appeal.id for appeal, _kind in claimed]
        # Rated: a rating given since the latest answer was approved (a re-opened appeal's older one does not count).
        rated = set(
            (
                await session.execute(
                    select(Rating.appeal_id)
                    .join(Appeal, Appeal.id == Rating.appeal_id)
                    .where(Rating.appeal_id.in_(ids), Rating.created_at >= Appeal.answered_at)
                )
            ).scalars()
        )
        for appeal, kind in claimed:
            if kind == ReminderKind.rate_reminder:
                if appeal.status == AppealStatus.answered and appeal.id not in rated:
                    queued.append(OutboxRepo.values(appeal.user_id, notices.RateReminder(appeal.id, appeal.number), now))
            elif kind == ReminderKind.rate_close:
                if appeal.status != AppealStatus.answered:
                    continue
                row = await session.get(Appeal, appeal.id)
                assert row is not None
                if appeal.id in rated:  # a low score, and no word on sending it back: closed, the score kept
                    await Lifecycle(self).transition(session, row, AppealStatus.closed, None, now, notify_resident=False)
                    await Lifecycle.tell_followers(session, row, now)
                    continue
                details = HistoryDetails(days=self.settings.ratings.close_days)
                await Lifecycle(self).transition(
                    session,
                    row,
                    AppealStatus.closed,
                    None,
                    now,
                    notify_resident=False,
                    event=HistoryEvent.closed_unrated,
                    details=details,
                )
                await Lifecycle.tell_followers(session, row, now)  # the owner gets ClosedUnrated instead
                queued.append(OutboxRepo.values(appeal.user_id, notices.ClosedUnrated(appeal.id, appeal.number), now))
            elif kind == ReminderKind.followup:
                if appeal.status != AppealStatus.closed:
                    continue  # sent back meanwhile
                latest = (
                    await session.execute(
                        select(Rating.score).where(Rating.appeal_id == appeal.id).order_by(Rating.id.desc()).limit(1)
                    )
                ).scalar_one_or_none()
                asked = (await session.execute(select(Followup.id).where(Followup.appeal_id == appeal.id))).first()
                if latest is None or latest < FOLLOWUP_MIN_RATING or asked is not None:
                    continue
                session.add(Followup(appeal_id=appeal.id, user_id=appeal.user_id, asked_at=now))
                queued.append(
                    OutboxRepo.values(appeal.user_id, notices.FollowupQuestion(appeal.id, appeal.number), now)
                )

    @staticmethod
    async def _role_holders(session: AsyncSession, role: str, fallback: str | None = None) -> list[int]:
        users = UserRepo(session)
        ids = await users.holders([role])
        if not ids and fallback:
            ids = await users.holders([fallback])
        return ids

    # --- digests -----------------------------------------------------------------------------------

    def _periods(self, now: datetime) -> tuple[str, str]:
        """The periods digests are claimed for: the local date, and the ISO week."""
        local = now.astimezone(self.settings.tz)
        year, week, _ = local.isocalendar()
        return local.date().isoformat(), f"{year}-W{week:02d}"

    async def catch_up_digests(self) -> int:
        """Today's digest (and on the weekly day the summary) if their time has passed and they are not sent:
        the cron job fires only while the bot runs, so a bot down at digest time sends them on its first
        sweep after it, the same day. Cheap when there is nothing to do: one primary-key read per kind."""
        now = self.clock.now()
        config = self.settings.scheduler
        local = now.astimezone(self.settings.tz)
        if self.quiet(now) or local.time().replace(tzinfo=None) < config.digest_time:
            return 0
        day, week = self._periods(now)
        weekly = WEEKDAYS[local.weekday()] == config.weekly_day
        async with self.sessionmaker() as session:
            claims = DigestRepo(session)
            daily_due = not await claims.claimed(DigestKind.daily, day)
            low_due = not await claims.claimed(DigestKind.low_ratings, day)
            weekly_due = weekly and not await claims.claimed(DigestKind.weekly, week)
        sent = await self.daily_digest() if daily_due else (await self.low_ratings() if low_due else 0)
        return sent + (await self.weekly_summary() if weekly_due else 0)

    async def _claim(self, session: AsyncSession, kind: str, period: str, now: datetime) -> bool:
        """Claim a digest's period in this transaction; False (and the transaction rolled back) if it was
        claimed already, by an earlier run or by another instance at the same moment."""
        claims = DigestRepo(session)
        if await claims.claimed(kind, period):
            return False
        try:
            await claims.claim(kind, period, now)
        except IntegrityError:
            await session.rollback()
            return False
        return True

    async def daily_digest(self) -> int:
        """Each official: their agency's queue (due today, overdue, new); coordinators: overdue by agency; with
        the residents' ratings of the last RATING_DAYS days where there are any (officials and supervisors their
        agency's average and count, coordinators every rated agency's, the worst first). Then the coordinators'
        list of yesterday's low ratings (`low_ratings`, claimed apart).
        Once per day, whatever restarts happen: the day is claimed (storage.models.Digest) in the transaction
        that queues the digests, and each person's row has a dedupe key per person and date besides."""
        return await self._daily_digest() + await self.low_ratings()

    async def _daily_digest(self) -> int:
        now = self.clock.now()
        tz = self.settings.tz
        today = now.astimezone(tz).date()
        day_end = datetime.combine(today, time.max, tzinfo=tz)
        sent = 0
        async with self.sessionmaker() as session:
            if not await self._claim(session, DigestKind.daily, self._periods(now)[0], now):
                return 0
            rated = {
                agency_id: (average, count)
                for agency_id, average, count in await RatingStatsRepo(session).agency_averages(
                    now - timedelta(days=RATING_DAYS)
                )
            }
            officials = (
                await session.execute(
                    select(UserRole.user_id, UserRole.agency_id).where(UserRole.role == Role.official)
                )
            ).all()
            open_by_agency = and_(Appeal.status.in_(list(RUNNING)), Appeal.deadline_at.is_not(None))
            stats: dict[int, dict[str, int]] = {}
            for agency_id in {a for _u, a in officials if a is not None}:
                row = (
                    await session.execute(
                        select(
                            func.count().filter(Appeal.deadline_at < now),
                            func.count().filter(Appeal.deadline_at >= now, Appeal.deadline_at <= day_end),
                            func.count().filter(Appeal.assigned_at > now - timedelta(days=1)),
                        ).where(Appeal.agency_id == agency_id, open_by_agency)
                    )
                ).one()
                stats[agency_id] = {"overdue": row[0], "due_today": row[1], "new": row[2]}
            for user_id, agency_id in officials:
                if agency_id is None:
                    continue
                digest_official: notices.DigestOfficial = notices.DigestOfficial(**stats[agency_id])
                if agency_id in rated:
                    average, count = rated[agency_id]
                    digest_official = notices.DigestOfficialRated(
                        **stats[agency_id], rating_average=average, rating_count=count, rating_days=RATING_DAYS
                    )
                if await self._once(session, user_id, digest_official, f"digest_official:{user_id}:{today}", now):
                    sent += 1
            # Supervisors have no queue digest; their agency's rating reaches them, unless they had it as officials.
            as_officials = {(u, a) for u, a in officials}
            supervisors = (
                await session.execute(
                    select(UserRole.user_id, UserRole.agency_id).where(UserRole.role == Role.supervisor)
                )
            ).all()
            for user_id, agency_id in supervisors:
                if agency_id not in rated or (user_id, agency_id) in as_officials:
                    continue
                average, count = rated[agency_id]
                figure = notices.DigestAgencyRating(average, count, RATING_DAYS)
                if await self._once(session, user_id, figure, f"digest_rating:{user_id}:{agency_id}:{today}", now):
                    sent += 1
            overdue = (
                await session.execute(
                    select(Appeal.agency_id, func.count())
                    .where(open_by_agency, Appeal.deadline_at < now)
                    .group_by(Appeal.agency_id)
                    .order_by(func.count().desc())
                )
            ).all()
            late = tuple((agency_id, count) for agency_id, count in overdue)
            digest: notices.DigestCoordinator = notices.DigestCoordinator(late)
            if rated:
                # Worst first, as the query ordered them (dicts keep the order).
                ratings = tuple((a, average, count) for a, (average, count) in rated.items())
                digest = notices.DigestCoordinatorRated(late, ratings, RATING_DAYS)
            for user_id in await self._role_holders(session, Role.coordinator):
                if await self._once(session, user_id, digest, f"digest_coordinator:{user_id}:{today}", now):
                    sent += 1
            if not await self._commit_claimed(session):
                return 0
        self.on_commit()
        return sent

    async def low_ratings(self) -> int:
        """Coordinators (the admins while there are none): the ratings of 1..LOW_RATING given yesterday (region
        time), each with its appeal, agency, score and comment, and a button to its card. Once per day across
        restarts and instances (the `low_ratings` claim of today's date); a day without low ratings is claimed
        too, and sends nothing."""
        now = self.clock.now()
        tz = self.settings.tz
        today = now.astimezone(tz).date()
        yesterday = today - timedelta(days=1)
        start, end = (datetime.combine(day, time.min, tzinfo=tz) for day in (yesterday, today))
        sent = 0
        async with self.sessionmaker() as session:
            if not await self._claim(session, DigestKind.low_ratings, today.isoformat(), now):
                return 0
            stats = RatingStatsRepo(session)
            low = await stats.low_between(start, end, LOW_RATING, LOW_RATINGS_LISTED)
            if low:
                more = await stats.count_low_between(start, end, LOW_RATING) - len(low)
                items = tuple(
                    (appeal_id, number, agency_id, score, cut(comment, LOW_RATING_COMMENT))
                    for appeal_id, number, agency_id, score, comment in low
                )
                notice = notices.LowRatings(yesterday.isoformat(), items, more)
                # The comments are the residents' words: each recipient is logged as shown them (the access log).
                commented = [appeal_id for appeal_id, _n, _a, _s, comment in items if comment]
                query = select(Appeal.id, Appeal.user_id).where(Appeal.id.in_(commented))
                residents = {a: u for a, u in (await session.execute(query)).all()} if commented else {}
                for user_id in await self._role_holders(session, Role.coordinator, Role.admin):
                    if await self._once(session, user_id, notice, f"low_ratings:{user_id}:{today}", now):
                        sent += 1
                        for appeal_id in commented:
                            kinds = [AccessKind.resident_reply]
                            log_pushed(session, [user_id], kinds, appeal_id, residents.get(appeal_id), now)
            if not await self._commit_claimed(session):
                return 0
        if sent:
            self.on_commit()
        return sent

    async def weekly_summary(self) -> int:
        """Admins: counts per status and per agency, once per ISO week."""
        now = self.clock.now()
        year, week, _ = now.astimezone(self.settings.tz).isocalendar()
        async with self.sessionmaker() as session:
            if not await self._claim(session, DigestKind.weekly, self._periods(now)[1], now):
                return 0
            per_status = dict(
                (await session.execute(select(Appeal.status, func.count()).group_by(Appeal.status))).all()
            )
            per_agency = (
                await session.execute(
                    select(Appeal.agency_id, func.count())
                    .where(Appeal.agency_id.is_not(None))
                    .group_by(Appeal.agency_id)
                )
            ).all()
            summary = notices.WeeklySummary(
                statuses=per_status, agencies=tuple((a, c) for a, c in per_agency), week=f"{year}-W{week:02d}"
            )
            sent = 0
            for user_id in await self._role_holders(session, Role.admin):
                if await self._once(session, user_id, summary, f"weekly:{user_id}:{year}-{week}", now):
                    sent += 1
            if not await self._commit_claimed(session):
                return 0
        self.on_commit()
        return sent

    @staticmethod
    async def _commit_claimed(session: AsyncSession) -> bool:
        """Commit a claimed digest; False if another instance committed the same claim first."""
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return False
        return True

    async def _once(
        self, session: AsyncSession, user_id: int, notice: notices.Notice, key: str, now: datetime
    ) -> bool:
        outbox = OutboxRepo(session)
        if await outbox.has_key(key):
            return False
        outbox.add(user_id, notice, now, dedupe_key=key)
        return True
