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
    """Write-through: every change is written to the database at once (a restart loses nothing), reads
    come from memory after the first. Polling allows one bot instance per token, and updates of one
    person are handled one at a time, so the memory copy cannot go stale; several instances behind a
    webhook would use a shared storage (Redis) instead."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        key_builder: KeyBuilder | None = None,
        max_cached: int = 100_000,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.key_builder = key_builder or DefaultKeyBuilder()
        self.max_cached = max_cached
        self._cache: dict[str, tuple[str | None, dict[str, Any]]] = {}

    async def _read(self, key: str) -> tuple[str | None, dict[str, Any]]:
        cached = self._cache.get(key)
        if cached is None:
            async with self.sessionmaker() as session:
                record = await FsmRepo(session).get(key)
            cached = (None, {}) if record is None else (record.state, dict(record.data or {}))
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    async def _write(self, key: str, state: str | None, data: dict[str, Any], values: dict[str, Any]) -> None:
        async with self.sessionmaker() as session:
            await FsmRepo(session).upsert(key, values, self.clock.now())
            await session.commit()
        self._cache[key] = (state, data)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        built = self.key_builder.build(key)
        current, data = await self._read(built)
        if current != value:
            await self._write(built, value, data, {"state": value})

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._read(self.key_builder.build(key)))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        built = self.key_builder.build(key)
        state, current = await self._read(built)
        new = dict(data)
        if current != new:
            await self._write(built, state, new, {"data": new})

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        # A copy: aiogram's update_data mutates what it gets before writing it back.
        return dict((await self._read(self.key_builder.build(key)))[1])

    async def close(self) -> None:
        """The engine belongs to the application, which disposes of it."""
