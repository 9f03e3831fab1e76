"""aiogram routers, one package per role. Order matters: /cancel and commands first, fallbacks last."""

from __future__ import annotations

from aiogram import Router


def join(name: str, *children: Router) -> Router:
    """A fresh parent router for module routers.

    Module routers live as long as the process, but a Dispatcher may be built more than once (a restart
    in tests, a benchmark run): aiogram refuses to attach a router twice, so it is detached first.
    """
    parent = Router(name=name)
    for child in children:
        child._parent_router = None
    parent.include_routers(*children)
    return parent


def get_routers() -> list[Router]:
    from handlers import common, fallback, resident, staff

    # Residents are most of the traffic: their routers are tried before the staff's.
    return [common.get_router(), resident.get_router(), staff.get_router(), join("fallback", fallback.router)]
