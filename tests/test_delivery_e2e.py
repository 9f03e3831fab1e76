"""Every update handled exactly once, even across a crash: long polling confirms a batch only after handling it,
the webhook answers 200 only after handling, and a redelivered update (same update_id) changes nothing twice."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.scheduler import create_scheduler
from bot.services import Services
from emulator import BotAPIEmulator, EmulatedUser
from storage.models import Appeal, HandledUpdate, InboxUpdate
from tests.conftest import Harness, make_settings
from tests.test_resident_e2e import english_resident, fill_until_preview

HELP = "Regional Management Center (RMC) works"


def help_replies(user: EmulatedUser) -> int:
    return sum(1 for m in user.messages if HELP in (m.text or ""))


async def until(condition, what: str, timeout: float = 5.0) -> None:
    """Wait (on real events, not a fixed sleep) until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.005)


def calls_in_flight(emu: BotAPIEmulator, method: str, fault: str) -> int:
    return sum(1 for c in emu.calls(method) if c.fault == fault)


# --------------------------------------------------------------------------- long polling


async def test_an_update_is_confirmed_to_telegram_only_once_it_is_in_the_inbox(
    emu: BotAPIEmulator, harness: Harness
) -> None:
    user = await english_resident(harness)
    emu.inject("sendMessage", kind="delay", delay=0.3, chat_id=user.id)
    await user.send_text("/help")
    await until(lambda: calls_in_flight(emu, "sendMessage", "delay") == 1, "the reply is on its way")
    update = emu.last_update(user.id)
    assert update is not None
    # Being handled: if Telegram already heard it was received, the database has it.
    confirmed = emu.updates_pending() == 0
    inbox = await harness.rows(InboxUpdate)
    assert [row.update_id for row in inbox] == [update["update_id"]] or not confirmed
    await harness.settle()
    assert help_replies(user) == 1 and emu.updates_pending() == 0
    assert await harness.rows(InboxUpdate) == []  # handled: out of the inbox, into the ledger
    assert await harness.rows(HandledUpdate, HandledUpdate.update_id == update["update_id"])


async def test_a_crash_while_handling_loses_no_update(emu: BotAPIEmulator, harness: Harness) -> None:
    """The process dies while the reply is on its way: the restarted bot answers the update (from the inbox, or
    from Telegram if it was not confirmed yet)."""
    user = await english_resident(harness)
    emu.inject("sendMessage", kind="delay", delay=30, chat_id=user.id)
    await user.send_text("/help")
    await until(lambda: calls_in_flight(emu, "sendMessage", "delay") == 1, "the reply is on its way")
    await harness.kill()
    emu.clear_faults()
    assert help_replies(user) == 0

    await harness.start()
    await harness.settle()
    assert help_replies(user) == 1 and emu.updates_pending() == 0
    assert await harness.rows(InboxUpdate) == []


async def test_a_crash_after_the_confirmation_leaves_the_update_in_the_inbox(
    emu: BotAPIEmulator, harness: Harness
) -> None:
    """Telegram was told (the next getUpdates went out) and the process dies before the reply: Telegram will not
    give the update again, and the inbox is what saves it."""
    user = await english_resident(harness)
    emu.inject("sendMessage", kind="delay", delay=30, chat_id=user.id)
    await user.send_text("/help")
    await until(lambda: calls_in_flight(emu, "sendMessage", "delay") == 1 and emu.updates_pending() == 0, "confirmed")
    await harness.kill()
    emu.clear_faults()
    assert emu.updates_pending() == 0 and help_replies(user) == 0

    await harness.start()
    await harness.settle()
    assert help_replies(user) == 1
    assert await harness.rows(InboxUpdate) == []


async def test_an_update_handled_but_not_confirmed_is_not_handled_again(emu: BotAPIEmulator, harness: Harness) -> None:
    """The process dies after handling an update, before the getUpdates that confirms it: Telegram gives the same
    update (same update_id) to the restarted bot, which skips it (the ledger)."""
    user = await english_resident(harness)
    await harness.settle()
    # The long poll waiting now is past its fault check: the next one, carrying the confirming offset, hangs.
    emu.inject("getUpdates", kind="delay", delay=30)
    await user.send_text("/help")
    await until(lambda: help_replies(user) == 1 and calls_in_flight(emu, "getUpdates", "delay") == 1, "handled")
    update = emu.last_update(user.id)
    assert update is not None
    mine = HandledUpdate.update_id == update["update_id"]
    while not await harness.rows(HandledUpdate, mine):  # its handling ended (the ledger has it)
        await asyncio.sleep(0.005)
    await harness.kill()
    assert emu.updates_pending() == 1  # Telegram never heard that it was received

    await harness.start()
    await harness.settle()
    assert emu.updates_pending() == 0
    assert help_replies(user) == 1  # not answered twice
    assert [r.update_id for r in await harness.rows(HandledUpdate, HandledUpdate.update_id == update["update_id"])]
    assert await harness.rows(InboxUpdate) == []


async def test_a_clean_stop_finishes_the_updates_in_hand_and_confirms_them(emu: BotAPIEmulator, harness: Harness) -> None:
    user = await english_resident(harness)
    emu.inject("sendMessage", kind="delay", delay=0.3, chat_id=user.id)
    await user.send_text("/help")
    await until(lambda: calls_in_flight(emu, "sendMessage", "delay") == 1, "the reply is on its way")
    assert harness.poller is not None
    harness.poller.stop()  # SIGTERM in production
    assert harness._task is not None
    await asyncio.wait_for(harness._task, 10)  # the update in hand was finished before the loop ended
    assert help_replies(user) == 1 and emu.updates_pending() == 0
    assert await harness.rows(InboxUpdate) == []
    await harness.restart()
    await harness.settle()
    assert help_replies(user) == 1


