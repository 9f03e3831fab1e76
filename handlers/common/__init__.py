"""What everyone can do: start, language, consent, help, privacy, cancel; and blocking or unblocking the bot."""

from __future__ import annotations

from aiogram import Router

from handlers import join
from handlers.common import cancel, help, membership, start


def get_router() -> Router:
    return join(__name__, cancel.router, start.router, help.router, membership.router)
