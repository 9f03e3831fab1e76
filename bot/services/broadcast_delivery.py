"""Delivering broadcasts (issue 13): starting them, their progress, their end and report.

A broadcast starts when its time comes (the scheduler's tick, or «send now»): the starter claims it in the database
(a lease on the row, like a poll's publishing) and materializes its recipients as outbox rows of the bulk lane,
`settings.broadcasts.batch` per transaction after a cursor (the last users.id done), so 10,000 or 1,000,000 residents
cost the same memory and a restart resumes where it stopped. The outbox sender (bot/outbox.py) serves those rows
after every personal notification, only while the broadcast is running, at the configured rate, and
the dedupe key `broadcast:{id}:{user}` keeps a resident from getting one broadcast twice whatever restarts happen.

When no item of a fully materialized broadcast is pending any more, the tick ends it (done) and queues the report
to its author in the same transaction; a cancelled broadcast gets its report the same way."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, func, insert, literal, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import notices
from bot.clock import Clock
from bot.config import Settings
from bot.domain import AttachmentKind, BroadcastAudience, BroadcastStatus, Lane, OutboxState
from bot.services.calendar import next_allowed_time
from bot.services.listing import list_in_batches
from storage.models import Broadcast, Outbox, User
from storage.repositories.broadcasts import ItemCounts, item_counts, recipients_query
from storage.repositories.outbox import OutboxRepo

logger = logging.getLogger(__name__)

# A starter holds the broadcast this long per batch; one that died is replaced after it.
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Progress:
    """Where a broadcast stands, for its author's progress message and card."""

    broadcast_id: int
    status: BroadcastStatus
    urgent: bool
    start_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    planned: int  # the audience counted at confirmation
    recipients: int  # items materialized so far
    materialized: bool  # every recipient is listed (recipients is final)
    counts: ItemCounts
    flood_waits: int
    rate: float | None  # items settled a second since the previous progress edit (None: not measured yet)
    # Where the author's progress message is, and the author's language (for the edits).
    chat_id: int | None = None
    message_id: int | None = None
    locale: str | None = None
    # A normal broadcast running in the quiet hours: its items wait until then.
    quiet_until: datetime | None = None

    @property
    def left(self) -> int:
        total = self.recipients if self.materialized else max(self.planned, self.recipients)
        return max(total - self.counts.settled, 0)

    @property
    def eta_seconds(self) -> float | None:
        if not self.rate or self.status != BroadcastStatus.running or self.quiet_until is not None:
            return None
        return self.left / self.rate


def report_of(row: Broadcast, counts: ItemCounts) -> notices.BroadcastReport:
    return notices.BroadcastReport(
        broadcast_id=row.id,
        status=row.status,
        recipients=row.recipients,
        delivered=counts.sent,
        blocked=counts.blocked,
        failed=counts.failed,
        cancelled=counts.cancelled,
        unsure=counts.unsure,
        flood_waits=row.flood_waits,
    )


