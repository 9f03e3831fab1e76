"""Coordinators, officials, supervisors and admins, end to end: an appeal lives its whole life in Telegram."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiogram_dialog.utils import CB_SEP, remove_intent_id

from bot.middlewares.errors import refusal
from bot.services.errors import AppealHidden, NotYours
from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import (
    Appeal,
    AppealMessage,
    AppealRequest,
    Attachment,
    Invite,
    Outbox,
    Route,
    StatusHistory,
    UserRole,
)
from tests import factories
from tests.conftest import Harness
from tests.test_resident_e2e import english_resident, fill_until_preview

ADMIN = 9000


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


async def agency_names(harness: Harness) -> dict[int, str]:
    assert harness.app is not None
    return {a.id: a.name("en") for a in harness.app.services.directory.agencies()}


async def invite(harness: Harness, role_label: str, agency: str | None = None) -> str:
    """The admin makes an invite link through the bot and returns its start argument."""
    admin = harness.emu.user(ADMIN, language_code="en")
    await admin.send_text("/staff")
    await harness.settle()
    await admin.click("🔗 Invite")
    await harness.settle()
    await admin.click(role_label)
    await harness.settle()
    if agency is not None:
        await click_paged(harness, admin, agency)
        await harness.settle()
    text = admin.last_message.text
    assert "Single use" in text
    return text.split("?start=")[1].split()[0]


async def join(harness: Harness, tg_id: int, role_label: str, agency: str | None = None) -> EmulatedUser:
    argument = await invite(harness, role_label, agency)
    person = harness.emu.user(tg_id, language_code="en")
    await person.send_text(f"/start {argument}")
    await harness.settle()
    assert "Welcome to the team" in person.last_message.text
    return person


async def filed_appeal(harness: Harness, resident: EmulatedUser) -> Appeal:
    await fill_until_preview(harness, resident)
    await resident.click("✅ Confirm")
    await harness.settle()
    return (await harness.rows(Appeal))[-1]


def category_id(harness: Harness, code: str) -> int:
    assert harness.app is not None
    directory = harness.app.services.directory
    return next(c.id for b in directory.blocks() for c in directory.categories(b.id) if c.code == code)


def district_id(harness: Harness, code: str) -> int:
    assert harness.app is not None
    return next(d.id for d in harness.app.services.directory.districts() if d.code == code)


async def service_appeal(
    harness: Harness, tg_id: int, category: str = "housing_water", district: str = "grozny", **changes: object
) -> Appeal:
    """An appeal filed through the services by a resident whose chat with the bot is open (faster than the dialog,
    for tests about what staff do with many appeals)."""
    assert harness.app is not None
    services = harness.app.services
    harness.emu.user(tg_id, language_code="en").open_chat()
    actor = await factories.resident(services, tg_id)
    values: dict[str, object] = {
        "draft_id": f"draft-{tg_id}-{len(await harness.rows(Appeal))}",
        "category_id": category_id(harness, category),
        "district_id": district_id(harness, district),
        "attachments": (),
    }
    filed = await services.appeals.file(actor, factories.draft(services, **{**values, **changes}))
    [row] = await harness.rows(Appeal, Appeal.id == filed.id)
    return row


async def suggested_agency(harness: Harness, appeal: Appeal) -> tuple[int, str]:
    [route] = await harness.rows(Route, Route.category_id == appeal.category_id, Route.district_id == appeal.district_id)
    return route.agency_id, (await agency_names(harness))[route.agency_id]


async def open_from_queue(harness: Harness, coordinator: EmulatedUser, number: str) -> None:
    await coordinator.send_text("/staff")
    await harness.settle()
    await coordinator.click("📥 Queue")
    await harness.settle()
    await coordinator.click(next(b for b in coordinator.last_message.buttons if number in b))
    await harness.settle()


async def open_from_inbox(harness: Harness, official: EmulatedUser, number: str) -> None:
    await official.send_text("/staff")
    await harness.settle()
    await official.click("📂 Inbox of my agency")
    await harness.settle()
    await official.click(next(b for b in official.last_message.buttons if number in b))
    await harness.settle()


def forged(screen: BotMessage, widget: str) -> str:
    """The callback data of a button the screen does not show: its dialog's intent with another widget's id."""
    intent, _data = remove_intent_id(screen.inline_keyboard[0][0][1] or "")
    return f"{intent}{CB_SEP}{widget}"


async def click_paged(harness: Harness, user: EmulatedUser, text: str) -> None:
    """Press the button `text` of a picker, from the short list or behind «All agencies», turning its pages («>»)
    until it shows."""
    for _page in range(10):
        if text in user.last_message.buttons:
            await user.click(text)
            return
        await user.click("📚 All agencies" if "📚 All agencies" in user.last_message.buttons else ">")
        await harness.settle()
    raise AssertionError(f"no {text!r} on any page")


@pytest.mark.parametrize("bot_mode", ["polling", "webhook"])
async def test_the_whole_life_of_an_appeal(harness: Harness) -> None:
    resident = await english_resident(harness, 1001)
    appeal = await filed_appeal(harness, resident)
    agency_id, agency_name = await suggested_agency(harness, appeal)
    _other_id, other_name = next((i, n) for i, n in (await agency_names(harness)).items() if i != agency_id)

    coordinator = await join(harness, 2001, "RMC coordinator")
    official = await join(harness, 3001, "official", agency_name)
    stranger = await join(harness, 3002, "official", other_name)
    supervisor = await join(harness, 3003, "head of agency", agency_name)
    roles = {(r.user_id, r.role, r.agency_id) for r in await harness.rows(UserRole)}
    assert len(roles) == 5  # the admin and four invited

    # Triage: the queue shows the new appeal with counts; route to the suggested agency.
    await open_from_queue(harness, coordinator, appeal.number)
    card = coordinator.last_message
    assert f"Appeal № {appeal.number}" in card.text and "On moderation" in card.text
    await coordinator.click(f"➡️ Route to {agency_name}")
    await harness.settle()
    assert "Sent to the responsible body" in resident.last_message.text
    for person in (official, supervisor):
        assignment = person.last_message
        assert f"New appeal № {appeal.number}" in assignment.text
        # The assignment carries the card (topic, place, deadline, text) and the action buttons.
        assert "Due:" in assignment.text and "Grozny, Mira street 12" in assignment.text
        assert "No water in our building" in assignment.text
        assert assignment.buttons == ["Open", "🛠 Take in work"]
    assert not any(appeal.number in m.text for m in stranger.messages[1:])
    [row] = await harness.rows(Appeal, Appeal.id == appeal.id)
    assert row.status == "assigned" and row.agency_id == agency_id and row.deadline_at is not None

    # The official opens it: the notification's message becomes the card (with the notification's buttons gone).
    notification = official.last_message
    await official.click("Open")
    await harness.settle()
    opened = official.message(notification.message_id)
    assert opened.text.startswith(f"Appeal № {appeal.number}") and "Due:" in opened.text
    assert "🛠 Take in work" in opened.buttons and "Open" not in opened.buttons
    assert official.last_message.message_id == notification.message_id
    # The official takes it and asks the resident.
    await official.click("🛠 Take in work")
    await harness.settle()
    assert "In progress" in resident.last_message.text
    await official.click("❓ Ask the resident")
    await harness.settle()
    await official.send_text("Which entrance of the building has no water?")
    await harness.settle()
    question = resident.last_message
    assert "Which entrance of the building has no water?" in question.text and "paused" in question.text
    [row] = await harness.rows(Appeal, Appeal.id == appeal.id)
    assert row.status == "clarification" and row.paused_at is not None

    # The resident replies with text and a photo; both reach the official.
    harness.clock.advance(days=1)
    await resident.click("✍️ Reply")
    await harness.settle()
    await resident.send_text("Entrance 3, since Monday")
    await resident.send_photo()
    await harness.settle()
    await resident.click("📤 Send the reply")
    await harness.settle()
    assert "Your reply is sent" in resident.last_message.text
    reply_note = next(m for m in official.messages if "The resident replied" in m.text)
    assert "Entrance 3, since Monday" in reply_note.text
    assert official.last_message.kind == "photo"
    [row] = await harness.rows(Appeal, Appeal.id == appeal.id)
    # A day, plus the seconds the sender waited (on the test's clock) to keep one message a second per chat.
    assert row.status == "in_progress" and 86400 <= row.paused_seconds <= 86400 + 5
    assert len(await harness.rows(Attachment, Attachment.source == "clarification")) == 1

    # The official answers; the coordinator returns it; the official answers again; approved.
    await official.click("Open")
    await harness.settle()
    await official.click("✅ Final answer")
    await harness.settle()
    await official.send_text("Water will be back tomorrow.")
    await harness.settle()
    await official.click("📤 Send")
    await harness.settle()
    assert "answer went to the RMC" in " ".join(a["text"] or "" for a in official.callback_answers[-1:])
    assert f"An answer on appeal № {appeal.number} waits for your check" in coordinator.last_message.text
    await coordinator.click("Open")
    await harness.settle()
    await coordinator.click("↩️ Return for rework")
    await harness.settle()
    await coordinator.send_text("Give the exact time and who is responsible.")
    await harness.settle()
    assert "returned for rework" in official.last_message.text and "exact time" in official.last_message.text
    await official.click("Open")
    await harness.settle()
    await official.click("✅ Final answer")
    await harness.settle()
    await official.send_text("Water supply in entrance 3 is restored on 4 November by 10:00; the vodokanal is responsible.")
    await harness.settle()
    await official.send_document(file_name="act.pdf")
    await harness.settle()
    await official.click("📤 Send")
    await harness.settle()
    await coordinator.click("Open")
    await harness.settle()
    await coordinator.click("✅ Approve the answer")
    await harness.settle()

    answer = next(m for m in resident.messages if "Answer to your appeal" in (m.text or ""))
    assert "restored on 4 November" in answer.text
    # The answer's file follows it, then the request to rate it (issue 12).
    assert [m.kind for m in resident.messages[-2:]] == ["document", "text"]
    assert "Please rate it" in resident.last_message.text and len(resident.last_message.buttons) == 5
    assert not any("Water will be back tomorrow" in (m.text or "") for m in resident.messages)  # the returned one never reached them

    # The resident sees the whole history.
    await resident.send_text("/my")
    await harness.settle()
    await resident.click(next(b for b in resident.last_message.buttons if appeal.number in b))
    await harness.settle()
    history = resident.last_message.text.split("History:")[1]
    for step in (
        "Filed and sent to moderation",
        f"Sent to {agency_name}",
        "Taken in work",
        "A clarification was requested",
        "The clarification was received",
        "The answer is prepared",
        "The answer is given",
    ):
        assert step in history
    # The return for rework and its comment are between the ЦУР and the agency.
    assert "rework" not in history and "exact time" not in resident.last_message.text
    steps = [(h.from_status, h.to_status) for h in await harness.rows(StatusHistory, StatusHistory.appeal_id == appeal.id)]
    assert steps == [
        (None, "moderation"),
        ("moderation", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "clarification"),
        ("clarification", "in_progress"),
        ("in_progress", "answer_review"),
        ("answer_review", "in_progress"),
        ("in_progress", "answer_review"),
        ("answer_review", "answered"),
    ]
    # Every notification was delivered, none twice.
    outbox = await harness.rows(Outbox)
    assert outbox and all(o.status == "sent" for o in outbox)

    # Another agency's official forging a button for this appeal gets nothing.
    sent = len(stranger.messages)
    for action in ("o", "t", "an", "cl", "f"):
        await stranger.press_callback(stranger.last_message.message_id, f"st:{action}:{appeal.id}:0:")
        await harness.settle()
    assert len(stranger.messages) == sent
    assert all(a["text"] == "Appeal not found." for a in stranger.callback_answers[-5:])
    # And a resident forging a staff button gets nothing either.
    before = len(resident.messages)
    await resident.press_callback(resident.last_message.message_id, f"st:o:{appeal.id}:0:")
    await harness.settle()
    assert len(resident.messages) == before


async def test_reject_with_a_reason_the_resident_reads(harness: Harness) -> None:
    resident = await english_resident(harness, 1001)
    appeal = await filed_appeal(harness, resident)
    coordinator = await join(harness, 2001, "RMC coordinator")
    await open_from_queue(harness, coordinator, appeal.number)
    await coordinator.click("⛔ Reject")
    await harness.settle()
    await coordinator.click(next(b for b in coordinator.last_message.buttons if "spam" in b))
    await harness.settle()
    assert "left without consideration" in resident.last_message.text and "spam or advertising" in resident.last_message.text
    [row] = await harness.rows(Appeal)
    assert row.status == "rejected" and row.reject_reason == "spam"


async def test_duplicate_follows_the_original(harness: Harness) -> None:
    first = await english_resident(harness, 1001)
    original = await filed_appeal(harness, first)
    second = await english_resident(harness, 1002)
    duplicate = await filed_appeal(harness, second)
    coordinator = await join(harness, 2001, "RMC coordinator")
    await open_from_queue(harness, coordinator, duplicate.number)
    await coordinator.click("🔗 Duplicate of…")
    await harness.settle()
    await coordinator.send_text("2099-000001")
    await harness.settle()
    assert "No such appeal" in coordinator.last_message.text
    await coordinator.send_text(original.number)
    await harness.settle()
    assert f"same problem as appeal № {original.number}" in second.last_message.text
    # The original moves on: the duplicate's resident is told too.
    await open_from_queue(harness, coordinator, original.number)
    await coordinator.click(next(b for b in coordinator.last_message.buttons if b.startswith("➡️ Route to")))
    await harness.settle()
    assert f"№ {original.number}" in second.last_message.text and "Sent to the responsible body" in second.last_message.text


async def staffed_appeal(harness: Harness) -> tuple[EmulatedUser, EmulatedUser, EmulatedUser, Appeal, str]:
    resident = await english_resident(harness, 1001)
    appeal = await filed_appeal(harness, resident)
    _agency_id, agency_name = await suggested_agency(harness, appeal)
    coordinator = await join(harness, 2001, "RMC coordinator")
    official = await join(harness, 3001, "official", agency_name)
    await open_from_queue(harness, coordinator, appeal.number)
    await coordinator.click(f"➡️ Route to {agency_name}")
    await harness.settle()
    await official.click("Open")
    await harness.settle()
    await official.click("🛠 Take in work")
    await harness.settle()
    return resident, coordinator, official, appeal, agency_name


async def test_redirect_requested_by_the_official_and_approved(harness: Harness) -> None:
    _resident, coordinator, official, appeal, agency_name = await staffed_appeal(harness)
    other_id, other_name = next((i, n) for i, n in (await agency_names(harness)).items() if n != agency_name)
    other_official = await join(harness, 3010, "official", other_name)
    await official.click("↪️ Redirect")
    await harness.settle()
    await click_paged(harness, official, other_name)
    await harness.settle()
    await official.send_text("The road belongs to the republic, not to the district")
    await harness.settle()
    assert f"asks for a redirect on appeal № {appeal.number}" in coordinator.last_message.text
    await coordinator.click("Open")
    await harness.settle()
    assert "Redirect requested" in coordinator.last_message.text or "Redirect requested" in coordinator.messages[-2].text
    await coordinator.click("✅ Approve redirect")
    await harness.settle()
    assert "redirect request on appeal" in official.last_message.text and "approved" in official.last_message.text
    assert f"New appeal № {appeal.number}" in other_official.last_message.text
    [row] = await harness.rows(Appeal)
    assert row.agency_id == other_id and row.status == "assigned"
    [request] = await harness.rows(AppealRequest)
    assert request.status == "approved"


async def test_a_second_extension_while_the_first_waits_is_told_and_the_card_comes_back(harness: Harness) -> None:
    """The card still offers «Ask for an extension» while a request waits; typed to its end, the second one is
    refused with the reason and the card shown again, not the reason step asked again and again (QA)."""
    _resident, _coordinator, official, appeal, _name = await staffed_appeal(harness)
    for _attempt in range(2):
        await official.click("⏳ Ask for an extension")
        await harness.settle()
        await official.send_text("10")
        await harness.settle()
        await official.send_text("Waiting for the results of a laboratory test")
        await harness.settle()
    said, card = (official.last_message.text or "").split("\n\n", 1)
    assert said == "A request of this kind on this appeal is already waiting for the Regional Management Center's decision."
    assert card.startswith(f"Appeal № {appeal.number}")
    assert len(await harness.rows(AppealRequest)) == 1
    # Out of the step: a text now is no reason for a request.
    await official.send_text("hello")
    await harness.settle()
    assert "already waiting" not in (official.last_message.text or "")
    assert len(await harness.rows(AppealRequest)) == 1


async def test_extension_once_and_the_resident_learns_the_new_date(harness: Harness) -> None:
    resident, coordinator, official, appeal, _name = await staffed_appeal(harness)
    [before] = await harness.rows(Appeal)
    await official.click("⏳ Ask for an extension")
    await harness.settle()
    await official.send_text("45")
    await harness.settle()
    assert "number from 1 to 30" in official.last_message.text
    await official.send_text("20")
    await harness.settle()
    await official.send_text("Waiting for the results of a laboratory test")
    await harness.settle()
    await coordinator.click("Open")
    await harness.settle()
    await coordinator.click("✅ Approve extension")
    await harness.settle()
    [after] = await harness.rows(Appeal)
    assert after.extension_used and after.deadline_at - before.deadline_at >= timedelta(days=20)
    assert "is extended to" in resident.last_message.text
    # Once per appeal. The card still on the screen offers it, but pressing it opens nothing now.
    shown = official.last_message
    await official.click("⏳ Ask for an extension")
    await harness.settle()
    assert official.callback_answers[-1]["text"] == "This action is not possible now."
    assert official.last_message.message_id == shown.message_id and official.last_message.text == shown.text
    # The card opened afresh has no such button, and the hidden button forged with the card's own intent is
    # refused as well: no prompt, and what is typed after it files nothing.
    await open_from_inbox(harness, official, appeal.number)
    card = official.last_message
    assert f"Appeal № {appeal.number}" in card.text and "⏳ Ask for an extension" not in card.buttons
    await official.press_callback(card.message_id, forged(card, "extension"))
    await harness.settle()
    assert official.callback_answers[-1]["text"] == "This action is not possible now."
    assert official.last_message.message_id == card.message_id and official.last_message.text == card.text
    await official.send_text("10")
    await official.send_text("Once more please")
    await harness.settle()
    assert "Please choose one of the buttons." in official.last_message.text
    assert len(await harness.rows(AppealRequest)) == 1


@pytest.mark.parametrize("bot_mode", ["polling", "webhook"])
async def test_invites_used_expired_and_reused(harness: Harness) -> None:
    argument = await invite(harness, "analyst")
    first = harness.emu.user(5001, language_code="en")
    await first.send_text(f"/start {argument}")
    await harness.settle()
    assert "Welcome to the team" in first.last_message.text
    second = harness.emu.user(5002, language_code="en")
    await second.send_text(f"/start {argument}")
    await harness.settle()
    assert "already been used" in second.last_message.text
    late = await invite(harness, "editor")
    harness.clock.advance(hours=73)
    await second.send_text(f"/start {late}")
    await harness.settle()
    assert "has expired" in second.last_message.text
    await second.send_text("/start inv_forged")
    await harness.settle()
    assert "not valid" in second.last_message.text
    roles = await harness.rows(UserRole)
    assert sorted(r.role for r in roles) == ["admin", "analyst"]
    invites = await harness.rows(Invite)
    assert [i.used_by is not None for i in invites] == [True, False]


async def test_admin_lists_people_revokes_and_edits_routing(harness: Harness) -> None:
    await join(harness, 2001, "RMC coordinator")
    admin = harness.emu.user(ADMIN, language_code="en")
    await admin.send_text("/staff")
    await harness.settle()
    menu = admin.last_message
    await admin.click("👥 People")
    await harness.settle()
    assert admin.last_message.message_id == menu.message_id  # the menu's message shows the people now
    assert "2001" in admin.last_message.text
    await admin.click(next(b for b in admin.last_message.buttons if "2001" in b))
    await harness.settle()
    await admin.click("✖ Revoke")
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "Role revoked."
    assert [r.role for r in await harness.rows(UserRole)] == ["admin"]
    assert "2001" not in admin.last_message.text  # the list is shown again, without them
    # The stale button of the revoked role (pressed again) is refused.
    await admin.press_callback(menu.message_id, forged(admin.last_message, "revoke:2:coordinator"))
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "This option is no longer available."

    await admin.click("⬅️ Back")
    await harness.settle()
    await admin.click("🗺 Routing")
    await harness.settle()
    await admin.click("Roads")
    await harness.settle()
    await admin.click(admin.last_message.inline_keyboard[0][0][0])
    await harness.settle()
    assert "Grozny →" in admin.last_message.text
    await admin.click("Argun")
    await harness.settle()
    target = admin.last_message.inline_keyboard[0][0][0]
    await admin.click(target)
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "Saved."
    assert f"Argun → {target}" in admin.last_message.text  # back at the districts, the change shown
    agency_id = next(i for i, name in (await agency_names(harness)).items() if name == target)
    routes = await harness.rows(Route, Route.agency_id == agency_id, Route.edited_by.is_not(None))
    assert len(routes) == 1
    assert admin.last_message.message_id == menu.message_id
    assert len([m for m in admin.messages if m.message_id > menu.message_id]) == 0


async def test_staff_menu_is_refused_to_residents_and_forged_admin_buttons_do_nothing(harness: Harness) -> None:
    resident = await english_resident(harness, 1001)
    await resident.send_text("/staff")
    await harness.settle()
    assert "for the staff" in resident.last_message.text
    sent = len(resident.messages)
    for forged in ("ad:i:0:", "ad:ir:0:coordinator", "ad:ia:1:official", "ad:p:0:", "ad:rv:1:admin", "ad:rs:1:1.1", "st:o:0:1:", "st:r:1:0:"):
        await resident.press_callback(resident.last_message.message_id, forged)
        await harness.settle()
    assert len(resident.messages) == sent
    assert [r.role for r in await harness.rows(UserRole)] == ["admin"]
    assert await harness.rows(Invite) == []
    assert await harness.rows(AppealMessage) == []


def chat_calls(harness: Harness, user: EmulatedUser, *methods: str) -> int:
    """How many calls the bot made that show something in the person's chat (sent or edited)."""
    wanted = {m.lower() for m in methods}
    return sum(1 for c in harness.emu.calls(ok=True) if c.method.lower() in wanted and c.params.get("chat_id") == user.id)


