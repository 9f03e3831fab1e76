"""Paced polling: under load getUpdates waits for the updates being handled and fetches the ones that arrived
meanwhile in one call; an idle bot polls at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

from bot.load import UpdateLoad, pace_polling
from bot.session import JSONSession
from emulator import BotAPIEmulator
from tests.conftest import TOKEN, Harness

pytestmark = pytest.mark.asyncio


async def handle(load: UpdateLoad, work: asyncio.Future[None] | float) -> None:
    """One update passing through the gauge; it is handled until `work` is done (or for `work` seconds)."""

    async def handler(event: Any, data: dict[str, Any]) -> None:
        if isinstance(work, float):
            await asyncio.sleep(work)
        else:
            await work

    await load(handler, object(), {})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the gauge


async def test_quiet_returns_at_once_when_idle_and_when_the_last_update_ends() -> None:
    load = UpdateLoad()
    await asyncio.wait_for(load.quiet(30), 1)  # idle: no wait at all

    first, second = asyncio.get_running_loop().create_future(), asyncio.get_running_loop().create_future()
    updates = [asyncio.create_task(handle(load, first)), asyncio.create_task(handle(load, second))]
    await asyncio.sleep(0)
    assert load.active == 2
    quiet = asyncio.create_task(load.quiet(30))
    first.set_result(None)
    await asyncio.sleep(0.01)
    assert load.active == 1 and not quiet.done()  # one update still being handled
    second.set_result(None)
    await asyncio.wait_for(quiet, 1)
    await asyncio.gather(*updates)
    assert load.active == 0


async def test_quiet_gives_up_after_its_limit_and_a_failed_update_still_counts_down() -> None:
    load = UpdateLoad()
    busy = asyncio.get_running_loop().create_future()
    update = asyncio.create_task(handle(load, busy))
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    await load.quiet(0.05)
    assert 0.04 <= asyncio.get_running_loop().time() - started < 1
    busy.set_exception(RuntimeError("handler failed"))
    with pytest.raises(RuntimeError):
        await update
    assert load.active == 0


# --------------------------------------------------------------------------- paced polling


async def poll_with_slow_handler(emu: BotAPIEmulator, linger: float) -> tuple[list[int], int]:
    """A bot whose handler takes 150 ms gets 1 text, then 5 more while it handles the first.

    Returns the number of updates each getUpdates call brought, and the texts answered."""
    bot = Bot(TOKEN, session=JSONSession(api=TelegramAPIServer.from_base(emu.base_url)))
    load = UpdateLoad()
    dp = Dispatcher()
    dp.update.outer_middleware(load)
    answered: list[str] = []

    @dp.message()
    async def slow(message: Message) -> None:
        await asyncio.sleep(0.15)
        answered.append(message.text or "")
        await message.answer("ok")

    assert pace_polling(bot, load, linger) is (linger > 0)
    polling = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False))
    try:
        user = emu.user(5001, first_name="Test")
        await user.send_text("first")
        for _ in range(200):  # the first update is being handled
            if load.active:
                break
            await asyncio.sleep(0.005)
        for i in range(5):
            await user.send_text(f"next {i}")
            await asyncio.sleep(0.01)
        await emu.wait_confirmed(timeout=5)
        for _ in range(200):
            if len(answered) == 6:
                break
            await asyncio.sleep(0.01)
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)
    batches = [len(call.result) for call in emu.calls("getUpdates", ok=True) if call.result]
    return batches, len(answered)


async def test_under_load_the_next_poll_waits_and_brings_the_updates_in_one_batch(emu: BotAPIEmulator) -> None:
    batches, answered = await poll_with_slow_handler(emu, linger=1.0)
    assert answered == 6
    assert batches == [1, 5]  # the 5 texts sent while the first was handled came in one call


async def test_without_pacing_each_update_comes_in_its_own_poll(emu: BotAPIEmulator) -> None:
    batches, answered = await poll_with_slow_handler(emu, linger=0)
    assert answered == 6
    assert len(batches) >= 5  # the long poll answers each text as it arrives


# --------------------------------------------------------------------------- the real bot, handling updates at once


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"poll_linger_ms": 200}}


async def test_residents_acting_at_once_are_all_answered_and_their_dialogs_survive_a_restart(
    emu: BotAPIEmulator, harness: Harness
) -> None:
    """The production set-up (each update in its own task, paced polling): 8 people act at once; nobody is lost
    or mixed up, fewer polls than updates bring them, and a restart finds every one where they were."""
    await harness.stop()
    harness.handle_as_tasks = True
    await harness.start()
    assert harness.bot is not None and isinstance(harness.bot.session, JSONSession)
    assert harness.bot.session.before_poll is not None  # paced: the app wired it at start-up
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
    batches = [len(call.result) for call in emu.calls("getUpdates", ok=True) if call.result]
    assert sum(batches) == 24 and len(batches) < 24


async def test_a_linger_of_zero_leaves_polling_unpaced(emu: BotAPIEmulator, harness: Harness) -> None:
    await harness.stop()
    harness.settings = harness.settings.model_copy(
        update={"bot": harness.settings.bot.model_copy(update={"poll_linger_ms": 0})}
    )
    await harness.start()
    assert harness.bot is not None and isinstance(harness.bot.session, JSONSession)
    assert harness.bot.session.before_poll is None
