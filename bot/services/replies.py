"""What a resident does on an appeal after filing: reply to the agency's question."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot import notices
from bot.domain import AccessKind, AttachmentSource, NoteKind, Role
from bot.domain import AppealStatus as S
from bot.services.access_log import log_pushed
from bot.services.appeals import DraftAttachment
from bot.services.errors import IllegalTransition, InvalidInput, NotFound
from bot.services.lifecycle import UseCase
from bot.services.users import Actor
from storage.repositories.notes import NoteRepo


class ReplyService(UseCase):
    async def reply_clarification(
        self, actor: Actor, appeal_id: int, text: str, attachments: Sequence[DraftAttachment] = ()
    ) -> None:
        """The resident's reply is attached to the appeal, reaches the official, and restarts the clock."""
        limits = self.settings.limits
        text = (text or "").strip()
        if not text and not attachments:
            raise InvalidInput("empty")
        if len(text) > limits.text_max or len(attachments) > limits.attachments_max:
            raise InvalidInput("too_long")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._load(session, appeal_id)
            if appeal.user_id != actor.id:
                await session.rollback()
                raise NotFound()
            if appeal.status != S.clarification:
                raise IllegalTransition("not waiting for a clarification")
            await self.lifecycle.transition(session, appeal, S.in_progress, actor, now, notify_resident=False)
            if appeal.paused_at is not None:
                paused = now - appeal.paused_at
                if appeal.deadline_at is not None:  # whole days of the pause are added back
                    counted = timedelta(seconds=appeal.paused_seconds or 0)
                    appeal.deadline_at = self.deadlines.after_pause(appeal.deadline_at, paused, counted)
                appeal.paused_seconds += int(paused.total_seconds())
                appeal.paused_at = None
            await self.reminders.schedule(session, appeal, now)
            notes = NoteRepo(session)
            note = await notes.add(appeal.id, NoteKind.clarification_reply, actor.id, text, now)
            notes.attach(appeal.id, note.id, attachments, AttachmentSource.clarification, now)
            recipients = (
                [appeal.official_id]
                if appeal.official_id
                else await self._staff_of(session, appeal.agency_id or 0, [Role.official])
            )
            self._notify(session, recipients, notices.ClarificationReply(appeal.id, appeal.number, text), now)
            await session.flush()
            # The resident's words and files reach the staff without a card opened: logged as views of them.
            kinds = [AccessKind.resident_reply] if text else []
            if await self._notify_files(session, recipients, note.id, now):
                kinds.append(AccessKind.appeal_files)
            log_pushed(session, recipients, kinds, appeal.id, appeal.user_id, now)
            await self._commit(session)