SHOWING = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "sendLocation", "sendPhoto", "sendDocument", "sendMediaGroup")
REFUSALS = {"Appeal not found.", "This is not available to you.", "This action is not possible now.", "This button is no longer active."}
# To a person who may see the appeal: who may do what they tried.
REFUSALS |= {
    "Only the Regional Management Center routes appeals.",
    "Only the Regional Management Center can change the category or the kind of an appeal.",
    "Only the Regional Management Center can reject an appeal.",
    "Only the Regional Management Center can close an appeal as a duplicate.",
    "Only the Regional Management Center checks the answers.",
    "Only the agency the appeal is assigned to can do this.",
}


@pytest.mark.parametrize("bot_mode", ["polling", "webhook"])
async def test_a_coordinator_routes_the_queue_on_one_message(harness: Harness) -> None:
    """A typical session, bounded: the queue, each of 12 cards opened from it and the queue again after each routing
    are edits of the menu's message, so the chat holds one message (plus the command), not a card per action."""
    appeals = [await service_appeal(harness, 1001 + i) for i in range(12)]
    coordinator = await join(harness, 2001, "RMC coordinator")
    sent_before, edits_before = chat_calls(harness, coordinator, "sendMessage"), chat_calls(harness, coordinator, "editMessageText")
    shown_before = chat_calls(harness, coordinator, *SHOWING)

    await coordinator.send_text("/staff")
    await harness.settle()
    menu = coordinator.last_message
    await coordinator.click("📥 Queue")
    await harness.settle()
    assert "<b>Queue</b>: new 12" in coordinator.last_message.html
    for appeal in appeals:
        await coordinator.click(next(b for b in coordinator.last_message.buttons if appeal.number in b))
        await harness.settle()
        assert f"Appeal № {appeal.number}" in coordinator.last_message.text
        await coordinator.click(next(b for b in coordinator.last_message.buttons if b.startswith("➡️ Route to")))
        await harness.settle()
        assert coordinator.callback_answers[-1]["text"] == "Sent to the agency."
        # Back at the queue, refreshed: the routed appeal is off it.
        assert "Queue" in coordinator.last_message.text
        assert not any(appeal.number in b for b in coordinator.last_message.buttons)

    assert {row.status for row in await harness.rows(Appeal)} == {"assigned"}
    assert coordinator.last_message.message_id == menu.message_id
    # One message for the session (the menu's), and one edit per press: Queue, then open and route per appeal.
    assert chat_calls(harness, coordinator, "sendMessage") - sent_before == 1
    assert chat_calls(harness, coordinator, "editMessageText") - edits_before <= 1 + 2 * len(appeals)
    # The bound of the whole session: tens of calls that show something, not the 80 of a card and a pin per action.
    assert chat_calls(harness, coordinator, *SHOWING) - shown_before <= 2 + 2 * len(appeals)
    assert len([m for m in coordinator.messages if m.message_id >= menu.message_id]) == 1
    assert "<b>Queue</b>: new 0" in coordinator.last_message.html


