"""aiogram's response classes, kept for the life of the process.

aiogram validates each Bot API answer with a pydantic `Response[T]` class that it asks for on every call, and
pydantic caches those parametrised classes weakly: after a garbage collection frees one, the next call builds it
again (0.5–10 ms each). Under load that was a fifth of a stock aiogram echo bot's CPU (py-spy, `bench/intake.py`).
Holding the classes of the methods the bot calls keeps them built; `tests/test_core.py` checks that a pinned class
survives a collection.
"""

from __future__ import annotations

from typing import Any

from aiogram import methods
from aiogram.methods.base import Response

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
