"""Reusable builders for service-level tests: people with roles set up through the real services
(bootstrap admin, invites, consent), appeals driven to a given status through the workflow, and readers
of the rows the services write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.services import Services
from bot.services.appeals import AppealDraft, DraftAttachment
from bot.services.users import Actor
from storage.models import (
    Appeal,
    AppealMessage,
    AppealRequest,
    Attachment,
    AuditEntry,
    Followup,
    Invite,
    Outbox,
    Rating,
    Reminder,
    Route,
    StatusHistory,
    UserRole,
)

# Telegram ids of the people of a world.
TG = {
    "admin": 1,
    "coordinator": 2,
    "official": 3,  # of the appeal's agency
    "official_b": 4,  # of another agency
    "supervisor": 5,
    "supervisor_b": 6,
    "analyst": 7,
    "editor": 8,
    "owner": 1001,  # the resident who files the appeal
    "other": 1002,  # another resident
}
ROLE_NAMES = tuple(TG)

# Tables whose rows a service call may write; a refused call must leave them as they were.
WRITTEN = (
    Appeal,
    StatusHistory,
    Outbox,
    Reminder,
    AppealMessage,
    AppealRequest,
    Attachment,
    Invite,
    UserRole,
    AuditEntry,
    Route,
)


async def resident(services: Services, tg_id: int = TG["owner"]) -> Actor:
    """A resident who chose a language and accepted the consent."""
    actor = await services.users.identify(tg_id)
    actor = await services.users.set_locale(actor, "ru")
    return await services.users.answer_consent(actor, True)


async def admin(services: Services, tg_id: int = TG["admin"]) -> Actor:
    await services.access.bootstrap_admins([tg_id])
    return await services.users.identify(tg_id)


async def staff(services: Services, by: Actor, tg_id: int, role: str, agency_id: int | None = None) -> Actor:
    """A person given `role` by the admin's invite; re-identified so the Actor carries the role."""
    link = await services.access.create_invite(by, role, agency_id)
    person = await services.users.identify(tg_id)
    assert await services.access.redeem(person, link.token) == role
    return await services.users.identify(tg_id)


def draft(services: Services, **changes: object) -> AppealDraft:
    """The first category of the first block in the first district (Grozny), a сообщение by default."""
    block = services.directory.blocks()[0]
    values: dict[str, object] = {
        "draft_id": "d" * 16,
        "category_id": services.directory.categories(block.id)[0].id,
        "district_id": services.directory.districts()[0].id,
        "kind": "message",
        "text": "Во дворе третий день нет воды",
        "attachments": (DraftAttachment("photo", "file-1", "u-1"),),
        "address": "Грозный, ул. Мира, 1",
    }
    values.update(changes)
    return AppealDraft(**values)  # type: ignore[arg-type]


async def agencies(services: Services) -> tuple[int, int]:
    """The agency the routing matrix suggests for the default draft, and another one."""
    d = draft(services)
    main = await services.views.suggest(d.category_id, d.district_id)
    assert main is not None
    for block in services.directory.blocks():
        for category in services.directory.categories(block.id):
            other = await services.views.suggest(category.id, d.district_id)
            if other is not None and other != main:
                return main, other
    raise AssertionError("the routing matrix has a single agency")


@dataclass
class World:
    services: Services
    clock: ManualClock
    people: dict[str, Actor]
    agency: int  # the agency the appeal is routed to
    agency_b: int  # another agency

    def __getitem__(self, name: str) -> Actor:
        return self.people[name]

    async def file(self, owner: str = "owner", draft_id: str | None = None, **changes: object) -> Appeal:
        """File an appeal (moderation) and return its row."""
        n = await count(self.services, Appeal)
        filed = await self.services.appeals.file(
            self[owner], draft(self.services, draft_id=draft_id or f"draft-{n:010d}", **changes)
        )
        return await appeal(self.services, filed.id)

    async def assigned(self, **changes: object) -> Appeal:
        row = await self.file(**changes)
        await self.services.coordination.route(self["coordinator"], row.id)
        return await appeal(self.services, row.id)

    async def in_progress(self, **changes: object) -> Appeal:
        row = await self.assigned(**changes)
        await self.services.agency.take(self["official"], row.id)
        return await appeal(self.services, row.id)

    async def clarification(self, question: str = "Уточните номер дома", **changes: object) -> Appeal:
        row = await self.in_progress(**changes)
        await self.services.agency.ask_clarification(self["official"], row.id, question)
        return await appeal(self.services, row.id)

    async def answer_review(self, text: str = "Водоснабжение восстановлено", **changes: object) -> Appeal:
        row = await self.in_progress(**changes)
        await self.services.agency.answer(self["official"], row.id, text)
        return await appeal(self.services, row.id)


async def make_world(services: Services, clock: ManualClock) -> World:
    """Everyone of TG, set up through the real services: the config admin, invites for the staff, consent
    for the residents."""
    agency, agency_b = await agencies(services)
    boss = await admin(services)
    people: dict[str, Actor] = {"admin": boss}
    people["coordinator"] = await staff(services, boss, TG["coordinator"], "coordinator")
    people["official"] = await staff(services, boss, TG["official"], "official", agency)
    people["official_b"] = await staff(services, boss, TG["official_b"], "official", agency_b)
    people["supervisor"] = await staff(services, boss, TG["supervisor"], "supervisor", agency)
    people["supervisor_b"] = await staff(services, boss, TG["supervisor_b"], "supervisor", agency_b)
    people["analyst"] = await staff(services, boss, TG["analyst"], "analyst")
    people["editor"] = await staff(services, boss, TG["editor"], "editor")
    people["owner"] = await resident(services, TG["owner"])
    people["other"] = await resident(services, TG["other"])
    return World(services, clock, people, agency, agency_b)


