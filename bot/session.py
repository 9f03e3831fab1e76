"""aiogram's client session: the response classes kept for the life of the process, and flood control for replies.

aiogram validates each Bot API answer with a pydantic `Response[T]` class that it asks for on every call, and
pydantic caches those parametrised classes weakly: after a garbage collection frees one, the next call builds it
again (0.5–10 ms each). Under load that was a fifth of a stock aiogram echo bot's CPU (py-spy, `bench/intake.py`).
Holding the classes of the methods the bot calls keeps them built; `tests/test_core.py` checks that a pinned class
survives a collection.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiogram import methods
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods.base import Response, TelegramMethod, TelegramType

from bot.clock import Clock

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


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Telegram's flood control for the bot's direct replies, as an aiogram client-session middleware
    (`bot.session.middleware(...)`): a call answered 429 is made again after its `retry_after`, waited on the
    injected clock (tests travel in time instead of sleeping). aiogram ships no such middleware.

    A wait longer than `max_wait`, or a 429 on the last of `attempts`, is not waited out: the error goes on and the
    reply is dropped (bot.app.on_error logs it as a warning). A person's updates are handled one at a time, so
    their next ones queue behind a reply that waits; minutes of a flood ban would only pile them up.

    The outbox sender handles 429 itself (it pauses all sending and reschedules the row in the database, within
    its lease), so it uses a bot without this middleware (bot.app.App.start_background).
    """

    def __init__(self, clock: Clock, *, max_wait: float = 10.0, attempts: int = 3) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.clock = clock
        self.max_wait = max_wait
        self.attempts = attempts

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt >= self.attempts or error.retry_after > self.max_wait:
                    raise
                logger.info("%s: flood control, sent again in %ss", type(method).__name__, error.retry_after)
                await self.clock.sleep(error.retry_after)
                attempt += 1
