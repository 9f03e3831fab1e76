"""Filing an appeal and reading one's own appeals."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.domain import (
    AppealKind,
    AppealStatus,
    AttachmentKind,
    AttachmentSource,
    HistoryDetails,
    HistoryEvent,
    NoteKind,
    NoteStatus,
    Visibility,
)
from bot.services.deadlines import ReminderService
from bot.services.directory import DirectoryService
from bot.services.errors import ConsentRequired, InvalidInput, NotFound
from bot.services.users import Actor
from storage.models import Appeal, StatusHistory
from storage.repositories.appeals import AppealRepo
from storage.repositories.notes import NoteRepo
from storage.repositories.privacy import PrivacyRepo

NAME_RE = re.compile(r"^[A-Za-zА-Яа-яЁёӀӏ'’\-]{2,}(?:\s+[A-Za-zА-Яа-яЁёӀӏ'’\-]{1,}){1,3}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9\s\-()]{8,18}[0-9]$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


@dataclass(frozen=True, slots=True)
class DraftAttachment:
    kind: str
    file_id: str
    file_unique_id: str


@dataclass(frozen=True)
class AppealDraft:
    """What the resident confirmed on the preview card."""

    draft_id: str
    category_id: int
    district_id: int
    kind: str
    text: str
    attachments: tuple[DraftAttachment, ...] = ()
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    applicant_name: str | None = None
    applicant_contact: str | None = None


@dataclass(frozen=True, slots=True)
class FiledAppeal:
    id: int
    number: str
    status: str
    created: bool  # False when the same draft had been filed already


@dataclass(frozen=True, slots=True)
class AppealSummary:
    id: int
    number: str
    status: str
    category_id: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AppealPage:
    items: list[AppealSummary]
    page: int
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A status-history entry as data for its sentence: what happened, the status it left, and when.

    It has no room for staff's comments: what a resident is given cannot carry them (views.StaffHistoryEntry can)."""

    event: HistoryEvent
    status: AppealStatus
    details: HistoryDetails
    at: datetime


