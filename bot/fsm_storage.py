"""aiogram FSM storage in the project's database, so a dialog survives a restart of the bot."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.repositories.fsm import FsmRepo


class SQLStorage(BaseStorage):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        key_builder: KeyBuilder | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.key_builder = key_builder or DefaultKeyBuilder()

    async def _write(self, key: StorageKey, values: dict[str, Any]) -> None:
        async with self.sessionmaker() as session:
            await FsmRepo(session).upsert(self.key_builder.build(key), values, self.clock.now())
            await session.commit()

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(key, {"state": value})

    async def get_state(self, key: StorageKey) -> str | None:
        async with self.sessionmaker() as session:
            record = await FsmRepo(session).get(self.key_builder.build(key))
            return None if record is None else record.state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._write(key, {"data": dict(data)})

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self.sessionmaker() as session:
            record = await FsmRepo(session).get(self.key_builder.build(key))
            return {} if record is None else dict(record.data or {})

    async def close(self) -> None:
        """The engine belongs to the application, which disposes of it."""
