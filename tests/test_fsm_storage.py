"""Dialog state in the database: written through on every change, so nothing is lost however many people talk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import select

from bot.clock import ManualClock
from bot.fsm_storage import SQLStorage
from storage.db import create_engine
from storage.models import FsmRecord
from storage.repositories.fsm import FsmRepo


@pytest.fixture
async def engine(db_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{db_path}")
    yield engine
    await engine.dispose()


def key(user: int, destiny: str = "default") -> StorageKey:
    return StorageKey(bot_id=1, chat_id=user, user_id=user, destiny=destiny)


async def test_a_state_survives_other_people_reading_theirs(engine: Any) -> None:
    """The old write-back cache cleared itself, unwritten states included, once it held `max_cached` people."""
    storage = SQLStorage(engine, ManualClock())
    await storage.set_state(key(1), "Filing:description")
    for user in range(2, 300):
        await storage.get_state(key(user))
        await storage.set_data(key(user), {"n": user})
    fresh = SQLStorage(engine, ManualClock())
    assert await fresh.get_state(key(1)) == "Filing:description"
    assert await fresh.get_data(key(299)) == {"n": 299}


async def test_every_change_is_in_the_database_at_once(engine: Any) -> None:
    clock = ManualClock(datetime(2026, 11, 26, 9, 30, tzinfo=UTC))
    storage = SQLStorage(engine, clock)
    other = SQLStorage(engine, clock)  # another instance, or the bot after a restart
    data = {"draft": "ab12", "text": "Нет воды <b>3 дня</b>", "attachments": [["photo", "AgAD", "u1"]]}
    await storage.set_state(key(1), "Filing:district")
    await storage.set_data(key(1), data)
    assert await other.get_state(key(1)) == "Filing:district"
    assert await other.get_data(key(1)) == data
    clock.advance(timedelta(minutes=5))
    await other.set_state(key(1), "Filing:kind")  # the state alone changes; the data stays
    assert await storage.get_state(key(1)) == "Filing:kind"
    assert await storage.get_data(key(1)) == data
    await storage.set_data(key(1), {})  # and the other way round
    assert await other.get_state(key(1)) == "Filing:kind"
    assert await other.get_data(key(1)) == {}
    async with engine.connect() as connection:  # the key the rows stored before this storage carry
        stamp = (await connection.execute(select(FsmRecord.updated_at).where(FsmRecord.key == "fsm:1:1"))).scalar()
    assert stamp == clock.now()


async def test_someone_never_seen_has_no_state_and_no_data(engine: Any) -> None:
    storage = SQLStorage(engine, ManualClock())
    assert await storage.get_state(key(42)) is None
    assert await storage.get_data(key(42)) == {}


async def test_data_read_is_a_copy(engine: Any) -> None:
    storage = SQLStorage(engine, ManualClock())
    await storage.set_data(key(1), {"a": 1})
    got = await storage.get_data(key(1))
    got["a"] = 2
    assert await storage.get_data(key(1)) == {"a": 1}


async def test_destinies_are_kept_apart(engine: Any) -> None:
    """aiogram-dialog keeps its stacks under destinies of their own, beside the default one."""
    storage = SQLStorage(engine, ManualClock())
    await storage.set_state(key(1), "Filing:text")
    await storage.set_data(key(1, "aiogd_stack"), {"intents": ["x"]})
    assert await storage.get_state(key(1, "aiogd_stack")) is None
    assert await storage.get_data(key(1)) == {}
    assert await storage.get_data(key(1, "aiogd_stack")) == {"intents": ["x"]}
    async with engine.connect() as connection:
        assert await FsmRepo(connection).get("fsm:1:1:aiogd_stack") == (None, {"intents": ["x"]})
