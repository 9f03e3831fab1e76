"""SubscriptionService without Telegram: the rows it writes, read back by the broadcasts' recipients query, and its
refusals (no consent, staff, a broadcast that does not exist or was not sent to the person)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import ManualClock
from bot.domain import BroadcastAudience, BroadcastStatus, Lane, OutboxState
from bot.notices import BroadcastItem
from bot.services import Services
from bot.services.errors import ConsentRequired, Gone
from bot.services.subscriptions import NewsChange, NewsRefused
from bot.services.users import Actor
from storage.models import Broadcast, NewsBlockOff, NewsDistrict, NewsPrefs, Outbox
from storage.repositories.broadcasts import recipients_query
from storage.repositories.outbox import OutboxRepo
from tests import factories


async def make_broadcast(
    sessionmaker: async_sessionmaker[AsyncSession],
    author_id: int,
    clock: ManualClock,
    audience: BroadcastAudience | None = None,
    to: Iterable[int] = (),
    text: str = "В Гудермесе 3 декабря не будет воды",
) -> int:
    """A broadcast that went out (status done) with a sent item to each of `to` (users.id), written directly as
    the brief says: the delivery side is another engineer's."""
    now = clock.now()
    async with sessionmaker() as session:
        row = Broadcast(
            texts={"ru": text},
            audience=(audience or BroadcastAudience()).to_json(),
            status=BroadcastStatus.done,
            listed=True,
            draft_key=uuid4().hex,
            start_at=now,
            created_by=author_id,
            created_at=now,
            urgent=False,
        )
        session.add(row)
        await session.flush()
        for user_id in to:
            key = f"broadcast:{row.id}:{user_id}"  # as bot.services.broadcast_delivery keys every item
            values = OutboxRepo.values(
                user_id, BroadcastItem(broadcast_id=row.id), now, key, lane=Lane.bulk, broadcast_id=row.id
            )
            session.add(Outbox(**{**values, "status": OutboxState.sent, "sent_at": now}))
        await session.commit()
        return row.id


async def recipients(services: Services, audience: BroadcastAudience) -> set[int]:
    """users.id the broadcast would go to, by the delivery side's query."""
    async with services.appeals.sessionmaker() as session:
        query = recipients_query(audience, services.users.consent_version)
        return set((await session.execute(query)).scalars().all())


async def count(services: Services, model: Any) -> int:
    async with services.appeals.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def chosen_districts(services: Services) -> set[int]:
    async with services.appeals.sessionmaker() as session:
        return set((await session.execute(select(NewsDistrict.district_id))).scalars().all())


@pytest.fixture
async def world(services: Services, clock: ManualClock) -> factories.World:
    return await factories.make_world(services, clock)


def block_ids(services: Services) -> list[int]:
    return [b.id for b in services.directory.blocks()]


def district_ids(services: Services) -> list[int]:
    return [d.id for d in services.directory.districts()]


async def test_defaults_without_a_row(services: Services, world: factories.World) -> None:
    owner = world["owner"]
    choices = await services.subscriptions.choices(owner)
    assert (choices.stopped, choices.blocks_off, choices.districts, choices.districts_chosen) == (
        False,
        frozenset(),
        frozenset(),
        False,
    )
    grozny, argun = district_ids(services)[:2]
    await world.file(district_id=grozny)
    world.clock.advance(minutes=5)
    await world.file(district_id=argun)
    choices = await services.subscriptions.choices(owner)
    assert choices.districts == {argun} and choices.appeal_district == argun and not choices.districts_chosen
    # Reading writes nothing.
    assert await count(services, NewsPrefs) == 0


async def test_blocks_off_and_on_change_who_a_block_broadcast_reaches(services: Services, world: factories.World) -> None:
    owner, other = world["owner"], world["other"]
    water, roads = block_ids(services)[0], block_ids(services)[4]
    by_water, by_roads = BroadcastAudience(block_id=water), BroadcastAudience(block_id=roads)
    assert {owner.id, other.id} <= await recipients(services, by_water)

    choices = await services.subscriptions.set_block(owner, water, on=False)
    assert not choices.block_on(water) and choices.block_on(roads)
    assert owner.id not in await recipients(services, by_water)
    assert owner.id in await recipients(services, by_roads)
    assert owner.id in await recipients(services, BroadcastAudience())  # region-wide news still comes
    assert other.id in await recipients(services, by_water)
    # Asking again for the same state changes nothing (a press on an old copy of the screen).
    await services.subscriptions.set_block(owner, water, on=False)
    assert await count(services, NewsBlockOff) == 1

    choices = await services.subscriptions.set_block(owner, water, on=True)
    assert choices.block_on(water)
    assert owner.id in await recipients(services, by_water)
    assert await count(services, NewsBlockOff) == 0


