"""The workflow after filing, and who may do what: service-level tests, no Telegram.

People are set up through the real services (config admin, invites, consent); the rows the services
write (status history, appeals, outbox, audit log, requests, messages) are read back and asserted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import ConfigError, LimitsSection, load_settings
from bot.domain import EVENT_OF_MOVE, STAFF_ONLY_EVENTS, TRANSITIONS, RejectReason
from bot.services import Services, build_services
from bot.services.access import INVITE_TTL, InviteLink
from bot.services.appeals import DraftAttachment
from bot.services.errors import Forbidden, IllegalTransition, InvalidInput, NotFound, ServiceError
from bot.services.users import Actor
from bot.services.views import Queue, StaffCard
from storage.db import create_engine, create_sessionmaker
from storage.models import (
    Appeal,
    AppealMessage,
    AppealRequest,
    AppealStatus,
    AuditEntry,
    Invite,
    Outbox,
    StatusHistory,
    UserRole,
)
from tests.conftest import make_settings
from tests.databases import checkpoint, copy_db
from tests.factories import (
    ROLE_NAMES,
    TG,
    World,
    admin,
    appeal,
    audits,
    events,
    history,
    last_id,
    load_world,
    make_world,
    outbox,
    rows,
    snapshot,
    staff,
)

MSK = ZoneInfo("Europe/Moscow")
REFUSED = "refused"  # the key of the refused action in the details of a "refused" audit row


def end_of_day(day: date) -> datetime:
    """23:59:59.999999 Moscow time of `day`, in UTC: where a term ends."""
    return datetime.combine(day, time.max, tzinfo=MSK).astimezone(UTC)


def by_recipient(sent: list[tuple[int, str, dict[str, Any]]]) -> list[tuple[int, str, dict[str, Any]]]:
    """Notifications of one change in a stable order (the services do not order recipients)."""
    return sorted(sent, key=lambda n: (n[1], n[0]))


def assignment(a: Appeal) -> dict[str, Any]:
    """What the "assigned" notification tells the agency's staff: the card, what, where and by when."""
    assert a.deadline_at is not None
    return {
        "appeal_id": a.id,
        "number": a.number,
        "category_id": a.category_id,
        "district_id": a.district_id,
        "deadline": a.deadline_at.isoformat(),
        "text": a.text,
        "address": a.address,
        "lat": a.latitude,
        "lon": a.longitude,
        "reopened": None,  # a first routing; a re-opened appeal carries the resident's words
    }


