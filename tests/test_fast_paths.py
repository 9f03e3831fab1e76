"""The shortcuts taken for speed keep what they replace: the JSON Bot API session, aiogram's synchronous filters
called in place, aiosqlite calls made without a thread hand-off, and the dialog state read and written in place
on SQLite."""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import weakref
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.event import handler as aiogram_handler
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import SendMessage
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import create_dispatcher, inline_sync_filters
from bot.clock import ManualClock
from bot.fsm_storage import SQLStorage
from bot.session import JSONSession
from emulator import BotAPIEmulator
from storage.db import create_engine, create_sessionmaker
from storage.inline_fsm import InlineFsm
from storage.repositories.fsm import UPSERT, FsmRepo
from tests.conftest import Harness
from tests.test_resident_e2e import english_resident

TOKEN = "123456:TEST-TOKEN"
DISTRICTS = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text=f"Район №{i}", callback_data=f"d:{i}")] for i in range(17)]
)


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(token=TOKEN, bot_username="tsur_test_bot") as emulator:
        yield emulator


@pytest.fixture
async def json_bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=JSONSession(api=TelegramAPIServer.from_base(emu.base_url)))
    yield bot
    await bot.session.close()


# --------------------------------------------------------------------------- the JSON session


async def test_a_call_goes_as_one_json_document_with_the_text_as_written(json_bot: Bot) -> None:
    session = json_bot.session
    assert isinstance(session, JSONSession)
    body = session.build_json(json_bot, SendMessage(chat_id=1001, text="Нет воды <b>3 дня</b>", reply_markup=DISTRICTS))
    assert body is not None
    assert "Нет воды".encode() in body  # not \u-escaped, not %-encoded
    payload = json.loads(body)
    assert payload["chat_id"] == 1001 and payload["text"] == "Нет воды <b>3 дня</b>"
    assert payload["reply_markup"]["inline_keyboard"][16] == [{"text": "Район №16", "callback_data": "d:16"}]
    assert "parse_mode" not in payload  # unset default: not sent, as aiogram's own session does


async def test_the_person_sees_the_message_and_keyboard_and_the_bot_gets_no_keyboard_back(
    emu: BotAPIEmulator, json_bot: Bot
) -> None:
    user = emu.user(1001, first_name="Ivan")
    await user.send_command("start")
    sent = await json_bot.send_message(1001, "Выберите район: <b>жирный</b>", parse_mode="HTML", reply_markup=DISTRICTS)
    assert sent.text == "Выберите район: жирный" and sent.message_id > 0
    assert sent.reply_markup is None  # dropped from the answer, see bot.session._loads
    shown = user.last_message
    assert shown is not None and shown.text == "Выберите район: жирный"
    assert shown.buttons == [f"Район №{i}" for i in range(17)]
    edited = await json_bot.edit_message_text("Район выбран", chat_id=1001, message_id=sent.message_id)
    assert not isinstance(edited, bool) and edited.text == "Район выбран"


async def test_a_pressed_button_still_comes_with_its_keyboard(emu: BotAPIEmulator, json_bot: Bot) -> None:
    user = emu.user(1001, first_name="Ivan")
    await user.send_command("start")
    await json_bot.send_message(1001, "Выберите район", reply_markup=DISTRICTS)
    updates = await json_bot.get_updates()
    await json_bot.get_updates(offset=updates[-1].update_id + 1)
    await user.click("Район №3")
    (update,) = await json_bot.get_updates(offset=updates[-1].update_id + 1)
    assert update.callback_query is not None and update.callback_query.data == "d:3"
    message = update.callback_query.message
    assert message is not None and message.reply_markup is not None
    assert [[(b.text, b.callback_data) for b in row] for row in message.reply_markup.inline_keyboard] == [
        [(f"Район №{i}", f"d:{i}")] for i in range(17)
    ]


async def test_an_upload_still_goes_as_a_form(emu: BotAPIEmulator, json_bot: Bot) -> None:
    user = emu.user(1001, first_name="Ivan")
    await user.send_command("start")
    sent = await json_bot.send_document(1001, BufferedInputFile("отчёт".encode(), filename="report.txt"))
    assert sent.document is not None
    record = emu.state.files[sent.document.file_id]
    assert record.content == "отчёт".encode()