async def test_districts_start_from_the_latest_appeal(services: Services, world: factories.World) -> None:
    owner = world["owner"]
    grozny, argun, achkhoy = district_ids(services)[:3]
    await world.file(district_id=grozny)
    assert owner.id in await recipients(services, BroadcastAudience(districts=(grozny,)))
    assert owner.id not in await recipients(services, BroadcastAudience(districts=(argun,)))

    # Choosing a second district keeps the preselected one.
    choices = await services.subscriptions.set_district(owner, argun, on=True)
    assert choices.districts == {grozny, argun} and choices.districts_chosen
    assert await chosen_districts(services) == {grozny, argun}
    for district in (grozny, argun):
        assert owner.id in await recipients(services, BroadcastAudience(districts=(district,)))
    assert owner.id not in await recipients(services, BroadcastAudience(districts=(achkhoy,)))

    # Turning the appeal's district off: chosen districts win over the latest appeal from now on.
    choices = await services.subscriptions.set_district(owner, grozny, on=False)
    assert choices.districts == {argun}
    assert owner.id not in await recipients(services, BroadcastAudience(districts=(grozny,)))
    # A new appeal elsewhere does not change a choice once made.
    world.clock.advance(minutes=1)
    await world.file(district_id=achkhoy)
    assert owner.id not in await recipients(services, BroadcastAudience(districts=(achkhoy,)))
    # No district at all: news of districts stops, region-wide news does not.
    await services.subscriptions.set_district(owner, argun, on=False)
    assert (await services.subscriptions.choices(owner)).districts == frozenset()
    assert owner.id not in await recipients(services, BroadcastAudience(districts=tuple(district_ids(services))))
    assert owner.id in await recipients(services, BroadcastAudience())


async def test_turning_the_preselected_district_off_first(services: Services, world: factories.World) -> None:
    owner = world["owner"]
    grozny = district_ids(services)[0]
    await world.file(district_id=grozny)
    choices = await services.subscriptions.set_district(owner, grozny, on=False)
    assert choices.districts == frozenset() and choices.districts_chosen
    assert owner.id not in await recipients(services, BroadcastAudience(districts=(grozny,)))


async def test_stop_and_resume(services: Services, world: factories.World) -> None:
    owner = world["owner"]
    water = block_ids(services)[0]
    assert (await services.subscriptions.set_stopped(owner, True)).stopped
    for audience in (BroadcastAudience(), BroadcastAudience(block_id=water), BroadcastAudience(language="ru")):
        assert owner.id not in await recipients(services, audience)
    assert not (await services.subscriptions.set_stopped(owner, False)).stopped
    assert owner.id in await recipients(services, BroadcastAudience(block_id=water))


async def test_unsubscribe_from_a_block_broadcast_and_undo(services: Services, world: factories.World) -> None:
    owner, other = world["owner"], world["other"]
    water = block_ids(services)[0]
    sent = await make_broadcast(
        services.appeals.sessionmaker, world["admin"].id, world.clock, BroadcastAudience(block_id=water), [owner.id]
    )
    subs = services.subscriptions
    assert await subs.unsubscribe(owner, sent) == NewsChange(water, True)
    assert owner.id not in await recipients(services, BroadcastAudience(block_id=water))
    assert owner.id in await recipients(services, BroadcastAudience())
    assert await subs.unsubscribe(owner, sent) == NewsChange(water, False)  # a second tap: already off
    assert await subs.undo(owner, sent) == NewsChange(water, True)
    assert owner.id in await recipients(services, BroadcastAudience(block_id=water))
    assert await subs.undo(owner, sent) == NewsChange(water, False)
    # Not sent to `other`: refused, nothing written.
    with pytest.raises(NewsRefused) as refused:
        await subs.unsubscribe(other, sent)
    assert refused.value.detail == "unknown_broadcast"
    assert await count(services, NewsBlockOff) == 0


async def test_unsubscribe_from_a_region_wide_broadcast_stops_all(services: Services, world: factories.World) -> None:
    owner = world["owner"]
    sent = await make_broadcast(services.appeals.sessionmaker, world["admin"].id, world.clock, BroadcastAudience(), [owner.id])
    assert await services.subscriptions.unsubscribe(owner, sent) == NewsChange(None, True)
    assert owner.id not in await recipients(services, BroadcastAudience())
    assert await services.subscriptions.unsubscribe(owner, sent) == NewsChange(None, False)
    assert await services.subscriptions.undo(owner, sent) == NewsChange(None, True)
    assert owner.id in await recipients(services, BroadcastAudience())
    assert await services.subscriptions.undo(owner, sent) == NewsChange(None, False)


