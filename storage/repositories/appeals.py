from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Appeal, Attachment, Category, Counter, StatusHistory


class AppealRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_draft(self, draft_id: str) -> Appeal | None:
        query = select(Appeal).where(Appeal.draft_id == draft_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def full(self, appeal_id: int) -> Appeal | None:
        query = (
            select(Appeal)
            .where(Appeal.id == appeal_id)
            .options(
                selectinload(Appeal.attachments),
                selectinload(Appeal.category),
                selectinload(Appeal.district),
            )
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page_for_user(self, user_id: int, offset: int, limit: int) -> Sequence[Appeal]:
        query = (
            select(Appeal)
            .where(Appeal.user_id == user_id)
            .order_by(Appeal.created_at.desc(), Appeal.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def count_for_user(self, user_id: int) -> int:
        query = select(func.count()).select_from(Appeal).where(Appeal.user_id == user_id)
        return int((await self.session.execute(query)).scalar_one())

    async def insert(self, row: dict[str, Any]) -> int:
        """Insert one appeal and return its id."""
        table = Appeal.__table__
        return int((await self.session.execute(insert(table).values(row).returning(table.c.id))).scalar_one())

    async def insert_attachments(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(Attachment.__table__), rows)

    async def insert_history(self, rows: list[dict[str, Any]]) -> None:
        """Status-history rows: appeal_id, from_status, to_status, actor_id, at, event, visibility, params."""
        if rows:
            await self.session.execute(insert(StatusHistory.__table__), rows)

    async def next_counter(self, name: str, step: int = 1) -> int:
        """Add `step` to a counter atomically and return its new value: `step` numbers, up to it, are yours
        (UPDATE … RETURNING works on SQLite ≥3.35 and PostgreSQL)."""
        query = update(Counter).where(Counter.name == name).values(value=Counter.value + step).returning(Counter.value)
        value = (await self.session.execute(query)).scalar_one_or_none()
        if value is not None:
            return int(value)
        try:
            # A savepoint: when another transaction created the row first, retry the UPDATE.
            async with self.session.begin_nested():
                self.session.add(Counter(name=name, value=step))
            return step
        except IntegrityError:
            return int((await self.session.execute(query)).scalar_one())

    # --- the workflow after filing ---------------------------------------------------------------------

    async def get(self, appeal_id: int) -> Appeal | None:
        return await self.session.get(Appeal, appeal_id)

    async def lock(self, appeal_id: int) -> Appeal | None:
        """The appeal to change, locked for the transaction where the database can (FOR UPDATE)."""
        query = select(Appeal).where(Appeal.id == appeal_id).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def by_number(self, number: str) -> Appeal | None:
        return (await self.session.execute(select(Appeal).where(Appeal.number == number))).scalar_one_or_none()

    def add_history(
        self,
        appeal: Appeal,
        to_status: str,
        actor_id: int | None,
        at: datetime,
        *,
        event: str,
        visibility: str,
        params: dict[str, Any],
        comment: str | None = None,
    ) -> None:
        """One status-history row (from the appeal's current status); from == to records an event."""
        self.session.add(
            StatusHistory(
                appeal_id=appeal.id,
                from_status=appeal.status,
                to_status=to_status,
                actor_id=actor_id,
                comment=comment,
                at=at,
                event=event,
                visibility=visibility,
                params=params,
            )
        )

    async def history(self, appeal_id: int, visibilities: Iterable[str]) -> Sequence[StatusHistory]:
        """The appeal's status history as the given audiences may read it, oldest first."""
        query = (
            select(StatusHistory)
            .where(StatusHistory.appeal_id == appeal_id, StatusHistory.visibility.in_(list(visibilities)))
            .order_by(StatusHistory.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def last_move_at(self, appeal_id: int, status: str) -> datetime | None:
        """When the appeal last moved to `status`."""
        query = select(func.max(StatusHistory.at)).where(
            StatusHistory.appeal_id == appeal_id, StatusHistory.to_status == status
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def follower_ids(self, appeal_id: int) -> list[int]:
        """The residents whose duplicates follow this appeal (an anonymized duplicate has nobody behind it)."""
        query = select(Appeal.user_id).where(Appeal.duplicate_of_id == appeal_id, Appeal.anonymized_at.is_(None))
        return list((await self.session.execute(query)).scalars())

    async def oldest_in(self, statuses: Iterable[str], limit: int) -> Sequence[Appeal]:
        query = (
            select(Appeal)
            .where(Appeal.status.in_(list(statuses)))
            .order_by(Appeal.created_at, Appeal.id)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def reopened_first(self, statuses: Iterable[str], reopened: str, limit: int) -> Sequence[Appeal]:
        """Appeals in `statuses`, those in `reopened` first (the longest waiting since it was sent back first),
        then the rest oldest first."""
        first = case((Appeal.status == reopened, 0), else_=1)
        since = case((Appeal.status == reopened, Appeal.updated_at), else_=Appeal.created_at)
        query = (
            select(Appeal)
            .where(Appeal.status.in_(list(statuses)))
            .order_by(first, since, Appeal.id)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def count_in(self, status: str) -> int:
        query = select(func.count()).select_from(Appeal).where(Appeal.status == status)
        return int((await self.session.execute(query)).scalar_one())

    async def in_status_by_update(self, status: str) -> Sequence[Appeal]:
        query = select(Appeal).where(Appeal.status == status).order_by(Appeal.updated_at)
        return (await self.session.execute(query)).scalars().all()

    async def open_for_agency(self, agency_id: int, statuses: Iterable[str]) -> Sequence[Appeal]:
        """The agency's appeals by deadline (none last), so the overdue come first."""
        query = (
            select(Appeal)
            .where(Appeal.agency_id == agency_id, Appeal.status.in_(list(statuses)))
            .order_by(Appeal.deadline_at.is_(None), Appeal.deadline_at, Appeal.id)
        )
        return (await self.session.execute(query)).scalars().all()

    def _of_block(self, block_id: int, status: str | None) -> Any:
        """The appeals whose category belongs to the thematic block (and have `status`, when given)."""
        categories = select(Category.id).where(Category.block_id == block_id)
        where = [Appeal.category_id.in_(categories)]
        if status is not None:
            where.append(Appeal.status == status)
        return and_(*where)

    async def page_of_block(self, block_id: int, status: str | None, offset: int, limit: int) -> Sequence[Appeal]:
        """A page of the block's appeals, newest first (read backwards along the index on created_at)."""
        query = (
            select(Appeal)
            .where(self._of_block(block_id, status))
            .order_by(Appeal.created_at.desc(), Appeal.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def count_of_block(self, block_id: int, status: str | None) -> int:
        query = select(func.count()).select_from(Appeal).where(self._of_block(block_id, status))
        return int((await self.session.execute(query)).scalar_one())

    async def others_of_resident(self, user_id: int, appeal_id: int, limit: int) -> list[tuple[str, str]]:
        """(number, status) of the resident's other appeals, newest first."""
        query = (
            select(Appeal.number, Appeal.status)
            .where(Appeal.user_id == user_id, Appeal.id != appeal_id)
            .order_by(Appeal.id.desc())
            .limit(limit)
        )
        return [(number, status) for number, status in (await self.session.execute(query)).all()]

    async def ids_of_user_in(self, user_id: int, status: str) -> list[tuple[int, str]]:
        """(id, number) of the user's appeals in a status."""
        query = (
            select(Appeal.id, Appeal.number)
            .where(Appeal.user_id == user_id, Appeal.status == status)
            .order_by(Appeal.id)
        )
        return [(i, n) for i, n in (await self.session.execute(query)).all()]

    async def open_of_resident(
        self, user_id: int, appeal_id: int, statuses: Iterable[str], limit: int
    ) -> Sequence[Appeal]:
        """The resident's other appeals in `statuses`, newest first."""
        query = (
            select(Appeal)
            .where(Appeal.user_id == user_id, Appeal.id != appeal_id, Appeal.status.in_(list(statuses)))
            .order_by(Appeal.id.desc())
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def open_near(
        self,
        appeal: Appeal,
        statuses: Iterable[str],
        box: tuple[float, float, float, float] | None,
        limit: int,
    ) -> Sequence[Appeal]:
        """Other appeals of the same category in `statuses`, from the same district or (with `box`: south, north,
        west, east) placed inside the box; newest first. The exact distance is the caller's (portable SQL)."""
        where = Appeal.district_id == appeal.district_id
        if box is not None:
            south, north, west, east = box
            where = or_(where, and_(Appeal.latitude.between(south, north), Appeal.longitude.between(west, east)))
        query = (
            select(Appeal)
            .where(
                Appeal.category_id == appeal.category_id,
                Appeal.id != appeal.id,
                Appeal.status.in_(list(statuses)),
                where,
            )
            .order_by(Appeal.id.desc())
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

