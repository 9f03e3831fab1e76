"""The access log of staff views (issue 16), end to end through the emulator: each card shown, files sent, place
sent and contact shown writes exactly one row (who, what, whose, when), residents' own views none; admins list it
by appeal and by person, page it and export it (reading is logged too); nobody else may."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import AccessEntry, Appeal, AuditEntry
from tests import factories
from tests.conftest import Harness
from tests.test_forged_e2e import intent_of, press, with_intent
from tests.test_resident_e2e import english_resident
from tests.test_roles14_e2e import block_head, personal_appeal, route
from tests.test_staff_e2e import (
    ADMIN,
    agency_names,
    filed_appeal,
    join,
    open_from_inbox,
    open_from_queue,
    service_appeal,
    suggested_agency,
)

Row = tuple[int, str, int | None, int | None]


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


async def uid(harness: Harness, tg_id: int) -> int:
    assert harness.app is not None
    return (await harness.app.services.users.identify(tg_id)).id


async def logged(harness: Harness, after: int = 0) -> list[Row]:
    """(actor, kind, appeal, subject) of the access-log rows after row `after`, in order."""
    found = sorted(await harness.rows(AccessEntry, AccessEntry.id > after), key=lambda r: r.id)
    return [(r.actor_id, r.kind, r.appeal_id, r.subject_user_id) for r in found]


async def mark(harness: Harness) -> int:
    found = await harness.rows(AccessEntry)
    return max((r.id for r in found), default=0)


async def step(harness: Harness, user: EmulatedUser, how: str, what: str) -> BotMessage:
    if how == "click":
        await user.click(what)
    else:
        await user.send_text(what)
    await harness.settle()
    return user.last_message


def file_of(harness: Harness, message: BotMessage) -> bytes:
    assert message.file_id is not None
    return harness.emu.state.files[message.file_id].content


# --- each staff view: one row -----------------------------------------------------------------------------------


async def test_a_coordinators_and_an_officials_card_one_row_each_showing_and_none_for_the_resident(
    harness: Harness,
) -> None:
    resident = await english_resident(harness, 1001)
    appeal = await filed_appeal(harness, resident)
    resident_id = await uid(harness, 1001)
    coordinator = await join(harness, 2001, "RMC coordinator")
    coordinator_id = await uid(harness, 2001)
    assert await logged(harness) == []  # filing, and the notifications about it, show nobody a card

    # Opened from the queue: one card row; the list itself shows no card.
    await open_from_queue(harness, coordinator, appeal.number)
    assert f"Appeal № {appeal.number}" in coordinator.last_message.text
    assert await logged(harness) == [(coordinator_id, "appeal_card", appeal.id, resident_id)]
    # Shown again after a screen of the card (the reasons and back): a row for each showing.
    before = await mark(harness)
    await step(harness, coordinator, "click", "⛔ Reject")
    assert await logged(harness, before) == []  # the reasons screen shows nothing of the appeal
    await step(harness, coordinator, "click", "⬅️ Back")
    assert await logged(harness, before) == [(coordinator_id, "appeal_card", appeal.id, resident_id)]

    # The resident reads their own appeal and its card: not a staff view, nothing logged.
    before = await mark(harness)
    await step(harness, resident, "text", "📋 My appeals")
    await step(harness, resident, "click", next(b for b in resident.last_message.buttons if appeal.number in b))
    assert f"Appeal № {appeal.number}" in resident.last_message.text
    assert await logged(harness, before) == []

    # Routed; the official opens it from the notification: one row, theirs.
    names = await agency_names(harness)
    [row] = await harness.rows(Appeal, Appeal.id == appeal.id)
    assert harness.app is not None
    agency_id = await harness.app.services.views.suggest(row.category_id, row.district_id)
    assert agency_id is not None
    official = await join(harness, 3001, "official", names[agency_id])
    official_id = await uid(harness, 3001)
    before = await mark(harness)
    await step(harness, coordinator, "click", f"➡️ Route to {names[agency_id]}")
    # The coordinator is back to the (empty) queue; the official is pushed the card by the assignment: one row.
    assert await logged(harness, before) == [(official_id, "appeal_card", appeal.id, resident_id)]
    before = await mark(harness)
    await step(harness, official, "click", "Open")
    assert f"Appeal № {appeal.number}" in official.last_message.text
    assert await logged(harness, before) == [(official_id, "appeal_card", appeal.id, resident_id)]
    # After an action the card is shown afresh (taken in work): one more row.
    await step(harness, official, "click", "🛠 Take in work")
    assert await logged(harness, before) == [(official_id, "appeal_card", appeal.id, resident_id)] * 2


async def with_photo(harness: Harness, tg_id: int) -> Appeal:
    """tests.test_roles14_e2e's personal appeal (59-FZ: name and contact, a pin, a photo), its photo one the emulator
    holds (so that the bot can send it)."""
    [*_small, full] = harness.emu.state.register_photo(b"pothole")
    photo = factories.DraftAttachment("photo", full["file_id"], full["file_unique_id"])
    return await service_appeal(
        harness,
        tg_id,
        "roads_potholes",
        kind="appeal",
        text="A deep pothole in front of school number 7",
        address="Grozny, Secret street 99",
        latitude=43.318,
        longitude=45.698,
        applicant_name="Ivanov Ivan Ivanovich",
        applicant_contact="+7 928 000-11-22",
        attachments=(photo,),
    )


async def test_the_contact_the_files_and_the_place_one_row_each_and_the_block_heads_card(harness: Harness) -> None:
    own = await with_photo(harness, 1101)
    resident_id = await uid(harness, 1101)
    agency_id = await route(harness, own)
    official = await join(harness, 3001, "official", (await agency_names(harness))[agency_id])
    official_id = await uid(harness, 3001)

    # The card shows the applicant's name and contact: the card and the contact, one row each.
    before = await mark(harness)
    await open_from_inbox(harness, official, own.number)
    card = official.last_message
    assert "Ivanov Ivan Ivanovich" in card.text and "+7 928 000-11-22" in card.text
    assert await logged(harness, before) == [
        (official_id, "appeal_card", own.id, resident_id),
        (official_id, "resident_contact", own.id, resident_id),
    ]

    # The files: sent below the card, one row; the card is not shown again for it.
    before = await mark(harness)
    await step(harness, official, "click", "📎 Files (1)")
    assert official.last_message.kind == "photo"
    assert await logged(harness, before) == [(official_id, "appeal_files", own.id, resident_id)]
    # The place: the pin, one row.
    before = await mark(harness)
    await step(harness, official, "click", "📍 Location")
    assert official.last_message.kind == "location"
    assert await logged(harness, before) == [(official_id, "appeal_location", own.id, resident_id)]

    # A block head's read-only card: a card row, and no contact row (it shows none).
    head = await block_head(harness)
    head_id = await uid(harness, 4001)
    before = await mark(harness)
    await step(harness, head, "text", "/staff")
    await step(harness, head, "click", "📂 Appeals of the block")
    await step(harness, head, "click", next(b for b in head.last_message.buttons if own.number in b))
    assert "Read-only" in head.last_message.text and "Ivanov" not in head.last_message.text
    assert await logged(harness, before) == [(head_id, "appeal_card", own.id, resident_id)]


# --- what notifications push to staff: the same rows, for each staff recipient ----------------------------------


async def test_a_routed_appeal_and_a_clarification_reply_with_a_photo_are_logged_for_each_staff_recipient(
    harness: Harness,
) -> None:
    own = await with_photo(harness, 1101)
    resident = harness.emu.user(1101)
    resident_id = await uid(harness, 1101)
    agency_id, agency_name = await suggested_agency(harness, own)
    other_name = next(n for i, n in (await agency_names(harness)).items() if i != agency_id)
    official = await join(harness, 3001, "official", agency_name)
    supervisor = await join(harness, 3003, "head of agency", agency_name)
    stranger = await join(harness, 3002, "official", other_name)
    coordinator = await join(harness, 2001, "RMC coordinator")
    official_id, supervisor_id = await uid(harness, 3001), await uid(harness, 3003)
    await open_from_queue(harness, coordinator, own.number)

    # Routed: the assignment carries the card and the pin to the agency's official and supervisor, who read them
    # without opening anything: a card row and a place row each; the other agency's official and the coordinator
    # (back to the queue) none.
    before = await mark(harness)
    await step(harness, coordinator, "click", f"➡️ Route to {agency_name}")
    for person in (official, supervisor):
        assert f"New appeal № {own.number}" in person.last_message.text
        assert "Grozny, Secret street 99" in person.last_message.text and "📍 location" in person.last_message.text
    assert not any(own.number in m.text for m in stranger.messages)
    assert sorted(await logged(harness, before)) == sorted(
        (who, kind, own.id, resident_id)
        for who in (official_id, supervisor_id)
        for kind in ("appeal_card", "appeal_location")
    )

    # The official asks; the resident replies with words and a photo: both reach the official, two rows, theirs.
    await step(harness, official, "click", "🛠 Take in work")
    await step(harness, official, "click", "❓ Ask the resident")
    await step(harness, official, "text", "Which side of the school?")
    assert "Which side of the school?" in resident.last_message.text
    before = await mark(harness)
    # (The resident filed through the services: their language is Russian.)
    await step(harness, resident, "click", "✍️ Ответить")
    await step(harness, resident, "text", "The north gate, by the bus stop")
    await resident.send_photo()
    await step(harness, resident, "click", "📤 Отправить ответ")
    assert "Ваш ответ направлен исполнителю." in resident.last_message.text
    assert any("The north gate, by the bus stop" in m.text for m in official.messages)
    assert official.last_message.kind == "photo"
    assert await logged(harness, before) == [
        (official_id, "resident_reply", own.id, resident_id),
        (official_id, "appeal_files", own.id, resident_id),
    ]

    # The admin's listing names them readably.
    admin = harness.emu.user(ADMIN, language_code="en")
    await step(harness, admin, "text", "/accesslog")
    await step(harness, admin, "click", "📄 By appeal")
    listing = await step(harness, admin, "text", own.number)
    lines = listing_lines(listing)
    assert lines[0].endswith(f"· appeal files, № {own.number}"), lines
    assert lines[1].endswith(f"· resident's reply, № {own.number}"), lines
    assert sum(1 for line in lines if line.endswith(f"· place on the map, № {own.number}")) == 2


# --- the admin's listing -----------------------------------------------------------------------------------------


async def views_of(harness: Harness, appeal: Appeal, count: int) -> tuple[int, str]:
    """`count` showings of the appeal's card to a coordinator (stored name «Petimat Kadyrova»), a minute apart,
    through the service that serves them; (coordinator's user id, appeal number)."""
    assert harness.app is not None
    services = harness.app.services
    admin = await services.users.identify(ADMIN)
    coordinator = await factories.staff(services, admin, 2050, "coordinator")
    await services.access.remember_name(coordinator, "Petimat Kadyrova", None)
    for _n in range(count):
        harness.clock.advance(minutes=1)
        await services.views.show_card(coordinator, appeal.id)
    return coordinator.id, appeal.number


def listing_lines(message: BotMessage) -> list[str]:
    return [line for line in message.text.splitlines() if line.startswith("• ")]


async def test_an_admin_lists_by_appeal_and_by_person_pages_and_exports_and_the_reading_is_logged(
    harness: Harness,
) -> None:
    own = await personal_appeal(harness, 1101)
    resident_id = await uid(harness, 1101)
    other = await personal_appeal(harness, 1102)
    _coordinator_id, number = await views_of(harness, own, 12)
    await views_of_other(harness, other)
    admin = harness.emu.user(ADMIN, language_code="en")
    admin_id = await uid(harness, ADMIN)
    harness.clock.advance(minutes=1)

    # From the /staff menu (the command opens the same screen).
    await step(harness, admin, "text", "/staff")
    menu = await step(harness, admin, "click", "🔏 Access log")
    assert "Access log" in menu.text and menu.buttons == ["📄 By appeal", "👤 By person", "⬅️ Back"]
    await step(harness, admin, "click", "📄 By appeal")
    # Bad numbers: a word each, the prompt stays, nothing listed or logged.
    before = await mark(harness)
    screen = await step(harness, admin, "text", "2026-12")
    assert "That is not a registration number" in screen.text and "registration number, e.g." in screen.text
    screen = await step(harness, admin, "text", "2026-999999")
    assert "There is no appeal with this number." in screen.text
    assert await logged(harness, before) == []

    # The listing: newest first, 10 a page, when · who (stored name and role) · what.
    page1 = await step(harness, admin, "text", number)
    assert f"Access log of appeal № {number}" in page1.text and "Entries: 24 · page 1 of 3" in page1.text, page1.text
    lines = listing_lines(page1)
    assert len(lines) == 10
    newest = (harness.clock.now() - timedelta(minutes=2)).astimezone(harness.settings.tz)
    assert lines[0] == (
        f"• {newest:%d.%m.%Y %H:%M} · Petimat Kadyrova (RMC coordinator) · applicant's name and contact, № {number}"
    )
    assert lines[1].endswith(f"· appeal card, № {number}")
    assert page1.buttons == ["▶️", "⬇️ XLSX", "⬇️ CSV", "👤 Its resident", "🔎 Another search"]
    page2 = await step(harness, admin, "click", "▶️")
    assert "page 2 of 3" in page2.text and len(listing_lines(page2)) == 10
    # The reading itself is logged, but the pages stay as they were when the listing opened.
    assert not set(lines) & set(listing_lines(page2))
    page3 = await step(harness, admin, "click", "▶️")
    assert "page 3 of 3" in page3.text and len(listing_lines(page3)) == 4
    oldest = (harness.clock.now() - timedelta(minutes=13)).astimezone(harness.settings.tz)
    assert listing_lines(page3)[-1].startswith(f"• {oldest:%d.%m.%Y %H:%M} · Petimat Kadyrova")
    await step(harness, admin, "click", "◀️")
    assert "page 2 of 3" in admin.last_message.text
    reads = [(admin_id, "access_log_read", own.id, None)] * 4
    assert [r for r in await logged(harness, before) if r[0] == admin_id] == reads

    # Export: the rows the listing counts (24, as on the screen; QA: the file had the readings since as well, 28);
    # the export is logged, and a new listing counts the readings and the exports.
    document = await step(harness, admin, "click", "⬇️ XLSX")
    assert document.kind == "document"
    assert document.raw["document"]["file_name"].startswith(f"access-log-appeal-{number}-")
    assert document.raw["caption"] == f"Access log of appeal № {number}: 24 entries"
    sheet = load_workbook(io.BytesIO(file_of(harness, document))).active
    assert sheet is not None
    cells = [tuple(row) for row in sheet.iter_rows(values_only=True) if any(v is not None for v in row)]
    header = cells.index(("When", "Staff member", "Telegram id", "Roles now", "What", "Appeal"))
    body = cells[header + 1:]
    assert len(body) == 24
    assert body[0][1:] == ("Petimat Kadyrova", 2050, "RMC coordinator", "applicant's name and contact", number)
    assert sum(1 for r in body if r[4] == "appeal card") == 12
    assert "access log read" not in [r[4] for r in body]
    assert body[0][0] == lines[0][2:18]
    # The listing's message stays as it was (no page shown again, so no reading logged); the export is a document.
    assert "page 2 of 3" in admin.message(page1.message_id).text
    document = await step(harness, admin, "click", "⬇️ CSV")
    assert document.raw["document"]["file_name"].endswith(".csv")
    rows = list(csv.reader(io.StringIO(file_of(harness, document).decode("utf-8-sig"))))
    assert rows[0] == ["When", "Staff member", "Telegram id", "Roles now", "What", "Appeal"]
    assert len(rows) == 1 + 24
    assert [r for r in await logged(harness, before) if r[1] == "access_log_export"] == [
        (admin_id, "access_log_export", own.id, None)
    ] * 2
    await step(harness, admin, "click", "🔎 Another search")
    await step(harness, admin, "click", "📄 By appeal")
    renewed = await step(harness, admin, "text", number)
    assert "Entries: 30 · page 1 of 3" in renewed.text, renewed.text  # 24 + 4 readings + 2 exports
    document = await step(harness, admin, "click", "⬇️ CSV")
    rows = list(csv.reader(io.StringIO(file_of(harness, document).decode("utf-8-sig"))))
    assert len(rows) == 1 + 30 and rows[1][4] == "access log exported"

    # By person: the resident of this appeal, from its listing.
    before = await mark(harness)
    await step(harness, admin, "click", "👤 Its resident")
    listing = next(m for m in reversed(admin.messages) if m.kind == "text")  # above it, the exports
    assert f"Access log of the resident of appeal № {number}" in listing.text
    # Their appeal's 24 views, not the other resident's; the readings by appeal do not name the person.
    assert "Entries: 24 · page 1 of 3" in listing.text, listing.text
    assert "👤 Its resident" not in listing.buttons
    assert await logged(harness, before) == [(admin_id, "access_log_read", None, resident_id)]
    # Typed: bad input first, then the same resident by the appeal's number and by Telegram id.
    await step(harness, admin, "click", "🔎 Another search")
    await step(harness, admin, "click", "👤 By person")
    screen = await step(harness, admin, "text", "somebody")
    assert "Type a Telegram id (digits only)" in screen.text
    screen = await step(harness, admin, "text", "777777")
    assert "Nobody with this Telegram id is known to the bot." in screen.text
    listing = await step(harness, admin, "text", number)
    assert f"Access log of the resident of appeal № {number}" in listing.text
    assert "Entries: 25 · page 1 of 3" in listing.text, listing.text  # the reading by person above among them
    await step(harness, admin, "click", "🔎 Another search")
    await step(harness, admin, "click", "👤 By person")
    listing = await step(harness, admin, "text", "1101")
    assert "Access log of the person with Telegram id 1101" in listing.text
    assert "Entries: 26 · page 1 of 3" in listing.text, listing.text
    assert listing_lines(listing)[0].endswith("· access log read")
    # A saved file says whose log it is by its name.
    document = await step(harness, admin, "click", "⬇️ CSV")
    assert document.raw["document"]["file_name"].startswith("access-log-person-1101-")


async def views_of_other(harness: Harness, appeal: Appeal) -> None:
    assert harness.app is not None
    services = harness.app.services
    coordinator = await services.users.identify(2050)
    harness.clock.advance(minutes=1)
    await services.views.show_card(coordinator, appeal.id)


async def test_the_command_opens_the_log_for_an_admin_and_an_empty_listing_offers_no_export(harness: Harness) -> None:
    own = await personal_appeal(harness, 1101)
    admin = harness.emu.user(ADMIN, language_code="en")
    screen = await step(harness, admin, "text", "/accesslog")
    assert "Access log" in screen.text and "📄 By appeal" in screen.buttons
    await step(harness, admin, "click", "📄 By appeal")
    listing = await step(harness, admin, "text", own.number)
    assert "Entries: 0 · page 1 of 1" in listing.text and "Nobody has been shown these data yet." in listing.text
    assert listing.buttons == ["👤 Its resident", "🔎 Another search"]


# --- refusals ----------------------------------------------------------------------------------------------------


async def test_an_official_is_refused_the_command_and_a_forged_button_and_it_is_audited(harness: Harness) -> None:
    own = await personal_appeal(harness, 1101)
    agency_id = await route(harness, own)
    official = await join(harness, 3001, "official", (await agency_names(harness))[agency_id])
    official_id = await uid(harness, 3001)
    before = await mark(harness)

    reply = await step(harness, official, "text", "/accesslog")
    assert reply.text == "The access log is for administrators only."
    [audit] = await harness.rows(AuditEntry, AuditEntry.actor_id == official_id, AuditEntry.action == "refused")
    assert audit.details == {"refused": "access_log"}

    # The admin's menu entry, forged on the official's own /staff menu: refused, the menu stays.
    menu = await step(harness, official, "text", "/staff")
    assert "🔏 Access log" not in menu.buttons
    result = await press(harness, official, menu.message_id, with_intent(intent_of(menu), "access_log"))
    assert (result.answer, result.alert) == ("The access log is for administrators only.", True)
    assert not result.edited and not result.sent and result.screen.text == menu.text
    audits = await harness.rows(AuditEntry, AuditEntry.actor_id == official_id, AuditEntry.action == "refused")
    assert [a.details for a in audits] == [{"refused": "access_log"}] * 2
    assert await logged(harness, before) == []
