"""Forged staff buttons, end to end (issue 10): every staff callback is pressed by every role, through the
emulator, as a person who edits a button's data would. A screen opens only for the person whose role and scope allow
it; everyone else gets a short localized popup, the screen they pressed on stays as it was, nothing new is sent, and
nothing changes in the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiogram_dialog.utils import CB_SEP, remove_intent_id

from bot.callbacks import StaffAction, StaffCb
from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import Appeal, AppealMessage, AppealRequest, AuditEntry, Invite, Route, StatusHistory, UserRole
from tests.conftest import Harness
from tests.test_resident_e2e import english_resident
from tests.test_staff_e2e import (
    ADMIN,
    SHOWING,
    agency_names,
    chat_calls,
    filed_appeal,
    join,
    open_from_inbox,
    open_from_queue,
    staffed_appeal,
)

COORDINATOR = "ЦУР coordinator"
NOT_ACTIVE = "This button is no longer active."
REFUSALS = {"Appeal not found.", "This is not available to you.", "This action is not possible now.", NOT_ACTIVE}
GUESSED_INTENT = "q1w2e3r"
ROLES = ("owner", "other", "official", "official_b", "supervisor", "revoked", "coordinator", "admin")


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


@dataclass
class World:
    people: dict[str, EmulatedUser]
    waiting: Appeal  # on moderation: the coordinators' screens
    taken: Appeal  # in progress at the agency of `official` and `supervisor`
    agency_id: int
    other_agency_id: int


async def make_world(harness: Harness) -> World:
    owner, coordinator, official, taken, agency_name = await staffed_appeal(harness)
    waiting = await filed_appeal(harness, owner)
    names = await agency_names(harness)
    agency_id = next(i for i, n in names.items() if n == agency_name)
    other_id, other_name = next((i, n) for i, n in names.items() if n != agency_name)
    people = {
        "owner": owner,
        "other": await english_resident(harness, 1002),
        "official": official,
        "official_b": await join(harness, 3002, "official", other_name),
        "supervisor": await join(harness, 3003, "head of agency", agency_name),
        "revoked": await join(harness, 2002, COORDINATOR),
        "coordinator": coordinator,
        "admin": harness.emu.user(ADMIN, language_code="en"),
    }
    return World(people, waiting, taken, agency_id, other_id)


async def revoke(harness: Harness, tg_id: int) -> None:
    assert harness.app is not None
    services = harness.app.services
    admin, person = await services.users.identify(ADMIN), await services.users.identify(tg_id)
    await services.access.revoke(admin, person.id, "coordinator")


async def rows_state(harness: Harness) -> dict[str, Any]:
    """What a staff action would change (audit rows of refusals aside)."""
    return {
        "appeals": sorted((a.id, a.status, a.agency_id, a.category_id, a.kind) for a in await harness.rows(Appeal)),
        "history": len(await harness.rows(StatusHistory)),
        "messages": len(await harness.rows(AppealMessage)),
        "requests": len(await harness.rows(AppealRequest)),
        "roles": sorted((r.user_id, r.role) for r in await harness.rows(UserRole)),
        "invites": len(await harness.rows(Invite)),
        "routes": sorted((r.id, r.agency_id) for r in await harness.rows(Route, Route.edited_by.is_not(None))),
        "non_refusals": len(await harness.rows(AuditEntry, AuditEntry.action != "refused")),
    }


def sent(harness: Harness, person: EmulatedUser) -> int:
    return chat_calls(harness, person, "sendMessage", "sendPhoto", "sendDocument", "sendLocation", "sendMediaGroup")


@dataclass
class Press:
    """What one press did: the popup, and whether the pressed message or the chat changed."""

    answer: str | None
    alert: bool
    edited: bool
    sent: bool
    screen: BotMessage


async def press(harness: Harness, person: EmulatedUser, message_id: int, data: str) -> Press:
    shown, new = chat_calls(harness, person, *SHOWING), sent(harness, person)
    answers = len(person.callback_answers)
    await person.press_callback(message_id, data)
    await harness.settle()
    assert len(person.callback_answers) == answers + 1, "every press is answered once"
    answer = person.callback_answers[-1]
    edited = chat_calls(harness, person, *SHOWING) - sent(harness, person) != shown - new
    return Press(
        answer.get("text"), bool(answer.get("show_alert")), edited, sent(harness, person) != new, person.message(message_id)
    )


def refused(result: Press, what: str) -> None:
    assert result.answer in REFUSALS and result.alert, (what, result.answer)
    assert not result.edited and not result.sent, (what, result.screen.text[:80])


# --- 1. every StaffAction as StaffCb × every role ---------------------------------------------------------------


def may_see(role: str, appeal: str) -> bool:
    """The card opens for coordinators and admins, and for the agency's people on their agency's appeal."""
    return role in ("coordinator", "admin") or (role in ("official", "supervisor") and appeal == "taken")


async def test_every_staff_callback_by_every_role(harness: Harness) -> None:
    w = await make_world(harness)
    p = w.people
    # Everyone has a message of the bot to press on: the card (revoked while it was open) or the menu.
    await open_from_queue(harness, p["revoked"], w.waiting.number)
    await revoke(harness, 2002)
    for name in ("admin", "official_b", "supervisor"):
        await p[name].send_text("/staff")
        await harness.settle()
    before = await rows_state(harness)

    opened = 0
    for role in ROLES:
        person = p[role]
        for which, appeal in (("waiting", w.waiting), ("taken", w.taken)):
            for action in StaffAction:
                data = StaffCb(action=action, id=appeal.id, v=1, s="x").pack()
                what = f"{role} {data}"
                result = await press(harness, person, person.last_message.message_id, data)
                if may_see(role, which) and action != StaffAction.take:
                    # The card (and only the card): the pressed message shows it, no picker or prompt.
                    assert result.screen.text.startswith(f"Appeal № {appeal.number}"), what
                    assert not result.sent and result.answer in (None, ""), what
                    opened += 1
                else:
                    refused(result, what)
    assert opened == (2 + 2 + 1 + 1) * (len(StaffAction) - 1)
    assert await rows_state(harness) == before
