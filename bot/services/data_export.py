"""/mydata: everything stored about a person, as a typed plain structure (152-ФЗ art. 14, the right to know).

Exactly the person's own data: their profile, roles, news choices, consents, the appeals they filed as they see
them (the history entries meant for residents and never a staff comment; the notes they may read; who wrote a
note only as "you" or "the ЦУР / the agency", never a staff name or id), their ratings, "is it fixed?" answers,
poll answers, the notifications sent to them and the exports they were given. An appeal of someone else that theirs
was closed as a duplicate of shows only by its registration number.

Rate-limited to `privacy.export_per_day` exports in any 24 hours, counted in `audit_log` (action "data_export"), so
several instances share the count: an export is itself a processing of personal data the operator should be able to
account for, which is what the audit log is for. The audit row is written first (on SQLite that takes the write lock,
so two concurrent exports of one person are counted one after the other; on PostgreSQL the person's `users` row is
locked first for the same), then the exports of the window are counted, the extra one rolled back; the data is read
after that commit.

What is deliberately left out, and why, is in README.md («/mydata»)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.domain import AppealStatus, AttachmentSource, NoteKind, NoteStatus, Visibility
from bot.services.access import audit
from bot.services.appeals import HistoryEntry, history_entry, without_repeats
from bot.services.deadlines import RESIDENT_KINDS
from bot.services.directory import DirectoryService, Named
from bot.services.errors import NotFound, ServiceError
from bot.services.users import Actor
from storage.models import (
    Appeal,
    AppealMessage,
    Attachment,
    AuditEntry,
    Broadcast,
    Consent,
    Followup,
    NewsBlockOff,
    NewsDistrict,
    NewsPrefs,
    Outbox,
    Poll,
    PollAnswer,
    PollOption,
    PollRecipient,
    Rating,
    Reminder,
    User,
    UserRole,
)
from storage.repositories.appeals import AppealRepo

SCHEMA_VERSION = 1
EXPORT_ACTION = "data_export"
WINDOW = timedelta(hours=24)
# The notes a resident reads on their own appeal: the questions put to them, the interim answers, and the final
# answer once the ЦУР approved it (an answer under review or returned for rework is between the ЦУР and the agency).
RESIDENT_NOTES = frozenset(
    {NoteKind.clarification_question, NoteKind.clarification_reply, NoteKind.interim, NoteKind.answer, NoteKind.reopen}
)
# The audit entries that are about the person as such (not about what staff did at work).
ABOUT_ME = ("role_granted", "role_revoked")


class ExportLimited(ServiceError):
    """Over `privacy.export_per_day` exports in 24 hours; `next_at` (UTC) is when the next one is possible."""

    code = "export_limited"

    def __init__(self, next_at: datetime, limit: int) -> None:
        super().__init__("export_limited")
        self.next_at = next_at
        self.limit = limit


class NothingHeld(ServiceError):
    """The person never started: nothing is stored but the Telegram id the bot met them by (`since`, UTC)."""

    code = "nothing_held"

    def __init__(self, since: datetime) -> None:
        super().__init__("nothing_held")
        self.since = since


@dataclass(frozen=True, slots=True)
class Profile:
    tg_id: int
    locale: str | None
    created_at: datetime
    active: bool
    # Staff only (kept from Telegram when they joined); residents' names are not stored.
    full_name: str | None
    username: str | None


@dataclass(frozen=True, slots=True)
class RoleHeld:
    role: str
    agency: Named | None
    block: Named | None
    granted_at: datetime


@dataclass(frozen=True, slots=True)
class RoleEvent:
    action: str  # role_granted, role_revoked
    role: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class NewsChoice:
    """/subscriptions. `chosen` False: the defaults (every block, the district of the latest appeal)."""

    chosen: bool
    stopped: bool
    districts_chosen: bool
    blocks_off: tuple[Named, ...]
    districts: tuple[Named, ...]
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ConsentAnswer:
    version: str
    accepted: bool
    at: datetime
    withdrawn: bool = False  # a withdrawal in /privacy (accepted is false then too), not a "no" at the start


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file's description: what Telegram holds is referred to by an id the export does not give (see README)."""

    kind: str  # bot.domain.AttachmentKind
    source: str  # bot.domain.AttachmentSource: you at filing, you in a clarification, the agency's answer
    added_at: datetime