async def test_forged_staff_buttons_open_nothing_for_residents_strangers_and_the_revoked(harness: Harness) -> None:
    resident, coordinator, official, taken, agency_name = await staffed_appeal(harness)
    waiting = await filed_appeal(harness, resident)
    other_name = next(n for n in (await agency_names(harness)).values() if n != agency_name)
    stranger = await join(harness, 3002, "official", other_name)
    # The coordinator has the card of a waiting appeal open when their role is revoked.
    await open_from_queue(harness, coordinator, waiting.number)
    card = coordinator.last_message
    assert "⛔ Reject" in card.buttons
    assert harness.app is not None
    services = harness.app.services
    admin_actor, revoked = await services.users.identify(ADMIN), await services.users.identify(2001)
    await services.access.revoke(admin_actor, revoked.id, "coordinator")

    before = {row.id: row.status for row in await harness.rows(Appeal)}
    entries = ("o", "t", "ca", "sc", "rj", "rr", "rd", "rdt", "sb", "ex", "an", "cl", "du", "ap", "dc", "r", "rt", "f")
    for person in (resident, stranger, coordinator):
        shown = chat_calls(harness, person, *SHOWING)
        pressed = len(person.callback_answers)
        for appeal in (taken, waiting):
            for action in entries:
                await person.press_callback(person.last_message.message_id, f"st:{action}:{appeal.id}:1:spam")
        await harness.settle()
        answers = person.callback_answers[pressed:]
        assert len(answers) == 2 * len(entries)
        assert all(a["text"] in REFUSALS and a["show_alert"] for a in answers), answers
        assert chat_calls(harness, person, *SHOWING) == shown, person
    # The revoked coordinator's open card: every button is refused, and the card stays as it was.
    shown = chat_calls(harness, coordinator, *SHOWING)
    pressed = len(coordinator.callback_answers)
    for label in ("⛔ Reject", "🏢 Another agency", "🗂 Change category", "🔗 Duplicate of…", "🔁 Change kind"):
        await coordinator.click(label, message_id=card.message_id)
    await coordinator.click(next(b for b in card.buttons if b.startswith("➡️ Route to")), message_id=card.message_id)
    for widget in ("reasons", "reject", "duplicate", "agencies", "route_to", "category", "blocks"):
        await coordinator.press_callback(card.message_id, forged(card, widget))
    await harness.settle()
    answers = coordinator.callback_answers[pressed:]
    assert len(answers) == 13 and all(a["text"] in REFUSALS for a in answers), answers
    assert chat_calls(harness, coordinator, *SHOWING) == shown
    assert coordinator.message(card.message_id).text == card.text
    await coordinator.send_text("/staff")
    await harness.settle()
    assert "for the staff" in coordinator.last_message.text
    # The official of the appeal's agency: the coordinators' screens of their own card are refused too.
    official_card = next(m for m in reversed(official.messages) if "✅ Final answer" in m.buttons)
    shown = chat_calls(harness, official, *SHOWING)
    pressed = len(official.callback_answers)
    for widget in ("reject", "route_to", "category", "duplicate", "send_back", "approve", "route", "kind"):
        await official.press_callback(official_card.message_id, forged(official_card, widget))
    await harness.settle()
    answers = official.callback_answers[pressed:]
    assert len(answers) == 8 and all(a["text"] in REFUSALS for a in answers), answers
    assert chat_calls(harness, official, *SHOWING) == shown

    assert {row.id: row.status for row in await harness.rows(Appeal)} == before
    assert await harness.rows(AppealRequest) == []
    assert [m.kind for m in await harness.rows(AppealMessage)] == []


