"""The access log (152-ФЗ: the operator keeps a record of who accessed which personal data, and when).

Writing: the services that serve a staff view write its rows in the same transaction as the read
(`Views.show_card`, `Views.files`, `Views.location` call `log_access`); handlers never do. What counts as one view:
- `appeal_card`: each time the staff card is shown, opened (from a list, a notification, a deep link) or shown
  again after an action (it is rendered afresh then, with the current data); presses that do not change the card
  (Files, Location) do not show it again, so they add no card row;
- `resident_contact`: besides, when that card carries the applicant's name and contact (a 59-ФЗ appeal);
- `appeal_files`, `appeal_location`: the card's Files and Location buttons, when they send something.
Notifications that push an appeal's personal data to staff are views too, logged by `log_pushed` for each staff
recipient in the transaction that queues them: the assignment (`Assigned`, the card: `appeal_card`, plus
`appeal_location` when it carries the pin and `resident_reply` when it carries the resident's words sending the
appeal back), the resident's clarification reply and the words of a sent-back appeal (`resident_reply`), the files
that come with them (`appeal_files`), and the low ratings' comments (`resident_reply`, per appeal listed with one).
Notices carrying only numbers (digests, reminders, escalations, reviews, requests) show nobody's data and are not.
A block head's read-only card is logged as a card (no contact row: it has none). Residents reading their own appeals
are not staff views and are not logged.

Reading: admins only (refused and audited otherwise), by appeal or by the resident whose data was shown, newest first,
a page at a time, or everything for an export; each read and each export is itself a row (`access_log_read`,
`access_log_export`) naming the appeal or the person asked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain import ANONYMOUS_TG_ID, AccessKind, Role, typed_number
from bot.services.access import refuse
from bot.services.errors import InvalidInput
from bot.services.users import Actor
from storage.models import Appeal, User
from storage.repositories.access_log import AccessLogRepo

PAGE_SIZE = 10
# A registration number as people type it: 2026-000123.
NUMBER_RE = re.compile(r"^\d{4}-\d{6}$")
TG_ID_RE = re.compile(r"^\d{1,15}$")


def log_access(
    session: AsyncSession,
    actor: Actor,
    kinds: Iterable[AccessKind],
    appeal_id: int | None,
    subject_user_id: int | None,
    now: datetime,
) -> None:
    """The rows of one view, in the caller's transaction (committed with the read it records)."""
    AccessLogRepo(session).add(actor.id, [AccessKind(k).value for k in kinds], appeal_id, subject_user_id, now)


def log_pushed(
    session: AsyncSession,
    recipients: Iterable[int],
    kinds: Iterable[AccessKind],
    appeal_id: int | None,
    subject_user_id: int | None,
    now: datetime,
) -> None:
    """The rows of a notification that carries an appeal's personal data to staff: the same rows for each recipient,
    in the transaction that queues it. The resident whose data it is is not a staff view of it."""
    values = [AccessKind(k).value for k in kinds]
    repo = AccessLogRepo(session)
    for recipient in dict.fromkeys(recipients):
        if recipient != subject_user_id:
            repo.add(recipient, values, appeal_id, subject_user_id, now)


@dataclass(frozen=True, slots=True)
class AccessTarget:
    """What an admin asked the log about: an appeal (by its number), or a person (the resident of an appeal, or a
    Telegram id)."""

    appeal_id: int | None = None
    subject_user_id: int | None = None
    number: str | None = None  # the appeal's, or the appeal whose resident is asked for
    tg_id: int | None = None  # the person typed by their Telegram id


@dataclass(frozen=True, slots=True)
class AccessRow:
    at: datetime
    actor_id: int
    actor_name: str | None  # the staff member's name as stored (None until they opened /staff)
    actor_tg_id: int
    actor_roles: tuple[Role, ...]  # the roles held now (none: revoked since)
    kind: AccessKind
    number: str | None  # the appeal's registration number, if the row names one


@dataclass(frozen=True)
class AccessPage:
    target: AccessTarget
    rows: list[AccessRow]
    total: int
    page: int  # from 0
    pages: int  # at least 1
    # The listing is of the rows up to this id: turning pages, new rows (this very reading among them) do not shift it.
    upto: int


