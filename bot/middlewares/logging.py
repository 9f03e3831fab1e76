from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.dispatcher.event.handler import HandlerObject
from aiogram.types import TelegramObject, Update
from aiogram_dialog.api.exceptions import OutdatedIntent, UnknownIntent

logger = logging.getLogger("tsur.updates")


class UpdateLogMiddleware(BaseMiddleware):
    """One structured line per update: id, kind, handler, duration, outcome. Never what the person wrote."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        record: dict[str, Any] = {"handler": "-", "outcome": "handled"}
        data["log"] = record
        started = time.perf_counter()
        try:
            result = await handler(event, data)
            if result is UNHANDLED and record["outcome"] == "handled":
                record["outcome"] = "unhandled"
            return result
        except (UnknownIntent, OutdatedIntent):
            # A button of a dialog that is over: answered by the dialogs' error handler ("no longer active"), which
            # runs outside this middleware. Not a failure of the bot (QA: logged as outcome=error).
            record["outcome"] = "stale"
            raise
        except Exception:
            record["outcome"] = "error"
            raise
        finally:
            if logger.isEnabledFor(logging.INFO):
                kind = event.event_type if isinstance(event, Update) else type(event).__name__
                logger.info(
                    "update id=%s kind=%s handler=%s duration_ms=%.1f outcome=%s",
                    getattr(event, "update_id", "-"),
                    kind,
                    record["handler"],
                    (time.perf_counter() - started) * 1000,
                    record["outcome"],
                )


class HandlerNameMiddleware(BaseMiddleware):
    """An inner middleware: the matched handler is known only here, so name it for the log line."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        record = data.get("log")
        matched: HandlerObject | None = data.get("handler")
        if record is not None and matched is not None:
            callback = matched.callback
            record["handler"] = f"{callback.__module__}.{getattr(callback, '__name__', '?')}"
        return await handler(event, data)
