from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, insert, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import BroadcastStatus, Lane, OutboxState
from bot.notices import BroadcastHeld, Notice
from storage.models import Broadcast, Lease, Outbox, User


@dataclass(frozen=True)
class DueOutbox:
    """A row that looked due when the batch was listed; it still has to be claimed."""

    id: int
    chat_id: int


@dataclass(frozen=True)
class ClaimedOutbox:
    """A row this sender holds the lease on, with what it needs to render and address it."""

    id: int
    user_id: int
    template: str
    params: dict[str, Any]
    attempts: int
    created_at: datetime
    locked_until: datetime
    chat_id: int
    locale: str | None
    user_active: bool
    lane: Lane = Lane.personal
    broadcast_id: int | None = None


class OutboxRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def values(
        user_id: int,
        notice: Notice,
        now: datetime,
        dedupe_key: str | None = None,
        *,
        lane: Lane = Lane.personal,
        broadcast_id: int | None = None,
    ) -> dict[str, Any]:
        """The column values of a new notification, for bulk inserts."""
        return {
            "lane": int(lane),
            "broadcast_id": broadcast_id,
            "lost_leases": 0,
            "user_id": user_id,
            "template": notice.template,
            "params": notice.params(),
            "status": OutboxState.pending,
            "attempts": 0,
            "next_attempt_at": now,
            "locked_until": None,
            "created_at": now,
            "sent_at": None,
            "tg_message_id": None,
            "last_error": None,
            "dedupe_key": dedupe_key,
        }

    def add(self, user_id: int, notice: Notice, now: datetime, dedupe_key: str | None = None) -> Outbox:
        """Queue a notification in the caller's transaction; it is sent only if that transaction commits."""
        return self.add_raw(user_id, notice.template, notice.params(), now, dedupe_key)

    def add_many(self, user_ids: Iterable[int], notice: Notice, now: datetime) -> None:
        """The same notification to several people, each once."""
        for user_id in dict.fromkeys(user_ids):
            self.add(user_id, notice, now)

    def add_raw(
        self, user_id: int, template: str, params: dict[str, Any], now: datetime, dedupe_key: str | None = None
    ) -> Outbox:
        """A row as the sender sees it (template code and params): for the sender's own tests and tools."""
        row = Outbox(
            user_id=user_id,
            template=template,
            params=params,
            status=OutboxState.pending,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            dedupe_key=dedupe_key,
        )
        self.session.add(row)
        return row

    async def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Rows built with values(), in one executemany."""
        if rows:
            await self.session.execute(insert(Outbox), rows)

    async def cancel_pending(self, broadcast_id: int, now: datetime) -> int:
        """The broadcast's items not yet sent become `cancelled`, except one leased right now: its call may be in
        flight, and its outcome is recorded when it returns."""
        result = await self.session.execute(
            update(Outbox)
            .where(
                Outbox.broadcast_id == broadcast_id,
                Outbox.status == OutboxState.pending,
                or_(Outbox.locked_until.is_(None), Outbox.locked_until <= now),
            )
            .values(status=OutboxState.cancelled, locked_until=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount if isinstance(result, CursorResult) else 0

    async def hold_broadcast(self, broadcast_id: int, reason: str, now: datetime) -> bool:
        """Telegram refused a broadcast's item for its content (bot/outbox.py CONTENT_REFUSALS): pause the broadcast, so
        that its other items are not all refused one by one, and tell its author why, in this transaction."""
        moved = await self.session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == BroadcastStatus.running)
            .values(status=BroadcastStatus.paused)
            .execution_options(synchronize_session=False)
        )
        if not (isinstance(moved, CursorResult) and moved.rowcount == 1):
            return False
        author = (await self.session.execute(select(Broadcast.created_by).where(Broadcast.id == broadcast_id))).scalar_one()
        self.add(author, BroadcastHeld(broadcast_id=broadcast_id, reason=reason), now)
        return True

    async def note_flood_wait(self, broadcast_id: int) -> None:
        """The broadcast met flood control (429) once more: its report says how often."""
        await self.session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(flood_waits=Broadcast.flood_waits + 1)
            .execution_options(synchronize_session=False)
        )

    async def has_key(self, dedupe_key: str) -> bool:
        return (await self.session.execute(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key))).first() is not None

    # --- the sender's side (bot/outbox.py) ---------------------------------------------------------
    # Plain conditional UPDATEs only: they behave the same on SQLite and PostgreSQL, so two bot instances
    # racing for a row are arbitrated by the database (exactly one UPDATE matches), not by a process lock.

    @staticmethod
    def _claimable(now: datetime) -> Any:
        return (
            (Outbox.status == OutboxState.pending)
            & (Outbox.next_attempt_at <= now)
            & or_(Outbox.locked_until.is_(None), Outbox.locked_until <= now)
        )

    @staticmethod
    def _sendable(quiet: bool) -> Any:
        """A bulk row may go out: a poll invitation (no broadcast) or an item of a running broadcast; in the quiet
        hours only an urgent broadcast's items."""
        running = select(Broadcast.id).where(Broadcast.status == BroadcastStatus.running)
        if quiet:
            return Outbox.broadcast_id.in_(running.where(Broadcast.urgent.is_(True)))
        return or_(Outbox.broadcast_id.is_(None), Outbox.broadcast_id.in_(running))

    async def due(self, now: datetime, limit: int, lane: Lane = Lane.personal, *, quiet: bool = False) -> list[DueOutbox]:
        """A lane's rows that are due and not leased, oldest first; only a hint, the claim decides. `quiet`: the
        quiet hours, when bulk rows wait (except an urgent broadcast's)."""
        if lane == Lane.bulk:
            return await self._due_bulk(now, limit, quiet)
        query = (
            select(Outbox.id, User.tg_id)
            .join(User, User.id == Outbox.user_id)
            .where(self._claimable(now), Outbox.lane == int(lane))
            .order_by(Outbox.next_attempt_at, Outbox.id)
            .limit(limit)
        )
        return [DueOutbox(id=row_id, chat_id=tg_id) for row_id, tg_id in (await self.session.execute(query)).all()]

    async def _due_bulk(self, now: datetime, limit: int, quiet: bool) -> list[DueOutbox]:
        """The bulk lane, source by source (poll invitations, then each broadcast that may send now), each an index
        range on (broadcast_id, status, next_attempt_at): the rows of a paused broadcast, or a whole backlog in the
        quiet hours, are never scanned, however many there are."""
        running = select(Broadcast.id).where(Broadcast.status == BroadcastStatus.running)
        if quiet:
            running = running.where(Broadcast.urgent.is_(True))
        sources: list[int | None] = [] if quiet else [None]
        sources += list((await self.session.execute(running.order_by(Broadcast.id))).scalars())
        found: list[tuple[datetime, int, int]] = []
        for source in sources:
            query = (
                select(Outbox.next_attempt_at, Outbox.id, User.tg_id)
                .join(User, User.id == Outbox.user_id)
                .where(
                    Outbox.broadcast_id.is_(None) if source is None else Outbox.broadcast_id == source,
                    self._claimable(now),
                    Outbox.lane == int(Lane.bulk),
                )
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(limit)
            )
            found += [(at, row_id, tg_id) for at, row_id, tg_id in (await self.session.execute(query)).all()]
        found.sort()
        return [DueOutbox(id=row_id, chat_id=tg_id) for _at, row_id, tg_id in found[:limit]]

    async def claim(
        self, outbox_id: int, now: datetime, lease_until: datetime, *, quiet: bool = False
    ) -> ClaimedOutbox | None:
        """Take the lease on one row; None when another sender (or an earlier outcome) got there first, or when it is
        a broadcast item whose broadcast stopped running (paused, cancelled) since it was listed.

        A row whose earlier lease expired with no outcome was in flight when its sender died: `lost_leases` counts
        it (the person may get it twice). The UPDATE runs first so that on SQLite the transaction holds the write
        lock before it reads."""
        stmt = (
            update(Outbox)
            .where(
                Outbox.id == outbox_id,
                self._claimable(now),
                or_(Outbox.lane == int(Lane.personal), self._sendable(quiet)),
            )
            .values(
                locked_until=lease_until,
                lost_leases=Outbox.lost_leases + case((Outbox.locked_until.is_not(None), 1), else_=0),
            )
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        if not isinstance(result, CursorResult) or result.rowcount != 1:
            return None
        query = (
            select(
                Outbox.user_id,
                Outbox.template,
                Outbox.params,
                Outbox.attempts,
                Outbox.created_at,
                Outbox.lane,
                Outbox.broadcast_id,
                User.tg_id,
                User.locale,
                User.is_active,
            )
            .join(User, User.id == Outbox.user_id)
            .where(Outbox.id == outbox_id)
        )
        row = (await self.session.execute(query)).one()
        return ClaimedOutbox(
            id=outbox_id,
            user_id=row.user_id,
            template=row.template,
            params=dict(row.params or {}),
            attempts=row.attempts,
            created_at=row.created_at,
            locked_until=lease_until,
            chat_id=row.tg_id,
            locale=row.locale,
            user_active=bool(row.is_active),
            lane=Lane(row.lane),
            broadcast_id=row.broadcast_id,
        )

    async def _finish(self, outbox_id: int, attempted: bool, **values: Any) -> bool:
        """Record an outcome and drop the lease. False when the row is no longer pending (already settled)."""
        stmt = (
            update(Outbox)
            .where(Outbox.id == outbox_id, Outbox.status == OutboxState.pending)
            .values(locked_until=None, attempts=Outbox.attempts + (1 if attempted else 0), **values)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return isinstance(result, CursorResult) and result.rowcount == 1

    async def mark_sent(
        self, outbox_id: int, now: datetime, tg_message_id: int | None, note: str | None = None
    ) -> bool:
        """Telegram accepted the call (or there was nothing to send: tg_message_id None and a note)."""
        return await self._finish(
            outbox_id,
            tg_message_id is not None,
            status=OutboxState.sent,
            sent_at=now,
            tg_message_id=tg_message_id,
            last_error=note,
        )

    async def reschedule(
        self, outbox_id: int, next_attempt_at: datetime, error: str | None, attempted: bool = True, unsure: bool = False
    ) -> bool:
        """Leave the row pending for a later attempt. `unsure`: the failed call may have reached the person (a lost
        connection), so the next one may be a second copy: counted in `lost_leases`."""
        values: dict[str, Any] = {"next_attempt_at": next_attempt_at}
        if unsure:
            values["lost_leases"] = Outbox.lost_leases + 1
        if error is not None:
            values["last_error"] = error[:255]
        return await self._finish(outbox_id, attempted, **values)

    async def mark_failed(self, outbox_id: int, error: str, attempted: bool = True) -> bool:
        return await self._finish(outbox_id, attempted, status=OutboxState.failed, last_error=error[:255])

    async def mark_blocked(self, outbox_id: int, user_id: int, error: str, attempted: bool = True) -> bool:
        """The person blocked the bot (or is gone): the row and the user, in the caller's one transaction."""
        done = await self._finish(outbox_id, attempted, status=OutboxState.blocked, last_error=error[:255])
        await self.session.execute(
            update(User).where(User.id == user_id).values(is_active=False).execution_options(synchronize_session=False)
        )
        return done


class LeaseRepo:
    """Named leases (storage.models.Lease): one holder at a time across instances, decided by a conditional UPDATE."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def take(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease; False while another holder's lease runs."""
        stmt = (
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.holder.is_(None), Lease.until <= now))
            .values(holder=holder, until=until)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        if isinstance(result, CursorResult) and result.rowcount == 1:
            return True
        if (await self.session.execute(select(Lease.name).where(Lease.name == name))).first() is None:
            # The first time anyone asks: create the row (a concurrent creator makes this insert fail; the caller
            # treats the error as "not taken" and asks again later).
            await self.session.execute(insert(Lease).values(name=name, holder=holder, until=until))
            return True
        return False

    async def until(self, name: str) -> datetime | None:
        return (await self.session.execute(select(Lease.until).where(Lease.name == name))).scalar_one_or_none()

    async def extend(self, name: str, until: datetime) -> None:
        """Move the lease's `until` to `until` unless it is already later (no holder: a moment every instance reads)."""
        stmt = (
            update(Lease)
            .where(Lease.name == name, or_(Lease.until.is_(None), Lease.until < until))
            .values(until=until)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        if isinstance(result, CursorResult) and result.rowcount == 1:
            return
        if (await self.session.execute(select(Lease.name).where(Lease.name == name))).first() is None:
            await self.session.execute(insert(Lease).values(name=name, holder=None, until=until))

    async def release(self, name: str, holder: str) -> None:
        await self.session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == holder)
            .values(holder=None, until=None)
            .execution_options(synchronize_session=False)
        )
