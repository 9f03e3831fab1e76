"""What an agency's officials and supervisors do with an appeal routed to it: take it, ask the resident,
give an interim answer, ask the coordinator for a redirect or an extension, and give the final answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot import notices
from bot.domain import AppealStatus as S
from bot.domain import AttachmentSource, NoteKind, NoteStatus, RequestKind
from bot.services.appeals import DraftAttachment
from bot.services.errors import IllegalTransition, InvalidInput
from bot.services.lifecycle import UseCase
from bot.services.rules import check_text, in_agency
from bot.services.users import Actor
from storage.models import Appeal
from storage.repositories.notes import NoteRepo
from storage.repositories.requests import RequestRepo


class AgencyService(UseCase):
    async def _agency_action(self, session: AsyncSession, actor: Actor, appeal_id: int, action: str) -> Appeal:
        """The appeal, locked, if it is with the actor's agency; refused (and audited) otherwise."""
        appeal = await self._load(session, appeal_id)
        if not in_agency(actor, appeal.agency_id):
            raise await self._deny(actor, action, appeal_id, session)
        return appeal

    async def take(self, actor: Actor, appeal_id: int) -> None:
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "take")
            if appeal.status != S.assigned:
                # clarification → in_progress exists for the resident's reply, not for taking.
                raise IllegalTransition("take")
            await self.lifecycle.transition(session, appeal, S.in_progress, actor, now)
            appeal.official_id = actor.id
            await self._commit(session)

    async def ask_clarification(self, actor: Actor, appeal_id: int, question: str) -> None:
        """The question reaches the resident; the deadline clock pauses until they reply."""
        question = check_text(question, self.settings.limits.question_max, self.settings.limits.note_min)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "clarify")
            await self.lifecycle.transition(session, appeal, S.clarification, actor, now, notify_resident=False)
            appeal.official_id = appeal.official_id or actor.id
            appeal.paused_at = now
            await NoteRepo(session).add(appeal.id, NoteKind.clarification_question, actor.id, question, now)
            notice = notices.ClarificationQuestion(appeal.id, appeal.number, question)
            self._notify(session, [appeal.user_id], notice, now)
            await self._commit(session)

    async def interim(self, actor: Actor, appeal_id: int, text: str) -> None:
        """An interim answer goes straight to the resident (and those following the appeal)."""
        text = check_text(text, self.settings.limits.text_max, self.settings.limits.note_min)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "interim")
            if appeal.status not in (S.assigned, S.in_progress):
                raise IllegalTransition("interim")
            await NoteRepo(session).add(appeal.id, NoteKind.interim, actor.id, text, now)
            residents = await self.lifecycle.residents(session, appeal)
            self._notify(session, residents, notices.Interim(appeal.id, appeal.number, text), now)
            await self._commit(session)

    async def request_redirect(self, actor: Actor, appeal_id: int, agency_id: int, reason: str) -> None:
        """Ask the coordinator to send the appeal to another agency."""
        reason = check_text(reason, self.settings.limits.comment_max, self.settings.limits.note_min)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "redirect")
            if (
                appeal.status not in (S.assigned, S.in_progress)
                or agency_id == appeal.agency_id
                or self.directory.agency(agency_id) is None
            ):
                raise InvalidInput("redirect")
            await self._file_request(session, appeal, actor, now, RequestKind.redirect, reason, agency_id=agency_id)

    async def request_extension(self, actor: Actor, appeal_id: int, days: int, reason: str) -> None:
        """Once per appeal, up to limits.extension_max_days (59-ФЗ art. 12 part 2: 30 days)."""
        reason = check_text(reason, self.settings.limits.comment_max, self.settings.limits.note_min)
        if not 1 <= days <= self.settings.limits.extension_max_days:
            raise InvalidInput("days")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "extension")
            if appeal.extension_used or appeal.status not in (S.assigned, S.in_progress, S.clarification):
                raise InvalidInput("extension_used")
            await self._file_request(session, appeal, actor, now, RequestKind.extension, reason, days=days)

    async def _file_request(
        self,
        session: AsyncSession,
        appeal: Appeal,
        actor: Actor,
        now: datetime,
        kind: RequestKind,
        reason: str,
        agency_id: int | None = None,
        days: int | None = None,
    ) -> None:
        """One pending request of a kind per appeal; the coordinators are told, the change committed."""
        requests = RequestRepo(session)
        if await requests.has_pending(appeal.id, kind):
            raise InvalidInput("request_pending")
        requests.add(appeal.id, kind, actor.id, reason, now, agency_id=agency_id, days=days)
        notice = notices.RequestPending(appeal.id, appeal.number, kind)
        self._notify(session, await self._coordinators(session), notice, now)
        await self._commit(session)

    async def answer(
        self, actor: Actor, appeal_id: int, text: str, attachments: Sequence[DraftAttachment] = ()
    ) -> None:
        """The final answer goes to the coordinator's check before the resident sees it."""
        text = check_text(text, self.settings.limits.text_max, self.settings.limits.note_min)
        if len(attachments) > self.settings.limits.attachments_max:
            raise InvalidInput("too_many_attachments")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._agency_action(session, actor, appeal_id, "answer")
            await self.lifecycle.transition(session, appeal, S.answer_review, actor, now, notify_resident=False)
            notes = NoteRepo(session)
            note = await notes.add(appeal.id, NoteKind.answer, actor.id, text, now, status=NoteStatus.review)
            notes.attach(appeal.id, note.id, attachments, AttachmentSource.official, now)
            notice = notices.AnswerReview(appeal.id, appeal.number)
            self._notify(session, await self._coordinators(session), notice, now)
            await self._commit(session)
