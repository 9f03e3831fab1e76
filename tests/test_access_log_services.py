"""The access log's service (bot/services/access_log.py) and the views that write it, without Telegram: what a
view writes, what a refusal writes, the targets an admin may type, the listing's pages and its export."""

from __future__ import annotations

import pytest

from bot.clock import ManualClock
from bot.domain import AccessKind, Role
from bot.services import Services
from bot.services.access_log import AccessTarget
from bot.services.errors import AppealHidden, Forbidden, InvalidInput
from storage.models import AccessEntry, AuditEntry
from tests import factories
from tests.factories import TG, World, make_world, rows


@pytest.fixture
async def world(services: Services, clock: ManualClock) -> World:
    return await make_world(services, clock)


async def logged(world: World) -> list[tuple[int, str, int | None, int | None]]:
    return [(r.actor_id, r.kind, r.appeal_id, r.subject_user_id) for r in await rows(world.services, AccessEntry)]


async def test_a_shown_card_its_files_and_place_are_logged_and_a_check_or_a_refusal_is_not(world: World) -> None:
    s, coordinator = world.services, world["coordinator"]
    named = await world.file(kind="appeal", applicant_name="Ivanov Ivan", applicant_contact="+7 928 000-11-22",
                             latitude=43.3, longitude=45.7)
    owner = world["owner"].id
    await s.views.card(coordinator, named.id)  # a check before acting: not a view
    assert await logged(world) == []
    card = await s.views.show_card(coordinator, named.id)
    assert card.applicant_name == "Ivanov Ivan"
    assert await logged(world) == [
        (coordinator.id, AccessKind.appeal_card, named.id, owner),
        (coordinator.id, AccessKind.resident_contact, named.id, owner),
    ]
    [entry, _contact] = await rows(s, AccessEntry)
    assert entry.at == world.clock.now()
    world.clock.advance(minutes=5)
    files = await s.views.files(coordinator, named.id)
    assert [f.file_id for f in files] == ["file-1"]
    assert await s.views.location(coordinator, named.id) == (43.3, 45.7)
    assert (await logged(world))[2:] == [
        (coordinator.id, AccessKind.appeal_files, named.id, owner),
        (coordinator.id, AccessKind.appeal_location, named.id, owner),
    ]

    # Nothing to send, nothing shown: refused, not logged.
    plain = await world.file(attachments=())
    before = await logged(world)
    with pytest.raises(InvalidInput):
        await s.views.files(coordinator, plain.id)
    with pytest.raises(InvalidInput):
        await s.views.location(coordinator, plain.id)
    # A card out of the person's scope (another agency's official, a resident): refused, not logged.
    with pytest.raises(AppealHidden):
        await s.views.show_card(world["official_b"], plain.id)
    with pytest.raises(Forbidden):
        await s.views.show_card(world["owner"], plain.id)
    assert await logged(world) == before


async def test_only_admins_read_the_log_and_a_refusal_is_audited(world: World) -> None:
    s = world.services
    appeal = await world.file()
    target = AccessTarget(appeal_id=appeal.id, number=appeal.number)
    for name in ("coordinator", "official", "analyst", "owner"):
        person = world[name]
        for call in (
            s.access_log.check(person),
            s.access_log.appeal_target(person, appeal.number),
            s.access_log.person_target(person, str(TG["owner"])),
            s.access_log.page(person, target),
            s.access_log.export(person, target),
        ):
            with pytest.raises(Forbidden) as refused:
                await call
            assert refused.value.detail == "access_log"
    audits = await rows(s, AuditEntry, AuditEntry.action == "refused")
    assert len(audits) == 20 and {a.details["refused"] for a in audits} == {"access_log"}
    assert await logged(world) == []


async def test_the_targets_an_admin_types(world: World) -> None:
    s, admin = world.services, world["admin"]
    appeal = await world.file()
    assert await s.access_log.appeal_target(admin, f" {appeal.number} ") == AccessTarget(
        appeal_id=appeal.id, number=appeal.number
    )
    assert await s.access_log.person_target(admin, appeal.number) == AccessTarget(
        subject_user_id=world["owner"].id, number=appeal.number
    )
    assert await s.access_log.person_target(admin, str(TG["other"])) == AccessTarget(
        subject_user_id=world["other"].id, tg_id=TG["other"]
    )
    for typed, detail in (("2026-1", "number_format"), ("2026-000123x", "number_format"), ("", "number_format"),
                          ("2026-999999", "no_appeal")):
        with pytest.raises(InvalidInput) as error:
            await s.access_log.appeal_target(admin, typed)
        assert error.value.detail == detail, typed
    for typed, detail in (("nobody", "person_format"), ("-5", "person_format"), ("123456789", "no_person"),
                          ("2026-999999", "no_appeal")):
        with pytest.raises(InvalidInput) as error:
            await s.access_log.person_target(admin, typed)
        assert error.value.detail == detail, typed
    with pytest.raises(InvalidInput):  # neither an appeal nor a person: the whole log is never listed
        await s.access_log.page(admin, AccessTarget())
    assert await logged(world) == []


