from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FsmRecord


class FsmRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: str) -> FsmRecord | None:
        return (await self.session.execute(select(FsmRecord).where(FsmRecord.key == key))).scalar_one_or_none()

    async def upsert(self, key: str, values: dict[str, Any], now: datetime) -> None:
        """Insert or update one column set of a key; one statement on both SQLite and PostgreSQL."""
        dialect = self.session.bind.dialect.name if self.session.bind is not None else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        row = {"key": key, "state": None, "data": {}, "updated_at": now, **values}
        statement = insert(FsmRecord).values(**row)
        statement = statement.on_conflict_do_update(index_elements=[FsmRecord.key], set_={**values, "updated_at": now})
        await self.session.execute(statement)
