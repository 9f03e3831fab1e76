"""Several instances over one database: what one of them changes counts on the others at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import App, create_app
from bot.domain import Role
from bot.services import Services, build_services
from bot.services.errors import InvalidInput
from storage.db import create_engine, create_sessionmaker
from storage.models import Invite, UserRole
from tests import factories
from tests.conftest import Harness, make_settings
from tests.test_resident_e2e import english_resident
from tests.test_staff_e2e import ADMIN, invite, join


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


@pytest.fixture
async def other(harness: Harness) -> AsyncIterator[App]:
    """A second instance of the bot on the same database (its services, as its handlers would call them)."""
    app = await create_app(harness.settings, harness.clock, migrate=False)
    yield app
    await app.close()


async def test_a_role_revoked_on_another_instance_counts_at_once(harness: Harness, other: App) -> None:
    analyst = await join(harness, 5001, "analyst")
    await analyst.send_text("/staff")
    await harness.settle()
    assert "for the staff" not in analyst.last_message.text  # this instance has seen them as staff

    admin = await other.services.users.identify(ADMIN)
    person = await other.services.users.identify(analyst.id)
    await other.services.access.revoke(admin, person.id, Role.analyst)

    await analyst.send_text("/staff")
    await harness.settle()
    assert "This menu is for the staff" in analyst.last_message.text
    assert [r.role for r in await harness.rows(UserRole)] == ["admin"]


async def test_a_language_chosen_on_another_instance_counts_at_once(harness: Harness, other: App) -> None:
    resident = await english_resident(harness, 1001)
    await resident.send_text("/staff")
    await harness.settle()
    assert "This menu is for the staff" in resident.last_message.text

    actor = await other.services.users.identify(resident.id)
    await other.services.users.set_locale(actor, "ru")

    await resident.send_text("/staff")
    await harness.settle()
    assert "Это меню" in resident.last_message.text, resident.last_message.text


async def test_two_people_open_one_invite_at_the_same_moment(harness: Harness) -> None:
    argument = await invite(harness, "analyst")
    harness.handle_as_tasks = True  # as production: both updates handled at once
    await harness.restart()
    first = harness.emu.user(5001, language_code="ru")
    second = harness.emu.user(5002, language_code="ru")
    await asyncio.gather(first.send_text(f"/start {argument}"), second.send_text(f"/start {argument}"))
    await harness.settle()

    answers = sorted([first.last_message.text, second.last_message.text])
    assert "Эта ссылка-приглашение уже использована." in answers
    assert sum("Добро пожаловать" in text for text in answers) == 1, answers
    roles = await harness.rows(UserRole)
    assert sorted(r.role for r in roles) == ["admin", "analyst"]
    (used,) = await harness.rows(Invite)
    assert used.used_by in {r.user_id for r in roles if r.role == "analyst"}


async def test_two_instances_redeem_one_invite_concurrently(services: Services, db_path: Any, clock: Any) -> None:
    """Two Services over one database (two engines, as two processes have) race on one token: one wins."""
    admin = await factories.admin(services)
    link = await services.access.create_invite(admin, Role.analyst, None)
    engine = create_engine(make_settings(db_path).database.url)
    try:
        second = build_services(make_settings(db_path), create_sessionmaker(engine), clock)
        one = await services.users.identify(5001)
        two = await second.users.identify(5002)
        results = await asyncio.gather(
            services.access.redeem(one, link.token), second.access.redeem(two, link.token), return_exceptions=True
        )
    finally:
        await engine.dispose()
    assert sorted(type(r).__name__ for r in results) == ["InvalidInput", "str"], results
    refused = next(r for r in results if isinstance(r, InvalidInput))
    assert refused.detail == "invite_used"
    roles = await factories.rows(services, UserRole)
    assert sorted(r.role for r in roles) == ["admin", "analyst"]
