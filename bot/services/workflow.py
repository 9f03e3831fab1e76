"""The life of an appeal after filing: triage, routing, work, answers, review. One state machine function
performs every status change; every action checks the actor's role and ownership first."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.services.access import audit, refuse
from bot.services.appeals import DraftAttachment
from bot.services.calendar import ProductionCalendar, compute_deadline, extend
from bot.services.deadlines import AGENCY_KINDS, ReminderService
from bot.services.directory import DirectoryService
from bot.services.errors import Forbidden, InvalidInput, NotFound
from bot.services.users import Actor
from storage.models import (
    Appeal,
    AppealKind,
    AppealMessage,
    AppealRequest,
    AppealStatus,
    Attachment,
    Role,
    Route,
    StatusHistory,
    UserRole,
)
from storage.repositories.outbox import OutboxRepo

logger = logging.getLogger("tsur.workflow")
S = AppealStatus

# Every legal move. assigned → assigned is a redirect to another agency.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.moderation: frozenset({S.assigned, S.rejected, S.closed}),
    S.reopened: frozenset({S.assigned, S.rejected, S.closed}),
    S.assigned: frozenset({S.in_progress, S.clarification, S.assigned}),
    S.in_progress: frozenset({S.clarification, S.answer_review, S.assigned}),
    S.clarification: frozenset({S.in_progress}),
    S.answer_review: frozenset({S.answered, S.in_progress}),
    S.answered: frozenset({S.closed, S.reopened}),
    S.rejected: frozenset({S.reopened}),
    S.closed: frozenset({S.reopened}),
}
# Grounds to leave an appeal without consideration (59-ФЗ art. 11) and the ПОС's moderation rules.
REJECT_REASONS = ("obscene", "unreadable", "no_address", "spam", "repeated", "out_of_competence")
OPEN_FOR_AGENCY = (S.assigned, S.in_progress, S.clarification, S.answer_review)
MAX_EXTENSION_DAYS = 30


class IllegalTransition(InvalidInput):
    code = "illegal_transition"


@dataclass(frozen=True, slots=True)
class QueueItem:
    id: int
    number: str
    status: str
    category_id: int
    district_id: int
    created_at: datetime
    deadline_at: datetime | None
    agency_id: int | None


@dataclass(frozen=True)
class Queue:
    items: list[QueueItem]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    kind: str
    text: str
    status: str | None
    review_comment: str | None
    at: datetime
    attachments: tuple[DraftAttachment, ...] = ()


@dataclass(frozen=True, slots=True)
class PendingRequest:
    id: int
    appeal_id: int
    number: str
    kind: str
    agency_id: int | None
    days: int | None
    reason: str


@dataclass(frozen=True)
class StaffCard:
    """What staff see of an appeal: everything, including the resident's other appeals."""

    id: int
    number: str
    kind: str
    status: str
    category_id: int
    district_id: int
    agency_id: int | None
    suggested_agency_id: int | None
    text: str
    address: str | None
    latitude: float | None
    longitude: float | None
    applicant_name: str | None
    applicant_contact: str | None
    created_at: datetime
    deadline_at: datetime | None
    extension_used: bool
    attachments: list[DraftAttachment] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    resident_history: list[tuple[str, str]] = field(default_factory=list)  # (number, status) of other appeals
    requests: list[PendingRequest] = field(default_factory=list)


