"""The read side of the workflow: queues, lists, the staff card and single notes (cosmicpython's views).

Each view checks who asks, reads in one short session and returns plain frozen values; nothing here writes
except the audit row of a refusal."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import (
    AGENCY_ROLES,
    OPEN_FOR_AGENCY,
    TRIAGE,
    AccessKind,
    AppealKind,
    AppealStatus,
    AttachmentKind,
    FollowupAnswer,
    HistoryDetails,
    HistoryEvent,
    NoteKind,
    NoteStatus,
    RequestKind,
    Role,
    Visibility,
)
from bot.domain import AppealStatus as S
from bot.services.access_log import log_access
from bot.services.appeals import DraftAttachment, HistoryEntry
from bot.services.errors import InvalidInput, NotFound
from bot.services.lifecycle import UseCase
from bot.services.rules import in_agency, in_block, is_coordinator
from bot.services.users import Actor
from storage.models import (
    Appeal,
    AppealMessage,
    AppealRequest,
    Attachment,
    Category,
    Followup,
    Rating,
    StatusHistory,
)
from storage.repositories.appeals import AppealRepo
from storage.repositories.notes import NoteRepo
from storage.repositories.rating_stats import RatingStatsRepo
from storage.repositories.requests import RequestRepo
from storage.repositories.routes import RouteRepo

# The resident's other appeals shown on a staff card.
OTHER_APPEALS = 10
# Marking a duplicate: "nearby" is the same district, or this close when both appeals have coordinates.
NEARBY_METERS = 1000
# How many originals a duplicate's screen offers (the resident's own first, then the nearest).
DUPLICATE_CHOICES = 8
# The notes staff write: what a block head's read-only card shows of the notes.
STAFF_NOTES = frozenset({NoteKind.clarification_question, NoteKind.interim, NoteKind.answer})
# Open appeals: an original a duplicate can follow.
OPEN = (*TRIAGE, *OPEN_FOR_AGENCY)
EARTH_METERS = 6_371_000


@dataclass(frozen=True, slots=True)
class QueueItem:
    id: int
    number: str
    status: AppealStatus
    category_id: int
    district_id: int
    created_at: datetime
    deadline_at: datetime | None
    agency_id: int | None


@dataclass(frozen=True, slots=True)
class Original:
    """An open appeal offered as the original of a duplicate."""

    id: int
    number: str
    category_id: int
    district_id: int
    same_resident: bool
    meters: int | None  # when both appeals have coordinates


def distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in meters (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_METERS * math.asin(math.sqrt(a))


def around(latitude: float, longitude: float, meters: float) -> tuple[float, float, float, float]:
    """The box (south, north, west, east) that holds the circle: a cheap filter an index can serve."""
    dlat = math.degrees(meters / EARTH_METERS)
    dlon = dlat / max(math.cos(math.radians(latitude)), 0.01)
    return latitude - dlat, latitude + dlat, longitude - dlon, longitude + dlon


@dataclass(frozen=True)
class BlockPage:
    """A page of a thematic block's appeals, newest first, for its block head."""

    block_id: int
    status: AppealStatus | None
    items: list[QueueItem]
    total: int
    page: int  # from 0
    pages: int  # at least 1


@dataclass(frozen=True)
class Queue:
    items: list[QueueItem]
    # By status (moderation, reopened, answer_review) and "requests" (pending requests).
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    kind: NoteKind
    text: str
    status: NoteStatus | None
    review_comment: str | None
    at: datetime
    attachments: tuple[DraftAttachment, ...] = ()


@dataclass(frozen=True, slots=True)
class StaffHistoryEntry(HistoryEntry):
    """A status-history entry as staff read it: with their comment, and whether residents read the entry too."""

    comment: str | None = None
    staff_only: bool = False


def _history(h: StatusHistory) -> StaffHistoryEntry:
    return StaffHistoryEntry(
        HistoryEvent(h.event),
        AppealStatus(h.to_status),
        HistoryDetails.of(h.params),
        h.at,
        h.comment,
        h.visibility == Visibility.staff,
    )


