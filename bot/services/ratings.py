"""The resident judges the answer: a rating of each approved answer, sending the appeal back, and the
"Is the problem actually fixed?" follow-up of physical problems.

Only the appeal's owner rates: those whose duplicates follow it get the answer but judge nothing (one appeal, one
judgement, by the person who filed it). A rating belongs to one approved answer (`Rating.note_id`): a re-opened
appeal's next answer gets a rating of its own.

A second press of a score within `ratings.edit_hours` changes the stored value while the appeal still rests on that
answer (answered or closed); the status moves only forward: a low pending score raised to 3–5 closes the appeal, a
closing score lowered to 1–2 only offers to send the appeal back (the resident still says yes). After edit_hours, or
once the appeal was sent back, the score is final ("already rated"). The same low score pressed again (even after
edit_hours) asks "Send it back?" once more while the appeal may still go back: a lost question is not a dead end.

The owner gets a reply of their own to each move made here; those whose duplicates follow the appeal get the usual
status notice (Lifecycle.tell_followers) in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import notices
from bot.domain import (
    FOLLOWUP_MIN_RATING,
    LOW_RATING,
    AccessKind,
    AttachmentSource,
    FollowupAnswer,
    NoteKind,
    NoteStatus,
    ReminderKind,
    Role,
)
from bot.domain import AppealStatus as S
from bot.services.access_log import log_pushed
from bot.services.appeals import DraftAttachment
from bot.services.errors import InvalidInput, NotFound
from bot.services.lifecycle import UseCase
from bot.services.users import Actor
from storage.models import Appeal, AppealMessage, Category, Followup, Rating, Reminder
from storage.repositories.notes import NoteRepo
from storage.repositories.reminders import ReminderRepo

SCORES = range(1, 6)
LIMITS = ("reopen_days", "reopen_count")  # RatingRefused details: the appeal can no longer go back
RATE_KINDS = (ReminderKind.rate_reminder, ReminderKind.rate_close)
# Where a rating still stands on its answer: after a re-opening the appeal waits for a new one.
RESTING = (S.answered, S.closed)


class RatingRefused(InvalidInput):
    """A refusal the rating screens explain in their own words; `detail` is one of:
    score (not 1..5), not_answered (nothing to rate yet), already_rated (final, or the appeal was sent back),
    not_rated (a comment or a decision without a rating), reopen_days / reopen_count (past the limits),
    text_length (a comment too long or empty), not_asked (no follow-up question is open)."""


@dataclass(frozen=True, slots=True)
class Rated:
    number: str
    score: int
    closed: bool  # the appeal is closed now
    ask_reopen: bool  # a low score: offer to send the appeal back
    changed: bool  # an earlier score of the same answer was changed
    same: bool = False  # the same score pressed again: nothing changed


@dataclass(frozen=True, slots=True)
class RatingView:
    """What the resident's card shows: the score of the current answer, and whether it can still be rated."""

    score: int | None
    can_rate: bool
    can_reopen: bool = False  # a low score of this answer, within ratings.reopen_days and under max_reopens
    earlier: bool = False  # the score is of the answer before: the appeal was sent back and waits for a new one


@dataclass(frozen=True, slots=True)
class Prefill:
    """A new appeal about the same problem: what the filing dialog starts with."""

    block_id: int
    category_id: int
    district_id: int
    kind: str
    address: str | None
    lat: float | None
    lon: float | None
    applicant_name: str | None
    applicant_contact: str | None


def score_of(value: int | str) -> int:
    try:
        score = int(value)
    except (TypeError, ValueError):
        raise RatingRefused("score") from None
    if score not in SCORES:
        raise RatingRefused("score")
    return score


