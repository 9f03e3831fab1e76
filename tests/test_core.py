"""What the core keeps for speed, each piece with a test that fails if it stops working: aiogram's synchronous
filters called in place (guarded at start-up), the pinned response classes, the start-up objects frozen out of
the collector; and what the plain engine gives back: a long query never stalls the people talking to the bot."""

from __future__ import annotations

import asyncio
import gc
import weakref
from types import SimpleNamespace
from typing import Any

import aiogram
import pytest
from aiogram.dispatcher.event import handler as aiogram_handler
from aiogram.dispatcher.event.handler import CallableObject
from aiogram.methods import SendMessage
from aiogram.methods.base import Response
from sqlalchemy import text

from bot import cli
from bot.app import create_dispatcher
from bot.config import OpsSection
from bot.filters import InPlaceUnsupported, call_sync_filters_in_place, check_in_place_calls
from bot.session import pin_response_types
from emulator import BotAPIEmulator
from tests.conftest import Harness
from tests.test_resident_e2e import english_resident

# --------------------------------------------------------------------------- aiogram's synchronous filters


async def test_no_filter_is_left_to_a_worker_thread(harness: Harness) -> None:
    assert harness.app is not None
    dp = create_dispatcher(harness.app)
    assert call_sync_filters_in_place(dp) == 0  # create_dispatcher did it; nothing is left
    checked = 0
    for router in dp.chain_tail:
        for observer in router.observers.values():
            for handler in observer.handlers:
                for item in handler.filters or ():
                    assert item.awaitable, (router.name, handler.callback)
                    checked += 1
    assert checked > 30  # every router was walked (the staff screens are dialogs now: fewer plain filters)


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


def test_the_start_up_check_passes_on_this_aiogram() -> None:
    check_in_place_calls()


def test_the_start_up_check_fails_loudly_if_aiogram_stops_calling_filters_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def always_a_thread(self: CallableObject, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.callback, *args, **kwargs)

    monkeypatch.setattr(CallableObject, "call", always_a_thread)
    with pytest.raises(InPlaceUnsupported, match=f"aiogram {aiogram.__version__}"):
        check_in_place_calls()


# --------------------------------------------------------------------------- pinned classes, frozen start-up


def test_the_bot_keeps_aiogram_response_classes_across_garbage_collections() -> None:
    """Stock aiogram builds `Response[T]` in each call and pydantic caches it weakly: a collection frees it and the
    next call builds it again (milliseconds). The bot holds the ones it uses."""

    def response_class() -> weakref.ref[type]:
        return weakref.ref(Response[SendMessage.__returning__])  # as aiogram's check_response makes it

    pin_response_types()
    held = response_class()
    gc.collect()
    assert held() is not None


async def test_start_up_objects_are_frozen_before_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.app

    frozen_when_polling: list[int] = []

    class FakeApp:
        async def close(self) -> None:
            pass

    class FakeSession:
        async def close(self) -> None:
            pass

    class FakeBot:
        session = FakeSession()

    async def create_app(settings: Any) -> FakeApp:
        return FakeApp()

    async def run_polling(app: Any, bot: Any) -> None:
        frozen_when_polling.append(gc.get_freeze_count())

    monkeypatch.setattr(bot.app, "create_app", create_app)
    monkeypatch.setattr(bot.app, "create_bot", lambda settings, **_: FakeBot())
    monkeypatch.setattr(bot.app, "run_polling", run_polling)
    gc.unfreeze()
    try:
        # ops port 0: no ops server
        await cli._run(SimpleNamespace(ops=OpsSection(), bot=SimpleNamespace(mode="polling")))  # type: ignore[arg-type]
    finally:
        gc.unfreeze()
    assert frozen_when_polling and frozen_when_polling[0] > 0


# --------------------------------------------------------------------------- the plain engine


async def test_a_long_query_never_stalls_the_people_talking_to_the_bot(harness: Harness) -> None:
    """A report or a digest holds a connection for a while; everyone else gets another one from the pool."""
    assert harness.app is not None
    user = await english_resident(harness)
    async with harness.app.engine.connect() as report:
        await report.execute(text("SELECT count(*) FROM appeals"))  # it holds its connection meanwhile
        await user.send_text("📝 File an appeal")
        await harness.settle(timeout=5)
        assert user.last_message is not None and "topic" in (user.last_message.text or "")


@pytest.mark.parametrize("bot_mode", ["polling", "webhook"])
async def test_residents_acting_at_once_are_all_answered_and_their_dialogs_survive_a_restart(
    emu: BotAPIEmulator, harness: Harness
) -> None:
    """The production set-up (a batch handled concurrently across chats, bot/polling.py): 8 people act at once;
    nobody is lost or mixed up, and a restart finds every one where they were."""
    people = [emu.user(7000 + i, first_name=f"P{i}", language_code="en") for i in range(8)]
    for person in people:
        await person.send_text("/start")
    await harness.settle()
    for person in people:
        await person.click("✅ English")
    await harness.settle()
    for person in people:
        last = person.last_message
        assert last is not None and "Consent to the processing of personal data" in last.text

    await harness.restart()  # the dialogs were stored: each person is still at the consent step
    for person in people:
        await person.click("✅ I agree")
    await harness.settle()
    for person in people:
        last = person.last_message
        assert last is not None and "your consent is recorded" in last.text


# --------------------------------------------------------------------------- aiogram-dialog's ids


def test_dialogs_opened_within_one_second_get_different_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiogram-dialog 2.6 draws an opened dialog's id from the second and 100 random numbers: a card opened from a
    list in the same second took the list's id now and then, and its buttons were refused (bot/dialog_ids.py)."""
    import time

    from aiogram.fsm.state import State
    from aiogram_dialog.api.entities import stack

    from bot.dialog_ids import library_int_id, unique_int_id, use_unique_dialog_ids

    monkeypatch.setattr(stack, "new_int_id", library_int_id)  # the library's own; restored after the test
    monkeypatch.setattr(time, "time", lambda: 1_796_170_000.5)  # everything within one second
    stock = {stack.new_id() for _ in range(300)}
    assert len(stock) <= 100  # the library's own: at most 100 ids a second

    use_unique_dialog_ids()
    assert stack.new_int_id is unique_int_id
    opened = stack.Stack()
    ids = [opened.push(State("s"), None).id for _ in range(99)] + [stack.Stack().id for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert max(len(i) for i in ids) <= 7  # button data stays short
