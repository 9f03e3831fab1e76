from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from aiogram.utils.i18n import I18n

from bot.clock import Clock
from bot.services.users import guess_locale


class ThrottlingMiddleware(BaseMiddleware):
    """A token bucket per person: a flood is answered once, then dropped until it calms down.

    Every update let through is answered, so the limits stay under Telegram's per-chat rate (about one message a
    second, short bursts tolerated; config.example.toml): the replies and the one warning never meet a 429. An
    album is one action of the person and is charged once. `my_chat_member` (the person blocked or unblocked the
    bot) is never dropped: it is not something one floods, and it says whether the bot can reach them.
    """

    WARN_EVERY = 30.0  # seconds between two warnings to the same person

    def __init__(self, rate: float, burst: int, i18n: I18n, clock: Clock) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.i18n = i18n
        self.clock = clock
        self._buckets: dict[int, tuple[float, float, float]] = {}  # user -> (tokens, at, warned_at)
        self._albums: dict[int, str] = {}  # user -> the album being received

    def _take(self, user_id: int) -> tuple[bool, bool]:
        """(allowed, should_warn)."""
        now = self.clock.now().timestamp()
        tokens, at, warned_at = self._buckets.get(user_id, (self.burst, now, -self.WARN_EVERY))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            self._buckets[user_id] = (tokens - 1, now, warned_at)
            return True, False
        warn = now - warned_at >= self.WARN_EVERY
        self._buckets[user_id] = (tokens, now, now if warn else warned_at)
        if len(self._buckets) > 100_000:  # forget idle people so the dict cannot grow without bound
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        return False, warn

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or (isinstance(event, Update) and event.my_chat_member is not None):
            return await handler(event, data)
        album = event.message.media_group_id if isinstance(event, Update) and event.message else None
        if album is not None and self._albums.get(user.id) == album:
            # An album is one action of the person: only its first item is charged, none is dropped.
            return await handler(event, data)
        allowed, warn = self._take(user.id)
        if allowed and album is not None:
            self._albums[user.id] = album
        if allowed:
            return await handler(event, data)
        data["log"]["outcome"] = "throttled"
        if warn and isinstance(event, Update):
            text = self.i18n.gettext(
                "Too many messages at once. Please wait a few seconds; the ones sent too fast were not processed.",
                locale=guess_locale(user.language_code),
            )
            if event.message is not None:
                await event.message.answer(text)
            elif event.callback_query is not None:
                await event.callback_query.answer(text, show_alert=True)
        elif isinstance(event, Update) and event.callback_query is not None:
            await event.callback_query.answer()
        return None
