"""What everyone can do: start, language, consent, help, privacy, cancel."""

from __future__ import annotations

from aiogram import Router

from handlers.common import cancel, help, start


def get_router() -> Router:
    router = Router(name=__name__)
    router.include_routers(cancel.router, start.router, help.router)
    return router
