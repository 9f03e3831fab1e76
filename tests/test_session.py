"""The replies' retry policy (bot.session.ReplyRetryMiddleware) call by call, with a fake next step instead of the
network, and the session's connections (bot.session.BotSession) against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, methods
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.clock import ManualClock
from bot.session import (
    KEEPALIVE_TIMEOUT,
    BotSession,
    ReplyDeferred,
    ReplyRetryMiddleware,
    fresh_connection,
    on_fresh_connection,
    outbox_reply,
    transient_reason,
)
from emulator import BotAPIEmulator
from emulator.server import KEEPALIVE_TIMEOUT as EMULATOR_KEEPALIVE

TOKEN = "123456:TEST-TOKEN"
SEND = methods.SendMessage(chat_id=1001, text="Choose your language")
EDIT = methods.EditMessageText(chat_id=1001, message_id=5, text="Roads")
PRESS = methods.AnswerCallbackQuery(callback_query_id="1")
OK = object()  # what the next step answers when it succeeds


def dropped(method: TelegramMethod[Any]) -> TelegramNetworkError:
    error = TelegramNetworkError(method=method, message="ServerDisconnectedError: Server disconnected")
    error.__cause__ = aiohttp.ServerDisconnectedError()
    return error


def timed_out(method: TelegramMethod[Any]) -> TelegramNetworkError:
    error = TelegramNetworkError(method=method, message="Request timeout error")
    error.__cause__ = TimeoutError()
    return error


def cut_off(method: TelegramMethod[Any]) -> TelegramNetworkError:
    error = TelegramNetworkError(method=method, message="ClientPayloadError: Response payload is not completed")
    error.__cause__ = aiohttp.ClientPayloadError("Response payload is not completed")
    return error


def server_error(method: TelegramMethod[Any]) -> TelegramServerError:
    return TelegramServerError(method=method, message="Internal Server Error")


def flood(seconds: int) -> Callable[[TelegramMethod[Any]], TelegramRetryAfter]:
    return lambda method: TelegramRetryAfter(method=method, message="Too Many Requests", retry_after=seconds)


class Script:
    """The next step of the middleware chain: raises the scripted errors in turn, then answers OK; records whether
    each call was asked for on a fresh connection."""

    def __init__(self, *errors: Callable[[TelegramMethod[Any]], Exception]) -> None:
        self.errors = list(errors)
        self.calls: list[bool] = []

    async def __call__(self, bot: Bot, method: TelegramMethod[Any]) -> Any:
        self.calls.append(fresh_connection.get())
        if self.errors:
            raise self.errors.pop(0)(method)
        return OK


class Recorder:
    def __init__(self) -> None:
        self.retries: list[str] = []
        self.lost: list[str] = []
        self.deferred = 0
        self.handed: list[tuple[int, str, InlineKeyboardMarkup | None, int]] = []

    def middleware(self, clock: ManualClock, *, accept: bool = True) -> ReplyRetryMiddleware:
        async def handoff(chat_id: int, text: str, markup: InlineKeyboardMarkup | None, retry_after: int) -> bool:
            self.handed.append((chat_id, text, markup, retry_after))
            return accept

        def deferred() -> None:
            self.deferred += 1

        return ReplyRetryMiddleware(
            clock, handoff=handoff, on_retry=self.retries.append, on_lost=self.lost.append, on_deferred=deferred
        )


@pytest.fixture
def bot() -> Bot:
    return Bot(TOKEN, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def waited(clock: ManualClock, start: Any) -> float:
    return (clock.now() - start).total_seconds()


async def test_a_dropped_connection_is_retried_once_at_once_on_a_fresh_connection(
    bot: Bot, clock: ManualClock, recorder: Recorder
) -> None:
    script, start = Script(dropped), clock.now()
    assert await recorder.middleware(clock)(script, bot, SEND) is OK
    assert script.calls == [False, True]
    assert waited(clock, start) == 0 and recorder.retries == ["dropped"] and not recorder.lost
    assert fresh_connection.get() is False  # only around the retry


async def test_a_second_dropped_connection_is_not_retried(bot: Bot, clock: ManualClock, recorder: Recorder) -> None:
    script = Script(dropped, dropped)
    with pytest.raises(TelegramNetworkError):
        await recorder.middleware(clock)(script, bot, SEND)
    assert len(script.calls) == 2 and recorder.lost == ["dropped"]


@pytest.mark.parametrize("failure", [timed_out, cut_off])
async def test_a_send_is_not_made_again_once_telegram_may_have_carried_it_out(
    bot: Bot, clock: ManualClock, recorder: Recorder, failure: Callable[[TelegramMethod[Any]], Exception]
) -> None:
    script = Script(failure)
    with pytest.raises(TelegramNetworkError):
        await recorder.middleware(clock)(script, bot, SEND)
    assert len(script.calls) == 1 and not recorder.retries and len(recorder.lost) == 1


@pytest.mark.parametrize("method", [EDIT, PRESS, methods.GetFile(file_id="f")])
@pytest.mark.parametrize("failure", [timed_out, cut_off, dropped])
async def test_calls_safe_to_repeat_are_made_again_after_any_network_failure(
    bot: Bot,
    clock: ManualClock,
    recorder: Recorder,
    method: TelegramMethod[Any],
    failure: Callable[[TelegramMethod[Any]], Exception],
) -> None:
    script = Script(failure)
    assert await recorder.middleware(clock)(script, bot, method) is OK
    assert script.calls == [False, True]


async def test_a_5xx_is_retried_twice_with_a_backoff(bot: Bot, clock: ManualClock, recorder: Recorder) -> None:
    script, start = Script(server_error, server_error), clock.now()
    assert await recorder.middleware(clock)(script, bot, SEND) is OK
    assert len(script.calls) == 3 and waited(clock, start) == pytest.approx(0.5 + 1.0)
    assert recorder.retries == ["server", "server"]

    script = Script(server_error, server_error, server_error)
    with pytest.raises(TelegramServerError):
        await recorder.middleware(clock)(script, bot, SEND)
    assert len(script.calls) == 3 and recorder.lost == ["server"]


async def test_a_short_429_is_waited_out_on_the_clock(bot: Bot, clock: ManualClock, recorder: Recorder) -> None:
    script, start = Script(flood(3)), clock.now()
    assert await recorder.middleware(clock)(script, bot, SEND) is OK
    assert waited(clock, start) == pytest.approx(3) and recorder.retries == ["flood"] and not recorder.handed


async def test_a_429_longer_than_a_reply_may_wait_hands_a_plain_message_to_the_outbox(
    bot: Bot, clock: ManualClock, recorder: Recorder
) -> None:
    script, start = Script(flood(60)), clock.now()
    with pytest.raises(ReplyDeferred) as raised:
        await recorder.middleware(clock)(script, bot, SEND)
    assert raised.value.retry_after == 60 and transient_reason(raised.value) == "deferred"
    assert len(script.calls) == 1 and waited(clock, start) == 0
    assert recorder.handed == [(1001, "Choose your language", None, 60)] and recorder.deferred == 1
    assert not recorder.lost


async def test_repeated_short_429s_hand_off_after_the_attempts(bot: Bot, clock: ManualClock, recorder: Recorder) -> None:
    script, start = Script(flood(2), flood(2), flood(2)), clock.now()
    with pytest.raises(ReplyDeferred):
        await recorder.middleware(clock)(script, bot, SEND)
    assert len(script.calls) == 3 and waited(clock, start) == pytest.approx(4)


async def test_what_the_outbox_cannot_send_is_dropped_on_a_long_429(
    bot: Bot, clock: ManualClock, recorder: Recorder
) -> None:
    window = methods.SendMessage(
        chat_id=1001,
        text="Choose the topic",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Roads", callback_data="aBc1\x1dblock:3")]]
        ),
    )
    for method in (EDIT, PRESS, window):
        with pytest.raises(TelegramRetryAfter):
            await recorder.middleware(clock)(Script(flood(60)), bot, method)
    assert not recorder.handed and recorder.lost == ["flood"] * 3


async def test_a_chat_the_bot_does_not_know_is_not_handed_off(bot: Bot, clock: ManualClock, recorder: Recorder) -> None:
    with pytest.raises(TelegramRetryAfter):
        await recorder.middleware(clock, accept=False)(Script(flood(60)), bot, SEND)
    assert recorder.deferred == 0 and recorder.lost == ["flood"]


async def test_a_failing_handoff_leaves_the_429(bot: Bot, clock: ManualClock) -> None:
    async def broken(chat_id: int, text: str, markup: InlineKeyboardMarkup | None, retry_after: int) -> bool:
        raise ConnectionError("database is down")

    with pytest.raises(TelegramRetryAfter):
        await ReplyRetryMiddleware(clock, handoff=broken)(Script(flood(60)), bot, SEND)


async def test_other_errors_and_polling_go_straight_on(bot: Bot, clock: ManualClock, recorder: Recorder) -> None:
    def bad_request(method: TelegramMethod[Any]) -> Exception:
        return TelegramBadRequest(method=method, message="Bad Request: message is too long")

    script = Script(bad_request)
    with pytest.raises(TelegramBadRequest):
        await recorder.middleware(clock)(script, bot, SEND)
    script = Script(server_error)
    with pytest.raises(TelegramServerError):
        await recorder.middleware(clock)(script, bot, methods.GetUpdates(offset=1))
    assert len(script.calls) == 1 and not recorder.retries and not recorder.lost


def test_the_outbox_copy_of_a_reply_is_html(bot: Bot) -> None:
    plain = methods.SendMessage(chat_id=7, text="<3 & more", parse_mode=None)
    assert outbox_reply(bot, plain) == (7, "&lt;3 &amp; more", None)
    assert outbox_reply(bot, SEND) == (1001, "Choose your language", None)  # the bot's default: HTML
    assert outbox_reply(bot, methods.SendMessage(chat_id=7, text="*x*", parse_mode="MarkdownV2")) is None
    assert outbox_reply(bot, methods.SendMessage(chat_id="@channel", text="x")) is None


def test_transient_reasons() -> None:
    assert transient_reason(dropped(SEND)) == "dropped"
    assert transient_reason(timed_out(SEND)) == "timeout"
    assert transient_reason(cut_off(SEND)) == "broken"
    assert transient_reason(server_error(SEND)) == "server"
    assert transient_reason(flood(3)(SEND)) == "flood"
    assert transient_reason(TelegramBadRequest(method=SEND, message="Bad Request")) is None
    assert transient_reason(ValueError()) is None


def test_idle_connections_are_closed_before_the_servers_close_them() -> None:
    telegram = 75.0  # nginx's default keepalive_timeout, in front of Telegram's Bot API
    assert 0 < KEEPALIVE_TIMEOUT < min(telegram, EMULATOR_KEEPALIVE)
    assert BotSession().keepalive_timeout == KEEPALIVE_TIMEOUT


async def test_the_session_pools_connections_and_opens_a_fresh_one_on_demand(emu: BotAPIEmulator) -> None:
    session = BotSession(api=TelegramAPIServer.from_base(emu.base_url))
    bot = Bot(emu.token, session=session)
    try:
        assert (await bot.get_me()).username == emu.bot_user["username"]
        with on_fresh_connection():
            assert (await bot.get_me()).username == emu.bot_user["username"]
        assert session.pooled is not None and session.fresh is not None
        assert session.pooled is not session.fresh
        assert session.fresh.connector is not None and session.fresh.connector.force_close
        assert session.pooled.connector is not None and not session.pooled.connector.force_close
    finally:
        await session.close()
    assert session.pooled is None and session.fresh is None


async def test_a_dropped_connection_on_the_emulator_is_retried(emu: BotAPIEmulator, clock: ManualClock) -> None:
    """The whole way down: the emulator closes the connection without answering; the one retry delivers."""
    session = BotSession(api=TelegramAPIServer.from_base(emu.base_url))
    session.middleware(ReplyRetryMiddleware(clock))
    bot = Bot(emu.token, session=session)
    try:
        emu.user(1001).open_chat()
        emu.inject("sendMessage", kind="drop", chat_id=1001)
        await bot.send_message(1001, "hello")
        assert [m.text for m in emu.user(1001).messages] == ["hello"]
        assert [c.fault for c in emu.calls("sendMessage")] == ["drop", None]
    finally:
        await session.close()


async def test_the_emulator_can_lose_the_answer_of_a_call_it_carried_out(emu: BotAPIEmulator) -> None:
    """`drop_after`: the message is in the chat, but the connection closes instead of the answer."""
    bot = emu.create_bot()
    try:
        emu.user(1001).open_chat()
        emu.inject("sendMessage", kind="drop_after", chat_id=1001)
        with pytest.raises(TelegramNetworkError) as raised:
            await bot.send_message(1001, "hello")
        assert transient_reason(raised.value) == "dropped"
        assert [m.text for m in emu.user(1001).messages] == ["hello"]
        [call] = emu.calls("sendMessage")
        assert call.ok and call.fault == "drop_after" and call.status == 0
    finally:
        await bot.session.close()
