"""What coordinators do with an appeal: route it, correct it, reject it, close it as a duplicate, check the
agency's answer and decide the agency's requests. Each use case checks the role, runs one transaction and
commits once; status changes go through Lifecycle.transition()."""

from __future__ import annotations

from bot import notices
from bot.domain import (
    AGENCY_ROLES,
    CLOSED,
    TRIAGE,
    AccessKind,
    AppealKind,
    HistoryDetails,
    HistoryEvent,
    NoteKind,
    NoteStatus,
    RejectReason,
    RequestKind,
    RequestState,
    typed_number,
)
from bot.domain import AppealStatus as S
from bot.services.access import audit
from bot.services.access_log import log_pushed
from bot.services.errors import IllegalTransition, InvalidInput, NotFound
from bot.services.lifecycle import UseCase, Workbench
from bot.services.ratings import RatingService
from bot.services.rules import check_text, is_coordinator
from bot.services.users import Actor
from storage.models import Appeal
from storage.repositories.appeals import AppealRepo
from storage.repositories.notes import NoteRepo
from storage.repositories.requests import RequestRepo
from storage.repositories.routes import RouteRepo

# The assignment notification carries this much of the appeal's text.
ASSIGNMENT_TEXT = 700


def assignment(appeal: Appeal, reopened: str | None = None) -> notices.Assigned:
    """The assignment message carries the card: what, where, by when; the files come with «Open»; for an appeal the
    resident sent back, their words about what is still wrong."""
    return notices.Assigned(
        reopened=reopened,
        appeal_id=appeal.id,
        number=appeal.number,
        category_id=appeal.category_id,
        district_id=appeal.district_id,
        deadline=appeal.deadline_at.isoformat() if appeal.deadline_at else None,
        text=appeal.text[:ASSIGNMENT_TEXT],
        address=appeal.address,
        lat=appeal.latitude,
        lon=appeal.longitude,
    )


def assignment_kinds(notice: notices.Assigned) -> list[AccessKind]:
    """What the assignment shows its staff recipients of the resident's data (bot/services/access_log.py): the card;
    the pin when it has one; the resident's words when they sent the appeal back. It carries no name or contact."""
    kinds = [AccessKind.appeal_card]
    if notice.lat is not None and notice.lon is not None:
        kinds.append(AccessKind.appeal_location)
    if notice.reopened:
        kinds.append(AccessKind.resident_reply)
    return kinds


