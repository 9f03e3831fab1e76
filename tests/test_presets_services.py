"""bot/services/presets.py without Telegram: ownership, names, the stored spec held to the owner's scope, schedules,
recipients limited to the people whose scope allows the slice, unreadable specs."""

from __future__ import annotations

import pytest

from bot.clock import ManualClock
from bot.domain import Dimension, Metric, PeriodKind, ReportSchedule, Role, SliceSpec
from bot.services import Services
from bot.services.errors import Forbidden, Gone, PresetNotFound
from bot.services.presets import PresetRefused
from bot.services.stats import PeriodRefused
from bot.services.users import Actor
from storage.models import StatPreset, UserRole
from tests import factories
from tests.factories import make_world


async def with_role(services: Services, tg_id: int, role: Role, block_id: int | None = None) -> Actor:
    """A person given a role directly (as an accepted invite writes it), re-identified."""
    actor = await services.users.identify(tg_id)
    async with services.appeals.sessionmaker() as session:
        session.add(UserRole(user_id=actor.id, role=role.value, block_id=block_id, granted_at=services.appeals.clock.now()))
        await session.commit()
    return await services.users.identify(tg_id)


async def test_save_list_rename_delete_and_ownership(services: Services, clock: ManualClock) -> None:
    world = await make_world(services, clock)
    analyst, admin = world["analyst"], world["admin"]
    spec = SliceSpec(Metric.on_time_share, (Dimension.agency,), period=PeriodKind.last_month)
    saved = await services.presets.save(analyst, "  Agencies   last month ", spec)
    assert saved.name == "Agencies last month" and saved.spec == spec and saved.recipients == (analyst.id,)
    with pytest.raises(PresetRefused) as refused:
        await services.presets.save(analyst, "Agencies last month", SliceSpec())
    assert refused.value.detail == "name_taken"
    for name, detail in (("", "name_empty"), ("x" * 65, "name_long")):
        with pytest.raises(PresetRefused) as refused:
            await services.presets.save(analyst, name, spec)
        assert refused.value.detail == detail
    await services.presets.save(admin, "Agencies last month", spec)  # names are unique per owner only
    second = await services.presets.save(analyst, "All", SliceSpec())
    assert [p.name for p in await services.presets.presets(analyst)] == ["Agencies last month", "All"]
    # Someone else's preset and an unknown id are the same "not found", for every action.
    for call in (
        services.presets.preset(admin, saved.id),
        services.presets.rename(admin, saved.id, "Mine now"),
        services.presets.delete(admin, saved.id),
        services.presets.set_schedule(admin, saved.id, ReportSchedule.weekly),
        services.presets.candidates(admin, saved.id),
        services.presets.toggle_recipient(admin, saved.id, admin.id),
        services.presets.preset(analyst, 999_999),
    ):
        with pytest.raises(PresetNotFound):
            await call
    with pytest.raises(PresetRefused):
        await services.presets.rename(analyst, second.id, "Agencies last month")
    renamed = await services.presets.rename(analyst, second.id, "Everything")
    assert renamed.name == "Everything"
    await services.presets.delete(analyst, saved.id)
    assert [p.name for p in await services.presets.presets(analyst)] == ["Everything"]


async def test_people_without_statistics_have_no_presets(services: Services, clock: ManualClock) -> None:
    world = await make_world(services, clock)
    for name in ("editor", "owner"):
        with pytest.raises(Forbidden):
            await services.presets.save(world[name], "Mine", SliceSpec())
        with pytest.raises(Forbidden):
            await services.presets.presets(world[name])


async def test_the_spec_is_held_to_the_owners_scope(services: Services, clock: ManualClock) -> None:
    await make_world(services, clock)
    housing, energy = (b.id for b in services.directory.blocks()[:2])
    head = await with_role(services, 3001, Role.block_head, housing)
    saved = await services.presets.save(head, "Block", SliceSpec(Metric.received, (Dimension.district,)))
    assert saved.spec is not None and saved.spec.filter_of(Dimension.block) == (housing,)
    with pytest.raises(Forbidden):
        await services.presets.save(head, "Other", SliceSpec().with_filter(Dimension.block, (energy,)))
    with pytest.raises(Gone):
        await services.presets.save(head, "Forged", SliceSpec().with_filter(Dimension.district, (999_999,)))
    with pytest.raises(PeriodRefused):
        await services.presets.save(head, "Future", SliceSpec(period=PeriodKind.custom, start="2090-01-01", end="2090-01-02"))


