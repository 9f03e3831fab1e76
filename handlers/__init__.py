"""aiogram routers, one package per role. Order matters: /cancel and commands first, fallbacks last."""

from __future__ import annotations

from aiogram import Router

from handlers import common, fallback, resident


def get_routers() -> list[Router]:
    return [common.get_router(), resident.get_router(), fallback.router]
