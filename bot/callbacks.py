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


class MyAction(StrEnum):
    page = "p"
    open = "o"
    media = "m"


class MyCb(CallbackData, prefix="my"):
    action: MyAction
    id: int = 0
    page: int = 0


class StaffAction(StrEnum):
    open = "o"
    files = "f"
    route = "r"  # to the suggested agency
    agencies = "ag"  # choose another agency (v = page)
    route_to = "rt"  # v = agency id
    reject = "rj"  # choose a reason
    reject_reason = "rr"  # s = reason code
    duplicate = "du"
    category = "ca"  # choose a category (v = block id, 0 = blocks)
    set_category = "sc"  # v = category id
    kind = "k"  # v = 0 message, 1 appeal
    take = "t"
    clarify = "cl"
    interim = "i"
    redirect = "rd"  # choose the agency
    redirect_to = "rdt"  # v = agency id
    extension = "ex"
    answer = "an"
    approve = "ap"
    send_back = "sb"
    decide = "dc"  # v = request id, s = "y" | "n"


class StaffCb(CallbackData, prefix="st"):
    action: StaffAction
    id: int = 0
    v: int = 0
    s: str = ""


class ReplyCb(CallbackData, prefix="rp"):
    """The resident answers an official's clarification question (send=True: the reply is complete)."""

    id: int
    send: bool = False


class AdminAction(StrEnum):
    invite = "i"  # choose a role
    invite_role = "ir"  # s = role
    invite_agency = "ia"  # s = role, v = agency id
    people = "p"  # s = role filter
    revoke = "rv"  # v = user id, s = role
    routes = "ro"  # v = block id (0 = blocks)
    route_category = "rc"  # v = category id: the districts and their agency
    route_district = "rd"  # v = category id, s = district id: choose the agency
    route_set = "rs"  # v = route id... (category, district) packed in s, agency in v


class AdminCb(CallbackData, prefix="ad"):
    action: AdminAction
    v: int = 0
    s: str = ""
