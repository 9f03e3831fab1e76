"""Paced polling: under load, the bot fetches updates in batches instead of one getUpdates call per update.

aiogram asks for the next updates as soon as it has started handling the last ones, and a long poll answers as
soon as one update is there: a busy bot made one getUpdates call per update (607 calls for 676 updates in
`bench/intake.py`), each a full HTTP round trip and response validation. Here, while updates are being handled,
the next getUpdates waits until they are done, or `poll_linger_ms` at most, and brings what arrived meanwhile in
one call (114 calls for the same run). An idle bot polls at once, so a person's reply is not delayed; under load
the wait is at most the linger, small beside the time the updates queue anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import TelegramObject

from bot.session import JSONSession


class UpdateLoad(BaseMiddleware):
    """An outer middleware counting the updates being handled; `quiet()` waits for the count to reach 0."""

    def __init__(self) -> None:
        self.active = 0
        self._idle: list[asyncio.Future[None]] = []

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.active += 1
        try:
            return await handler(event, data)
        finally:
            self.active -= 1
            if self.active == 0:
                waiters, self._idle = self._idle, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    async def quiet(self, limit: float) -> None:
        """Return once no update is being handled, or after `limit` seconds, whichever comes first."""
        if self.active == 0 or limit <= 0:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        try:
            async with asyncio.timeout(limit):
                await waiter
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):
                self._idle.remove(waiter)


def pace_polling(bot: Bot, load: UpdateLoad, linger: float) -> bool:
    """Make the bot's getUpdates wait for `load.quiet(linger)` first. False when the session cannot pace."""
    if not isinstance(bot.session, JSONSession) or linger <= 0:
        return False

    async def before_poll() -> None:
        # aiogram asks for the next updates right after creating the tasks for the last ones: let those tasks
        # start (and be counted) first.
        await asyncio.sleep(0)
        await load.quiet(linger)

    bot.session.before_poll = before_poll
    return True
