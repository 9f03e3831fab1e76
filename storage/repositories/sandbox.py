"""What the sandbox's training exercises look for (bot/sandbox/scenarios.py): one query, each exercise a flag."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain import AppealStatus, AttachmentKind, AttachmentSource
from storage.models import Appeal, Attachment, StatusHistory


@dataclass(frozen=True)
class TrainingProgress:
    filed_with_photos: bool  # a resident filed an appeal with at least one photo
    routed_and_answered: bool  # an appeal went from the ЦУР to an agency and its answer reached the resident
    clarification_asked: bool  # someone asked the resident for a clarification
    overdue_handled: bool  # an answer approved after the appeal's deadline


async def training_progress(session: AsyncSession) -> TrainingProgress:
    photos = exists().where(
        Attachment.kind == AttachmentKind.photo.value, Attachment.source == AttachmentSource.resident.value
    )
    answered, routed = aliased(StatusHistory), aliased(StatusHistory)
    routed_and_answered = exists().where(
        answered.to_status == AppealStatus.answered.value,
        exists().where(routed.appeal_id == answered.appeal_id, routed.to_status == AppealStatus.assigned.value),
    )
    clarification = exists().where(StatusHistory.to_status == AppealStatus.clarification.value)
    late = exists().where(Appeal.answered_on_time.is_(False))
    row = (
        await session.execute(
            select(photos, routed_and_answered, clarification, late)
        )
    ).one()
    return TrainingProgress(*(bool(value) for value in row))
