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
from handlers.staff.render import Action
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

COORDINATOR = "RMC coordinator"
NOT_ACTIVE = "This button is no longer active."
ALREADY_IN_WORK = "This appeal is already in work."
REFUSALS = {"Appeal not found.", "This is not available to you.", "This action is not possible now.", NOT_ACTIVE}
# Said to a person who may see the appeal but not do what they pressed.
WHO_MAY_ACT = {
    "Only the Regional Management Center routes appeals.",
    "Only the Regional Management Center can change the category or the kind of an appeal.",
    "Only the Regional Management Center can reject an appeal.",
    "Only the Regional Management Center can close an appeal as a duplicate.",
    "Only the Regional Management Center checks the answers.",
    "Only the Regional Management Center decides the agencies' requests.",
    "Only the Regional Management Center can do this.",
    "Only the agency the appeal is assigned to can do this.",
}
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
        answer.get("text"),
        bool(answer.get("show_alert")),
        edited,
        sent(harness, person) != new,
        person.message(message_id),
    )


def refused(result: Press, what: str, sees: bool = False) -> None:
    """Refused with a popup, the screen left as it is. Who may act is said only to a person who may see the appeal;
    to anyone else the refusal names nothing of it."""
    allowed = REFUSALS | WHO_MAY_ACT if sees else REFUSALS
    assert result.answer in allowed and result.alert, (what, result.answer)
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
        # Two real appeals, no appeal (id 0) and one that does not exist.
        for which, appeal_id in (("waiting", w.waiting.id), ("taken", w.taken.id), ("none", 0), ("missing", 999_999)):
            number = {w.waiting.id: w.waiting.number, w.taken.id: w.taken.number}.get(appeal_id, "")
            for action in StaffAction:
                data = StaffCb(action=action, id=appeal_id, v=1, s="x").pack()
                what = f"{role} {data}"
                result = await press(harness, person, person.last_message.message_id, data)
                if number and may_see(role, which) and action == StaffAction.show:
                    # A button of a list of appeals (the low ratings): the card comes below it, the list stays.
                    assert person.last_message.text.startswith(f"Appeal № {number}"), what
                    assert result.sent and result.answer in (None, ""), what
                    opened += 1
                elif number and may_see(role, which) and action != StaffAction.take:
                    # The card (and only the card): the pressed message shows it, no picker or prompt.
                    assert result.screen.text.startswith(f"Appeal № {number}"), what
                    assert not result.sent and result.answer in (None, ""), what
                    opened += 1
                elif which == "taken" and role in ("official", "supervisor") and action == StaffAction.take:
                    # The assignment's «Take in work» pressed again by the agency: the card as it is, with a word.
                    assert result.screen.text.startswith(f"Appeal № {number}"), what
                    assert not result.sent and result.answer == ALREADY_IN_WORK and not result.alert, what
                    opened += 1
                else:
                    refused(result, what, sees=bool(number) and may_see(role, which))
    assert opened == (2 + 2 + 1 + 1) * (len(StaffAction) - 1) + 2
    assert await rows_state(harness) == before


# --- 2. every widget of the staff dialogs, forged with a real or a guessed intent id × every role -----------------

SCREENS = {
    "route_to": "Choose the agency",
    "category": "Choose the category",
    "reject": "Why is it left without consideration",
    "duplicate": "Type the number of the original appeal",
    "clarify": "Type the question to the resident",
    "interim": "Type the interim answer",
    "redirect": "To which agency should it go",
    "extension": "By how many days",
    "answer": "Type the final answer",
}
COORDINATORS_SCREENS = {"route_to", "category", "reject", "duplicate"}
AGENCY_SCREENS = {"clarify", "interim", "redirect", "extension", "answer"}
# Allowed actions that are not screens: they act at once (tested in tests/test_staff_e2e.py), so not pressed here.
ACTS_AT_ONCE = {"coordinator": {"route", "kind"}, "admin": {"route", "kind"}}


def with_intent(intent: str, widget: str) -> str:
    return f"{intent}{CB_SEP}{widget}"


def intent_of(screen: BotMessage) -> str:
    intent, _data = remove_intent_id(next(d for row in screen.inline_keyboard for _t, d in row if d) or "")
    return intent


# The Close (or Back) of every screen, aiogram-dialog's Cancel: pressed on one's own screen it closes it, as it should.
CLOSE = "__cancel__"
# Widgets of the filing dialog that share an id with a staff widget: the resident's own filing buttons.
FILING_OWN = {"block"}
MENU_SCREENS = {"inbox": "Inbox"}


