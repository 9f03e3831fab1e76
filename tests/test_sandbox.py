"""The sandbox's own parts, without the page: the demo people and their roles, the exercises read from the database,
the travelled clock, the refusal of the production database and the choice between the bot and the sandbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.config import real_bot_configured
from bot.domain import AppealStatus, Role
from bot.sandbox.clock import OffsetClock
from bot.sandbox.personas import (
    ADMIN,
    ANALYST,
    COORDINATOR,
    DEMO_AGE,
    HEAD,
    NEWCOMER,
    OFFICIAL,
    PEOPLE,
    RESIDENT,
    RESIDENT_2,
    housing_agency,
    seed,
)
from bot.sandbox.runner import SandboxPaths, SandboxRefused, check_paths, sandbox_settings
from bot.sandbox.scenarios import EXERCISES, done, read_progress
from bot.services import Services, build_services
from storage.db import create_engine, create_sessionmaker
from storage.models import Appeal
from tests.conftest import make_settings
from tests.factories import make_world, rows


async def test_the_seed_gives_every_demo_person_the_role_the_page_names(db_path: Path) -> None:
    settings = make_settings(db_path)
    engine = create_engine(settings.database.url)
    sessionmaker = create_sessionmaker(engine)
    clock = ManualClock()
    try:
        await seed(settings, sessionmaker, ManualClock(clock.now()))
        services = build_services(settings, sessionmaker, clock)
        await services.directory.reload()
        _, _, agency = await housing_agency(services)
        people = {p.key: await services.users.identify(p.tg_id) for p in PEOPLE}
        assert people[ADMIN.key].has(Role.admin)
        assert people[COORDINATOR.key].has(Role.coordinator)
        assert people[OFFICIAL.key].has(Role.official) and people[OFFICIAL.key].agency_id == agency
        assert people[HEAD.key].has(Role.supervisor) and people[HEAD.key].agency_id == agency
        assert people[ANALYST.key].has(Role.analyst)
        for key in (RESIDENT.key, RESIDENT_2.key):
            assert people[key].has_consent and not people[key].is_staff
        newcomer = people[NEWCOMER.key]
        assert not newcomer.has_consent and not newcomer.is_staff and newcomer.locale is None
        # The demo appeal: Ibragim's, routed to the housing agency and taken, filed DEMO_AGE ago and due within days.
        [demo] = await rows(services, Appeal)
        assert demo.user_id == people[RESIDENT_2.key].id
        assert demo.status == AppealStatus.in_progress and demo.agency_id == agency
        assert demo.created_at == clock.now() - DEMO_AGE
        assert demo.deadline_at is not None
        assert clock.now() < demo.deadline_at < clock.now() + timedelta(days=7)
    finally:
        await engine.dispose()


async def test_each_exercise_is_checked_off_when_the_database_shows_it_done(
    services: Services, clock: ManualClock
) -> None:
    world = await make_world(services, clock)

    async def checked() -> set[str]:
        progress = await read_progress(services.appeals.sessionmaker)
        return {e.key for e in EXERCISES if done(progress, e.key)}

    assert await checked() == set()
    filed = await world.file(attachments=())  # no photo: not the first exercise yet
    assert await checked() == set()
    await world.file(draft_id="with-photo")  # the factories' draft carries a photo
    assert await checked() == {"file_with_photos"}
    await world.clarification(draft_id="to-clarify")
    assert await checked() == {"file_with_photos", "clarification"}
    # Routed, answered and approved within its deadline.
    await services.coordination.route(world["coordinator"], filed.id)
    await services.agency.take(world["official"], filed.id)
    await services.agency.answer(world["official"], filed.id, "Водоснабжение восстановлено")
    await services.coordination.review(world["coordinator"], filed.id, approve=True)
    assert await checked() == {"file_with_photos", "clarification", "route_and_answer"}
    # Another one answered after its deadline: the overdue exercise.
    late = await world.in_progress(draft_id="late-one")
    assert late.deadline_at is not None
    clock.set(late.deadline_at + timedelta(hours=1))
    await services.agency.answer(world["official"], late.id, "Сделано с опозданием")
    await services.coordination.review(world["coordinator"], late.id, approve=True)
    assert await checked() == {e.key for e in EXERCISES}


def test_the_sandbox_clock_moves_only_forward_and_keeps_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    clock = OffsetClock(path)
    before = clock.now()
    moved = clock.travel(3 * 86400)
    assert moved - before >= timedelta(days=3)
    with pytest.raises(ValueError):
        clock.travel(0)
    again = OffsetClock(path)  # a restarted sandbox goes on where it was
    assert again.offset == timedelta(days=3)
    path.write_text("not json")
    assert OffsetClock(path).offset == timedelta()


def test_the_sandbox_refuses_the_production_database(tmp_path: Path) -> None:
    folder = tmp_path / "sb"
    paths = SandboxPaths(folder)
    settings = make_settings(tmp_path / "x.db")
    production = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": f"sqlite+aiosqlite:///{paths.database}"})}
    )
    with pytest.raises(SandboxRefused, match="production database"):
        check_paths(production, paths)
    check_paths(settings, paths)  # another file: fine
    moved = sandbox_settings(settings, paths, "http://127.0.0.1:1")
    assert moved.database.url.endswith(str(paths.database.resolve()))
    assert moved.bot.api_base == "http://127.0.0.1:1" and moved.bot.admins == [ADMIN.tg_id]
    assert moved.bot.token != settings.bot.token and moved.fsm.storage == "sql"


def test_a_token_anywhere_means_the_real_bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TSUR_BOT__TOKEN", raising=False)
    monkeypatch.delenv("TSUR_BOT__MODE", raising=False)
    config = tmp_path / "config.toml"
    assert not real_bot_configured(config)  # no file: the sandbox
    config.write_text('[bot]\ntoken = ""\n')
    assert not real_bot_configured(config)  # the example's empty token: the sandbox
    config.write_text('[bot]\ntoken = "not-a-token"\n')
    assert real_bot_configured(config)  # malformed: the real bot's start-up names the key
    config.write_text('[bot]\ntoken = ""\nmode = "webhook"\n')
    assert real_bot_configured(config)  # a webhook deployment never falls back to a demo
    config.write_text('[bot]\ntoken = ""\n')
    monkeypatch.setenv("TSUR_BOT__TOKEN", "")
    assert real_bot_configured(config)  # set but empty: a deployment that lost its secret fails loudly