async def test_recipients_are_people_whose_scope_allows_the_slice(services: Services, clock: ManualClock) -> None:
    world = await make_world(services, clock)
    housing, energy = (b.id for b in services.directory.blocks()[:2])
    head = await with_role(services, 3001, Role.block_head, housing)
    other_head = await with_role(services, 3002, Role.block_head, energy)
    leader = await with_role(services, 3003, Role.leadership)
    analyst = world["analyst"]
    preset = await services.presets.save(
        analyst, "Housing", SliceSpec().with_filter(Dimension.block, (housing,))
    )
    candidates = {c.user_id: c for c in await services.presets.candidates(analyst, preset.id)}
    assert analyst.id in candidates and candidates[analyst.id].owner and candidates[analyst.id].chosen
    assert {head.id, leader.id, world["admin"].id, world["coordinator"].id} <= set(candidates)
    assert other_head.id not in candidates and world["editor"].id not in candidates and world["owner"].id not in candidates
    # A supervisor's scope would narrow the slice to their agency: they would get another report under the preset's
    # name, so they are not offered.
    assert world["supervisor"].id not in candidates
    with pytest.raises(Gone):
        await services.presets.toggle_recipient(analyst, preset.id, other_head.id)
    with pytest.raises(Gone):
        await services.presets.toggle_recipient(analyst, preset.id, world["owner"].id)
    changed = await services.presets.toggle_recipient(analyst, preset.id, head.id)
    changed = await services.presets.toggle_recipient(analyst, preset.id, leader.id)
    assert changed.recipients == (analyst.id, head.id, leader.id)
    changed = await services.presets.toggle_recipient(analyst, preset.id, analyst.id)
    changed = await services.presets.toggle_recipient(analyst, preset.id, head.id)
    assert changed.recipients == (leader.id,)
    with pytest.raises(PresetRefused) as refused:
        await services.presets.toggle_recipient(analyst, preset.id, leader.id)
    assert refused.value.detail == "no_recipients"
    scheduled = await services.presets.set_schedule(analyst, preset.id, ReportSchedule.monthly)
    assert scheduled.schedule == ReportSchedule.monthly
    [row] = await factories.rows(services, StatPreset, StatPreset.id == preset.id)
    assert (row.schedule, row.recipients) == ("monthly", [leader.id])
    off = await services.presets.set_schedule(analyst, preset.id, None)
    assert off.schedule is None


async def test_an_unreadable_spec_is_said_not_crashed_on(services: Services, clock: ManualClock) -> None:
    world = await make_world(services, clock)
    analyst = world["analyst"]
    preset = await services.presets.save(analyst, "Broken", SliceSpec())
    async with services.appeals.sessionmaker() as session:
        row = await session.get(StatPreset, preset.id)
        assert row is not None
        row.spec = {"metric": "names_of_residents"}
        await session.commit()
    broken = await services.presets.preset(analyst, preset.id)
    assert broken.spec is None
    with pytest.raises(PresetRefused) as refused:
        services.presets.spec(broken)
    assert refused.value.detail == "preset_spec"
    for call in (
        services.presets.set_schedule(analyst, preset.id, ReportSchedule.weekly),
        services.presets.candidates(analyst, preset.id),
    ):
        with pytest.raises(PresetRefused):
            await call
    await services.presets.delete(analyst, preset.id)
    assert await services.presets.presets(analyst) == []


async def test_only_whole_region_readers_send_a_preset_to_others(services: Services, clock: ManualClock) -> None:
    """An official, a supervisor or a block head may not even list who else reads statistics: their presets go to
    themselves only; an analyst's list is not affected."""
    world = await make_world(services, clock)
    housing = services.directory.blocks()[0].id
    head = await with_role(services, 3001, Role.block_head, housing)
    for owner in (world["official"], world["supervisor"], head):
        preset = await services.presets.save(owner, "Mine", SliceSpec())
        assert [c.user_id for c in await services.presets.candidates(owner, preset.id)] == [owner.id]
        with pytest.raises(Gone):
            await services.presets.toggle_recipient(owner, preset.id, world["analyst"].id)
    preset = await services.presets.save(world["analyst"], "Region", SliceSpec())
    assert len(await services.presets.candidates(world["analyst"], preset.id)) > 1
