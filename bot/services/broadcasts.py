"""Broadcasts (информирование), the author's side: admins and editors compose a broadcast, see who it reaches,
store it to go out now or at a chosen time, and pause, resume or cancel it; the list of broadcasts and each one's
card. Delivering it (starting, the outbox's bulk lane, progress, the report) is bot/services/broadcast_delivery.py.

Every method checks the role (`AUTHORS`; anyone else is refused and audited), forged presses included. Any admin or
editor may control any broadcast, not only its author: the ЦУР works in shifts, and a broadcast that must be stopped
cannot wait for its author. The content is validated again when it is stored (the dialog validates each step as it
is typed), so what is stored is what Telegram accepts. A confirmation carries the dialog's `draft_key`: a second
press, or a forged repeat, finds the broadcast stored the first time and creates nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import LOCALES, Settings
from bot.domain import AttachmentKind, BroadcastAudience, BroadcastStatus, Role
from bot.html_check import Checked, HtmlError, check_html
from bot.services.access import audit, refuse
from bot.services.broadcast_delivery import finish
from bot.services.calendar import next_allowed_time
from bot.services.directory import DirectoryService
from bot.services.errors import Gone, InvalidInput
from bot.services.users import Actor
from storage.models import Broadcast
from storage.repositories.broadcasts import ItemCounts, item_counts, recipients_query

logger = logging.getLogger(__name__)

AUTHORS = (Role.admin, Role.editor)
DEFAULT_LANGUAGE = "ru"
TEXT_LIMIT = 4096  # a message's visible text (UTF-16 units)
CAPTION_LIMIT = 1024  # a photo's or document's caption
PHOTO_LIMIT = 5 * 1024 * 1024  # a broadcast's photo goes to every recipient: light ones only (Telegram allows 10 MB)
DOCUMENT_LIMIT = 20 * 1024 * 1024  # what a bot can take from a user (and pass on by file_id)
LABEL_CHARS = 64
URL_CHARS = 512
LIST_LIMIT = 200


class TextRefused(InvalidInput):
    """A text that cannot go out: `detail` is "empty", "too_long" (`length`, `limit`) or "html" (`problem`)."""

    code = "broadcast_text"

    def __init__(self, detail: str, *, length: int = 0, limit: int = 0, error: HtmlError | None = None) -> None:
        super().__init__(detail)
        self.length = length
        self.limit = limit
        self.problem = error.found if error is not None else None


class BroadcastRefused(InvalidInput):
    """A broadcast that cannot be stored or a file/button that cannot be attached; `detail` says why: file_kind,
    photo_size, document_size, caption (a text over the caption limit, `language` names it), label, url,
    no_recipients, past, quiet_hours (a chosen time), quiet_now («now» inside the quiet hours)."""

    code = "broadcast_refused"

    def __init__(self, detail: str, *, language: str = "", allowed_at: datetime | None = None) -> None:
        super().__init__(detail)
        self.language = language
        self.allowed_at = allowed_at


class StaleControl(InvalidInput):
    """Pause, resume or cancel of a broadcast not in a state for it (a stale or repeated press); nothing changed.
    `status` is the broadcast's status now."""

    code = "broadcast_stale"

    def __init__(self, action: str, status: BroadcastStatus) -> None:
        super().__init__(action)
        self.status = status


@dataclass(frozen=True)
class BroadcastDraft:
    """What the author composed. `texts`: HTML per language ("ru" required)."""

    draft_key: str
    texts: dict[str, str]
    audience: BroadcastAudience = field(default_factory=BroadcastAudience)
    media_kind: AttachmentKind | None = None
    media_file_id: str | None = None
    button_text: str | None = None
    button_url: str | None = None
    urgent: bool = False


@dataclass(frozen=True)
class Stored:
    broadcast_id: int
    status: BroadcastStatus
    start_at: datetime
    planned: int
    existed: bool  # the draft was stored before (a second confirmation): nothing new was created
    has_progress: bool = False  # (existed) its progress message is posted and attached


