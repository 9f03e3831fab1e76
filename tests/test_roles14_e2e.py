"""Issue 14, who sees what: the block head (the appeals of one thematic block, read-only, without the resident's
personal data) and the leadership (no appeal at all), invited by an admin like the other roles; end to end through
the emulator, and the services' rules underneath."""

from __future__ import annotations

from typing import Any

import pytest

from bot.callbacks import StaffAction, StaffCb
from bot.domain import AppealStatus, Role
from bot.services.errors import AppealHidden, Forbidden, InvalidInput, NotYours
from emulator import EmulatedUser
from storage.models import Appeal, AuditEntry, Invite, UserRole
from tests import factories
from tests.conftest import Harness
from tests.test_forged_e2e import intent_of, press, refused, rows_state, with_intent
from tests.test_staff_e2e import (
    ADMIN,
    agency_names,
    invite,
    join,
    service_appeal,
    suggested_agency,
)

BLOCK_HEAD = "head of a thematic block"
LEADERSHIP = "RMC leadership"
BLOCK_LIST = "📂 Appeals of the block"
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


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


def block_id(harness: Harness, code: str) -> int:
    assert harness.app is not None
    return next(b.id for b in harness.app.services.directory.blocks() if b.code == code)


async def block_head(harness: Harness, tg_id: int = 4001, block: str = "Roads") -> EmulatedUser:
    """A block head invited by the admin through the bot."""
    return await join(harness, tg_id, BLOCK_HEAD, block)


async def actor(harness: Harness, tg_id: int) -> Any:
    assert harness.app is not None
    return await harness.app.services.users.identify(tg_id)


async def personal_appeal(harness: Harness, tg_id: int = 1101) -> Appeal:
    """A pothole appeal under 59-FZ with everything personal a resident gives: name, contact, address, pin."""
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
        attachments=(factories.DraftAttachment("photo", "pothole-photo", "u-pothole"),),
    )


async def route(harness: Harness, appeal: Appeal) -> int:
    """The coordinator (created here through the services) routes the appeal to the suggested agency."""
    assert harness.app is not None
    services = harness.app.services
    admin = await services.users.identify(ADMIN)
    coordinator = await services.users.identify(2050)
    if not coordinator.has(Role.coordinator):
        coordinator = await factories.staff(services, admin, 2050, "coordinator")
    await services.coordination.route(coordinator, appeal.id)
    agency_id, _name = await suggested_agency(harness, appeal)
    return agency_id


# --- 1. invites, the people list, revoking --------------------------------------------------------------------


