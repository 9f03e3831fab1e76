"""Filters, and calling aiogram's synchronous filters in place.

aiogram calls a filter that is not a coroutine function (every `F.…` magic filter and every `CallbackData.filter()`
is one) through `asyncio.to_thread`: a hand-off to a worker thread and back for each check of each handler an
update is tried against. They are pure, quick predicates over the update, so `call_sync_filters_in_place` wraps
each in a coroutine function that calls it directly. It uses the public fields of aiogram's `FilterObject`
(`callback`, `awaitable`) and relies on `CallableObject.call` awaiting a callback whose `awaitable` is true;
`check_in_place_calls` proves that at start-up and stops the bot, naming the aiogram version, if it changes.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import aiogram
from aiogram import Router
from aiogram.dispatcher.event.handler import FilterObject
from aiogram.filters import Filter
from aiogram.types import Message


class PrivateChat(Filter):
    """Appeals carry personal data: the bot talks to people in private chats only."""

    async def __call__(self, message: Message) -> bool:
        return message.chat.type == "private"


def _in_place(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return call


def _make_in_place(item: FilterObject) -> bool:
    if item.awaitable:
        return False
    item.callback = _in_place(item.callback)
    item.awaitable = True
    return True


def call_sync_filters_in_place(root: Router) -> int:
    """Wrap every synchronous filter of the handlers below `root`; returns how many were wrapped."""
    check_in_place_calls()
    changed = 0
    for router in root.chain_tail:
        for observer in router.observers.values():
            for handler in observer.handlers:
                for item in handler.filters or ():
                    changed += _make_in_place(item)
    return changed


class InPlaceUnsupported(RuntimeError):
    pass


def check_in_place_calls() -> None:
    """Fail loudly if aiogram no longer calls a wrapped filter at once, on the calling thread.

    The call is driven by hand (`send(None)`): a filter called in place finishes at the first step, while one
    handed to a thread would suspend the coroutine instead."""
    seen: list[int] = []

    def probe(value: int) -> bool:
        seen.append(threading.get_ident())
        return value == 1

    try:
        item = FilterObject(callback=probe)
        wrapped = _make_in_place(item)
        call = item.call(1)
    except (AttributeError, TypeError) as error:
        raise InPlaceUnsupported(f"aiogram {aiogram.__version__}: {error!r}") from error
    try:
        call.send(None)
    except StopIteration as done:
        if wrapped and done.value is True and seen == [threading.get_ident()]:
            return
    except Exception:  # it wanted a thread or a loop: not in place
        pass
    else:
        call.close()
    raise InPlaceUnsupported(
        f"aiogram {aiogram.__version__} no longer calls an awaitable filter in place: "
        "remove bot.filters.call_sync_filters_in_place or adapt it"
    )
