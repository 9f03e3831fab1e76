"""Typed callback data. Every packed value stays under Telegram's 64 bytes."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class LangCb(CallbackData, prefix="lang"):
    code: str


class ConsentAction(StrEnum):
    accept = "a"
    decline = "d"
    show = "s"


class ConsentCb(CallbackData, prefix="cons"):
    action: ConsentAction


class FileAction(StrEnum):
    block = "b"
    category = "c"
    district = "di"
    kind = "k"
    done = "dn"
    skip = "sk"
    clear = "cl"
    back = "bk"
    edit = "ed"
    edit_field = "ef"
    confirm = "ok"
    cancel = "x"


class FileCb(CallbackData, prefix="f"):
    """A button of the filing dialog; `d` names the dialog so a button of a finished one is refused."""

    action: FileAction
    d: str
    v: int = 0
    s: str = ""


class MyAction(StrEnum):
    page = "p"
    open = "o"
    media = "m"


class MyCb(CallbackData, prefix="my"):
    action: MyAction
    id: int = 0
    page: int = 0
