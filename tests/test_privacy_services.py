"""Personal data (issue 16) without Telegram: withdrawing the consent, anonymization, the retention sweep, and the
statistics and staff cards that must not change with it. Time travels on the manual clock."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.clock import ManualClock
from bot.domain import (
    ANONYMOUS_TG_ID,
    AccessKind,
    AppealStatus,
    Dimension,
    HistoryEvent,
    Metric,
    OutboxState,
    PeriodKind,
    SliceSpec,
)
from bot.services import Services
from bot.services.appeals import DraftAttachment
from bot.services.errors import ConsentRequired, InvalidInput
from bot.services.polls import Audience, PollDraft
from bot.services.privacy import RETENTION_LEASE, PrivacyRefused
from storage.models import (
    AccessEntry,
    Appeal,
    AppealMessage,
    Attachment,
    AuditEntry,
    Consent,
    Lease,
    NewsBlockOff,
    NewsPrefs,
    Outbox,
    PollRecipient,
    Rating,
    StatusHistory,
    User,
)
from storage.repositories.outbox import LeaseRepo
from storage.repositories.privacy import PrivacyRepo
from tests.factories import World, admin, appeal, make_world, rows

S = AppealStatus
NAME, CONTACT, ADDRESS = "Иванов Иван Иванович", "+7 928 000-00-00", "Грозный, ул. Мира, 1"
PERSONAL = {
    "kind": "appeal",
    "applicant_name": NAME,
    "applicant_contact": CONTACT,
    "address": ADDRESS,
    "latitude": 43.3178,
    "longitude": 45.6949,
    "attachments": (DraftAttachment("photo", "file-1", "u-1"), DraftAttachment("document", "file-2", "u-2")),
}
# What anonymizing keeps: the statistics' fields and the history (besides these, the text).
KEPT = (
    "number",
    "text",
    "category_id",
    "district_id",
    "agency_id",
    "official_id",
    "kind",
    "status",
    "locale",
    "created_at",
    "deadline_at",
    "reject_reason",
    "duplicate_of_id",
    "assigned_at",
    "answered_at",
    "answer_seconds",
    "answered_on_time",
    "first_action_at",
    "first_action_seconds",
    "reopen_count",
    "closed_at",
)


async def keyed(services: Services, model: type[Any], *where: Any) -> list[Any]:
    """Rows of a table keyed by its user (no id column to order by)."""
    async with services.appeals.sessionmaker() as session:
        return list((await session.execute(select(model).where(*where))).scalars().all())


def kept(row: Appeal) -> dict[str, Any]:
    return {name: getattr(row, name) for name in KEPT}


async def anonymous_id(services: Services) -> int:
    [row] = await rows(services, User, User.tg_id == ANONYMOUS_TG_ID)
    assert not row.is_active and row.locale is None
    return int(row.id)


async def closed_by_rating(world: World, score: int = 5, **changes: object) -> Appeal:
    """Answered, approved and rated by its resident: closed."""
    s = world.services
    row = await world.answer_review("Водоснабжение восстановлено", **changes)
    await s.coordination.review(world["coordinator"], row.id, approve=True)
    await s.ratings.rate(world["owner"], row.id, score)
    row = await appeal(s, row.id)
    assert row.status == S.closed
    return row


async def rejected(world: World, owner: str = "owner", **changes: object) -> Appeal:
    row = await world.file(owner, **changes)
    await world.services.coordination.reject(world["coordinator"], row.id, "unreadable")
    return await appeal(world.services, row.id)


@pytest.fixture
async def world(services: Services, clock: ManualClock) -> World:
    return await make_world(services, clock)


async def test_withdrawal_keeping_open_appeals_erases_the_profile_and_anonymizes_only_closed_ones(
    world: World, services: Services, clock: ManualClock
) -> None:
    owner = world["owner"]
    closed = await closed_by_rating(world, **PERSONAL)
    refused = await rejected(world, **PERSONAL)
    working = await world.in_progress(**PERSONAL)
    waiting = await world.file(**PERSONAL)
    theirs = await rejected(world, "other", **PERSONAL)
    # The profile: news choices, a poll invitation not answered yet.
    await services.subscriptions.set_block(owner, services.directory.blocks()[0].id, False)
    poll_id = await services.polls.create(
        world["admin"],
        PollDraft(
            question="Q?",
            options=("A", "B"),
            multiple=False,
            allow_other=False,
            audience=Audience.all,
            closes_at=clock.now() + timedelta(days=3),
        ),
    )
    await services.polls.publish(poll_id)
    assert await keyed(services, PollRecipient, PollRecipient.user_id == owner.id)
    before = {
        row.id: (kept(row), len(await rows(services, StatusHistory, StatusHistory.appeal_id == row.id)))
        for row in (closed, refused, working, waiting, theirs)
    }
    clock.advance(hours=1)

    done = await services.privacy.withdraw(owner, withdraw_open=False)

    assert (done.anonymized, done.withdrawn, done.kept_open) == (2, 0, 2)
    anon = await anonymous_id(services)
    for row in (closed, refused):
        after = await appeal(services, row.id)
        assert kept(after) == before[row.id][0]
        assert (after.user_id, after.anonymized_at) == (anon, clock.now())
        assert (after.applicant_name, after.applicant_contact, after.address, after.latitude, after.longitude) == (
            None,
            None,
            None,
            None,
            None,
        )
        assert await rows(services, Attachment, Attachment.appeal_id == row.id) == []
        history = await rows(services, StatusHistory, StatusHistory.appeal_id == row.id)
        assert len(history) == before[row.id][1]
        # The applicant's own entries belong to nobody now; staff's keep their authors.
        assert owner.id not in {h.actor_id for h in history} and anon in {h.actor_id for h in history}
        assert world["coordinator"].id in {h.actor_id for h in history}
    [rating] = await rows(services, Rating, Rating.appeal_id == closed.id)
    assert (rating.user_id, rating.score) == (anon, 5)
    # The staff's answer stays.
    notes = await rows(services, AppealMessage, AppealMessage.appeal_id == closed.id)
    assert [n.text for n in notes] == ["Водоснабжение восстановлено"]
    # Open appeals: still theirs, to be answered to their chat; name and contact gone, the rest until closing.
    for row in (working, waiting):
        after = await appeal(services, row.id)
        assert kept(after) == before[row.id][0]
        assert (after.user_id, after.anonymized_at, after.erasure_requested_at) == (owner.id, None, clock.now())
        assert (after.applicant_name, after.applicant_contact, after.address) == (None, None, ADDRESS)
    # Someone else's appeal is untouched.
    other = await appeal(services, theirs.id)
    assert (kept(other), other.applicant_name, other.anonymized_at) == (before[theirs.id][0], NAME, None)
    # The profile is erased, the withdrawal recorded, the audit holds counts only.
    [user] = await rows(services, User, User.id == owner.id)
    assert (user.locale, user.full_name, user.tg_id) == (None, None, owner.tg_id)
    assert await keyed(services, NewsBlockOff, NewsBlockOff.user_id == owner.id) == []
    assert await keyed(services, NewsPrefs, NewsPrefs.user_id == owner.id) == []
    assert await keyed(services, PollRecipient, PollRecipient.user_id == owner.id) == []
    latest = (await rows(services, Consent, Consent.user_id == owner.id))[-1]
    assert (latest.accepted, latest.withdrawn, latest.version) == (False, True, services.users.consent_version)
    [entry] = await rows(services, AuditEntry, AuditEntry.action == "consent_withdrawn")
    assert (entry.actor_id, entry.target_user_id) == (owner.id, owner.id)
    assert entry.details == {"anonymized": 2, "withdrawn": 0, "kept_open": 2}
    # A later /start: a new person, asked the language and the consent again; only the open appeals are theirs.
    again = await services.users.identify(owner.tg_id)
    assert (again.id, again.locale, again.has_consent, again.consent_declined) == (owner.id, None, False, False)
    assert [i.id for i in (await services.appeals.list_mine(again, 0)).items] == [waiting.id, working.id]
    world.people["owner"] = again  # as every update identifies them anew
    with pytest.raises(ConsentRequired):
        await world.file()

    # The kept appeal is answered and closed; the next sweep anonymizes it whatever its age, the closing notice kept.
    await services.coordination.reject(world["coordinator"], waiting.id, "unreadable")
    told = await rows(services, Outbox, Outbox.user_id == owner.id, Outbox.template == "rejected")
    # The first appeal's rejection, not sent yet at the withdrawal, was cancelled with it; this one waits.
    assert [(o.params["appeal_id"], o.status) for o in told] == [
        (refused.id, OutboxState.cancelled),
        (waiting.id, OutboxState.pending),
    ]
    told = told[1:]
    assert await services.privacy.retention_sweep() == 1
    after = await appeal(services, waiting.id)
    assert (after.user_id, after.address, after.latitude, after.erasure_requested_at) == (anon, None, None, None)
    assert await rows(services, Attachment, Attachment.appeal_id == waiting.id) == []
    assert [o.status for o in await rows(services, Outbox, Outbox.id == told[0].id)] == [OutboxState.pending]
    assert (await appeal(services, working.id)).anonymized_at is None
    assert [i.id for i in (await services.appeals.list_mine(again, 0)).items] == [working.id]


async def test_withdrawal_with_the_open_appeals_closes_them_through_the_state_machine_and_tells_staff(
    world: World, services: Services, clock: ManualClock
) -> None:
    owner, coord, official = world["owner"], world["coordinator"], world["official"]
    working = await world.in_progress(**PERSONAL)
    asked = await world.clarification(**PERSONAL)
    waiting = await world.file(**PERSONAL)
    refused = await rejected(world, **PERSONAL)
    clock.advance(minutes=5)

    done = await services.privacy.withdraw(owner, withdraw_open=True)

    assert (done.anonymized, done.withdrawn, done.kept_open) == (1, 3, 0)
    anon = await anonymous_id(services)
    for row in (working, asked, waiting):
        after = await appeal(services, row.id)
        assert (after.status, after.closed_at, after.user_id, after.anonymized_at) == (
            S.closed,
            clock.now(),
            anon,
            clock.now(),
        )
        assert (after.text, after.category_id, after.agency_id) == (row.text, row.category_id, row.agency_id)
        last = (await rows(services, StatusHistory, StatusHistory.appeal_id == row.id))[-1]
        assert (last.from_status, last.to_status, last.event, last.actor_id) == (
            row.status,
            S.closed,
            HistoryEvent.withdrawn,
            anon,
        )
        told = {
            o.user_id
            for o in await rows(services, Outbox, Outbox.template == "withdrawn")
            if o.params["appeal_id"] == row.id
        }
        assert coord.id in told and owner.id not in told
        assert (official.id in told) == (row.agency_id is not None)
    assert (await appeal(services, refused.id)).user_id == anon
    # Nothing is left pending for the person: they asked to hear no more.
    pending = await rows(services, Outbox, Outbox.user_id == owner.id, Outbox.status == OutboxState.pending)
    assert pending == []
    assert (await services.appeals.list_mine(await services.users.identify(owner.tg_id), 0)).items == []
    [entry] = await rows(services, AuditEntry, AuditEntry.action == "consent_withdrawn")
    assert entry.details == {"anonymized": 4, "withdrawn": 3, "kept_open": 0}


async def snapshot(services: Services) -> dict[str, list[Any]]:
    tables: dict[str, list[Any]] = {}
    async with services.appeals.sessionmaker() as session:
        for model in (Appeal, Consent, User, Attachment, StatusHistory, Outbox):
            found = (await session.execute(select(model).order_by(model.id))).scalars().all()
            tables[model.__tablename__] = [{c.key: getattr(r, c.key) for c in model.__table__.columns} for r in found]
    return tables


async def test_withdrawing_twice_as_staff_or_without_a_consent_is_refused_and_changes_nothing(
    world: World, services: Services
) -> None:
    owner = world["owner"]
    await rejected(world, **PERSONAL)
    await services.privacy.withdraw(owner, withdraw_open=False)
    stranger = await services.users.identify(5555)  # never answered the consent
    declined = await services.users.answer_consent(await services.users.identify(5556), False)
    before = await snapshot(services)
    cases = [
        (owner, "already_withdrawn"),
        (await services.users.identify(owner.tg_id), "already_withdrawn"),
        (world["coordinator"], "staff"),
        (world["admin"], "staff"),
        (stranger, "no_consent"),
        (declined, "no_consent"),
    ]
    for actor, reason in cases:
        for withdraw_open in (False, True):
            with pytest.raises(PrivacyRefused) as caught:
                await services.privacy.withdraw(actor, withdraw_open=withdraw_open)
            assert caught.value.detail == reason
        with pytest.raises(PrivacyRefused):
            await services.privacy.preview(actor)
    assert await snapshot(services) == before
    assert len(await rows(services, AuditEntry, AuditEntry.action == "consent_withdrawn")) == 1
    refusals = await rows(services, AuditEntry, AuditEntry.action == "refused")
    assert {(e.details["refused"], e.details["reason"]) for e in refusals} == {
        ("withdraw_consent", reason) for _actor, reason in cases
    }
    # Consenting again makes them someone who can withdraw again.
    back = await services.users.answer_consent(await services.users.identify(owner.tg_id), True)
    assert (await services.privacy.preview(back)).open_appeals == 0
    assert (await services.privacy.withdraw(back, withdraw_open=True)).anonymized == 0


async def test_the_retention_sweep_takes_closed_appeals_past_the_limit_once_as_the_clock_travels(
    world: World, services: Services, clock: ManualClock
) -> None:
    days = services.privacy.settings.privacy.retention_days
    assert days == 1825
    first = await rejected(world, **PERSONAL)
    clock.advance(days=10)
    second = await closed_by_rating(world, **PERSONAL)
    still_open = await world.in_progress(**PERSONAL)
    clock.advance(days=days - 10)
    # `first` closed exactly retention_days ago; `second` 10 days later.
    assert await services.privacy.retention_sweep() == 1
    assert (await appeal(services, first.id)).anonymized_at == clock.now()
    assert (await appeal(services, second.id)).anonymized_at is None
    assert await services.privacy.retention_sweep() == 0  # idempotent
    clock.advance(days=9, hours=23)
    assert await services.privacy.retention_sweep() == 0
    clock.advance(hours=1)
    assert await services.privacy.retention_sweep() == 1
    after = await appeal(services, second.id)
    assert (after.applicant_name, after.address, after.status) == (None, None, S.closed)
    clock.advance(days=4000)
    assert await services.privacy.retention_sweep() == 0
    assert (await appeal(services, still_open.id)).applicant_name == NAME  # an open appeal is never anonymized
    # The resident's list no longer holds the anonymized ones.
    assert [i.id for i in (await services.appeals.list_mine(world["owner"], 0)).items] == [still_open.id]


async def test_the_sweep_goes_in_batches_and_another_instance_holding_the_lease_keeps_it_out(
    world: World, services: Services, clock: ManualClock
) -> None:
    services.privacy.settings.privacy.retention_batch = 2
    made = [await rejected(world) for _ in range(5)]
    clock.advance(days=services.privacy.settings.privacy.retention_days + 1)
    async with services.appeals.sessionmaker() as session:
        until = clock.now() + timedelta(minutes=5)
        assert await LeaseRepo(session).take(RETENTION_LEASE, "other-instance", clock.now(), until)
        await session.commit()
    assert await services.privacy.retention_sweep() == 0
    assert [(await appeal(services, row.id)).anonymized_at for row in made] == [None] * 5
    clock.advance(minutes=6)  # the other instance died: its lease expires
    assert await services.privacy.retention_sweep() == 5
    async with services.appeals.sessionmaker() as session:
        row = await session.get(Lease, RETENTION_LEASE)
        assert row is not None and row.holder is None  # released at the end


# --- statistics and staff cards on anonymized rows --------------------------------------------------------------

SPECS = [
    SliceSpec(metric, dims, period=PeriodKind.days30)
    for metric in (
        Metric.received,
        Metric.answered,
        Metric.on_time_share,
        Metric.first_action_median,
        Metric.answer_median,
        Metric.rejected_share,
        Metric.rating_avg,
        Metric.rating_count,
        Metric.reopened_share,
    )
    for dims in ((), (Dimension.category,), (Dimension.district, Dimension.status), (Dimension.agency, Dimension.kind))
]


async def figures(world: World) -> list[Any]:
    tables = [await world.services.stats.slice(world["analyst"], spec) for spec in SPECS]
    return [(t.rows, t.total) for t in tables]


async def test_statistics_and_staff_cards_are_the_same_after_anonymization(
    world: World, services: Services, clock: ManualClock
) -> None:
    await closed_by_rating(world, 5, **PERSONAL)
    rated = await closed_by_rating(world, 4, **PERSONAL)
    clock.advance(days=2)
    await rejected(world, **PERSONAL)
    await world.in_progress(**PERSONAL)
    await world.file("other", **PERSONAL)
    await world.answer_review(**PERSONAL)
    clock.advance(days=1)
    before = await figures(world)
    assert any(total.base for _rows, total in before)
    card_before = await services.views.card(world["coordinator"], rated.id)

    # The resident withdraws the consent (their closed appeals go now), and the rest, open or not, is anonymized as
    # the retention sweep would: no status changes, only personal data go.
    await services.privacy.withdraw(world["owner"], withdraw_open=False)
    assert len(await rows(services, Appeal, Appeal.anonymized_at.is_not(None))) == 3
    async with services.appeals.sessionmaker() as session:
        repo = PrivacyRepo(session)
        left = list((await session.execute(select(Appeal.id).where(Appeal.anonymized_at.is_(None)))).scalars())
        assert await repo.anonymize(left, await repo.anonymous_id(clock.now()), clock.now()) == len(left) == 3
        await session.commit()
    assert len(await rows(services, Appeal, Appeal.anonymized_at.is_(None))) == 0

    assert await figures(world) == before
    card = await services.views.card(world["coordinator"], rated.id)
    assert (card.text, card.category_id, card.district_id, card.status, card.agency_id) == (
        card_before.text,
        card_before.category_id,
        card_before.district_id,
        card_before.status,
        card_before.agency_id,
    )
    assert [(h.status, h.event) for h in card.history] == [(h.status, h.event) for h in card_before.history]
    assert [n.text for n in card.notes] == [n.text for n in card_before.notes]
    assert [r.score for r in card.ratings] == [r.score for r in card_before.ratings]
    assert card_before.applicant_name == NAME and card_before.attachments and card_before.latitude is not None
    assert (card.applicant_name, card.applicant_contact, card.address, card.latitude, card.longitude) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert card.attachments == [] and card.resident_history == []
    # The official of the agency still opens it too.
    assert (await services.views.card(world["official"], rated.id)).text == card_before.text


WORDS, REASON = "Дом 5, спросите Иванова", "Ничего не изменилось у Иванова"
# What must not be found anywhere in the outbox once the resident's appeals are anonymized.
SECRETS = (NAME, CONTACT, ADDRESS, "43.3178", "45.6949", "file-1", "file-2", "file-9", WORDS, REASON)


def leaks(params: dict[str, Any]) -> list[str]:
    dumped = json.dumps(params, ensure_ascii=False)
    return [secret for secret in SECRETS if secret in dumped]


async def test_anonymizing_leaves_no_personal_data_in_the_outbox_the_access_log_or_the_applicants_words(
    world: World, services: Services, clock: ManualClock
) -> None:
    s, owner, coord = services, world["owner"], world["coordinator"]
    # A clarification answered with words and a photo (the official is sent both), an answer sent back with a low
    # rating and a reason (the supervisors are told it), and an assignment whose card is still to be delivered.
    asked = await world.clarification(**PERSONAL)
    await s.replies.reply_clarification(owner, asked.id, WORDS, (DraftAttachment("photo", "file-9", "u-9"),))
    sent_back = await world.answer_review(**PERSONAL)
    await s.coordination.review(coord, sent_back.id, approve=True)
    await s.ratings.rate(owner, sent_back.id, 1)
    await s.ratings.reopen(owner, sent_back.id, REASON)
    async with s.appeals.sessionmaker() as session:  # what the sender has delivered so far
        await session.execute(update(Outbox).values(status=OutboxState.sent))
        await session.commit()
    waiting = await world.assigned(**PERSONAL)
    assert {o.template for o in await rows(s, Outbox, Outbox.status == OutboxState.pending)} >= {"assigned"}
    assert any(leaks(o.params) for o in await rows(s, Outbox))
    # Staff look at the cards: the access log links the views to the resident.
    for row in (asked, sent_back, waiting):
        await s.views.show_card(coord, row.id)
    boss = await admin(s)
    mine = await s.access_log.person_target(boss, str(owner.tg_id))
    # Each card: its view and the contact shown; and what the notifications pushed to the agency (routing, the reply).
    assert (await s.access_log.page(boss, mine)).total >= 6
    clock.advance(minutes=5)

    await s.privacy.withdraw(owner, withdraw_open=True)

    for o in await rows(s, Outbox):
        assert leaks(o.params) == [], (o.template, o.status, o.params)
    # What staff must still get stays: the withdrawal's notices, holding the id and the number only.
    told = await rows(s, Outbox, Outbox.template == "withdrawn")
    assert {o.params["appeal_id"] for o in told} == {asked.id, sent_back.id, waiting.id}
    assert all(set(o.params) == {"appeal_id", "number"} and o.status == OutboxState.pending for o in told)
    assert not await rows(s, Outbox, Outbox.template == "assigned")
    # The applicant's own words are gone; the staff's stay.
    notes = {
        (n.kind, n.text) for n in await rows(s, AppealMessage, AppealMessage.appeal_id.in_([asked.id, sent_back.id]))
    }
    assert ("clarification_reply", "") in notes and ("reopen", "") in notes
    assert ("clarification_question", "Уточните номер дома") in notes and (
        "answer",
        "Водоснабжение восстановлено",
    ) in notes
    assert [(r.score, r.comment) for r in await rows(s, Rating, Rating.appeal_id == sent_back.id)] == [(1, None)]
    # The access log: the views stay, no longer the person's; the anonymous applicant is nobody to ask about.
    anon = await anonymous_id(s)
    views = await rows(s, AccessEntry, AccessEntry.appeal_id.in_([asked.id, sent_back.id, waiting.id]))
    assert views and {v.subject_user_id for v in views} == {anon}
    left = await s.access_log.page(boss, await s.access_log.person_target(boss, str(owner.tg_id)))
    assert {r.kind for r in left.rows} == {AccessKind.access_log_read}  # only the admin's own earlier reading
    for typed, detail in ((str(ANONYMOUS_TG_ID), "no_person"), (asked.number, "anonymized_resident")):
        with pytest.raises(InvalidInput, match=detail):
            await s.access_log.person_target(boss, typed)


async def test_a_withdrawal_between_reading_the_consent_and_filing_refuses_the_appeal(
    world: World, services: Services
) -> None:
    owner = world["owner"]
    assert owner.has_consent
    await rejected(world, **PERSONAL)
    before = len(await rows(services, Appeal))
    # The update read the consent in force (identify), then the person withdrew it from another chat or instance.
    await services.privacy.withdraw(owner, withdraw_open=False)
    with pytest.raises(ConsentRequired):
        await world.file(**PERSONAL)
    assert len(await rows(services, Appeal)) == before
    assert await rows(services, Appeal, Appeal.user_id == owner.id) == []


async def test_settled_notifications_go_after_the_keep_days_pending_and_broadcast_items_stay(
    world: World, services: Services, clock: ManualClock
) -> None:
    from bot import notices
    from storage.repositories.outbox import OutboxRepo

    owner = world["owner"].id
    async with services.appeals.sessionmaker() as session:
        repo = OutboxRepo(session)
        for _ in range(5):
            repo.add(owner, notices.Files(("file-x",)), clock.now())
        await session.flush()
        made = list((await session.execute(select(Outbox.id).order_by(Outbox.id))).scalars())[-5:]
        states = [OutboxState.sent, OutboxState.failed, OutboxState.blocked, OutboxState.pending, OutboxState.sent]
        for row_id, state in zip(made, states, strict=True):
            await session.execute(update(Outbox).where(Outbox.id == row_id).values(status=state))
        await session.execute(update(Outbox).where(Outbox.id == made[-1]).values(broadcast_id=7))  # a broadcast item
        await session.commit()
    keep = services.privacy.settings.privacy.outbox_keep_days
    clock.advance(days=keep - 1)
    await services.privacy.retention_sweep()
    assert set(made) <= {o.id for o in await rows(services, Outbox)}
    clock.advance(days=1, seconds=1)
    services.privacy.settings.privacy.retention_batch = 2  # in batches: the sweep goes on until none is left
    await services.privacy.retention_sweep()
    left = {o.id: o.status for o in await rows(services, Outbox)}
    assert made[0] not in left and made[1] not in left and made[2] not in left
    assert left[made[3]] == OutboxState.pending and left[made[4]] == OutboxState.sent


async def test_a_withdrawal_deletes_the_screens_resent_to_the_person(world: World, services: Services, clock: ManualClock) -> None:
    """A screen resent after flood control (notices.Reply) holds what the bot showed, the person's words among it."""
    from bot import notices
    from storage.repositories.outbox import OutboxRepo

    owner, other = world["owner"], world["other"]
    async with services.appeals.sessionmaker() as session:
        repo = OutboxRepo(session)
        repo.add(owner.id, notices.Reply("Ваш текст: «Дом 5, спросите Иванова»", None), clock.now())
        repo.add(other.id, notices.Reply("Ваш текст: другой", None), clock.now())
        await session.flush()
        await session.execute(update(Outbox).where(Outbox.template == "reply").values(status=OutboxState.sent))
        await session.commit()
    await services.privacy.withdraw(owner, withdraw_open=False)
    replies = [(o.user_id, o.params["text"]) for o in await rows(services, Outbox, Outbox.template == "reply")]
    assert replies == [(other.id, "Ваш текст: другой")]
