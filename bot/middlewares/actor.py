from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User

from bot.services import Services


class ActorMiddleware(BaseMiddleware):
    """Puts `actor` (the person behind the update, as the services know them) into handler data.

    Any update from a person shows the bot can reach them again, except `my_chat_member`, which may say they just
    blocked it: its handler (handlers/common/membership.py) records what it says."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            services: Services = data["services"]
            membership = isinstance(event, Update) and event.my_chat_member is not None
            data["actor"] = await services.users.identify(user.id, user.language_code, reachable=not membership)
        return await handler(event, data)
