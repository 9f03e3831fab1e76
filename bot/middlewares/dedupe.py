"""Skip an update that was already handled (a redelivery after a crash): see bot/services/updates.py."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import TelegramObject, Update

from bot.services.updates import UpdateLedger

logger = logging.getLogger("tsur.updates")


class DedupeMiddleware(BaseMiddleware):
    """An outer update middleware, the first of ours: a known update_id is skipped; a new one is recorded once its
    handlers returned or failed (not when the process dies in the middle: then it is handled again)."""

    def __init__(self, ledger: UpdateLedger) -> None:
        self.ledger = ledger

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Update) or event.update_id <= 0:
            # Telegram numbers its updates from 1; the ones made up inside the process (aiogram-dialog's background
            # updates carry update_id 0) are not Telegram's to deliver again, and must never be skipped.
            return await handler(event, data)
        # Long polling marks the updates that cannot have been handled before (bot/polling.py): no query for them.
        if data.get("maybe_handled", True) and await self.ledger.handled(event.update_id):
            logger.info("update id=%s delivered again: already handled, skipped", event.update_id)
            await self.ledger.skipped(event.update_id)
            return UNHANDLED
        try:
            result = await handler(event, data)
        except Exception:
            # The person was told something went wrong (the error handlers); running it again after every restart
            # would not help, so a failed update counts as handled too.
            await self.ledger.record(event.update_id)
            raise
        await self.ledger.record(event.update_id)
        return result
