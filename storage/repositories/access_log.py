"""The access log (storage.models.AccessEntry): rows added in the caller's transaction, listed by appeal or by the
resident whose data was shown, newest first (ix_access_log_appeal, ix_access_log_subject)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AccessEntry, Appeal, User, UserRole

# (at, actor's id, actor's stored name, actor's Telegram id, kind, the appeal's number)
Row = tuple[datetime, int, str | None, int, str, str | None]


class AccessLogRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(
        self,
        actor_id: int,
        kinds: Iterable[str],
        appeal_id: int | None,
        subject_user_id: int | None,
        now: datetime,
    ) -> None:
        for kind in kinds:
            self.session.add(
                AccessEntry(actor_id=actor_id, kind=kind, appeal_id=appeal_id, subject_user_id=subject_user_id, at=now)
            )

    @staticmethod
    def _where(appeal_id: int | None, subject_user_id: int | None, upto: int | None) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if appeal_id is not None:
            where.append(AccessEntry.appeal_id == appeal_id)
        if subject_user_id is not None:
            where.append(AccessEntry.subject_user_id == subject_user_id)
        if upto is not None:
            where.append(AccessEntry.id <= upto)
        return where

    async def last_id(self, appeal_id: int | None, subject_user_id: int | None) -> int:
        """The newest row's id of the listing (0 when there is none): a listing paged up to it stays put while
        new rows arrive."""
        query = select(func.max(AccessEntry.id)).where(*self._where(appeal_id, subject_user_id, None))
        return int((await self.session.execute(query)).scalar_one() or 0)

    async def count(self, appeal_id: int | None, subject_user_id: int | None, upto: int | None) -> int:
        query = select(func.count()).select_from(AccessEntry).where(*self._where(appeal_id, subject_user_id, upto))
        return int((await self.session.execute(query)).scalar_one())

    async def page(
        self, appeal_id: int | None, subject_user_id: int | None, upto: int | None, offset: int, limit: int | None
    ) -> list[Row]:
        """Newest first (ties by id): when, who (stored name, Telegram id), what, of which appeal."""
        query = (
            select(AccessEntry.at, AccessEntry.actor_id, User.full_name, User.tg_id, AccessEntry.kind, Appeal.number)
            .join(User, User.id == AccessEntry.actor_id)
            .outerjoin(Appeal, Appeal.id == AccessEntry.appeal_id)
            .where(*self._where(appeal_id, subject_user_id, upto))
            .order_by(AccessEntry.at.desc(), AccessEntry.id.desc())
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        return [tuple(r) for r in (await self.session.execute(query)).all()]  # type: ignore[misc]

    async def roles_of(self, user_ids: Iterable[int]) -> dict[int, list[str]]:
        """The roles each person holds now, in the order granted."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        query = select(UserRole.user_id, UserRole.role).where(UserRole.user_id.in_(ids)).order_by(UserRole.id)
        found: dict[int, list[str]] = {}
        for user_id, role in (await self.session.execute(query)).all():
            found.setdefault(user_id, []).append(role)
        return found