def without_repeats(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    """The resident's history without a step told twice in a row: an answer returned for rework (a staff-only
    entry) and sent again would otherwise read "the answer is being checked" twice."""
    kept: list[HistoryEntry] = []
    for entry in entries:
        if kept and (kept[-1].event, kept[-1].details) == (entry.event, entry.details):
            continue
        kept.append(entry)
    return kept


@dataclass(frozen=True)
class AppealCard:
    id: int
    number: str
    kind: str
    status: str
    category_id: int
    district_id: int
    text: str
    address: str | None
    latitude: float | None
    longitude: float | None
    created_at: datetime
    deadline_at: datetime | None
    attachments: list[DraftAttachment] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    # The approved final answer; an answer under review or returned for rework is not the resident's to read.
    answer: str | None = None


class AppealService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        directory: DirectoryService,
        settings: Settings,
        reminders: ReminderService,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.directory = directory
        self.settings = settings
        self.reminders = reminders

    def validate_text(self, text: str) -> str:
        """The description rule, shared by the dialog (as it is typed) and by filing."""
        text = text.strip()
        limits = self.settings.limits
        if len(text) < limits.text_min:
            raise InvalidInput("text_too_short")
        if len(text) > limits.text_max:
            raise InvalidInput("text_too_long")
        return text

    def validate_address(self, address: str) -> str:
        """A typed address: its length within the limits."""
        address = address.strip()
        limits = self.settings.limits
        if not limits.address_min <= len(address) <= limits.address_max:
            raise InvalidInput("address_length")
        return address

    def validate_name(self, name: str) -> str:
        """The applicant's full name: two to four words of letters, within the limit; spaces normalized."""
        name = " ".join(name.split())
        if len(name) > self.settings.limits.name_max or not NAME_RE.match(name):
            raise InvalidInput("name")
        return name

    def validate_contact(self, contact: str) -> str:
        """A phone number or an e-mail, within the limit."""
        contact = contact.strip()
        if len(contact) > self.settings.limits.contact_max or not (PHONE_RE.match(contact) or EMAIL_RE.match(contact)):
            raise InvalidInput("contact")
        return contact

    def _validate(self, actor: Actor, draft: AppealDraft) -> None:
        if not actor.has_consent:
            raise ConsentRequired()
        category = self.directory.category(draft.category_id)
        if category is None or self.directory.district(draft.district_id) is None:
            raise InvalidInput("unknown_directory_item")
        self.validate_text(draft.text)
        if draft.kind not in AppealKind.__members__:
            raise InvalidInput("kind")
        if len(draft.attachments) > self.settings.limits.attachments_max:
            raise InvalidInput("too_many_attachments")
        if any(a.kind not in AttachmentKind.__members__ for a in draft.attachments):
            raise InvalidInput("attachment_kind")
        if not draft.address and (draft.latitude is None or draft.longitude is None):
            raise InvalidInput("no_place")
        if draft.address and len(draft.address) > self.settings.limits.address_max:
            raise InvalidInput("address_length")
        if draft.kind == AppealKind.appeal:
            if not (draft.applicant_name and draft.applicant_contact):
                raise InvalidInput("applicant_required")
            self.validate_name(draft.applicant_name)
            self.validate_contact(draft.applicant_contact)

    async def file(self, actor: Actor, draft: AppealDraft) -> FiledAppeal:
        """Store the appeal, its attachments and the first history row in one transaction.

        Idempotent on the draft id: a second Confirm or a re-delivered update returns the same appeal.
        """
        self._validate(actor, draft)
        now = self.clock.now()
        year = now.astimezone(self.settings.tz).year
        try:
            async with self.sessionmaker() as session:
                await self._consent_in_force(session, actor)
                repo = AppealRepo(session)
                number = f"{year}-{await repo.next_counter(f'appeal_number:{year}'):06d}"
                appeal_id = await repo.insert(self._appeal_row(actor, draft, number, now))
                await repo.insert_attachments(
                    [
                        {
                            "appeal_id": appeal_id,
                            "kind": a.kind,
                            "file_id": a.file_id,
                            "file_unique_id": a.file_unique_id,
                            "position": i,
                            "created_at": now,
                        }
                        for i, a in enumerate(draft.attachments)
                    ]
                )
                await repo.insert_history(
                    [
                        {
                            "appeal_id": appeal_id,
                            "from_status": None,
                            "to_status": AppealStatus.moderation,
                            "actor_id": actor.id,
                            "at": now,
                            "event": HistoryEvent.filed,
                            "visibility": Visibility.resident,
                            "params": {},
                        }
                    ]
                )
                await self.reminders.schedule_forward(session, [appeal_id], now)
                await session.commit()
        except IntegrityError:
            # The same draft was filed already (a second Confirm, a re-delivered update, or two Confirms
            # racing): nothing of this attempt stays, its number included, and the answer is the first appeal.
            async with self.sessionmaker() as session:
                existing = await AppealRepo(session).by_draft(draft.draft_id)
            if existing is None:
                raise
            return self._existing(actor, existing)
        return FiledAppeal(appeal_id, number, AppealStatus.moderation, created=True)

    @staticmethod
    async def _consent_in_force(session: AsyncSession, actor: Actor) -> None:
        """The consent read again in the filing's transaction, the person's row locked as a withdrawal locks it
        (PrivacyRepo.lock_user): a withdrawal that committed after the update read `actor.has_consent` wins, and one
        that comes after waits for the filing, then anonymizes or keeps the new appeal like any other."""
        privacy = PrivacyRepo(session)
        await privacy.lock_user(actor.id)
        latest = await privacy.latest_consent(actor.id)
        if latest is None or not latest.accepted or latest.withdrawn:
            raise ConsentRequired()

    @staticmethod
    def _appeal_row(actor: Actor, draft: AppealDraft, number: str, now: datetime) -> dict[str, Any]:
        named = draft.kind == AppealKind.appeal
        return {
            "number": number,
            "draft_id": draft.draft_id,
            "user_id": actor.id,
            "category_id": draft.category_id,
            "district_id": draft.district_id,
            "kind": draft.kind,
            "status": AppealStatus.moderation,
            "text": draft.text.strip(),
            "address": draft.address,
            "latitude": draft.latitude,
            "longitude": draft.longitude,
            "applicant_name": draft.applicant_name if named else None,
            "applicant_contact": draft.applicant_contact if named else None,
            "locale": actor.lang,
            "created_at": now,
            "updated_at": now,
        }

    @staticmethod
    def _existing(actor: Actor, appeal: Appeal) -> FiledAppeal:
        if appeal.user_id != actor.id:
            raise NotFound()
        return FiledAppeal(appeal.id, appeal.number, appeal.status, created=False)

    async def find_by_draft(self, actor: Actor, draft_id: str) -> FiledAppeal | None:
        async with self.sessionmaker() as session:
            appeal = await AppealRepo(session).by_draft(draft_id)
            return None if appeal is None else self._existing(actor, appeal)

    async def list_mine(self, actor: Actor, page: int) -> AppealPage:
        size = self.settings.intake.page_size
        async with self.sessionmaker() as session:
            repo = AppealRepo(session)
            total = await repo.count_for_user(actor.id)
            pages = max(1, math.ceil(total / size))
            page = min(max(page, 0), pages - 1)
            rows = await repo.page_for_user(actor.id, page * size, size)
            items = [AppealSummary(a.id, a.number, a.status, a.category_id, a.created_at) for a in rows]
            return AppealPage(items=items, page=page, pages=pages, total=total)

    async def card_for_resident(self, actor: Actor, appeal_id: int) -> AppealCard:
        """A resident sees only their own appeals; anyone else's id looks like a missing one.

        Of the history, only the entries meant for residents, without staff's comments; of the answers and their
        files, only the approved one."""
        async with self.sessionmaker() as session:
            repo = AppealRepo(session)
            appeal = await repo.full(appeal_id)
            if appeal is None or appeal.user_id != actor.id:
                raise NotFound()
            answer = await NoteRepo(session).latest(appeal.id, NoteKind.answer, NoteStatus.approved)
            files = [
                DraftAttachment(a.kind, a.file_id, a.file_unique_id)
                for a in appeal.attachments
                if a.source != AttachmentSource.official or (answer is not None and a.message_id == answer.id)
            ]
            history = await repo.history(appeal.id, [Visibility.resident])
            return AppealCard(
                id=appeal.id,
                number=appeal.number,
                kind=appeal.kind,
                status=appeal.status,
                category_id=appeal.category_id,
                district_id=appeal.district_id,
                text=appeal.text,
                address=appeal.address,
                latitude=appeal.latitude,
                longitude=appeal.longitude,
                created_at=appeal.created_at,
                deadline_at=appeal.deadline_at,
                attachments=files,
                history=without_repeats([history_entry(h) for h in history]),
                answer=answer.text if answer is not None else None,
            )


def history_entry(row: StatusHistory) -> HistoryEntry:
    return HistoryEntry(HistoryEvent(row.event), AppealStatus(row.to_status), HistoryDetails.of(row.params), row.at)