async def test_typed_input_wants_text_and_back_returns_to_the_card(harness: Harness) -> None:
    _resident, _coordinator, official, appeal, _name = await staffed_appeal(harness)
    card = official.last_message
    await official.click("❓ Ask the resident")
    await harness.settle()
    assert official.last_message.message_id == card.message_id  # the prompt is the card's message
    assert "Type the question to the resident" in official.last_message.text
    await official.send_photo()
    await harness.settle()
    assert "Please type the text, or /cancel." in official.last_message.text
    assert "Type the question to the resident" in official.last_message.text
    await official.click("⬅️ Back")
    await harness.settle()
    assert f"Appeal № {appeal.number}" in official.last_message.text and "❓ Ask the resident" in official.last_message.buttons
    assert await harness.rows(AppealMessage) == []
    # /staff starts afresh: the card loses its buttons, and a press of one still on a client is refused.
    current = official.last_message
    stale = current.button_data("❓ Ask the resident")
    assert stale is not None
    await official.send_text("/staff")
    await harness.settle()
    assert official.message(current.message_id).buttons == []
    await official.press_callback(current.message_id, stale)
    await harness.settle()
    assert official.callback_answers[-1]["text"] == "This button is no longer active."
    assert "Type the question" not in official.message(current.message_id).text


