"""aiogram FSM storage in the project's database, so a dialog survives a restart of the bot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.inline_fsm import InlineFsm
from storage.repositories.fsm import FsmRepo


class SQLStorage(BaseStorage):
    """Reads come from memory after the first; changes are kept in memory while an update is handled
    and written in one statement when it ends (`flush`, called by FSMFlushMiddleware), so a restart
    between updates loses nothing and an update costs at most one write. Polling allows one bot
    instance per token and one person's updates are handled one at a time, so the memory copy cannot
    go stale; several instances behind a webhook would use a shared storage (Redis) instead.

    On SQLite, `inline` (see `InlineFsm`) makes the reads and writes in place when the database is free, which
    is nearly always; the engine is the fallback, and the only path on other databases."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        key_builder: KeyBuilder | None = None,
        max_cached: int = 100_000,
        inline: InlineFsm | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.inline = inline
        self.clock = clock
        self.key_builder = key_builder or DefaultKeyBuilder()
        self.max_cached = max_cached
        self._cache: dict[str, tuple[str | None, dict[str, Any]]] = {}
        self._dirty: set[str] = set()
        self._lock = asyncio.Lock()

    async def _read(self, key: str) -> tuple[str | None, dict[str, Any]]:
        cached = self._cache.get(key)
        if cached is None:
            done, found = self.inline.get(key) if self.inline is not None else (False, None)
            if done:
                cached = found or (None, {})
            else:
                async with self.sessionmaker() as session:
                    record = await FsmRepo(session).get(key)
                cached = (None, {}) if record is None else (record.state, dict(record.data or {}))
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    async def _write(self, key: str, state: str | None, data: dict[str, Any], values: dict[str, Any]) -> None:
        self._cache[key] = (state, data)
        self._dirty.add(key)

    async def flush(self, key: StorageKey | None = None) -> None:
        """Write what changed, before the update that changed it is done (or everything, at shutdown).

        Group commit: whoever holds the lock writes every key changed so far in one transaction, so
        when many people are in dialogs at once, the updates waiting behind it find their key written."""
        if key is not None and self.key_builder.build(key) not in self._dirty:
            return
        async with self._lock:
            batch = list(self._dirty)
            if not batch:
                return
            self._dirty.clear()
            now = self.clock.now()
            rows = [{"key": k, "state": self._cache[k][0], "data": self._cache[k][1], "updated_at": now} for k in batch]
            try:
                if self.inline is None or not self.inline.write(rows):
                    async with self.sessionmaker() as session:
                        await FsmRepo(session).upsert_many(rows)
                        await session.commit()
            except BaseException:
                self._dirty.update(batch)  # written by the next flush
                raise

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
        """Write what is left; the engine belongs to the application, which disposes of it."""
        await self.flush()
        if self.inline is not None:
            self.inline.close()
            self.inline = None


class FSMFlushMiddleware(BaseMiddleware):
    """Writes the person's dialog state once, when their update has been handled (even if it failed)."""

    def __init__(self, storage: SQLStorage) -> None:
        self.storage = storage

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        try:
            return await handler(event, data)
        finally:
            state: FSMContext | None = data.get("state")
            if state is not None:
                await self.storage.flush(state.key)
