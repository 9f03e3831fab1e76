"""The «/» command menu of Telegram apps: the residents' commands for everyone; the staff see their roles' commands in
a menu of their own, in their language, from the invite on, and lose them with the role (QA: the admin's menu was
the residents')."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories
from tests.conftest import Harness
from tests.test_staff_e2e import ADMIN, join

RESIDENT_EN = [
    "/new File an appeal",
    "/my My appeals",
    "/subscriptions News I get",
    "/language Language",
    "/help Help",
    "/privacy Personal data",
    "/mydata My data: what the bot stores about me",
    "/cancel Cancel the current action",
]


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


def commands(lines: list[str]) -> list[str]:
    return [line.split()[0] for line in lines]


async def test_a_resident_sees_the_residents_menu_in_their_apps_language_and_then_in_the_one_chosen(
    harness: Harness,
) -> None:
    english = harness.emu.user(3001, language_code="en")
    assert english.menu() == RESIDENT_EN
    russian = harness.emu.user(3002, language_code="ru")
    assert russian.menu()[0] == "/new Подать обращение"
    # An app in a language the bot does not speak: the Russian menu, as the bot speaks Russian by default.
    assert harness.emu.user(3003, language_code="de").menu()[0] == "/new Подать обращение"
    assert "/staff" not in " ".join(russian.menu())

    # Telegram apps have no Chechen: a resident who chooses it in the bot gets the menu in Chechen all the same.
    await russian.send_text("/start")
    await harness.settle()
    await russian.click("Нохчийн")
    await harness.settle()
    assert harness.app is not None
    chechen = harness.app.i18n.gettext("File an appeal", locale="ce")
    assert chechen != "File an appeal" and russian.menu()[0] == f"/new {chechen}"
    assert commands(russian.menu()) == commands(RESIDENT_EN)


async def test_the_invited_get_their_roles_commands_and_lose_them_with_the_role(harness: Harness) -> None:
    coordinator = await join(harness, 2001, "RMC coordinator")
    assert commands(coordinator.menu()) == ["/staff", "/stats", "/rating", *commands(RESIDENT_EN)]
    assert coordinator.menu()[:3] == ["/staff Staff menu: appeals and work", "/stats Statistics", "/rating Agency rating"]
    editor = await join(harness, 2002, "editor")
    assert commands(editor.menu()) == ["/staff", "/polls", "/broadcasts", *commands(RESIDENT_EN)]

    # The coordinator switches to Russian: the menu follows.
    await coordinator.send_text("/language")
    await harness.settle()
    await coordinator.click("Русский")
    await harness.settle()
    assert coordinator.menu()[:2] == ["/staff Меню сотрудника: обращения и работа", "/stats Статистика"]

    # The admin revokes the role: the person's menu is a resident's again, still in their language.
    admin = harness.emu.user(ADMIN, language_code="en")
    await admin.send_text("/staff")
    await harness.settle()
    await admin.click("👥 People")
    await harness.settle()
    await admin.click(next(b for b in admin.last_message.buttons if "2001" in b))
    await harness.settle()
    await admin.click("✖ Revoke")
    await harness.settle()
    assert admin.callback_answers[-1]["text"] == "Role revoked."
    assert commands(coordinator.menu()) == commands(RESIDENT_EN)
    assert coordinator.menu()[0] == "/new Подать обращение"
    # The editor kept theirs.
    assert commands(editor.menu()) == ["/staff", "/polls", "/broadcasts", *commands(RESIDENT_EN)]


async def test_every_member_of_the_staff_gets_their_menu_when_the_bot_starts(harness: Harness) -> None:
    """Roles given while the bot was down (here: through the services) are in the menus after the next start."""
    assert harness.app is not None
    world = await factories.make_world(harness.app.services, harness.clock)
    official = harness.emu.user(world["official"].tg_id, language_code="en")
    assert "/staff" not in " ".join(official.menu())
    await harness.restart()
    assert harness.app is not None
    staff = {name: harness.emu.user(world[name].tg_id) for name in ("admin", "coordinator", "official", "supervisor")}
    lang = world["official"].lang
    gettext = harness.app.i18n.gettext
    assert staff["official"].menu()[:2] == [
        f"/staff {gettext('Staff menu: appeals and work', locale=lang)}",
        f"/stats {gettext('Statistics', locale=lang)}",
    ]
    assert commands(staff["official"].menu())[:3] == ["/staff", "/stats", "/new"]
    assert commands(staff["supervisor"].menu())[:4] == ["/staff", "/stats", "/rating", "/new"]
    assert commands(staff["admin"].menu())[:7] == [
        "/staff", "/stats", "/rating", "/polls", "/broadcasts", "/accesslog", "/new"
    ]
    # Residents are left with the residents' menu.
    assert "/staff" not in " ".join(harness.emu.user(world["owner"].tg_id).menu())


async def test_a_menu_telegram_refuses_does_not_spoil_the_welcome(harness: Harness) -> None:
    """Setting the menu is best effort: the invited person is welcomed and holds the role; the next start sets it."""
    harness.emu.inject("setMyCommands", "error", count=None, description="Bad Request: chat not found")
    person = await join(harness, 2003, "analyst")
    assert "Welcome to the team" in person.last_message.text
    assert "/staff" not in " ".join(person.menu())
    harness.emu.clear_faults()
    await harness.restart()
    assert commands(person.menu())[:4] == ["/staff", "/stats", "/rating", "/polls"]


async def test_a_withdrawal_takes_the_chosen_languages_menu_with_the_profile(harness: Harness) -> None:
    """The language goes with the profile on a withdrawal: the «/» menu is the app's default again (QA: it stayed
    in the language chosen, while the bot spoke Russian)."""
    person = harness.emu.user(3005, language_code="ru")
    await person.send_text("/start")
    await harness.settle()
    await person.click("English")
    await harness.settle()
    await person.click("✅ I agree")
    await harness.settle()
    assert person.menu() == RESIDENT_EN
    await person.send_text("/privacy")
    await harness.settle()
    await person.click("Withdraw consent")
    await harness.settle()
    await person.click(person.last_message.buttons[0])
    await harness.settle()
    assert "is withdrawn" in (person.last_message.text or "")
    assert person.menu()[0] == "/new Подать обращение"
