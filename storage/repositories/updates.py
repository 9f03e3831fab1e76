"""Handled Telegram updates: the de-duplication of redelivered updates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import HandledUpdate


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
