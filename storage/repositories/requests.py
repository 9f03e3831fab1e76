"""Agencies' requests the coordinator decides: redirects and extensions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import RequestState
from storage.models import Appeal, AppealRequest


class RequestRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(
        self,
        appeal_id: int,
        kind: str,
        requested_by: int,
        reason: str,
        now: datetime,
        agency_id: int | None = None,
        days: int | None = None,
    ) -> AppealRequest:
        request = AppealRequest(
            appeal_id=appeal_id,
            kind=kind,
            requested_by=requested_by,
            agency_id=agency_id,
            days=days,
            reason=reason,
            status=RequestState.pending,
            created_at=now,
        )
        self.session.add(request)
        return request

    async def get(self, request_id: int) -> AppealRequest | None:
        return await self.session.get(AppealRequest, request_id)

    async def has_pending(self, appeal_id: int, kind: str) -> bool:
        query = select(AppealRequest.id).where(
            AppealRequest.appeal_id == appeal_id,
            AppealRequest.kind == kind,
            AppealRequest.status == RequestState.pending,
        )
        return (await self.session.execute(query)).first() is not None

    async def pending(self) -> list[tuple[AppealRequest, str]]:
        """Every pending request with its appeal's number, oldest first."""
        query = (
            select(AppealRequest, Appeal.number)
            .join(Appeal, Appeal.id == AppealRequest.appeal_id)
            .where(AppealRequest.status == RequestState.pending)
            .order_by(AppealRequest.id)
        )
        return [(request, number) for request, number in (await self.session.execute(query)).all()]

    async def pending_of(self, appeal_id: int) -> Sequence[AppealRequest]:
        query = select(AppealRequest).where(
            AppealRequest.appeal_id == appeal_id, AppealRequest.status == RequestState.pending
        )
        return (await self.session.execute(query)).scalars().all()

    async def count_pending(self) -> int:
        query = select(func.count()).select_from(AppealRequest).where(AppealRequest.status == RequestState.pending)
        return int((await self.session.execute(query)).scalar_one())