async def test_an_admin_invites_a_block_head_and_the_leadership_lists_and_revokes_them(harness: Harness) -> None:
    admin = harness.emu.user(ADMIN, language_code="en")
    await admin.send_text("/staff")
    await harness.settle()
    await admin.click("🔗 Invite")
    await harness.settle()
    assert {BLOCK_HEAD, LEADERSHIP} <= set(admin.last_message.buttons)
    # A block head's invite asks which of the 7 thematic blocks.
    await admin.click(BLOCK_HEAD)
    await harness.settle()
    assert "Which thematic block?" in admin.last_message.text
    assert harness.app is not None
    blocks = [b.name("en") for b in harness.app.services.directory.blocks()]
    assert len(blocks) == 7 and all(name in admin.last_message.buttons for name in blocks)
    # A forged block id on that screen makes no invite.
    screen = admin.last_message
    result = await press(harness, admin, screen.message_id, with_intent(intent_of(screen), "block:999999"))
    assert result.answer == "This option is no longer available." and result.alert
    assert await harness.rows(Invite) == []
    await admin.click("Roads")
    await harness.settle()
    text = admin.last_message.text
    assert f"«{BLOCK_HEAD}» (Roads)" in text and "Single use" in text
    head = harness.emu.user(4001, language_code="en")
    await head.send_text("/start " + text.split("?start=")[1].split()[0])
    await harness.settle()
    assert f"Your role: {BLOCK_HEAD}" in head.last_message.text
    [row] = await harness.rows(UserRole, UserRole.role == "block_head")
    assert (row.block_id, row.agency_id) == (block_id(harness, "roads"), None)
    [used] = await harness.rows(Invite)
    assert used.block_id == block_id(harness, "roads") and used.used_by == row.user_id
    assert (await actor(harness, 4001)).block_id == block_id(harness, "roads")

    # Leadership: no agency, no block; the link comes at once.
    argument = await invite(harness, LEADERSHIP)
    leader = harness.emu.user(4002, language_code="en")
    await leader.send_text(f"/start {argument}")
    await harness.settle()
    assert f"Your role: {LEADERSHIP}" in leader.last_message.text
    [row] = await harness.rows(UserRole, UserRole.role == "leadership")
    assert (row.block_id, row.agency_id) == (None, None)

    # The people list names the block head's block; revoking works as for anyone.
    await head.send_text("/staff")  # the list shows the name the person has now
    await harness.settle()
    await admin.send_text("/staff")
    await harness.settle()
    await admin.click("👥 People")
    await harness.settle()
    people = admin.last_message.text
    assert f"id 4001 · {BLOCK_HEAD} · Roads" in people and f"id 4002 · {LEADERSHIP}" in people
    await admin.click(next(b for b in admin.last_message.buttons if "Roads" in b))
    await harness.settle()
    assert f"Revoke the role «{BLOCK_HEAD}»" in admin.last_message.text
    await admin.click("✖ Revoke")
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "Role revoked."
    assert await harness.rows(UserRole, UserRole.role == "block_head") == []
    await head.send_text("/staff")
    await harness.settle()
    assert "for the staff" in head.last_message.text
    revoked = await harness.rows(AuditEntry, AuditEntry.action == "role_revoked")
    assert [(a.details["role"]) for a in revoked] == ["block_head"]


async def test_invites_of_the_new_roles_are_checked_in_the_service(harness: Harness) -> None:
    """A block head needs a known block and no agency; the leadership neither; nobody else gets a block."""
    assert harness.app is not None
    services = harness.app.services
    admin = await factories.admin(services, ADMIN)
    roads = block_id(harness, "roads")
    agency_id = next(iter(await agency_names(harness)))
    for role, agency, block in (
        ("block_head", None, None),
        ("block_head", None, 999_999),
        ("block_head", agency_id, roads),
        ("leadership", None, roads),
        ("leadership", agency_id, None),
        ("analyst", None, roads),
        ("official", agency_id, roads),
    ):
        with pytest.raises(InvalidInput):
            await services.access.create_invite(admin, role, agency, block)
    assert await harness.rows(Invite) == []
    link = await services.access.create_invite(admin, "block_head", None, roads)
    assert link.block_id == roads
    person = await services.users.identify(4005)
    assert await services.access.redeem(person, link.token) == "block_head"
    assert (await services.users.identify(4005)).block_id == roads
    # Invited again for another block: the block is replaced, one row per role.
    housing = block_id(harness, "housing")
    again = await services.access.create_invite(admin, "block_head", None, housing)
    await services.access.redeem(person, again.token)
    [row] = await harness.rows(UserRole, UserRole.user_id == person.id)
    assert row.block_id == housing
    # Nobody but an admin invites.
    with pytest.raises(Forbidden):
        await services.access.create_invite(await services.users.identify(4005), "block_head", None, roads)
    [person_row] = [p for p in await services.access.people(admin, "block_head")]
    assert person_row.block_id == housing


# --- 2 and 3. the block head's menu, list and card -----------------------------------------------------------