async def test_unsubscribe_from_a_district_broadcast_unfollows_the_district(
    services: Services, world: factories.World
) -> None:
    """"Such news" of a broadcast to districts without a block is those districts' news: the default district (the
    latest appeal's) becomes a choice without it; region-wide and block news still come; «Undo» brings the defaults
    back exactly (no choice made)."""
    owner, other = world["owner"], world["other"]
    grozny, argun = district_ids(services)[:2]
    water = block_ids(services)[0]
    await world.file(district_id=grozny)
    await world.file(owner="other", district_id=grozny)
    to_grozny = BroadcastAudience(districts=(grozny,))
    sent = await make_broadcast(services.appeals.sessionmaker, world["admin"].id, world.clock, to_grozny, [owner.id])
    subs = services.subscriptions

    change = await subs.unsubscribe(owner, sent)
    assert change == NewsChange(None, True, (grozny,), frozenset({grozny}), was_default=True)
    assert change.undo_mask == 1 and not change.all_news
    async with services.appeals.sessionmaker() as session:
        (prefs,) = (await session.execute(select(NewsPrefs))).scalars().all()
    assert prefs.districts_chosen and not prefs.stopped
    assert await chosen_districts(services) == set()
    assert owner.id not in await recipients(services, to_grozny)
    assert owner.id in await recipients(services, BroadcastAudience())
    assert owner.id in await recipients(services, BroadcastAudience(block_id=water))
    # A second tap: nothing followed among them any more.
    assert await subs.unsubscribe(owner, sent) == NewsChange(None, False, (grozny,))
    # Undo: the defaults again, so a new appeal elsewhere moves the followed district as before.
    assert await subs.undo(owner, sent, change.undo_mask, change.was_default) == NewsChange(
        None, True, (grozny,), frozenset({grozny}), was_default=True
    )
    async with services.appeals.sessionmaker() as session:
        (prefs,) = (await session.execute(select(NewsPrefs))).scalars().all()
    assert not prefs.districts_chosen and not prefs.stopped
    assert await chosen_districts(services) == set()
    assert owner.id in await recipients(services, to_grozny)
    assert other.id in await recipients(services, to_grozny)  # only their own choice
    assert (await subs.undo(owner, sent, change.undo_mask, change.was_default)).changed is False
    world.clock.advance(minutes=1)
    await world.file(district_id=argun)
    assert owner.id in await recipients(services, BroadcastAudience(districts=(argun,)))


async def test_unsubscribe_from_a_district_broadcast_keeps_other_chosen_districts(
    services: Services, world: factories.World
) -> None:
    owner = world["owner"]
    grozny, argun, achkhoy, vedeno = district_ids(services)[:4]
    for district in (grozny, argun, achkhoy):
        await services.subscriptions.set_district(owner, district, on=True)
    # To Grozny and Vedeno: only Grozny was followed, only Grozny is unfollowed (and only it comes back).
    audience = BroadcastAudience(districts=(vedeno, grozny))
    sent = await make_broadcast(services.appeals.sessionmaker, world["admin"].id, world.clock, audience, [owner.id])
    change = await services.subscriptions.unsubscribe(owner, sent)
    assert change.changed and change.removed == {grozny} and not change.was_default
    assert await chosen_districts(services) == {argun, achkhoy}
    assert owner.id not in await recipients(services, BroadcastAudience(districts=(grozny,)))
    assert owner.id in await recipients(services, BroadcastAudience(districts=(argun,)))
    assert (await services.subscriptions.undo(owner, sent, change.undo_mask, change.was_default)).changed
    assert await chosen_districts(services) == {grozny, argun, achkhoy}
    assert owner.id not in await recipients(services, BroadcastAudience(districts=(vedeno,)))


async def test_unsubscribe_from_a_block_and_districts_broadcast_turns_the_block_off(
    services: Services, world: factories.World
) -> None:
    owner = world["owner"]
    grozny = district_ids(services)[0]
    water = block_ids(services)[0]
    await world.file(district_id=grozny)
    audience = BroadcastAudience(districts=(grozny,), block_id=water)
    sent = await make_broadcast(services.appeals.sessionmaker, world["admin"].id, world.clock, audience, [owner.id])
    assert await services.subscriptions.unsubscribe(owner, sent) == NewsChange(water, True)
    assert owner.id not in await recipients(services, audience)
    assert owner.id in await recipients(services, BroadcastAudience(districts=(grozny,)))
    assert await count(services, NewsDistrict) == 0


