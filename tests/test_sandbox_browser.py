"""The sandbox in a real browser (headless Debian chromium through Playwright), as a trainee uses it: a resident files
an appeal with a photo, the coordinator routes it, the official answers, the coordinator approves, and the resident
sees the answer and the request to rate it; the reply keyboard, an inline button editing its message in place, the
unread badge, an exercise checked off and time travel bringing a reminder. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain import AppealStatus
from bot.sandbox.personas import COORDINATOR, OFFICIAL, RESIDENT
from bot.sandbox.runner import SandboxRunner
from storage.models import Appeal, Attachment, Reminder
from tests.browser import launch_browser, save_screenshot, tiny_png
from tests.conftest import make_settings

try:
    from playwright.async_api import Page, expect
except ImportError:
    if os.environ.get("TSUR_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

WAIT = 15_000  # ms: the bot answers in well under a second; a loaded CI machine gets room


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SandboxRunner]:
    settings = make_settings(
        tmp_path / "production.db",
        sandbox={"dir": str(tmp_path / "sandbox"), "port": 0},
        # No quiet hours: a reminder the test travels to must not wait for the morning of whatever day CI runs on.
        scheduler={"quiet_start": "00:00:00", "quiet_end": "00:00:00"},
    )
    runner = SandboxRunner(settings)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


class Trainee:
    """One person at the page, playing the demo people in turn."""

    def __init__(self, page: Page) -> None:
        self.page = page

    async def be(self, tg_id: int) -> None:
        await self.page.click(f"#personas [data-user-id='{tg_id}']")
        await expect(self.page.locator(f"#personas [data-user-id='{tg_id}'].active")).to_be_visible(timeout=WAIT)

    def bot_says(self, text: str):  # type: ignore[no-untyped-def]
        return self.page.locator("#messages .msg.bot", has_text=text).last

    async def see(self, text: str) -> None:
        await expect(self.bot_says(text)).to_be_visible(timeout=WAIT)

    async def say(self, text: str) -> None:
        await self.page.fill("#composer textarea", text)
        await self.page.click("#send")
        await expect(self.page.locator("#messages .msg.me", has_text=text).last).to_be_visible(timeout=WAIT)

    async def press(self, text: str) -> None:
        """The newest inline button with exactly this text."""
        button = self.page.locator("#messages .inline-kb button").get_by_text(text, exact=True)
        await button.last.click(timeout=WAIT)


async def test_a_trainee_files_routes_answers_and_travels_in_time(sandbox: SandboxRunner) -> None:
    """In Russian, the sandbox's default, with the texts a trainee reads."""
    assert sandbox.app is not None and sandbox.webchat is not None
    async with launch_browser() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        await page.goto(sandbox.webchat.url)
        me = Trainee(page)
        await expect(page.locator("#banner")).to_contain_text("ПЕСОЧНИЦА", timeout=WAIT)

        # The resident: the main menu's reply keyboard, then the filing dialog.
        await me.be(RESIDENT.tg_id)
        await me.say("/start")
        file_button = page.locator("#reply-kb button", has_text="📝 Подать обращение")
        await expect(file_button).to_be_visible(timeout=WAIT)
        await file_button.click()
        await me.see("Выберите тему обращения")
        topics_id = await me.bot_says("Выберите тему обращения").get_attribute("data-message-id")
        await me.press("ЖКХ и ТКО")
        # The inline button edited its own message: the same bubble now asks for the subcategory.
        same = page.locator(f"#messages .msg.bot[data-message-id='{topics_id}']")
        await expect(same).to_contain_text("Выберите подкатегорию", timeout=WAIT)
        await me.press("Отсутствие водоснабжения")
        await me.see("Опишите проблему")
        await me.say("Во дворе дома по ул. Учебной третий день нет воды")
        await me.see("Приложите фото")
        await page.set_input_files(
            "#attach input[type=file]",
            files=[{"name": "yard.png", "mimeType": "image/png", "buffer": tiny_png(64, 48)}],
        )
        await expect(page.locator("#messages .msg.me img").last).to_be_visible(timeout=WAIT)
        await me.see("Прикреплено файлов: 1")
        await me.press("✅ Готово (1)")
        # The place: the reply keyboard's location button opens the page's list of places.
        await me.see("Где находится проблема")
        await page.locator("#reply-kb button", has_text="📍 Отправить геопозицию").click()
        await page.locator("#places button, #places li").first.click(timeout=WAIT)
        await me.see("Выберите муниципальный район")
        await me.press("г. Грозный")
        await me.press("⚡ Сообщение (10 дней)")
        await me.see("Проверьте обращение перед отправкой")
        await save_screenshot(page, "sandbox-resident")
        await me.press("✅ Подтвердить")
        await me.see("Ваше обращение зарегистрировано")
        [appeal] = await rows(sandbox, Appeal, Appeal.text.startswith("Во дворе дома по ул. Учебной"))
        assert appeal.status == AppealStatus.moderation and appeal.latitude is not None
        assert [f.kind for f in await rows(sandbox, Attachment, Attachment.appeal_id == appeal.id)] == ["photo"]
        # The first exercise is checked off by what the sandbox saw.
        await expect(page.locator("#scenarios li[data-key='file_with_photos'].done")).to_be_visible(timeout=WAIT)

        # The coordinator routes it from the queue; the resident's badge counts the news.
        await me.be(COORDINATOR.tg_id)
        await me.say("/staff")
        await me.press("📥 Очередь")
        await page.locator("#messages .inline-kb button", has_text=appeal.number).last.click(timeout=WAIT)
        await me.see(appeal.number)
        await page.locator("#messages .inline-kb button", has_text="➡️").first.click(timeout=WAIT)
        resident_badge = page.locator(f"#personas [data-user-id='{RESIDENT.tg_id}'] .badge")
        await expect(resident_badge).to_have_text("1", timeout=WAIT)
        await save_screenshot(page, "sandbox-coordinator")

        # The official takes it and answers.
        await me.be(OFFICIAL.tg_id)
        await me.see(appeal.number)
        await page.locator("#messages .msg.bot", has_text=appeal.number).last.locator(
            ".inline-kb button", has_text="🛠 Взять в работу"
        ).click(timeout=WAIT)
        await me.press("✅ Окончательный ответ")
        await me.say("Подача воды восстановлена 3 декабря, виновник — водоканал.")
        await me.press("📤 Отправить")
        await save_screenshot(page, "sandbox-official")

        # The coordinator approves the answer.
        await me.be(COORDINATOR.tg_id)
        review = page.locator("#messages .msg.bot", has_text=appeal.number).last
        await expect(review).to_contain_text("ждет вашей проверки", timeout=WAIT)
        await review.locator(".inline-kb button", has_text="Открыть").click(timeout=WAIT)
        await me.press("✅ Одобрить ответ")

        # The resident reads the answer and is asked to rate it.
        await me.be(RESIDENT.tg_id)
        await me.see("Подача воды восстановлена")
        rating = page.locator("#messages .msg.bot").last
        await expect(rating.locator(".inline-kb button")).to_have_count(5, timeout=WAIT)
        await expect(resident_badge).to_be_hidden(timeout=WAIT)  # read: it is the open chat
        await expect(page.locator("#scenarios li[data-key='route_and_answer'].done")).to_be_visible(timeout=WAIT)
        await save_screenshot(page, "sandbox-answer")

        # Time travel: six hours at a time until the demo appeal's deadline is a day away and the official, whose
        # chat is open, gets the reminder ("⏳ … срок ответа — …") on the page.
        await me.be(OFFICIAL.tg_id)
        hourglasses = page.locator("#messages .msg.bot", has_text="⏳")
        seen = await hourglasses.count()
        sent_before = await sent_reminders(sandbox)
        for _ in range(16):
            before = await page.locator("#now").inner_text()
            await page.click("#travel button[data-seconds='21600']")
            await expect(page.locator("#now")).not_to_have_text(before, timeout=WAIT)
            try:
                await expect(hourglasses).to_have_count(seen + 1, timeout=3000)
                break
            except AssertionError:
                continue
        await expect(hourglasses).to_have_count(seen + 1, timeout=WAIT)
        assert await sent_reminders(sandbox) > sent_before
        await save_screenshot(page, "sandbox-time-travel")

        # On a phone: the chat takes the width, the people sit in a drawer.
        phone = await browser.new_page(viewport={"width": 390, "height": 844})
        await phone.goto(sandbox.webchat.url)
        await expect(phone.locator("#banner")).to_be_visible(timeout=WAIT)
        await save_screenshot(phone, "sandbox-phone")


async def rows(runner: SandboxRunner, model, *where):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    assert runner.app is not None
    async with runner.app.sessionmaker() as session:
        return list((await session.execute(select(model).where(*where).order_by(model.id))).scalars())


async def sent_reminders(runner: SandboxRunner) -> int:
    return len(await rows(runner, Reminder, Reminder.sent_at.is_not(None)))