def widgets(w: World, harness: Harness) -> list[str]:
    """Every widget id of the card dialog, the /staff menu and the admin dialog, with an item where it takes one."""
    assert harness.app is not None
    directory = harness.app.services.directory
    block = directory.blocks()[0]
    category, district = directory.categories(block.id)[0], directory.districts()[0]
    card = [
        *(a.value for a in Action),
        "decide:y1",
        "decide:n1",
        f"agency:{w.other_agency_id}",
        "agency_pages:1",
        f"block:{block.id}",
        f"category:{category.id}",
        "reason:spam",
        f"redirect_to:{w.other_agency_id}",
        "send",
        "back",
        "__cancel__",
    ]
    menu = ["queue", "reviews", "requests", "inbox", "invite", "people", "routes", f"appeal:{w.waiting.id}"]
    menu.append(f"appeal:{w.taken.id}")
    admin = ["role:coordinator", "role:admin", "another", "filter:official", "revoke:1:admin", "revoke_pages:1"]
    admin += [f"district:{district.id}", f"agency:{w.agency_id}"]
    return card + menu + admin


def screen_for(role: str, widget: str) -> str | None:
    """The screen a pressed widget opens for `role` on the screen the test gives them, or None."""
    if role in ("coordinator", "admin") and widget in COORDINATORS_SCREENS:
        return SCREENS[widget]
    if role in ("official", "supervisor") and widget in AGENCY_SCREENS:
        return SCREENS[widget]
    if role == "official_b":
        return MENU_SCREENS.get(widget)
    return None


async def test_every_dialog_widget_forged_by_every_role(harness: Harness) -> None:
    """Each person is on a screen of their own: the coordinator and the admin on the card of the appeal in triage,
    the official and the head of agency on the card of their agency's appeal, the other agency's official on the
    /staff menu, the revoked coordinator on the card they had open, the resident in the filing dialog. Every widget
    id is pressed with that screen's own intent, with a guessed one and with another person's."""
    w = await make_world(harness)
    p = w.people
    await open_from_queue(harness, p["revoked"], w.waiting.number)
    await revoke(harness, 2002)
    await open_from_queue(harness, p["coordinator"], w.waiting.number)
    await open_from_queue(harness, p["admin"], w.waiting.number)
    await open_from_inbox(harness, p["official"], w.taken.number)
    await open_from_inbox(harness, p["supervisor"], w.taken.number)
    await p["official_b"].send_text("/staff")
    await p["owner"].send_text("/new")
    await harness.settle()
    coordinators_card, admins_card = intent_of(p["coordinator"].last_message), intent_of(p["admin"].last_message)
    before = await rows_state(harness)

    opened: list[tuple[str, str]] = []
    for role in ROLES:
        person = p[role]
        screen = person.last_message
        own = intent_of(screen) if screen.inline_keyboard else None
        foreign = admins_card if role == "coordinator" else coordinators_card
        for intent in (GUESSED_INTENT, foreign, own):
            if intent is None:
                continue
            for widget in widgets(w, harness):
                name = widget.partition(":")[0]
                if intent == own and (
                    name in ACTS_AT_ONCE.get(role, ()) or (role == "owner" and name in FILING_OWN) or name == CLOSE
                ):
                    continue
                what = f"{role} {'own' if intent == own else intent} {widget}"
                shown = person.message(screen.message_id)
                view = (shown.text, list(shown.buttons))
                result = await press(harness, person, screen.message_id, with_intent(intent, widget))
                assert not result.sent, what
                expected = screen_for(role, widget) if intent == own else None
                if expected is not None:
                    assert expected in result.screen.text and result.answer in (None, ""), what
                    opened.append((role, widget))
                    await person.click("⬅️ Back", message_id=screen.message_id)
                    await harness.settle()
                    assert person.message(screen.message_id).text == view[0], what
                    continue
                # Nothing opens: the screen stays as it was, and the refusal is a short popup (a button the screen
                # does not have, or another dialog's, is no longer active).
                assert (result.screen.text, result.screen.buttons) == view, what
                if intent != own:
                    assert (result.answer, result.alert) == (NOT_ACTIVE, True), what
                else:
                    # Those with a card open see its appeal; the others have none.
                    refused(result, what, sees=role in ("coordinator", "admin", "official", "supervisor"))
    assert sorted(opened) == sorted(
        [(r, s) for r in ("coordinator", "admin") for s in COORDINATORS_SCREENS]
        + [(r, s) for r in ("official", "supervisor") for s in AGENCY_SCREENS]
        + [("official_b", "inbox")]
    )
    assert await rows_state(harness) == before