@dataclass(frozen=True, slots=True)
class NoteItem:
    kind: str  # bot.domain.NoteKind
    from_you: bool  # False: written by the ЦУР or the agency (who exactly is not the person's data)
    text: str
    at: datetime
    files: tuple[FileInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class RatingItem:
    score: int
    comment: str | None
    given_at: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class FollowupItem:
    asked_at: datetime
    answer: str | None  # bot.domain.FollowupAnswer
    comment: str | None
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReminderItem:
    """A message planned to the person about the appeal (to rate the answer, "is it fixed?")."""

    kind: str  # bot.domain.ReminderKind
    due_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class AppealData:
    number: str
    kind: str
    status: str
    category: Named | None
    block: Named | None
    district: Named | None
    address: str | None
    latitude: float | None
    longitude: float | None
    applicant_name: str | None
    applicant_contact: str | None
    text: str
    locale: str
    created_at: datetime
    deadline_at: datetime | None
    answered_at: datetime | None
    reject_reason: str | None
    # The registration number of the appeal this one was closed as a duplicate of (nothing else of it).
    duplicate_of: str | None
    reopen_count: int
    history: list[HistoryEntry] = field(default_factory=list)
    notes: list[NoteItem] = field(default_factory=list)
    files: list[FileInfo] = field(default_factory=list)
    ratings: list[RatingItem] = field(default_factory=list)
    followup: FollowupItem | None = None
    reminders: list[ReminderItem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PollItem:
    question: str
    sent_at: datetime | None  # when the poll was published
    # The district of their latest appeal when the poll was sent (kept for the poll's breakdown by district).
    district: Named | None
    chosen: tuple[str, ...]  # the options of the submitted answer
    other: str | None  # their own words for «Other»
    answered_at: datetime | None
    # Ticked but not submitted yet.
    ticked: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NotificationItem:
    kind: str  # the outbox template (bot/notices.py), or "broadcast"
    queued_at: datetime
    sent_at: datetime | None
    state: str  # bot.domain.OutboxState
    # The number of one of their appeals (or of the appeal theirs follows as a duplicate), when the message was about it.
    appeal_number: str | None = None
    # A news broadcast's text in their language.
    text: str | None = None


@dataclass(frozen=True)
class PersonalData:
    generated_at: datetime
    profile: Profile
    roles: list[RoleHeld]
    role_events: list[RoleEvent]
    news: NewsChoice
    consents: list[ConsentAnswer]
    appeals: list[AppealData]
    polls: list[PollItem]
    notifications: list[NotificationItem]
    exports: list[datetime]  # the exports given so far, this one included


class DataExportService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        directory: DirectoryService,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings
        self.directory = directory

    async def export(self, actor: Actor) -> PersonalData:
        """Everything held about `actor`, counted against the daily limit (ExportLimited past it); NotFound for a
        person the database does not know; NothingHeld for one who never started (not counted)."""
        now = self.clock.now()
        limit = self.settings.privacy.export_per_day
        async with self.sessionmaker() as session:
            # Locked until the commit (PostgreSQL; FOR NO KEY UPDATE, which rows inserted meanwhile for the person do
            # not wait for): a second export of the same person counts after this one.
            user = (
                await session.execute(select(User).where(User.id == actor.id).with_for_update(key_share=True))
            ).scalar_one_or_none()
            if user is None or user.tg_id != actor.tg_id:
                raise NotFound("person")
            if user.locale is None and not await self._has_anything(session, user.id):
                raise NothingHeld(user.created_at)
            # The charge, then the count (on SQLite the insert takes the write lock: the count after it sees every
            # export committed before).
            audit(session, user.id, EXPORT_ACTION, now, target=user.id)
            await session.flush()
            window = list(
                (
                    await session.execute(
                        select(AuditEntry.at)
                        .where(
                            AuditEntry.action == EXPORT_ACTION,
                            AuditEntry.actor_id == user.id,
                            AuditEntry.at > now - WINDOW,
                        )
                        .order_by(AuditEntry.at, AuditEntry.id)
                    )
                ).scalars()
            )
            if len(window) > limit:
                await session.rollback()
                # The window frees a place when the oldest of the last `limit` exports before this one is 24 h old.
                given = window[:-1]
                raise ExportLimited(given[len(given) - limit] + WINDOW, limit)
            # Counted for good before the reading: the write lock is not held while everything is gathered.
            await session.commit()
            return await self._collect(session, user, now)

    async def _has_anything(self, session: AsyncSession, user_id: int) -> bool:
        """Whether anything but the bare user row is stored (a consent, a role, an appeal)."""
        for model, column in ((Consent, Consent.user_id), (UserRole, UserRole.user_id), (Appeal, Appeal.user_id)):
            if (await session.execute(select(model.id).where(column == user_id).limit(1))).first() is not None:
                return True
        return False

    # --- collecting ------------------------------------------------------------------------------------------

    async def _collect(self, session: AsyncSession, user: User, now: datetime) -> PersonalData:
        appeals = await self._appeals(session, user.id)
        numbers = {a.number for a in appeals} | {a.duplicate_of for a in appeals if a.duplicate_of}
        return PersonalData(
            generated_at=now,
            profile=Profile(user.tg_id, user.locale, user.created_at, user.is_active, user.full_name, user.username),
            roles=await self._roles(session, user.id),
            role_events=await self._role_events(session, user.id),
            news=await self._news(session, user.id),
            consents=[
                ConsentAnswer(c.version, c.accepted, c.at, c.withdrawn)
                for c in await self._all(session, select(Consent).where(Consent.user_id == user.id).order_by(Consent.id))
            ],
            appeals=appeals,
            polls=await self._polls(session, user.id),
            notifications=await self._notifications(session, user.id, numbers, user.locale or "ru"),
            exports=[
                e.at
                for e in await self._all(
                    session,
                    select(AuditEntry)
                    .where(AuditEntry.action == EXPORT_ACTION, AuditEntry.actor_id == user.id)
                    .order_by(AuditEntry.at, AuditEntry.id),
                )
            ],
        )

    @staticmethod
    async def _all(session: AsyncSession, query: Any) -> list[Any]:
        return list((await session.execute(query)).scalars().all())

    async def _roles(self, session: AsyncSession, user_id: int) -> list[RoleHeld]:
        rows = await self._all(session, select(UserRole).where(UserRole.user_id == user_id).order_by(UserRole.id))
        return [
            RoleHeld(
                r.role,
                self.directory.agency(r.agency_id) if r.agency_id is not None else None,
                self.directory.block(r.block_id) if r.block_id is not None else None,
                r.granted_at,
            )
            for r in rows
        ]

    async def _role_events(self, session: AsyncSession, user_id: int) -> list[RoleEvent]:
        """Roles given to and taken from the person (who gave them is another person's data, not shown)."""
        rows = await self._all(
            session,
            select(AuditEntry)
            .where(AuditEntry.target_user_id == user_id, AuditEntry.action.in_(ABOUT_ME))
            .order_by(AuditEntry.at, AuditEntry.id),
        )
        return [RoleEvent(r.action, (r.details or {}).get("role"), r.at) for r in rows]

    async def _news(self, session: AsyncSession, user_id: int) -> NewsChoice:
        prefs = await session.get(NewsPrefs, user_id)
        blocks_off = await self._all(session, select(NewsBlockOff.block_id).where(NewsBlockOff.user_id == user_id))
        districts = await self._all(session, select(NewsDistrict.district_id).where(NewsDistrict.user_id == user_id))
        return NewsChoice(
            chosen=prefs is not None or bool(blocks_off) or bool(districts),
            stopped=bool(prefs and prefs.stopped),
            districts_chosen=bool(prefs and prefs.districts_chosen),
            blocks_off=tuple(b for b in (self.directory.block(i) for i in sorted(blocks_off)) if b is not None),
            districts=tuple(d for d in (self.directory.district(i) for i in sorted(districts)) if d is not None),
            updated_at=prefs.updated_at if prefs else None,
        )

    async def _appeals(self, session: AsyncSession, user_id: int) -> list[AppealData]:
        rows = await self._all(session, select(Appeal).where(Appeal.user_id == user_id).order_by(Appeal.created_at, Appeal.id))
        ids = [a.id for a in rows]
        if not ids:
            return []
        originals = {a.duplicate_of_id for a in rows if a.duplicate_of_id is not None}
        # Of the appeal theirs duplicates: the number, nothing else.
        numbers: dict[int, str] = {}
        if originals:
            found = await session.execute(select(Appeal.id, Appeal.number).where(Appeal.id.in_(originals)))
            numbers = {int(i): str(n) for i, n in found.all()}
        notes = await self._all(
            session,
            select(AppealMessage)
            .where(AppealMessage.appeal_id.in_(ids), AppealMessage.kind.in_(list(RESIDENT_NOTES)))
            .order_by(AppealMessage.id),
        )
        # The final answer only once approved; everything else of these kinds reaches the resident.
        notes = [n for n in notes if n.kind != NoteKind.answer or n.status == NoteStatus.approved]
        shown_notes = {n.id for n in notes}
        files = await self._all(
            session, select(Attachment).where(Attachment.appeal_id.in_(ids)).order_by(Attachment.appeal_id, Attachment.id)
        )
        files = [f for f in files if f.source != AttachmentSource.official or f.message_id in shown_notes]
        ratings = await self._all(
            session, select(Rating).where(Rating.appeal_id.in_(ids), Rating.user_id == user_id).order_by(Rating.id)
        )
        followups = await self._all(session, select(Followup).where(Followup.appeal_id.in_(ids), Followup.user_id == user_id))
        reminders = await self._all(
            session,
            select(Reminder)
            .where(Reminder.appeal_id.in_(ids), Reminder.kind.in_([k.value for k in RESIDENT_KINDS]))
            .order_by(Reminder.due_at, Reminder.id),
        )
        repo = AppealRepo(session)
        result = []
        for a in rows:
            category = self.directory.category(a.category_id)
            own_files = [f for f in files if f.appeal_id == a.id]

            def info(f: Attachment) -> FileInfo:
                return FileInfo(f.kind, f.source, f.created_at)

            history = [history_entry(h) for h in await repo.history(a.id, [Visibility.resident])]
            result.append(
                AppealData(
                    number=a.number,
                    kind=a.kind,
                    status=a.status,
                    category=category,
                    block=self.directory.block(category.parent_id) if category and category.parent_id else None,
                    district=self.directory.district(a.district_id),
                    address=a.address,
                    latitude=a.latitude,
                    longitude=a.longitude,
                    applicant_name=a.applicant_name,
                    applicant_contact=a.applicant_contact,
                    text=a.text,
                    locale=a.locale,
                    created_at=a.created_at,
                    deadline_at=a.deadline_at,
                    answered_at=a.answered_at,
                    reject_reason=a.reject_reason if a.status == AppealStatus.rejected else None,
                    duplicate_of=numbers.get(a.duplicate_of_id) if a.duplicate_of_id is not None else None,
                    reopen_count=a.reopen_count or 0,
                    history=without_repeats(history),
                    notes=[
                        NoteItem(
                            n.kind,
                            n.author_id == user_id,
                            n.text,
                            n.created_at,
                            tuple(info(f) for f in own_files if f.message_id == n.id),
                        )
                        for n in notes
                        if n.appeal_id == a.id
                    ],
                    files=[info(f) for f in own_files],
                    ratings=[RatingItem(r.score, r.comment, r.created_at, r.updated_at) for r in ratings if r.appeal_id == a.id],
                    followup=next(
                        (
                            FollowupItem(f.asked_at, f.answer, f.comment, f.answered_at)
                            for f in followups
                            if f.appeal_id == a.id
                        ),
                        None,
                    ),
                    reminders=[ReminderItem(r.kind, r.due_at, r.sent_at) for r in reminders if r.appeal_id == a.id],
                )
            )
        return result

    async def _polls(self, session: AsyncSession, user_id: int) -> list[PollItem]:
        received = (
            await session.execute(
                select(PollRecipient, Poll.question, Poll.published_at)
                .join(Poll, Poll.id == PollRecipient.poll_id)
                .where(PollRecipient.user_id == user_id)
                .order_by(PollRecipient.poll_id)
            )
        ).all()
        if not received:
            return []
        poll_ids = [r.poll_id for r, _q, _p in received]
        found = await session.execute(select(PollOption.id, PollOption.text).where(PollOption.poll_id.in_(poll_ids)))
        options = {int(i): str(t) for i, t in found.all()}
        answers = await self._all(
            session,
            select(PollAnswer)
            .where(PollAnswer.user_id == user_id, PollAnswer.poll_id.in_(poll_ids))
            .order_by(PollAnswer.poll_id, PollAnswer.option_id),
        )
        result = []
        for recipient, question, published_at in received:
            mine = [a for a in answers if a.poll_id == recipient.poll_id]
            draft = recipient.draft or {}
            result.append(
                PollItem(
                    question=question,
                    sent_at=published_at,
                    district=self.directory.district(recipient.district_id) if recipient.district_id else None,
                    chosen=tuple(options.get(a.option_id, "") for a in mine if a.option_id is not None),
                    other=next((a.other_text for a in mine if a.option_id is None), None),
                    answered_at=recipient.answered_at,
                    ticked=tuple(options.get(int(o), "") for o in draft.get("options", []) if int(o) in options),
                )
            )
        return result

    async def _notifications(
        self, session: AsyncSession, user_id: int, numbers: set[str], lang: str
    ) -> list[NotificationItem]:
        """What the bot sent (or will send) them. Of a message's contents only the number of an appeal of theirs
        (or of the one theirs follows) and a broadcast's text: what their appeals' notes and history already hold
        is there, and a staff member's notifications are about appeals of other people."""
        rows = (
            await session.execute(
                select(Outbox, Broadcast.texts)
                .outerjoin(Broadcast, Broadcast.id == Outbox.broadcast_id)
                .where(Outbox.user_id == user_id, or_(Outbox.broadcast_id.is_(None), Broadcast.id.is_not(None)))
                .order_by(Outbox.created_at, Outbox.id)
            )
        ).all()
        result = []
        for row, texts in rows:
            number = (row.params or {}).get("number")
            text = (texts.get(lang) or texts.get("ru")) if texts else None
            result.append(
                NotificationItem(
                    kind="broadcast" if texts else row.template,
                    queued_at=row.created_at,
                    sent_at=row.sent_at,
                    state=row.status,
                    appeal_number=number if isinstance(number, str) and number in numbers else None,
                    text=text,
                )
            )
        return result


__all__ = [
    "SCHEMA_VERSION",
    "AppealData",
    "DataExportService",
    "ExportLimited",
    "NothingHeld",
    "PersonalData",
]