async def test_chats_are_handled_side_by_side_and_each_chat_in_order(emu: BotAPIEmulator, harness: Harness) -> None:
    """One batch: a slow reply in one chat holds up neither the other chat nor the order inside its own."""
    slow = await english_resident(harness, 1001)
    fast = await english_resident(harness, 1002)
    emu.inject("sendMessage", kind="delay", delay=0.5, chat_id=slow.id)
    await slow.send_text("/privacy")  # a batch of its own, being handled while the next updates queue up
    await until(lambda: calls_in_flight(emu, "sendMessage", "delay") == 1, "the first batch is being handled")
    emu.inject("sendMessage", kind="delay", delay=0.5, chat_id=slow.id)
    await slow.send_text("/privacy")
    await slow.send_text("/help")
    await fast.send_text("/help")
    await until(lambda: help_replies(fast) == 1, "the other chat is answered while the slow reply waits", 10)
    assert help_replies(slow) == 0
    await harness.settle()
    texts = [m.text or "" for m in slow.messages[-3:]]
    assert "Your personal data" in texts[0] and "Your personal data" in texts[1] and HELP in texts[2]


# --------------------------------------------------------------------------- webhook


def webhook_url(harness: Harness) -> str:
    from bot.webhook import bound_port

    return f"http://127.0.0.1:{bound_port(harness.runner)}{harness.settings.webhook.path}"


@pytest.mark.parametrize("bot_mode", ["webhook"])
async def test_the_webhook_answers_only_after_handling(emu: BotAPIEmulator, harness: Harness) -> None:
    user = await english_resident(harness)
    info = await harness.bot.get_webhook_info()  # type: ignore[union-attr]
    assert info.url == webhook_url(harness) and info.max_connections == 40
    emu.inject("sendMessage", kind="delay", delay=0.3, chat_id=user.id)
    await user.send_text("/help")
    await until(lambda: calls_in_flight(emu, "sendMessage", "delay") == 1, "the reply is on its way")
    assert emu.updates_pending() == 1  # no 200 yet: Telegram would deliver it again after a crash
    await harness.settle()
    assert help_replies(user) == 1 and emu.updates_pending() == 0


@pytest.mark.parametrize("bot_mode", ["webhook"])
async def test_a_confirm_delivered_twice_files_one_appeal_and_says_nothing_twice(
    emu: BotAPIEmulator, harness: Harness
) -> None:
    """Telegram posts the Confirm press again (its first 200 was lost): same update_id, nothing changes."""
    user = await english_resident(harness)
    await fill_until_preview(harness, user)
    await user.click("✅ Confirm")
    await harness.settle()
    assert "Your appeal is registered" in user.last_message.text
    press = emu.last_update(user.id)
    assert press is not None and "callback_query" in press
    seen = (len(user.messages), len(user.callback_answers))

    secret = {"X-Telegram-Bot-Api-Secret-Token": harness.settings.webhook.secret}
    async with aiohttp.ClientSession() as http, http.post(webhook_url(harness), json=press, headers=secret) as response:
        assert response.status == 200
    await harness.settle()
    assert (len(user.messages), len(user.callback_answers)) == seen
    async with await harness.session() as session:
        assert (await session.execute(select(func.count()).select_from(Appeal))).scalar_one() == 1


@pytest.mark.parametrize("bot_mode", ["webhook"])
async def test_a_request_without_the_secret_gets_401_and_is_logged_without_its_body(
    emu: BotAPIEmulator, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    user = await english_resident(harness)
    forged = {
        "update_id": 999_999,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": user.id, "type": "private"},
            "from": {"id": user.id, "is_bot": False, "first_name": "X"},
            "text": "/help secret-words-of-the-body",
        },
    }
    before = len(user.messages)
    with caplog.at_level(logging.INFO):
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(webhook_url(harness), json=forged, headers=headers) as response:
                    assert response.status == 401
    await harness.settle()
    assert len(user.messages) == before
    assert not await harness.rows(HandledUpdate, HandledUpdate.update_id == 999_999)
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2
    assert all("secret-words" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bot_mode", ["webhook"])
async def test_getupdates_is_refused_while_the_webhook_is_set(emu: BotAPIEmulator, harness: Harness) -> None:
    from aiogram.exceptions import TelegramConflictError

    bot = emu.create_bot()
    try:
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates(timeout=0)
    finally:
        await bot.session.close()


# --------------------------------------------------------------------------- the ledger


async def test_the_ledger_skips_a_known_update_and_forgets_it_after_the_retention(
    services: Services, clock: ManualClock
) -> None:
    ledger = services.updates
    assert not await ledger.handled(7)
    await ledger.record(7)
    await ledger.record(7)  # a second instance finishing the same update: no error
    assert await ledger.handled(7)
    clock.advance(timedelta(days=ledger.keep_days) - timedelta(minutes=1))
    assert await ledger.prune() == 0 and await ledger.handled(7)
    clock.advance(timedelta(minutes=2))
    assert await ledger.prune() == 1 and not await ledger.handled(7)


async def test_the_scheduler_prunes_the_ledger(services: Services, db_path: Path) -> None:
    settings = make_settings(db_path)
    scheduler = create_scheduler(settings, services.reminders, updates=services.updates)
    assert scheduler.get_job("prune_updates") is not None
