"""aiogram FSM storage in the project's database, so a dialog survives a restart of the bot."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, Literal

from aiogram import BaseMiddleware
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    DEFAULT_DESTINY,
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import Clock
from storage.repositories.fsm import FsmRepo


class DestinyKeyBuilder(KeyBuilder):
    """`fsm:<chat>:<user>` for the default destiny (the keys stored before dialogs had other destinies), and
    `fsm:<chat>:<user>:<destiny>` for the others (aiogram-dialog keeps its stacks under their own destinies)."""

    def __init__(self) -> None:
        self.default = DefaultKeyBuilder()
        self.with_destiny = DefaultKeyBuilder(with_destiny=True)

    def build(self, key: StorageKey, part: Literal["data", "state", "lock"] | None = None) -> str:
        builder = self.default if key.destiny == DEFAULT_DESTINY else self.with_destiny
        return builder.build(key, part)


Row = tuple[str | None, str]  # the state and the data as JSON text, as a read of the row gives them
# The rows read or written while the current update is handled (None outside an update): see `UpdateRows`.
_rows: ContextVar[dict[str, Row | None] | None] = ContextVar("fsm_rows", default=None)


class UpdateRows(BaseMiddleware):
    """An outer middleware: while one update is handled, the storage remembers the rows it read or wrote.

    aiogram reads a person's state before the handlers, the handlers read it again, and aiogram-dialog reads and
    writes back its stack and context on every update, mostly unchanged. With the rows remembered for the update,
    each row is read once and a write that changes nothing is not made. Every change is still written at once, and
    nothing outlives the update: the next update reads the database again, so a restart or a second instance sees
    the same. One person's updates are handled one at a time (events isolation), so no other writer changes the
    person's rows while the update runs."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        token = _rows.set({})
        try:
            return await handler(event, data)
        finally:
            _rows.reset(token)


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data))


class SQLStorage(BaseStorage):
    """aiogram's `BaseStorage` on the `fsm_state` table, written through: every change is one statement and one
    commit. Nothing is held in the process beyond the update being handled (`UpdateRows`), so a restart or a
    second instance finds each person at their step."""

    def __init__(self, engine: AsyncEngine, clock: Clock, key_builder: KeyBuilder | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.key_builder = key_builder or DestinyKeyBuilder()

    async def _row(self, key: str) -> Row | None:
        rows = _rows.get()
        if rows is not None and key in rows:
            return rows[key]
        async with self.engine.connect() as connection:
            found = await FsmRepo(connection).get(key)
        row = None if found is None else (found[0], _dump(found[1]))
        if rows is not None:
            rows[key] = row
        return row

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        built = self.key_builder.build(key)
        rows = _rows.get()
        known = rows is not None and built in rows
        row = rows.get(built) if rows is not None else None
        if known and (row[0] if row else None) == value:
            return  # already so
        async with self.engine.begin() as connection:
            await FsmRepo(connection).set_state(built, value, self.clock.now())
        if rows is not None:
            if known:
                rows[built] = (value, row[1] if row else "{}")
            else:
                rows.pop(built, None)

    async def get_state(self, key: StorageKey) -> str | None:
        row = await self._row(self.key_builder.build(key))
        return None if row is None else row[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        built = self.key_builder.build(key)
        dumped = _dump(data)
        rows = _rows.get()
        known = rows is not None and built in rows
        row = rows.get(built) if rows is not None else None
        if known and (row[1] if row else "{}") == dumped:
            return  # already so (no row and no data count as the same)
        async with self.engine.begin() as connection:
            await FsmRepo(connection).set_data(built, json.loads(dumped), self.clock.now())
        if rows is not None:
            if known:
                rows[built] = (row[0] if row else None, dumped)
            else:
                rows.pop(built, None)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        row = await self._row(self.key_builder.build(key))
        return {} if row is None else json.loads(row[1])

    async def close(self) -> None:
        """Nothing to release: the engine belongs to the application, which disposes of it."""
