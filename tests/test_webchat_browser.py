"""The web chat page in a real browser (headless Debian chromium through Playwright): a small echo bot of its
own on the emulator, FakeHooks for the sandbox side. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.filters import Command
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from emulator import BotAPIEmulator
from emulator.webchat import WebChat
from tests.browser import COORDINATOR, RESIDENT, FakeHooks, launch_browser, save_screenshot, tiny_png

pytest.importorskip("playwright", reason="playwright is not installed (pip install -e '.[test]')")
from playwright.async_api import Page, expect  # noqa: E402

BOT_PHOTO = tiny_png(12, 9, (40, 120, 200))


def echo_router() -> Dispatcher:
    """A small bot: formatted greeting, an inline button that edits its message, a reply keyboard, photos."""
    dp = Dispatcher()

    @dp.message(Command("start"))
    async def start(message: Message) -> None:
        await message.answer(
            "<b>Hello</b>, <i>friend</i>! 👋 <a href='https://example.org/'>site</a> <code>&lt;x&gt;</code>",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text="Press", callback_data="press")],
                    [InlineKeyboardButton(text="Alert", callback_data="alert")],
                ]
            ),
        )
        await message.answer(
            "Choose:",
            reply_markup=ReplyKeyboardMarkup(
                keyboard=[
                    [KeyboardButton(text="Photo please")],
                    [KeyboardButton(text="📍 Where", request_location=True), KeyboardButton(text="☎ Me", request_contact=True)],
                ],
                one_time_keyboard=True,
                resize_keyboard=True,
            ),
        )

    @dp.callback_query(F.data == "press")
    async def press(query: CallbackQuery) -> None:
        await query.answer("Pressed!")
        assert isinstance(query.message, Message)
        await query.message.edit_text("<b>Pressed</b> once")

    @dp.callback_query(F.data == "alert")
    async def alert(query: CallbackQuery) -> None:
        await query.answer("Careful!", show_alert=True)

    @dp.message(Command("notify"))
    async def notify(message: Message, bot: Bot) -> None:
        await bot.send_message(COORDINATOR, "A new appeal is waiting for you")
        await message.answer("Coordinator notified")

    @dp.message(F.text == "Photo please")
    async def photo(message: Message) -> None:
        await message.answer_photo(BufferedInputFile(BOT_PHOTO, "pic.png"), caption="Here it is")

    @dp.message(F.photo)
    async def got_photo(message: Message) -> None:
        await message.answer(f"Got photo: {html.escape(message.caption or '')}")

    @dp.message(F.location)
    async def got_location(message: Message) -> None:
        assert message.location is not None
        await message.answer(f"Location {message.location.latitude:.4f} {message.location.longitude:.4f}")

    @dp.message(F.contact)
    async def got_contact(message: Message) -> None:
        assert message.contact is not None
        await message.answer(f"Phone {html.escape(message.contact.phone_number)}")

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {html.escape(message.text or '')}")

    return dp


@dataclass
class Sandbox:
    emu: BotAPIEmulator
    chat: WebChat
    hooks: FakeHooks
    page: Page


@pytest.fixture
async def sandbox(emu: BotAPIEmulator, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    viewport = getattr(request, "param", {"width": 1280, "height": 860})
    hooks = FakeHooks()
    bot = emu.create_bot(default=DefaultBotProperties(parse_mode="HTML"))
    await bot.set_my_commands([BotCommand(command="start", description="Начать"), BotCommand(command="notify", description="Позвать")], language_code="ru")
    dp = echo_router()
    emu.user(COORDINATOR).open_chat()  # the staff started the bot long ago
    polling = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False, close_bot_session=False))
    chat = WebChat(emu, hooks, upload_dir=tmp_path / "uploads")
    await chat.start("127.0.0.1", 0)
    try:
        async with launch_browser() as browser:
            context = await browser.new_context(viewport=viewport, locale="ru-RU")
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(chat.url)
            yield Sandbox(emu, chat, hooks, page)
            await context.close()
            assert errors == [], errors
    finally:
        await chat.stop()
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)
        await bot.session.close()


async def send(page: Page, text: str) -> None:
    await page.locator("#composer textarea").fill(text)
    await page.locator("#composer textarea").press("Enter")


async def test_chat_formatting_buttons_keyboard_upload_badge_and_travel(sandbox: Sandbox) -> None:
    page, hooks = sandbox.page, sandbox.hooks
    await expect(page.locator("#banner")).to_have_text("ПЕСОЧНИЦА — не настоящие обращения")
    await expect(page.locator("#personas [data-user-id]")).to_have_count(3)
    await expect(page.locator(f'#personas [data-user-id="{RESIDENT}"]')).to_have_class("active")

    # The bot's HTML formatting, rendered from its entities; the person's own message on the right.
    await send(page, "/start")
    await expect(page.locator(".msg.me").first).to_contain_text("/start")
    greeting = page.locator(".msg.bot").filter(has_text="Hello").locator(".text")
    await expect(greeting).to_have_count(1)
    inner = await greeting.inner_html()
    assert "<b>Hello</b>, <i>friend</i>! 👋" in inner
    assert '<a href="https://example.org/" rel="noopener noreferrer" target="_blank">site</a>' in inner
    assert "<code>&lt;x&gt;</code>" in inner
    ids = [int(i) for i in await page.locator("#messages .msg").evaluate_all("ns => ns.map(n => n.dataset.messageId)")]
    assert ids == sorted(ids) and len(ids) == 3

    # An inline button: the message is edited in place and the callback answer shows as a toast.
    bubble = page.locator(".msg.bot").filter(has=page.locator(".inline-kb"))
    message_id = await bubble.get_attribute("data-message-id")
    await bubble.locator(".inline-kb button", has_text="Press").click()
    edited = page.locator(f'#messages .msg[data-message-id="{message_id}"]')
    await expect(edited.locator(".text")).to_have_text("Pressed once")
    await expect(edited).to_have_class("msg bot edited")
    await expect(edited.locator(".meta")).to_contain_text("изменено")
    await expect(page.locator("#toast")).to_have_text("Pressed!")
    await expect(page.locator(".inline-kb")).to_have_count(0)

    # The reply keyboard: a press sends its text, the one-time keyboard hides, the bot's photo shows as an image.
    await expect(page.locator("#reply-kb button")).to_have_text(["Photo please", "📍 Where", "☎ Me"])
    await page.locator("#reply-kb button", has_text="Photo please").click()
    await expect(page.locator("#reply-kb")).to_be_hidden()
    photo = page.locator(".msg.bot img.photo")
    await expect(photo).to_have_count(1)
    await expect(page.locator(".msg.bot").filter(has=page.locator("img.photo"))).to_contain_text("Here it is")
    await page.wait_for_function("() => { const i = document.querySelector('.msg.bot img.photo'); return i && i.naturalWidth === 12; }")

    # Upload a real PNG with a caption: it is sent as a photo and shown as an image.
    await page.locator("#composer textarea").fill("pothole")
    await page.locator("#attach input[type=file]").set_input_files(
        {"name": "pothole.png", "mimeType": "image/png", "buffer": tiny_png()}
    )
    await expect(page.locator(".msg.bot").filter(has_text="Got photo: pothole")).to_have_count(1)
    await page.wait_for_function("() => { const i = document.querySelector('.msg.me img.photo'); return i && i.naturalWidth === 8; }")
    sent = sandbox.emu.last_update(RESIDENT)
    assert sent is not None and "photo" in sent["message"] and sent["message"]["caption"] == "pothole"
    await expect(page.locator("#composer textarea")).to_have_value("")

    # Another persona gets a message: an unread badge; opening that chat shows it and clears the badge.
    coordinator = page.locator(f'#personas [data-user-id="{COORDINATOR}"]')
    await expect(coordinator.locator(".badge")).to_be_hidden()
    await send(page, "/notify")
    await expect(page.locator(".msg.bot").filter(has_text="Coordinator notified")).to_have_count(1)
    await expect(coordinator.locator(".badge")).to_have_text("1")
    await expect(coordinator.locator(".badge")).to_be_visible()
    await save_screenshot(page, "webchat-desktop")
    async with page.expect_response(lambda r: r.url.split("?")[0].endswith(f"/api/chats/{COORDINATOR}/read")) as read:
        await coordinator.click()
    assert (await (await read.value).json())["unread"] == 0
    assert sandbox.chat.unread(COORDINATOR) == 0
    await expect(page.locator("#chat-name")).to_have_text("Ruslan")
    await expect(page.locator(".msg.bot .text")).to_have_text(["A new appeal is waiting for you"])
    await expect(coordinator.locator(".badge")).to_be_hidden()

    # Time travel calls the hook and shows the new sandbox time; a finished exercise is checked off.
    await expect(page.locator("#now")).to_have_text("02.03.2026 09:00")
    await page.locator('#travel button[data-seconds="86400"]').click()
    await expect(page.locator("#now")).to_have_text("03.03.2026 09:00")
    assert hooks.travelled == [86400]
    await expect(page.locator('#scenarios li[data-key="file"].done')).to_have_count(0)
    hooks.done.add("file")
    sandbox.chat.panel_changed()
    await expect(page.locator('#scenarios li[data-key="file"].done')).to_have_count(1)