async def test_the_item_is_looked_up_by_its_unique_dedupe_key(services: Services, world: factories.World) -> None:
    """A press reads one index entry, not every item of the broadcast: the database's plan of the very statement the
    service runs searches the outbox by its unique dedupe key (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN with
    sequential scans off, so the plan shows which index the query can use)."""
    from sqlalchemy import event, text

    owner = world["owner"]
    sent = await make_broadcast(services.appeals.sessionmaker, world["admin"].id, world.clock, BroadcastAudience(), [owner.id])
    engine = services.appeals.sessionmaker.kw["bind"]
    statements: list[tuple[str, Any]] = []

    def seen(_conn: object, _cursor: object, statement: str, parameters: Any, *_args: object) -> None:
        if "FROM broadcasts" in statement and "outbox" in statement:
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        await services.subscriptions.unsubscribe(owner, sent)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) == 1, statements
    statement, parameters = statements[0]
    assert f"broadcast:{sent}:{owner.id}" in tuple(parameters)
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            unique_sql = (
                "SELECT il.name FROM pragma_index_list('outbox') AS il, pragma_index_info(il.name) AS ii "
                "WHERE il.\"unique\" = 1 AND ii.name = 'dedupe_key'"
            )
            explain = "EXPLAIN QUERY PLAN "
        else:
            unique_sql = (
                "SELECT indexname FROM pg_indexes WHERE tablename = 'outbox' "
                "AND indexdef LIKE 'CREATE UNIQUE%(dedupe_key)'"
            )
            explain = "EXPLAIN "
            await connection.exec_driver_sql("SET enable_seqscan = off")
        unique = set((await connection.execute(text(unique_sql))).scalars().all())
        plan = [str(row[-1]) for row in (await connection.exec_driver_sql(explain + statement, tuple(parameters))).all()]
    on_outbox = [line for line in plan if "outbox" in line]
    assert unique and on_outbox, plan
    assert all(any(name in line for name in unique) for line in on_outbox), plan
    assert "ix_outbox_broadcast" not in " ".join(plan), plan


@pytest.mark.parametrize("forged", [0, -1, 999_999, 2**31, 2**63])
async def test_a_forged_broadcast_id_changes_nothing(services: Services, world: factories.World, forged: int) -> None:
    for call in (services.subscriptions.unsubscribe, services.subscriptions.undo):
        with pytest.raises(NewsRefused):
            await call(world["owner"], forged)
    assert await count(services, NewsPrefs) == 0


async def test_refusals(services: Services, world: factories.World) -> None:
    subs = services.subscriptions
    # Staff never get broadcasts: nothing to choose.
    for name in ("admin", "editor", "coordinator", "official"):
        with pytest.raises(NewsRefused) as refused:
            await subs.choices(world[name])
        assert refused.value.detail == "staff"
    # Without the current consent.
    newcomer: Actor = await services.users.identify(5555)
    await services.privacy.withdraw(world["owner"], withdraw_open=False)
    withdrawn = await services.users.identify(world["owner"].tg_id)
    water = block_ids(services)[0]
    sent = await make_broadcast(services.appeals.sessionmaker, world["admin"].id, world.clock, to=[withdrawn.id])
    for person in (newcomer, withdrawn):
        with pytest.raises(ConsentRequired):
            await subs.choices(person)
        with pytest.raises(ConsentRequired):
            await subs.set_block(person, water, on=False)
        with pytest.raises(ConsentRequired):
            await subs.unsubscribe(person, sent)
    # Unknown blocks and districts.
    with pytest.raises(Gone):
        await subs.set_block(world["other"], 10_000, on=False)
    with pytest.raises(Gone):
        await subs.set_district(world["other"], 10_000, on=True)
    assert await count(services, NewsPrefs) == 0
    assert await count(services, NewsBlockOff) == 0


async def test_concurrent_first_changes_of_one_person(services: Services, world: factories.World) -> None:
    """Two presses at once create the person's prefs row once; both changes are kept."""
    owner = world["owner"]
    water, roads = block_ids(services)[0], block_ids(services)[4]
    await asyncio.gather(
        services.subscriptions.set_block(owner, water, on=False),
        services.subscriptions.set_block(owner, roads, on=False),
        services.subscriptions.set_stopped(owner, True),
    )
    choices = await services.subscriptions.choices(owner)
    assert choices.blocks_off == {water, roads} and choices.stopped
    async with services.appeals.sessionmaker() as session:
        assert len((await session.execute(select(NewsPrefs))).scalars().all()) == 1
