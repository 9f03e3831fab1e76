from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FsmRecord, UTCDateTime

# ON CONFLICT … DO UPDATE with `excluded` reads the same on SQLite (≥ 3.24) and PostgreSQL. The state and the
# data are written by separate statements, each touching only its own column, as aiogram sets them separately.
_INSERT = "INSERT INTO fsm_state (key, state, data, updated_at) VALUES (:key, :state, :data, :updated_at) "
SET_STATE = text(
    _INSERT + "ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
).bindparams(bindparam("data", type_=JSON()), bindparam("updated_at", type_=UTCDateTime()))
SET_DATA = text(
    _INSERT + "ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
).bindparams(bindparam("data", type_=JSON()), bindparam("updated_at", type_=UTCDateTime()))


class FsmRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: str) -> FsmRecord | None:
        return (await self.session.execute(select(FsmRecord).where(FsmRecord.key == key))).scalar_one_or_none()

    async def set_state(self, key: str, state: str | None, now: datetime) -> None:
        await self.session.execute(SET_STATE, {"key": key, "state": state, "data": {}, "updated_at": now})

    async def set_data(self, key: str, data: dict[str, Any], now: datetime) -> None:
        await self.session.execute(SET_DATA, {"key": key, "state": None, "data": data, "updated_at": now})
