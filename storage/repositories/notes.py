"""What people write on an appeal after filing (appeal_messages) and the files that come with it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AppealMessage, Attachment


class FileRef(Protocol):
    """A Telegram file to attach (bot.services.appeals.DraftAttachment is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def file_id(self) -> str: ...
    @property
    def file_unique_id(self) -> str: ...


class NoteRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, appeal_id: int, kind: str, author_id: int, text: str, now: datetime, status: str | None = None
    ) -> AppealMessage:
        """A new note, flushed so its id is known."""
        note = AppealMessage(
            appeal_id=appeal_id, kind=kind, author_id=author_id, text=text, status=status, created_at=now
        )
        self.session.add(note)
        await self.session.flush()
        return note

    async def get(self, note_id: int) -> AppealMessage | None:
        return await self.session.get(AppealMessage, note_id)

    async def of_appeal(self, appeal_id: int) -> Sequence[AppealMessage]:
        query = select(AppealMessage).where(AppealMessage.appeal_id == appeal_id).order_by(AppealMessage.id)
        return (await self.session.execute(query)).scalars().all()

    async def latest(self, appeal_id: int, kind: str, status: str) -> AppealMessage | None:
        query = (
            select(AppealMessage)
            .where(AppealMessage.appeal_id == appeal_id, AppealMessage.kind == kind, AppealMessage.status == status)
            .order_by(AppealMessage.id.desc())
        )
        return (await self.session.execute(query)).scalars().first()

    def attach(
        self, appeal_id: int, note_id: int, files: Iterable[FileRef], source: str, now: datetime
    ) -> None:
        for position, f in enumerate(files):
            self.session.add(
                Attachment(
                    appeal_id=appeal_id,
                    message_id=note_id,
                    kind=f.kind,
                    file_id=f.file_id,
                    file_unique_id=f.file_unique_id,
                    position=position,
                    source=source,
                    created_at=now,
                )
            )

    async def latest_of_kind(self, appeal_id: int, kind: str) -> AppealMessage | None:
        query = (
            select(AppealMessage)
            .where(AppealMessage.appeal_id == appeal_id, AppealMessage.kind == kind)
            .order_by(AppealMessage.id.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def files_of_note(self, note_id: int) -> Sequence[Attachment]:
        query = select(Attachment).where(Attachment.message_id == note_id).order_by(Attachment.position)
        return (await self.session.execute(query)).scalars().all()

    async def files_of_appeal(self, appeal_id: int) -> Sequence[Attachment]:
        """Every file of the appeal (filing's and the notes'), in the order they were added."""
        query = select(Attachment).where(Attachment.appeal_id == appeal_id).order_by(Attachment.id)
        return (await self.session.execute(query)).scalars().all()