async def test_telegram_errors_are_raised_as_aiogram_raises_them(emu: BotAPIEmulator, json_bot: Bot) -> None:
    user = emu.user(1001, first_name="Ivan")
    await user.send_command("start")
    with pytest.raises(TelegramBadRequest, match="too long"):
        await json_bot.send_message(1001, "я" * 4097)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await json_bot.send_message(424242, "кому?")


# --------------------------------------------------------------------------- aiogram's synchronous filters


async def test_no_filter_is_left_to_a_worker_thread(harness: Harness) -> None:
    dp = create_dispatcher(harness.app)
    assert inline_sync_filters(dp) == 0  # create_dispatcher did it; nothing is left
    checked = 0
    for router in dp.chain_tail:
        for observer in router.observers.values():
            for handler in (observer._handler, *observer.handlers):
                for item in handler.filters or ():
                    assert item.awaitable, (router.name, handler.callback)
                    checked += 1
    assert checked > 50


async def test_a_dialog_works_with_worker_threads_forbidden(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a filter or handler was sent to a worker thread")

    monkeypatch.setattr(aiogram_handler.asyncio, "to_thread", forbidden)
    user = await english_resident(harness)
    await user.send_text("some words the bot does not expect")  # F.text filters, then the fallback
    await harness.settle()
    assert user.last_message is not None and "I did not understand that" in (user.last_message.text or "")
    await user.send_text("📝 File an appeal")
    await harness.settle()
    assert user.last_message is not None and "topic" in (user.last_message.text or "")


# --------------------------------------------------------------------------- aiosqlite without hand-offs


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls that went to aiosqlite's thread, by name."""
    counted: Counter[str] = Counter()
    original = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        counted[getattr(fn, "__name__", "?")] += 1
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return counted


async def test_a_write_is_two_hand_offs_and_transactions_still_hold(db_path: Path, hand_offs: Counter[str]) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{db_path}")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select 1"))  # the pool's first connection: set-up calls
        hand_offs.clear()
        row = {
            "key": "k",
            "state": "Filing:description",
            "data": {"draft": "x"},
            "updated_at": datetime(2026, 11, 26, tzinfo=UTC),
        }
        async with engine.begin() as conn:
            await conn.execute(UPSERT, row)
        # The statement and the commit; creating and closing the cursor and the pool's rollback are in place.
        assert hand_offs == Counter({"execute": 1, "commit": 1})

        async with engine.connect() as conn:  # not committed: gone
            await conn.execute(UPSERT, {**row, "key": "rolled-back"})
            await conn.rollback()
        async with engine.connect() as conn:
            keys = (await conn.execute(text("select key from fsm_state order by key"))).scalars().all()
        assert keys == ["k"]

        async def write(i: int) -> None:
            async with engine.begin() as conn:
                await conn.execute(UPSERT, {**row, "key": f"c{i}"})

        await asyncio.gather(*(write(i) for i in range(20)))  # sessions queue for the one connection
        async with engine.connect() as conn:
            count = (await conn.execute(text("select count(*) from fsm_state where key like 'c%'"))).scalar_one()
        assert count == 20
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- dialog state in place (SQLite)


