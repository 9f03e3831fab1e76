"""What a resident does: file an appeal, follow their appeals."""

from __future__ import annotations

from aiogram import Router

from handlers import join
from handlers.resident import filing, my_appeals


def get_router() -> Router:
    return join(__name__, filing.router, my_appeals.router)
