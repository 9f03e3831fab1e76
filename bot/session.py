"""aiogram's client session: the response classes kept for the life of the process, the HTTP connections, and the
retries that let a direct reply survive a transient Bot API failure.

aiogram validates each Bot API answer with a pydantic `Response[T]` class that it asks for on every call, and
pydantic caches those parametrised classes weakly: after a garbage collection frees one, the next call builds it
again (0.5–10 ms each). Under load that was a fifth of a stock aiogram echo bot's CPU (py-spy, `bench/intake.py`).
Holding the classes of the methods the bot calls keeps them built; `tests/test_core.py` checks that a pinned class
survives a collection.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from html import escape
from typing import TYPE_CHECKING, Any

import aiohttp
import certifi
from aiogram import __version__ as aiogram_version
from aiogram import methods
from aiogram.client.default import Default
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.fsm.context import FSMContext
from aiogram.methods.base import Response, TelegramMethod, TelegramType
from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup
from aiogram_dialog.utils import remove_intent_id
from aiohttp.hdrs import USER_AGENT
from aiohttp.http import SERVER_SOFTWARE
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.notices import Reply
from storage.repositories.outbox import OutboxRepo
from storage.repositories.users import UserRepo

if TYPE_CHECKING:
    from aiogram import Bot

logger = logging.getLogger(__name__)

PINNED_METHODS = (
    methods.GetUpdates,
    methods.GetMe,
    methods.SendMessage,
    methods.EditMessageText,
    methods.EditMessageReplyMarkup,
    methods.EditMessageCaption,
    methods.EditMessageMedia,
    methods.AnswerCallbackQuery,
    methods.SendPhoto,
    methods.SendVideo,
    methods.SendDocument,
    methods.SendMediaGroup,
    methods.SendLocation,
    methods.DeleteMessage,
    methods.SetMyCommands,
    methods.DeleteWebhook,
)
pinned: list[Any] = []


def pin_response_types() -> None:
    """Keep aiogram's response classes of the methods the bot calls alive for the life of the process."""
    if not pinned:
        pinned.extend(Response[method.__returning__] for method in PINNED_METHODS)


# --- the connections ----------------------------------------------------------------------------------------

# Seconds an idle keep-alive connection is kept for the next call. A server closes its idle connections after its
# own timeout (Telegram documents none; api.telegram.org answers through nginx, 75 s by default; the emulator
# 75 s, emulator.server); a
# client that keeps one longer may send a request just as the server closes it, and gets "Server disconnected".
# Below both, the client closes first, so a stale connection is the exception (a server restart), not a race.
KEEPALIVE_TIMEOUT = 10.0

fresh_connection: ContextVar[bool] = ContextVar("fresh_connection", default=False)
"""Set by ReplyRetryMiddleware around a retry after a dropped connection: BotSession makes that call on a new
connection instead of another idle one, which the server may have closed as well."""


@contextmanager
def on_fresh_connection(fresh: bool = True) -> Iterator[None]:
    token = fresh_connection.set(fresh)
    try:
        yield
    finally:
        fresh_connection.reset(token)


class BotSession(AiohttpSession):
    """aiogram's aiohttp session, with the keep-alive timeout of its connection pool set (aiogram builds its
    connector with aiohttp's default and offers no argument for it) and a fresh connection on demand
    (`fresh_connection`). It overrides the public `create_session`/`close` of aiogram's session and builds the
    aiohttp sessions as aiogram does (certifi's CA bundle, aiogram's user agent); no proxy support (unused)."""

    def __init__(self, *, keepalive_timeout: float = KEEPALIVE_TIMEOUT, limit: int = 100, **kwargs: Any) -> None:
        super().__init__(limit=limit, **kwargs)
        self.keepalive_timeout = keepalive_timeout
        self.limit = limit
        self.pooled: aiohttp.ClientSession | None = None
        self.fresh: aiohttp.ClientSession | None = None

    def _client(self, **connector: Any) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                ssl=ssl.create_default_context(cafile=certifi.where()), limit=self.limit, **connector
            ),
            headers={USER_AGENT: f"{SERVER_SOFTWARE} aiogram/{aiogram_version}"},
        )

    async def create_session(self) -> aiohttp.ClientSession:
        if fresh_connection.get():
            # force_close: one connection per call, opened for it and closed after it.
            if self.fresh is None or self.fresh.closed:
                self.fresh = self._client(force_close=True)
            return self.fresh
        if self.pooled is None or self.pooled.closed:
            self.pooled = self._client(ttl_dns_cache=3600, keepalive_timeout=self.keepalive_timeout)
        return self.pooled

    async def close(self) -> None:
        for client in (self.pooled, self.fresh):
            if client is not None and not client.closed:
                await client.close()
        self.pooled = self.fresh = None


