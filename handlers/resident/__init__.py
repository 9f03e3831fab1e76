"""What a resident does: file an appeal, follow their appeals."""

from __future__ import annotations

from aiogram import Router

from handlers.resident import filing, my_appeals


def get_router() -> Router:
    router = Router(name=__name__)
    router.include_routers(filing.router, my_appeals.router)
    return router
