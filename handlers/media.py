"""Media shared by several roles: what a message carries, and sending a set of files back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from aiogram.types import InputMediaDocument, InputMediaPhoto, InputMediaVideo, Message

from bot.services.appeals import DraftAttachment


class Media(NamedTuple):
    kind: str
    file_id: str
    file_unique_id: str


def extract_media(message: Message) -> Media | None:
    """A photo (largest size), a video or a document; an animation is not a document here."""
    if message.photo:
        size = message.photo[-1]
        return Media("photo", size.file_id, size.file_unique_id)
    if message.video:
        return Media("video", message.video.file_id, message.video.file_unique_id)
    if message.document and not message.animation:
        return Media("document", message.document.file_id, message.document.file_unique_id)
    return None


async def send_files(message: Message, files: Sequence[DraftAttachment]) -> None:
    """Telegram groups photos with videos, and documents only with documents; up to 10 per group."""
    visual = [
        InputMediaPhoto(media=f.file_id) if f.kind == "photo" else InputMediaVideo(media=f.file_id)
        for f in files
        if f.kind in ("photo", "video")
    ]
    documents = [InputMediaDocument(media=f.file_id) for f in files if f.kind == "document"]
    for group in (visual, documents):
        for start in range(0, len(group), 10):
            chunk = group[start : start + 10]
            if len(chunk) > 1:
                await message.answer_media_group(chunk)  # type: ignore[arg-type]
                continue
            item = chunk[0]
            if isinstance(item, InputMediaPhoto):
                await message.answer_photo(item.media)
            elif isinstance(item, InputMediaVideo):
                await message.answer_video(item.media)
            else:
                await message.answer_document(item.media)
