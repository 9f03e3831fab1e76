"""Floods against Telegram's per-chat limit, with the real limits of config.example.toml (issue 10, defect 6).

Telegram lets a bot send about one message a second to a chat and tolerates short bursts; the emulator plays that
limit as a token bucket of TELEGRAM_BURST messages on the test's manual clock, the one the bot's throttle reads. A
flood gets one warning and then silence, with no 429 on the way; a direct reply that still meets a 429 is sent
again after `retry_after` (on the injected clock: the test does not sleep), and no handler error is logged for it.
"""

from __future__ import annotations

import logging
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.exceptions import TelegramRetryAfter

from bot.clock import ManualClock
from bot.config import ThrottleSection
from bot.session import ReplyRetryMiddleware
from emulator import BotAPIEmulator, EmulatedUser
from storage.models import Outbox
from tests.conftest import Harness
from tests.test_reachability import route, world
from tests.test_resident_e2e import begin_appeal, english_resident

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = tomllib.loads((ROOT / "config.example.toml").read_text())["throttle"]
TELEGRAM_RATE = 1.0  # messages a second to one chat
TELEGRAM_BURST = 5  # messages one chat takes at once


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"throttle": SHIPPED}


def telegram_limits(harness: Harness) -> None:
    harness.emu.rate_limit(
        per_chat_per_second=TELEGRAM_RATE,
        per_chat_burst=TELEGRAM_BURST,
        clock=lambda: harness.clock.now().timestamp(),
    )


def warnings_to(user: EmulatedUser) -> list[str]:
    return [m.text for m in user.messages if "Too many messages" in (m.text or "")]


def chat_calls(harness: Harness, user: EmulatedUser) -> list[Any]:
    return [c for c in harness.emu.calls("sendMessage") if c.params.get("chat_id") == user.id]


def refused(harness: Harness) -> list[Any]:
    """The calls Telegram's flood control refused."""
    return [c for c in harness.emu.calls(ok=False) if c.error_code == 429]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_shipped_limits_are_the_defaults_and_stay_under_telegrams() -> None:
    assert ThrottleSection(**SHIPPED) == ThrottleSection()
    # Sustained: no faster than Telegram lets the bot answer; at once: the replies and the one warning fit a burst.
    assert SHIPPED["rate"] <= TELEGRAM_RATE
    assert SHIPPED["burst"] + 1 <= TELEGRAM_BURST