class CoordinationService(UseCase):
    def __init__(self, bench: Workbench, ratings: RatingService) -> None:
        super().__init__(bench)
        self.ratings = ratings

    async def route(self, actor: Actor, appeal_id: int, agency_id: int | None = None) -> int:
        """Send to the agency the matrix suggests (or the one chosen); sets the deadline; notifies the agency."""
        if not is_coordinator(actor):
            raise await self._deny(actor, "route", appeal_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            if agency_id is None:
                agency_id = await RouteRepo(session).agency_for(appeal.category_id, appeal.district_id)
            if agency_id is None or self.directory.agency(agency_id) is None:
                raise InvalidInput("agency")
            reopened = appeal.status == S.reopened
            await self.lifecycle.transition(
                session, appeal, S.assigned, actor, now, details=HistoryDetails(agency_id=agency_id)
            )
            appeal.agency_id = agency_id
            appeal.assigned_at = now
            appeal.official_id = None
            why = None
            if reopened:
                why = await NoteRepo(session).latest_of_kind(appeal.id, NoteKind.reopen)
                # Sent back by the resident: a new consideration with a term of its own from the day it came back
                # (the old deadline has passed or nearly so) and its own one extension.
                since = await AppealRepo(session).last_move_at(appeal.id, S.reopened) or now
                appeal.deadline_at = self.deadlines.initial(since, appeal.kind, appeal.category_id)
                appeal.extension_used = False
                appeal.paused_at = None
                appeal.paused_seconds = 0
            elif appeal.deadline_at is None:
                appeal.deadline_at = self.deadlines.initial(appeal.created_at, appeal.kind, appeal.category_id)
            await self.reminders.schedule(session, appeal, now)
            notice = assignment(appeal, why.text if why else None)
            staff = await self._staff_of(session, agency_id, AGENCY_ROLES)
            self._notify(session, staff, notice, now)
            log_pushed(session, staff, assignment_kinds(notice), appeal.id, appeal.user_id, now)
            await self._commit(session)
            return agency_id

    async def change(
        self, actor: Actor, appeal_id: int, *, category_id: int | None = None, kind: AppealKind | str | None = None
    ) -> None:
        """Correct the category or the kind before routing; each change is audited."""
        if not is_coordinator(actor):
            raise await self._deny(actor, "change", appeal_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            if appeal.status not in TRIAGE:
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
                new_kind = AppealKind(kind)
                audit(session, actor.id, "kind_changed", now, appeal_id=appeal.id, old=appeal.kind, new=new_kind.value)
                appeal.kind = new_kind
            appeal.updated_at = now
            await self._commit(session)

    async def reject(self, actor: Actor, appeal_id: int, reason: RejectReason | str) -> None:
        """Leave the appeal without consideration, for one of the grounds of RejectReason."""
        if not is_coordinator(actor):
            raise await self._deny(actor, "reject", appeal_id)
        if reason not in RejectReason.__members__:
            raise InvalidInput("reason")
        code = RejectReason(reason)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            await self.lifecycle.transition(
                session, appeal, S.rejected, actor, now, notify_resident=False, details=HistoryDetails(reason=code)
            )
            appeal.reject_reason = code
            residents = await self.lifecycle.residents(session, appeal)
            self._notify(session, residents, notices.Rejected(appeal.id, appeal.number, code), now)
            await self._commit(session)

    async def mark_duplicate(self, actor: Actor, appeal_id: int, original_number: str) -> str:
        """Close the appeal as a duplicate of another; its resident follows the original from now on."""
        if not is_coordinator(actor):
            raise await self._deny(actor, "duplicate", appeal_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            original = await AppealRepo(session).by_number(typed_number(original_number))
            if original is not None and original.id == appeal.id:
                raise InvalidInput("original_self")
            if original is None or original.duplicate_of_id is not None or original.anonymized_at is not None:
                raise InvalidInput("original")
            if original.status in CLOSED:
                # Its resident would follow an appeal that moves no more ("you will be told of its progress"): a
                # repeated appeal is handled on its own, or rejected as repeated (59-ФЗ art. 11 part 5).
                raise InvalidInput("original_closed")
            await self.lifecycle.transition(
                session,
                appeal,
                S.closed,
                actor,
                now,
                notify_resident=False,
                event=HistoryEvent.duplicate,
                details=HistoryDetails(original=original.number),
            )
            appeal.duplicate_of_id = original.id
            notice = notices.Duplicate(appeal.id, appeal.number, original.number, S(original.status))
            self._notify(session, [appeal.user_id], notice, now)
            await self._commit(session)
            return original.number

    async def review(self, actor: Actor, appeal_id: int, approve: bool, comment: str | None = None) -> None:
        """Approve the official's answer (the resident receives it) or return it for rework."""
        if not is_coordinator(actor):
            raise await self._deny(actor, "review", appeal_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            if appeal.status != S.answer_review:
                raise IllegalTransition("no answer to review")
            answer = await NoteRepo(session).latest(appeal.id, NoteKind.answer, NoteStatus.review)
            if answer is None:
                raise NotFound("answer")
            if approve:
                answer.status = NoteStatus.approved
                await self.lifecycle.transition(session, appeal, S.answered, actor, now, notify_resident=False)
                residents = await self.lifecycle.residents(session, appeal)
                self._notify(session, residents, notices.Answer(appeal.id, appeal.number, answer.text), now)
                await self._notify_files(session, residents, answer.id, now)
                # Right after the answer, its owner (not the followers of duplicates) is asked to rate it.
                await self.ratings.plan(session, appeal, now)
            else:
                comment = check_text(comment, self.limits.comment_max, self.limits.note_min)
                answer.status = NoteStatus.returned
                answer.review_comment = comment
                await self.lifecycle.transition(
                    session, appeal, S.in_progress, actor, now, comment=comment, notify_resident=False
                )
                await self.reminders.schedule(session, appeal, now)
                notice = notices.AnswerReturned(appeal.id, appeal.number, comment)
                self._notify(session, [answer.author_id], notice, now)
            await self._commit(session)

    async def decide(self, actor: Actor, request_id: int, approve: bool) -> None:
        """Approve or decline an agency's redirect or extension request."""
        if not is_coordinator(actor):
            raise await self._deny(actor, "decide")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            request = await RequestRepo(session).get(request_id)
            if request is None or request.status != RequestState.pending:
                raise NotFound("request")
            appeal = await self._load(session, request.appeal_id)
            request.status = RequestState.approved if approve else RequestState.declined
            request.decided_by = actor.id
            request.decided_at = now
            kind = RequestKind(request.kind)
            if approve and kind == RequestKind.redirect:
                old_agency = appeal.agency_id
                await self.lifecycle.transition(
                    session,
                    appeal,
                    S.assigned,
                    actor,
                    now,
                    comment=request.reason,
                    details=HistoryDetails(agency_id=request.agency_id),
                )
                appeal.agency_id = request.agency_id
                appeal.official_id = None
                appeal.assigned_at = now
                await self.reminders.schedule(session, appeal, now)
                staff = await self._staff_of(session, request.agency_id or 0, AGENCY_ROLES)
                notice = assignment(appeal)
                self._notify(session, staff, notice, now)
                log_pushed(session, staff, assignment_kinds(notice), appeal.id, appeal.user_id, now)
                audit(session, actor.id, "redirected", now, appeal_id=appeal.id, old=old_agency, new=request.agency_id)
            elif approve and kind == RequestKind.extension:
                if appeal.extension_used or appeal.deadline_at is None:
                    raise IllegalTransition("extension used")
                appeal.deadline_at = self.deadlines.extended(appeal.deadline_at, request.days or 0)
                appeal.extension_used = True
                await self.reminders.schedule(session, appeal, now)
                # An event, not a move: the history shows it as status → the same status.
                details = HistoryDetails(days=request.days, deadline=appeal.deadline_at)
                self.lifecycle.record(session, appeal, HistoryEvent.extended, actor, now, details, request.reason)
                residents = await self.lifecycle.residents(session, appeal)
                notice = notices.Extended(appeal.id, appeal.number, appeal.deadline_at.isoformat())
                self._notify(session, residents, notice, now)
            decided = notices.RequestDecided(appeal.id, appeal.number, kind, approve)
            self._notify(session, [request.requested_by], decided, now)
            await self._commit(session)