@dataclass(frozen=True)
class BroadcastSummary:
    id: int
    status: BroadcastStatus
    urgent: bool
    text: str  # the Russian text's HTML source
    created_at: datetime
    start_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class BroadcastCard:
    summary: BroadcastSummary
    created_by: int
    texts: dict[str, str]
    audience: BroadcastAudience
    media_kind: str | None
    button_text: str | None
    button_url: str | None
    planned: int
    recipients: int
    flood_waits: int
    counts: ItemCounts


def check_text(source: str, *, caption: bool = False) -> Checked:
    """Valid Telegram HTML with visible text, within a message's (or, with a file, a caption's) limit."""
    try:
        checked = check_html(source)
    except HtmlError as error:
        raise TextRefused("html", error=error) from None
    if not checked.visible:
        raise TextRefused("empty")
    limit = CAPTION_LIMIT if caption else TEXT_LIMIT
    if checked.length > limit:
        raise TextRefused("too_long", length=checked.length, limit=limit)
    return checked


def check_file(kind: str, size: int | None) -> AttachmentKind:
    """A photo up to 5 MB or a document up to 20 MB (by the size Telegram reports); nothing else."""
    if kind == AttachmentKind.photo:
        if size is not None and size > PHOTO_LIMIT:
            raise BroadcastRefused("photo_size")
        return AttachmentKind.photo
    if kind == AttachmentKind.document:
        if size is not None and size > DOCUMENT_LIMIT:
            raise BroadcastRefused("document_size")
        return AttachmentKind.document
    raise BroadcastRefused("file_kind")


def check_captions(texts: dict[str, str]) -> None:
    """With a file every text is a caption: each must fit CAPTION_LIMIT."""
    for language, source in texts.items():
        try:
            check_text(source, caption=True)
        except TextRefused as error:
            if error.detail != "too_long":
                raise
            raise BroadcastRefused("caption", language=language) from None


def check_label(label: str) -> str:
    label = label.strip()
    if not label or len(label) > LABEL_CHARS:
        raise BroadcastRefused("label")
    return label


