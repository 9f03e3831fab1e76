"""Dialog state in the database: written through on every change, so nothing is lost however many people talk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import event, select

from bot.clock import ManualClock
from bot.fsm_storage import SQLStorage, UpdateRows
from storage.db import create_engine
from storage.models import FsmRecord
from storage.repositories.fsm import FsmRepo
from tests.databases import db_url


@pytest.fixture
async def engine(db_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(db_url(db_path))
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


async def test_a_row_with_nothing_left_in_it_is_deleted(engine: Any) -> None:
    """A finished dialog (aiogram-dialog empties its context and stack) leaves nothing of what was typed in it."""
    storage = SQLStorage(engine, ManualClock())
    await storage.set_state(key(1), "Filing:text")
    await storage.set_data(key(1), {"text": "Нет воды"})
    await storage.set_data(key(1, "aiogd:context:abc"), {"dialog_data": {"text": "Нет воды"}})
    await storage.set_data(key(1, "aiogd:context:abc"), {})
    await storage.set_state(key(1), None)
    async with engine.connect() as connection:
        assert await FsmRepo(connection).person("fsm:1:1") == {"fsm:1:1": (None, {"text": "Нет воды"})}
    await storage.set_data(key(1), {})
    async with engine.connect() as connection:
        assert await FsmRepo(connection).person("fsm:1:1") == {}


async def test_within_one_update_a_person_is_read_once_and_unchanged_writes_are_skipped(engine: Any) -> None:
    storage = SQLStorage(engine, ManualClock())
    await storage.set_state(key(1), "Filing:text")
    await storage.set_data(key(1, "aiogd:stack"), {"intents": ["a"]})
    await storage.set_data(key(11), {"someone": "else"})  # fsm:11:11: another person, not read with fsm:1:1
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)

    async def update(event_: Any, data: dict[str, Any]) -> None:
        assert await storage.get_state(key(1)) == "Filing:text"
        assert await storage.get_data(key(1, "aiogd:stack")) == {"intents": ["a"]}
        assert await storage.get_data(key(1, "aiogd:context:x")) == {}
        assert await storage.get_data(key(1)) == {}
        await storage.set_data(key(1, "aiogd:stack"), {"intents": ["a"]})  # unchanged: not written
        await storage.set_data(key(1, "aiogd:context:x"), {})  # nothing, as before: not written
        await storage.set_state(key(1), "Filing:text")
        await storage.set_data(key(1), {"text": "x"})  # a change: written at once
        assert await storage.get_data(key(1)) == {"text": "x"}

    await UpdateRows()(update, object(), {})  # type: ignore[arg-type]
    event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 2  # one read of the person, one write
    other = SQLStorage(engine, ManualClock())
    assert await other.get_data(key(1)) == {"text": "x"}  # written through
    assert await other.get_data(key(11)) == {"someone": "else"}


async def test_a_task_started_during_an_update_reads_the_database_not_the_updates_rows(engine: Any) -> None:
    """An album's summary runs as a task started by the update, later: by then the rows may have changed."""
    import asyncio

    storage = SQLStorage(engine, ManualClock())
    await storage.set_data(key(1), {"step": 1})
    later: list[asyncio.Task[dict[str, Any]]] = []
    gate = asyncio.Event()

    async def summary() -> dict[str, Any]:
        await gate.wait()
        return await storage.get_data(key(1))

    async def update(event_: Any, data: dict[str, Any]) -> None:
        assert await storage.get_data(key(1)) == {"step": 1}
        later.append(asyncio.create_task(summary()))

    await UpdateRows()(update, object(), {})  # type: ignore[arg-type]
    await SQLStorage(engine, ManualClock()).set_data(key(1), {"step": 2})  # another update, meanwhile
    gate.set()
    assert await later[0] == {"step": 2}