async def test_pages_newest_first_stay_put_while_rows_arrive_and_the_export_has_them_all(world: World) -> None:
    s, admin, coordinator, official = world.services, world["admin"], world["coordinator"], world["official"]
    appeal = await world.assigned()  # its assignment pushed the card to the official and the supervisor: 2 rows
    other = await world.file("other")
    for n in range(23):
        world.clock.advance(minutes=1)
        await s.views.show_card(official if n % 2 else coordinator, appeal.id)
    await s.views.show_card(coordinator, other.id)  # another appeal, another resident
    await s.access.revoke(admin, official.id, Role.official)  # roles are those held now
    target = await s.access_log.appeal_target(admin, appeal.number)

    first = await s.access_log.page(admin, target)
    assert (first.total, first.page, first.pages, len(first.rows)) == (25, 0, 3, 10)
    times = [r.at for r in first.rows]
    assert times == sorted(times, reverse=True) and times[0] == world.clock.now()
    assert first.rows[0].actor_roles == (Role.coordinator,) and first.rows[0].number == appeal.number
    assert first.rows[1].actor_id == official.id and first.rows[1].actor_roles == ()
    assert {r.kind for r in first.rows} == {AccessKind.appeal_card}
    # More views and this reading meanwhile: the listing's pages are those of when it was opened.
    await s.views.show_card(coordinator, appeal.id)
    second = await s.access_log.page(admin, target, 1, first.upto)
    assert second.total == 25 and second.rows[0].at < first.rows[-1].at
    last = await s.access_log.page(admin, target, 99, first.upto)  # beyond: the last page
    assert (last.page, len(last.rows)) == (2, 5)
    fresh = await s.access_log.page(admin, target)
    assert fresh.total == 25 + 1 + 3  # the view since, and the three readings

    everything = await s.access_log.export(admin, target)
    assert len(everything) == 30 and everything[0].kind == AccessKind.access_log_read
    reads = [r for r in await logged(world) if r[0] == admin.id]
    assert reads == [(admin.id, AccessKind.access_log_read, appeal.id, None)] * 4 + [
        (admin.id, AccessKind.access_log_export, appeal.id, None)
    ]

    # By person: the resident's appeal's views, not the other resident's.
    person = await s.access_log.person_target(admin, str(TG["owner"]))
    mine = await s.access_log.page(admin, person)
    assert mine.total == 26 and all(r.number == appeal.number for r in mine.rows)
    assert (await logged(world))[-1] == (admin.id, AccessKind.access_log_read, None, world["owner"].id)


# --- notifications that push a resident's data to staff (the review finding of issue 16) -------------------------


async def test_what_notifications_push_to_staff_is_logged_for_each_staff_recipient(world: World) -> None:
    s, coordinator, official, supervisor = world.services, world["coordinator"], world["official"], world["supervisor"]
    owner = world["owner"].id

    # The assignment carries the card (and the pin when there is one) to the agency's official and supervisor; the
    # other agency's staff and the coordinator who routed it are shown nothing.
    pinned = await world.file(latitude=43.3, longitude=45.7)
    await s.coordination.route(coordinator, pinned.id)
    assert sorted(await logged(world)) == sorted(
        (who, kind, pinned.id, owner)
        for who in (official.id, supervisor.id)
        for kind in (AccessKind.appeal_card, AccessKind.appeal_location)
    )
    plain = await world.file(latitude=None, longitude=None)
    before = len(await logged(world))
    await s.coordination.route(coordinator, plain.id)
    assert sorted((await logged(world))[before:]) == sorted(
        (who, AccessKind.appeal_card, plain.id, owner) for who in (official.id, supervisor.id)
    )

    # A redirect the coordinator approves sends the card to the other agency: its staff's rows.
    await s.agency.request_redirect(official, plain.id, world.agency_b, "Не наше")
    [request] = await s.views.pending_requests(coordinator)
    before = len(await logged(world))
    await s.coordination.decide(coordinator, request.id, approve=True)
    assert sorted((await logged(world))[before:]) == sorted(
        (who, AccessKind.appeal_card, plain.id, owner) for who in (world["official_b"].id, world["supervisor_b"].id)
    )

    # The resident sends the answered appeal back with a photo: their words and files reach the supervisors; routed
    # again, the assignment carries those words too.
    answered = await factories.answered(world)
    await s.ratings.rate(world["owner"], answered.id, 1)
    before = len(await logged(world))
    photo = factories.DraftAttachment("photo", "leak-photo", "u-leak")
    await s.ratings.reopen(world["owner"], answered.id, "Всё ещё течёт", attachments=(photo,))
    assert (await logged(world))[before:] == [
        (supervisor.id, AccessKind.resident_reply, answered.id, owner),
        (supervisor.id, AccessKind.appeal_files, answered.id, owner),
    ]
    before = len(await logged(world))
    await s.coordination.route(coordinator, answered.id)
    kinds = [kind for _who, kind, *_rest in (await logged(world))[before:]]
    assert kinds.count(AccessKind.resident_reply) == 2 and kinds.count(AccessKind.appeal_card) == 2

    # What the resident is sent of their own appeal (the answer, its files) is not logged; neither are notices with
    # numbers only (answers to review, requests).
    before = len(await logged(world))
    await factories.answered(world)
    assert all(who != owner for who, *_rest in await logged(world))
    assert [kind for _who, kind, *_rest in (await logged(world))[before:]] == [
        AccessKind.appeal_card, AccessKind.appeal_card  # its assignment (no pin) to the official and the supervisor
    ]


async def test_the_low_ratings_comments_are_logged_for_each_coordinator_told(world: World, clock: ManualClock) -> None:
    s = world.services
    commented = await factories.answered(world)
    silent = await factories.answered(world)
    await factories.rate(s, commented.id, 1, comment="Ничего не сделано", at=clock.now())
    await factories.rate(s, silent.id, 2, at=clock.now())
    before = len(await logged(world))
    clock.advance(days=1)
    assert await s.reminders.low_ratings() == 1
    assert (await logged(world))[before:] == [
        (world["coordinator"].id, AccessKind.resident_reply, commented.id, world["owner"].id)
    ]
    assert await s.reminders.low_ratings() == 0  # sent once a day: logged once
    assert len(await logged(world)) == before + 1