# --- less friction for staff (issue 10) ---------------------------------------------------------------------


async def test_queue_and_inbox_rows_say_what_the_appeal_is_about(harness: Harness) -> None:
    """A coordinator triages from the rows: topic, district and age; an agency's inbox adds the deadline. The rows stay
    within Telegram's 64 characters of a button even for the longest names."""
    potholes = await service_appeal(harness, 1001, "roads_potholes", "argun")
    harness.clock.advance(days=3, hours=2)
    longest = await service_appeal(harness, 1002, "housing_building", "achkhoy_martanovsky")
    harness.clock.advance(hours=5)
    coordinator = await join(harness, 2001, "RMC coordinator")
    await coordinator.send_text("/staff")
    await harness.settle()
    await coordinator.click("📥 Queue")
    await harness.settle()
    rows = coordinator.last_message.buttons
    first = next(b for b in rows if potholes.number in b)
    assert "Potholes" in first and "Argun" in first and "3 d." in first
    second = next(b for b in rows if longest.number in b)
    assert "Roofs" in second and "Achkhoy" in second and "5 h." in second
    assert all(len(b) <= 64 for b in rows), rows

    # Routed to one agency: its official's inbox names the deadline too, the overdue first and marked.
    assert harness.app is not None
    services = harness.app.services
    agency_id, agency_name = await suggested_agency(harness, potholes)
    official = await join(harness, 3001, "official", agency_name)
    actor = await services.users.identify(2001)
    for appeal in (potholes, longest):
        await services.coordination.route(actor, appeal.id, agency_id)
    await harness.settle()
    [routed] = await harness.rows(Appeal, Appeal.id == potholes.id)
    assert routed.deadline_at is not None
    harness.clock.set(routed.deadline_at + timedelta(hours=1))
    await official.send_text("/staff")
    await harness.settle()
    await official.click("📂 Inbox of my agency")
    await harness.settle()
    rows = official.last_message.buttons
    overdue = next(b for b in rows if potholes.number in b)
    due = routed.deadline_at.astimezone(harness.settings.tz).strftime("%d.%m")
    assert overdue.startswith("⚠️") and "Potholes" in overdue and "Argun" in overdue and f"due {due}" in overdue
    assert rows.index(overdue) < next(i for i, b in enumerate(rows) if longest.number in b)
    assert all(len(b) <= 64 for b in rows), rows