async def test_a_block_head_reads_the_blocks_appeals_newest_first_without_personal_data_or_buttons(
    harness: Harness,
) -> None:
    own = await personal_appeal(harness)
    agency_id = await route(harness, own)
    agency = (await agency_names(harness))[agency_id]
    others = []
    for n in range(9):
        harness.clock.advance(minutes=5)
        others.append(await service_appeal(harness, 1200 + n, "roads_repair"))
    housing = await service_appeal(harness, 1300, "housing_water")
    head = await block_head(harness)

    await head.send_text("/staff")
    await harness.settle()
    assert head.last_message.buttons == [BLOCK_LIST, "✖ Close"]
    await head.click(BLOCK_LIST)
    await harness.settle()
    listing = head.last_message
    assert "Appeals of the block «Roads»: 10" in listing.text and "Page 1 of 2" in listing.text
    rows = [b for b in listing.buttons if b.startswith("№ ")]
    # Newest first, with number and status; another block's appeal is not there.
    expected = [a.number for a in reversed(others)][:8]
    assert [r.split(" · ")[0][2:] for r in rows] == expected
    assert all("On moderation" in r for r in rows)
    assert not any(housing.number in b for b in listing.buttons)
    await head.click("▶️")
    await harness.settle()
    page2 = [b for b in head.last_message.buttons if b.startswith("№ ")]
    assert [r.split(" · ")[0][2:] for r in page2] == [others[0].number, own.number]
    assert "Page 2 of 2" in head.last_message.text
    # The filter by status: the routed one only; pressing it again shows all.
    await head.click("Sent to the responsible body")
    await harness.settle()
    filtered = [b for b in head.last_message.buttons if b.startswith("№ ")]
    assert [r.split(" · ")[0][2:] for r in filtered] == [own.number]
    assert "Appeals of the block «Roads»: 1" in head.last_message.text

    # The card: what the appeal is about and where it stands, nothing of the resident, no action.
    await head.click(filtered[0])
    await harness.settle()
    card = head.last_message
    assert card.message_id == listing.message_id
    text = card.text
    for seen in (
        f"Appeal № {own.number}",
        "Sent to the responsible body",
        "A deep pothole in front of school number 7",
        "Potholes",
        "Grozny",
        f"Agency: {agency}",
        "Due:",
        "History:",
        "Read-only",
    ):
        assert seen in text, seen
    for hidden in ("Ivanov", "+7 928", "Secret street", "43.318", "Applicant", "Place:", "Attachments", "location"):
        assert hidden not in text, hidden
    assert card.buttons == ["📋 To the list"]
    await head.click("📋 To the list")
    await harness.settle()
    assert "Appeals of the block «Roads»" in head.last_message.text


async def test_a_block_head_is_refused_another_blocks_appeal_and_every_action(harness: Harness) -> None:
    own = await personal_appeal(harness)
    await route(harness, own)
    housing = await service_appeal(harness, 1300, "housing_water")
    head = await block_head(harness)
    assert harness.app is not None
    services = harness.app.services
    person = await actor(harness, 4001)
    await head.send_text("/staff")
    await harness.settle()
    menu = head.last_message

    # Another block's appeal: "not found", as for anyone who may not see it, from a forged button and the service.
    for action in (StaffAction.open, StaffAction.show, StaffAction.take):
        result = await press(harness, head, menu.message_id, StaffCb(action=action, id=housing.id, v=1, s="x").pack())
        assert result.answer == "Appeal not found." and not result.sent and not result.edited
    with pytest.raises(AppealHidden):
        await services.views.card(person, housing.id)
    with pytest.raises(AppealHidden):
        await services.coordination.reject(person, housing.id, "spam")

    # The own block's card opens from a forged «Open» too, read-only.
    await head.press_callback(menu.message_id, StaffCb(action=StaffAction.open, id=own.id, v=1, s="x").pack())
    await harness.settle()
    card = head.last_message
    assert card.text.startswith(f"Appeal № {own.number}") and "Ivanov" not in card.text
    before = await rows_state(harness)
    audited = len(await harness.rows(AuditEntry, AuditEntry.action == "refused"))
    intent = intent_of(card) if card.inline_keyboard else None
    widgets = [
        "route",
        "route_to",
        "category",
        "kind",
        "reject",
        "duplicate",
        "approve",
        "send_back",
        "take",
        "clarify",
        "interim",
        "redirect",
        "extension",
        "answer",
        "files",
        "location",
        "agency:1",
        "reason:spam",
        "send",
    ]
    assert intent is not None
    for widget in widgets:
        result = await press(harness, head, card.message_id, with_intent(intent, widget))
        refused(result, widget, sees=True)
        assert result.answer in WHO_MAY_ACT | {"This is not available to you.", "This button is no longer active."}
    # The notification's «Take in work» on the own block's appeal: who may do it, and nothing happens.
    result = await press(harness, head, card.message_id, StaffCb(action=StaffAction.take, id=own.id, v=1, s="x").pack())
    assert result.answer == "Only the agency the appeal is assigned to can do this."
    assert await rows_state(harness) == before
    refusals = await harness.rows(AuditEntry, AuditEntry.action == "refused")
    assert len(refusals) > audited and all(a.actor_id == person.id for a in refusals[audited:])

    # In the services: every action is refused, with who may act (the appeal is theirs to read).
    with pytest.raises(NotYours):
        await services.coordination.reject(person, own.id, "spam")
    with pytest.raises(NotYours):
        await services.agency.take(person, own.id)
    with pytest.raises(NotYours):
        await services.views.card(person, own.id, action="files")
    [row] = await harness.rows(Appeal, Appeal.id == own.id)
    assert row.status == "assigned"


