"""Reminder rows: planned, claimed by the sweep, dropped when they no longer apply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Digest, Reminder


class ReminderRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, appeal_id: int, kind: str, seq: int, due_at: datetime) -> None:
        self.session.add(Reminder(appeal_id=appeal_id, kind=kind, seq=seq, due_at=due_at))

    async def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Rows of appeal_id, kind, seq, due_at, sent_at, in one executemany."""
        if rows:
            await self.session.execute(insert(Reminder.__table__), rows)

    async def sent(self, appeal_id: int) -> list[tuple[str, int]]:
        """(kind, seq) of the appeal's reminders already sent."""
        query = select(Reminder.kind, Reminder.seq).where(Reminder.appeal_id == appeal_id, Reminder.sent_at.is_not(None))
        return [(kind, seq) for kind, seq in (await self.session.execute(query)).all()]

    async def drop_pending(self, appeal_id: int, kinds: Iterable[str]) -> None:
        await self.session.execute(
            delete(Reminder).where(
                Reminder.appeal_id == appeal_id, Reminder.kind.in_(list(kinds)), Reminder.sent_at.is_(None)
            )
        )

    async def claim_due(self, now: datetime, limit: int) -> Sequence[Row[tuple[int, int, str, int]]]:
        """Mark up to `limit` due reminders sent and return (id, appeal_id, kind, seq) of those this call got.

        One UPDATE … RETURNING over the pending index; `sent_at IS NULL` again in the outer WHERE, so of two
        concurrent sweeps only one claims a row. On PostgreSQL the rows another sweep holds are skipped (FOR UPDATE
        SKIP LOCKED): a second instance takes the next ones instead of waiting for them and finding them taken
        (SQLite renders no FOR UPDATE: its writers take turns)."""
        due = (
            select(Reminder.id)
            .where(Reminder.sent_at.is_(None), Reminder.due_at <= now)
            .order_by(Reminder.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            update(Reminder)
            .where(Reminder.id.in_(due), Reminder.sent_at.is_(None))
            .values(sent_at=now)
            .returning(Reminder.id, Reminder.appeal_id, Reminder.kind, Reminder.seq)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(stmt)).all()


class DigestRepo:
    """Claims of digests per kind and period (storage.models.Digest)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claimed(self, kind: str, period: str) -> bool:
        return (await self.session.get(Digest, (kind, period))) is not None

    async def claim(self, kind: str, period: str, now: datetime) -> None:
        """Insert the claim in the caller's transaction; a concurrent claim of the same period makes the
        flush (or the commit) fail with IntegrityError, and the caller rolls back."""
        self.session.add(Digest(kind=kind, period=period, sent_at=now))
        await self.session.flush()