async def test_to_the_list_sends_the_list_and_keeps_the_card(harness: Harness) -> None:
    appeals = [await service_appeal(harness, 1001 + i) for i in range(2)]
    coordinator = await join(harness, 2001, "RMC coordinator")
    await open_from_queue(harness, coordinator, appeals[0].number)
    card = coordinator.last_message
    assert f"Appeal № {appeals[0].number}" in card.text and "📋 To the list" in card.buttons
    await coordinator.click("📋 To the list")
    await harness.settle()
    listing = coordinator.last_message
    assert listing.message_id != card.message_id and "<b>Queue</b>: new 2" in listing.html
    assert any(appeals[1].number in b for b in listing.buttons)
    # The card stays in the chat as it was (its buttons, now of a closed screen, are taken away).
    kept = coordinator.message(card.message_id)
    assert kept.text == card.text and kept.buttons == []
    # The list sent anew works: the next card opens on it.
    await coordinator.click(next(b for b in listing.buttons if appeals[1].number in b))
    await harness.settle()
    assert coordinator.last_message.message_id == listing.message_id
    assert f"Appeal № {appeals[1].number}" in coordinator.last_message.text


async def test_decided_requests_and_extensions_carry_an_open_button(harness: Harness) -> None:
    resident, coordinator, official, appeal, agency_name = await staffed_appeal(harness)
    other_name = next(n for n in (await agency_names(harness)).values() if n != agency_name)
    # An extension approved: the official's notice opens the card, the resident's opens the appeal.
    await official.click("⏳ Ask for an extension")
    await harness.settle()
    await official.send_text("10")
    await harness.settle()
    await official.send_text("Waiting for the results of a laboratory test")
    await harness.settle()
    await coordinator.click("Open")
    await harness.settle()
    await coordinator.click("✅ Approve extension")
    await harness.settle()
    decided = official.last_message
    assert "extension request" in decided.text and "approved" in decided.text
    assert decided.buttons == ["Open"]
    extended = resident.last_message
    assert "is extended to" in extended.text and extended.buttons == ["Open the appeal"]
    await official.click("Open")
    await harness.settle()
    assert official.message(decided.message_id).text.startswith(f"Appeal № {appeal.number}")
    await resident.click("Open the appeal")
    await harness.settle()
    assert appeal.number in resident.last_message.text

    # A redirect declined: the appeal stays with the agency, the notice opens it.
    await official.click("↪️ Redirect")
    await harness.settle()
    await click_paged(harness, official, other_name)
    await harness.settle()
    await official.send_text("The road belongs to the republic")
    await harness.settle()
    await coordinator.click("Open")
    await harness.settle()
    await coordinator.click("❌ Decline redirect")
    await harness.settle()
    declined = official.last_message
    assert "redirect request" in declined.text and "declined" in declined.text and declined.buttons == ["Open"]

    # A redirect approved: the appeal left the agency, so the requester's notice has nothing to open; the new agency's
    # assignment has its Open.
    other_official = await join(harness, 3010, "official", other_name)
    await open_from_inbox(harness, official, appeal.number)
    await official.click("↪️ Redirect")
    await harness.settle()
    await click_paged(harness, official, other_name)
    await harness.settle()
    await official.send_text("The road belongs to the republic, really")
    await harness.settle()
    await coordinator.click("Open")
    await harness.settle()
    await coordinator.click("✅ Approve redirect")
    await harness.settle()
    approved = official.last_message
    assert "redirect request" in approved.text and "approved" in approved.text and approved.buttons == []
    assert "Open" in other_official.last_message.buttons


async def test_a_refusal_on_a_visible_appeal_says_who_may_act(harness: Harness) -> None:
    """The official sees the appeal, so a coordinator's screen is refused with who may do it; a coordinator is told
    the agency's work is the agency's; residents and other agencies still meet "not found"."""
    resident, coordinator, official, appeal, agency_name = await staffed_appeal(harness)
    other_name = next(n for n in (await agency_names(harness)).values() if n != agency_name)
    stranger = await join(harness, 3002, "official", other_name)
    card = next(m for m in reversed(official.messages) if "✅ Final answer" in m.buttons)
    for widget, said in (
        ("reject", "Only the Regional Management Center can reject an appeal."),
        ("route_to", "Only the Regional Management Center routes appeals."),
        ("duplicate", "Only the Regional Management Center can close an appeal as a duplicate."),
        ("send_back", "Only the Regional Management Center checks the answers."),
    ):
        await official.press_callback(card.message_id, forged(card, widget))
        await harness.settle()
        assert official.callback_answers[-1]["text"] == said

    # The coordinator's card of the appeal: the agency's work is refused with who does it, on the screen and in the
    # service.
    await coordinator.press_callback(coordinator.last_message.message_id, f"st:o:{appeal.id}:0:")
    await harness.settle()
    boss_card = coordinator.last_message
    assert f"Appeal № {appeal.number}" in boss_card.text
    for widget in ("answer", "take", "clarify"):
        await coordinator.press_callback(boss_card.message_id, forged(boss_card, widget))
        await harness.settle()
        assert coordinator.callback_answers[-1]["text"] == "Only the agency the appeal is assigned to can do this."
    assert coordinator.message(boss_card.message_id).text == boss_card.text
    assert harness.app is not None
    services = harness.app.services
    with pytest.raises(NotYours) as caught:
        await services.agency.answer(await services.users.identify(2001), appeal.id, "An answer by the coordinator")
    assert not isinstance(caught.value, AppealHidden)

    # Those who may not see the appeal: not found, as before.
    for person in (resident, stranger):
        with pytest.raises(AppealHidden) as hidden:
            await services.coordination.reject(await services.users.identify(person.id), appeal.id, "spam")
        with harness.app.i18n.context(), harness.app.i18n.use_locale("en"):
            assert refusal(hidden.value) == "Appeal not found."
    [row] = await harness.rows(Appeal)
    assert row.status == "in_progress"


