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
    """What «Unsubscribe from such news» (or its «Undo») did, by what "such news" is for the broadcast: its thematic
    block (`block_id`) turned off (on); else its districts (`districts`, the audience's) unfollowed (followed again):
    `removed` are the ones that were followed and no longer are, `was_default` whether they were the latest appeal's
    (no choice made yet); else (neither) all news stopped (resumed). `changed` False when it already was so."""

    block_id: int | None
    changed: bool
    districts: tuple[int, ...] = ()
    removed: frozenset[int] = frozenset()
    was_default: bool = False

    @property
    def all_news(self) -> bool:
        return self.block_id is None and not self.districts

    @property
    def undo_mask(self) -> int:
        """`removed` as bits over `districts` (the audience's, sorted): what «Undo» carries to restore exactly."""
        return sum(1 << i for i, district in enumerate(self.districts) if district in self.removed)


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
        """«Unsubscribe from such news»: the broadcast's thematic block off; or, a broadcast to districts without a
        block, those districts unfollowed (the others followed stay, region-wide and block news still come); or, a
        broadcast with neither, all news stopped. Only a broadcast that was sent to this person counts."""
        self.check(actor)

        async def change(repo: NewsRepo) -> NewsChange:
            audience = await self.audience(repo, actor.id, broadcast_id)
            if audience.block_id is not None:
                return await self.switch_block(repo, actor.id, audience.block_id, on=False)
            districts = tuple(sorted(set(audience.districts)))
            if not districts:
                return await self.switch_all(repo, actor.id, on=False)
            prefs = await repo.prefs(actor.id)
            chosen = prefs is not None and prefs.districts_chosen
            if chosen:
                followed = await repo.chosen_districts(actor.id)
            else:
                appeal_district = await repo.latest_appeal_district(actor.id)
                followed = {appeal_district} if appeal_district is not None else set()
            removed = followed & set(districts)
            if not removed:
                return NewsChange(None, False, districts)
            prefs = await repo.touch(actor.id, self.clock.now())
            if not chosen:  # the defaults become a choice: what the latest appeal gave, less these districts
                prefs.districts_chosen = True
                for district_id in followed - removed:
                    await repo.add_district(actor.id, district_id)
            else:
                for district_id in removed:
                    await repo.remove_district(actor.id, district_id)
            return NewsChange(None, True, districts, frozenset(removed), was_default=not chosen)

        return await self.transaction(change)

    async def undo(self, actor: Actor, broadcast_id: int, mask: int = 0, was_default: bool = False) -> NewsChange:
        """«Undo» under the answer to an unsubscribe: restores what it turned off. For a district broadcast `mask`
        and `was_default` say what the unsubscribe did (NewsChange.undo_mask, .was_default): the districts it
        unfollowed are followed again, or, when they were the latest appeal's, the defaults come back."""
        self.check(actor)

        async def change(repo: NewsRepo) -> NewsChange:
            audience = await self.audience(repo, actor.id, broadcast_id)
            if audience.block_id is not None:
                return await self.switch_block(repo, actor.id, audience.block_id, on=True)
            districts = tuple(sorted(set(audience.districts)))
            if not districts:
                return await self.switch_all(repo, actor.id, on=True)
            restored = frozenset(d for i, d in enumerate(districts) if mask >> i & 1)
            prefs = await repo.prefs(actor.id)
            if was_default:
                if prefs is None or not prefs.districts_chosen:
                    return NewsChange(None, False, districts, restored, was_default)
                await repo.clear_districts(actor.id)
                prefs.districts_chosen = False
                prefs.updated_at = self.clock.now()
                return NewsChange(None, True, districts, restored, was_default)
            if prefs is None or not prefs.districts_chosen:  # not what an unsubscribe with a choice leaves: forged
                return NewsChange(None, False, districts, restored)
            missing = restored - await repo.chosen_districts(actor.id)
            for district_id in missing:
                await repo.add_district(actor.id, district_id)
            if missing:
                await repo.touch(actor.id, self.clock.now())
            return NewsChange(None, bool(missing), districts, restored)

        return await self.transaction(change)

    async def audience(self, repo: NewsRepo, user_id: int, broadcast_id: int) -> BroadcastAudience:
        if not 0 < broadcast_id <= MAX_ID:
            raise NewsRefused("unknown_broadcast")
        audience = await repo.audience_sent_to(user_id, broadcast_id)
        if audience is None:
            raise NewsRefused("unknown_broadcast")
        return BroadcastAudience.from_json(audience)

    async def switch_block(self, repo: NewsRepo, user_id: int, block_id: int, on: bool) -> NewsChange:
        changed = await repo.set_block(user_id, block_id, on)
        if changed:
            await repo.touch(user_id, self.clock.now())
        return NewsChange(block_id, changed)

    async def switch_all(self, repo: NewsRepo, user_id: int, on: bool) -> NewsChange:
        prefs = await repo.prefs(user_id)
        stopped = prefs is not None and prefs.stopped
        if stopped != on:  # stopped already (off asked) or running already (on asked)
            return NewsChange(None, False)
        prefs = await repo.touch(user_id, self.clock.now())
        prefs.stopped = not on
        return NewsChange(None, True)

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