@dataclass(frozen=True, slots=True)
class PendingRequest:
    id: int
    appeal_id: int
    number: str
    kind: RequestKind
    agency_id: int | None
    days: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class CardRating:
    """The resident's rating of one answer (a note of the card), as staff read it."""

    note_id: int
    score: int
    comment: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CardFollowup:
    """"Is the problem actually fixed?": asked, and answered or not yet."""

    asked_at: datetime
    answer: FollowupAnswer | None
    comment: str | None
    answered_at: datetime | None


def _rating(r: Rating) -> CardRating:
    return CardRating(r.note_id, r.score, r.comment, r.created_at)


def _followup(f: Followup) -> CardFollowup:
    return CardFollowup(f.asked_at, FollowupAnswer(f.answer) if f.answer else None, f.comment, f.answered_at)


def sees_rating(actor: Actor, rating: Rating) -> bool:
    """Coordinators and admins read every rating; officials and supervisors those of their agency's answers (an
    appeal re-routed after a re-opening shows the new agency no judgement of the previous one's work)."""
    return is_coordinator(actor) or rating.official_id == actor.id or in_agency(actor, rating.agency_id)


@dataclass(frozen=True)
class StaffCard:
    """What staff see of an appeal: everything, including the resident's other appeals."""

    id: int
    number: str
    kind: AppealKind
    status: AppealStatus
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
    # (number, status) of the resident's other appeals, newest first.
    resident_history: list[tuple[str, AppealStatus]] = field(default_factory=list)
    requests: list[PendingRequest] = field(default_factory=list)
    # Every entry, the staff-only ones and staff's comments included, oldest first.
    history: list[StaffHistoryEntry] = field(default_factory=list)
    # The residents' ratings of its answers that this person may read, oldest first; the follow-up, if asked.
    ratings: list[CardRating] = field(default_factory=list)
    followup: CardFollowup | None = None
    # How many times the resident sent it back, of ratings.max_reopens.
    reopen_count: int = 0
    max_reopens: int = 0
    # A block head's card: read only, and nothing of the resident (name, contact, place, files, other appeals).
    read_only: bool = False


def _item(a: Appeal) -> QueueItem:
    return QueueItem(
        a.id, a.number, AppealStatus(a.status), a.category_id, a.district_id, a.created_at, a.deadline_at, a.agency_id
    )


def _file(f: Attachment) -> DraftAttachment:
    return DraftAttachment(AttachmentKind(f.kind), f.file_id, f.file_unique_id)


def _note(n: AppealMessage, files: tuple[DraftAttachment, ...]) -> Note:
    status = NoteStatus(n.status) if n.status else None
    return Note(n.id, NoteKind(n.kind), n.text, status, n.review_comment, n.created_at, files)


def _request(r: AppealRequest, number: str) -> PendingRequest:
    return PendingRequest(r.id, r.appeal_id, number, RequestKind(r.kind), r.agency_id, r.days, r.reason)