async def test_marking_a_duplicate_offers_the_residents_and_the_nearby_open_appeals(harness: Harness) -> None:
    """Offered: the resident's other open appeals, and open appeals of the same category in the same district or
    within NEARBY_METERS when both have coordinates. Not offered: closed ones, other categories, far away."""
    grozny = {"latitude": 43.3180, "longitude": 45.6980}
    duplicate = await service_appeal(harness, 1001, "roads_potholes", "grozny", **grozny)
    own = await service_appeal(harness, 1001, "housing_water", "grozny")  # the same resident, another topic
    same_district = await service_appeal(harness, 1002, "roads_potholes", "grozny")
    # 400 m away, across the border of another district.
    near = await service_appeal(harness, 1003, "roads_potholes", "groznensky", latitude=43.3216, longitude=45.6980)
    far = await service_appeal(harness, 1004, "roads_potholes", "shatoysky", latitude=42.87, longitude=45.69)
    other_topic = await service_appeal(harness, 1005, "housing_water", "grozny")
    closed = await service_appeal(harness, 1006, "roads_potholes", "grozny")
    assert harness.app is not None
    services = harness.app.services
    coordinator = await join(harness, 2001, "RMC coordinator")
    await services.coordination.reject(await services.users.identify(2001), closed.id, "spam")

    await open_from_queue(harness, coordinator, duplicate.number)
    await coordinator.click("🔗 Duplicate of…")
    await harness.settle()
    screen = coordinator.last_message
    assert "Type the number of the original appeal" in screen.text
    offered = [b for b in screen.buttons if "№" in b]
    for appeal in (own, same_district, near):
        assert any(appeal.number in b for b in offered), (appeal.number, offered)
    for appeal in (far, other_topic, closed):
        assert not any(appeal.number in b for b in offered), (appeal.number, offered)
    assert "same resident" in next(b for b in offered if own.number in b)
    assert "400 m" in next(b for b in offered if near.number in b)
    assert all(len(b) <= 64 for b in screen.buttons)

    # Typed, as the bot writes numbers («№ …»): the appeal's own number and a closed one are refused with the reason,
    # and the prompt stays.
    for typed, said in (
        (f"№ {duplicate.number}", "That is this appeal's own number. Type the number of the original appeal."),
        (f"№ {closed.number}", "That appeal is already closed, so its resident would wait for news that will not come."),
    ):
        await coordinator.send_text(typed)
        await harness.settle()
        assert said in coordinator.last_message.text, typed
        assert "Type the number of the original appeal" in coordinator.last_message.text
    [row] = await harness.rows(Appeal, Appeal.id == duplicate.id)
    assert row.status == "moderation" and row.duplicate_of_id is None

    await coordinator.click(next(b for b in offered if near.number in b))
    await harness.settle()
    assert coordinator.callback_answers[-1]["text"] == "Closed as a duplicate."
    [row] = await harness.rows(Appeal, Appeal.id == duplicate.id)
    assert row.status == "closed" and row.duplicate_of_id == near.id
    assert "Queue" in coordinator.last_message.text  # back at the list, the appeal off it
    assert not any(duplicate.number in b for b in coordinator.last_message.buttons)


async def test_short_pickers_offer_the_likely_agencies_and_categories_first(harness: Harness) -> None:
    appeal = await service_appeal(harness, 1001, "roads_potholes", "argun")
    suggested_id, suggested_name = await suggested_agency(harness, appeal)
    names = await agency_names(harness)
    argun_admin = next(n for n in names.values() if "Argun" in n)
    coordinator = await join(harness, 2001, "RMC coordinator")
    await open_from_queue(harness, coordinator, appeal.number)
    card = coordinator.last_message

    await coordinator.click("🏢 Another agency")
    await harness.settle()
    short = coordinator.last_message
    assert short.message_id == card.message_id
    choices = [b for b in short.buttons if b not in ("📚 All agencies", "⬅️ Back")]
    assert choices[0] == f"⭐ {suggested_name}"
    assert suggested_name == argun_admin and "Ministry of Roads" in choices  # the district's body, the ministry
    assert len(choices) <= 8 and ">" not in short.buttons and "📚 All agencies" in short.buttons
    # Everything else is behind a button, paged.
    await coordinator.click("📚 All agencies")
    await harness.settle()
    assert ">" in coordinator.last_message.buttons
    seen: set[str] = set()
    for _page in range(10):
        seen |= set(coordinator.last_message.buttons)
        if ">" not in coordinator.last_message.buttons or names[max(names)] in seen:
            break
        await coordinator.click(">")
        await harness.settle()
    assert set(names.values()) <= seen
    await coordinator.click("⬅️ Back")
    await harness.settle()
    assert "📚 All agencies" in coordinator.last_message.buttons
    await coordinator.click("⬅️ Back")
    await harness.settle()

    # Categories: the appeal's block first (the current one marked), every topic behind a button.
    await coordinator.click("🗂 Change category")
    await harness.settle()
    topics = coordinator.last_message.buttons
    assert "✓ Potholes" in topics and "Road repair" in topics and "📚 All topics" in topics
    assert "No water supply" not in topics
    await coordinator.click("📚 All topics")
    await harness.settle()
    await coordinator.click("Housing, utilities and waste")
    await harness.settle()
    await coordinator.click("No water supply")
    await harness.settle()
    assert coordinator.callback_answers[-1]["text"] == "Category changed."
    [row] = await harness.rows(Appeal)
    assert row.category_id == category_id(harness, "housing_water")
    # Routed through the short list: the district's administration.
    await coordinator.click("🏢 Another agency")
    await harness.settle()
    await coordinator.click(argun_admin)
    await harness.settle()
    [row] = await harness.rows(Appeal)
    assert row.status == "assigned" and names[row.agency_id] == argun_admin
    assert suggested_id in names


