"""/stats end to end through the emulator: the report builder (metric, period or typed dates, dimensions, filters),
the table, the chart and the exports under it, the scopes of a block head and a supervisor, the presets (save, open,
rename, delete, schedule, recipients) and every bad input the issue lists."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from aiogram_dialog.utils import CB_SEP, remove_intent_id

from bot.callbacks import StatsAction, StatsCb
from bot.domain import Role
from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import AuditEntry, StatPreset, UserRole
from tests.conftest import Harness
from tests.test_staff_e2e import category_id, district_id, service_appeal

ADMIN = 9000


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


async def member(
    harness: Harness, tg_id: int, role: Role | None, agency_id: int | None = None, block_id: int | None = None,
    name: str | None = None,
) -> EmulatedUser:
    """A person with a role (written as an accepted invite writes it), English, their chat with the bot open."""
    assert harness.app is not None
    services = harness.app.services
    user = harness.emu.user(tg_id, first_name=name or f"Person {tg_id}", language_code="en")
    user.open_chat()
    actor = await services.users.identify(tg_id)
    await services.users.set_locale(actor, "en")
    if role is not None:
        async with await harness.session() as session:
            session.add(
                UserRole(
                    user_id=actor.id, role=role.value, agency_id=agency_id, block_id=block_id,
                    granted_at=harness.clock.now(),
                )
            )
            if name:
                from storage.models import User

                row = await session.get(User, actor.id)
                assert row is not None
                row.full_name = name
            await session.commit()
    return user


async def step(harness: Harness, user: EmulatedUser, action: str, value: str) -> None:
    if action == "click":
        await user.click(value)
    else:
        await user.send_text(value)
    await harness.settle()


def builder(user: EmulatedUser) -> BotMessage:
    found = [m for m in user.messages if (m.text or "").startswith("📊 Statistics") and not m.deleted]
    assert found, user.messages[-3:]
    return found[-1]


def tables(user: EmulatedUser) -> list[BotMessage]:
    return [m for m in user.messages if m.kind == "text" and "⬇️ XLSX" in m.buttons]


def block_id(harness: Harness, code: str) -> int:
    assert harness.app is not None
    return next(b.id for b in harness.app.services.directory.blocks() if b.code == code)


def names(harness: Harness) -> dict[str, str]:
    assert harness.app is not None
    directory = harness.app.services.directory
    found = {d.code: d.name("en") for d in directory.districts()}
    for block in directory.blocks():
        found[block.code] = block.name("en")
        found.update({c.code: c.name("en") for c in directory.categories(block.id)})
    return found


async def test_smoke(harness: Harness) -> None:
    analyst = await member(harness, 7001, Role.analyst)
    for n in range(3):
        await service_appeal(harness, 8000 + n)
    await step(harness, analyst, "text", "/stats")
    assert "Metric: Appeals received" in builder(analyst).text, analyst.messages[-1].text
    await step(harness, analyst, "click", "▶️ Show")
    print(analyst.messages[-3].text)
    print(analyst.messages[-2].text, analyst.messages[-2].buttons)
    print(analyst.messages[-1].text, analyst.messages[-1].buttons)