async def test_the_block_list_is_the_block_heads_only(harness: Harness) -> None:
    """The service refuses the list to anyone but a block head (audited), and a forged filter is no filter."""
    assert harness.app is not None
    services = harness.app.services
    await service_appeal(harness, 1101, "roads_potholes")
    head = await block_head(harness)
    leader = await join(harness, 4002, LEADERSHIP)
    coordinator = await join(harness, 2001, "RMC coordinator")
    for person in (leader, coordinator):
        with pytest.raises(Forbidden):
            await services.views.block_appeals(await actor(harness, person.id))
    page = await services.views.block_appeals(await actor(harness, head.id), AppealStatus.moderation)
    assert page.total == 1 and len(page.items) == 1
    # A forged filter widget on the list: a status that does not exist changes nothing.
    await head.send_text("/staff")
    await harness.settle()
    await head.click(BLOCK_LIST)
    await harness.settle()
    screen = head.last_message
    result = await press(harness, head, screen.message_id, with_intent(intent_of(screen), "status:forged"))
    assert result.answer == "This option is no longer available."
    assert "Appeals of the block «Roads»: 1" in head.message(screen.message_id).text


# --- 4. the leadership: no appeal at all ------------------------------------------------------------------------


async def test_the_leadership_opens_no_appeal_card_list_or_file(harness: Harness) -> None:
    appeal = await personal_appeal(harness)
    await route(harness, appeal)
    leader = await join(harness, 4002, LEADERSHIP)
    assert harness.app is not None
    services = harness.app.services
    person = await actor(harness, 4002)

    await leader.send_text("/staff")
    await harness.settle()
    menu = leader.last_message
    assert menu.buttons == ["✖ Close"]
    before = await rows_state(harness)
    audited = len(await harness.rows(AuditEntry, AuditEntry.action == "refused"))
    intent = intent_of(menu)
    for widget in ("queue", "reviews", "requests", "inbox", "block_appeals", "invite", "people", f"appeal:{appeal.id}"):
        refused(await press(harness, leader, menu.message_id, with_intent(intent, widget)), widget)
    for action in StaffAction:
        data = StaffCb(action=action, id=appeal.id, v=1, s="x").pack()
        result = await press(harness, leader, menu.message_id, data)
        assert result.answer == "Appeal not found." and not result.sent and not result.edited, action
    # A deep link naming the appeal opens nothing of it.
    for argument in (str(appeal.id), appeal.number, f"ap_{appeal.id}"):
        await leader.send_text(f"/start {argument}")
        await harness.settle()
        assert appeal.number not in leader.last_message.text and "pothole" not in leader.last_message.text
    assert not any("pothole" in m.text or "Ivanov" in m.text for m in leader.messages)
    assert await rows_state(harness) == before
    assert len(await harness.rows(AuditEntry, AuditEntry.action == "refused")) > audited

    # In the services: the card, its files, any note, any list and any action.
    for call in (
        services.views.card(person, appeal.id),
        services.views.card(person, appeal.id, action="files"),
        services.coordination.reject(person, appeal.id, "spam"),
        services.agency.take(person, appeal.id),
    ):
        with pytest.raises(AppealHidden):
            await call
    for listing in (services.views.queue(person), services.views.inbox(person), services.views.block_appeals(person)):
        with pytest.raises(Forbidden):
            await listing


