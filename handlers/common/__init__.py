"""What everyone can do: start, language, consent, help, privacy, cancel; and blocking or unblocking the bot."""

from __future__ import annotations

from aiogram import Router

from handlers import join
from handlers.common import cancel, help, membership, resume, start


def get_router() -> Router:
    return join(__name__, resume.router, cancel.router, start.router, help.router, membership.router)
