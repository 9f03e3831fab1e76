"""Fast unit tests of the services, without Telegram."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.services import Services
from bot.services.appeals import DraftAttachment
from bot.services.errors import ConsentRequired, InvalidInput, NotFound
from storage.models import Appeal, Attachment, Consent, Reminder, StatusHistory
from tests.factories import draft, resident


async def count(services: Services, model: type) -> int:
    async with services.appeals.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_directories_are_loaded_from_the_data_files(services: Services) -> None:
    blocks = services.directory.blocks()
    assert [b.code for b in blocks] == ["housing", "energy", "education", "health", "roads", "transport", "social"]
    assert blocks[0].name("ru") == "ЖКХ и ТКО"
    for block in blocks:
        assert 5 <= len(services.directory.categories(block.id)) <= 10
    districts = services.directory.districts()
    assert districts[0].code == "grozny"
    assert len(districts) >= 17


async def test_consent_is_versioned_and_stored_with_its_time(services: Services, clock: ManualClock) -> None:
    actor = await services.users.identify(5)
    assert not actor.has_consent and not actor.consent_declined
    await services.users.answer_consent(actor, False)
    assert (await services.users.identify(5)).consent_declined
    await services.users.answer_consent(actor, True)
    assert (await services.users.identify(5)).has_consent
    async with services.users.sessionmaker() as session:
        rows = (await session.execute(select(Consent).order_by(Consent.id))).scalars().all()
    assert [(r.accepted, r.version, r.at) for r in rows] == [
        (False, "2026-12-03", clock.now()),
        (True, "2026-12-03", clock.now()),
    ]
    # A new version of the text asks again.
    services.users.consent_version = "2027-01-01"
    assert not (await services.users.identify(5)).has_consent


async def test_filing_stores_appeal_attachments_and_history_in_one_go(services: Services, clock: ManualClock) -> None:
    actor = await resident(services)
    filed = await services.appeals.file(actor, draft(services))
    assert filed.created and filed.status == "moderation"
    assert filed.number == "2026-000001"
    async with services.appeals.sessionmaker() as session:
        appeal = (await session.execute(select(Appeal))).scalar_one()
        history = (await session.execute(select(StatusHistory))).scalars().all()
        files = (await session.execute(select(Attachment))).scalars().all()
    assert appeal.user_id == actor.id and appeal.created_at == clock.now()
    assert [(h.from_status, h.to_status, h.actor_id) for h in history] == [(None, "moderation", actor.id)]
    assert [(f.kind, f.file_id) for f in files] == [("photo", "file-1")]


async def test_numbers_are_sequential_per_year_and_never_reused(services: Services, clock: ManualClock) -> None:
    actor = await resident(services)
    numbers = [(await services.appeals.file(actor, draft(services, draft_id=f"{i:016d}"))).number for i in range(3)]
    assert numbers == ["2026-000001", "2026-000002", "2026-000003"]
    clock.set(datetime(2026, 12, 31, 21, 30, tzinfo=UTC))  # already 1 January in Moscow
    assert (await services.appeals.file(actor, draft(services, draft_id="y" * 16))).number == "2027-000001"


async def test_the_same_draft_is_filed_once_even_concurrently(services: Services) -> None:
    actor = await resident(services)
    results = await asyncio.gather(*(services.appeals.file(actor, draft(services)) for _ in range(5)))
    assert len({r.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await count(services, Appeal) == 1
    assert await count(services, StatusHistory) == 1


async def test_confirms_at_once_each_get_their_own_appeal_and_consecutive_numbers(services: Services) -> None:
    people = [await resident(services, 3000 + i) for i in range(30)]
    drafts = [
        draft(
            services,
            draft_id=f"burst{i:011d}",
            text=f"Обращение номер {i}: нет воды",
            attachments=tuple(DraftAttachment("photo", f"file-{i}-{k}", f"u-{i}-{k}") for k in range(i % 3)),
        )
        for i in range(30)
    ]
    filed = await asyncio.gather(*(services.appeals.file(p, d) for p, d in zip(people, drafts, strict=True)))
    assert sorted(f.number for f in filed) == [f"2026-{n:06d}" for n in range(1, 31)]
    async with services.appeals.sessionmaker() as session:
        appeals = {a.id: a for a in (await session.execute(select(Appeal))).scalars()}
        files = (await session.execute(select(Attachment).order_by(Attachment.appeal_id, Attachment.position))).scalars()
        history = (await session.execute(select(StatusHistory))).scalars().all()
        reminders = (await session.execute(select(Reminder))).scalars().all()
    by_appeal: dict[int, list[str]] = {}
    for f in files:
        by_appeal.setdefault(f.appeal_id, []).append(f.file_id)
    for i, (person, result) in enumerate(zip(people, filed, strict=True)):
        appeal = appeals[result.id]
        assert (appeal.user_id, appeal.text, appeal.number) == (person.id, f"Обращение номер {i}: нет воды", result.number)
        assert by_appeal.get(result.id, []) == [f"file-{i}-{k}" for k in range(i % 3)]
    assert sorted((h.appeal_id, h.actor_id) for h in history) == sorted((f.id, p.id) for f, p in zip(filed, people, strict=True))
    assert sorted(r.appeal_id for r in reminders if r.kind == "forward_due") == sorted(appeals)


async def test_one_bad_confirm_among_others_fails_alone(services: Services) -> None:
    alice = await resident(services, 1)
    first = await services.appeals.file(alice, draft(services, draft_id="a" * 16))
    others = [await resident(services, 100 + i) for i in range(8)]
    # Alice's draft id, sent again by someone else (forged), lands in the same burst as eight good ones.
    mallory = await resident(services, 666)
    results = await asyncio.gather(
        services.appeals.file(mallory, draft(services, draft_id="a" * 16)),
        *(services.appeals.file(p, draft(services, draft_id=f"good{i:012d}")) for i, p in enumerate(others)),
        return_exceptions=True,
    )
    assert isinstance(results[0], NotFound)
    good = results[1:]
    assert all(not isinstance(r, BaseException) and r.created for r in good)
    # The failed transaction used no number: they stay consecutive.
    assert sorted(r.number for r in good) == [f"2026-{n:06d}" for n in range(2, 10)]  # type: ignore[union-attr]
    assert await count(services, Appeal) == 9
    async with services.appeals.sessionmaker() as session:
        owner = (await session.execute(select(Appeal.user_id).where(Appeal.id == first.id))).scalar_one()
    assert owner == alice.id


async def test_filing_refuses_without_consent_and_with_bad_values(services: Services) -> None:
    stranger = await services.users.identify(77)
    with pytest.raises(ConsentRequired):
        await services.appeals.file(stranger, draft(services))
    actor = await resident(services)
    bad = [
        {"text": "short"},
        {"text": "x" * 4001},
        {"kind": "petition"},
        {"address": None},
        {"kind": "appeal"},  # 59-ФЗ needs a name and a contact
        {"attachments": tuple(DraftAttachment("photo", f"f{i}", f"u{i}") for i in range(11))},
        {"attachments": (DraftAttachment("sticker", "f", "u"),)},
        {"category_id": 999_999},
    ]
    for changes in bad:
        with pytest.raises(InvalidInput):
            await services.appeals.file(actor, draft(services, **changes))
    assert await count(services, Appeal) == 0


async def test_a_resident_sees_only_their_own_appeals(services: Services, clock: ManualClock) -> None:
    alice = await resident(services, 1)
    bob = await resident(services, 2)
    ids = []
    for i in range(7):
        clock.advance(timedelta(minutes=1))
        ids.append((await services.appeals.file(alice, draft(services, draft_id=f"a{i:015d}"))).id)
    first = await services.appeals.list_mine(alice, 0)
    assert first.total == 7 and first.pages == 2
    assert [i.id for i in first.items] == ids[::-1][:5]  # newest first
    second = await services.appeals.list_mine(alice, 1)
    assert [i.id for i in second.items] == ids[::-1][5:]
    assert (await services.appeals.list_mine(bob, 0)).total == 0
    card = await services.appeals.card_for_resident(alice, ids[0])
    assert card.number == "2026-000001" and [(h.event, h.status) for h in card.history] == [("filed", "moderation")]
    with pytest.raises(NotFound):
        await services.appeals.card_for_resident(bob, ids[0])
    with pytest.raises(NotFound):
        await services.appeals.find_by_draft(bob, "a" + "0" * 15)
