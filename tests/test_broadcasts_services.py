"""BroadcastService (bot/services/broadcasts.py) without Telegram: who may, what is stored, idempotent confirmation,
quiet hours, and the moves of pause, resume and cancel."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import select, update

from bot.clock import ManualClock
from bot.domain import AttachmentKind, BroadcastAudience, BroadcastStatus, Role
from bot.services import Services
from bot.services.broadcasts import (
    BroadcastDraft,
    BroadcastRefused,
    StaleControl,
    TextRefused,
    check_file,
    check_label,
    check_url,
)
from bot.services.errors import Forbidden, Gone
from bot.services.users import Actor
from storage.models import AuditEntry, Broadcast, Outbox
from tests import factories


def draft(**changes: object) -> BroadcastDraft:
    values: dict[str, object] = {"draft_key": str(uuid.uuid4()), "texts": {"ru": "<b>Внимание</b>: нет воды."}}
    values.update(changes)
    return BroadcastDraft(**values)  # type: ignore[arg-type]


async def world(services: Services) -> dict[str, Actor]:
    admin = await factories.admin(services)
    people = {"admin": admin}
    for role in (Role.editor, Role.analyst, Role.coordinator):
        people[role] = await factories.staff(services, admin, factories.TG[str(role)], role)
    agency = services.directory.agencies()[0].id
    people["official"] = await factories.staff(services, admin, factories.TG["official"], Role.official, agency)
    people["resident"] = await factories.resident(services, factories.TG["owner"])
    await factories.resident(services, factories.TG["other"])
    return people


async def row_of(services: Services, broadcast_id: int) -> Broadcast:
    async with services.broadcasts.sessionmaker() as session:
        return (await session.execute(select(Broadcast).where(Broadcast.id == broadcast_id))).scalar_one()


async def set_status(services: Services, broadcast_id: int, status: BroadcastStatus, clock: ManualClock) -> None:
    async with services.broadcasts.sessionmaker() as session:
        await session.execute(
            update(Broadcast).where(Broadcast.id == broadcast_id).values(status=status, started_at=clock.now())
        )
        await session.commit()


async def test_only_admins_and_editors_may_and_refusals_are_audited(services: Services) -> None:
    people = await world(services)
    stored = await services.broadcasts.create(people[Role.editor], draft())
    service = services.broadcasts
    for who in ("resident", "official", Role.analyst, Role.coordinator):
        actor = people[who]
        calls = [
            service.create(actor, draft()),
            service.audience_size(actor, BroadcastAudience()),
            service.pause(actor, stored.broadcast_id),
            service.resume(actor, stored.broadcast_id),
            service.cancel(actor, stored.broadcast_id),
            service.broadcasts(actor),
            service.card(actor, stored.broadcast_id),
            service.attach_progress(actor, stored.broadcast_id, 1, 1),
        ]
        for call in calls:
            with pytest.raises(Forbidden):
                await call
        async with service.sessionmaker() as session:
            audited = (
                await session.execute(select(AuditEntry.details).where(
                    AuditEntry.actor_id == actor.id, AuditEntry.action == "refused"
                ))
            ).scalars().all()
        assert {d["refused"] for d in audited} == {
            "broadcast_create", "broadcast_compose", "broadcast_pause", "broadcast_resume", "broadcast_cancel",
            "broadcast_list", "broadcast_card", "broadcast_progress",
        }
    assert (await row_of(services, stored.broadcast_id)).status == BroadcastStatus.scheduled
    assert [b.id for b in await service.broadcasts(people["admin"])] == [stored.broadcast_id]


async def test_create_stores_the_draft_once(services: Services, clock: ManualClock) -> None:
    people = await world(services)
    grozny = services.directory.districts()[0].id
    block = services.directory.blocks()[0].id
    audience = BroadcastAudience(districts=(grozny,), block_id=block, language="ru")
    first = draft(
        texts={"ru": "Текст", "en": "Text"}, media_kind=AttachmentKind.photo, media_file_id="file-1",
        button_text="Подробнее", button_url="https://example.org/a", audience=BroadcastAudience(),
    )
    stored = await services.broadcasts.create(people["admin"], first)
    assert (stored.existed, stored.status, stored.start_at, stored.planned) == (
        False, BroadcastStatus.scheduled, clock.now(), 2
    )
    row = await row_of(services, stored.broadcast_id)
    assert (row.texts, row.media_kind, row.media_file_id, row.button_text, row.button_url) == (
        {"ru": "Текст", "en": "Text"}, "photo", "file-1", "Подробнее", "https://example.org/a"
    )
    assert (row.created_by, row.draft_key, row.urgent) == (people["admin"].id, first.draft_key, False)
    # The same draft again (a second press, another instance, a forged repeat): the stored one, nothing new.
    again = await services.broadcasts.create(people[Role.editor], first)
    assert again.existed and again.broadcast_id == stored.broadcast_id
    assert not again.has_progress  # no progress message attached yet: the dialog posts it
    await services.broadcasts.attach_progress(people["admin"], stored.broadcast_id, 1, 2)
    assert (await services.broadcasts.create(people["admin"], first)).has_progress
    async with services.broadcasts.sessionmaker() as session:
        assert len((await session.execute(select(Broadcast))).scalars().all()) == 1
    # The audience as given; nobody in Grozny has filed anything: no recipients, refused.
    with pytest.raises(BroadcastRefused) as refused:
        await services.broadcasts.create(people["admin"], draft(audience=audience))
    assert refused.value.detail == "no_recipients"


@pytest.mark.parametrize(
    ("changes", "error", "detail"),
    [
        ({"texts": {"en": "English only"}}, TextRefused, "empty"),
        ({"texts": {"ru": "<b> </b>"}}, TextRefused, "empty"),
        ({"texts": {"ru": "<b>x"}}, TextRefused, "html"),
        ({"texts": {"ru": "x", "en": "<i>y"}}, TextRefused, "html"),
        ({"texts": {"ru": "я" * 4097}}, TextRefused, "too_long"),
        ({"texts": {"ru": "я" * 1025}, "media_kind": AttachmentKind.photo, "media_file_id": "f"}, BroadcastRefused,
         "caption"),
        ({"media_kind": AttachmentKind.video, "media_file_id": "f"}, BroadcastRefused, "file_kind"),
        ({"button_text": "x", "button_url": "ftp://example.org"}, BroadcastRefused, "url"),
        ({"button_text": "x" * 65, "button_url": "https://example.org"}, BroadcastRefused, "label"),
        ({"button_text": "x"}, BroadcastRefused, "url"),
        ({"texts": {"ru": "x", "de": "y"}}, Gone, "language"),
        ({"audience": BroadcastAudience(districts=(99999,))}, Gone, "district"),
        ({"audience": BroadcastAudience(block_id=99999)}, Gone, "block"),
        ({"audience": BroadcastAudience(language="de")}, Gone, "language"),
    ],
)
async def test_invalid_drafts_are_refused(
    services: Services, changes: dict[str, object], error: type[Exception], detail: str
) -> None:
    people = await world(services)
    with pytest.raises(error) as caught:
        await services.broadcasts.create(people["admin"], draft(**changes))
    assert caught.value.detail == detail  # type: ignore[attr-defined]
    async with services.broadcasts.sessionmaker() as session:
        assert (await session.execute(select(Broadcast))).scalars().all() == []


async def test_quiet_hours(services: Services, clock: ManualClock) -> None:
    people = await world(services)
    tz = services.broadcasts.settings.tz
    night = datetime.combine(clock.now().astimezone(tz).date(), time(23, 0), tzinfo=tz)
    morning = datetime.combine(night.date() + timedelta(days=1), time(9, 0), tzinfo=tz)
    clock.set(night)
    with pytest.raises(BroadcastRefused) as now_refused:
        await services.broadcasts.create(people["admin"], draft())
    assert (now_refused.value.detail, now_refused.value.allowed_at) == ("quiet_now", morning)
    with pytest.raises(BroadcastRefused) as at_refused:
        await services.broadcasts.create(people["admin"], draft(), morning - timedelta(hours=2))
    assert (at_refused.value.detail, at_refused.value.allowed_at) == ("quiet_hours", morning)
    with pytest.raises(BroadcastRefused) as past:
        await services.broadcasts.create(people["admin"], draft(), night - timedelta(minutes=1))
    assert past.value.detail == "past"
    assert (await services.broadcasts.create(people["admin"], draft(), morning)).start_at == morning
    urgent = await services.broadcasts.create(people["admin"], draft(urgent=True))
    assert (urgent.start_at, (await row_of(services, urgent.broadcast_id)).urgent) == (night, True)
    urgent_later = await services.broadcasts.create(people["admin"], draft(urgent=True), night + timedelta(hours=3))
    assert urgent_later.start_at == night + timedelta(hours=3)


async def test_pause_resume_cancel_moves_and_stale_presses(services: Services, clock: ManualClock) -> None:
    people = await world(services)
    editor, admin = people[Role.editor], people["admin"]
    service = services.broadcasts
    first = (await service.create(editor, draft())).broadcast_id
    # Scheduled: neither paused nor resumed; cancelled with nothing sent and no report.
    for move in (service.pause, service.resume):
        with pytest.raises(StaleControl) as stale:
            await move(admin, first)
        assert stale.value.status == BroadcastStatus.scheduled
    assert await service.cancel(admin, first) == BroadcastStatus.scheduled
    row = await row_of(services, first)
    assert (row.status, row.finished_at) == (BroadcastStatus.cancelled, clock.now())
    for move in (service.pause, service.resume, service.cancel):
        with pytest.raises(StaleControl) as stale:
            await move(editor, first)
        assert stale.value.status == BroadcastStatus.cancelled

    second = (await service.create(editor, draft())).broadcast_id
    await set_status(services, second, BroadcastStatus.running, clock)
    with pytest.raises(StaleControl):
        await service.resume(editor, second)
    assert await service.pause(admin, second) == BroadcastStatus.paused  # not only the author
    with pytest.raises(StaleControl):
        await service.pause(editor, second)
    assert await service.resume(editor, second) == BroadcastStatus.running
    clock.advance(minutes=5)
    assert await service.cancel(editor, second) == BroadcastStatus.running
    assert (await row_of(services, second)).status == BroadcastStatus.cancelled
    async with service.sessionmaker() as session:
        reports = (await session.execute(select(Outbox).where(Outbox.template == "broadcast_report"))).scalars().all()
    assert [r.user_id for r in reports] == [editor.id]  # the started one's author gets the report; the first none
    assert (await service.status(admin, second)) == BroadcastStatus.cancelled
    card = await service.card(admin, second)
    assert card.summary.finished_at == clock.now() and card.counts.settled == 0
    with pytest.raises(Gone):
        await service.pause(admin, 99999)
    with pytest.raises(Gone):
        await service.card(admin, 99999)


def test_files_urls_and_labels() -> None:
    assert check_file("photo", 5 * 1024 * 1024) == AttachmentKind.photo
    assert check_file("document", 20 * 1024 * 1024) == AttachmentKind.document
    assert check_file("photo", None) == AttachmentKind.photo
    for kind, size, detail in (
        ("photo", 5 * 1024 * 1024 + 1, "photo_size"),
        ("document", 20 * 1024 * 1024 + 1, "document_size"),
        ("video", 1, "file_kind"),
        ("sticker", 1, "file_kind"),
    ):
        with pytest.raises(BroadcastRefused) as refused:
            check_file(kind, size)
        assert refused.value.detail == detail
    for good in ("https://example.org", "http://example.org/a?b=1&c=2#d", "https://карта.гудермес.рф/план",
                 "https://example.org:8443/x", "https://" + "a" * 490 + ".ru"):
        assert check_url(f"  {good} ") == good
    for bad in ("ftp://example.org", "https://", "example.org", "https://exa mple.org", "javascript:alert(1)",
                "https:///path", "https://example.org:99999", "https://" + "a" * 510 + ".ru", "https://.org",
                "https://a..org"):
        with pytest.raises(BroadcastRefused):
            check_url(bad)
    assert check_label(" Подробнее ") == "Подробнее"
    for bad in ("", "   ", "x" * 65):
        with pytest.raises(BroadcastRefused):
            check_label(bad)