# --- the retries of replies ------------------------------------------------------------------------------------


# The person's FSM data key set when a reply to them was lost for good (bot.app.on_error): their next update first
# gets the step they are on (handlers.common.resume).
REPLY_LOST = "reply_lost"


async def mark_reply_lost(state: FSMContext) -> None:
    await state.update_data({REPLY_LOST: True})


class ReplyDeferred(Exception):
    """A reply that met flood control longer than a reply may wait: it was queued in the outbox for its chat
    instead, and the handler that made it stops here (bot.app.on_error logs it, without a traceback)."""

    def __init__(self, method: str, retry_after: int) -> None:
        super().__init__(f"{method}: flood control for {retry_after}s, the reply goes through the outbox")
        self.method = method
        self.retry_after = retry_after


def transient_reason(error: BaseException) -> str | None:
    """What kind of transient Bot API failure `error` is, or None for any other error (a bug, a refusal):
    "dropped" (the connection broke before any answer: reset, server disconnected, cannot connect), "timeout" (no
    answer in time), "broken" (the answer was cut off), "flood" (429), "server" (5xx), "deferred" (handed to the
    outbox)."""
    if isinstance(error, ReplyDeferred):
        return "deferred"
    if isinstance(error, TelegramRetryAfter):
        return "flood"
    if isinstance(error, TelegramServerError):
        return "server"
    if isinstance(error, TelegramNetworkError):
        # aiogram raises it `from` aiohttp's error (or the timeout): the cause tells whether any answer came.
        cause = error.__cause__
        if isinstance(cause, TimeoutError):  # aiohttp's ServerTimeoutError is one too
            return "timeout"
        if isinstance(cause, aiohttp.ClientConnectionError):
            return "dropped"
        return "broken"
    return None


# Calls that change nothing when made twice: after a timeout or a cut-off answer they are made again. An edit made
# twice shows the same message (Telegram refuses the second as "not modified", which aiogram-dialog ignores).
SAFE_PREFIXES = ("get", "edit", "set", "answerCallbackQuery", "sendChatAction")

ReplyHandoff = Callable[[int, str, InlineKeyboardMarkup | None, int], Awaitable[bool]]
"""(chat id, HTML text, inline keyboard, seconds of flood control) -> whether the reply was queued in the outbox."""


def is_safe(method: TelegramMethod[Any]) -> bool:
    return method.__api_method__.startswith(SAFE_PREFIXES)


