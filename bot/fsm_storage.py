"""aiogram FSM storage in the project's database, so a dialog survives a restart of the bot."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    DEFAULT_DESTINY,
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
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


class SQLStorage(BaseStorage):
    """aiogram's `BaseStorage` on the `fsm_state` table, written through: every change is one statement and
    one commit, and every read goes to the database. Nothing is held in the process, so a restart or a
    second instance finds each person at their step."""

    def __init__(self, engine: AsyncEngine, clock: Clock, key_builder: KeyBuilder | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.key_builder = key_builder or DestinyKeyBuilder()

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self.engine.begin() as connection:
            await FsmRepo(connection).set_state(self.key_builder.build(key), value, self.clock.now())

    async def get_state(self, key: StorageKey) -> str | None:
        async with self.engine.connect() as connection:
            found = await FsmRepo(connection).get(self.key_builder.build(key))
        return None if found is None else found[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await FsmRepo(connection).set_data(self.key_builder.build(key), dict(data), self.clock.now())

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self.engine.connect() as connection:
            found = await FsmRepo(connection).get(self.key_builder.build(key))
        return {} if found is None else found[1]

    async def close(self) -> None:
        """Nothing to release: the engine belongs to the application, which disposes of it."""
