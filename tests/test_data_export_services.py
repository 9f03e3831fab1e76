"""/mydata's service (bot/services/data_export.py): exactly the person's data, nothing of anyone else's, and the daily
limit counted in the database."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import timedelta

import pytest

from bot.clock import ManualClock
from bot.services import Services
from bot.services.appeals import DraftAttachment
from bot.services.data_export import ExportLimited, NothingHeld, PersonalData
from bot.services.errors import NotFound
from bot.services.polls import Audience, PollDraft
from bot.services.users import Actor
from storage.models import AuditEntry, User
from tests import factories

A_TEXT = "Во дворе нет воды, подъезд 3, квартира 12"
A_ADDRESS = "Грозный, ул. Мира, 1"
A_CONTACT = "+7 928 000-11-22"
B_TEXT = "И у нас тоже нет воды уже неделю"
STAFF_COMMENT = "внутреннее: проверьте подрядчика"
QUESTION = "Уточните номер дома"


def flat(data: PersonalData) -> str:
    """Every value of the export as one text, to look for what must not be there."""
    return repr(asdict(data))


async def scene(services: Services, clock: ManualClock) -> tuple[factories.World, int, int]:
    """Owner A filed an обращение (name, contact, address, a photo), answered after a rework with a staff comment and
    a clarification, rated; other resident B filed one closed as a duplicate of A's; a poll answered by both."""
    world = await factories.make_world(services, clock)
    async with services.appeals.sessionmaker() as session:
        official = await session.get(User, world["official"].id)
        assert official is not None
        official.full_name, official.username = "Петров Пётр", "petrov_official"
        await session.commit()
    a = await world.in_progress(
        text=A_TEXT,
        address=A_ADDRESS,
        kind="appeal",
        applicant_name="Иванов Иван Иванович",
        applicant_contact=A_CONTACT,
        latitude=43.3178,
        longitude=45.6949,
    )
    await services.agency.ask_clarification(world["official"], a.id, QUESTION)
    await services.replies.reply_clarification(world["owner"], a.id, "Дом 12", (DraftAttachment("photo", "f-r", "u-r"),))
    await services.agency.answer(world["official"], a.id, "Черновик ответа")
    await services.coordination.review(world["coordinator"], a.id, approve=False, comment=STAFF_COMMENT)
    await services.agency.answer(world["official"], a.id, "Водоснабжение восстановлено")
    await services.coordination.review(world["coordinator"], a.id, approve=True)
    await factories.rate(services, a.id, 4, comment="Спасибо")
    b = await world.file(owner="other", text=B_TEXT, address="Аргун, ул. Шоссейная, 5")
    await services.coordination.mark_duplicate(world["coordinator"], b.id, a.number)
    poll_id = await services.polls.create(
        world["admin"],
        PollDraft(
            question="Как вы оцениваете работу ЖКХ?",
            options=("Хорошо", "Плохо"),
            multiple=True,
            allow_other=True,
            audience=Audience.all,
            closes_at=clock.now() + timedelta(days=3),
        ),
    )
    await services.polls.publish(poll_id)
    good, bad = (o for o, _t in (await services.polls.ballot(world["owner"], poll_id)).options)
    await services.polls.choose(world["owner"], poll_id, good)
    await services.polls.submit(world["owner"], poll_id)
    await services.polls.choose(world["other"], poll_id, bad)
    await services.polls.answer_other(world["other"], poll_id, "Трубы текут")
    await services.polls.submit(world["other"], poll_id)
    return world, a.id, b.id


