"""Residents choose what news they hear (issue 13): thematic blocks, districts, or no broadcasts at all (/subscriptions),
and the one-tap «Unsubscribe from such news» under every broadcast item, with its «Undo».

The service writes the rows `storage.repositories.broadcasts.recipients_query` reads (news_prefs, news_blocks_off,
news_districts); with no row a resident has the defaults: every block on, the district of their latest appeal
followed. Messages about their own appeals, ratings and polls do not depend on any of it.

Broadcasts go to residents only (the recipients query leaves out anyone with a staff role), so staff are refused
here rather than offered choices that would change nothing. Every change is committed before it is reported; a
change by two instances at once of the same person's first row is retried once (the second attempt sees the row)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain import BroadcastAudience
from bot.services.directory import DirectoryService
from bot.services.errors import ConsentRequired, Gone, InvalidInput
from bot.services.users import Actor
from storage.repositories.news import NewsRepo

T = TypeVar("T")
# The largest id an INTEGER column holds (PostgreSQL refuses a larger parameter outright): a press naming more is
# forged, and is refused before any query.
MAX_ID = 2**31 - 1


class NewsRefused(InvalidInput):
    """`detail`: staff (broadcasts never reach staff accounts), unknown_broadcast (a forged or unknown id under
    «Unsubscribe», or a broadcast that was not sent to this person)."""

    code = "news_refused"


@dataclass(frozen=True, slots=True)
class NewsChoices:
    """What a resident gets, as the /subscriptions screen shows it."""

    stopped: bool
    blocks_off: frozenset[int]
    # The districts followed: the chosen ones, or else the latest appeal's (none: region-wide news only).
    districts: frozenset[int]
    districts_chosen: bool
    appeal_district: int | None

    def block_on(self, block_id: int) -> bool:
        return block_id not in self.blocks_off


@dataclass(frozen=True, slots=True)
class NewsChange:
    """What «Unsubscribe from such news» (or its «Undo») did: the block turned off (on), or with no block all news
    stopped (resumed); `changed` False when it already was so."""

    block_id: int | None
    changed: bool


class SubscriptionService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, directory: DirectoryService) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.directory = directory

    # --- the /subscriptions screen ------------------------------------------------------------------------------

    async def choices(self, actor: Actor) -> NewsChoices:
        self.check(actor)
        async with self.sessionmaker() as session:
            return await self.read(NewsRepo(session), actor.id)

    async def set_block(self, actor: Actor, block_id: int, on: bool) -> NewsChoices:
        self.check(actor)
        if self.directory.block(block_id) is None:
            raise Gone("block")

        async def change(repo: NewsRepo) -> None:
            await repo.touch(actor.id, self.clock.now())
            await repo.set_block(actor.id, block_id, on)

        return await self.write(actor, change)

    async def set_district(self, actor: Actor, district_id: int, on: bool) -> NewsChoices:
        """The first district chosen turns the defaults into a choice: the latest appeal's district (preselected on
        the screen) stays followed unless this press turns it off."""
        self.check(actor)
        if self.directory.district(district_id) is None:
            raise Gone("district")

        async def change(repo: NewsRepo) -> None:
            prefs = await repo.touch(actor.id, self.clock.now())
            if not prefs.districts_chosen:
                preselected = await repo.latest_appeal_district(actor.id)
                if preselected is not None:
                    await repo.add_district(actor.id, preselected)
                prefs.districts_chosen = True
            if on:
                await repo.add_district(actor.id, district_id)
            else:
                await repo.remove_district(actor.id, district_id)

        return await self.write(actor, change)

    async def set_stopped(self, actor: Actor, stopped: bool) -> NewsChoices:
        self.check(actor)

        async def change(repo: NewsRepo) -> None:
            prefs = await repo.touch(actor.id, self.clock.now())
            prefs.stopped = stopped

        return await self.write(actor, change)

    # --- under a broadcast item ---------------------------------------------------------------------------------

    async def unsubscribe(self, actor: Actor, broadcast_id: int) -> NewsChange:
        """«Unsubscribe from such news»: the broadcast's thematic block off, or (a broadcast with no block) all news
        stopped. Only a broadcast that was sent to this person counts; any other id changes nothing."""
        return await self.apply(actor, broadcast_id, on=False)

    async def undo(self, actor: Actor, broadcast_id: int) -> NewsChange:
        """«Undo» under the answer to an unsubscribe: what it turned off is on again."""
        return await self.apply(actor, broadcast_id, on=True)

    async def apply(self, actor: Actor, broadcast_id: int, on: bool) -> NewsChange:
        self.check(actor)
        if not 0 < broadcast_id <= MAX_ID:
            raise NewsRefused("unknown_broadcast")

        async def change(repo: NewsRepo) -> NewsChange:
            audience = await repo.audience_sent_to(actor.id, broadcast_id)
            if audience is None:
                raise NewsRefused("unknown_broadcast")
            block_id = BroadcastAudience.from_json(audience).block_id
            if block_id is not None:
                changed = await repo.set_block(actor.id, block_id, on)
                if changed:
                    await repo.touch(actor.id, self.clock.now())
                return NewsChange(block_id, changed)
            prefs = await repo.prefs(actor.id)
            stopped = prefs is not None and prefs.stopped
            if stopped != on:  # stopped already (off asked) or running already (on asked)
                return NewsChange(None, False)
            prefs = await repo.touch(actor.id, self.clock.now())
            prefs.stopped = not on
            return NewsChange(None, True)

        return await self.transaction(change)

    # --- the parts -----------------------------------------------------------------------------------------------

    @staticmethod
    def check(actor: Actor) -> None:
        if actor.is_staff:
            raise NewsRefused("staff")
        if not actor.has_consent:
            raise ConsentRequired()

    async def read(self, repo: NewsRepo, user_id: int) -> NewsChoices:
        prefs = await repo.prefs(user_id)
        appeal_district = await repo.latest_appeal_district(user_id)
        chosen = prefs is not None and prefs.districts_chosen
        if chosen:
            districts = await repo.chosen_districts(user_id)
        else:
            districts = {appeal_district} if appeal_district is not None else set()
        return NewsChoices(
            stopped=prefs is not None and prefs.stopped,
            blocks_off=frozenset(await repo.blocks_off(user_id)),
            districts=frozenset(districts),
            districts_chosen=chosen,
            appeal_district=appeal_district,
        )

    async def write(self, actor: Actor, change: Callable[[NewsRepo], Awaitable[None]]) -> NewsChoices:
        """Apply `change` and read the choices back, in one transaction."""

        async def both(repo: NewsRepo) -> NewsChoices:
            await change(repo)
            return await self.read(repo, actor.id)

        return await self.transaction(both)

    async def transaction(self, work: Callable[[NewsRepo], Awaitable[T]]) -> T:
        """One transaction, committed once; run again once if a concurrent insert of the same row won the race."""
        for attempt in range(2):
            async with self.sessionmaker() as session:
                try:
                    result = await work(NewsRepo(session))
                    await session.commit()
                    return result
                except IntegrityError:
                    await session.rollback()
                    if attempt:
                        raise
        raise AssertionError("unreachable")
