"""aiogram routers, one package per role. Order matters: /cancel and commands first, fallbacks last."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram import Router

Callback = Callable[..., Any]


class _Event:
    """`@handlers.message(*filters)`: records the registration for each router built later."""

    def __init__(self, handlers: Handlers, name: str) -> None:
        self.handlers = handlers
        self.name = name

    def __call__(self, *filters: Any, **kwargs: Any) -> Callable[[Callback], Callback]:
        def register(callback: Callback) -> Callback:
            self.handlers.registrations.append((self.name, callback, filters, kwargs))
            return callback

        return register


class Handlers:
    """A module's handlers, declared with aiogram's decorators (`@router.message(...)`), registered on a fresh
    `Router` each time one is asked for.

    aiogram attaches a router to one parent for the router's life, and a module-level router lives as long as the
    process, while a Dispatcher is built more than once in one process (a restart in the tests, the benchmarks).
    Each Dispatcher gets routers of its own instead, through aiogram's public `register`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.registrations: list[tuple[str, Callback, tuple[Any, ...], dict[str, Any]]] = []
        self.message = _Event(self, "message")
        self.callback_query = _Event(self, "callback_query")
        self.my_chat_member = _Event(self, "my_chat_member")
        self.errors = _Event(self, "error")

    def router(self) -> Router:
        router = Router(name=self.name)
        for event, callback, filters, kwargs in self.registrations:
            router.observers[event].register(callback, *filters, **kwargs)
        return router


def join(name: str, *children: Handlers | Router) -> Router:
    """A fresh parent router over fresh routers of the modules' handlers (or routers built just now)."""
    parent = Router(name=name)
    parent.include_routers(*(child.router() if isinstance(child, Handlers) else child for child in children))
    return parent


def get_routers() -> list[Router]:
    from handlers import common, fallback, resident, staff

    # Residents are most of the traffic: their routers are tried before the staff's.
    return [common.get_router(), resident.get_router(), staff.get_router(), join("fallback", fallback.router)]
