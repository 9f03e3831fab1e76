from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, and_, bindparam, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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


_table = FsmRecord.__table__
GET = select(_table.c.state, _table.c.data).where(_table.c.key == bindparam("key"))
# One person's rows: the default key and every key that extends it with ":<destiny>" (";" follows ":" in every
# collation), as a range the primary key's index serves on SQLite and PostgreSQL alike.
PERSON = select(_table.c.key, _table.c.state, _table.c.data).where(
    or_(_table.c.key == bindparam("key"), and_(_table.c.key >= bindparam("low"), _table.c.key < bindparam("high")))
)
# A row with neither a state nor data holds nothing: it goes (the data is compared as written, '{}').
DELETE_EMPTY = text("DELETE FROM fsm_state WHERE key = :key AND state IS NULL AND CAST(data AS TEXT) = '{}'")


class FsmRepo:
    """Dialog state rows. It runs once or twice per update of everyone in a dialog, so it takes a Core connection
    as well as a session (a session costs about 0.3 ms more per statement, measured in `bench/confirm.py`) and
    reads the two columns it needs rather than an ORM object."""

    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self.session = session

    async def get(self, key: str) -> tuple[str | None, dict[str, Any]] | None:
        """(state, data), or None when nothing is stored under the key."""
        row = (await self.session.execute(GET, {"key": key})).first()
        return None if row is None else (row.state, dict(row.data or {}))

    async def person(self, key: str) -> dict[str, tuple[str | None, dict[str, Any]]]:
        """Every row of the person whose default key is `key`, by key."""
        rows = await self.session.execute(PERSON, {"key": key, "low": key + ":", "high": key + ";"})
        return {row.key: (row.state, dict(row.data or {})) for row in rows}

    async def delete_if_empty(self, key: str) -> None:
        await self.session.execute(DELETE_EMPTY, {"key": key})

    async def set_state(self, key: str, state: str | None, now: datetime) -> None:
        await self.session.execute(SET_STATE, {"key": key, "state": state, "data": {}, "updated_at": now})

    async def set_data(self, key: str, data: dict[str, Any], now: datetime) -> None:
        await self.session.execute(SET_DATA, {"key": key, "state": None, "data": data, "updated_at": now})