class Views(UseCase):
    # --- coordinators --------------------------------------------------------------------------------

    async def queue(self, actor: Actor, limit: int = 20) -> Queue:
        """Re-opened appeals at the top (the resident sent them back), then new ones, oldest first; with the counts
        of everything waiting for a coordinator."""
        if not is_coordinator(actor):
            raise await self._deny(actor, "queue")
        async with self.sessionmaker() as session:
            appeals = AppealRepo(session)
            items = [_item(a) for a in await appeals.reopened_first(TRIAGE, S.reopened, limit)]
            counts: dict[str, int] = {}
            for status in (S.moderation, S.reopened, S.answer_review):
                counts[status] = await appeals.count_in(status)
            counts["requests"] = await RequestRepo(session).count_pending()
            return Queue(items, counts)

    async def reviews(self, actor: Actor) -> list[QueueItem]:
        """Appeals whose answer waits for the coordinator's check, longest waiting first."""
        if not is_coordinator(actor):
            raise await self._deny(actor, "reviews")
        async with self.sessionmaker() as session:
            return [_item(a) for a in await AppealRepo(session).in_status_by_update(S.answer_review)]

    async def pending_requests(self, actor: Actor) -> list[PendingRequest]:
        if not is_coordinator(actor):
            raise await self._deny(actor, "requests")
        async with self.sessionmaker() as session:
            return [_request(r, number) for r, number in await RequestRepo(session).pending()]

    async def suggest(self, category_id: int, district_id: int) -> int | None:
        """The agency the routing matrix names for a category and district."""
        async with self.sessionmaker() as session:
            return await RouteRepo(session).agency_for(category_id, district_id)

    async def originals(self, actor: Actor, appeal_id: int) -> list[Original]:
        """What a duplicate may follow: the resident's other open appeals, then open appeals of the same category
        nearby (the same district, or within NEARBY_METERS when both have coordinates), the nearest first."""
        if not is_coordinator(actor):
            raise await self._deny(actor, "duplicate", appeal_id)
        async with self.sessionmaker() as session:
            appeals = AppealRepo(session)
            appeal = await appeals.get(appeal_id)
            if appeal is None:
                raise NotFound()
            here = None
            if appeal.latitude is not None and appeal.longitude is not None:
                here = (appeal.latitude, appeal.longitude)
            box = around(*here, NEARBY_METERS) if here else None

            def meters(other: Appeal) -> int | None:
                if here is None or other.latitude is None or other.longitude is None:
                    return None
                return round(distance(*here, other.latitude, other.longitude) / 10) * 10

            def original(other: Appeal) -> Original:
                same = other.user_id == appeal.user_id
                return Original(other.id, other.number, other.category_id, other.district_id, same, meters(other))

            own = [original(a) for a in await appeals.open_of_resident(appeal.user_id, appeal.id, OPEN, DUPLICATE_CHOICES)]
            near: list[Original] = []
            for other in await appeals.open_near(appeal, OPEN, box, 5 * DUPLICATE_CHOICES):
                found = original(other)
                close = found.meters is not None and found.meters <= NEARBY_METERS
                if not found.same_resident and (close or other.district_id == appeal.district_id):
                    near.append(found)
            near.sort(key=lambda o: (o.meters is None, o.meters or 0))
            return (own + near)[:DUPLICATE_CHOICES]

    # --- officials and supervisors -------------------------------------------------------------------

    async def inbox(self, actor: Actor) -> list[QueueItem]:
        """The agency's open appeals by deadline, the overdue first (the earliest deadlines are they)."""
        if not actor.has(*AGENCY_ROLES) or actor.agency_id is None:
            raise await self._deny(actor, "inbox")
        async with self.sessionmaker() as session:
            rows = await AppealRepo(session).open_for_agency(actor.agency_id, OPEN_FOR_AGENCY)
            return [_item(a) for a in rows]

    # --- block heads ---------------------------------------------------------------------------------

    async def block_appeals(
        self, actor: Actor, status: AppealStatus | None = None, page: int = 0, size: int = 8
    ) -> BlockPage:
        """The appeals of the block head's thematic block, newest first, a page of `size` (the last page when
        `page` is beyond it); `status` narrows them to one status."""
        if not actor.has(Role.block_head) or actor.block_id is None:
            raise await self._deny(actor, "block_appeals")
        async with self.sessionmaker() as session:
            appeals = AppealRepo(session)
            total = await appeals.count_of_block(actor.block_id, status)
            pages = max(1, math.ceil(total / size))
            page = min(max(page, 0), pages - 1)
            rows = await appeals.page_of_block(actor.block_id, status, page * size, size)
            return BlockPage(actor.block_id, status, [_item(a) for a in rows], total, page, pages)

    # --- staff ---------------------------------------------------------------------------------------

    async def card(self, actor: Actor, appeal_id: int, action: str | None = None) -> StaffCard:
        """Coordinators see every appeal; officials and supervisors only their agency's; a block head, read only,
        their block's, without the resident's personal data. `action`: the card is loaded to act on it (a screen
        or a button of the card), which a read-only reader is refused (audited) whatever the button says.

        The card to check or act on; the card to show the person is `show_card` (which logs the view)."""
        async with self.sessionmaker() as session:
            card, _resident = await self._card(session, actor, appeal_id, action)
            return card

    async def show_card(self, actor: Actor, appeal_id: int) -> StaffCard:
        """The card as it is shown to the staff member: checked as `card`, and logged (bot/services/access_log.py):
        one `appeal_card` row, and a `resident_contact` row when it carries the applicant's name and contact."""
        async with self.sessionmaker() as session:
            card, resident = await self._card(session, actor, appeal_id, None)
            kinds = [AccessKind.appeal_card]
            if card.applicant_name or card.applicant_contact:
                kinds.append(AccessKind.resident_contact)
            log_access(session, actor, kinds, card.id, resident, self.clock.now())
            await session.commit()
            return card

    async def files(self, actor: Actor, appeal_id: int) -> list[DraftAttachment]:
        """The files of the appeal and of its notes, to send to the staff member (a block head is refused, as for
        any button of the card); InvalidInput when there are none. Logged: one `appeal_files` row."""
        async with self.sessionmaker() as session:
            card, resident = await self._card(session, actor, appeal_id, "files")
            files = [*card.attachments, *(f for n in card.notes for f in n.attachments)]
            if not files:
                raise InvalidInput("files")
            log_access(session, actor, [AccessKind.appeal_files], card.id, resident, self.clock.now())
            await session.commit()
            return files

    async def location(self, actor: Actor, appeal_id: int) -> tuple[float, float]:
        """The exact place (latitude, longitude), to send as a pin; InvalidInput when the appeal has none. Logged:
        one `appeal_location` row."""
        async with self.sessionmaker() as session:
            card, resident = await self._card(session, actor, appeal_id, "location")
            if card.latitude is None or card.longitude is None:
                raise InvalidInput("location")
            log_access(session, actor, [AccessKind.appeal_location], card.id, resident, self.clock.now())
            await session.commit()
            return card.latitude, card.longitude

    async def _card(
        self, session: AsyncSession, actor: Actor, appeal_id: int, action: str | None
    ) -> tuple[StaffCard, int | None]:
        """The card and its resident's user id (for the access log)."""
        appeal = await AppealRepo(session).get(appeal_id)
        if appeal is None:
            raise NotFound()
        full = is_coordinator(actor) or in_agency(actor, appeal.agency_id)
        if not full:
            block_id = (
                await session.execute(select(Category.block_id).where(Category.id == appeal.category_id))
            ).scalar_one_or_none()
            if not in_block(actor, block_id):
                raise await self._deny(actor, "card", appeal_id, session)
            if action is not None:
                raise await self._deny(actor, action, appeal_id, session)
            return await self._read_only_card(session, appeal), appeal.user_id
        appeals, notes = AppealRepo(session), NoteRepo(session)
        files = await notes.files_of_appeal(appeal.id)

        def files_of(note_id: int | None) -> tuple[DraftAttachment, ...]:
            return tuple(_file(f) for f in files if f.message_id == note_id)

        # An anonymized appeal has nobody behind it (bot/services/privacy.py): no "other appeals of the resident".
        others = (
            [] if appeal.anonymized_at else await appeals.others_of_resident(appeal.user_id, appeal.id, OTHER_APPEALS)
        )
        requests = await RequestRepo(session).pending_of(appeal.id)
        judged = RatingStatsRepo(session)
        ratings = [_rating(r) for r in await judged.of_appeal(appeal.id) if sees_rating(actor, r)]
        followup = await judged.followup_of(appeal.id)
        card = StaffCard(
            id=appeal.id,
            number=appeal.number,
            kind=AppealKind(appeal.kind),
            status=AppealStatus(appeal.status),
            category_id=appeal.category_id,
            district_id=appeal.district_id,
            agency_id=appeal.agency_id,
            suggested_agency_id=await RouteRepo(session).agency_for(appeal.category_id, appeal.district_id),
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
            notes=[_note(n, files_of(n.id)) for n in await notes.of_appeal(appeal.id)],
            resident_history=[(number, AppealStatus(status)) for number, status in others],
            requests=[_request(r, appeal.number) for r in requests],
            history=[_history(h) for h in await appeals.history(appeal.id, Visibility)],
            ratings=ratings,
            followup=_followup(followup) if followup else None,
            reopen_count=appeal.reopen_count or 0,
            max_reopens=self.settings.ratings.max_reopens,
        )
        return card, appeal.user_id

    async def _read_only_card(self, session: AsyncSession, appeal: Appeal) -> StaffCard:
        """What a block head reads of an appeal: what it is about, where it stands, the staff's notes and answers
        and the history; no name, contact, address, coordinates, files or other appeals of the resident are loaded
        at all. What the resident wrote after filing (a clarification reply, the words of a re-opening, a rating's
        or the follow-up's comment) is left out too: it is where people give their address or phone when asked."""
        appeals, notes, judged = AppealRepo(session), NoteRepo(session), RatingStatsRepo(session)
        followup = await judged.followup_of(appeal.id)
        return StaffCard(
            id=appeal.id,
            number=appeal.number,
            kind=AppealKind(appeal.kind),
            status=AppealStatus(appeal.status),
            category_id=appeal.category_id,
            district_id=appeal.district_id,
            agency_id=appeal.agency_id,
            suggested_agency_id=None,
            text=appeal.text,
            address=None,
            latitude=None,
            longitude=None,
            applicant_name=None,
            applicant_contact=None,
            created_at=appeal.created_at,
            deadline_at=appeal.deadline_at,
            extension_used=appeal.extension_used,
            notes=[_note(n, ()) for n in await notes.of_appeal(appeal.id) if n.kind in STAFF_NOTES],
            requests=[_request(r, appeal.number) for r in await RequestRepo(session).pending_of(appeal.id)],
            history=[_history(h) for h in await appeals.history(appeal.id, Visibility)],
            ratings=[replace(_rating(r), comment=None) for r in await judged.of_appeal(appeal.id)],
            followup=replace(_followup(followup), comment=None) if followup else None,
            reopen_count=appeal.reopen_count or 0,
            max_reopens=self.settings.ratings.max_reopens,
            read_only=True,
        )

    async def note(self, actor: Actor, message_id: int) -> tuple[str, Note]:
        """A question, reply or answer, for the person a notification names; (appeal number, note)."""
        async with self.sessionmaker() as session:
            notes = NoteRepo(session)
            note = await notes.get(message_id)
            appeal = await AppealRepo(session).get(note.appeal_id) if note else None
            if note is None or appeal is None:
                raise NotFound()
            resident_may = appeal.user_id == actor.id and (
                note.kind in (NoteKind.clarification_question, NoteKind.interim) or note.status == NoteStatus.approved
            )
            if not (resident_may or is_coordinator(actor) or in_agency(actor, appeal.agency_id)):
                if not actor.is_staff:
                    raise NotFound()  # to a resident, another's note and a missing one look the same
                raise await self._deny(actor, "note", appeal.id, session)
            files = tuple(_file(f) for f in await notes.files_of_note(note.id))
            return appeal.number, _note(note, files)

    # --- residents -----------------------------------------------------------------------------------

    async def waiting_clarification(self, actor: Actor) -> list[tuple[int, str]]:
        """The resident's appeals that wait for their reply: (id, number)."""
        async with self.sessionmaker() as session:
            return await AppealRepo(session).ids_of_user_in(actor.id, S.clarification)