async def test_each_resident_gets_exactly_their_own_data(services: Services, clock: ManualClock) -> None:
    world, a_id, _b_id = await scene(services, clock)
    mine = await services.data_export.export(world["owner"])
    theirs = await services.data_export.export(world["other"])
    a_number = (await factories.appeal(services, a_id)).number

    # A: the appeal with everything they gave, as they see it.
    [appeal] = mine.appeals
    assert (appeal.number, appeal.kind, appeal.text, appeal.address) == (a_number, "appeal", A_TEXT, A_ADDRESS)
    assert (appeal.applicant_contact, appeal.latitude, appeal.longitude) == (A_CONTACT, 43.3178, 45.6949)
    assert appeal.category is not None and appeal.block is not None and appeal.district is not None
    assert appeal.status == "answered" and appeal.deadline_at is not None and appeal.duplicate_of is None
    events = [e.event for e in appeal.history]
    assert events[0] == "filed" and "answered" in events
    assert "answer_returned" not in events  # a staff-only entry
    # The notes they read: the question, their reply (with its photo), the approved answer; not the returned draft.
    assert [(n.kind, n.from_you, n.text) for n in appeal.notes] == [
        ("clarification_question", False, QUESTION),
        ("clarification_reply", True, "Дом 12"),
        ("answer", False, "Водоснабжение восстановлено"),
    ]
    assert [(f.kind, f.source) for f in appeal.notes[1].files] == [("photo", "clarification")]
    assert [(f.kind, f.source) for f in appeal.files] == [("photo", "resident"), ("photo", "clarification")]
    assert [(r.score, r.comment) for r in appeal.ratings] == [(4, "Спасибо")]
    # The poll: their own answer only.
    [poll] = mine.polls
    assert (poll.question, poll.chosen, poll.other) == ("Как вы оцениваете работу ЖКХ?", ("Хорошо",), None)
    assert poll.answered_at is not None
    # Consents with their version.
    assert [(c.version, c.accepted) for c in mine.consents] == [("2026-12-03", True)]
    assert mine.profile.tg_id == factories.TG["owner"] and mine.profile.locale == "ru"
    assert mine.roles == [] and mine.profile.full_name is None
    # Notifications about their appeal carry its number.
    assert a_number in {n.appeal_number for n in mine.notifications}

    text = flat(mine)
    for foreign in (B_TEXT, "Аргун", "Плохо", "Трубы текут", STAFF_COMMENT, "Черновик ответа"):
        assert foreign not in text, foreign
    assert "Петров" not in text and "petrov_official" not in text  # the official's name and username

    # B: their duplicate and A's number, nothing more of A's appeal.
    [duplicate] = theirs.appeals
    assert duplicate.text == B_TEXT and duplicate.duplicate_of == a_number
    assert [e.event for e in duplicate.history] == ["filed", "duplicate"]
    assert duplicate.history[-1].details.original == a_number
    text = flat(theirs)
    for foreign in (A_TEXT, A_ADDRESS, A_CONTACT, "Иванов", "43.3178", QUESTION, "Дом 12", "Водоснабжение", "Спасибо",
                    "Хорошо", STAFF_COMMENT):
        assert foreign not in text, foreign
    [poll] = theirs.polls
    assert (poll.chosen, poll.other) == (("Плохо",), "Трубы текут")


async def test_staff_get_their_profile_and_roles_not_the_appeals_they_handled(
    services: Services, clock: ManualClock
) -> None:
    world, a_id, _b_id = await scene(services, clock)
    data = await services.data_export.export(world["official"])
    assert (data.profile.full_name, data.profile.username) == ("Петров Пётр", "petrov_official")
    assert data.appeals == [] and data.polls == []
    assert [(r.role, r.agency.id if r.agency else None) for r in data.roles] == [("official", world.agency)]
    assert [(e.action, e.role) for e in data.role_events] == [("role_granted", "official")]
    text = flat(data)
    for foreign in (A_TEXT, A_CONTACT, B_TEXT, (await factories.appeal(services, a_id)).number):
        assert foreign not in text, foreign


async def test_the_daily_limit_is_counted_in_the_database(services: Services, clock: ManualClock) -> None:
    owner = await factories.resident(services)
    for _ in range(3):
        await services.data_export.export(owner)
        clock.advance(hours=1)
    first = clock.now() - timedelta(hours=3)
    with pytest.raises(ExportLimited) as refused:
        await services.data_export.export(owner)
    assert refused.value.next_at == first + timedelta(hours=24) and refused.value.limit == 3
    assert len(await factories.rows(services, AuditEntry, AuditEntry.action == "data_export")) == 3  # not charged
    clock.set(first + timedelta(hours=24, seconds=1))
    data = await services.data_export.export(owner)
    assert len(data.exports) == 4
    with pytest.raises(ExportLimited):
        await services.data_export.export(owner)


async def test_unknown_and_never_started_people(services: Services) -> None:
    with pytest.raises(NotFound):
        await services.data_export.export(Actor(id=99_999, tg_id=99_999, locale=None, has_consent=False))
    newcomer = await services.users.identify(5555)
    with pytest.raises(NothingHeld):
        await services.data_export.export(newcomer)
    # Someone else's id with their own Telegram id: refused as unknown.
    owner = await factories.resident(services)
    with pytest.raises(NotFound):
        await services.data_export.export(Actor(id=owner.id, tg_id=5555, locale="ru", has_consent=True))
    assert await factories.rows(services, AuditEntry, AuditEntry.action == "data_export") == []


async def test_concurrent_exports_never_pass_the_limit(services: Services) -> None:
    """Several instances (here: concurrent transactions) share the count: of five exports at once, three pass."""
    owner = await factories.resident(services)
    results = await asyncio.gather(*(services.data_export.export(owner) for _ in range(5)), return_exceptions=True)
    assert sum(isinstance(r, PersonalData) for r in results) == 3
    assert sum(isinstance(r, ExportLimited) for r in results) == 2, results
    assert len(await factories.rows(services, AuditEntry, AuditEntry.action == "data_export")) == 3


async def test_a_withdrawal_is_exported_as_a_withdrawal_not_as_a_no(services: Services, clock: ManualClock) -> None:
    world, _a_id, _b_id = await scene(services, clock)
    owner = world["owner"]
    await services.privacy.withdraw(owner, withdraw_open=False)
    clock.advance(timedelta(minutes=5))
    again = await services.users.answer_consent(await services.users.identify(owner.tg_id), True)
    data = await services.data_export.export(again)
    assert [(c.accepted, c.withdrawn) for c in data.consents] == [(True, False), (False, True), (True, False)]