@pytest.fixture
async def fsm_engine(db_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{db_path}")
    yield engine
    await engine.dispose()


def fsm_key(user: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=user, user_id=user)


async def test_state_written_in_place_reads_the_same_through_the_engine_and_back(fsm_engine: Any) -> None:
    inline = InlineFsm.open(fsm_engine)
    assert inline is not None
    sessionmaker = create_sessionmaker(fsm_engine)
    clock = ManualClock(datetime(2026, 11, 26, 9, 30, tzinfo=UTC))
    storage = SQLStorage(sessionmaker, clock, inline=inline)
    data = {"draft": "ab12", "text": "Нет воды <b>3 дня</b>", "attachments": [["photo", "AgAD", "u1"]], "n": 1}
    await storage.set_state(fsm_key(1), "Filing:district")
    await storage.set_data(fsm_key(1), data)
    await storage.flush(fsm_key(1))
    async with sessionmaker() as session:
        record = await FsmRepo(session).get("fsm:1:1")
    assert record is not None
    assert (record.state, record.data, record.updated_at) == ("Filing:district", data, clock.now())

    async with sessionmaker() as session:  # written by the engine, read in place by a fresh storage
        await FsmRepo(session).upsert("fsm:2:2", "Filing:kind", {"draft": "cd34"}, clock.now())
        await session.commit()
    fresh = SQLStorage(sessionmaker, clock, inline=InlineFsm.open(fsm_engine))
    assert await fresh.get_state(fsm_key(2)) == "Filing:kind"
    assert await fresh.get_data(fsm_key(2)) == {"draft": "cd34"}
    assert await fresh.get_data(fsm_key(1)) == data
    assert await fresh.get_state(fsm_key(3)) is None
    await storage.close()
    await fresh.close()


async def test_while_another_connection_writes_the_state_goes_through_the_engine_without_blocking(
    fsm_engine: Any, db_path: Path
) -> None:
    sessionmaker = create_sessionmaker(fsm_engine)
    storage = SQLStorage(sessionmaker, ManualClock(), inline=InlineFsm.open(fsm_engine))
    other = await aiosqlite.connect(db_path)
    await other.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's write lock
    await other.execute("UPDATE counters SET value = value")
    await storage.set_state(fsm_key(1), "Filing:description")
    flush = asyncio.create_task(storage.flush(fsm_key(1)))
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(20):  # the event loop keeps running: nothing waits for the lock on its thread
        await asyncio.sleep(0.005)
    assert loop.time() - started < 1
    assert not flush.done()  # queued behind the lock, in the engine's connection
    await other.commit()
    await other.close()
    await asyncio.wait_for(flush, 35)
    async with sessionmaker() as session:
        record = await FsmRepo(session).get("fsm:1:1")
    assert record is not None and record.state == "Filing:description"
    await storage.close()


async def test_every_so_often_the_engine_writes_so_the_wal_is_checkpointed(
    fsm_engine: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine_writes = 0
    original = FsmRepo.upsert_many

    async def counting(self: FsmRepo, rows: list[dict[str, Any]]) -> None:
        nonlocal engine_writes
        engine_writes += 1
        await original(self, rows)

    monkeypatch.setattr(FsmRepo, "upsert_many", counting)
    monkeypatch.setattr(InlineFsm, "ENGINE_EVERY", 50)
    storage = SQLStorage(create_sessionmaker(fsm_engine), ManualClock(), inline=InlineFsm.open(fsm_engine))
    for i in range(2000):
        await storage.set_data(fsm_key(i % 50), {"draft": "x" * 40, "step": i})
        await storage.flush(fsm_key(i % 50))
    assert engine_writes == 40
    # The engine's commits checkpoint once the WAL passes 1,000 pages (4 MB), and it starts over: it stays near
    # 4.1 MB. With every write made in place (nothing checkpoints them) these 2,000 commits leave 8.5 MB.
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.stat().st_size < 5 * 1024 * 1024
    await storage.close()


async def test_no_in_place_path_off_sqlite_files_in_wal_mode(tmp_path: Path) -> None:
    memory = create_async_engine("sqlite+aiosqlite://")
    assert InlineFsm.open(memory) is None
    await memory.dispose()
    plain = tmp_path / "plain.db"
    with closing(sqlite3.connect(plain)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    engine = create_async_engine(f"sqlite+aiosqlite:///{plain}")  # never connected: still a rollback journal
    assert InlineFsm.open(engine) is None
    await engine.dispose()
    missing = tmp_path / "not yet.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{missing}")
    assert InlineFsm.open(engine) is None
    assert not missing.exists()  # no empty file left behind for the engine to find
    await engine.dispose()


def test_the_bot_keeps_aiogram_response_classes_across_garbage_collections() -> None:
    """Stock aiogram builds `Response[T]` in each call and pydantic caches it weakly: a collection frees it and the
    next call builds it again (milliseconds). The bot holds the ones it uses."""
    from aiogram.methods import SendMessage
    from aiogram.methods.base import Response

    from bot.session import pin_response_types

    def response_class() -> weakref.ref[type]:
        return weakref.ref(Response[SendMessage.__returning__])  # as aiogram's check_response makes it

    pin_response_types()
    held = response_class()
    gc.collect()
    assert held() is not None
