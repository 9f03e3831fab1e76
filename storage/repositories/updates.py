"""Handled Telegram updates: the de-duplication of redelivered updates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import HandledUpdate, InboxUpdate


class UpdateRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def handled(self, update_id: int) -> bool:
        query = select(HandledUpdate.update_id).where(HandledUpdate.update_id == update_id)
        return (await self.session.execute(query)).first() is not None

    def add(self, update_id: int, at: datetime) -> None:
        self.session.add(HandledUpdate(update_id=update_id, handled_at=at))

    async def prune(self, before: datetime) -> int:
        result = await self.session.execute(delete(HandledUpdate).where(HandledUpdate.handled_at < before))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def stash(self, rows: list[tuple[int, str]], at: datetime) -> None:
        """Keep fetched updates (id, JSON) until handled; one already kept (fetched again after a crash) stays."""
        if not rows:
            return
        ids = [update_id for update_id, _payload in rows]
        kept = set((await self.session.execute(select(InboxUpdate.update_id).where(InboxUpdate.update_id.in_(ids)))).scalars())
        fresh = [{"update_id": i, "payload": p, "received_at": at} for i, p in rows if i not in kept]
        if fresh:
            await self.session.execute(insert(InboxUpdate.__table__), fresh)

    async def add_many(self, update_ids: list[int], at: datetime) -> None:
        await self.session.execute(
            insert(HandledUpdate.__table__), [{"update_id": i, "handled_at": at} for i in update_ids]
        )

    async def unstash_many(self, update_ids: list[int]) -> None:
        await self.session.execute(delete(InboxUpdate).where(InboxUpdate.update_id.in_(update_ids)))

    async def unstash(self, update_id: int) -> None:
        await self.session.execute(delete(InboxUpdate).where(InboxUpdate.update_id == update_id))

    async def inbox(self) -> list[tuple[int, str]]:
        query = select(InboxUpdate.update_id, InboxUpdate.payload).order_by(InboxUpdate.update_id)
        return [(int(i), str(p)) for i, p in (await self.session.execute(query)).all()]

    async def newest(self) -> int:
        """The highest update id known, handled or waiting in the inbox (0 when none)."""
        handled = (await self.session.execute(select(func.max(HandledUpdate.update_id)))).scalar()
        waiting = (await self.session.execute(select(func.max(InboxUpdate.update_id)))).scalar()
        return max(handled or 0, waiting or 0)
