"""Dialog state in the database: written through on every change, so nothing is lost however many people talk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey

from bot.clock import ManualClock
from bot.fsm_storage import SQLStorage
from storage.db import create_engine, create_sessionmaker


@pytest.fixture
async def sessionmaker(db_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{db_path}")
    yield create_sessionmaker(engine)
    await engine.dispose()


def key(user: int, destiny: str = "default") -> StorageKey:
    return StorageKey(bot_id=1, chat_id=user, user_id=user, destiny=destiny)


async def test_a_state_survives_other_people_reading_theirs(sessionmaker: Any) -> None:
    """The write-back cache cleared itself, unwritten states included, once it held `max_cached` people."""
    storage = SQLStorage(sessionmaker, ManualClock(), max_cached=2)
    await storage.set_state(key(1), "Filing:description")
    await storage.get_state(key(2))
    await storage.get_state(key(3))
    await storage.flush()
    fresh = SQLStorage(sessionmaker, ManualClock())
    assert await fresh.get_state(key(1)) == "Filing:description"