async def test_a_coordinator_revoked_on_a_picker_or_prompt_gets_nothing_from_it(harness: Harness) -> None:
    """The pickers and prompts check the role on every step, not only on the card: a coordinator revoked while the
    reasons, the agencies or the duplicate prompt is open can neither act from it nor move within it."""
    w = await make_world(harness)
    revoked = w.people["revoked"]
    for button, items in (
        ("⛔ Reject", ["reason:spam", "reason:unreadable", "back"]),
        ("🏢 Another agency", [f"agency:{w.agency_id}", "agency_pages:1", "back"]),
        ("🗂 Change category", ["block:1", "back"]),
        ("🔗 Duplicate of…", ["back"]),
    ):
        await open_from_queue(harness, revoked, w.waiting.number)
        await revoked.click(button)
        await harness.settle()
        screen = revoked.last_message
        intent = intent_of(screen)
        await revoke(harness, 2002)
        before = await rows_state(harness)
        for item in items:
            result = await press(harness, revoked, screen.message_id, with_intent(intent, item))
            refused(result, f"{button} {item}")
        if button == "🔗 Duplicate of…":
            await revoked.send_text(w.taken.number)
            await harness.settle()
            assert "Closed as a duplicate" not in revoked.last_message.text
        assert await rows_state(harness) == before
        # Given the role again for the next screen.
        assert harness.app is not None
        services = harness.app.services
        admin, person = await services.users.identify(ADMIN), await services.users.identify(2002)
        link = await services.access.create_invite(admin, "coordinator", None)
        await services.access.redeem(person, link.token)


async def test_the_staff_menu_and_the_admin_screens_open_only_for_their_roles(harness: Harness) -> None:
    """Every widget of the /staff menu pressed by each staff role on their own menu (real intent): each list and
    admin screen opens for its role only. Then an admin revoked on an admin screen can use none of its widgets."""
    w = await make_world(harness)
    p = w.people
    await p["revoked"].send_text("/staff")
    await harness.settle()
    await revoke(harness, 2002)
    menu_opens = {
        "coordinator": {"queue": "Queue", "reviews": "Answers to check", "requests": "Requests"},
        "admin": {
            "queue": "Queue",
            "reviews": "Answers to check",
            "requests": "Requests",
            "invite": "Invite for which role?",
            "people": "People with roles",
            "routes": "Routing matrix",
        },
        "official": {"inbox": "Inbox"},
        "official_b": {"inbox": "Inbox"},
        "supervisor": {"inbox": "Inbox"},
        "revoked": {},
    }
    before = await rows_state(harness)
    for role, opens in menu_opens.items():
        person = p[role]
        if role != "revoked":
            await person.send_text("/staff")
            await harness.settle()
        menu = person.last_message
        intent = intent_of(menu)
        for widget in ("queue", "reviews", "requests", "inbox", "invite", "people", "routes", "appeal:1", "back"):
            view = (menu.text, list(menu.buttons))
            result = await press(harness, person, menu.message_id, with_intent(intent, widget))
            what = f"{role} {widget}"
            assert not result.sent, what
            if widget in opens:
                assert opens[widget] in result.screen.text and result.answer in (None, ""), what
                await person.click("⬅️ Back", message_id=menu.message_id)
                await harness.settle()
                assert person.message(menu.message_id).text == view[0], what
            else:
                refused(result, what)
                assert (result.screen.text, result.screen.buttons) == view, what
    assert await rows_state(harness) == before

    # A second admin, on the people screen when their role is revoked.
    second = await join(harness, 9001, "administrator")
    await second.send_text("/staff")
    await harness.settle()
    await second.click("👥 People")
    await harness.settle()
    screen = second.last_message
    assert "People with roles" in screen.text
    assert harness.app is not None
    services = harness.app.services
    admin, person = await services.users.identify(ADMIN), await services.users.identify(9001)
    await services.access.revoke(admin, person.id, "admin")
    before = await rows_state(harness)
    intent = intent_of(screen)
    for widget in ("filter:official", "filter:admin", f"revoke:{admin.id}:admin", "revoke_pages:1", "role:coordinator"):
        refused(await press(harness, second, screen.message_id, with_intent(intent, widget)), widget)
    assert await rows_state(harness) == before


# --- 6. numbers a database column cannot hold -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    ["my:o:99999999999:0", "st:o:2147483648:0", "nw:u:99999999999", "bc:p:99999999999", "pl:c:1:99999999999", "my:o:-1:0"],
)
async def test_a_forged_number_beyond_the_columns_is_an_unknown_button(harness: Harness, data: str) -> None:
    """PostgreSQL refuses a parameter beyond its 32-bit INTEGER: such a press must not reach a query (an error, a
    traceback); it matches no handler and is answered like any stale button."""
    resident = await english_resident(harness)
    message_id = resident.last_message.message_id
    result = await press(harness, resident, message_id, data)
    assert result.answer == "This button is no longer active." and not result.sent and not result.edited
