from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from bot.services import Services


class ActorMiddleware(BaseMiddleware):
    """Puts `actor` (the person behind the update, as the services know them) into handler data."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            services: Services = data["services"]
            data["actor"] = await services.users.identify(user.id, user.language_code)
        return await handler(event, data)