async def test_people_list_names_people_and_revoking_asks_first(harness: Harness) -> None:
    harness.emu.user(2001, first_name="Aslan", last_name="Dudaev", username="aslan_d", language_code="en")
    await join(harness, 2001, "RMC coordinator")
    admin = harness.emu.user(ADMIN, language_code="en")
    await admin.send_text("/staff")
    await harness.settle()
    await admin.click("👥 People")
    await harness.settle()
    people = admin.last_message
    assert "Aslan Dudaev (@aslan_d)" in people.text and "2001" in people.text
    button = next(b for b in people.buttons if "Aslan Dudaev" in b)
    # A press asks first: Back changes nothing.
    await admin.click(button)
    await harness.settle()
    assert "Revoke the role «RMC coordinator» from Aslan Dudaev (@aslan_d)?" in admin.last_message.text
    assert len(await harness.rows(UserRole)) == 2
    await admin.click("⬅️ Back")
    await harness.settle()
    assert "Aslan Dudaev" in admin.last_message.text
    await admin.click(button)
    await harness.settle()
    await admin.click("✖ Revoke")
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "Role revoked."
    assert [r.role for r in await harness.rows(UserRole)] == ["admin"]
    assert admin.last_message.message_id == people.message_id
    assert "Aslan" not in admin.last_message.text and "<b>People with roles</b>: 1" in admin.last_message.html
    # A name changed in Telegram is shown after the person's next /staff.
    harness.emu.user(ADMIN, first_name="Ruslan", username="rus_admin")
    await admin.send_text("/staff")
    await harness.settle()
    await admin.click("👥 People")
    await harness.settle()
    assert "Ruslan (@rus_admin)" in admin.last_message.text


async def test_an_admin_is_not_offered_to_revoke_their_own_admin_role(harness: Harness) -> None:
    """Nobody locks the door behind themselves: no button for it, and a forged press is told why."""
    admin = harness.emu.user(ADMIN, first_name="Ruslan", language_code="en")
    await admin.send_text("/staff")
    await harness.settle()
    await admin.click("👥 People")
    await harness.settle()
    people = admin.last_message
    assert "Ruslan" in people.text and "administrator" in people.text
    assert not [b for b in people.buttons if b.startswith("✖")]
    [role] = await harness.rows(UserRole)
    await admin.press_callback(people.message_id, forged(people, f"revoke:{role.user_id}:admin"))
    await harness.settle()
    assert admin.last_message.message_id == people.message_id
    await admin.click("✖ Revoke")
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "You cannot revoke your own administrator role."
    assert [r.role for r in await harness.rows(UserRole)] == ["admin"]


async def test_staff_change_their_language_without_the_residents_consent(harness: Harness) -> None:
    """Staff come by invite and never see the residents' consent: /language changes the language and shows the menu
    in it (QA: an editor who switched to English was sent to the 152-ФЗ consent)."""
    coordinator = await join(harness, 2051, "RMC coordinator")
    await coordinator.send_text("/language")
    await harness.settle()
    await coordinator.click("Русский")
    await harness.settle()
    assert coordinator.last_message.text == "Готово. Выберите действие в меню ниже."
    assert "Согласие" not in " ".join(m.text or "" for m in coordinator.messages[-3:])
    assert coordinator.reply_keyboard is not None and coordinator.reply_keyboard[0] == ["📝 Подать обращение"]


async def test_a_card_shown_again_in_the_new_language_names_the_directory_in_it_too(harness: Harness) -> None:
    """/language with a card open shows the card again in the new language: its labels and the names of the topic,
    district and agency alike (QA: the names stayed in the old language)."""
    _resident, _coordinator, official, appeal, _agency_name = await staffed_appeal(harness)
    await open_from_inbox(harness, official, appeal.number)
    assert "Housing, utilities and waste" in official.last_message.text
    await official.send_text("/language")
    await harness.settle()
    await official.click("Русский")
    await harness.settle()
    card = official.last_message.text or ""
    assert card.startswith(f"Обращение № {appeal.number}"), card
    assert "ЖКХ" in card and "Housing, utilities and waste" not in card and "Район: г. Грозный" in card, card


async def test_the_assignments_take_pressed_after_it_was_taken_opens_the_card_as_it_is(harness: Harness) -> None:
    """Both the official and the head of agency get the assignment with «Take in work»; the official takes it from
    the inbox, the head presses theirs later: the card as it is now, with a word, not a refusal (QA: the sandbox's
    demo assignment still offered it). A stranger's forged press is refused as before."""
    resident = await english_resident(harness, 1011)
    appeal = await filed_appeal(harness, resident)
    _agency_id, agency_name = await suggested_agency(harness, appeal)
    coordinator = await join(harness, 2011, "RMC coordinator")
    official = await join(harness, 3011, "official", agency_name)
    supervisor = await join(harness, 3013, "head of agency", agency_name)
    await open_from_queue(harness, coordinator, appeal.number)
    await coordinator.click(f"➡️ Route to {agency_name}")
    await harness.settle()
    assignment = supervisor.last_message
    assert assignment.buttons == ["Open", "🛠 Take in work"]
    await open_from_inbox(harness, official, appeal.number)
    await official.click("🛠 Take in work")
    await harness.settle()
    [row] = await harness.rows(Appeal, Appeal.id == appeal.id)
    assert row.status == "in_progress"
    taken = len(await harness.rows(StatusHistory, StatusHistory.appeal_id == appeal.id))

    await supervisor.click("🛠 Take in work", message_id=assignment.message_id)
    await harness.settle()
    assert supervisor.callback_answers[-1]["text"] == "This appeal is already in work."
    card = supervisor.last_message
    assert card.text.startswith(f"Appeal № {appeal.number}") and "In progress" in card.text
    assert "🛠 Take in work" not in card.buttons
    [row] = await harness.rows(Appeal, Appeal.id == appeal.id)
    assert row.status == "in_progress" and row.official_id != (await harness.rows(UserRole, UserRole.role == "supervisor"))[0].user_id
    assert len(await harness.rows(StatusHistory, StatusHistory.appeal_id == appeal.id)) == taken
