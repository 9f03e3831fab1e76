"""The routing matrix: category × district → agency."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Route


class RouteRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def agency_for(self, category_id: int, district_id: int) -> int | None:
        query = select(Route.agency_id).where(Route.category_id == category_id, Route.district_id == district_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def of_category(self, category_id: int) -> dict[int, int]:
        """district id -> agency id."""
        query = select(Route.district_id, Route.agency_id).where(Route.category_id == category_id)
        return {d: a for d, a in (await self.session.execute(query)).all()}

    async def put(self, category_id: int, district_id: int, agency_id: int, edited_by: int) -> int | None:
        """Set one cell; returns the agency it had (None when it was empty)."""
        query = select(Route).where(Route.category_id == category_id, Route.district_id == district_id)
        route = (await self.session.execute(query)).scalar_one_or_none()
        if route is None:
            self.session.add(
                Route(category_id=category_id, district_id=district_id, agency_id=agency_id, edited_by=edited_by)
            )
            return None
        old = route.agency_id
        route.agency_id = agency_id
        route.edited_by = edited_by
        return old