async def finish(session: AsyncSession, broadcast_id: int, status: BroadcastStatus, now: datetime) -> bool:
    """End a broadcast in the caller's transaction: `done` (nothing pending is left) or `cancelled` (its pending
    items, except one whose call is in flight, become cancelled). Queues the final report to the author in the same
    transaction once no item is pending any more (an item in flight at a cancel settles first: the tick then reports,
    so the figures add up). False when it had already ended."""
    moved = await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status.not_in([BroadcastStatus.done, BroadcastStatus.cancelled]))
        .values(status=status, finished_at=now, claim=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount:
        return False
    if status == BroadcastStatus.cancelled:
        await OutboxRepo(session).cancel_pending(broadcast_id, now)
    await report(session, broadcast_id, now)
    return True


async def report(session: AsyncSession, broadcast_id: int, now: datetime) -> bool:
    """Queue the final report of an ended broadcast whose items are all settled, once (`reported_at`), in the caller's
    transaction. A scheduled broadcast cancelled before it started sent nothing: it gets none."""
    query = select(Broadcast).where(Broadcast.id == broadcast_id).execution_options(populate_existing=True)
    row = (await session.execute(query)).scalar_one()
    if row.reported_at is not None or row.status not in (BroadcastStatus.done, BroadcastStatus.cancelled):
        return False
    counts = await item_counts(session, broadcast_id)
    if counts.pending:
        return False
    claimed = await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.reported_at.is_(None))
        .values(reported_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:
        return False
    if row.started_at is not None:
        OutboxRepo(session).add(row.created_by, report_of(row, counts), now)
    return True


class BroadcastDelivery:
    """Starts due broadcasts, ends finished ones, and reads their progress and content. Called by the scheduler's
    tick, by «send now» and by the outbox sender's renderer; it checks no role (the authors' actions are in
    bot/services/broadcasts.py)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings
        self.on_commit = on_commit
        # Content never changes after confirmation, so this cache is right on every instance; bounded by pruning.
        self._contents: dict[int, notices.BroadcastContent | None] = {}

    # --- what an item shows ------------------------------------------------------------------------------

    async def content(self, broadcast_id: int) -> notices.BroadcastContent | None:
        """The broadcast's texts, file and button (None: no such broadcast)."""
        if broadcast_id in self._contents:
            return self._contents[broadcast_id]
        async with self.sessionmaker() as session:
            row = (await session.execute(select(Broadcast).where(Broadcast.id == broadcast_id))).scalar_one_or_none()
        content = None
        if row is not None:
            content = notices.BroadcastContent(
                broadcast_id=row.id,
                texts=dict(row.texts),
                media_kind=AttachmentKind(row.media_kind) if row.media_kind else None,
                media_file_id=row.media_file_id,
                button_text=row.button_text,
                button_url=row.button_url,
                block_id=BroadcastAudience.from_json(row.audience).block_id,
            )
        if len(self._contents) > 100:
            self._contents.clear()
        self._contents[broadcast_id] = content
        return content

    # --- progress ----------------------------------------------------------------------------------------

    async def progress(self, broadcast_id: int) -> Progress | None:
        async with self.sessionmaker() as session:
            row = (await session.execute(select(Broadcast).where(Broadcast.id == broadcast_id))).scalar_one_or_none()
            if row is None:
                return None
            counts = await item_counts(session, broadcast_id)
        return self._progress(row, counts, None)

    def _progress(self, row: Broadcast, counts: ItemCounts, rate: float | None, locale: str | None = None) -> Progress:
        quiet_until = None
        if row.status == BroadcastStatus.running and not row.urgent:
            now = self.clock.now()
            config = self.settings.scheduler
            allowed = next_allowed_time(now, quiet_start=config.quiet_start, quiet_end=config.quiet_end, tz=self.settings.tz)
            quiet_until = allowed if allowed != now else None
        return Progress(
            broadcast_id=row.id,
            status=BroadcastStatus(row.status),
            urgent=bool(row.urgent),
            start_at=row.start_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            planned=row.planned,
            recipients=row.recipients,
            materialized=bool(row.listed),
            counts=counts,
            flood_waits=row.flood_waits,
            rate=rate,
            chat_id=row.progress_chat_id,
            message_id=row.progress_message_id,
            locale=locale,
            quiet_until=quiet_until,
        )

    # --- starting ----------------------------------------------------------------------------------------

    async def start_due(self) -> int:
        """Start the scheduled broadcasts whose time has come, and resume the listing of any whose starter died;
        returns the recipients listed."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            ids = (
                await session.execute(
                    select(Broadcast.id).where(
                        or_(
                            (Broadcast.status == BroadcastStatus.scheduled) & (Broadcast.start_at <= now),
                            Broadcast.status.in_([BroadcastStatus.running, BroadcastStatus.paused])
                            & Broadcast.listed.is_(False),
                        ),
                        or_(Broadcast.locked_until.is_(None), Broadcast.locked_until < now),
                    )
                )
            ).scalars().all()
        return sum([await self.start(broadcast_id) for broadcast_id in ids])

    async def start(self, broadcast_id: int) -> int:
        """Claim the broadcast (a lease in its row) and list its recipients `batch` at a time after its cursor, each
        batch in one transaction with its outbox items; returns the recipients added. A batch commits only while the
        lease is ours, so a starter that stalled past it and was replaced adds nothing twice (and the items' dedupe
        keys would refuse it anyway)."""
        now = self.clock.now()
        token = uuid.uuid4().hex
        async with self.sessionmaker() as session:
            claimed = await session.execute(
                update(Broadcast)
                .where(
                    Broadcast.id == broadcast_id,
                    or_(
                        (Broadcast.status == BroadcastStatus.scheduled) & (Broadcast.start_at <= now),
                        Broadcast.status.in_([BroadcastStatus.running, BroadcastStatus.paused])
                        & Broadcast.listed.is_(False),
                    ),
                    or_(Broadcast.locked_until.is_(None), Broadcast.locked_until < now),
                )
                .values(
                    status=case(
                        (Broadcast.status == BroadcastStatus.scheduled, str(BroadcastStatus.running)),
                        else_=Broadcast.status,
                    ),
                    started_at=func.coalesce(Broadcast.started_at, literal(now, Broadcast.__table__.c.started_at.type)),
                    claim=token,
                    locked_until=now + LEASE,
                )
                .returning(Broadcast.audience, Broadcast.cursor)
            )
            row = claimed.first()
            await session.commit()
        if row is None:
            return 0
        audience, cursor = BroadcastAudience.from_json(row[0]), int(row[1])
        try:
            return await self._materialize(broadcast_id, token, audience, cursor)
        except Exception:
            # Give the lease back at once (if the database still answers): the next tick resumes from the cursor.
            with suppress(SQLAlchemyError, OSError):
                async with self.sessionmaker() as session:
                    await session.execute(
                        update(Broadcast)
                        .where(Broadcast.id == broadcast_id, Broadcast.claim == token)
                        .values(claim=None, locked_until=None)
                    )
                    await session.commit()
            raise

    async def _materialize(self, broadcast_id: int, token: str, audience: BroadcastAudience, cursor: int) -> int:
        item = notices.BroadcastItem(broadcast_id=broadcast_id)

        async def write(session: AsyncSession, rows: Sequence[Row[Any]], now: datetime) -> None:
            await session.execute(
                insert(Outbox.__table__),
                [
                    OutboxRepo.values(
                        user_id, item, now, f"broadcast:{broadcast_id}:{user_id}", lane=Lane.bulk, broadcast_id=broadcast_id
                    )
                    for (user_id,) in rows
                ],
            )

        added = await list_in_batches(
            self.sessionmaker, self.clock, Broadcast, broadcast_id, token,
            recipients_query(audience, self.settings.consent.version), cursor,
            batch=self.settings.broadcasts.batch, lease=LEASE, write=write,
            done=lambda now: {"listed": True}, on_commit=self.on_commit,
        )
        return added or 0

    # --- ending ------------------------------------------------------------------------------------------

    async def finish_done(self) -> list[int]:
        """End every running or paused broadcast that is fully listed and has no pending item left (done), queueing
        each report; returns their ids."""
        now = self.clock.now()
        pending = select(Outbox.id).where(Outbox.broadcast_id == Broadcast.id, Outbox.status == OutboxState.pending)
        async with self.sessionmaker() as session:
            ids = (
                await session.execute(
                    select(Broadcast.id).where(
                        Broadcast.status.in_([BroadcastStatus.running, BroadcastStatus.paused]),
                        Broadcast.listed.is_(True),
                        ~pending.exists(),
                    )
                )
            ).scalars().all()
            ended = [broadcast_id for broadcast_id in ids if await finish(session, broadcast_id, BroadcastStatus.done, now)]
            await session.commit()
        if ended:
            self.on_commit()
        return ended

    # --- the author's progress message --------------------------------------------------------------------

    async def progress_due(self, every: timedelta) -> list[Progress]:
        """The progress of each broadcast whose author's message is due for an edit (live ones every `every`, and
        ended ones once more for their final figures), claimed in the database so that one instance edits it; with
        the rate measured since the previous edit."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Broadcast, User.locale)
                    .join(User, User.id == Broadcast.created_by)
                    .where(
                        Broadcast.progress_message_id.is_not(None),
                        or_(
                            Broadcast.progress_at.is_(None),
                            Broadcast.status.in_([BroadcastStatus.running, BroadcastStatus.paused])
                            & (Broadcast.progress_at <= now - every * 0.8),  # the job's own jitter does not skip a round
                            Broadcast.progress_at < Broadcast.reported_at,  # once more with the final figures
                        ),
                    )
                )
            ).all()
            due: list[Progress] = []
            for row, locale in rows:
                counts = await item_counts(session, row.id)
                claimed = await session.execute(
                    update(Broadcast)
                    .where(
                        Broadcast.id == row.id,
                        Broadcast.progress_at.is_(None) if row.progress_at is None else Broadcast.progress_at == row.progress_at,
                    )
                    .values(progress_at=now, progress_done=counts.settled)
                    .execution_options(synchronize_session=False)
                )
                if not claimed.rowcount:
                    continue  # another instance edits it this round
                rate = None
                if row.progress_at is not None and now > row.progress_at and row.status == BroadcastStatus.running:
                    rate = max(counts.settled - row.progress_done, 0) / (now - row.progress_at).total_seconds()
                due.append(self._progress(row, counts, rate, locale))
            await session.commit()
        return due

    async def sweep_cancelled(self) -> int:
        """Items of cancelled broadcasts still pending: the one whose call was in flight at the cancel (its lease ran
        out, or it met an error that would retry it). They become cancelled, so that nothing waits forever."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            ids = (
                await session.execute(select(Broadcast.id).where(Broadcast.status == BroadcastStatus.cancelled))
            ).scalars().all()
            swept = sum([await OutboxRepo(session).cancel_pending(broadcast_id, now) for broadcast_id in ids])
            unreported = (
                await session.execute(
                    select(Broadcast.id).where(
                        Broadcast.status.in_([BroadcastStatus.done, BroadcastStatus.cancelled]),
                        Broadcast.reported_at.is_(None),
                    )
                )
            ).scalars().all()
            reported = sum([await report(session, broadcast_id, now) for broadcast_id in unreported])
            await session.commit()
        if reported:
            self.on_commit()
        return swept + reported

    async def tick(self) -> int:
        """The scheduler's job every `broadcasts.progress_seconds`: end what is finished, sweep what a cancel left."""
        ended = await self.finish_done()
        return len(ended) + await self.sweep_cancelled()
