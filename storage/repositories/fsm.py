from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FsmRecord, UTCDateTime

# One statement, compiled once: ON CONFLICT … DO UPDATE with `excluded` is the same on SQLite (≥ 3.24)
# and PostgreSQL. It runs once per update of a person in a dialog, so it is kept lean.
UPSERT = text(
    "INSERT INTO fsm_state (key, state, data, updated_at) VALUES (:key, :state, :data, :updated_at) "
    "ON CONFLICT (key) DO UPDATE SET state = excluded.state, data = excluded.data, updated_at = excluded.updated_at"
).bindparams(bindparam("data", type_=JSON()), bindparam("updated_at", type_=UTCDateTime()))


class FsmRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: str) -> FsmRecord | None:
        return (await self.session.execute(select(FsmRecord).where(FsmRecord.key == key))).scalar_one_or_none()

    async def upsert(self, key: str, state: str | None, data: dict[str, Any], now: datetime) -> None:
        await self.session.execute(UPSERT, {"key": key, "state": state, "data": data, "updated_at": now})

    async def upsert_many(self, rows: list[dict[str, Any]]) -> None:
        """Rows of key, state, data, updated_at, in one executemany."""
        await self.session.execute(UPSERT, rows)