class AccessLogService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock

    async def _admin(self, actor: Actor) -> None:
        if not actor.has(Role.admin):
            raise await refuse(self.sessionmaker, actor, "access_log", self.clock.now())

    async def check(self, actor: Actor) -> None:
        """For the screens that lead to the log: refused (and audited) before anything is shown."""
        await self._admin(actor)

    # --- what is asked about --------------------------------------------------------------------------------------

    async def appeal_target(self, actor: Actor, typed: str) -> AccessTarget:
        """The appeal of a typed registration number; InvalidInput "number_format" or "no_appeal"."""
        await self._admin(actor)
        number = typed_number(typed)
        if not NUMBER_RE.fullmatch(number):
            raise InvalidInput("number_format")
        async with self.sessionmaker() as session:
            found = (await session.execute(select(Appeal.id).where(Appeal.number == number))).scalar_one_or_none()
        if found is None:
            raise InvalidInput("no_appeal")
        return AccessTarget(appeal_id=found, number=number)

    async def person_target(self, actor: Actor, typed: str) -> AccessTarget:
        """A person by Telegram id, or the resident of an appeal by its number; InvalidInput "person_format",
        "no_appeal", "no_person" (nobody with that id) or "anonymized_resident" (an appeal whose resident is no
        longer known: anonymized appeals belong to the anonymous applicant, never a person to list)."""
        await self._admin(actor)
        text = typed_number(typed)
        async with self.sessionmaker() as session:
            if NUMBER_RE.fullmatch(text):
                query = (
                    select(Appeal.user_id, User.tg_id)
                    .outerjoin(User, User.id == Appeal.user_id)
                    .where(Appeal.number == text)
                )
                found = (await session.execute(query)).first()
                if found is None:
                    raise InvalidInput("no_appeal")
                # An anonymized appeal's resident is nobody: the anonymous applicant stands for everyone's.
                if found[0] is None or found[1] == ANONYMOUS_TG_ID:
                    raise InvalidInput("anonymized_resident")
                return AccessTarget(subject_user_id=found[0], number=text)
            if not TG_ID_RE.fullmatch(text):
                raise InvalidInput("person_format")
            tg_id = int(text)
            if tg_id == ANONYMOUS_TG_ID:
                raise InvalidInput("no_person")
            user_id = (await session.execute(select(User.id).where(User.tg_id == tg_id))).scalar_one_or_none()
        if user_id is None:
            raise InvalidInput("no_person")
        return AccessTarget(subject_user_id=user_id, tg_id=tg_id)

    # --- reading ---------------------------------------------------------------------------------------------------

    async def page(
        self, actor: Actor, target: AccessTarget, page: int = 0, upto: int | None = None, size: int = PAGE_SIZE
    ) -> AccessPage:
        """A page of the target's rows, newest first (the last page when `page` is beyond it), of the rows up to
        `upto` (the listing's first page fixes it); the reading is logged."""
        await self._admin(actor)
        self._valid(target)
        async with self.sessionmaker() as session:
            repo = AccessLogRepo(session)
            if upto is None:
                upto = await repo.last_id(target.appeal_id, target.subject_user_id)
            total = await repo.count(target.appeal_id, target.subject_user_id, upto)
            pages = max(1, math.ceil(total / size))
            page = min(max(page, 0), pages - 1)
            rows = await self._rows(repo, target, upto, page * size, size)
            repo.add(actor.id, [AccessKind.access_log_read], target.appeal_id, target.subject_user_id, self.clock.now())
            await session.commit()
            return AccessPage(target, rows, total, page, pages, upto)

    async def export(self, actor: Actor, target: AccessTarget, upto: int | None = None) -> list[AccessRow]:
        """Every row of the target, newest first, up to `upto` (the listing on the screen: the export holds the
        entries it counts) or to now; the export itself is not among them, and it is logged."""
        await self._admin(actor)
        self._valid(target)
        async with self.sessionmaker() as session:
            repo = AccessLogRepo(session)
            if upto is None:
                upto = await repo.last_id(target.appeal_id, target.subject_user_id)
            rows = await self._rows(repo, target, upto, 0, None)
            repo.add(
                actor.id, [AccessKind.access_log_export], target.appeal_id, target.subject_user_id, self.clock.now()
            )
            await session.commit()
            return rows

    @staticmethod
    def _valid(target: AccessTarget) -> None:
        # Exactly one of the two: an empty target would list the whole log, which nobody asked for.
        if (target.appeal_id is None) == (target.subject_user_id is None):
            raise InvalidInput("target")

    @staticmethod
    async def _rows(
        repo: AccessLogRepo, target: AccessTarget, upto: int, offset: int, limit: int | None
    ) -> list[AccessRow]:
        found = await repo.page(target.appeal_id, target.subject_user_id, upto, offset, limit)
        roles = await repo.roles_of(actor_id for _at, actor_id, *_rest in found)
        return [
            AccessRow(
                at=at,
                actor_id=actor_id,
                actor_name=name,
                actor_tg_id=tg_id,
                actor_roles=tuple(Role(r) for r in roles.get(actor_id, []) if r in Role.__members__),
                kind=AccessKind(kind),
                number=number,
            )
            for at, actor_id, name, tg_id, kind, number in found
        ]