async def load_world(services: Services, clock: ManualClock) -> World:
    """The World of a database copied from one make_world() built: the same people, looked up again."""
    agency, agency_b = await agencies(services)
    people = {name: await services.users.identify(tg_id) for name, tg_id in TG.items()}
    return World(services, clock, people, agency, agency_b)


# --- reading rows --------------------------------------------------------------------------------


async def rows(services: Services, model: type[Any], *where: Any) -> list[Any]:
    async with services.appeals.sessionmaker() as session:
        query = select(model).where(*where).order_by(model.id)
        return list((await session.execute(query)).scalars().all())


async def count(services: Services, model: type[Any], *where: Any) -> int:
    return len(await rows(services, model, *where))


async def appeal(services: Services, appeal_id: int) -> Appeal:
    found = await rows(services, Appeal, Appeal.id == appeal_id)
    assert found, appeal_id
    return found[0]


async def history(services: Services, appeal_id: int) -> list[tuple[str | None, str, int | None, str | None]]:
    """(from, to, actor id, comment) of an appeal, oldest first."""
    return [
        (h.from_status, h.to_status, h.actor_id, h.comment)
        for h in await rows(services, StatusHistory, StatusHistory.appeal_id == appeal_id)
    ]


async def events(services: Services, appeal_id: int) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(event, visibility, params, comment) of an appeal's status history, oldest first."""
    return [
        (h.event, h.visibility, dict(h.params), h.comment)
        for h in await rows(services, StatusHistory, StatusHistory.appeal_id == appeal_id)
    ]


async def outbox(services: Services, after: int = 0) -> list[tuple[int, str, dict[str, Any]]]:
    """(user id, template, params) of the notifications queued after outbox row `after`, in order."""
    return [(o.user_id, o.template, dict(o.params)) for o in await rows(services, Outbox, Outbox.id > after)]


async def last_id(services: Services, model: type[Any]) -> int:
    """The id of the newest row (0 if none): what came after it is what a call wrote."""
    async with services.appeals.sessionmaker() as session:
        return int((await session.execute(select(func.max(model.id)))).scalar_one() or 0)


async def audits(services: Services, after: int = 0) -> list[tuple[int | None, str, int | None, dict[str, Any]]]:
    """(actor id, action, target user id, details) of the audit rows after row `after`."""
    return [
        (a.actor_id, a.action, a.target_user_id, dict(a.details))
        for a in await rows(services, AuditEntry, AuditEntry.id > after)
    ]


async def snapshot(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table a workflow or access call writes (read in one transaction)."""
    async with services.appeals.sessionmaker() as session:
        return {
            model.__tablename__: [
                tuple(r) for r in await session.execute(select(model.__table__).order_by(model.__table__.c.id))
            ]
            for model in WRITTEN
        }


# --- residents' judgements (issue 12) -------------------------------------------------------------------


async def answered(world: World, text: str = "Водоснабжение восстановлено", **changes: object) -> Appeal:
    """An appeal whose answer the coordinator approved (status answered), through the services."""
    row = await world.answer_review(text, **changes)
    await world.services.coordination.review(world["coordinator"], row.id, approve=True)
    return await appeal(world.services, row.id)


async def rate(
    services: Services,
    appeal_id: int,
    score: int,
    comment: str | None = None,
    at: datetime | None = None,
    reopen: bool = False,
) -> Rating:
    """A rating of the appeal's latest approved answer, stored as the resident's rating service stores one (with the
    appeal's agency and the answer's author), given `at` (the services' clock by default). `reopen`: the resident
    also sent the appeal back (status reopened, reopen_count + 1, as the resident side does it). For the staff
    side's tests, written directly: the resident side's service is another engineer's."""
    when = at or services.appeals.clock.now()
    async with services.appeals.sessionmaker() as session:
        row = await session.get(Appeal, appeal_id)
        assert row is not None, appeal_id
        note = (
            await session.execute(
                select(AppealMessage)
                .where(
                    AppealMessage.appeal_id == appeal_id,
                    AppealMessage.kind == "answer",
                    AppealMessage.status == "approved",
                )
                .order_by(AppealMessage.id.desc())
                .limit(1)
            )
        ).scalar_one()
        rating = Rating(
            appeal_id=appeal_id,
            note_id=note.id,
            user_id=row.user_id,
            agency_id=row.agency_id,
            official_id=note.author_id,
            score=score,
            comment=comment,
            created_at=when,
            updated_at=when,
        )
        session.add(rating)
        if reopen:
            session.add(
                StatusHistory(
                    appeal_id=appeal_id,
                    from_status=row.status,
                    to_status="reopened",
                    actor_id=row.user_id,
                    comment=comment,
                    at=when,
                    event="reopened",
                    visibility="resident",
                    params={},
                )
            )
            row.status = "reopened"
            row.reopen_count = (row.reopen_count or 0) + 1
            row.updated_at = when
        await session.commit()
        await session.refresh(rating)
        return rating


async def followup(
    services: Services, appeal_id: int, answer: str | None, comment: str | None = None, at: datetime | None = None
) -> Followup:
    """The "is it fixed?" follow-up of an appeal, asked `at` and answered then (`answer` None: not yet)."""
    when = at or services.appeals.clock.now()
    async with services.appeals.sessionmaker() as session:
        row = await session.get(Appeal, appeal_id)
        assert row is not None, appeal_id
        asked = Followup(
            appeal_id=appeal_id,
            user_id=row.user_id,
            asked_at=when,
            answer=answer,
            comment=comment,
            answered_at=when if answer else None,
        )
        session.add(asked)
        await session.commit()
        await session.refresh(asked)
        return asked
