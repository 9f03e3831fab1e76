"""/mydata end to end through the emulator: the two documents (an HTML page and a JSON file, read back from the
emulator's file store), the daily limit with the manual clock, a person who never started, staff, and /mydata in the
middle of filing an appeal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import Appeal, AuditEntry
from tests import factories
from tests.conftest import Harness
from tests.test_resident_e2e import begin_appeal, english_resident, fill_until_preview

ADMIN = 9000
SCRIPT = 'Broken lamp <script>alert("x")</script> & no light at night'


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


def documents(user: EmulatedUser, since: int = 0) -> list[BotMessage]:
    return [m for m in user.messages[since:] if m.kind == "document"]


def content(harness: Harness, message: BotMessage) -> bytes:
    assert message.file_id is not None
    return harness.emu.state.files[message.file_id].content


def exported(harness: Harness, user: EmulatedUser, since: int) -> tuple[str, dict[str, Any]]:
    """The HTML page and the parsed JSON of the export sent after message `since`."""
    page, machine = documents(user, since)
    assert page.raw["document"]["file_name"].endswith(".html")
    assert machine.raw["document"]["file_name"].endswith(".json")
    return content(harness, page).decode("utf-8"), json.loads(content(harness, machine).decode("utf-8"))


async def mydata(harness: Harness, user: EmulatedUser) -> int:
    before = len(user.messages)
    await user.send_text("/mydata")
    await harness.settle()
    return before


async def test_two_documents_with_exactly_the_persons_data(harness: Harness) -> None:
    assert harness.app is not None
    services = harness.app.services
    user = await english_resident(harness)
    await fill_until_preview(harness, user, SCRIPT)
    await user.click("✅ Confirm")
    await harness.settle()
    [mine] = await harness.rows(Appeal)
    # Another resident's appeal, closed as a duplicate of this one: its export names this appeal by number only.
    other = await factories.resident(services, 1002)
    theirs = await services.appeals.file(
        other, factories.draft(services, draft_id="other-1", text="Our street is dark too, pole 17")
    )
    await services.coordination.mark_duplicate(await factories.admin(services, ADMIN), theirs.id, mine.number)

    since = await mydata(harness, user)
    page, data = exported(harness, user, since)
    assert "Federal Law 152-FZ" in documents(user, since)[0].text
    assert data["schema_version"] == 1 and data["document"]["law"] == "152-FZ art. 14"
    assert data["document"]["timezone"] == "Europe/Moscow"
    assert data["profile"]["telegram_id"] == 1001 and data["profile"]["language"] == "en"
    assert [(c["version"], c["accepted"], c["withdrawn"]) for c in data["consents"]] == [("2026-12-03", True, False)]
    [appeal] = data["appeals"]
    assert appeal["number"] == mine.number and appeal["text"] == SCRIPT
    assert appeal["address"] == "Grozny, Mira street 12" and appeal["district"]["code"] == "grozny"
    assert appeal["created_at"] == {"utc": "2026-11-02T09:00:00Z", "local": "2026-11-02T12:00:00+03:00"}
    assert appeal["status"] == "moderation" and appeal["history"][0]["text"] == "Filed and sent to moderation"
    assert data["exports"] == [{"utc": "2026-11-02T09:00:00Z", "local": "2026-11-02T12:00:00+03:00"}]
    # The page: self-contained, in English, the typed markup shown as text, never run.
    assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page
    assert "152-FZ" in page and "Regional Management Center" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; no light" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "pole 17" not in page and "pole 17" not in json.dumps(data)

    # The other resident: their appeal, and this one's number, nothing else of it.
    neighbour = harness.emu.user(1002, language_code="en")
    neighbour.open_chat()
    since = await mydata(harness, neighbour)
    page, data = exported(harness, neighbour, since)
    [appeal] = data["appeals"]
    assert appeal["text"] == "Our street is dark too, pole 17" and appeal["duplicate_of"] == mine.number
    assert "Broken lamp" not in page and "Broken lamp" not in json.dumps(data)
    assert "Mira street" not in json.dumps(data, ensure_ascii=False)


async def test_the_fourth_export_in_a_day_is_refused_until_24_hours_pass(harness: Harness) -> None:
    user = harness.emu.user(2001, language_code="ru")
    await user.send_text("/start")
    await harness.settle()
    await user.click("✅ Русский")
    await harness.settle()
    await user.click("✅ Согласен")
    await harness.settle()
    for _ in range(3):
        since = await mydata(harness, user)
        assert len(documents(user, since)) == 2
        harness.clock.advance(hours=2)
    since = await mydata(harness, user)
    assert documents(user, since) == []
    # The first export was at 12:00 Moscow time on 02.11: the next one is possible 24 hours later.
    assert user.last_message.text == (
        "Вы уже получили столько выгрузок своих данных, сколько можно за 24 часа (3). "
        "Следующая выгрузка возможна с 03.11.2026 12:00."
    )
    assert len(await harness.rows(AuditEntry, AuditEntry.action == "data_export")) == 3
    harness.clock.advance(hours=18)  # 24 hours after the first
    since = await mydata(harness, user)
    page, data = exported(harness, user, since)
    assert len(data["exports"]) == 4 and '<html lang="ru">' in page and "152-ФЗ" in page


async def test_a_person_who_never_started(harness: Harness) -> None:
    stranger = harness.emu.user(2002, language_code="en")
    stranger.open_chat()
    await mydata(harness, stranger)
    assert documents(stranger) == []
    assert stranger.last_message.text == (
        "The bot stores nothing about you but your Telegram id, kept since 02.11.2026 so that it can answer you. "
        "To file an appeal, send /start."
    )
    assert await harness.rows(AuditEntry, AuditEntry.action == "data_export") == []


async def test_staff_get_their_profile_and_roles(harness: Harness) -> None:
    assert harness.app is not None
    admin = harness.emu.user(ADMIN, first_name="Admin", language_code="en")
    admin.open_chat()
    await factories.admin(harness.app.services, ADMIN)
    since = await mydata(harness, admin)
    page, data = exported(harness, admin, since)
    assert [r["role"] for r in data["roles"]] == ["admin"] and data["roles"][0]["name"] == "administrator"
    assert [e["action"] for e in data["role_changes"]] == ["role_granted"]
    assert data["appeals"] == [] and "administrator" in page


async def test_mydata_in_the_middle_of_filing_keeps_the_dialog(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Housing, utilities and waste")
    assert "Describe the problem" in user.last_message.text
    since = await mydata(harness, user)
    assert len(documents(user, since)) == 2
    # As after /help or /subscriptions: the dialog waits for the description where it was.
    await user.send_text("No water in our building for three days")
    await harness.settle()
    assert "Attach photos" in user.last_message.text


async def test_the_command_menu_names_mydata(harness: Harness) -> None:
    assert harness.bot is not None
    for lang in ("ru", "ce", "en"):
        commands = {c.command: c.description for c in await harness.bot.get_my_commands(language_code=lang)}
        assert commands.get("mydata"), (lang, commands)


async def test_an_export_is_sent_within_seconds(harness: Harness) -> None:
    """A resident with a few dozen appeals: both files arrive at once (the rendering runs in a worker thread)."""
    assert harness.app is not None
    services = harness.app.services
    user = await english_resident(harness)
    actor = await services.users.identify(1001)
    for n in range(30):
        await services.appeals.file(actor, factories.draft(services, draft_id=f"bulk-{n}", text=f"Problem number {n}"))
    since = len(user.messages)
    await user.send_text("/mydata")
    await harness.settle(timeout=5)
    _page, data = exported(harness, user, since)
    assert len(data["appeals"]) == 30
