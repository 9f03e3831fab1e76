from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Appeal, Attachment, Counter, StatusHistory


class AppealRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_draft(self, draft_id: str) -> Appeal | None:
        query = select(Appeal).where(Appeal.draft_id == draft_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def full(self, appeal_id: int) -> Appeal | None:
        query = (
            select(Appeal)
            .where(Appeal.id == appeal_id)
            .options(
                selectinload(Appeal.attachments),
                selectinload(Appeal.history),
                selectinload(Appeal.category),
                selectinload(Appeal.district),
            )
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page_for_user(self, user_id: int, offset: int, limit: int) -> Sequence[Appeal]:
        query = (
            select(Appeal)
            .where(Appeal.user_id == user_id)
            .order_by(Appeal.created_at.desc(), Appeal.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def count_for_user(self, user_id: int) -> int:
        query = select(func.count()).select_from(Appeal).where(Appeal.user_id == user_id)
        return int((await self.session.execute(query)).scalar_one())

    async def insert(self, row: dict[str, Any]) -> int:
        """Insert one appeal and return its id."""
        table = Appeal.__table__
        return int((await self.session.execute(insert(table).values(row).returning(table.c.id))).scalar_one())

    async def insert_attachments(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(Attachment.__table__), rows)

    async def insert_history(self, rows: list[dict[str, Any]]) -> None:
        """Status-history rows: appeal_id, from_status, to_status, actor_id, at."""
        if rows:
            await self.session.execute(insert(StatusHistory.__table__), rows)

    async def next_counter(self, name: str, step: int = 1) -> int:
        """Add `step` to a counter atomically and return its new value: `step` numbers, up to it, are yours
        (UPDATE … RETURNING works on SQLite ≥3.35 and PostgreSQL)."""
        query = update(Counter).where(Counter.name == name).values(value=Counter.value + step).returning(Counter.value)
        value = (await self.session.execute(query)).scalar_one_or_none()
        if value is not None:
            return int(value)
        try:
            # A savepoint: when another transaction created the row first, retry the UPDATE.
            async with self.session.begin_nested():
                self.session.add(Counter(name=name, value=step))
            return step
        except IntegrityError:
            return int((await self.session.execute(query)).scalar_one())