def check_url(url: str) -> str:
    """An http(s) URL with a host (letters, digits, dots and hyphens: Cyrillic domains too), at most URL_CHARS
    long, with no spaces."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _port = parts.port  # an invalid port raises
    except ValueError:
        raise BroadcastRefused("url") from None
    if (
        len(url) > URL_CHARS
        or parts.scheme not in ("http", "https")
        or not host
        or not all(c.isalnum() or c in ".-" for c in host)
        or host.startswith(".")
        or ".." in host
        or any(c.isspace() for c in url)
    ):
        raise BroadcastRefused("url")
    return url


class BroadcastService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
        directory: DirectoryService,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings
        self.directory = directory
        self.on_commit = on_commit

    # --- who may -----------------------------------------------------------------------------------------

    async def check_author(self, actor: Actor, action: str = "broadcast_compose", **details: object) -> None:
        if not actor.has(*AUTHORS):
            raise await refuse(self.sessionmaker, actor, action, self.clock.now(), **details)

    # --- the audience ------------------------------------------------------------------------------------

    def check_audience(self, audience: BroadcastAudience) -> BroadcastAudience:
        """Every district, block and language must exist (a forged id is Gone)."""
        if any(self.directory.district(d) is None for d in audience.districts):
            raise Gone("district")
        if audience.block_id is not None and self.directory.block(audience.block_id) is None:
            raise Gone("block")
        if audience.language is not None and audience.language not in LOCALES:
            raise Gone("language")
        return audience

    async def _count(self, session: AsyncSession, audience: BroadcastAudience) -> int:
        query = recipients_query(audience, self.settings.consent.version).subquery()
        return int((await session.execute(select(func.count()).select_from(query))).scalar_one())

    async def audience_size(self, actor: Actor, audience: BroadcastAudience) -> int:
        await self.check_author(actor)
        self.check_audience(audience)
        async with self.sessionmaker() as session:
            return await self._count(session, audience)

    # --- quiet hours -------------------------------------------------------------------------------------

    def allowed(self, moment: datetime) -> datetime:
        """`moment`, or the end of the quiet hours it falls in."""
        config = self.settings.scheduler
        return next_allowed_time(moment, quiet_start=config.quiet_start, quiet_end=config.quiet_end, tz=self.settings.tz)

    # --- storing -----------------------------------------------------------------------------------------

    def validate(self, draft: BroadcastDraft) -> None:
        if DEFAULT_LANGUAGE not in draft.texts:
            raise TextRefused("empty")
        if any(language not in LOCALES for language in draft.texts):
            raise Gone("language")
        with_file = draft.media_kind is not None
        if with_file and not draft.media_file_id:
            raise BroadcastRefused("file_kind")
        for source in draft.texts.values():
            check_text(source)
        if with_file:
            check_file(str(draft.media_kind), None)
            check_captions(draft.texts)
        if (draft.button_text is None) != (draft.button_url is None):
            raise BroadcastRefused("url" if draft.button_url is None else "label")
        if draft.button_text is not None and draft.button_url is not None:
            check_label(draft.button_text)
            check_url(draft.button_url)
        self.check_audience(draft.audience)

    async def create(self, actor: Actor, draft: BroadcastDraft, start_at: datetime | None = None) -> Stored:
        """Store the broadcast (status scheduled) to start at `start_at`, or now when None.

        A non-urgent broadcast inside the quiet hours is refused: a chosen time with "quiet_hours", «now» with
        "quiet_now"; `allowed_at` of the error is when the quiet hours end. An audience of nobody is refused
        ("no_recipients"). A draft stored before is returned as it is (`existed`)."""
        now = self.clock.now()
        await self.check_author(actor, "broadcast_create")
        async with self.sessionmaker() as session:
            existing = await self._by_key(session, draft.draft_key)
            if existing is not None:
                return existing
        self.validate(draft)
        if start_at is not None and start_at <= now:
            raise BroadcastRefused("past")
        moment = start_at or now
        if not draft.urgent and self.allowed(moment) != moment:
            raise BroadcastRefused("quiet_hours" if start_at else "quiet_now", allowed_at=self.allowed(moment))
        async with self.sessionmaker() as session:
            planned = await self._count(session, draft.audience)
            if planned == 0:
                raise BroadcastRefused("no_recipients")
            row = Broadcast(
                draft_key=draft.draft_key,
                created_by=actor.id,
                created_at=now,
                status=BroadcastStatus.scheduled,
                urgent=draft.urgent,
                texts={language: text.strip() for language, text in draft.texts.items()},
                media_kind=str(draft.media_kind) if draft.media_kind else None,
                media_file_id=draft.media_file_id if draft.media_kind else None,
                button_text=draft.button_text.strip() if draft.button_text else None,
                button_url=draft.button_url.strip() if draft.button_url else None,
                audience=draft.audience.to_json(),
                planned=planned,
                start_at=moment,
            )
            session.add(row)
            try:
                await session.flush()
                audit(session, actor.id, "broadcast_create", now, broadcast_id=row.id, planned=planned)
                await session.commit()
            except IntegrityError:  # the same draft confirmed at the same moment elsewhere: that one stands
                await session.rollback()
                existing = await self._by_key(session, draft.draft_key)
                if existing is None:
                    raise
                return existing
            return Stored(row.id, BroadcastStatus.scheduled, moment, planned, existed=False)

    @staticmethod
    async def _by_key(session: AsyncSession, draft_key: str) -> Stored | None:
        row = (await session.execute(select(Broadcast).where(Broadcast.draft_key == draft_key))).scalar_one_or_none()
        if row is None:
            return None
        return Stored(
            row.id, BroadcastStatus(row.status), row.start_at, row.planned, existed=True,
            has_progress=row.progress_message_id is not None,
        )

    async def attach_progress(self, actor: Actor, broadcast_id: int, chat_id: int, message_id: int) -> None:
        """The author's progress message, which the delivery side edits as the broadcast goes."""
        await self.check_author(actor, "broadcast_progress", broadcast_id=broadcast_id)
        async with self.sessionmaker() as session:
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id)
                .values(progress_chat_id=chat_id, progress_message_id=message_id)
            )
            await session.commit()

    # --- controls ----------------------------------------------------------------------------------------

    async def _status(self, session: AsyncSession, broadcast_id: int) -> BroadcastStatus:
        found = (await session.execute(select(Broadcast.status).where(Broadcast.id == broadcast_id))).scalar()
        if found is None:
            raise Gone("broadcast")
        return BroadcastStatus(found)

    async def _move(
        self, actor: Actor, broadcast_id: int, action: str, source: BroadcastStatus, target: BroadcastStatus
    ) -> BroadcastStatus:
        await self.check_author(actor, f"broadcast_{action}", broadcast_id=broadcast_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            status = await self._status(session, broadcast_id)
            moved = await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status == source)
                .values(status=target)
                .execution_options(synchronize_session=False)
            )
            if not moved.rowcount:  # type: ignore[attr-defined]
                raise StaleControl(action, await self._status(session, broadcast_id))
            audit(session, actor.id, f"broadcast_{action}", now, broadcast_id=broadcast_id, was=str(status))
            await session.commit()
        if target == BroadcastStatus.running:
            self.on_commit()  # the sender takes its items again
        return target

    async def pause(self, actor: Actor, broadcast_id: int) -> BroadcastStatus:
        return await self._move(actor, broadcast_id, "pause", BroadcastStatus.running, BroadcastStatus.paused)

    async def resume(self, actor: Actor, broadcast_id: int) -> BroadcastStatus:
        return await self._move(actor, broadcast_id, "resume", BroadcastStatus.paused, BroadcastStatus.running)

    async def cancel(self, actor: Actor, broadcast_id: int) -> BroadcastStatus:
        """Scheduled: cancelled, nothing sent. Running or paused: its pending items are cancelled and the report is
        queued (`finish`). Ended already: StaleControl."""
        await self.check_author(actor, "broadcast_cancel", broadcast_id=broadcast_id)
        now = self.clock.now()
        async with self.sessionmaker() as session:
            was = await self._status(session, broadcast_id)
            if not await finish(session, broadcast_id, BroadcastStatus.cancelled, now):
                raise StaleControl("cancel", await self._status(session, broadcast_id))
            audit(session, actor.id, "broadcast_cancel", now, broadcast_id=broadcast_id, was=str(was))
            await session.commit()
        self.on_commit()
        return was

    # --- the read side -----------------------------------------------------------------------------------

    @staticmethod
    def _summary(row: Broadcast) -> BroadcastSummary:
        return BroadcastSummary(
            id=row.id,
            status=BroadcastStatus(row.status),
            urgent=bool(row.urgent),
            text=str((row.texts or {}).get(DEFAULT_LANGUAGE, "")),
            created_at=row.created_at,
            start_at=row.start_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    async def broadcasts(self, actor: Actor, limit: int = LIST_LIMIT) -> list[BroadcastSummary]:
        """Newest first."""
        await self.check_author(actor, "broadcast_list")
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit))
            ).scalars().all()
        return [self._summary(row) for row in rows]

    async def card(self, actor: Actor, broadcast_id: int) -> BroadcastCard:
        await self.check_author(actor, "broadcast_card", broadcast_id=broadcast_id)
        async with self.sessionmaker() as session:
            row = (await session.execute(select(Broadcast).where(Broadcast.id == broadcast_id))).scalar_one_or_none()
            if row is None:
                raise Gone("broadcast")
            counts = await item_counts(session, broadcast_id)
        return BroadcastCard(
            summary=self._summary(row),
            created_by=row.created_by,
            texts=dict(row.texts or {}),
            audience=BroadcastAudience.from_json(row.audience),
            media_kind=row.media_kind,
            button_text=row.button_text,
            button_url=row.button_url,
            planned=row.planned,
            recipients=row.recipients,
            flood_waits=row.flood_waits,
            counts=counts,
        )

    async def status(self, actor: Actor, broadcast_id: int) -> BroadcastStatus:
        await self.check_author(actor, "broadcast_card", broadcast_id=broadcast_id)
        async with self.sessionmaker() as session:
            return await self._status(session, broadcast_id)