class DeadlinePolicy:
    """How long the body has: by kind (сообщение 10 days, обращение 30 days) or by the category's override,
    from registration, in calendar or working days (production calendar), to the end of the last day."""

    def __init__(
        self, settings: Settings, directory: DirectoryService, calendar: ProductionCalendar | None = None
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.calendar = calendar or ProductionCalendar.load()

    def days_for(self, kind: str, category_id: int) -> int:
        config = self.settings.deadlines
        category = self.directory.category(category_id)
        if category is not None and category.code in config.category_days:
            return config.category_days[category.code]
        return config.appeal_days if kind == AppealKind.appeal else config.message_days

    def initial(self, appeal: Appeal) -> datetime:
        return compute_deadline(
            appeal.created_at,
            self.days_for(appeal.kind, appeal.category_id),
            working_days=self.settings.deadlines.working_days,
            calendar=self.calendar,
            tz=self.settings.tz,
        )

    def extended(self, deadline: datetime, days: int) -> datetime:
        return extend(
            deadline,
            days,
            working_days=self.settings.deadlines.working_days,
            calendar=self.calendar,
            tz=self.settings.tz,
        )


class WorkflowService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        directory: DirectoryService,
        deadlines: DeadlinePolicy,
        reminders: ReminderService,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.directory = directory
        self.deadlines = deadlines
        self.reminders = reminders
        # Wakes the outbox sender after a commit that queued notifications.
        self.on_commit = on_commit

    # --- the state machine -----------------------------------------------------------------------

    async def transition(
        self,
        session: AsyncSession,
        appeal: Appeal,
        to: str,
        actor: Actor | None,
        now: datetime,
        comment: str | None = None,
        notify_resident: bool = True,
    ) -> None:
        """The one place a status changes: refuses illegal moves, writes history, tells the resident."""
        if to not in TRANSITIONS.get(appeal.status, frozenset()):
            raise IllegalTransition(f"{appeal.status} -> {to}")
        session.add(
            StatusHistory(
                appeal_id=appeal.id,
                from_status=appeal.status,
                to_status=to,
                actor_id=actor.id if actor else None,
                comment=comment,
                at=now,
            )
        )
        appeal.status = to
        appeal.updated_at = now
        if to in (S.answered, S.closed, S.rejected):
            await self.reminders.unschedule(session, appeal.id, kinds=(*AGENCY_KINDS, "escalation", "forward_due"))
        elif to in (S.clarification, S.answer_review):
            # The clock waits for the resident, or the answer for its check: nothing to remind of until
            # it runs again (then schedule() plans what is left).
            await self.reminders.unschedule(session, appeal.id, kinds=(*AGENCY_KINDS, "escalation"))
        if notify_resident:
            params = {"appeal_id": appeal.id, "number": appeal.number, "status": to}
            for user_id in await self._residents(session, appeal):
                OutboxRepo(session).add(user_id, "status_changed", params, now)

    async def _residents(self, session: AsyncSession, appeal: Appeal) -> list[int]:
        """The resident and those whose duplicates follow this appeal."""
        followers = await session.execute(select(Appeal.user_id).where(Appeal.duplicate_of_id == appeal.id))
        return list(dict.fromkeys([appeal.user_id, *followers.scalars()]))

    # --- helpers ---------------------------------------------------------------------------------

    async def _load(self, session: AsyncSession, appeal_id: int) -> Appeal:
        appeal = (
            await session.execute(select(Appeal).where(Appeal.id == appeal_id).with_for_update())
        ).scalar_one_or_none()
        if appeal is None:
            raise NotFound()
        return appeal

    async def _deny(
        self, actor: Actor, action: str, appeal_id: int | None = None, session: AsyncSession | None = None
    ) -> Forbidden:
        return await refuse(self.sessionmaker, actor, action, self.clock.now(), session, appeal_id=appeal_id)

    def _is_coordinator(self, actor: Actor) -> bool:
        return actor.has(Role.coordinator, Role.admin)

    def _in_agency(self, actor: Actor, appeal: Appeal) -> bool:
        return (
            actor.has(Role.official, Role.supervisor)
            and actor.agency_id is not None
            and appeal.agency_id == actor.agency_id
        )

    async def _staff_of(self, session: AsyncSession, agency_id: int, roles: Iterable[str]) -> list[int]:
        query = select(UserRole.user_id).where(UserRole.agency_id == agency_id, UserRole.role.in_(list(roles)))
        return list(dict.fromkeys((await session.execute(query)).scalars()))

    async def _coordinators(self, session: AsyncSession) -> list[int]:
        ids = list(
            dict.fromkeys(
                (await session.execute(select(UserRole.user_id).where(UserRole.role == Role.coordinator))).scalars()
            )
        )
        if not ids:  # no coordinator yet: the admins stand in
            ids = list(
                dict.fromkeys(
                    (await session.execute(select(UserRole.user_id).where(UserRole.role == Role.admin))).scalars()
                )
            )
        return ids

    def _tell(
        self,
        session: AsyncSession,
        user_ids: Iterable[int],
        template: str,
        appeal: Appeal,
        now: datetime,
        **extra: object,
    ) -> None:
        """Notify about an appeal: its id and number go with every notification."""
        self._notify(session, user_ids, template, now, appeal_id=appeal.id, number=appeal.number, **extra)

    def _notify(
        self, session: AsyncSession, user_ids: Iterable[int], template: str, now: datetime, **params: object
    ) -> None:
        outbox = OutboxRepo(session)
        for user_id in dict.fromkeys(user_ids):
            outbox.add(user_id, template, dict(params), now)

    async def _notify_files(
        self, session: AsyncSession, user_ids: Iterable[int], message_id: int, now: datetime
    ) -> None:
        """Files go as their own notification: one outbox row is one Telegram call, retried whole."""
        rows = await session.execute(
            select(Attachment.kind, Attachment.file_id)
            .where(Attachment.message_id == message_id)
            .order_by(Attachment.position)
        )
        files = [[kind, file_id] for kind, file_id in rows.all()]
        if files:
            self._notify(session, user_ids, "files", now, files=files)

    @staticmethod
    def _assignment(appeal: Appeal) -> dict[str, object]:
        """The assignment message carries the card: what, where, by when; the files come with «Open»."""
        return {
            "appeal_id": appeal.id,
            "number": appeal.number,
            "category_id": appeal.category_id,
            "district_id": appeal.district_id,
            "deadline": appeal.deadline_at.isoformat() if appeal.deadline_at else None,
            "text": appeal.text[:700],
            "address": appeal.address,
            "lat": appeal.latitude,
            "lon": appeal.longitude,
        }

    async def _commit(self, session: AsyncSession) -> None:
        await session.commit()
        self.on_commit()

    def _check_text(self, text: str, limit: int = 4000) -> str:
        text = (text or "").strip()
        if not 2 <= len(text) <= limit:
            raise InvalidInput("text_length")
        return text

    # --- coordinator -----------------------------------------------------------------------------

    async def queue(self, actor: Actor, limit: int = 20) -> Queue:
        """New and reopened appeals, oldest first, with the counts of everything waiting for a coordinator."""
        if not self._is_coordinator(actor):
            raise await self._deny(actor, "queue")
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Appeal)
                    .where(Appeal.status.in_([S.moderation, S.reopened]))
                    .order_by(Appeal.created_at, Appeal.id)
                    .limit(limit)
                )
            ).scalars()
            items = [self._item(a) for a in rows]
            counts: dict[str, int] = {}
            for status in (S.moderation, S.reopened, S.answer_review):
                counts[status] = await self._count(session, Appeal.status == status)
            counts["requests"] = len(
                (await session.execute(select(AppealRequest.id).where(AppealRequest.status == "pending"))).all()
            )
            return Queue(items, counts)

    async def _count(self, session: AsyncSession, *where: object) -> int:
        from sqlalchemy import func

        return int((await session.execute(select(func.count()).select_from(Appeal).where(*where))).scalar_one())

    @staticmethod
    def _item(a: Appeal) -> QueueItem:
        return QueueItem(
            a.id, a.number, a.status, a.category_id, a.district_id, a.created_at, a.deadline_at, a.agency_id
        )

    async def reviews(self, actor: Actor) -> list[QueueItem]:
        if not self._is_coordinator(actor):
            raise await self._deny(actor, "reviews")
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Appeal).where(Appeal.status == S.answer_review).order_by(Appeal.updated_at)
                )
            ).scalars()
            return [self._item(a) for a in rows]

    async def pending_requests(self, actor: Actor) -> list[PendingRequest]:
        if not self._is_coordinator(actor):
            raise await self._deny(actor, "requests")
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(AppealRequest, Appeal.number)
                .join(Appeal, Appeal.id == AppealRequest.appeal_id)
                .where(AppealRequest.status == "pending")
                .order_by(AppealRequest.id)
            )
            return [PendingRequest(r.id, r.appeal_id, n, r.kind, r.agency_id, r.days, r.reason) for r, n in rows.all()]

    async def card(self, actor: Actor, appeal_id: int) -> StaffCard:
        """Coordinators see every appeal; officials and supervisors only their agency's."""
        async with self.sessionmaker() as session:
            appeal = await session.get(Appeal, appeal_id)
            if appeal is None:
                raise NotFound()
            if not (self._is_coordinator(actor) or self._in_agency(actor, appeal)):
                raise await self._deny(actor, "card", appeal_id, session)
            return await self._card(session, appeal)

    async def _card(self, session: AsyncSession, appeal: Appeal) -> StaffCard:
        files = (
            (await session.execute(select(Attachment).where(Attachment.appeal_id == appeal.id).order_by(Attachment.id)))
            .scalars()
            .all()
        )
        notes_rows = (
            (
                await session.execute(
                    select(AppealMessage).where(AppealMessage.appeal_id == appeal.id).order_by(AppealMessage.id)
                )
            )
            .scalars()
            .all()
        )
        others = await session.execute(
            select(Appeal.number, Appeal.status)
            .where(Appeal.user_id == appeal.user_id, Appeal.id != appeal.id)
            .order_by(Appeal.id.desc())
            .limit(10)
        )
        requests = await session.execute(
            select(AppealRequest).where(AppealRequest.appeal_id == appeal.id, AppealRequest.status == "pending")
        )
        route = await session.execute(
            select(Route.agency_id).where(
                Route.category_id == appeal.category_id, Route.district_id == appeal.district_id
            )
        )

        def files_of(message_id: int | None) -> tuple[DraftAttachment, ...]:
            return tuple(
                DraftAttachment(f.kind, f.file_id, f.file_unique_id) for f in files if f.message_id == message_id
            )

        return StaffCard(
            id=appeal.id,
            number=appeal.number,
            kind=appeal.kind,
            status=appeal.status,
            category_id=appeal.category_id,
            district_id=appeal.district_id,
            agency_id=appeal.agency_id,
            suggested_agency_id=route.scalar_one_or_none(),
            text=appeal.text,
            address=appeal.address,
            latitude=appeal.latitude,
            longitude=appeal.longitude,
            applicant_name=appeal.applicant_name,
            applicant_contact=appeal.applicant_contact,
            created_at=appeal.created_at,
            deadline_at=appeal.deadline_at,
            extension_used=appeal.extension_used,
            attachments=list(files_of(None)),
            notes=[
                Note(n.id, n.kind, n.text, n.status, n.review_comment, n.created_at, files_of(n.id)) for n in notes_rows
            ],
            resident_history=[(n, s) for n, s in others.all()],
            requests=[
                PendingRequest(r.id, r.appeal_id, appeal.number, r.kind, r.agency_id, r.days, r.reason)
                for r in requests.scalars()
            ],
        )

    async def suggest(self, category_id: int, district_id: int) -> int | None:
        async with self.sessionmaker() as session:
            route = await session.execute(
                select(Route.agency_id).where(Route.category_id == category_id, Route.district_id == district_id)
            )
            return route.scalar_one_or_none()

    async def route(self, actor: Actor, appeal_id: int, agency_id: int | None = None) -> int:
        """Send to the agency the matrix suggests (or the one chosen); sets the deadline; notifies the agency."""
        if not self._is_coordinator(actor):
            raise await self._deny(actor, "route", appeal_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            if agency_id is None:
                agency_id = (
                    await session.execute(
                        select(Route.agency_id).where(
                            Route.category_id == appeal.category_id, Route.district_id == appeal.district_id
                        )
                    )
                ).scalar_one_or_none()
            if agency_id is None or self.directory.agency(agency_id) is None:
                raise InvalidInput("agency")
            await self.transition(session, appeal, S.assigned, actor, now)
            appeal.agency_id = agency_id
            appeal.assigned_at = now
            appeal.official_id = None
            if appeal.deadline_at is None:
                appeal.deadline_at = self.deadlines.initial(appeal)
            await self.reminders.schedule(session, appeal, now)
            self._notify(
                session,
                await self._staff_of(session, agency_id, [Role.official, Role.supervisor]),
                "assigned",
                now,
                **self._assignment(appeal),
            )
            await self._commit(session)
            return agency_id

    async def change(
        self, actor: Actor, appeal_id: int, *, category_id: int | None = None, kind: str | None = None
    ) -> None:
        if not self._is_coordinator(actor):
            raise await self._deny(actor, "change", appeal_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            if appeal.status not in (S.moderation, S.reopened):
                raise IllegalTransition("change after routing")
            if category_id is not None:
                if self.directory.category(category_id) is None:
                    raise InvalidInput("category")
                audit(
                    session,
                    actor.id,
                    "category_changed",
                    now,
                    appeal_id=appeal.id,
                    old=appeal.category_id,
                    new=category_id,
                )
                appeal.category_id = category_id
            if kind is not None:
                if kind not in AppealKind.__members__:
                    raise InvalidInput("kind")
                audit(session, actor.id, "kind_changed", now, appeal_id=appeal.id, old=appeal.kind, new=kind)
                appeal.kind = kind
            appeal.updated_at = now
            await self._commit(session)

    async def reject(self, actor: Actor, appeal_id: int, reason: str) -> None:
        if not self._is_coordinator(actor):
            raise await self._deny(actor, "reject", appeal_id)
        if reason not in REJECT_REASONS:
            raise InvalidInput("reason")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            await self.transition(session, appeal, S.rejected, actor, now, comment=reason, notify_resident=False)
            appeal.reject_reason = reason
            self._tell(session, await self._residents(session, appeal), "rejected", appeal, now, reason=reason)
            await self._commit(session)

    async def mark_duplicate(self, actor: Actor, appeal_id: int, original_number: str) -> str:
        if not self._is_coordinator(actor):
            raise await self._deny(actor, "duplicate", appeal_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            original = (
                await session.execute(select(Appeal).where(Appeal.number == original_number.strip()))
            ).scalar_one_or_none()
            if original is None or original.id == appeal.id or original.duplicate_of_id is not None:
                raise InvalidInput("original")
            await self.transition(
                session, appeal, S.closed, actor, now, comment=f"duplicate:{original.number}", notify_resident=False
            )
            appeal.duplicate_of_id = original.id
            self._tell(
                session, [appeal.user_id], "duplicate", appeal, now, original=original.number, status=original.status
            )
            await self._commit(session)
            return original.number

    async def review(self, actor: Actor, appeal_id: int, approve: bool, comment: str | None = None) -> None:
        """Approve the official's answer (the resident receives it) or return it for rework."""
        if not self._is_coordinator(actor):
            raise await self._deny(actor, "review", appeal_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            if appeal.status != S.answer_review:
                raise IllegalTransition("no answer to review")
            answer = (
                (
                    await session.execute(
                        select(AppealMessage)
                        .where(
                            AppealMessage.appeal_id == appeal.id,
                            AppealMessage.kind == "answer",
                            AppealMessage.status == "review",
                        )
                        .order_by(AppealMessage.id.desc())
                    )
                )
                .scalars()
                .first()
            )
            if answer is None:
                raise NotFound("answer")
            if approve:
                answer.status = "approved"
                await self.transition(session, appeal, S.answered, actor, now, notify_resident=False)
                residents = await self._residents(session, appeal)
                self._tell(session, residents, "answer", appeal, now, text=answer.text)
                await self._notify_files(session, residents, answer.id, now)
            else:
                comment = self._check_text(comment or "", 1000)
                answer.status = "returned"
                answer.review_comment = comment
                await self.transition(
                    session, appeal, S.in_progress, actor, now, comment=comment, notify_resident=False
                )
                await self.reminders.schedule(session, appeal, now)
                self._tell(session, [answer.author_id], "answer_returned", appeal, now, comment=comment)
            await self._commit(session)

    async def decide(self, actor: Actor, request_id: int, approve: bool) -> None:
        """Approve or decline an official's redirect or extension request."""
        if not self._is_coordinator(actor):
            raise await self._deny(actor, "decide")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            request = await session.get(AppealRequest, request_id)
            if request is None or request.status != "pending":
                raise NotFound("request")
            appeal = await self._load(session, request.appeal_id)
            request.status = "approved" if approve else "declined"
            request.decided_by = actor.id
            request.decided_at = now
            params = {"appeal_id": appeal.id, "number": appeal.number, "kind": request.kind, "approved": approve}
            if approve and request.kind == "redirect":
                old_agency = appeal.agency_id
                await self.transition(session, appeal, S.assigned, actor, now, comment=request.reason)
                appeal.agency_id = request.agency_id
                appeal.official_id = None
                appeal.assigned_at = now
                await self.reminders.schedule(session, appeal, now)
                staff = await self._staff_of(session, request.agency_id or 0, [Role.official, Role.supervisor])
                self._notify(session, staff, "assigned", now, **self._assignment(appeal))
                audit(session, actor.id, "redirected", now, appeal_id=appeal.id, old=old_agency, new=request.agency_id)
            elif approve and request.kind == "extension":
                if appeal.extension_used or appeal.deadline_at is None:
                    raise IllegalTransition("extension used")
                appeal.deadline_at = self.deadlines.extended(appeal.deadline_at, request.days or 0)
                appeal.extension_used = True
                await self.reminders.schedule(session, appeal, now)
                session.add(
                    StatusHistory(
                        appeal_id=appeal.id,
                        from_status=appeal.status,
                        to_status=appeal.status,
                        actor_id=actor.id,
                        comment=f"extension:{request.days}",
                        at=now,
                    )
                )
                self._tell(
                    session,
                    await self._residents(session, appeal),
                    "extended",
                    appeal,
                    now,
                    deadline=appeal.deadline_at.isoformat(),
                )
            self._notify(session, [request.requested_by], "request_decided", now, **params)
            await self._commit(session)

    # --- official and supervisor -----------------------------------------------------------------

    async def inbox(self, actor: Actor) -> list[QueueItem]:
        """The agency's open appeals by deadline, the overdue first (the earliest deadlines are they)."""
        if not actor.has(Role.official, Role.supervisor) or actor.agency_id is None:
            raise await self._deny(actor, "inbox")
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Appeal)
                    .where(Appeal.agency_id == actor.agency_id, Appeal.status.in_(list(OPEN_FOR_AGENCY)))
                    .order_by(Appeal.deadline_at.is_(None), Appeal.deadline_at, Appeal.id)
                )
            ).scalars()
            return [self._item(a) for a in rows]

    async def _agency_action(self, session: AsyncSession, actor: Actor, appeal_id: int, action: str) -> Appeal:
        appeal = await self._load(session, appeal_id)
        if not self._in_agency(actor, appeal):
            raise await self._deny(actor, action, appeal_id, session)
        return appeal

    async def take(self, actor: Actor, appeal_id: int) -> None:
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "take")
            if appeal.status != S.assigned:
                # clarification → in_progress exists for the resident's reply, not for taking.
                raise IllegalTransition("take")
            await self.transition(session, appeal, S.in_progress, actor, now)
            appeal.official_id = actor.id
            await self._commit(session)

    async def ask_clarification(self, actor: Actor, appeal_id: int, question: str) -> None:
        """The question reaches the resident; the deadline clock pauses until they reply."""
        question = self._check_text(question, 2000)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "clarify")
            await self.transition(session, appeal, S.clarification, actor, now, notify_resident=False)
            appeal.official_id = appeal.official_id or actor.id
            appeal.paused_at = now
            note = AppealMessage(
                appeal_id=appeal.id, kind="clarification_question", author_id=actor.id, text=question, created_at=now
            )
            session.add(note)
            await session.flush()
            self._tell(session, [appeal.user_id], "clarification_question", appeal, now, text=question)
            await self._commit(session)

    async def interim(self, actor: Actor, appeal_id: int, text: str) -> None:
        text = self._check_text(text)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "interim")
            if appeal.status not in (S.assigned, S.in_progress):
                raise IllegalTransition("interim")
            note = AppealMessage(appeal_id=appeal.id, kind="interim", author_id=actor.id, text=text, created_at=now)
            session.add(note)
            await session.flush()
            self._tell(session, await self._residents(session, appeal), "interim", appeal, now, text=text)
            await self._commit(session)

    async def request_redirect(self, actor: Actor, appeal_id: int, agency_id: int, reason: str) -> None:
        reason = self._check_text(reason, 1000)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "redirect")
            if (
                appeal.status not in (S.assigned, S.in_progress)
                or agency_id == appeal.agency_id
                or self.directory.agency(agency_id) is None
            ):
                raise InvalidInput("redirect")
            await self._file_request(session, appeal, actor, now, kind="redirect", agency_id=agency_id, reason=reason)

    async def request_extension(self, actor: Actor, appeal_id: int, days: int, reason: str) -> None:
        """Once per appeal, up to 30 days (59-ФЗ art. 12 part 2)."""
        reason = self._check_text(reason, 1000)
        if not 1 <= days <= MAX_EXTENSION_DAYS:
            raise InvalidInput("days")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "extension")
            if appeal.extension_used or appeal.status not in (S.assigned, S.in_progress, S.clarification):
                raise InvalidInput("extension_used")
            await self._file_request(session, appeal, actor, now, kind="extension", days=days, reason=reason)

    async def _file_request(
        self, session: AsyncSession, appeal: Appeal, actor: Actor, now: datetime, **fields: Any
    ) -> None:
        """One pending request of a kind per appeal; the coordinators are told, the change committed."""
        await self._no_pending(session, appeal.id, fields["kind"])
        session.add(
            AppealRequest(appeal_id=appeal.id, requested_by=actor.id, status="pending", created_at=now, **fields)
        )
        self._tell(session, await self._coordinators(session), "request_pending", appeal, now, kind=fields["kind"])
        await self._commit(session)

    async def _no_pending(self, session: AsyncSession, appeal_id: int, kind: str) -> None:
        pending = await session.execute(
            select(AppealRequest.id).where(
                AppealRequest.appeal_id == appeal_id, AppealRequest.kind == kind, AppealRequest.status == "pending"
            )
        )
        if pending.first() is not None:
            raise InvalidInput("request_pending")

    async def answer(
        self, actor: Actor, appeal_id: int, text: str, attachments: Sequence[DraftAttachment] = ()
    ) -> None:
        """The final answer goes to the coordinator's check before the resident sees it."""
        text = self._check_text(text)
        if len(attachments) > 10:
            raise InvalidInput("too_many_attachments")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "answer")
            await self.transition(session, appeal, S.answer_review, actor, now, notify_resident=False)
            note = AppealMessage(
                appeal_id=appeal.id, kind="answer", author_id=actor.id, text=text, status="review", created_at=now
            )
            session.add(note)
            await session.flush()
            self._attach(session, appeal.id, note.id, attachments, "official", now)
            self._tell(session, await self._coordinators(session), "answer_review", appeal, now)
            await self._commit(session)

    @staticmethod
    def _attach(
        session: AsyncSession,
        appeal_id: int,
        message_id: int,
        files: Sequence[DraftAttachment],
        source: str,
        now: datetime,
    ) -> None:
        for i, f in enumerate(files):
            session.add(
                Attachment(
                    appeal_id=appeal_id,
                    message_id=message_id,
                    kind=f.kind,
                    file_id=f.file_id,
                    file_unique_id=f.file_unique_id,
                    position=i,
                    source=source,
                    created_at=now,
                )
            )

    # --- resident ----------------------------------------------------------------------------------

    async def reply_clarification(
        self, actor: Actor, appeal_id: int, text: str, attachments: Sequence[DraftAttachment] = ()
    ) -> None:
        """The resident's reply is attached to the appeal, reaches the official, and restarts the clock."""
        text = (text or "").strip()
        if not text and not attachments:
            raise InvalidInput("empty")
        if len(text) > 4000 or len(attachments) > 10:
            raise InvalidInput("too_long")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            if appeal.user_id != actor.id:
                await session.rollback()
                raise NotFound()
            if appeal.status != S.clarification:
                raise IllegalTransition("not waiting for a clarification")
            await self.transition(session, appeal, S.in_progress, actor, now, notify_resident=False)
            if appeal.paused_at is not None:
                paused = now - appeal.paused_at
                appeal.paused_seconds += int(paused.total_seconds())
                if appeal.deadline_at is not None:
                    appeal.deadline_at += paused  # the paused time is added back
                appeal.paused_at = None
            await self.reminders.schedule(session, appeal, now)
            note = AppealMessage(
                appeal_id=appeal.id, kind="clarification_reply", author_id=actor.id, text=text, created_at=now
            )
            session.add(note)
            await session.flush()
            self._attach(session, appeal.id, note.id, attachments, "clarification", now)
            recipients = (
                [appeal.official_id]
                if appeal.official_id
                else await self._staff_of(session, appeal.agency_id or 0, [Role.official])
            )
            self._tell(session, recipients, "clarification_reply", appeal, now, text=text)
            await session.flush()
            await self._notify_files(session, recipients, note.id, now)
            await self._commit(session)

    async def note(self, actor: Actor, message_id: int) -> tuple[str, Note]:
        """A question, reply or answer, for the person a notification names; (appeal number, note)."""
        async with self.sessionmaker() as session:
            note = await session.get(AppealMessage, message_id)
            appeal = await session.get(Appeal, note.appeal_id) if note else None
            if note is None or appeal is None:
                raise NotFound()
            resident_may = appeal.user_id == actor.id and (
                note.kind in ("clarification_question", "interim") or note.status == "approved"
            )
            if not (resident_may or self._is_coordinator(actor) or self._in_agency(actor, appeal)):
                if not actor.is_staff:
                    raise NotFound()  # to a resident, another's note and a missing one look the same
                raise await self._deny(actor, "note", appeal.id, session)
            files = (
                await session.execute(
                    select(Attachment).where(Attachment.message_id == note.id).order_by(Attachment.position)
                )
            ).scalars()
            return appeal.number, Note(
                note.id,
                note.kind,
                note.text,
                note.status,
                note.review_comment,
                note.created_at,
                tuple(DraftAttachment(f.kind, f.file_id, f.file_unique_id) for f in files),
            )

    async def waiting_clarification(self, actor: Actor) -> list[tuple[int, str]]:
        """The resident's appeals that wait for their reply: (id, number)."""
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(Appeal.id, Appeal.number)
                .where(Appeal.user_id == actor.id, Appeal.status == S.clarification)
                .order_by(Appeal.id)
            )
            return [(i, n) for i, n in rows.all()]

    # --- the routing matrix (admins) -------------------------------------------------------------

    async def routes(self, actor: Actor, category_id: int) -> dict[int, int]:
        """district id -> agency id for one category."""
        if not actor.has(Role.admin, Role.coordinator):
            raise await self._deny(actor, "routes")
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(Route.district_id, Route.agency_id).where(Route.category_id == category_id)
            )
            return {d: a for d, a in rows.all()}

    async def set_route(self, actor: Actor, category_id: int, district_id: int, agency_id: int) -> None:
        if not actor.has(Role.admin):
            raise await self._deny(actor, "set_route")
        if None in (
            self.directory.category(category_id),
            self.directory.district(district_id),
            self.directory.agency(agency_id),
        ):
            raise InvalidInput("route")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            route = (
                await session.execute(
                    select(Route).where(Route.category_id == category_id, Route.district_id == district_id)
                )
            ).scalar_one_or_none()
            old = route.agency_id if route else None
            if route is None:
                session.add(
                    Route(category_id=category_id, district_id=district_id, agency_id=agency_id, edited_by=actor.id)
                )
            else:
                route.agency_id = agency_id
                route.edited_by = actor.id
            audit(
                session,
                actor.id,
                "route_changed",
                now,
                category_id=category_id,
                district_id=district_id,
                old=old,
                new=agency_id,
            )
            await session.commit()