class RatingService(UseCase):
    # --- what the approval plans (called by CoordinationService.review in its transaction) ----------------

    async def plan(self, session: AsyncSession, appeal: Appeal, now: datetime) -> None:
        """The rating request to the owner, right after the answer (and its files), and the reminder and the
        closing without a rating; seq counts the answers, so a re-opened appeal's next answer plans its own."""
        config = self.settings.ratings
        answer = await NoteRepo(session).latest(appeal.id, NoteKind.answer, NoteStatus.approved)
        request = notices.RateRequest(appeal.id, appeal.number, answer.id if answer else 0)
        self._notify(session, [appeal.user_id], request, now)
        reminders = ReminderRepo(session)
        await reminders.drop_pending(appeal.id, RATE_KINDS)
        seq = appeal.reopen_count or 0
        allowed = self.reminders.allowed
        reminders.add(appeal.id, ReminderKind.rate_reminder, seq, allowed(now + timedelta(days=config.remind_days)))
        reminders.add(appeal.id, ReminderKind.rate_close, seq, allowed(now + timedelta(days=config.close_days)))

    # --- rating ------------------------------------------------------------------------------------------

    async def rate(self, actor: Actor, appeal_id: int, value: int | str, note_id: int = 0) -> Rated:
        """`note_id`: the answer the pressed buttons were sent for (0: the latest); an earlier one is refused."""
        score = score_of(value)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._own(session, actor, appeal_id)
            answer = await self._answer(session, appeal)
            if note_id and note_id != answer.id:
                raise RatingRefused("earlier_answer")
            rating = await self._rating_of(session, answer.id)
            if rating is None:
                rating = Rating(
                    appeal_id=appeal.id,
                    note_id=answer.id,
                    user_id=actor.id,
                    agency_id=appeal.agency_id,
                    official_id=answer.author_id,
                    score=score,
                    created_at=now,
                    updated_at=now,
                )
                session.add(rating)
                changed = False
            else:
                if rating.score == score and score <= LOW_RATING and self._reopen_refusal(appeal, answer, now) is None:
                    # The same low score again: "Send it back?" once more, nothing changes.
                    again = Rated(appeal.number, score, appeal.status == S.closed, True, False, same=True)
                    await session.rollback()
                    return again
                self._editable(appeal, rating, now)
                if rating.score == score:
                    same = Rated(appeal.number, score, appeal.status == S.closed, False, False, same=True)
                    await session.rollback()
                    return same
                rating.score = score
                rating.updated_at = now
                changed = True
            reminders = ReminderRepo(session)
            await reminders.drop_pending(appeal.id, (ReminderKind.rate_reminder,))
            if score > LOW_RATING:
                if appeal.status == S.answered:
                    await self.lifecycle.transition(session, appeal, S.closed, actor, now, notify_resident=False)
                    await self.lifecycle.tell_followers(session, appeal, now)
                await reminders.drop_pending(appeal.id, RATE_KINDS)
                await self._plan_followup(session, appeal, score, now)
            else:
                # Closed after close_days if the resident never says whether to send it back (the score is kept).
                await reminders.drop_pending(appeal.id, (ReminderKind.followup,))
            await self._commit(session)
            return Rated(appeal.number, score, appeal.status == S.closed, score <= LOW_RATING, changed)

    async def _rated(self, session: AsyncSession, actor: Actor, appeal_id: int) -> tuple[Appeal, Rating]:
        """The resident's own appeal and their rating of its current answer; not_rated while there is none."""
        appeal = await self._own(session, actor, appeal_id)
        rating = await self._rating_of(session, (await self._answer(session, appeal)).id)
        if rating is None:
            raise RatingRefused("not_rated")
        return appeal, rating

    async def may_comment(self, actor: Actor, appeal_id: int) -> str:
        """The rating of the current answer can take a comment now (editable as the score is): the number."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal, rating = await self._rated(session, actor, appeal_id)
            self._editable(appeal, rating, now)
            return appeal.number

    async def comment(self, actor: Actor, appeal_id: int, text: str) -> None:
        """A comment on the score (what could be better, or anything after any score): kept with the rating of the
        current answer, editable as the score is."""
        text = (text or "").strip()
        if not 1 <= len(text) <= self.limits.comment_max:
            raise RatingRefused("text_length")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal, rating = await self._rated(session, actor, appeal_id)
            self._editable(appeal, rating, now)
            rating.comment = text  # updated_at is when the score was last set (the day a score became low)
            await self._commit(session)

    async def keep(self, actor: Actor, appeal_id: int) -> str:
        """"Send it back?" — no: the appeal closes, the low score stays."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal, _rating = await self._rated(session, actor, appeal_id)
            if appeal.status == S.answered:
                await self.lifecycle.transition(session, appeal, S.closed, actor, now, notify_resident=False)
                await self.lifecycle.tell_followers(session, appeal, now)
            await ReminderRepo(session).drop_pending(appeal.id, RATE_KINDS)
            await self._commit(session)
            return appeal.number

    # --- sending it back ----------------------------------------------------------------------------------

    async def may_reopen(self, actor: Actor, appeal_id: int, followup: bool = False) -> str:
        """Whether the appeal may be sent back now (asked before the resident writes why); its number.

        The follow-up's "No" past the limits is the resident's answer all the same: it is kept (the question is
        answered) before the refusal, which offers a new appeal."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._own(session, actor, appeal_id)
            await self._check_reopen(session, appeal, now, followup)
            return appeal.number

    async def reopen(
        self,
        actor: Actor,
        appeal_id: int,
        text: str,
        attachments: Sequence[DraftAttachment] = (),
        followup: bool = False,
    ) -> str:
        """Back to the coordinators (`reopened`), with the resident's words and photos as a note staff read; the
        agency's supervisors are told. From a low rating, or from the follow-up's "No" (`followup`)."""
        text = (text or "").strip()
        limits = self.limits
        if not 1 <= len(text) <= limits.text_max:
            raise RatingRefused("text_length")
        if len(attachments) > limits.attachments_max:
            raise InvalidInput("too_many_attachments")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._own(session, actor, appeal_id)
            rating, asked = await self._check_reopen(session, appeal, now, followup, text)
            await self.lifecycle.transition(session, appeal, S.reopened, actor, now, notify_resident=False)
            await self.lifecycle.tell_followers(session, appeal, now)
            appeal.reopen_count = (appeal.reopen_count or 0) + 1
            notes = NoteRepo(session)
            note = await notes.add(appeal.id, NoteKind.reopen, actor.id, text, now)
            notes.attach(appeal.id, note.id, attachments, AttachmentSource.resident, now)
            if asked is not None:
                asked.answer = FollowupAnswer.no
                asked.comment = text
                asked.answered_at = now
            elif rating is not None and not rating.comment:
                rating.comment = text
            await ReminderRepo(session).drop_pending(appeal.id, (*RATE_KINDS, ReminderKind.followup))
            supervisors = await self._staff_of(session, appeal.agency_id, [Role.supervisor])
            score = None if asked is not None or rating is None else rating.score
            self._notify(session, supervisors, notices.Reopened(appeal.id, appeal.number, text, score), now)
            await session.flush()
            kinds = [AccessKind.resident_reply]
            if await self._notify_files(session, supervisors, note.id, now):
                kinds.append(AccessKind.appeal_files)
            log_pushed(session, supervisors, kinds, appeal.id, appeal.user_id, now)
            await self._commit(session)
            return appeal.number

    async def _check_reopen(
        self, session: AsyncSession, appeal: Appeal, now: datetime, followup: bool, comment: str | None = None
    ) -> tuple[Rating | None, Followup | None]:
        """The rating (or the open follow-up) that sends the appeal back, within ratings.reopen_days of the answer
        and ratings.max_reopens; RatingRefused otherwise.

        The follow-up's "No" past the limits is the resident's answer all the same: it is kept (with `comment`, if
        the resident wrote one) and committed before the refusal, which offers a new appeal."""
        answer = await self._answer(session, appeal)
        rating = await self._rating_of(session, answer.id)
        asked: Followup | None = None
        if followup:
            asked = await self._open_followup(session, appeal.id)
            if appeal.status != S.closed:
                raise RatingRefused("not_asked")
        elif rating is None:
            raise RatingRefused("not_rated")
        elif rating.score > LOW_RATING or appeal.status not in RESTING:
            raise RatingRefused("already_rated")
        refusal = self._reopen_refusal(appeal, answer, now)
        if refusal is not None:
            if asked is not None:
                asked.answer = FollowupAnswer.no
                asked.comment = comment
                asked.answered_at = now
                await self._commit(session)
            raise RatingRefused(refusal)
        return rating, asked

    def _reopen_refusal(self, appeal: Appeal, answer: AppealMessage, now: datetime) -> str | None:
        """Why the appeal can no longer go back (reopen_count: ratings.max_reopens used; reopen_days: past
        ratings.reopen_days of the answer), or None."""
        config = self.settings.ratings
        if (appeal.reopen_count or 0) >= config.max_reopens:
            return "reopen_count"
        answered = appeal.answered_at or answer.created_at
        if now - answered > timedelta(days=config.reopen_days):
            return "reopen_days"
        return None

    # --- "Is the problem actually fixed?" -------------------------------------------------------------------

    async def _plan_followup(self, session: AsyncSession, appeal: Appeal, score: int, now: datetime) -> None:
        """Once per appeal, for a physical problem closed with 3–5, never for duplicates or rejected ones."""
        if score < FOLLOWUP_MIN_RATING or appeal.duplicate_of_id is not None or appeal.status != S.closed:
            return
        category = await session.get(Category, appeal.category_id)
        if category is None or not category.physical:
            return
        planned = await session.execute(
            select(Reminder.id).where(Reminder.appeal_id == appeal.id, Reminder.kind == ReminderKind.followup)
        )
        asked = await session.execute(select(Followup.id).where(Followup.appeal_id == appeal.id))
        if planned.first() is not None or asked.first() is not None:
            return
        due = self.reminders.allowed(now + timedelta(days=self.settings.ratings.followup_days))
        ReminderRepo(session).add(appeal.id, ReminderKind.followup, 0, due)

    async def answer_followup(self, actor: Actor, appeal_id: int, answer: FollowupAnswer | str) -> str:
        """Yes / Don't know, kept for the statistics; "No" goes through may_reopen() and reopen(followup=True)."""
        if answer not in FollowupAnswer.__members__ or answer == FollowupAnswer.no:
            raise RatingRefused("answer")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._own(session, actor, appeal_id)
            asked = await self._open_followup(session, appeal.id)
            asked.answer = FollowupAnswer(answer)
            asked.answered_at = now
            await self._commit(session)
            return appeal.number

    @staticmethod
    async def _open_followup(session: AsyncSession, appeal_id: int) -> Followup:
        asked = (await session.execute(select(Followup).where(Followup.appeal_id == appeal_id))).scalar_one_or_none()
        if asked is None or asked.answer is not None:
            raise RatingRefused("not_asked")
        return asked

    # --- the card and a new appeal ----------------------------------------------------------------------

    async def view(self, actor: Actor, appeal_id: int) -> RatingView:
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await session.get(Appeal, appeal_id)
            if appeal is None or appeal.user_id != actor.id:
                raise NotFound()
            answer = await NoteRepo(session).latest(appeal.id, NoteKind.answer, NoteStatus.approved)
            if answer is None or appeal.duplicate_of_id is not None:
                return RatingView(None, False)
            if appeal.status not in RESTING:  # sent back: the score that did it, until a new answer comes
                rating = await self._rating_of(session, answer.id)
                return RatingView(rating.score if rating else None, False, earlier=True)
            rating = await self._rating_of(session, answer.id)
            if rating is None:
                return RatingView(None, True)
            open_ = now - rating.created_at <= timedelta(hours=self.settings.ratings.edit_hours)
            low = rating.score <= LOW_RATING and self._reopen_refusal(appeal, answer, now) is None
            return RatingView(rating.score, open_, low)

    async def check(self, actor: Actor, appeal_id: int) -> str:
        """The appeal can be rated (the card's «Rate the answer»): its number; RatingRefused otherwise."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            appeal = await self._own(session, actor, appeal_id)
            rating = await self._rating_of(session, (await self._answer(session, appeal)).id)
            if rating is not None:
                self._editable(appeal, rating, now)
            return appeal.number

    async def refile(self, actor: Actor, appeal_id: int) -> Prefill:
        """What a new appeal about the same problem starts with: the category, the district, the place, the kind."""
        async with self.sessionmaker() as session:
            appeal = await session.get(Appeal, appeal_id)
            if appeal is None or appeal.user_id != actor.id:
                raise NotFound()
            category = self.directory.category(appeal.category_id)
            if category is None or category.parent_id is None:
                raise InvalidInput("category")
            return Prefill(
                block_id=category.parent_id,
                category_id=appeal.category_id,
                district_id=appeal.district_id,
                kind=appeal.kind,
                address=appeal.address,
                lat=appeal.latitude,
                lon=appeal.longitude,
                applicant_name=appeal.applicant_name,
                applicant_contact=appeal.applicant_contact,
            )

    # --- shared ----------------------------------------------------------------------------------------

    async def _own(self, session: AsyncSession, actor: Actor, appeal_id: int) -> Appeal:
        """The actor's own appeal, locked; anyone else's looks like a missing one (and is audited)."""
        appeal = await self._load(session, appeal_id)
        if appeal.user_id != actor.id:
            await session.rollback()
            raise NotFound()
        return appeal

    @staticmethod
    async def _answer(session: AsyncSession, appeal: Appeal) -> AppealMessage:
        """The approved answer the appeal rests on; not_answered while there is none to judge."""
        if appeal.status not in RESTING or appeal.duplicate_of_id is not None:
            if appeal.status in (S.reopened, S.assigned, S.in_progress, S.clarification, S.answer_review):
                # Sent back already (or never answered): an older answer is not judged again.
                previous = await NoteRepo(session).latest(appeal.id, NoteKind.answer, NoteStatus.approved)
                if previous is not None:
                    raise RatingRefused("already_rated")
            raise RatingRefused("not_answered")
        answer = await NoteRepo(session).latest(appeal.id, NoteKind.answer, NoteStatus.approved)
        if answer is None:
            raise RatingRefused("not_answered")
        return answer

    @staticmethod
    async def _rating_of(session: AsyncSession, note_id: int) -> Rating | None:
        query = select(Rating).where(Rating.note_id == note_id)
        return (await session.execute(query)).scalar_one_or_none()

    def _editable(self, appeal: Appeal, rating: Rating, now: datetime) -> None:
        if appeal.status not in RESTING or now - rating.created_at > timedelta(hours=self.settings.ratings.edit_hours):
            raise RatingRefused("already_rated")