class ReplyRetryMiddleware(BaseRequestMiddleware):
    """The one place where a direct reply meets a transient Bot API failure, as an aiogram client-session request
    middleware (`bot.session.middleware(...)`) on the bot that answers updates. Waits are made on the injected
    clock (tests travel in time instead of sleeping).

    - The connection broke before any answer (reset, "Server disconnected", no connection): the call is made again
      at once, once, on a fresh connection. This is the only retry of a `send*` without an answer: Telegram may have
      carried out the first call and lost only its answer, so the person may, rarely, get the message twice. That
      duplicate is accepted: without the retry they would get nothing.
    - No answer in time, or an answer cut off midway: made again once only if the method is safe to repeat (edits,
      answerCallbackQuery, get*, set*); a `send*` is not, since Telegram most likely carried it out.
    - 429: the call is made again after `retry_after`, if that is at most `max_wait` seconds (a person's updates
      are handled one at a time, so their next ones queue behind a reply that waits), up to `flood_attempts` calls.
      Beyond that, a plain text message (sendMessage, not a dialog's window: see outbox_reply) goes to the outbox
      for its chat (`handoff`), to be sent when the flood control is over, and ReplyDeferred is raised; any other
      call's 429 goes on and the reply is dropped (an edit or a window is shown again by the person's next
      message; a button press's answer cannot come later).
    - 5xx: made again after `server_backoff`, then twice that, at most `server_retries` times.

    What still fails goes on to the handler's error path (bot.app.on_error logs it once, as a warning without a
    traceback) and is counted (`on_retry` / `on_lost` / `on_deferred`, the metrics). getUpdates is left to the
    poller, which has its own backoff.

    The outbox sender handles flood control and errors itself (a pause, the row rescheduled within its lease), so
    it uses a bot without this middleware (bot.app.App.start_background).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        max_wait: float = 5.0,
        flood_attempts: int = 3,
        server_retries: int = 2,
        server_backoff: float = 0.5,
        handoff: ReplyHandoff | None = None,
        on_retry: Callable[[str], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        on_deferred: Callable[[], None] | None = None,
    ) -> None:
        if flood_attempts < 1 or server_retries < 0:
            raise ValueError("flood_attempts must be >= 1 and server_retries >= 0")
        self.clock = clock
        self.max_wait = max_wait
        self.flood_attempts = flood_attempts
        self.server_retries = server_retries
        self.server_backoff = server_backoff
        self.handoff = handoff
        self.on_retry = on_retry
        self.on_lost = on_lost
        self.on_deferred = on_deferred

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, methods.GetUpdates):
            return await make_request(bot, method)
        name = method.__api_method__
        floods = server_errors = network_errors = 0
        fresh = False
        while True:
            try:
                with on_fresh_connection(fresh):
                    return await make_request(bot, method)
            except TelegramRetryAfter as error:
                floods += 1
                if error.retry_after > self.max_wait or floods >= self.flood_attempts:
                    await self.defer(bot, method, error)
                    self.lost("flood")
                    raise
                reason, wait, fresh = "flood", float(error.retry_after), False
            except TelegramServerError:
                server_errors += 1
                if server_errors > self.server_retries:
                    self.lost("server")
                    raise
                reason, wait, fresh = "server", self.server_backoff * 2 ** (server_errors - 1), False
            except TelegramNetworkError as error:
                reason = transient_reason(error) or "broken"
                network_errors += 1
                if network_errors > 1 or (reason != "dropped" and not is_safe(method)):
                    self.lost(reason)
                    raise
                wait, fresh = 0.0, True
            logger.info("%s: %s, made again in %ss", name, reason, wait)
            if self.on_retry is not None:
                self.on_retry(reason)
            if wait:
                await self.clock.sleep(wait)

    def lost(self, reason: str) -> None:
        if self.on_lost is not None:
            self.on_lost(reason)

    async def defer(self, bot: Bot, method: TelegramMethod[Any], error: TelegramRetryAfter) -> None:
        """Queue a text reply refused by a long flood control in the outbox, and raise ReplyDeferred; return if it
        cannot be (another kind of call, no handoff, a chat the bot does not know)."""
        reply = outbox_reply(bot, method)
        if reply is None or self.handoff is None:
            return
        chat_id, text, markup = reply
        try:
            queued = await self.handoff(chat_id, text, markup, error.retry_after)
        except Exception as failure:  # the database is down too: the reply is dropped like any other
            logger.warning("%s: could not queue the reply in the outbox (%s)", method.__api_method__, type(failure).__name__)
            return
        if not queued:
            return
        if self.on_deferred is not None:
            self.on_deferred()
        raise ReplyDeferred(method.__api_method__, error.retry_after) from error


def outbox_reply(
    bot: Bot, method: TelegramMethod[Any]
) -> tuple[int, str, InlineKeyboardMarkup | ReplyKeyboardMarkup | None] | None:
    """(chat id, HTML text, keyboard) of a text message the outbox can send instead, or None.

    Not an edit, nor a dialog's window: aiogram-dialog takes a press only on the message it sent or edited last
    (its stack keeps that message's id), so the outbox's copy of a window would show dead buttons. Those are
    dropped instead; the dialog's state keeps the step, and the person's next message shows the window again."""
    if not isinstance(method, methods.SendMessage) or not isinstance(method.chat_id, int):
        return None
    markup = method.reply_markup
    if markup is not None and not isinstance(markup, InlineKeyboardMarkup | ReplyKeyboardMarkup):
        return None  # removing the keyboard, or forcing a reply: meaningful only right now
    if isinstance(markup, InlineKeyboardMarkup) and any(
        remove_intent_id(button.callback_data)[0] is not None
        for row in markup.inline_keyboard
        for button in row
        if button.callback_data
    ):
        return None
    parse_mode = method.parse_mode
    if isinstance(parse_mode, Default):
        parse_mode = bot.default[parse_mode.name]
    if parse_mode is None:
        text = escape(method.text, quote=False)
    elif parse_mode == "HTML":  # aiogram's ParseMode is a str enum
        text = method.text
    else:
        return None
    return method.chat_id, text, markup


class OutboxHandoff:
    """Queues a reply as an outbox row (bot.notices.Reply) for the person of a chat, due when the flood control
    is over: the outbox sender delivers it like any notification (at least once, rescheduled on a new 429)."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, on_commit: Callable[[], None]
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.on_commit = on_commit

    async def __call__(
        self, chat_id: int, text: str, markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None, retry_after: int
    ) -> bool:
        async with self.sessionmaker() as session:
            rows = await UserRepo(session).actor_rows(chat_id)
            if not rows:
                return False
            now = self.clock.now()
            notice = Reply(text=text, markup=None if markup is None else markup.model_dump(mode="json", exclude_none=True))
            row = OutboxRepo(session).add(rows[0][0], notice, now)
            row.next_attempt_at = now + timedelta(seconds=retry_after)
            await session.commit()
        self.on_commit()
        return True
