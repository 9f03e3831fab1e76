"""The routing matrix (category × district → agency), as admins read and edit it."""

from __future__ import annotations

from bot.domain import COORDINATING_ROLES, Role
from bot.services.access import audit
from bot.services.errors import InvalidInput
from bot.services.lifecycle import UseCase
from bot.services.users import Actor
from storage.repositories.routes import RouteRepo


class RoutingService(UseCase):
    async def routes(self, actor: Actor, category_id: int) -> dict[int, int]:
        """district id -> agency id for one category."""
        if not actor.has(*COORDINATING_ROLES):
            raise await self._deny(actor, "routes")
        async with self.sessionmaker() as session:
            return await RouteRepo(session).of_category(category_id)

    async def set_route(self, actor: Actor, category_id: int, district_id: int, agency_id: int) -> None:
        if not actor.has(Role.admin):
            raise await self._deny(actor, "set_route")
        if None in (
            self.directory.category(category_id),
            self.directory.district(district_id),
            self.directory.agency(agency_id),
        ):
            raise InvalidInput("route")
        now = self.clock.now()
        async with self.sessionmaker() as session:
            old = await RouteRepo(session).put(category_id, district_id, agency_id, actor.id)
            audit(
                session,
                actor.id,
                "route_changed",
                now,
                category_id=category_id,
                district_id=district_id,
                old=old,
                new=agency_id,
            )
            await session.commit()