def without_audit(snap: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {table: values for table, values in snap.items() if table != AuditEntry.__tablename__}


# --- fixtures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A database file built once per session, and what the tests need to know of it."""

    path: Path
    people: dict[str, Actor]
    agency: int
    agency_b: int
    targets: dict[str, Target]


def build_template(source: Path, path: Path, *, people: bool, targets: bool) -> Template:
    copy_db(source, path)

    async def build() -> Template:
        settings = make_settings(path)
        engine = create_engine(settings.database.url)
        clock = ManualClock()
        built = build_services(settings, create_sessionmaker(engine), clock)
        await built.directory.reload()
        w = await make_world(built, clock) if people else await load_world(built, clock)
        prepared = {action: await prepare(w, action) for action in ACTIONS} if targets else {}
        await checkpoint(engine)
        await engine.dispose()
        return Template(path, w.people, w.agency, w.agency_b, prepared)

    return asyncio.run(build())


@pytest.fixture(scope="session")
def world_db(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The seeded database with everyone of factories.TG set up once through the services."""
    return build_template(template_db, tmp_path_factory.mktemp("world") / "world.db", people=True, targets=False)


@pytest.fixture(scope="session")
def matrix_db(world_db: Template, tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The world with one appeal prepared for each action of the matrix (its two hundred cases copy it)."""
    return build_template(world_db.path, tmp_path_factory.mktemp("matrix") / "matrix.db", people=False, targets=True)


async def open_world(template: Template, path: Path, clock: ManualClock) -> AsyncIterator[World]:
    copy_db(template.path, path)
    settings = make_settings(path)
    engine = create_engine(settings.database.url)
    built = build_services(settings, create_sessionmaker(engine), clock)
    await built.directory.reload()
    yield World(built, clock, dict(template.people), template.agency, template.agency_b)
    await engine.dispose()


@pytest.fixture
async def world(tmp_path: Path, world_db: Template, clock: ManualClock) -> AsyncIterator[World]:
    async for w in open_world(world_db, tmp_path / "world.db", clock):
        yield w


@pytest.fixture
async def matrix_world(tmp_path: Path, matrix_db: Template, clock: ManualClock) -> AsyncIterator[World]:
    async for w in open_world(matrix_db, tmp_path / "matrix.db", clock):
        yield w


async def test_the_world_is_set_up_through_the_services(world: World) -> None:
    people = world.people
    assert people["admin"].roles == {"admin"}
    assert (people["official"].roles, people["official"].agency_id) == ({"official"}, world.agency)
    assert (people["official_b"].roles, people["official_b"].agency_id) == ({"official"}, world.agency_b)
    assert (people["supervisor"].roles, people["supervisor"].agency_id) == ({"supervisor"}, world.agency)
    assert (people["supervisor_b"].roles, people["supervisor_b"].agency_id) == ({"supervisor"}, world.agency_b)
    for name in ("coordinator", "analyst", "editor"):
        assert (people[name].roles, people[name].agency_id) == ({name}, None)
    for name in ("owner", "other"):
        assert people[name].roles == frozenset() and people[name].has_consent
    assert world.agency != world.agency_b
    assert world.services.directory.agency(world.agency) is not None
    assert world.services.directory.agency(world.agency_b) is not None


# --- 1. the whole lifecycle ----------------------------------------------------------------------


async def test_the_whole_lifecycle_of_an_appeal(world: World, clock: ManualClock) -> None:
    s = world.services
    owner, coord = world["owner"], world["coordinator"]
    official, supervisor = world["official"], world["supervisor"]
    audit_mark = await last_id(s, AuditEntry)

    row = await world.file()
    assert (row.status, row.agency_id, row.deadline_at, row.official_id) == ("moderation", None, None, None)
    assert await s.views.suggest(row.category_id, row.district_id) == world.agency
    queue = await s.views.queue(coord)
    assert [i.id for i in queue.items] == [row.id] and queue.counts["moderation"] == 1
    ref = {"appeal_id": row.id, "number": row.number}

    # Routing: to the suggested agency, the term set, the agency's staff and the resident told.
    mark = await last_id(s, Outbox)
    assert await s.coordination.route(coord, row.id) == world.agency
    a = await appeal(s, row.id)
    assert (a.status, a.agency_id, a.assigned_at, a.official_id) == ("assigned", world.agency, clock.now(), None)
    assert a.deadline_at == end_of_day(date(2026, 11, 12))  # filed 2 November, a сообщение: 10 days
    routed_deadline = a.deadline_at
    assert by_recipient(await outbox(s, mark)) == by_recipient(
        [
            (official.id, "assigned", assignment(a)),
            (supervisor.id, "assigned", assignment(a)),
            (owner.id, "status_changed", {**ref, "status": "assigned"}),
        ]
    )
    assert [i.id for i in await s.views.inbox(official)] == [row.id]
    assert await s.views.inbox(world["official_b"]) == []

    # Taking it.
    clock.advance(hours=1)
    mark = await last_id(s, Outbox)
    await s.agency.take(official, row.id)
    a = await appeal(s, row.id)
    assert (a.status, a.official_id) == ("in_progress", official.id)
    assert await outbox(s, mark) == [(owner.id, "status_changed", {**ref, "status": "in_progress"})]

    # A question to the resident: the clock pauses.
    clock.advance(hours=1)
    asked_at = clock.now()
    mark = await last_id(s, Outbox)
    await s.agency.ask_clarification(official, row.id, "  Уточните номер дома  ")
    a = await appeal(s, row.id)
    assert (a.status, a.paused_at, a.deadline_at) == ("clarification", asked_at, routed_deadline)
    (question,) = await rows(s, AppealMessage, AppealMessage.appeal_id == row.id)
    assert (question.kind, question.author_id, question.text) == (
        "clarification_question",
        official.id,
        "Уточните номер дома",
    )
    assert await outbox(s, mark) == [(owner.id, "clarification_question", {**ref, "text": "Уточните номер дома"})]
    number, note = await s.views.note(owner, question.id)  # what the notification shows the resident
    assert (number, note.kind, note.text) == (row.number, "clarification_question", "Уточните номер дома")
    assert await s.views.waiting_clarification(owner) == [(row.id, row.number)]

    # The resident replies two days later: the two days are added to the term (Thursday 12 → Saturday 14,
    # a day off → Monday 16, as a term ending on a day off does).
    clock.advance(days=2)
    mark = await last_id(s, Outbox)
    await s.replies.reply_clarification(owner, row.id, "Дом 5, подъезд 2")
    a = await appeal(s, row.id)
    assert (a.status, a.paused_at, a.paused_seconds) == ("in_progress", None, 2 * 24 * 3600)
    assert a.deadline_at == routed_deadline + timedelta(days=4)
    reply = (await rows(s, AppealMessage, AppealMessage.appeal_id == row.id))[-1]
    assert (reply.kind, reply.author_id, reply.text) == ("clarification_reply", owner.id, "Дом 5, подъезд 2")
    assert await outbox(s, mark) == [(official.id, "clarification_reply", {**ref, "text": "Дом 5, подъезд 2"})]
    assert (await s.views.note(official, reply.id))[1].text == "Дом 5, подъезд 2"
    assert await s.views.waiting_clarification(owner) == []

    # The answer goes to the coordinator first; the resident cannot read it yet.
    clock.advance(hours=3)
    mark = await last_id(s, Outbox)
    await s.agency.answer(official, row.id, "Водоснабжение восстановлено")
    assert (await appeal(s, row.id)).status == "answer_review"
    first = (await rows(s, AppealMessage, AppealMessage.appeal_id == row.id))[-1]
    assert (first.kind, first.status, first.author_id) == ("answer", "review", official.id)
    assert await outbox(s, mark) == [(coord.id, "answer_review", ref)]
    assert [i.id for i in await s.views.reviews(coord)] == [row.id]
    with pytest.raises(NotFound):  # to the resident, an answer under review does not exist yet
        await s.views.note(owner, first.id)

    # Returned for rework with a comment.
    mark = await last_id(s, Outbox)
    await s.coordination.review(coord, row.id, approve=False, comment="Укажите, когда именно")
    assert (await appeal(s, row.id)).status == "in_progress"
    first = (await rows(s, AppealMessage, AppealMessage.id == first.id))[0]
    assert (first.status, first.review_comment) == ("returned", "Укажите, когда именно")
    assert await outbox(s, mark) == [(official.id, "answer_returned", {**ref, "comment": "Укажите, когда именно"})]

    # Answered again and approved: the resident receives it.
    clock.advance(hours=1)
    await s.agency.answer(official, row.id, "Водоснабжение восстановлено 5 ноября в 14:00")
    second = (await rows(s, AppealMessage, AppealMessage.appeal_id == row.id))[-1]
    mark = await last_id(s, Outbox)
    await s.coordination.review(coord, row.id, approve=True)
    a = await appeal(s, row.id)
    assert (a.status, a.official_id, a.agency_id) == ("answered", official.id, world.agency)
    assert a.deadline_at == routed_deadline + timedelta(days=4)
    assert (await rows(s, AppealMessage, AppealMessage.id == second.id))[0].status == "approved"
    assert await outbox(s, mark) == [
        (owner.id, "answer", {**ref, "text": "Водоснабжение восстановлено 5 ноября в 14:00"}),
        # Right after the answer, the owner is asked to rate it (issue 12): that answer, by its note.
        (owner.id, "rate_request", {**ref, "note_id": second.id}),
    ]
    assert (await s.views.note(owner, second.id))[1].text == "Водоснабжение восстановлено 5 ноября в 14:00"

    assert await history(s, row.id) == [
        (None, "moderation", owner.id, None),
        ("moderation", "assigned", coord.id, None),
        ("assigned", "in_progress", official.id, None),
        ("in_progress", "clarification", official.id, None),
        ("clarification", "in_progress", owner.id, None),
        ("in_progress", "answer_review", official.id, None),
        ("answer_review", "in_progress", coord.id, "Укажите, когда именно"),
        ("in_progress", "answer_review", official.id, None),
        ("answer_review", "answered", coord.id, None),
    ]
    # A resident peeking at the answer under review is told it does not exist: no staff refusal to audit.
    assert await audits(s, audit_mark) == []
    card = await s.views.card(coord, row.id)
    assert [n.kind for n in card.notes] == ["clarification_question", "clarification_reply", "answer", "answer"]


@pytest.mark.parametrize(
    ("kind", "filed_at", "last_day"),
    [
        ("message", datetime(2026, 11, 2, 9, 0, tzinfo=UTC), date(2026, 11, 12)),
        ("appeal", datetime(2026, 11, 2, 9, 0, tzinfo=UTC), date(2026, 12, 2)),
        # 21:30 UTC is already 3 November in Moscow: the term counts from the Moscow date.
        ("message", datetime(2026, 11, 2, 21, 30, tzinfo=UTC), date(2026, 11, 13)),
        ("appeal", datetime(2026, 11, 2, 20, 59, tzinfo=UTC), date(2026, 12, 2)),
    ],
)
async def test_routing_sets_the_term_to_the_end_of_the_last_moscow_day(
    world: World, clock: ManualClock, kind: str, filed_at: datetime, last_day: date
) -> None:
    clock.set(filed_at)
    extra = {"applicant_name": "Иванов Иван", "applicant_contact": "+79280000000"} if kind == "appeal" else {}
    row = await world.file(kind=kind, **extra)
    clock.advance(days=1)  # routed the next day: the term still counts from the registration
    await world.services.coordination.route(world["coordinator"], row.id)
    assert (await appeal(world.services, row.id)).deadline_at == end_of_day(last_day)


# --- 2. rejecting, duplicates, illegal moves -----------------------------------------------------


@pytest.mark.parametrize("reason", list(RejectReason))
async def test_reject_with_each_reason(world: World, clock: ManualClock, reason: str) -> None:
    s, coord, owner = world.services, world["coordinator"], world["owner"]
    row = await world.file()
    mark = await last_id(s, Outbox)
    await world.services.coordination.reject(coord, row.id, reason)
    a = await appeal(s, row.id)
    assert (a.status, a.reject_reason, a.agency_id, a.deadline_at) == ("rejected", reason, None, None)
    assert (await history(s, row.id))[-1] == ("moderation", "rejected", coord.id, None)
    assert (await events(s, row.id))[-1] == ("rejected", "resident", {"reason": reason}, None)
    assert await outbox(s, mark) == [
        (owner.id, "rejected", {"appeal_id": row.id, "number": row.number, "reason": reason})
    ]


@pytest.mark.parametrize("reason", ["rude", "", "SPAM", "spam "])
async def test_an_unknown_reject_reason_is_refused(world: World, reason: str) -> None:
    row = await world.file()
    before = await snapshot(world.services)
    with pytest.raises(InvalidInput) as caught:
        await world.services.coordination.reject(world["coordinator"], row.id, reason)
    assert caught.value.detail == "reason"
    assert await snapshot(world.services) == before


async def test_a_duplicate_is_closed_and_its_resident_follows_the_original(world: World) -> None:
    s, coord = world.services, world["coordinator"]
    owner, other = world["owner"], world["other"]
    original = await world.file("owner")
    dup = await world.file("other")

    mark = await last_id(s, Outbox)
    assert await s.coordination.mark_duplicate(coord, dup.id, f"  {original.number} ") == original.number
    d = await appeal(s, dup.id)
    assert (d.status, d.duplicate_of_id) == ("closed", original.id)
    assert (await history(s, dup.id))[-1] == ("moderation", "closed", coord.id, None)
    assert (await events(s, dup.id))[-1] == ("duplicate", "resident", {"original": original.number}, None)
    assert await outbox(s, mark) == [
        (
            other.id,
            "duplicate",
            {"appeal_id": dup.id, "number": dup.number, "original": original.number, "status": "moderation"},
        )
    ]
    assert (await appeal(s, original.id)).status == "moderation"

    # A later change of the original reaches both residents.
    mark = await last_id(s, Outbox)
    await s.coordination.route(coord, original.id)
    changed = [(u, p) for u, t, p in await outbox(s, mark) if t == "status_changed"]
    ref = {"appeal_id": original.id, "number": original.number, "status": "assigned"}
    assert sorted(changed, key=lambda c: c[0]) == [(owner.id, ref), (other.id, ref)]

    # The answer too, and the rejection would have: everything for the resident goes to the follower.
    await s.agency.take(world["official"], original.id)
    await s.agency.answer(world["official"], original.id, "Сделано")
    mark = await last_id(s, Outbox)
    await s.coordination.review(coord, original.id, approve=True)
    answers = [(u, t) for u, t, _ in await outbox(s, mark)]
    # Only the owner is asked to rate it (issue 12): a follower gets the answer, not the rating buttons.
    assert sorted(answers) == sorted([(owner.id, "answer"), (other.id, "answer"), (owner.id, "rate_request")])


async def test_a_follower_receives_the_answer_and_its_files(world: World) -> None:
    s, coord = world.services, world["coordinator"]
    original = await world.file("owner")
    dup = await world.file("other")
    await s.coordination.mark_duplicate(coord, dup.id, original.number)
    await s.coordination.route(coord, original.id)
    await s.agency.take(world["official"], original.id)
    await s.agency.answer(
        world["official"], original.id, "Сделано", attachments=(DraftAttachment("document", "act-1", "ua"),)
    )
    mark = await last_id(s, Outbox)
    await s.coordination.review(coord, original.id, approve=True)
    ref = {"appeal_id": original.id, "number": original.number}
    files = {"files": [["document", "act-1"]]}
    answer = (await rows(s, AppealMessage, AppealMessage.appeal_id == original.id, AppealMessage.kind == "answer"))[-1]
    assert by_recipient(await outbox(s, mark)) == by_recipient(
        [
            (world["owner"].id, "answer", {**ref, "text": "Сделано"}),
            (world["other"].id, "answer", {**ref, "text": "Сделано"}),
            (world["owner"].id, "files", files),
            (world["other"].id, "files", files),
            (world["owner"].id, "rate_request", {**ref, "note_id": answer.id}),  # after the files, to the owner only
        ]
    )


async def test_a_duplicate_needs_a_real_original(world: World) -> None:
    s, coord = world.services, world["coordinator"]
    first = await world.file("owner")
    second = await world.file("other")
    third = await world.file("other")
    await s.coordination.mark_duplicate(coord, second.id, first.number)
    before = await snapshot(s)
    for appeal_id, number, detail in [
        (third.id, third.number, "original_self"),  # itself
        (third.id, f"№ {third.number}", "original_self"),  # as the bot writes it
        (third.id, "2026-999999", "original"),  # no such appeal
        (third.id, second.number, "original"),  # a duplicate itself: follow the original instead
    ]:
        with pytest.raises(InvalidInput) as caught:
            await s.coordination.mark_duplicate(coord, appeal_id, number)
        assert caught.value.detail == detail, number
    # A closed original: its follower would be told of progress that never comes.
    await s.coordination.reject(coord, first.id, "unreadable")
    fourth = await world.file("other")
    before = await snapshot(s)
    with pytest.raises(InvalidInput) as caught:
        await s.coordination.mark_duplicate(coord, fourth.id, first.number)
    assert caught.value.detail == "original_closed"
    assert await snapshot(s) == before


OTHER_DRAFT = "the-other-appeal"


async def _duplicate(w: World, a: Appeal) -> object:
    (other,) = await rows(w.services, Appeal, Appeal.draft_id == OTHER_DRAFT)
    return await w.services.coordination.mark_duplicate(w["coordinator"], a.id, other.number)


Step = Callable[[World, Appeal], Awaitable[object]]
ILLEGAL: list[tuple[str, str, Step, type[ServiceError]]] = [
    # take() is for a new assignment only; clarification and answer_review -> in_progress are other moves.
    ("take_in_clarification", "clarification", lambda w, a: w.services.agency.take(w["official"], a.id), IllegalTransition),
    ("take_under_review", "answer_review", lambda w, a: w.services.agency.take(w["supervisor"], a.id), IllegalTransition),
    ("take_taken", "in_progress", lambda w, a: w.services.agency.take(w["official"], a.id), IllegalTransition),
    ("answer_before_taking", "assigned", lambda w, a: w.services.agency.answer(w["official"], a.id, "Ответ"), IllegalTransition),
    ("answer_twice", "answer_review", lambda w, a: w.services.agency.answer(w["official"], a.id, "Ответ"), IllegalTransition),
    ("review_no_answer", "in_progress", lambda w, a: w.services.coordination.review(w["coordinator"], a.id, True), IllegalTransition),
    (
        "return_no_answer",
        "assigned",
        lambda w, a: w.services.coordination.review(w["coordinator"], a.id, False, "Переделать"),
        IllegalTransition,
    ),
    ("review_in_moderation", "moderation", lambda w, a: w.services.coordination.review(w["admin"], a.id, True), IllegalTransition),
    (
        "reply_not_asked",
        "in_progress",
        lambda w, a: w.services.replies.reply_clarification(w["owner"], a.id, "Дом 5"),
        IllegalTransition,
    ),
    (
        "reply_in_moderation",
        "moderation",
        lambda w, a: w.services.replies.reply_clarification(w["owner"], a.id, "Дом 5"),
        IllegalTransition,
    ),
    (
        "ask_twice",
        "clarification",
        lambda w, a: w.services.agency.ask_clarification(w["official"], a.id, "Ещё вопрос"),
        IllegalTransition,
    ),
    (
        "ask_under_review",
        "answer_review",
        lambda w, a: w.services.agency.ask_clarification(w["official"], a.id, "Вопрос"),
        IllegalTransition,
    ),
    (
        "interim_under_review",
        "answer_review",
        lambda w, a: w.services.agency.interim(w["official"], a.id, "Идёт"),
        IllegalTransition,
    ),
    (
        "interim_in_clarification",
        "clarification",
        lambda w, a: w.services.agency.interim(w["official"], a.id, "Идёт"),
        IllegalTransition,
    ),
    ("route_in_clarification", "clarification", lambda w, a: w.services.coordination.route(w["coordinator"], a.id), IllegalTransition),
    ("route_under_review", "answer_review", lambda w, a: w.services.coordination.route(w["coordinator"], a.id), IllegalTransition),
    ("reject_after_routing", "assigned", lambda w, a: w.services.coordination.reject(w["coordinator"], a.id, "spam"), IllegalTransition),
    ("duplicate_after_taking", "in_progress", _duplicate, IllegalTransition),
    (
        "change_after_routing",
        "assigned",
        lambda w, a: w.services.coordination.change(w["coordinator"], a.id, kind="appeal"),
        IllegalTransition,
    ),
    (
        "redirect_under_review",
        "answer_review",
        lambda w, a: w.services.agency.request_redirect(w["official"], a.id, w.agency_b, "Не наше"),
        InvalidInput,
    ),
    (
        "extension_under_review",
        "answer_review",
        lambda w, a: w.services.agency.request_extension(w["official"], a.id, 10, "Долго"),
        InvalidInput,
    ),
]


async def in_state(w: World, state: str) -> Appeal:
    make: dict[str, Callable[[], Awaitable[Appeal]]] = {
        "moderation": w.file,
        "assigned": w.assigned,
        "in_progress": w.in_progress,
        "clarification": w.clarification,
        "answer_review": w.answer_review,
    }
    return await make[state]()


@pytest.mark.parametrize(("state", "step", "error"), [c[1:] for c in ILLEGAL], ids=[c[0] for c in ILLEGAL])
async def test_an_illegal_move_is_refused_and_nothing_is_written(
    world: World, state: str, step: Step, error: type[ServiceError]
) -> None:
    row = await in_state(world, state)
    await world.file("other", draft_id=OTHER_DRAFT)  # an original for the duplicate case
    before = await snapshot(world.services)
    with pytest.raises(error):
        await step(world, row)
    assert await snapshot(world.services) == before
    assert (await appeal(world.services, row.id)).status == state


async def test_taking_an_appeal_still_in_moderation_is_refused(world: World) -> None:
    """No agency has it yet, so no official may touch it: refused (and audited), nothing else written."""
    s = world.services
    row = await world.file()
    for name in ("official", "supervisor", "coordinator"):
        before = await snapshot(s)
        mark = await last_id(s, AuditEntry)
        with pytest.raises(Forbidden):
            await world.services.agency.take(world[name], row.id)
        assert without_audit(await snapshot(s)) == without_audit(before)
        assert await audits(s, mark) == [(world[name].id, "refused", None, {REFUSED: "take", "appeal_id": row.id})]
    assert (await appeal(s, row.id)).status == "moderation"


async def test_returning_an_answer_needs_a_comment(world: World) -> None:
    row = await world.answer_review()
    before = await snapshot(world.services)
    for comment in (None, "", " x "):
        with pytest.raises(InvalidInput):
            await world.services.coordination.review(world["coordinator"], row.id, approve=False, comment=comment)
    assert await snapshot(world.services) == before


async def test_with_no_coordinator_the_admins_review_and_decide(world: World) -> None:
    s, boss, official = world.services, world["admin"], world["official"]
    await s.access.revoke(boss, world["coordinator"].id, "coordinator")
    row = await world.in_progress()
    mark = await last_id(s, Outbox)
    await world.services.agency.request_extension(official, row.id, 5, "Нужна экспертиза")
    await world.services.agency.answer(official, row.id, "Сделано")
    assert [(u, t) for u, t, _ in await outbox(s, mark)] == [(boss.id, "request_pending"), (boss.id, "answer_review")]
    await world.services.coordination.review(boss, row.id, approve=True)
    assert (await appeal(s, row.id)).status == "answered"


# --- 3. redirects and extensions -----------------------------------------------------------------


async def test_a_redirect_approved_moves_the_appeal_to_the_other_agency(world: World, clock: ManualClock) -> None:
    s, coord = world.services, world["coordinator"]
    official, owner = world["official"], world["owner"]
    row = await world.in_progress()
    ref = {"appeal_id": row.id, "number": row.number}

    with pytest.raises(InvalidInput) as caught:  # to the agency it is already at
        await s.agency.request_redirect(official, row.id, world.agency, "Не наша компетенция")
    assert caught.value.detail == "redirect"
    with pytest.raises(InvalidInput):  # no such agency
        await s.agency.request_redirect(official, row.id, 999_999, "Не наша компетенция")

    mark = await last_id(s, Outbox)
    await s.agency.request_redirect(official, row.id, world.agency_b, "  Не наша компетенция ")
    (request,) = await rows(s, AppealRequest)
    assert (request.appeal_id, request.kind, request.requested_by, request.agency_id, request.days) == (
        row.id,
        "redirect",
        official.id,
        world.agency_b,
        None,
    )
    assert (request.reason, request.status, request.decided_by, request.created_at) == (
        "Не наша компетенция",
        "pending",
        None,
        clock.now(),
    )
    assert await outbox(s, mark) == [(coord.id, "request_pending", {**ref, "kind": "redirect"})]
    assert [(p.id, p.kind, p.agency_id) for p in await s.views.pending_requests(coord)] == [
        (request.id, "redirect", world.agency_b)
    ]
    assert [p.id for p in (await s.views.card(coord, row.id)).requests] == [request.id]
    assert (await s.views.queue(coord)).counts["requests"] == 1
    before = await snapshot(s)
    with pytest.raises(InvalidInput) as caught:
        await s.agency.request_redirect(world["supervisor"], row.id, world.agency_b, "Ещё раз")
    assert caught.value.detail == "request_pending"
    assert await snapshot(s) == before

    clock.advance(hours=2)
    deadline = (await appeal(s, row.id)).deadline_at
    mark, audit_mark = await last_id(s, Outbox), await last_id(s, AuditEntry)
    await s.coordination.decide(coord, request.id, approve=True)
    a = await appeal(s, row.id)
    assert (a.status, a.agency_id, a.official_id, a.assigned_at, a.deadline_at) == (
        "assigned",
        world.agency_b,
        None,
        clock.now(),
        deadline,
    )
    request = (await rows(s, AppealRequest, AppealRequest.id == request.id))[0]
    assert (request.status, request.decided_by, request.decided_at) == ("approved", coord.id, clock.now())
    assert (await history(s, row.id))[-1] == ("in_progress", "assigned", coord.id, "Не наша компетенция")
    assert by_recipient(await outbox(s, mark)) == by_recipient(
        [
            (owner.id, "status_changed", {**ref, "status": "assigned"}),
            (world["official_b"].id, "assigned", assignment(a)),
            (world["supervisor_b"].id, "assigned", assignment(a)),
            (official.id, "request_decided", {**ref, "kind": "redirect", "approved": True}),
        ]
    )
    assert await audits(s, audit_mark) == [
        (coord.id, "redirected", None, {"appeal_id": row.id, "old": world.agency, "new": world.agency_b})
    ]
    assert await s.views.pending_requests(coord) == []

    # The appeal is the other agency's now.
    with pytest.raises(Forbidden):
        await s.agency.take(official, row.id)
    with pytest.raises(Forbidden):
        await s.views.card(official, row.id)
    assert [i.id for i in await s.views.inbox(world["official_b"])] == [row.id]
    await s.agency.take(world["official_b"], row.id)
    # A decided request cannot be decided again.
    with pytest.raises(NotFound):
        await s.coordination.decide(coord, request.id, approve=False)


async def test_a_redirect_declined_changes_nothing_but_the_request(world: World, clock: ManualClock) -> None:
    s, coord, official = world.services, world["coordinator"], world["official"]
    row = await world.assigned()
    await s.agency.request_redirect(official, row.id, world.agency_b, "Не наша компетенция")
    (request,) = await rows(s, AppealRequest)
    before_appeal = await appeal(s, row.id)
    history_before = await history(s, row.id)
    clock.advance(minutes=5)
    mark = await last_id(s, Outbox)
    await s.coordination.decide(coord, request.id, approve=False)
    request = (await rows(s, AppealRequest, AppealRequest.id == request.id))[0]
    assert (request.status, request.decided_by, request.decided_at) == ("declined", coord.id, clock.now())
    a = await appeal(s, row.id)
    assert (a.status, a.agency_id, a.updated_at) == ("assigned", world.agency, before_appeal.updated_at)
    assert await history(s, row.id) == history_before
    assert await outbox(s, mark) == [
        (
            official.id,
            "request_decided",
            {"appeal_id": row.id, "number": row.number, "kind": "redirect", "approved": False},
        )
    ]
    # Declined, it no longer blocks another request.
    await s.agency.request_redirect(official, row.id, world.agency_b, "Всё же не наша")
    assert len(await s.views.pending_requests(coord)) == 1


async def test_the_limits_come_from_the_config(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every length, count and day limit of the workflow is read from [limits], none is a literal."""
    file = tmp_path / "config.toml"
    file.write_text('[bot]\ntoken = "1:A"\n[limits]\nquestion_max = 20\nextension_max_days = 5\n')
    assert load_settings(file).limits.question_max == 20
    assert load_settings(file).limits.text_max == 4000  # the defaults are today's values
    file.write_text('[bot]\ntoken = "1:A"\n[limits]\nextension_max_days = 31\n')
    with pytest.raises(ConfigError, match=r"limits\.extension_max_days"):
        load_settings(file)

    limits = LimitsSection(
        text_max=30, note_min=3, comment_max=12, question_max=20, attachments_max=1, extension_max_days=5
    )
    monkeypatch.setattr(world.services.agency.settings, "limits", limits)  # one Settings for every service
    s, official, owner = world.services, world["official"], world["owner"]
    row = await world.in_progress()
    files = [DraftAttachment("photo", f"f{i}", f"u{i}") for i in range(2)]
    refused: list[Callable[[], Awaitable[object]]] = [
        lambda: s.agency.ask_clarification(official, row.id, "В" * 21),
        lambda: s.agency.ask_clarification(official, row.id, "Да"),  # under note_min
        lambda: s.agency.request_extension(official, row.id, 6, "Экспертиза"),
        lambda: s.agency.request_extension(official, row.id, 5, "Э" * 13),
        lambda: s.agency.request_redirect(official, row.id, world.agency_b, "Н" * 13),
        lambda: s.agency.interim(official, row.id, "И" * 31),
        lambda: s.agency.answer(official, row.id, "О" * 31),
        lambda: s.agency.answer(official, row.id, "Сделано", files),
    ]
    for call in refused:
        with pytest.raises(InvalidInput):
            await call()
    await s.agency.request_extension(official, row.id, 5, "Экспертиза")
    await s.agency.ask_clarification(official, row.id, "Какой подъезд?")
    with pytest.raises(InvalidInput, match="too_long"):
        await s.replies.reply_clarification(owner, row.id, "В" * 31)
    with pytest.raises(InvalidInput, match="too_long"):
        await s.replies.reply_clarification(owner, row.id, "Второй", files)
    await s.replies.reply_clarification(owner, row.id, "Второй", files[:1])
    await s.agency.answer(official, row.id, "Сделано", files[:1])
    with pytest.raises(InvalidInput):
        await s.coordination.review(world["coordinator"], row.id, False, "П" * 13)
    await s.coordination.review(world["coordinator"], row.id, False, "Нет фото")
    assert (await appeal(s, row.id)).status == AppealStatus.in_progress


async def test_an_extension_is_granted_once(world: World, clock: ManualClock) -> None:
    s, coord, official, owner = (
        world.services,
        world["coordinator"],
        world["official"],
        world["owner"],
    )
    row = await world.assigned()
    ref = {"appeal_id": row.id, "number": row.number}
    deadline = (await appeal(s, row.id)).deadline_at
    assert deadline == end_of_day(date(2026, 11, 12))

    mark = await last_id(s, Outbox)
    await s.agency.request_extension(official, row.id, 15, "Нужна экспертиза")
    (request,) = await rows(s, AppealRequest)
    assert (request.kind, request.days, request.agency_id, request.status, request.requested_by) == (
        "extension",
        15,
        None,
        "pending",
        official.id,
    )
    assert await outbox(s, mark) == [(coord.id, "request_pending", {**ref, "kind": "extension"})]
    with pytest.raises(InvalidInput) as caught:
        await s.agency.request_extension(world["supervisor"], row.id, 5, "И ещё")
    assert caught.value.detail == "request_pending"

    clock.advance(days=1)
    mark = await last_id(s, Outbox)
    await s.coordination.decide(coord, request.id, approve=True)
    a = await appeal(s, row.id)
    assert a.deadline_at == deadline + timedelta(days=15) == end_of_day(date(2026, 11, 27))
    assert (a.extension_used, a.status) == (True, "assigned")
    assert (await history(s, row.id))[-1] == ("assigned", "assigned", coord.id, "Нужна экспертиза")
    assert a.deadline_at is not None
    assert (await events(s, row.id))[-1] == (
        "extended",
        "resident",
        {"days": 15, "deadline": a.deadline_at.isoformat()},
        "Нужна экспертиза",
    )
    assert await outbox(s, mark) == [
        (owner.id, "extended", {**ref, "deadline": a.deadline_at.isoformat()}),
        (official.id, "request_decided", {**ref, "kind": "extension", "approved": True}),
    ]

    before = await snapshot(s)
    with pytest.raises(InvalidInput) as caught:
        await s.agency.request_extension(official, row.id, 5, "Ещё немного")
    assert caught.value.detail == "extension_used"
    assert await snapshot(s) == before


async def test_an_extension_declined_leaves_the_term(world: World) -> None:
    s = world.services
    row = await world.in_progress()
    deadline = (await appeal(s, row.id)).deadline_at
    await s.agency.request_extension(world["supervisor"], row.id, 30, "Нужна экспертиза")
    (request,) = await rows(s, AppealRequest)
    mark = await last_id(s, Outbox)
    await s.coordination.decide(world["admin"], request.id, approve=False)
    a = await appeal(s, row.id)
    assert (a.deadline_at, a.extension_used) == (deadline, False)
    assert [(u, t) for u, t, _ in await outbox(s, mark)] == [(world["supervisor"].id, "request_decided")]
    # Not used up: it may be asked for again.
    await s.agency.request_extension(world["official"], row.id, 10, "Всё же нужна")


@pytest.mark.parametrize("days", [0, -1, 31, 365])
async def test_an_extension_of_days_outside_1_to_30_is_refused(world: World, days: int) -> None:
    row = await world.assigned()
    before = await snapshot(world.services)
    with pytest.raises(InvalidInput) as caught:
        await world.services.agency.request_extension(world["official"], row.id, days, "Нужна экспертиза")
    assert caught.value.detail == "days"
    assert await snapshot(world.services) == before


@pytest.mark.parametrize("days", [1, 30])
async def test_an_extension_of_1_or_30_days_is_accepted(world: World, days: int) -> None:
    row = await world.assigned()
    await world.services.agency.request_extension(world["official"], row.id, days, "Нужна экспертиза")
    (request,) = await rows(world.services, AppealRequest)
    assert request.days == days


# --- 4. the authorization matrix -----------------------------------------------------------------

RESIDENTS = {"owner", "other"}
COORDINATION = ("queue", "reviews", "requests", "routes", "route", "change", "reject", "mark_duplicate", "review", "decide")
AGENCY_WORK = ("take", "ask_clarification", "interim", "request_redirect", "request_extension", "answer")
ADMINISTRATION = ("check_admin", "create_invite", "people", "revoke", "set_route")
ALLOWED: dict[str, set[str]] = {
    **{action: {"coordinator", "admin"} for action in COORDINATION},
    "card": {"coordinator", "admin", "official", "supervisor"},
    "inbox": {"official", "official_b", "supervisor", "supervisor_b"},
    **{action: {"official", "supervisor"} for action in AGENCY_WORK},
    "reply_clarification": {"owner"},
    "note": {"owner", "coordinator", "admin", "official", "supervisor"},
    **{action: {"admin"} for action in ADMINISTRATION},
}
ACTIONS = tuple(ALLOWED)
# The state each action needs to succeed when allowed.
STATE = {
    "queue": "moderation",
    "reviews": "answer_review",
    "requests": "assigned",
    "routes": "moderation",
    "card": "assigned",
    "route": "moderation",
    "change": "moderation",
    "reject": "moderation",
    "mark_duplicate": "moderation",
    "review": "answer_review",
    "decide": "assigned",
    "inbox": "assigned",
    "take": "assigned",
    "ask_clarification": "assigned",
    "interim": "assigned",
    "request_redirect": "assigned",
    "request_extension": "in_progress",
    "answer": "in_progress",
    "reply_clarification": "clarification",
    "note": "clarification",
    "check_admin": "assigned",
    "create_invite": "assigned",
    "people": "assigned",
    "revoke": "assigned",
    "set_route": "moderation",
}
# The action name a refusal is audited under.
AUDITED_AS = {
    "mark_duplicate": "duplicate",
    "ask_clarification": "clarify",
    "request_redirect": "redirect",
    "request_extension": "extension",
    "people": "list_people",
    "revoke": "revoke_role",
    "check_admin": "invite",
}
NOT_ABOUT_AN_APPEAL = {"queue", "reviews", "requests", "routes", "decide", "inbox", *ADMINISTRATION}
READS = {"queue", "reviews", "requests", "routes", "card", "inbox", "note", "people", "check_admin"}


def expected(role: str, action: str) -> type[ServiceError] | None:
    """None when allowed. A resident's own appeal is invisible to everyone else (NotFound); a staff action
    is refused to whoever lacks the role or the agency (Forbidden, audited)."""
    if role in ALLOWED[action]:
        return None
    if action == "reply_clarification" or (action == "note" and role in RESIDENTS):
        return NotFound
    return Forbidden


@dataclass
class Target:
    appeal_id: int
    number: str
    request_id: int = 0
    message_id: int = 0
    original_number: str = ""


async def prepare(w: World, action: str) -> Target:
    row = await in_state(w, STATE[action])
    t = Target(row.id, row.number)
    if action in ("decide", "requests"):
        await w.services.agency.request_extension(w["official"], row.id, 10, "Нужна экспертиза")
        t.request_id = (await rows(w.services, AppealRequest))[-1].id
    elif action == "mark_duplicate":
        t.original_number = (await w.file("other")).number
    elif action == "note":
        t.message_id = (await rows(w.services, AppealMessage, AppealMessage.appeal_id == row.id))[-1].id
    return t


async def act(w: World, role: str, action: str, t: Target) -> object:
    s, access, actor = w.services, w.services.access, w[role]
    match action:
        case "queue":
            return await s.views.queue(actor)
        case "reviews":
            return await s.views.reviews(actor)
        case "requests":
            return await s.views.pending_requests(actor)
        case "routes":
            row = await appeal(s, t.appeal_id)
            return await s.routing.routes(actor, row.category_id)
        case "card":
            return await s.views.card(actor, t.appeal_id)
        case "route":
            return await s.coordination.route(actor, t.appeal_id)
        case "change":
            return await s.coordination.change(actor, t.appeal_id, kind="appeal")
        case "reject":
            return await s.coordination.reject(actor, t.appeal_id, "spam")
        case "mark_duplicate":
            return await s.coordination.mark_duplicate(actor, t.appeal_id, t.original_number)
        case "review":
            return await s.coordination.review(actor, t.appeal_id, approve=True)
        case "decide":
            return await s.coordination.decide(actor, t.request_id, approve=True)
        case "inbox":
            return await s.views.inbox(actor)
        case "take":
            return await s.agency.take(actor, t.appeal_id)
        case "ask_clarification":
            return await s.agency.ask_clarification(actor, t.appeal_id, "Уточните адрес")
        case "interim":
            return await s.agency.interim(actor, t.appeal_id, "Работы начаты")
        case "request_redirect":
            return await s.agency.request_redirect(actor, t.appeal_id, w.agency_b, "Не наша компетенция")
        case "request_extension":
            return await s.agency.request_extension(actor, t.appeal_id, 10, "Нужна экспертиза")
        case "answer":
            return await s.agency.answer(actor, t.appeal_id, "Сделано")
        case "reply_clarification":
            return await s.replies.reply_clarification(actor, t.appeal_id, "Дом 5")
        case "note":
            return await s.views.note(actor, t.message_id)
        case "create_invite":
            return await access.create_invite(actor, "analyst", None)
        case "people":
            return await access.people(actor)
        case "revoke":
            return await access.revoke(actor, w["editor"].id, "editor")
        case "check_admin":
            return await access.check_admin(actor, "invite")
        case "set_route":
            row = await appeal(s, t.appeal_id)
            return await s.routing.set_route(actor, row.category_id, row.district_id, w.agency_b)
    raise AssertionError(action)


def check_read(role: str, action: str, t: Target, result: object) -> None:
    """An allowed read returns the data it should, and nothing of another agency."""
    if action == "queue":
        assert isinstance(result, Queue) and t.appeal_id in [i.id for i in result.items]
    elif action == "reviews":
        assert isinstance(result, list) and t.appeal_id in [i.id for i in result]
    elif action == "requests":
        assert isinstance(result, list) and t.request_id in [r.id for r in result]
    elif action == "routes":
        assert isinstance(result, dict) and result  # every district of the category, to its agency
    elif action == "check_admin":
        assert result is None
    elif action == "card":
        assert isinstance(result, StaffCard) and (result.id, result.number) == (t.appeal_id, t.number)
    elif action == "inbox":
        assert isinstance(result, list)
        ids = [i.id for i in result]
        assert t.appeal_id in ids if role in {"official", "supervisor"} else ids == []
    elif action == "note":
        assert isinstance(result, tuple) and result[0] == t.number
        assert (result[1].id, result[1].text) == (t.message_id, "Уточните номер дома")
    elif action == "people":
        assert isinstance(result, list) and {p.tg_id for p in result} == set(TG.values()) - {TG["owner"], TG["other"]}


def matrix() -> list[Any]:
    cases = []
    for role in ROLE_NAMES:
        for action in ACTIONS:
            cases.append(pytest.param(role, action, id=f"{role}-{action}"))
    return cases


@pytest.mark.parametrize(("role", "action"), matrix())
async def test_authorization_matrix(matrix_world: World, matrix_db: Template, role: str, action: str) -> None:
    world, t = matrix_world, matrix_db.targets[action]
    s = world.services
    before = await snapshot(s)
    audit_mark = await last_id(s, AuditEntry)
    error = expected(role, action)

    if error is None:
        result = await act(world, role, action, t)
        assert all(a[1] != "refused" for a in await audits(s, audit_mark))
        if action in READS:
            check_read(role, action, t, result)
            assert await snapshot(s) == before
        else:
            assert without_audit(await snapshot(s)) != without_audit(before), "an allowed change wrote nothing"
        return

    with pytest.raises(error) as caught:
        await act(world, role, action, t)
    assert isinstance(caught.value, error)  # AppealHidden is the Forbidden of an appeal
    # Nothing but the audit row is written, and the error carries no data of the appeal.
    assert without_audit(await snapshot(s)) == without_audit(before)
    assert t.number not in str(caught.value)
    refusals = await audits(s, audit_mark)
    if error is Forbidden:
        details: dict[str, Any] = {REFUSED: AUDITED_AS.get(action, action)}
        if action in ADMINISTRATION and action != "set_route":  # the routing service audits as the workflow does
            if action == "revoke":
                details["user_id"] = world["editor"].id
        else:  # the workflow names the appeal, or None
            details["appeal_id"] = None if action in NOT_ABOUT_AN_APPEAL else t.appeal_id
        assert refusals == [(world[role].id, "refused", None, details)]
        assert str(caught.value) == details[REFUSED]
    else:
        assert refusals == []


def test_the_matrix_covers_every_role_and_action() -> None:
    assert len(ROLE_NAMES) == 10 and len(ACTIONS) == 25
    assert set(STATE) == set(ACTIONS)
    allowed = sum(expected(r, a) is None for r in ROLE_NAMES for a in ACTIONS)
    assert allowed == 10 * 2 + 4 + 4 + 6 * 2 + 1 + 5 + 5 * 1


async def test_a_refused_card_shows_nothing(world: World) -> None:
    s = world.services
    row = await world.assigned(text="Секретная подробность про двор")
    for name in ("official_b", "supervisor_b", "analyst", "editor", "owner", "other"):
        with pytest.raises(Forbidden) as caught:
            await s.views.card(world[name], row.id)
        assert str(caught.value) == "card" and caught.value.detail == "card"
        assert "Секретная" not in repr(caught.value.args)
    assert [i.id for i in await s.views.inbox(world["official_b"])] == []
    assert [i.id for i in await s.views.inbox(world["supervisor_b"])] == []
    refused = [a for a in await audits(s) if a[1] == "refused"]
    assert len(refused) == 6 and all(a[3] == {REFUSED: "card", "appeal_id": row.id} for a in refused)
    with pytest.raises(NotFound):
        await s.appeals.card_for_resident(world["other"], row.id)
    with pytest.raises(NotFound):
        await s.views.card(world["coordinator"], 999_999)


# --- 5. invites and roles ------------------------------------------------------------------------


async def test_roles_are_granted_by_config_and_invites_and_audited(services: Services, clock: ManualClock) -> None:
    boss = await admin(services, 10)
    await services.access.bootstrap_admins([10])  # again on the next start: nothing new
    assert boss.roles == {"admin"}
    (role_row,) = await rows(services, UserRole)
    assert (role_row.user_id, role_row.role, role_row.agency_id, role_row.granted_at) == (
        boss.id,
        "admin",
        None,
        clock.now(),
    )

    link = await services.access.create_invite(boss, "coordinator", None)
    assert isinstance(link, InviteLink) and link.expires_at == clock.now() + INVITE_TTL == clock.now() + timedelta(
        hours=72
    )
    person = await services.users.identify(20)
    assert person.roles == frozenset()
    assert await services.access.redeem(person, link.token) == "coordinator"
    person = await services.users.identify(20)
    assert person.roles == {"coordinator"} and person.agency_id is None

    (invite,) = await rows(services, Invite)
    assert (invite.role, invite.created_by, invite.used_by, invite.used_at) == (
        "coordinator",
        boss.id,
        person.id,
        clock.now(),
    )
    assert await audits(services) == [
        (None, "role_granted", boss.id, {"role": "admin", "via": "config"}),
        (boss.id, "invite_created", None, {"role": "coordinator", "agency_id": None}),
        (person.id, "role_granted", person.id, {"role": "coordinator", "agency_id": None, "via": "invite"}),
    ]


async def test_a_role_row_records_who_granted_it(world: World) -> None:
    (row,) = await rows(world.services, UserRole, UserRole.user_id == world["coordinator"].id)
    assert row.granted_by == world["admin"].id


async def test_an_invite_is_used_once(world: World) -> None:
    s, access = world.services, world.services.access
    link = await access.create_invite(world["admin"], "analyst", None)
    first = await s.users.identify(3001)
    second = await s.users.identify(3002)
    await access.redeem(first, link.token)
    before = await snapshot(s)
    for person in (second, first):
        with pytest.raises(InvalidInput) as caught:
            await access.redeem(person, link.token)
        assert caught.value.detail == "invite_used"
    assert await snapshot(s) == before
    assert (await s.users.identify(3002)).roles == frozenset()
    (invite,) = await rows(s, Invite, Invite.token == link.token)
    assert invite.used_by == first.id


async def test_an_invite_expires_after_72_hours(world: World, clock: ManualClock) -> None:
    s, access = world.services, world.services.access
    early = await access.create_invite(world["admin"], "editor", None)
    late = await access.create_invite(world["admin"], "editor", None)
    clock.advance(INVITE_TTL - timedelta(seconds=1))
    assert await access.redeem(await s.users.identify(3001), early.token) == "editor"
    clock.advance(seconds=1)  # exactly 72 hours: expired
    person = await s.users.identify(3002)
    before = await snapshot(s)
    with pytest.raises(InvalidInput) as caught:
        await access.redeem(person, late.token)
    assert caught.value.detail == "invite_expired"
    assert await snapshot(s) == before
    assert (await s.users.identify(3002)).roles == frozenset()


async def test_an_unknown_invite_is_not_found(world: World) -> None:
    s = world.services
    before = await snapshot(s)
    with pytest.raises(NotFound):
        await s.access.redeem(world["other"], "no-such-token")
    assert await snapshot(s) == before


async def test_an_official_redeeming_another_agencys_invite_moves_there(world: World) -> None:
    s, access = world.services, world.services.access
    official = world["official"]
    link = await access.create_invite(world["admin"], "official", world.agency_b)
    await access.redeem(official, link.token)
    moved = await s.users.identify(TG["official"])
    assert (moved.roles, moved.agency_id) == ({"official"}, world.agency_b)
    assert [(r.role, r.agency_id) for r in await rows(s, UserRole, UserRole.user_id == official.id)] == [
        ("official", world.agency_b)
    ]
    # One agency per person: a supervisor invite replaces the official role.
    link = await access.create_invite(world["admin"], "supervisor", world.agency)
    await access.redeem(moved, link.token)
    assert [(r.role, r.agency_id) for r in await rows(s, UserRole, UserRole.user_id == official.id)] == [
        ("supervisor", world.agency)
    ]
    # A role without an agency is added beside it.
    link = await access.create_invite(world["admin"], "analyst", None)
    await access.redeem(moved, link.token)
    again = await s.users.identify(TG["official"])
    assert (again.roles, again.agency_id) == ({"supervisor", "analyst"}, world.agency)


@pytest.mark.parametrize(
    ("role", "agency", "detail"),
    [
        ("official", None, "agency"),
        ("supervisor", None, "agency"),
        ("analyst", "a", "agency"),
        ("coordinator", "a", "agency"),
        ("official", 999_999, "agency"),
        ("janitor", None, "role"),
    ],
)
async def test_an_invite_needs_a_known_role_and_an_agency_only_for_agency_roles(
    world: World, role: str, agency: int | str | None, detail: str
) -> None:
    agency_id = world.agency if agency == "a" else agency
    assert agency_id is None or isinstance(agency_id, int)
    before = await snapshot(world.services)
    with pytest.raises(InvalidInput) as caught:
        await world.services.access.create_invite(world["admin"], role, agency_id)
    assert caught.value.detail == detail
    assert await snapshot(world.services) == before


async def test_revoking_a_role_is_audited(world: World, clock: ManualClock) -> None:
    s, access = world.services, world.services.access
    boss, analyst = world["admin"], world["analyst"]
    clock.advance(hours=1)
    mark = await last_id(s, AuditEntry)
    await access.revoke(boss, analyst.id, "analyst")
    assert await rows(s, UserRole, UserRole.user_id == analyst.id) == []
    assert (await s.users.identify(TG["analyst"])).roles == frozenset()
    (entry,) = await rows(s, AuditEntry, AuditEntry.id > mark)
    assert (entry.actor_id, entry.action, entry.target_user_id, entry.details, entry.at) == (
        boss.id,
        "role_revoked",
        analyst.id,
        {"role": "analyst"},
        clock.now(),
    )
    before = await snapshot(s)
    with pytest.raises(NotFound):  # nothing left to revoke
        await access.revoke(boss, analyst.id, "analyst")
    assert await snapshot(s) == before
    # A revoked official loses the agency's appeals at once.
    row = await world.assigned()
    await access.revoke(boss, world["official"].id, "official")
    with pytest.raises(Forbidden):
        await world.services.agency.take(await s.users.identify(TG["official"]), row.id)


async def test_an_admin_cannot_revoke_their_own_admin_role(world: World) -> None:
    s, boss = world.services, world["admin"]
    before = await snapshot(s)
    with pytest.raises(InvalidInput) as caught:
        await s.access.revoke(boss, boss.id, "admin")
    assert caught.value.detail == "self_admin"
    assert await snapshot(s) == before
    assert (await s.users.identify(TG["admin"])).roles == {"admin"}
    # Another admin may.
    second = await staff(s, boss, 40, "admin")
    await s.access.revoke(second, boss.id, "admin")
    assert (await s.users.identify(TG["admin"])).roles == frozenset()


# --- 6. the state machine itself -----------------------------------------------------------------

STATUSES = [*AppealStatus, "bogus"]


async def test_transition_allows_exactly_the_moves_of_transitions(world: World, clock: ManualClock) -> None:
    """Every pair of statuses on one appeal row, each tried in a transaction that is rolled back."""
    s, coord, owner = world.services, world["coordinator"], world["owner"]
    row = await world.file()
    before = await snapshot(s)
    legal: list[tuple[str, str]] = []
    for source in STATUSES:
        for target in STATUSES:
            async with s.appeals.sessionmaker() as session:
                a = await session.get(Appeal, row.id)
                assert a is not None
                a.status = source
                await session.flush()
                if target in TRANSITIONS.get(source, frozenset()):
                    await s.lifecycle.transition(session, a, target, coord, clock.now(), comment="c")
                    await session.flush()
                    written = (
                        await session.execute(select(StatusHistory).where(StatusHistory.appeal_id == row.id))
                    ).scalars()
                    event = EVENT_OF_MOVE[(source, target)]
                    staff_only = event in STAFF_ONLY_EVENTS
                    assert [
                        (h.from_status, h.to_status, h.actor_id, h.comment, h.event, h.visibility) for h in written
                    ][1:] == [(source, target, coord.id, "c", event, "staff" if staff_only else "resident")]
                    notes = (await session.execute(select(Outbox).where(Outbox.id > 0))).scalars().all()
                    told = [(n.user_id, n.template, n.params) for n in notes if n.template == "status_changed"]
                    # A staff-only step (a return for rework) is never told to the resident.
                    assert told == [] if staff_only else told[-1] == (
                        owner.id,
                        "status_changed",
                        {"appeal_id": row.id, "number": row.number, "status": target},
                    )
                    assert a.status == target
                    legal.append((source, target))
                else:
                    with pytest.raises(IllegalTransition) as caught:
                        await s.lifecycle.transition(session, a, target, coord, clock.now())
                    assert caught.value.detail == f"{source} -> {target}"
                    assert a.status == source and not session.new and not session.dirty, (source, target)
                await session.rollback()
    assert sorted(legal) == sorted((f, t) for f, moves in TRANSITIONS.items() for t in moves)
    assert len(legal) == 19 and len(STATUSES) ** 2 - len(legal) == 81
    assert set(TRANSITIONS) == set(AppealStatus)
    assert set(EVENT_OF_MOVE) == set(legal)
    assert await snapshot(s) == before