async def test_a_flood_gets_one_warning_then_silence(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    user = await english_resident(harness)
    harness.clock.advance(seconds=60)  # the onboarding's messages are long forgotten by Telegram's limit
    telegram_limits(harness)
    before = len(user.messages)

    for i in range(50):
        await user.send_text(f"spam {i}")
    await harness.settle()

    replies = user.messages[before:]
    assert len(warnings_to(user)) == 1
    assert replies[-1].text == warnings_to(user)[0]  # the warning, then silence
    assert len(replies) == SHIPPED["burst"] + 1
    assert not refused(harness), "no call met Telegram's flood control"
    assert not errors(caplog)

    # More of the flood a little later: still silence (one warning per WARN_EVERY), never an error.
    harness.clock.advance(seconds=0.5)
    for i in range(10):
        await user.send_text(f"more spam {i}")
    await harness.settle()
    assert len(user.messages) == before + len(replies)
    # Once the flood is over, the bot answers again (the throttle reads the injected clock).
    harness.clock.advance(seconds=2)
    await user.send_text("/help")
    await harness.settle()
    assert len(user.messages) == before + len(replies) + 1
    assert "/new" in user.last_message.text
    assert not refused(harness)
    assert not errors(caplog)


async def test_a_reply_that_meets_flood_control_is_sent_after_retry_after(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    user = await english_resident(harness)
    fault = harness.emu.inject("sendMessage", kind="429", count=1, retry_after=3, chat_id=user.id)
    before = len(user.messages)
    start = harness.clock.now()

    await user.send_text("/help")
    await harness.settle()

    assert fault.hits == 1
    assert len(user.messages) == before + 1 and "/new" in user.last_message.text
    calls = chat_calls(harness, user)[-2:]
    assert [(c.ok, c.fault) for c in calls] == [(False, "429"), (True, None)]
    # The wait went through the injected clock: the test did not sleep three seconds.
    assert (harness.clock.now() - start).total_seconds() >= 3
    assert not errors(caplog)


async def test_a_long_flood_ban_sends_the_reply_through_the_outbox(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A reply is not held for minutes: above the middleware's longest wait the reply is queued in the outbox for
    that chat, due when the ban is over, with one warning and no error."""
    user = await english_resident(harness)
    harness.emu.inject("sendMessage", kind="429", count=1, retry_after=600, chat_id=user.id)
    before, calls_before = len(user.messages), len(chat_calls(harness, user))
    start = harness.clock.now()

    with caplog.at_level(logging.WARNING):
        await user.send_text("/help")
        await harness.settle()

    assert len(user.messages) == before
    assert (harness.clock.now() - start).total_seconds() < 600
    # One refused call: no retry, and no "Something went wrong" that would meet the same ban.
    assert [c.fault for c in chat_calls(harness, user)[calls_before:]] == ["429"]
    [row] = [o for o in await harness.rows(Outbox) if o.template == "reply"]
    assert row.status == "pending" and "/new" in row.params["text"]
    assert (row.next_attempt_at.replace(tzinfo=start.tzinfo) - start).total_seconds() >= 600
    assert not errors(caplog)
    assert any("through the outbox" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)

    harness.clock.advance(seconds=601)
    await harness.settle()
    assert len(user.messages) == before + 1 and "/new" in user.last_message.text


async def test_an_album_of_ten_is_never_throttled(harness: Harness) -> None:
    user = await english_resident(harness)
    telegram_limits(harness)
    harness.clock.advance(seconds=10)  # people read before they press
    await begin_appeal(harness, user, "Roads")
    await user.send_text("A big hole in the middle of the road")
    await harness.settle()
    harness.clock.advance(seconds=10)  # picking thirty photos takes a while; Telegram sends them as 3 albums at once
    for _ in range(3):
        await user.send_album(["photo"] * 10)
    await harness.settle()
    assert "Files attached: 10 of 10" in user.last_message.text
    assert not warnings_to(user)
    assert not refused(harness)


async def test_the_retry_gives_up_after_its_attempts(emu: BotAPIEmulator, clock: ManualClock) -> None:
    """ReplyRetryMiddleware on the bot's session, without the rest of the bot: three 429 in a row are not waited out
    a third time."""
    bot = emu.create_bot()
    bot.session.middleware(ReplyRetryMiddleware(clock, max_wait=10, flood_attempts=3))
    try:
        emu.user(1001).open_chat()
        emu.inject("sendMessage", kind="429", count=3, retry_after=2, chat_id=1001)
        start = clock.now()
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(1001, "hello")
        assert (clock.now() - start).total_seconds() == pytest.approx(4)  # two waits, then the third 429 goes on
        await bot.send_message(1001, "hello")
        assert [m.text for m in emu.user(1001).messages] == ["hello"]
    finally:
        await bot.session.close()


async def test_notifications_meet_flood_control_in_the_outbox_not_in_the_call(harness: Harness) -> None:
    """The outbox sender's bot has no ReplyRetryMiddleware: a 429 reschedules the row (all sending pauses), within
    its lease, instead of holding the call."""
    user, coordinator, (first, _second) = await world(harness)
    fault = harness.emu.inject("sendMessage", kind="429", count=1, retry_after=5, chat_id=user.id)
    start = harness.clock.now()

    await route(harness, coordinator, first)

    assert fault.hits == 1
    assert not [m for m in user.messages if first.number in (m.text or "")]
    [row] = [o for o in await harness.rows(Outbox) if o.status == "pending"]
    assert row.attempts == 1 and "retry after 5" in (row.last_error or "")
    assert harness.clock.now() - start < timedelta(seconds=5)

    harness.clock.advance(seconds=6)
    await harness.settle()
    assert [m for m in user.messages if first.number in (m.text or "")]
