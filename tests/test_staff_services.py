"""The read side and the refusals behind the staff screens (issue 10): duplicate originals, likely agencies, who is
told what on a refusal, and the staff names kept for the admins' list."""

from __future__ import annotations

import pytest

from bot.clock import ManualClock
from bot.services import Services
from bot.services.errors import AppealHidden, NotYours
from bot.services.views import NEARBY_METERS, around, distance
from handlers.dialogs import BUTTON_CHARS, fit, width
from storage.models import User
from tests.factories import World, make_world, rows

GROZNY = (43.3180, 45.6980)


@pytest.fixture
async def world(services: Services, clock: ManualClock) -> World:
    return await make_world(services, clock)


def test_distance_and_the_box_around_a_point() -> None:
    # One hundredth of a degree of latitude is about 1112 m anywhere.
    assert distance(43.0, 45.0, 43.01, 45.0) == pytest.approx(1112, abs=2)
    south, north, west, east = around(*GROZNY, NEARBY_METERS)
    for lat, lon in ((south, GROZNY[1]), (north, GROZNY[1]), (GROZNY[0], west), (GROZNY[0], east)):
        assert distance(*GROZNY, lat, lon) == pytest.approx(NEARBY_METERS, rel=0.01)


async def test_originals_are_the_residents_and_the_nearby_open_appeals(world: World) -> None:
    s = world.services
    lat, lon = GROZNY
    appeal = await world.file(latitude=lat, longitude=lon)
    own = await world.file()
    same_district = await world.file("other")
    districts = s.directory.districts()
    # 500 m north, in another district; and 5 km north in another district.
    near = await world.file("other", district_id=districts[1].id, latitude=lat + 0.0045, longitude=lon)
    far = await world.file("other", district_id=districts[1].id, latitude=lat + 0.045, longitude=lon)
    block = s.directory.blocks()[1]
    other_topic = await world.file("other", category_id=s.directory.categories(block.id)[0].id)
    rejected = await world.file("other")
    await s.coordination.reject(world["coordinator"], rejected.id, "spam")

    found = await s.views.originals(world["coordinator"], appeal.id)
    by_id = {o.id: o for o in found}
    assert set(by_id) == {own.id, same_district.id, near.id}, (far.id, other_topic.id, rejected.id)
    assert found[0].id == own.id and by_id[own.id].same_resident
    assert by_id[near.id].meters == 500 and by_id[same_district.id].meters is None
    # Only coordinators: the official sees nothing of an appeal not routed to them.
    with pytest.raises(AppealHidden):
        await s.views.originals(world["official"], appeal.id)


async def test_likely_agencies_start_with_the_suggestion(world: World) -> None:
    s = world.services
    appeal = await world.file()
    suggested = await s.views.suggest(appeal.category_id, appeal.district_id)
    found = await s.routing.likely_agencies(world["coordinator"], appeal.id)
    assert found[0] == suggested and len(found) == len(set(found)) and len(found) < len(s.directory.agencies())
    district_bodies = [a for a in s.directory.agencies() if a.code == "adm_grozny"]
    assert district_bodies and district_bodies[0].id in found
    # The agency that holds the appeal may ask (for a redirect); others and residents may not.
    routed = await world.assigned()
    assert await s.routing.likely_agencies(world["official"], routed.id)
    for name in ("official_b", "owner"):
        with pytest.raises(AppealHidden):
            await s.routing.likely_agencies(world[name], routed.id)


async def test_refusals_say_who_may_act_to_those_who_see_the_appeal(world: World) -> None:
    s = world.services
    routed = await world.in_progress()
    with pytest.raises(NotYours) as caught:  # the agency sees the appeal: it is told the ЦУР rejects
        await s.coordination.reject(world["official"], routed.id, "spam")
    assert caught.value.detail == "reject"
    with pytest.raises(NotYours):  # the coordinator sees every appeal: it is told the agency answers
        await s.agency.answer(world["coordinator"], routed.id, "Ответ координатора")
    for name in ("official_b", "supervisor_b", "owner", "other", "analyst"):
        with pytest.raises(AppealHidden) as hidden:
            await s.coordination.reject(world[name], routed.id, "spam")
        assert not isinstance(hidden.value, NotYours)


async def test_names_are_kept_for_staff_only(world: World) -> None:
    s = world.services
    await s.access.remember_name(world["owner"], "Resident Name", "resident")
    await s.access.remember_name(world["coordinator"], "Aslan Dudaev", "aslan_d")
    users = {u.id: u for u in await rows(s, User)}
    assert (users[world["owner"].id].full_name, users[world["owner"].id].username) == (None, None)
    assert (users[world["coordinator"].id].full_name, users[world["coordinator"].id].username) == (
        "Aslan Dudaev",
        "aslan_d",
    )
    people = {p.user_id: p for p in await s.access.people(world["admin"])}
    assert people[world["coordinator"].id].full_name == "Aslan Dudaev"
    await s.access.remember_name(world["coordinator"], "Aslan", None)
    people = {p.user_id: p for p in await s.access.people(world["admin"])}
    assert (people[world["coordinator"].id].full_name, people[world["coordinator"].id].username) == ("Aslan", None)


def test_a_row_is_cut_to_a_buttons_width_keeping_its_number_and_date() -> None:
    fixed, names = ["⚠️ 🛠 № 2026-000123", "due 11.01"], ["Кровля и подвалы многоквартирных домов", "Ачхой-Мартановский район"]
    assert width(" · ".join([*fixed, *names])) > BUTTON_CHARS
    row = fit(fixed, names)
    assert width(row) == BUTTON_CHARS
    assert row.startswith("⚠️ 🛠 № 2026-000123 · Кровля") and row.endswith(" · due 11.01") and "…" in row
    assert fit(["№ 2026-000002", "5 h."], ["Potholes", "Argun"]) == "№ 2026-000002 · Potholes · Argun · 5 h."
