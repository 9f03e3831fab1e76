"""The routing matrix (category × district → agency), as admins read and edit it."""

from __future__ import annotations

from bot.domain import COORDINATING_ROLES, Role
from bot.services.access import audit
from bot.services.errors import InvalidInput, NotFound
from bot.services.lifecycle import UseCase
from bot.services.rules import in_agency, is_coordinator
from bot.services.users import Actor
from storage.repositories.appeals import AppealRepo
from storage.repositories.routes import RouteRepo


class RoutingService(UseCase):
    async def likely_agencies(self, actor: Actor, appeal_id: int) -> list[int]:
        """The agencies a picker offers first for an appeal: the matrix's suggestion, then the agencies the matrix
        names for the category's block in the appeal's district, then the district's own bodies. For the
        coordinators and the agency that holds the appeal (who may ask for a redirect)."""
        async with self.sessionmaker() as session:
            appeal = await AppealRepo(session).get(appeal_id)
            if appeal is None:
                raise NotFound()
            if not (is_coordinator(actor) or in_agency(actor, appeal.agency_id)):
                raise await self._deny(actor, "likely_agencies", appeal_id, session)
            routes = RouteRepo(session)
            category = self.directory.category(appeal.category_id)
            found = [await routes.agency_for(appeal.category_id, appeal.district_id)]
            if category is not None and category.parent_id is not None:
                found += await routes.agencies_of_block(category.parent_id, appeal.district_id)
            found += await routes.agencies_of_district(appeal.district_id)
            return [a for a in dict.fromkeys(found) if a is not None and self.directory.agency(a) is not None]

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
