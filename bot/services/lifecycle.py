"""The one place an appeal's status changes, and what every use case after filing shares.

`Lifecycle.transition()` refuses illegal moves (bot.domain.TRANSITIONS), appends the status-history row,
stops the reminders that no longer apply and tells the resident (and those whose duplicates follow the
appeal). `UseCase` gives each service its session factory, clock, refusals (audited) and the one commit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import notices
from bot.clock import Clock
from bot.config import LimitsSection, Settings
from bot.domain import (
    CLOSED,
    EVENT_OF_MOVE,
    FINISHED,
    PAUSED,
    STAFF_ONLY_EVENTS,
    AppealStatus,
    AttachmentKind,
    HistoryDetails,
    HistoryEvent,
    ReminderKind,
    Role,
    Visibility,
    can_transition,
)
from bot.services.access import refuse
from bot.services.deadlines import AGENCY_KINDS, ReminderService
from bot.services.directory import DirectoryService
from bot.services.errors import Forbidden, IllegalTransition, NotFound
from bot.services.rules import DeadlinePolicy
from bot.services.users import Actor
from storage.models import Appeal
from storage.repositories.appeals import AppealRepo
from storage.repositories.notes import NoteRepo
from storage.repositories.outbox import OutboxRepo
from storage.repositories.users import UserRepo


class Lifecycle:
    def __init__(self, reminders: ReminderService) -> None:
        self.reminders = reminders

    async def transition(
        self,
        session: AsyncSession,
        appeal: Appeal,
        to: AppealStatus | str,
        actor: Actor | None,
        now: datetime,
        comment: str | None = None,
        notify_resident: bool = True,
        *,
        event: HistoryEvent | None = None,
        details: HistoryDetails | None = None,
    ) -> None:
        """Move `appeal` to `to` in the caller's transaction, or raise IllegalTransition and change nothing.

        The history entry records `event` (by default the move's, bot.domain.EVENT_OF_MOVE) with `details`;
        `comment` is staff's own words, which residents never read. A staff-only event is never told to them."""
        if not can_transition(appeal.status, to, event):
            raise IllegalTransition(f"{appeal.status} -> {to}")
        target = AppealStatus(to)
        event = event or EVENT_OF_MOVE[(AppealStatus(appeal.status), target)]
        self.record(session, appeal, event, actor, now, details, comment, to=target)
        if appeal.first_action_at is None and actor is not None and actor.id != appeal.user_id:
            # The first move by staff after filing (a resident's own moves and the scheduler's never count).
            appeal.first_action_at = now
            appeal.first_action_seconds = max(0, int((now - appeal.created_at).total_seconds()))
        if target == AppealStatus.answered:
            await self._answered(session, appeal, now)
        appeal.status = target
        appeal.updated_at = now
        # Retention (bot/services/privacy.py) counts from the closing; a reopened appeal is open again.
        appeal.closed_at = now if target in CLOSED else None
        if target in FINISHED:
            kinds = (*AGENCY_KINDS, ReminderKind.escalation, ReminderKind.forward_due)
            await self.reminders.unschedule(session, appeal.id, kinds=kinds)
        elif target in PAUSED:
            # The clock waits for the resident, or the answer for its check: nothing to remind of until
            # it runs again (then schedule() plans what is left).
            await self.reminders.unschedule(session, appeal.id, kinds=(*AGENCY_KINDS, ReminderKind.escalation))
        if notify_resident and event not in STAFF_ONLY_EVENTS:
            notice = notices.StatusChanged(appeal.id, appeal.number, target)
            OutboxRepo(session).add_many(await self.residents(session, appeal), notice, now)

    @staticmethod
    async def _answered(session: AsyncSession, appeal: Appeal, now: datetime) -> None:
        """The answer's figures for the statistics: when, its working time (from filing, or from the latest
        re-opening: a sent-back appeal is a new consideration with a term of its own, less the clarification pauses)
        and whether it came by the deadline in force now."""
        start = appeal.created_at
        if appeal.reopen_count:
            start = await AppealRepo(session).last_move_at(appeal.id, AppealStatus.reopened) or start
        appeal.answered_at = now
        appeal.answer_seconds = max(0, int((now - start).total_seconds()) - (appeal.paused_seconds or 0))
        appeal.answered_on_time = appeal.deadline_at is None or now <= appeal.deadline_at

    @staticmethod
    def record(
        session: AsyncSession,
        appeal: Appeal,
        event: HistoryEvent,
        actor: Actor | None,
        now: datetime,
        details: HistoryDetails | None = None,
        comment: str | None = None,
        to: AppealStatus | None = None,
    ) -> None:
        """The history entry of `event`: a move to `to`, or (without `to`) an event in the current status."""
        visibility = Visibility.staff if event in STAFF_ONLY_EVENTS else Visibility.resident
        AppealRepo(session).add_history(
            appeal,
            to or appeal.status,
            actor.id if actor else None,
            now,
            event=event,
            visibility=visibility,
            params=(details or HistoryDetails()).params(),
            comment=comment,
        )

    @staticmethod
    async def tell_followers(session: AsyncSession, appeal: Appeal, now: datetime) -> None:
        """The usual status notice to those whose duplicates follow the appeal, not to its resident: for a move
        made with notify_resident=False because the resident gets a reply (or a notice) of their own."""
        followers = [u for u in await AppealRepo(session).follower_ids(appeal.id) if u != appeal.user_id]
        notice = notices.StatusChanged(appeal.id, appeal.number, AppealStatus(appeal.status))
        OutboxRepo(session).add_many(followers, notice, now)

    @staticmethod
    async def residents(session: AsyncSession, appeal: Appeal) -> list[int]:
        """The resident and those whose duplicates follow this appeal."""
        return list(dict.fromkeys([appeal.user_id, *await AppealRepo(session).follower_ids(appeal.id)]))


@dataclass(frozen=True)
class Workbench:
    """What every use case after filing works with."""

    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    settings: Settings
    directory: DirectoryService
    lifecycle: Lifecycle
    deadlines: DeadlinePolicy
    # Wakes the outbox sender after a commit that queued notifications.
    on_commit: Callable[[], None] = lambda: None


class UseCase:
    """The base of the workflow's services: one transaction per use case, committed once."""

    def __init__(self, bench: Workbench) -> None:
        self.sessionmaker = bench.sessionmaker
        self.clock = bench.clock
        self.settings = bench.settings
        self.directory = bench.directory
        self.lifecycle = bench.lifecycle
        self.reminders = bench.lifecycle.reminders
        self.deadlines = bench.deadlines
        self.on_commit = bench.on_commit

    @property
    def limits(self) -> LimitsSection:
        return self.settings.limits

    async def _commit(self, session: AsyncSession) -> None:
        await session.commit()
        self.on_commit()

    async def _deny(
        self, actor: Actor, action: str, appeal_id: int | None = None, session: AsyncSession | None = None
    ) -> Forbidden:
        """The refusal, audited (in its own transaction when `session` is None)."""
        return await refuse(self.sessionmaker, actor, action, self.clock.now(), session, appeal_id=appeal_id)

    @staticmethod
    async def _load(session: AsyncSession, appeal_id: int) -> Appeal:
        appeal = await AppealRepo(session).lock(appeal_id)
        if appeal is None:
            raise NotFound()
        return appeal

    @staticmethod
    def _notify(session: AsyncSession, user_ids: Iterable[int], notice: notices.Notice, now: datetime) -> None:
        OutboxRepo(session).add_many(user_ids, notice, now)

    @staticmethod
    async def _notify_files(session: AsyncSession, user_ids: Iterable[int], note_id: int, now: datetime) -> bool:
        """Files go as their own notification: one outbox row is one Telegram call, retried whole. Whether there were
        any (sent to staff, the caller logs them: `log_pushed` with `appeal_files`)."""
        files = tuple((AttachmentKind(f.kind), f.file_id) for f in await NoteRepo(session).files_of_note(note_id))
        if files:
            OutboxRepo(session).add_many(user_ids, notices.Files(files), now)
        return bool(files)

    @staticmethod
    async def _coordinators(session: AsyncSession) -> list[int]:
        """The coordinators; while there are none, the admins stand in."""
        users = UserRepo(session)
        return await users.holders([Role.coordinator]) or await users.holders([Role.admin])

    @staticmethod
    async def _staff_of(session: AsyncSession, agency_id: int | None, roles: Iterable[str]) -> list[int]:
        if agency_id is None:
            return []
        return await UserRepo(session).holders(roles, agency_id)