async def test_analysts_and_coordinators_are_unchanged(harness: Harness) -> None:
    """The analyst still sees no appeal; the coordinator and the agency still see the resident's data."""
    appeal = await personal_appeal(harness)
    agency_id = await route(harness, appeal)
    assert harness.app is not None
    services = harness.app.services
    analyst = await join(harness, 4010, "analyst")
    with pytest.raises(AppealHidden):
        await services.views.card(await actor(harness, analyst.id), appeal.id)
    coordinator = await services.users.identify(2050)
    card = await services.views.card(coordinator, appeal.id)
    assert card.applicant_name == "Ivanov Ivan Ivanovich" and card.address and card.attachments and not card.read_only
    official = await join(harness, 3001, "official", (await agency_names(harness))[agency_id])
    card = await services.views.card(await actor(harness, official.id), appeal.id)
    assert card.applicant_contact == "+7 928 000-11-22" and card.latitude is not None


# --- services: the read-only card ------------------------------------------------------------------------------


async def test_the_read_only_card_leaves_out_what_the_resident_wrote_after_filing(services: Any, clock: Any) -> None:
    """A block head reads the staff's notes and the history, not the resident's clarification reply (where people
    give an address or a phone when asked), nor the comments of ratings; the coordinator still reads everything."""
    world = await factories.make_world(services, clock)
    block = services.directory.blocks()[0]  # the block of the default draft's category
    link = await services.access.create_invite(world["admin"], "block_head", None, block.id)
    person = await services.users.identify(4001)
    await services.access.redeem(person, link.token)
    head = await services.users.identify(4001)
    row = await world.clarification(
        "Which house and entrance?", kind="appeal", applicant_name="Petrov Petr", applicant_contact="petrov@example.org"
    )
    await services.replies.reply_clarification(world["owner"], row.id, "House 5, flat 12, call 8-928-555-44-33")
    await services.agency.interim(world["official"], row.id, "A crew is on its way")

    card = await services.views.card(head, row.id)
    assert card.read_only and card.text == row.text
    kinds = [n.kind for n in card.notes]
    assert kinds == ["clarification_question", "interim"]
    assert not any("8-928" in n.text for n in card.notes)
    for value in (card.applicant_name, card.applicant_contact, card.address, card.latitude, card.suggested_agency_id):
        assert value is None
    assert card.attachments == [] and card.resident_history == [] and [h.event for h in card.history]

    full = await services.views.card(world["coordinator"], row.id)
    assert not full.read_only and full.applicant_name == "Petrov Petr" and full.attachments
    assert any("8-928" in n.text for n in full.notes)
    # Another block's head gets "not found", and the list of the block has the appeal.
    other = next(b for b in services.directory.blocks() if b.id != block.id)
    link = await services.access.create_invite(world["admin"], "block_head", None, other.id)
    stranger = await services.users.identify(4002)
    await services.access.redeem(stranger, link.token)
    with pytest.raises(AppealHidden):
        await services.views.card(await services.users.identify(4002), row.id)
    page = await services.views.block_appeals(head)
    assert [i.id for i in page.items] == [row.id] and page.total == 1
    assert (await services.views.block_appeals(await services.users.identify(4002))).total == 0
    # A rating's score is read, not the resident's comment on it.
    done = await factories.answered(world, draft_id="draft-rated")
    await factories.rate(services, done.id, 2, "Nobody came, call me at 8-928-555-44-33")
    [rating] = (await services.views.card(head, done.id)).ratings
    assert (rating.score, rating.comment) == (2, None)
    [rating] = (await services.views.card(world["coordinator"], done.id)).ratings
    assert rating.comment and "8-928" in rating.comment
