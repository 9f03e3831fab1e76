"""The routing matrix: category × district → agency."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Agency, Category, Route


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

    async def agencies_of_block(self, block_id: int, district_id: int) -> list[int]:
        """The agencies the matrix names for a block's categories in a district, the most named first."""
        query = (
            select(Route.agency_id)
            .join(Category, Category.id == Route.category_id)
            .where(Category.block_id == block_id, Route.district_id == district_id)
            .group_by(Route.agency_id)
            .order_by(func.count().desc(), Route.agency_id)
        )
        return list((await self.session.execute(query)).scalars())

    async def agencies_of_district(self, district_id: int) -> list[int]:
        """The district's own bodies (its administration)."""
        query = (
            select(Agency.id).where(Agency.district_id == district_id, Agency.is_active.is_(True)).order_by(Agency.id)
        )
        return list((await self.session.execute(query)).scalars())

